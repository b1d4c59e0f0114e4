"""Resources: the warehouse (DuckDB), the invoice source and the rule-mining settings."""

from resources.engine import ComputeEngine
from resources.settings import ClusteringSettings, RuleMiningSettings
from resources.source import InvoiceSource, SourcePart
from resources.warehouse import Warehouse, WarehouseIOManager

__all__ = [
    "ClusteringSettings",
    "ComputeEngine",
    "InvoiceSource",
    "RuleMiningSettings",
    "SourcePart",
    "Warehouse",
    "WarehouseIOManager",
]
