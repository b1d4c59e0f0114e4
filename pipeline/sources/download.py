"""Download, verify and cache the UCI Online Retail II workbook.

What belongs here: fetching the official zip over HTTP(S) with size, type and checksum guards, the
local cache, and safe extraction of the ``.xlsx`` member. What does not: parsing the workbook
(``pipeline.sources.readers``) and anything Dagster.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
import urllib.error
import urllib.request
import zipfile
import zlib
from pathlib import Path, PurePosixPath
from typing import BinaryIO
from urllib.parse import unquote, urlparse

logger = logging.getLogger(__name__)

UCI_ONLINE_RETAIL_II_URL = "https://archive.ics.uci.edu/static/public/502/online+retail+ii.zip"
DEFAULT_MAX_BYTES = 200_000_000
# The real workbook is about 45 MB; anything near a gigabyte is not the UCI file.
DEFAULT_MAX_MEMBER_BYTES = 1_000_000_000

_CHUNK_BYTES = 1 << 20
# A zip starts with a local file header; an empty archive starts with the end-of-directory record.
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
_USER_AGENT = "retail-intelligence/0.1 (+https://archive.ics.uci.edu/dataset/502/online+retail+ii)"


class DownloadError(RuntimeError):
    """The dataset could not be downloaded, verified or extracted."""


class TransientDownloadError(DownloadError):
    """The server could not be reached, timed out, or answered 429 or 5xx: trying again later may succeed.

    Everything else (a 404, a checksum mismatch, an archive that is not a zip or is too large) is final.
    """


def download_uci(
    cache_dir: str | Path,
    *,
    url: str = UCI_ONLINE_RETAIL_II_URL,
    expected_sha256: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    timeout: float = 60,
    max_member_bytes: int = DEFAULT_MAX_MEMBER_BYTES,
) -> Path:
    """Download the Online Retail II zip once and return the extracted workbook.

    A cached archive is reused when it is a valid zip and, if ``expected_sha256`` is given, matches
    it; otherwise it is downloaded again. The download is streamed to a temporary file and only
    moved into the cache after every check passed, so an interrupted or refused download leaves no
    cached file behind.

    Args:
        cache_dir: Folder for the archive and the extracted workbook (created if needed).
        url: Where to fetch the zip (http or https).
        expected_sha256: Hex SHA-256 the archive must have; ``None`` skips the check.
        max_bytes: Refuse an archive larger than this (announced or actually received).
        timeout: Socket timeout in seconds for connecting and for each read.
        max_member_bytes: Refuse to extract a workbook larger than this (announced or actual).

    Returns:
        Path of the extracted ``.xlsx`` inside ``cache_dir``.

    Raises:
        DownloadError: Network failure, HTTP error, oversize, non-zip answer, checksum mismatch, an
            archive with unsafe member paths, or no single ``.xlsx`` member.
    """
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    archive = cache_dir / _archive_name(url)
    expected = expected_sha256.strip().lower() if expected_sha256 else None
    if _cached_archive_is_valid(archive, expected):
        logger.info("using cached archive %s", archive)
    else:
        _fetch(url, archive, expected_sha256=expected, max_bytes=max_bytes, timeout=timeout)
    return _extract_workbook(archive, cache_dir, max_member_bytes=max_member_bytes)


def _archive_name(url: str) -> str:
    name = unquote(PurePosixPath(urlparse(url).path).name)
    # Keep the cache file name portable and free of path separators whatever the URL holds.
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._")
    if not name:
        name = "download"
    return name if name.lower().endswith(".zip") else f"{name}.zip"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def _cached_archive_is_valid(archive: Path, expected_sha256: str | None) -> bool:
    if not archive.is_file() or not zipfile.is_zipfile(archive):
        return False
    if expected_sha256 is not None and _sha256(archive) != expected_sha256:
        logger.warning("cached archive %s does not match the expected checksum; downloading again", archive)
        return False
    return True


def _fetch(url: str, archive: Path, *, expected_sha256: str | None, max_bytes: int, timeout: float) -> None:
    scheme = urlparse(url).scheme.lower()
    if scheme not in {"http", "https"}:
        raise DownloadError(
            f"{url}: only http and https URLs are downloaded, not {scheme or 'a bare path'!r}"
        )
    request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
    handle, temporary_name = tempfile.mkstemp(dir=archive.parent, prefix=f".{archive.name}.", suffix=".part")
    temporary = Path(temporary_name)
    try:
        with os.fdopen(handle, "wb") as output:
            digest = _stream(request, output, url=url, max_bytes=max_bytes, timeout=timeout)
        if not zipfile.is_zipfile(temporary):
            raise DownloadError(f"{url}: the answer is not a valid zip archive (truncated or corrupt?)")
        if expected_sha256 is not None and digest != expected_sha256:
            raise DownloadError(f"{url}: checksum mismatch, expected sha256 {expected_sha256}, got {digest}")
        os.replace(temporary, archive)
        logger.info("downloaded %s to %s (sha256 %s)", url, archive, digest)
    finally:
        temporary.unlink(missing_ok=True)


def _stream(
    request: urllib.request.Request, output: BinaryIO, *, url: str, max_bytes: int, timeout: float
) -> str:
    """Copy the response body to ``output`` with size and zip-signature guards; return its sha256."""
    digest = hashlib.sha256()
    received = 0
    head = b""
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            announced = response.headers.get("Content-Length")
            if announced is not None and announced.strip().isdigit() and int(announced) > max_bytes:
                raise DownloadError(
                    f"{url}: archive announces {int(announced):,} bytes, over the limit {max_bytes:,}"
                )
            content_type = response.headers.get("Content-Type", "unknown")
            while chunk := response.read(_CHUNK_BYTES):
                received += len(chunk)
                if received > max_bytes:
                    raise DownloadError(f"{url}: download exceeded the limit of {max_bytes:,} bytes")
                if len(head) < 4:
                    head += chunk[: 4 - len(head)]
                    # Refuse an HTML error page or similar as soon as its first bytes arrive.
                    if len(head) == 4 and head not in _ZIP_MAGIC:
                        raise DownloadError(
                            f"{url}: the answer is not a zip archive (Content-Type {content_type}, "
                            f"starts with {head!r})"
                        )
                digest.update(chunk)
                output.write(chunk)
    except urllib.error.HTTPError as error:
        transient = error.code == 429 or error.code >= 500
        raise (TransientDownloadError if transient else DownloadError)(
            f"{url}: HTTP {error.code} {error.reason}"
        ) from error
    except urllib.error.URLError as error:
        raise TransientDownloadError(f"{url}: cannot connect ({error.reason})") from error
    except (TimeoutError, OSError) as error:
        raise TransientDownloadError(f"{url}: download failed ({error})") from error
    if len(head) < 4:
        raise DownloadError(f"{url}: the answer is not a zip archive ({received} bytes received)")
    return digest.hexdigest()


def _is_unsafe_member(name: str) -> bool:
    path = PurePosixPath(name.replace("\\", "/"))
    return path.is_absolute() or ".." in path.parts or re.match(r"^[A-Za-z]:", name) is not None


def _extract_workbook(archive: Path, destination: Path, *, max_member_bytes: int) -> Path:
    try:
        with zipfile.ZipFile(archive) as bundle:
            members = bundle.infolist()
            unsafe = [member.filename for member in members if _is_unsafe_member(member.filename)]
            if unsafe:
                raise DownloadError(f"{archive}: refusing archive with unsafe member paths {unsafe}")
            workbooks = [
                member
                for member in members
                if not member.is_dir()
                and member.filename.lower().endswith(".xlsx")
                and "__MACOSX" not in PurePosixPath(member.filename).parts
                and not PurePosixPath(member.filename).name.startswith((".", "~$"))
            ]
            if len(workbooks) != 1:
                names = [member.filename for member in members]
                raise DownloadError(f"{archive}: expected exactly one .xlsx member, found {names}")
            member = workbooks[0]
            if member.file_size > max_member_bytes:
                raise DownloadError(
                    f"{archive}: member {member.filename} expands to {member.file_size:,} bytes, "
                    f"over the limit {max_member_bytes:,}"
                )
            # Flatten to the base name so no member path can leave the cache folder.
            target = destination / PurePosixPath(member.filename).name
            if _is_extracted(target, member):
                return target
            _copy_member(bundle, member, target, max_member_bytes=max_member_bytes)
            return target
    except (zipfile.BadZipFile, zlib.error, EOFError) as error:
        raise DownloadError(f"{archive}: corrupt archive ({error})") from error


def _is_extracted(target: Path, member: zipfile.ZipInfo) -> bool:
    if not target.is_file() or target.stat().st_size != member.file_size:
        return False
    crc = 0
    with target.open("rb") as handle:
        while chunk := handle.read(_CHUNK_BYTES):
            crc = zlib.crc32(chunk, crc)
    return crc == member.CRC


def _copy_member(
    bundle: zipfile.ZipFile, member: zipfile.ZipInfo, target: Path, *, max_member_bytes: int
) -> None:
    handle, temporary_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    temporary = Path(temporary_name)
    try:
        written = 0
        with os.fdopen(handle, "wb") as output, bundle.open(member) as source:
            while chunk := source.read(_CHUNK_BYTES):
                # The size in the zip directory can lie; count what is actually inflated.
                written += len(chunk)
                if written > max_member_bytes:
                    raise DownloadError(
                        f"{member.filename}: inflates beyond the limit of {max_member_bytes:,} bytes"
                    )
                output.write(chunk)
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
