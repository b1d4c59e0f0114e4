"""The model artifact format: one folder per model version, its manifest, and checked save and load.

What belongs here: serialising a fitted model (a payload of scikit-learn, NumPy, SciPy and pandas objects,
plus the ``pipeline`` classes that hold them), its manifest, the content-digest version, writing and reading
artifacts through an object store, and the checks a load makes. Not here: what a payload holds for each
model and how it scores (``pipeline.models.score``), or where the store is (``resources.models``).

Layout under the store's location::

    <model>/<version>/model.pkl      pickle (protocol 5) of the payload
    <model>/<version>/manifest.json  see :func:`build_manifest`
    <model>/latest.json              {"model", "version", "manifest": "<model>/<version>/manifest.json"}

Versioning. ``version`` is the first 16 hex digits of the SHA-256 of ``model.pkl``: refitting on the same data
with the same settings gives the same bytes and hence the same version (saving it again only moves
``latest.json``); any change of the fitted state gives a new version. ``created_at`` and the metrics live in
the manifest, outside the digest.

Loading refuses an artifact whose ``model.pkl`` does not hash to the manifest's ``sha256`` (or whose version
is not that digest), one saved with other versions of scikit-learn, NumPy, SciPy or pandas (pickles of fitted
estimators are only supported by the versions that wrote them), and any pickle that names a module outside
:data:`ALLOWED_MODULES`.
"""

from __future__ import annotations

import hashlib
import io
import json
import pickle
import platform
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

FORMAT_VERSION = 1
MODEL_FILE = "model.pkl"
MANIFEST_FILE = "manifest.json"
LATEST_FILE = "latest.json"
#: Libraries whose exact versions an artifact records and a load requires (distribution names).
PINNED_LIBRARIES: tuple[str, ...] = ("scikit-learn", "numpy", "scipy", "pandas")
#: Top-level modules a model pickle may name; anything else (``os``, ``subprocess``...) is refused.
ALLOWED_MODULES: frozenset[str] = frozenset(
    {"numpy", "scipy", "sklearn", "pandas", "pipeline", "collections", "copyreg", "datetime", "_codecs"}
)
_SAFE_BUILTINS: frozenset[str] = frozenset(
    {"set", "frozenset", "slice", "range", "complex", "bytearray", "bytes", "object", "dict", "list",
     "tuple", "int", "float", "str", "bool"}
)
_VERSION_DIGITS = 16


class ArtifactError(RuntimeError):
    """A model artifact cannot be used; the message says which one and why."""


class DigestMismatchError(ArtifactError):
    """``model.pkl`` does not hash to the digest its manifest records (tampered with or corrupted)."""


class LibraryVersionError(ArtifactError):
    """The artifact was saved with other versions of the pinned libraries than this process has."""


class Store(Protocol):
    """What artifacts need of an object store (``resources.objectstore.ObjectStore`` has it)."""

    def put_bytes(self, key: str, data: bytes) -> str:
        """Write ``data`` as ``key``; return its URI."""

    def get_bytes(self, key: str) -> bytes:
        """Read ``key``; raise ``FileNotFoundError`` when absent."""

    def uri(self, key: str) -> str:
        """The URI of ``key``."""


@dataclass(frozen=True)
class LoadedModel:
    """A model read back from its artifact.

    Attributes:
        name: The model name (the table it produces, e.g. ``customer_clusters``).
        version: Its content digest.
        payload: The unpickled payload.
        manifest: The parsed ``manifest.json``.
    """

    name: str
    version: str
    payload: Any
    manifest: dict[str, Any]


@dataclass(frozen=True)
class SavedModel:
    """Where :func:`save_model` put an artifact.

    Attributes:
        name: The model name.
        version: The content digest.
        uri: URI of the artifact folder (``<location>/<model>/<version>``).
        manifest: The manifest written (or the one already there, for an identical model).
    """

    name: str
    version: str
    uri: str
    manifest: dict[str, Any]


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves only classes and functions of :data:`ALLOWED_MODULES`."""

    def find_class(self, module: str, name: str) -> Any:
        top = module.split(".")[0]
        if (module == "builtins" and name in _SAFE_BUILTINS) or top in ALLOWED_MODULES:
            return super().find_class(module, name)
        raise ArtifactError(f"model pickle refers to {module}.{name}, outside the allowed modules")


def serialize(payload: Any) -> bytes:
    """Pickle a payload (protocol 5) to the bytes stored as ``model.pkl``.

    Args:
        payload: The fitted objects; must be deterministic to pickle (no clocks, no open handles).

    Returns:
        The pickle.
    """
    return pickle.dumps(payload, protocol=5)


def deserialize(data: bytes) -> Any:
    """Unpickle ``model.pkl`` bytes, refusing modules outside :data:`ALLOWED_MODULES`.

    Args:
        data: Bytes written by :func:`serialize`.

    Returns:
        The payload.

    Raises:
        ArtifactError: If the pickle names a module that is not allowed.
    """
    return _RestrictedUnpickler(io.BytesIO(data)).load()


def sha256(data: bytes) -> str:
    """Hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def version_of(model_bytes: bytes) -> str:
    """The version of a model: the first 16 hex digits of the SHA-256 of its ``model.pkl``."""
    return sha256(model_bytes)[:_VERSION_DIGITS]


