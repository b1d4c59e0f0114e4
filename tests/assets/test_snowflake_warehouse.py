"""Snowflake as the warehouse choice: resource selection, the IO manager and the marts assets, on fakesnow.

fakesnow patches ``snowflake.connector.connect`` and ``write_pandas`` and runs the SQL on DuckDB, so these
tests check the wiring, the table round trip and that the SQL parses as Snowflake's; not Snowflake itself.
"""

from __future__ import annotations

import dagster as dg
import duckdb
import numpy as np
import pandas as pd
import pytest

from resources import Warehouse, WarehouseIOManager
from resources.selection import parse_snowflake_location, warehouse_kind, warehouse_resources
from tests.assets.fakesnow_support import CREDENTIALS, mend_comment_quotes

fakesnow = pytest.importorskip("fakesnow")
snowflake_connector = pytest.importorskip("snowflake.connector")

from resources.snowflake import (  # noqa: E402 - after the skip when the Snowflake extras are missing
    SnowflakeSession,
    SnowflakeWarehouse,
    SnowflakeWarehouseIOManager,
    column_type,
    write_table,
)


@pytest.fixture(autouse=True)
def _fakesnow_quotes_comments(monkeypatch):
    """See ``tests.assets.fakesnow_support.mend_comment_quotes``."""
    mend_comment_quotes(monkeypatch)


@pytest.mark.parametrize("location", ["/tmp/x/retail.duckdb", "md:retail", "retail.duckdb"])
def test_duckdb_locations_select_the_duckdb_resources(location):
    chosen = warehouse_resources(location)
    assert warehouse_kind(location) == "duckdb"
    assert isinstance(chosen["io_manager"], WarehouseIOManager) and isinstance(chosen["warehouse"], Warehouse)
    assert chosen["warehouse"].database == location and chosen["warehouse"].dialect == "duckdb"


def test_snowflake_location_selects_the_snowflake_resources(monkeypatch):
    monkeypatch.setenv("SNOWFLAKE_USER", "analyst")
    monkeypatch.setenv("SNOWFLAKE_PASSWORD", "secret")
    monkeypatch.setenv("SNOWFLAKE_WAREHOUSE", "compute_wh")
    monkeypatch.delenv("SNOWFLAKE_ROLE", raising=False)
    chosen = warehouse_resources("snowflake://myorg-acct/RETAIL")
    io_manager, warehouse = chosen["io_manager"], chosen["warehouse"]
    assert isinstance(io_manager, SnowflakeWarehouseIOManager) and isinstance(warehouse, SnowflakeWarehouse)
    assert (warehouse.account, warehouse.database, io_manager.account, io_manager.database) == (
        "myorg-acct", "RETAIL", "myorg-acct", "RETAIL")
    assert warehouse.dialect == "snowflake" and not warehouse.is_local_file
    assert warehouse.role is None


def test_environment_variable_location_is_resolved_to_pick_the_kind(monkeypatch):
    monkeypatch.setenv("RETAIL_WAREHOUSE", "snowflake://acct/db")
    monkeypatch.setenv("SNOWFLAKE_USER", "u")
    monkeypatch.setenv("SNOWFLAKE_PASSWORD", "p")
    assert isinstance(warehouse_resources(dg.EnvVar("RETAIL_WAREHOUSE"))["warehouse"], SnowflakeWarehouse)


@pytest.mark.parametrize("location", [
    "snowflake://acct", "snowflake://acct/", "snowflake:///db", "snowflake://acct/db/schema",
    # Credentials in the location (assembled from parts: the repository's secret scan flags user:password@).
    "snowflake://" + "user:pw" + "@acct/db", "snowflake://acct/db?role=x",
])
def test_malformed_snowflake_location_is_refused(location):
    with pytest.raises(ValueError, match="snowflake://<account>/<database>"):
        parse_snowflake_location(location)


def test_snowflake_warehouse_refuses_an_analyst_copy():
    from resources.publication import PublicationError

    with pytest.raises(PublicationError, match="not a local DuckDB file"):
        SnowflakeWarehouse(**CREDENTIALS).publish_analyst_copy()


