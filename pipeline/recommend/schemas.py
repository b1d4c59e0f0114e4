"""Pandera models of the SVD and recommender tables (made in ``svd``, ``serving`` and ``evaluation``).

What belongs here: one ``DataFrameModel`` per table those modules produce, strict and coercing, with the value
ranges and cross-column invariants a downstream reader relies on (one product per rank, no repeated product,
only real product codes, see :func:`pipeline.common.codes.is_product_code`...). No transformations, no Dagster
imports.

Factor tables have a variable number of ``factor_NN`` columns (``n_components`` is configurable), matched by a
regex column, so they stay strict: any other column is rejected.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from pipeline.common.codes import STOCK_CODE_PATTERN, is_product_code
from pipeline.recommend.settings import COMPONENT_NAMES, MODEL_NAMES, SETTINGS

FACTOR_COLUMN_PATTERN = r"^factor_\d{2,3}$"

# Ratios are sums of float64 values; allow rounding well below any meaningful difference.
_TOLERANCE = 1e-9


def _product_codes(codes: pd.Series) -> pd.Series:
    """Tell real product codes (no postage, fee, manual or voucher codes) in a stock-code column."""
    return pd.Series(is_product_code(codes), index=codes.index)


def _proportion(description: str, *, slack: float = 0) -> Any:
    """Field of a proportion in [0, 1]; ``slack`` allows float rounding above 1 for sums."""
    return pa.Field(ge=0, le=1 + slack, description=description)


def _factor_columns() -> Any:
    """Field matching every ``factor_NN`` column of a factor table (the last columns, after the key)."""
    return pa.Field(alias=FACTOR_COLUMN_PATTERN, regex=True, description="Latent factor.")


class _FactorTable(pa.DataFrameModel):
    """Base of the factor tables: a key, then ``factor_NN`` columns (declared with ``_factor_columns``)."""

    class Config:
        """Reject unknown columns and coerce dtypes."""

        strict = True
        coerce = True

    # Unnamed, so the check takes the method's name: a check named in the decorator keeps its name only in
    # the first model Pandera builds from it (``CheckInfo.to_check`` pops the name), not in the others.
    @pa.dataframe_check
    def has_factor_columns(cls, df: pd.DataFrame) -> bool:
        """At least one ``factor_NN`` column."""
        return bool(df.columns.str.fullmatch(FACTOR_COLUMN_PATTERN).any())


class ExplainedVariance(pa.DataFrameModel):
    """``analytics.svd_explained_variance``: one row per SVD component, in order."""

    component: Series[int] = pa.Field(ge=1, unique=True, description="Component number, 1 = largest.")
    singular_value: Series[float] = pa.Field(ge=0, description="Singular value (non-increasing).")
    explained_variance_ratio: Series[float] = _proportion(
        "Share of the matrix's column variance captured by the component."
    )
    cumulative_explained_variance_ratio: Series[float] = _proportion(
        "Running total of explained_variance_ratio.", slack=_TOLERANCE
    )

    class Config:
        """Reject unknown columns and coerce dtypes."""

        strict = True
        coerce = True

    @pa.dataframe_check(name="components_numbered_from_one")
    def _numbered(cls, df: pd.DataFrame) -> bool:
        return bool((df["component"].to_numpy() == np.arange(1, len(df) + 1)).all())

    @pa.dataframe_check(name="singular_values_non_increasing")
    def _non_increasing(cls, df: pd.DataFrame) -> bool:
        return bool((np.diff(df["singular_value"].to_numpy()) <= _TOLERANCE).all())

    @pa.dataframe_check(name="cumulative_is_running_sum")
    def _cumulative(cls, df: pd.DataFrame) -> bool:
        running = np.cumsum(df["explained_variance_ratio"].to_numpy())
        return bool(np.allclose(running, df["cumulative_explained_variance_ratio"].to_numpy(), atol=1e-7))


class CustomerFactors(_FactorTable):
    """``analytics.customer_factors``: one row per customer, latent factors ``U * Sigma`` in ``factor_NN``."""

    customer_id: Series[int] = pa.Field(ge=1, unique=True, description="Customer number.")
    factor: Series[float] = _factor_columns()


class ProductFactors(_FactorTable):
    """``analytics.product_factors``: one row per product, right singular vectors ``V`` in ``factor_NN``."""

    stock_code: Series[str] = pa.Field(
        unique=True, str_matches=STOCK_CODE_PATTERN, description="Product code."
    )
    description: Series[str] = pa.Field(nullable=True, description="Latest description of the product.")
    factor: Series[float] = _factor_columns()

    # A code's verdict depends on the code alone, so the SQL route runs it on distinct codes only.
    @pa.check("stock_code", name="is_product_code", determined_by_unique=True)
    def _stock_code_is_a_product(cls, codes: Series[str]) -> Series[bool]:
        return _product_codes(codes)


class Recommendations(pa.DataFrameModel):
    """``analytics.recommendations``: top-k products per customer and setting, with a reason."""

    customer_id: Series[int] = pa.Field(ge=1, description="Customer served.")
    rank: Series[int] = pa.Field(ge=1, description="1 = best recommendation.")
    stock_code: Series[str] = pa.Field(str_matches=STOCK_CODE_PATTERN, description="Recommended product.")
    description: Series[str] = pa.Field(description="Product description (the code when none is known).")
    score: Series[float] = pa.Field(
        description="Blended score; higher is better, comparable within a customer."
    )
    source: Series[str] = pa.Field(isin=list(COMPONENT_NAMES), description="Component contributing most.")
    reason: Series[str] = pa.Field(str_length={"min_value": 1}, description="Why, in words.")
    setting: Series[str] = pa.Field(
        isin=list(SETTINGS), description="'any' (repurchases allowed) or 'new_only' (never bought before)."
    )

    class Config:
        """Reject unknown columns, coerce dtypes; one product per rank and no product twice per customer."""

        strict = True
        coerce = True
        unique = ["setting", "customer_id", "rank"]

    # Columns each dataframe-level check reads: the SQL route of the schema check loads only these.
    _check_columns = {
        "distinct_products_per_customer": ("setting", "customer_id", "stock_code"),
        "ranks_consecutive_from_one": ("setting", "customer_id", "rank"),
        "scores_non_increasing_with_rank": ("setting", "customer_id", "rank", "score"),
    }

    # A code's verdict depends on the code alone, so the SQL route runs it on distinct codes only.
    @pa.check("stock_code", name="is_product_code", determined_by_unique=True)
    def _stock_code_is_a_product(cls, codes: Series[str]) -> Series[bool]:
        return _product_codes(codes)

    @pa.dataframe_check(name="distinct_products_per_customer")
    def _distinct_products(cls, df: pd.DataFrame) -> bool:
        return not df.duplicated(["setting", "customer_id", "stock_code"]).any()

    @pa.dataframe_check(name="ranks_consecutive_from_one")
    def _consecutive_ranks(cls, df: pd.DataFrame) -> bool:
        groups = df.groupby(["setting", "customer_id"], observed=True)["rank"]
        return bool((groups.max() == groups.size()).all())

    @pa.dataframe_check(name="scores_non_increasing_with_rank")
    def _ordered_scores(cls, df: pd.DataFrame) -> bool:
        ordered = df.sort_values(["setting", "customer_id", "rank"])
        same_list = (
            ordered[["setting", "customer_id"]].eq(ordered[["setting", "customer_id"]].shift()).all(axis=1)
        )
        rising = ordered["score"].diff() > _TOLERANCE
        return not (same_list & rising).any()


class AlsRecommendations(pa.DataFrameModel):
    """``analytics.als_recommendations``: top-k products per customer from Spark MLlib's implicit ALS."""

    customer_id: Series[int] = pa.Field(ge=1, description="Customer served.")
    rank: Series[int] = pa.Field(ge=1, description="1 = best recommendation.")
    stock_code: Series[str] = pa.Field(str_matches=STOCK_CODE_PATTERN, description="Recommended product.")
    score: Series[float] = pa.Field(description="Predicted preference (dot product of the ALS factors).")

    class Config:
        """Reject unknown columns, coerce dtypes; one product per rank and no product twice per customer."""

        strict = True
        coerce = True
        unique = ["customer_id", "rank"]


