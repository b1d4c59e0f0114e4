"""Quoting for the SQL the project has to build as text (names of tables and columns, ``COMMENT ON`` strings).

Values always travel as bound parameters; only what DuckDB cannot bind (identifiers, comment text) is quoted
here.
"""

from __future__ import annotations

import re

_SNAKE_CASE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def quote_identifier(name: str) -> str:
    """Quote any DuckDB identifier, doubling embedded quotes (for names read from DuckDB's own catalog).

    Args:
        name: Schema, table or column name.

    Returns:
        The name in double quotes.
    """
    return '"' + str(name).replace('"', '""') + '"'


def checked_identifier(name: str) -> str:
    """Validate a name against the warehouse's naming rule (snake_case) and quote it.

    Args:
        name: A snake_case identifier, e.g. from configuration.

    Returns:
        The identifier in double quotes.

    Raises:
        ValueError: When ``name`` is not a plain lower-case identifier (so no SQL can be smuggled in).
    """
    if not isinstance(name, str) or not _SNAKE_CASE.match(name):
        raise ValueError(f"invalid identifier {name!r}: expected lower-case letters, digits and underscores")
    return f'"{name}"'


def qualified_name(schema: str, table: str) -> str:
    """The quoted ``schema.table`` name, both parts validated by :func:`checked_identifier`."""
    return f"{checked_identifier(schema)}.{checked_identifier(table)}"


def sql_literal(text: object) -> str:
    """A SQL string literal, for statements that take no bind parameters (``COMMENT ON``)."""
    return "'" + str(text).replace("'", "''") + "'"
