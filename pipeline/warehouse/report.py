"""The customer-intelligence report: one self-contained HTML page with the headline numbers, plots and tables.

What belongs here: the SQL that reads what the report shows from the warehouse (:func:`load_report_data`), and
the rendering of those frames into HTML (:func:`render_report`), with the figures of each room's ``plots``
embedded as base64 PNG so the file can be mailed or opened offline (figures already drawn elsewhere from the
same tables can be passed in ready-made instead of being drawn twice). No Dagster imports (the asset in
``assets.report`` writes the file) and no analytics: every number comes from a warehouse table or view.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping

import duckdb
import pandas as pd
from matplotlib.figure import Figure

from pipeline.baskets import plots as basket_plots
from pipeline.common.figures import png_data_uri
from pipeline.customers import plots as customer_plots
from pipeline.eda import plots as eda_plots
from pipeline.network import plots as network_plots
from pipeline.recommend import plots as recommend_plots
from pipeline.warehouse import marts

SECTIONS: tuple[tuple[str, str], ...] = (
    ("overview", "Headline numbers"),
    ("eda", "Sales: months, countries, products, cohorts"),
    ("rfm", "RFM segments"),
    ("clusters", "Customer clusters"),
    ("predictions", "Next-90-day predictions"),
    ("rules", "Association rules and bundles"),
    ("network", "Product network"),
    ("svd", "Customer x product SVD"),
    ("recommender", "Recommendations"),
    ("inventory", "Inventory: slow movers"),
)

# The figures of the report, by name, in page order.
FIGURES: tuple[str, ...] = (
    "monthly_sales",
    "country_sales",
    "cohort_retention",
    "rfm_distributions",
    "segment_summary",
    "model_selection",
    "cluster_scatter",
    "calibration",
    "rules_scatter",
    "product_network",
    "svd_variance",
    "recommender_metrics",
)

REPORT_QUERIES: dict[str, str] = {
    "headline": """
        SELECT min(invoice_date) AS first_invoice_date,
               max(invoice_date) AS last_invoice_date,
               round(sum(revenue), 2) AS revenue,
               count(DISTINCT invoice) AS invoices,
               count(*) AS lines,
               count(DISTINCT customer_id) AS customers,
               count(DISTINCT stock_code) AS products,
               count(DISTINCT country) AS countries,
               count(DISTINCT invoice) FILTER (WHERE customer_id IS NULL) / count(DISTINCT invoice)
                   AS guest_invoice_share,
               (SELECT count(*) FROM staging.rejected_rows) AS rejected_lines,
               (SELECT round(sum(returns_value), 2) FROM analytics.eda_monthly_sales) AS returns_value
        FROM staging.cleaned_transactions
    """,
    "monthly": "SELECT * FROM analytics.eda_monthly_sales ORDER BY month",
    "countries": "SELECT * FROM analytics.eda_country_sales ORDER BY revenue_rank",
    "top_products": "SELECT * FROM analytics.eda_top_products ORDER BY revenue_rank LIMIT 10",
    "cohorts": "SELECT * FROM analytics.eda_cohort_retention ORDER BY cohort_month, months_since_first",
    "rfm": "SELECT * FROM analytics.rfm ORDER BY customer_id",
    "segment_summary": "SELECT * FROM analytics.rfm_segment_summary",
    "segment_overview": "SELECT * FROM marts.segment_overview ORDER BY revenue DESC, segment",
    "model_selection": "SELECT * FROM analytics.cluster_model_selection ORDER BY model, covariance_type, k",
    "clusters": "SELECT * FROM analytics.customer_clusters ORDER BY customer_id",
    "cluster_profiles": "SELECT * FROM analytics.cluster_profiles ORDER BY model DESC, cluster",
    "prediction_evaluation": "SELECT * FROM analytics.prediction_evaluation",
    "predictions_total": """
        SELECT count(*) AS customers,
               sum(purchase_probability_90d) AS expected_buyers_90d,
               sum(predicted_revenue_90d) AS predicted_revenue_90d,
               sum(expected_value) AS expected_value
        FROM analytics.customer_predictions
    """,
    "top_customers": """
        SELECT customer_id, country, segment, kmeans_cluster_name, purchase_probability_90d,
               predicted_revenue_90d, expected_value, recommendation_1_description
        FROM marts.customer_360
        ORDER BY expected_value DESC NULLS LAST, customer_id
        LIMIT 10
    """,
    # Only the all-countries rules are plotted and described; the per-country ones are only counted.
    "rules": "SELECT * FROM analytics.association_rules WHERE country IS NULL ORDER BY rule_id",
    "country_rules": "SELECT count(*) AS rules FROM analytics.association_rules WHERE country IS NOT NULL",
    "top_rules": """
        SELECT if_bought, then_bought, support, confidence, lift
        FROM marts.top_rules WHERE country IS NULL ORDER BY rule_rank LIMIT 10
    """,
    "bundles": """
        SELECT descriptions, size, support, confidence, lift,
               bundle_revenue, invoices_with_all
        FROM analytics.product_bundles WHERE country IS NULL ORDER BY bundle_id LIMIT 10
    """,
    "product_edges": "SELECT * FROM analytics.product_network_edges",
    "product_centrality": "SELECT * FROM analytics.product_centrality",
    "central_products": """
        SELECT c.node AS stock_code, p.description, c.degree, c.betweenness_centrality,
               c.eigenvector_centrality, c.community
        FROM analytics.product_centrality AS c
        LEFT JOIN analytics.eda_top_products AS p ON p.stock_code = c.node
        ORDER BY c.betweenness_centrality DESC, c.node
        LIMIT 10
    """,
    "descriptions": "SELECT stock_code, description FROM analytics.eda_top_products",
    "customer_network": """
        SELECT count(*) AS customers, count(DISTINCT component) AS components,
               count(DISTINCT community) AS communities,
               (SELECT count(*) FROM analytics.customer_network_edges) AS edges
        FROM analytics.customer_centrality
    """,
    "svd": "SELECT * FROM analytics.customer_product_svd ORDER BY component",
    "recommender_evaluation": "SELECT * FROM analytics.recommender_evaluation",
    "example_recommendations": """
        SELECT r.customer_id, r.rank, r.description, r.source, r.reason
        FROM analytics.recommendations AS r
        WHERE r.setting = 'any' AND r.rank <= 5 AND r.customer_id = (
            SELECT customer_id FROM marts.customer_360
            ORDER BY expected_value DESC NULLS LAST, customer_id LIMIT 1)
        ORDER BY r.rank
    """,
    "slow_mover_counts": """
        SELECT status, count(*) AS products, round(sum(revenue_previous_90d), 2) AS revenue_previous_90d,
               round(sum(revenue_last_90d), 2) AS revenue_last_90d
        FROM marts.slow_movers GROUP BY status ORDER BY status
    """,
    "slow_movers": """
        SELECT stock_code, description, status, days_since_last_sale, revenue_previous_90d, revenue_last_90d,
               revenue_change, return_rate, bundles
        FROM marts.slow_movers
        ORDER BY revenue_previous_90d DESC, revenue_total DESC, stock_code
        LIMIT 15
    """,
}

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; color: #1d2430; margin: 0;
       background: #f6f7f9; }
main { max-width: 1120px; margin: 0 auto; padding: 24px 32px 64px; background: #fff; }
h1 { margin-bottom: 4px; } h2 { border-bottom: 2px solid #dde3ea; padding-bottom: 4px; margin-top: 40px; }
p.meta { color: #5b6675; margin-top: 0; }
nav ol { columns: 2; padding-left: 20px; }
.cards { display: flex; flex-wrap: wrap; gap: 12px; }
.card { flex: 1 1 160px; border: 1px solid #dde3ea; border-radius: 6px; padding: 10px 14px; }
.card .value { font-size: 1.4em; font-weight: 600; } .card .label { color: #5b6675; font-size: 0.85em; }
table.data { border-collapse: collapse; font-size: 0.85em; margin: 8px 0 16px; width: 100%; }
table.data th { background: #eef2f6; text-align: left; padding: 4px 6px; }
table.data td { border-top: 1px solid #e5e9ee; padding: 3px 6px; vertical-align: top; }
figure { margin: 12px 0; } figure img { max-width: 100%; border: 1px solid #eef2f6; }
figcaption { color: #5b6675; font-size: 0.85em; }
"""


