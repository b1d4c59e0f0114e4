"""The SQL route of the schema checks gives Pandera's verdict and failure cases, case for case.

Every frame is stored in an in-memory DuckDB the way the IO manager stores tables; the reference is Pandera
on the same table loaded back (``load_table``, the IO manager's conversion; ``tests/assets/test_checks.py``
shows the two loads agree). Failure cases are compared whole: (context, column, check, number, value, row).
"""

import duckdb
import numpy as np
import pandas as pd
import pytest

from pipeline.baskets.schemas import AssociationRules, FrequentItemsets
from pipeline.customers import rfm_segments
from pipeline.customers.schemas import CustomerRfm, SegmentSummary
from pipeline.network.schemas import ProductCentrality, ProductNetworkEdges
from pipeline.recommend.schemas import CustomerFactors, ExplainedVariance, Recommendations
from pipeline.sources import synthetic
from pipeline.sources.readers import normalize_frame
from pipeline.staging.cleaning import clean
from pipeline.staging.schemas import CleanedTransactions, RawInvoices, RejectedRows
from pipeline.warehouse import validation


def both_routes(frame: pd.DataFrame, model) -> tuple[validation.TableValidation, ...]:
    """Validate ``frame`` once stored: by Pandera on the loaded table, and by the SQL route."""
    with duckdb.connect() as conn:
        validation.store_frame(conn, frame, "main", "t")
        reference = validation.validate_frame(validation.load_table(conn, "main", "t"), model)
        report = validation.validate_table(conn, "main", "t", model)
    return reference, report


def _label(value) -> str:
    if value is None or (not isinstance(value, str | list | tuple | np.ndarray) and pd.isna(value)):
        return "<null>"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def cases(report: validation.TableValidation) -> list[tuple[str, ...]]:
    """Failure cases as sorted text tuples (dtype quirks of concatenated case frames removed)."""
    if report.passed:
        return []
    columns = ["schema_context", "column", "check", "check_number", "failure_case", "index"]
    rows = report.failure_cases[columns].astype(object).to_numpy().tolist()
    return sorted(tuple(_label(v) for v in row) for row in rows)


def assert_same(frame: pd.DataFrame, model, *, route: str | None = None) -> validation.TableValidation:
    reference, report = both_routes(frame, model)
    assert report.passed == reference.passed
    assert cases(report) == cases(reference)
    assert report.rows == reference.rows == len(frame)
    if not report.passed:
        # the sample rows are the table's own rows, lineage included
        assert list(report.failing_rows.columns) == list(frame.columns)
        assert report.failing_rows.index.isin(frame.index).all()
    if route is not None:
        assert report.route == route, report.note
    return report


@pytest.fixture(scope="module")
def staging() -> dict[str, pd.DataFrame]:
    lines = synthetic.generate_frame(4_000, random_state=3)
    raw = normalize_frame(lines, source_file="s.csv", source_sheet=None)
    result = clean(raw)
    rfm = rfm_segments.rfm_table(result.cleaned)
    return {"raw": raw, "cleaned": result.cleaned, "rejected": result.rejected, "rfm": rfm,
            "segments": rfm_segments.segment_summary(rfm)}


def _rules() -> pd.DataFrame:
    sides = [(["A"], ["B"]), (["A", "C"], ["B"]), (["B"], ["C", "D"]), (["C"], ["A"]), (["D"], ["E"])]
    antecedent_support = np.array([0.5, 0.3, 0.4, 0.35, 0.2])
    consequent_support = np.array([0.4, 0.4, 0.25, 0.5, 0.3])
    support = np.array([0.2, 0.15, 0.1, 0.2, 0.1])
    confidence = support / antecedent_support
    lift = confidence / consequent_support
    return pd.DataFrame({
        "rule_id": range(5),
        "antecedents": [a for a, _ in sides],
        "consequents": [c for _, c in sides],
        "antecedent_descriptions": [[x.lower() for x in a] for a, _ in sides],
        "consequent_descriptions": [[x.lower() for x in c] for _, c in sides],
        "antecedent_support": antecedent_support,
        "consequent_support": consequent_support,
        "support": support,
        "confidence": confidence,
        "lift": lift,
        "leverage": support - antecedent_support * consequent_support,
        "conviction": (1 - consequent_support) / (1 - confidence),
        "zhangs_metric": [0.1, 0.2, -0.3, 0.0, 0.5],
        "is_redundant": [False, True, False, False, False],
        "country": [None, None, "UK", "UK", None],
    })


