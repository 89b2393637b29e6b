"""The churn label is temporal and no feature sees past its as-of day."""

import numpy as np
import pandas as pd
import pytest

from customer_intel.churn.frames import LABEL, ChurnInputError, LeakageError, assert_point_in_time, build_churn_split
from customer_intel.features import build_customer_features
from customer_intel.modeling.split import FIT, REFIT, TEST, VALIDATION


def test_each_part_is_labelled_by_its_own_window(cdnow_split, cdnow_sample):
    described = cdnow_split.describe()["parts"]
    assert described[TEST] == {"rows": 2357, "as_of": "1997-09-30", "horizon_days": 273}
    assert described[VALIDATION]["horizon_days"] == 136 and described[FIT]["horizon_days"] == 68
    assert LABEL not in cdnow_split.parts[REFIT].columns
    for part in (FIT, VALIDATION, TEST):
        rows = cdnow_split.parts[part].set_index("customer_id")
        start = cdnow_split.cutoff_of(part)
        end = start + pd.Timedelta(days=cdnow_split.horizon_of(part))
        window = cdnow_sample.loc[(cdnow_sample["ts"] > start) & (cdnow_sample["ts"] <= end)]
        bought = set(window["customer_id"])
        expected = np.array([0 if c in bought else 1 for c in rows.index])
        assert (rows[LABEL].to_numpy() == expected).all(), part
    assert cdnow_split.test[LABEL].mean() == pytest.approx(0.7, abs=0.03)  # most of a young cohort makes no purchase in 39 weeks


def test_the_leakage_check_passes_the_split_and_catches_a_feature_from_after_the_cutoff(cdnow_split, cdnow_sample):
    assert_point_in_time(cdnow_split, cdnow_sample)
    # the mistake the check exists for: recency computed on the whole log, i.e. at the end of the label's window
    later = build_customer_features(cdnow_sample, None, cdnow_split.cutoff + pd.Timedelta(days=cdnow_split.horizon_days)).frame
    leaked = cdnow_split.validation.drop(columns="recency").merge(later[["customer_id", "recency"]], on="customer_id")
    parts = {**cdnow_split.parts, VALIDATION: leaked}
    bad = type(cdnow_split)(cdnow_split.cutoff, cdnow_split.horizon_days, parts, cdnow_split.part_cutoffs, cdnow_split.part_horizons)
    with pytest.raises(LeakageError, match=r"validation \(as of 1997-05-17\): 'recency' of [\d,]+ customers differs"):
        assert_point_in_time(bad, cdnow_sample)
    # and a column the feature builder does not make cannot be vouched for
    extra = {**cdnow_split.parts, TEST: cdnow_split.test.assign(next_purchase_gap=1.0)}
    unknown = type(cdnow_split)(cdnow_split.cutoff, cdnow_split.horizon_days, extra, cdnow_split.part_cutoffs, cdnow_split.part_horizons)
    with pytest.raises(LeakageError, match="'next_purchase_gap' is not made by the feature builder"):
        assert_point_in_time(unknown, cdnow_sample)


def test_a_window_where_nobody_stays_is_refused_with_the_window(cdnow_sample):
    early = cdnow_sample.loc[cdnow_sample["ts"] <= "1997-12-31"]
    with pytest.raises(ChurnInputError, match=r"the test window \(1998-01-01 \+ 90 days\): all 2,357 customers churned"):
        build_churn_split(early, None, "1998-01-01", 90, refit=False)
