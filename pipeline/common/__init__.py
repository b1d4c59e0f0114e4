"""Concepts shared by several asset groups, defined once: product codes, SQL quoting, figures, sales lines.

What belongs here: small helpers with no analytic decision of their own that two or more rooms of ``pipeline``
need. Nothing here imports dagster or another room of ``pipeline``.
"""
