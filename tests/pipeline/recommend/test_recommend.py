"""Tests for pipeline.recommend: components, hybrid, metrics, temporal evaluation and the served table."""

from __future__ import annotations

import copy
import dataclasses
import io
import json
import math

import numpy as np
import pandas as pd
import pytest

from pipeline.baskets import basket_analysis
from pipeline.common import codes
from pipeline.recommend import components, evaluation, holdouts, plots, schemas, serving, settings
from pipeline.recommend.hybrid import HybridRecommender


def _lines(rows: list[tuple], descriptions: dict[str, str] | None = None) -> pd.DataFrame:
    """Cleaned-style lines from (invoice, stock_code, customer_id, invoice_date) tuples."""
    frame = pd.DataFrame(rows, columns=["invoice", "stock_code", "customer_id", "invoice_date"])
    descriptions = descriptions or {}
    return frame.assign(
        customer_id=frame["customer_id"].astype("Int64"),
        invoice_date=pd.to_datetime(frame["invoice_date"]),
        description=frame["stock_code"].map(lambda code: descriptions.get(code, f"ITEM {code}")),
    )


def _shop(*, n_customers: int = 80, n_days: int = 300, random_state: int = 0) -> pd.DataFrame:
    """A small shop: 5 product families, customers loyal to one or two families, regular reorders.

    Also holds guest invoices and service lines (POST), which the recommenders must ignore.
    """
    rng = np.random.default_rng(random_state)
    families = [[f"{10000 + 100 * f + i}" for i in range(8)] for f in range(5)]
    families[4] = [*families[4][:6], "DCGS0058", "22423B"]
    catalogue = [code for family in families for code in family]
    start = pd.Timestamp("2010-01-04")
    rows, invoice = [], 500000
    for customer in range(1, n_customers + 1):
        favourites = rng.choice(5, size=2, replace=False)
        staples = rng.choice(families[favourites[0]], size=3, replace=False)
        day = int(rng.integers(0, 40))
        while day < n_days:
            invoice += 1
            when = start + pd.Timedelta(days=day, hours=int(rng.integers(8, 18)))
            basket = set(staples[rng.random(3) < 0.7])
            basket |= set(
                rng.choice(families[favourites[int(rng.random() < 0.3)]], size=int(rng.integers(1, 4)))
            )
            if rng.random() < 0.2:
                basket.add(rng.choice(catalogue))
            for code in sorted(basket):
                rows.append((str(invoice), code, customer, when))
            if rng.random() < 0.3:
                rows.append((str(invoice), "POST", customer, when))
            day += int(rng.integers(7, 45))
    for _ in range(60):
        invoice += 1
        when = start + pd.Timedelta(days=int(rng.integers(0, n_days)))
        for code in rng.choice(families[int(rng.integers(0, 5))], size=3, replace=False):
            rows.append((str(invoice), code, None, when))
    return _lines(rows, {code: f"PRODUCT {code}" for code in catalogue})


@pytest.fixture(scope="module")
def shop() -> pd.DataFrame:
    return _shop()


# Hand-computed metrics with k = 3:
# customer 1: [A, B, C] vs {B, X}: one hit at rank 2.
# customer 2: [D, E] vs {D, E, F, G}: hits at ranks 1 and 2.
# customer 3: no recommendation vs {A}: nothing.
_D2, _D3 = 1 / math.log2(3), 1 / math.log2(4)
_EXPECTED = {
    1: {"n_hits": 1, "precision_at_k": 1 / 3, "recall_at_k": 1 / 2, "ndcg_at_k": _D2 / (1 + _D2), "hit": 1.0},
    2: {
        "n_hits": 2,
        "precision_at_k": 2 / 3,
        "recall_at_k": 2 / 4,
        "ndcg_at_k": (1 + _D2) / (1 + _D2 + _D3),
        "hit": 1.0,
    },
    3: {"n_hits": 0, "precision_at_k": 0.0, "recall_at_k": 0.0, "ndcg_at_k": 0.0, "hit": 0.0},
}


def test_ranking_metrics_by_hand():
    recs = pd.DataFrame(
        {
            "customer_id": [1, 1, 1, 2, 2, 9],
            "rank": [1, 2, 3, 1, 2, 1],
            "stock_code": ["A", "B", "C", "D", "E", "A"],
        }
    )
    relevant = pd.DataFrame(
        {"customer_id": [1, 1, 2, 2, 2, 2, 3], "stock_code": ["B", "X", "D", "E", "F", "G", "A"]}
    )
    metrics = evaluation.ranking_metrics(recs, relevant, k=3).set_index("customer_id")
    # Customer 9 has no relevant set: not evaluated.
    assert metrics.index.tolist() == [1, 2, 3]
    for customer, expected in _EXPECTED.items():
        row = metrics.loc[customer]
        assert row["n_hits"] == expected["n_hits"]
        assert row["precision_at_k"] == pytest.approx(expected["precision_at_k"])
        assert row["recall_at_k"] == pytest.approx(expected["recall_at_k"])
        assert row["ndcg_at_k"] == pytest.approx(expected["ndcg_at_k"])
        assert row["hit_rate_at_k"] == expected["hit"]


