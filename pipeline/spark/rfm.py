"""RFM scores and segments of ``pipeline.customers.rfm_segments`` in Spark SQL.

What belongs here: :func:`rfm_table`, the per-customer recency / frequency / monetary table with its 1-5
scores (``rank()``, ties sharing the lowest rank) and segments, computed by Spark on the staged lines. The
score formula, the segment grid and the column order are those of ``pipeline.customers.rfm_segments``
(imported, never restated). Segment summaries and clusters stay in pandas: they read a few thousand rows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from pipeline.common.lines import CANCELLATION_REASON
from pipeline.customers.rfm_segments import SEGMENT_RULES, checked_reference_date
from pipeline.spark.session import ParquetStage, to_pandas

_COLUMNS = {
    "customer_id": "int64",
    "recency_days": "int64",
    "frequency": "int64",
    "monetary": "float64",
    "r_score": "int64",
    "f_score": "int64",
    "m_score": "int64",
    "fm_score": "int64",
    "rfm_score": "object",
    "segment": "object",
    "first_purchase_date": "datetime64[ns]",
    "last_purchase_date": "datetime64[ns]",
    "tenure_days": "int64",
    "avg_basket_value": "float64",
    "returns_value": "float64",
}


def _round_half_away(value: Column, digits: int) -> Column:
    """DuckDB's ``round(x, digits)`` on a double: ``std::round(x * 10^digits) / 10^digits``.

    Spark's ``round`` rounds the decimal text of the value, which differs at exact halves of a cent
    (``1.005`` is stored as 1.00499..., DuckDB gives 1.0, Spark's ``round(1.005, 2)`` 1.01); rounding the
    scaled value to an integer is the same operation in both.
    """
    scale = float(10**digits)
    return F.round(value * F.lit(scale), 0) / F.lit(scale)


def _score(metric: str, *, higher_is_better: bool, n: Column) -> Column:
    """``floor(5 * (rank - 1) / n) + 1`` with ties sharing the lowest rank, as ``quintile_score``."""
    order = F.col(metric).asc() if higher_is_better else F.col(metric).desc()
    rank = F.rank().over(Window.orderBy(order))
    return F.floor((rank - 1) * 5 / n).cast("long") + 1


def _segment(r_score: Column, fm_score: Column) -> Column:
    """The segment of ``SEGMENT_RULES`` whose R and FM ranges hold the scores."""
    segment: Column = F.lit(None).cast("string")
    for name, (r_lo, r_hi), (fm_lo, fm_hi) in reversed(SEGMENT_RULES):
        inside = r_score.between(r_lo, r_hi) & fm_score.between(fm_lo, fm_hi)
        segment = F.when(inside, F.lit(name)).otherwise(segment)
    return segment


def _returns(cleaned: DataFrame, rejected: DataFrame) -> DataFrame:
    """Per customer, the summed value of product cancellations (``PRODUCT_CANCELLATIONS_SQL``)."""
    products = cleaned.select("stock_code").distinct()
    cancellations = rejected.filter(
        (F.col("reason") == CANCELLATION_REASON) & (F.col("quantity") < 0) & F.col("customer_id").isNotNull()
    ).withColumn("stock_code", F.upper(F.trim(F.col("stock_code"))))
    cancellations = cancellations.join(products, "stock_code", "left_semi")
    return cancellations.groupBy("customer_id").agg(
        F.sum(F.abs(F.col("quantity")) * F.col("price")).alias("returns_value")
    )


def rfm_table(
    spark: SparkSession,
    cleaned: pd.DataFrame,
    *,
    stage: ParquetStage,
    rejected: pd.DataFrame | None = None,
    reference_date: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """Compute recency, frequency, monetary value, scores and segment per registered customer with Spark.

    The table of :func:`pipeline.customers.rfm_segments.rfm_table` for the same lines: recency and tenure in
    whole days to the reference date, distinct invoices, revenue rounded to pence (as DuckDB rounds), scores
    by ``rank()`` and the segment grid. ``returns_value`` is summed by Spark and rounded to pence in pandas,
    like the embedded table.

    Args:
        spark: The session.
        cleaned: ``staging.cleaned_transactions`` (at least ``customer_id``, ``invoice``, ``invoice_date``,
            ``revenue``, ``stock_code``).
        stage: Where the lines are written as parquet for Spark to read.
        rejected: ``staging.rejected_rows`` for ``returns_value``; ``None`` leaves it missing.
        reference_date: The "today" of the analysis; default the day after the last invoice date.

    Returns:
        One row per customer, ordered by ``customer_id``, with the columns and dtypes of the embedded table.

    Raises:
        ValueError: If ``reference_date`` falls before the last purchase date.
    """
    needed = ["customer_id", "invoice", "invoice_date", "revenue", "stock_code"]
    lines = stage.put("rfm_cleaned", cleaned[needed])
    reference = checked_reference_date(lines.agg(F.max("invoice_date")).first()[0], reference_date)
    day = F.lit(reference.strftime("%Y-%m-%d")).cast("date")
    rfm = (
        lines.filter(F.col("customer_id").isNotNull())
        .groupBy("customer_id")
        .agg(
            F.to_date(F.min("invoice_date")).alias("first_date"),
            F.to_date(F.max("invoice_date")).alias("last_date"),
            F.countDistinct("invoice").alias("frequency"),
            _round_half_away(F.sum("revenue"), 2).alias("monetary"),
        )
        .withColumns(
            {
                "recency_days": F.datediff(day, F.col("last_date")).cast("long"),
                "tenure_days": F.datediff(day, F.col("first_date")).cast("long"),
                "first_purchase_date": F.col("first_date").cast("timestamp_ntz"),
                "last_purchase_date": F.col("last_date").cast("timestamp_ntz"),
            }
        )
        .withColumn("avg_basket_value", F.col("monetary") / F.col("frequency"))
    )
    n = F.count(F.lit(1)).over(Window.partitionBy())
    rfm = rfm.withColumns(
        {
            "r_score": _score("recency_days", higher_is_better=False, n=n),
            "f_score": _score("frequency", higher_is_better=True, n=n),
            "m_score": _score("monetary", higher_is_better=True, n=n),
        }
    )
    rfm = rfm.withColumn("fm_score", F.floor((F.col("f_score") + F.col("m_score") + 1) / 2).cast("long"))
    rfm = rfm.withColumns(
        {
            "rfm_score": F.concat(*(F.col(c).cast("string") for c in ("r_score", "f_score", "m_score"))),
            "segment": _segment(F.col("r_score"), F.col("fm_score")),
        }
    )
    if rejected is None:
        rfm = rfm.withColumn("returns_value", F.lit(None).cast("double"))
    else:
        columns = ["customer_id", "stock_code", "quantity", "price", "reason"]
        returns = _returns(lines, stage.put("rfm_rejected", rejected[columns]))
        rfm = rfm.join(returns, "customer_id", "left")
    table = to_pandas(rfm.orderBy("customer_id"), _COLUMNS)
    if rejected is not None:
        table["returns_value"] = table["returns_value"].fillna(0.0).round(2)
    else:
        table["returns_value"] = np.nan
    return table
