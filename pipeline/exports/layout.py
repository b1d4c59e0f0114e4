"""The layout of an export: a new versioned prefix per run, its manifest, and the ``latest.json`` pointer.

Belongs here: naming the objects of an export, writing them in an order that never exposes a half export, and
describing them in the manifest. Not here: encoding tables (``pipeline.exports.formats``) or talking to S3 or
the file system (the caller passes ``put``, a function that stores bytes under a key, e.g.
``resources.objectstore.ObjectStore.put_bytes``).

Under the export location (``RETAIL_EXPORT``), each kind of export has its own folder::

    parquet/latest.json                                   <- written last: names the current export
    parquet/2026-12-04T021503Z_9cc1eb83/manifest.json     <- written after every table of that export
    parquet/2026-12-04T021503Z_9cc1eb83/marts/customer_360.parquet
    parquet/2026-12-04T021503Z_9cc1eb83/analytics/rfm.parquet
    tableau/latest.json
    tableau/2026-12-04T021503Z_9cc1eb83/marts/customer_360.hyper

A run writes every table under a prefix no other run uses (its start time and the first 8 characters of its
run id), then the manifest, then replaces ``latest.json``. A reader that starts from ``latest.json``
therefore only ever sees complete exports: if a run fails half-way, ``latest.json`` still names the previous
one, and the partial prefix has no manifest.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import pyarrow as pa

from pipeline.exports.tables import ExportTable

MANIFEST_NAME = "manifest.json"
LATEST_NAME = "latest.json"
#: Version of the manifest and pointer layout; bumped when a field changes meaning.
LAYOUT_VERSION = 1

_KIND = re.compile(r"^[a-z][a-z0-9_-]*$")
_RUN_ID = re.compile(r"^[A-Za-z0-9-]+$")

Put = Callable[[str, bytes], object]


def export_prefix(kind: str, started_at: dt.datetime, run_id: str) -> str:
    """The prefix of one run's export of one kind: ``<kind>/<UTC start time>_<run id, 8 characters>``.

    Args:
        kind: The export kind (``parquet``, ``tableau``).
        started_at: When the run started; a naive value is taken as UTC.
        run_id: The Dagster run id.

    Returns:
        For example ``parquet/2026-12-04T021503Z_9cc1eb83``: sorts by time, unique per run.

    Raises:
        ValueError: ``kind`` or ``run_id`` would not make a safe key.
    """
    if not _KIND.match(kind):
        raise ValueError(f"export kind {kind!r} must be lower-case letters, digits, '-' or '_'")
    if not _RUN_ID.match(run_id):
        raise ValueError(f"run id {run_id!r} must be letters, digits and '-'")
    moment = started_at if started_at.tzinfo is None else started_at.astimezone(dt.UTC).replace(tzinfo=None)
    return f"{kind}/{moment:%Y-%m-%dT%H%M%S}Z_{run_id[:8]}"


def latest_key(kind: str) -> str:
    """Key of the pointer to the current export of ``kind``: ``<kind>/latest.json``."""
    return f"{kind}/{LATEST_NAME}"


def table_key(prefix: str, table: ExportTable, suffix: str) -> str:
    """Key of one table's object: ``<prefix>/<schema>/<name><suffix>``."""
    return f"{prefix}/{table.schema}/{table.name}{suffix}"


def table_entry(table: ExportTable, key: str, rows: pa.Table, data: bytes) -> dict[str, Any]:
    """Describe one exported object for the manifest.

    Args:
        table: The relation exported.
        key: Its object key (relative to the export location).
        rows: The rows as encoded (after any type mapping), for the count and the column types.
        data: The object's bytes.

    Returns:
        ``table``, ``key``, ``rows``, ``columns`` (name and Arrow type), ``bytes`` and ``sha256``.
    """
    return {
        "table": table.qualified_name,
        "key": key,
        "rows": rows.num_rows,
        "columns": [{"name": field.name, "type": str(field.type)} for field in rows.schema],
        "bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
    }


def export_tables(
    tables: Sequence[ExportTable],
    *,
    read: Callable[[ExportTable], pa.Table],
    encode: Callable[[pa.Table], bytes],
    put: Put,
    prefix: str,
    suffix: str,
    mapping: Callable[[pa.Table], pa.Table] | None = None,
) -> list[dict[str, Any]]:
    """Read, encode and store each table under ``prefix``, one at a time (one table in memory at once).

    Args:
        tables: What to export.
        read: Returns a relation's rows.
        encode: Turns rows into the object's bytes.
        put: Stores bytes under a key.
        prefix: The run's prefix (see :func:`export_prefix`).
        suffix: File suffix (``.parquet``, ``.hyper``).
        mapping: The type mapping ``encode`` applies, so the manifest lists the types actually stored
            (default: none).

    Returns:
        The manifest entries (see :func:`table_entry`), in the order of ``tables``.
    """
    entries = []
    for table in tables:
        rows = read(table)
        data = encode(rows)
        key = table_key(prefix, table, suffix)
        put(key, data)
        entries.append(table_entry(table, key, mapping(rows) if mapping else rows, data))
    return entries


def build_manifest(
    *,
    kind: str,
    prefix: str,
    run_id: str,
    created_at: dt.datetime,
    snapshot: str,
    entries: Iterable[dict[str, Any]],
) -> dict[str, Any]:
    """The manifest of one export.

    Args:
        kind: The export kind.
        prefix: The export's prefix.
        run_id: The Dagster run that wrote it.
        created_at: When the export finished (UTC).
        snapshot: What was read (the analyst copy's path and publication time).
        entries: One entry per object (see :func:`table_entry`).

    Returns:
        A JSON-serializable dict: ``layout_version``, ``kind``, ``prefix``, ``run_id``, ``created_at``,
        ``snapshot``, ``tables`` (the entries) and ``total_rows``/``total_bytes``.
    """
    tables = list(entries)
    return {
        "layout_version": LAYOUT_VERSION,
        "kind": kind,
        "prefix": prefix,
        "run_id": run_id,
        "created_at": created_at.isoformat(),
        "snapshot": snapshot,
        "tables": tables,
        "total_rows": sum(entry["rows"] for entry in tables),
        "total_bytes": sum(entry["bytes"] for entry in tables),
    }


def commit(put: Put, manifest: dict[str, Any]) -> dict[str, Any]:
    """Make an export current: write its manifest, then point ``latest.json`` at it.

    Call only after every object of the export was stored. Each write replaces one whole object (atomic on S3
    and, through a rename, in a folder), so ``latest.json`` always names an export whose manifest and objects
    all exist.

    Args:
        put: Stores bytes under a key.
        manifest: Output of :func:`build_manifest`.

    Returns:
        The pointer written to ``latest.json``: ``prefix``, ``manifest`` (its key), ``run_id`` and
        ``created_at``.
    """
    manifest_key = f"{manifest['prefix']}/{MANIFEST_NAME}"
    put(manifest_key, json.dumps(manifest, indent=2).encode())
    pointer = {
        "layout_version": LAYOUT_VERSION,
        "prefix": manifest["prefix"],
        "manifest": manifest_key,
        "run_id": manifest["run_id"],
        "created_at": manifest["created_at"],
    }
    put(latest_key(manifest["kind"]), json.dumps(pointer, indent=2).encode())
    return pointer
