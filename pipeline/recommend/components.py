"""Product recommenders for known customers and their honest temporal evaluation.

What belongs here: the recommender components (popularity, buy-again, item-kNN, SVD, association rules), the
hybrid that blends them, the validation-based tuning of the blend weights, ``recommend_all`` /
``recommend_all_settings`` (the table served to the business), ``evaluate`` (temporal holdout metrics) and
``recommend_and_evaluate`` (both tables from shared fits). The matrix factorisation itself lives in
``pipeline.svd``, table schemas in ``pipeline.schemas_recommend``, figures in ``pipeline.plots_recommend``. No
dagster imports.

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
window. Inside every such fit the rules component mines the fitted lines with
:func:`pipeline.baskets.basket_analysis.mine_rules` and the served table's :class:`pipeline.baskets.basket_analysis.RuleMining` settings, so
the evaluation and the tuning measure the rules that are served. Products first sold in the test window stay
in the relevant sets although no model can recommend them. Component defaults (popularity window, item-kNN
weighting, score normalisation) were chosen the same way, on the 2010-06-10 split of the 2009-2010 training
period.

Cost: sales lines are coded as integers once (:class:`_Lines`) and every training window is a row mask of
them. The served table tunes its weights on the last ``validation_months``; with the default
``validation_months == test_months`` that is exactly the evaluation's test split, so
:func:`recommend_and_evaluate` fits the components three times (inner validation, test, everything) where
calling ``evaluate`` and ``recommend_all_settings`` separately fits them four times; those three fits, and
the blocks of customers served, are independent and can run on threads (``n_jobs``). Every speed-up keeps
the results bit for bit: rows whose k-th place is tied are still cut by ``np.argpartition`` on the same row,
the others by a cheaper value partition (see :func:`_top_k`); sums are taken in the same order as before.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property
from typing import ClassVar, Literal, NamedTuple, Self, TypeVar

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.base import BaseEstimator, clone
from sklearn.preprocessing import normalize
from threadpoolctl import threadpool_limits

from pipeline import svd
from pipeline.baskets import basket_analysis

_LOG = logging.getLogger(__name__)
_T = TypeVar("_T")


class ValidationSplitError(ValueError):
    """The data is too short for a temporal split: no customer buys on both sides of the cutoff."""


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
# Customers served per pass of the hybrid: bounds the candidate pools' memory at any data size. A multiple of
# _BATCH_ROWS, so the components score the same row blocks as a single pass would.
_SERVE_BATCH = 4 * _BATCH_ROWS
_EXPLAIN_BATCH = 16 * _BATCH_ROWS
_FALLBACK_EPSILON = 1e-6
_NS_PER_SECOND = 1_000_000_000

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
    columns = {name: lines[name] for name in needed}
    for name in ("stock_code", "invoice"):
        # Cleaned transactions already hold strings: checking is one pass, converting copies every value.
        if pd.api.types.infer_dtype(columns[name], skipna=False) != "string":
            columns[name] = columns[name].astype(str)
    columns["customer_id"] = columns["customer_id"].astype("Int64", copy=False)
    valid = is_product_code(columns["stock_code"])
    if not valid.any():
        raise ValueError("no sales line of a real product to learn from")
    if not valid.all():
        columns = {name: column[valid] for name, column in columns.items()}
    # A new frame over the (possibly shared) columns; nothing here or downstream writes into it.
    return pd.DataFrame(
        {
            name: column.to_numpy() if name != "customer_id" else column.array
            for name, column in columns.items()
        }
    )


def _as_customer_ids(customer_ids: Iterable[object]) -> np.ndarray:
    array_like = (pd.Series, pd.Index, np.ndarray, pd.api.extensions.ExtensionArray)
    ids = pd.array(
        customer_ids if isinstance(customer_ids, array_like) else list(customer_ids), dtype="Int64"
    )
    if ids.isna().any():
        raise ValueError("customer_ids must not contain missing values")
    return np.asarray(ids, dtype=np.int64)


def _distinct(values: np.ndarray) -> np.ndarray:
    """Sorted distinct values (sort-based: ``np.unique`` without ``return_inverse`` is much slower on 2.4)."""
    ordered = np.sort(values)
    return ordered[np.append(True, ordered[1:] != ordered[:-1])] if len(ordered) else ordered


def _run_starts(sorted_keys: np.ndarray) -> np.ndarray:
    """Start of each run of equal values in a sorted array."""
    if len(sorted_keys) == 0:
        return np.array([], dtype=np.int64)
    return np.flatnonzero(np.append(True, sorted_keys[1:] != sorted_keys[:-1]))


def _member(sorted_values: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Whether each query is in ``sorted_values`` (sorted ascending), by binary search."""
    if len(sorted_values) == 0:
        return np.zeros(len(queries), dtype=bool)
    at = np.minimum(np.searchsorted(sorted_values, queries), len(sorted_values) - 1)
    return sorted_values[at] == queries


