"""Drift: reference vs current distributions of features, scores and labels.

One kernel for every way xebench looks at drift -- ``xebench drift`` on
files, the in-memory :func:`drift_frames`, and the HTTP service -- so a
feature's number is the same wherever it is shown.

How a feature is compared:

- **Bins are fixed from the reference.** A numeric column (Arrow integer,
  floating point or decimal type) gets quantile bins, exactly those of
  :meth:`NumericHistogram.from_reference(values, strategy="quantile")
  <xebench.NumericHistogram.from_reference>`, plus bins for values below or
  above the reference range and for NaN / null. A categorical column
  (strings, booleans, dictionary-encoded) gets its ``top_k`` most frequent
  reference values, as :meth:`CategoricalHistogram.from_reference
  <xebench.CategoricalHistogram.from_reference>`, plus "(other)" and
  "(missing)". The current data is counted into the same bins.
- **Divergences** come from :func:`~xebench.stats.histograms.histogram_divergence`
  (the kernel's :func:`~xebench.kl_divergence`, :func:`~xebench.js_divergence`
  and :func:`~xebench.psi`): KL(current || reference) and PSI with additive
  ``smoothing`` for empty bins, and the Jensen-Shannon divergence in nats.
- **Verdict**: ``"insufficient"`` when either side has fewer than
  ``min_samples`` values (no alarm on tiny samples), else ``"drift"`` when
  the JS divergence is at or above ``threshold``, else ``"stable"``. The
  default threshold 0.01 nats is Evidently's default Jensen-Shannon
  *distance* threshold 0.1, squared.
- **Ranking**: drifted features first, then stable, then insufficient; by JS
  divergence within each group.

Files larger than memory are handled: reference columns are read a group of
columns at a time (exact quantiles need a whole column), the current data is
streamed in batches of rows.
"""

from __future__ import annotations

import math
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import ArrayLike, NDArray

from .._validation import check_n_bins, check_smoothing
from ..errors import DataError, InvalidInputError
from ..io.readers import Chunk, as_arrow, check_columns, file_schema, first_line, read_chunks
from ..stats.histograms import (
    CategoricalHistogram,
    Histogram,
    NumericHistogram,
    histogram_divergence,
)

__all__ = [
    "DEFAULT_MIN_SAMPLES",
    "DEFAULT_SMOOTHING",
    "DEFAULT_THRESHOLD",
    "DriftReport",
    "FeatureDrift",
    "compare_histograms",
    "drift_files",
    "drift_frames",
    "rank",
]

#: Fewer values than this on either side: no verdict ("insufficient").
DEFAULT_MIN_SAMPLES = 500
#: JS divergence (nats) at or above which a feature is "drift"
#: (Evidently's default Jensen-Shannon distance threshold 0.1, squared).
DEFAULT_THRESHOLD = 0.01
#: Additive smoothing of the bin shares for KL and PSI (empty bins stay finite).
DEFAULT_SMOOTHING = 1e-4
#: Quantile bins of a numeric feature.
DEFAULT_BINS = 10
#: Categories of a categorical feature (the most frequent reference values).
DEFAULT_TOP_K = 20

KINDS = ("numeric", "categorical", "score", "label")
VERDICTS = ("drift", "stable", "insufficient")

#: Bytes of reference values held in memory at once (a group of columns).
MEMORY_BUDGET = 1 << 30
#: Values per block when counting numeric bins (a block stays in the L2 cache).
_BLOCK = 1 << 16
#: Up to this many edges, bins are counted by comparisons; above, by binary search.
_COMPARE_MAX_EDGES = 24


# --- results ---------------------------------------------------------------------


