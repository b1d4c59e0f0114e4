"""Resources: the warehouse (DuckDB) and the invoice source, configured from the environment."""

from resources.source import InvoiceSource, SourcePart
from resources.warehouse import Warehouse, WarehouseIOManager, qualified_name, quote_identifier

__all__ = ["InvoiceSource", "SourcePart", "Warehouse", "WarehouseIOManager", "qualified_name", "quote_identifier"]
