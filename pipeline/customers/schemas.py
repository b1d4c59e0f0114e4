"""Pandera models for the customer-analytics tables (RFM, clusters, predictions).

What belongs here: one ``DataFrameModel`` per table produced by ``pipeline.customers.rfm_segments``,
``pipeline.customers.clustering`` and ``pipeline.customers.prediction``,
with column types, ranges, uniqueness, nullability and the cross-column rules each table guarantees. Models
are strict (no extra columns) and coerce types, so they double as the column contract of each table. No
transformation logic lives here.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from pipeline.common.schemas import TOLERANCE, StrictTable, close, share
from pipeline.customers.rfm_segments import SEGMENTS, assign_segment

_MODELS = ("kmeans", "gmm")
_COVARIANCE_TYPES = ("full", "diag", "tied", "spherical")


def _recency(description: str, *, nullable: bool = False) -> Any:
    """Field of a recency in days (the R of RFM): never negative."""
    return pa.Field(ge=0, nullable=nullable, description=description)


def _frequency(description: str, *, nullable: bool = False) -> Any:
    """Field of a frequency in invoices (the F of RFM): at least one."""
    return pa.Field(ge=1, nullable=nullable, description=description)


def _monetary(description: str, *, nullable: bool = False) -> Any:
    """Field of a spend in GBP (the M of RFM): never negative."""
    return pa.Field(ge=0, nullable=nullable, description=description)


def _quintile_score(description: str) -> Any:
    """Field of an RFM quintile score, 1 to 5."""
    return pa.Field(in_range={"min_value": 1, "max_value": 5}, description=description)


def _segment(description: str, *, unique: bool = False) -> Any:
    """Field of a named RFM segment."""
    return pa.Field(isin=SEGMENTS, unique=unique, description=description)


def _clustering_model(description: str = "'kmeans' or 'gmm'.") -> Any:
    """Field naming the clustering model: k-means or the Gaussian mixture."""
    return pa.Field(isin=_MODELS, description=description)


def _cluster(description: str) -> Any:
    """Field of a cluster number within its model, from 0."""
    return pa.Field(ge=0, description=description)


class _CustomerTable(StrictTable):
    """Base of the tables with one row per customer: ``customer_id`` comes first."""

    customer_id: Series[int] = pa.Field(unique=True, description="Customer number.")


class CustomerRfm(_CustomerTable):
    """One row per registered customer: RFM metrics, quintile scores and rule-based segment."""

    recency_days: Series[int] = _recency(
        "Days from the last purchase date to the reference date (day after the last sale)."
    )
    frequency: Series[int] = _frequency("Distinct invoices.")
    monetary: Series[float] = _monetary("Sum of the customer's line revenue, GBP (rounded to pence).")
    r_score: Series[int] = _quintile_score("Recency quintile score, 5 = most recent.")
    f_score: Series[int] = _quintile_score("Frequency quintile score, 5 = most invoices.")
    m_score: Series[int] = _quintile_score("Monetary quintile score, 5 = highest spend.")
    fm_score: Series[int] = _quintile_score(
        "Mean of f_score and m_score rounded half up; the value axis of the segment grid."
    )
    rfm_score: Series[str] = pa.Field(
        str_matches=r"^[1-5]{3}$", description="The three scores as a label, e.g. '545'."
    )
    segment: Series[str] = _segment("Named RFM segment from the R x FM grid (Champions ... Lost).")
    first_purchase_date: Series[pd.Timestamp] = pa.Field(description="Date of the first purchase.")
    last_purchase_date: Series[pd.Timestamp] = pa.Field(description="Date of the last purchase.")
    tenure_days: Series[int] = pa.Field(
        ge=0, description="Days from the first purchase date to the reference date."
    )
    avg_basket_value: Series[float] = pa.Field(ge=0, description="monetary / frequency, GBP.")
    returns_value: Series[float] = pa.Field(
        ge=0, nullable=True, description="Value of the customer's product cancellations (returns), GBP."
    )

    @pa.dataframe_check
    @classmethod
    def rfm_score_concatenates(cls, df: pd.DataFrame) -> Series[bool]:
        """``rfm_score`` spells the R, F and M scores."""
        expected = df["r_score"].astype(str) + df["f_score"].astype(str) + df["m_score"].astype(str)
        return df["rfm_score"] == expected

    @pa.dataframe_check
    @classmethod
    def fm_is_rounded_mean(cls, df: pd.DataFrame) -> Series[bool]:
        """``fm_score`` is the mean of F and M rounded half up."""
        return df["fm_score"] == (df["f_score"] + df["m_score"] + 1) // 2

    @pa.dataframe_check
    @classmethod
    def segment_follows_grid(cls, df: pd.DataFrame) -> Series[bool]:
        """The segment is the grid cell of the R and FM scores."""
        return df["segment"] == assign_segment(df["r_score"], df["fm_score"])

    @pa.dataframe_check
    @classmethod
    def dates_consistent(cls, df: pd.DataFrame) -> Series[bool]:
        """First purchase before last, tenure covers recency, and the day counts agree with the dates."""
        span = (df["last_purchase_date"] - df["first_purchase_date"]).dt.days
        return (span >= 0) & (df["tenure_days"] - df["recency_days"] == span)

    @pa.dataframe_check
    @classmethod
    def basket_is_monetary_per_invoice(cls, df: pd.DataFrame) -> Series[bool]:
        """``avg_basket_value = monetary / frequency``."""
        return close(df["avg_basket_value"], df["monetary"] / df["frequency"])


class SegmentSummary(StrictTable):
    """One row per RFM segment (all eleven), with size, value and a marketing action."""

    segment: Series[str] = _segment("Named RFM segment.", unique=True)
    customers: Series[int] = pa.Field(ge=0, description="Customers in the segment.")
    customer_share: Series[float] = share("Share of all customers.")
    revenue: Series[float] = pa.Field(ge=0, description="Sum of the segment's monetary values, GBP.")
    revenue_share: Series[float] = share("Share of all customers' revenue.")
    avg_recency_days: Series[float] = _recency(
        "Mean recency in days; null for an empty segment.", nullable=True
    )
    avg_frequency: Series[float] = _frequency(
        "Mean number of invoices; null for an empty segment.", nullable=True
    )
    avg_monetary: Series[float] = _monetary("Mean spend, GBP; null for an empty segment.", nullable=True)
    marketing_action: Series[str] = pa.Field(
        str_length={"min_value": 10}, description="Recommended marketing action for the segment."
    )

    @pa.dataframe_check
    @classmethod
    def all_segments(cls, df: pd.DataFrame) -> bool:
        """Every segment is listed, empty or not."""
        return set(df["segment"]) == set(SEGMENTS)

    @pa.dataframe_check
    @classmethod
    def shares_sum_to_one(cls, df: pd.DataFrame) -> bool:
        """Customer and revenue shares each add up to 1 (or the table is all empty)."""
        if df["customers"].sum() == 0:
            return True
        return bool(
            np.isclose(df["customer_share"].sum(), 1.0) and np.isclose(df["revenue_share"].sum(), 1.0)
        )

    @pa.dataframe_check
    @classmethod
    def averages_only_when_populated(cls, df: pd.DataFrame) -> Series[bool]:
        """Averages are missing exactly for empty segments."""
        return df["avg_monetary"].isna() == (df["customers"] == 0)


class ModelSelection(StrictTable):
    """One row per fitted clustering model (k-means or a Gaussian-mixture covariance type) and k."""

    model: Series[str] = _clustering_model("'kmeans' or 'gmm' (Gaussian mixture).")
    k: Series[int] = pa.Field(ge=2, description="Number of clusters or mixture components.")
    covariance_type: Series[str] = pa.Field(
        isin=_COVARIANCE_TYPES, nullable=True, description="Mixture covariance type; null for k-means."
    )
    inertia: Series[float] = pa.Field(
        ge=0, nullable=True, description="k-means within-cluster sum of squares; null for mixtures."
    )
    silhouette: Series[float] = pa.Field(
        ge=-1, le=1, nullable=True, description="Mean silhouette on a seeded sample (higher is better)."
    )
    davies_bouldin: Series[float] = pa.Field(
        ge=0, nullable=True, description="Davies-Bouldin index (lower is better)."
    )
    calinski_harabasz: Series[float] = pa.Field(
        ge=0, nullable=True, description="Calinski-Harabasz index (higher is better)."
    )
    bic: Series[float] = pa.Field(
        nullable=True, description="Mixture BIC (lower is better); null for k-means."
    )
    aic: Series[float] = pa.Field(
        nullable=True, description="Mixture AIC (lower is better); null for k-means."
    )

    @pa.dataframe_check
    @classmethod
    def model_specific_columns(cls, df: pd.DataFrame) -> Series[bool]:
        """k-means rows carry inertia only; mixture rows carry a covariance type, BIC and AIC."""
        kmeans_ok = df["covariance_type"].isna() & df["inertia"].notna() & df["bic"].isna()
        gmm_ok = df["covariance_type"].notna() & df["inertia"].isna() & df["bic"].notna() & df["aic"].notna()
        return kmeans_ok.where(df["model"] == "kmeans", gmm_ok)

    @pa.dataframe_check
    @classmethod
    def one_row_per_fit(cls, df: pd.DataFrame) -> bool:
        """No (model, k, covariance type) is listed twice."""
        return not df[["model", "k", "covariance_type"]].fillna("-").duplicated().any()


class CustomerClusters(_CustomerTable):
    """One row per customer: k-means and Gaussian-mixture cluster with the mixture's confidence."""

    kmeans_cluster: Series[int] = _cluster("k-means cluster; 0 = highest mean monetary value.")
    gmm_cluster: Series[int] = _cluster("Gaussian-mixture component; 0 = highest mean monetary value.")
    gmm_probability: Series[float] = pa.Field(
        ge=0, le=1, description="Posterior probability of the assigned mixture component."
    )


