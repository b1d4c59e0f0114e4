"""Where exports go (``RETAIL_EXPORT``: a local folder or ``s3://bucket/prefix``) and the snapshot they read.

Belongs here: the ``ExportTarget`` resource, which stores objects through
``resources.objectstore.ObjectStore``, reads back the ``latest.json`` pointer and manifests, and opens the
snapshot an export reads (the analyst copy, read-only). Not here: what is exported or how it is encoded
(``pipeline.exports``).

Exports read the analyst copy, never the working warehouse: the copy is a consistent snapshot published at the
end of a successful run, and opening it read-only takes neither DuckDB's writer lock nor the run lock, so an
export never blocks the pipeline (nor the pipeline an export).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
from pydantic import Field

from pipeline.exports import layout
from resources import publication, runlock
from resources.objectstore import ObjectStore

_PROJECT = Path(__file__).resolve().parents[1]
DEFAULT_EXPORTS = _PROJECT / "data" / "exports"
DEFAULT_WAREHOUSE = _PROJECT / "data" / "warehouse" / "retail.duckdb"


class ExportTarget(dg.ConfigurableResource):
    """The export location, and the analyst copy exports read."""

    location: str = Field(
        default=str(DEFAULT_EXPORTS), description="Local folder or s3://bucket/prefix the exports go to."
    )
    endpoint_url: str | None = Field(
        default=None,
        description="S3-compatible endpoint (MinIO, moto); default AWS_ENDPOINT_URL, else AWS.",
    )
    analyst_database: str | None = Field(
        default=None,
        description="The snapshot exports read; default the analyst copy (RETAIL_ANALYST_WAREHOUSE, else "
        "<warehouse>_analyst.duckdb beside RETAIL_WAREHOUSE); a remote one (md:...) is opened read-only.",
    )

    @property
    def store(self) -> ObjectStore:
        """The object store at :attr:`location`."""
        return ObjectStore(self.location, endpoint_url=self.endpoint_url)

    def put(self, key: str, data: bytes) -> str:
        """Store ``data`` under ``key`` (relative to the location) and return its URI."""
        return self.store.put_bytes(key, data)

    def uri(self, key: str) -> str:
        """The full URI of ``key``."""
        return self.store.uri(key)

    def read_json(self, key: str) -> dict[str, Any] | None:
        """The JSON object stored under ``key``, or ``None`` if there is none."""
        try:
            return json.loads(self.store.get_bytes(key))
        except FileNotFoundError:
            return None

    def latest(self, kind: str) -> dict[str, Any] | None:
        """The pointer to the current export of ``kind`` (``latest.json``); ``None`` before the first one."""
        return self.read_json(layout.latest_key(kind))

    def latest_manifest(self, kind: str) -> dict[str, Any] | None:
        """The manifest of the current export of ``kind``, or ``None`` before the first one."""
        pointer = self.latest(kind)
        return None if pointer is None else self.read_json(pointer["manifest"])

    def _is_remote(self) -> bool:
        return bool(self.analyst_database) and runlock.local_database_file(self.analyst_database) is None

    def analyst_path(self) -> Path:
        """The analyst copy exports read (resolved as ``resources.publication.connect_analyst`` does).

        Returns:
            :attr:`analyst_database` if set, else ``RETAIL_ANALYST_WAREHOUSE`` if set, else the default copy
            beside ``RETAIL_WAREHOUSE`` (or beside ``data/warehouse/retail.duckdb``).
        """
        configured = self.analyst_database or os.environ.get(publication.ANALYST_ENV)
        if configured:
            return Path(configured).expanduser()
        return publication.default_analyst_path(os.environ.get("RETAIL_WAREHOUSE") or DEFAULT_WAREHOUSE)

    def snapshot_description(self) -> str:
        """What an export reads: the snapshot's path and when it was published (for the manifest)."""
        if self._is_remote():
            return str(self.analyst_database)
        path = self.analyst_path()
        if not path.is_file():
            return f"{path} (not published)"
        published = dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC)
        return f"{path} (published {published.isoformat(timespec='seconds')})"

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """Open the snapshot exports read, read-only.

        Yields:
            A read-only connection on the analyst copy as it was when opened.

        Raises:
            FileNotFoundError: No analyst copy has been published yet.
        """
        if self._is_remote():
            conn = duckdb.connect(self.analyst_database, read_only=True)
            try:
                yield conn
            finally:
                conn.close()
            return
        with publication.connect_analyst(self.analyst_path()) as conn:
            yield conn