def test_ranking_metrics_cut_at_k():
    recs = pd.DataFrame({"customer_id": [1, 1], "rank": [1, 2], "stock_code": ["A", "B"]})
    relevant = pd.DataFrame({"customer_id": [1], "stock_code": ["B"]})
    row = evaluation.ranking_metrics(recs, relevant, k=1).iloc[0]
    assert row["n_hits"] == 0 and row["hit_rate_at_k"] == 0


@pytest.mark.parametrize(
    ("recs", "message"),
    [
        ({"customer_id": [1, 1], "rank": [1, 2], "stock_code": ["A", "A"]}, "same product"),
        ({"customer_id": [1, 1], "rank": [1, 1], "stock_code": ["A", "B"]}, "share a rank"),
        ({"customer_id": [1], "rank": [0], "stock_code": ["A"]}, "ranks start at 1"),
    ],
)
def test_ranking_metrics_reject_malformed_lists(recs, message):
    relevant = pd.DataFrame({"customer_id": [1], "stock_code": ["A"]})
    with pytest.raises(ValueError, match=message):
        evaluation.ranking_metrics(pd.DataFrame(recs), relevant, k=3)


def test_temporal_split_relevant_sets():
    lines = _lines(
        [
            ("1", "10001", 1, "2010-01-05"),
            ("1", "10002", 1, "2010-01-05"),
            ("2", "10001", 1, "2010-02-05"),
            ("3", "10003", 1, "2010-02-06"),
            ("4", "10004", 2, "2010-02-07"),  # only after the cutoff: not evaluated
            ("5", "10005", 3, "2010-01-07"),  # only before: not evaluated
            ("6", "10001", 4, "2010-01-08"),
            ("7", "10001", 4, "2010-02-08"),  # a pure repurchase: left out of new_only
            ("8", "10009", 1, "2010-05-01"),  # after the test window
            ("9", "POST", 1, "2010-02-09"),  # not a product
        ]
    )
    train, test, relevant = evaluation.temporal_split(lines, cutoff=pd.Timestamp("2010-02-01"), test_months=1)
    assert train["invoice_date"].max() < pd.Timestamp("2010-02-01")
    assert set(test["invoice"]) == {"2", "3", "4", "7"}
    pairs = {setting: set(map(tuple, frame.to_numpy().tolist())) for setting, frame in relevant.items()}
    assert pairs["any"] == {(1, "10001"), (1, "10003"), (4, "10001")}
    assert pairs["new_only"] == {(1, "10003")}


@pytest.fixture
def basket_lines() -> pd.DataFrame:
    # Ends on 2010-03-31. Customers 1-3 bought A within the last 7 days, customer 4 bought B and C long ago.
    return _lines(
        [
            ("1", "10001", 1, "2010-03-30"),
            ("1", "10002", 1, "2010-03-30"),
            ("2", "10001", 2, "2010-03-29"),
            ("3", "10001", 3, "2010-03-28"),
            ("3", "10003", 3, "2010-03-28"),
            ("4", "10002", 4, "2010-01-01"),
            ("5", "10003", 4, "2010-01-02"),
            ("6", "10002", 5, "2010-01-03"),
            ("7", "10002", 1, "2010-01-31"),
            ("8", "10002", 1, "2010-03-01"),
            ("9", "10004", None, "2010-03-31"),
            ("9", "10004", None, "2010-03-31"),
        ]
    )


def test_popularity_counts_recent_customers(basket_lines):
    model = components.PopularityRecommender(window_days=7).fit(basket_lines)
    recs = model.recommend([1, 999], k=4)
    # Recent customers: A=3, C=1, B=1 (customer 1 on 30 March), D only guests. All-time breaks the B/C tie.
    assert recs[recs["customer_id"] == 999]["stock_code"].tolist() == ["10001", "10002", "10003", "10004"]
    total = np.array([3, 3, 2, 0])
    expected = np.array([3, 1, 1, 0]) + total / (total.max() + 1)
    np.testing.assert_allclose(recs[recs["customer_id"] == 999]["score"], expected)
    new_only = model.recommend([1], k=4, exclude_purchased=True)
    assert new_only["stock_code"].tolist() == ["10003", "10004"]
    assert new_only["rank"].tolist() == [1, 2]
    reason = model.explain(recs.head(1)).iloc[0]
    assert reason == "popular this season: 3 customers bought it in the last 7 days"


