"""Sales lines coded as integers once, and the purchase history every component fits on.

What belongs here: the selection of real-product lines (:func:`_product_lines`; other codes are dropped with
:func:`pipeline.common.codes.is_product_code`), their integer coding (:class:`_Lines`), the customer x product
history every component's fit shares (:class:`_History`), and the small sorted-array helpers (distinct
values, runs, membership, lexicographic order, group maxima) they and the rest of ``pipeline.recommend`` use.
No models, no dagster imports.

Cost: sales lines are coded as integers once and every training window (of a holdout, of the tuning, of the
served fit) is a row mask of them, never a new frame; the lines stay sorted by customer, invoice and product,
so the per-basket groupings of every fit need no sort of their own.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd
import scipy.sparse as sp

from pipeline.common.codes import is_product_code, most_frequent_texts


def _product_lines(lines: pd.DataFrame) -> pd.DataFrame:
    """Keep the columns the recommenders use, and only lines of real products."""
    needed = ["invoice", "stock_code", "description", "invoice_date", "customer_id"]
    missing = [column for column in needed if column not in lines.columns]
    if missing:
        raise ValueError(f"sales lines lack columns {missing}")
    columns = {name: lines[name] for name in needed}
    for name in ("stock_code", "invoice"):
        # Cleaned transactions already hold strings: checking is one pass, converting copies every value.
        if pd.api.types.infer_dtype(columns[name], skipna=False) != "string":
            columns[name] = columns[name].astype(str)
    columns["customer_id"] = columns["customer_id"].astype("Int64", copy=False)
    valid = is_product_code(columns["stock_code"])
    if not valid.any():
        raise ValueError("no sales line of a real product to learn from")
    if not valid.all():
        columns = {name: column[valid] for name, column in columns.items()}
    # A new frame over the (possibly shared) columns; nothing here or downstream writes into it.
    return pd.DataFrame(
        {
            name: column.to_numpy() if name != "customer_id" else column.array
            for name, column in columns.items()
        }
    )


def _as_customer_ids(customer_ids: Iterable[object]) -> np.ndarray:
    array_like = (pd.Series, pd.Index, np.ndarray, pd.api.extensions.ExtensionArray)
    ids = pd.array(
        customer_ids if isinstance(customer_ids, array_like) else list(customer_ids), dtype="Int64"
    )
    if ids.isna().any():
        raise ValueError("customer_ids must not contain missing values")
    return np.asarray(ids, dtype=np.int64)


def _distinct(values: np.ndarray) -> np.ndarray:
    """Sorted distinct values (sort-based: ``np.unique`` without ``return_inverse`` is much slower on 2.4)."""
    ordered = np.sort(values)
    return ordered[np.append(True, ordered[1:] != ordered[:-1])] if len(ordered) else ordered


def _run_starts(sorted_keys: np.ndarray) -> np.ndarray:
    """Start of each run of equal values in a sorted array."""
    if len(sorted_keys) == 0:
        return np.array([], dtype=np.int64)
    return np.flatnonzero(np.append(True, sorted_keys[1:] != sorted_keys[:-1]))


def _member(sorted_values: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Whether each query is in ``sorted_values`` (sorted ascending), by binary search."""
    if len(sorted_values) == 0:
        return np.zeros(len(queries), dtype=bool)
    at = np.minimum(np.searchsorted(sorted_values, queries), len(sorted_values) - 1)
    return sorted_values[at] == queries


def _lex_order(columns: Sequence[tuple[np.ndarray, int]]) -> np.ndarray:
    """Order sorting rows by several non-negative integer columns, most significant first.

    Args:
        columns: ``(values, bound)`` pairs, each value below its bound.

    Returns:
        A permutation; equal rows keep their input order.
    """
    span = 1
    for _, bound in columns:
        span *= max(int(bound), 1)
    if span >= 2**62:
        return np.lexsort([values for values, _ in reversed(columns)])
    key = np.zeros(len(columns[0][0]), dtype=np.int64)
    for values, bound in columns:
        key = key * int(bound) + values
    return np.argsort(key, kind="stable")


