"""Render the benchmark results as ``BENCHMARKS.md``."""

from __future__ import annotations

import datetime as dt

TARGET_SECONDS = 60.0
TARGET_XLSX_SECONDS = 120.0
TARGET_MB = 3 * 1024


# What the profiles (cProfile with a CPU-time clock, 2026-11-27) say about the targets not met. Static text: update
# it when the code changes; the figures above are measured on every run.
ANALYSIS = [
    "## Why targets are missed, and what would close them",
    "",
    "- **Shared machine.** The runs above shared 2 cores with other jobs (5-minute load average 4-5): wall "
    "times are 2-3x the CPU time. Compare the CPU s column; on an idle machine wall is close to CPU time "
    "(the pipeline is mostly single-threaded).",
    "- **Hybrid recommender** (`analytics/recommendations`, largest step at every scale). CPU profile at "
    "1.07M lines, 56 s CPU: blend-weight tuning refits every component on the validation split (28 s: "
    "item-kNN, SVD, rule mining with mlxtend's apriori 5 s), the final fit (23 s, of which randomized "
    "SVD 5 s and per-line description stripping, now done once per distinct text), candidate generation "
    "on dense customer x product score blocks (`argpartition` 4.5 s) and 171 coordinate-ascent evaluations "
    "(5 s). To close: reuse one fit of the components for tuning and evaluation, mine rules with the "
    "sparse miner of `pipeline.baskets` (identical rules, measured only ~10% faster, so not switched), "
    "and score candidates in sparse top-k blocks instead of dense rows.",
    "- **Customer centrality** (exact weighted betweenness on the customer projection, igraph): 29-32 s at "
    "full size in isolation, O(n m) so about 100x at 10x scale. Exact betweenness cannot meet 15 s "
    "here; options are splitting the sources over both cores (`Graph.betweenness(sources=...)`, sums "
    "identical up to float rounding) or a documented sampled estimate with its error measured.",
    "- **Schema checks and staging** (not owned by the benchmark work): the Pandera checks of "
    "`raw/raw_invoices` and `staging/cleaned_transactions` load and validate every line (9-16 s each), "
    "cleaning takes ~11 s at 525k lines. Validating in DuckDB SQL, or on the columns with rules only, "
    "would cut both; each asset also re-reads `staging.cleaned_transactions` from DuckDB, now only the "
    "columns it uses for the basket, network and recommender assets (`AssetIn(metadata={'columns': ...})`).",
    "- **Not measured in the committed run** (time budget of the session that wrote the harness): the 10x "
    "scale and the whole pipeline from the 1.07M-line `.xlsx`. Reading that workbook alone "
    "(`pipeline.readers.read_file`, calamine) took 57 s wall / 16.5 s CPU and 1 GB, against 3.1 s for the "
    "same lines in parquet; writing it with openpyxl (write-only) took 11 minutes, once, cached.",
    "- **Peak memory** at full size (3.2 GB; 3.8-4.1 GB in the refresh runs) was not profiled yet. "
    "Candidates: staging holds the raw, cleaned and rejected frames at once, and the recommender's dense "
    "customer x product score blocks; `tracemalloc` or `memray` on the staging and recommendation steps "
    "would tell.",
    "",
]


def _mb(value: float) -> str:
    return f"{value / 1024:.2f} GB" if value >= 1024 else f"{value:.0f} MB"


