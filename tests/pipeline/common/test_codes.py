"""Tests for pipeline.common.codes: what a product code is and what a product is called."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.common import codes
from pipeline.recommend.history import _History, _Lines, _product_lines


def test_product_code_rule_is_cleanings_rule():
    real = ["85123A", "15056BL", "47503J", "22423", "DCGS0058", "DCGSSGIRL", "DCGS0066N", "123456"]
    service = ["POST", "DOT", "M", "D", "C2", "S", "B", "ADJUST", "ADJUST2", "BANK CHARGES", "AMAZONFEE"]
    service += ["gift_0001_20", "TEST001", "PADS", "CRUK", "SP1002", "85123a", " 85123A", None, 85123, np.nan]
    assert codes.is_product_code(real).all()
    assert not codes.is_product_code(service).any()
    # A staged code is a product exactly when cleaning would not reject it as a non-product code.
    staged = pd.Series(real + ["POST", "ADJUST2", "SP1002"])
    np.testing.assert_array_equal(codes.is_product_code(staged), ~codes.is_non_product_code(staged).to_numpy())


def test_product_descriptions_pick_the_most_frequent_stripped_text():
    lines = pd.DataFrame(
        {
            "stock_code": ["A", "A", "A", "B", "C", "D", "D"],
            "description": [" OLD NAME ", "NEW NAME", "NEW NAME ", "ONLY", None, "ZED", "ALPHA"],
        }
    )
    assert codes.product_descriptions(lines).to_dict() == {
        "A": "NEW NAME",  # two lines once stripped, against one
        "B": "ONLY",
        "C": "C",  # no description: the code itself
        "D": "ALPHA",  # a tie goes to the alphabetically first
    }


def test_product_descriptions_equal_a_pandas_reference():
    rng = np.random.default_rng(3)
    lines = pd.DataFrame(
        {
            "stock_code": rng.choice(["A", "B", "C", "D", "E"], size=400),
            "description": rng.choice([f"NAME {i}" for i in range(12)] + [None, " ", " NAME 1"], size=400),
        }
    )
    described = lines.dropna(subset=["description"])
    described = described.assign(description=described["description"].str.strip())
    described = described[described["description"] != ""]
    counts = described.groupby(["stock_code", "description"]).size().rename("n").reset_index()
    expected = counts.sort_values(["stock_code", "n", "description"], ascending=[True, False, True])
    expected = expected.drop_duplicates("stock_code")
    assert codes.product_descriptions(lines).to_dict() == dict(
        zip(expected["stock_code"], expected["description"], strict=True)
    )


def test_the_recommender_names_products_by_the_same_rule():
    rng = np.random.default_rng(5)
    n = 300
    lines = pd.DataFrame(
        {
            "invoice": rng.integers(500000, 500060, size=n).astype(str),
            "stock_code": rng.choice(["10001", "10002", "10003", "10004"], size=n),
            "description": rng.choice(["MUG", "MUG ", "CUP", "BOWL", None], size=n),
            "invoice_date": pd.Timestamp("2010-01-01") + pd.to_timedelta(rng.integers(0, 90, size=n), unit="D"),
            "customer_id": pd.array(rng.integers(1, 20, size=n), dtype="Int64"),
        }
    )
    history = _History.from_lines(_Lines.from_frame(_product_lines(lines)))
    expected = codes.product_descriptions(lines)
    assert dict(zip(history.stock_codes, history.descriptions, strict=True)) == expected.to_dict()
