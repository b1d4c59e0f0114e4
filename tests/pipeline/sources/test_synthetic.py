"""Tests for the synthetic Online Retail II generator and the fingerprints that validate it."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from pipeline.sources import fingerprints, synthetic
from tests.conftest import REAL_PARQUET

PRODUCT_CODE = r"^\d{5}[A-Za-z]?$"
SERVICE_CODES = set("POST|DOT|C2|M|D|S|B|ADJUST|BANK CHARGES|PADS|AMAZONFEE|TEST001|TEST002".split("|"))


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    """About 200k synthetic lines, shared by the module's tests."""
    return synthetic.generate_frame(200_000, random_state=42)


@pytest.fixture(scope="module")
def real_fingerprint() -> dict[str, float]:
    """Fingerprint of the real 2009-2010 sheet."""
    if not REAL_PARQUET.exists():
        pytest.skip(f"real Online Retail II data not available: {REAL_PARQUET} is missing")
    return fingerprints.fingerprint(pd.read_parquet(REAL_PARQUET))


def sales_lines(df: pd.DataFrame) -> pd.DataFrame:
    """Non-cancelled product lines with positive quantity and price."""
    keep = (
        ~df["Invoice"].str.startswith(("C", "A"))
        & (df["Quantity"] > 0)
        & (df["Price"] > 0)
        & df["StockCode"].str.match(PRODUCT_CODE)
    )
    return df[keep]


def test_same_seed_gives_same_frame_and_other_seed_differs():
    first = synthetic.generate_frame(20_000, random_state=5)
    pd.testing.assert_frame_equal(first, synthetic.generate_frame(20_000, random_state=5))
    other = synthetic.generate_frame(20_000, random_state=6)
    assert not first.head(1_000).equals(other.head(1_000))


# SHA-256 of ``generate_frame(20_000, random_state=42).to_csv(index=False)`` per ``GENERATOR_VERSION``.
OUTPUT_DIGESTS = {"2": "0268b1fa93e1ebcb91993c350609a9f29e98012086559b3a8bed0fe0f9797bb8"}


def test_output_is_pinned_to_the_generator_version():
    # Warehouses reuse synthetic raw lines while the version is unchanged, so a change in the output must come
    # with a new GENERATOR_VERSION (and a new digest here); a failure here means that bump was forgotten.
    assert isinstance(synthetic.GENERATOR_VERSION, str) and synthetic.GENERATOR_VERSION
    text = synthetic.generate_frame(20_000, random_state=42).to_csv(index=False)
    assert hashlib.sha256(text.encode()).hexdigest() == OUTPUT_DIGESTS.get(synthetic.GENERATOR_VERSION), (
        "the synthetic output changed: bump synthetic.GENERATOR_VERSION and pin the new digest"
    )


@pytest.mark.parametrize("n_lines", [5_000, 20_000, 100_000])
def test_size_within_one_percent(n_lines):
    assert abs(len(synthetic.generate_frame(n_lines, random_state=1)) - n_lines) <= 0.01 * n_lines


def test_frame_has_raw_layout_and_dtypes(frame):
    assert abs(len(frame) - 200_000) <= 2_000
    assert list(frame.columns) == synthetic.COLUMNS
    expected = {
        "Invoice": object,
        "StockCode": object,
        "Description": object,
        "Quantity": np.int64,
        "InvoiceDate": np.dtype("datetime64[ns]"),
        "Price": np.float64,
        "Customer ID": np.float64,
        "Country": object,
    }
    assert {col: frame[col].dtype for col in expected} == {col: np.dtype(t) for col, t in expected.items()}
    for col in ("Invoice", "StockCode", "Country"):
        assert frame[col].map(type).eq(str).all(), col
    missing = frame["Description"][frame["Description"].isna()]
    assert len(missing) > 0 and all(value is None for value in missing)
    ids = frame["Customer ID"].dropna()
    assert ids.between(12_346, 18_287).all() and (ids == ids.round()).all()
    assert frame["Customer ID"].isna().any()


