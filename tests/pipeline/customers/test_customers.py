import io

import duckdb
import numpy as np
import pandas as pd
import pandera.pandas as pa
import pytest

from pipeline.common import lines as sales_lines
from pipeline.customers import plots, rfm_segments
from pipeline.customers.schemas import CustomerRfm, SegmentSummary
from tests.pipeline.eda.test_eda import warehouse_of

# The documented grid, written out cell by cell (rows R = 5..1, columns FM = 1..5).
GRID = {
    5: ["New Customers", "Potential Loyalists", "Potential Loyalists", "Champions", "Champions"],
    4: ["Promising", "Potential Loyalists", "Potential Loyalists", "Loyal Customers", "Loyal Customers"],
    3: ["About to Sleep", "About to Sleep", "Need Attention", "Loyal Customers", "Loyal Customers"],
    2: ["Hibernating", "Hibernating", "At Risk", "At Risk", "Can't Lose Them"],
    1: ["Lost", "Lost", "At Risk", "At Risk", "Can't Lose Them"],
}


def purchases(rows: list[tuple[int, str, str, float]]) -> pd.DataFrame:
    """Cleaned lines from (customer_id, invoice, invoice_date, revenue) tuples; quantity 1."""
    out = pd.DataFrame(rows, columns=["customer_id", "invoice", "invoice_date", "price"])
    return out.assign(
        stock_code="85123A",
        description="HEART",
        quantity=np.int64(1),
        invoice_date=pd.to_datetime(out["invoice_date"]),
        customer_id=out["customer_id"].astype("Int64"),
        country="United Kingdom",
        source_file="t.csv",
        source_sheet=None,
        source_row=np.arange(len(out), dtype="int64"),
        revenue=out["price"],
    )


@pytest.mark.parametrize("r", [1, 2, 3, 4, 5])
def test_segment_grid_matches_documented_table(r):
    fm = pd.Series([1, 2, 3, 4, 5])
    assert rfm_segments.assign_segment(pd.Series([r] * 5), fm).tolist() == GRID[r]


def test_segment_rules_tile_the_grid_once():
    cells = [
        (r, fm)
        for _, (r_lo, r_hi), (fm_lo, fm_hi) in rfm_segments.SEGMENT_RULES
        for r in range(r_lo, r_hi + 1)
        for fm in range(fm_lo, fm_hi + 1)
    ]
    assert sorted(cells) == [(r, fm) for r in range(1, 6) for fm in range(1, 6)]
    assert len(rfm_segments.SEGMENTS) == 11 == len(set(rfm_segments.SEGMENTS))
    assert set(rfm_segments.MARKETING_ACTIONS) == set(rfm_segments.SEGMENTS)


def test_assign_segment_rejects_out_of_range_scores():
    with pytest.raises(ValueError, match="outside 1..5"):
        rfm_segments.assign_segment(pd.Series([0]), pd.Series([3]))


def test_quintile_score_lower_is_better():
    values = pd.Series([10.0, 50.0, 20.0, 40.0, 30.0])
    scores = rfm_segments.quintile_score(values, higher_is_better=False)
    assert scores.tolist() == [5, 1, 4, 2, 3]


def test_rfm_table_by_hand():
    cleaned = purchases(
        [
            (1, "a", "2010-01-01 09:00", 10.0),
            (1, "b", "2010-03-01 18:30", 20.0),
            (1, "b", "2010-03-01 18:30", 5.0),
            (2, "c", "2010-03-09 23:59", 7.5),
            (pd.NA, "d", "2010-03-10 08:00", 99.0),  # guest: last invoice date, but no customer
        ]
    )
    rejected = purchases([(1, "C1", "2010-03-02", 4.0)]).assign(quantity=-1, reason="cancellation")
    rfm = CustomerRfm.validate(rfm_segments.rfm_table(cleaned, rejected=rejected)).set_index("customer_id")
    # Reference = 2010-03-11, the day after the last invoice date (a guest line counts).
    assert rfm.loc[1, "recency_days"] == 10
    assert rfm.loc[2, "recency_days"] == 2
    assert rfm.loc[1, "frequency"] == 2
    assert rfm.loc[1, "monetary"] == 35.0
    assert rfm.loc[1, "tenure_days"] == 69
    assert rfm.loc[1, "avg_basket_value"] == 17.5
    assert rfm.loc[1, "returns_value"] == 4.0
    assert rfm.loc[2, "returns_value"] == 0.0
    assert rfm.loc[1, "first_purchase_date"] == pd.Timestamp("2010-01-01")
    assert rfm.loc[1, "last_purchase_date"] == pd.Timestamp("2010-03-01")


