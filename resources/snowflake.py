"""Snowflake as the warehouse: the IO manager (dagster-snowflake-pandas) and a resource for direct SQL.

Belongs here: everything that opens a Snowflake connection. Which warehouse a deployment uses is chosen in
``resources.selection``; the SQL of the marts views in Snowflake's dialect is in ``pipeline.warehouse.marts``;
the rest of the pipeline's SQL is DuckDB's, which a :class:`SnowflakeSession` translates
(``pipeline.common.dialects``) and runs in Snowflake.

Asset keys ``[schema, table]`` map to ``<database>.<SCHEMA>.<TABLE>`` (Snowflake folds unquoted names to upper
case; the stock IO manager writes upper-case names too, so unquoted SQL finds them). Snowflake accepts
concurrent writers, so neither resource takes the DuckDB run lock.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Mapping, Sequence

import dagster as dg
import numpy as np
import pandas as pd
import pyarrow as pa
import snowflake.connector
from dagster._core.storage.db_io_manager import DbTypeHandler, TableSlice
from dagster_snowflake.snowflake_io_manager import SnowflakeDbClient
from dagster_snowflake_pandas import SnowflakePandasIOManager
from dagster_snowflake_pandas.snowflake_pandas_type_handler import SnowflakePandasTypeHandler
from pydantic import Field

from pipeline.common import dialects
from pipeline.common.sql import checked_identifier, sql_literal
from resources import publication
from resources.warehouse import stored_schema

#: Snowflake connector type codes of semi-structured columns (VARIANT, OBJECT, ARRAY), returned as JSON text.
_SEMI_STRUCTURED = {5, 9, 10}
_FIXED = 0
#: Suffix of the table a new version is loaded into before it replaces the published one.
_LOADING_SUFFIX = "__DAGSTER_LOADING"


def snowflake_name(*parts: str) -> str:
    """The upper-case quoted name of ``parts`` (``database``, ``schema``, ``table``), each part validated.

    Raises:
        ValueError: When a part is not a snake_case identifier (see ``checked_identifier``).
    """
    return ".".join(checked_identifier(part.lower()).upper() for part in parts)


def column_type(series: pd.Series) -> str:
    """The Snowflake type a pandas column is stored as.

    Lists (or arrays) become ``ARRAY``; a column of nulls only becomes ``VARCHAR`` (the type its values would
    most likely have).

    Args:
        series: The column.

    Returns:
        ``BOOLEAN``, ``NUMBER(38,0)``, ``FLOAT``, ``TIMESTAMP_NTZ``, ``TIMESTAMP_TZ``, ``ARRAY``, ``VARCHAR``.
    """
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "BOOLEAN"
    if pd.api.types.is_integer_dtype(dtype):
        return "NUMBER(38,0)"
    if pd.api.types.is_float_dtype(dtype):
        return "FLOAT"
    if isinstance(dtype, pd.DatetimeTZDtype) or (
            isinstance(dtype, pd.ArrowDtype) and pa.types.is_timestamp(dtype.pyarrow_dtype)
            and dtype.pyarrow_dtype.tz is not None):
        return "TIMESTAMP_TZ"
    if pd.api.types.is_datetime64_any_dtype(dtype):  # NumPy's or Arrow's (staging tables are Arrow-backed)
        return "TIMESTAMP_NTZ"
    values = series.dropna()
    if len(values) and isinstance(values.iloc[0], (list, tuple, np.ndarray)):
        return "ARRAY"
    return "VARCHAR"


def _loadable(frame: pd.DataFrame, types: Mapping[str, str]) -> pd.DataFrame:
    """``frame`` with upper-case column names and plain Python lists in ARRAY columns (JSON-serializable)."""
    loaded = frame.rename(columns=lambda name: str(name).upper())
    for name, kind in types.items():
        if kind == "ARRAY":
            loaded[name.upper()] = [
                None if value is None else np.asarray(value).tolist() for value in frame[name]
            ]
    return loaded


def write_table(
    connection,
    database: str,
    schema: str,
    table: str,
    frame: pd.DataFrame,
    *,
    table_comment: str | None = None,
    column_comments: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Replace ``database.schema.table`` with ``frame``: readers see the old table or the new one, never half.

    The rows are loaded into a separate table with ``write_pandas`` first, then one
    ``CREATE OR REPLACE TABLE ... AS SELECT`` (atomic in Snowflake) publishes them. Columns get explicit types
    (see :func:`column_type`), so an empty frame still creates its table and a column of nulls gets a type.

    Args:
        connection: A ``snowflake.connector`` connection.
        database: Database name.
        schema: Schema name (created if missing).
        table: Table name.
        frame: The rows; column names snake_case.
        table_comment: Comment of the table.
        column_comments: Comments of columns, by column name.

    Returns:
        The Snowflake type each column was stored as, by column name, in column order.
    """
    from snowflake.connector.pandas_tools import write_pandas

    types = {str(name): column_type(frame[name]) for name in frame.columns}
    target = snowflake_name(database, schema, table)
    loading = snowflake_name(database, schema, table + _LOADING_SUFFIX.lower())
    columns = ", ".join(f"{checked_identifier(name).upper()} {kind}" for name, kind in types.items())
    cursor = connection.cursor()
    cursor.execute(f"CREATE SCHEMA IF NOT EXISTS {snowflake_name(database, schema)}")
    cursor.execute(f"CREATE OR REPLACE TABLE {loading} ({columns})")
    try:
        if len(frame):
            write_pandas(
                conn=connection,
                df=_loadable(frame, types),
                table_name=(table + _LOADING_SUFFIX.lower()).upper(),
                schema=schema.upper(),
                database=database.upper(),
                quote_identifiers=True,
                auto_create_table=False,
                use_logical_type=True,
            )
        cursor.execute(f"CREATE OR REPLACE TABLE {target} AS SELECT * FROM {loading}")
    finally:
        cursor.execute(f"DROP TABLE IF EXISTS {loading}")
    if table_comment:
        cursor.execute(f"COMMENT ON TABLE {target} IS {sql_literal(table_comment)}")
    for name, comment in (column_comments or {}).items():
        if comment and name in types:
            column = checked_identifier(name).upper()
            cursor.execute(f"COMMENT ON COLUMN {target}.{column} IS {sql_literal(comment)}")
    return types


