"""The ``marts`` schema: read-only views answering the questions analysts ask most, over the analytics tables.

What belongs here: the SQL of each view, its one-line description, its key and the descriptions of the
columns it computes; and the function that publishes them all in one DuckDB transaction with ``COMMENT ON``
for every view and column. Column comments are not written twice: a column passed through from a source
table keeps that table's comment (which the IO manager took from the table's Pandera model), so only
derived columns are described here. Dagster wiring lives in ``assets.marts``.

Views, not tables: they cost nothing to refresh, always reflect the latest tables, and every one reads
schema-qualified tables only, so they work from any connection whatever its search path.

The slow-mover rule. The reference date is the day after the last invoice date (as for RFM). A product is
*stalled* when it has not sold for more than ``stall_days`` days, and *falling* when it sold on at least
``min_previous_invoices`` invoices in the ``window_days`` before the last ``window_days`` and its revenue in
the last window is at most ``fall_ratio`` times the revenue of that previous window. Defaults: 90-day
windows, 60 days without a sale, revenue halved, at least 3 previous invoices (so one-off sales are not
called a trend).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import duckdb
import pandas as pd

from pipeline.common.sql import sql_literal

SCHEMA = "marts"


@dataclass(frozen=True)
class MartView:
    """One view of the ``marts`` schema.

    Attributes:
        name: View name (the table a BI tool sees: ``marts.<name>``).
        description: One line saying what a row is; becomes the view comment and the asset description.
        key: Columns that identify a row (unique in the view).
        sql: The ``SELECT`` defining the view; reads schema-qualified relations only.
        sources: Qualified relations the view reads, in the order their column comments are inherited.
        columns: Descriptions of the columns the view computes or renames.
    """

    name: str
    description: str
    key: tuple[str, ...]
    sql: str
    sources: tuple[str, ...]
    columns: Mapping[str, str] = field(default_factory=dict)

    @property
    def qualified_name(self) -> str:
        """``marts.<name>``."""
        return f"{SCHEMA}.{self.name}"


_CUSTOMER_360 = """
WITH home_country AS (
    SELECT customer_id, first(country ORDER BY invoices DESC, country) AS country
    FROM (
        SELECT customer_id, country, count(DISTINCT invoice) AS invoices
        FROM staging.cleaned_transactions
        WHERE customer_id IS NOT NULL
        GROUP BY customer_id, country
    )
    GROUP BY customer_id
), top_recommendations AS (
    SELECT customer_id,
           max(stock_code) FILTER (WHERE rank = 1) AS recommendation_1_stock_code,
           max(description) FILTER (WHERE rank = 1) AS recommendation_1_description,
           max(reason) FILTER (WHERE rank = 1) AS recommendation_1_reason,
           max(stock_code) FILTER (WHERE rank = 2) AS recommendation_2_stock_code,
           max(description) FILTER (WHERE rank = 2) AS recommendation_2_description,
           max(stock_code) FILTER (WHERE rank = 3) AS recommendation_3_stock_code,
           max(description) FILTER (WHERE rank = 3) AS recommendation_3_description
    FROM analytics.recommendations
    WHERE setting = '{setting}' AND rank <= 3
    GROUP BY customer_id
)
SELECT
    r.customer_id,
    h.country,
    r.segment,
    r.rfm_score,
    r.r_score,
    r.f_score,
    r.m_score,
    r.recency_days,
    r.frequency,
    r.monetary,
    r.avg_basket_value,
    r.returns_value,
    r.first_purchase_date,
    r.last_purchase_date,
    r.tenure_days,
    c.kmeans_cluster,
    kp.name AS kmeans_cluster_name,
    c.gmm_cluster,
    gp.name AS gmm_cluster_name,
    c.gmm_probability,
    p.purchase_probability_90d,
    p.predicted_revenue_90d,
    p.expected_value,
    n.degree AS network_degree,
    n.eigenvector_centrality AS network_eigenvector_centrality,
    n.community AS network_community,
    t.recommendation_1_stock_code,
    t.recommendation_1_description,
    t.recommendation_1_reason,
    t.recommendation_2_stock_code,
    t.recommendation_2_description,
    t.recommendation_3_stock_code,
    t.recommendation_3_description,
    s.marketing_action
