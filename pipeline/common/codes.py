"""What a stock code is (the staged format, service codes, real products) and what a product is called.

One definition serves cleaning (which rejects non-product lines), the staging schema, the recommenders (which
only learn from and recommend real products), their table schemas, and every table that names products.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

#: The format of a stock code as staged: upper-case letters and digits, 3 to 12 of them.
STOCK_CODE_PATTERN = r"^[0-9A-Z]{3,12}$"

#: Stock codes that are not products: postage, carriage, fees, manual lines, discounts, samples, tests,
# vouchers. #: Matched on the upper-cased, stripped code. DCGS* codes are real gift-set products.
NON_PRODUCT_CODE_PATTERN = (
    r"^(?:POST|DOT|C2|C3|M|D|S|B|CRUK|PADS|AMAZONFEE|BANK CHARGES|ADJUST\d*|TEST\d*|GIFT|GIFT_\d+_\d+|SP\d+)$"
)


def is_non_product_code(stock_code: pd.Series) -> pd.Series:
    """Tell which stock codes are not products (as received: matched after stripping and upper-casing).

    Args:
        stock_code: Stock codes as text; missing values count as not matching.

    Returns:
        A boolean Series aligned with ``stock_code``.
    """
    codes = stock_code.astype("string[pyarrow]").str.strip().str.upper()
    return codes.str.fullmatch(NON_PRODUCT_CODE_PATTERN).fillna(False).astype(bool)


def is_product_code(codes: Iterable[object]) -> np.ndarray:
    """Tell real product codes, as staged, from everything else.

    A product code has the staged format (:data:`STOCK_CODE_PATTERN`: stripped, upper case) and is not a
    service code (:data:`NON_PRODUCT_CODE_PATTERN`): exactly the codes cleaning lets into
    ``staging.cleaned_transactions``. Each distinct value is tested once.

    Args:
        codes: Stock codes (anything; non-strings are never product codes).

    Returns:
        Boolean array, True where the code is a product code.
    """
    values = pd.Series(
        codes if isinstance(codes, pd.Series | pd.Index | np.ndarray) else list(codes), dtype=object
    )
    distinct = pd.Series(pd.unique(values), dtype=object)
    text = distinct.where(distinct.map(lambda value: isinstance(value, str)))
    text = text.astype("string[pyarrow]")
    staged = text.str.fullmatch(STOCK_CODE_PATTERN).fillna(False).astype(bool)
    service = text.str.fullmatch(NON_PRODUCT_CODE_PATTERN).fillna(False).astype(bool)
    valid = set(distinct[staged & ~service])
    return values.isin(valid).to_numpy(dtype=bool)


def most_frequent_texts(
    product: np.ndarray, text: np.ndarray, texts: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The description of each coded product: its most frequent stripped, non-empty text.

    Ties go to the alphabetically first text, so the choice never depends on row order. This is the one rule
    for naming a product everywhere (itemsets, rules, bundles, SVD factors, recommendations, EDA's top
    products, which applies it in SQL).

    Args:
        product: Product code of each line (``-1``: none).
        text: Code of each line's description in ``texts`` (``-1``: missing).
        texts: The distinct descriptions (any text; they are stripped here).

    Returns:
        ``(products, descriptions)``: the codes that have a description, ascending, and its text.
    """
    stripped = pd.Series(np.asarray(texts, dtype=object), dtype=object).astype(str).str.strip()
    unique_of_text, unique = pd.factorize(stripped)
    blank = np.asarray(unique == "", dtype=bool)
    product, text = np.asarray(product, dtype=np.int64), np.asarray(text, dtype=np.int64)
    valid = (product >= 0) & (text >= 0)
    named = unique_of_text[text[valid]]
    keep = ~blank[named]
    n_unique = max(len(unique), 1)
    keys, counts = np.unique(product[valid][keep] * n_unique + named[keep], return_counts=True)
    owner, name = np.divmod(keys, n_unique)
    alphabetical = np.empty(len(unique), dtype=np.int64)
    alphabetical[np.argsort(np.asarray(unique, dtype=object), kind="stable")] = np.arange(len(unique))
    order = np.lexsort((alphabetical[name], -counts, owner))
    owner, name = owner[order], name[order]
    first = np.ones(len(owner), dtype=bool)
    first[1:] = owner[1:] != owner[:-1]
    return owner[first], np.asarray(unique, dtype=object)[name[first]]


def product_descriptions(lines: pd.DataFrame) -> pd.Series:
    """Pick one display description per stock code (see :func:`most_frequent_texts`).

    Args:
        lines: Sales lines with ``stock_code`` and ``description``.

    Returns:
        Description per stock code, indexed by stock code (sorted); a code without any description maps to
        itself.
    """
    line_product, products = pd.factorize(lines["stock_code"], sort=True)
    return coded_product_descriptions(lines["description"], line_product, products)


def coded_product_descriptions(
    descriptions: pd.Series, line_product: np.ndarray, products: pd.Index
) -> pd.Series:
    """:func:`product_descriptions` with the stock codes already coded.

    Args:
        descriptions: The ``description`` of each line.
        line_product: Code of each line's stock code in ``products`` (``-1``: missing).
        products: The distinct stock codes, sorted.

    Returns:
        As :func:`product_descriptions`.
    """
    line_text, texts = pd.factorize(descriptions)
    described, names = most_frequent_texts(line_product, line_text, np.asarray(texts, dtype=object))
    index = pd.Index(np.array(products, dtype=object), name="stock_code")
    # A fresh array for the values: the index must not share the buffer the names are written into.
    out = pd.Series(np.array(products, dtype=object), index=index, name="description", dtype=object)
    out.iloc[described] = names
    return out
