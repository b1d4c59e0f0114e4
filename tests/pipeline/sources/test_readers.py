import datetime as dt
import hashlib
import logging
import zipfile
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pytest

from pipeline.sources import readers
from pipeline.sources.contract import UCI_HEADER
from pipeline.sources.readers import RAW_COLUMNS, SourceFormatError
from tests.conftest import REAL_PARQUET, SAMPLE_CSV, SAMPLE_XLSX, require

II_HEADER = list(UCI_HEADER)
OLD_HEADER = [
    "InvoiceNo",
    "StockCode",
    "Description",
    "Quantity",
    "InvoiceDate",
    "UnitPrice",
    "CustomerID",
    "Country",
]
BUSINESS = RAW_COLUMNS[:8]
LINEAGE = RAW_COLUMNS[8:]

# Three lines as the UCI workbook stores them: all-digit codes as numbers, Customer ID as a float.
UCI_ROWS = [
    [
        489434.0,
        85048.0,
        "15CM CHRISTMAS GLASS BALL 20 LIGHTS",
        12.0,
        dt.datetime(2009, 12, 1, 7, 45),
        6.95,
        13085.0,
        "United Kingdom",
    ],
    [
        489434.0,
        "79323P",
        " PINK CHERRY LIGHTS ",
        12.0,
        dt.datetime(2009, 12, 1, 7, 45),
        6.75,
        13085.0,
        "United Kingdom",
    ],
    ["C489449", "22087", None, -12.0, dt.datetime(2009, 12, 1, 10, 33), 2.95, None, "Australia"],
]
CSV_LINES = [
    "489434,85048,15CM CHRISTMAS GLASS BALL 20 LIGHTS,12,2009-12-01 07:45:00,6.95,13085.0,United Kingdom",
    "489434,79323P, PINK CHERRY LIGHTS ,12,2009-12-01 07:45:00,6.75,13085.0,United Kingdom",
    "C489449,22087,,-12,2009-12-01 10:33:00,2.95,,Australia",
]


def expected_business() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "invoice": ["489434", "489434", "C489449"],
            "stock_code": ["85048", "79323P", "22087"],
            "description": ["15CM CHRISTMAS GLASS BALL 20 LIGHTS", "PINK CHERRY LIGHTS", None],
            "quantity": pd.array([12, 12, -12], dtype="Int64"),
            "invoice_date": pd.to_datetime(["2009-12-01 07:45", "2009-12-01 07:45", "2009-12-01 10:33"]),
            "price": [6.95, 6.75, 2.95],
            "customer_id": pd.array([13085, 13085, None], dtype="Int64"),
            "country": ["United Kingdom", "United Kingdom", "Australia"],
        }
    )


def assert_contract(frame: pd.DataFrame) -> None:
    assert list(frame.columns) == RAW_COLUMNS
    assert frame["invoice"].dtype == object and frame["stock_code"].dtype == object
    assert frame["description"].dtype == object and frame["country"].dtype == object
    assert frame["quantity"].dtype == "Int64" and frame["customer_id"].dtype == "Int64"
    assert frame["invoice_date"].dtype == "datetime64[ns]"
    assert frame["price"].dtype == "float64"
    assert frame["source_row"].dtype == "int64"
    assert isinstance(frame.index, pd.RangeIndex) and frame.index.start == 0


def write_xlsx(path: Path, sheets: dict[str, list[list]], *, start_row: int = 1) -> Path:
    workbook = openpyxl.Workbook()
    workbook.remove(workbook.active)
    for name, rows in sheets.items():
        sheet = workbook.create_sheet(name)
        for offset, row in enumerate(rows):
            for column, value in enumerate(row, start=1):
                if value is not None:
                    sheet.cell(row=start_row + offset, column=column, value=value)
    workbook.save(path)
    return path


def write_csv(path: Path, lines: list[str], *, header=II_HEADER, sep=",", encoding="utf-8") -> Path:
    path.write_bytes(("\n".join([sep.join(header), *lines]) + "\n").encode(encoding))
    return path


@pytest.fixture(scope="module")
def sample_xlsx() -> pd.DataFrame:
    return readers.read_file(require(SAMPLE_XLSX))


@pytest.fixture(scope="module")
def sample_csv() -> pd.DataFrame:
    return readers.read_file(require(SAMPLE_CSV))


