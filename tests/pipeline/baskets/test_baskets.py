"""Tests for pipeline.baskets.basket_analysis (itemsets, rules, bundles), its schemas and the rules figure."""

from __future__ import annotations

import dataclasses
import math
from itertools import combinations

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pytest
from matplotlib.figure import Figure
from mlxtend.frequent_patterns import apriori, association_rules

from pipeline.baskets import basket_analysis
from pipeline.baskets.plots import rules_scatter
from pipeline.baskets.schemas import AssociationRules, FrequentItemsets, ProductBundles


def make_cleaned(basket_items: dict[str, list[str]], *, country: str | dict[str, str] = "United Kingdom"):
    """A cleaned_transactions frame with one line per (invoice, item); prices vary so revenue is checkable."""
    rows = []
    for invoice, items in basket_items.items():
        for position, item in enumerate(items):
            rows.append(
                {
                    "invoice": invoice,
                    "stock_code": item,
                    "description": f"PRODUCT {item}",
                    "quantity": position + 1,
                    "invoice_date": pd.Timestamp("2010-01-01"),
                    "price": 1.5,
                    "customer_id": pd.NA,
                    "country": country if isinstance(country, str) else country[invoice],
                    "source_file": "test",
                    "source_sheet": None,
                    "source_row": len(rows),
                }
            )
    frame = pd.DataFrame(rows).astype({"customer_id": "Int64", "quantity": "int64"})
    return frame.assign(revenue=frame["quantity"] * frame["price"])


def random_baskets(n_baskets: int, n_products: int, *, seed: int) -> dict[str, list[str]]:
    """Baskets drawn from a skewed product popularity so that there are frequent pairs and triples."""
    rng = np.random.default_rng(seed)
    popularity = 1.0 / np.arange(1, n_products + 1)
    products = [f"P{k:02d}" for k in range(n_products)]
    out = {}
    for b in range(n_baskets):
        size = int(rng.integers(1, 7))
        chosen = rng.choice(n_products, size=size, replace=False, p=popularity / popularity.sum())
        out[f"{100000 + b}"] = [products[k] for k in chosen]
    return out


def brute_force_counts(basket_items: dict[str, list[str]], max_len: int) -> dict[frozenset, int]:
    """Count every itemset up to ``max_len`` by enumerating each basket's subsets."""
    counts: dict[frozenset, int] = {}
    for items in basket_items.values():
        unique = sorted(set(items))
        for size in range(1, max_len + 1):
            for subset in combinations(unique, size):
                counts[frozenset(subset)] = counts.get(frozenset(subset), 0) + 1
    return counts


def test_basket_matrix_is_binary_with_sorted_labels():
    cleaned = make_cleaned({"2": ["B", "A", "A"], "1": ["C"], "3": ["A", "C"]})
    matrix, invoices, products = basket_analysis.basket_matrix(cleaned, max_basket_size=None)
    assert list(invoices) == ["1", "2", "3"]
    assert list(products) == ["A", "B", "C"]
    np.testing.assert_array_equal(matrix.toarray(), [[0, 0, 1], [1, 1, 0], [1, 0, 1]])
    frame = basket_analysis.basket_frame(cleaned, max_basket_size=None)
    assert all(
        isinstance(dtype, pd.SparseDtype) and dtype.subtype is np.dtype(bool) for dtype in frame.dtypes
    )
    np.testing.assert_array_equal(frame.sparse.to_dense().to_numpy(), matrix.toarray().astype(bool))


