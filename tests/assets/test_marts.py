"""The marts views and the example queries, on a warehouse materialized from small synthetic data."""

import re
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from pipeline.warehouse import marts

QUERIES = sorted((Path(__file__).resolve().parents[2] / "queries").glob("*.sql"))


@pytest.fixture(scope="module")
def warehouse(full_warehouse) -> str:
    assert full_warehouse.result.success
    return full_warehouse.database


@pytest.fixture
def conn(warehouse):
    with duckdb.connect(warehouse, read_only=True) as connection:
        yield connection


def test_marts_checks_pass(full_warehouse):
    result = full_warehouse.result
    evaluations = [e for e in result.get_asset_check_evaluations() if e.asset_key.path[0] == "marts"]
    assert {(e.asset_key.path[1], e.check_name) for e in evaluations} == {
        (view.name, check)
        for view in marts.view_definitions()
        for check in ("key_is_unique", "columns_described")
    }
    assert all(e.passed for e in evaluations)


@pytest.mark.parametrize("view", marts.view_definitions(), ids=lambda view: view.name)
def test_view_is_documented_non_empty_and_keyed(conn, view):
    kind, comment = conn.execute(
        "SELECT table_type, (SELECT comment FROM duckdb_views() WHERE schema_name = ? AND view_name = ?) "
        "FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
        ["marts", view.name, "marts", view.name],
    ).fetchall()[0]
    assert (kind, comment) == ("VIEW", view.description)
    rows = conn.execute(f"SELECT count(*) FROM {view.qualified_name}").fetchall()[0][0]
    assert rows > 0
    key = ", ".join(view.key)
    duplicated = conn.execute(
        f"SELECT count(*) FROM (SELECT {key} FROM {view.qualified_name} GROUP BY ALL HAVING count(*) > 1)"
    ).fetchall()[0][0]
    assert duplicated == 0
    columns = marts.column_comments(conn, view.qualified_name)
    assert columns["comment"].notna().all(), list(columns.loc[columns["comment"].isna(), "column_name"])


@pytest.mark.parametrize("view", marts.view_definitions(), ids=lambda view: view.name)
def test_view_sources_are_exactly_the_relations_its_sql_reads(view):
    """The asset's deps come from ``sources``, so they must list every relation the SQL reads, qualified."""
    read = set(re.findall(r"\b(?:raw|staging|analytics|marts)\.[a-z_0-9]+", view.sql))
    assert read == set(view.sources)
    unqualified = re.findall(r"\b(?:FROM|JOIN)\s+([a-z_]+)\b(?!\.)", view.sql)
    ctes = set(re.findall(r"\b([a-z_]+) AS \(", view.sql))
    assert set(unqualified) <= ctes, "views must read schema-qualified tables (or their own CTEs)"


def test_customer_360_has_every_customer_and_their_top_three(conn):
    customers = conn.execute("SELECT customer_id FROM analytics.rfm ORDER BY 1").df()["customer_id"]
    view = conn.execute("SELECT * FROM marts.customer_360 ORDER BY customer_id").df()
    assert view["customer_id"].tolist() == customers.tolist()
    recs = (
        conn.execute(
            "SELECT customer_id, rank, stock_code FROM analytics.recommendations "
            "WHERE setting = 'any' AND rank <= 3"
        )
        .df()
        .pivot(index="customer_id", columns="rank", values="stock_code")
    )
    shown = view.set_index("customer_id")[[f"recommendation_{rank}_stock_code" for rank in (1, 2, 3)]]
    expected = recs.reindex(shown.index).set_axis(shown.columns, axis=1)
    pd.testing.assert_frame_equal(shown.fillna(""), expected.fillna(""), check_dtype=False)
    predictions = conn.execute("SELECT * FROM analytics.customer_predictions ORDER BY customer_id").df()
    merged = view.merge(predictions, on="customer_id", suffixes=("", "_table"))
    np.testing.assert_allclose(merged["expected_value"], merged["expected_value_table"])


def _sales_windows(conn):
    """Sales lines, the reference day (after the last invoice day), and masks of the last and previous 90 days."""
    sales = conn.execute(
        "SELECT stock_code, invoice, invoice_date, revenue FROM staging.cleaned_transactions"
    ).df()
    reference = sales["invoice_date"].max().normalize() + pd.Timedelta(days=1)
    recent = sales["invoice_date"] >= reference - pd.Timedelta(days=90)
    previous = (sales["invoice_date"] >= reference - pd.Timedelta(days=180)) & ~recent
    return sales, reference, recent, previous


def test_slow_movers_follow_the_documented_rule(conn):
    """Recompute the rule in pandas from the sales lines and compare product by product."""
    sales, reference, recent, previous = _sales_windows(conn)
    per_product = pd.DataFrame(
        {
            "days": (reference - sales.groupby("stock_code")["invoice_date"].max().dt.normalize()).dt.days,
            "last": sales[recent].groupby("stock_code")["revenue"].sum(),
            "prev": sales[previous].groupby("stock_code")["revenue"].sum(),
            "prev_invoices": sales[previous].groupby("stock_code")["invoice"].nunique(),
        }
    ).fillna(0)
    stalled = per_product["days"] > 60
    falling = (per_product["prev_invoices"] >= 3) & (
        per_product["last"].round(2) <= 0.5 * per_product["prev"].round(2)
    )
    expected = pd.Series(np.where(stalled, "stalled", "falling"), index=per_product.index)[stalled | falling]
    view = (
        conn.execute("SELECT stock_code, status FROM marts.slow_movers")
        .df()
        .set_index("stock_code")["status"]
    )
    assert view.sort_index().to_dict() == expected.sort_index().to_dict()


