"""Pandera models for the customer-analytics tables (EDA, RFM, clusters, predictions).

What belongs here: one ``DataFrameModel`` per table produced by ``pipeline.eda``, ``pipeline.customers``,
``pipeline.clustering`` and ``pipeline.prediction``, with column types, ranges, uniqueness, nullability and
the cross-column rules each table guarantees. Models are strict (no extra columns) and coerce types, so
they double as the column contract of each table. No transformation logic lives here.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from pipeline.customers import SEGMENTS, assign_segment

_TOL = 1e-6
_MODELS = ("kmeans", "gmm")
_COVARIANCE_TYPES = ("full", "diag", "tied", "spherical")


def _close(left: pd.Series, right: pd.Series, *, rel: float = 1e-9) -> pd.Series:
    """Element-wise closeness that treats two missing values as equal."""
    both_missing = left.isna() & right.isna()
    return both_missing | np.isclose(left, right, rtol=rel, atol=_TOL)


class MonthlySales(pa.DataFrameModel):
    """One row per calendar month with sales: revenue, customers and returns."""

    month: Series[pd.Timestamp] = pa.Field(unique=True)
    revenue: Series[float] = pa.Field(ge=0)
    invoices: Series[int] = pa.Field(ge=1)
    lines: Series[int] = pa.Field(ge=1)
    customers: Series[int] = pa.Field(ge=0)
    new_customers: Series[int] = pa.Field(ge=0)
    returning_customers: Series[int] = pa.Field(ge=0)
    avg_basket_value: Series[float] = pa.Field(ge=0)
    cancelled_lines: Series[int] = pa.Field(ge=0)
    cancellation_rate: Series[float] = pa.Field(ge=0, lt=1)
    returns_value: Series[float] = pa.Field(ge=0)

    @pa.check("month")
    @classmethod
    def first_of_month(cls, month: Series[pd.Timestamp]) -> Series[bool]:
        """Months are stamped on their first day at midnight."""
        return (month.dt.day == 1) & (month == month.dt.normalize())

    @pa.dataframe_check
    @classmethod
    def customers_split(cls, df: pd.DataFrame) -> Series[bool]:
        """Every customer of the month is either new or returning."""
        return df["new_customers"] + df["returning_customers"] == df["customers"]

    @pa.dataframe_check
    @classmethod
    def basket_is_revenue_per_invoice(cls, df: pd.DataFrame) -> Series[bool]:
        """``avg_basket_value = revenue / invoices``."""
        return _close(df["avg_basket_value"], df["revenue"] / df["invoices"])

    @pa.dataframe_check
    @classmethod
    def rate_matches_counts(cls, df: pd.DataFrame) -> Series[bool]:
        """``cancellation_rate = cancelled_lines / (cancelled_lines + lines)``."""
        return _close(df["cancellation_rate"], df["cancelled_lines"] / (df["cancelled_lines"] + df["lines"]))

    class Config:
        """Strict columns, coerced types."""

        strict = True
        coerce = True


class CountrySales(pa.DataFrameModel):
    """One row per country, ranked by revenue."""

    country: Series[str] = pa.Field(unique=True)
    revenue: Series[float] = pa.Field(ge=0)
    customers: Series[int] = pa.Field(ge=0)
    invoices: Series[int] = pa.Field(ge=1)
    lines: Series[int] = pa.Field(ge=1)
    revenue_share: Series[float] = pa.Field(ge=0, le=1)
    revenue_rank: Series[int] = pa.Field(ge=1, unique=True)

    @pa.dataframe_check
    @classmethod
    def shares_sum_to_one(cls, df: pd.DataFrame) -> bool:
        """Revenue shares add up to 1."""
        return bool(np.isclose(df["revenue_share"].sum(), 1.0))

    @pa.dataframe_check
    @classmethod
    def rank_follows_revenue(cls, df: pd.DataFrame) -> bool:
        """Ranks are 1..n and never rank a smaller revenue above a larger one."""
        ordered = df.sort_values("revenue_rank")
        return bool(
            (ordered["revenue_rank"].to_numpy() == np.arange(1, len(df) + 1)).all()
            and ordered["revenue"].is_monotonic_decreasing
        )

    class Config:
        """Strict columns, coerced types."""

        strict = True
        coerce = True


class TopProducts(pa.DataFrameModel):
    """One row per sold stock code, ranked by revenue, with returns."""

    stock_code: Series[str] = pa.Field(unique=True)
    description: Series[str] = pa.Field(nullable=True)
    revenue: Series[float] = pa.Field(ge=0)
    quantity: Series[int] = pa.Field(ge=1)
    invoices: Series[int] = pa.Field(ge=1)
    customers: Series[int] = pa.Field(ge=0)
    returned_quantity: Series[int] = pa.Field(ge=0)
    return_rate: Series[float] = pa.Field(ge=0)
    revenue_rank: Series[int] = pa.Field(ge=1, unique=True)

    @pa.dataframe_check
    @classmethod
    def return_rate_matches(cls, df: pd.DataFrame) -> Series[bool]:
        """``return_rate = returned_quantity / quantity``."""
        return _close(df["return_rate"], df["returned_quantity"] / df["quantity"])

    @pa.dataframe_check
    @classmethod
    def rank_follows_revenue(cls, df: pd.DataFrame) -> bool:
        """Ranks are 1..n and never rank a smaller revenue above a larger one."""
        ordered = df.sort_values("revenue_rank")
        return bool(
            (ordered["revenue_rank"].to_numpy() == np.arange(1, len(df) + 1)).all()
            and ordered["revenue"].is_monotonic_decreasing
        )

    class Config:
        """Strict columns, coerced types."""

        strict = True
        coerce = True


class CohortRetention(pa.DataFrameModel):
    """One row per acquisition cohort and month since acquisition."""

    cohort_month: Series[pd.Timestamp]
    months_since_first: Series[int] = pa.Field(ge=0)
    active_customers: Series[int] = pa.Field(ge=0)
    cohort_size: Series[int] = pa.Field(ge=1)
    retention_rate: Series[float] = pa.Field(ge=0, le=1)

    @pa.dataframe_check
    @classmethod
    def active_within_cohort(cls, df: pd.DataFrame) -> Series[bool]:
        """No more active customers than the cohort holds, and the rate is their ratio."""
        return (df["active_customers"] <= df["cohort_size"]) & _close(
            df["retention_rate"], df["active_customers"] / df["cohort_size"]
        )

    @pa.dataframe_check
    @classmethod
    def whole_cohort_active_first(cls, df: pd.DataFrame) -> Series[bool]:
        """In the acquisition month the whole cohort is active."""
        return (df["months_since_first"] != 0) | (df["active_customers"] == df["cohort_size"])

    class Config:
        """Strict columns, coerced types."""

        strict = True
        coerce = True
        unique = ["cohort_month", "months_since_first"]


class CustomerRfm(pa.DataFrameModel):
    """One row per registered customer: RFM metrics, quintile scores and rule-based segment."""

    customer_id: Series[int] = pa.Field(unique=True)
    recency_days: Series[int] = pa.Field(ge=0)
    frequency: Series[int] = pa.Field(ge=1)
    monetary: Series[float] = pa.Field(ge=0)
    r_score: Series[int] = pa.Field(in_range={"min_value": 1, "max_value": 5})
    f_score: Series[int] = pa.Field(in_range={"min_value": 1, "max_value": 5})
    m_score: Series[int] = pa.Field(in_range={"min_value": 1, "max_value": 5})
    fm_score: Series[int] = pa.Field(in_range={"min_value": 1, "max_value": 5})
    rfm_score: Series[str] = pa.Field(str_matches=r"^[1-5]{3}$")
    segment: Series[str] = pa.Field(isin=SEGMENTS)
    first_purchase_date: Series[pd.Timestamp]
    last_purchase_date: Series[pd.Timestamp]
    tenure_days: Series[int] = pa.Field(ge=0)
    avg_basket_value: Series[float] = pa.Field(ge=0)
    returns_value: Series[float] = pa.Field(ge=0, nullable=True)

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
        return _close(df["avg_basket_value"], df["monetary"] / df["frequency"])

    class Config:
        """Strict columns, coerced types."""

        strict = True
        coerce = True


class SegmentSummary(pa.DataFrameModel):
    """One row per RFM segment (all eleven), with size, value and a marketing action."""

    segment: Series[str] = pa.Field(isin=SEGMENTS, unique=True)
    customers: Series[int] = pa.Field(ge=0)
    customer_share: Series[float] = pa.Field(ge=0, le=1)
    revenue: Series[float] = pa.Field(ge=0)
    revenue_share: Series[float] = pa.Field(ge=0, le=1)
    avg_recency_days: Series[float] = pa.Field(ge=0, nullable=True)
    avg_frequency: Series[float] = pa.Field(ge=1, nullable=True)
    avg_monetary: Series[float] = pa.Field(ge=0, nullable=True)
    marketing_action: Series[str] = pa.Field(str_length={"min_value": 10})

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

    class Config:
        """Strict columns, coerced types."""

        strict = True
        coerce = True


class ModelSelection(pa.DataFrameModel):
    """One row per fitted clustering model (k-means or a Gaussian-mixture covariance type) and k."""

    model: Series[str] = pa.Field(isin=_MODELS)
    k: Series[int] = pa.Field(ge=2)
    covariance_type: Series[str] = pa.Field(isin=_COVARIANCE_TYPES, nullable=True)
    inertia: Series[float] = pa.Field(ge=0, nullable=True)
    silhouette: Series[float] = pa.Field(ge=-1, le=1, nullable=True)
    davies_bouldin: Series[float] = pa.Field(ge=0, nullable=True)
    calinski_harabasz: Series[float] = pa.Field(ge=0, nullable=True)
    bic: Series[float] = pa.Field(nullable=True)
    aic: Series[float] = pa.Field(nullable=True)

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

    class Config:
        """Strict columns, coerced types."""

        strict = True
        coerce = True


class CustomerClusters(pa.DataFrameModel):
    """One row per customer: k-means and Gaussian-mixture cluster with the mixture's confidence."""

    customer_id: Series[int] = pa.Field(unique=True)
    kmeans_cluster: Series[int] = pa.Field(ge=0)
    gmm_cluster: Series[int] = pa.Field(ge=0)
    gmm_probability: Series[float] = pa.Field(ge=0, le=1)

    class Config:
        """Strict columns, coerced types."""

        strict = True
        coerce = True


