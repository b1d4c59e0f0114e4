"""The network download is retried by Dagster when it fails transiently, and fails at once otherwise."""

from __future__ import annotations

import dagster as dg
import pytest

from assets import keys
from assets.definitions import load_assets
from resources import InvoiceSource
from tests.assets.warehouse_build import resources_for
from tests.pipeline.sources.test_download import Server, uci_workbook_bytes, zip_bytes

PATH = "/static/public/502/online+retail+ii.zip"


@pytest.fixture
def server():
    running = Server({PATH: (zip_bytes({"online_retail_II.xlsx": uci_workbook_bytes()}), True)})
    running.thread.start()
    yield running
    running.httpd.shutdown()
    running.httpd.server_close()
    running.thread.join(timeout=5)


def observe(tmp_path, url: str, *, retries: int) -> dg.ExecuteInProcessResult:
    source = InvoiceSource(
        location="uci",
        uci_url=url,
        cache_dir=str(tmp_path / "cache"),
        download_retries=retries,
        download_retry_seconds=0,
    )
    return dg.materialize(
        load_assets(),
        selection=dg.AssetSelection.assets(keys.INVOICE_SOURCE),
        resources=resources_for(str(tmp_path / "retail.duckdb"), source),
        raise_on_error=False,
    )


def test_a_server_under_maintenance_is_retried_until_it_answers(server, tmp_path):
    server.unavailable[PATH] = 2
    result = observe(tmp_path, server.url(PATH), retries=3)
    assert result.success
    assert server.requests == [PATH] * 3
    restarts = [e for e in result.all_events if e.event_type_value == "STEP_RESTARTED"]
    assert len(restarts) == 2


def test_retries_are_bounded_and_final_errors_are_not_retried(server, tmp_path):
    server.unavailable[PATH] = 5
    assert not observe(tmp_path / "a", server.url(PATH), retries=2).success
    assert server.requests == [PATH] * 3  # the first attempt and two retries
    server.requests.clear()
    assert not observe(tmp_path / "b", server.url("/missing.zip"), retries=3).success
    assert server.requests == ["/missing.zip"]  # a 404 is final
