"""The Poisson bootstrap: deterministic per event, so partitions merge to one pass."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import xebench as xb
from xebench.stats.bootstrap import event_keys, poisson_weights

CUTS = [0, 3, 150, 151, 900, 1400, 1999, 2500]  # 7 uneven partitions, one of a single row


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    p = rng.uniform(0.02, 0.98, CUTS[-1])
    y = (rng.uniform(size=p.size) < p).astype(int)
    ids = rng.permutation(p.size) * 7919 + 10**9  # distinct, unrelated to the row order
    return y, p, ids


def partitions() -> list[tuple[int, int]]:
    return list(itertools.pairwise(CUTS))


def assert_same_bootstrap(a: xb.ScoreStats, b: xb.ScoreStats) -> None:
    np.testing.assert_array_equal(a.boot[:, 0], b.boot[:, 0])  # integer weight sums: exact
    np.testing.assert_allclose(a.boot[:, 1:], b.boot[:, 1:], rtol=1e-12)
    ra, rb = a.result(), b.result()
    for key in ("log_loss_ci_bootstrap", "brier_ci_bootstrap"):
        assert ra[key] == pytest.approx(rb[key], rel=1e-12)


@pytest.mark.parametrize("with_ids", [True, False])
def test_seven_uneven_partitions_merge_to_the_one_pass_result(data, with_ids: bool) -> None:
    y, p, ids = data
    one_pass = xb.ScoreStats(bootstrap=200).update(y, p, ids=ids if with_ids else None)
    parts = []
    for start, stop in partitions():
        stats = xb.ScoreStats(bootstrap=200)
        if with_ids:
            stats.update(y[start:stop], p[start:stop], ids=ids[start:stop])
        else:  # each partition says where its rows start
            stats.update(y[start:stop], p[start:stop], row_offset=start)
        parts.append(stats)
    rng = np.random.default_rng(0)
    for order in (range(len(parts)), rng.permutation(len(parts))):
        merged = xb.ScoreStats(bootstrap=200)
        for index in order:
            merged = merged.merge(parts[index])
        assert_same_bootstrap(merged, one_pass)


def test_ids_decide_the_weights_not_the_position(data) -> None:
    y, p, ids = data
    order = np.random.default_rng(1).permutation(y.size)
    shuffled = xb.ScoreStats(bootstrap=100).update(y[order], p[order], ids=ids[order])
    assert_same_bootstrap(shuffled, xb.ScoreStats(bootstrap=100).update(y, p, ids=ids))


def test_string_ids_hash_the_same_in_every_process() -> None:
    import subprocess
    import sys

    code = (
        "from xebench.stats.bootstrap import event_keys;"
        "print(event_keys(['req-1', 'req-2'], 2, 0).tolist())"
    )
    runs = {
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
        for _ in range(2)
    }
    assert len(runs) == 1 and runs.pop().strip() == str(
        event_keys(["req-1", "req-2"], 2, 0).tolist()
    )


def test_weights_are_poisson_one() -> None:
    weights = poisson_weights(np.arange(200_000, dtype=np.uint64), 50).astype(float)
    assert weights.mean() == pytest.approx(1.0, abs=0.005)
    assert weights.var() == pytest.approx(1.0, abs=0.01)
    from scipy.stats import poisson

    observed = np.bincount(weights.astype(int).ravel(), minlength=7)[:4] / weights.size
    np.testing.assert_allclose(observed, poisson.pmf(np.arange(4), 1.0), atol=0.002)
    other_seed = poisson_weights(np.arange(1000, dtype=np.uint64), 50, seed=1)
    assert not np.array_equal(other_seed, weights[:1000].astype(np.uint8))
    again = poisson_weights(np.arange(1000, dtype=np.uint64), 50)
    np.testing.assert_array_equal(again, weights[:1000].astype(np.uint8))


def test_bootstrap_interval_is_close_to_the_t_interval_for_a_large_sample() -> None:
    rng = np.random.default_rng(8)
    p = rng.uniform(0.02, 0.98, 50_000)
    y = (rng.uniform(size=p.size) < p).astype(int)
    result = xb.ScoreStats(bootstrap=200).update(y, p).result()
    (t_low, t_high), (b_low, b_high) = result["log_loss_ci"], result["log_loss_ci_bootstrap"]
    width = t_high - t_low
    assert abs(b_low - t_low) < 0.15 * width and abs(b_high - t_high) < 0.15 * width


def test_merging_different_replicate_counts_is_refused() -> None:
    a = xb.ScoreStats(bootstrap=10).update([1], [0.5])
    b = xb.ScoreStats(bootstrap=20).update([1], [0.5])
    with pytest.raises(ValueError, match="replicates"):
        a.merge(b)
    with pytest.raises(ValueError, match="bootstrap"):
        xb.ScoreStats(bootstrap=-1)