def test_buy_again_scores_decay_with_age(basket_lines):
    model = components.BuyAgainRecommender(half_life_days=30).fit(basket_lines)
    recs = model.recommend([1, 4], k=5)
    end = pd.Timestamp("2010-03-31")

    def decay(day: str) -> float:
        return 0.5 ** ((end - pd.Timestamp(day)).total_seconds() / 86400 / 30)

    first = recs[recs["customer_id"] == 1].set_index("stock_code")["score"]
    assert first.to_dict() == pytest.approx(
        {
            "10002": decay("2010-03-30") + decay("2010-01-31") + decay("2010-03-01"),
            "10001": decay("2010-03-30"),
        }
    )
    assert recs[recs["customer_id"] == 4]["stock_code"].tolist() == ["10003", "10002"]
    assert model.recommend([1], k=5, exclude_purchased=True).empty
    reasons = model.explain(recs[recs["customer_id"] == 1]).tolist()
    assert reasons == ["you bought this 3 times, last on 30 Mar 2010", "you bought this on 30 Mar 2010"]


def _cosine(shop: pd.DataFrame, model: components.ItemKNNRecommender) -> tuple[np.ndarray, np.ndarray]:
    """Brute-force binary customer x product matrix and item-item cosine (no self-similarity)."""
    x = (model.history_.counts.toarray() > 0).astype(float)
    norms = np.linalg.norm(x, axis=0)
    similarity = (x.T @ x) / np.outer(norms, norms).clip(min=1e-12)
    np.fill_diagonal(similarity, 0)
    return x, similarity


def test_item_knn_matches_brute_force(shop):
    model = components.ItemKNNRecommender(n_neighbors=None, weighting="binary").fit(shop)
    history = model.history_
    x, similarity = _cosine(shop, model)
    expected = x @ similarity
    recs = model.recommend(history.customer_ids[:10], k=5)
    for customer, group in recs.groupby("customer_id"):
        row = expected[np.searchsorted(history.customer_ids, customer)]
        cols = history.product_positions(group["stock_code"].to_numpy())
        np.testing.assert_allclose(group["score"], row[cols], rtol=1e-5)
        # The five best brute-force scores, whatever the tie order.
        np.testing.assert_allclose(np.sort(group["score"])[::-1], np.sort(row)[::-1][:5], rtol=1e-5)


def test_item_knn_keeps_the_nearest_neighbours(shop):
    model = components.ItemKNNRecommender(n_neighbors=3, weighting="binary").fit(shop)
    _, similarity = _cosine(shop, model)
    pruned = model.similarity_.toarray()
    assert ((pruned > 0).sum(axis=1) <= 3).all()
    # Kept values are the three largest of each row (which of several tied neighbours is kept is arbitrary).
    np.testing.assert_allclose(
        np.sort(pruned, axis=1)[:, -3:], np.sort(similarity, axis=1)[:, -3:], rtol=1e-5
    )
    kept = pruned > 0
    np.testing.assert_allclose(pruned[kept], similarity[kept], rtol=1e-5)


def test_item_knn_names_the_most_similar_purchase(shop):
    model = components.ItemKNNRecommender().fit(shop)
    recs = model.recommend([1, 2], k=3, exclude_purchased=True)
    reasons = model.explain(recs)
    bought = set(shop.loc[shop["customer_id"].isin([1, 2]), "description"])
    for reason in reasons:
        assert reason.startswith("customers who bought ") and reason.endswith(" also bought it")
        assert reason.removeprefix("customers who bought ").removesuffix(" also bought it") in bought


def test_svd_recommender_reconstructs_the_matrix(shop):
    model = components.SVDRecommender(n_components=4, weighting="log_count", random_state=0).fit(shop)
    history = model.history_
    dense = np.log1p(history.counts.toarray())
    u, s, vt = np.linalg.svd(dense, full_matrices=False)
    expected = (u[:, :4] * s[:4]) @ vt[:4]
    recs = model.recommend(history.customer_ids[:15], k=4)
    rows = np.searchsorted(history.customer_ids, recs["customer_id"].to_numpy(dtype=np.int64))
    cols = history.product_positions(recs["stock_code"].to_numpy())
    # Randomized SVD with power iterations is exact up to a small relative error.
    np.testing.assert_allclose(recs["score"], expected[rows, cols], rtol=1e-4)
    assert (model.explain(recs.head(2)) == "customers with tastes like yours bought it").all()


