"""Market-basket analysis: frequent itemsets, association rules and product bundles.

Nothing in this package imports dagster: the assets of group ``baskets`` call it.
"""
