"""Next-90-day purchase and revenue prediction per customer, with an honest temporal evaluation.

What belongs here: point-in-time customer features, the labels of a future window, the hurdle model
(purchase probability x expected revenue given a purchase), its baselines and the long evaluation table.
Descriptive RFM lives in ``pipeline.customers.rfm_segments``; figures in ``pipeline.customers.plots``.

Timeline, with ``R`` the reference date (default: the day after the last invoice date), ``h`` the horizon
and ``s`` the window step (30 days):

- evaluation: train on features as of ``R - 2h - j*s`` with labels in ``[R - 2h - j*s, R - h - j*s)`` for
  ``j = 0 .. training_windows - 1`` (stacked), test on features as of ``R - h`` with labels in ``[R - h, R)``.
  No training label reaches into the test window;
- production: refit the same way one horizon later (cut-offs ``R - h - j*s``, the last labels ending at
  ``R``) and predict ``[R, R + h)`` from features as of ``R``.

Stacking a few monthly-spaced windows triples the training rows from one year of data; windows whose
cut-off leaves less than ``h`` days of history are dropped.

Models. Purchase: ``HistGradientBoostingClassifier`` (log loss, so probabilities are usable as they come;
the calibration bins in the evaluation table show how well). Revenue: a hurdle model,
``P(buy) * E[revenue | buy]``. The conditional mean comes from a Poisson GLM (log link) on the logs of the
money, count and day features plus the share features, fitted on the buyers of the training windows. Its
log-log form makes next-window revenue a power law of past spend, so it extrapolates smoothly to the few
wholesale accounts that dominate squared error, where tree leaves would average them with smaller
customers; and the log link estimates the mean directly, without the retransformation bias of a
regression on log revenue.

Baselines. ``baseline_recency``: a logistic regression on ``log1p(recency_days)`` fitted on the training
windows; as a ranking it is the recency-only ranking (AUC), and its probabilities give a Brier score.
``baseline_last_90d``: next-window revenue equals the customer's revenue in the last ``h`` days.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression, PoissonRegressor
from sklearn.metrics import brier_score_loss, mean_absolute_error, mean_squared_error, roc_auc_score
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from pipeline.common.lines import Lines, invoice_date_range, product_cancellations, query_frames
from pipeline.customers.schemas import CustomerPredictions, PredictionEvaluation

UK = "United Kingdom"
FEATURE_COLUMNS: tuple[str, ...] = (
    "recency_days",
    "frequency",
    "monetary",
    "tenure_days",
    "days_since_first_purchase",
    "purchase_days",
    "mean_gap_days",
    "std_gap_days",
    "avg_basket_value",
    "avg_lines_per_invoice",
    "distinct_products",
    "return_rate",
    "spend_last_90d",
    "invoices_last_90d",
    "spend_last_90d_share",
    "q4_spend_share",
    "is_uk",
)
# Features entering the revenue GLM as they are (shares) and on a log1p scale (money, counts and days); the
# gap statistics and the return rate are left to the classifier.
_GLM_SHARE_COLUMNS: tuple[str, ...] = ("spend_last_90d_share", "q4_spend_share", "is_uk")
_GLM_LOG_COLUMNS: tuple[str, ...] = tuple(
    column
    for column in FEATURE_COLUMNS
    if column not in {*_GLM_SHARE_COLUMNS, "mean_gap_days", "std_gap_days", "return_rate"}
)
CALIBRATION_BINS = 10


class InsufficientHistoryError(ValueError):
    """The data span is too short to train and test the model; the message states the span needed."""


class PredictionTables(NamedTuple):
    """Output of :func:`prediction_tables`.

    Attributes:
        predictions: As returned by :func:`evaluate_and_predict`, or empty when the history is too short.
        evaluation: As returned by :func:`evaluate_and_predict`, or empty when the history is too short.
        skipped_reason: Why both tables are empty (the :class:`InsufficientHistoryError` message), else None.
        fit: The :class:`PredictionFit` with the model that scored the predictions; None when skipped.
    """

    predictions: pd.DataFrame
    evaluation: pd.DataFrame
    skipped_reason: str | None = None
    fit: PredictionFit | None = None


class PredictionFit(NamedTuple):
    """Output of :func:`fit_and_predict`: the two tables and the model that scored the predictions.

    Attributes:
        predictions: As returned by :func:`evaluate_and_predict`.
        evaluation: As returned by :func:`evaluate_and_predict`.
        model: The production :class:`HurdleModel` (refitted on the latest windows) that scored
            ``predictions``; :func:`score_customers` with it reproduces them.
        reference_date: First day of the predicted window; the features scored are as of this date.
        horizon_days: Length of the label windows and of the ``spend_last_90d`` feature window.
        training: The labelled customer windows (features, ``bought``, ``revenue``) the production model
            was fitted on.
    """

    predictions: pd.DataFrame
    evaluation: pd.DataFrame
    model: HurdleModel
    reference_date: pd.Timestamp
    horizon_days: int
    training: pd.DataFrame

# A customer's lines summarised once per invoice (and per product), so that the five windows of
# ``evaluate_and_predict`` group tens of thousands of invoices instead of re-reading every line. Summing
# revenue per invoice first changes sums only in the last bits, and money features are rounded to pence.
_INVOICES_SQL = """
    SELECT customer_id, invoice, invoice_date,
           count(*) AS lines,
           count(*) FILTER (WHERE country = $uk) AS uk_lines,
           sum(revenue) AS revenue
    FROM cleaned
    WHERE customer_id IS NOT NULL
    GROUP BY customer_id, invoice, invoice_date
