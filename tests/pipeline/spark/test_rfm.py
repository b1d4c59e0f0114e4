"""Spark RFM equals the embedded RFM table: metrics, scores (rank method=min), segments and dtypes."""

from __future__ import annotations

import pandas as pd
import pytest

from pipeline.customers import rfm_segments
from pipeline.spark import rfm as spark_rfm


def test_synthetic_rfm_equals_embedded(spark, stage, synthetic_cleaning):
    cleaned, rejected = synthetic_cleaning.cleaned, synthetic_cleaning.rejected
    expected = rfm_segments.rfm_table(cleaned, rejected=rejected)
    actual = spark_rfm.rfm_table(spark, cleaned, rejected=rejected, stage=stage)
    pd.testing.assert_frame_equal(actual, expected, check_exact=True)
    assert expected["returns_value"].gt(0).any()  # returns are really reconciled, not all zero
    # Ties exist in frequency (many one-invoice customers): the case where rank method matters.
    assert expected["frequency"].duplicated().any()


def test_without_returns_and_with_a_reference_date(spark, stage, synthetic_cleaning):
    cleaned = synthetic_cleaning.cleaned
    reference = pd.Timestamp("2012-06-30 15:00")
    expected = rfm_segments.rfm_table(cleaned, reference_date=reference)
    actual = spark_rfm.rfm_table(spark, cleaned, reference_date=reference, stage=stage)
    pd.testing.assert_frame_equal(actual, expected, check_exact=True)
    assert actual["returns_value"].isna().all()


def test_reference_before_last_purchase_is_an_error(spark, stage, synthetic_cleaning):
    with pytest.raises(ValueError, match="before the last purchase date"):
        spark_rfm.rfm_table(spark, synthetic_cleaning.cleaned, reference_date=pd.Timestamp("2010-01-01"),
                            stage=stage)


def test_real_slice_rfm_equals_embedded(spark, stage, real_slice_cleaning):
    cleaned, rejected = real_slice_cleaning.cleaned, real_slice_cleaning.rejected
    expected = rfm_segments.rfm_table(cleaned, rejected=rejected)
    actual = spark_rfm.rfm_table(spark, cleaned, rejected=rejected, stage=stage)
    pd.testing.assert_frame_equal(actual, expected, check_exact=True)
