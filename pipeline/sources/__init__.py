"""Where invoices come from: readers of UCI exports, the synthetic generator, the UCI download, the raw contract and ingest fingerprints.

Nothing in this package imports dagster: the assets of group ``sources`` call it.
"""