class _Plots:
    """Data URIs of the report's figures: the ready-made one when given, else drawn at ``dpi``."""

    def __init__(self, ready: Mapping[str, str], dpi: int) -> None:
        unknown = set(ready) - set(FIGURES)
        if unknown:
            raise ValueError(f"unknown report figures {sorted(unknown)}; known: {FIGURES}")
        self.ready = ready
        self.dpi = dpi

    def __call__(self, name: str, draw: Callable[[], Figure]) -> str:
        return self.ready.get(name) or png_data_uri(draw(), dpi=self.dpi)


def load_report_data(
    connection: duckdb.DuckDBPyConnection, *, dialect: str = "duckdb"
) -> dict[str, pd.DataFrame]:
    """Run every report query against the warehouse.

    Args:
        connection: A connection to a warehouse holding the analytics tables and the marts views (DuckDB's,
            or a ``resources.snowflake.SnowflakeSession``, which runs the same queries translated).
        dialect: The warehouse's dialect, for the catalog query reading the slow movers' rule.

    Returns:
        One frame per key of :data:`REPORT_QUERIES`, and ``slow_mover_rule`` (the comment of
        ``marts.slow_movers``, which states the rule).
    """
    data = {name: connection.execute(sql).df() for name, sql in REPORT_QUERIES.items()}
    data["slow_mover_rule"] = pd.DataFrame(
        {"comment": [marts.view_comment(connection, "marts.slow_movers", dialect=dialect)]})
    # Joined here rather than with array_to_string, whose list argument warehouses store differently.
    bundles = data["bundles"]
    bundles.insert(0, "bundle", [" + ".join(map(str, names)) for names in bundles.pop("descriptions")])
    return data


