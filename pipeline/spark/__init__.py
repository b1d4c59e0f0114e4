"""The Spark engine: the cleaning, RFM, basket-mining, clustering and ALS steps run by Apache Spark.

What belongs here: functions that take a ``pyspark.sql.SparkSession`` and pandas frames, stage the frames as
parquet (:mod:`pipeline.spark.session`), compute on the parquet with Spark SQL and Spark MLlib, and return
pandas frames with exactly the columns, dtypes and keys of the embedded tables they stand in for
(``pipeline.staging.cleaning``, ``pipeline.customers.rfm_segments``, ``pipeline.baskets.basket_analysis``,
``pipeline.customers.clustering``). ALS collaborative filtering (:mod:`pipeline.spark.als`) has no embedded
twin and is compared with the SVD component of ``pipeline.recommend``.

What does not belong here: Dagster (the ``engine`` resource in ``resources.engine`` builds the session and the
assets choose the engine), and rules of their own: a Spark function states the embedded rule it reproduces
and the tests in ``tests/pipeline/spark`` hold it to that.
"""
