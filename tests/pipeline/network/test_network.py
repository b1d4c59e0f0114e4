"""Tests for pipeline.network.graphs: edge lists against brute force, centralities igraph vs networkx."""

from __future__ import annotations

import functools
import math
from fractions import Fraction
from itertools import combinations

import networkx as nx
import numpy as np
import pandas as pd
import pandera.pandas as pa
import pytest
from matplotlib.figure import Figure
from scipy.stats import spearmanr

from pipeline.network import graphs
from pipeline.network.plots import product_network_figure
from pipeline.network.schemas import (
    CustomerCentrality,
    CustomerNetworkEdges,
    ProductCentrality,
    ProductNetworkEdges,
)

COMPARED = ["component", "degree", "weighted_degree", "degree_centrality", "betweenness_centrality"]


def make_cleaned(lines: list[tuple[str, str, int | None]]) -> pd.DataFrame:
    """A cleaned_transactions frame from (invoice, stock_code, customer_id) lines."""
    frame = pd.DataFrame(lines, columns=["invoice", "stock_code", "customer_id"])
    return frame.assign(
        customer_id=frame["customer_id"].astype("Int64"),
        description=None,
        quantity=1,
        price=1.0,
        revenue=1.0,
        country="United Kingdom",
        invoice_date=pd.Timestamp("2010-01-01"),
    )


def random_lines(n_invoices: int, n_products: int, n_customers: int, *, seed: int) -> list[tuple]:
    """Invoices of 1-8 products from a skewed popularity; every fifth invoice is a guest's."""
    rng = np.random.default_rng(seed)
    popularity = 1.0 / np.arange(1, n_products + 1) ** 0.7
    lines = []
    for b in range(n_invoices):
        customer = None if b % 5 == 0 else int(1000 + rng.integers(n_customers))
        size = int(rng.integers(1, 9))
        for k in rng.choice(n_products, size=size, replace=False, p=popularity / popularity.sum()):
            lines.append((f"{500000 + b}", f"P{k:03d}", customer))
    return lines


def random_edges(n: int, p: float, weights: list[int], *, seed: int) -> pd.DataFrame:
    """A G(n, p) random graph with weights drawn from a small set, so equal-length paths abound."""
    rng = np.random.default_rng(seed)
    graph = nx.gnp_random_graph(n, p, seed=seed)
    pairs = np.array(sorted(graph.edges))
    return pd.DataFrame(
        {
            "source": [f"N{a:03d}" for a in pairs[:, 0]],
            "target": [f"N{b:03d}" for b in pairs[:, 1]],
            "weight": rng.choice(weights, size=len(pairs)),
        }
    )


def reference_graph(edges: pd.DataFrame, distance) -> nx.Graph:
    """The networkx graph of an edge list, with ``distance`` computed from each weight."""
    graph = nx.Graph()
    for row in edges.itertuples(index=False):
        graph.add_edge(row.source, row.target, weight=float(row.weight), distance=distance(row.weight))
    return graph


def as_series(values: dict, nodes: pd.Series) -> np.ndarray:
    return np.array([values[node] for node in nodes], dtype=float)


def kept_by_top_k(strength: dict[tuple, object], k: int | None) -> set[tuple]:
    """Pairs among the ``k`` strongest of either end (ties by the smaller other end), by brute force."""
    if k is None:
        return set(strength)
    kept = set()
    for node in {end for pair in strength for end in pair}:
        mine = [(value, b if a == node else a) for (a, b), value in strength.items() if node in (a, b)]
        for _, other in sorted(mine, key=lambda pair: (-pair[0], pair[1]))[:k]:
            kept.add((min(node, other), max(node, other)))
    return kept


def holders_of(lines: list[tuple], by: str) -> dict:
    """Sets by brute force: invoices holding each product, or distinct products bought by each customer."""
    sets: dict = {}
    for invoice, code, customer in lines:
        if by == "product":
            sets.setdefault(code, set()).add(invoice)
        elif customer is not None:
            sets.setdefault(customer, set()).add(code)
    return sets


def jaccard_pairs(sets: dict, min_shared: int) -> dict[tuple, Fraction]:
    """Exact Jaccard index of every pair of sets sharing at least ``min_shared`` members."""
    return {
        (a, b): Fraction(len(sets[a] & sets[b]), len(sets[a] | sets[b]))
        for a, b in combinations(sorted(sets), 2)
        if len(sets[a] & sets[b]) >= min_shared
    }


