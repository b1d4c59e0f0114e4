"""Analytic settings that more than one asset reads, configured once as resources.

Rule mining: the rules table (``analytics.association_rules``, through ``analytics.frequent_itemsets``) and
the recommender (which mines the same way inside each temporal holdout, to evaluate and tune the rules it
serves) read these settings from one resource, so the rules they use can never be mined differently. Mining
itself lives in ``pipeline.baskets.basket_analysis``.

Clustering: the model-selection table and the fitted clusters read one setting of the k range, the forced k
and the seeds, so the k the selection reports is the k the clusters are fitted with. The models live in
``pipeline.customers.clustering``.
"""

from __future__ import annotations

from typing import Literal

import dagster as dg
from pydantic import Field

from pipeline.baskets import basket_analysis


class RuleMiningSettings(dg.ConfigurableResource):
    """Thresholds of itemset mining and rule generation (``pipeline.baskets.basket_analysis.RuleMining``).

    Support is textbook support over all invoices unless ``max_basket_size`` is set.
    """

    min_support: float = Field(
        default=0.01, description="Minimum share of baskets (invoices) holding an itemset."
    )
    max_len: int = Field(default=3, description="Largest itemset mined.")
    algorithm: Literal["eclat", "apriori", "fpgrowth"] = Field(
        default="eclat", description="Miner: eclat (exact sparse counts), mlxtend's apriori or fpgrowth."
    )
    max_basket_size: int | None = Field(
        default=None,
        description="Off by default (textbook support over every invoice). When set, invoices with more "
        "distinct products are left out of the basket universe (e.g. "
        f"{basket_analysis.DEFAULT_MAX_BASKET_SIZE}, "
        "about the 99.5th percentile of basket sizes).",
    )
    min_support_count: int = Field(
        default=10,
        description="Fewest baskets an itemset needs in any universe (all countries or one); inert "
        "when min_support x invoices >= it, so only small data sets and countries feel it.",
    )
    min_confidence: float = Field(default=0.3, description="Minimum rule confidence.")
    min_lift: float = Field(default=1.0, description="Minimum rule lift.")

    def settings(self) -> basket_analysis.RuleMining:
        """The settings as the plain object that ``pipeline.baskets`` and ``pipeline.recommend`` take."""
        return basket_analysis.RuleMining(
            min_support=self.min_support,
            max_len=self.max_len,
            algorithm=self.algorithm,
            max_basket_size=self.max_basket_size,
            min_support_count=self.min_support_count,
            min_confidence=self.min_confidence,
            min_lift=self.min_lift,
        )


class ClusteringSettings(dg.ConfigurableResource):
    """Model selection and fitting of the customer clusters (see ``pipeline.customers.clustering``)."""

    k_min: int = Field(default=2, description="Smallest number of clusters tried.")
    k_max: int = Field(default=10, description="Largest number of clusters tried.")
    n_clusters: int | None = Field(default=None, description="Force k instead of the elbow rule of choose_k.")
    silhouette_sample: int = Field(default=5000, description="Customers sampled (seeded) for the silhouette.")
    mixture_sample: int | None = Field(
        default=3000,
        description="Customers sampled (seeded) to fit the model-selection mixtures on; null fits all "
        "customers. The final clusters are always fitted on all customers.",
    )
    random_state: int = Field(
        default=0, description="Seed of k-means, the mixtures and the silhouette sample."
    )