"""
_FIRST_PURCHASES_SQL = """
    SELECT customer_id, min(invoice_date) AS first_bought
    FROM cleaned
    WHERE customer_id IS NOT NULL AND stock_code IS NOT NULL
    GROUP BY customer_id, stock_code
"""

_FEATURES_SQL = """
    WITH bought AS (
        SELECT customer_id, invoice, invoice_date, CAST(invoice_date AS DATE) AS day, lines, uk_lines, revenue
        FROM invoices
        WHERE invoice_date < $as_of
    ),
    days AS (
        SELECT customer_id, day,
               datediff('day', lag(day) OVER (PARTITION BY customer_id ORDER BY day), day) AS gap
        FROM (SELECT DISTINCT customer_id, day FROM bought)
    ),
    gaps AS (
        SELECT customer_id, count(*) AS purchase_days, avg(gap) AS mean_gap_days,
               stddev_pop(gap) AS std_gap_days
        FROM days GROUP BY customer_id
    ),
    returns AS (
        SELECT customer_id, round(sum(returned_value), 2) AS returns_value
        FROM cancellations
        WHERE customer_id IS NOT NULL AND invoice_date < $as_of
        GROUP BY customer_id
    ),
    products AS (
        SELECT customer_id, count(*) AS distinct_products
        FROM first_purchases
        WHERE first_bought < $as_of
        GROUP BY customer_id
    ),
    base AS (
        SELECT
            customer_id,
            min(day) AS first_day,
            max(day) AS last_day,
            count(DISTINCT invoice) AS frequency,
            CAST(sum(lines) AS BIGINT) AS lines,
            round(sum(revenue), 2) AS monetary,
            round(sum(CASE WHEN invoice_date >= $recent_start THEN revenue ELSE 0 END), 2) AS spend_last_90d,
            count(DISTINCT CASE WHEN invoice_date >= $recent_start THEN invoice END) AS invoices_last_90d,
            round(sum(CASE WHEN month(invoice_date) >= 10 THEN revenue ELSE 0 END), 2) AS q4_spend,
            sum(uk_lines) / sum(lines) AS uk_line_share
        FROM bought GROUP BY customer_id
    )
    SELECT
        b.customer_id,
        datediff('day', b.last_day, CAST($as_of AS DATE)) AS recency_days,
        b.frequency,
        b.monetary,
        datediff('day', b.first_day, b.last_day) AS tenure_days,
        datediff('day', b.first_day, CAST($as_of AS DATE)) AS days_since_first_purchase,
        g.purchase_days,
        g.mean_gap_days,
        CASE WHEN g.purchase_days >= 2 THEN g.std_gap_days END AS std_gap_days,
        b.monetary / b.frequency AS avg_basket_value,
        b.lines / b.frequency AS avg_lines_per_invoice,
        coalesce(p.distinct_products, 0) AS distinct_products,
        coalesce(r.returns_value, 0) / b.monetary AS return_rate,
        b.spend_last_90d,
        b.invoices_last_90d,
        b.spend_last_90d / b.monetary AS spend_last_90d_share,
        b.q4_spend / b.monetary AS q4_spend_share,
        b.uk_line_share > 0.5 AS is_uk
    FROM base AS b
    JOIN gaps AS g USING (customer_id)
    LEFT JOIN products AS p USING (customer_id)
    LEFT JOIN returns AS r USING (customer_id)
    ORDER BY b.customer_id
