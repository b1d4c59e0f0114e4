"""The run lock and the analyst copy, on their own: real processes, real files, no pipeline."""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import sys
import time
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from assets import ingest
from resources import InvoiceSource, Warehouse, WarehouseIOManager, publication, runlock
from tests.reliability.helpers import checksums

# Loads resources/runlock.py alone (no Dagster import), so the helper process starts in a split second.
HOLD_LOCK = """
import importlib.util, sys, time
spec = importlib.util.spec_from_file_location("runlock", sys.argv[1])
runlock = sys.modules["runlock"] = importlib.util.module_from_spec(spec)
spec.loader.exec_module(runlock)
runlock.acquire(sys.argv[2], owner="helper-run")
print("held", flush=True)
time.sleep(600)
"""


@pytest.fixture
def lock_holder(tmp_path):
    """Start a process that takes the warehouse lock and sleeps; yields (process, database)."""
    database = tmp_path / "retail.duckdb"
    script = Path(runlock.__file__)
    process = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(script), str(database)], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout.readline().strip() == "held"
    yield process, database
    process.kill()
    process.wait()


def test_lock_held_by_another_process_refuses_with_its_pid(lock_holder):
    process, database = lock_holder
    with pytest.raises(runlock.WarehouseBusyError) as error:
        runlock.acquire(database, owner="me")
    message = str(error.value)
    assert "another run holds the warehouse lock since" in message
    assert f"(pid {process.pid} " in message and "run helper-run" in message


def test_sigkill_of_the_holder_frees_the_lock(lock_holder):
    process, database = lock_holder
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    with runlock.run_lock(database, owner="next-run"):
        assert runlock.holder(database)["pid"] == os.getpid()


def test_lock_is_shared_within_a_run_and_exclusive_between_runs(tmp_path):
    database = tmp_path / "retail.duckdb"
    with runlock.run_lock(database, owner="run-1"), runlock.run_lock(database, owner="run-1"):
        with pytest.raises(runlock.WarehouseBusyError, match="run run-1"):
            runlock.acquire(database, owner="run-2")
    with runlock.run_lock(database, owner="run-2"):
        pass


def test_run_refused_by_the_lock_touches_nothing(tmp_path):
    database = tmp_path / "retail.duckdb"
    resources = {
        "io_manager": WarehouseIOManager(database=str(database)),
        "warehouse": Warehouse(database=str(database)),
        "invoice_source": InvoiceSource(location="synthetic", synthetic_lines=1_000),
    }
    assert dg.materialize([ingest.raw_invoices], resources=resources).success
    before = checksums(database)
    with runlock.run_lock(database, owner="nightly"):
        result = dg.materialize([ingest.raw_invoices], resources=resources, raise_on_error=False)
    assert not result.success
    assert result.get_asset_materialization_events() == []
    assert [
        event.event_type_value for event in result.all_events if event.event_type_value == "STEP_START"
    ] == []
    assert checksums(database) == before


def _small_warehouse(path: Path, rows: int) -> None:
    with duckdb.connect(str(path)) as conn:
        conn.execute("CREATE SCHEMA IF NOT EXISTS analytics")
        conn.execute("CREATE SCHEMA IF NOT EXISTS marts")
        conn.execute(
            "CREATE OR REPLACE TABLE analytics.sales AS SELECT range AS id, range * 1.5 AS gbp FROM range(?)",
            [rows],
        )
        conn.execute("COMMENT ON TABLE analytics.sales IS 'one row per sale'")
        conn.execute("CREATE OR REPLACE VIEW marts.big_sales AS SELECT * FROM analytics.sales WHERE gbp > 10")


def test_publication_is_an_exact_read_only_copy(tmp_path):
    database = tmp_path / "retail.duckdb"
    _small_warehouse(database, 1_000)
    target = publication.default_analyst_path(database)
    assert target == tmp_path / "retail_analyst.duckdb"
    published = publication.publish_copy(database, target)
    assert published.tables == {"analytics.sales": 1_000} and published.views == ["marts.big_sales"]
    assert checksums(target) == checksums(database)
    assert target.stat().st_mode & 0o777 == 0o444
    with publication.connect_analyst(target) as conn:
        assert conn.execute("SELECT comment FROM duckdb_tables()").fetchone() == ("one row per sale",)
        with pytest.raises(duckdb.Error):
            conn.execute("DROP TABLE analytics.sales")
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_failed_publication_keeps_the_previous_copy(tmp_path, monkeypatch):
    database = tmp_path / "retail.duckdb"
    _small_warehouse(database, 10)
    target = tmp_path / "retail_analyst.duckdb"
    publication.publish_copy(database, target)
    previous = checksums(target)
    _small_warehouse(database, 20)
    leftover = tmp_path / ".retail_analyst.duckdb.abc.publishing"
    leftover.write_bytes(b"killed mid-copy")

    def corrupt(path: Path):
        raise publication.PublicationError(f"{path} does not open")

    monkeypatch.setattr(publication, "_verify", corrupt)
    with pytest.raises(publication.PublicationError):
        publication.publish_copy(database, target)
    assert checksums(target) == previous
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # leftovers cleaned up
    with pytest.raises(publication.PublicationError, match="cannot be the working warehouse"):
        publication.publish_copy(database, database)


