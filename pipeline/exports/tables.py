"""Which warehouse relations are exported, and the SQL that reads each one in a stable row order.

Belongs here: the list of exported relations (every ``marts`` view, and the model tables analysts use) with
the columns that order their rows. Not here: encoding (``pipeline.exports.formats``) or where the files go
(``pipeline.exports.layout``).

Rows are exported ordered by each relation's key, so two exports of the same snapshot are identical files and
a reader can compare them; a view has no row order of its own.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.common.sql import checked_identifier, qualified_name
from pipeline.warehouse import marts


@dataclass(frozen=True)
class ExportTable:
    """One exported relation.

    Attributes:
        schema: Its schema (``marts`` or ``analytics``).
        name: The view or table name.
        order_by: Columns that identify a row; rows are exported sorted by them.
    """

    schema: str
    name: str
    order_by: tuple[str, ...]

    @property
    def qualified_name(self) -> str:
        """``schema.name``."""
        return f"{self.schema}.{self.name}"

    def select_sql(self) -> str:
        """The ``SELECT`` reading every row and column, sorted by :attr:`order_by`.

        Returns:
            SQL with validated, quoted identifiers.
        """
        order = ", ".join(checked_identifier(column) for column in self.order_by)
        return f"SELECT * FROM {qualified_name(self.schema, self.name)} ORDER BY {order}"


#: The model tables analysts use outside the marts (segments, predictions, recommendations, embeddings,
#: rules), with their keys.
MODEL_TABLES: tuple[ExportTable, ...] = (
    ExportTable("analytics", "rfm", ("customer_id",)),
    ExportTable("analytics", "customer_clusters", ("customer_id",)),
    ExportTable("analytics", "customer_predictions", ("customer_id",)),
    ExportTable("analytics", "recommendations", ("setting", "customer_id", "rank")),
    ExportTable("analytics", "svd_customer_factors", ("customer_id",)),
    ExportTable("analytics", "svd_product_factors", ("stock_code",)),
    ExportTable("analytics", "association_rules", ("rule_id",)),
)


def mart_tables() -> tuple[ExportTable, ...]:
    """Every view of the ``marts`` schema, keyed as ``pipeline.warehouse.marts`` declares it.

    Returns:
        One entry per view, in the order the views are defined.
    """
    return tuple(ExportTable(marts.SCHEMA, view.name, view.key) for view in marts.view_definitions())


def warehouse_tables() -> tuple[ExportTable, ...]:
    """What the parquet export holds: every marts view, then :data:`MODEL_TABLES`.

    Returns:
        The relations in export order.
    """
    return (*mart_tables(), *MODEL_TABLES)
