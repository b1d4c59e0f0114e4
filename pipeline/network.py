"""Link analysis: product co-purchase and customer similarity networks, and their node centralities.

What belongs here: pure scipy/igraph/networkx code that turns ``staging.cleaned_transactions`` into edge
lists (``source``, ``target``, ``weight``...) and scores the nodes of such an edge list. Frequent itemsets
and rules live in ``pipeline.baskets``, figures in ``pipeline.plots_baskets``; nothing here imports dagster.

Edges are computed with sparse matrix products of binary incidence matrices, never Python loops over pairs.
Centralities are computed by igraph (compiled, seconds on the full product graph) or networkx (the pure
Python reference, minutes); both backends return the same numbers, see :func:`centrality`.
"""

from __future__ import annotations

import math
import random
from fractions import Fraction
from typing import Literal

import igraph as ig
import networkx as nx
import numpy as np
import pandas as pd
import scipy.sparse as sp

from pipeline.baskets import DEFAULT_MAX_BASKET_SIZE, basket_matrix

PRODUCT_EDGE_COLUMNS: list[str] = ["source", "target", "weight", "lift", "jaccard"]
CUSTOMER_EDGE_COLUMNS: list[str] = ["source", "target", "weight", "jaccard"]
CENTRALITY_COLUMNS: list[str] = [
    "node",
    "component",
    "degree",
    "weighted_degree",
    "degree_centrality",
    "betweenness_centrality",
    "eigenvector_centrality",
    "community",
]

Backend = Literal["igraph", "networkx"]
EigenvectorScope = Literal["largest", "component"]


def default_min_shared_invoices(n_invoices: int) -> int:
    """Default pruning threshold of the product network.

    ``max(5, round(0.001 * n_invoices))``: a pair must share at least 0.1% of the baskets, and never fewer
    than 5, so the threshold grows with the data instead of letting the edge count explode. On the
    2009-2010 sheet (20.5k baskets) that is 20 shared invoices: 1,953 products and 94k edges, against
    2,601 products and 278k edges at 0.05% (threshold 10), where exact weighted betweenness becomes
    about ten times slower, and the extra edges are weak pairs (10-19 shared invoices, under 0.1% of
    the baskets). On both years (37k-54k invoices) it gives 37-54.

    Args:
        n_invoices: Number of baskets the network is built from.

    Returns:
        The minimum number of shared invoices for an edge to be kept.
    """
    return max(5, round(0.001 * n_invoices))


def product_network_edges(
    cleaned: pd.DataFrame,
    *,
    min_shared_invoices: int | None = None,
    max_basket_size: int | None = DEFAULT_MAX_BASKET_SIZE,
) -> pd.DataFrame:
    """Build the product co-purchase network: products joined by the invoices that hold both.

    The pair counts are the off-diagonal entries of ``X.T @ X`` for the binary invoice x product matrix
    ``X``. Giant wholesale baskets are left out as in itemset mining (``pipeline.baskets``), since each of
    them would add an edge between every two of its hundreds of products.

    Args:
        cleaned: Cleaned transactions.
        min_shared_invoices: Keep edges with at least this many shared invoices; ``None`` uses
            :func:`default_min_shared_invoices` of the number of baskets.
        max_basket_size: Cap on distinct products per basket; ``None`` keeps every invoice.

    Returns:
        One row per kept product pair (see ``schemas_baskets.ProductNetworkEdges``): ``source < target``
        (stock codes), ``weight`` = shared invoices, ``lift`` = weight / expected weight under
        independence (``weight * n / (count_source * count_target)``) and ``jaccard`` = weight / invoices
        holding either product. Sorted by source, then target.
    """
    matrix, _, products = basket_matrix(cleaned, max_basket_size=max_basket_size)
    n_baskets = matrix.shape[0]
    if min_shared_invoices is None:
        min_shared_invoices = default_min_shared_invoices(n_baskets)
    if min_shared_invoices < 1:
        raise ValueError(f"min_shared_invoices must be at least 1, got {min_shared_invoices}")
    counts = np.asarray(matrix.sum(axis=0)).ravel().astype(np.int64)
    source, target, weight = _pair_counts(matrix, min_shared_invoices)
    # Products are sorted, so row < column means source code < target code.
    expected = counts[source].astype(float) * counts[target] / max(n_baskets, 1)
    return pd.DataFrame(
        {
            "source": products[source].to_numpy(dtype=object),
            "target": products[target].to_numpy(dtype=object),
            "weight": weight,
            "lift": weight / expected if len(weight) else np.array([], dtype=float),
            "jaccard": weight / (counts[source] + counts[target] - weight).astype(float),
        }
    )


