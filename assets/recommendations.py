"""Recommendation assets: SVD of the customer-product matrix, the hybrid recommender and its offline evaluation.

Logic lives in pipeline.recommend (svd, serving), and in pipeline.spark.als for the ALS recommendations of the
Spark engine. The served recommendations and the evaluation are one
multi-asset: tuning the served blend weights needs the very fit and candidate pools the evaluation measures.
"""

from typing import Literal

import dagster as dg
import pandas as pd
from pydantic import Field

from assets import keys
from assets._metadata import figure, preview, skipped
from assets._tables import cleaned_input, empty_table, table_out, warehouse_table
from assets.checks import history_check, schema_check
from pipeline.common import codes
from pipeline.models import catalog
from pipeline.recommend import plots, serving, svd
from pipeline.recommend.schemas import (
    AlsRecommendations,
    CustomerFactors,
    ExplainedVariance,
    ProductFactors,
    Recommendations,
    RecommenderMetrics,
)
from resources import ComputeEngine, RuleMiningSettings
from resources.models import ModelStore

_KINDS = ("duckdb", "pandas", "scikit-learn")
# The columns the recommenders and the SVD read: DuckDB loads only these (the lineage columns are the widest).
_RECOMMENDER_COLUMNS = ["invoice", "stock_code", "description", "invoice_date", "customer_id"]


class SvdConfig(dg.Config):
    """Truncated SVD of the customer x product matrix."""

    n_components: int = Field(default=64, description="Components kept (capped at min(shape) - 1).")
    weighting: Literal["log_count", "tfidf", "binary"] = Field(
        default="log_count", description="Cell weighting of invoice counts per customer and product.")
    random_state: int = Field(default=0, description="Seed of the randomized SVD.")


class RecommenderConfig(dg.Config):
    """Recommendation list settings."""

    k: int = Field(default=10, description="Products recommended per customer and setting.")
    test_months: int = Field(default=3, description="Months after the evaluation cutoff used as the test window.")
    random_state: int = Field(default=0, description="Seed of the SVD component and the weight tuning.")
    n_jobs: int = Field(default=2, description="Threads for the independent fits and serving blocks (results "
                                               "do not depend on it).")


@dg.multi_asset(
    outs={
        "customer_product_svd": table_out(keys.SVD_EXPLAINED_VARIANCE, ExplainedVariance,
                                          "Explained variance ratio per SVD component, with the cumulative share.",
                                          kinds=_KINDS),
        "svd_customer_factors": table_out(keys.SVD_CUSTOMER_FACTORS, CustomerFactors,
                                          "Customer factors (U x Sigma) of the SVD, one row per customer.",
                                          kinds=_KINDS),
        "svd_product_factors": table_out(keys.SVD_PRODUCT_FACTORS, ProductFactors,
                                         "Product factors (V) of the SVD, one row per product.", kinds=_KINDS),
    },
    ins=cleaned_input(*_RECOMMENDER_COLUMNS),
    group_name="recommendations",
)
def customer_product_svd(config: SvdConfig, cleaned: pd.DataFrame):
    """TruncatedSVD of the sparse, weighted customer x product matrix."""
    matrix = svd.customer_product_matrix(cleaned, weighting=config.weighting)
    result = svd.fit_svd(matrix, n_components=config.n_components, random_state=config.random_state,
                         descriptions=codes.product_descriptions(cleaned))
    variance = result.explained_variance
    yield dg.Output(variance, output_name="customer_product_svd", metadata={
        "matrix_shape": dg.MetadataValue.json(list(matrix.matrix.shape)),
        "nonzero_cells": int(matrix.matrix.nnz),
        "components": len(variance),
        "cumulative_explained_variance": float(variance["cumulative_explained_variance_ratio"].iloc[-1]),
        "plot": figure(plots.explained_variance_figure(variance))})
    yield dg.Output(result.customer_factors, output_name="svd_customer_factors",
                    metadata={"customers": len(result.customer_factors)})
    yield dg.Output(result.product_factors, output_name="svd_product_factors",
                    metadata={"products": len(result.product_factors)})


_RECOMMENDATIONS_DESCRIPTION = (
    "Top-k products per customer from the hybrid recommender, in both settings (any / new products only).")
_EVALUATION_DESCRIPTION = (
    "Temporal-holdout precision, recall, NDCG, hit rate and coverage at k of every model in both settings.")


