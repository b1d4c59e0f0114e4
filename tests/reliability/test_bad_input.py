"""Bad-input corpus through the ingest and staging assets, on a real (temporary) warehouse.

For every case, one of two things happens, and the test checks which:

* refused: the run fails in ``raw_invoices`` with an error naming the file (and the sheet, line or column when
  that is the problem) and what was expected, and every table and view of the warehouse is unchanged;
* accepted: every line lands in ``staging.cleaned_transactions`` or in ``staging.rejected_rows`` with the
  expected reason, line by line, and the blocking reconciliation check passes.

The files are generated here (no binary is committed). The accepted cases share one folder and one run (their
invoice numbers differ, so no line duplicates another case's); each refused case runs on its own copy of a
warehouse built from good data.
"""

from __future__ import annotations

import csv
import shutil
import struct
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import duckdb
import openpyxl
import pandas as pd
import pytest

from assets import ingest, staging
from resources import ComputeEngine, InvoiceSource, Warehouse, WarehouseIOManager
from tests.reliability.helpers import checksums

FOUNDATION = [
    ingest.raw_invoices,
    ingest.raw_invoices_schema,
    staging.cleaned_transactions,
    staging.cleaned_transactions_schema,
    staging.rejected_rows_schema,
    staging.reconciles_with_raw,
]
HEADER = ["Invoice", "StockCode", "Description", "Quantity", "InvoiceDate", "Price", "Customer ID", "Country"]
SALE = None  # expected outcome of a line that is a clean sale


def line(
    invoice: int | str,
    *,
    stock: str = "85123A",
    description: str = "WHITE HANGING HEART T-LIGHT HOLDER",
    quantity: str = "6",
    date: str = "2010-03-01 10:00:00",
    price: str = "2.55",
    customer: str = "13085",
    country: str = "United Kingdom",
) -> list[str]:
    """One invoice line as text cells, a clean sale unless a field says otherwise."""
    return [str(invoice), stock, description, quantity, date, price, customer, country]


def write_csv(
    path: Path,
    rows: list[list[str]],
    *,
    header: list[str] = HEADER,
    delimiter: str = ",",
    encoding: str = "utf-8",
) -> Path:
    with path.open("w", newline="", encoding=encoding) as handle:
        writer = csv.writer(handle, delimiter=delimiter)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def write_xlsx(path: Path, sheets: dict[str, list[list]]) -> Path:
    workbook = openpyxl.Workbook()
    workbook.remove(workbook.active)
    for name, rows in sheets.items():
        sheet = workbook.create_sheet(name)
        for row in rows:
            sheet.append(row)
    workbook.save(path)
    return path


def forge_uncompressed_size(path: Path, member: str, size: int) -> Path:
    """Make the zip's headers claim that ``member`` inflates to ``size`` bytes (as a zip bomb would)."""
    data = bytearray(path.read_bytes())
    name = member.encode()
    # Central directory entries, then local file headers: signature and offsets of size, name length, name.
    for signature, size_at, length_at, name_at in ((b"PK\x01\x02", 24, 28, 46), (b"PK\x03\x04", 22, 26, 30)):
        position = data.find(signature)
        while position != -1:
            name_length = struct.unpack_from("<H", data, position + length_at)[0]
            if data[position + name_at : position + name_at + name_length] == name:
                struct.pack_into("<I", data, position + size_at, size)
            position = data.find(signature, position + 4)
    path.write_bytes(bytes(data))
    return path


@dataclass(frozen=True)
class Accepted:
    """A file whose lines are all ingested; ``expected`` holds each line's fate (``SALE`` or a reason)."""

    name: str
    write: Callable[[Path, int], Path]  # (folder, first invoice number) -> file
    expected: list[str | None]


@dataclass(frozen=True)
class Refused:
    """A source the run refuses; the error must contain every one of ``message``."""

    name: str
    write: Callable[[Path], Path]  # (folder) -> the source location (file or folder)
    message: tuple[str, ...]


def _extra_columns(folder: Path, n: int) -> Path:
    rows = [line(n + i) + ["checked by Ann", "B7"] for i in range(3)]
    return write_csv(folder / "extra_columns.csv", rows, header=HEADER + ["Notes", "Batch"])


def _header_variants(folder: Path, n: int) -> Path:
    header = [
        " InvoiceNo",
        "Stock Code ",
        "description",
        "QUANTITY",
        "Invoice_Date",
        " UnitPrice",
        "CustomerID",
        "Country  ",
    ]
    return write_csv(folder / "header_variants.csv", [line(n), line(n + 1)], header=header)


