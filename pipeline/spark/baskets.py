"""Frequent itemsets with Spark MLlib's FP-growth, and the association rules of ``pipeline.baskets`` in Spark.

What belongs here: :func:`itemsets_and_summary` (baskets, country selection and product descriptions in
Spark SQL, itemsets by ``pyspark.ml.fpm.FPGrowth``) and :func:`association_rules_table` (every rule of every
itemset, its metrics and the redundancy flag, in Spark SQL). Both follow the conventions of
``pipeline.baskets.basket_analysis`` (module docstring there) and take its :class:`RuleMining` settings, so
the tables are the embedded ones: same itemsets and counts, same rules, same floating-point formulas, same
row order and ids.

Two gaps of Spark's FP-growth are closed here. It has no ``max_len``: it mines every length and the longer
itemsets are dropped (the same set, at the cost of mining them). Its rules have one-item consequents only:
the rules are therefore derived from the itemsets in SQL (every split of every itemset into antecedent and
consequent), as the embedded table does, not by ``FPGrowthModel.associationRules``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from pyspark.ml.fpm import FPGrowth
from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from pipeline.baskets.basket_analysis import ITEMSET_COLUMNS, MAX_CONVICTION, RULE_COLUMNS, RuleMining
from pipeline.spark.session import ParquetStage

# Items of an itemset joined by the unit separator: the key of an itemset and its text order, as in
# pipeline.baskets.basket_analysis.
_SEPARATOR = "\x1f"
_TRIM = r"(?U)^\s+|\s+$"


def _empty(columns: Sequence[str]) -> pd.DataFrame:
    return pd.DataFrame({column: pd.Series(dtype=object) for column in columns})


def _lists(column: pd.Series) -> np.ndarray:
    """Arrow-collected arrays as plain Python lists, one object cell each (what the embedded tables hold)."""
    return np.fromiter((list(value) for value in column), dtype=object, count=len(column))


def _descriptions(lines: DataFrame) -> DataFrame:
    """One row per stock code: its most frequent stripped, non-blank description, ties alphabetical.

    The rule of ``pipeline.common.codes.most_frequent_texts``; Spark orders strings by their UTF-8 bytes,
    which is code-point order, as Python's.
    """
    text = F.regexp_replace(F.col("description"), _TRIM, "")
    counted = (
        lines.filter(F.col("stock_code").isNotNull() & F.col("description").isNotNull())
        .withColumn("text", text)
        .filter(F.col("text") != "")
        .groupBy("stock_code", "text")
        .count()
    )
    best = Window.partitionBy("stock_code").orderBy(F.col("count").desc(), F.col("text").asc())
    return (
        counted.withColumn("place", F.row_number().over(best))
        .filter(F.col("place") == 1)
        .select("stock_code", F.col("text").alias("description"))
    )


def _description_map(descriptions: DataFrame) -> DataFrame:
    """A one-row frame holding ``stock_code -> description`` as a map column ``names``."""
    return descriptions.agg(
        F.map_from_entries(F.collect_list(F.struct("stock_code", "description"))).alias("names")
    )


def _describe(items: Column) -> Column:
    """Each item's description from the ``names`` map, or the code itself."""
    return F.transform(items, lambda item: F.coalesce(F.col("names")[item], item))


def _select_countries(pairs: DataFrame, *, top_n: int | None, min_invoices: int) -> list[str]:
    """``basket_analysis.select_countries``: most invoices first, ties by name, at least ``min_invoices``."""
    counts = (
        pairs.filter(F.col("country").isNotNull())
        .groupBy("country")
        .agg(F.countDistinct("invoice").alias("n"))
        .filter(F.col("n") >= min_invoices)
        .orderBy(F.col("n").desc(), F.col("country").asc())
    )
    if top_n is not None:
        counts = counts.limit(top_n)
    return [row["country"] for row in counts.collect()]


def _summary(lines: DataFrame, pairs: DataFrame, max_basket_size: int | None) -> dict[str, int | None]:
    """``basket_analysis.basket_summary`` of the lines."""
    invoiced = lines.filter(F.col("invoice").isNotNull())
    n_invoices = invoiced.select("invoice").distinct().count()
    products = lines.filter(F.col("stock_code").isNotNull()).select("stock_code").distinct().count()
    giants, giant_lines = 0, 0
    if max_basket_size is not None:
        sizes = pairs.select("invoice", "stock_code").distinct().groupBy("invoice").count()
        giant = sizes.filter(F.col("count") > max_basket_size).select("invoice")
        giants = giant.count()
        giant_lines = invoiced.join(giant, "invoice", "left_semi").count() if giants else 0
    return {
        "invoices": n_invoices,
        "baskets_mined": n_invoices - giants,
        "giant_baskets_excluded": giants,
        "giant_basket_lines_excluded": giant_lines,
        "products": products,
        "max_basket_size": max_basket_size,
    }


