"""Columns of a chunk as the NumPy arrays the kernel takes, with located errors.

A probability column is either a float (binary: P(class 1)) or a list of
floats (multiclass, in class order): an Arrow list (Parquet, JSON Lines,
DataFrames) or, in CSV, a JSON array string such as ``"[0.2, 0.5, 0.3]"``.
Labels, weights and cohorts have their own converters. Every error names
the source, the column, the 1-based data row and the value.

Example:
    >>> import pyarrow as pa
    >>> probability_array(pa.array(["[0.2, 0.8]"]), name="p", source="t", first_row=1)
    array([[0.2, 0.8]])
    >>> weight_array(pa.array(["heavy"]), name="w", source="t", first_row=1)
    Traceback (most recent call last):
    ...
    xebench.errors.DataError: t: column 'w': weights must be numbers, not string
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

from .._validation import is_missing
from ..errors import DataError, InvalidInputError

__all__ = ["cohort_codes", "label_array", "probability_array", "weight_array"]


def _combined(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    return array


def _first_null(array: pa.Array) -> int | None:
    if array.null_count == 0:
        return None
    return int(np.flatnonzero(array.is_null().to_numpy(zero_copy_only=False))[0])


def _raise_on_null(array: pa.Array, name: str, what: str, source: str, first_row: int) -> None:
    index = _first_null(array)
    if index is not None:
        # Readers turn NaN into null (pyarrow's CSV parser, pandas' NaN): in a column
        # of numbers the missing value is shown as the nan a NumPy user would see.
        numeric = pa.types.is_floating(array.type) or pa.types.is_integer(array.type)
        value = math.nan if numeric else None
        raise DataError(
            name, f"{what} is missing (empty, null or NaN)", row=first_row + index,
            value=value, source=source, column=name,
        )  # fmt: skip


def probability_array(
    column: pa.ChunkedArray | pa.Array,
    *,
    name: str,
    source: str,
    first_row: int,
    n_classes: int | None = None,
) -> NDArray[np.float64]:
    """A probability column as float64: 1-D for floats, 2-D ``(n, k)`` for lists.

    Lists may be Arrow lists (Parquet, JSON Lines, DataFrames) or JSON array
    strings (CSV). Range and sum checks are left to the kernel; this checks
    types, missing values and vector lengths.

    Example:
        >>> import pyarrow as pa
        >>> probability_array(pa.array([0.25, 0.5]), name="p", source="t", first_row=1)
        array([0.25, 0.5 ])
        >>> probability_array(pa.array(["[0.2, 0.8]", "[1, 0]"]), name="m", source="t", first_row=1)
        array([[0.2, 0.8],
               [1. , 0. ]])
        >>> probability_array(pa.array([0.2, None]), name="p", source="f.csv", first_row=10)
        ... # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        xebench.errors.DataError: f.csv: column 'p': probability is missing ...; row 11 is nan
    """
    array = _combined(column)
    where = {"source": source, "column": name}
    _raise_on_null(array, name, "probability", source, first_row)
    kind = array.type
    if pa.types.is_floating(kind) or pa.types.is_integer(kind) or pa.types.is_boolean(kind):
        if n_classes is not None and n_classes != 2:
            raise DataError(
                name, f"holds one probability per row, but there are {n_classes} classes "
                "(multiclass probabilities are lists, one entry per class)", **where,
            )  # fmt: skip
        return np.asarray(array.cast(pa.float64()).to_numpy(zero_copy_only=False), np.float64)
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return _probabilities_from_text(array, name, source, first_row, n_classes)
    if pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind):
        return _probability_matrix(array, name, source, first_row, n_classes)
    raise DataError(
        name, f"must hold numbers or lists of numbers, not {kind}", **where,
    )  # fmt: skip


def _probability_matrix(
    array: pa.Array, name: str, source: str, first_row: int, n_classes: int | None
) -> NDArray[np.float64]:
    if pa.types.is_fixed_size_list(array.type):
        array = array.cast(pa.list_(array.type.value_type))
    lengths = pc.list_value_length(array).to_numpy(zero_copy_only=False)
    expected = n_classes if n_classes is not None else int(lengths[0])
    wrong = np.flatnonzero(lengths != expected)
    if wrong.size:
        row = int(wrong[0])
        raise DataError(
            name, f"has {int(lengths[row])} probabilities where {expected} are expected "
            "(one per class)", row=first_row + row, value=array[row].as_py(),
            source=source, column=name,
        )  # fmt: skip
    values = pc.list_flatten(array)
    index = _first_null(values)
    if index is not None:
        row = index // max(expected, 1)
        raise DataError(
            name, "has a missing probability in its list", row=first_row + row,
            value=array[row].as_py(), source=source, column=name,
        )  # fmt: skip
    if not (pa.types.is_floating(values.type) or pa.types.is_integer(values.type)):
        raise DataError(
            name, f"lists must hold numbers, not {values.type}", source=source, column=name
        )
    flat = np.asarray(values.cast(pa.float64()).to_numpy(zero_copy_only=False), np.float64)
    return flat.reshape(len(array), expected)


def _probabilities_from_text(
    array: pa.Array, name: str, source: str, first_row: int, n_classes: int | None
) -> NDArray[np.float64]:
    """Strings: numbers (a CSV column Arrow could not type) or JSON arrays."""
    trimmed = pc.utf8_trim_whitespace(array)
    where = {"name": name, "source": source, "first_row": first_row}
    is_list = pc.starts_with(trimmed, "[").to_numpy(zero_copy_only=False)
    if not is_list.any():
        try:
            return np.asarray(trimmed.cast(pa.float64()).to_numpy(zero_copy_only=False))
        except pa.ArrowInvalid:
            row = _first_unparsable(trimmed.to_pylist(), _parse_float)
            raise _text_error(array, row, "is not a number", **where) from None
    if not is_list.all():
        row = int(np.flatnonzero(~is_list)[0])
        rule = "mixes numbers and lists; multiclass rows must all be JSON arrays"
        raise _text_error(array, row, rule, **where)
    inner = pc.replace_substring_regex(trimmed, r"^\[|\]$", "")
    parts = pc.split_pattern(inner, ",")
    try:
        numbers = pc.list_flatten(parts)
        numbers = pc.utf8_trim_whitespace(numbers).cast(pa.float64())
        lists = pa.ListArray.from_arrays(parts.offsets, numbers)
    except pa.ArrowInvalid:
        row = _first_unparsable(array.to_pylist(), _parse_vector)
        raise _text_error(array, row, "is not a JSON array of numbers", **where) from None
    return _probability_matrix(lists, name, source, first_row, n_classes)


def _text_error(
    array: pa.Array, row: int, rule: str, *, name: str, source: str, first_row: int
) -> DataError:
    """The error of the text probability at 0-based ``row`` of the chunk, showing its text."""
    return DataError(
        name, rule, row=first_row + row, value=array[row].as_py(), source=source, column=name
    )


def _parse_float(text: str) -> None:
    float(text)


def _parse_vector(text: str) -> None:
    import json

    values = json.loads(text)
    if not isinstance(values, list) or not all(isinstance(v, (int, float)) for v in values):
        raise InvalidInputError("probabilities", "must be a JSON array of numbers", value=text)


def _first_unparsable(values: list[Any], parse: Any) -> int:
    for index, value in enumerate(values):
        try:
            parse(value)
        except (ValueError, TypeError):
            return index
    return 0


def label_array(
    column: pa.ChunkedArray | pa.Array, *, name: str, source: str, first_row: int
) -> NDArray[Any]:
    """Labels as NumPy: integers (also integral floats) as int64, others as objects.

    Example:
        >>> import pyarrow as pa
        >>> label_array(pa.array([1.0, 0.0]), name="y", source="t", first_row=1)
        array([1, 0])
        >>> label_array(pa.array(["cat", "dog"]), name="y", source="t", first_row=1)
        array(['cat', 'dog'], dtype=object)
    """
    array = _combined(column)
    _raise_on_null(array, name, "label", source, first_row)
    kind = array.type
    if pa.types.is_integer(kind):
        return np.asarray(array.cast(pa.int64()).to_numpy(zero_copy_only=False))
    if pa.types.is_boolean(kind):
        return np.asarray(array.to_numpy(zero_copy_only=False), dtype=np.int64)
    if pa.types.is_floating(kind):
        values = array.to_numpy(zero_copy_only=False)
        fractional = np.flatnonzero(~np.isfinite(values) | (values != np.round(values)))
        if fractional.size:
            row = int(fractional[0])
            raise DataError(
                name, "labels must be class labels, not fractions", row=first_row + row,
                value=float(values[row]), source=source, column=name,
            )  # fmt: skip
        return values.astype(np.int64)
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return np.asarray(array.to_numpy(zero_copy_only=False), dtype=object)
    raise DataError(
        name, f"labels must be integers, booleans or strings, not {kind}", source=source,
        column=name,
    )  # fmt: skip


def weight_array(
    column: pa.ChunkedArray | pa.Array, *, name: str, source: str, first_row: int
) -> NDArray[np.float64]:
    """Row weights as float64 (signs and finiteness are checked by the kernel).

    Example:
        >>> import pyarrow as pa
        >>> weight_array(pa.array([1, 2]), name="w", source="t", first_row=1)
        array([1., 2.])
    """
    array = _combined(column)
    _raise_on_null(array, name, "weight", source, first_row)
    if not (pa.types.is_floating(array.type) or pa.types.is_integer(array.type)):
        raise DataError(
            name, f"weights must be numbers, not {array.type}", source=source, column=name
        )
    return np.asarray(array.cast(pa.float64()).to_numpy(zero_copy_only=False), np.float64)


def cohort_codes(
    column: pa.ChunkedArray | pa.Array, missing: str
) -> tuple[NDArray[np.int64], list[str]]:
    """Cohort column -> (code per row, value per code), values as strings.

    Missing values (:func:`~xebench._validation.is_missing`: null, NaN, "")
    become ``missing``. Dictionary-encoded columns are used as
    they are; others are encoded here, so no Python object is made per row.
    A value may appear under two codes (e.g. a chunk spanning two Parquet
    dictionaries); callers key on the value.

    Example:
        >>> import pyarrow as pa
        >>> cohort_codes(pa.array(["eu", None, "us", "eu", ""]), "(missing)")
        (array([0, 3, 1, 0, 2]), ['eu', 'us', '(missing)', '(missing)'])
    """
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if not pa.types.is_dictionary(array.type):
        array = array.dictionary_encode()
    dictionary = array.dictionary
    if not (pa.types.is_string(dictionary.type) or pa.types.is_large_string(dictionary.type)):
        dictionary = dictionary.cast(pa.string())
    values = [missing if is_missing(v) else str(v) for v in dictionary.to_pylist()]
    indices = array.indices
    if indices.null_count:
        indices = pc.fill_null(indices, len(values))
        values.append(missing)
    return np.asarray(indices.to_numpy(zero_copy_only=False), dtype=np.int64), values
