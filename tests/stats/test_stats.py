"""ScoreStats: merging equals concatenating, results equal the kernel, CIs cover."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import xebench as xb

CLASSES = ["a", "b", "c"]
FAST = settings(max_examples=40, deadline=None)


@st.composite
def chunks(draw: st.DrawFn, multiclass: bool = False, weighted: bool = False) -> tuple:
    """(y, p, w) of 0..40 rows; probabilities include exact 0 and 1 (clipped rows)."""
    n = draw(st.integers(0, 40))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if multiclass:
        p = rng.dirichlet(np.full(3, 0.5), n)
        p[: n // 7, :] = np.eye(3)[rng.integers(0, 3, n // 7)]  # certain rows
        y = np.array(CLASSES, dtype=object)[rng.integers(0, 3, n)]
    else:
        p = rng.choice([0.0, 1.0, 0.5, 0.25, 0.75, *rng.uniform(0, 1, 8)], n)
        y = rng.integers(0, 2, n)
    w = rng.uniform(0.1, 3.0, n) if weighted else None
    return y, p, w


def stats_of(data: tuple, classes: list | None) -> xb.ScoreStats:
    y, p, w = data
    return xb.ScoreStats(classes).update(y, p, w)


def concat(*parts: tuple) -> tuple:
    y = np.concatenate([part[0] for part in parts])
    p = np.concatenate([part[1] for part in parts])
    w = None if parts[0][2] is None else np.concatenate([part[2] for part in parts])
    return y, p, w


def assert_equal_stats(a: xb.ScoreStats, b: xb.ScoreStats) -> None:
    """Exactly equal counts, sums equal to 1e-12 relative."""
    assert a.n == b.n and a.clipped == b.clipped
    np.testing.assert_allclose(a.label_weight, b.label_weight, rtol=1e-12)
    np.testing.assert_allclose(a.cal_count, b.cal_count, rtol=1e-12)
    np.testing.assert_allclose(a.cal_score, b.cal_score, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(a.cal_hit, b.cal_hit, rtol=1e-12, atol=1e-12)
    for x, y in ((a.nll, b.nll), (a.brier, b.brier)):
        assert x.weight == pytest.approx(y.weight, rel=1e-12)
        assert x.mean == pytest.approx(y.mean, rel=1e-12, abs=1e-13)
        assert x.m2 == pytest.approx(y.m2, rel=1e-9, abs=1e-11)
    assert a.hits == pytest.approx(b.hits, rel=1e-12, abs=1e-12)


def assert_matches_kernel(stats: xb.ScoreStats, data: tuple, classes: list | None) -> None:
    y, p, w = data
    result = stats.result()
    labels = classes if classes is not None else [0, 1]
    assert result["n"] == len(y)
    if len(y) == 0 or (w is not None and w.sum() == 0):
        assert result["log_loss"] is None
        return
    kw = {"labels": labels, "sample_weight": w}
    assert result["log_loss"] == pytest.approx(xb.log_loss(y, p, **kw), rel=1e-12)
    assert result["brier"] == pytest.approx(xb.brier_score(y, p, **kw), rel=1e-12, abs=1e-15)
    assert result["accuracy"] == pytest.approx(xb.accuracy(y, p, **kw), rel=1e-12)
    prior = xb.prior_log_loss(y, **kw)
    assert result["prior_log_loss"] == pytest.approx(prior, rel=1e-12, abs=1e-15)
    assert result["perplexity"] == pytest.approx(xb.perplexity(y, p, **kw), rel=1e-12)
    assert result["clipped"] == xb.clipped_count(y, p, labels=labels)
    for n_bins in (10, 15, 20):
        r = stats.result(n_bins=n_bins)
        expected = xb.calibration_error(y, p, n_bins=n_bins, **kw)
        assert r["ece"] == pytest.approx(expected, rel=1e-12, abs=1e-15)
        mce = xb.calibration_error(y, p, n_bins=n_bins, norm="max", **kw)
        assert r["mce"] == pytest.approx(mce, rel=1e-12, abs=1e-15)


@pytest.mark.parametrize(
    ("multiclass", "weighted"), [(False, False), (False, True), (True, False), (True, True)]
)
def test_merge_equals_concatenation_and_the_kernel(multiclass: bool, weighted: bool) -> None:
    classes = CLASSES if multiclass else None

    @FAST
    @given(chunks(multiclass, weighted), chunks(multiclass, weighted))
    def check(a: tuple, b: tuple) -> None:
        merged = stats_of(a, classes).merge(stats_of(b, classes))
        whole = stats_of(concat(a, b), classes)
        assert_equal_stats(merged, whole)
        assert_matches_kernel(merged, concat(a, b), classes)

    check()


@FAST
@given(chunks(), chunks(), chunks())
def test_merge_is_associative_and_commutative(a: tuple, b: tuple, c: tuple) -> None:
    sa, sb, sc = (stats_of(x, None) for x in (a, b, c))
    assert_equal_stats(sa.merge(sb).merge(sc), sa.merge(sb.merge(sc)))
    assert_equal_stats(sa.merge(sb), sb.merge(sa))


@FAST
@given(chunks(multiclass=True, weighted=True))
def test_empty_statistics_are_the_identity(a: tuple) -> None:
    stats = stats_of(a, CLASSES)
    empty = xb.ScoreStats(CLASSES)
    assert_equal_stats(stats.merge(empty), stats)
    assert_equal_stats(empty.merge(stats), stats)


@FAST
@given(chunks(weighted=True), st.lists(st.integers(0, 40), max_size=5))
def test_chunking_does_not_change_results(data: tuple, cuts: list[int]) -> None:
    y, p, w = data
    bounds = sorted({0, len(y), *(c for c in cuts if c <= len(y))})
    chunked = xb.ScoreStats()
    for start, stop in itertools.pairwise(bounds):
        chunked.update(y[start:stop], p[start:stop], w[start:stop])
    assert_equal_stats(chunked, xb.ScoreStats().update(y, p, w))


@FAST
@given(chunks(multiclass=True, weighted=True))
def test_dict_and_row_round_trips(a: tuple) -> None:
    stats = stats_of(a, CLASSES)
    again = xb.ScoreStats.from_dict(json.loads(json.dumps(stats.to_dict())))
    assert again.to_dict() == stats.to_dict()
    assert_equal_stats(again, stats)
    row = stats.to_row()
    assert all(isinstance(k, str) for k in row)
    assert xb.ScoreStats.from_row(row).to_dict() == stats.to_dict()


def test_merging_different_class_lists_names_both() -> None:
    a = xb.ScoreStats(["a", "b", "c"]).update(["a"], [[0.5, 0.3, 0.2]])
    b = xb.ScoreStats(["a", "b", "d"]).update(["d"], [[0.5, 0.3, 0.2]])
    with pytest.raises(ValueError, match=r"\['a', 'b', 'c'\].*\['a', 'b', 'd'\]"):
        a.merge(b)


def test_bad_update_input_names_the_argument() -> None:
    stats = xb.ScoreStats()
    with pytest.raises(ValueError, match="y_prob"):
        stats.update([1, 0], [0.5, 1.5])
    with pytest.raises(ValueError, match="y_true"):
        stats.update([1, 2], [0.5, 0.5])
    with pytest.raises(ValueError, match="sample_weight"):
        stats.update([1, 0], [0.5, 0.5], [1.0, -1.0])
    with pytest.raises(ValueError, match="y_prob"):
        xb.ScoreStats(CLASSES).update(["a"], [0.5])
    assert stats.n == 0, "a rejected chunk adds nothing"


# --- decompositions -------------------------------------------------------------


def test_decompositions_are_exact_when_each_bin_holds_one_forecast() -> None:
    """Forecasts at bin centres: the binned decompositions equal the unbinned truth."""
    rng = np.random.default_rng(1)
    centres = (np.arange(10) + 0.5) / 10
    p = rng.choice(centres, 20_000)
    y = (rng.uniform(size=p.size) < np.clip(p * 1.2, 0, 1)).astype(int)  # miscalibrated
    stats = xb.ScoreStats().update(y, p)
    brier = stats.brier_decomposition(n_bins=10)
    # Murphy (1973) by hand, per distinct forecast value.
    o = y.mean()
    rel = res = 0.0
    for f in centres:
        rows = p == f
        o_f = y[rows].mean()
        rel += rows.mean() * (f - o_f) ** 2
        res += rows.mean() * (o_f - o) ** 2
    assert brier["reliability"] == pytest.approx(rel, rel=1e-10)
    assert brier["resolution"] == pytest.approx(res, rel=1e-10)
    assert brier["uncertainty"] == pytest.approx(o * (1 - o), rel=1e-12)
    assert rel - res + o * (1 - o) == pytest.approx(xb.brier_score(y, p), rel=1e-10)
    loss = stats.log_loss_decomposition(n_bins=10)
    # Refinement: the log loss after recalibrating each forecast to its observed frequency.
    recalibrated = np.array([y[p == f].mean() for f in centres])[np.searchsorted(centres, p)]
    refinement = xb.log_loss(y, recalibrated)
    assert loss["refinement"] == pytest.approx(refinement, rel=1e-10)
    assert loss["calibration"] + loss["refinement"] == pytest.approx(xb.log_loss(y, p), rel=1e-12)


def test_binned_brier_converges_as_bins_get_finer() -> None:
    rng = np.random.default_rng(2)
    p = rng.beta(2, 5, 50_000)
    y = (rng.uniform(size=p.size) < p**0.8).astype(int)
    stats = xb.ScoreStats().update(y, p)
    truth = xb.brier_score(y, p)
    errors = []
    for n_bins in (5, 30, 300):
        d = stats.brier_decomposition(n_bins=n_bins)
        errors.append(abs(d["reliability"] - d["resolution"] + d["uncertainty"] - truth))
    assert errors[0] > errors[1] > errors[2] and errors[2] < 1e-5


# --- confidence intervals by simulation ------------------------------------------


def test_t_interval_covers_the_expected_log_loss_95_percent_of_the_time() -> None:
    """400 samples of 400 events from a model whose expected loss is known exactly.

    The forecast is one of four values, uniformly, and the label follows a
    frequency different from the forecast: E[nll] is a finite sum.
    """
    rng = np.random.default_rng(20261122)
    forecast = np.array([0.1, 0.3, 0.6, 0.9])
    truth = np.array([0.2, 0.25, 0.7, 0.8])
    expected = float(np.mean(-(truth * np.log(forecast) + (1 - truth) * np.log(1 - forecast))))
    sims, n = 400, 400
    kind = rng.integers(0, 4, (sims, n))
    y = (rng.uniform(size=(sims, n)) < truth[kind]).astype(int)
    covered = 0
    for s in range(sims):
        low, high = xb.ScoreStats().update(y[s], forecast[kind[s]]).result()["log_loss_ci"]
        covered += low <= expected <= high
    coverage = covered / sims
    print(f"95% t interval coverage over {sims} simulations: {coverage:.3f}")
    assert 0.93 <= coverage <= 0.97


def test_brier_interval_matches_a_t_interval_by_hand() -> None:
    from scipy import stats as scipy_stats

    rng = np.random.default_rng(3)
    p = rng.uniform(0, 1, 500)
    y = (rng.uniform(size=500) < p).astype(int)
    per_row = (p - y) ** 2
    low, high = scipy_stats.t.interval(0.9, 499, loc=per_row.mean(), scale=scipy_stats.sem(per_row))
    result = xb.ScoreStats().update(y, p).result(confidence=0.9)
    assert result["brier_ci"] == pytest.approx([low, high], rel=1e-10)
    nll = -np.log(np.where(y == 1, p, 1 - p))
    assert result["log_loss_se"] == pytest.approx(scipy_stats.sem(nll), rel=1e-10)
    assert math.isclose(result["log_loss"], nll.mean(), rel_tol=1e-12)