def _itemsets() -> pd.DataFrame:
    items = [["A"], ["B"], ["A", "B"], ["A", "B", "C"], ["A"]]
    return pd.DataFrame({
        "itemset_id": range(5), "items": items, "descriptions": [[x.lower() for x in i] for i in items],
        "length": [len(i) for i in items], "support": [0.5, 0.4, 0.2, 0.1, 0.6],
        "support_count": [5, 4, 2, 1, 6],
        "country": [None, None, None, None, "UK"],
    })


def _edges() -> pd.DataFrame:
    return pd.DataFrame({"source": ["A", "A", "B", "C"], "target": ["B", "C", "C", "D"],
                         "weight": [0.3, 0.2, 1.0, 0.05], "shared_invoices": [3, 2, 5, 1],
                         "lift": [1.5, 0.8, 2.0, 1.1], "jaccard": [0.3, 0.2, 1.0, 0.05]})


def _centrality() -> pd.DataFrame:
    return pd.DataFrame({
        "node": ["A", "B", "C", "D", "E"], "component": [0, 0, 0, 1, 1], "degree": [2, 2, 1, 1, 1],
        "weighted_degree": [5.0, 8.0, 6.0, 1.0, 1.0], "degree_centrality": [0.5, 0.5, 0.25, 0.25, 0.25],
        "betweenness_centrality": [0.2, 0.1, 0.0, 0.0, 0.0],
        "eigenvector_centrality": [0.6, 0.7, 0.3, None, None],
        "community": pd.array([0, 0, 1, None, 2], dtype="Int64"),
    })


def _factors() -> pd.DataFrame:
    return pd.DataFrame({"customer_id": pd.array([12, 13, 14], dtype="Int64"), "factor_01": [0.1, -0.2, 0.3],
                         "factor_02": [1.0, 0.0, -0.5]})


def _variance() -> pd.DataFrame:
    ratio = np.array([0.5, 0.3, 0.1])
    return pd.DataFrame({"component": [1, 2, 3], "singular_value": [9.0, 4.0, 1.0],
                         "explained_variance_ratio": ratio,
                         "cumulative_explained_variance_ratio": np.cumsum(ratio)})


def _recommendations() -> pd.DataFrame:
    return pd.DataFrame({
        "customer_id": pd.array([12, 12, 12, 13, 13, 12], dtype="Int64"), "rank": [1, 2, 3, 1, 2, 1],
        "stock_code": ["85123A", "22423", "DCGSSBOY", "85123A", "21212", "22423"],
        "description": ["heart", "cake stand", "boy", "heart", "cases", "cake stand"],
        "score": [0.9, 0.5, 0.5, 0.7, 0.1, 0.3],
        "source": ["svd", "rules", "popularity", "buy_again", "svd", "svd"],
        "reason": ["x", "because", "popular", "bought", "similar", "x"],
        "setting": ["any", "any", "any", "any", "any", "new_only"],
    })


def _set(frame: pd.DataFrame, column: str, row: int, value) -> pd.DataFrame:
    out = frame.copy()
    out[column] = out[column].astype(object) if value is None or isinstance(value, list) else out[column]
    out.at[out.index[row], column] = value  # noqa: PD008 - .loc cannot set a list into one cell
    return out


BUILT = {"rules": _rules, "itemsets": _itemsets, "edges": _edges, "centrality": _centrality,
         "factors": _factors, "variance": _variance, "recommendations": _recommendations}
MODELS = {"raw": RawInvoices, "cleaned": CleanedTransactions, "rejected": RejectedRows, "rfm": CustomerRfm,
          "segments": SegmentSummary, "rules": AssociationRules, "itemsets": FrequentItemsets,
          "edges": ProductNetworkEdges, "centrality": ProductCentrality, "factors": CustomerFactors,
          "variance": ExplainedVariance, "recommendations": Recommendations}


@pytest.fixture(scope="module")
def good(staging) -> dict[str, pd.DataFrame]:
    return {**staging, **{name: build() for name, build in BUILT.items()}}


@pytest.mark.parametrize("table", list(MODELS))
def test_valid_tables_pass_in_sql(good, table):
    report = assert_same(good[table], MODELS[table], route="sql")
    assert report.passed


