"""The Qini and uplift-curve code against a hand-computed example and against scikit-uplift."""

import numpy as np
import pytest

from customer_intel.uplift.metrics import auuc, qini_coefficient, qini_curve, random_band, uplift_at_k, uplift_curve, uplift_scores

# six rows in score order: treated responder, treated non-responder, control responder, control non-responder, treated
# responder, control non-responder
Y = np.array([1, 0, 1, 0, 1, 0])
T = np.array([1, 1, 0, 0, 1, 0])
S = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4])


def test_qini_curve_and_coefficient_equal_the_hand_computed_example():
    x, v = qini_curve(Y, S, T)
    # Y_t(n) - Y_c(n) N_t(n) / N_c(n): 1, 1 (no control yet), 1 - 1*2/1, 1 - 1*2/2, 2 - 1*3/2, 2 - 1*3/3
    assert x.tolist() == [0, 1, 2, 3, 4, 5, 6]
    assert v.tolist() == [0, 1, 1, -1, 0, 0.5, 1]
    # model area 2.0; perfect curve (treated responders first, control responders last) (0,0) (2,2) (5,2) (6,1): area 9.5;
    # the random line to (6, 1): area 3 -> (2 - 3) / (9.5 - 3)
    assert qini_coefficient(Y, S, T) == pytest.approx(-2 / 13, abs=1e-12)


def test_uplift_curve_and_uplift_at_k_equal_the_hand_computed_example():
    x, v = uplift_curve(Y, S, T)
    # (Y_t/N_t - Y_c/N_c) * n: 1*1, 0.5*2 (no control: its rate counts 0), (0.5 - 1)*3, (0.5 - 0.5)*4, (2/3 - 1/2)*5, (2/3 - 1/3)*6
    assert v == pytest.approx([0, 1, 1, -1.5, 0, 5 / 6, 2])
    assert uplift_at_k(Y, S, T, 0.5) == pytest.approx(0.5 - 1.0)  # top 3: treated 1/2, control 1/1
    assert uplift_at_k(Y, S, T, 1.0) == pytest.approx(2 / 3 - 1 / 3)


def test_ties_move_together():
    x, v = qini_curve(Y, np.array([1, 1, 0, 0, 0, 0]), T)
    assert x.tolist() == [0, 2, 6] and v.tolist() == [0, 1, 1]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_the_metrics_equal_scikit_uplift_on_random_data():
    sklift = pytest.importorskip("sklift.metrics")
    rng = np.random.default_rng(3)
    for n in (50, 400, 3000):
        t = rng.integers(0, 2, n)
        score = rng.normal(size=n)
        y = (rng.random(n) < 0.1 + 0.1 * t * (score > 0)).astype(int)
        assert qini_coefficient(y, score, t) == pytest.approx(sklift.qini_auc_score(y, score, t), abs=1e-12)
        assert auuc(y, score, t) == pytest.approx(sklift.uplift_auc_score(y, score, t), abs=1e-12)
        for k in (0.1, 0.3):
            # (both NaN when the top rows hold no control or no treated row)
            np.testing.assert_allclose(uplift_at_k(y, score, t, k), sklift.uplift_at_k(y, score, t, strategy="overall", k=k), atol=1e-12)
        xs, vs = sklift.qini_curve(y, score, t)
        x, v = qini_curve(y, score, t)
        np.testing.assert_allclose(x, xs)
        np.testing.assert_allclose(v, vs)


def test_a_ranking_that_knows_the_effect_leaves_the_random_band_and_noise_does_not():
    rng = np.random.default_rng(0)
    n = 4000
    effect = rng.uniform(-0.05, 0.25, n)
    t = rng.integers(0, 2, n)
    y = (rng.random(n) < 0.1 + effect * t).astype(int)
    low, high = random_band(y, t, n_perm=100)
    assert low < 0 < high
    informed = uplift_scores(y, effect, t, n_boot=100)
    assert informed["qini"] > high and informed["qini_ci_low"] > 0
    assert informed["qini_ci_low"] <= informed["qini"] <= informed["qini_ci_high"]
    noise = uplift_scores(y, rng.random(n), t, n_boot=100)
    assert low - 0.02 <= noise["qini"] <= high + 0.02
