"""The served recommendations table, and the evaluation computed beside it from the fits the two share.

What belongs here: :func:`recommend_all_settings` and :func:`recommend_all` (the table served to the business:
weights tuned on the last ``validation_months``, or ``DEFAULT_WEIGHTS`` when the data is too short, then every
component refitted on all lines) and :func:`recommend_and_evaluate` (both tables, :class:`RecommenderTables`).
No dagster imports.

Cost: the served table tunes its weights on the last ``validation_months``; with the default
``validation_months == test_months`` that is exactly the evaluation's test split, so
:func:`recommend_and_evaluate` fits the components three times (inner validation, test, everything) where
calling ``evaluate`` and ``recommend_all_settings`` separately fits them four times; those three fits, and
the blocks of customers served, are independent and can run on threads (``n_jobs``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from pipeline.baskets import basket_analysis
from pipeline.recommend.components import _check_k, default_components
from pipeline.recommend.evaluation import _metrics_table
from pipeline.recommend.history import _as_customer_ids, _History, _Lines, _product_lines
from pipeline.recommend.holdouts import (
    ValidationSplitError,
    _default_cutoff,
    _Holdout,
    _holdout,
    _options,
    _split_error,
)
from pipeline.recommend.hybrid import HybridRecommender, _Workers
from pipeline.recommend.settings import DEFAULT_WEIGHTS, SETTINGS, WEIGHT_GRID
from pipeline.recommend.tuning import _tune

_LOG = logging.getLogger(__name__)


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


class ServedRecommender(NamedTuple):
    """The fitted hybrid that served the recommendations table, and how it served it.

    Attributes:
        hybrid: Every component fitted on all lines.
        weights: Blend weights per setting.
        settings: Setting names served, in table order.
        k: Products per customer.
        tie_widths: Per setting, the pool width the customers tied at the k-th place were padded to (see
            ``HybridRecommender._serve_padded``); :func:`serve_customers` pads the same way.
    """

    hybrid: HybridRecommender
    weights: Mapping[str, Mapping[str, float]]
    settings: tuple[str, ...]
    k: int
    tie_widths: tuple[int, ...]


def serve_customers(model: ServedRecommender, customer_ids: Iterable[object]) -> pd.DataFrame:
    """Recommendations of a served model for some customers: their rows of the table it served.

    Customers unknown to the fitted history get popular products (the hybrid's cold start).

    Args:
        model: The ``model`` of :class:`RecommenderTables` (or a loaded artifact of it).
        customer_ids: Customers to serve; duplicates are served once.

    Returns:
        The columns of the recommendations table, sorted by setting, customer and rank.
    """
    ids = np.unique(_as_customer_ids(customer_ids))
    table, _ = _serve_table(
        model.hybrid,
        model.weights,
        settings=list(model.settings),
        k=model.k,
        customers=ids,
        tie_widths=model.tie_widths,
    )
    return table


def _serve_table(
    hybrid: HybridRecommender,
    weights: Mapping[str, Mapping[str, float]],
    *,
    settings: list[str],
    k: int,
    workers: _Workers | None = None,
    customers: np.ndarray | None = None,
    tie_widths: Sequence[int] | None = None,
) -> tuple[pd.DataFrame, tuple[int, ...]]:
    """Serve ``customers`` (default: every customer of the fitted ``hybrid``) in each setting.

    Returns the table, with descriptions and reasons, and the tie widths of each setting.
    """
    history = hybrid.history_
    customers = history.customer_ids if customers is None else customers
    served, widths = hybrid._serve_padded(
        customers,
        [(SETTINGS[name], dict(weights[name])) for name in settings],
        k=k,
        workers=workers,
        tie_widths=tie_widths,
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
    table = (
        table[columns]
        .assign(_order=order)
        .sort_values(["_order", "customer_id", "rank"])
        .drop(columns="_order")
        .reset_index(drop=True)
    )
    return table, tuple(widths)


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
        weights: Blend weights per setting (as returned by
            :func:`pipeline.recommend.tuning.tune_hybrid_weights`); None tunes them, or falls back to
            ``DEFAULT_WEIGHTS`` with a logged warning when the data is too short to validate on.
        validation_months: Validation window used for tuning.
        random_state: Seed for the SVD component.
        mining: Rule mining settings (see :class:`pipeline.baskets.basket_analysis.RuleMining`) of the tuning
            fits, and of the served fit when ``rules`` is None.

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
    table, _ = _serve_table(
        _serving_fit(lines, rules, random_state=random_state, mining=mining), weights, settings=settings, k=k
    )
    return table


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
        evaluation: As returned by :func:`pipeline.recommend.evaluation.evaluate`; None when the data is too
            short to evaluate.
        evaluation_error: Why there is no evaluation (the error
            :func:`pipeline.recommend.evaluation.evaluate` raises), else None.
        served_rules: The rules the served rules component uses (prepared from ``rules``, or mined).
        evaluation_rules: The rules the evaluated rules component used: mined with the same settings on the
            lines before the test cutoff (None when there is no test split).
        model: The fitted hybrid that served ``recommendations``, with its weights
            (:func:`serve_customers` with it reproduces the table's rows).
    """

    recommendations: pd.DataFrame
    evaluation: pd.DataFrame | None
    evaluation_error: ValidationSplitError | None
    served_rules: pd.DataFrame
    evaluation_rules: pd.DataFrame | None
    model: ServedRecommender | None = None


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
        table, widths = _serve_table(served, weights, settings=list(SETTINGS), k=k, workers=workers)
    model = ServedRecommender(served, weights, tuple(SETTINGS), k, widths)
    return RecommenderTables(
        table, evaluation, error, served.components_["rules"].rules_, evaluation_rules, model
    )
