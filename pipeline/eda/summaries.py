"""Exploratory sales tables: monthly trend, countries, products and customer cohorts.

What belongs here: pure functions that turn ``staging.cleaned_transactions`` (and, where returns matter,
``staging.rejected_rows``) into small descriptive tables. Their SQL runs where the lines are, through
``pipeline.common.lines.query_frames`` (shared with RFM and prediction). What does not belong here: customer
scoring (``pipeline.customers.rfm_segments``), models (``pipeline.customers.clustering``,
``pipeline.customers.prediction``) and figures (``pipeline.eda.plots``).

Returns are the rejected lines with ``reason == "cancellation"`` (invoice starting with ``C``, negative
quantity). Only cancellations of *products* count as returns: a cancelled line counts when its stock code
(upper-cased, trimmed) appears among the sold lines of ``cleaned``. This keeps cancelled postage, manual
adjustments and discounts (``POST``, ``M``, ``D``...) out of return figures, exactly as they are kept out of
sales.
"""

from __future__ import annotations

import pandas as pd

from pipeline.common.lines import (
    CANCELLATION_REASON,
    PRODUCT_CANCELLATIONS_SQL,
    Lines,
    as_nanoseconds,
    empty_rejected,
    query_frames,
)


def monthly_sales(cleaned: Lines, rejected: Lines | None = None) -> pd.DataFrame:
    """Summarise sales, customers and returns per calendar month.

    ``new_customers`` are registered customers whose first purchase *in the data* falls in the month, so in
    the first month of the data every customer is new (the history before it is unknown).
    ``returning_customers = customers - new_customers``. Guest lines count for revenue, lines and invoices,
    not for customers.

    ``cancellation_rate = cancelled_lines / (cancelled_lines + lines)``: the share of product invoice lines in
    the month that were cancellation lines (see the module docstring for which cancellations count). A
    cancellation is dated by its own invoice date, not by the sale it reverses, which the data does not link.

    Args:
        cleaned: ``staging.cleaned_transactions``.
        rejected: ``staging.rejected_rows``; ``None`` means no return figures are known and the
            cancellation columns are zero.

    Returns:
        One row per month with at least one sale line, ordered by ``month`` (first day of the month), with
        the columns of ``pipeline.eda.schemas.MonthlySales``.
    """
    sql = (
        PRODUCT_CANCELLATIONS_SQL
        + """,
        first_month AS (
            SELECT customer_id, min(date_trunc('month', invoice_date)) AS first_month
            FROM cleaned WHERE customer_id IS NOT NULL GROUP BY customer_id
        ),
        sold AS (
            SELECT
                date_trunc('month', c.invoice_date) AS month,
                round(sum(c.revenue), 2) AS revenue,
                count(DISTINCT c.invoice) AS invoices,
                count(*) AS lines,
                count(DISTINCT c.customer_id) AS customers,
                count(DISTINCT CASE WHEN f.first_month = date_trunc('month', c.invoice_date)
                                    THEN c.customer_id END) AS new_customers
            FROM cleaned AS c LEFT JOIN first_month AS f USING (customer_id)
            GROUP BY 1
        ),
        cancelled AS (
            SELECT date_trunc('month', invoice_date) AS month,
                   count(*) AS cancelled_lines,
                   round(sum(returned_value), 2) AS returns_value
            FROM product_cancellations GROUP BY 1
        )
        SELECT
            s.month,
            s.revenue,
            s.invoices,
            s.lines,
            s.customers,
            s.new_customers,
            s.customers - s.new_customers AS returning_customers,
            s.revenue / s.invoices AS avg_basket_value,
            coalesce(x.cancelled_lines, 0) AS cancelled_lines,
            coalesce(x.cancelled_lines, 0) / (coalesce(x.cancelled_lines, 0) + s.lines) AS cancellation_rate,
            coalesce(x.returns_value, 0.0) AS returns_value
        FROM sold AS s LEFT JOIN cancelled AS x USING (month)
        ORDER BY s.month
    """
    )
    out = query_frames(
        sql,
        {"reason": CANCELLATION_REASON},
        cleaned=cleaned,
        rejected=empty_rejected() if rejected is None else rejected,
    )
    ints = ["invoices", "lines", "customers", "new_customers", "returning_customers", "cancelled_lines"]
    return as_nanoseconds(out, ["month"]).astype({c: "int64" for c in ints})


def country_sales(cleaned: Lines) -> pd.DataFrame:
    """Summarise sales per country, ranked by revenue.

    Args:
        cleaned: ``staging.cleaned_transactions``.

    Returns:
        One row per country with ``revenue``, ``customers`` (distinct registered customers), ``invoices``,
        ``lines``, ``revenue_share`` (of total revenue) and ``revenue_rank`` (1 = largest; ties broken by
        country name), ordered by rank. Columns of ``pipeline.eda.schemas.CountrySales``.
    """
    sql = """
        SELECT
            country,
            round(sum(revenue), 2) AS revenue,
            count(DISTINCT customer_id) AS customers,
            count(DISTINCT invoice) AS invoices,
            count(*) AS lines,
            round(sum(revenue), 2) / sum(round(sum(revenue), 2)) OVER () AS revenue_share,
            row_number() OVER (ORDER BY round(sum(revenue), 2) DESC, country) AS revenue_rank
        FROM cleaned
        GROUP BY country
        ORDER BY revenue_rank
    """
    out = query_frames(sql, cleaned=cleaned)
    return out.astype({"customers": "int64", "invoices": "int64", "lines": "int64", "revenue_rank": "int64"})


