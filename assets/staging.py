"""Staging assets: clean sales lines and rejected lines with a reason. Logic lives in pipeline.staging.cleaning."""


import dagster as dg
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from assets import keys
from assets._metadata import preview
from assets._tables import table_out
from assets.checks import schema_check
from pipeline.staging import cleaning
from pipeline.staging.schemas import CleanedTransactions, RejectedRows
from resources import ComputeEngine, Warehouse

CLEANED_COMMENT = "Sales lines fit for analysis (guests included, no cancellations or non-product codes), with revenue."
_OWNERS = ("team:data-engineering",)
REJECTED_COMMENT = "Every raw line not in cleaned_transactions, with the reason; cancellations are the returns."

# The raw lines are read with Arrow rather than through the IO manager: Arrow-backed columns skip a Python
# string per text cell (several times the time and memory of the cleaning itself at a million lines), and
# the cleaned and rejected frames stay Arrow-backed, which DuckDB also writes faster. Same rows, same order.
_RAW_LINES_SQL = "SELECT * FROM raw.raw_invoices"
# Few distinct values repeated on every line (one path per source file): dictionary-encoded, a line costs
# four bytes instead of its text, in the raw lines and in the copies the cleaning makes.
_REPEATED_TEXT = ("description", "country", "source_file")


def _raw_lines(warehouse: Warehouse) -> pd.DataFrame:
    """Every raw line, as Arrow-backed columns."""
    with warehouse.connect() as conn:
        table = conn.sql(_RAW_LINES_SQL).to_arrow_table()
    for name in _REPEATED_TEXT:
        position = table.schema.get_field_index(name)
        column = table.column(position)
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            table = table.set_column(position, name, pc.dictionary_encode(column).unify_dictionaries())
    return table.to_pandas(types_mapper=pd.ArrowDtype)


@dg.multi_asset(
    outs={
        "cleaned_transactions": table_out(keys.CLEANED_TRANSACTIONS, CleanedTransactions, CLEANED_COMMENT,
                                          owners=_OWNERS),
        "rejected_rows": table_out(keys.REJECTED_ROWS, RejectedRows, REJECTED_COMMENT, owners=_OWNERS),
    },
    ins={"raw": dg.AssetIn(key=keys.RAW_INVOICES, dagster_type=dg.Nothing)},
    group_name="staging",
)
def cleaned_transactions(warehouse: Warehouse, engine: ComputeEngine):
    """Split raw lines into clean sales lines and rejected lines, nothing lost."""
    raw = _raw_lines(warehouse)
    if engine.is_spark:
        from pipeline.spark import cleaning as spark_cleaning  # pyspark only when Spark is selected

        result = spark_cleaning.clean(engine.session(), raw, stage=engine.stage())
    else:
        result = cleaning.clean(raw)
    del raw
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
            "engine": engine.name,
            "preview": preview(cleaned),
        },
    )
    yield dg.Output(
        rejected,
        output_name="rejected_rows",
        metadata={
            "reasons": dg.MetadataValue.json(cleaning.reason_counts(rejected)),
            "engine": engine.name,
            "preview": preview(rejected),
        },
    )


cleaned_transactions_schema = schema_check(keys.CLEANED_TRANSACTIONS, CleanedTransactions)
rejected_rows_schema = schema_check(keys.REJECTED_ROWS, RejectedRows)

# Multiset difference on the lineage columns, counted per line key (nulls group together, as in EXCEPT ALL):
# a raw line missing from both outputs is lost, an output line without its raw line is extra. One text runs
# in DuckDB and, translated, in Snowflake (which has no EXCEPT ALL).
_RECONCILIATION_SQL = """
WITH keyed AS (
    SELECT source_file, source_sheet, source_row, 1 AS in_raw, 0 AS in_split FROM raw.raw_invoices
    UNION ALL
    SELECT source_file, source_sheet, source_row, 0, 1 FROM staging.cleaned_transactions
    UNION ALL
    SELECT source_file, source_sheet, source_row, 0, 1 FROM staging.rejected_rows
),
per_line AS (
    SELECT sum(in_raw) AS in_raw, sum(in_split) AS in_split
    FROM keyed
    GROUP BY source_file, source_sheet, source_row
)
SELECT
    coalesce(sum(in_raw), 0) AS raw_lines,
    (SELECT count(*) FROM staging.cleaned_transactions) AS cleaned_lines,
    (SELECT count(*) FROM staging.rejected_rows) AS rejected_lines,
    coalesce(sum(greatest(in_raw - in_split, 0)), 0) AS lost_lines,
    coalesce(sum(greatest(in_split - in_raw, 0)), 0) AS extra_lines
FROM per_line
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
        raw, cleaned, rejected, lost, extra = (int(n) for n in conn.execute(_RECONCILIATION_SQL).fetchone())
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
