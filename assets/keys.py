"""Asset keys of the warehouse tables, named once so cross-layer inputs don't repeat key prefixes."""

import dagster as dg

#: The exports themselves (observed, not materialized): their data version is the source's fingerprint.
INVOICE_SOURCE = dg.AssetKey(["source", "invoice_exports"])
RAW_INVOICES = dg.AssetKey(["raw", "raw_invoices"])
SOURCE_FILES = dg.AssetKey(["raw", "source_files"])
CLEANED_TRANSACTIONS = dg.AssetKey(["staging", "cleaned_transactions"])
REJECTED_ROWS = dg.AssetKey(["staging", "rejected_rows"])


def analytics(name: str) -> dg.AssetKey:
    """Key of the ``analytics.<name>`` table."""
    return dg.AssetKey(["analytics", name])


EDA_MONTHLY_SALES = analytics("eda_monthly_sales")
EDA_COUNTRY_SALES = analytics("eda_country_sales")
EDA_TOP_PRODUCTS = analytics("eda_top_products")
EDA_COHORT_RETENTION = analytics("eda_cohort_retention")
RFM = analytics("rfm")
RFM_SEGMENT_SUMMARY = analytics("rfm_segment_summary")
CLUSTER_MODEL_SELECTION = analytics("cluster_model_selection")
CUSTOMER_CLUSTERS = analytics("customer_clusters")
CLUSTER_PROFILES = analytics("cluster_profiles")
SEGMENT_CLUSTER_CROSSTAB = analytics("segment_cluster_crosstab")
CUSTOMER_PREDICTIONS = analytics("customer_predictions")
PREDICTION_EVALUATION = analytics("prediction_evaluation")
FREQUENT_ITEMSETS = analytics("frequent_itemsets")
ASSOCIATION_RULES = analytics("association_rules")
PRODUCT_BUNDLES = analytics("product_bundles")
PRODUCT_NETWORK_EDGES = analytics("product_network_edges")
PRODUCT_CENTRALITY = analytics("product_centrality")
CUSTOMER_NETWORK_EDGES = analytics("customer_network_edges")
CUSTOMER_CENTRALITY = analytics("customer_centrality")
SVD_EXPLAINED_VARIANCE = analytics("customer_product_svd")
SVD_CUSTOMER_FACTORS = analytics("svd_customer_factors")
SVD_PRODUCT_FACTORS = analytics("svd_product_factors")
RECOMMENDATIONS = analytics("recommendations")
RECOMMENDER_EVALUATION = analytics("recommender_evaluation")
ALS_RECOMMENDATIONS = analytics("als_recommendations")


def ins(**keys: dg.AssetKey) -> dict[str, dg.AssetIn]:
    """Map parameter names to upstream asset keys: ``ins(cleaned=CLEANED_TRANSACTIONS)``."""
    return {name: dg.AssetIn(key=key) for name, key in keys.items()}


CUSTOMER_INTELLIGENCE_REPORT = dg.AssetKey(["reports", "customer_intelligence"])


#: The fitted models and mined patterns: every table whose computation learns from the whole history (and
#: makes most of a rebuild's cost). They are retrained on a weekly cadence when their inputs changed
#: (``assets.definitions.RETRAIN``); every other table refreshes as soon as new exports arrive.
RETRAINED_MODELS = frozenset({
    CLUSTER_MODEL_SELECTION, CUSTOMER_CLUSTERS, CLUSTER_PROFILES, SEGMENT_CLUSTER_CROSSTAB,
    CUSTOMER_PREDICTIONS, PREDICTION_EVALUATION,
    FREQUENT_ITEMSETS, ASSOCIATION_RULES, PRODUCT_BUNDLES,
    PRODUCT_NETWORK_EDGES, PRODUCT_CENTRALITY, CUSTOMER_NETWORK_EDGES, CUSTOMER_CENTRALITY,
    SVD_EXPLAINED_VARIANCE, SVD_CUSTOMER_FACTORS, SVD_PRODUCT_FACTORS,
    RECOMMENDATIONS, RECOMMENDER_EVALUATION, ALS_RECOMMENDATIONS,
})

#: What refreshes on the weekly cadence (``assets.definitions.RETRAIN``): the models, and the HTML report,
#: a weekly document about them whose rendering (every plot redrawn) would otherwise be the costliest step of
#: a nightly refresh.
WEEKLY = RETRAINED_MODELS | {CUSTOMER_INTELLIGENCE_REPORT}
