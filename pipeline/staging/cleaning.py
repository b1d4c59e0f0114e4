"""Split raw invoice lines into sales lines fit for analysis and rejected lines with a reason.

Belongs here: the cleaning rules and their order. Not here: reading files (``pipeline.sources.readers``) or
anything that knows about Dagster. Nothing is dropped: every raw line ends up in exactly one of the two
outputs, and the lineage columns (``source_file``, ``source_sheet``, ``source_row``) let anyone trace it back
to its file.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from pipeline.common.codes import is_non_product_code
from pipeline.sources.contract import BUSINESS_COLUMNS, RAW_COLUMNS

#: How each text column is written to ``staging.cleaned_transactions``: surrounding blanks removed, stock
#: codes also upper-cased (``85123a`` and ``85123A`` are one product). Exact duplicates are judged on these.
STAGING_TEXT: dict[str, Callable[[pd.Series], pd.Series]] = {
    "invoice": lambda text: text.str.strip(),
    "stock_code": lambda text: text.str.strip().str.upper(),
    "description": lambda text: text.str.strip(),
    "country": lambda text: text.str.strip(),
}

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


def _arrow_text(values: pd.Series) -> pd.Series:
    """Text as Arrow-backed strings: vectorized string kernels instead of a Python loop per value."""
    return values.astype("string[pyarrow]")


def _blank(values: pd.Series) -> pd.Series:
    text = _arrow_text(values).str.strip()
    return (text.isna() | (text == "")).fillna(True).astype(bool)


@dataclass(frozen=True)
class _Coded:
    """A text column as integer codes into its distinct values.

    A million raw lines hold a few tens of thousands of distinct invoices, codes and countries, so every
    text rule is evaluated once per distinct value (with the same Arrow kernels as on a whole column) and
    broadcast to the lines through the codes.

    Attributes:
        codes: Per line, the position of its value in ``values``; -1 for a missing cell.
        values: The distinct non-missing values (object dtype).
        by_value: Whether equal values share a code (False: one code per line, see :meth:`of`).
    """

    codes: np.ndarray
    values: pd.Series
    by_value: bool

    @classmethod
    def of(cls, column: pd.Series) -> _Coded:
        """Code ``column`` (equal values share a code, as in ``pd.factorize``).

        Only a column of text alone is coded by value: with mixed cell types, equal-comparing values of
        different types (``1`` and ``1.0``) would share a code though their text differs, so such a column
        keeps one code per line and the rules see every cell as it is.
        """
        if isinstance(column.dtype, pd.ArrowDtype) or pd.api.types.infer_dtype(column, skipna=True) in (
            "string",
            "empty",
        ):
            codes, uniques = pd.factorize(column, use_na_sentinel=True)
            return cls(codes, pd.Series(np.asarray(uniques, dtype=object), dtype=object), by_value=True)
        per_line = pd.Series(column.to_numpy(dtype=object), dtype=object)
        return cls(np.arange(len(column)), per_line, by_value=False)

    def per_line(self, per_value: pd.Series | np.ndarray, missing: object) -> np.ndarray:
        """Broadcast one result per distinct value to the lines; missing cells get ``missing``."""
        values = np.asarray(per_value)
        return np.append(values, np.array([missing], dtype=values.dtype))[self.codes]

    def normalized(self, normalize: Callable[[pd.Series], pd.Series]) -> _Coded:
        """Code the column as it is written to staging.

        ``normalize`` runs once per distinct value; values equal after it share a code, and a blank result
        counts as missing (code -1).
        """
        text = normalize(_arrow_text(self.values))
        text = text.mask(text.eq("").fillna(False).astype(bool))
        # Codes of the normalized distinct values, then per line; -1 stays missing.
        value_codes, uniques = pd.factorize(text, use_na_sentinel=True)
        codes = np.append(value_codes, -1)[self.codes]
        return _Coded(codes, pd.Series(np.asarray(uniques, dtype=object), dtype=object), by_value=True)


def clean(
    raw: pd.DataFrame,
    *,
    min_date: pd.Timestamp = pd.Timestamp("2009-01-01"),
    max_date: pd.Timestamp | None = None,
) -> CleaningResult:
    """Apply the cleaning rules to raw invoice lines.

    Rules, first match wins (the reason names the rule): missing invoice, stock code, date, quantity, price or
    country; cancellation (invoice starts with ``C``); adjustment (invoice starts with ``A``); non-product
    stock code; quantity <= 0; price <= 0; invoice date outside ``[min_date, max_date]``; exact duplicate of
    an earlier line on all business columns as written to staging (text normalized by ``STAGING_TEXT``, so
    lines that differ only in surrounding blanks or in the case of the stock code are duplicates; the first is
    kept).

    Args:
        raw: Raw lines with ``RAW_COLUMNS`` (see ``schemas.RawInvoices``); columns may be NumPy- or
            Arrow-backed (``pd.ArrowDtype``, as read from the warehouse with Arrow). Not modified.
        min_date: Earliest plausible invoice date (the shop's records start in December 2009; anything dated
            before 2009 is a typing or conversion error).
        max_date: Latest plausible invoice date; ``None`` means the day after the run date, so only
            invoices dated in the future are rejected.

    Returns:
        The cleaned lines (text normalized by ``STAGING_TEXT``, a blank description missing, and ``revenue``)
        and the rejected lines as received with ``reason``, both in input order; together they hold every
        input line exactly once. Columns keep the kind of array of the input (an Arrow-backed text column
        stays Arrow-backed, a dictionary-encoded one dictionary-encoded), except ``quantity`` of the cleaned
        lines, which is int64.
    """
    missing = [c for c in RAW_COLUMNS if c not in raw.columns]
    if missing:
        raise ValueError(f"raw lines lack required columns {missing}; expected {RAW_COLUMNS}")
    if max_date is None:
        max_date = pd.Timestamp.now().normalize() + pd.Timedelta(days=1)

    invoice = _Coded.of(raw["invoice"])
    stock_code = _Coded.of(raw["stock_code"])
    country = _Coded.of(raw["country"])
    invoice_text = _arrow_text(invoice.values).str.strip().str.upper()
    quantity = raw["quantity"].astype("Int64")
    price = raw["price"].astype("float64")
    dates = raw["invoice_date"]
    rules: list[np.ndarray] = [
        invoice.per_line(_blank(invoice.values), True),
        stock_code.per_line(_blank(stock_code.values), True),
        dates.isna().to_numpy(dtype=bool),
        quantity.isna().to_numpy(dtype=bool),
        price.isna().to_numpy(dtype=bool),
        country.per_line(_blank(country.values), True),
        invoice.per_line(invoice_text.str.startswith("C").fillna(False).astype(bool), False),
        invoice.per_line(invoice_text.str.startswith("A").fillna(False).astype(bool), False),
        stock_code.per_line(is_non_product_code(stock_code.values), False),
        (quantity <= 0).fillna(False).to_numpy(dtype=bool),
        ((price <= 0) & price.notna()).to_numpy(dtype=bool),
        ((dates < min_date) | (dates > max_date)).fillna(False).to_numpy(dtype=bool),
    ]
    # One small integer per line (a reason's position in REASONS, or len(REASONS) while the line is kept).
    kept = len(REASONS)
    reason = np.full(len(raw), kept, dtype=np.int8)
    for position, hit in enumerate(rules):
        reason[hit & (reason == kept)] = position
    del rules
    coded = {"invoice": invoice, "stock_code": stock_code, "description": _Coded.of(raw["description"]),
             "country": country}
    staged = {name: coded[name].normalized(STAGING_TEXT[name]) for name in STAGING_TEXT}
    candidates = np.flatnonzero(reason == kept)
    duplicated = _duplicated(raw, candidates, staged)
    reason[candidates[duplicated]] = REASONS.index("exact duplicate")

    keep = np.flatnonzero(reason == kept)
    drop = np.flatnonzero(reason != kept)
    # Text columns are rebuilt from their distinct normalized values, so they are not copied first.
    cleaned = _take(raw, keep, [c for c in RAW_COLUMNS if c not in STAGING_TEXT])
    for name in sorted(STAGING_TEXT, key=RAW_COLUMNS.index):
        cleaned.insert(RAW_COLUMNS.index(name), name, _text_like(raw[name], staged[name], keep))
    cleaned["quantity"] = cleaned["quantity"].astype("int64")
    quantity_kept = cleaned["quantity"].to_numpy(dtype="float64")
    cleaned["revenue"] = quantity_kept * cleaned["price"].to_numpy(dtype="float64")
    rejected = _take(raw, drop, RAW_COLUMNS)
    rejected["reason"] = np.array(REASONS, dtype=object)[reason[drop]]
    return CleaningResult(cleaned=cleaned, rejected=rejected)


def _duplicated(raw: pd.DataFrame, rows: np.ndarray, staged: dict[str, _Coded]) -> np.ndarray:
    """Flag ``rows`` that repeat an earlier one of ``rows`` on every business column as written to staging.

    The same test as ``duplicated(keep="first")`` on the staging values of ``BUSINESS_COLUMNS`` at ``rows``,
    with the text columns compared through ``staged`` (codes of their normalized values). It runs only on the
    rows whose (invoice, stock code) pair occurs more than once among ``rows``: a line with a pair of its own
    cannot repeat another line, and the few percent of lines left keep their relative order, so "first" means
    the same.
    """
    invoice_codes, stock_codes = staged["invoice"].codes, staged["stock_code"].codes
    n_stock_codes = int(stock_codes.max(initial=-1)) + 2
    pair = (invoice_codes[rows].astype(np.int64) + 1) * n_stock_codes + (stock_codes[rows] + 1)
    shared = rows[pd.Series(pair).duplicated(keep=False).to_numpy(dtype=bool)]
    flags = np.zeros(len(rows), dtype=bool)
    if len(shared):
        others = [c for c in BUSINESS_COLUMNS if c not in staged]
        text_codes = {name: column.codes[shared] for name, column in staged.items()}
        key = _take(raw, shared, others).assign(**text_codes)
        repeated = key.duplicated(keep="first").to_numpy(dtype=bool)
        flags[np.searchsorted(rows, shared[repeated])] = True
    return flags


def _take(raw: pd.DataFrame, rows: np.ndarray, columns: list[str]) -> pd.DataFrame:
    """``columns`` of ``raw`` at ``rows`` (block-wise take, one copy), with a fresh index."""
    selected = raw if list(raw.columns) == columns else raw[columns]
    out = selected.take(rows)
    out.index = pd.RangeIndex(len(out))
    return out


def _text_like(
    source: pd.Series, column: _Coded, rows: np.ndarray
) -> np.ndarray | pd.api.extensions.ExtensionArray:
    """The text of ``column`` at ``rows``, in the kind of array ``source`` uses.

    Arrow-backed stays Arrow-backed, and a dictionary-encoded column stays dictionary-encoded (the staging
    asset encodes repeated text that way to save memory).
    """
    codes = column.codes[rows]
    missing = codes < 0
    distinct = column.values.to_numpy(dtype=object)  # noqa: PD011 (a field of _Coded, not DataFrame.values)
    if isinstance(source.dtype, pd.ArrowDtype):
        dictionary = pa.array(distinct, type=pa.string())
        indices = pa.array(np.where(missing, 0, codes).astype(np.int32), mask=missing)
        if pa.types.is_dictionary(source.dtype.pyarrow_dtype):
            return pd.arrays.ArrowExtensionArray(pa.DictionaryArray.from_arrays(indices, dictionary))
        return pd.arrays.ArrowExtensionArray(dictionary.take(indices))
    # Code -1 (missing) picks the appended None.
    values = np.append(distinct, np.array([None], dtype=object))
    return values[np.where(missing, len(values) - 1, codes)]


def reason_counts(rejected: pd.DataFrame) -> dict[str, int]:
    """Count rejected lines per reason, in rule order, including reasons with no line.

    Args:
        rejected: Output ``rejected`` of :func:`clean`.

    Returns:
        Mapping from every reason in ``REASONS`` to its line count.
    """
    counts = rejected["reason"].value_counts()
    return {name: int(counts.get(name, 0)) for name in REASONS}
