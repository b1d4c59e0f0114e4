import io
from contextlib import contextmanager

import duckdb
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from pipeline.common import lines as sales_lines
from pipeline.eda.schemas import CohortRetention, CountrySales, MonthlySales, TopProducts
from pipeline.eda import plots, summaries

LINE = {
    "invoice": "500001",
    "stock_code": "85123A",
    "description": "WHITE HANGING HEART T-LIGHT HOLDER",
    "quantity": 1,
    "invoice_date": pd.Timestamp("2010-01-05 10:00"),
    "price": 1.0,
    "customer_id": 1,
    "country": "United Kingdom",
}


def lines(*overrides: dict, reason: str | None = None) -> pd.DataFrame:
    """Cleaned lines (or rejected lines when ``reason`` is given) from overrides of a base line."""
    out = pd.DataFrame([{**LINE, **o} for o in overrides])
    out["invoice_date"] = pd.to_datetime(out["invoice_date"])
    out["customer_id"] = out["customer_id"].astype("Int64")
    out["source_file"] = "test.csv"
    out["source_sheet"] = None
    out["source_row"] = np.arange(len(out), dtype="int64")
    if reason is None:
        out["quantity"] = out["quantity"].astype("int64")
        out["revenue"] = out["quantity"] * out["price"]
    else:
        out["quantity"] = out["quantity"].astype("Int64")
        out["reason"] = reason
    return out


JAN = pd.Timestamp("2010-01-05 10:00")
FEB = pd.Timestamp("2010-02-10 12:00")


@pytest.fixture
def small():
    cleaned = lines(
        {"invoice": "1", "customer_id": 1, "quantity": 2, "price": 5.0, "invoice_date": JAN},
        {
            "invoice": "1",
            "customer_id": 1,
            "stock_code": "22423",
            "description": "CAKESTAND",
            "price": 10.0,
            "invoice_date": JAN,
        },
        {"invoice": "2", "customer_id": None, "quantity": 1, "price": 3.0, "invoice_date": JAN},
        {"invoice": "3", "customer_id": 1, "quantity": 1, "price": 4.0, "invoice_date": FEB},
        {
            "invoice": "4",
            "customer_id": 2,
            "quantity": 3,
            "price": 2.0,
            "invoice_date": FEB,
            "country": "France",
            "stock_code": "22423",
            "description": "REGENCY CAKESTAND",
        },
        {
            "invoice": "5",
            "customer_id": 2,
            "quantity": 1,
            "price": 2.0,
            "invoice_date": FEB,
            "country": "France",
            "stock_code": "22423",
            "description": "REGENCY CAKESTAND",
        },
    )
    rejected = pd.concat(
        [
            lines(
                {"invoice": "C6", "customer_id": 1, "quantity": -1, "price": 5.0, "invoice_date": FEB},
                # Manual adjustments are not product returns: ignored.
                {
                    "invoice": "C7",
                    "customer_id": 1,
                    "stock_code": "M",
                    "quantity": -1,
                    "price": 500.0,
                    "invoice_date": FEB,
                },
                # Lower-case codes are matched after upper-casing.
                {
                    "invoice": "C8",
                    "customer_id": 2,
                    "stock_code": "85123a",
                    "quantity": -2,
                    "price": 1.0,
                    "invoice_date": JAN,
                },
                reason="cancellation",
            ),
            lines({"invoice": "9", "stock_code": "POST", "price": 18.0}, reason="non-product code"),
        ],
        ignore_index=True,
    )
    return cleaned, rejected


def test_monthly_sales_by_hand(small):
    cleaned, rejected = small
    out = MonthlySales.validate(summaries.monthly_sales(cleaned, rejected))
    expected = pd.DataFrame(
        {
            "month": pd.to_datetime(["2010-01-01", "2010-02-01"]),
            "revenue": [23.0, 12.0],
            "invoices": [2, 3],
            "lines": [3, 3],
            "customers": [1, 2],
            "new_customers": [1, 1],
            "returning_customers": [0, 1],
            "avg_basket_value": [11.5, 4.0],
            "cancelled_lines": [1, 1],
            "cancellation_rate": [1 / 4, 1 / 4],
            "returns_value": [2.0, 5.0],
        }
    )
    pd.testing.assert_frame_equal(out, expected)


def test_monthly_sales_without_rejected_has_no_returns(small):
    out = summaries.monthly_sales(small[0])
    assert (out["cancelled_lines"] == 0).all()
    assert (out["returns_value"] == 0).all()
    assert (out["cancellation_rate"] == 0).all()


