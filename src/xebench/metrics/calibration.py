"""Calibration: reliability curves, ECE / MCE, and the Brier and log-loss decompositions.

Everything here is computed from per-bin sums (weight, sum of scores, sum of
hits per bin); :func:`calibration_gap`, :func:`brier_decomposition_from_bins`
and :func:`log_loss_refinement` finish those sums, so the mergeable statistics,
which keep the sums, finish them with the same code.

    >>> y, p = [0, 0, 1, 1], [0.1, 0.3, 0.7, 0.9]
    >>> round(calibration_error(y, p, n_bins=2), 4)
    0.2
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .._validation import (
    check_eps,
    check_n_bins,
    check_norm,
    check_strategy,
    log_of_base,
    row_chunks,
)
from ..errors import InvalidInputError
from .blocks import (
    DEFAULT_EPS,
    Labels,
    Predictions,
    dot,
    nll_nats,
    prepare,
    top_label,
    weighted_mean,
)

__all__ = [
    "ReliabilityCurve",
    "brier_decomposition",
    "brier_decomposition_from_bins",
    "calibration_error",
    "calibration_gap",
    "calibration_gaps",
    "calibration_inputs",
    "log_loss_decomposition",
    "log_loss_refinement",
    "reliability_curve",
    "uniform_bin_index",
]


# --- building blocks over clean arrays and bin sums ---------------------------


def calibration_inputs(
    codes: NDArray[np.intp], prob: NDArray[np.floating]
) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """(score, hit) pairs that calibration compares per bin.

    Binary: P(class 1) against whether the row is class 1 (the convention of
    ``sklearn.calibration.calibration_curve``). Multiclass: top-label
    confidence against top-label accuracy (Guo et al., 2017).

    Example:
        >>> score, hit = calibration_inputs(np.array([0, 1]), np.array([0.2, 0.7]))
        >>> score.tolist(), hit.tolist()
        ([0.2, 0.7], [False, True])
    """
    if prob.ndim == 1:
        return prob.astype(np.float64, copy=False), codes == 1
    return top_label(codes, prob)


def _weighted_percentiles(
    values: NDArray[np.float64], weight: NDArray[np.float64], quantiles: NDArray[np.float64]
) -> NDArray[np.float64]:
    """NumPy's default ("linear") percentiles with relative row weights.

    Weights are rescaled to average 1 over the rows that have weight, and a
    row of weight w then counts as w rows: unit weights give exactly
    ``np.percentile``, a zero weight drops the row, and scaling every weight
    by the same factor changes nothing. (Integer weights therefore equal
    repeated rows only up to the interpolation between neighbours: linear
    interpolation cannot be both scale-free and count-based.)
    """
    n_weighted = np.count_nonzero(weight)
    # Ties are ordered by weight too, so the cumulative sums -- and the edges --
    # do not depend on the order of the rows.
    order = np.lexsort((weight, values))
    sorted_values = values[order]
    cumulative = np.cumsum(weight[order]) * (n_weighted / weight.sum())
    # Rescaling leaves rounding dust (2.9999999999999996 rows); equal weights
    # must count whole rows exactly, as unweighted percentiles do.
    whole = np.round(cumulative)
    snap = np.abs(cumulative - whole) <= 1e-9 * n_weighted
    cumulative[snap] = whole[snap]
    position = quantiles * max(n_weighted - 1.0, 0.0)
    below = np.floor(position)
    fraction = position - below
    last = sorted_values.shape[0] - 1
    lower = sorted_values[np.minimum(np.searchsorted(cumulative, below, side="right"), last)]
    upper = sorted_values[np.minimum(np.searchsorted(cumulative, below + 1, side="right"), last)]
    diff = upper - lower  # the same two-sided lerp as NumPy, for identical edges
    return np.where(fraction >= 0.5, upper - diff * (1 - fraction), lower + diff * fraction)


def _bin_edges(pred: Predictions, n_bins: int, strategy: str) -> NDArray[np.float64]:
    """Calibration bin edges: equal widths on [0, 1], or quantiles of the scores.

    Uniform edges are ``i / n_bins``, each correctly rounded (``np.linspace``
    is not), so the edges of 15 bins are exactly every 20th edge of 300 bins
    and coarse bins can be summed exactly from fine ones.
    """
    if strategy == "uniform":
        return np.arange(n_bins + 1) / n_bins
    # Quantile positions exactly as scikit-learn computes them: edges are data
    # points here, and an ulp of difference would move a point across an edge.
    quantiles = np.linspace(0.0, 1.0, n_bins + 1)
    score, _ = calibration_inputs(pred.codes, pred.prob)
    if pred.weight is None:
        return np.percentile(score, quantiles * 100)  # exactly as scikit-learn
    # np.percentile divides by 100 again; do the same so integer weights give
    # exactly the edges of the repeated rows.
    return _weighted_percentiles(score, pred.weight, quantiles * 100 / 100)


def uniform_bin_index(score: NDArray[np.float64], edges: NDArray[np.float64]) -> NDArray[np.intp]:
    """``np.searchsorted(edges[1:-1], score)`` for edges ``i / n``, by arithmetic.

    Ten times faster than a binary search over unsorted scores (which
    mispredicts every branch). ``score * n`` can round across an edge, so
    each index is checked against the real edges and moved back or forward
    by one where it did: the result equals the binary search exactly.

    Example:
        >>> edges = np.arange(5) / 4
        >>> uniform_bin_index(np.array([0.0, 0.1, 0.25, 0.5, 1.0]), edges).tolist()
        [0, 0, 0, 1, 3]
    """
    n_bins = edges.shape[0] - 1
    index = np.ceil(score * n_bins).astype(np.intp)
    index -= 1
    np.clip(index, 0, n_bins - 1, out=index)
    index -= (index > 0) & (score <= edges[index])
    index += (index < n_bins - 1) & (score > edges[index + 1])
    return index


def _bin_sums(
    pred: Predictions, edges: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Per-bin weight, weighted sum of scores and weighted sum of hits.

    A score on an inner edge goes to the lower bin, as in scikit-learn.
    Accumulated chunk by chunk, so memory does not grow with the input.
    """
    n_bins = edges.shape[0] - 1
    uniform = np.array_equal(edges, np.arange(n_bins + 1) / n_bins)
    count, score_sum, hit_sum = np.zeros(n_bins), np.zeros(n_bins), np.zeros(n_bins)
    for rows in row_chunks(pred.n_rows, pred.n_columns):
        score, hit = calibration_inputs(pred.codes[rows], pred.prob[rows])
        index = uniform_bin_index(score, edges) if uniform else np.searchsorted(edges[1:-1], score)
        weight = None if pred.weight is None else pred.weight[rows]
        count += np.bincount(index, weights=weight, minlength=n_bins)
        score_sum += np.bincount(
            index, weights=score if weight is None else score * weight, minlength=n_bins
        )
        hit_sum += np.bincount(
            index, weights=hit if weight is None else np.where(hit, weight, 0.0), minlength=n_bins
        )
    return count, score_sum, hit_sum


