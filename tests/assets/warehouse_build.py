"""Materialize every asset and check of the code location into a temporary warehouse.

Used by the session fixture ``full_warehouse`` (``tests/conftest.py``), shared by the pipeline, marts and
reliability tests, and by the short-history test, which runs the same job on a one-day export.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import dagster as dg

from assets import report as report_assets
from assets.definitions import ASSET_MODULES, build_definitions
from resources import InvoiceSource, Warehouse, WarehouseIOManager

#: Synthetic lines of the session warehouse (two years of trading, small enough for a quick run).
SYNTHETIC_LINES = 40_000


class BuiltWarehouse(NamedTuple):
    """A materialized warehouse: its DuckDB file, the HTML report and the run's result."""

    database: str
    report_path: str
    result: dg.ExecuteInProcessResult


def materialize_all(
    database: str, report_path: str, *, source: InvoiceSource | None = None, raise_on_error: bool = True
) -> dg.ExecuteInProcessResult:
    """Run every asset and check (the analyst copy included) into ``database``.

    Resources are the code location's own, so a resource added there is provided here too; only the
    warehouse, the source and the report path are redirected.

    Args:
        database: The DuckDB file to write.
        report_path: Where the HTML report goes.
        source: The invoices; default ``SYNTHETIC_LINES`` synthetic lines.
        raise_on_error: Raise on the first failed step instead of returning a failed result.

    Returns:
        The in-process result (materializations, check evaluations, step events).
    """
    resources = {
        **build_definitions().resources,
        "io_manager": WarehouseIOManager(database=database),
        "warehouse": Warehouse(database=database),
        "invoice_source": source or InvoiceSource(location="synthetic", synthetic_lines=SYNTHETIC_LINES),
    }
    report_op = report_assets.customer_intelligence_report.op.name
    return dg.materialize(
        [*dg.load_assets_from_modules(ASSET_MODULES), *dg.load_asset_checks_from_modules(ASSET_MODULES)],
        resources=resources,
        run_config={"ops": {report_op: {"config": {"path": report_path}}}},
        raise_on_error=raise_on_error,
    )


def build(
    folder: Path, *, source: InvoiceSource | None = None, raise_on_error: bool = True
) -> BuiltWarehouse:
    """Materialize everything into ``folder/retail.duckdb`` and the report into ``folder/reports/``."""
    database, report_path = str(folder / "retail.duckdb"), str(folder / "reports" / "report.html")
    result = materialize_all(database, report_path, source=source, raise_on_error=raise_on_error)
    return BuiltWarehouse(database, report_path, result)

