"""Honest temporal evaluation of the recommenders: ranking metrics, the temporal split and ``evaluate``.

What belongs here: the per-customer ranking metrics (:func:`ranking_metrics`), the temporal split with its
relevant sets (:func:`temporal_split`), and :func:`evaluate` with the metrics table it returns. The holdout
machinery shared with the tuning lives in ``holdouts``, the tuning in ``tuning``. No dagster imports.

Evaluation protocol (``evaluate``): every component is fitted on lines strictly before the cutoff; the test
set is the set of distinct products each customer bought in ``[cutoff, cutoff + test_months)``, for customers
with a ``customer_id`` active on both sides. In the ``new_only`` setting the relevant set is restricted to
products the customer had not bought before the cutoff, and customers whose restricted set is empty are left
out of that setting. The hybrid's blend weights are tuned on a validation split *inside* the training period
(the ``validation_months`` before the cutoff, components refitted on the lines before that), never on the test
window. Inside every such fit the rules component mines the fitted lines with
:func:`pipeline.baskets.basket_analysis.mine_rules` and the served table's
:class:`pipeline.baskets.basket_analysis.RuleMining` settings, so the evaluation and the tuning measure the
rules that are served. Products first sold in the test window stay in the relevant sets although no model can
recommend them. Component defaults (popularity window, item-kNN weighting, score normalisation) were chosen
the same way, on the 2010-06-10 split of the 2009-2010 training period.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Literal

import numpy as np
import pandas as pd

from pipeline.baskets import basket_analysis
from pipeline.recommend.components import RulesRecommender, _check_k, _Component
from pipeline.recommend.history import _distinct, _Lines, _product_lines
from pipeline.recommend.holdouts import (
    _default_cutoff,
    _hits_matrix,
    _Holdout,
    _holdout,
    _metrics_from_hits,
    _options,
    _relevant_pairs,
    _split_error,
)
from pipeline.recommend.settings import MODEL_NAMES, SETTINGS, WEIGHT_GRID
from pipeline.recommend.tuning import _tune


def temporal_split(
    lines: pd.DataFrame, *, cutoff: pd.Timestamp, test_months: int = 3
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, pd.DataFrame]]:
    """Split sales lines for a temporal holdout and build the relevant sets.

    Args:
        lines: Cleaned sales lines.
        cutoff: First instant of the test window; training lines are strictly before it.
        test_months: Length of the test window in calendar months.

    Returns:
        ``(train_lines, test_lines, relevant)`` where ``relevant`` maps each setting name to a frame
        ``customer_id, stock_code`` of distinct products bought in the test window by customers active on both
        sides, sorted by customer and product; for ``new_only`` the products bought before the cutoff are
        removed (and with them customers left with nothing).
    """
    kept = _product_lines(lines)
    coded = _Lines.from_frame(kept)
    cutoff = pd.Timestamp(cutoff)
    end = cutoff + pd.DateOffset(months=test_months)
    dates = kept["invoice_date"].to_numpy(dtype="datetime64[ns]").view(np.int64)
    train = kept[dates < cutoff.value]
    test = kept[(dates >= cutoff.value) & (dates < end.value)]
    n_products = len(coded.stock_codes)
    relevant = {
        setting: pd.DataFrame(
            {
                "customer_id": np.asarray(coded.customer_ids[pairs // n_products], dtype=np.int64),
                "stock_code": coded.stock_codes[pairs % n_products],
            }
        )
        for setting, pairs in _relevant_pairs(coded, cutoff, end).items()
    }
    return train, test, relevant


def ranking_metrics(recommendations: pd.DataFrame, relevant: pd.DataFrame, *, k: int = 10) -> pd.DataFrame:
    """Per-customer top-``k`` ranking metrics.

    The customers evaluated are those of ``relevant``; a customer without recommendations scores 0.
    Definitions, with ``hits`` the recommended products of rank <= k that are relevant:

    * ``precision_at_k = hits / k`` (a short list is not rewarded),
    * ``recall_at_k = hits / n_relevant``,
    * ``ndcg_at_k = sum over hits of 1 / log2(rank + 1)``, divided by the same sum for an ideal list of
      ``min(n_relevant, k)`` hits,
    * ``hit_rate_at_k = 1`` if ``hits > 0`` else 0.

    Args:
        recommendations: ``customer_id``, ``rank`` (1-based), ``stock_code``; distinct products per customer.
        relevant: ``customer_id``, ``stock_code`` pairs the customer actually bought.
        k: Cut-off rank.

    Returns:
        One row per customer: ``customer_id``, ``n_relevant``, ``n_hits`` and the four metrics.

    Raises:
        ValueError: If a customer is recommended the same product twice, ranks repeat or are below 1, or ``k <
            1``.
    """
    _check_k(k)
    relevant = relevant[["customer_id", "stock_code"]].drop_duplicates()
    customers = np.sort(relevant["customer_id"].astype("int64").unique())
    n_relevant = (
        relevant.groupby(relevant["customer_id"].astype("int64")).size().reindex(customers).to_numpy()
    )
    if (recommendations["rank"] < 1).any():
        raise ValueError("ranks start at 1")
    recs = recommendations.loc[recommendations["rank"] <= k, ["customer_id", "rank", "stock_code"]]
    if recs.duplicated(["customer_id", "stock_code"]).any():
        raise ValueError("a customer is recommended the same product twice")
    if recs.duplicated(["customer_id", "rank"]).any():
        raise ValueError("two recommendations of a customer share a rank")
    recs = recs.assign(customer_id=recs["customer_id"].astype("int64"))
    recs = recs[recs["customer_id"].isin(customers)]
    flagged = recs.merge(
        relevant.assign(customer_id=relevant["customer_id"].astype("int64"), _hit=True),
        on=["customer_id", "stock_code"],
        how="left",
    )
    is_hit = flagged["_hit"].notna().to_numpy()
    position = np.searchsorted(customers, flagged["customer_id"].to_numpy())
    hits = _hits_matrix(position, flagged["rank"].to_numpy(dtype=np.int64), is_hit, len(customers), k)
    metrics = _metrics_from_hits(hits, n_relevant)
    return pd.DataFrame(
        {
            "customer_id": np.asarray(customers, dtype=np.int64),
            "n_relevant": n_relevant.astype(np.int64),
            "n_hits": hits.sum(axis=1).astype(np.int64),
            **metrics,
        }
    )


def _component_params(component: _Component) -> dict[str, object]:
    """A component's hyperparameters for the metrics table; for rules, the mining settings and rule count."""
    params = {key: value for key, value in component.get_params().items() if key != "rules"}
    if isinstance(component, RulesRecommender):
        mining = component.mining or basket_analysis.RuleMining()
        params["mining"] = dataclasses.asdict(mining) if component.rules is None else None
        params["n_rules"] = len(component.rules_)
    return params


