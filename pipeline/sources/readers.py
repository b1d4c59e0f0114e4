"""Read invoice lines from .xlsx, .csv and .parquet files into the raw contract.

What belongs here: finding source files, parsing each format, mapping the two Online Retail header
variants onto snake_case names, vectorized type normalization, and lineage columns (``source_file``,
``source_sheet``, ``source_row``). What does not: business rules such as cancellations, non-product
codes, duplicates or non-positive quantities (``pipeline.staging.cleaning``), and anything Dagster.

The raw contract (``RAW_COLUMNS``) keeps every data row. Values that cannot be parsed become missing
(``<NA>``, ``NaN`` or ``NaT``) in the typed column so that the cleaning step can reject the row with a
reason; nothing is guessed. In particular a quantity like ``"12 pcs"`` or a price written with a decimal
comma (``"1,50"``) becomes missing rather than being coerced, because the same file may also use the
comma as a thousands separator and a silent misreading would change revenue.

Non-fatal findings (ignored extra columns, skipped sheets, skipped blank rows) are logged on the
``pipeline.sources.readers`` logger and listed in ``frame.attrs["reader_warnings"]`` of the returned frame.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import logging
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import python_calamine

from pipeline.sources.contract import RAW_COLUMNS, UCI_HEADER

logger = logging.getLogger(__name__)

#: Key under ``DataFrame.attrs`` that lists non-fatal reader findings.
WARNINGS_ATTR = "reader_warnings"

SOURCE_SUFFIXES = (".xlsx", ".csv", ".parquet")

DEFAULT_MAX_UNCOMPRESSED_BYTES = 2_000_000_000

# Header names are compared after lower-casing and removing spaces, underscores and hyphens, so
# "Customer ID", " customer id ", "Customer_ID" and "CustomerID" all read as "customerid".
_HEADER_ALIASES = {
    "invoice": "invoice",
    "invoiceno": "invoice",
    "stockcode": "stock_code",
    "description": "description",
    "quantity": "quantity",
    "invoicedate": "invoice_date",
    "price": "price",
    "unitprice": "price",
    "customerid": "customer_id",
    "country": "country",
}
_DATA_COLUMNS = RAW_COLUMNS[:8]

# A worksheet with at least this many recognized columns is treated as a broken data sheet (error)
# rather than an unrelated sheet such as notes or a pivot (skipped).
_MIN_RECOGNIZED_FOR_DATA_SHEET = 4

# Tried in order, each on the values the previous formats left unparsed. Only month-first slash dates
# are accepted because that is how the UCI CSV exports write them; day-first input is never guessed.
_DATE_FORMATS = (
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%d %H:%M:%S.%f",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d",
    "%m/%d/%Y %H:%M",
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%Y",
    "%m/%d/%y %H:%M",
)
_EXCEL_EPOCH = "1899-12-30"
# Serial day numbers Excel can display: 1900-01-01 up to 9999-12-31.
_EXCEL_SERIAL_RANGE = (1.0, 2_958_466.0)
_INT64_LIMIT = 2.0**63


class SourceFormatError(ValueError):
    """A source file cannot be read as invoice lines (bad header, corrupt or empty file)."""


def empty_raw_frame() -> pd.DataFrame:
    """Return a zero-row frame with the raw contract's columns and dtypes.

    Returns:
        An empty DataFrame with columns ``RAW_COLUMNS``.
    """
    return _assemble(
        {column: pd.Series([], dtype=object) for column in _DATA_COLUMNS},
        source_file="",
        source_sheet=None,
        source_rows=np.array([], dtype=np.int64),
    )


def normalize_frame(
    df: pd.DataFrame,
    *,
    source_file: str,
    source_sheet: str | None,
    first_row: int = 2,
    arrow_text: bool = False,
) -> pd.DataFrame:
    """Map a frame with an Online Retail header onto the raw contract.

    Header matching ignores case, surrounding and inner spaces, underscores and hyphens, and accepts
    both the Online Retail II names (Invoice, Price, Customer ID) and the Online Retail names
    (InvoiceNo, UnitPrice, CustomerID). Unknown extra columns are dropped and reported in
    ``result.attrs["reader_warnings"]`` and on the module logger. No row is ever dropped.

    Args:
        df: One row per invoice line, with any of the accepted header variants. Not modified.
        source_file: Value for the ``source_file`` lineage column.
        source_sheet: Value for the ``source_sheet`` lineage column (``None`` outside workbooks).
        first_row: Spreadsheet row number of ``df``'s first row (the header is row 1, so 2 by default).
        arrow_text: Return the text columns Arrow-backed (see :func:`read_file`).

    Returns:
        A new DataFrame with columns ``RAW_COLUMNS`` and the contract dtypes.

    Raises:
        SourceFormatError: A required column is missing or two columns map to the same name.
    """
    warnings: list[str] = []
    rows = np.arange(first_row, first_row + len(df), dtype=np.int64)
    return _normalize(
        df,
        source_file=source_file,
        source_sheet=source_sheet,
        source_rows=rows,
        warnings=warnings,
        arrow_text=arrow_text,
    )


def read_file(
    path: str | Path,
    *,
    max_uncompressed_bytes: int = DEFAULT_MAX_UNCOMPRESSED_BYTES,
    arrow_text: bool = False,
    source_file: str | None = None,
) -> pd.DataFrame:
    """Read one .xlsx, .csv or .parquet file into the raw contract.

    Workbooks: every worksheet whose header matches is read; sheets with few or no recognized columns
    (notes, pivots) are skipped, but a sheet that looks like data and misses a required column is an
    error. CSV: ``,`` or ``;`` delimiter (whichever the header line uses more), UTF-8 with a fallback
    to cp1252 and then latin-1, quoted fields may hold newlines. Entirely blank rows are skipped
    (``source_row`` keeps the true row numbers of the others).

    Args:
        path: The file. ``source_file`` holds its resolved absolute path.
        max_uncompressed_bytes: Refuse a workbook whose zip members add up to more than this when
            uncompressed (zip-bomb guard).
        arrow_text: Return the text columns (invoice, stock code, description, country, source file and
            sheet) as dictionary-encoded Arrow columns (``pd.ArrowDtype``) instead of Python strings. The
            values are the same; a line then costs a few bytes per text column instead of a string
            object, which makes the frame several times cheaper to build, hold and write to DuckDB.
        source_file: The ``source_file`` lineage value and the name error messages give, when ``path`` is a
            local copy of a file that lives elsewhere (``s3://bucket/exports/2011.xlsx``); default the
            resolved absolute path.

    Returns:
        A DataFrame with columns ``RAW_COLUMNS``.

    Raises:
        SourceFormatError: Unsupported suffix, empty or corrupt file, no matching sheet, missing column.
        FileNotFoundError: ``path`` does not exist.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"source file not found: {path}")
    suffix = path.suffix.lower()
    source_file = str(path.resolve()) if source_file is None else source_file
    if suffix == ".xlsx":
        return _read_xlsx(
            path,
            source_file=source_file,
            max_uncompressed_bytes=max_uncompressed_bytes,
            arrow_text=arrow_text,
        )
    if suffix == ".csv":
        return _read_csv(path, source_file=source_file, arrow_text=arrow_text)
    if suffix == ".parquet":
        return _read_parquet(path, source_file=source_file, arrow_text=arrow_text)
    raise SourceFormatError(
        f"{source_file}: unsupported file type {suffix!r}; expected one of {SOURCE_SUFFIXES}"
    )