def test_codes_descriptions_and_calendar_look_like_the_shop(frame):
    codes = frame["StockCode"]
    product = codes.str.match(PRODUCT_CODE)
    others = set(codes[~product])
    assert others - SERVICE_CODES == {c for c in others if c.startswith("gift_0001_")}
    described = frame[product & frame["Description"].notna() & (frame["Price"] > 0)]["Description"]
    assert (described == described.str.upper()).all()
    assert 0.1 < described.str.endswith(" ").mean() < 0.3
    assert codes[product].str.upper().nunique() >= 1_500
    countries = frame["Country"].value_counts()
    assert countries.index[0] == "United Kingdom" and len(countries) >= 20
    assert {"EIRE", "Germany", "France"} <= set(countries.index[1:6])

    date = frame["InvoiceDate"]
    assert date.min() >= pd.Timestamp("2009-12-01") and date.max() < pd.Timestamp("2011-12-10")
    assert date.min() < pd.Timestamp("2009-12-05") and date.max() > pd.Timestamp("2011-12-01")
    assert date.dt.hour.between(7, 20).all()
    assert (date.dt.dayofweek != 5).all()
    assert (date.dt.second == 0).all()
    # Each invoice has one timestamp, one customer and one country, like the real export.
    per_invoice = frame.groupby("Invoice").agg(
        dates=("InvoiceDate", "nunique"),
        countries=("Country", "nunique"),
        customers=("Customer ID", "nunique"),
    )
    assert (per_invoice["dates"] == 1).all() and (per_invoice["countries"] == 1).all()
    assert (per_invoice["customers"] <= 1).all()


def test_stream_is_ordered_and_chunks_are_bounded():
    chunks = list(synthetic.generate_invoices(600_000, random_state=3, chunk_lines=100_000))
    sizes = [len(chunk) for chunk in chunks]
    assert all(size == 100_000 for size in sizes[:-1]) and 0 < sizes[-1] <= 100_000
    assert abs(sum(sizes) - 600_000) <= 6_000
    stream = pd.concat(chunks)
    assert stream.index.equals(pd.RangeIndex(len(stream)))
    assert stream["InvoiceDate"].is_monotonic_increasing
    # Invoice numbers grow with time (C and A invoices share the numbering) and invoices are contiguous.
    numbers = stream["Invoice"].str.lstrip("CA").astype(np.int64)
    assert numbers.is_monotonic_increasing
    assert stream["Invoice"].ne(stream["Invoice"].shift()).sum() == stream["Invoice"].nunique()


def test_stream_does_not_depend_on_chunk_size():
    whole = synthetic.generate_frame(30_000, random_state=8)
    pieces = list(synthetic.generate_invoices(30_000, random_state=8, chunk_lines=4_321))
    assert max(len(piece) for piece in pieces) == 4_321
    pd.testing.assert_frame_equal(pd.concat(pieces), whole)


def test_rejects_bad_arguments():
    with pytest.raises(ValueError, match="n_lines"):
        synthetic.generate_invoices(10)
    with pytest.raises(ValueError, match="chunk_lines"):
        synthetic.generate_invoices(10_000, chunk_lines=0)


def test_fingerprints_match_the_real_sheet(frame, real_fingerprint):
    comparison = fingerprints.compare_fingerprints(fingerprints.fingerprint(frame), real_fingerprint)
    assert set(comparison) == set(fingerprints.TOLERANCES)
    failures = {name: values[:2] for name, values in comparison.items() if not values[2]}
    assert not failures, f"synthetic vs real outside tolerance: {failures}"


def test_cancellations_return_earlier_purchases(frame):
    cancelled = frame[frame["Invoice"].str.startswith("C")]
    assert len(cancelled) > 0 and (cancelled["Quantity"] < 0).all()
    returned = cancelled[cancelled["StockCode"].str.match(PRODUCT_CODE)]
    # Product returns always come from a known customer; guests only cancel service lines.
    assert returned["Customer ID"].notna().all()
    bought = sales_lines(frame)[["Customer ID", "StockCode", "Price", "Quantity", "InvoiceDate"]]
    matches = returned.reset_index().merge(
        bought, on=["Customer ID", "StockCode", "Price"], suffixes=("", "_bought")
    )
    valid = matches[
        (matches["InvoiceDate_bought"] < matches["InvoiceDate"])
        & (matches["Quantity_bought"] >= -matches["Quantity"])
    ]
    assert valid["index"].nunique() == len(returned)
    # Returns come back after hours to weeks.
    delay = valid.groupby("index")["InvoiceDate"].first() - valid.groupby("index")["InvoiceDate_bought"].max()
    assert delay.dt.days.median() >= 2