"""

_LABELS_SQL = """
    SELECT customer_id,
           bool_or(invoice_date >= $start) AS bought,
           round(sum(CASE WHEN invoice_date >= $start THEN revenue ELSE 0 END), 2) AS revenue
    FROM invoices
    WHERE invoice_date < $stop
    GROUP BY customer_id
    HAVING min(invoice_date) < $start
    ORDER BY customer_id
"""


class _History(NamedTuple):
    """Registered customers' lines at the grain the features and labels need, for any cut-off."""

    invoices: pd.DataFrame
    first_purchases: pd.DataFrame


def _history(cleaned: Lines) -> _History:
    """Summarise ``cleaned`` per customer invoice (lines, UK lines, revenue) and per customer product."""
    return _History(
        invoices=query_frames(_INVOICES_SQL, {"uk": UK}, cleaned=cleaned),
        first_purchases=query_frames(_FIRST_PURCHASES_SQL, cleaned=cleaned),
    )


def build_features(
    cleaned: Lines,
    rejected: Lines | None,
    *,
    as_of: pd.Timestamp,
    recent_days: int = 90,
) -> pd.DataFrame:
    """Describe every registered customer using only lines dated strictly before ``as_of``.

    Features (all as of ``as_of``; days are whole calendar days):

    - ``recency_days``: days from the last purchase date to the date of ``as_of``.
    - ``frequency``: distinct invoices. ``monetary``: total revenue (GBP).
    - ``tenure_days``: days from the first to the last purchase date (the active span).
    - ``days_since_first_purchase``: days from the first purchase date to ``as_of``.
    - ``purchase_days``: distinct dates with a purchase.
    - ``mean_gap_days`` / ``std_gap_days``: mean and population standard deviation of the days between
      consecutive purchase dates; missing with a single purchase date.
    - ``avg_basket_value``: ``monetary / frequency``. ``avg_lines_per_invoice``: lines per invoice.
    - ``distinct_products``: distinct stock codes bought.
    - ``return_rate``: value of product cancellations before ``as_of`` (see ``pipeline.eda.summaries``) over
      ``monetary``; can exceed 1 when older purchases are returned.
    - ``spend_last_90d`` / ``invoices_last_90d``: revenue and invoices in the last ``recent_days`` days;
      ``spend_last_90d_share`` is that revenue over ``monetary``.
    - ``q4_spend_share``: share of revenue bought in October-December (seasonal, gift-trade buyers).
    - ``is_uk``: whether most of the customer's lines ship to the United Kingdom.

    Args:
        cleaned: ``staging.cleaned_transactions``.
        rejected: ``staging.rejected_rows`` for returns; ``None`` means no returns.
        as_of: Cut-off; lines at or after it are ignored. Its time of day matters for the cut but recency
            is counted from its date.
        recent_days: Length of the "recent" window of the ``*_last_90d`` features.

    Returns:
        One row per customer with at least one line before ``as_of``, ordered by ``customer_id``:
        ``customer_id`` and the ``FEATURE_COLUMNS`` (columns of
        ``pipeline.customers.schemas.CustomerFeatures``).
    """
    return _features(
        _history(cleaned), product_cancellations(cleaned, rejected), as_of=as_of, recent_days=recent_days
    )


def _features(
    history: _History, cancellations: pd.DataFrame, *, as_of: pd.Timestamp, recent_days: int
) -> pd.DataFrame:
    """``build_features`` from the history and product cancellations shared by every window."""
    as_of = pd.Timestamp(as_of)
    out = query_frames(
        _FEATURES_SQL,
        {"as_of": as_of, "recent_start": as_of - pd.Timedelta(days=recent_days)},
        invoices=history.invoices,
        first_purchases=history.first_purchases,
        cancellations=cancellations,
    )
    ints = [
        "customer_id",
        "recency_days",
        "frequency",
        "tenure_days",
        "days_since_first_purchase",
        "purchase_days",
        "distinct_products",
        "invoices_last_90d",
    ]
    return out.astype({c: "int64" for c in ints} | {"is_uk": "bool"})


