"""The blocking checks of the customer assets fail on corrupted tables."""

import pandas as pd
import pytest

from assets.checks import validate_frame
from pipeline.customers import clustering
from pipeline.customers import rfm_segments as rfm_logic
from pipeline.customers.schemas import ClusterProfiles, CustomerClusters, CustomerRfm
from pipeline.sources import synthetic
from pipeline.sources.readers import normalize_frame
from pipeline.staging.cleaning import clean


@pytest.fixture(scope="module")
def rfm_table() -> pd.DataFrame:
    raw = normalize_frame(synthetic.generate_frame(20_000, random_state=7), source_file="s", source_sheet=None)
    return rfm_logic.rfm_table(clean(raw).cleaned)


def test_valid_rfm_passes(rfm_table):
    assert validate_frame(rfm_table, CustomerRfm).passed


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
    result = validate_frame(corrupt(rfm_table), CustomerRfm)
    assert not result.passed
    assert result.metadata["failure_cases"].value >= 1


def test_clusters_check_rejects_probabilities_above_one(rfm_table):
    clusters, profiles = clustering.fit_clusters(rfm_table, k=3, random_state=0)
    assert validate_frame(clusters, CustomerClusters).passed
    assert validate_frame(profiles, ClusterProfiles).passed
    assert not validate_frame(clusters.assign(gmm_probability=1.5), CustomerClusters).passed