def calibration_gap(
    count: NDArray[np.float64],
    score_sum: NDArray[np.float64],
    hit_sum: NDArray[np.float64],
    norm: str,
) -> float:
    """ECE (``norm="l1"``) or MCE (``norm="max"``) from per-bin sums.

    ECE = sum_b (n_b / n) |observed_b - predicted_b|; MCE = max_b of the same
    gap over non-empty bins. Empty bins contribute nothing; NaN when every bin
    is empty. One row of :func:`calibration_gaps` (the same arithmetic, so the
    two agree to the bit).

    Example:
        >>> bins = np.array([2.0, 2, 0]), np.array([0.4, 1.6, 0]), np.array([1.0, 2, 0])
        >>> round(calibration_gap(*bins, "l1"), 4), round(calibration_gap(*bins, "max"), 4)
        (0.25, 0.3)
    """
    return float(calibration_gaps(count[None], score_sum[None], hit_sum[None], norm)[0])


def calibration_gaps(
    count: NDArray[np.float64],
    score_sum: NDArray[np.float64],
    hit_sum: NDArray[np.float64],
    norm: str,
) -> NDArray[np.float64]:
    """:func:`calibration_gap` of each row of per-bin sums (bins on the last axis): what a
    scrape finishing hundreds of windows at once computes. NaN for a row with no
    filled bin.

    Example:
        >>> count = np.array([[2.0, 2, 0], [1.0, 0, 0]])
        >>> score, hit = np.array([[0.4, 1.6, 0], [0.5, 0, 0]]), np.array([[1.0, 2, 0], [1, 0, 0]])
        >>> calibration_gaps(count, score, hit, "l1").round(4).tolist()
        [0.25, 0.5]
    """
    count = np.asarray(count, dtype=np.float64)
    filled = count > 0
    gap = np.zeros(count.shape)
    np.divide(np.abs(hit_sum - score_sum), count, out=gap, where=filled)
    with np.errstate(invalid="ignore", divide="ignore"):
        if norm == "max":
            worst = np.where(filled, gap, -np.inf).max(axis=-1)
            return np.where(filled.any(axis=-1), worst, np.nan)
        # einsum, not a BLAS dot (see :func:`~xebench.metrics.blocks.dot`); the empty bins'
        # terms are 0 * 0.
        total = np.einsum("...i,...i->...", count, gap)
        return np.where(filled.any(axis=-1), total / count.sum(axis=-1), np.nan)


