"""Materializes every asset of the code location on small synthetic data into a temporary DuckDB.

The warehouse is built once per session by the ``full_warehouse`` fixture (``tests/conftest.py``) and shared
with the marts, report and reliability tests.
"""

from pathlib import Path

import duckdb
import pandas as pd

from assets.definitions import build_definitions
from tests.assets.warehouse_build import materialize_all

TABLE_SCHEMAS = {"raw", "staging", "analytics"}


def tables(database: str) -> dict[str, pd.DataFrame]:
    with duckdb.connect(database, read_only=True) as conn:
        names = conn.execute("SELECT schema_name, table_name FROM duckdb_tables() ORDER BY 1, 2").fetchall()
        return {f"{s}.{t}": conn.execute(f'SELECT * FROM "{s}"."{t}"').df() for s, t in names}


def asset_keys() -> set[str]:
    return {k.to_user_string() for k in build_definitions().resolve_asset_graph().materializable_asset_keys}


def table_keys() -> set[str]:
    return {key for key in asset_keys() if key.split("/")[0] in TABLE_SCHEMAS}


def test_every_asset_materializes_and_every_check_passes(full_warehouse):
    database, report_path, result = full_warehouse
    assert result.success
    evaluations = result.get_asset_check_evaluations()
    failed = [(e.asset_key.to_user_string(), e.check_name) for e in evaluations if not e.passed]
    assert failed == []
    present = {name.replace(".", "/") for name in tables(database)}
    assert table_keys() <= present
    checked = {e.asset_key.to_user_string() for e in evaluations if e.check_name == "matches_schema"}
    assert checked == table_keys() - {"raw/source_files"}
    assert Path(report_path).stat().st_size > 0
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert materialized == asset_keys()


def test_customer_tables_cover_every_customer(full_warehouse):
    database = full_warehouse.database
    with duckdb.connect(database, read_only=True) as conn:
        customers = conn.execute("SELECT count(DISTINCT customer_id) FROM staging.cleaned_transactions").fetchone()[0]
        for table in ("rfm", "customer_clusters", "customer_predictions"):
            assert conn.execute(f"SELECT count(*) FROM analytics.{table}").fetchone()[0] == customers


def test_rerun_gives_identical_tables(full_warehouse, tmp_path):
    """Seeded models and deterministic ordering: a second warehouse built from the same data is identical."""
    database = full_warehouse.database
    other = str(tmp_path / "again.duckdb")
    assert materialize_all(other, str(tmp_path / "report.html")).success
    first, second = tables(database), tables(other)
    assert first.keys() == second.keys()
    for name in first:
        if name == "raw.source_files":
            continue  # holds the ingest time
        pd.testing.assert_frame_equal(first[name], second[name], obj=name)
