"""Object storage: a local folder or an S3 prefix, behind one small interface.

Belongs here: reading and writing whole objects (exports, model artifacts, source files) by key under one
location URI. Not here: what the objects contain (``pipeline``), or which assets write them.

A location is either a local folder (``/data/exports``, ``file:///data/exports``) or ``s3://bucket/prefix``.
S3 is reached with boto3 and its usual configuration (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
``AWS_DEFAULT_REGION``, and ``AWS_ENDPOINT_URL`` for an S3-compatible server such as MinIO or moto's, which
the tests use). Keys are ``/``-separated and relative to the location.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse


class ObjectStoreError(RuntimeError):
    """An object could not be read or written; the message names the URI."""


def is_s3_uri(location: str) -> bool:
    """Whether ``location`` names an S3 bucket or prefix (``s3://...``)."""
    return str(location).startswith("s3://")


def _check_key(key: str) -> str:
    parts = key.split("/")
    if not key or key.startswith("/") or any(part in ("", ".", "..") for part in parts):
        raise ValueError(f"object key {key!r} must be a relative path without empty, '.' or '..' parts")
    return key


@dataclass(frozen=True)
class ObjectStore:
    """Whole-object reads and writes under one location.

    Attributes:
        location: A local folder, or ``s3://bucket/prefix``.
        endpoint_url: S3 endpoint to use instead of AWS (default ``AWS_ENDPOINT_URL`` through boto3).
    """

    location: str
    endpoint_url: str | None = None

    @property
    def is_s3(self) -> bool:
        """Whether the location is on S3."""
        return is_s3_uri(self.location)

    def _bucket_prefix(self) -> tuple[str, str]:
        parsed = urlparse(self.location)
        if not parsed.netloc:
            raise ValueError(f"S3 location {self.location!r} has no bucket (expected s3://bucket/prefix)")
        return parsed.netloc, parsed.path.strip("/")

    def _folder(self) -> Path:
        location = self.location[len("file://"):] if self.location.startswith("file://") else self.location
        return Path(location).expanduser()

    def _client(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint_url or None)

    def _s3_key(self, key: str) -> tuple[str, str]:
        bucket, prefix = self._bucket_prefix()
        key = _check_key(key)
        return bucket, f"{prefix}/{key}" if prefix else key

    def uri(self, key: str) -> str:
        """The full URI (``s3://...`` or an absolute path) of ``key``."""
        if self.is_s3:
            bucket, name = self._s3_key(key)
            return f"s3://{bucket}/{name}"
        return str((self._folder() / _check_key(key)).resolve())

    def put_bytes(self, key: str, data: bytes) -> str:
        """Write ``data`` as ``key``, replacing any previous object; return its URI.

        On a local folder the object is written to a temporary file and renamed, so a reader never sees half
        an object; on S3 a PUT is atomic by itself.
        """
        if self.is_s3:
            bucket, name = self._s3_key(key)
            try:
                self._client().put_object(Bucket=bucket, Key=name, Body=data)
            except Exception as error:  # botocore raises many unrelated types; name the object in all of them
                raise ObjectStoreError(f"could not write s3://{bucket}/{name}: {error}") from error
            return f"s3://{bucket}/{name}"
        path = self._folder() / _check_key(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(handle, "wb") as output:
                output.write(data)
            os.replace(temporary, path)
        finally:
            Path(temporary).unlink(missing_ok=True)
        return str(path.resolve())

    def get_bytes(self, key: str) -> bytes:
        """Read the object ``key``.

        Raises:
            FileNotFoundError: There is no such object.
        """
        if self.is_s3:
            bucket, name = self._s3_key(key)
            client = self._client()
            try:
                return client.get_object(Bucket=bucket, Key=name)["Body"].read()
            except client.exceptions.NoSuchKey as error:
                raise FileNotFoundError(f"no object s3://{bucket}/{name}") from error
            except Exception as error:
                raise ObjectStoreError(f"could not read s3://{bucket}/{name}: {error}") from error
        path = self._folder() / _check_key(key)
        if not path.is_file():
            raise FileNotFoundError(f"no object {path}")
        return path.read_bytes()

    def list_keys(self, prefix: str = "") -> list[str]:
        """Keys of every object under ``prefix`` (relative to the location), sorted."""
        if self.is_s3:
            bucket, root = self._bucket_prefix()
            start = f"{root}/{prefix}" if root else prefix
            keys = []
            try:
                for page in self._client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=start):
                    keys.extend(item["Key"] for item in page.get("Contents", []))
            except Exception as error:
                raise ObjectStoreError(f"could not list s3://{bucket}/{start}: {error}") from error
            cut = len(root) + 1 if root else 0
            return sorted(key[cut:] for key in keys)
        folder = self._folder()
        if not folder.is_dir():
            return []
        found = (
            path.relative_to(folder).as_posix()
            for path in folder.rglob("*")
            if path.is_file() and not path.name.startswith(".")
        )
        return sorted(key for key in found if key.startswith(prefix))
