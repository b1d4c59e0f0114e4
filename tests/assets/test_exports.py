"""Export assets against the session warehouse's analyst copy, written to moto's local S3 and read back."""
# ruff: noqa: F811 - the imported fixtures are parameters of the tests

import io
import json

import dagster as dg
import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from assets import exports
from assets.publish import ANALYST_COPY
from pipeline.exports import formats, layout, tables
from resources import Warehouse
from resources.export import ExportTarget
from resources.objectstore import ObjectStoreError
from tests.s3_server import new_bucket, no_credentials, s3_env  # noqa: F401

ASSETS = [exports.warehouse_parquet, exports.tableau_extracts]


@pytest.fixture(scope="module")
def analyst_copy(full_warehouse) -> str:
    """The analyst copy the session run published."""
    events = full_warehouse.result.get_asset_materialization_events()
    (event,) = [e for e in events if e.asset_key == ANALYST_COPY]
    return event.materialization.metadata["path"].value


def export_resources(target: ExportTarget) -> dict:
    """The export target, and a DuckDB warehouse that the exports never open (they read the analyst copy).

    The warehouse is beside the analyst copy, so that its run lock file is too.
    """
    warehouse = Warehouse(database=str(target.analyst_path().with_name("w.duckdb")))
    return {"export_target": target, "warehouse": warehouse}


def export(target: ExportTarget, *, raise_on_error: bool = True) -> dg.ExecuteInProcessResult:
    return dg.materialize(ASSETS, resources=export_resources(target), raise_on_error=raise_on_error)


@pytest.fixture(scope="module")
def exported(s3_env, analyst_copy) -> ExportTarget:
    """Both exports of the analyst copy, written once to a bucket."""
    target = ExportTarget(location=f"s3://{new_bucket()}/exports", analyst_database=analyst_copy)
    assert export(target).success
    return target


def names(relations) -> list[str]:
    return [relation.qualified_name for relation in relations]


def parquet_frame(target: ExportTarget, key: str) -> pd.DataFrame:
    return pd.read_parquet(io.BytesIO(target.store.get_bytes(key)))


def test_exports_depend_on_the_published_analyst_copy():
    for asset in ASSETS:
        assert asset.asset_deps[asset.key] == {ANALYST_COPY}


def test_parquet_export_holds_every_mart_and_model_table(exported):
    manifest = exported.latest_manifest("parquet")
    expected = [t.qualified_name for t in tables.warehouse_tables()]
    assert [entry["table"] for entry in manifest["tables"]] == expected and len(expected) == 12
    prefix = manifest["prefix"]
    assert prefix.startswith("parquet/") and exported.latest("parquet")["prefix"] == prefix
    listed = exported.store.list_keys(prefix)
    objects = [entry["key"] for entry in manifest["tables"]]
    assert sorted(listed) == sorted([*objects, f"{prefix}/manifest.json"])


def test_parquet_export_equals_the_analyst_copy(exported, analyst_copy):
    manifest = exported.latest_manifest("parquet")
    by_table = {entry["table"]: entry for entry in manifest["tables"]}
    with duckdb.connect(analyst_copy, read_only=True) as conn:
        for table in tables.warehouse_tables():
            entry = by_table[table.qualified_name]
            expected = conn.sql(table.select_sql()).df()
            # DuckDB's .df() marks a missing list (product_360.bundle_ids) pd.NA, pandas' parquet reader None.
            objects = [column for column in expected if expected[column].dtype == object]
            expected[objects] = expected[objects].map(lambda value: None if value is pd.NA else value)
            back = parquet_frame(exported, entry["key"])
            pd.testing.assert_frame_equal(back, expected, obj=table.qualified_name)
            [(count,)] = conn.execute(f"SELECT count(*) FROM {table.schema}.{table.name}").fetchall()
            assert entry["rows"] == count == len(back) > 0
            assert [column["name"] for column in entry["columns"]] == list(expected.columns)
            # Parquet keeps the warehouse types (TIMESTAMP_NS stays nanoseconds, lists stay lists).
            stored = pq.read_schema(io.BytesIO(exported.store.get_bytes(entry["key"])))
            assert stored.types == conn.sql(table.select_sql()).to_arrow_table().schema.types


def _hyper_expected(table: pa.Table) -> pa.Table:
    """The mapping stated in pipeline.exports.formats: ns timestamps to us, lists to JSON text."""
    columns = []
    for field, column in zip(table.schema, table.columns, strict=True):
        if pa.types.is_list(field.type):
            column = pa.array([None if v is None else json.dumps(v) for v in column.to_pylist()], pa.string())
        elif pa.types.is_timestamp(field.type):
            column = column.cast(pa.timestamp("us"))
        columns.append(column)
    return pa.table(columns, names=table.schema.names)


