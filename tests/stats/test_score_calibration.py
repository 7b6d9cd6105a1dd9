"""The fine calibration bins: coarse bins are sums of fine ones."""

from __future__ import annotations

import numpy as np
import pytest

import xebench as xb
from xebench.stats.score_calibration import FINE_BINS, FINE_EDGES, coarse_bins


def test_coarse_bins_sum_consecutive_fine_bins() -> None:
    fine = np.arange(FINE_BINS, dtype=np.float64)
    coarse = coarse_bins(fine, 10)
    assert coarse.tolist() == [float(sum(range(30 * i, 30 * i + 30))) for i in range(10)]


def test_coarse_bins_equal_the_kernels_bins_on_the_same_edges() -> None:
    rng = np.random.default_rng(7)
    p = rng.uniform(size=2000)
    y = (rng.uniform(size=2000) < p).astype(int)
    stats = xb.ScoreStats().update(y, p)
    curve = xb.reliability_curve(y, p, n_bins=20)
    assert coarse_bins(stats.cal_count, 20).tolist() == curve.count.tolist()
    assert FINE_EDGES[::15].tolist() == pytest.approx(curve.bin_edges.tolist(), abs=1e-15)


def test_a_bin_count_that_does_not_divide_the_fine_bins_is_refused() -> None:
    with pytest.raises(ValueError, match=r"n_bins.*300 stored calibration bins.*\[1, 2, 3"):
        coarse_bins(np.zeros(FINE_BINS), 7)


def test_decompositions_need_events() -> None:
    with pytest.raises(ValueError, match="no events"):
        xb.ScoreStats().brier_decomposition()
    with pytest.raises(ValueError, match="binary"):
        xb.ScoreStats(["a", "b", "c"]).update(["a"], [[0.5, 0.3, 0.2]]).log_loss_decomposition()