def list_source_files(path: str | Path) -> list[Path]:
    """List the readable source files at ``path``.

    Args:
        path: A single file, or a folder whose .xlsx/.csv/.parquet files are taken (not recursive;
            hidden files and Office lock files ``~$...`` are ignored).

    Returns:
        The files, sorted by name.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        SourceFormatError: ``path`` is a file with an unsupported suffix.
    """
    path = Path(path)
    if path.is_file():
        if path.suffix.lower() not in SOURCE_SUFFIXES:
            raise SourceFormatError(
                f"{path}: unsupported file type {path.suffix!r}; expected one of {SOURCE_SUFFIXES}"
            )
        return [path]
    if not path.is_dir():
        raise FileNotFoundError(f"source path not found: {path}")
    return sorted(
        (
            child
            for child in path.iterdir()
            if child.is_file()
            and child.suffix.lower() in SOURCE_SUFFIXES
            and not child.name.startswith((".", "~$"))
        ),
        key=lambda child: child.name,
    )


def read_source(
    path: str | Path, *, max_uncompressed_bytes: int = DEFAULT_MAX_UNCOMPRESSED_BYTES
) -> pd.DataFrame:
    """Read a file or every source file in a folder and concatenate them.

    Args:
        path: A file or a folder (see ``list_source_files``).
        max_uncompressed_bytes: Zip-bomb limit passed to ``read_file`` for workbooks.

    Returns:
        All rows in file order, columns ``RAW_COLUMNS``; ``attrs["reader_warnings"]`` gathers the
        warnings of every file.

    Raises:
        SourceFormatError: A folder holds no source file, or a file cannot be read.
    """
    files = list_source_files(path)
    if not files:
        raise SourceFormatError(f"{Path(path).resolve()}: no {'/'.join(SOURCE_SUFFIXES)} files found")
    frames = [read_file(file, max_uncompressed_bytes=max_uncompressed_bytes) for file in files]
    warnings = [message for frame in frames for message in frame.attrs.get(WARNINGS_ATTR, [])]
    for frame in frames:
        frame.attrs = {}
    combined = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    combined.attrs = {WARNINGS_ATTR: warnings}
    return combined


