"""Product recommenders for known customers and their honest temporal evaluation.

What belongs here: the recommender components (popularity, buy-again, item-kNN, SVD, association rules), the
hybrid that blends them, the validation-based tuning of the blend weights, ``recommend_all`` /
``recommend_all_settings`` (the table served to the business) and ``evaluate`` (temporal holdout metrics). The
matrix factorisation itself lives in ``pipeline.svd``, table schemas in ``pipeline.schemas_recommend``,
figures in ``pipeline.plots_recommend``. No dagster imports.

Conventions shared by every component (scikit-learn style): ``__init__`` only stores keyword parameters,
``fit(lines)`` learns from cleaned sales lines and returns ``self``, learned state ends with ``_``, and
``recommend(customer_ids, k=..., exclude_purchased=...)`` returns a long frame ``customer_id, rank,
stock_code, score`` with at most ``k`` distinct products per customer, best first. ``exclude_purchased=True``
is the *discovery* setting (``new_only``): nothing the customer bought during the fitted period is
recommended. Only real product codes (see :data:`PRODUCT_CODE_PATTERN`) are ever recommended: lines and rules
with other codes are ignored.

Evaluation protocol (``evaluate``): every component is fitted on lines strictly before the cutoff; the test
set is the set of distinct products each customer bought in ``[cutoff, cutoff + test_months)``, for customers
with a ``customer_id`` active on both sides. In the ``new_only`` setting the relevant set is restricted to
products the customer had not bought before the cutoff, and customers whose restricted set is empty are left
out of that setting. The hybrid's blend weights are tuned on a validation split *inside* the training period
(the ``validation_months`` before the cutoff, components refitted on the lines before that), never on the test
window. Products first sold in the test window stay in the relevant sets although no model can
recommend them. Component defaults (popularity window, item-kNN weighting, score normalisation) were chosen
the same way, on the 2010-06-10 split of the 2009-2010 training period.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import ClassVar, Literal, Self

import numpy as np
import pandas as pd
import scipy.sparse as sp
from mlxtend.frequent_patterns import apriori, association_rules
from sklearn.base import BaseEstimator, clone
from sklearn.preprocessing import normalize

from pipeline import svd

_LOG = logging.getLogger(__name__)


class ValidationSplitError(ValueError):
    """The data is too short for a temporal split: no customer buys on both sides of the cutoff."""


def _split_error(lines: pd.DataFrame, cutoff: pd.Timestamp, months: int, what: str) -> ValidationSplitError:
    """Explain which data span a temporal split needs and which the data has."""
    first, last = lines["invoice_date"].min(), lines["invoice_date"].max()
    return ValidationSplitError(
        f"no customer is active on both sides of the {what} cutoff {cutoff:%Y-%m-%d}: the split needs "
        f"registered customers buying both before it and in the {months} month(s) after it, so at least "
        f"{months} month(s) of data plus earlier history; the data spans {first:%Y-%m-%d} to {last:%Y-%m-%d} "
        f"({(last - first).days} days)"
    )

PRODUCT_CODE_PATTERN = r"^(?:\d{5}[A-Z]{0,2}|DCGS[0-9A-Z]+)$"
"""Real product codes: five digits with an optional one- or two-letter suffix (``85123A``, ``15056BL``), or a
``DCGS`` gift-set code (``DCGS0058``, ``DCGSSGIRL``). Everything else (POST, DOT, M, D, C2, S, B, ADJUST*,
BANK CHARGES, AMAZONFEE, gift_*, TEST*, PADS, CRUK, SP1002...) is a service or accounting code."""

COMPONENT_NAMES: tuple[str, ...] = ("popularity", "buy_again", "item_knn", "svd", "rules")
MODEL_NAMES: tuple[str, ...] = (*COMPONENT_NAMES, "hybrid")
SETTINGS: dict[str, bool] = {"any": False, "new_only": True}
"""Setting name -> ``exclude_purchased``."""

DEFAULT_WEIGHTS: dict[str, dict[str, float]] = {
    "any": {"popularity": 1.0, "buy_again": 2.0, "item_knn": 1.0, "svd": 1.0, "rules": 1.0},
    "new_only": {"popularity": 1.0, "buy_again": 0.0, "item_knn": 1.0, "svd": 1.0, "rules": 1.0},
}
"""Untuned blend weights per setting, used by a ``HybridRecommender`` created without ``weights``. The
pipeline tunes them instead (:func:`tune_hybrid_weights`)."""

WEIGHT_GRID: tuple[float, ...] = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)
_BATCH_ROWS = 1024
_FALLBACK_EPSILON = 1e-6

_product_code_regex = re.compile(PRODUCT_CODE_PATTERN)


def is_product_code(codes: Iterable[object]) -> np.ndarray:
    """Tell real product codes from service and accounting codes.

    Args:
        codes: Stock codes (anything; non-strings are never product codes).

    Returns:
        Boolean array, True where the code matches :data:`PRODUCT_CODE_PATTERN`.
    """
    values = pd.Series(
        codes if isinstance(codes, pd.Series | pd.Index | np.ndarray) else list(codes), dtype=object
    )
    # Test each distinct code once: a year of sales lines holds only a few thousand codes.
    distinct = pd.unique(values)
    valid = {
        code for code in distinct if isinstance(code, str) and _product_code_regex.match(code) is not None
    }
    return values.isin(valid).to_numpy(dtype=bool)


def _product_lines(lines: pd.DataFrame) -> pd.DataFrame:
    """Keep the columns the recommenders use, and only lines of real products."""
    needed = ["invoice", "stock_code", "description", "invoice_date", "customer_id"]
    missing = [column for column in needed if column not in lines.columns]
    if missing:
        raise ValueError(f"sales lines lack columns {missing}")
    kept = lines[needed].copy()
    kept["stock_code"] = kept["stock_code"].astype(str)
    kept["invoice"] = kept["invoice"].astype(str)
    kept["customer_id"] = kept["customer_id"].astype("Int64")
    kept = kept[is_product_code(kept["stock_code"])]
    if kept.empty:
        raise ValueError("no sales line of a real product to learn from")
    return kept.reset_index(drop=True)


def _as_customer_ids(customer_ids: Iterable[object]) -> np.ndarray:
    array_like = (pd.Series, pd.Index, np.ndarray, pd.api.extensions.ExtensionArray)
    ids = pd.array(
        customer_ids if isinstance(customer_ids, array_like) else list(customer_ids), dtype="Int64"
    )
    if ids.isna().any():
        raise ValueError("customer_ids must not contain missing values")
    return np.asarray(ids, dtype=np.int64)


@dataclass(frozen=True)
class _History:
    """What every component shares: the catalogue, the customers and who bought what (distinct invoices)."""

    customer_ids: np.ndarray
    stock_codes: np.ndarray
    counts: sp.csr_matrix
    end_date: pd.Timestamp
    descriptions: np.ndarray
    product_index: pd.Index

    @classmethod
    def from_lines(cls, lines: pd.DataFrame) -> _History:
        stock_codes = np.sort(lines["stock_code"].unique()).astype(object)
        product_index = pd.Index(stock_codes, dtype=object)
        end_date = pd.Timestamp(lines["invoice_date"].max())
        known = lines.loc[
            lines["customer_id"].notna(), ["customer_id", "invoice", "stock_code"]
        ].drop_duplicates()
        customer_ids = np.sort(known["customer_id"].astype("int64").unique())
        rows = np.searchsorted(customer_ids, known["customer_id"].astype("int64").to_numpy())
        cols = product_index.get_indexer(known["stock_code"].to_numpy())
        shape = (len(customer_ids), len(stock_codes))
        # One entry per distinct (customer, invoice, product); the CSR conversion sums them into invoice
        # counts.
        counts = sp.csr_matrix((np.ones(len(known)), (rows, cols)), shape=shape, dtype=np.float64)
        counts.sum_duplicates()
        described = svd.product_descriptions(lines).reindex(stock_codes)
        descriptions = np.where(described.notna(), described.astype(object), stock_codes).astype(object)
        return cls(customer_ids, stock_codes, counts, end_date, descriptions, product_index)

    def customer_rows(self, customer_ids: np.ndarray) -> np.ndarray:
        """Row of each customer in ``counts``, -1 for customers unseen in the fitted period."""
        if len(self.customer_ids) == 0:
            return np.full(len(customer_ids), -1, dtype=np.int64)
        positions = np.clip(np.searchsorted(self.customer_ids, customer_ids), 0, len(self.customer_ids) - 1)
        return np.where(self.customer_ids[positions] == customer_ids, positions, -1)

    def product_positions(self, stock_codes: np.ndarray) -> np.ndarray:
        """Column of each stock code, -1 for codes outside the catalogue."""
        return self.product_index.get_indexer(np.asarray(stock_codes, dtype=object)).astype(np.int64)


@dataclass(frozen=True)
class _Candidates:
    """One component's top candidates: customer position in the request, product column, score, rank."""

    position: np.ndarray
    product: np.ndarray
    score: np.ndarray
    rank: np.ndarray