class ClusterProfiles(StrictTable):
    """One row per model and cluster: size, mean RFM, revenue share and a readable name."""

    model: Series[str] = _clustering_model()
    cluster: Series[int] = _cluster("Cluster number; 0 = highest mean monetary value.")
    customers: Series[int] = pa.Field(ge=0, description="Customers in the cluster.")
    mean_recency_days: Series[float] = _recency("Mean recency of its customers, days.", nullable=True)
    mean_frequency: Series[float] = _frequency("Mean number of invoices of its customers.", nullable=True)
    mean_monetary: Series[float] = _monetary("Mean spend of its customers, GBP.", nullable=True)
    revenue_share: Series[float] = share("Share of the model's total revenue.")
    name: Series[str] = pa.Field(
        str_length={"min_value": 1}, description="Readable name derived from the profile."
    )

    @pa.dataframe_check
    @classmethod
    def shares_sum_to_one(cls, df: pd.DataFrame) -> bool:
        """Within each model the revenue shares add up to 1."""
        return bool(np.allclose(df.groupby("model")["revenue_share"].sum(), 1.0))

    @pa.dataframe_check
    @classmethod
    def numbered_by_value(cls, df: pd.DataFrame) -> bool:
        """Within each model, cluster 0 has the highest mean monetary value, and so on down."""
        return all(
            part.sort_values("cluster")["mean_monetary"].dropna().is_monotonic_decreasing
            for _, part in df.groupby("model")
        )

    class Config:
        """One row per model and cluster; names unique within a model."""

        unique = [["model", "cluster"], ["model", "name"]]


