"""Collaborative filtering with Spark MLlib's ALS (implicit feedback): top-k products per customer.

What belongs here: :func:`als_recommendations`, which learns latent factors from who bought what
(``pyspark.ml.recommendation.ALS`` with ``implicitPrefs``) and returns the top-k products of each customer
in the long format of the recommender components (``customer_id, rank, stock_code, score``). The embedded
recommenders and their evaluation live in ``pipeline.recommend``; ALS has no embedded twin, and the tests
compare it on a temporal holdout with the embedded SVD component.

The input matches the SVD component's: registered customers' lines of real products (see
``pipeline.common.codes.is_product_code``), one entry per customer and product weighted
``log1p(distinct invoices)`` (the ``log_count`` weighting), which ALS reads as the confidence of a
preference.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pyspark.ml.recommendation import ALS
from pyspark.sql import SparkSession, Window
from pyspark.sql import functions as F

from pipeline.common.codes import is_product_code
from pipeline.spark.session import ParquetStage


def als_recommendations(
    spark: SparkSession,
    lines: pd.DataFrame,
    *,
    stage: ParquetStage,
    k: int = 10,
    rank: int = 32,
    reg_param: float = 0.1,
    alpha: float = 10.0,
    max_iter: int = 10,
    exclude_purchased: bool = False,
    random_state: int = 0,
) -> pd.DataFrame:
    """Recommend up to ``k`` products per customer from an implicit-feedback ALS model.

    Args:
        spark: The session.
        lines: Cleaned sales lines (``customer_id``, ``stock_code``, ``invoice``); guest lines and non-product
            codes are ignored.
        stage: Where the purchase counts are written as parquet for Spark to read.
        k: Products per customer.
        rank: Latent factors.
        reg_param: L2 regularisation.
        alpha: Confidence scale of implicit feedback (``1 + alpha * weight``).
        max_iter: Alternating least-squares sweeps.
        exclude_purchased: Never recommend a product the customer bought in ``lines`` (the ``new_only``
            setting).
        random_state: Seed of the factor initialisation.

    Returns:
        Long frame ``customer_id`` (int64), ``rank`` (1 = best, int64), ``stock_code``, ``score`` (the
        predicted preference), ordered by customer and rank; ties in score go to the smaller stock code.

    Raises:
        ValueError: If ``k`` is below 1.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    kept = lines[lines["customer_id"].notna() & is_product_code(lines["stock_code"])]
    counts = (
        kept.assign(customer_id=kept["customer_id"].astype("int64"))
        .groupby(["customer_id", "stock_code"], sort=True)["invoice"]
        .nunique()
        .rename("invoices")
        .reset_index()
    )
    products = np.sort(counts["stock_code"].unique())
    counts["item"] = np.searchsorted(products, counts["stock_code"]).astype(np.int32)
    counts["weight"] = np.log1p(counts["invoices"].to_numpy(dtype=np.float64))
    ratings = stage.put("als_ratings", counts[["customer_id", "item", "weight"]]).cache()
    try:
        model = ALS(
            userCol="customer_id", itemCol="item", ratingCol="weight", implicitPrefs=True, rank=rank,
            regParam=reg_param, alpha=alpha, maxIter=max_iter, seed=random_state, coldStartStrategy="drop",
        ).fit(ratings)
        # Enough candidates that k remain once the customer's own purchases are removed.
        depth = k + (int(counts.groupby("customer_id").size().max()) if exclude_purchased else 0)
        depth = min(depth, len(products))
        top = (
            model.recommendForAllUsers(depth)
            .select("customer_id", F.explode("recommendations").alias("rec"))
            .select("customer_id", F.col("rec.item").alias("item"), F.col("rec.rating").alias("score"))
        )
        if exclude_purchased:
            top = top.join(ratings.select("customer_id", "item"), ["customer_id", "item"], "left_anti")
        order = Window.partitionBy("customer_id").orderBy(F.col("score").desc(), F.col("item").asc())
        top = top.withColumn("rank", F.row_number().over(order)).filter(F.col("rank") <= k)
        found = top.orderBy("customer_id", "rank").toPandas()
    finally:
        ratings.unpersist()
    return pd.DataFrame(
        {
            "customer_id": found["customer_id"].to_numpy(dtype=np.int64),
            "rank": found["rank"].to_numpy(dtype=np.int64),
            "stock_code": products[found["item"].to_numpy(dtype=np.int64)].astype(object),
            "score": found["score"].to_numpy(dtype=np.float64),  # ALS predicts in float32
        }
    )
