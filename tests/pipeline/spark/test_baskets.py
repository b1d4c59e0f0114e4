"""FP-growth itemsets and Spark SQL rules equal the embedded tables (counts exactly, metrics to 1e-12)."""

from __future__ import annotations

import pandas as pd
import pytest

from pipeline.baskets import basket_analysis
from pipeline.spark import baskets as spark_baskets

#: Thresholds of the synthetic runs: lower supports give the same comparison on more itemsets, slower.
SYNTHETIC_MINING = basket_analysis.RuleMining(min_support=0.03)
CAPPED_MINING = basket_analysis.RuleMining(min_support=0.04, max_len=None, max_basket_size=40,
                                           min_confidence=0.2, min_lift=1.5)
_FLOATS = ["support", "antecedent_support", "consequent_support", "confidence", "lift", "leverage",
           "conviction", "zhangs_metric"]


def assert_tables_equal(actual: pd.DataFrame, expected: pd.DataFrame) -> None:
    """Equal row for row: everything exactly but the float metrics, which may differ by 1e-12."""
    assert list(actual.columns) == list(expected.columns)
    assert actual.dtypes.equals(expected.dtypes)
    floats = [c for c in _FLOATS if c in expected.columns]
    exact = [c for c in expected.columns if c not in floats]
    pd.testing.assert_frame_equal(actual[exact], expected[exact], check_exact=True)
    pd.testing.assert_frame_equal(actual[floats], expected[floats], check_exact=False, rtol=0, atol=1e-12)


@pytest.fixture(scope="module")
def embedded(synthetic_cleaning):
    cleaned = synthetic_cleaning.cleaned
    itemsets, summary = basket_analysis.itemsets_and_summary(cleaned, SYNTHETIC_MINING)
    thresholds = {"min_confidence": SYNTHETIC_MINING.min_confidence, "min_lift": SYNTHETIC_MINING.min_lift}
    rules = basket_analysis.association_rules_table(itemsets, **thresholds)
    return itemsets, summary, rules


@pytest.fixture(scope="module")
def spark_itemsets(spark, stage, synthetic_cleaning):
    cleaned = synthetic_cleaning.cleaned
    return spark_baskets.itemsets_and_summary(spark, cleaned, SYNTHETIC_MINING, stage=stage)


def test_itemsets_and_summary_equal_embedded(spark_itemsets, embedded):
    itemsets, summary = spark_itemsets
    assert_tables_equal(itemsets, embedded[0])
    assert summary == embedded[1]
    assert itemsets["length"].max() == 3 and itemsets["country"].nunique() >= 1  # pairs, triples, countries


def test_rules_from_embedded_itemsets_equal_embedded_rules(spark, stage, embedded):
    itemsets, _, expected = embedded
    actual = spark_baskets.association_rules_table(spark, itemsets, stage=stage,
                                                   min_confidence=SYNTHETIC_MINING.min_confidence,
                                                   min_lift=SYNTHETIC_MINING.min_lift)
    assert_tables_equal(actual, expected)
    assert expected["is_redundant"].any() and not expected["is_redundant"].all()
    assert (expected["consequents"].map(len) == 2).any()  # multi-item consequents, which MLlib cannot give


def test_capped_unbounded_mining_of_one_country_equals_embedded(spark, stage, synthetic_cleaning):
    cleaned = synthetic_cleaning.cleaned
    options = {"countries": ["United Kingdom"], "include_all": False}
    expected, summary = basket_analysis.itemsets_and_summary(cleaned, CAPPED_MINING, **options)
    actual, actual_summary = spark_baskets.itemsets_and_summary(spark, cleaned, CAPPED_MINING, stage=stage,
                                                                **options)
    assert_tables_equal(actual, expected)
    assert actual_summary == summary and summary["giant_baskets_excluded"] > 0
    thresholds = {"min_confidence": CAPPED_MINING.min_confidence, "min_lift": CAPPED_MINING.min_lift}
    assert_tables_equal(spark_baskets.association_rules_table(spark, actual, stage=stage, **thresholds),
                        basket_analysis.association_rules_table(expected, **thresholds))


def test_itemsets_missing_a_subset_are_refused(spark, stage, embedded):
    itemsets = embedded[0]
    pair = itemsets[(itemsets["length"] == 2) & itemsets["country"].isna()].iloc[0]
    broken = itemsets[~((itemsets["length"] == 1) & itemsets["country"].isna()
                        & (itemsets["items"].map(lambda items: items[0]) == pair["items"][0]))]
    with pytest.raises(KeyError, match="not closed under subsets"):
        spark_baskets.association_rules_table(spark, broken, stage=stage)


def test_no_itemsets_no_rules(spark, stage):
    no_lines = pd.DataFrame(columns=["invoice", "stock_code", "description"])
    nothing = basket_analysis.frequent_itemsets(no_lines)
    rules = spark_baskets.association_rules_table(spark, nothing, stage=stage)
    assert rules.empty and list(rules.columns) == basket_analysis.RULE_COLUMNS


def test_real_slice_itemsets_and_rules_equal_embedded(spark, stage, real_slice_cleaning):
    cleaned = real_slice_cleaning.cleaned
    mining = basket_analysis.RuleMining(min_support=0.03)
    expected, summary = basket_analysis.itemsets_and_summary(cleaned, mining, top_n_countries=1)
    actual, actual_summary = spark_baskets.itemsets_and_summary(spark, cleaned, mining, stage=stage,
                                                                top_n_countries=1)
    assert_tables_equal(actual, expected)
    assert actual_summary == summary
    thresholds = {"min_confidence": mining.min_confidence, "min_lift": mining.min_lift}
    assert_tables_equal(spark_baskets.association_rules_table(spark, actual, stage=stage, **thresholds),
                        basket_analysis.association_rules_table(expected, **thresholds))