@pytest.mark.parametrize(("block_pairs", "workers", "top_k"), [(None, 1, None), (60, 2, None), (60, 2, 3)])
def test_product_edges_match_brute_force(monkeypatch, block_pairs, workers, top_k):
    if block_pairs is not None:
        # About two products per block: many blocks, scored on two threads.
        monkeypatch.setattr(graphs, "_BLOCK_PAIRS", block_pairs)
    lines = random_lines(400, 25, 40, seed=5)
    edges = graphs.product_network_edges(
        make_cleaned(lines), min_shared_invoices=4, top_k=top_k, max_basket_size=None, workers=workers
    )

    holders = holders_of(lines, "product")
    n = len({invoice for invoice, _, _ in lines})
    jaccard = jaccard_pairs(holders, 4)
    kept = kept_by_top_k(jaccard, top_k)
    assert set(zip(edges["source"], edges["target"], strict=True)) == kept
    for row in edges.itertuples(index=False):
        a, b = holders[row.source], holders[row.target]
        assert row.shared_invoices == len(a & b)
        assert row.weight == row.jaccard == float(jaccard[(row.source, row.target)])
        assert row.lift == pytest.approx(len(a & b) * n / (len(a) * len(b)), rel=1e-12)
    assert (edges["source"] < edges["target"]).all()
    assert list(edges.itertuples(index=False, name=None)) == sorted(edges.itertuples(index=False, name=None))
    assert list(edges.columns) == graphs.PRODUCT_EDGE_COLUMNS
    ProductNetworkEdges.validate(edges, lazy=True)


def test_product_edges_skip_giant_baskets_and_scale_threshold():
    lines = [(f"{k}", code, None) for k in range(6) for code in ("A", "B")]
    lines += [(f"G{k}", f"Z{j}", None) for k in range(6) for j in range(8)]
    cleaned = make_cleaned(lines)
    capped = graphs.product_network_edges(cleaned, min_shared_invoices=5, max_basket_size=4)
    assert capped[["source", "target", "shared_invoices", "weight"]].to_dict("records") == [
        {"source": "A", "target": "B", "shared_invoices": 6, "weight": 1.0}
    ]
    uncapped = graphs.product_network_edges(cleaned, min_shared_invoices=5, max_basket_size=None)
    assert len(uncapped) == 1 + 8 * 7 // 2

    assert graphs.default_min_shared_invoices(100) == 5
    assert graphs.default_min_shared_invoices(20_472) == 20
    assert graphs.default_min_shared_invoices(53_628) == 54
    with pytest.raises(ValueError, match="min_shared_invoices"):
        graphs.product_network_edges(cleaned, min_shared_invoices=0)
    with pytest.raises(ValueError, match="top_k"):
        graphs.product_network_edges(cleaned, top_k=0)


@pytest.mark.parametrize(
    ("min_shared", "top_k", "block_size", "workers"),
    [(2, None, 1000, 1), (3, 2, 7, 2), (1, 1, 1, 2), (3, 4, None, None), (2, 25, 4, 2)],
)
def test_customer_edges_match_brute_force(min_shared, top_k, block_size, workers):
    lines = random_lines(300, 30, 25, seed=9)
    edges = graphs.customer_network_edges(
        make_cleaned(lines),
        min_shared_products=min_shared,
        top_k=top_k,
        block_size=block_size,
        workers=workers,
    )

    bought = holders_of(lines, "customer")
    jaccard = jaccard_pairs(bought, min_shared)
    kept = kept_by_top_k(jaccard, top_k)
    got = {(row.source, row.target): row for row in edges.itertuples(index=False)}
    assert got.keys() == kept
    for (a, b), row in got.items():
        assert row.shared_products == len(bought[a] & bought[b])
        assert row.weight == row.jaccard == float(jaccard[(a, b)])
    assert list(edges.columns) == graphs.CUSTOMER_EDGE_COLUMNS
    CustomerNetworkEdges.validate(edges, lazy=True)


def test_top_k_ties_and_bucket_cutoff_keep_the_exact_ranking(monkeypatch):
    # Jaccard ties across different counts (1/2 = 2/4 = 3/6) and two buckets only, so the bucket cutoff
    # keeps many more candidates than top_k and the sort alone decides: still the brute-force pairs.
    monkeypatch.setattr(graphs, "_JACCARD_BUCKETS", 2)
    lines = random_lines(300, 12, 30, seed=2)
    bought = holders_of(lines, "customer")
    jaccard = jaccard_pairs(bought, 1)
    assert len(set(jaccard.values())) < len(jaccard) / 3
    for top_k in (1, 3):
        edges = graphs.customer_network_edges(make_cleaned(lines), min_shared_products=1, top_k=top_k)
        assert set(zip(edges["source"], edges["target"], strict=True)) == kept_by_top_k(jaccard, top_k)


