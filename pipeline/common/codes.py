"""What a stock code is: the staged format, the service codes that are not products, and real products.

One definition serves cleaning (which rejects non-product lines), the staging schema, the recommenders (which
only learn from and recommend real products) and their table schemas.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

#: The format of a stock code as staged: upper-case letters and digits, 3 to 12 of them.
STOCK_CODE_PATTERN = r"^[0-9A-Z]{3,12}$"

#: Stock codes that are not products: postage, carriage, fees, manual lines, discounts, samples, tests, vouchers.
#: Matched on the upper-cased, stripped code. DCGS* codes are real gift-set products.
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
    staged = text.astype("string[pyarrow]").str.fullmatch(STOCK_CODE_PATTERN).fillna(False).astype(bool)
    service = text.astype("string[pyarrow]").str.fullmatch(NON_PRODUCT_CODE_PATTERN).fillna(False).astype(bool)
    valid = set(distinct[staged & ~service])
    return values.isin(valid).to_numpy(dtype=bool)