@pytest.fixture(scope="module")
def parquet_as_stored() -> pd.DataFrame:
    return pd.read_parquet(require(REAL_PARQUET))


def test_sample_xlsx_reads_both_sheets_with_numbers_normalized(sample_xlsx):
    assert_contract(sample_xlsx)
    assert sample_xlsx["source_sheet"].value_counts().to_dict() == {
        "Year 2009-2010": 5000,
        "Year 2010-2011": 99,
    }
    first = sample_xlsx.iloc[0]
    assert (first["invoice"], first["stock_code"], first["customer_id"]) == ("489434", "85048", 13085)
    for column in ("invoice", "stock_code"):
        assert not sample_xlsx[column].str.endswith(".0").any()
        assert sample_xlsx[column].map(type).eq(str).all()
    assert sample_xlsx["source_file"].unique().tolist() == [str(SAMPLE_XLSX.resolve())]
    second = sample_xlsx[sample_xlsx["source_sheet"] == "Year 2010-2011"]
    assert second["source_row"].tolist() == list(range(2, 101))
    assert second.iloc[0]["invoice"] == "536365" and second.iloc[0]["stock_code"] == "85123A"


def test_sample_csv_reads_every_line(sample_csv):
    assert_contract(sample_csv)
    assert len(sample_csv) == 20_000
    assert sample_csv["source_sheet"].isna().all()
    assert sample_csv["source_row"].tolist() == list(range(2, 20_002))
    assert sample_csv["invoice_date"].notna().all() and sample_csv["quantity"].notna().all()


def test_parquet_normalization_matches_stored_values(real_raw, parquet_as_stored):
    raw = parquet_as_stored
    assert_contract(real_raw)
    assert len(real_raw) == 525_461
    assert real_raw["source_row"].tolist() == list(range(2, 525_463))
    assert real_raw["invoice"].tolist() == raw["Invoice"].str.strip().tolist()
    assert real_raw["stock_code"].tolist() == raw["StockCode"].str.strip().tolist()
    stripped = raw["Description"].str.strip()
    expected_description = stripped.where(stripped.notna() & stripped.ne(""), None)
    assert real_raw["description"].tolist() == expected_description.tolist()
    assert (real_raw["quantity"].to_numpy(dtype="int64") == raw["Quantity"].to_numpy()).all()
    assert (real_raw["invoice_date"].to_numpy() == raw["InvoiceDate"].to_numpy()).all()
    np.testing.assert_array_equal(real_raw["price"].to_numpy(), raw["Price"].to_numpy())
    assert real_raw["customer_id"].isna().sum() == raw["Customer ID"].isna().sum() == 107_927
    known = raw["Customer ID"].notna().to_numpy()
    assert (
        real_raw["customer_id"].to_numpy()[known].astype("int64") == raw["Customer ID"].to_numpy()[known]
    ).all()
    assert real_raw["country"].tolist() == raw["Country"].tolist()


def test_same_lines_agree_across_xlsx_csv_and_parquet(sample_xlsx, sample_csv, real_raw):
    from_xlsx = sample_xlsx[sample_xlsx["source_sheet"] == "Year 2009-2010"].head(5000).reset_index(drop=True)
    from_csv = sample_csv.head(5000)
    from_parquet = real_raw.head(5000)
    pd.testing.assert_frame_equal(from_xlsx[BUSINESS], from_csv[BUSINESS])
    pd.testing.assert_frame_equal(from_xlsx[BUSINESS], from_parquet[BUSINESS])
    assert (
        from_xlsx["source_row"].tolist()
        == from_csv["source_row"].tolist()
        == from_parquet["source_row"].tolist()
    )


@pytest.mark.parametrize(
    "header",
    [
        II_HEADER,
        OLD_HEADER,
        [
            " invoice ",
            "stock code",
            "DESCRIPTION",
            "quantity",
            "Invoice_Date",
            "price ",
            " customer id ",
            "country",
        ],
        [
            "Invoice No",
            "Stock_Code",
            "description",
            "QUANTITY",
            "invoice date",
            "Unit Price",
            "Customer_ID",
            "COUNTRY",
        ],
        BUSINESS,
    ],
)
def test_header_variants_give_the_same_frame(header):
    frame = pd.DataFrame(UCI_ROWS, columns=header)
    before = frame.copy()
    result = readers.normalize_frame(frame, source_file="in-memory", source_sheet="Year 2009-2010")
    assert_contract(result)
    pd.testing.assert_frame_equal(result[BUSINESS], expected_business())
    assert result["source_row"].tolist() == [2, 3, 4]
    assert result["source_sheet"].eq("Year 2009-2010").all() and result["source_file"].eq("in-memory").all()
    pd.testing.assert_frame_equal(frame, before)


