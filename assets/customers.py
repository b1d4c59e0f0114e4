"""Customer assets: RFM and segments, K-Means/GMM clusters with model selection, 90-day predictions.

Logic lives in pipeline.customers.rfm_segments, pipeline.customers.clustering and
pipeline.customers.prediction. On data spanning too few days the predictions and their evaluation are stored
empty with a reason (WARN check ``has_enough_history``).
"""

import dagster as dg
import pandas as pd
from pydantic import Field

from assets import keys
from assets._metadata import figure, preview, skipped
from assets._tables import table_out, warehouse_table
from assets.checks import history_check, schema_check
from assets.eda import SALES_LINES
from pipeline.common import lines as sales_lines
from pipeline.customers import clustering, plots, prediction, rfm_segments
from pipeline.customers.schemas import (
    ClusterProfiles,
    CustomerClusters,
    CustomerPredictions,
    CustomerRfm,
    ModelSelection,
    PredictionEvaluation,
    SegmentClusterCrosstab,
    SegmentSummary,
)
from pipeline.models import catalog
from resources import ClusteringSettings, ComputeEngine, Warehouse
from resources.models import ModelStore


class PredictionConfig(dg.Config):
    """Behaviour prediction settings."""

    horizon_days: int = Field(default=90, description="Prediction horizon in days.")
    random_state: int = Field(default=0, description="Seed of the models.")


@warehouse_table(keys.RFM, CustomerRfm, group="customers", ins=SALES_LINES)
def rfm(warehouse: Warehouse, engine: ComputeEngine) -> dg.Output[pd.DataFrame]:
    """One row per customer: recency, frequency, monetary, 1-5 quintile scores and the named RFM segment."""
    with warehouse.connect() as conn:
        lines = sales_lines.warehouse_lines(conn)
        if engine.is_spark:
            from pipeline.spark import rfm as spark_rfm  # pyspark is imported only when Spark is selected

            cleaned, rejected = (conn.sql(f"SELECT * FROM {table.name}").df() for table in lines)
            table = spark_rfm.rfm_table(engine.session(), cleaned, rejected=rejected, stage=engine.stage())
        else:
            table = rfm_segments.rfm_table(lines.cleaned, rejected=lines.rejected)
    return dg.Output(table, metadata={"customers": len(table), "engine": engine.name,
                                      "plot": figure(plots.rfm_distributions_figure(table)),
                                      "preview": preview(table)})


@warehouse_table(keys.RFM_SEGMENT_SUMMARY, SegmentSummary, group="customers", ins=keys.ins(rfm=keys.RFM))
def rfm_segment_summary(rfm: pd.DataFrame) -> dg.Output[pd.DataFrame]:
    """Per RFM segment: size, revenue share, average R/F/M and the recommended marketing action."""
    summary = rfm_segments.segment_summary(rfm)
    return dg.Output(summary, metadata={"plot": figure(plots.segment_summary_figure(summary)),
                                        "summary": preview(summary, 11)})


@warehouse_table(keys.CLUSTER_MODEL_SELECTION, ModelSelection, group="customers", ins=keys.ins(rfm=keys.RFM),
                 kinds=("duckdb", "pandas", "scikit-learn"))
def cluster_model_selection(clustering_settings: ClusteringSettings, rfm: pd.DataFrame) -> dg.Output[pd.DataFrame]:
    """K-Means inertia, silhouette, Davies-Bouldin, Calinski-Harabasz and GMM BIC/AIC for each k tried."""
    settings = clustering_settings
    selection = clustering.model_selection(
        clustering.cluster_features(rfm), k_range=range(settings.k_min, settings.k_max + 1),
        random_state=settings.random_state, silhouette_sample=settings.silhouette_sample,
        mixture_sample=settings.mixture_sample,
    )
    chosen = settings.n_clusters or clustering.choose_k(selection)
    return dg.Output(selection, metadata={"chosen_k": chosen,
                                          "plot": figure(plots.model_selection_figure(selection, chosen_k=chosen))})


