import io
import re

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pytest

from pipeline.common import lines as sales_lines
from pipeline.customers import plots, prediction
from pipeline.customers.schemas import (
    CustomerFeatures,
    CustomerPredictions,
    PredictionEvaluation,
    PurchaseLabels,
)
from tests.pipeline.eda.test_eda import warehouse_of


def lines(rows: list[tuple], *, reason: str | None = None) -> pd.DataFrame:
    """Lines from (customer_id, invoice, invoice_date, stock_code, revenue[, country]) tuples; quantity 1."""
    out = pd.DataFrame(
        [(*row, "United Kingdom") if len(row) == 5 else row for row in rows],
        columns=["customer_id", "invoice", "invoice_date", "stock_code", "price", "country"],
    )
    out = out.assign(
        description="ITEM",
        quantity=-1 if reason else 1,
        invoice_date=pd.to_datetime(out["invoice_date"]),
        customer_id=out["customer_id"].astype("Int64"),
        source_file="t.csv",
        source_sheet=None,
        source_row=np.arange(len(out), dtype="int64"),
    )
    if reason:
        return out.assign(quantity=out["quantity"].astype("Int64"), reason=reason)
    return out.assign(revenue=out["price"])


AS_OF = pd.Timestamp("2010-11-01")


@pytest.fixture
def small():
    cleaned = lines(
        [
            (1, "a", "2010-01-10 10:00", "A", 10.0),
            (1, "a", "2010-01-10 10:00", "B", 20.0),
            (1, "b", "2010-01-10 15:00", "A", 5.0),
            (1, "c", "2010-03-01 09:00", "C", 30.0),
            (1, "d", "2010-10-15 12:00", "A", 40.0),
            (1, "e", "2010-11-20 12:00", "A", 1000.0),  # after the cut-off
            (2, "f", "2010-10-31 23:00", "B", 8.0, "France"),
            (2, "g", "2010-12-01 00:00", "B", 9.0, "France"),  # exactly at the end of a 30-day window
            (3, "h", "2010-11-05 12:00", "C", 50.0),  # first seen after the cut-off
            (None, "i", "2010-10-20 12:00", "A", 70.0),  # guest
        ]
    )
    rejected = lines(
        [
            (1, "C1", "2010-03-05 10:00", "A", 7.0),
            (1, "C2", "2010-03-05 10:00", "M", 500.0),  # not a product: ignored
            (1, "C3", "2010-11-10 10:00", "A", 9.0),  # after the cut-off
        ],
        reason="cancellation",
    )
    return cleaned, rejected


def test_build_features_by_hand(small):
    features = CustomerFeatures.validate(prediction.build_features(*small, as_of=AS_OF))
    assert features["customer_id"].tolist() == [1, 2]
    one = features.iloc[0]
    expected_one = {
        "recency_days": 17,
        "frequency": 4,
        "monetary": 105.0,
        "tenure_days": 278,
        "days_since_first_purchase": 295,
        "purchase_days": 3,
        "mean_gap_days": 139.0,  # gaps of 50 and 228 days
        "std_gap_days": 89.0,
        "avg_basket_value": 26.25,
        "avg_lines_per_invoice": 1.25,
        "distinct_products": 3,
        "return_rate": 7 / 105,
        "spend_last_90d": 40.0,
        "invoices_last_90d": 1,
        "spend_last_90d_share": 40 / 105,
        "q4_spend_share": 40 / 105,
        "is_uk": True,
    }
    for column, value in expected_one.items():
        assert one[column] == pytest.approx(value), column
    two = features.iloc[1]
    assert (two["recency_days"], two["frequency"], two["tenure_days"], two["purchase_days"]) == (1, 1, 0, 1)
    assert np.isnan(two["mean_gap_days"]) and np.isnan(two["std_gap_days"])
    assert not two["is_uk"]
    assert two["q4_spend_share"] == 1.0
    assert list(features.columns) == ["customer_id", *prediction.FEATURE_COLUMNS]