def test_normalize_ignores_the_input_index_and_honours_first_row():
    frame = pd.DataFrame(UCI_ROWS, columns=II_HEADER, index=[30, 10, 20])
    result = readers.normalize_frame(frame, source_file="x", source_sheet=None, first_row=7)
    pd.testing.assert_frame_equal(result[BUSINESS], expected_business())
    assert result["source_row"].tolist() == [7, 8, 9] and result["source_sheet"].isna().all()


def test_unknown_columns_are_ignored_and_reported(caplog):
    frame = pd.DataFrame(UCI_ROWS, columns=II_HEADER).assign(Discount=0.1, Notes="x")
    with caplog.at_level(logging.WARNING, logger="pipeline.sources.readers"):
        result = readers.normalize_frame(frame, source_file="f.csv", source_sheet=None)
    assert list(result.columns) == RAW_COLUMNS
    (message,) = result.attrs[readers.WARNINGS_ATTR]
    assert "Discount" in message and "Notes" in message and "f.csv" in message
    assert message in caplog.text


def test_two_columns_for_one_field_is_an_error():
    frame = pd.DataFrame(UCI_ROWS, columns=II_HEADER).assign(UnitPrice=1.0)
    with pytest.raises(SourceFormatError, match="price"):
        readers.normalize_frame(frame, source_file="f.csv", source_sheet=None)


def test_unparseable_values_become_missing_and_no_row_is_dropped():
    frame = pd.DataFrame(
        {
            "Invoice": ["1", "2", "3", "4", "  "],
            "StockCode": ["A", "B", "C", "D", None],
            "Description": ["x", "  ", None, "y", None],
            "Quantity": ["12 pcs", "12.5", "", "1e3", None],
            "InvoiceDate": ["2009-13-01 07:45:00", "yesterday", "", "2009-12-01", None],
            "Price": ["1,50", "abc", "inf", "1.50", None],
            "Customer ID": ["13085.5", "x", "", "13085", None],
            "Country": ["UK", "UK", "UK", " UK ", None],
        }
    )
    result = readers.normalize_frame(frame, source_file="x", source_sheet=None)
    assert len(result) == 5
    assert result["invoice"].tolist() == ["1", "2", "3", "4", None]
    assert result["description"].tolist() == ["x", None, None, "y", None]
    assert (
        result["quantity"].tolist()[:4] == [pd.NA, pd.NA, pd.NA, 1000] and result["quantity"].isna().iloc[4]
    )
    assert result["invoice_date"].isna().tolist() == [True, True, True, False, True]
    assert result["price"].isna().tolist() == [True, True, True, False, True]
    assert result["customer_id"].isna().tolist() == [True, True, True, False, True]
    assert result["country"].tolist() == ["UK", "UK", "UK", "UK", None]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2009-12-01 07:45:00", "2009-12-01 07:45"),
        ("2009-12-01 07:45", "2009-12-01 07:45"),
        ("12/1/2009 7:45", "2009-12-01 07:45"),
        ("12/01/2009 07:45:30", "2009-12-01 07:45:30"),
        ("12/1/10 8:26", "2010-12-01 08:26"),
        ("13/1/2009 7:45", None),  # day-first: never guessed
        ("01.12.2009 07:45", None),
    ],
)
def test_text_dates_use_explicit_formats(text, expected):
    frame = pd.DataFrame([["1", "A", "d", "1", text, "1.0", "1", "UK"]], columns=II_HEADER)
    parsed = readers.normalize_frame(frame, source_file="x", source_sheet=None)["invoice_date"].iloc[0]
    assert (pd.isna(parsed) and expected is None) or parsed == pd.Timestamp(expected)