CORRUPTIONS = {
    # null in a non-nullable column
    "cleaned: null invoice": ("cleaned", lambda f: _set(f, "invoice", 3, None)),
    "cleaned: NaN price": ("cleaned", lambda f: _set(f, "price", 5, np.nan)),
    "cleaned: null quantity (int64 column)": ("cleaned", lambda f: f.assign(
        quantity=f["quantity"].astype("Int64").mask(f.index == 2))),
    "raw: null source_file": ("raw", lambda f: _set(f, "source_file", 0, None)),
    "factors: null factor": ("factors", lambda f: _set(f, "factor_02", 1, np.nan)),
    # out of range
    "cleaned: negative quantity": ("cleaned", lambda f: _set(f, "quantity", 7, -2)),
    "cleaned: zero price and revenue": (
        "cleaned", lambda f: _set(_set(f, "price", 1, 0.0), "revenue", 1, 0.0)),
    "cleaned: customer 0": (
        "cleaned", lambda f: _set(f, "customer_id", int(f["customer_id"].notna().argmax()), 0)),
    "raw: source_row 0": ("raw", lambda f: _set(f, "source_row", 4, 0)),
    "rfm: score 6": ("rfm", lambda f: _set(f, "r_score", 0, 6)),
    "rules: confidence above 1": ("rules", lambda f: _set(f, "confidence", 2, 1.5)),
    "rules: infinite lift": ("rules", lambda f: _set(f, "lift", 0, np.inf)),
    "centrality: negative community": ("centrality", lambda f: _set(f, "community", 0, -1)),
    "edges: jaccard above 1": ("edges", lambda f: _set(f, "jaccard", 1, 1.2)),
    # bad regex, not in set, string length
    "cleaned: cancellation invoice": ("cleaned", lambda f: _set(f, "invoice", 2, "C536379")),
    "cleaned: lower-case code": ("cleaned", lambda f: _set(f, "stock_code", 6, "85123a")),
    "rejected: unknown reason": ("rejected", lambda f: _set(f, "reason", 0, "gremlins")),
    "rfm: unknown segment": ("rfm", lambda f: _set(f, "segment", 1, "Whales")),
    "recommendations: bad code and empty reason": (
        "recommendations", lambda f: _set(_set(f, "stock_code", 2, "POST"), "reason", 1, "")),
    "segments: short action": ("segments", lambda f: _set(f, "marketing_action", 0, "call")),
    # custom column checks
    "cleaned: postage line": ("cleaned", lambda f: _set(f, "stock_code", 8, "POST")),
    "rules: unsorted side": ("rules", lambda f: _set(f, "antecedents", 1, ["C", "A"])),
    "rules: empty side and None item": (
        "rules", lambda f: _set(_set(f, "consequents", 0, []), "antecedent_descriptions", 3, ["c", None])),
    "itemsets: repeated item": ("itemsets", lambda f: _set(f, "items", 2, ["A", "A"])),
    # duplicate keys
    "cleaned: duplicate lineage": ("cleaned", lambda f: pd.concat([f, f.iloc[[4, 4]]], ignore_index=True)),
    "raw: duplicate lineage, null sheet": ("raw", lambda f: pd.concat([f.iloc[[0]], f], ignore_index=True)),
    "rfm: duplicate customer": ("rfm", lambda f: pd.concat([f, f.iloc[[0]]], ignore_index=True)),
    "factors: duplicate customer": ("factors", lambda f: _set(f, "customer_id", 2, 12)),
    "centrality: duplicate node": ("centrality", lambda f: _set(f, "node", 4, "A")),
    "recommendations: duplicate rank": ("recommendations", lambda f: _set(f, "rank", 1, 1)),
    # dataframe-level checks (row-wise and whole-table)
    "cleaned: revenue not quantity x price": ("cleaned", lambda f: _set(f, "revenue", 10, 12345.0)),
    "rules: sides overlap": ("rules", lambda f: _set(f, "consequents", 1, ["A"])),
    "rules: descriptions length": ("rules", lambda f: _set(f, "consequent_descriptions", 2, ["c"])),
    "itemsets: duplicated itemset": ("itemsets", lambda f: _set(f, "items", 1, ["A"])),
    "edges: reversed pair": ("edges", lambda f: _set(_set(f, "source", 0, "Z"), "target", 3, "A")),
    "edges: repeated pair": ("edges", lambda f: pd.concat([f, f.iloc[[2]]], ignore_index=True)),
    "centrality: components by size": ("centrality", lambda f: f.assign(component=[1, 1, 1, 0, 0])),
    "variance: unordered components": ("variance", lambda f: f.iloc[[1, 0, 2]].reset_index(drop=True)),
    "recommendations: scores rise": ("recommendations", lambda f: _set(f, "score", 2, 0.95)),
    "segments: a segment missing": ("segments", lambda f: f.iloc[1:].reset_index(drop=True)),
    "rfm: label not the scores": ("rfm", lambda f: _set(f, "rfm_score", 0, "111")),
    # wrong dtype, missing and extra columns (the pandas route; same report by definition)
    "cleaned: quantity as text": (
        "cleaned", lambda f: _set(f.assign(quantity=f["quantity"].astype(str)), "quantity", 0, "x")),
    "cleaned: price as text": (
        "cleaned", lambda f: _set(f.assign(price=f["price"].astype(object)), "price", 0, "x")),
    "cleaned: revenue missing": ("cleaned", lambda f: f.drop(columns="revenue")),
    "rules: unexpected column": ("rules", lambda f: f.assign(note="x")),
    "factors: unexpected column": ("factors", lambda f: f.assign(weight=1.0)),
}


