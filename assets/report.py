"""Report assets: the self-contained HTML customer-intelligence report. Rendering lives in pipeline.warehouse.report."""

import re
from pathlib import Path

import dagster as dg
import pandas as pd
from pydantic import Field

from assets import keys
from pipeline.common import figures
from pipeline.warehouse import report
from resources import Warehouse

DEFAULT_REPORT = Path(__file__).resolve().parents[1] / "reports" / "customer_intelligence.html"
REPORT_KEY = keys.CUSTOMER_INTELLIGENCE_REPORT
# The report depends on exactly the relations its queries read.
_READS = sorted(
    {
        name
        for sql in report.REPORT_QUERIES.values()
        for name in re.findall(r"\b(?:staging|analytics|marts)\.[a-z_0-9]+", sql)
    }
)


# Report figures that an upstream asset draws from the same table and attaches to its materialization, with
# the metadata entry holding it. The product network is missing: the report labels its nodes with
# descriptions.
ASSET_PLOTS: dict[str, tuple[dg.AssetKey, str]] = {
    "monthly_sales": (keys.EDA_MONTHLY_SALES, "plot"),
    "country_sales": (keys.EDA_COUNTRY_SALES, "plot"),
    "cohort_retention": (keys.EDA_COHORT_RETENTION, "plot"),
    "rfm_distributions": (keys.RFM, "plot"),
    "segment_summary": (keys.RFM_SEGMENT_SUMMARY, "plot"),
    "model_selection": (keys.CLUSTER_MODEL_SELECTION, "plot"),
    "cluster_scatter": (keys.CUSTOMER_CLUSTERS, "plot"),
    "calibration": (keys.PREDICTION_EVALUATION, "calibration"),
    "rules_scatter": (keys.ASSOCIATION_RULES, "plot"),
    "svd_variance": (keys.SVD_EXPLAINED_VARIANCE, "plot"),
    "recommender_metrics": (keys.RECOMMENDER_EVALUATION, "plot"),
}


class ReportConfig(dg.Config):
    """Where the report is written."""

    path: str = Field(default=str(DEFAULT_REPORT), description="Output HTML file (folders are created).")
    dpi: int = Field(default=80, description="Resolution of the plots the report draws itself.")
    reuse_asset_plots: bool = Field(
        default=True,
        description="Embed the plots that upstream assets attached to their materializations in this same "
        "run instead of drawing them again (they keep the assets' resolution); false draws every plot at "
        "dpi.",
    )


def asset_plots(context: dg.AssetExecutionContext, data: dict[str, pd.DataFrame]) -> dict[str, str]:
    """The report figures already drawn by upstream assets materialized in the current run, as data URIs.

    Each upstream plot is a PNG file linked from its materialization (``assets._metadata.figure``); the
    report embeds its bytes, so the HTML stays self-contained.

    Only this run's materializations count, so every reused plot shows the table the report reads; an
    upstream asset materialized in an earlier run may since have been rewritten. The model-selection plot
    counts only when it marks the k of the stored clusters.

    Args:
        context: The report's execution context.
        data: The frames of ``report.load_report_data``.

    Returns:
        PNG data URIs by report figure name (see ``report.FIGURES``); figures not found are left out.
    """
    k = int((data["cluster_profiles"]["model"] == "kmeans").sum())
    found: dict[str, str] = {}
    for name, (key, entry) in ASSET_PLOTS.items():
        event = context.instance.get_latest_materialization_event(key)
        if event is None or event.run_id != context.run.run_id:
            continue
        metadata = event.asset_materialization.metadata
        chosen = metadata.get("chosen_k")
        if name == "model_selection" and (chosen is None or chosen.value != k):
            continue
        path = getattr(metadata.get(entry), "path", None)
        if path is not None and Path(path).is_file():
            found[name] = figures.data_uri(Path(path).read_bytes())
    return found


@dg.asset(
    key=REPORT_KEY,
    deps=[dg.AssetKey(name.split(".")) for name in _READS],
    group_name="reports",
    kinds={"html", "duckdb"},
    owners=["team:analytics"],
)
def customer_intelligence_report(
    context: dg.AssetExecutionContext, config: ReportConfig, warehouse: Warehouse
) -> dg.MaterializeResult:
    """Self-contained HTML report with the headline numbers, plots and tables of every stage."""
    with warehouse.connect() as conn:
        data = report.load_report_data(conn, dialect=warehouse.dialect)
    reused = asset_plots(context, data) if config.reuse_asset_plots else {}
    page = report.render_report(data, generated_at=pd.Timestamp.now(), dpi=config.dpi, figures=reused)
    target = Path(config.path).expanduser().resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    # Write beside the target and rename, so a reader never opens a half-written report.
    partial = target.with_name(f".{target.name}.partial")
    partial.write_text(page, encoding="utf-8")
    partial.replace(target)
    context.log.info(f"wrote {target} ({len(page) / 1e6:.1f} MB)")
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(target)),
            "size_kb": round(len(page.encode()) / 1024),
            "images": page.count("data:image/png;base64,"),
            "reused_plots": dg.MetadataValue.json(sorted(reused)),
            "sections": dg.MetadataValue.json([heading for _, heading in report.SECTIONS]),
        }
    )
