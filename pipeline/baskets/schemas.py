"""Pandera models of the basket tables (``pipeline.baskets.basket_analysis``).

What belongs here: one ``DataFrameModel`` per table those modules produce, strict and coercing, with the
value ranges and cross-column invariants a downstream reader relies on. No transformations.

List columns (``items``, ``antecedents``...) hold Python lists when built and come back from DuckDB as
NumPy arrays, so their checks accept any list-like of strings.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from pipeline.baskets.basket_analysis import MAX_CONVICTION

# Metrics are recomputed from rounded floats; this is far below any meaningful difference.
_TOLERANCE = 1e-9


def _is_string_list(value: object) -> bool:
    """A non-empty list, tuple or 1-d array of strings."""
    if not isinstance(value, list | tuple | np.ndarray) or len(value) == 0:
        return False
    return all(isinstance(item, str) for item in value)


def _is_code_set(value: object) -> bool:
    """A non-empty list-like of distinct strings in ascending order (a canonical itemset)."""
    return _is_string_list(value) and all(a < b for a, b in zip(value[:-1], value[1:], strict=True))


def _lengths(column: pd.Series) -> pd.Series:
    """Length of every list in a column."""
    return pd.Series(np.fromiter(map(len, column), dtype=np.int64, count=len(column)), index=column.index)


def _disjoint(left: Iterable, right: Iterable) -> bool:
    """Whether two itemsets share no product."""
    return not set(left) & set(right)


def _flat_strings(column: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Items of a column of lists, the row position of each and each row's length.

    Returns:
        None unless every value is a list, tuple or 1-d array of ``str`` (other cases keep the Python checks).
    """
    values = column.to_numpy()
    kinds = set(map(type, values))
    if not kinds <= {list, tuple, np.ndarray}:
        return None
    try:
        lengths = np.fromiter(map(len, values), dtype=np.int64, count=len(values))
        if kinds == {np.ndarray}:
            items = np.concatenate(values).astype(object, copy=False)
        else:
            items = np.fromiter(itertools.chain.from_iterable(values), dtype=object, count=int(lengths.sum()))
    except (TypeError, ValueError):
        return None
    if len(items) != lengths.sum():
        return None
    if len(items) and pd.api.types.infer_dtype(items, skipna=False) != "string":
        return None
    return items, np.repeat(np.arange(len(values)), lengths), lengths


def _string_lists(column: pd.Series) -> pd.Series:
    """``_is_string_list`` of every value, without a Python loop per item when all are lists of strings."""
    flat = _flat_strings(column)
    if flat is None:
        return column.map(_is_string_list).astype(bool)
    return pd.Series(flat[2] > 0, index=column.index)


def _code_sets(column: pd.Series) -> pd.Series:
    """``_is_code_set`` of every value, without a Python loop per item when all are lists of strings."""
    flat = _flat_strings(column)
    if flat is None:
        return column.map(_is_code_set).astype(bool)
    items, rows, lengths = flat
    # Each item must be below the next one of the same list (Python's str order, as in _is_code_set).
    same_list = rows[1:] == rows[:-1]
    ascending = (items[:-1] < items[1:]).astype(bool)
    unsorted = np.zeros(len(column), dtype=bool)
    unsorted[rows[1:][same_list & ~ascending]] = True
    return pd.Series((lengths > 0) & ~unsorted, index=column.index)


def _disjoint_rows(left: pd.Series, right: pd.Series) -> pd.Series:
    """Per row, whether the itemsets of two columns share no item (``_disjoint`` row by row)."""
    left_flat, right_flat = _flat_strings(left), _flat_strings(right)
    if left_flat is None or right_flat is None:
        # Items other than strings (None, numbers...): keep Python's set semantics exactly.
        return pd.Series([_disjoint(a, c) for a, c in zip(left, right, strict=True)], index=left.index)
    # Strings are equal exactly when their factorized codes are: a shared (row, code) pair is a shared item.
    codes, uniques = pd.factorize(np.concatenate([left_flat[0], right_flat[0]]))
    width = max(len(uniques), 1)
    left_keys = left_flat[1] * width + codes[: len(left_flat[0])]
    right_keys = right_flat[1] * width + codes[len(left_flat[0]) :]
    shared = np.zeros(len(left), dtype=bool)
    shared[left_flat[1][pd.Series(left_keys).isin(right_keys).to_numpy()]] = True
    return pd.Series(~shared, index=left.index)