def test_labels_window_is_half_open(small):
    cleaned, _ = small
    out = PurchaseLabels.validate(prediction.labels(cleaned, start=AS_OF, horizon_days=30))
    assert out.to_dict("list") == {"customer_id": [1, 2], "bought": [True, False], "revenue": [1000.0, 0.0]}
    longer = prediction.labels(cleaned, start=AS_OF, horizon_days=31)
    assert longer["revenue"].tolist() == [1000.0, 9.0]


def test_features_ignore_the_future(real_cleaned, real_rejected):
    as_of = pd.Timestamp("2010-06-01")
    rng = np.random.default_rng(0)
    future = real_cleaned["invoice_date"] >= as_of
    scrambled = real_cleaned.copy()
    scrambled.loc[future, "revenue"] = rng.uniform(1, 1000, future.sum())
    scrambled.loc[future, "customer_id"] = pd.array(
        rng.permutation(scrambled.loc[future, "customer_id"].to_numpy()), dtype="Int64"
    )
    rejected = real_rejected.copy()
    rejected.loc[rejected["invoice_date"] >= as_of, "price"] = 1e6
    expected = prediction.build_features(real_cleaned, real_rejected, as_of=as_of)
    got = prediction.build_features(scrambled, rejected, as_of=as_of)
    pd.testing.assert_frame_equal(got, expected)
    CustomerFeatures.validate(expected, lazy=True)


def synthetic_cleaned(n_customers: int = 400, seed: int = 0) -> pd.DataFrame:
    """A year of Poisson purchase processes with customer-specific rates, spend levels and churn."""
    rng = np.random.default_rng(seed)
    start, end = pd.Timestamp("2009-12-01"), pd.Timestamp("2010-12-09 18:00")
    days = (end - start).days
    rows = []
    for customer in range(n_customers):
        rate = rng.gamma(0.8, 1 / 20)  # purchases per day
        churn_day = rng.uniform(0, days * 1.5)
        spend = rng.lognormal(5, 0.8)
        first = rng.uniform(0, days * 0.6)
        stop = min(max(churn_day, first), days)
        extra = rng.poisson(rate * (stop - first))
        times = np.sort(np.r_[first, rng.uniform(first, stop, extra)])
        for i, t in enumerate(times):
            rows.append(
                (
                    customer + 1,
                    f"{customer}-{i}",
                    start + pd.Timedelta(days=float(t)),
                    "A" if i % 2 else "B",
                    round(spend * rng.lognormal(0, 0.3), 2),
                )
            )
    return lines(rows)


def test_evaluate_and_predict_on_synthetic_data_is_deterministic():
    cleaned = synthetic_cleaned()
    predictions, evaluation = prediction.evaluate_and_predict(cleaned, None, random_state=1)
    CustomerPredictions.validate(predictions, lazy=True)
    PredictionEvaluation.validate(evaluation, lazy=True)
    assert predictions["customer_id"].tolist() == sorted(cleaned["customer_id"].unique())
    again = prediction.evaluate_and_predict(cleaned, None, random_state=1)
    pd.testing.assert_frame_equal(again[0], predictions)
    pd.testing.assert_frame_equal(again[1], evaluation)
    metric = evaluation.set_index(["model", "metric"])["value"]
    # Rates differ 100-fold between customers: past frequency must predict future purchases.
    assert metric[("model", "roc_auc")] > 0.7


def test_evaluate_and_predict_respects_reference_date():
    cleaned = synthetic_cleaned(n_customers=150, seed=3)
    reference = pd.Timestamp("2010-10-01")
    predictions, evaluation = prediction.evaluate_and_predict(cleaned, None, reference_date=reference)
    assert (evaluation["cutoff_date"] == reference - pd.Timedelta(days=90)).all()
    known = cleaned.loc[cleaned["invoice_date"] < reference, "customer_id"].unique()
    assert sorted(predictions["customer_id"]) == sorted(known)


