"""Validate a warehouse table against its Pandera model in DuckDB, loading into pandas only what SQL cannot.

Belongs here: the two routes of the blocking ``matches_schema`` checks (``assets.checks`` turns their report
into a Dagster result), and the loader they share with the IO manager's DuckDB -> pandas conversion. Pure
Python on a DuckDB connection, no Dagster imports; it only reads tables (``store_frame`` writes, for scratch
databases in tests and ``assets.checks.validate_frame``). The models live in ``pipeline.staging.schemas*``.

The Pandera model stays the single source of truth: no rule is restated by hand in SQL. The SQL route

1. reads the table's columns and DuckDB types from the catalog. A missing or unexpected column, a type that
   does not load and coerce to the model's dtype whatever the values, or nulls in an ``int``/``bool`` column
   send the table to the pandas route (the whole table through Pandera, as the check always did), whose
   verdict and report are Pandera's by definition. So do a check that raises and a schema feature this module
   does not reproduce (index, parsers, grouped checks...);
2. counts in one scan the nulls, the failures of the numeric built-in checks (comparisons and ``in_range``,
   translated from each check's statistics) and the distinct hashes of every ``unique`` column or column set;
3. runs in pandas, on distinct values only, every column check whose verdict per value is fixed: the other
   built-ins, element-wise checks and checks declared ``determined_by_unique`` (on the whole column instead
   when it is loaded anyway and grouping would not shrink it);
4. runs in pandas every other column check on its column, and every dataframe-level check on the columns the
   model lists for it in its ``_check_columns`` attribute (all columns when it is not listed);
5. passes when nothing failed. Otherwise it loads the suspect rows in full (every row failing something, every
   member of a duplicate group) and lets Pandera validate them with the model, in which each check that is not
   row-local is replaced by a stand-in replaying its verdict on the whole table. The failure cases are then
   exactly those Pandera reports on the whole table, rows named by their position in the table as the IO
   manager loads it.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from numbers import Real

import duckdb
import numpy as np
import pandas as pd
import pandera.errors
import pandera.pandas as pa
from pandera.api.function_dispatch import Dispatcher

from pipeline.common.sql import quote_identifier

SAMPLE_ROWS = 20
CHECK_COLUMNS_ATTRIBUTE = "_check_columns"
"""Model attribute ``{dataframe check name: columns it reads}`` (Pandera ignores names starting with _)."""

# resources.warehouse.AtomicPandasTypeHandler.load_input turns integer columns loaded as float into Int64.
_INTEGER_TYPES = frozenset(
    {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT"}
)
_INT64_SAFE = frozenset({"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "UTINYINT", "USMALLINT", "UINTEGER"})
# DuckDB types that load and coerce to each Pandera dtype with an outcome that does not depend on the values,
# so SQL on the stored values sees what Pandera sees after coercion. All-null columns are stored as type NULL.
_CANONICAL_TYPES = {
    "int64": _INT64_SAFE,
    "Int64": _INT64_SAFE | {"NULL"},
    "float64": frozenset({"DOUBLE", "NULL"}),
    "str": frozenset({"VARCHAR", "NULL"}),
    "datetime64[ns]": frozenset({"TIMESTAMP_NS", "NULL"}),
    "bool": frozenset({"BOOLEAN"}),
}
# Coercing a null to these fails, and Pandera then reports coercion cases too: left to the pandas route.
_NULL_INTOLERANT = frozenset({"int64", "bool"})
_NUMERIC_DTYPES = frozenset({"int64", "Int64", "float64"})
# Built-in checks whose verdict on a row depends on that row's value only: re-run as they are on suspect rows.
_ROW_LOCAL_BUILTINS = frozenset(
    {
        "equal_to", "not_equal_to", "greater_than", "greater_than_or_equal_to", "less_than",
        "less_than_or_equal_to", "in_range", "isin", "notin", "str_matches", "str_contains", "str_startswith",
        "str_endswith", "str_length",
    }
)
_COMPARISONS = {
    "equal_to": ("=", "value"),
    "not_equal_to": ("<>", "value"),
    "greater_than": (">", "min_value"),
    "greater_than_or_equal_to": (">=", "min_value"),
    "less_than": ("<", "max_value"),
    "less_than_or_equal_to": ("<=", "max_value"),
}
_ROW = "__row__"


@dataclass(frozen=True)
class TableValidation:
    """Outcome of validating one table.

    Attributes:
        passed: Whether the table satisfies the model.
        rows: Rows in the table.
        failure_cases: Pandera's failure cases (``SchemaErrors.failure_cases`` layout), empty when passed.
        failing_rows: The table's rows named by the first failure cases, in full (lineage included).
        route: ``"sql"`` or ``"pandas"`` (the whole table validated by Pandera).
        note: Why the pandas route was taken, if it was.
    """

    passed: bool
    rows: int
    failure_cases: pd.DataFrame
    failing_rows: pd.DataFrame
    route: str
    note: str = ""


class _PandasRoute(Exception):
    """The table (or a check) is outside what the SQL route reproduces exactly."""


def store_frame(conn: duckdb.DuckDBPyConnection, frame: pd.DataFrame, schema: str, table: str) -> None:
    """Store a frame as a table the way the warehouse IO manager does (``CREATE TABLE ... AS SELECT``).

    Args:
        conn: Writable DuckDB connection.
        frame: Rows to store.
        schema: Target schema (created if missing).
        table: Target table (replaced if present).
    """
    view = "_stored_frame"
    conn.register(view, frame)
    try:
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_identifier(schema)}")
        conn.execute(f"CREATE OR REPLACE TABLE {quote_identifier(schema)}.{quote_identifier(table)} AS SELECT * FROM {view}")
    finally:
        conn.unregister(view)


def load_table(
    conn: duckdb.DuckDBPyConnection,
    schema: str,
    table: str,
    *,
    columns: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Load a table as the warehouse IO manager does.

    Args:
        conn: DuckDB connection.
        schema: Schema of the table.
        table: Table name.
        columns: Columns to load (default all, in table order).

    Returns:
        The rows in table order, indexed 0..n-1; integer columns holding nulls as ``Int64``.
    """
    name = f"{quote_identifier(schema)}.{quote_identifier(table)}"
    if not isinstance(conn, duckdb.DuckDBPyConnection):  # another warehouse reads as its own IO manager does
        selected = ", ".join(quote_identifier(column) for column in columns) if columns else "*"
        return conn.sql(f"SELECT {selected} FROM {name}").df()
    return _load(conn, name, list(columns or _column_types(conn, name))).reset_index(drop=True)


