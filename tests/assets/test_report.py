"""The HTML report: written by its asset, self-contained, every section, real plots and warehouse numbers."""

import base64
import re
from html.parser import HTMLParser
from pathlib import Path

import duckdb
import pytest

from assets.report import DEFAULT_REPORT, ReportConfig
from pipeline import report
from tests.assets.test_marts import materialized_warehouse

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
def built(tmp_path_factory) -> tuple[str, Path]:
    database, report_path, result = materialized_warehouse(tmp_path_factory)
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


def test_report_path_is_configurable_and_defaults_to_the_reports_folder():
    assert ReportConfig().path == str(DEFAULT_REPORT)
    assert DEFAULT_REPORT.parent.name == "reports" and DEFAULT_REPORT.name == "customer_intelligence.html"
    assert ReportConfig(path="/tmp/x.html").path == "/tmp/x.html"
