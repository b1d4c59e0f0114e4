"""Pandera models of the EDA tables (``pipeline.eda.summaries``).

What belongs here: one ``DataFrameModel`` per table, strict and coercing, with the ranges and cross-column
rules a reader relies on. No transformations.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from pipeline.common.schemas import StrictTable, close, share


def _revenue_rank(ties: str) -> Any:
    """Field of a rank by revenue, 1 = largest, unique; ``ties`` names what breaks ties."""
    return pa.Field(ge=1, unique=True, description=f"1 = largest revenue (ties by {ties}).")


class _RevenueRanked(StrictTable):
    """Base of the tables ranked by their ``revenue`` column in a ``revenue_rank`` column."""

    @pa.dataframe_check
    @classmethod
    def rank_follows_revenue(cls, df: pd.DataFrame) -> bool:
        """Ranks are 1..n and never rank a smaller revenue above a larger one."""
        ordered = df.sort_values("revenue_rank")
        return bool(
            (ordered["revenue_rank"].to_numpy() == np.arange(1, len(df) + 1)).all()
            and ordered["revenue"].is_monotonic_decreasing
        )


class MonthlySales(StrictTable):
    """One row per calendar month with sales: revenue, customers and returns."""

    month: Series[pd.Timestamp] = pa.Field(unique=True, description="First day of the calendar month.")
    revenue: Series[float] = pa.Field(
        ge=0, description="Revenue of the month's sales lines, GBP (guests included)."
    )
    invoices: Series[int] = pa.Field(ge=1, description="Distinct sales invoices in the month.")
    lines: Series[int] = pa.Field(ge=1, description="Sales lines in the month.")
    customers: Series[int] = pa.Field(
        ge=0, description="Distinct registered customers who bought in the month."
    )
    new_customers: Series[int] = pa.Field(
        ge=0, description="Customers whose first purchase in the data falls in the month."
    )
    returning_customers: Series[int] = pa.Field(ge=0, description="customers - new_customers.")
    avg_basket_value: Series[float] = pa.Field(ge=0, description="revenue / invoices, GBP.")
    cancelled_lines: Series[int] = pa.Field(
        ge=0, description="Product cancellation lines (returns) dated in the month."
    )
    cancellation_rate: Series[float] = pa.Field(
        ge=0, lt=1, description="cancelled_lines / (cancelled_lines + lines)."
    )
    returns_value: Series[float] = pa.Field(
        ge=0, description="Value of the month's product cancellations, GBP."
    )

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
        return close(df["avg_basket_value"], df["revenue"] / df["invoices"])

    @pa.dataframe_check
    @classmethod
    def rate_matches_counts(cls, df: pd.DataFrame) -> Series[bool]:
        """``cancellation_rate = cancelled_lines / (cancelled_lines + lines)``."""
        return close(df["cancellation_rate"], df["cancelled_lines"] / (df["cancelled_lines"] + df["lines"]))


class CountrySales(_RevenueRanked):
    """One row per country, ranked by revenue."""

    country: Series[str] = pa.Field(unique=True, description="Customer's country.")
    revenue: Series[float] = pa.Field(ge=0, description="Revenue of the country's sales lines, GBP.")
    customers: Series[int] = pa.Field(ge=0, description="Distinct registered customers in the country.")
    invoices: Series[int] = pa.Field(ge=1, description="Distinct sales invoices.")
    lines: Series[int] = pa.Field(ge=1, description="Sales lines.")
    revenue_share: Series[float] = share("Share of total revenue.")
    revenue_rank: Series[int] = _revenue_rank("country name")

    @pa.dataframe_check
    @classmethod
    def shares_sum_to_one(cls, df: pd.DataFrame) -> bool:
        """Revenue shares add up to 1."""
        return bool(np.isclose(df["revenue_share"].sum(), 1.0))


class TopProducts(_RevenueRanked):
    """One row per sold stock code, ranked by revenue, with returns."""

    stock_code: Series[str] = pa.Field(unique=True, description="Product code.")
    description: Series[str] = pa.Field(
        nullable=True, description="Most frequent description of the product on sales lines."
    )
    revenue: Series[float] = pa.Field(ge=0, description="Revenue of the product over all sales lines, GBP.")
    quantity: Series[int] = pa.Field(ge=1, description="Units sold.")
    invoices: Series[int] = pa.Field(ge=1, description="Distinct invoices holding the product.")
    customers: Series[int] = pa.Field(ge=0, description="Distinct registered customers who bought it.")
    returned_quantity: Series[int] = pa.Field(
        ge=0, description="Units on the product's cancellation lines (returns)."
    )
    return_rate: Series[float] = pa.Field(
        ge=0,
        description="returned_quantity / quantity (can exceed 1 for goods bought before the data starts).",
    )
    revenue_rank: Series[int] = _revenue_rank("stock code")

    @pa.dataframe_check
    @classmethod
    def return_rate_matches(cls, df: pd.DataFrame) -> Series[bool]:
        """``return_rate = returned_quantity / quantity``."""
        return close(df["return_rate"], df["returned_quantity"] / df["quantity"])


class CohortRetention(StrictTable):
    """One row per acquisition cohort and month since acquisition."""

    cohort_month: Series[pd.Timestamp] = pa.Field(
        description="Month of the cohort's first purchase in the data."
    )
    months_since_first: Series[int] = pa.Field(
        ge=0, description="Months since the cohort month; 0 = acquisition month."
    )
    active_customers: Series[int] = pa.Field(
        ge=0, description="Cohort customers with at least one invoice in that month."
    )
    cohort_size: Series[int] = pa.Field(ge=1, description="Customers in the cohort.")
    retention_rate: Series[float] = share("active_customers / cohort_size.")

    @pa.dataframe_check
    @classmethod
    def active_within_cohort(cls, df: pd.DataFrame) -> Series[bool]:
        """No more active customers than the cohort holds, and the rate is their ratio."""
        return (df["active_customers"] <= df["cohort_size"]) & close(
            df["retention_rate"], df["active_customers"] / df["cohort_size"]
        )

    @pa.dataframe_check
    @classmethod
    def whole_cohort_active_first(cls, df: pd.DataFrame) -> Series[bool]:
        """In the acquisition month the whole cohort is active."""
        return (df["months_since_first"] != 0) | (df["active_customers"] == df["cohort_size"])

    class Config:
        """One row per cohort and month since acquisition."""

        unique = ["cohort_month", "months_since_first"]