@dataclass(frozen=True)
class FeatureDrift:
    """One feature's reference vs current comparison.

    Attributes:
        feature: column (or score / label) name.
        kind: ``"numeric"``, ``"categorical"``, ``"score"`` or ``"label"``.
        n_reference, n_current: values on each side (NaN and missing included).
        kl: KL(current || reference) in nats, smoothed; ``None`` if a side is empty.
        js: Jensen-Shannon divergence in nats (0 to ln 2); ``None`` if a side is empty.
        psi: population stability index, smoothed; ``None`` if a side is empty.
        verdict: ``"drift"``, ``"stable"`` or ``"insufficient"``.
        bins: bin labels, out-of-range / NaN / other / missing bins included.
        reference_share, current_share: share of each side's values per bin.

    Example:
        >>> ref = NumericHistogram([0, 1, 2]).update([0.5, 1.5] * 300)
        >>> cur = ref.empty_copy().update([0.5, 1.5, 1.5, 1.5] * 150)
        >>> d = compare_histograms("age", ref, cur)
        >>> d.verdict, round(d.js, 4), d.bins
        ('drift', 0.0338, ['< 0', '[0, 1]', '(1, 2]', '> 2', 'NaN'])
        >>> d.to_dict()["current_share"]
        [0.0, 0.25, 0.75, 0.0, 0.0]
    """

    feature: str
    kind: str
    n_reference: float
    n_current: float
    kl: float | None
    js: float | None
    psi: float | None
    verdict: str
    bins: list[str]
    reference_share: list[float]
    current_share: list[float]

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe plain data (every number finite or ``None``)."""
        return {
            "feature": self.feature,
            "kind": self.kind,
            "n_reference": self.n_reference,
            "n_current": self.n_current,
            "kl": self.kl,
            "js": self.js,
            "psi": self.psi,
            "verdict": self.verdict,
            "bins": list(self.bins),
            "reference_share": list(self.reference_share),
            "current_share": list(self.current_share),
        }


def compare_histograms(
    feature: str,
    reference: Histogram,
    current: Histogram,
    *,
    kind: str | None = None,
    min_samples: int = DEFAULT_MIN_SAMPLES,
    threshold: float = DEFAULT_THRESHOLD,
    smoothing: float = DEFAULT_SMOOTHING,
) -> FeatureDrift:
    """Compare a current histogram with the reference one (same bins).

    ``kind`` defaults to ``"numeric"`` or ``"categorical"`` from the
    histogram type (pass ``"score"`` or ``"label"`` for model scores and
    labels). Divergences are those of
    :func:`~xebench.stats.histograms.histogram_divergence`; an empty side gives
    ``None`` divergences and the verdict ``"insufficient"``.

    Example:
        >>> ref = CategoricalHistogram(["eu", "us"]).update(["eu"] * 600 + ["us"] * 400)
        >>> cur = ref.empty_copy().update(["eu"] * 450 + ["us"] * 450 + ["apac"] * 100)
        >>> d = compare_histograms("region", ref, cur)
        >>> d.kind, d.verdict, round(d.js, 4), round(d.psi, 4)
        ('categorical', 'drift', 0.0408, 0.7396)
        >>> compare_histograms("region", ref, cur, min_samples=2000).verdict
        'insufficient'
    """
    if not isinstance(feature, str):
        raise InvalidInputError("feature", "must be a string", value=feature)
    kind = _check_kind(kind, reference)
    min_samples = _check_min_samples(min_samples)
    threshold = _check_threshold(threshold)
    smoothing = check_smoothing(smoothing)
    _check_same_bins(reference, current)
    n_reference, n_current = reference.total, current.total
    kl = js = psi_value = None
    if n_reference > 0 and n_current > 0:
        divergence = histogram_divergence(reference, current, smoothing=smoothing)
        kl, js, psi_value = divergence["kl"], divergence["js"], divergence["psi"]
    if js is None or n_reference < min_samples or n_current < min_samples:
        verdict = "insufficient"
    else:
        verdict = "drift" if js >= threshold else "stable"
    return FeatureDrift(
        feature=feature,
        kind=kind,
        n_reference=n_reference,
        n_current=n_current,
        kl=kl,
        js=js,
        psi=psi_value,
        verdict=verdict,
        bins=reference.bin_labels(),
        reference_share=_shares(reference.distribution()),
        current_share=_shares(current.distribution()),
    )


def rank(results: Iterable[FeatureDrift]) -> list[FeatureDrift]:
    """Drifted features first, then stable, then insufficient; by JS (descending), then name.

    Example:
        >>> def fd(name, js, verdict):
        ...     return FeatureDrift(name, "numeric", 1e3, 1e3, js, js, js, verdict, [], [], [])
        >>> [d.feature for d in rank([fd("a", 0.001, "stable"), fd("b", 0.2, "insufficient"),
        ...                           fd("c", 0.05, "drift"), fd("d", 0.003, "stable")])]
        ['c', 'd', 'a', 'b']
    """
    order = {verdict: index for index, verdict in enumerate(VERDICTS)}

    def key(result: FeatureDrift) -> tuple[int, float, str]:
        js = -math.inf if result.js is None else result.js
        return order.get(result.verdict, len(order)), -js, result.feature

    return sorted(results, key=key)


@dataclass(frozen=True)
class DriftReport:
    """Every compared feature, ranked, and the settings they were judged with.

    Attributes:
        features: per-feature results, ranked (:func:`rank`).
        n_reference, n_current: rows on each side.
        min_samples, threshold: the verdict rule.
        smoothing, n_bins, top_k: how bins and divergences were made.
        reference_files, current_files: inputs (file paths, or a description
            of in-memory tables).
        skipped: columns not compared, with the reason (e.g. only on one side,
            an unsupported type).

    Example:
        >>> report = drift_frames({"x": [0.0, 1.0] * 300}, {"x": [1.0] * 600})
        >>> report.drifted, report.to_dict()["features"][0]["verdict"]
        (['x'], 'drift')
    """

    features: list[FeatureDrift]
    n_reference: int
    n_current: int
    min_samples: int
    threshold: float
    smoothing: float = DEFAULT_SMOOTHING
    n_bins: int = DEFAULT_BINS
    top_k: int = DEFAULT_TOP_K
    reference_files: list[str] = field(default_factory=list)
    current_files: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)

    @property
    def drifted(self) -> list[str]:
        """Names of the features whose verdict is ``"drift"``, in ranking order."""
        return [f.feature for f in self.features if f.verdict == "drift"]

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe plain data, the document of ``xebench drift --json``."""
        from .._version import __version__

        return {
            "n_reference": self.n_reference,
            "n_current": self.n_current,
            "min_samples": self.min_samples,
            "threshold": self.threshold,
            "smoothing": self.smoothing,
            "n_bins": self.n_bins,
            "top_k": self.top_k,
            "drifted": self.drifted,
            "features": [f.to_dict() for f in self.features],
            "skipped": dict(self.skipped),
            "reference_files": list(self.reference_files),
            "current_files": list(self.current_files),
            "xebench_version": __version__,
        }