class ClusterProfiles(pa.DataFrameModel):
    """One row per model and cluster: size, mean RFM, revenue share and a readable name."""

    model: Series[str] = pa.Field(isin=_MODELS)
    cluster: Series[int] = pa.Field(ge=0)
    customers: Series[int] = pa.Field(ge=0)
    mean_recency_days: Series[float] = pa.Field(ge=0, nullable=True)
    mean_frequency: Series[float] = pa.Field(ge=1, nullable=True)
    mean_monetary: Series[float] = pa.Field(ge=0, nullable=True)
    revenue_share: Series[float] = pa.Field(ge=0, le=1)
    name: Series[str] = pa.Field(str_length={"min_value": 1})

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
        """Strict columns, coerced types."""

        strict = True
        coerce = True
        unique = [["model", "cluster"], ["model", "name"]]


class SegmentClusterCrosstab(pa.DataFrameModel):
    """Customers per RFM segment and cluster, per model (long form)."""

    segment: Series[str] = pa.Field(isin=SEGMENTS)
    model: Series[str] = pa.Field(isin=_MODELS)
    cluster: Series[int] = pa.Field(ge=0)
    customers: Series[int] = pa.Field(ge=0)

    @pa.dataframe_check
    @classmethod
    def same_customers_per_model(cls, df: pd.DataFrame) -> bool:
        """Both models partition the same customers."""
        totals = df.groupby("model")["customers"].sum()
        return bool((totals == totals.iloc[0]).all()) if len(totals) else True

    class Config:
        """Strict columns, coerced types."""

        strict = True
        coerce = True
        unique = ["segment", "model", "cluster"]


