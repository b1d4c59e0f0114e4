"""What a night without new exports costs: one observation of the source and one automation evaluation.

``python -m bench.unchanged_refresh [--source PATH] [--runs N]`` builds a warehouse from the exports (the full
rebuild is the baseline, timed in the same process), then observes the unchanged source and evaluates every
asset's automation condition ``--runs`` times, as the nightly schedule and the ``refresh_on_new_data`` sensor
do. It asserts that no run is requested and prints every time and the median. Default source: the real
2009-2010 sheet beside the repository.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import dagster as dg

from assets import keys
from assets.definitions import load_assets, load_checks
from bench.run import REAL
from resources import InvoiceSource
from tests.assets.warehouse_build import materialize_all, resources_for


def main() -> None:
    """Parse the arguments, build once, time the unchanged refreshes."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=REAL, help="An export file (copied into a folder).")
    parser.add_argument("--runs", type=int, default=5, help="Unchanged refreshes timed.")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-refresh-"))
    exports = folder / "exports"
    exports.mkdir()
    shutil.copy(args.source, exports)
    instance = dg.DagsterInstance.ephemeral()
    source = InvoiceSource(location=str(exports))
    database = str(folder / "retail.duckdb")
    resources = resources_for(database, source)
    definitions = dg.Definitions(assets=load_assets(), asset_checks=load_checks(), resources=resources)

    def observe() -> None:
        selection = dg.AssetSelection.assets(keys.INVOICE_SOURCE)
        dg.materialize(load_assets(), selection=selection, instance=instance, resources=resources)

    observe()
    started = time.perf_counter()
    built = materialize_all(database, str(folder / "report.html"), source=source, instance=instance)
    assert built.success
    rebuild = time.perf_counter() - started
    cursor = dg.evaluate_automation_conditions(defs=definitions, instance=instance).cursor
    times = []
    for _ in range(args.runs):
        started = time.perf_counter()
        observe()
        result = dg.evaluate_automation_conditions(defs=definitions, instance=instance, cursor=cursor)
        times.append(time.perf_counter() - started)
        cursor = result.cursor
        assert result.total_requested == 0, "an unchanged source requested work"
    print(f"source {args.source.name}: full rebuild {rebuild:.1f} s (baseline, same process)")
    each = ", ".join(f"{seconds:.2f}" for seconds in times)
    print(f"unchanged-source refresh: {each} s; median {statistics.median(times):.2f} s")
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