# --- entry points ------------------------------------------------------------------


def drift_files(
    reference: Sequence[str | os.PathLike[str]] | str | os.PathLike[str],
    current: Sequence[str | os.PathLike[str]] | str | os.PathLike[str],
    *,
    features: Sequence[str] | None = None,
    n_bins: int = DEFAULT_BINS,
    top_k: int = DEFAULT_TOP_K,
    min_samples: int = DEFAULT_MIN_SAMPLES,
    threshold: float = DEFAULT_THRESHOLD,
    smoothing: float = DEFAULT_SMOOTHING,
    progress: Callable[[Chunk], None] | None = None,
) -> DriftReport:
    """Drift of every feature between reference and current files.

    Files are CSV, Parquet or JSON Lines (by suffix); several files on a side
    are concatenated. Only the compared columns are read. Without
    ``features``, every column present in all files of both sides is
    compared; columns found on one side only, or of a type that cannot be
    binned (timestamps, lists, binary), are listed in
    :attr:`DriftReport.skipped`. A column named in ``features`` must exist
    everywhere, with a numeric or categorical type on both sides.
    ``progress`` is called with each :class:`~xebench.io.Chunk` read.

    Raises:
        DataError: a missing file or column (naming both), an unreadable file,
            a feature whose type differs between files.
        InvalidInputError: bad options.

    Example:
        >>> import tempfile, pyarrow as pa, pyarrow.parquet as pq
        >>> folder = Path(tempfile.mkdtemp())
        >>> pq.write_table(pa.table({"x": [0.0, 1.0, 2.0] * 200, "c": ["a", "b", "b"] * 200}),
        ...                folder / "ref.parquet")
        >>> pq.write_table(pa.table({"x": [2.0, 3.0, 4.0] * 200, "c": ["a", "b", "b"] * 200}),
        ...                folder / "cur.parquet")
        >>> report = drift_files([folder / "ref.parquet"], [folder / "cur.parquet"])
        >>> [(f.feature, f.kind, f.verdict) for f in report.features]
        [('x', 'numeric', 'drift'), ('c', 'categorical', 'stable')]
    """
    options = _Options.checked(n_bins, top_k, min_samples, threshold, smoothing)
    ref_side = _FileSide.open("reference", reference)
    cur_side = _FileSide.open("current", current)
    return _drift(ref_side, cur_side, features, options, progress)


def drift_frames(
    reference: Mapping[str, ArrayLike] | pa.Table | Any,
    current: Mapping[str, ArrayLike] | pa.Table | Any,
    *,
    features: Sequence[str] | None = None,
    n_bins: int = DEFAULT_BINS,
    top_k: int = DEFAULT_TOP_K,
    min_samples: int = DEFAULT_MIN_SAMPLES,
    threshold: float = DEFAULT_THRESHOLD,
    smoothing: float = DEFAULT_SMOOTHING,
) -> DriftReport:
    """Drift between two in-memory tables, with the rules of :func:`drift_files`.

    Each side is a mapping of column name to values (NumPy arrays or lists;
    ``None`` / NaN are missing), a pyarrow Table or RecordBatch, or a pandas
    or polars DataFrame.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> ref = {"age": rng.normal(40, 10, 2000), "plan": ["free", "pro"] * 1000}
        >>> cur = {"age": rng.normal(48, 10, 2000), "plan": ["free", "pro"] * 1000}
        >>> report = drift_frames(ref, cur)
        >>> report.drifted, [f.verdict for f in report.features]
        (['age'], ['drift', 'stable'])
        >>> drift_frames({"age": [1.0] * 10}, {"age": [1.0] * 10}).features[0].verdict
        'insufficient'
    """
    options = _Options.checked(n_bins, top_k, min_samples, threshold, smoothing)
    ref_side = _TableSide.of("reference", reference)
    cur_side = _TableSide.of("current", current)
    return _drift(ref_side, cur_side, features, options, None)