class CustomerFeatures(pa.DataFrameModel):
    """Point-in-time features of one customer (see ``prediction.build_features``)."""

    customer_id: Series[int] = pa.Field(unique=True)
    recency_days: Series[int] = pa.Field(ge=0)
    frequency: Series[int] = pa.Field(ge=1)
    monetary: Series[float] = pa.Field(ge=0)
    tenure_days: Series[int] = pa.Field(ge=0)
    days_since_first_purchase: Series[int] = pa.Field(ge=0)
    purchase_days: Series[int] = pa.Field(ge=1)
    mean_gap_days: Series[float] = pa.Field(ge=1, nullable=True)
    std_gap_days: Series[float] = pa.Field(ge=0, nullable=True)
    avg_basket_value: Series[float] = pa.Field(ge=0)
    avg_lines_per_invoice: Series[float] = pa.Field(ge=1)
    distinct_products: Series[int] = pa.Field(ge=1)
    return_rate: Series[float] = pa.Field(ge=0)
    spend_last_90d: Series[float] = pa.Field(ge=0)
    invoices_last_90d: Series[int] = pa.Field(ge=0)
    spend_last_90d_share: Series[float] = pa.Field(ge=0, le=1 + _TOL)
    q4_spend_share: Series[float] = pa.Field(ge=0, le=1 + _TOL)
    is_uk: Series[bool]

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

    class Config:
        """Strict columns, coerced types."""

        strict = True
        coerce = True


