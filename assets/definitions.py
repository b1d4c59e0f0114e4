"""The code location: every asset and check, the all-assets job, the nightly schedule and the new-file sensor."""


import os
from pathlib import Path

import dagster as dg

from assets import publish
from resources import ClusteringSettings, InvoiceSource, RuleMiningSettings, Warehouse, WarehouseIOManager

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_WAREHOUSE = str(PROJECT_ROOT / "data" / "warehouse" / "retail.duckdb")
# The analytic modules are listed once, in assets.publish (the analyst copy depends on all of them).
ASSET_MODULES = [*publish.UPSTREAM_MODULES, publish]


def _setting(name: str, default: str) -> str | dg.EnvVar:
    """``EnvVar(name)`` when the variable is set (resolved at launch, never logged), else the default."""
    return dg.EnvVar(name) if os.environ.get(name) else default


all_assets_job = dg.define_asset_job(
    "all_assets",
    selection=dg.AssetSelection.all(),
    description="Materialize every asset and run every check, in one process (DuckDB has a single writer).",
)

nightly_refresh = dg.ScheduleDefinition(
    name="nightly_refresh",
    job=all_assets_job,
    cron_schedule="0 2 * * *",
    execution_timezone="Europe/London",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Refresh everything at 02:00 London time; ingest re-reads only new or changed source files.",
)


@dg.sensor(
    job=all_assets_job,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Starts a refresh when a file is added to, changed in or removed from the RETAIL_SOURCE folder.",
)
def new_source_files(context: dg.SensorEvaluationContext, invoice_source: InvoiceSource):
    """Launch ``all_assets`` when the listing of the source folder changes."""
    signature = invoice_source.listing_signature()
    if context.cursor == signature:
        return dg.SkipReason("source listing unchanged")
    first_look = context.cursor is None
    context.update_cursor(signature)
    if first_look:
        return dg.SkipReason("recorded the current source listing")
    return dg.RunRequest(run_key=signature)


def build_definitions() -> dg.Definitions:
    """Assemble the code location from the asset modules and environment-configured resources."""
    warehouse_path = _setting("RETAIL_WAREHOUSE", DEFAULT_WAREHOUSE)
    return dg.Definitions(
        assets=dg.load_assets_from_modules(ASSET_MODULES),
        asset_checks=dg.load_asset_checks_from_modules(ASSET_MODULES),
        jobs=[all_assets_job],
        schedules=[nightly_refresh],
        sensors=[new_source_files],
        executor=dg.in_process_executor,
        resources={
            "io_manager": WarehouseIOManager(database=warehouse_path),
            "warehouse": Warehouse(database=warehouse_path),
            "invoice_source": InvoiceSource(location=_setting("RETAIL_SOURCE", "synthetic")),
            "rule_mining": RuleMiningSettings(),
            "clustering_settings": ClusteringSettings(),
        },
    )


defs = build_definitions()