def brier_decomposition_from_bins(
    count: NDArray[np.float64], score_sum: NDArray[np.float64], hit_sum: NDArray[np.float64]
) -> dict[str, float]:
    """Murphy's decomposition from calibration bins: REL - RES + UNC.

    With ``o_b`` the observed frequency and ``f_b`` the mean forecast of bin
    ``b`` and ``o`` the overall frequency: reliability ``sum W_b (f_b - o_b)^2
    / W``, resolution ``sum W_b (o_b - o)^2 / W``, uncertainty ``o (1 - o)``.
    A binned estimate: it equals the Brier score of the scores when every bin
    holds a single forecast value, and converges to it as bins get finer.

    Example:
        >>> bins = np.array([2.0, 2.0]), np.array([0.4, 1.2]), np.array([1.0, 1.0])
        >>> parts = brier_decomposition_from_bins(*bins)
        >>> {name: round(value, 4) for name, value in parts.items()}
        {'reliability': 0.05, 'resolution': 0.0, 'uncertainty': 0.25, 'brier': 0.3}
    """
    filled = count > 0
    weight = count[filled]
    total = float(weight.sum())
    forecast, observed = score_sum[filled] / weight, hit_sum[filled] / weight
    overall = float(hit_sum.sum()) / total
    reliability = dot(weight, (forecast - observed) ** 2) / total
    resolution = dot(weight, (observed - overall) ** 2) / total
    uncertainty = float(overall * (1.0 - overall))
    return {
        "reliability": reliability,
        "resolution": resolution,
        "uncertainty": uncertainty,
        "brier": reliability - resolution + uncertainty,
    }