def validate_frame(frame: pd.DataFrame, model: type[pa.DataFrameModel], *, sample_rows: int = SAMPLE_ROWS
                   ) -> TableValidation:
    """Validate a frame with Pandera itself (the pandas route, and the reference the SQL route must match).

    Args:
        frame: The table as loaded by the IO manager.
        model: Its Pandera model.
        sample_rows: How many failing rows to keep.

    Returns:
        The verdict with Pandera's failure cases.
    """
    return _judge(model.to_schema(), frame, rows=len(frame), route="pandas", sample_rows=sample_rows)


def validate_table(
    conn: duckdb.DuckDBPyConnection,
    schema: str,
    table: str,
    model: type[pa.DataFrameModel],
    *,
    sample_rows: int = SAMPLE_ROWS,
) -> TableValidation:
    """Validate a warehouse table against its Pandera model, in DuckDB where possible (see module docstring).

    On another warehouse (Snowflake, whose tables have no ``rowid`` to name failing rows by) the table is
    loaded as its IO manager loads it and Pandera judges it: the pandas route, exact but not pushed down.

    Args:
        conn: Connection to the warehouse: DuckDB's, or a ``resources.snowflake.SnowflakeSession``.
        schema: Schema of the table.
        table: Table name.
        model: Its Pandera model.
        sample_rows: How many failing rows to keep.

    Returns:
        The same verdict and failure cases as Pandera on the whole table loaded by the IO manager.
    """
    if not isinstance(conn, duckdb.DuckDBPyConnection):
        note = "the SQL route runs on DuckDB only"
    else:
        try:
            name = f"{quote_identifier(schema)}.{quote_identifier(table)}"
            return _SqlRoute(conn, name, model).run(sample_rows=sample_rows)
        except (_PandasRoute, duckdb.Error) as reason:  # a case the SQL route cannot take: be exact, not fast
            note = str(reason)
    frame = load_table(conn, schema, table)
    return _judge(model.to_schema(), frame, rows=len(frame), route="pandas", sample_rows=sample_rows,
                  note=note)


