"""Incremental assembly of the raw invoice table from source parts.

Belongs here: deciding which parts of the source are new or changed, and combining freshly parsed lines with
lines kept from the previous ingest. Not here: parsing (``pipeline.sources.readers``) or warehouse access (the
caller passes callables, so this module stays free of I/O and is testable with plain frames).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipeline.sources.contract import RAW_COLUMNS

MANIFEST_COLUMNS = ["source_file", "fingerprint", "rows", "ingested_at"]


@dataclass(frozen=True)
class IngestPlan:
    """What an ingest run does with each source part.

    Attributes:
        to_read: Source files (``source_file`` values) that are new or whose fingerprint changed.
        to_keep: Source files already ingested with the same fingerprint; their lines are reused.
        dropped: Previously ingested source files no longer present in the source.
    """

    to_read: list[str]
    to_keep: list[str]
    dropped: list[str]


def plan_ingest(parts: Sequence[tuple[str, str]], previous_manifest: pd.DataFrame | None) -> IngestPlan:
    """Compare the current source parts with the previous manifest.

    Args:
        parts: ``(source_file, fingerprint)`` for every part of the current source.
        previous_manifest: The previous ``raw.source_files`` table, or ``None`` on the first run.

    Returns:
        The plan; a part is kept only when its fingerprint is unchanged.
    """
    known = {} if previous_manifest is None else dict(
        zip(previous_manifest["source_file"], previous_manifest["fingerprint"], strict=True)
    )
    current = {name for name, _ in parts}
    to_keep = [name for name, fp in parts if known.get(name) == fp]
    to_read = [name for name, fp in parts if known.get(name) != fp]
    dropped = sorted(set(known) - current)
    return IngestPlan(to_read=to_read, to_keep=to_keep, dropped=dropped)


def assemble_raw(
    parts: Sequence[tuple[str, str]],
    plan: IngestPlan,
    *,
    read_part: Callable[[str], pd.DataFrame],
    load_kept: Callable[[list[str]], pd.DataFrame],
    previous_manifest: pd.DataFrame | None,
    now: pd.Timestamp,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Build the new raw table and manifest.

    Args:
        parts: ``(source_file, fingerprint)`` for every part, in source order.
        plan: Output of :func:`plan_ingest`.
        read_part: Parses one part (by ``source_file``) into the raw contract.
        load_kept: Loads the previously ingested lines of the given source files.
        previous_manifest: The previous manifest (for the ``ingested_at`` of kept parts).
        now: Timestamp recorded for parts read in this run.

    Returns:
        The raw lines ordered by source part then ``source_row``, and the manifest (one row per part).
    """
    fresh = {name: read_part(name) for name in plan.to_read}
    kept = load_kept(plan.to_keep) if plan.to_keep else pd.DataFrame(columns=RAW_COLUMNS)
    pieces = [_contract_columns(kept)] + [_contract_columns(frame) for frame in fresh.values()]
    pieces = [p for p in pieces if len(p)] or [pieces[0]]
    raw = _concat(pieces)
    del fresh, kept, pieces
    files, names = pd.factorize(raw["source_file"])
    raw = _in_source_order(raw, files, names, {name: i for i, (name, _) in enumerate(parts)})
    counts = dict(zip(names, np.bincount(files[files >= 0], minlength=len(names)).tolist(), strict=True))
    previous_times = {} if previous_manifest is None else dict(
        zip(previous_manifest["source_file"], previous_manifest["ingested_at"], strict=True)
    )
    manifest = pd.DataFrame(
        {
            "source_file": [name for name, _ in parts],
            "fingerprint": [fp for _, fp in parts],
            "rows": [int(counts.get(name, 0)) for name, _ in parts],
            "ingested_at": [
                pd.Timestamp(previous_times[name]) if name in plan.to_keep else now for name, _ in parts
            ],
        }
    )
    manifest["ingested_at"] = pd.to_datetime(manifest["ingested_at"])
    return raw, manifest


def _contract_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """The raw-contract columns of ``frame`` with a fresh 0..n-1 index (``frame`` itself if already so).

    A million-line part is not copied just to select the columns it already has in order.
    """
    index = frame.index
    fresh_index = isinstance(index, pd.RangeIndex) and (index.start, index.step) == (0, 1)
    if list(frame.columns) == RAW_COLUMNS and fresh_index:
        return frame
    return frame[RAW_COLUMNS].reset_index(drop=True)


def _concat(pieces: list[pd.DataFrame]) -> pd.DataFrame:
    """Stack the parts; a column typed differently in different parts is made alike (see :func:`_alike`).

    Parts read in this run have Arrow-backed text and parts kept from the warehouse Python strings, and a
    file without sheets has an all-missing ``source_sheet``: such columns are made alike before stacking
    rather than left to pandas' type resolution for all-missing columns (deprecated, changing).
    """
    if len(pieces) == 1:
        return pieces[0]
    mixed = [column for column in RAW_COLUMNS if len({str(piece[column].dtype) for piece in pieces}) > 1]
    if mixed:
        integers = {
            column for column in mixed
            if all(pd.api.types.is_integer_dtype(piece[column].dtype) for piece in pieces)
        }
        pieces = [
            piece.assign(**{column: _alike(piece[column], integer=column in integers) for column in mixed})
            for piece in pieces
        ]
    return pd.concat(pieces, ignore_index=True)


def _alike(column: pd.Series, *, integer: bool) -> pd.Series:
    """``column`` in the type every part's column can take.

    Nullable ``Int64`` when the column holds integers in every part (``Int64`` from a fresh parse, ``int64``
    kept from the warehouse), else Python objects. Integers must not become Python objects: the warehouse
    would then store them as ``INTEGER`` instead of ``BIGINT``, and the table's column type would depend on
    how its lines were ingested.
    """
    return column.astype("Int64") if integer else _python_objects(column)


def _python_objects(column: pd.Series) -> pd.Series:
    """A column as Python objects, ``None`` for every missing value."""
    values = column.astype(object)
    return values.where(values.notna(), None)


def _in_source_order(
    raw: pd.DataFrame, files: np.ndarray, names: pd.Index, order: Mapping[str, int]
) -> pd.DataFrame:
    """Sort lines by source part (in ``order``), then sheet, then ``source_row``; missing keys first.

    Equivalent to a stable ``sort_values`` on those keys with ``na_position="first"``, but on integer codes
    and without copying the frame when its lines are already in that order (a single fresh part always is).
    """
    part_of_name = np.array([order.get(name, -1) for name in names], dtype=np.int64)
    part = np.append(part_of_name, -1)[files]
    sheet, _ = pd.factorize(raw["source_sheet"], sort=True)
    rows = raw["source_row"]
    if rows.isna().any() or not pd.api.types.is_integer_dtype(rows):
        return (
            raw.assign(_part=part)
            .sort_values(["_part", "source_sheet", "source_row"], kind="stable", na_position="first")
            .drop(columns="_part")
            .reset_index(drop=True)
        )
    ordering = np.lexsort((rows.to_numpy(dtype=np.int64), sheet, part))
    if np.array_equal(ordering, np.arange(len(raw))):
        return raw
    return raw.take(ordering).reset_index(drop=True)
