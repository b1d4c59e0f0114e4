"""Fitted models as versioned artifacts, and the scoring entry point that serves them.

What belongs here: the artifact format (a folder per model version holding ``model.pkl`` and
``manifest.json``), saving and loading artifacts through any object store with ``put_bytes``/``get_bytes``
(digest and library-version checks included), and the SageMaker-style scoring contract with its command
line (``python -m pipeline.models.score``). Not here: fitting the models (``pipeline.customers``,
``pipeline.recommend``), where artifacts are stored (``resources.models``) and which assets save them
(``assets.customers``, ``assets.recommendations``). Nothing in this package imports dagster.

- ``artifacts``: the format, :func:`~pipeline.models.artifacts.save_model`,
  :func:`~pipeline.models.artifacts.load_model`, :func:`~pipeline.models.artifacts.load_model_dir`,
  :func:`~pipeline.models.artifacts.download_model`.
- ``score``: ``model_fn``, ``input_fn``, ``predict_fn``, ``output_fn`` and the command line.
"""