# --- option checks -----------------------------------------------------------------


@dataclass(frozen=True)
class _Options:
    n_bins: int
    top_k: int
    min_samples: int
    threshold: float
    smoothing: float

    @classmethod
    def checked(
        cls,
        n_bins: object,
        top_k: object,
        min_samples: object,
        threshold: object,
        smoothing: object,
    ) -> _Options:
        n_bins = check_n_bins(n_bins)
        if isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or top_k < 1:
            raise InvalidInputError("top_k", "must be an integer >= 1", value=top_k)
        return cls(
            n_bins,
            int(top_k),
            _check_min_samples(min_samples),
            _check_threshold(threshold),
            check_smoothing(smoothing),
        )


def _check_min_samples(min_samples: object) -> int:
    if (
        isinstance(min_samples, bool)
        or not isinstance(min_samples, (int, np.integer))
        or min_samples < 0
    ):
        raise InvalidInputError("min_samples", "must be an integer >= 0", value=min_samples)
    return int(min_samples)


def _check_threshold(threshold: object) -> float:
    if isinstance(threshold, bool) or not isinstance(
        threshold, (int, float, np.integer, np.floating)
    ):
        raise InvalidInputError("threshold", "must be a number >= 0", value=threshold)
    if not (math.isfinite(threshold) and threshold >= 0):
        raise InvalidInputError("threshold", "must be a finite number >= 0", value=threshold)
    return float(threshold)


def _check_kind(kind: object, reference: Histogram) -> str:
    if kind is None:
        return "numeric" if isinstance(reference, NumericHistogram) else "categorical"
    if kind not in KINDS:
        raise InvalidInputError("kind", f"must be one of {', '.join(KINDS)}", value=kind)
    return str(kind)


def _check_same_bins(reference: Histogram, current: Histogram) -> None:
    if isinstance(reference, NumericHistogram) and isinstance(current, NumericHistogram):
        same = np.array_equal(reference.edges, current.edges)
    elif isinstance(reference, CategoricalHistogram) and isinstance(current, CategoricalHistogram):
        same = reference.categories == current.categories
    else:
        raise InvalidInputError(
            "current",
            "reference and current must both be NumericHistogram or both CategoricalHistogram",
            value=f"{type(reference).__name__} and {type(current).__name__}",
        )
    if not same:
        raise InvalidInputError(
            "current", "must have the same bins as the reference (use reference.empty_copy())"
        )


def _shares(counts: NDArray[np.float64]) -> list[float]:
    total = float(counts.sum())
    return (counts / total).tolist() if total > 0 else [0.0] * counts.shape[0]


# --- binning (fast paths equal to the histogram classes) ------------------------------


def _reference_edges(values: NDArray[np.float64], n_bins: int) -> NDArray[np.float64]:
    """The edges of ``NumericHistogram.from_reference(values, n_bins=n_bins)``, faster."""
    finite_mask = np.isfinite(values)
    finite = values if finite_mask.all() else values[finite_mask]
    if finite.shape[0] == 0:
        raise InvalidInputError("values", "the reference has no finite value to bin")
    low, high = float(finite.min()), float(finite.max())
    if low == high:
        return np.array([low - 0.5, low + 0.5])
    return np.unique(_quantiles(finite, np.linspace(0.0, 1.0, n_bins + 1), low, high))


#: Below this many values, quantiles come from ``np.quantile`` itself.
_SELECT_MIN = 1 << 16


