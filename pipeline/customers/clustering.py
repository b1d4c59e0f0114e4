"""Model-based customer clusters on RFM: k-means and Gaussian mixtures.

What belongs here: the clustering feature matrix, the model-selection table and the rule that picks the
number of clusters, the final fit with deterministic cluster numbers and readable names, and the cross
tabulation against the rule-based RFM segments. The RFM table itself comes from
``pipeline.customers.rfm_segments``; figures live in ``pipeline.customers.plots``.

Features. ``log1p`` of recency days, frequency and monetary value, each standardised to mean 0 and
standard deviation 1. The logs tame the heavy right tails (a few wholesale accounts spend hundreds of times
the median) that would otherwise give each outlier its own cluster; standardising gives the three axes
equal weight. No further features are added: clusters stay explainable in the R/F/M terms that marketing
acts on.

Cluster numbers. Labels from either model are renumbered by mean monetary value, descending: cluster 0 is
the highest-spending group. Random initialisation therefore cannot change what a number means.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.metrics import calinski_harabasz_score, davies_bouldin_score, pairwise_distances
from sklearn.mixture import GaussianMixture
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

FEATURE_COLUMNS: tuple[str, ...] = ("log_recency", "log_frequency", "log_monetary")
RFM_COLUMNS: tuple[str, ...] = ("recency_days", "frequency", "monetary")
MODELS: tuple[str, ...] = ("kmeans", "gmm")
_N_INIT = 10


def cluster_features(rfm: pd.DataFrame) -> pd.DataFrame:
    """Build the standardised log-RFM feature matrix.

    Args:
        rfm: One row per customer with ``customer_id``, ``recency_days``, ``frequency`` and ``monetary``
            (the output of ``customers.rfm_table``).

    Returns:
        ``customer_id`` plus the ``FEATURE_COLUMNS`` (z-scores of ``log1p`` of each metric), in the row
        order of ``rfm``.
    """
    return scaled_features(rfm, fit_feature_scaler(rfm))


def _logged(rfm: pd.DataFrame) -> np.ndarray:
    """``log1p`` of recency days, frequency and monetary value, as a float matrix."""
    return np.log1p(rfm[list(RFM_COLUMNS)].to_numpy(dtype="float64"))


def fit_feature_scaler(rfm: pd.DataFrame) -> StandardScaler:
    """Fit the standardisation of the log-RFM features on ``rfm`` (see :func:`cluster_features`).

    Args:
        rfm: One row per customer with ``recency_days``, ``frequency`` and ``monetary``.

    Returns:
        The fitted scaler; :func:`scaled_features` applies it to any customers.
    """
    return StandardScaler().fit(_logged(rfm))


def scaled_features(rfm: pd.DataFrame, scaler: StandardScaler) -> pd.DataFrame:
    """The feature matrix of :func:`cluster_features` with an already fitted scaler.

    Args:
        rfm: One row per customer with ``customer_id``, ``recency_days``, ``frequency`` and ``monetary``.
        scaler: Output of :func:`fit_feature_scaler` (on these or other customers).

    Returns:
        ``customer_id`` plus the ``FEATURE_COLUMNS``, in the row order of ``rfm``.
    """
    scaled = scaler.transform(_logged(rfm))
    return pd.concat(
        [
            rfm[["customer_id"]].reset_index(drop=True),
            pd.DataFrame(scaled, columns=list(FEATURE_COLUMNS)),
        ],
        axis=1,
    )


def _matrix(features: pd.DataFrame) -> np.ndarray:
    """Return the numeric feature columns (everything but ``customer_id``) as a float matrix."""
    return features.drop(columns=["customer_id"], errors="ignore").to_numpy(dtype="float64")


def sample_silhouette(distances: np.ndarray, labels: np.ndarray) -> float:
    """Mean silhouette from a precomputed distance matrix.

    Equal to ``sklearn.metrics.silhouette_score(distances, labels, metric="precomputed")`` (members of
    singleton clusters score 0, as there), but the distance matrix is computed once and shared by every
    model in ``model_selection`` instead of being recomputed per fit.

    Args:
        distances: Square matrix of pairwise Euclidean distances between the sampled customers.
        labels: Cluster label of each sampled customer; at least two distinct labels.

    Returns:
        The mean silhouette coefficient in [-1, 1].
    """
    return float(sample_silhouettes(distances, [labels])[0])


def sample_silhouettes(distances: np.ndarray, labelings: Sequence[np.ndarray]) -> np.ndarray:
    """Mean silhouettes of several labellings of the same sample, from one matrix product.

    Each labelling's per-cluster distance sums are ``distances @ onehot``; stacking the one-hot matrices of
    all labellings side by side makes that a single product, which reads the large distance matrix once
    instead of once per labelling (the products are what the silhouettes of ``model_selection`` cost).

    Args:
        distances: Square matrix of pairwise Euclidean distances between the sampled customers.
        labelings: Cluster labels of the sampled customers, one array per model; each with at least two
            distinct labels.

    Returns:
        The mean silhouette coefficient of each labelling, in order (see :func:`sample_silhouette`).
    """
    n = distances.shape[0]
    rows = np.arange(n)
    inverses = [np.unique(labels, return_inverse=True)[1] for labels in labelings]
    offsets = np.cumsum([0] + [int(inverse.max()) + 1 for inverse in inverses])
    onehot = np.zeros((n, offsets[-1]))
    for inverse, offset in zip(inverses, offsets[:-1], strict=True):
        onehot[rows, offset + inverse] = 1.0
    all_sums = distances @ onehot
    means = np.empty(len(inverses))
    for i, inverse in enumerate(inverses):
        sums = all_sums[:, offsets[i] : offsets[i + 1]]
        counts = onehot[:, offsets[i] : offsets[i + 1]].sum(axis=0)
        own_count = counts[inverse]
        a = sums[rows, inverse] / np.maximum(own_count - 1, 1)
        mean_to = sums / counts
        mean_to[rows, inverse] = np.inf
        b = mean_to.min(axis=1)
        denominator = np.maximum(a, b)
        s = np.divide(b - a, denominator, out=np.zeros(n), where=denominator > 0)
        s[own_count == 1] = 0.0
        means[i] = s.mean()
    return means


def _scorable(labels: np.ndarray, sample: np.ndarray) -> bool:
    """Whether the validity indices are defined: two clusters or more, in the data and in the sample."""
    return len(np.unique(labels)) >= 2 and len(np.unique(labels[sample])) >= 2


def _scores(x: np.ndarray, labels: np.ndarray, sample: np.ndarray) -> dict[str, float]:
    """Davies-Bouldin and Calinski-Harabasz indices (NaN when not scorable); the silhouette comes later."""
    if not _scorable(labels, sample):
        return {"silhouette": np.nan, "davies_bouldin": np.nan, "calinski_harabasz": np.nan}
    return {
        "silhouette": np.nan,
        "davies_bouldin": float(davies_bouldin_score(x, labels)),
        "calinski_harabasz": float(calinski_harabasz_score(x, labels)),
    }


def model_selection(
    features: pd.DataFrame,
    *,
    k_range: Iterable[int] = range(2, 11),
    covariance_types: Iterable[str] = ("full", "diag", "tied", "spherical"),
    random_state: int = 0,
    silhouette_sample: int = 5000,
    mixture_sample: int | None = 3000,
) -> pd.DataFrame:
    """Fit k-means and Gaussian mixtures over a range of cluster counts and score each fit.

    The silhouette is O(n^2), so it is computed on one random sample of at most ``silhouette_sample``
    customers, drawn once with ``random_state`` and shared by every fit so that rows are comparable (its
    distance matrix, 8 * sample^2 bytes, is computed once). The Davies-Bouldin and Calinski-Harabasz indices
    use all customers. Mixtures are scored on their hard (most probable) assignment.

    K-means, which fixes k (:func:`choose_k`), is fitted on all customers. The mixtures, which only rank
    covariance types, are fitted on one seeded sample of at most ``mixture_sample`` customers, so their
    cost stays flat as customers grow; each is then scored (assignment, BIC, AIC) on all customers. This
    is an approximation. On the 8,925 customers of the 1.07M-line benchmark, with random states 0-3, a
    3,000-customer sample always kept the covariance type chosen at the elbow k, 25-27 of the 36 BICs were
    within 2% of all-customer fits and the best covariance type agreed at 7 of the 9 k; but a
    single-initialisation mixture can land in another local optimum either way, which moves a BIC by
    thousands at some k.
    ``None`` fits them on all customers.

    Args:
        features: Output of ``cluster_features`` (every column but ``customer_id`` is a feature).
        k_range: Cluster counts to try; each must be at least 2.
        covariance_types: Gaussian-mixture covariance structures to try.
        random_state: Seed for the silhouette sample and every model initialisation.
        silhouette_sample: Maximum number of customers in the silhouette sample.
        mixture_sample: Maximum number of customers the mixtures are fitted on; ``None`` for all.

    Returns:
        Long table, one row per fitted model (columns of ``pipeline.customers.schemas.ModelSelection``):
        ``model`` (``"kmeans"`` or ``"gmm"``), ``k``, ``covariance_type`` (missing for k-means), ``inertia``
        (k-means only), ``silhouette``, ``davies_bouldin``, ``calinski_harabasz``, ``bic`` and ``aic``
        (mixtures only).

    Raises:
        ValueError: If a ``k`` is below 2 or not below the number of customers.
    """
    x = _matrix(features)
    ks = list(k_range)
    if any(k < 2 or k >= len(x) for k in ks):
        raise ValueError(f"every k must be in [2, {len(x) - 1}], got {ks}")
    if mixture_sample is not None and ks and mixture_sample <= max(ks):
        raise ValueError(f"mixture_sample must exceed the largest k ({max(ks)}), got {mixture_sample}")
    covariance_types = tuple(covariance_types)
    rng = np.random.default_rng(random_state)
    sample = np.sort(rng.choice(len(x), size=min(silhouette_sample, len(x)), replace=False))
    distances = pairwise_distances(x[sample])
    fitted = (
        x
        if mixture_sample is None or mixture_sample >= len(x)
        else x[np.sort(rng.choice(len(x), size=mixture_sample, replace=False))]
    )

    rows: list[dict[str, object]] = []
    # The sample labels of every scorable model, by row: their silhouettes come from one matrix product.
    labelings: dict[int, np.ndarray] = {}
    # A few thousand 3-d points are too small to gain from BLAS/OpenMP threads; on a busy 2-core machine
    # their spin-waiting made the 45 fits 4x slower than single-threaded.
    with threadpool_limits(limits=1):
        for k in ks:
            kmeans = KMeans(n_clusters=k, n_init=_N_INIT, random_state=random_state).fit(x)
            rows.append(
                {"model": "kmeans", "k": k, "covariance_type": None, "inertia": float(kmeans.inertia_)}
                | _scores(x, kmeans.labels_, sample)
                | {"bic": np.nan, "aic": np.nan}
            )
            if _scorable(kmeans.labels_, sample):
                labelings[len(rows) - 1] = kmeans.labels_[sample]
            for covariance_type in covariance_types:
                gmm = _mixture(k, covariance_type, random_state).fit(fitted)
                labels = gmm.predict(x)
                rows.append(
                    {"model": "gmm", "k": k, "covariance_type": covariance_type, "inertia": np.nan}
                    | _scores(x, labels, sample)
                    | {"bic": float(gmm.bic(x)), "aic": float(gmm.aic(x))}
                )
                if _scorable(labels, sample):
                    labelings[len(rows) - 1] = labels[sample]
    # One large matrix product, unlike the fits, does gain from BLAS threads.
    silhouettes = sample_silhouettes(distances, list(labelings.values()))
    for row, silhouette in zip(labelings, silhouettes, strict=True):
        rows[row]["silhouette"] = float(silhouette)
    return pd.DataFrame(rows).astype({"k": "int64", "covariance_type": "object"})


def _mixture(k: int, covariance_type: str, random_state: int) -> GaussianMixture:
    """Return the unfitted Gaussian mixture used throughout (one k-means initialisation, seeded)."""
    return GaussianMixture(
        n_components=k, covariance_type=covariance_type, n_init=1, random_state=random_state
    )


def choose_k(selection: pd.DataFrame) -> int:
    """Pick the number of clusters at the elbow of the k-means inertia curve.

    With ``gain(k) = inertia(k - 1) - inertia(k)`` the reduction bought by the k-th cluster, the elbow is the
    k maximising ``gain(k) / gain(k + 1)``: the point after which one more cluster buys far less than the
    last one did. A ratio rather than the raw second difference keeps the rule scale-free, so the large
    early gains of any inertia curve do not pull the elbow towards small k. Only k whose two neighbours
    were fitted qualify (the smallest and largest k tried never win); ties go to the smaller k. The
    inertia elbow is preferred to the best silhouette because RFM data form one continuous cloud, on which
    the silhouette peaks at k = 2 (a "good versus the rest" split too coarse to act on). On well separated
    blobs the elbow sits at the true k.

    Args:
        selection: Output of ``model_selection``; needs the k-means rows for consecutive k.

    Returns:
        The chosen number of clusters.

    Raises:
        ValueError: If fewer than three consecutive k were fitted with k-means.
    """
    inertia = selection.loc[selection["model"] == "kmeans"].set_index("k")["inertia"].sort_index()
    ks = inertia.index.to_series()
    gain = inertia.shift(1) - inertia
    next_gain = gain.shift(-1)
    # A vanishing next gain (the data are exhausted) makes the elbow unbeatable.
    ratio = pd.Series(
        np.divide(gain, next_gain, out=np.full(len(gain), np.inf), where=next_gain.to_numpy() > 0),
        index=inertia.index,
    )
    consecutive = (ks.shift(1) == ks - 1) & (ks.shift(-1) == ks + 1)
    ratio = ratio[consecutive.to_numpy() & gain.notna().to_numpy() & next_gain.notna().to_numpy()]
    if ratio.empty:
        raise ValueError("choose_k needs k-means inertia for at least three consecutive k")
    return int(ratio.index[ratio.to_numpy().argmax()])


def best_covariance_type(selection: pd.DataFrame, *, k: int) -> str:
    """Return the Gaussian-mixture covariance type with the lowest BIC at ``k``.

    Args:
        selection: Output of ``model_selection``.
        k: The chosen number of clusters.

    Returns:
        The covariance type, e.g. ``"full"``.

    Raises:
        ValueError: If no mixture was fitted with ``k`` components.
    """
    rows = selection[(selection["model"] == "gmm") & (selection["k"] == k)].dropna(subset=["bic"])
    if rows.empty:
        raise ValueError(f"no Gaussian mixture with k={k} in the selection table")
    return str(rows.sort_values(["bic", "covariance_type"]).iloc[0]["covariance_type"])


def _renumber(labels: np.ndarray, monetary: np.ndarray, k: int) -> np.ndarray:
    """Return a map old label -> new label ordering clusters by mean monetary, descending.

    Empty clusters (possible for mixtures) go last, in their original order.
    """
    means = np.array([monetary[labels == c].mean() if (labels == c).any() else -np.inf for c in range(k)])
    order = np.lexsort((np.arange(k), -means))
    mapping = np.empty(k, dtype="int64")
    mapping[order] = np.arange(k)
    return mapping


def _level(value: float, cuts: np.ndarray, words: tuple[str, ...]) -> str:
    """Return ``words[i]`` where ``i`` counts the cuts strictly below ``value``."""
    return words[int(np.searchsorted(cuts, value, side="left"))]


def _name_clusters(profile: pd.DataFrame, rfm: pd.DataFrame, medians: pd.DataFrame) -> list[str]:
    """Name clusters from their median R, F and M, placed among all customers.

    A name reads "<value> <frequency> <recency>", e.g. "Top-value frequent recent". Value uses the customer
    quintiles of ``monetary`` (Very low / Low / Mid / High / Top); frequency the tertiles of ``frequency``
    (infrequent / regular / frequent), with "one-off" when the median customer bought once; recency the
    tertiles of ``recency_days`` (recent / lapsing / lapsed). Medians rather than means keep one wholesale
    buyer from renaming a cluster. Clusters that still share a name get " (2)", " (3)"... in cluster order,
    so names are unique within a model; a cluster without customers is named "Empty".
    """
    value_cuts = rfm["monetary"].quantile([0.2, 0.4, 0.6, 0.8]).to_numpy()
    freq_cuts = rfm["frequency"].quantile([1 / 3, 2 / 3]).to_numpy()
    recency_cuts = rfm["recency_days"].quantile([1 / 3, 2 / 3]).to_numpy()
    names: list[str] = []
    for cluster in profile["cluster"]:
        if cluster not in medians.index:
            names.append("Empty")
            continue
        med = medians.loc[cluster]
        value = _level(
            med["monetary"],
            value_cuts,
            ("Very low-value", "Low-value", "Mid-value", "High-value", "Top-value"),
        )
        freq = (
            "one-off"
            if med["frequency"] <= 1
            else _level(med["frequency"], freq_cuts, ("infrequent", "regular", "frequent"))
        )
        recency = _level(med["recency_days"], recency_cuts, ("recent", "lapsing", "lapsed"))
        names.append(f"{value} {freq} {recency}")
    seen: dict[str, int] = {}
    unique: list[str] = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        unique.append(name if seen[name] == 1 else f"{name} ({seen[name]})")
    return unique


def _profile(rfm: pd.DataFrame, labels: np.ndarray, model: str, k: int) -> pd.DataFrame:
    """Summarise each cluster of one model and name it."""
    frame = rfm[["recency_days", "frequency", "monetary"]].reset_index(drop=True).assign(cluster=labels)
    grouped = frame.groupby("cluster")
    stats = grouped.agg(
        customers=("monetary", "size"),
        mean_recency_days=("recency_days", "mean"),
        mean_frequency=("frequency", "mean"),
        mean_monetary=("monetary", "mean"),
        revenue=("monetary", "sum"),
    ).reindex(range(k))
    profile = stats.rename_axis("cluster").reset_index()
    profile["customers"] = profile["customers"].fillna(0).astype("int64")
    profile["revenue_share"] = profile["revenue"].fillna(0.0) / frame["monetary"].sum()
    profile["name"] = _name_clusters(
        profile, rfm, grouped[["recency_days", "frequency", "monetary"]].median()
    )
    profile.insert(0, "model", model)
    return profile.drop(columns=["revenue"])


class ClusterFit(NamedTuple):
    """Output of :func:`fit_cluster_models`: the two tables and the fitted objects that produced them.

    Attributes:
        clusters: As returned by :func:`fit_clusters`.
        profiles: As returned by :func:`fit_clusters`.
        model: The scaler, both models and their renumbering (see :class:`ClusterModel`).
    """

    clusters: pd.DataFrame
    profiles: pd.DataFrame
    model: ClusterModel


class ClusterModel(NamedTuple):
    """Everything needed to assign clusters to customers, as plain scikit-learn and NumPy objects.

    Attributes:
        scaler: Standardisation of the log-RFM features (:func:`fit_feature_scaler`).
        kmeans: The fitted k-means.
        gmm: The fitted Gaussian mixture.
        kmeans_renumbering: Map from a raw k-means label to the published cluster number.
        gmm_renumbering: Map from a raw mixture component to the published cluster number.
    """

    scaler: StandardScaler
    kmeans: KMeans
    gmm: GaussianMixture
    kmeans_renumbering: np.ndarray
    gmm_renumbering: np.ndarray


def fit_clusters(
    rfm: pd.DataFrame,
    *,
    k: int,
    random_state: int = 0,
    covariance_type: str = "full",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Fit k-means and a Gaussian mixture with ``k`` clusters and describe the clusters.

    Args:
        rfm: Output of ``customers.rfm_table``.
        k: Number of clusters for both models.
        random_state: Seed for both models' initialisation.
        covariance_type: Covariance structure of the Gaussian mixture.

    Returns:
        ``(clusters, profiles)``. ``clusters`` has one row per customer (columns of
        ``pipeline.customers.schemas.CustomerClusters``): ``customer_id``, ``kmeans_cluster``, ``gmm_cluster``
        and ``gmm_probability`` (the mixture's posterior probability of the assigned cluster, i.e. the row
        maximum of ``predict_proba``). ``profiles`` has one row per model and cluster (columns of
        ``pipeline.customers.schemas.ClusterProfiles``): ``model``, ``cluster``, ``customers``,
        ``mean_recency_days``, ``mean_frequency``, ``mean_monetary``, ``revenue_share`` and a readable
        ``name`` unique within the model. Clusters are numbered by mean monetary, descending.

    Raises:
        ValueError: If ``k`` is below 2 or not below the number of customers.
    """
    fit = fit_cluster_models(rfm, k=k, random_state=random_state, covariance_type=covariance_type)
    return fit.clusters, fit.profiles