def test_giant_baskets_are_excluded_and_counted():
    regular = {f"{k}": ["A", "B"] if k % 2 else ["C"] for k in range(20)}
    giants = {f"G{k}": ["X", "Y"] + [f"Z{j}" for j in range(10)] for k in range(4)}
    cleaned = make_cleaned(regular | giants)

    summary = basket_analysis.basket_summary(cleaned, max_basket_size=5)
    assert summary == {
        "invoices": 24, "baskets_mined": 20, "giant_baskets_excluded": 4, "giant_basket_lines_excluded": 48,
        "products": 15, "max_basket_size": 5,
    }  # fmt: skip
    assert list(basket_analysis.giant_invoices(cleaned, max_basket_size=5)) == ["G0", "G1", "G2", "G3"]
    matrix, invoices, products = basket_analysis.basket_matrix(cleaned, max_basket_size=5)
    assert matrix.shape == (20, 3) and "X" not in products

    capped = basket_analysis.frequent_itemsets(cleaned, min_support=0.1, max_basket_size=5)
    uncapped = basket_analysis.frequent_itemsets(cleaned, min_support=0.1, max_basket_size=None)
    assert ["X", "Y"] not in capped["items"].tolist()
    assert ["X", "Y"] in uncapped["items"].tolist()
    # Support is a share of the mined baskets only.
    pair = capped[capped["items"].map(tuple) == ("A", "B")].iloc[0]
    assert pair["support_count"] == 10 and pair["support"] == pytest.approx(10 / 20)
    with pytest.raises(ValueError, match="max_basket_size"):
        basket_analysis.giant_invoices(cleaned, max_basket_size=0)


@pytest.mark.parametrize("algorithm", ["eclat", "apriori", "fpgrowth"])
@pytest.mark.parametrize(("min_support", "max_len"), [(0.05, 3), (0.02, 2), (0.03, None)])
def test_itemsets_match_brute_force(algorithm, min_support, max_len):
    basket_items = random_baskets(300, 14, seed=7)
    cleaned = make_cleaned(basket_items)
    found = basket_analysis.frequent_itemsets(cleaned, min_support=min_support, max_len=max_len, algorithm=algorithm)

    min_count = math.ceil(min_support * 300)
    expected = {
        items: count
        for items, count in brute_force_counts(basket_items, max_len or 6).items()
        if count >= min_count
    }
    got = {
        frozenset(items): count for items, count in zip(found["items"], found["support_count"], strict=True)
    }
    assert got == expected
    assert found["length"].max() >= 2
    np.testing.assert_allclose(found["support"], found["support_count"] / 300, rtol=0, atol=0)
    assert all(items == sorted(items) for items in found["items"])
    assert found["descriptions"].map(len).eq(found["length"]).all()
    assert found["itemset_id"].tolist() == list(range(len(found)))
    FrequentItemsets.validate(found, lazy=True)


def test_itemsets_match_mlxtend_dense_path():
    basket_items = random_baskets(250, 12, seed=3)
    cleaned = make_cleaned(basket_items)
    dense = (
        cleaned.assign(present=True)
        .pivot_table(index="invoice", columns="stock_code", values="present", aggfunc="any", fill_value=False)
        .astype(bool)
    )
    reference = apriori(dense, min_support=0.04, use_colnames=True, max_len=3, low_memory=False)
    found = basket_analysis.frequent_itemsets(cleaned, min_support=0.04, max_len=3)
    expected = dict(zip(reference["itemsets"], reference["support"], strict=True))
    got = dict(zip(found["items"].map(frozenset), found["support"], strict=True))
    assert got.keys() == expected.keys()
    for itemset, support in expected.items():
        assert got[itemset] == pytest.approx(support, rel=1e-12)


def test_min_support_count_floor_and_bad_arguments():
    cleaned = make_cleaned({"1": ["A", "B"], "2": ["A", "B"], "3": ["A"], "4": ["C"]})
    loose = basket_analysis.frequent_itemsets(cleaned, min_support=0.25)
    assert {tuple(i) for i in loose["items"]} == {("A",), ("B",), ("C",), ("A", "B")}
    floored = basket_analysis.frequent_itemsets(cleaned, min_support=0.25, min_support_count=3)
    assert floored["items"].tolist() == [["A"]]
    singles = basket_analysis.frequent_itemsets(cleaned, min_support=0.25, max_len=1)
    assert singles["length"].eq(1).all() and len(singles) == 3
    assert basket_analysis.frequent_itemsets(cleaned, min_support=1.0).empty
    with pytest.raises(ValueError, match="min_support"):
        basket_analysis.frequent_itemsets(cleaned, min_support=0)
    with pytest.raises(ValueError, match="algorithm"):
        basket_analysis.frequent_itemsets(cleaned, algorithm="fpmax")


