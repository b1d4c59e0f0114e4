"""Product recommenders for known customers, their honest temporal evaluation, and the customer x product SVD.

What belongs here: the recommender components (popularity, buy-again, item-kNN, SVD, association rules), the
hybrid that blends them, the validation-based tuning of the blend weights, the table served to the business,
the temporal holdout evaluation of every model, the truncated SVD of the customer x product matrix, and the
Pandera models and figures of those tables. Not here: mining the association rules (``pipeline.baskets``,
which the rules component calls) and the definition of a product code (``pipeline.common.codes``): only real
product codes are ever learned from or recommended. Nothing in this package imports dagster: the assets of
group ``recommendations`` call it.

Where each concern lives (each module imports only modules listed above it):

- ``settings``: the names tables and code agree on (``COMPONENT_NAMES``, ``MODEL_NAMES``, ``SETTINGS``
  ``any`` / ``new_only``), ``DEFAULT_WEIGHTS`` and the tuning's ``WEIGHT_GRID``.
- ``svd``: the weighted customer x product matrix and its truncated SVD (explained variance, factor tables).
- ``history``: sales lines of real products coded as integers once (``_Lines``), the purchase history every
  fit shares (``_History``) and the small sorted-array helpers.
- ``components``: the component conventions and plumbing (``_Component``), candidates and top-k selection,
  the five components and ``default_components``.
- ``hybrid``: ``HybridRecommender``: candidate pools, blending, serving in customer blocks, worker threads.
- ``holdouts``: the temporal holdout shared by evaluation and tuning (relevant sets after a cutoff, a hybrid
  fitted before it with its candidate pools, hit matrices) and ``ValidationSplitError``.
- ``tuning``: blend-weight tuning on validation splits inside the training period (``tune_hybrid_weights``).
- ``evaluation``: the evaluation protocol: ``ranking_metrics``, ``temporal_split``, ``evaluate``.
- ``serving``: the served table (``recommend_all_settings``, ``recommend_all``) and ``recommend_and_evaluate``
  (both tables from shared fits, ``RecommenderTables``).
- ``schemas``: Pandera models of the SVD and recommender tables.
- ``plots``: figures of those tables.
"""
