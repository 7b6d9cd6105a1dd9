"""The source documents' worked numbers on confident misses and imbalance.

-log 0.1 = 2.302585 against -log 0.9 = 0.10536 (the "22x larger penalty"),
p = 0.99 on a true 0 costing -log 0.01 = 4.605, and the 1:99 fraud data set
whose positive class weighs 99; oracles: the formulas by hand, scikit-learn's
``log_loss(sample_weight=...)`` and ``compute_class_weight``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import log_loss as sk_log_loss
from sklearn.utils.class_weight import compute_class_weight

import xebench as xb


def test_a_confident_miss_costs_22_times_a_confident_hit() -> None:
    miss, hit = xb.nll([1], [0.1])[0], xb.nll([1], [0.9])[0]
    assert miss == pytest.approx(2.302585093, abs=1e-9)
    assert hit == pytest.approx(0.105360516, abs=1e-9)
    assert miss / hit == pytest.approx(21.85, abs=0.01)  # "22x larger penalty"
    assert round(miss / hit) == 22


def test_p_099_on_a_true_0() -> None:
    assert xb.nll([0], [0.99])[0] == pytest.approx(-math.log(0.01), abs=1e-12)
    assert xb.nll([0], [0.99])[0] == pytest.approx(4.605170186, abs=1e-9)


def _fraud() -> tuple[np.ndarray, np.ndarray]:
    """1% fraud (1:99): 100 frauds in 10,000 rows, a model that is right on most."""
    rng = np.random.default_rng(99)
    y = np.zeros(10_000, dtype=int)
    y[:100] = 1
    p = np.where(y == 1, rng.beta(3, 4, y.size), rng.beta(1, 30, y.size))
    return y, p


def test_class_weight_99_balances_a_1_to_99_fraud_set() -> None:
    y, p = _fraud()
    weighted = xb.log_loss(y, p, class_weight={1: 99})
    # By hand: sum_i w_i (-log p_i(y_i)) / sum_i w_i with w = 99 for fraud, 1 otherwise.
    nll = -np.log(np.where(y == 1, p, 1 - p))
    w = np.where(y == 1, 99.0, 1.0)
    assert weighted == pytest.approx(float(np.sum(w * nll) / np.sum(w)), rel=1e-12)
    assert weighted == pytest.approx(sk_log_loss(y, p, sample_weight=w), rel=1e-12)
    # Weight 99 makes both classes weigh 9,900: each contributes half of the weight.
    per = xb.per_class_log_loss(y, p, class_weight={1: 99})
    assert per[0]["weight"] == per[1]["weight"] == 9900.0
    assert weighted == pytest.approx((per[0]["log_loss"] + per[1]["log_loss"]) / 2, rel=1e-12)
    # ... and the unweighted loss hides the frauds: their share is small, their mean large.
    plain = xb.per_class_log_loss(y, p)
    assert plain[1]["log_loss"] > 5 * plain[0]["log_loss"]
    assert plain[1]["share"] < 0.5 < per[1]["share"]
    assert xb.log_loss(y, p) < weighted


def test_balanced_is_sklearns_compute_class_weight() -> None:
    y, p = _fraud()
    cw = compute_class_weight("balanced", classes=np.array([0, 1]), y=y)
    assert cw.tolist() == pytest.approx([10_000 / (2 * 9900), 10_000 / (2 * 100)])
    expected = sk_log_loss(y, p, sample_weight=cw[y])
    assert xb.log_loss(y, p, class_weight="balanced") == pytest.approx(expected, rel=1e-12)
    # The balanced and the 99:1 weights are proportional: the same weighted mean.
    assert xb.log_loss(y, p, class_weight="balanced") == pytest.approx(
        xb.log_loss(y, p, class_weight={1: 99}), rel=1e-12
    )
    # Multiclass, string labels, combined with sample weights.
    rng = np.random.default_rng(1)
    labels = np.array(["a", "b", "c"])
    yk = rng.choice(labels, 300, p=[0.7, 0.2, 0.1])
    probs = rng.dirichlet([2, 2, 2], 300)
    sw = rng.uniform(0.5, 2, 300)
    cw = compute_class_weight("balanced", classes=labels, y=yk)
    rows = cw[np.searchsorted(labels, yk)] * sw
    assert xb.log_loss(
        yk, probs, labels=labels, sample_weight=sw, class_weight="balanced"
    ) == pytest.approx(sk_log_loss(yk, probs, labels=labels, sample_weight=rows), rel=1e-12)
    assert xb.brier_score(yk, probs, labels=labels, class_weight={"c": 5}) == pytest.approx(
        np.average(
            ((probs - (yk[:, None] == labels)) ** 2).sum(axis=1), weights=np.where(yk == "c", 5, 1)
        ),
        rel=1e-12,
    )


def test_per_class_log_loss_adds_up_to_the_log_loss() -> None:
    y, p = _fraud()
    per = xb.per_class_log_loss(y, p, base=2)
    total = sum(v["weight"] * v["log_loss"] for v in per.values()) / sum(
        v["weight"] for v in per.values()
    )
    assert total == pytest.approx(xb.log_loss(y, p, base=2), rel=1e-12)
    assert sum(v["share"] for v in per.values()) == pytest.approx(1.0, abs=1e-12)
    for c in (0, 1):
        assert per[c]["log_loss"] == pytest.approx(
            sk_log_loss(y[y == c], p[y == c], labels=[0, 1]) / math.log(2), rel=1e-12
        )


def test_class_weight_errors_name_the_problem() -> None:
    with pytest.raises(ValueError, match=r"class_weight: names a label that is no class"):
        xb.log_loss([0, 1], [0.2, 0.7], class_weight={"fraud": 99})
    with pytest.raises(ValueError, match=r"class_weight: weights must be finite numbers >= 0"):
        xb.log_loss([0, 1], [0.2, 0.7], class_weight={1: -1})
    with pytest.raises(ValueError, match=r"class_weight: must be a mapping"):
        xb.log_loss([0, 1], [0.2, 0.7], class_weight="even")
    with pytest.raises(ValueError, match=r"class_weight: weighs every row 0"):
        xb.log_loss([0, 0], [0.2, 0.7], class_weight={0: 0})
    # A key that spells a label (a command line, a JSON object) names it.
    assert xb.log_loss([0, 1], [0.2, 0.7], class_weight={"1": 3}) == pytest.approx(
        xb.log_loss([0, 1], [0.2, 0.7], sample_weight=[1, 3])
    )