def _quantiles(
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


def _count_numeric(values: NDArray[np.float64], edges: NDArray[np.float64]) -> NDArray[np.int64]:
    """Counts of ``NumericHistogram(edges).update(values).distribution()``.

    Underflow, each bin ``[e0, e1], (e1, e2], ...``, overflow, NaN. With few
    edges, counts of ``x >= e0`` and ``x > e_i`` per block of values (cache
    resident) and their differences; with many, one binary search per value.
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


def _numeric_histogram(edges: NDArray[np.float64], counts: NDArray[np.int64]) -> NumericHistogram:
    histogram = NumericHistogram(edges)
    dist = counts.astype(np.float64)
    histogram.underflow = float(dist[0])
    histogram.counts = dist[1:-2].copy()
    histogram.overflow = float(dist[-2])
    histogram.nan = float(dist[-1])
    return histogram


def _reference_numeric(
    values: NDArray[np.float64], n_bins: int
) -> tuple[NDArray[np.float64], NDArray[np.int64]] | str:
    """(edges, reference counts), or why the column cannot be binned."""
    try:
        edges = _reference_edges(values, n_bins)
        NumericHistogram(edges)  # validates (a constant 1e17 has no unit-wide bin)
    except InvalidInputError as error:
        return error.rule
    return edges, _count_numeric(values, edges)


def _top_categories(
    column: pa.ChunkedArray, top_k: int
) -> tuple[list[Any] | str, NDArray[np.int64]]:
    """Categories and counts of ``CategoricalHistogram.from_reference(values, top_k=top_k)``
    (or why there are none, instead of the categories)."""
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


def _count_categorical(column: pa.ChunkedArray, value_set: pa.Array) -> NDArray[np.int64]:
    """Counts of ``CategoricalHistogram(categories).update(values).distribution()``."""
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


def _categorical_histogram(
    categories: list[Any], counts: NDArray[np.int64]
) -> CategoricalHistogram:
    histogram = CategoricalHistogram(categories)
    dist = counts.astype(np.float64)
    histogram.counts = dist[:-2].copy()
    histogram.other = float(dist[-2])
    histogram.missing = float(dist[-1])
    return histogram


# --- column types ------------------------------------------------------------------


def _value_type(data_type: pa.DataType) -> pa.DataType:
    return data_type.value_type if pa.types.is_dictionary(data_type) else data_type


def _kind_of(data_type: pa.DataType) -> str | None:
    """``"numeric"``, ``"categorical"`` or None (a type drift cannot bin)."""
    t = _value_type(data_type)
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
        return "numeric"
    if (
        pa.types.is_boolean(t)
        or pa.types.is_string(t)
        or pa.types.is_large_string(t)
        or getattr(pa.types, "is_string_view", lambda _: False)(t)
    ):
        return "categorical"
    return None


def _family(data_type: pa.DataType) -> str | None:
    """Types that can be compared with each other: numeric, text or boolean (or None)."""
    kind = _kind_of(data_type)
    if kind == "categorical":
        return "boolean" if pa.types.is_boolean(_value_type(data_type)) else "text"
    return kind


def _float_values(column: pa.ChunkedArray) -> NDArray[np.float64]:
    """A numeric column as float64, nulls as NaN (as NumericHistogram reads them).

    Built from the Arrow buffers (zero copy for a float64 column in one
    chunk): pyarrow's ``to_numpy`` would import pandas, 0.1 s of start-up.
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


def _categorical_values(column: pa.ChunkedArray) -> pa.ChunkedArray:
    if pa.types.is_dictionary(column.type):
        return column.cast(column.type.value_type)
    return column


# --- the two kinds of input ----------------------------------------------------------


class _Side(ABC):
    """One side (reference or current): its sources, their schemas, its batches."""

    label: str
    sources: list[str]
    schemas: list[pa.Schema]

    @abstractmethod
    def batches(self, columns: list[str], numeric: list[str], max_rows: int) -> Iterator[Chunk]:
        """``columns`` of this side in chunks of about ``max_rows`` rows."""


class _FileSide(_Side):
    def __init__(self, label: str, paths: list[Path], schemas: list[pa.Schema]) -> None:
        self.label, self.paths, self.schemas = label, paths, schemas
        self.sources = [str(path) for path in paths]

    @classmethod
    def open(cls, label: str, paths: Any) -> _FileSide:
        if isinstance(paths, (str, os.PathLike)):
            paths = [paths]
        if not isinstance(paths, (list, tuple)) or not all(
            isinstance(p, (str, os.PathLike)) for p in paths
        ):
            raise InvalidInputError(
                label, "must be a file path or a list of file paths", value=paths
            )
        if not paths:
            raise InvalidInputError(label, "no files were given")
        files = [Path(p) for p in paths]
        return cls(label, files, [file_schema(path) for path in files])

    def batches(self, columns: list[str], numeric: list[str], max_rows: int) -> Iterator[Chunk]:
        for path in self.paths:
            if path.suffix.lower() in (".parquet", ".pq"):
                yield from _parquet_chunks(path, columns, max_rows)
            else:
                yield from read_chunks(path, columns, float_columns=numeric, batch_rows=max_rows)


class _TableSide(_Side):
    def __init__(self, label: str, table: pa.Table, source: str) -> None:
        self.label, self.table = label, table
        self.sources, self.schemas = [source], [table.schema]

    @classmethod
    def of(cls, label: str, data: Any) -> _TableSide:
        if isinstance(data, Mapping):
            return cls(label, _mapping_table(label, data), f"<{label} mapping>")
        try:
            table, source = as_arrow(data)
        except DataError:
            raise InvalidInputError(
                label,
                "must be a mapping of column -> values, a pyarrow Table or a DataFrame",
                value=type(data).__name__,
            ) from None
        return cls(label, table, source)

    def batches(self, columns: list[str], numeric: list[str], max_rows: int) -> Iterator[Chunk]:
        table = self.table.select(columns)
        if table.num_rows == 0:
            yield Chunk(table, self.sources[0], 1)
        for offset in range(0, table.num_rows, max_rows):
            yield Chunk(table.slice(offset, max_rows), self.sources[0], offset + 1)


def _mapping_table(label: str, data: Mapping[str, ArrayLike]) -> pa.Table:
    arrays: dict[str, pa.Array] = {}
    length: int | None = None
    for name, values in data.items():
        if not isinstance(name, str):
            raise InvalidInputError(label, "column names must be strings", value=name)
        try:
            array = pa.array(values) if not isinstance(values, pa.Array) else values
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError) as error:
            first = str(error).strip().splitlines()[0] if str(error).strip() else ""
            raise InvalidInputError(
                f"{label}[{name!r}]", f"cannot be read as one column of values ({first})"
            ) from None
        if length is not None and len(array) != length:
            raise InvalidInputError(
                f"{label}[{name!r}]",
                f"has {len(array)} values where the other columns have {length}",
            )
        length = len(array)
        arrays[name] = array
    if not arrays:
        raise InvalidInputError(label, "has no columns")
    return pa.table(arrays)


