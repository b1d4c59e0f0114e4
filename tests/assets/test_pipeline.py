"""Materializes every asset of the code location on small synthetic data into a temporary DuckDB.

The warehouse is built once per session (``full_warehouse``) and shared with the marts and report tests.
"""

from pathlib import Path

import dagster as dg
import duckdb
import pandas as pd

from assets import report as report_assets
from assets.definitions import ASSET_MODULES, build_definitions
from resources import InvoiceSource, Warehouse, WarehouseIOManager

SYNTHETIC_LINES = 40_000
TABLE_SCHEMAS = {"raw", "staging", "analytics"}
_BUILT: dict[str, tuple[str, str, dg.ExecuteInProcessResult]] = {}


def materialize_all(database: str, report_path: str) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [*dg.load_assets_from_modules(ASSET_MODULES), *dg.load_asset_checks_from_modules(ASSET_MODULES)],
        resources={
            "io_manager": WarehouseIOManager(database=database),
            "warehouse": Warehouse(database=database),
            "invoice_source": InvoiceSource(location="synthetic", synthetic_lines=SYNTHETIC_LINES),
        },
        run_config={"ops": {report_assets.customer_intelligence_report.op.name: {"config": {"path": report_path}}}},
    )


def full_warehouse(tmp_path_factory) -> tuple[str, str, dg.ExecuteInProcessResult]:
    """Every asset materialized once per session: (database path, report path, result)."""
    if "warehouse" not in _BUILT:
        folder = tmp_path_factory.mktemp("pipeline")
        database, report_path = str(folder / "retail.duckdb"), str(folder / "reports" / "report.html")
        _BUILT["warehouse"] = (database, report_path, materialize_all(database, report_path))
    return _BUILT["warehouse"]


def tables(database: str) -> dict[str, pd.DataFrame]:
    with duckdb.connect(database, read_only=True) as conn:
        names = conn.execute("SELECT schema_name, table_name FROM duckdb_tables() ORDER BY 1, 2").fetchall()
        return {f"{s}.{t}": conn.execute(f'SELECT * FROM "{s}"."{t}"').df() for s, t in names}


def table_keys() -> set[str]:
    defs = build_definitions()
    return {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys() if k.path[0] in TABLE_SCHEMAS}


def test_every_asset_materializes_and_every_check_passes(tmp_path_factory):
    database, report_path, result = full_warehouse(tmp_path_factory)
    assert result.success
    evaluations = result.get_asset_check_evaluations()
    failed = [(e.asset_key.to_user_string(), e.check_name) for e in evaluations if not e.passed]
    assert failed == []
    present = {name.replace(".", "/") for name in tables(database)}
    assert table_keys() <= present
    checked = {e.asset_key.to_user_string() for e in evaluations if e.check_name == "matches_schema"}
    assert checked == table_keys() - {"raw/source_files"}
    assert Path(report_path).stat().st_size > 0


def test_customer_tables_cover_every_customer(tmp_path_factory):
    database, _, _ = full_warehouse(tmp_path_factory)
    with duckdb.connect(database, read_only=True) as conn:
        customers = conn.execute("SELECT count(DISTINCT customer_id) FROM staging.cleaned_transactions").fetchone()[0]
        for table in ("rfm", "customer_clusters", "customer_predictions"):
            assert conn.execute(f"SELECT count(*) FROM analytics.{table}").fetchone()[0] == customers


def test_rerun_gives_identical_tables(tmp_path_factory, tmp_path):
    """Seeded models and deterministic ordering: a second warehouse built from the same data is identical."""
    database, _, _ = full_warehouse(tmp_path_factory)
    other = str(tmp_path / "again.duckdb")
    assert materialize_all(other, str(tmp_path / "report.html")).success
    first, second = tables(database), tables(other)
    assert first.keys() == second.keys()
    for name in first:
        if name == "raw.source_files":
            continue  # holds the ingest time
        pd.testing.assert_frame_equal(first[name], second[name], obj=name)