def _semicolons(folder: Path, n: int) -> Path:
    return write_csv(folder / "semicolons.csv", [line(n), line(n + 1, stock="22423")], delimiter=";")


def _latin1_pound(folder: Path, n: int) -> Path:
    return write_csv(
        folder / "latin1.csv", [line(n, description="MUG £5 SPECIAL"), line(n + 1)], encoding="latin-1"
    )


def _quoted_newlines(folder: Path, n: int) -> Path:
    return write_csv(folder / "quoted.csv", [line(n, description='RED, WHITE\nAND "BLUE" BAG'), line(n + 1)])


def _text_numbers(folder: Path, n: int) -> Path:
    rows = [line(n, quantity="12 pcs"), line(n + 1, price="1,50"), line(n + 2, quantity="1.5"), line(n + 3)]
    return write_csv(folder / "text_numbers.csv", rows)


def _two_date_formats(folder: Path, n: int) -> Path:
    rows = [
        line(n, date="2010-03-01 10:00:00"),
        line(n, stock="22423", date="3/1/2010 10:00"),
        line(n + 1, date="13/03/2010 10:00"),
    ]
    return write_csv(folder / "two_date_formats.csv", rows)


def _dates_out_of_range(folder: Path, n: int) -> Path:
    rows = [
        line(n, date="2099-01-01 10:00:00"),
        line(n + 1, date="2005-06-01 10:00:00"),
        line(n + 2, date="2008-12-31 23:59:00"),
        line(n + 3, date="2009-12-01 07:45:00"),
    ]
    return write_csv(folder / "dates_out_of_range.csv", rows)


def _negative_prices(folder: Path, n: int) -> Path:
    rows = [
        line(n, price="-1.00"),
        line(f"A{n}", stock="B", description="Adjust bad debt", price="-11062.06", customer=""),
        line(n + 1, price="0"),
    ]
    return write_csv(folder / "negative_prices.csv", rows)


def _extreme_quantities(folder: Path, n: int) -> Path:
    rows = [
        line(n, stock="23843", description="PAPER CRAFT , LITTLE BIRDIE", quantity="80995", price="2.08"),
        line(
            f"C{n}", stock="23843", description="PAPER CRAFT , LITTLE BIRDIE", quantity="-80995", price="2.08"
        ),
        line(n + 1, stock="23843", quantity="-80995", price="2.08"),
    ]
    return write_csv(folder / "extreme_quantities.csv", rows)


def _duplicated_lines(folder: Path, n: int) -> Path:
    return write_csv(folder / "duplicated_lines.csv", [line(n)] * 3 + [line(n, quantity="7")])


def _big_basket(folder: Path, n: int) -> Path:
    rows = [line(n, stock=str(10_000 + i), description=f"ITEM {i}") for i in range(5_000)]
    return write_csv(folder / "big_basket.csv", rows)


def _long_description(folder: Path, n: int) -> Path:
    return write_csv(folder / "long_description.csv", [line(n, description="LONG " * 2_000)])


def _header_only(folder: Path, n: int) -> Path:
    return write_csv(folder / "header_only.csv", [])


def _short_row(folder: Path, n: int) -> Path:
    path = write_csv(folder / "short_row.csv", [line(n)])
    with path.open("a", encoding="utf-8") as handle:
        handle.write(",".join(line(n + 1)[:7]) + "\n")
    return path


def _workbook_with_notes(folder: Path, n: int) -> Path:
    rows = [
        [n, "85123A", "HEART", 6, pd.Timestamp("2010-03-01 10:00").to_pydatetime(), 2.55, 13085, "EIRE"],
        [n + 1, 22423, "CAKESTAND", 2, 40238.5, 12.75, None, "EIRE"],
    ]
    return write_xlsx(
        folder / "workbook.xlsx", {"Notes": [["Exported by", "ops"]], "Year 2010-2011": [HEADER, *rows]}
    )


