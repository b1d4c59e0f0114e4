"""The one factory that turns a Pandera model into a blocking Dagster asset check.

Every asset in the project gets its schema check from :func:`schema_check`; other checks are small named
functions beside their assets. The validation itself (in DuckDB, with Pandera's verdict and failure cases)
lives in ``pipeline.warehouse.validation``.
"""


import dagster as dg
import duckdb
import pandas as pd
import pandera.pandas as pa

from assets._metadata import SKIPPED_REASON
from pipeline.common.sql import quote_identifier
from pipeline.warehouse import validation
from resources import Warehouse

SAMPLE_ROWS = validation.SAMPLE_ROWS


def check_result(
    report: validation.TableValidation, model: type[pa.DataFrameModel]
) -> dg.AssetCheckResult:
    """Turn a validation report into the check's result and metadata.

    Args:
        report: Outcome of validating the table.
        model: The Pandera model it was validated against.

    Returns:
        A passed result with the row count, or a failed one whose metadata holds the number of failure cases,
        the failing checks and columns, and a sample of failure cases with the offending rows.
    """
    if report.passed:
        return dg.AssetCheckResult(
            passed=True, metadata={"model": model.__name__, "rows": report.rows, "route": report.route}
        )
    cases = report.failure_cases
    return dg.AssetCheckResult(
        passed=False,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "model": model.__name__,
            "route": report.route,
            "failure_cases": len(cases),
            "failing_checks": dg.MetadataValue.json(
                cases.groupby(["column", "check"], dropna=False).size().rename("cases").reset_index()
                .astype({"column": str, "check": str}).to_dict(orient="records")
            ),
            "sample_failure_cases": dg.MetadataValue.md(
                cases.head(SAMPLE_ROWS).astype(str).to_markdown(index=False)
            ),
            "sample_failing_rows": dg.MetadataValue.md(report.failing_rows.astype(str).to_markdown()),
        },
    )


def validate_frame(frame: pd.DataFrame, model: type[pa.DataFrameModel]) -> dg.AssetCheckResult:
    """The result the schema check gives once ``frame`` is stored as a warehouse table.

    Args:
        frame: The table to validate.
        model: The Pandera model it must satisfy.

    Returns:
        The check result, from the same route as the asset check (an in-memory DuckDB holds the table).
    """
    with duckdb.connect() as conn:
        validation.store_frame(conn, frame, "main", "checked")
        report = validation.validate_table(conn, "main", "checked", model)
    return check_result(report, model)


def schema_check(
    asset_key: dg.AssetKey | list[str], model: type[pa.DataFrameModel]
) -> dg.AssetChecksDefinition:
    """Build the blocking ``matches_schema`` check of an asset.

    Args:
        asset_key: Key ``[schema, table]`` of the checked asset, which names its warehouse table.
        model: The Pandera model of the table.

    Returns:
        An asset check that fails, and so stops downstream assets, when the table breaks its model.
    """
    key = dg.AssetKey(asset_key) if isinstance(asset_key, list) else asset_key
    schema, table = (key.path[-2], key.path[-1]) if len(key.path) > 1 else ("public", key.path[-1])

    @dg.asset_check(
        asset=key,
        name="matches_schema",
        blocking=True,
        description=f"Validates the table against the Pandera model {model.__name__} (lazy; all failures "
        "reported; in DuckDB, loading into pandas only what SQL cannot judge).",
    )
    def _check(warehouse: Warehouse) -> dg.AssetCheckResult:
        with warehouse.connect() as conn:
            report = validation.validate_table(conn, schema, table, model)
        return check_result(report, model)

    return _check