def test_rule_metrics_match_brute_force_counting():
    basket_items = {
        "1": ["A", "B", "C"], "2": ["A", "B"], "3": ["A", "B", "D"], "4": ["A", "C"], "5": ["B", "C"],
        "6": ["A", "B", "C"], "7": ["D"], "8": ["A", "B", "C", "D"], "9": ["C", "D"], "10": ["B"],
    }  # fmt: skip
    cleaned = make_cleaned(basket_items)
    itemsets = basket_analysis.frequent_itemsets(cleaned, min_support=0.2)
    rules = basket_analysis.association_rules_table(itemsets, min_confidence=0.01, min_lift=0.0)
    assert len(rules) > 0

    counts = brute_force_counts(basket_items, 4)
    n = len(basket_items)
    for rule in rules.itertuples(index=False):
        a, c = frozenset(rule.antecedents), frozenset(rule.consequents)
        s_a, s_c, s_ac = counts[a] / n, counts[c] / n, counts[a | c] / n
        confidence = s_ac / s_a
        not_a_confidence = (s_c - s_ac) / (1 - s_a) if s_a < 1 else 0.0
        zhang = (confidence - not_a_confidence) / max(confidence, not_a_confidence)
        conviction = (1 - s_c) / (1 - confidence) if confidence < 1 else basket_analysis.MAX_CONVICTION
        expected = {
            "antecedent_support": s_a, "consequent_support": s_c, "support": s_ac, "confidence": confidence,
            "lift": confidence / s_c, "leverage": s_ac - s_a * s_c, "conviction": conviction,
            "zhangs_metric": zhang,
        }  # fmt: skip
        for metric, value in expected.items():
            assert getattr(rule, metric) == pytest.approx(value, rel=1e-12, abs=1e-15), (rule, metric)
    # A -> B style rules with confidence 1 exist here ({D, A} -> B holds in all 2 baskets), capped not inf.
    assert (rules["conviction"] == basket_analysis.MAX_CONVICTION).any()
    assert np.isfinite(rules["conviction"]).all()
    AssociationRules.validate(rules, lazy=True)


def test_rule_thresholds_and_n_baskets_inference():
    cleaned = make_cleaned(random_baskets(200, 10, seed=11))
    itemsets = basket_analysis.frequent_itemsets(cleaned, min_support=0.03)
    inferred = basket_analysis.association_rules_table(itemsets, min_confidence=0.2, min_lift=1.1)
    explicit = basket_analysis.association_rules_table(itemsets, 200, min_confidence=0.2, min_lift=1.1)
    pd.testing.assert_frame_equal(inferred, explicit)
    assert (inferred["confidence"] >= 0.2).all() and (inferred["lift"] >= 1.1).all()
    everything = basket_analysis.association_rules_table(itemsets, min_confidence=0.0, min_lift=0.0)
    kept = everything[(everything["confidence"] >= 0.2) & (everything["lift"] >= 1.1)]
    assert len(kept) == len(inferred)
    assert inferred["rule_id"].tolist() == list(range(len(inferred)))
    assert inferred["lift"].is_monotonic_decreasing
    assert basket_analysis.association_rules_table(itemsets.iloc[:0]).empty


def test_redundancy_marking():
    # 12 baskets. conf(A -> C) = 6/8 and conf(A,B -> C) = 3/4: equal, so A,B -> C is redundant.
    # conf(A,D -> C) = 2/2 beats both A -> C (6/8) and D -> C (2/4): not redundant.
    basket_items = {
        "1": ["A", "B", "C"], "2": ["A", "B", "C"], "3": ["A", "B", "C"], "4": ["A", "B"],
        "5": ["A", "D", "C"], "6": ["A", "D", "C"], "7": ["A", "C"], "8": ["A"], "9": ["B", "C"], "10": ["B"],
        "11": ["D"], "12": ["D"],
    }  # fmt: skip
    itemsets = basket_analysis.frequent_itemsets(make_cleaned(basket_items), min_support=0.15)
    rules = basket_analysis.association_rules_table(itemsets, min_confidence=0.5, min_lift=0.0)
    flags = {
        (tuple(a), tuple(c)): bool(flag)
        for a, c, flag in zip(rules["antecedents"], rules["consequents"], rules["is_redundant"], strict=True)
    }
    confidence = dict(
        zip(
            zip(rules["antecedents"].map(tuple), rules["consequents"].map(tuple), strict=True),
            rules["confidence"],
            strict=True,
        )
    )
    assert confidence[(("A",), ("C",))] == confidence[(("A", "B"), ("C",))] == 0.75
    assert flags[(("A", "B"), ("C",))]
    assert confidence[(("A", "D"), ("C",))] == 1.0 and confidence[(("D",), ("C",))] == 0.5
    assert not flags[(("A", "D"), ("C",))]
    # Single-product antecedents have no more general form.
    assert not any(flag for (antecedent, _), flag in flags.items() if len(antecedent) == 1)
    # Brute force: redundant iff some strict non-empty subset of the antecedent is at least as confident.
    for (antecedent, consequent), flag in flags.items():
        general = [
            confidence.get((subset, consequent), -1.0)
            for size in range(1, len(antecedent))
            for subset in combinations(antecedent, size)
        ]
        assert flag == any(c >= confidence[(antecedent, consequent)] for c in general)


