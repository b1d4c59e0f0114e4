"""Retail customer intelligence as plain Python: one room (subpackage) per asset group.

``sources`` (reading, generating and fingerprinting exports), ``staging`` (cleaning, nothing lost), ``eda``,
``customers`` (RFM, clustering, prediction), ``baskets`` (itemsets, rules, bundles), ``network`` (co-purchase
graphs and centralities), ``recommend`` (components, hybrid, evaluation, tuning, serving, SVD) and
``warehouse`` (marts, SQL validation, report), plus ``common`` for the concepts several rooms share. Each room
keeps its Pandera models (``schemas``) and figures (``plots``) beside its logic. Nothing here imports dagster:
the thin assets in ``assets/`` call these functions.
"""
