"""The IO manager's Arrow load gives the same frames as DuckDB's own ``.df()``, nullable integers exact."""

import duckdb
import numpy as np
import pandas as pd
from dagster._core.storage.db_io_manager import TableSlice

from resources.warehouse import AtomicPandasTypeHandler


def _load(conn: duckdb.DuckDBPyConnection, columns: list[str] | None = None) -> pd.DataFrame:
    table = TableSlice(table="t", schema="s", database=None, columns=columns, partition_dimensions=[])
    return AtomicPandasTypeHandler().load_input(None, table, conn)


def test_arrow_load_matches_duckdb_df_and_keeps_large_nullable_ids_exact():
    conn = duckdb.connect()
    conn.execute("CREATE SCHEMA s")
    conn.execute(
        """CREATE TABLE s.t AS SELECT * FROM (VALUES
            ('a', 9007199254740993::BIGINT, 1::BIGINT, TIMESTAMP '2010-12-01 08:26:00', 1.5, ['x', 'y'], DATE '2010-12-01'),
            (NULL, NULL, 2::BIGINT, TIMESTAMP '2011-01-01 00:00:00', NULL, [], NULL)
        ) v(text, customer_id, quantity, invoice_date, price, items, day)"""
    )
    frame = _load(conn)
    reference = conn.sql("SELECT * FROM s.t").df()
    assert list(frame.columns) == list(reference.columns)
    assert frame["customer_id"].dtype == pd.Int64Dtype()
    # 2**53 + 1 is not a float64: a detour through float would round it.
    assert frame["customer_id"].iloc[0] == 9007199254740993
    assert frame["customer_id"].isna().tolist() == [False, True]
    assert frame["quantity"].dtype == np.int64
    # Always nanoseconds, as the Pandera models expect (DuckDB's .df() keeps a TIMESTAMP column in microseconds).
    assert frame["invoice_date"].dtype == "datetime64[ns]"
    pd.testing.assert_series_equal(frame["invoice_date"], reference["invoice_date"].astype("datetime64[ns]"))
    pd.testing.assert_series_equal(frame["price"], reference["price"])
    assert frame["text"].tolist() == ["a", None]
    assert [list(v) for v in frame["items"]] == [["x", "y"], []]
    assert frame["day"].tolist()[0] == reference["day"].tolist()[0]


def test_column_projection_loads_only_the_asked_columns():
    conn = duckdb.connect()
    conn.execute("CREATE SCHEMA s")
    conn.execute("CREATE TABLE s.t AS SELECT 1 AS a, 'x' AS b, 2.0 AS c")
    assert list(_load(conn, ["c", "a"]).columns) == ["c", "a"]