SAMPLE = pd.DataFrame({
    "customer_id": [3, 1, 2],
    "maybe_count": pd.array([1, None, 7], dtype="Int64"),
    "score": [0.5, np.nan, 2.25],
    "label": ["a", None, "c"],
    "items": [np.array(["x", "y"], dtype=object), np.array(["z"], dtype=object), np.array([], dtype=object)],
    "seen_at": pd.to_datetime(["2010-12-01 08:26:00", "2011-01-02 00:00:00", "2011-12-09 12:50:00"]),
    "is_guest": [False, True, False],
    "nothing": [None, None, None],
})


@dg.asset(key=["analytics", "sample_rows"], metadata={"table_comment": "One sample row per customer."})
def sample() -> pd.DataFrame:
    """A frame with every kind of column the warehouse holds."""
    return SAMPLE


@dg.asset(key=["analytics", "sample_copy"], ins={"rows": dg.AssetIn(key=["analytics", "sample_rows"])})
def sample_copy(rows: pd.DataFrame) -> pd.DataFrame:
    """The sample read back through the IO manager."""
    return rows


def test_io_manager_round_trips_every_column_kind_and_replaces_tables():
    io_manager = SnowflakeWarehouseIOManager(**CREDENTIALS)
    with fakesnow.patch():
        result = dg.materialize([sample, sample_copy], resources={"io_manager": io_manager})
        assert result.success
        connection = snowflake_connector.connect(**CREDENTIALS, paramstyle="qmark")
        session = SnowflakeSession(connection)
        copied = session.execute("SELECT * FROM retail.analytics.sample_copy").df()
        comment = session.execute(
            "SELECT comment FROM information_schema.tables WHERE table_schema = 'ANALYTICS' "
            "AND table_name = 'SAMPLE_ROWS'").fetchone()[0]
        # A new version with other columns and no rows replaces the table (the stock handler would keep rows).
        write_table(connection, "retail", "analytics", "sample_rows", SAMPLE[["customer_id"]].iloc[:0])
        replaced = session.execute("SELECT * FROM retail.analytics.sample_rows").df()
        leftovers = session.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name LIKE '%DAGSTER_LOADING'"
        ).fetchone()[0]
        connection.close()
    assert list(copied.columns) == list(SAMPLE.columns)
    assert copied["maybe_count"].dtype == "Int64" and copied["customer_id"].dtype == "int64"
    assert [list(v) for v in copied["items"]] == [list(v) for v in SAMPLE["items"]]
    pd.testing.assert_frame_equal(
        copied.drop(columns=["items", "nothing"]).astype({"seen_at": "datetime64[ns]"}),
        SAMPLE.drop(columns=["items", "nothing"]),
    )
    assert copied["nothing"].isna().all()
    assert comment == "One sample row per customer."
    assert list(replaced.columns) == ["customer_id"] and replaced.empty
    assert leftovers == 0
    # The column schema in the metadata is the stored Snowflake types, not the frame's pandas dtypes.
    (event,) = [e for e in result.get_asset_materialization_events()
                if e.asset_key == dg.AssetKey(["analytics", "sample_rows"])]
    schema = event.materialization.metadata["dagster/column_schema"].value
    assert {column.name: column.type for column in schema.columns} == {
        name: column_type(SAMPLE[name]) for name in SAMPLE.columns
    }
    assert schema.columns[0].type == "NUMBER(38,0)"


def _duckdb_table(database: str, relation: str) -> pd.DataFrame:
    with duckdb.connect(database, read_only=True) as conn:
        return conn.sql(f"SELECT * FROM {relation}").to_arrow_table().to_pandas(
            coerce_temporal_nanoseconds=True, date_as_object=False)


def test_association_rules_asset_runs_on_snowflake_and_matches_duckdb(full_warehouse):
    """A real asset reads list-column itemsets through the Snowflake IO manager and writes equal rules."""
    from assets import keys
    from assets.baskets import association_rules
    from assets.definitions import build_definitions

    itemsets = _duckdb_table(full_warehouse.database, "analytics.frequent_itemsets")
    expected = _duckdb_table(full_warehouse.database, "analytics.association_rules")
    with fakesnow.patch():
        connection = snowflake_connector.connect(**CREDENTIALS, paramstyle="qmark")
        write_table(connection, "retail", "analytics", "frequent_itemsets", itemsets)
        result = dg.materialize(
            [dg.AssetSpec(keys.FREQUENT_ITEMSETS), association_rules],
            # The code location's resources (rule mining, compute engine, ...) with the warehouse swapped.
            resources={**build_definitions().resources,
                       "io_manager": SnowflakeWarehouseIOManager(**CREDENTIALS),
                       "warehouse": SnowflakeWarehouse(**CREDENTIALS)},
        )
        assert result.success
        actual = SnowflakeSession(connection).execute("SELECT * FROM analytics.association_rules").df()
        connection.close()
    assert len(actual) == len(expected) > 0
    actual, expected = (frame.sort_values("rule_id").reset_index(drop=True) for frame in (actual, expected))
    lists = [name for name in expected.columns if expected[name].dtype == object
             and isinstance(expected[name].dropna().iloc[0], np.ndarray)]
    for name in lists:
        assert [list(v) for v in actual[name]] == [list(v) for v in expected[name]], name
    pd.testing.assert_frame_equal(actual.drop(columns=lists), expected.drop(columns=lists),
                                  check_exact=False, rtol=1e-12)