def file_fingerprint(path: str | Path, *, chunk_size: int = 1 << 20) -> str:
    """Return the SHA-256 hex digest of a file's content, read in chunks.

    Args:
        path: The file.
        chunk_size: Bytes read at a time.

    Returns:
        The lower-case hex digest.
    """
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def _header_key(name: object) -> str:
    return "".join(ch for ch in str(name).lower() if ch not in " _-\t\n\r\xa0")


def _where(source_file: str, source_sheet: str | None) -> str:
    return f"{source_file}, sheet {source_sheet!r}" if source_sheet is not None else source_file


def _match_header(columns: Sequence[object]) -> tuple[dict[str, int], list[str], list[str]]:
    """Map raw column positions onto contract names.

    Returns:
        ``{contract name: column position}``, the unknown column names, and contract names that more
        than one column maps to.
    """
    found: dict[str, int] = {}
    unknown: list[str] = []
    clashes: list[str] = []
    for position, name in enumerate(columns):
        target = _HEADER_ALIASES.get(_header_key(name))
        if target is None:
            unknown.append(str(name))
        elif target in found:
            clashes.append(target)
        else:
            found[target] = position
    return found, unknown, clashes


def _normalize(
    df: pd.DataFrame,
    *,
    source_file: str,
    source_sheet: str | None,
    source_rows: np.ndarray,
    warnings: list[str],
    arrow_text: bool = False,
) -> pd.DataFrame:
    where = _where(source_file, source_sheet)
    header = [str(column) for column in df.columns]
    found, unknown, clashes = _match_header(header)
    if clashes:
        raise SourceFormatError(
            f"{where}: several columns map to {sorted(set(clashes))}; header was {header}"
        )
    missing = [
        expected
        for column, expected in zip(_DATA_COLUMNS, UCI_HEADER, strict=True)
        if column not in found
    ]
    if missing:
        raise SourceFormatError(
            f"{where}: missing required column(s) {missing}; header was {header}, "
            f"expected {list(UCI_HEADER)} (or InvoiceNo/UnitPrice/CustomerID)"
        )
    named_unknown = [name for name in unknown if name.strip() and not name.startswith("Unnamed: ")]
    if named_unknown:
        message = f"{where}: ignored unknown column(s) {named_unknown}"
        logger.warning(message)
        warnings.append(message)
    columns = {target: df.iloc[:, position] for target, position in found.items()}
    result = _assemble(
        columns,
        source_file=source_file,
        source_sheet=source_sheet,
        source_rows=source_rows,
        arrow_text=arrow_text,
    )
    result.attrs = {WARNINGS_ATTR: list(warnings)}
    return result


