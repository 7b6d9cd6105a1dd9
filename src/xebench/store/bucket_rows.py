"""Bucket rows as Arrow tables: grouping keys, building delta rows, merging rows.

A window, a series step and compaction all merge ``bucket_scores`` rows with
:func:`merge_scores` and read the result with :func:`score_stats` and
:func:`lag_counts`; ``bucket_features`` rows merge with :func:`merge_features`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

from ..stats import codec
from ..stats.codec import list_array, merge_lists, merge_sparse, sparse_rows
from ..stats.expected_loss import ESTIMATE_BINS, SUM_LISTS, SUM_SCALARS, LossSums
from ..stats.scores import ScoreStats
from .bucket_schema import (
    ESTIMATE_LISTS,
    ESTIMATE_SCALARS,
    FEATURE_SCHEMA,
    LAG_BINS,
    LAG_PER_DECADE,
    SCORE_BINS,
    SCORE_KEY,
    SCORE_SCHEMA,
)

__all__ = [
    "arrow_column",
    "calibration_score",
    "column_codes",
    "combined_codes",
    "dense_list",
    "estimate_columns",
    "group_ids",
    "lag_bin",
    "lag_counts",
    "lag_matrix",
    "lag_percentile",
    "lag_percentiles",
    "loss_sums",
    "merge_features",
    "merge_scores",
    "score_rows",
    "score_stats",
    "take_keys",
    "unique_groups",
]


def lag_bin(seconds: NDArray[np.float64]) -> NDArray[np.intp]:
    """Label-lag bin of each lag in seconds: 0 below 1 s, then ten per decade.

    Example:
        >>> lag_bin(np.array([0.2, 1.0, 9.0, 60.0, 1e9])).tolist()
        [0, 1, 10, 18, 81]
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        index = 1 + np.floor(LAG_PER_DECADE * np.log10(np.maximum(seconds, 1e-9)))
    return np.clip(np.where(seconds < 1.0, 0, index), 0, LAG_BINS - 1).astype(np.intp)


def lag_percentile(counts: NDArray[np.float64], q: float) -> float | None:
    """The ``q``-th percentile (0-100) of label lag in seconds from a lag histogram.

    Interpolated geometrically inside the bin (bins are 26% wide: ten per decade),
    so the answer is within that resolution. None when empty. One row of
    :func:`lag_percentiles` (the same arithmetic, so the two agree to the bit).

    Example:
        >>> counts = np.zeros(LAG_BINS); counts[lag_bin(np.array([100.0]))] = 4
        >>> 100 <= lag_percentile(counts, 50) < 126
        True
    """
    value = float(lag_percentiles(np.asarray(counts, dtype=np.float64)[None], q)[0])
    return None if np.isnan(value) else value


def lag_percentiles(counts: NDArray[np.float64], q: float) -> NDArray[np.float64]:
    """:func:`lag_percentile` of each row of lag histograms (rows x :data:`LAG_BINS`),
    NaN for an empty row.

    Example:
        >>> counts = np.zeros((2, LAG_BINS)); counts[0, lag_bin(np.array([100.0]))] = 4
        >>> values = lag_percentiles(counts, 50)
        >>> bool(100 <= values[0] < 126), bool(np.isnan(values[1]))
        (True, True)
    """
    counts = np.asarray(counts, dtype=np.float64)
    rows = np.arange(counts.shape[0])
    total = counts.sum(axis=-1)
    cumulative = np.cumsum(counts, axis=-1)
    target = q / 100.0 * total
    # The first bin whose cumulative count reaches the target (searchsorted, side="left").
    b = np.minimum((cumulative < target[:, None]).sum(axis=-1), LAG_BINS - 1)
    before = np.where(b > 0, cumulative[rows, np.maximum(b - 1, 0)], 0.0)
    at = counts[rows, b]
    fraction = np.zeros(counts.shape[0])
    np.divide(target - before, at, out=fraction, where=at != 0)
    low = 10.0 ** ((b - 1) / LAG_PER_DECADE)
    value = np.where(b == 0, fraction, low * 10.0 ** (fraction / LAG_PER_DECADE))
    return np.where(total > 0, value, np.nan)


