import pandas as pd
import pytest

from customer_intel.modeling import FIT, TEST, VALIDATION, TimeSplit, rolling_origins


def frame(n, start=0):
    return pd.DataFrame({"customer_id": [f"C{i}" for i in range(start, start + n)], "x": range(n)})


def test_a_split_travels_as_one_frame_and_comes_back_whole():
    split = TimeSplit("2026-04-01", 90, {FIT: frame(3), VALIDATION: frame(4), TEST: frame(2)},
                      {FIT: pd.Timestamp("2026-01-01"), TEST: "2026-06-30"}, {FIT: 45})
    table = split.to_frame()
    assert table["split"].tolist() == [FIT] * 3 + [VALIDATION] * 4 + [TEST] * 2
    back = TimeSplit.from_frame(table)
    assert back.cutoff == pd.Timestamp("2026-04-01", tz="UTC") and back.horizon_days == 90
    assert back.horizon_of(FIT) == 45 and back.cutoff_of(FIT) == pd.Timestamp("2026-01-01", tz="UTC")
    assert back.horizon_of(TEST) == 90 and back.cutoff_of(TEST) == pd.Timestamp("2026-06-30", tz="UTC")
    for name in (FIT, VALIDATION, TEST):
        pd.testing.assert_frame_equal(back.part(name), split.part(name).reset_index(drop=True))
    assert back.describe()["parts"][FIT] == {"rows": 3, "as_of": "2026-01-01", "horizon_days": 45}


def test_frames_written_before_the_shared_lifecycle_still_read():
    legacy = pd.concat([frame(2).assign(split="train", as_of=pd.Timestamp("2026-01-01", tz="UTC"), holdout_days=45),
                        frame(3).assign(split="evaluate", as_of=pd.Timestamp("2026-04-01", tz="UTC"), holdout_days=90)])
    split = TimeSplit.from_frame(legacy, cutoff_column="as_of", horizon_column="holdout_days")
    assert len(split.fit) == 2 and len(split.validation) == 3 and split.horizon_of(FIT) == 45 and split.horizon_days == 90


def test_a_split_needs_a_validation_part_and_known_part_names():
    with pytest.raises(ValueError, match="needs a validation part"):
        TimeSplit("2026-04-01", 90, {FIT: frame(2)})
    with pytest.raises(ValueError, match=r"unknown split parts \['holdout'\]"):
        TimeSplit("2026-04-01", 90, {VALIDATION: frame(2), "holdout": frame(1)})
    assert TimeSplit("2026-04-01", 90, {VALIDATION: frame(2)}).test.empty


def test_a_split_refuses_parts_that_would_leak():
    with pytest.raises(ValueError, match="fit part's target window ends after the cutoff 2026-04-01"):
        TimeSplit("2026-04-01", 90, {FIT: frame(2), VALIDATION: frame(2)}, {FIT: "2026-03-01"}, {FIT: 45})
    with pytest.raises(ValueError, match="test part starts inside the validation window"):
        TimeSplit("2026-04-01", 90, {VALIDATION: frame(2), TEST: frame(2)}, {TEST: "2026-05-01"})
    with pytest.raises(ValueError, match="validation part's as-of day and window are the split's cutoff and horizon"):
        TimeSplit("2026-04-01", 90, {VALIDATION: frame(2)}, {VALIDATION: "2026-05-01"}, {VALIDATION: 30})


def test_rolling_origins_step_back_from_the_last_cutoff():
    origins = rolling_origins("2026-04-01", 3, 30)
    assert [str(o.date()) for o in origins] == ["2026-01-31", "2026-03-02", "2026-04-01"]
    with pytest.raises(ValueError):
        rolling_origins("2026-04-01", 0, 30)


def test_parts_default_to_the_windows_around_the_cutoff():
    split = TimeSplit("2026-04-01", 90, {FIT: frame(2), VALIDATION: frame(2), TEST: frame(2)})
    assert str(split.cutoff_of(FIT).date()) == "2026-01-01" and str(split.cutoff_of(TEST).date()) == "2026-06-30"
    assert TimeSplit.from_frame(split.to_frame()).describe() == split.describe()
