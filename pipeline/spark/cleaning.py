"""The cleaning rules of ``pipeline.staging.cleaning`` in Spark SQL.

What belongs here: :func:`clean`, which splits raw lines into cleaned and rejected lines with Spark, rule for
rule as :func:`pipeline.staging.cleaning.clean` (the rules, their order, the reasons and the staging text are
imported from there, never restated). Not here: reading sources, or Dagster.

Text is trimmed of Unicode white space with a regular expression (Spark's ``trim`` removes spaces only) and
upper-cased with Java's ``toUpperCase``; these agree with the embedded (Arrow) kernels on every value of the
UCI files and of the synthetic source, which the tests check, but two engines can differ on exotic code
points (``ß`` upper-cases to ``SS`` in Java).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
from pyspark.sql import Column, SparkSession, Window
from pyspark.sql import functions as F

from pipeline.common.codes import NON_PRODUCT_CODE_PATTERN
from pipeline.sources.contract import BUSINESS_COLUMNS, RAW_COLUMNS
from pipeline.spark.session import ParquetStage, to_pandas
from pipeline.staging.cleaning import REASONS, STAGING_TEXT, CleaningResult

_ROW = "_row"
#: Default earliest plausible invoice date, as in ``pipeline.staging.cleaning.clean``.
MIN_DATE = pd.Timestamp("2009-01-01")
# (?U): \s is Unicode white space, as in Python's and Arrow's strip.
_TRIM = r"(?U)^\s+|\s+$"


def _strip(column: Column) -> Column:
    return F.regexp_replace(column, _TRIM, "")


def _blank(column: Column) -> Column:
    stripped = _strip(column)
    return column.isNull() | (stripped == "")


def _staged(name: str) -> Column:
    """A text column as staged (``STAGING_TEXT``): stripped, stock codes upper-cased, blank as null."""
    text = _strip(F.col(name))
    if name == "stock_code":
        text = F.upper(text)
    return F.when(text == "", F.lit(None)).otherwise(text)


def _date(value: pd.Timestamp) -> Column:
    """A timestamp literal without time zone (a Python datetime would be shifted by the local zone)."""
    return F.lit(pd.Timestamp(value).strftime("%Y-%m-%d %H:%M:%S.%f")).cast("timestamp_ntz")


def _rules(min_date: pd.Timestamp, max_date: pd.Timestamp) -> list[Column]:
    """One boolean column per reason of ``REASONS`` but the last (exact duplicates need a window)."""
    invoice = F.upper(_strip(F.col("invoice")))
    code = F.upper(_strip(F.col("stock_code")))
    date = F.col("invoice_date")
    rules = [
        _blank(F.col("invoice")),
        _blank(F.col("stock_code")),
        date.isNull(),
        F.col("quantity").isNull(),
        F.col("price").isNull() | F.isnan("price"),
        _blank(F.col("country")),
        invoice.startswith("C"),
        invoice.startswith("A"),
        code.rlike(NON_PRODUCT_CODE_PATTERN),
        F.col("quantity") <= 0,
        F.col("price") <= 0,
        (date < _date(min_date)) | (date > _date(max_date)),
    ]
    if len(rules) != len(REASONS) - 1 or REASONS[-1] != "exact duplicate":
        raise RuntimeError("pipeline.staging.cleaning.REASONS changed; update pipeline.spark.cleaning")
    return rules


def clean(
    spark: SparkSession,
    raw: pd.DataFrame,
    *,
    stage: ParquetStage,
    min_date: pd.Timestamp = MIN_DATE,
    max_date: pd.Timestamp | None = None,
) -> CleaningResult:
    """Apply the cleaning rules to raw invoice lines with Spark.

    The same split as :func:`pipeline.staging.cleaning.clean`: a line gets the first reason that applies,
    missing values are null or NaN (text: blank after stripping), and among the lines no other rule rejects,
    a line equal to an earlier one on every business column as staged is an exact duplicate (the first,
    in input order, is kept).

    Args:
        spark: The session.
        raw: Raw lines with ``RAW_COLUMNS``; text columns hold text (or null), ``invoice_date`` has at most
            microsecond resolution. Not modified.
        stage: Where the raw lines are written as parquet for Spark to read.
        min_date: Earliest plausible invoice date.
        max_date: Latest plausible invoice date; ``None`` means the day after the run date.

    Returns:
        The cleaned and rejected lines, both in input order, with the columns and dtypes of the embedded
        result for the same input.
    """
    missing = [c for c in RAW_COLUMNS if c not in raw.columns]
    if missing:
        raise ValueError(f"raw lines lack required columns {missing}; expected {RAW_COLUMNS}")
    if max_date is None:
        max_date = pd.Timestamp.now().normalize() + pd.Timedelta(days=1)
    table = pa.Table.from_pandas(raw[RAW_COLUMNS], preserve_index=False)
    table = table.append_column(_ROW, pa.array(np.arange(len(raw), dtype=np.int64)))
    lines = stage.put("raw_lines", table)

    kept = len(REASONS)
    reason = F.lit(kept)
    for position, hit in reversed(list(enumerate(_rules(min_date, max_date)))):
        reason = F.when(F.coalesce(hit, F.lit(False)), F.lit(position)).otherwise(reason)
    staged = {name: _staged(name) for name in STAGING_TEXT}
    lines = lines.withColumn("_reason", reason).withColumns({f"_staged_{n}": c for n, c in staged.items()})
    duplicate_key = [f"_staged_{c}" if c in STAGING_TEXT else c for c in BUSINESS_COLUMNS]
    # Only lines no rule rejects compete for "first"; a null key value equals another null, as in pandas.
    first = Window.partitionBy(*duplicate_key, F.col("_reason")).orderBy(_ROW)
    repeated = (F.col("_reason") == kept) & (F.row_number().over(first) > 1)
    duplicate = F.lit(REASONS.index("exact duplicate"))
    lines = lines.withColumn("_reason", F.when(repeated, duplicate).otherwise(F.col("_reason"))).cache()
    try:
        cleaned_lines = lines.filter(F.col("_reason") == kept).orderBy(_ROW)
        cleaned_lines = cleaned_lines.withColumns(
            {name: F.col(f"_staged_{name}") for name in STAGING_TEXT}
        ).withColumn("revenue", F.col("quantity").cast("double") * F.col("price"))
        cleaned_dtypes = {c: raw[c].dtype for c in RAW_COLUMNS} | {"quantity": np.dtype("int64"),
                                                                   "revenue": np.dtype("float64")}
        cleaned = to_pandas(cleaned_lines, cleaned_dtypes)
        reasons = F.element_at(F.array(*[F.lit(r) for r in REASONS]), F.col("_reason") + 1)
        rejected_lines = lines.filter(F.col("_reason") != kept).orderBy(_ROW).withColumn("reason", reasons)
        rejected_dtypes = {c: raw[c].dtype for c in RAW_COLUMNS} | {"reason": np.dtype(object)}
        rejected = to_pandas(rejected_lines, rejected_dtypes)
    finally:
        lines.unpersist()
    return CleaningResult(cleaned=cleaned, rejected=rejected)
