"""One columnar form of :class:`~xebench.stats.scores.ScoreStats`: Arrow/DuckDB rows.

A statistic is plain sums, so a one-minute bucket in the event store, a cohort
of an offline benchmark and (later) a Spark partition are all the same row:

==================  =========  ===========================================
column              type       holds
==================  =========  ===========================================
``eps``             DOUBLE     the clip policy the events were scored with
``n``               BIGINT     events
``weight_sq``       DOUBLE     sum of squared weights (Kish's n_eff)
``nll_weight``      DOUBLE     ``nll_*``: weighted moments of the NLL
``nll_mean``        DOUBLE     (total weight, mean, sum of squared
``nll_m2``          DOUBLE     deviations: Chan's merge)
``brier_weight``    DOUBLE     ``brier_*``: the same for the Brier score
``brier_mean``      DOUBLE
``brier_m2``        DOUBLE
``hits``            DOUBLE     weight of top-label hits (accuracy)
``clipped``         BIGINT     events whose true-class probability was < eps
``label_weight``    DOUBLE[]   weight per class
``cal_index``       USMALLINT  filled fine calibration bins (of FINE_BINS),
                    []         with their weight, score sum and hit sum in
``cal_count``       DOUBLE[]   ``cal_count``, ``cal_score_sum`` and
``cal_score_sum``   DOUBLE[]   ``cal_hit_sum`` (sparse: a small bucket
``cal_hit_sum``     DOUBLE[]   stores its few filled bins only)
==================  =========  ===========================================

In memory the same columns are a dict of NumPy arrays, one entry per group
(:data:`SCORE_COLUMNS` names the scalars; ``label_weight`` is an
(n_groups, k) matrix and ``cal`` the sparse tuple (index, offsets, count,
score_sum, hit_sum)). Four functions cover every use:

- :func:`score_sums` -- scored rows to columns, grouped (the fold of a bucket,
  the cohorts of a chunk);
- :func:`encode` -- ScoreStats objects to columns;
- :func:`merge` -- many Arrow rows to one per group (a window, compaction,
  partitions); :func:`merge_sql` is the same merge as a DuckDB query;
- :func:`decode` -- one group of columns back to a ScoreStats
  (:func:`point_results`: the point metrics of many groups at once).

Bootstrap replicates are per-event weights and have no columnar form here:
:func:`encode` refuses statistics that keep them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

from ..errors import InvalidInputError
from ..metrics.blocks import DEFAULT_EPS
from .moments import Moments, combine_moments
from .score_calibration import ECE_BINS, FINE_BINS
from .scored_rows import ScoredRows
from .scores import ScoreStats, point_metrics

__all__ = [
    "SCORE_COLUMNS",
    "SCORE_FIELDS",
    "decode",
    "encode",
    "list_array",
    "merge",
    "merge_lists",
    "merge_sparse",
    "merge_sql",
    "point_results",
    "score_arrays",
    "score_sums",
    "sparse_offsets",
    "sparse_rows",
]

#: The scalar columns, in row order, and their NumPy dtype.
SCORE_COLUMNS: dict[str, type] = {
    "eps": np.float64,
    "n": np.int64,
    "weight_sq": np.float64,
    "nll_weight": np.float64,
    "nll_mean": np.float64,
    "nll_m2": np.float64,
    "brier_weight": np.float64,
    "brier_mean": np.float64,
    "brier_m2": np.float64,
    "hits": np.float64,
    "clipped": np.int64,
}

#: The Arrow fields of a row (what a DuckDB table of statistics declares).
SCORE_FIELDS: list[pa.Field] = [
    *(
        pa.field(name, pa.int64() if kind is np.int64 else pa.float64())
        for name, kind in SCORE_COLUMNS.items()
    ),
    pa.field("label_weight", pa.list_(pa.float64())),
    pa.field("cal_index", pa.list_(pa.uint16())),
    pa.field("cal_count", pa.list_(pa.float64())),
    pa.field("cal_score_sum", pa.list_(pa.float64())),
    pa.field("cal_hit_sum", pa.list_(pa.float64())),
]

_CAL_VALUES = ("cal_count", "cal_score_sum", "cal_hit_sum")
# Above this many (group, index) slots a sparse merge sorts instead of counting densely.
_DENSE_SLOTS = 1 << 22


# --- sparse list columns ------------------------------------------------------------


def list_array(values: NDArray[Any], offsets: NDArray[np.int64], kind: pa.DataType) -> pa.Array:
    """A list column from flat ``values`` and list ``offsets``.

    Example:
        >>> list_array(np.array([1, 2, 3]), np.array([0, 1, 3]), pa.int64()).to_pylist()
        [[1], [2, 3]]
    """
    return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), pa.array(values, kind))


def sparse_offsets(
    keys: NDArray[np.int64], size: int, n_groups: int
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """(index within group, list offsets) of sorted ``group * size + index`` keys.

    Example:
        >>> index, offsets = sparse_offsets(np.array([2, 13, 14]), 10, 2)
        >>> index.tolist(), offsets.tolist()
        ([2, 3, 4], [0, 1, 3])
    """
    offsets = np.searchsorted(keys // size, np.arange(n_groups + 1)).astype(np.int64)
    return keys % size, offsets


def sparse_rows(
    offsets: NDArray[np.int64], rows: NDArray[np.intp]
) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """The entries of groups ``rows`` of a sparse list column (its ``offsets``): for each
    entry, in order, its position in ``rows`` and its position in the flat values.

    Example:
        >>> owner, at = sparse_rows(np.array([0, 2, 2, 5]), np.array([2, 0]))
        >>> owner.tolist(), at.tolist()
        ([0, 0, 0, 1, 1], [2, 3, 4, 0, 1])
    """
    offsets, rows = np.asarray(offsets), np.asarray(rows, dtype=np.intp)
    starts = offsets[rows]
    lengths = offsets[rows + 1] - starts
    owner = np.repeat(np.arange(rows.shape[0]), lengths)
    at = np.arange(int(lengths.sum())) + np.repeat(starts - (np.cumsum(lengths) - lengths), lengths)
    return owner, at


def merge_sparse(
    index: pa.Array, values: Sequence[pa.Array], group: NDArray[np.intp], n_groups: int, size: int
) -> tuple[NDArray[np.int64], NDArray[np.int64], list[NDArray[np.float64]]]:
    """Sum sparse (index, values...) list columns of many rows into one per group.

    Returns (index, offsets, [summed values...]) of the merged sparse lists.

    Example:
        >>> index = pa.array([[1, 3], [3]])
        >>> merged = merge_sparse(index, [pa.array([[1.0, 2.0], [5.0]])], np.array([0, 0]), 1, 4)
        >>> merged[0].tolist(), merged[1].tolist(), merged[2][0].tolist()
        ([1, 3], [0, 2], [1.0, 7.0])
    """
    parents = pc.list_parent_indices(index).to_numpy()
    flat_index = pc.list_flatten(index).to_numpy(zero_copy_only=False).astype(np.int64)
    key = group[parents].astype(np.int64) * size + flat_index
    # copy=False: the float64 lists are read in place (a copy of each costs more than the sums).
    weights = [
        pc.list_flatten(v).to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
        for v in values
    ]
    if n_groups * size <= _DENSE_SLOTS:
        # Few groups (a window, a series): count in a dense array, no sort. The sums are
        # the same, added in the same order.
        present = np.bincount(key, minlength=n_groups * size)
        keys = np.flatnonzero(present)
        sums = [np.bincount(key, weights=w, minlength=n_groups * size)[keys] for w in weights]
    else:
        keys, inverse = np.unique(key, return_inverse=True)
        sums = [np.bincount(inverse, weights=w, minlength=keys.shape[0]) for w in weights]
    index_in_group, offsets = sparse_offsets(keys, size, n_groups)
    return index_in_group, offsets, sums


def merge_lists(
    values: pa.Array, group: NDArray[np.intp], n_groups: int
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Element-wise sums of dense list rows (counts, histograms, class weights) per group.

    Returns (an n_groups x widest matrix of sums, the longest list of each group).

    Example:
        >>> sums, lengths = merge_lists(pa.array([[1, 2], [3], [4, 5]]), np.array([0, 0, 1]), 2)
        >>> sums.tolist(), lengths.tolist()
        ([[4.0, 2.0], [4.0, 5.0]], [2, 2])
    """
    lengths = (
        pc.list_value_length(values).to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
    )
    width = int(lengths.max()) if lengths.size else 0
    parents = pc.list_parent_indices(values).to_numpy()
    starts = values.offsets.to_numpy()[:-1] - values.offsets.to_numpy()[0]
    position = np.arange(parents.shape[0]) - starts[parents]
    flat = pc.list_flatten(values).to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
    sums = np.bincount(
        group[parents].astype(np.int64) * width + position,
        weights=flat,
        minlength=n_groups * width,
    ).reshape(n_groups, width)
    group_width = np.zeros(n_groups, dtype=np.int64)
    np.maximum.at(group_width, group, lengths)
    return sums, group_width


