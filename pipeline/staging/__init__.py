"""Cleaning with nothing lost, and the schemas of the raw and staging tables.

Nothing in this package imports dagster: the assets of group ``staging`` call it.
"""
