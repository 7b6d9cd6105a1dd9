"""Small cases worked out by hand, as a practitioner would check them on paper.

Each expected value is written as the arithmetic it comes from (math.log of
the probabilities involved), with the rounded figure quoted in the field.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import xebench as xb

LN2 = math.log(2)
TIGHT = 1e-12

CLICKED = [1, 0, 1, 1, 1, 0, 0, 1, 0, 0]
P_CLICK = [0.8, 0.1, 0.65, 0.78, 0.91, 0.2, 0.65, 0.87, 0.22, 0.33]

RARE = [1, 0, 0, 0, 0, 0, 0, 0, 0, 0]
P_RARE = [0.8, 0.1, 0.2, 0.1, 0.15, 0.22, 0.1, 0.2, 0.15, 0.12]

# -(0.1 ln 0.1 + 0.9 ln 0.9): the entropy of a 1:9 label split.
ONE_IN_TEN_NATS = -(0.1 * math.log(0.1) + 0.9 * math.log(0.9))


# --- log loss ----------------------------------------------------------------------


def test_balanced_naive_classifier_scores_ln2_and_one_bit() -> None:
    y = [1, 0] * 5  # five positives in ten
    p = [0.5] * 10
    assert xb.log_loss(y, p) == pytest.approx(LN2, rel=TIGHT)
    assert xb.log_loss(y, p, base=2) == pytest.approx(1.0, rel=TIGHT)
    assert xb.log_loss(y, p, base=10) == pytest.approx(math.log10(2), rel=TIGHT)
    assert xb.perplexity(y, p) == pytest.approx(2.0, rel=TIGHT)
    # The naive classifier is exactly the prior here: no skill.
    assert xb.prior_log_loss(y) == pytest.approx(LN2, rel=TIGHT)
    assert xb.skill_score(y, p) == pytest.approx(0.0, abs=TIGHT)


def test_one_in_ten_prior_baseline() -> None:
    # -(0.1 ln 0.1 + 0.9 ln 0.9) = 0.230259 + 0.094825 = 0.325083 nats
    assert pytest.approx(0.325083, abs=1e-6) == ONE_IN_TEN_NATS
    assert xb.prior_log_loss(RARE) == pytest.approx(ONE_IN_TEN_NATS, rel=TIGHT)
    assert round(xb.prior_log_loss(RARE), 4) == 0.3251
    # Predicting the base rate for every row scores the same.
    assert xb.log_loss(RARE, [0.1] * 10) == pytest.approx(ONE_IN_TEN_NATS, rel=TIGHT)
    assert xb.prior_log_loss(RARE, base=2) == pytest.approx(ONE_IN_TEN_NATS / LN2, rel=TIGHT)


def test_trained_click_model() -> None:
    # Probability given to what actually happened, row by row:
    #   clicked rows use p, the others 1 - p:
    #   0.8, 0.9, 0.65, 0.78, 0.91, 0.8, 0.35, 0.87, 0.78, 0.67
    outcome = [0.8, 0.9, 0.65, 0.78, 0.91, 0.8, 0.35, 0.87, 0.78, 0.67]
    expected = -sum(math.log(q) for q in outcome) / 10  # 0.316323
    assert xb.log_loss(CLICKED, P_CLICK) == pytest.approx(expected, rel=1e-9)
    assert round(xb.log_loss(CLICKED, P_CLICK), 4) == 0.3163
    np.testing.assert_allclose(xb.nll(CLICKED, P_CLICK), [-math.log(q) for q in outcome], rtol=1e-9)
    # Balanced labels, so the prior baseline is ln 2: skill = 1 - 0.316323 / 0.693147.
    assert xb.skill_score(CLICKED, P_CLICK) == pytest.approx(1 - expected / LN2, rel=1e-9)
    assert round(xb.skill_score(CLICKED, P_CLICK), 4) == 0.5436
    assert xb.accuracy(CLICKED, P_CLICK) == pytest.approx(0.9)  # only row 6 (0.65, no click)


def test_imbalanced_trained_model_beats_prior() -> None:
    # Probabilities of the actual outcome: 0.8 for the one click, 1 - p for the rest:
    #   0.8, 0.9, 0.8, 0.9, 0.85, 0.78, 0.9, 0.8, 0.85, 0.88
    outcome = [0.8, 0.9, 0.8, 0.9, 0.85, 0.78, 0.9, 0.8, 0.85, 0.88]
    expected = -sum(math.log(q) for q in outcome) / 10  # 0.168684
    loss = xb.log_loss(RARE, P_RARE)
    assert loss == pytest.approx(expected, rel=1e-9)
    assert loss == pytest.approx(0.169, abs=5e-4)
    assert loss < xb.prior_log_loss(RARE)
    skill = xb.skill_score(RARE, P_RARE)
    assert skill == pytest.approx(1 - expected / ONE_IN_TEN_NATS, rel=1e-9)  # 0.4811
    assert skill > 0


@pytest.mark.parametrize("k", [2, 3, 10, 37, 1000])
def test_uniform_guess_perplexity_is_k(k: int) -> None:
    y = np.arange(3 * k) % k
    prob = np.full((3 * k, k), 1.0 / k)
    assert xb.perplexity(y, prob) == pytest.approx(k, rel=1e-9)
    assert xb.log_loss(y, prob) == pytest.approx(math.log(k), rel=1e-9)
    assert xb.log_loss(y, prob, base=2) == pytest.approx(math.log2(k), rel=1e-9)


def test_multiclass_string_labels_by_hand() -> None:
    # columns: cat, dog, emu (sorted); rows observe cat, emu, dog
    prob = [[0.5, 0.25, 0.25], [0.2, 0.3, 0.5], [0.125, 0.75, 0.125]]
    expected = -(math.log(0.5) + math.log(0.5) + math.log(0.75)) / 3
    assert xb.log_loss(["cat", "emu", "dog"], prob) == pytest.approx(expected, rel=1e-12)
    # The same predictions with columns declared as emu, cat, dog.
    reordered = [[row[2], row[0], row[1]] for row in prob]
    actual = xb.log_loss(["cat", "emu", "dog"], reordered, labels=["emu", "cat", "dog"])
    assert actual == pytest.approx(expected, rel=1e-12)


def test_sample_weights_by_hand() -> None:
    # weights 1, 3: (1 * -ln 0.8 + 3 * -ln 0.6) / 4
    expected = (-math.log(0.8) - 3 * math.log(0.6)) / 4
    assert xb.log_loss([1, 0], [0.8, 0.4], sample_weight=[1, 3]) == pytest.approx(expected)


# --- clipping ----------------------------------------------------------------------


def test_zero_probability_for_observed_class_is_clipped() -> None:
    # -ln(1e-15) = 15 ln 10 = 34.538776 nats
    cap = 15 * math.log(10)
    assert cap == pytest.approx(34.538776, abs=1e-6)
    assert xb.log_loss([1], [0.0]) == pytest.approx(cap, rel=1e-9)
    assert xb.log_loss([0], [1.0]) == pytest.approx(cap, rel=1e-9)
    assert xb.log_loss([2], [[0.5, 0.5, 0.0]]) == pytest.approx(cap, rel=1e-9)
    # one hard miss among ten otherwise perfect rows
    y, p = [1] * 10, [1.0] * 9 + [0.0]
    assert xb.log_loss(y, p) == pytest.approx((cap + 9 * -math.log1p(-1e-15)) / 10, rel=1e-9)
    assert xb.clipped_count(y, p) == 1
    # a custom eps caps the loss at -ln(eps)
    assert xb.log_loss([1], [0.0], eps=1e-6) == pytest.approx(-math.log(1e-6), rel=1e-9)


def test_clipped_count_counts_only_confident_misses() -> None:
    assert xb.clipped_count([1, 0, 1], [0.0, 0.1, 1.0]) == 1
    assert xb.clipped_count([1, 0, 1, 0], [0.0, 1.0, 1e-16, 0.0]) == 3
    assert xb.clipped_count([0, 2], [[0.0, 0.5, 0.5], [0.2, 0.8, 0.0]]) == 2
    assert xb.clipped_count([0, 1], [0.3, 0.7]) == 0
    assert xb.clipped_count([1], [1e-7], eps=1e-6) == 1


def test_two_float32_softmax_columns_keep_a_small_class0_probability() -> None:
    """A float32 classifier outputs P = [1e-9, 1 - 1e-9] and the row is class 0.

    Column 0 says P(class 0) = 1e-9 (a float32 of 1e-9), so the loss is
    -ln(1e-9) = 20.72 nats and nothing was clipped. 1 - float32(1 - 1e-9) is 0,
    so using 1 - column 1 instead would clip to 1e-15 and report 34.54 nats.
    """
    prob = np.array([[1e-9, 1 - 1e-9]], dtype=np.float32)
    expected = -math.log(float(prob[0, 0]))  # 20.7233 nats
    assert xb.log_loss([0], prob) == pytest.approx(expected, rel=1e-9)
    assert xb.clipped_count([0], prob) == 0


# --- divergences --------------------------------------------------------------------


def test_kl_by_hand() -> None:
    # KL([.5, .5] || [.9, .1]) = .5 ln(.5/.9) + .5 ln(.5/.1) = .5 ln(25/9) = ln(5/3) = 0.510826
    assert xb.kl_divergence([0.5, 0.5], [0.9, 0.1], smoothing=0) == pytest.approx(
        math.log(5 / 3), rel=1e-12
    )
    # The other direction: .9 ln 1.8 + .1 ln .2 = 0.368064 (KL is not symmetric)
    assert xb.kl_divergence([0.9, 0.1], [0.5, 0.5], smoothing=0) == pytest.approx(
        0.9 * math.log(1.8) + 0.1 * math.log(0.2), rel=1e-12
    )
    assert xb.kl_divergence([5, 5], [9, 1], smoothing=0, base=2) == pytest.approx(
        math.log2(5 / 3), rel=1e-12
    )
    assert xb.kl_divergence([10, 30], [1, 3]) == 0.0


def test_js_by_hand() -> None:
    # Disjoint supports: m = [.5, .5]; KL(p||m) = KL(q||m) = ln 2, so JS = ln 2 = 1 bit.
    assert xb.js_divergence([1, 0], [0, 1]) == pytest.approx(LN2, rel=1e-12)
    assert xb.js_divergence([1, 0], [0, 1], base=2) == pytest.approx(1.0, rel=1e-12)
    assert xb.js_divergence([3, 1, 0, 0], [0, 0, 2, 2], base=2) == pytest.approx(1.0, rel=1e-12)
    # [.5, .5] vs [.9, .1]: m = [.7, .3]
    #   KL(p||m) = .5 ln(.5/.7) + .5 ln(.5/.3), KL(q||m) = .9 ln(.9/.7) + .1 ln(.1/.3)
    kl_pm = 0.5 * math.log(0.5 / 0.7) + 0.5 * math.log(0.5 / 0.3)
    kl_qm = 0.9 * math.log(0.9 / 0.7) + 0.1 * math.log(0.1 / 0.3)
    assert xb.js_divergence([0.5, 0.5], [0.9, 0.1]) == pytest.approx((kl_pm + kl_qm) / 2, rel=1e-12)
    assert xb.js_divergence([0.2, 0.8], [0.2, 0.8]) == pytest.approx(0.0, abs=1e-15)


def test_psi_by_hand() -> None:
    # (.9 - .5) ln(.9/.5) + (.1 - .5) ln(.1/.5) = .4 ln 1.8 + .4 ln 5 = .4 ln 9 = 0.878890
    assert xb.psi([0.5, 0.5], [0.9, 0.1], smoothing=0) == pytest.approx(
        0.4 * math.log(9), rel=1e-12
    )
    assert xb.psi([50, 50], [90, 10], smoothing=0) == pytest.approx(0.4 * math.log(9), rel=1e-12)
    assert xb.psi([10, 30, 60], [1, 3, 6]) == 0.0


def test_entropy_by_hand() -> None:
    assert xb.entropy([0.5, 0.5], base=2) == pytest.approx(1.0, rel=1e-12)
    assert xb.entropy([1] * 8, base=2) == pytest.approx(3.0, rel=1e-12)
    assert xb.entropy([1, 0, 0]) == 0.0
    # [.25, .25, .5]: 2 * .25 * 2 bits + .5 * 1 bit = 1.5 bits
    assert xb.entropy([1, 1, 2], base=2) == pytest.approx(1.5, rel=1e-12)
    np.testing.assert_allclose(xb.entropy([[1, 1], [1, 0]], base=2), [1.0, 0.0], atol=1e-15)


def test_cross_entropy_by_hand() -> None:
    # -(.5 ln .9 + .5 ln .1) = 1.203973
    expected = -(0.5 * math.log(0.9) + 0.5 * math.log(0.1))
    assert xb.cross_entropy([0.5, 0.5], [0.9, 0.1]) == pytest.approx(expected, rel=1e-12)
    # cross-entropy = entropy + KL
    assert expected == pytest.approx(LN2 + math.log(5 / 3), rel=1e-12)
    assert xb.cross_entropy([[1, 0], [0, 1]], [[0.5, 0.5], [0.5, 0.5]], base=2) == 1.0


# --- Brier and calibration ------------------------------------------------------------


def test_brier_by_hand() -> None:
    # (0.2^2 + 0.1^2 + 0.5^2) / 3 = (0.04 + 0.01 + 0.25) / 3 = 0.1
    assert xb.brier_score([1, 0, 1], [0.8, 0.1, 0.5]) == pytest.approx(0.1, rel=1e-12)
    # multiclass sums over classes: row a: .3^2 + .2^2 + .1^2 = .14; row c: 0 + .25 + .25 = .5
    prob = [[0.7, 0.2, 0.1], [0.0, 0.5, 0.5]]
    assert xb.brier_score(["a", "c"], prob, labels=["a", "b", "c"]) == pytest.approx(
        0.32, rel=1e-12
    )


def test_ece_binary_by_hand() -> None:
    # Two uniform bins, [0, .5] and (.5, 1]:
    #   bin 0: p = .1, .2, .5 (on the edge: lower bin); y = 0, 1, 0
    #          mean p = .8/3, frequency = 1/3, gap = |1/3 - .8/3| = .2/3
    #   bin 1: p = .6, .7, .9, .95;                     y = 1, 0, 1, 1
    #          mean p = 3.15/4 = .7875, frequency = .75, gap = .0375
    #   ECE = (3 * .2/3 + 4 * .0375) / 7 = (.2 + .15) / 7 = .05
    #   MCE = max(.2/3, .0375) = .0666...
    y = [0, 1, 0, 1, 0, 1, 1]
    p = [0.1, 0.2, 0.5, 0.6, 0.7, 0.9, 0.95]
    assert xb.calibration_error(y, p, n_bins=2) == pytest.approx(0.05, rel=1e-12)
    assert xb.calibration_error(y, p, n_bins=2, norm="max") == pytest.approx(0.2 / 3, rel=1e-12)
    curve = xb.reliability_curve(y, p, n_bins=2)
    np.testing.assert_array_equal(curve.count, [3, 4])
    np.testing.assert_allclose(curve.mean_predicted, [0.8 / 3, 0.7875], rtol=1e-12)
    np.testing.assert_allclose(curve.observed_frequency, [1 / 3, 0.75], rtol=1e-12)


def test_ece_multiclass_by_hand() -> None:
    # Top label per row (confidence, right?):
    #   [.7, .2, .1]  y=0 -> .7 right
    #   [.4, .5, .1]  y=0 -> .5 wrong
    #   [.1, .1, .8]  y=2 -> .8 right
    #   [.3, .3, .4]  y=1 -> .4 wrong
    # Bins [0, .5], (.5, 1]: bin 0 holds .5, .4: confidence .45, accuracy 0, gap .45
    #                        bin 1 holds .7, .8: confidence .75, accuracy 1, gap .25
    # ECE = (2 * .45 + 2 * .25) / 4 = .35; MCE = .45
    prob = [[0.7, 0.2, 0.1], [0.4, 0.5, 0.1], [0.1, 0.1, 0.8], [0.3, 0.3, 0.4]]
    y = [0, 0, 2, 1]
    assert xb.calibration_error(y, prob, n_bins=2) == pytest.approx(0.35, rel=1e-12)
    assert xb.calibration_error(y, prob, n_bins=2, norm="max") == pytest.approx(0.45, rel=1e-12)
    assert xb.accuracy(y, prob) == 0.5


def test_quantile_bins_by_hand() -> None:
    # Quartile edges of .1, .2, .3, .4 (linear percentiles): .1, .175, .25, .325, .4
    # -> one row per bin; gaps |y - p| = .1, .8, .3, .6 -> ECE = 1.8 / 4 = .45
    y, p = [0, 1, 0, 1], [0.1, 0.2, 0.3, 0.4]
    curve = xb.reliability_curve(y, p, n_bins=4, strategy="quantile")
    np.testing.assert_allclose(curve.bin_edges, [0.1, 0.175, 0.25, 0.325, 0.4], rtol=1e-12)
    np.testing.assert_array_equal(curve.count, [1, 1, 1, 1])
    ece = xb.calibration_error(y, p, n_bins=4, strategy="quantile")
    assert ece == pytest.approx(0.45, rel=1e-12)


# --- eps = 0: no clipping -----------------------------------------------------------


def test_eps_zero_means_no_clipping() -> None:
    # With eps = 0 a tiny probability is taken at face value: -ln(1e-300) = 690.8 nats.
    assert xb.log_loss([1], [1e-300], eps=0) == pytest.approx(300 * math.log(10), rel=1e-9)


def test_eps_zero_hard_miss_is_infinite_without_a_warning() -> None:
    # eps = 0 is a documented, valid value; a hard miss then costs -ln 0 = +inf.
    # Returning inf is the answer; a stray NumPy RuntimeWarning is not part of it.
    assert xb.log_loss([1, 0], [0.0, 0.0], eps=0) == math.inf
