"""ROC AUC and average precision against scikit-learn (the oracle), to 1e-9.

Ties, sample weights, one-vs-rest macro and weighted averages, class weights,
the undefined single-class case, and DeLong's variance against its pairwise
definition.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import average_precision_score, roc_auc_score

import xebench as xb
from xebench.errors import UndefinedMetricWarning
from xebench.metrics.discrimination import auc_variance, rank_groups

TOL = 1e-9


def _binary(seed: int, n: int = 500, ties: bool = False) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    p = rng.beta(2, 5, n)
    y = (rng.uniform(size=n) < p).astype(int)
    if ties:
        p = np.round(p, 1)  # a handful of distinct scores: ties everywhere
    return y, p


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("weighted", [False, True])
def test_binary_equals_sklearn(ties: bool, weighted: bool) -> None:
    for seed in range(5):
        y, p = _binary(seed, ties=ties)
        w = np.random.default_rng(seed + 100).uniform(0, 3, y.size) if weighted else None
        assert xb.roc_auc(y, p, sample_weight=w) == pytest.approx(
            roc_auc_score(y, p, sample_weight=w), abs=TOL
        )
        assert xb.average_precision(y, p, sample_weight=w) == pytest.approx(
            average_precision_score(y, p, sample_weight=w), abs=TOL
        )


def test_two_columns_and_string_labels_are_the_binary_case() -> None:
    y, p = _binary(7, ties=True)
    names = np.where(y == 1, "fraud", "ok")
    two = np.column_stack([1 - p, p])
    expected = roc_auc_score(y, p)
    assert xb.roc_auc(names, two, labels=["ok", "fraud"]) == pytest.approx(expected, abs=TOL)
    assert xb.average_precision(names, p, labels=["ok", "fraud"]) == pytest.approx(
        average_precision_score(y, p), abs=TOL
    )


@pytest.mark.parametrize("average", ["macro", "weighted"])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("ties", [False, True])
def test_multiclass_one_vs_rest_equals_sklearn(average: str, weighted: bool, ties: bool) -> None:
    rng = np.random.default_rng(3)
    n, k = 600, 4
    probs = rng.dirichlet([1.0] * k, n)
    if ties:
        probs = np.round(probs, 1) + 1e-3
        probs /= probs.sum(axis=1, keepdims=True)
    y = np.array([rng.choice(k, p=row) for row in probs])
    w = rng.uniform(0, 2, n) if weighted else None
    expected_auc = roc_auc_score(y, probs, multi_class="ovr", average=average, sample_weight=w)
    expected_ap = average_precision_score(np.eye(k)[y], probs, average=average, sample_weight=w)
    assert xb.roc_auc(y, probs, average=average, sample_weight=w) == pytest.approx(
        expected_auc, abs=TOL
    )
    assert xb.average_precision(y, probs, average=average, sample_weight=w) == pytest.approx(
        expected_ap, abs=TOL
    )
    per_class = xb.roc_auc(y, probs, average=None, sample_weight=w)
    oracle = roc_auc_score(np.eye(k)[y], probs, average=None, sample_weight=w)
    np.testing.assert_allclose(per_class, oracle, atol=TOL)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.booleans(), st.integers(0, 6), st.integers(0, 4)), min_size=2, max_size=40
    )
)
def test_any_small_sample_with_ties_and_weights_equals_sklearn(rows: list) -> None:
    y = np.array([int(r[0]) for r in rows])
    p = np.array([r[1] / 6 for r in rows])
    w = np.array([float(r[2]) for r in rows])
    w[0] = max(w[0], 1.0)
    has_pos = (w * y).sum() > 0
    has_neg = (w * (1 - y)).sum() > 0
    if has_pos and has_neg:
        assert xb.roc_auc(y, p, sample_weight=w) == pytest.approx(
            roc_auc_score(y[w > 0], p[w > 0], sample_weight=w[w > 0]), abs=TOL
        )
    if has_pos:
        assert xb.average_precision(y, p, sample_weight=w) == pytest.approx(
            average_precision_score(y[w > 0], p[w > 0], sample_weight=w[w > 0]), abs=TOL
        )


def test_class_weight_leaves_binary_auc_unchanged_and_reweighs_ap() -> None:
    y, p = _binary(11, n=2000)
    assert xb.roc_auc(y, p, class_weight="balanced") == pytest.approx(xb.roc_auc(y, p), abs=TOL)
    from sklearn.utils.class_weight import compute_class_weight

    cw = compute_class_weight("balanced", classes=np.array([0, 1]), y=y)
    w = cw[y]
    assert xb.average_precision(y, p, class_weight="balanced") == pytest.approx(
        average_precision_score(y, p, sample_weight=w), abs=TOL
    )
    assert xb.average_precision(y, p, class_weight={1: 99}) == pytest.approx(
        average_precision_score(y, p, sample_weight=np.where(y == 1, 99.0, 1.0)), abs=TOL
    )


def test_single_class_is_undefined_nan_with_a_warning() -> None:
    with pytest.warns(UndefinedMetricWarning, match="every row is of class 1"):
        assert math.isnan(xb.roc_auc([1, 1, 1], [0.2, 0.5, 0.9]))
    with pytest.warns(UndefinedMetricWarning, match="no row is of class 1"):
        assert math.isnan(xb.roc_auc([0, 0], [0.2, 0.5]))
    with pytest.warns(UndefinedMetricWarning, match="no row is of class 1"):
        assert math.isnan(xb.average_precision([0, 0], [0.2, 0.5]))
    assert xb.average_precision([1, 1], [0.2, 0.5]) == 1.0  # all positives: precision 1
    probs = [[0.7, 0.2, 0.1], [0.2, 0.7, 0.1]]
    with pytest.warns(UndefinedMetricWarning, match="no row is of class 2"):
        assert math.isnan(xb.roc_auc([0, 1], probs))


def test_bad_average_is_refused() -> None:
    with pytest.raises(ValueError, match="average: must be one of 'macro', 'weighted'"):
        xb.roc_auc([0, 1], [0.2, 0.7], average="micro")


def _pairwise_delong(y: np.ndarray, p: np.ndarray) -> float:
    """DeLong et al. (1988) written from its definition, O(m n)."""
    pos, neg = p[y == 1], p[y == 0]
    psi = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
    v10, v01 = psi.mean(axis=1), psi.mean(axis=0)
    return v10.var(ddof=1) / pos.size + v01.var(ddof=1) / neg.size


@pytest.mark.parametrize("ties", [False, True])
def test_delong_variance_equals_its_pairwise_definition(ties: bool) -> None:
    y, p = _binary(5, n=300, ties=ties)
    groups = rank_groups(p, y == 1, None)
    variance, phi = auc_variance(groups, y == 1, None)
    assert variance == pytest.approx(_pairwise_delong(y, p), rel=1e-12)
    assert float(np.sum(phi**2)) == pytest.approx(variance, rel=1e-12)
    # Weights are importance weights, as ScoreStats' intervals (Kish): scaling them
    # all changes nothing, and uneven weights widen the interval.
    same, _ = auc_variance(
        rank_groups(p, y == 1, np.full(y.size, 3.0)), y == 1, np.full(y.size, 3.0)
    )
    assert same == pytest.approx(variance, rel=1e-12)
    w = np.random.default_rng(0).uniform(0.1, 3.0, y.size)
    uneven, _ = auc_variance(rank_groups(p, y == 1, w), y == 1, w)
    assert uneven > 0.9 * variance