def test_rfm_table_reads_warehouse_tables_in_place():
    cleaned = purchases(
        [
            (1, "a", "2010-01-01 09:00", 10.0),
            (1, "b", "2010-03-01 18:30", 20.0),
            (2, "c", "2010-03-09 10:00", 7.5),
        ]
    )
    rejected = purchases([(1, "C1", "2010-03-02", 4.0)]).assign(quantity=-1, reason="cancellation")
    with warehouse_of(cleaned, rejected) as con:
        lines = sales_lines.warehouse_lines(con)
        stored = rfm_segments.rfm_table(lines.cleaned, rejected=lines.rejected)
        assert rfm_segments.default_reference_date(lines.cleaned) == pd.Timestamp("2010-03-10")
    pd.testing.assert_frame_equal(stored, rfm_segments.rfm_table(cleaned, rejected=rejected))


def test_rfm_reference_date_and_missing_returns():
    cleaned = purchases([(1, "a", "2010-01-01 09:00", 10.0), (2, "b", "2010-01-05 10:00", 1.0)])
    rfm = rfm_segments.rfm_table(cleaned, reference_date=pd.Timestamp("2010-02-01 15:00")).set_index(
        "customer_id"
    )
    assert rfm["recency_days"].to_dict() == {1: 31, 2: 27}
    assert rfm["returns_value"].isna().all()
    with pytest.raises(ValueError, match="before the last purchase"):
        rfm_segments.rfm_table(cleaned, reference_date=pd.Timestamp("2010-01-03"))


def test_hand_built_customers_land_in_their_segments():
    # Ten customers; scores follow ranks, so each pair of customers shares a quintile (customers 1 and 9
    # tie on frequency and monetary and share F and M scores of 1).
    rows = []
    recency = {c: 100 - 10 * c for c in range(10)}  # customer 9 is most recent
    for c in range(10):
        day = pd.Timestamp("2010-12-31") - pd.Timedelta(days=recency[c])
        n_invoices = 1 if c in (8, 0) else c + 1  # 8: recent one-off; 0: old one-off
        for i in range(n_invoices):
            spend = 1.0 if c in (8, 0) else 10.0 * (c + 1)
            rows.append((c + 1, f"{c}-{i}", str(day - pd.Timedelta(days=i)), spend))
    rfm = rfm_segments.rfm_table(purchases(rows), reference_date=pd.Timestamp("2011-01-01")).set_index(
        "customer_id"
    )
    assert rfm.loc[10, "rfm_score"] == "555"
    assert rfm.loc[10, "segment"] == "Champions"
    assert rfm.loc[9, "segment"] == "New Customers"  # recent, lowest F and M
    assert rfm.loc[1, "segment"] == "Lost"  # oldest, lowest F and M
    assert rfm.loc[2, "rfm_score"] == "122"
    assert rfm.loc[2, "segment"] == "Lost"  # R 1, FM 2
    assert rfm.loc[7, "segment"] == "Loyal Customers"  # R 4, FM 4


def test_segment_summary_lists_all_segments():
    rfm = pd.DataFrame(
        {
            "customer_id": [1, 2, 3],
            "recency_days": [1, 5, 300],
            "frequency": [10, 2, 1],
            "monetary": [1000.0, 100.0, 50.0],
            "segment": ["Champions", "Champions", "Lost"],
        }
    )
    out = SegmentSummary.validate(rfm_segments.segment_summary(rfm)).set_index("segment")
    assert list(out.index) == list(rfm_segments.SEGMENTS)
    assert out.loc["Champions", "customers"] == 2
    assert out.loc["Champions", "revenue_share"] == pytest.approx(1100 / 1150)
    assert out.loc["Champions", "avg_frequency"] == 6
    assert out.loc["Promising", "customers"] == 0
    assert np.isnan(out.loc["Promising", "avg_monetary"])
    assert out["marketing_action"].str.len().min() > 20


