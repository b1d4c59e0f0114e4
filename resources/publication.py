"""The analyst copy: a read-only snapshot of the warehouse that is replaced atomically after a successful run.

Belongs here: where the analyst copy lives, how it is published, and how analysts open it. Not here: writing
tables (``resources.warehouse``) or deciding when to publish (the ``publish/analyst_copy`` asset runs after
every other asset and blocking check of the run).

Why a copy: DuckDB lets one process write a database file, and while it does, no other process can open
the file at all, not even read-only. The pipeline therefore owns the working warehouse (``RETAIL_WAREHOUSE``)
and analysts read the analyst copy (``RETAIL_ANALYST_WAREHOUSE``, default ``<warehouse>_analyst.duckdb``
beside it). Publishing checkpoints the working file, copies it to a temporary file in the analyst copy's
folder, checks that the copy opens and holds the same tables with the same row counts, and renames it over the
analyst copy. The rename is atomic: a reader that opens the analyst copy gets the whole previous snapshot or
the whole new one, and a reader that has it open keeps reading the snapshot it opened.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb

from pipeline.common.sql import quote_identifier
from resources.runlock import local_database_file

#: Environment variable naming the analyst copy.
ANALYST_ENV = "RETAIL_ANALYST_WAREHOUSE"

_DEFAULT_WAREHOUSE = Path(__file__).resolve().parents[1] / "data" / "warehouse" / "retail.duckdb"
_CHUNK_BYTES = 1 << 22
_TEMPORARY_SUFFIX = ".publishing"


class PublicationError(RuntimeError):
    """The analyst copy could not be published; the previous copy is untouched."""


@dataclass(frozen=True)
class Publication:
    """What was published.

    Attributes:
        path: The analyst copy.
        size_bytes: Its size.
        tables: Row count of every base table, by ``schema.table``.
        views: Names of the views (``schema.view``), each checked to bind in the copy.
        seconds: Time taken by checkpoint, copy, verification and rename.
    """

    path: Path
    size_bytes: int
    tables: dict[str, int]
    views: list[str]
    seconds: float


def default_analyst_path(database: str | Path) -> Path:
    """Return the default analyst copy of a warehouse: ``<stem>_analyst<suffix>`` in the same folder.

    Args:
        database: The working warehouse file.

    Returns:
        For ``data/warehouse/retail.duckdb``, ``data/warehouse/retail_analyst.duckdb``.
    """
    path = Path(database).expanduser()
    return path.with_name(f"{path.stem}_analyst{path.suffix or '.duckdb'}")


def publish_copy(database: str | Path, target: str | Path) -> Publication:
    """Publish a consistent copy of ``database`` at ``target``, replacing the previous copy atomically.

    The caller must be the only writer of ``database`` (the pipeline holds the run lock).

    Args:
        database: The working warehouse.
        target: The analyst copy to create or replace.

    Returns:
        A summary of the published copy.

    Raises:
        PublicationError: ``target`` is the warehouse itself, or the copy does not match the warehouse (the
            previous analyst copy is then left as it was).
    """
    started = time.perf_counter()
    source = local_database_file(database)
    destination = local_database_file(target)
    if source is None or destination is None:
        raise PublicationError(
            f"an analyst copy is a file copy of a local DuckDB warehouse; {database!s} -> {target!s} is not "
            "a local file (remote databases such as MotherDuck serve concurrent readers themselves)"
        )
    if not source.is_file():
        raise PublicationError(f"the warehouse {source} does not exist; nothing was published")
    if destination == source:
        raise PublicationError(f"the analyst copy {destination} cannot be the working warehouse itself")
    destination.parent.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(destination)
    handle, name = tempfile.mkstemp(
        dir=destination.parent, prefix=f".{destination.name}.", suffix=_TEMPORARY_SUFFIX
    )
    temporary = Path(name)
    try:
        with os.fdopen(handle, "wb") as output, duckdb.connect(str(source)) as conn:
            # After a checkpoint every committed change is in the main file and the WAL is empty; keeping this
            # connection open while copying holds the file in that state (no other writer: run lock).
            conn.execute("CHECKPOINT")
            expected = _catalog(conn)
            with source.open("rb") as data:
                shutil.copyfileobj(data, output, _CHUNK_BYTES)
                output.flush()
                os.fsync(output.fileno())
        found = _verify(temporary)
        if found != expected:
            raise PublicationError(
                f"copy of {source} does not match it (expected {expected}, found {found}); "
                f"the analyst copy {destination} was left unchanged"
            )
        # Read-only on disk as well: for anyone but root, a stray read-write open fails instead of taking
        # DuckDB's exclusive lock.
        temporary.chmod(0o444)
        os.replace(temporary, destination)
        _fsync_folder(destination.parent)
    finally:
        temporary.unlink(missing_ok=True)
    tables, views = expected
    return Publication(
        path=destination,
        size_bytes=destination.stat().st_size,
        tables=dict(tables),
        views=list(views),
        seconds=time.perf_counter() - started,
    )


@contextlib.contextmanager
def connect_analyst(path: str | Path | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the analyst copy read-only; safe while the pipeline runs.

    Args:
        path: The analyst copy; default ``RETAIL_ANALYST_WAREHOUSE``, else the default beside
            ``RETAIL_WAREHOUSE`` (or ``data/warehouse/retail.duckdb``).

    Yields:
        A read-only DuckDB connection on the snapshot current when it was opened.

    Raises:
        FileNotFoundError: No run has published an analyst copy yet.
    """
    if path is None:
        warehouse = os.environ.get("RETAIL_WAREHOUSE") or _DEFAULT_WAREHOUSE
        if not os.environ.get(ANALYST_ENV) and local_database_file(warehouse) is None:
            raise FileNotFoundError(
                f"the warehouse {warehouse} is not a local DuckDB file, so no analyst copy is published: "
                f"connect to it directly (duckdb.connect({str(warehouse)!r}, read_only=True))"
            )
        path = os.environ.get(ANALYST_ENV) or default_analyst_path(warehouse)
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"no analyst copy at {path}: it is published at the end of a successful run")
    conn = duckdb.connect(str(path), read_only=True)
    try:
        yield conn
    finally:
        conn.close()