def cursor_frame(cursor) -> pd.DataFrame:
    """The rows of an executed query as the DuckDB warehouse returns them.

    Column names lower-case, ARRAY/VARIANT/OBJECT values parsed from their JSON text (lists become numpy
    arrays, as Arrow gives them), integer columns holding nulls as ``Int64``, timestamps ``datetime64[ns]``.

    Args:
        cursor: A Snowflake cursor after ``execute``.

    Returns:
        The result as a DataFrame.
    """
    description = cursor.description
    frame = cursor.fetch_pandas_all()
    frame.columns = [str(column.name).lower() for column in description]
    for column in description:
        name = str(column.name).lower()
        values = frame[name]
        if column.type_code in _SEMI_STRUCTURED:
            parsed = [json.loads(value) if isinstance(value, str) else value for value in values]
            if any(isinstance(value, list) for value in parsed):
                frame[name] = pa.array(parsed).to_pandas()
            else:
                frame[name] = parsed
        elif column.type_code == _FIXED and not column.scale:
            frame[name] = values.astype("Int64") if values.isna().any() else values.astype("int64")
        elif pd.api.types.is_datetime64_any_dtype(values.dtype):
            frame[name] = values.astype(values.dtype.name.replace("us", "ns").replace("ms", "ns"))
    return frame


class SnowflakeTableHandler(SnowflakePandasTypeHandler):
    """Stores pandas DataFrames as Snowflake tables, replaced whole, with the same comments as in DuckDB.

    The stock handler deletes the old rows and appends the new ones (a reader can see an empty table), skips
    empty frames (leaving stale rows), cannot change a table's columns and writes no comments. Here each
    table is replaced atomically (see :func:`write_table`) and carries the asset's description and its
    columns' descriptions (from the Pandera model), as ``resources.warehouse`` writes them in DuckDB.
    """

    def handle_output(
        self, context: dg.OutputContext, table_slice: TableSlice, obj: pd.DataFrame, connection
    ) -> None:
        """Replace the table with ``obj``; record row count and the stored column types."""
        metadata = context.definition_metadata or {}
        schema = metadata.get("dagster/column_schema")
        stored = write_table(
            connection,
            table_slice.database,
            table_slice.schema,
            table_slice.table,
            obj,
            table_comment=metadata.get("table_comment"),
            column_comments={column.name: column.description for column in getattr(schema, "columns", [])},
        )
        context.add_output_metadata(
            {
                "dagster/row_count": len(obj),
                "dagster/column_schema": stored_schema(list(stored.items()), context),
            }
        )

    def load_input(self, context: dg.InputContext, table_slice: TableSlice, connection) -> pd.DataFrame:
        """Load the table as the DuckDB warehouse would (see :func:`cursor_frame`)."""
        cursor = connection.cursor()
        cursor.execute(SnowflakeDbClient.get_select_statement(table_slice))
        return cursor_frame(cursor)