def test_rules_recommender_with_external_rules():
    lines = _lines(
        [
            ("1", "10001", 1, "2010-01-01"),
            ("1", "10003", 1, "2010-01-01"),
            ("2", "10001", 2, "2010-01-02"),
            ("3", "10005", 3, "2010-01-03"),
            ("4", "10002", 4, "2010-01-04"),
            ("5", "10004", 4, "2010-01-05"),
        ],
        {"10001": "PINK REGENCY TEACUP AND SAUCER", "10003": "ROSES REGENCY TEACUP AND SAUCER"},
    )
    rules = pd.DataFrame(
        {
            "antecedents": [["10001"], np.array(["10003", "10001"]), ["POST"], ["10001"], ["10001"]],
            "consequents": [["10002"], ["10004"], ["10002"], ["POST"], ["10005"]],
            "confidence": [0.8, 0.5, 0.99, 0.99, 0.9],
            "lift": [22.4, 3.0, 50.0, 50.0, 30.0],
            "support": [0.02, 0.01, 0.1, 0.1, 0.05],
            "is_redundant": [False, False, False, False, True],
        }
    )
    model = components.RulesRecommender(rules=rules).fit(lines)
    # Non-product and redundant rules are dropped.
    assert len(model.rules_) == 2
    recs = model.recommend([1, 2, 3], k=5)
    assert recs[recs["customer_id"] == 1]["stock_code"].tolist() == ["10002", "10004"]
    np.testing.assert_allclose(recs[recs["customer_id"] == 1]["score"], [0.8, 0.5])
    assert recs[recs["customer_id"] == 2]["stock_code"].tolist() == ["10002"]
    assert recs[recs["customer_id"] == 3].empty
    reasons = model.explain(recs[recs["customer_id"] == 1]).tolist()
    assert reasons[0] == "often bought with PINK REGENCY TEACUP AND SAUCER, lift 22"
    assert reasons[1] == (
        "often bought with PINK REGENCY TEACUP AND SAUCER and ROSES REGENCY TEACUP AND SAUCER, lift 3"
    )
    with_lift = components.RulesRecommender(rules=rules, score="confidence_lift").fit(lines)
    np.testing.assert_allclose(with_lift.recommend([1], k=5)["score"], [0.8 * 22.4, 0.5 * 3.0])


def test_rules_prefer_all_country_rules():
    rules = pd.DataFrame(
        {
            "antecedents": [["10001"], ["10001"]],
            "consequents": [["10002"], ["10003"]],
            "confidence": [0.5, 0.9],
            "lift": [2.0, 9.0],
            "support": [0.1, 0.1],
            "country": [None, "EIRE"],
        }
    )
    lines = _lines(
        [("1", "10001", 1, "2010-01-01"), ("2", "10002", 2, "2010-01-01"), ("3", "10003", 2, "2010-01-02")]
    )
    model = components.RulesRecommender(rules=rules).fit(lines)
    assert model.rules_["consequents"].tolist() == [["10002"]]


def _products_only(lines: pd.DataFrame) -> pd.DataFrame:
    """The shop as cleaned transactions hold it: product lines only (cleaning rejects POST), and countries."""
    kept = lines[codes.is_product_code(lines["stock_code"])].reset_index(drop=True)
    return kept.assign(country=np.where(kept["customer_id"].fillna(0) % 4 == 0, "EIRE", "United Kingdom"))


def _planted(shop: pd.DataFrame, cutoff: pd.Timestamp) -> pd.DataFrame:
    """The shop plus a pair of rarely co-bought products that is bought together in every invoice after
    ``cutoff``: a rule that only lines after the cutoff support."""
    rare = ("10007", "10107")
    after = shop[shop["invoice_date"] >= cutoff].drop_duplicates("invoice")
    extra = pd.concat([after.assign(stock_code=code, description=f"PRODUCT {code}") for code in rare])
    planted = pd.concat([shop, extra], ignore_index=True).drop_duplicates(["invoice", "stock_code"])
    return planted.sort_values(["invoice_date", "invoice", "stock_code"]).reset_index(drop=True)


def _has_rule(rules: pd.DataFrame, antecedent: str, consequent: str) -> bool:
    return any(list(a) == [antecedent] and list(c) == [consequent]
               for a, c in zip(rules["antecedents"], rules["consequents"], strict=True))


MINING = basket_analysis.RuleMining(min_support=0.02, min_confidence=0.5, min_lift=1.5, max_len=3)


def test_rules_mined_at_fit_time_see_only_the_fitted_lines(shop):
    cutoff = pd.Timestamp("2010-09-01")
    planted = _planted(_products_only(shop), cutoff)
    everything = components.RulesRecommender(mining=MINING).fit(planted)
    before = components.RulesRecommender(mining=MINING).fit(planted[planted["invoice_date"] < cutoff])
    # The planted pair is a strong rule on all lines, and unknown to a fit on the lines before the cutoff.
    assert _has_rule(everything.rules_, "10007", "10107")
    assert not _has_rule(before.rules_, "10007", "10107")
    assert len(before.rules_) > 0


