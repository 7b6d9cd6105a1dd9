"""Drift of a model's window against a reference, from the feature and score buckets.

Per monitored feature, and for the model's score and labels, the window's
histogram is compared with the reference's (KL, JS, PSI; ranked by
:func:`xebench.analysis.drift.rank`). The reference is the previous window, a
version, a time range, data uploaded with ``PUT /v1/references/{model}`` or
a file (see :meth:`xebench.monitor.windows.Monitor.drift`).

Example:
    >>> from xebench.monitor.windows import Monitor
    >>> from xebench.store import EventStore
    >>> d = Monitor(EventStore(":memory:")).drift(Scope("t", "m", window="1h"))
    >>> d.report.features, d.reference.kind
    ([], 'rolling')
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

from ..errors import InvalidInputError
from ..stats.histograms import CategoricalHistogram
from ..store.buckets import ALL, SCORE_BINS, FeatureBins
from ..store.event_store import EventStore
from .reads import Selection, class_list, feature_counts, merged, one_class_list, scores
from .results import ReferenceInfo, WindowDrift
from .scope import Scope, Span, iso, parse_reference, parse_time
from .settings import MonitorSettings

__all__ = ["DriftQuestions", "FileReferences"]

_NO_COHORT_FEATURES = (
    "no feature histograms of this cohort in the window (they are kept per cohort "
    "only with monitoring.cohort_features): its drift covers its score and labels"
)


class FileReferences:
    """Counts of reference files in their models' monitoring bins, cached until the
    file or the model's set of binned features changes (one entry per file).

    Example:
        >>> FileReferences().cached
        0
    """

    def __init__(self) -> None:
        self._counts: dict[tuple[Any, ...], dict[str, Any]] = {}

    @property
    def cached(self) -> int:
        """Files counted and kept."""
        return len(self._counts)

    def counts(self, store: EventStore, tenant: str, model: str, path: Path) -> dict[str, Any]:
        """Feature -> counts of the file at ``path``, plus ``"__rows__"``."""
        from .references import count_file

        bins = store.buckets.feature_bins(tenant, model)
        try:
            stat = path.stat()
        except OSError as error:
            raise InvalidInputError(
                "reference", f"cannot read the reference file {path}: {error.strerror}"
            ) from None
        key = (tenant, model, str(path), stat.st_mtime_ns, stat.st_size, tuple(sorted(bins)))
        if key not in self._counts:
            counted = count_file(path, bins)
            for stale in [k for k in self._counts if k[:3] == key[:3]]:
                del self._counts[stale]  # one entry per file: the latest
            self._counts[key] = {**counted.counts, "__rows__": counted.rows}
        return self._counts[key]


class DriftQuestions:
    """The drift question of :class:`~xebench.monitor.windows.Monitor` (mixed into it).

    Uses the monitor's ``store``, ``settings`` and ``file_references``.
    """

    store: EventStore
    settings: MonitorSettings
    file_references: FileReferences

    def drift(
        self,
        scope: Scope,
        *,
        reference: str | None = None,
        min_samples: int | None = None,
        threshold: float | None = None,
    ) -> WindowDrift:
        """Per feature, score and label: KL, JS, PSI of the window vs a reference, ranked.

        ``reference``: ``"rolling"`` (the previous window of the same length, the
        default), ``"version:V"`` (everything of version V), ``"range:FROM/TO"``,
        ``"uploaded"`` (the data uploaded with ``PUT /v1/references/{model}``)
        or ``"file:PATH"`` (a CSV/Parquet/JSON Lines file of feature columns);
        the model's configured reference when None. A reference given as data
        has no scores or labels: only the features are compared.

        Example:
            >>> from xebench.monitor.windows import Monitor
            >>> from xebench.store import EventStore
            >>> d = Monitor(EventStore(":memory:")).drift(Scope("t", "m", window="1h"))
            >>> d.to_dict()["features"], d.reference.kind
            ([], 'rolling')
        """
        files = self.file_references
        return _drift(self.store, self.settings, files, scope, reference, min_samples, threshold)


def _drift(
    store: EventStore,
    settings: MonitorSettings,
    files: FileReferences,
    scope: Scope,
    reference: str | None,
    min_samples: int | None,
    threshold: float | None,
) -> WindowDrift:
    from ..analysis.drift import DriftReport, compare_histograms, rank

    scope = scope.pinned(store.buckets.config.cohort_crossings)
    tenant, model, version = scope.tenant, scope.model, scope.version
    span = scope.span()
    key = scope.cohort_key
    spec = reference or settings.references.get(model, "rolling")
    min_samples = settings.drift_min_samples if min_samples is None else min_samples
    threshold = settings.drift_threshold if threshold is None else threshold
    kind, ref_version, ref_span, ref_file = reference_of(spec, span)
    here = Selection.of(scope, span)
    current_scores = scores(store, here)
    current = feature_counts(store, here)
    # A reference given as data (a file, an upload) has features only; one of the
    # model's own events also has its scores and labels.
    reference_scores = None
    uploaded: dict[str, Any] | None = None
    if kind == "file":
        assert ref_file is not None
        ref_counts = files.counts(store, tenant, model, ref_file)
    elif kind == "uploaded":
        uploaded = store.reference(tenant, model)
        if uploaded is None:
            raise InvalidInputError(
                "reference",
                f"model {model!r} has no uploaded reference (PUT /v1/references/{model})",
                value=spec,
            )
        ref_counts = {**uploaded["counts"], "__rows__": uploaded["rows"]}
    else:
        assert ref_span is not None
        there = Selection(tenant, model, ref_version or version, key, ref_span)
        reference_scores = scores(store, there)
        ref_counts = feature_counts(store, there)
    bins = store.buckets.feature_bins(tenant, model)
    results = []
    for name, spec_bins in sorted(bins.items()):
        ref = ref_counts.get(name)
        cur = current.get(name)
        if ref is None or cur is None or len(ref) != spec_bins.n_bins:
            continue
        reference_hist, current_hist = _grouped(spec_bins, ref, cur, settings.drift_bins)
        results.append(
            compare_histograms(
                name,
                reference_hist,
                current_hist,
                kind=spec_bins.kind,
                min_samples=min_samples,
                threshold=threshold,
            )
        )
    if reference_scores is not None:
        for name, pair in _score_and_label(reference_scores, current_scores).items():
            results.append(
                compare_histograms(
                    name,
                    pair[0],
                    pair[1],
                    kind=name.strip("_").split("_")[0],
                    min_samples=min_samples,
                    threshold=threshold,
                )
            )
    report = DriftReport(
        features=rank(results),
        n_reference=int(
            reference_scores["n_predictions"].to_numpy().sum()
            if reference_scores is not None
            else ref_counts.get("__rows__", 0)
        ),
        n_current=int(current_scores["n_predictions"].to_numpy().sum()),
        min_samples=min_samples,
        threshold=threshold,
        n_bins=settings.drift_bins,
        top_k=store.buckets.config.top_k,
        reference_files=[
            _describe(model, ref_version or version, key, kind, ref_span, ref_file, uploaded)
        ],
        current_files=[_describe(model, version, key, "window", span, None)],
    )
    return WindowDrift(
        report,
        model,
        version,
        scope.cohort_label,
        span.start,
        span.end,
        ReferenceInfo(
            kind,
            ref_version,
            None if ref_span is None else ref_span.start,
            None if ref_span is None else ref_span.end,
            ref_file,
            None if uploaded is None else uploaded["source"],
            None if uploaded is None else uploaded["uploaded_at"],
        ),
        _NO_COHORT_FEATURES if key[0] != ALL and not current else None,
    )


def reference_of(spec: str, span: Span) -> tuple[str, str | None, Span | None, Path | None]:
    """(kind, version, range, file) of a reference ``spec`` for the window ``span``."""
    kind, value = parse_reference(spec)
    if kind == "rolling":
        return "rolling", None, Span(span.start - span.length, span.start), None
    if kind == "version":
        epoch = datetime(1970, 1, 1, tzinfo=UTC)
        return "version", value, Span(epoch, span.end), None
    if kind == "range":
        first, _, last = value.partition("/")
        return "range", None, Span(parse_time(first, "from"), parse_time(last, "to")), None
    if kind == "file":
        return "file", None, None, Path(value)
    return "uploaded", None, None, None


def _describe(
    model: str,
    version: str | None,
    cohort: tuple[str, str],
    kind: str,
    span: Span | None,
    path: Path | None,
    uploaded: Mapping[str, Any] | None = None,
) -> str:
    """One side of a drift comparison in words, for the report's inputs table.

    Example:
        >>> from datetime import UTC, datetime, timedelta
        >>> start = datetime(2026, 1, 1, tzinfo=UTC)
        >>> _describe("fraud", "v2", ("region", "eu"), "rolling",
        ...           Span(start, start + timedelta(hours=1)), None)
        'fraud v2 region:eu, rolling: 2026-01-01T00:00:00Z to 2026-01-01T01:00:00Z'
    """
    if path is not None:
        return f"{model}: file {path}"
    if uploaded is not None:
        return f"{model}: uploaded {uploaded['source']} at {iso(uploaded['uploaded_at'])}"
    scope = " ".join(
        part
        for part in (model, version, None if cohort[0] == ALL else f"{cohort[0]}:{cohort[1]}")
        if part
    )
    assert span is not None
    start = "the first event" if span.start.year == 1970 else iso(span.start)
    return f"{scope}, {kind}: {start} to {iso(span.end)}"


def _grouped(
    spec: FeatureBins,
    reference: NDArray[np.float64],
    current: NDArray[np.float64],
    n_groups: int,
) -> tuple[CategoricalHistogram, CategoricalHistogram]:
    """Reference and current histograms on bins fixed from the reference.

    Numeric monitoring bins are merged into at most ``n_groups`` groups of
    about equal reference mass (quantile bins of the reference, at the
    resolution of the monitoring bins); categories are kept as they are.
    """
    if spec.kind != "numeric":
        labels = list(spec.categories) or ["(none)"]
        return _histogram(labels, reference, len(spec.categories)), _histogram(
            labels, current, len(spec.categories)
        )
    group = group_of_bins(spec, reference, n_groups)
    n = int(group.max()) + 1
    edges = list(spec.edges)
    labels = []
    for g in range(n):
        members = np.flatnonzero(group == g)
        low = "-inf" if members[0] == 0 else f"{edges[members[0] - 1]:.6g}"
        high = "inf" if members[-1] >= len(edges) else f"{edges[members[-1]]:.6g}"
        labels.append(f"({low}, {high}]")
    merged_ref, merged_cur = (grouped_counts(group, counts) for counts in (reference, current))
    return _histogram(labels, merged_ref, n), _histogram(labels, merged_cur, n)


def group_of_bins(
    spec: FeatureBins, reference: NDArray[np.float64], n_groups: int
) -> NDArray[np.intp]:
    """The group of each finite monitoring bin of a numeric feature (``_grouped``):
    quantile groups of the reference's mass.

    Example:
        >>> from xebench.store.feature_bins import FeatureBins
        >>> spec = FeatureBins("x", "numeric", edges=(1.0, 2.0, 3.0))
        >>> group_of_bins(spec, np.array([5.0, 5, 5, 5, 0]), 2).tolist()
        [0, 0, 1, 1]
    """
    finite_ref = reference[:-1]
    total = finite_ref.sum()
    if total > 0:
        # A bin joins the group of the reference quantile its lower end falls in.
        before = np.concatenate([[0.0], np.cumsum(finite_ref)[:-1]]) / total
        group = np.floor(before * n_groups + 1e-9).clip(0, n_groups - 1).astype(np.intp)
    else:
        group = np.zeros(finite_ref.shape[0], dtype=np.intp)
    _, group = np.unique(group, return_inverse=True)
    return group.astype(np.intp)


def grouped_counts(group: NDArray[np.intp], counts: NDArray[np.float64]) -> NDArray[np.float64]:
    """Counts laid out as [finite bins..., missing] (or a 2-D stack of them, one per row)
    summed into the groups of :func:`group_of_bins`, the missing bin kept last.

    Example:
        >>> grouped_counts(np.array([0, 0, 1]), np.array([[1.0, 2, 3, 4]])).tolist()
        [[3.0, 3.0, 4.0]]
    """
    counts = np.asarray(counts, dtype=np.float64)
    n = int(group.max()) + 1 if group.size else 0
    finite = counts[..., :-1]
    out = np.zeros((*counts.shape[:-1], n + 1))
    for g in range(n):
        out[..., g] = finite[..., group == g].sum(axis=-1)
    out[..., n] = counts[..., -1]
    return out


def _histogram(labels: Sequence[str], counts: NDArray[np.float64], n: int) -> CategoricalHistogram:
    """A categorical histogram from counts laid out as [bins..., (other,) missing]."""
    histogram = CategoricalHistogram(labels)
    histogram.counts = np.asarray(counts[:n], dtype=np.float64).copy()
    if histogram.counts.shape[0] < len(labels):
        histogram.counts = np.zeros(len(labels))
    rest = np.asarray(counts[n:], dtype=np.float64)
    histogram.other = float(rest[0]) if rest.shape[0] == 2 else 0.0
    histogram.missing = float(rest[-1]) if rest.shape[0] else 0.0
    return histogram


def _score_and_label(
    reference: pa.Table, current: pa.Table
) -> dict[str, tuple[CategoricalHistogram, CategoricalHistogram]]:
    """Histograms of the model's score and of the labels, reference and current."""
    out = {}
    labels = [f"[{i / SCORE_BINS:.2f}, {(i + 1) / SCORE_BINS:.2f}]" for i in range(SCORE_BINS)]
    reference, current = (one_class_list(table)[0] for table in (reference, current))
    sides = [merged(table) for table in (reference, current)]
    if all(m["n_predictions"][0] > 0 for m in sides):
        out["__score__"] = tuple(
            _histogram(labels, np.concatenate([m["score_hist"][0], [0.0]]), SCORE_BINS)
            for m in sides
        )
    ref_classes = class_list(reference, "reference") if reference.num_rows else None
    cur_classes = class_list(current, "current") if current.num_rows else None
    if ref_classes and ref_classes == cur_classes and all(m["n"][0] > 0 for m in sides):
        k = len(ref_classes)
        out["__label__"] = tuple(
            _histogram(ref_classes, np.concatenate([_label_counts(m, k), [0.0]]), k) for m in sides
        )
    return out


def _label_counts(merged: dict[str, Any], k: int) -> NDArray[np.float64]:
    """The labels' weighted shares (the window's ``label_counts``) over the number of
    labelled events: a weighted label mix, sized in events like every other drift row.

    Example:
        >>> _label_counts({"label_weight": np.array([[3.0, 1.0]]), "n": np.array([2])}, 2)
        array([1.5, 0.5])
    """
    weight = np.asarray(merged["label_weight"][0][:k], dtype=np.float64)
    total = float(weight.sum())
    return weight * (float(merged["n"][0]) / total) if total > 0 else weight
