"""Link analysis: product co-purchase and customer similarity networks, and their node centralities.

What belongs here: pure scipy/igraph/networkx code that turns ``staging.cleaned_transactions`` into edge
lists (``source``, ``target``, ``weight``...) and scores the nodes of such an edge list. Frequent itemsets
and rules live in ``pipeline.baskets.basket_analysis``, figures in ``pipeline.network.plots``; nothing here
imports dagster.

Edges are computed with sparse matrix products of binary incidence matrices, never Python loops over pairs.
An edge's ``weight`` is an affinity, not a count: the Jaccard index of the two nodes' sets (invoices holding
each product, products bought by each customer), ``shared / (|A| + |B| - shared)``. Raw counts grow with
catalogue breadth, so a best seller or a wholesaler buying the whole catalogue was everyone's strongest
neighbour and most shortest paths ran through it (customer betweenness: one hub at 0.93 on the 2009-2010
sheet, 0.99 reported on both years); Jaccard divides by the union, so such a node is close only to nodes whose
sets it nearly matches. The shared count still decides which pairs have enough support (``min_shared_*``) and
is kept as a column (``shared_invoices``, ``shared_products``).

Centralities are computed by igraph (compiled, seconds on the full product graph) or networkx (the pure
Python reference, minutes); both backends return the same numbers, see :func:`centrality`.

Exact betweenness costs one shortest-path search per node (``O(n m log n)``), so igraph's searches are
split over worker processes (igraph holds the GIL, threads would run one at a time), and graphs above
``max_exact_nodes`` get the Brandes & Pich estimate from seeded random pivots instead.
"""

from __future__ import annotations

import functools
import math
import os
import pickle
import random
import subprocess
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction
from typing import Any, Literal

import igraph as ig
import networkx as nx
import numpy as np
import pandas as pd
import scipy.sparse as sp

from pipeline.baskets.basket_analysis import DEFAULT_MAX_BASKET_SIZE, basket_matrix

PRODUCT_EDGE_COLUMNS: list[str] = ["source", "target", "weight", "shared_invoices", "lift", "jaccard"]
CUSTOMER_EDGE_COLUMNS: list[str] = ["source", "target", "weight", "shared_products", "jaccard"]
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

DEFAULT_MAX_EXACT_NODES = 10_000
"""Largest network whose betweenness is exact by default.

Exact weighted betweenness grows like ``n * m``: the full-size customer network (7,297 nodes, 68k edges)
takes about 25 CPU seconds, so 10,000 nodes with the same mean degree take about 47, some 24 s on two
cores. Bigger networks are sampled: the customer network at 10x data has 74k nodes and 707k edges,
where one source costs about 0.1 CPU second (exact: about two hours).
"""
DEFAULT_PIVOTS = 1_000
"""Random source nodes of the sampled betweenness (see :func:`centrality` for the measured error)."""

# Below this many (sources x edges) a search batch takes well under a second, less than starting a
# worker interpreter and importing igraph in it.
_PARALLEL_MIN_WORK = 10_000_000
# Candidate pairs (block rows x all rows) per block of ``B @ B.T``: bounds the memory of a block (under
# 20 bytes per pair, 160 MB) whatever the number of customers or products.
_BLOCK_PAIRS = 8_000_000
# Buckets of the Jaccard index used to find each row's top-k cutoff before sorting (see _top_k_by_jaccard).
_JACCARD_BUCKETS = 1024
# A worker interpreter runs one pickled zero-argument call from stdin and pickles its result to stdout.
# It imports only what unpickling the call needs (igraph), never the caller's ``__main__`` (which may be
# the dagster CLI), unlike multiprocessing's spawn and forkserver start methods; nor is it a fork of a
# process running DuckDB and dagster threads. igraph imports matplotlib for plotting, which would take
# most of the worker's start (0.8 of 0.9 CPU seconds); blocking it makes igraph skip plotting support.
_WORKER_CODE = (
    "import sys; sys.modules['matplotlib'] = None; import pickle; "
    "call = pickle.load(sys.stdin.buffer); pickle.dump(call(), sys.stdout.buffer)"
)


