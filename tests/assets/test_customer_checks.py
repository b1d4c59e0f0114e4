"""The blocking checks of the customer assets fail on corrupted tables."""

import pandas as pd
import pytest

from assets import customers
from pipeline import clustering, customers as rfm_logic, synthetic
from pipeline.cleaning import clean
from pipeline.readers import normalize_frame


@pytest.fixture(scope="module")
def rfm_table() -> pd.DataFrame:
    raw = normalize_frame(synthetic.generate_frame(20_000, random_state=7), source_file="s", source_sheet=None)
    return rfm_logic.rfm_table(clean(raw).cleaned)


def test_valid_rfm_passes(rfm_table):
    assert customers.rfm_schema(rfm_table).passed


@pytest.mark.parametrize(
    "corrupt",
    [
        lambda t: t.assign(monetary=t["monetary"].where(t.index != 0, -10.0)),
        lambda t: pd.concat([t, t.head(1)], ignore_index=True),
        lambda t: t.assign(r_score=t["r_score"].where(t.index != 0, 6)),
        lambda t: t.assign(segment=t["segment"].where(t.index != 0, "Whales")),
        lambda t: t.assign(recency_days=t["recency_days"].where(t.index != 0, -1)),
    ],
    ids=["negative_monetary", "duplicated_customer", "score_out_of_range", "unknown_segment", "negative_recency"],
)
def test_corrupted_rfm_fails_with_failure_cases(rfm_table, corrupt):
    result = customers.rfm_schema(corrupt(rfm_table))
    assert not result.passed
    assert result.metadata["failure_cases"].value >= 1


def test_clusters_check_rejects_probabilities_above_one(rfm_table):
    clusters, profiles = clustering.fit_clusters(rfm_table, k=3, random_state=0)
    assert customers.customer_clusters_schema(clusters).passed
    assert customers.cluster_profiles_schema(profiles).passed
    assert not customers.customer_clusters_schema(clusters.assign(gmm_probability=1.5)).passed