def _code_set_check(*columns: str) -> classmethod:
    """Column check that every value of ``columns`` is a canonical itemset (see ``_is_code_set``).

    Each list's verdict depends on that list alone (``determined_by_unique``): the SQL route of the schema
    check may run it on distinct lists only.
    """

    @pa.check(*columns, name="sorted_distinct_codes", determined_by_unique=True)
    def _check(cls, values: pd.Series) -> pd.Series:
        return _code_sets(values)

    return _check


def _string_list_check(*columns: str) -> classmethod:
    """Column check that every value of ``columns`` is a non-empty list of strings (distinct lists only)."""

    @pa.check(*columns, name="string_lists", determined_by_unique=True)
    def _check(cls, values: pd.Series) -> pd.Series:
        return _string_lists(values)

    return _check


def _items_counted_check(name: str, count: str) -> classmethod:
    """Dataframe check that ``items`` and ``descriptions`` both hold ``count`` (a column) entries per row."""

    @pa.dataframe_check(name=name)
    def _check(cls, df: pd.DataFrame) -> pd.Series:
        return (_lengths(df["items"]) == df[count]) & (_lengths(df["descriptions"]) == df[count])

    return _check


def _one_row_per_items_check(name: str) -> classmethod:
    """Dataframe check that no two rows hold the same ``items`` for the same ``country`` (null included)."""

    @pa.dataframe_check(name=name)
    def _check(cls, df: pd.DataFrame) -> bool:
        keys = pd.DataFrame({"items": df["items"].map(tuple), "country": df["country"].fillna("\x00")})
        return not keys.duplicated().any()

    return _check


class _BasketTable(pa.DataFrameModel):
    """Configuration shared by the basket tables; declares no column, so each model keeps its column order.

    A model's ``_check_columns`` lists the columns each of its dataframe-level checks reads: the SQL route of
    the schema check (``pipeline.warehouse.validation``) loads only these.
    """

    class Config:
        """Reject unknown columns and coerce dtypes."""

        strict = True
        coerce = True


class FrequentItemsets(_BasketTable):
    """One row per frequent itemset of one basket universe (all countries or one country)."""

    itemset_id: Series[int] = pa.Field(ge=0, unique=True, description="Itemset number.")
    items: Series[object] = pa.Field(description="Stock codes, sorted and distinct.")
    descriptions: Series[object] = pa.Field(description="One description per item, same order.")
    length: Series[int] = pa.Field(ge=1, description="Number of items.")
    support: Series[float] = pa.Field(
        gt=0, le=1, description="Share of baskets (invoices) holding every item."
    )
    support_count: Series[int] = pa.Field(ge=1, description="Baskets holding every item.")
    country: Series[str] = pa.Field(nullable=True, description="Null for the all-countries itemsets.")

    _check_columns = {
        "length_matches_items": ("items", "descriptions", "length"),
        "one_row_per_itemset_and_country": ("items", "country"),
    }

    _items_are_sets = _code_set_check("items")
    _descriptions_are_lists = _string_list_check("descriptions")
    _length_matches = _items_counted_check("length_matches_items", "length")
    _unique_itemsets = _one_row_per_items_check("one_row_per_itemset_and_country")


