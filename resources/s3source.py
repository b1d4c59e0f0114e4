"""Invoice exports in an S3 bucket: listing them, and keeping a local, content-addressed copy of each.

Belongs here: everything ``resources.source.InvoiceSource`` needs from S3 for ``RETAIL_SOURCE=s3://bucket/prefix``
(listing the export objects with their ETag and size, downloading each once into the source cache, and the
errors that name the S3 URI). Not here: parsing (``pipeline.sources.readers``) or choosing what to ingest
(``pipeline.sources.ingest``).

A prefix is read like a folder: the ``.xlsx``, ``.csv`` and ``.parquet`` objects directly under it (not in
"sub-folders"; names starting with ``.`` or ``~$`` are ignored). A location whose last part has one of those
suffixes names a single object.

The cache. Each object is downloaded into ``<cache>/s3/objects/<sha256>/<name>``: a folder named after the
SHA-256 of the content, so a cached file never changes once written, and a part listed with a fingerprint is
read with exactly that content even if the object is replaced meanwhile. ``<cache>/s3/index/`` remembers, per
object URI, the ETag and size of the version downloaded and its SHA-256: an object whose ETag and size are
unchanged is neither downloaded nor hashed again. The fingerprint is the SHA-256 of the content, the same as
for a file in a local folder (``pipeline.sources.readers.file_fingerprint``), so moving the exports from a
folder to a bucket changes no fingerprint.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import urlparse

from pipeline.sources.readers import SOURCE_SUFFIXES
from resources.objectstore import ObjectStoreError

_CHUNK_BYTES = 1 << 20
_CREDENTIALS_HINT = (
    "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE), or run where an IAM role is available"
)


@dataclass(frozen=True)
class S3Object:
    """One export object as listed.

    Attributes:
        bucket: The bucket.
        key: The object key.
        etag: The ETag S3 reports (quotes removed); changes whenever the object is rewritten.
        size: Size in bytes.
    """

    bucket: str
    key: str
    etag: str
    size: int

    @property
    def uri(self) -> str:
        """``s3://bucket/key``."""
        return f"s3://{self.bucket}/{self.key}"


def split_location(location: str) -> tuple[str, str]:
    """Split ``s3://bucket/prefix`` into the bucket and the prefix without surrounding slashes.

    Args:
        location: An ``s3://`` URI.

    Returns:
        ``(bucket, prefix)``; the prefix may be empty.

    Raises:
        ValueError: The URI names no bucket.
    """
    parsed = urlparse(location)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise ValueError(f"RETAIL_SOURCE {location!r} is not an S3 location (expected s3://bucket/prefix)")
    return parsed.netloc, parsed.path.strip("/")


def _client(endpoint_url: str | None):
    import boto3

    return boto3.client("s3", endpoint_url=endpoint_url or None)


def _error_code(error: Exception) -> str:
    return str(getattr(error, "response", {}).get("Error", {}).get("Code", ""))


def _access_error(error: Exception, uri: str, action: str) -> Exception:
    """Turn a boto3 failure into an error that names ``uri`` and says what to do."""
    from botocore.exceptions import NoCredentialsError, PartialCredentialsError

    if isinstance(error, NoCredentialsError | PartialCredentialsError):
        return ObjectStoreError(f"cannot {action} {uri}: no AWS credentials found; {_CREDENTIALS_HINT}")
    code = _error_code(error)
    if code in ("NoSuchBucket", "404", "NoSuchKey"):
        what = "the bucket does not exist" if code == "NoSuchBucket" else "no such object"
        return FileNotFoundError(f"cannot {action} {uri}: {what}")
    if code in ("AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
        return ObjectStoreError(
            f"cannot {action} {uri}: access denied ({code}); check the credentials and the bucket policy"
        )
    return ObjectStoreError(f"cannot {action} {uri}: {error}")


def _is_source_name(name: str) -> bool:
    return name.lower().endswith(SOURCE_SUFFIXES) and not name.startswith((".", "~$"))


def list_source_objects(location: str, *, endpoint_url: str | None = None) -> list[S3Object]:
    """List the export objects at an S3 location.

    Args:
        location: ``s3://bucket/prefix`` (a folder of exports) or ``s3://bucket/key.xlsx`` (one export).
        endpoint_url: S3 endpoint (MinIO, moto); default ``AWS_ENDPOINT_URL``, else AWS.

    Returns:
        The objects sorted by key; empty when the prefix holds no export.

    Raises:
        FileNotFoundError: The bucket, or the single object named, does not exist.
        ObjectStoreError: Missing credentials, access denied, or another S3 failure (the message names the
            URI).
    """
    bucket, prefix = split_location(location)
    client = _client(endpoint_url)
    uri = f"s3://{bucket}/{prefix}"
    try:
        if prefix.lower().endswith(SOURCE_SUFFIXES):
            head = client.head_object(Bucket=bucket, Key=prefix)
            return [S3Object(bucket, prefix, head["ETag"].strip('"'), int(head["ContentLength"]))]
        start = f"{prefix}/" if prefix else ""
        found = []
        # Delimiter "/": the objects directly under the prefix, as a folder source reads its folder.
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=start, Delimiter="/")
        for page in pages:
            for item in page.get("Contents", []):
                if _is_source_name(PurePosixPath(item["Key"]).name):
                    found.append(S3Object(bucket, item["Key"], item["ETag"].strip('"'), int(item["Size"])))
    except Exception as error:  # botocore raises many unrelated types; each becomes one that names the URI
        raise _access_error(error, uri, "list") from error
    return sorted(found, key=lambda obj: obj.key)