class _ReplacingSnowflakeDbClient(SnowflakeDbClient):
    """Leaves the old table in place until the type handler swaps in the new one."""

    @staticmethod
    def delete_table_slice(context: dg.OutputContext, table_slice: TableSlice, connection) -> None:
        if table_slice.partition_dimensions:
            SnowflakeDbClient.delete_table_slice(context, table_slice, connection)

    @staticmethod
    def ensure_schema_exists(context: dg.OutputContext, table_slice: TableSlice, connection) -> None:
        connection.cursor().execute(
            f"CREATE SCHEMA IF NOT EXISTS {snowflake_name(table_slice.database, table_slice.schema)}"
        )


class SnowflakeWarehouseIOManager(SnowflakePandasIOManager):
    """dagster-snowflake-pandas's IO manager, publishing each table atomically with its comments."""

    @staticmethod
    def type_handlers() -> Sequence[DbTypeHandler]:
        """The replacing, commenting pandas handler."""
        return [SnowflakeTableHandler()]

    def create_io_manager(self, context):
        """Build the IO manager with the replacing client."""
        manager = super().create_io_manager(context)
        manager._db_client = _ReplacingSnowflakeDbClient()  # noqa: SLF001 - the public API offers no client hook
        return manager


#: Why a call of DuckDB's API that has no Snowflake counterpart fails on a Snowflake session.
DUCKDB_ONLY = (
    "{what} is DuckDB's API, which a Snowflake session does not offer: there the pipeline's SQL runs through "
    "execute, sql and query, translated from DuckDB's dialect (README, 'Scaling out')"
)


class SnowflakeResult:
    """The result of one statement, read like a DuckDB relation (``fetchone``, ``fetchall``, ``df``)."""

    def __getattr__(self, name: str):
        """Refuse the rest of DuckDB's relation API with a message saying what runs on Snowflake."""
        if name.startswith("_"):
            raise AttributeError(name)
        raise AttributeError(DUCKDB_ONLY.format(what=f"relation.{name}"))

    def __init__(self, cursor) -> None:
        self._cursor = cursor

    @property
    def description(self):
        """Column descriptions of the result (Snowflake ``ResultMetadata``)."""
        return self._cursor.description

    def fetchone(self):
        """The next row, or None."""
        return self._cursor.fetchone()

    def fetchall(self) -> list:
        """The remaining rows."""
        return self._cursor.fetchall()

    def df(self) -> pd.DataFrame:
        """The rows as a DataFrame (see :func:`cursor_frame`)."""
        return cursor_frame(self._cursor)

    def to_arrow_table(self) -> pa.Table:
        """The rows as an Arrow table."""
        return pa.Table.from_pandas(self.df(), preserve_index=False)


class SnowflakeSession:
    """A Snowflake connection used like a DuckDB one: ``execute(sql, params)``, ``sql(sql)``, ``query``.

    The SQL a session takes is the pipeline's, written in DuckDB's dialect: it is translated to Snowflake's
    (``pipeline.common.dialects.to_snowflake``), so the EDA, RFM, prediction, basket, check and report
    queries run inside Snowflake unchanged. :attr:`native` is the same connection taking Snowflake's own
    SQL as is (the marts views, which keep a Snowflake text). Placeholders are ``?`` (the connection is
    opened with ``paramstyle="qmark"``) or, translated, DuckDB's ``$name``.
    """

    def __init__(self, connection, *, translate: bool = True) -> None:
        self.connection = connection
        self.translates = translate

    def __getattr__(self, name: str):
        """Refuse the rest of DuckDB's connection API with a message saying what runs on Snowflake."""
        if name.startswith("_"):
            raise AttributeError(name)
        raise AttributeError(DUCKDB_ONLY.format(what=f"connection.{name}"))

    @property
    def native(self) -> SnowflakeSession:
        """The same connection, taking Snowflake SQL as it is written."""
        return self if not self.translates else SnowflakeSession(self.connection, translate=False)

    def execute(
        self,
        query: str,
        parameters: Sequence | Mapping | None = None,
        *,
        tables: Mapping[str, str] | None = None,
    ) -> SnowflakeResult:
        """Run one statement.

        Args:
            query: DuckDB SQL (Snowflake SQL on a :attr:`native` session).
            parameters: Positional values for ``?``, or named values for DuckDB's ``$name``.
            tables: Relation names of ``query`` standing for stored tables (``{"cleaned":
                "staging.cleaned_transactions"}``); translated sessions only.

        Returns:
            The result, read like a DuckDB relation.
        """
        if self.translates:
            query, parameters = dialects.to_snowflake(query, parameters, tables=tables)
        cursor = self.connection.cursor()
        cursor.execute(query, list(parameters) if parameters else None)
        return SnowflakeResult(cursor)

    def sql(self, query: str, params: Sequence | Mapping | None = None) -> SnowflakeResult:
        """Run one query (DuckDB's ``connection.sql``)."""
        return self.execute(query, params)

    def query(
        self, sql: str, params: Mapping | Sequence | None = None, *, tables: Mapping[str, str]
    ) -> pd.DataFrame:
        """Run a DuckDB query over stored tables named by ``tables`` and return its rows.

        ``pipeline.common.lines.query_frames`` calls this for the lines stored in Snowflake: the query runs
        where the lines are, and only its result is fetched.
        """
        return self.execute(sql, params, tables=tables).df()