class SegmentClusterCrosstab(StrictTable):
    """Customers per RFM segment and cluster, per model (long form)."""

    segment: Series[str] = _segment("Named RFM segment.")
    model: Series[str] = _clustering_model()
    cluster: Series[int] = _cluster("Cluster number within the model.")
    customers: Series[int] = pa.Field(ge=0, description="Customers in both the segment and the cluster.")

    @pa.dataframe_check
    @classmethod
    def same_customers_per_model(cls, df: pd.DataFrame) -> bool:
        """Both models partition the same customers."""
        totals = df.groupby("model")["customers"].sum()
        return bool((totals == totals.iloc[0]).all()) if len(totals) else True

    class Config:
        """One row per segment, model and cluster."""

        unique = ["segment", "model", "cluster"]


class CustomerFeatures(_CustomerTable):
    """Point-in-time features of one customer (see ``prediction.build_features``)."""

    recency_days: Series[int] = _recency("Days from the last purchase to the cutoff.")
    frequency: Series[int] = _frequency("Distinct invoices before the cutoff.")
    monetary: Series[float] = _monetary("Spend before the cutoff, GBP.")
    tenure_days: Series[int] = pa.Field(ge=0, description="Days from the first to the last purchase.")
    days_since_first_purchase: Series[int] = pa.Field(
        ge=0, description="Days from the first purchase to the cutoff."
    )
    purchase_days: Series[int] = pa.Field(ge=1, description="Distinct dates with a purchase.")
    mean_gap_days: Series[float] = pa.Field(
        ge=1, nullable=True, description="Mean days between purchase days; null for single-day buyers."
    )
    std_gap_days: Series[float] = pa.Field(
        ge=0, nullable=True, description="Standard deviation of those gaps; null for single-day buyers."
    )
    avg_basket_value: Series[float] = pa.Field(ge=0, description="monetary / frequency, GBP.")
    avg_lines_per_invoice: Series[float] = pa.Field(ge=1, description="Mean lines per invoice.")
    distinct_products: Series[int] = pa.Field(ge=1, description="Distinct products bought.")
    return_rate: Series[float] = pa.Field(
        ge=0, description="Value of product returns before the cutoff over monetary."
    )
    spend_last_90d: Series[float] = pa.Field(ge=0, description="Spend in the 90 days before the cutoff, GBP.")
    invoices_last_90d: Series[int] = pa.Field(ge=0, description="Invoices in the 90 days before the cutoff.")
    spend_last_90d_share: Series[float] = pa.Field(
        ge=0, le=1 + TOLERANCE, description="spend_last_90d / monetary."
    )
    q4_spend_share: Series[float] = pa.Field(
        ge=0, le=1 + TOLERANCE, description="Share of spend in October-December."
    )
    is_uk: Series[bool] = pa.Field(
        description="Whether most of the customer's lines ship to the United Kingdom."
    )

    @pa.dataframe_check
    @classmethod
    def days_consistent(cls, df: pd.DataFrame) -> Series[bool]:
        """Active span plus recency is the customer's age; single-day buyers have no gap statistics."""
        single = df["purchase_days"] == 1
        return (df["tenure_days"] + df["recency_days"] == df["days_since_first_purchase"]) & (
            single == df["mean_gap_days"].isna()
        )

    @pa.dataframe_check
    @classmethod
    def recent_within_total(cls, df: pd.DataFrame) -> Series[bool]:
        """Recent invoices are a subset of all invoices."""
        return df["invoices_last_90d"] <= df["frequency"]


