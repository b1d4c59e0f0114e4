"""Benchmark inputs: synthetic parquet files, a UCI-style workbook and a nightly-refresh folder.

Generation is done once and cached under the data directory, so it is never part of a timed run.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.sources import synthetic
from pipeline.sources.contract import UCI_HEADER as _HEADER

UCI_HEADER = list(_HEADER)
# The UCI workbook splits the lines by financial year into two sheets of this name.
SHEET_SPLIT = pd.Timestamp("2010-12-01")


def synthetic_parquet(data_dir: Path, n_lines: int, *, seed: int = 42) -> Path:
    """Stream ``n_lines`` synthetic lines into a parquet file (cached by size and seed).

    Args:
        data_dir: Cache folder.
        n_lines: Lines asked of ``pipeline.sources.synthetic.generate_invoices``.
        seed: Generator seed.

    Returns:
        The parquet file.
    """
    out = data_dir / f"synthetic_{n_lines}_seed{seed}.parquet"
    if out.exists():
        return out
    data_dir.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    writer = None
    started = time.perf_counter()
    for chunk in synthetic.generate_invoices(n_lines, random_state=seed):
        table = pa.Table.from_pandas(chunk, preserve_index=False)
        if writer is None:
            writer = pq.ParquetWriter(tmp, table.schema)
        writer.write_table(table)
    writer.close()
    os.replace(tmp, out)
    print(f"  wrote {out.name} in {time.perf_counter() - started:.1f} s", flush=True)
    return out


def uci_workbook(data_dir: Path, parquet: Path) -> Path:
    """Write the lines of ``parquet`` as a UCI-style two-sheet ``.xlsx`` (openpyxl write-only; cached).

    Args:
        data_dir: Cache folder.
        parquet: Lines in the raw UCI layout.

    Returns:
        The workbook.
    """
    from openpyxl import Workbook

    out = data_dir / (parquet.stem + ".xlsx")
    if out.exists():
        return out
    frame = pd.read_parquet(parquet)
    started = time.perf_counter()
    book = Workbook(write_only=True)
    for title, part in (
        ("Year 2009-2010", frame[frame["InvoiceDate"] < SHEET_SPLIT]),
        ("Year 2010-2011", frame[frame["InvoiceDate"] >= SHEET_SPLIT]),
    ):
        sheet = book.create_sheet(title)
        sheet.append(UCI_HEADER)
        # The UCI export stores all-digit codes as numbers; the readers must turn them back into text.
        columns = [part[c].tolist() for c in UCI_HEADER]
        columns[0] = [int(v) if v.isdigit() else v for v in columns[0]]
        columns[1] = [int(v) if v.isdigit() else v for v in columns[1]]
        columns[4] = [ts.to_pydatetime() for ts in part["InvoiceDate"]]
        columns[6] = [None if v != v else v for v in columns[6]]
        for row in zip(*columns, strict=True):
            sheet.append(row)
    tmp = out.with_suffix(".tmp.xlsx")
    book.save(tmp)
    os.replace(tmp, out)
    print(f"  wrote {out.name} in {time.perf_counter() - started:.1f} s", flush=True)
    return out


def refresh_folder(data_dir: Path, parquet: Path) -> tuple[Path, Path]:
    """Split ``parquet`` into history (all days but the last) and the last day, for the nightly refresh.

    Args:
        data_dir: Cache folder.
        parquet: Lines in the raw UCI layout.

    Returns:
        ``(folder, new_day_file)``: a folder holding only the history file, and the last day's file kept
        outside it (the harness copies it in to simulate the night's delivery).
    """
    folder = data_dir / f"refresh_{parquet.stem}"
    new_day = data_dir / f"{parquet.stem}_last_day.parquet"
    history = folder / "history.parquet"
    if history.exists() and new_day.exists():
        return folder, new_day
    folder.mkdir(parents=True, exist_ok=True)
    frame = pd.read_parquet(parquet)
    last_day = frame["InvoiceDate"].max().normalize()
    frame[frame["InvoiceDate"] < last_day].to_parquet(history, index=False)
    frame[frame["InvoiceDate"] >= last_day].to_parquet(new_day, index=False)
    return folder, new_day


def line_count(source: Path) -> int | None:
    """Invoice lines in a benchmark input: parquet footers are read, a workbook counts as its parquet twin."""
    if source.suffix == ".parquet":
        return pq.ParquetFile(source).metadata.num_rows
    twin = source.with_suffix(".parquet")
    return pq.ParquetFile(twin).metadata.num_rows if twin.exists() else None
