"""The whole job on a Snowflake warehouse (fakesnow), against the same job on DuckDB.

Every asset and check of the code location runs with ``SnowflakeWarehouseIOManager`` and
``SnowflakeWarehouse`` on the session warehouse's source (``full_warehouse``: 40,000 synthetic lines). The
pipeline's DuckDB SQL runs translated (``pipeline.common.dialects``), the schema checks take the pandas route
and the exports read Snowflake's tables. fakesnow runs Snowflake SQL on DuckDB: these tests show that the
translated SQL is Snowflake's and gives DuckDB's answers, not how Snowflake itself performs.
"""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest

from tests.assets.fakesnow_support import CREDENTIALS, mend_comment_quotes
from tests.assets.warehouse_build import materialize_all

fakesnow = pytest.importorskip("fakesnow")
snowflake_connector = pytest.importorskip("snowflake.connector")

from resources.snowflake import SnowflakeWarehouse, SnowflakeWarehouseIOManager  # noqa: E402 - after the skip

#: Columns that hold when a run happened, not what it computed.
RUN_TIME_COLUMNS = {"raw.source_files": ["ingested_at"]}
#: Descriptions joined in array order by ``LISTAGG ... WITHIN GROUP (ORDER BY f.index)`` over ``FLATTEN``.
#: fakesnow 0.12.1 pairs FLATTEN's ``index`` with the wrong ``value`` when it flattens many rows at once (rule
#: 67 of this data: index 1 comes with the first description), so here these are compared as multisets.
FLATTEN_ORDERED = {"marts.top_rules": ["if_bought", "then_bought"]}


@pytest.fixture(scope="module")
def snowflake_run(tmp_path_factory, full_warehouse):
    """The job run on fakesnow; the result, every table and view read back, and where exports went."""
    from pipeline.warehouse import marts

    folder = tmp_path_factory.mktemp("snowflake")
    with pytest.MonkeyPatch.context() as monkeypatch, fakesnow.patch():
        mend_comment_quotes(monkeypatch)
        result = materialize_all(
            str(folder / "retail.duckdb"),  # only places the model store and the exports beside it
            str(folder / "report.html"),
            raise_on_error=False,
            resources={"io_manager": SnowflakeWarehouseIOManager(**CREDENTIALS),
                       "warehouse": SnowflakeWarehouse(**CREDENTIALS)},
        )
        warehouse = SnowflakeWarehouse(**CREDENTIALS)
        # fakesnow's information_schema.tables lists tables only; the views are read by name.
        stored = warehouse.row_counts()[["schema", "table"]].itertuples(index=False)
        names = [f"{schema}.{table}" for schema, table in stored]
        names += [view.qualified_name for view in marts.view_definitions()]
        with warehouse.connect() as conn:
            tables = {name: conn.sql(f"SELECT * FROM {name}").df() for name in names}
            comments = {name: _comments(marts.column_comments(conn, name, dialect="snowflake"))
                        for name in names}
    return result, tables, folder, comments


def _comments(columns: pd.DataFrame) -> dict[str, str | None]:
    return dict(zip(columns["column_name"], columns["comment"].where(columns["comment"].notna(), None),
                    strict=True))


def _duckdb_relations(database: str) -> dict[str, pd.DataFrame]:
    with duckdb.connect(database, read_only=True) as conn:
        names = conn.execute(
            "SELECT schema_name || '.' || table_name FROM duckdb_tables() UNION ALL "
            "SELECT schema_name || '.' || view_name FROM duckdb_views() WHERE NOT internal"
        ).fetchall()
        return {name: conn.sql(f"SELECT * FROM {name}").df() for (name,) in names}


def _comparable(frame: pd.DataFrame) -> pd.DataFrame:
    """Lists as tuples, timestamps in ns, rows sorted by every column (no warehouse promises an order)."""
    frame = frame.copy()
    for name in frame.columns:
        values = frame[name].dropna()
        if len(values) and isinstance(values.iloc[0], np.ndarray | list):
            frame[name] = frame[name].map(
                lambda value: tuple(value) if isinstance(value, np.ndarray | list) else None)
        elif pd.api.types.is_datetime64_any_dtype(frame[name]):
            frame[name] = frame[name].astype("datetime64[ns]")
    return frame.sort_values(list(frame.columns)).reset_index(drop=True)