@pytest.mark.parametrize("case", list(CORRUPTIONS))
def test_corrupted_tables_fail_with_pandera_cases(good, case):
    table, corrupt = CORRUPTIONS[case]
    report = assert_same(corrupt(good[table]), MODELS[table])
    assert not report.passed


def test_repeated_lists_are_judged_once_per_distinct_list(good, monkeypatch):
    rules = pd.concat([good["rules"]] * 8, ignore_index=True).assign(rule_id=range(40))
    mapped = []
    original = validation._SqlRoute._rows_with_values
    monkeypatch.setattr(validation._SqlRoute, "_rows_with_values",
                        lambda self, *args: mapped.append(args[0].name) or original(self, *args))
    assert_same(rules, AssociationRules, route="sql")
    first = rules["antecedents"].map(tuple) == ("A",)
    bad = rules.assign(
        antecedent_descriptions=rules["antecedent_descriptions"].where(~first, pd.Series([["a", None]] * 40)),
        antecedents=rules["antecedents"].where(rules["rule_id"] % 5 != 2, pd.Series([["C", "B"]] * 40)),
    )
    report = assert_same(bad, AssociationRules, route="sql")
    assert {"antecedent_descriptions", "antecedents"} <= set(mapped)
    counts = report.failure_cases.groupby(["column", "check"]).size()
    assert counts[("antecedent_descriptions", "string_lists")] == first.sum() == 8


def test_rows_are_named_by_position_after_in_place_edits(good):
    # a row deleted or moved in place leaves row ids that are no longer positions; reports use positions
    with duckdb.connect() as conn:
        validation.store_frame(conn, pd.concat([good["rules"]] * 2, ignore_index=True), "main", "t")
        conn.execute("DELETE FROM main.t WHERE rowid IN (0, 6)")
        conn.execute("UPDATE main.t SET antecedents = ['Z', 'A'], confidence = 1.5 WHERE rowid = 3")
        loaded = validation.load_table(conn, "main", "t")
        reference = validation.validate_frame(loaded, AssociationRules)
        report = validation.validate_table(conn, "main", "t", AssociationRules)
    assert report.route == "sql" and not report.passed
    assert cases(report) == cases(reference)
    assert list(report.failing_rows.index) == list(reference.failing_rows.index)


def test_python_regex_semantics_are_kept(good):
    # Pandera matches with Python's re.match, whose $ also matches before a final newline: the model accepts
    newline = _set(good["cleaned"], "invoice", 9, "536365\n")
    assert assert_same(newline, CleanedTransactions, route="sql").passed
    assert not assert_same(_set(good["cleaned"], "invoice", 9, "536365\nx"), CleanedTransactions).passed


def test_structure_and_nulls_in_int_columns_take_the_pandas_route(good):
    cleaned = good["cleaned"]
    assert both_routes(cleaned.drop(columns="revenue"), CleanedTransactions)[1].route == "pandas"
    text = cleaned.assign(quantity=cleaned["quantity"].astype(str))
    assert both_routes(text, CleanedTransactions)[1].route == "pandas"
    nulls = cleaned.assign(quantity=cleaned["quantity"].astype("Int64").mask(cleaned.index == 0))
    assert both_routes(nulls, CleanedTransactions)[1].route == "pandas"
    assert both_routes(_set(cleaned, "price", 0, -1.0), CleanedTransactions)[1].route == "sql"