ACCEPTED = [
    Accepted("unknown extra columns", _extra_columns, [SALE] * 3),
    Accepted("header variants and stray spaces", _header_variants, [SALE] * 2),
    Accepted("';' delimiter", _semicolons, [SALE] * 2),
    Accepted("Latin-1 file with a £ sign", _latin1_pound, [SALE] * 2),
    Accepted("quoted fields with newlines, commas and quotes", _quoted_newlines, [SALE] * 2),
    Accepted(
        "quantity or price as text ('12 pcs', '1,50', '1.5')",
        _text_numbers,
        ["unparseable quantity", "unparseable price", "unparseable quantity", SALE],
    ),
    Accepted(
        "two date formats in one file (and a day-first date)",
        _two_date_formats,
        [SALE, SALE, "missing invoice date"],
    ),
    Accepted(
        "dates in the future or before 2009", _dates_out_of_range, ["invoice date out of range"] * 3 + [SALE]
    ),
    Accepted(
        "negative and zero prices",
        _negative_prices,
        ["non-positive price", "adjustment", "non-positive price"],
    ),
    Accepted(
        "extreme quantities (+-80,995)", _extreme_quantities, [SALE, "cancellation", "non-positive quantity"]
    ),
    Accepted("duplicated lines", _duplicated_lines, [SALE, "exact duplicate", "exact duplicate", SALE]),
    Accepted("5,000-line basket", _big_basket, [SALE] * 5_000),
    Accepted("10,000-character description", _long_description, [SALE]),
    Accepted("header only", _header_only, []),
    Accepted("row with a missing trailing field", _short_row, [SALE, "missing country"]),
    Accepted("workbook with a notes sheet and typed cells", _workbook_with_notes, [SALE, SALE]),
]


def _missing_column(folder: Path) -> Path:
    return write_csv(
        folder / "no_price.csv",
        [[*cells[:5], *cells[6:]] for cells in [line(1), line(2)]],
        header=HEADER[:5] + HEADER[6:],
    )


def _empty(folder: Path) -> Path:
    path = folder / "empty.csv"
    path.write_bytes(b"")
    return path


def _truncated_xlsx(folder: Path) -> Path:
    good = write_xlsx(folder / "whole.xlsx", {"Year 2010-2011": [HEADER] + [line(i) for i in range(200)]})
    path = folder / "truncated.xlsx"
    path.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    good.unlink()
    return path


def _no_matching_sheet(folder: Path) -> Path:
    return write_xlsx(folder / "summary.xlsx", {"Summary": [["Month", "Revenue"], ["Dec", 1.0]]})


def _sheet_missing_column(folder: Path) -> Path:
    rows = [HEADER[:6] + ["Country"], *[line(i)[:6] + ["UK"] for i in range(3)]]
    return write_xlsx(folder / "no_customer.xlsx", {"Year 2010-2011": rows})


def _too_many_fields(folder: Path) -> Path:
    return write_csv(folder / "ragged.csv", [line(1), line(2) + ["stray"], line(3)])


def _unclosed_quote(folder: Path) -> Path:
    path = folder / "unclosed.csv"
    path.write_text(
        ",".join(HEADER) + '\n1,85123A,"HEART,6,2010-03-01 10:00:00,2.55,13085,UK\n', encoding="utf-8"
    )
    return path


def _zip_bomb(folder: Path) -> Path:
    path = write_xlsx(folder / "bomb.xlsx", {"Year 2010-2011": [HEADER, line(1)]})
    return forge_uncompressed_size(path, "xl/worksheets/sheet1.xml", 3_000_000_000)


def _lying_zip_bomb(folder: Path) -> Path:
    small = write_xlsx(folder / "small.xlsx", {"Year 2010-2011": [HEADER, line(1)]})
    path = folder / "lying_bomb.xlsx"
    with zipfile.ZipFile(small) as source, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as target:
        for member in source.infolist():
            content = source.read(member)
            if member.filename == "xl/worksheets/sheet1.xml":
                # 20 MB of blanks compress to about 20 kB: a bomb in miniature.
                content = content.replace(b"<sheetData>", b" " * 20_000_000 + b"<sheetData>")
            target.writestr(member.filename, content)
    small.unlink()
    return forge_uncompressed_size(path, "xl/worksheets/sheet1.xml", 5_000)


def _not_a_workbook(folder: Path) -> Path:
    path = folder / "page.xlsx"
    path.write_bytes(b"<html><body>Service unavailable</body></html>")
    return path


def _mixed_folder(folder: Path) -> Path:
    drop = folder / "drop"
    drop.mkdir()
    write_csv(drop / "a_good.csv", [line(i) for i in range(5)])
    write_csv(drop / "b_bad.csv", [line(9)[:5] + line(9)[6:]], header=HEADER[:5] + HEADER[6:])
    write_csv(drop / "c_good.csv", [line(20 + i) for i in range(5)])
    return drop