def test_adjustments_are_bad_debt_lines(frame):
    adjust = frame[frame["Invoice"].str.startswith("A")]
    assert 1 <= len(adjust) <= 10
    assert (adjust["StockCode"] == "B").all() and (adjust["Description"] == "Adjust bad debt").all()
    assert (adjust["Price"] < 0).all() and adjust["Customer ID"].isna().all()


def test_write_offs_have_zero_price_and_no_customer(frame):
    zero = frame[(frame["Price"] == 0) & (frame["StockCode"] != "PADS")]
    assert len(zero) > 0.004 * len(frame)
    assert zero["Customer ID"].isna().all()
    notes = zero["Description"].dropna()
    assert zero["Description"].isna().mean() > 0.6
    assert (notes.str.lower() == notes).mean() > 0.3
    assert (zero["Quantity"] < 0).mean() > 0.4


def test_families_are_bought_together(frame):
    sales = sales_lines(frame).assign(StockCode=lambda d: d["StockCode"].str.upper())
    baskets = sales.drop_duplicates(["Invoice", "StockCode"])
    popular = baskets["StockCode"].value_counts().index[:400]
    baskets = baskets[baskets["StockCode"].isin(popular)]
    invoice = baskets["Invoice"].astype("category").cat.codes.to_numpy()
    product = pd.Categorical(baskets["StockCode"], categories=popular).codes
    matrix = sparse.csr_matrix((np.ones(len(baskets)), (invoice, product)))
    n_invoices = sales["Invoice"].nunique()
    together = (matrix.T @ matrix).toarray()
    counts = np.diag(together)
    lift = together * n_invoices / np.outer(counts, counts)

    # Colour variants share a five-digit base code with letter suffixes (85123A, 85123B).
    base = pd.Series(popular).str[:5].to_numpy()
    suffixed = pd.Series(popular).str.len().to_numpy() == 6
    upper = np.triu(np.ones_like(lift, dtype=bool), k=1)
    same_family = upper & (base[:, None] == base[None, :]) & suffixed[:, None] & suffixed[None, :]
    unrelated = upper & (base[:, None] != base[None, :])
    assert same_family.sum() >= 10
    # Popular goods co-occur a little above independence anyway (big orders hold many of them; the real
    # sheet's median lift is 2.5 for such pairs), variants of one family far more (real: ~20).
    assert np.median(lift[unrelated]) < 4
    assert np.median(lift[same_family]) > 4 * np.median(lift[unrelated])

    # The classic real-data rule: the REGENCY teacup colours.
    described = sales.drop_duplicates(["Invoice", "StockCode"])
    teacups = {
        colour: set(
            described.loc[
                described["Description"].str.strip() == f"{colour} REGENCY TEACUP AND SAUCER", "Invoice"
            ]
        )
        for colour in ("PINK", "GREEN", "ROSES")
    }
    pink, green = teacups["PINK"], teacups["GREEN"]
    assert len(pink & green) / len(pink) > 0.6
    assert len(pink & green) * n_invoices / (len(pink) * len(green)) > 10


def test_returning_customers_buy_again():
    small = synthetic.generate_frame(20_000, random_state=11)
    sales = sales_lines(small).dropna(subset=["Customer ID"])
    # Brute force: a line of a later invoice is a repeat when its customer bought the product on an
    # earlier date.
    first_date: dict[float, pd.Timestamp] = {}
    first_bought: dict[tuple[float, str], pd.Timestamp] = {}
    for row in sales.itertuples(index=False):
        who, code, when = row[6], row[1].upper(), row[4]
        first_date[who] = min(first_date.get(who, when), when)
        first_bought[who, code] = min(first_bought.get((who, code), when), when)
    later = [
        first_bought[row[6], row[1].upper()] < row[4]
        for row in sales.drop_duplicates(["Invoice", "StockCode"]).itertuples(index=False)
        if row[4] > first_date[row[6]]
    ]
    share = sum(later) / len(later)
    assert fingerprints.fingerprint(small)["repeat_purchase_share"] == pytest.approx(share)
    # Real data: 0.41. Without repeat buying a customer would rarely meet a product again (< 0.1).
    assert 0.3 < share < 0.6


