"""The engine resource: staging, RFM, itemsets and rules materialized by Spark equal the embedded tables."""

from __future__ import annotations

import os
import shutil

import dagster as dg
import duckdb
import pytest

from assets import keys
from assets.definitions import load_assets
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
