"""The schema check factory reads the warehouse table itself and reports Pandera's failures with lineage."""

import dagster as dg
import duckdb
import numpy as np
import pandas as pd
import pytest
from dagster._core.storage.db_io_manager import TableSlice

from assets import keys
from assets.checks import schema_check, validate_frame
from pipeline.sources import synthetic
from pipeline.sources.readers import normalize_frame
from pipeline.staging.cleaning import clean
from pipeline.staging.schemas import CleanedTransactions
from pipeline.warehouse import validation
from resources import ComputeEngine, Warehouse, WarehouseIOManager
from resources.warehouse import AtomicPandasTypeHandler


@pytest.fixture(scope="module")
def cleaned() -> pd.DataFrame:
    lines = synthetic.generate_frame(3_000, random_state=5)
    raw = normalize_frame(lines, source_file="s.csv", source_sheet=None)
    return clean(raw).cleaned


def test_load_table_is_the_io_manager_load_indexed_by_position(cleaned):
    lists = pd.DataFrame({"items": [["A", "B"], [], ["C", None]], "n": pd.array([1, None, 3], dtype="Int64"),
                          "none": [None, None, None],
                          "when": pd.to_datetime(["2010-01-01", None, "2011-05-02"])})
    with duckdb.connect() as conn:
        for name, frame in {"cleaned": cleaned, "lists": lists}.items():
            validation.store_frame(conn, frame, "main", name)
            table = TableSlice(table=name, schema="main")
            io_manager = AtomicPandasTypeHandler().load_input(None, table, conn)
            ours = validation.load_table(conn, "main", name)
            assert (ours.index == np.arange(len(frame))).all()
            pd.testing.assert_frame_equal(ours.reset_index(drop=True), io_manager)


def test_validate_frame_reports_failures_from_the_stored_table(cleaned):
    result = validate_frame(cleaned.assign(quantity=cleaned["quantity"].where(cleaned.index != 2, -1)),
                            CleanedTransactions)
    assert not result.passed and result.metadata["route"].value == "sql"
    failing = {(c["column"], c["check"]) for c in result.metadata["failing_checks"].value}
    assert ("quantity", "greater_than(0)") in failing
    assert validate_frame(cleaned, CleanedTransactions).passed


def test_check_reads_the_warehouse_and_blocks_with_lineage(cleaned, warehouse_path):
    bad = cleaned.copy()
    bad.loc[5, "stock_code"] = "POST"

    @dg.asset(key=keys.CLEANED_TRANSACTIONS)
    def cleaned_transactions() -> pd.DataFrame:
        return bad

    @dg.asset(key=["analytics", "downstream"], deps=[keys.CLEANED_TRANSACTIONS])
    def downstream() -> None:
        raise AssertionError("a blocking check failed upstream; this must not run")

    check = schema_check(keys.CLEANED_TRANSACTIONS, CleanedTransactions)
    result = dg.materialize(
        [cleaned_transactions, downstream, check],
        resources={"io_manager": WarehouseIOManager(database=warehouse_path),
                   "warehouse": Warehouse(database=warehouse_path), "engine": ComputeEngine()},
        raise_on_error=False,
    )
    (evaluation,) = result.get_asset_check_evaluations()
    assert not evaluation.passed
    metadata = {name: value.value for name, value in evaluation.metadata.items()}
    assert metadata["route"] == "sql" and metadata["failure_cases"] == 1
    assert metadata["failing_checks"] == [{"column": "stock_code", "check": "is_product_code", "cases": 1}]
    assert "s.csv" in metadata["sample_failing_rows"] and str(bad.loc[5, "source_row"]) in metadata[
        "sample_failing_rows"]
    assert not any(e.step_key == "analytics__downstream" for e in result.get_step_success_events())