@pytest.fixture(scope="module")
def real_rfm(real_cleaned, real_rejected):
    return rfm_segments.rfm_table(real_cleaned, rejected=real_rejected)


def test_real_rfm_matches_independent_sql(real_cleaned, real_rfm):
    sql = """
        WITH reference AS (SELECT CAST(max(invoice_date) AS DATE) + INTERVAL 1 DAY AS day FROM lines)
        SELECT customer_id,
               date_diff('day', CAST(max(invoice_date) AS DATE), (SELECT day FROM reference)) AS recency_days,
               count(DISTINCT invoice) AS frequency,
               round(sum(quantity * price), 2) AS monetary
        FROM lines WHERE customer_id IS NOT NULL
        GROUP BY customer_id ORDER BY customer_id
    """
    with duckdb.connect() as con:
        con.register("lines", real_cleaned[["customer_id", "invoice", "invoice_date", "quantity", "price"]])
        expected = con.sql(sql).df()
    assert len(real_rfm) == len(expected) == 4285
    assert (real_rfm["customer_id"].to_numpy() == expected["customer_id"].to_numpy()).all()
    for column in ("recency_days", "frequency", "monetary"):
        assert (real_rfm[column].to_numpy() == expected[column].to_numpy()).all(), column


def test_real_rfm_schema_and_scores(real_rfm):
    CustomerRfm.validate(real_rfm, lazy=True)
    for metric, score in [("frequency", "f_score"), ("monetary", "m_score"), ("recency_days", "r_score")]:
        assert sorted(real_rfm[score].unique()) == [1, 2, 3, 4, 5]
        # Tied customers share a score: each metric value has exactly one score.
        per_value = real_rfm.groupby(metric)[score].agg(["min", "max"])
        assert (per_value["min"] == per_value["max"]).all()
        ranges = real_rfm.groupby(score)[metric].agg(["min", "max"]).sort_index()
        if metric == "recency_days":
            ranges = ranges.iloc[::-1]
        # So neighbouring scores never share a value: the ranges are strictly separated.
        assert (ranges["max"].to_numpy()[:-1] < ranges["min"].to_numpy()[1:]).all()
    # A third of the customers bought once: they all score F = 1, and that bin is larger than a fifth.
    one_off = real_rfm["frequency"] == 1
    assert (real_rfm.loc[one_off, "f_score"] == 1).all() and one_off.mean() > 0.3


def test_real_segment_summary(real_rfm):
    summary = SegmentSummary.validate(rfm_segments.segment_summary(real_rfm), lazy=True)
    assert summary["customers"].sum() == len(real_rfm)
    champions = summary.set_index("segment").loc["Champions"]
    # Champions are the most valuable customers on average.
    assert champions["avg_monetary"] == summary["avg_monetary"].max()


def test_rfm_schema_rejects_bad_rows(real_rfm):
    with pytest.raises(pa.errors.SchemaErrors):
        CustomerRfm.validate(real_rfm.head(50).assign(recency_days=-1), lazy=True)
    with pytest.raises(pa.errors.SchemaErrors):
        CustomerRfm.validate(real_rfm.head(50).assign(segment="Champions", rfm_score="111"), lazy=True)
    with pytest.raises(pa.errors.SchemaErrors):
        CustomerRfm.validate(real_rfm.head(50).assign(extra=1), lazy=True)


def test_rfm_figures_render(real_rfm):
    for fig in (
        plots.rfm_distributions_figure(real_rfm),
        plots.segment_summary_figure(rfm_segments.segment_summary(real_rfm)),
    ):
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=40)
        assert buffer.getvalue().startswith(b"\x89PNG")
