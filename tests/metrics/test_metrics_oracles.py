"""The metrics kernel against independent references: scikit-learn, SciPy and plain NumPy.

Every expected value here is computed without xebench, on randomized cases drawn
from seeded generators, and must agree to 1e-9 relative.

scikit-learn clips probabilities at ``np.finfo(float64).eps``; wherever a case
can hold probabilities outside ``[1e-6, 1 - 1e-6]``, xebench gets the same
``eps`` so that both clip identically.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon
from scipy.stats import entropy as scipy_entropy
from sklearn.calibration import calibration_curve
from sklearn.metrics import accuracy_score, brier_score_loss
from sklearn.metrics import log_loss as sk_log_loss

import xebench as xb

RTOL = 1e-9
F64_EPS = float(np.finfo(np.float64).eps)
SEEDS = [0, 1, 2, 3]
SIZES = [1, 7, 100, 2000]
MULTICLASS_K = [3, 5, 10, 37, 100]
BASES = [("e", 1.0), (2, math.log(2)), (10, math.log(10))]


# --- case generators ------------------------------------------------------------


def binary_case(seed: int, n: int) -> tuple[np.random.Generator, np.ndarray, np.ndarray]:
    """Labels drawn from P(1) in [1e-6, 1 - 1e-6]: no clipping by either library."""
    rng = np.random.default_rng(seed)
    p = rng.uniform(1e-6, 1 - 1e-6, size=n)
    y = (rng.uniform(size=n) < p).astype(np.int64)
    return rng, y, p


def multiclass_case(
    seed: int, n: int, k: int
) -> tuple[np.random.Generator, np.ndarray, np.ndarray]:
    """Dirichlet rows (some far below 1e-6 for large k) and labels drawn from them."""
    rng = np.random.default_rng(seed)
    alpha = rng.uniform(0.2, 2.0, size=k)
    prob = rng.dirichlet(alpha, size=n)
    u = rng.uniform(size=(n, 1))
    y = np.minimum((np.cumsum(prob, axis=1) < u).sum(axis=1), k - 1)
    return rng, y, prob


def class_names(k: int) -> np.ndarray:
    """'c000', 'c001', ...: lexicographic order equals numeric order."""
    return np.array([f"c{i:03d}" for i in range(k)])


def two_columns(p: np.ndarray) -> np.ndarray:
    return np.column_stack([1.0 - p, p])


def one_hot(y: np.ndarray, k: int) -> np.ndarray:
    return np.eye(k)[y]


# --- log loss -----------------------------------------------------------------------


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("seed", SEEDS)
def test_log_loss_binary_1d(seed: int, n: int) -> None:
    _, y, p = binary_case(seed, n)
    expected = sk_log_loss(y, p, labels=[0, 1])
    assert xb.log_loss(y, p) == pytest.approx(expected, rel=RTOL)
    assert float(np.mean(xb.nll(y, p))) == pytest.approx(expected, rel=RTOL)


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("seed", SEEDS)
def test_log_loss_binary_two_columns(seed: int, n: int) -> None:
    _, y, p = binary_case(seed, n)
    prob = two_columns(p)
    expected = sk_log_loss(y, prob, labels=[0, 1])
    assert xb.log_loss(y, prob) == pytest.approx(expected, rel=RTOL)


@pytest.mark.parametrize("seed", SEEDS)
def test_log_loss_binary_two_columns_from_softmax(seed: int) -> None:
    """Two softmax columns computed independently, as a classifier outputs them.

    Column 0 holds P(class 0) to full precision even when it is tiny; 1 - P(class 1)
    does not (cancellation). Confident misses on class 0 dominate the loss, so the
    two-column case must use the column the user gave, as scikit-learn does.
    """
    rng = np.random.default_rng(seed)
    n = 2000
    logits = rng.normal(0.0, 8.0, size=(n, 2))  # some rows have P(0) < 1e-13
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    prob = shifted / shifted.sum(axis=1, keepdims=True)
    y = rng.integers(0, 2, size=n)
    expected = sk_log_loss(y, prob, labels=[0, 1])
    actual = xb.log_loss(y, prob, eps=F64_EPS)
    assert actual == pytest.approx(expected, rel=RTOL)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("k", MULTICLASS_K)
def test_log_loss_multiclass(k: int, seed: int) -> None:
    _, y, prob = multiclass_case(seed, 500, k)
    expected = sk_log_loss(y, prob, labels=np.arange(k))
    assert xb.log_loss(y, prob, eps=F64_EPS) == pytest.approx(expected, rel=RTOL)
    np.testing.assert_allclose(np.mean(xb.nll(y, prob, eps=F64_EPS)), expected, rtol=RTOL, atol=0)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("k", [2, *MULTICLASS_K])
def test_log_loss_sample_weight(k: int, seed: int) -> None:
    if k == 2:
        rng, y, prob = binary_case(seed, 1000)
    else:
        rng, y, prob = multiclass_case(seed, 1000, k)
    weight = rng.uniform(0.0, 3.0, size=y.shape[0])
    expected = sk_log_loss(y, prob, sample_weight=weight, labels=np.arange(k))
    actual = xb.log_loss(y, prob, sample_weight=weight, eps=F64_EPS)
    assert actual == pytest.approx(expected, rel=RTOL)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("k", MULTICLASS_K)
def test_log_loss_string_labels_in_given_order(k: int, seed: int) -> None:
    """xebench columns follow ``labels``; scikit-learn always uses the sorted order."""
    rng, y, prob_sorted = multiclass_case(seed, 400, k)
    names = class_names(k)
    y_str = names[y]
    shuffled = rng.permutation(names)
    prob_shuffled = prob_sorted[:, np.searchsorted(names, shuffled)]
    expected = sk_log_loss(y_str, prob_sorted, labels=names)
    actual = xb.log_loss(y_str, prob_shuffled, labels=list(shuffled), eps=F64_EPS)
    assert actual == pytest.approx(expected, rel=RTOL)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("k", MULTICLASS_K)
def test_log_loss_string_labels_sorted_when_not_given(k: int, seed: int) -> None:
    _, y, prob = multiclass_case(seed, 400, k)
    y[:k] = np.arange(k)  # every class occurs, so both libraries infer all k labels
    y_str = class_names(k)[y]
    expected = sk_log_loss(y_str, prob)
    assert xb.log_loss(y_str, prob, eps=F64_EPS) == pytest.approx(expected, rel=RTOL)


@pytest.mark.parametrize("seed", SEEDS)
def test_log_loss_binary_string_labels(seed: int) -> None:
    _, y, p = binary_case(seed, 500)
    y[:2] = [0, 1]
    y_str = np.array(["neg", "pos"])[y]
    expected = sk_log_loss(y_str, p)  # P of the larger label, 'pos'
    assert xb.log_loss(y_str, p) == pytest.approx(expected, rel=RTOL)
    assert xb.log_loss(y_str, p, labels=["neg", "pos"]) == pytest.approx(expected, rel=RTOL)
    # labels=['pos', 'neg'] makes the 1-D column P('neg'): scikit-learn sees 1 - p.
    reversed_labels = xb.log_loss(y_str, 1.0 - p, labels=["pos", "neg"])
    assert reversed_labels == pytest.approx(expected, rel=RTOL)


@pytest.mark.parametrize("seed", SEEDS)
def test_log_loss_bool_labels(seed: int) -> None:
    _, y, p = binary_case(seed, 500)
    y_bool = y.astype(bool)
    expected = sk_log_loss(y_bool, p, labels=[False, True])
    assert xb.log_loss(y_bool, p) == pytest.approx(expected, rel=RTOL)
    assert xb.log_loss(list(y_bool), two_columns(p)) == pytest.approx(expected, rel=RTOL)


@pytest.mark.parametrize(("base", "ln_base"), BASES)
@pytest.mark.parametrize("k", [2, 5, 37])
def test_log_loss_base(k: int, base: str | int, ln_base: float) -> None:
    if k == 2:
        _, y, prob = binary_case(11, 300)
    else:
        _, y, prob = multiclass_case(11, 300, k)
    expected = sk_log_loss(y, prob, labels=np.arange(k)) / ln_base
    assert xb.log_loss(y, prob, base=base, eps=F64_EPS) == pytest.approx(expected, rel=RTOL)
    np.testing.assert_allclose(
        np.mean(xb.nll(y, prob, base=base, eps=F64_EPS)), expected, rtol=RTOL, atol=0
    )


# --- Brier score ----------------------------------------------------------------------


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("seed", SEEDS)
def test_brier_binary(seed: int, n: int) -> None:
    rng, y, p = binary_case(seed, n)
    weight = rng.uniform(0.0, 3.0, size=n)
    assert xb.brier_score(y, p) == pytest.approx(brier_score_loss(y, p), rel=RTOL)
    expected = brier_score_loss(y, p, sample_weight=weight)
    assert xb.brier_score(y, p, sample_weight=weight) == pytest.approx(expected, rel=RTOL)
    # Two columns are the binary case: the mean of (p - y)^2, not the sum over columns.
    two = xb.brier_score(y, two_columns(p), sample_weight=weight)
    assert two == pytest.approx(expected, rel=RTOL)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("k", MULTICLASS_K)
def test_brier_multiclass(k: int, seed: int) -> None:
    rng, y, prob = multiclass_case(seed, 500, k)
    weight = rng.uniform(0.0, 3.0, size=y.shape[0])
    labels = np.arange(k)
    expected = brier_score_loss(y, prob, labels=labels)
    assert xb.brier_score(y, prob) == pytest.approx(expected, rel=RTOL)
    expected_w = brier_score_loss(y, prob, labels=labels, sample_weight=weight)
    assert xb.brier_score(y, prob, sample_weight=weight) == pytest.approx(expected_w, rel=RTOL)


@pytest.mark.parametrize("seed", SEEDS)
def test_brier_multiclass_string_labels(seed: int) -> None:
    k = 5
    rng, y, prob_sorted = multiclass_case(seed, 300, k)
    names = class_names(k)
    shuffled = rng.permutation(names)
    prob_shuffled = prob_sorted[:, np.searchsorted(names, shuffled)]
    expected = brier_score_loss(names[y], prob_sorted, labels=names)
    actual = xb.brier_score(names[y], prob_shuffled, labels=list(shuffled))
    assert actual == pytest.approx(expected, rel=RTOL)


# --- reliability curve and calibration error (binary) -------------------------------


def _binary_scores(seed: int, n: int, grid: bool) -> tuple[np.ndarray, np.ndarray]:
    """P(1) either continuous or on a 1/20 grid, so that many sit exactly on bin edges."""
    rng = np.random.default_rng(seed)
    p = rng.integers(0, 21, size=n) / 20 if grid else rng.uniform(0.0, 1.0, size=n) ** 1.5
    y = (rng.uniform(size=n) < np.clip(p + rng.normal(0, 0.1, size=n), 0, 1)).astype(int)
    y[:2] = [0, 1]  # calibration_curve needs both classes to know the positive label
    return y, p


def _expected_edges(p: np.ndarray, n_bins: int, strategy: str) -> np.ndarray:
    if strategy == "uniform":
        return np.linspace(0.0, 1.0, n_bins + 1)
    return np.percentile(p, np.linspace(0.0, 100.0, n_bins + 1))


CURVE_CASES = [
    pytest.param(seed, n, grid, id=f"seed{seed}-n{n}-{'grid' if grid else 'cont'}")
    for seed, n, grid in [(0, 50, False), (1, 2000, False), (2, 300, True), (3, 2000, True)]
]


@pytest.mark.parametrize("n_bins", [1, 5, 10, 15])
@pytest.mark.parametrize("strategy", ["uniform", "quantile"])
@pytest.mark.parametrize(("seed", "n", "grid"), CURVE_CASES)
def test_reliability_curve_binary_vs_sklearn(
    seed: int, n: int, grid: bool, strategy: str, n_bins: int
) -> None:
    y, p = _binary_scores(seed, n, grid)
    prob_true, prob_pred = calibration_curve(y, p, n_bins=n_bins, strategy=strategy)
    edges = _expected_edges(p, n_bins, strategy)
    count = np.bincount(np.searchsorted(edges[1:-1], p), minlength=n_bins)

    curve = xb.reliability_curve(y, p, n_bins=n_bins, strategy=strategy)
    np.testing.assert_allclose(curve.bin_edges, edges, rtol=RTOL, atol=0)
    np.testing.assert_array_equal(curve.count, count)
    filled = count > 0
    np.testing.assert_allclose(curve.observed_frequency[filled], prob_true, rtol=RTOL, atol=0)
    np.testing.assert_allclose(curve.mean_predicted[filled], prob_pred, rtol=RTOL, atol=0)
    assert np.isnan(curve.observed_frequency[~filled]).all()
    assert np.isnan(curve.mean_predicted[~filled]).all()

    gaps = np.abs(prob_true - prob_pred)
    ece = float(np.sum(count[filled] * gaps) / n)
    mce = float(np.max(gaps))
    kwargs = {"n_bins": n_bins, "strategy": strategy}
    assert xb.calibration_error(y, p, norm="l1", **kwargs) == pytest.approx(ece, rel=RTOL)
    assert xb.calibration_error(y, p, norm="max", **kwargs) == pytest.approx(mce, rel=RTOL)


# --- calibration error (multiclass, top label) --------------------------------------


def top_label_reference(
    y: np.ndarray, prob: np.ndarray, n_bins: int, weight: np.ndarray | None = None
) -> dict[str, np.ndarray | float]:
    """Guo et al. (2017) top-label calibration, written out bin by bin."""
    confidence = prob.max(axis=1)
    correct = (prob.argmax(axis=1) == y).astype(float)
    w = np.ones_like(confidence) if weight is None else np.asarray(weight, dtype=float)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    index = np.searchsorted(edges[1:-1], confidence)  # a value on an edge: lower bin
    count = np.zeros(n_bins)
    accuracy = np.full(n_bins, np.nan)
    mean_conf = np.full(n_bins, np.nan)
    for b in range(n_bins):
        members = index == b
        count[b] = w[members].sum()
        if count[b] > 0:
            accuracy[b] = np.average(correct[members], weights=w[members])
            mean_conf[b] = np.average(confidence[members], weights=w[members])
    filled = count > 0
    gaps = np.abs(accuracy[filled] - mean_conf[filled])
    return {
        "count": count,
        "accuracy": accuracy,
        "confidence": mean_conf,
        "ece": float(np.sum(count[filled] * gaps) / w.sum()),
        "mce": float(gaps.max()),
    }


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("n_bins", [1, 10, 15])
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("k", MULTICLASS_K)
def test_calibration_error_multiclass_top_label(
    k: int, seed: int, n_bins: int, weighted: bool
) -> None:
    rng, y, prob = multiclass_case(seed, 1000, k)
    weight = rng.uniform(0.0, 3.0, size=y.shape[0]) if weighted else None
    ref = top_label_reference(y, prob, n_bins, weight)
    kwargs = {"n_bins": n_bins, "sample_weight": weight}
    assert xb.calibration_error(y, prob, **kwargs) == pytest.approx(ref["ece"], rel=RTOL)
    assert xb.calibration_error(y, prob, norm="max", **kwargs) == pytest.approx(
        ref["mce"], rel=RTOL
    )
    curve = xb.reliability_curve(y, prob, **kwargs)
    np.testing.assert_allclose(curve.count, ref["count"], rtol=RTOL, atol=0)
    np.testing.assert_allclose(curve.observed_frequency, ref["accuracy"], rtol=RTOL, atol=0)
    np.testing.assert_allclose(curve.mean_predicted, ref["confidence"], rtol=RTOL, atol=0)


def test_calibration_error_multiclass_confidence_on_edges() -> None:
    """Confidences on a 1/10 grid sit exactly on the edges of 10 uniform bins."""
    rng = np.random.default_rng(5)
    n, k = 2000, 4
    top = rng.integers(6, 11, size=n) / 10  # > 0.5, so it is the unique maximum
    rest = (1.0 - top)[:, None] * rng.dirichlet(np.ones(k - 1), size=n) * 0.999
    rest[:, 0] += (1.0 - top) - rest.sum(axis=1)
    top_col = rng.integers(0, k, size=n)
    prob = np.empty((n, k))
    for i in range(n):
        prob[i] = np.insert(rest[i], top_col[i], top[i])
    y = np.where(rng.uniform(size=n) < top, top_col, (top_col + 1) % k)
    ref = top_label_reference(y, prob, 10)
    assert xb.calibration_error(y, prob, n_bins=10) == pytest.approx(ref["ece"], rel=RTOL)
    curve = xb.reliability_curve(y, prob, n_bins=10)
    np.testing.assert_array_equal(curve.count, ref["count"])


# --- entropy and divergences --------------------------------------------------------


def _distribution(rng: np.random.Generator, shape: tuple[int, ...], zeros: bool) -> np.ndarray:
    values = rng.uniform(0.0, 1.0, size=shape)
    if zeros:
        values[rng.uniform(size=shape) < 0.3] = 0.0
        values[..., 0] += 0.5  # never an all-zero row
    return values


SCIPY_BASES = [("e", None, 1.0), (2, 2, math.log(2)), (10, 10, math.log(10))]


@pytest.mark.parametrize(("base", "scipy_base", "_ln"), SCIPY_BASES)
@pytest.mark.parametrize("zeros", [False, True])
@pytest.mark.parametrize("k", [2, 3, 10, 100])
@pytest.mark.parametrize("seed", SEEDS)
def test_entropy_vs_scipy(
    seed: int, k: int, zeros: bool, base: str | int, scipy_base: int | None, _ln: float
) -> None:
    rng = np.random.default_rng(seed)
    p = _distribution(rng, (k,), zeros)
    expected = scipy_entropy(p, base=scipy_base)
    actual = xb.entropy(p, base=base)
    assert isinstance(actual, float)
    assert actual == pytest.approx(expected, rel=RTOL)
    counts = rng.integers(0, 50, size=k)
    counts[0] += 1
    assert xb.entropy(counts, base=base) == pytest.approx(
        scipy_entropy(counts, base=scipy_base), rel=RTOL
    )
    rows = _distribution(rng, (25, k), zeros)
    np.testing.assert_allclose(
        xb.entropy(rows, base=base),
        scipy_entropy(rows, base=scipy_base, axis=1),
        rtol=RTOL,
        atol=0,
    )


@pytest.mark.parametrize(("base", "scipy_base", "_ln"), SCIPY_BASES)
@pytest.mark.parametrize("zeros", [False, True])
@pytest.mark.parametrize("k", [2, 3, 10, 100])
@pytest.mark.parametrize("seed", SEEDS)
def test_js_divergence_vs_scipy(
    seed: int, k: int, zeros: bool, base: str | int, scipy_base: int | None, _ln: float
) -> None:
    rng = np.random.default_rng(seed)
    p, q = _distribution(rng, (k,), zeros), _distribution(rng, (k,), zeros)
    expected = jensenshannon(p, q, base=scipy_base) ** 2
    assert xb.js_divergence(p, q, base=base) == pytest.approx(expected, rel=RTOL)
    rows_p, rows_q = _distribution(rng, (25, k), zeros), _distribution(rng, (25, k), zeros)
    np.testing.assert_allclose(
        xb.js_divergence(rows_p, rows_q, base=base),
        jensenshannon(rows_p, rows_q, base=scipy_base, axis=1) ** 2,
        rtol=RTOL,
        atol=0,
    )


@pytest.mark.parametrize(("base", "scipy_base", "_ln"), SCIPY_BASES)
@pytest.mark.parametrize("zeros_in_p", [False, True])
@pytest.mark.parametrize("k", [2, 3, 10, 100])
@pytest.mark.parametrize("seed", SEEDS)
def test_kl_divergence_unsmoothed_vs_scipy(
    seed: int, k: int, zeros_in_p: bool, base: str | int, scipy_base: int | None, _ln: float
) -> None:
    rng = np.random.default_rng(seed)
    p = _distribution(rng, (k,), zeros_in_p)
    q = rng.uniform(0.01, 1.0, size=k)  # q > 0 everywhere
    expected = scipy_entropy(p, q, base=scipy_base)
    assert xb.kl_divergence(p, q, smoothing=0, base=base) == pytest.approx(expected, rel=RTOL)
    rows_p = _distribution(rng, (25, k), zeros_in_p)
    rows_q = rng.uniform(0.01, 1.0, size=(25, k))
    np.testing.assert_allclose(
        xb.kl_divergence(rows_p, rows_q, smoothing=0, base=base),
        scipy_entropy(rows_p, rows_q, base=scipy_base, axis=1),
        rtol=RTOL,
        atol=0,
    )


def _smoothed(values: np.ndarray, smoothing: float) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    shifted = values / values.sum(axis=-1, keepdims=True) + smoothing
    return shifted / shifted.sum(axis=-1, keepdims=True)


@pytest.mark.parametrize("smoothing", [1e-6, 1e-4, 0.01, 0.5])
@pytest.mark.parametrize("k", [2, 3, 10, 100])
@pytest.mark.parametrize("seed", SEEDS)
def test_kl_divergence_smoothed_vs_scipy(seed: int, k: int, smoothing: float) -> None:
    rng = np.random.default_rng(seed)
    p = _distribution(rng, (k,), zeros=True) * 100
    q = _distribution(rng, (k,), zeros=True) * 7
    expected = scipy_entropy(_smoothed(p, smoothing), _smoothed(q, smoothing))
    assert xb.kl_divergence(p, q, smoothing=smoothing) == pytest.approx(expected, rel=RTOL)
    expected_bits = scipy_entropy(_smoothed(p, smoothing), _smoothed(q, smoothing), base=2)
    actual_bits = xb.kl_divergence(p, q, smoothing=smoothing, base=2)
    assert actual_bits == pytest.approx(expected_bits, rel=RTOL)


def test_kl_divergence_default_smoothing_is_1e_6() -> None:
    rng = np.random.default_rng(9)
    p, q = _distribution(rng, (20,), True), _distribution(rng, (20,), True)
    expected = scipy_entropy(_smoothed(p, 1e-6), _smoothed(q, 1e-6))
    assert xb.kl_divergence(p, q) == pytest.approx(expected, rel=RTOL)


def psi_reference(expected: np.ndarray, actual: np.ndarray, smoothing: float) -> np.ndarray:
    e, a = _smoothed(expected, smoothing), _smoothed(actual, smoothing)
    return np.sum((a - e) * np.log(a / e), axis=-1)


@pytest.mark.parametrize("smoothing", [0.0, 1e-4, 0.01])
@pytest.mark.parametrize("k", [2, 3, 10, 100])
@pytest.mark.parametrize("seed", SEEDS)
def test_psi_vs_numpy(seed: int, k: int, smoothing: float) -> None:
    rng = np.random.default_rng(seed)
    zeros = smoothing > 0  # unsmoothed PSI needs every bin filled in both
    expected_counts = _distribution(rng, (k,), zeros) * 1000
    actual_counts = _distribution(rng, (k,), zeros) * 50
    reference = float(psi_reference(expected_counts, actual_counts, smoothing))
    actual = xb.psi(expected_counts, actual_counts, smoothing=smoothing)
    assert actual == pytest.approx(reference, rel=RTOL)
    rows_e, rows_a = _distribution(rng, (25, k), zeros), _distribution(rng, (25, k), zeros)
    np.testing.assert_allclose(
        xb.psi(rows_e, rows_a, smoothing=smoothing),
        psi_reference(rows_e, rows_a, smoothing),
        rtol=RTOL,
        atol=0,
    )


def test_psi_default_smoothing_is_1e_4() -> None:
    e, a = np.array([10.0, 0.0, 30.0, 60.0]), np.array([5.0, 5.0, 0.0, 90.0])
    assert xb.psi(e, a) == pytest.approx(float(psi_reference(e, a, 1e-4)), rel=RTOL)


# --- cross-entropy ------------------------------------------------------------------


@pytest.mark.parametrize(("base", "ln_base"), BASES)
@pytest.mark.parametrize("k", [2, 3, 10, 100])
@pytest.mark.parametrize("seed", SEEDS)
def test_cross_entropy_soft_labels(seed: int, k: int, base: str | int, ln_base: float) -> None:
    rng = np.random.default_rng(seed)
    n = 300
    p_true = rng.dirichlet(np.full(k, 0.7), size=n)
    q_pred = 0.999 * rng.dirichlet(np.full(k, 1.5), size=n) + 0.001 / k  # all >= 1e-6
    per_row = -np.sum(p_true * np.log(q_pred), axis=1)
    expected = float(np.mean(per_row)) / ln_base
    assert xb.cross_entropy(p_true, q_pred, base=base) == pytest.approx(expected, rel=RTOL)
    weight = rng.uniform(0.0, 3.0, size=n)
    expected_w = float(np.average(per_row, weights=weight)) / ln_base
    actual_w = xb.cross_entropy(p_true, q_pred, sample_weight=weight, base=base)
    assert actual_w == pytest.approx(expected_w, rel=RTOL)


def test_cross_entropy_single_row_1d() -> None:
    p_true, q_pred = np.array([0.2, 0.5, 0.3]), np.array([0.1, 0.6, 0.3])
    expected = -float(np.sum(p_true * np.log(q_pred)))
    assert xb.cross_entropy(p_true, q_pred) == pytest.approx(expected, rel=RTOL)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("k", [2, *MULTICLASS_K])
def test_cross_entropy_one_hot_is_log_loss(k: int, seed: int) -> None:
    if k == 2:
        rng, y, p = binary_case(seed, 500)
        prob = two_columns(p)
    else:
        rng, y, prob = multiclass_case(seed, 500, k)
    weight = rng.uniform(0.0, 3.0, size=y.shape[0])
    expected = sk_log_loss(y, prob, labels=np.arange(k), sample_weight=weight)
    actual = xb.cross_entropy(one_hot(y, k), prob, sample_weight=weight, eps=F64_EPS)
    assert actual == pytest.approx(expected, rel=RTOL)


# --- accuracy, prior baseline, skill, perplexity ------------------------------------


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("seed", SEEDS)
def test_accuracy_binary(seed: int, weighted: bool) -> None:
    rng = np.random.default_rng(seed)
    n = 1000
    p = rng.integers(0, 11, size=n) / 10  # many exact 0.5 ties: they predict class 0
    y = rng.integers(0, 2, size=n)
    weight = rng.uniform(0.0, 3.0, size=n) if weighted else None
    expected = accuracy_score(y, (p > 0.5).astype(int), sample_weight=weight)
    assert xb.accuracy(y, p, sample_weight=weight) == pytest.approx(expected, rel=RTOL)
    expected_2col = accuracy_score(y, two_columns(p).argmax(axis=1), sample_weight=weight)
    actual_2col = xb.accuracy(y, two_columns(p), sample_weight=weight)
    assert actual_2col == pytest.approx(expected_2col, rel=RTOL)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("k", MULTICLASS_K)
def test_accuracy_multiclass(k: int, seed: int, weighted: bool) -> None:
    rng, y, prob = multiclass_case(seed, 1000, k)
    weight = rng.uniform(0.0, 3.0, size=y.shape[0]) if weighted else None
    expected = accuracy_score(y, prob.argmax(axis=1), sample_weight=weight)
    assert xb.accuracy(y, prob, sample_weight=weight) == pytest.approx(expected, rel=RTOL)


@pytest.mark.parametrize(("base", "scipy_base", "_ln"), SCIPY_BASES)
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("k", [2, *MULTICLASS_K])
def test_prior_log_loss_is_entropy_of_label_counts(
    k: int, seed: int, base: str | int, scipy_base: int | None, _ln: float
) -> None:
    rng = np.random.default_rng(seed)
    n = 800
    y = rng.choice(k, size=n, p=rng.dirichlet(np.ones(k)))
    weight = rng.uniform(0.0, 3.0, size=n)
    expected = scipy_entropy(np.bincount(y, minlength=k), base=scipy_base)
    assert xb.prior_log_loss(y, base=base) == pytest.approx(expected, rel=RTOL)
    names = class_names(k)
    assert xb.prior_log_loss(names[y], base=base) == pytest.approx(expected, rel=RTOL)
    assert xb.prior_log_loss(
        names[y], labels=list(rng.permutation(names)), base=base
    ) == pytest.approx(expected, rel=RTOL)
    expected_w = scipy_entropy(np.bincount(y, weights=weight, minlength=k), base=scipy_base)
    actual_w = xb.prior_log_loss(y, sample_weight=weight, base=base)
    assert actual_w == pytest.approx(expected_w, rel=RTOL)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("k", [2, *MULTICLASS_K])
def test_skill_score_and_perplexity(k: int, seed: int, weighted: bool) -> None:
    if k == 2:
        rng, y, prob = binary_case(seed, 1000)
        y[:2] = [0, 1]
    else:
        rng, y, prob = multiclass_case(seed, 1000, k)
    weight = rng.uniform(0.0, 3.0, size=y.shape[0]) if weighted else None
    loss = sk_log_loss(y, prob, labels=np.arange(k), sample_weight=weight)
    prior = scipy_entropy(np.bincount(y, weights=weight, minlength=k))
    actual_skill = xb.skill_score(y, prob, sample_weight=weight, eps=F64_EPS)
    assert actual_skill == pytest.approx(1.0 - loss / prior, rel=RTOL)
    actual_perplexity = xb.perplexity(y, prob, sample_weight=weight, eps=F64_EPS)
    assert actual_perplexity == pytest.approx(math.exp(loss), rel=RTOL)


def test_large_binary_case_once() -> None:
    """One larger case: several validation and computation chunks."""
    rng = np.random.default_rng(2024)
    n = 300_000
    p = rng.uniform(1e-6, 1 - 1e-6, size=n)
    y = (rng.uniform(size=n) < p).astype(np.int64)
    weight = rng.uniform(0.0, 2.0, size=n)
    expected = sk_log_loss(y, p, sample_weight=weight, labels=[0, 1])
    assert xb.log_loss(y, p, sample_weight=weight) == pytest.approx(expected, rel=RTOL)
    expected_brier = brier_score_loss(y, p, sample_weight=weight)
    assert xb.brier_score(y, p, sample_weight=weight) == pytest.approx(expected_brier, rel=RTOL)
