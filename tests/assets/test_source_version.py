"""The synthetic source's fingerprint carries ``synthetic.GENERATOR_VERSION``.

An existing warehouse regenerates its raw lines when the version changes and reuses them while it does not.
"""

import dagster as dg
import duckdb
import pandas as pd
import pytest

from assets import ingest
from pipeline.sources import synthetic
from resources import InvoiceSource, Warehouse, WarehouseIOManager

LINES = 2_000


def ingest_synthetic(database: str) -> int:
    """Materialize ``raw.raw_invoices`` from the synthetic source; return how many parts were generated."""
    result = dg.materialize(
        [ingest.raw_invoices],
        resources={
            "io_manager": WarehouseIOManager(database=database),
            "warehouse": Warehouse(database=database),
            "invoice_source": InvoiceSource(location="synthetic", synthetic_lines=LINES),
        },
    )
    assert result.success
    return result.asset_materializations_for_node("raw_invoices")[0].metadata["parts_read"].value


def stored_descriptions(database: str) -> pd.Series:
    with duckdb.connect(database, read_only=True) as conn:
        return conn.sql("SELECT description FROM raw.raw_invoices ORDER BY source_row").df()["description"]


def change_the_generator(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the generator's output differ from the current one: every description gains a prefix."""
    original = synthetic.generate_frame

    def generate_frame(n_lines: int, *, random_state: int) -> pd.DataFrame:
        frame = original(n_lines, random_state=random_state)
        return frame.assign(Description="NEW " + frame["Description"])

    monkeypatch.setattr(synthetic, "generate_frame", generate_frame)


@pytest.fixture
def existing_warehouse(warehouse_path) -> tuple[str, pd.Series]:
    """A warehouse already holding the current generator's lines, and their descriptions."""
    assert ingest_synthetic(warehouse_path) == 1
    return warehouse_path, stored_descriptions(warehouse_path)


def test_fingerprint_follows_the_generator_version(monkeypatch):
    source = InvoiceSource(location="synthetic", synthetic_lines=LINES)
    [before] = source.parts()
    assert source.parts() == [before]
    monkeypatch.setattr(synthetic, "GENERATOR_VERSION", synthetic.GENERATOR_VERSION + ".1")
    [after] = source.parts()
    assert after.source_file == before.source_file  # the lineage names the settings, not the version
    assert after.fingerprint != before.fingerprint


def test_a_new_generator_version_regenerates_the_raw_lines(existing_warehouse, monkeypatch):
    database, old = existing_warehouse
    change_the_generator(monkeypatch)
    monkeypatch.setattr(synthetic, "GENERATOR_VERSION", synthetic.GENERATOR_VERSION + ".1")
    assert ingest_synthetic(database) == 1
    new = stored_descriptions(database)
    assert len(new) == len(old) and old.notna().sum() > 0.9 * len(old)
    pd.testing.assert_series_equal(new[old.notna()], "NEW " + old[old.notna()])


def test_the_same_generator_version_reuses_the_raw_lines(existing_warehouse, monkeypatch):
    # Reuse trusts the version: lines are not regenerated, which is why a changed output needs a new version
    # (tests/pipeline/sources/test_synthetic.py::test_output_is_pinned_to_the_generator_version guards that).
    database, old = existing_warehouse
    change_the_generator(monkeypatch)
    assert ingest_synthetic(database) == 0
    pd.testing.assert_series_equal(stored_descriptions(database), old)
