"""The temporal holdout that the evaluation and the blend tuning share.

What belongs here: the relevant (customer, product) pairs of a window after a cutoff, a hybrid fitted on the
lines before it with both settings' candidate pools (:func:`_holdout`), the hit matrix and per-customer
metrics both score with, the default cutoff, the hybrids' constructor arguments (:func:`_options`), and
:class:`ValidationSplitError` with the message naming the data span a split needs. It sits below ``tuning``
and ``evaluation`` so that ``evaluate`` can tune its hybrid's weights without an import cycle; the protocol
itself is described in ``evaluation``. No dagster imports.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from pipeline.baskets import basket_analysis
from pipeline.recommend.components import _Candidates, _Component, default_components
from pipeline.recommend.history import _distinct, _History, _Lines, _member, _run_starts
from pipeline.recommend.hybrid import HybridRecommender, _Pool
from pipeline.recommend.settings import SETTINGS


class ValidationSplitError(ValueError):
    """The data is too short for a temporal split: no customer buys on both sides of the cutoff."""


def _split_error(lines: _Lines, cutoff: pd.Timestamp, months: int, what: str) -> ValidationSplitError:
    """Explain which data span a temporal split needs and which the data has."""
    first, last = lines.span()
    return ValidationSplitError(
        f"no customer is active on both sides of the {what} cutoff {cutoff:%Y-%m-%d}: the split needs "
        f"registered customers buying both before it and in the {months} month(s) after it, so at least "
        f"{months} month(s) of data plus earlier history; the data spans {first:%Y-%m-%d} to {last:%Y-%m-%d} "
        f"({(last - first).days} days)"
    )


def _default_cutoff(lines: _Lines, *, months: int) -> pd.Timestamp:
    """``months`` before the end of the last invoice day, so the window holds exactly ``months`` of data."""
    end = lines.span()[1].normalize() + pd.Timedelta(days=1)
    return end - pd.DateOffset(months=months)


def _relevant_pairs(lines: _Lines, cutoff: pd.Timestamp, end: pd.Timestamp) -> dict[str, np.ndarray]:
    """Relevant (customer, product) pairs of a temporal split, as sorted ``customer code * n + product code``.

    ``any``: distinct products bought in ``[cutoff, end)`` by customers who also bought before ``cutoff``;
    ``new_only``: those the customer had not bought before.
    """
    n_products = len(lines.stock_codes)
    known = lines.customer >= 0
    key = lines.customer.astype(np.int64) * n_products + lines.product
    before = _distinct(key[known & (lines.date < cutoff.value)])
    after = _distinct(key[known & (lines.date >= cutoff.value) & (lines.date < end.value)])
    after = after[_member(_distinct(before // n_products), after // n_products)]
    return {"any": after, "new_only": after[~_member(before, after)]}


def _hits_matrix(
    position: np.ndarray, rank: np.ndarray, is_hit: np.ndarray, n_customers: int, k: int
) -> np.ndarray:
    hits = np.zeros((n_customers, k), dtype=bool)
    hits[position[is_hit], rank[is_hit] - 1] = True
    return hits


def _metrics_from_hits(hits: np.ndarray, n_relevant: np.ndarray) -> dict[str, np.ndarray]:
    """Per-customer precision, recall, nDCG and hit rate from a ``(customers, k)`` hit matrix."""
    k = hits.shape[1]
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    n_hits = hits.sum(axis=1)
    ideal = np.cumsum(discounts)[np.minimum(n_relevant, k) - 1]
    return {
        "precision_at_k": n_hits / k,
        "recall_at_k": n_hits / n_relevant,
        "ndcg_at_k": (hits * discounts).sum(axis=1) / ideal,
        "hit_rate_at_k": (n_hits > 0).astype(np.float64),
    }


@dataclass(frozen=True)
class _Split:
    """One setting of a holdout: who is evaluated, what they bought, and the hybrid's candidate pool.

    Attributes:
        customers: Sorted ids of the customers evaluated.
        n_relevant: Size of each customer's relevant set (products outside the catalogue included).
        relevant_keys: Sorted ``position * n_products + column`` of the relevant products in the catalogue.
        n_products: Catalogue size of the fitted hybrid.
        candidates: Every component's candidates (``position`` indexes ``customers``).
        pool: The hybrid's candidate pool for ``customers``.
        relevance: ``(customers, slots)``: is the pooled product relevant?
    """

    customers: np.ndarray
    n_relevant: np.ndarray
    relevant_keys: np.ndarray
    n_products: int
    candidates: dict[str, _Candidates]
    pool: _Pool
    relevance: np.ndarray

    def hits(self, position: np.ndarray, rank: np.ndarray, product: np.ndarray, k: int) -> np.ndarray:
        """``(customers, k)`` hit matrix of picks given as customer position, rank and product column."""
        is_hit = _member(self.relevant_keys, position * self.n_products + product)
        return _hits_matrix(position, rank, is_hit, len(self.customers), k)


@dataclass(frozen=True)
class _Holdout:
    """A hybrid fitted on the lines before a cutoff, with both settings' candidates for the window after.

    This is the unit of work that evaluation and weight tuning share: with the same cutoff and window, the
    evaluation's test split is the served table's validation split.
    """

    hybrid: HybridRecommender
    splits: dict[str, _Split]


def _holdout(
    lines: _Lines, cutoff: pd.Timestamp, months: int, *, options: Mapping[str, object], k: int
) -> _Holdout | None:
    """Fit the hybrid on the lines before ``cutoff`` and pool its candidates for the ``months`` after.

    Returns:
        The holdout, or None when no customer buys on both sides of the cutoff.
    """
    pairs = _relevant_pairs(lines, cutoff, cutoff + pd.DateOffset(months=months))
    if len(pairs["any"]) == 0:
        return None
    train = lines.window(lines.date < cutoff.value)
    hybrid = HybridRecommender(**options)._fit_history(_History.from_lines(train))
    history = hybrid.history_
    n = max(hybrid.n_candidates, k)
    n_products = len(lines.stock_codes)
    # Catalogue column of every coded product (-1: not sold before the cutoff, so never recommended).
    columns = np.full(n_products, -1, dtype=np.int64)
    columns[np.flatnonzero(np.bincount(train.product, minlength=n_products))] = np.arange(
        len(history.stock_codes)
    )
    everyone = _distinct(lines.customer_ids[pairs["any"] // n_products])
    # The new_only customers are a subset of everyone's: one scoring pass serves both settings.
    candidate_sets = hybrid._component_candidate_sets(everyone, settings=tuple(SETTINGS.values()), n=n)
    splits = {}
    for (setting, keys), candidates in zip(pairs.items(), candidate_sets, strict=True):
        codes = keys // n_products
        starts = _run_starts(codes)
        customers = lines.customer_ids[codes[starts]]
        n_relevant = np.diff(np.append(starts, len(codes)))
        new_positions = np.full(len(everyone), -1, dtype=np.int64)
        new_positions[np.searchsorted(everyone, customers)] = np.arange(len(customers))
        candidates = {name: found.take(new_positions) for name, found in candidates.items()}
        pool = hybrid._pool(candidates, len(customers), n=n)
        position = np.repeat(np.arange(len(customers)), n_relevant)
        product = columns[keys % n_products]
        known = product >= 0
        catalogue = len(history.stock_codes)
        wanted = _distinct(position[known] * catalogue + product[known])
        pooled = np.arange(len(customers))[:, None] * catalogue + pool.products
        relevance = (pool.products >= 0) & _member(wanted, pooled.ravel()).reshape(pooled.shape)
        splits[setting] = _Split(customers, n_relevant, wanted, catalogue, candidates, pool, relevance)
    return _Holdout(hybrid, splits)


def _options(
    *,
    components: Mapping[str, _Component] | None = None,
    normalization: Literal["rank", "max"] = "max",
    n_candidates: int = 100,
    random_state: int | None = 0,
    mining: basket_analysis.RuleMining | None = None,
) -> dict[str, object]:
    """Constructor arguments of the hybrids fitted for evaluation and tuning.

    Without ``components``, the default ones, whose rules component mines with ``mining`` on each fit's lines.
    """
    if components is None:
        components = default_components(random_state=random_state, mining=mining)
    return {
        "components": components,
        "normalization": normalization,
        "n_candidates": n_candidates,
        "random_state": random_state,
    }