def _parquet_chunks(path: Path, columns: list[str], max_rows: int) -> Iterator[Chunk]:
    """Whole row groups of ``columns``, about ``max_rows`` rows at a time.

    Reading row groups without Arrow's pre-buffering measured 2-4x faster and
    steadier than ``iter_batches`` here (and it holds less memory), and a
    reference column must be whole anyway for its exact quantiles.
    """
    import pyarrow.parquet as pq

    source = str(path)
    try:
        parquet = pq.ParquetFile(path, pre_buffer=False)
    except (pa.ArrowInvalid, OSError) as error:
        raise DataError(
            "data", f"cannot read as Parquet ({first_line(error)})", source=source
        ) from error
    check_columns(parquet.schema_arrow.names, columns, source)
    metadata = parquet.metadata
    size, total_rows = path.stat().st_size, max(metadata.num_rows, 1)
    first_row, group = 1, 0
    while group < metadata.num_row_groups:
        groups, rows = [group], metadata.row_group(group).num_rows
        group += 1
        while group < metadata.num_row_groups:
            more = metadata.row_group(group).num_rows
            if rows + more > max_rows:
                break
            groups.append(group)
            rows += more
            group += 1
        try:
            table = parquet.read_row_groups(groups, columns=columns, use_threads=True)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError) as error:
            raise DataError(
                "data", f"cannot read as Parquet ({first_line(error)})", source=source
            ) from error
        first_row += table.num_rows
        done = size * (first_row - 1) // total_rows
        yield Chunk(table, source, first_row - table.num_rows, done, size)


# --- planning: which columns, of which kind ---------------------------------------------


