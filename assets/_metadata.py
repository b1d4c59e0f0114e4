"""Metadata values shown in the Dagster UI: table previews and matplotlib figures."""


import dagster as dg
import pandas as pd
from matplotlib.figure import Figure

from pipeline.common.figures import png_data_uri


def preview(frame: pd.DataFrame, rows: int = 10) -> dg.MetadataValue:
    """Markdown preview of the first rows of a table."""
    return dg.MetadataValue.md(frame.head(rows).astype(str).to_markdown(index=False))


def figure(fig: Figure, *, dpi: int = 90) -> dg.MetadataValue:
    """Embed a matplotlib figure as a PNG in markdown metadata, then close it."""
    return dg.MetadataValue.md(f"![plot]({png_data_uri(fig, dpi=dpi)})")


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
