"""Export assets: parquet files and Tableau extracts of the published snapshot. Logic: pipeline.exports.

Both read the analyst copy read-only, after ``publish/analyst_copy`` (so only a run whose every step and
blocking check passed is exported); on a Snowflake warehouse, which has no analyst copy, they read its tables.
They write a new versioned prefix under ``RETAIL_EXPORT`` before moving its ``latest.json`` pointer (see
``pipeline.exports.layout``).
"""

import datetime as dt
import time

import dagster as dg
import pyarrow as pa

from assets.publish import ANALYST_COPY
from pipeline.exports import formats, layout, tables
from resources import Warehouse
from resources.export import ExportTarget

WAREHOUSE_PARQUET = dg.AssetKey(["exports", "warehouse_parquet"])
TABLEAU_EXTRACTS = dg.AssetKey(["exports", "tableau_extracts"])


def _export(
    context: dg.AssetExecutionContext,
    target: ExportTarget,
    warehouse: Warehouse,
    kind: str,
    relations: tuple[tables.ExportTable, ...],
    **encoding,
) -> dg.MaterializeResult:
    """Export ``relations`` of the analyst copy (or of Snowflake) as one versioned export; make it current."""
    started = time.perf_counter()
    run_id = context.run.run_id
    prefix = layout.export_prefix(kind, dt.datetime.now(dt.UTC), run_id)
    if warehouse.dialect == "snowflake":
        # No analyst copy: Snowflake serves readers while runs write, so the tables are read where they are
        # (the DuckDB SQL of the export tables runs translated).
        read_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        snapshot = f"{warehouse.location} (tables read {read_at})"
        source = warehouse.connect(read_only=True)
    else:
        snapshot, source = target.snapshot_description(), target.snapshot()
    with source as conn:

        def read(table: tables.ExportTable) -> pa.Table:
            return conn.sql(table.select_sql()).to_arrow_table()

        entries = layout.export_tables(relations, read=read, put=target.put, prefix=prefix, **encoding)
    manifest = layout.build_manifest(
        kind=kind, prefix=prefix, run_id=run_id, created_at=dt.datetime.now(dt.UTC),
        snapshot=snapshot, entries=entries,
    )
    layout.commit(target.put, manifest)
    return dg.MaterializeResult(
        metadata={
            "location": dg.MetadataValue.path(target.uri(prefix)),
            "latest": dg.MetadataValue.path(target.uri(layout.latest_key(kind))),
            "tables": len(entries),
            "rows": manifest["total_rows"],
            "size_bytes": manifest["total_bytes"],
            "seconds": round(time.perf_counter() - started, 2),
        }
    )


@dg.asset(key=WAREHOUSE_PARQUET, deps=[ANALYST_COPY], group_name="exports", kinds={"parquet", "s3"},
          owners=["team:data-engineering"])
def warehouse_parquet(
    context: dg.AssetExecutionContext, export_target: ExportTarget, warehouse: Warehouse
) -> dg.MaterializeResult:
    """Every marts view and the model tables analysts use, one parquet file each, with a manifest."""
    return _export(context, export_target, warehouse, "parquet", tables.warehouse_tables(),
                   encode=formats.parquet_bytes, suffix=".parquet")


@dg.asset(key=TABLEAU_EXTRACTS, deps=[ANALYST_COPY], group_name="exports", kinds={"tableau", "s3"},
          owners=["team:analytics"])
def tableau_extracts(
    context: dg.AssetExecutionContext, export_target: ExportTarget, warehouse: Warehouse
) -> dg.MaterializeResult:
    """One Tableau .hyper extract per marts view, with a manifest."""
    return _export(context, export_target, warehouse, "tableau", tables.mart_tables(),
                   encode=formats.hyper_bytes, suffix=".hyper", mapping=formats.hyper_ready)
