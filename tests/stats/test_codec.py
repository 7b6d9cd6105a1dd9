"""The columnar codec: one row form of ScoreStats, merged and decoded the same everywhere."""

from __future__ import annotations

import duckdb
import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import log_loss

import xebench as xb
from xebench.stats import codec

CLASSES = ["a", "b", "c"]


def chunk(seed: int, n: int, classes: list | None, weighted: bool) -> tuple:
    rng = np.random.default_rng(seed)
    if classes is None:
        y, p = rng.integers(0, 2, n), rng.uniform(1e-6, 1 - 1e-6, n)
    else:
        p = rng.dirichlet(np.ones(len(classes)), n)
        y = np.array(classes)[rng.integers(0, len(classes), n)]
    return y, p, (rng.uniform(0.0, 3.0, n) if weighted else None)


def assert_same(a: xb.ScoreStats, b: xb.ScoreStats) -> None:
    assert (a.n, a.clipped, a.eps, a.classes) == (b.n, b.clipped, b.eps, b.classes)
    ra, rb = a.result(), b.result()
    for key in ("log_loss", "log_loss_se", "brier", "ece", "accuracy", "prior_log_loss", "weight"):
        if rb[key] is None:  # no events: no loss
            assert ra[key] is None, key
        else:
            assert ra[key] == pytest.approx(rb[key], rel=1e-9, abs=1e-12), key
    for got, want in (
        (a.label_weight, b.label_weight),
        (a.cal_count, b.cal_count),
        (a.cal_score, b.cal_score),
        (a.cal_hit, b.cal_hit),
    ):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    assert a.weight_sq == pytest.approx(b.weight_sq, rel=1e-12)


def as_table(stats: list[xb.ScoreStats]) -> pa.Table:
    return pa.table(
        codec.score_arrays(codec.encode(stats), len(stats), [s.n_classes for s in stats])
    )


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    sizes=st.lists(st.integers(1, 60), min_size=2, max_size=5),
    multiclass=st.booleans(),
    weighted=st.booleans(),
    eps=st.sampled_from([1e-15, 1e-3, 0.05]),
)
def test_merging_rows_equals_the_statistics_of_the_concatenated_events(
    seed: int, sizes: list[int], multiclass: bool, weighted: bool, eps: float
) -> None:
    classes = CLASSES if multiclass else None
    parts = [chunk(seed + i, n, classes, weighted) for i, n in enumerate(sizes)]
    stats = [xb.ScoreStats(classes, eps=eps).update(*part) for part in parts]
    y = np.concatenate([part[0] for part in parts])
    p = np.concatenate([part[1] for part in parts])
    w = np.concatenate([part[2] for part in parts]) if weighted else None
    whole = xb.ScoreStats(classes, eps=eps).update(y, p, w)
    merged = codec.merge(as_table(stats), np.zeros(len(stats), dtype=np.intp), 1)
    assert_same(codec.decode(merged, 0, classes), whole)
    pairwise = stats[0]
    for other in stats[1:]:
        pairwise = pairwise.merge(other)
    assert_same(pairwise, whole)
    # The SQL form of the same merge.
    con = duckdb.connect()
    con.register("rows_in", as_table(stats).append_column("k", pa.array(["x"] * len(stats))))
    rows = con.sql(codec.merge_sql("rows_in", ["k"])).to_arrow_table()
    assert_same(codec.decode(codec.merge(rows, np.zeros(1, np.intp), 1), 0, classes), whole)


@pytest.mark.parametrize("classes", [None, CLASSES])
def test_encode_then_decode_gives_the_statistics_back(classes: list | None) -> None:
    stats = [
        xb.ScoreStats(classes, eps=1e-4).update(*chunk(1, 50, classes, True)),
        xb.ScoreStats(classes),  # empty
        xb.ScoreStats(classes).update(*chunk(2, 7, classes, False)),
    ]
    columns = codec.encode(stats)
    for g, s in enumerate(stats):
        assert codec.decode(columns, g, classes).to_dict() == s.to_dict()
    # Through Arrow: one row per group merges to itself.
    merged = codec.merge(as_table(stats), np.arange(3), 3)
    for g, s in enumerate(stats):
        assert_same(codec.decode(merged, g, classes), s)


def test_grouped_sums_equal_one_update_per_group() -> None:
    y, p, w = chunk(3, 400, CLASSES, True)
    group = np.random.default_rng(3).integers(0, 4, 400)
    rows = xb.ScoreStats(CLASSES, eps=0.01).score(y, p, w)
    sums = codec.score_sums(group, 4, rows, 3, 0.01)
    for g in range(4):
        mask = group == g
        expected = xb.ScoreStats(CLASSES, eps=0.01).update(y[mask], p[mask], w[mask])
        assert_same(codec.decode(sums, g, CLASSES), expected)


@pytest.mark.parametrize("classes", [None, CLASSES])
def test_a_weighted_window_with_another_eps_equals_scikit_learn(classes: list | None) -> None:
    eps = 0.02
    y, p, w = chunk(5, 3000, classes, True)
    minute = np.random.default_rng(5).integers(0, 60, 3000)  # sixty one-minute buckets
    rows = xb.ScoreStats(classes, eps=eps).score(y, p, w)
    k = 2 if classes is None else 3
    buckets = pa.table(codec.score_arrays(codec.score_sums(minute, 60, rows, k, eps), 60, [k] * 60))
    window = codec.decode(codec.merge(buckets, np.zeros(60, np.intp), 1), 0, classes).result()
    # The clip policy, applied before scikit-learn (which no longer takes eps).
    if classes is None:
        clipped, labels = np.clip(p, eps, 1 - eps), [0, 1]
    else:
        true = p[np.arange(3000), np.searchsorted(CLASSES, y)]
        clipped = p.copy()
        clipped[np.arange(3000), np.searchsorted(CLASSES, y)] = np.clip(true, eps, 1 - eps)
        clipped /= clipped.sum(axis=1, keepdims=True)  # scikit-learn's rows must sum to 1
        labels = CLASSES
        # Renormalising moves the true class's probability: compare against the
        # definition directly as well.
        direct = float(np.average(-np.log(np.clip(true, eps, 1 - eps)), weights=w))
        assert window["log_loss"] == pytest.approx(direct, rel=1e-9)
    if classes is None:
        expected = log_loss(y, clipped, labels=labels, sample_weight=w)
        assert window["log_loss"] == pytest.approx(expected, rel=1e-9)
    assert window["clipped"] > 0
    assert window["weight"] == pytest.approx(float(w.sum()), rel=1e-12)


def test_rows_of_one_group_with_different_eps_do_not_merge() -> None:
    stats = [xb.ScoreStats(eps=eps).update([1], [0.7]) for eps in (1e-15, 1e-3)]
    with pytest.raises(xb.InvalidInputError, match="different eps"):
        codec.merge(as_table(stats), np.zeros(2, np.intp), 1)


def test_statistics_with_bootstrap_replicates_have_no_row_form() -> None:
    with pytest.raises(xb.InvalidInputError, match="bootstrap"):
        codec.encode([xb.ScoreStats(bootstrap=10)])
