"""Which warehouse the code location writes to: the ``io_manager`` and ``warehouse`` resources of a location.

Belongs here: turning a warehouse location (``RETAIL_WAREHOUSE``) into the pair of resources. The resources
themselves live in ``resources.warehouse`` (DuckDB) and ``resources.snowflake``.

The location is read when the code location loads (it decides the resource classes); credentials stay
``dg.EnvVar`` and are resolved when a run launches, never logged.
"""

from __future__ import annotations

import os
from urllib.parse import urlparse

import dagster as dg

from resources.warehouse import Warehouse, WarehouseIOManager

SNOWFLAKE_SCHEME = "snowflake"
#: Environment variables read for a Snowflake warehouse: required, then optional.
SNOWFLAKE_REQUIRED = {"user": "SNOWFLAKE_USER", "password": "SNOWFLAKE_PASSWORD"}
SNOWFLAKE_OPTIONAL = {"warehouse": "SNOWFLAKE_WAREHOUSE", "role": "SNOWFLAKE_ROLE"}


def warehouse_kind(location: str) -> str:
    """``"snowflake"`` for ``snowflake://...`` locations, else ``"duckdb"`` (a file path or ``md:...``)."""
    return SNOWFLAKE_SCHEME if str(location).startswith(f"{SNOWFLAKE_SCHEME}://") else "duckdb"


def parse_snowflake_location(location: str) -> tuple[str, str]:
    """Split ``snowflake://<account>/<database>`` into account and database.

    Args:
        location: The warehouse location.

    Returns:
        ``(account, database)``.

    Raises:
        ValueError: When the location is not of that form (no credentials belong in it).
    """
    parsed = urlparse(location)
    database = parsed.path.strip("/")
    if (parsed.scheme != SNOWFLAKE_SCHEME or not parsed.hostname or not database or "/" in database
            or parsed.username or parsed.password or parsed.query):
        raise ValueError(
            f"invalid Snowflake warehouse {location!r}: expected snowflake://<account>/<database>, with the "
            f"credentials in {' and '.join(SNOWFLAKE_REQUIRED.values())}"
        )
    return parsed.hostname, database


def warehouse_resources(location: str | dg.EnvVar) -> dict[str, object]:
    """The ``io_manager`` and ``warehouse`` resources of a warehouse location.

    Args:
        location: A DuckDB file path, ``md:<database>`` (MotherDuck), or ``snowflake://<account>/<database>``
            with credentials in ``SNOWFLAKE_USER`` / ``SNOWFLAKE_PASSWORD`` (and optionally
            ``SNOWFLAKE_WAREHOUSE``, ``SNOWFLAKE_ROLE``). A ``dg.EnvVar`` is resolved here to pick the kind.

    Returns:
        ``{"io_manager": ..., "warehouse": ...}``: ``WarehouseIOManager`` and ``Warehouse`` for DuckDB,
        ``SnowflakeWarehouseIOManager`` and ``SnowflakeWarehouse`` for Snowflake.

    Raises:
        ValueError: When a ``snowflake://`` location is malformed.
    """
    resolved = location.get_value() if isinstance(location, dg.EnvVar) else location
    if warehouse_kind(str(resolved)) == "duckdb":
        return {"io_manager": WarehouseIOManager(database=location),
                "warehouse": Warehouse(database=location)}
    # Imported only when chosen: the Snowflake connector and dagster-snowflake take ~3 s to import, which
    # every process loading the code location (each run, each sensor tick) would pay.
    from resources.snowflake import SnowflakeWarehouse, SnowflakeWarehouseIOManager

    account, database = parse_snowflake_location(str(resolved))
    settings = {
        **{field: dg.EnvVar(name) for field, name in SNOWFLAKE_REQUIRED.items()},
        **{field: dg.EnvVar(name) for field, name in SNOWFLAKE_OPTIONAL.items() if os.environ.get(name)},
    }
    return {
        "io_manager": SnowflakeWarehouseIOManager(account=account, database=database, **settings),
        "warehouse": SnowflakeWarehouse(account=account, database=database, **settings),
    }
