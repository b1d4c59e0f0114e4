"""Association-rule mining settings, configured once for every asset that mines or serves rules.

The rules table (``analytics.association_rules``, through ``analytics.frequent_itemsets``) and the recommender
(which mines the same way inside each temporal holdout, to evaluate and tune the rules it serves) read these
settings from one resource, so the rules they use can never be mined differently. Mining itself lives in
``pipeline.baskets.basket_analysis``.
"""

from __future__ import annotations

from typing import Literal

import dagster as dg
from pydantic import Field

from pipeline.baskets import basket_analysis


class RuleMiningSettings(dg.ConfigurableResource):
    """Thresholds of frequent-itemset mining and rule generation (see ``pipeline.baskets.basket_analysis.RuleMining``).

    Support is textbook support over all invoices unless ``max_basket_size`` is set.
    """

    min_support: float = Field(default=0.01,
                               description="Minimum share of baskets (invoices) holding an itemset.")
    max_len: int = Field(default=3, description="Largest itemset mined.")
    algorithm: Literal["eclat", "apriori", "fpgrowth"] = Field(
        default="eclat", description="Miner: eclat (exact sparse counts), mlxtend's apriori or fpgrowth.")
    max_basket_size: int | None = Field(
        default=None,
        description="Off by default (textbook support over every invoice). When set, invoices with more "
                    "distinct products are left out of the basket universe (e.g. "
                    f"{basket_analysis.DEFAULT_MAX_BASKET_SIZE}, "
                    "about the 99.5th percentile of basket sizes).")
    min_support_count: int = Field(
        default=10, description="Fewest baskets an itemset needs in any universe (all countries or one); inert "
                                "when min_support x invoices >= it, so only small data sets and countries feel it.")
    min_confidence: float = Field(default=0.3, description="Minimum rule confidence.")
    min_lift: float = Field(default=1.0, description="Minimum rule lift.")

    def settings(self) -> basket_analysis.RuleMining:
        """The settings as the plain object ``pipeline.baskets.basket_analysis`` and ``pipeline.recommend`` take."""
        return basket_analysis.RuleMining(
            min_support=self.min_support,
            max_len=self.max_len,
            algorithm=self.algorithm,
            max_basket_size=self.max_basket_size,
            min_support_count=self.min_support_count,
            min_confidence=self.min_confidence,
            min_lift=self.min_lift,
        )
