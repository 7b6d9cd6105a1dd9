"""Scoring a chunk once and accumulating it several ways gives the same statistics."""

from __future__ import annotations

import numpy as np
import pytest

import xebench as xb


def assert_same(a: xb.ScoreStats, b: xb.ScoreStats) -> None:
    assert a.n == b.n and a.clipped == b.clipped
    ra, rb = a.result(), b.result()
    for key in ("log_loss", "log_loss_se", "brier", "ece", "mce", "accuracy", "prior_log_loss"):
        if rb[key] is None:  # an empty group has no loss
            assert ra[key] is None, key
        else:
            assert ra[key] == pytest.approx(rb[key], rel=1e-12, abs=1e-15), key
    np.testing.assert_allclose(a.cal_count, b.cal_count, rtol=1e-12)
    np.testing.assert_allclose(a.cal_score, b.cal_score, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(a.label_weight, b.label_weight, rtol=1e-12)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("classes", [None, ["a", "b", "c"]])
def test_add_groups_equals_one_update_per_group(weighted: bool, classes: list | None) -> None:
    rng = np.random.default_rng(4)
    n, n_groups = 5000, 6  # group 5 stays empty
    if classes is None:
        y, p = rng.integers(0, 2, n), rng.uniform(1e-18, 1, n)  # some rows clipped
    else:
        p = rng.dirichlet(np.ones(3), n)
        y = np.array(classes)[rng.integers(0, 3, n)]
    w = rng.uniform(0, 3, n) if weighted else None
    group = rng.integers(0, n_groups - 1, n)
    grouped = [xb.ScoreStats(classes) for _ in range(n_groups)]
    xb.ScoreStats.add_groups(grouped, group, xb.ScoreStats(classes).score(y, p, w))
    for g in range(n_groups):
        rows = group == g
        expected = xb.ScoreStats(classes)
        if rows.any():
            expected.update(y[rows], p[rows], None if w is None else w[rows])
        assert_same(grouped[g], expected)
        if rows.any():
            expected_loss = xb.log_loss(
                y[rows], p[rows], labels=classes, sample_weight=None if w is None else w[rows]
            )
            assert grouped[g].result()["log_loss"] == pytest.approx(expected_loss, rel=1e-12)


def test_add_groups_with_bootstrap_matches_separate_updates() -> None:
    rng = np.random.default_rng(5)
    y, p = rng.integers(0, 2, 800), rng.uniform(0.01, 0.99, 800)
    ids = np.arange(800)
    group = rng.integers(0, 3, 800)
    grouped = [xb.ScoreStats(bootstrap=50) for _ in range(3)]
    xb.ScoreStats.add_groups(grouped, group, grouped[0].score(y, p, ids=ids))
    for g in range(3):
        rows = group == g
        expected = xb.ScoreStats(bootstrap=50).update(y[rows], p[rows], ids=ids[rows])
        np.testing.assert_array_equal(grouped[g].boot, expected.boot)


def test_scored_rows_feed_stats_and_paired_comparison_like_update() -> None:
    rng = np.random.default_rng(6)
    y = rng.integers(0, 2, 1000)
    a, b = rng.uniform(0.01, 0.99, 1000), rng.uniform(0.01, 0.99, 1000)
    stats = xb.ScoreStats()
    rows_a, rows_b = stats.score(y, a), stats.score(y, b)
    assert_same(xb.ScoreStats().add(rows_a), xb.ScoreStats().update(y, a))
    paired = xb.PairedStats().add(rows_b, rows_a).result()
    direct = xb.PairedStats().update(y, b, a).result()
    assert paired.delta == pytest.approx(direct.delta, rel=1e-12)
    assert paired.delta == pytest.approx(xb.log_loss(y, b) - xb.log_loss(y, a), rel=1e-9)
