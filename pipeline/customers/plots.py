"""Matplotlib figures for the customer-analytics tables.

What belongs here: functions that take the tables of ``pipeline.customers.rfm_segments``,
``pipeline.customers.clustering`` and ``pipeline.customers.prediction`` and return a matplotlib ``Figure``.
Figures are built on the Agg canvas without ``pyplot``, so nothing touches global figure state and the
functions are safe in worker processes; callers save them with ``fig.savefig(...)``. No aggregation of raw
transactions happens here: every figure draws a table that is already computed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from pipeline.common.figures import new_figure
from pipeline.customers.rfm_segments import SEGMENTS

_GBP = "GBP"


def rfm_distributions_figure(rfm: pd.DataFrame) -> Figure:
    """Plot the distributions of recency, frequency and monetary value, and the segment sizes.

    Args:
        rfm: Output of ``customers.rfm_table``.

    Returns:
        A 2 x 2 figure: three histograms (frequency and monetary on log axes) and segment sizes.
    """
    fig = new_figure(11, 8)
    (rec_ax, freq_ax), (mon_ax, seg_ax) = fig.subplots(2, 2)
    rec_ax.hist(rfm["recency_days"], bins=40, color="tab:blue")
    rec_ax.set_xlabel("recency (days)")
    freq_ax.hist(
        rfm["frequency"], bins=np.logspace(0, np.log10(rfm["frequency"].max() + 1), 30), color="tab:green"
    )
    freq_ax.set_xscale("log")
    freq_ax.set_xlabel("frequency (invoices, log)")
    positive = rfm["monetary"][rfm["monetary"] > 0]
    mon_ax.hist(
        positive, bins=np.logspace(np.log10(positive.min()), np.log10(positive.max()), 40), color="tab:orange"
    )
    mon_ax.set_xscale("log")
    mon_ax.set_xlabel(f"monetary ({_GBP}, log)")
    for ax in (rec_ax, freq_ax, mon_ax):
        ax.set_ylabel("customers")

    sizes = rfm["segment"].value_counts().reindex(list(SEGMENTS), fill_value=0).iloc[::-1]
    seg_ax.barh(np.arange(len(sizes)), sizes.to_numpy(), color="tab:purple")
    seg_ax.set_yticks(np.arange(len(sizes)), sizes.index)
    seg_ax.set_xlabel("customers")
    seg_ax.set_title("Segment sizes")
    fig.suptitle(f"RFM distributions ({len(rfm):,} customers)")
    return fig


def segment_summary_figure(summary: pd.DataFrame) -> Figure:
    """Plot each segment's share of customers next to its share of revenue.

    Args:
        summary: Output of ``customers.segment_summary``.

    Returns:
        A one-panel grouped horizontal bar chart.
    """
    data = summary.iloc[::-1]
    fig = new_figure(9, 6)
    ax = fig.subplots()
    y = np.arange(len(data))
    ax.barh(y + 0.2, 100 * data["customer_share"], height=0.4, label="customers", color="tab:blue")
    ax.barh(y - 0.2, 100 * data["revenue_share"], height=0.4, label="revenue", color="tab:orange")
    ax.set_yticks(y, data["segment"])
    ax.set_xlabel("share (%)")
    ax.legend()
    ax.set_title("RFM segments: share of customers and of revenue")
    return fig


def model_selection_figure(selection: pd.DataFrame, *, chosen_k: int | None = None) -> Figure:
    """Plot the clustering model-selection curves against k.

    Args:
        selection: Output of ``clustering.model_selection``.
        chosen_k: If given, marked with a vertical line on every panel.

    Returns:
        A 2 x 3 figure: k-means inertia, silhouette, Davies-Bouldin, Calinski-Harabasz, mixture BIC and AIC.
    """
    fig = new_figure(14, 8)
    axes = fig.subplots(2, 3).ravel()
    kmeans = selection[selection["model"] == "kmeans"].sort_values("k")
    gmm = selection[selection["model"] == "gmm"]
    panels = [
        ("inertia", "k-means inertia", False),
        ("silhouette", "silhouette (higher is better)", True),
        ("davies_bouldin", "Davies-Bouldin (lower is better)", True),
        ("calinski_harabasz", "Calinski-Harabasz (higher is better)", True),
        ("bic", "mixture BIC (lower is better)", None),
        ("aic", "mixture AIC (lower is better)", None),
    ]
    for ax, (column, title, with_gmm) in zip(axes, panels, strict=True):
        if with_gmm is not None:
            ax.plot(kmeans["k"], kmeans[column], marker="o", label="k-means", color="black")
        if with_gmm is not False:
            for covariance_type, part in gmm.groupby("covariance_type"):
                part = part.sort_values("k")
                ax.plot(part["k"], part[column], marker=".", label=f"gmm {covariance_type}")
        if chosen_k is not None:
            ax.axvline(chosen_k, color="grey", linestyle="--")
        ax.set_title(title)
        ax.set_xlabel("k")
    axes[1].legend(fontsize=8)
    return fig


def cluster_scatter_figure(
    rfm: pd.DataFrame, clusters: pd.DataFrame, profiles: pd.DataFrame, *, model: str = "kmeans"
) -> Figure:
    """Scatter customers by recency and monetary value, coloured by cluster.

    Args:
        rfm: Output of ``customers.rfm_table``.
        clusters: First output of ``clustering.fit_clusters``.
        profiles: Second output of ``clustering.fit_clusters`` (for the legend names).
        model: ``"kmeans"`` or ``"gmm"``.

    Returns:
        A two-panel figure: recency vs monetary and frequency vs monetary, log axes.
    """
    data = rfm.merge(clusters[["customer_id", f"{model}_cluster"]], on="customer_id", validate="1:1")
    names = profiles[profiles["model"] == model].set_index("cluster")["name"]
    fig = new_figure(13, 6)
    left, right = fig.subplots(1, 2, sharey=True)
    for cluster, part in data.groupby(f"{model}_cluster"):
        label = f"{cluster}: {names.get(cluster, '')} ({len(part):,})"
        left.scatter(part["recency_days"] + 1, part["monetary"], s=6, alpha=0.5, label=label)
        right.scatter(part["frequency"], part["monetary"], s=6, alpha=0.5)
    for ax in (left, right):
        ax.set_yscale("log")
        ax.set_xscale("log")
    left.set_xlabel("recency (days + 1, log)")
    right.set_xlabel("frequency (invoices, log)")
    left.set_ylabel(f"monetary ({_GBP}, log)")
    # A fixed corner: loc="best" scores every candidate position against every customer's point, which
    # costs more than drawing them. Recent low spenders are rare, so the lower left is usually empty.
    left.legend(fontsize=8, markerscale=3, loc="lower left")
    fig.suptitle(f"Customer clusters ({model})")
    return fig


def calibration_figure(evaluation: pd.DataFrame) -> Figure:
    """Plot the reliability diagram of the purchase models from the evaluation table.

    Args:
        evaluation: Second output of ``prediction.evaluate_and_predict``.

    Returns:
        A one-panel figure: observed purchase rate against mean predicted probability per bin, marker
        area proportional to the customers in the bin, with the diagonal of perfect calibration.
    """
    rows = evaluation[evaluation["metric"].str.startswith("calibration_bin_")]
    parts = rows["metric"].str.extract(r"calibration_bin_(?P<bin>\d+)_(?P<kind>predicted|observed)")
    table = pd.concat([rows[["model", "value", "n_customers"]], parts], axis=1).pivot_table(
        index=["model", "bin"], columns="kind", values=["value", "n_customers"], aggfunc="first"
    )
    fig = new_figure(6, 6)
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", label="perfect")
    for model in table.index.get_level_values("model").unique():
        part = table.loc[model]
        predicted = part[("value", "predicted")].to_numpy()
        observed = part[("value", "observed")].to_numpy()
        order = np.argsort(predicted)
        (line,) = ax.plot(predicted[order], observed[order], marker="o", label=model)
        ax.scatter(
            predicted,
            observed,
            s=part[("n_customers", "predicted")].to_numpy() / 5,
            alpha=0.3,
            color=line.get_color(),
        )
    cutoff = pd.Timestamp(evaluation["cutoff_date"].iloc[0]).date() if len(evaluation) else ""
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("mean predicted purchase probability")
    ax.set_ylabel("observed purchase rate")
    ax.set_title(f"Calibration, test window from {cutoff}")
    ax.legend()
    return fig