FROM analytics.rfm AS r
LEFT JOIN home_country AS h USING (customer_id)
LEFT JOIN analytics.customer_clusters AS c USING (customer_id)
LEFT JOIN analytics.cluster_profiles AS kp ON kp.model = 'kmeans' AND kp.cluster = c.kmeans_cluster
LEFT JOIN analytics.cluster_profiles AS gp ON gp.model = 'gmm' AND gp.cluster = c.gmm_cluster
LEFT JOIN analytics.customer_predictions AS p USING (customer_id)
LEFT JOIN analytics.customer_centrality AS n ON n.node = r.customer_id
LEFT JOIN top_recommendations AS t USING (customer_id)
LEFT JOIN analytics.rfm_segment_summary AS s USING (segment)
"""

_SEGMENT_OVERVIEW = """
WITH predicted AS (
    SELECT r.segment,
           sum(p.purchase_probability_90d) AS expected_buyers_90d,
           avg(p.purchase_probability_90d) AS avg_purchase_probability_90d,
           sum(p.predicted_revenue_90d) AS predicted_revenue_90d,
           sum(p.expected_value) AS expected_value
    FROM analytics.rfm AS r
    JOIN analytics.customer_predictions AS p USING (customer_id)
    GROUP BY r.segment
), main_cluster AS (
    SELECT x.segment,
           first(cp.name ORDER BY x.customers DESC, x.cluster) AS main_kmeans_cluster_name,
           max(x.customers) / sum(x.customers) AS main_kmeans_cluster_share
    FROM analytics.segment_cluster_crosstab AS x
    JOIN analytics.cluster_profiles AS cp ON cp.model = x.model AND cp.cluster = x.cluster
    WHERE x.model = 'kmeans' AND x.customers > 0
    GROUP BY x.segment
)
SELECT
    s.segment,
    s.customers,
    s.customer_share,
    s.revenue,
    s.revenue_share,
    s.avg_recency_days,
    s.avg_frequency,
    s.avg_monetary,
    coalesce(p.expected_buyers_90d, 0) AS expected_buyers_90d,
    p.avg_purchase_probability_90d,
    coalesce(p.predicted_revenue_90d, 0) AS predicted_revenue_90d,
    coalesce(p.expected_value, 0) AS expected_value,
    m.main_kmeans_cluster_name,
    m.main_kmeans_cluster_share,
    s.marketing_action
FROM analytics.rfm_segment_summary AS s
LEFT JOIN predicted AS p USING (segment)
LEFT JOIN main_cluster AS m USING (segment)
"""

_TOP_RULES = """
WITH ranked AS (
    SELECT *,
           row_number() OVER (PARTITION BY country
                              ORDER BY lift DESC, confidence DESC, support DESC, rule_id) AS rule_rank
    FROM analytics.association_rules
    WHERE NOT is_redundant
)
SELECT
    rule_id,
    coalesce(country, 'All countries') AS scope,
    rule_rank,
    array_to_string(antecedent_descriptions, ' + ') AS if_bought,
    array_to_string(consequent_descriptions, ' + ') AS then_bought,
    antecedents,
    consequents,
    support,
    confidence,
    lift,
    leverage,
    conviction,
    zhangs_metric,
    country
