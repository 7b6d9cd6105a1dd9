"""DeLong's intervals and paired test of exact AUCs: against the pairwise definition,
and covering the true AUC about as often as they say."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from xebench.metrics.blocks import prepare
from xebench.stats.discrimination import auc_with_influence, exact_discrimination, paired_auc


def _components(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pos, neg = p[y == 1], p[y == 0]
    psi = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
    return psi.mean(axis=1), psi.mean(axis=0)


def test_paired_variance_is_delongs_covariance_formula() -> None:
    rng = np.random.default_rng(8)
    n = 400
    y = (rng.uniform(size=n) < 0.3).astype(int)
    a = np.round(np.clip(0.3 + 0.3 * y + rng.normal(0, 0.2, n), 0, 1), 2)
    b = np.round(np.clip(a + rng.normal(0, 0.1, n), 0, 1), 2)
    auc_a, auc_b, se = paired_auc(
        prepare(y, a, None, None, False), prepare(y, b, None, None, False)
    )
    assert auc_a == pytest.approx(roc_auc_score(y, a), abs=1e-12)
    assert auc_b == pytest.approx(roc_auc_score(y, b), abs=1e-12)
    # DeLong et al. (1988): S = S10 / m + S01 / n over the two curves' components.
    v10a, v01a = _components(y, a)
    v10b, v01b = _components(y, b)
    s10 = np.cov(np.vstack([v10a, v10b]))
    s01 = np.cov(np.vstack([v01a, v01b]))
    cov = s10 / v10a.size + s01 / v01a.size
    expected = cov[0, 0] + cov[1, 1] - 2 * cov[0, 1]
    assert se**2 == pytest.approx(expected, rel=1e-10)


@pytest.mark.slow
def test_the_auc_and_ap_intervals_cover_about_95_percent() -> None:
    rng = np.random.default_rng(9)
    n, true_auc = 300, None
    # The population AUC of N(1, 1) positives against N(0, 1) negatives: Phi(1 / sqrt 2).
    from scipy.special import ndtr

    true_auc = float(ndtr(1 / np.sqrt(2)))
    big_y = (rng.uniform(size=400_000) < 0.3).astype(int)
    big_p = 1 / (1 + np.exp(-(big_y + rng.normal(0, 1, big_y.size) - 1)))
    true_ap = average_precision_score(big_y, big_p)
    auc_hits = ap_hits = 0
    runs = 300
    for _ in range(runs):
        y = (rng.uniform(size=n) < 0.3).astype(int)
        p = 1 / (1 + np.exp(-(y + rng.normal(0, 1, n) - 1)))
        r = exact_discrimination(prepare(y, p, None, None, False))
        auc_hits += r["roc_auc_ci"][0] <= true_auc <= r["roc_auc_ci"][1]
        ap_hits += r["average_precision_ci"][0] <= true_ap <= r["average_precision_ci"][1]
    assert 0.91 * runs <= auc_hits <= 0.99 * runs
    assert 0.88 * runs <= ap_hits <= 0.99 * runs


def test_multiclass_influence_gives_each_class_delongs_variance() -> None:
    rng = np.random.default_rng(10)
    probs = rng.dirichlet([1, 1, 1], 300)
    y = np.array([rng.choice(3, p=row) for row in probs])
    pred = prepare(y, probs, None, None, False)
    auc, phi = auc_with_influence(pred, "macro")
    assert auc == pytest.approx(roc_auc_score(y, probs, multi_class="ovr"), abs=1e-12)
    weighted, _ = auc_with_influence(pred, "weighted")
    assert weighted == pytest.approx(
        roc_auc_score(y, probs, multi_class="ovr", average="weighted"), abs=1e-12
    )
    assert phi is not None and 0 < float(np.sum(phi**2)) < 0.01
    r = exact_discrimination(pred)
    assert r["average_precision_ci"] is None and r["roc_auc_ci"][0] < auc < r["roc_auc_ci"][1]
