"""The raw contract: the columns every source is read into, and the header of the UCI exports they come from.

One definition for the readers, the synthetic generator, ingest, cleaning and the schemas.
"""

from __future__ import annotations

#: The header of an Online Retail II export (either sheet of the UCI workbook, or its CSV), in order.
UCI_HEADER: tuple[str, ...] = (
    "Invoice",
    "StockCode",
    "Description",
    "Quantity",
    "InvoiceDate",
    "Price",
    "Customer ID",
    "Country",
)

#: The business columns of the raw contract (snake_case, one per UCI header column, in the same order).
BUSINESS_COLUMNS: list[str] = [
    "invoice",
    "stock_code",
    "description",
    "quantity",
    "invoice_date",
    "price",
    "customer_id",
    "country",
]

#: Lineage: where each raw line came from (file, sheet and 1-based data row).
LINEAGE_COLUMNS: list[str] = ["source_file", "source_sheet", "source_row"]

#: Every column of ``raw.raw_invoices``, in order.
RAW_COLUMNS: list[str] = [*BUSINESS_COLUMNS, *LINEAGE_COLUMNS]
