"""Discrimination: how well the scores rank positives above negatives (ROC AUC, AP).

Calibration asks whether a predicted 0.2 happens 20% of the time; discrimination
asks only whether higher scores go with the class. Both metrics here are
computed exactly, as scikit-learn's ``roc_auc_score`` and
``average_precision_score`` (to 1e-9, with ties and weights), by one sort and
cumulative sums -- no pairwise loop, no scikit-learn at run time.

Everything is finished from *groups*: scores sorted ascending, cut into groups
of tied scores, with the (weighted) count of positives and negatives in each.
The exact metric groups by distinct score; the mergeable binned estimate
(:class:`xebench.stats.discrimination.DiscriminationStats`) groups by fine
score bin and calls the same :func:`auc_from_groups` and :func:`ap_from_groups`,
so a binned value is exactly the metric of scores rounded to their bins.

    >>> roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    0.75
    >>> round(average_precision([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]), 4)
    0.8333
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .._validation import check_choice
from ..errors import UndefinedMetricWarning
from .blocks import ClassWeight, Labels, Predictions, prepare

__all__ = [
    "Average",
    "RankGroups",
    "ap_from_groups",
    "ap_group_bound",
    "auc_from_groups",
    "auc_group_bound",
    "auc_variance",
    "average_precision",
    "average_scores",
    "one_vs_rest",
    "rank_groups",
    "roc_auc",
]

#: How per-class (one-vs-rest) values are averaged: ``"macro"`` (the plain mean),
#: ``"weighted"`` (by each class's weight of rows) or None (one value per class).
Average = Literal["macro", "weighted"] | None


@dataclass(frozen=True)
class RankGroups:
    """Scores cut into ascending groups (distinct scores, or bins) with their class weight.

    Attributes:
        pos: weight of positives per group, ascending by score.
        neg: weight of negatives per group.
        inverse: each row's group (exact groups only; None for bins).

    Example:
        >>> g = rank_groups(np.array([0.3, 0.1, 0.3]), np.array([True, False, False]), None)
        >>> g.pos.tolist(), g.neg.tolist(), g.inverse.tolist()
        ([0.0, 1.0], [1.0, 1.0], [1, 0, 1])
    """

    pos: NDArray[np.float64]
    neg: NDArray[np.float64]
    inverse: NDArray[np.intp] | None = None


def rank_groups(
    score: NDArray[np.floating], positive: NDArray[np.bool_], weight: NDArray[np.float64] | None
) -> RankGroups:
    """Group rows by distinct score (ascending) and sum positives and negatives per group.

    ``np.unique`` sorts once; tied scores fall in one group, which is how
    both metrics treat ties (a tied positive-negative pair counts one half in
    the AUC; a tie is one threshold of the precision-recall curve).

    Example:
        >>> score, positive = np.array([0.2, 0.2, 0.9]), np.array([True, False, True])
        >>> g = rank_groups(score, positive, np.array([1.0, 2.0, 3.0]))
        >>> g.pos.tolist(), g.neg.tolist()
        ([1.0, 3.0], [2.0, 0.0])
    """
    _, inverse = np.unique(score, return_inverse=True)
    inverse = inverse.reshape(-1)
    n_groups = int(inverse.max()) + 1 if inverse.shape[0] else 0
    w = np.ones(score.shape[0]) if weight is None else weight
    pos = np.bincount(inverse, weights=np.where(positive, w, 0.0), minlength=n_groups)
    neg = np.bincount(inverse, weights=np.where(positive, 0.0, w), minlength=n_groups)
    return RankGroups(pos, neg, inverse)


def auc_from_groups(pos: NDArray[np.float64], neg: NDArray[np.float64]) -> float:
    """ROC AUC of ascending groups: ``sum_g pos_g (neg_below_g + neg_g / 2) / (P N)``.

    The Mann-Whitney form of the area under the ROC curve: the (weighted)
    share of positive-negative pairs ranked right, a tie counting one half --
    the trapezoid of scikit-learn's ``roc_auc_score``. NaN without positives
    or without negatives (there is no pair to rank).

    Example:
        >>> auc_from_groups(np.array([0.0, 1.0, 1.0]), np.array([1.0, 1.0, 0.0]))  # 3.5 / 4
        0.875
    """
    total_pos, total_neg = float(pos.sum()), float(neg.sum())
    if not (total_pos > 0.0 and total_neg > 0.0):
        return math.nan
    below = np.cumsum(neg) - neg
    return float(np.sum(pos * (below + 0.5 * neg))) / (total_pos * total_neg)


def auc_group_bound(pos: NDArray[np.float64], neg: NDArray[np.float64]) -> float:
    """Worst-case error of :func:`auc_from_groups` when a group holds different scores.

    Only pairs within one group can be ranked differently by the unrounded
    scores (each counts 1/2 here, and 0, 1/2 or 1 exactly), so
    ``|AUC_groups - AUC_exact| <= 0.5 * sum_g pos_g neg_g / (P N)``. Zero for
    exact groups (a group is one score); NaN where the AUC is undefined.

    Example:
        >>> auc_group_bound(np.array([1.0, 1.0]), np.array([1.0, 1.0]))
        0.25
    """
    total_pos, total_neg = float(pos.sum()), float(neg.sum())
    if not (total_pos > 0.0 and total_neg > 0.0):
        return math.nan
    return 0.5 * float(np.sum(pos * neg)) / (total_pos * total_neg)


def _ap_terms(
    pos: NDArray[np.float64], neg: NDArray[np.float64]
) -> tuple[float, NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Total positives and, per group, the positives and all rows at or above it."""
    tp = np.cumsum(pos[::-1])[::-1]  # positives scored at or above each group
    count = tp + np.cumsum(neg[::-1])[::-1]
    return float(pos.sum()), tp, count, pos