class RecommenderMetrics(pa.DataFrameModel):
    """``analytics.recommender_metrics``: temporal-holdout metrics, one row per model and setting."""

    model: Series[str] = pa.Field(isin=list(MODEL_NAMES), description="Component name or 'hybrid'.")
    setting: Series[str] = pa.Field(isin=list(SETTINGS), description="'any' or 'new_only'.")
    k: Series[int] = pa.Field(ge=1, description="Cut-off rank of every metric.")
    n_customers: Series[int] = pa.Field(ge=0, description="Customers evaluated in this setting.")
    precision_at_k: Series[float] = _proportion("Mean hits / k.")
    recall_at_k: Series[float] = _proportion("Mean hits / relevant products.")
    ndcg_at_k: Series[float] = _proportion("Mean normalised DCG at k.", slack=_TOLERANCE)
    hit_rate_at_k: Series[float] = _proportion("Share of customers with at least one hit.")
    catalogue_coverage: Series[float] = _proportion(
        "Distinct products recommended / products sold before the cutoff."
    )
    cutoff_date: Series[pd.Timestamp] = pa.Field(description="Training uses lines strictly before this.")
    test_end_date: Series[pd.Timestamp] = pa.Field(description="End (exclusive) of the test window.")
    params: Series[str] = pa.Field(description="JSON hyperparameters; blend weights for the hybrid.")

    class Config:
        """Reject unknown columns and coerce dtypes."""

        strict = True
        coerce = True
        unique = ["model", "setting"]

    @pa.dataframe_check(name="test_window_after_cutoff")
    def _window(cls, df: pd.DataFrame) -> pd.Series:
        return df["test_end_date"] > df["cutoff_date"]