def _judge(schema: pa.DataFrameSchema, frame: pd.DataFrame, *, rows: int, route: str, sample_rows: int,
           note: str = "") -> TableValidation:
    """Run Pandera lazily on ``frame`` and package its failure cases and the rows they name."""
    try:
        schema.validate(frame, lazy=True)
    except pandera.errors.SchemaErrors as err:
        cases = err.failure_cases
        named = cases["index"].dropna().unique()[:sample_rows] if "index" in cases else []
        sample = frame.loc[frame.index.intersection(named)] if len(named) else frame.head(0)
        return TableValidation(False, rows, cases, sample, route, note)
    return TableValidation(True, rows, pd.DataFrame(), frame.head(0), route, note)


def _column_types(conn: duckdb.DuckDBPyConnection, name: str) -> dict[str, str]:
    """Column name -> DuckDB type of a table, in table order (binding only, no scan)."""
    relation = conn.sql(f"SELECT * FROM {name}")
    types = zip(relation.columns, relation.dtypes, strict=True)
    return {column: str(dtype).strip('"') for column, dtype in types}


def _io_manager_types(frame: pd.DataFrame, types: Iterable[str]) -> pd.DataFrame:
    """Apply the IO manager's conversion: integer columns that came back as float become ``Int64``."""
    for column, dtype in zip(frame.columns, types, strict=True):
        if dtype in _INTEGER_TYPES and frame[column].dtype.kind == "f":
            frame[column] = frame[column].astype("Int64")
    return frame


def _load(
    conn: duckdb.DuckDBPyConnection,
    name: str,
    columns: list[str],
    *,
    rowids: Iterable[int] | None = None,
    arrow_columns: Iterable[str] = (),
) -> pd.DataFrame:
    """Load ``columns`` (optionally only some rows) like the IO manager, indexed by row id.

    ``arrow_columns`` (list columns without null rows) go through Arrow: the same NumPy arrays per cell as
    ``DuckDBPyRelation.df()`` builds, at half the cost. A null list would come back as ``None`` instead of
    ``pd.NA``, hence the condition.
    """
    where, params = "", []
    if rowids is not None:
        where, params = " WHERE rowid IN (SELECT unnest(?::BIGINT[]))", [sorted(int(r) for r in rowids)]
    via_arrow = [c for c in columns if c in set(arrow_columns)]
    direct = [c for c in columns if c not in via_arrow]
    selected = ", ".join([f"rowid AS {_ROW}", *(quote_identifier(c) for c in direct)])
    relation = conn.sql(f"SELECT {selected} FROM {name}{where}", params=params)
    frame = _io_manager_types(relation.df(), [str(t) for t in relation.dtypes])
    if via_arrow:
        selected = ", ".join([f"rowid AS {_ROW}", *(quote_identifier(c) for c in via_arrow)])
        batches = conn.sql(f"SELECT {selected} FROM {name}{where}", params=params).arrow()
        table = batches.read_all() if hasattr(batches, "read_all") else batches
        # Both scans return rows in insertion order; compare the row ids rather than rely on it.
        if not np.array_equal(table.column(_ROW).to_numpy(), frame[_ROW].to_numpy()):
            return _load(conn, name, columns, rowids=rowids)
        for column in via_arrow:
            frame[column] = table.column(column).to_pandas()
    frame = frame.set_index(_ROW)
    frame.index.name = None
    return frame[columns]


