"""K-means and Gaussian-mixture clusters of ``pipeline.customers.clustering`` with Spark MLlib.

What belongs here: :func:`cluster_features` (the standardised log-RFM features in Spark SQL) and
:func:`fit_clusters` (``pyspark.ml.clustering.KMeans`` and ``GaussianMixture`` on those features, with the
embedded cluster numbering, profiles and names). The model-selection table (silhouettes, Davies-Bouldin,
Calinski-Harabasz, BIC for four covariance types) stays in scikit-learn: MLlib has neither those indices nor
other covariance types.

What differs from the embedded fit, and why results agree only within tolerances: MLlib's k-means runs
k-means|| initialisation once per seed (``n_init`` seeds are tried here, the lowest cost kept, as
scikit-learn keeps the best of ``n_init``), and MLlib's Gaussian mixture has full covariances only and its
own random initialisation. The tests state the agreement measured (adjusted Rand index and inertia for
k-means, adjusted Rand index and mean log-likelihood for the mixture).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pyspark.ml.clustering import GaussianMixture, KMeans
from pyspark.ml.feature import VectorAssembler
from pyspark.ml.functions import vector_to_array
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from pipeline.customers.clustering import FEATURE_COLUMNS, _profile, _renumber
from pipeline.spark.session import ParquetStage

_METRICS = ("recency_days", "frequency", "monetary")


def _features(rfm: DataFrame) -> DataFrame:
    """``customer_id``, the ``FEATURE_COLUMNS`` and their vector ``features``.

    Features are z-scores of ``log1p`` with the population standard deviation, as scikit-learn's
    ``StandardScaler``; a constant metric scores 0.
    """
    logged = rfm.select("customer_id", *(F.log1p(F.col(m).cast("double")).alias(m) for m in _METRICS))
    stats = logged.agg(
        *(F.avg(m).alias(f"{m}_mean") for m in _METRICS),
        *(F.stddev_pop(m).alias(f"{m}_sd") for m in _METRICS),
    )
    scaled = logged.crossJoin(stats).select(
        "customer_id",
        *(
            F.when(F.col(f"{m}_sd") > 0, (F.col(m) - F.col(f"{m}_mean")) / F.col(f"{m}_sd"))
            .otherwise(F.lit(0.0))
            .alias(name)
            for m, name in zip(_METRICS, FEATURE_COLUMNS, strict=True)
        ),
    )
    return VectorAssembler(inputCols=list(FEATURE_COLUMNS), outputCol="features").transform(scaled)


def cluster_features(spark: SparkSession, rfm: pd.DataFrame, *, stage: ParquetStage) -> pd.DataFrame:
    """The standardised log-RFM features of ``pipeline.customers.clustering.cluster_features``, by Spark.

    Args:
        spark: The session.
        rfm: One row per customer with ``customer_id``, ``recency_days``, ``frequency`` and ``monetary``.
        stage: Where the table is written as parquet for Spark to read.

    Returns:
        ``customer_id`` and the ``FEATURE_COLUMNS``, ordered by ``customer_id``.
    """
    staged = stage.put("cluster_rfm", rfm[["customer_id", *_METRICS]])
    return _features(staged).drop("features").orderBy("customer_id").toPandas()


def fit_clusters(
    spark: SparkSession,
    rfm: pd.DataFrame,
    *,
    k: int,
    stage: ParquetStage,
    random_state: int = 0,
    n_init: int = 10,
    max_iter: int = 300,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Fit MLlib k-means and a full-covariance Gaussian mixture with ``k`` clusters and describe them.

    The output of :func:`pipeline.customers.clustering.fit_clusters`: clusters renumbered by mean monetary
    value (0 spends most), the mixture's posterior of the assigned component, and the profiles with their
    readable names (computed by the embedded code from the labels).

    Args:
        spark: The session.
        rfm: Output of ``customers.rfm_table``, one row per customer ordered by ``customer_id``.
        k: Number of clusters for both models.
        stage: Where the table is written as parquet for Spark to read.
        random_state: First seed; k-means tries ``random_state .. random_state + n_init - 1``.
        n_init: K-means initialisations; the lowest within-cluster sum of squares wins.
        max_iter: Iteration cap of both models.

    Returns:
        ``(clusters, profiles)`` with the columns and dtypes of ``analytics.customer_clusters`` and
        ``analytics.cluster_profiles``; the mixture is always full-covariance.

    Raises:
        ValueError: If ``k`` is below 2 or not below the number of customers.
    """
    if k < 2 or k >= len(rfm):
        raise ValueError(f"k must be in [2, {len(rfm) - 1}], got {k}")
    if not rfm["customer_id"].is_monotonic_increasing:
        raise ValueError("rfm must be ordered by customer_id, as customers.rfm_table returns it")
    features = _features(stage.put("cluster_rfm", rfm[["customer_id", *_METRICS]])).cache()
    try:
        fits = [
            KMeans(k=k, seed=random_state + i, maxIter=max_iter, tol=1e-6).fit(features)
            for i in range(n_init)
        ]
        kmeans = min(fits, key=lambda model: model.summary.trainingCost)
        gmm = GaussianMixture(k=k, seed=random_state, maxIter=max_iter, tol=1e-3).fit(features)
        labelled = gmm.transform(kmeans.transform(features).withColumnRenamed("prediction", "kmeans"))
        result = (
            labelled.select(
                "customer_id",
                F.col("kmeans").cast("long").alias("kmeans"),
                F.col("prediction").cast("long").alias("gmm"),
                F.array_max(vector_to_array("probability")).alias("gmm_probability"),
            )
            .orderBy("customer_id")
            .toPandas()
        )
    finally:
        features.unpersist()
    monetary = rfm["monetary"].to_numpy(dtype="float64")
    kmeans_raw, gmm_raw = result["kmeans"].to_numpy(), result["gmm"].to_numpy()
    kmeans_labels = _renumber(kmeans_raw, monetary, k)[kmeans_raw]
    gmm_labels = _renumber(gmm_raw, monetary, k)[gmm_raw]
    clusters = pd.DataFrame(
        {
            "customer_id": rfm["customer_id"].to_numpy(),
            "kmeans_cluster": kmeans_labels.astype("int64"),
            "gmm_cluster": gmm_labels.astype("int64"),
            "gmm_probability": result["gmm_probability"].to_numpy(dtype=np.float64),
        }
    )
    profiles = pd.concat(
        [_profile(rfm, kmeans_labels, "kmeans", k), _profile(rfm, gmm_labels, "gmm", k)], ignore_index=True
    )
    return clusters, profiles