def test_tableau_extracts_equal_the_marts_rows(exported, analyst_copy, tmp_path):
    manifest = exported.latest_manifest("tableau")
    assert [entry["table"] for entry in manifest["tables"]] == names(tables.mart_tables())
    with duckdb.connect(analyst_copy, read_only=True) as conn:
        for table, entry in zip(tables.mart_tables(), manifest["tables"], strict=True):
            path = tmp_path / f"{table.name}.hyper"
            path.write_bytes(exported.store.get_bytes(entry["key"]))
            back = formats.read_hyper(path)
            expected = _hyper_expected(conn.sql(table.select_sql()).to_arrow_table())
            assert entry["rows"] == back.num_rows == expected.num_rows > 0
            # Hyper hands text back as large_string, and rows in no particular order (a Hyper table is a set):
            # sorted by the view's key, every value is the mart's (after the mapping above).
            order = [(column, "ascending") for column in table.order_by]
            back, expected = back.cast(expected.schema).sort_by(order), expected.sort_by(order)
            assert back.equals(expected), table.qualified_name
            pd.testing.assert_frame_equal(back.to_pandas(), expected.to_pandas(), obj=table.qualified_name)


def test_a_failed_export_leaves_latest_on_the_previous_complete_export(exported, monkeypatch):
    before = exported.latest("parquet")
    before_manifest = exported.latest_manifest("parquet")
    calls = []

    def fail_on_third_table(data):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("simulated failure while encoding")
        return original(data)

    original = formats.parquet_bytes
    monkeypatch.setattr(formats, "parquet_bytes", fail_on_third_table)
    result = dg.materialize([exports.warehouse_parquet], resources=export_resources(exported),
                            raise_on_error=False)
    assert not result.success and len(calls) == 3
    assert exported.latest("parquet") == before
    assert exported.latest_manifest("parquet") == before_manifest
    (failed_prefix,) = {"/".join(key.split("/")[:2]) for key in exported.store.list_keys("parquet/")
                        if not key.startswith(before["prefix"]) and not key.endswith("latest.json")}
    partial = exported.store.list_keys(failed_prefix)
    assert len(partial) == 2 and not any(key.endswith("manifest.json") for key in partial)
    # The previous export is still whole: every object it lists reads back.
    for entry in before_manifest["tables"]:
        assert len(parquet_frame(exported, entry["key"])) == entry["rows"]

    monkeypatch.setattr(formats, "parquet_bytes", original)
    assert dg.materialize([exports.warehouse_parquet], resources=export_resources(exported)).success
    after = exported.latest("parquet")
    assert after["prefix"] not in (before["prefix"], failed_prefix)
    assert exported.read_json(f"{before['prefix']}/manifest.json") == before_manifest, "old export changed"


def test_exports_to_a_local_folder(analyst_copy, tmp_path):
    target = ExportTarget(location=str(tmp_path / "exports"), analyst_database=analyst_copy)
    assert export(target).success
    pointer = json.loads((tmp_path / "exports" / layout.latest_key("tableau")).read_text())
    manifest = json.loads((tmp_path / "exports" / pointer["manifest"]).read_text())
    assert all((tmp_path / "exports" / entry["key"]).is_file() for entry in manifest["tables"])


def test_export_to_a_missing_bucket_names_the_uri(s3_env, analyst_copy):
    target = ExportTarget(location="s3://no-such-bucket-7c1e/exports", analyst_database=analyst_copy)
    with pytest.raises(ObjectStoreError, match=r"could not write s3://no-such-bucket-7c1e/exports/parquet/"):
        dg.materialize([exports.warehouse_parquet], resources=export_resources(target))


def test_export_without_credentials_names_the_uri(s3_env, analyst_copy, no_credentials):
    target = ExportTarget(location="s3://retail-nocreds/x", analyst_database=analyst_copy)
    with pytest.raises(ObjectStoreError, match=r"could not write s3://retail-nocreds/x/parquet/.*credentials"):
        dg.materialize([exports.warehouse_parquet], resources=export_resources(target))


def test_export_without_an_analyst_copy_says_so(tmp_path):
    target = ExportTarget(location=str(tmp_path / "out"), analyst_database=str(tmp_path / "none.duckdb"))
    with pytest.raises(FileNotFoundError, match="no analyst copy"):
        dg.materialize([exports.warehouse_parquet], resources=export_resources(target))
    assert not (tmp_path / "out").exists()


def test_the_snapshot_is_opened_read_only(analyst_copy):
    with ExportTarget(analyst_database=analyst_copy).snapshot() as conn, pytest.raises(duckdb.Error):
        conn.execute("CREATE TABLE analytics.scratch (i INTEGER)")
