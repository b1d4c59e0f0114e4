"""Time each Spark function against the embedded one on the real 2009-2010 sheet, and check they agree.

``python -m bench.spark_engine`` (options: ``--runs 3``, ``--master local[2]``, ``--path``) prints one
Markdown table: per step, the median wall time of each engine over ``--runs`` runs, the ratio, and how the
results compare (equal tables, or the agreement measure of the step). The Spark session is started once,
before the timings (its start-up is printed apart), and every Spark run includes writing its input to
parquet and collecting the result into pandas, as in the pipeline.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
from sklearn.metrics import adjusted_rand_score

REAL_SHEET = Path(__file__).resolve().parents[2] / "shared" / "data" / "online_retail_II_2009_2010.parquet"
K_CLUSTERS = 4
TOP_K = 10
HOLDOUT_CUTOFF = pd.Timestamp("2010-09-01")


def _median_time(function: Callable[[], object], runs: int) -> tuple[float, object]:
    """Median wall time of ``runs`` calls, and the last call's result."""
    times, result = [], None
    for _ in range(runs):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def _equal(left: pd.DataFrame, right: pd.DataFrame) -> str:
    try:
        pd.testing.assert_frame_equal(left, right, check_exact=False, rtol=0, atol=1e-12)
    except AssertionError as error:
        return f"DIFFERENT: {str(error).splitlines()[0]}"
    return "equal"


def main(argv: list[str] | None = None) -> int:
    """Run the comparison and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--path", type=Path, default=REAL_SHEET)
    args = parser.parse_args(argv)
    if not args.path.exists():
        print(f"skipped: the real sheet {args.path} is missing")
        return 0
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")

    from pipeline.baskets import basket_analysis
    from pipeline.customers import clustering, rfm_segments
    from pipeline.recommend import components, evaluation
    from pipeline.sources import readers
    from pipeline.spark import als as spark_als
    from pipeline.spark import baskets as spark_baskets
    from pipeline.spark import cleaning as spark_cleaning
    from pipeline.spark import clustering as spark_clustering
    from pipeline.spark import rfm as spark_rfm
    from pipeline.spark.session import ParquetStage, build_session
    from pipeline.staging import cleaning

    raw = readers.read_file(args.path)
    start = time.perf_counter()
    spark = build_session(args.master)
    spark.range(1).count()
    startup = time.perf_counter() - start
    stage = ParquetStage(spark)
    rows: list[tuple[str, float, float, str]] = []

    def compare(step: str, embedded: Callable[[], object], on_spark: Callable[[], object],
                verdict: Callable[[object, object], str]) -> tuple[object, object]:
        embedded_time, expected = _median_time(embedded, args.runs)
        spark_time, actual = _median_time(on_spark, args.runs)
        rows.append((step, embedded_time, spark_time, verdict(expected, actual)))
        print(f"  {step}: embedded {embedded_time:.2f} s, spark {spark_time:.2f} s", file=sys.stderr)
        return expected, actual

    def same_split(expected, actual) -> str:
        parts = ("cleaned", "rejected")
        return "; ".join(_equal(getattr(actual, part), getattr(expected, part)) for part in parts)

    result, _ = compare("cleaning", lambda: cleaning.clean(raw),
                        lambda: spark_cleaning.clean(spark, raw, stage=stage), same_split)
    cleaned, rejected = result.cleaned, result.rejected
    rfm, _ = compare("RFM", lambda: rfm_segments.rfm_table(cleaned, rejected=rejected),
                     lambda: spark_rfm.rfm_table(spark, cleaned, rejected=rejected, stage=stage),
                     lambda e, a: _equal(a, e))
    mining = basket_analysis.RuleMining()
    (itemsets, summary), (spark_itemsets, spark_summary) = compare(
        "frequent itemsets (all + top 5 countries)",
        lambda: basket_analysis.itemsets_and_summary(cleaned, mining),
        lambda: spark_baskets.itemsets_and_summary(spark, cleaned, mining, stage=stage),
        lambda e, a: f"{_equal(a[0], e[0])} ({len(e[0])} itemsets); summary "
                     f"{'equal' if a[1] == e[1] else 'DIFFERENT'}")
    thresholds = {"min_confidence": mining.min_confidence, "min_lift": mining.min_lift}
    compare("association rules", lambda: basket_analysis.association_rules_table(itemsets, **thresholds),
            lambda: spark_baskets.association_rules_table(spark, itemsets, stage=stage, **thresholds),
            lambda e, a: f"{_equal(a, e)} ({len(e)} rules)")

    def agreement(expected, actual) -> str:
        (e_clusters, _), (a_clusters, _) = expected, actual
        kmeans = adjusted_rand_score(e_clusters["kmeans_cluster"], a_clusters["kmeans_cluster"])
        gmm = adjusted_rand_score(e_clusters["gmm_cluster"], a_clusters["gmm_cluster"])
        return f"ARI k-means {kmeans:.3f}, GMM {gmm:.3f} (k = {K_CLUSTERS}, {len(e_clusters)} customers)"

    compare(f"k-means + GMM (k={K_CLUSTERS}, 10 inits)",
            lambda: clustering.fit_clusters(rfm, k=K_CLUSTERS, covariance_type="full"),
            lambda: spark_clustering.fit_clusters(spark, rfm, k=K_CLUSTERS, stage=stage), agreement)

    train, _, relevant = evaluation.temporal_split(cleaned, cutoff=HOLDOUT_CUTOFF, test_months=3)
    customers = relevant["any"]["customer_id"].unique()

    def hit_rates(expected, actual) -> str:
        rate = {name: evaluation.ranking_metrics(recs, relevant["any"], k=TOP_K)["hit_rate_at_k"].mean()
                for name, recs in (("svd", expected), ("als", actual))}
        return (f"hit rate@{TOP_K} on the {HOLDOUT_CUTOFF.date()} + 3 months holdout ({len(customers)} "
                f"customers): SVD {rate['svd']:.3f}, ALS {rate['als']:.3f}")

    compare("collaborative filtering: SVD component vs ALS (fit + top-10 for all)",
            lambda: components.SVDRecommender().fit(train).recommend(
                train["customer_id"].dropna().unique(), k=TOP_K),
            lambda: spark_als.als_recommendations(spark, train, stage=stage, k=TOP_K), hit_rates)
    stage.close()
    spark.stop()

    print(f"Real sheet {args.path.name}: {len(raw):,} raw lines, {len(cleaned):,} cleaned; Spark master "
          f"{args.master}; session start-up {startup:.1f} s (not in the times); median of {args.runs} "
          "runs.\n")
    print("| step | embedded (s) | Spark (s) | Spark / embedded | results |")
    print("| --- | ---: | ---: | ---: | --- |")
    for step, embedded_time, spark_time, verdict in rows:
        ratio = spark_time / embedded_time
        print(f"| {step} | {embedded_time:.2f} | {spark_time:.2f} | {ratio:.1f}x | {verdict} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
