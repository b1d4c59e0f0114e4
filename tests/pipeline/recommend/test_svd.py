"""Tests for pipeline.recommend.svd: the customer x product matrix, the truncated SVD and its tables."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pytest

from pipeline.recommend import plots, schemas, svd


def _lines(rows: list[tuple[str, str, int | None, str]]) -> pd.DataFrame:
    """Cleaned-style lines from (invoice, stock_code, customer_id, date) tuples."""
    frame = pd.DataFrame(rows, columns=["invoice", "stock_code", "customer_id", "invoice_date"])
    return frame.assign(
        customer_id=frame["customer_id"].astype("Int64"),
        invoice_date=pd.to_datetime(frame["invoice_date"]),
        description=frame["stock_code"].map(lambda code: f"ITEM {code}"),
    )


@pytest.fixture
def tiny() -> pd.DataFrame:
    # Customer 1 buys A in two invoices (twice in one of them: still one invoice), customer 2 buys A and C
    # once, customer 3 buys B; the guest invoice must not create a row.
    return _lines(
        [
            ("1", "A", 1, "2010-01-01"),
            ("1", "A", 1, "2010-01-01"),
            ("1", "B", 1, "2010-01-01"),
            ("2", "A", 1, "2010-02-01"),
            ("3", "A", 2, "2010-01-05"),
            ("3", "C", 2, "2010-01-05"),
            ("4", "B", 3, "2010-01-07"),
            ("5", "D", None, "2010-01-08"),
        ]
    )


def test_log_count_matrix_counts_distinct_invoices(tiny):
    matrix, customers, products = svd.customer_product_matrix(tiny, weighting="log_count")
    assert customers.tolist() == [1, 2, 3]
    assert str(customers.dtype) == "int64"  # never null: plain integers, as in every customer table
    # D was only bought by a guest: no column for it.
    assert products.tolist() == ["A", "B", "C"]
    expected = np.log1p(np.array([[2, 1, 0], [1, 0, 1], [0, 1, 0]], dtype=float))
    np.testing.assert_allclose(matrix.toarray(), expected)


def test_binary_matrix(tiny):
    matrix, _, _ = svd.customer_product_matrix(tiny, weighting="binary")
    np.testing.assert_array_equal(matrix.toarray(), [[1, 1, 0], [1, 0, 1], [0, 1, 0]])


def test_tfidf_matrix_matches_the_documented_formula(tiny):
    matrix, _, _ = svd.customer_product_matrix(tiny, weighting="tfidf")
    counts = np.array([[2, 1, 0], [1, 0, 1], [0, 1, 0]], dtype=float)
    n_customers = counts.shape[0]
    buyers = (counts > 0).sum(axis=0)
    idf = np.log((1 + n_customers) / (1 + buyers)) + 1
    tf = np.where(counts > 0, 1 + np.log(np.where(counts > 0, counts, 1)), 0)
    expected = tf * idf
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    np.testing.assert_allclose(matrix.toarray(), expected)


def test_weight_counts_leaves_input_untouched(tiny):
    matrix, _, _ = svd.customer_product_matrix(tiny, weighting="binary")
    before = matrix.toarray().copy()
    svd.weight_counts(matrix * 3, weighting="log_count")
    np.testing.assert_array_equal(matrix.toarray(), before)


@pytest.mark.parametrize("weighting", ["counts", "", "LOG_COUNT"])
def test_unknown_weighting_is_rejected(tiny, weighting):
    with pytest.raises(ValueError, match="weighting"):
        svd.customer_product_matrix(tiny, weighting=weighting)


def test_guest_only_lines_are_rejected(tiny):
    with pytest.raises(ValueError, match="customer_id"):
        svd.customer_product_matrix(tiny.assign(customer_id=pd.array([None] * len(tiny), dtype="Int64")))


@pytest.mark.parametrize(
    ("n", "expected"), [(1, ["factor_01"]), (3, ["factor_01", "factor_02", "factor_03"])]
)
def test_factor_columns(n, expected):
    assert svd.factor_columns(n) == expected
    assert svd.factor_columns(120)[-1] == "factor_120"


@pytest.fixture(scope="module")
def random_matrix() -> svd.CustomerProductMatrix:
    rng = np.random.default_rng(7)
    counts = rng.poisson(0.6, size=(30, 12)).astype(float)
    counts[counts.sum(axis=1) == 0, 0] = 1
    matrix = svd.weight_counts(counts, weighting="log_count")
    return svd.CustomerProductMatrix(
        matrix,
        pd.Index(np.arange(101, 131), dtype=np.int64, name="customer_id"),
        pd.Index([f"{20000 + j}" for j in range(12)], dtype=object, name="stock_code"),
    )


def test_svd_matches_dense_numpy_svd(random_matrix):
    result = svd.fit_svd(random_matrix, n_components=5, random_state=0)
    dense = random_matrix.matrix.toarray()
    u, s, vt = np.linalg.svd(dense, full_matrices=False)
    np.testing.assert_allclose(result.explained_variance["singular_value"], s[:5], rtol=1e-6)
    factors = result.product_factors[svd.factor_columns(5)].to_numpy()
    for j in range(5):
        # Singular vectors are defined up to sign.
        assert min(np.abs(factors[:, j] - vt[j]).max(), np.abs(factors[:, j] + vt[j]).max()) < 1e-6
    reconstruction = result.customer_factors[svd.factor_columns(5)].to_numpy() @ factors.T
    np.testing.assert_allclose(reconstruction, (u[:, :5] * s[:5]) @ vt[:5], atol=1e-8)


def test_explained_variance_table(random_matrix):
    table = svd.fit_svd(random_matrix, n_components=6, random_state=0).explained_variance
    assert table["component"].tolist() == list(range(1, 7))
    assert np.all(np.diff(table["singular_value"]) <= 1e-12)
    assert table["explained_variance_ratio"].sum() <= 1 + 1e-12
    assert (table["explained_variance_ratio"] >= 0).all()
    np.testing.assert_allclose(
        table["cumulative_explained_variance_ratio"], table["explained_variance_ratio"].cumsum()
    )
    # Reference: variance of each projected column over the total column variance of the matrix.
    dense = random_matrix.matrix.toarray()
    u, s, _ = np.linalg.svd(dense, full_matrices=False)
    projected_variance = ((u[:, :6] * s[:6]) ** 2).mean(axis=0) - ((u[:, :6] * s[:6]).mean(axis=0)) ** 2
    np.testing.assert_allclose(
        table["explained_variance_ratio"], projected_variance / dense.var(axis=0).sum(), rtol=1e-6
    )


def test_factor_tables_shapes_and_schemas(random_matrix):
    descriptions = pd.Series({"20000": "FIRST"})
    result = svd.fit_svd(random_matrix, n_components=4, random_state=0, descriptions=descriptions)
    assert result.customer_factors.shape == (30, 5)
    assert result.product_factors.shape == (12, 6)
    assert list(result.customer_factors.columns) == ["customer_id", *svd.factor_columns(4)]
    assert result.product_factors["description"].iloc[0] == "FIRST"
    assert result.product_factors["description"].iloc[1:].isna().all()
    schemas.ExplainedVariance.validate(result.explained_variance)
    schemas.CustomerFactors.validate(result.customer_factors)
    schemas.ProductFactors.validate(result.product_factors)


def test_n_components_is_capped(random_matrix):
    result = svd.fit_svd(random_matrix, n_components=64, random_state=0)
    assert len(result.explained_variance) == 11
    assert result.explained_variance["cumulative_explained_variance_ratio"].iloc[-1] <= 1 + 1e-12


def test_fit_is_repeatable_with_a_seed(random_matrix):
    first = svd.fit_svd(random_matrix, n_components=4, random_state=3)
    second = svd.fit_svd(random_matrix, n_components=4, random_state=3)
    pd.testing.assert_frame_equal(first.customer_factors, second.customer_factors)
    pd.testing.assert_frame_equal(first.product_factors, second.product_factors)


@pytest.mark.parametrize(("shape", "n"), [((1, 5), 2), ((5, 1), 2), ((5, 5), 0)])
def test_too_small_inputs_are_rejected(shape, n):
    with pytest.raises(ValueError):
        svd.effective_components(shape, n)


def test_schema_rejects_unknown_columns_and_bad_ratios(random_matrix):
    result = svd.fit_svd(random_matrix, n_components=3, random_state=0)
    with pytest.raises(pa.errors.SchemaErrors, match="extra"):
        schemas.CustomerFactors.validate(result.customer_factors.assign(extra=1.0), lazy=True)
    with pytest.raises(pa.errors.SchemaErrors, match="singular_values_non_increasing"):
        schemas.ExplainedVariance.validate(
            result.explained_variance.assign(singular_value=[1.0, 2.0, 3.0]), lazy=True
        )


def test_explained_variance_figure(random_matrix):
    table = svd.fit_svd(random_matrix, n_components=5, random_state=0).explained_variance
    figure = plots.explained_variance_figure(table)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    assert buffer.getvalue()[:4] == b"\x89PNG"
    assert "5 components" in figure.axes[0].get_title()