def test_workbook_cells_of_mixed_types(tmp_path):
    rows = [
        [489434, 85123, "A", 6, dt.datetime(2010, 12, 1, 8, 26), 2.55, 17850, "UK"],
        ["489434.0", "85123.0", "B", "6", "2010-12-01 08:26:00", "2.55", "17850.0", "UK"],
        [489434.0, 85123.0, "C", 6.0, 40513.35138888889, 2.55, 17850.0, "UK"],
        [489435, "85123A", "D", 6, dt.datetime(2010, 12, 2), 2.55, None, "UK"],
    ]
    path = write_xlsx(tmp_path / "mixed.xlsx", {"Sheet": [II_HEADER, *rows]})
    result = readers.read_file(path)
    assert result["invoice"].tolist() == ["489434"] * 3 + ["489435"]
    assert result["stock_code"].tolist() == ["85123"] * 3 + ["85123A"]
    assert result["quantity"].tolist() == [6, 6, 6, 6]
    assert result["customer_id"].tolist()[:3] == [17850] * 3 and pd.isna(result["customer_id"].iloc[3])
    assert result["invoice_date"].tolist() == [pd.Timestamp("2010-12-01 08:26")] * 3 + [
        pd.Timestamp("2010-12-02")
    ]


def test_workbook_source_rows_are_spreadsheet_rows(tmp_path):
    # Header on row 3, a blank row 5 between lines: rows 4 and 6 hold data.
    path = write_xlsx(
        tmp_path / "offset.xlsx", {"Data": [II_HEADER, UCI_ROWS[0], [None] * 8, UCI_ROWS[1]]}, start_row=3
    )
    result = readers.read_file(path)
    assert result["source_row"].tolist() == [4, 6]
    sheet = openpyxl.load_workbook(path)["Data"]
    assert [sheet.cell(row=row, column=2).value for row in result["source_row"]] == [85048, "79323P"]
    assert any("blank row" in message for message in result.attrs[readers.WARNINGS_ATTR])


def test_workbook_skips_unrelated_sheets_and_errors_on_broken_data_sheet(tmp_path):
    notes = [["Note", "Author"], ["exported from the shop", "ops"]]
    path = write_xlsx(tmp_path / "wb.xlsx", {"Notes": notes, "Lines": [II_HEADER, *UCI_ROWS]})
    result = readers.read_file(path)
    pd.testing.assert_frame_equal(result[BUSINESS], expected_business())
    assert result["source_sheet"].eq("Lines").all()
    assert any("'Notes'" in message for message in result.attrs[readers.WARNINGS_ATTR])

    broken = write_xlsx(
        tmp_path / "broken.xlsx",
        {"Lines": [II_HEADER[:6] + ["Country"], *[r[:6] + [r[7]] for r in UCI_ROWS]]},
    )
    with pytest.raises(SourceFormatError) as error:
        readers.read_file(broken)
    message = str(error.value)
    assert str(broken.resolve()) in message and "'Lines'" in message and "Customer ID" in message
    assert "expected" in message and "InvoiceDate" in message


def test_workbook_without_matching_sheet_names_file_and_sheets(tmp_path):
    path = write_xlsx(tmp_path / "other.xlsx", {"Summary": [["Month", "Revenue"], ["Dec", 1.0]], "Empty": []})
    with pytest.raises(SourceFormatError) as error:
        readers.read_file(path)
    message = str(error.value)
    assert str(path.resolve()) in message and "'Summary'" in message and "'Empty'" in message


def test_header_only_files_give_zero_typed_rows(tmp_path):
    for path in (write_csv(tmp_path / "h.csv", []), write_xlsx(tmp_path / "h.xlsx", {"Sheet": [II_HEADER]})):
        result = readers.read_file(path)
        assert len(result) == 0
        assert_contract(result)
    assert_contract(readers.empty_raw_frame())


@pytest.mark.parametrize("content", [b"", b"\n\n  \n"])
def test_empty_csv_is_an_error(tmp_path, content):
    path = tmp_path / "empty.csv"
    path.write_bytes(content)
    with pytest.raises(SourceFormatError, match="empty"):
        readers.read_file(path)


def test_missing_csv_column_names_file_and_column(tmp_path):
    path = write_csv(
        tmp_path / "no_country.csv", [line.rsplit(",", 1)[0] for line in CSV_LINES], header=II_HEADER[:7]
    )
    with pytest.raises(SourceFormatError) as error:
        readers.read_file(path)
    message = str(error.value)
    assert str(path.resolve()) in message and "['Country']" in message and "Customer ID" in message


