"""Pandera models of the network tables (``pipeline.network.graphs``).

What belongs here: one ``DataFrameModel`` per table that module produces, strict and coercing, with the value
ranges and cross-column invariants a downstream reader relies on. No transformations.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

# Scores are computed in floating point; this is far below any meaningful difference.
_TOLERANCE = 1e-9


def _lesser_end(node: str) -> Any:
    """Field of an edge's ``source``: ``node`` names the end, which sorts before ``target``."""
    return pa.Field(description=f"{node} (source < target).")


def _jaccard(description: str) -> Any:
    """Field of a Jaccard index of the two ends' sets: in (0, 1]."""
    return pa.Field(gt=0, le=1, description=description)


def _affinity(ratio: str) -> Any:
    """Field of the edge ``weight``: the Jaccard index (``ratio`` spells it out) the centralities use."""
    return _jaccard(f"Affinity used by the centralities (distance = 1 / weight): the Jaccard index, {ratio}.")


class _UndirectedEdges(pa.DataFrameModel):
    """Shared invariants of undirected edge lists: each pair once, written ``source < target``."""

    weight: Series[float] = _jaccard("Affinity of the two ends (Jaccard index).")
    jaccard: Series[float] = _jaccard("Shared invoices (or products) / invoices (or products) of either end.")

    class Config:
        """Reject unknown columns and coerce dtypes."""

        strict = True
        coerce = True

    # Columns each dataframe-level check reads: the SQL route of the schema check loads only these.
    _check_columns = {"source_before_target": ("source", "target"), "one_row_per_pair": ("source", "target")}

    @pa.dataframe_check
    def source_before_target(cls, df: pd.DataFrame) -> pd.Series:
        return df["source"] < df["target"]

    @pa.dataframe_check
    def one_row_per_pair(cls, df: pd.DataFrame) -> bool:
        return not df.duplicated(["source", "target"]).any()


class ProductNetworkEdges(_UndirectedEdges):
    """One row per pair of products bought together in enough invoices, weighted by their Jaccard index."""

    source: Series[str] = _lesser_end("Stock code of one product")
    target: Series[str] = pa.Field(description="Stock code of the other product.")
    weight: Series[float] = _affinity("shared invoices / invoices holding either product")
    shared_invoices: Series[int] = pa.Field(ge=1, description="Invoices holding both products (the support).")
    lift: Series[float] = pa.Field(
        gt=0, description="Shared invoices over those expected under independence."
    )
    jaccard: Series[float] = _jaccard("Shared invoices / invoices holding either product (equals weight).")


class CustomerNetworkEdges(_UndirectedEdges):
    """One row per pair of customers sharing enough products, weighted by the Jaccard index of their sets."""

    source: Series[int] = _lesser_end("One customer")
    target: Series[int] = pa.Field(description="The other customer.")
    weight: Series[float] = _affinity("shared products / distinct products bought by either customer")
    shared_products: Series[int] = pa.Field(ge=1, description="Distinct products bought by both customers.")
    jaccard: Series[float] = _jaccard("Shared products / products bought by either customer (equals weight).")


class NodeCentrality(pa.DataFrameModel):
    """One row per node of a network with its centralities (see ``network.centrality``)."""

    node: Series[object] = pa.Field(unique=True, description="Node id.")
    component: Series[int] = pa.Field(ge=0, description="Connected component, 0 = largest.")
    degree: Series[int] = pa.Field(ge=1, description="Number of neighbours.")
    weighted_degree: Series[float] = pa.Field(
        gt=0, description="Sum of incident edge weights (Jaccard affinities), the node's strength."
    )
    degree_centrality: Series[float] = pa.Field(gt=0, le=1, description="degree / (nodes - 1), unweighted.")
    betweenness_centrality: Series[float] = pa.Field(
        ge=0, le=1 + _TOLERANCE,
        description="Share of the shortest paths between other nodes that run through the node, averaged "
                    "over the pairs (distance = 1 / Jaccard weight); estimated from seeded random pivots on "
                    "networks above max_exact_nodes (see the asset metadata).",
    )
    eigenvector_centrality: Series[float] = pa.Field(
        ge=-_TOLERANCE, le=1 + _TOLERANCE, nullable=True,
        description="Eigenvector centrality weighted by the Jaccard affinity, on the largest component; null "
                    "elsewhere.",
    )
    community: Series[pd.Int64Dtype] = pa.Field(
        ge=0, nullable=True, description="Louvain community (seeded), numbered by size."
    )

    class Config:
        """Reject unknown columns and coerce dtypes."""

        strict = True
        coerce = True

    # Columns each dataframe-level check reads: the SQL route of the schema check loads only these.
    _check_columns = {"largest_component_is_zero": ("component",)}

    @pa.dataframe_check
    def largest_component_is_zero(cls, df: pd.DataFrame) -> bool:
        sizes = df["component"].value_counts().sort_index()
        return bool(sizes.is_monotonic_decreasing)


class ProductCentrality(NodeCentrality):
    """Centralities of the product network; nodes are stock codes."""

    node: Series[str] = pa.Field(unique=True, description="Stock code.")


class CustomerCentrality(NodeCentrality):
    """Centralities of the customer network; nodes are customer ids."""

    node: Series[int] = pa.Field(unique=True, description="Customer number.")