def test_country_sales_by_hand(small):
    out = CountrySales.validate(summaries.country_sales(small[0]))
    assert out["country"].tolist() == ["United Kingdom", "France"]
    assert out["revenue"].tolist() == [27.0, 8.0]
    assert out["customers"].tolist() == [1, 1]
    assert out["invoices"].tolist() == [3, 2]
    assert out["lines"].tolist() == [4, 2]
    assert out["revenue_share"].tolist() == pytest.approx([27 / 35, 8 / 35])
    assert out["revenue_rank"].tolist() == [1, 2]


def test_country_rank_ties_broken_by_name():
    cleaned = lines({"country": "Spain"}, {"country": "Austria", "invoice": "2"})
    assert summaries.country_sales(cleaned)["country"].tolist() == ["Austria", "Spain"]


def test_top_products_by_hand(small):
    cleaned, rejected = small
    out = TopProducts.validate(summaries.top_products(cleaned, rejected)).set_index("stock_code")
    assert out.loc["85123A", "revenue"] == 17.0
    assert out.loc["85123A", "quantity"] == 4
    assert out.loc["85123A", "invoices"] == 3
    assert out.loc["85123A", "customers"] == 1
    assert out.loc["85123A", "returned_quantity"] == 3
    assert out.loc["85123A", "return_rate"] == pytest.approx(3 / 4)
    # Two descriptions: the most frequent wins.
    assert out.loc["22423", "description"] == "REGENCY CAKESTAND"
    assert out.loc["22423", "returned_quantity"] == 0
    assert out["revenue_rank"].to_dict() == {"22423": 1, "85123A": 2}


def test_top_products_description_ties_and_missing():
    cleaned = lines(
        {"stock_code": "A1", "description": "ZEBRA"},
        {"stock_code": "A1", "description": "APPLE"},
        {"stock_code": "B2", "description": None},
    )
    out = summaries.top_products(cleaned).set_index("stock_code")
    assert out.loc["A1", "description"] == "APPLE"
    assert out.loc["B2", "description"] is None


def test_cohort_retention_keeps_zero_cells():
    cleaned = lines(
        {"customer_id": 1, "invoice_date": "2010-01-03"},
        {"customer_id": 1, "invoice": "2", "invoice_date": "2010-03-03"},
        {"customer_id": 2, "invoice": "3", "invoice_date": "2010-01-20"},
        {"customer_id": 3, "invoice": "4", "invoice_date": "2010-02-01"},
        {"customer_id": None, "invoice": "5", "invoice_date": "2010-02-01"},
    )
    out = CohortRetention.validate(summaries.cohort_retention(cleaned))
    expected = pd.DataFrame(
        {
            "cohort_month": pd.to_datetime(["2010-01-01"] * 3 + ["2010-02-01"] * 2),
            "months_since_first": [0, 1, 2, 0, 1],
            "active_customers": [2, 0, 1, 1, 0],
            "cohort_size": [2, 2, 2, 1, 1],
            "retention_rate": [1.0, 0.0, 0.5, 1.0, 0.0],
        }
    )
    pd.testing.assert_frame_equal(out, expected)


@contextmanager
def warehouse_of(cleaned: pd.DataFrame, rejected: pd.DataFrame):
    """An in-memory DuckDB holding the frames as the two staging tables of the warehouse."""
    with duckdb.connect() as con:
        con.execute("CREATE SCHEMA staging")
        for table, frame in (("cleaned_transactions", cleaned), ("rejected_rows", rejected)):
            con.register("frame", frame)
            con.execute(f"CREATE TABLE staging.{table} AS SELECT * FROM frame")
            con.unregister("frame")
        yield con


def test_stored_tables_give_the_results_of_frames(small):
    cleaned, rejected = small
    with warehouse_of(cleaned, rejected) as con:
        stored = sales_lines.warehouse_lines(con)
        for function, with_returns in (
            (summaries.monthly_sales, True),
            (summaries.top_products, True),
            (sales_lines.product_cancellations, True),
            (summaries.country_sales, False),
            (summaries.cohort_retention, False),
        ):
            frames = (cleaned, rejected) if with_returns else (cleaned,)
            tables = (stored.cleaned, stored.rejected) if with_returns else (stored.cleaned,)
            pd.testing.assert_frame_equal(function(*tables), function(*frames))
        assert sales_lines.invoice_date_range(stored.cleaned) == (JAN, FEB)
        # The names a query reads are unregistered afterwards; the warehouse is left as it was.
        assert con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall() == []