def test_reader_keeps_its_snapshot_across_a_publication(tmp_path):
    database = tmp_path / "retail.duckdb"
    target = tmp_path / "retail_analyst.duckdb"
    _small_warehouse(database, 10)
    publication.publish_copy(database, target)
    with publication.connect_analyst(target) as reader:
        _small_warehouse(database, 20)
        publication.publish_copy(database, target)
        assert reader.execute("SELECT count(*) FROM analytics.sales").fetchone() == (10,)
    with publication.connect_analyst(target) as reader:
        assert reader.execute("SELECT count(*) FROM analytics.sales").fetchone() == (20,)


def test_analyst_path_from_config_environment_or_default(tmp_path, monkeypatch):
    monkeypatch.delenv(publication.ANALYST_ENV, raising=False)
    warehouse = Warehouse(database=str(tmp_path / "w" / "retail.duckdb"))
    assert warehouse.analyst_path() == tmp_path / "w" / "retail_analyst.duckdb"
    monkeypatch.setenv(publication.ANALYST_ENV, str(tmp_path / "share" / "snapshot.duckdb"))
    assert warehouse.analyst_path() == tmp_path / "share" / "snapshot.duckdb"
    explicit = Warehouse(
        database=str(tmp_path / "w" / "retail.duckdb"), analyst_database=str(tmp_path / "x.duckdb")
    )
    assert explicit.analyst_path() == tmp_path / "x.duckdb"
    monkeypatch.setenv(publication.ANALYST_ENV, str(tmp_path / "missing.duckdb"))
    with pytest.raises(FileNotFoundError, match="published at the end of a successful run"):
        with publication.connect_analyst():
            pass


def test_lock_wait_is_not_needed_by_readers(tmp_path, lock_holder):
    """Readers never take the run lock: the analyst copy opens while a run holds the warehouse."""
    _, database = lock_holder
    _small_warehouse(tmp_path / "other.duckdb", 5)
    publication.publish_copy(tmp_path / "other.duckdb", tmp_path / "copy.duckdb")
    started = time.perf_counter()
    with publication.connect_analyst(tmp_path / "copy.duckdb") as conn:
        assert conn.execute("SELECT count(*) FROM analytics.sales").fetchone() == (5,)
    assert time.perf_counter() - started < 5


@pytest.mark.parametrize("database", ["md:retail", "motherduck:retail", ":memory:", "s3://bucket/retail.duckdb"])
def test_databases_that_are_not_local_files_are_recognized(database):
    assert runlock.local_database_file(database) is None
    lock = runlock.lock_path(database)
    # The lock of a remote database is a stable file of its own in the temporary folder, never "./md:retail.lock".
    assert lock == runlock.lock_path(database) and lock.parent == Path(tempfile.gettempdir())
    assert ":" not in lock.name


def test_local_paths_stay_local(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert runlock.local_database_file("data/retail.duckdb") == tmp_path / "data" / "retail.duckdb"
    assert runlock.local_database_file(tmp_path / "w.duckdb") == tmp_path / "w.duckdb"
    assert runlock.lock_path("retail.duckdb") == tmp_path / "retail.duckdb.lock"


def test_publishing_a_remote_warehouse_is_refused_and_creates_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(publication.PublicationError, match="not a local file"):
        publication.publish_copy("md:retail", tmp_path / "copy.duckdb")
    with pytest.raises(publication.PublicationError, match="does not exist"):
        publication.publish_copy(tmp_path / "missing.duckdb", tmp_path / "copy.duckdb")
    assert list(tmp_path.iterdir()) == []


def test_analyst_copy_asset_skips_a_remote_warehouse_with_its_reason(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    from assets import publish

    warehouse = Warehouse(database="md:retail")
    assert not warehouse.is_local_file
    result = publish.analyst_copy(dg.build_asset_context(), warehouse=warehouse)
    assert result.metadata["published"] is False
    assert "md:retail is not a local DuckDB file" in result.metadata["skipped_reason"]
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setenv("RETAIL_WAREHOUSE", "md:retail")
    monkeypatch.delenv(publication.ANALYST_ENV, raising=False)
    with pytest.raises(FileNotFoundError, match="not a local DuckDB file"):
        with publication.connect_analyst():
            pass