def _assemble(
    columns: dict[str, pd.Series],
    *,
    source_file: str,
    source_sheet: str | None,
    source_rows: np.ndarray,
    arrow_text: bool = False,
) -> pd.DataFrame:
    n_rows = len(source_rows)
    lines = np.zeros(n_rows, dtype=np.intp)
    # Columns are new arrays, so the frame takes them without copying them into one block per dtype.
    data = {
        "invoice": _text_column(*_code_values(columns["invoice"]), arrow=arrow_text),
        "stock_code": _text_column(*_code_values(columns["stock_code"]), arrow=arrow_text),
        "description": _text_column(*_text_values(columns["description"]), arrow=arrow_text),
        "quantity": _as_int(columns["quantity"]),
        "invoice_date": _as_datetime(columns["invoice_date"]),
        "price": _as_float(columns["price"]),
        "customer_id": _as_int(columns["customer_id"]),
        "country": _text_column(*_text_values(columns["country"]), arrow=arrow_text),
        "source_file": _text_column(lines, np.array([source_file], dtype=object), arrow=arrow_text),
        "source_sheet": _text_column(lines, np.array([source_sheet], dtype=object), arrow=arrow_text),
        "source_row": np.asarray(source_rows, dtype=np.int64),
    }
    return pd.DataFrame(data, copy=False)


def _text_column(codes: np.ndarray, values: np.ndarray, *, arrow: bool) -> pd.Series:
    """Per-line text from per-value text (``None`` for missing; code -1 means a missing cell).

    As Python strings, or (``arrow``) as a dictionary-encoded Arrow column: four bytes per line and one copy
    of each distinct text, built without creating a string per line. A column with no text at all (a file
    outside workbooks has no sheet) is Arrow's null type, which DuckDB stores as it stores an all-None column.
    """
    if not arrow:
        # Every cell refers to one of the distinct strings; ndarray.fill-like broadcasting, no copies.
        return pd.Series(_broadcast(values, codes, None), dtype=object)
    distinct, known = pd.factorize(pd.Series(values, dtype=object), use_na_sentinel=True)
    per_line = np.append(distinct, -1)[codes]
    if not len(known):
        return pd.Series(pd.arrays.ArrowExtensionArray(pa.nulls(len(codes))))
    indices = pa.array(per_line.astype(np.int32), mask=per_line < 0)
    dictionary = pa.array(np.asarray(known, dtype=object), type=pa.string())
    return pd.Series(pd.arrays.ArrowExtensionArray(pa.DictionaryArray.from_arrays(indices, dictionary)))


def _factorize(series: pd.Series) -> tuple[np.ndarray, pd.Series]:
    """Split a column into integer codes (-1 for missing) and its distinct values.

    Invoice numbers, codes, descriptions, countries, dates, quantities and prices all repeat heavily
    (a million lines hold at most tens of thousands of distinct values), so parsing the distinct values
    once and broadcasting the result keeps normalization fast whatever the cell types. Arrow-backed text
    (from parquet) is dictionary-encoded by Arrow without creating a Python string per cell.
    """
    if isinstance(series.dtype, pd.ArrowDtype):
        codes, uniques = pd.factorize(series, use_na_sentinel=True)
        return codes, pd.Series(np.asarray(uniques, dtype=object), dtype=object)
    codes, uniques = pd.factorize(series.to_numpy(dtype=object), use_na_sentinel=True)
    return codes, pd.Series(uniques, dtype=object)


def _broadcast(values: np.ndarray, codes: np.ndarray, missing: object) -> np.ndarray:
    # Code -1 (a missing cell) picks the appended ``missing`` value.
    return np.append(values, np.array([missing], dtype=values.dtype))[codes]


def _strip_blank_to_none(values: pd.Series) -> pd.Series:
    text = values.astype(str).str.strip()
    return text.mask(text.eq(""), None)


def _strip_code(values: pd.Series) -> pd.Series:
    # Spreadsheets store all-digit invoices and stock codes as numbers, which arrive as 489434.0 or
    # "489434.0"; drop the zero fraction so every format yields the same code. Only values with a dot
    # can match, so the regular expression runs on those alone.
    text = _strip_blank_to_none(values)
    dotted = text.str.contains(".", regex=False, na=False).to_numpy(dtype=bool)
    if dotted.any():
        text = text.copy()
        text[dotted] = text[dotted].str.replace(r"^(\d+)\.0+$", r"\1", regex=True)
    return text