@dataclass
class _Target:
    """A table column and the model column (by key; regex keys match several) that governs it."""

    name: str
    duck_type: str
    key: Hashable
    spec: pa.Column

    @property
    def dtype(self) -> str:
        """The model dtype as Pandera prints it (``int64``, ``Int64``, ``str``...)."""
        return str(self.spec.dtype)

    @property
    def is_double(self) -> bool:
        """DOUBLE columns: NaN counts as null, and signed zeros keep them off the distinct-values path."""
        return self.duck_type == "DOUBLE"

    @property
    def is_list(self) -> bool:
        """A DuckDB LIST column (NumPy arrays per cell once loaded)."""
        return self.duck_type.endswith("[]")

    def value(self) -> str:
        """SQL expression of the column's value as pandas sees it (NaN is null)."""
        column = quote_identifier(self.name)
        return f"(CASE WHEN isnan({column}) THEN NULL ELSE {column} END)" if self.is_double else column

    def key_value(self) -> str:
        """SQL expression grouping values pandas ``duplicated`` treats as equal (NaN = null, -0.0 = 0.0)."""
        column = quote_identifier(self.name)
        return f"(CASE WHEN isnan({column}) THEN NULL ELSE {column} + 0.0 END)" if self.is_double else column

    def null(self) -> str:
        """SQL condition: the value is missing for pandas."""
        column = quote_identifier(self.name)
        return f"({column} IS NULL OR isnan({column}))" if self.is_double else f"{column} IS NULL"


def _unsupported_features(schema: pa.DataFrameSchema) -> str | None:
    """Schema features the SQL route does not reproduce; None if there are none."""
    if schema.index is not None or schema.ordered or schema.unique_column_names or schema.add_missing_columns:
        return "index, column order or missing-column options"
    if schema.drop_invalid_rows or schema.dtype is not None or schema.parsers or schema.strict == "filter":
        return "row dropping, schema dtype, parsers or strict='filter'"
    checks = [*schema.checks, *(c for column in schema.columns.values() for c in column.checks)]
    if any(check.groupby is not None for check in checks):
        return "grouped checks"
    if any(column.parsers or column.drop_invalid_rows for column in schema.columns.values()):
        return "column parsers or row dropping"
    return None


def _match_columns(schema: pa.DataFrameSchema, types: dict[str, str]) -> list[_Target]:
    """Pair each table column with its model column, or raise ``_PandasRoute`` on a structural mismatch."""
    targets, claimed = [], set()
    for key, spec in schema.columns.items():
        if spec.regex:
            # Pandera matches regex column names with pandas str.match (re.match: anchored at the start).
            names = [name for name in types if re.match(str(key), str(name))]
        else:
            names = [key] if key in types else []
        if not names and spec.required:
            raise _PandasRoute(f"column {key!r} is missing")
        for name in names:
            if name in claimed:
                raise _PandasRoute(f"column {name!r} matches two model columns")
            targets.append(_Target(name, types[name], key, spec))
            claimed.add(name)
    # Unexpected columns fail a strict model; a lax one hands them to its dataframe checks. Pandas either way.
    extra = [name for name in types if name not in claimed]
    if extra:
        raise _PandasRoute(f"columns {extra} are not in the model")
    for target in targets:
        allowed = _CANONICAL_TYPES.get(target.dtype)
        if target.spec.dtype is not None and target.dtype != "object" and (
            allowed is None or target.duck_type not in allowed
        ):
            raise _PandasRoute(f"column {target.name!r} is {target.duck_type}, model dtype {target.dtype}")
    return targets


def _builtin(check: pa.Check) -> str | None:
    """The name of the Pandera built-in ``check`` runs (``greater_than``...), or None for a custom check.

    Built-ins run a registry dispatcher; a custom check may reuse a built-in's name; built-ins may be renamed.
    """
    function = check._check_fn  # noqa: SLF001
    name = getattr(function, "__name__", None)
    if isinstance(function, Dispatcher) and name is not None and check.is_builtin_check(name):
        return name
    return None