def _pair_counts(matrix: sp.csr_matrix, min_shared: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Upper-triangle entries of ``matrix.T @ matrix`` that reach ``min_shared``, sorted by (row, column)."""
    binary = matrix.astype(np.int32)
    co = sp.triu(binary.T @ binary, k=1).tocsr()
    co.sort_indices()
    co = co.tocoo()
    keep = co.data >= min_shared
    return co.row[keep].astype(np.int64), co.col[keep].astype(np.int64), co.data[keep].astype(np.int64)


def customer_network_edges(
    cleaned: pd.DataFrame,
    *,
    min_shared_products: int = 10,
    top_k: int | None = 10,
    block_size: int = 1000,
) -> pd.DataFrame:
    """Project the customer-product bipartite graph onto customers.

    Two customers are joined by the number of distinct products both have bought (guest lines have no
    customer and are left out). The full projection is nearly complete, since best sellers link almost
    everyone, so it is pruned twice: a pair must share at least ``min_shared_products`` products, and an
    edge is kept only when it is among the ``top_k`` strongest of at least one of its two customers (ties
    broken by the smaller neighbour id). ``B @ B.T`` is computed ``block_size`` customers at a time and
    pruned per block, so memory stays bounded by one block.

    Args:
        cleaned: Cleaned transactions with ``customer_id``.
        min_shared_products: Smallest number of shared distinct products for an edge.
        top_k: Neighbours kept per customer; ``None`` keeps every pair above the threshold.
        block_size: Customers per block of the sparse product.

    Returns:
        One row per kept customer pair (see ``schemas_baskets.CustomerNetworkEdges``): ``source < target``
        (customer ids), ``weight`` = shared distinct products, ``jaccard`` = weight / distinct products of
        either customer. Sorted by source, then target.
    """
    if min_shared_products < 1:
        raise ValueError(f"min_shared_products must be at least 1, got {min_shared_products}")
    if top_k is not None and top_k < 1:
        raise ValueError(f"top_k must be a positive integer or None, got {top_k}")
    known = cleaned.loc[cleaned["customer_id"].notna(), ["customer_id", "stock_code"]].drop_duplicates()
    rows, customers = pd.factorize(known["customer_id"].astype("int64"), sort=True)
    cols, _ = pd.factorize(known["stock_code"], sort=True)
    incidence = sp.csr_matrix(
        (np.ones(len(known), dtype=np.int32), (rows, cols)), shape=(len(customers), cols.max(initial=-1) + 1)
    )
    sizes = np.asarray(incidence.sum(axis=1)).ravel().astype(np.int64)
    transposed = incidence.T.tocsc()
    found = []
    for start in range(0, len(customers), block_size):
        block = (incidence[start : start + block_size] @ transposed).tocoo()
        row = block.row.astype(np.int64) + start
        col = block.col.astype(np.int64)
        keep = (row != col) & (block.data >= min_shared_products)
        row, col, weight = row[keep], col[keep], block.data[keep].astype(np.int64)
        if top_k is not None:
            order = np.lexsort((col, -weight, row))
            row, col, weight = row[order], col[order], weight[order]
            starts = np.r_[0, np.flatnonzero(np.diff(row)) + 1]
            rank = np.arange(len(row)) - np.repeat(starts, np.diff(np.r_[starts, len(row)]))
            keep = rank < top_k
            row, col, weight = row[keep], col[keep], weight[keep]
        found.append(np.column_stack([np.minimum(row, col), np.maximum(row, col), weight]))
    pairs = np.unique(np.vstack(found), axis=0) if found else np.empty((0, 3), dtype=np.int64)
    source, target, weight = pairs[:, 0], pairs[:, 1], pairs[:, 2]
    return pd.DataFrame(
        {
            "source": customers[source].to_numpy(dtype=np.int64),
            "target": customers[target].to_numpy(dtype=np.int64),
            "weight": weight.astype(np.int64),
            "jaccard": weight / (sizes[source] + sizes[target] - weight).astype(float),
        }
    )


def centrality(
    edges: pd.DataFrame,
    *,
    backend: Backend = "igraph",
    eigenvector_scope: EigenvectorScope = "largest",
    communities: bool = True,
    random_state: int | None = 0,
) -> pd.DataFrame:
    """Score every node of a weighted undirected edge list.

    Definitions, identical for both backends (igraph's are rescaled to networkx's conventions):

    * ``degree``: number of neighbours; ``weighted_degree``: sum of incident weights.
    * ``degree_centrality``: unweighted, ``degree / (n - 1)`` with ``n`` the number of nodes
      (``nx.degree_centrality``).
    * ``betweenness_centrality``: shortest paths use distance ``1 / weight`` (more shared invoices = closer),
      normalised like ``nx.betweenness_centrality(normalized=True)`` for an undirected graph, i.e. the
      share of pairs ``2 / ((n - 1)(n - 2))`` over the whole graph. Paths of equal length are ties: the
      igraph backend compares path lengths with igraph's relative tolerance (1e-10), and the networkx
      backend uses exact integer distances ``L / weight`` (``L`` the least common multiple of the
      weights, same shortest paths), because float sums such as ``1/2 + 1/6`` and ``1/3 + 1/3`` differ in
      the last bit and networkx compares them exactly, dropping one of the tied paths. The tolerance
      could only merge two different path lengths closer than 1e-10 relative; on the 2009-2010 product
      network (1,953 products, 94k edges) the backends agree exactly, and igraph takes about 4 s where
      networkx takes over ten minutes.
    * ``eigenvector_centrality``: weighted, leading eigenvector of the adjacency matrix scaled to unit
      Euclidean norm and positive (``nx.eigenvector_centrality_numpy``). With ``eigenvector_scope=
      "largest"`` it is computed on the largest connected component and null elsewhere, because scores of
      separate components are not comparable; ``"component"`` computes it in every component separately
      (each unit-norm).
    * ``component``: connected component id, 0 for the largest (ties: the one holding the smallest node).
    * ``community``: Louvain communities on the weights (igraph ``community_multilevel`` or networkx
      ``louvain_communities``), seeded with ``random_state``, numbered by size; the two backends may
      partition differently. Null when ``communities`` is false.

    Args:
        edges: Undirected edges with ``source``, ``target`` and a positive ``weight``; each pair once, no
            self-loops.
        backend: ``"igraph"`` (fast) or ``"networkx"`` (reference).
        eigenvector_scope: ``"largest"`` or ``"component"``, see above.
        communities: Whether to detect Louvain communities.
        random_state: Seed for the community detection.

    Returns:
        One row per node (see ``schemas_baskets.NodeCentrality``), sorted by node.
    """
    if backend not in ("igraph", "networkx"):
        raise ValueError(f"backend must be 'igraph' or 'networkx', got {backend!r}")
    if eigenvector_scope not in ("largest", "component"):
        raise ValueError(f"eigenvector_scope must be 'largest' or 'component', got {eigenvector_scope!r}")
    nodes, source, target, weight = _index_edges(edges)
    n = len(nodes)
    degree = np.bincount(source, minlength=n) + np.bincount(target, minlength=n)
    strength = np.bincount(source, weights=weight, minlength=n) + np.bincount(
        target, weights=weight, minlength=n
    )

    if backend == "igraph":
        graph = ig.Graph(n=n, edges=np.column_stack([source, target]).tolist())
        graph.es["weight"] = weight.tolist()
        graph.es["distance"] = (1.0 / weight).tolist()
        component = _canonical_labels(np.array(graph.connected_components().membership))
        raw_betweenness = np.array(graph.betweenness(directed=False, weights="distance"), dtype=float)
        eigenvector = _eigenvector(graph, component, eigenvector_scope, _igraph_eigenvector)
        community = _igraph_communities(graph, random_state) if communities else None
    else:
        graph = nx.Graph()
        graph.add_nodes_from(range(n))
        exact = _exact_inverse(weight)
        graph.add_edges_from(
            (int(s), int(t), {"weight": float(w), "distance": d})
            for s, t, w, d in zip(source, target, weight, exact, strict=True)
        )
        membership = np.empty(n, dtype=np.int64)
        for label, members in enumerate(nx.connected_components(graph)):
            membership[list(members)] = label
        component = _canonical_labels(membership)
        betweenness = nx.betweenness_centrality(graph, weight="distance", normalized=False)
        # networkx's unnormalised undirected betweenness already counts each unordered pair once.
        raw_betweenness = np.array([betweenness[i] for i in range(n)], dtype=float)
        eigenvector = _eigenvector(graph, component, eigenvector_scope, _networkx_eigenvector)
        community = _networkx_communities(graph, random_state) if communities else None

    scale = 2.0 / ((n - 1) * (n - 2)) if n > 2 else 1.0
    return pd.DataFrame(
        {
            "node": nodes,
            "component": component.astype(np.int64),
            "degree": degree.astype(np.int64),
            "weighted_degree": strength.astype(float),
            "degree_centrality": degree / (n - 1) if n > 1 else np.ones(n),
            "betweenness_centrality": raw_betweenness * scale,
            "eigenvector_centrality": eigenvector,
            "community": pd.array(community, dtype="Int64") if community is not None else pd.NA,
        }
    ).astype({"community": "Int64"})


def _index_edges(edges: pd.DataFrame) -> tuple[pd.Index, np.ndarray, np.ndarray, np.ndarray]:
    """Validate an edge list and map its nodes to positions in the sorted node index."""
    if edges.empty:
        raise ValueError("the edge list is empty")
    weight = edges["weight"].to_numpy(dtype=float)
    if not np.all(np.isfinite(weight) & (weight > 0)):
        raise ValueError("edge weights must be positive and finite")
    nodes = pd.Index(pd.concat([edges["source"], edges["target"]], ignore_index=True).unique()).sort_values()
    source = nodes.get_indexer(edges["source"])
    target = nodes.get_indexer(edges["target"])
    if np.any(source == target):
        raise ValueError("the edge list has self-loops")
    pairs = np.column_stack([np.minimum(source, target), np.maximum(source, target)])
    if len(np.unique(pairs, axis=0)) != len(pairs):
        raise ValueError("the edge list has the same pair of nodes more than once")
    return nodes.rename("node"), source.astype(np.int64), target.astype(np.int64), weight


def _exact_inverse(weight: np.ndarray) -> list[int]:
    """Integers proportional to ``1 / weight``: ``L / weight`` with ``L`` a common multiple.

    Every float is an exact binary fraction ``p / q``, so ``1 / w = q / p`` and ``L = lcm(p)`` makes every
    distance an integer. Shortest paths and their ties are those of ``1 / weight`` exactly; Python integers
    do not overflow, they only grow (integer weights keep ``L`` moderate).
    """
    fractions = [Fraction(int(w)) if float(w).is_integer() else Fraction(float(w)) for w in weight]
    common = math.lcm(*{f.numerator for f in fractions})
    return [f.denominator * (common // f.numerator) for f in fractions]


def _canonical_labels(membership: np.ndarray) -> np.ndarray:
    """Relabel groups 0, 1, ... by decreasing size, ties by their smallest node position."""
    labels, inverse, sizes = np.unique(membership, return_inverse=True, return_counts=True)
    first = np.full(len(labels), len(membership))
    np.minimum.at(first, inverse, np.arange(len(membership)))
    rank = np.empty(len(labels), dtype=np.int64)
    rank[np.lexsort((first, -sizes))] = np.arange(len(labels))
    return rank[inverse]


def _eigenvector(graph, component: np.ndarray, scope: EigenvectorScope, solver) -> np.ndarray:
    """Eigenvector centrality per component (or the largest one), unit norm, null outside the scope."""
    scores = np.full(len(component), np.nan)
    labels = [0] if scope == "largest" else range(int(component.max()) + 1)
    for label in labels:
        members = np.flatnonzero(component == label)
        scores[members] = solver(graph, members)
    return scores


def _unit_positive(vector: np.ndarray) -> np.ndarray:
    """Scale a Perron vector to unit Euclidean norm with a positive sum (networkx's convention)."""
    vector = np.asarray(vector, dtype=float)
    return vector / (np.sign(vector.sum()) * np.linalg.norm(vector))


def _tiny_component(size: int) -> np.ndarray:
    """Eigenvector centrality of a single edge (or node): all equal, unit norm.

    Done by hand because scipy's sparse eigensolver behind ``nx.eigenvector_centrality_numpy`` refuses
    matrices smaller than 3 x 3.
    """
    return np.full(size, 1.0 / math.sqrt(size))


def _igraph_eigenvector(graph: ig.Graph, members: np.ndarray) -> np.ndarray:
    """Weighted eigenvector centrality of one connected component with igraph (ARPACK)."""
    if len(members) <= 2:
        return _tiny_component(len(members))
    sub = graph.induced_subgraph(members.tolist(), implementation="create_from_scratch")
    # induced_subgraph keeps the vertex order of ``members`` (sorted), so positions line up.
    # ARPACK starts from a random vector drawn from igraph's process-wide generator; seeding it makes the
    # scores bit-for-bit reproducible between runs (they otherwise differ around 1e-16).
    ig.set_random_number_generator(random.Random(0))
    try:
        return _unit_positive(sub.eigenvector_centrality(weights="weight"))
    finally:
        ig.set_random_number_generator(random)


def _networkx_eigenvector(graph: nx.Graph, members: np.ndarray) -> np.ndarray:
    """Weighted eigenvector centrality of one connected component with networkx (scipy)."""
    if len(members) <= 2:
        return _tiny_component(len(members))
    scores = nx.eigenvector_centrality_numpy(graph.subgraph(members.tolist()), weight="weight")
    return _unit_positive(np.array([scores[int(m)] for m in members]))


def _igraph_communities(graph: ig.Graph, random_state: int | None) -> np.ndarray:
    """Louvain communities with igraph, seeded through a private random generator."""
    # igraph draws from one process-wide generator; swap in a seeded one and restore the default after.
    ig.set_random_number_generator(random.Random(random_state))
    try:
        membership = np.array(graph.community_multilevel(weights="weight").membership)
    finally:
        ig.set_random_number_generator(random)
    return _canonical_labels(membership)


def _networkx_communities(graph: nx.Graph, random_state: int | None) -> np.ndarray:
    """Louvain communities with networkx, seeded."""
    membership = np.empty(graph.number_of_nodes(), dtype=np.int64)
    for label, members in enumerate(
        nx.community.louvain_communities(graph, weight="weight", seed=random_state)
    ):
        membership[list(members)] = label
    return _canonical_labels(membership)
