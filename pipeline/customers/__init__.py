"""Customer analytics: RFM scores and segments, K-Means and Gaussian-mixture segmentation, purchase prediction.

Nothing in this package imports dagster: the assets of group ``customers`` call it.
"""
