"""Spark sessions and the parquet staging area every Spark function reads its input from.

What belongs here: building a configured ``SparkSession`` (:func:`build_session`), :class:`ParquetStage`
(pandas frames written as parquet and read back with ``spark.read.parquet``) and :func:`to_pandas`, which
brings a Spark result back with the dtypes of the embedded tables. The computations live in the sibling
modules; nothing here imports dagster.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pyspark.sql import DataFrame, SparkSession

#: Settings for a session on one machine (``local[...]`` masters): few shuffle partitions (the default 200
#: would mean 200 tiny tasks per shuffle on a few thousand customers), no web UI or console progress bars,
#: UTC session time (timestamps are naive wall-clock times and must come back unshifted), Arrow transfers.
LOCAL_CONF: dict[str, str] = {
    "spark.sql.shuffle.partitions": "4",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.driver.memory": "4g",
}

#: Settings whatever the master: see :data:`LOCAL_CONF` for why. FP-growth serializes its prefix trees
#: recursively, one stack frame chain per tree level: invoices of several hundred products overflow the
#: default thread stack (``StackOverflowError`` in the task), hence the larger stacks.
COMMON_CONF: dict[str, str] = {
    "spark.driver.extraJavaOptions": "-Xss64m",
    "spark.executor.extraJavaOptions": "-Xss64m",
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.log.level": "ERROR",
    "spark.sql.parquet.inferTimestampNTZ.enabled": "true",
}


def build_session(
    master: str = "local[2]", conf: Mapping[str, str] | None = None, *, app_name: str = "retail-intelligence"
) -> SparkSession:
    """Start (or join) a Spark session.

    Args:
        master: Spark master URL: ``local[2]``, ``spark://host:7077``, ``yarn``, ``k8s://...``.
        conf: Extra Spark settings; they override the defaults (:data:`COMMON_CONF`, and :data:`LOCAL_CONF`
            for ``local`` masters).
        app_name: Application name shown by the cluster manager.

    Returns:
        The session. When a session is already active in this process, Spark returns it (one JVM per
        process) and settings that only apply at start-up (master, driver memory) are ignored.
    """
    settings = {**COMMON_CONF, **(LOCAL_CONF if master.startswith("local") else {}), **dict(conf or {})}
    builder = SparkSession.builder.master(master).appName(app_name)
    for key, value in settings.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel(settings["spark.log.level"])
    return session


def _is_local(location: str) -> bool:
    scheme = urlparse(location).scheme
    return scheme in ("", "file") or len(scheme) == 1  # one letter: a Windows drive


class ParquetStage:
    """A folder of parquet files that Spark reads its inputs from.

    A local folder (the default, a fresh temporary one) is written with pyarrow, which is fast; any other
    location Spark can write (``hdfs://``, ``s3a://``, ``abfss://``, a path on a shared file system) is
    written by Spark itself from the pandas frame, so executors on other machines can read it.

    Args:
        spark: The session that reads (and, for remote locations, writes) the files.
        location: Root folder or URI; ``None`` creates a temporary local folder, removed by :meth:`close`.
    """

    def __init__(self, spark: SparkSession, location: str | None = None) -> None:
        self.spark = spark
        self._owned = location is None
        self.location = tempfile.mkdtemp(prefix="retail-spark-") if location is None else location.rstrip("/")
        self._run = uuid.uuid4().hex[:12]
        self._written = 0

    def path(self, name: str) -> str:
        """A fresh folder for the parquet files of ``name``.

        Every call gives a new folder: Spark caches what it learnt about files it has read (their lengths
        among others), so a file rewritten in place can be read back wrong.
        """
        self._written += 1
        return f"{self.location}/{self._run}/{name}-{self._written:05d}.parquet"

    def put(self, name: str, frame: pd.DataFrame | pa.Table) -> DataFrame:
        """Write ``frame`` as parquet and read it back with ``spark.read.parquet``.

        Timestamps are written in microseconds (Spark's resolution); a timestamp with nanoseconds raises
        rather than being truncated silently.

        Args:
            name: File stem, unique within the stage.
            frame: A pandas frame (index dropped) or an Arrow table.

        Returns:
            The Spark DataFrame over the parquet files.
        """
        target = self.path(name)
        table = frame if isinstance(frame, pa.Table) else pa.Table.from_pandas(frame, preserve_index=False)
        if _is_local(self.location):
            folder = Path(urlparse(target).path if target.startswith("file:") else target)
            folder.mkdir(parents=True, exist_ok=True)
            pq.write_table(table, folder / "part-00000.parquet", coerce_timestamps="us")
        else:
            self.spark.createDataFrame(table.to_pandas()).write.mode("overwrite").parquet(target)
        return self.spark.read.parquet(target)

    def close(self) -> None:
        """Remove the temporary folder this stage created (a given location is left as it is)."""
        if self._owned:
            shutil.rmtree(self.location, ignore_errors=True)

    def __enter__(self) -> ParquetStage:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def to_pandas(frame: DataFrame, dtypes: Mapping[str, object]) -> pd.DataFrame:
    """Collect a Spark result and cast its columns to the dtypes of the embedded table.

    Spark brings nullable integers back as float64 and has no dictionary-encoded text; the casts restore
    ``Int64``, ``int64`` or the Arrow type of the embedded table so that frames compare equal column by
    column.

    Args:
        frame: The Spark result, already in row order.
        dtypes: Target dtype per column; columns are returned in this order.

    Returns:
        A pandas frame with a fresh ``RangeIndex``.
    """
    out = frame.select(*dtypes).toPandas()
    for name, dtype in dtypes.items():
        if out[name].dtype != dtype:
            out[name] = _cast(out[name], dtype)
        elif dtype == np.dtype(object) and out[name].hasnans:
            # Arrow hands back an all-null text column as NaN; the embedded tables hold None.
            out[name] = out[name].where(out[name].notna(), None)
    return out.reset_index(drop=True)


def _cast(values: pd.Series, dtype: object) -> pd.Series | pd.api.extensions.ExtensionArray:
    """``values`` as ``dtype``; Arrow types cast by Arrow (pandas cannot build an all-null Arrow column)."""
    if not isinstance(dtype, pd.ArrowDtype):
        return values.astype(dtype)
    target = dtype.pyarrow_dtype
    if pa.types.is_null(target):
        return pd.arrays.ArrowExtensionArray(pa.nulls(len(values)))
    return pd.arrays.ArrowExtensionArray(pa.array(values, from_pandas=True).cast(target))
