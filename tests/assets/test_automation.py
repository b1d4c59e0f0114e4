"""A data-driven refresh: an unchanged source starts no work, new data refreshes what reads it.

The exports are an observable source whose data version is their fingerprint; every asset carries a code
version and the eager automation condition. These tests observe the source and evaluate the automation
conditions the way the ``refresh_on_new_data`` sensor does, on a real instance and warehouse.
"""

from __future__ import annotations

import datetime
import time
import zoneinfo

import dagster as dg
import pytest

from assets import keys
from assets._versions import GROUP_CODE, code_version
from assets.checks import row_count_verdict
from assets.definitions import (
    AUTOMATION,
    RETRAIN,
    RETRAIN_CRON,
    RETRAIN_TIMEZONE,
    build_definitions,
    load_assets,
    load_checks,
)
from pipeline.sources import synthetic
from resources import InvoiceSource
from tests.assets.warehouse_build import materialize_all, resources_for

LINES = 20_000


@pytest.fixture
def refresh(tmp_path_factory):
    """A warehouse built from all months but the last, the instance that built it, and the export folder."""
    folder = tmp_path_factory.mktemp("automation")
    exports = folder / "exports"
    exports.mkdir()
    raw = synthetic.generate_frame(LINES, random_state=7)
    month = raw["InvoiceDate"].dt.to_period("M")
    raw[month < month.max()].to_parquet(exports / "history.parquet", index=False)
    instance = dg.DagsterInstance.ephemeral()
    database = str(folder / "retail.duckdb")
    source = InvoiceSource(location=str(exports))
    resources = resources_for(database, source)
    definitions = dg.Definitions(assets=load_assets(), asset_checks=load_checks(), resources=resources)
    state = {"cursor": None}

    def observe() -> None:
        dg.materialize(
            load_assets(),
            selection=dg.AssetSelection.assets(keys.INVOICE_SOURCE),
            instance=instance,
            resources=resources,
        )

    def requested(at: datetime.datetime | None = None) -> set[dg.AssetKey]:
        result = dg.evaluate_automation_conditions(
            defs=definitions, instance=instance, cursor=state["cursor"], evaluation_time=at
        )
        state["cursor"] = result.cursor
        return {
            key
            for key in definitions.resolve_asset_graph().materializable_asset_keys
            if result.get_num_requested(key)
        }

    observe()
    built = materialize_all(database, str(folder / "report.html"), source=source, instance=instance)
    assert built.success
    return {
        "observe": observe,
        "requested": requested,
        "exports": exports,
        "raw": raw,
        "month": month,
        "definitions": definitions,
        "instance": instance,
        "resources": resources,
    }


def test_an_unchanged_source_requests_no_work_and_a_new_month_requests_what_reads_it(refresh):
    # One test, in this order: the fixture's warehouse is built once and the new month changes it.
    assert refresh["requested"]() == set()
    started = time.perf_counter()
    refresh["observe"]()
    assert refresh["requested"]() == set()
    # Measured, not asserted: an unchanged night is one observation and one evaluation.
    print(f"unchanged-source refresh (observe + evaluate): {time.perf_counter() - started:.2f} s")

    raw, month = refresh["raw"], refresh["month"]
    raw[month == month.max()].to_parquet(refresh["exports"] / "last_month.parquet", index=False)
    refresh["observe"]()
    graph = refresh["definitions"].resolve_asset_graph()
    everything = set(graph.materializable_asset_keys)
    # A new month refreshes at once every table that describes the data (ingest parses only the new file);
    # the models and the report wait for the weekly retrain.
    assert keys.WEEKLY < everything
    nightly = refresh["requested"]()
    assert nightly == everything - keys.WEEKLY

    # The nightly run itself: the stored tables keep their column types whatever route their lines took (a
    # fresh parse of the new file, lines kept from the previous run), so no schema-change warning fires.
    ran = dg.materialize(
        [*(assets := load_assets()), *load_checks(assets)],
        selection=dg.AssetSelection.assets(*nightly),
        instance=refresh["instance"],
        resources=refresh["resources"],
    )
    schema_checks = [
        evaluation for evaluation in ran.get_asset_check_evaluations()
        if evaluation.check_name == "column_schema_change"
    ]
    assert schema_checks
    changed = {e.asset_key.to_user_string(): e.description for e in schema_checks if not e.passed}
    assert changed == {}

    # At the next Monday 03:00 (London) tick, the models whose inputs changed retrain, and what reads them
    # (marts, report, analyst copy, exports) follows in the same run; the tables they read are not recomputed.
    monday = next_retrain_tick(datetime.datetime.now(datetime.UTC))
    retrained = refresh["requested"](monday + datetime.timedelta(minutes=5))
    assert keys.WEEKLY <= retrained
    descendants = dg.AssetSelection.assets(*keys.RETRAINED_MODELS).downstream().resolve(graph)
    assert retrained - keys.WEEKLY <= descendants
    assert not retrained & {keys.RAW_INVOICES, keys.CLEANED_TRANSACTIONS, keys.RFM, keys.EDA_MONTHLY_SALES}

    # A week with no new data retrains nothing at the following tick.
    assert refresh["requested"](monday + datetime.timedelta(days=7, minutes=5)) == set()