def log_loss_refinement(count: NDArray[np.float64], hit_sum: NDArray[np.float64]) -> float:
    """Log loss after binned recalibration, in nats: ``sum W_b H(o_b) / W``.

    Replacing every forecast in bin ``b`` by the bin's observed frequency
    ``o_b`` is the best a recalibration map constant on bins can do; what
    remains is refinement loss, and ``log loss - refinement`` is calibration
    loss (binned: it can dip below 0 when bins are coarse).

    Example:
        >>> round(log_loss_refinement(np.array([2.0, 2.0]), np.array([1.0, 1.0])), 4)  # ln 2
        0.6931
    """
    filled = count > 0
    observed = hit_sum[filled] / count[filled]
    from scipy.special import entr  # here: `import xebench` stays fast

    bin_entropy = entr(observed) + entr(1.0 - observed)
    return dot(count[filled], bin_entropy) / float(count.sum())


# --- public metrics ----------------------------------------------------------


@dataclass(frozen=True)
class ReliabilityCurve:
    """Per-bin calibration: what was predicted against what happened.

    Arrays are aligned with the bins (``len(bin_edges) - 1`` entries); empty
    bins have ``count`` 0 and NaN means. With sample weights, ``count`` is the
    weight in the bin.

    Attributes:
        bin_edges: the ``n_bins + 1`` bin edges.
        count: number (or weight) of rows per bin.
        mean_predicted: mean predicted probability (binary: P(class 1);
            multiclass: top-label confidence) per bin.
        observed_frequency: observed frequency of class 1 (binary) or
            top-label accuracy (multiclass) per bin.
    """

    bin_edges: NDArray[np.float64]
    count: NDArray[np.float64]
    mean_predicted: NDArray[np.float64]
    observed_frequency: NDArray[np.float64]


def reliability_curve(
    y_true: ArrayLike,
    y_prob: ArrayLike,
    *,
    labels: Labels = None,
    sample_weight: ArrayLike | None = None,
    n_bins: int = 10,
    strategy: str = "uniform",
    renormalize: bool = False,
) -> ReliabilityCurve:
    """Reliability curve (the data of a reliability diagram).

    Binary: rows are binned by P(class 1) and each bin compares the mean
    P(class 1) with the observed frequency of class 1 -- the convention of
    ``sklearn.calibration.calibration_curve``. Multiclass: rows are binned by
    top-label confidence and each bin compares the mean confidence with the
    accuracy of the top label (Guo et al., 2017, "On Calibration of Modern
    Neural Networks").

    ``strategy="uniform"`` splits [0, 1] into ``n_bins`` equal bins;
    ``"quantile"`` puts (about) the same weight of rows in each bin. A value
    on an inner edge falls in the lower bin, as in scikit-learn.

    Example:
        >>> curve = reliability_curve([0, 0, 1, 1], [0.1, 0.3, 0.7, 0.9], n_bins=2)
        >>> curve.count.tolist(), curve.mean_predicted.tolist(), curve.observed_frequency.tolist()
        ([2.0, 2.0], [0.2, 0.8], [0.0, 1.0])
    """
    n_bins = check_n_bins(n_bins)
    strategy = check_strategy(strategy)
    pred = prepare(y_true, y_prob, labels, sample_weight, renormalize)
    edges = _bin_edges(pred, n_bins, strategy)
    count, score_sum, hit_sum = _bin_sums(pred, edges)
    with np.errstate(invalid="ignore", divide="ignore"):
        return ReliabilityCurve(edges, count, score_sum / count, hit_sum / count)


def calibration_error(
    y_true: ArrayLike,
    y_prob: ArrayLike,
    *,
    labels: Labels = None,
    sample_weight: ArrayLike | None = None,
    n_bins: int = 15,
    strategy: str = "uniform",
    norm: str = "l1",
    renormalize: bool = False,
) -> float:
    """Binned calibration error: ECE (``norm="l1"``) or MCE (``norm="max"``).

    ECE is the bin-weighted mean of ``|observed frequency - mean predicted|``
    over the bins of :func:`reliability_curve`; MCE is the largest gap of a
    non-empty bin. Binary predictions compare P(class 1) with the frequency of
    class 1; multiclass predictions compare top-label confidence with
    accuracy (Guo et al., 2017). In [0, 1]; lower is better. A binned
    estimate: it depends on ``n_bins`` and ``strategy``.

    Example:
        >>> y, p = [0, 0, 1, 1], [0.1, 0.3, 0.7, 0.9]
        >>> round(calibration_error(y, p, n_bins=2), 4)
        0.2
        >>> round(calibration_error(y, p, n_bins=4, norm="max"), 4)
        0.3
    """
    n_bins = check_n_bins(n_bins)
    strategy = check_strategy(strategy)
    norm = check_norm(norm)
    pred = prepare(y_true, y_prob, labels, sample_weight, renormalize)
    edges = _bin_edges(pred, n_bins, strategy)
    return calibration_gap(*_bin_sums(pred, edges), norm=norm)


