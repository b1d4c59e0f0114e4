import pandas as pd

from pipeline.sources import ingest
from pipeline.sources.contract import RAW_COLUMNS


def lines(source_file: str, n: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "invoice": [str(500000 + i) for i in range(n)],
            "stock_code": "85123A",
            "description": "WHITE HANGING HEART T-LIGHT HOLDER",
            "quantity": pd.array([6] * n, dtype="Int64"),
            "invoice_date": pd.Timestamp("2010-01-04 10:00"),
            "price": 2.55,
            "customer_id": pd.array([17850] * n, dtype="Int64"),
            "country": "United Kingdom",
            "source_file": source_file,
            "source_sheet": None,
            "source_row": range(2, n + 2),
        }
    )[RAW_COLUMNS]


def test_first_run_reads_everything():
    plan = ingest.plan_ingest([("a", "1"), ("b", "2")], None)
    assert plan.to_read == ["a", "b"] and plan.to_keep == [] and plan.dropped == []


def test_unchanged_parts_are_kept_changed_and_new_are_read():
    manifest = pd.DataFrame(
        {"source_file": ["a", "b", "gone"], "fingerprint": ["1", "2", "3"], "rows": [1, 1, 1],
         "ingested_at": pd.Timestamp("2026-01-01")}
    )
    plan = ingest.plan_ingest([("a", "1"), ("b", "changed"), ("c", "4")], manifest)
    assert plan.to_keep == ["a"]
    assert plan.to_read == ["b", "c"]
    assert plan.dropped == ["gone"]


def test_assemble_reuses_kept_lines_without_reading_them():
    parts = [("a", "1"), ("b", "2")]
    previous = pd.DataFrame(
        {"source_file": ["a"], "fingerprint": ["1"], "rows": [3], "ingested_at": pd.Timestamp("2026-01-01")}
    )
    plan = ingest.plan_ingest(parts, previous)
    read = []

    def read_part(name):
        read.append(name)
        return lines(name, 2)

    raw, manifest = ingest.assemble_raw(
        parts, plan, read_part=read_part, load_kept=lambda names: lines("a", 3),
        previous_manifest=previous, now=pd.Timestamp("2026-02-02"),
    )
    assert read == ["b"]
    assert raw["source_file"].tolist() == ["a"] * 3 + ["b"] * 2
    assert manifest["rows"].tolist() == [3, 2]
    assert manifest["ingested_at"].tolist() == [pd.Timestamp("2026-01-01"), pd.Timestamp("2026-02-02")]


def test_lines_are_ordered_by_part_sheet_and_row():
    # Parts read out of source order, a workbook's sheets out of name order, rows shuffled: the raw table
    # comes back in the order a stable sort on (part, sheet, row) gives, missing sheets first.
    book = pd.concat(
        [lines("book", 3).assign(source_sheet="Year 2010"), lines("book", 2).assign(source_sheet="Year 2009")]
    )
    book = book.iloc[[4, 0, 2, 1, 3]].reset_index(drop=True)
    flat = lines("flat", 4).iloc[[3, 1, 0, 2]].reset_index(drop=True)
    parts = [("flat", "1"), ("book", "2")]
    plan = ingest.plan_ingest(parts, None)
    raw, manifest = ingest.assemble_raw(
        parts, plan, read_part={"flat": flat, "book": book}.get, load_kept=None, previous_manifest=None,
        now=pd.Timestamp("2026-02-02"),
    )
    expected = (
        pd.concat([book, flat], ignore_index=True)
        .assign(_part=lambda f: f["source_file"].map({"flat": 0, "book": 1}))
        .sort_values(["_part", "source_sheet", "source_row"], kind="stable", na_position="first")
        .drop(columns="_part")
        .reset_index(drop=True)
    )
    pd.testing.assert_frame_equal(raw, expected)
    assert raw["source_sheet"].tolist()[4:] == ["Year 2009"] * 2 + ["Year 2010"] * 3
    assert manifest["rows"].tolist() == [4, 5]


def test_a_single_part_in_order_is_not_copied():
    part = lines("a", 5)
    raw, _ = ingest.assemble_raw(
        [("a", "1")], ingest.plan_ingest([("a", "1")], None), read_part=lambda name: part, load_kept=None,
        previous_manifest=None, now=pd.Timestamp("2026-02-02"),
    )
    assert raw is part