def _metrics_table(
    holdout: _Holdout,
    weights: Mapping[str, Mapping[str, float]],
    *,
    k: int,
    cutoff: pd.Timestamp,
    test_months: int,
) -> pd.DataFrame:
    """One row per (model, setting) of a holdout: every component alone and the hybrid with ``weights``."""
    hybrid = holdout.hybrid
    catalogue = len(hybrid.history_.stock_codes)
    rows = []
    for setting, exclude in SETTINGS.items():
        split = holdout.splits[setting]
        for model in MODEL_NAMES:
            if model == "hybrid":
                vector = hybrid._weight_vector(weights[setting], exclude_purchased=exclude)
                position, slot, _, rank = split.pool.blend(vector, k)
                product = split.pool.products[position, slot]
                params = {
                    "weights": weights[setting],
                    "normalization": hybrid.normalization,
                    "n_candidates": hybrid.n_candidates,
                }
            else:
                # Each component's own top-k is the head of its candidate list.
                found = split.candidates[model]
                head = found.rank <= k
                position, rank, product = found.position[head], found.rank[head], found.product[head]
                params = _component_params(hybrid.components_[model])
            per_customer = _metrics_from_hits(split.hits(position, rank, product, k), split.n_relevant)
            rows.append(
                {
                    "model": model,
                    "setting": setting,
                    "k": k,
                    "n_customers": len(split.customers),
                    **{
                        name: float(pd.Series(per_customer[name]).mean())
                        for name in ("precision_at_k", "recall_at_k", "ndcg_at_k", "hit_rate_at_k")
                    },
                    "catalogue_coverage": len(_distinct(product)) / catalogue,
                    "cutoff_date": cutoff,
                    "test_end_date": cutoff + pd.DateOffset(months=test_months),
                    "params": json.dumps(params, sort_keys=True, default=str),
                }
            )
    return pd.DataFrame(rows)


