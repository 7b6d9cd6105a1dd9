"""The one binning type: bin rules against explicit comparisons, fast counts, the missing rule."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import xebench as xb
from xebench.errors import InvalidInputError
from xebench.offline.drift import drift_frames
from xebench.stats.binning import MISSING, OTHER, Bins, as_numbers, is_missing, quantile_edges


def by_comparisons(values: list[float], edges: list[float], include_lowest: bool) -> list[int]:
    """The bin of each value from the written rule, one comparison at a time."""
    out = []
    for x in values:
        if math.isnan(x):
            out.append(len(edges) + 1)
        elif x == edges[0] and include_lowest and len(edges) > 1:
            out.append(1)  # [e0, e1]: closed on the left
        elif x <= edges[0]:
            out.append(0)
        else:
            out.append(next((i for i, e in enumerate(edges) if x <= e), len(edges)))
    return out


finite = st.floats(-1e6, 1e6, allow_nan=False)
values = st.lists(
    st.one_of(finite, st.sampled_from([0.0, 1.0, -1.0, math.nan, math.inf, -math.inf])),
    max_size=80,
)


@settings(max_examples=200, deadline=None)
@given(
    values=values,
    edges=st.lists(finite, min_size=1, max_size=40, unique=True).map(sorted),
    include_lowest=st.booleans(),
)
def test_index_and_count_follow_the_written_rule(
    values: list[float], edges: list[float], include_lowest: bool
) -> None:
    values = [*values, *edges]  # values on the edges, where the rules differ
    bins = Bins("numeric", edges=tuple(edges), include_lowest=include_lowest)
    expected = by_comparisons(values, edges, include_lowest)
    assert bins.index(values).tolist() == expected
    counts = np.bincount(expected, minlength=bins.n_bins)
    assert bins.count(np.array(values)).tolist() == counts.tolist()
    weights = np.linspace(0.5, 2.0, len(values))
    weighted = np.bincount(expected, weights=weights, minlength=bins.n_bins)
    assert bins.count(values, weights).tolist() == weighted.tolist()


def test_no_edges_is_one_bin_and_missing() -> None:
    bins = Bins("numeric")
    assert bins.n_bins == 2 and bins.labels() == ["(-inf, inf)", "NaN"]
    assert bins.count(np.array([-1.0, 5.0, np.nan])).tolist() == [2, 1]


def test_the_missing_rule() -> None:
    missing = [None, float("nan"), np.float64("nan"), ""]
    values = ["eu", " ", 0, 0.0, False, float("inf"), "nan"]
    assert [is_missing(v) for v in missing] == [True] * 4
    assert [is_missing(v) for v in values] == [False] * len(values)
    numbers = as_numbers(["1.5", None, "", 2])
    assert numbers[0] == 1.5 and np.isnan(numbers[1:3]).all() and numbers[3] == 2.0
    with pytest.raises(InvalidInputError, match="must be numbers") as error:
        as_numbers([1.0, "x"])
    assert error.value.row == 2  # rows count from 1


def test_histograms_and_drift_use_the_rule_for_the_empty_string() -> None:
    h = xb.CategoricalHistogram(["a"]).update(["a", "", None, "b"])
    assert (h.counts.tolist(), h.other, h.missing) == ([1.0], 1.0, 2.0)
    assert xb.NumericHistogram([0.0, 1.0]).update([0.5, "", None]).nan == 2.0
    report = drift_frames({"c": ["a", "b", ""] * 200}, {"c": ["a", "", "", ""] * 150})
    (result,) = report.features
    assert result.bins == ["a", "b", OTHER, MISSING]
    assert result.reference_share == pytest.approx([1 / 3, 1 / 3, 0.0, 1 / 3], rel=1e-12)
    assert result.current_share == [0.25, 0.0, 0.0, 0.75]


def test_categorical_bins() -> None:
    bins = Bins.top_k(["b", "a", "b", "c", "c", "", None, np.str_("c")], 2)
    assert bins.categories == ("c", "b")
    assert bins.index(["c", "b", "a", "", None]).tolist() == [0, 1, 2, 3, 3]
    assert bins.count(["c", "a", "a"]).tolist() == [1.0, 0.0, 2.0, 0.0]
    assert bins.labels() == ["c", "b", OTHER, MISSING]
    with pytest.raises(InvalidInputError, match="no non-missing value"):
        Bins.top_k([None, ""], 3)


def test_quantile_edges_equal_numpy() -> None:
    rng = np.random.default_rng(3)
    for sample in (rng.normal(size=100_000), rng.integers(0, 4, 5_000).astype(float)):
        for n_bins in (1, 3, 10, 50):
            q = np.linspace(0, 1, n_bins + 1)
            assert np.array_equal(quantile_edges(sample, n_bins), np.unique(np.quantile(sample, q)))
            inner = quantile_edges(sample, n_bins, ends=False)
            assert np.array_equal(inner, np.unique(np.quantile(sample, q[1:-1])))
    assert quantile_edges(np.zeros(0), 4).shape == (0,)


def test_from_reference_is_the_histograms_and_rejects_what_cannot_be_binned() -> None:
    sample = np.random.default_rng(4).lognormal(size=2_000)
    bins = Bins.from_reference(sample, n_bins=7)
    assert bins.include_lowest
    assert bins.edges == tuple(np.unique(np.quantile(sample, np.linspace(0, 1, 8))).tolist())
    uniform = Bins.from_reference([0.0, 4.0], n_bins=4, strategy="uniform")
    assert uniform.edges == (0.0, 1.0, 2.0, 3.0, 4.0)
    with pytest.raises(InvalidInputError, match="no finite value"):
        Bins.from_reference([np.nan, np.inf])
    with pytest.raises(InvalidInputError, match="strictly increasing"):
        Bins.from_reference([1e17, 1e17])  # no unit-wide bin around a huge constant


def test_json_round_trip_and_validation() -> None:
    for bins in (
        Bins("numeric", edges=(0.5, 2.0), include_lowest=True),
        Bins("numeric"),
        Bins("categorical", categories=("eu", 3, True)),
    ):
        data = json.loads(json.dumps(bins.to_dict()))
        assert Bins.from_dict(data) == bins
    with pytest.raises(InvalidInputError, match="version"):
        Bins.from_dict({"kind": "numeric_bins", "version": 99})
    with pytest.raises(InvalidInputError, match="strictly increasing"):
        Bins("numeric", edges=(1.0, 1.0))
    with pytest.raises(InvalidInputError, match="distinct"):
        Bins("categorical", categories=("a", "a"))
    with pytest.raises(InvalidInputError, match="kind"):
        Bins("ordinal")
    with pytest.raises(InvalidInputError, match="no categories"):
        Bins("numeric", categories=("a",))


def test_the_store_feature_bins_are_bins() -> None:
    from xebench.store.buckets import FeatureBins, MonitorConfig

    numeric = FeatureBins("x", "numeric", edges=(0.0, 1.0))
    assert numeric.bins == Bins("numeric", edges=(0.0, 1.0))
    values = np.array([-np.inf, 0.0, 0.5, 1.0, np.inf, np.nan])
    assert numeric.index(values).tolist() == by_comparisons(values.tolist(), [0.0, 1.0], False)
    texts = ["b", "", None, "a", "b", ""]
    learned = FeatureBins.learn("c", np.full(6, np.nan), texts, MonitorConfig(top_k=5))
    assert learned.categories == ("b", "a")  # "" is missing, not a category
    assert learned.index(texts).tolist() == [0, 3, 3, 1, 0, 3]
    sample = np.random.default_rng(5).normal(size=70_000)
    edges = FeatureBins.learn("n", sample, ["v"] * 70_000, MonitorConfig(numeric_bins=8)).edges
    assert edges == tuple(np.unique(np.quantile(sample, np.linspace(0, 1, 9)[1:-1])).tolist())