def test_rules_by_country_mine_each_country_separately():
    uk = {f"U{k}": ["A", "B"] if k % 2 else ["A", "C"] for k in range(40)}
    fr = {f"F{k}": ["A", "C"] if k % 4 else ["B", "D"] for k in range(20)}
    de = {f"D{k}": ["A", "B"] for k in range(3)}
    country = {**{k: "United Kingdom" for k in uk}, **{k: "France" for k in fr}, **{k: "Germany" for k in de}}
    cleaned = make_cleaned(uk | fr | de, country=country)

    assert basket_analysis.select_countries(cleaned, top_n=None, min_invoices=1) == [
        "United Kingdom",
        "France",
        "Germany",
    ]
    assert basket_analysis.select_countries(cleaned, top_n=5, min_invoices=10) == ["United Kingdom", "France"]
    mining = basket_analysis.RuleMining(min_support=0.1, min_support_count=2, min_lift=0)
    itemsets = basket_analysis.itemsets_by_country(cleaned, mining, min_invoices=10)
    assert itemsets["itemset_id"].is_unique
    rules = basket_analysis.rules_by_country(cleaned, mining, min_invoices=10)
    assert set(rules["country"].dropna()) == {"United Kingdom", "France"}
    assert rules["country"].isna().any() and rules["rule_id"].is_unique
    assert rules["country"].isna().to_numpy()[: rules["country"].isna().sum()].all()  # all countries first

    france = rules[rules["country"] == "France"]
    a_to_c = france[
        (france["antecedents"].map(tuple) == ("A",)) & (france["consequents"].map(tuple) == ("C",))
    ]
    assert a_to_c["support"].iloc[0] == pytest.approx(15 / 20) and a_to_c["confidence"].iloc[0] == 1.0
    everywhere = rules[rules["country"].isna()]
    a_to_c = everywhere[
        (everywhere["antecedents"].map(tuple) == ("A",)) & (everywhere["consequents"].map(tuple) == ("C",))
    ]
    assert a_to_c["support"].iloc[0] == pytest.approx(35 / 63)
    AssociationRules.validate(rules, lazy=True)
    FrequentItemsets.validate(itemsets, lazy=True)
    with pytest.raises(ValueError, match="single country"):
        basket_analysis.association_rules_table(itemsets, 63)


