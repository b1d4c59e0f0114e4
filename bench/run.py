"""``make bench``: materialize every asset at several scales, time a nightly refresh, compare with a naive reference.

Each pipeline run is a fresh ``python -m bench.child`` subprocess on a clean warehouse and a fresh Dagster
home, so imports and DuckDB start-up are paid as in production. Inputs are written before any timing
(``bench.inputs``). Results go to ``BENCHMARKS.md``; raw JSON per run stays in the work folder.

The bench unsets ``OPENBLAS_NUM_THREADS``/``OMP_NUM_THREADS``-style caps in its subprocesses unless
``--keep-thread-env`` is given, so BLAS may use both cores as in a default deployment.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

from bench import inputs
from bench.memory import status_mb

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT.parent / "shared" / "data" / "online_retail_II_2009_2010.parquet"
PYTHON = sys.executable
THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_MAIN_FREE")
FULL_LINES = 1_070_000


def machine() -> dict[str, str]:
    """CPU model, core count and memory of this machine."""
    cpu = "unknown"
    with open("/proc/cpuinfo", encoding="utf-8") as handle:
        for line in handle:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo", encoding="utf-8") as handle:
        mem_kb = int(handle.readline().split()[1])
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "memory": f"{mem_kb / 1024**2:.1f} GiB",
        "python": platform.python_version(),
    }


def _env(args: argparse.Namespace, **extra: str) -> dict[str, str]:
    env = dict(os.environ, **extra)
    if not args.keep_thread_env:
        for name in THREAD_VARS:
            env.pop(name, None)
    return env


def run_pipeline(
    args: argparse.Namespace, source: Path, work: Path, *, warehouse: Path | None = None
) -> dict:
    """Materialize all assets once in a fresh subprocess; a clean warehouse unless ``warehouse`` is given."""
    home = work / "dagster_home"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
    if warehouse is None:
        warehouse = work / "warehouse" / "retail.duckdb"
        shutil.rmtree(warehouse.parent, ignore_errors=True)
    out = work / "run.json"
    log = work / "run.log"
    started = time.perf_counter()
    with open(log, "w", encoding="utf-8") as handle:
        subprocess.run(
            [PYTHON, "-m", "bench.child", str(out)],
            cwd=ROOT,
            stdout=handle,
            stderr=subprocess.STDOUT,
            env=_env(
                args, DAGSTER_HOME=str(home), RETAIL_SOURCE=str(source), RETAIL_WAREHOUSE=str(warehouse)
            ),
            check=True,
        )
    result = json.loads(out.read_text())
    result["wall_seconds"] = time.perf_counter() - started
    result["warehouse"] = str(warehouse)
    status = "ok" if result["success"] else f"FAILED {result['failed_steps']}"
    print(
        f"    {result['wall_seconds']:.1f} s wall, peak {result['peak_rss_mb']:.0f} MB, {status}", flush=True
    )
    return result


def bench_scale(args: argparse.Namespace, label: str, source: Path, runs: int) -> dict:
    """Several clean runs of one input; medians per step."""
    work = args.work / label
    results = []
    for i in range(runs):
        saved = work / f"run{i}.json"
        if args.reuse and saved.exists() and Path(json.loads(saved.read_text())["warehouse"]).exists():
            print(f"  {label} run {i + 1}/{runs}: reusing {saved}", flush=True)
            results.append(json.loads(saved.read_text()))
            continue
        print(f"  {label} run {i + 1}/{runs}", flush=True)
        results.append(run_pipeline(args, source, work))
        saved.write_text(json.dumps(results[-1]))
    steps = sorted({step for r in results for step in r["steps"]})
    return {
        "label": label,
        "source": str(source),
        "runs": runs,
        "wall": statistics.median(r["wall_seconds"] for r in results),
        "wall_all": [round(r["wall_seconds"], 1) for r in results],
        "import": statistics.median(r["import_seconds"] for r in results),
        "peak_mb": max(r["peak_rss_mb"] for r in results),
        "cpu": statistics.median(r.get("cpu_seconds", float("nan")) for r in results),
        "load": statistics.median(r.get("load_average", float("nan")) for r in results),
        "success": all(r["success"] for r in results),
        "steps": {
            s: statistics.median(r["steps"][s]["seconds"] for r in results if s in r["steps"]) for s in steps
        },
        # Resident set at the end of each step's largest moment, from the child's sampler (older saved runs
        # have none).
        "step_peak_mb": {
            s: max(
                (r["steps"][s]["peak_rss_mb"] for r in results if r["steps"].get(s, {}).get("peak_rss_mb")),
                default=None,
            )
            for s in steps
        },
        "warehouse": results[-1]["warehouse"],
    }


def bench_refresh(args: argparse.Namespace, parquet: Path) -> dict:
    """Full build on all days but the last, then one new day's file lands in the folder: time the refresh."""
    folder, new_day = inputs.refresh_folder(args.data_dir, parquet)
    (folder / new_day.name).unlink(missing_ok=True)
    work = args.work / "refresh"
    saved = work / "refresh.json"
    if args.reuse and saved.exists():
        print(f"  reusing {saved}", flush=True)
        return json.loads(saved.read_text())
    print("  refresh: initial build on history", flush=True)
    first = run_pipeline(args, folder, work)
    shutil.copy(new_day, folder / new_day.name)
    try:
        print("  refresh: one new day arrives", flush=True)
        second = run_pipeline(args, folder, work, warehouse=Path(first["warehouse"]))
    finally:
        (folder / new_day.name).unlink(missing_ok=True)
    result = {"initial": first, "refresh": second, "new_day_lines": len(pd.read_parquet(new_day))}
    saved.write_text(json.dumps(result))
    return result


