"""Resources: the warehouse (DuckDB), the invoice source and the rule-mining settings."""

from resources.mining import RuleMiningSettings
from resources.source import InvoiceSource, SourcePart
from resources.warehouse import Warehouse, WarehouseIOManager, qualified_name, quote_identifier

__all__ = [
    "InvoiceSource",
    "RuleMiningSettings",
    "SourcePart",
    "Warehouse",
    "WarehouseIOManager",
    "qualified_name",
    "quote_identifier",
]
