import pandas as pd
import pytest

from pipeline import cleaning
from pipeline.schemas import CleanedTransactions, RejectedRows

BASE = {
    "invoice": "489434",
    "stock_code": "85048",
    "description": "15CM CHRISTMAS GLASS BALL 20 LIGHTS",
    "quantity": 12,
    "invoice_date": pd.Timestamp("2009-12-01 07:45"),
    "price": 6.95,
    "customer_id": 13085,
    "country": "United Kingdom",
    "source_file": "f.csv",
    "source_sheet": None,
}


def frame(*overrides: dict) -> pd.DataFrame:
    rows = [{**BASE, **o, "source_row": i + 2} for i, o in enumerate(overrides)]
    out = pd.DataFrame(rows)
    out["quantity"] = out["quantity"].astype("Int64")
    out["customer_id"] = out["customer_id"].astype("Int64")
    out["price"] = out["price"].astype("float64")
    out["invoice_date"] = pd.to_datetime(out["invoice_date"])
    return out


@pytest.mark.parametrize(
    ("override", "reason"),
    [
        ({"invoice": None}, "missing invoice"),
        ({"invoice": "  "}, "missing invoice"),
        ({"stock_code": None}, "missing stock code"),
        ({"invoice_date": pd.NaT}, "missing invoice date"),
        ({"quantity": pd.NA}, "unparseable quantity"),
        ({"price": float("nan")}, "unparseable price"),
        ({"country": None}, "missing country"),
        ({"invoice": "C489434", "quantity": -12}, "cancellation"),
        ({"invoice": "A506401", "stock_code": "B", "price": -53594.36}, "adjustment"),
        ({"stock_code": "POST"}, "non-product code"),
        ({"stock_code": "gift_0001_30"}, "non-product code"),
        ({"stock_code": "BANK CHARGES"}, "non-product code"),
        ({"stock_code": "m"}, "non-product code"),
        ({"quantity": 0}, "non-positive quantity"),
        ({"quantity": -3}, "non-positive quantity"),
        ({"price": 0.0}, "non-positive price"),
        ({"invoice_date": pd.Timestamp("1999-12-31")}, "invoice date out of range"),
        ({"invoice_date": pd.Timestamp("2199-01-01")}, "invoice date out of range"),
    ],
)
def test_each_rule_rejects_with_its_reason(override, reason):
    result = cleaning.clean(frame({}, override))
    assert len(result.cleaned) == 1
    assert result.rejected["reason"].tolist() == [reason]
    assert result.rejected["source_row"].tolist() == [3]


def test_exact_duplicate_keeps_first_and_guest_lines_stay():
    result = cleaning.clean(frame({}, {}, {"customer_id": pd.NA}, {"description": "OTHER"}))
    assert result.rejected["reason"].tolist() == ["exact duplicate"]
    assert result.rejected["source_row"].tolist() == [3]
    assert result.cleaned["source_row"].tolist() == [2, 4, 5]
    assert result.cleaned["customer_id"].isna().sum() == 1


def test_first_matching_rule_wins_and_codes_are_upper_cased():
    result = cleaning.clean(frame({"invoice": "C1", "quantity": -1, "stock_code": "POST"}, {"stock_code": "dcgs0058"}))
    assert result.rejected["reason"].tolist() == ["cancellation"]
    assert result.cleaned["stock_code"].tolist() == ["DCGS0058"]
    assert result.cleaned["revenue"].tolist() == [12 * 6.95]


def test_dcgs_gift_sets_are_products():
    assert not cleaning.is_non_product_code(pd.Series(["DCGS0058", "DCGSSGIRL", "85123A", "47503J"])).any()


def test_missing_columns_are_named():
    with pytest.raises(ValueError, match="customer_id"):
        cleaning.clean(frame({}).drop(columns="customer_id"))


def test_outputs_satisfy_their_models():
    result = cleaning.clean(frame({}, {"invoice": "C2", "quantity": -1}, {"price": 0.0}))
    CleanedTransactions.validate(result.cleaned)
    RejectedRows.validate(result.rejected)


def test_real_sheet_reconciles_and_counts_are_pinned(real_raw, real_cleaning):
    cleaned, rejected = real_cleaning.cleaned, real_cleaning.rejected
    assert len(real_raw) == 525_461
    assert len(cleaned) + len(rejected) == len(real_raw)
    keys = ["source_file", "source_sheet", "source_row"]
    both = pd.concat([cleaned[keys], rejected[keys]]).sort_values("source_row", ignore_index=True)
    pd.testing.assert_frame_equal(both, real_raw[keys].sort_values("source_row", ignore_index=True))
    counts = cleaning.reason_counts(rejected)
    assert counts["cancellation"] == 10_206
    assert counts == PINNED_REASONS
    assert len(cleaned) == PINNED_CLEANED_LINES
    with_customer = cleaned[cleaned["customer_id"].notna()]
    assert with_customer["customer_id"].nunique() == PINNED_CUSTOMERS
    assert with_customer["invoice"].nunique() == PINNED_INVOICES_WITH_CUSTOMER
    CleanedTransactions.validate(cleaned)
    RejectedRows.validate(rejected)


# Pinned on the real "Year 2009-2010" sheet. The usual public cleaning (drop guests, cancellations, non-positive
# quantity or price, exact duplicates) gives 400,916 customer lines, 4,312 customers and 19,213 invoices; ours also
# removes non-product codes (postage, manual lines, fees), which leaves 27 customers and 247 invoices with no product.
PINNED_CLEANED_LINES = 502_414
PINNED_CUSTOMERS = 4_285
PINNED_INVOICES_WITH_CUSTOMER = 18_966
PINNED_REASONS = {
    "missing invoice": 0,
    "missing stock code": 0,
    "missing invoice date": 0,
    "unparseable quantity": 0,
    "unparseable price": 0,
    "missing country": 0,
    "cancellation": 10_206,
    "adjustment": 3,
    "non-product code": 2_356,
    "non-positive quantity": 2_118,
    "non-positive price": 1_534,
    "invoice date out of range": 0,
    "exact duplicate": 6_830,
}
