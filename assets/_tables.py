"""One decorator for every warehouse-table asset, so keys, descriptions, comments and column schemas agree."""

import inspect
from collections.abc import Callable, Iterable, Mapping

import dagster as dg
import pandas as pd

from assets._metadata import column_schema


def warehouse_table(
    key: dg.AssetKey,
    model,
    *,
    group: str,
    ins: Mapping[str, dg.AssetIn] | None = None,
    kinds: Iterable[str] = ("duckdb", "pandas"),
    owners: Iterable[str] = ("team:analytics",),
) -> Callable:
    """Declare an asset stored as the DuckDB table ``key``, described by its docstring's first line.

    Args:
        key: ``[schema, table]`` asset key, which is also the table name.
        model: The Pandera model of the table (its column descriptions become the column schema).
        group: Asset group.
        ins: Upstream tables by parameter name (see ``assets.keys.ins``).
        kinds: Kinds shown in the UI.
        owners: Owning teams.

    Returns:
        A decorator turning the function into a Dagster asset.
    """

    def decorator(fn: Callable) -> dg.AssetsDefinition:
        description = (inspect.getdoc(fn) or "").splitlines()[0]
        return dg.asset(
            key=key,
            description=description,
            group_name=group,
            ins=dict(ins or {}),
            kinds=set(kinds),
            owners=list(owners),
            metadata={"table_comment": description, "dagster/column_schema": column_schema(model)},
        )(fn)

    return decorator


def table_out(key: dg.AssetKey, model, description: str, *, kinds: Iterable[str] = ("duckdb", "pandas"),
              owners: Iterable[str] = ("team:analytics",)) -> dg.AssetOut:
    """An ``AssetOut`` for a multi-asset table, with the same metadata as :func:`warehouse_table`."""
    return dg.AssetOut(
        key=key,
        description=description,
        kinds=set(kinds),
        owners=list(owners),
        metadata={"table_comment": description, "dagster/column_schema": column_schema(model)},
    )


def cleaned_input(*columns: str, name: str = "cleaned") -> dict[str, dg.AssetIn]:
    """The cleaned transactions as input ``name``, loading only ``columns`` (DuckDB projects them).

    Every consumer of ``staging.cleaned_transactions`` declares the columns it reads: the lineage columns
    (source file, sheet, row) are the widest and most assets never need them.
    """
    from assets import keys

    return {name: dg.AssetIn(key=keys.CLEANED_TRANSACTIONS, metadata={"columns": list(columns)})}


def empty_table(model) -> pd.DataFrame:
    """A table with no rows and the columns and dtypes of a Pandera model.

    Text columns are pandas strings, so DuckDB stores them as VARCHAR (an empty object column would become
    DuckDB's NULL type).
    """
    columns = model.to_schema().columns
    return pd.DataFrame(
        {
            name: pd.Series(dtype="string" if str(column.dtype) == "str" else column.dtype.type)
            for name, column in columns.items()
        }
    )
