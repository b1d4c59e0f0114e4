"""The artifact format: round trip, content-digest versions, refusals, and the scoring contract's formats."""

from __future__ import annotations

import json
import os
import pickle

import numpy as np
import pandas as pd
import pytest

from pipeline.customers import clustering
from pipeline.models import artifacts, catalog, score


class MemoryStore:
    """The object-store interface artifacts need, in a dict."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def put_bytes(self, key: str, data: bytes) -> str:
        self.objects[key] = bytes(data)
        return self.uri(key)

    def get_bytes(self, key: str) -> bytes:
        if key not in self.objects:
            raise FileNotFoundError(key)
        return self.objects[key]

    def uri(self, key: str) -> str:
        return f"memory://{key}"


def rfm_frame(n: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "customer_id": np.arange(10_000, 10_000 + n, dtype="int64"),
            "recency_days": rng.integers(1, 370, n),
            "frequency": rng.geometric(0.3, n),
            "monetary": np.round(rng.lognormal(6, 1.2, n), 2),
        }
    )


@pytest.fixture(scope="module")
def rfm() -> pd.DataFrame:
    return rfm_frame()


@pytest.fixture(scope="module")
def fit(rfm) -> clustering.ClusterFit:
    return clustering.fit_cluster_models(rfm, k=4, random_state=0)


def saved_clusters(store, fit, rfm, random_state=0) -> artifacts.SavedModel:
    return catalog.save_clusters(store, fit, rfm, random_state=random_state)


def test_fit_cluster_models_returns_the_tables_of_fit_clusters(rfm, fit):
    clusters, profiles = clustering.fit_clusters(rfm, k=4, random_state=0)
    pd.testing.assert_frame_equal(fit.clusters, clusters, check_exact=True)
    pd.testing.assert_frame_equal(fit.profiles, profiles, check_exact=True)


def test_round_trip_reproduces_the_clusters_and_writes_the_layout(rfm, fit):
    store = MemoryStore()
    saved = saved_clusters(store, fit, rfm)
    folder = f"customer_clusters/{saved.version}"
    assert set(store.objects) == {
        f"{folder}/model.pkl", f"{folder}/manifest.json", "customer_clusters/latest.json"
    }
    latest = json.loads(store.objects["customer_clusters/latest.json"])
    assert latest == {
        "model": "customer_clusters", "version": saved.version, "manifest": f"{folder}/manifest.json"
    }

    manifest = json.loads(store.objects[f"{folder}/manifest.json"])
    model_bytes = store.objects[f"{folder}/model.pkl"]
    assert manifest["sha256"] == artifacts.sha256(model_bytes) and saved.version == manifest["sha256"][:16]
    assert manifest["features"] == ["customer_id", "recency_days", "frequency", "monetary"]
    assert manifest["training_data"]["rows"] == len(rfm)
    assert manifest["training_data"]["version"] == artifacts.frame_digest(rfm[catalog.CLUSTER_FEATURES])
    assert set(manifest["libraries"]) >= {"scikit-learn", "numpy", "pandas", "scipy"}
    assert manifest["parameters"]["k"] == 4
    assert manifest["metrics"]["kmeans_inertia"] == pytest.approx(fit.model.kmeans.inertia_)

    loaded = artifacts.load_model(store, "customer_clusters")
    assert (loaded.name, loaded.version) == ("customer_clusters", saved.version)
    pd.testing.assert_frame_equal(catalog.score(loaded, rfm), fit.clusters, check_exact=True)


def test_same_data_same_version_and_a_changed_model_a_new_one(rfm, fit):
    store = MemoryStore()
    first = saved_clusters(store, fit, rfm)
    refit = clustering.fit_cluster_models(rfm.copy(), k=4, random_state=0)
    again = saved_clusters(store, refit, rfm)
    assert again.version == first.version
    # Saving an identical model keeps the first manifest (and its created_at).
    assert again.manifest == first.manifest
    other_k = saved_clusters(store, clustering.fit_cluster_models(rfm, k=3, random_state=0), rfm)
    other_data = rfm.assign(monetary=rfm["monetary"] * 1.1)
    other_fit = saved_clusters(
        store, clustering.fit_cluster_models(other_data, k=4, random_state=0), other_data
    )
    assert len({first.version, other_k.version, other_fit.version}) == 3
    # latest.json follows the last save; older versions stay loadable.
    assert artifacts.latest_version(store, "customer_clusters") == other_fit.version
    assert artifacts.load_model(store, "customer_clusters", first.version).version == first.version


def test_tampered_model_file_is_refused(rfm, fit, tmp_path):
    store = MemoryStore()
    saved = saved_clusters(store, fit, rfm)
    key = f"customer_clusters/{saved.version}/model.pkl"
    original = store.objects[key]
    store.objects[key] = original[:-20] + bytes(b ^ 0xFF for b in original[-20:])
    with pytest.raises(artifacts.DigestMismatchError, match="modified or corrupted"):
        artifacts.load_model(store, "customer_clusters")
    with pytest.raises(artifacts.DigestMismatchError):
        artifacts.download_model(store, "customer_clusters", tmp_path / "model")
    assert not (tmp_path / "model").exists()

    store.objects[key] = original
    folder = artifacts.download_model(store, "customer_clusters", tmp_path / "model")
    (folder / "model.pkl").write_bytes(original + b"\x00")
    with pytest.raises(artifacts.DigestMismatchError):
        score.model_fn(str(folder))


def test_library_version_mismatch_is_refused_with_both_versions(rfm, fit):
    store = MemoryStore()
    saved = saved_clusters(store, fit, rfm)
    key = f"customer_clusters/{saved.version}/manifest.json"
    manifest = json.loads(store.objects[key])
    manifest["libraries"]["scikit-learn"] = "0.24.2"
    store.objects[key] = json.dumps(manifest).encode()
    installed = artifacts.library_versions()["scikit-learn"]
    expected = rf"scikit-learn 0\.24\.2 \(this process has {installed}\)"
    with pytest.raises(artifacts.LibraryVersionError, match=expected):
        artifacts.load_model(store, "customer_clusters")


def test_pickles_naming_other_modules_are_refused():
    assert artifacts.deserialize(artifacts.serialize({"a": np.arange(3)}))["a"].tolist() == [0, 1, 2]
    with pytest.raises(artifacts.ArtifactError, match="os"):
        artifacts.deserialize(pickle.dumps(os.getcwd))
    with pytest.raises(artifacts.ArtifactError, match="builtins.eval"):
        artifacts.deserialize(pickle.dumps(eval))


def test_missing_model_is_a_file_not_found():
    with pytest.raises(FileNotFoundError):
        artifacts.load_model(MemoryStore(), "customer_clusters")


FRAME = pd.DataFrame(
    {
        "customer_id": np.array([12346, 12347, 18287], dtype="int64"),
        "monetary": [0.1 + 0.2, 1 / 3, 77183.6],
        "std_gap_days": [np.nan, 2.5e-17, 1e300],
        "is_uk": [True, False, True],
    }
)


@pytest.mark.parametrize("content_type", [score.CSV, score.JSON, score.PARQUET, "text/csv; charset=utf-8"])
def test_formats_round_trip_floats_exactly(content_type):
    back = score.input_fn(score.output_fn(FRAME, content_type), content_type)
    pd.testing.assert_frame_equal(back, FRAME, check_exact=True)


def test_json_split_orientation_and_unknown_content_type():
    body = json.dumps({"columns": ["customer_id"], "data": [[1], [2]]})
    assert score.input_fn(body, "application/json")["customer_id"].tolist() == [1, 2]
    with pytest.raises(ValueError, match="unsupported content type"):
        score.input_fn(b"x", "application/x-npy")


def test_scoring_names_missing_columns(rfm, fit):
    store = MemoryStore()
    saved_clusters(store, fit, rfm)
    loaded = artifacts.load_model(store, "customer_clusters")
    with pytest.raises(ValueError, match=r"needs input columns \['monetary'\]"):
        score.predict_fn(rfm.drop(columns=["monetary"]), loaded)
