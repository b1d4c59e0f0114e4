"""A running ``dagster dev`` (webserver, daemon, code server) on a free local port, shared by the UI tests."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT_S = 90


@dataclass(frozen=True)
class DagsterUi:
    """Where the test instance of the UI listens and keeps its state."""

    url: str
    dagster_home: Path
    warehouse: Path
    log: Path

    def graphql(self, query: str, variables: dict | None = None) -> dict:
        """POST a GraphQL query and return its ``data``, failing on GraphQL errors."""
        request = urllib.request.Request(
            f"{self.url}/graphql",
            data=json.dumps({"query": query, "variables": variables or {}}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            body = json.load(response)
        assert "errors" not in body, body["errors"]
        return body["data"]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _get(url: str) -> bytes | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.read()
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None


def _stop(process: subprocess.Popen) -> None:
    """Interrupt the process group we started (dagster dev and its children); kill what is left of it."""
    try:
        os.killpg(process.pid, signal.SIGINT)
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass
    except ProcessLookupError:
        return
    # The group can outlive its leader (code server, daemon, a run): leave nothing behind.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=5)


@pytest.fixture(scope="package")
def dagster_ui(tmp_path_factory) -> DagsterUi:
    """Start ``dagster dev`` with a temporary DAGSTER_HOME and warehouse; wait until the code is loaded."""
    root = tmp_path_factory.mktemp("ui")
    home, warehouse, log = (
        root / "dagster_home",
        root / "warehouse" / "retail.duckdb",
        root / "dagster_dev.log",
    )
    home.mkdir()
    shutil.copy(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    port = _free_port()
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "RETAIL_WAREHOUSE": str(warehouse),
        "RETAIL_SOURCE": "synthetic",
    }
    dagster = Path(sys.executable).with_name("dagster")
    with log.open("w") as output:
        process = subprocess.Popen(
            [str(dagster), "dev", "-m", "assets.definitions", "-h", "127.0.0.1", "-p", str(port)],
            cwd=REPO_ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    ui = DagsterUi(url=f"http://127.0.0.1:{port}", dagster_home=home, warehouse=warehouse, log=log)
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while _get(f"{ui.url}/server_info") is None:
            assert process.poll() is None, f"dagster dev exited:\n{log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, (
                f"no /server_info after {STARTUP_TIMEOUT_S} s:\n{log.read_text()[-3000:]}"
            )
            time.sleep(0.5)
        while True:
            entries = ui.graphql(
                "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus "
                "locationOrLoadError { __typename ... on PythonError { message } } } } } }"
            )
            entries = entries["workspaceOrError"]["locationEntries"]
            if entries and all(entry["loadStatus"] == "LOADED" for entry in entries):
                errors = [
                    e["locationOrLoadError"]
                    for e in entries
                    if e["locationOrLoadError"]["__typename"] != "RepositoryLocation"
                ]
                assert not errors, errors
                break
            assert time.monotonic() < deadline, f"code location not loaded after {STARTUP_TIMEOUT_S} s"
            time.sleep(0.5)
        yield ui
    finally:
        _stop(process)