class AssociationRules(_BasketTable):
    """One row per association rule ``antecedents -> consequents`` of one basket universe."""

    rule_id: Series[int] = pa.Field(ge=0, unique=True, description="Rule number.")
    antecedents: Series[object] = pa.Field(description="Stock codes of the 'if bought' side, sorted.")
    consequents: Series[object] = pa.Field(description="Stock codes of the 'then bought' side, sorted.")
    antecedent_descriptions: Series[object] = pa.Field(
        description="Descriptions of the antecedents, same order."
    )
    consequent_descriptions: Series[object] = pa.Field(
        description="Descriptions of the consequents, same order."
    )
    antecedent_support: Series[float] = pa.Field(
        gt=0, le=1, description="Share of baskets holding the antecedents."
    )
    consequent_support: Series[float] = pa.Field(
        gt=0, le=1, description="Share of baskets holding the consequents."
    )
    support: Series[float] = pa.Field(gt=0, le=1, description="Share of baskets holding both sides.")
    confidence: Series[float] = pa.Field(
        gt=0, le=1 + _TOLERANCE, description="support / antecedent_support: P(consequents | antecedents)."
    )
    lift: Series[float] = pa.Field(
        gt=0, description="confidence / consequent_support; above 1 = bought together more than by chance."
    )
    leverage: Series[float] = pa.Field(
        ge=-0.25, le=0.25, description="support - antecedent_support x consequent_support."
    )
    conviction: Series[float] = pa.Field(
        gt=0, le=MAX_CONVICTION, description="(1 - consequent_support) / (1 - confidence), capped at 1e6."
    )
    zhangs_metric: Series[float] = pa.Field(
        ge=-1 - _TOLERANCE, le=1 + _TOLERANCE, description="Zhang's association measure in [-1, 1]."
    )
    is_redundant: Series[bool] = pa.Field(
        description="A rule with the same consequents and a smaller antecedent is at least as confident."
    )
    country: Series[str] = pa.Field(nullable=True, description="Null for the all-countries rules.")

    _check_columns = {
        "sides_disjoint": ("antecedents", "consequents"),
        "descriptions_match_sides": (
            "antecedents", "consequents", "antecedent_descriptions", "consequent_descriptions"
        ),
        "support_within_sides": ("support", "antecedent_support", "consequent_support"),
        "confidence_and_lift_consistent": (
            "support", "antecedent_support", "consequent_support", "confidence", "lift"
        ),
    }

    _sides_are_sets = _code_set_check("antecedents", "consequents")
    _descriptions_are_lists = _string_list_check("antecedent_descriptions", "consequent_descriptions")

    @pa.dataframe_check(name="sides_disjoint")
    def _sides_disjoint(cls, df: pd.DataFrame) -> pd.Series:
        return _disjoint_rows(df["antecedents"], df["consequents"])

    @pa.dataframe_check(name="descriptions_match_sides")
    def _descriptions_match(cls, df: pd.DataFrame) -> pd.Series:
        return (_lengths(df["antecedents"]) == _lengths(df["antecedent_descriptions"])) & (
            _lengths(df["consequents"]) == _lengths(df["consequent_descriptions"])
        )

    @pa.dataframe_check(name="support_within_sides")
    def _support_bounded(cls, df: pd.DataFrame) -> pd.Series:
        return df["support"] <= np.minimum(df["antecedent_support"], df["consequent_support"]) + _TOLERANCE

    @pa.dataframe_check(name="confidence_and_lift_consistent")
    def _metrics_consistent(cls, df: pd.DataFrame) -> pd.Series:
        confidence = df["support"] / df["antecedent_support"]
        lift = confidence / df["consequent_support"]
        consistent = np.isclose(df["confidence"], confidence, rtol=_TOLERANCE, atol=0) & np.isclose(
            df["lift"], lift, rtol=_TOLERANCE, atol=0
        )
        return pd.Series(consistent, index=df.index)


class ProductBundles(_BasketTable):
    """One row per product bundle derived from the strongest non-redundant rules."""

    bundle_id: Series[int] = pa.Field(ge=0, unique=True, description="Bundle number, strongest first.")
    items: Series[object] = pa.Field(description="Stock codes in the bundle, sorted.")
    descriptions: Series[object] = pa.Field(description="Descriptions of the items, same order.")
    size: Series[int] = pa.Field(ge=2, description="Number of products.")
    support: Series[float] = pa.Field(gt=0, le=1, description="Support of the rule the bundle comes from.")
    confidence: Series[float] = pa.Field(gt=0, le=1 + _TOLERANCE, description="Confidence of that rule.")
    lift: Series[float] = pa.Field(gt=0, description="Lift of that rule.")
    bundle_revenue: Series[float] = pa.Field(
        ge=0, description="Revenue of the bundle's products over all invoices, GBP."
    )
    joint_revenue: Series[float] = pa.Field(
        ge=0, description="Their revenue on invoices holding the whole bundle, GBP."
    )
    invoices_with_all: Series[int] = pa.Field(
        ge=0, description="Invoices holding every product of the bundle."
    )
    country: Series[str] = pa.Field(nullable=True, description="Null for the all-countries bundles.")

    _check_columns = {
        "size_matches_items": ("items", "descriptions", "size"),
        "joint_revenue_within_bundle_revenue": ("joint_revenue", "bundle_revenue"),
        "distinct_bundles": ("items", "country"),
    }

    _items_are_sets = _code_set_check("items")
    _descriptions_are_lists = _string_list_check("descriptions")
    _size_matches = _items_counted_check("size_matches_items", "size")

    @pa.dataframe_check(name="joint_revenue_within_bundle_revenue")
    def _joint_within_total(cls, df: pd.DataFrame) -> pd.Series:
        return df["joint_revenue"] <= df["bundle_revenue"] * (1 + _TOLERANCE)

    _distinct = _one_row_per_items_check("distinct_bundles")