def _plan(
    ref: _Side, cur: _Side, features: Sequence[str] | None
) -> tuple[list[tuple[str, str]], dict[str, str]]:
    """[(column, kind)] to compare and {column: reason} for the ones skipped."""
    sides = [(ref, source, schema) for source, schema in zip(ref.sources, ref.schemas, strict=True)]
    sides += [
        (cur, source, schema) for source, schema in zip(cur.sources, cur.schemas, strict=True)
    ]
    explicit = features is not None
    if features is None:
        names = list(ref.schemas[0].names)
        for _, _, schema in sides[1:]:
            names += [n for n in schema.names if n not in names]
    else:
        if isinstance(features, str) or not all(isinstance(f, str) and f for f in features):
            raise InvalidInputError("features", "must be a list of column names", value=features)
        names = list(dict.fromkeys(features))
        if not names:
            raise InvalidInputError("features", "must name at least one column")
    plan: list[tuple[str, str]] = []
    skipped: dict[str, str] = {}
    for name in names:
        missing = [source for _, source, schema in sides if name not in schema.names]
        if missing:
            if explicit:
                schema = next(s for _, source, s in sides if source == missing[0])
                raise DataError(
                    "features",
                    f"no column {name!r}; available columns: {', '.join(schema.names)}",
                    source=missing[0],
                )
            on_ref = all(name in schema.names for schema in ref.schemas)
            on_cur = all(name in schema.names for schema in cur.schemas)
            where = "reference" if on_ref else "current" if on_cur else None
            skipped[name] = (
                f"only in the {where} data" if where else f"missing from {', '.join(missing)}"
            )
            continue
        # A column of nulls only (type null: e.g. an empty JSON batch) fits any kind.
        types = [
            (source, schema.field(name).type)
            for _, source, schema in sides
            if not pa.types.is_null(schema.field(name).type)
        ]
        families = [_family(data_type) for _, data_type in types]
        problem = None
        if not any(
            name in s.names and not pa.types.is_null(s.field(name).type) for s in ref.schemas
        ):
            problem = ("has no values in the reference (type null)", ref.sources[0])
        elif None in families:
            source, data_type = types[families.index(None)]
            problem = (
                f"has type {data_type}, which drift cannot bin (numbers, strings and "
                "booleans can be compared)",
                source,
            )
        elif len(set(families)) > 1:
            (first_source, first_type) = types[0]
            other_source, other_type = next(
                t for t, f in zip(types, families, strict=True) if f != families[0]
            )
            problem = (
                f"is {first_type} in {first_source} but {other_type} in {other_source}",
                other_source,
            )
        if problem is not None:
            if explicit:
                raise DataError(name, problem[0], source=problem[1], column=name)
            skipped[name] = problem[0]
            continue
        plan.append((name, "numeric" if families[0] == "numeric" else "categorical"))
    if not plan:
        reasons = "; ".join(f"{k}: {v}" for k, v in skipped.items())
        raise InvalidInputError(
            "features",
            "no column can be compared" + (f" ({reasons})" if reasons else ""),
        )
    return plan, skipped


# --- the computation -----------------------------------------------------------------


