"""Plots attached to materializations are PNG files linked by path, never base64 images in the event log."""

from __future__ import annotations

import hashlib
from pathlib import Path

import dagster as dg

from assets._metadata import PLOTS_FOLDER, figure
from pipeline.common.figures import new_figure


def _bars(heights: list[float]):
    fig = new_figure(3, 2)
    fig.add_subplot().bar(range(len(heights)), heights)
    return fig


@dg.asset
def plotted() -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata={"plot": figure(_bars([1, 3, 2]))})


@dg.asset
def plotted_again() -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata={"plot": figure(_bars([1, 3, 2])), "other": figure(_bars([2, 2]))})


def test_plots_are_files_named_by_their_content_in_the_instance_storage(tmp_path):
    with dg.DagsterInstance.local_temp(str(tmp_path)) as instance:
        result = dg.materialize([plotted, plotted_again], instance=instance)
        storage = Path(instance.storage_directory())
        records = instance.get_records_for_run(result.run_id).records
    first = result.asset_materializations_for_node("plotted")[0].metadata["plot"]
    again = result.asset_materializations_for_node("plotted_again")[0].metadata
    assert isinstance(first, dg.PathMetadataValue)
    path = Path(first.path)
    assert path.parent == storage / PLOTS_FOLDER
    png = path.read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert path.stem == hashlib.sha256(png).hexdigest()[:16]
    # The same drawing is the same file; another drawing is another file; nothing half-written is left.
    assert again["plot"].path == first.path and again["other"].path != first.path
    written = sorted(p.name for p in path.parent.iterdir())
    assert written == sorted({path.name, Path(again["other"].path).name})
    # The event log holds paths, not images.
    assert not any("base64" in str(record.event_log_entry.dagster_event) for record in records)