@dataclass(frozen=True)
class S3Cache:
    """Local, content-addressed copies of S3 export objects (see the module docstring).

    Attributes:
        folder: The cache root (``<cache>/s3``).
        endpoint_url: S3 endpoint; default ``AWS_ENDPOINT_URL``, else AWS.
    """

    folder: Path
    endpoint_url: str | None = None

    def _index_file(self, obj: S3Object) -> Path:
        return self.folder / "index" / f"{hashlib.sha256(obj.uri.encode()).hexdigest()[:32]}.json"

    def _content_file(self, sha256: str, obj: S3Object) -> Path:
        return self.folder / "objects" / sha256 / PurePosixPath(obj.key).name

    def cached(self, obj: S3Object) -> tuple[Path, str] | None:
        """The local copy of ``obj`` and its SHA-256, if this version (ETag, size) was downloaded before."""
        index = self._index_file(obj)
        with contextlib.suppress(FileNotFoundError, ValueError, KeyError, TypeError):
            entry = json.loads(index.read_text())
            if entry["uri"] == obj.uri and entry["etag"] == obj.etag and entry["size"] == obj.size:
                path = self._content_file(entry["sha256"], obj)
                if path.is_file() and path.stat().st_size == obj.size:
                    return path, entry["sha256"]
        return None

    def fetch(self, obj: S3Object) -> tuple[Path, str]:
        """Return a local copy of ``obj`` and the SHA-256 of its content, downloading it only when needed.

        Args:
            obj: An object from :func:`list_source_objects`.

        Returns:
            ``(path, sha256)``.

        Raises:
            FileNotFoundError: The object was deleted since it was listed.
            ObjectStoreError: Another S3 failure; the message names the URI.
        """
        hit = self.cached(obj)
        if hit is not None:
            return hit
        path, sha256, etag, size = self._download(obj)
        self._remember(S3Object(obj.bucket, obj.key, etag, size), sha256)
        return path, sha256

    def _download(self, obj: S3Object) -> tuple[Path, str, str, int]:
        """Stream ``obj`` to a temporary file, hash it, and move it to its content-addressed place.

        The ETag and size recorded are those of the version actually downloaded (the object may have been
        replaced since it was listed), so the index never pairs an ETag with another version's content.
        """
        staging = self.folder / "objects"
        staging.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(dir=staging, prefix=".download.", suffix=".part")
        temporary = Path(name)
        try:
            digest = hashlib.sha256()
            with os.fdopen(handle, "wb") as output:
                try:
                    response = _client(self.endpoint_url).get_object(Bucket=obj.bucket, Key=obj.key)
                    for chunk in response["Body"].iter_chunks(_CHUNK_BYTES):
                        digest.update(chunk)
                        output.write(chunk)
                except Exception as error:
                    raise _access_error(error, obj.uri, "download") from error
            sha256 = digest.hexdigest()
            target = self._content_file(sha256, obj)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(temporary, target)
        finally:
            temporary.unlink(missing_ok=True)
        return target, sha256, str(response["ETag"]).strip('"'), target.stat().st_size

    def _remember(self, obj: S3Object, sha256: str) -> None:
        """Record which content an object version has, replacing the entry atomically."""
        index = self._index_file(obj)
        index.parent.mkdir(parents=True, exist_ok=True)
        entry = {"uri": obj.uri, "etag": obj.etag, "size": obj.size, "sha256": sha256}
        handle, name = tempfile.mkstemp(dir=index.parent, prefix=f".{index.name}.", suffix=".tmp")
        try:
            with os.fdopen(handle, "w") as output:
                json.dump(entry, output)
            os.replace(name, index)
        finally:
            Path(name).unlink(missing_ok=True)


def listing_signature(objects: list[S3Object]) -> str:
    """A digest of every object's key, ETag and size: it changes when an export is added, replaced or removed.

    Args:
        objects: The listing (see :func:`list_source_objects`).

    Returns:
        A hex digest.
    """
    lines = sorted(f"{obj.uri}:{obj.etag}:{obj.size}" for obj in objects)
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()