def lag_matrix(merged: dict[str, Any], rows: NDArray[np.intp]) -> NDArray[np.float64]:
    """The dense lag histograms of groups ``rows`` of :func:`merge_scores`: row ``i`` is
    ``lag_counts(merged, rows[i])``.

    Example:
        >>> merged = {"lag": (np.array([3, 1, 2]), np.array([0, 1, 3]), np.array([2.0, 1, 5]))}
        >>> lag_matrix(merged, np.array([1, 0]))[:, :4].tolist()
        [[0.0, 1.0, 5.0, 0.0], [0.0, 0.0, 0.0, 2.0]]
    """
    index, offsets, count = merged["lag"]
    owner, at = sparse_rows(offsets, rows)
    dense = np.zeros((len(rows), LAG_BINS))
    dense[owner, np.asarray(index)[at]] = np.asarray(count)[at]
    return dense


# --- grouping helpers -----------------------------------------------------------------


def column_codes(values: pa.Array | NDArray[Any]) -> tuple[NDArray[np.int64], int]:
    """Dense integer codes of a column and their count: NumPy values in sorted order,
    Arrow values in order of first appearance (a class list by its joined text).

    Example:
        >>> codes, n = column_codes(pa.array(["b", "a", "b"]))
        >>> codes.tolist(), n
        ([0, 1, 0], 2)
    """
    if isinstance(values, np.ndarray):
        uniques, inverse = np.unique(values, return_inverse=True)
        return inverse.astype(np.int64), len(uniques)
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if pa.types.is_list(values.type):  # a class list: its joined text is the key
        values = pc.binary_join(values, "\x1f")
    encoded = pc.dictionary_encode(values)
    if isinstance(encoded, pa.ChunkedArray):
        encoded = encoded.combine_chunks()
    return encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64), len(encoded.dictionary)


def group_ids(
    columns: Sequence[pa.Array | NDArray[Any]],
) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """(group of each row, first row of each group) for rows keyed by ``columns``.

    Groups are numbered in the order of :func:`combined_codes`.

    Example:
        >>> g, first = group_ids([pa.array(["a", "b", "a"]), np.array([1, 1, 1])])
        >>> g.tolist(), first.tolist()
        ([0, 1, 0], [0, 1])
    """
    return unique_groups(combined_codes(columns)[0])


def combined_codes(columns: Sequence[pa.Array | NDArray[Any]]) -> tuple[NDArray[np.int64], int]:
    """One integer code per row for the key ``columns`` (ordered as the tuples of their
    codes), and how many codes there can be: ``code * n + codes(c)`` keys the rows by
    one more column ``c`` of ``n`` codes, in the order :func:`group_ids` would give.

    Example:
        >>> codes, size = combined_codes([pa.array(["a", "b", "a"]), np.array([5, 5, 7])])
        >>> codes.tolist(), size
        ([0, 2, 1], 4)
    """
    combined: NDArray[np.int64] | None = None
    total = 1
    for column in columns:
        codes, size = column_codes(column)
        combined = codes if combined is None else combined * max(size, 1) + codes
        total *= max(size, 1)
    assert combined is not None
    return combined, total


def unique_groups(codes: NDArray[np.int64]) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """(group of each row, first row of each group) of integer row codes, groups in
    code order.

    Example:
        >>> g, first = unique_groups(np.array([7, 3, 7]))
        >>> g.tolist(), first.tolist()
        ([1, 0, 1], [1, 0])
    """
    _, first, inverse = np.unique(codes, return_index=True, return_inverse=True)
    return inverse.astype(np.intp), first.astype(np.intp)


def dense_list(matrix: NDArray[Any], kind: pa.DataType) -> pa.Array:
    """A list column with one list per row of ``matrix``.

    Example:
        >>> dense_list(np.array([[1, 2], [3, 4]]), pa.uint32()).to_pylist()
        [[1, 2], [3, 4]]
    """
    rows, width = matrix.shape
    offsets = np.arange(rows + 1, dtype=np.int64) * width
    return list_array(matrix.reshape(-1), offsets, kind)