def test_evaluate_and_predict_reads_warehouse_tables_in_place():
    cleaned = synthetic_cleaned(n_customers=150, seed=3)
    returned = cleaned.iloc[::40]
    rejected = lines(
        list(zip(returned["customer_id"], "C" + returned["invoice"], returned["invoice_date"],
                 returned["stock_code"], returned["price"], strict=True)),
        reason="cancellation",
    )
    with warehouse_of(cleaned, rejected) as con:
        stored = prediction.evaluate_and_predict(*sales_lines.warehouse_lines(con))
    expected = prediction.evaluate_and_predict(cleaned, rejected)
    pd.testing.assert_frame_equal(stored[0], expected[0])
    pd.testing.assert_frame_equal(stored[1], expected[1])


@pytest.fixture(scope="module")
def real_result(real_cleaned, real_rejected):
    return prediction.evaluate_and_predict(real_cleaned, real_rejected)


def test_real_model_beats_baselines(real_result):
    _, evaluation = real_result
    value = evaluation.set_index(["target", "model", "metric"])["value"]
    assert value[("purchase", "model", "roc_auc")] > value[("purchase", "baseline_recency", "roc_auc")]
    assert value[("purchase", "model", "brier")] < value[("purchase", "baseline_recency", "brier")]
    assert value[("revenue", "model", "mae")] < value[("revenue", "baseline_last_90d", "mae")]
    assert value[("revenue", "model", "rmse")] < value[("revenue", "baseline_last_90d", "rmse")]


def test_real_prediction_tables(real_cleaned, real_result):
    predictions, evaluation = real_result
    CustomerPredictions.validate(predictions, lazy=True)
    PredictionEvaluation.validate(evaluation, lazy=True)
    assert len(predictions) == real_cleaned["customer_id"].nunique() == 4285
    cutoff = pd.Timestamp("2010-09-11")  # 90 days before the reference date 2010-12-10
    assert (evaluation["cutoff_date"] == cutoff).all()
    tested = real_cleaned.loc[real_cleaned["invoice_date"] < cutoff, "customer_id"].nunique()
    headline = evaluation[~evaluation["metric"].str.startswith("calibration")]
    assert (headline["n_customers"] == tested).all()
    bins = evaluation[evaluation["metric"].str.endswith("_predicted")]
    assert (bins.groupby("model")["n_customers"].sum() == tested).all()


def test_evaluation_schema_rejects_impossible_values(real_result):
    _, evaluation = real_result
    broken = evaluation.copy()
    broken.loc[broken["metric"] == "roc_auc", "value"] = 1.5
    with pytest.raises(pa.errors.SchemaErrors):
        PredictionEvaluation.validate(broken, lazy=True)


def test_calibration_figure_renders(real_result):
    fig = plots.calibration_figure(real_result[1])
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=40)
    assert buffer.getvalue().startswith(b"\x89PNG")
    assert len(fig.axes[0].lines) == 3  # diagonal, model, recency baseline


WEEK = [(1, "a", "2010-01-04 10:00", "A", 10.0), (2, "b", "2010-01-08 10:00", "B", 5.0)]
SPAN_NEEDED = r"needs well over 180 days .* the data spans 2010-01-04 to 2010-01-08 \(4 days\)"


def test_too_short_data_fails_with_the_span_needed():
    with pytest.raises(prediction.InsufficientHistoryError, match=SPAN_NEEDED):
        prediction.evaluate_and_predict(lines(WEEK), None)


def test_too_short_data_gives_empty_tables_and_the_reason():
    tables = prediction.prediction_tables(lines(WEEK), None, horizon_days=90)
    assert re.search(SPAN_NEEDED, tables.skipped_reason)
    assert (len(tables.predictions), len(tables.evaluation)) == (0, 0)
    for frame, model in [(tables.predictions, CustomerPredictions),
                         (tables.evaluation, PredictionEvaluation)]:
        assert list(frame.columns) == list(model.to_schema().columns)
        model.validate(frame, lazy=True)


def test_enough_history_gives_the_tables_of_evaluate_and_predict():
    cleaned = synthetic_cleaned(n_customers=150, seed=3)
    tables = prediction.prediction_tables(cleaned, None, random_state=2)
    expected = prediction.evaluate_and_predict(cleaned, None, random_state=2)
    assert tables.skipped_reason is None
    pd.testing.assert_frame_equal(tables.predictions, expected[0])
    pd.testing.assert_frame_equal(tables.evaluation, expected[1])