def default_workers() -> int:
    """Worker count used when none is given: ``min(2, os.cpu_count())``.

    Returns:
        The number of processes (betweenness) or threads (customer projection) to use.
    """
    return min(2, os.cpu_count() or 1)


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
    top_k: int | None = None,
    max_basket_size: int | None = DEFAULT_MAX_BASKET_SIZE,
    workers: int | None = None,
) -> pd.DataFrame:
    """Build the product co-purchase network: products joined by the invoices that hold both.

    The pair counts are the off-diagonal entries of ``X.T @ X`` for the binary invoice x product matrix
    ``X``, computed in blocks of products (see :func:`customer_network_edges`). Giant wholesale baskets are
    left out as in itemset mining (``pipeline.baskets.basket_analysis``), since each of them would add an edge
    between every two of its hundreds of products. A pair is kept when it shares at least
    ``min_shared_invoices`` invoices (statistical support) and, with ``top_k``, is among the ``top_k``
    highest-Jaccard pairs of one of its products.

    The edge ``weight`` is the Jaccard index of the two products' invoice sets. Lift (shared over expected
    invoices) was the other candidate: it also corrects for popularity, but it is unbounded, scales with
    the number of invoices, and is largest for pairs of rare products (on the 2009-2010 sheet the top
    lifts, 350-530, are pairs sharing 20-28 invoices; the most co-bought pairs, 630-750 shared invoices,
    have lift 5-10), so it measures surprise rather than how much the two products' invoices overlap.
    Jaccard is bounded, symmetric, and a ratio of integers, so shortest paths on ``1 / weight`` have exact
    ties (see :func:`centrality`).

    Args:
        cleaned: Cleaned transactions.
        min_shared_invoices: Keep edges with at least this many shared invoices; ``None`` uses
            :func:`default_min_shared_invoices` of the number of baskets.
        top_k: Neighbours kept per product (by Jaccard, ties by the smaller stock code); ``None`` keeps
            every pair above the threshold.
        max_basket_size: Cap on distinct products per basket; ``None`` keeps every invoice.
        workers: Threads scoring blocks; ``None`` uses :func:`default_workers`.

    Returns:
        One row per kept product pair (see ``pipeline.network.schemas.ProductNetworkEdges``): ``source <
        target`` (stock codes), ``weight`` = ``jaccard`` = shared invoices / invoices holding either product,
        ``shared_invoices``, and ``lift`` = shared invoices / those expected under independence
        (``shared * n / (count_source * count_target)``). Sorted by source, then target.
    """
    matrix, _, products = basket_matrix(cleaned, max_basket_size=max_basket_size)
    n_baskets = matrix.shape[0]
    if min_shared_invoices is None:
        min_shared_invoices = default_min_shared_invoices(n_baskets)
    if min_shared_invoices < 1:
        raise ValueError(f"min_shared_invoices must be at least 1, got {min_shared_invoices}")
    _check_top_k(top_k)
    counts = np.asarray(matrix.sum(axis=0)).ravel().astype(np.int64)
    source, target, shared = _pair_counts(
        matrix.T, min_shared=min_shared_invoices, top_k=top_k, block_size=None, workers=workers
    )
    # Products are sorted, so a smaller position means a smaller stock code.
    expected = counts[source].astype(float) * counts[target] / max(n_baskets, 1)
    jaccard = _jaccard(shared, counts[source], counts[target])
    return pd.DataFrame(
        {
            "source": products[source].to_numpy(dtype=object),
            "target": products[target].to_numpy(dtype=object),
            "weight": jaccard,
            "shared_invoices": shared,
            "lift": shared / expected if len(shared) else np.array([], dtype=float),
            "jaccard": jaccard,
        }
    )


def _jaccard(shared: np.ndarray, size_a: np.ndarray, size_b: np.ndarray) -> np.ndarray:
    """Jaccard index ``shared / (size_a + size_b - shared)`` of two sets, from integer counts.

    One correctly rounded float division of two integers: equal ratios give equal floats, and two different
    ratios with denominators below 2**26 differ by more than their rounding, so comparing the floats
    compares the exact fractions (the top-k ranking and its ties rely on it).
    """
    return shared / (size_a + size_b - shared).astype(float)


def _check_top_k(top_k: int | None) -> None:
    if top_k is not None and top_k < 1:
        raise ValueError(f"top_k must be a positive integer or None, got {top_k}")


