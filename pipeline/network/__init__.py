"""Link analysis: product and customer co-purchase networks and their centralities.

Nothing in this package imports dagster: the assets of group ``network`` call it.
"""
