"""Drift histograms: counts by hand, merge by concatenation, divergences by the kernel."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon

import xebench as xb


def counts_by_hand(values: list[float], edges: list[float]) -> tuple[list[int], int, int, int]:
    """Bins [e0, e1], (e1, e2], ...: the first bin whose upper edge is >= the value."""
    counts, under, over, nan = [0] * (len(edges) - 1), 0, 0, 0
    for v in values:
        if v != v:
            nan += 1
        elif v < edges[0]:
            under += 1
        elif v > edges[-1]:
            over += 1
        else:
            counts[next(i for i in range(len(edges) - 1) if v <= edges[i + 1])] += 1
    return counts, under, over, nan


def test_numeric_counts_match_a_hand_count() -> None:
    rng = np.random.default_rng(0)
    edges = [-1.0, -0.25, 0.0, 0.5, 2.0]
    values = np.concatenate([rng.normal(0, 1.5, 2000), edges, [np.nan] * 7, [np.inf, -np.inf]])
    h = xb.NumericHistogram(edges).update(values)
    counts, under, over, nan = counts_by_hand(values.tolist(), edges)
    assert h.counts.tolist() == counts
    assert (h.underflow, h.overflow, h.nan) == (under, over, nan)
    assert h.total == len(values)


def test_weighted_counts() -> None:
    h = xb.NumericHistogram([0, 1, 2]).update([0.5, 1.5, 5.0], sample_weight=[2.0, 0.5, 3.0])
    assert h.counts.tolist() == [2.0, 0.5] and h.overflow == 3.0


def test_quantile_and_uniform_edges_from_a_reference() -> None:
    rng = np.random.default_rng(1)
    reference = rng.exponential(1.0, 10_001)
    h = xb.NumericHistogram.from_reference(reference, n_bins=4)
    np.testing.assert_allclose(h.edges, np.quantile(reference, [0, 0.25, 0.5, 0.75, 1]))
    assert h.counts.sum() == reference.size and abs(h.counts - reference.size / 4).max() <= 2
    u = xb.NumericHistogram.from_reference(reference, n_bins=5, strategy="uniform")
    np.testing.assert_allclose(u.edges, np.linspace(reference.min(), reference.max(), 6))
    discrete = xb.NumericHistogram.from_reference([1, 1, 1, 1, 1, 1, 2, 3], n_bins=4)
    assert discrete.edges.tolist() == [1.0, 1.25, 3.0], "repeated quantiles are merged"


def test_categorical_top_k_other_and_missing() -> None:
    reference = ["eu"] * 5 + ["us"] * 3 + ["apac"] * 2 + ["mea"] + [None]
    h = xb.CategoricalHistogram.from_reference(reference, top_k=2)
    assert h.categories == ["eu", "us"]
    assert h.counts.tolist() == [5.0, 3.0] and (h.other, h.missing) == (3.0, 1.0)
    current = h.empty_copy().update(["latam", "eu", float("nan"), None])
    assert current.counts.tolist() == [1.0, 0.0] and (current.other, current.missing) == (1.0, 2.0)


@pytest.mark.parametrize("kind", ["numeric", "categorical"])
def test_merge_equals_concatenation_and_dicts_round_trip(kind: str) -> None:
    rng = np.random.default_rng(2)
    if kind == "numeric":
        a, b = rng.normal(0, 1, 500), np.concatenate([rng.normal(1, 2, 300), [np.nan]])
        empty = xb.NumericHistogram.from_reference(rng.normal(0, 1, 100)).empty_copy()
    else:
        a = rng.choice(["x", "y", "z", "w"], 500).tolist()
        b = [*rng.choice(["x", "v"], 300).tolist(), None]
        empty = xb.CategoricalHistogram(["x", "y", "z"])
    merged = empty.empty_copy().update(a).merge(empty.empty_copy().update(b))
    whole = empty.empty_copy().update(list(a) + list(b))
    np.testing.assert_array_equal(merged.distribution(), whole.distribution())
    cls = type(empty)
    again = cls.from_dict(json.loads(json.dumps(whole.to_dict())))
    np.testing.assert_array_equal(again.distribution(), whole.distribution())
    assert again.to_dict() == whole.to_dict()


def test_merging_different_bins_is_refused() -> None:
    with pytest.raises(ValueError):
        xb.NumericHistogram([0, 1]).merge(xb.NumericHistogram([0, 2]))
    with pytest.raises(ValueError, match="current"):
        xb.histogram_divergence(
            xb.NumericHistogram([0, 1]).update([0.5]), xb.NumericHistogram([0, 2]).update([0.5])
        )


def test_divergences_are_the_kernel_on_the_full_distributions() -> None:
    rng = np.random.default_rng(3)
    reference = xb.NumericHistogram.from_reference(rng.normal(0, 1, 20_000), n_bins=10)
    current = reference.empty_copy().update(
        np.concatenate([rng.normal(0.5, 1, 20_000), [np.nan] * 50])
    )
    d = xb.histogram_divergence(reference, current, smoothing=1e-4)
    expected, actual = reference.distribution(), current.distribution()
    assert d["kl"] == pytest.approx(xb.kl_divergence(expected, actual, smoothing=1e-4), rel=1e-12)
    assert d["kl_reverse"] == pytest.approx(
        xb.kl_divergence(actual, expected, smoothing=1e-4), rel=1e-12
    )
    assert d["psi"] == pytest.approx(xb.psi(expected, actual, smoothing=1e-4), rel=1e-12)
    assert d["js"] == pytest.approx(jensenshannon(actual, expected) ** 2, rel=1e-9)
    same = reference.empty_copy().update(rng.normal(0, 1, 20_000))
    assert xb.histogram_divergence(reference, same)["psi"] < 0.01 < d["psi"]
    bits = xb.histogram_divergence(reference, current, base=2)
    assert bits["js"] == pytest.approx(d["js"] / np.log(2), rel=1e-12)


def test_bad_input_names_the_argument() -> None:
    with pytest.raises(ValueError, match="edges"):
        xb.NumericHistogram([1.0, 0.0])
    with pytest.raises(ValueError, match="categories"):
        xb.CategoricalHistogram(["a", "a"])
    with pytest.raises(ValueError, match="values"):
        xb.NumericHistogram.from_reference([np.nan, np.nan])
