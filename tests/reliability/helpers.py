"""Helpers of the reliability tests: warehouse checksums and running the pipeline in another process.

Only duckdb is imported at module level, so the reader subprocess that uses :func:`checksums` starts fast.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb

from pipeline.common.sql import quote_identifier

REPO_ROOT = Path(__file__).resolve().parents[2]

#: Columns that legitimately differ between two runs on the same data: when a part was read.
VOLATILE_COLUMNS = {"raw.source_files": ("ingested_at",)}


def checksums(database: str | Path, *, ignore: dict[str, tuple[str, ...]] | None = None) -> dict[str, str]:
    """Fingerprint every table and view of a DuckDB file (read-only).

    A fingerprint covers the column names and types, the row count and DuckDB's 64-bit hash of every row
    (bit-exact for floats), summed; for base tables each row's hash includes its position, so order counts
    too. Fingerprints start with ``table|`` or ``view|``.

    Args:
        database: The DuckDB file.
        ignore: Columns left out, by ``schema.table``.

    Returns:
        ``{"schema.table": fingerprint}`` for every table and view.
    """
    with duckdb.connect(str(database), read_only=True) as conn:
        return fingerprint_connection(conn, ignore=ignore or {})


def fingerprint_connection(
    conn: duckdb.DuckDBPyConnection, *, ignore: dict[str, tuple[str, ...]]
) -> dict[str, str]:
    """:func:`checksums` on an open connection (one consistent snapshot)."""
    relations = conn.execute(
        "SELECT schema_name, table_name, 'table' FROM duckdb_tables() "
        "WHERE database_name = current_database() "
        "UNION ALL SELECT schema_name, view_name, 'view' FROM duckdb_views() "
        "WHERE database_name = current_database() AND NOT internal ORDER BY 1, 2"
    ).fetchall()
    result = {}
    for schema, name, kind in relations:
        qualified = f"{schema}.{name}"
        columns = conn.execute(
            "SELECT column_name, data_type FROM duckdb_columns() WHERE database_name = current_database() "
            "AND schema_name = ? AND table_name = ? ORDER BY column_index",
            [schema, name],
        ).fetchall()
        kept = [(column, kind_) for column, kind_ in columns if column not in ignore.get(qualified, ())]
        row = "ROW(" + ", ".join(quote_identifier(column) for column, _ in kept) + ")"
        hashed = f"hash(rowid, {row})" if kind == "table" else f"hash({row})"
        count, digest = conn.execute(
            f"SELECT count(*), sum({hashed}::HUGEINT) FROM {quote_identifier(schema)}.{quote_identifier(name)}"
        ).fetchone()
        result[qualified] = f"{kind}|{kept}|{count}|{digest}"
    return result


def subprocess_env(**extra: str) -> dict[str, str]:
    """The environment for a pipeline subprocess: the repository importable, extra variables set."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


def start_run(database: Path, *, lines: int, seed: int) -> subprocess.Popen:
    """Start ``tests.reliability.run_pipeline`` in a new process, its Dagster log piped to ``stderr``."""
    command = [
        sys.executable,
        "-m",
        "tests.reliability.run_pipeline",
        "--database",
        str(database),
        "--lines",
        str(lines),
        "--seed",
        str(seed),
    ]
    return subprocess.Popen(
        command,
        cwd=REPO_ROOT,
        env=subprocess_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
