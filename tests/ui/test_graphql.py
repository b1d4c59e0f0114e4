"""Drive the running UI through its GraphQL API: list the assets, launch a materialization, see it succeed."""

import time

import duckdb

from assets.definitions import build_definitions

ASSET_NODES = """
{
  assetNodes {
    assetKey { path }
    groupName
    description
    kinds
    owners { __typename ... on TeamAssetOwner { team } ... on UserAssetOwner { email } }
    metadataEntries { label }
    assetChecksOrError { ... on AssetChecks { checks { name description } } }
  }
}
"""

LAUNCH = """
mutation Launch($params: ExecutionParams!) {
  launchPipelineExecution(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on InvalidSubsetError { message }
  }
}
"""

RUN_STATUS = "query Run($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }"

INGEST_AND_STAGING = [
    ["raw", "raw_invoices"],
    ["raw", "source_files"],
    ["staging", "cleaned_transactions"],
    ["staging", "rejected_rows"],
]
TINY_SOURCE = {"resources": {"invoice_source": {"config": {"synthetic_lines": 2000}}}}
RUN_TIMEOUT_S = 60


def test_ui_lists_every_asset_with_description_owner_kinds_and_group(dagster_ui):
    nodes = dagster_ui.graphql(ASSET_NODES)["assetNodes"]
    listed = {"/".join(node["assetKey"]["path"]) for node in nodes}
    expected = {
        key.to_user_string() for key in build_definitions().resolve_asset_graph().get_all_asset_keys()
    }
    assert listed == expected
    assert {"marts/customer_360", "marts/slow_movers", "reports/customer_intelligence"} <= listed
    for node in nodes:
        name = "/".join(node["assetKey"]["path"])
        assert node["description"], name
        assert node["groupName"] and node["groupName"] != "default", name
        assert node["kinds"], name
        assert node["owners"], name
        checks = node["assetChecksOrError"].get("checks", [])
        assert all(check["description"] for check in checks), name
    tables = [node for node in nodes if node["assetKey"]["path"][0] in ("staging", "analytics")]
    undocumented = [
        "/".join(node["assetKey"]["path"])
        for node in tables
        if "dagster/column_schema" not in {entry["label"] for entry in node["metadataEntries"]}
    ]
    assert undocumented == []


def test_ui_launches_a_materialization_that_succeeds(dagster_ui):
    location = dagster_ui.graphql("{ workspaceOrError { ... on Workspace { locationEntries { name } } } }")
    params = {
        "selector": {
            "repositoryLocationName": location["workspaceOrError"]["locationEntries"][0]["name"],
            "repositoryName": "__repository__",
            "pipelineName": "__ASSET_JOB",
            "assetSelection": [{"path": path} for path in INGEST_AND_STAGING],
            "assetCheckSelection": [],
        },
        "runConfigData": TINY_SOURCE,
        "mode": "default",
        "executionMetadata": {"tags": [{"key": "launched_by", "value": "tests/ui"}]},
    }
    launched = dagster_ui.graphql(LAUNCH, {"params": params})["launchPipelineExecution"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    run_id = launched["run"]["runId"]

    deadline = time.monotonic() + RUN_TIMEOUT_S
    status = None
    while time.monotonic() < deadline:
        status = dagster_ui.graphql(RUN_STATUS, {"id": run_id})["runOrError"]["status"]
        if status in ("SUCCESS", "FAILURE", "CANCELED"):
            break
        time.sleep(1)
    assert status == "SUCCESS", f"run {run_id} ended {status}:\n{dagster_ui.log.read_text()[-3000:]}"

    with duckdb.connect(str(dagster_ui.warehouse), read_only=True) as conn:
        raw, cleaned, rejected = conn.execute(
            "SELECT (SELECT count(*) FROM raw.raw_invoices), "
            "(SELECT count(*) FROM staging.cleaned_transactions), "
            "(SELECT count(*) FROM staging.rejected_rows)"
        ).fetchall()[0]
        source = conn.execute("SELECT source_file FROM raw.source_files").fetchall()
    assert raw == cleaned + rejected > 0
    assert source == [("synthetic://online-retail-ii?lines=2000&seed=42",)]
