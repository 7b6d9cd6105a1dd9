"""Drift: reference vs current distributions of features, over files and tables.

One engine for ``xebench drift`` on files and the in-memory
:func:`drift_frames`; the judging (divergences, verdicts, ranking) is
:mod:`xebench.analysis.drift`'s, shared with the HTTP service, so a
feature's number is the same wherever it is shown.

How a feature is compared:

- **Bins are fixed from the reference.** A numeric column (Arrow integer,
  floating point or decimal type) gets quantile bins, exactly those of
  :meth:`NumericHistogram.from_reference(values, strategy="quantile")
  <xebench.NumericHistogram.from_reference>`, plus bins for values below or
  above the reference range and for NaN / null. A categorical column
  (strings, booleans, dictionary-encoded) gets its ``top_k`` most frequent
  reference values, as :meth:`CategoricalHistogram.from_reference
  <xebench.CategoricalHistogram.from_reference>`, plus ``OTHER``
  (``"__other__"``) and "(missing)". The current data is counted into the same bins.
- **Divergences, verdicts and ranking**: :func:`~xebench.analysis.drift.compare_histograms`
  and :func:`~xebench.analysis.drift.rank`.

Files larger than memory are handled: reference columns are read a group of
columns at a time (exact quantiles need a whole column), the current data is
streamed in batches of rows. The sides and their columns are
:mod:`.drift_columns`'s; the fast counting into bins is :mod:`.drift_counts`'s.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pyarrow as pa
from numpy.typing import ArrayLike, NDArray

from .._validation import check_n_bins, check_smoothing
from ..analysis.drift import (
    DEFAULT_BINS,
    DEFAULT_MIN_SAMPLES,
    DEFAULT_SMOOTHING,
    DEFAULT_THRESHOLD,
    DEFAULT_TOP_K,
    DriftReport,
    FeatureDrift,
    check_min_samples,
    check_threshold,
    compare_histograms,
    rank,
)
from ..errors import DataError, InvalidInputError
from ..io.readers import Chunk
from ..stats.binning import Bins
from ..stats.histograms import Histogram
from .drift_columns import FileSide, Side, TableSide, categorical_type, chunked, plan_columns
from .drift_counts import (
    categorical_histogram,
    categorical_values,
    count_categorical,
    float_values,
    numeric_histogram,
    reference_numeric,
    top_categories,
)

# The results and the judging live in analysis; they are re-exported here, where
# users have always imported them from.
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

#: Bytes of reference values held in memory at once (a group of columns).
MEMORY_BUDGET = 1 << 30

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
        >>> import tempfile, pyarrow.parquet as pq
        >>> from pathlib import Path
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
    ref_side = FileSide.open("reference", reference)
    cur_side = FileSide.open("current", current)
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
    ref_side = TableSide.of("reference", reference)
    cur_side = TableSide.of("current", current)
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
            check_min_samples(min_samples),
            check_threshold(threshold),
            check_smoothing(smoothing),
        )


# --- the computation -----------------------------------------------------------------


def _column_groups(plan: list[tuple[str, str]], side: Side) -> list[list[tuple[str, str]]]:
    """Groups of columns whose reference values fit in :data:`MEMORY_BUDGET` together."""
    rows = _estimated_rows(side)
    per_column = max(rows, 1) * 8
    size = max(1, MEMORY_BUDGET // per_column)
    return [plan[i : i + size] for i in range(0, len(plan), size)]


def _estimated_rows(side: Side) -> int:
    if isinstance(side, TableSide):
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
    ref: Side,
    cur: Side,
    features: Sequence[str] | None,
    options: _Options,
    progress: Callable[[Chunk], None] | None,
) -> DriftReport:
    plan, skipped = plan_columns(ref, cur, features)
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
                values = float_values(chunked(parts.pop(name), ref, name))
                numeric_ref[name] = pool.submit(reference_numeric, values, options.n_bins)
            for name in list(parts):
                column = categorical_values(chunked(parts.pop(name), ref, name))
                found, counts = top_categories(column, options.top_k)
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
            name: pa.array(cats, type=categorical_type(ref, name))
            for name, (cats, _) in categorical_ref.items()
        }
        edges: dict[str, Bins] = {}
        ref_counts: dict[str, NDArray[np.int64]] = {}

        def edges_of(name: str) -> Bins | None:
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
                        count_categorical, categorical_values(column), value_sets[name]
                    )
                elif (bins := edges_of(name)) is not None:
                    job = pool.submit(bins.count, float_values(column))
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
                ref_hist: Histogram = numeric_histogram(edges[name].edges, ref_counts[name])
                counts = current.get(name, np.zeros_like(ref_counts[name]))
                cur_hist: Histogram = numeric_histogram(edges[name].edges, counts)
            else:
                cats, counts = categorical_ref[name]
                ref_hist = categorical_histogram(cats, counts)
                cur_hist = categorical_histogram(cats, current.get(name, np.zeros_like(counts)))
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
