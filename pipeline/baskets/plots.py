"""Figures for the basket tables.

What belongs here: functions that take tables from ``pipeline.baskets.basket_analysis`` and return a
matplotlib ``Figure`` drawn on the Agg canvas (no pyplot global state, no display needed). Saving or
attaching the figure is the caller's job; no computation beyond what the picture needs.
"""

from __future__ import annotations

import pandas as pd
from matplotlib.colors import LogNorm, Normalize
from matplotlib.figure import Figure

from pipeline.common.figures import new_figure, short_label


def rules_scatter(rules: pd.DataFrame, *, country: str | None = None, label_top: int = 5) -> Figure:
    """Plot rules as support against confidence, coloured by lift.

    Args:
        rules: Association rules (``pipeline.baskets.schemas.AssociationRules``).
        country: Plot this country's rules; ``None`` plots the all-countries rules (null ``country``).
        label_top: Annotate this many rules with the highest lift.

    Returns:
        The figure; lift uses a logarithmic colour scale since it spans orders of magnitude.
    """
    scope = rules[rules["country"].isna()] if country is None else rules[rules["country"] == country]
    figure = new_figure(8, 5.5)
    axes = figure.add_subplot()
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
        antecedent = short_label(", ".join(row.antecedent_descriptions))
        label = f"{antecedent} → {short_label(', '.join(row.consequent_descriptions))}"
        axes.annotate(
            label, (row.support, row.confidence), fontsize=7, xytext=(4, 4), textcoords="offset points"
        )
    return figure