def _runs(keys: np.ndarray) -> tuple[np.ndarray | slice, np.ndarray]:
    """An index sorting ``keys`` (``slice(None)`` if already sorted, as in coded lines) and the run starts."""
    order: np.ndarray | slice = slice(None)
    if len(keys) > 1 and (keys[1:] < keys[:-1]).any():
        order = np.argsort(keys, kind="stable")
    return order, _run_starts(keys[order])


def _group_max(groups: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Per element, the maximum of ``values`` over its group; ``groups`` must come in runs of equal ids."""
    starts = _run_starts(groups)
    if len(starts) == 0:
        return values.copy()
    sizes = np.diff(np.append(starts, len(groups)))
    return np.repeat(np.maximum.reduceat(values, starts), sizes)


@dataclass(frozen=True)
class _Lines:
    """Product sales lines coded as integers once, so that a training window is a row mask, not a new frame.

    Invoice and stock codes are numbered in the sorted order of their strings and customers in increasing id,
    so sorting by code orders rows exactly like a pandas sort or groupby on the original columns would. The
    lines are stored sorted by customer (guests first), invoice and product, and a window keeps that order,
    so the per-basket groupings of every fit need no sort of their own.

    Attributes:
        invoice: Invoice code of each line.
        product: Code of each line's product in ``stock_codes``.
        customer: Code of each line's customer in ``customer_ids``, -1 for guest lines.
        date: ``invoice_date`` as int64 nanoseconds.
        description: Code of each line's stripped description in ``texts``; -1 when missing or blank.
        position: Row of each line in the coded frame (its order breaks ties between equally recent lines).
        stock_codes: Sorted stock codes of the coded data.
        customer_ids: Sorted customer ids of the coded data.
        texts: Distinct stripped descriptions.
        n_invoices: Number of invoice codes.
    """

    invoice: np.ndarray
    product: np.ndarray
    customer: np.ndarray
    date: np.ndarray
    description: np.ndarray
    position: np.ndarray
    stock_codes: np.ndarray
    customer_ids: np.ndarray
    texts: np.ndarray
    n_invoices: int

    @classmethod
    def from_frame(cls, kept: pd.DataFrame) -> _Lines:
        """Code the output of :func:`_product_lines`."""
        invoice, invoices = pd.factorize(kept["invoice"], sort=True)
        product, stock_codes = pd.factorize(kept["stock_code"], sort=True)
        customer, customer_ids = pd.factorize(kept["customer_id"], sort=True, use_na_sentinel=True)
        texts, distinct_texts = pd.factorize(kept["description"])
        stripped = pd.Series(distinct_texts, dtype=object).astype(str).str.strip().to_numpy(dtype=object)
        # Missing descriptions have code -1, which indexes the appended False.
        usable = np.append(stripped != "", False)[texts]
        order = _lex_order(
            [
                (customer.astype(np.int64) + 1, len(customer_ids) + 1),
                (invoice, len(invoices)),
                (product, len(stock_codes)),
            ]
        )
        return cls(
            invoice=invoice[order].astype(np.int32),
            product=product[order].astype(np.int32),
            customer=customer[order].astype(np.int32),
            date=kept["invoice_date"].to_numpy(dtype="datetime64[ns]").view(np.int64)[order],
            description=np.where(usable, texts, -1)[order].astype(np.int32),
            position=order.astype(np.int64),
            stock_codes=np.asarray(stock_codes, dtype=object),
            customer_ids=np.asarray(customer_ids, dtype=np.int64),
            texts=stripped,
            n_invoices=len(invoices),
        )

    def window(self, mask: np.ndarray) -> _Lines:
        """The lines where ``mask`` holds (codes and code tables unchanged)."""
        return dataclasses.replace(
            self,
            invoice=self.invoice[mask],
            product=self.product[mask],
            customer=self.customer[mask],
            date=self.date[mask],
            description=self.description[mask],
            position=self.position[mask],
        )

    def span(self) -> tuple[pd.Timestamp, pd.Timestamp]:
        """First and last invoice dates."""
        return pd.Timestamp(self.date.min()), pd.Timestamp(self.date.max())


@dataclass(frozen=True)
class _History:
    """What every component shares: the catalogue, the customers, who bought what, and the coded lines.

    Attributes:
        customer_ids: Sorted ids of the customers with a purchase (row labels).
        stock_codes: Sorted stock codes sold in the period (column labels).
        counts: Distinct invoices per customer and product (CSR).
        end_date: Last invoice date.
        product_index: ``stock_codes`` as an index, for lookups.
        lines: The fitted lines.
        rows: Customer row of each line, -1 for guest lines.
        cols: Catalogue column of each line.
        basket_rows, basket_cols, basket_first: One entry per distinct (customer, invoice, product), sorted by
            customer, invoice and product: its row, column and earliest line date (int64 ns).
    """

    customer_ids: np.ndarray
    stock_codes: np.ndarray
    counts: sp.csr_matrix
    end_date: pd.Timestamp
    product_index: pd.Index
    lines: _Lines
    rows: np.ndarray
    cols: np.ndarray
    basket_rows: np.ndarray
    basket_cols: np.ndarray
    basket_first: np.ndarray

    @classmethod
    def from_lines(cls, lines: _Lines) -> _History:
        sold = np.bincount(lines.product, minlength=len(lines.stock_codes)) > 0
        cols = (np.cumsum(sold) - 1)[lines.product]
        stock_codes = lines.stock_codes[sold]
        known = lines.customer >= 0
        buyers = np.bincount(lines.customer[known], minlength=len(lines.customer_ids)) > 0
        rows = np.full(len(lines.customer), -1, dtype=np.int64)
        rows[known] = (np.cumsum(buyers) - 1)[lines.customer[known]]
        customer_ids = lines.customer_ids[buyers]
        n_products = len(stock_codes)
        # Distinct (customer, invoice, product) in the order of a groupby on those columns: codes sort like
        # the strings they stand for.
        key = (rows[known] * lines.n_invoices + lines.invoice[known]) * n_products + cols[known]
        order, starts = _runs(key)
        basket_key = key[order][starts]
        basket_first = (
            np.minimum.reduceat(lines.date[known][order], starts) if len(starts) else np.array([], np.int64)
        )
        basket_rows = basket_key // (lines.n_invoices * n_products)
        basket_cols = basket_key % n_products
        shape = (len(customer_ids), n_products)
        # One entry per distinct (customer, invoice, product); the CSR conversion sums them into invoice
        # counts.
        counts = sp.csr_matrix(
            (np.ones(len(basket_key)), (basket_rows, basket_cols)), shape=shape, dtype=np.float64
        )
        counts.sum_duplicates()
        return cls(
            customer_ids=customer_ids,
            stock_codes=stock_codes,
            counts=counts,
            end_date=pd.Timestamp(int(lines.date.max())),
            product_index=pd.Index(stock_codes, dtype=object),
            lines=lines,
            rows=rows,
            cols=cols,
            basket_rows=basket_rows,
            basket_cols=basket_cols,
            basket_first=basket_first,
        )

    @cached_property
    def descriptions(self) -> np.ndarray:
        """Description of each product (``pipeline.common.codes.most_frequent_texts``), else its code."""
        described, names = most_frequent_texts(self.cols, self.lines.description, self.lines.texts)
        descriptions = self.stock_codes.copy()
        descriptions[described] = names
        return descriptions

    def customer_rows(self, customer_ids: np.ndarray) -> np.ndarray:
        """Row of each customer in ``counts``, -1 for customers unseen in the fitted period."""
        if len(self.customer_ids) == 0:
            return np.full(len(customer_ids), -1, dtype=np.int64)
        positions = np.clip(np.searchsorted(self.customer_ids, customer_ids), 0, len(self.customer_ids) - 1)
        return np.where(self.customer_ids[positions] == customer_ids, positions, -1)

    def product_positions(self, stock_codes: np.ndarray) -> np.ndarray:
        """Column of each stock code, -1 for codes outside the catalogue."""
        return self.product_index.get_indexer(np.asarray(stock_codes, dtype=object)).astype(np.int64)
