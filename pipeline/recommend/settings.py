"""Names the recommender's tables and code agree on: components, models, settings, blend weights, weight grid.

What belongs here: constants only, with no import from the rest of ``pipeline.recommend``, so the table
schemas and figures can use them without loading the models. Batch sizes and other tuning knobs of the
computation stay private in the module that uses them.
"""

from __future__ import annotations

COMPONENT_NAMES: tuple[str, ...] = ("popularity", "buy_again", "item_knn", "svd", "rules")
MODEL_NAMES: tuple[str, ...] = (*COMPONENT_NAMES, "hybrid")
SETTINGS: dict[str, bool] = {"any": False, "new_only": True}
"""Setting name -> ``exclude_purchased``."""

DEFAULT_WEIGHTS: dict[str, dict[str, float]] = {
    "any": {"popularity": 1.0, "buy_again": 2.0, "item_knn": 1.0, "svd": 1.0, "rules": 1.0},
    "new_only": {"popularity": 1.0, "buy_again": 0.0, "item_knn": 1.0, "svd": 1.0, "rules": 1.0},
}
"""Untuned blend weights per setting, used by a ``HybridRecommender`` created without ``weights``. The
pipeline tunes them instead (``pipeline.recommend.tuning.tune_hybrid_weights``)."""

WEIGHT_GRID: tuple[float, ...] = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)
"""Candidate values of each blend weight in the coordinate ascent of the tuning."""
