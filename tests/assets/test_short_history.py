"""A valid export with too little history still publishes every asset it can compute.

One day of invoices cannot train or test the 90-day prediction, nor fill the recommender's three-month
holdout. The whole job runs on such an export: those three tables are stored empty with the reason in
their metadata, their WARN checks ``has_enough_history`` fail with that reason, every blocking check passes,
every other table has rows and the analyst copy is published.
"""

import re
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from assets import keys
from assets._metadata import SKIPPED_REASON
from assets.definitions import build_definitions
from assets.publish import ANALYST_COPY
from pipeline.customers.schemas import CustomerPredictions, PredictionEvaluation
from pipeline.recommend.schemas import RecommenderMetrics
from pipeline.sources import synthetic
from resources import InvoiceSource
from tests.assets.warehouse_build import BuiltWarehouse, build
from tests.reliability.helpers import checksums

EXPORT_LINES = 3_000
SHORT_TABLES = {
    keys.CUSTOMER_PREDICTIONS: CustomerPredictions,
    keys.PREDICTION_EVALUATION: PredictionEvaluation,
    keys.RECOMMENDER_EVALUATION: RecommenderMetrics,
}
HISTORY_CHECK = "has_enough_history"
ONE_DAY_SPAN = r"the data spans (\d{4}-\d{2}-\d{2}) to \1 \(0 days\)"


def one_day_export(path: Path, *, lines: int = EXPORT_LINES) -> Path:
    """Write the synthetic trading days covering the first ``lines`` lines, all moved onto the last of them.

    Times of day are kept, so each invoice keeps its lines together; the export is valid raw data in the UCI
    layout, like a single day's export of the shop (the real sheet has days of 3,000 lines).
    """
    raw = synthetic.generate_frame(40_000, random_state=42)
    day = raw["InvoiceDate"].dt.normalize()
    last = day.iloc[lines - 1]
    raw = raw[day <= last]
    raw = raw.assign(InvoiceDate=last + (raw["InvoiceDate"] - raw["InvoiceDate"].dt.normalize()))
    path.parent.mkdir(parents=True, exist_ok=True)
    raw.to_parquet(path, index=False)
    return path


@pytest.fixture(scope="module")
def short_run(tmp_path_factory) -> BuiltWarehouse:
    folder = tmp_path_factory.mktemp("short_history")
    export = one_day_export(folder / "export" / "one_day.parquet")
    return build(folder, source=InvoiceSource(location=str(export)), raise_on_error=False)


def count(database: str, key: dg.AssetKey) -> int:
    schema, table = key.path
    with duckdb.connect(database, read_only=True) as conn:
        return conn.execute(f'SELECT count(*) FROM "{schema}"."{table}"').fetchone()[0]


def materialization_metadata(result: dg.ExecuteInProcessResult, key: dg.AssetKey) -> dict:
    (event,) = [e for e in result.get_asset_materialization_events() if e.asset_key == key]
    return event.materialization.metadata


def test_export_is_one_day_of_a_few_thousand_lines(short_run):
    with duckdb.connect(short_run.database, read_only=True) as conn:
        lines, days = conn.execute(
            "SELECT count(*), count(DISTINCT CAST(invoice_date AS DATE)) FROM raw.raw_invoices"
        ).fetchone()
    assert days == 1
    assert EXPORT_LINES <= lines < 2 * EXPORT_LINES


def test_run_succeeds_and_materializes_every_asset(short_run):
    result = short_run.result
    assert result.success
    materialized = {e.asset_key for e in result.get_asset_materialization_events()}
    assert materialized == set(build_definitions().resolve_asset_graph().materializable_asset_keys)
    assert Path(short_run.report_path).stat().st_size > 0


@pytest.mark.parametrize("key", SHORT_TABLES, ids=lambda key: key.path[-1])
def test_tables_needing_history_are_empty_with_their_columns_and_the_reason(short_run, key):
    schema, table = key.path
    with duckdb.connect(short_run.database, read_only=True) as conn:
        columns = conn.execute(
            "SELECT column_name, data_type FROM duckdb_columns() WHERE schema_name = ? AND table_name = ? "
            "ORDER BY column_index",
            [schema, table],
        ).fetchall()
    assert [name for name, _ in columns] == list(SHORT_TABLES[key].to_schema().columns)
    assert "NULL" not in {data_type for _, data_type in columns}  # text columns stored as VARCHAR
    assert count(short_run.database, key) == 0
    assert re.search(ONE_DAY_SPAN, materialization_metadata(short_run.result, key)[SKIPPED_REASON].value)


@pytest.mark.parametrize("key", SHORT_TABLES, ids=lambda key: key.path[-1])
def test_warn_check_fails_with_the_reason(short_run, key):
    (evaluation,) = [
        e for e in short_run.result.get_asset_check_evaluations()
        if e.asset_key == key and e.check_name == HISTORY_CHECK
    ]
    assert not evaluation.passed
    assert evaluation.severity == dg.AssetCheckSeverity.WARN
    reason = evaluation.metadata[SKIPPED_REASON].value
    assert reason == materialization_metadata(short_run.result, key)[SKIPPED_REASON].value
    assert re.search(ONE_DAY_SPAN, reason)


def test_every_other_check_passes(short_run):
    evaluations = short_run.result.get_asset_check_evaluations()
    failed = {(e.asset_key, e.check_name) for e in evaluations if not e.passed}
    assert failed == {(key, HISTORY_CHECK) for key in SHORT_TABLES}
    schema_checked = {e.asset_key for e in evaluations if e.check_name == "matches_schema" and e.passed}
    assert set(SHORT_TABLES) <= schema_checked


def test_every_other_table_has_rows(short_run):
    tables = [
        key for key in build_definitions().resolve_asset_graph().materializable_asset_keys
        if key.path[0] in {"raw", "staging", "analytics"} and key not in SHORT_TABLES
        # Empty on the embedded engine whatever the history (its reason is tested in test_spark_engine).
        and key != keys.ALS_RECOMMENDATIONS
    ]
    empty = [key.to_user_string() for key in tables if count(short_run.database, key) == 0]
    assert empty == []


def test_analyst_copy_is_published_with_the_same_tables(short_run):
    path = materialization_metadata(short_run.result, ANALYST_COPY)["path"].value
    published, working = checksums(path), checksums(short_run.database)
    assert published == working
    assert {f"{schema}.{table}" for schema, table in (key.path for key in SHORT_TABLES)} <= set(published)
