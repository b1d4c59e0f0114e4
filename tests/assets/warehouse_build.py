"""Materialize every asset and check of the code location into a temporary warehouse.

Used by the session fixture ``full_warehouse`` (``tests/conftest.py``), shared by the pipeline, marts and
reliability tests, and by the short-history test, which runs the same job on a one-day export.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple

import dagster as dg

from assets import report as report_assets
from assets.definitions import build_definitions, load_assets, load_checks
from resources import InvoiceSource, Warehouse, WarehouseIOManager
from resources.export import ExportTarget
from resources.models import ModelStore

#: Synthetic lines of the session warehouse (two years of trading, small enough for a quick run).
SYNTHETIC_LINES = 40_000


class BuiltWarehouse(NamedTuple):
    """A materialized warehouse: its DuckDB file, the HTML report and the run's result."""

    database: str
    report_path: str
    result: dg.ExecuteInProcessResult


def resources_for(database: str, source: InvoiceSource | None = None) -> dict:
    """The code location's resources with the warehouse, its model store, its exports and the source redirected."""
    return {
        **build_definitions().resources,
        "io_manager": WarehouseIOManager(database=database),
        "warehouse": Warehouse(database=database),
        "model_store": ModelStore(location=str(Path(database).parent / "models")),
        "export_target": ExportTarget(
            location=str(Path(database).parent / "exports"),
            analyst_database=str(Warehouse(database=database).analyst_path()),
        ),
        "invoice_source": source or InvoiceSource(location="synthetic", synthetic_lines=SYNTHETIC_LINES),
    }


def materialize_all(
    database: str,
    report_path: str,
    *,
    source: InvoiceSource | None = None,
    raise_on_error: bool = True,
    instance: dg.DagsterInstance | None = None,
    resources: Mapping[str, object] | None = None,
) -> dg.ExecuteInProcessResult:
    """Run every asset and check (the analyst copy included) into ``database``.

    Resources are the code location's own, so a resource added there is provided here too; only the
    warehouse, the source and the report path are redirected.

    Args:
        database: The DuckDB file to write.
        report_path: Where the HTML report goes.
        source: The invoices; default ``SYNTHETIC_LINES`` synthetic lines.
        raise_on_error: Raise on the first failed step instead of returning a failed result.
        instance: The Dagster instance to record the run in (default: a fresh ephemeral one).
        resources: Resources replacing the code location's (e.g. another warehouse's IO manager).

    Returns:
        The in-process result (materializations, check evaluations, step events).
    """
    resources = {**resources_for(database, source), **(resources or {})}
    report_op = report_assets.customer_intelligence_report.op.name
    return dg.materialize(
        [*(assets := load_assets()), *load_checks(assets)],
        resources=resources,
        run_config={"ops": {report_op: {"config": {"path": report_path}}}},
        raise_on_error=raise_on_error,
        instance=instance,
    )


def build(
    folder: Path, *, source: InvoiceSource | None = None, raise_on_error: bool = True
) -> BuiltWarehouse:
    """Materialize everything into ``folder/retail.duckdb`` and the report into ``folder/reports/``."""
    database, report_path = str(folder / "retail.duckdb"), str(folder / "reports" / "report.html")
    result = materialize_all(database, report_path, source=source, raise_on_error=raise_on_error)
    return BuiltWarehouse(database, report_path, result)