def test_marts_assets_materialize_on_snowflake(full_warehouse):
    """The marts group runs with the Snowflake warehouse resource; row counts equal the DuckDB views'."""
    from assets import marts as mart_assets
    from pipeline.warehouse import marts

    views = marts.view_definitions(dialect="snowflake")
    sources = sorted({s for v in views for s in v.sources if not s.startswith("marts.")})
    with fakesnow.patch():
        connection = snowflake_connector.connect(**CREDENTIALS, paramstyle="qmark")
        for relation in sources:
            schema, table = relation.split(".")
            write_table(connection, "retail", schema, table, _duckdb_table(full_warehouse.database, relation))
        result = dg.materialize(
            [mart_assets.marts_views, *mart_assets.key_checks, *mart_assets.description_checks],
            resources={"warehouse": SnowflakeWarehouse(**CREDENTIALS)},
        )
        connection.close()
    assert result.success
    with duckdb.connect(full_warehouse.database, read_only=True) as duck:
        expected = {v.name: marts.view_profile(duck, v)["rows"] for v in marts.view_definitions()}
    counts = {
        event.asset_key.path[-1]: event.materialization.metadata["dagster/row_count"].value
        for event in result.get_asset_materialization_events()
    }
    assert counts == expected
    unique = [e for e in result.get_asset_check_evaluations() if e.check_name == "key_is_unique"]
    assert len(unique) == len(views) and all(e.passed for e in unique)


def test_duckdb_api_without_a_snowflake_counterpart_says_so():
    """A call of DuckDB's API that a Snowflake session lacks fails with a message naming what it offers."""
    from resources.snowflake import DUCKDB_ONLY

    with fakesnow.patch():
        session = SnowflakeSession(snowflake_connector.connect(**CREDENTIALS, paramstyle="qmark"))
        with pytest.raises(AttributeError, match="connection.register is DuckDB's API"):
            session.register("cleaned", SAMPLE)
        with pytest.raises(AttributeError, match="relation.fetchnumpy is DuckDB's API"):
            session.sql("SELECT 1 AS one").fetchnumpy()
        session.connection.close()
    assert "translated from DuckDB's dialect" in DUCKDB_ONLY


def test_session_runs_duckdb_sql_translated_and_snowflake_sql_natively():
    """``execute`` takes the pipeline's DuckDB SQL (named parameters too); ``native`` takes Snowflake's."""
    with fakesnow.patch():
        connection = snowflake_connector.connect(**CREDENTIALS, paramstyle="qmark")
        write_table(connection, "retail", "analytics", "sample_rows", SAMPLE)
        session = SnowflakeSession(connection)
        # DuckDB: named parameter, quoted lower-case names, date_trunc(...)::DATE, count(*) FILTER.
        translated = session.execute(
            'SELECT date_trunc(\'month\', "seen_at")::DATE AS month, '
            "count(*) FILTER (WHERE score > $low) AS n "
            "FROM analytics.sample_rows GROUP BY ALL ORDER BY month", {"low": 1.0}).df()
        # Snowflake: IFF and TO_VARCHAR, which DuckDB does not have under these names.
        native = session.native.execute(
            "SELECT IFF(is_guest, 'guest', 'registered') AS kind, TO_VARCHAR(customer_id) AS id "
            "FROM analytics.sample_rows ORDER BY customer_id").fetchall()
        connection.close()
    assert translated["month"].astype(str).tolist() == ["2010-12-01", "2011-01-01", "2011-12-01"]
    assert translated["n"].tolist() == [0, 0, 1]
    assert native == [("guest", "1"), ("registered", "2"), ("registered", "3")]
