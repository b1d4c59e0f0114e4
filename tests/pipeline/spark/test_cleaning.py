"""Spark cleaning equals the embedded cleaning, line for line, reason for reason, dtype for dtype."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from pipeline.spark import cleaning as spark_cleaning
from pipeline.staging import cleaning

_MAX_DATE = pd.Timestamp("2012-01-01")


def _assert_same(expected: cleaning.CleaningResult, actual: cleaning.CleaningResult) -> None:
    pd.testing.assert_frame_equal(actual.cleaned, expected.cleaned, check_exact=True)
    pd.testing.assert_frame_equal(actual.rejected, expected.rejected, check_exact=True)


def _edge_lines() -> pd.DataFrame:
    """One line per rule (and per way to trip it), plus duplicates that differ only as received."""
    rows = [
        # invoice, stock_code, description, quantity, date, price, customer, country
        ("489434", "85048", "LIGHT", 12, "2009-12-01 07:45", 6.95, 13085, "United Kingdom"),
        ("489434", "85048", "LIGHT", 12, "2009-12-01 07:45", 6.95, 13085, "United Kingdom"),  # duplicate
        (" 489434", "85048 ", " LIGHT ", 12, "2009-12-01 07:45", 6.95, 13085, "United Kingdom "),  # dup
        ("489434", "85048a", "LIGHT", 12, "2009-12-01 07:45", 6.95, 13085, "United Kingdom"),
        ("489434", "85048A", "LIGHT", 12, "2009-12-01 07:45", 6.95, 13085, "United Kingdom"),  # dup of a
        ("489434", "22041", "   ", 3, "2009-12-01 07:45", 2.10, None, "United Kingdom"),  # blank description
        ("489434", "22041", None, 3, "2009-12-01 07:45", 2.10, None, "United Kingdom"),  # dup of the blank
        (None, "22041", "X", 1, "2009-12-01 08:00", 1.0, 1, "France"),
        ("\t", "22041", "X", 1, "2009-12-01 08:00", 1.0, 1, "France"),
        ("489435", "  ", "X", 1, "2009-12-01 08:00", 1.0, 1, "France"),
        ("489435", "22041", "X", 1, None, 1.0, 1, "France"),
        ("489435", "22041", "X", None, "2009-12-01 08:00", 1.0, 1, "France"),
        ("489435", "22041", "X", 1, "2009-12-01 08:00", np.nan, 1, "France"),
        ("489435", "22041", "X", 1, "2009-12-01 08:00", 1.0, 1, " "),
        ("c489436", "22041", "X", -1, "2009-12-01 08:00", 1.0, 1, "France"),
        ("A506401", "B", "Adjust bad debt", 1, "2009-12-01 08:00", -53594.36, None, "United Kingdom"),
        ("489437", "post", "POSTAGE", 1, "2009-12-01 08:00", 18.0, 1, "France"),
        ("489437", "BANK CHARGES", "Bank", 1, "2009-12-01 08:00", 15.0, 1, "France"),
        ("489437", "DCGS0058", "GIFT SET", 1, "2009-12-01 08:00", 15.0, 1, "France"),
        ("489438", "22041", "X", 0, "2009-12-01 08:00", 1.0, 1, "France"),
        ("489438", "22042", "X", 1, "2009-12-01 08:00", 0.0, 1, "France"),
        ("489438", "22043", "X", 1, "2008-12-31 23:59", 1.0, 1, "France"),
        ("489438", "22044", "X", 1, "2012-01-02 00:00", 1.0, 1, "France"),
        ("489438", "22045", "X", 1, "2012-01-01 00:00", 1.0, 1, "France"),
    ]
    frame = pd.DataFrame(rows, columns=["invoice", "stock_code", "description", "quantity", "invoice_date",
                                        "price", "customer_id", "country"])
    frame = frame.astype({"quantity": "Int64", "customer_id": "Int64", "price": "float64"})
    frame["invoice_date"] = pd.to_datetime(frame["invoice_date"])
    frame["source_file"] = "edge.csv"
    frame["source_sheet"] = None
    frame["source_row"] = np.arange(2, len(frame) + 2, dtype=np.int64)
    return frame


def test_edge_cases_match_embedded(spark, stage):
    raw = _edge_lines()
    expected = cleaning.clean(raw, max_date=_MAX_DATE)
    actual = spark_cleaning.clean(spark, raw, stage=stage, max_date=_MAX_DATE)
    _assert_same(expected, actual)
    # Every rule fires at least once here, so a rule out of order would show above.
    assert set(cleaning.REASONS) <= set(expected.rejected["reason"])
    assert len(actual.cleaned) + len(actual.rejected) == len(raw)


def test_arrow_backed_input_keeps_its_arrow_types(spark, stage):
    raw = _edge_lines()
    dictionary = pd.ArrowDtype(pa.dictionary(pa.int32(), pa.string()))
    arrow = raw.astype({"invoice": pd.ArrowDtype(pa.string()), "description": dictionary,
                        "country": dictionary, "source_file": dictionary})
    expected = cleaning.clean(arrow, max_date=_MAX_DATE)
    actual = spark_cleaning.clean(spark, arrow, stage=stage, max_date=_MAX_DATE)
    _assert_same(expected, actual)
    assert isinstance(actual.cleaned["country"].dtype, pd.ArrowDtype)


def test_synthetic_lines_match_embedded(spark, stage, synthetic_raw, synthetic_cleaning):
    _assert_same(synthetic_cleaning, spark_cleaning.clean(spark, synthetic_raw, stage=stage))
    assert len(synthetic_cleaning.rejected) > 100  # the source's quirks are there to be rejected


def test_real_slice_matches_embedded(spark, stage, real_slice_raw, real_slice_cleaning):
    _assert_same(real_slice_cleaning, spark_cleaning.clean(spark, real_slice_raw, stage=stage))


def test_missing_column_is_an_error(spark, stage):
    with pytest.raises(ValueError, match="lack required columns"):
        spark_cleaning.clean(spark, _edge_lines().drop(columns="price"), stage=stage)