def test_affinities_match_a_pandas_self_join():
    # An independent route: pair counts from a pandas self-merge instead of sparse products or sets.
    lines = random_lines(200, 20, 15, seed=3)
    cleaned = make_cleaned(lines)
    for by, member, edges in [
        ("stock_code", "invoice", graphs.product_network_edges(cleaned, min_shared_invoices=2,
                                                                max_basket_size=None)),
        ("customer_id", "stock_code", graphs.customer_network_edges(cleaned, min_shared_products=2,
                                                                     top_k=None)),
    ]:
        links = cleaned.dropna(subset=[by])[[by, member]].drop_duplicates()
        sizes = links.groupby(by).size()
        pairs = links.merge(links, on=member, suffixes=("_a", "_b"))
        pairs = pairs[pairs[f"{by}_a"] < pairs[f"{by}_b"]]
        shared = pairs.groupby([f"{by}_a", f"{by}_b"]).size().rename("shared").reset_index()
        shared = shared[shared["shared"] >= 2]
        union = sizes[shared[f"{by}_a"]].to_numpy() + sizes[shared[f"{by}_b"]].to_numpy() - shared["shared"]
        expected = pd.DataFrame(
            {"source": shared[f"{by}_a"].to_numpy(), "target": shared[f"{by}_b"].to_numpy(),
             "jaccard": (shared["shared"] / union).to_numpy()}
        )
        merged = edges.merge(expected, on=["source", "target"], how="outer", validate="1:1",
                             suffixes=("", "_pandas"))
        assert len(merged) == len(edges) == len(expected)
        np.testing.assert_allclose(merged["weight"], merged["jaccard_pandas"], rtol=1e-15)
        if by == "stock_code":
            n = cleaned["invoice"].nunique()
            count = sizes.to_dict()
            lift = [s * n / (count[a] * count[b]) for a, b, s in
                    zip(edges["source"], edges["target"], edges["shared_invoices"], strict=True)]
            np.testing.assert_allclose(edges["lift"], lift, rtol=1e-12)


def test_catalogue_wide_customer_is_no_longer_everyones_nearest_neighbour():
    # Customer 1 bought all 20 products; 2 and 3 (and 4 and 5) bought 6 each, 5 of them in common. By shared
    # counts 1 is everyone's strongest neighbour (6 shared > 5); by Jaccard (6/20 < 5/7) it is no one's.
    baskets = {1: range(20), 2: [0, 1, 2, 3, 4, 5], 3: [0, 1, 2, 3, 4, 6],
               4: [10, 11, 12, 13, 14, 15], 5: [10, 11, 12, 13, 14, 16]}
    lines = [(f"{customer}", f"P{p:02d}", customer) for customer, items in baskets.items() for p in items]
    cleaned = make_cleaned(lines)
    candidates = graphs.customer_network_edges(cleaned, min_shared_products=5, top_k=None)
    nearest_by_count = {
        node: min(((-row.shared_products, b if a == node else a) for row in candidates.itertuples()
                   for a, b in [(row.source, row.target)] if node in (a, b)))[1]
        for node in (2, 3, 4, 5)
    }
    assert nearest_by_count == {2: 1, 3: 1, 4: 1, 5: 1}
    edges = graphs.customer_network_edges(cleaned, min_shared_products=5, top_k=1)
    # 2-3 and 4-5 are each other's nearest; 1 keeps one edge as its own nearest (a tie, smallest id).
    assert set(zip(edges["source"], edges["target"], strict=True)) == {(1, 2), (2, 3), (4, 5)}
    assert edges.set_index(["source", "target"])["weight"].to_dict() == {
        (1, 2): 6 / 20, (2, 3): 5 / 7, (4, 5): 5 / 7
    }
    by_count = candidates[candidates["source"] == 1].assign(weight=lambda f: f["shared_products"] * 1.0)
    hub = graphs.centrality(by_count).set_index("node")["betweenness_centrality"]
    assert hub[1] == 1.0  # the star: every path between two others runs through customer 1
    assert graphs.centrality(edges).set_index("node")["betweenness_centrality"][1] == 0.0


def test_best_seller_is_no_longer_every_products_nearest_neighbour():
    # H is in all 40 invoices; X and Y are together in 8, each alone (with H) in 2 more. By shared invoices
    # H is X's strongest neighbour (10 > 8); by Jaccard Y is (8/12 > 10/40), and lift says H is unrelated.
    lines = [(f"{k}", "H", None) for k in range(40)]
    lines += [(f"{k}", "X", None) for k in range(10)] + [(f"{k}", "Y", None) for k in range(2, 12)]
    edges = graphs.product_network_edges(make_cleaned(lines), min_shared_invoices=5, max_basket_size=None)
    by_pair = edges.set_index(["source", "target"])
    assert by_pair.loc[("H", "X"), "shared_invoices"] > by_pair.loc[("X", "Y"), "shared_invoices"]
    assert by_pair.loc[("H", "X"), "weight"] == 10 / 40 < by_pair.loc[("X", "Y"), "weight"] == 8 / 12
    assert by_pair.loc[("H", "X"), "lift"] == pytest.approx(1.0)
    assert by_pair.loc[("X", "Y"), "lift"] == pytest.approx(8 * 40 / (10 * 10))
    nearest = graphs.product_network_edges(
        make_cleaned(lines), min_shared_invoices=5, top_k=1, max_basket_size=None
    )
    assert set(zip(nearest["source"], nearest["target"], strict=True)) == {("H", "X"), ("X", "Y")}


