"""Split raw invoice lines into sales lines fit for analysis and rejected lines with a reason.

Belongs here: the cleaning rules and their order. Not here: reading files (``pipeline.readers``) or anything
that knows about Dagster. Nothing is dropped: every raw line ends up in exactly one of the two outputs, and the
lineage columns (``source_file``, ``source_sheet``, ``source_row``) let anyone trace it back to its file.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

RAW_COLUMNS = [
    "invoice",
    "stock_code",
    "description",
    "quantity",
    "invoice_date",
    "price",
    "customer_id",
    "country",
    "source_file",
    "source_sheet",
    "source_row",
]
BUSINESS_COLUMNS = RAW_COLUMNS[:8]
LINEAGE_COLUMNS = RAW_COLUMNS[8:]

#: Stock codes that are not products: postage, carriage, fees, manual lines, discounts, samples, tests, vouchers.
#: Matched on the upper-cased, stripped code. DCGS* codes are real gift-set products and are kept.
NON_PRODUCT_CODE_PATTERN = (
    r"^(?:POST|DOT|C2|C3|M|D|S|B|CRUK|PADS|AMAZONFEE|BANK CHARGES|ADJUST\d*|TEST\d*|GIFT|GIFT_\d+_\d+|SP\d+)$"
)

#: Rejection reasons in the order they are tested; a line gets the first one that applies.
REASONS = (
    "missing invoice",
    "missing stock code",
    "missing invoice date",
    "unparseable quantity",
    "unparseable price",
    "missing country",
    "cancellation",
    "adjustment",
    "non-product code",
    "non-positive quantity",
    "non-positive price",
    "invoice date out of range",
    "exact duplicate",
)


@dataclass(frozen=True)
class CleaningResult:
    """The two disjoint parts of the raw lines.

    Attributes:
        cleaned: Sales lines fit for analysis (see ``schemas.CleanedTransactions``).
        rejected: Every other raw line with its ``reason`` (see ``schemas.RejectedRows``).
    """

    cleaned: pd.DataFrame
    rejected: pd.DataFrame


def is_non_product_code(stock_code: pd.Series) -> pd.Series:
    """Tell which stock codes are not products.

    Args:
        stock_code: Stock codes as text; missing values count as not matching.

    Returns:
        A boolean Series aligned with ``stock_code``.
    """
    codes = _arrow_text(stock_code).str.strip().str.upper()
    return codes.str.fullmatch(NON_PRODUCT_CODE_PATTERN).fillna(False).astype(bool)


def _arrow_text(values: pd.Series) -> pd.Series:
    """Text as Arrow-backed strings: vectorized string kernels instead of a Python loop per value."""
    return values.astype("string[pyarrow]")


def _blank(values: pd.Series) -> pd.Series:
    text = _arrow_text(values).str.strip()
    return (text.isna() | (text == "")).fillna(True).astype(bool)


def clean(
    raw: pd.DataFrame,
    *,
    min_date: pd.Timestamp = pd.Timestamp("2009-01-01"),
    max_date: pd.Timestamp | None = None,
) -> CleaningResult:
    """Apply the cleaning rules to raw invoice lines.

    Rules, first match wins (the reason names the rule): missing invoice, stock code, date, quantity, price or
    country; cancellation (invoice starts with ``C``); adjustment (invoice starts with ``A``); non-product stock
    code; quantity <= 0; price <= 0; invoice date outside ``[min_date, max_date]``; exact duplicate of an earlier
    line on all business columns (the first occurrence is kept).

    Args:
        raw: Raw lines with ``RAW_COLUMNS`` (see ``schemas.RawInvoices``).
        min_date: Earliest plausible invoice date (the shop's records start in December 2009; anything dated
            before 2009 is a typing or conversion error).
        max_date: Latest plausible invoice date; ``None`` means the day after the run date, so only
            invoices dated in the future are rejected.

    Returns:
        The cleaned lines (with upper-cased ``stock_code`` and ``revenue``) and the rejected lines with
        ``reason``, both in input order; together they hold every input line exactly once.
    """
    missing = [c for c in RAW_COLUMNS if c not in raw.columns]
    if missing:
        raise ValueError(f"raw lines lack required columns {missing}; expected {RAW_COLUMNS}")
    frame = raw[RAW_COLUMNS].reset_index(drop=True)
    if max_date is None:
        max_date = pd.Timestamp.now().normalize() + pd.Timedelta(days=1)

    invoice = _arrow_text(frame["invoice"]).str.strip()
    quantity = frame["quantity"].astype("Int64")
    price = frame["price"].astype("float64")
    dates = frame["invoice_date"]
    rules: list[tuple[str, pd.Series]] = [
        ("missing invoice", _blank(frame["invoice"])),
        ("missing stock code", _blank(frame["stock_code"])),
        ("missing invoice date", dates.isna()),
        ("unparseable quantity", quantity.isna()),
        ("unparseable price", price.isna()),
        ("missing country", _blank(frame["country"])),
        ("cancellation", invoice.str.upper().str.startswith("C").fillna(False)),
        ("adjustment", invoice.str.upper().str.startswith("A").fillna(False)),
        ("non-product code", is_non_product_code(frame["stock_code"])),
        ("non-positive quantity", (quantity <= 0).fillna(False)),
        ("non-positive price", (price <= 0) & price.notna()),
        ("invoice date out of range", ((dates < min_date) | (dates > max_date)).fillna(False)),
    ]
    reason = np.full(len(frame), None, dtype=object)
    for name, mask in rules:
        hit = mask.to_numpy(dtype=bool) & pd.isna(reason)
        reason[hit] = name
    candidates = pd.isna(reason)
    duplicated = frame.loc[candidates, BUSINESS_COLUMNS].duplicated(keep="first")
    reason[np.flatnonzero(candidates)[duplicated.to_numpy()]] = "exact duplicate"

    keep = pd.isna(reason)
    cleaned = frame.loc[keep].copy()
    cleaned["invoice"] = invoice[keep].astype(object)
    cleaned["stock_code"] = _arrow_text(cleaned["stock_code"]).str.strip().str.upper().astype(object)
    cleaned["quantity"] = cleaned["quantity"].astype("int64")
    cleaned["revenue"] = cleaned["quantity"].to_numpy(dtype="float64") * cleaned["price"].to_numpy()
    rejected = frame.loc[~keep].copy()
    rejected["reason"] = reason[~keep]
    return CleaningResult(cleaned=cleaned.reset_index(drop=True), rejected=rejected.reset_index(drop=True))


def reason_counts(rejected: pd.DataFrame) -> dict[str, int]:
    """Count rejected lines per reason, in rule order, including reasons with no line.

    Args:
        rejected: Output ``rejected`` of :func:`clean`.

    Returns:
        Mapping from every reason in ``REASONS`` to its line count.
    """
    counts = rejected["reason"].value_counts()
    return {name: int(counts.get(name, 0)) for name in REASONS}
