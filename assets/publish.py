"""Publication asset: the analyst copy, swapped in once everything else in the run succeeded.

Logic lives in resources.publication. The asset depends on every other asset of the code location, so
Dagster runs it last and skips it when any upstream step fails or any blocking check fails: the analyst copy
then keeps the previous run's snapshot. ``tests/reliability`` checks that no asset is missing from its
dependencies.
"""

import dagster as dg

from assets import baskets, customers, eda, ingest, marts, network, recommendations, report, staging
from resources import Warehouse

UPSTREAM_MODULES = [ingest, staging, eda, customers, baskets, network, recommendations, marts, report]
ANALYST_COPY = dg.AssetKey(["publish", "analyst_copy"])


def _upstream_keys() -> list[dg.AssetKey]:
    """Every materialized asset key of the upstream modules (not the observed source), in a stable order."""
    keys = {
        key
        for definition in dg.load_assets_from_modules(UPSTREAM_MODULES)
        if isinstance(definition, dg.AssetsDefinition) and definition.is_materializable
        for key in definition.keys
    }
    return sorted(keys, key=lambda key: key.to_user_string())


@dg.asset(
    key=ANALYST_COPY,
    deps=_upstream_keys(),
    group_name="publish",
    kinds={"duckdb"},
    owners=["team:data-engineering"],
)
def analyst_copy(context: dg.AssetExecutionContext, warehouse: Warehouse) -> dg.MaterializeResult:
    """Read-only copy of the warehouse for analysts, swapped in atomically once the rest of the run passed."""
    if not warehouse.is_local_file:
        reason = (
            f"the warehouse {warehouse.database} is not a local DuckDB file: there is no file to copy, and "
            "analysts connect to it directly (a remote database serves readers while the pipeline writes)"
        )
        context.log.warning(f"analyst copy not published: {reason}")
        return dg.MaterializeResult(metadata={"published": False, "skipped_reason": reason})
    published = warehouse.publish_analyst_copy()
    return dg.MaterializeResult(
        metadata={
            "published": True,
            "path": dg.MetadataValue.path(str(published.path)),
            "size_bytes": published.size_bytes,
            "tables": len(published.tables),
            "views": len(published.views),
            "rows": dg.MetadataValue.json(published.tables),
            "seconds": round(published.seconds, 2),
        }
    )
