"""Render the benchmark results as ``BENCHMARKS.md``."""

from __future__ import annotations

import datetime as dt

TARGET_SECONDS = 60.0
TARGET_XLSX_SECONDS = 120.0
TARGET_MB = 3 * 1024


# What the profiles said and what was changed (session of 2026-11-27). Static text: update it when the code
# changes; every figure in the tables above and below is measured by the run that wrote the file.
ANALYSIS = [
    "## What was changed, and what is left",
    "",
    "Baseline: the same command's full-size run on the code before the performance work (commit a11e8d2, "
    "`python -m bench.child`, one run on a nearly idle machine, load average 1.1): **219 s wall, 3.7 GB peak**. "
    "Largest steps then: recommendations 37.5 s + recommender_evaluation 29.9 s, customer_centrality 26.1 s, "
    "cluster_model_selection 10.2 s, the report 9.2 s, frequent_itemsets 8.4 s, cleaned_transactions 7.5 s, "
    "customer_predictions 7.0 s, association_rules 7.0 s, raw_invoices 5.9 s, and the schema checks of "
    "cleaned, rules and raw 5.4 / 5.3 / 5.1 s. The memory peak (3.65 GB) was in the EDA steps, which loaded "
    "every column of the cleaned lines. Profiles with py-spy on each step, then:",
    "",
    "- **Recommender** (67 s -> 9-13 s, bit-identical tables): one multi-asset `recommender` writes both "
    "`analytics.recommendations` and `analytics.recommender_evaluation`; the fit before the evaluation cutoff "
    "serves the evaluation and the tuning of the served blend (3 fits of the five components instead of 4); "
    "lines coded to integers once; exact sparse rule miner instead of mlxtend inside the rules component; "
    "item-kNN similarity by upper-triangle blocks; value-based top-k with the old `argpartition` only for "
    "rows tied at rank k; serving in customer blocks; `n_jobs` threads for the three fits.",
    "- **Centralities**: exact betweenness split over two worker processes (fresh interpreters importing only "
    "igraph; sums equal the single-process result): customer network 26 s -> 14 s on an idle machine, "
    "but twice that when another process holds a core. Networks above 10,000 nodes (the customer network "
    "at 10x: 74k nodes) get a seeded 1,000-pivot Brandes-Pich estimate (error on the full-size network: hub "
    "within 0.2%, largest error 0.3-0.9% of the top score, Spearman 0.94-0.97, 8-10 of the top 10).",
    "- **Baskets** (19 s -> 5 s, identical itemsets and rules): an exact sparse depth-first miner (`eclat`: "
    "one sparse product counts every two-item extension of a prefix) replaces mlxtend's apriori; rules "
    "vectorized per itemset length with mlxtend's formulas; bundles read only the rules they use.",
    "- **Ingest and cleaning** (13 s -> 4 s, identical tables): Arrow-backed, dictionary-encoded text from "
    "the reader to DuckDB; cleaning's text rules evaluated once per distinct value; duplicates searched only "
    "among repeated (invoice, code) pairs; staging reads the raw table through Arrow. Staging memory fell "
    "from ~1.3 GB to ~0.45 GB above the interpreter.",
    "- **Schema checks** (16 s for the three large ones -> ~2 s; 27 checks 19 s -> 4 s CPU): validated in "
    "DuckDB from the Pandera models (one SQL scan for nulls, ranges and keys; value checks on distinct "
    "values; pandas only for custom checks); failing rows loaded and reported by Pandera itself, so the "
    "failure report is unchanged.",
    "- **EDA, RFM, predictions** aggregate in DuckDB where the lines live instead of loading them; model "
    "selection fits its mixtures on a seeded sample of 3,000 customers (documented approximation: same k "
    "and covariance type at full size); the report reuses the plots of the run; the IO manager loads through "
    "Arrow (3x faster than `.df()` for text). Peak memory 3.7 GB -> 1.9 GB.",
    "",
    "Left, and what would close it:",
    "",
    "- **60 s at full size is not met** on this machine: the best full-size run took about 75 s wall "
    "(68 s CPU in the main process plus the betweenness workers). Exact customer betweenness alone is "
    "14 s on both cores (O(n m): 7.3k nodes, 68k edges); sampling it at full size (1,000 pivots, about a "
    "seventh of the cost) would close most of the gap but the issue asks for exact centralities there. "
    "The rest is ~60 steps of a few seconds each: model selection 6 s (k-means over k = 2..10 with "
    "n_init), predictions 3 s, rules 3 s, ingest and staging 4-5 s, ~35 checks at 0.1-0.5 s, 4 s of "
    "imports, Dagster's per-step event handling.",
    "- **At 10x the quadratic step shows**: `customer_network_edges` scores every pair of customers sharing a "
    "product (70 s at 10.7M lines against 2 s at full size); the recommender is the largest step there (94 s, "
    "its 8.5 GB peak is the run's). A candidate step (MinHash/LSH, or leaving out the most popular products "
    "when pairing customers) would make the projection grow linearly.",
    "- **A nightly refresh costs about a rebuild**: ingest parses only the new day's file, but every "
    "downstream table depends on all history and is recomputed, and `raw_invoices` reloads the unchanged "
    "lines through `Warehouse.read_table` (`.df()`, object strings: 6 s against 2.5 s for parsing the "
    "parquet). Reading the kept lines through Arrow, and appending to history-wide aggregates instead of "
    "recomputing them, would make it cheaper than a rebuild.",
    "- **Exact customer betweenness in isolation** (targets table) took 16.9 s, over the 15 s target; 14.3 s "
    "inside the quiet full-size run.",
    "- **CPU and memory of the betweenness workers**: the runs above count only the main process's CPU "
    "(the child now adds its children's for later runs) and its peak memory; each worker peaks at about "
    "60 MB at full size and 240 MB at 10x. Two workers cost ~40% more CPU than one process (cache and "
    "memory-bandwidth contention) and only win wall time when the second core is free.",
    "- **Medians are pessimistic here**: the runs shared the 2 cores with other jobs (see the load column); "
    "a run whose neighbour held a core took 109 s where the quiet one took 75 s, almost all of the "
    "difference in the two-process betweenness.",
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
        "| scale | runs | wall s (median, whole subprocess) | every run s | of which imports s | CPU s | "
        "machine load (5-min average) | peak memory | all steps ok |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for s in scales:
        every = ", ".join(f"{w:.1f}" for w in s.get("wall_all", [])) or "n/a"
        lines.append(
            f"| {s['label']} | {s['runs']} | {s['wall']:.1f} | {every} | {s['import']:.1f} | {_num(s.get('cpu'))} "
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
        "are written to parquet beforehand by `pipeline.sources.synthetic.generate_invoices`, so generation is not timed.",
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
