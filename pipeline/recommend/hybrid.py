"""The hybrid recommender: every component's candidates pooled, blended with weights, served in blocks.

What belongs here: :class:`HybridRecommender`, the dense candidate pool (:class:`_Pool`) on which blending any
weight vector is a weighted sum and a row-wise top-k, the serving of customers in blocks of ``_SERVE_BATCH``,
and the worker threads that run independent pieces of work (:class:`_Workers`). The components live in
``components``, the tuning of the weights in ``tuning``. No dagster imports.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import ClassVar, Literal, NamedTuple, Self, TypeVar

import numpy as np
import pandas as pd
from sklearn.base import clone

from pipeline.recommend.components import (
    _BATCH_ROWS,
    PopularityRecommender,
    _Candidates,
    _check_k,
    _Component,
    _top_k,
    default_components,
)
from pipeline.recommend.history import _as_customer_ids, _group_max, _History, _run_starts
from pipeline.recommend.settings import DEFAULT_WEIGHTS

_T = TypeVar("_T")

# Customers served per pass of the hybrid: bounds the candidate pools' memory at any data size. A multiple of
# _BATCH_ROWS, so the components score the same row blocks as a single pass would.
_SERVE_BATCH = 4 * _BATCH_ROWS
_FALLBACK_EPSILON = 1e-6


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
            setting asked for; use :func:`pipeline.recommend.tuning.tune_hybrid_weights` to learn them on a
            validation split.
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
        return self._serve_padded(customer_ids, settings, k=k, workers=workers)[0]

    def _serve_padded(
        self,
        customer_ids: np.ndarray,
        settings: Sequence[tuple[bool, Mapping[str, float] | None]],
        *,
        k: int,
        workers: _Workers | None = None,
        tie_widths: Sequence[int] | None = None,
    ) -> tuple[list[_Served], list[int]]:
        """:meth:`_serve`, with the widths the tied rows are padded to, per setting.

        ``tie_widths`` (default: the widest pool of these customers) lets a later call on some of the
        customers pad their tied rows as a call on all of them did, and so pick the same products.
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
        served, widths = [], []
        for index, vector in enumerate(vectors):
            picks = [blocks[index][0] for blocks in results]
            deferred = [blocks[index] for blocks in results if blocks[index][2] is not None]
            width = max([blocks[index][3] for blocks in results], default=1)
            if tie_widths is not None:
                width = max(width, int(tie_widths[index]))
            if deferred:
                offsets = np.concatenate([positions for _, positions, _, _ in deferred])
                pool = _Pool.stack([part for _, _, part, _ in deferred], width=width)
                position, slot, score, rank = pool.blend(vector, k)
                picks.append(self._picks(pool, vector, offsets[position], position, slot, score, rank))
            served.append(_concat_served(picks))
            widths.append(width)
        return served, widths

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
                "customer_id": np.asarray(customer_ids[served.position], dtype=np.int64),
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