def _top_n(scores: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Best ``n`` strictly positive entries per row of a dense score block, best first."""
    n = min(n, scores.shape[1])
    part = np.argpartition(-scores, n - 1, axis=1)[:, :n]
    values = np.take_along_axis(scores, part, axis=1)
    # Sort by score, then by column so that ties are broken the same way on every run.
    order = np.lexsort((part, -values), axis=1)
    part = np.take_along_axis(part, order, axis=1)
    values = np.take_along_axis(values, order, axis=1)
    keep = values > 0
    row_index = np.broadcast_to(np.arange(scores.shape[0])[:, None], part.shape)
    rank = np.broadcast_to(np.arange(1, n + 1)[None, :], part.shape)
    return row_index[keep], part[keep], values[keep], rank[keep]


def _top_n_sparse(scores: sp.csr_matrix, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Best ``n`` positive entries per row of a sparse score block, best first (ties: lower column)."""
    coo = scores.tocoo()
    positive = coo.data > 0
    row, col, value = coo.row[positive], coo.col[positive], coo.data[positive]
    order = np.lexsort((col, -value, row))
    row, col, value = row[order], col[order], value[order]
    rank = np.arange(len(row)) - np.searchsorted(row, row, side="left") + 1
    keep = rank <= n
    return row[keep].astype(np.int64), col[keep].astype(np.int64), value[keep], rank[keep]


class _Component(BaseEstimator):
    """Shared fit/recommend plumbing; subclasses define ``_fit_history``, ``_score_rows``, ``_explain``."""

    name: ClassVar[str] = "component"

    def fit(self, lines: pd.DataFrame) -> Self:
        """Learn from cleaned sales lines.

        Args:
            lines: Cleaned sales lines (``staging.cleaned_transactions`` columns; at least ``invoice``,
                ``stock_code``, ``description``, ``invoice_date``, ``customer_id``). Non-product codes are
                ignored.

        Returns:
            The fitted recommender.
        """
        kept = _product_lines(lines)
        return self._fit_history(_History.from_lines(kept), kept)

    def _fit_history(self, history: _History, lines: pd.DataFrame) -> Self:
        raise NotImplementedError

    def _score_rows(self, rows: np.ndarray) -> np.ndarray | sp.csr_matrix:
        """``(len(rows), n_products)`` scores of known customer rows, dense or sparse; <= 0: no candidate."""
        raise NotImplementedError

    def _explain(self, rows: np.ndarray, products: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _candidates(self, customer_ids: np.ndarray, *, n: int, exclude_purchased: bool) -> _Candidates:
        """Top ``n`` products per customer; ``position`` indexes ``customer_ids``."""
        history: _History = self.history_
        rows = history.customer_rows(customer_ids)
        parts: list[tuple[np.ndarray, ...]] = []
        known = np.flatnonzero(rows >= 0)
        for start in range(0, len(known), _BATCH_ROWS):
            batch = known[start : start + _BATCH_ROWS]
            scores = self._score_rows(rows[batch])
            if sp.issparse(scores):
                scores = sp.csr_matrix(scores, dtype=np.float64)
                if exclude_purchased:
                    scores = scores - scores.multiply(history.counts[rows[batch]] > 0)
                local, product, score, rank = _top_n_sparse(scores, n)
            else:
                scores = np.array(scores, dtype=np.float64)
                if exclude_purchased:
                    bought_r, bought_c = history.counts[rows[batch]].nonzero()
                    scores[bought_r, bought_c] = -np.inf
                local, product, score, rank = _top_n(scores, n)
            parts.append((batch[local], product, score, rank))
        if not parts:
            empty_int = np.array([], dtype=np.int64)
            return _Candidates(empty_int, empty_int, np.array([], dtype=np.float64), empty_int)
        position, product, score, rank = (np.concatenate(arrays) for arrays in zip(*parts, strict=True))
        order = np.lexsort((rank, position))
        return _Candidates(position[order], product[order], score[order], rank[order])

    def recommend(
        self, customer_ids: Iterable[object], *, k: int = 10, exclude_purchased: bool = False
    ) -> pd.DataFrame:
        """Recommend up to ``k`` distinct products per customer.

        Args:
            customer_ids: Customers to serve (duplicates are served once per occurrence; keep them unique).
            k: Maximum number of products per customer.
            exclude_purchased: If True, never recommend a product the customer bought in the fitted period.

        Returns:
            Long frame ``customer_id`` (Int64), ``rank`` (1 = best), ``stock_code``, ``score``
            (component-specific scale, higher is better). Customers the component cannot serve have no row.
        """
        _check_k(k)
        ids = _as_customer_ids(customer_ids)
        found = self._candidates(ids, n=k, exclude_purchased=exclude_purchased)
        return pd.DataFrame(
            {
                "customer_id": pd.array(ids[found.position], dtype="Int64"),
                "rank": found.rank.astype(np.int64),
                "stock_code": self.history_.stock_codes[found.product],
                "score": found.score.astype(np.float64),
            }
        )

    def explain(self, recommendations: pd.DataFrame) -> pd.Series:
        """Say in words why each recommended product was picked.

        Args:
            recommendations: Frame with ``customer_id`` and ``stock_code`` (e.g. from ``recommend``).

        Returns:
            One reason string per row, aligned with ``recommendations.index``.
        """
        if recommendations.empty:
            return pd.Series([], index=recommendations.index, dtype=object, name="reason")
        history: _History = self.history_
        rows = history.customer_rows(_as_customer_ids(recommendations["customer_id"]))
        products = history.product_positions(recommendations["stock_code"].astype(str).to_numpy())
        if (products < 0).any():
            raise ValueError("cannot explain products outside the fitted catalogue")
        return pd.Series(
            self._explain(rows, products), index=recommendations.index, dtype=object, name="reason"
        )


def _check_k(k: int) -> None:
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")


class PopularityRecommender(_Component):
    """Recommend what many customers bought recently.

    Score = number of distinct customers (or invoices, guests included) who bought the product in the last
    ``window_days`` of the fitted period, plus a tie-breaker below 1 proportional to all-time popularity, so
    every product of the catalogue gets a positive score and cold-start customers are always served.

    Args:
        window_days: Length of the recent window, in days, ending at the last fitted invoice.
        by: ``"customers"`` (distinct known customers, default) or ``"invoices"`` (distinct invoices, guest
            baskets included).
    """

    name: ClassVar[str] = "popularity"

    def __init__(self, *, window_days: int = 7, by: Literal["customers", "invoices"] = "customers") -> None:
        self.window_days = window_days
        self.by = by

    def _fit_history(self, history: _History, lines: pd.DataFrame) -> Self:
        if self.by not in ("customers", "invoices"):
            raise ValueError(f"by must be 'customers' or 'invoices', got {self.by!r}")
        unit = "customer_id" if self.by == "customers" else "invoice"
        counted = lines[lines[unit].notna()]
        recent = counted[counted["invoice_date"] > history.end_date - pd.Timedelta(days=self.window_days)]
        self.history_ = history
        self.window_counts_ = self._distinct(recent, unit, history)
        self.total_counts_ = self._distinct(counted, unit, history)
        self.scores_ = self.window_counts_ + self.total_counts_ / (self.total_counts_.max() + 1.0)
        return self

    @staticmethod
    def _distinct(lines: pd.DataFrame, unit: str, history: _History) -> np.ndarray:
        per_product = lines.groupby("stock_code")[unit].nunique()
        return per_product.reindex(history.stock_codes, fill_value=0).to_numpy(dtype=np.float64)

    def _candidates(self, customer_ids: np.ndarray, *, n: int, exclude_purchased: bool) -> _Candidates:
        # Everybody, unknown customers included, shares one ranking: walk it once instead of ranking every
        # row.
        order = np.lexsort((np.arange(len(self.scores_)), -self.scores_))
        n_customers = len(customer_ids)
        if not exclude_purchased:
            top = order[:n]
            return _Candidates(
                np.repeat(np.arange(n_customers), len(top)),
                np.tile(top, n_customers),
                np.tile(self.scores_[top], n_customers),
                np.tile(np.arange(1, len(top) + 1), n_customers),
            )
        rows = self.history_.customer_rows(customer_ids)
        inverse_order = np.empty_like(order)
        inverse_order[order] = np.arange(len(order))
        parts = []
        for start in range(0, n_customers, _BATCH_ROWS):
            batch = np.arange(start, min(start + _BATCH_ROWS, n_customers))
            available = np.ones((len(batch), len(order)), dtype=bool)
            known = np.flatnonzero(rows[batch] >= 0)
            bought_r, bought_c = self.history_.counts[rows[batch][known]].nonzero()
            available[known[bought_r], inverse_order[bought_c]] = False
            rank = np.cumsum(available, axis=1)
            local, slot = np.nonzero(available & (rank <= n))
            parts.append((batch[local], order[slot], self.scores_[order[slot]], rank[local, slot]))
        if not parts:
            empty = np.array([], dtype=np.int64)
            return _Candidates(empty, empty, np.array([], dtype=np.float64), empty)
        position, product, score, rank = (np.concatenate(arrays) for arrays in zip(*parts, strict=True))
        return _Candidates(position, product, score, rank.astype(np.int64))

    def _explain(self, rows: np.ndarray, products: np.ndarray) -> np.ndarray:
        unit = "customers" if self.by == "customers" else "orders"
        recent = self.window_counts_[products].astype(np.int64)
        total = self.total_counts_[products].astype(np.int64)
        return np.array(
            [
                f"popular this season: {n} {unit} bought it in the last {self.window_days} days"
                if n > 0
                else f"a steady seller: {t} {unit} bought it"
                for n, t in zip(recent, total, strict=True)
            ],
            dtype=object,
        )


class BuyAgainRecommender(_Component):
    """Recommend the customer's own regular purchases again.

    Score = sum over the customer's distinct invoices containing the product of ``0.5 ** (age_days /
    half_life_days)``, with the age measured at the last fitted invoice: frequent and recent purchases first.
    It only ever recommends products already bought, so it serves nobody in the ``new_only`` setting.

    Args:
        half_life_days: Days after which a purchase counts half.
    """

    name: ClassVar[str] = "buy_again"

    def __init__(self, *, half_life_days: float = 90.0) -> None:
        self.half_life_days = half_life_days

    def _fit_history(self, history: _History, lines: pd.DataFrame) -> Self:
        if self.half_life_days <= 0:
            raise ValueError(f"half_life_days must be > 0, got {self.half_life_days}")
        known = lines.loc[
            lines["customer_id"].notna(), ["customer_id", "invoice", "stock_code", "invoice_date"]
        ]
        baskets = known.groupby(["customer_id", "invoice", "stock_code"], observed=True)["invoice_date"].min()
        baskets = baskets.reset_index()
        rows = history.customer_rows(baskets["customer_id"].astype("int64").to_numpy())
        cols = history.product_positions(baskets["stock_code"].to_numpy())
        age_days = (history.end_date - baskets["invoice_date"]).dt.total_seconds().to_numpy() / 86400.0
        decay = np.power(0.5, age_days / self.half_life_days)
        self.scores_ = sp.csr_matrix((decay, (rows, cols)), shape=history.counts.shape, dtype=np.float64)
        self.scores_.sum_duplicates()
        last = pd.DataFrame({"row": rows, "product": cols, "date": baskets["invoice_date"].to_numpy()})
        self.last_purchase_ = last.groupby(["row", "product"])["date"].max()
        self.history_ = history
        return self

    def _score_rows(self, rows: np.ndarray) -> sp.csr_matrix:
        return self.scores_[rows]

    def _explain(self, rows: np.ndarray, products: np.ndarray) -> np.ndarray:
        reasons = np.full(len(rows), "you bought something like it before", dtype=object)
        dates = self.last_purchase_.reindex(pd.MultiIndex.from_arrays([rows, products])).to_numpy()
        counts = np.zeros(len(rows), dtype=np.int64)
        known = rows >= 0
        counts[known] = np.asarray(self.history_.counts[rows[known], products[known]]).ravel()
        for index in np.flatnonzero(counts > 0):
            when = pd.Timestamp(dates[index]).strftime("%d %b %Y")
            n = counts[index]
            reasons[index] = (
                f"you bought this {n} times, last on {when}" if n > 1 else f"you bought this on {when}"
            )
        return reasons


class ItemKNNRecommender(_Component):
    """Item-item collaborative filtering on the customer x product matrix.

    Similarity = cosine between product columns of the weighted customer x product matrix (self-similarity
    removed), optionally pruned to each product's ``n_neighbors`` most similar products. Score of a product
    for a customer = sum over the customer's products of their weight times their similarity to it. The
    defaults (all neighbours, tf-idf weighting) scored best on a validation split inside the 2009-2010
    training period.

    Args:
        n_neighbors: Neighbours kept per product; None (default) keeps the dense similarity matrix.
        weighting: Matrix weighting, see ``pipeline.svd.customer_product_matrix`` (default ``"tfidf"``).
    """

    name: ClassVar[str] = "item_knn"

    def __init__(self, *, n_neighbors: int | None = None, weighting: svd.Weighting = "tfidf") -> None:
        self.n_neighbors = n_neighbors
        self.weighting = weighting

    def _fit_history(self, history: _History, lines: pd.DataFrame) -> Self:
        weights = svd.weight_counts(history.counts, weighting=self.weighting)
        columns = normalize(weights.tocsc(), norm="l2", axis=0)
        # Sparse x dense is much faster than sparse x sparse here: the item-item product is nearly dense
        # anyway.
        similarity = np.asarray(columns.T @ columns.toarray(), dtype=np.float32)
        np.fill_diagonal(similarity, 0.0)
        n_products = similarity.shape[0]
        if self.n_neighbors is not None and self.n_neighbors < n_products:
            keep = np.argpartition(-similarity, self.n_neighbors - 1, axis=1)[:, : self.n_neighbors]
            values = np.take_along_axis(similarity, keep, axis=1)
            rows = np.repeat(np.arange(n_products), self.n_neighbors)
            pruned = sp.csr_matrix((values.ravel(), (rows, keep.ravel())), shape=similarity.shape)
            pruned.eliminate_zeros()
            self.similarity_: np.ndarray | sp.csr_matrix = pruned
        else:
            self.similarity_ = similarity
        self.user_matrix_ = weights.astype(np.float32)
        self.history_ = history
        return self

    def _score_rows(self, rows: np.ndarray) -> np.ndarray:
        scores = self.user_matrix_[rows] @ self.similarity_
        return scores.toarray() if sp.issparse(scores) else np.asarray(scores)

    def _explain(self, rows: np.ndarray, products: np.ndarray) -> np.ndarray:
        descriptions = self.history_.descriptions
        reasons = np.full(len(rows), "customers who buy what you buy also bought it", dtype=object)
        known = np.flatnonzero(rows >= 0)
        if len(known) == 0:
            return reasons
        # Contribution of each of the customer's products j to the score of product i: x[c, j] * S[j, i].
        user = self.user_matrix_[rows[known]].tocsr()
        user.sort_indices()
        rec = np.repeat(np.arange(len(known)), np.diff(user.indptr))
        similarity = self.similarity_[user.indices, products[known][rec]]
        contribution = user.data * np.asarray(similarity, dtype=np.float64).ravel()
        has_items = np.diff(user.indptr) > 0
        best_value = np.zeros(len(known))
        best_value[has_items] = np.maximum.reduceat(contribution, user.indptr[:-1][has_items])
        # First (lowest column) item reaching its recommendation's maximum: the product that explains it best.
        is_best = (contribution == best_value[rec]) & (contribution > 0)
        winners, first = np.unique(rec[is_best], return_index=True)
        for position, j in zip(known[winners], user.indices[is_best][first], strict=True):
            reasons[position] = f"customers who bought {descriptions[j]} also bought it"
        return reasons


class SVDRecommender(_Component):
    """Latent-factor recommender: the customer's row of the rank-``n_components`` SVD reconstruction.

    Args:
        n_components: Number of latent factors (capped, see ``pipeline.svd.fit_svd``).
        weighting: Matrix weighting, see ``pipeline.svd.customer_product_matrix``.
        random_state: Seed of the randomized SVD.
    """

    name: ClassVar[str] = "svd"

    def __init__(
        self,
        *,
        n_components: int = 64,
        weighting: svd.Weighting = "log_count",
        random_state: int | None = 0,
    ) -> None:
        self.n_components = n_components
        self.weighting = weighting
        self.random_state = random_state

    def _fit_history(self, history: _History, lines: pd.DataFrame) -> Self:
        matrix = svd.CustomerProductMatrix(
            svd.weight_counts(history.counts, weighting=self.weighting),
            pd.Index(history.customer_ids, dtype="Int64", name="customer_id"),
            pd.Index(history.stock_codes, dtype=object, name="stock_code"),
        )
        result = svd.fit_svd(matrix, n_components=self.n_components, random_state=self.random_state)
        self.model_ = result.model
        self.customer_factors_ = result.customer_factors.drop(columns="customer_id").to_numpy(
            dtype=np.float64
        )
        self.explained_variance_ = result.explained_variance
        self.history_ = history
        return self

    def _score_rows(self, rows: np.ndarray) -> np.ndarray:
        return self.customer_factors_[rows] @ self.model_.components_

    def _explain(self, rows: np.ndarray, products: np.ndarray) -> np.ndarray:
        return np.full(len(rows), "customers with tastes like yours bought it", dtype=object)


_RULE_COLUMNS = ["antecedents", "consequents", "support", "confidence", "lift"]


def _empty_rules() -> pd.DataFrame:
    return pd.DataFrame(
        {
            column: pd.Series(dtype=object if column.endswith("ents") else np.float64)
            for column in _RULE_COLUMNS
        }
    )


def mine_rules(
    lines: pd.DataFrame, *, min_support: float = 0.01, min_confidence: float = 0.1, max_len: int = 3
) -> pd.DataFrame:
    """Mine association rules on invoice baskets with mlxtend's ``apriori`` on a sparse basket.

    Every invoice is a basket, guest invoices included. Products below ``min_support`` are dropped *before*
    the basket is built: they cannot belong to a frequent itemset, and this keeps the sparse boolean frame
    narrow.

    Args:
        lines: Sales lines with ``invoice`` and ``stock_code``; non-product codes are ignored.
        min_support: Minimum share of invoices containing the itemset.
        min_confidence: Minimum rule confidence.
        max_len: Largest itemset size.

    Returns:
        Frame ``antecedents`` (sorted list of stock codes), ``consequents`` (sorted list), ``support``,
        ``confidence``, ``lift``, sorted by decreasing lift then confidence. Empty when nothing is frequent.
    """
    products = lines.loc[is_product_code(lines["stock_code"].astype(str)), ["invoice", "stock_code"]]
    pairs = products.astype(str).drop_duplicates()
    n_invoices = pairs["invoice"].nunique()
    if n_invoices == 0:
        return _empty_rules()
    support = pairs["stock_code"].value_counts() / n_invoices
    frequent = np.sort(support.index[support >= min_support].to_numpy().astype(str))
    pairs = pairs[pairs["stock_code"].isin(frequent)]
    if len(frequent) == 0:
        return _empty_rules()
    invoices = pd.Categorical(pairs["invoice"])
    cols = pd.Index(frequent, dtype=object).get_indexer(pairs["stock_code"].to_numpy())
    # Invoices without any frequent product are absent from ``pairs`` but still count in the denominator.
    basket = sp.csc_matrix(
        (np.ones(len(pairs), dtype=bool), (invoices.codes, cols)), shape=(n_invoices, len(frequent))
    )
    frame = pd.DataFrame(
        {
            code: pd.arrays.SparseArray.from_spmatrix(basket[:, [j]])
            for j, code in enumerate(frequent.tolist())
        }
    )
    itemsets = apriori(frame, min_support=min_support, use_colnames=True, max_len=max_len, low_memory=True)
    if (itemsets["itemsets"].map(len) > 1).sum() == 0:
        return _empty_rules()
    rules = association_rules(
        itemsets, num_itemsets=n_invoices, metric="confidence", min_threshold=min_confidence
    )
    rules = rules.assign(
        antecedents=rules["antecedents"].map(sorted), consequents=rules["consequents"].map(sorted)
    )[_RULE_COLUMNS]
    return rules.sort_values(["lift", "confidence"], ascending=False, kind="stable").reset_index(drop=True)


def _as_code_list(items: object) -> list[str]:
    if isinstance(items, str):
        return [items]
    if items is None or (isinstance(items, float) and np.isnan(items)):
        return []
    return sorted({str(item) for item in items})


def _prepare_rules(rules: pd.DataFrame) -> pd.DataFrame:
    """Normalise an external rules table: code lists, no redundant rules, only real product codes.

    When a ``country`` column is present and some rules have a null country (mined on all baskets), only those
    are used; otherwise a rule repeated across countries keeps its strongest version.
    """
    missing = [
        c for c in ("antecedents", "consequents", "confidence", "lift", "support") if c not in rules.columns
    ]
    if missing:
        raise ValueError(f"rules lack columns {missing}")
    kept = rules
    if "country" in kept.columns and kept["country"].isna().any():
        # Null country marks rules mined on every basket; per-country rules rest on far fewer baskets.
        kept = kept[kept["country"].isna()]
    if "is_redundant" in kept.columns:
        kept = kept[~kept["is_redundant"].fillna(False).astype(bool)]
    kept = pd.DataFrame(
        {
            "antecedents": kept["antecedents"].map(_as_code_list).to_numpy(),
            "consequents": kept["consequents"].map(_as_code_list).to_numpy(),
            "support": kept["support"].astype(np.float64).to_numpy(),
            "confidence": kept["confidence"].astype(np.float64).to_numpy(),
            "lift": kept["lift"].astype(np.float64).to_numpy(),
        }
    )
    valid = [
        len(a) > 0 and len(c) > 0 and bool(is_product_code(a).all()) and bool(is_product_code(c).all())
        for a, c in zip(kept["antecedents"], kept["consequents"], strict=True)
    ]
    kept = kept[np.array(valid, dtype=bool)]
    # Per-country tables repeat a rule; keep its strongest version.
    key = (
        kept["antecedents"].map(lambda a: "|".join(sorted(a)))
        + ">"
        + kept["consequents"].map(lambda c: "|".join(sorted(c)))
    )
    kept = kept.assign(_key=key).sort_values(["confidence", "lift"], ascending=False, kind="stable")
    return kept.drop_duplicates("_key").drop(columns="_key").reset_index(drop=True)


class RulesRecommender(_Component):
    """Recommend the consequents of association rules triggered by the customer's recent baskets.

    A rule fires for a customer when all its antecedents are among the products of the customer's last
    ``n_recent_invoices`` invoices (all invoices if None). A product's score is the best score of the rules
    that fire and contain it as a consequent: ``confidence`` (default) or ``confidence * lift``.

    Args:
        rules: Precomputed rules (``antecedents`` and ``consequents`` as lists of codes, ``support``,
            ``confidence``, ``lift``; rows with ``is_redundant`` True are dropped, all-countries rules
            preferred when a ``country`` column is present, see ``_prepare_rules``). If None the rules are
            mined at fit time from the fitted lines only (see :func:`mine_rules`), which is what an evaluation
            needs to avoid leakage.
        min_support: Mining minimum support (only when ``rules`` is None).
        min_confidence: Mining minimum confidence (only when ``rules`` is None).
        max_len: Mining maximum itemset size (only when ``rules`` is None).
        n_recent_invoices: How many of the customer's latest invoices trigger rules.
        score: ``"confidence"`` or ``"confidence_lift"``.
    """

    name: ClassVar[str] = "rules"

    def __init__(
        self,
        *,
        rules: pd.DataFrame | None = None,
        min_support: float = 0.01,
        min_confidence: float = 0.1,
        max_len: int = 3,
        n_recent_invoices: int | None = 3,
        score: Literal["confidence", "confidence_lift"] = "confidence",
    ) -> None:
        self.rules = rules
        self.min_support = min_support
        self.min_confidence = min_confidence
        self.max_len = max_len
        self.n_recent_invoices = n_recent_invoices
        self.score = score

    def _fit_history(self, history: _History, lines: pd.DataFrame) -> Self:
        if self.score not in ("confidence", "confidence_lift"):
            raise ValueError(f"score must be 'confidence' or 'confidence_lift', got {self.score!r}")
        if self.rules is None:
            rules = mine_rules(
                lines, min_support=self.min_support, min_confidence=self.min_confidence, max_len=self.max_len
            )
        else:
            rules = _prepare_rules(self.rules)
        antecedent_cols = _positions_of_lists(history, rules["antecedents"])
        consequent_cols = _positions_of_lists(history, rules["consequents"])
        # A rule about a product outside the fitted catalogue can neither fire nor be served.
        usable = np.array(
            [
                (a >= 0).all() and (c >= 0).all()
                for a, c in zip(antecedent_cols, consequent_cols, strict=True)
            ],
            dtype=bool,
        )
        self.rules_ = rules[usable].reset_index(drop=True)
        antecedent_cols = [a for a, ok in zip(antecedent_cols, usable, strict=True) if ok]
        consequent_cols = [c for c, ok in zip(consequent_cols, usable, strict=True) if ok]
        shape = (len(self.rules_), len(history.stock_codes))
        self.antecedents_ = _incidence(antecedent_cols, shape)
        self.consequents_ = _incidence(consequent_cols, shape)
        self.antecedent_sizes_ = np.array([len(a) for a in antecedent_cols], dtype=np.int64)
        strength = self.rules_["confidence"].to_numpy(dtype=np.float64)
        if self.score == "confidence_lift":
            strength = strength * self.rules_["lift"].to_numpy(dtype=np.float64)
        self.rule_scores_ = strength
        self.recent_items_ = self._recent_items(history, lines)
        self.history_ = history
        return self

    def _recent_items(self, history: _History, lines: pd.DataFrame) -> sp.csr_matrix:
        known = lines.loc[
            lines["customer_id"].notna(), ["customer_id", "invoice", "invoice_date", "stock_code"]
        ]
        if self.n_recent_invoices is not None:
            invoices = (
                known.groupby(["customer_id", "invoice"], observed=True)["invoice_date"].max().reset_index()
            )
            invoices = invoices.sort_values(
                ["customer_id", "invoice_date", "invoice"], ascending=[True, False, False]
            )
            recent = invoices.groupby("customer_id", observed=True).head(self.n_recent_invoices)
            known = known[known["invoice"].isin(recent["invoice"])]
        rows = history.customer_rows(known["customer_id"].astype("int64").to_numpy())
        cols = history.product_positions(known["stock_code"].to_numpy())
        items = sp.csr_matrix(
            (np.ones(len(known)), (rows, cols)), shape=history.counts.shape, dtype=np.float64
        )
        items.sum_duplicates()
        items.data = np.ones_like(items.data)
        return items

    def _fired(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For customer rows, the (local row, product, rule) triples of every fired rule's consequents."""
        if len(self.rules_) == 0:
            empty = np.array([], dtype=np.int64)
            return empty, empty, empty
        overlap = (self.recent_items_[rows] @ self.antecedents_.T).tocoo()
        fired = overlap.data >= self.antecedent_sizes_[overlap.col]
        local, rule = overlap.row[fired], overlap.col[fired]
        per_rule = np.diff(self.consequents_.indptr)
        repeat = per_rule[rule]
        starts = self.consequents_.indptr[rule]
        offsets = np.arange(repeat.sum()) - np.repeat(np.cumsum(repeat) - repeat, repeat)
        products = self.consequents_.indices[np.repeat(starts, repeat) + offsets]
        return np.repeat(local, repeat), products, np.repeat(rule, repeat)

    def _score_rows(self, rows: np.ndarray) -> sp.csr_matrix:
        local, products, rule = self._fired(rows)
        fired = pd.DataFrame({"local": local, "product": products, "strength": self.rule_scores_[rule]})
        best = fired.groupby(["local", "product"], sort=False)["strength"].max().reset_index()
        shape = (len(rows), len(self.history_.stock_codes))
        return sp.csr_matrix((best["strength"].to_numpy(), (best["local"], best["product"])), shape=shape)

    def _explain(self, rows: np.ndarray, products: np.ndarray) -> np.ndarray:
        reasons = np.full(len(rows), "often bought together with your recent purchases", dtype=object)
        known = np.flatnonzero(rows >= 0)
        if len(known) == 0:
            return reasons
        unique_rows, inverse = np.unique(rows[known], return_inverse=True)
        local, fired_products, rule = self._fired(unique_rows)
        fired = pd.DataFrame(
            {"local": local, "product": fired_products, "rule": rule, "strength": self.rule_scores_[rule]}
        )
        best = fired.sort_values(
            ["strength", "rule"], ascending=[False, True], kind="stable"
        ).drop_duplicates(["local", "product"])
        wanted = pd.DataFrame({"local": inverse, "product": products[known], "position": known})
        matched = wanted.merge(best, on=["local", "product"], how="inner")
        descriptions = self.history_.descriptions
        for position, rule_index in zip(matched["position"], matched["rule"], strict=True):
            antecedents = self.antecedents_.indices[
                self.antecedents_.indptr[rule_index] : self.antecedents_.indptr[rule_index + 1]
            ]
            names = " and ".join(str(descriptions[j]) for j in antecedents)
            lift = self.rules_["lift"].to_numpy()[rule_index]
            reasons[position] = f"often bought with {names}, lift {lift:.0f}"
        return reasons


def _positions_of_lists(history: _History, lists: pd.Series) -> list[np.ndarray]:
    """Catalogue columns of each list of stock codes (-1 for unknown codes), looked up in one pass."""
    lengths = lists.map(len).to_numpy(dtype=np.int64)
    flat = history.product_positions(np.array([code for items in lists for code in items], dtype=object))
    return np.split(flat, np.cumsum(lengths)[:-1]) if len(lengths) else []


def _incidence(columns: list[np.ndarray], shape: tuple[int, int]) -> sp.csr_matrix:
    indptr = np.concatenate([[0], np.cumsum([len(c) for c in columns])]).astype(np.int64)
    indices = np.concatenate(columns).astype(np.int64) if columns else np.array([], dtype=np.int64)
    matrix = sp.csr_matrix((np.ones(len(indices)), indices, indptr), shape=shape, dtype=np.float64)
    matrix.sort_indices()
    return matrix


def default_components(
    *, random_state: int | None = 0, rules: pd.DataFrame | None = None
) -> dict[str, _Component]:
    """The five components with their default hyperparameters, keyed by name.

    Args:
        random_state: Seed for the SVD component.
        rules: Optional precomputed rules for the rules component (None mines them at fit time).

    Returns:
        Unfitted components keyed by ``COMPONENT_NAMES``.
    """
    return {
        "popularity": PopularityRecommender(),
        "buy_again": BuyAgainRecommender(),
        "item_knn": ItemKNNRecommender(),
        "svd": SVDRecommender(random_state=random_state),
        "rules": RulesRecommender(rules=rules),
    }


@dataclass(frozen=True)
class _Pool:
    """All components' candidates for a list of customers, padded to a dense ``(customers, slots)`` layout.

    Slot ``j`` of customer ``i`` holds one candidate product (``-1`` = empty, slots ordered by product
    column), and ``norms[m, i, j]`` is component ``m``'s normalised score for it (0 when ``m`` did not propose
    it). ``base`` holds the popularity tie-breaker (``_FALLBACK_EPSILON`` x its normalised rank) and ``-inf``
    on empty slots. Blending any weight vector is then a dense weighted sum and a row-wise top-k, cheap enough
    to try many weight vectors.
    """

    products: np.ndarray
    norms: np.ndarray
    base: np.ndarray

    def blend(self, weights: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Top-``k`` slots per customer, best first: (customer position, slot, blended score, rank)."""
        score = np.tensordot(weights.astype(np.float32), self.norms, axes=1) + self.base
        n_customers, width = score.shape
        top = min(k, width)
        if top < width:
            slots = np.argpartition(-score, top - 1, axis=1)[:, :top]
        else:
            slots = np.broadcast_to(np.arange(width)[None, :], score.shape).copy()
        values = np.take_along_axis(score, slots, axis=1)
        # Ties go to the lower slot, i.e. the lower product column, so results are repeatable.
        order = np.lexsort((slots, -values), axis=1)
        slots = np.take_along_axis(slots, order, axis=1)
        values = np.take_along_axis(values, order, axis=1)
        keep = np.isfinite(values)
        position = np.broadcast_to(np.arange(n_customers)[:, None], slots.shape)
        rank = np.broadcast_to(np.arange(1, top + 1)[None, :], slots.shape)
        return position[keep], slots[keep], values[keep], rank[keep]

    def sources(self, position: np.ndarray, slot: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """Component contributing most to each chosen slot (-1 when only the fallback put it there)."""
        contribution = weights[:, None] * self.norms[:, position, slot]
        if contribution.shape[1] == 0:
            return np.array([], dtype=np.int64)
        return np.where(contribution.max(axis=0) > 0, contribution.argmax(axis=0), -1)


class HybridRecommender(_Component):
    """Blend of the components' normalised scores, with popularity as the cold-start and fill-up fallback.

    Each component proposes its top ``n_candidates`` products per customer. Their scores are normalised per
    customer (``"max"``: score / the customer's best score from that component; ``"rank"``: ``1 - (rank - 1) /
    n_candidates``; either way the component's top item gets 1) and summed with ``weights``. A product's
    ``source`` is the component with the largest weighted contribution. Popularity candidates always stay in
    the pool with a tiny score, so a customer with fewer than ``k`` blended candidates (or unknown to every
    other component: cold start) is filled up with popular products, whose source is then ``popularity``.

    Args:
        components: Unfitted components keyed by name (default :func:`default_components`); cloned at fit
            time. A ``popularity`` component is added if missing, for the fallback.
        weights: Blend weight per component name; missing names weigh 0. Default: ``DEFAULT_WEIGHTS`` of the
            setting asked for; use :func:`tune_hybrid_weights` to learn them on a validation split.
        normalization: ``"max"`` (default; slightly better than ``"rank"`` on a validation split inside the
            2009-2010 training period) or ``"rank"``.
        n_candidates: Candidates taken from each component per customer.
        random_state: Seed passed to the default SVD component (ignored when ``components`` is given).
    """

    name: ClassVar[str] = "hybrid"

    def __init__(
        self,
        *,
        components: Mapping[str, _Component] | None = None,
        weights: Mapping[str, float] | None = None,
        normalization: Literal["rank", "max"] = "max",
        n_candidates: int = 100,
        random_state: int | None = 0,
    ) -> None:
        self.components = components
        self.weights = weights
        self.normalization = normalization
        self.n_candidates = n_candidates
        self.random_state = random_state

    def _fit_history(self, history: _History, lines: pd.DataFrame) -> Self:
        if self.normalization not in ("rank", "max"):
            raise ValueError(f"normalization must be 'rank' or 'max', got {self.normalization!r}")
        chosen = (
            default_components(random_state=self.random_state) if self.components is None else self.components
        )
        components = {name: clone(component) for name, component in chosen.items()}
        components.setdefault("popularity", PopularityRecommender())
        self.components_ = {name: c._fit_history(history, lines) for name, c in components.items()}
        self.history_ = history
        return self

    def _weight_vector(self, weights: Mapping[str, float] | None, *, exclude_purchased: bool) -> np.ndarray:
        if weights is None:
            weights = DEFAULT_WEIGHTS["new_only" if exclude_purchased else "any"]
        unknown = set(weights) - set(self.components_)
        if unknown:
            raise ValueError(f"weights for unknown components {sorted(unknown)}")
        return np.array([float(weights.get(name, 0.0)) for name in self.components_], dtype=np.float64)

    def _component_candidates(
        self, customer_ids: np.ndarray, *, exclude_purchased: bool, n: int | None = None
    ) -> dict[str, _Candidates]:
        n = self.n_candidates if n is None else n
        return {
            name: component._candidates(customer_ids, n=n, exclude_purchased=exclude_purchased)
            for name, component in self.components_.items()
        }

    def _pool(self, candidates: Mapping[str, _Candidates], n_customers: int, *, n: int) -> _Pool:
        n_products = len(self.history_.stock_codes)
        keys, components, norms = [], [], []
        for index, name in enumerate(self.components_):
            found = candidates[name]
            if self.normalization == "rank":
                norm = 1.0 - (found.rank - 1) / n
            else:
                best = pd.Series(found.score).groupby(found.position).transform("max").to_numpy()
                norm = found.score / best
            keys.append(found.position.astype(np.int64) * n_products + found.product)
            components.append(np.full(len(found.rank), index, dtype=np.int64))
            norms.append(norm)
        unique, inverse = np.unique(np.concatenate(keys), return_inverse=True)
        position, product = unique // n_products, unique % n_products
        slot = np.arange(len(unique)) - np.searchsorted(position, position, side="left")
        width = int(slot.max()) + 1 if len(slot) else 1
        products = np.full((n_customers, width), -1, dtype=np.int64)
        products[position, slot] = product
        component = np.concatenate(components)
        pooled = np.zeros((len(self.components_), n_customers, width), dtype=np.float32)
        pooled[component, position[inverse], slot[inverse]] = np.concatenate(norms)
        # Popularity always stays in the pool, as a tie-breaker and to fill short lists, whatever its weight.
        popularity = list(self.components_).index("popularity")
        base = np.zeros((n_customers, width), dtype=np.float32)
        is_popular = component == popularity
        base[position[inverse][is_popular], slot[inverse][is_popular]] = _FALLBACK_EPSILON * (
            1.0 - (candidates["popularity"].rank - 1) / n
        )
        base[products < 0] = -np.inf
        return _Pool(products, pooled, base)

    def _blend(
        self,
        ids: np.ndarray,
        pool: _Pool,
        weights: Mapping[str, float] | None,
        *,
        k: int,
        exclude_purchased: bool,
    ) -> pd.DataFrame:
        vector = self._weight_vector(weights, exclude_purchased=exclude_purchased)
        position, slot, score, rank = pool.blend(vector, k)
        names = np.array(list(self.components_), dtype=object)
        source = pool.sources(position, slot, vector)
        return pd.DataFrame(
            {
                "customer_id": pd.array(ids[position], dtype="Int64"),
                "rank": rank.astype(np.int64),
                "stock_code": self.history_.stock_codes[pool.products[position, slot]],
                "score": score.astype(np.float64),
                "source": np.where(source >= 0, names[np.maximum(source, 0)], "popularity").astype(object),
            }
        )

    def recommend(
        self, customer_ids: Iterable[object], *, k: int = 10, exclude_purchased: bool = False
    ) -> pd.DataFrame:
        """Recommend up to ``k`` distinct products per customer from the blend.

        Args:
            customer_ids: Customers to serve; unknown customers get popular products.
            k: Maximum number of products per customer.
            exclude_purchased: If True, never recommend a product the customer bought in the fitted period.

        Returns:
            Long frame ``customer_id``, ``rank``, ``stock_code``, ``score`` (blended), ``source`` (component
            name).
        """
        _check_k(k)
        ids = _as_customer_ids(customer_ids)
        n = max(self.n_candidates, k)
        candidates = self._component_candidates(ids, exclude_purchased=exclude_purchased, n=n)
        pool = self._pool(candidates, len(ids), n=n)
        return self._blend(ids, pool, self.weights, k=k, exclude_purchased=exclude_purchased)

    def explain(self, recommendations: pd.DataFrame) -> pd.Series:
        """Explain each recommendation with the reason of its ``source`` component.

        Args:
            recommendations: Output of :meth:`recommend` (needs ``customer_id``, ``stock_code``, ``source``).

        Returns:
            One reason string per row, aligned with ``recommendations.index``.
        """
        reasons = pd.Series(pd.NA, index=recommendations.index, dtype=object, name="reason")
        for name, part in recommendations.groupby("source", sort=False):
            reasons.loc[part.index] = self.components_[str(name)].explain(part)
        return reasons


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
        sides; for ``new_only`` the products bought before the cutoff are removed (and with them customers
        left with nothing).
    """
    kept = _product_lines(lines)
    cutoff = pd.Timestamp(cutoff)
    end = cutoff + pd.DateOffset(months=test_months)
    train = kept[kept["invoice_date"] < cutoff]
    test = kept[(kept["invoice_date"] >= cutoff) & (kept["invoice_date"] < end)]
    before = train.loc[train["customer_id"].notna(), ["customer_id", "stock_code"]].drop_duplicates()
    after = test.loc[test["customer_id"].notna(), ["customer_id", "stock_code"]].drop_duplicates()
    after = after[after["customer_id"].isin(before["customer_id"])]
    relevant_any = after.sort_values(["customer_id", "stock_code"]).reset_index(drop=True)
    seen = relevant_any.merge(before, on=["customer_id", "stock_code"], how="left", indicator=True)
    relevant_new = relevant_any[(seen["_merge"] == "left_only").to_numpy()].reset_index(drop=True)
    return train, test, {"any": relevant_any, "new_only": relevant_new}


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
            "customer_id": pd.array(customers, dtype="Int64"),
            "n_relevant": n_relevant.astype(np.int64),
            "n_hits": hits.sum(axis=1).astype(np.int64),
            **metrics,
        }
    )


def _relevance(pool: _Pool, relevant: pd.DataFrame, customers: np.ndarray, history: _History) -> np.ndarray:
    """Boolean ``(customers, slots)`` matrix: is the pooled product in the customer's relevant set?"""
    n_products = len(history.stock_codes)
    position = np.searchsorted(customers, relevant["customer_id"].astype("int64").to_numpy())
    product = history.product_positions(relevant["stock_code"].to_numpy())
    wanted = np.unique(position[product >= 0] * n_products + product[product >= 0])
    pooled = np.arange(pool.products.shape[0])[:, None] * n_products + pool.products
    return (pool.products >= 0) & np.isin(pooled, wanted)


def _tune_on_folds(
    folds: list[tuple[_Pool, np.ndarray, np.ndarray]],
    names: list[str],
    *,
    k: int,
    grid: tuple[float, ...],
    n_rounds: int,
    fixed_zero: set[str],
) -> dict[str, float]:
    """Coordinate ascent on the blend weights maximising mean nDCG@k + mean hit rate@k, averaged on folds."""

    def objective(weights: np.ndarray) -> float:
        total = 0.0
        for pool, relevance, n_relevant in folds:
            position, slot, _, rank = pool.blend(weights, k)
            hits = _hits_matrix(position, rank, relevance[position, slot], len(n_relevant), k)
            metrics = _metrics_from_hits(hits, n_relevant)
            total += float(metrics["ndcg_at_k"].mean() + metrics["hit_rate_at_k"].mean())
        return total / len(folds)

    weights = np.array([0.0 if name in fixed_zero else 1.0 for name in names])
    best = objective(weights)
    for _ in range(n_rounds):
        improved = False
        for index, name in enumerate(names):
            if name in fixed_zero:
                continue
            for value in grid:
                if value == weights[index]:
                    continue
                trial = weights.copy()
                trial[index] = value
                if not trial.any():
                    continue
                score = objective(trial)
                # Strict improvement only: ties keep the earlier weights, so the result does not depend on
                # noise.
                if score > best + 1e-12:
                    best, weights, improved = score, trial, True
        if not improved:
            break
    return {name: float(w) for name, w in zip(names, weights, strict=True)}


def _customers_and_sizes(relevant: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    ids = relevant["customer_id"].astype("int64")
    sizes = ids.value_counts().sort_index()
    return sizes.index.to_numpy(dtype=np.int64), sizes.to_numpy(dtype=np.int64)


def tune_hybrid_weights(
    lines: pd.DataFrame,
    *,
    validation_months: int = 3,
    k: int = 10,
    components: Mapping[str, _Component] | None = None,
    normalization: Literal["rank", "max"] = "max",
    n_candidates: int = 100,
    grid: tuple[float, ...] = WEIGHT_GRID,
    n_rounds: int = 3,
    n_folds: int = 1,
    random_state: int | None = 0,
) -> dict[str, dict[str, float]]:
    """Learn the hybrid's blend weights on a validation split of ``lines``, for both settings.

    The last ``validation_months`` of ``lines`` are held out exactly as in :func:`evaluate`: components are
    fitted on the lines before, and the weights maximising mean nDCG@k + mean hit rate@k on the held-out
    purchases are found by coordinate ascent over ``grid`` (starting from equal weights, ``n_rounds`` sweeps
    at most). Buy-again is fixed at 0 in ``new_only`` since it can only propose products already bought.

    Args:
        lines: Cleaned sales lines of the *training* period only.
        validation_months: Length of the validation window, in months, ending at the last line's day.
        k: Cut-off rank of the objective.
        components: Unfitted components (default :func:`default_components`, whose rules are mined on the
            validation-fit lines, so no external rule leaks the held-out baskets).
        normalization: Hybrid score normalisation.
        n_candidates: Candidates per component and customer.
        grid: Candidate weight values.
        n_rounds: Maximum number of coordinate-ascent sweeps.
        n_folds: Number of consecutive validation windows (each ``validation_months`` long, going back from
            the end); the objective is averaged over them. 1 (default) did as well as 2 on a nested validation
            split.
        random_state: Seed for the SVD component.

    Returns:
        ``{"any": {...}, "new_only": {...}}`` weights per component name.

    Raises:
        ValidationSplitError: If the validation split leaves no customer to validate on.
    """
    _check_k(k)
    if n_folds < 1:
        raise ValueError(f"n_folds must be >= 1, got {n_folds}")
    kept = _product_lines(lines)
    n = max(n_candidates, k)
    end = _default_cutoff(kept, months=0)
    folds: dict[str, list[tuple[_Pool, np.ndarray, np.ndarray]]] = {setting: [] for setting in SETTINGS}
    names: list[str] = []
    for fold in range(n_folds):
        cutoff = end - pd.DateOffset(months=validation_months * (fold + 1))
        fold_lines = kept[kept["invoice_date"] < end - pd.DateOffset(months=validation_months * fold)]
        train, _, relevant = temporal_split(fold_lines, cutoff=cutoff, test_months=validation_months)
        if relevant["any"].empty or train.empty:
            raise _split_error(kept, cutoff, validation_months, "validation")
        hybrid = HybridRecommender(
            components=components,
            normalization=normalization,
            n_candidates=n_candidates,
            random_state=random_state,
        ).fit(train)
        names = list(hybrid.components_)
        for setting, exclude in SETTINGS.items():
            customers, n_relevant = _customers_and_sizes(relevant[setting])
            candidates = hybrid._component_candidates(customers, exclude_purchased=exclude, n=n)
            pool = hybrid._pool(candidates, len(customers), n=n)
            folds[setting].append(
                (pool, _relevance(pool, relevant[setting], customers, hybrid.history_), n_relevant)
            )
    tuned = {
        setting: _tune_on_folds(
            folds[setting],
            names,
            k=k,
            grid=grid,
            n_rounds=n_rounds,
            fixed_zero={"buy_again"} if exclude else set(),
        )
        for setting, exclude in SETTINGS.items()
    }
    return tuned


def _default_cutoff(lines: pd.DataFrame, *, months: int) -> pd.Timestamp:
    """``months`` before the end of the last invoice day, so the window holds exactly ``months`` of data."""
    end = pd.Timestamp(lines["invoice_date"].max()).normalize() + pd.Timedelta(days=1)
    return end - pd.DateOffset(months=months)


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
        components: Unfitted components (default :func:`default_components`); evaluated alone and blended.
        normalization: Hybrid score normalisation (see :class:`HybridRecommender`).
        n_candidates: Candidates per component and customer in the hybrid.
        n_folds: Validation windows used to tune the hybrid (see :func:`tune_hybrid_weights`).
        random_state: Seed for the SVD component.

    Returns:
        One row per (model, setting): ``model``, ``setting``, ``k``, ``n_customers``, ``precision_at_k``,
        ``recall_at_k``, ``ndcg_at_k``, ``hit_rate_at_k``, ``catalogue_coverage``, ``cutoff_date``,
        ``test_end_date``, ``params`` (JSON hyperparameters; the tuned weights for the hybrid).

    Raises:
        ValidationSplitError: If no customer is active on both sides of the cutoff (the message states the
            data span needed).
    """
    _check_k(k)
    kept = _product_lines(cleaned)
    cutoff = _default_cutoff(kept, months=test_months) if cutoff is None else pd.Timestamp(cutoff)
    train, _, relevant = temporal_split(kept, cutoff=cutoff, test_months=test_months)
    if relevant["any"].empty:
        raise _split_error(kept, cutoff, test_months, "evaluation")
    options = {
        "components": components,
        "normalization": normalization,
        "n_candidates": n_candidates,
        "random_state": random_state,
    }
    weights = tune_hybrid_weights(train, validation_months=validation_months, k=k, n_folds=n_folds, **options)
    hybrid = HybridRecommender(**options).fit(train)
    n = max(hybrid.n_candidates, k)
    catalogue = len(hybrid.history_.stock_codes)
    rows = []
    for setting, exclude in SETTINGS.items():
        wanted = relevant[setting]
        customers, _ = _customers_and_sizes(wanted)
        # Each component's own top-k is the head of its candidate list, so candidates are computed once.
        candidates = hybrid._component_candidates(customers, exclude_purchased=exclude, n=n)
        for model in MODEL_NAMES:
            if model == "hybrid":
                pool = hybrid._pool(candidates, len(customers), n=n)
                recs = hybrid._blend(customers, pool, weights[setting], k=k, exclude_purchased=exclude)
                params = {
                    "weights": weights[setting],
                    "normalization": hybrid.normalization,
                    "n_candidates": hybrid.n_candidates,
                }
            else:
                found = candidates[model]
                head = found.rank <= k
                recs = pd.DataFrame(
                    {
                        "customer_id": customers[found.position[head]],
                        "rank": found.rank[head],
                        "stock_code": hybrid.history_.stock_codes[found.product[head]],
                    }
                )
                params = {
                    key: value
                    for key, value in hybrid.components_[model].get_params().items()
                    if key != "rules"
                }
            per_customer = ranking_metrics(recs, wanted, k=k)
            rows.append(
                {
                    "model": model,
                    "setting": setting,
                    "k": k,
                    "n_customers": len(customers),
                    **{
                        name: float(per_customer[name].mean())
                        for name in ("precision_at_k", "recall_at_k", "ndcg_at_k", "hit_rate_at_k")
                    },
                    "catalogue_coverage": recs["stock_code"].nunique() / catalogue,
                    "cutoff_date": cutoff,
                    "test_end_date": cutoff + pd.DateOffset(months=test_months),
                    "params": json.dumps(params, sort_keys=True, default=str),
                }
            )
    return pd.DataFrame(rows)


def recommend_all_settings(
    cleaned: pd.DataFrame,
    rules: pd.DataFrame | None = None,
    *,
    k: int = 10,
    settings: Iterable[str] = tuple(SETTINGS),
    weights: Mapping[str, Mapping[str, float]] | None = None,
    validation_months: int = 3,
    random_state: int | None = 0,
) -> pd.DataFrame:
    """Top-``k`` hybrid recommendations with reasons for every customer with history, in several settings.

    Blend weights are tuned on the last ``validation_months`` of ``cleaned`` (components, rules included,
    fitted on the lines before that: the external ``rules`` are never used for tuning since they may have seen
    the validation baskets), then every component is refitted once on all of ``cleaned``, the rules component
    on ``rules`` when given, and each setting is served from that single fit.

    Args:
        cleaned: Cleaned sales lines.
        rules: Optional association rules (``antecedents``/``consequents`` lists of stock codes, ``support``,
            ``confidence``, ``lift``; optional ``is_redundant``); None mines them from ``cleaned``.
        k: Products per customer.
        settings: Names among ``"any"`` (repurchases allowed) and ``"new_only"`` (nothing the customer
            bought).
        weights: Blend weights per setting (as returned by :func:`tune_hybrid_weights`); None tunes them, or
            falls back to ``DEFAULT_WEIGHTS`` with a logged warning when the data is too short to validate on.
        validation_months: Validation window used for tuning.
        random_state: Seed for the SVD component.

    Returns:
        ``customer_id``, ``rank`` (1..k), ``stock_code``, ``description``, ``score``, ``source``, ``reason``,
        ``setting``, sorted by setting, customer and rank.

    Raises:
        ValueError: If a setting name is unknown or ``weights`` lacks one.
    """
    _check_k(k)
    settings = list(settings)
    unknown = [name for name in settings if name not in SETTINGS]
    if unknown or not settings:
        raise ValueError(f"settings must be a non-empty subset of {list(SETTINGS)}, got {settings}")
    kept = _product_lines(cleaned)
    if weights is None:
        try:
            weights = tune_hybrid_weights(
                kept, validation_months=validation_months, k=k, random_state=random_state
            )
        except ValidationSplitError as err:
            # Too little history to tune on (e.g. a one-week sample): recommending with the documented default
            # blend beats recommending nothing; the warning says why the weights are not tuned.
            _LOG.warning("blend weights not tuned, using DEFAULT_WEIGHTS: %s", err)
            weights = DEFAULT_WEIGHTS
    missing = [name for name in settings if name not in weights]
    if missing:
        raise ValueError(f"no blend weights for settings {missing}")
    hybrid = HybridRecommender(
        components=default_components(random_state=random_state, rules=rules), random_state=random_state
    ).fit(kept)
    customers = hybrid.history_.customer_ids
    tables = []
    for setting in settings:
        recs = hybrid.set_params(weights=dict(weights[setting])).recommend(
            customers, k=k, exclude_purchased=SETTINGS[setting]
        )
        recs["reason"] = hybrid.explain(recs)
        recs["description"] = hybrid.history_.descriptions[
            hybrid.history_.product_positions(recs["stock_code"])
        ]
        recs["setting"] = setting
        tables.append(recs)
    columns = ["customer_id", "rank", "stock_code", "description", "score", "source", "reason", "setting"]
    table = pd.concat(tables, ignore_index=True)[columns]
    order = table["setting"].map({name: i for i, name in enumerate(settings)})
    return (
        table.assign(_order=order)
        .sort_values(["_order", "customer_id", "rank"])
        .drop(columns="_order")
        .reset_index(drop=True)
    )


def recommend_all(
    cleaned: pd.DataFrame,
    rules: pd.DataFrame | None = None,
    *,
    k: int = 10,
    exclude_purchased: bool = False,
    weights: Mapping[str, float] | None = None,
    validation_months: int = 3,
    random_state: int | None = 0,
) -> pd.DataFrame:
    """Top-``k`` hybrid recommendations with reasons for every customer with a purchase history, one setting.

    See :func:`recommend_all_settings` (which serves both settings from one fit) for the procedure.

    Args:
        cleaned: Cleaned sales lines.
        rules: Optional association rules; None mines them from ``cleaned``.
        k: Products per customer.
        exclude_purchased: False for the ``any`` setting, True for ``new_only`` (discovery).
        weights: Blend weights per component; None tunes them on the validation split.
        validation_months: Validation window used for tuning.
        random_state: Seed for the SVD component.

    Returns:
        ``customer_id``, ``rank`` (1..k), ``stock_code``, ``description``, ``score``, ``source``, ``reason``,
        ``setting`` (``"any"`` or ``"new_only"``), sorted by customer and rank.
    """
    setting = "new_only" if exclude_purchased else "any"
    return recommend_all_settings(
        cleaned,
        rules,
        k=k,
        settings=(setting,),
        weights=None if weights is None else {setting: weights},
        validation_months=validation_months,
        random_state=random_state,
    )