def _mine_scope(
    pairs: DataFrame, mining: RuleMining, *, country: str | None, order: int
) -> DataFrame | None:
    """FP-growth on the baskets of one universe; ``None`` when nothing is frequent.

    Returns the itemsets with ``scope`` (the universe's position), ``country``, sorted ``items``,
    ``support_count`` and ``n_baskets``.
    """
    scoped = pairs if country is None else pairs.filter(F.col("country") == country)
    baskets = scoped.groupBy("invoice").agg(F.array_sort(F.collect_set("stock_code")).alias("items"))
    if mining.max_basket_size is not None:
        baskets = baskets.filter(F.size("items") <= mining.max_basket_size)
    baskets = baskets.cache()
    n_baskets = baskets.count()
    min_count = max(math.ceil(mining.min_support * n_baskets - 1e-9), int(mining.min_support_count), 1)
    if n_baskets == 0 or min_count > n_baskets:
        baskets.unpersist()
        return None
    # Spark keeps itemsets with freq >= ceil(minSupport * n): half a basket below the integer threshold
    # makes that exactly min_count, whatever the rounding of the division.
    # One FP-tree partition per core: more partitions each rebuild deep trees from the same long baskets.
    partitions = pairs.sparkSession.sparkContext.defaultParallelism
    miner = FPGrowth(itemsCol="items", minSupport=(min_count - 0.5) / n_baskets, numPartitions=partitions)
    model = miner.fit(baskets)
    found = model.freqItemsets.filter(F.col("freq") >= min_count)
    if mining.max_len is not None:
        found = found.filter(F.size("items") <= mining.max_len)
    found = found.select(
        F.lit(order).alias("scope"),
        F.lit(country).cast("string").alias("country"),
        F.array_sort("items").alias("items"),
        F.col("freq").cast("long").alias("support_count"),
        F.lit(n_baskets).cast("long").alias("n_baskets"),
    ).cache()
    found.count()
    baskets.unpersist()
    return found


def itemsets_and_summary(
    spark: SparkSession,
    cleaned: pd.DataFrame,
    mining: RuleMining | None = None,
    *,
    stage: ParquetStage,
    countries: Sequence[str] | None = None,
    top_n_countries: int | None = 5,
    min_invoices: int = 100,
    include_all: bool = True,
) -> tuple[pd.DataFrame, dict[str, int | None]]:
    """Mine frequent itemsets with FP-growth, for all countries and each chosen country.

    The table and summary of :func:`pipeline.baskets.basket_analysis.itemsets_and_summary` for the same lines
    and settings: each universe's baskets (distinct products per invoice, giant baskets left out when
    ``mining.max_basket_size`` is set), the support threshold on exact counts
    (``max(ceil(min_support * n), min_support_count)``), itemsets up to ``mining.max_len`` items, ordered
    by universe (all countries first, then countries as chosen), length, count descending and items.

    Args:
        spark: The session.
        cleaned: Cleaned transactions (``invoice``, ``stock_code``, ``description``, ``country``).
        mining: The itemset settings (its rule thresholds are not used); default ``RuleMining()``. Its
            ``algorithm`` is ignored: Spark always runs FP-growth.
        stage: Where the lines are written as parquet for Spark to read.
        countries: Countries to mine separately; by default the ``top_n_countries`` with the most invoices,
            each with at least ``min_invoices``.
        top_n_countries: How many countries to choose; ``None`` for all.
        min_invoices: Invoices a chosen country needs.
        include_all: Also mine all countries together (rows with a null ``country``).

    Returns:
        The itemsets (columns and dtypes of ``analytics.frequent_itemsets``) and the basket summary.
    """
    mining = RuleMining() if mining is None else mining
    lines = stage.put("basket_lines", cleaned[["invoice", "stock_code", "description", "country"]])
    valid = lines.filter(F.col("invoice").isNotNull() & F.col("stock_code").isNotNull())
    pairs = valid.select("invoice", "stock_code", "country").distinct().cache()
    try:
        summary = _summary(lines, pairs, mining.max_basket_size)
        if countries is None:
            countries = _select_countries(pairs, top_n=top_n_countries, min_invoices=min_invoices)
        scopes: list[str | None] = ([None] if include_all else []) + list(countries)
        parts = [_mine_scope(pairs, mining, country=scope, order=i) for i, scope in enumerate(scopes)]
        parts = [part for part in parts if part is not None]
        if not parts:
            return _empty(ITEMSET_COLUMNS), summary
        found = parts[0]
        for part in parts[1:]:
            found = found.unionByName(part)
        names = F.broadcast(_description_map(_descriptions(lines)))
        table = (
            found.crossJoin(names)
            .select(
                "scope",
                "items",
                _describe(F.col("items")).alias("descriptions"),
                F.size("items").cast("long").alias("length"),
                (F.col("support_count") / F.col("n_baskets")).alias("support"),
                "support_count",
                "country",
                F.concat_ws(_SEPARATOR, "items").alias("key"),
            )
            .orderBy("scope", "length", F.col("support_count").desc(), "key")
            .toPandas()
        )
        for part in parts:
            part.unpersist()
    finally:
        pairs.unpersist()
    table["items"] = _lists(table["items"])
    table["descriptions"] = _lists(table["descriptions"])
    table["itemset_id"] = np.arange(len(table), dtype=np.int64)
    table["country"] = table["country"].astype(object).where(table["country"].notna(), None)
    return table[ITEMSET_COLUMNS].reset_index(drop=True), summary


