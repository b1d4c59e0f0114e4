"""Tuning of the hybrid's blend weights on validation splits inside the training period.

What belongs here: :func:`tune_hybrid_weights` and the coordinate ascent behind it, which scores many weight
vectors on the candidate pools of one holdout per fold (built in ``holdouts``) without refitting anything.
The weights are tuned on the ``validation_months`` before a cutoff with components fitted on the lines before
that, never on a test window. No dagster imports.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np
import pandas as pd

from pipeline.baskets import basket_analysis
from pipeline.recommend.components import _check_k, _Component
from pipeline.recommend.history import _Lines, _product_lines
from pipeline.recommend.holdouts import (
    _default_cutoff,
    _hits_matrix,
    _Holdout,
    _holdout,
    _metrics_from_hits,
    _options,
    _Split,
    _split_error,
)
from pipeline.recommend.hybrid import _Pool
from pipeline.recommend.settings import SETTINGS, WEIGHT_GRID


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

    The last ``validation_months`` of ``lines`` are held out exactly as in
    :func:`pipeline.recommend.evaluation.evaluate`: components are fitted on the lines before, and the weights
    maximising mean nDCG@k + mean hit rate@k on the held-out purchases are found by coordinate ascent over
    ``grid`` (starting from equal weights, ``n_rounds`` sweeps at most). Buy-again is fixed at 0 in
    ``new_only`` since it can only propose products already bought.

    Args:
        lines: Cleaned sales lines of the *training* period only.
        validation_months: Length of the validation window, in months, ending at the last line's day.
        k: Cut-off rank of the objective.
        components: Unfitted components (default :func:`pipeline.recommend.components.default_components`,
            whose rules are mined on the validation-fit lines, so no external rule leaks the held-out
            baskets).
        normalization: Hybrid score normalisation.
        n_candidates: Candidates per component and customer.
        grid: Candidate weight values.
        n_rounds: Maximum number of coordinate-ascent sweeps.
        n_folds: Number of consecutive validation windows (each ``validation_months`` long, going back from
            the end); the objective is averaged over them. 1 (default) did as well as 2 on a nested validation
            split.
        random_state: Seed for the SVD component.
        mining: Rule mining settings of the default rules component (see
            :class:`pipeline.recommend.components.RulesRecommender`).

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
