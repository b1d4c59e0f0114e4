"""The vectorized list checks of the basket models agree with their one-value-at-a-time definitions."""

import numpy as np
import pandas as pd
import pytest

from pipeline.baskets import schemas as sb

ITEMS = ["A", "B", "C", "85123A", "é", "b", "", None, 3]


def _random_value(rng: np.random.Generator, *, strings_only: bool):
    pool = ITEMS[:6] if strings_only else ITEMS
    items = [pool[int(i)] for i in rng.integers(len(pool), size=int(rng.integers(0, 4)))]
    shape = int(rng.integers(3 if strings_only else 5))
    if shape == 0:
        return items
    if shape == 1:
        return np.array(items, dtype=object)
    if shape == 2:
        return sorted(set(items), key=str)
    return tuple(items) if shape == 3 else "ABC"


@pytest.mark.parametrize("strings_only", [True, False])
@pytest.mark.parametrize("seed", range(3))
def test_vectorized_list_checks_match_the_python_definitions(seed, strings_only):
    rng = np.random.default_rng(seed)
    left = pd.Series([_random_value(rng, strings_only=strings_only) for _ in range(300)], index=range(5, 305))
    right = pd.Series([_random_value(rng, strings_only=strings_only) for _ in range(300)], index=left.index)
    assert (sb._flat_strings(left) is not None) == strings_only  # the fast path, or the Python fallback
    pd.testing.assert_series_equal(sb._code_sets(left), left.map(sb._is_code_set).astype(bool))
    pd.testing.assert_series_equal(sb._string_lists(left), left.map(sb._is_string_list).astype(bool))
    expected = pd.Series([sb._disjoint(a, c) for a, c in zip(left, right, strict=True)], index=left.index)
    pd.testing.assert_series_equal(sb._disjoint_rows(left, right), expected)
    pd.testing.assert_series_equal(sb._lengths(left), left.map(len))


def test_vectorized_list_checks_on_empty_columns():
    empty = pd.Series([], dtype=object)
    assert sb._code_sets(empty).empty and sb._string_lists(empty).empty
    assert sb._disjoint_rows(empty, empty).empty