def frame_digest(frame: pd.DataFrame) -> str:
    """A content digest of a table (columns, dtypes and values; not the index), for training-data versions.

    Args:
        frame: The training data.

    Returns:
        The first 16 hex digits of a SHA-256 over the column names, dtypes and row hashes.
    """
    digest = hashlib.sha256(json.dumps([[str(c), str(t)] for c, t in frame.dtypes.items()]).encode())
    digest.update(np.ascontiguousarray(pd.util.hash_pandas_object(frame, index=False).to_numpy()).tobytes())
    return digest.hexdigest()[:_VERSION_DIGITS]


def library_versions() -> dict[str, str]:
    """Installed versions of Python and the :data:`PINNED_LIBRARIES`."""
    pinned = {name: metadata.version(name) for name in PINNED_LIBRARIES}
    return {"python": platform.python_version(), **pinned}


def build_manifest(
    name: str,
    model_bytes: bytes,
    *,
    features: list[str],
    training: dict[str, Any],
    metrics: dict[str, Any] | None = None,
    parameters: dict[str, Any] | None = None,
    created_at: datetime | None = None,
) -> dict[str, Any]:
    """The manifest of an artifact.

    Args:
        name: Model name.
        model_bytes: The ``model.pkl`` bytes.
        features: Input columns the scoring entry point expects.
        training: What the model was fitted on: at least ``version`` (a content digest) and ``rows``.
        metrics: Quality figures of the fit (JSON values).
        parameters: Settings of the fit (JSON values).
        created_at: When it was saved (default: now, UTC).

    Returns:
        ``format``, ``model``, ``version``, ``created_at``, ``model_file``, ``sha256``, ``size_bytes``,
        ``training_data``, ``features``, ``libraries``, ``parameters`` and ``metrics``.
    """
    if "version" not in training or "rows" not in training:
        raise ValueError("training must give at least the data 'version' and its 'rows'")
    return {
        "format": FORMAT_VERSION,
        "model": name,
        "version": version_of(model_bytes),
        "created_at": (created_at or datetime.now(UTC)).isoformat(timespec="seconds"),
        "model_file": MODEL_FILE,
        "sha256": sha256(model_bytes),
        "size_bytes": len(model_bytes),
        "training_data": training,
        "features": list(features),
        "libraries": library_versions(),
        "parameters": parameters or {},
        "metrics": metrics or {},
    }


def _dumps(document: dict[str, Any]) -> bytes:
    return (json.dumps(document, indent=2, sort_keys=True, default=str) + "\n").encode()


def save_model(
    store: Store,
    name: str,
    payload: Any,
    *,
    features: list[str],
    training: dict[str, Any],
    metrics: dict[str, Any] | None = None,
    parameters: dict[str, Any] | None = None,
) -> SavedModel:
    """Write a model artifact and point ``<name>/latest.json`` at it.

    ``model.pkl`` is written before the manifest and ``latest.json`` last, so a reader following
    ``latest.json`` never finds half an artifact. Saving a model identical to a stored version (same
    digest) rewrites nothing but ``latest.json``; that version keeps its first manifest.

    Args:
        store: Where to write (``put_bytes``, ``get_bytes``, ``uri``).
        name: Model name, a single key segment (e.g. ``customer_clusters``).
        payload: The fitted objects (see :func:`serialize`).
        features: See :func:`build_manifest`.
        training: See :func:`build_manifest`.
        metrics: See :func:`build_manifest`.
        parameters: See :func:`build_manifest`.

    Returns:
        The version, the folder URI and the manifest.
    """
    if not name or "/" in name:
        raise ValueError(f"model name must be one key segment, got {name!r}")
    model_bytes = serialize(payload)
    manifest = build_manifest(
        name, model_bytes, features=features, training=training, metrics=metrics, parameters=parameters
    )
    folder = f"{name}/{manifest['version']}"
    existing = _existing_manifest(store, f"{folder}/{MANIFEST_FILE}")
    if existing is not None and existing.get("sha256") == manifest["sha256"]:
        manifest = existing
    else:
        store.put_bytes(f"{folder}/{MODEL_FILE}", model_bytes)
        store.put_bytes(f"{folder}/{MANIFEST_FILE}", _dumps(manifest))
    latest = {"model": name, "version": manifest["version"], "manifest": f"{folder}/{MANIFEST_FILE}"}
    store.put_bytes(f"{name}/{LATEST_FILE}", _dumps(latest))
    return SavedModel(name, manifest["version"], store.uri(folder), manifest)