def _code_values(series: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Codes of the cells and the normalized code text of each distinct cell (``None`` if blank)."""
    codes, uniques = _factorize(series)
    return codes, _strip_code(uniques).to_numpy(dtype=object)


def _text_values(series: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Codes of the cells and the stripped text of each distinct cell (``None`` if blank)."""
    codes, uniques = _factorize(series)
    return codes, _strip_blank_to_none(uniques).to_numpy(dtype=object)


def _is_plain_numeric(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def _as_number(series: pd.Series) -> np.ndarray:
    """Parse to float64; anything unparseable or non-finite becomes NaN."""
    if _is_plain_numeric(series):
        numbers = series.to_numpy(dtype="float64", na_value=np.nan)
    else:
        codes, uniques = _factorize(series)
        parsed = pd.to_numeric(uniques, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
        numbers = _broadcast(parsed, codes, np.nan)
    return np.where(np.isfinite(numbers), numbers, np.nan)


def _as_float(series: pd.Series) -> pd.Series:
    return pd.Series(_as_number(series), dtype="float64")


def _as_int(series: pd.Series) -> pd.Series:
    if pd.api.types.is_integer_dtype(series):
        return pd.Series(series.astype("Int64").array)
    numbers = _as_number(series)
    # A fractional quantity or customer id is not a count or id we can trust: make it missing.
    valid = np.isfinite(numbers) & (numbers == np.floor(numbers)) & (np.abs(numbers) < _INT64_LIMIT)
    integers = np.where(valid, numbers, 0).astype(np.int64)
    return pd.Series(pd.arrays.IntegerArray(integers, ~valid))


def _as_datetime(series: pd.Series) -> pd.Series:
    if isinstance(series.dtype, pd.DatetimeTZDtype):
        # Keep the wall-clock time the shop recorded rather than shifting to UTC.
        series = series.dt.tz_localize(None)
    if pd.api.types.is_datetime64_dtype(series):
        values = series.to_numpy()
        in_range = (values >= pd.Timestamp.min.to_datetime64()) & (values <= pd.Timestamp.max.to_datetime64())
        return pd.Series(np.where(in_range, values, np.datetime64("NaT")).astype("datetime64[ns]"))
    if _is_plain_numeric(series):
        return pd.Series(_from_excel_serial(_as_number(series)))
    codes, uniques = _factorize(series)
    parsed = _datetimes_from_objects(uniques)
    return pd.Series(_broadcast(parsed, codes, np.datetime64("NaT")))


def _datetimes_from_objects(values: pd.Series) -> np.ndarray:
    """Parse non-missing cells of any type: datetimes, text dates, or Excel serial day numbers."""
    kind = pd.api.types.infer_dtype(values, skipna=True)
    if kind in {"datetime", "datetime64", "date"}:
        return _coerce_datetimes(values)
    if kind == "string":
        return _parse_date_strings(values)
    if kind in {"floating", "integer", "mixed-integer-float"}:
        return _from_excel_serial(_as_number(values))
    # Mixed cells (e.g. a workbook where some dates were typed as text): parse each kind separately.
    result = np.full(len(values), np.datetime64("NaT"), dtype="datetime64[ns]")
    is_string = values.map(lambda value: isinstance(value, str)).to_numpy(dtype=bool)
    is_number = values.map(lambda value: isinstance(value, int | float) and not isinstance(value, bool))
    is_number = is_number.to_numpy(dtype=bool)
    is_moment = values.map(lambda value: isinstance(value, dt.date | np.datetime64)).to_numpy(dtype=bool)
    if is_string.any():
        result[is_string] = _parse_date_strings(values[is_string])
    if is_number.any():
        result[is_number] = _from_excel_serial(_as_number(values[is_number]))
    if is_moment.any():
        result[is_moment] = _coerce_datetimes(values[is_moment])
    return result


def _coerce_datetimes(values: pd.Series) -> np.ndarray:
    # Keep the wall-clock time of timezone-aware cells; mixing aware and naive values would fail.
    values = values.map(lambda value: value.replace(tzinfo=None) if getattr(value, "tzinfo", None) else value)
    parsed = pd.to_datetime(values, errors="coerce")
    if isinstance(parsed.dtype, pd.DatetimeTZDtype):
        parsed = parsed.dt.tz_localize(None)
    return parsed.to_numpy().astype("datetime64[ns]")


def _parse_date_strings(values: pd.Series) -> np.ndarray:
    # Explicit formats only, each tried on what the previous ones left unparsed: no day-first guessing.
    text = values.reset_index(drop=True).astype(str).str.strip()
    result = np.full(len(text), np.datetime64("NaT"), dtype="datetime64[ns]")
    pending = text.ne("").to_numpy()
    for date_format in _DATE_FORMATS:
        if not pending.any():
            break
        parsed = pd.to_datetime(text[pending], format=date_format, errors="coerce").to_numpy()
        parsed_ok = ~np.isnat(parsed)
        targets = np.flatnonzero(pending)[parsed_ok]
        result[targets] = parsed[parsed_ok]
        pending[targets] = False
    return result


def _from_excel_serial(days: np.ndarray) -> np.ndarray:
    low, high = _EXCEL_SERIAL_RANGE
    usable = np.isfinite(days) & (days >= low) & (days < high)
    stamps = pd.to_datetime(np.where(usable, days, np.nan), unit="D", origin=_EXCEL_EPOCH, errors="coerce")
    # A day fraction in binary floating point is off by some nanoseconds; Excel keeps milliseconds.
    return np.asarray(stamps.round("ms"), dtype="datetime64[ns]")


def _drop_blank_rows(
    df: pd.DataFrame, source_rows: np.ndarray, *, where: str, warnings: list[str]
) -> tuple[pd.DataFrame, np.ndarray]:
    """Drop rows whose cells are all empty; they are spacing in a spreadsheet, not invoice lines."""
    if df.empty:
        return df, source_rows
    blank = np.ones(len(df), dtype=bool)
    for position in range(df.shape[1]):
        column = df.iloc[:, position]
        empty = column.isna().to_numpy()
        if column.dtype == object:
            empty |= column.to_numpy() == ""
        blank &= empty
        if not blank.any():
            return df, source_rows
    message = f"{where}: skipped {int(blank.sum())} blank row(s)"
    logger.info(message)
    warnings.append(message)
    keep = ~blank
    return df.loc[keep].reset_index(drop=True), source_rows[keep]


def _check_zip(path: Path, *, source_file: str, max_uncompressed_bytes: int) -> None:
    if not zipfile.is_zipfile(path):
        raise SourceFormatError(
            f"{source_file}: not a valid .xlsx file (not a zip archive; corrupt or truncated?)"
        )
    try:
        with zipfile.ZipFile(path) as archive:
            total = sum(member.file_size for member in archive.infolist())
    except (zipfile.BadZipFile, OSError, ValueError) as error:
        raise SourceFormatError(f"{source_file}: corrupt .xlsx file ({error})") from error
    if total > max_uncompressed_bytes:
        raise SourceFormatError(
            f"{source_file}: workbook expands to {total:,} bytes, over the limit of "
            f"{max_uncompressed_bytes:,} (possible zip bomb)"
        )


def _read_xlsx(
    path: Path, *, source_file: str, max_uncompressed_bytes: int, arrow_text: bool
) -> pd.DataFrame:
    _check_zip(path, source_file=source_file, max_uncompressed_bytes=max_uncompressed_bytes)
    warnings: list[str] = []
    frames: list[pd.DataFrame] = []
    sheets_found: list[str] = []
    try:
        workbook = python_calamine.CalamineWorkbook.from_path(str(path))
    except python_calamine.CalamineError as error:
        raise SourceFormatError(f"{source_file}: cannot open workbook ({error})") from error
    try:
        for metadata in workbook.sheets_metadata:
            name = metadata.name
            sheets_found.append(name)
            if metadata.typ != python_calamine.SheetTypeEnum.WorkSheet:
                continue
            try:
                sheet = workbook.get_sheet_by_name(name)
                rows = sheet.to_python()
            except python_calamine.CalamineError as error:
                raise SourceFormatError(
                    f"{source_file}, sheet {name!r}: cannot read sheet ({error})"
                ) from error
            frame = _sheet_frame(
                rows,
                sheet_start=sheet.start,
                source_file=source_file,
                sheet=name,
                warnings=warnings,
                arrow_text=arrow_text,
            )
            # Release this sheet's cells before the next sheet is loaded.
            del rows, sheet
            if frame is not None:
                frames.append(frame)
    finally:
        workbook.close()
    if not frames:
        raise SourceFormatError(
            f"{source_file}: no sheet has the invoice header {list(UCI_HEADER)}; "
            f"sheets found: {sheets_found}"
        )
    result = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    result.attrs = {WARNINGS_ATTR: warnings}
    return result


def _sheet_frame(
    rows: list[list[object]],
    *,
    sheet_start: tuple[int, int] | None,
    source_file: str,
    sheet: str,
    warnings: list[str],
    arrow_text: bool,
) -> pd.DataFrame | None:
    """Normalize one worksheet, or return None when it is not an invoice sheet."""
    where = _where(source_file, sheet)
    if not rows or sheet_start is None:
        message = f"{where}: skipped empty sheet"
        logger.info(message)
        warnings.append(message)
        return None
    header = ["" if cell is None else str(cell) for cell in rows[0]]
    found, _, _ = _match_header(header)
    if len(found) < _MIN_RECOGNIZED_FOR_DATA_SHEET:
        message = f"{where}: skipped sheet without the invoice header (header was {header})"
        logger.info(message)
        warnings.append(message)
        return None
    body = rows[1:]
    # One 2D object array, filled without pandas' per-column type inference; calamine rows are
    # rectangular, so every row has the header's width.
    cells = np.empty((len(body), len(header)), dtype=object)
    if body:
        cells[:] = body
    frame = pd.DataFrame(cells, dtype=object, copy=False)
    frame.columns = header
    # calamine's range starts at the first used cell: sheet_start[0] is the header's 0-based row.
    header_row = sheet_start[0] + 1
    source_rows = np.arange(header_row + 1, header_row + 1 + len(frame), dtype=np.int64)
    frame, source_rows = _drop_blank_rows(frame, source_rows, where=where, warnings=warnings)
    return _normalize(
        frame,
        source_file=source_file,
        source_sheet=sheet,
        source_rows=source_rows,
        warnings=warnings,
        arrow_text=arrow_text,
    )


def _decode(raw: bytes) -> str:
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    # latin-1 maps every byte, so this is the last resort that always succeeds.
    return raw.decode("latin-1")


def _read_csv(path: Path, *, source_file: str, arrow_text: bool) -> pd.DataFrame:
    raw = path.read_bytes()
    if not raw.strip():
        raise SourceFormatError(f"{source_file}: empty file, expected a header {list(UCI_HEADER)}")
    text = _decode(raw)
    del raw
    header_line = text.lstrip("\r\n").split("\n", 1)[0]
    delimiter = ";" if header_line.count(";") > header_line.count(",") else ","
    try:
        frame = pd.read_csv(
            io.StringIO(text),
            sep=delimiter,
            dtype=str,
            keep_default_na=False,
            na_values=[""],
            skip_blank_lines=False,
            engine="c",
        )
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as error:
        raise SourceFormatError(f"{source_file}: cannot parse CSV ({error})") from error
    warnings: list[str] = []
    source_rows = np.arange(2, 2 + len(frame), dtype=np.int64)
    frame, source_rows = _drop_blank_rows(frame, source_rows, where=source_file, warnings=warnings)
    return _normalize(
        frame,
        source_file=source_file,
        source_sheet=None,
        source_rows=source_rows,
        warnings=warnings,
        arrow_text=arrow_text,
    )


def _arrow_text_type(arrow_type: pa.DataType) -> pd.ArrowDtype | None:
    """Keep text columns Arrow-backed; every other type converts as ``pd.read_parquet`` converts it."""
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return pd.ArrowDtype(arrow_type)
    return None


def _read_parquet(path: Path, *, source_file: str, arrow_text: bool) -> pd.DataFrame:
    try:
        # As pd.read_parquet, but text stays in Arrow: normalization works on its distinct values, so the
        # million Python strings pandas would create per text column are never needed.
        table = pq.read_table(path, use_pandas_metadata=True)
        frame = table.to_pandas(types_mapper=_arrow_text_type)
        del table
    except Exception as error:  # pyarrow raises several unrelated types for a corrupt file
        raise SourceFormatError(f"{source_file}: cannot read parquet ({error})") from error
    source_rows = np.arange(2, 2 + len(frame), dtype=np.int64)
    return _normalize(
        frame,
        source_file=source_file,
        source_sheet=None,
        source_rows=source_rows,
        warnings=[],
        arrow_text=arrow_text,
    )
