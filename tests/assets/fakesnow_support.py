"""What the Snowflake tests share: credentials of the fake account and a mend of fakesnow 0.12.1."""

from __future__ import annotations

import pytest

CREDENTIALS = {"account": "test", "user": "test", "password": "test", "database": "retail"}


def mend_comment_quotes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Mend fakesnow 0.12.1, which records a table comment without escaping its quotes.

    ``COMMENT ON TABLE ... IS 'Zhang''s metric'`` is valid Snowflake, but the fake pastes the parsed text into
    its own SQL and fails ("unterminated string literal"); the real statement is left as the code sends it.
    """
    from fakesnow import info_schema

    original = info_schema.insert_table_comment_sql
    monkeypatch.setattr(
        info_schema, "insert_table_comment_sql",
        lambda catalog, schema, table, comment: original(catalog, schema, table, comment.replace("'", "''")),
    )