def test_product_bundles_deduplicate_and_count():
    basket_items = {f"{k}": ["A", "B"] for k in range(6)} | {f"{k}": ["C", "D", "E"] for k in range(6, 10)}
    basket_items |= {"10": ["A"], "11": ["C", "E"], "12": ["E"], "13": ["B", "C"]}
    cleaned = make_cleaned(basket_items)
    itemsets = basket_analysis.frequent_itemsets(cleaned, min_support=0.1)
    rules = basket_analysis.association_rules_table(itemsets, min_confidence=0.3, min_lift=0.0)
    bundles = basket_analysis.product_bundles(rules, cleaned, top_n=10)

    item_sets = [frozenset(items) for items in bundles["items"]]
    assert len(item_sets) == len(set(item_sets))  # A -> B and B -> A give one bundle
    assert frozenset({"A", "B"}) in item_sets
    non_redundant = rules[~rules["is_redundant"]]
    expected_bundles = {
        frozenset(a) | frozenset(c)
        for a, c in zip(non_redundant["antecedents"], non_redundant["consequents"], strict=True)
    }
    assert set(item_sets) == expected_bundles
    assert bundles["lift"].is_monotonic_decreasing

    for bundle in bundles.itertuples(index=False):
        lines = cleaned[cleaned["stock_code"].isin(bundle.items)]
        holders = [inv for inv, items in basket_items.items() if set(bundle.items) <= set(items)]
        assert bundle.invoices_with_all == len(holders)
        assert bundle.bundle_revenue == pytest.approx(lines["revenue"].sum())
        assert bundle.joint_revenue == pytest.approx(lines[lines["invoice"].isin(holders)]["revenue"].sum())
        forming = [
            frozenset(a) | frozenset(c) == frozenset(bundle.items)
            for a, c in zip(non_redundant["antecedents"], non_redundant["consequents"], strict=True)
        ]
        best = non_redundant[forming]
        assert bundle.lift == pytest.approx(best["lift"].max())
    ProductBundles.validate(bundles, lazy=True)
    assert len(basket_analysis.product_bundles(rules, cleaned, top_n=1)) == 1
    assert basket_analysis.product_bundles(rules, cleaned, country="France").empty


def test_inputs_are_not_mutated():
    cleaned = make_cleaned(random_baskets(60, 8, seed=1))
    before = cleaned.copy()
    itemsets = basket_analysis.frequent_itemsets(cleaned, min_support=0.05)
    itemsets_before = itemsets.copy()
    rules = basket_analysis.association_rules_table(itemsets, min_confidence=0.1)
    rules_before = rules.copy()
    basket_analysis.product_bundles(rules, cleaned)
    pd.testing.assert_frame_equal(cleaned, before)
    pd.testing.assert_frame_equal(itemsets, itemsets_before)
    pd.testing.assert_frame_equal(rules, rules_before)


@pytest.mark.parametrize(
    ("column", "value"),
    [("support", 0.0), ("confidence", 1.5), ("lift", -1.0), ("antecedents", ["B", "A"]), ("consequents", [])],
)
def test_rules_schema_rejects_bad_values(column, value):
    cleaned = make_cleaned(random_baskets(100, 8, seed=2))
    rules = basket_analysis.association_rules_table(
        basket_analysis.frequent_itemsets(cleaned, min_support=0.05), min_confidence=0.1
    )
    AssociationRules.validate(rules)
    broken = rules.copy()
    broken[column] = [value] * len(broken) if isinstance(value, list) else value
    with pytest.raises(pa.errors.SchemaErrors):
        AssociationRules.validate(broken, lazy=True)


def test_rules_scatter_returns_a_figure():
    cleaned = make_cleaned(random_baskets(100, 8, seed=2))
    rules = basket_analysis.association_rules_table(
        basket_analysis.frequent_itemsets(cleaned, min_support=0.05), min_confidence=0.1
    )
    figure = rules_scatter(rules, label_top=3)
    assert isinstance(figure, Figure)
    axes = figure.axes[0]
    assert len(axes.collections[0].get_offsets()) == len(rules)
    assert axes.get_xlabel().startswith("support")
    assert isinstance(rules_scatter(rules.iloc[:0]), Figure)


def test_real_sheet_eclat_apriori_and_fpgrowth_agree(real_cleaned):
    by_eclat = basket_analysis.frequent_itemsets(real_cleaned, min_support=0.02)
    by_apriori = basket_analysis.frequent_itemsets(real_cleaned, min_support=0.02, algorithm="apriori")
    by_fpgrowth = basket_analysis.frequent_itemsets(real_cleaned, min_support=0.02, algorithm="fpgrowth")
    pd.testing.assert_frame_equal(by_eclat, by_apriori)
    pd.testing.assert_frame_equal(by_apriori, by_fpgrowth)
    assert (by_apriori["length"] >= 2).sum() > 10
    FrequentItemsets.validate(by_apriori, lazy=True)
    rules = basket_analysis.association_rules_table(by_apriori)
    AssociationRules.validate(rules, lazy=True)
    # Textbook support by default: every invoice is a basket.
    summary = basket_analysis.basket_summary(real_cleaned)
    assert summary["giant_baskets_excluded"] == 0 and summary["max_basket_size"] is None
    assert summary["baskets_mined"] == real_cleaned["invoice"].nunique()
    assert summary["baskets_mined"] == round((by_apriori["support_count"] / by_apriori["support"]).iloc[0])
    capped = basket_analysis.basket_summary(real_cleaned, max_basket_size=basket_analysis.DEFAULT_MAX_BASKET_SIZE)
    assert capped["giant_baskets_excluded"] > 0


