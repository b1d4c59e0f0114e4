"""Where the fitted models are saved: the model store resource.

Belongs here: the ``ModelStore`` resource (a local folder or an S3 prefix, through
``resources.objectstore.ObjectStore``) and the default location. Not here: the artifact format and what each
model saves (``pipeline.models``), or which assets save (``assets.customers``, ``assets.recommendations``).
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
from pydantic import Field

from resources.objectstore import ObjectStore, is_s3_uri

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_LOCATION = str(PROJECT_ROOT / "data" / "models")


def default_location(warehouse: str | None = None) -> str:
    """The model store beside a local warehouse: ``<warehouse folder>/../models``.

    The default warehouse ``<project>/data/warehouse/retail.duckdb`` gives ``<project>/data/models``; a
    warehouse in a temporary folder keeps its models there too. Other warehouses (MotherDuck, none) give
    :data:`DEFAULT_LOCATION`.

    Args:
        warehouse: The DuckDB file path, if any.

    Returns:
        A folder path.
    """
    if not warehouse or ":" in warehouse.split("/")[0] or is_s3_uri(warehouse):
        return DEFAULT_LOCATION
    return str(Path(warehouse).expanduser().resolve().parent.parent / "models")


class ModelStore(dg.ConfigurableResource):
    """Versioned model artifacts (``pipeline.models.artifacts``) under a local folder or ``s3://bucket/prefix``."""

    location: str = Field(
        default=DEFAULT_LOCATION,
        description="Folder or s3://bucket/prefix holding <model>/<version>/ and <model>/latest.json.",
    )
    endpoint_url: str | None = Field(
        default=None, description="S3-compatible endpoint (MinIO, moto); default AWS_ENDPOINT_URL or AWS."
    )

    def store(self) -> ObjectStore:
        """The object store the artifacts are written to and read from."""
        return ObjectStore(self.location, endpoint_url=self.endpoint_url)
