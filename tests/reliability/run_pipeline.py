"""Materialize the warehouse in this process: ``python -m tests.reliability.run_pipeline --database ...``.

Used by the crash and concurrency tests, which need the pipeline in a process of its own (to kill it, or to
run a second one beside it). Exits 0 when the run succeeded, 1 otherwise.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def warehouse_definitions(*, foundation_only: bool = False) -> list:
    """Every asset and check that writes the warehouse, and the publication of the analyst copy.

    The HTML report and the exports are left out: they only read the warehouse (the exports read the analyst
    copy), and rendering the report costs a quarter of a run.

    Args:
        foundation_only: Only ingest and staging (and the publication).

    Returns:
        Assets and checks for ``dg.materialize``.
    """
    import dagster as dg

    from assets import exports, ingest, publish, report, staging
    from assets.definitions import ASSET_MODULES

    if foundation_only:
        modules = [ingest, staging]
    else:
        modules = [module for module in ASSET_MODULES if module not in (report, publish, exports)]
    modules.append(publish)
    return [*dg.load_assets_from_modules(modules), *dg.load_asset_checks_from_modules(modules)]


def materialize(
    database: str, *, lines: int, seed: int, foundation_only: bool = False, raise_on_error: bool = True
):
    """Run on synthetic data into ``database`` and publish its analyst copy."""
    import dagster as dg

    from assets.definitions import build_definitions
    from resources import InvoiceSource, Warehouse, WarehouseIOManager
    from resources.models import ModelStore

    return dg.materialize(
        warehouse_definitions(foundation_only=foundation_only),
        resources={
            **build_definitions().resources,  # any resource the code location adds
            "io_manager": WarehouseIOManager(database=database),
            "warehouse": Warehouse(database=database),
            "model_store": ModelStore(location=str(Path(database).parent / "models")),
            "invoice_source": InvoiceSource(location="synthetic", synthetic_lines=lines, synthetic_seed=seed),
        },
        raise_on_error=raise_on_error,
    )


def main() -> int:
    """Parse the arguments and run."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database", required=True)
    parser.add_argument("--lines", type=int, required=True)
    parser.add_argument("--seed", type=int, required=True)
    args = parser.parse_args()
    result = materialize(args.database, lines=args.lines, seed=args.seed, raise_on_error=False)
    return 0 if result.success else 1


if __name__ == "__main__":
    sys.exit(main())
