"""Matplotlib figures without pyplot: drawn on an Agg canvas (safe in worker threads) and encoded as PNG."""

from __future__ import annotations

import base64
import io

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def new_figure(width: float, height: float) -> Figure:
    """A figure of ``width`` x ``height`` inches with constrained layout, attached to an Agg canvas."""
    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def png_bytes(figure: Figure, *, dpi: int = 90) -> bytes:
    """The figure as PNG bytes, cropped to its content."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    return buffer.getvalue()


def png_data_uri(figure: Figure, *, dpi: int = 90) -> str:
    """The figure as a ``data:image/png;base64,...`` URI."""
    return data_uri(png_bytes(figure, dpi=dpi))


def data_uri(png: bytes) -> str:
    """PNG bytes as a ``data:image/png;base64,...`` URI."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def short_label(text: str, limit: int = 28) -> str:
    """Shorten a label (a product description) to ``limit`` characters, ending with an ellipsis."""
    text = str(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"
