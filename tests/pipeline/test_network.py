"""Tests for pipeline.network: edge lists against brute force, centralities igraph vs networkx."""

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

from pipeline import network
from pipeline.plots_baskets import product_network_figure
from pipeline.schemas_baskets import (
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


@pytest.mark.parametrize(("block_pairs", "workers"), [(None, 1), (60, 2)])
def test_product_edges_match_brute_force(monkeypatch, block_pairs, workers):
    if block_pairs is not None:
        # About two products per block: many blocks, scored on two threads.
        monkeypatch.setattr(network, "_BLOCK_PAIRS", block_pairs)
    lines = random_lines(400, 25, 40, seed=5)
    cleaned = make_cleaned(lines)
    edges = network.product_network_edges(
        cleaned, min_shared_invoices=4, max_basket_size=None, workers=workers
    )

    holders: dict[str, set[str]] = {}
    for invoice, code, _ in lines:
        holders.setdefault(code, set()).add(invoice)
    n = len({invoice for invoice, _, _ in lines})
    expected = {}
    for a, b in combinations(sorted(holders), 2):
        shared = len(holders[a] & holders[b])
        if shared >= 4:
            lift = shared * n / (len(holders[a]) * len(holders[b]))
            expected[(a, b)] = (shared, lift, shared / len(holders[a] | holders[b]))
    got = {
        (row.source, row.target): (row.weight, row.lift, row.jaccard) for row in edges.itertuples(index=False)
    }
    assert got.keys() == expected.keys()
    for pair, (weight, lift, jaccard) in expected.items():
        assert got[pair][0] == weight
        assert got[pair][1] == pytest.approx(lift, rel=1e-12)
        assert got[pair][2] == pytest.approx(jaccard, rel=1e-12)
    assert (edges["source"] < edges["target"]).all()
    assert list(edges.itertuples(index=False, name=None)) == sorted(edges.itertuples(index=False, name=None))
    ProductNetworkEdges.validate(edges, lazy=True)


def test_product_edges_skip_giant_baskets_and_scale_threshold():
    lines = [(f"{k}", code, None) for k in range(6) for code in ("A", "B")]
    lines += [(f"G{k}", f"Z{j}", None) for k in range(6) for j in range(8)]
    cleaned = make_cleaned(lines)
    capped = network.product_network_edges(cleaned, min_shared_invoices=5, max_basket_size=4)
    assert capped[["source", "target", "weight"]].to_dict("records") == [
        {"source": "A", "target": "B", "weight": 6}
    ]
    uncapped = network.product_network_edges(cleaned, min_shared_invoices=5, max_basket_size=None)
    assert len(uncapped) == 1 + 8 * 7 // 2

    assert network.default_min_shared_invoices(100) == 5
    assert network.default_min_shared_invoices(20_472) == 20
    assert network.default_min_shared_invoices(53_628) == 54
    with pytest.raises(ValueError, match="min_shared_invoices"):
        network.product_network_edges(cleaned, min_shared_invoices=0)


@pytest.mark.parametrize(
    ("min_shared", "top_k", "block_size", "workers"),
    [(2, None, 1000, 1), (3, 2, 7, 2), (1, 1, 1, 2), (3, 4, None, None), (2, 25, 4, 2)],
)
def test_customer_edges_match_brute_force(min_shared, top_k, block_size, workers):
    lines = random_lines(300, 30, 25, seed=9)
    edges = network.customer_network_edges(
        make_cleaned(lines),
        min_shared_products=min_shared,
        top_k=top_k,
        block_size=block_size,
        workers=workers,
    )

    bought: dict[int, set[str]] = {}
    for _, code, customer in lines:
        if customer is not None:
            bought.setdefault(customer, set()).add(code)
    strength = {
        (a, b): len(bought[a] & bought[b])
        for a, b in combinations(sorted(bought), 2)
        if len(bought[a] & bought[b]) >= min_shared
    }
    if top_k is not None:
        kept = set()
        for customer in bought:
            mine = [
                (w, other)
                for (a, b), w in strength.items()
                if customer in (a, b)
                for other in [a + b - customer]
            ]
            for _, other in sorted(mine, key=lambda pair: (-pair[0], pair[1]))[:top_k]:
                kept.add((min(customer, other), max(customer, other)))
        strength = {pair: w for pair, w in strength.items() if pair in kept}
    got = {(row.source, row.target): row.weight for row in edges.itertuples(index=False)}
    assert got == strength
    for row in edges.itertuples(index=False):
        union = len(bought[row.source] | bought[row.target])
        assert row.jaccard == pytest.approx(row.weight / union, rel=1e-12)
    CustomerNetworkEdges.validate(edges, lazy=True)


def test_customer_edges_ignore_guests():
    lines = [("1", "A", None), ("1", "B", None), ("2", "A", 7), ("2", "B", 7), ("3", "A", 8), ("3", "B", 8)]
    edges = network.customer_network_edges(make_cleaned(lines), min_shared_products=2)
    assert edges[["source", "target", "weight"]].to_dict("records") == [
        {"source": 7, "target": 8, "weight": 2}
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
    result = network.centrality(edges, backend="igraph")
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
    by_igraph = network.centrality(edges, backend="igraph", eigenvector_scope="component", communities=False)
    by_networkx = network.centrality(
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
    result = network.centrality(edges, communities=False)
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
        result = network.centrality(edges, backend=backend, random_state=3).set_index("node")
        assert result.loc["A0", "component"] == 0 and result.loc["C0", "component"] == 1
        assert result.loc["D0", "component"] == 2
        assert result.loc[["C0", "D0"], "eigenvector_centrality"].isna().all()
        main = result[result["component"] == 0]
        assert np.linalg.norm(main["eigenvector_centrality"]) == pytest.approx(1.0)
        communities = result["community"]
        assert len(set(communities[[f"A{i}" for i in range(5)]])) == 1
        assert communities["A1"] != communities["B1"]
        assert result.loc["A0", "betweenness_centrality"] > result.loc["A1", "betweenness_centrality"]
        again = network.centrality(edges, backend=backend, random_state=3).set_index("node")
        pd.testing.assert_series_equal(communities, again["community"])
        per_component = network.centrality(edges, backend=backend, eigenvector_scope="component").set_index(
            "node"
        )
        assert per_component.loc["D0", "eigenvector_centrality"] == pytest.approx(1 / math.sqrt(2))
        assert per_component.loc["C1", "eigenvector_centrality"] == pytest.approx(1 / math.sqrt(3))


def _count_worker_batches(monkeypatch) -> list[int]:
    """Force the multi-process betweenness on any graph size and record how many calls each batch sends."""
    monkeypatch.setattr(network, "_PARALLEL_MIN_WORK", 0)
    batches: list[int] = []
    run = network._run_in_workers

    def counting(calls):
        batches.append(len(calls))
        return run(calls)

    monkeypatch.setattr(network, "_run_in_workers", counting)
    return batches


def test_parallel_betweenness_equals_single_process_and_networkx(monkeypatch):
    edges = random_edges(300, 0.012, [1, 2, 3, 4, 6], seed=0)
    single = network.centrality(edges, eigenvector_scope="component", communities=False, workers=1)
    batches = _count_worker_batches(monkeypatch)
    parallel = network.centrality(edges, eigenvector_scope="component", communities=False, workers=2)
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
        network._run_in_workers([functools.partial(int, "not a number")])


@pytest.mark.parametrize("backend", ["igraph", "networkx"])
def test_sampled_betweenness_with_every_node_as_pivot_is_exact(monkeypatch, backend):
    edges = _small_graph()
    n = 34
    assert network.betweenness_sources(n, max_exact_nodes=0, pivots=n + 5) == n
    if backend == "igraph":
        batches = _count_worker_batches(monkeypatch)
    result = network.centrality(edges, backend=backend, communities=False, max_exact_nodes=0, pivots=n + 5)
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
    assert network.betweenness_sources(150, max_exact_nodes=100, pivots=40) == 40
    first = network.centrality(edges, random_state=7, **options)["betweenness_centrality"]
    again = network.centrality(edges, random_state=7, **options)["betweenness_centrality"]
    other = network.centrality(edges, random_state=8, **options)["betweenness_centrality"]
    by_networkx = network.centrality(edges, backend="networkx", random_state=7, **options)
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
    exact = network.centrality(edges, communities=False)["betweenness_centrality"].to_numpy()

    def sampled(pivots: int, seed: int) -> np.ndarray:
        scores = network.centrality(
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


def test_customer_nodes_keep_integer_ids():
    edges = pd.DataFrame({"source": [1, 1, 2], "target": [2, 3, 3], "weight": [4, 2, 2]})
    result = network.centrality(edges)
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
        network.centrality(edges)


def test_centrality_rejects_unknown_options():
    with pytest.raises(ValueError, match="backend"):
        network.centrality(_small_graph(), backend="graph-tool")
    with pytest.raises(ValueError, match="eigenvector_scope"):
        network.centrality(_small_graph(), eigenvector_scope="all")
    with pytest.raises(ValueError, match="workers"):
        network.centrality(_small_graph(), workers=0)
    with pytest.raises(ValueError, match="pivots"):
        network.centrality(_small_graph(), max_exact_nodes=10, pivots=0)
    with pytest.raises(ValueError, match="max_exact_nodes"):
        network.betweenness_sources(10, max_exact_nodes=-1)
    with pytest.raises(ValueError, match="block_size"):
        network.customer_network_edges(make_cleaned([("1", "A", 7)]), block_size=0)


def test_edge_schema_rejects_unordered_pairs():
    edges = pd.DataFrame({"source": ["B"], "target": ["A"], "weight": [3], "lift": [1.2], "jaccard": [0.5]})
    with pytest.raises(pa.errors.SchemaErrors):
        ProductNetworkEdges.validate(edges, lazy=True)


def test_product_network_figure():
    edges = _small_graph()
    result = network.centrality(edges)
    figure = product_network_figure(edges, result, top_n=10, descriptions={"K00": "INSTRUCTOR"})
    assert isinstance(figure, Figure)
    assert "top 10 products" in figure.axes[0].get_title()
    assert isinstance(product_network_figure(edges, top_n=5), Figure)