def _items_sorted(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """``columns`` ("A + B" texts) with their items in sorted order."""
    def sorted_items(text):
        return " + ".join(sorted(text.split(" + "))) if isinstance(text, str) else text

    return frame.assign(**{name: frame[name].map(sorted_items) for name in columns})


def test_every_step_and_check_succeeds(snowflake_run, full_warehouse):
    result, *_ = snowflake_run
    assert result.success
    keys = {event.asset_key for event in result.get_asset_materialization_events()}
    assert keys == {event.asset_key for event in full_warehouse.result.get_asset_materialization_events()}


def test_check_verdicts_equal_duckdb(snowflake_run, full_warehouse):
    """All 100-odd checks, the blocking ones included, reach DuckDB's verdicts on Snowflake."""
    result, *_ = snowflake_run

    def verdicts(run):
        evaluations = run.get_asset_check_evaluations()
        return {(e.asset_key.to_user_string(), e.check_name): e.passed for e in evaluations}

    duck = verdicts(full_warehouse.result)
    assert len(duck) > 100
    assert verdicts(result) == duck
    # The schema checks validate with Pandera on the loaded table: Snowflake has no rowid for the SQL route.
    routes = {e.metadata["route"].value for e in result.get_asset_check_evaluations()
              if e.check_name.endswith("matches_schema")}
    assert routes == {"pandas"}


def test_every_table_and_view_equals_duckdb(snowflake_run, full_warehouse):
    """Same relations, same columns, same rows (to 1e-9): staging, EDA, RFM, models, rules, marts views."""
    _, tables, *_ = snowflake_run
    duck = _duckdb_relations(full_warehouse.database)
    assert set(tables) == set(duck)
    for name, expected in duck.items():
        actual = tables[name]
        assert list(actual.columns) == list(expected.columns), name
        assert len(actual) == len(expected), name
        dropped = RUN_TIME_COLUMNS.get(name, [])
        actual, expected = (_items_sorted(frame.drop(columns=dropped), FLATTEN_ORDERED.get(name, []))
                            for frame in (actual, expected))
        pd.testing.assert_frame_equal(
            _comparable(actual), _comparable(expected),
            check_dtype=False, check_exact=False, rtol=1e-9, obj=name,
        )


def test_column_comments_equal_duckdb(snowflake_run, full_warehouse):
    """Analysts see the same column descriptions in Snowflake's catalog as in DuckDB's, tables and views."""
    from pipeline.warehouse import marts

    *_, comments = snowflake_run
    with duckdb.connect(full_warehouse.database, read_only=True) as conn:
        expected = {name: _comments(marts.column_comments(conn, name)) for name in comments}
    assert sum(comment is not None for table in expected.values() for comment in table.values()) > 300
    assert comments == expected


def test_exports_read_snowflake_tables(snowflake_run):
    """With no analyst copy, the parquet export holds Snowflake's tables and says where it read them."""
    import json

    result, tables, folder, _ = snowflake_run
    latest = json.loads((folder / "exports" / "parquet" / "latest.json").read_text())
    manifest = json.loads((folder / "exports" / latest["manifest"]).read_text())
    assert manifest["snapshot"].startswith("snowflake://test/retail (tables read ")
    rfm = next(entry for entry in manifest["tables"] if entry["table"] == "analytics.rfm")
    exported = pd.read_parquet(folder / "exports" / rfm["key"])
    assert rfm["rows"] == len(exported) == len(tables["analytics.rfm"]) > 0
    assert sorted(exported["customer_id"]) == sorted(tables["analytics.rfm"]["customer_id"])


# Bad input, in both warehouses: the same verdicts from one SQL text (DuckDB's, translated for Snowflake).

LINEAGE = ["source_file", "source_sheet", "source_row"]


def _lines(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=LINEAGE).astype({"source_row": "int64"})


def test_reconciliation_counts_lost_and_extra_lines_in_duckdb_and_snowflake():
    """Line 4 is in neither output (lost), line 2 in both (extra); a null sheet matches a null sheet."""
    from assets.staging import _RECONCILIATION_SQL
    from resources.snowflake import SnowflakeSession, write_table

    tables = {
        ("raw", "raw_invoices"): _lines([("a.csv", "s", 1), ("a.csv", "s", 2), ("a.csv", "s", 3),
                                         ("a.csv", "s", 4), ("a.csv", None, 5)]),
        ("staging", "cleaned_transactions"): _lines([("a.csv", "s", 1), ("a.csv", "s", 2),
                                                     ("a.csv", None, 5)]),
        ("staging", "rejected_rows"): _lines([("a.csv", "s", 2), ("a.csv", "s", 3)]),
    }
    expected = (5, 3, 2, 1, 1)  # raw, cleaned, rejected, lost, extra
    with duckdb.connect() as conn:
        for (schema, table), frame in tables.items():
            conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
            conn.register("frame", frame)
            conn.execute(f"CREATE TABLE {schema}.{table} AS SELECT * FROM frame")
            conn.unregister("frame")
        assert tuple(int(n) for n in conn.execute(_RECONCILIATION_SQL).fetchone()) == expected
    with fakesnow.patch():
        connection = snowflake_connector.connect(**CREDENTIALS, paramstyle="qmark")
        for (schema, table), frame in tables.items():
            write_table(connection, "retail", schema, table, frame)
        found = SnowflakeSession(connection).execute(_RECONCILIATION_SQL).fetchone()
        connection.close()
    assert tuple(int(n) for n in found) == expected


def test_schema_validation_on_snowflake_equals_pandera_on_the_loaded_table():
    """A duplicate key and a negative value are reported as Pandera reports them on the same rows."""
    import pandera.pandas as pa

    from pipeline.warehouse import validation
    from resources.snowflake import SnowflakeSession, write_table

    class Scores(pa.DataFrameModel):
        customer_id: int = pa.Field(unique=True)
        score: float = pa.Field(ge=0, nullable=True)

    frame = pd.DataFrame({"customer_id": [1, 2, 2, 3], "score": [0.5, -1.0, 2.0, np.nan]})
    with fakesnow.patch():
        connection = snowflake_connector.connect(**CREDENTIALS, paramstyle="qmark")
        write_table(connection, "retail", "analytics", "scores", frame)
        report = validation.validate_table(SnowflakeSession(connection), "analytics", "scores", Scores)
        connection.close()
    reference = validation.validate_frame(frame, Scores)
    assert not report.passed and report.route == "pandas" and report.rows == 4
    columns = ["column", "check", "failure_case", "index"]
    pd.testing.assert_frame_equal(
        report.failure_cases[columns].astype(str).sort_values(columns).reset_index(drop=True),
        reference.failure_cases[columns].astype(str).sort_values(columns).reset_index(drop=True),
    )
