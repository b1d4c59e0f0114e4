"""One local Spark session for the Spark engine tests, and the synthetic lines they share."""

from __future__ import annotations

import os
import shutil

import pandas as pd
import pytest

from tests.conftest import REAL_PARQUET

#: Synthetic lines the Spark tests run on: enough customers and baskets for clusters and rules, small enough
#: that every Spark job stays at a second or two on two cores.
SPARK_LINES = 30_000
#: Lines of the real 2009-2010 sheet the real-data tests take (its first days of trading).
REAL_SLICE_LINES = 60_000


def java_available() -> bool:
    """Whether a Java runtime is on PATH or under JAVA_HOME."""
    home = os.environ.get("JAVA_HOME")
    in_home = bool(home and os.path.exists(os.path.join(home, "bin", "java")))
    return shutil.which("java") is not None or in_home


@pytest.fixture(scope="session")
def spark():
    """A ``local[2]`` session shared by every Spark test (the JVM starts once per test session)."""
    if not java_available():
        pytest.skip("Spark needs a Java runtime: no java on PATH or under JAVA_HOME (apt-get install "
                    "openjdk-17-jre-headless)")
    from pipeline.spark.session import build_session

    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    session = build_session("local[2]")
    yield session
    session.stop()


@pytest.fixture(scope="session")
def stage(spark):
    """A temporary parquet staging folder, removed after the session."""
    from pipeline.spark.session import ParquetStage

    with ParquetStage(spark) as parquet:
        yield parquet


@pytest.fixture(scope="session")
def synthetic_raw() -> pd.DataFrame:
    """Synthetic raw lines in the raw contract."""
    from pipeline.sources import readers, synthetic

    frame = synthetic.generate_frame(SPARK_LINES, random_state=7)
    return readers.normalize_frame(frame, source_file="synthetic://spark-tests", source_sheet=None)


@pytest.fixture(scope="session")
def synthetic_cleaning(synthetic_raw):
    """The embedded cleaning of the synthetic lines."""
    from pipeline.staging import cleaning

    return cleaning.clean(synthetic_raw)


@pytest.fixture(scope="session")
def real_slice_raw() -> pd.DataFrame:
    """The first lines of the real 2009-2010 sheet (skipped when the shared data is absent)."""
    from pipeline.sources import readers
    from tests.conftest import require

    raw = readers.read_file(require(REAL_PARQUET))
    return raw.head(REAL_SLICE_LINES).reset_index(drop=True)


@pytest.fixture(scope="session")
def real_slice_cleaning(real_slice_raw):
    """The embedded cleaning of the real slice."""
    from pipeline.staging import cleaning

    return cleaning.clean(real_slice_raw)
