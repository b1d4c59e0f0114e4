"""Market-basket analysis: basket matrices, frequent itemsets, association rules and product bundles.

What belongs here: pure pandas/scipy/mlxtend logic that turns ``staging.cleaned_transactions`` into
itemset, rule and bundle tables (see ``pipeline.schemas_baskets``). Product co-purchase *graphs* live in
``pipeline.network`` and figures in ``pipeline.plots_baskets``; nothing here imports dagster.

Conventions shared by every function in this module:

* A basket is one invoice of the cleaned transactions, guest invoices included. A product appears at most
  once per basket, however many lines or units of it the invoice has.
* Giant wholesale baskets are left out of mining. An invoice with more than ``max_basket_size`` distinct
  products (default :data:`DEFAULT_MAX_BASKET_SIZE` = 250, about the 99.5th percentile of the 2009-2010
  sheet, where the median basket holds 15 products) puts every pair of its products together. On that
  sheet the 101 such invoices (0.5% of 20,573) alone lift the itemsets found at support 0.005 from 4,651
  to 7,951. A fixed cap, unlike a percentile, means the same thing for every country and data size.
  ``None`` keeps every invoice.
* Support is a share of the mined baskets: every invoice of the (country-filtered) cleaned transactions
  except the giant ones. Confidence, lift and the other rule metrics use the same universe, which keeps
  them consistent with each other; :func:`basket_summary` reports how many baskets were excluded.
* The support threshold is applied to exact integer counts (``support_count >= ceil(min_support * n)``),
  so apriori and FP-growth return identical itemsets whatever the floating-point rounding of ``count / n``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from itertools import combinations
from typing import Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp
from mlxtend.frequent_patterns import apriori, association_rules, fpgrowth

DEFAULT_MAX_BASKET_SIZE: int = 250
"""Invoices with more distinct products than this are excluded from itemset mining."""

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

Algorithm = Literal["apriori", "fpgrowth"]


def basket_sizes(cleaned: pd.DataFrame) -> pd.Series:
    """Count the distinct products of every invoice.

    Args:
        cleaned: Cleaned transactions with ``invoice`` and ``stock_code`` columns.

    Returns:
        Number of distinct stock codes per invoice, indexed by invoice (sorted).
    """
    return cleaned.groupby("invoice", sort=True)["stock_code"].nunique().rename("distinct_products")


def giant_invoices(
    cleaned: pd.DataFrame, *, max_basket_size: int | None = DEFAULT_MAX_BASKET_SIZE
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
    if max_basket_size < 1:
        raise ValueError(f"max_basket_size must be a positive integer or None, got {max_basket_size}")
    sizes = basket_sizes(cleaned)
    return sizes.index[sizes > max_basket_size]


def basket_matrix(
    cleaned: pd.DataFrame, *, max_basket_size: int | None = DEFAULT_MAX_BASKET_SIZE
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
    pairs = cleaned[["invoice", "stock_code"]].drop_duplicates()
    giants = giant_invoices(cleaned, max_basket_size=max_basket_size)
    if len(giants):
        pairs = pairs[~pairs["invoice"].isin(giants)]
    rows, invoices = pd.factorize(pairs["invoice"], sort=True)
    cols, products = pd.factorize(pairs["stock_code"], sort=True)
    matrix = sp.csr_matrix(
        (np.ones(len(pairs), dtype=np.int8), (rows, cols)), shape=(len(invoices), len(products))
    )
    return matrix, pd.Index(invoices, name="invoice"), pd.Index(products, name="stock_code")


def basket_frame(
    cleaned: pd.DataFrame, *, max_basket_size: int | None = DEFAULT_MAX_BASKET_SIZE
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
    cleaned: pd.DataFrame, *, max_basket_size: int | None = DEFAULT_MAX_BASKET_SIZE
) -> dict[str, int | None]:
    """Summarise the basket universe that itemset mining sees.

    Args:
        cleaned: Cleaned transactions.
        max_basket_size: See :func:`basket_matrix`.

    Returns:
        Counts of invoices, mined baskets, excluded giant baskets and their lines, products, and the cap
        used, for asset metadata.
    """
    giants = giant_invoices(cleaned, max_basket_size=max_basket_size)
    n_invoices = int(cleaned["invoice"].nunique())
    return {
        "invoices": n_invoices,
        "baskets_mined": n_invoices - len(giants),
        "giant_baskets_excluded": len(giants),
        "giant_basket_lines_excluded": int(cleaned["invoice"].isin(giants).sum()),
        "products": int(cleaned["stock_code"].nunique()),
        "max_basket_size": max_basket_size,
    }


def product_descriptions(cleaned: pd.DataFrame) -> pd.Series:
    """Pick one display description per stock code.

    The same code carries several descriptions over time; the most frequent stripped, non-empty one wins,
    ties going to the alphabetically first so that the choice is stable. Codes without any description
    map to the code itself.

    Args:
        cleaned: Cleaned transactions with ``stock_code`` and ``description``.

    Returns:
        Description per stock code, indexed by stock code (sorted).
    """
    # Count raw (code, text) pairs first: a few thousand distinct pairs are cheaper to strip than every line.
    raw = cleaned.value_counts(["stock_code", "description"], dropna=True).rename("n").reset_index()
    raw["description"] = raw["description"].astype(str).str.strip()
    raw = raw[raw["description"] != ""]
    counts = raw.groupby(["stock_code", "description"], as_index=False)["n"].sum()
    best = (
        counts.sort_values(["stock_code", "n", "description"], ascending=[True, False, True])
        .drop_duplicates("stock_code")
        .set_index("stock_code")["description"]
        .astype(object)
    )
    codes = pd.Index(np.sort(cleaned["stock_code"].unique()), name="stock_code")
    out = best.reindex(codes)
    return out.fillna(pd.Series(codes, index=codes)).rename("description")


def _describe(items: Iterable[str], descriptions: Mapping[str, str]) -> list[str]:
    """Map stock codes to descriptions, falling back to the code itself."""
    return [str(descriptions.get(item, item)) for item in items]


def frequent_itemsets(
    cleaned: pd.DataFrame,
    *,
    min_support: float = 0.01,
    max_len: int | None = 3,
    algorithm: Algorithm = "apriori",
    country: str | None = None,
    max_basket_size: int | None = DEFAULT_MAX_BASKET_SIZE,
    min_support_count: int = 1,
    descriptions: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Mine the frequent itemsets of the invoice baskets with mlxtend on a sparse matrix.

    Args:
        cleaned: Cleaned transactions.
        min_support: Smallest share of mined baskets an itemset must appear in, in ``(0, 1]``.
        max_len: Largest itemset size; ``None`` for no limit.
        algorithm: ``"apriori"`` (mlxtend ``apriori(low_memory=True)``) or ``"fpgrowth"``; both give the
            same itemsets.
        country: Mine only the invoices of this country; ``None`` mines all countries.
        max_basket_size: Cap on distinct products per mined basket (module docstring); ``None`` for none.
        min_support_count: Floor on the number of baskets, so that small countries do not turn every
            combination seen once or twice into a "frequent" itemset. The threshold used is
            ``max(ceil(min_support * n_baskets), min_support_count)``.
        descriptions: Stock code to description; defaults to :func:`product_descriptions` of ``cleaned``.

    Returns:
        One row per frequent itemset (see ``schemas_baskets.FrequentItemsets``), ordered by length, then
        support descending, then items; ``itemset_id`` numbers the rows from 0.
    """
    if not 0.0 < min_support <= 1.0:
        raise ValueError(f"min_support must be in (0, 1], got {min_support}")
    if algorithm not in ("apriori", "fpgrowth"):
        raise ValueError(f"algorithm must be 'apriori' or 'fpgrowth', got {algorithm!r}")
    if descriptions is None:
        descriptions = product_descriptions(cleaned)
    scope = cleaned if country is None else cleaned[cleaned["country"] == country]
    matrix, _, products = basket_matrix(scope, max_basket_size=max_basket_size)
    n_baskets = matrix.shape[0]
    if n_baskets == 0:
        return _empty(ITEMSET_COLUMNS)

    # The epsilon guards against min_support * n landing a hair above an integer through rounding.
    min_count = max(math.ceil(min_support * n_baskets - 1e-9), int(min_support_count), 1)
    item_counts = np.asarray(matrix.sum(axis=0)).ravel()
    frequent = np.flatnonzero(item_counts >= min_count)
    if len(frequent) == 0:
        return _empty(ITEMSET_COLUMNS)
    items: list[list[str]] = [[code] for code in products[frequent]]
    support_counts: list[np.ndarray] = [item_counts[frequent].astype(np.int64)]
    if max_len is None or max_len >= 2:
        found = _mine_multi_item_sets(
            matrix[:, frequent], products[frequent], min_count, max_len=max_len, algorithm=algorithm
        )
        items.extend(found[0])
        support_counts.append(found[1])

    table = pd.DataFrame(
        {
            "items": items,
            "descriptions": [_describe(i, descriptions) for i in items],
            "length": np.array([len(i) for i in items], dtype=np.int64),
            "support_count": np.concatenate(support_counts),
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
    """Derive association rules from frequent itemsets with mlxtend ``association_rules``.

    Itemsets of several countries (the ``country`` column) are handled one country at a time, since each
    country has its own basket universe.

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
        One row per rule (see ``schemas_baskets.AssociationRules``). ``conviction`` is capped at
        :data:`MAX_CONVICTION`; ``is_redundant`` marks rules whose consequent is also implied, with equal or
        higher confidence, by a strict subset of their antecedent. Rows are ordered by country (all
        countries first), lift, confidence and support, all descending; ``rule_id`` numbers them from 0.
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
    parts = []
    for country in countries:
        group = itemsets[_same_country(itemsets["country"], country)]
        parts.append(
            _country_rules(
                group, n_baskets, min_confidence=min_confidence, min_lift=min_lift, descriptions=descriptions
            )
        )
    rules = pd.concat(parts, ignore_index=True) if parts else _empty(RULE_COLUMNS)
    return _number_rules(rules)


def _same_country(column: pd.Series, country: str | None) -> pd.Series:
    """Match a country, where ``None`` (all countries) matches the null rows."""
    return column.isna() if country is None or pd.isna(country) else column == country


def _country_rules(
    itemsets: pd.DataFrame,
    n_baskets: int | None,
    *,
    min_confidence: float,
    min_lift: float,
    descriptions: Mapping[str, str],
) -> pd.DataFrame:
    """Rules of one country's itemsets (see :func:`association_rules_table`)."""
    country = itemsets["country"].iloc[0]
    country = None if pd.isna(country) else country
    if n_baskets is None:
        n_baskets = int(np.rint((itemsets["support_count"] / itemsets["support"]).median()))
    mlx_input = pd.DataFrame(
        {"support": itemsets["support"].to_numpy(), "itemsets": [frozenset(i) for i in itemsets["items"]]}
    )
    found = association_rules(
        mlx_input,
        num_itemsets=n_baskets,
        metric="confidence",
        min_threshold=min_confidence,
        return_metrics=[
            "antecedent support",
            "consequent support",
            "support",
            "confidence",
            "lift",
            "leverage",
            "conviction",
            "zhangs_metric",
        ],
    )
    found = found[found["lift"] >= min_lift]
    if found.empty:
        return _empty(RULE_COLUMNS)

    antecedents = [sorted(a) for a in found["antecedents"]]
    consequents = [sorted(c) for c in found["consequents"]]
    counts = {frozenset(i): int(c) for i, c in zip(itemsets["items"], itemsets["support_count"], strict=True)}
    rules = pd.DataFrame(
        {
            "antecedents": antecedents,
            "consequents": consequents,
            "antecedent_descriptions": [_describe(a, descriptions) for a in antecedents],
            "consequent_descriptions": [_describe(c, descriptions) for c in consequents],
            "antecedent_support": found["antecedent support"].to_numpy(),
            "consequent_support": found["consequent support"].to_numpy(),
            "support": found["support"].to_numpy(),
            "confidence": found["confidence"].to_numpy(),
            "lift": found["lift"].to_numpy(),
            "leverage": found["leverage"].to_numpy(),
            "conviction": np.minimum(found["conviction"].to_numpy(dtype=float), MAX_CONVICTION),
            "zhangs_metric": found["zhangs_metric"].to_numpy(dtype=float),
            "is_redundant": _redundant(antecedents, consequents, counts),
        }
    )
    rules["country"] = country
    return rules


def _redundant(
    antecedents: list[list[str]], consequents: list[list[str]], counts: Mapping[frozenset, int]
) -> np.ndarray:
    """Flag rules implied at least as confidently by a strict subset of their antecedent.

    Rule ``A -> C`` is redundant when some rule ``A' -> C`` with ``A'`` a non-empty strict subset of ``A``
    has confidence ``count(A' + C) / count(A')`` at least ``count(A + C) / count(A)``. The comparison is made
    on integer counts by cross-multiplication, so equal confidences are recognised exactly. Every subset of
    a frequent itemset is frequent, so all the counts needed are in ``counts``; and since a more general
    rule with equal or higher confidence has equal or higher lift, it passes the same rule filters.
    """
    flags = np.zeros(len(antecedents), dtype=bool)
    for index, (antecedent, consequent) in enumerate(zip(antecedents, consequents, strict=True)):
        whole = counts[frozenset(antecedent) | frozenset(consequent)]
        base = counts[frozenset(antecedent)]
        for size in range(1, len(antecedent)):
            for subset in combinations(antecedent, size):
                general_whole = counts[frozenset(subset) | frozenset(consequent)]
                general_base = counts[frozenset(subset)]
                if general_whole * base >= whole * general_base:
                    flags[index] = True
                    break
            if flags[index]:
                break
    return flags


def _number_rules(rules: pd.DataFrame) -> pd.DataFrame:
    """Order rules (all countries first, strongest first) and assign ``rule_id``."""
    if rules.empty:
        return _empty(RULE_COLUMNS)
    keyed = rules.assign(
        _all=rules["country"].isna(),
        _country=rules["country"].fillna(""),
        _ante=rules["antecedents"].map("\x1f".join),
        _cons=rules["consequents"].map("\x1f".join),
    )
    keyed = keyed.sort_values(
        ["_all", "_country", "lift", "confidence", "support", "_ante", "_cons"],
        ascending=[False, True, False, False, False, True, True],
        kind="stable",
    ).reset_index(drop=True)
    keyed["rule_id"] = np.arange(len(keyed), dtype=np.int64)
    keyed["is_redundant"] = keyed["is_redundant"].astype(bool)
    return keyed[RULE_COLUMNS]


def select_countries(cleaned: pd.DataFrame, *, top_n: int | None = 5, min_invoices: int = 100) -> list[str]:
    """Choose the countries that get their own itemsets and rules.

    Args:
        cleaned: Cleaned transactions.
        top_n: Keep at most this many countries, the ones with the most invoices; ``None`` for no limit.
        min_invoices: Skip countries with fewer invoices, whose rules would rest on a handful of baskets.

    Returns:
        Country names, most invoices first (ties alphabetical).
    """
    per_country = cleaned.groupby("country")["invoice"].nunique().rename("n").reset_index()
    per_country = per_country[per_country["n"] >= min_invoices]
    per_country = per_country.sort_values(["n", "country"], ascending=[False, True])
    chosen = per_country["country"].tolist()
    return chosen if top_n is None else chosen[:top_n]


def itemsets_by_country(
    cleaned: pd.DataFrame,
    *,
    countries: Sequence[str] | None = None,
    top_n_countries: int | None = 5,
    min_invoices: int = 100,
    include_all: bool = True,
    min_support: float = 0.01,
    max_len: int | None = 3,
    algorithm: Algorithm = "apriori",
    max_basket_size: int | None = DEFAULT_MAX_BASKET_SIZE,
    min_support_count: int = 10,
) -> pd.DataFrame:
    """Mine frequent itemsets for all countries together and for each chosen country.

    Args:
        cleaned: Cleaned transactions.
        countries: Countries to mine separately; by default :func:`select_countries` with ``top_n_countries``
            and ``min_invoices``.
        top_n_countries: See :func:`select_countries`.
        min_invoices: See :func:`select_countries`.
        include_all: Also mine all countries together (rows with a null ``country``).
        min_support: See :func:`frequent_itemsets`; the same share applies in every country.
        max_len: See :func:`frequent_itemsets`.
        algorithm: See :func:`frequent_itemsets`.
        max_basket_size: See :func:`frequent_itemsets`.
        min_support_count: See :func:`frequent_itemsets`; the default 10 keeps a country of 300 invoices
            (where 1% is 3 baskets) from calling an itemset seen in 3 baskets frequent.

    Returns:
        The itemset tables concatenated, all countries first, with ``itemset_id`` renumbered from 0.
    """
    if countries is None:
        countries = select_countries(cleaned, top_n=top_n_countries, min_invoices=min_invoices)
    descriptions = product_descriptions(cleaned)
    scopes: list[str | None] = ([None] if include_all else []) + list(countries)
    parts = [
        frequent_itemsets(
            cleaned,
            min_support=min_support,
            max_len=max_len,
            algorithm=algorithm,
            country=scope,
            max_basket_size=max_basket_size,
            min_support_count=min_support_count,
            descriptions=descriptions,
        )
        for scope in scopes
    ]
    parts = [part for part in parts if not part.empty]
    if not parts:
        return _empty(ITEMSET_COLUMNS)
    table = pd.concat(parts, ignore_index=True)
    table["itemset_id"] = np.arange(len(table), dtype=np.int64)
    return table


def rules_by_country(
    cleaned: pd.DataFrame,
    *,
    countries: Sequence[str] | None = None,
    top_n_countries: int | None = 5,
    min_invoices: int = 100,
    include_all: bool = True,
    min_support: float = 0.01,
    max_len: int | None = 3,
    algorithm: Algorithm = "apriori",
    max_basket_size: int | None = DEFAULT_MAX_BASKET_SIZE,
    min_support_count: int = 10,
    min_confidence: float = 0.3,
    min_lift: float = 1.0,
) -> pd.DataFrame:
    """Association rules for all countries together (null ``country``) and for each chosen country.

    Args:
        cleaned: Cleaned transactions.
        countries: See :func:`itemsets_by_country`.
        top_n_countries: See :func:`select_countries`.
        min_invoices: See :func:`select_countries`.
        include_all: See :func:`itemsets_by_country`.
        min_support: See :func:`frequent_itemsets`.
        max_len: See :func:`frequent_itemsets`.
        algorithm: See :func:`frequent_itemsets`.
        max_basket_size: See :func:`frequent_itemsets`.
        min_support_count: See :func:`itemsets_by_country`.
        min_confidence: See :func:`association_rules_table`.
        min_lift: See :func:`association_rules_table`.

    Returns:
        The rule tables concatenated (see :func:`association_rules_table`), ``rule_id`` unique across them.
    """
    itemsets = itemsets_by_country(
        cleaned,
        countries=countries,
        top_n_countries=top_n_countries,
        min_invoices=min_invoices,
        include_all=include_all,
        min_support=min_support,
        max_len=max_len,
        algorithm=algorithm,
        max_basket_size=max_basket_size,
        min_support_count=min_support_count,
    )
    return association_rules_table(itemsets, min_confidence=min_confidence, min_lift=min_lift)


def product_bundles(
    rules: pd.DataFrame, cleaned: pd.DataFrame, *, top_n: int = 50, country: str | None = None
) -> pd.DataFrame:
    """Turn the strongest non-redundant rules into product bundles.

    Rules are ranked by lift, then confidence, then support (all descending); each rule's products
    (antecedent plus consequent) form a bundle, and a bundle already formed by a stronger rule (``A -> B``
    and ``B -> A`` give the same bundle) is skipped, so every bundle keeps the metrics of its best rule.

    Args:
        rules: Output of :func:`association_rules_table` or :func:`rules_by_country`.
        cleaned: Cleaned transactions, for revenue and co-occurrence counts.
        top_n: Number of bundles to return.
        country: Use this country's rules and transactions; ``None`` uses the all-countries rules (null
            ``country``) and every transaction.

    Returns:
        One row per bundle (see ``schemas_baskets.ProductBundles``): ``bundle_revenue`` is the revenue of the
        bundle's products over all invoices, ``joint_revenue`` their revenue on the invoices that hold the
        whole bundle, and ``invoices_with_all`` the number of those invoices (giant baskets included, unlike
        the rule support).
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
