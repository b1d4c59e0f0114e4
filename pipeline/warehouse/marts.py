"""The ``marts`` schema: read-only views answering the questions analysts ask most, over the analytics tables.

What belongs here: the SQL of each view, its one-line description, its key and the descriptions of the
columns it computes; and the function that publishes them all in one DuckDB transaction with ``COMMENT ON``
for every view and column. Column comments are not written twice: a column passed through from a source
table keeps that table's comment (which the IO manager took from the table's Pandera model), so only
derived columns are described here. Dagster wiring lives in ``assets.marts``.

Two dialects: DuckDB (the warehouse file; the default) and Snowflake (``resources.snowflake``). Each view has
one text per dialect, both giving the same rows (``tests/pipeline/warehouse/test_snowflake_marts.py`` compares
them on fakesnow); the functions that publish, describe and profile the views take the dialect too.

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
from typing import Any, Protocol

import pandas as pd

from pipeline.common.sql import checked_identifier, sql_literal

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
WITH country_invoices AS (
    SELECT customer_id, country, count(DISTINCT invoice) AS invoices
    FROM staging.cleaned_transactions
    WHERE customer_id IS NOT NULL
    GROUP BY customer_id, country
), home_country AS (
    SELECT customer_id, country
    FROM country_invoices
    QUALIFY row_number() OVER (PARTITION BY customer_id ORDER BY invoices DESC, country) = 1
), top_recommendations AS (
    SELECT customer_id,
           max(CASE WHEN rank = 1 THEN stock_code END) AS recommendation_1_stock_code,
           max(CASE WHEN rank = 1 THEN description END) AS recommendation_1_description,
           max(CASE WHEN rank = 1 THEN reason END) AS recommendation_1_reason,
           max(CASE WHEN rank = 2 THEN stock_code END) AS recommendation_2_stock_code,
           max(CASE WHEN rank = 2 THEN description END) AS recommendation_2_description,
           max(CASE WHEN rank = 3 THEN stock_code END) AS recommendation_3_stock_code,
           max(CASE WHEN rank = 3 THEN description END) AS recommendation_3_description
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
LEFT JOIN home_country AS h ON h.customer_id = r.customer_id
LEFT JOIN analytics.customer_clusters AS c ON c.customer_id = r.customer_id
LEFT JOIN analytics.cluster_profiles AS kp ON kp.model = 'kmeans' AND kp.cluster = c.kmeans_cluster
LEFT JOIN analytics.cluster_profiles AS gp ON gp.model = 'gmm' AND gp.cluster = c.gmm_cluster
LEFT JOIN analytics.customer_predictions AS p ON p.customer_id = r.customer_id
LEFT JOIN analytics.customer_centrality AS n ON n.node = r.customer_id
LEFT JOIN top_recommendations AS t ON t.customer_id = r.customer_id
LEFT JOIN analytics.rfm_segment_summary AS s ON s.segment = r.segment
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

# Snowflake's dialect of the same views, written by hand: sqlglot's transpilation of the DuckDB text keeps
# ``first(... ORDER BY ...)``, which Snowflake lacks, and turns ``list()``/``unnest()`` into forms that do not
# run there. Differences: FILTER clauses become CASE inside the aggregate, ``first(x ORDER BY ...)`` a QUALIFY
# row_number() = 1, ``list``/``unnest`` ARRAY_AGG ... WITHIN GROUP and LATERAL FLATTEN, date arithmetic
# DATEADD/DATEDIFF, and integer ratios are computed in FLOAT (Snowflake divides NUMBERs to a fixed scale).
# customer_360 is written in the common subset (QUALIFY, CASE inside aggregates, ON joins all run in DuckDB),
# so the dialects share one text.
_SNOWFLAKE_CUSTOMER_360 = _CUSTOMER_360

_SNOWFLAKE_SEGMENT_OVERVIEW = """
WITH predicted AS (
    SELECT r.segment,
           sum(p.purchase_probability_90d) AS expected_buyers_90d,
           avg(p.purchase_probability_90d) AS avg_purchase_probability_90d,
           sum(p.predicted_revenue_90d) AS predicted_revenue_90d,
           sum(p.expected_value) AS expected_value
    FROM analytics.rfm AS r
    JOIN analytics.customer_predictions AS p ON p.customer_id = r.customer_id
    GROUP BY r.segment
), main_cluster AS (
    SELECT x.segment,
           cp.name AS main_kmeans_cluster_name,
           CAST(x.customers AS FLOAT) / sum(x.customers) OVER (PARTITION BY x.segment)
               AS main_kmeans_cluster_share
    FROM analytics.segment_cluster_crosstab AS x
    JOIN analytics.cluster_profiles AS cp ON cp.model = x.model AND cp.cluster = x.cluster
    WHERE x.model = 'kmeans' AND x.customers > 0
    QUALIFY row_number() OVER (PARTITION BY x.segment ORDER BY x.customers DESC, x.cluster) = 1
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
LEFT JOIN predicted AS p ON p.segment = s.segment
LEFT JOIN main_cluster AS m ON m.segment = s.segment
"""

# The descriptions are joined with LISTAGG over FLATTEN, ordered by element index, rather than with
# ARRAY_TO_STRING (same text in Snowflake): fakesnow cannot run ARRAY_TO_STRING on an ARRAY column, and this
# form lets the tests compare the view with DuckDB's. FLATTEN reads the base table, not the CTE (fakesnow
# cannot flatten a CTE's column).
_SNOWFLAKE_TOP_RULES = """
WITH ranked AS (
    SELECT rule_id, antecedents, consequents, antecedent_descriptions, consequent_descriptions,
           support, confidence, lift, leverage, conviction, zhangs_metric, country,
           row_number() OVER (PARTITION BY country
                              ORDER BY lift DESC, confidence DESC, support DESC, rule_id) AS rule_rank
    FROM analytics.association_rules
    WHERE NOT is_redundant
    QUALIFY rule_rank <= {top_rules}
), if_bought AS (
    SELECT a.rule_id, LISTAGG(f.value::VARCHAR, ' + ') WITHIN GROUP (ORDER BY f.index) AS if_bought
    FROM analytics.association_rules AS a, LATERAL FLATTEN(input => a.antecedent_descriptions) AS f
    WHERE a.rule_id IN (SELECT rule_id FROM ranked)
    GROUP BY a.rule_id
), then_bought AS (
    SELECT a.rule_id, LISTAGG(f.value::VARCHAR, ' + ') WITHIN GROUP (ORDER BY f.index) AS then_bought
    FROM analytics.association_rules AS a, LATERAL FLATTEN(input => a.consequent_descriptions) AS f
    WHERE a.rule_id IN (SELECT rule_id FROM ranked)
    GROUP BY a.rule_id
)
SELECT
    k.rule_id,
    coalesce(k.country, 'All countries') AS scope,
    k.rule_rank,
    i.if_bought,
    t.then_bought,
    k.antecedents,
    k.consequents,
    k.support,
    k.confidence,
    k.lift,
    k.leverage,
    k.conviction,
    k.zhangs_metric,
    k.country
FROM ranked AS k
LEFT JOIN if_bought AS i ON i.rule_id = k.rule_id
LEFT JOIN then_bought AS t ON t.rule_id = k.rule_id
"""

_SNOWFLAKE_PRODUCT_360 = """
WITH reference AS (
    SELECT DATEADD(day, 1, CAST(max(invoice_date) AS DATE)) AS reference_date
    FROM staging.cleaned_transactions
), bounds AS (
    SELECT reference_date,
           CAST(DATEADD(day, -{window}, reference_date) AS TIMESTAMP_NTZ) AS recent_start,
           CAST(DATEADD(day, -2 * {window}, reference_date) AS TIMESTAMP_NTZ) AS previous_start
    FROM reference
), lifetime AS (
    SELECT stock_code, min(invoice_date) AS first_sale_date, max(invoice_date) AS last_sale_date
    FROM staging.cleaned_transactions
    GROUP BY stock_code
), windows AS (
    -- Only the lines of the two windows are grouped (and their invoices counted distinct).
    SELECT
        t.stock_code,
        sum(CASE WHEN t.invoice_date >= b.recent_start THEN t.revenue END) AS revenue_last,
        sum(CASE WHEN t.invoice_date < b.recent_start THEN t.revenue END) AS revenue_previous,
        count(DISTINCT CASE WHEN t.invoice_date >= b.recent_start THEN t.invoice END) AS invoices_last,
        count(DISTINCT CASE WHEN t.invoice_date < b.recent_start THEN t.invoice END) AS invoices_previous
    FROM staging.cleaned_transactions AS t, bounds AS b
    WHERE t.invoice_date >= b.previous_start
    GROUP BY t.stock_code
), sales AS (
    SELECT
        l.stock_code,
        l.first_sale_date,
        l.last_sale_date,
        DATEDIFF(day, CAST(l.last_sale_date AS DATE), b.reference_date) AS days_since_last_sale,
        round(coalesce(w.revenue_last, 0), 2) AS revenue_last_90d,
        round(coalesce(w.revenue_previous, 0), 2) AS revenue_previous_90d,
        coalesce(w.invoices_last, 0) AS invoices_last_90d,
        coalesce(w.invoices_previous, 0) AS invoices_previous_90d
    FROM lifetime AS l
    CROSS JOIN bounds AS b
    LEFT JOIN windows AS w ON w.stock_code = l.stock_code
), bundles AS (
    SELECT f.value::VARCHAR AS stock_code, count(*) AS bundles,
           ARRAY_AGG(b.bundle_id) WITHIN GROUP (ORDER BY b.bundle_id) AS bundle_ids,
           max(b.lift) AS best_bundle_lift
    FROM analytics.product_bundles AS b, LATERAL FLATTEN(input => b.items) AS f
    GROUP BY f.value::VARCHAR
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
JOIN sales AS s ON s.stock_code = p.stock_code
LEFT JOIN analytics.product_centrality AS n ON n.node = p.stock_code
LEFT JOIN bundles AS b ON b.stock_code = p.stock_code
LEFT JOIN recommended AS r ON r.stock_code = p.stock_code
"""

# Only names and numbers differ from DuckDB's text; one copy would hide nothing, so the dialects share it.
_SNOWFLAKE_SLOW_MOVERS = _SLOW_MOVERS

_SQL = {
    "duckdb": {
        "customer_360": _CUSTOMER_360,
        "segment_overview": _SEGMENT_OVERVIEW,
        "top_rules": _TOP_RULES,
        "product_360": _PRODUCT_360,
        "slow_movers": _SLOW_MOVERS,
    },
    "snowflake": {
        "customer_360": _SNOWFLAKE_CUSTOMER_360,
        "segment_overview": _SNOWFLAKE_SEGMENT_OVERVIEW,
        "top_rules": _SNOWFLAKE_TOP_RULES,
        "product_360": _SNOWFLAKE_PRODUCT_360,
        "slow_movers": _SNOWFLAKE_SLOW_MOVERS,
    },
}
DIALECTS = tuple(_SQL)


def view_definitions(
    *,
    window_days: int = 90,
    stall_days: int = 60,
    fall_ratio: float = 0.5,
    min_previous_invoices: int = 3,
    top_rules: int = 100,
    recommendation_setting: str = "any",
    dialect: str = "duckdb",
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
        dialect: SQL dialect of the views: ``"duckdb"`` (the warehouse file) or ``"snowflake"``. Both give
            the same rows; only the text differs.

    Returns:
        The views, ``customer_360``, ``segment_overview``, ``top_rules``, ``product_360`` and ``slow_movers``.

    Raises:
        ValueError: When a threshold is out of range, or the setting or the dialect is unknown.
    """
    sql = _dialect_sql(dialect)
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
            sql=sql["customer_360"].format(**numbers),
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
            sql=sql["segment_overview"].format(**numbers),
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
            sql=sql["top_rules"].format(**numbers),
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
            sql=sql["product_360"].format(**numbers),
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
            sql=sql["slow_movers"].format(**numbers),
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


def _dialect_sql(dialect: str) -> dict[str, str]:
    """The view SQL templates of ``dialect``, or ValueError naming the dialects known."""
    if dialect not in _SQL:
        raise ValueError(f"unknown SQL dialect {dialect!r}: expected one of {', '.join(DIALECTS)}")
    return _SQL[dialect]


class SqlConnection(Protocol):
    """What these functions need of a connection: DuckDB's ``execute(sql, params)``.

    A ``duckdb.DuckDBPyConnection``, or ``resources.snowflake.SnowflakeSession`` over the Snowflake connector
    (``?`` placeholders in both).
    """

    def execute(self, query: str, parameters: object = ..., /) -> Any:  # noqa: ANN401 - DuckDB or Snowflake
        """Run one statement; the result has ``fetchall()``, ``fetchone()`` and ``df()``."""


def _native(connection: SqlConnection) -> SqlConnection:
    """The connection taking Snowflake SQL as written (a ``SnowflakeSession`` translates DuckDB SQL)."""
    return getattr(connection, "native", connection)


def column_comments(connection: SqlConnection, relation: str, *, dialect: str = "duckdb") -> pd.DataFrame:
    """List the columns of a table or view with their types and comments.

    Args:
        connection: A connection to the warehouse.
        relation: ``schema.name`` of the table or view.
        dialect: ``"duckdb"`` reads ``duckdb_columns()``; ``"snowflake"`` reads the database's
            ``information_schema.columns`` (names stored upper-case, returned lower-case).

    Returns:
        ``column_name``, ``data_type`` and ``comment`` (null when none), in column order.
    """
    _dialect_sql(dialect)
    schema, name = relation.split(".")
    if dialect == "snowflake":
        columns = _native(connection).execute(
            "SELECT column_name, data_type, comment FROM information_schema.columns "
            "WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
            [schema.upper(), name.upper()],
        ).df()
        columns.columns = ["column_name", "data_type", "comment"]
        columns["column_name"] = columns["column_name"].str.lower()
        return columns
    return connection.execute(
        "SELECT column_name, data_type, comment FROM duckdb_columns() "
        "WHERE schema_name = ? AND table_name = ? ORDER BY column_index",
        [schema, name],
    ).df()


def view_comment(connection: SqlConnection, relation: str, *, dialect: str = "duckdb") -> str | None:
    """The comment of a view (``None`` when it has none or does not exist).

    Args:
        connection: A connection to the warehouse.
        relation: ``schema.name`` of the view.
        dialect: ``"duckdb"`` reads ``duckdb_views()``; ``"snowflake"`` the database's
            ``information_schema.views``.
    """
    _dialect_sql(dialect)
    schema, name = relation.split(".")
    if dialect == "snowflake":
        found = _native(connection).execute(
            "SELECT comment FROM information_schema.views WHERE table_schema = ? AND table_name = ?",
            [schema.upper(), name.upper()],
        ).fetchall()
    else:
        found = connection.execute(
            "SELECT comment FROM duckdb_views() WHERE schema_name = ? AND view_name = ?", [schema, name]
        ).fetchall()
    return found[0][0] if found else None


def describe_columns(connection: SqlConnection, view: MartView, *, dialect: str = "duckdb") -> pd.DataFrame:
    """Describe every column of a created view: its own description, else the same column's source comment.

    Args:
        connection: A connection where ``view`` and its sources exist.
        view: The view.
        dialect: SQL dialect of the warehouse (see :func:`column_comments`).

    Returns:
        ``column_name``, ``data_type`` and ``description`` (null when neither the view nor a source
        describes the column), in column order.
    """
    inherited: dict[str, str] = {}
    for source in reversed(view.sources):  # earlier sources win
        comments = column_comments(connection, source, dialect=dialect).dropna(subset=["comment"])
        inherited.update(zip(comments["column_name"], comments["comment"], strict=True))
    columns = column_comments(connection, view.qualified_name, dialect=dialect)
    columns["description"] = [
        view.columns.get(name) or inherited.get(name) for name in columns["column_name"]
    ]
    return columns[["column_name", "data_type", "description"]]


def publish_views(
    connection: SqlConnection, views: list[MartView], *, dialect: str = "duckdb"
) -> dict[str, pd.DataFrame]:
    """Create or replace every view, with its comment and column comments.

    In DuckDB, in one transaction: readers see either all the previous views or all the new ones; on any
    error nothing changes. Snowflake commits each DDL statement by itself, so there each view is replaced
    atomically (``CREATE OR REPLACE``) but a failure can leave the earlier views new and the later ones old;
    the column comments are written with ``COMMENT ON COLUMN``.

    Args:
        connection: A writable connection to the warehouse.
        views: Views in creation order (see :func:`view_definitions`), in the same dialect.
        dialect: SQL dialect of the warehouse and of ``views``.

    Returns:
        The column descriptions of each view (see :func:`describe_columns`), by view name.
    """
    _dialect_sql(dialect)
    if dialect == "snowflake":
        return _publish_snowflake_views(connection, views)
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


def _publish_snowflake_views(connection: SqlConnection, views: list[MartView]) -> dict[str, pd.DataFrame]:
    """:func:`publish_views` in Snowflake: each view with its comment, then the comments of its columns."""
    described: dict[str, pd.DataFrame] = {}
    connection = _native(connection)
    connection.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
    for view in views:
        connection.execute(
            f"CREATE OR REPLACE VIEW {view.qualified_name} COMMENT = {sql_literal(view.description)} "
            f"AS {view.sql}"
        )
        columns = describe_columns(connection, view, dialect="snowflake")
        for name, description in zip(columns["column_name"], columns["description"], strict=True):
            if description:
                connection.execute(
                    f"COMMENT ON COLUMN {view.qualified_name}.{checked_identifier(name).upper()} "
                    f"IS {sql_literal(description)}"
                )
        described[view.name] = columns
    return described


def view_profile(connection: SqlConnection, view: MartView, *, dialect: str = "duckdb") -> dict[str, int]:
    """Count a view's rows and the rows sharing a key with another row.

    Args:
        connection: A connection where the view exists.
        view: The view.
        dialect: SQL dialect of the warehouse.

    Returns:
        ``{"rows": ..., "duplicate_keys": ...}``; ``duplicate_keys`` is 0 when the key is unique.
    """
    _dialect_sql(dialect)
    if dialect == "snowflake":
        # Snowflake has no row(...) values and its count(DISTINCT a, b) skips keys holding a null.
        key = ", ".join(checked_identifier(column).upper() for column in view.key)
        rows, distinct = _native(connection).execute(
            f"SELECT (SELECT count(*) FROM {view.qualified_name}), "
            f"(SELECT count(*) FROM (SELECT DISTINCT {key} FROM {view.qualified_name}))"
        ).fetchall()[0]
        return {"rows": int(rows), "duplicate_keys": int(rows - distinct)}
    key = ", ".join(f'"{column}"' for column in view.key)
    # One pass over the view; a row value is never null, so keys with nulls are counted like SELECT DISTINCT.
    rows, distinct = connection.execute(
        f"SELECT count(*), count(DISTINCT row({key})) FROM {view.qualified_name}"
    ).fetchall()[0]
    return {"rows": int(rows), "duplicate_keys": int(rows - distinct)}