def labels(cleaned: Lines, *, start: pd.Timestamp, horizon_days: int = 90) -> pd.DataFrame:
    """Label whether and how much each known customer buys in ``[start, start + horizon_days)``.

    The population is the customers with at least one line before ``start``, the same customers that
    ``build_features(..., as_of=start)`` describes; customers first seen inside the window are not labelled
    because nothing could have been predicted for them.

    Args:
        cleaned: ``staging.cleaned_transactions``.
        start: First instant of the label window.
        horizon_days: Window length in days.

    Returns:
        ``customer_id``, ``bought`` (bool) and ``revenue`` (GBP, 0 when not bought), ordered by
        ``customer_id``.
    """
    invoices = query_frames(_INVOICES_SQL, {"uk": UK}, cleaned=cleaned)
    return _labels(invoices, start=start, horizon_days=horizon_days)


def _labels(invoices: pd.DataFrame, *, start: pd.Timestamp, horizon_days: int) -> pd.DataFrame:
    """``labels`` from the per-invoice history."""
    start = pd.Timestamp(start)
    out = query_frames(
        _LABELS_SQL, {"start": start, "stop": start + pd.Timedelta(days=horizon_days)}, invoices=invoices
    )
    return out.astype({"customer_id": "int64", "bought": "bool", "revenue": "float64"})


def _cutoffs(
    first_date: pd.Timestamp, *, last_cutoff: pd.Timestamp, horizon_days: int, windows: int, step_days: int
) -> list[pd.Timestamp]:
    """Cut-offs ``last_cutoff - j * step_days`` for j < ``windows``.

    Cut-offs leaving less than ``horizon_days`` of history after ``first_date`` (the first invoice date) are
    dropped, except the first.
    """
    earliest = first_date.normalize() + pd.Timedelta(days=horizon_days)
    cutoffs = [last_cutoff - pd.Timedelta(days=j * step_days) for j in range(windows)]
    return [cutoffs[0]] + [c for c in cutoffs[1:] if c >= earliest]


def _labelled_window(
    history: _History, cancellations: pd.DataFrame, *, as_of: pd.Timestamp, horizon_days: int
) -> pd.DataFrame:
    """Features as of ``as_of`` joined with the labels of the following ``horizon_days``."""
    features = _features(history, cancellations, as_of=as_of, recent_days=horizon_days)
    target = _labels(history.invoices, start=as_of, horizon_days=horizon_days)
    return features.merge(target, on="customer_id", how="left", validate="1:1")


def _glm_design(frame: pd.DataFrame) -> np.ndarray:
    """Design matrix of the revenue GLM: log1p of the scale features, the share features as they are."""
    logged = np.log1p(frame[list(_GLM_LOG_COLUMNS)].to_numpy(dtype="float64"))
    shares = frame[list(_GLM_SHARE_COLUMNS)].to_numpy(dtype="float64")
    return np.column_stack([logged, shares])


class HurdleModel:
    """Purchase classifier times a conditional-revenue Poisson GLM (see the module docstring).

    Args:
        random_state: Seed for the gradient-boosting classifier.
        alpha: L2 penalty of the revenue GLM (on standardised features).
    """

    def __init__(self, *, random_state: int = 0, alpha: float = 1e-4) -> None:
        self.random_state = random_state
        self.alpha = alpha

    def fit(self, frame: pd.DataFrame) -> HurdleModel:
        """Fit on labelled windows (features plus ``bought`` and ``revenue``).

        Args:
            frame: Output of ``build_features`` with the ``labels`` columns joined on; needs buyers and
                non-buyers.

        Returns:
            ``self``.
        """
        x = frame[list(FEATURE_COLUMNS)].to_numpy(dtype="float64")
        bought = frame["bought"].to_numpy(dtype=bool)
        # Small trees, a slow learning rate and l2 regularisation: a few thousand customers and a target
        # this noisy reward shrinkage more than depth. Early stopping is off so runs are reproducible.
        self.classifier_ = HistGradientBoostingClassifier(
            learning_rate=0.05,
            max_iter=200,
            max_leaf_nodes=15,
            min_samples_leaf=40,
            l2_regularization=1.0,
            early_stopping=False,
            random_state=self.random_state,
        ).fit(x, bought)
        self.regressor_: Pipeline = make_pipeline(
            StandardScaler(), PoissonRegressor(alpha=self.alpha, max_iter=1000)
        ).fit(_glm_design(frame)[bought], frame["revenue"].to_numpy(dtype="float64")[bought])
        return self

    def predict(self, features: pd.DataFrame) -> pd.DataFrame:
        """Predict purchase probability and expected revenue.

        Args:
            features: Output of ``build_features``.

        Returns:
            ``customer_id``, ``purchase_probability`` and ``predicted_revenue`` (= probability x
            expected revenue given a purchase).
        """
        x = features[list(FEATURE_COLUMNS)].to_numpy(dtype="float64")
        probability = self.classifier_.predict_proba(x)[:, 1]
        conditional = self.regressor_.predict(_glm_design(features))
        return pd.DataFrame(
            {
                "customer_id": features["customer_id"].to_numpy(),
                "purchase_probability": probability,
                "predicted_revenue": probability * conditional,
            }
        )


