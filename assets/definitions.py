"""The code location: assets and checks, the rebuild and observation jobs, the schedule and the sensors."""


import os
from datetime import timedelta
from pathlib import Path

import dagster as dg

from assets import exports, keys, publish
from assets._versions import code_version
from assets.checks import row_count_checks
from resources import ClusteringSettings, ComputeEngine, InvoiceSource, RuleMiningSettings
from resources.export import DEFAULT_EXPORTS, ExportTarget
from resources.models import ModelStore, default_location
from resources.selection import warehouse_resources

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_WAREHOUSE = str(PROJECT_ROOT / "data" / "warehouse" / "retail.duckdb")
# The analytic modules are listed once, in assets.publish (the analyst copy depends on all of them); the
# exports read the published analyst copy.
ASSET_MODULES = [*publish.UPSTREAM_MODULES, publish, exports]


def _setting(name: str, default: str) -> str | dg.EnvVar:
    """``EnvVar(name)`` when the variable is set (resolved at launch, never logged), else the default."""
    return dg.EnvVar(name) if os.environ.get(name) else default


#: When a table that describes the data refreshes by itself (ingest, staging, EDA, RFM, marts, analyst copy,
#: exports): as soon as something it reads has changed (a new data version of the observed exports, or a
#: new materialization upstream), never when nothing did.
AUTOMATION = dg.AutomationCondition.eager()

#: When the models retrain and the report is rendered (``keys.WEEKLY``): Mondays at 03:00 London time.
RETRAIN_CRON = "0 3 * * 1"
RETRAIN_TIMEZONE = "Europe/London"

#: When a model retrains by itself: once the weekly tick has passed, and only if something it reads changed
#: since it was last trained (a model with unchanged inputs is never retrained). A week without new exports
#: retrains nothing; the first change after a quiet Monday retrains then. In between, new customers and
#: products appear in RFM, EDA and the marts at once and get clusters, predictions and recommendations at
#: the next retrain (the marts views LEFT JOIN the model tables, so their model columns are empty until then).
RETRAIN = (
    dg.AutomationCondition.cron_tick_passed(RETRAIN_CRON, RETRAIN_TIMEZONE).since_last_handled()
    & (
        dg.AutomationCondition.newly_missing()
        | dg.AutomationCondition.any_deps_match(
            dg.AutomationCondition.newly_updated() | dg.AutomationCondition.will_be_requested()
        )
    ).since_last_handled()
    & ~dg.AutomationCondition.any_deps_missing()
    & ~dg.AutomationCondition.any_deps_in_progress()
    & ~dg.AutomationCondition.in_progress()
).with_label(f"retrain weekly ({RETRAIN_CRON} {RETRAIN_TIMEZONE}) when inputs changed")


def automation_condition(key: dg.AssetKey) -> dg.AutomationCondition:
    """The automation condition of an asset: :data:`RETRAIN` for ``keys.WEEKLY``, else :data:`AUTOMATION`."""
    return RETRAIN if key in keys.WEEKLY else AUTOMATION


#: How stale what analysts read may get. Tables refresh only when new exports arrive, so a warning after
#: 8 days means no new data for a week (the shop exports daily); after 32 days the table fails freshness.
ANALYST_FRESHNESS = dg.FreshnessPolicy.time_window(
    fail_window=timedelta(days=32), warn_window=timedelta(days=8)
)
ANALYST_SCHEMAS = ("analytics", "marts")


def load_assets() -> list:
    """Every asset of the code location, each with its code version and its :func:`automation_condition`.

    The tables and views analysts read (``analytics``, ``marts``) also carry :data:`ANALYST_FRESHNESS`.
    """

    def versioned(spec: dg.AssetSpec) -> dg.AssetSpec:
        fresh = {"freshness_policy": ANALYST_FRESHNESS} if spec.key.path[0] in ANALYST_SCHEMAS else {}
        return spec.replace_attributes(
            code_version=code_version(spec.group_name), automation_condition=automation_condition(spec.key),
            **fresh,
        )

    loaded = dg.load_assets_from_modules(ASSET_MODULES)
    return [
        dg.map_asset_specs(versioned, [item])[0]
        if isinstance(item, dg.AssetsDefinition) and item.is_materializable
        else item
        for item in loaded
    ]


