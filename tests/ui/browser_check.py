"""Load the Dagster UI in headless Chromium and check it renders the asset graph.

Run against a UI you started with ``make ui``::

    .venv/bin/python -m tests.ui.browser_check --url http://127.0.0.1:3000 --screenshot reports/ui_lineage.png

It renders ``/asset-groups`` (the global asset lineage), saves a screenshot, and fails unless the rendered
page
names every asset group and the screenshot is not blank. Chromium comes from Debian (``apt-get install
chromium``); the pytest wrapper (``test_browser.py``) skips when it is absent.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

import numpy as np
from matplotlib import image

CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
)


def find_chromium() -> str | None:
    """Path of a Chromium or Chrome executable on PATH, or ``None``."""
    for name in CHROMIUM_CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


def asset_groups(url: str) -> list[str]:
    """Asset group names the running UI serves, from its GraphQL API.

    Args:
        url: Base URL of the Dagster UI.

    Returns:
        The distinct group names, sorted.
    """
    request = urllib.request.Request(
        url.rstrip("/") + "/graphql",
        data=json.dumps({"query": "{ assetNodes { groupName } }"}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        nodes = json.load(response)["data"]["assetNodes"]
    return sorted({node["groupName"] for node in nodes})


def _chromium(chromium: str, url: str, mode: list[str], *, budget_ms: int, timeout_s: int) -> str:
    """Run headless Chromium once with a throwaway profile; return its stdout."""
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        done = subprocess.run(
            [
                chromium,
                *_FLAGS,
                f"--user-data-dir={profile}",
                f"--virtual-time-budget={budget_ms}",
                *mode,
                url,
            ],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    if done.returncode != 0:
        raise RuntimeError(f"chromium exited {done.returncode}: {done.stderr[-2000:]}")
    return done.stdout


def check_ui(
    url: str,
    screenshot: Path,
    *,
    groups: list[str],
    chromium: str | None = None,
    budget_ms: int = 15_000,
    timeout_s: int = 60,
    window: tuple[int, int] = (1400, 900),
) -> dict:
    """Render the global asset lineage page, save a screenshot and check both.

    Args:
        url: Base URL of the Dagster UI, e.g. ``http://127.0.0.1:3000``.
        screenshot: Where the PNG is written.
        groups: Asset group names the rendered page must show.
        chromium: Browser executable; found on PATH when ``None``.
        budget_ms: Virtual time Chromium lets the single-page app run before capturing.
        timeout_s: Wall-clock limit per Chromium run.
        window: Window size in pixels.

    Returns:
        ``{"dom_chars", "missing_groups", "screenshot", "distinct_colours", "ink_share"}``.

    Raises:
        AssertionError: When a group is missing from the page or the screenshot is blank.
        RuntimeError: When no browser is found or Chromium fails.
    """
    chromium = chromium or find_chromium()
    if chromium is None:
        raise RuntimeError("no Chromium found: apt-get install chromium")
    page = url.rstrip("/") + "/asset-groups"
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    # One browser run prints the rendered DOM and saves the screenshot of the same page state.
    dom = _chromium(
        chromium,
        page,
        ["--dump-dom", f"--window-size={window[0]},{window[1]}", f"--screenshot={screenshot}"],
        budget_ms=budget_ms,
        timeout_s=timeout_s,
    )
    pixels = image.imread(str(screenshot))[..., :3]
    colours = np.unique((pixels * 255).astype(np.uint8).reshape(-1, 3), axis=0)
    background = np.median(pixels.reshape(-1, 3), axis=0)
    ink_share = float((np.abs(pixels - background).sum(axis=-1) > 0.1).mean())
    missing = [group for group in groups if f">{group}<" not in dom]
    result = {
        "dom_chars": len(dom),
        "missing_groups": missing,
        "screenshot": str(screenshot),
        "distinct_colours": len(colours),
        "ink_share": round(ink_share, 4),
    }
    assert "Global asset lineage" in dom, f"the lineage page did not render: {result}"
    assert not missing, f"asset groups missing from the rendered page: {result}"
    assert pixels.shape[:2] == (window[1], window[0]) and len(colours) > 50 and ink_share > 0.01, (
        f"blank screenshot: {result}"
    )
    return result


def main(argv: list[str] | None = None) -> int:
    """Command line: check a running UI and print what was found."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:3000", help="Base URL of the Dagster UI.")
    parser.add_argument(
        "--screenshot", type=Path, default=Path("reports/ui_lineage.png"), help="PNG to write."
    )
    parser.add_argument(
        "--group",
        action="append",
        dest="groups",
        help="Asset group the page must show (repeatable); default: every group the UI serves.",
    )
    args = parser.parse_args(argv)
    groups = args.groups or asset_groups(args.url)
    print(check_ui(args.url, args.screenshot, groups=groups))
    return 0


if __name__ == "__main__":
    sys.exit(main())
