"""The benchmark's AUC, AP, per-class log loss and class weights, against scikit-learn."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, log_loss, roc_auc_score
from sklearn.utils.class_weight import compute_class_weight

import xebench as xb


def _data(n: int = 3000, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.uniform(size=n) < 0.05).astype(int)  # imbalanced: 1 in 20
    a = np.clip(0.05 + 0.4 * y + rng.normal(0, 0.1, n), 0.001, 0.999)
    b = np.clip(np.round(a + rng.normal(0, 0.15, n), 2), 0.005, 0.995)  # ties
    return {"y": y, "a": a, "b": b, "w": rng.uniform(0.5, 2.0, n), "c": rng.choice(["x", "z"], n)}


def test_models_have_exact_auc_and_ap_with_intervals() -> None:
    d = _data()
    r = xb.benchmark(d, label="y", probs=["a", "b"], weight="w", cohorts=["c"]).to_dict()
    for m in r["models"]:
        p = d[m["name"]]
        assert m["roc_auc"] == pytest.approx(
            roc_auc_score(d["y"], p, sample_weight=d["w"]), abs=1e-9
        )
        assert m["average_precision"] == pytest.approx(
            average_precision_score(d["y"], p, sample_weight=d["w"]), abs=1e-9
        )
        low, high = m["roc_auc_ci"]
        assert low < m["roc_auc"] < high
        low, high = m["average_precision_ci"]
        assert low < m["average_precision"] < high
    for value, rows in r["cohorts"]["c"].items():
        mask = d["c"] == value
        for row in rows:
            p = d[row["name"]]
            assert row["roc_auc"] == pytest.approx(
                roc_auc_score(d["y"][mask], p[mask], sample_weight=d["w"][mask]), abs=1e-9
            )
    json.dumps(r, allow_nan=False)  # NaN-free: undefined values are null


def test_per_class_log_loss_is_each_true_class_mean_and_share() -> None:
    d = _data()
    r = xb.benchmark(d, label="y", probs=["a"]).to_dict()
    [m] = r["models"]
    per = {c["class"]: c for c in m["per_class"]}
    for c in (0, 1):
        mask = d["y"] == c
        assert per[c]["log_loss"] == pytest.approx(
            log_loss(d["y"][mask], d["a"][mask], labels=[0, 1]), rel=1e-9
        )
        assert per[c]["weight"] == mask.sum()
    assert per[0]["share"] + per[1]["share"] == pytest.approx(1.0)
    nll = -np.log(np.where(d["y"] == 1, d["a"], 1 - d["a"]))
    assert per[1]["share"] == pytest.approx(nll[d["y"] == 1].sum() / nll.sum(), rel=1e-9)


@pytest.mark.parametrize("spec", ["balanced", {1: 19.0}])
def test_class_weight_reweighs_every_number(spec: object) -> None:
    d = _data()
    r = xb.benchmark(d, label="y", probs=["a", "b"], class_weight=spec).to_dict()
    if spec == "balanced":
        cw = compute_class_weight("balanced", classes=np.array([0, 1]), y=d["y"])
    else:
        cw = np.array([1.0, 19.0])
    w = cw[d["y"]]
    assert [c["weight"] for c in r["inputs"]["class_weight"]] == pytest.approx(cw.tolist())
    for m in r["models"]:
        p = d[m["name"]]
        assert m["log_loss"] == pytest.approx(log_loss(d["y"], p, sample_weight=w), rel=1e-9)
        assert m["roc_auc"] == pytest.approx(roc_auc_score(d["y"], p), abs=1e-9)  # invariant
        assert m["average_precision"] == pytest.approx(
            average_precision_score(d["y"], p, sample_weight=w), abs=1e-9
        )
    [comparison] = r["comparisons"]
    expected = log_loss(d["y"], d["b"], sample_weight=w) - log_loss(d["y"], d["a"], sample_weight=w)
    assert comparison["delta"] == pytest.approx(expected, rel=1e-9)


def test_balanced_counts_string_labels_given_by_classes() -> None:
    d = _data()
    names = np.where(d["y"] == 1, "fraud", "ok")
    data = {"y": names, "a": d["a"]}
    r = xb.benchmark(data, label="y", probs=["a"], classes=["ok", "fraud"], class_weight="balanced")
    cw = compute_class_weight("balanced", classes=np.array(["fraud", "ok"]), y=names)
    w = np.where(names == "fraud", cw[0], cw[1])
    [m] = r.to_dict()["models"]
    assert m["log_loss"] == pytest.approx(log_loss(d["y"], d["a"], sample_weight=w), rel=1e-9)
    assert [c["class"] for c in m["per_class"]] == ["ok", "fraud"]


def test_a_cohort_of_one_class_has_null_auc() -> None:
    data = {"y": [0, 1, 0, 1, 0, 0], "p": [0.1, 0.8, 0.3, 0.6, 0.2, 0.4], "c": list("aaaabb")}
    r = xb.benchmark(data, label="y", probs=["p"], cohorts=["c"]).to_dict()
    assert r["cohorts"]["c"]["a"][0]["roc_auc"] == 1.0
    assert r["cohorts"]["c"]["b"][0]["roc_auc"] is None
    assert r["cohorts"]["c"]["b"][0]["average_precision"] is None


def test_multiclass_models_get_one_vs_rest_macro_auc() -> None:
    rng = np.random.default_rng(12)
    n = 1500
    probs = rng.dirichlet([1.0, 1.0, 1.0], n)
    y = np.array([rng.choice(3, p=row) for row in probs])
    flat = rng.dirichlet([5.0, 5.0, 5.0], n)
    data = {"y": y, "sharp": list(probs), "flat": list(flat)}
    r = xb.benchmark(data, label="y", probs=["sharp", "flat"], class_weight={2: 3}).to_dict()
    by_name = {m["name"]: m for m in r["models"]}
    w = np.where(y == 2, 3.0, 1.0)
    for name, p in (("sharp", probs), ("flat", flat)):
        m = by_name[name]
        assert m["roc_auc"] == pytest.approx(
            roc_auc_score(y, p, multi_class="ovr", sample_weight=w), abs=1e-9
        )
        assert m["average_precision"] == pytest.approx(
            average_precision_score(np.eye(3)[y], p, sample_weight=w), abs=1e-9
        )
        assert m["average_precision_ci"] is None  # no interval for multiclass AP
        assert [c["class"] for c in m["per_class"]] == [0, 1, 2]
        assert m["log_loss"] == pytest.approx(log_loss(y, p, sample_weight=w), rel=1e-9)
