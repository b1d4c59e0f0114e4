"""Ingest assets: every source line into ``raw.raw_invoices``, incrementally. Logic lives in pipeline.sources.ingest."""


import dagster as dg
import pandas as pd

from assets import keys
from assets._metadata import preview
from assets._tables import table_out
from assets.checks import schema_check
from pipeline.sources import ingest
from pipeline.staging.schemas import RawInvoices
from resources import InvoiceSource, Warehouse

RAW_COMMENT = "Every source line as received, with normalized types and lineage (source_file, source_sheet, source_row)."
MANIFEST_COMMENT = "One row per ingested source part: its fingerprint, line count and when it was read."


@dg.multi_asset(
    outs={
        "raw_invoices": table_out(keys.RAW_INVOICES, RawInvoices, RAW_COMMENT, owners=("team:data-engineering",)),
        "source_files": dg.AssetOut(
            key=keys.SOURCE_FILES,
            description=MANIFEST_COMMENT,
            metadata={"table_comment": MANIFEST_COMMENT},
            kinds={"duckdb", "pandas"},
            owners=["team:data-engineering"],
        ),
    },
    group_name="ingest",
)
def raw_invoices(context: dg.AssetExecutionContext, invoice_source: InvoiceSource, warehouse: Warehouse):
    """Ingest the source: parse new or changed parts, reuse unchanged ones from the warehouse."""
    parts = invoice_source.parts()
    by_name = {part.source_file: part for part in parts}
    previous = None
    if warehouse.table_exists("raw", "source_files") and warehouse.table_exists("raw", "raw_invoices"):
        previous = warehouse.read_table("raw", "source_files")
    fingerprints = [(part.source_file, part.fingerprint) for part in parts]
    plan = ingest.plan_ingest(fingerprints, previous)
    context.log.info(
        f"source {invoice_source.location!r}: {len(plan.to_read)} part(s) to read, {len(plan.to_keep)} unchanged, "
        f"{len(plan.dropped)} no longer present"
    )

    def read_part(name: str) -> pd.DataFrame:
        context.log.info(f"reading {name}")
        return invoice_source.read_part(by_name[name])

    raw, manifest = ingest.assemble_raw(
        fingerprints,
        plan,
        read_part=read_part,
        load_kept=lambda names: warehouse.read_table("raw", "raw_invoices", where_in=("source_file", names)),
        previous_manifest=previous,
        now=pd.Timestamp.now().floor("s"),
    )
    yield dg.Output(
        raw,
        output_name="raw_invoices",
        metadata={
            "parts_read": len(plan.to_read),
            "parts_unchanged": len(plan.to_keep),
            "lines_read": int(manifest.loc[manifest["source_file"].isin(plan.to_read), "rows"].sum()),
            "preview": preview(raw),
        },
    )
    yield dg.Output(manifest, output_name="source_files", metadata={"parts": len(manifest), "preview": preview(manifest)})


raw_invoices_schema = schema_check(keys.RAW_INVOICES, RawInvoices)
