"""Counting columns into drift bins, fast: equal to the histogram classes, bit for bit.

The histogram classes of :mod:`xebench.stats.histograms` define the bins;
these functions count Arrow columns into the same bins without going through
Python objects (a million values in milliseconds), and the tests check that
the counts equal those of the classes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

from ..errors import InvalidInputError
from ..stats.binning import Bins, is_missing
from ..stats.histograms import CategoricalHistogram, NumericHistogram

__all__ = [
    "categorical_histogram",
    "categorical_values",
    "count_categorical",
    "float_values",
    "numeric_histogram",
    "reference_numeric",
    "top_categories",
]


def numeric_histogram(edges: Sequence[float], counts: NDArray[np.int64]) -> NumericHistogram:
    """The :class:`NumericHistogram` of ``edges`` holding ``counts`` (laid out as its distribution).

    Example:
        >>> numeric_histogram((0.0, 1.0), np.array([1, 3, 1, 1])).distribution().tolist()
        [1.0, 3.0, 1.0, 1.0]
    """
    histogram = NumericHistogram(edges)
    dist = counts.astype(np.float64)
    histogram.underflow = float(dist[0])
    histogram.counts = dist[1:-2].copy()
    histogram.overflow = float(dist[-2])
    histogram.nan = float(dist[-1])
    return histogram


def reference_numeric(
    values: NDArray[np.float64], n_bins: int
) -> tuple[Bins, NDArray[np.int64]] | str:
    """(bins, reference counts), or why the column cannot be binned.

    The bins are those of ``NumericHistogram.from_reference(values, n_bins=n_bins)``.

    Example:
        >>> bins, counts = reference_numeric(np.arange(100.0), 4)
        >>> bins.edges, counts.tolist()
        ((0.0, 24.75, 49.5, 74.25, 99.0), [0, 25, 25, 25, 25, 0, 0])
        >>> reference_numeric(np.array([np.nan]), 4)
        'the reference has no finite value to bin'
    """
    try:
        bins = Bins.from_reference(values, n_bins=n_bins)
    except InvalidInputError as error:  # no finite value; a constant 1e17 has no unit-wide bin
        return error.rule
    return bins, bins.count(values)


def top_categories(
    column: pa.ChunkedArray, top_k: int
) -> tuple[list[Any] | str, NDArray[np.int64]]:
    """Categories and counts of ``CategoricalHistogram.from_reference(values, top_k=top_k)``
    (or why there are none, instead of the categories).

    Missing values follow :func:`~xebench.stats.binning.is_missing` (null and "").

    Example:
        >>> top_categories(pa.chunked_array([["a", "b", "b", None, "c", ""]]), 1)
        (['b'], array([2, 2, 2]))
    """
    counted: dict[Any, int] = {}
    missing = 0
    if len(column):
        frequencies = pc.value_counts(column)
        values = frequencies.field("values").to_pylist()
        counts = frequencies.field("counts").to_pylist()
        for value, count in zip(values, counts, strict=True):
            if is_missing(value):
                missing += count
            else:
                counted[value] = counted.get(value, 0) + count
    missing = max(missing, column.null_count)
    if not counted:
        return "the reference has no non-missing value", np.zeros(0, dtype=np.int64)
    ranked = sorted(counted.items(), key=lambda item: (-item[1], str(item[0])))
    categories = [value for value, _ in ranked[:top_k]]
    other = sum(count for _, count in ranked[top_k:])
    distribution = [count for _, count in ranked[:top_k]] + [other, missing]
    return categories, np.asarray(distribution, dtype=np.int64)


def count_categorical(column: pa.ChunkedArray, value_set: pa.Array) -> NDArray[np.int64]:
    """Counts of ``CategoricalHistogram(categories).update(values).distribution()``.

    The value set holds no missing value (:func:`top_categories`), so null and
    "" both land in the missing bin.

    Example:
        >>> column = pa.chunked_array([["a", "x", None, "a", ""]])
        >>> count_categorical(column, pa.array(["a"])).tolist()
        [2, 1, 2]
    """
    n_categories = len(value_set)
    if len(column) == 0 or pa.types.is_null(column.type):
        counts = np.zeros(n_categories + 2, dtype=np.int64)
        counts[-1] = len(column)
        return counts
    codes = pc.index_in(column, value_set=value_set.cast(column.type))
    codes = pc.fill_null(codes, n_categories).cast(pa.int32())
    counts = np.zeros(n_categories + 1, dtype=np.int64)
    for chunk in codes.chunks:
        if len(chunk):
            counts += np.bincount(_buffer_values(chunk, np.int32), minlength=n_categories + 1)
    missing = column.null_count + _empty_texts(column)
    counts[n_categories] -= missing
    return np.concatenate([counts, [missing]])


def _empty_texts(column: pa.ChunkedArray) -> int:
    """Empty strings of a text column: missing values (an empty CSV cell)."""
    kind = column.type
    if not (pa.types.is_string(kind) or pa.types.is_large_string(kind)) or not len(column):
        return 0
    return int(pc.sum(pc.equal(column, "")).as_py() or 0)


def categorical_histogram(categories: list[Any], counts: NDArray[np.int64]) -> CategoricalHistogram:
    """The :class:`CategoricalHistogram` of ``categories`` holding ``counts`` (its distribution).

    Example:
        >>> h = categorical_histogram(["a"], np.array([2, 1, 1]))
        >>> h.counts.tolist(), h.other, h.missing
        ([2.0], 1.0, 1.0)
    """
    histogram = CategoricalHistogram(categories)
    dist = counts.astype(np.float64)
    histogram.counts = dist[:-2].copy()
    histogram.other = float(dist[-2])
    histogram.missing = float(dist[-1])
    return histogram


def float_values(column: pa.ChunkedArray) -> NDArray[np.float64]:
    """A numeric column as float64, nulls as NaN (as NumericHistogram reads them).

    Built from the Arrow buffers (zero copy for a float64 column in one
    chunk): pyarrow's ``to_numpy`` would import pandas, 0.1 s of start-up.

    Example:
        >>> float_values(pa.chunked_array([[1, None], [3]])).tolist()
        [1.0, nan, 3.0]
    """
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    if column.type != pa.float64():
        column = column.cast(pa.float64(), safe=False)
    if column.null_count:
        column = pc.fill_null(column, math.nan)
    pieces = [_buffer_values(chunk, np.float64) for chunk in column.chunks if len(chunk)]
    if not pieces:
        return np.zeros(0)
    return pieces[0] if len(pieces) == 1 else np.concatenate(pieces)


def _buffer_values(array: pa.Array, dtype: type[np.generic]) -> NDArray[Any]:
    """The values of a fixed-width Arrow array without nulls, as a NumPy view."""
    width = np.dtype(dtype).itemsize
    return np.frombuffer(
        array.buffers()[1], dtype=dtype, count=len(array), offset=array.offset * width
    )


def categorical_values(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """A categorical column with its dictionary decoded (the values themselves).

    Example:
        >>> categorical_values(pa.chunked_array([pa.array(["a", "b"]).dictionary_encode()])).type
        DataType(string)
    """
    if pa.types.is_dictionary(column.type):
        return column.cast(column.type.value_type)
    return column
