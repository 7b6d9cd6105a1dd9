"""Paired and unpaired comparisons against SciPy; the gate's power and false alarms."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import optimize
from scipy import stats as scipy_stats
from scipy.special import expit, logit

import xebench as xb


def nll(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    return -np.log(np.where(y == 1, p, 1 - p))


def test_paired_comparison_matches_scipy_ttest_rel() -> None:
    rng = np.random.default_rng(0)
    p = rng.uniform(0.05, 0.95, 3000)
    y = (rng.uniform(size=p.size) < p).astype(int)
    q = np.clip(p + rng.normal(0, 0.05, p.size), 0.01, 0.99)
    c = xb.PairedStats().update(y, q, p).result(confidence=0.9)
    diff = nll(y, q) - nll(y, p)
    assert c.delta == pytest.approx(diff.mean(), rel=1e-12)
    assert c.p_value == pytest.approx(scipy_stats.ttest_rel(nll(y, q), nll(y, p)).pvalue, rel=1e-8)
    low, high = scipy_stats.t.interval(0.9, diff.size - 1, diff.mean(), scipy_stats.sem(diff))
    assert list(c.delta_ci) == pytest.approx([low, high], rel=1e-10)
    assert c.relative_delta == pytest.approx(diff.mean() / nll(y, p).mean(), rel=1e-12)


def test_paired_statistics_merge_like_one_pass() -> None:
    rng = np.random.default_rng(1)
    p = rng.uniform(0.05, 0.95, 1000)
    y = (rng.uniform(size=p.size) < p).astype(int)
    q = rng.uniform(0.05, 0.95, 1000)
    whole = xb.PairedStats().update(y, q, p).result()
    parts = [
        xb.PairedStats().update(y[a:b], q[a:b], p[a:b])
        for a, b in ((0, 10), (10, 700), (700, 1000))
    ]
    merged = parts[0].merge(parts[1]).merge(parts[2]).result()
    assert merged.delta == pytest.approx(whole.delta, rel=1e-12)
    assert merged.p_value == pytest.approx(whole.p_value, rel=1e-9)
    again = xb.PairedStats.from_dict(parts[1].to_dict())
    assert again.to_dict() == parts[1].to_dict()


def test_unpaired_comparison_matches_scipy_welch() -> None:
    rng = np.random.default_rng(2)
    p1, p2 = rng.uniform(0.05, 0.95, 800), rng.uniform(0.05, 0.95, 1500)
    y1 = (rng.uniform(size=p1.size) < p1).astype(int)
    y2 = (rng.uniform(size=p2.size) < np.clip(p2 * 1.1, 0, 1)).astype(int)
    c = xb.unpaired_comparison(xb.ScoreStats().update(y2, p2), xb.ScoreStats().update(y1, p1))
    welch = scipy_stats.ttest_ind(nll(y2, p2), nll(y1, p1), equal_var=False)
    assert c.p_value == pytest.approx(welch.pvalue, rel=1e-8)
    assert c.delta == pytest.approx(nll(y2, p2).mean() - nll(y1, p1).mean(), rel=1e-12)


def test_decide_rules_and_exit_codes() -> None:
    rng = np.random.default_rng(3)
    p = rng.uniform(0.05, 0.95, 20_000)
    y = (rng.uniform(size=p.size) < p).astype(int)
    worse = np.clip(p + rng.normal(0, 0.15, p.size), 0.01, 0.99)
    c = xb.PairedStats().update(y, worse, p).result()
    relative = c.relative_delta
    fail = xb.decide(c, max_degradation=relative / 2)
    assert (fail.status, fail.exit_code) == ("fail", 1)
    passing = xb.decide(c, max_degradation=relative * 2)
    assert (passing.status, passing.exit_code) == ("pass", 0)
    few = xb.decide(c, min_samples=c.n + 1)
    assert (few.status, few.exit_code) == ("inconclusive", 3)
    assert fail.threshold_delta == pytest.approx(relative / 2 * c.baseline_log_loss, rel=1e-12)
    data = fail.to_dict()
    assert data["status"] == "fail" and data["comparison"]["n_candidate"] == c.n
    with pytest.raises(ValueError, match="looks"):
        xb.decide(c, looks=0)
    with pytest.raises(ValueError, match="max_degradation"):
        xb.decide(c, max_degradation=-0.1)


def test_looks_divide_alpha_bonferroni() -> None:
    """A delta significant at 5% but not at 5% / 10 fails with one look, passes with ten."""
    rng = np.random.default_rng(4)
    for seed in range(200):
        rng = np.random.default_rng(seed)
        p = rng.uniform(0.05, 0.95, 2000)
        y = (rng.uniform(size=p.size) < p).astype(int)
        q = np.clip(p + rng.normal(0, 0.03, p.size), 0.01, 0.99)
        c = xb.PairedStats().update(y, q, p).result()
        one_sided = scipy_stats.ttest_rel(nll(y, q), nll(y, p), alternative="greater").pvalue
        if 0.005 < one_sided < 0.05:
            break
    else:
        pytest.fail("no sample with a borderline p-value")
    one, ten = xb.decide(c), xb.decide(c, looks=10)
    assert one.status == "fail" and ten.status == "pass"
    assert ten.alpha == pytest.approx(0.005) and one.p_value == pytest.approx(one_sided, rel=1e-8)


# --- power and false alarms by simulation ----------------------------------------

GRID = np.linspace(0.02, 0.98, 49)  # forecasts; the truth equals the forecast


def expected_loss(q: np.ndarray) -> float:
    """Exact E[nll] of forecasts q when labels follow GRID (uniform over the grid)."""
    return float(np.mean(-(GRID * np.log(q) + (1 - GRID) * np.log(1 - q))))


def sharpened(temperature: float) -> np.ndarray:
    return expit(temperature * logit(GRID))


def test_gate_flags_a_planted_2_percent_degradation_in_90_percent() -> None:
    base = expected_loss(GRID)
    temperature = optimize.brentq(lambda t: expected_loss(sharpened(t)) - 1.02 * base, 1.0, 3.0)
    candidate = sharpened(temperature)
    assert expected_loss(candidate) / base == pytest.approx(1.02, rel=1e-9)
    rng = np.random.default_rng(11)
    sims, n, failed = 100, 100_000, 0
    for _ in range(sims):
        kind = rng.integers(0, GRID.size, n)
        y = (rng.uniform(size=n) < GRID[kind]).astype(int)
        c = xb.PairedStats().update(y, candidate[kind], GRID[kind]).result()
        failed += xb.decide(c, max_degradation=0.0).status == "fail"
    print(f"power at a 2% degradation, n = {n}: {failed / sims:.2f}")
    assert failed / sims >= 0.90


def test_gate_rarely_flags_models_of_identical_quality() -> None:
    """Two models with independent noise of the same size: equal expected loss."""
    rng = np.random.default_rng(12)
    sims, n, failed = 1000, 10_000, 0
    for _ in range(sims):
        kind = rng.integers(0, GRID.size, n)
        y = (rng.uniform(size=n) < GRID[kind]).astype(int)
        noise = rng.normal(0, 0.3, (2, n))
        a, b = expit(logit(GRID[kind]) + noise[0]), expit(logit(GRID[kind]) + noise[1])
        c = xb.PairedStats().update(y, a, b).result()
        failed += xb.decide(c, max_degradation=0.0).status == "fail"
    print(f"false alarms with identical quality: {failed / sims:.3f}")
    assert failed / sims <= 0.06
