"""The engine resource: staging, RFM, itemsets and rules materialized by Spark equal the embedded tables."""

from __future__ import annotations

import os
import shutil

import dagster as dg
import duckdb
import pytest

from assets import keys
from assets.definitions import load_assets, load_checks
from assets.recommendations import ALS_NEEDS_SPARK
from resources import ComputeEngine, InvoiceSource, RuleMiningSettings
from tests.assets.warehouse_build import resources_for

#: The tables both engines write, with the key that orders them.
TABLES = {
    keys.CLEANED_TRANSACTIONS: "staging.cleaned_transactions",
    keys.REJECTED_ROWS: "staging.rejected_rows",
    keys.RFM: "analytics.rfm",
    keys.FREQUENT_ITEMSETS: "analytics.frequent_itemsets",
    keys.ASSOCIATION_RULES: "analytics.association_rules",
}
SELECTION = [keys.RAW_INVOICES, keys.SOURCE_FILES, *TABLES]


def _materialize(database: str, engine: ComputeEngine) -> dg.ExecuteInProcessResult:
    source = InvoiceSource(location="synthetic", synthetic_lines=20_000)
    resources = {**resources_for(database, source), "engine": engine,
                 "rule_mining": RuleMiningSettings(min_support=0.03)}
    return dg.materialize(load_assets(), resources=resources, selection=SELECTION)


def _engines(result: dg.ExecuteInProcessResult) -> dict[dg.AssetKey, str]:
    return {event.asset_key: event.materialization.metadata["engine"].value
            for event in result.get_asset_materialization_events()
            if event.asset_key in TABLES}


def test_unknown_engine_fails_at_resource_initialisation(tmp_path):
    with pytest.raises(dg.DagsterResourceFunctionError) as raised:
        _materialize(str(tmp_path / "retail.duckdb"), ComputeEngine(name="flink"))
    assert "unknown compute engine 'flink'" in str(raised.value.__cause__)


@pytest.mark.skipif(shutil.which("java") is None and not os.environ.get("JAVA_HOME"),
                    reason="Spark needs a Java runtime (apt-get install openjdk-17-jre-headless)")
def test_spark_engine_tables_equal_embedded_tables(tmp_path):
    embedded_db, spark_db = str(tmp_path / "embedded.duckdb"), str(tmp_path / "spark.duckdb")
    embedded = _materialize(embedded_db, ComputeEngine(name="embedded"))
    spark = _materialize(spark_db, ComputeEngine(name="spark", spark_master="local[2]"))
    assert set(_engines(embedded).values()) == {"embedded"}
    assert _engines(spark) == dict.fromkeys(TABLES, "spark")
    with duckdb.connect(embedded_db, read_only=True) as conn:
        conn.execute(f"ATTACH '{spark_db}' AS spark (READ_ONLY)")
        for table in TABLES.values():
            rows = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            spark_rows = conn.execute(f"SELECT count(*) FROM spark.{table}").fetchone()[0]
            only_embedded = conn.execute(
                f"SELECT count(*) FROM (FROM {table} EXCEPT ALL FROM spark.{table})").fetchone()[0]
            only_spark = conn.execute(
                f"SELECT count(*) FROM (FROM spark.{table} EXCEPT ALL FROM {table})").fetchone()[0]
            assert (rows, only_embedded, only_spark) == (spark_rows, 0, 0), table
            assert rows > 0, table


def _als(database: str, engine: ComputeEngine) -> dg.ExecuteInProcessResult:
    source = InvoiceSource(location="synthetic", synthetic_lines=20_000)
    selection = [keys.RAW_INVOICES, keys.SOURCE_FILES, keys.CLEANED_TRANSACTIONS, keys.REJECTED_ROWS,
                 keys.ALS_RECOMMENDATIONS]
    resources = {**resources_for(database, source), "engine": engine}
    return dg.materialize([*load_assets(), *load_checks()], resources=resources, selection=selection)


def test_als_recommendations_are_empty_on_the_embedded_engine_and_say_why(tmp_path):
    database = str(tmp_path / "retail.duckdb")
    result = _als(database, ComputeEngine(name="embedded"))
    (event,) = [e for e in result.get_asset_materialization_events() if e.asset_key == keys.ALS_RECOMMENDATIONS]
    assert event.materialization.metadata["skipped_reason"].value == ALS_NEEDS_SPARK
    with duckdb.connect(database, read_only=True) as conn:
        assert conn.execute("SELECT count(*) FROM analytics.als_recommendations").fetchone()[0] == 0


@pytest.mark.skipif(shutil.which("java") is None and not os.environ.get("JAVA_HOME"),
                    reason="Spark needs a Java runtime (apt-get install openjdk-17-jre-headless)")
def test_spark_engine_serves_als_recommendations_of_registered_customers(tmp_path):
    database = str(tmp_path / "retail.duckdb")
    result = _als(database, ComputeEngine(name="spark", spark_master="local[2]"))
    checks = [e for e in result.get_asset_check_evaluations() if e.asset_key == keys.ALS_RECOMMENDATIONS]
    assert checks and all(check.passed for check in checks)
    with duckdb.connect(database, read_only=True) as conn:
        served, registered, unknown, worst = conn.execute("""
            WITH a AS (FROM analytics.als_recommendations),
                 buyers AS (SELECT DISTINCT customer_id FROM staging.cleaned_transactions
                            WHERE customer_id IS NOT NULL),
                 ranked AS (SELECT customer_id, count(*) AS n, max(rank) AS last_rank,
                                   bool_and(rank BETWEEN 1 AND 10) AS ranks_ok FROM a GROUP BY customer_id)
            SELECT (SELECT count(*) FROM ranked), (SELECT count(*) FROM buyers),
                   (SELECT count(*) FROM a WHERE customer_id NOT IN (FROM buyers)),
                   (SELECT count(*) FROM ranked WHERE n <> last_rank OR NOT ranks_ok OR n > 10)
        """).fetchone()
        # Scores never rise down a customer's list.
        rising = conn.execute("""
            SELECT count(*) FROM (
                SELECT score - lag(score) OVER (PARTITION BY customer_id ORDER BY rank) AS step
                FROM analytics.als_recommendations) WHERE step > 1e-9
        """).fetchone()[0]
    assert served == registered > 0
    assert (unknown, worst, rising) == (0, 0, 0)
