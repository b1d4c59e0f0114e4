"""Matplotlib figures for the EDA tables of ``pipeline.eda.summaries``.

Figures are built on the Agg canvas without ``pyplot`` (see ``pipeline.common.figures``); callers save or
attach them. No aggregation happens here: every figure draws a table that is already computed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from pipeline.common.figures import new_figure

_GBP = "GBP"


def monthly_sales_figure(monthly: pd.DataFrame) -> Figure:
    """Plot monthly revenue, new versus returning customers and the cancellation rate.

    Args:
        monthly: Output of ``eda.monthly_sales``.

    Returns:
        A figure with three stacked panels sharing the month axis.
    """
    fig = new_figure(10, 8)
    revenue_ax, customer_ax, rate_ax = fig.subplots(3, 1, sharex=True)
    months = monthly["month"].dt.strftime("%Y-%m")
    x = np.arange(len(monthly))

    revenue_ax.bar(x, monthly["revenue"] / 1e3, color="tab:blue")
    revenue_ax.set_ylabel(f"revenue (k {_GBP})")
    revenue_ax.set_title("Monthly sales")
    basket_ax = revenue_ax.twinx()
    basket_ax.plot(x, monthly["avg_basket_value"], color="tab:orange", marker="o")
    basket_ax.set_ylabel(f"avg basket ({_GBP})", color="tab:orange")

    customer_ax.bar(x, monthly["returning_customers"], label="returning", color="tab:green")
    customer_ax.bar(
        x, monthly["new_customers"], bottom=monthly["returning_customers"], label="new", color="tab:olive"
    )
    customer_ax.set_ylabel("customers")
    customer_ax.legend(loc="upper left")

    rate_ax.plot(x, 100 * monthly["cancellation_rate"], color="tab:red", marker="o")
    rate_ax.set_ylabel("cancelled lines (%)")
    rate_ax.set_xticks(x, months, rotation=45, ha="right")
    return fig


def country_sales_figure(countries: pd.DataFrame, *, top_n: int = 15, log_scale: bool = True) -> Figure:
    """Plot the revenue of the top countries as horizontal bars annotated with their share.

    Args:
        countries: Output of ``eda.country_sales``.
        top_n: Number of countries shown, by revenue rank.
        log_scale: Use a log revenue axis; the home market otherwise flattens every other bar.

    Returns:
        A one-panel figure.
    """
    top = countries.nsmallest(top_n, "revenue_rank").iloc[::-1]
    fig = new_figure(8, 0.35 * len(top) + 1.5)
    ax = fig.subplots()
    y = np.arange(len(top))
    ax.barh(y, top["revenue"], color="tab:blue")
    ax.set_yticks(y, top["country"])
    for yi, (revenue, share) in enumerate(zip(top["revenue"], top["revenue_share"], strict=True)):
        ax.annotate(
            f"{100 * share:.1f}%",
            (revenue, yi),
            xytext=(3, 0),
            textcoords="offset points",
            va="center",
            fontsize=8,
        )
    if log_scale:
        ax.set_xscale("log")
    ax.set_xlabel(f"revenue ({_GBP})")
    ax.set_title(f"Revenue by country (top {len(top)})")
    return fig


def cohort_heatmap_figure(cohorts: pd.DataFrame) -> Figure:
    """Plot the monthly retention of acquisition cohorts as an annotated heatmap.

    Args:
        cohorts: Output of ``eda.cohort_retention``.

    Returns:
        A one-panel heatmap, cohorts in rows and months since first purchase in columns.
    """
    grid = cohorts.pivot(index="cohort_month", columns="months_since_first", values="retention_rate")
    fig = new_figure(1.0 + 0.6 * grid.shape[1], 1.0 + 0.45 * grid.shape[0])
    ax = fig.subplots()
    image = ax.imshow(grid.to_numpy(dtype="float64"), cmap="viridis", vmin=0, vmax=1, aspect="auto")
    for (row, col), value in np.ndenumerate(grid.to_numpy(dtype="float64")):
        if not np.isnan(value):
            ax.text(
                col,
                row,
                f"{100 * value:.0f}",
                ha="center",
                va="center",
                fontsize=7,
                color="white" if value < 0.5 else "black",
                # Inside the axes by construction: leaving hundreds of labels out of the layout and
                # tight-bbox passes saves most of the cost of saving the figure.
                in_layout=False,
            )
    ax.set_xticks(np.arange(grid.shape[1]), grid.columns)
    ax.set_yticks(np.arange(grid.shape[0]), pd.DatetimeIndex(grid.index).strftime("%Y-%m"))
    ax.set_xlabel("months since first purchase")
    ax.set_ylabel("cohort (first purchase month)")
    ax.set_title("Cohort retention (% of cohort active)")
    fig.colorbar(image, ax=ax, label="retention rate")
    return fig