def _split(sets: DataFrame, items: str, mask_name: str) -> DataFrame:
    """Every split of ``items`` in two non-empty parts: a row per mask, ``part`` (bits set) and ``rest``."""
    masks = F.explode(F.expr(f"sequence(1, shiftleft(1, size({items})) - 2)"))
    return sets.withColumn(mask_name, masks).withColumns(
        {
            "part": F.expr(f"filter({items}, (x, i) -> (shiftright({mask_name}, i) & 1) = 1)"),
            "rest": F.expr(f"filter({items}, (x, i) -> (shiftright({mask_name}, i) & 1) = 0)"),
        }
    )


def _lookup(frame: DataFrame, sets: DataFrame, items: Column, prefix: str) -> DataFrame:
    """Join each row's itemset ``items`` (sorted) to its row of ``sets``: ``<prefix>_support``/``_count``."""
    found = sets.select(
        F.col("country").alias(f"{prefix}_country"),
        F.col("key").alias(f"{prefix}_key"),
        F.col("support").alias(f"{prefix}_support"),
        F.col("support_count").alias(f"{prefix}_count"),
    )
    condition = F.col("country").eqNullSafe(F.col(f"{prefix}_country")) & (
        F.concat_ws(_SEPARATOR, items) == F.col(f"{prefix}_key")
    )
    return frame.join(found, condition, "left").drop(f"{prefix}_country", f"{prefix}_key")


def _require(frame: DataFrame, *columns: str) -> None:
    """Raise like the embedded miner when a subset of an itemset is not in the table."""
    missing = frame.filter(F.greatest(*(F.col(c).isNull() for c in columns))).limit(1).collect()
    if missing:
        raise KeyError("itemsets table is not closed under subsets (not a complete miner output)")