def test_failure_counts_and_rows_name_the_bad_input_lines(good):
    cleaned = good["cleaned"]
    bad = _set(_set(_set(cleaned, "quantity", 3, -1), "quantity", 11, -5), "stock_code", 20, "POST")
    report = assert_same(bad, CleanedTransactions, route="sql")
    counts = report.failure_cases.groupby(["column", "check"]).size().to_dict()
    assert counts[("quantity", "greater_than(0)")] == 2
    assert counts[("stock_code", "is_product_code")] == 1
    # revenue no longer equals quantity x price on the two rows: one case per non-null cell of each row
    assert set(report.failing_rows.index) >= {3, 11, 20}
    assert report.failing_rows.loc[3, "source_row"] == cleaned.loc[3, "source_row"]


CELL_VALUES = {
    "int": [0, -1, 1, 10**6],
    "float": [0.0, -0.0, -1.0, np.nan, np.inf, 1.0 + 1e-12, 2.0],
    "str": [None, "", "C1", "POST", "85123A", "85123a", " 22423", "Whales", "Champions"],
}


def _random_corruption(frame: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    out = frame.copy()
    for _ in range(int(rng.integers(1, 4))):
        column = out.columns[int(rng.integers(len(out.columns)))]
        row = int(rng.integers(len(out)))
        dtype = out[column].dtype
        kind = {"i": "int", "f": "float", "O": "str"}.get(dtype.kind) if isinstance(dtype, np.dtype) else None
        if kind is None:
            continue
        values = CELL_VALUES[kind]
        out.loc[out.index[row], column] = values[int(rng.integers(len(values)))]
    if rng.random() < 0.3:
        out = pd.concat([out, out.iloc[[int(rng.integers(len(out)))]]], ignore_index=True)
    return out


@pytest.mark.parametrize("table", ["cleaned", "raw", "rules", "recommendations"])
def test_random_corruptions_give_the_same_report(good, table):
    rng = np.random.default_rng(len(table))
    routes = set()
    for _ in range(8):
        report = assert_same(_random_corruption(good[table], rng), MODELS[table])
        routes.add(report.route)
    assert "sql" in routes


def test_declared_check_columns_name_dataframe_checks_and_model_columns():
    for model in MODELS.values():
        schema = model.to_schema()
        declared = getattr(model, validation.CHECK_COLUMNS_ATTRIBUTE, {})
        assert set(declared) <= {check.name for check in schema.checks}
        assert all(set(columns) <= set(schema.columns) for columns in declared.values())


def test_loaded_lists_match_the_io_manager_representation(good):
    with duckdb.connect() as conn:
        validation.store_frame(conn, good["rules"], "main", "t")
        direct = conn.sql("SELECT antecedents FROM main.t").df()["antecedents"]
        arrow = validation._load(conn, '"main"."t"', ["antecedents"], arrow_columns=["antecedents"])
    pairs = zip(direct, arrow["antecedents"], strict=True)
    assert all(type(a) is type(b) and a.dtype == b.dtype and list(a) == list(b) for a, b in pairs)


def test_check_names_do_not_depend_on_which_model_is_built_first():
    # Pandera drops a check's name= once a model is built from it, so a named check in a shared base model
    # used to keep its name only in the first subclass built. Build every model in reverse order in a fresh
    # interpreter: each check must still carry its name (the SQL route matches _check_columns by name).
    script = """
import importlib, inspect
import pandera.pandas as pa
problems = []
for room in ["staging", "eda", "customers", "baskets", "network", "recommend"]:
    module = importlib.import_module(f"pipeline.{room}.schemas")
    models = [v for v in vars(module).values() if inspect.isclass(v) and issubclass(v, pa.DataFrameModel)
              and v.__module__ == module.__name__]
    for model in reversed(models):
        schema = model.to_schema()
        names = [c.name for c in schema.checks]
        names += [c.name for column in schema.columns.values() for c in column.checks]
        problems += [(model.__name__, n) for n in names if n and n.startswith("_")]
        problems += [(model.__name__, k) for k in getattr(model, "_check_columns", {}) if k not in names]
print(problems)
"""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