def workload(args: argparse.Namespace, name: str, warehouse: str, **options) -> dict:
    """Run ``bench.workloads`` NAME in a fresh subprocess; return its timing and result frame."""
    out = args.work / "workloads" / "_".join([name, *(f"{k}{v}" for k, v in options.items())])
    out.parent.mkdir(parents=True, exist_ok=True)
    cmd = [PYTHON, "-m", "bench.workloads", name, warehouse, str(out)]
    for key, value in options.items():
        cmd += [f"--{key.replace('_', '-')}", str(value)]
    if name.startswith("naive"):
        cmd += ["--memory-cap-gb", str(args.naive_memory_cap_gb)]
    Path(str(out) + ".parquet").unlink(missing_ok=True)
    timeout = args.naive_timeout if name.startswith("naive") else None
    started = time.perf_counter()
    process = subprocess.Popen(cmd, cwd=ROOT, env=_env(args))
    peak = 0.0
    while process.poll() is None:
        peak = max(peak, status_mb("VmHWM", process.pid))
        if timeout is not None and time.perf_counter() - started > timeout:
            process.kill()
            process.wait()
            # Stopped at the time limit: its time and memory so far are lower bounds.
            result = {
                "seconds": time.perf_counter() - started,
                "peak_rss_mb": peak,
                "failed": f"stopped at the {timeout:g} s time limit",
                "frame": None,
            }
            print(f"    {name} {options}: {result['failed']}, peak so far {peak:.0f} MB", flush=True)
            return result
        time.sleep(0.2)
    if process.returncode != 0:
        raise subprocess.CalledProcessError(process.returncode, cmd)
    result = json.loads(Path(str(out) + ".json").read_text())
    if "failed" in result:
        result["frame"] = None
        print(f"    {name} {options}: {result['failed']} after {result['seconds']:.1f} s", flush=True)
        return result
    result["frame"] = pd.read_parquet(str(out) + ".parquet")
    print(f"    {name} {options}: {result['seconds']:.2f} s, peak {result['peak_rss_mb']:.0f} MB", flush=True)
    return result


def _same(a: pd.DataFrame | None, b: pd.DataFrame | None, *, key: str, rtol: float = 1e-9) -> bool | None:
    if a is None or b is None:
        return None  # one side failed: nothing to compare
    a, b = a.sort_values(key, ignore_index=True), b.sort_values(key, ignore_index=True)
    try:
        pd.testing.assert_frame_equal(a, b, check_dtype=False, rtol=rtol, atol=1e-12)
    except AssertionError:
        return False
    return True


def bench_naive(args: argparse.Namespace, warehouse: str) -> dict:
    """Naive reference against the project on one warehouse: rules, centralities, RFM."""
    support = args.naive_support
    rules = {
        side: workload(args, f"{side}_rules", warehouse, min_support=support) for side in ("naive", "project")
    }
    central = {
        side: workload(args, f"{side}_product_centrality", warehouse, nodes=args.naive_nodes)
        for side in ("naive", "project")
    }
    rfm = {side: workload(args, f"{side}_rfm", warehouse) for side in ("naive", "project")}
    return {
        "rules": rules,
        "centrality": central,
        "rfm": rfm,
        "same_itemsets": _same(rules["naive"]["frame"], rules["project"]["frame"], key="items"),
        "same_centrality": _same(
            central["naive"]["frame"], central["project"]["frame"], key="node", rtol=1e-7
        ),
        "same_rfm": _same(rfm["naive"]["frame"], rfm["project"]["frame"], key="customer_id"),
    }


def bench_targets(args: argparse.Namespace, warehouse: str) -> dict:
    """Project-only: rules at min_support 0.005 and exact centralities of the full networks."""
    return {
        "rules_0.005": workload(args, "project_rules", warehouse, min_support=0.005),
        "product_centrality": workload(args, "project_product_centrality", warehouse, nodes=0),
        "customer_centrality": workload(args, "project_customer_centrality", warehouse),
    }


def write(args: argparse.Namespace, results: dict) -> None:
    """Write BENCHMARKS.md and the raw results; called after every stage so a long run leaves partial figures."""
    from bench import report

    args.output.write_text(report.render(results, plot=args.output.parent / "bench" / "cost_curve.png"))
    args.work.mkdir(parents=True, exist_ok=True)
    (args.work / "results.json").write_text(
        json.dumps(results, default=lambda o: None if isinstance(o, pd.DataFrame) else str(o), indent=1)
    )