FROM ranked
WHERE rule_rank <= {top_rules}
"""

_PRODUCT_360 = """
WITH reference AS (
    SELECT CAST(max(invoice_date) AS DATE) + 1 AS reference_date FROM staging.cleaned_transactions
), bounds AS (
    SELECT reference_date,
           CAST(reference_date - {window} AS TIMESTAMP) AS recent_start,
           CAST(reference_date - 2 * {window} AS TIMESTAMP) AS previous_start
    FROM reference
), lifetime AS (
    SELECT stock_code, min(invoice_date) AS first_sale_date, max(invoice_date) AS last_sale_date
    FROM staging.cleaned_transactions
    GROUP BY stock_code
), windows AS (
    -- Only the lines of the two windows are grouped (and their invoices counted distinct).
    SELECT
        t.stock_code,
        sum(t.revenue) FILTER (WHERE t.invoice_date >= b.recent_start) AS revenue_last,
        sum(t.revenue) FILTER (WHERE t.invoice_date < b.recent_start) AS revenue_previous,
        count(DISTINCT t.invoice) FILTER (WHERE t.invoice_date >= b.recent_start) AS invoices_last,
        count(DISTINCT t.invoice) FILTER (WHERE t.invoice_date < b.recent_start) AS invoices_previous
    FROM staging.cleaned_transactions AS t, bounds AS b
    WHERE t.invoice_date >= b.previous_start
    GROUP BY t.stock_code
), sales AS (
    SELECT
        l.stock_code,
        l.first_sale_date,
        l.last_sale_date,
        date_diff('day', CAST(l.last_sale_date AS DATE), b.reference_date) AS days_since_last_sale,
        round(coalesce(w.revenue_last, 0), 2) AS revenue_last_90d,
        round(coalesce(w.revenue_previous, 0), 2) AS revenue_previous_90d,
        coalesce(w.invoices_last, 0) AS invoices_last_90d,
        coalesce(w.invoices_previous, 0) AS invoices_previous_90d
    FROM lifetime AS l
    CROSS JOIN bounds AS b
    LEFT JOIN windows AS w USING (stock_code)
), bundles AS (
    SELECT stock_code, count(*) AS bundles, list(bundle_id ORDER BY bundle_id) AS bundle_ids,
           max(lift) AS best_bundle_lift
    FROM (SELECT unnest(items) AS stock_code, bundle_id, lift FROM analytics.product_bundles)
    GROUP BY stock_code
), recommended AS (
    SELECT stock_code, count(DISTINCT customer_id) AS recommended_to_customers
    FROM analytics.recommendations
    WHERE setting = '{setting}'
    GROUP BY stock_code
)
SELECT
    p.stock_code,
    p.description,
    p.revenue_rank,
    p.revenue,
    p.quantity,
    p.invoices,
    p.customers,
    p.returned_quantity,
    p.return_rate,
    s.first_sale_date,
    s.last_sale_date,
    s.days_since_last_sale,
    s.revenue_last_90d,
    s.revenue_previous_90d,
    s.invoices_last_90d,
    s.invoices_previous_90d,
    n.degree AS network_degree,
    n.weighted_degree AS network_weighted_degree,
    n.betweenness_centrality,
    n.eigenvector_centrality,
    n.community AS network_community,
    coalesce(b.bundles, 0) AS bundles,
    b.bundle_ids,
    b.best_bundle_lift,
    coalesce(r.recommended_to_customers, 0) AS recommended_to_customers
FROM analytics.eda_top_products AS p
JOIN sales AS s USING (stock_code)
LEFT JOIN analytics.product_centrality AS n ON n.node = p.stock_code
LEFT JOIN bundles AS b USING (stock_code)
LEFT JOIN recommended AS r USING (stock_code)
"""

_SLOW_MOVERS = """
SELECT
    stock_code,
    description,
    CASE WHEN days_since_last_sale > {stall_days} THEN 'stalled' ELSE 'falling' END AS status,
    last_sale_date,
    days_since_last_sale,
    revenue_previous_90d,
    revenue_last_90d,
    round(revenue_previous_90d - revenue_last_90d, 2) AS revenue_drop_90d,
    CASE WHEN revenue_previous_90d > 0 THEN revenue_last_90d / revenue_previous_90d - 1 END AS revenue_change,
    invoices_previous_90d,
    invoices_last_90d,
    revenue AS revenue_total,
    return_rate,
    bundles
