"""Pandera models of the ingest and staging tables (the analyst contract for ``raw`` and ``staging``).

Belongs here: one ``DataFrameModel`` per warehouse table of the foundation stage. Models of later stages live
in the ``schemas`` module of their room (``pipeline.customers.schemas``...). No Dagster imports: the
blocking checks that use these models are built in ``assets.checks``.
"""

from __future__ import annotations

import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from pipeline.common.codes import STOCK_CODE_PATTERN, is_non_product_code
from pipeline.staging.cleaning import REASONS


class _SourceLine(pa.DataFrameModel):
    """A source line as received, in source column order, then its lineage key (file, sheet, row).

    The tables below are source lines: they inherit these columns (and their order) and restate only a
    column whose rules or description differ, which keeps it in its place.
    """

    invoice: Series[str] = pa.Field(nullable=True, description="Invoice number as received.")
    stock_code: Series[str] = pa.Field(nullable=True, description="Stock code as received.")
    description: Series[str] = pa.Field(nullable=True, description="Description as received.")
    quantity: Series[pd.Int64Dtype] = pa.Field(nullable=True, description="Units; negative for returns.")
    invoice_date: Series[pd.Timestamp] = pa.Field(nullable=True, description="Invoice date and time.")
    price: Series[float] = pa.Field(nullable=True, description="Unit price in GBP.")
    customer_id: Series[pd.Int64Dtype] = pa.Field(nullable=True, description="Customer; null = guest.")
    country: Series[str] = pa.Field(nullable=True, description="Customer's country.")
    source_file: Series[str] = pa.Field(description="Lineage: source file.")
    source_sheet: Series[str] = pa.Field(nullable=True, description="Lineage: worksheet.")
    source_row: Series[int] = pa.Field(ge=1, description="Lineage: row in file or sheet.")

    class Config:
        """Strict columns, coerced types, one row per lineage key."""

        strict = True
        coerce = True
        unique = ["source_file", "source_sheet", "source_row"]


class RawInvoices(_SourceLine):
    """``raw.raw_invoices``: one row per source line, as received but with normalized types."""

    invoice: Series[str] = pa.Field(
        nullable=True, description="Invoice number; C = cancellation, A = adjustment."
    )
    stock_code: Series[str] = pa.Field(nullable=True, description="Stock code as received (stripped).")
    description: Series[str] = pa.Field(
        nullable=True, description="Product description as received (stripped)."
    )
    customer_id: Series[pd.Int64Dtype] = pa.Field(nullable=True, description="Customer number; null = guest.")
    source_file: Series[str] = pa.Field(description="File (or synthetic source URI) the line came from.")
    source_sheet: Series[str] = pa.Field(nullable=True, description="Worksheet name for .xlsx sources.")
    source_row: Series[int] = pa.Field(ge=1, description="Row number in the file or sheet (header = row 1).")


class CleanedTransactions(_SourceLine):
    """``staging.cleaned_transactions``: one row per sales line fit for analysis."""

    invoice: Series[str] = pa.Field(str_matches=r"^\d+$", description="Invoice number (sales invoices only).")
    stock_code: Series[str] = pa.Field(
        str_matches=STOCK_CODE_PATTERN, description="Product code, upper case."
    )
    description: Series[str] = pa.Field(nullable=True, description="Product description.")
    quantity: Series[int] = pa.Field(gt=0, description="Units sold.")
    invoice_date: Series[pd.Timestamp] = pa.Field(description="Invoice date and time.")
    price: Series[float] = pa.Field(gt=0, description="Unit price in GBP.")
    customer_id: Series[pd.Int64Dtype] = pa.Field(nullable=True, ge=1, description="Customer; null = guest.")
    country: Series[str] = pa.Field(description="Customer's country.")
    revenue: Series[float] = pa.Field(gt=0, description="quantity x price, GBP.")

    # Columns each dataframe-level check reads: the SQL route of the schema check loads only these.
    _check_columns = {"revenue_is_quantity_times_price": ("revenue", "quantity", "price")}

    # A code's verdict depends on the code alone, so the SQL route runs it on distinct codes only.
    @pa.check("stock_code", name="is_product_code", determined_by_unique=True)
    def stock_code_is_a_product(cls, codes: Series[str]) -> Series[bool]:  # noqa: N805
        """No postage, fee, manual or voucher codes."""
        return ~is_non_product_code(codes)

    @pa.dataframe_check
    def revenue_is_quantity_times_price(cls, df: pd.DataFrame) -> Series[bool]:  # noqa: N805
        """Revenue equals quantity times price."""
        tolerance = 1e-9 * df["revenue"].abs().clip(lower=1)
        return (df["revenue"] - df["quantity"] * df["price"]).abs() <= tolerance


class RejectedRows(_SourceLine):
    """``staging.rejected_rows``: every raw line not in ``cleaned_transactions``, with the reason."""

    reason: Series[str] = pa.Field(isin=list(REASONS), description="Why the line is not a clean sale.")
