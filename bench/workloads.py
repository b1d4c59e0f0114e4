"""One benchmark workload per subprocess: the project's code or the naive notebook reference, on warehouse data.

Usage: ``python -m bench.workloads NAME WAREHOUSE OUT_PREFIX [--min-support S] [--nodes N]``. Each workload
loads only the columns it needs from ``staging.cleaned_transactions`` (loading is not timed), runs, and
writes ``OUT_PREFIX.json`` (seconds, peak resident memory of the process) and ``OUT_PREFIX.parquet`` (its
result, which ``bench.run`` compares between the project and the reference).

The naive reference is what a notebook would do: a dense invoice x product pivot of quantities fed to
mlxtend's ``apriori`` (default, not low-memory), networkx's pure-Python exact betweenness, pandas groupby RFM.
It is given the same basket universe as the project (giant invoices above the cap left out) so that the
itemsets can be compared one to one.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from bench.memory import status_mb

# The rule assets' default (the rule_mining resource): textbook support over every invoice, no basket cap.
RULE_MINING_CAP: int | None = None
# The product network's default cap on distinct products per basket.
NETWORK_BASKET_CAP = 250


def load(warehouse: str, columns: list[str]) -> pd.DataFrame:
    """Read some columns of the cleaned transactions (``customer_id`` as nullable Int64)."""
    with duckdb.connect(warehouse, read_only=True) as conn:
        frame = conn.sql(f"SELECT {', '.join(columns)} FROM staging.cleaned_transactions").df()
    if "customer_id" in frame:
        frame["customer_id"] = frame["customer_id"].astype("Int64")
    return frame


def _items_frame(items: pd.Series, counts: np.ndarray) -> pd.DataFrame:
    """Canonical itemset table: sorted items joined by '|', and basket counts, sorted."""
    keys = ["|".join(sorted(map(str, i))) for i in items]
    return pd.DataFrame({"items": keys, "support_count": np.asarray(counts, dtype=np.int64)}).sort_values(
        "items", ignore_index=True
    )


def naive_rules(warehouse: str, *, min_support: float) -> tuple[float, pd.DataFrame]:
    """Dense pandas pivot + mlxtend apriori + association_rules, as in a notebook."""
    from mlxtend.frequent_patterns import apriori, association_rules

    cleaned = load(warehouse, ["invoice", "stock_code", "quantity"])
    started = time.perf_counter()
    kept = cleaned
    if RULE_MINING_CAP is not None:
        sizes = cleaned.groupby("invoice")["stock_code"].nunique()
        kept = cleaned[cleaned["invoice"].isin(sizes.index[sizes <= RULE_MINING_CAP])]
    basket = kept.groupby(["invoice", "stock_code"])["quantity"].sum().unstack(fill_value=0) > 0
    itemsets = apriori(basket, min_support=min_support, use_colnames=True, max_len=3)
    association_rules(itemsets, num_itemsets=len(basket), metric="confidence", min_threshold=0.3)
    seconds = time.perf_counter() - started
    counts = np.rint(itemsets["support"].to_numpy() * len(basket))
    return seconds, _items_frame(itemsets["itemsets"], counts)


def project_rules(warehouse: str, *, min_support: float) -> tuple[float, pd.DataFrame]:
    """What the frequent_itemsets and association_rules assets run (all countries and the top five)."""
    from pipeline.baskets import basket_analysis

    cleaned = load(warehouse, ["invoice", "stock_code", "description", "country"])
    started = time.perf_counter()
    mining = basket_analysis.RuleMining(
        min_support=min_support,
        max_len=3,
        max_basket_size=RULE_MINING_CAP,
        min_support_count=10,
        min_confidence=0.3,
        min_lift=1.0,
    )
    itemsets = basket_analysis.itemsets_by_country(cleaned, mining, top_n_countries=5, min_invoices=100)
    basket_analysis.association_rules_table(
        itemsets, min_confidence=mining.min_confidence, min_lift=mining.min_lift
    )
    seconds = time.perf_counter() - started
    overall = itemsets[itemsets["country"].isna()]
    return seconds, _items_frame(overall["items"], overall["support_count"].to_numpy())


def _product_edges(warehouse: str, nodes: int) -> pd.DataFrame:
    """The product network of the asset, restricted to the ``nodes`` products of highest weighted degree."""
    from pipeline.network import graphs

    edges = graphs.product_network_edges(
        load(warehouse, ["invoice", "stock_code"]), max_basket_size=NETWORK_BASKET_CAP
    )
    if nodes:
        strength = pd.concat(
            [edges.groupby("source")["weight"].sum(), edges.groupby("target")["weight"].sum()]
        )
        strength = strength.groupby(level=0).sum().sort_values(ascending=False, kind="stable")
        top = set(strength.index[:nodes])
        edges = edges[edges["source"].isin(top) & edges["target"].isin(top)].reset_index(drop=True)
    return edges


def _customer_edges(warehouse: str) -> pd.DataFrame:
    from pipeline.network import graphs

    return graphs.customer_network_edges(
        load(warehouse, ["invoice", "stock_code", "customer_id"]), min_shared_products=10, top_k=10
    )


_SCORES = ["node", "degree", "betweenness_centrality", "eigenvector_centrality"]


def centrality(warehouse: str, *, backend: str, nodes: int, graph: str) -> tuple[float, pd.DataFrame]:
    """Exact centralities of the product (or customer) network with one backend."""
    from pipeline.network import graphs

    edges = _product_edges(warehouse, nodes) if graph == "product" else _customer_edges(warehouse)
    started = time.perf_counter()
    scores = graphs.centrality(edges, backend=backend, communities=backend == "igraph")
    seconds = time.perf_counter() - started
    return seconds, scores[_SCORES].astype({"node": str})


def naive_rfm(warehouse: str) -> tuple[float, pd.DataFrame]:
    """Recency, frequency and monetary value with a pandas groupby."""
    cleaned = load(warehouse, ["invoice", "customer_id", "invoice_date", "revenue"])
    started = time.perf_counter()
    known = cleaned.dropna(subset=["customer_id"])
    reference = known["invoice_date"].max().normalize() + pd.Timedelta(days=1)
    rfm = known.groupby("customer_id").agg(
        last=("invoice_date", "max"), frequency=("invoice", "nunique"), monetary=("revenue", "sum")
    )
    rfm["recency_days"] = (reference - rfm["last"].dt.normalize()).dt.days
    rfm["monetary"] = rfm["monetary"].round(2)
    seconds = time.perf_counter() - started
    out = rfm.reset_index()[["customer_id", "recency_days", "frequency", "monetary"]]
    return seconds, out.astype({"customer_id": "int64", "recency_days": "int64", "frequency": "int64"})


def project_rfm(warehouse: str) -> tuple[float, pd.DataFrame]:
    """The rfm asset's function (DuckDB aggregation, scores and segments)."""
    from pipeline.customers import rfm_segments

    cleaned = load(warehouse, ["invoice", "customer_id", "invoice_date", "revenue"])
    started = time.perf_counter()
    rfm = rfm_segments.rfm_table(cleaned)
    seconds = time.perf_counter() - started
    return seconds, rfm[["customer_id", "recency_days", "frequency", "monetary"]].astype(
        {"customer_id": "int64", "recency_days": "int64", "frequency": "int64"}
    )


