"""Figures for the SVD and recommender tables.

What belongs here: functions that take tables from ``pipeline.recommend.svd`` / ``.evaluation`` and return a
matplotlib ``Figure`` drawn on the Agg canvas (no pyplot global state, no display needed). Saving or attaching
the figure is the caller's job; nothing is computed here beyond what the picture needs.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from pipeline.common.figures import new_figure
from pipeline.recommend.settings import MODEL_NAMES, SETTINGS

_METRIC_LABELS = {
    "hit_rate_at_k": "hit rate",
    "ndcg_at_k": "nDCG",
    "precision_at_k": "precision",
    "recall_at_k": "recall",
    "catalogue_coverage": "catalogue coverage",
}


def explained_variance_figure(explained_variance: pd.DataFrame) -> Figure:
    """Plot the variance explained by each SVD component and its running total.

    Args:
        explained_variance: ``schemas.ExplainedVariance`` table.

    Returns:
        Bars per component (left axis) and the cumulative share (right axis, 0-1).
    """
    figure = new_figure(8, 4.5)
    axes = figure.add_subplot()
    n = len(explained_variance)
    axes.set_title(f"Customer x product SVD: variance explained by {n} components")
    axes.set_xlabel("component")
    axes.set_ylabel("explained variance ratio")
    if explained_variance.empty:
        axes.text(0.5, 0.5, "no components", ha="center", va="center", transform=axes.transAxes)
        return figure
    components = explained_variance["component"].to_numpy()
    axes.bar(components, explained_variance["explained_variance_ratio"], color="tab:blue", alpha=0.7)
    cumulative_axes = axes.twinx()
    cumulative = explained_variance["cumulative_explained_variance_ratio"].to_numpy()
    cumulative_axes.plot(components, cumulative, color="tab:red", marker=".", label="cumulative")
    cumulative_axes.set_ylim(0, 1)
    cumulative_axes.set_ylabel("cumulative", color="tab:red")
    cumulative_axes.annotate(
        f"{cumulative[-1]:.1%}",
        (components[-1], cumulative[-1]),
        textcoords="offset points",
        xytext=(-30, 6),
        color="tab:red",
    )
    return figure


def recommender_metrics_figure(
    metrics: pd.DataFrame,
    *,
    columns: Sequence[str] = ("hit_rate_at_k", "ndcg_at_k", "precision_at_k", "recall_at_k"),
) -> Figure:
    """Compare the models' holdout metrics, one panel per setting.

    Args:
        metrics: ``schemas.RecommenderMetrics`` table (output of ``evaluation.evaluate``).
        columns: Metric columns to draw as grouped bars.

    Returns:
        One panel per setting (``any``, ``new_only``), models on the x axis, one bar per metric; the hybrid's
        hit rate is written above its bar.

    Raises:
        ValueError: If a requested metric column is missing.
    """
    missing = [column for column in columns if column not in metrics.columns]
    if missing:
        raise ValueError(f"metrics table lacks columns {missing}")
    settings = [setting for setting in SETTINGS if setting in set(metrics["setting"])]
    figure = new_figure(5.5 * max(len(settings), 1), 4.8)
    if not settings:
        axes = figure.add_subplot()
        axes.text(0.5, 0.5, "no metrics", ha="center", va="center", transform=axes.transAxes)
        return figure
    panels = figure.subplots(1, len(settings), sharey=True, squeeze=False)[0]
    k = int(metrics["k"].iloc[0]) if "k" in metrics.columns and len(metrics) else None
    width = 0.8 / len(columns)
    for axes, setting in zip(panels, settings, strict=True):
        rows = metrics[metrics["setting"] == setting].set_index("model")
        models = [model for model in MODEL_NAMES if model in rows.index]
        positions = np.arange(len(models))
        for index, column in enumerate(columns):
            axes.bar(
                positions + (index - (len(columns) - 1) / 2) * width,
                rows.loc[models, column].to_numpy(dtype=float),
                width,
                label=_METRIC_LABELS.get(column, column),
            )
        if "hybrid" in models and "hit_rate_at_k" in columns:
            offset = (columns.index("hit_rate_at_k") - (len(columns) - 1) / 2) * width
            value = float(rows.loc["hybrid", "hit_rate_at_k"])
            axes.annotate(
                f"{value:.3f}", (models.index("hybrid") + offset, value), ha="center", va="bottom", fontsize=8
            )
        customers = int(rows["n_customers"].iloc[0]) if "n_customers" in rows.columns and len(rows) else 0
        axes.set_title(f"{setting} ({customers} customers)")
        axes.set_xticks(positions, models, rotation=30, ha="right")
        axes.set_ylim(0, 1)
    panels[0].set_ylabel("metric value" if k is None else f"metric @ {k}")
    panels[-1].legend(loc="upper right", fontsize=8)
    figure.suptitle("Recommenders on the temporal holdout")
    return figure
