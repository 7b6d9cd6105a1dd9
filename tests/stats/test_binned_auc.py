"""The mergeable binned AUC and AP: within their stated bound of the exact values, and
merging histograms in any split equals the whole; class weights on ScoreStats."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import average_precision_score, log_loss, roc_auc_score

import xebench as xb
from xebench.errors import InvalidInputError
from xebench.stats.discrimination import DiscriminationStats

scores = st.floats(0.0, 1.0, allow_nan=False)
rows = st.lists(st.tuples(st.booleans(), scores), min_size=2, max_size=200)


@settings(max_examples=150, deadline=None)
@given(rows, st.sampled_from([4, 16, 64, 4096]), st.sampled_from(["logit", "uniform"]))
def test_binned_values_are_within_their_bound_of_the_exact_ones(
    data: list, n_bins: int, spacing: str
) -> None:
    y = np.array([int(r[0]) for r in data])
    p = np.array([r[1] for r in data])
    r = DiscriminationStats(n_bins=n_bins, spacing=spacing).update(y, p).result()
    if 0 < y.sum() < y.size:
        exact = roc_auc_score(y, p)
        assert abs(r["roc_auc"] - exact) <= r["roc_auc_bound"] + 1e-12
        assert 0.0 <= r["roc_auc_bound"] <= 0.5
    else:
        assert r["roc_auc"] is None and r["roc_auc_bound"] is None
    if y.sum() > 0:
        exact_ap = average_precision_score(y, p)
        assert abs(r["average_precision"] - exact_ap) <= r["average_precision_bound"] + 1e-12


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 2), scores, st.integers(1, 3)), min_size=3, max_size=120),
    st.lists(st.integers(0, 120), max_size=4),
)
def test_merging_any_split_equals_the_whole(data: list, cuts: list) -> None:
    y = np.array([r[0] for r in data])
    raw = np.array([[r[1], 1.0, 0.5 + r[2]] for r in data])
    probs = raw / raw.sum(axis=1, keepdims=True)
    w = np.array([float(r[2]) for r in data])  # integer weights: sums are exact
    whole = DiscriminationStats([0, 1, 2], n_bins=256).update(y, probs, w)
    bounds = [0, *sorted(c % (len(data) + 1) for c in cuts), len(data)]
    parts = [
        DiscriminationStats([0, 1, 2], n_bins=256).update(y[a:b], probs[a:b], w[a:b])
        for a, b in itertools.pairwise(bounds)
    ]
    merged = parts[0]
    for part in parts[1:]:
        merged = merged.merge(part)
    assert merged.to_dict() == whole.to_dict()
    assert merged.result() == whole.result()
    again = DiscriminationStats.from_dict(whole.to_dict())
    assert again.result() == whole.result()


def test_multiclass_macro_and_weighted_are_near_sklearn_within_the_bound() -> None:
    rng = np.random.default_rng(4)
    probs = rng.dirichlet([1.0, 1.0, 1.0], 5000)
    y = np.array([rng.choice(3, p=row) for row in probs])
    stats = DiscriminationStats([0, 1, 2]).update(y, probs)
    for average in ("macro", "weighted"):
        r = stats.result(average=average)
        exact = roc_auc_score(y, probs, multi_class="ovr", average=average)
        assert abs(r["roc_auc"] - exact) <= r["roc_auc_bound"] + 1e-12
        assert r["roc_auc_bound"] < 2e-3
        exact_ap = average_precision_score(np.eye(3)[y], probs, average=average)
        assert abs(r["average_precision"] - exact_ap) <= r["average_precision_bound"] + 1e-12
    assert [c["class"] for c in stats.result()["per_class"]] == [0, 1, 2]


def test_logit_bins_keep_rare_event_scores_apart() -> None:
    """Scores all below 1e-3 (a rare event): uniform bins merge them, logit bins do not."""
    rng = np.random.default_rng(5)
    p = rng.uniform(1e-5, 1e-3, 20_000)
    y = (rng.uniform(size=p.size) < p * 300).astype(int)
    logit = DiscriminationStats().update(y, p).result()
    uniform = DiscriminationStats(spacing="uniform").update(y, p).result()
    assert logit["roc_auc_bound"] < 0.01 < uniform["roc_auc_bound"]
    assert abs(logit["roc_auc"] - roc_auc_score(y, p)) <= logit["roc_auc_bound"]


def test_class_weight_on_the_binned_ap_is_the_kernels() -> None:
    rng = np.random.default_rng(6)
    p = rng.beta(1, 9, 3000)
    y = (rng.uniform(size=p.size) < p).astype(int)
    r = DiscriminationStats(class_weight={1: 9}).update(y, p).result()
    exact = average_precision_score(y, p, sample_weight=np.where(y == 1, 9.0, 1.0))
    assert abs(r["average_precision"] - exact) <= r["average_precision_bound"] + 1e-12
    with pytest.raises(InvalidInputError, match="'balanced' needs the class counts"):
        DiscriminationStats(class_weight="balanced")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="cannot merge statistics with class_weight"):
        DiscriminationStats().merge(DiscriminationStats(class_weight={1: 9}))


def test_score_stats_class_weight_equals_the_kernel_and_round_trips() -> None:
    rng = np.random.default_rng(7)
    p = rng.beta(1, 20, 10_000)
    y = (rng.uniform(size=p.size) < p).astype(int)
    stats = xb.ScoreStats(class_weight={1: 99}).update(y[:4000], p[:4000])
    stats = stats.merge(xb.ScoreStats(class_weight={1: 99}).update(y[4000:], p[4000:]))
    w = np.where(y == 1, 99.0, 1.0)
    r = stats.result()
    assert r["log_loss"] == pytest.approx(log_loss(y, p, sample_weight=w), rel=1e-12)
    assert r["log_loss"] == pytest.approx(xb.log_loss(y, p, class_weight={1: 99}), rel=1e-12)
    assert r["brier"] == pytest.approx(xb.brier_score(y, p, class_weight={1: 99}), rel=1e-12)
    assert r["label_counts"] == {"0": float((y == 0).sum()), "1": 99.0 * (y == 1).sum()}
    again = xb.ScoreStats.from_dict(stats.to_dict())
    assert again.class_weight == (1.0, 99.0) and again.to_dict() == stats.to_dict()
    assert "class_weight" not in xb.ScoreStats().to_dict()  # unweighted: the form as before
    with pytest.raises(InvalidInputError, match="cannot merge statistics with class_weight"):
        stats.merge(xb.ScoreStats())
    with pytest.raises(InvalidInputError, match="'balanced' needs the class counts"):
        xb.ScoreStats(class_weight="balanced")  # type: ignore[arg-type]
    assert math.isfinite(r["skill"])
