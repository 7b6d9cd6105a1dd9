"""The ``drift_js`` SLI of every minute: JS divergence of a feature (or the score) over the
minute's trailing window against the model's drift reference.

The same definitions as ``GET /v1/drift`` (:mod:`xebench.monitor.drift`): the
feature's monitoring bins, numeric bins merged into ``monitoring.drift.bins``
quantile groups of the reference, JS over the full distributions (missing and
other values included). The reference is the model's configured one: a fixed
reference (``version:V``, ``range:``, ``uploaded``, ``file:``) is read once; the
default rolling reference is, for each minute, the window just before that
minute's window. The quantile groups are fixed from the reference of the
latest minute, so the latest minute's value is exactly ``/v1/drift``'s and older
minutes are judged on the same groups. ``feature: score`` compares the
histograms of the predicted score. Samples: the smaller of the current and
reference counts.

Example:
    >>> from datetime import UTC, datetime, timedelta
    >>> from xebench.analysis.slo import SLO
    >>> from xebench.monitor.windows import Monitor
    >>> from xebench.store import EventStore
    >>> slo = SLO("d", model="m", sli="drift_js", objective=0.05, feature="score")
    >>> end = datetime(2026, 1, 1, tzinfo=UTC)
    >>> m = drift_minutes(Monitor(EventStore(":memory:")), slo, end - timedelta(hours=2), end, 60)
    >>> len(m.values), float(m.samples.max())
    (60, 0.0)
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

from ..errors import InvalidInputError
from ..metrics.information import js_divergence
from ..stats.rolling import rolling_sum
from ..store.bucket_rows import SCORE_BINS
from .drift import group_of_bins, grouped_counts, reference_of
from .reads import Selection, bucket_rows, feature_counts, merged, one_class_list, scores
from .scope import Scope, Span, parse_reference

if TYPE_CHECKING:
    from ..analysis.slo import SLO
    from .slo import MinuteSLI
    from .windows import Monitor

__all__ = ["drift_minutes"]

_MINUTE = timedelta(minutes=1)


def _per_minute(
    table: pa.Table, column: str, start: datetime, n_minutes: int, width: int
) -> NDArray[np.float64]:
    """Per-minute sums of a dense list column (histogram counts)."""
    out = np.zeros((n_minutes, width))
    if not table.num_rows:
        return out
    micros = pc.cast(table["bucket"], pa.int64()).to_numpy()
    minute = (micros - int(start.timestamp() * 1e6)) // 60_000_000
    values = table[column].combine_chunks()
    parents = pc.list_parent_indices(values).to_numpy()
    starts = values.offsets.to_numpy()[:-1] - values.offsets.to_numpy()[0]
    position = np.arange(parents.shape[0]) - starts[parents]
    flat = pc.list_flatten(values).to_numpy(zero_copy_only=False).astype(np.float64)
    keep = (position < width) & (minute[parents] >= 0) & (minute[parents] < n_minutes)
    np.add.at(out, (minute[parents][keep], position[keep]), flat[keep])
    return out


def _rows(monitor: Monitor, scope: Scope, start: datetime, end: datetime, feature: str) -> pa.Table:
    """Minute rows of the feature's (or the score's) buckets in [start, end)."""
    where = Selection.of(scope, Span(start, end))
    if feature == "score":
        table, _ = one_class_list(scores(monitor.store, where, hours=False))
        return table.select(["bucket", "score_hist"])
    table = bucket_rows(monitor.store, "bucket_features", "bucket, feature, counts", where,
                        hours=False)  # fmt: skip
    return table.filter(pc.equal(table["feature"], feature))


def _fixed_reference(monitor: Monitor, slo: SLO, spec: str, span: Span) -> NDArray[np.float64]:
    """The counts of a fixed (not rolling) reference, read as ``/v1/drift`` reads them."""
    store, tenant, model = monitor.store, slo.tenant, slo.model
    kind, ref_version, ref_span, ref_file = reference_of(spec, span)
    feature = slo.feature or ""
    if feature == "score":
        if ref_span is None:
            raise InvalidInputError("feature", "score drift needs a reference of the model's own "
                                    "events (rolling, version: or range:)", value=spec)  # fmt: skip
        there = Selection(tenant, model, ref_version or slo.version,
                          Scope(tenant, model, None, slo.cohort).cohort_key, ref_span)  # fmt: skip
        table, _ = one_class_list(scores(store, there))
        return np.asarray(merged(table)["score_hist"][0], dtype=np.float64)
    if kind == "file":
        assert ref_file is not None
        counts = monitor.file_references.counts(store, tenant, model, ref_file)
    elif kind == "uploaded":
        uploaded = store.reference(tenant, model)
        if uploaded is None:
            raise InvalidInputError("reference", f"model {model!r} has no uploaded reference",
                                    value=spec)  # fmt: skip
        counts = uploaded["counts"]
    else:
        assert ref_span is not None
        key = Scope(tenant, model, None, slo.cohort).cohort_key
        counts = feature_counts(store, Selection(tenant, model, ref_version or slo.version, key,
                                                 ref_span))  # fmt: skip
    if feature not in counts:
        return np.zeros(0)
    return np.asarray(counts[feature], dtype=np.float64)


def drift_minutes(
    monitor: Monitor, slo: SLO, start: datetime, end: datetime, count: int
) -> MinuteSLI:
    """The drift SLI of the last ``count`` minutes ending at ``end`` (``start`` = ``end``
    minus ``count`` plus one window); see the module's docstring."""
    from .slo import MinuteSLI

    feature = slo.feature or "score"
    window = slo.window_minutes
    spec = monitor.settings.references.get(slo.model, "rolling")
    rolling = parse_reference(spec)[0] == "rolling"
    lead = window if rolling else 0
    first = start - lead * _MINUTE
    total = count + window + lead
    scope = Scope(slo.tenant, slo.model, slo.version, slo.cohort)
    table = _rows(monitor, scope, first, end, feature)
    if feature == "score":
        kind, width = "categorical", SCORE_BINS
        column = "score_hist"
        spec_bins = None
    else:
        bins = monitor.store.buckets.feature_bins(slo.tenant, slo.model)
        if feature not in bins:
            nan = np.full(count, np.nan)
            return MinuteSLI(end, nan, np.zeros(count))  # not monitored (yet): nothing judged
        spec_bins = bins[feature]
        kind, width, column = spec_bins.kind, spec_bins.n_bins, "counts"
    rolled = rolling_sum(_per_minute(table, column, first, total, width), window)
    current = rolled[-count:]
    if rolling:
        reference = rolled[-count - window : len(rolled) - window]
    else:
        fixed = _fixed_reference(monitor, slo, spec, Span(end - slo.window, end))
        if fixed.shape[0] != width:
            nan = np.full(count, np.nan)
            return MinuteSLI(end, nan, np.zeros(count))
        reference = np.broadcast_to(fixed, current.shape)
    if kind == "numeric" and spec_bins is not None:
        group = group_of_bins(spec_bins, np.asarray(reference[-1]), monitor.settings.drift_bins)
        current, reference = grouped_counts(group, current), grouped_counts(group, reference)
    n_current, n_reference = current.sum(axis=1), reference.sum(axis=1)
    values = np.full(count, np.nan)
    both = (n_current > 0) & (n_reference > 0)
    if both.any():
        values[both] = js_divergence(current[both], reference[both])
    return MinuteSLI(end, values, np.minimum(n_current, n_reference))
