import io

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_blobs
from sklearn.metrics import pairwise_distances, silhouette_score
from sklearn.mixture import GaussianMixture

from pipeline.customers import clustering, plots, rfm_segments
from pipeline.customers.schemas import (
    ClusterProfiles,
    CustomerClusters,
    ModelSelection,
    SegmentClusterCrosstab,
)


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("k", [2, 4, 7])
def test_sample_silhouette_equals_sklearn(seed, k):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(150, 3))
    labels = rng.integers(0, k, size=150)
    labels[0] = k  # a singleton cluster, scored 0 by convention
    expected = silhouette_score(x, labels)
    assert clustering.sample_silhouette(pairwise_distances(x), labels) == pytest.approx(expected, abs=1e-12)


def test_sample_silhouettes_equal_one_product_per_labelling():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(120, 3))
    distances = pairwise_distances(x)
    labelings = [rng.integers(0, k, size=120) for k in (2, 3, 9)] + [np.where(x[:, 0] > 0, 7, -1)]
    together = clustering.sample_silhouettes(distances, labelings)
    one_by_one = [silhouette_score(x, labels) for labels in labelings]
    np.testing.assert_allclose(together, one_by_one, rtol=0, atol=1e-12)


def blobs(centers: int, seed: int = 0) -> pd.DataFrame:
    x, _ = make_blobs(n_samples=600, centers=centers, n_features=3, cluster_std=0.6, random_state=seed)
    return pd.DataFrame(x, columns=list(clustering.FEATURE_COLUMNS)).assign(customer_id=np.arange(len(x)))


@pytest.mark.parametrize("centers", [3, 4, 5])
def test_choose_k_finds_blob_count(centers):
    selection = clustering.model_selection(blobs(centers), k_range=range(2, 9), covariance_types=("full",))
    assert clustering.choose_k(selection) == centers


def test_model_selection_table_on_blobs():
    selection = ModelSelection.validate(clustering.model_selection(blobs(4), k_range=range(2, 6)))
    assert len(selection) == 4 * 5
    kmeans = selection[selection["model"] == "kmeans"].set_index("k")
    assert kmeans["inertia"].is_monotonic_decreasing
    assert kmeans["silhouette"].idxmax() == 4
    gmm = selection[selection["model"] == "gmm"]
    assert (
        clustering.best_covariance_type(selection, k=4)
        == gmm.loc[gmm[gmm["k"] == 4]["bic"].idxmin(), "covariance_type"]
    )


def test_model_selection_is_repeatable_and_sample_bounded():
    features = blobs(3)
    first = clustering.model_selection(features, k_range=range(2, 4), silhouette_sample=100, random_state=3)
    again = clustering.model_selection(features, k_range=range(2, 4), silhouette_sample=100, random_state=3)
    pd.testing.assert_frame_equal(first, again)
    full = clustering.model_selection(features, k_range=range(2, 4), silhouette_sample=5000, random_state=3)
    # With a 100-customer sample the silhouette is an estimate; the other indices use everyone.
    assert not np.allclose(first["silhouette"], full["silhouette"])
    pd.testing.assert_series_equal(first["calinski_harabasz"], full["calinski_harabasz"])


def test_mixtures_fitted_on_a_sample_are_scored_on_everyone():
    features = blobs(4)
    exact = clustering.model_selection(features, k_range=range(2, 6), mixture_sample=None)
    # A sample at least as large as the data is the data.
    pd.testing.assert_frame_equal(clustering.model_selection(features, k_range=range(2, 6)), exact)
    sampled = clustering.model_selection(features, k_range=range(2, 6), mixture_sample=200)
    ModelSelection.validate(sampled)
    is_kmeans = sampled["model"] == "kmeans"
    pd.testing.assert_frame_equal(sampled[is_kmeans], exact[is_kmeans])
    assert not np.allclose(sampled.loc[~is_kmeans, "bic"], exact.loc[~is_kmeans, "bic"])
    # On well separated blobs the sample finds the same structure: every covariance type's BIC is lowest
    # at the true k, and within 2% of the all-customer fit there.
    for table in (sampled, exact):
        bic = table[table["model"] == "gmm"].pivot(index="k", columns="covariance_type", values="bic")
        assert (bic.idxmin() == 4).all()
    sampled_bic, exact_bic = (
        t[(t["model"] == "gmm") & (t["k"] == 4)].set_index("covariance_type")["bic"] for t in (sampled, exact)
    )
    np.testing.assert_allclose(sampled_bic, exact_bic, rtol=0.02)
    # The BIC of a mixture is that of its parameters on all customers, whatever they were fitted on.
    gmm = GaussianMixture(n_components=4, covariance_type="full", random_state=0).fit(
        features[list(clustering.FEATURE_COLUMNS)].to_numpy()
    )
    row = exact[(exact["model"] == "gmm") & (exact["k"] == 4) & (exact["covariance_type"] == "full")]
    assert row["bic"].iloc[0] == pytest.approx(gmm.bic(features[list(clustering.FEATURE_COLUMNS)].to_numpy()))
    with pytest.raises(ValueError, match="mixture_sample"):
        clustering.model_selection(features, k_range=range(2, 6), mixture_sample=5)


def test_choose_k_by_hand():
    # Gains: k=3 -> 60, k=4 -> 30, k=5 -> 2, k=6 -> 1; ratios 2 (k=3), 15 (k=4), 2 (k=5).
    selection = pd.DataFrame(
        {"model": ["kmeans"] * 5, "k": [2, 3, 4, 5, 6], "inertia": [100.0, 40.0, 10.0, 8.0, 7.0]}
    )
    assert clustering.choose_k(selection) == 4
    # Rows of other models and row order do not matter.
    noise = pd.DataFrame({"model": ["gmm"], "k": [4], "inertia": [np.nan]})
    assert clustering.choose_k(pd.concat([noise, selection.iloc[::-1]])) == 4


