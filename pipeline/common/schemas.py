"""Pieces of Pandera models shared by several rooms: the strict base model, float equality, shares."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa

#: Absolute tolerance of recomputed float columns (money to the penny is far coarser).
TOLERANCE = 1e-6


def close(left: pd.Series, right: pd.Series, *, rel: float = 1e-9) -> pd.Series:
    """Element-wise closeness that treats two missing values as equal."""
    both_missing = left.isna() & right.isna()
    return both_missing | np.isclose(left, right, rtol=rel, atol=TOLERANCE)


def share(description: str) -> Any:
    """Field of a share of a whole, in [0, 1]."""
    return pa.Field(ge=0, le=1, description=description)


class StrictTable(pa.DataFrameModel):
    """Base of the analytics models: strict columns (no extra ones), coerced types."""

    class Config:
        """Strict columns, coerced types."""

        strict = True
        coerce = True
