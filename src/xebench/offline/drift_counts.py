"""Counting columns into drift bins, fast: equal to the histogram classes, bit for bit.

The histogram classes of :mod:`xebench.stats.histograms` define the bins;
these functions count Arrow columns into the same bins without going through
Python objects (a million values in milliseconds), and the tests check that
the counts equal those of the classes.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

from ..errors import InvalidInputError
from ..stats.histograms import CategoricalHistogram, NumericHistogram

__all__ = [
    "categorical_histogram",
    "categorical_values",
    "count_categorical",
    "count_numeric",
    "float_values",
    "numeric_histogram",
    "reference_numeric",
    "top_categories",
]

#: Values per block when counting numeric bins (a block stays in the L2 cache).
_BLOCK = 1 << 16
#: Up to this many edges, bins are counted by comparisons; above, by binary search.
_COMPARE_MAX_EDGES = 24


def _reference_edges(values: NDArray[np.float64], n_bins: int) -> NDArray[np.float64]:
    """The edges of ``NumericHistogram.from_reference(values, n_bins=n_bins)``, faster."""
    finite_mask = np.isfinite(values)
    finite = values if finite_mask.all() else values[finite_mask]
    if finite.shape[0] == 0:
        raise InvalidInputError("values", "the reference has no finite value to bin")
    low, high = float(finite.min()), float(finite.max())
    if low == high:
        return np.array([low - 0.5, low + 0.5])
    return np.unique(quantiles(finite, np.linspace(0.0, 1.0, n_bins + 1), low, high))


#: Below this many values, quantiles come from ``np.quantile`` itself.
_SELECT_MIN = 1 << 16


def quantiles(
    values: NDArray[np.float64], q: NDArray[np.float64], low: float, high: float
) -> NDArray[np.float64]:
    """``np.quantile(values, q)`` (method "linear") for finite ``values``, bit for bit.

    NumPy partitions a copy of the whole array around about two ranks per
    quantile (~25 ms per million values). Here the same order statistics
    come from :func:`_order_statistics` (~5 ms), and are interpolated with
    NumPy's formulas: virtual index ``(n - 1) * q``, ``gamma`` its fractional
    part, and ``_lerp`` (``a + (b - a) * gamma``, or ``b - (b - a) * (1 -
    gamma)`` when ``gamma >= 0.5``). The tests check equality with
    ``np.quantile`` on many distributions.

    Example:
        >>> values = np.random.default_rng(0).normal(size=100_000)
        >>> q = np.linspace(0.0, 1.0, 11)
        >>> fast = quantiles(values, q, float(values.min()), float(values.max()))
        >>> bool(np.array_equal(fast, np.quantile(values, q)))
        True
    """
    n = values.shape[0]
    if n < _SELECT_MIN:
        return np.quantile(values, q)
    virtual = (n - 1) * q
    previous = np.floor(virtual).astype(np.intp)
    following = previous + 1
    last = virtual >= n - 1
    previous[last] = -1  # as NumPy: the last value, and gamma measured from -1
    following[last] = -1
    gamma = np.asarray(virtual - previous, dtype=virtual.dtype)
    previous_rank = np.where(previous < 0, n - 1, previous)
    following_rank = np.where(following < 0, n - 1, following)
    ranks = np.unique(np.concatenate([previous_rank, following_rank]))
    found = _order_statistics(values, ranks, low, high)
    a = found[np.searchsorted(ranks, previous_rank)]
    b = found[np.searchsorted(ranks, following_rank)]
    difference = b - a
    result = a + difference * gamma
    upper = gamma >= 0.5
    result[upper] = (b - difference * (1 - gamma))[upper]
    return result


def _order_statistics(
    values: NDArray[np.float64],
    ranks: NDArray[np.intp],
    low: float,
    high: float,
    depth: int = 0,
) -> NDArray[np.float64]:
    """The values of rank ``ranks`` (sorted, 0-based) of finite ``values``: exact.

    Equal to ``np.partition(values, ranks)[ranks]``. One pass puts every value
    in one of up to 65,535 equal-width buckets over [low, high] (the bucket
    number is a monotone function of the value, so counting gives each rank's
    bucket exactly); only the values of the buckets holding a wanted rank are
    then partitioned. A bucket holding a large share of the values (heavy
    tails, repeated values) is handled the same way, recursively.
    """
    n = values.shape[0]
    if low == high:
        return np.full(ranks.shape[0], low)
    n_buckets = int(min(65_535, max(1_024, n // 256)))
    span = high - low
    scale = n_buckets / span if span > 0 else math.inf
    if n < _SELECT_MIN or depth > 8 or not (math.isfinite(span) and math.isfinite(scale)):
        return np.partition(values, ranks)[ranks]
    codes = np.empty(n, dtype=np.uint16)
    counts = np.zeros(n_buckets, dtype=np.int64)
    scratch = np.empty(min(n, _BLOCK))
    top = float(n_buckets - 1)
    for start in range(0, n, _BLOCK):
        block = values[start : start + _BLOCK]
        work = scratch[: block.shape[0]]
        np.subtract(block, low, out=work)
        np.multiply(work, scale, out=work)
        np.minimum(work, top, out=work)  # also catches rounding just above the top
        code = codes[start : start + block.shape[0]]
        np.copyto(code, work, casting="unsafe")  # truncation = floor of values >= 0
        counts += np.bincount(code, minlength=n_buckets)
    cumulative = np.cumsum(counts)
    bucket = np.searchsorted(cumulative, ranks, side="right")
    below = cumulative[bucket] - counts[bucket]  # values in lower buckets
    result = np.empty(ranks.shape[0])
    targets = np.unique(bucket)
    heavy = counts[targets] > max(_SELECT_MIN, n // 8)
    light = targets[~heavy]
    if light.shape[0]:
        wanted = np.zeros(n_buckets, dtype=bool)
        wanted[light] = True
        candidates = values[wanted[codes]]
        offsets = np.cumsum(counts[light]) - counts[light]
        chosen = np.isin(bucket, light)
        position = light.searchsorted(bucket[chosen])
        position = offsets[position] + (ranks[chosen] - below[chosen])
        result[chosen] = np.partition(candidates, position)[position]
    for target in targets[heavy]:
        chosen = bucket == target
        inside = values[codes == target]
        result[chosen] = _order_statistics(
            inside,
            ranks[chosen] - below[chosen],
            float(inside.min()),
            float(inside.max()),
            depth + 1,
        )
    return result


def count_numeric(values: NDArray[np.float64], edges: NDArray[np.float64]) -> NDArray[np.int64]:
    """Counts of ``NumericHistogram(edges).update(values).distribution()``.

    Underflow, each bin ``[e0, e1], (e1, e2], ...``, overflow, NaN. With few
    edges, counts of ``x >= e0`` and ``x > e_i`` per block of values (cache
    resident) and their differences; with many, one binary search per value.

    Example:
        >>> values = np.array([-1.0, 0.0, 0.5, 1.0, 2.0, np.nan])
        >>> count_numeric(values, np.array([0.0, 1.0])).tolist()
        [1, 3, 1, 1]
    """
    n_edges = edges.shape[0]
    n = values.shape[0]
    if n_edges > _COMPARE_MAX_EDGES:
        nan = int(np.count_nonzero(np.isnan(values)))
        # x < e0 <=> x <= the float just below e0: searchsorted (left) puts x == e0 in bin 1.
        shifted = edges.copy()
        shifted[0] = np.nextafter(edges[0], -np.inf)
        codes = np.searchsorted(shifted, values, side="left")  # NaN sorts last: n_edges
        counts = np.bincount(codes, minlength=n_edges + 1).astype(np.int64)
        counts[n_edges] -= nan
        return np.concatenate([counts, [nan]])
    bounds = [float(e) for e in edges]
    first, rest = bounds[0], bounds[1:]
    above = np.zeros(n_edges, dtype=np.int64)  # x >= e0, x > e1, ..., x > e_n
    nan = 0
    for start in range(0, n, _BLOCK):
        block = values[start : start + _BLOCK]
        above[0] += np.count_nonzero(block >= first)
        for index, edge in enumerate(rest, start=1):
            above[index] += np.count_nonzero(block > edge)
        nan += np.count_nonzero(np.isnan(block))
    underflow = n - nan - int(above[0])
    inner = above[:-1] - above[1:]
    return np.concatenate([[underflow], inner, [above[-1], nan]]).astype(np.int64)


def numeric_histogram(edges: NDArray[np.float64], counts: NDArray[np.int64]) -> NumericHistogram:
    """The :class:`NumericHistogram` of ``edges`` holding ``counts`` (laid out as its distribution).

    Example:
        >>> numeric_histogram(np.array([0.0, 1.0]), np.array([1, 3, 1, 1])).distribution().tolist()
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
) -> tuple[NDArray[np.float64], NDArray[np.int64]] | str:
    """(edges, reference counts), or why the column cannot be binned.

    The edges are those of ``NumericHistogram.from_reference(values, n_bins=n_bins)``.

    Example:
        >>> edges, counts = reference_numeric(np.arange(100.0), 4)
        >>> edges.tolist(), counts.tolist()
        ([0.0, 24.75, 49.5, 74.25, 99.0], [0, 25, 25, 25, 25, 0, 0])
        >>> reference_numeric(np.array([np.nan]), 4)
        'the reference has no finite value to bin'
    """
    try:
        edges = _reference_edges(values, n_bins)
        NumericHistogram(edges)  # validates (a constant 1e17 has no unit-wide bin)
    except InvalidInputError as error:
        return error.rule
    return edges, count_numeric(values, edges)


def top_categories(
    column: pa.ChunkedArray, top_k: int
) -> tuple[list[Any] | str, NDArray[np.int64]]:
    """Categories and counts of ``CategoricalHistogram.from_reference(values, top_k=top_k)``
    (or why there are none, instead of the categories).

    Example:
        >>> top_categories(pa.chunked_array([["a", "b", "b", None, "c"]]), 1)
        (['b'], array([2, 2, 1]))
    """
    counted: dict[Any, int] = {}
    missing = 0
    if len(column):
        frequencies = pc.value_counts(column)
        values = frequencies.field("values").to_pylist()
        counts = frequencies.field("counts").to_pylist()
        for value, count in zip(values, counts, strict=True):
            if value is None:
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

    Example:
        >>> count_categorical(pa.chunked_array([["a", "x", None, "a"]]), pa.array(["a"])).tolist()
        [2, 1, 1]
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
    missing = column.null_count
    counts[n_categories] -= missing
    return np.concatenate([counts, [missing]])


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
