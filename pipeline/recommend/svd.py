"""Truncated SVD of the customer x product purchase matrix.

This module holds the pure logic that turns cleaned sales lines into a sparse customer x product matrix and
factors it with scikit-learn's randomized ``TruncatedSVD``: the explained-variance table and the customer and
product factor tables analysts join in SQL. The recommenders built on the same matrix live in
``pipeline.recommend.components``; Pandera models for the tables live in ``pipeline.recommend.schemas``. No
dagster imports here.

Factor tables are *wide* with fixed column names ``factor_01``, ``factor_02``, ... so that a predicted
affinity is a plain SQL dot product::

    select c.customer_id, p.stock_code,
           c.factor_01 * p.factor_01 + c.factor_02 * p.factor_02 + ... as affinity
    from analytics.customer_factors c cross join analytics.product_factors p

Customer factors are the projections ``U * Sigma`` (``TruncatedSVD.transform``), product factors the right
singular vectors ``V`` (``components_.T``), so that dot product is the rank-``n_components`` reconstruction of
the weighted matrix entry.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import TfidfTransformer
from threadpoolctl import threadpool_limits

Weighting = Literal["log_count", "tfidf", "binary"]
WEIGHTINGS: tuple[str, ...] = ("log_count", "tfidf", "binary")


class CustomerProductMatrix(NamedTuple):
    """A weighted customer x product matrix with its row and column labels.

    Unpacks as ``(matrix, customer_ids, stock_codes)``.

    Attributes:
        matrix: ``(n_customers, n_products)`` CSR matrix of float64 weights.
        customer_ids: Row labels (pandas ``Int64`` index named ``customer_id``), sorted ascending.
        stock_codes: Column labels (string index named ``stock_code``), sorted ascending.
    """

    matrix: sp.csr_matrix
    customer_ids: pd.Index
    stock_codes: pd.Index


class SvdResult(NamedTuple):
    """Output of :func:`fit_svd`.

    Attributes:
        explained_variance: One row per component (see ``schemas.ExplainedVariance``).
        customer_factors: One row per customer, ``customer_id`` then ``factor_01``.. (``U * Sigma``).
        product_factors: One row per product, ``stock_code``, ``description`` then ``factor_01``.. (``V``).
        model: The fitted ``TruncatedSVD``; ``model.transform`` projects new customer rows.
    """

    explained_variance: pd.DataFrame
    customer_factors: pd.DataFrame
    product_factors: pd.DataFrame
    model: TruncatedSVD


def factor_columns(n_components: int) -> list[str]:
    """Return the fixed wide column names ``factor_01``.. for ``n_components`` factors.

    Args:
        n_components: Number of factors.

    Returns:
        ``["factor_01", ..., "factor_NN"]`` (two digits, three beyond 99).
    """
    width = max(2, len(str(n_components)))
    return [f"factor_{i:0{width}d}" for i in range(1, n_components + 1)]


def _check_weighting(weighting: str) -> None:
    if weighting not in WEIGHTINGS:
        raise ValueError(f"weighting must be one of {WEIGHTINGS}, got {weighting!r}")


def weight_counts(counts: sp.spmatrix, *, weighting: Weighting = "log_count") -> sp.csr_matrix:
    """Turn a customer x product matrix of invoice counts into weights (see :func:`customer_product_matrix`).

    Args:
        counts: Non-negative counts of distinct invoices per customer and product.
        weighting: One of ``"log_count"``, ``"tfidf"``, ``"binary"``.

    Returns:
        A new float64 CSR matrix with the same sparsity pattern; ``counts`` is left untouched.

    Raises:
        ValueError: If ``weighting`` is unknown.
    """
    _check_weighting(weighting)
    counts = sp.csr_matrix(counts, dtype=np.float64, copy=True)
    counts.eliminate_zeros()
    if weighting == "log_count":
        counts.data = np.log1p(counts.data)
        return counts
    if weighting == "binary":
        counts.data = np.ones_like(counts.data)
        return counts
    return sp.csr_matrix(TfidfTransformer(sublinear_tf=True).fit_transform(counts), dtype=np.float64)


def customer_product_matrix(
    cleaned: pd.DataFrame, *, weighting: Weighting = "log_count"
) -> CustomerProductMatrix:
    """Build the sparse customer x product matrix from cleaned sales lines.

    Only lines with a ``customer_id`` count (guest baskets have no row). The base count is the number of
    distinct invoices of the customer that contain the product, so a wholesale line of 480 units counts once,
    like a line of one: the matrix describes *what* people buy, not how much. Weightings:

    * ``"log_count"``: ``log1p(n_invoices)``; damps the few staples a shop reorders every week.
    * ``"tfidf"``: ``TfidfTransformer(sublinear_tf=True)`` on the invoice counts, that is
      ``(1 + log n) * idf`` with ``idf = ln((1 + n_customers) / (1 + n_buyers)) + 1``, rows L2-normalised;
      lifts niche products and stops big accounts dominating the factors.
    * ``"binary"``: 1 if the customer ever bought the product.

    Args:
        cleaned: Cleaned sales lines (``staging.cleaned_transactions``) with ``customer_id``, ``invoice`` and
            ``stock_code``.
        weighting: One of ``"log_count"`` (default), ``"tfidf"``, ``"binary"``.

    Returns:
        The weighted CSR matrix with its customer and product labels.

    Raises:
        ValueError: If ``weighting`` is unknown or no line has a customer.
    """
    _check_weighting(weighting)
    known = cleaned.loc[cleaned["customer_id"].notna(), ["customer_id", "invoice", "stock_code"]]
    if known.empty:
        raise ValueError("no line has a customer_id: cannot build a customer x product matrix")
    # Integer codes instead of a drop_duplicates over string columns: codes follow the sorted labels.
    customer_codes, customers = pd.factorize(known["customer_id"].astype("int64").to_numpy(), sort=True)
    invoice_codes, _ = pd.factorize(known["invoice"].astype(str))
    product_codes, products = pd.factorize(known["stock_code"].astype(str).to_numpy(), sort=True)
    n_invoices = int(invoice_codes.max()) + 1
    triples = np.sort(
        (customer_codes.astype(np.int64) * n_invoices + invoice_codes) * len(products) + product_codes
    )
    # Sort-based distinct values: np.unique without return_inverse takes a much slower path on NumPy 2.4.
    triples = triples[np.append(True, triples[1:] != triples[:-1])]
    shape = (len(customers), len(products))
    # One entry per distinct (customer, invoice, product): the COO -> CSR conversion sums them into invoice
    # counts.
    counts = sp.csr_matrix(
        (np.ones(len(triples)), (triples // (n_invoices * len(products)), triples % len(products))),
        shape=shape,
        dtype=np.float64,
    )
    counts.sum_duplicates()
    matrix = weight_counts(counts, weighting=weighting)
    customer_ids = pd.Index(np.asarray(customers, dtype=np.int64), name="customer_id")
    stock_codes = pd.Index(np.asarray(products, dtype=object), dtype=object, name="stock_code")
    return CustomerProductMatrix(matrix.astype(np.float64), customer_ids, stock_codes)


def effective_components(shape: tuple[int, int], n_components: int) -> int:
    """Cap the requested number of components to what ``TruncatedSVD`` accepts.

    Args:
        shape: Matrix shape ``(n_rows, n_columns)``.
        n_components: Requested number of components.

    Returns:
        ``min(n_components, min(shape) - 1)``, at least 1.

    Raises:
        ValueError: If ``n_components < 1`` or the matrix is too small to factor (fewer than 2 rows or
            columns).
    """
    if n_components < 1:
        raise ValueError(f"n_components must be >= 1, got {n_components}")
    if min(shape) < 2:
        raise ValueError(f"matrix of shape {shape} is too small for a truncated SVD")
    return min(n_components, min(shape) - 1)


def fit_svd(
    matrix: CustomerProductMatrix,
    *,
    n_components: int = 64,
    random_state: int | None = 0,
    descriptions: pd.Series | None = None,
) -> SvdResult:
    """Factor the customer x product matrix with a seeded randomized truncated SVD.

    Args:
        matrix: Output of :func:`customer_product_matrix`.
        n_components: Number of latent factors; capped to ``min(matrix.shape) - 1``.
        random_state: Seed of the randomized range finder; an int makes runs repeatable.
        descriptions: Optional description per ``stock_code`` (see
            ``pipeline.common.codes.product_descriptions``) for the product factor table; missing codes get
            ``None``.

    Returns:
        The explained-variance table, the wide customer and product factor tables and the fitted model.
        ``explained_variance_ratio`` is the variance of each projected column over the total variance of the
        (uncentred) matrix columns, as reported by scikit-learn; it sums to at most 1 but is not guaranteed to
        be monotone, while ``singular_value`` is non-increasing.
    """
    n = effective_components(matrix.matrix.shape, n_components)
    model = TruncatedSVD(n_components=n, algorithm="randomized", random_state=random_state)
    # The range finder's QR, LU and small SVD work on (rows x ~n) blocks: threading them only adds overhead
    # (several times the CPU on two busy cores), and one thread makes the result independent of the machine.
    with threadpool_limits(limits=1, user_api="blas"):
        projected = model.fit_transform(matrix.matrix)
    columns = factor_columns(n)
    ratio = model.explained_variance_ratio_
    explained = pd.DataFrame(
        {
            "component": np.arange(1, n + 1, dtype=np.int64),
            "singular_value": model.singular_values_.astype(np.float64),
            "explained_variance_ratio": ratio.astype(np.float64),
            "cumulative_explained_variance_ratio": np.cumsum(ratio).astype(np.float64),
        }
    )
    customer_factors = pd.concat(
        [
            pd.DataFrame({"customer_id": np.asarray(matrix.customer_ids, dtype=np.int64)}),
            pd.DataFrame(projected, columns=columns),
        ],
        axis=1,
    )
    if descriptions is None:
        described = pd.Series([None] * len(matrix.stock_codes), dtype=object)
    else:
        described = pd.Series(matrix.stock_codes.map(descriptions), dtype=object)
        described = described.where(described.notna(), None)
    product_factors = pd.concat(
        [
            pd.DataFrame(
                {"stock_code": np.asarray(matrix.stock_codes, dtype=object), "description": described}
            ),
            pd.DataFrame(model.components_.T, columns=columns),
        ],
        axis=1,
    )
    return SvdResult(explained, customer_factors, product_factors, model)
