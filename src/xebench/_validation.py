"""The one input-validation helper of xebench.

Every public function validates here and computes on clean arrays elsewhere
(the scikit-learn split between a public and a private function). Every error
has one shape -- argument, rule, first offending row, value -- and is an
:class:`~xebench.errors.InvalidInputError` (a ``ValueError``).

Checks are written to be cheap on the happy path: a range check is one
``min`` and one ``max`` (NaN propagates through both, so it is caught too);
the row-by-row search for the first offender runs only once something failed.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .errors import InvalidInputError

#: Tolerance on multiclass row sums (widened to k machine epsilons for float32).
ROW_SUM_TOLERANCE = 1e-6

#: Elements per chunk for row-wise passes: small enough to stay in cache,
#: large enough that the Python loop costs nothing measurable.
CHUNK_ELEMENTS = 1 << 16

_STRATEGIES = ("uniform", "quantile")
_NORMS = ("l1", "max")


def row_chunks(n_rows: int, n_cols: int = 1) -> list[slice]:
    """Split ``n_rows`` rows of ``n_cols`` values into cache-sized slices.

    Example:
        >>> row_chunks(5, 1 << 15)
        [slice(0, 2, None), slice(2, 4, None), slice(4, 5, None)]
    """
    step = max(1, CHUNK_ELEMENTS // max(1, n_cols))
    return [slice(start, min(start + step, n_rows)) for start in range(0, n_rows, step)]


def _first_true(mask: NDArray[np.bool_]) -> int:
    return int(np.argmax(mask))


# --- scalar parameters ------------------------------------------------------


def log_of_base(base: object) -> float:
    """Return ln(base) for a log base of ``"e"``, 2 or 10 (divide nats by it).

    Example:
        >>> log_of_base("e"), round(log_of_base(2), 6)
        (1.0, 0.693147)
    """
    if isinstance(base, str) and base == "e":
        return 1.0
    is_number = isinstance(base, (int, float, np.integer, np.floating))
    if is_number and not isinstance(base, bool) and base in (2, 10):
        return math.log(base)
    raise InvalidInputError("base", "must be 'e', 2 or 10", value=base)


def check_eps(eps: object) -> float:
    """Validate the clipping epsilon: a number in [0, 0.5).

    Example:
        >>> check_eps(1e-15)
        1e-15
    """
    if isinstance(eps, bool) or not isinstance(eps, (int, float, np.integer, np.floating)):
        raise InvalidInputError("eps", "must be a number in [0, 0.5)", value=eps)
    if not 0.0 <= float(eps) < 0.5:
        raise InvalidInputError("eps", "must be in [0, 0.5)", value=eps)
    return float(eps)


def check_n_bins(n_bins: object) -> int:
    """Validate a bin count: an integer >= 1.

    Example:
        >>> check_n_bins(15)
        15
    """
    if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) or n_bins < 1:
        raise InvalidInputError("n_bins", "must be an integer >= 1", value=n_bins)
    return int(n_bins)


def check_choice(argument: str, value: object, choices: Sequence[str]) -> str:
    """Validate that ``value`` is one of ``choices``.

    Example:
        >>> check_choice("strategy", "uniform", ("uniform", "quantile"))
        'uniform'
    """
    if not isinstance(value, str) or value not in choices:
        allowed = ", ".join(repr(c) for c in choices)
        raise InvalidInputError(argument, f"must be one of {allowed}", value=value)
    return value


def check_strategy(strategy: object) -> str:
    """Validate a binning strategy (``"uniform"`` or ``"quantile"``)."""
    return check_choice("strategy", strategy, _STRATEGIES)


def check_norm(norm: object) -> str:
    """Validate a calibration-error norm (``"l1"`` or ``"max"``)."""
    return check_choice("norm", norm, _NORMS)


def check_smoothing(smoothing: object) -> float:
    """Validate an additive smoothing constant: a finite number >= 0.

    Example:
        >>> check_smoothing(0)
        0.0
    """
    if isinstance(smoothing, bool) or not isinstance(
        smoothing, (int, float, np.integer, np.floating)
    ):
        raise InvalidInputError("smoothing", "must be a number >= 0", value=smoothing)
    if not (math.isfinite(smoothing) and smoothing >= 0):
        raise InvalidInputError("smoothing", "must be a finite number >= 0", value=smoothing)
    return float(smoothing)


# --- arrays -----------------------------------------------------------------


def _as_float_array(values: ArrayLike, argument: str) -> NDArray[np.floating]:
    """NumPy array of float32/float64 without copying when it already is one."""
    try:
        array = np.asarray(values)
    except ValueError as exc:  # ragged nested lists
        raise InvalidInputError(
            argument, f"must be a rectangular array of numbers ({exc})"
        ) from None
    if array.dtype in (np.float32, np.float64):
        return array
    if array.dtype.kind in "biuf":
        return array.astype(np.float64)
    try:
        return array.astype(np.float64)
    except (TypeError, ValueError):
        flat = array.reshape(-1)
        for position, item in enumerate(flat.tolist()):
            try:
                float(item)
            except (TypeError, ValueError):
                row = position // (array.shape[1] if array.ndim == 2 else 1)
                raise InvalidInputError(
                    argument, "must be numbers", index=row, value=item
                ) from None
        raise InvalidInputError(argument, "must be numbers", value=str(array.dtype)) from None


def _check_non_empty(argument: str, n_rows: int) -> None:
    if n_rows == 0:
        raise InvalidInputError(argument, "is empty (0 rows); at least one row is needed")


def check_probabilities(
    y_prob: ArrayLike, *, argument: str = "y_prob", renormalize: bool = False
) -> NDArray[np.floating]:
    """Validate predicted probabilities: 1-D P(class 1) or (n, k) rows.

    Values must be finite and in [0, 1]; rows of a 2-D array must sum to 1
    within 1e-6 (or ``k`` float32 epsilons for float32 input), unless
    ``renormalize=True``, which divides each row by its sum. float32 and
    float64 arrays are returned without a copy.

    Example:
        >>> check_probabilities([[0.2, 0.8], [0.5, 0.5]]).shape
        (2, 2)
        >>> check_probabilities([0.3, 1.2])
        Traceback (most recent call last):
        ...
        xebench.errors.InvalidInputError: y_prob: probabilities must be in [0, 1]; row 2 is 1.2
    """
    prob = _as_float_array(y_prob, argument)
    if prob.ndim not in (1, 2):
        raise InvalidInputError(
            argument,
            "must be 1-D (P(class 1) per row) or 2-D (one column per class)",
            value=f"{prob.ndim}-D array of shape {prob.shape}",
        )
    _check_non_empty(argument, prob.shape[0])
    if prob.ndim == 2 and prob.shape[1] < 2:
        raise InvalidInputError(
            argument, "a 2-D array needs at least 2 columns (one per class)", value=prob.shape
        )
    if prob.ndim == 1:
        if not (prob.min() >= 0.0 and prob.max() <= 1.0):  # NaN fails too
            _raise_first_bad_probability(prob, argument)
        return prob
    low, high, sums = _range_and_row_sums(prob)
    if not (low >= 0.0 and high <= 1.0):
        _raise_first_bad_probability(prob, argument)
    return _check_row_sums(prob, sums, argument, renormalize)


def _range_and_row_sums(prob: NDArray[np.floating]) -> tuple[float, float, NDArray[np.float64]]:
    """Min, max and float64 row sums of a 2-D array in one cache-friendly pass.

    One pass over cache-sized chunks instead of three over the whole array
    halves the cost of validating a large (n, k) input; row sums use a
    matrix-vector product (BLAS) rather than a row-wise reduction.
    """
    n_rows, n_cols = prob.shape
    ones = np.ones(n_cols)
    sums = np.empty(n_rows)
    low, high = np.inf, -np.inf
    for rows in row_chunks(n_rows, n_cols):
        chunk = prob[rows]
        low = np.minimum(low, chunk.min())  # np.minimum keeps a NaN; min() would drop it
        high = np.maximum(high, chunk.max())
        np.matmul(chunk.astype(np.float64, copy=False), ones, out=sums[rows])
    return float(low), float(high), sums


def check_probability_rows(
    values: ArrayLike, argument: str, *, renormalize: bool = False
) -> NDArray[np.floating]:
    """Validate distributions given as rows; a 1-D array is a single row.

    Example:
        >>> check_probability_rows([0.25, 0.75], "p_true")
        array([[0.25, 0.75]])
    """
    array = _as_float_array(values, argument)
    if array.ndim == 1:
        array = array[np.newaxis, :]
    return check_probabilities(array, argument=argument, renormalize=renormalize)


def _raise_first_bad_probability(prob: NDArray[np.floating], argument: str) -> None:
    bad = ~((prob >= 0.0) & (prob <= 1.0))  # NaN compares False both ways
    if prob.ndim == 1:
        row, column = _first_true(bad), None
        value = prob[row]
    else:
        row = _first_true(bad.any(axis=1))
        column = _first_true(bad[row])
        value = prob[row, column]
    rule = (
        "probabilities must be finite (NaN and infinity are not probabilities)"
        if not np.isfinite(value)
        else "probabilities must be in [0, 1]"
    )
    where = None if column is None else f"column {column}"
    raise InvalidInputError(argument, rule, index=row, value=value, where=where)


def _check_row_sums(
    prob: NDArray[np.floating], sums: NDArray[np.float64], argument: str, renormalize: bool
) -> NDArray[np.floating]:
    tolerance = max(ROW_SUM_TOLERANCE, prob.shape[1] * float(np.finfo(prob.dtype).eps))
    if renormalize:
        if not sums.min() > 0.0:
            row = _first_true(~(sums > 0.0))
            raise InvalidInputError(
                argument, "a row summing to 0 cannot be renormalized", index=row, value=sums[row]
            )
        return prob / sums[:, np.newaxis]
    off = ~(np.abs(sums - 1.0) <= tolerance)  # a NaN sum is off too
    if off.any():
        row = _first_true(off)
        raise InvalidInputError(
            argument,
            f"rows must sum to 1 within {tolerance:g} (pass renormalize=True to rescale them)",
            index=row,
            value=sums[row],
            where="sum",
        )
    return prob


def check_1d(values: ArrayLike, argument: str) -> NDArray[Any]:
    """A non-empty 1-D array (an (n, 1) column is accepted and flattened).

    Example:
        >>> check_1d([[1], [0]], "y_true")
        array([1, 0])
    """
    try:
        array = np.asarray(values)
    except ValueError as exc:  # ragged nested lists
        raise InvalidInputError(argument, f"must be 1-D (one value per row) ({exc})") from None
    if array.dtype.kind == "U" and not isinstance(values, np.ndarray):
        # NumPy turns [1, "a"] into ["1", "a"]: refuse instead of comparing "10" < "9".
        flat = values if isinstance(values, (list, tuple)) else []
        row = next((i for i, v in enumerate(flat) if not isinstance(v, str)), None)
        if row is not None:
            raise InvalidInputError(
                argument,
                "labels must be of one type (strings mixed with numbers)",
                index=row,
                value=flat[row],
            )
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise InvalidInputError(
            argument, "must be 1-D (one value per row)", value=f"shape {array.shape}"
        )
    _check_non_empty(argument, array.shape[0])
    return array


def check_same_length(argument: str, n_rows: int, reference: str, n_reference: int) -> None:
    """Raise when ``argument`` has a different number of rows than ``reference``.

    Example:
        >>> check_same_length("y_prob", 3, "y_true", 4)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        xebench.errors.InvalidInputError: y_prob: must have one row per row of y_true ...; got 3
    """
    if n_rows != n_reference:
        raise InvalidInputError(
            argument, f"must have one row per row of {reference} ({n_reference} rows)", value=n_rows
        )


def check_sample_weight(sample_weight: ArrayLike | None, n_rows: int) -> NDArray[np.float64] | None:
    """Validate sample weights: finite, >= 0, one per row, not all zero.

    Example:
        >>> check_sample_weight([1, 2], 2)
        array([1., 2.])
        >>> check_sample_weight([1, -2], 2)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        xebench.errors.InvalidInputError: sample_weight: weights must be ...; row 2 is -2.0
    """
    if sample_weight is None:
        return None
    weight = _as_float_array(sample_weight, "sample_weight").astype(np.float64, copy=False)
    if weight.ndim != 1:
        raise InvalidInputError(
            "sample_weight", "must be 1-D (one weight per row)", value=f"shape {weight.shape}"
        )
    check_same_length("sample_weight", weight.shape[0], "y_true", n_rows)
    if not weight.min() >= 0.0 or not np.isfinite(weight.max()):
        row = _first_true(~((weight >= 0.0) & np.isfinite(weight)))
        raise InvalidInputError(
            "sample_weight", "weights must be finite and >= 0", index=row, value=weight[row]
        )
    if not weight.sum() > 0.0:
        raise InvalidInputError("sample_weight", "weights sum to 0; at least one must be > 0")
    return weight


def _integral_codes(y: NDArray[Any], n_classes: int) -> NDArray[np.intp] | None:
    """``y`` as class indices when it holds integers in [0, n_classes), else None."""
    if y.dtype.kind not in "biuf":
        return None
    if y.dtype.kind == "b":
        return y.astype(np.intp) if n_classes >= 2 else None
    low, high = y.min(), y.max()
    if not (low >= 0 and high <= n_classes - 1):  # NaN fails here too
        return None
    if y.dtype.kind in "iu":
        return y if y.dtype == np.intp else y.astype(np.intp)
    codes = y.astype(np.intp)
    return codes if np.array_equal(codes, y) else None


def _unique(y: NDArray[Any], argument: str) -> tuple[NDArray[Any], NDArray[np.intp]]:
    try:
        return np.unique(y, return_inverse=True)
    except TypeError as exc:  # e.g. ints mixed with strings in an object array
        raise InvalidInputError(
            argument, f"labels must be of one comparable type ({exc})"
        ) from None


def encode_labels(
    y_true: ArrayLike,
    labels: Sequence[Hashable] | ArrayLike | None,
    n_classes: int | None,
    *,
    argument: str = "y_true",
) -> tuple[NDArray[np.intp], NDArray[Any]]:
    """Map labels of any hashable type to class indices 0..k-1.

    Returns ``(codes, classes)`` where ``classes[codes[i]] == y_true[i]``.
    Without ``labels``, the classes are 0..k-1 when ``y_true`` holds integers
    (or bools) in that range, else the sorted unique labels, which must then
    number ``n_classes`` (when given).

    Example:
        >>> codes, classes = encode_labels(["b", "a", "b"], None, 2)
        >>> codes.tolist(), classes.tolist()
        ([1, 0, 1], ['a', 'b'])
        >>> encode_labels(["b", "c"], ["a", "b"], 2)
        Traceback (most recent call last):
        ...
        xebench.errors.InvalidInputError: y_true: labels must be one of ['a', 'b']; row 2 is 'c'
    """
    y = check_1d(y_true, argument)
    if labels is None:
        if n_classes is not None:
            codes = _integral_codes(y, n_classes)
            if codes is not None:
                classes = np.array([False, True]) if y.dtype.kind == "b" else np.arange(n_classes)
                return codes, classes
        classes, codes = _unique(y, argument)
        if n_classes is not None and classes.shape[0] != n_classes:
            shown = classes[:10].tolist()
            raise InvalidInputError(
                argument,
                f"found {classes.shape[0]} distinct labels but the predictions have "
                f"{n_classes} classes; pass labels= to name the classes in column order",
                value=shown,
            )
        return codes.astype(np.intp, copy=False), classes
    classes = _check_labels(labels, n_classes)
    if classes.dtype.kind in "iu" and np.array_equal(classes, np.arange(classes.shape[0])):
        codes = _integral_codes(y, classes.shape[0])
        if codes is not None:
            return codes, classes
    uniques, inverse = _unique(y, argument)
    position = {label: index for index, label in enumerate(classes.tolist())}
    lookup = np.array([position.get(u, -1) for u in uniques.tolist()], dtype=np.intp)
    codes = lookup[inverse]
    if lookup.min() < 0:
        row = _first_true(codes < 0)
        raise InvalidInputError(
            argument, f"labels must be one of {classes.tolist()}", index=row, value=y[row]
        )
    return codes, classes


def _check_labels(labels: Sequence[Hashable] | ArrayLike, n_classes: int | None) -> NDArray[Any]:
    classes = np.asarray(labels)
    if classes.ndim != 1 or classes.shape[0] < 1:
        raise InvalidInputError("labels", "must be a non-empty 1-D list of labels", value=labels)
    seen: dict[Any, int] = {}
    for index, label in enumerate(classes.tolist()):
        if label in seen:
            raise InvalidInputError("labels", "labels must be unique", index=index, value=label)
        seen[label] = index
    if n_classes is not None and classes.shape[0] != n_classes:
        raise InvalidInputError(
            "labels",
            f"must name one label per class ({n_classes} classes in the predictions)",
            value=classes.tolist(),
        )
    return classes


def check_distribution(p: ArrayLike, argument: str) -> NDArray[np.float64]:
    """Validate counts or probabilities and return them normalized to sum 1.

    A 1-D array is one distribution; a 2-D array is one distribution per row.

    Example:
        >>> check_distribution([1, 3], "p")
        array([0.25, 0.75])
    """
    dist = _as_float_array(p, argument).astype(np.float64, copy=False)
    if dist.ndim not in (1, 2):
        raise InvalidInputError(
            argument, "must be 1-D (one distribution) or 2-D (one per row)", value=dist.shape
        )
    _check_non_empty(argument, dist.shape[-1] if dist.ndim == 1 else dist.shape[0])
    if dist.shape[-1] == 0:
        raise InvalidInputError(argument, "a distribution needs at least one bin", value=dist.shape)
    if not (dist.min() >= 0.0 and np.isfinite(dist.max())):
        bad = ~((dist >= 0.0) & np.isfinite(dist))
        if dist.ndim == 1:
            index = _first_true(bad)
            raise InvalidInputError(
                argument,
                "counts or probabilities must be finite and >= 0",
                row=index,
                value=dist[index],
                row_name="bin",
            )
        row = _first_true(bad.any(axis=1))
        column = _first_true(bad[row])
        raise InvalidInputError(
            argument,
            "counts or probabilities must be finite and >= 0",
            index=row,
            value=dist[row, column],
            where=f"column {column}",
        )
    totals = dist.sum(axis=-1, keepdims=True)
    if not totals.min() > 0.0:
        row = _first_true(~(totals.reshape(-1) > 0.0))
        raise InvalidInputError(
            argument, "a distribution must have a positive total", index=row, value=0.0
        )
    return dist / totals


def is_missing(value: Any) -> bool:
    """The one missing-value rule: None, NaN and the empty string are missing.

    The empty string is missing because it is how a CSV file writes a missing
    value: Arrow reads an empty cell of a numeric column as null but keeps
    ``""`` in a text column, so without this rule the same file would have a
    missing bin for one column and an ``""`` category for the other. With it,
    the file importer, benchmark cohorts, drift of files, drift references and
    the store's monitoring bins agree. Infinity is a value, not missing (it
    falls beyond every edge of a bin).

    Example:
        >>> [is_missing(v) for v in (None, float("nan"), "", "eu", 0, float("inf"))]
        [True, True, True, False, False, False]
    """
    if value is None:
        return True
    if isinstance(value, str):
        return value == ""
    return isinstance(value, (float, np.floating)) and value != value
