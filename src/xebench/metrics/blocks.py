"""The kernel's building blocks: validated predictions and per-row sums over clean arrays.

Every metric family (:mod:`~xebench.metrics.classification`,
:mod:`~xebench.metrics.calibration`, :mod:`~xebench.metrics.information`) and
the mergeable statistics compute with these, so that a number is defined once.
The public metric validates its input with :func:`prepare` and calls them;
callers that already hold a :class:`Predictions` (the statistics, chunk by
chunk) call them directly and skip the validation.

    >>> pred = prepare([1, 0], [0.9, 0.2], None, None, False)
    >>> nll_nats(pred).round(4).tolist(), brier_per_row(pred).round(4).tolist()
    ([0.1054, 0.2231], [0.01, 0.04])
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .._validation import (
    check_probabilities,
    check_same_length,
    check_sample_weight,
    encode_labels,
    row_chunks,
)
from ..errors import InvalidInputError

__all__ = [
    "DEFAULT_EPS",
    "ClassWeight",
    "Labels",
    "Predictions",
    "brier_per_row",
    "class_frequencies",
    "class_loss_table",
    "class_weight_vector",
    "dot",
    "entropy_nats",
    "float_or_array",
    "nll_nats",
    "prepare",
    "top_label",
    "top_label_hit",
    "true_class_prob_into",
    "weighted_mean",
]

#: What ``labels=`` accepts: the class list, or None for the sorted unique labels.
Labels = Sequence[Hashable] | ArrayLike | None

#: What ``class_weight=`` accepts: a weight per label (absent labels weigh 1), or
#: ``"balanced"``, ``n_samples / (n_classes * count_c)`` as scikit-learn's
#: ``compute_class_weight``; None weighs every class 1.
ClassWeight = Mapping[Hashable, float] | Literal["balanced"] | None

#: Probabilities are clipped to ``[eps, 1 - eps]``: a confident miss costs at most 34.5 nats.
DEFAULT_EPS = 1e-15


@dataclass(frozen=True)
class Predictions:
    """Validated predictions: class index per row, probabilities, weights.

    Built by :func:`prepare`; two probability columns are stored as the
    binary case (``prob`` is P(class 1), ``prob_class0`` keeps column 0).

    Example:
        >>> pred = prepare(["b", "a", "c"], [[0.2, 0.7, 0.1]] * 3, None, None, False)
        >>> pred.codes.tolist(), pred.classes.tolist(), pred.binary, pred.n_columns
        ([1, 0, 2], ['a', 'b', 'c'], False, 3)
    """

    codes: NDArray[np.intp]
    """Index of the true class of each row into ``classes``."""
    prob: NDArray[np.floating]
    """(n,) P(classes[1]) in the binary case, else (n, k) rows."""
    classes: NDArray[Any]
    weight: NDArray[np.float64] | None
    prob_class0: NDArray[np.floating] | None = None
    """P(classes[0]) when given as its own column: ``1 - p`` would lose the
    precision of a small P(class 0) next to a P(class 1) close to 1."""

    @property
    def binary(self) -> bool:
        """Whether ``prob`` is one column of P(class 1)."""
        return self.prob.ndim == 1

    @property
    def n_rows(self) -> int:
        """Number of rows."""
        return int(self.prob.shape[0])

    @property
    def n_columns(self) -> int:
        """Probability columns per row (1 in the binary case)."""
        return 1 if self.binary else int(self.prob.shape[1])


def class_weight_vector(
    class_weight: ClassWeight, codes: NDArray[np.intp], classes: NDArray[Any]
) -> NDArray[np.float64] | None:
    """One weight per class (in the order of ``classes``) from ``class_weight``.

    ``"balanced"`` is ``n_samples / (n_classes * count_c)`` over the rows'
    classes (row counts, as scikit-learn's ``compute_class_weight``, whatever
    the sample weights; ``n_classes`` counts the classes present). A mapping
    gives each label its weight, labels it does not name weigh 1; a key that
    is no class is refused rather than silently ignored. Keys that are not
    labels but spell one (``"1"`` for the label 1, as a command line or a
    JSON object writes it) name that label.

    Example:
        >>> codes, classes = np.array([0, 0, 0, 1]), np.array([0, 1])
        >>> class_weight_vector("balanced", codes, classes).tolist()
        [0.6666666666666666, 2.0]
        >>> class_weight_vector({1: 99}, codes, classes).tolist()
        [1.0, 99.0]
        >>> class_weight_vector(None, codes, classes) is None
        True
    """
    if class_weight is None:
        return None
    n_classes = classes.shape[0]
    if isinstance(class_weight, str):
        if class_weight != "balanced":
            raise InvalidInputError(
                "class_weight", "must be a mapping of label to weight or 'balanced'",
                value=class_weight,
            )  # fmt: skip
        counts = np.bincount(codes, minlength=n_classes).astype(np.float64)
        present = counts > 0
        vector = np.ones(n_classes)
        vector[present] = codes.shape[0] / (np.count_nonzero(present) * counts[present])
        return vector
    if not isinstance(class_weight, Mapping):
        raise InvalidInputError(
            "class_weight", "must be a mapping of label to weight or 'balanced'",
            value=class_weight,
        )  # fmt: skip
    labels = classes.tolist()
    spelled = {str(label): index for index, label in enumerate(labels)}
    vector = np.ones(n_classes)
    for key, value in class_weight.items():
        index = labels.index(key) if key in labels else spelled.get(str(key))
        if index is None:
            raise InvalidInputError(
                "class_weight", f"names a label that is no class (classes: {labels})", value=key
            )
        is_number = isinstance(value, (int, float, np.integer, np.floating))
        if isinstance(value, bool) or not is_number or not (math.isfinite(value) and value >= 0):
            raise InvalidInputError(
                "class_weight", f"weights must be finite numbers >= 0 (label {key!r})",
                value=value,
            )  # fmt: skip
        vector[index] = float(value)
    return vector


def prepare(
    y_true: ArrayLike,
    y_prob: ArrayLike,
    labels: Labels,
    sample_weight: ArrayLike | None,
    renormalize: bool,
    class_weight: ClassWeight = None,
) -> Predictions:
    """Validate labels, probabilities and weights into :class:`Predictions`.

    ``class_weight`` (see :func:`class_weight_vector`) becomes row weights:
    each row's sample weight (1 without one) times its class's weight, so a
    class-weighted metric is the sample-weighted one, defined once.

    Raises :class:`~xebench.errors.InvalidInputError` (a ``ValueError``) naming
    the argument, the rule, the first bad row and its value.

    Example:
        >>> pred = prepare([0, 1, 1], [[0.8, 0.2], [0.3, 0.7], [0.5, 0.5]], None, [1, 2, 1], False)
        >>> pred.binary, pred.prob.tolist(), pred.prob_class0.tolist(), pred.weight.tolist()
        (True, [0.2, 0.7, 0.5], [0.8, 0.3, 0.5], [1.0, 2.0, 1.0])
        >>> prepare([1, 0], [0.5, 1.5], None, None, False)
        Traceback (most recent call last):
        ...
        xebench.errors.InvalidInputError: y_prob: probabilities must be in [0, 1]; row 2 is 1.5
    """
    prob = check_probabilities(y_prob, renormalize=renormalize)
    n_classes = 2 if prob.ndim == 1 else int(prob.shape[1])
    codes, classes = encode_labels(y_true, labels, n_classes)
    check_same_length("y_prob", prob.shape[0], "y_true", codes.shape[0])
    weight = check_sample_weight(sample_weight, codes.shape[0])
    per_class = class_weight_vector(class_weight, codes, classes)
    if per_class is not None:
        weight = per_class[codes] if weight is None else weight * per_class[codes]
        if not weight.sum() > 0.0:
            raise InvalidInputError("class_weight", "weighs every row 0; one must be > 0")
    if prob.ndim == 2 and n_classes == 2:  # two columns are the binary case
        return Predictions(
            codes,
            np.ascontiguousarray(prob[:, 1]),
            classes,
            weight,
            prob_class0=np.ascontiguousarray(prob[:, 0]),
        )
    return Predictions(codes, prob, classes, weight)


def true_class_prob_into(
    out: NDArray[np.float64], pred: Predictions, rows: slice
) -> NDArray[np.float64]:
    """Write the probability given to the observed class of ``rows`` into ``out``.

    Example:
        >>> pred = prepare([1, 0, 1], [0.9, 0.2, 0.4], None, None, False)
        >>> true_class_prob_into(np.empty(2), pred, slice(1, 3)).round(4).tolist()
        [0.8, 0.4]
    """
    codes, prob = pred.codes[rows], pred.prob[rows]
    if prob.ndim == 2:
        out[:] = prob[np.arange(codes.shape[0]), codes]
    elif pred.prob_class0 is not None:
        out[:] = pred.prob_class0[rows]
        np.copyto(out, prob, where=codes == 1)
    else:
        out[:] = prob  # cast to float64 first, so 1 - p keeps its precision
        np.subtract(1.0, out, out=out, where=codes != 1)
    return out


def nll_nats(pred: Predictions, eps: float = DEFAULT_EPS) -> NDArray[np.float64]:
    """Per-row negative log-likelihood in nats: ``-ln(clip(p[true class], eps, 1 - eps))``.

    Example:
        >>> pred = prepare([1, 0], [0.5, 1.0], None, None, False)
        >>> nll_nats(pred, 1e-3).round(4).tolist()
        [0.6931, 6.9078]
    """
    out = np.empty(pred.n_rows)
    for rows in row_chunks(pred.n_rows, pred.n_columns):
        chunk = true_class_prob_into(out[rows], pred, rows)
        np.clip(chunk, eps, 1.0 - eps, out=chunk)
        with np.errstate(divide="ignore"):  # eps=0 and p=0: an honest +inf
            np.log(chunk, out=chunk)
        np.negative(chunk, out=chunk)
    return out


def brier_per_row(pred: Predictions) -> NDArray[np.float64]:
    """Per-row Brier score: (1 - p_true)^2, plus the squares of the other classes.

    Binary: (p - y)^2. Multiclass: sum_j (p_j - [j == y])^2, summed over the
    classes without the cancellation of ``sum p^2 - 2 p_y + 1``.

    Example:
        >>> brier_per_row(prepare([1, 0], [0.9, 0.2], None, None, False)).round(4).tolist()
        [0.01, 0.04]
        >>> pred = prepare([2], [[0.2, 0.3, 0.5]], None, None, False)
        >>> brier_per_row(pred).round(4).tolist()  # 0.2^2 + 0.3^2 + 0.5^2
        [0.38]
    """
    out = np.empty(pred.n_rows)
    for rows in row_chunks(pred.n_rows, pred.n_columns):
        chunk = out[rows]
        if pred.binary:
            np.subtract(pred.prob[rows], pred.codes[rows], out=chunk, dtype=np.float64)
            np.square(chunk, out=chunk)
            continue
        true_class_prob_into(chunk, pred, rows)
        np.subtract(1.0, chunk, out=chunk)
        np.square(chunk, out=chunk)
        others = pred.prob[rows].astype(np.float64)
        others[np.arange(others.shape[0]), pred.codes[rows]] = 0.0
        chunk += np.einsum("ij,ij->i", others, others)
    return out


def dot(a: NDArray[Any], b: NDArray[Any]) -> float:
    """Sum of products of two vectors.

    ``np.einsum`` rather than ``np.dot``: BLAS may hand a long vector to a
    second thread, which stalls for milliseconds when the other core is busy
    (measured: 8 ms instead of 0.01 ms for 1e5 values under load).

    Example:
        >>> dot(np.array([1.0, 2.0]), np.array([3.0, 4.0]))
        11.0
    """
    return float(np.einsum("i,i->", a, b))


def weighted_mean(values: NDArray[np.floating], weight: NDArray[np.float64] | None) -> float:
    """Mean of ``values``, weighted by ``weight`` when given.

    Example:
        >>> values = np.array([1.0, 4.0])
        >>> weighted_mean(values, None), weighted_mean(values, np.array([2.0, 1.0]))
        (2.5, 2.0)
    """
    if weight is None:
        return float(np.mean(values))
    return dot(weight, values) / float(weight.sum())


def class_loss_table(
    classes: Sequence[Hashable],
    weight: NDArray[np.float64],
    nll_sum: NDArray[np.float64],
    divisor: float = 1.0,
) -> dict[Any, dict[str, float]]:
    """Per true class: mean NLL (``log_loss``, in nats / ``divisor``), ``weight`` and ``share``.

    From each class's total weight and weighted NLL sum: ``log_loss_c =
    nll_sum_c / weight_c`` (NaN for a class without rows) and ``share_c =
    nll_sum_c / sum(nll_sum)``. :func:`xebench.metrics.per_class_log_loss`
    and the benchmark's ``per_class`` both finish here.

    Example:
        >>> table = class_loss_table([0, 1], np.array([99.0, 1.0]), np.array([9.9, 2.3]))
        >>> {c: (round(v["log_loss"], 2), round(v["share"], 3)) for c, v in table.items()}
        {0: (0.1, 0.811), 1: (2.3, 0.189)}
    """
    grand = float(np.sum(nll_sum))
    out: dict[Any, dict[str, float]] = {}
    weights, sums = np.asarray(weight).tolist(), np.asarray(nll_sum).tolist()
    for label, w, s in zip(classes, weights, sums, strict=True):
        out[label] = {
            "log_loss": s / w / divisor if w > 0 else math.nan,
            "weight": w,
            "share": s / grand if grand > 0 else 0.0,
        }
    return out


def class_frequencies(
    codes: NDArray[np.intp], n_classes: int, weight: NDArray[np.float64] | None
) -> NDArray[np.float64]:
    """(Weighted) frequency of each class index, over ``n_classes`` classes.

    Example:
        >>> class_frequencies(np.array([0, 2, 2, 2]), 3, None).tolist()
        [0.25, 0.0, 0.75]
    """
    counts = np.bincount(codes, weights=weight, minlength=n_classes).astype(np.float64)
    return counts / counts.sum()


def entropy_nats(dist: NDArray[np.float64]) -> NDArray[np.float64]:
    """Shannon entropy in nats of each distribution (last axis), 0 ln 0 = 0.

    Example:
        >>> entropy_nats(np.array([[0.5, 0.5], [1.0, 0.0]])).round(4).tolist()
        [0.6931, 0.0]
    """
    from scipy.special import entr  # here: `import xebench` stays fast

    return np.sum(entr(dist), axis=-1)


def top_label(
    codes: NDArray[np.intp], prob: NDArray[np.floating]
) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """Top-label confidence and whether the top label was right, per row.

    The binary top label is class 1 when P(class 1) > 0.5 (ties go to class
    0, as ``argmax`` of ``[1 - p, p]`` does).

    Example:
        >>> confidence, hit = top_label(np.array([1, 1, 0]), np.array([0.9, 0.3, 0.5]))
        >>> confidence.tolist(), hit.tolist()
        ([0.9, 0.7, 0.5], [True, False, True])
    """
    if prob.ndim == 1:
        p = prob.astype(np.float64, copy=False)
        return np.where(p > 0.5, p, 1.0 - p), top_label_hit(codes, prob)
    confidence = prob.max(axis=1).astype(np.float64, copy=False)
    return confidence, top_label_hit(codes, prob)


def top_label_hit(codes: NDArray[np.intp], prob: NDArray[np.floating]) -> NDArray[np.bool_]:
    """Whether the top label (see :func:`top_label`) is the observed class, per row.

    Example:
        >>> top_label_hit(np.array([2, 0]), np.array([[0.1, 0.2, 0.7], [0.3, 0.6, 0.1]])).tolist()
        [True, False]
    """
    if prob.ndim == 1:
        return (prob > 0.5) == (codes == 1)
    return prob.argmax(axis=1) == codes


def float_or_array(values: NDArray[np.float64]) -> float | NDArray[np.float64]:
    """A 0-d result as a Python ``float``, anything else as it is.

    Example:
        >>> float_or_array(np.array(0.5)), float_or_array(np.array([0.5]))
        (0.5, array([0.5]))
    """
    return float(values) if values.ndim == 0 else values