def test_rules_component_mines_exactly_like_the_rules_table(shop):
    lines = _products_only(shop)
    fitted = components.RulesRecommender(mining=MINING).fit(lines)
    table = basket_analysis.rules_by_country(lines, MINING, min_invoices=20)
    pd.testing.assert_frame_equal(fitted.rules_, components._prepare_rules(table), check_exact=True)
    assert fitted.rules_["confidence"].min() >= MINING.min_confidence
    assert fitted.rules_["lift"].min() >= MINING.min_lift


def test_evaluated_and_tuned_rules_are_the_served_rules(shop):
    # The served rules table is mined with MINING; the evaluation's rules component must mine with the same
    # miner and settings on the lines before its cutoff, and tuning must weigh that component.
    products = _products_only(shop)
    cutoff = products["invoice_date"].max().normalize() + pd.Timedelta(days=1) - pd.DateOffset(months=2)
    lines = _planted(products, cutoff)
    served = basket_analysis.rules_by_country(lines, MINING, min_invoices=20)
    tables = serving.recommend_and_evaluate(lines, served, k=5, test_months=2, validation_months=2,
                                              mining=MINING)
    test_cutoff = tables.evaluation["cutoff_date"].iloc[0]
    assert test_cutoff == cutoff
    pre_cutoff_lines = lines[lines["invoice_date"] < test_cutoff]
    pre_cutoff = basket_analysis.rules_by_country(pre_cutoff_lines, MINING, min_invoices=20)
    pd.testing.assert_frame_equal(
        tables.evaluation_rules, components._prepare_rules(pre_cutoff), check_exact=True
    )
    pd.testing.assert_frame_equal(tables.served_rules, components._prepare_rules(served), check_exact=True)
    # No leakage: the pair planted after the cutoff is served but was not evaluated.
    assert _has_rule(tables.served_rules, "10007", "10107")
    assert not _has_rule(tables.evaluation_rules, "10007", "10107")
    params = json.loads(
        tables.evaluation.set_index(["model", "setting"]).loc[("rules", "any"), "params"]
    )
    assert params["mining"] == dataclasses.asdict(MINING)
    assert params["n_rules"] == len(tables.evaluation_rules)
    # The tuning that chose the served weights mined with the same settings: with other settings the
    # evaluation (and its tuned weights) differ.
    default = serving.recommend_and_evaluate(lines, served, k=5, test_months=2, validation_months=2)
    assert len(default.evaluation_rules) != len(tables.evaluation_rules)


@pytest.fixture(scope="module")
def fitted_hybrid(shop) -> HybridRecommender:
    return HybridRecommender(components=components.default_components(), random_state=0).fit(shop)


@pytest.fixture
def hybrid(fitted_hybrid) -> HybridRecommender:
    """The fitted hybrid with its own parameters: tests that set weights don't change what others see."""
    return copy.copy(fitted_hybrid)


@pytest.mark.parametrize("exclude_purchased", [False, True])
def test_every_model_serves_at_most_k_distinct_products(shop, hybrid, exclude_purchased):
    customers = hybrid.history_.customer_ids
    bought = shop.loc[shop["customer_id"].notna(), ["customer_id", "stock_code"]].drop_duplicates()
    bought_pairs = set(zip(bought["customer_id"].astype(int), bought["stock_code"], strict=True))
    models = {**hybrid.components_, "hybrid": hybrid}
    for name, model in models.items():
        recs = model.recommend(customers, k=5, exclude_purchased=exclude_purchased)
        if name == "buy_again" and exclude_purchased:
            assert recs.empty
            continue
        sizes = recs.groupby("customer_id").size()
        assert sizes.max() <= 5, name
        assert not recs.duplicated(["customer_id", "stock_code"]).any(), name
        assert codes.is_product_code(recs["stock_code"]).all(), name
        assert (recs.groupby("customer_id")["rank"].max() == sizes).all(), name
        if exclude_purchased:
            pairs = set(zip(recs["customer_id"].astype(int), recs["stock_code"], strict=True))
            assert not pairs & bought_pairs, name
    hybrid_recs = hybrid.recommend(customers, k=5, exclude_purchased=exclude_purchased)
    # The popularity fallback fills every list.
    assert (hybrid_recs.groupby("customer_id").size() == 5).all()


def test_hybrid_serves_cold_start_customers_with_popular_products(hybrid):
    recs = hybrid.recommend([424242], k=4)
    popular = hybrid.components_["popularity"].recommend([424242], k=4)
    assert recs["stock_code"].tolist() == popular["stock_code"].tolist()
    assert (recs["source"] == "popularity").all()
    assert hybrid.explain(recs).str.startswith(("popular this season", "a steady seller")).all()


