"""Moments: a merge equals one pass over both samples; intervals equal SciPy's."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xebench.stats.moments import (
    Moments,
    check_confidence,
    combine_moments,
    standard_error,
    t_interval,
)

FAST = settings(max_examples=60, deadline=None)
samples = st.lists(st.floats(-1e3, 1e3), max_size=30).map(np.array)


def by_hand(values: np.ndarray, weight: np.ndarray) -> tuple[float, float, float]:
    """(total weight, weighted mean, weighted sum of squared deviations), two passes."""
    total = float(weight.sum())
    mean = float((weight * values).sum() / total)
    return total, mean, float((weight * (values - mean) ** 2).sum())


@FAST
@given(samples, samples)
def test_merge_equals_the_moments_of_both_samples(a: np.ndarray, b: np.ndarray) -> None:
    both = np.concatenate([a, b])
    merged = Moments.of(a).merge(Moments.of(b))
    if both.size == 0:
        assert merged == Moments()
        return
    weight, mean, m2 = by_hand(both, np.ones(both.size))
    assert merged.weight == weight
    assert merged.mean == pytest.approx(mean, rel=1e-9, abs=1e-9)
    assert merged.m2 == pytest.approx(m2, rel=1e-9, abs=1e-6)


def test_weighted_moments_and_zero_weight() -> None:
    values, weight = np.array([1.0, 2.0, 4.0]), np.array([0.5, 2.0, 1.5])
    moments = Moments.of(values, weight)
    assert (moments.weight, moments.mean, moments.m2) == pytest.approx(by_hand(values, weight))
    assert Moments.of(values, np.zeros(3)) == Moments()


def test_combine_moments_equals_merging_one_by_one() -> None:
    rng = np.random.default_rng(5)
    parts = [rng.normal(size=rng.integers(1, 20)) for _ in range(12)]
    group = rng.integers(0, 3, len(parts))  # of 4 groups: group 3 stays empty
    moments = [Moments.of(p) for p in parts]
    columns = (np.array([getattr(m, name) for m in moments]) for name in ("weight", "mean", "m2"))
    weight, mean, m2 = combine_moments(group, 4, *columns)
    for g in range(3):
        values = np.concatenate([p for p, k in zip(parts, group, strict=True) if k == g])
        expected = by_hand(values, np.ones(values.size))
        assert (weight[g], mean[g], m2[g]) == pytest.approx(expected, rel=1e-12)
    assert (weight[3], mean[3], m2[3]) == (0.0, 0.0, 0.0)


def test_weighted_t_interval_uses_kish_effective_size() -> None:
    from scipy import stats as scipy_stats

    rng = np.random.default_rng(6)
    values, weight = rng.normal(2.0, 1.0, 200), rng.uniform(0.5, 2.0, 200)
    total, mean, m2 = by_hand(values, weight)
    n_eff = total**2 / float((weight**2).sum())
    se = math.sqrt(m2 / total * n_eff / (n_eff - 1.0) / n_eff)
    low, high = scipy_stats.t.interval(0.9, n_eff - 1.0, loc=mean, scale=se)
    moments = Moments.of(values, weight)
    assert standard_error(moments, float((weight**2).sum())) == pytest.approx((se, n_eff))
    interval = t_interval(moments, float((weight**2).sum()), 0.9)
    assert interval == pytest.approx((low, high, se), rel=1e-10)


def test_no_interval_below_two_effective_rows() -> None:
    one = Moments.of(np.array([3.0]))
    assert standard_error(one, 1.0) == (math.inf, 1.0)
    assert t_interval(one, 1.0, 0.95) is None
    assert t_interval(Moments(), 0.0, 0.95) is None


@pytest.mark.parametrize("bad", [0, 1, 1.5, -0.1, True, "0.9", None, float("nan")])
def test_check_confidence_names_the_argument(bad: object) -> None:
    with pytest.raises(ValueError, match="confidence"):
        check_confidence(bad)


def test_check_confidence_returns_a_float() -> None:
    assert check_confidence(np.float32(0.5)) == 0.5 and type(check_confidence(0.5)) is float