def ap_from_groups(pos: NDArray[np.float64], neg: NDArray[np.float64]) -> float:
    """Average precision of ascending groups: ``sum_g (pos_g / P) * precision_g``.

    ``precision_g`` is the precision of the threshold at group ``g`` (every
    row scored at or above it predicted positive); the sum is the step-wise
    area under the precision-recall curve of scikit-learn's
    ``average_precision_score`` (no interpolation). NaN without positives.

    Example:
        >>> round(ap_from_groups(np.array([0.0, 1.0, 1.0]), np.array([1.0, 1.0, 0.0])), 4)
        0.8333
    """
    total, tp, count, pos = _ap_terms(pos, neg)
    if not total > 0.0:
        return math.nan
    filled = pos > 0.0
    return float(np.sum(pos[filled] * tp[filled] / count[filled])) / total


def ap_group_bound(pos: NDArray[np.float64], neg: NDArray[np.float64]) -> float:
    """Worst-case error of :func:`ap_from_groups` when a group holds different scores.

    Within a group the exact precision-recall curve may order its rows in any
    way. A positive of group ``g`` then gets a precision between
    ``TP_above / (N_above + n_g)`` (every other row of the group first) and
    ``(TP_above + pos_g) / (N_above + pos_g)`` (the group's positives first),
    where ``TP_above`` and ``N_above`` count the groups above; the grouped
    precision lies in that interval, so the error is at most
    ``sum_g pos_g / P * (the larger distance to an end)``. Zero for exact groups.

    Example:
        >>> round(ap_group_bound(np.array([1.0]), np.array([1.0])), 4)  # AP is 1 or 1/2
        0.5
    """
    total, tp, count, pos = _ap_terms(pos, neg)
    if not total > 0.0:
        return math.nan
    filled = pos > 0.0
    n_g = count[filled] - np.concatenate([count[1:], [0.0]])[filled]
    tp_above, n_above = tp[filled] - pos[filled], count[filled] - n_g
    grouped = tp[filled] / count[filled]
    low = tp_above / (n_above + n_g)
    high = (tp_above + pos[filled]) / (n_above + pos[filled])
    spread = np.maximum(high - grouped, grouped - low)
    return float(np.sum(pos[filled] * spread)) / total


