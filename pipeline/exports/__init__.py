"""Exports of the warehouse for tools outside it: parquet files, Tableau .hyper extracts, and their layout.

Pure functions from Arrow tables (or DataFrames) to bytes and files, plus the versioned layout with its
manifest and ``latest.json`` pointer. Nothing here imports dagster or opens the warehouse: the assets of group
``exports`` read the analyst copy and write through ``resources.export.ExportTarget``.
"""
