"""Basket assets: frequent itemsets, association rules and product bundles. Logic lives in pipeline.baskets."""

from typing import Literal

import dagster as dg
import pandas as pd
from pydantic import Field

from assets import keys
from assets._metadata import figure, preview
from assets._tables import cleaned_input, warehouse_table
from assets.checks import schema_check
from pipeline import baskets, plots_baskets
from pipeline.schemas_baskets import AssociationRules, FrequentItemsets, ProductBundles

_KINDS = ("duckdb", "pandas", "mlxtend")



class BasketConfig(dg.Config):
    """Thresholds of frequent-itemset mining and rule generation."""

    min_support: float = Field(default=0.01, description="Minimum share of baskets (invoices) holding an itemset.")
    max_len: int = Field(default=3, description="Largest itemset mined.")
    algorithm: Literal["apriori", "fpgrowth"] = Field(default="apriori", description="mlxtend miner.")
    max_basket_size: int = Field(default=250, description="Invoices with more distinct products are left out.")
    top_n_countries: int = Field(default=5, description="Countries (besides all) that get their own rules.")
    min_country_invoices: int = Field(default=100, description="Invoices a country needs to get its own rules.")
    min_support_count: int = Field(default=10, description="Absolute floor of baskets for a country's itemset.")
    min_confidence: float = Field(default=0.3, description="Minimum rule confidence.")
    min_lift: float = Field(default=1.0, description="Minimum rule lift.")


class BundleConfig(dg.Config):
    """How many bundles to publish."""

    top_n: int = Field(default=50, description="Bundles kept, strongest first.")


@warehouse_table(keys.FREQUENT_ITEMSETS, FrequentItemsets, group="baskets",
                 ins=cleaned_input("invoice", "stock_code", "description", "country"), kinds=_KINDS)
def frequent_itemsets(context: dg.AssetExecutionContext, config: BasketConfig,
                      cleaned: pd.DataFrame) -> dg.Output[pd.DataFrame]:
    """Frequent itemsets of invoice baskets (sparse matrix, mlxtend), for all countries and the largest ones."""
    summary = baskets.basket_summary(cleaned, max_basket_size=config.max_basket_size)
    context.log.info(f"mining {summary} at min_support={config.min_support} with {config.algorithm}")
    itemsets = baskets.itemsets_by_country(
        cleaned, top_n_countries=config.top_n_countries, min_invoices=config.min_country_invoices,
        min_support=config.min_support, max_len=config.max_len, algorithm=config.algorithm,
        max_basket_size=config.max_basket_size, min_support_count=config.min_support_count)
    return dg.Output(itemsets, metadata={
        "itemsets": len(itemsets), "baskets": dg.MetadataValue.json(summary),
        "by_length": dg.MetadataValue.json({str(k): int(v) for k, v in itemsets["length"].value_counts().sort_index().items()}),
        "preview": preview(itemsets)})


@warehouse_table(keys.ASSOCIATION_RULES, AssociationRules, group="baskets",
                 ins=keys.ins(itemsets=keys.FREQUENT_ITEMSETS), kinds=_KINDS)
def association_rules(config: BasketConfig, itemsets: pd.DataFrame) -> dg.Output[pd.DataFrame]:
    """Association rules with support, confidence, lift, leverage, conviction, Zhang's metric and redundancy."""
    rules = baskets.association_rules_table(itemsets, min_confidence=config.min_confidence, min_lift=config.min_lift)
    overall = rules[rules["country"].isna()]
    return dg.Output(rules, metadata={
        "rules": len(rules), "rules_all_countries": len(overall),
        "redundant": int(rules["is_redundant"].sum()),
        "plot": figure(plots_baskets.rules_scatter(rules)),
        "strongest": preview(overall.drop(columns=["antecedents", "consequents"], errors="ignore"), 15)})


@warehouse_table(keys.PRODUCT_BUNDLES, ProductBundles, group="baskets",
                 ins={**keys.ins(rules=keys.ASSOCIATION_RULES),
                      **cleaned_input("invoice", "stock_code", "description", "country", "revenue")},
                 kinds=_KINDS)
def product_bundles(config: BundleConfig, rules: pd.DataFrame, cleaned: pd.DataFrame) -> dg.Output[pd.DataFrame]:
    """The strongest rule-based bundles with descriptions, support, lift and the revenue of their products."""
    bundles = baskets.product_bundles(rules, cleaned, top_n=config.top_n)
    return dg.Output(bundles, metadata={"bundles": len(bundles), "preview": preview(bundles, 15)})


frequent_itemsets_schema = schema_check(keys.FREQUENT_ITEMSETS, FrequentItemsets)
association_rules_schema = schema_check(keys.ASSOCIATION_RULES, AssociationRules)
product_bundles_schema = schema_check(keys.PRODUCT_BUNDLES, ProductBundles)
