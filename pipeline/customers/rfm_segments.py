r"""RFM scores and rule-based customer segments.

What belongs here: the per-customer recency / frequency / monetary table, its 1-5 quintile scores, the
segment rule table and the per-segment summary with marketing actions. Model-based grouping lives in
``pipeline.customers.clustering``; purchase prediction in ``pipeline.customers.prediction``.

Scores. Each of R, F and M is scored 1-5, 5 best (most recent, most invoices, most spend), from the metric
alone: customers are ranked with ties sharing the lowest rank of their group (``rank(method="min")``, SQL's
``rank()``), and the ranks are cut into five equal-width bins, ``score = floor(5 * (rank - 1) / n) + 1``. In
words, a customer's score is one plus the number of whole fifths of all customers whose metric is strictly
worse. Equal metric values therefore always get equal scores, whatever the customer ids or the row order;
scores are monotone in the metric, and the worst value always scores 1. The price is that bins are no longer
equal in size: a tied group stays whole in the bin where it starts, so a large group (about a third of the
customers have ``frequency == 1``) makes its bin larger, the next ones smaller, and can leave a score unused.

``rfm_score`` is the string ``f"{r}{f}{m}"`` (for example ``"545"``): a label for reporting and filtering,
not a number to average. ``fm_score = (f_score + m_score + 1) // 2`` (the mean of F and M rounded half up)
is the value axis of the segment grid.

Segments (R score in rows, FM score in columns); the widely used R x FM grid, with "Lost" split from
"Hibernating" by recency:

=====  =============  ===================  ===================  ===============  ===============
R\FM   1              2                    3                    4                5
=====  =============  ===================  ===================  ===============  ===============
5      New Customers  Potential Loyalists  Potential Loyalists  Champions        Champions
4      Promising      Potential Loyalists  Potential Loyalists  Loyal Customers  Loyal Customers
3      About to Sleep About to Sleep       Need Attention       Loyal Customers  Loyal Customers
2      Hibernating    Hibernating          At Risk              At Risk          Can't Lose Them
1      Lost           Lost                 At Risk              At Risk          Can't Lose Them
=====  =============  ===================  ===================  ===============  ===============
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.common.lines import Lines, invoice_date_range, product_cancellations, query_frames

SEGMENT_RULES: tuple[tuple[str, tuple[int, int], tuple[int, int]], ...] = (
    # (segment, inclusive R-score range, inclusive FM-score range); the ranges tile the 5 x 5 grid.
    ("Champions", (5, 5), (4, 5)),
    ("Loyal Customers", (3, 4), (4, 5)),
    ("Potential Loyalists", (4, 5), (2, 3)),
    ("New Customers", (5, 5), (1, 1)),
    ("Promising", (4, 4), (1, 1)),
    ("Need Attention", (3, 3), (3, 3)),
    ("About to Sleep", (3, 3), (1, 2)),
    ("At Risk", (1, 2), (3, 4)),
    ("Can't Lose Them", (1, 2), (5, 5)),
    ("Hibernating", (2, 2), (1, 2)),
    ("Lost", (1, 1), (1, 2)),
)
SEGMENTS: tuple[str, ...] = tuple(rule[0] for rule in SEGMENT_RULES)

# Actions assume the business: a UK giftware wholesaler whose customers are mostly small retailers.
MARKETING_ACTIONS: dict[str, str] = {
    "Champions": "Give early access to the new season's ranges, an account manager and referral rewards; "
    "no discounts needed.",
    "Loyal Customers": "Upsell higher-value ranges and bundles; invite to a loyalty tier with volume prices.",
    "Potential Loyalists": "Offer a volume-tier scheme and recommend products from the families they already "
    "buy.",
    "New Customers": "Send an onboarding series and a second-order incentive valid for 30 days.",
    "Promising": "Send curated bestsellers with a free-delivery threshold to grow basket size.",
    "Need Attention": "Send a limited-time offer based on past purchases to lift order frequency.",
    "About to Sleep": "Reactivate with personalised recommendations and a small discount before they lapse.",
    "At Risk": "Run a win-back campaign: personal email with reorder offers on their usual products.",
    "Can't Lose Them": "Call them: strong win-back offer from an account manager and ask why they stopped.",
    "Hibernating": "Include in low-cost seasonal campaigns (Q4 catalogue) with relevant bestsellers.",
    "Lost": "Send one low-cost reactivation mail; otherwise exclude from paid campaigns.",
}


def _segment_grid() -> dict[tuple[int, int], str]:
    """Expand ``SEGMENT_RULES`` to a lookup from (r_score, fm_score) to segment."""
    grid: dict[tuple[int, int], str] = {}
    for segment, (r_lo, r_hi), (fm_lo, fm_hi) in SEGMENT_RULES:
        for r in range(r_lo, r_hi + 1):
            for fm in range(fm_lo, fm_hi + 1):
                grid[(r, fm)] = segment
    return grid


def quintile_score(values: pd.Series, *, higher_is_better: bool = True) -> pd.Series:
    """Score values 1-5 by fifths of their rank, ties sharing a score.

    The rank of a value is one plus the number of values strictly worse (``rank(method="min")``), and
    ``score = floor(5 * (rank - 1) / n) + 1``: the number of whole fifths of the customers that are strictly
    worse, plus one. Only the values matter, never the index or the row order.

    Args:
        values: The metric to score, one value per customer; no missing values.
        higher_is_better: Whether a larger metric deserves a larger score; ``False`` for recency.

    Returns:
        ``int64`` scores in 1..5 on the index of ``values``. Equal values get equal scores and a better value
        never gets a lower score; the worst value scores 1. Bins hold about ``n/5`` customers when values are
        distinct; a tied group stays in one bin, which then grows (for ``n < 5`` or large ties some scores do
        not occur).

    Raises:
        ValueError: If ``values`` has missing values.
    """
    n = len(values)
    if n == 0:
        return pd.Series([], index=values.index, dtype="int64")
    metric = values.to_numpy(dtype="float64")
    if np.isnan(metric).any():
        raise ValueError("cannot score missing values")
    if not higher_is_better:
        metric = -metric
    # Values strictly below each value = its minimum rank - 1.
    worse = np.searchsorted(np.sort(metric), metric, side="left")
    return pd.Series(worse * 5 // n + 1, index=values.index, dtype="int64")


def assign_segment(r_score: pd.Series, fm_score: pd.Series) -> pd.Series:
    """Map R and FM scores to segment names with the grid in the module docstring.

    Args:
        r_score: Recency scores in 1..5.
        fm_score: Combined frequency-monetary scores in 1..5.

    Returns:
        Segment names on the index of ``r_score``.

    Raises:
        ValueError: If a score lies outside 1..5.
    """
    grid = _segment_grid()
    pairs = list(zip(r_score.astype(int), fm_score.astype(int), strict=True))
    unknown = {pair for pair in pairs if pair not in grid}
    if unknown:
        raise ValueError(f"scores outside 1..5: {sorted(unknown)[:5]}")
    return pd.Series([grid[pair] for pair in pairs], index=r_score.index, dtype="object")


def default_reference_date(cleaned: Lines) -> pd.Timestamp:
    """Return the day after the last invoice date in ``cleaned`` (midnight).

    Args:
        cleaned: ``staging.cleaned_transactions`` (a DataFrame or a ``pipeline.common.lines.StoredTable``).

    Returns:
        ``max(invoice_date).normalize() + 1 day``.
    """
    return invoice_date_range(cleaned)[1].normalize() + pd.Timedelta(days=1)


def checked_reference_date(last_purchase: pd.Timestamp, reference_date: object = None) -> pd.Timestamp:
    """The day recency is measured from: ``reference_date``, by default the day after the last purchase.

    Shared by the embedded and the Spark RFM, so that both engines measure from the same day.

    Args:
        last_purchase: The latest invoice date of the lines.
        reference_date: The requested day, or ``None``.

    Returns:
        The reference day, normalized to midnight.

    Raises:
        ValueError: If ``reference_date`` falls before the day of the last purchase.
    """
    last_date = pd.Timestamp(last_purchase).normalize()
    if reference_date is None:
        return last_date + pd.Timedelta(days=1)
    reference = pd.Timestamp(reference_date).normalize()
    if reference < last_date:
        raise ValueError(
            f"reference_date {reference.date()} is before the last purchase date {last_date.date()}"
        )
    return reference


def rfm_table(
    cleaned: Lines,
    *,
    rejected: Lines | None = None,
    reference_date: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """Compute recency, frequency, monetary value, scores and segment per registered customer.

    ``recency_days`` counts whole days from the date of the last purchase to the reference date, so with
    the default reference a customer who bought on the last day of the data has recency 1. ``frequency``
    counts distinct invoices, ``monetary`` sums line revenue (rounded to pence). ``tenure_days`` counts days
    from the first purchase date to the reference date (the customer's age), ``avg_basket_value`` is
    ``monetary / frequency`` and ``returns_value`` is the value of the customer's product cancellations
    (see ``pipeline.eda.summaries``), or missing when ``rejected`` is not given.

    Args:
        cleaned: ``staging.cleaned_transactions``; guest lines (missing ``customer_id``) are ignored.
        rejected: ``staging.rejected_rows`` for ``returns_value``; optional.
        reference_date: The "today" of the analysis; its time of day is dropped. Defaults to the day after
            the last invoice date in ``cleaned``.

    Returns:
        One row per customer, ordered by ``customer_id``, with the columns of
        ``pipeline.customers.schemas.CustomerRfm``.

    Raises:
        ValueError: If ``reference_date`` falls before the last purchase date in ``cleaned``.
    """
    reference = checked_reference_date(invoice_date_range(cleaned)[1], reference_date)

    sql = """
        SELECT
            customer_id,
            CAST(min(invoice_date) AS DATE) AS first_purchase_date,
            CAST(max(invoice_date) AS DATE) AS last_purchase_date,
            count(DISTINCT invoice) AS frequency,
            round(sum(revenue), 2) AS monetary
        FROM cleaned
        WHERE customer_id IS NOT NULL
        GROUP BY customer_id
        ORDER BY customer_id
    """
    rfm = query_frames(sql, cleaned=cleaned)
    rfm = rfm.astype(
        {
            "customer_id": "int64",
            "first_purchase_date": "datetime64[ns]",
            "last_purchase_date": "datetime64[ns]",
            "frequency": "int64",
        }
    )
    rfm["recency_days"] = (reference - rfm["last_purchase_date"]).dt.days.astype("int64")
    rfm["tenure_days"] = (reference - rfm["first_purchase_date"]).dt.days.astype("int64")
    rfm["avg_basket_value"] = rfm["monetary"] / rfm["frequency"]

    if rejected is None:
        rfm["returns_value"] = np.nan
    else:
        returns = product_cancellations(cleaned, rejected).dropna(subset=["customer_id"])
        per_customer = returns.groupby(returns["customer_id"].astype("int64"))["returned_value"].sum()
        rfm["returns_value"] = rfm["customer_id"].map(per_customer).fillna(0.0).round(2)

    rfm["r_score"] = quintile_score(rfm["recency_days"], higher_is_better=False)
    rfm["f_score"] = quintile_score(rfm["frequency"])
    rfm["m_score"] = quintile_score(rfm["monetary"])
    rfm["fm_score"] = (rfm["f_score"] + rfm["m_score"] + 1) // 2
    rfm["rfm_score"] = rfm["r_score"].astype(str) + rfm["f_score"].astype(str) + rfm["m_score"].astype(str)
    rfm["segment"] = assign_segment(rfm["r_score"], rfm["fm_score"])
    return rfm[
        [
            "customer_id",
            "recency_days",
            "frequency",
            "monetary",
            "r_score",
            "f_score",
            "m_score",
            "fm_score",
            "rfm_score",
            "segment",
            "first_purchase_date",
            "last_purchase_date",
            "tenure_days",
            "avg_basket_value",
            "returns_value",
        ]
    ]


def segment_summary(rfm: pd.DataFrame) -> pd.DataFrame:
    """Summarise customers and revenue per RFM segment, with a recommended marketing action.

    All eleven segments are listed in the order of ``SEGMENTS`` even when empty, so the table has a fixed
    shape for dashboards and period-to-period comparison; an empty segment has zero customers and revenue
    and missing averages.

    Args:
        rfm: The output of ``rfm_table``.

    Returns:
        Columns of ``pipeline.customers.schemas.SegmentSummary``: ``segment``, ``customers``, ``customer_share``,
        ``revenue`` (sum of ``monetary``), ``revenue_share``, ``avg_recency_days``, ``avg_frequency``,
        ``avg_monetary`` and ``marketing_action``.
    """
    grouped = rfm.groupby("segment").agg(
        customers=("customer_id", "size"),
        revenue=("monetary", "sum"),
        avg_recency_days=("recency_days", "mean"),
        avg_frequency=("frequency", "mean"),
        avg_monetary=("monetary", "mean"),
    )
    summary = grouped.reindex(list(SEGMENTS)).rename_axis("segment").reset_index()
    summary["customers"] = summary["customers"].fillna(0).astype("int64")
    summary["revenue"] = summary["revenue"].fillna(0.0)
    total_customers = summary["customers"].sum()
    total_revenue = summary["revenue"].sum()
    summary["customer_share"] = summary["customers"] / total_customers if total_customers else 0.0
    summary["revenue_share"] = summary["revenue"] / total_revenue if total_revenue else 0.0
    summary["marketing_action"] = summary["segment"].map(MARKETING_ACTIONS)
    return summary[
        [
            "segment",
            "customers",
            "customer_share",
            "revenue",
            "revenue_share",
            "avg_recency_days",
            "avg_frequency",
            "avg_monetary",
            "marketing_action",
        ]
    ]
