import numpy as np
import pandas as pd
import pytest

from customer_intel.monitoring import LandingCursor, drift_report, psi


def test_psi_is_zero_for_the_same_sample_and_near_the_j_divergence_for_a_mean_shift():
    rng = np.random.default_rng(0)
    reference = rng.normal(size=100_000)
    assert psi(reference, reference) == pytest.approx(0.0, abs=1e-12)
    assert psi(reference, rng.normal(size=100_000)) < 0.001  # a fresh sample of the same distribution
    # N(0,1) vs N(1,1): the continuous PSI (Jeffreys divergence) is 1.0; decile bins see a little less
    assert 0.8 < psi(reference, rng.normal(loc=1.0, size=100_000)) < 1.0


def test_psi_bins_discrete_features_by_value_and_counts_missing_values():
    reference = np.array([0, 0, 1, 1, 2, 2, np.nan, np.nan], dtype=float)
    assert psi(reference, reference[::-1]) == pytest.approx(0.0)
    only_missing = psi(reference, np.full(8, np.nan))
    expected = (1 - 0.25) * np.log(1 / 0.25) + 3 * (1e-4 - 0.25) * np.log(1e-4 / 0.25)
    assert only_missing == pytest.approx(expected)
    with pytest.raises(ValueError, match="non-empty"):
        psi([], [1.0])


def test_drift_report_flags_features_over_the_threshold_and_names_missing_ones():
    rng = np.random.default_rng(1)
    reference = pd.DataFrame({"frequency": rng.poisson(3, 5000), "monetary": rng.gamma(2, 50, 5000)})
    live = reference.sample(frac=1.0, replace=True, random_state=2).assign(monetary=lambda f: f["monetary"] * 2)
    report = drift_report(reference, live, features=("frequency", "monetary", "avg_ticket"), threshold=0.2)
    assert report.drifted == ["monetary"] and report.skipped == ("avg_ticket",)
    assert report.table["feature"].tolist() == ["monetary", "frequency"]
    assert report.max_psi > 0.5 and report.as_dict()["frequency"] < 0.02
    assert "| monetary |" in report.markdown()


def test_landing_cursor_is_keyed_on_location_and_tag():
    changed, cursor = LandingCursor().advance([("s3://b/raw/a.csv", "e1")])
    assert changed == [("s3://b/raw/a.csv", "e1")]
    cursor = LandingCursor.parse(cursor.serialize())
    assert cursor.advance([("s3://b/raw/a.csv", "e1")])[0] == []
    first_key = cursor.run_key(changed)
    changed, cursor = cursor.advance([("s3://b/raw/a.csv", "e2"), ("s3://b/raw/b.csv", "e1")])
    assert changed == [("s3://b/raw/a.csv", "e2"), ("s3://b/raw/b.csv", "e1")]
    assert cursor.run_key(changed) == cursor.run_key(list(reversed(changed))) != first_key
    # rolled back to the first bytes: new data again, and a run key never used before
    changed, rolled = cursor.advance([("s3://b/raw/a.csv", "e1"), ("s3://b/raw/b.csv", "e1")])
    assert changed == [("s3://b/raw/a.csv", "e1")] and rolled.launches == 3
    assert rolled.run_key(changed) not in {first_key, cursor.run_key([("s3://b/raw/a.csv", "e2"), ("s3://b/raw/b.csv", "e1")])}
