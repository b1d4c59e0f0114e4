"""Market-basket analysis: basket matrices, frequent itemsets, association rules and product bundles.

What belongs here: pure pandas/numpy/scipy logic (and the mlxtend miners as alternatives) that turns
``staging.cleaned_transactions`` into itemset, rule and bundle tables (see ``pipeline.baskets.schemas``).
Product co-purchase *graphs* live in ``pipeline.network.graphs`` and figures in ``pipeline.baskets.plots``;
nothing here imports dagster.

Conventions shared by every function in this module:

* A basket is one invoice of the cleaned transactions, guest invoices included. A product appears at most
  once per basket, however many lines or units of it the invoice has.
* Support is the textbook one: a share of *all* the invoices of the (country-filtered) cleaned
  transactions, exactly what mlxtend's ``apriori``/``fpgrowth``, R's ``arules`` or Spark's ``FPGrowth`` report
  on the same baskets. Confidence, lift and the other rule metrics use the same universe.
* Giant wholesale baskets can be left out, as an explicit option that is off by default:
  ``max_basket_size`` (suggested value :data:`DEFAULT_MAX_BASKET_SIZE` = 250, about the 99.5th percentile of
  the 2009-2010 sheet, where the median basket holds 15 products) drops every invoice with more distinct
  products than that from the universe, so support becomes a share of the remaining baskets. On that sheet the
  101 such invoices (0.5% of 20,573) alone lift the itemsets found at support 0.005 from 4,651 to 7,951.
  :func:`basket_summary` reports the cap and what it excluded.
* :class:`RuleMining` holds every setting that decides itemsets and rules; the country-level functions
  (:func:`itemsets_and_summary`, :func:`itemsets_by_country`, :func:`rules_by_country`) and :func:`mine_rules`
  take one such object, plus which countries to mine. The association-rules table and the recommender's rules
  component (served and evaluated in temporal holdouts) are mined with one such object, so what the
  evaluation measures is what is served.
* ``min_support_count`` (default 10) is a floor on the number of baskets an itemset needs, in every universe:
  a country of 300 invoices, or a one-day export, would otherwise call an itemset seen in 3 baskets frequent
  (a one-day export of 3,000 lines gives 213,000 rules without it). It only acts when ``min_support * n`` is
  below it; at the default 0.01 that means fewer than 1,000 baskets, so on real exports the all-countries
  itemsets and rules are exactly the textbook ones.
* The support threshold is applied to exact integer counts (``support_count >= ceil(min_support * n)``),
  so every miner (the default ``"eclat"``, mlxtend's apriori and FP-growth) returns identical itemsets
  whatever the floating-point rounding of ``count / n``.
* Invoices, products and countries are turned into integer codes once per call (sorted, so that code
  order is text order) and every basket universe is cut from those codes; string columns of a million
  lines are hashed once, not once per country.
"""

from __future__ import annotations

import gc
import math
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import chain, combinations
from typing import Literal, TypedDict, Unpack

import numpy as np
import pandas as pd
import scipy.sparse as sp
from mlxtend.frequent_patterns import apriori, fpgrowth

from pipeline.common.codes import coded_product_descriptions

DEFAULT_MAX_BASKET_SIZE: int = 250
"""Suggested cap on distinct products per basket, for callers that want giant invoices left out.

Mining uses no cap unless one is given (textbook support over every invoice); the product network's
projection uses this value by default."""

MAX_CONVICTION: float = 1e6
"""Finite stand-in for an infinite conviction (a rule with confidence 1).

A finite conviction is ``(1 - support(C)) / (1 - confidence)``; with counts it is at most
``(1 - support(C)) * count(A) < n_baskets``, so any table of fewer than a million baskets has all its
finite convictions below this cap, and a value equal to the cap means "never violated"."""

ITEMSET_COLUMNS: list[str] = [
    "itemset_id",
    "items",
    "descriptions",
    "length",
    "support",
    "support_count",
    "country",
]
RULE_COLUMNS: list[str] = [
    "rule_id",
    "antecedents",
    "consequents",
    "antecedent_descriptions",
    "consequent_descriptions",
    "antecedent_support",
    "consequent_support",
    "support",
    "confidence",
    "lift",
    "leverage",
    "conviction",
    "zhangs_metric",
    "is_redundant",
    "country",
]
BUNDLE_COLUMNS: list[str] = [
    "bundle_id",
    "items",
    "descriptions",
    "size",
    "support",
    "confidence",
    "lift",
    "bundle_revenue",
    "joint_revenue",
    "invoices_with_all",
    "country",
]

Algorithm = Literal["eclat", "apriori", "fpgrowth"]
ALGORITHMS: tuple[str, ...] = ("eclat", "apriori", "fpgrowth")


@dataclass(frozen=True)
class RuleMining:
    """Every setting that decides the frequent itemsets and association rules, in any basket universe.

    One object configures both the ``analytics.association_rules`` table and the recommender's rules
    component, which mines with it inside each temporal holdout (see :func:`mine_rules`): the rules the
    evaluation scores and the blend tuning weighs are mined exactly as the served ones.

    Attributes:
        min_support: Smallest share of baskets (all invoices, or those within the cap) holding an itemset,
            in ``(0, 1]``.
        max_len: Largest itemset mined; ``None`` for no limit.
        algorithm: ``"eclat"`` (exact sparse counts, the default), ``"apriori"`` or ``"fpgrowth"`` (mlxtend);
            all three return the same itemsets.
        max_basket_size: Leave out invoices with more distinct products than this; ``None`` (default) keeps
            every invoice, which gives textbook support.
        min_support_count: Fewest baskets an itemset needs whatever ``min_support`` (module docstring).
        min_confidence: Keep rules with at least this confidence.
        min_lift: Keep rules with at least this lift.
    """

    min_support: float = 0.01
    max_len: int | None = 3
    algorithm: Algorithm = "eclat"
    max_basket_size: int | None = None
    min_support_count: int = 10
    min_confidence: float = 0.3
    min_lift: float = 1.0

    def __post_init__(self) -> None:
        _check_mining_arguments(self.min_support, self.algorithm, self.max_basket_size)
        if self.min_support_count < 1:
            raise ValueError(f"min_support_count must be a positive integer, got {self.min_support_count}")
        if self.max_len is not None and self.max_len < 1:
            raise ValueError(f"max_len must be a positive integer or None, got {self.max_len}")
        if not 0.0 <= self.min_confidence <= 1.0:
            raise ValueError(f"min_confidence must be in [0, 1], got {self.min_confidence}")
        if self.min_lift < 0:
            raise ValueError(f"min_lift must be >= 0, got {self.min_lift}")