def next_retrain_tick(after: datetime.datetime) -> datetime.datetime:
    """The first RETRAIN_CRON tick (Monday 03:00 London) after ``after``."""
    london = zoneinfo.ZoneInfo(RETRAIN_TIMEZONE)
    day = after.astimezone(london).date() + datetime.timedelta(days=1)
    while day.weekday() != 0:
        day += datetime.timedelta(days=1)
    assert RETRAIN_CRON == "0 3 * * 1"
    return datetime.datetime.combine(day, datetime.time(3), tzinfo=london)


def test_models_retrain_on_the_cadence_and_the_rest_eagerly():
    graph = build_definitions().resolve_asset_graph()
    for key in graph.materializable_asset_keys:
        expected = RETRAIN if key in keys.WEEKLY else AUTOMATION
        assert graph.get(key).automation_condition == expected, key


def test_code_versions_follow_the_code_each_group_runs():
    graph = build_definitions().resolve_asset_graph()
    versions = {key: graph.get(key).code_version for key in graph.materializable_asset_keys}
    assert all(versions.values())
    groups = {graph.get(key).group_name for key in versions}
    assert groups <= set(GROUP_CODE)
    for key, version in versions.items():
        assert version == code_version(graph.get(key).group_name)
    # Groups running different code have different versions.
    assert len({code_version(group) for group in groups}) == len(groups)


def test_row_count_verdict():
    assert row_count_verdict(None, 10) is None
    assert row_count_verdict(0, 10) is None
    assert row_count_verdict(100, 120) is None
    assert row_count_verdict(100, 200) is None and row_count_verdict(100, 50) is None
    assert "outside" in row_count_verdict(100, 49)
    assert "201 rows after 100" in row_count_verdict(100, 201)


def test_tables_get_warn_row_count_and_schema_change_checks():
    graph = build_definitions().resolve_asset_graph()
    tables = {
        key for key in graph.materializable_asset_keys if key.path[0] in ("raw", "staging", "analytics")
    }
    checks = {}
    for check_key in graph.asset_check_keys:
        checks.setdefault(check_key.asset_key, set()).add(check_key.name)
    for key in tables:
        assert "row_count_within_bounds" in checks[key], key
        assert any("schema_change" in name for name in checks[key]), key


def test_a_truncated_export_warns_and_does_not_block(tmp_path):
    # Ingest and stage a full export, then a sliver of it: both runs publish, the second one's row-count
    # checks warn (WARN severity, not blocking).
    exports = tmp_path / "exports"
    exports.mkdir()
    raw = synthetic.generate_frame(LINES, random_state=7)
    raw.to_parquet(exports / "export.parquet", index=False)
    instance = dg.DagsterInstance.ephemeral()
    resources = resources_for(str(tmp_path / "retail.duckdb"), InvoiceSource(location=str(exports)))
    selection = dg.AssetSelection.assets(
        keys.RAW_INVOICES, keys.SOURCE_FILES, keys.CLEANED_TRANSACTIONS, keys.REJECTED_ROWS
    )

    def run() -> dict:
        result = dg.materialize(
            [*load_assets(), *load_checks()], selection=selection, instance=instance, resources=resources
        )
        assert result.success
        return {(e.asset_key, e.check_name): e for e in result.get_asset_check_evaluations()}

    first = run()
    assert first[(keys.RAW_INVOICES, "row_count_within_bounds")].passed
    raw.head(2_000).to_parquet(exports / "export.parquet", index=False)
    verdict = run()[(keys.RAW_INVOICES, "row_count_within_bounds")]
    assert not verdict.passed and verdict.severity == dg.AssetCheckSeverity.WARN
    assert "outside" in verdict.metadata["problem"].value