def test_customer_edges_ignore_guests():
    lines = [("1", "A", None), ("1", "B", None), ("2", "A", 7), ("2", "B", 7), ("3", "A", 8), ("3", "B", 8)]
    edges = graphs.customer_network_edges(make_cleaned(lines), min_shared_products=2)
    assert edges[["source", "target", "shared_products", "weight"]].to_dict("records") == [
        {"source": 7, "target": 8, "shared_products": 2, "weight": 1.0}
    ]


def _small_graph() -> pd.DataFrame:
    """Karate club with integer weights 1-3: small, connected, many tied shortest paths."""
    karate = nx.karate_club_graph()
    return pd.DataFrame(
        [(f"K{u:02d}", f"K{v:02d}", 1 + (u * v) % 3) for u, v in sorted(karate.edges)],
        columns=["source", "target", "weight"],
    )


def test_small_graph_matches_networkx_with_exact_fractions():
    edges = _small_graph()
    result = graphs.centrality(edges, backend="igraph")
    graph = reference_graph(edges, lambda w: Fraction(1, int(w)))
    nodes = result["node"]
    np.testing.assert_allclose(
        result["degree_centrality"], as_series(nx.degree_centrality(graph), nodes), atol=1e-12
    )
    betweenness = nx.betweenness_centrality(graph, weight="distance", normalized=True)
    np.testing.assert_allclose(
        result["betweenness_centrality"], as_series(betweenness, nodes), rtol=0, atol=1e-9
    )
    eigenvector = nx.eigenvector_centrality_numpy(graph, weight="weight")
    np.testing.assert_allclose(
        result["eigenvector_centrality"], as_series(eigenvector, nodes), rtol=0, atol=1e-9
    )
    strength = dict(graph.degree(weight="weight"))
    np.testing.assert_allclose(result["weighted_degree"], as_series(strength, nodes), rtol=0, atol=0)
    assert result["component"].eq(0).all()
    ProductCentrality.validate(result, lazy=True)