def arrow_column(table: pa.Table, name: str) -> pa.Array:
    """Column ``name`` of ``table`` as one Arrow array.

    Example:
        >>> arrow_column(pa.table({"a": [1, 2]}), "a").to_pylist()
        [1, 2]
    """
    column = table[name]
    return column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column


# --- merging rows -------------------------------------------------------------------------


def merge_scores(table: pa.Table, group: NDArray[np.intp], n_groups: int) -> dict[str, Any]:
    """Merge ``bucket_scores`` rows: row ``i`` into group ``group[i]``.

    Returns the merged value columns (numpy arrays and Arrow list arrays, one
    entry per group) -- everything of ``bucket_scores`` but the key. Rows of a
    group must share the classes (the key includes them).

    Example:
        >>> import datetime as dt
        >>> rows = score_rows(
        ...     {"tenant": ["t"], "model": ["m"], "version": ["v"], "cohort_key": [""],
        ...      "cohort_value": [""], "bucket": [dt.datetime(2026, 1, 1, tzinfo=dt.UTC)],
        ...      "classes": [["0", "1"]]}, n_predictions=np.array([3]))
        >>> merged = merge_scores(pa.concat_tables([rows, rows]), np.array([0, 0]), 1)
        >>> merged["n_predictions"].tolist()
        [6]
    """
    out: dict[str, Any] = {}
    for name in ("n_predictions", "n_labelled"):
        out[name] = np.bincount(
            group, weights=arrow_column(table, name).to_numpy(), minlength=n_groups
        ).astype(np.int64)
    # Rows without predictions hold an empty histogram.
    hist, _ = merge_lists(arrow_column(table, "score_hist"), group, n_groups)
    score = np.zeros((n_groups, SCORE_BINS))
    score[:, : hist.shape[1]] = hist
    out["score_hist"] = score
    index, offsets, (count,) = merge_sparse(
        arrow_column(table, "lag_bin"),
        [arrow_column(table, "lag_count")],
        group,
        n_groups,
        LAG_BINS,
    )
    out["lag"] = (index, offsets, count)
    out.update(codec.merge(table, group, n_groups))  # the ScoreStats columns
    for name in ESTIMATE_SCALARS:
        summed = np.bincount(
            group, weights=arrow_column(table, name).to_numpy(), minlength=n_groups
        )
        out[name] = summed.astype(np.int64) if name == "est_n" else summed
    for name in ESTIMATE_LISTS:  # rows without predictions hold empty lists
        sums, _ = merge_lists(arrow_column(table, name), group, n_groups)
        dense = np.zeros((n_groups, ESTIMATE_BINS))
        dense[:, : sums.shape[1]] = sums
        out[name] = dense
    return out


def estimate_columns(sums: LossSums) -> dict[str, NDArray[Any]]:
    """The bucket columns of the label-lag bridge's sums, for :func:`score_rows`.

    Example:
        >>> from xebench.stats.expected_loss import expected_loss_sums
        >>> cols = estimate_columns(expected_loss_sums(np.array([0.8]), None, np.array([0]), 1))
        >>> cols["est_n"].tolist(), cols["est_hit"].shape
        ([1], (1, 20))
    """
    return {f"est_{name}": getattr(sums, name) for name in (*SUM_SCALARS, *SUM_LISTS)}


def loss_sums(merged: dict[str, Any], g: int | NDArray[np.intp]) -> LossSums:
    """The label-lag bridge's sums of group ``g`` of :func:`merge_scores` (or of groups
    ``g``, an array of them, one row each).

    Example:
        >>> from xebench.stats.expected_loss import expected_loss_sums
        >>> import datetime as dt
        >>> keys = {"tenant": ["t"], "model": ["m"], "version": ["v"], "cohort_key": [""],
        ...     "cohort_value": [""], "bucket": [dt.datetime(2026, 1, 1, tzinfo=dt.UTC)],
        ...     "classes": [["0", "1"]]}
        >>> sums = expected_loss_sums(np.array([0.8]), None, np.array([0]), 1)
        >>> rows = score_rows(keys, n_predictions=np.array([1]), **estimate_columns(sums))
        >>> loss_sums(merge_scores(pa.concat_tables([rows, rows]), np.array([0, 0]), 1), 0).n
        array([2])
    """
    pick = slice(g, g + 1) if isinstance(g, int | np.integer) else np.asarray(g, dtype=np.intp)
    return LossSums(**{name: merged[f"est_{name}"][pick] for name in (*SUM_SCALARS, *SUM_LISTS)})