def _is_row_local(check: pa.Check) -> bool:
    """Whether a column check's verdict on a row depends on that row's value only (so re-run on any rows)."""
    return check.element_wise or _builtin(check) in _ROW_LOCAL_BUILTINS


def _number(value: object) -> int | float | None:
    """A plain Python number for a SQL parameter, or None if ``value`` is not a real, non-boolean number."""
    if isinstance(value, bool | np.bool_) or not isinstance(value, Real):
        return None
    return value.item() if isinstance(value, np.generic) else value


def _comparison(check: pa.Check, value: str) -> tuple[str, list] | None:
    """SQL pass condition of a numeric built-in comparison and its parameters; None if not translatable."""
    stats = check.statistics
    if _builtin(check) == "in_range":
        low, high = _number(stats.get("min_value")), _number(stats.get("max_value"))
        if low is None or high is None:
            return None
        low_op = ">=" if stats.get("include_min", True) else ">"
        high_op = "<=" if stats.get("include_max", True) else "<"
        return f"{value} {low_op} ? AND {value} {high_op} ?", [low, high]
    operator, statistic = _COMPARISONS[_builtin(check)]
    bound = _number(stats.get(statistic))
    return (None if bound is None else (f"{value} {operator} ?", [bound]))


def _verdict(check: pa.Check, obj: pd.Series | pd.DataFrame) -> bool | np.ndarray:
    """Apply ``check`` as Pandera's pandas backend does, before any failure-case bookkeeping.

    Returns:
        The check's boolean result when it returns a scalar, else the index labels of the failing rows.
    """
    # As Check.__call__ does: built-in checks dispatch on the data type, so take the current dispatcher.
    function_name = getattr(check._check_fn, "__name__", None)  # noqa: SLF001
    if function_name is not None and check.is_builtin_check(function_name):
        check._check_fn = check.get_builtin_check_fn(function_name)  # noqa: SLF001
    backend = check.get_backend(obj)(check)
    checked = backend.preprocess(obj, None)
    try:
        output = backend.apply(checked)
        if isinstance(output, bool | np.bool_):
            return bool(output)
        if not isinstance(output, pd.Series) or not output.index.equals(checked.index):
            returned = type(output).__name__
            raise _PandasRoute(f"check {check.name!r} returned {returned}, not an aligned Series")
        passed = output.to_numpy(dtype=bool)
    except _PandasRoute:
        raise
    except Exception as error:  # noqa: BLE001 - Pandera reports it as a failure case, as does the pandas route
        raise _PandasRoute(f"check {check.name!r} raised {error!r}") from error
    return checked.index.to_numpy()[~passed]


class _Replay:
    """Stand-in check function returning verdicts computed on the whole table (by column; None = frame)."""

    def __init__(self, verdicts: dict[Hashable, bool | np.ndarray]):
        self.verdicts = verdicts

    def __call__(self, obj: pd.Series | pd.DataFrame) -> bool | pd.Series:
        verdict = self.verdicts[obj.name if isinstance(obj, pd.Series) else None]
        if isinstance(verdict, bool):
            return verdict
        return pd.Series(~obj.index.isin(verdict), index=obj.index)


def _replay(check: pa.Check, verdicts: dict[Hashable, bool | np.ndarray]) -> pa.Check:
    """A check named and configured like ``check`` whose outcome is ``verdicts``."""
    return pa.Check(
        _Replay(verdicts), name=check.name, error=check.error, ignore_na=check.ignore_na,
        n_failure_cases=check.n_failure_cases, raise_warning=check.raise_warning,
    )