class PurchaseLabels(_CustomerTable):
    """Whether and how much each known customer bought in a label window."""

    bought: Series[bool] = pa.Field(description="Whether the customer bought in the label window.")
    revenue: Series[float] = pa.Field(ge=0, description="Revenue in the label window, GBP.")

    @pa.dataframe_check
    @classmethod
    def revenue_iff_bought(cls, df: pd.DataFrame) -> Series[bool]:
        """Buyers have positive revenue, non-buyers none."""
        return df["bought"] == (df["revenue"] > 0)


class CustomerPredictions(_CustomerTable):
    """One row per customer with history: next-window purchase probability and revenue."""

    purchase_probability_90d: Series[float] = pa.Field(
        ge=0, le=1,
        description="Probability of at least one purchase in the 90 days after the reference date.",
    )
    predicted_revenue_90d: Series[float] = pa.Field(
        ge=0, description="Predicted revenue in those 90 days, GBP (P(buy) x E[revenue | buy])."
    )
    expected_value: Series[float] = pa.Field(
        ge=0, description="12-month CLV-style heuristic, GBP: predicted_revenue_90d x (1 + p + p^2 + p^3)."
    )

    @pa.dataframe_check
    @classmethod
    def value_covers_next_window(cls, df: pd.DataFrame) -> Series[bool]:
        """The 12-month value is at least the next window's revenue and at most four times it."""
        revenue = df["predicted_revenue_90d"]
        expected = df["expected_value"]
        return (expected >= revenue - TOLERANCE) & (expected <= 4 * revenue + TOLERANCE)


class PredictionEvaluation(StrictTable):
    """Test-window metrics of the prediction model and its baselines (long form)."""

    target: Series[str] = pa.Field(
        isin=("purchase", "revenue"), description="'purchase' (classification) or 'revenue' (regression)."
    )
    model: Series[str] = pa.Field(
        isin=("model", "baseline_recency", "baseline_last_90d"),
        description="'model' or a baseline ('baseline_recency', 'baseline_last_90d').",
    )
    metric: Series[str] = pa.Field(
        str_matches=r"^(roc_auc|brier|mae|rmse|calibration_bin_\d+_(predicted|observed))$",
        description="roc_auc, brier, mae, rmse or calibration_bin_<k>_predicted/observed.",
    )
    value: Series[float] = pa.Field(description="Metric value on the test window.")
    n_customers: Series[int] = pa.Field(
        ge=1, description="Test customers (or customers in the calibration bin)."
    )
    cutoff_date: Series[pd.Timestamp] = pa.Field(description="Start of the test window.")

    @pa.dataframe_check
    @classmethod
    def bounded_metrics(cls, df: pd.DataFrame) -> Series[bool]:
        """AUC, Brier and calibration values lie in [0, 1]; errors are non-negative."""
        unit = df["metric"].str.match(r"^(roc_auc|brier|calibration_)")
        return df["value"].between(0, 1).where(unit, df["value"] >= 0)

    @pa.dataframe_check
    @classmethod
    def metric_fits_target(cls, df: pd.DataFrame) -> Series[bool]:
        """Purchase rows hold classification metrics, revenue rows hold errors."""
        revenue_metric = df["metric"].isin(["mae", "rmse"])
        return revenue_metric == (df["target"] == "revenue")

    class Config:
        """One row per target, model and metric."""

        unique = ["target", "model", "metric"]