def lag_counts(merged: dict[str, Any], g: int) -> NDArray[np.float64]:
    """The dense lag histogram of group ``g`` of :func:`merge_scores`.

    Example:
        >>> float(lag_counts({"lag": (np.array([3]), np.array([0, 1]), np.array([2.0]))}, 0)[3])
        2.0
    """
    index, offsets, count = merged["lag"]
    dense = np.zeros(LAG_BINS)
    part = slice(offsets[g], offsets[g + 1])
    dense[index[part]] = count[part]
    return dense


def score_stats(merged: dict[str, Any], g: int, classes: Sequence[str]) -> ScoreStats:
    """The :class:`ScoreStats` of group ``g`` of :func:`merge_scores`.

    Example:
        >>> stats = ScoreStats(["0", "1"]).update(["1", "0"], [0.9, 0.2])
        >>> table = score_rows({"tenant": ["t"], "model": ["m"], "version": ["v"],
        ...     "cohort_key": [""], "cohort_value": [""], "bucket": [None],
        ...     "classes": [["0", "1"]]}, stats=stats)
        >>> score_stats(merge_scores(table, np.array([0]), 1), 0, ["0", "1"]).n
        2
    """
    return codec.decode(merged, g, classes)


# --- building rows ---------------------------------------------------------------------


def score_rows(keys: dict[str, Any], **columns: Any) -> pa.Table:
    """A ``bucket_scores`` table of delta rows: ``keys`` columns plus value columns
    (missing ones are zero); ``lag`` and ``cal`` are sparse tuples as :func:`merge_scores`
    returns them, ``stats`` a single :class:`ScoreStats` for a one-row table.

    Example:
        >>> keys = {"tenant": ["t"], "model": ["m"], "version": ["v"], "cohort_key": [""],
        ...     "cohort_value": [""], "bucket": [None], "classes": [["0", "1"]]}
        >>> row = score_rows(keys, n_predictions=np.array([3])).to_pylist()[0]
        >>> row["n_predictions"], row["n"], row["label_weight"]
        (3, 0, [0.0, 0.0])
    """
    n_groups = len(keys["tenant"])
    stats = columns.pop("stats", None)
    if stats is not None:
        columns.update(codec.encode([stats]))
    zeros = np.zeros(n_groups)
    empty_lists = np.zeros(n_groups + 1, np.int64)
    out: dict[str, Any] = {name: keys[name] for name in SCORE_KEY}
    out["delta"] = np.ones(n_groups, dtype=bool)
    for name in ("n_predictions", "n_labelled"):
        out[name] = np.asarray(columns.get(name, zeros), dtype=np.int64)
    hist = columns.get("score_hist")
    out["score_hist"] = (
        dense_list(np.asarray(hist, dtype=np.uint32), pa.uint32())
        if hist is not None
        else list_array(np.zeros(0, np.uint32), empty_lists, pa.uint32())
    )
    lag_index, lag_offsets, lag_count = columns.get("lag", (np.zeros(0), empty_lists, np.zeros(0)))
    out["lag_bin"] = list_array(np.asarray(lag_index, np.uint16), lag_offsets, pa.uint16())
    out["lag_count"] = list_array(np.asarray(lag_count, np.uint32), lag_offsets, pa.uint32())
    widths = [len(c) for c in _as_pylist(keys["classes"])]
    out.update(codec.score_arrays(columns, n_groups, widths))
    est_n = np.asarray(columns.get("est_n", np.zeros(n_groups)), dtype=np.int64)
    out["est_n"] = est_n
    for name in ESTIMATE_SCALARS[1:]:
        out[name] = np.asarray(columns.get(name, zeros), dtype=np.float64)
    # Per-bin lists only where there are predictions with sums: label rows stay small.
    has = est_n > 0
    est_offsets = np.concatenate([[0], np.cumsum(np.where(has, ESTIMATE_BINS, 0))])
    for name in ESTIMATE_LISTS:
        matrix = columns.get(name)
        flat = (
            np.asarray(matrix, dtype=np.float64)[has].reshape(-1)
            if matrix is not None
            else np.zeros(int(est_offsets[-1]))
        )
        out[name] = list_array(flat, est_offsets.astype(np.int64), pa.float64())
    return pa.table(
        {name: _as_arrow(out[name], SCORE_SCHEMA.field(name).type) for name in SCORE_SCHEMA.names},
        schema=SCORE_SCHEMA,
    )