def test_csv_with_semicolons_latin1_and_quoted_newlines(tmp_path):
    reference = readers.read_file(write_csv(tmp_path / "plain.csv", CSV_LINES))
    pd.testing.assert_frame_equal(reference[BUSINESS], expected_business())
    semicolon = readers.read_file(
        write_csv(tmp_path / "semi.csv", [x.replace(",", ";") for x in CSV_LINES], sep=";")
    )
    pd.testing.assert_frame_equal(semicolon[BUSINESS], expected_business())

    lines = [
        '489434;85048;"GLASS BALL £5; BOXED";12;2009-12-01 07:45:00;6.95;13085;United Kingdom',
        '489435;22087;"TWO\nLINE ""NOTE""";1;12/1/2009 8:00;0.85;;France',
        "489436;22088;PAPER;1;12/1/2009 9:00;0.85;;France",
    ]
    for encoding in ("latin-1", "cp1252", "utf-8-sig"):
        result = readers.read_file(write_csv(tmp_path / f"{encoding}.csv", lines, sep=";", encoding=encoding))
        assert result["description"].tolist() == ["GLASS BALL £5; BOXED", 'TWO\nLINE "NOTE"', "PAPER"]
        # A record spanning two text lines is one spreadsheet row.
        assert result["source_row"].tolist() == [2, 3, 4]
        assert (
            result["invoice_date"].tolist()
            == pd.to_datetime(["2009-12-01 07:45", "2009-12-01 08:00", "2009-12-01 09:00"]).tolist()
        )


def test_csv_blank_lines_keep_true_row_numbers(tmp_path):
    path = write_csv(tmp_path / "gaps.csv", [CSV_LINES[0], "", ",,,,,,,", CSV_LINES[1]])
    result = readers.read_file(path)
    assert result["source_row"].tolist() == [2, 5]
    assert result["stock_code"].tolist() == ["85048", "79323P"]


