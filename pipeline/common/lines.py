"""Sales lines wherever they are, and the queries that EDA, RFM and prediction share.

What belongs here: :class:`StoredTable` (a warehouse table standing for its lines), :func:`warehouse_lines`,
:func:`query_frames`, which runs SQL where the lines are (a fresh in-memory DuckDB connection over pandas
frames, or inside the warehouse for stored tables, so that assets never copy a million warehouse lines into
pandas only to group them), and the small shared queries (date range, product cancellations). Returns are
the rejected lines with ``reason == "cancellation"`` whose stock code was also sold (see
``pipeline.eda.summaries``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import duckdb
import pandas as pd

CANCELLATION_REASON = "cancellation"
CLEANED_TABLE = "staging.cleaned_transactions"
REJECTED_TABLE = "staging.rejected_rows"

# A constant WITH clause shared by the queries that need returns; they append their own CTEs to it.
PRODUCT_CANCELLATIONS_SQL = """
    WITH product_cancellations AS (
        SELECT
            r.invoice,
            upper(trim(r.stock_code)) AS stock_code,
            r.customer_id,
            r.invoice_date,
            abs(r.quantity) AS returned_quantity,
            abs(r.quantity) * r.price AS returned_value
        FROM rejected AS r
        WHERE r.reason = $reason
          AND r.quantity < 0
          AND upper(trim(r.stock_code)) IN (SELECT DISTINCT stock_code FROM cleaned)
    )
"""


@dataclass(frozen=True)
class StoredTable:
    """A table of an open warehouse, queried where it is stored.

    Every function here that takes sales lines accepts one in place of a DataFrame: the SQL then runs on
    ``connection``, reading only the columns it needs, and nothing but the small result reaches pandas.

    Attributes:
        connection: An open connection to the database holding the table: DuckDB's, or a session of another
            warehouse offering ``query(sql, params, tables=...)`` that runs the DuckDB query translated
            (``resources.snowflake.SnowflakeSession``).
        name: The table's schema-qualified name, e.g. ``"staging.cleaned_transactions"``.
    """

    connection: duckdb.DuckDBPyConnection
    name: str


Lines = pd.DataFrame | StoredTable


class WarehouseLines(NamedTuple):
    """The staging tables of a warehouse, to be queried in place."""

    cleaned: StoredTable
    rejected: StoredTable


def warehouse_lines(connection: duckdb.DuckDBPyConnection) -> WarehouseLines:
    """The cleaned lines and the rejected rows of a warehouse, to be queried in place.

    Args:
        connection: An open connection to the warehouse.

    Returns:
        ``staging.cleaned_transactions`` as ``cleaned`` and ``staging.rejected_rows`` as ``rejected``.
    """
    return WarehouseLines(StoredTable(connection, CLEANED_TABLE), StoredTable(connection, REJECTED_TABLE))


def query_frames(sql: str, params: dict[str, object] | None = None, **frames: Lines) -> pd.DataFrame:
    """Run ``sql`` with ``frames`` visible under their keyword names.

    DataFrames alone are registered on a fresh in-memory DuckDB connection. When some frames are
    :class:`StoredTable`, the query runs on their connection instead (DataFrames are registered there too);
    the names are unregistered afterwards, so the connection is left as it was. On a warehouse other than
    DuckDB the query is translated and runs there, over stored tables only.

    Args:
        sql: A DuckDB query referring to the frames by their keyword names.
        params: Named parameters bound into the query (never formatted into the SQL text).
        **frames: DataFrames, or tables of one DuckDB connection, by the name the query uses.

    Returns:
        The query result as a pandas DataFrame.

    Raises:
        ValueError: If stored tables of different connections are mixed, or DataFrames with tables stored
            outside DuckDB.
    """
    connections = {id(f.connection): f.connection for f in frames.values() if isinstance(f, StoredTable)}
    if len(connections) > 1:
        raise ValueError("stored tables queried together must share one connection")
    if connections and not isinstance(con := next(iter(connections.values())), duckdb.DuckDBPyConnection):
        # Another warehouse (Snowflake): it runs the query itself, translated, over its stored tables.
        local = sorted(name for name, frame in frames.items() if not isinstance(frame, StoredTable))
        if local:
            raise ValueError(f"frames {local} cannot be queried together with tables stored outside DuckDB")
        return con.query(sql, params, tables={name: frame.name for name, frame in frames.items()})
    if not connections:
        with duckdb.connect() as con:
            for name, frame in frames.items():
                con.register(name, frame)
            return con.execute(sql, params or {}).df()
    (con,) = connections.values()
    registered: list[str] = []
    try:
        for name, frame in frames.items():
            con.register(name, con.table(frame.name) if isinstance(frame, StoredTable) else frame)
            registered.append(name)
        return con.execute(sql, params or {}).df()
    finally:
        for name in registered:
            con.unregister(name)


def empty_rejected() -> pd.DataFrame:
    """Return an empty frame with the rejected-row columns that the queries read."""
    return pd.DataFrame(
        {
            "invoice": pd.Series(dtype="object"),
            "stock_code": pd.Series(dtype="object"),
            "customer_id": pd.Series(dtype="Int64"),
            "invoice_date": pd.Series(dtype="datetime64[ns]"),
            "quantity": pd.Series(dtype="Int64"),
            "price": pd.Series(dtype="float64"),
            "reason": pd.Series(dtype="object"),
        }
    )


def as_nanoseconds(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Cast DuckDB's microsecond timestamps to ``datetime64[ns]`` like the rest of the pipeline."""
    return frame.assign(**{c: frame[c].astype("datetime64[ns]") for c in columns})


def invoice_date_range(cleaned: Lines) -> tuple[pd.Timestamp, pd.Timestamp]:
    """Return the first and the last invoice date of the lines.

    Args:
        cleaned: ``staging.cleaned_transactions``.

    Returns:
        ``(min(invoice_date), max(invoice_date))``; both ``NaT`` when there are no lines.
    """
    first, last = query_frames(
        "SELECT min(invoice_date) AS first_date, max(invoice_date) AS last_date FROM cleaned", cleaned=cleaned
    ).iloc[0]
    return pd.Timestamp(first), pd.Timestamp(last)


def product_cancellations(cleaned: Lines, rejected: Lines | None) -> pd.DataFrame:
    """Return the cancelled product lines (the returns) as positive quantities and values.

    Args:
        cleaned: ``staging.cleaned_transactions``; its stock codes define what a product is.
        rejected: ``staging.rejected_rows``; ``None`` gives an empty result.

    Returns:
        One row per cancellation line of a product: ``invoice``, ``stock_code`` (upper-cased, trimmed),
        ``customer_id`` (nullable Int64), ``invoice_date``, ``returned_quantity`` (> 0) and
        ``returned_value`` (``returned_quantity * price``, GBP).
    """
    sql = PRODUCT_CANCELLATIONS_SQL + "SELECT * FROM product_cancellations ORDER BY invoice_date, invoice"
    out = query_frames(
        sql,
        {"reason": CANCELLATION_REASON},
        cleaned=cleaned,
        rejected=empty_rejected() if rejected is None else rejected,
    )
    return as_nanoseconds(out, ["invoice_date"]).astype({"customer_id": "Int64", "returned_quantity": "int64"})
