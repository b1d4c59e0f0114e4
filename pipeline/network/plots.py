"""Figures for the network tables of ``pipeline.network.graphs``.

Drawn on the Agg canvas without ``pyplot`` (see ``pipeline.common.figures``); saving or attaching the figure
is the caller's job.
"""

from __future__ import annotations

from collections.abc import Mapping

import networkx as nx
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from pipeline.common.figures import new_figure, short_label


def product_network_figure(
    edges: pd.DataFrame,
    centrality: pd.DataFrame | None = None,
    *,
    top_n: int = 40,
    descriptions: Mapping[str, str] | None = None,
    random_state: int | None = 0,
) -> Figure:
    """Draw the core of the product network: the ``top_n`` products with the largest weighted degree.

    Args:
        edges: Product network edges (``pipeline.network.schemas.ProductNetworkEdges``).
        centrality: Output of ``network.centrality`` for these edges; when given, nodes are coloured by
            community and ranked by its ``weighted_degree``.
        top_n: Number of products to draw, with the edges among them.
        descriptions: Stock code to description for labels; stock codes otherwise.
        random_state: Seed of the spring layout.

    Returns:
        The figure; node area follows weighted degree and edge width the Jaccard affinity (``weight``).
    """
    if centrality is not None:
        strength = centrality.set_index("node")["weighted_degree"]
    else:
        strength = (
            pd.concat([edges.groupby("source")["weight"].sum(), edges.groupby("target")["weight"].sum()])
            .groupby(level=0)
            .sum()
        )
    chosen = set(strength.sort_values(ascending=False, kind="stable").index[:top_n])
    inner = edges[edges["source"].isin(chosen) & edges["target"].isin(chosen)]
    graph = nx.Graph()
    graph.add_nodes_from(sorted(chosen))
    graph.add_weighted_edges_from(inner[["source", "target", "weight"]].itertuples(index=False, name=None))

    figure = new_figure(10, 8)
    axes = figure.add_subplot()
    axes.set_title(f"Product network: top {len(chosen)} products by weighted degree, {len(inner)} edges")
    axes.set_axis_off()
    if not len(graph):
        return figure
    layout = nx.spring_layout(graph, weight="weight", seed=random_state)
    nodes = list(graph.nodes)
    sizes = strength.reindex(nodes).to_numpy(dtype=float)
    sizes = 60 + 600 * sizes / sizes.max()
    if centrality is not None and centrality["community"].notna().any():
        colours = centrality.set_index("node")["community"].reindex(nodes).fillna(-1).to_numpy(dtype=float)
    else:
        colours = np.zeros(len(nodes))
    weights = np.array([data["weight"] for *_, data in graph.edges(data=True)], dtype=float)
    widths = 0.3 + 3.0 * weights / weights.max() if len(weights) else []
    nx.draw_networkx_edges(graph, layout, ax=axes, width=widths, alpha=0.3, edge_color="grey")
    nx.draw_networkx_nodes(
        graph, layout, ax=axes, nodelist=nodes, node_size=sizes, node_color=colours, cmap="tab10", alpha=0.9
    )
    names = {} if descriptions is None else descriptions
    labels = {node: short_label(names.get(node, node), 22) for node in nodes}
    nx.draw_networkx_labels(graph, layout, labels=labels, ax=axes, font_size=6)
    return figure
