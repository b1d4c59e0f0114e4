"""The marts views in Snowflake's dialect return the rows of the DuckDB views (run on fakesnow).

fakesnow executes Snowflake SQL by translating it to DuckDB, so these tests prove the Snowflake text is
parsed as Snowflake and means the same as the DuckDB text; they cannot prove Snowflake itself accepts it.
"""

from __future__ import annotations

import hashlib
import json

import duckdb
import numpy as np
import pandas as pd
import pytest

from pipeline.warehouse import marts

fakesnow = pytest.importorskip("fakesnow")
snowflake_connector = pytest.importorskip("snowflake.connector")

#: SHA-256 (first 16 hex digits) of each DuckDB view text as it was before the Snowflake dialect was added.
#: A deliberate change of a DuckDB view changes its digest here too: customer_360 was rewritten in the subset
#: both dialects run (QUALIFY instead of first(... ORDER BY), CASE instead of FILTER, ON instead of USING),
#: same rows, so the two dialects share one text.
DUCKDB_DIGESTS = {
    "default": {
        "customer_360": "0dae865df801a064",
        "segment_overview": "2302a3cae75cd265",
        "top_rules": "33c572a2db5e87bd",
        "product_360": "5e3b80d977524e43",
        "slow_movers": "f75ddd3c1d3380a4",
    },
    "custom": {
        "customer_360": "6795e13d54ad7d7a",
        "segment_overview": "2302a3cae75cd265",
        "top_rules": "9494c9a5c7555003",
        "product_360": "e5694a1873fe1a8d",
        "slow_movers": "d1c4ec756adb7558",
    },
}
CUSTOM = {"window_days": 30, "stall_days": 20, "fall_ratio": 0.25, "min_previous_invoices": 2, "top_rules": 7,
          "recommendation_setting": "new_only"}
SETTINGS = {"default": {}, "custom": CUSTOM}


@pytest.mark.parametrize("setting", sorted(SETTINGS))
def test_duckdb_text_is_unchanged(setting):
    views = marts.view_definitions(**SETTINGS[setting])
    assert views == marts.view_definitions(**SETTINGS[setting], dialect="duckdb")
    digests = {view.name: hashlib.sha256(view.sql.encode()).hexdigest()[:16] for view in views}
    assert digests == DUCKDB_DIGESTS[setting]


def test_dialects_share_names_keys_sources_and_descriptions():
    duck, snow = marts.view_definitions(), marts.view_definitions(dialect="snowflake")
    assert [(v.name, v.key, v.sources, v.description, dict(v.columns)) for v in duck] == [
        (v.name, v.key, v.sources, v.description, dict(v.columns)) for v in snow
    ]
    # The Snowflake text uses none of the DuckDB-only constructs.
    for view in snow:
        for duckdb_only in ("FILTER (", "first(", "list(", "unnest(", "date_diff(", "USING ("):
            assert duckdb_only not in view.sql, (view.name, duckdb_only)


@pytest.mark.parametrize("call", [
    lambda: marts.view_definitions(dialect="bigquery"),
    lambda: marts.view_profile(None, marts.view_definitions()[0], dialect="postgres"),
    lambda: marts.column_comments(None, "marts.customer_360", dialect="SNOWFLAKE"),
    lambda: marts.publish_views(None, [], dialect="mysql"),
])
def test_unknown_dialect_is_refused(call):
    with pytest.raises(ValueError, match="unknown SQL dialect"):
        call()


def _sources(views: list[marts.MartView]) -> list[str]:
    return sorted({source for view in views for source in view.sources if not source.startswith("marts.")})