def test_hybrid_sources_and_reasons(hybrid):
    recs = hybrid.set_params(weights={"buy_again": 2.0, "svd": 1.0, "item_knn": 1.0, "rules": 1.0}).recommend(
        hybrid.history_.customer_ids[:20], k=6
    )
    assert set(recs["source"]) <= set(settings.COMPONENT_NAMES)
    assert "buy_again" in set(recs["source"])
    reasons = hybrid.explain(recs)
    assert reasons.notna().all() and (reasons.str.len() > 0).all()
    again = reasons[recs["source"] == "buy_again"]
    assert again.str.startswith("you bought this").all()


def test_hybrid_weights_change_the_blend(hybrid):
    customers = hybrid.history_.customer_ids[:20]
    only_again = hybrid.set_params(weights={"buy_again": 1.0}).recommend(customers, k=3)
    direct = hybrid.components_["buy_again"].recommend(customers, k=3)
    merged = only_again.merge(direct, on=["customer_id", "rank"], suffixes=("", "_direct"))
    assert (merged["stock_code"] == merged["stock_code_direct"]).all()
    with pytest.raises(ValueError, match="unknown components"):
        hybrid.set_params(weights={"magic": 1.0}).recommend(customers, k=3)


def test_components_do_not_mutate_their_input(shop):
    before = shop.copy()
    HybridRecommender().fit(shop)
    pd.testing.assert_frame_equal(shop, before)


@pytest.fixture(scope="module")
def shop_metrics(shop) -> pd.DataFrame:
    return evaluation.evaluate(shop, cutoff=pd.Timestamp("2010-09-01"), test_months=2, validation_months=2)


def test_evaluate_table(shop_metrics):
    schemas.RecommenderMetrics.validate(shop_metrics)
    assert len(shop_metrics) == 12
    assert set(zip(shop_metrics["model"], shop_metrics["setting"], strict=True)) == {
        (model, setting) for model in settings.MODEL_NAMES for setting in settings.SETTINGS
    }
    again = shop_metrics.set_index(["model", "setting"]).loc[("buy_again", "new_only")]
    assert again["hit_rate_at_k"] == 0 and again["catalogue_coverage"] == 0
    assert shop_metrics.groupby("setting")["n_customers"].nunique().eq(1).all()
    weights = json.loads(shop_metrics.set_index(["model", "setting"]).loc[("hybrid", "new_only"), "params"])
    assert weights["weights"]["buy_again"] == 0


def test_evaluate_does_not_learn_from_the_test_window(shop, shop_metrics):
    # Shuffle which products were bought after the cutoff, keeping who bought when. Models fitted on the past
    # only must recommend exactly the same lists: same tuned weights and same catalogue coverage in the "any"
    # setting (whose customers do not change), while the hit metrics move.
    cutoff = pd.Timestamp("2010-09-01")
    shuffled = shop.copy()
    future = shuffled["invoice_date"] >= cutoff
    shuffled.loc[future, "stock_code"] = (
        shuffled.loc[future, "stock_code"].sample(frac=1, random_state=1).to_numpy()
    )
    after = evaluation.evaluate(shuffled, cutoff=cutoff, test_months=2, validation_months=2)
    before_any = shop_metrics[shop_metrics["setting"] == "any"].set_index("model")
    after_any = after[after["setting"] == "any"].set_index("model")
    pd.testing.assert_series_equal(before_any["catalogue_coverage"], after_any["catalogue_coverage"])
    pd.testing.assert_series_equal(shop_metrics["params"], after["params"])
    assert not np.allclose(before_any["hit_rate_at_k"], after_any["hit_rate_at_k"])


def test_recommend_all_settings_table(shop):
    rules = pd.DataFrame(
        {
            "antecedents": [["10000"], ["10000"]],
            "consequents": [["POST"], ["10001"]],
            "confidence": [0.99, 0.6],
            "lift": [40.0, 4.0],
            "support": [0.2, 0.1],
        }
    )
    table = serving.recommend_all_settings(shop, rules, k=4, validation_months=2)
    schemas.Recommendations.validate(table)
    assert set(table["setting"]) == {"any", "new_only"}
    customers = set(shop["customer_id"].dropna().astype(int))
    for _, part in table.groupby("setting"):
        assert set(part["customer_id"].astype(int)) == customers
        assert (part.groupby("customer_id").size() == 4).all()
    assert codes.is_product_code(table["stock_code"]).all()
    bought = set(
        zip(
            shop["customer_id"].dropna().astype(int),
            shop.loc[shop["customer_id"].notna(), "stock_code"],
            strict=True,
        )
    )
    discovery = table[table["setting"] == "new_only"]
    assert not set(zip(discovery["customer_id"].astype(int), discovery["stock_code"], strict=True)) & bought
    assert table["description"].str.startswith("PRODUCT ").all()


