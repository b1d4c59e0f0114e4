"""Incremental assembly of the raw invoice table from source parts.

Belongs here: deciding which parts of the source are new or changed, and combining freshly parsed lines with
lines kept from the previous ingest. Not here: parsing (``pipeline.readers``) or warehouse access (the caller
passes callables, so this module stays free of I/O and is testable with plain frames).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pandas as pd

from pipeline.cleaning import RAW_COLUMNS

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
    pieces = [kept[RAW_COLUMNS]] + [frame[RAW_COLUMNS] for frame in fresh.values()]
    pieces = [p for p in pieces if len(p)] or [pieces[0]]
    raw = pd.concat(pieces, ignore_index=True) if len(pieces) > 1 else pieces[0].reset_index(drop=True)
    order = {name: i for i, (name, _) in enumerate(parts)}
    raw = (
        raw.assign(_part=raw["source_file"].map(order))
        .sort_values(["_part", "source_sheet", "source_row"], kind="stable", na_position="first")
        .drop(columns="_part")
        .reset_index(drop=True)
    )
    counts = raw.groupby("source_file", sort=False).size()
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
