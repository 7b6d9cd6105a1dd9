"""Per-minute statistics of the event store: what every window, drift check and canary merges.

The event tables hold raw events; monitoring never rescans them. Instead,
each committed event is *folded* once into mergeable statistics per

    (tenant, model, version, cohort key/value or "all", one-minute bucket)

of the prediction's event time:

- ``bucket_scores``: predictions counted, a histogram of the model's score,
  labels joined, a histogram of label lag, and the :class:`~xebench.ScoreStats`
  of the labelled predictions (as its ``to_row`` columns);
- ``bucket_features``: a histogram of each monitored feature, in bins fixed
  per (tenant, model, feature) in ``feature_bins``.

A window is a merge of buckets (:func:`merge_scores`), so a window computed
after late labels equals a recomputation from scratch: a late label folds
into the bucket of *its prediction*. Folding is idempotent by construction:
every prediction and label row carries the ``seq`` of the commit that wrote
it, and the fold advances two high-water marks (stored in ``meta`` in the
same transaction as the statistics), so each event is folded exactly once,
even across a kill -9.

A prediction joins the first label that arrived for it (the lowest ``seq``;
in one commit a label naming the model wins over a model-less one); a second
label for the same prediction is stored but never counted twice.

Folds append *delta* rows; :meth:`Buckets.compact` merges the rows of each key
into one, so queries read about one row per key.

Cardinality is bounded: the first ``cohort_cap`` values of each cohort key of
a model get their own buckets (within one fold, the most frequent first),
later ones go to ``"__other__"``; feature
histograms are kept for the model as a whole (and per cohort only when
``cohort_features`` is set), for at most ``max_features`` features per model.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

from ..metrics.kernel import _uniform_bin_index
from ..stats.scores import FINE_BINS, STATS_VERSION, ScoreStats, combine_moments, group_score_sums

__all__ = [
    "ALL",
    "BUCKET_SECONDS",
    "LAG_BINS",
    "OTHER",
    "SCORE_BINS",
    "Buckets",
    "FeatureBins",
    "MonitorConfig",
    "lag_percentile",
    "merge_scores",
]

log = logging.getLogger("xebench.store.buckets")

#: Width of a bucket; windows and series steps are multiples of it.
BUCKET_SECONDS = 60
#: Cohort key and value of the model-wide buckets.
ALL = ""
#: Cohort value of the values beyond the cap.
OTHER = "__other__"
#: Uniform bins of the score histogram (binary: P(class 1); multiclass: top-label confidence).
SCORE_BINS = 20
#: Label-lag bins: [0, 1 s), then ten per decade from 1 s to 1e8 s (three years), then more.
LAG_PER_DECADE = 10
LAG_BINS = 2 + 8 * LAG_PER_DECADE
#: Missing or non-numeric values of a numeric feature count in this extra last bin.
_BUCKET_MICROS = BUCKET_SECONDS * 1_000_000
_SCORE_EDGES = np.linspace(0.0, 1.0, SCORE_BINS + 1)

# Migration 2: commit sequence numbers on events, and the bucket tables. Frozen.
MIGRATION_2 = """
ALTER TABLE predictions ADD COLUMN seq BIGINT DEFAULT 0;
ALTER TABLE labels ADD COLUMN seq BIGINT DEFAULT 0;
CREATE TABLE bucket_scores (
    tenant VARCHAR NOT NULL, model VARCHAR NOT NULL, version VARCHAR NOT NULL,
    cohort_key VARCHAR NOT NULL, cohort_value VARCHAR NOT NULL,
    bucket TIMESTAMPTZ NOT NULL, classes VARCHAR[] NOT NULL, delta BOOLEAN NOT NULL,
    n_predictions BIGINT NOT NULL, score_hist UINTEGER[] NOT NULL,
    n_labelled BIGINT NOT NULL, lag_bin USMALLINT[] NOT NULL, lag_count UINTEGER[] NOT NULL,
    n BIGINT NOT NULL, nll_mean DOUBLE NOT NULL, nll_m2 DOUBLE NOT NULL,
    brier_mean DOUBLE NOT NULL, brier_m2 DOUBLE NOT NULL, hits DOUBLE NOT NULL,
    clipped BIGINT NOT NULL, label_weight DOUBLE[] NOT NULL,
    cal_index USMALLINT[] NOT NULL, cal_count DOUBLE[] NOT NULL,
    cal_score_sum DOUBLE[] NOT NULL, cal_hit_sum DOUBLE[] NOT NULL
);
CREATE TABLE bucket_features (
    tenant VARCHAR NOT NULL, model VARCHAR NOT NULL, version VARCHAR NOT NULL,
    cohort_key VARCHAR NOT NULL, cohort_value VARCHAR NOT NULL,
    bucket TIMESTAMPTZ NOT NULL, feature VARCHAR NOT NULL, delta BOOLEAN NOT NULL,
    counts UINTEGER[] NOT NULL
);
CREATE TABLE feature_bins (
    tenant VARCHAR NOT NULL, model VARCHAR NOT NULL, feature VARCHAR NOT NULL,
    kind VARCHAR NOT NULL, edges DOUBLE[], categories VARCHAR[], learned_from BIGINT NOT NULL
);
CREATE TABLE cohort_values (
    tenant VARCHAR NOT NULL, model VARCHAR NOT NULL, key VARCHAR NOT NULL,
    value VARCHAR NOT NULL, position INTEGER NOT NULL
);
INSERT INTO meta VALUES ('folded_predictions', '-1'), ('folded_labels', '-1');
"""

#: Each bucket table has an hourly twin holding the same statistics per hour of the
#: prediction's time: a long window or series reads its whole hours there (60x fewer
#: rows to merge) and only its ragged ends from the minutes. Every delta row folded
#: into a minute table is folded into its twin with the bucket floored to the hour,
#: and compaction merges both alike, so an hour row is the merge of its minutes.
HOURLY = {"bucket_scores": "bucket_scores_hour", "bucket_features": "bucket_features_hour"}
HOUR_SECONDS = 3600

#: Part of migration 3 (the store's): the hourly twins, filled from the minute rows of
#: a database folded before they existed (as deltas, merged by the next compaction).
MIGRATION_3_HOURS = """
CREATE TABLE bucket_scores_hour AS SELECT * FROM bucket_scores LIMIT 0;
CREATE TABLE bucket_features_hour AS SELECT * FROM bucket_features LIMIT 0;
INSERT INTO bucket_scores_hour SELECT * REPLACE (
    to_timestamp(epoch_us(bucket) // 3600000000 * 3600) AS bucket, true AS delta
) FROM bucket_scores;
INSERT INTO bucket_features_hour SELECT * REPLACE (
    to_timestamp(epoch_us(bucket) // 3600000000 * 3600) AS bucket, true AS delta
) FROM bucket_features;
"""

_KEY = ("tenant", "model", "version", "cohort_key", "cohort_value", "bucket")
_SCORE_KEY = (*_KEY, "classes")
_FEATURE_KEY = (*_KEY, "feature")

_SCORE_SCHEMA = pa.schema(
    [
        ("tenant", pa.string()),
        ("model", pa.string()),
        ("version", pa.string()),
        ("cohort_key", pa.string()),
        ("cohort_value", pa.string()),
        ("bucket", pa.timestamp("us", tz="UTC")),
        ("classes", pa.list_(pa.string())),
        ("delta", pa.bool_()),
        ("n_predictions", pa.int64()),
        ("score_hist", pa.list_(pa.uint32())),
        ("n_labelled", pa.int64()),
        ("lag_bin", pa.list_(pa.uint16())),
        ("lag_count", pa.list_(pa.uint32())),
        ("n", pa.int64()),
        ("nll_mean", pa.float64()),
        ("nll_m2", pa.float64()),
        ("brier_mean", pa.float64()),
        ("brier_m2", pa.float64()),
        ("hits", pa.float64()),
        ("clipped", pa.int64()),
        ("label_weight", pa.list_(pa.float64())),
        ("cal_index", pa.list_(pa.uint16())),
        ("cal_count", pa.list_(pa.float64())),
        ("cal_score_sum", pa.list_(pa.float64())),
        ("cal_hit_sum", pa.list_(pa.float64())),
    ]
)
_FEATURE_SCHEMA = pa.schema(
    [
        ("tenant", pa.string()),
        ("model", pa.string()),
        ("version", pa.string()),
        ("cohort_key", pa.string()),
        ("cohort_value", pa.string()),
        ("bucket", pa.timestamp("us", tz="UTC")),
        ("feature", pa.string()),
        ("delta", pa.bool_()),
        ("counts", pa.list_(pa.uint32())),
    ]
)


@dataclass(frozen=True)
class MonitorConfig:
    """How much the buckets keep (see the module docstring).

    Attributes:
        cohort_cap: values per cohort key of a model with their own buckets.
        cohort_features: also keep feature histograms per cohort (costly:
            features x cohorts rows per minute).
        max_features: monitored features per model (the first seen, by name).
        learn_after: values of a feature seen before its bins are fixed from
            them (until then it is not histogrammed; then everything stored is).
        numeric_bins: quantile bins of a numeric feature.
        top_k: categories of a categorical feature (the rest is "other").
        fold_rows: events folded per transaction.

    Example:
        >>> MonitorConfig(cohort_cap=20).cohort_cap
        20
    """

    cohort_cap: int = 100
    cohort_features: bool = False
    max_features: int = 50
    learn_after: int = 1000
    numeric_bins: int = 50
    top_k: int = 30
    fold_rows: int = 200_000


@dataclass(frozen=True)
class FeatureBins:
    """The monitoring bins of one feature of one model, fixed once.

    Numeric: ``edges`` e_0 < ... < e_m give the bins (-inf, e_0], (e_0, e_1],
    ..., (e_m, +inf), then one bin for missing or non-numeric values.
    Categorical: one bin per category, then "other", then missing.

    Example:
        >>> bins = FeatureBins("amount", "numeric", edges=(1.0, 10.0))
        >>> bins.n_bins, bins.index(np.array([0.5, 5.0, 50.0, np.nan])).tolist()
        (4, [0, 1, 2, 3])
    """

    feature: str
    kind: str
    edges: tuple[float, ...] = ()
    categories: tuple[str, ...] = ()

    @property
    def n_bins(self) -> int:
        """Number of bins, the missing bin included."""
        if self.kind == "numeric":
            return len(self.edges) + 2
        return len(self.categories) + 2

    def index(self, values: NDArray[Any]) -> NDArray[np.intp]:
        """Bin of each value (numeric: float array with NaN for missing; else object array)."""
        if self.kind == "numeric":
            numbers = np.asarray(values, dtype=np.float64)
            index = np.searchsorted(np.asarray(self.edges), numbers, side="left")
            index[~np.isfinite(numbers)] = self.n_bins - 1
            return index.astype(np.intp)
        lookup = {c: i for i, c in enumerate(self.categories)}
        other, missing = len(self.categories), len(self.categories) + 1
        return np.fromiter(
            (missing if v is None else lookup.get(v, other) for v in values),
            dtype=np.intp,
            count=len(values),
        )

    @classmethod
    def learn(
        cls,
        feature: str,
        numbers: NDArray[np.float64],
        texts: Sequence[str | None],
        config: MonitorConfig,
    ) -> FeatureBins:
        """Bins from the first values seen: numeric when at least 95% of the present
        values are numbers, else the ``top_k`` most frequent texts.

        Example:
            >>> values = np.arange(100.0)
            >>> texts = [str(v) for v in values]
            >>> FeatureBins.learn("n", values, texts, MonitorConfig(numeric_bins=4))
            FeatureBins(feature='n', kind='numeric', edges=(24.75, 49.5, 74.25), categories=())
        """
        finite = numbers[np.isfinite(numbers)]
        present = sum(t is not None for t in texts)  # numbers have a text form too
        if present and finite.shape[0] >= 0.95 * present:
            inner = np.linspace(0.0, 1.0, config.numeric_bins + 1)[1:-1]
            edges = np.unique(np.quantile(finite, inner)) if finite.size else np.array([])
            return cls(feature, "numeric", edges=tuple(float(e) for e in edges))
        counts: dict[str, int] = {}
        for text in texts:
            if text is not None:
                counts[text] = counts.get(text, 0) + 1
        top = sorted(counts, key=lambda t: (-counts[t], t))[: config.top_k]
        return cls(feature, "categorical", categories=tuple(top))


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
    so the answer is within that resolution. None when empty.

    Example:
        >>> counts = np.zeros(LAG_BINS); counts[lag_bin(np.array([100.0]))] = 4
        >>> 100 <= lag_percentile(counts, 50) < 126
        True
    """
    total = float(counts.sum())
    if total <= 0:
        return None
    cumulative = np.cumsum(counts)
    target = q / 100.0 * total
    b = int(np.searchsorted(cumulative, target, side="left"))
    b = min(b, LAG_BINS - 1)
    before = cumulative[b - 1] if b else 0.0
    fraction = 0.0 if counts[b] == 0 else (target - before) / counts[b]
    if b == 0:
        return float(fraction)
    low = 10.0 ** ((b - 1) / LAG_PER_DECADE)
    return float(low * 10.0 ** (fraction / LAG_PER_DECADE))


# --- grouping helpers -----------------------------------------------------------------


def _codes(values: pa.Array | NDArray[Any]) -> tuple[NDArray[np.int64], int]:
    """Dense integer codes of a column and their count."""
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

    Example:
        >>> g, first = group_ids([pa.array(["a", "b", "a"]), np.array([1, 1, 1])])
        >>> g.tolist(), first.tolist()
        ([0, 1, 0], [0, 1])
    """
    combined: NDArray[np.int64] | None = None
    for column in columns:
        codes, size = _codes(column)
        combined = codes if combined is None else combined * max(size, 1) + codes
    assert combined is not None
    _, first, inverse = np.unique(combined, return_index=True, return_inverse=True)
    return inverse.astype(np.intp), first.astype(np.intp)


def _list_array(values: NDArray[Any], offsets: NDArray[np.int64], kind: pa.DataType) -> pa.Array:
    return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), pa.array(values, kind))


def _dense_list(matrix: NDArray[Any], kind: pa.DataType) -> pa.Array:
    rows, width = matrix.shape
    offsets = np.arange(rows + 1, dtype=np.int64) * width
    return _list_array(matrix.reshape(-1), offsets, kind)


# Above this many (group, index) slots a sparse merge sorts instead of counting densely.
_DENSE_SLOTS = 1 << 22


def _sparse_merge(
    index: pa.Array, values: Sequence[pa.Array], group: NDArray[np.intp], n_groups: int, size: int
) -> tuple[NDArray[np.int64], NDArray[np.int64], list[NDArray[np.float64]]]:
    """Sum sparse (index, values...) list columns of many rows into one per group."""
    parents = pc.list_parent_indices(index).to_numpy()
    flat_index = pc.list_flatten(index).to_numpy(zero_copy_only=False).astype(np.int64)
    key = group[parents].astype(np.int64) * size + flat_index
    weights = [pc.list_flatten(v).to_numpy(zero_copy_only=False).astype(np.float64) for v in values]
    if n_groups * size <= _DENSE_SLOTS:
        # Few groups (a window, a series): count in a dense array, no sort. The sums are
        # the same, added in the same order.
        present = np.bincount(key, minlength=n_groups * size)
        keys = np.flatnonzero(present)
        sums = [np.bincount(key, weights=w, minlength=n_groups * size)[keys] for w in weights]
    else:
        keys, inverse = np.unique(key, return_inverse=True)
        sums = [np.bincount(inverse, weights=w, minlength=keys.shape[0]) for w in weights]
    offsets = np.searchsorted(keys // size, np.arange(n_groups + 1)).astype(np.int64)
    return keys % size, offsets, sums


def _sparse_from_keys(
    keys: NDArray[np.int64], size: int, n_groups: int
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """(index within group, list offsets) of sorted ``group * size + index`` keys."""
    offsets = np.searchsorted(keys // size, np.arange(n_groups + 1)).astype(np.int64)
    return keys % size, offsets


def _column(table: pa.Table, name: str) -> pa.Array:
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
        >>> rows = Buckets.score_rows(
        ...     {"tenant": ["t"], "model": ["m"], "version": ["v"], "cohort_key": [""],
        ...      "cohort_value": [""], "bucket": [dt.datetime(2026, 1, 1, tzinfo=dt.UTC)],
        ...      "classes": [["0", "1"]]}, n_predictions=np.array([3]))
        >>> merged = merge_scores(pa.concat_tables([rows, rows]), np.array([0, 0]), 1)
        >>> merged["n_predictions"].tolist()
        [6]
    """
    out: dict[str, Any] = {}
    for name in ("n_predictions", "n_labelled", "n", "clipped"):
        out[name] = np.bincount(
            group, weights=_column(table, name).to_numpy(), minlength=n_groups
        ).astype(np.int64)
    out["hits"] = np.bincount(group, weights=_column(table, "hits").to_numpy(), minlength=n_groups)
    weight = _column(table, "n").to_numpy().astype(np.float64)
    for name in ("nll", "brier"):
        _, mean, m2 = combine_moments(
            group,
            n_groups,
            weight,
            _column(table, f"{name}_mean").to_numpy(),
            _column(table, f"{name}_m2").to_numpy(),
        )
        out[f"{name}_mean"], out[f"{name}_m2"] = mean, m2
    hist = _column(table, "score_hist")
    lengths = pc.list_value_length(hist).to_numpy(zero_copy_only=False)
    score = np.zeros((n_groups, SCORE_BINS))
    filled = lengths == SCORE_BINS
    if filled.any():
        flat = pc.list_flatten(hist.filter(pa.array(filled))).to_numpy(zero_copy_only=False)
        np.add.at(score, group[filled], flat.reshape(-1, SCORE_BINS))
    out["score_hist"] = score
    index, offsets, (count,) = _sparse_merge(
        _column(table, "lag_bin"), [_column(table, "lag_count")], group, n_groups, LAG_BINS
    )
    out["lag"] = (index, offsets, count)
    index, offsets, sums = _sparse_merge(
        _column(table, "cal_index"),
        [_column(table, n) for n in ("cal_count", "cal_score_sum", "cal_hit_sum")],
        group,
        n_groups,
        FINE_BINS,
    )
    out["cal"] = (index, offsets, *sums)
    labels = _column(table, "label_weight")
    parents = pc.list_parent_indices(labels).to_numpy()
    starts = labels.offsets.to_numpy()[:-1] - labels.offsets.to_numpy()[0]
    position = np.arange(parents.shape[0]) - starts[parents]
    width = int(position.max()) + 1 if position.size else 0
    matrix = np.zeros((n_groups, width))
    np.add.at(
        matrix,
        (group[parents], position),
        pc.list_flatten(labels).to_numpy(zero_copy_only=False),
    )
    out["label_weight"] = matrix
    return out


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
        >>> table = Buckets.score_rows({"tenant": ["t"], "model": ["m"], "version": ["v"],
        ...     "cohort_key": [""], "cohort_value": [""], "bucket": [None],
        ...     "classes": [["0", "1"]]}, stats=stats)
        >>> score_stats(merge_scores(table, np.array([0]), 1), 0, ["0", "1"]).n
        2
    """
    n = int(merged["n"][g])
    index, offsets, count, score_sum, hit_sum = merged["cal"]
    part = slice(offsets[g], offsets[g + 1])
    k = len(classes)
    return ScoreStats.from_row(
        {
            "version": STATS_VERSION,
            "classes": list(classes),
            "eps": 1e-15,
            "n": n,
            "weight_sq": float(n),
            "nll_weight": float(n),
            "nll_mean": float(merged["nll_mean"][g]),
            "nll_m2": float(merged["nll_m2"][g]),
            "brier_weight": float(n),
            "brier_mean": float(merged["brier_mean"][g]),
            "brier_m2": float(merged["brier_m2"][g]),
            "hits": float(merged["hits"][g]),
            "clipped": int(merged["clipped"][g]),
            "label_weight": (
                list(merged["label_weight"][g, :k]) + [0.0] * (k - merged["label_weight"].shape[1])
            )[:k],
            "cal_index": index[part].tolist(),
            "cal_count": count[part].tolist(),
            "cal_score_sum": score_sum[part].tolist(),
            "cal_hit_sum": hit_sum[part].tolist(),
            "boot_replicates": 0,
            "boot_seed": 0,
            "boot_sums": [],
        }
    )


# --- the maintainer -----------------------------------------------------------------------


@dataclass
class _Vocabulary:
    """Admitted cohort values per (tenant, model, key), first come first served."""

    values: dict[tuple[str, str, str], dict[str, int]] = field(default_factory=dict)
    added: list[tuple[str, str, str, str, int]] = field(default_factory=list)

    def admit(self, tenant: str, model: str, key: str, value: str, cap: int) -> str:
        known = self.values.setdefault((tenant, model, key), {})
        if value in known:
            return value
        if len(known) >= cap:
            return OTHER
        known[value] = len(known)
        self.added.append((tenant, model, key, value, known[value]))
        return value


class Buckets:
    """Folds committed events into the bucket tables; one per :class:`EventStore`.

    All methods take the store's writing connection and run inside the
    caller's transaction, except :meth:`fold_all` and :meth:`rebuild`, which
    commit step by step.
    """

    def __init__(self, config: MonitorConfig | None = None) -> None:
        self.config = config or MonitorConfig()
        self._vocabulary = _Vocabulary()
        self._bins: dict[tuple[str, str], dict[str, FeatureBins]] = {}
        self._unbinned: dict[tuple[str, str, str], int] = {}

    # --- state ---------------------------------------------------------------------

    def load(self, con: duckdb.DuckDBPyConnection) -> None:
        """Read the cohort vocabulary and the feature bins."""
        self._vocabulary = _Vocabulary()
        for tenant, model, key, value, position in con.execute(
            "SELECT tenant, model, key, value, position FROM cohort_values ORDER BY position"
        ).fetchall():
            self._vocabulary.values.setdefault((tenant, model, key), {})[value] = position
        self._bins = {}
        for tenant, model, feature, kind, edges, categories in con.execute(
            "SELECT tenant, model, feature, kind, edges, categories FROM feature_bins"
        ).fetchall():
            self._bins.setdefault((tenant, model), {})[feature] = FeatureBins(
                feature, kind, tuple(edges or ()), tuple(categories or ())
            )
        self._unbinned = {}

    def feature_bins(self, tenant: str, model: str) -> dict[str, FeatureBins]:
        """The fixed bins of each monitored feature of a model (a copy)."""
        return dict(self._bins.get((tenant, model), {}))

    @staticmethod
    def marks(con: duckdb.DuckDBPyConnection) -> tuple[int, int]:
        """(last folded prediction seq, last folded label seq)."""
        rows = dict(
            con.execute(
                "SELECT key, value FROM meta WHERE key IN ('folded_predictions', 'folded_labels')"
            ).fetchall()
        )
        return int(rows["folded_predictions"]), int(rows["folded_labels"])

    @staticmethod
    def _set_marks(con: duckdb.DuckDBPyConnection, predictions: int, labels: int) -> None:
        con.execute(
            "UPDATE meta SET value = CASE key WHEN 'folded_predictions' THEN ? ELSE ? END "
            "WHERE key IN ('folded_predictions', 'folded_labels')",
            [str(predictions), str(labels)],
        )

    # --- folding -------------------------------------------------------------------

    def steps(
        self, con: duckdb.DuckDBPyConnection, p_mark: int, l_mark: int
    ) -> Iterator[tuple[int, int, int, int]]:
        """The fold steps from the marks to the last commit: predictions first (labels
        fixed), then labels (predictions fixed), each about ``fold_rows`` events."""
        p_end, l_end = p_mark, l_mark
        for table, mark in (("predictions", p_mark), ("labels", l_mark)):
            sizes = con.execute(
                f"SELECT seq, count(*) FROM {table} WHERE seq > ? GROUP BY seq ORDER BY seq",
                [mark],
            ).fetchall()
            start, rows = mark, 0
            for seq, count in sizes:
                rows += count
                if rows >= self.config.fold_rows:
                    yield (
                        (start, seq, l_end, l_end)
                        if table == "predictions"
                        else (
                            p_end,
                            p_end,
                            start,
                            seq,
                        )
                    )
                    start, rows = seq, 0
            if rows:
                last = sizes[-1][0]
                yield (
                    (start, last, l_end, l_end)
                    if table == "predictions"
                    else (
                        p_end,
                        p_end,
                        start,
                        last,
                    )
                )
                start = last
            if table == "predictions":
                p_end = start

    def fold(
        self, con: duckdb.DuckDBPyConnection, p0: int, p1: int, l0: int, l1: int
    ) -> dict[str, int]:
        """Fold predictions with seq in (p0, p1] and labels in (l0, l1]; set the marks.

        Runs in the caller's transaction. Returns counts of what was folded. If it
        raises (the caller rolls back), the in-memory vocabulary and bins are restored.
        """
        saved = (
            {key: dict(values) for key, values in self._vocabulary.values.items()},
            list(self._vocabulary.added),
            {key: dict(bins) for key, bins in self._bins.items()},
            dict(self._unbinned),
        )
        try:
            predictions = 0
            if p1 > p0:
                predictions = self._fold_predictions(con, p0, p1)
            pairs = self._fold_pairs(con, p0, p1, l0, l1)
            self._save_vocabulary(con)
            self._set_marks(con, p1, l1)
        except BaseException:
            self._vocabulary.values, self._vocabulary.added, self._bins, self._unbinned = saved
            raise
        return {"predictions": predictions, "joined": pairs}

    def _save_vocabulary(self, con: duckdb.DuckDBPyConnection) -> None:
        if self._vocabulary.added:
            con.executemany(
                "INSERT INTO cohort_values VALUES (?, ?, ?, ?, ?)", self._vocabulary.added
            )
            self._vocabulary.added = []

    def _expand(
        self, table: pa.Table, *, cohorts: bool = True
    ) -> tuple[NDArray[np.intp], dict[str, pa.Array | NDArray[Any]]]:
        """One entry per row for the model as a whole, plus one per cohort entry.

        Returns (source row of each entry, key columns of each entry).
        """
        n = table.num_rows
        tenant, model = _column(table, "tenant"), _column(table, "model")
        micros = pc.cast(_column(table, "event_time"), pa.int64()).to_numpy()
        bucket = (micros // _BUCKET_MICROS) * _BUCKET_MICROS
        source = [np.arange(n)]
        keys: list[pa.Array] = [pa.array([ALL] * n, pa.string())]
        values: list[pa.Array] = [pa.array([ALL] * n, pa.string())]
        if cohorts and n:
            cohort = _column(table, "cohort")
            offsets = cohort.offsets.to_numpy()
            start, stop = int(offsets[0]), int(offsets[-1])
            if stop > start:
                parents = np.repeat(np.arange(n), np.diff(offsets))
                key_col = cohort.keys.slice(start, stop - start)
                value_col = cohort.items.slice(start, stop - start)
                admitted = self._admit(
                    tenant.take(pa.array(parents)),
                    model.take(pa.array(parents)),
                    key_col,
                    value_col,
                )
                source.append(parents)
                keys.append(key_col)
                values.append(admitted)
        rows = np.concatenate(source)
        columns: dict[str, pa.Array | NDArray[Any]] = {
            "tenant": tenant.take(pa.array(rows)),
            "model": model.take(pa.array(rows)),
            "version": _column(table, "version").take(pa.array(rows)),
            "cohort_key": pa.concat_arrays(keys),
            "cohort_value": pa.concat_arrays(values),
            "bucket": bucket[rows],
        }
        return rows, columns

    def _admit(self, tenant: pa.Array, model: pa.Array, key: pa.Array, value: pa.Array) -> pa.Array:
        """Cohort values, with those beyond the cap of their key replaced by OTHER."""
        combos = pa.table({"t": tenant, "m": model, "k": key, "v": value})
        group, first = group_ids([tenant, model, key, value])
        unique = combos.take(pa.array(first)).to_pylist()
        cap = self.config.cohort_cap
        # New values are admitted most frequent first (ties by first appearance), so
        # when the cap fills within one fold -- a bulk import -- the top values get it.
        order = np.lexsort((first, -np.bincount(group, minlength=len(unique))))
        mapped: list[str] = [""] * len(unique)
        for i in order.tolist():
            r = unique[i]
            mapped[i] = self._vocabulary.admit(r["t"], r["m"], r["k"], r["v"], cap)
        return pa.array(mapped, pa.string()).take(pa.array(group))

    def _fold_predictions(self, con: duckdb.DuckDBPyConnection, p0: int, p1: int) -> int:
        table = _arrow(
            con,
            "SELECT tenant, model, version, event_time, classes, probabilities, cohort "
            "FROM predictions WHERE seq > ? AND seq <= ? ORDER BY seq",
            [p0, p1],
        )
        if not table.num_rows:
            return 0
        rows, keys = self._expand(table)
        keys["classes"] = _column(table, "classes").take(pa.array(rows))
        group, first = group_ids(list(keys.values()))
        n_groups = first.shape[0]
        score_bin = _uniform_bin_index(_calibration_score(table), _SCORE_EDGES)
        hist = np.bincount(
            group * SCORE_BINS + score_bin[rows], minlength=n_groups * SCORE_BINS
        ).reshape(n_groups, SCORE_BINS)
        out = self.score_rows(
            _take_keys(keys, first),
            n_predictions=np.bincount(group, minlength=n_groups),
            score_hist=hist,
        )
        _insert_deltas(con, "bucket_scores", out)
        self._fold_features(con, table, p0, p1)
        return table.num_rows

    # --- features ----------------------------------------------------------------------

    def _fold_features(
        self, con: duckdb.DuckDBPyConnection, table: pa.Table, p0: int, p1: int
    ) -> None:
        models = con.execute(
            """
            SELECT tenant, model, list(DISTINCT k ORDER BY k) FROM (
                SELECT tenant, model, unnest(json_keys(features)) AS k
                FROM predictions WHERE seq > ? AND seq <= ? AND features <> '{}'
            ) GROUP BY tenant, model
            """,
            [p0, p1],
        ).fetchall()
        names_of = {(tenant, model): names for tenant, model, names in models}
        for tenant, model in con.execute(
            "SELECT DISTINCT tenant, model FROM predictions WHERE seq > ? AND seq <= ?", [p0, p1]
        ).fetchall():
            names = names_of.get((tenant, model), [])
            bins = self._bins.setdefault((tenant, model), {})
            # Every monitored feature, present in this step or not: an absent value counts
            # in the missing bin (else the counts would depend on how the folds were cut).
            binned = list(bins.values())
            if binned:
                self._histogram(con, tenant, model, binned, p0, p1)
            room = self.config.max_features - len(bins)
            fresh = [name for name in names if name not in bins][: max(room, 0)]
            if fresh:
                self._learn(con, tenant, model, fresh, p0, p1)

    def _learn(
        self,
        con: duckdb.DuckDBPyConnection,
        tenant: str,
        model: str,
        names: list[str],
        p0: int,
        p1: int,
    ) -> None:
        """Fix the bins of features seen ``learn_after`` times; histogram all they stored."""
        seen = self._feature_values(con, tenant, model, names, p0, p1)
        # Not counted since the store was opened: the values stored before this step count too.
        unseen = [name for name in names if (tenant, model, name) not in self._unbinned]
        before = self._feature_values(con, tenant, model, unseen, -1, p0) if unseen else {}
        ready = []
        for name in names:
            key = (tenant, model, name)
            present = sum(t is not None for t in seen[name][1])
            if name in before:
                present += sum(t is not None for t in before[name][1])
            self._unbinned[key] = self._unbinned.get(key, 0) + present
            if self._unbinned[key] >= self.config.learn_after:
                ready.append(name)
        if not ready:
            return
        # Learn from everything stored so far (a one-time scan), then count it all.
        every = self._feature_values(con, tenant, model, ready, -1, p1)
        new_bins = []
        for name in ready:
            numbers, texts = every[name]
            spec = FeatureBins.learn(name, numbers, texts, self.config)
            self._bins.setdefault((tenant, model), {})[name] = spec
            self._unbinned.pop((tenant, model, name), None)
            new_bins.append(spec)
            con.execute(
                "INSERT INTO feature_bins VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    tenant,
                    model,
                    name,
                    spec.kind,
                    list(spec.edges) if spec.kind == "numeric" else None,
                    list(spec.categories) if spec.kind == "categorical" else None,
                    sum(t is not None for t in texts),
                ],
            )
        self._histogram(con, tenant, model, new_bins, -1, p1)

    @staticmethod
    def _feature_sql(names: Sequence[str]) -> tuple[str, str]:
        """SQL reading the features ``names`` of ``predictions`` rows: (an expression that
        extracts them all, to be selected as ``__fx``; the columns ``n{i}`` / ``t{i}``
        computed from ``__fx``).

        ``n{i}`` is a JSON number as a double, ``t{i}`` the value as text (a JSON
        string or boolean, or a number's JSON text), both NULL when absent. One
        ``json_extract`` with every path parses each row's JSON once: a parse per
        feature and function measured 5.6x slower at 24 features.
        """
        # JSON paths with the key quoted, so that any key text is addressed literally.
        paths = ", ".join(
            "'" + ("$." + json.dumps(name)).replace("'", "''") + "'" for name in names
        )
        parts = []
        for i in range(len(names)):
            value = f"__fx[{i + 1}]"
            number = f"json_type({value}) IN ('BIGINT', 'UBIGINT', 'DOUBLE')"
            parts.append(
                f"CASE WHEN {number} THEN CAST({value} AS DOUBLE) END AS n{i}, "
                f"CASE WHEN json_type({value}) IN ('VARCHAR', 'BOOLEAN') "
                f"THEN json_extract_string({value}, '$') "
                f"WHEN {number} THEN {value}::VARCHAR END AS t{i}"
            )
        return f"json_extract(features, [{paths}])", ", ".join(parts)

    def _feature_values(
        self,
        con: duckdb.DuckDBPyConnection,
        tenant: str,
        model: str,
        names: Sequence[str],
        p0: int,
        p1: int,
    ) -> dict[str, tuple[NDArray[np.float64], list[str | None]]]:
        extract, columns = self._feature_sql(names)
        sql = (
            f"SELECT {columns} FROM (SELECT {extract} AS __fx FROM predictions "
            "WHERE tenant = ? AND model = ? AND seq > ? AND seq <= ?)"
        )
        table = _arrow(con, sql, [tenant, model, p0, p1])
        return {
            name: (
                _column(table, f"n{i}").to_numpy(zero_copy_only=False).astype(np.float64),
                _column(table, f"t{i}").to_pylist(),
            )
            for i, name in enumerate(names)
        }

    def _histogram(
        self,
        con: duckdb.DuckDBPyConnection,
        tenant: str,
        model: str,
        bins: Sequence[FeatureBins],
        p0: int,
        p1: int,
    ) -> None:
        """Append feature-histogram deltas of the model's predictions with seq in (p0, p1]."""
        names = [b.feature for b in bins]
        extract, columns = self._feature_sql(names)
        table = _arrow(
            con,
            f"SELECT tenant, model, version, event_time, cohort, {columns} FROM ("
            f"SELECT tenant, model, version, event_time, cohort, seq, {extract} AS __fx "
            "FROM predictions WHERE tenant = ? AND model = ? AND seq > ? AND seq <= ?"
            ") ORDER BY seq",
            [tenant, model, p0, p1],
        )
        if not table.num_rows:
            return
        rows, keys = self._expand(table, cohorts=self.config.cohort_features)
        group, first = group_ids(list(keys.values()))
        n_groups = first.shape[0]
        key_rows = _take_keys(keys, first)
        parts = []
        for i, spec in enumerate(bins):
            if spec.kind == "numeric":
                values = _column(table, f"n{i}").to_numpy(zero_copy_only=False).astype(np.float64)
            else:
                values = np.array(_column(table, f"t{i}").to_pylist(), dtype=object)
            index = spec.index(values)[rows]
            counts = np.bincount(group * spec.n_bins + index, minlength=n_groups * spec.n_bins)
            columns = dict(key_rows)
            columns["feature"] = pa.array([spec.feature] * n_groups, pa.string())
            columns["delta"] = pa.array(np.ones(n_groups, dtype=bool))
            columns["counts"] = _dense_list(counts.reshape(n_groups, spec.n_bins), pa.uint32())
            parts.append(pa.table(columns, schema=_FEATURE_SCHEMA))
        _insert_deltas(con, "bucket_features", pa.concat_tables(parts))

    # --- labels --------------------------------------------------------------------------

    _PAIRS = """
        WITH new_labels AS (
            SELECT fp, model FROM labels WHERE seq > $l0 AND seq <= $l1
        ), candidates AS (
            SELECT * FROM predictions WHERE seq > $p0 AND seq <= $p1
            UNION ALL
            SELECT * FROM predictions
            WHERE seq <= $p0 AND (fp IN (SELECT fp FROM new_labels WHERE model <> '')
                                  OR rfp IN (SELECT fp FROM new_labels WHERE model = ''))
        ), matches AS (
            SELECT c.tenant, c.model, c.version, c.request_id, c.event_time, c.classes,
                   c.probabilities, c.cohort, c.seq AS pseq, l.label,
                   l.event_time AS label_time, l.seq AS lseq, 0 AS anonymous
            FROM candidates c JOIN labels l
              ON l.fp = c.fp AND l.tenant = c.tenant AND l.model = c.model
             AND l.request_id = c.request_id
            WHERE l.seq <= $l1
            UNION ALL
            SELECT c.tenant, c.model, c.version, c.request_id, c.event_time, c.classes,
                   c.probabilities, c.cohort, c.seq, l.label, l.event_time, l.seq, 1
            FROM candidates c JOIN labels l
              ON l.fp = c.rfp AND l.tenant = c.tenant AND l.model = ''
             AND l.request_id = c.request_id
            WHERE l.seq <= $l1
        ), first_label AS (
            SELECT *, row_number() OVER (
                PARTITION BY tenant, model, request_id ORDER BY lseq, anonymous
            ) AS position
            FROM matches
        )
        SELECT tenant, model, version, event_time, classes, probabilities, cohort,
               label, label_time
        FROM first_label
        WHERE position = 1 AND (pseq > $p0 OR lseq > $l0)
    """

    def _fold_pairs(
        self, con: duckdb.DuckDBPyConnection, p0: int, p1: int, l0: int, l1: int
    ) -> int:
        if p1 <= p0 and l1 <= l0:
            return 0
        table = _arrow(con, self._PAIRS, {"p0": p0, "p1": p1, "l0": l0, "l1": l1})
        if not table.num_rows:
            return 0
        rows, keys = self._expand(table)
        classes = _column(table, "classes")
        keys["classes"] = classes.take(pa.array(rows))
        group, first = group_ids(list(keys.values()))
        n_groups = first.shape[0]
        key_rows = _take_keys(keys, first)
        lag = (
            pc.cast(_column(table, "label_time"), pa.int64()).to_numpy()
            - pc.cast(_column(table, "event_time"), pa.int64()).to_numpy()
        ) / 1e6
        lag_keys, lag_inverse = np.unique(
            group.astype(np.int64) * LAG_BINS + lag_bin(lag)[rows], return_inverse=True
        )
        lag_index, lag_offsets = _sparse_from_keys(lag_keys, LAG_BINS, n_groups)
        columns: dict[str, Any] = {
            "n_labelled": np.bincount(group, minlength=n_groups),
            "lag": (lag_index, lag_offsets, np.bincount(lag_inverse, minlength=lag_keys.shape[0])),
        }
        columns.update(self._score_sums(table, rows, group, n_groups, key_rows["classes"]))
        _insert_deltas(con, "bucket_scores", self.score_rows(key_rows, **columns))
        return table.num_rows

    @staticmethod
    def _score_sums(
        table: pa.Table,
        rows: NDArray[np.intp],
        group: NDArray[np.intp],
        n_groups: int,
        group_classes: pa.Array,
    ) -> dict[str, Any]:
        """ScoreStats sums per group, scored once per distinct class list by the kernel."""
        n = np.zeros(n_groups, dtype=np.int64)
        moments = {
            name: np.zeros(n_groups)
            for name in ("nll_mean", "nll_m2", "brier_mean", "brier_m2", "hits")
        }
        clipped = np.zeros(n_groups, dtype=np.int64)
        label_lists: list[list[float]] = [[] for _ in range(n_groups)]
        cal_parts: list[tuple[NDArray[np.int64], ...]] = []
        class_text = pc.binary_join(_column(table, "classes"), "\x1f").to_numpy(
            zero_copy_only=False
        )
        labels = np.asarray(_column(table, "label").to_pylist(), dtype=object)
        probabilities = _column(table, "probabilities")
        for text in np.unique(class_text):
            classes = text.split("\x1f")
            source = np.flatnonzero(class_text == text)
            scorable = source[np.isin(labels[source], classes)]
            if not scorable.size:
                continue
            k = len(classes)
            matrix = (
                pc.list_flatten(probabilities.take(pa.array(scorable)))
                .to_numpy(zero_copy_only=False)
                .reshape(-1, k)
            )
            stats = ScoreStats(classes)
            scored = stats.score(labels[scorable], matrix[:, 1] if k == 2 else matrix)
            # Entries of the expansion whose source row is scorable, and their position.
            position = np.full(table.num_rows, -1)
            position[scorable] = np.arange(scorable.shape[0])
            entries = np.flatnonzero(position[rows] >= 0)
            local_groups, local_group = np.unique(group[entries], return_inverse=True)
            sums = group_score_sums(
                local_group, local_groups.shape[0], scored.take(position[rows[entries]]), k
            )
            n[local_groups] = sums["n"]
            for name in moments:
                moments[name][local_groups] = sums[name]
            clipped[local_groups] = sums["clipped"]
            for i, g in enumerate(local_groups.tolist()):
                label_lists[g] = sums["label_weight"][i].tolist()
            cal_group = local_groups[sums["cal_key"] // FINE_BINS]
            cal_parts.append(
                (
                    cal_group.astype(np.int64) * FINE_BINS + sums["cal_key"] % FINE_BINS,
                    sums["cal_count"],
                    sums["cal_score_sum"],
                    sums["cal_hit_sum"],
                )
            )
        for g, classes in enumerate(group_classes.to_pylist()):
            if not label_lists[g]:
                label_lists[g] = [0.0] * len(classes)
        if cal_parts:
            key = np.concatenate([p[0] for p in cal_parts])
            order = np.argsort(key, kind="stable")
            key = key[order]
            index, offsets = _sparse_from_keys(key, FINE_BINS, n_groups)
            cal = (
                index,
                offsets,
                *(np.concatenate([p[i] for p in cal_parts])[order] for i in (1, 2, 3)),
            )
        else:
            cal = (np.zeros(0, np.int64), np.zeros(n_groups + 1, np.int64), *(np.zeros(0),) * 3)
        return {"n": n, **moments, "clipped": clipped, "label_weight": label_lists, "cal": cal}

    # --- building rows ------------------------------------------------------------------

    @staticmethod
    def score_rows(keys: dict[str, Any], **columns: Any) -> pa.Table:
        """A ``bucket_scores`` table of delta rows: ``keys`` columns plus value columns
        (missing ones are zero); ``lag`` and ``cal`` are sparse tuples as :func:`merge_scores`
        returns them, ``stats`` a single :class:`ScoreStats` for a one-row table."""
        n_groups = len(keys["tenant"])
        stats = columns.pop("stats", None)
        if stats is not None:
            row = stats.to_row()
            columns.update(
                n=np.array([row["n"]]),
                nll_mean=np.array([row["nll_mean"]]),
                nll_m2=np.array([row["nll_m2"]]),
                brier_mean=np.array([row["brier_mean"]]),
                brier_m2=np.array([row["brier_m2"]]),
                hits=np.array([row["hits"]]),
                clipped=np.array([row["clipped"]]),
                label_weight=[row["label_weight"]],
                cal=(
                    np.array(row["cal_index"], np.int64),
                    np.array([0, len(row["cal_index"])]),
                    np.array(row["cal_count"]),
                    np.array(row["cal_score_sum"]),
                    np.array(row["cal_hit_sum"]),
                ),
            )
        zeros = np.zeros(n_groups)
        empty_lists = np.zeros(n_groups + 1, np.int64)
        out: dict[str, Any] = {name: keys[name] for name in _SCORE_KEY}
        out["delta"] = np.ones(n_groups, dtype=bool)
        for name in ("n_predictions", "n_labelled", "n", "clipped"):
            out[name] = np.asarray(columns.get(name, zeros), dtype=np.int64)
        for name in ("nll_mean", "nll_m2", "brier_mean", "brier_m2", "hits"):
            out[name] = np.asarray(columns.get(name, zeros), dtype=np.float64)
        hist = columns.get("score_hist")
        out["score_hist"] = (
            _dense_list(np.asarray(hist, dtype=np.uint32), pa.uint32())
            if hist is not None
            else _list_array(np.zeros(0, np.uint32), empty_lists, pa.uint32())
        )
        lag_index, lag_offsets, lag_count = columns.get(
            "lag", (np.zeros(0), empty_lists, np.zeros(0))
        )
        out["lag_bin"] = _list_array(np.asarray(lag_index, np.uint16), lag_offsets, pa.uint16())
        out["lag_count"] = _list_array(np.asarray(lag_count, np.uint32), lag_offsets, pa.uint32())
        label_weight = columns.get("label_weight")
        if label_weight is None:
            label_weight = [[0.0] * len(c) for c in _as_pylist(keys["classes"])]
        out["label_weight"] = pa.array(
            [list(map(float, w)) for w in label_weight], pa.list_(pa.float64())
        )
        cal = columns.get("cal", (np.zeros(0), empty_lists, np.zeros(0), np.zeros(0), np.zeros(0)))
        index, offsets = cal[0], cal[1]
        out["cal_index"] = _list_array(np.asarray(index, np.uint16), offsets, pa.uint16())
        for name, values in zip(
            ("cal_count", "cal_score_sum", "cal_hit_sum"), cal[2:], strict=True
        ):
            out[name] = _list_array(np.asarray(values, np.float64), offsets, pa.float64())
        return pa.table(
            {
                name: _as_arrow(out[name], _SCORE_SCHEMA.field(name).type)
                for name in _SCORE_SCHEMA.names
            },
            schema=_SCORE_SCHEMA,
        )

    # --- compaction and rebuild --------------------------------------------------------

    def compact(self, con: duckdb.DuckDBPyConnection) -> int:
        """Merge the rows of every key that has delta rows into one; returns rows removed."""
        removed = 0
        tables = [("bucket_scores", _SCORE_KEY), ("bucket_features", _FEATURE_KEY)]
        for table, key in [*tables, *((HOURLY[t], k) for t, k in tables)]:
            columns = ", ".join(key)
            rows = _arrow(
                con,
                f"""
                SELECT rowid AS _rowid, * FROM {table}
                WHERE ({columns}) IN (SELECT DISTINCT {columns} FROM {table} WHERE delta)
                """,
            )
            if not rows.num_rows:
                continue
            group, first = group_ids([_column(rows, name) for name in key])
            n_groups = first.shape[0]
            keys = {name: _column(rows, name).take(pa.array(first)) for name in key}
            if table.startswith("bucket_scores"):
                merged = merge_scores(rows, group, n_groups)
                # merge_scores pads label_weight to the widest class list of all the keys.
                widths = pc.list_value_length(keys["classes"]).to_numpy(zero_copy_only=False)
                merged["label_weight"] = [
                    w[:k] for w, k in zip(merged["label_weight"], widths.tolist(), strict=True)
                ]
                out = self.score_rows(keys, **merged)
            else:
                out = _merge_features(rows, group, n_groups, keys)
            out = out.set_column(
                out.schema.get_field_index("delta"),
                "delta",
                pa.array(np.zeros(n_groups, dtype=bool)),
            )
            con.register("_xb_gone", pa.table({"r": _column(rows, "_rowid")}))
            try:
                con.execute(f"DELETE FROM {table} WHERE rowid IN (SELECT r FROM _xb_gone)")
            finally:
                con.unregister("_xb_gone")
            _insert(con, table, out)
            removed += rows.num_rows - n_groups
        return removed

    def reset(self, con: duckdb.DuckDBPyConnection) -> None:
        """Forget every bucket (keeping feature bins and the cohort vocabulary) so that the
        next folds recompute them from the raw events. In the caller's transaction."""
        for table in (*HOURLY, *HOURLY.values()):
            con.execute(f"DELETE FROM {table}")
        last_label = con.execute("SELECT coalesce(max(seq), -1) FROM labels").fetchone()[0]
        # Predictions are folded from the start with every label already visible: each
        # pair is counted once, in the step of its prediction.
        self._set_marks(con, -1, int(last_label))
        self._unbinned = {}


def _merge_features(
    rows: pa.Table, group: NDArray[np.intp], n_groups: int, keys: dict[str, pa.Array]
) -> pa.Table:
    counts = _column(rows, "counts")
    lengths = pc.list_value_length(counts).to_numpy(zero_copy_only=False)
    width = int(lengths.max()) if lengths.size else 0
    parents = pc.list_parent_indices(counts).to_numpy()
    starts = counts.offsets.to_numpy()[:-1] - counts.offsets.to_numpy()[0]
    position = np.arange(parents.shape[0]) - starts[parents]
    matrix = np.zeros((n_groups, width), dtype=np.int64)
    np.add.at(
        matrix, (group[parents], position), pc.list_flatten(counts).to_numpy(zero_copy_only=False)
    )
    group_width = np.zeros(n_groups, dtype=np.int64)
    np.maximum.at(group_width, group, lengths)
    offsets = np.concatenate([[0], np.cumsum(group_width)])
    flat = (
        np.concatenate([matrix[g, : group_width[g]] for g in range(n_groups)])
        if n_groups
        else np.zeros(0)
    )
    columns = dict(keys)
    columns["delta"] = pa.array(np.zeros(n_groups, dtype=bool))
    columns["counts"] = _list_array(flat.astype(np.uint32), offsets, pa.uint32())
    return pa.table(columns, schema=_FEATURE_SCHEMA)


def _calibration_score(table: pa.Table) -> NDArray[np.float64]:
    """P(class 1) for two-class rows, the top-label confidence for the others."""
    probabilities = _column(table, "probabilities")
    lengths = pc.list_value_length(probabilities).to_numpy(zero_copy_only=False)
    values = pc.list_flatten(probabilities).to_numpy(zero_copy_only=False)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    top = np.maximum.reduceat(values, starts) if values.size else np.zeros(0)
    second = values[np.minimum(starts + 1, values.shape[0] - 1)] if values.size else np.zeros(0)
    return np.where(lengths == 2, second, top)


def _take_keys(keys: dict[str, Any], rows: NDArray[np.intp]) -> dict[str, Any]:
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


def _arrow(con: duckdb.DuckDBPyConnection, sql: str, params: Any = None) -> pa.Table:
    """The result of ``sql`` as an Arrow table (without DuckDB's extra DB-API copy)."""
    return con.sql(sql, params=params).to_arrow_table()


def _insert_deltas(con: duckdb.DuckDBPyConnection, target: str, rows: pa.Table) -> None:
    """Append folded delta rows to a minute bucket table and, per hour, to its twin."""
    _insert(con, target, rows)
    index = rows.schema.get_field_index("bucket")
    hours = pc.floor_temporal(rows["bucket"], multiple=1, unit="hour")
    _insert(con, HOURLY[target], rows.set_column(index, "bucket", hours))


def _insert(con: duckdb.DuckDBPyConnection, target: str, rows: pa.Table) -> None:
    con.register("_xb_rows", rows)
    try:
        con.execute(f"INSERT INTO {target} BY NAME SELECT * FROM _xb_rows")
    finally:
        con.unregister("_xb_rows")
