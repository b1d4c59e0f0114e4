"""Security: no SQL from unvalidated text, checked source paths, guarded downloads, local UI, no secrets."""

from __future__ import annotations

import os
import re
import subprocess

import dagster as dg
import duckdb
import pandas as pd
import pytest

from assets import ingest
from pipeline.sources import download
from pipeline.sources.readers import SourceFormatError
from pipeline.warehouse import marts
from resources import InvoiceSource, Warehouse, WarehouseIOManager
from tests.reliability.helpers import REPO_ROOT, checksums

HOSTILE = "x; DROP TABLE raw.raw_invoices; --"


@pytest.fixture
def warehouse(tmp_path) -> str:
    """A warehouse holding raw.raw_invoices (1,000 synthetic lines)."""
    database = str(tmp_path / "retail.duckdb")
    result = dg.materialize(
        [ingest.raw_invoices],
        resources={
            "io_manager": WarehouseIOManager(database=database),
            "warehouse": Warehouse(database=database),
            "invoice_source": InvoiceSource(location="synthetic", synthetic_lines=1_000),
        },
    )
    assert result.success
    return database


@pytest.mark.parametrize("name", ["a-b", "Sales", 'raw_invoices"; DROP TABLE x; --', HOSTILE])
def test_hostile_table_names_from_asset_keys_are_refused_before_any_sql(name, warehouse):
    before = checksums(warehouse)
    try:

        @dg.asset(key=["analytics", name])
        def hostile() -> pd.DataFrame:
            return pd.DataFrame({"a": [1]})

    except dg.DagsterInvalidDefinitionError:
        return  # Dagster itself refuses the key: nothing can reach SQL
    result = dg.materialize(
        [hostile], resources={"io_manager": WarehouseIOManager(database=warehouse)}, raise_on_error=False
    )
    assert not result.success
    error = result.get_step_failure_events()[0].event_specific_data.error
    messages = []
    while error is not None:
        messages.append(error.message)
        error = error.cause
    assert "invalid identifier" in "\n".join(messages)
    assert checksums(warehouse) == before


def test_descriptions_become_comments_verbatim_not_sql(warehouse):
    description = "It's sold'); DROP TABLE raw.raw_invoices; --"

    @dg.asset(key=["analytics", "notes"], description=description, metadata={"table_comment": description})
    def notes() -> pd.DataFrame:
        return pd.DataFrame({"a": [1]})

    assert dg.materialize([notes], resources={"io_manager": WarehouseIOManager(database=warehouse)}).success
    with duckdb.connect(warehouse, read_only=True) as conn:
        comment = conn.execute("SELECT comment FROM duckdb_tables() WHERE table_name = 'notes'").fetchone()[0]
        raw_lines = conn.execute("SELECT count(*) FROM raw.raw_invoices").fetchone()[0]
    assert comment == description and raw_lines > 0


def test_warehouse_reads_validate_names_and_bind_values(warehouse):
    store = Warehouse(database=warehouse)
    for schema, table, column in [
        ("raw", HOSTILE, "invoice"),
        (HOSTILE, "raw_invoices", "invoice"),
        ("raw", "raw_invoices", HOSTILE),
    ]:
        with pytest.raises(ValueError, match="invalid identifier"):
            store.read_table(schema, table, where_in=(column, ["1"]))
    assert store.read_table("raw", "raw_invoices", where_in=("invoice", ["x' OR '1'='1"])).empty
    assert not store.table_exists("raw", HOSTILE)
    assert store.table_exists("raw", "raw_invoices")


def test_view_settings_are_allow_listed():
    with pytest.raises(ValueError, match="recommendation_setting"):
        marts.view_definitions(recommendation_setting="any' UNION SELECT * FROM raw.raw_invoices --")


def test_source_must_be_a_regular_file_or_a_folder(tmp_path):
    with pytest.raises(SourceFormatError, match="neither a regular file nor a folder"):
        InvoiceSource(location="/dev/zero").parts()
    fifo = tmp_path / "lines.csv"
    os.mkfifo(fifo)
    with pytest.raises(SourceFormatError, match="neither a regular file nor a folder"):
        InvoiceSource(location=str(fifo)).parts()
    with pytest.raises(FileNotFoundError, match="does not exist"):
        InvoiceSource(location=str(tmp_path / "nowhere")).parts()


def test_folder_ignores_devices_fifos_and_links_to_them(tmp_path):
    folder = tmp_path / "drop"
    folder.mkdir()
    (folder / "good.csv").write_text(
        "Invoice,StockCode,Description,Quantity,InvoiceDate,Price,Customer ID,Country\n"
    )
    os.mkfifo(folder / "pipe.csv")
    (folder / "zero.csv").symlink_to("/dev/zero")
    (folder / "link.csv").symlink_to(folder / "good.csv")
    parts = InvoiceSource(location=str(folder)).parts()
    assert sorted(os.path.basename(part.source_file) for part in parts) == ["good.csv", "link.csv"]


def test_uci_checksum_reaches_the_verified_download(tmp_path, monkeypatch):
    calls = []

    def fake_download(cache_dir, **kwargs):
        calls.append(kwargs)
        raise download.DownloadError("checksum mismatch")

    monkeypatch.setattr(download, "download_uci", fake_download)
    with pytest.raises(download.DownloadError):
        InvoiceSource(location="uci", cache_dir=str(tmp_path), uci_sha256="ab" * 32).parts()
    assert calls == [{"url": download.UCI_ONLINE_RETAIL_II_URL, "expected_sha256": "ab" * 32}]
    # Size, type and checksum guards themselves: tests/pipeline/sources/test_download.py; zip bomb: test_bad_input.py.
    assert download.DEFAULT_MAX_BYTES <= 200_000_000


def test_dagster_ui_binds_to_localhost():
    makefile = (REPO_ROOT / "Makefile").read_text()
    ui = re.search(r"^ui:.*\n\t(.+)$", makefile, flags=re.MULTILINE).group(1)
    assert "dg dev" in ui and "--host 127.0.0.1" in ui
    for name in ("Makefile", "dagster.yaml", "pyproject.toml"):
        assert "0.0.0.0" not in (REPO_ROOT / name).read_text(), name


SECRET_PATTERNS = {
    "AWS access key": r"AKIA[0-9A-Z]{16}",
    "private key": r"-----BEGIN [A-Z ]*PRIVATE KEY-----",
    "GitHub token": r"gh[pousr]_[A-Za-z0-9]{36}",
    "Slack token": r"xox[abpr]-[A-Za-z0-9-]{10,}",
    "password or secret assigned a literal": (
        r"(?i)\b(password|passwd|secret|api_key|token)\s*[:=]\s*['\"][^'\"\s]{6,}"
    ),
    "credentials in a URL": r"[a-z]+://[^/\s:@]+:[^/\s:@]+@",
}


def test_no_credentials_in_the_repository():
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    findings = []
    for name in listed:
        path = REPO_ROOT / name
        if (
            not path.is_file()
            or path.stat().st_size > 2_000_000
            or name == "tests/reliability/test_security.py"
        ):
            continue
        text = path.read_text(encoding="utf-8", errors="ignore")
        findings += [
            f"{name}: {label}" for label, pattern in SECRET_PATTERNS.items() if re.search(pattern, text)
        ]
    assert findings == []