@dataclass(frozen=True)
class _BasketIndex:
    """Integer codes of the cleaned lines, computed once and shared by every basket universe.

    Attributes:
        invoices: Distinct invoices, sorted; codes index into it.
        products: Distinct stock codes, sorted.
        countries: Distinct countries (first-appearance order), empty when the frame has no ``country``.
        line_invoice: Invoice code of every line (-1 when missing).
        line_product: Product code of every line (-1 when missing).
        line_country: Country code of every line (-1 when missing or not indexed).
        invoice: Invoice code of each distinct (invoice, product, country) of the lines with an invoice
            and a product, sorted by invoice, then product, then country.
        product: Product code of the same triples.
        country: Country code of the same triples.
    """

    invoices: pd.Index
    products: pd.Index
    countries: pd.Index
    line_invoice: np.ndarray
    line_product: np.ndarray
    line_country: np.ndarray
    invoice: np.ndarray
    product: np.ndarray
    country: np.ndarray

    @classmethod
    def build(cls, cleaned: pd.DataFrame, *, by_country: bool) -> _BasketIndex:
        """Code the ``invoice``, ``stock_code`` (and, if ``by_country``, ``country``) columns."""
        line_invoice, invoices = pd.factorize(cleaned["invoice"], sort=True)
        line_product, products = pd.factorize(cleaned["stock_code"], sort=True)
        if by_country:
            line_country, countries = pd.factorize(cleaned["country"])
        else:
            line_country, countries = np.full(len(cleaned), -1, dtype=np.intp), pd.Index([], dtype=object)
        valid = (line_invoice >= 0) & (line_product >= 0)
        n_products, n_countries = max(len(products), 1), len(countries) + 1
        # One int64 per line: sorting it groups lines by invoice, then product, then country.
        key = line_invoice[valid].astype(np.int64) * n_products + line_product[valid]
        key = _sorted_unique(key * n_countries + (line_country[valid] + 1))
        pair, country = np.divmod(key, n_countries)
        invoice, product = np.divmod(pair, n_products)
        return cls(
            invoices=invoices,
            products=products,
            countries=countries,
            line_invoice=line_invoice,
            line_product=line_product,
            line_country=line_country,
            invoice=invoice,
            product=product,
            country=country - 1,
        )

    def pairs(self, country: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Distinct (invoice, product) codes of all lines or of one country's, sorted by invoice, product."""
        if country is None:
            if not len(self.countries):
                return self.invoice, self.product
            first = np.ones(len(self.invoice), dtype=bool)
            first[1:] = (self.invoice[1:] != self.invoice[:-1]) | (self.product[1:] != self.product[:-1])
            return self.invoice[first], self.product[first]
        code = self.countries.get_indexer([country])[0]
        keep = self.country == code if code >= 0 else np.zeros(len(self.country), dtype=bool)
        return self.invoice[keep], self.product[keep]

    def matrix(
        self, country: str | None = None, *, max_basket_size: int | None = None
    ) -> tuple[sp.csr_matrix, pd.Index, pd.Index]:
        """The binary basket matrix of one universe (see :func:`basket_matrix`)."""
        _check_cap(max_basket_size)
        invoice, product = self.pairs(country)
        if max_basket_size is not None and len(invoice):
            sizes = np.bincount(invoice, minlength=len(self.invoices))
            keep = sizes[invoice] <= max_basket_size
            invoice, product = invoice[keep], product[keep]
        # Pairs are sorted by invoice then product, so consecutive runs are the CSR rows, already in
        # column order; ranks of the sorted codes are the sorted labels' positions.
        new_row = np.ones(len(invoice), dtype=bool)
        new_row[1:] = invoice[1:] != invoice[:-1]
        row_codes = invoice[new_row]
        column_codes = _sorted_unique(product)
        indptr = np.append(np.flatnonzero(new_row), len(invoice))
        matrix = sp.csr_matrix(
            (np.ones(len(product), dtype=np.int8), np.searchsorted(column_codes, product), indptr),
            shape=(len(row_codes), len(column_codes)),
        )
        invoices = pd.Index(self.invoices.take(row_codes), name="invoice")
        products = pd.Index(self.products.take(column_codes), name="stock_code")
        return matrix, invoices, products

    def basket_sizes(self) -> np.ndarray:
        """Distinct products of every invoice (over all countries), by invoice code."""
        invoice, _ = self.pairs()
        return np.bincount(invoice, minlength=len(self.invoices))


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while many small lists are built.

    Every list is a tracked container, so building a few hundred thousand of them (the item and description
    lists of itemsets and rules) triggers collections that rescan every live object (in a pipeline step:
    the loaded frames and Dagster's state), which cost several times more than the lists themselves.
    Nothing built here is cyclic, so the collector has nothing to reclaim in the meantime.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _object_array(values: list) -> np.ndarray:
    """A 1-d object array holding each element as is (lists stay list cells; pandas would inspect each)."""
    return np.fromiter(values, dtype=object, count=len(values))


def _sorted_unique(values: np.ndarray) -> np.ndarray:
    """Distinct values, sorted (``np.unique`` hashes integer arrays first, which is far slower here)."""
    values = np.sort(values)
    first = np.ones(len(values), dtype=bool)
    first[1:] = values[1:] != values[:-1]
    return values[first]


def _check_cap(max_basket_size: int | None) -> None:
    if max_basket_size is not None and max_basket_size < 1:
        raise ValueError(f"max_basket_size must be a positive integer or None, got {max_basket_size}")


def basket_sizes(cleaned: pd.DataFrame) -> pd.Series:
    """Count the distinct products of every invoice.

    Args:
        cleaned: Cleaned transactions with ``invoice`` and ``stock_code`` columns.

    Returns:
        Number of distinct stock codes per invoice, indexed by invoice (sorted).
    """
    index = _BasketIndex.build(cleaned, by_country=False)
    return pd.Series(
        index.basket_sizes(), index=pd.Index(index.invoices, name="invoice"), name="distinct_products"
    )


def giant_invoices(
    cleaned: pd.DataFrame, *, max_basket_size: int | None = None
) -> pd.Index:
    """List the invoices that are too large to be mined as baskets.

    Args:
        cleaned: Cleaned transactions.
        max_basket_size: Largest number of distinct products a mined basket may hold; ``None`` means no cap.

    Returns:
        The sorted invoices with more than ``max_basket_size`` distinct products (empty when no cap).
    """
    if max_basket_size is None:
        return pd.Index([], dtype=object, name="invoice")
    _check_cap(max_basket_size)
    sizes = basket_sizes(cleaned)
    return sizes.index[sizes > max_basket_size]


def basket_matrix(
    cleaned: pd.DataFrame, *, max_basket_size: int | None = None
) -> tuple[sp.csr_matrix, pd.Index, pd.Index]:
    """Build the binary invoice x product matrix of the mined baskets.

    Args:
        cleaned: Cleaned transactions with ``invoice`` and ``stock_code`` columns.
        max_basket_size: Invoices with more distinct products than this are dropped (see the module
            docstring); ``None`` keeps every invoice.

    Returns:
        ``(matrix, invoices, products)``: a CSR matrix of ``int8`` ones with one row per kept invoice and
        one column per product bought in them, and the sorted invoice and stock-code labels of its rows and
        columns.
    """
    _check_cap(max_basket_size)
    return _BasketIndex.build(cleaned, by_country=False).matrix(max_basket_size=max_basket_size)


def basket_frame(
    cleaned: pd.DataFrame, *, max_basket_size: int | None = None
) -> pd.DataFrame:
    """Build the basket matrix as the sparse boolean DataFrame that mlxtend expects.

    Args:
        cleaned: Cleaned transactions.
        max_basket_size: See :func:`basket_matrix`.

    Returns:
        A DataFrame of ``Sparse[bool, False]`` columns, indexed by invoice, one column per stock code.
    """
    matrix, invoices, products = basket_matrix(cleaned, max_basket_size=max_basket_size)
    return _sparse_frame(matrix, invoices, products)


def _sparse_frame(matrix: sp.spmatrix, invoices: pd.Index, products: pd.Index) -> pd.DataFrame:
    """Wrap a binary matrix as a sparse boolean DataFrame (mlxtend's efficient input)."""
    with warnings.catch_warnings():
        # pandas labels the bool columns with fill value 0 (== False) and warns that it will want a bool
        # fill value in a future version; the frame is correct, so the warning is noise here.
        warnings.filterwarnings(
            "ignore", message="Allowing arbitrary scalar fill_value", category=FutureWarning
        )
        return pd.DataFrame.sparse.from_spmatrix(matrix.astype(bool), index=invoices, columns=products)


def basket_summary(
    cleaned: pd.DataFrame, *, max_basket_size: int | None = None
) -> dict[str, int | None]:
    """Summarise the basket universe that itemset mining sees.

    Args:
        cleaned: Cleaned transactions.
        max_basket_size: See :func:`basket_matrix`.

    Returns:
        Counts of invoices, mined baskets, excluded giant baskets and their lines, products, and the cap
        used, for asset metadata.
    """
    _check_cap(max_basket_size)
    return _basket_summary(_BasketIndex.build(cleaned, by_country=False), max_basket_size=max_basket_size)


def _basket_summary(index: _BasketIndex, *, max_basket_size: int | None) -> dict[str, int | None]:
    """:func:`basket_summary` on coded lines."""
    n_invoices = len(index.invoices)
    if max_basket_size is None:
        giants = np.zeros(n_invoices, dtype=bool)
    else:
        giants = index.basket_sizes() > max_basket_size
    lines = index.line_invoice[index.line_invoice >= 0]
    return {
        "invoices": n_invoices,
        "baskets_mined": n_invoices - int(giants.sum()),
        "giant_baskets_excluded": int(giants.sum()),
        "giant_basket_lines_excluded": int(giants[lines].sum()),
        "products": len(index.products),
        "max_basket_size": max_basket_size,
    }


def _describe(items: Iterable[str], descriptions: Mapping[str, str]) -> list[str]:
    """Map stock codes to descriptions, falling back to the code itself."""
    return [str(descriptions.get(item, item)) for item in items]


def _description_lookup(descriptions: Mapping[str, str]) -> Mapping[str, str]:
    """A plain dict for per-item lookups (``Series.get`` costs microseconds per call)."""
    if isinstance(descriptions, pd.Series) and descriptions.index.is_unique:
        return dict(zip(descriptions.index, descriptions.to_numpy(), strict=True))
    return descriptions


def frequent_itemsets(
    cleaned: pd.DataFrame,
    *,
    min_support: float = 0.01,
    max_len: int | None = 3,
    algorithm: Algorithm = "eclat",
    country: str | None = None,
    max_basket_size: int | None = None,
    min_support_count: int = 1,
    descriptions: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Mine the frequent itemsets of the invoice baskets on a sparse matrix.

    Args:
        cleaned: Cleaned transactions.
        min_support: Smallest share of mined baskets an itemset must appear in, in ``(0, 1]``.
        max_len: Largest itemset size; ``None`` for no limit.
        algorithm: ``"eclat"`` (depth-first, counting each prefix's extensions with one sparse product; see
            :func:`_mine_eclat`), ``"apriori"`` (mlxtend ``apriori(low_memory=True)``) or ``"fpgrowth"``
            (mlxtend); all give the same itemsets, eclat in a fraction of the time.
        country: Mine only the invoices of this country; ``None`` mines all countries.
        max_basket_size: Cap on distinct products per mined basket (module docstring); ``None`` for none.
        min_support_count: Floor on the number of baskets, so that small countries do not turn every
            combination seen once or twice into a "frequent" itemset. The threshold used is
            ``max(ceil(min_support * n_baskets), min_support_count)``.
        descriptions: Stock code to description; defaults to ``pipeline.common.codes.product_descriptions``.

    Returns:
        One row per frequent itemset (see ``pipeline.baskets.schemas.FrequentItemsets``), ordered by length,
        then support descending, then items; ``itemset_id`` numbers the rows from 0.
    """
    mining = RuleMining(
        min_support=min_support, max_len=max_len, algorithm=algorithm, max_basket_size=max_basket_size,
        min_support_count=min_support_count
    )
    return _mined_itemsets(cleaned, mining, country=country, descriptions=descriptions)


def _mined_itemsets(
    cleaned: pd.DataFrame, mining: RuleMining, *, country: str | None, descriptions: Mapping[str, str] | None
) -> pd.DataFrame:
    """:func:`frequent_itemsets` with its settings in one :class:`RuleMining` (rule thresholds unused)."""
    index = _BasketIndex.build(cleaned, by_country=country is not None)
    if descriptions is None:
        descriptions = coded_product_descriptions(cleaned["description"], index.line_product, index.products)
    return _frequent_itemsets(index, mining, country=country, descriptions=_description_lookup(descriptions))


def _check_mining_arguments(min_support: float, algorithm: str, max_basket_size: int | None) -> None:
    if not 0.0 < min_support <= 1.0:
        raise ValueError(f"min_support must be in (0, 1], got {min_support}")
    if algorithm not in ALGORITHMS:
        raise ValueError(f"algorithm must be one of {ALGORITHMS}, got {algorithm!r}")
    _check_cap(max_basket_size)


def _frequent_itemsets(
    index: _BasketIndex, mining: RuleMining, *, country: str | None, descriptions: Mapping[str, str]
) -> pd.DataFrame:
    """:func:`frequent_itemsets` on coded lines, with the settings of ``mining`` (rule thresholds unused)."""
    matrix, _, products = index.matrix(country, max_basket_size=mining.max_basket_size)
    n_baskets = matrix.shape[0]
    if n_baskets == 0:
        return _empty(ITEMSET_COLUMNS)

    # The epsilon guards against min_support * n landing a hair above an integer through rounding.
    min_count = max(math.ceil(mining.min_support * n_baskets - 1e-9), int(mining.min_support_count), 1)
    max_len, algorithm = mining.max_len, mining.algorithm
    item_counts = np.asarray(matrix.sum(axis=0)).ravel()
    frequent = np.flatnonzero(item_counts >= min_count)
    if len(frequent) == 0:
        return _empty(ITEMSET_COLUMNS)
    labels = np.asarray(products[frequent], dtype=object)
    found: list[tuple[np.ndarray, np.ndarray]] = [
        (np.arange(len(frequent))[:, None], item_counts[frequent].astype(np.int64))
    ]
    if max_len is None or max_len >= 2:
        reduced = matrix[:, frequent]
        if algorithm == "eclat":
            found.extend(_mine_eclat(reduced, min_count, max_len=max_len))
        else:
            sets, counts = _mine_multi_item_sets(
                reduced, products[frequent], min_count, max_len=max_len, algorithm=algorithm
            )
            found.extend(_group_by_length(sets, counts, labels))

    described = np.array([str(descriptions.get(code, code)) for code in labels], dtype=object)
    items: list[list[str]] = []
    texts: list[list[str]] = []
    with _gc_paused():
        for codes, _ in found:
            items.extend(labels[codes].tolist())
            texts.extend(described[codes].tolist())
    table = pd.DataFrame(
        {
            "items": _object_array(items),
            "descriptions": _object_array(texts),
            "length": np.concatenate([np.full(len(c), c.shape[1], dtype=np.int64) for c, _ in found]),
            "support_count": np.concatenate([counts for _, counts in found]),
        }
    )
    table["support"] = table["support_count"] / n_baskets
    table["country"] = country
    table["_key"] = ["\x1f".join(i) for i in items]
    table = table.sort_values(
        ["length", "support_count", "_key"], ascending=[True, False, True], kind="stable"
    )
    table = table.reset_index(drop=True)
    table["itemset_id"] = np.arange(len(table), dtype=np.int64)
    return table[ITEMSET_COLUMNS]


def _group_by_length(
    sets: list[list[str]], counts: np.ndarray, labels: np.ndarray
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Turn mlxtend's item lists into per-length arrays of column positions (ascending) and counts."""
    position = {label: k for k, label in enumerate(labels)}
    lengths = np.array([len(s) for s in sets], dtype=np.int64)
    out = []
    for length in np.unique(lengths):
        rows = np.flatnonzero(lengths == length)
        codes = np.sort(np.array([[position[i] for i in sets[r]] for r in rows], dtype=np.int64), axis=1)
        out.append((codes, np.asarray(counts, dtype=np.int64)[rows]))
    return out


def _mine_eclat(
    matrix: sp.csr_matrix, min_count: int, *, max_len: int | None
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Find every itemset of two or more columns held by at least ``min_count`` rows, with exact counts.

    Depth first over prefixes (Eclat): for a prefix ``P`` (a frequent itemset, empty at the start), the rows
    holding all of ``P`` restricted to ``P``'s frequent one-item extensions form a small sparse matrix ``S``,
    and ``S.T @ S`` counts every two-item extension ``P + {a, b}`` at once. Its frequent entries are
    emitted, and each ``P + {a}`` with at least two frequent partners ``b`` becomes a prefix in turn, over
    the rows holding ``a``. Every count is an exact integer, so the result is exactly the set of itemsets
    whose count reaches ``min_count`` (what apriori finds); the sparse products cost the sum over baskets of
    (kept items in the basket) squared, which stays small, where mlxtend's low-memory apriori densifies a
    column block over every row for each candidate prefix.

    Args:
        matrix: Binary basket matrix (baskets x frequent products).
        min_count: Minimum number of rows.
        max_len: Largest itemset size, ``None`` for no limit.

    Returns:
        ``(codes, counts)`` blocks: ``codes`` has one row per itemset and one column per item (column
        positions of ``matrix``, ascending), ``counts`` the rows holding the itemset.
    """
    found: list[tuple[np.ndarray, np.ndarray]] = []

    def visit(sub: sp.csr_matrix, prefix: np.ndarray, columns: np.ndarray) -> None:
        gram = (sub.T @ sub).tocoo()
        hit = (gram.row < gram.col) & (gram.data >= min_count)
        if not hit.any():
            return
        first, second, counts = gram.row[hit], gram.col[hit], gram.data[hit]
        order = np.lexsort((second, first))
        first, second, counts = first[order], second[order], counts[order]
        length = len(prefix) + 2
        codes = np.empty((len(first), length), dtype=np.int64)
        codes[:, : len(prefix)] = prefix
        codes[:, -2] = columns[first]
        codes[:, -1] = columns[second]
        found.append((codes, counts.astype(np.int64)))
        if max_len is not None and length >= max_len:
            return
        by_column = sub.tocsc()
        starts = np.flatnonzero(np.r_[True, first[1:] != first[:-1]])
        for start, stop in zip(starts, np.r_[starts[1:], len(first)], strict=True):
            if stop - start < 2:
                continue
            anchor = first[start]
            rows = by_column.indices[by_column.indptr[anchor] : by_column.indptr[anchor + 1]]
            partners = second[start:stop]
            visit(_block(sub, rows, partners), np.append(prefix, columns[anchor]), columns[partners])

    visit(matrix.astype(np.int32).tocsr(), np.empty(0, dtype=np.int64), np.arange(matrix.shape[1]))
    return found


def _block(matrix: sp.csr_matrix, rows: np.ndarray, columns: np.ndarray) -> sp.csr_matrix:
    """``matrix[rows][:, columns]`` gathered with NumPy, for sorted ``columns``.

    The miner cuts hundreds of small blocks; scipy's two fancy-indexing steps cost more in per-call
    overhead than the work on such a block.
    """
    starts = matrix.indptr[rows]
    lengths = matrix.indptr[rows + 1] - starts
    ends = np.cumsum(lengths)
    entries = np.repeat(starts - ends + lengths, lengths) + np.arange(ends[-1] if len(ends) else 0)
    position = np.full(matrix.shape[1], -1, dtype=np.int64)
    position[columns] = np.arange(len(columns))
    new_columns = position[matrix.indices[entries]]
    kept = new_columns >= 0
    row_of_entry = np.repeat(np.arange(len(rows)), lengths)[kept]
    indptr = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(np.bincount(row_of_entry, minlength=len(rows)), out=indptr[1:])
    return sp.csr_matrix(
        (matrix.data[entries[kept]], new_columns[kept], indptr), shape=(len(rows), len(columns))
    )


def _mine_multi_item_sets(
    matrix: sp.csr_matrix, products: pd.Index, min_count: int, *, max_len: int | None, algorithm: Algorithm
) -> tuple[list[list[str]], np.ndarray]:
    """Run mlxtend for the frequent itemsets of two or more products, with exact counts.

    Two exact reductions keep mlxtend's work small (its low-memory apriori densifies a column block over
    every row for each candidate prefix, so the cost grows with rows x products squared):

    * Columns: an itemset of two or more products is frequent only if all its pairs are (apriori
      property), so only products in a frequent pair are passed. The pairs are counted with one sparse
      product; on the 2009-2010 sheet at support 0.005 this keeps 543 of 1,225 frequent products.
    * Rows: only baskets holding at least two of those products can contain such an itemset, so the
      others are dropped. Counts of multi-product itemsets are unchanged, and a frequent pair's products
      keep counts at least the pair's, so apriori's pruning still reaches every frequent itemset.
      mlxtend's single-product rows refer to the reduced rows and are discarded (the caller has exact ones).

    Args:
        matrix: Binary basket matrix restricted to the frequent products.
        products: Stock codes of ``matrix``'s columns.
        min_count: Minimum number of baskets.
        max_len: Largest itemset size, ``None`` for no limit.
        algorithm: ``"apriori"`` or ``"fpgrowth"``.

    Returns:
        Sorted item lists and their basket counts.
    """
    paired = _items_in_frequent_pairs(matrix, min_count)
    if len(paired) == 0:
        return [], np.array([], dtype=np.int64)
    reduced = matrix[:, paired].tocsr()
    rows = np.flatnonzero(np.diff(reduced.indptr) >= 2)
    reduced = reduced[rows]
    n_rows = len(rows)
    frame = _sparse_frame(reduced, pd.RangeIndex(n_rows), products[paired])
    # Half a basket below the integer threshold: count / n compares safely on either side of rounding. A
    # frequent pair exists, so n_rows >= min_count and this stays below 1 as mlxtend requires.
    mlx_support = (min_count - 0.5) / n_rows
    if algorithm == "apriori":
        found = apriori(frame, min_support=mlx_support, use_colnames=True, max_len=max_len, low_memory=True)
    else:
        found = fpgrowth(frame, min_support=mlx_support, use_colnames=True, max_len=max_len)
    found = found[found["itemsets"].map(len) >= 2]
    counts = np.rint(found["support"].to_numpy() * n_rows).astype(np.int64)
    return [sorted(itemset) for itemset in found["itemsets"]], counts


def _items_in_frequent_pairs(matrix: sp.csr_matrix, min_count: int) -> np.ndarray:
    """Column positions of the products that appear in at least one pair bought ``min_count`` times."""
    binary = matrix.astype(np.int32)
    pairs = sp.triu(binary.T @ binary, k=1).tocoo()
    hits = pairs.data >= min_count
    return np.unique(np.concatenate([pairs.row[hits], pairs.col[hits]]))


def _empty(columns: Sequence[str]) -> pd.DataFrame:
    """Build an empty table with the given columns."""
    return pd.DataFrame({column: pd.Series(dtype=object) for column in columns})


def association_rules_table(
    itemsets: pd.DataFrame,
    n_baskets: int | None = None,
    *,
    min_confidence: float = 0.3,
    min_lift: float = 1.0,
    descriptions: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Derive association rules from frequent itemsets.

    Itemsets of several countries (the ``country`` column) are handled one country at a time, since each
    country has its own basket universe. The rules and metrics are those of mlxtend's
    ``association_rules(metric="confidence")`` (same floating-point formulas, so the same values and the
    same rules at the thresholds), computed with arrays for all itemsets of one length at once instead of
    one itemset at a time.

    Args:
        itemsets: Output of :func:`frequent_itemsets` or :func:`itemsets_by_country`.
        n_baskets: Number of mined baskets, passed to mlxtend as ``num_itemsets``. By default it is recovered
            exactly from the table as ``support_count / support``; giving it is only allowed when the table
            holds a single country.
        min_confidence: Keep rules with at least this confidence.
        min_lift: Keep rules with at least this lift.
        descriptions: Stock code to description; defaults to the descriptions of the single-item rows of
            ``itemsets``.

    Returns:
        One row per rule (see ``pipeline.baskets.schemas.AssociationRules``). ``conviction`` is capped at
        :data:`MAX_CONVICTION`; ``is_redundant`` marks rules whose consequent is also implied, with equal or
        higher confidence, by a strict subset of their antecedent. Rows are ordered by country (all
        countries first), lift, confidence and support, all descending; ``rule_id`` numbers them from 0.

    Raises:
        KeyError: A subset of a multi-item itemset is missing from the table (it is not the complete
            output of a miner), so a rule's antecedent or consequent support is unknown.
    """
    if itemsets.empty:
        return _empty(RULE_COLUMNS)
    countries = itemsets["country"].drop_duplicates().tolist()
    if n_baskets is not None and len(countries) > 1:
        raise ValueError("n_baskets can only be given for the itemsets of a single country")
    if descriptions is None:
        singles = itemsets[itemsets["length"] == 1]
        descriptions = {
            items[0]: text[0] for items, text in zip(singles["items"], singles["descriptions"], strict=True)
        }
    descriptions = _description_lookup(descriptions)
    parts = []
    for country in countries:
        group = itemsets[_same_country(itemsets["country"], country)]
        with _gc_paused():
            part = _country_rules(
                group, n_baskets, min_confidence=min_confidence, min_lift=min_lift, descriptions=descriptions
            )
        if not part.empty:
            parts.append(part)
    if not parts:
        return _empty(RULE_COLUMNS)
    # Each part is already in rule order; all countries (null) first, then countries by name.
    parts.sort(key=lambda part: (part["country"].iloc[0] is not None, part["country"].iloc[0] or ""))
    rules = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
    rules["rule_id"] = np.arange(len(rules), dtype=np.int64)
    return rules[RULE_COLUMNS]


def mine_rules(
    lines: pd.DataFrame, mining: RuleMining | None = None, *, descriptions: Mapping[str, str] | None = None
) -> pd.DataFrame:
    """Mine the all-countries association rules of invoice baskets with one set of :class:`RuleMining`.

    This is the all-countries part of ``analytics.association_rules`` (the rows with a null ``country``),
    computed by the same functions: :func:`frequent_itemsets` then :func:`association_rules_table`. The
    recommender calls it on the lines before each holdout cutoff.

    Args:
        lines: Sales lines with ``invoice`` and ``stock_code`` (and ``description`` unless ``descriptions``
            is given).
        mining: The settings; default ``RuleMining()``.
        descriptions: Stock code to description; by default the most frequent description of each code.

    Returns:
        One row per rule (see ``pipeline.baskets.schemas.AssociationRules``), ``country`` null.
    """
    mining = RuleMining() if mining is None else mining
    itemsets = _mined_itemsets(lines, mining, country=None, descriptions=descriptions)
    return association_rules_table(
        itemsets, min_confidence=mining.min_confidence, min_lift=mining.min_lift, descriptions=descriptions
    )


def _same_country(column: pd.Series, country: str | None) -> pd.Series:
    """Match a country, where ``None`` (all countries) matches the null rows."""
    return column.isna() if country is None or pd.isna(country) else column == country


class _ItemsetLookup:
    """The itemsets of one country as sorted integer codes, with vectorized lookup of any itemset's row.

    Items are coded in text order (``vocabulary``), so sorted codes are sorted items. An itemset of length
    ``L`` is keyed by the row of its first ``L - 1`` items and its last item; the keys of each length sit
    in a hash index, so finding the rows of a block of itemsets costs one hash lookup per item position.
    """

    def __init__(self, itemsets: pd.DataFrame) -> None:
        items = itemsets["items"].tolist()
        lengths = np.fromiter(map(len, items), dtype=np.int64, count=len(items))
        flat = np.fromiter(chain.from_iterable(items), dtype=object, count=int(lengths.sum()))
        flat_codes, vocabulary = pd.factorize(flat)
        order = np.argsort(vocabulary, kind="stable")
        rank = np.empty(len(order), dtype=np.int64)
        rank[order] = np.arange(len(order))
        self.vocabulary = np.asarray(vocabulary, dtype=object)[order]
        self.support = itemsets["support"].to_numpy(dtype=float)
        self.counts = itemsets["support_count"].to_numpy(dtype=np.int64)
        self.n_items = max(len(order), 1)
        offsets = np.cumsum(lengths) - lengths
        flat_codes = rank[flat_codes]
        self.codes: dict[int, np.ndarray] = {}
        self.rows: dict[int, np.ndarray] = {}
        self._single_row = np.full(self.n_items, -1, dtype=np.int64)
        self._keys: dict[int, pd.Index] = {}
        for length in sorted(set(lengths.tolist())):
            rows = np.flatnonzero(lengths == length)
            codes = np.sort(flat_codes[offsets[rows][:, None] + np.arange(length)], axis=1)
            if length == 1:
                # The last of duplicate rows wins, as in a dict built from the table.
                self._single_row[codes[:, 0]] = rows
                keep = self._single_row[codes[:, 0]] == rows
            else:
                keys = self._key(codes)
                if (keys < 0).any():
                    raise KeyError(
                        "itemsets table is not closed under subsets: a frequent itemset's prefix is missing"
                    )
                keep = ~pd.Index(keys).duplicated(keep="last")
                self._keys[length] = pd.Index(keys[keep])
            self.codes[length], self.rows[length] = codes[keep], rows[keep]

    def _key(self, codes: np.ndarray) -> np.ndarray:
        """Key of each row of ``codes`` among the itemsets of its length (-1 if a prefix is unknown)."""
        prefix = self.row_of(codes[:, :-1])
        return np.where(prefix >= 0, prefix * self.n_items + codes[:, -1], -1)

    def row_of(self, codes: np.ndarray) -> np.ndarray:
        """Table row of every itemset in ``codes`` (sorted codes, one itemset per row), -1 when absent."""
        rows = self._single_row[codes[:, 0]]
        for width in range(2, codes.shape[1] + 1):
            if width not in self._keys:
                return np.full(len(codes), -1, dtype=np.int64)
            keys = np.where(rows >= 0, rows * self.n_items + codes[:, width - 1], -1)
            found = self._keys[width].get_indexer(keys)
            rows = np.where(found >= 0, self.rows[width][found], -1)
        return rows

    def row_lists(self, labels: np.ndarray) -> list[list[str] | None]:
        """The labels of every table row's items as a list (None for duplicate rows that were dropped)."""
        out: list[list[str] | None] = [None] * len(self.support)
        for length, codes in self.codes.items():
            for row, values in zip(self.rows[length].tolist(), labels[codes].tolist(), strict=True):
                out[row] = values
        return out

    def require(self, codes: np.ndarray) -> np.ndarray:
        """:meth:`row_of`, raising like mlxtend when an itemset is missing."""
        rows = self.row_of(codes)
        if (rows < 0).any():
            missing = self.vocabulary[codes[np.flatnonzero(rows < 0)[0]]].tolist()
            raise KeyError(
                f"itemset {missing} is missing from the itemsets table (not a complete miner output)"
            )
        return rows


def _country_rules(
    itemsets: pd.DataFrame,
    n_baskets: int | None,
    *,
    min_confidence: float,
    min_lift: float,
    descriptions: Mapping[str, str],
) -> pd.DataFrame:
    """Rules of one country's itemsets (see :func:`association_rules_table`), in rule order."""
    country = itemsets["country"].iloc[0]
    country = None if pd.isna(country) else country
    if n_baskets is None:
        n_baskets = int(np.rint((itemsets["support_count"] / itemsets["support"]).median()))
    lookup = _ItemsetLookup(itemsets)
    support = lookup.support
    blocks: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    for length in sorted(lookup.codes):
        if length < 2:
            continue
        codes, whole = lookup.codes[length], lookup.rows[length]
        s_ac = support[whole]
        for size in range(length - 1, 0, -1):
            for positions in combinations(range(length), size):
                rest = [p for p in range(length) if p not in positions]
                antecedent, consequent = codes[:, list(positions)], codes[:, rest]
                base, other = lookup.require(antecedent), lookup.require(consequent)
                # mlxtend's confidence, to the last bit: (sAC * n) / (sA * n), compared to the threshold.
                confidence = (s_ac * n_baskets) / (support[base] * n_baskets)
                keep = confidence >= min_confidence
                blocks.append((antecedent[keep], consequent[keep], whole[keep], base[keep], other[keep]))
    if not blocks:
        return _empty(RULE_COLUMNS)
    s_ac = np.concatenate([support[b[2]] for b in blocks])
    s_a = np.concatenate([support[b[3]] for b in blocks])
    s_c = np.concatenate([support[b[4]] for b in blocks])
    confidence = (s_ac * n_baskets) / (s_a * n_baskets)
    lift = confidence / s_c
    keep = lift >= min_lift
    if not keep.any():
        return _empty(RULE_COLUMNS)
    leverage = s_ac - s_a * s_c
    conviction = np.full(len(confidence), np.inf)
    below = confidence < 1.0
    conviction[below] = (1.0 - s_c[below]) / (1.0 - confidence[below])
    denominator = np.maximum(s_ac * (1 - s_a), s_a * (s_c - s_ac))
    with np.errstate(divide="ignore", invalid="ignore"):
        zhang = np.where(denominator == 0, 0, leverage / denominator)
    redundant = np.concatenate([_redundant(lookup, b[0], b[1], b[2], b[3]) for b in blocks])
    base = np.concatenate([b[3] for b in blocks])
    other = np.concatenate([b[4] for b in blocks])

    # Order: lift, confidence, support descending, then antecedent and consequent text ("\x1f"-joined).
    items = lookup.row_lists(lookup.vocabulary)
    text_rank = _text_rank(items)
    order = np.lexsort((text_rank[other], text_rank[base], -s_ac, -confidence, -lift))
    order = order[keep[order]]
    texts = lookup.row_lists(np.array([str(descriptions.get(c, c)) for c in lookup.vocabulary], dtype=object))
    # Both sides of a rule are itemsets of the table, so their lists are built once per itemset and copied
    # per rule (a copy, so that no two rows share a list object).
    base_rows, other_rows = base[order].tolist(), other[order].tolist()
    antecedents = [items[row].copy() for row in base_rows]
    consequents = [items[row].copy() for row in other_rows]
    antecedent_texts = [texts[row].copy() for row in base_rows]
    consequent_texts = [texts[row].copy() for row in other_rows]
    rules = pd.DataFrame(
        {
            "antecedents": _object_array(antecedents),
            "consequents": _object_array(consequents),
            "antecedent_descriptions": _object_array(antecedent_texts),
            "consequent_descriptions": _object_array(consequent_texts),
            "antecedent_support": s_a[order],
            "consequent_support": s_c[order],
            "support": s_ac[order],
            "confidence": confidence[order],
            "lift": lift[order],
            "leverage": leverage[order],
            "conviction": np.minimum(conviction[order], MAX_CONVICTION),
            "zhangs_metric": zhang[order].astype(float),
            "is_redundant": redundant[order].astype(bool),
        }
    )
    rules["country"] = country
    return rules


def _text_rank(items: list[list[str] | None]) -> np.ndarray:
    """Dense rank of each itemset's items joined by a unit separator (rule sides' text order); -1 for None."""
    keys = np.array(["" if i is None else "\x1f".join(i) for i in items], dtype=object)
    known = np.array([i is not None for i in items], dtype=bool)
    rank = np.full(len(items), -1, dtype=np.int64)
    rank[known] = np.unique(keys[known], return_inverse=True)[1].ravel()
    return rank


def _redundant(
    lookup: _ItemsetLookup,
    antecedents: np.ndarray,
    consequents: np.ndarray,
    whole_rows: np.ndarray,
    base_rows: np.ndarray,
) -> np.ndarray:
    """Flag rules implied at least as confidently by a strict subset of their antecedent.

    Rule ``A -> C`` is redundant when some rule ``A' -> C`` with ``A'`` a non-empty strict subset of ``A``
    has confidence ``count(A' + C) / count(A')`` at least ``count(A + C) / count(A)``. The comparison is made
    on integer counts by cross-multiplication, so equal confidences are recognised exactly. Every subset of
    a frequent itemset is frequent, so all the counts needed are in the table; and since a more general
    rule with equal or higher confidence has equal or higher lift, it passes the same rule filters.

    Args:
        lookup: The country's itemsets.
        antecedents: Sorted antecedent codes of a block of rules sharing one antecedent width.
        consequents: Sorted consequent codes of the same rules.
        whole_rows: Table row of each rule's whole itemset.
        base_rows: Table row of each rule's antecedent.

    Returns:
        One flag per rule.
    """
    flags = np.zeros(len(antecedents), dtype=bool)
    width = antecedents.shape[1]
    if width < 2 or not len(antecedents):
        return flags
    whole = lookup.counts[whole_rows]
    base = lookup.counts[base_rows]
    for size in range(1, width):
        for positions in combinations(range(width), size):
            general = antecedents[:, list(positions)]
            general_base = lookup.counts[lookup.require(general)]
            united = np.sort(np.concatenate([general, consequents], axis=1), axis=1)
            general_whole = lookup.counts[lookup.require(united)]
            flags |= general_whole * base >= whole * general_base
    return flags


def select_countries(cleaned: pd.DataFrame, *, top_n: int | None = 5, min_invoices: int = 100) -> list[str]:
    """Choose the countries that get their own itemsets and rules.

    Args:
        cleaned: Cleaned transactions.
        top_n: Keep at most this many countries, the ones with the most invoices; ``None`` for no limit.
        min_invoices: Skip countries with fewer invoices, whose rules would rest on a handful of baskets.

    Returns:
        Country names, most invoices first (ties alphabetical).
    """
    line_invoice, invoices = pd.factorize(cleaned["invoice"])
    line_country, countries = pd.factorize(cleaned["country"])
    return _select_countries(
        line_invoice, len(invoices), line_country, countries, top_n=top_n, min_invoices=min_invoices
    )


def _select_countries(
    line_invoice: np.ndarray,
    n_invoices: int,
    line_country: np.ndarray,
    countries: pd.Index,
    *,
    top_n: int | None,
    min_invoices: int,
) -> list[str]:
    """:func:`select_countries` on coded lines (codes -1 for missing)."""
    valid = (line_country >= 0) & (line_invoice >= 0)
    n_invoices = max(n_invoices, 1)
    pairs = _sorted_unique(line_country[valid].astype(np.int64) * n_invoices + line_invoice[valid])
    per_country = pd.DataFrame(
        {
            "country": np.asarray(countries, dtype=object),
            "n": np.bincount(pairs // n_invoices, minlength=len(countries)).astype(np.int64),
        }
    )
    per_country = per_country[per_country["n"] >= min_invoices]
    per_country = per_country.sort_values(["n", "country"], ascending=[False, True])
    chosen = per_country["country"].tolist()
    return chosen if top_n is None else chosen[:top_n]


class CountryOptions(TypedDict, total=False):
    """Which countries get itemsets and rules of their own: keywords of :func:`itemsets_and_summary`.

    :func:`itemsets_by_country` and :func:`rules_by_country` pass them on; their meaning and defaults are
    those of :func:`itemsets_and_summary`.
    """

    countries: Sequence[str] | None
    top_n_countries: int | None
    min_invoices: int
    include_all: bool


def itemsets_by_country(
    cleaned: pd.DataFrame, mining: RuleMining | None = None, **options: Unpack[CountryOptions]
) -> pd.DataFrame:
    """Mine frequent itemsets for all countries together and for each chosen country.

    Args:
        cleaned: Cleaned transactions.
        mining: The itemset settings (its rule thresholds are not used); default ``RuleMining()``.
        **options: The countries mined (:class:`CountryOptions`), as in :func:`itemsets_and_summary`.

    Returns:
        The itemset tables concatenated, all countries first, with ``itemset_id`` renumbered from 0.
    """
    return itemsets_and_summary(cleaned, mining, **options)[0]


def itemsets_and_summary(
    cleaned: pd.DataFrame,
    mining: RuleMining | None = None,
    *,
    countries: Sequence[str] | None = None,
    top_n_countries: int | None = 5,
    min_invoices: int = 100,
    include_all: bool = True,
) -> tuple[pd.DataFrame, dict[str, int | None]]:
    """:func:`itemsets_by_country` and :func:`basket_summary` together, coding the text columns once.

    Every universe (all countries, each chosen country) is mined with the same ``mining``: its
    ``min_support`` is a share of that universe's baskets and its ``min_support_count`` the same floor in
    each, which keeps a country of 300 invoices (where 1% is 3 baskets) from calling an itemset seen in 3
    baskets frequent, and is inert wherever ``min_support * n >= min_support_count``.

    Args:
        cleaned: Cleaned transactions.
        mining: The itemset settings (its rule thresholds are not used); default ``RuleMining()``.
        countries: Countries to mine separately; by default :func:`select_countries` with ``top_n_countries``
            and ``min_invoices``.
        top_n_countries: ``top_n`` of :func:`select_countries`.
        min_invoices: See :func:`select_countries`.
        include_all: Also mine all countries together (rows with a null ``country``).

    Returns:
        The itemsets of :func:`itemsets_by_country` and the summary of :func:`basket_summary`.
    """
    mining = RuleMining() if mining is None else mining
    index = _BasketIndex.build(cleaned, by_country=True)
    summary = _basket_summary(index, max_basket_size=mining.max_basket_size)
    if countries is None:
        countries = _select_countries(
            index.line_invoice,
            len(index.invoices),
            index.line_country,
            index.countries,
            top_n=top_n_countries,
            min_invoices=min_invoices,
        )
    descriptions = _description_lookup(
        coded_product_descriptions(cleaned["description"], index.line_product, index.products)
    )
    scopes: list[str | None] = ([None] if include_all else []) + list(countries)
    parts = [_frequent_itemsets(index, mining, country=scope, descriptions=descriptions) for scope in scopes]
    parts = [part for part in parts if not part.empty]
    if not parts:
        return _empty(ITEMSET_COLUMNS), summary
    table = pd.concat(parts, ignore_index=True)
    table["itemset_id"] = np.arange(len(table), dtype=np.int64)
    return table, summary


def rules_by_country(
    cleaned: pd.DataFrame, mining: RuleMining | None = None, **options: Unpack[CountryOptions]
) -> pd.DataFrame:
    """Association rules for all countries together (null ``country``) and for each chosen country.

    Args:
        cleaned: Cleaned transactions.
        mining: The settings, itemsets and rule thresholds alike; default ``RuleMining()``.
        **options: The countries mined (:class:`CountryOptions`), as in :func:`itemsets_and_summary`.

    Returns:
        The rule tables concatenated (see :func:`association_rules_table`), ``rule_id`` unique across them.
    """
    mining = RuleMining() if mining is None else mining
    itemsets = itemsets_by_country(cleaned, mining, **options)
    return association_rules_table(itemsets, min_confidence=mining.min_confidence, min_lift=mining.min_lift)


def product_bundles(
    rules: pd.DataFrame, cleaned: pd.DataFrame, *, top_n: int = 50, country: str | None = None
) -> pd.DataFrame:
    """Turn the strongest non-redundant rules into product bundles.

    Rules are ranked by lift, then confidence, then support (all descending); each rule's products
    (antecedent plus consequent) form a bundle, and a bundle already formed by a stronger rule (``A -> B``
    and ``B -> A`` give the same bundle) is skipped, so every bundle keeps the metrics of its best rule.

    Args:
        rules: Output of :func:`association_rules_table` or :func:`rules_by_country`.
        cleaned: Cleaned transactions, for revenue and co-occurrence counts (``invoice``, ``stock_code``,
            ``revenue``, and ``country`` when ``country`` is given).
        top_n: Number of bundles to return.
        country: Use this country's rules and transactions; ``None`` uses the all-countries rules (null
            ``country``) and every transaction.

    Returns:
        One row per bundle (see ``pipeline.baskets.schemas.ProductBundles``): ``bundle_revenue`` is the
        revenue of the bundle's products over all invoices, ``joint_revenue`` their revenue on the invoices
        that hold the whole bundle, and ``invoices_with_all`` the number of those invoices (giant baskets
        included, unlike the rule support).
    """
    chosen = rules[_same_country(rules["country"], country) & ~rules["is_redundant"].astype(bool)]
    if chosen.empty:
        return _empty(BUNDLE_COLUMNS)
    chosen = chosen.sort_values(
        ["lift", "confidence", "support", "rule_id"], ascending=[False, False, False, True]
    )
    seen: set[frozenset] = set()
    picked = []
    for row in chosen.itertuples(index=False):
        bundle = frozenset(row.antecedents) | frozenset(row.consequents)
        if bundle in seen:
            continue
        seen.add(bundle)
        descriptions = dict(zip(row.antecedents, row.antecedent_descriptions, strict=True))
        descriptions.update(zip(row.consequents, row.consequent_descriptions, strict=True))
        items = sorted(bundle)
        picked.append(
            {
                "items": items,
                "descriptions": [descriptions[i] for i in items],
                "size": len(items),
                "support": row.support,
                "confidence": row.confidence,
                "lift": row.lift,
            }
        )
        if len(picked) == top_n:
            break
    bundles = pd.DataFrame(picked)

    scope = cleaned if country is None else cleaned[cleaned["country"] == country]
    # Only the lines of bundle products matter: other products add neither revenue nor bundle holders,
    # and dropping them first keeps the matrices below to a few percent of the lines.
    scope = scope[scope["stock_code"].isin(_bundle_products(bundles))]
    matrix, invoices, products = basket_matrix(scope, max_basket_size=None)
    revenue = sp.csr_matrix(
        (
            scope["revenue"].to_numpy(dtype=float),
            (invoices.get_indexer(scope["invoice"]), products.get_indexer(scope["stock_code"])),
        ),
        shape=matrix.shape,
    ).tocsc()
    columns = matrix.tocsc()
    product_revenue = np.asarray(revenue.sum(axis=0)).ravel()
    bundle_revenue, joint_revenue, invoices_with_all = [], [], []
    for items in bundles["items"]:
        idx = products.get_indexer(items)
        holds_all = np.asarray(columns[:, idx].sum(axis=1)).ravel() == len(idx)
        invoices_with_all.append(int(holds_all.sum()))
        bundle_revenue.append(float(product_revenue[idx].sum()))
        joint_revenue.append(float(revenue[holds_all][:, idx].sum()))
    bundles["bundle_revenue"] = bundle_revenue
    bundles["joint_revenue"] = joint_revenue
    bundles["invoices_with_all"] = np.array(invoices_with_all, dtype=np.int64)
    bundles["country"] = country
    bundles["bundle_id"] = np.arange(len(bundles), dtype=np.int64)
    return bundles[BUNDLE_COLUMNS]


def _bundle_products(bundles: pd.DataFrame) -> list[str]:
    """Every product of any bundle, sorted."""
    return sorted(set(chain.from_iterable(bundles["items"])))