def test_corrupted_workbooks_name_the_file(tmp_path):
    good = write_xlsx(tmp_path / "good.xlsx", {"Sheet": [II_HEADER, *UCI_ROWS * 50]})
    data = good.read_bytes()
    truncated = tmp_path / "truncated.xlsx"
    truncated.write_bytes(data[: len(data) // 2])
    garbage = tmp_path / "garbage.xlsx"
    garbage.write_bytes(b"<html>not a workbook</html>")
    foreign_zip = tmp_path / "foreign.xlsx"
    with zipfile.ZipFile(foreign_zip, "w") as archive:
        archive.writestr("readme.txt", "hello")
    damaged = tmp_path / "damaged.xlsx"
    with zipfile.ZipFile(good) as source, zipfile.ZipFile(damaged, "w", zipfile.ZIP_STORED) as target:
        for member in source.infolist():
            content = source.read(member)
            if member.filename.startswith("xl/worksheets/"):
                content = content[: len(content) // 2]
            target.writestr(member.filename, content)
    for path in (truncated, garbage, foreign_zip, damaged):
        with pytest.raises(SourceFormatError, match=str(path.resolve())):
            readers.read_file(path)


def test_zip_bomb_guard(tmp_path):
    path = write_xlsx(tmp_path / "book.xlsx", {"Sheet": [II_HEADER, *UCI_ROWS]})
    assert len(readers.read_file(path)) == 3
    with pytest.raises(SourceFormatError, match="zip bomb"):
        readers.read_file(path, max_uncompressed_bytes=1_000)


def test_folder_mixing_formats(tmp_path):
    folder = tmp_path / "drop"
    folder.mkdir()
    write_csv(folder / "b_lines.csv", CSV_LINES)
    write_xlsx(folder / "a_book.xlsx", {"Year 2009-2010": [II_HEADER, *UCI_ROWS]})
    as_stored = pd.DataFrame(UCI_ROWS, columns=OLD_HEADER).astype({"InvoiceNo": str, "StockCode": str})
    as_stored.to_parquet(folder / "c_old.parquet")
    (folder / "notes.txt").write_text("ignore me")
    write_csv(folder / ".hidden.csv", CSV_LINES)
    (folder / "~$a_book.xlsx").write_bytes(b"lock")
    (folder / "sub").mkdir()
    write_csv(folder / "sub" / "nested.csv", CSV_LINES)

    files = readers.list_source_files(folder)
    assert [f.name for f in files] == ["a_book.xlsx", "b_lines.csv", "c_old.parquet"]
    result = readers.read_source(folder)
    assert_contract(result)
    assert len(result) == 9
    for position, file in enumerate(files):
        part = result.iloc[3 * position : 3 * position + 3].reset_index(drop=True)
        pd.testing.assert_frame_equal(part[BUSINESS], expected_business())
        assert part["source_file"].eq(str(file.resolve())).all()
        assert part["source_row"].tolist() == [2, 3, 4]
    assert result["source_sheet"].tolist() == ["Year 2009-2010"] * 3 + [None] * 6

    assert readers.list_source_files(folder / "b_lines.csv") == [folder / "b_lines.csv"]
    with pytest.raises(SourceFormatError, match="unsupported"):
        readers.list_source_files(folder / "notes.txt")
    with pytest.raises(FileNotFoundError):
        readers.list_source_files(folder / "absent")
    (tmp_path / "void").mkdir()
    with pytest.raises(SourceFormatError, match="no"):
        readers.read_source(tmp_path / "void")


def test_file_fingerprint_is_streamed_sha256(tmp_path):
    path = tmp_path / "blob.bin"
    content = bytes(range(256)) * 1000
    path.write_bytes(content)
    assert readers.file_fingerprint(path, chunk_size=1000) == hashlib.sha256(content).hexdigest()
    assert readers.file_fingerprint(path) == readers.file_fingerprint(path, chunk_size=7)
    path.write_bytes(content + b"x")
    assert readers.file_fingerprint(path) != hashlib.sha256(content).hexdigest()


def test_parquet_text_read_with_arrow_normalizes_like_objects(tmp_path):
    # Parquet text stays Arrow-backed while it is normalized; the result must equal normalizing the same
    # cells as Python objects (what pd.read_parquet hands over), blanks, spreadsheet numbers and text numbers
    # included, and come out in the contract's dtypes.
    cells = pd.DataFrame(
        {
            "Invoice": ["489434.0", " 489435 ", None, "C489436", ""],
            "StockCode": ["85123A", " 85123a", "22138.00", None, "  "],
            "Description": ["WHITE HEART", None, "  ", "BALL", "CHAIR"],
            "Quantity": ["6", "12 pcs", None, "-1", "3"],
            "InvoiceDate": ["2010-03-01 10:00:00", "12/1/2009 07:45", None, "bad", "2010-03-02"],
            "Price": ["2.55", "1,50", None, "3", "0.85"],
            "Customer ID": ["13085.0", None, "17850", "x", "13085"],
            "Country": ["United Kingdom", " France ", None, "", "EIRE"],
        }
    )
    path = tmp_path / "lines.parquet"
    cells.to_parquet(path)
    read = readers.read_file(path)
    assert_contract(read)
    source_file = str(path.resolve())
    expected = readers.normalize_frame(pd.read_parquet(path), source_file=source_file, source_sheet=None)
    pd.testing.assert_frame_equal(read, expected)
    assert read["invoice"].tolist()[:2] == ["489434", "489435"] and read["stock_code"].tolist()[2] == "22138"


def as_python_objects(frame: pd.DataFrame) -> pd.DataFrame:
    """Arrow-backed text columns as object columns of str and None, for comparison with the default."""
    out = frame.copy()
    for column in out.columns:
        if isinstance(out[column].dtype, pd.ArrowDtype):
            values = out[column].astype(object)
            out[column] = values.where(values.notna(), None).astype(object)
    return out


@pytest.mark.parametrize("kind", ["xlsx", "csv", "parquet"])
def test_arrow_text_holds_the_same_values(tmp_path, kind):
    if kind == "xlsx":
        sheets = {"Year 2010": [II_HEADER, *UCI_ROWS], "Year 2009": [II_HEADER, *UCI_ROWS[:1]]}
        path = write_xlsx(tmp_path / "book.xlsx", sheets)
    elif kind == "csv":
        path = write_csv(tmp_path / "lines.csv", CSV_LINES)
    else:
        path = tmp_path / "lines.parquet"
        pd.read_csv(write_csv(tmp_path / "lines.csv", CSV_LINES), dtype=str).to_parquet(path)
    plain, arrow = readers.read_file(path), readers.read_file(path, arrow_text=True)
    text = ["invoice", "stock_code", "description", "country", "source_file", "source_sheet"]
    assert all(isinstance(arrow[column].dtype, pd.ArrowDtype) for column in text)
    pd.testing.assert_frame_equal(as_python_objects(arrow), plain)