def _gbp(value: float) -> str:
    return "n/a" if pd.isna(value) else f"£{value:,.0f}"


def _pct(value: float) -> str:
    return "n/a" if pd.isna(value) else f"{100 * value:.1f}%"


def _int(value: float) -> str:
    return "n/a" if pd.isna(value) else f"{value:,.0f}"


def _num(value: float) -> str:
    return "n/a" if pd.isna(value) else f"{value:,.3f}"


def _text(value: object) -> str:
    return "" if value is None or (not isinstance(value, str | list) and pd.isna(value)) else str(value)


def _one(value: float) -> str:
    return "n/a" if pd.isna(value) else f"{value:,.1f}"


_FORMATS: dict[str, Callable[[object], str]] = {
    "gbp": _gbp,
    "pct": _pct,
    "int": _int,
    "num": _num,
    "one": _one,
    "text": _text,
}


def _table(frame: pd.DataFrame, columns: Mapping[str, tuple[str, str]]) -> str:
    """Render chosen columns as an HTML table: ``{column: (header, format)}``, formats from ``_FORMATS``."""
    if frame.empty:
        return "<p><em>No rows.</em></p>"
    shown = pd.DataFrame(
        {header: frame[column].map(_FORMATS[kind]) for column, (header, kind) in columns.items()}
    )
    return shown.to_html(index=False, escape=True, border=0, classes="data")


def _figure(uri: str, caption: str) -> str:
    text = html.escape(caption)
    return f'<figure><img src="{uri}" alt="{text}"><figcaption>{text}</figcaption></figure>'


def _paragraph(text: str) -> str:
    return f"<p>{html.escape(text)}</p>"


def _cards(items: list[tuple[str, str]]) -> str:
    cards = "".join(
        f'<div class="card"><div class="value">{html.escape(value)}</div>'
        f'<div class="label">{html.escape(label)}</div></div>'
        for label, value in items
    )
    return f'<div class="cards">{cards}</div>'


def _metric(evaluation: pd.DataFrame, model: str, metric: str) -> float:
    """One value of the long prediction-evaluation table (NaN when absent)."""
    rows = evaluation[(evaluation["model"] == model) & (evaluation["metric"] == metric)]
    return float(rows["value"].iloc[0]) if len(rows) else float("nan")


