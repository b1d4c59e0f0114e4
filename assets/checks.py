"""The one factory that turns a Pandera model into a blocking Dagster asset check.

Every asset in the project gets its schema check from :func:`schema_check`; other checks are small named
functions beside their assets.
"""


import dagster as dg
import pandas as pd
import pandera.errors
import pandera.pandas as pa

SAMPLE_ROWS = 20


def validate_frame(frame: pd.DataFrame, model: type[pa.DataFrameModel]) -> dg.AssetCheckResult:
    """Validate ``frame`` lazily against ``model`` and summarize every failure.

    Args:
        frame: The table to validate.
        model: The Pandera model it must satisfy.

    Returns:
        A passed result with the row count, or a failed one whose metadata holds the number of failure cases,
        the failing checks and columns, and a sample of failure cases with the offending rows.
    """
    try:
        model.validate(frame, lazy=True)
    except pandera.errors.SchemaErrors as err:
        cases = err.failure_cases
        rows = cases["index"].dropna().unique()[:SAMPLE_ROWS] if "index" in cases else []
        sample_rows = frame.loc[frame.index.intersection(rows)] if len(rows) else frame.head(0)
        return dg.AssetCheckResult(
            passed=False,
            severity=dg.AssetCheckSeverity.ERROR,
            metadata={
                "model": model.__name__,
                "failure_cases": len(cases),
                "failing_checks": dg.MetadataValue.json(
                    cases.groupby(["column", "check"], dropna=False).size().rename("cases").reset_index()
                    .astype({"column": str, "check": str}).to_dict(orient="records")
                ),
                "sample_failure_cases": dg.MetadataValue.md(
                    cases.head(SAMPLE_ROWS).astype(str).to_markdown(index=False)
                ),
                "sample_failing_rows": dg.MetadataValue.md(sample_rows.astype(str).to_markdown()),
            },
        )
    return dg.AssetCheckResult(passed=True, metadata={"model": model.__name__, "rows": len(frame)})


def schema_check(asset_key: dg.AssetKey | list[str], model: type[pa.DataFrameModel]) -> dg.AssetChecksDefinition:
    """Build the blocking ``matches_schema`` check of an asset.

    Args:
        asset_key: Key of the checked asset (its table is loaded through the IO manager).
        model: The Pandera model of the table.

    Returns:
        An asset check that fails, and so stops downstream assets, when the table breaks its model.
    """
    key = dg.AssetKey(asset_key) if isinstance(asset_key, list) else asset_key

    @dg.asset_check(
        asset=key,
        name="matches_schema",
        blocking=True,
        description=f"Validates the table against the Pandera model {model.__name__} (lazy; all failures reported).",
    )
    def _check(frame: pd.DataFrame) -> dg.AssetCheckResult:
        return validate_frame(frame, model)

    return _check
