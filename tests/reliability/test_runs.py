"""Whole runs with real processes: SIGKILL mid-run, an analyst reading during a run, a second run, reruns.

One scenario is played once for the module, because full runs are what costs time:

0. The previous nightly run: the session's full warehouse (fixture ``full_warehouse``, 40,000 synthetic
   lines, seed 42) is copied to a new working warehouse. What analysts had until now: an analyst copy holding
   only ingest and staging of other data (seed 2), easy to tell from the new snapshot.
1. An analyst process reads the analyst copy in a loop (``read_loop``) until step 3 is over.
2. Run B (seed 2) starts in another process and is killed with SIGKILL as soon as it has replaced
   ``staging.cleaned_transactions`` (it is then writing ``staging.rejected_rows``).
3. Run A (seed 42, every asset that writes the warehouse, and the publication) reruns in this process on the
   crashed warehouse. While it holds the warehouse, a second run is started in another process with
   ``dagster job execute`` (the real CLI and code location): it must be refused.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from assets import exports, ingest, publish, staging
from assets.definitions import build_definitions
from resources import ComputeEngine, InvoiceSource, Warehouse, WarehouseIOManager, publication, runlock
from tests.assets.warehouse_build import SYNTHETIC_LINES
from tests.reliability.helpers import REPO_ROOT, VOLATILE_COLUMNS, checksums, start_run, subprocess_env
from tests.reliability.run_pipeline import materialize

SEED_A = InvoiceSource().synthetic_seed  # the session warehouse's
LINES_B, SEED_B = 10_000, 2
KILL_AFTER = ("HANDLED_OUTPUT", '"cleaned_transactions"')
TIMEOUT_S = 600


@dataclass
class Scenario:
    """What the scenario observed (fingerprints by ``schema.table``, see ``helpers.checksums``)."""

    partial: dict[str, str] = field(default_factory=dict)
    copy_old: dict[str, str] = field(default_factory=dict)
    before: dict[str, str] = field(default_factory=dict)
    after_kill: dict[str, str] = field(default_factory=dict)
    copy_after_kill: dict[str, str] = field(default_factory=dict)
    killed_log: str = ""
    rerun_success: bool = False
    contender: subprocess.CompletedProcess | None = None
    contender_done_at: float = 0.0
    rerun_done_at: float = 0.0
    after: dict[str, str] = field(default_factory=dict)
    copy_after: dict[str, str] = field(default_factory=dict)
    reads: list[dict] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)


class _Drain:
    """Collects a subprocess's stderr in a thread (so the pipe never fills) and flags a marker line."""

    def __init__(self, process: subprocess.Popen, marker: tuple[str, ...]):
        self.lines: list[str] = []
        self.seen = threading.Event()
        self._marker = marker
        self._thread = threading.Thread(target=self._run, args=(process,), daemon=True)
        self._thread.start()

    def _run(self, process: subprocess.Popen) -> None:
        for line in process.stderr:
            self.lines.append(line)
            if all(part in line for part in self._marker):
                self.seen.set()

    def text(self) -> str:
        self._thread.join(timeout=30)
        return "".join(self.lines)


#: The second run: the ``dagster`` command line (its console-script entry point), started with the code
#: location already imported, so that it launches as soon as the first run holds the lock. How long a cold
#: interpreter takes to import Dagster and the code location is not what is tested, and on a busy machine it
#: can exceed the whole first run, which would then let the "second" run start after the first ended (and
#: overwrite every table: the failure CI showed).
_CONTENDER = """
import sys, time
from pathlib import Path
import assets.definitions
from dagster._cli import main
go = Path(sys.argv[1])
while not go.exists():
    time.sleep(0.02)
sys.argv = ["dagster", "job", "execute", "-m", "assets.definitions", "-j", "all_assets"]
sys.exit(main())
"""