def _overview(data: Mapping[str, pd.DataFrame]) -> str:
    head = data["headline"].iloc[0]
    totals = data["predictions_total"].iloc[0]
    metrics = data["recommender_evaluation"]
    hybrid = metrics[(metrics["model"] == "hybrid") & (metrics["setting"] == "any")]
    first, last = pd.Timestamp(head["first_invoice_date"]), pd.Timestamp(head["last_invoice_date"])
    period = f"{first:%d %b %Y} to {last:%d %b %Y}"
    cards = _cards(
        [
            ("revenue (GBP)", _gbp(head["revenue"])),
            ("invoices", _int(head["invoices"])),
            ("registered customers", _int(head["customers"])),
            ("products", _int(head["products"])),
            ("countries", _int(head["countries"])),
            ("returns value (GBP)", _gbp(head["returns_value"])),
            ("expected buyers, next 90 days", _int(totals["expected_buyers_90d"])),
            ("predicted revenue, next 90 days", _gbp(totals["predicted_revenue_90d"])),
            ("hybrid recommender hit rate", _pct(hybrid["hit_rate_at_k"].iloc[0]) if len(hybrid) else "n/a"),
        ]
    )
    text = (
        f"Sales from {period}: {_int(head['lines'])} clean sales lines on {_int(head['invoices'])} invoices; "
        f"{_pct(head['guest_invoice_share'])} of invoices were placed by guests (no customer number), and "
        f"{_int(head['rejected_lines'])} source lines were set aside (cancellations, non-product codes, "
        "duplicates and invalid values)."
    )
    return cards + _paragraph(text)


def _eda(data: Mapping[str, pd.DataFrame], plots: _Plots) -> str:
    monthly, countries = data["monthly"], data["countries"]
    best = monthly.loc[monthly["revenue"].idxmax()]
    top = countries.iloc[0]
    text = (
        f"The best month was {pd.Timestamp(best['month']):%B %Y} with {_gbp(best['revenue'])} of revenue. "
        f"{top['country']} is the largest market with {_pct(top['revenue_share'])} of revenue across "
        f"{len(countries)} countries."
    )
    return "".join(
        [
            _paragraph(text),
            _figure(
                plots("monthly_sales", lambda: eda_plots.monthly_sales_figure(monthly)),
                "Monthly revenue and average basket, new vs returning customers, cancellation rate.",
            ),
            _figure(
                plots("country_sales", lambda: eda_plots.country_sales_figure(countries)),
                "Revenue by country (log scale) with each country's share.",
            ),
            "<h3>Top products by revenue</h3>",
            _table(
                data["top_products"],
                {
                    "stock_code": ("stock code", "text"),
                    "description": ("description", "text"),
                    "revenue": ("revenue", "gbp"),
                    "quantity": ("units", "int"),
                    "customers": ("customers", "int"),
                    "return_rate": ("return rate", "pct"),
                },
            ),
            _figure(
                plots("cohort_retention", lambda: eda_plots.cohort_heatmap_figure(data["cohorts"])),
                "Share of each monthly acquisition cohort buying again in later months.",
            ),
        ]
    )


def _rfm(data: Mapping[str, pd.DataFrame], plots: _Plots) -> str:
    overview = data["segment_overview"]
    leader = overview.iloc[0] if len(overview) else None
    text = (
        f"{_int(len(data['rfm']))} registered customers are scored 1-5 on recency, frequency and monetary "
        "value and placed in eleven named segments."
    )
    if leader is not None:
        text += (
            f" {leader['segment']} bring the most revenue: {_pct(leader['revenue_share'])} of it from "
            f"{_pct(leader['customer_share'])} of customers."
        )
    return "".join(
        [
            _paragraph(text),
            _figure(
                plots("rfm_distributions", lambda: customer_plots.rfm_distributions_figure(data["rfm"])),
                "Distributions of recency, frequency and monetary value, and segment sizes.",
            ),
            _figure(
                plots(
                    "segment_summary",
                    lambda: customer_plots.segment_summary_figure(data["segment_summary"]),
                ),
                "Each segment's share of customers and of revenue.",
            ),
            _table(
                overview,
                {
                    "segment": ("segment", "text"),
                    "customers": ("customers", "int"),
                    "customer_share": ("customer share", "pct"),
                    "revenue_share": ("revenue share", "pct"),
                    "avg_recency_days": ("avg recency (days)", "int"),
                    "expected_buyers_90d": ("expected buyers 90d", "one"),
                    "marketing_action": ("marketing action", "text"),
                },
            ),
        ]
    )