def test_recommend_all_single_setting_matches_the_combined_table(shop):
    weights = {"any": {"buy_again": 2.0, "svd": 1.0, "popularity": 0.5}}
    single = serving.recommend_all(shop, k=3, weights=weights["any"])
    combined = serving.recommend_all_settings(shop, k=3, settings=["any"], weights=weights)
    pd.testing.assert_frame_equal(single, combined)
    assert (single["setting"] == "any").all()
    with pytest.raises(ValueError, match="settings"):
        serving.recommend_all_settings(shop, settings=["everything"], weights=weights)


def test_recommender_metrics_figure(shop_metrics):
    figure = plots.recommender_metrics_figure(shop_metrics)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    assert buffer.getvalue()[:4] == b"\x89PNG"
    assert [axes.get_title().split(" ")[0] for axes in figure.axes] == ["any", "new_only"]
    with pytest.raises(ValueError, match="lacks"):
        plots.recommender_metrics_figure(shop_metrics.drop(columns="ndcg_at_k"))


@pytest.fixture(scope="module")
def real_metrics(request) -> pd.DataFrame:
    cleaned = request.getfixturevalue("real_cleaned")
    return evaluation.evaluate(cleaned)


def test_hybrid_beats_every_component_on_the_real_sheet(real_metrics):
    schemas.RecommenderMetrics.validate(real_metrics)
    assert real_metrics["cutoff_date"].iloc[0] == pd.Timestamp("2010-09-10")
    table = real_metrics.set_index(["setting", "model"])
    for setting in settings.SETTINGS:
        hybrid = table.loc[(setting, "hybrid")]
        for model in settings.COMPONENT_NAMES:
            component = table.loc[(setting, model)]
            assert hybrid["hit_rate_at_k"] > component["hit_rate_at_k"], (setting, model)
            assert hybrid["ndcg_at_k"] > component["ndcg_at_k"], (setting, model)
    # Sanity against the full-data reference: buy-again and SVD are strong when repurchases count.
    assert table.loc[("any", "buy_again"), "hit_rate_at_k"] > 0.7
    assert table.loc[("new_only", "svd"), "hit_rate_at_k"] > 0.4


def test_short_data_recommends_with_default_weights_and_evaluation_says_why(shop, caplog):
    week = shop[shop["invoice_date"] < pd.Timestamp("2010-01-11")]
    with caplog.at_level("WARNING", logger="pipeline.recommend.serving"):
        table = serving.recommend_all_settings(week, k=3)
    assert "DEFAULT_WEIGHTS" in caplog.text
    expected = serving.recommend_all_settings(week, k=3, weights=settings.DEFAULT_WEIGHTS)
    pd.testing.assert_frame_equal(table, expected)
    assert set(table["customer_id"].astype(int)) == set(week["customer_id"].dropna().astype(int))
    with pytest.raises(holdouts.ValidationSplitError, match=r"the data spans 2010-01-0\d to 2010-01-\d\d"):
        evaluation.evaluate(week)


def _reference_top_n(scores: np.ndarray, n: int) -> list[list[tuple[int, float]]]:
    """The selection as first written: argpartition, then sort the chosen columns by score and column."""
    n = min(n, scores.shape[1])
    part = np.argpartition(-scores, n - 1, axis=1)[:, :n]
    values = np.take_along_axis(scores, part, axis=1)
    order = np.lexsort((part, -values), axis=1)
    part, values = np.take_along_axis(part, order, axis=1), np.take_along_axis(values, order, axis=1)
    return [
        [(int(c), float(v)) for c, v in zip(p, w, strict=True) if v > 0]
        for p, w in zip(part, values, strict=True)
    ]


@pytest.mark.parametrize("n", [1, 3, 8, 12])
def test_top_k_keeps_the_argpartition_selection_even_with_ties(n):
    rng = np.random.default_rng(n)
    # Few distinct values, so many rows tie at the n-th place; zeros and -inf are never returned.
    scores = rng.integers(-1, 5, size=(300, 12)).astype(np.float64)
    scores[rng.random(scores.shape) < 0.1] = -np.inf
    row, column, value, rank = components._top_k(scores, n, positive_only=True)
    found = [[] for _ in range(len(scores))]
    for r, c, v, k in zip(row, column, value, rank, strict=True):
        assert k == len(found[r]) + 1
        found[r].append((int(c), float(v)))
    assert found == _reference_top_n(scores, n)