def test_choose_k_needs_consecutive_k():
    selection = pd.DataFrame({"model": ["kmeans"] * 4, "k": [2, 3, 5, 6], "inertia": [9.0, 4.0, 3.0, 2.5]})
    with pytest.raises(ValueError, match="three consecutive"):
        clustering.choose_k(selection)


def test_model_selection_rejects_bad_k():
    with pytest.raises(ValueError, match="every k"):
        clustering.model_selection(blobs(3), k_range=[1, 2])


@pytest.fixture(scope="module")
def real_rfm(real_cleaned):
    return rfm_segments.rfm_table(real_cleaned)


@pytest.fixture(scope="module")
def real_fit(real_rfm):
    return clustering.fit_clusters(real_rfm, k=4, random_state=0)


def test_cluster_features_are_standardised_logs(real_rfm):
    features = clustering.cluster_features(real_rfm)
    assert list(features.columns) == ["customer_id", *clustering.FEATURE_COLUMNS]
    np.testing.assert_allclose(features[list(clustering.FEATURE_COLUMNS)].mean(), 0, atol=1e-9)
    np.testing.assert_allclose(features[list(clustering.FEATURE_COLUMNS)].std(ddof=0), 1, atol=1e-9)
    # Order-preserving: the log of monetary ranks customers exactly like monetary.
    assert (features["log_monetary"].rank() == real_rfm["monetary"].reset_index(drop=True).rank()).all()


def test_fit_clusters_is_stable_on_rerun(real_rfm, real_fit):
    clusters, profiles = clustering.fit_clusters(real_rfm, k=4, random_state=0)
    pd.testing.assert_frame_equal(clusters, real_fit[0])
    pd.testing.assert_frame_equal(profiles, real_fit[1])


def test_fit_clusters_tables(real_rfm, real_fit):
    clusters, profiles = real_fit
    CustomerClusters.validate(clusters, lazy=True)
    ClusterProfiles.validate(profiles, lazy=True)
    assert clusters["customer_id"].tolist() == real_rfm["customer_id"].tolist()
    for model in clustering.MODELS:
        sizes = clusters[f"{model}_cluster"].value_counts().sort_index()
        part = profiles[profiles["model"] == model].set_index("cluster")
        assert (part["customers"] == sizes.reindex(part.index, fill_value=0)).all()
        means = real_rfm.groupby(clusters[f"{model}_cluster"].to_numpy())["monetary"].mean()
        np.testing.assert_allclose(part["mean_monetary"], means.reindex(part.index))
        assert part["mean_monetary"].is_monotonic_decreasing
        assert part["name"].is_unique


def test_gmm_probability_is_max_posterior(real_rfm, real_fit):
    clusters, _ = real_fit
    x = clustering.cluster_features(real_rfm)[list(clustering.FEATURE_COLUMNS)].to_numpy()
    proba = (
        GaussianMixture(n_components=4, covariance_type="full", n_init=1, random_state=0)
        .fit(x)
        .predict_proba(x)
    )
    np.testing.assert_allclose(clusters["gmm_probability"], proba.max(axis=1), rtol=1e-6)
    assert clusters["gmm_probability"].between(0.25, 1).all()  # a maximum of 4 probabilities is >= 1/4


def test_cluster_names_describe_obvious_groups():
    rng = np.random.default_rng(0)

    def group(n, recency, frequency, monetary):
        return pd.DataFrame(
            {
                "recency_days": rng.integers(*recency, n),
                "frequency": rng.integers(*frequency, n),
                "monetary": rng.uniform(*monetary, n),
            }
        )

    # 20% top customers, 50% in the middle, 30% one-off lapsed: the top group's median lies above the
    # 80th percentile of monetary, the bottom group's below the 20th.
    rfm = pd.concat(
        [
            group(40, (1, 10), (20, 40), (5000, 9000)),
            group(100, (60, 90), (3, 6), (500, 900)),
            group(60, (250, 350), (1, 2), (10, 60)),
        ],
        ignore_index=True,
    ).assign(customer_id=np.arange(200))
    _, profiles = clustering.fit_clusters(rfm, k=3)
    names = profiles.set_index(["model", "cluster"])["name"]
    for model in clustering.MODELS:
        assert names[(model, 0)] == "Top-value frequent recent"
        assert names[(model, 2)] == "Very low-value one-off lapsed"


def test_segment_cluster_crosstab_counts(real_rfm, real_fit):
    clusters, _ = real_fit
    table = SegmentClusterCrosstab.validate(clustering.segment_cluster_crosstab(real_rfm, clusters))
    for model in clustering.MODELS:
        part = table[table["model"] == model]
        assert part["customers"].sum() == len(real_rfm)
        expected = pd.crosstab(real_rfm["segment"].to_numpy(), clusters[f"{model}_cluster"].to_numpy())
        got = part.pivot(index="segment", columns="cluster", values="customers")
        np.testing.assert_array_equal(got.to_numpy(), expected.to_numpy())


def test_fit_clusters_rejects_bad_k(real_rfm):
    with pytest.raises(ValueError, match="k must be"):
        clustering.fit_clusters(real_rfm.head(5), k=5)


def test_cluster_figures_render(real_rfm, real_fit):
    selection = clustering.model_selection(blobs(3), k_range=range(2, 5), covariance_types=("full", "tied"))
    for fig in (
        plots.model_selection_figure(selection, chosen_k=3),
        plots.cluster_scatter_figure(real_rfm, *real_fit, model="gmm"),
    ):
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=40)
        assert buffer.getvalue().startswith(b"\x89PNG")