# --- encode ----------------------------------------------------------------------------


def score_sums(
    group: NDArray[np.intp], n_groups: int, rows: ScoredRows, n_classes: int, eps: float
) -> dict[str, Any]:
    """The columns of many groups of scored rows: row ``i`` counts in group ``group[i]``.

    Weighted when the rows carry weights; ``eps`` is the clip policy they were
    scored with (:meth:`ScoreStats.score`). Equal to ``ScoreStats.add`` of each
    group's rows, computed with one ``np.bincount`` per quantity.

    Example:
        >>> rows = ScoreStats().score([1, 0, 1, 1], [0.9, 0.2, 0.4, 0.7], [1, 1, 2, 1])
        >>> sums = score_sums(np.array([0, 1, 0, 1]), 2, rows, 2, 1e-15)
        >>> sums["n"].tolist(), sums["nll_weight"].tolist(), sums["label_weight"].tolist()
        ([2, 2], [3.0, 2.0], [[0.0, 3.0], [1.0, 1.0]])
        >>> round(decode(sums, 0, None).result()["log_loss"], 4)  # (0.105 + 2 * 0.916) / 3
        0.646
    """
    w = rows.weight

    def total(values: NDArray[Any] | None = None) -> NDArray[np.float64]:
        """Per-group weighted sum of ``values`` (of the weights when None)."""
        if values is None:
            weights = w
        elif w is None:
            weights = values
        else:
            weights = np.where(values, w, 0.0) if values.dtype == bool else values * w
        return np.bincount(group, weights=weights, minlength=n_groups).astype(np.float64)

    count = np.bincount(group, minlength=n_groups)
    columns: dict[str, Any] = {
        "eps": np.full(n_groups, float(eps)),
        "n": count.astype(np.int64),
        "weight_sq": np.bincount(
            group, weights=None if w is None else w * w, minlength=n_groups
        ).astype(np.float64),
    }
    for name, values in (("nll", rows.nll), ("brier", rows.brier)):
        moments = _row_moments(group, n_groups, count, values, w)
        for part, value in zip(("weight", "mean", "m2"), moments, strict=True):
            columns[f"{name}_{part}"] = value
    columns["hits"] = total(rows.hit)
    columns["clipped"] = np.bincount(group[rows.clipped], minlength=n_groups).astype(np.int64)
    k = n_classes
    labels = np.bincount(group * k + rows.codes, weights=w, minlength=n_groups * k)
    columns["label_weight"] = labels.reshape(n_groups, k).astype(np.float64)
    fine = group.astype(np.int64) * FINE_BINS + rows.fine_bin
    cells = n_groups * FINE_BINS
    if cells <= max(rows.n_rows, 1 << 16):
        # Few groups: count every (group, bin) cell densely, then keep the filled
        # ones; sorting the rows (np.unique) cost more than the whole score.
        keys = np.flatnonzero(np.bincount(fine, minlength=cells))
        index, size = fine, cells
    else:
        keys, index = np.unique(fine, return_inverse=True)
        size = keys.shape[0]
    score = rows.score if w is None else rows.score * w
    hit = rows.score_hit if w is None else np.where(rows.score_hit, w, 0.0)
    sums = [
        np.bincount(index, weights=w, minlength=size).astype(np.float64),
        np.bincount(index, weights=score, minlength=size).astype(np.float64),
        np.bincount(index, weights=hit, minlength=size).astype(np.float64),
    ]
    if size == cells:
        sums = [values[keys] for values in sums]
    columns["cal"] = (*sparse_offsets(keys, FINE_BINS, n_groups), *sums)
    return columns