def _lex_order(columns: Sequence[tuple[np.ndarray, int]]) -> np.ndarray:
    """Order sorting rows by several non-negative integer columns, most significant first.

    Args:
        columns: ``(values, bound)`` pairs, each value below its bound.

    Returns:
        A permutation; equal rows keep their input order.
    """
    span = 1
    for _, bound in columns:
        span *= max(int(bound), 1)
    if span >= 2**62:
        return np.lexsort([values for values, _ in reversed(columns)])
    key = np.zeros(len(columns[0][0]), dtype=np.int64)
    for values, bound in columns:
        key = key * int(bound) + values
    return np.argsort(key, kind="stable")


def _runs(keys: np.ndarray) -> tuple[np.ndarray | slice, np.ndarray]:
    """An index sorting ``keys`` (``slice(None)`` if already sorted, as in coded lines) and the run starts."""
    order: np.ndarray | slice = slice(None)
    if len(keys) > 1 and (keys[1:] < keys[:-1]).any():
        order = np.argsort(keys, kind="stable")
    return order, _run_starts(keys[order])


def _group_max(groups: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Per element, the maximum of ``values`` over its group; ``groups`` must come in runs of equal ids."""
    starts = _run_starts(groups)
    if len(starts) == 0:
        return values.copy()
    sizes = np.diff(np.append(starts, len(groups)))
    return np.repeat(np.maximum.reduceat(values, starts), sizes)


@dataclass(frozen=True)
class _Lines:
    """Product sales lines coded as integers once, so that a training window is a row mask, not a new frame.

    Invoice and stock codes are numbered in the sorted order of their strings and customers in increasing id,
    so sorting by code orders rows exactly like a pandas sort or groupby on the original columns would. The
    lines are stored sorted by customer (guests first), invoice and product, and a window keeps that order,
    so the per-basket groupings of every fit need no sort of their own.

    Attributes:
        invoice: Invoice code of each line.
        product: Code of each line's product in ``stock_codes``.
        customer: Code of each line's customer in ``customer_ids``, -1 for guest lines.
        date: ``invoice_date`` as int64 nanoseconds.
        description: Code of each line's stripped description in ``texts``; -1 when missing or blank.
        position: Row of each line in the coded frame (its order breaks ties between equally recent lines).
        stock_codes: Sorted stock codes of the coded data.
        customer_ids: Sorted customer ids of the coded data.
        texts: Distinct stripped descriptions.
        n_invoices: Number of invoice codes.
    """

    invoice: np.ndarray
    product: np.ndarray
    customer: np.ndarray
    date: np.ndarray
    description: np.ndarray
    position: np.ndarray
    stock_codes: np.ndarray
    customer_ids: np.ndarray
    texts: np.ndarray
    n_invoices: int

    @classmethod
    def from_frame(cls, kept: pd.DataFrame) -> _Lines:
        """Code the output of :func:`_product_lines`."""
        invoice, invoices = pd.factorize(kept["invoice"], sort=True)
        product, stock_codes = pd.factorize(kept["stock_code"], sort=True)
        customer, customer_ids = pd.factorize(kept["customer_id"], sort=True, use_na_sentinel=True)
        texts, distinct_texts = pd.factorize(kept["description"])
        stripped = pd.Series(distinct_texts, dtype=object).astype(str).str.strip().to_numpy(dtype=object)
        # Missing descriptions have code -1, which indexes the appended False.
        usable = np.append(stripped != "", False)[texts]
        order = _lex_order(
            [
                (customer.astype(np.int64) + 1, len(customer_ids) + 1),
                (invoice, len(invoices)),
                (product, len(stock_codes)),
            ]
        )
        return cls(
            invoice=invoice[order].astype(np.int32),
            product=product[order].astype(np.int32),
            customer=customer[order].astype(np.int32),
            date=kept["invoice_date"].to_numpy(dtype="datetime64[ns]").view(np.int64)[order],
            description=np.where(usable, texts, -1)[order].astype(np.int32),
            position=order.astype(np.int64),
            stock_codes=np.asarray(stock_codes, dtype=object),
            customer_ids=np.asarray(customer_ids, dtype=np.int64),
            texts=stripped,
            n_invoices=len(invoices),
        )

    def window(self, mask: np.ndarray) -> _Lines:
        """The lines where ``mask`` holds (codes and code tables unchanged)."""
        return dataclasses.replace(
            self,
            invoice=self.invoice[mask],
            product=self.product[mask],
            customer=self.customer[mask],
            date=self.date[mask],
            description=self.description[mask],
            position=self.position[mask],
        )

    def span(self) -> tuple[pd.Timestamp, pd.Timestamp]:
        """First and last invoice dates."""
        return pd.Timestamp(self.date.min()), pd.Timestamp(self.date.max())


def _split_error(lines: _Lines, cutoff: pd.Timestamp, months: int, what: str) -> ValidationSplitError:
    """Explain which data span a temporal split needs and which the data has."""
    first, last = lines.span()
    return ValidationSplitError(
        f"no customer is active on both sides of the {what} cutoff {cutoff:%Y-%m-%d}: the split needs "
        f"registered customers buying both before it and in the {months} month(s) after it, so at least "
        f"{months} month(s) of data plus earlier history; the data spans {first:%Y-%m-%d} to {last:%Y-%m-%d} "
        f"({(last - first).days} days)"
    )


@dataclass(frozen=True)
class _History:
    """What every component shares: the catalogue, the customers, who bought what, and the coded lines.

    Attributes:
        customer_ids: Sorted ids of the customers with a purchase (row labels).
        stock_codes: Sorted stock codes sold in the period (column labels).
        counts: Distinct invoices per customer and product (CSR).
        end_date: Last invoice date.
        product_index: ``stock_codes`` as an index, for lookups.
        lines: The fitted lines.
        rows: Customer row of each line, -1 for guest lines.
        cols: Catalogue column of each line.
        basket_rows, basket_cols, basket_first: One entry per distinct (customer, invoice, product), sorted by
            customer, invoice and product: its row, column and earliest line date (int64 ns).
    """

    customer_ids: np.ndarray
    stock_codes: np.ndarray
    counts: sp.csr_matrix
    end_date: pd.Timestamp
    product_index: pd.Index
    lines: _Lines
    rows: np.ndarray
    cols: np.ndarray
    basket_rows: np.ndarray
    basket_cols: np.ndarray
    basket_first: np.ndarray

    @classmethod
    def from_lines(cls, lines: _Lines) -> _History:
        sold = np.bincount(lines.product, minlength=len(lines.stock_codes)) > 0
        cols = (np.cumsum(sold) - 1)[lines.product]
        stock_codes = lines.stock_codes[sold]
        known = lines.customer >= 0
        buyers = np.bincount(lines.customer[known], minlength=len(lines.customer_ids)) > 0
        rows = np.full(len(lines.customer), -1, dtype=np.int64)
        rows[known] = (np.cumsum(buyers) - 1)[lines.customer[known]]
        customer_ids = lines.customer_ids[buyers]
        n_products = len(stock_codes)
        # Distinct (customer, invoice, product) in the order of a groupby on those columns: codes sort like
        # the strings they stand for.
        key = (rows[known] * lines.n_invoices + lines.invoice[known]) * n_products + cols[known]
        order, starts = _runs(key)
        basket_key = key[order][starts]
        basket_first = (
            np.minimum.reduceat(lines.date[known][order], starts) if len(starts) else np.array([], np.int64)
        )
        basket_rows = basket_key // (lines.n_invoices * n_products)
        basket_cols = basket_key % n_products
        shape = (len(customer_ids), n_products)
        # One entry per distinct (customer, invoice, product); the CSR conversion sums them into invoice
        # counts.
        counts = sp.csr_matrix(
            (np.ones(len(basket_key)), (basket_rows, basket_cols)), shape=shape, dtype=np.float64
        )
        counts.sum_duplicates()
        return cls(
            customer_ids=customer_ids,
            stock_codes=stock_codes,
            counts=counts,
            end_date=pd.Timestamp(int(lines.date.max())),
            product_index=pd.Index(stock_codes, dtype=object),
            lines=lines,
            rows=rows,
            cols=cols,
            basket_rows=basket_rows,
            basket_cols=basket_cols,
            basket_first=basket_first,
        )

    @cached_property
    def descriptions(self) -> np.ndarray:
        """Latest non-empty description of each product (see ``svd.product_descriptions``), else its code."""
        described = np.flatnonzero(self.lines.description >= 0)
        latest = described[
            svd.latest_positions(
                self.cols[described], self.lines.date[described], ranks=self.lines.position[described]
            )
        ]
        descriptions = self.stock_codes.copy()
        descriptions[self.cols[latest]] = self.lines.texts[self.lines.description[latest]]
        return descriptions

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
        weighting: Matrix weighting, see ``pipeline.svd.customer_product_matrix`` (default ``"tfidf"``).
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

    def _fit_history(self, history: _History) -> Self:
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
            :func:`pipeline.baskets.basket_analysis.mine_rules` and ``mining``, then prepared the same way: what a temporal
            evaluation needs to score the served rules without leakage.
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


class _Workers:
    """Run independent pieces of work on ``n_jobs`` threads, or in the calling thread when ``n_jobs`` is 1.

    The heavy kernels (sparse products, partitions, BLAS) release the GIL, so threads use both cores of a
    small machine without copying the data into other processes. Results are collected in submission order,
    and every piece is deterministic, so nothing depends on ``n_jobs`` or on scheduling. Use as a context
    manager.
    """

    def __init__(self, n_jobs: int | None) -> None:
        self.n_jobs = 1 if n_jobs is None else n_jobs
        if self.n_jobs < 1:
            raise ValueError(f"n_jobs must be >= 1, got {n_jobs}")
        self._executor: ThreadPoolExecutor | None = None

    def __enter__(self) -> _Workers:
        if self.n_jobs > 1:
            self._executor = ThreadPoolExecutor(max_workers=self.n_jobs)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    def submit(self, function: Callable[..., _T], /, *args: object, **kwargs: object) -> Future[_T]:
        """Start ``function(*args, **kwargs)``; its result (or exception) comes from ``.result()``."""
        if self._executor is not None:
            return self._executor.submit(function, *args, **kwargs)
        future: Future[_T] = Future()
        try:
            future.set_result(function(*args, **kwargs))
        except Exception as err:  # re-raised by .result(), as from a thread pool
            future.set_exception(err)
        return future

    def map(self, function: Callable[[int], _T], items: Iterable[int]) -> list[_T]:
        """``[function(item) for item in items]``, in order."""
        if self._executor is None:
            return [function(item) for item in items]
        return list(self._executor.map(function, items))


@dataclass(frozen=True)
class _Pool:
    """All components' candidates for a list of customers, padded to a dense ``(customers, slots)`` layout.

    Slot ``j`` of customer ``i`` holds one candidate product (``-1`` = empty, slots ordered by product
    column), and ``norms[m, i, j]`` is component ``m``'s normalised score for it (0 when ``m`` did not propose
    it). ``base`` holds the popularity tie-breaker (``_FALLBACK_EPSILON`` x its normalised rank) and ``-inf``
    on empty slots. Blending any weight vector is then a dense weighted sum and a row-wise top-k, cheap enough
    to try many weight vectors. A customer's row depends only on its own candidates, apart from the padding
    to ``width``.
    """

    products: np.ndarray
    norms: np.ndarray
    base: np.ndarray

    @property
    def width(self) -> int:
        """Number of slots per customer."""
        return self.products.shape[1]

    def score(self, weights: np.ndarray) -> np.ndarray:
        """Blended float32 score of every slot: the weighted norms summed component by component, plus base.

        Written out term by term, this is bit for bit what ``np.tensordot(weights, norms, axes=1) + base``
        returns, for any number of customers.
        """
        vector = weights.astype(np.float32)
        total = vector[0] * self.norms[0]
        for index in range(1, len(vector)):
            total += vector[index] * self.norms[index]
        return total + self.base

    def blend(self, weights: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Top-``k`` slots per customer, best first: (customer position, slot, blended score, rank).

        Equal scores go to the lower slot, i.e. the lower product column (see :func:`_top_k` for ties at the
        k-th place).
        """
        return _top_k(self.score(weights), k, positive_only=False)

    def sources(self, position: np.ndarray, slot: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """Component contributing most to each chosen slot (-1 when only the fallback put it there)."""
        contribution = weights[:, None] * self.norms[:, position, slot]
        if contribution.shape[1] == 0:
            return np.array([], dtype=np.int64)
        return np.where(contribution.max(axis=0) > 0, contribution.argmax(axis=0), -1)

    def take(self, rows: np.ndarray, *, width: int | None = None) -> _Pool:
        """The pool of some customers, padded with empty slots to ``width`` (default: this pool's)."""
        width = self.width if width is None else width
        pad = width - self.width
        return _Pool(
            np.pad(self.products[rows], ((0, 0), (0, pad)), constant_values=-1),
            np.pad(self.norms[:, rows], ((0, 0), (0, 0), (0, pad))),
            np.pad(self.base[rows], ((0, 0), (0, pad)), constant_values=-np.inf),
        )

    @staticmethod
    def stack(pools: Sequence[_Pool], *, width: int) -> _Pool:
        """Customers of several pools in one, every row padded to ``width``."""
        padded = [pool.take(np.arange(pool.products.shape[0]), width=width) for pool in pools]
        return _Pool(
            np.concatenate([pool.products for pool in padded]),
            np.concatenate([pool.norms for pool in padded], axis=1),
            np.concatenate([pool.base for pool in padded]),
        )


class _Served(NamedTuple):
    """Hybrid picks, by customer position then rank; ``source`` indexes the components (-1: fallback)."""

    position: np.ndarray
    rank: np.ndarray
    product: np.ndarray
    score: np.ndarray
    source: np.ndarray


def _concat_served(parts: Sequence[_Served]) -> _Served:
    if not parts:
        empty = np.array([], dtype=np.int64)
        return _Served(empty, empty, empty, np.array([], dtype=np.float32), empty)
    joined = _Served(*(np.concatenate(arrays) for arrays in zip(*parts, strict=True)))
    order = np.lexsort((joined.rank, joined.position))
    return _Served(*(array[order] for array in joined))


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

    def _fit_history(self, history: _History) -> Self:
        if self.normalization not in ("rank", "max"):
            raise ValueError(f"normalization must be 'rank' or 'max', got {self.normalization!r}")
        chosen = (
            default_components(random_state=self.random_state) if self.components is None else self.components
        )
        components = {name: clone(component) for name, component in chosen.items()}
        components.setdefault("popularity", PopularityRecommender())
        self.components_ = {name: c._fit_history(history) for name, c in components.items()}
        self.history_ = history
        return self

    def _weight_vector(self, weights: Mapping[str, float] | None, *, exclude_purchased: bool) -> np.ndarray:
        if weights is None:
            weights = DEFAULT_WEIGHTS["new_only" if exclude_purchased else "any"]
        unknown = set(weights) - set(self.components_)
        if unknown:
            raise ValueError(f"weights for unknown components {sorted(unknown)}")
        return np.array([float(weights.get(name, 0.0)) for name in self.components_], dtype=np.float64)

    def _component_candidate_sets(
        self, customer_ids: np.ndarray, *, settings: Sequence[bool], n: int
    ) -> list[dict[str, _Candidates]]:
        """Every component's candidates for each ``exclude_purchased`` flag, scoring each block once."""
        found = {
            name: component._candidate_sets(customer_ids, n=n, settings=settings)
            for name, component in self.components_.items()
        }
        return [{name: sets[index] for name, sets in found.items()} for index in range(len(settings))]

    def _pool(self, candidates: Mapping[str, _Candidates], n_customers: int, *, n: int) -> _Pool:
        n_products = len(self.history_.stock_codes)
        keys, components, norms = [], [], []
        for index, name in enumerate(self.components_):
            found = candidates[name]
            if self.normalization == "rank":
                norm = 1.0 - (found.rank - 1) / n
            else:
                norm = found.score / _group_max(found.position, found.score)
            keys.append(found.position.astype(np.int64) * n_products + found.product)
            components.append(np.full(len(found.rank), index, dtype=np.int64))
            norms.append(norm)
        unique, inverse = np.unique(np.concatenate(keys), return_inverse=True)
        position, product = unique // n_products, unique % n_products
        starts = _run_starts(position)
        slot = np.arange(len(unique)) - np.repeat(starts, np.diff(np.append(starts, len(unique))))
        width = int(slot.max()) + 1 if len(slot) else 1
        products = np.full((n_customers, width), -1, dtype=np.int64)
        cell = position * width + slot
        products.ravel()[cell] = product
        component = np.concatenate(components)
        pooled = np.zeros((len(self.components_), n_customers * width), dtype=np.float32)
        pooled[component, cell[inverse]] = np.concatenate(norms)
        # Popularity always stays in the pool, as a tie-breaker and to fill short lists, whatever its weight.
        popularity = list(self.components_).index("popularity")
        base = np.zeros(n_customers * width, dtype=np.float32)
        base[cell[inverse][component == popularity]] = _FALLBACK_EPSILON * (
            1.0 - (candidates["popularity"].rank - 1) / n
        )
        base = base.reshape(n_customers, width)
        base[products < 0] = -np.inf
        pooled = pooled.reshape(len(self.components_), n_customers, width)
        return _Pool(products, pooled, base)

    def _serve(
        self,
        customer_ids: np.ndarray,
        settings: Sequence[tuple[bool, Mapping[str, float] | None]],
        *,
        k: int,
        workers: _Workers | None = None,
    ) -> list[_Served]:
        """Blend the top ``k`` for every customer in each ``(exclude_purchased, weights)`` setting.

        Customers are served in blocks of ``_SERVE_BATCH`` (on ``workers`` when given), so the pools stay
        small at any data size. A customer whose k-th place is tied is set aside and resolved at the end on
        its row padded to the width of the pool of *all* customers, which is what ``np.argpartition`` saw
        when everybody was pooled at once.
        """
        n = max(self.n_candidates, k)
        flags = [exclude for exclude, _ in settings]
        vectors = [self._weight_vector(weights, exclude_purchased=exclude) for exclude, weights in settings]

        def serve_block(start: int) -> list[tuple[_Served, np.ndarray, _Pool | None, int]]:
            batch = customer_ids[start : start + _SERVE_BATCH]
            blocks = []
            for index, candidates in enumerate(self._component_candidate_sets(batch, settings=flags, n=n)):
                pool = self._pool(candidates, len(batch), n=n)
                position, slot, score, rank, tied = _top_k(
                    pool.score(vectors[index]), k, positive_only=False, defer_ties=True
                )
                picks = self._picks(pool, vectors[index], start + position, position, slot, score, rank)
                blocks.append((picks, start + tied, pool.take(tied) if len(tied) else None, pool.width))
            return blocks

        starts = range(0, len(customer_ids), _SERVE_BATCH)
        results = (workers or _Workers(None)).map(serve_block, starts)
        served = []
        for index, vector in enumerate(vectors):
            picks = [blocks[index][0] for blocks in results]
            deferred = [blocks[index] for blocks in results if blocks[index][2] is not None]
            if deferred:
                offsets = np.concatenate([positions for _, positions, _, _ in deferred])
                width = max([blocks[index][3] for blocks in results], default=1)
                pool = _Pool.stack([part for _, _, part, _ in deferred], width=width)
                position, slot, score, rank = pool.blend(vector, k)
                picks.append(self._picks(pool, vector, offsets[position], position, slot, score, rank))
            served.append(_concat_served(picks))
        return served

    @staticmethod
    def _picks(
        pool: _Pool,
        weights: np.ndarray,
        customer: np.ndarray,
        position: np.ndarray,
        slot: np.ndarray,
        score: np.ndarray,
        rank: np.ndarray,
    ) -> _Served:
        return _Served(
            customer, rank, pool.products[position, slot], score, pool.sources(position, slot, weights)
        )

    def _frame(self, customer_ids: np.ndarray, served: _Served) -> pd.DataFrame:
        names = np.array(list(self.components_), dtype=object)
        return pd.DataFrame(
            {
                "customer_id": pd.array(customer_ids[served.position], dtype="Int64"),
                "rank": served.rank.astype(np.int64),
                "stock_code": self.history_.stock_codes[served.product],
                "score": served.score.astype(np.float64),
                "source": np.where(
                    served.source >= 0, names[np.maximum(served.source, 0)], "popularity"
                ).astype(object),
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
        (served,) = self._serve(ids, [(exclude_purchased, self.weights)], k=k)
        return self._frame(ids, served)

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
                "customer_id": pd.array(coded.customer_ids[pairs // n_products], dtype="Int64"),
                "stock_code": coded.stock_codes[pairs % n_products],
            }
        )
        for setting, pairs in _relevant_pairs(coded, cutoff, end).items()
    }
    return train, test, relevant


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


def _tune_on_folds(
    folds: Sequence[_Split],
    names: list[str],
    *,
    k: int,
    grid: tuple[float, ...],
    n_rounds: int,
    fixed_zero: set[str],
) -> dict[str, float]:
    """Coordinate ascent on the blend weights maximising mean nDCG@k + mean hit rate@k, averaged on folds."""
    # A customer none of whose pooled products is relevant scores 0 whatever the weights: blend the others
    # only. Their rows keep the full width, so ties at the k-th place resolve exactly as before.
    prepared = []
    for split in folds:
        active = np.flatnonzero(split.relevance.any(axis=1))
        prepared.append((split.pool.take(active), split.relevance[active], active, split.n_relevant))

    seen: dict[tuple[float, ...], float] = {}

    def objective(weights: np.ndarray) -> float:
        # A sweep without improvement tries vectors an earlier sweep already scored: score each vector once.
        key = tuple(weights.tolist())
        if key not in seen:
            seen[key] = _blend_objective(prepared, weights, k=k)
        return seen[key]

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


def _blend_objective(
    prepared: Sequence[tuple[_Pool, np.ndarray, np.ndarray, np.ndarray]], weights: np.ndarray, *, k: int
) -> float:
    """Mean nDCG@k + mean hit rate@k of a blend, averaged over folds (pool, relevance, rows, sizes)."""
    total = 0.0
    for pool, relevance, active, n_relevant in prepared:
        position, slot, _, rank = pool.blend(weights, k)
        hits = _hits_matrix(active[position], rank, relevance[position, slot], len(n_relevant), k)
        metrics = _metrics_from_hits(hits, n_relevant)
        total += float(metrics["ndcg_at_k"].mean() + metrics["hit_rate_at_k"].mean())
    return total / len(prepared)


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
    mining: basket_analysis.RuleMining | None = None,
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
        mining: Rule mining settings of the default rules component (see :class:`RulesRecommender`).

    Returns:
        ``{"any": {...}, "new_only": {...}}`` weights per component name.

    Raises:
        ValidationSplitError: If the validation split leaves no customer to validate on.
    """
    _check_k(k)
    if n_folds < 1:
        raise ValueError(f"n_folds must be >= 1, got {n_folds}")
    options = _options(
        components=components,
        normalization=normalization,
        n_candidates=n_candidates,
        random_state=random_state,
        mining=mining,
    )
    return _tune(
        _Lines.from_frame(_product_lines(lines)),
        validation_months=validation_months,
        k=k,
        n_folds=n_folds,
        grid=grid,
        n_rounds=n_rounds,
        options=options,
    )


def _tune(
    lines: _Lines,
    *,
    validation_months: int,
    k: int,
    n_folds: int,
    grid: tuple[float, ...],
    n_rounds: int,
    options: Mapping[str, object],
    first: _Holdout | None = None,
) -> dict[str, dict[str, float]]:
    """:func:`tune_hybrid_weights` on coded lines; ``first`` is the already fitted first fold, if known."""
    end = _default_cutoff(lines, months=0)
    folds: dict[str, list[_Split]] = {setting: [] for setting in SETTINGS}
    names: list[str] = []
    for fold in range(n_folds):
        cutoff = end - pd.DateOffset(months=validation_months * (fold + 1))
        if fold == 0 and first is not None:
            holdout = first
        else:
            # The first fold holds every line (all are before ``end``); later ones stop where the previous
            # fold's window starts.
            fold_end = end - pd.DateOffset(months=validation_months * fold)
            fold_lines = lines if fold == 0 else lines.window(lines.date < fold_end.value)
            holdout = _holdout(fold_lines, cutoff, validation_months, options=options, k=k)
        if holdout is None:
            raise _split_error(lines, cutoff, validation_months, "validation")
        names = list(holdout.hybrid.components_)
        for setting in SETTINGS:
            folds[setting].append(holdout.splits[setting])
    return {
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


def _default_cutoff(lines: _Lines, *, months: int) -> pd.Timestamp:
    """``months`` before the end of the last invoice day, so the window holds exactly ``months`` of data."""
    end = lines.span()[1].normalize() + pd.Timedelta(days=1)
    return end - pd.DateOffset(months=months)


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
        components: Unfitted components (default :func:`default_components`); evaluated alone and blended.
        normalization: Hybrid score normalisation (see :class:`HybridRecommender`).
        n_candidates: Candidates per component and customer in the hybrid.
        n_folds: Validation windows used to tune the hybrid (see :func:`tune_hybrid_weights`).
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


def _serving_weights(
    lines: _Lines,
    *,
    validation_months: int,
    k: int,
    options: Mapping[str, object],
    first: _Holdout | None = None,
) -> Mapping[str, Mapping[str, float]]:
    """Weights tuned on the last ``validation_months`` (hybrids built from ``options``), else the defaults."""
    try:
        return _tune(
            lines,
            validation_months=validation_months,
            k=k,
            n_folds=1,
            grid=WEIGHT_GRID,
            n_rounds=3,
            options=options,
            first=first,
        )
    except ValidationSplitError as err:
        # Too little history to tune on (e.g. a one-week sample): recommending with the documented default
        # blend beats recommending nothing; the warning says why the weights are not tuned.
        _LOG.warning("blend weights not tuned, using DEFAULT_WEIGHTS: %s", err)
        return DEFAULT_WEIGHTS


def _check_settings(settings: Iterable[str]) -> list[str]:
    settings = list(settings)
    unknown = [name for name in settings if name not in SETTINGS]
    if unknown or not settings:
        raise ValueError(f"settings must be a non-empty subset of {list(SETTINGS)}, got {settings}")
    return settings


def _serving_fit(
    lines: _Lines,
    rules: pd.DataFrame | None,
    *,
    random_state: int | None,
    mining: basket_analysis.RuleMining | None = None,
) -> HybridRecommender:
    """Every component fitted on all ``lines``: the rules one on ``rules``, else mining with ``mining``."""
    return HybridRecommender(
        components=default_components(random_state=random_state, rules=rules, mining=mining),
        random_state=random_state,
    )._fit_history(_History.from_lines(lines))


def _serve_table(
    hybrid: HybridRecommender,
    weights: Mapping[str, Mapping[str, float]],
    *,
    settings: list[str],
    k: int,
    workers: _Workers | None = None,
) -> pd.DataFrame:
    """Serve every customer of the fitted ``hybrid`` in each setting, with descriptions and reasons."""
    history = hybrid.history_
    customers = history.customer_ids
    served = hybrid._serve(
        customers, [(SETTINGS[name], dict(weights[name])) for name in settings], k=k, workers=workers
    )
    tables = []
    for setting, picks in zip(settings, served, strict=True):
        recs = hybrid._frame(customers, picks)
        recs["description"] = history.descriptions[picks.product]
        recs["setting"] = setting
        tables.append(recs)
    table = pd.concat(tables, ignore_index=True)
    # Reasons depend on each row alone: explain both settings in one pass per source.
    table["reason"] = hybrid.explain(table)
    columns = ["customer_id", "rank", "stock_code", "description", "score", "source", "reason", "setting"]
    order = table["setting"].map({name: i for i, name in enumerate(settings)})
    return (
        table[columns]
        .assign(_order=order)
        .sort_values(["_order", "customer_id", "rank"])
        .drop(columns="_order")
        .reset_index(drop=True)
    )


def recommend_all_settings(
    cleaned: pd.DataFrame,
    rules: pd.DataFrame | None = None,
    *,
    k: int = 10,
    settings: Iterable[str] = tuple(SETTINGS),
    weights: Mapping[str, Mapping[str, float]] | None = None,
    validation_months: int = 3,
    random_state: int | None = 0,
    mining: basket_analysis.RuleMining | None = None,
) -> pd.DataFrame:
    """Top-``k`` hybrid recommendations with reasons for every customer with history, in several settings.

    Blend weights are tuned on the last ``validation_months`` of ``cleaned`` (components fitted on the lines
    before that, the rules component mining with ``mining`` on those lines: the external ``rules`` are never
    used for tuning since they have seen the validation baskets), then every component is refitted once on all
    of ``cleaned``, the rules component on ``rules`` when given, and each setting is served from that single
    fit. Pass the ``mining`` settings ``rules`` were mined with, so that the weights are tuned for them.

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
        mining: Rule mining settings (see :class:`pipeline.baskets.basket_analysis.RuleMining`) of the tuning fits, and of the
            served fit when ``rules`` is None.

    Returns:
        ``customer_id``, ``rank`` (1..k), ``stock_code``, ``description``, ``score``, ``source``, ``reason``,
        ``setting``, sorted by setting, customer and rank.

    Raises:
        ValueError: If a setting name is unknown or ``weights`` lacks one.
    """
    _check_k(k)
    settings = _check_settings(settings)
    lines = _Lines.from_frame(_product_lines(cleaned))
    if weights is None:
        weights = _serving_weights(
            lines,
            validation_months=validation_months,
            k=k,
            options=_options(random_state=random_state, mining=mining),
        )
    missing = [name for name in settings if name not in weights]
    if missing:
        raise ValueError(f"no blend weights for settings {missing}")
    return _serve_table(
        _serving_fit(lines, rules, random_state=random_state, mining=mining), weights, settings=settings, k=k
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
    mining: basket_analysis.RuleMining | None = None,
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
        mining: See :func:`recommend_all_settings`.

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
        mining=mining,
    )


class RecommenderTables(NamedTuple):
    """Output of :func:`recommend_and_evaluate`.

    Attributes:
        recommendations: As returned by :func:`recommend_all_settings` (both settings).
        evaluation: As returned by :func:`evaluate`; None when the data is too short to evaluate.
        evaluation_error: Why there is no evaluation (the error :func:`evaluate` raises), else None.
        served_rules: The rules the served rules component uses (prepared from ``rules``, or mined).
        evaluation_rules: The rules the evaluated rules component used: mined with the same settings on the
            lines before the test cutoff (None when there is no test split).
    """

    recommendations: pd.DataFrame
    evaluation: pd.DataFrame | None
    evaluation_error: ValidationSplitError | None
    served_rules: pd.DataFrame
    evaluation_rules: pd.DataFrame | None


def recommend_and_evaluate(
    cleaned: pd.DataFrame,
    rules: pd.DataFrame | None = None,
    *,
    k: int = 10,
    test_months: int = 3,
    validation_months: int = 3,
    random_state: int | None = 0,
    n_jobs: int | None = None,
    mining: basket_analysis.RuleMining | None = None,
) -> RecommenderTables:
    """Serve every customer and evaluate the recommenders, sharing the fits the two have in common.

    The result equals ``recommend_all_settings(cleaned, rules, k=k, validation_months=validation_months,
    random_state=random_state, mining=mining)`` and ``evaluate(cleaned, test_months=test_months, k=k,
    validation_months=validation_months, random_state=random_state, mining=mining)``. ``rules`` should be
    the all-countries rules mined from ``cleaned`` with ``mining`` (the association-rules table): every
    holdout's rules component then mines with those settings on its pre-cutoff lines, so the evaluation and
    the blend tuning measure the rules that are served. When ``validation_months ==
    test_months`` (the default) the served table's validation split *is* the evaluation's test split, so the
    components fitted before the test cutoff, and their candidate pools, are computed once and used both to
    measure the tuned hybrid and to tune the served weights: three fits instead of four. The three fits
    (before the inner validation cutoff, before the test cutoff, on everything) are independent, and so are
    the blocks of customers served; with ``n_jobs`` > 1 they run on that many threads.

    Args:
        cleaned: Cleaned sales lines.
        rules: Optional association rules for the served table (see :func:`recommend_all_settings`).
        k: Products per customer, and the metrics' cut-off rank.
        test_months: Length of the evaluation's test window, in months.
        validation_months: Length of the validation windows used for tuning, in months.
        random_state: Seed for the SVD component.
        n_jobs: Threads for the independent fits and serving blocks (None: 1). The results do not depend on
            it: each piece is deterministic and BLAS runs single-threaded inside.
        mining: Settings of the rules mined inside the holdouts (default ``basket_analysis.RuleMining()``).

    Returns:
        The recommendations table, and the evaluation table or the reason it could not be computed (the
        recommendations then use ``DEFAULT_WEIGHTS`` only if even their validation split is empty).
    """
    _check_k(k)
    lines = _Lines.from_frame(_product_lines(cleaned))
    options = _options(random_state=random_state, mining=mining)
    cutoff = _default_cutoff(lines, months=test_months)
    inner = {"validation_months": validation_months, "k": k, "n_folds": 1, "grid": WEIGHT_GRID, "n_rounds": 3}
    # One BLAS thread everywhere: the pieces run side by side instead, and results never depend on the
    # machine's core count.
    with threadpool_limits(limits=1, user_api="blas"), _Workers(n_jobs) as workers:
        test_fit = workers.submit(_holdout, lines, cutoff, test_months, options=options, k=k)
        inner_weights = workers.submit(
            _tune, lines.window(lines.date < cutoff.value), options=options, **inner
        )
        serving_fit = workers.submit(_serving_fit, lines, rules, random_state=random_state, mining=mining)
        holdout = test_fit.result()
        # Tune the served weights (which need only the test fit) while the other fits may still run.
        weights = _serving_weights(
            lines,
            validation_months=validation_months,
            k=k,
            options=options,
            first=holdout if validation_months == test_months else None,
        )
        evaluation, error = None, None
        try:
            if holdout is None:
                raise _split_error(lines, cutoff, test_months, "evaluation")
            evaluation = _metrics_table(
                holdout, inner_weights.result(), k=k, cutoff=cutoff, test_months=test_months
            )
        except ValidationSplitError as err:
            error = err
        evaluation_rules = None if holdout is None else holdout.hybrid.components_["rules"].rules_
        # The test fit is done with: free it before the serving pools are built.
        holdout = test_fit = None
        served = serving_fit.result()
        table = _serve_table(served, weights, settings=list(SETTINGS), k=k, workers=workers)
    return RecommenderTables(table, evaluation, error, served.components_["rules"].rules_, evaluation_rules)
