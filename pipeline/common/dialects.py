"""The pipeline's SQL, written once in DuckDB's dialect, translated for another warehouse (Snowflake).

What belongs here: :func:`to_snowflake`, which turns one DuckDB query with its parameters into Snowflake SQL
and positional parameters, with sqlglot. The queries of EDA, RFM, prediction, baskets, the checks and the
report are written for DuckDB; on a Snowflake warehouse they run in Snowflake through this translation,
so the lines are aggregated where they are stored rather than copied out. What does not belong here: SQL
that only one warehouse runs (the marts views keep a Snowflake text where the dialects differ, see
``pipeline.warehouse.marts``).

Translation rules, beyond sqlglot's function mapping:

- Names: a quoted lower-case name (``"customer_id"``, as ``quote_identifier`` writes them) is unquoted, so
  Snowflake folds it to upper case like the tables the IO manager writes.
- Relation names: ``tables`` renames single-part relations (``cleaned`` -> ``staging.cleaned_transactions``),
  which is how ``pipeline.common.lines.query_frames`` points a query at stored tables.
- Parameters: DuckDB's named (``$as_of``) and positional (``?``) placeholders become Snowflake ``?``
  placeholders, with the values listed in the order they appear in the generated text.

sqlglot ships with the ``scale`` extra (it is imported only when a translation is asked for).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence

_LOWER_NAME = re.compile(r"^[a-z_][a-z0-9_$]*$")
#: Marks a placeholder in the generated text until it is numbered (cannot occur in the pipeline's SQL).
_MARK = "__placeholder_{}__"


class UntranslatableSql(ValueError):
    """A DuckDB query Snowflake cannot run as translated (e.g. ``EXCEPT ALL``); the message names it."""


@functools.lru_cache(maxsize=256)
def _translate(sql: str, tables: tuple[tuple[str, str], ...]) -> tuple[str, tuple[object, ...]]:
    """Snowflake text and its placeholders (a name, or the index of a positional ``?``) in text order."""
    import sqlglot
    from sqlglot import exp

    try:
        tree = sqlglot.parse_one(sql, read="duckdb")
    except sqlglot.errors.ParseError as error:
        raise UntranslatableSql(f"the DuckDB query does not parse: {error}\n{sql}") from error
    renames = dict(tables)
    for table in list(tree.find_all(exp.Table)):
        if not table.args.get("db") and table.name in renames:
            schema, name = renames[table.name].split(".")
            alias = table.alias or table.name
            table.replace(exp.to_table(f"{schema}.{name}").as_(alias))
    for identifier in tree.find_all(exp.Identifier):
        if identifier.quoted and _LOWER_NAME.match(identifier.this):
            identifier.set("quoted", False)
    placeholders: list[object] = []
    positional = 0
    for node in list(tree.walk(bfs=False)):
        if isinstance(node, exp.Placeholder):
            key: object = node.name if node.name and node.name != "?" else positional
            if not isinstance(key, str):
                positional += 1
            node.replace(exp.var(_MARK.format(len(placeholders))))
            placeholders.append(key)
    try:
        text = tree.sql(dialect="snowflake", unsupported_level=sqlglot.ErrorLevel.RAISE)
    except sqlglot.errors.UnsupportedError as error:
        raise UntranslatableSql(f"Snowflake cannot run this DuckDB query: {error}\n{sql}") from error
    # List the values in the order the generated text holds the placeholders (it may reorder or repeat them).
    marks = re.compile(_MARK.format(r"(\d+)"))
    order = tuple(placeholders[int(found.group(1))] for found in marks.finditer(text))
    return marks.sub("?", text), order


def to_snowflake(
    sql: str,
    params: Mapping[str, object] | Sequence[object] | None = None,
    *,
    tables: Mapping[str, str] | None = None,
) -> tuple[str, list[object]]:
    """Translate a DuckDB query and its parameters into Snowflake SQL and positional parameters.

    Args:
        sql: One DuckDB statement.
        params: Named parameters (``$name`` in ``sql``) as a mapping, or positional ones (``?``) as a
            sequence.
        tables: Single-part relation names to replace by ``schema.table`` names.

    Returns:
        ``(text, values)``: the Snowflake statement with ``?`` placeholders, and their values in order.

    Raises:
        UntranslatableSql: When the query does not parse or uses what Snowflake lacks.
        KeyError: When a named parameter has no value.
    """
    text, placeholders = _translate(sql, tuple(sorted((tables or {}).items())))
    if isinstance(params, Mapping):
        values = [params[key] for key in placeholders]
    else:
        given = list(params or [])
        values = [given[key] for key in placeholders]
    return text, values