def _catalog(conn: duckdb.DuckDBPyConnection) -> tuple[tuple[tuple[str, int], ...], tuple[str, ...]]:
    """Row counts of the base tables and names of the views of the connection's own database."""
    names = conn.execute(
        "SELECT schema_name, table_name FROM duckdb_tables() "
        "WHERE database_name = current_database() AND NOT temporary ORDER BY 1, 2"
    ).fetchall()
    tables = tuple(
        (
            f"{schema}.{table}",
            conn.execute(f"SELECT count(*) FROM {quote_identifier(schema)}.{quote_identifier(table)}").fetchone()[0],
        )
        for schema, table in names
    )
    views = conn.execute(
        "SELECT schema_name || '.' || view_name FROM duckdb_views() "
        "WHERE database_name = current_database() AND NOT internal AND NOT temporary ORDER BY 1"
    ).fetchall()
    return tables, tuple(name for (name,) in views)


def _verify(path: Path) -> tuple[tuple[tuple[str, int], ...], tuple[str, ...]]:
    """Open a copy read-only, bind every view, and return its catalog."""
    try:
        with duckdb.connect(str(path), read_only=True) as conn:
            catalog = _catalog(conn)
            views = conn.execute(
                "SELECT schema_name, view_name FROM duckdb_views() "
                "WHERE database_name = current_database() AND NOT internal AND NOT temporary"
            ).fetchall()
            for schema, view in views:
                conn.execute(f"SELECT * FROM {quote_identifier(schema)}.{quote_identifier(view)} LIMIT 0")
    except duckdb.Error as error:
        raise PublicationError(f"the copy {path} of the warehouse does not open or query: {error}") from error
    return catalog


def _remove_leftovers(destination: Path) -> None:
    """Delete temporary copies left by a publication that was killed (only the lock holder publishes)."""
    for leftover in destination.parent.glob(f".{destination.name}.*{_TEMPORARY_SUFFIX}"):
        leftover.unlink(missing_ok=True)


def _fsync_folder(folder: Path) -> None:
    """Make the rename durable: flush the folder entry to disk."""
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