def _clusters(data: Mapping[str, pd.DataFrame], plots: _Plots) -> str:
    profiles = data["cluster_profiles"]
    kmeans = profiles[profiles["model"] == "kmeans"]
    k = len(kmeans)
    text = (
        f"K-means and a Gaussian mixture on log-scaled, standardised RFM features, with k = {k} chosen "
        "from the curves below. Clusters are numbered by mean spend, 0 the highest."
    )
    if k:
        first = kmeans.iloc[0]
        text += (
            f" Cluster 0 ({first['name']}) holds {_int(first['customers'])} customers and "
            f"{_pct(first['revenue_share'])} of revenue."
        )
    return "".join(
        [
            _paragraph(text),
            _figure(
                plots(
                    "model_selection",
                    lambda: customer_plots.model_selection_figure(
                        data["model_selection"], chosen_k=k or None
                    ),
                ),
                "Model-selection curves against k; the dashed line marks the chosen k.",
            ),
            _figure(
                plots(
                    "cluster_scatter",
                    lambda: customer_plots.cluster_scatter_figure(data["rfm"], data["clusters"], profiles),
                ),
                "Customers by recency, frequency and spend, coloured by k-means cluster.",
            ),
            _table(
                profiles,
                {
                    "model": ("model", "text"),
                    "cluster": ("cluster", "int"),
                    "name": ("name", "text"),
                    "customers": ("customers", "int"),
                    "mean_recency_days": ("mean recency (days)", "int"),
                    "mean_frequency": ("mean invoices", "num"),
                    "mean_monetary": ("mean spend", "gbp"),
                    "revenue_share": ("revenue share", "pct"),
                },
            ),
        ]
    )


def _predictions(data: Mapping[str, pd.DataFrame], plots: _Plots) -> str:
    evaluation = data["prediction_evaluation"]
    headline = evaluation[~evaluation["metric"].str.startswith("calibration")]
    table = headline.pivot_table(index=["target", "metric"], columns="model", values="value").reset_index()
    columns = {"target": ("target", "text"), "metric": ("metric", "text")}
    columns |= {
        model: (model, "num")
        for model in ("model", "baseline_recency", "baseline_last_90d")
        if model in table.columns
    }
    text = (
        f"Purchase model ROC AUC {_num(_metric(evaluation, 'model', 'roc_auc'))} against "
        f"{_num(_metric(evaluation, 'baseline_recency', 'roc_auc'))} for the recency-only baseline; "
        f"revenue MAE {_gbp(_metric(evaluation, 'model', 'mae'))} against "
        f"{_gbp(_metric(evaluation, 'baseline_last_90d', 'mae'))} "
        "for 'next 90 days = last 90 days', on a temporal holdout."
    )
    return "".join(
        [
            _paragraph(text),
            _table(table, columns),
            _figure(
                plots("calibration", lambda: customer_plots.calibration_figure(evaluation)),
                "Calibration of the purchase probability on the holdout window.",
            ),
            "<h3>Customers with the highest expected value</h3>",
            _table(
                data["top_customers"],
                {
                    "customer_id": ("customer", "int"),
                    "country": ("country", "text"),
                    "segment": ("segment", "text"),
                    "kmeans_cluster_name": ("cluster", "text"),
                    "purchase_probability_90d": ("P(buy, 90d)", "pct"),
                    "predicted_revenue_90d": ("revenue 90d", "gbp"),
                    "expected_value": ("12-month value", "gbp"),
                    "recommendation_1_description": ("top recommendation", "text"),
                },
            ),
        ]
    )


