"""The recommender components: their shared protocol, the top-k machinery, and the five components.

What belongs here: ``_Component`` (the fit / recommend / explain plumbing), the candidate lists and top-k
selections every component ranks with, the popularity, buy-again, item-kNN, SVD and association-rules
components, the preparation of external rule tables (:func:`_prepare_rules`) and :func:`default_components`.
The blend of the components lives in ``hybrid``, the coded lines they learn from in ``history``, the matrix
factorisation in ``svd``. No dagster imports.

Conventions shared by every component (scikit-learn style): ``__init__`` only stores keyword parameters,
``fit(lines)`` learns from cleaned sales lines and returns ``self``, learned state ends with ``_``, and
``recommend(customer_ids, k=..., exclude_purchased=...)`` returns a long frame ``customer_id, rank,
stock_code, score`` with at most ``k`` distinct products per customer, best first. ``exclude_purchased=True``
is the *discovery* setting (``new_only``): nothing the customer bought during the fitted period is
recommended. Only real product codes (see :func:`pipeline.common.codes.is_product_code`) are ever
recommended: lines and rules with other codes are ignored.

Every speed-up keeps the results bit for bit: rows whose k-th place is tied are still cut by
``np.argpartition`` on the same row, the others by a cheaper value partition (see :func:`_top_k`); sums are
taken in the same order as before.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import ClassVar, Literal, Self

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.base import BaseEstimator
from sklearn.preprocessing import normalize

from pipeline.baskets import basket_analysis
from pipeline.common.codes import is_product_code
from pipeline.recommend import svd
from pipeline.recommend.history import (
    _as_customer_ids,
    _distinct,
    _History,
    _Lines,
    _product_lines,
    _run_starts,
    _runs,
)

_BATCH_ROWS = 1024
_EXPLAIN_BATCH = 16 * _BATCH_ROWS
_NS_PER_SECOND = 1_000_000_000


@dataclass(frozen=True)
class _Candidates:
    """One component's top candidates: customer position in the request, product column, score, rank.

    Entries are ordered by position, then rank.
    """

    position: np.ndarray
    product: np.ndarray
    score: np.ndarray
    rank: np.ndarray

    def take(self, new_positions: np.ndarray) -> _Candidates:
        """Re-index to a sub-request: ``new_positions[old]`` is the new position, -1 drops the customer.

        The mapping must be increasing on the kept positions, so the order is preserved.
        """
        mapped = new_positions[self.position]
        kept = mapped >= 0
        return _Candidates(mapped[kept], self.product[kept], self.score[kept], self.rank[kept])


def _empty_candidates() -> _Candidates:
    empty = np.array([], dtype=np.int64)
    return _Candidates(empty, empty, np.array([], dtype=np.float64), empty)


def _top_k(
    scores: np.ndarray,
    k: int,
    *,
    positive_only: bool,
    tie_dtype: type[np.floating] | None = None,
    defer_ties: bool = False,
) -> tuple[np.ndarray, ...]:
    """Best ``k`` entries of each row of a dense block, best first, equal scores by lower column.

    Which of several entries tied for the k-th place make the cut is decided, as it always was, by
    ``np.argpartition`` on that row (so results never change with the speed-ups). Rows without such a tie take
    a faster path: a value-only ``np.partition`` finds the k-th best score and one comparison selects the
    entries at or above it. Entries that are not positive (``positive_only``) or not finite (empty slots) are
    dropped after ranking; they always rank below the kept ones.

    Args:
        scores: ``(rows, columns)`` float block.
        k: Entries wanted per row.
        positive_only: Keep only scores > 0 (else only finite scores).
        tie_dtype: Float type the tied rows are ranked in (default: the block's); ranking float32 scores as
            float64 gives the same order, this only keeps the tie-breaking call exactly as it was.
        defer_ties: If True, rows with a tie at the k-th place are left out and returned separately.

    Returns:
        ``(row, column, score, rank)`` of the kept entries ordered by row and rank, plus the deferred rows
        when ``defer_ties``.
    """
    n_rows, width = scores.shape
    k = min(k, width)
    dtype = scores.dtype.type
    # The smallest score kept: any positive (subnormals included), or any finite one.
    floor = np.nextafter(dtype(0), dtype(1)) if positive_only else -np.finfo(dtype).max
    tied = np.array([], dtype=np.int64)
    if k == width:
        values, columns = scores.copy(), np.broadcast_to(np.arange(width), scores.shape).copy()
    else:
        partitioned = np.partition(scores, width - k - 1, axis=1)
        kth = partitioned[:, width - k :].min(axis=1)
        # A tie between the k-th and (k+1)-th best scores leaves the cut to argpartition.
        tie = (kth == partitioned[:, width - k - 1]) & (kth >= floor)
        tied = np.flatnonzero(tie)
        threshold = np.maximum(kth, floor)
        threshold[tied] = np.inf
        # flatnonzero is several times faster than a 2-D nonzero on a wide block.
        row, column = np.divmod(np.flatnonzero(scores >= threshold[:, None]), width)
        slot = np.arange(len(row)) - np.searchsorted(row, row, side="left")
        # At most k entries per row, in column order: pad to (rows, k) and sort each row by score.
        values = np.full((n_rows, k), -np.inf, dtype=scores.dtype)
        columns = np.zeros((n_rows, k), dtype=np.int64)
        values[row, slot] = scores[row, column]
        columns[row, slot] = column
        if len(tied) and not defer_ties:
            block = scores[tied].astype(tie_dtype or dtype)
            part = np.sort(np.argpartition(-block, k - 1, axis=1)[:, :k], axis=1)
            values[tied] = np.take_along_axis(scores[tied], part, axis=1)
            columns[tied] = part
    # Stable: equal scores keep their column order.
    order = np.argsort(-values, axis=1, kind="stable")
    values = np.take_along_axis(values, order, axis=1)
    columns = np.take_along_axis(columns, order, axis=1)
    kept = values >= floor
    row = np.broadcast_to(np.arange(n_rows)[:, None], values.shape)[kept]
    rank = np.broadcast_to(np.arange(1, k + 1)[None, :], values.shape)[kept]
    result = (row.astype(np.int64), columns[kept], values[kept], rank.astype(np.int64))
    return (*result, tied) if defer_ties else result


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
        return self._fit_history(_History.from_lines(_Lines.from_frame(_product_lines(lines))))

    def _fit_history(self, history: _History) -> Self:
        raise NotImplementedError

    def _score_rows(self, rows: np.ndarray) -> np.ndarray | sp.csr_matrix:
        """``(len(rows), n_products)`` scores of known customer rows, dense or sparse; <= 0: no candidate."""
        raise NotImplementedError

    def _explain(self, rows: np.ndarray, products: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _candidate_sets(
        self, customer_ids: np.ndarray, *, n: int, settings: Sequence[bool]
    ) -> list[_Candidates]:
        """Top ``n`` products per customer for each ``exclude_purchased`` flag in ``settings``.

        Each block of scores is computed once and ranked for every setting. ``position`` indexes
        ``customer_ids``.
        """
        history: _History = self.history_
        rows = history.customer_rows(customer_ids)
        parts: list[list[tuple[np.ndarray, ...]]] = [[] for _ in settings]
        known = np.flatnonzero(rows >= 0)
        # Rank the unmasked scores first, then mask purchases in place for the discovery settings.
        sequence = sorted(range(len(settings)), key=lambda index: settings[index])
        for start in range(0, len(known), _BATCH_ROWS):
            batch = known[start : start + _BATCH_ROWS]
            scores = self._score_rows(rows[batch])
            if sp.issparse(scores):
                scores = sp.csr_matrix(scores, dtype=np.float64)
                purchased = history.counts[rows[batch]] > 0
                for index in sequence:
                    ranked = scores - scores.multiply(purchased) if settings[index] else scores
                    local, product, score, rank = _top_n_sparse(ranked, n)
                    parts[index].append((batch[local], product, score, rank))
            else:
                # float32 scores (item-kNN) are ranked as float32: the same order as in float64, for half the
                # memory traffic; ties are still broken on float64 rows, as before.
                # Score blocks are fresh arrays: masking them in place is safe.
                scores = np.asarray(scores, dtype=np.float32 if scores.dtype == np.float32 else np.float64)
                masked = False
                for index in sequence:
                    if settings[index] and not masked:
                        bought_r, bought_c = history.counts[rows[batch]].nonzero()
                        scores[bought_r, bought_c] = -np.inf
                        masked = True
                    local, product, score, rank = _top_k(scores, n, positive_only=True, tie_dtype=np.float64)
                    parts[index].append((batch[local], product, score.astype(np.float64), rank))
        return [_concat_candidates(setting_parts) for setting_parts in parts]

    def _candidates(self, customer_ids: np.ndarray, *, n: int, exclude_purchased: bool) -> _Candidates:
        """Top ``n`` products per customer; ``position`` indexes ``customer_ids``."""
        return self._candidate_sets(customer_ids, n=n, settings=(exclude_purchased,))[0]

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
                "customer_id": np.asarray(ids[found.position], dtype=np.int64),
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


def _concat_candidates(parts: list[tuple[np.ndarray, ...]]) -> _Candidates:
    if not parts:
        return _empty_candidates()
    position, product, score, rank = (np.concatenate(arrays) for arrays in zip(*parts, strict=True))
    step = np.diff(position)
    # Batches come in position order, each sorted by position and rank: sort only if that ever changes.
    if (step < 0).any() or (np.diff(rank)[step == 0] <= 0).any():
        order = np.lexsort((rank, position))
        position, product, score, rank = position[order], product[order], score[order], rank[order]
    return _Candidates(position, product, score, rank.astype(np.int64))


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

    def _fit_history(self, history: _History) -> Self:
        if self.by not in ("customers", "invoices"):
            raise ValueError(f"by must be 'customers' or 'invoices', got {self.by!r}")
        lines = history.lines
        if self.by == "customers":
            counted = np.flatnonzero(history.rows >= 0)
            unit = history.rows[counted]
        else:
            counted = np.arange(len(history.rows))
            unit = lines.invoice[counted].astype(np.int64)
        start = history.end_date.value - pd.Timedelta(days=self.window_days).value
        recent = lines.date[counted] > start
        n_products = len(history.stock_codes)
        self.history_ = history
        self.window_counts_ = self._distinct(unit[recent], history.cols[counted][recent], n_products)
        if self.by == "customers":
            # One entry of the count matrix per customer and product: its columns count the buyers.
            self.total_counts_ = np.bincount(history.counts.indices, minlength=n_products).astype(np.float64)
        else:
            self.total_counts_ = self._distinct(unit, history.cols[counted], n_products)
        self.scores_ = self.window_counts_ + self.total_counts_ / (self.total_counts_.max() + 1.0)
        return self

    @staticmethod
    def _distinct(unit: np.ndarray, cols: np.ndarray, n_products: int) -> np.ndarray:
        """Distinct units (customers or invoices) per product."""
        pairs = _distinct(unit * n_products + cols)
        return np.bincount(pairs % n_products, minlength=n_products).astype(np.float64)

    def _candidate_sets(
        self, customer_ids: np.ndarray, *, n: int, settings: Sequence[bool]
    ) -> list[_Candidates]:
        # Everybody, unknown customers included, shares one ranking: walk it once instead of ranking every
        # row.
        order = np.lexsort((np.arange(len(self.scores_)), -self.scores_))
        return [self._ranked(customer_ids, order, n=n, exclude_purchased=exclude) for exclude in settings]

    def _ranked(
        self, customer_ids: np.ndarray, order: np.ndarray, *, n: int, exclude_purchased: bool
    ) -> _Candidates:
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
            known = np.flatnonzero(rows[batch] >= 0)
            bought_r, bought_c = self.history_.counts[rows[batch][known]].nonzero()
            # A customer's n-th unbought product is within the first n + (products bought) of the ranking.
            depth = min(len(order), n + int(np.bincount(bought_r).max(initial=0)))
            available = np.ones((len(batch), depth), dtype=bool)
            within = inverse_order[bought_c] < depth
            available[known[bought_r[within]], inverse_order[bought_c[within]]] = False
            rank = np.cumsum(available, axis=1)
            local, slot = np.nonzero(available & (rank <= n))
            parts.append((batch[local], order[slot], self.scores_[order[slot]], rank[local, slot]))
        if not parts:
            return _empty_candidates()
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

    def _fit_history(self, history: _History) -> Self:
        if self.half_life_days <= 0:
            raise ValueError(f"half_life_days must be > 0, got {self.half_life_days}")
        rows, cols, first = history.basket_rows, history.basket_cols, history.basket_first
        # Seconds as pandas' Timedelta.total_seconds computes them, then days.
        age_days = (history.end_date.value - first) / _NS_PER_SECOND / 86400.0
        decay = np.power(0.5, age_days / self.half_life_days)
        # Baskets come sorted by customer, invoice and product, so duplicates are summed in a fixed order.
        self.scores_ = sp.csr_matrix((decay, (rows, cols)), shape=history.counts.shape, dtype=np.float64)
        self.scores_.sum_duplicates()
        n_products = len(history.stock_codes)
        pair = rows * n_products + cols
        order = np.argsort(pair, kind="stable")
        starts = _run_starts(pair[order])
        last = np.maximum.reduceat(first[order], starts) if len(starts) else first[:0]
        pairs = pair[order][starts]
        # Same sparsity pattern as ``history.counts``: the latest purchase date (int64 ns) per customer and
        # product.
        self.last_purchase_ = sp.csr_matrix(
            (last, (pairs // n_products, pairs % n_products)), shape=history.counts.shape, dtype=np.int64
        )
        self.history_ = history
        return self

    def _score_rows(self, rows: np.ndarray) -> sp.csr_matrix:
        return self.scores_[rows]

    def _explain(self, rows: np.ndarray, products: np.ndarray) -> np.ndarray:
        reasons = np.full(len(rows), "you bought something like it before", dtype=object)
        counts = np.zeros(len(rows), dtype=np.int64)
        known = np.flatnonzero(rows >= 0)
        counts[known] = np.asarray(self.history_.counts[rows[known], products[known]]).ravel()
        bought = np.flatnonzero(counts > 0)
        if len(bought) == 0:
            return reasons
        dates = np.asarray(self.last_purchase_[rows[bought], products[bought]]).ravel()
        # Format each distinct date once: a year of purchases has a few hundred distinct instants.
        distinct, inverse = np.unique(dates, return_inverse=True)
        days = np.array([pd.Timestamp(int(date)).strftime("%d %b %Y") for date in distinct], dtype=object)
        reasons[bought] = [
            f"you bought this {n} times, last on {when}" if n > 1 else f"you bought this on {when}"
            for n, when in zip(counts[bought], days[inverse], strict=True)
        ]
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
        weighting: Matrix weighting, see ``pipeline.recommend.svd.customer_product_matrix`` (default
            ``"tfidf"``).
    """

    name: ClassVar[str] = "item_knn"

    def __init__(self, *, n_neighbors: int | None = None, weighting: svd.Weighting = "tfidf") -> None:
        self.n_neighbors = n_neighbors
        self.weighting = weighting

    def _fit_history(self, history: _History) -> Self:
        weights = svd.weight_counts(history.counts, weighting=self.weighting)
        similarity = _cosine_similarity(normalize(weights.tocsc(), norm="l2", axis=0))
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
        # Visit the recommendations product by product: consecutive ones then read the same similarity row,
        # which stays in cache (each recommendation is explained on its own, so the order changes nothing).
        known = known[np.argsort(products[known], kind="stable")]
        # Chunks keep the per-purchase temporaries small (a recommendation expands to all the customer's
        # purchases: tens of millions of entries at 10 million lines).
        for start in range(0, len(known), _EXPLAIN_BATCH):
            chunk = known[start : start + _EXPLAIN_BATCH]
            winners, best = self._best_purchases(rows[chunk], products[chunk])
            reasons[chunk[winners]] = [
                f"customers who bought {name} also bought it" for name in descriptions[best]
            ]
        return reasons

    def _best_purchases(self, rows: np.ndarray, products: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For each (customer row, product): the purchase contributing most to its score, if any.

        Returns:
            Indices of the recommendations with a positive contribution, and the column of their best purchase
            (the lowest column among equal contributions).
        """
        # Contribution of each of the customer's products j to the score of product i: x[c, j] * S[j, i].
        user = self.user_matrix_[rows].tocsr()
        user.sort_indices()
        rec = np.repeat(np.arange(len(rows)), np.diff(user.indptr))
        if sp.issparse(self.similarity_):
            similarity = self.similarity_[user.indices, products[rec]]
        else:
            # The dense similarity is exactly symmetric (see _cosine_similarity): read S[i, j] for S[j, i],
            # along the recommended product's row instead of down its column.
            similarity = self.similarity_[products[rec], user.indices]
        contribution = user.data * np.asarray(similarity, dtype=np.float64).ravel()
        has_items = np.diff(user.indptr) > 0
        best_value = np.zeros(len(rows))
        best_value[has_items] = np.maximum.reduceat(contribution, user.indptr[:-1][has_items])
        # First (lowest column) item reaching its recommendation's maximum: the product that explains it best.
        is_best = (contribution == best_value[rec]) & (contribution > 0)
        winners, first = np.unique(rec[is_best], return_index=True)
        return winners, user.indices[is_best][first]


def _cosine_similarity(columns: sp.csc_matrix, *, n_blocks: int = 8) -> np.ndarray:
    """``columns.T @ columns`` as a dense float32 matrix, computed block by block above the diagonal.

    Sparse x sparse products cost the sum over customers of their squared number of products, far below the
    sparse x dense product (non-zeros x products). Each entry adds the same products in the same (customer)
    order whichever way it is computed, and ``x * y == y * x`` exactly, so the matrix is exactly symmetric:
    the blocks below the diagonal are mirrored instead of computed, and no full-size float64 or sparse
    intermediate is ever built.
    """
    n = columns.shape[1]
    edges = np.linspace(0, n, min(n_blocks, max(n, 1)) + 1).astype(np.int64)
    blocks = [columns[:, start:end] for start, end in zip(edges[:-1], edges[1:], strict=True)]
    rows = [block.T.tocsr() for block in blocks]
    similarity = np.empty((n, n), dtype=np.float32)
    for i, (row_start, row_end) in enumerate(zip(edges[:-1], edges[1:], strict=True)):
        for j in range(i, len(blocks)):
            part = (rows[i] @ blocks[j]).toarray().astype(np.float32)
            similarity[row_start:row_end, edges[j] : edges[j + 1]] = part
            if j != i:
                # Transpose in strips that stay in cache, rather than one cache miss per element.
                for strip in range(0, part.shape[1], 64):
                    target = slice(edges[j] + strip, min(edges[j] + strip + 64, edges[j + 1]))
                    similarity[target, row_start:row_end] = part[:, strip : strip + 64].T
    return similarity


class SVDRecommender(_Component):
    """Latent-factor recommender: the customer's row of the rank-``n_components`` SVD reconstruction.

    Args:
        n_components: Number of latent factors (capped, see ``pipeline.recommend.svd.fit_svd``).
        weighting: Matrix weighting, see ``pipeline.recommend.svd.customer_product_matrix``.
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

    def _fit_history(self, history: _History) -> Self:
        matrix = svd.CustomerProductMatrix(
            svd.weight_counts(history.counts, weighting=self.weighting),
            pd.Index(history.customer_ids, dtype=np.int64, name="customer_id"),
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


def _as_code_list(items: object) -> list[str]:
    if isinstance(items, str):
        return [items]
    if items is None or (isinstance(items, float) and np.isnan(items)):
        return []
    return sorted({str(item) for item in items})


def _prepare_rules(rules: pd.DataFrame) -> pd.DataFrame:
    """Normalise an external rules table: code lists, no redundant rules, only real product codes.

    When a ``country`` column is present only the rules with a null country (mined on all baskets, as the
    holdouts mine them) are used: per-country rules rest on far fewer baskets, and a recommender evaluated on
    all-countries rules must serve all-countries rules. Without that column a rule given twice keeps its
    strongest version.
    """
    missing = [
        c for c in ("antecedents", "consequents", "confidence", "lift", "support") if c not in rules.columns
    ]
    if missing:
        raise ValueError(f"rules lack columns {missing}")
    kept = rules
    if "country" in kept.columns:
        kept = kept[kept["country"].isna()]
    if "is_redundant" in kept.columns:
        kept = kept[~kept["is_redundant"].fillna(False).astype(bool)]
    antecedents = [_as_code_list(items) for items in kept["antecedents"]]
    consequents = [_as_code_list(items) for items in kept["consequents"]]
    # Test every distinct code once rather than every list.
    lengths = np.array(
        [len(a) + len(c) for a, c in zip(antecedents, consequents, strict=True)], dtype=np.int64
    )
    flat = [code for a, c in zip(antecedents, consequents, strict=True) for code in (*a, *c)]
    owner = np.repeat(np.arange(len(lengths)), lengths)
    bad = np.bincount(owner, weights=~is_product_code(flat), minlength=len(lengths))
    valid = np.array(
        [len(a) > 0 and len(c) > 0 for a, c in zip(antecedents, consequents, strict=True)], dtype=bool
    ) & (bad == 0)
    kept = pd.DataFrame(
        {
            "antecedents": pd.Series(antecedents, dtype=object).to_numpy(),
            "consequents": pd.Series(consequents, dtype=object).to_numpy(),
            "support": kept["support"].astype(np.float64).to_numpy(),
            "confidence": kept["confidence"].astype(np.float64).to_numpy(),
            "lift": kept["lift"].astype(np.float64).to_numpy(),
        }
    )[valid]
    # Per-country tables repeat a rule; keep its strongest version.
    key = kept["antecedents"].map("|".join) + ">" + kept["consequents"].map("|".join)
    kept = kept.assign(_key=key).sort_values(["confidence", "lift"], ascending=False, kind="stable")
    return kept.drop_duplicates("_key").drop(columns="_key").reset_index(drop=True)


class RulesRecommender(_Component):
    """Recommend the consequents of association rules triggered by the customer's recent baskets.

    A rule fires for a customer when all its antecedents are among the products of the customer's last
    ``n_recent_invoices`` invoices (all invoices if None). A product's score is the best score of the rules
    that fire and contain it as a consequent: ``confidence`` (default) or ``confidence * lift``.

    Args:
        rules: Precomputed rules (``antecedents`` and ``consequents`` as lists of codes, ``support``,
            ``confidence``, ``lift``; rows with ``is_redundant`` True are dropped, and only all-countries
            rules are used when a ``country`` column is present, see ``_prepare_rules``): the served table.
            If None the rules are mined at fit time from the fitted lines only, with
            :func:`pipeline.baskets.basket_analysis.mine_rules` and ``mining``, then prepared the same way:
            what a temporal evaluation needs to score the served rules without leakage.
        mining: Settings of the fit-time mining (only when ``rules`` is None); default
            ``basket_analysis.RuleMining()``, the defaults of the association-rules table.
        n_recent_invoices: How many of the customer's latest invoices trigger rules.
        score: ``"confidence"`` or ``"confidence_lift"``.
    """

    name: ClassVar[str] = "rules"

    def __init__(
        self,
        *,
        rules: pd.DataFrame | None = None,
        mining: basket_analysis.RuleMining | None = None,
        n_recent_invoices: int | None = 3,
        score: Literal["confidence", "confidence_lift"] = "confidence",
    ) -> None:
        self.rules = rules
        self.mining = mining
        self.n_recent_invoices = n_recent_invoices
        self.score = score

    def _fit_history(self, history: _History) -> Self:
        if self.score not in ("confidence", "confidence_lift"):
            raise ValueError(f"score must be 'confidence' or 'confidence_lift', got {self.score!r}")
        rules = _prepare_rules(self._mined(history) if self.rules is None else self.rules)
        antecedents, antecedent_sizes = _positions_of_lists(history, rules["antecedents"])
        consequents, consequent_sizes = _positions_of_lists(history, rules["consequents"])
        # A rule about a product outside the fitted catalogue can neither fire nor be served.
        unknown = np.bincount(
            np.repeat(np.arange(len(rules)), antecedent_sizes), weights=antecedents < 0, minlength=len(rules)
        ) + np.bincount(
            np.repeat(np.arange(len(rules)), consequent_sizes), weights=consequents < 0, minlength=len(rules)
        )
        usable = unknown == 0
        self.rules_ = rules[usable].reset_index(drop=True)
        shape = (len(self.rules_), len(history.stock_codes))
        self.antecedents_ = _incidence(antecedents, antecedent_sizes, usable, shape)
        self.consequents_ = _incidence(consequents, consequent_sizes, usable, shape)
        self.antecedent_sizes_ = antecedent_sizes[usable]
        strength = self.rules_["confidence"].to_numpy(dtype=np.float64)
        if self.score == "confidence_lift":
            strength = strength * self.rules_["lift"].to_numpy(dtype=np.float64)
        self.rule_scores_ = strength
        self.recent_items_ = self._recent_items(history)
        self.history_ = history
        return self

    def _mined(self, history: _History) -> pd.DataFrame:
        """The fitted lines' all-countries rules, mined exactly as the association-rules table is."""
        lines = pd.DataFrame(
            {"invoice": history.lines.invoice, "stock_code": history.stock_codes[history.cols]}
        )
        # Descriptions only label the mined table; the codes stand in for them here.
        return basket_analysis.mine_rules(lines, self.mining, descriptions={})

    def _recent_items(self, history: _History) -> sp.csr_matrix:
        """Binary customer x product matrix of the products in each customer's latest invoices."""
        lines = history.lines
        known = np.flatnonzero(history.rows >= 0)
        if self.n_recent_invoices is not None:
            rows, invoices = history.rows[known], lines.invoice[known].astype(np.int64)
            key = rows * lines.n_invoices + invoices
            order, starts = _runs(key)
            # Each (customer, invoice) dated by its latest line, then latest first (the later invoice code on
            # equal dates), as a sort by customer, date descending, invoice descending.
            dated = np.maximum.reduceat(lines.date[known][order], starts) if len(starts) else key[:0]
            customer, invoice = rows[order][starts], invoices[order][starts]
            latest = np.lexsort((-invoice, -dated, customer))
            customer, invoice = customer[latest], invoice[latest]
            position = np.arange(len(customer)) - np.searchsorted(customer, customer, side="left")
            recent = np.zeros(lines.n_invoices, dtype=bool)
            recent[invoice[position < self.n_recent_invoices]] = True
            known = known[recent[lines.invoice[known]]]
        items = sp.csr_matrix(
            (np.ones(len(known)), (history.rows[known], history.cols[known])),
            shape=history.counts.shape,
            dtype=np.float64,
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
        n_products = len(self.history_.stock_codes)
        key = local.astype(np.int64) * n_products + products
        order = np.argsort(key)
        starts = _run_starts(key[order])
        best = np.maximum.reduceat(self.rule_scores_[rule][order], starts) if len(starts) else np.zeros(0)
        cells = key[order][starts]
        shape = (len(rows), n_products)
        return sp.csr_matrix((best, (cells // n_products, cells % n_products)), shape=shape)

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


def _positions_of_lists(history: _History, lists: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Catalogue columns of every code of every list (-1 for unknown codes), flat, and each list's length."""
    lengths = lists.map(len).to_numpy(dtype=np.int64)
    flat = history.product_positions(np.array([code for items in lists for code in items], dtype=object))
    return flat, lengths


def _incidence(
    flat: np.ndarray, lengths: np.ndarray, usable: np.ndarray, shape: tuple[int, int]
) -> sp.csr_matrix:
    """Rule x product 0/1 matrix of the usable rules' lists (``flat`` columns, ``lengths`` per rule)."""
    indices = flat[np.repeat(usable, lengths)].astype(np.int64)
    indptr = np.concatenate([[0], np.cumsum(lengths[usable])]).astype(np.int64)
    matrix = sp.csr_matrix((np.ones(len(indices)), indices, indptr), shape=shape, dtype=np.float64)
    matrix.sort_indices()
    return matrix


def default_components(
    *,
    random_state: int | None = 0,
    rules: pd.DataFrame | None = None,
    mining: basket_analysis.RuleMining | None = None,
) -> dict[str, _Component]:
    """The five components with their default hyperparameters, keyed by name.

    Args:
        random_state: Seed for the SVD component.
        rules: Optional precomputed rules for the rules component (None mines them at fit time).
        mining: Settings of the rules component's fit-time mining (see :class:`RulesRecommender`).

    Returns:
        Unfitted components keyed by ``COMPONENT_NAMES``.
    """
    return {
        "popularity": PopularityRecommender(),
        "buy_again": BuyAgainRecommender(),
        "item_knn": ItemKNNRecommender(),
        "svd": SVDRecommender(random_state=random_state),
        "rules": RulesRecommender(rules=rules, mining=mining),
    }