def fit_cluster_models(
    rfm: pd.DataFrame,
    *,
    k: int,
    random_state: int = 0,
    covariance_type: str = "full",
) -> ClusterFit:
    """:func:`fit_clusters`, also returning the fitted scaler and models (to save them as an artifact).

    Args:
        rfm: Output of ``customers.rfm_table``.
        k: Number of clusters for both models.
        random_state: Seed for both models' initialisation.
        covariance_type: Covariance structure of the Gaussian mixture.

    Returns:
        The tables of :func:`fit_clusters` and the :class:`ClusterModel` that assigned them;
        :func:`assign_clusters` with that model reproduces ``clusters`` for the same customers.

    Raises:
        ValueError: If ``k`` is below 2 or not below the number of customers.
    """
    if k < 2 or k >= len(rfm):
        raise ValueError(f"k must be in [2, {len(rfm) - 1}], got {k}")
    scaler = fit_feature_scaler(rfm)
    x = _matrix(scaled_features(rfm, scaler))
    monetary = rfm["monetary"].to_numpy(dtype="float64")

    with threadpool_limits(limits=1):
        kmeans = KMeans(n_clusters=k, n_init=_N_INIT, random_state=random_state).fit(x)
        gmm = _mixture(k, covariance_type, random_state).fit(x)
        proba = gmm.predict_proba(x)
    gmm_raw = proba.argmax(axis=1)

    model = ClusterModel(
        scaler, kmeans, gmm, _renumber(kmeans.labels_, monetary, k), _renumber(gmm_raw, monetary, k)
    )
    clusters = _clusters_table(rfm, model, kmeans.labels_, proba)
    profiles = pd.concat(
        [
            _profile(rfm, clusters["kmeans_cluster"].to_numpy(), "kmeans", k),
            _profile(rfm, clusters["gmm_cluster"].to_numpy(), "gmm", k),
        ],
        ignore_index=True,
    )
    return ClusterFit(clusters, profiles, model)