FROM marts.product_360
WHERE days_since_last_sale > {stall_days}
   OR (invoices_previous_90d >= {min_previous_invoices}
       AND revenue_last_90d <= {fall_ratio} * revenue_previous_90d)
"""


def view_definitions(
    *,
    window_days: int = 90,
    stall_days: int = 60,
    fall_ratio: float = 0.5,
    min_previous_invoices: int = 3,
    top_rules: int = 100,
    recommendation_setting: str = "any",
) -> list[MartView]:
    """Define the views of the ``marts`` schema, in creation order (a view comes after the views it reads).

    Args:
        window_days: Length of the recent and previous sales windows of ``product_360`` and ``slow_movers``.
            Column names say ``90d`` whatever the value, so queries need not change with it.
        stall_days: A product with no sale for more than this many days is ``stalled``.
        fall_ratio: A product whose last-window revenue is at most this share of the previous window's is
            ``falling``.
        min_previous_invoices: Invoices a product needs in the previous window to be called ``falling``.
        top_rules: Non-redundant rules kept per scope (all countries, or one country) in ``top_rules``.
        recommendation_setting: Recommendation list shown in ``customer_360`` and counted in ``product_360``
            (``'any'`` or ``'new_only'``).

    Returns:
        The views, ``customer_360``, ``segment_overview``, ``top_rules``, ``product_360`` and ``slow_movers``.

    Raises:
        ValueError: When a threshold is out of range or the setting is unknown.
    """
    if window_days < 1 or stall_days < 1 or min_previous_invoices < 1 or top_rules < 1:
        raise ValueError("window_days, stall_days, min_previous_invoices and top_rules must be positive")
    if not 0 <= fall_ratio < 1:
        raise ValueError(f"fall_ratio must be in [0, 1), got {fall_ratio}")
    if recommendation_setting not in ("any", "new_only"):
        raise ValueError(
            f"recommendation_setting must be 'any' or 'new_only', got {recommendation_setting!r}"
        )
    # Views take no bind parameters, so the thresholds are written into the SQL; they are validated numbers
    # (int()/float() above and here) and one of two literal settings, never free text.
    numbers = {
        "window": int(window_days),
        "stall_days": int(stall_days),
        "fall_ratio": repr(float(fall_ratio)),
        "min_previous_invoices": int(min_previous_invoices),
        "top_rules": int(top_rules),
        "setting": recommendation_setting,
    }
    return [
        MartView(
            name="customer_360",
            description="One row per registered customer: RFM and segment, clusters, 90-day predictions, "
            "network position and top 3 recommendations.",
            key=("customer_id",),
            sql=_CUSTOMER_360.format(**numbers),
            sources=(
                "analytics.rfm",
                "analytics.customer_clusters",
                "analytics.customer_predictions",
                "analytics.customer_centrality",
                "analytics.recommendations",
                "analytics.rfm_segment_summary",
                "analytics.cluster_profiles",
                "staging.cleaned_transactions",
            ),
            columns={
                "country": "Country of most of the customer's invoices (ties: alphabetical).",
                "kmeans_cluster_name": "Readable name of the k-means cluster (analytics.cluster_profiles).",
                "gmm_cluster_name": "Readable name of the Gaussian-mixture component "
                "(analytics.cluster_profiles).",
                "network_degree": "Customers linked to this one in the customer network; null when not "
                "in it.",
                "network_eigenvector_centrality": "Eigenvector centrality in the customer network (largest "
                "component only).",
                "network_community": "Community of the customer in the customer network.",
                **_recommendation_columns(recommendation_setting),
            },
        ),
        MartView(
            name="segment_overview",
            description="One row per RFM segment: size, value, predicted next-90-day value, main cluster and "
            "the marketing action.",
            key=("segment",),
            sql=_SEGMENT_OVERVIEW.format(**numbers),
            sources=(
                "analytics.rfm_segment_summary",
                "analytics.rfm",
                "analytics.customer_predictions",
                "analytics.segment_cluster_crosstab",
                "analytics.cluster_profiles",
            ),
            columns={
                "expected_buyers_90d": "Sum of purchase probabilities: customers expected to buy in the "
                "next 90 days.",
                "avg_purchase_probability_90d": "Mean purchase probability of the segment's customers.",
                "predicted_revenue_90d": "Predicted revenue of the segment in the next 90 days, GBP.",
                "expected_value": "Sum of the customers' 12-month expected value (heuristic), GBP.",
                "main_kmeans_cluster_name": "The k-means cluster holding most of the segment's customers.",
                "main_kmeans_cluster_share": "Share of the segment's customers in that cluster.",
            },
        ),
        MartView(
            name="top_rules",
            description=f"The {top_rules} strongest non-redundant association rules per scope "
            "(all countries, or one country), ranked by lift, in words.",
            key=("rule_id",),
            sql=_TOP_RULES.format(**numbers),
            sources=("analytics.association_rules",),
            columns={
                "scope": "'All countries' or the country whose baskets the rule comes from.",
                "rule_rank": "Rank within the scope: lift, then confidence, then support, descending.",
                "if_bought": "Descriptions of the antecedent products, joined with ' + '.",
                "then_bought": "Descriptions of the consequent products, joined with ' + '.",
            },
        ),
        MartView(
            name="product_360",
            description="One row per product sold: sales, returns, recent trend, network centrality, "
            "bundles it belongs to and how often it is recommended.",
            key=("stock_code",),
            sql=_PRODUCT_360.format(**numbers),
            sources=(
                "analytics.eda_top_products",
                "analytics.product_centrality",
                "analytics.product_bundles",
                "analytics.recommendations",
                "staging.cleaned_transactions",
            ),
            columns={
                "first_sale_date": "Date and time of the product's first sales line.",
                "last_sale_date": "Date and time of the product's last sales line.",
                "days_since_last_sale": "Days from the last sale date to the reference date (the day "
                "after the last invoice date in the data).",
                "revenue_last_90d": f"Revenue in the {window_days} days before the reference date, GBP.",
                "revenue_previous_90d": f"Revenue in the {window_days} days before those, GBP.",
                "invoices_last_90d": f"Invoices holding the product in the last {window_days} days.",
                "invoices_previous_90d": f"Invoices holding the product in the {window_days} days before "
                "those.",
                "network_degree": "Products co-purchased with it in the product network; null when "
                "not in it.",
                "network_weighted_degree": "Jaccard affinity summed over its network edges.",
                "network_community": "Community of the product in the product network.",
                "bundles": "Number of published product bundles (analytics.product_bundles) holding it.",
                "bundle_ids": "Those bundles' bundle_id values.",
                "best_bundle_lift": "Highest lift among those bundles.",
                "recommended_to_customers": "Customers with the product in their top-k "
                f"('{recommendation_setting}' setting).",
            },
        ),
        MartView(
            name="slow_movers",
            description=f"Products whose sales stalled (no sale for over {stall_days} days) or fell (last "
            f"{window_days} days at most {fall_ratio:.0%} of the {window_days} before), for inventory "
            "decisions.",
            key=("stock_code",),
            sql=_SLOW_MOVERS.format(**numbers),
            sources=("marts.product_360",),
            columns={
                "status": f"'stalled' (no sale for over {stall_days} days) or 'falling' (revenue at most "
                f"{fall_ratio:.0%} of the previous window's).",
                "revenue_drop_90d": "revenue_previous_90d - revenue_last_90d, GBP.",
                "revenue_change": "revenue_last_90d / revenue_previous_90d - 1; null without previous "
                "revenue.",
                "revenue_total": "Revenue over the whole data, GBP.",
            },
        ),
    ]


def _recommendation_columns(setting: str) -> dict[str, str]:
    """Descriptions of the flattened top-3 recommendation columns of ``customer_360``."""
    described = {
        "recommendation_1_reason": "Why the first product is recommended, in words.",
    }
    for rank in (1, 2, 3):
        described[f"recommendation_{rank}_stock_code"] = (
            f"Product recommended at rank {rank} ('{setting}' setting)."
        )
        described[f"recommendation_{rank}_description"] = f"Description of the rank-{rank} product."
    return described


def column_comments(connection: duckdb.DuckDBPyConnection, relation: str) -> pd.DataFrame:
    """List the columns of a table or view with their types and comments.

    Args:
        connection: A connection to the warehouse.
        relation: ``schema.name`` of the table or view.

    Returns:
        ``column_name``, ``data_type`` and ``comment`` (null when none), in column order.
    """
    schema, name = relation.split(".")
    return connection.execute(
        "SELECT column_name, data_type, comment FROM duckdb_columns() "
        "WHERE schema_name = ? AND table_name = ? ORDER BY column_index",
        [schema, name],
    ).df()


def describe_columns(connection: duckdb.DuckDBPyConnection, view: MartView) -> pd.DataFrame:
    """Describe every column of a created view: its own description, else the same column's source comment.

    Args:
        connection: A connection where ``view`` and its sources exist.
        view: The view.

    Returns:
        ``column_name``, ``data_type`` and ``description`` (null when neither the view nor a source
        describes the column), in column order.
    """
    inherited: dict[str, str] = {}
    for source in reversed(view.sources):  # earlier sources win
        comments = column_comments(connection, source).dropna(subset=["comment"])
        inherited.update(zip(comments["column_name"], comments["comment"], strict=True))
    columns = column_comments(connection, view.qualified_name)
    columns["description"] = [
        view.columns.get(name) or inherited.get(name) for name in columns["column_name"]
    ]
    return columns[["column_name", "data_type", "description"]]


def publish_views(connection: duckdb.DuckDBPyConnection, views: list[MartView]) -> dict[str, pd.DataFrame]:
    """Create or replace every view, with its comment and column comments, in one transaction.

    Readers see either all the previous views or all the new ones; on any error nothing changes.

    Args:
        connection: A writable connection to the warehouse.
        views: Views in creation order (see :func:`view_definitions`).

    Returns:
        The column descriptions of each view (see :func:`describe_columns`), by view name.
    """
    described: dict[str, pd.DataFrame] = {}
    connection.execute("BEGIN TRANSACTION")
    try:
        connection.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
        for view in views:
            connection.execute(f"CREATE OR REPLACE VIEW {view.qualified_name} AS {view.sql}")
            connection.execute(f"COMMENT ON VIEW {view.qualified_name} IS {sql_literal(view.description)}")
            columns = describe_columns(connection, view)
            for name, description in zip(columns["column_name"], columns["description"], strict=True):
                if description:
                    connection.execute(
                        f'COMMENT ON COLUMN {view.qualified_name}."{name}" IS {sql_literal(description)}'
                    )
            described[view.name] = columns
        connection.execute("COMMIT")
    except Exception:
        connection.execute("ROLLBACK")
        raise
    return described


def view_profile(connection: duckdb.DuckDBPyConnection, view: MartView) -> dict[str, int]:
    """Count a view's rows and the rows sharing a key with another row.

    Args:
        connection: A connection where the view exists.
        view: The view.

    Returns:
        ``{"rows": ..., "duplicate_keys": ...}``; ``duplicate_keys`` is 0 when the key is unique.
    """
    key = ", ".join(f'"{column}"' for column in view.key)
    # One pass over the view; a row value is never null, so keys with nulls are counted like SELECT DISTINCT.
    rows, distinct = connection.execute(
        f"SELECT count(*), count(DISTINCT row({key})) FROM {view.qualified_name}"
    ).fetchall()[0]
    return {"rows": int(rows), "duplicate_keys": int(rows - distinct)}
