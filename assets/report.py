"""Report assets: the self-contained HTML customer-intelligence report. Rendering lives in pipeline.report."""

import re
from pathlib import Path

import dagster as dg
import pandas as pd
from pydantic import Field

from pipeline import report
from resources import Warehouse

DEFAULT_REPORT = Path(__file__).resolve().parents[1] / "reports" / "customer_intelligence.html"
REPORT_KEY = dg.AssetKey(["reports", "customer_intelligence"])
# The report depends on exactly the relations its queries read.
_READS = sorted(
    {
        name
        for sql in report.REPORT_QUERIES.values()
        for name in re.findall(r"\b(?:staging|analytics|marts)\.[a-z_0-9]+", sql)
    }
)


class ReportConfig(dg.Config):
    """Where the report is written."""

    path: str = Field(default=str(DEFAULT_REPORT), description="Output HTML file (folders are created).")
    dpi: int = Field(default=80, description="Resolution of the embedded plots.")


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
        data = report.load_report_data(conn)
    page = report.render_report(data, generated_at=pd.Timestamp.now(), dpi=config.dpi)
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
            "sections": dg.MetadataValue.json([heading for _, heading in report.SECTIONS]),
        }
    )
