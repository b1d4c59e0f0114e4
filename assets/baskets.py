"""Basket assets: frequent itemsets, association rules and product bundles.

Logic lives in pipeline.baskets.basket_analysis.
"""

import dataclasses

import dagster as dg
import pandas as pd
from pydantic import Field

from assets import keys
from assets._metadata import figure, preview
from assets._tables import warehouse_table
from assets.checks import schema_check
from pipeline.baskets import basket_analysis, plots
from pipeline.baskets.schemas import AssociationRules, FrequentItemsets, ProductBundles
from resources import ComputeEngine, RuleMiningSettings, Warehouse

_KINDS = ("duckdb", "pandas", "scipy")

# Mining and bundles read the cleaned lines with Arrow rather than through the IO manager: Arrow-backed text
# columns skip a Python string per cell, and coding them (pipeline.baskets.basket_analysis hashes each text
# column once) is several times faster on Arrow. Same rows, same order, same tables.
_MINED_LINES_SQL = "SELECT invoice, stock_code, description, country FROM staging.cleaned_transactions"
_BUNDLE_LINES_SQL = "SELECT invoice, stock_code, revenue FROM staging.cleaned_transactions"
# Bundles come from the all-countries, non-redundant rules: a few hundred of the table's rows. Reading only
# those in SQL spares loading every rule's four list columns into pandas (most of the step's time otherwise).
_BUNDLE_RULES_SQL = """
SELECT rule_id, antecedents, consequents, antecedent_descriptions, consequent_descriptions,
       support, confidence, lift, is_redundant, country
FROM analytics.association_rules
WHERE country IS NULL AND NOT is_redundant
"""


class BasketConfig(dg.Config):
    """Which countries get itemsets of their own (the thresholds are the ``rule_mining`` resource's)."""

    top_n_countries: int = Field(default=5, description="Countries (besides all) that get their own rules.")
    min_country_invoices: int = Field(
        default=100, description="Invoices a country needs to get its own rules.")


class BundleConfig(dg.Config):
    """How many bundles to publish."""

    top_n: int = Field(default=50, description="Bundles kept, strongest first.")


def _arrow_frame(warehouse: Warehouse, sql: str) -> pd.DataFrame:
    """The result of ``sql`` as a DataFrame of Arrow-backed columns."""
    with warehouse.connect() as conn:
        return conn.sql(sql).to_arrow_table().to_pandas(types_mapper=pd.ArrowDtype)


_CLEANED = {"cleaned": dg.AssetIn(key=keys.CLEANED_TRANSACTIONS, dagster_type=dg.Nothing)}


@warehouse_table(keys.FREQUENT_ITEMSETS, FrequentItemsets, group="baskets", ins=_CLEANED, kinds=_KINDS)
def frequent_itemsets(context: dg.AssetExecutionContext, config: BasketConfig, warehouse: Warehouse,
                      rule_mining: RuleMiningSettings, engine: ComputeEngine) -> dg.Output[pd.DataFrame]:
    """Frequent itemsets of invoice baskets (exact sparse counts), for all countries and the largest ones."""
    mining = rule_mining.settings()
    cleaned = _arrow_frame(warehouse, _MINED_LINES_SQL)
    countries = {"top_n_countries": config.top_n_countries, "min_invoices": config.min_country_invoices}
    if engine.is_spark:
        from pipeline.spark import baskets as spark_baskets  # pyspark is imported only when Spark is selected

        itemsets, summary = spark_baskets.itemsets_and_summary(
            engine.session(), cleaned, mining, stage=engine.stage(), **countries)
    else:
        itemsets, summary = basket_analysis.itemsets_and_summary(cleaned, mining, **countries)
    context.log.info(f"mined {summary} with {mining}")
    by_length = itemsets["length"].value_counts().sort_index()
    return dg.Output(itemsets, metadata={
        "itemsets": len(itemsets), "baskets": dg.MetadataValue.json(summary),
        **_mining_metadata(mining, summary), "engine": engine.name,
        "by_length": dg.MetadataValue.json({str(k): int(v) for k, v in by_length.items()}),
        "preview": preview(itemsets)})


def _mining_metadata(mining: basket_analysis.RuleMining, summary: dict | None = None) -> dict:
    """The mining settings, and the basket cap spelled out when it is on."""
    metadata = {"rule_mining": dg.MetadataValue.json(dataclasses.asdict(mining))}
    if mining.max_basket_size is not None:
        excluded = f", {summary['giant_baskets_excluded']} invoices excluded" if summary else ""
        metadata["basket_cap"] = (f"ON: invoices with more than {mining.max_basket_size} distinct products "
                                  f"are left out of the basket universe{excluded}")
    return metadata


@warehouse_table(keys.ASSOCIATION_RULES, AssociationRules, group="baskets",
                 ins=keys.ins(itemsets=keys.FREQUENT_ITEMSETS), kinds=_KINDS)
def association_rules(rule_mining: RuleMiningSettings, engine: ComputeEngine,
                      itemsets: pd.DataFrame) -> dg.Output[pd.DataFrame]:
    """Association rules with support, confidence, lift, leverage, conviction, Zhang's metric, redundancy."""
    mining = rule_mining.settings()
    thresholds = {"min_confidence": mining.min_confidence, "min_lift": mining.min_lift}
    if engine.is_spark:
        from pipeline.spark import baskets as spark_baskets  # pyspark is imported only when Spark is selected

        rules = spark_baskets.association_rules_table(engine.session(), itemsets, stage=engine.stage(),
                                                      **thresholds)
    else:
        rules = basket_analysis.association_rules_table(itemsets, **thresholds)
    overall = rules[rules["country"].isna()]
    return dg.Output(rules, metadata={
        "rules": len(rules), "rules_all_countries": len(overall),
        "redundant": int(rules["is_redundant"].sum()), **_mining_metadata(mining), "engine": engine.name,
        "plot": figure(plots.rules_scatter(rules)),
        "strongest": preview(overall.drop(columns=["antecedents", "consequents"], errors="ignore"), 15)})


@warehouse_table(keys.PRODUCT_BUNDLES, ProductBundles, group="baskets",
                 ins={"rules": dg.AssetIn(key=keys.ASSOCIATION_RULES, dagster_type=dg.Nothing), **_CLEANED},
                 kinds=_KINDS)
def product_bundles(config: BundleConfig, warehouse: Warehouse) -> dg.Output[pd.DataFrame]:
    """The strongest rule-based bundles with descriptions, support, lift and the revenue of their products."""
    with warehouse.connect() as conn:
        rules = conn.execute(_BUNDLE_RULES_SQL).df()
    cleaned = _arrow_frame(warehouse, _BUNDLE_LINES_SQL)
    bundles = basket_analysis.product_bundles(rules, cleaned, top_n=config.top_n)
    return dg.Output(bundles, metadata={"bundles": len(bundles), "preview": preview(bundles, 15)})


frequent_itemsets_schema = schema_check(keys.FREQUENT_ITEMSETS, FrequentItemsets)
association_rules_schema = schema_check(keys.ASSOCIATION_RULES, AssociationRules)
product_bundles_schema = schema_check(keys.PRODUCT_BUNDLES, ProductBundles)
