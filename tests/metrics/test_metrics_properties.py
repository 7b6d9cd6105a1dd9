"""Property tests (hypothesis): information-theory invariants and metric invariances.

The invariance tests run over a REGISTRY of metrics, in the manner of
scikit-learn's ``metrics/tests/test_common.py``: unit weights equal no weights,
integer weights equal repeated rows, a zero weight equals a dropped row, row
order does not matter, and scaling every weight by the same factor changes
nothing.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy.stats import entropy as scipy_entropy

import xebench as xb

LN2 = math.log(2)
LN10 = math.log(10)
RTOL = 1e-9
ATOL = 1e-12

PROPERTY_SETTINGS = settings(max_examples=150, deadline=None)
REGISTRY_SETTINGS = settings(max_examples=150, deadline=None)


# --- strategies ---------------------------------------------------------------------

# Masses of bins before normalisation: exact zeros and small integers are common (ties),
# subnormals are not.
bin_mass = st.one_of(
    st.sampled_from([0.0, 1.0, 2.0, 3.0]),
    st.floats(min_value=1e-6, max_value=1.0, allow_subnormal=False),
)
probability = st.one_of(
    st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0]),
    st.floats(min_value=0.0, max_value=1.0, allow_subnormal=False),
)


def _normalise_rows(masses: np.ndarray) -> np.ndarray:
    """Rows of masses -> rows of probabilities; an all-zero row becomes [1, 0, ...]."""
    masses = masses.copy()
    masses[masses.sum(axis=-1) == 0, ..., 0] = 1.0
    return masses / masses.sum(axis=-1, keepdims=True)


def distribution(k: int) -> st.SearchStrategy[np.ndarray]:
    """A probability vector of length k (never all zero)."""
    return hnp.arrays(np.float64, k, elements=bin_mass).map(_normalise_rows)


sizes = st.integers(min_value=2, max_value=12)
distribution_pairs = sizes.flatmap(lambda k: st.tuples(distribution(k), distribution(k)))
single_distributions = sizes.flatmap(distribution)


@st.composite
def labelled_predictions(draw: st.DrawFn, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """(y_true, y_prob): binary 1-D P(1), or multiclass (n, k) rows summing to 1."""
    n = draw(st.integers(min_value=1, max_value=25))
    if kind == "binary":
        y = draw(hnp.arrays(np.int64, n, elements=st.integers(0, 1)))
        return y, draw(hnp.arrays(np.float64, n, elements=probability))
    k = draw(st.integers(min_value=3, max_value=5))
    y = draw(hnp.arrays(np.int64, n, elements=st.integers(0, k - 1)))
    masses = draw(hnp.arrays(np.float64, (n, k), elements=bin_mass))
    return y, _normalise_rows(masses)


any_predictions = st.sampled_from(["binary", "multiclass"]).flatmap(labelled_predictions)


def float_weights(n: int) -> st.SearchStrategy[np.ndarray]:
    weight = st.one_of(st.sampled_from([0.5, 1.0, 2.0]), st.floats(0.01, 10.0))
    return hnp.arrays(np.float64, n, elements=weight)


@st.composite
def weighted_predictions(draw: st.DrawFn, kind: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    y, p = draw(labelled_predictions(kind))
    return y, p, draw(float_weights(y.shape[0]))


any_weighted_predictions = st.sampled_from(["binary", "multiclass"]).flatmap(weighted_predictions)


def integer_weights(n: int) -> st.SearchStrategy[np.ndarray]:
    return hnp.arrays(np.int64, n, elements=st.integers(0, 4)).filter(lambda c: c.sum() > 0)


# --- helpers and the metric registry ------------------------------------------------


def assert_same(actual: float, expected: float) -> None:
    """Equal within 1e-9 relative / 1e-12 absolute; NaN equals NaN (skill of one class)."""
    if math.isnan(expected):
        assert math.isnan(actual), f"{actual} != nan"
        return
    assert actual == pytest.approx(expected, rel=RTOL, abs=ATOL)


def _as_columns(p: np.ndarray) -> np.ndarray:
    return p if p.ndim == 2 else np.column_stack([1.0 - p, p])


def _one_hot_cross_entropy(y: np.ndarray, p: np.ndarray, w: np.ndarray | None) -> float:
    prob = _as_columns(p)
    return xb.cross_entropy(np.eye(prob.shape[1])[y], prob, sample_weight=w)


Metric = Callable[[np.ndarray, np.ndarray, Any], float]

#: (name, metric(y_true, y_prob, sample_weight)): every weighted metric of the kernel.
REGISTRY: list[tuple[str, Metric]] = [
    ("log_loss", lambda y, p, w: xb.log_loss(y, p, sample_weight=w)),
    ("log_loss_bits", lambda y, p, w: xb.log_loss(y, p, sample_weight=w, base=2)),
    ("brier_score", lambda y, p, w: xb.brier_score(y, p, sample_weight=w)),
    ("ece_uniform", lambda y, p, w: xb.calibration_error(y, p, sample_weight=w, n_bins=5)),
    (
        "mce_uniform",
        lambda y, p, w: xb.calibration_error(y, p, sample_weight=w, n_bins=5, norm="max"),
    ),
    (
        "ece_quantile",
        lambda y, p, w: xb.calibration_error(y, p, sample_weight=w, n_bins=4, strategy="quantile"),
    ),
    (
        "mce_quantile",
        lambda y, p, w: xb.calibration_error(
            y, p, sample_weight=w, n_bins=4, strategy="quantile", norm="max"
        ),
    ),
    ("accuracy", lambda y, p, w: xb.accuracy(y, p, sample_weight=w)),
    ("skill_score", lambda y, p, w: xb.skill_score(y, p, sample_weight=w)),
    ("perplexity", lambda y, p, w: xb.perplexity(y, p, sample_weight=w)),
    ("prior_log_loss", lambda y, p, w: xb.prior_log_loss(y, sample_weight=w)),
    ("cross_entropy_one_hot", _one_hot_cross_entropy),
]

kind_params = pytest.mark.parametrize("kind", ["binary", "multiclass"])


# --- information-theory invariants ------------------------------------------------


@PROPERTY_SETTINGS
@given(distribution_pairs)
def test_cross_entropy_at_least_entropy(pq: tuple[np.ndarray, np.ndarray]) -> None:
    p, q = pq
    assert xb.cross_entropy(p, q) >= xb.entropy(p) - ATOL


@PROPERTY_SETTINGS
@given(single_distributions)
def test_cross_entropy_of_itself_is_entropy(p: np.ndarray) -> None:
    assert xb.cross_entropy(p, p) == pytest.approx(xb.entropy(p), rel=RTOL, abs=ATOL)


@PROPERTY_SETTINGS
@given(distribution_pairs, st.sampled_from([0.0, 1e-6, 1e-3, 0.1]))
def test_kl_non_negative(pq: tuple[np.ndarray, np.ndarray], smoothing: float) -> None:
    p, q = pq
    if smoothing == 0.0:
        q = (q + 1e-3) / (q + 1e-3).sum()  # unsmoothed KL needs q > 0 wherever p > 0
    assert xb.kl_divergence(p, q, smoothing=smoothing) >= 0.0


@PROPERTY_SETTINGS
@given(single_distributions, st.sampled_from([0.0, 1e-6, 0.1]), st.floats(0.1, 1000.0))
def test_kl_of_itself_is_zero(p: np.ndarray, smoothing: float, scale: float) -> None:
    assert xb.kl_divergence(p, p, smoothing=smoothing) == pytest.approx(0.0, abs=ATOL)
    # counts and probabilities of the same shape are the same distribution
    assert xb.kl_divergence(p * scale, p, smoothing=smoothing) == pytest.approx(0.0, abs=ATOL)


@PROPERTY_SETTINGS
@given(distribution_pairs)
def test_js_symmetric_and_bounded(pq: tuple[np.ndarray, np.ndarray]) -> None:
    p, q = pq
    forward, backward = xb.js_divergence(p, q), xb.js_divergence(q, p)
    assert forward == pytest.approx(backward, rel=RTOL, abs=ATOL)
    assert 0.0 <= forward <= LN2 + ATOL
    assert xb.js_divergence(p, q, base=2) <= 1.0 + ATOL
    assert xb.js_divergence(p, p) == pytest.approx(0.0, abs=ATOL)


@PROPERTY_SETTINGS
@given(distribution_pairs)
def test_psi_symmetric_and_non_negative(pq: tuple[np.ndarray, np.ndarray]) -> None:
    e, a = pq
    forward, backward = xb.psi(e, a), xb.psi(a, e)
    assert forward >= 0.0
    assert forward == pytest.approx(backward, rel=RTOL, abs=ATOL)


@PROPERTY_SETTINGS
@given(st.integers(2, 8).flatmap(lambda k: st.lists(distribution(k), min_size=1, max_size=6)))
def test_entropy_rows_match_one_at_a_time(rows: list[np.ndarray]) -> None:
    together = xb.entropy(np.vstack(rows))
    for row, value in zip(rows, together, strict=True):
        assert value == pytest.approx(xb.entropy(row), rel=RTOL, abs=ATOL)
        assert 0.0 <= value <= math.log(row.shape[0]) + ATOL


# --- units ----------------------------------------------------------------------------


@PROPERTY_SETTINGS
@given(any_predictions)
def test_log_loss_units(case: tuple[np.ndarray, np.ndarray]) -> None:
    y, p = case
    nats = xb.log_loss(y, p)
    assert xb.log_loss(y, p, base=2) == pytest.approx(nats / LN2, rel=RTOL, abs=ATOL)
    assert xb.log_loss(y, p, base=10) == pytest.approx(nats / LN10, rel=RTOL, abs=ATOL)
    np.testing.assert_allclose(xb.nll(y, p, base=2), xb.nll(y, p) / LN2, rtol=RTOL, atol=ATOL)


@PROPERTY_SETTINGS
@given(distribution_pairs)
def test_information_units(pq: tuple[np.ndarray, np.ndarray]) -> None:
    p, q = pq
    for base, ln_base in [(2, LN2), (10, LN10)]:
        assert xb.entropy(p, base=base) == pytest.approx(
            xb.entropy(p) / ln_base, rel=RTOL, abs=ATOL
        )
        assert xb.kl_divergence(p, q, base=base) == pytest.approx(
            xb.kl_divergence(p, q) / ln_base, rel=RTOL, abs=ATOL
        )
        assert xb.js_divergence(p, q, base=base) == pytest.approx(
            xb.js_divergence(p, q) / ln_base, rel=RTOL, abs=ATOL
        )
        assert xb.cross_entropy(p, q, base=base) == pytest.approx(
            xb.cross_entropy(p, q) / ln_base, rel=RTOL, abs=ATOL
        )


# --- relations between metrics ----------------------------------------------------


@PROPERTY_SETTINGS
@given(any_predictions)
def test_perplexity_is_exp_log_loss(case: tuple[np.ndarray, np.ndarray]) -> None:
    y, p = case
    assert xb.perplexity(y, p) == pytest.approx(math.exp(xb.log_loss(y, p)), rel=RTOL)
    assert xb.perplexity(y, p) == pytest.approx(2 ** xb.log_loss(y, p, base=2), rel=RTOL)


@PROPERTY_SETTINGS
@given(any_predictions)
def test_mean_nll_is_log_loss(case: tuple[np.ndarray, np.ndarray]) -> None:
    y, p = case
    assert float(np.mean(xb.nll(y, p))) == pytest.approx(xb.log_loss(y, p), rel=RTOL, abs=ATOL)


@PROPERTY_SETTINGS
@given(
    st.lists(st.sampled_from(["ham", "spam", "eggs", "bacon"]), min_size=1, max_size=40),
    st.data(),
)
def test_prior_log_loss_is_entropy_of_label_frequencies(labels: list[str], data: Any) -> None:
    names, counts = np.unique(labels, return_counts=True)
    assert xb.prior_log_loss(labels) == pytest.approx(scipy_entropy(counts), rel=RTOL, abs=ATOL)
    assert xb.prior_log_loss(labels, base=2) == pytest.approx(
        scipy_entropy(counts, base=2), rel=RTOL, abs=ATOL
    )
    weights = data.draw(float_weights(len(labels)))
    weighted = np.array([weights[np.asarray(labels) == name].sum() for name in names])
    assert xb.prior_log_loss(labels, sample_weight=weights) == pytest.approx(
        scipy_entropy(weighted), rel=RTOL, abs=ATOL
    )


@PROPERTY_SETTINGS
@given(any_predictions)
def test_prior_frequencies_score_the_prior_log_loss(case: tuple[np.ndarray, np.ndarray]) -> None:
    """Predicting the label frequencies on every row scores exactly prior_log_loss."""
    y, p = case
    k = 2 if p.ndim == 1 else p.shape[1]
    frequencies = np.bincount(y, minlength=k) / y.shape[0]
    constant = np.tile(frequencies, (y.shape[0], 1))
    assert xb.log_loss(y, constant) == pytest.approx(xb.prior_log_loss(y), rel=RTOL, abs=ATOL)


@PROPERTY_SETTINGS
@given(any_predictions)
def test_one_hot_cross_entropy_is_log_loss(case: tuple[np.ndarray, np.ndarray]) -> None:
    y, p = case
    expected = xb.log_loss(y, p)
    assert _one_hot_cross_entropy(y, p, None) == pytest.approx(expected, rel=RTOL, abs=ATOL)


@PROPERTY_SETTINGS
@given(any_predictions)
def test_bounded_metrics(case: tuple[np.ndarray, np.ndarray]) -> None:
    y, p = case
    assert xb.log_loss(y, p) >= 0.0
    assert 0.0 <= xb.brier_score(y, p) <= (1.0 if p.ndim == 1 else 2.0)
    assert 0.0 <= xb.calibration_error(y, p) <= 1.0
    assert xb.calibration_error(y, p) <= xb.calibration_error(y, p, norm="max") + ATOL
    assert 0.0 <= xb.accuracy(y, p) <= 1.0
    assert 0 <= xb.clipped_count(y, p) <= y.shape[0]


# --- invariances over the registry --------------------------------------------------
#
# Each example is drawn once and every metric of the registry is checked on it; the
# assertion lists every metric that broke the invariance, not only the first.


def check_registry(
    make_pair: Callable[[Metric], tuple[float, float]],
    registry: list[tuple[str, Metric]] | None = None,
) -> None:
    broken = []
    for name, metric in REGISTRY if registry is None else registry:
        actual, expected = make_pair(metric)
        try:
            assert_same(actual, expected)
        except AssertionError:
            broken.append(f"{name}: {actual!r} != {expected!r}")
    assert not broken, "invariance broken by " + "; ".join(broken)


@pytest.mark.slow
@REGISTRY_SETTINGS
@kind_params
@given(data=st.data())
def test_unit_weights_equal_no_weights(kind: str, data: Any) -> None:
    y, p = data.draw(labelled_predictions(kind))
    ones = np.ones(y.shape[0])
    check_registry(lambda metric: (metric(y, p, ones), metric(y, p, None)))


@pytest.mark.slow
@REGISTRY_SETTINGS
@kind_params
@given(data=st.data())
def test_integer_weights_equal_repeated_rows(kind: str, data: Any) -> None:
    y, p = data.draw(labelled_predictions(kind))
    counts = data.draw(integer_weights(y.shape[0]))
    y_rep, p_rep = np.repeat(y, counts), np.repeat(p, counts, axis=0)
    # Quantile bin edges treat weights as relative (scale-free), so repeating a row
    # moves the linear interpolation between neighbours; see the quantile tests below.
    count_based = [(name, m) for name, m in REGISTRY if not name.endswith("_quantile")]
    check_registry(lambda metric: (metric(y, p, counts), metric(y_rep, p_rep, None)), count_based)
    as_float = counts.astype(float)
    check_registry(lambda metric: (metric(y, p, as_float), metric(y_rep, p_rep, None)), count_based)


@pytest.mark.slow
@REGISTRY_SETTINGS
@kind_params
@given(data=st.data())
def test_zero_weight_equals_dropped_row(kind: str, data: Any) -> None:
    y, p = data.draw(labelled_predictions(kind))
    n = y.shape[0]
    weight = data.draw(float_weights(n))
    dropped = data.draw(hnp.arrays(np.bool_, n))
    if dropped.all():
        dropped[data.draw(st.integers(0, n - 1))] = False
    zeroed = np.where(dropped, 0.0, weight)
    keep = ~dropped
    check_registry(lambda metric: (metric(y, p, zeroed), metric(y[keep], p[keep], weight[keep])))


@pytest.mark.slow
@REGISTRY_SETTINGS
@kind_params
@given(data=st.data())
def test_row_order_does_not_matter(kind: str, data: Any) -> None:
    y, p = data.draw(labelled_predictions(kind))
    n = y.shape[0]
    weight = data.draw(float_weights(n))
    order = np.asarray(data.draw(st.permutations(range(n))), dtype=np.intp)
    check_registry(lambda metric: (metric(y[order], p[order], None), metric(y, p, None)))
    check_registry(lambda metric: (metric(y[order], p[order], weight[order]), metric(y, p, weight)))


@pytest.mark.slow
@REGISTRY_SETTINGS
@given(case=any_weighted_predictions, scale=st.sampled_from([1e-3, 0.1, 0.5, 3.0, 1000.0]))
# Three rows of weight 1/3 (normalised) are three rows of weight 1: quantile bins
# [.1, .3, .5, .7, .9] put each row in its own bin (ECE .5, MCE .9).
@example(case=(np.array([0, 1, 0]), np.array([0.1, 0.5, 0.9]), np.ones(3)), scale=3.0)
@example(
    case=(
        np.array([0, 1, 2]),
        np.array([[0.9, 0.05, 0.05], [0.25, 0.5, 0.25], [0.4, 0.3, 0.3]]),
        np.ones(3),
    ),
    scale=3.0,
)
def test_scaling_all_weights_changes_nothing(
    case: tuple[np.ndarray, np.ndarray, np.ndarray], scale: float
) -> None:
    """Weights are relative: w, c * w and w / sum(w) describe the same data.

    scikit-learn's test_common checks the same for every weighted metric.
    """
    y, p, weight = case
    check_registry(lambda metric: (metric(y, p, weight * scale), metric(y, p, weight)))
    check_registry(lambda metric: (metric(y, p, weight / weight.sum()), metric(y, p, weight)))


# --- the quantile bins themselves ---------------------------------------------------


@pytest.mark.slow
@REGISTRY_SETTINGS
@given(
    st.lists(probability, min_size=1, max_size=30),
    st.lists(st.booleans(), min_size=30, max_size=30),
    st.floats(min_value=1e-6, max_value=1e6),
    st.integers(min_value=1, max_value=8),
)
def test_quantile_edges_weights_are_relative_and_zero_drops_the_row(
    p: list[float], keep: list[bool], scale: float, n_bins: int
) -> None:
    scores = np.asarray(p)
    kept = np.asarray(keep[: len(p)])
    if not kept.any():
        kept[0] = True
    weight = kept * scale  # equal weights on the kept rows, 0 elsewhere
    y = np.zeros(len(p), dtype=int)
    curve = xb.reliability_curve(
        y, scores, sample_weight=weight, n_bins=n_bins, strategy="quantile"
    )
    expected = np.percentile(scores[kept], np.linspace(0, 100, n_bins + 1))
    np.testing.assert_allclose(curve.bin_edges, expected, rtol=RTOL, atol=ATOL)
    assert curve.count.sum() == pytest.approx(weight.sum())