def merge_features(
    rows: pa.Table, group: NDArray[np.intp], n_groups: int, keys: dict[str, pa.Array]
) -> pa.Table:
    """Merge ``bucket_features`` rows: row ``i`` into group ``group[i]``, keyed by ``keys``.

    Example:
        >>> rows = pa.table({"counts": pa.array([[1, 2], [3, 4]], pa.list_(pa.uint32()))})
        >>> keys = {n: pa.array(["x"]) for n in ("tenant", "model", "version", "cohort_key",
        ...     "cohort_value", "feature")}
        >>> keys["bucket"] = pa.array([0], pa.timestamp("us", tz="UTC"))
        >>> merge_features(rows, np.array([0, 0]), 1, keys)["counts"].to_pylist()
        [[4, 6]]
    """
    matrix, group_width = merge_lists(arrow_column(rows, "counts"), group, n_groups)
    offsets = np.concatenate([[0], np.cumsum(group_width)])
    flat = (
        np.concatenate([matrix[g, : group_width[g]] for g in range(n_groups)])
        if n_groups
        else np.zeros(0)
    )
    columns = dict(keys)
    columns["delta"] = pa.array(np.zeros(n_groups, dtype=bool))
    columns["counts"] = list_array(flat.astype(np.uint32), offsets, pa.uint32())
    return pa.table(columns, schema=FEATURE_SCHEMA)


def calibration_score(table: pa.Table) -> NDArray[np.float64]:
    """P(class 1) for two-class rows, the top-label confidence for the others.

    Example:
        >>> table = pa.table({"probabilities": [[0.7, 0.3], [0.2, 0.5, 0.3]]})
        >>> calibration_score(table).tolist()
        [0.3, 0.5]
    """
    probabilities = arrow_column(table, "probabilities")
    lengths = pc.list_value_length(probabilities).to_numpy(zero_copy_only=False)
    values = pc.list_flatten(probabilities).to_numpy(zero_copy_only=False)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    top = np.maximum.reduceat(values, starts) if values.size else np.zeros(0)
    second = values[np.minimum(starts + 1, values.shape[0] - 1)] if values.size else np.zeros(0)
    return np.where(lengths == 2, second, top)


def take_keys(keys: dict[str, Any], rows: NDArray[np.intp]) -> dict[str, Any]:
    """The key columns (Arrow arrays or NumPy arrays) at ``rows``.

    Example:
        >>> taken = take_keys({"a": np.array([5, 6]), "b": pa.array(["x", "y"])}, np.array([1]))
        >>> taken["a"].tolist(), taken["b"].to_pylist()
        ([6], ['y'])
    """
    taken = {}
    for name, values in keys.items():
        taken[name] = (
            values[rows] if isinstance(values, np.ndarray) else values.take(pa.array(rows))
        )
    return taken


def _as_pylist(values: Any) -> list[Any]:
    return values.to_pylist() if hasattr(values, "to_pylist") else list(values)


def _as_arrow(values: Any, kind: pa.DataType) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if isinstance(values, pa.Array):
        return values if values.type == kind else values.cast(kind)
    if pa.types.is_timestamp(kind):
        array = np.asarray(values)
        if array.dtype.kind in "iu":
            return pa.array(array.astype(np.int64), pa.int64()).cast(kind)
        return pa.array(list(values), kind)
    return pa.array(values, kind)
