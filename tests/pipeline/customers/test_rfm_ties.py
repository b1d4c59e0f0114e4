"""RFM scores depend on the metric values alone: ties share a score, ids and row order do not matter."""

import numpy as np
import pandas as pd
import pytest

from pipeline.customers import rfm_segments
from tests.pipeline.customers.test_customers import purchases


def reference_scores(values: pd.Series, *, higher_is_better: bool = True) -> pd.Series:
    """The documented scores another way: pandas' minimum rank, then explicit bins of (rank - 1) / n."""
    ranks = values.rank(method="min", ascending=higher_is_better)
    share = (ranks - 1) / len(values)
    bins = [k / 5 for k in range(6)]
    return pd.cut(share, bins=bins, right=False, labels=[1, 2, 3, 4, 5]).astype("int64")


def tied_values(n: int, seed: int) -> pd.Series:
    """Values from a few levels, so most of them are tied (like frequency), in random order."""
    rng = np.random.default_rng(seed)
    return pd.Series(rng.choice([1.0, 2.0, 3.0, 5.0, 8.0, 40.0], size=n, p=[0.4, 0.2, 0.15, 0.1, 0.1, 0.05]))


@pytest.mark.parametrize("higher_is_better", [True, False])
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("n", [1, 2, 5, 7, 11, 97, 1000])
def test_scores_equal_the_reference_and_respect_ties(n, seed, higher_is_better):
    values = tied_values(n, seed)
    scores = rfm_segments.quintile_score(values, higher_is_better=higher_is_better)
    pd.testing.assert_series_equal(scores, reference_scores(values, higher_is_better=higher_is_better))
    assert scores.between(1, 5).all()
    # Equal values get equal scores; a better value never gets a lower one (all pairs).
    v = values.to_numpy() if higher_is_better else -values.to_numpy()
    s = scores.to_numpy()
    assert not ((v[:, None] == v[None, :]) & (s[:, None] != s[None, :])).any()
    assert not ((v[:, None] > v[None, :]) & (s[:, None] < s[None, :])).any()
    # The worst value scores 1, and a score counts the whole fifths of strictly worse customers.
    assert (s[v == v.min()] == 1).all()
    strictly_worse = (v[None, :] < v[:, None]).sum(axis=1)
    assert (s == 1 + 5 * strictly_worse // n).all()


def test_equal_values_get_equal_scores_by_hand():
    # Six customers, four of them tied on the lowest value: all four score 1, then ranks 5 and 6 (of 6).
    values = pd.Series([3.0, 1.0, 1.0, 2.0, 1.0, 1.0], index=[10, 11, 12, 13, 14, 15])
    assert rfm_segments.quintile_score(values).to_dict() == {10: 5, 11: 1, 12: 1, 13: 4, 14: 1, 15: 1}
    assert rfm_segments.quintile_score(pd.Series([7.0] * 5)).tolist() == [1] * 5


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_row_order_and_index_do_not_matter(seed):
    values = tied_values(200, seed)
    scores = rfm_segments.quintile_score(values)
    order = np.random.default_rng(seed).permutation(len(values))
    shuffled = values.iloc[order].set_axis(values.index[order] + 1_000)
    again = rfm_segments.quintile_score(shuffled)
    assert (again.to_numpy() == scores.to_numpy()[order]).all()


def test_missing_values_are_refused():
    with pytest.raises(ValueError, match="missing"):
        rfm_segments.quintile_score(pd.Series([1.0, np.nan]))
    assert rfm_segments.quintile_score(pd.Series([], dtype="float64")).empty


def random_purchases(n_customers: int, seed: int) -> pd.DataFrame:
    """Cleaned lines for customers with few invoices, few days and round amounts: ties on every metric."""
    rng = np.random.default_rng(seed)
    rows = []
    for customer in range(1, n_customers + 1):
        for k in range(rng.choice([1, 1, 1, 2, 2, 3, 5])):
            day = pd.Timestamp("2010-12-01") + pd.Timedelta(days=int(rng.integers(0, 10)))
            rows.append((customer, f"{customer}-{k}", str(day), float(rng.choice([5.0, 10.0, 20.0]))))
    return purchases(rows)


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_relabelling_customer_ids_leaves_every_customers_scores_unchanged(seed):
    lines = random_purchases(60, seed)
    before = rfm_segments.rfm_table(lines).set_index("customer_id")
    # Give every customer another id, in a shuffled order: a tie-break on ids would move tied customers.
    rng = np.random.default_rng(100 + seed)
    ids = before.index.to_numpy()
    new_ids = dict(zip(ids, rng.permutation(ids) * 7 + 1_000, strict=True))
    relabelled = lines.assign(customer_id=lines["customer_id"].map(new_ids).astype("Int64"))
    after = rfm_segments.rfm_table(relabelled).set_index("customer_id")
    after.index = after.index.map({new: old for old, new in new_ids.items()})
    after = after.loc[before.index]
    columns = ["recency_days", "frequency", "monetary", "r_score", "f_score", "m_score", "rfm_score"]
    pd.testing.assert_frame_equal(after[[*columns, "segment"]], before[[*columns, "segment"]])
    # The inputs are heavily tied, so the property is not vacuous.
    assert before["frequency"].value_counts().max() > 10 and before["recency_days"].value_counts().max() > 3


def test_tied_customers_share_a_segment():
    # Customers 1-4 are indistinguishable (one invoice of 10 on the same day); customer 5 buys more, later.
    rows = [(c, f"i{c}", "2010-12-01 10:00", 10.0) for c in (4, 2, 3, 1)]
    rows += [(5, "i5", "2010-12-05 10:00", 50.0), (5, "j5", "2010-12-06 10:00", 50.0)]
    rfm = rfm_segments.rfm_table(purchases(rows)).set_index("customer_id")
    tied = rfm.loc[[1, 2, 3, 4]]
    assert (tied["rfm_score"] == "111").all() and (tied["segment"] == tied["segment"].iloc[0]).all()
    assert rfm.loc[5, "rfm_score"] == "555"
