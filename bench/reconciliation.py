"""The raw = cleaned + rejected reconciliation check in DuckDB: per-key counts against ``EXCEPT ALL``.

``python -m bench.reconciliation [--source PATH] [--copies K] [--runs N]`` cleans the source (default: the
real 2009-2010 sheet beside the repository), stacks ``K`` copies of its raw, cleaned and rejected lineage
columns (each copy under another ``source_file``, so every line key stays unique: K = 2 gives 1,050,922 raw
lines), then times, alternating, the check's query (``assets.staging._RECONCILIATION_SQL``, which counts
lines per lineage key so that Snowflake runs it too) and the ``EXCEPT ALL`` text it replaced, ``--runs`` times
each. Both must give the same counts; it prints every time and the medians.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import duckdb
import pandas as pd

from assets.staging import _RECONCILIATION_SQL
from bench.run import REAL
from pipeline.sources import readers
from pipeline.staging import cleaning

LINEAGE = ["source_file", "source_sheet", "source_row"]

#: The check's query before it had to run in Snowflake (which has no EXCEPT ALL): the baseline.
EXCEPT_ALL_SQL = """
WITH split AS (
    SELECT source_file, source_sheet, source_row FROM staging.cleaned_transactions
    UNION ALL
    SELECT source_file, source_sheet, source_row FROM staging.rejected_rows
)
SELECT
    (SELECT count(*) FROM raw.raw_invoices) AS raw_lines,
    (SELECT count(*) FROM staging.cleaned_transactions) AS cleaned_lines,
    (SELECT count(*) FROM staging.rejected_rows) AS rejected_lines,
    (SELECT count(*) FROM (SELECT source_file, source_sheet, source_row FROM raw.raw_invoices
                           EXCEPT ALL SELECT * FROM split)) AS lost_lines,
    (SELECT count(*) FROM (SELECT * FROM split EXCEPT ALL
                           SELECT source_file, source_sheet, source_row FROM raw.raw_invoices)) AS extra_lines
"""


def _copies(frame: pd.DataFrame, copies: int) -> pd.DataFrame:
    """``copies`` stacked copies of the lineage columns, the n-th one's files renamed ``<file>#n``."""
    lineage = frame[LINEAGE].astype({"source_file": str, "source_sheet": object})
    stacked = [lineage.assign(source_file=lineage["source_file"] + f"#{n}") for n in range(copies)]
    return pd.concat(stacked, ignore_index=True)


def main() -> None:
    """Parse the arguments, build the tables, time both queries."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=REAL, help="An export (default: the real sheet)")
    parser.add_argument("--copies", type=int, default=2, help="Copies of the lines stacked (default 2).")
    parser.add_argument("--runs", type=int, default=5, help="Timed runs of each query (default 5).")
    args = parser.parse_args()

    raw = readers.read_file(args.source)
    result = cleaning.clean(raw)
    conn = duckdb.connect()
    conn.execute("CREATE SCHEMA raw; CREATE SCHEMA staging")
    for name, frame in {"raw.raw_invoices": raw, "staging.cleaned_transactions": result.cleaned,
                        "staging.rejected_rows": result.rejected}.items():
        conn.register("lines", _copies(frame, args.copies))
        conn.execute(f"CREATE TABLE {name} AS SELECT * FROM lines")
        conn.unregister("lines")
    seconds: dict[str, list[float]] = {"per_key (current)": [], "except_all (baseline)": []}
    answers = set()
    for _ in range(args.runs):
        queries = (("per_key (current)", _RECONCILIATION_SQL), ("except_all (baseline)", EXCEPT_ALL_SQL))
        for label, sql in queries:
            started = time.perf_counter()
            answers.add(tuple(int(n) for n in conn.execute(sql).fetchone()))
            seconds[label].append(time.perf_counter() - started)
    if len(answers) != 1:
        raise SystemExit(f"the two queries disagree: {answers}")
    (counts,) = answers
    print(f"{args.source.name} x {args.copies}: raw, cleaned, rejected, lost, extra = {counts}")
    for label, times in seconds.items():
        print(f"{label}: median {statistics.median(times):.3f} s over {args.runs} runs "
              f"({', '.join(f'{t:.3f}' for t in times)})")


if __name__ == "__main__":
    main()
