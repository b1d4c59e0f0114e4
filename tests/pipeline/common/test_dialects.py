"""The translation of the pipeline's DuckDB SQL into Snowflake's (``pipeline.common.dialects``).

Whether Snowflake (fakesnow) runs the translated queries and returns what DuckDB returns is tested on the
whole job, in ``tests/assets/test_snowflake_pipeline.py``; here, the rules of the translation itself.
"""

from __future__ import annotations

import pytest

pytest.importorskip("sqlglot")

from pipeline.common.dialects import UntranslatableSql, to_snowflake  # noqa: E402 - after the skip


def test_named_parameters_become_positional_in_text_order_repeats_included():
    text, values = to_snowflake(
        "SELECT count(*) FROM t WHERE d >= $start AND d < $stop AND kind = $kind AND e >= $start",
        {"stop": "b", "kind": "k", "start": "a"},
    )
    assert text.count("?") == 4 and "$" not in text
    assert values == ["a", "b", "k", "a"]


def test_positional_parameters_keep_their_order():
    text, values = to_snowflake("SELECT * FROM t WHERE a = ? AND b IN (SELECT x FROM u WHERE y = ?)", [1, 2])
    assert text.count("?") == 2 and values == [1, 2]


def test_single_part_relations_are_renamed_to_stored_tables_keeping_their_alias():
    text, _ = to_snowflake(
        "SELECT c.invoice FROM cleaned AS c JOIN rejected USING (invoice) "
        "JOIN other.cleaned AS o USING (invoice)",
        tables={"cleaned": "staging.cleaned_transactions", "rejected": "staging.rejected_rows"},
    )
    assert "staging.cleaned_transactions AS c" in text
    assert "staging.rejected_rows AS rejected" in text
    assert "other.cleaned AS o" in text  # a qualified name is the user's, never renamed


def test_quoted_lower_case_names_are_unquoted_so_snowflake_folds_them_like_the_stored_ones():
    text, _ = to_snowflake('SELECT "customer_id", "Odd Name" FROM "analytics"."rfm"')
    assert "customer_id" in text and '"customer_id"' not in text and "analytics.rfm" in text
    assert '"Odd Name"' in text


def test_duckdb_functions_are_mapped():
    text, _ = to_snowflake(
        "SELECT datediff('day', a, b), date_trunc('month', d)::DATE, list(x ORDER BY y), "
        "count(*) FILTER (WHERE z > 1) FROM t GROUP BY ALL"
    )
    assert "DATEDIFF(DAY, a, b)" in text
    assert "ARRAY_AGG(x) WITHIN GROUP (ORDER BY y)" in text
    assert "COUNT_IF(z > 1)" in text


def test_what_snowflake_lacks_is_refused_with_the_query():
    with pytest.raises(UntranslatableSql, match="EXCEPT ALL"):
        to_snowflake("SELECT a FROM t EXCEPT ALL SELECT a FROM u")
    with pytest.raises(UntranslatableSql, match="does not parse"):
        to_snowflake("SELECT (1 FROM t")


def test_a_missing_named_parameter_is_an_error():
    with pytest.raises(KeyError, match="stop"):
        to_snowflake("SELECT * FROM t WHERE d < $stop", {"start": 1})