def history_check(asset_key: dg.AssetKey, *, what: str) -> dg.AssetChecksDefinition:
    """Build the non-blocking ``has_enough_history`` check of a table that is stored empty on short data.

    A valid export spanning too few days still publishes every table; the ones that need a longer history
    (predictions, evaluations) are stored empty, with the reason in the ``skipped_reason`` metadata of
    their materialization. This check makes that visible: it fails with WARN severity when the table has
    no rows and repeats the reason.

    Args:
        asset_key: Key ``[schema, table]`` of the checked asset, which names its warehouse table.
        what: What the table holds, for the description (``"the purchase predictions"``).

    Returns:
        A WARN-severity asset check that passes when the table has rows.
    """
    schema, table = asset_key.path[-2], asset_key.path[-1]

    @dg.asset_check(
        asset=asset_key,
        name="has_enough_history",
        blocking=False,
        description=f"Warns when {what} could not be computed because the data spans too few days: the table "
        "is then empty and the reason is in its metadata.",
    )
    def _check(context: dg.AssetCheckExecutionContext, warehouse: Warehouse) -> dg.AssetCheckResult:
        with warehouse.connect() as conn:
            (rows,) = conn.execute(
                f"SELECT count(*) FROM {quote_identifier(schema)}.{quote_identifier(table)}"
            ).fetchone()
        if rows > 0:
            return dg.AssetCheckResult(passed=True, metadata={"rows": rows})
        event = context.instance.get_latest_materialization_event(asset_key)
        recorded = event.asset_materialization.metadata.get(SKIPPED_REASON) if event else None
        reason = recorded.value if recorded is not None else "the table is empty and no reason was recorded"
        return dg.AssetCheckResult(
            passed=False,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={"rows": rows, SKIPPED_REASON: reason},
        )

    return _check


#: A table's row count may move by this factor between two materializations before its check warns.
ROW_COUNT_RATIO_BOUNDS = (0.5, 2.0)


def row_count_verdict(
    previous: int | None, latest: int, bounds: tuple[float, float] = ROW_COUNT_RATIO_BOUNDS
) -> str | None:
    """Why a table's new row count is suspicious next to its previous one, or None when it is not.

    Args:
        previous: Rows at the previous materialization (None: there was none).
        latest: Rows now.
        bounds: Lowest and highest accepted ratio ``latest / previous``.

    Returns:
        A sentence naming both counts and the bounds, or None.
    """
    if previous is None:
        return None
    low, high = bounds
    if previous == 0:
        # From empty (a short history that grew) is never suspicious.
        return None
    ratio = latest / previous
    if low <= ratio <= high:
        return None
    return (f"{latest:,} rows after {previous:,} at the previous materialization (x{ratio:.2f}, outside "
            f"x{low:g}..x{high:g})")


def row_count_checks(asset_keys: list[dg.AssetKey]) -> dg.AssetChecksDefinition:
    """WARN-severity ``row_count_within_bounds`` checks of tables, in one step.

    Each compares the row count the IO manager recorded (``dagster/row_count``) at the latest
    materialization with the one before; a table that shrinks below half or more than doubles warns (a
    truncated export, a join gone wrong), never blocks.
    """
    specs = [
        dg.AssetCheckSpec(
            "row_count_within_bounds",
            asset=key,
            blocking=False,
            description="Warns when the row count moves outside x{:g}..x{:g} of the previous materialization."
            .format(*ROW_COUNT_RATIO_BOUNDS),
        )
        for key in asset_keys
    ]

    @dg.multi_asset_check(specs=specs, can_subset=True, name="row_count_within_bounds")
    def _check(context: dg.AssetCheckExecutionContext):
        selected = context.selected_asset_check_keys
        for check_key in sorted(selected, key=lambda key: key.asset_key.to_user_string()):
            records = context.instance.fetch_materializations(check_key.asset_key, limit=2).records
            counts = [
                record.asset_materialization.metadata.get("dagster/row_count")
                for record in records
                if record.asset_materialization is not None
            ]
            counts = [int(value.value) for value in counts if value is not None]
            latest = counts[0] if counts else 0
            previous = counts[1] if len(counts) > 1 else None
            problem = row_count_verdict(previous, latest)
            yield dg.AssetCheckResult(
                asset_key=check_key.asset_key,
                check_name=check_key.name,
                passed=problem is None,
                severity=dg.AssetCheckSeverity.WARN,
                metadata={"rows": latest, "previous_rows": previous if previous is not None else -1,
                          **({"problem": problem} if problem else {})},
            )

    return _check