def evaluate(
    cleaned: pd.DataFrame,
    *,
    cutoff: pd.Timestamp | None = None,
    test_months: int = 3,
    k: int = 10,
    validation_months: int = 3,
    components: Mapping[str, _Component] | None = None,
    normalization: Literal["rank", "max"] = "max",
    n_candidates: int = 100,
    n_folds: int = 1,
    random_state: int | None = 0,
    mining: basket_analysis.RuleMining | None = None,
) -> pd.DataFrame:
    """Temporal-holdout evaluation of every component and the hybrid, in both settings.

    See the module docstring for the protocol. Catalogue coverage = distinct products recommended to the
    evaluated customers / products sold in the training period.

    Args:
        cleaned: Cleaned sales lines (all of them; the split happens here).
        cutoff: Start of the test window; default ``test_months`` before the end of the last invoice day (on
            the 2009-2010 sheet: 2010-09-10).
        test_months: Length of the test window in months.
        k: Cut-off rank.
        validation_months: Length of the validation window, inside the training period, used to tune the
            hybrid.
        components: Unfitted components (default :func:`pipeline.recommend.components.default_components`);
            evaluated alone and blended.
        normalization: Hybrid score normalisation (see :class:`pipeline.recommend.hybrid.HybridRecommender`).
        n_candidates: Candidates per component and customer in the hybrid.
        n_folds: Validation windows used to tune the hybrid (see
            :func:`pipeline.recommend.tuning.tune_hybrid_weights`).
        random_state: Seed for the SVD component.
        mining: Rule mining settings of the default rules component, which mines on the lines before each
            cutoff (pass those of the served rules table, so that the served rules are what is measured).

    Returns:
        One row per (model, setting): ``model``, ``setting``, ``k``, ``n_customers``, ``precision_at_k``,
        ``recall_at_k``, ``ndcg_at_k``, ``hit_rate_at_k``, ``catalogue_coverage``, ``cutoff_date``,
        ``test_end_date``, ``params`` (JSON hyperparameters; the tuned weights for the hybrid).

    Raises:
        ValidationSplitError: If no customer is active on both sides of the cutoff (the message states the
            data span needed).
    """
    _check_k(k)
    lines = _Lines.from_frame(_product_lines(cleaned))
    cutoff = _default_cutoff(lines, months=test_months) if cutoff is None else pd.Timestamp(cutoff)
    options = _options(
        components=components,
        normalization=normalization,
        n_candidates=n_candidates,
        random_state=random_state,
        mining=mining,
    )
    holdout = _holdout(lines, cutoff, test_months, options=options, k=k)
    return _evaluate(
        lines,
        holdout,
        cutoff=cutoff,
        test_months=test_months,
        k=k,
        validation_months=validation_months,
        n_folds=n_folds,
        options=options,
    )


def _evaluate(
    lines: _Lines,
    holdout: _Holdout | None,
    *,
    cutoff: pd.Timestamp,
    test_months: int,
    k: int,
    validation_months: int,
    n_folds: int,
    options: Mapping[str, object],
) -> pd.DataFrame:
    """The metrics table of a test holdout (``None``: nobody to evaluate), weights tuned before its cutoff."""
    if holdout is None:
        raise _split_error(lines, cutoff, test_months, "evaluation")
    weights = _tune(
        lines.window(lines.date < cutoff.value),
        validation_months=validation_months,
        k=k,
        n_folds=n_folds,
        grid=WEIGHT_GRID,
        n_rounds=3,
        options=options,
    )
    return _metrics_table(holdout, weights, k=k, cutoff=cutoff, test_months=test_months)