def test_product_360_sales_windows_match_pandas(conn):
    sales, reference, recent, previous = _sales_windows(conn)
    by_code = sales.groupby("stock_code")
    expected = pd.DataFrame(
        {
            "first_sale_date": by_code["invoice_date"].min(),
            "last_sale_date": by_code["invoice_date"].max(),
            "days_since_last_sale": (reference - by_code["invoice_date"].max().dt.normalize()).dt.days,
            "revenue_last_90d": sales[recent].groupby("stock_code")["revenue"].sum(),
            "revenue_previous_90d": sales[previous].groupby("stock_code")["revenue"].sum(),
            "invoices_last_90d": sales[recent].groupby("stock_code")["invoice"].nunique(),
            "invoices_previous_90d": sales[previous].groupby("stock_code")["invoice"].nunique(),
        }
    ).fillna(0)
    view = conn.execute(f"SELECT stock_code, {', '.join(expected.columns)} FROM marts.product_360").df()
    view = view.set_index("stock_code").sort_index()
    expected = expected.loc[view.index]
    for column in ("first_sale_date", "last_sale_date", "days_since_last_sale", "invoices_last_90d",
                   "invoices_previous_90d"):
        assert (view[column] == expected[column]).all(), column
    for column in ("revenue_last_90d", "revenue_previous_90d"):
        np.testing.assert_allclose(view[column], expected[column], atol=0.005 + 1e-9)


def test_view_profile_counts_duplicate_keys_like_select_distinct():
    view = marts.MartView(name="v", description="x", key=("a", "b"), sql="", sources=())
    with duckdb.connect() as connection:
        connection.execute("CREATE SCHEMA marts")
        connection.execute(
            "CREATE VIEW marts.v AS SELECT * FROM (VALUES (1, 'x'), (1, 'x'), (1, NULL), (NULL, NULL), "
            "(NULL, NULL), (2, 'y')) AS t(a, b)"
        )
        distinct = connection.execute("SELECT count(*) FROM (SELECT DISTINCT a, b FROM marts.v)").fetchall()
        distinct = distinct[0][0]
        assert marts.view_profile(connection, view) == {"rows": 6, "duplicate_keys": 6 - distinct}
        assert distinct == 4


def test_product_360_lists_the_bundles_of_each_product(conn):
    bundles = conn.execute("SELECT bundle_id, items FROM analytics.product_bundles").df().explode("items")
    expected = bundles.groupby("items")["bundle_id"].apply(sorted)
    view = (
        conn.execute("SELECT stock_code, bundles, bundle_ids FROM marts.product_360")
        .df()
        .set_index("stock_code")
    )
    in_bundles = view[view["bundles"] > 0]
    assert set(in_bundles.index) == set(expected.index)
    for code, ids in expected.items():
        assert list(in_bundles.loc[code, "bundle_ids"]) == ids
        assert in_bundles.loc[code, "bundles"] == len(ids)
    products = conn.execute("SELECT count(*) FROM analytics.eda_top_products").fetchall()[0][0]
    assert len(view) == products


@pytest.mark.parametrize("path", QUERIES, ids=lambda path: path.stem)
def test_example_query_answers(conn, path):
    text = path.read_text()
    assert text.startswith("--"), "each query opens with the business question it answers"
    result = conn.execute(text).df()
    assert len(result) > 0


def test_queries_cover_each_business_question():
    topics = {path.stem.split("_")[0] for path in QUERIES}
    assert {"targeting", "bundles", "retention", "recommendations", "inventory"} <= topics


def test_publish_is_all_or_nothing(warehouse, tmp_path):
    """A failing view leaves every previous view and comment as it was."""
    copy = tmp_path / "copy.duckdb"
    copy.write_bytes(Path(warehouse).read_bytes())
    views = marts.view_definitions(stall_days=5)
    broken = marts.MartView(
        name="broken", description="x", key=("x",), sql="SELECT * FROM analytics.missing", sources=()
    )
    with duckdb.connect(str(copy)) as connection:
        before = connection.execute(
            "SELECT view_name, sql, comment FROM duckdb_views() WHERE schema_name = 'marts' ORDER BY 1"
        ).fetchall()
        with pytest.raises(duckdb.CatalogException):
            marts.publish_views(connection, [*views, broken])
        after = connection.execute(
            "SELECT view_name, sql, comment FROM duckdb_views() WHERE schema_name = 'marts' ORDER BY 1"
        ).fetchall()
    assert after == before


@pytest.mark.parametrize(
    "settings",
    [
        {"window_days": 0},
        {"stall_days": -1},
        {"fall_ratio": 1.0},
        {"fall_ratio": -0.1},
        {"min_previous_invoices": 0},
        {"top_rules": 0},
        {"recommendation_setting": "any'; DROP TABLE x; --"},
    ],
)
def test_view_definitions_reject_bad_settings(settings):
    with pytest.raises(ValueError):
        marts.view_definitions(**settings)
