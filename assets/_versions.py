"""Code versions of the assets: a digest of the code each asset group runs.

An asset's code version changes exactly when the logic it calls changes: the files of its room of
``pipeline`` (and of the rooms that room imports), ``pipeline/common`` and its own ``assets`` module. Dagster
then marks the asset's table as stale (its code changed since the last materialization) and leaves the
others alone.
"""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[1]

#: Per asset group: the code it runs, as paths relative to the project root (folders mean every .py in them).
GROUP_CODE: dict[str, tuple[str, ...]] = {
    "ingest": ("pipeline/sources", "resources/source.py", "resources/s3source.py", "assets/ingest.py"),
    "staging": (
        "pipeline/staging", "pipeline/sources/contract.py", "pipeline/spark", "resources/engine.py",
        "assets/staging.py",
    ),
    "eda": ("pipeline/eda", "assets/eda.py"),
    "customers": (
        "pipeline/customers", "pipeline/models", "pipeline/spark", "resources/engine.py",
        "resources/models.py", "assets/customers.py", "resources/settings.py",
    ),
    "baskets": (
        "pipeline/baskets", "pipeline/spark", "resources/engine.py", "assets/baskets.py",
        "resources/settings.py",
    ),
    "network": ("pipeline/network", "pipeline/baskets/basket_analysis.py", "assets/network.py"),
    "recommendations": (
        "pipeline/recommend",
        "pipeline/models",
        "pipeline/spark",
        "resources/engine.py",
        "resources/models.py",
        "pipeline/baskets/basket_analysis.py",
        "assets/recommendations.py",
        "resources/settings.py",
    ),
    "marts": ("pipeline/warehouse/marts.py", "assets/marts.py"),
    "reports": ("pipeline/warehouse/report.py", "assets/report.py"),
    "publish": ("resources/publication.py", "assets/publish.py"),
    "exports": (
        "pipeline/exports",
        "pipeline/warehouse/marts.py",
        "resources/export.py",
        "resources/objectstore.py",
        "assets/exports.py",
    ),
}
_SHARED = (
    "pipeline/common",
    "assets/_tables.py",
    "assets/_metadata.py",
    "assets/checks.py",
    "resources/warehouse.py",
    "resources/snowflake.py",
)


@cache
def code_version(group: str) -> str:
    """The first 16 hex digits of a SHA-256 over the code of an asset group (see :data:`GROUP_CODE`).

    Args:
        group: An asset group name.

    Returns:
        The digest; stable across processes and machines for the same files.

    Raises:
        KeyError: For a group that :data:`GROUP_CODE` does not list (every group must say what it runs).
    """
    digest = hashlib.sha256()
    for entry in (*GROUP_CODE[group], *_SHARED):
        path = _ROOT / entry
        files = sorted(path.rglob("*.py")) if path.is_dir() else [path]
        for file in files:
            digest.update(file.relative_to(_ROOT).as_posix().encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()[:16]
