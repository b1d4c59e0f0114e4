"""The Dagster UI renders in a real headless browser (Debian's chromium), showing every asset group."""

import pytest

from tests.ui.browser_check import asset_groups, check_ui, find_chromium


@pytest.fixture(scope="module")
def chromium() -> str:
    found = find_chromium()
    if found is None:
        pytest.skip("headless browser check needs Chromium: `apt-get install chromium` (Debian) and rerun")
    return found


def test_asset_lineage_renders_in_headless_chromium(dagster_ui, chromium, tmp_path):
    groups = asset_groups(dagster_ui.url)
    assert {"ingest", "staging", "marts", "reports"} <= set(groups)
    result = check_ui(dagster_ui.url, tmp_path / "lineage.png", groups=groups, chromium=chromium)
    assert result["missing_groups"] == []