def association_rules_table(
    spark: SparkSession,
    itemsets: pd.DataFrame,
    *,
    stage: ParquetStage,
    min_confidence: float = 0.3,
    min_lift: float = 1.0,
) -> pd.DataFrame:
    """Derive association rules from frequent itemsets with Spark SQL.

    The table of :func:`pipeline.baskets.basket_analysis.association_rules_table` for the same itemsets: every
    split of every itemset of two or more items into antecedent and consequent, per universe (``country``),
    with mlxtend's formulas on the table's supports (``confidence = (s_AC * n) / (s_A * n)`` with ``n``
    recovered as ``support_count / support``, lift, leverage, conviction capped at ``MAX_CONVICTION``,
    Zhang's metric), the confidence and lift thresholds, and ``is_redundant`` decided on integer counts
    (a strict subset of the antecedent implies the consequent at least as confidently). Rows are ordered by
    universe (all countries first, then by name), lift, confidence and support descending, then antecedent
    and consequent text; descriptions come from the single-item rows.

    Args:
        spark: The session.
        itemsets: Output of :func:`itemsets_and_summary` (or of the embedded miner).
        stage: Where the itemsets are written as parquet for Spark to read.
        min_confidence: Keep rules with at least this confidence.
        min_lift: Keep rules with at least this lift.

    Returns:
        One row per rule with the columns and dtypes of ``analytics.association_rules``.

    Raises:
        KeyError: A subset of an itemset is missing from the table.
    """
    if itemsets.empty:
        return _empty(RULE_COLUMNS)
    staged = stage.put(
        "rule_itemsets",
        itemsets[["items", "descriptions", "support", "support_count", "country"]].astype(
            {"support": "float64", "support_count": "int64"}
        ),
    )
    n_per_country = staged.groupBy("country").agg(
        F.round(F.median(F.col("support_count") / F.col("support"))).cast("long").alias("n")
    )
    sets = (
        staged.withColumn("items", F.array_sort("items"))
        .withColumn("key", F.concat_ws(_SEPARATOR, "items"))
        .join(n_per_country, staged["country"].eqNullSafe(n_per_country["country"]))
        .drop(n_per_country["country"])
        .cache()
    )
    singles = sets.filter(F.size("items") == 1).groupBy(F.col("items")[0].alias("stock_code")).agg(
        F.max(F.col("descriptions")[0]).alias("description")
    )
    try:
        splits = _split(sets.filter(F.size("items") >= 2), "items", "mask").select(
            "country", "n", F.col("support").alias("s_ac"), F.col("support_count").alias("whole_count"),
            F.col("part").alias("antecedent"), F.col("rest").alias("consequent"),
        )
        splits = _lookup(splits, sets, F.col("antecedent"), "a")
        splits = _lookup(splits, sets, F.col("consequent"), "c")
        _require(splits, "a_support", "c_support")
        n = F.col("n").cast("double")
        confidence = (F.col("s_ac") * n) / (F.col("a_support") * n)
        rules = splits.withColumn("confidence", confidence).filter(F.col("confidence") >= min_confidence)
        rules = rules.withColumn("lift", F.col("confidence") / F.col("c_support"))
        rules = rules.filter(F.col("lift") >= min_lift).cache()
        rules = _with_redundancy(rules, sets)
        s_a, s_c, s_ac = F.col("a_support"), F.col("c_support"), F.col("s_ac")
        leverage = s_ac - s_a * s_c
        denominator = F.greatest(s_ac * (1 - s_a), s_a * (s_c - s_ac))
        cap = F.lit(float(MAX_CONVICTION))
        names = F.broadcast(_description_map(singles))
        table = (
            rules.crossJoin(names)
            .select(
                F.col("antecedent").alias("antecedents"),
                F.col("consequent").alias("consequents"),
                _describe(F.col("antecedent")).alias("antecedent_descriptions"),
                _describe(F.col("consequent")).alias("consequent_descriptions"),
                s_a.alias("antecedent_support"),
                s_c.alias("consequent_support"),
                s_ac.alias("support"),
                "confidence",
                "lift",
                leverage.alias("leverage"),
                F.when(F.col("confidence") < 1.0, F.least((1.0 - s_c) / (1.0 - F.col("confidence")), cap))
                .otherwise(cap)
                .alias("conviction"),
                F.when(denominator == 0, F.lit(0.0)).otherwise(leverage / denominator).alias("zhangs_metric"),
                "is_redundant",
                "country",
                F.concat_ws(_SEPARATOR, "antecedent").alias("antecedent_key"),
                F.concat_ws(_SEPARATOR, "consequent").alias("consequent_key"),
            )
            .orderBy(
                F.col("country").asc_nulls_first(),
                F.col("lift").desc(),
                F.col("confidence").desc(),
                F.col("support").desc(),
                "antecedent_key",
                "consequent_key",
            )
            .toPandas()
        )
        rules.unpersist()
    finally:
        sets.unpersist()
    if table.empty:
        return _empty(RULE_COLUMNS)
    for column in ("antecedents", "consequents", "antecedent_descriptions", "consequent_descriptions"):
        table[column] = _lists(table[column])
    table["is_redundant"] = table["is_redundant"].astype(bool)
    table["country"] = table["country"].astype(object).where(table["country"].notna(), None)
    table["rule_id"] = np.arange(len(table), dtype=np.int64)
    return table[RULE_COLUMNS].reset_index(drop=True)


def _with_redundancy(rules: DataFrame, sets: DataFrame) -> DataFrame:
    """Add ``is_redundant`` to the rules.

    A rule ``A -> C`` is redundant when a non-empty strict subset ``A'`` of ``A`` has
    ``count(A'C) * count(A) >= count(AC) * count(A')``: equal or higher confidence, compared exactly on
    integer counts.
    """
    # A rule is its universe and its two sides; \x1e keeps the parts apart, \x00 stands for all countries.
    rule = F.concat_ws(
        "\x1e",
        F.coalesce(F.col("country"), F.lit("\x00")),
        F.concat_ws(_SEPARATOR, "antecedent"),
        F.concat_ws(_SEPARATOR, "consequent"),
    )
    keyed = rules.withColumn("rule", rule)
    wide = keyed.filter(F.size("antecedent") >= 2).select(
        "rule", "country", "antecedent", "consequent", "whole_count", "a_count"
    )
    united = F.array_sort(F.concat("part", "consequent"))
    general = _split(wide, "antecedent", "sub").withColumn("united", united)
    general = _lookup(general, sets, F.col("part"), "g")
    general = _lookup(general, sets, F.col("united"), "u")
    _require(general, "g_count", "u_count")
    implied = F.col("u_count") * F.col("a_count") >= F.col("whole_count") * F.col("g_count")
    flags = general.groupBy("rule").agg(F.max(implied).alias("is_redundant"))
    return (
        keyed.join(flags, "rule", "left")
        .withColumn("is_redundant", F.coalesce(F.col("is_redundant"), F.lit(False)))
        .drop("rule")
    )