def _pair_counts(
    incidence: sp.spmatrix,
    *,
    min_shared: int,
    top_k: int | None,
    block_size: int | None,
    workers: int | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs of rows of a binary matrix sharing at least ``min_shared`` columns, from ``B @ B.T`` in blocks.

    Args:
        incidence: Binary matrix, one row per node (customer or product).
        min_shared: Smallest count of shared columns for a pair.
        top_k: Keep a pair only when it is among the ``top_k`` highest-Jaccard pairs of one of its rows
            (ties by the smaller other row); ``None`` keeps every pair.
        block_size: Rows per block; ``None`` sizes blocks to about ``_BLOCK_PAIRS`` candidate pairs.
        workers: Threads scoring blocks; ``None`` uses :func:`default_workers`.

    Returns:
        ``(low, high, shared)`` arrays: row positions ``low < high`` and their shared count, sorted.
    """
    if block_size is not None and block_size < 1:
        raise ValueError(f"block_size must be a positive integer or None, got {block_size}")
    if workers is not None and workers < 1:
        raise ValueError(f"workers must be a positive integer or None, got {workers}")
    # CSR on both sides: scipy would otherwise convert a CSC right-hand side again for every block.
    binary = sp.csr_matrix(incidence, dtype=np.int32)
    transposed = binary.T.tocsr()
    sizes = np.diff(binary.indptr).astype(np.int64)
    n = binary.shape[0]
    if block_size is None:
        block_size = max(1, _BLOCK_PAIRS // max(n, 1))
    score = functools.partial(
        _strongest_pairs, binary, transposed, sizes, block_size=block_size, min_shared=min_shared, top_k=top_k
    )
    with ThreadPoolExecutor(workers or default_workers()) as pool:
        found = list(pool.map(score, range(0, n, block_size)))
    low, high, shared = (
        np.concatenate([part[i] for part in found]) if found else np.empty(0, dtype=np.int64)
        for i in range(3)
    )
    # Both rows of a pair may keep it, with the same count; the key sorts by low, then high.
    _, first = np.unique(low * n + high, return_index=True)
    return low[first], high[first], shared[first]


def customer_network_edges(
    cleaned: pd.DataFrame,
    *,
    min_shared_products: int = 10,
    top_k: int | None = 10,
    block_size: int | None = None,
    workers: int | None = None,
) -> pd.DataFrame:
    """Project the customer-product bipartite graph onto customers.

    Two customers are joined by the Jaccard index of the sets of distinct products they have bought
    (guest lines have no customer and are left out). The full projection is nearly complete, since best
    sellers link almost everyone, so it is pruned twice: a pair must share at least
    ``min_shared_products`` products (support), and an edge is kept only when it is among the ``top_k``
    highest-Jaccard pairs of at least one of its two customers (ties broken by the smaller neighbour id).
    Ranking by the shared count instead made a wholesaler who bought most of the catalogue one of
    everybody's top neighbours (on the 2009-2010 sheet one customer had 3,525 of the 3,595 customers as
    neighbours and lay on 93% of the shortest paths); Jaccard divides by the union of the two baskets,
    so customers are closest to customers with a similar assortment and a similar breadth. Cosine
    (``shared / sqrt(|A| |B|)``) would do much the same, but is irrational, so path-length ties could not
    be checked exactly. ``B @ B.T`` is computed ``block_size`` customers at a time and pruned per block,
    so memory stays bounded by one block; blocks run on ``workers`` threads (scipy's sparse product and
    numpy's sort release the GIL). The cost still grows with the square of the number of customers, as
    every pair sharing a product is scored once.

    Args:
        cleaned: Cleaned transactions with ``customer_id`` and ``stock_code``.
        min_shared_products: Smallest number of shared distinct products for an edge.
        top_k: Neighbours kept per customer; ``None`` keeps every pair above the threshold.
        block_size: Customers per block of the sparse product; ``None`` sizes blocks to about 8 million
            candidate pairs each (1,000 customers out of 8,000).
        workers: Threads scoring blocks; ``None`` uses :func:`default_workers`.

    Returns:
        One row per kept customer pair (see ``pipeline.network.schemas.CustomerNetworkEdges``): ``source <
        target`` (customer ids), ``weight`` = ``jaccard`` = shared distinct products / distinct products
        bought by either customer, and ``shared_products``. Sorted by source, then target.
    """
    if min_shared_products < 1:
        raise ValueError(f"min_shared_products must be at least 1, got {min_shared_products}")
    _check_top_k(top_k)
    known = cleaned.loc[cleaned["customer_id"].notna(), ["customer_id", "stock_code"]]
    rows, customers = pd.factorize(known["customer_id"].astype("int64"), sort=True)
    cols, products = pd.factorize(known["stock_code"])
    # Building the matrix sums repeated (customer, product) lines; only whether they bought it counts.
    incidence = sp.csr_matrix(
        (np.ones(len(rows), dtype=np.int32), (rows, cols)), shape=(len(customers), len(products))
    )
    incidence.data[:] = 1
    sizes = np.diff(incidence.indptr).astype(np.int64)
    source, target, shared = _pair_counts(
        incidence, min_shared=min_shared_products, top_k=top_k, block_size=block_size, workers=workers
    )
    jaccard = _jaccard(shared, sizes[source], sizes[target])
    return pd.DataFrame(
        {
            "source": customers[source].to_numpy(dtype=np.int64),
            "target": customers[target].to_numpy(dtype=np.int64),
            "weight": jaccard,
            "shared_products": shared.astype(np.int64),
            "jaccard": jaccard,
        }
    )


def _strongest_pairs(
    incidence: sp.csr_matrix,
    transposed: sp.csr_matrix,
    sizes: np.ndarray,
    start: int,
    *,
    block_size: int,
    min_shared: int,
    top_k: int | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs of rows ``start .. start + block_size`` with every row, pruned as described in _pair_counts.

    Returns:
        ``(low, high, shared)``: the pair as (smaller, larger) row position and its shared column count.
    """
    block = incidence[start : start + block_size] @ transposed
    n_rows, n = block.shape
    # Most candidate pairs fall below the threshold (93% at 10x data): select on the int32 counts first and
    # build row and column indices for the survivors only.
    found = np.flatnonzero(block.data >= min_shared)
    local = np.searchsorted(block.indptr, found, side="right") - 1
    col = block.indices[found].astype(np.int64)
    shared = block.data[found].astype(np.int64)
    off_diagonal = local + start != col
    local, col, shared = local[off_diagonal], col[off_diagonal], shared[off_diagonal]
    if top_k is not None and len(local):
        local, col, shared = _top_k_by_jaccard(local, col, shared, sizes, start, n_rows, n, top_k)
    row = local + start
    return np.minimum(row, col), np.maximum(row, col), shared


def _top_k_by_jaccard(
    local: np.ndarray,
    col: np.ndarray,
    shared: np.ndarray,
    sizes: np.ndarray,
    start: int,
    n_rows: int,
    n: int,
    top_k: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Keep each block row's ``top_k`` candidates by Jaccard (descending), ties by the smaller column."""
    jaccard = _jaccard(shared, sizes[local + start], sizes[col])
    # Each row's top_k-th largest Jaccard lies in a bucket of width 1 / _JACCARD_BUCKETS found from the count
    # of the row's candidates per bucket: only candidates from that bucket up (the top_k and a few more) are
    # sorted, out of thousands per row at 10x data.
    buckets = _JACCARD_BUCKETS
    bucket = np.minimum((jaccard * buckets).astype(np.int64), buckets)
    counts = np.bincount(local * (buckets + 1) + bucket, minlength=n_rows * (buckets + 1))
    at_least = np.cumsum(counts.reshape(n_rows, buckets + 1)[:, ::-1], axis=1)[:, ::-1]
    cutoff = (at_least >= top_k).sum(axis=1) - 1
    contender = bucket >= cutoff[local]
    local, col, shared, jaccard = local[contender], col[contender], shared[contender], jaccard[contender]
    # np.unique gives every distinct Jaccard an integer level (equal floats are equal fractions, see
    # _jaccard), so the ranking is exact and fits one integer key ordering by row, then Jaccard descending,
    # then column: a single argsort is about ten times faster than np.lexsort on the three arrays.
    values, level = np.unique(jaccard, return_inverse=True)
    levels = len(values)
    if n_rows * levels * n < 2**62:
        order = np.argsort((local * levels + (levels - 1 - level)) * n + col)
    else:
        order = np.lexsort((col, -jaccard, local))
    local, col, shared = local[order], col[order], shared[order]
    starts = np.r_[0, np.flatnonzero(np.diff(local)) + 1]
    rank = np.arange(len(local)) - np.repeat(starts, np.diff(np.r_[starts, len(local)]))
    keep = rank < top_k
    return local[keep], col[keep], shared[keep]


def centrality(
    edges: pd.DataFrame,
    *,
    backend: Backend = "igraph",
    eigenvector_scope: EigenvectorScope = "largest",
    communities: bool = True,
    random_state: int | None = 0,
    max_exact_nodes: int | None = DEFAULT_MAX_EXACT_NODES,
    pivots: int = DEFAULT_PIVOTS,
    workers: int | None = None,
) -> pd.DataFrame:
    """Score every node of a weighted undirected edge list.

    Definitions, identical for both backends (igraph's are rescaled to networkx's conventions):

    * ``degree``: number of neighbours; ``weighted_degree``: sum of incident weights (the edge tables'
      Jaccard affinities).
    * ``degree_centrality``: unweighted, ``degree / (n - 1)`` with ``n`` the number of nodes
      (``nx.degree_centrality``).
    * ``betweenness_centrality``: shortest paths use distance ``1 / weight`` (higher affinity = closer),
      normalised like ``nx.betweenness_centrality(normalized=True)`` for an undirected graph, i.e. the
      share of pairs ``2 / ((n - 1)(n - 2))`` over the whole graph. ``1 / weight`` rather than
      ``-log(weight)``: with a Jaccard weight every hop costs at least 1, so a path is never shorter than
      its hop count and a chain of near-duplicates is not a free ride (``-log 1 = 0``), and the distance
      of a rational weight stays rational, so ties are exact. Paths of equal length are ties: the igraph
      backend compares path lengths with igraph's relative tolerance (1e-10), and the networkx backend
      uses exact integer distances ``L / weight`` (``L`` the least common multiple of the weights'
      numerators, same shortest paths; a float weight is read as the ratio of integers it was rounded
      from, e.g. ``shared / union`` for a Jaccard, see :func:`_as_fraction`), because float sums such
      as ``1/2 + 1/6`` and ``1/3 + 1/3`` differ in the last bit and networkx compares them exactly,
      dropping one of the tied paths. The tolerance could only merge two different path lengths closer
      than 1e-10 relative. On the 2009-2010 product network (1,953 products, 94k edges) igraph takes
      about 2 s where networkx takes over ten minutes. igraph's per-source searches are dealt round-robin
      to ``workers`` processes and the partial sums added, which changes only the float summation order
      (~1e-15).
      Networks of more than ``max_exact_nodes`` nodes get the Brandes & Pich (2007) estimate instead:
      only the shortest paths from ``pivots`` source nodes drawn uniformly without replacement (seeded by
      ``random_state``) are counted, scaled by ``n / pivots`` and capped at 1, an unbiased estimate (but
      for the cap) costing ``pivots / n`` of the exact one; with ``pivots >= n`` every node is a source
      and it is exact (see :func:`betweenness_sources`). Its error does not shrink with ``n`` but with
      ``pivots``, and is largest, relative to the score, on nodes carrying few paths. Measured on the
      full-size customer network when its edges were weighted by shared counts (7,297 nodes, 68k edges;
      80 nodes with non-zero betweenness, one hub at 0.99) with 1,000 pivots and seeds 0-4: the hub
      within 0.2%, the largest error 0.3-0.9% of the largest score, Spearman correlation 0.94-0.97 over
      the non-zero nodes, 8-10 of the exact top 10 and 18-19 of the top 20 found, median relative error
      over the top 10 of 6-22%; nodes on no shortest path stay exactly 0. A node whose betweenness
      comes from one leaf neighbour (score ``2 / (n - 1)``) is estimated at about half of it unless that
      leaf is a pivot. With 500 pivots (half the cost): the hub within 0.2%, largest error up to 1%,
      13-17 of the top 20 found. On the Jaccard-weighted 2009-2010 customer network (3,595 nodes, 29k
      edges, 66% of them with non-zero betweenness, the largest 0.09) with 493 pivots (the same 13.7% of
      the nodes) and seeds 0-4: the top node within 2-8%, the largest error 5-12% of the largest score
      (spread-out scores are harder to estimate than one hub), Spearman 0.98 over the non-zero nodes, 8-9
      of the top 10 and 17-20 of the top 20 found, 64% of the nodes non-zero.
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
        random_state: Seed for the community detection and the betweenness pivots.
        max_exact_nodes: Largest network with exact betweenness; ``None`` never samples.
        pivots: Source nodes of the sampled betweenness.
        workers: Processes for igraph's betweenness; ``None`` uses :func:`default_workers`. Small graphs
            (under ten million sources x edges) are done in this process.

    Returns:
        One row per node (see ``pipeline.network.schemas.NodeCentrality``), sorted by node.
    """
    if backend not in ("igraph", "networkx"):
        raise ValueError(f"backend must be 'igraph' or 'networkx', got {backend!r}")
    if eigenvector_scope not in ("largest", "component"):
        raise ValueError(f"eigenvector_scope must be 'largest' or 'component', got {eigenvector_scope!r}")
    if workers is not None and workers < 1:
        raise ValueError(f"workers must be a positive integer or None, got {workers}")
    nodes, source, target, weight = _index_edges(edges)
    n = len(nodes)
    n_sources = betweenness_sources(n, max_exact_nodes=max_exact_nodes, pivots=pivots)
    sampled = max_exact_nodes is not None and n > max_exact_nodes
    # Sorted pivots: the sources' order only changes igraph's float summation order.
    sources = None
    if sampled:
        sources = np.sort(np.random.default_rng(random_state).choice(n, size=n_sources, replace=False))
    degree = np.bincount(source, minlength=n) + np.bincount(target, minlength=n)
    strength = np.bincount(source, weights=weight, minlength=n) + np.bincount(
        target, weights=weight, minlength=n
    )

    if backend == "igraph":
        graph = ig.Graph(n=n, edges=np.column_stack([source, target]).tolist())
        graph.es["weight"] = weight.tolist()
        graph.es["distance"] = (1.0 / weight).tolist()
        component = _canonical_labels(np.array(graph.connected_components().membership))
        raw_betweenness = _igraph_dependencies(graph, sources, workers or default_workers())
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
        if sources is None:
            by_node = nx.betweenness_centrality(graph, weight="distance", normalized=False)
        else:
            by_node = nx.betweenness_centrality_subset(
                graph, sources=sources.tolist(), targets=range(n), weight="distance", normalized=False
            )
        # networkx's unnormalised undirected betweenness (full or subset) counts each unordered pair once.
        raw_betweenness = np.array([by_node[i] for i in range(n)], dtype=float)
        eigenvector = _eigenvector(graph, component, eigenvector_scope, _networkx_eigenvector)
        community = _networkx_communities(graph, random_state) if communities else None

    scale = 2.0 / ((n - 1) * (n - 2)) if n > 2 else 1.0
    betweenness = raw_betweenness * scale
    if sampled:
        # An estimate may overshoot; no node lies on more than all the pairs, the normalised maximum of 1.
        betweenness = np.minimum(betweenness * (n / n_sources), 1.0)
    return pd.DataFrame(
        {
            "node": nodes,
            "component": component.astype(np.int64),
            "degree": degree.astype(np.int64),
            "weighted_degree": strength.astype(float),
            "degree_centrality": degree / (n - 1) if n > 1 else np.ones(n),
            "betweenness_centrality": betweenness,
            "eigenvector_centrality": eigenvector,
            "community": pd.array(community, dtype="Int64") if community is not None else pd.NA,
        }
    ).astype({"community": "Int64"})


def betweenness_summary(scores: pd.DataFrame) -> dict[str, float | int | str]:
    """How concentrated betweenness is: the figures the centrality assets report in their metadata.

    Args:
        scores: Output of :func:`centrality` (at least ``node`` and ``betweenness_centrality``).

    Returns:
        ``betweenness_nonzero_fraction`` (share of nodes on at least one shortest path between two other
        nodes; with sampled betweenness, on one from a pivot, so a lower bound), ``betweenness_max`` (the
        largest normalised score: the share of the shortest paths between other nodes running through
        that node, averaged over the pairs),
        ``betweenness_max_node`` (its id, as text) and ``betweenness_top_share`` (its part of the summed
        betweenness of all nodes; 0 when every score is 0).
    """
    betweenness = scores["betweenness_centrality"].to_numpy(dtype=float)
    if len(betweenness) == 0:
        raise ValueError("no nodes to summarise")
    top = int(np.argmax(betweenness))
    total = float(betweenness.sum())
    return {
        "betweenness_nonzero_fraction": float(np.mean(betweenness > 0)),
        "betweenness_max": float(betweenness[top]),
        "betweenness_max_node": str(scores["node"].iloc[top]),
        "betweenness_top_share": float(betweenness[top] / total) if total > 0 else 0.0,
    }


def betweenness_sources(
    n_nodes: int, *, max_exact_nodes: int | None = DEFAULT_MAX_EXACT_NODES, pivots: int = DEFAULT_PIVOTS
) -> int:
    """Number of source nodes whose shortest paths :func:`centrality` counts for betweenness.

    Args:
        n_nodes: Nodes of the network.
        max_exact_nodes: Largest network with exact betweenness; ``None`` never samples.
        pivots: Source nodes of the sampled estimate.

    Returns:
        ``n_nodes`` when betweenness is exact (the network is small enough, or ``pivots >= n_nodes``),
        otherwise ``pivots``.
    """
    if max_exact_nodes is not None and max_exact_nodes < 0:
        raise ValueError(f"max_exact_nodes must be non-negative or None, got {max_exact_nodes}")
    if pivots < 1:
        raise ValueError(f"pivots must be a positive integer, got {pivots}")
    if max_exact_nodes is None or n_nodes <= max_exact_nodes:
        return n_nodes
    return min(pivots, n_nodes)


def _igraph_dependencies(graph: ig.Graph, sources: np.ndarray | None, workers: int) -> np.ndarray:
    """Undirected betweenness with igraph, counting only the shortest paths from ``sources`` (None: all).

    igraph halves undirected betweenness whether or not sources are given, so the results for disjoint
    source sets add up to the result for their union: the sources are dealt round-robin (balancing
    cheap searches in small components) to ``workers`` processes and the parts summed in a fixed order.
    """
    n_sources = graph.vcount() if sources is None else len(sources)
    if workers > 1 and n_sources > 1 and n_sources * graph.ecount() >= _PARALLEL_MIN_WORK and sys.executable:
        everyone = np.arange(graph.vcount()) if sources is None else sources
        calls = [
            functools.partial(
                ig.Graph.betweenness, graph, directed=False, weights="distance", sources=part.tolist()
            )
            for part in (everyone[i::workers] for i in range(min(workers, n_sources)))
        ]
        return np.sum(np.array(_run_in_workers(calls), dtype=float), axis=0)
    chosen = None if sources is None else sources.tolist()
    return np.array(graph.betweenness(directed=False, weights="distance", sources=chosen), dtype=float)


def _run_in_workers(calls: Sequence[Callable[[], Any]]) -> list[Any]:
    """Run each zero-argument picklable call in its own fresh interpreter, all at once; results in order."""
    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(_run_in_worker, calls))


def _run_in_worker(call: Callable[[], Any]) -> Any:
    """Run one picklable call in a fresh interpreter (see ``_WORKER_CODE``) and return its result."""
    done = subprocess.run(
        [sys.executable, "-c", _WORKER_CODE], input=pickle.dumps(call), capture_output=True, check=False
    )
    if done.returncode != 0:
        message = done.stderr.decode(errors="replace")[-2000:]
        raise RuntimeError(f"worker process exited with status {done.returncode}: {message}")
    return pickle.loads(done.stdout)


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

    Each weight is read as a fraction ``p / q`` (an integer as itself, a float as the fraction of smallest
    denominator it rounds from, see :func:`_as_fraction`), so ``1 / w = q / p`` and ``L = lcm(p)`` makes
    every distance an integer. Shortest paths and their ties are those of ``1 / weight`` exactly; Python
    integers do not overflow, they only grow (Jaccard weights have numerators up to the largest shared
    count, which keeps ``L`` to a few thousand bits).
    """
    fractions = [_as_fraction(w) for w in weight]
    common = math.lcm(*{f.numerator for f in fractions})
    return [f.denominator * (common // f.numerator) for f in fractions]


def _as_fraction(weight: float) -> Fraction:
    """Read a weight as the ratio of integers it was computed from, when that can be told.

    A ratio ``a / b`` (a Jaccard index, a lift) is stored as the nearest float, within ``w * 2**-53`` of
    it, while two different fractions of denominators up to ``D = sqrt(2**52 / w)`` are at least
    ``1 / D**2 = w * 2**-52`` apart: for ``b <= D`` (67 million for a Jaccard index) ``a / b`` is the
    fraction of denominator at most ``D`` closest to the float. That fraction is used when it rounds to the
    float; otherwise (a float that is no such ratio) the float's exact binary value is.
    """
    value = float(weight)
    if value.is_integer():
        return Fraction(int(value))
    exact = Fraction(value)
    nearest = exact.limit_denominator(max(1, math.isqrt(int(min(2.0**52 / value, 2.0**62)))))
    return nearest if float(nearest) == value else exact


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
