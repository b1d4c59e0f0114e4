"""Encodings of an exported table: parquet bytes and Tableau Hyper extracts.

Belongs here: turning one Arrow table (or DataFrame) into a parquet object or a ``.hyper`` file, and the
type mapping each format needs. Not here: reading the warehouse (the assets do, from the analyst copy) or
naming and publishing the files (``pipeline.exports.layout``).

Parquet keeps the warehouse types as they are (BIGINT as int64, DOUBLE, VARCHAR, TIMESTAMP_NS as
``timestamp[ns]``, lists as lists). It also records pandas metadata, so ``pandas.read_parquet`` gives back the
frame DuckDB's ``.df()`` gives: an integer column holding nulls comes back as ``Int64`` rather than as float.

Hyper cannot store everything DuckDB can, so :func:`hyper_ready` maps:

* ``timestamp[ns]`` to ``timestamp[us]`` (Hyper's TIMESTAMP has microseconds; a value with a finer part is
  refused, never rounded silently);
* list columns (``bundle_ids``, ``antecedents``) to JSON text (``["85123A", "22423"]``), which keeps order and
  element types and which Tableau can split or parse;
* all-null columns of Arrow's null type to text.

Other types (integers, floats, booleans, text, dates, timestamps) are written as they are. The table inside
each extract is ``"Extract"."Extract"``, the name Tableau gives single-table extracts, so Tableau opens the
file with no table to choose.
"""

from __future__ import annotations

import io
import json
import tempfile
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

#: Schema and table of the single table in every extract.
HYPER_TABLE = ("Extract", "Extract")


def to_arrow(data: pa.Table | pd.DataFrame) -> pa.Table:
    """An Arrow table of ``data`` (a DataFrame's index is dropped).

    Args:
        data: An Arrow table (returned as is) or a DataFrame.

    Returns:
        The Arrow table.
    """
    if isinstance(data, pa.Table):
        return data
    return pa.Table.from_pandas(data, preserve_index=False)


def _with_pandas_metadata(table: pa.Table) -> pa.Table:
    """Attach pandas metadata saying integer columns that hold nulls are pandas ``Int64``."""
    empty = table.slice(0, 0).to_pandas()
    for field, column in zip(table.schema, table.columns, strict=True):
        if pa.types.is_integer(field.type) and column.null_count:
            empty[field.name] = empty[field.name].astype("Int64")
    pandas_metadata = pa.Schema.from_pandas(empty, preserve_index=False).metadata or {}
    return table.replace_schema_metadata({**(table.schema.metadata or {}), **pandas_metadata})


def parquet_bytes(data: pa.Table | pd.DataFrame, *, compression: str = "zstd") -> bytes:
    """Encode a table as one parquet object.

    Args:
        data: The rows, as an Arrow table (e.g. DuckDB's ``.to_arrow_table()``) or a DataFrame.
        compression: Parquet codec (``zstd``, ``snappy``, ``gzip`` or ``none``).

    Returns:
        The parquet file's bytes; column types as in ``data`` (see the module docstring).
    """
    table = _with_pandas_metadata(to_arrow(data))
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression=compression)
    return buffer.getvalue()


def _json_text(column: pa.ChunkedArray) -> pa.Array:
    return pa.array(
        [None if value is None else json.dumps(value, ensure_ascii=False) for value in column.to_pylist()],
        type=pa.string(),
    )


def hyper_ready(data: pa.Table | pd.DataFrame) -> pa.Table:
    """Map a table onto types Hyper stores (see the module docstring).

    Args:
        data: The rows.

    Returns:
        A new table with the same columns in the same order and only Hyper-compatible types.

    Raises:
        ValueError: A nanosecond timestamp has a non-zero sub-microsecond part.
    """
    table = to_arrow(data)
    for index, field in enumerate(table.schema):
        column = table.column(index)
        kind = field.type
        if pa.types.is_dictionary(kind):
            column, kind = column.cast(kind.value_type), kind.value_type
        if pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind):
            column = _json_text(column)
        elif pa.types.is_null(kind):
            column = column.cast(pa.string())
        elif pa.types.is_timestamp(kind) and kind.unit == "ns":
            try:
                column = pc.cast(column, pa.timestamp("us", tz=kind.tz), safe=True)
            except pa.ArrowInvalid as error:
                raise ValueError(
                    f"column {field.name!r} has sub-microsecond timestamps, which Hyper cannot store"
                ) from error
        table = table.set_column(index, pa.field(field.name, column.type, nullable=True), column)
    return table


def write_hyper(
    data: pa.Table | pd.DataFrame, path: str | Path, *, log_dir: str | Path | None = None
) -> Path:
    """Write a table as a single-table Tableau extract.

    Args:
        data: The rows.
        path: The ``.hyper`` file to create or replace.
        log_dir: Folder for the Hyper process's log (default: the folder of ``path``); Hyper otherwise writes
            ``hyperd.log`` into the working directory.

    Returns:
        ``path``, holding the table ``"Extract"."Extract"``.
    """
    import pantab
    import tableauhyperapi

    path = Path(path)
    log_dir = Path(log_dir) if log_dir is not None else path.parent
    pantab.frame_to_hyper(
        hyper_ready(data),
        path,
        table=tableauhyperapi.TableName(*HYPER_TABLE),
        process_params={"log_dir": str(log_dir)},
    )
    return path


def hyper_bytes(data: pa.Table | pd.DataFrame) -> bytes:
    """Encode a table as a ``.hyper`` extract and return the file's bytes (written in a temporary folder).

    Args:
        data: The rows.

    Returns:
        The bytes of a ``.hyper`` file holding ``"Extract"."Extract"``.
    """
    with tempfile.TemporaryDirectory(prefix="hyper-") as folder:
        return write_hyper(data, Path(folder) / "extract.hyper", log_dir=folder).read_bytes()


def read_hyper(path: str | Path, *, log_dir: str | Path | None = None) -> pa.Table:
    """Read the table of an extract written by :func:`write_hyper`.

    Args:
        path: The ``.hyper`` file.
        log_dir: Folder for the Hyper process's log (default: the folder of ``path``).

    Returns:
        The rows as an Arrow table, in the types Hyper stored (text as ``large_string``).
    """
    import pantab
    import tableauhyperapi

    path = Path(path)
    log_dir = Path(log_dir) if log_dir is not None else path.parent
    return pantab.frame_from_hyper(
        path,
        table=tableauhyperapi.TableName(*HYPER_TABLE),
        return_type="pyarrow",
        process_params={"log_dir": str(log_dir)},
    )
