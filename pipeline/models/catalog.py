"""The three saved models: their names, input features, what their artifacts record, and how they score.

What belongs here: for the customer clusters, the purchase predictions and the recommender, the payload saved
(the very fitted objects that scored the warehouse tables), the manifest's features, training-data version
and metrics, and the scoring function that reproduces the table's rows from features. Not here: the artifact
format and its checks (``pipeline.models.artifacts``), the SageMaker contract (``pipeline.models.score``),
fitting (``pipeline.customers``, ``pipeline.recommend``).

Inputs of each model (one row per customer):

- ``customer_clusters``: ``customer_id``, ``recency_days``, ``frequency``, ``monetary`` (``analytics.rfm``).
- ``customer_predictions``: ``customer_id`` and ``prediction.FEATURE_COLUMNS``, as
  ``prediction.build_features(cleaned, rejected, as_of=<the manifest's reference_date>)`` returns them.
- ``recommendations``: ``customer_id``; the answer is the customer's rows of both settings.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd

from pipeline.customers import clustering, prediction
from pipeline.models.artifacts import LoadedModel, SavedModel, Store, frame_digest, save_model
from pipeline.recommend import serving

CLUSTERS = "customer_clusters"
PREDICTIONS = "customer_predictions"
RECOMMENDATIONS = "recommendations"
MODEL_NAMES: tuple[str, ...] = (CLUSTERS, PREDICTIONS, RECOMMENDATIONS)

CLUSTER_FEATURES: list[str] = ["customer_id", *clustering.RFM_COLUMNS]
PREDICTION_FEATURES: list[str] = ["customer_id", *prediction.FEATURE_COLUMNS]
RECOMMENDER_FEATURES: list[str] = ["customer_id"]
_RECOMMENDER_METRICS = ("precision_at_k", "recall_at_k", "ndcg_at_k", "hit_rate_at_k", "catalogue_coverage")


def save_clusters(
    store: Store, fit: clustering.ClusterFit, rfm: pd.DataFrame, *, random_state: int
) -> SavedModel:
    """Save the scaler and both cluster models that produced ``customer_clusters``.

    Args:
        store: Where artifacts go.
        fit: Output of ``clustering.fit_cluster_models`` on ``rfm``.
        rfm: The customers the models were fitted on.
        random_state: Seed of the fit.

    Returns:
        The saved artifact.
    """
    model = fit.model
    sizes = fit.profiles.set_index(["model", "cluster"])["customers"]
    return save_model(
        store,
        CLUSTERS,
        model,
        features=CLUSTER_FEATURES,
        training={"version": frame_digest(rfm[CLUSTER_FEATURES]), "rows": len(rfm), "table": "analytics.rfm"},
        parameters={
            "k": int(model.kmeans.n_clusters),
            "gmm_covariance_type": model.gmm.covariance_type,
            "random_state": random_state,
        },
        metrics={
            "kmeans_inertia": float(model.kmeans.inertia_),
            "gmm_lower_bound": float(model.gmm.lower_bound_),
            "kmeans_cluster_sizes": [int(v) for v in sizes["kmeans"]],
            "gmm_cluster_sizes": [int(v) for v in sizes["gmm"]],
        },
    )


def save_predictions(store: Store, fit: prediction.PredictionFit, *, random_state: int) -> SavedModel:
    """Save the production hurdle model that produced ``customer_predictions``.

    Args:
        store: Where artifacts go.
        fit: Output of ``prediction.fit_and_predict``.
        random_state: Seed of the fit.

    Returns:
        The saved artifact; its metrics are the model's rows of the temporal-holdout evaluation.
    """
    evaluation = fit.evaluation
    calibration = evaluation["metric"].str.startswith("calibration")
    headline = evaluation[(evaluation["model"] == "model") & ~calibration]
    return save_model(
        store,
        PREDICTIONS,
        fit.model,
        features=PREDICTION_FEATURES,
        training={
            "version": frame_digest(fit.training),
            "rows": len(fit.training),
            "table": "staging.cleaned_transactions (stacked labelled windows)",
            "reference_date": fit.reference_date.date().isoformat(),
        },
        parameters={"horizon_days": fit.horizon_days, "random_state": random_state},
        metrics={f"{row.target}_{row.metric}": float(row.value) for row in headline.itertuples()},
    )


def save_recommender(
    store: Store, tables: serving.RecommenderTables, cleaned: pd.DataFrame
) -> SavedModel:
    """Save the fitted hybrid, its tuned weights and serving settings that produced ``recommendations``.

    Args:
        store: Where artifacts go.
        tables: Output of ``serving.recommend_and_evaluate`` (with its ``model``).
        cleaned: The sales lines it was fitted on.

    Returns:
        The saved artifact; its metrics are the hybrid's rows of the evaluation, when there is one.
    """
    model = tables.model
    if model is None:
        raise ValueError("the recommender tables carry no served model to save")
    metrics: dict[str, Any] = {}
    if tables.evaluation is not None:
        hybrid = tables.evaluation[tables.evaluation["model"] == "hybrid"]
        for row in hybrid.itertuples():
            for metric in _RECOMMENDER_METRICS:
                metrics[f"{row.setting}_{metric}"] = float(getattr(row, metric))
    history = model.hybrid.history_
    return save_model(
        store,
        RECOMMENDATIONS,
        model,
        features=RECOMMENDER_FEATURES,
        training={
            "version": frame_digest(cleaned),
            "rows": len(cleaned),
            "table": "staging.cleaned_transactions",
            "customers": len(history.customer_ids),
            "products": len(history.stock_codes),
        },
        parameters={
            "k": model.k,
            "settings": list(model.settings),
            "weights": {name: dict(weights) for name, weights in model.weights.items()},
        },
        metrics=metrics,
    )


def _score_clusters(model: clustering.ClusterModel, features: pd.DataFrame) -> pd.DataFrame:
    return clustering.assign_clusters(features, model)


def _score_predictions(model: prediction.HurdleModel, features: pd.DataFrame) -> pd.DataFrame:
    return prediction.score_customers(model, features)


def _score_recommendations(model: serving.ServedRecommender, features: pd.DataFrame) -> pd.DataFrame:
    return serving.serve_customers(model, features["customer_id"])


_SCORERS: dict[str, tuple[list[str], Callable[[Any, pd.DataFrame], pd.DataFrame]]] = {
    CLUSTERS: (CLUSTER_FEATURES, _score_clusters),
    PREDICTIONS: (PREDICTION_FEATURES, _score_predictions),
    RECOMMENDATIONS: (RECOMMENDER_FEATURES, _score_recommendations),
}


def score(model: LoadedModel, features: pd.DataFrame) -> pd.DataFrame:
    """Score customers with a loaded model: the rows its table would hold for them.

    Args:
        model: A loaded artifact of one of :data:`MODEL_NAMES`.
        features: One row per customer with the model's input columns (see the module docstring); other
            columns are ignored.

    Returns:
        ``customer_clusters`` / ``customer_predictions`` rows in the order of ``features``, or
        ``recommendations`` rows sorted by setting, customer and rank.

    Raises:
        ValueError: For an unknown model or missing input columns.
    """
    if model.name not in _SCORERS:
        raise ValueError(f"no scorer for model {model.name!r}; known models: {list(_SCORERS)}")
    columns, scorer = _SCORERS[model.name]
    missing = [column for column in columns if column not in features.columns]
    if missing:
        raise ValueError(f"{model.name} needs input columns {missing}")
    return scorer(model.payload, features[columns].reset_index(drop=True))
