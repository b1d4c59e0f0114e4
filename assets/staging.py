"""Staging assets: clean sales lines and rejected lines with a reason. Logic lives in pipeline.cleaning."""


import dagster as dg
import pandas as pd

from assets import keys
from assets._metadata import preview
from assets._tables import table_out
from assets.checks import schema_check
from pipeline import cleaning
from pipeline.schemas import CleanedTransactions, RejectedRows
from resources import Warehouse

CLEANED_COMMENT = "Sales lines fit for analysis (guests included, no cancellations or non-product codes), with revenue."
_OWNERS = ("team:data-engineering",)
REJECTED_COMMENT = "Every raw line not in cleaned_transactions, with the reason; cancellations are the returns."


@dg.multi_asset(
    outs={
        "cleaned_transactions": table_out(keys.CLEANED_TRANSACTIONS, CleanedTransactions, CLEANED_COMMENT,
                                          owners=_OWNERS),
        "rejected_rows": table_out(keys.REJECTED_ROWS, RejectedRows, REJECTED_COMMENT, owners=_OWNERS),
    },
    ins=keys.ins(raw=keys.RAW_INVOICES),
    group_name="staging",
)
def cleaned_transactions(raw: pd.DataFrame):
    """Split raw lines into clean sales lines and rejected lines, nothing lost."""
    result = cleaning.clean(raw)
    cleaned, rejected = result.cleaned, result.rejected
    yield dg.Output(
        cleaned,
        output_name="cleaned_transactions",
        metadata={
            "customers": int(cleaned["customer_id"].nunique()),
            "invoices": int(cleaned["invoice"].nunique()),
            "invoices_with_customer": int(cleaned.loc[cleaned["customer_id"].notna(), "invoice"].nunique()),
            "products": int(cleaned["stock_code"].nunique()),
            "revenue_gbp": float(cleaned["revenue"].sum()),
            "preview": preview(cleaned),
        },
    )
    yield dg.Output(
        rejected,
        output_name="rejected_rows",
        metadata={
            "reasons": dg.MetadataValue.json(cleaning.reason_counts(rejected)),
            "preview": preview(rejected),
        },
    )


cleaned_transactions_schema = schema_check(keys.CLEANED_TRANSACTIONS, CleanedTransactions)
rejected_rows_schema = schema_check(keys.REJECTED_ROWS, RejectedRows)

_RECONCILIATION_SQL = """
WITH split AS (
    SELECT source_file, source_sheet, source_row FROM staging.cleaned_transactions
    UNION ALL
    SELECT source_file, source_sheet, source_row FROM staging.rejected_rows
)
SELECT
    (SELECT count(*) FROM raw.raw_invoices) AS raw_lines,
    (SELECT count(*) FROM staging.cleaned_transactions) AS cleaned_lines,
    (SELECT count(*) FROM staging.rejected_rows) AS rejected_lines,
    (SELECT count(*) FROM (SELECT source_file, source_sheet, source_row FROM raw.raw_invoices
                           EXCEPT ALL SELECT * FROM split)) AS lost_lines,
    (SELECT count(*) FROM (SELECT * FROM split
                           EXCEPT ALL SELECT source_file, source_sheet, source_row FROM raw.raw_invoices)) AS extra_lines
"""


@dg.asset_check(
    asset=keys.CLEANED_TRANSACTIONS,
    additional_deps=[keys.REJECTED_ROWS, keys.RAW_INVOICES],
    blocking=True,
    description="Raw lines = cleaned lines + rejected lines, matched line by line on the lineage columns (in SQL).",
)
def reconciles_with_raw(warehouse: Warehouse) -> dg.AssetCheckResult:
    """Every raw line is in exactly one of cleaned and rejected."""
    with warehouse.connect() as conn:
        raw, cleaned, rejected, lost, extra = conn.execute(_RECONCILIATION_SQL).fetchone()
    return dg.AssetCheckResult(
        passed=bool(raw == cleaned + rejected and lost == 0 and extra == 0),
        metadata={
            "raw_lines": raw,
            "cleaned_lines": cleaned,
            "rejected_lines": rejected,
            "lost_lines": lost,
            "extra_lines": extra,
        },
    )
