"""Mart assets: the read-only views of the ``marts`` schema and their checks.

SQL lives in pipeline.warehouse.marts. The views are written in the dialect of the ``warehouse`` resource
(DuckDB, or Snowflake with ``resources.snowflake.SnowflakeWarehouse``).
"""

from typing import Literal

import dagster as dg
from pydantic import Field

from assets._metadata import preview
from pipeline.warehouse import marts
from resources import Warehouse

VIEWS = marts.view_definitions()
VIEW_KEYS = {view.name: dg.AssetKey([marts.SCHEMA, view.name]) for view in VIEWS}


class MartsConfig(dg.Config):
    """Thresholds written into the views (see pipeline.warehouse.marts for the slow-mover rule)."""

    window_days: int = Field(default=90, description="Length of the recent and previous sales windows.")
    stall_days: int = Field(default=60, description="Days without a sale after which a product is 'stalled'.")
    fall_ratio: float = Field(
        default=0.5, description="Recent/previous revenue ratio at or below which it is 'falling'."
    )
    min_previous_invoices: int = Field(
        default=3, description="Invoices in the previous window needed to be 'falling'."
    )
    top_rules: int = Field(default=100, description="Non-redundant rules kept per scope in top_rules.")
    recommendation_setting: Literal["any", "new_only"] = Field(
        default="any", description="Recommendation list shown: 'any' or 'new_only'."
    )


def _dependency(relation: str) -> dg.AssetKey:
    """Asset key of a schema-qualified relation read by a view."""
    return dg.AssetKey(relation.split("."))


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            key=VIEW_KEYS[view.name],
            description=view.description,
            deps=[_dependency(source) for source in view.sources],
            group_name="marts",
            kinds={"duckdb", "sql"},
            owners=["team:analytics"],
            metadata={"dagster/table_name": view.qualified_name, "key": ", ".join(view.key)},
        )
        for view in VIEWS
    ],
)
def marts_views(context: dg.AssetExecutionContext, config: MartsConfig, warehouse: Warehouse):
    """Create or replace every marts view, with comments, in one transaction."""
    views = marts.view_definitions(**config.model_dump(), dialect=warehouse.dialect)
    with warehouse.connect() as conn:
        described = marts.publish_views(conn, views, dialect=warehouse.dialect)
        for view in views:
            profile = marts.view_profile(conn, view, dialect=warehouse.dialect)
            columns = described[view.name]
            context.log.info(f"{view.qualified_name}: {profile['rows']} rows")
            yield dg.MaterializeResult(
                asset_key=VIEW_KEYS[view.name],
                metadata={
                    "dagster/row_count": profile["rows"],
                    "duplicate_keys": profile["duplicate_keys"],
                    "dagster/column_schema": dg.TableSchema(
                        columns=[
                            dg.TableColumn(name=name, type=str(kind), description=description)
                            for name, kind, description in columns.itertuples(index=False)
                        ]
                    ),
                    "definition": dg.MetadataValue.md(f"```sql\n{view.sql.strip()}\n```"),
                    "preview": preview(conn.execute(f"SELECT * FROM {view.qualified_name} LIMIT 10").df()),
                },
            )


def _key_check(view: marts.MartView) -> dg.AssetChecksDefinition:
    """Build the check that the view's key identifies one row."""

    @dg.asset_check(
        asset=VIEW_KEYS[view.name],
        name="key_is_unique",
        blocking=True,
        description=f"No two rows of {view.qualified_name} share ({', '.join(view.key)}).",
    )
    def _check(warehouse: Warehouse) -> dg.AssetCheckResult:
        with warehouse.connect() as conn:
            profile = marts.view_profile(conn, view, dialect=warehouse.dialect)
        return dg.AssetCheckResult(passed=profile["duplicate_keys"] == 0, metadata=profile)

    return _check


def _described_check(view: marts.MartView) -> dg.AssetChecksDefinition:
    """Build the check that every column of the view carries a comment."""

    @dg.asset_check(
        asset=VIEW_KEYS[view.name],
        name="columns_described",
        description=f"Every column of {view.qualified_name} has a COMMENT for analysts.",
    )
    def _check(warehouse: Warehouse) -> dg.AssetCheckResult:
        with warehouse.connect() as conn:
            columns = marts.column_comments(conn, view.qualified_name, dialect=warehouse.dialect)
        missing = columns.loc[columns["comment"].isna(), "column_name"].tolist()
        return dg.AssetCheckResult(
            passed=not missing, metadata={"undescribed": dg.MetadataValue.json(missing)}
        )

    return _check


key_checks = [_key_check(view) for view in VIEWS]
description_checks = [_described_check(view) for view in VIEWS]
