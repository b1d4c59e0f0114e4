"""The HTML report: written by its asset, self-contained, every section, real plots and warehouse numbers."""

import base64
import hashlib
import re
from html.parser import HTMLParser
from pathlib import Path

import dagster as dg
import duckdb
import pandas as pd
import pytest

from assets._metadata import PLOTS_FOLDER
from assets.report import ASSET_PLOTS, DEFAULT_REPORT, REPORT_KEY, ReportConfig
from pipeline.warehouse import report

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class _Page(HTMLParser):
    """Collects section ids, their headings and image sources."""

    def __init__(self):
        super().__init__()
        self.sections: list[str] = []
        self.images: list[str] = []
        self.external: list[str] = []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "section":
            self.sections.append(attributes.get("id"))
        if tag == "img":
            self.images.append(attributes.get("src", ""))
        for name in ("src", "href"):
            value = attributes.get(name) or ""
            if value.startswith(("http:", "https:", "//")):
                self.external.append(value)


@pytest.fixture(scope="module")
def built(full_warehouse) -> tuple[str, Path]:
    database, report_path, result = full_warehouse
    assert result.success
    return database, Path(report_path)


@pytest.fixture(scope="module")
def page(built) -> tuple[str, _Page]:
    text = built[1].read_text(encoding="utf-8")
    parsed = _Page()
    parsed.feed(text)
    return text, parsed


def test_report_has_every_section_in_order(page):
    text, parsed = page
    assert parsed.sections == [key for key, _ in report.SECTIONS]
    for key in ("eda", "rfm", "clusters", "predictions", "rules", "network", "svd", "recommender"):
        assert f'href="#{key}"' in text, f"table of contents lacks {key}"


def test_report_embeds_decodable_png_plots_and_nothing_external(page):
    _, parsed = page
    assert len(parsed.images) >= 12
    for source in parsed.images:
        assert source.startswith("data:image/png;base64,")
        assert base64.b64decode(source.split(",", 1)[1]).startswith(PNG_SIGNATURE)
    assert parsed.external == []


def test_report_numbers_come_from_the_warehouse(built, page):
    database, _ = built
    text, _ = page
    with duckdb.connect(database, read_only=True) as conn:
        revenue, invoices, customers = conn.execute(
            "SELECT sum(revenue), count(DISTINCT invoice), count(DISTINCT customer_id) "
            "FROM staging.cleaned_transactions"
        ).fetchall()[0]
        top_rule = conn.execute(
            "SELECT if_bought FROM marts.top_rules WHERE country IS NULL AND rule_rank = 1"
        ).fetchall()[0][0]
        slow = conn.execute("SELECT count(*) FROM marts.slow_movers WHERE status = 'stalled'").fetchall()[0][
            0
        ]
    assert f"£{revenue:,.0f}" in text
    assert f">{invoices:,}<" in text and f">{customers:,}<" in text
    assert top_rule.replace("&", "&amp;") in text
    assert re.search(rf"\b{slow:,} products stalled", text)


def test_report_reuses_the_plots_of_this_run(full_warehouse, page):
    _, _, result = full_warehouse
    (event,) = [
        e for e in result.get_asset_materialization_events() if e.asset_key == REPORT_KEY
    ]
    reused = set(event.materialization.metadata["reused_plots"].value)
    text, _ = page
    embedded = {
        hashlib.sha256(base64.b64decode(uri)).hexdigest()[:16]
        for uri in re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", text)
    }
    assert set(ASSET_PLOTS) - {"rules_scatter", "svd_variance", "recommender_metrics"} <= reused
    for key, entry in [ASSET_PLOTS["cohort_retention"], ASSET_PLOTS["calibration"]]:
        (upstream,) = [e for e in result.get_asset_materialization_events() if e.asset_key == key]
        # The event log links a PNG file named by its content digest (the ephemeral instance's storage is gone
        # after the run); the report embeds that very file.
        plot = upstream.materialization.metadata[entry]
        assert isinstance(plot, dg.PathMetadataValue) and plot.path.endswith(".png")
        assert Path(plot.path).parent.name == PLOTS_FOLDER
        assert Path(plot.path).stem in embedded


def test_render_report_embeds_ready_figures_and_draws_the_rest(built):
    database, _ = built
    with duckdb.connect(database, read_only=True) as conn:
        data = report.load_report_data(conn)
    ready = {name: f"data:image/png;base64,{name}" for name in report.FIGURES if name != "calibration"}
    text = report.render_report(data, generated_at=pd.Timestamp("2011-01-01"), figures=ready)
    for uri in ready.values():
        assert f'src="{uri}"' in text
    assert text.count("data:image/png;base64,") == len(report.FIGURES)
    with pytest.raises(ValueError, match="unknown report figures"):
        report.render_report(data, generated_at=pd.Timestamp("2011-01-01"), figures={"pie": "x"})


def test_report_path_is_configurable_and_defaults_to_the_reports_folder():
    assert ReportConfig().path == str(DEFAULT_REPORT)
    assert DEFAULT_REPORT.parent.name == "reports" and DEFAULT_REPORT.name == "customer_intelligence.html"
    assert ReportConfig(path="/tmp/x.html").path == "/tmp/x.html"