@dg.multi_asset(
    outs={
        "recommendations": table_out(keys.RECOMMENDATIONS, Recommendations, _RECOMMENDATIONS_DESCRIPTION,
                                     kinds=_KINDS),
        "recommender_evaluation": table_out(keys.RECOMMENDER_EVALUATION, RecommenderMetrics,
                                            _EVALUATION_DESCRIPTION, kinds=_KINDS),
    },
    ins={**cleaned_input(*_RECOMMENDER_COLUMNS), **keys.ins(rules=keys.ASSOCIATION_RULES)},
    # The evaluation mines its own rules before each cutoff, with the rule_mining settings that mined the
    # rules table: only the served table reads that table, and both use rules mined the same way.
    internal_asset_deps={
        "recommendations": {keys.CLEANED_TRANSACTIONS, keys.ASSOCIATION_RULES},
        "recommender_evaluation": {keys.CLEANED_TRANSACTIONS},
    },
    group_name="recommendations",
)
def recommender(config: RecommenderConfig, rule_mining: RuleMiningSettings, model_store: ModelStore,
                cleaned: pd.DataFrame, rules: pd.DataFrame):
    """Served recommendations and their offline evaluation, from the component fits the two share."""
    tables = serving.recommend_and_evaluate(cleaned, rules, k=config.k, test_months=config.test_months,
                                            random_state=config.random_state, n_jobs=config.n_jobs,
                                            mining=rule_mining.settings())
    recs = tables.recommendations
    saved = catalog.save_recommender(model_store.store(), tables, cleaned)
    yield dg.Output(recs, output_name="recommendations", metadata={
        "customers": int(recs["customer_id"].nunique()),
        "model_version": saved.version, "model_uri": saved.uri,
        "served_rules": len(tables.served_rules),
        "evaluation_rules": None if tables.evaluation_rules is None else len(tables.evaluation_rules),
        "by_source": dg.MetadataValue.json({str(k): int(v) for k, v in recs["source"].value_counts().items()}),
        "preview": preview(recs, 20)})
    if tables.evaluation is None:
        # Too little history to evaluate: stored empty, the reason (naming the span needed) in the metadata
        # and in the WARN check has_enough_history; everything else of the run is still published.
        yield dg.Output(empty_table(RecommenderMetrics), output_name="recommender_evaluation",
                        metadata=skipped(str(tables.evaluation_error)))
        return
    metrics = tables.evaluation
    table = metrics.drop(columns=["params"], errors="ignore").to_markdown(index=False)
    yield dg.Output(metrics, output_name="recommender_evaluation", metadata={
        "plot": figure(plots.recommender_metrics_figure(metrics)),
        "metrics": dg.MetadataValue.md(table)})


class AlsConfig(dg.Config):
    """Implicit-feedback ALS (Spark MLlib) settings."""

    k: int = Field(default=10, ge=1, description="Products recommended per customer.")
    rank: int = Field(default=32, ge=1, description="Latent factors.")
    reg_param: float = Field(default=0.1, ge=0, description="L2 regularisation.")
    alpha: float = Field(default=10.0, gt=0, description="Confidence scale of implicit feedback.")
    max_iter: int = Field(default=10, ge=1, description="Alternating least-squares sweeps.")
    random_state: int = Field(default=0, description="Seed of the factor initialisation.")


#: Why ``analytics.als_recommendations`` is empty on the embedded engine.
ALS_NEEDS_SPARK = "ALS collaborative filtering runs on the Spark engine: set RETAIL_ENGINE=spark"


@warehouse_table(keys.ALS_RECOMMENDATIONS, AlsRecommendations, group="recommendations",
                 ins=cleaned_input("invoice", "stock_code", "customer_id"), kinds=("duckdb", "pandas", "spark"))
def als_recommendations(config: AlsConfig, engine: ComputeEngine,
                        cleaned: pd.DataFrame) -> dg.Output[pd.DataFrame]:
    """Top-k products per customer from Spark MLlib's implicit-feedback ALS (empty on the embedded engine)."""
    if not engine.is_spark:
        return dg.Output(empty_table(AlsRecommendations),
                         metadata={"engine": engine.name, **skipped(ALS_NEEDS_SPARK)})
    from pipeline.spark import als  # pyspark is imported only when Spark is selected

    recs = als.als_recommendations(engine.session(), cleaned, stage=engine.stage(), k=config.k,
                                   rank=config.rank, reg_param=config.reg_param, alpha=config.alpha,
                                   max_iter=config.max_iter, random_state=config.random_state)
    return dg.Output(recs, metadata={
        "customers": int(recs["customer_id"].nunique()), "products": int(recs["stock_code"].nunique()),
        "engine": engine.name, "params": dg.MetadataValue.json(config.model_dump()),
        "preview": preview(recs, 20)})


customer_product_svd_schema = schema_check(keys.SVD_EXPLAINED_VARIANCE, ExplainedVariance)
svd_customer_factors_schema = schema_check(keys.SVD_CUSTOMER_FACTORS, CustomerFactors)
svd_product_factors_schema = schema_check(keys.SVD_PRODUCT_FACTORS, ProductFactors)
recommendations_schema = schema_check(keys.RECOMMENDATIONS, Recommendations)
recommender_evaluation_schema = schema_check(keys.RECOMMENDER_EVALUATION, RecommenderMetrics)
recommender_evaluation_history = history_check(keys.RECOMMENDER_EVALUATION,
                                               what="the recommender evaluation")
als_recommendations_schema = schema_check(keys.ALS_RECOMMENDATIONS, AlsRecommendations)