def main(argv: list[str] | None = None) -> None:
    """Parse flags, run the benchmark, write BENCHMARKS.md."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--scales",
        default="real,1x,10x,xlsx,refresh,naive",
        help="comma-separated among real, 1x, 10x, xlsx, refresh, naive",
    )
    parser.add_argument("--runs", type=int, default=3, help="runs per scale at real and full size (median)")
    parser.add_argument("--runs-10x", type=int, default=1, help="runs at 10x scale")
    parser.add_argument("--quick", action="store_true", help="one run per scale, 10x and xlsx skipped")
    parser.add_argument(
        "--naive-support", type=float, default=0.01, help="min_support of the naive comparison"
    )
    parser.add_argument(
        "--naive-nodes",
        type=int,
        default=200,
        help="products (highest weighted degree) of the networkx betweenness comparison; 0 = all",
    )
    parser.add_argument("--naive-on", default="real,1x", help="scales (real, 1x) the naive reference runs on")
    parser.add_argument(
        "--naive-timeout",
        type=float,
        default=900.0,
        help="seconds after which a naive workload is stopped and reported as a lower bound",
    )
    parser.add_argument(
        "--naive-memory-cap-gb",
        type=float,
        default=20.0,
        help="address-space cap of each naive workload (the machine has 24 GB); beyond it the naive side is "
        "reported as failed and the ratios as lower bounds",
    )
    parser.add_argument("--data-dir", type=Path, default=ROOT / "data" / "bench", help="cached inputs")
    parser.add_argument(
        "--work", type=Path, default=ROOT / "data" / "bench" / "work", help="warehouses, logs"
    )
    parser.add_argument("--output", type=Path, default=ROOT / "BENCHMARKS.md")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="reuse the saved runs (and their warehouses) of an earlier invocation with the same --work",
    )
    parser.add_argument("--keep-thread-env", action="store_true", help="keep OPENBLAS_*/OMP_* thread caps")
    parser.add_argument(
        "--render-only", action="store_true", help="rewrite BENCHMARKS.md from the saved results.json"
    )
    args = parser.parse_args(argv)
    if args.render_only:
        from bench import report

        saved = json.loads((args.work / "results.json").read_text())
        args.output.write_text(report.render(saved, plot=args.output.parent / "bench" / "cost_curve.png"))
        return
    scales = args.scales.split(",")
    if args.quick:
        args.runs = 1
        scales = [s for s in scales if s not in ("10x", "xlsx")]
    command = "python -m bench.run " + " ".join(argv if argv is not None else sys.argv[1:])
    results: dict = {"machine": machine(), "command": command.strip(), "scales": []}

    print("preparing inputs (not timed)", flush=True)
    full = inputs.synthetic_parquet(args.data_dir, FULL_LINES)
    sources: list[tuple[str, Path, int]] = []
    if "real" in scales:
        if REAL.exists():
            sources.append(("real 2009-2010 (525k)", REAL, args.runs))
        else:
            print(f"  skipping the real sheet: {REAL} not found", flush=True)
    if "1x" in scales:
        sources.append(("synthetic 1.07M", full, args.runs))
    if "xlsx" in scales:
        sources.append(("synthetic 1.07M .xlsx", inputs.uci_workbook(args.data_dir, full), 1))
    if "10x" in scales:
        sources.append(
            ("synthetic 10.7M", inputs.synthetic_parquet(args.data_dir, 10 * FULL_LINES), args.runs_10x)
        )

    for label, source, runs in sources:
        print(f"scale {label}: {source}", flush=True)
        results["scales"].append(bench_scale(args, label.split(" (")[0].replace(" ", "_"), source, runs))
        results["scales"][-1]["label"] = label
        results["scales"][-1]["lines"] = inputs.line_count(source)
        write(args, results)
    full_scale = next((s for s in results["scales"] if s["label"] == "synthetic 1.07M"), None)
    if "refresh" in scales:
        print("nightly refresh", flush=True)
        results["refresh"] = bench_refresh(args, full)
        write(args, results)
    if full_scale is not None:
        print("project targets on the full-size warehouse", flush=True)
        results["targets"] = bench_targets(args, full_scale["warehouse"])
        write(args, results)
    if "naive" in scales:
        wanted = {"real": "real 2009-2010 (525k)", "1x": "synthetic 1.07M"}
        labels = {wanted[name] for name in args.naive_on.split(",") if name in wanted}
        for scale in results["scales"]:
            if scale["label"] in labels:
                print(f"naive reference on {scale['label']}", flush=True)
                scale["naive"] = bench_naive(args, scale["warehouse"])
                write(args, results)
    write(args, results)
    print(f"wrote {args.output}", flush=True)


if __name__ == "__main__":
    main()