def test_fingerprint_of_a_hand_built_frame():
    at = pd.Timestamp
    rows = [
        ("1", "85123A", "WHITE HEART ", 6, at("2010-11-01 10:00"), 2.55, 1.0, "United Kingdom"),
        ("1", "85123A", "WHITE HEART ", 6, at("2010-11-01 10:00"), 2.55, 1.0, "United Kingdom"),
        ("1", "POST", "POSTAGE", 1, at("2010-11-01 10:00"), 18.0, 1.0, "United Kingdom"),
        ("2", "22423", None, 10, at("2010-11-02 11:00"), 0.0, np.nan, "United Kingdom"),
        ("3", "22423", "REGENCY CAKESTAND", 1, at("2010-03-03 12:00"), 10.0, 1.0, "United Kingdom"),
        ("C4", "22423", "REGENCY CAKESTAND", -1, at("2010-03-04 12:00"), 10.0, 1.0, "United Kingdom"),
        ("A5", "B", "Adjust bad debt", 1, at("2010-05-05 13:00"), -100.0, np.nan, "United Kingdom"),
        ("6", "21232", "TRINKET BOX", 2, at("2010-06-06 14:00"), 1.0, 2.0, "France"),
    ]
    df = pd.DataFrame(rows, columns=synthetic.COLUMNS)
    result = fingerprints.fingerprint(df)
    assert result["cancellation_line_share"] == pytest.approx(1 / 8)
    assert result["adjustment_line_share"] == pytest.approx(1 / 8)
    assert result["missing_customer_share"] == pytest.approx(2 / 8)
    assert result["non_product_line_share"] == pytest.approx(2 / 8)
    assert result["duplicate_line_share"] == pytest.approx(1 / 8)
    assert result["zero_price_line_share"] == pytest.approx(1 / 8)
    assert result["missing_description_share"] == pytest.approx(1 / 8)
    assert result["trailing_space_description_share"] == pytest.approx(2 / 7)
    assert result["suffix_code_line_share"] == pytest.approx(2 / 6)
    # Non-cancelled invoices 1, 2, 3, A5, 6 have 3, 1, 1, 1, 1 lines.
    assert result["lines_per_invoice_q50"] == 1 and result["lines_per_invoice_p90"] == pytest.approx(2.2)
    # Customer 1 bought on invoices 1 and 3, customer 2 once.
    assert result["customer_once_share"] == pytest.approx(0.5)
    assert result["customers_per_1000_lines"] == pytest.approx(1000 * 2 / 8)
    assert result["uk_line_share"] == pytest.approx(7 / 8)
    assert result["sep_nov_revenue_share"] == pytest.approx(
        (2 * 6 * 2.55 + 18) / (2 * 6 * 2.55 + 18 + 10 + 2)
    )
    assert result["peak_month_is_november"] == 1.0
    # Customer 1's last invoice (1) holds 85123A, never bought before.
    assert result["buy_again_share"] == 0.0


def test_fingerprint_rejects_bad_input():
    with pytest.raises(ValueError, match="missing raw columns"):
        fingerprints.fingerprint(pd.DataFrame({"Invoice": ["1"]}))
    with pytest.raises(ValueError, match="empty"):
        fingerprints.fingerprint(pd.DataFrame(columns=synthetic.COLUMNS))


def test_compare_fingerprints_applies_absolute_and_relative_tolerances():
    # With every real value at 2.0, "rel" allows 2 * tolerance and "abs" allows the tolerance itself.
    real = dict.fromkeys(fingerprints.TOLERANCES, 2.0)
    allowed = {
        name: value * (2.0 if kind == "rel" else 1.0)
        for name, (kind, value) in fingerprints.TOLERANCES.items()
    }
    edge = {name: 2.0 - 0.99 * allowed[name] for name in real}
    assert all(ok for *_, ok in fingerprints.compare_fingerprints(edge, real).values())
    beyond = {name: 2.0 + allowed[name] + 0.01 for name in real}
    assert not any(ok for *_, ok in fingerprints.compare_fingerprints(beyond, real).values())
