"""Materializes the ingest and staging stages into a temporary DuckDB and checks the warehouse tables."""

import shutil

import dagster as dg
import duckdb
import pandas as pd
import pytest

from assets import ingest, staging
from assets.checks import validate_frame
from assets.definitions import build_definitions, new_source_files, nightly_refresh
from pipeline.staging.schemas import CleanedTransactions
from resources import ComputeEngine, InvoiceSource, Warehouse, WarehouseIOManager
from tests.conftest import SAMPLE_CSV, require

FOUNDATION = [ingest.raw_invoices, ingest.raw_invoices_schema, staging.cleaned_transactions,
              staging.cleaned_transactions_schema, staging.rejected_rows_schema, staging.reconciles_with_raw]


def materialize(location: str, database: str) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        FOUNDATION,
        resources={
            "io_manager": WarehouseIOManager(database=database),
            "warehouse": Warehouse(database=database),
            "invoice_source": InvoiceSource(location=location),
            "engine": ComputeEngine(),
        },
    )


def test_foundation_materializes_and_reconciles(warehouse_path):
    result = materialize(str(require(SAMPLE_CSV)), warehouse_path)
    assert result.success
    evaluations = result.get_asset_check_evaluations()
    assert len(evaluations) == 4 and all(e.passed for e in evaluations)
    with duckdb.connect(warehouse_path, read_only=True) as conn:
        raw, cleaned, rejected = conn.execute(
            "SELECT (SELECT count(*) FROM raw.raw_invoices), (SELECT count(*) FROM staging.cleaned_transactions), "
            "(SELECT count(*) FROM staging.rejected_rows)"
        ).fetchone()
        types = dict(conn.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'raw' AND table_name = 'raw_invoices'"
        ).fetchall())
        comment = conn.execute(
            "SELECT comment FROM duckdb_tables() WHERE schema_name = 'staging' AND table_name = 'cleaned_transactions'"
        ).fetchone()[0]
    assert raw == 20_000 and cleaned + rejected == raw
    assert types["quantity"] == "BIGINT" and types["customer_id"] == "BIGINT"
    assert types["invoice_date"] == "TIMESTAMP_NS" or types["invoice_date"].startswith("TIMESTAMP")
    assert "Sales lines fit for analysis" in comment


def test_reingest_reads_nothing_new_and_picks_up_a_new_file(tmp_path, warehouse_path):
    folder = tmp_path / "exports"
    folder.mkdir()
    shutil.copy(require(SAMPLE_CSV), folder / "2009.csv")
    first = materialize(str(folder), warehouse_path)
    second = materialize(str(folder), warehouse_path)
    meta = second.asset_materializations_for_node("raw_invoices")[0].metadata
    assert meta["parts_read"].value == 0 and meta["parts_unchanged"].value == 1
    assert first.success and second.success

    head = pd.read_csv(folder / "2009.csv", nrows=100)
    head.to_csv(folder / "new_day.csv", index=False)
    third = materialize(str(folder), warehouse_path)
    meta = third.asset_materializations_for_node("raw_invoices")[0].metadata
    assert meta["parts_read"].value == 1 and meta["lines_read"].value == 100
    with duckdb.connect(warehouse_path, read_only=True) as conn:
        assert conn.execute("SELECT count(*) FROM raw.raw_invoices").fetchone()[0] == 20_100
        # the repeated lines are kept aside as exact duplicates, not counted twice as sales
        dup = conn.execute("SELECT count(*) FROM staging.rejected_rows WHERE reason = 'exact duplicate' "
                           "AND source_file LIKE '%new_day.csv'").fetchone()[0]
        sold_twice = conn.execute("SELECT count(*) FROM staging.cleaned_transactions "
                                  "WHERE source_file LIKE '%new_day.csv'").fetchone()[0]
    assert sold_twice == 0 and dup > 0


def test_schema_check_reports_failures():
    bad = pd.DataFrame({"invoice": ["C1"], "stock_code": ["POST"], "description": [None], "quantity": [-1],
                        "invoice_date": [pd.Timestamp("2010-01-01")], "price": [1.0],
                        "customer_id": pd.array([1], dtype="Int64"), "country": ["UK"], "source_file": ["f"],
                        "source_sheet": [None], "source_row": [2], "revenue": [-1.0]})
    result = validate_frame(bad, CleanedTransactions)
    assert not result.passed
    assert result.metadata["failure_cases"].value >= 4
    assert "quantity" in result.metadata["sample_failure_cases"].value


def test_failed_blocking_check_stops_downstream(tmp_path, warehouse_path):
    bad = tmp_path / "bad.csv"
    frame = pd.read_csv(require(SAMPLE_CSV), nrows=50)
    frame.to_csv(bad, index=False)
    materialize(str(bad), warehouse_path)

    @dg.asset(key=["analytics", "downstream"], ins={"cleaned": dg.AssetIn(key=["staging", "cleaned_transactions"])})
    def downstream(cleaned: pd.DataFrame) -> pd.DataFrame:
        return cleaned.head(1)

    @dg.asset_check(asset=["staging", "cleaned_transactions"], blocking=True, name="always_fails")
    def always_fails() -> dg.AssetCheckResult:
        return dg.AssetCheckResult(passed=False)

    result = dg.materialize(
        [*FOUNDATION, downstream, always_fails],
        resources={"io_manager": WarehouseIOManager(database=warehouse_path),
                   "warehouse": Warehouse(database=warehouse_path),
                   "invoice_source": InvoiceSource(location=str(bad)), "engine": ComputeEngine()},
        raise_on_error=False,
    )
    assert not result.success
    with duckdb.connect(warehouse_path, read_only=True) as conn:
        tables = {t[0] for t in conn.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    assert "downstream" not in tables


def test_definitions_load_with_job_schedule_and_sensor():
    defs = build_definitions()
    assert defs.resolve_job_def("all_assets") is not None
    # The nightly schedule only observes the exports; the automation sensor refreshes what changed.
    assert defs.resolve_job_def("observe_source") is not None
    assert nightly_refresh.job_name == "observe_source"
    assert nightly_refresh.cron_schedule == "0 2 * * *"
    assert {("raw", "raw_invoices"), ("staging", "cleaned_transactions"), ("staging", "rejected_rows")} <= {
        tuple(k.path) for k in defs.resolve_asset_graph().get_all_asset_keys()
    }


def test_sensor_fires_only_when_the_source_listing_changes(tmp_path):
    folder = tmp_path / "exports"
    folder.mkdir()
    (folder / "a.csv").write_text("Invoice\n1\n")
    source = InvoiceSource(location=str(folder))
    context = dg.build_sensor_context(resources={"invoice_source": source})
    assert isinstance(new_source_files(context), dg.SkipReason)  # records the listing
    assert isinstance(new_source_files(context), dg.SkipReason)
    (folder / "b.csv").write_text("Invoice\n2\n")
    request = new_source_files(context)
    assert isinstance(request, dg.RunRequest)


@pytest.mark.parametrize("name", ["x; DROP TABLE raw.raw_invoices", "Raw", "a-b", ""])
def test_identifiers_are_validated(name):
    from pipeline.common.sql import checked_identifier

    with pytest.raises(ValueError):
        checked_identifier(name)
