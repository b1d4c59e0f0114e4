"""Ingest assets: every source line into ``raw.raw_invoices``, incrementally. Logic lives in pipeline.sources.ingest."""


import dagster as dg
import pandas as pd

from assets import keys
from assets._metadata import preview
from assets._tables import table_out
from assets.checks import schema_check
from pipeline.sources import ingest
from pipeline.sources.download import TransientDownloadError
from pipeline.staging.schemas import RawInvoices
from resources import InvoiceSource, SourcePart, Warehouse

RAW_COMMENT = "Every source line as received, with normalized types and lineage (source_file, source_sheet, source_row)."
MANIFEST_COMMENT = "One row per ingested source part: its fingerprint, line count and when it was read."


def source_parts(invoice_source: InvoiceSource) -> list[SourcePart]:
    """The source's parts; a transient download failure asks Dagster to retry the step later.

    The retry policy of the network download: an unreachable server, a timeout, a 429 or a 5xx answer is retried
    ``download_retries`` times, ``download_retry_seconds`` apart; any other failure (a 404, a bad checksum, a
    malformed file) fails at once with its message.
    """
    try:
        return invoice_source.parts()
    except TransientDownloadError as error:
        raise dg.RetryRequested(
            max_retries=invoice_source.download_retries, seconds_to_wait=invoice_source.download_retry_seconds
        ) from error


@dg.multi_observable_source_asset(
    specs=[
        dg.AssetSpec(
            key=keys.INVOICE_SOURCE,
            group_name="ingest",
            description="The invoice exports named by RETAIL_SOURCE; observing them records their fingerprint as "
            "the data version, so downstream assets refresh only when the exports change.",
            kinds={"xlsx", "csv", "parquet"},
            owners=["team:data-engineering"],
        )
    ],
)
def invoice_exports(invoice_source: InvoiceSource):
    """Fingerprint the source (every part's content hash) without parsing it."""
    parts = source_parts(invoice_source)
    yield dg.ObserveResult(
        asset_key=keys.INVOICE_SOURCE,
        data_version=dg.DataVersion(invoice_source.data_version(parts)),
        metadata={"parts": len(parts), "location": invoice_source.location},
    )


@dg.multi_asset(
    deps=[keys.INVOICE_SOURCE],
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
    parts = source_parts(invoice_source)
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