def auc_variance(
    groups: RankGroups, positive: NDArray[np.bool_], weight: NDArray[np.float64] | None
) -> tuple[float, NDArray[np.float64]]:
    """DeLong's variance of an exact AUC, and each row's share of it (its influence).

    DeLong, DeLong and Clarke-Pearson (1988): each positive's *placement*
    ``V10`` is the share of negatives ranked below it (ties one half), each
    negative's ``V01`` the share of positives ranked above it; the AUC is their
    mean and its variance ``S10 / m + S01 / n`` from their sample variances
    over the ``m`` positives and ``n`` negatives. With weights, placements and
    means are weighted and the variance is ``sum_i w_i^2 (V_i - AUC)^2 / W^2``
    on each side, with the same ``m / (m - 1)`` correction (so unit weights give
    DeLong's exactly). The returned influence ``phi_i`` (``sum phi_i^2`` is the
    variance) also gives covariances: two AUCs on the same rows (a paired
    comparison, one-vs-rest classes) covary by ``sum_i phi_i psi_i``.

    Example:
        >>> y = np.array([False, False, True, True])
        >>> g = rank_groups(np.array([0.1, 0.4, 0.35, 0.8]), y, None)
        >>> variance, phi = auc_variance(g, y, None)
        >>> round(variance, 6), round(float(np.sum(phi**2)), 6)  # S10 / 2 + S01 / 2
        (0.125, 0.125)
    """
    pos, neg, inverse = groups.pos, groups.neg, groups.inverse
    assert inverse is not None  # exact groups: every row has its group
    total_pos, total_neg = float(pos.sum()), float(neg.sum())
    n_rows = positive.shape[0]
    if not (total_pos > 0.0 and total_neg > 0.0):
        return math.nan, np.full(n_rows, math.nan)
    auc = auc_from_groups(pos, neg)
    v10 = (np.cumsum(neg) - 0.5 * neg) / total_neg  # per group: negatives below, ties 1/2
    v01 = (np.cumsum(pos[::-1])[::-1] - 0.5 * pos) / total_pos  # positives above
    w = np.ones(n_rows) if weight is None else weight
    counted = w > 0.0
    m = int(np.count_nonzero(positive & counted))
    n = int(np.count_nonzero(~positive & counted))
    phi = np.where(
        positive,
        w * (v10[inverse] - auc) / total_pos * math.sqrt(m / (m - 1) if m > 1 else 0.0),
        w * (v01[inverse] - auc) / total_neg * math.sqrt(n / (n - 1) if n > 1 else 0.0),
    )
    return float(np.sum(phi**2)), phi


def one_vs_rest(pred: Predictions) -> list[tuple[NDArray[np.floating], NDArray[np.bool_]]]:
    """(score, positive) per class: P(class 1) vs class 1 when binary, else column c vs class c.

    Example:
        >>> pred = prepare([2, 0], [[0.2, 0.3, 0.5], [0.6, 0.3, 0.1]], None, None, False)
        >>> [(s.tolist(), y.tolist()) for s, y in one_vs_rest(pred)][2]
        ([0.5, 0.1], [True, False])
    """
    if pred.binary:
        return [(pred.prob, pred.codes == 1)]
    return [(pred.prob[:, c], pred.codes == c) for c in range(pred.prob.shape[1])]


def average_scores(
    values: NDArray[np.float64], support: NDArray[np.float64], average: Average
) -> float | NDArray[np.float64]:
    """Average one-vs-rest values: the mean (``macro``), by support (``weighted``), or all.

    NaN when a class's value is NaN (a class without rows, or every row of it):
    an average that silently left a class out would not be comparable.

    Example:
        >>> average_scores(np.array([0.5, 1.0]), np.array([3.0, 1.0]), "weighted")
        0.625
    """
    if average is None:
        return values
    if np.isnan(values).any():
        return math.nan
    if average == "macro":
        return float(np.mean(values))
    return float(np.sum(values * support) / np.sum(support))