def _start_contender(database: Path, home: Path) -> tuple[subprocess.Popen, Path]:
    """Start the second run's process; it imports the code location, then waits for the returned go file."""
    home.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    go = home / "go"
    env = subprocess_env(DAGSTER_HOME=str(home), RETAIL_WAREHOUSE=str(database), RETAIL_SOURCE="synthetic")
    process = subprocess.Popen(
        [sys.executable, "-c", _CONTENDER, str(go)],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    return process, go


def _contend(
    process: subprocess.Popen, go: Path, database: Path, previous_owner: str, observed: Scenario
) -> None:
    """Once this process's next run holds the lock, let the second run launch ``all_assets``."""
    deadline = time.monotonic() + TIMEOUT_S
    while (runlock.holder(database) or {}).get("owner") == previous_owner and time.monotonic() < deadline:
        time.sleep(0.05)
    go.touch()
    stdout, stderr = process.communicate(timeout=TIMEOUT_S)
    observed.contender = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
    observed.contender_done_at = time.monotonic()


@pytest.fixture(scope="module")
def scenario(tmp_path_factory, full_warehouse) -> Scenario:
    root = tmp_path_factory.mktemp("runs")
    database = root / "warehouse" / "retail.duckdb"
    analyst = root / "warehouse" / "retail_analyst.duckdb"
    observed = Scenario()
    clock = time.perf_counter()

    previous, _, previous_result = full_warehouse
    assert previous_result.success
    database.parent.mkdir()
    shutil.copyfile(previous, database)
    observed.before = checksums(database, ignore=VOLATILE_COLUMNS)
    other = root / "other" / "retail.duckdb"
    assert materialize(str(other), lines=LINES_B, seed=SEED_B, foundation_only=True).success
    publication.publish_copy(other, analyst)
    observed.partial = checksums(other, ignore=VOLATILE_COLUMNS)
    observed.copy_old = checksums(analyst, ignore=VOLATILE_COLUMNS)
    observed.seconds["setup"] = time.perf_counter() - clock

    log, stop = root / "reads.jsonl", root / "stop"
    reader = subprocess.Popen(
        [sys.executable, "-m", "tests.reliability.read_loop", str(analyst), str(log), str(stop)],
        cwd=REPO_ROOT,
        env=subprocess_env(),
    )
    try:
        clock = time.perf_counter()
        killed = start_run(database, lines=LINES_B, seed=SEED_B)
        drain = _Drain(killed, KILL_AFTER)
        if not drain.seen.wait(TIMEOUT_S):
            killed.kill()
            raise AssertionError("run B never wrote staging.cleaned_transactions:\n" + drain.text()[-3000:])
        os.kill(killed.pid, signal.SIGKILL)
        killed.wait()
        observed.killed_log = drain.text()
        # The second run's interpreter imports while the checksums below are taken.
        contender_process, go = _start_contender(database, root / "dagster_home")
        observed.seconds["run_b_until_kill"] = time.perf_counter() - clock
        observed.after_kill = checksums(database, ignore=VOLATILE_COLUMNS)
        observed.copy_after_kill = checksums(analyst, ignore=VOLATILE_COLUMNS)

        clock = time.perf_counter()
        previous_owner = runlock.holder(database)["owner"]
        contender = threading.Thread(
            target=_contend, args=(contender_process, go, database, previous_owner, observed)
        )
        contender.start()
        observed.rerun_success = materialize(
            str(database), lines=SYNTHETIC_LINES, seed=SEED_A, raise_on_error=False
        ).success
        observed.rerun_done_at = time.monotonic()
        contender.join(TIMEOUT_S)
        observed.seconds["run_a_with_contender"] = time.perf_counter() - clock
    finally:
        stop.touch()
        reader.wait(60)
    observed.reads = [json.loads(line) for line in log.read_text().splitlines()]
    observed.after = checksums(database, ignore=VOLATILE_COLUMNS)
    observed.copy_after = checksums(analyst, ignore=VOLATILE_COLUMNS)
    print("scenario seconds:", {name: round(value, 1) for name, value in observed.seconds.items()})
    return observed


def _tables(fingerprints: dict[str, str]) -> set[str]:
    return {name for name, value in fingerprints.items() if value.startswith("table|")}


def test_sigkill_mid_run_keeps_every_table_whole_and_the_analyst_copy_unchanged(scenario):
    assert "publish__analyst_copy" not in scenario.killed_log, "killed before publication"
    assert scenario.after_kill.keys() == scenario.before.keys(), "a table appeared or vanished"
    replaced = {
        name for name in _tables(scenario.before) if scenario.after_kill[name] != scenario.before[name]
    }
    # Killed mid-run: it had replaced the raw and cleaned tables, and not yet the analytics ones.
    assert {"raw.raw_invoices", "staging.cleaned_transactions"} <= replaced
    assert not any(name.startswith("analytics.") for name in replaced)
    for name in replaced:
        # Each replaced table is the complete version of run B's data (as step 0 computed it), never a mix.
        assert scenario.after_kill[name] == scenario.partial[name], name
    assert scenario.copy_after_kill == scenario.copy_old


def test_next_run_after_the_crash_completes_and_reproduces_every_table(scenario):
    assert scenario.rerun_success
    # The same data on the same warehouse, through a crash with other data in between: identical results.
    differing = sorted(name for name in scenario.before if scenario.after.get(name) != scenario.before[name])
    assert differing == [] and scenario.after.keys() == scenario.before.keys()
    assert scenario.copy_after == scenario.after, (
        "the analyst copy is the warehouse of the last successful run"
    )


def test_second_run_is_refused_cleanly_while_one_runs(scenario):
    contender = scenario.contender
    output = contender.stdout + contender.stderr
    assert scenario.contender_done_at < scenario.rerun_done_at, "the second run must end while the first runs"
    assert contender.returncode != 0
    assert "another run holds the warehouse lock since" in output
    assert f"(pid {os.getpid()} " in output
    assert "STEP_START" not in output, "the refused run must not start any step"


def test_analyst_reads_during_runs_see_a_whole_snapshot_old_or_new(scenario):
    reads = scenario.reads
    assert [read["error"] for read in reads if "error" in read] == []
    old = [read for read in reads if read["checksums"] == scenario.copy_old]
    new = [read for read in reads if read["checksums"] == scenario.copy_after]
    assert len(old) + len(new) == len(reads), "a read saw a table that is neither the old nor the new version"
    assert old and new and len(reads) >= 10
    # Once the new snapshot was published, no read went back to the old one.
    assert max(read["at"] for read in old) < min(read["at"] for read in new)


def test_publication_depends_on_every_other_asset():
    graph = build_definitions().resolve_asset_graph()
    everything = set(graph.materializable_asset_keys)
    if publish.ANALYST_COPY not in everything:
        pytest.fail("assets.publish is not in ASSET_MODULES of assets.definitions")
    # Every table and view; the observed exports are upstream of it through raw_invoices. The exports of the
    # analyst copy come after it.
    after = {publish.ANALYST_COPY, exports.WAREHOUSE_PARQUET, exports.TABLEAU_EXTRACTS}
    assert graph.get(publish.ANALYST_COPY).parent_keys == everything - after


def test_failed_blocking_check_keeps_downstream_tables_and_the_analyst_copy(tmp_path):
    """A blocking check fails: downstream tables and the analyst copy keep their previous version."""
    database = str(tmp_path / "retail.duckdb")

    @dg.asset(
        key=["analytics", "downstream"], ins={"cleaned": dg.AssetIn(key=["staging", "cleaned_transactions"])}
    )
    def downstream(cleaned):
        return cleaned.head(5)

    @dg.asset_check(asset=["staging", "cleaned_transactions"], blocking=True, name="fails_on_seed_2")
    def fails_on_seed_2(invoice_source: InvoiceSource) -> dg.AssetCheckResult:
        return dg.AssetCheckResult(passed=invoice_source.synthetic_seed != 2)

    def run(seed: int) -> dg.ExecuteInProcessResult:
        return dg.materialize(
            [
                ingest.raw_invoices,
                staging.cleaned_transactions,
                downstream,
                fails_on_seed_2,
                publish.analyst_copy,
            ],
            resources={
                "io_manager": WarehouseIOManager(database=database),
                "warehouse": Warehouse(database=database),
                "invoice_source": InvoiceSource(
                    location="synthetic", synthetic_lines=2_000, synthetic_seed=seed
                ),
                "engine": ComputeEngine(),
            },
            raise_on_error=False,
        )

    assert run(1).success
    analyst = tmp_path / "retail_analyst.duckdb"
    before, copy_before = checksums(database), checksums(analyst)
    failed = run(2)
    assert not failed.success
    after = checksums(database)
    assert after["staging.cleaned_transactions"] != before["staging.cleaned_transactions"]
    assert after["analytics.downstream"] == before["analytics.downstream"]
    assert checksums(analyst) == copy_before
    with duckdb.connect(str(analyst), read_only=True) as conn:
        assert conn.execute("SELECT count(*) FROM analytics.downstream").fetchone() == (5,)