class SnowflakeWarehouse(dg.ConfigurableResource):
    """Direct SQL on the Snowflake warehouse, with the public methods of ``resources.warehouse.Warehouse``."""

    account: str = Field(description="Snowflake account identifier (<org>-<account>).")
    database: str = Field(description="Database holding the raw, staging, analytics and marts schemas.")
    user: str = Field(description="User login name.")
    password: str | None = Field(default=None, description="User password.")
    warehouse: str | None = Field(default=None, description="Virtual warehouse running the queries.")
    role: str | None = Field(default=None, description="Role to use.")

    @property
    def dialect(self) -> str:
        """SQL dialect of the warehouse: ``"snowflake"``."""
        return "snowflake"

    @property
    def location(self) -> str:
        """The warehouse as ``RETAIL_WAREHOUSE`` names it: ``snowflake://<account>/<database>``."""
        return f"snowflake://{self.account}/{self.database}"

    @property
    def is_local_file(self) -> bool:
        """Always False: there is no file to copy; analysts query Snowflake directly."""
        return False

    def publish_analyst_copy(self) -> publication.Publication:
        """Refuse: a Snowflake warehouse serves readers while runs write, so no analyst copy is made.

        Raises:
            PublicationError: Always.
        """
        raise publication.PublicationError(
            f"the warehouse {self.location} is not a local DuckDB file: analysts "
            "connect to Snowflake directly"
        )

    @contextlib.contextmanager
    def connect(self, *, read_only: bool = False) -> Iterator[SnowflakeSession]:
        """Open a session on the database and close it afterwards.

        Args:
            read_only: Accepted for compatibility with ``Warehouse.connect``; Snowflake grants decide.

        Yields:
            A :class:`SnowflakeSession`.
        """
        settings = {"warehouse": self.warehouse, "role": self.role, "password": self.password}
        connection = snowflake.connector.connect(
            account=self.account,
            user=self.user,
            database=self.database,
            paramstyle="qmark",
            application="dagster",
            **{key: value for key, value in settings.items() if value is not None},
        )
        try:
            yield SnowflakeSession(connection)
        finally:
            connection.close()

    def table_exists(self, schema: str, table: str) -> bool:
        """Tell whether ``schema.table`` exists."""
        with self.connect() as conn:
            (found,) = conn.native.execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
                [schema.upper(), table.upper()],
            ).fetchone()
        return bool(found)

    def read_table(
        self, schema: str, table: str, *, where_in: tuple[str, list] | None = None
    ) -> pd.DataFrame:
        """Read a table (optionally only rows whose column, as text, is in a list).

        Args:
            schema: Schema name.
            table: Table name.
            where_in: Optional ``(column, values)`` filter run in Snowflake (values compared as text).

        Returns:
            The rows as a DataFrame (see :func:`cursor_frame`).
        """
        sql = f"SELECT * FROM {snowflake_name(self.database, schema, table)}"
        params: list = []
        if where_in is not None:
            column, values = where_in
            sql += (
                f" WHERE CAST({checked_identifier(column).upper()} AS VARCHAR) IN "
                "(SELECT value::VARCHAR FROM TABLE(FLATTEN(input => PARSE_JSON(?))))"
            )
            params = [json.dumps([str(value) for value in values])]
        with self.connect() as conn:
            return conn.native.execute(sql, params).df()

    def row_counts(self) -> pd.DataFrame:
        """Row count of every table and view in the database, by schema and name (lower-case)."""
        with self.connect() as conn:
            native = conn.native
            tables = native.execute(
                "SELECT table_schema, table_name FROM information_schema.tables "
                "WHERE table_schema <> 'INFORMATION_SCHEMA' ORDER BY 1, 2"
            ).fetchall()
            count = "SELECT count(*) FROM {}"
            rows = [
                (schema.lower(), table.lower(),
                 native.execute(count.format(snowflake_name(self.database, schema, table))).fetchone()[0])
                for schema, table in tables
            ]
        return pd.DataFrame(rows, columns=["schema", "table", "rows"])
