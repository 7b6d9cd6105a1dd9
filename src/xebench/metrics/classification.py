"""Scores of predicted probabilities against observed labels.

Log loss (cross-entropy) and its per-event NLL, perplexity, soft-label cross
entropy, Brier score, accuracy, the count of clipped predictions, the prior
(no-skill) baseline and the skill score against it. Each is a validated
public function over the building blocks of :mod:`xebench.metrics.blocks`.

    >>> round(log_loss([1, 0], [0.9, 0.2]), 4), round(brier_score([1, 0], [0.9, 0.2]), 4)
    (0.1643, 0.025)
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .._validation import (
    check_eps,
    check_probability_rows,
    check_sample_weight,
    encode_labels,
    log_of_base,
    row_chunks,
)
from ..errors import InvalidInputError
from .blocks import (
    DEFAULT_EPS,
    ClassWeight,
    Labels,
    Predictions,
    brier_per_row,
    class_frequencies,
    class_loss_table,
    entropy_nats,
    nll_nats,
    prepare,
    top_label,
    true_class_prob_into,
    weighted_mean,
)

__all__ = [
    "accuracy",
    "brier_score",
    "clipped_count",
    "cross_entropy",
    "log_loss",
    "nll",
    "per_class_log_loss",
    "perplexity",
    "prior_log_loss",
    "skill_score",
]


def _clipped_count(pred: Predictions, eps: float) -> int:
    """Rows whose observed class got a probability below ``eps`` (loss capped)."""
    clipped = 0
    buffer = np.empty(min(pred.n_rows, max(1, (1 << 16) // pred.n_columns)))
    for rows in row_chunks(pred.n_rows, pred.n_columns):
        chunk = buffer[: rows.stop - rows.start]
        true_class_prob_into(chunk, pred, rows)
        clipped += int(np.count_nonzero(chunk < eps))
    return clipped


def _prior_log_loss_nats(pred: Predictions) -> float:
    """Log loss of predicting the (weighted) label frequencies for every row."""
    n_classes = 2 if pred.binary else pred.prob.shape[1]
    return float(entropy_nats(class_frequencies(pred.codes, n_classes, pred.weight)))


def nll(
    y_true: ArrayLike,
    y_prob: ArrayLike,
    *,
    labels: Labels = None,
    eps: float = DEFAULT_EPS,
    base: str | int = "e",
    renormalize: bool = False,
) -> NDArray[np.float64]:
    """Per-event negative log-likelihood: ``-log p(observed label)``.

    Probabilities are clipped to ``[eps, 1 - eps]`` first. The mean of this
    array is :func:`log_loss`.

    Example:
        >>> nll([1, 0, 1], [0.8, 0.1, 0.5]).round(4)
        array([0.2231, 0.1054, 0.6931])
        >>> nll(["cat", "dog"], [[0.25, 0.75], [0.5, 0.5]], base=2)
        array([2., 1.])
    """
    check_eps(eps)
    divisor = log_of_base(base)
    pred = prepare(y_true, y_prob, labels, None, renormalize)
    values = nll_nats(pred, eps)
    if divisor != 1.0:
        values /= divisor
    return values


def log_loss(
    y_true: ArrayLike,
    y_prob: ArrayLike,
    *,
    labels: Labels = None,
    sample_weight: ArrayLike | None = None,
    eps: float = DEFAULT_EPS,
    base: str | int = "e",
    renormalize: bool = False,
    class_weight: ClassWeight = None,
) -> float:
    """Log loss (cross-entropy against the observed labels): the mean NLL.

    ``-1/W sum_i w_i log p_i(y_i)``, in nats by default. Lower is better; 0 is
    perfect and predicting 0.5 on a balanced binary problem scores ln 2.
    ``class_weight`` (a weight per label, or ``"balanced"``) multiplies each
    row's weight by its class's: on imbalanced data the rare class then counts
    as much as the common one.

    Example:
        The trained click model of a worked example (five clicks in ten):

        >>> clicked = [1, 0, 1, 1, 1, 0, 0, 1, 0, 0]
        >>> p_click = [0.8, 0.1, 0.65, 0.78, 0.91, 0.2, 0.65, 0.87, 0.22, 0.33]
        >>> round(log_loss(clicked, p_click), 4)
        0.3163
        >>> round(log_loss(clicked, [0.5] * 10, base=2), 4)
        1.0

        One fraud in a hundred, weighted 99 (the 1:99 example): the miss of
        the fraud then weighs as much as the 99 right answers together.

        >>> fraud, p_fraud = [1] + [0] * 99, [0.1] * 100
        >>> round(log_loss(fraud, p_fraud), 4)  # (2.3026 + 99 * 0.1054) / 100
        0.1273
        >>> round(log_loss(fraud, p_fraud, class_weight={1: 99}), 4)  # 99 (2.3026 + 0.1054) / 198
        1.204
    """
    check_eps(eps)
    divisor = log_of_base(base)
    pred = prepare(y_true, y_prob, labels, sample_weight, renormalize, class_weight)
    return weighted_mean(nll_nats(pred, eps), pred.weight) / divisor


def perplexity(
    y_true: ArrayLike,
    y_prob: ArrayLike,
    *,
    labels: Labels = None,
    sample_weight: ArrayLike | None = None,
    eps: float = DEFAULT_EPS,
    renormalize: bool = False,
    class_weight: ClassWeight = None,
) -> float:
    """Perplexity: ``exp(log loss in nats)`` (equal to ``2 ** bits``).

    The effective number of equally likely classes the model hesitates
    between; 1 is perfect, k is a uniform guess over k classes. Lower is
    better.

    Example:
        >>> perplexity([0, 1, 2, 3], [[0.25] * 4] * 4)
        4.0
    """
    return math.exp(
        log_loss(
            y_true,
            y_prob,
            labels=labels,
            sample_weight=sample_weight,
            eps=eps,
            renormalize=renormalize,
            class_weight=class_weight,
        )
    )


def cross_entropy(
    p_true: ArrayLike,
    q_pred: ArrayLike,
    *,
    sample_weight: ArrayLike | None = None,
    eps: float = DEFAULT_EPS,
    base: str | int = "e",
    renormalize: bool = False,
) -> float:
    """Cross-entropy of predicted distributions against true (soft) distributions.

    The (weighted) mean over rows of ``-sum_j p_true[j] log q_pred[j]``; both
    are ``(n, k)`` arrays whose rows sum to 1 (a 1-D array is one row). With
    one-hot ``p_true`` this is :func:`log_loss`. Always ``>= entropy(p_true)``,
    with equality when ``q_pred == p_true``. Lower is better.

    Example:
        >>> round(cross_entropy([0.5, 0.5], [0.9, 0.1]), 4)
        1.204
        >>> cross_entropy([[1, 0], [0, 1]], [[0.5, 0.5], [0.5, 0.5]], base=2)
        1.0
    """
    check_eps(eps)
    divisor = log_of_base(base)
    true = check_probability_rows(p_true, "p_true", renormalize=renormalize)
    pred = check_probability_rows(q_pred, "q_pred", renormalize=renormalize)
    if true.shape != pred.shape:
        raise InvalidInputError(
            "q_pred", f"must have the same shape as p_true {true.shape}", value=pred.shape
        )
    weight = check_sample_weight(sample_weight, true.shape[0])
    from scipy.special import xlogy  # here: `import xebench` stays fast

    per_row = np.empty(true.shape[0])
    for rows in row_chunks(true.shape[0], true.shape[1]):
        clipped = np.clip(pred[rows].astype(np.float64), eps, 1.0 - eps)
        per_row[rows] = -np.sum(xlogy(true[rows], clipped), axis=1)
    return weighted_mean(per_row, weight) / divisor


def brier_score(
    y_true: ArrayLike,
    y_prob: ArrayLike,
    *,
    labels: Labels = None,
    sample_weight: ArrayLike | None = None,
    renormalize: bool = False,
    class_weight: ClassWeight = None,
) -> float:
    """Brier score: mean squared error of the predicted probabilities.

    Binary (1-D ``y_prob`` or two columns): ``mean((p - y)^2)``, in [0, 1].
    Multiclass: ``mean(sum_j (p_j - [j == y])^2)``, in [0, 2] (the original
    multiclass Brier; ``sklearn.metrics.brier_score_loss`` agrees with both).
    Lower is better.

    Example:
        >>> round(brier_score([1, 0, 1], [0.8, 0.1, 0.5]), 4)
        0.1
        >>> y_prob = [[0.7, 0.2, 0.1], [0.0, 0.5, 0.5]]
        >>> round(brier_score(["a", "c"], y_prob, labels=["a", "b", "c"]), 4)
        0.32
    """
    pred = prepare(y_true, y_prob, labels, sample_weight, renormalize, class_weight)
    return weighted_mean(brier_per_row(pred), pred.weight)


def accuracy(
    y_true: ArrayLike,
    y_prob: ArrayLike,
    *,
    labels: Labels = None,
    sample_weight: ArrayLike | None = None,
    renormalize: bool = False,
    class_weight: ClassWeight = None,
) -> float:
    """Fraction of rows whose most probable class is the observed one.

    Binary: class 1 is predicted when P(class 1) > 0.5. Higher is better.

    Example:
        >>> accuracy([1, 0, 1], [0.8, 0.1, 0.4])
        0.6666666666666666
    """
    pred = prepare(y_true, y_prob, labels, sample_weight, renormalize, class_weight)
    return weighted_mean(top_label(pred.codes, pred.prob)[1], pred.weight)


def clipped_count(
    y_true: ArrayLike,
    y_prob: ArrayLike,
    *,
    labels: Labels = None,
    eps: float = DEFAULT_EPS,
    renormalize: bool = False,
) -> int:
    """Number of rows whose observed class got a probability below ``eps``.

    These are confident misses whose loss was capped at ``-ln(eps)`` by the
    clipping; a non-zero count means the log loss understates how wrong the
    model was, and usually points at a bug (a hard 0/1 output) upstream.

    Example:
        >>> clipped_count([1, 0, 1], [0.0, 0.1, 1.0])
        1
    """
    check_eps(eps)
    pred = prepare(y_true, y_prob, labels, None, renormalize)
    return _clipped_count(pred, eps)


def prior_log_loss(
    y_true: ArrayLike,
    *,
    labels: Labels = None,
    sample_weight: ArrayLike | None = None,
    base: str | int = "e",
) -> float:
    """No-skill baseline: the log loss of always predicting the label frequencies.

    Equal to the entropy of the (weighted) label frequencies. A model is only
    useful if it beats this; :func:`skill_score` measures by how much.

    Example:
        One click in ten (the 1:9 imbalance of a worked example):

        >>> round(prior_log_loss([1] + [0] * 9), 4)
        0.3251
        >>> prior_log_loss(["spam", "ham"], base=2)
        1.0
    """
    divisor = log_of_base(base)
    n_classes = None if labels is None else len(np.asarray(labels))
    codes, classes = encode_labels(y_true, labels, n_classes)
    weight = check_sample_weight(sample_weight, codes.shape[0])
    frequencies = class_frequencies(codes, classes.shape[0], weight)
    return float(entropy_nats(frequencies)) / divisor


def skill_score(
    y_true: ArrayLike,
    y_prob: ArrayLike,
    *,
    labels: Labels = None,
    sample_weight: ArrayLike | None = None,
    eps: float = DEFAULT_EPS,
    renormalize: bool = False,
    class_weight: ClassWeight = None,
) -> float:
    """Log-loss skill score: ``1 - log_loss / prior_log_loss``.

    1 is perfect, 0 is no better than predicting the label frequencies,
    negative is worse than that. Higher is better; independent of the log
    base. NaN when only one class occurs (the prior baseline is then 0).
    With ``class_weight`` both terms are class-weighted (the prior is then the
    entropy of the weighted label frequencies: ln 2 when "balanced").

    Example:
        >>> clicked = [1, 0, 1, 1, 1, 0, 0, 1, 0, 0]
        >>> p_click = [0.8, 0.1, 0.65, 0.78, 0.91, 0.2, 0.65, 0.87, 0.22, 0.33]
        >>> round(skill_score(clicked, p_click), 4)
        0.5436
    """
    check_eps(eps)
    pred = prepare(y_true, y_prob, labels, sample_weight, renormalize, class_weight)
    baseline = _prior_log_loss_nats(pred)
    if baseline == 0.0:
        return math.nan
    return 1.0 - weighted_mean(nll_nats(pred, eps), pred.weight) / baseline


def per_class_log_loss(
    y_true: ArrayLike,
    y_prob: ArrayLike,
    *,
    labels: Labels = None,
    sample_weight: ArrayLike | None = None,
    eps: float = DEFAULT_EPS,
    base: str | int = "e",
    renormalize: bool = False,
    class_weight: ClassWeight = None,
) -> dict[Any, dict[str, float]]:
    """Each true class's contribution to the log loss: its mean NLL and its share.

    For every class ``c`` (in the order of the classes), ``log_loss`` is the
    mean NLL of the rows whose label is ``c``, ``weight`` their total weight
    and ``share`` their part of the total NLL, ``sum_{y_i = c} w_i nll_i /
    sum_i w_i nll_i``: the shares add up to 1 and
    ``sum_c weight_c * log_loss_c / sum_c weight_c`` is :func:`log_loss`. On
    imbalanced data a rare class with a large mean can still have a small
    share, which is what ``class_weight`` changes (the means do not change:
    a class's rows all weigh the same). A class without rows has NaN
    ``log_loss`` and zero ``weight`` and ``share``.

    Example:
        Ten frauds missed at p = 0.1 among 990 right answers at p(fraud) = 0.1:

        >>> y, p = [1] * 10 + [0] * 990, [0.1] * 1000
        >>> per = per_class_log_loss(y, p)
        >>> {c: (round(v["log_loss"], 4), round(v["share"], 3)) for c, v in per.items()}
        {0: (0.1054, 0.819), 1: (2.3026, 0.181)}
        >>> per = per_class_log_loss(y, p, class_weight="balanced")
        >>> {c: round(v["share"], 3) for c, v in per.items()}
        {0: 0.044, 1: 0.956}
    """
    check_eps(eps)
    divisor = log_of_base(base)
    pred = prepare(y_true, y_prob, labels, sample_weight, renormalize, class_weight)
    k = pred.classes.shape[0]
    values = nll_nats(pred, eps)
    weight = np.bincount(pred.codes, weights=pred.weight, minlength=k).astype(np.float64)
    total = values if pred.weight is None else values * pred.weight
    sums = np.bincount(pred.codes, weights=total, minlength=k)
    return class_loss_table(pred.classes.tolist(), weight, sums, divisor)
