"""Parquet bytes and Hyper extracts of small hand-built tables, read back."""

import io
import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from pipeline.exports import formats


@pytest.fixture
def frame() -> pd.DataFrame:
    """The column kinds of the marts: ids, nullable counts, money, text with gaps, timestamps, lists."""
    return pd.DataFrame(
        {
            "customer_id": np.array([12346, 12347, 12348], dtype=np.int64),
            "network_degree": pd.array([3, None, 0], dtype="Int64"),
            "monetary": [77183.6, 4310.0, np.nan],
            "country": ["United Kingdom", None, "Iceland"],
            "is_redundant": [True, False, True],
            "last_purchase_date": pd.to_datetime(["2011-01-18 10:01:00", "2011-12-07 15:52:00", None]),
            "bundle_ids": [np.array([1, 4]), None, np.array([], dtype=np.int64)],
            "antecedents": [np.array(["85123A", "22423"], dtype=object), np.array(["POST"], dtype=object),
                            None],
        }
    )


def test_parquet_reads_back_as_the_same_frame_dtypes_included(frame):
    back = pd.read_parquet(io.BytesIO(formats.parquet_bytes(frame)))
    pd.testing.assert_frame_equal(back, frame)
    assert back["network_degree"].dtype == "Int64", "a nullable count must not come back as float"


def test_parquet_keeps_arrow_types_of_a_table():
    table = pa.table({"id": pa.array([1, None], pa.int64()), "when": pa.array([0, 1], pa.timestamp("ns"))})
    back = pa.parquet.read_table(io.BytesIO(formats.parquet_bytes(table)))
    assert back.schema.types == [pa.int64(), pa.timestamp("ns")]
    assert back.column("id").to_pylist() == [1, None]


def test_hyper_ready_maps_lists_to_json_and_nanoseconds_to_microseconds(frame):
    ready = formats.hyper_ready(frame)
    types = dict(zip(ready.schema.names, ready.schema.types, strict=True))
    assert types["last_purchase_date"] == pa.timestamp("us")
    assert types["bundle_ids"] == types["antecedents"] == pa.string()
    bundles = [None if v is None else json.loads(v) for v in ready.column("bundle_ids").to_pylist()]
    assert bundles == [[1, 4], None, []]
    assert json.loads(ready.column("antecedents")[0].as_py()) == ["85123A", "22423"]
    assert ready.column("last_purchase_date").to_pylist()[:2] == list(frame["last_purchase_date"][:2])
    assert ready.column("customer_id").equals(pa.chunked_array([frame["customer_id"].to_numpy()]))


def test_hyper_ready_refuses_to_round_sub_microsecond_timestamps():
    table = pa.table({"when": pa.array([1_500], pa.timestamp("ns"))})
    with pytest.raises(ValueError, match="'when' has sub-microsecond timestamps"):
        formats.hyper_ready(table)


def test_hyper_ready_turns_an_all_null_column_into_text():
    ready = formats.hyper_ready(pa.table({"empty": pa.nulls(2)}))
    assert ready.schema.types == [pa.string()] and ready.column("empty").null_count == 2


def test_hyper_extract_reads_back_with_the_mapped_values(frame, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "out").mkdir()
    path = formats.write_hyper(frame, tmp_path / "out" / "customers.hyper")
    back = formats.read_hyper(path)
    expected = formats.hyper_ready(frame)
    assert back.num_rows == 3 and back.schema.names == expected.schema.names
    # Hyper returns text as large_string; values are otherwise those of the mapped table.
    as_written = back.cast(pa.schema([pa.field(f.name, f.type) for f in expected.schema]))
    expected = expected.replace_schema_metadata(None)  # pandas metadata: compare the stored values alone
    assert as_written.equals(expected)
    pd.testing.assert_frame_equal(as_written.to_pandas(), expected.to_pandas())
    assert not (tmp_path / "hyperd.log").exists(), "Hyper's log must not land in the working directory"


def test_hyper_bytes_is_a_hyper_file(frame, tmp_path):
    data = formats.hyper_bytes(frame)
    path = tmp_path / "x.hyper"
    path.write_bytes(data)
    assert formats.read_hyper(path).num_rows == 3