def _recency_baseline(train: pd.DataFrame) -> LogisticRegression:
    """Fit the recency-only logistic baseline on a labelled window."""
    x = np.log1p(train[["recency_days"]].to_numpy(dtype="float64"))
    return LogisticRegression().fit(x, train["bought"].to_numpy(dtype=bool))


def _calibration_rows(bought: np.ndarray, probability: np.ndarray) -> list[dict[str, object]]:
    """Mean predicted and observed purchase rate per equal-width probability bin (empty bins skipped)."""
    bins = np.minimum((probability * CALIBRATION_BINS).astype(int), CALIBRATION_BINS - 1)
    rows: list[dict[str, object]] = []
    for b in np.unique(bins):
        members = bins == b
        n = int(members.sum())
        rows.append(
            {
                "metric": f"calibration_bin_{b}_predicted",
                "value": float(probability[members].mean()),
                "n_customers": n,
            }
        )
        rows.append(
            {
                "metric": f"calibration_bin_{b}_observed",
                "value": float(bought[members].mean()),
                "n_customers": n,
            }
        )
    return rows


def _evaluate(
    test: pd.DataFrame, scored: dict[str, tuple[np.ndarray | None, np.ndarray | None]]
) -> list[dict]:
    """Score each model's probabilities and revenue predictions on the test window."""
    bought = test["bought"].to_numpy(dtype=bool)
    revenue = test["revenue"].to_numpy(dtype="float64")
    n = len(test)
    rows: list[dict[str, object]] = []
    for model, (probability, predicted) in scored.items():
        if probability is not None:
            purchase = [
                {"metric": "roc_auc", "value": float(roc_auc_score(bought, probability)), "n_customers": n},
                {"metric": "brier", "value": float(brier_score_loss(bought, probability)), "n_customers": n},
                *_calibration_rows(bought, probability),
            ]
            rows += [{"target": "purchase", "model": model} | row for row in purchase]
        if predicted is not None:
            rows += [
                {
                    "target": "revenue",
                    "model": model,
                    "metric": "mae",
                    "value": float(mean_absolute_error(revenue, predicted)),
                    "n_customers": n,
                },
                {
                    "target": "revenue",
                    "model": model,
                    "metric": "rmse",
                    "value": float(np.sqrt(mean_squared_error(revenue, predicted))),
                    "n_customers": n,
                },
            ]
    return rows


