"""scored_customers' own checks: judged on the frame before it is written."""

import dagster as dg
import pytest

from customer_intel.assets.scoring import build_scored_customers
from customer_intel.features import build_customer_features
from customer_intel_tests.conftest import SMALL_END_DATE


def _scored(frame):
    asset = build_scored_customers([])
    with dg.build_asset_context(partition_key=SMALL_END_DATE) as context:
        return list(asset(context, features=frame))


def test_a_frame_that_fails_a_check_is_never_output(small_frames):
    features = build_customer_features(small_frames["transactions"], small_frames["customers"], SMALL_END_DATE).frame
    events = _scored(features)
    assert isinstance(events[0], dg.Output) and [e.check_name for e in events[1:]] == ["one_row_per_customer", "valid_rfm_scores"]
    assert all(e.passed for e in events[1:])
    twice = features.iloc[[0, 0, 1, 2]].reset_index(drop=True)
    with pytest.raises(dg.Failure, match=f"scored_customers {SMALL_END_DATE} not published: one_row_per_customer failed "
                                         r"\(duplicated_ids=1, null_ids=0\)"):
        _scored(twice)
