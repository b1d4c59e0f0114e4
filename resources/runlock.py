"""The warehouse run lock: at most one pipeline run at a time works on a given DuckDB warehouse.

Belongs here: the exclusive lock file beside the warehouse, who holds it, and the error a second run gets.
Not here: opening DuckDB (``resources.warehouse``) or publishing the analyst copy (``resources.publication``).

DuckDB admits one writing process per file, and a second run would otherwise fail at a random step on DuckDB's
own lock, or, with a second process opening and closing the file between steps, interleave its tables with the
first run's. The run lock makes the refusal happen before the first step, with a message naming the holder.
The lock is an ``flock`` on ``<warehouse>.lock``: the kernel releases it when the holding process dies, even
by SIGKILL, so a crashed run never leaves a stale lock behind. The file itself is never deleted (deleting a
lock file while another process waits on it would let two processes hold "the" lock).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import os
import re
import socket
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

LOCK_SUFFIX = ".lock"


class WarehouseBusyError(RuntimeError):
    """Another run holds the warehouse lock; this run was refused before touching the warehouse."""


@dataclass
class _Held:
    descriptor: int
    owner: str
    count: int


# Within one process, the IO manager and the Warehouse resource of the same run share one lock: flock
# conflicts between two descriptors even in the same process, so a second acquisition by the same run only
# counts.
_HELD: dict[Path, _Held] = {}
_GUARD = threading.Lock()


# A DuckDB database string that names something other than a local file: ``md:`` / ``motherduck:``
# (MotherDuck), ``s3://``, ``http(s)://``, ``snowflake://``... (a scheme of two characters or more).
_REMOTE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:")


def local_database_file(database: str | Path) -> Path | None:
    """Return the local file a DuckDB database string names, or None when it names no local file.

    Args:
        database: A path (``data/retail.duckdb``, ``~/w.duckdb``, ``file:...`` is not DuckDB syntax and is
            treated as a remote name), ``:memory:``, or a remote database such as ``md:retail``.

    Returns:
        The absolute path of the file, or None for ``:memory:``, an empty string and remote databases.
    """
    text = str(database)
    if isinstance(database, Path):
        return database.expanduser().resolve()
    if not text or text.startswith(":memory:") or _REMOTE.match(text):
        return None
    return Path(text).expanduser().resolve()


def lock_path(database: str | Path) -> Path:
    """Return the lock file of a warehouse.

    Args:
        database: The DuckDB warehouse file, or a remote database string (``md:retail``).

    Returns:
        ``<database>.lock`` next to the resolved warehouse file; for a database that is not a local file, a
        lock file named after it in the system's temporary folder (it then keeps two runs of this machine
        apart, not runs of two machines).
    """
    resolved = local_database_file(database)
    if resolved is None:
        digest = hashlib.sha256(str(database).encode()).hexdigest()[:16]
        return Path(tempfile.gettempdir()) / f"retail-warehouse-{digest}{LOCK_SUFFIX}"
    return resolved.with_name(resolved.name + LOCK_SUFFIX)


def holder(database: str | Path) -> dict | None:
    """Describe the process that holds (or last held) the lock.

    Args:
        database: The DuckDB warehouse file.

    Returns:
        ``{"pid", "owner", "since", "host"}`` as written by the holder, or ``None`` when there is no record.
    """
    try:
        text = lock_path(database).read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        record = json.loads(text)
    except json.JSONDecodeError:
        return None
    return record if isinstance(record, dict) else None


def acquire(database: str | Path, *, owner: str) -> Path:
    """Take the run lock of a warehouse without waiting.

    Args:
        database: The DuckDB warehouse file (its folder is created if needed).
        owner: Identifies the run (its run id); the same owner may acquire again in the same process.

    Returns:
        The lock file.

    Raises:
        WarehouseBusyError: Another process, or another run in this process, holds the lock.
    """
    path = lock_path(database)
    with _GUARD:
        held = _HELD.get(path)
        if held is not None:
            if held.owner != owner:
                raise WarehouseBusyError(_busy_message(path, holder(database)))
            held.count += 1
            return path
        path.parent.mkdir(parents=True, exist_ok=True)
        # O_CREAT without O_TRUNC: truncating before holding the lock would erase the holder's record.
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(descriptor)
            raise WarehouseBusyError(_busy_message(path, holder(database))) from None
        record = {
            "pid": os.getpid(),
            "owner": owner,
            "since": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
            "host": socket.gethostname(),
        }
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, json.dumps(record).encode(), 0)
        _HELD[path] = _Held(descriptor=descriptor, owner=owner, count=1)
        return path


def release(database: str | Path, *, owner: str) -> None:
    """Release one acquisition of the run lock; the lock is freed when the last one is released.

    Args:
        database: The DuckDB warehouse file.
        owner: The owner given to :func:`acquire`.
    """
    path = lock_path(database)
    with _GUARD:
        held = _HELD.get(path)
        if held is None or held.owner != owner:
            return
        held.count -= 1
        if held.count > 0:
            return
        del _HELD[path]
        # The record stays in the file (it documents the last run); only the flock goes.
        fcntl.flock(held.descriptor, fcntl.LOCK_UN)
        os.close(held.descriptor)


@contextlib.contextmanager
def run_lock(database: str | Path, *, owner: str) -> Iterator[Path]:
    """Hold the run lock for the duration of a ``with`` block.

    Args:
        database: The DuckDB warehouse file.
        owner: Identifies the run.

    Yields:
        The lock file.
    """
    path = acquire(database, owner=owner)
    try:
        yield path
    finally:
        release(database, owner=owner)


def _busy_message(path: Path, record: dict | None) -> str:
    if record is None:
        who = "another run holds the warehouse lock"
    else:
        who = (
            f"another run holds the warehouse lock since {record.get('since')} "
            f"(pid {record.get('pid')} on {record.get('host')}, run {record.get('owner')})"
        )
    return (
        f"{who}: {path}. This run was refused before reading or writing the warehouse; start it again once "
        "the other run has finished (runs launched by the schedule, the sensor or the UI wait in the run "
        "queue)."
    )