def _num(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None or value != value else f"{value:.{digits}f}"


def _met(ok: bool) -> str:
    return "met" if ok else "**not met**"


def _scale_table(scales: list[dict]) -> list[str]:
    lines = [
        "| scale | runs | wall s (median, whole subprocess) | of which imports s | CPU s | machine load "
        "(5-min average) | peak memory | all steps ok |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for s in scales:
        lines.append(
            f"| {s['label']} | {s['runs']} | {s['wall']:.1f} | {s['import']:.1f} | {_num(s.get('cpu'))} "
            f"| {_num(s.get('load'), 2)} | {_mb(s['peak_mb'])} | {s['success']} |"
        )
    return lines


def _step_table(scales: list[dict]) -> list[str]:
    steps = sorted(
        {k for s in scales for k in s["steps"]}, key=lambda k: -max(s["steps"].get(k, 0.0) for s in scales)
    )
    # The peak resident set sampled during each step, for the scale that has it largest (RSS rarely shrinks:
    # the step where it jumps is the one that allocated).
    peaks = [s for s in scales if any(s.get("step_peak_mb", {}).values())]
    header = "| step | " + " | ".join(f"{s['label']} s" for s in scales) + " |"
    header += "".join(f" {s['label']} peak RSS |" for s in peaks)
    lines = [header, "|---|" + "---|" * (len(scales) + len(peaks))]
    for step in steps:
        cells = " | ".join(f"{s['steps'][step]:.2f}" if step in s["steps"] else "-" for s in scales)
        cells += "".join(
            f" | {_mb(s['step_peak_mb'][step])}" if s["step_peak_mb"].get(step) else " | -" for s in peaks
        )
        lines.append(f"| {step} | {cells} |")
    totals = " | ".join(f"{sum(s['steps'].values()):.1f}" for s in scales)
    totals += "".join(f" | {_mb(s['peak_mb'])} (run)" for s in peaks)
    lines.append(f"| **sum of steps** | {totals} |")
    return lines


def _naive_table(label: str, naive: dict) -> list[str]:
    lines = [
        f"### Naive reference on {label}",
        "",
        "| workload | naive s | project s | speed-up | naive peak | project peak | memory ratio | identical |",
        "|---|---|---|---|---|---|---|---|",
    ]
    same = {"rules": naive["same_itemsets"], "centrality": naive["same_centrality"], "rfm": naive["same_rfm"]}
    for name in ("rules", "centrality", "rfm"):
        n, p = naive[name]["naive"], naive[name]["project"]
        # A naive side that hit its memory cap ran at least this long and needed more: ratios are lower bounds.
        bound = ">= " if "failed" in n else ""
        note = f" ({n['failed']})" if "failed" in n else ""
        lines.append(
            f"| {name} | {bound}{n['seconds']:.2f}{note} | {p['seconds']:.2f} "
            f"| {bound}{n['seconds'] / p['seconds']:.1f}x "
            f"| {bound}{_mb(n['peak_rss_mb'])} | {_mb(p['peak_rss_mb'])} "
            f"| {bound}{n['peak_rss_mb'] / p['peak_rss_mb']:.1f}x | {same[name] if same[name] is not None else 'n/a'} |"
        )
    n_sum = naive["rules"]["naive"]["seconds"] + naive["centrality"]["naive"]["seconds"]
    p_sum = naive["rules"]["project"]["seconds"] + naive["centrality"]["project"]["seconds"]
    n_mem = max(naive["rules"]["naive"]["peak_rss_mb"], naive["centrality"]["naive"]["peak_rss_mb"])
    p_mem = max(naive["rules"]["project"]["peak_rss_mb"], naive["centrality"]["project"]["peak_rss_mb"])
    bound = ">= " if any("failed" in naive[w]["naive"] for w in ("rules", "centrality")) else ""
    lines += [
        "",
        f"Rules + centralities: naive {bound}{n_sum:.1f} s vs project {p_sum:.1f} s = **{bound}{n_sum / p_sum:.1f}x** "
        f"faster (target 10x: {_met(n_sum / p_sum >= 10)}); peak memory {bound}{_mb(n_mem)} vs {_mb(p_mem)} = "
        f"**{bound}{n_mem / p_mem:.1f}x** less (target 5x: {_met(n_mem / p_mem >= 5)}).",
        "",
    ]
    return lines


def cost_curve(scales: list[dict], path) -> bool:
    """Plot wall time and peak memory against input lines (log-log, with the linear cost through full size).

    Returns:
        False when fewer than two parquet scales have a line count (nothing to draw).
    """
    points = sorted(
        (s["lines"], s["wall"], s["peak_mb"] / 1024, s["label"])
        for s in scales
        if s.get("lines") and not s["label"].endswith(".xlsx")
    )
    if len(points) < 2:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lines = [p[0] for p in points]
    full = next((p for p in points if p[3] == "synthetic 1.07M"), points[0])
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, index, unit in ((axes[0], 1, "wall seconds"), (axes[1], 2, "peak memory, GB")):
        ax.loglog(lines, [p[index] for p in points], "o-", label="measured")
        ax.loglog(lines, [full[index] * n / full[0] for n in lines], "--", color="grey",
                  label="linear from full size")
        for p in points:
            ax.annotate(p[3], (p[0], p[index]), textcoords="offset points", xytext=(4, -12), fontsize=8)
        ax.set_xlabel("invoice lines")
        ax.set_ylabel(unit)
        ax.legend(loc="upper left")
    axes[0].set_title("Whole pipeline, median wall time")
    axes[1].set_title("Whole pipeline, peak resident memory")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return True


def render(results: dict, *, plot=None) -> str:
    """Markdown report of one ``bench.run`` invocation; ``plot`` is where the cost-curve PNG goes."""
    m = results["machine"]
    scales = results["scales"]
    out = [
        "# Benchmarks",
        "",
        f"Written by `make bench` on {dt.date.today()}. Command: `{results['command']}` "
        "(from the project root, with the project's venv).",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory']} memory, Python {m['python']}. "
        "Other jobs may share the machine: treat differences under ~20% as noise.",
        "",
        "Each run materializes every asset and runs every check from a clean warehouse in a fresh subprocess "
        "(`python -m bench.child`, the `all_assets` job with the in-process executor). Wall time is the whole "
        "subprocess (interpreter start, imports, run); per-step times are STEP_START to STEP_SUCCESS from the "
        "run's event log; peak memory is the subprocess's maximum resident set (`VmHWM`). Synthetic inputs "
        "are written to parquet beforehand by `pipeline.synthetic.generate_invoices`, so generation is not timed.",
        "",
        "## Whole pipeline",
        "",
        *_scale_table(scales),
        "",
    ]
    full = next((s for s in scales if s["label"] == "synthetic 1.07M"), None)
    xlsx = next((s for s in scales if s["label"].endswith(".xlsx")), None)
    ten = next((s for s in scales if s["label"] == "synthetic 10.7M"), None)
    out += ["## Targets", "", "| target | measured | status |", "|---|---|---|"]
    if full:
        out.append(
            f"| full size from parquet: all assets <= 60 s | {full['wall']:.1f} s | "
            f"{_met(full['wall'] <= TARGET_SECONDS)} |"
        )
        out.append(
            f"| full size: peak memory <= 3 GB | {_mb(full['peak_mb'])} | {_met(full['peak_mb'] <= TARGET_MB)} |"
        )
    if xlsx:
        out.append(
            f"| full size from .xlsx <= 120 s | {xlsx['wall']:.1f} s | "
            f"{_met(xlsx['wall'] <= TARGET_XLSX_SECONDS)} |"
        )
    targets = results.get("targets")
    if targets:
        for name, value in targets.items():
            out.append(
                f"| {name} (full size, isolated) <= 15 s | {value['seconds']:.2f} s "
                f"(peak {_mb(value['peak_rss_mb'])}) | {_met(value['seconds'] <= 15)} |"
            )
    if full and ten:
        ratio = ten["wall"] / full["wall"]
        out.append(
            f"| 10x scale <= 12x full-size time | {ten['wall']:.1f} s = {ratio:.1f}x | {_met(ratio <= 12)} |"
        )
        out.append(
            f"| 10x scale peak memory <= 12 GB | {_mb(ten['peak_mb'])} | {_met(ten['peak_mb'] <= 12 * 1024)} |"
        )
    refresh = results.get("refresh")
    if refresh:
        r, f = refresh["refresh"], refresh["initial"]
        out.append(
            f"| nightly refresh (+1 day, {refresh['new_day_lines']} lines) vs full rebuild | "
            f"{r['wall_seconds']:.1f} s vs {f['wall_seconds']:.1f} s | ingest reads only the new file |"
        )
    out.append("")
    if len(scales) > 1:
        out += ["## Cost curve", "", "| scale | lines | wall s | sum of steps s | peak memory |",
                "|---|---|---|---|---|"]
        out += [
            f"| {s['label']} | {s.get('lines') or 'n/a'} | {s['wall']:.1f} | {sum(s['steps'].values()):.1f} "
            f"| {_mb(s['peak_mb'])} |"
            for s in scales
        ]
        out.append("")
        if plot is not None and cost_curve(scales, plot):
            out += [f"![cost curve](bench/{plot.name})", ""]
    if refresh:
        r = refresh["refresh"]
        ingest = {k: v["seconds"] for k, v in r["steps"].items() if "raw_invoices" in k and "check" not in k}
        out += [
            "## Nightly refresh",
            "",
            f"The full-size synthetic lines minus the last day were built first ({refresh['initial']['wall_seconds']:.1f} s); "
            f"then the last day ({refresh['new_day_lines']} lines) was added to the source folder as a second "
            f"file and all assets were materialized again on the same warehouse: {r['wall_seconds']:.1f} s. "
            f"Ingest steps: {', '.join(f'{k} {v:.2f} s' for k, v in ingest.items())} (only the new file is parsed; "
            "the unchanged file's lines are reloaded from `raw.raw_invoices`). Downstream assets are "
            "recomputed in full, since every table depends on all history.",
            "",
        ]
    out += ANALYSIS
    out += ["## Per step (median seconds)", "", *_step_table(scales), ""]
    for s in scales:
        if "naive" in s:
            out += _naive_table(s["label"], s["naive"])
    out += [
        "Naive reference: a dense pivot of quantities per invoice and product fed to mlxtend `apriori` "
        "(default, not low-memory) at the `--naive-support` threshold, networkx exact weighted betweenness "
        "(the project's networkx backend) on the product network restricted to the `--naive-nodes` products "
        "of highest weighted degree (the whole network takes networkx over ten minutes), and a pandas groupby "
        "RFM. Each side runs in its own subprocess and loads its columns from the warehouse first (not timed, "
        "but in the peak memory). Itemsets are compared with the project's all-countries itemsets "
        "(same basket cap of 250 distinct products); the project side times everything the assets do "
        "(all countries plus the five largest).",
        "",
    ]
    return "\n".join(out)
