"""RETAIL_SOURCE=s3://bucket/prefix, against moto's local S3 server: ingest, fingerprints, listing, errors."""
# ruff: noqa: F811 - the imported fixtures are parameters of the tests

import hashlib
import shutil
from pathlib import Path

import boto3
import dagster as dg
import duckdb
import pandas as pd
import pytest

from assets import ingest
from assets.definitions import new_source_files
from pipeline.sources import readers, synthetic
from resources import InvoiceSource, Warehouse, WarehouseIOManager, s3source
from resources.objectstore import ObjectStoreError
from tests.conftest import SAMPLE_CSV, SAMPLE_XLSX, require
from tests.s3_server import new_bucket, no_credentials, s3_env  # noqa: F401

PREFIX = "exports/daily"


@pytest.fixture(scope="module")
def export_folder(tmp_path_factory) -> Path:
    """The real sample workbook and CSV, plus a synthetic export as CSV and as parquet."""
    folder = tmp_path_factory.mktemp("exports")
    shutil.copy(require(SAMPLE_XLSX), folder / "2009_sample.xlsx")
    shutil.copy(require(SAMPLE_CSV), folder / "2009_sample.csv")
    frame = synthetic.generate_frame(1_500, random_state=7)
    frame.to_csv(folder / "synthetic_a.csv", index=False)
    synthetic.generate_frame(1_200, random_state=8).to_parquet(folder / "synthetic_b.parquet", index=False)
    return folder


@pytest.fixture(scope="module")
def bucket(s3_env, export_folder) -> str:
    """A bucket holding the folder's files under PREFIX, plus objects a folder source would also ignore."""
    name = new_bucket()
    client = boto3.client("s3")
    for path in sorted(export_folder.iterdir()):
        client.upload_file(str(path), name, f"{PREFIX}/{path.name}")
    client.put_object(Bucket=name, Key=f"{PREFIX}/archive/old.csv", Body=b"Invoice\n1\n")  # a "sub-folder"
    client.put_object(Bucket=name, Key=f"{PREFIX}/README.txt", Body=b"not an export")
    client.put_object(Bucket=name, Key=f"{PREFIX}/.partial.csv", Body=b"Invoice\n1\n")
    return name


def s3_source(bucket: str, cache: Path, prefix: str = PREFIX) -> InvoiceSource:
    return InvoiceSource(location=f"s3://{bucket}/{prefix}", cache_dir=str(cache))


def ingest_into(database: str, source: InvoiceSource) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [ingest.raw_invoices],
        resources={
            "io_manager": WarehouseIOManager(database=database),
            "warehouse": Warehouse(database=database),
            "invoice_source": source,
        },
    )


def test_s3_ingest_yields_the_rows_of_the_same_files_read_from_a_folder(tmp_path, bucket, export_folder):
    folder_db, s3_db = str(tmp_path / "folder.duckdb"), str(tmp_path / "s3.duckdb")
    assert ingest_into(folder_db, InvoiceSource(location=str(export_folder))).success
    assert ingest_into(s3_db, s3_source(bucket, tmp_path / "cache")).success
    frames, manifests = [], []
    for database in (folder_db, s3_db):
        with duckdb.connect(database, read_only=True) as conn:
            frames.append(conn.sql("SELECT * FROM raw.raw_invoices").df())
            manifests.append(conn.sql("SELECT * FROM raw.source_files").df())
    folder_raw, s3_raw = frames
    assert len(s3_raw) == len(folder_raw) > 25_000
    pd.testing.assert_frame_equal(s3_raw.drop(columns="source_file"), folder_raw.drop(columns="source_file"))
    # Lineage names the object; each line comes from the object with its file's name.
    names = {Path(f).name: f"s3://{bucket}/{PREFIX}/{Path(f).name}" for f in set(folder_raw["source_file"])}
    expected_lineage = folder_raw["source_file"].map(lambda f: names[Path(f).name])
    assert s3_raw["source_file"].tolist() == expected_lineage.tolist()
    # The content fingerprint is the folder source's (sha256 of the bytes), object by object.
    folder_manifest, s3_manifest = manifests
    assert sorted(s3_manifest["source_file"]) == sorted(names.values())

    def fingerprints(manifest: pd.DataFrame) -> dict[str, str]:
        pairs = zip(manifest["source_file"], manifest["fingerprint"], strict=True)
        return {Path(f).name: fingerprint for f, fingerprint in pairs}

    by_name = fingerprints(folder_manifest)
    assert fingerprints(s3_manifest) == by_name
    assert by_name["2009_sample.csv"] == readers.file_fingerprint(export_folder / "2009_sample.csv")


def test_unchanged_objects_are_neither_downloaded_nor_reparsed(tmp_path, bucket, monkeypatch):
    database = str(tmp_path / "s3.duckdb")
    source = s3_source(bucket, tmp_path / "cache")
    first = source.parts()

    def no_download(self, obj):
        raise AssertionError(f"downloaded {obj.uri} again")

    monkeypatch.setattr(s3source.S3Cache, "_download", no_download)
    assert source.parts() == first
    assert ingest_into(database, source).success
    second = ingest_into(database, source)
    metadata = second.asset_materializations_for_node("raw_invoices")[0].metadata
    assert metadata["parts_read"].value == 0 and metadata["parts_unchanged"].value == 4


