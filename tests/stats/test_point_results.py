"""The array forms a Prometheus scrape finishes its windows with agree with the
one-window forms ``GET /v1/metrics`` uses: ``point_results`` with
``ScoreStats.result``, ``lag_percentiles`` with ``lag_percentile``,
``calibration_gaps`` with ``calibration_gap`` and ``LossSums.mean_entropies`` with
``mean_entropy``; and the point metrics themselves with scikit-learn."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import brier_score_loss, log_loss

from xebench.metrics.calibration import calibration_gap, calibration_gaps
from xebench.stats.codec import encode, point_results
from xebench.stats.expected_loss import expected_loss_sums
from xebench.stats.scores import ScoreStats
from xebench.store.bucket_rows import lag_bin, lag_percentile, lag_percentiles
from xebench.store.bucket_schema import LAG_BINS


def _binary_groups(rng: np.random.Generator, n_groups: int) -> list[tuple[ScoreStats, tuple]]:
    out = []
    for g in range(n_groups):
        n = int(rng.integers(1, 400))
        p = rng.uniform(0, 1, n)
        p[: g % 3] = 0.0  # a few clipped scores
        y = (rng.uniform(0, 1, n) < p).astype(int)
        w = rng.uniform(0.1, 3.0, n) if g % 2 else None
        out.append((ScoreStats().update(y, p, w), (y, p, w)))
    return out


def test_point_results_equal_result_and_scikit_learn_for_binary_groups() -> None:
    rng = np.random.default_rng(7)
    groups = _binary_groups(rng, 40)
    columns = encode([s for s, _ in groups])
    order = rng.permutation(len(groups))  # any rows, in any order
    points = point_results(columns, order, 2)
    for i, g in enumerate(order):
        stats, (y, p, w) = groups[g]
        result = stats.result()
        for key in ("log_loss", "brier", "ece", "mce", "prior_log_loss"):
            assert float(points[key][i]) == result[key], key
        skill = points["skill"][i]
        assert (math.isnan(skill) and result["skill"] is None) or float(skill) == result["skill"]
        expected = log_loss(y, np.clip(p, 1e-15, 1 - 1e-15), sample_weight=w, labels=[0, 1])
        assert math.isclose(points["log_loss"][i], expected, rel_tol=1e-12)
        expected = brier_score_loss(y, p, sample_weight=w)
        assert math.isclose(points["brier"][i], expected, rel_tol=1e-12)


def test_point_results_equal_result_for_multiclass_groups_and_other_bin_counts() -> None:
    rng = np.random.default_rng(11)
    classes = ["a", "b", "c"]
    groups = []
    for g in range(12):
        n = int(rng.integers(1, 200))
        p = rng.dirichlet(np.ones(3) * (0.3 + g / 4), n)
        y = [classes[int(k)] for k in rng.integers(0, 3 if g % 4 else 1, n)]  # some one-class
        groups.append(ScoreStats(classes).update(y, p))
    columns = encode(groups)
    for n_bins in (10, 15, 20):
        points = point_results(columns, np.arange(len(groups)), 3, n_bins=n_bins)
        for g, stats in enumerate(groups):
            result = stats.result(n_bins=n_bins)
            for key in ("log_loss", "brier", "ece", "mce", "prior_log_loss"):
                assert float(points[key][g]) == result[key], (key, g)
            if result["skill"] is None:  # one class seen: a prior loss of 0
                assert math.isnan(points["skill"][g])
            else:
                assert float(points["skill"][g]) == result["skill"]


def test_lag_percentiles_equal_lag_percentile_row_by_row() -> None:
    rng = np.random.default_rng(3)
    counts = np.zeros((30, LAG_BINS))
    for row in range(1, 30):  # row 0 stays empty
        lags = rng.lognormal(rng.uniform(0, 10), rng.uniform(0.1, 3), int(rng.integers(1, 50)))
        lags[: row % 4] = 0.2  # under a second: bin 0
        np.add.at(counts[row], lag_bin(lags), 1.0)
    counts[7] = 0
    counts[7, 0] = 5  # every lag in bin 0
    counts[8] = 0
    counts[8, -1] = 2  # every lag in the last bin
    for q in (0, 50, 90, 99, 100):
        rows = lag_percentiles(counts, q)
        for i in range(counts.shape[0]):
            one = lag_percentile(counts[i], q)
            assert (one is None and math.isnan(rows[i])) or float(rows[i]) == one, (q, i)


def test_a_lag_percentile_lies_in_the_bin_of_the_true_percentile() -> None:
    lags = np.array([3.0, 30.0, 300.0, 3000.0, 30000.0])  # the median is 300 s
    counts = np.zeros((1, LAG_BINS))
    np.add.at(counts[0], lag_bin(lags), 1.0)
    median = float(lag_percentiles(counts, 50)[0])
    assert 300.0 / 10**0.1 <= median <= 300.0 * 10**0.1  # a bin is a tenth of a decade


@pytest.mark.parametrize("norm", ["l1", "max"])
def test_calibration_gaps_equal_calibration_gap_row_by_row(norm: str) -> None:
    rng = np.random.default_rng(5)
    count = rng.integers(0, 5, (20, 15)).astype(float)
    count[3] = 0  # no filled bin: NaN
    score = count * rng.uniform(0, 1, count.shape)
    hit = np.minimum(count, np.round(score + rng.normal(0, 1, count.shape)).clip(0))
    gaps = calibration_gaps(count, score, hit, norm)
    assert math.isnan(gaps[3])
    for i in range(count.shape[0]):
        if i != 3:
            assert float(gaps[i]) == calibration_gap(count[i], score[i], hit[i], norm)
    # Hand-worked: bins of 2 and 2 events, observed 1/2 and 2/2 against 0.2 and 0.8.
    one = calibration_gaps(np.array([[2.0, 2.0]]), np.array([[0.4, 1.6]]), np.array([[1.0, 2.0]]),
                           norm)  # fmt: skip
    assert math.isclose(float(one[0]), 0.25 if norm == "l1" else 0.3)


def test_mean_entropies_equal_mean_entropy_and_the_hand_worked_entropy() -> None:
    p = np.array([0.5, 0.9, 0.2, 0.99])
    group = np.array([0, 0, 1, 3])  # group 2 holds nothing
    sums = expected_loss_sums(p, None, group, 4)
    values = sums.mean_entropies()
    entropy = -(p * np.log(p) + (1 - p) * np.log(1 - p))
    assert math.isclose(values[0], (entropy[0] + entropy[1]) / 2, rel_tol=1e-12)
    assert math.isclose(values[1], entropy[2], rel_tol=1e-12)
    assert math.isnan(values[2])
    for g in range(4):
        one = sums.row(g).mean_entropy()
        assert (one is None and math.isnan(values[g])) or float(values[g]) == one