def _mlxtend_rules(lines: pd.DataFrame, *, min_support: float, min_confidence: float, min_lift: float,
                   max_len: int = 3) -> pd.DataFrame:
    """The textbook route: one boolean row per invoice (all of them), mlxtend apriori + association_rules."""
    onehot = pd.crosstab(lines["invoice"], lines["stock_code"]).gt(0)
    # Dropping products below min_support cannot change apriori's result; every invoice row stays.
    onehot = onehot.loc[:, onehot.mean() >= min_support]
    itemsets = apriori(onehot, min_support=min_support, use_colnames=True, max_len=max_len, low_memory=True)
    rules = association_rules(itemsets, num_itemsets=len(onehot), metric="confidence",
                              min_threshold=min_confidence)
    return rules[rules["lift"] >= min_lift]


def _keyed(antecedents, consequents, *columns) -> dict[tuple, tuple]:
    return {(tuple(sorted(a)), tuple(sorted(c))): values
            for a, c, *values in zip(antecedents, consequents, *columns, strict=True)}


def test_default_rules_use_textbook_support_over_all_invoices():
    # Giant invoices count as baskets unless a cap is asked for, as in mlxtend, arules or Spark.
    basket_items = random_baskets(300, 9, seed=11)
    basket_items |= {f"G{k}": [f"P{j:02d}" for j in range(9)] for k in range(6)}
    lines = make_cleaned(basket_items)
    mining = basket_analysis.RuleMining(min_support=0.03, min_confidence=0.2, min_lift=1.0)
    # The basket floor (10) is inert here: 3% of 306 invoices already asks for 10 baskets.
    assert math.ceil(mining.min_support * len(basket_items)) >= mining.min_support_count
    mined = basket_analysis.mine_rules(lines, mining)
    reference = _mlxtend_rules(lines, min_support=0.03, min_confidence=0.2, min_lift=1.0)
    assert _keyed(mined["antecedents"], mined["consequents"], mined["support"], mined["confidence"],
                  mined["lift"]) == _keyed(reference["antecedents"], reference["consequents"],
                                           reference["support"], reference["confidence"], reference["lift"])
    capped = basket_analysis.mine_rules(lines, dataclasses.replace(mining, max_basket_size=8))
    # With the cap the six giant invoices leave the universe: supports are shares of the 300 others.
    assert (capped["support"] * 300).round(9).eq((capped["support"] * 300).round()).all()
    assert not capped[["support", "lift"]].equals(mined[["support", "lift"]])


def test_mine_rules_is_the_all_countries_part_of_the_rules_table():
    country = {f"{100000 + k}": "UK" if k % 3 else "FR" for k in range(300)}
    lines = make_cleaned(random_baskets(300, 10, seed=8), country=country)
    mining = basket_analysis.RuleMining(min_support=0.04, min_confidence=0.25, min_lift=1.1, max_basket_size=5)
    table = basket_analysis.rules_by_country(lines, mining, min_invoices=50)
    assert table["country"].notna().any()
    overall = table[table["country"].isna()].reset_index(drop=True)
    pd.testing.assert_frame_equal(basket_analysis.mine_rules(lines, mining), overall, check_exact=True)


def test_mine_rules_matches_brute_force_pairs():
    basket_items = {"1": ["10001", "10002"], "2": ["10001", "10002", "10003"], "3": ["10001", "10003"],
                    "4": ["10002"], "5": ["10004", "POST"]}
    rules = basket_analysis.mine_rules(
        make_cleaned(basket_items), basket_analysis.RuleMining(min_support=0.3, min_confidence=0.0, min_lift=0.0,
                                                       max_len=2, min_support_count=1)
    )
    sets = [set(codes) for codes in basket_items.values()]

    def support(*items: str) -> float:
        return sum(set(items) <= basket for basket in sets) / len(sets)

    expected = {(a, c): (support(a, c), support(a, c) / support(a), support(a, c) / support(a) / support(c))
                for a in ["10001", "10002", "10003"] for c in ["10001", "10002", "10003"]
                if a != c and support(a, c) >= 0.3}
    found = {(row.antecedents[0], row.consequents[0]): (row.support, row.confidence, row.lift)
             for row in rules.itertuples()}
    assert found.keys() == expected.keys()
    for key, values in expected.items():
        np.testing.assert_allclose(found[key], values)