def _unsupported_type(folder: Path) -> Path:
    path = folder / "lines.txt"
    path.write_text("Invoice,StockCode\n1,A\n")
    return path


REFUSED = [
    Refused(
        "missing required column",
        _missing_column,
        ("no_price.csv", "missing required column(s) ['Price']", "expected"),
    ),
    Refused("empty file", _empty, ("empty.csv", "empty file", "expected a header")),
    Refused("truncated .xlsx", _truncated_xlsx, ("truncated.xlsx", "not a valid .xlsx")),
    Refused("not a workbook (HTML saved as .xlsx)", _not_a_workbook, ("page.xlsx", "not a valid .xlsx")),
    Refused(
        "workbook with no matching sheet",
        _no_matching_sheet,
        ("summary.xlsx", "no sheet has the invoice header", "'Summary'"),
    ),
    Refused(
        "data sheet missing a column",
        _sheet_missing_column,
        ("no_customer.xlsx", "sheet 'Year 2010-2011'", "['Customer ID']"),
    ),
    Refused(
        "line with too many fields", _too_many_fields, ("ragged.csv", "Expected 8 fields in line 3, saw 9")
    ),
    Refused("unclosed quote", _unclosed_quote, ("unclosed.csv", "EOF inside string")),
    Refused("zip bomb (workbook claiming 3 GB uncompressed)", _zip_bomb, ("bomb.xlsx", "possible zip bomb")),
    Refused(
        "zip bomb lying about its size (inflates beyond what it declares)",
        _lying_zip_bomb,
        ("lying_bomb.xlsx", "sheet 'Year 2010-2011'", "larger than its declared uncompressed size"),
    ),
    Refused("unsupported file type", _unsupported_type, ("lines.txt", "unsupported file type '.txt'")),
    Refused(
        "folder mixing good and bad files",
        _mixed_folder,
        ("b_bad.csv", "missing required column(s) ['Price']"),
    ),
]


def run(location: Path, database: Path) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        FOUNDATION,
        resources={
            "io_manager": WarehouseIOManager(database=str(database)),
            "warehouse": Warehouse(database=str(database)),
            "invoice_source": InvoiceSource(location=str(location)),
            "engine": ComputeEngine(),
        },
        raise_on_error=False,
    )


def failure_text(result: dg.ExecuteInProcessResult) -> tuple[list[str], str]:
    """The failed steps and the whole error chain of their failures."""
    steps, texts = [], []
    for event in result.get_step_failure_events():
        steps.append(event.step_key)
        error = event.event_specific_data.error
        while error is not None:
            texts.append(error.message)
            error = error.cause
    return steps, "\n".join(texts)


@pytest.fixture(scope="module")
def accepted_run(tmp_path_factory):
    """One run over a folder holding every accepted case; returns the files and the two staging tables."""
    root = tmp_path_factory.mktemp("accepted")
    folder = root / "drop"
    folder.mkdir()
    files = {case.name: case.write(folder, 700_000 + 10_000 * number) for number, case in enumerate(ACCEPTED)}
    database = root / "retail.duckdb"
    result = run(folder, database)
    with duckdb.connect(str(database), read_only=True) as conn:
        cleaned = conn.execute("SELECT * FROM staging.cleaned_transactions").df()
        rejected = conn.execute("SELECT * FROM staging.rejected_rows").df()
        manifest = conn.execute("SELECT * FROM raw.source_files").df()
    return result, files, cleaned, rejected, manifest


def test_accepted_corpus_run_succeeds_and_reconciles(accepted_run):
    result, files, cleaned, rejected, manifest = accepted_run
    assert result.success
    evaluations = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert evaluations["reconciles_with_raw"] and all(evaluations.values())
    assert sorted(manifest["source_file"]) == sorted(str(path.resolve()) for path in files.values())
    assert len(cleaned) + len(rejected) == sum(len(case.expected) for case in ACCEPTED)