def evaluate_and_predict(
    cleaned: Lines,
    rejected: Lines | None,
    *,
    reference_date: pd.Timestamp | None = None,
    horizon_days: int = 90,
    random_state: int = 0,
    training_windows: int = 3,
    window_step_days: int = 30,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Evaluate the hurdle model against baselines on the last labelled window, then predict the next one.

    See the module docstring for the timeline and the baselines.

    ``expected_value`` is a CLV-style 12-month heuristic: ``predicted_revenue_90d * (1 + p + p^2 + p^3)``
    with ``p = purchase_probability_90d`` read as the chance of still buying one quarter later, so revenue
    decays geometrically over four quarters. It is a ranking aid for marketing budgets, not a validated
    forecast (one year of data cannot validate a 12-month horizon). The ``_90d`` column names refer to the
    default horizon; with another ``horizon_days`` they hold that horizon's values.

    Args:
        cleaned: ``staging.cleaned_transactions``.
        rejected: ``staging.rejected_rows`` (returns feed ``return_rate``); may be ``None``.
        reference_date: First day of the predicted window; defaults to the day after the last invoice date.
        horizon_days: Length of every label and prediction window.
        random_state: Seed of the gradient-boosting classifier.
        training_windows: Number of stacked labelled windows per fit (see the module docstring).
        window_step_days: Days between the cut-offs of stacked windows.

    Returns:
        ``(predictions, evaluation)``. ``predictions`` has one row per customer with any purchase before
        the reference date (columns of ``pipeline.customers.schemas.CustomerPredictions``): ``customer_id``,
        ``purchase_probability_90d``, ``predicted_revenue_90d`` and ``expected_value``. ``evaluation`` is long
        (columns of ``pipeline.customers.schemas.PredictionEvaluation``): ``target``
        (``purchase``/``revenue``), ``model`` (``model``, ``baseline_recency``, ``baseline_last_90d``),
        ``metric`` (``roc_auc``, ``brier``, ``calibration_bin_<k>_predicted``/``_observed``, ``mae``,
        ``rmse``), ``value``, ``n_customers`` (test customers, or customers in the calibration bin) and
        ``cutoff_date`` (start of the test window).

    Raises:
        InsufficientHistoryError: If a training window set or the test window has customers of only one
            class (buyers or non-buyers), which happens when the data spans too few days.
    """
    fit = fit_and_predict(
        cleaned,
        rejected,
        reference_date=reference_date,
        horizon_days=horizon_days,
        random_state=random_state,
        training_windows=training_windows,
        window_step_days=window_step_days,
    )
    return fit.predictions, fit.evaluation


def fit_and_predict(
    cleaned: Lines,
    rejected: Lines | None,
    *,
    reference_date: pd.Timestamp | None = None,
    horizon_days: int = 90,
    random_state: int = 0,
    training_windows: int = 3,
    window_step_days: int = 30,
) -> PredictionFit:
    """:func:`evaluate_and_predict`, also returning the production model that scored the predictions.

    Args:
        cleaned: ``staging.cleaned_transactions``.
        rejected: ``staging.rejected_rows``; may be ``None``.
        reference_date: See :func:`evaluate_and_predict`.
        horizon_days: See :func:`evaluate_and_predict`.
        random_state: See :func:`evaluate_and_predict`.
        training_windows: See :func:`evaluate_and_predict`.
        window_step_days: See :func:`evaluate_and_predict`.

    Returns:
        The tables, the fitted model, the reference date and horizon of its features, its training data.

    Raises:
        InsufficientHistoryError: See :func:`evaluate_and_predict`.
    """
    first, last = invoice_date_range(cleaned)
    reference = (
        last.normalize() + pd.Timedelta(days=1)
        if reference_date is None
        else pd.Timestamp(reference_date).normalize()
    )
    horizon = pd.Timedelta(days=horizon_days)
    test_cutoff = reference - horizon
    cancellations = product_cancellations(cleaned, rejected)
    history = _history(cleaned)
    spacing = {"horizon_days": horizon_days, "windows": training_windows, "step_days": window_step_days}
    train_cutoffs = _cutoffs(first, last_cutoff=test_cutoff - horizon, **spacing)
    latest_cutoffs = _cutoffs(first, last_cutoff=test_cutoff, **spacing)
    # The stacks overlap (the test window is also the newest production training window): build each once.
    window = {
        cutoff: _labelled_window(history, cancellations, as_of=cutoff, horizon_days=horizon_days)
        for cutoff in sorted(set(train_cutoffs) | set(latest_cutoffs))
    }
    train = pd.concat([window[c] for c in train_cutoffs], ignore_index=True)
    test = window[test_cutoff]
    latest = pd.concat([window[c] for c in latest_cutoffs], ignore_index=True)
    # The test window too: AUC and the Brier score are undefined without both classes.
    if any(frame["bought"].nunique() < 2 for frame in (train, test, latest)):
        raise InsufficientHistoryError(
            "every training window set and the test window need both buyers and non-buyers: the model "
            f"learns from customers seen before a cut-off who do or do not buy in the {horizon_days} days "
            f"after it, and is tested on the last {horizon_days} days, so it needs well over "
            f"{2 * horizon_days} days of purchases (about a year in practice); the data spans "
            f"{first:%Y-%m-%d} to {last:%Y-%m-%d} ({(last - first).days} days)"
        )

    # Tiny tabular problems: threads only add start-up and spin-wait overhead on a shared machine.
    with threadpool_limits(limits=1):
        model = HurdleModel(random_state=random_state).fit(train)
        scored_model = model.predict(test)
        baseline = _recency_baseline(train)
        baseline_probability = baseline.predict_proba(
            np.log1p(test[["recency_days"]].to_numpy(dtype="float64"))
        )
        rows = _evaluate(
            test,
            {
                "model": (
                    scored_model["purchase_probability"].to_numpy(),
                    scored_model["predicted_revenue"].to_numpy(),
                ),
                "baseline_recency": (baseline_probability[:, 1], None),
                "baseline_last_90d": (None, test["spend_last_90d"].to_numpy(dtype="float64")),
            },
        )
        final = HurdleModel(random_state=random_state).fit(latest)
        predictions = score_customers(
            final, _features(history, cancellations, as_of=reference, recent_days=horizon_days)
        )

    evaluation = pd.DataFrame(rows).assign(cutoff_date=test_cutoff)
    evaluation = evaluation[["target", "model", "metric", "value", "n_customers", "cutoff_date"]]
    evaluation = evaluation.astype({"n_customers": "int64", "cutoff_date": "datetime64[ns]"})
    return PredictionFit(predictions, evaluation, final, reference, horizon_days, latest)


def score_customers(model: HurdleModel, features: pd.DataFrame) -> pd.DataFrame:
    """The ``customer_predictions`` rows of a fitted model for customers described by ``features``.

    ``expected_value`` is the heuristic described in :func:`evaluate_and_predict`.

    Args:
        model: A fitted :class:`HurdleModel`.
        features: Output of :func:`build_features` (``customer_id`` and the ``FEATURE_COLUMNS``).

    Returns:
        ``customer_id``, ``purchase_probability_90d``, ``predicted_revenue_90d`` and ``expected_value``
        (columns of ``pipeline.customers.schemas.CustomerPredictions``), in the row order of ``features``.
    """
    with threadpool_limits(limits=1):
        scored = model.predict(features)
    p = scored["purchase_probability"]
    return pd.DataFrame(
        {
            "customer_id": scored["customer_id"].astype("int64"),
            "purchase_probability_90d": p,
            "predicted_revenue_90d": scored["predicted_revenue"],
            "expected_value": scored["predicted_revenue"] * (1 + p + p**2 + p**3),
        }
    )


def empty_predictions() -> pd.DataFrame:
    """A ``customer_predictions`` table with no rows and the columns and dtypes of its model."""
    return _empty(CustomerPredictions)


def empty_evaluation() -> pd.DataFrame:
    """A ``prediction_evaluation`` table with no rows and the columns and dtypes of its model."""
    return _empty(PredictionEvaluation)


def _empty(model) -> pd.DataFrame:
    """No rows, the model's columns; text columns as pandas strings so DuckDB stores them as VARCHAR."""
    columns = model.to_schema().columns
    return pd.DataFrame(
        {
            name: pd.Series(dtype="string" if str(column.dtype) == "str" else column.dtype.type)
            for name, column in columns.items()
        }
    )


def prediction_tables(cleaned: Lines, rejected: Lines | None, **settings) -> PredictionTables:
    """:func:`evaluate_and_predict`, or two empty tables and the reason when the history is too short.

    A valid export that spans too few days (one day, a few weeks) still yields every other table; only
    these two cannot be computed from it.

    Args:
        cleaned: ``staging.cleaned_transactions``.
        rejected: ``staging.rejected_rows``; may be ``None``.
        **settings: Keyword arguments of :func:`evaluate_and_predict` (``horizon_days``, ``random_state``...).

    Returns:
        The predictions and the evaluation, with ``skipped_reason`` None and the :class:`PredictionFit` as
        ``fit``; or empty tables with the columns of ``CustomerPredictions`` and ``PredictionEvaluation``, the
        message of the :class:`InsufficientHistoryError` as ``skipped_reason`` and no ``fit``.
    """
    try:
        fit = fit_and_predict(cleaned, rejected, **settings)
    except InsufficientHistoryError as error:
        return PredictionTables(empty_predictions(), empty_evaluation(), str(error))
    return PredictionTables(fit.predictions, fit.evaluation, fit=fit)