def test_a_replaced_object_gets_the_fingerprint_of_its_new_content(tmp_path, s3_env, export_folder):
    name = new_bucket()
    client = boto3.client("s3")
    for path in ("2009_sample.csv", "synthetic_a.csv"):
        client.upload_file(str(export_folder / path), name, f"in/{path}")
    source = s3_source(name, tmp_path / "cache", "in")
    before = {part.source_file: part for part in source.parts()}
    changed = (export_folder / "synthetic_a.csv").read_bytes().replace(b"United Kingdom", b"France")
    client.put_object(Bucket=name, Key="in/synthetic_a.csv", Body=changed)
    after = {part.source_file: part for part in source.parts()}
    kept, replaced = f"s3://{name}/in/2009_sample.csv", f"s3://{name}/in/synthetic_a.csv"
    assert after[kept] == before[kept]
    assert after[replaced].fingerprint == hashlib.sha256(changed).hexdigest() != before[replaced].fingerprint
    # The part listed before the change still reads the content it was fingerprinted with.
    old_lines = source.read_part(before[replaced])
    new_lines = source.read_part(after[replaced])
    assert (old_lines["country"] == "France").sum() < (new_lines["country"] == "France").sum()
    assert set(new_lines["source_file"].astype(str)) == {replaced}


def test_listing_signature_changes_when_an_export_is_added_or_replaced(tmp_path, s3_env):
    name = new_bucket()
    client = boto3.client("s3")
    client.put_object(Bucket=name, Key="in/a.csv", Body=b"Invoice\n1\n")
    source = s3_source(name, tmp_path / "cache", "in")
    first = source.listing_signature()
    assert source.listing_signature() == first
    client.put_object(Bucket=name, Key="in/sub/ignored.csv", Body=b"Invoice\n2\n")
    client.put_object(Bucket=name, Key="in/notes.txt", Body=b"x")
    assert source.listing_signature() == first, "objects a folder source would not read changed the signature"
    client.put_object(Bucket=name, Key="in/b.csv", Body=b"Invoice\n2\n")
    added = source.listing_signature()
    assert added != first
    client.put_object(Bucket=name, Key="in/a.csv", Body=b"Invoice\n3\n")  # same size, new ETag
    assert source.listing_signature() not in (first, added)
    assert not (tmp_path / "cache").exists(), "the signature must not download anything"


def test_sensor_requests_an_observation_when_an_object_is_added(tmp_path, s3_env):
    name = new_bucket()
    client = boto3.client("s3")
    client.put_object(Bucket=name, Key="in/a.csv", Body=b"Invoice\n1\n")
    context = dg.build_sensor_context(resources={"invoice_source": s3_source(name, tmp_path, "in")})
    assert isinstance(new_source_files(context), dg.SkipReason)
    assert isinstance(new_source_files(context), dg.SkipReason)
    client.put_object(Bucket=name, Key="in/b.csv", Body=b"Invoice\n2\n")
    assert isinstance(new_source_files(context), dg.RunRequest)


def test_a_missing_bucket_or_empty_prefix_is_named_in_the_error(tmp_path, s3_env):
    with pytest.raises(FileNotFoundError, match=r"s3://no-such-bucket-4f2a/exports.*bucket does not exist"):
        s3_source("no-such-bucket-4f2a", tmp_path, "exports").parts()
    name = new_bucket()
    with pytest.raises(FileNotFoundError, match=rf"s3://{name}/nothing/here: no \.xlsx/\.csv/\.parquet"):
        s3_source(name, tmp_path, "nothing/here").parts()
    assert s3_source("no-such-bucket-4f2a", tmp_path, "exports").listing_signature() == "missing"


def test_missing_credentials_give_an_error_naming_the_uri(tmp_path, bucket, no_credentials):
    source = s3_source(bucket, tmp_path)
    for call in (source.parts, source.listing_signature):
        with pytest.raises(ObjectStoreError, match=rf"s3://{bucket}/{PREFIX}: no AWS credentials found"):
            call()


def test_a_corrupt_export_object_is_named_by_its_uri(tmp_path, s3_env):
    name = new_bucket()
    boto3.client("s3").put_object(Bucket=name, Key="in/broken.xlsx", Body=b"not a workbook")
    source = s3_source(name, tmp_path, "in")
    [part] = source.parts()
    with pytest.raises(readers.SourceFormatError, match=rf"^s3://{name}/in/broken\.xlsx: not a valid \.xlsx"):
        source.read_part(part)


def test_a_single_object_location_reads_that_object(tmp_path, bucket, export_folder):
    source = s3_source(bucket, tmp_path, f"{PREFIX}/synthetic_b.parquet")
    [part] = source.parts()
    lines = source.read_part(part)
    expected = readers.read_file(export_folder / "synthetic_b.parquet")
    assert len(lines) == len(expected)
    pd.testing.assert_series_equal(lines["invoice"].astype(str), expected["invoice"].astype(str))