@pytest.mark.parametrize("case", ACCEPTED, ids=[case.name for case in ACCEPTED])
def test_accepted_case_lines_land_where_expected(case, accepted_run):
    _, files, cleaned, rejected, manifest = accepted_run
    source = str(files[case.name].resolve())
    sales = cleaned.loc[cleaned["source_file"] == source]
    refused = rejected.loc[rejected["source_file"] == source]
    outcome = {row: SALE for row in sales["source_row"]}
    outcome.update(zip(refused["source_row"], refused["reason"], strict=True))
    assert len(outcome) == len(sales) + len(refused), "a line is in both tables or twice in one"
    expected = dict(enumerate(case.expected, start=2))
    if case.name == "workbook with a notes sheet and typed cells":
        assert set(sales["source_sheet"]) == {"Year 2010-2011"}
    assert outcome == expected
    assert manifest.loc[manifest["source_file"] == source, "rows"].item() == len(case.expected)


def test_accepted_values_survive_intact(accepted_run):
    _, files, cleaned, _, _ = accepted_run

    def sales(name: str) -> pd.DataFrame:
        return cleaned.loc[cleaned["source_file"] == str(files[name].resolve())].sort_values("source_row")

    assert sales("Latin-1 file with a £ sign")["description"].iloc[0] == "MUG £5 SPECIAL"
    assert sales("quoted fields with newlines, commas and quotes")["description"].iloc[0] == (
        'RED, WHITE\nAND "BLUE" BAG'
    )
    assert sales("10,000-character description")["description"].str.len().item() == 9_999  # stripped
    dates = sales("two date formats in one file (and a day-first date)")["invoice_date"]
    assert dates.tolist() == [pd.Timestamp("2010-03-01 10:00")] * 2
    extreme = sales("extreme quantities (+-80,995)")
    assert extreme["quantity"].item() == 80_995 and extreme["revenue"].item() == pytest.approx(80_995 * 2.08)
    basket = sales("5,000-line basket")
    assert len(set(basket["invoice"])) == 1 and basket["stock_code"].nunique() == 5_000
    workbook = sales("workbook with a notes sheet and typed cells")
    assert workbook["stock_code"].tolist() == ["85123A", "22423"]
    assert workbook["invoice_date"].tolist() == [
        pd.Timestamp("2010-03-01 10:00"),
        pd.Timestamp("2010-03-01 12:00"),
    ]
    assert workbook["customer_id"].isna().tolist() == [False, True]


@pytest.fixture(scope="module")
def good_warehouse(tmp_path_factory) -> Path:
    """A warehouse built from good lines: what every refused run must leave untouched."""
    root = tmp_path_factory.mktemp("good")
    source = write_csv(root / "good.csv", [line(600_000 + i // 3, stock=str(20_000 + i)) for i in range(300)])
    database = root / "retail.duckdb"
    assert run(source, database).success
    return database


@pytest.mark.parametrize("case", REFUSED, ids=[case.name for case in REFUSED])
def test_refused_case_names_the_problem_and_changes_nothing(case, good_warehouse, tmp_path):
    database = tmp_path / "retail.duckdb"
    shutil.copy(good_warehouse, database)
    before = checksums(database)
    source_dir = tmp_path / "source"
    source_dir.mkdir()
    result = run(case.write(source_dir), database)
    assert not result.success
    steps, text = failure_text(result)
    assert steps == ["raw_invoices"]
    for part in case.message:
        assert part in text, f"{part!r} not in the error:\n{text}"
    assert result.get_asset_materialization_events() == []
    assert checksums(database) == before


def test_mixed_folder_error_blames_only_the_bad_file(tmp_path):
    folder = _mixed_folder(tmp_path)
    steps, text = failure_text(run(folder, tmp_path / "retail.duckdb"))
    assert steps == ["raw_invoices"] and "b_bad.csv" in text
    assert "a_good.csv" not in text and "c_good.csv" not in text


def test_a_file_repeating_ingested_lines_does_not_double_sales(tmp_path):
    folder = tmp_path / "drop"
    folder.mkdir()
    rows = [line(800_000 + i // 4, stock=str(30_000 + i)) for i in range(40)]
    write_csv(folder / "monday.csv", rows)
    database = tmp_path / "retail.duckdb"
    assert run(folder, database).success
    write_csv(folder / "monday_again.csv", rows[10:30] + [line(800_100)])
    assert run(folder, database).success
    with duckdb.connect(str(database), read_only=True) as conn:
        sales, revenue = conn.execute(
            "SELECT count(*), sum(revenue) FROM staging.cleaned_transactions"
        ).fetchone()
        duplicates = conn.execute(
            "SELECT count(*) FROM staging.rejected_rows WHERE reason = 'exact duplicate'"
        ).fetchone()[0]
    assert (sales, duplicates) == (41, 20)
    assert revenue == pytest.approx(41 * 6 * 2.55)
