"""Where invoices come from: synthetic data, a file or folder of exports, an S3 prefix, or the UCI download.

Belongs here: choosing and fingerprinting the source parts, and handing their lines over in the raw contract.
Parsing lives in ``pipeline.sources.readers``, generation in ``pipeline.sources.synthetic``, downloading in
``pipeline.sources.download``, listing and caching S3 objects in ``resources.s3source``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pandas as pd
from pydantic import Field

from pipeline.sources import readers
from pipeline.sources.download import UCI_ONLINE_RETAIL_II_URL
from resources import s3source
from resources.objectstore import is_s3_uri

DEFAULT_CACHE = Path(__file__).resolve().parents[1] / "data" / "cache"


@dataclass(frozen=True)
class SourcePart:
    """One independently ingestible piece of the source (a file, or the whole synthetic data set).

    Attributes:
        source_file: The value of the ``source_file`` lineage column for its lines (the ``s3://`` URI of an
            object in a bucket).
        fingerprint: Changes whenever the part's content changes (sha256 of the file, or of the generator's
            settings and ``synthetic.GENERATOR_VERSION``).
        path: The file to read (for an S3 object, its local copy in the cache); ``None`` for synthetic data.
    """

    source_file: str
    fingerprint: str
    path: Path | None


class InvoiceSource(dg.ConfigurableResource):
    """The invoices to ingest, chosen by ``RETAIL_SOURCE``.

    ``synthetic`` (default) generates Online-Retail-II-like data; a path reads an ``.xlsx``, ``.csv`` or
    ``.parquet`` file or a folder of them; ``s3://bucket/prefix`` reads the same files from a bucket (each
    downloaded once into ``cache_dir``, see ``resources.s3source``); ``uci`` downloads and caches the official
    workbook.
    """

    location: str = Field(
        default="synthetic", description="'synthetic', 'uci', a file or folder path, or s3://bucket/prefix."
    )
    synthetic_lines: int = Field(default=100_000, description="Lines the synthetic generator produces.")
    synthetic_seed: int = Field(default=42, description="Seed of the synthetic generator.")
    cache_dir: str = Field(
        default=str(DEFAULT_CACHE), description="Where the UCI download and copies of S3 objects are cached."
    )
    s3_endpoint_url: str | None = Field(
        default=None,
        description="S3-compatible endpoint (MinIO, moto) for an s3:// location; default AWS_ENDPOINT_URL, "
        "else AWS.",
    )
    uci_url: str = Field(
        default=UCI_ONLINE_RETAIL_II_URL, description="Where the UCI zip is downloaded from."
    )
    download_retries: int = Field(
        default=3, description="Attempts after a transient download failure (unreachable, timeout, 429, 5xx)."
    )
    download_retry_seconds: float = Field(default=60.0, description="Wait before each new download attempt.")
    uci_sha256: str | None = Field(
        default=None,
        description="SHA-256 the UCI zip must have; a download that differs is refused and not cached.",
    )

    def parts(self) -> list[SourcePart]:
        """List the parts of the source with their fingerprints (reads files to hash them, parses nothing).

        Returns:
            The parts in a stable order.

        Raises:
            FileNotFoundError: When a path source does not exist, or an S3 bucket does not exist or holds no
                export under the prefix (the message names the ``s3://`` URI).
            readers.SourceFormatError: When a path source is neither a regular file nor a folder (a device,
                FIFO or socket, which could block the run or stream without end).
            resources.objectstore.ObjectStoreError: S3 credentials are missing or refused, or S3 failed.
        """
        if self.location == "synthetic":
            from pipeline.sources import synthetic

            uri = f"synthetic://online-retail-ii?lines={self.synthetic_lines}&seed={self.synthetic_seed}"
            # The generator's version is part of the fingerprint (not of the lineage name), so lines made by
            # a previous generator are regenerated rather than reused.
            settings = f"{uri}&generator={synthetic.GENERATOR_VERSION}"
            return [SourcePart(uri, hashlib.sha256(settings.encode()).hexdigest(), None)]
        if self.location == "uci":
            from pipeline.sources import download

            path = download.download_uci(
                Path(self.cache_dir).expanduser(), url=self.uci_url, expected_sha256=self.uci_sha256 or None
            )
            return [SourcePart(str(path), readers.file_fingerprint(path), path)]
        if is_s3_uri(self.location):
            return self._s3_parts()
        root = self._resolved_path()
        return [SourcePart(str(p), readers.file_fingerprint(p), p) for p in readers.list_source_files(root)]

    def _s3_parts(self) -> list[SourcePart]:
        """The export objects under the S3 location, each fetched into the cache unless already there."""
        objects = s3source.list_source_objects(self.location, endpoint_url=self.s3_endpoint_url)
        if not objects:
            raise FileNotFoundError(
                f"RETAIL_SOURCE {self.location}: no {'/'.join(readers.SOURCE_SUFFIXES)} object there"
            )
        cache = s3source.S3Cache(Path(self.cache_dir).expanduser() / "s3", endpoint_url=self.s3_endpoint_url)
        parts = []
        for obj in objects:
            path, sha256 = cache.fetch(obj)
            parts.append(SourcePart(obj.uri, sha256, path))
        return parts

    def _resolved_path(self) -> Path:
        """The source path, ``~`` and symbolic links resolved, checked to be a regular file or a folder."""
        root = Path(self.location).expanduser().resolve()
        if not root.exists():
            raise FileNotFoundError(f"RETAIL_SOURCE {self.location!r} does not exist (resolved to {root})")
        if not (root.is_file() or root.is_dir()):
            raise readers.SourceFormatError(
                f"RETAIL_SOURCE {self.location!r} resolves to {root}, which is neither a regular file nor a "
                "folder"
            )
        return root

    def read_part(self, part: SourcePart) -> pd.DataFrame:
        """Read one part in the raw contract (``pipeline.sources.contract.RAW_COLUMNS``).

        Args:
            part: A part returned by :meth:`parts`.

        Returns:
            Every line of the part, typed, with lineage columns; text columns are Arrow-backed.
        """
        if part.path is None:
            from pipeline.sources import synthetic

            frame = synthetic.generate_frame(self.synthetic_lines, random_state=self.synthetic_seed)
            return readers.normalize_frame(
                frame, source_file=part.source_file, source_sheet=None, arrow_text=True
            )
        # Arrow-backed text: the raw table is written to DuckDB straight from it (see readers.read_file).
        return readers.read_file(part.path, arrow_text=True, source_file=part.source_file)

    def data_version(self, parts: list[SourcePart] | None = None) -> str:
        """The source's fingerprint: a digest of every part's name and content fingerprint.

        Unchanged exports give the same value, so an observation of an unchanged source records no new data
        version and nothing downstream is scheduled.

        Args:
            parts: The parts, if already listed (default: :meth:`parts`).

        Returns:
            A hex digest.
        """
        parts = self.parts() if parts is None else parts
        ordered = sorted(parts, key=lambda part: part.source_file)
        listing = "\n".join(f"{part.source_file}\t{part.fingerprint}" for part in ordered)
        return hashlib.sha256(listing.encode()).hexdigest()

    def listing_signature(self) -> str:
        """A cheap signature of the source listing (names, sizes, modification times) for the sensor.

        For an S3 location, the keys, ETags and sizes of one listing request: nothing is downloaded.

        Returns:
            A hex digest; it changes when a file is added, removed or rewritten. Constant for synthetic and
            uci; ``missing`` when the folder or bucket does not exist.

        Raises:
            resources.objectstore.ObjectStoreError: S3 credentials are missing or refused, or S3 failed.
        """
        if self.location in ("synthetic", "uci"):
            return self.location
        if is_s3_uri(self.location):
            try:
                objects = s3source.list_source_objects(self.location, endpoint_url=self.s3_endpoint_url)
            except FileNotFoundError:
                return "missing"
            return s3source.listing_signature(objects)
        root = Path(self.location).expanduser().resolve()
        if not root.exists():
            return "missing"
        entries = [f"{p}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in readers.list_source_files(root)]
        return hashlib.sha256("\n".join(entries).encode()).hexdigest()
