"""Print where the warehouse is and the row count of every table (used by ``make run``)."""

from __future__ import annotations

import sys
from pathlib import Path

import duckdb


def summarize(database: str) -> str:
    """Describe the warehouse: its path and the row count of each table and view.

    Args:
        database: Path of the DuckDB file.

    Returns:
        A printable multi-line summary.
    """
    path = Path(database).expanduser().resolve()
    with duckdb.connect(str(path), read_only=True) as conn:
        tables = conn.execute(
            "SELECT table_schema, table_name, table_type FROM information_schema.tables "
            "WHERE table_schema NOT IN ('information_schema', 'pg_catalog') ORDER BY 1, 2"
        ).fetchall()
        lines = [f"warehouse: {path}"]
        for schema, table, kind in tables:
            count = conn.execute(f'SELECT count(*) FROM "{schema}"."{table}"').fetchone()[0]
            suffix = " (view)" if kind == "VIEW" else ""
            lines.append(f"  {schema}.{table}{suffix}: {count:,} rows")
    return "\n".join(lines)


if __name__ == "__main__":
    print(summarize(sys.argv[1]))
