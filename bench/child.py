"""Materialize every asset once in this process and print timings as JSON (run by ``bench.run``).

Usage: ``python -m bench.child OUT.json`` with ``RETAIL_SOURCE``, ``RETAIL_WAREHOUSE`` and ``DAGSTER_HOME`` set.
Per-step wall times come from the run's event log (STEP_START to STEP_SUCCESS/STEP_FAILURE); peak memory is
this process's maximum resident set, which covers the whole run (the job uses the in-process executor, and
DuckDB runs inside the process).
"""

from __future__ import annotations

import json
import os
import resource
import sys
import threading
import time

from bench.memory import status_mb


class RssSampler(threading.Thread):
    """Samples this process's resident set every ``interval`` seconds, so each step's peak can be told apart.

    ``VmHWM`` only gives the peak of the whole run; the samples (wall-clock time, MB) are matched to the
    steps' start and end times from the event log afterwards. A peak shorter than the interval can be missed,
    which is why the run's own ``VmHWM`` stays the figure for the whole run.
    """

    def __init__(self, interval: float = 0.05) -> None:
        super().__init__(daemon=True)
        self.interval = interval
        self.samples: list[tuple[float, float]] = []
        self._halt = threading.Event()

    def run(self) -> None:
        """Sample until :meth:`stop` is called."""
        while not self._halt.is_set():
            self.samples.append((time.time(), status_mb("VmRSS")))
            self._halt.wait(self.interval)

    def stop(self) -> list[tuple[float, float]]:
        """Stop sampling and return the samples."""
        self._halt.set()
        self.join()
        return self.samples

    def peak_between(self, start: float, end: float) -> float | None:
        """Largest sample taken between two wall-clock times (None if none was)."""
        inside = [mb for t, mb in self.samples if start <= t <= end]
        return max(inside) if inside else None


def main(out: str) -> None:
    """Run the ``all_assets`` job and write its timings to ``out``."""
    started = time.perf_counter()
    import dagster as dg

    from assets.definitions import defs

    imported = time.perf_counter()
    instance = dg.DagsterInstance.get()
    job = defs.resolve_job_def("all_assets")
    sampler = RssSampler()
    sampler.start()
    result = job.execute_in_process(instance=instance, raise_on_error=False)
    finished = time.perf_counter()
    sampler.stop()
    starts: dict[str, float] = {}
    steps: dict[str, dict] = {}
    for entry in instance.all_logs(result.run_id):
        event = entry.dagster_event
        if event is None or event.step_key is None:
            continue
        kind = event.event_type_value
        if kind == "STEP_START":
            starts[event.step_key] = entry.timestamp
        elif kind in ("STEP_SUCCESS", "STEP_FAILURE"):
            start = starts.get(event.step_key, entry.timestamp)
            steps[event.step_key] = {
                "seconds": entry.timestamp - start,
                "ok": kind == "STEP_SUCCESS",
                "peak_rss_mb": sampler.peak_between(start, entry.timestamp),
            }
    failed = [key for key, step in steps.items() if not step["ok"]]
    usage = resource.getrusage(resource.RUSAGE_SELF)
    # The betweenness workers are child processes: their CPU counts too (their memory, ~60 MB each at full
    # size and ~240 MB at 10x, is not in this process's VmHWM).
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    payload = {
        # CPU seconds and the load average show how much other jobs on the machine slowed the wall time.
        "cpu_seconds": usage.ru_utime + usage.ru_stime + children.ru_utime + children.ru_stime,
        "load_average": os.getloadavg()[1],
        "success": bool(result.success),
        "failed_steps": failed,
        "import_seconds": imported - started,
        "run_seconds": finished - imported,
        "total_seconds": finished - started,
        "peak_rss_mb": status_mb("VmHWM"),
        "steps": steps,
    }
    with open(out, "w", encoding="utf-8") as handle:
        json.dump(payload, handle)


if __name__ == "__main__":
    main(sys.argv[1])