def _existing_manifest(store: Store, key: str) -> dict[str, Any] | None:
    try:
        return json.loads(store.get_bytes(key))
    except FileNotFoundError:
        return None


def latest_version(store: Store, name: str) -> str:
    """The version ``<name>/latest.json`` points at.

    Raises:
        FileNotFoundError: No version of ``name`` was ever saved in ``store``.
    """
    return json.loads(store.get_bytes(f"{name}/{LATEST_FILE}"))["version"]


def check_artifact(manifest: dict[str, Any], model_bytes: bytes, *, where: str) -> None:
    """Refuse an artifact whose model bytes or library versions do not match its manifest.

    Args:
        manifest: The parsed manifest.
        model_bytes: The ``model.pkl`` bytes.
        where: The artifact's location, for the messages.

    Raises:
        DigestMismatchError: ``model.pkl`` does not hash to ``manifest["sha256"]``, or the version is not
            that digest.
        LibraryVersionError: A pinned library differs from the version that saved the model.
    """
    actual = sha256(model_bytes)
    if actual != manifest.get("sha256") or manifest.get("version") != actual[:_VERSION_DIGITS]:
        raise DigestMismatchError(
            f"{where}: {MODEL_FILE} has SHA-256 {actual}, but the manifest records "
            f"{manifest.get('sha256')} (version {manifest.get('version')}); the artifact was modified or "
            "corrupted, refusing to load it"
        )
    saved = manifest.get("libraries", {})
    installed = library_versions()
    different = {
        name: (saved.get(name), installed[name])
        for name in PINNED_LIBRARIES
        if saved.get(name) != installed[name]
    }
    if different:
        listed = ", ".join(f"{name} {was} (this process has {now})" for name, (was, now) in different.items())
        raise LibraryVersionError(
            f"{where} was saved with {listed}: a pickled model is only supported by the library versions "
            "that wrote it; install those versions (see the manifest's 'libraries') or refit and save the "
            "model again"
        )


def _load(manifest_bytes: bytes, model_bytes: bytes, *, where: str) -> LoadedModel:
    manifest = json.loads(manifest_bytes)
    check_artifact(manifest, model_bytes, where=where)
    return LoadedModel(manifest["model"], manifest["version"], deserialize(model_bytes), manifest)


def load_model(store: Store, name: str, version: str | None = None) -> LoadedModel:
    """Read a model artifact from a store, checked (see :func:`check_artifact`).

    Args:
        store: Where the artifacts are.
        name: Model name.
        version: A version; default the one ``<name>/latest.json`` points at.

    Returns:
        The loaded model.

    Raises:
        FileNotFoundError: No such model or version.
        DigestMismatchError: See :func:`check_artifact`.
        LibraryVersionError: See :func:`check_artifact`.
    """
    version = version or latest_version(store, name)
    folder = f"{name}/{version}"
    return _load(
        store.get_bytes(f"{folder}/{MANIFEST_FILE}"),
        store.get_bytes(f"{folder}/{MODEL_FILE}"),
        where=f"model {name} version {version} at {store.uri(folder)}",
    )


def load_model_dir(model_dir: str | Path) -> LoadedModel:
    """Read a model artifact from a local folder (one version: ``model.pkl`` and ``manifest.json``), checked.

    Args:
        model_dir: The folder, e.g. where SageMaker unpacks ``model.tar.gz`` (``/opt/ml/model``).

    Returns:
        The loaded model.

    Raises:
        FileNotFoundError: The folder lacks one of the two files.
        DigestMismatchError: See :func:`check_artifact`.
        LibraryVersionError: See :func:`check_artifact`.
    """
    folder = Path(model_dir)
    return _load(
        (folder / MANIFEST_FILE).read_bytes(), (folder / MODEL_FILE).read_bytes(), where=f"model at {folder}"
    )


def download_model(store: Store, name: str, folder: str | Path, version: str | None = None) -> Path:
    """Copy one version of a model from a store into a local folder (for :func:`load_model_dir` or packaging).

    The bytes are checked on the way (:func:`check_artifact`), so a folder is only written for a sound
    artifact.

    Args:
        store: Where the artifacts are.
        name: Model name.
        folder: Local folder to write ``model.pkl`` and ``manifest.json`` into (created if needed).
        version: A version; default the latest.

    Returns:
        The folder.
    """
    version = version or latest_version(store, name)
    source = f"{name}/{version}"
    manifest_bytes = store.get_bytes(f"{source}/{MANIFEST_FILE}")
    model_bytes = store.get_bytes(f"{source}/{MODEL_FILE}")
    check_artifact(json.loads(manifest_bytes), model_bytes, where=f"model {name} version {version}")
    target = Path(folder)
    target.mkdir(parents=True, exist_ok=True)
    (target / MODEL_FILE).write_bytes(model_bytes)
    (target / MANIFEST_FILE).write_bytes(manifest_bytes)
    return target