@pytest.mark.parametrize("seed", [0, 1])
def test_medium_tie_heavy_graph_igraph_equals_networkx(seed):
    # 300 nodes, weights in {1, 2, 3, 4, 6}: sums like 1/2 + 1/6 == 1/3 + 1/3 tie exactly in theory but not
    # in floating point, so this graph separates exact tie handling from accidental agreement.
    edges = random_edges(300, 0.012, [1, 2, 3, 4, 6], seed=seed)
    by_igraph = graphs.centrality(edges, backend="igraph", eigenvector_scope="component", communities=False)
    by_networkx = graphs.centrality(
        edges, backend="networkx", eigenvector_scope="component", communities=False
    )
    nodes = by_igraph["node"]
    pd.testing.assert_series_equal(nodes, by_networkx["node"])

    common = math.lcm(1, 2, 3, 4, 6)
    graph = reference_graph(edges, lambda w: common // int(w))  # exact integer form of 1 / w
    betweenness = as_series(nx.betweenness_centrality(graph, weight="distance", normalized=True), nodes)
    np.testing.assert_allclose(by_igraph["betweenness_centrality"], betweenness, rtol=0, atol=1e-9)
    np.testing.assert_allclose(by_networkx["betweenness_centrality"], betweenness, rtol=0, atol=1e-9)
    # The same call on float distances 1 / w loses ties: the graph does exercise them.
    float_graph = reference_graph(edges, lambda w: 1.0 / w)
    float_betweenness = as_series(nx.betweenness_centrality(float_graph, weight="distance"), nodes)
    assert np.abs(float_betweenness - betweenness).max() > 1e-6

    degree = as_series(nx.degree_centrality(graph), nodes)
    np.testing.assert_allclose(by_igraph["degree_centrality"], degree, rtol=0, atol=1e-12)
    eigenvector = np.full(len(nodes), np.nan)
    for members in nx.connected_components(graph):
        scores = (
            nx.eigenvector_centrality_numpy(graph.subgraph(members), weight="weight")
            if len(members) > 2
            else {m: 1 / math.sqrt(len(members)) for m in members}
        )
        eigenvector[nodes.isin(members).to_numpy()] = [scores[m] for m in nodes[nodes.isin(members)]]
    np.testing.assert_allclose(by_igraph["eigenvector_centrality"], eigenvector, rtol=0, atol=1e-9)
    np.testing.assert_allclose(by_networkx["eigenvector_centrality"], eigenvector, rtol=0, atol=1e-9)
    for column in COMPARED:
        np.testing.assert_allclose(by_igraph[column], by_networkx[column], rtol=0, atol=1e-9, err_msg=column)


def test_float_distances_without_rounding_match_the_plain_networkx_call():
    # Weights that are powers of two make 1 / w and its sums exact floats, so the textbook call with float
    # distances is itself exact and igraph must agree with it.
    edges = random_edges(150, 0.03, [1, 2, 4, 8], seed=4)
    result = graphs.centrality(edges, communities=False)
    graph = reference_graph(edges, lambda w: 1.0 / w)
    betweenness = nx.betweenness_centrality(graph, weight="distance", normalized=True)
    np.testing.assert_allclose(
        result["betweenness_centrality"], as_series(betweenness, result["node"]), rtol=0, atol=1e-9
    )
    assert result["community"].isna().all()


def test_components_eigenvector_scope_and_communities():
    # Two 5-cliques joined by a weak edge (one component of 10), plus a triangle and a lone pair.
    clique = [(f"A{i}", f"A{j}", 5) for i, j in combinations(range(5), 2)]
    clique += [(f"B{i}", f"B{j}", 5) for i, j in combinations(range(5), 2)]
    edges = pd.DataFrame(
        clique + [("A0", "B0", 1), ("C0", "C1", 2), ("C1", "C2", 2), ("C0", "C2", 2), ("D0", "D1", 3)],
        columns=["source", "target", "weight"],
    )
    for backend in ("igraph", "networkx"):
        result = graphs.centrality(edges, backend=backend, random_state=3).set_index("node")
        assert result.loc["A0", "component"] == 0 and result.loc["C0", "component"] == 1
        assert result.loc["D0", "component"] == 2
        assert result.loc[["C0", "D0"], "eigenvector_centrality"].isna().all()
        main = result[result["component"] == 0]
        assert np.linalg.norm(main["eigenvector_centrality"]) == pytest.approx(1.0)
        communities = result["community"]
        assert len(set(communities[[f"A{i}" for i in range(5)]])) == 1
        assert communities["A1"] != communities["B1"]
        assert result.loc["A0", "betweenness_centrality"] > result.loc["A1", "betweenness_centrality"]
        again = graphs.centrality(edges, backend=backend, random_state=3).set_index("node")
        pd.testing.assert_series_equal(communities, again["community"])
        per_component = graphs.centrality(edges, backend=backend, eigenvector_scope="component").set_index(
            "node"
        )
        assert per_component.loc["D0", "eigenvector_centrality"] == pytest.approx(1 / math.sqrt(2))
        assert per_component.loc["C1", "eigenvector_centrality"] == pytest.approx(1 / math.sqrt(3))


def _count_worker_batches(monkeypatch) -> list[int]:
    """Force the multi-process betweenness on any graph size and record how many calls each batch sends."""
    monkeypatch.setattr(graphs, "_PARALLEL_MIN_WORK", 0)
    batches: list[int] = []
    run = graphs._run_in_workers

    def counting(calls):
        batches.append(len(calls))
        return run(calls)

    monkeypatch.setattr(graphs, "_run_in_workers", counting)
    return batches


def test_parallel_betweenness_equals_single_process_and_networkx(monkeypatch):
    edges = random_edges(300, 0.012, [1, 2, 3, 4, 6], seed=0)
    single = graphs.centrality(edges, eigenvector_scope="component", communities=False, workers=1)
    batches = _count_worker_batches(monkeypatch)
    parallel = graphs.centrality(edges, eigenvector_scope="component", communities=False, workers=2)
    assert batches == [2]

    pd.testing.assert_frame_equal(
        parallel.drop(columns="betweenness_centrality"), single.drop(columns="betweenness_centrality")
    )
    # Only the order of the float additions differs.
    np.testing.assert_allclose(
        parallel["betweenness_centrality"], single["betweenness_centrality"], rtol=1e-12, atol=1e-15
    )
    common = math.lcm(1, 2, 3, 4, 6)
    graph = reference_graph(edges, lambda w: common // int(w))
    reference = nx.betweenness_centrality(graph, weight="distance", normalized=True)
    np.testing.assert_allclose(
        parallel["betweenness_centrality"], as_series(reference, parallel["node"]), rtol=0, atol=1e-9
    )


def test_worker_failure_is_reported():
    with pytest.raises(RuntimeError, match="invalid literal"):
        graphs._run_in_workers([functools.partial(int, "not a number")])


@pytest.mark.parametrize("backend", ["igraph", "networkx"])
def test_sampled_betweenness_with_every_node_as_pivot_is_exact(monkeypatch, backend):
    edges = _small_graph()
    n = 34
    assert graphs.betweenness_sources(n, max_exact_nodes=0, pivots=n + 5) == n
    if backend == "igraph":
        batches = _count_worker_batches(monkeypatch)
    result = graphs.centrality(edges, backend=backend, communities=False, max_exact_nodes=0, pivots=n + 5)
    if backend == "igraph":
        assert batches == [2]
    graph = reference_graph(edges, lambda w: Fraction(1, int(w)))
    exact = nx.betweenness_centrality(graph, weight="distance", normalized=True)
    np.testing.assert_allclose(
        result["betweenness_centrality"], as_series(exact, result["node"]), rtol=0, atol=1e-9
    )


def test_sampled_betweenness_is_seeded_and_backend_independent():
    # Power-of-two weights: float and exact distances agree, so both backends count the same paths.
    edges = random_edges(150, 0.03, [1, 2, 4, 8], seed=4)
    options = {"communities": False, "max_exact_nodes": 100, "pivots": 40}
    assert graphs.betweenness_sources(150, max_exact_nodes=100, pivots=40) == 40
    first = graphs.centrality(edges, random_state=7, **options)["betweenness_centrality"]
    again = graphs.centrality(edges, random_state=7, **options)["betweenness_centrality"]
    other = graphs.centrality(edges, random_state=8, **options)["betweenness_centrality"]
    by_networkx = graphs.centrality(edges, backend="networkx", random_state=7, **options)
    pd.testing.assert_series_equal(first, again)
    assert not np.allclose(first, other)
    np.testing.assert_allclose(first, by_networkx["betweenness_centrality"], rtol=1e-12, atol=1e-15)


def test_sampled_betweenness_error_is_small_on_a_mid_size_graph():
    graph = nx.barabasi_albert_graph(600, 2, seed=0)
    pairs = np.array(sorted(graph.edges))
    rng = np.random.default_rng(0)
    edges = pd.DataFrame(
        {"source": pairs[:, 0], "target": pairs[:, 1], "weight": rng.integers(1, 6, len(pairs))}
    )
    exact = graphs.centrality(edges, communities=False)["betweenness_centrality"].to_numpy()

    def sampled(pivots: int, seed: int) -> np.ndarray:
        scores = graphs.centrality(
            edges, communities=False, max_exact_nodes=500, pivots=pivots, random_state=seed
        )
        return scores["betweenness_centrality"].to_numpy()

    estimate = sampled(150, 0)
    assert (estimate[exact == 0] == 0).all()  # a node on no shortest path is on none from the pivots
    positive = exact > 0
    assert spearmanr(exact[positive], estimate[positive]).statistic > 0.9
    top = np.argsort(-exact)[:10]
    assert len(set(top) & set(np.argsort(-estimate)[:10])) >= 8
    assert np.abs(estimate - exact).max() < 0.2 * exact.max()
    # Unbiased: the mean of independent estimates approaches the exact scores.
    single_error = np.abs(sampled(30, 1) - exact).max()
    mean_error = np.abs(np.mean([sampled(30, seed) for seed in range(1, 17)], axis=0) - exact).max()
    assert mean_error < 0.5 * single_error


def test_jaccard_network_from_sets_igraph_equals_networkx_on_exact_fractions():
    # A small customer network whose shortest paths tie in exact fractions (checked below): the distance of
    # an edge is union / shared, computed here from the customers' product sets.
    lines = random_lines(80, 10, 40, seed=0)
    edges = graphs.customer_network_edges(make_cleaned(lines), min_shared_products=2, top_k=4)
    bought = holders_of(lines, "customer")
    graph = nx.Graph()
    for a, b in zip(edges["source"], edges["target"], strict=True):
        shared, union = len(bought[a] & bought[b]), len(bought[a] | bought[b])
        graph.add_edge(a, b, weight=shared / union, distance=Fraction(union, shared))
    _assert_backends_match_exact_reference(edges, graph)


@pytest.mark.parametrize("seed", [0, 1])
def test_medium_fractional_weights_igraph_equals_networkx(seed):
    # 300 nodes with Jaccard-like weights in {1/2, 1/3, 2/3, 1/6, 3/4, 2/5, 3/10}: distances 2, 3, 3/2, 6, ...
    fractions = [Fraction(a, b) for a, b in [(1, 2), (1, 3), (2, 3), (1, 6), (3, 4), (2, 5), (3, 10)]]
    edges = random_edges(300, 0.012, list(range(len(fractions))), seed=seed)
    edges["weight"] = [float(fractions[k]) for k in edges["weight"]]
    graph = nx.Graph()
    for row in edges.itertuples(index=False):
        exact = fractions[[float(f) for f in fractions].index(row.weight)]
        graph.add_edge(row.source, row.target, weight=row.weight, distance=1 / exact)
    _assert_backends_match_exact_reference(edges, graph)


def _assert_backends_match_exact_reference(edges: pd.DataFrame, graph: nx.Graph) -> None:
    """Both backends against networkx on exact Fraction distances, on a graph where float distances tie."""
    by_igraph = graphs.centrality(edges, backend="igraph", eigenvector_scope="component", communities=False)
    by_networkx = graphs.centrality(
        edges, backend="networkx", eigenvector_scope="component", communities=False
    )
    nodes = by_igraph["node"]
    betweenness = as_series(nx.betweenness_centrality(graph, weight="distance", normalized=True), nodes)
    assert (betweenness > 0).sum() > 5
    strength = as_series(dict(graph.degree(weight="weight")), nodes)
    for result in (by_igraph, by_networkx):
        np.testing.assert_allclose(result["betweenness_centrality"], betweenness, rtol=0, atol=1e-9)
        np.testing.assert_allclose(result["weighted_degree"], strength, rtol=1e-12)
    # Float distances 1 / weight lose some of the ties: the graph does exercise them.
    float_graph = reference_graph(edges, lambda w: 1.0 / w)
    float_betweenness = as_series(nx.betweenness_centrality(float_graph, weight="distance"), nodes)
    assert np.abs(float_betweenness - betweenness).max() > 1e-6
    largest = max(nx.connected_components(graph), key=len)
    eigenvector = nx.eigenvector_centrality_numpy(graph.subgraph(largest), weight="weight")
    in_largest = nodes.isin(largest).to_numpy()
    np.testing.assert_allclose(
        by_igraph["eigenvector_centrality"][in_largest], as_series(eigenvector, nodes[in_largest]), atol=1e-9
    )
    for column in [*COMPARED, "eigenvector_centrality"]:
        np.testing.assert_allclose(by_igraph[column], by_networkx[column], rtol=0, atol=1e-9, err_msg=column)


@pytest.mark.parametrize(
    "expected", [Fraction(1, 10), Fraction(5, 7), Fraction(5, 2), Fraction(3), Fraction(12_345, 54_321_007)]
)
def test_weights_are_read_as_the_fractions_they_were_computed_from(expected):
    value = float(expected)
    assert graphs._as_fraction(value) == expected
    distance = graphs._exact_inverse(np.array([value, 2 * value, float(expected / 3)]))
    assert distance[0] == 2 * distance[1] == distance[2] / 3


def test_a_float_that_is_no_small_ratio_is_read_exactly():
    assert graphs._as_fraction(math.pi) == Fraction(math.pi)
    assert graphs._as_fraction(0.1 + 0.2) == Fraction(0.1 + 0.2) != Fraction(3, 10)


def test_betweenness_summary():
    star = pd.DataFrame({"source": ["H"] * 4, "target": ["A", "B", "C", "D"], "weight": [0.5] * 4})
    assert graphs.betweenness_summary(graphs.centrality(star)) == {
        "betweenness_nonzero_fraction": 0.2, "betweenness_max": 1.0, "betweenness_max_node": "H",
        "betweenness_top_share": 1.0,
    }
    path = pd.DataFrame({"source": [1, 2, 3], "target": [2, 3, 4], "weight": [1.0, 1.0, 1.0]})
    summary = graphs.betweenness_summary(graphs.centrality(path))
    assert summary["betweenness_nonzero_fraction"] == 0.5
    assert summary["betweenness_max"] == pytest.approx(2 / 3)
    assert summary["betweenness_max_node"] == "2" and summary["betweenness_top_share"] == pytest.approx(0.5)
    pair = pd.DataFrame({"source": ["A"], "target": ["B"], "weight": [1.0]})
    assert graphs.betweenness_summary(graphs.centrality(pair))["betweenness_top_share"] == 0.0


def _ranked_by_count(candidates: pd.DataFrame, count: str, top_k: int | None) -> pd.DataFrame:
    """The pre-Jaccard networks: weight = shared count, top_k neighbours by that count (pandas route)."""
    edges = candidates.assign(weight=candidates[count].astype(float))
    if top_k is None:
        return edges
    ends = pd.concat([
        edges[["source", "target", count]].rename(columns={"source": "node", "target": "other"}),
        edges[["target", "source", count]].rename(columns={"target": "node", "source": "other"}),
    ])
    ends = ends.sort_values(["node", count, "other"], ascending=[True, False, True])
    chosen = ends.loc[ends.groupby("node").cumcount() < top_k, ["node", "other"]]
    pairs = pd.DataFrame({"source": chosen.min(axis=1), "target": chosen.max(axis=1)})
    return edges.merge(pairs.drop_duplicates(), on=["source", "target"])


def test_real_betweenness_is_not_one_hub(real_cleaned):
    customers_all = graphs.customer_network_edges(real_cleaned, top_k=None)
    networks = {
        "customers, Jaccard": graphs.customer_network_edges(real_cleaned),
        "customers, counts": _ranked_by_count(customers_all, "shared_products", 10),
        "products, Jaccard": (products := graphs.product_network_edges(real_cleaned)),
        "products, counts": _ranked_by_count(products, "shared_invoices", None),
    }
    summaries = {}
    for name, edges in networks.items():
        scores = graphs.centrality(edges, communities=False)
        summaries[name] = {"nodes": len(scores), "edges": len(edges), **graphs.betweenness_summary(scores)}
        print(name, summaries[name])  # before/after figures, shown with pytest -s
    after, before = summaries["customers, Jaccard"], summaries["customers, counts"]
    assert before["betweenness_max"] > 0.9 and before["betweenness_nonzero_fraction"] < 0.05
    assert after["betweenness_max"] < 0.5
    assert after["betweenness_nonzero_fraction"] > 0.3
    assert after["betweenness_top_share"] < 0.05
    assert summaries["products, Jaccard"]["betweenness_max"] < 0.5
    assert summaries["products, Jaccard"]["betweenness_nonzero_fraction"] > 0.5
    # The same customers pass the support threshold and stay in the network; only their neighbours changed.
    nodes = {name: set(edges["source"]) | set(edges["target"]) for name, edges in networks.items()}
    assert nodes["customers, Jaccard"] == nodes["customers, counts"]
    assert nodes["customers, Jaccard"] == set(customers_all["source"]) | set(customers_all["target"])


def test_customer_nodes_keep_integer_ids():
    edges = pd.DataFrame({"source": [1, 1, 2], "target": [2, 3, 3], "weight": [4, 2, 2]})
    result = graphs.centrality(edges)
    assert result["node"].tolist() == [1, 2, 3]
    CustomerCentrality.validate(result, lazy=True)


@pytest.mark.parametrize(
    ("edges", "message"),
    [
        (pd.DataFrame({"source": ["a"], "target": ["a"], "weight": [1]}), "self-loops"),
        (pd.DataFrame({"source": ["a", "b"], "target": ["b", "a"], "weight": [1, 2]}), "more than once"),
        (pd.DataFrame({"source": ["a"], "target": ["b"], "weight": [0]}), "positive"),
        (pd.DataFrame({"source": [], "target": [], "weight": []}), "empty"),
    ],
)
def test_centrality_rejects_bad_edge_lists(edges, message):
    with pytest.raises(ValueError, match=message):
        graphs.centrality(edges)


def test_centrality_rejects_unknown_options():
    with pytest.raises(ValueError, match="backend"):
        graphs.centrality(_small_graph(), backend="graph-tool")
    with pytest.raises(ValueError, match="eigenvector_scope"):
        graphs.centrality(_small_graph(), eigenvector_scope="all")
    with pytest.raises(ValueError, match="workers"):
        graphs.centrality(_small_graph(), workers=0)
    with pytest.raises(ValueError, match="pivots"):
        graphs.centrality(_small_graph(), max_exact_nodes=10, pivots=0)
    with pytest.raises(ValueError, match="max_exact_nodes"):
        graphs.betweenness_sources(10, max_exact_nodes=-1)
    with pytest.raises(ValueError, match="block_size"):
        graphs.customer_network_edges(make_cleaned([("1", "A", 7)]), block_size=0)


def test_edge_schema_rejects_unordered_pairs():
    edges = pd.DataFrame(
        {"source": ["B"], "target": ["A"], "weight": [0.5], "shared_invoices": [3], "lift": [1.2],
         "jaccard": [0.5]}
    )
    ProductNetworkEdges.validate(edges.assign(source="A", target="B"), lazy=True)
    with pytest.raises(pa.errors.SchemaErrors):
        ProductNetworkEdges.validate(edges, lazy=True)


def test_product_network_figure():
    edges = _small_graph()
    result = graphs.centrality(edges)
    figure = product_network_figure(edges, result, top_n=10, descriptions={"K00": "INSTRUCTOR"})
    assert isinstance(figure, Figure)
    assert "top 10 products" in figure.axes[0].get_title()
    assert isinstance(product_network_figure(edges, top_n=5), Figure)