def test_blocked_cosine_similarity_equals_the_full_product(shop):
    history = components.ItemKNNRecommender().fit(shop).history_
    columns = components.normalize(history.counts.tocsc(), norm="l2", axis=0)
    expected = np.asarray(columns.T @ columns.toarray(), dtype=np.float32)
    np.testing.assert_array_equal(components._cosine_similarity(columns, n_blocks=3), expected)


def test_pool_score_equals_tensordot(hybrid):
    (candidates,) = hybrid._component_candidate_sets(hybrid.history_.customer_ids, settings=(False,), n=20)
    pool = hybrid._pool(candidates, len(hybrid.history_.customer_ids), n=20)
    for weights in ([1.0, 2.0, 0.5, 0.25, 8.0], [0.0, 4.0, 1.0, 0.0, 2.0]):
        vector = np.array(weights)
        expected = np.tensordot(vector.astype(np.float32), pool.norms, axes=1) + pool.base
        np.testing.assert_array_equal(pool.score(vector), expected)


@pytest.mark.parametrize("exclude_purchased", [False, True])
def test_batched_serving_equals_one_pool(hybrid, monkeypatch, exclude_purchased):
    customers = hybrid.history_.customer_ids
    # Rule confidences repeat, so several customers tie at the 3rd place.
    monkeypatch.setattr(hybrid, "weights", {"rules": 1.0})
    whole = hybrid.recommend(customers, k=3, exclude_purchased=exclude_purchased)
    deferred = []
    top_k = components._top_k

    def counting_top_k(*args, **kwargs):
        found = top_k(*args, **kwargs)
        if kwargs.get("defer_ties"):
            deferred.extend(found[-1])
        return found

    # Tiny blocks: tied customers are set aside, then resolved on rows padded to the whole pool's width.
    monkeypatch.setattr("pipeline.recommend.hybrid._top_k", counting_top_k)
    monkeypatch.setattr("pipeline.recommend.hybrid._SERVE_BATCH", 8)
    monkeypatch.setattr("pipeline.recommend.components._BATCH_ROWS", 4)
    batched = hybrid.recommend(customers, k=3, exclude_purchased=exclude_purchased)
    pd.testing.assert_frame_equal(batched, whole)
    assert deferred


@pytest.mark.parametrize(("validation_months", "n_jobs"), [(2, None), (1, None), (2, 2)])
def test_recommend_and_evaluate_equals_the_separate_calls(shop, validation_months, n_jobs):
    rules = pd.DataFrame(
        {
            "antecedents": [["10000"], ["10101"]],
            "consequents": [["10001"], ["10102"]],
            "confidence": [0.6, 0.4],
            "lift": [4.0, 3.0],
            "support": [0.1, 0.05],
        }
    )
    before = shop.copy()
    tables = serving.recommend_and_evaluate(
        shop, rules, k=5, test_months=2, validation_months=validation_months, random_state=1, n_jobs=n_jobs
    )
    pd.testing.assert_frame_equal(shop, before)
    assert tables.evaluation_error is None
    pd.testing.assert_frame_equal(
        tables.evaluation,
        evaluation.evaluate(shop, test_months=2, k=5, validation_months=validation_months, random_state=1),
        check_exact=True,
    )
    pd.testing.assert_frame_equal(
        tables.recommendations,
        serving.recommend_all_settings(
            shop, rules, k=5, validation_months=validation_months, random_state=1
        ),
        check_exact=True,
    )


def test_recommend_and_evaluate_on_short_data_serves_and_says_why_it_cannot_evaluate(shop):
    week = shop[shop["invoice_date"] < pd.Timestamp("2010-01-11")]
    tables = serving.recommend_and_evaluate(week, k=3)
    assert tables.evaluation is None
    assert isinstance(tables.evaluation_error, holdouts.ValidationSplitError)
    assert "the data spans" in str(tables.evaluation_error)
    pd.testing.assert_frame_equal(tables.recommendations, serving.recommend_all_settings(week, k=3))


def test_customer_ids_are_plain_integers_in_every_table(shop):
    # customer_id means one thing everywhere: int64 wherever it is never null (every analytics table),
    # nullable Int64 only in the sales lines, where guests have none.
    from pipeline.customers import rfm_segments
    from pipeline.recommend import svd as svd_module

    tables = serving.recommend_and_evaluate(_products_only(shop), k=3, test_months=2, validation_months=2)
    result = svd_module.fit_svd(svd_module.customer_product_matrix(shop), n_components=4)
    frames = {
        "recommendations": tables.recommendations,
        "svd_customer_factors": result.customer_factors,
        "rfm": rfm_segments.rfm_table(shop.assign(revenue=1.0, price=1.0, quantity=1, country="UK")),
    }
    for name, frame in frames.items():
        assert frame["customer_id"].dtype == np.int64, name