def _column_groups(plan: list[tuple[str, str]], side: _Side) -> list[list[tuple[str, str]]]:
    """Groups of columns whose reference values fit in :data:`MEMORY_BUDGET` together."""
    rows = _estimated_rows(side)
    per_column = max(rows, 1) * 8
    size = max(1, MEMORY_BUDGET // per_column)
    return [plan[i : i + size] for i in range(0, len(plan), size)]


def _estimated_rows(side: _Side) -> int:
    if isinstance(side, _TableSide):
        return side.table.num_rows
    rows = 0
    for path in side.paths:  # type: ignore[attr-defined]
        if path.suffix.lower() in (".parquet", ".pq"):
            import pyarrow.parquet as pq

            rows += pq.ParquetFile(path).metadata.num_rows
        else:  # text: assume at least 8 bytes a value per column
            rows += path.stat().st_size // 8
    return rows


def _drift(
    ref: _Side,
    cur: _Side,
    features: Sequence[str] | None,
    options: _Options,
    progress: Callable[[Chunk], None] | None,
) -> DriftReport:
    plan, skipped = _plan(ref, cur, features)
    kinds = dict(plan)
    workers = max(1, min(8, os.cpu_count() or 1))
    numeric_ref: dict[str, Future[Any]] = {}
    categorical_ref: dict[str, tuple[list[Any], NDArray[np.int64]]] = {}
    n_reference: int | None = None
    unusable: dict[str, str] = {}

    def cannot_bin(name: str, reason: str) -> None:
        if features is not None:
            raise DataError(name, reason, source=", ".join(ref.sources), column=name)
        unusable[name] = reason

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="xebench-drift") as pool:
        groups = _column_groups(plan, ref)
        for number, group in enumerate(groups):
            columns = [name for name, _ in group]
            numeric = [name for name, kind in group if kind == "numeric"]
            parts: dict[str, list[Any]] = {name: [] for name in columns}
            rows = 0
            for chunk in ref.batches(columns, numeric, _max_rows(len(columns))):
                rows += chunk.table.num_rows
                for name in columns:
                    parts[name].extend(chunk.table.column(name).chunks)
                if progress is not None:
                    progress(_scaled(chunk, number, len(groups)))
            n_reference = rows if n_reference is None else n_reference
            for name in numeric:
                values = _float_values(_chunked(parts.pop(name), ref, name))
                numeric_ref[name] = pool.submit(_reference_numeric, values, options.n_bins)
            for name in list(parts):
                column = _categorical_values(_chunked(parts.pop(name), ref, name))
                found, counts = _top_categories(column, options.top_k)
                if isinstance(found, str):
                    cannot_bin(name, found)
                else:
                    categorical_ref[name] = (found, counts)
            if number < len(groups) - 1:  # bound memory: finish this group first
                for name in numeric:
                    numeric_ref[name].result()
        # The current side is read while the reference bins are being computed.
        columns = [name for name, _ in plan if name not in unusable]
        numeric = [name for name in columns if kinds[name] == "numeric"]
        value_sets = {
            name: pa.array(cats, type=_categorical_type(ref, name))
            for name, (cats, _) in categorical_ref.items()
        }
        edges: dict[str, NDArray[np.float64]] = {}
        ref_counts: dict[str, NDArray[np.int64]] = {}

        def edges_of(name: str) -> NDArray[np.float64] | None:
            if name not in edges and name not in unusable:
                found = numeric_ref[name].result()
                if isinstance(found, str):
                    cannot_bin(name, found)
                else:
                    edges[name], ref_counts[name] = found
            return edges.get(name)

        current: dict[str, NDArray[np.int64]] = {}
        n_current = 0
        pending: list[tuple[str, Future[NDArray[np.int64]]]] = []
        for chunk in cur.batches(columns, numeric, _max_rows(len(columns))):
            n_current += chunk.table.num_rows
            _collect(pending, current)
            for name in columns:
                column = chunk.table.column(name)
                if kinds[name] != "numeric":
                    job = pool.submit(
                        _count_categorical, _categorical_values(column), value_sets[name]
                    )
                elif (bins := edges_of(name)) is not None:
                    job = pool.submit(_count_numeric, _float_values(column), bins)
                else:
                    continue
                pending.append((name, job))
            if progress is not None:
                progress(chunk)
        _collect(pending, current)
        results = []
        for name in columns:
            if kinds[name] == "numeric":
                if edges_of(name) is None:
                    continue
                ref_hist: Histogram = _numeric_histogram(edges[name], ref_counts[name])
                counts = current.get(name, np.zeros_like(ref_counts[name]))
                cur_hist: Histogram = _numeric_histogram(edges[name], counts)
            else:
                cats, counts = categorical_ref[name]
                ref_hist = _categorical_histogram(cats, counts)
                cur_hist = _categorical_histogram(cats, current.get(name, np.zeros_like(counts)))
            results.append(
                compare_histograms(
                    name,
                    ref_hist,
                    cur_hist,
                    kind=kinds[name],
                    min_samples=options.min_samples,
                    threshold=options.threshold,
                    smoothing=options.smoothing,
                )
            )
    if not results:
        reasons = "; ".join(f"{k}: {v}" for k, v in {**skipped, **unusable}.items())
        raise InvalidInputError("features", f"no column can be compared ({reasons})")
    return DriftReport(
        features=rank(results),
        n_reference=int(n_reference or 0),
        n_current=n_current,
        min_samples=options.min_samples,
        threshold=options.threshold,
        smoothing=options.smoothing,
        n_bins=options.n_bins,
        top_k=options.top_k,
        reference_files=list(ref.sources),
        current_files=list(cur.sources),
        skipped={**skipped, **unusable},
    )


def _collect(
    pending: list[tuple[str, Future[NDArray[np.int64]]]], totals: dict[str, NDArray[np.int64]]
) -> None:
    for name, job in pending:
        counts = job.result()
        totals[name] = totals[name] + counts if name in totals else counts
    pending.clear()


def _max_rows(n_columns: int) -> int:
    return max(1 << 16, MEMORY_BUDGET // (16 * max(n_columns, 1)))


def _scaled(chunk: Chunk, group: int, n_groups: int) -> Chunk:
    """Progress of a column group read: each group is one pass over the files."""
    if n_groups == 1:
        return chunk
    done = (group * chunk.bytes_total + chunk.bytes_done) // n_groups
    return replace(chunk, bytes_done=done)


def _chunked(arrays: list[pa.Array], side: _Side, name: str) -> pa.ChunkedArray:
    """One side's pieces of a column as one chunked array of a single type."""
    data_type = _categorical_type(side, name)
    if _kind_of(data_type) == "numeric":
        data_type = pa.float64()
    arrays = [_decoded(a) for a in arrays]
    arrays = [a if a.type == data_type else a.cast(data_type, safe=False) for a in arrays]
    return pa.chunked_array(arrays, type=data_type)


def _decoded(array: pa.Array) -> pa.Array:
    return array.dictionary_decode() if pa.types.is_dictionary(array.type) else array


def _categorical_type(side: _Side, name: str) -> pa.DataType:
    """The column's value type on this side (its first type that is not null)."""
    for schema in side.schemas:
        data_type = _value_type(schema.field(name).type)
        if not pa.types.is_null(data_type):
            return data_type
    return pa.null()