@dg.multi_asset(
    outs={
        "customer_clusters": table_out(keys.CUSTOMER_CLUSTERS, CustomerClusters,
                                       "Per customer: K-Means cluster, GMM component and its probability.",
                                       kinds=("duckdb", "pandas", "scikit-learn")),
        "cluster_profiles": table_out(keys.CLUSTER_PROFILES, ClusterProfiles,
                                      "Per model and cluster: size, mean R/F/M, revenue share and a readable name."),
        "segment_cluster_crosstab": table_out(keys.SEGMENT_CLUSTER_CROSSTAB, SegmentClusterCrosstab,
                                              "Customers per RFM segment and cluster, for both models."),
    },
    ins=keys.ins(rfm=keys.RFM, selection=keys.CLUSTER_MODEL_SELECTION),
    group_name="customers",
)
def customer_clusters(clustering_settings: ClusteringSettings, model_store: ModelStore, engine: ComputeEngine,
                      rfm: pd.DataFrame, selection: pd.DataFrame):
    """Fit K-Means and the GMM at the chosen k; clusters are numbered by mean monetary, highest first."""
    k = clustering_settings.n_clusters or clustering.choose_k(selection)
    covariance = clustering.best_covariance_type(selection, k=k)
    if engine.is_spark:
        from pipeline.spark import clustering as spark_clustering  # pyspark only when Spark is selected

        # MLlib mixtures are full-covariance only; no scikit-learn model to save.
        covariance, model = "full", {}
        clusters, profiles = spark_clustering.fit_clusters(
            engine.session(), rfm, k=k, stage=engine.stage(), random_state=clustering_settings.random_state)
    else:
        fit = clustering.fit_cluster_models(rfm, k=k, random_state=clustering_settings.random_state,
                                            covariance_type=covariance)
        clusters, profiles = fit.clusters, fit.profiles
        saved = catalog.save_clusters(model_store.store(), fit, rfm,
                                      random_state=clustering_settings.random_state)
        model = {"model_version": saved.version, "model_uri": saved.uri}
    crosstab = clustering.segment_cluster_crosstab(rfm, clusters)
    yield dg.Output(clusters, output_name="customer_clusters", metadata={
        "k": k, "gmm_covariance_type": covariance, **model, "engine": engine.name,
        "plot": figure(plots.cluster_scatter_figure(rfm, clusters, profiles))})
    yield dg.Output(profiles, output_name="cluster_profiles", metadata={"profiles": preview(profiles, 2 * k)})
    wide = crosstab.pivot_table(index="segment", columns=["model", "cluster"], values="customers", fill_value=0)
    yield dg.Output(crosstab, output_name="segment_cluster_crosstab",
                    metadata={"crosstab": dg.MetadataValue.md(wide.to_markdown())})


@dg.multi_asset(
    outs={
        "customer_predictions": table_out(
            keys.CUSTOMER_PREDICTIONS, CustomerPredictions,
            "Per customer: probability of buying in the next 90 days, predicted 90-day revenue, expected value.",
            kinds=("duckdb", "pandas", "scikit-learn")),
        "prediction_evaluation": table_out(
            keys.PREDICTION_EVALUATION, PredictionEvaluation,
            "Temporal-holdout metrics of the prediction models against naive baselines."),
    },
    ins=SALES_LINES,
    group_name="customers",
)
def customer_predictions(config: PredictionConfig, warehouse: Warehouse, model_store: ModelStore):
    """Train on a temporal split, evaluate against baselines, refit and predict the next 90 days.

    On data spanning too few days both tables are stored empty, the reason in their ``skipped_reason``
    metadata and their WARN check ``has_enough_history``.
    """
    with warehouse.connect() as conn:
        predictions, evaluation, reason, fit = prediction.prediction_tables(
            *sales_lines.warehouse_lines(conn), horizon_days=config.horizon_days, random_state=config.random_state)
    saved = None if fit is None else catalog.save_predictions(model_store.store(), fit,
                                                              random_state=config.random_state)
    model = {} if saved is None else {"model_version": saved.version, "model_uri": saved.uri}
    yield dg.Output(predictions, output_name="customer_predictions", metadata={
        "customers": len(predictions),
        "expected_buyers": float(predictions["purchase_probability_90d"].sum()),
        "predicted_revenue_90d_gbp": float(predictions["predicted_revenue_90d"].sum()), **model,
        **skipped(reason)})
    if reason is not None:
        yield dg.Output(evaluation, output_name="prediction_evaluation", metadata=skipped(reason))
        return
    headline = evaluation[~evaluation["metric"].str.startswith("calibration")]
    yield dg.Output(evaluation, output_name="prediction_evaluation", metadata={
        "metrics": dg.MetadataValue.md(headline.to_markdown(index=False)),
        "calibration": figure(plots.calibration_figure(evaluation))})


