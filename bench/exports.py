"""What the exports cost: time and size of the parquet export and the Tableau extracts of an analyst copy.

``python -m bench.exports --analyst-copy PATH [--runs N] [--s3]`` materializes ``exports/warehouse_parquet``
and ``exports/tableau_extracts`` ``--runs`` times from an existing analyst copy (build one with
``tests.assets.warehouse_build.build``) into a temporary folder, or with ``--s3`` into a bucket on a local
moto server, and prints each asset's seconds per run, the median, the rows and the bytes written per table.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import tempfile
from pathlib import Path

import dagster as dg

from assets import exports
from resources import Warehouse
from resources.export import ExportTarget


def _timed_runs(target: ExportTarget, runs: int) -> dict[str, list[float]]:
    seconds: dict[str, list[float]] = {"warehouse_parquet": [], "tableau_extracts": []}
    for _ in range(runs):
        # A DuckDB warehouse (its run lock beside the analyst copy): the exports read the analyst copy only.
        warehouse = Warehouse(database=str(target.analyst_path().with_name("bench_exports.duckdb")))
        resources = {"export_target": target, "warehouse": warehouse}
        result = dg.materialize([exports.warehouse_parquet, exports.tableau_extracts], resources=resources)
        for event in result.get_asset_materialization_events():
            seconds[event.asset_key.path[-1]].append(event.materialization.metadata["seconds"].value)
    return seconds


def main() -> None:
    """Parse the arguments, export ``--runs`` times, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--analyst-copy", type=Path, required=True, help="The DuckDB analyst copy to export.")
    parser.add_argument("--runs", type=int, default=3, help="Exports timed.")
    parser.add_argument("--s3", action="store_true", help="Write to a bucket on a local moto server.")
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        if args.s3:
            import boto3

            from tests.s3_server import moto_server

            endpoint = stack.enter_context(moto_server())
            os.environ.update(
                AWS_ENDPOINT_URL=endpoint, AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench",
                AWS_DEFAULT_REGION="us-east-1",
            )
            boto3.client("s3").create_bucket(Bucket="retail-bench")
            location = "s3://retail-bench/exports"
        else:
            location = stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-exports-"))
        target = ExportTarget(location=location, analyst_database=str(args.analyst_copy))
        seconds = _timed_runs(target, args.runs)
        size = args.analyst_copy.stat().st_size / 1e6
        print(f"analyst copy {args.analyst_copy} ({size:.1f} MB) -> {location}")
        for name, values in seconds.items():
            print(f"{name}: runs {[round(v, 2) for v in values]} s, median {statistics.median(values):.2f} s")
        for kind in ("parquet", "tableau"):
            manifest = target.latest_manifest(kind)
            print(f"{kind}: {manifest['total_rows']:,} rows, {manifest['total_bytes'] / 1e6:.2f} MB")
            for entry in manifest["tables"]:
                print(f"  {entry['table']}: {entry['rows']:,} rows, {entry['bytes'] / 1e6:.3f} MB")


if __name__ == "__main__":
    main()
