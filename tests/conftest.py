"""Shared fixtures: the real Online Retail II data in ../shared/data (skipped when absent) and temp warehouses."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
REAL_PARQUET = SHARED_DATA / "online_retail_II_2009_2010.parquet"
SAMPLE_XLSX = SHARED_DATA / "online_retail_II_sample.xlsx"
SAMPLE_CSV = SHARED_DATA / "online_retail_II_sample.csv"


def require(path: Path) -> Path:
    """Skip the calling test when a shared data file is absent."""
    if not path.exists():
        pytest.skip(f"real Online Retail II data not available: {path} is missing (../shared/data beside the repo)")
    return path


@pytest.fixture(scope="session")
def real_raw() -> pd.DataFrame:
    """The real 2009-2010 sheet (525,461 lines) in the raw contract."""
    from pipeline.sources import readers

    return readers.read_file(require(REAL_PARQUET))


@pytest.fixture(scope="session")
def real_cleaning(real_raw):
    """The cleaning result of the real 2009-2010 sheet."""
    from pipeline.staging import cleaning

    return cleaning.clean(real_raw)


@pytest.fixture(scope="session")
def real_cleaned(real_cleaning) -> pd.DataFrame:
    """Cleaned transactions of the real 2009-2010 sheet."""
    return real_cleaning.cleaned


@pytest.fixture(scope="session")
def real_rejected(real_cleaning) -> pd.DataFrame:
    """Rejected rows of the real 2009-2010 sheet."""
    return real_cleaning.rejected


@pytest.fixture
def warehouse_path(tmp_path) -> str:
    """A DuckDB file in a fresh temporary folder."""
    return str(tmp_path / "warehouse" / "retail.duckdb")


@pytest.fixture(scope="session")
def full_warehouse(tmp_path_factory):
    """Every asset and check materialized once per session on 40,000 synthetic lines.

    Returns a ``tests.assets.warehouse_build.BuiltWarehouse``: ``(database, report_path, result)``. Tests read
    it and never write it (copy the file first, as ``tests/reliability/test_runs.py`` does).
    """
    from tests.assets.warehouse_build import build

    return build(tmp_path_factory.mktemp("pipeline"))