def top_products(cleaned: Lines, rejected: Lines | None = None) -> pd.DataFrame:
    """Rank every sold product by revenue, with its returns.

    ``description`` is the most frequent non-null description of the code among sold lines (ties broken
    alphabetically); a code never described gets ``None``. ``returned_quantity`` sums the absolute quantity
    of the code's cancellation lines and ``return_rate = returned_quantity / quantity``. The rate can exceed
    1 when goods bought before the data starts are returned inside it.

    Args:
        cleaned: ``staging.cleaned_transactions``.
        rejected: ``staging.rejected_rows``; ``None`` means no returns are known (zero returns).

    Returns:
        One row per ``stock_code`` in ``cleaned``, ordered by ``revenue_rank`` (1 = largest revenue; ties
        broken by stock code). Columns of ``pipeline.eda.schemas.TopProducts``.
    """
    sql = (
        PRODUCT_CANCELLATIONS_SQL
        + """,
        described AS (
            SELECT stock_code, description,
                   row_number() OVER (PARTITION BY stock_code ORDER BY count(*) DESC, description) AS pick
            FROM cleaned WHERE description IS NOT NULL
            GROUP BY stock_code, description
        ),
        sold AS (
            SELECT stock_code,
                   round(sum(revenue), 2) AS revenue,
                   sum(quantity) AS quantity,
                   count(DISTINCT invoice) AS invoices,
                   count(DISTINCT customer_id) AS customers
            FROM cleaned GROUP BY stock_code
        ),
        returned AS (
            SELECT stock_code, sum(returned_quantity) AS returned_quantity
            FROM product_cancellations GROUP BY stock_code
        )
        SELECT
            s.stock_code,
            d.description,
            s.revenue,
            s.quantity,
            s.invoices,
            s.customers,
            coalesce(r.returned_quantity, 0) AS returned_quantity,
            coalesce(r.returned_quantity, 0) / s.quantity AS return_rate,
            row_number() OVER (ORDER BY s.revenue DESC, s.stock_code) AS revenue_rank
        FROM sold AS s
        LEFT JOIN described AS d ON d.stock_code = s.stock_code AND d.pick = 1
        LEFT JOIN returned AS r ON r.stock_code = s.stock_code
        ORDER BY revenue_rank
    """
    )
    out = query_frames(
        sql,
        {"reason": CANCELLATION_REASON},
        cleaned=cleaned,
        rejected=empty_rejected() if rejected is None else rejected,
    )
    ints = ["quantity", "invoices", "customers", "returned_quantity", "revenue_rank"]
    return out.astype({c: "int64" for c in ints}).astype({"description": "object"})


def cohort_retention(cleaned: Lines) -> pd.DataFrame:
    """Monthly retention of acquisition cohorts, in long form.

    A customer's cohort is the month of their first purchase in the data; they are active in a month when
    they have at least one invoice in it. Every (cohort, months since first) pair up to the last month of
    the data is present, with zero activity where nobody bought, so a missing cell never hides a zero.

    Args:
        cleaned: ``staging.cleaned_transactions``; guest lines are ignored.

    Returns:
        Columns of ``pipeline.eda.schemas.CohortRetention``: ``cohort_month``, ``months_since_first``
        (0 = acquisition month), ``active_customers``, ``cohort_size`` and
        ``retention_rate = active_customers / cohort_size``; ordered by cohort then month.
    """
    # The grid's month offsets come from a recursive CTE rather than unnest(range(...)), so that the same
    # text also runs in Snowflake (pipeline.common.dialects), which has no range table function.
    sql = """
        WITH RECURSIVE customer_months AS (
            SELECT DISTINCT customer_id, date_trunc('month', invoice_date) AS month
            FROM cleaned WHERE customer_id IS NOT NULL
        ),
        cohorts AS (
            SELECT customer_id, min(month) AS cohort_month FROM customer_months GROUP BY customer_id
        ),
        sizes AS (
            SELECT cohort_month, count(*) AS cohort_size FROM cohorts GROUP BY cohort_month
        ),
        activity AS (
            SELECT c.cohort_month, datediff('month', c.cohort_month, m.month) AS months_since_first,
                   count(*) AS active_customers
            FROM customer_months AS m JOIN cohorts AS c USING (customer_id)
            GROUP BY 1, 2
        ),
        span AS (
            SELECT min(month) AS first_month, max(month) AS last_month FROM customer_months
        ),
        offsets AS (
            SELECT 0 AS months_since_first
            UNION ALL
            SELECT o.months_since_first + 1
            FROM offsets AS o, span
            WHERE o.months_since_first < datediff('month', span.first_month, span.last_month)
        ),
        grid AS (
            SELECT s.cohort_month, s.cohort_size, o.months_since_first
            FROM sizes AS s, span, offsets AS o
            WHERE o.months_since_first <= datediff('month', s.cohort_month, span.last_month)
        )
        SELECT g.cohort_month, g.months_since_first,
               coalesce(a.active_customers, 0) AS active_customers,
               g.cohort_size,
               coalesce(a.active_customers, 0) / g.cohort_size AS retention_rate
        FROM grid AS g LEFT JOIN activity AS a USING (cohort_month, months_since_first)
        ORDER BY g.cohort_month, g.months_since_first
    """
    out = query_frames(sql, cleaned=cleaned)
    ints = ["months_since_first", "active_customers", "cohort_size"]
    return as_nanoseconds(out, ["cohort_month"]).astype({c: "int64" for c in ints})