class PurchaseLabels(pa.DataFrameModel):
    """Whether and how much each known customer bought in a label window."""

    customer_id: Series[int] = pa.Field(unique=True)
    bought: Series[bool]
    revenue: Series[float] = pa.Field(ge=0)

    @pa.dataframe_check
    @classmethod
    def revenue_iff_bought(cls, df: pd.DataFrame) -> Series[bool]:
        """Buyers have positive revenue, non-buyers none."""
        return df["bought"] == (df["revenue"] > 0)

    class Config:
        """Strict columns, coerced types."""

        strict = True
        coerce = True


class CustomerPredictions(pa.DataFrameModel):
    """One row per customer with history: next-window purchase probability and revenue."""

    customer_id: Series[int] = pa.Field(unique=True)
    purchase_probability_90d: Series[float] = pa.Field(ge=0, le=1)
    predicted_revenue_90d: Series[float] = pa.Field(ge=0)
    expected_value: Series[float] = pa.Field(ge=0)

    @pa.dataframe_check
    @classmethod
    def value_covers_next_window(cls, df: pd.DataFrame) -> Series[bool]:
        """The 12-month value is at least the next window's revenue and at most four times it."""
        revenue = df["predicted_revenue_90d"]
        return (df["expected_value"] >= revenue - _TOL) & (df["expected_value"] <= 4 * revenue + _TOL)

    class Config:
        """Strict columns, coerced types."""

        strict = True
        coerce = True


class PredictionEvaluation(pa.DataFrameModel):
    """Test-window metrics of the prediction model and its baselines (long form)."""

    target: Series[str] = pa.Field(isin=("purchase", "revenue"))
    model: Series[str] = pa.Field(isin=("model", "baseline_recency", "baseline_last_90d"))
    metric: Series[str] = pa.Field(
        str_matches=r"^(roc_auc|brier|mae|rmse|calibration_bin_\d+_(predicted|observed))$"
    )
    value: Series[float]
    n_customers: Series[int] = pa.Field(ge=1)
    cutoff_date: Series[pd.Timestamp]

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
        """Strict columns, coerced types."""

        strict = True
        coerce = True
        unique = ["target", "model", "metric"]