def brier_decomposition(
    y_true: ArrayLike,
    y_prob: ArrayLike,
    *,
    labels: Labels = None,
    sample_weight: ArrayLike | None = None,
    n_bins: int = 300,
    renormalize: bool = False,
) -> dict[str, float]:
    """Murphy's decomposition of the Brier score: reliability - resolution + uncertainty.

    Computed from ``n_bins`` uniform calibration bins (those of
    :func:`reliability_curve`): *reliability* (lower is better) is the
    calibration gap, *resolution* (higher is better) how far the bins' outcome
    rates spread around the base rate, *uncertainty* the base rate's own
    variance. Binary predictions use P(class 1); multiclass predictions are
    decomposed as the top-label problem (confidence vs correctness). A binned
    estimate: ``brier`` here equals :func:`brier_score` exactly when each bin
    holds one forecast value, and approaches it as bins get finer.

    Example:
        >>> parts = brier_decomposition([0, 1, 0, 1], [0.2, 0.2, 0.6, 0.6])
        >>> {name: round(value, 4) for name, value in parts.items()}
        {'reliability': 0.05, 'resolution': 0.0, 'uncertainty': 0.25, 'brier': 0.3}
    """
    n_bins = check_n_bins(n_bins)
    pred = prepare(y_true, y_prob, labels, sample_weight, renormalize)
    return brier_decomposition_from_bins(*_bin_sums(pred, _bin_edges(pred, n_bins, "uniform")))


def log_loss_decomposition(
    y_true: ArrayLike,
    y_prob: ArrayLike,
    *,
    labels: Labels = None,
    sample_weight: ArrayLike | None = None,
    n_bins: int = 300,
    eps: float = DEFAULT_EPS,
    base: str | int = "e",
) -> dict[str, float]:
    """Split binary log loss into calibration loss and refinement loss.

    *refinement* is the log loss after binned recalibration -- every forecast
    replaced by the observed frequency of its bin, i.e. the bin-weighted
    entropy of the observed frequencies; *calibration* = log loss -
    refinement is what recalibration alone would win back. Both are binned
    estimates over ``n_bins`` uniform bins of P(class 1): calibration can be
    slightly negative with coarse bins and converges as bins get finer.

    Example:
        >>> parts = log_loss_decomposition([0, 1, 0, 1], [0.2, 0.2, 0.6, 0.6])
        >>> {name: round(value, 4) for name, value in parts.items()}
        {'log_loss': 0.8149, 'calibration': 0.1218, 'refinement': 0.6931}
    """
    check_eps(eps)
    n_bins = check_n_bins(n_bins)
    divisor = log_of_base(base)
    pred = prepare(y_true, y_prob, labels, sample_weight, False)
    if not pred.binary:
        raise InvalidInputError(
            "y_prob", "the log-loss decomposition is defined for binary predictions"
        )
    count, _, hit_sum = _bin_sums(pred, _bin_edges(pred, n_bins, "uniform"))
    loss = weighted_mean(nll_nats(pred, eps), pred.weight) / divisor
    refinement = log_loss_refinement(count, hit_sum) / divisor
    return {"log_loss": loss, "calibration": loss - refinement, "refinement": refinement}