@pytest.fixture(scope="module")
def snowflake_marts(full_warehouse):
    """The analytic tables of the session warehouse loaded into fakesnow, and the views created there.

    Yields ``(session, duckdb_connection, described)``: a ``SnowflakeSession`` on the fake, a read-only
    connection to the DuckDB warehouse, and what ``publish_views`` returned in Snowflake.
    """
    from resources.snowflake import SnowflakeSession, write_table

    views = marts.view_definitions(dialect="snowflake")
    with fakesnow.patch(), duckdb.connect(full_warehouse.database, read_only=True) as duck:
        connection = snowflake_connector.connect(
            account="test", user="test", password="test", database="retail", paramstyle="qmark"
        )
        for relation in _sources(views):
            schema, table = relation.split(".")
            frame = duck.sql(f"SELECT * FROM {relation}").to_arrow_table().to_pandas(
                coerce_temporal_nanoseconds=True, date_as_object=False
            )
            write_table(connection, "retail", schema, table, frame)
        session = SnowflakeSession(connection)
        described = marts.publish_views(session, views, dialect="snowflake")
        yield session, duck, described
        connection.close()


def _comparable(frame: pd.DataFrame) -> pd.DataFrame:
    """Lists as JSON text, timestamps at microseconds, numbers as float: one representation for both sides."""
    out = frame.copy()
    for name in out.columns:
        column = out[name]
        if column.dtype == object and column.map(lambda v: isinstance(v, (list, np.ndarray))).any():
            out[name] = column.map(lambda v: None if v is None else json.dumps(np.asarray(v).tolist()))
        elif pd.api.types.is_datetime64_any_dtype(column):
            out[name] = column.astype("datetime64[us]")
        elif pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
            out[name] = column.astype("float64")
    return out


@pytest.mark.parametrize("view", [view.name for view in marts.view_definitions()])
def test_snowflake_view_returns_the_duckdb_rows(snowflake_marts, view):
    session, duck, _ = snowflake_marts
    definition = next(v for v in marts.view_definitions() if v.name == view)
    expected = duck.sql(f"SELECT * FROM marts.{view}").to_arrow_table().to_pandas(
        coerce_temporal_nanoseconds=True, date_as_object=False
    )
    actual = session.execute(f"SELECT * FROM marts.{view}").df()
    assert list(actual.columns) == list(expected.columns)
    assert len(expected) > 0
    key = list(definition.key)
    expected, actual = (
        _comparable(frame).sort_values(key).reset_index(drop=True) for frame in (expected, actual)
    )
    if view == "top_rules":
        # fakesnow numbers FLATTEN's INDEX with row_number() OVER () across the whole lateral join, not per
        # array, so the element order of the joined descriptions is arbitrary there (about 1% of rules on
        # the session warehouse); Snowflake's INDEX is the element's position. Compare the items only.
        for column in ("if_bought", "then_bought"):
            actual[column], expected[column] = (
                frame[column].map(lambda text: " + ".join(sorted(text.split(" + "))))
                for frame in (actual, expected)
            )
    pd.testing.assert_frame_equal(actual, expected, check_exact=False, rtol=1e-9, atol=1e-9)


def test_snowflake_profile_counts_rows_and_duplicate_keys(snowflake_marts):
    session, duck, _ = snowflake_marts
    for view in marts.view_definitions(dialect="snowflake"):
        assert marts.view_profile(session, view, dialect="snowflake") == marts.view_profile(duck, view)
    doubled = marts.MartView(name="doubled", description="", key=("segment",), sql="", sources=())
    session.execute(
        "CREATE OR REPLACE VIEW marts.doubled AS "
        "SELECT segment FROM marts.segment_overview UNION ALL SELECT segment FROM marts.segment_overview"
    )
    profile = marts.view_profile(session, doubled, dialect="snowflake")
    assert profile["rows"] == 2 * profile["duplicate_keys"] > 0


def test_snowflake_views_list_the_duckdb_columns(snowflake_marts):
    _, duck, described = snowflake_marts
    for view in marts.view_definitions():
        names = marts.column_comments(duck, view.qualified_name)["column_name"].tolist()
        assert described[view.name]["column_name"].tolist() == names
        # Derived columns carry the view's own descriptions whatever the warehouse writes as comments.
        own = described[view.name].set_index("column_name")["description"]
        for name, text in view.columns.items():
            assert own[name] == text
