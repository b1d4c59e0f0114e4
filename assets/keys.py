"""Asset keys of the warehouse tables, named once so cross-layer inputs don't repeat key prefixes."""

import dagster as dg

RAW_INVOICES = dg.AssetKey(["raw", "raw_invoices"])
SOURCE_FILES = dg.AssetKey(["raw", "source_files"])
CLEANED_TRANSACTIONS = dg.AssetKey(["staging", "cleaned_transactions"])
REJECTED_ROWS = dg.AssetKey(["staging", "rejected_rows"])


def ins(**keys: dg.AssetKey) -> dict[str, dg.AssetIn]:
    """Map parameter names to upstream asset keys: ``ins(cleaned=CLEANED_TRANSACTIONS)``."""
    return {name: dg.AssetIn(key=key) for name, key in keys.items()}