def main() -> None:
    """Run one workload and write its timing and result."""
    parser = argparse.ArgumentParser()
    parser.add_argument("name")
    parser.add_argument("warehouse")
    parser.add_argument("out")
    parser.add_argument("--min-support", type=float, default=0.01)
    parser.add_argument("--nodes", type=int, default=0)
    parser.add_argument(
        "--memory-cap-gb",
        type=float,
        default=0.0,
        help="address-space limit (RLIMIT_AS) so a runaway naive workload fails with MemoryError instead of "
        "swapping the machine; 0 = none",
    )
    args = parser.parse_args()
    if args.memory_cap_gb:
        cap = int(args.memory_cap_gb * 1024**3)
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    runners = {
        "naive_rules": lambda: naive_rules(args.warehouse, min_support=args.min_support),
        "project_rules": lambda: project_rules(args.warehouse, min_support=args.min_support),
        "naive_product_centrality": lambda: centrality(
            args.warehouse, backend="networkx", nodes=args.nodes, graph="product"
        ),
        "project_product_centrality": lambda: centrality(
            args.warehouse, backend="igraph", nodes=args.nodes, graph="product"
        ),
        "project_customer_centrality": lambda: centrality(
            args.warehouse, backend="igraph", nodes=0, graph="customer"
        ),
        "naive_rfm": lambda: naive_rfm(args.warehouse),
        "project_rfm": lambda: project_rfm(args.warehouse),
    }
    cpu_started = time.process_time()
    wall_started = time.perf_counter()
    try:
        seconds, result = runners[args.name]()
    except MemoryError:
        # Reported as a failure with the time it ran before hitting the cap: the ratio is then a lower bound.
        Path(args.out + ".json").write_text(
            json.dumps(
                {
                    "seconds": time.perf_counter() - wall_started,
                    "cpu_seconds": time.process_time() - cpu_started,
                    "peak_rss_mb": status_mb("VmHWM"),
                    "failed": f"MemoryError under a {args.memory_cap_gb:g} GB address-space cap",
                }
            )
        )
        return
    # CPU seconds of the whole workload (loading included): the contention-free cost on a shared machine.
    cpu = time.process_time() - cpu_started
    result.to_parquet(Path(args.out + ".parquet"), index=False)
    peak = status_mb("VmHWM")
    Path(args.out + ".json").write_text(
        json.dumps({"seconds": seconds, "cpu_seconds": cpu, "peak_rss_mb": peak, "rows": len(result)})
    )


if __name__ == "__main__":
    main()
