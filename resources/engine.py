"""The compute engine: the embedded engine (pandas, DuckDB, scikit-learn) or Apache Spark.

The assets of cleaning, RFM, clustering and basket mining ask this resource which engine to use. With
``name="spark"`` it owns one ``SparkSession`` per run (started on first use, stopped when the run's resources
are torn down) and one parquet staging folder the Spark functions read their inputs from. The Spark
computations live in ``pipeline.spark``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import dagster as dg
from pydantic import Field, PrivateAttr

ENGINES: tuple[str, ...] = ("embedded", "spark")


class ComputeEngine(dg.ConfigurableResource):
    """Which engine computes the staging, RFM, clustering and basket tables, and how to reach Spark."""

    name: str = Field(default="embedded", description="'embedded' (pandas/DuckDB/scikit-learn) or 'spark'.")
    spark_master: str = Field(
        default="local[2]", description="Spark master URL: local[N], spark://host:7077, yarn, k8s://..."
    )
    spark_conf: dict[str, str] = Field(
        default_factory=dict, description="Extra Spark settings (spark.executor.memory...), over defaults."
    )
    staging_location: str | None = Field(
        default=None,
        description="Folder or URI (hdfs://, s3a://, a shared path) for the parquet inputs of Spark; "
        "default a temporary local folder per run, which only a local master can read.",
    )

    _session: Any = PrivateAttr(default=None)
    _stage: Any = PrivateAttr(default=None)
    _owns_session: bool = PrivateAttr(default=False)

    def _check_name(self) -> None:
        if self.name not in ENGINES:
            raise ValueError(f"unknown compute engine {self.name!r}; choose one of {', '.join(ENGINES)}")

    @property
    def is_spark(self) -> bool:
        """Whether the Spark engine is selected.

        Raises:
            ValueError: If ``name`` is not one of ``ENGINES``.
        """
        self._check_name()
        return self.name == "spark"

    def session(self):
        """The run's SparkSession, started on first use (``pyspark.sql.SparkSession``).

        Raises:
            RuntimeError: If the embedded engine is selected.
        """
        if not self.is_spark:
            raise RuntimeError("the embedded engine has no Spark session; set name='spark'")
        if self._session is None:
            from pyspark.sql import SparkSession

            from pipeline.spark.session import build_session

            # A session already running in this process (a notebook, a test fixture) is joined, not stopped.
            self._owns_session = SparkSession.getActiveSession() is None
            self._session = build_session(self.spark_master, self.spark_conf)
        return self._session

    def stage(self):
        """The run's parquet staging area (``pipeline.spark.session.ParquetStage``)."""
        if self._stage is None:
            from pipeline.spark.session import ParquetStage

            self._stage = ParquetStage(self.session(), self.staging_location)
        return self._stage

    @contextmanager
    def yield_for_execution(self, context: dg.InitResourceContext) -> Iterator[ComputeEngine]:
        """Check the engine name, hand the resource to the run, then clean up.

        Cleaning up removes the staging folder and stops the Spark session if this resource started it. The
        name is checked here, at resource initialisation, because an ``EnvVar`` is only resolved at launch.
        """
        self._check_name()
        try:
            yield self
        finally:
            if self._stage is not None:
                self._stage.close()
                self._stage = None
            if self._session is not None and self._owns_session:
                self._session.stop()
            self._session = None