def _rules(data: Mapping[str, pd.DataFrame], plots: _Plots) -> str:
    rules = data["rules"]
    country_rules = int(data["country_rules"]["rules"].iloc[0])
    text = (
        f"{_int(len(rules))} rules over all countries "
        f"({_int((~rules['is_redundant'].astype(bool)).sum())} non-redundant), "
        f"{_int(country_rules)} more for single countries. Bundles are the products of the "
        "strongest non-redundant rules."
    )
    return "".join(
        [
            _paragraph(text),
            _figure(
                plots("rules_scatter", lambda: basket_plots.rules_scatter(rules)),
                "Rules by support and confidence, coloured by lift (all countries).",
            ),
            "<h3>Strongest rules</h3>",
            _table(
                data["top_rules"],
                {
                    "if_bought": ("if bought", "text"),
                    "then_bought": ("then bought", "text"),
                    "support": ("support", "pct"),
                    "confidence": ("confidence", "pct"),
                    "lift": ("lift", "num"),
                },
            ),
            "<h3>Product bundles</h3>",
            _table(
                data["bundles"],
                {
                    "bundle": ("bundle", "text"),
                    "lift": ("lift", "num"),
                    "confidence": ("confidence", "pct"),
                    "bundle_revenue": ("revenue of its products", "gbp"),
                    "invoices_with_all": ("invoices with all", "int"),
                },
            ),
        ]
    )


def _network(data: Mapping[str, pd.DataFrame], plots: _Plots) -> str:
    edges, centrality = data["product_edges"], data["product_centrality"]
    customers = data["customer_network"].iloc[0]
    descriptions = dict(
        zip(data["descriptions"]["stock_code"], data["descriptions"]["description"].fillna(""), strict=True)
    )
    text = (
        f"{_int(len(centrality))} products joined by {_int(len(edges))} co-purchase edges; betweenness "
        "treats a higher Jaccard affinity (shared / either invoices) as closer. The customer network links "
        f"{_int(customers['customers'])} customers by {_int(customers['edges'])} edges in "
        f"{_int(customers['communities'])} communities."
    )
    return "".join(
        [
            _paragraph(text),
            _figure(
                plots(
                    "product_network",
                    lambda: network_plots.product_network_figure(
                        edges, centrality, descriptions=descriptions
                    ),
                ),
                "The core of the product network, coloured by community.",
            ),
            "<h3>Products that bridge the catalogue (betweenness)</h3>",
            _table(
                data["central_products"],
                {
                    "stock_code": ("stock code", "text"),
                    "description": ("description", "text"),
                    "degree": ("neighbours", "int"),
                    "betweenness_centrality": ("betweenness", "num"),
                    "eigenvector_centrality": ("eigenvector", "num"),
                    "community": ("community", "int"),
                },
            ),
        ]
    )


def _svd(data: Mapping[str, pd.DataFrame], plots: _Plots) -> str:
    variance = data["svd"]
    total = variance["cumulative_explained_variance_ratio"].iloc[-1] if len(variance) else float("nan")
    text = (
        f"{len(variance)} components of the weighted customer x product matrix explain {_pct(total)} "
        "of its variance."
    )
    return "".join(
        [
            _paragraph(text),
            _figure(
                plots("svd_variance", lambda: recommend_plots.explained_variance_figure(variance)),
                "Variance explained per component and cumulatively.",
            ),
            _table(
                variance.head(10),
                {
                    "component": ("component", "int"),
                    "singular_value": ("singular value", "num"),
                    "explained_variance_ratio": ("explained", "pct"),
                    "cumulative_explained_variance_ratio": ("cumulative", "pct"),
                },
            ),
        ]
    )


