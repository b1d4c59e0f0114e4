"""Exploratory summaries of the cleaned sales: monthly sales, countries, top products, cohorts.

Nothing in this package imports dagster: the assets of group ``eda`` call it.
"""
