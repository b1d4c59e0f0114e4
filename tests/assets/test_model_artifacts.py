"""Model artifacts saved by the run that built the warehouse: a fresh process reproduces the warehouse scores.

The session warehouse (``full_warehouse``) saves its models beside the DuckDB file (``<folder>/models``, see
``tests.assets.warehouse_build.resources_for``). Each model is copied into a folder of its own and scored by
``python -m pipeline.models.score`` in a new interpreter, on features exported from the warehouse.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import duckdb
import numpy as np
import pandas as pd
import pytest

from assets import keys
from pipeline.common import lines as sales_lines
from pipeline.customers import clustering, prediction
from pipeline.models import artifacts, catalog
from resources.models import ModelStore, default_location
from tests.conftest import REPO_ROOT


@pytest.fixture(scope="module")
def store(full_warehouse):
    return ModelStore(location=str(Path(full_warehouse.database).parent / "models")).store()


def table(database: str, name: str) -> pd.DataFrame:
    with duckdb.connect(database, read_only=True) as conn:
        return conn.sql(f"SELECT * FROM analytics.{name}").df()  # noqa: S608 (fixed table names)


def score_in_fresh_process(
    store, name: str, features: pd.DataFrame, folder: Path
) -> tuple[pd.DataFrame, dict]:
    """Download ``name``, write the features, run the CLI in a new interpreter and read its scores."""
    model_dir = artifacts.download_model(store, name, folder / name)
    source, target = folder / f"{name}_features.parquet", folder / f"{name}_scores.parquet"
    features.to_parquet(source, index=False)
    done = subprocess.run(
        [sys.executable, "-m", "pipeline.models.score", "--model-dir", str(model_dir), "--input", str(source),
         "--output", str(target)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300, check=False,
    )
    assert done.returncode == 0, done.stderr
    return pd.read_parquet(target), json.loads(done.stdout.strip().splitlines()[-1])


def materialization_metadata(result: dg.ExecuteInProcessResult, key: dg.AssetKey) -> dict:
    (event,) = [e for e in result.get_asset_materialization_events() if e.asset_key == key]
    return {name: value.value for name, value in event.materialization.metadata.items()}


@pytest.mark.parametrize(
    ("name", "key"),
    [(catalog.CLUSTERS, keys.CUSTOMER_CLUSTERS), (catalog.PREDICTIONS, keys.CUSTOMER_PREDICTIONS),
     (catalog.RECOMMENDATIONS, keys.RECOMMENDATIONS)],
)
def test_the_run_saved_each_model_and_its_metadata_names_it(full_warehouse, store, name, key):
    version = artifacts.latest_version(store, name)
    metadata = materialization_metadata(full_warehouse.result, key)
    assert metadata["model_version"] == version
    assert metadata["model_uri"] == store.uri(f"{name}/{version}")
    manifest = artifacts.load_model(store, name).manifest
    assert manifest["features"] == {catalog.CLUSTERS: catalog.CLUSTER_FEATURES,
                                    catalog.PREDICTIONS: catalog.PREDICTION_FEATURES,
                                    catalog.RECOMMENDATIONS: catalog.RECOMMENDER_FEATURES}[name]
    assert manifest["training_data"]["rows"] > 0


def test_fresh_process_reproduces_customer_clusters(full_warehouse, store, tmp_path):
    rfm = table(full_warehouse.database, "rfm")
    expected = table(full_warehouse.database, "customer_clusters")
    features = rfm[catalog.CLUSTER_FEATURES]
    scores, report = score_in_fresh_process(store, catalog.CLUSTERS, features, tmp_path)
    assert report["rows"] == len(expected)
    merged = expected.merge(scores, on="customer_id", suffixes=("", "_scored"), validate="1:1")
    assert len(merged) == len(expected)
    for column in ("kmeans_cluster", "gmm_cluster"):
        np.testing.assert_array_equal(merged[f"{column}_scored"], merged[column])
    np.testing.assert_allclose(merged["gmm_probability_scored"], merged["gmm_probability"],
                               rtol=0, atol=1e-12)


def test_fresh_process_reproduces_customer_predictions(full_warehouse, store, tmp_path):
    manifest = artifacts.load_model(store, catalog.PREDICTIONS).manifest
    as_of = pd.Timestamp(manifest["training_data"]["reference_date"])
    with duckdb.connect(full_warehouse.database, read_only=True) as conn:
        features = prediction.build_features(
            *sales_lines.warehouse_lines(conn), as_of=as_of,
            recent_days=manifest["parameters"]["horizon_days"],
        )
    expected = table(full_warehouse.database, "customer_predictions")
    scores, _ = score_in_fresh_process(store, catalog.PREDICTIONS, features, tmp_path)
    merged = expected.merge(scores, on="customer_id", suffixes=("", "_scored"), validate="1:1")
    assert len(merged) == len(expected) == len(scores)
    for column in ("purchase_probability_90d", "predicted_revenue_90d", "expected_value"):
        np.testing.assert_allclose(merged[f"{column}_scored"], merged[column], rtol=1e-12, atol=1e-12)


def test_fresh_process_reproduces_recommendations_for_a_sample(full_warehouse, store, tmp_path):
    expected = table(full_warehouse.database, "recommendations")
    customers = np.sort(expected["customer_id"].unique())
    sample = np.random.default_rng(7).choice(customers, size=min(150, len(customers)), replace=False)
    scores, _ = score_in_fresh_process(store, catalog.RECOMMENDATIONS, pd.DataFrame({"customer_id": sample}),
                                       tmp_path)
    expected = expected[expected["customer_id"].isin(sample)]
    order = ["setting", "customer_id", "rank"]
    expected = expected.sort_values(order, ignore_index=True)
    scores = scores.sort_values(order, ignore_index=True)
    columns = ["setting", "customer_id", "rank", "stock_code", "source", "description", "reason"]
    pd.testing.assert_frame_equal(scores[columns], expected[columns], check_dtype=False)
    np.testing.assert_allclose(scores["score"], expected["score"], rtol=0, atol=1e-9)


def test_cli_refuses_a_tampered_model(full_warehouse, store, tmp_path):
    model_dir = artifacts.download_model(store, catalog.CLUSTERS, tmp_path / "model")
    data = bytearray((model_dir / "model.pkl").read_bytes())
    data[len(data) // 2] ^= 0x01
    (model_dir / "model.pkl").write_bytes(bytes(data))
    features = tmp_path / "features.csv"
    table(full_warehouse.database, "rfm")[catalog.CLUSTER_FEATURES].head(5).to_csv(features, index=False)
    done = subprocess.run(
        [sys.executable, "-m", "pipeline.models.score", "--model-dir", str(model_dir),
         "--input", str(features),
         "--output", str(tmp_path / "scores.csv")],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 2
    assert "modified or corrupted" in done.stderr
    assert not (tmp_path / "scores.csv").exists()


def test_default_location_follows_the_warehouse(tmp_path):
    assert default_location(str(tmp_path / "warehouse" / "retail.duckdb")) == str(tmp_path / "models")
    assert default_location(str(REPO_ROOT / "data" / "warehouse" / "retail.duckdb")) == str(
        REPO_ROOT / "data" / "models"
    )
    assert default_location("md:retail") == str(REPO_ROOT / "data" / "models")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def moto_endpoint():
    """A moto S3 server on a free local port, for this module."""
    port = _free_port()
    server = subprocess.Popen(
        [str(Path(sys.executable).with_name("moto_server")), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            time.sleep(0.1)
    else:
        server.kill()
        pytest.fail("moto_server did not start")
    yield endpoint
    server.terminate()
    server.wait(timeout=10)


@pytest.fixture
def s3_store(moto_endpoint, monkeypatch):
    for name, value in {"AWS_ENDPOINT_URL": moto_endpoint, "AWS_ACCESS_KEY_ID": "testing",
                        "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    import boto3

    bucket = f"retail-models-{os.getpid()}"
    boto3.client("s3").create_bucket(Bucket=bucket)
    return ModelStore(location=f"s3://{bucket}/artifacts").store()


def test_refit_on_the_same_data_saves_the_same_version_through_s3(full_warehouse, store, s3_store):
    local = artifacts.load_model(store, catalog.CLUSTERS)
    parameters = local.manifest["parameters"]
    rfm = table(full_warehouse.database, "rfm")
    refit = clustering.fit_cluster_models(rfm, k=parameters["k"], random_state=parameters["random_state"],
                                          covariance_type=parameters["gmm_covariance_type"])
    saved = catalog.save_clusters(s3_store, refit, rfm, random_state=parameters["random_state"])
    assert saved.version == local.version
    assert saved.uri.startswith("s3://")
    assert saved.uri.endswith(f"/artifacts/{catalog.CLUSTERS}/{local.version}")
    assert s3_store.list_keys(catalog.CLUSTERS) == sorted(
        [f"{catalog.CLUSTERS}/latest.json", f"{catalog.CLUSTERS}/{local.version}/manifest.json",
         f"{catalog.CLUSTERS}/{local.version}/model.pkl"]
    )
    back = artifacts.load_model(s3_store, catalog.CLUSTERS)
    pd.testing.assert_frame_equal(catalog.score(back, rfm), catalog.score(local, rfm), check_exact=True)

    key = f"{catalog.CLUSTERS}/{local.version}/model.pkl"
    s3_store.put_bytes(key, s3_store.get_bytes(key) + b"\x00")
    with pytest.raises(artifacts.DigestMismatchError):
        artifacts.load_model(s3_store, catalog.CLUSTERS)