def _recommender(data: Mapping[str, pd.DataFrame], plots: _Plots) -> str:
    metrics = data["recommender_evaluation"]
    parts = []
    for setting in ("any", "new_only"):
        rows = metrics[metrics["setting"] == setting].set_index("model")
        if "hybrid" in rows.index and len(rows) > 1:
            others = rows.drop(index="hybrid")["hit_rate_at_k"]
            parts.append(
                f"{setting}: hybrid hit rate {_pct(rows.loc['hybrid', 'hit_rate_at_k'])}, best single "
                f"component {others.idxmax()} {_pct(others.max())}"
            )
    text = "Temporal holdout, top-k lists. " + "; ".join(parts) + "." if parts else "No evaluation rows."
    return "".join(
        [
            _paragraph(text),
            _figure(
                plots("recommender_metrics", lambda: recommend_plots.recommender_metrics_figure(metrics)),
                "Holdout metrics of every model in both settings.",
            ),
            _table(
                metrics,
                {
                    "setting": ("setting", "text"),
                    "model": ("model", "text"),
                    "n_customers": ("customers", "int"),
                    "hit_rate_at_k": ("hit rate", "num"),
                    "precision_at_k": ("precision", "num"),
                    "recall_at_k": ("recall", "num"),
                    "ndcg_at_k": ("nDCG", "num"),
                    "catalogue_coverage": ("coverage", "pct"),
                },
            ),
            "<h3>Example: the customer with the highest expected value</h3>",
            _table(
                data["example_recommendations"],
                {
                    "customer_id": ("customer", "int"),
                    "rank": ("rank", "int"),
                    "description": ("product", "text"),
                    "source": ("source", "text"),
                    "reason": ("reason", "text"),
                },
            ),
        ]
    )


def _inventory(data: Mapping[str, pd.DataFrame]) -> str:
    counts = data["slow_mover_counts"].set_index("status")
    stalled = int(counts["products"].get("stalled", 0))
    falling = int(counts["products"].get("falling", 0))
    rule = data["slow_mover_rule"]["comment"]
    text = (
        f"{_int(stalled)} products stalled and {_int(falling)} falling. "
        f"{rule.iloc[0] if len(rule) and rule.iloc[0] else ''} "
        "Candidates for markdowns, bundling with strong sellers, or no reorder; the full list is the view "
        "marts.slow_movers."
    )
    return "".join(
        [
            _paragraph(text),
            _table(
                data["slow_movers"],
                {
                    "stock_code": ("stock code", "text"),
                    "description": ("description", "text"),
                    "status": ("status", "text"),
                    "days_since_last_sale": ("days since sale", "int"),
                    "revenue_previous_90d": ("revenue prev. 90d", "gbp"),
                    "revenue_last_90d": ("revenue last 90d", "gbp"),
                    "revenue_change": ("change", "pct"),
                    "bundles": ("in bundles", "int"),
                },
            ),
        ]
    )


def render_report(
    data: Mapping[str, pd.DataFrame],
    *,
    generated_at: pd.Timestamp,
    title: str = "Customer intelligence report",
    dpi: int = 80,
    figures: Mapping[str, str] | None = None,
) -> str:
    """Render the report as one self-contained HTML document.

    Args:
        data: The frames of :func:`load_report_data`.
        generated_at: Timestamp printed under the title.
        title: Page title.
        dpi: Resolution of the plots drawn here.
        figures: Ready-made PNG data URIs by name of :data:`FIGURES`, embedded instead of drawing those
            figures again (matplotlib is most of the cost of a report); they must show what the report
            would draw from ``data``.

    Returns:
        The HTML text; images are inline ``data:`` URIs, styles inline, no external requests.

    Raises:
        ValueError: If ``figures`` names a figure the report does not have.
    """
    plots = _Plots(figures or {}, dpi)
    bodies = {
        "overview": _overview(data),
        "eda": _eda(data, plots),
        "rfm": _rfm(data, plots),
        "clusters": _clusters(data, plots),
        "predictions": _predictions(data, plots),
        "rules": _rules(data, plots),
        "network": _network(data, plots),
        "svd": _svd(data, plots),
        "recommender": _recommender(data, plots),
        "inventory": _inventory(data),
    }
    contents = "".join(f'<li><a href="#{key}">{html.escape(heading)}</a></li>' for key, heading in SECTIONS)
    sections = "".join(
        f'<section id="{key}"><h2>{html.escape(heading)}</h2>{bodies[key]}</section>'
        for key, heading in SECTIONS
    )
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{_CSS}</style></head>'
        f"<body><main><h1>{html.escape(title)}</h1>"
        f'<p class="meta">Generated {pd.Timestamp(generated_at):%Y-%m-%d %H:%M} from the DuckDB warehouse. '
        "Money in GBP.</p>"
        f"<nav><ol>{contents}</ol></nav>{sections}</main></body></html>\n"
    )
