"""What one added month of exports costs: observation, automation evaluation and the run it requests.

``python -m bench.added_month [--source PATH] [--month YYYY-MM] [--runs N]`` splits an export into the history
before ``--month`` (default: the last complete month of the file) and that month. For each run it builds a
warehouse from the history, drops the month into the source folder, observes the source, evaluates every
asset's automation condition as the ``refresh_on_new_data`` sensor does, and materializes what was requested
(timed together: the refresh). The baseline, timed in the same process and run, is a full rebuild of the
same warehouse on history + month. It prints both, their ratio, and the slowest steps of each.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import dagster as dg
import pandas as pd

from assets import keys
from assets.definitions import load_assets, load_checks
from bench.run import REAL
from resources import InvoiceSource
from tests.assets.warehouse_build import materialize_all, resources_for


def step_seconds(result: dg.ExecuteInProcessResult) -> dict[str, float]:
    """Seconds of every successful step of a run, by step key."""
    return {
        event.step_key: event.event_specific_data.duration_ms / 1000
        for event in result.all_events
        if event.event_type == dg.DagsterEventType.STEP_SUCCESS
    }


def split_month(lines: pd.DataFrame, month: str | None) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """Split the export into the history before ``month`` and the lines of ``month``.

    Args:
        lines: The export, with the UCI ``InvoiceDate`` column.
        month: ``YYYY-MM``; default the last month whose last day is in the file.

    Returns:
        History, the month's lines, and the month.
    """
    period = lines["InvoiceDate"].dt.to_period("M")
    if month is None:
        last_day = lines["InvoiceDate"].max()
        month_ends = (last_day + pd.Timedelta(days=1)).month != last_day.month
        complete = period.max() if month_ends else period.max() - 1
        month = str(complete)
    chosen = pd.Period(month, "M")
    return lines[period < chosen], lines[period == chosen], month


def refresh_once(history: pd.DataFrame, added: pd.DataFrame) -> dict:
    """Build on the history, add the month, time the data-driven refresh and a full rebuild."""
    folder = Path(tempfile.mkdtemp(prefix="bench-month-"))
    exports = folder / "exports"
    exports.mkdir()
    history.to_parquet(exports / "history.parquet", index=False)
    instance = dg.DagsterInstance.ephemeral()
    source = InvoiceSource(location=str(exports))
    database = str(folder / "retail.duckdb")
    resources = resources_for(database, source)
    assets = load_assets()
    checks = load_checks(assets)
    definitions = dg.Definitions(assets=assets, asset_checks=checks, resources=resources)
    graph = definitions.resolve_asset_graph()

    def observe() -> None:
        selection = dg.AssetSelection.assets(keys.INVOICE_SOURCE)
        dg.materialize(assets, selection=selection, instance=instance, resources=resources)

    observe()
    assert materialize_all(database, str(folder / "report.html"), source=source, instance=instance).success
    cursor = dg.evaluate_automation_conditions(defs=definitions, instance=instance).cursor
    added.to_parquet(exports / "added_month.parquet", index=False)

    started = time.perf_counter()
    observe()
    evaluation = dg.evaluate_automation_conditions(defs=definitions, instance=instance, cursor=cursor)
    requested = sorted(
        (key for key in graph.materializable_asset_keys if evaluation.get_num_requested(key)),
        key=lambda key: key.to_user_string(),
    )
    run = dg.materialize(
        [*assets, *checks],
        selection=dg.AssetSelection.assets(*requested),
        instance=instance,
        resources=resources,
    )
    refresh = time.perf_counter() - started
    assert run.success

    started = time.perf_counter()
    rebuilt = materialize_all(database, str(folder / "report.html"), source=source, instance=instance)
    rebuild = time.perf_counter() - started
    assert rebuilt.success
    shutil.rmtree(folder, ignore_errors=True)
    return {
        "refresh": refresh,
        "rebuild": rebuild,
        "requested": len(requested),
        "assets": len(graph.materializable_asset_keys),
        "refresh_steps": step_seconds(run),
        "rebuild_steps": step_seconds(rebuilt),
    }


def main() -> None:
    """Parse the arguments, run the refreshes, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=REAL, help="A parquet export (UCI columns).")
    parser.add_argument("--month", default=None, help="The added month, YYYY-MM (default: last complete).")
    parser.add_argument("--runs", type=int, default=3, help="Refreshes timed, each with its own rebuild.")
    parser.add_argument("--top", type=int, default=8, help="Slowest steps shown.")
    args = parser.parse_args()
    history, added, month = split_month(pd.read_parquet(args.source), args.month)
    print(f"source {args.source.name}: history {len(history):,} lines, "
          f"added month {month} {len(added):,} lines")
    runs = [refresh_once(history, added) for _ in range(args.runs)]
    for number, run in enumerate(runs, 1):
        print(
            f"run {number}: refresh {run['refresh']:.1f} s ({run['requested']} of {run['assets']} assets), "
            f"full rebuild {run['rebuild']:.1f} s, ratio {run['refresh'] / run['rebuild']:.0%}"
        )
    refresh = statistics.median(run["refresh"] for run in runs)
    rebuild = statistics.median(run["rebuild"] for run in runs)
    print(f"median: refresh {refresh:.1f} s, full rebuild {rebuild:.1f} s, ratio {refresh / rebuild:.0%}")
    for name in ("refresh_steps", "rebuild_steps"):
        steps = pd.DataFrame([run[name] for run in runs]).median().sort_values(ascending=False)
        shown = ", ".join(f"{step} {seconds:.1f}" for step, seconds in steps.head(args.top).items())
        print(f"slowest {name.split('_')[0]} steps (median s): {shown}; all steps {steps.sum():.1f}")


if __name__ == "__main__":
    main()
