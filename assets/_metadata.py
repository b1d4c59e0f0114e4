"""Metadata values shown in the Dagster UI: table previews and matplotlib figures."""


import hashlib
from pathlib import Path

import dagster as dg
import pandas as pd
from matplotlib.figure import Figure

from pipeline.common.figures import png_bytes

#: Folder of the plot files, under the Dagster instance's storage directory (``$DAGSTER_HOME/storage``).
PLOTS_FOLDER = "plots"


def preview(frame: pd.DataFrame, rows: int = 10) -> dg.MetadataValue:
    """Markdown preview of the first rows of a table."""
    return dg.MetadataValue.md(frame.head(rows).astype(str).to_markdown(index=False))


def figure(fig: Figure, *, dpi: int = 90) -> dg.MetadataValue:
    """Save a matplotlib figure as a PNG file and link it from the materialization's metadata.

    The event log keeps a path, not the image: the file goes to ``plots/`` under the storage directory of the
    Dagster instance running the step (``$DAGSTER_HOME/storage/plots``; a temporary folder for an ephemeral
    instance), named by the first 16 hex digits of its SHA-256, so a plot that a later run draws identically
    is the same file. It is written beside its final name and renamed, so a reader never sees half a PNG.
    Must be called while a step executes.
    """
    data = png_bytes(fig, dpi=dpi)
    folder = Path(dg.AssetExecutionContext.get().instance.storage_directory()) / PLOTS_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{hashlib.sha256(data).hexdigest()[:16]}.png"
    if not path.is_file():
        partial = path.with_name(f".{path.name}.partial")
        partial.write_bytes(data)
        partial.replace(path)
    return dg.MetadataValue.path(str(path))


def column_descriptions(model) -> dict[str, str]:
    """Column descriptions declared in a Pandera model, by column name."""
    schema = model.to_schema()
    return {name: column.description or "" for name, column in schema.columns.items()}


def column_schema(model) -> dg.TableSchema:
    """A Dagster table schema (names, types, descriptions) from a Pandera model."""
    schema = model.to_schema()
    return dg.TableSchema(
        columns=[
            dg.TableColumn(name=name, type=str(column.dtype), description=column.description)
            for name, column in schema.columns.items()
        ]
    )


#: Metadata key naming why a table was stored empty (too little history); also shown by its WARN check.
SKIPPED_REASON = "skipped_reason"


def skipped(reason: str | None) -> dict[str, str]:
    """``{SKIPPED_REASON: reason}`` when a table was stored empty for a reason, else no metadata."""
    return {} if reason is None else {SKIPPED_REASON: reason}