def test_query_frames_mixes_stored_tables_and_frames_on_one_connection(small):
    cleaned, rejected = small
    with warehouse_of(cleaned, rejected) as con, duckdb.connect() as other:
        sql = "SELECT count(*) AS n FROM cleaned JOIN extra USING (invoice)"
        extra = pd.DataFrame({"invoice": ["1", "4"]})
        out = sales_lines.query_frames(sql, cleaned=sales_lines.warehouse_lines(con).cleaned, extra=extra)
        assert out["n"].tolist() == [3]
        with pytest.raises(ValueError, match="one connection"):
            sales_lines.query_frames(
                "SELECT 1", a=sales_lines.StoredTable(con, sales_lines.CLEANED_TABLE), b=sales_lines.StoredTable(other, "x")
            )


def test_product_cancellations_only_products(small):
    cleaned, rejected = small
    out = sales_lines.product_cancellations(cleaned, rejected)
    assert out["invoice"].tolist() == ["C8", "C6"]
    assert out["stock_code"].tolist() == ["85123A", "85123A"]
    assert out["returned_value"].tolist() == [2.0, 5.0]
    assert sales_lines.product_cancellations(cleaned, None).empty


@pytest.fixture(scope="module")
def real_tables(real_cleaned, real_rejected):
    return {
        "monthly": summaries.monthly_sales(real_cleaned, real_rejected),
        "country": summaries.country_sales(real_cleaned),
        "products": summaries.top_products(real_cleaned, real_rejected),
        "cohorts": summaries.cohort_retention(real_cleaned),
    }


def test_real_tables_match_schemas(real_tables):
    MonthlySales.validate(real_tables["monthly"], lazy=True)
    CountrySales.validate(real_tables["country"], lazy=True)
    TopProducts.validate(real_tables["products"], lazy=True)
    CohortRetention.validate(real_tables["cohorts"], lazy=True)


def test_real_monthly_sales_against_pandas(real_cleaned, real_tables):
    month = real_cleaned["invoice_date"].dt.to_period("M").dt.to_timestamp()
    grouped = real_cleaned.groupby(month)
    out = real_tables["monthly"].set_index("month")
    assert len(out) == 13
    np.testing.assert_allclose(out["revenue"], grouped["revenue"].sum(), rtol=1e-12)
    assert (out["invoices"] == grouped["invoice"].nunique()).all()
    assert (out["customers"] == grouped["customer_id"].nunique()).all()
    first = real_cleaned.dropna(subset=["customer_id"]).groupby("customer_id")["invoice_date"].min()
    assert out["new_customers"].sum() == len(first) == 4285


def test_real_returns_add_up(real_cleaned, real_rejected, real_tables):
    products = set(real_cleaned["stock_code"])
    cancelled = real_rejected[
        (real_rejected["reason"] == "cancellation") & real_rejected["stock_code"].str.upper().isin(products)
    ]
    assert real_tables["monthly"]["cancelled_lines"].sum() == len(cancelled)
    assert real_tables["products"]["returned_quantity"].sum() == -cancelled["quantity"].sum()


def test_real_country_and_products_cover_everything(real_cleaned, real_tables):
    assert real_tables["country"]["revenue"].sum() == pytest.approx(real_cleaned["revenue"].sum())
    assert real_tables["country"].iloc[0]["country"] == "United Kingdom"
    assert len(real_tables["products"]) == real_cleaned["stock_code"].nunique()
    assert real_tables["products"]["quantity"].sum() == real_cleaned["quantity"].sum()


def test_real_cohorts_partition_customers(real_cleaned, real_tables):
    cohorts = real_tables["cohorts"]
    sizes = cohorts.loc[cohorts["months_since_first"] == 0, "cohort_size"]
    assert sizes.sum() == real_cleaned["customer_id"].nunique()
    # 13 monthly cohorts in a triangle: 13 + 12 + ... + 1 cells.
    assert len(cohorts) == 13 * 14 // 2


def render(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=40)
    return buffer.getvalue()


def test_eda_figures_render(real_tables):
    figures = [
        plots.monthly_sales_figure(real_tables["monthly"]),
        plots.country_sales_figure(real_tables["country"], top_n=10),
        plots.cohort_heatmap_figure(real_tables["cohorts"]),
    ]
    for fig in figures:
        assert isinstance(fig, Figure)
        assert render(fig).startswith(b"\x89PNG")
    assert len(figures[0].axes) == 4  # three panels plus the basket-value twin axis
