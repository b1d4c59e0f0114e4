"""Figures for the basket and network tables.

What belongs here: functions that take tables from ``pipeline.baskets`` / ``pipeline.network`` and return
a matplotlib ``Figure`` drawn on the Agg canvas (no pyplot global state, no display needed). Saving or
attaching the figure is the caller's job; no computation beyond what the picture needs.
"""

from __future__ import annotations

from collections.abc import Mapping

import networkx as nx
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import LogNorm, Normalize
from matplotlib.figure import Figure


def _new_figure(width: float, height: float) -> tuple[Figure, object]:
    """A figure bound to an Agg canvas, with one set of axes."""
    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure, figure.add_subplot()


def _short(text: str, limit: int = 28) -> str:
    """Shorten a product description for a label."""
    text = str(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def rules_scatter(rules: pd.DataFrame, *, country: str | None = None, label_top: int = 5) -> Figure:
    """Plot rules as support against confidence, coloured by lift.

    Args:
        rules: Association rules (``schemas_baskets.AssociationRules``).
        country: Plot this country's rules; ``None`` plots the all-countries rules (null ``country``).
        label_top: Annotate this many rules with the highest lift.

    Returns:
        The figure; lift uses a logarithmic colour scale since it spans orders of magnitude.
    """
    scope = rules[rules["country"].isna()] if country is None else rules[rules["country"] == country]
    figure, axes = _new_figure(8, 5.5)
    title = f"Association rules ({'all countries' if country is None else country}, {len(scope)} rules)"
    axes.set_title(title)
    axes.set_xlabel("support (share of baskets)")
    axes.set_ylabel("confidence")
    if scope.empty:
        axes.text(0.5, 0.5, "no rules", ha="center", va="center", transform=axes.transAxes)
        return figure
    lift = scope["lift"].to_numpy(dtype=float)
    norm = (
        LogNorm(vmin=lift.min(), vmax=lift.max())
        if lift.min() > 0 and lift.max() > lift.min()
        else Normalize()
    )
    points = axes.scatter(
        scope["support"],
        scope["confidence"],
        c=lift,
        cmap="viridis",
        norm=norm,
        s=14,
        alpha=0.8,
        linewidths=0,
    )
    figure.colorbar(points, ax=axes, label="lift")
    axes.set_xscale("log")
    top = scope.nlargest(label_top, ["lift", "confidence"]) if label_top else scope.iloc[:0]
    for row in top.itertuples(index=False):
        antecedent = _short(", ".join(row.antecedent_descriptions))
        label = f"{antecedent} → {_short(', '.join(row.consequent_descriptions))}"
        axes.annotate(
            label, (row.support, row.confidence), fontsize=7, xytext=(4, 4), textcoords="offset points"
        )
    return figure


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
        edges: Product network edges (``schemas_baskets.ProductNetworkEdges``).
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

    figure, axes = _new_figure(10, 8)
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
    labels = {node: _short(names.get(node, node), 22) for node in nodes}
    nx.draw_networkx_labels(graph, layout, labels=labels, ax=axes, font_size=6)
    return figure