def _discrimination(
    name: str,
    finish: Any,
    y_true: ArrayLike,
    y_prob: ArrayLike,
    labels: Labels,
    sample_weight: ArrayLike | None,
    class_weight: ClassWeight,
    average: Average,
    renormalize: bool,
) -> float | NDArray[np.float64]:
    if average is not None:
        check_choice("average", average, ("macro", "weighted"))
    pred = prepare(y_true, y_prob, labels, sample_weight, renormalize, class_weight)
    values, support, why = [], [], []
    classes = pred.classes.tolist()
    for c, (score, positive) in enumerate(one_vs_rest(pred)):
        groups = rank_groups(score, positive, pred.weight)
        values.append(finish(groups.pos, groups.neg))
        support.append(float(groups.pos.sum()))
        label = classes[1] if pred.binary else classes[c]
        if not groups.pos.sum() > 0.0:
            why.append(f"no row is of class {label!r}")
        elif name == "roc_auc" and not groups.neg.sum() > 0.0:
            why.append(f"every row is of class {label!r}")
    array = np.array(values)
    if why:  # say so: a NaN in a report should not be a mystery
        needs = "positives and negatives" if name == "roc_auc" else "a positive"
        warnings.warn(
            UndefinedMetricWarning(
                f"{name} is undefined (NaN): it needs {needs}; {', '.join(why)}"
            ),
            stacklevel=3,
        )
    if pred.binary:
        return float(array[0])
    return average_scores(array, np.array(support), average)


def roc_auc(
    y_true: ArrayLike,
    y_prob: ArrayLike,
    *,
    labels: Labels = None,
    sample_weight: ArrayLike | None = None,
    class_weight: ClassWeight = None,
    average: Average = "macro",
    renormalize: bool = False,
) -> float | NDArray[np.float64]:
    """Area under the ROC curve: the chance a positive is scored above a negative.

    Binary: the share of (positive, negative) pairs whose positive has the
    higher P(class 1), ties counting one half (weighted pairs with
    ``sample_weight``). 1 ranks perfectly, 0.5 is chance; higher is better.
    Multiclass: one-vs-rest, class ``c`` scored by column ``c`` against every
    other class, averaged by ``average`` (``"macro"``, ``"weighted"`` by class
    weight, or None for the per-class array), as scikit-learn's
    ``roc_auc_score(multi_class="ovr")``. Undefined when a class it scores has
    no positive or no negative: NaN with an :class:`~xebench.errors.UndefinedMetricWarning`.
    A class weight scales a class's pairs alike, so it leaves a binary AUC
    (and each one-vs-rest AUC) unchanged; it changes only the ``weighted`` average.

    Example:
        >>> roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
        0.75
        >>> y = ["cat", "dog", "fox", "dog"]
        >>> probs = [[0.6, 0.3, 0.1], [0.2, 0.7, 0.1], [0.1, 0.2, 0.7], [0.3, 0.4, 0.3]]
        >>> roc_auc(y, probs, labels=["cat", "dog", "fox"])
        1.0
    """
    return _discrimination(
        "roc_auc", auc_from_groups, y_true, y_prob, labels, sample_weight, class_weight,
        average, renormalize,
    )  # fmt: skip


def average_precision(
    y_true: ArrayLike,
    y_prob: ArrayLike,
    *,
    labels: Labels = None,
    sample_weight: ArrayLike | None = None,
    class_weight: ClassWeight = None,
    average: Average = "macro",
    renormalize: bool = False,
) -> float | NDArray[np.float64]:
    """Average precision: the precision at each positive, averaged (area under the PR curve).

    ``sum_t (R_t - R_{t-1}) P_t`` over the score thresholds from the top, as
    scikit-learn's ``average_precision_score`` (step-wise, no interpolation;
    tied scores are one threshold). Its chance level is the positive rate, so
    unlike the AUC it shows how a rare class fares; higher is better.
    Multiclass: one-vs-rest averaged like :func:`roc_auc`. NaN with an
    :class:`~xebench.errors.UndefinedMetricWarning` when a class it scores has
    no positive. ``class_weight`` reweighs the positives against the
    negatives, so it changes precisions: ``"balanced"`` reports AP as if both
    classes were equally common.

    Example:
        >>> round(average_precision([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]), 4)  # (1 + 2/3) / 2
        0.8333
    """
    return _discrimination(
        "average_precision", ap_from_groups, y_true, y_prob, labels, sample_weight, class_weight,
        average, renormalize,
    )  # fmt: skip