class _SqlRoute:
    """One validation of one table by the SQL route (see the module docstring)."""

    def __init__(self, conn: duckdb.DuckDBPyConnection, name: str, model: type[pa.DataFrameModel]):
        self.conn, self.name, self.model = conn, name, model
        self.schema = model.to_schema()
        # Validation registers Pandera's pandas backends (and built-in checks for pandas types); so must we.
        type(self.schema).register_default_backends(pd.DataFrame)
        reason = _unsupported_features(self.schema)
        if reason:
            raise _PandasRoute(reason)
        self.types = _column_types(conn, name)
        self.targets = _match_columns(self.schema, self.types)
        self.suspects: list[np.ndarray] = []
        self.suspicious = False
        self.column_verdicts: dict[tuple[Hashable, int], dict[Hashable, bool | np.ndarray]] = {}
        self.frame_verdicts: dict[int, bool | np.ndarray] = {}
        self.nulls: dict[str, int] = {}
        self.last_rowid: int | None = None
        self.loaded: dict[str, pd.Series] = {}
        self.rows = 0

    def run(self, *, sample_rows: int) -> TableValidation:
        """Judge the table; load and re-validate suspect rows only if something failed."""
        self._scan()
        # Dataframe-level checks first: the columns they load then serve the column checks too.
        self._frame_checks()
        for target in self.targets:
            self._column_checks(target)
        if not self.suspicious:
            return TableValidation(True, self.rows, pd.DataFrame(), pd.DataFrame(), "sql")
        rowids = np.unique(np.concatenate(self.suspects)) if self.suspects else np.empty(0, dtype=np.int64)
        frame = _load(self.conn, self.name, list(self.types), rowids=rowids)
        report = _judge(self._replay_schema(), frame, rows=self.rows, route="sql", sample_rows=sample_rows)
        return self._by_position(report)

    def _by_position(self, report: TableValidation) -> TableValidation:
        """Name rows by position in the table, as the IO manager's frame does, rather than by row id.

        They differ only in a table whose rows were updated or deleted in place; the IO manager rewrites
        tables whole, so this is the identity there, and costs one look at the row ids otherwise.
        """
        if report.passed or self.last_rowid is None or self.last_rowid == self.rows - 1:
            return report
        rowids = np.sort(self.conn.execute(f"SELECT rowid FROM {self.name}").fetchnumpy()["rowid"])

        def position(rowid):
            return rowid if pd.isna(rowid) else int(np.searchsorted(rowids, int(rowid)))

        cases = report.failure_cases.assign(index=report.failure_cases["index"].map(position))
        rows = report.failing_rows.set_axis([position(r) for r in report.failing_rows.index])
        return TableValidation(report.passed, report.rows, cases, rows, report.route, report.note)

    def _rowids(self, condition: str, params: Sequence = ()) -> np.ndarray:
        """Row ids of the rows meeting a SQL condition."""
        found = self.conn.execute(f"SELECT rowid FROM {self.name} WHERE {condition}", list(params))
        return found.fetchnumpy()["rowid"].astype(np.int64)

    def _flag(self, rowids: np.ndarray | None = None) -> None:
        """Record that Pandera must judge, and which rows it must see."""
        self.suspicious = True
        if rowids is not None and len(rowids):
            self.suspects.append(np.asarray(rowids, dtype=np.int64))

    def _scan(self) -> None:
        """One pass: row count, nulls, numeric built-in failures and distinct key hashes."""
        select, params, labels = ["count(*)", "max(rowid)"], [], [("rows",), ("last",)]
        for target in self.targets:
            select.append(f"count(*) FILTER (WHERE {target.null()})")
            labels.append(("nulls", target))
            for index, check in self._sql_checks(target):
                condition, bound = _comparison(check, target.value())
                select.append(f"count(*) FILTER (WHERE {target.value()} IS NOT NULL AND NOT ({condition}))")
                params.extend(bound)
                labels.append(("check", target, index, check, condition, bound))
        for key_set in self._key_sets():
            select.append(f"count(DISTINCT hash({', '.join(t.key_value() for t in key_set)}))")
            labels.append(("keys", key_set))
        counts = self.conn.execute(f"SELECT {', '.join(select)} FROM {self.name}", params).fetchall()[0]
        self.rows, self.last_rowid = int(counts[0]), counts[1]
        for label, count in zip(labels[2:], counts[2:], strict=True):
            kind, target = label[0], label[1]
            if kind == "nulls":
                self.nulls[target.name] = int(count)
                if count and target.dtype in _NULL_INTOLERANT:
                    raise _PandasRoute(f"column {target.name!r} ({target.dtype}) holds nulls")
                if count and not target.spec.nullable:
                    self._flag(self._rowids(target.null()))
            elif kind == "check" and count:
                _, _, _, _, condition, bound = label
                self._flag(self._rowids(f"{target.value()} IS NOT NULL AND NOT ({condition})", bound))
            elif kind == "keys" and count < self.rows:
                # Equal keys have equal hashes, so no duplicate escapes; a rare collision only costs a look.
                partition = ", ".join(t.key_value() for t in target)
                self._flag(self.conn.execute(
                    f"SELECT rowid FROM {self.name} QUALIFY count(*) OVER (PARTITION BY {partition}) > 1"
                ).fetchnumpy()["rowid"].astype(np.int64))

    def _sql_checks(self, target: _Target) -> list[tuple[int, pa.Check]]:
        """The column's checks computed in the SQL scan: numeric built-in comparisons on numeric columns."""
        if target.dtype not in _NUMERIC_DTYPES or target.duck_type not in (_INT64_SAFE | {"DOUBLE"}):
            return []
        return [
            (index, check) for index, check in enumerate(target.spec.checks)
            if _builtin(check) in {*_COMPARISONS, "in_range"} and check.ignore_na
            and _comparison(check, target.value()) is not None
        ]

    def _key_sets(self) -> list[list[_Target]]:
        """Column sets that must be unique: each ``unique`` column, and the model's ``unique`` lists."""
        by_name = {target.name: target for target in self.targets}
        sets = [[target] for target in self.targets if target.spec.unique]
        unique = self.schema.unique or []
        for names in ([unique] if unique and isinstance(unique[0], str) else unique):
            if all(name in by_name for name in names):
                sets.append([by_name[name] for name in names])
        for key_set in sets:
            if any(target.is_list for target in key_set):
                raise _PandasRoute("unique list column")
        return sets

    def _coerced(self, target: _Target, series: pd.Series) -> pd.Series:
        """Coerce like Pandera does before running checks."""
        if not (self.schema.coerce or target.spec.coerce) or target.spec.dtype is None:
            return series.rename(target.name)
        try:
            return target.spec.coerce_dtype(series.rename(target.name))
        except Exception as error:  # noqa: BLE001 - Pandera would report coercion cases; leave that to it
            raise _PandasRoute(f"column {target.name!r} does not coerce: {error!r}") from error

    def _columns(self, targets: Sequence[_Target]) -> pd.DataFrame:
        """Whole columns, loaded (in one query) and coerced as Pandera sees them; cached across checks."""
        missing = [target for target in targets if target.name not in self.loaded]
        if missing:
            arrow = [t.name for t in missing if t.is_list and not self.nulls.get(t.name)]
            frame = _load(self.conn, self.name, [t.name for t in missing], arrow_columns=arrow)
            for target in missing:
                self.loaded[target.name] = self._coerced(target, frame[target.name])
        return pd.DataFrame({target.name: self.loaded[target.name] for target in targets}, copy=False)

    @staticmethod
    def _per_value(target: _Target, check: pa.Check) -> bool:
        """Whether a check's verdict is per value, so that it may run on the column's distinct values.

        Signed zeros are one DuckDB group but two pandas values, hence never for DOUBLE columns.
        """
        return (_is_row_local(check) or check.determined_by_unique) and not target.is_double

    def _column_checks(self, target: _Target) -> None:
        """Judge the column checks the scan did not: on distinct values if few, else on the whole column."""
        in_scan = {index for index, _ in self._sql_checks(target)}
        pending = [(i, check) for i, check in enumerate(target.spec.checks) if i not in in_scan]
        few_values = any(self._per_value(target, check) for _, check in pending) and self._few_values(target)
        distinct_values = None
        for index, check in pending:
            if self._per_value(target, check) and few_values:
                if distinct_values is None:
                    distinct_values = self._distinct(target)
                values, first_rows = distinct_values
                verdict = _verdict(check, values)
                if not isinstance(verdict, bool):
                    verdict = self._rows_with_values(target, first_rows.loc[verdict])
            else:
                verdict = _verdict(check, self._columns([target])[target.name])
            failed = verdict is False or (not isinstance(verdict, bool) and len(verdict) > 0)
            if failed:
                self._flag(None if isinstance(verdict, bool) else verdict)
            if not _is_row_local(check):
                self.column_verdicts.setdefault((target.key, index), {})[target.name] = verdict

    def _few_values(self, target: _Target) -> bool:
        """Whether checking distinct values beats checking the column: always, unless it is loaded already.

        A column loaded for a dataframe-level check is checked whole unless grouping shrinks it fourfold.
        """
        if target.name not in self.loaded:
            return True
        column = quote_identifier(target.name)
        estimate = self.conn.execute(f"SELECT approx_count_distinct({column}) FROM {self.name}").fetchall()
        return estimate[0][0] * 4 <= self.rows

    def _distinct(self, target: _Target) -> tuple[pd.Series, pd.Series]:
        """The column's distinct values (coerced, indexed 0..n-1) and the first row id holding each."""
        relation = self.conn.sql(
            f"SELECT {quote_identifier(target.name)} AS value, min(rowid) AS first_row FROM {self.name} GROUP BY ALL"
        )
        frame = _io_manager_types(relation.df(), [str(t) for t in relation.dtypes])
        return self._coerced(target, frame["value"]), frame["first_row"]

    def _rows_with_values(self, target: _Target, first_rows: pd.Series) -> np.ndarray:
        """Every row whose value equals that of one of ``first_rows`` (exactly DuckDB's grouping)."""
        if not len(first_rows):
            return np.empty(0, dtype=np.int64)
        column = quote_identifier(target.name)
        found = self.conn.execute(
            f"SELECT t.rowid FROM {self.name} AS t SEMI JOIN (SELECT {column} AS v FROM {self.name} "
            f"WHERE rowid IN (SELECT unnest(?::BIGINT[]))) AS f ON t.{column} IS NOT DISTINCT FROM f.v",
            [[int(r) for r in first_rows]],
        ).fetchnumpy()
        return found["rowid"].astype(np.int64)

    def _frame_checks(self) -> None:
        """Judge each dataframe-level check on the columns it reads."""
        declared = getattr(self.model, CHECK_COLUMNS_ATTRIBUTE, {}) or {}
        by_name = {target.name: target for target in self.targets}
        for index, check in enumerate(self.schema.checks):
            names = declared.get(check.name, list(by_name))
            if any(name not in by_name for name in names):
                raise _PandasRoute(f"check {check.name!r} reads columns missing from the table")
            ordered = [name for name in by_name if name in set(names)] or list(by_name)
            verdict = _verdict(check, self._columns([by_name[name] for name in ordered]))
            self.frame_verdicts[index] = verdict
            if verdict is False or (not isinstance(verdict, bool) and len(verdict) > 0):
                self._flag(None if isinstance(verdict, bool) else verdict)

    def _replay_schema(self) -> pa.DataFrameSchema:
        """The model, each check that is not row-local replaced by the replay of its whole-table verdict."""
        replay = copy.copy(self.schema)
        columns = {}
        for key, spec in self.schema.columns.items():
            checks = [
                _replay(check, self.column_verdicts[(key, index)]) if (key, index) in self.column_verdicts
                else check
                for index, check in enumerate(spec.checks)
            ]
            columns[key] = spec.set_checks(checks)
        replay.columns = columns
        replay.checks = [_replay(check, {None: self.frame_verdicts[index]})
                         for index, check in enumerate(self.schema.checks)]
        return replay