def _clusters_table(
    rfm: pd.DataFrame, model: ClusterModel, kmeans_raw: np.ndarray, proba: np.ndarray
) -> pd.DataFrame:
    """The ``customer_clusters`` rows from raw k-means labels and mixture posteriors."""
    gmm_raw = proba.argmax(axis=1)
    return pd.DataFrame(
        {
            "customer_id": rfm["customer_id"].to_numpy(),
            "kmeans_cluster": model.kmeans_renumbering[kmeans_raw].astype("int64"),
            "gmm_cluster": model.gmm_renumbering[gmm_raw].astype("int64"),
            "gmm_probability": proba.max(axis=1),
        }
    )


def assign_clusters(rfm: pd.DataFrame, model: ClusterModel) -> pd.DataFrame:
    """Assign customers to the clusters of a fitted :class:`ClusterModel`.

    On the customers the model was fitted on this reproduces the ``clusters`` table of
    :func:`fit_cluster_models`: k-means labels come from ``predict`` (the nearest centre, which is what the
    fit's final labels are), mixture components and probabilities from ``predict_proba``.

    Args:
        rfm: One row per customer with ``customer_id``, ``recency_days``, ``frequency`` and ``monetary``.
        model: The fitted model.

    Returns:
        ``customer_id``, ``kmeans_cluster``, ``gmm_cluster`` and ``gmm_probability``, in the row order of
        ``rfm`` (columns of ``pipeline.customers.schemas.CustomerClusters``).
    """
    x = _matrix(scaled_features(rfm, model.scaler))
    with threadpool_limits(limits=1):
        kmeans_raw = model.kmeans.predict(x)
        proba = model.gmm.predict_proba(x)
    return _clusters_table(rfm, model, kmeans_raw, proba)


def segment_cluster_crosstab(rfm: pd.DataFrame, clusters: pd.DataFrame) -> pd.DataFrame:
    """Count customers per RFM segment and cluster, for both models.

    Args:
        rfm: Output of ``customers.rfm_table`` (``customer_id``, ``segment``).
        clusters: First output of ``fit_clusters``.

    Returns:
        Long table (columns of ``pipeline.customers.schemas.SegmentClusterCrosstab``): ``segment``, ``model``,
        ``cluster`` and ``customers``, with every pair of an observed segment and an observed cluster of
        the model, zeros included, ordered by model, segment and cluster.
    """
    joined = rfm[["customer_id", "segment"]].merge(clusters, on="customer_id", how="inner", validate="1:1")
    parts = []
    for model in MODELS:
        table = pd.crosstab(joined["segment"], joined[f"{model}_cluster"])
        long = table.stack().rename("customers").reset_index()
        long.columns = ["segment", "cluster", "customers"]
        parts.append(long.assign(model=model))
    out = pd.concat(parts, ignore_index=True)[["segment", "model", "cluster", "customers"]]
    out = out.astype({"cluster": "int64", "customers": "int64"})
    return out.sort_values(["model", "segment", "cluster"], ignore_index=True)