#: The layers stored as tables by the IO manager (which records row counts and column schemas).
TABLE_SCHEMAS = ("raw", "staging", "analytics")


def load_checks(assets: list | None = None) -> list:
    """Every asset check of the code location: the modules' own, plus WARN row-count and schema-change checks.

    Both warn and never block: a table that shrinks to less than half or more than doubles between two
    materializations, or whose columns change (names or types), is worth a look by a person, not a reason to
    hold back the analyst copy.

    Args:
        assets: The loaded assets, when the caller has them (default: :func:`load_assets`).
    """
    assets = load_assets() if assets is None else assets
    tables = sorted(
        (key for item in assets if isinstance(item, dg.AssetsDefinition) and item.is_materializable
         for key in item.keys if key.path[0] in TABLE_SCHEMAS),
        key=lambda key: key.to_user_string(),
    )
    return [
        *dg.load_asset_checks_from_modules(ASSET_MODULES),
        row_count_checks(tables),
        *dg.build_column_schema_change_checks(assets=tables, severity=dg.AssetCheckSeverity.WARN),
    ]


all_assets_job = dg.define_asset_job(
    "all_assets",
    selection=dg.AssetSelection.all(),
    description="Materialize every asset and run every check, in one process (DuckDB has a single writer): a "
    "full rebuild, whatever changed.",
)

observe_source_job = dg.define_asset_job(
    "observe_source",
    selection=dg.AssetSelection.assets(keys.INVOICE_SOURCE),
    description="Fingerprint the invoice exports. A new fingerprint makes the automation sensor refresh "
    "everything downstream; an unchanged one starts no analytic work.",
)

nightly_refresh = dg.ScheduleDefinition(
    name="nightly_refresh",
    job=observe_source_job,
    cron_schedule="0 2 * * *",
    execution_timezone="Europe/London",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Observe the exports at 02:00 London time; the refresh_on_new_data sensor takes it from "
    "there.",
)

refresh_on_new_data = dg.AutomationConditionSensorDefinition(
    "refresh_on_new_data",
    target=dg.AssetSelection.all(),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=60,
    description="Materializes the assets whose inputs changed (the AUTOMATION condition of every asset).",
)


@dg.sensor(
    job=observe_source_job,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Observes the exports when a file is added to, changed in or removed from the RETAIL_SOURCE "
    "folder.",
)
def new_source_files(context: dg.SensorEvaluationContext, invoice_source: InvoiceSource):
    """Launch an observation of the source when the listing of the source folder changes."""
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
    models = default_location(os.environ.get("RETAIL_WAREHOUSE", DEFAULT_WAREHOUSE))
    assets = load_assets()
    return dg.Definitions(
        assets=assets,
        asset_checks=load_checks(assets),
        jobs=[all_assets_job, observe_source_job],
        schedules=[nightly_refresh],
        sensors=[new_source_files, refresh_on_new_data],
        executor=dg.in_process_executor,
        resources={
            **warehouse_resources(warehouse_path),
            "invoice_source": InvoiceSource(location=_setting("RETAIL_SOURCE", "synthetic")),
            "rule_mining": RuleMiningSettings(),
            "clustering_settings": ClusteringSettings(),
            "engine": ComputeEngine(
                name=_setting("RETAIL_ENGINE", "embedded"),
                spark_master=_setting("RETAIL_SPARK_MASTER", "local[2]"),
            ),
            "model_store": ModelStore(location=_setting("RETAIL_MODEL_STORE", models)),
            "export_target": ExportTarget(location=_setting("RETAIL_EXPORT", str(DEFAULT_EXPORTS))),
        },
    )


defs = build_definitions()