rfm_schema = schema_check(keys.RFM, CustomerRfm)
rfm_segment_summary_schema = schema_check(keys.RFM_SEGMENT_SUMMARY, SegmentSummary)
cluster_model_selection_schema = schema_check(keys.CLUSTER_MODEL_SELECTION, ModelSelection)
customer_clusters_schema = schema_check(keys.CUSTOMER_CLUSTERS, CustomerClusters)
cluster_profiles_schema = schema_check(keys.CLUSTER_PROFILES, ClusterProfiles)
segment_cluster_crosstab_schema = schema_check(keys.SEGMENT_CLUSTER_CROSSTAB, SegmentClusterCrosstab)
customer_predictions_schema = schema_check(keys.CUSTOMER_PREDICTIONS, CustomerPredictions)
prediction_evaluation_schema = schema_check(keys.PREDICTION_EVALUATION, PredictionEvaluation)
customer_predictions_history = history_check(keys.CUSTOMER_PREDICTIONS, what="the purchase predictions")
prediction_evaluation_history = history_check(keys.PREDICTION_EVALUATION, what="the prediction evaluation")

RFM_SQL = """
WITH reference AS (
    SELECT CAST(max(invoice_date) AS DATE) + 1 AS reference_date FROM staging.cleaned_transactions
), recomputed AS (
    SELECT customer_id,
           date_diff('day', CAST(max(invoice_date) AS DATE), (SELECT reference_date FROM reference)) AS recency_days,
           count(DISTINCT invoice) AS frequency,
           round(sum(revenue), 2) AS monetary
    FROM staging.cleaned_transactions
    WHERE customer_id IS NOT NULL
    GROUP BY customer_id
)
SELECT
    (SELECT count(*) FROM recomputed) AS expected_customers,
    (SELECT count(*) FROM analytics.rfm) AS actual_customers,
    (SELECT count(*) FROM recomputed r FULL OUTER JOIN analytics.rfm a USING (customer_id)
     WHERE a.customer_id IS NULL OR r.customer_id IS NULL
        OR a.recency_days <> r.recency_days OR a.frequency <> r.frequency
        OR abs(a.monetary - r.monetary) > 0.005) AS mismatches
"""


@dg.asset_check(asset=keys.RFM, additional_deps=[keys.CLEANED_TRANSACTIONS], blocking=True,
                description="Recency, frequency and monetary equal an independent SQL recomputation from "
                            "staging.cleaned_transactions, customer by customer.")
def rfm_matches_sql(warehouse: Warehouse) -> dg.AssetCheckResult:
    """RFM recomputed in SQL on the warehouse agrees with the table, customer by customer."""
    with warehouse.connect() as conn:
        expected, actual, mismatches = conn.execute(RFM_SQL).fetchone()
    return dg.AssetCheckResult(passed=bool(mismatches == 0 and expected == actual),
                               metadata={"expected_customers": expected, "actual_customers": actual,
                                         "mismatches": mismatches})