def _row_moments(
    group: NDArray[np.intp],
    n_groups: int,
    count: NDArray[np.int64],
    values: NDArray[np.float64],
    weight: NDArray[np.float64] | None,
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Per-group (weight, mean, m2) of single rows; unweighted rows skip the products.

    Equal, bit for bit, to :func:`combine_moments` with unit weights and zero m2.
    """
    if weight is not None:
        return combine_moments(group, n_groups, weight, values, np.zeros(values.shape[0]))
    total = count.astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        center = np.bincount(group, weights=values, minlength=n_groups) / total
    center[total == 0.0] = 0.0
    deviation = values - center[group]
    spread = np.bincount(group, weights=deviation * deviation, minlength=n_groups)
    return total, center, spread


def encode(stats: Sequence[ScoreStats]) -> dict[str, Any]:
    """The columns of ScoreStats objects, one group each (they may differ in classes).

    Example:
        >>> a = ScoreStats().update([1, 0], [0.9, 0.2])
        >>> columns = encode([a, ScoreStats(eps=1e-6)])
        >>> columns["n"].tolist(), columns["eps"].tolist(), columns["cal"][1].tolist()
        ([2, 0], [1e-15, 1e-06], [0, 2, 2])
    """
    if any(s.replicates for s in stats):
        raise InvalidInputError("stats", "keep bootstrap replicates, which have no row form")
    columns: dict[str, Any] = {
        "eps": np.array([s.eps for s in stats], np.float64),
        "n": np.array([s.n for s in stats], np.int64),
        "weight_sq": np.array([s.weight_sq for s in stats], np.float64),
        "hits": np.array([s.hits for s in stats], np.float64),
        "clipped": np.array([s.clipped for s in stats], np.int64),
    }
    for name in ("nll", "brier"):
        for part in ("weight", "mean", "m2"):
            columns[f"{name}_{part}"] = np.array(
                [getattr(getattr(s, name), part) for s in stats], np.float64
            )
    width = max((s.n_classes for s in stats), default=0)
    columns["label_weight"] = np.array(
        [np.pad(s.label_weight, (0, width - s.n_classes)) for s in stats], np.float64
    ).reshape(len(stats), width)
    filled = [np.flatnonzero(s.cal_count) for s in stats]
    offsets = np.concatenate([[0], np.cumsum([f.shape[0] for f in filled])]).astype(np.int64)

    def flat(values: list[NDArray[Any]]) -> NDArray[Any]:
        return np.concatenate(values) if values else np.zeros(0)

    columns["cal"] = (
        flat(filled).astype(np.int64),
        offsets,
        *(flat([getattr(s, a)[f] for s, f in zip(stats, filled, strict=True)]) for a in
          ("cal_count", "cal_score", "cal_hit")),
    )  # fmt: skip
    return columns


def score_arrays(
    columns: dict[str, Any], n_groups: int, widths: Sequence[int]
) -> dict[str, pa.Array]:
    """The Arrow columns (:data:`SCORE_FIELDS`) of ``columns``; missing ones are empty
    statistics (zero, the default eps) and ``label_weight`` is cut to each group's
    class count ``widths[g]``.

    Example:
        >>> arrays = score_arrays(encode([ScoreStats().update([1], [0.8])]), 1, [2])
        >>> arrays["n"].to_pylist(), arrays["label_weight"].to_pylist()
        ([1], [[0.0, 1.0]])
        >>> score_arrays({}, 1, [3])["label_weight"].to_pylist()
        [[0.0, 0.0, 0.0]]
    """
    out: dict[str, pa.Array] = {}
    for name, kind in SCORE_COLUMNS.items():
        default = np.full(n_groups, DEFAULT_EPS) if name == "eps" else np.zeros(n_groups)
        out[name] = pa.array(np.asarray(columns.get(name, default), dtype=kind))
    widths = np.asarray(widths, dtype=np.int64)
    lw_offsets = np.concatenate([[0], np.cumsum(widths)]).astype(np.int64)
    matrix = columns.get("label_weight")
    flat = np.zeros(int(lw_offsets[-1]))
    if matrix is not None and len(matrix):
        matrix = np.asarray(matrix, dtype=np.float64)
        # A row's classes beyond the matrix width (padding of merged groups) weigh 0.
        keep = np.arange(flat.shape[0]) - np.repeat(lw_offsets[:-1], widths)
        inside = keep < matrix.shape[1]
        flat[inside] = matrix[np.repeat(np.arange(n_groups), widths)[inside], keep[inside]]
    out["label_weight"] = list_array(flat, lw_offsets, pa.float64())
    index, offsets, *values = columns.get(
        "cal", (np.zeros(0), np.zeros(n_groups + 1, np.int64), *(np.zeros(0),) * 3)
    )
    out["cal_index"] = list_array(np.asarray(index, np.uint16), offsets, pa.uint16())
    for name, value in zip(_CAL_VALUES, values, strict=True):
        out[name] = list_array(np.asarray(value, np.float64), offsets, pa.float64())
    return out


# --- merge -----------------------------------------------------------------------------


def _column(table: pa.Table, name: str) -> pa.Array:
    column = table[name]
    return column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column


def merge(table: pa.Table, group: NDArray[np.intp], n_groups: int) -> dict[str, Any]:
    """Merge rows of :data:`SCORE_FIELDS` columns: row ``i`` into group ``group[i]``.

    The rows of a group must share their classes (a table's key includes them)
    and, among rows holding events, their ``eps``. Returns the columns of the
    merged groups (``label_weight`` padded to the widest class list).

    Example:
        >>> a = ScoreStats().update([1, 0], [0.9, 0.2], [2.0, 1.0])
        >>> b = ScoreStats().update([1], [0.6], [0.5])
        >>> rows = pa.table(score_arrays(encode([a, b]), 2, [2, 2]))
        >>> merged = decode(merge(rows, np.array([0, 0]), 1), 0, None).result()
        >>> expected = a.merge(b).result()
        >>> merged["n"], all(abs(merged[k] - expected[k]) < 1e-12 for k in ("log_loss", "brier"))
        (3, True)
    """
    out: dict[str, Any] = {}
    n = _column(table, "n").to_numpy()
    for name in ("n", "clipped"):
        out[name] = np.bincount(
            group, weights=_column(table, name).to_numpy(), minlength=n_groups
        ).astype(np.int64)
    for name in ("weight_sq", "hits"):
        out[name] = np.bincount(group, weights=_column(table, name).to_numpy(), minlength=n_groups)
    eps = _column(table, "eps").to_numpy()
    held = n > 0
    low = np.full(n_groups, np.inf)
    high = np.full(n_groups, -np.inf)
    np.minimum.at(low, group[held], eps[held])
    np.maximum.at(high, group[held], eps[held])
    if np.any(low < high):
        g = int(np.flatnonzero(low < high)[0])
        raise InvalidInputError(
            "rows", "of one group hold events clipped with different eps", value=[low[g], high[g]]
        )
    out["eps"] = np.where(np.isfinite(low), low, DEFAULT_EPS)
    for name in ("nll", "brier"):
        moments = combine_moments(
            group,
            n_groups,
            _column(table, f"{name}_weight").to_numpy().astype(np.float64),
            _column(table, f"{name}_mean").to_numpy(),
            _column(table, f"{name}_m2").to_numpy(),
        )
        for part, value in zip(("weight", "mean", "m2"), moments, strict=True):
            out[f"{name}_{part}"] = value
    index, offsets, sums = merge_sparse(
        _column(table, "cal_index"),
        [_column(table, name) for name in _CAL_VALUES],
        group,
        n_groups,
        FINE_BINS,
    )
    out["cal"] = (index, offsets, *sums)
    matrix, _ = merge_lists(_column(table, "label_weight"), group, n_groups)
    out["label_weight"] = matrix
    return out


def merge_sql(source: str, keys: Sequence[str]) -> str:
    """A DuckDB query merging the rows of ``source`` (a table or subquery with the
    :data:`SCORE_FIELDS` columns) grouped by ``keys``: the same merge as :func:`merge`.

    The moments use Chan's k-part formula about each group's weighted mean
    (a window over the group), the sparse lists an unnest and regroup.

    Example:
        >>> import duckdb
        >>> a = ScoreStats().update([1, 0], [0.9, 0.2])
        >>> b = ScoreStats(eps=1e-15).update([1], [0.6], [3.0])
        >>> con = duckdb.connect()
        >>> rows = pa.table({"k": ["x", "x"], **score_arrays(encode([a, b]), 2, [2, 2])})
        >>> _ = con.register("rows", rows)
        >>> merged = con.sql(merge_sql("rows", ["k"])).to_arrow_table()
        >>> got = decode(merge(merged, np.array([0]), 1), 0, None).result()["log_loss"]
        >>> abs(got - a.merge(b).result()["log_loss"]) < 1e-12
        True
    """
    key = ", ".join(keys)
    same = f"PARTITION BY {key}"
    centers = ", ".join(
        f"coalesce(sum({m}_weight * {m}_mean) OVER ({same}) "
        f"/ nullif(sum({m}_weight) OVER ({same}), 0), 0) AS _{m}_center"
        for m in ("nll", "brier")
    )
    moments = ", ".join(
        f"sum({m}_weight) AS {m}_weight, any_value(_{m}_center) AS {m}_mean, "
        f"sum({m}_m2 + {m}_weight * ({m}_mean - _{m}_center) ** 2) AS {m}_m2"
        for m in ("nll", "brier")
    )
    labels = (
        f"SELECT {key}, list(w ORDER BY i) AS label_weight FROM ("
        f"SELECT {key}, i, sum(lw[i]) AS w FROM (SELECT {key}, label_weight AS lw, "
        f"unnest(range(1, len(label_weight) + 1)) AS i FROM {source}) GROUP BY ALL) GROUP BY ALL"
    )
    bins = (
        f"SELECT {key}, list(b::USMALLINT ORDER BY b) AS cal_index, "
        "list(c ORDER BY b) AS cal_count, list(s ORDER BY b) AS cal_score_sum, "
        "list(h ORDER BY b) AS cal_hit_sum FROM ("
        f"SELECT {key}, b, sum(c) AS c, sum(s) AS s, sum(h) AS h FROM ("
        f"SELECT {key}, unnest(cal_index) AS b, unnest(cal_count) AS c, "
        f"unnest(cal_score_sum) AS s, unnest(cal_hit_sum) AS h FROM {source}"
        ") GROUP BY ALL) GROUP BY ALL"
    )
    return f"""
        WITH centred AS (SELECT *, {centers} FROM {source}),
        scalars AS (
            SELECT {key}, coalesce(min(eps) FILTER (WHERE n > 0), {DEFAULT_EPS!r}) AS eps,
                   sum(n)::BIGINT AS n, sum(weight_sq) AS weight_sq, {moments},
                   sum(hits) AS hits, sum(clipped)::BIGINT AS clipped
            FROM centred GROUP BY {key}
        )
        SELECT scalars.*, labels.label_weight,
               coalesce(bins.cal_index, []::USMALLINT[]) AS cal_index,
               coalesce(bins.cal_count, []::DOUBLE[]) AS cal_count,
               coalesce(bins.cal_score_sum, []::DOUBLE[]) AS cal_score_sum,
               coalesce(bins.cal_hit_sum, []::DOUBLE[]) AS cal_hit_sum
        FROM scalars JOIN ({labels}) labels USING ({key})
        LEFT JOIN ({bins}) bins USING ({key})
        ORDER BY {key}
    """


# --- decode ----------------------------------------------------------------------------


def decode(columns: dict[str, Any], g: int, classes: Sequence[Any] | None) -> ScoreStats:
    """The :class:`ScoreStats` of group ``g`` of ``columns`` (classes as the statistics
    take them: None for binary 0/1).

    Example:
        >>> s = ScoreStats(["a", "b", "c"]).update(["b", "c"], [[0.2, 0.5, 0.3], [0, 0, 1]])
        >>> decode(encode([s]), 0, ["a", "b", "c"]).to_dict() == s.to_dict()
        True
    """
    stats = ScoreStats(classes, eps=float(columns["eps"][g]))
    stats.n = int(columns["n"][g])
    stats.weight_sq = float(columns["weight_sq"][g])
    stats.nll = Moments(*(float(columns[f"nll_{p}"][g]) for p in ("weight", "mean", "m2")))
    stats.brier = Moments(*(float(columns[f"brier_{p}"][g]) for p in ("weight", "mean", "m2")))
    stats.hits = float(columns["hits"][g])
    stats.clipped = int(columns["clipped"][g])
    k = stats.n_classes
    labels = np.asarray(columns["label_weight"][g], dtype=np.float64)[:k]
    stats.label_weight[: labels.shape[0]] = labels
    index, offsets, count, score_sum, hit_sum = columns["cal"]
    part = slice(int(offsets[g]), int(offsets[g + 1]))
    bins = np.asarray(index[part], dtype=np.intp)
    stats.cal_count[bins] = count[part]
    stats.cal_score[bins] = score_sum[part]
    stats.cal_hit[bins] = hit_sum[part]
    return stats


def point_results(
    columns: dict[str, Any], rows: NDArray[np.intp], n_classes: int, *, n_bins: int = ECE_BINS
) -> dict[str, NDArray[np.float64]]:
    """The point metrics (:func:`~xebench.stats.scores.point_metrics`: ``log_loss`` in
    nats, ``brier``, ``ece``, ``mce``, ``prior_log_loss``, ``skill``) of groups ``rows``
    of ``columns``, each of ``n_classes`` classes: for each, what
    ``decode(columns, g, classes).result()`` gives (to the bit; NaN for its None), at a
    fraction of the cost of a ScoreStats per group. The groups must hold events
    (a positive ``nll_weight``).

    Example:
        >>> a = ScoreStats().update([1, 0, 1], [0.8, 0.3, 0.6])
        >>> b = ScoreStats().update([0, 1], [0.1, 0.4], [1.0, 3.0])
        >>> columns = encode([a, b])
        >>> got = point_results(columns, np.array([1, 0]), 2)
        >>> [float(got["log_loss"][i]) == s.result()["log_loss"] for i, s in enumerate((b, a))]
        [True, True]
    """
    rows = np.asarray(rows, dtype=np.intp)
    labels = np.zeros((rows.shape[0], n_classes))
    held = np.asarray(columns["label_weight"])
    if held.ndim == 2 and held.shape[0]:
        width = min(n_classes, held.shape[1])
        labels[:, :width] = held[rows, :width]
    index, offsets, *sums = columns["cal"]
    owner, at = sparse_rows(offsets, rows)
    bins = np.asarray(index)[at].astype(np.intp)
    dense = []
    for values in sums:
        matrix = np.zeros((rows.shape[0], FINE_BINS))
        matrix[owner, bins] = np.asarray(values)[at]
        dense.append(matrix)
    return point_metrics(
        np.asarray(columns["nll_mean"], dtype=np.float64)[rows],
        np.asarray(columns["brier_mean"], dtype=np.float64)[rows],
        labels,
        *dense,
        n_bins=n_bins,
    )