def test_basket_floor_keeps_tiny_exports_from_calling_everything_frequent():
    lines = make_cleaned(random_baskets(60, 12, seed=2))
    textbook = basket_analysis.frequent_itemsets(lines, min_support=0.01, min_support_count=1)
    floored = basket_analysis.frequent_itemsets(lines, min_support=0.01, min_support_count=10)
    # 1% of 60 invoices is one basket: every combination ever bought would be "frequent".
    assert len(textbook) > 3 * len(floored)
    assert floored["support_count"].min() >= 10
    kept = textbook[textbook["support_count"] >= 10].drop(columns="itemset_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(floored.drop(columns="itemset_id"), kept)
    assert len(basket_analysis.mine_rules(lines)) < len(basket_analysis.mine_rules(lines, basket_analysis.RuleMining(min_support_count=1)))


def test_rule_mining_settings_are_checked():
    with pytest.raises(ValueError, match="max_basket_size"):
        basket_analysis.RuleMining(max_basket_size=0)
    with pytest.raises(ValueError, match="min_confidence"):
        basket_analysis.RuleMining(min_confidence=1.5)
    with pytest.raises(ValueError, match="algorithm"):
        basket_analysis.RuleMining(algorithm="fpmax")
    with pytest.raises(ValueError, match="min_support_count"):
        basket_analysis.RuleMining(min_support_count=0)


def test_real_sheet_rules_equal_mlxtend_on_all_invoices(real_cleaned):
    mining = basket_analysis.RuleMining()
    mined = basket_analysis.mine_rules(real_cleaned, mining)
    reference = _mlxtend_rules(real_cleaned, min_support=mining.min_support,
                               min_confidence=mining.min_confidence, min_lift=mining.min_lift)
    assert len(mined) > 100
    got = _keyed(mined["antecedents"], mined["consequents"], mined["support"], mined["confidence"],
                 mined["lift"])
    expected = _keyed(reference["antecedents"], reference["consequents"], reference["support"],
                      reference["confidence"], reference["lift"])
    assert got.keys() == expected.keys()
    for key, values in expected.items():
        np.testing.assert_allclose(got[key], values, rtol=1e-12)


@pytest.mark.parametrize(
    "breakage",
    ["length_mismatch", "duplicate_itemset", "unsorted_items", "zero_count", "unknown_column"],
)
def test_itemsets_schema_rejects_bad_tables(breakage):
    itemsets = basket_analysis.frequent_itemsets(make_cleaned(random_baskets(100, 8, seed=2)), min_support=0.05)
    FrequentItemsets.validate(itemsets)
    broken = itemsets.copy()
    if breakage == "length_mismatch":
        broken.loc[0, "length"] = 2
    elif breakage == "duplicate_itemset":
        broken = pd.concat([broken, broken.iloc[[0]].assign(itemset_id=len(broken))], ignore_index=True)
    elif breakage == "unsorted_items":
        items = broken["items"].tolist()
        pair = int(np.flatnonzero(broken["length"].to_numpy() == 2)[0])
        items[pair] = items[pair][::-1]
        broken["items"] = items
    elif breakage == "zero_count":
        broken.loc[0, "support_count"] = 0
    else:
        broken["extra"] = 1
    with pytest.raises(pa.errors.SchemaErrors):
        FrequentItemsets.validate(broken, lazy=True)


def test_rules_match_mlxtend_association_rules_exactly():
    # Itemsets of up to 5 products, so every antecedent width from 1 to 4 occurs.
    basket_items = {f"{k}": items for k, items in random_baskets(400, 9, seed=5).items()}
    basket_items |= {f"X{k}": ["P00", "P01", "P02", "P03", "P04"] for k in range(30)}
    itemsets = basket_analysis.frequent_itemsets(make_cleaned(basket_items), min_support=0.02, max_len=None)
    assert itemsets["length"].max() >= 5
    rules = basket_analysis.association_rules_table(itemsets, min_confidence=0.2, min_lift=0.0)

    n = len(basket_items)
    reference = association_rules(
        pd.DataFrame({"support": itemsets["support"], "itemsets": itemsets["items"].map(frozenset)}),
        num_itemsets=n,
        metric="confidence",
        min_threshold=0.2,
    )
    expected = {
        (tuple(sorted(a)), tuple(sorted(c))): row
        for a, c, row in zip(
            reference["antecedents"], reference["consequents"], reference.itertuples(), strict=True
        )
    }
    got = {
        (tuple(a), tuple(c)): row
        for a, c, row in zip(rules["antecedents"], rules["consequents"], rules.itertuples(), strict=True)
    }
    assert got.keys() == expected.keys()
    for key, row in got.items():
        ref = expected[key]
        # Same formulas on the same supports: equal to the last bit, not just approximately.
        assert (row.antecedent_support, row.consequent_support, row.support) == (
            ref[reference.columns.get_loc("antecedent support") + 1],
            ref[reference.columns.get_loc("consequent support") + 1],
            ref.support,
        )
        assert (row.confidence, row.lift, row.leverage, row.zhangs_metric) == (
            ref.confidence, ref.lift, ref.leverage, ref.zhangs_metric
        )
        assert row.conviction == min(ref.conviction, basket_analysis.MAX_CONVICTION)

    counts = {frozenset(i): c for i, c in zip(itemsets["items"], itemsets["support_count"], strict=True)}
    for a, c, flag in zip(rules["antecedents"], rules["consequents"], rules["is_redundant"], strict=True):
        whole, base = counts[frozenset(a) | frozenset(c)], counts[frozenset(a)]
        general = [
            counts[frozenset(sub) | frozenset(c)] * base >= whole * counts[frozenset(sub)]
            for size in range(1, len(a))
            for sub in combinations(a, size)
        ]
        assert flag == any(general)
    assert rules["is_redundant"].any() and rules["antecedents"].map(len).max() == 4
    order = rules.assign(a=rules["antecedents"].map("\x1f".join), c=rules["consequents"].map("\x1f".join))
    expected_order = order.sort_values(
        ["lift", "confidence", "support", "a", "c"],
        ascending=[False, False, False, True, True],
        kind="stable",
    )
    assert rules["rule_id"].tolist() == expected_order["rule_id"].tolist() == list(range(len(rules)))
    AssociationRules.validate(rules, lazy=True)


def test_rules_need_every_subset_of_an_itemset():
    itemsets = basket_analysis.frequent_itemsets(make_cleaned(random_baskets(200, 6, seed=4)), min_support=0.02)
    pairs = itemsets[itemsets["length"] == 2]
    with pytest.raises(KeyError, match="missing"):
        basket_analysis.association_rules_table(itemsets.drop(index=pairs.index[0]))


def test_itemsets_and_summary_share_one_pass():
    country = {f"{100000 + k}": "UK" if k % 3 else "FR" for k in range(300)}
    cleaned = make_cleaned(random_baskets(300, 10, seed=8), country=country)
    mining = basket_analysis.RuleMining(min_support=0.05, max_basket_size=5)
    itemsets, summary = basket_analysis.itemsets_and_summary(cleaned, mining, min_invoices=50)
    by_country = basket_analysis.itemsets_by_country(cleaned, mining, min_invoices=50)
    pd.testing.assert_frame_equal(itemsets, by_country)
    assert summary == basket_analysis.basket_summary(cleaned, max_basket_size=5)
    assert set(itemsets["country"].dropna()) == {"UK", "FR"}
    for country in ("UK", "FR"):
        alone = basket_analysis.frequent_itemsets(
            cleaned, min_support=0.05, max_basket_size=5, country=country, min_support_count=10
        )
        mined = itemsets[itemsets["country"] == country].drop(columns="itemset_id").reset_index(drop=True)
        pd.testing.assert_frame_equal(mined, alone.drop(columns="itemset_id"))
