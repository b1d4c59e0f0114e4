"""The export layout: prefixes, the manifest, and the order of writes that keeps latest.json whole."""

import datetime as dt
import json

import pyarrow as pa
import pytest

from pipeline.exports import layout, tables
from pipeline.warehouse import marts

RUN_ID = "9cc1eb83-258c-4e93-83fe-0d7d4dc6a751"
TABLES = (tables.ExportTable("marts", "customer_360", ("customer_id",)),
          tables.ExportTable("analytics", "recommendations", ("setting", "customer_id", "rank")),
          tables.ExportTable("analytics", "rfm", ("customer_id",)))


@pytest.mark.parametrize(
    "started",
    [dt.datetime(2026, 12, 4, 2, 15, 3),
     dt.datetime(2026, 12, 4, 3, 15, 3, tzinfo=dt.timezone(dt.timedelta(hours=1)))],
)
def test_prefix_is_utc_time_and_run_id(started):
    assert layout.export_prefix("parquet", started, RUN_ID) == "parquet/2026-12-04T021503Z_9cc1eb83"


def test_prefixes_sort_by_time():
    early = layout.export_prefix("parquet", dt.datetime(2026, 12, 4, 23, 59, 59), "ffffffff")
    late = layout.export_prefix("parquet", dt.datetime(2026, 12, 5, 0, 0, 0), "00000000")
    assert early < late


@pytest.mark.parametrize(("kind", "run_id"), [("../x", RUN_ID), ("Parquet", RUN_ID), ("parquet", "a/../b")])
def test_prefix_refuses_unsafe_parts(kind, run_id):
    with pytest.raises(ValueError):
        layout.export_prefix(kind, dt.datetime(2026, 1, 1), run_id)


def rows(n: int) -> pa.Table:
    return pa.table({"customer_id": list(range(n)), "score": [0.5] * n})


class Store(dict):
    """Objects by key, and the order they were written in."""

    def __init__(self, fail_on: str | None = None):
        super().__init__()
        self.order: list[str] = []
        self.fail_on = fail_on

    def put(self, key: str, data: bytes) -> str:
        if self.fail_on and self.fail_on in key:
            raise OSError(f"disk full writing {key}")
        self[key] = data
        self.order.append(key)
        return key


def export(store: Store, run_id: str, sizes: dict[str, int]) -> dict:
    prefix = layout.export_prefix("parquet", dt.datetime(2026, 12, 4), run_id)
    entries = layout.export_tables(
        TABLES, read=lambda t: rows(sizes[t.name]), encode=lambda t: b"x" * t.num_rows, put=store.put,
        prefix=prefix, suffix=".parquet",
    )
    manifest = layout.build_manifest(
        kind="parquet", prefix=prefix, run_id=run_id, snapshot="copy",
        created_at=dt.datetime(2026, 12, 4, 2, 0, tzinfo=dt.UTC), entries=entries,
    )
    return layout.commit(store.put, manifest)


def test_tables_then_manifest_then_pointer():
    store = Store()
    pointer = export(store, RUN_ID, {"customer_360": 3, "recommendations": 20, "rfm": 3})
    prefix = "parquet/2026-12-04T000000Z_9cc1eb83"
    assert store.order == [
        f"{prefix}/marts/customer_360.parquet", f"{prefix}/analytics/recommendations.parquet",
        f"{prefix}/analytics/rfm.parquet", f"{prefix}/manifest.json", "parquet/latest.json",
    ]
    assert json.loads(store["parquet/latest.json"]) == pointer
    manifest = json.loads(store[pointer["manifest"]])
    assert [(e["table"], e["rows"], e["bytes"]) for e in manifest["tables"]] == [
        ("marts.customer_360", 3, 3), ("analytics.recommendations", 20, 20), ("analytics.rfm", 3, 3)]
    assert manifest["total_rows"] == 26 and manifest["run_id"] == RUN_ID
    assert manifest["tables"][0]["columns"] == [{"name": "customer_id", "type": "int64"},
                                                {"name": "score", "type": "double"}]
    assert all(entry["key"] in store for entry in manifest["tables"])


def test_a_failure_half_way_leaves_latest_on_the_previous_export():
    store = Store()
    previous = export(store, "11111111", {"customer_360": 3, "recommendations": 2, "rfm": 3})
    before = dict(store)
    store.fail_on = "22222222/analytics/rfm"
    with pytest.raises(OSError, match="disk full"):
        export(store, "22222222", {"customer_360": 4, "recommendations": 5, "rfm": 4})
    assert json.loads(store["parquet/latest.json"]) == previous
    assert {key: store[key] for key in before} == before, "the previous export was touched"
    partial = [key for key in store if "22222222" in key]
    assert partial and not any(key.endswith("manifest.json") for key in partial)


def test_mart_tables_are_the_marts_views_with_their_keys():
    views = marts.view_definitions()
    assert [(t.name, t.order_by) for t in tables.mart_tables()] == [(v.name, v.key) for v in views]
    assert {t.qualified_name for t in tables.MODEL_TABLES} >= {
        "analytics.customer_clusters", "analytics.customer_predictions", "analytics.recommendations",
        "analytics.svd_customer_factors", "analytics.svd_product_factors", "analytics.association_rules",
        "analytics.rfm"}


def test_select_sql_orders_by_the_key_and_validates_names():
    assert TABLES[1].select_sql() == ('SELECT * FROM "analytics"."recommendations" '
                                      'ORDER BY "setting", "customer_id", "rank"')
    with pytest.raises(ValueError):
        tables.ExportTable("analytics", "rfm; DROP TABLE x", ("customer_id",)).select_sql()
