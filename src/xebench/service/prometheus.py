"""``GET /metrics``: the Prometheus text exposition of a tenant, built at scrape time.

A scrape is the families of a custom collector (:class:`TenantCollector`), written
in the text format by :func:`exposition` (byte for byte
:func:`~prometheus_client.generate_latest`'s text, five times faster on a scrape's
thousands of samples); the thousands of model gauges are written straight from the
bucket part by :func:`gauge_exposition` (the same bytes again), once per bucket part.
It has three parts:

- **model gauges**, from the one-minute bucket statistics (never the raw
  events): every window 1h, 6h and 24h ending at the scrape's minute (as
  ``GET /v1/metrics?window=W`` ends), per model, per version (``version=""``
  is every version together) and per cohort value the store keeps
  (``cohort=""`` is the whole model; the store's ``monitoring.cohort_cap``
  bounds the values, the rest is ``key:__other__``). The bucket rows of the
  whole tenant are read in one query per bucket table for all windows,
  merged once per (time segment, model, version, cohort, class list) and then
  per window with :func:`~xebench.store.buckets.merge_scores`, and finished
  by :func:`~xebench.store.buckets.score_stats` -- the statistics code of
  ``GET /v1/metrics``, so the values are its values. ``xebench_drift_js`` is
  the JS divergence of each monitored feature (and of the score and the
  labels, ``feature="__score__"`` / ``"__label__"``, as ``GET /v1/drift`` names
  them) of the whole model (every version) against its configured drift
  reference, where both sides hold at least ``monitoring.drift.min_samples``
  values (``/v1/drift``'s verdict is not "insufficient").
- **SLO series**, from the statuses the service's SLO evaluator keeps
  (``ServiceState.slo_statuses``).
- **service health**: counters of ingested events by outcome, of HTTP
  requests by route template and status, of refused requests (413 / 429 /
  503), the ingest latency histogram (:class:`Counters`, in process memory:
  they restart at 0 with the process, as Prometheus counters may), and
  gauges of the writer queue, pending and orphan labels, stored events.

The bucket part is computed once per (tenant, minute, commit): concurrent
scrapes share it, and a scrape after an acknowledged write computes it anew
(read-your-writes); see :class:`Prometheus`.

Example:
    >>> from fastapi.testclient import TestClient
    >>> from prometheus_client.parser import text_string_to_metric_families
    >>> from xebench.service.app import create_app
    >>> from xebench.store import EventStore
    >>> with TestClient(create_app(EventStore(":memory:"))) as client:
    ...     _ = client.post("/v1/predictions", json=[
    ...         {"request_id": "r1", "model": "fraud", "probabilities": 0.8}])
    ...     text = client.get("/metrics").text
    >>> samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
    ...            for f in text_string_to_metric_families(text) for s in f.samples}
    >>> samples["xebench_predictions", (("cohort", ""), ("model", "fraud"), ("version", ""),
    ...                                 ("window", "1h"))]
    1.0
    >>> samples["xebench_events_total", (("kind", "prediction"), ("outcome", "accepted"))]
    1.0
"""

from __future__ import annotations

import bisect
import logging
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray
from prometheus_client import generate_latest
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from ..metrics.information import js_divergence
from ..monitor.drift import FileReferences, group_of_bins, grouped_counts, reference_of
from ..monitor.reads import Selection, feature_counts, merged, one_class_list, scores
from ..monitor.scope import Scope, Span, ceil_to
from ..monitor.settings import MonitorSettings
from ..stats.codec import merge_lists, point_results
from ..stats.score_calibration import ECE_BINS, FINE_BINS
from ..store.bucket_rows import (
    column_codes,
    combined_codes,
    lag_matrix,
    lag_percentiles,
    loss_sums,
    score_rows,
    unique_groups,
)
from ..store.bucket_schema import (
    DAILY,
    DAY_SECONDS,
    HOUR_SECONDS,
    HOURLY,
    SCORE_SCHEMA,
)
from ..store.buckets import ALL, merge_scores
from ..store.event_store import EventStore

if TYPE_CHECKING:
    from ..ingest.events import BatchError
    from ..store.writes import WriteOutcome
    from .state import ServiceState

__all__ = [
    "CONTENT_TYPE",
    "LATENCY_BUCKETS",
    "WINDOWS",
    "Counters",
    "Prometheus",
    "RequestCounter",
    "Snapshot",
    "TenantCollector",
    "gauge_exposition",
    "model_gauges",
    "read_buckets",
]

log = logging.getLogger("xebench.service.prometheus")

#: The media type of the answer: the classic text format, which every Prometheus reads (the
#: names and labels here are all legacy-valid, so the body is that format whatever
#: version of prometheus_client renders it).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

#: The windows of the model gauges (their ``window`` label), each ending at the scrape's minute.
WINDOWS = ("1h", "6h", "24h")

#: Upper bounds (seconds) of ``xebench_ingest_latency_seconds``'s buckets.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

#: The HTTP methods counted by name; any other is counted as ``method="other"``.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"})
_KINDS = {"predictions": "prediction", "labels": "label", "sequences": "sequence"}
_OUTCOMES = ("accepted", "duplicate", "rejected")
_REJECTED = ("413", "429", "503")
_PROBES = frozenset({"/healthz", "/readyz"})
_BATCH_SIZE = re.compile(r"^\d+ of (\d+) events")
_MINUTE = timedelta(minutes=1)
_US = 1_000_000

# (name, help) of the model gauges, in exposition order.
_MODEL_GAUGES = (
    ("xebench_log_loss", "Log loss (cross-entropy, nats) of the labelled predictions."),
    ("xebench_brier", "Brier score of the labelled predictions."),
    ("xebench_ece", "Expected calibration error (15 uniform bins) of the labelled predictions."),
    ("xebench_skill", "Skill score: 1 - log loss / prior (no-skill) log loss."),
    ("xebench_label_coverage", "Share of the window's predictions that have a label."),
    ("xebench_label_lag_seconds", "Median label lag (label arrival minus prediction), seconds."),
    ("xebench_label_lag_p90_seconds", "90th percentile of label lag, seconds."),
    ("xebench_predictions", "Predictions in the window (by prediction time)."),
    ("xebench_labelled", "Predictions of the window that have a label."),
    (
        "xebench_extremal_predictions",
        "Predictions whose score (binary: P(class 1); multiclass: top-label confidence) "
        "is below 0.05 or at least 0.95 (the outermost bins of the 20-bin score histogram).",
    ),
    (
        "xebench_log_loss_estimate_calibrated",
        "ESTIMATE, not a measurement (never an SLI): the window's expected log loss (nats) "
        "from its predictions alone if the model is calibrated -- their mean entropy; "
        "what the loss will be once labels lag behind.",
    ),
)
_MODEL_LABELS = ("model", "version", "window", "cohort")
_SLO_LABELS = ("slo", "model", "version", "cohort", "sli")


# --- service counters (process memory) ------------------------------------------------


@dataclass
class _Histogram:
    counts: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS) + 1))
    total: float = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
        self.total += seconds


class Counters:
    """The service's own counters: ingested events, HTTP requests, refusals, ingest latency.

    Kept in process memory per app (they restart at 0 with the process); keyed by
    tenant, so that a scrape shows its tenant's counts. Requests no tenant could be
    attributed to (no valid token, health probes, unknown paths) are counted under
    None and shown to every tenant.

    Example:
        >>> from xebench.store.writes import WriteOutcome
        >>> counters = Counters()
        >>> counters.ingested("acme", "predictions", WriteOutcome(3, 1, []), 4, 0.004)
        >>> counters.events("acme")[("prediction", "accepted")], counters.latency("acme")[0]
        (3, ('prediction', [0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1], 0.004))
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events: Counter[tuple[str, str, str]] = Counter()
        self._requests: Counter[tuple[str | None, str, str, str]] = Counter()
        self._latency: dict[tuple[str, str], _Histogram] = {}

    def ingested(
        self, tenant: str, kind: str, outcome: WriteOutcome, n: int, seconds: float
    ) -> None:
        """A batch of ``n`` events of ``kind`` (``"predictions"`` / ``"labels"``) was
        answered after its write: a 409 (every event rejected) or a 200 (inserted and
        duplicate events; its latency observed)."""
        name = _KINDS.get(kind, kind)
        with self._lock:
            if outcome.conflicts:
                self._events[tenant, name, "rejected"] += n
                return
            self._events[tenant, name, "accepted"] += outcome.inserted
            self._events[tenant, name, "duplicate"] += outcome.duplicates
            self._latency.setdefault((tenant, name), _Histogram()).observe(seconds)

    def refused(self, tenant: str | None, kind: str, error: BatchError) -> None:
        """A batch refused before its write: a 422 rejects every event of it (the answer
        states how many; other refusals name no events and count as requests only).

        Example:
            >>> from xebench.errors import BatchError
            >>> counters = Counters()
            >>> counters.refused("t", "labels", BatchError(422, "2 of 5 events are invalid"))
            >>> counters.events("t")[("label", "rejected")]
            5
        """
        if tenant is None or error.status != 422:
            return
        size = _BATCH_SIZE.match(error.detail)
        if size is None:
            return
        with self._lock:
            self._events[tenant, _KINDS.get(kind, kind), "rejected"] += int(size.group(1))

    def request(self, tenant: str | None, method: str, route: str, status: int) -> None:
        """One HTTP answer (``route`` a route template, never a raw path)."""
        verb = method if method in _METHODS else "other"
        with self._lock:
            self._requests[tenant, verb, route, str(status)] += 1

    def events(self, tenant: str) -> dict[tuple[str, str], int]:
        """(kind, outcome) -> events of ``tenant``, every pair present (0 when none)."""
        with self._lock:
            return {
                (kind, outcome): self._events.get((tenant, kind, outcome), 0)
                for kind in _KINDS.values()
                for outcome in _OUTCOMES
            }

    def requests(self, tenant: str) -> dict[tuple[str, str, str], int]:
        """(method, route, status) -> answers of ``tenant`` and of no tenant."""
        out: Counter[tuple[str, str, str]] = Counter()
        with self._lock:
            for (owner, *key), n in self._requests.items():
                if owner is None or owner == tenant:
                    out[tuple(key)] += n  # type: ignore[index]
        return dict(out)

    def latency(self, tenant: str) -> list[tuple[str, list[int], float]]:
        """(kind, cumulative bucket counts with +Inf last, sum) of ``tenant``'s ingest
        latency, for every kind."""
        out = []
        with self._lock:
            for kind in _KINDS.values():
                histogram = self._latency.get((tenant, kind), _Histogram())
                out.append((kind, list(np.cumsum(histogram.counts).tolist()), histogram.total))
        return out


class RequestCounter:
    """ASGI middleware: counts every HTTP answer in the app's :class:`Counters` by method,
    route template (``scope["route"]``, or the ingest lane's path) and status.

    Unmatched paths count as ``route="unmatched"``, so the label set stays bounded
    whatever clients ask for.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500

        async def record(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record)
        finally:
            state = getattr(getattr(scope.get("app"), "state", None), "xebench", None)
            prometheus = getattr(state, "prometheus", None)
            if prometheus is not None:
                route = scope.get("route")
                template = getattr(route, "path", None) or scope.get("xebench.route")
                tenant = scope.get("state", {}).get("tenant")
                prometheus.counters.request(
                    tenant, scope["method"], template or "unmatched", status
                )


# --- reading the bucket rows of a tenant ----------------------------------------------


def _floor(us: int, unit: int) -> int:
    return us // (unit * _US) * unit * _US


def _ceil(us: int, unit: int) -> int:
    return -(-us // (unit * _US)) * unit * _US


def _plan(table: str, start: int, end: int, rolled: int | None) -> dict[str, list[tuple[int, int]]]:
    """The ranges (microseconds) of each bucket table that
    :func:`xebench.store.queries.bucket_rows` reads for [start, end) (with ``hours``):
    whole days before the roll-up horizon from the daily twin, whole hours from the
    hourly twin, the ragged ends from the minutes.

    Example:
        >>> h = HOUR_SECONDS * _US
        >>> _plan("bucket_scores", 30 * 60 * _US, 3 * h, None)
        {'bucket_scores': [(1800000000, 3600000000)], 'bucket_scores_hour': [(3600000000, \
10800000000)]}
    """
    ranges: dict[str, list[tuple[int, int]]] = {}
    segments = [(start, end)]
    if rolled is not None and start < rolled:
        first_day, last_day = _ceil(start, DAY_SECONDS), _floor(min(end, rolled), DAY_SECONDS)
        if first_day < last_day:
            ranges[DAILY[table]] = [(first_day, last_day)]
            segments = [(start, first_day), (last_day, end)]
    for begin, stop in segments:
        first_hour, last_hour = _ceil(begin, HOUR_SECONDS), _floor(stop, HOUR_SECONDS)
        if first_hour < last_hour:
            ranges.setdefault(table, []).extend([(begin, first_hour), (last_hour, stop)])
            ranges.setdefault(HOURLY[table], []).append((first_hour, last_hour))
        else:
            ranges.setdefault(table, []).append((begin, stop))
    kept = {name: [(a, b) for a, b in parts if a < b] for name, parts in ranges.items()}
    return {name: parts for name, parts in kept.items() if parts}


@dataclass
class _Layout:
    """The spans of one scrape cut into elementary time segments, per bucket table.

    Every row read falls in exactly one segment (its table's interval between two
    consecutive range ends); a span is a set of segments. ``whole[s]``: span ``s``
    takes every cohort (else only the model-wide rows, ``cohort_key = ''``).
    """

    tables: list[str]
    edges: list[NDArray[np.int64]]
    segment: list[NDArray[np.int64]]  # per table: the segment of each interval (-1: none)
    members: list[NDArray[np.bool_]]  # per span: which segments it holds
    whole: list[bool]
    wanted: list[list[tuple[int, int, bool]]]  # per table: (begin, end, every cohort) to read

    @classmethod
    def of(cls, table: str, spans: list[tuple[Span, bool]], rolled: int | None) -> _Layout:
        plans = [
            _plan(table, int(s.start.timestamp() * _US), int(s.end.timestamp() * _US), rolled)
            for s, _ in spans
        ]
        names = sorted({name for plan in plans for name in plan}, key=_table_order)
        layout = cls([], [], [], [], [whole for _, whole in spans], [])
        covered: list[list[NDArray[np.bool_]]] = [[] for _ in spans]
        n_segments = 0
        for name in names:
            points = sorted({p for plan in plans for r in plan.get(name, []) for p in r})
            edges = np.array(points, dtype=np.int64)
            low, high = edges[:-1], edges[1:]
            inside = np.zeros((len(spans), low.shape[0]), dtype=bool)
            for s, plan in enumerate(plans):
                for a, b in plan.get(name, []):
                    inside[s] |= (low >= a) & (high <= b)
            used = inside.any(axis=0)
            segment = np.full(low.shape[0], -1, dtype=np.int64)
            segment[used] = n_segments + np.arange(int(used.sum()))
            n_segments += int(used.sum())
            for s in range(len(spans)):
                covered[s].append(inside[s][used])
            # Intervals wanted by a span of every cohort, or only by model-wide ones;
            # neighbours of the same kind read as one.
            every = (inside & np.array(layout.whole)[:, None]).any(axis=0)
            wanted: list[tuple[int, int, bool]] = []
            for k in np.flatnonzero(used):
                a, b, flag = int(low[k]), int(high[k]), bool(every[k])
                if wanted and wanted[-1][1] == a and wanted[-1][2] == flag:
                    wanted[-1] = (wanted[-1][0], b, flag)
                else:
                    wanted.append((a, b, flag))
            layout.tables.append(name)
            layout.edges.append(edges)
            layout.segment.append(segment)
            layout.wanted.append(wanted)
        layout.members = [
            np.concatenate(parts) if parts else np.zeros(0, dtype=bool) for parts in covered
        ]
        return layout

    def segments_of(self, t: int, bucket: NDArray[np.int64]) -> NDArray[np.int64]:
        """The segment of each row of table ``t`` (-1: outside every span)."""
        edges = self.edges[t]
        k = np.searchsorted(edges, bucket, side="right") - 1
        ok = (k >= 0) & (k < edges.shape[0] - 1)
        out = np.full(bucket.shape[0], -1, dtype=np.int64)
        out[ok] = self.segment[t][k[ok]]
        return out

    def query(self, t: int, columns: str) -> tuple[str, dict[str, Any]]:
        """The query of table ``t``'s wanted rows, and its parameters (but ``tenant``).

        One scan: the range from the first interval to the last is pushed into it (the
        zone maps of ``bucket`` skip the row groups outside), the intervals filter the
        rest. A scan per interval would read each row group it touches once per interval,
        and when the rows do not follow time (a store bulk-loaded, then compacted: rows
        in key order) every scan reads every row group.
        """

        def moment(us: int) -> datetime:
            return datetime.fromtimestamp(us / _US, UTC)

        wanted = self.wanted[t]
        params: dict[str, Any] = {"lo": moment(wanted[0][0]), "hi": moment(wanted[-1][1])}
        terms = []
        for i, (a, b, every) in enumerate(wanted):
            params[f"a{i}"], params[f"b{i}"] = moment(a), moment(b)
            term = f"bucket >= $a{i} AND bucket < $b{i}"
            terms.append(f"({term})" if every else f"(cohort_key = '' AND {term})")
        sql = (
            f"SELECT {columns} FROM {self.tables[t]} WHERE tenant = $tenant "
            f"AND bucket >= $lo AND bucket < $hi AND ({' OR '.join(terms)})"
        )
        return sql, params

    def read(self, store: EventStore, tenant: str, t: int, columns: str) -> pa.Table:
        """Table ``t``'s wanted rows (:meth:`query`), on a cursor of its own."""
        sql, params = self.query(t, columns)
        with store.cursor() as cursor:
            return cursor.sql(sql, params={"tenant": tenant, **params}).to_arrow_table()


def _table_order(name: str) -> int:
    return 0 if name in HOURLY else 1 if name in HOURLY.values() else 2


def _rolled_before(store: EventStore) -> int | None:
    """Where retention rolled hour buckets into days, in microseconds (as the reads know it)."""
    with store.cursor() as cursor:
        rows = cursor.execute("SELECT value FROM meta WHERE key = 'hours_rolled_before'").fetchall()
    return int(datetime.fromisoformat(rows[0][0]).timestamp() * _US) if rows else None


def _spans(end: datetime) -> tuple[list[Span], list[Span]]:
    """The current spans of :data:`WINDOWS` ending at ``end``, and the rolling drift
    reference of each (the window just before it)."""
    current = []
    for label in WINDOWS:
        current.append(Scope("", "", window=label, now=end).span())
    return current, [Span(s.start - s.length, s.start) for s in current]


def _score_columns() -> str:
    """What a scrape reads of each ``bucket_scores`` row: every column but the tenant and
    the delta flag, less what no gauge shows (a scrape reads ~25,000 rows at 1e7 events,
    and each list value read is DuckDB and merge time; measured: a fifth of the minute
    table's read and merge). Left out, as constants the merge carries as zeros:

    - the second moments and ``weight_sq`` (the gauges give no interval);
    - the label-lag bridge's per-bin sums and ``est_var``: the calibrated gauge needs
      only their total, ``sum(hit_s + miss - miss_s)`` (:attr:`LossSums.entropy
      <xebench.stats.expected_loss.LossSums.entropy>`), read summed into a one-bin
      ``est_hit_s``; the reliability map of ``/v1/metrics``' estimate is not exported.

    Example:
        >>> "est_hit_s" in _score_columns() and "nll_m2" in _score_columns()
        True
    """
    total = " + ".join(f"coalesce(list_sum({name}), 0.0)" for name in ("est_hit_s", "est_miss"))
    total += " - coalesce(list_sum(est_miss_s), 0.0)"
    constant = {
        **dict.fromkeys(("nll_m2", "brier_m2", "weight_sq", "est_var"), "0.0::DOUBLE"),
        **dict.fromkeys(("est_hit", "est_miss", "est_miss_s"), "[]::DOUBLE[]"),
        "est_hit_s": f"[{total}]::DOUBLE[]",
    }
    assert set(constant) <= set(SCORE_SCHEMA.names)
    return ", ".join(
        f"{constant[name]} AS {name}" if name in constant else name
        for name in SCORE_SCHEMA.names
        if name not in ("tenant", "delta")
    )


_SCORE_COLUMNS = _score_columns()
_FEATURE_COLUMNS = "model, version, bucket, feature, counts"
_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    """The threads a scrape reads its bucket tables on, each with its own cursor (DuckDB
    and most of the merge release the GIL: the tables are read and merged side by side)."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(4, thread_name_prefix="xebench-scrape")
        return _POOL


def _layouts(store: EventStore, now: datetime) -> tuple[_Layout, _Layout]:
    """The layouts of a scrape at ``now``: the score buckets of every window (every cohort)
    and of the drift references (model-wide), and the feature buckets of both."""
    current, reference = _spans(ceil_to(now, _MINUTE))
    rolled = _rolled_before(store)
    spans = [(s, True) for s in current] + [(s, False) for s in reference]
    # Features are kept for the model as a whole (per cohort only with cohort_features).
    return (
        _Layout.of("bucket_scores", spans, rolled),
        _Layout.of("bucket_features", [(s, False) for s, _ in spans], rolled),
    )


def read_buckets(store: EventStore, tenant: str, now: datetime) -> list[pa.Table]:
    """The bucket rows a scrape at ``now`` reads, and nothing more: one query per bucket
    table (minutes, hours, and days before retention's roll-up horizon), run side by side
    as the scrape runs them -- the ``bucket_scores`` rows of every window (every model,
    version and cohort of ``tenant``) and of the drift references (model-wide rows), then
    the model-wide ``bucket_features`` rows of both. The floor of a scrape's time (the
    benchmark's "bare query").

    Example:
        >>> from datetime import UTC, datetime
        >>> at = datetime(2026, 1, 1, 12, 30, tzinfo=UTC)  # minutes and hours of each kind
        >>> [table.num_rows for table in read_buckets(EventStore(":memory:"), "t", at)]
        [0, 0, 0, 0]
    """
    scores_layout, features_layout = _layouts(store, now)
    jobs = [
        _pool().submit(layout.read, store, tenant, t, columns)
        for layout, columns in (
            (scores_layout, _SCORE_COLUMNS),
            (features_layout, _FEATURE_COLUMNS),
        )
        for t in range(len(layout.tables))
    ]
    return [job.result() for job in jobs]


# --- model gauges ---------------------------------------------------------------------


@dataclass
class Snapshot:
    """What a scrape reads from the store, ready to expose: gauge name -> samples.

    A sample is (label values, value); label names are those of its family
    (:data:`_MODEL_LABELS`, plus ``feature`` for ``xebench_drift_js``).
    ``stored`` holds the tenant's :meth:`EventStore.counts`.

    Example:
        >>> Snapshot({}, {"predictions": 0, "labels": 0, "pending": 0, "orphans": 0}).gauges
        {}
    """

    gauges: dict[str, list[tuple[tuple[str, ...], float]]]
    stored: dict[str, int]
    #: False: a part could not be read (left out); such a snapshot is not shared.
    complete: bool = True
    _text: bytes | None = field(default=None, init=False, repr=False, compare=False)

    def gauge_text(self) -> bytes:
        """The text exposition of the gauges (:func:`gauge_exposition`), written once:
        the scrapes sharing this snapshot share it too."""
        if self._text is None:
            self._text = gauge_exposition(self.gauges)
        return self._text


@dataclass(frozen=True)
class _Target:
    """One merged group: a span x model x version (None: every version) x cohort."""

    span: int
    model: str
    version: str | None
    cohort: tuple[str, str]
    classes: list[str] | None  # None: no single class list (every version's differ)
    merged: dict[str, Any]  # merge_scores' columns; this target is group ``g``
    g: int


class _Codes:
    """Dense codes of the key columns of score rows, and their values."""

    def __init__(self, table: pa.Table) -> None:
        def codes(name: str) -> tuple[NDArray[np.int64], list[Any]]:
            column = table[name].combine_chunks()
            encoded = pc.dictionary_encode(column)
            return (
                encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64),
                encoded.dictionary.to_pylist(),
            )

        self.model, self.models = codes("model")
        self.version, self.versions = codes("version")
        pair, _ = combined_codes([table["cohort_key"], table["cohort_value"]])
        cohort, first = unique_groups(pair)
        self.cohort = cohort.astype(np.int64)
        rows = pa.array(first)
        self.cohorts: list[tuple[str, str]] = list(
            zip(
                table["cohort_key"].take(rows).to_pylist(),
                table["cohort_value"].take(rows).to_pylist(),
                strict=True,
            )
        )
        self.classes, n_lists = column_codes(table["classes"])
        first = unique_groups(self.classes)[1] if self.classes.size else np.zeros(0, np.intp)
        lists = table["classes"].take(pa.array(first)).to_pylist() if first.size else []
        order = sorted(range(n_lists), key=lambda c: "\x1f".join(lists[c]))
        self.class_lists: list[list[str]] = lists
        self.class_rank = np.empty(n_lists, dtype=np.int64)
        self.class_rank[order] = np.arange(n_lists)


def _dominant(
    scope: NDArray[np.int64], classes: NDArray[np.int64], weight: NDArray[Any], rank: NDArray[Any]
) -> NDArray[np.bool_]:
    """Whether each group carries its scope's class list: the list most predictions of the
    scope carry, ties to the first in text order (:func:`~xebench.monitor.reads.one_class_list`).

    Example:
        >>> _dominant(np.array([0, 0, 1]), np.array([0, 1, 1]), np.array([5, 7, 1]),
        ...           np.array([0, 1])).tolist()
        [False, True, True]
    """
    if scope.size == 0:
        return np.zeros(0, dtype=bool)
    pair, first = unique_groups(scope * (int(classes.max()) + 1) + classes)
    totals = np.bincount(pair, weights=weight.astype(np.float64), minlength=first.shape[0])
    pair_scope, pair_class = scope[first], classes[first]
    order = np.lexsort((rank[pair_class], -totals, pair_scope))
    best = np.zeros(first.shape[0], dtype=bool)
    sorted_scope = pair_scope[order]
    best[order[np.r_[True, sorted_scope[1:] != sorted_scope[:-1]]]] = True
    return best[pair]


@dataclass
class _Staged:
    """Score rows of one table merged per (segment, model, version, cohort, class list)."""

    rows: pa.Table  # bucket_scores rows (score_rows), one per group
    segment: NDArray[np.int64]


def _gauge_bins(cal: tuple[Any, ...], n_bins: int) -> tuple[Any, ...]:
    """Sparse calibration sums (``merge_scores``' ``cal``: index, offsets, count, score
    and hit sums over :data:`FINE_BINS` bins) summed per ``n_bins`` uniform bin, each kept
    at the first fine bin of its coarse one: ``coarse_bins(., n_bins)`` then gives the
    same sums, from a tenth of the entries -- what the scrape's later merges and takes
    carry (measured: ~170 entries per stage-one group at 1e7 events, at most 15 after).

    Example:
        >>> cal = (np.array([0, 5, 40, 1]), np.array([0, 3, 4]), np.array([1.0, 2, 3, 4]),
        ...        np.array([0.1, 0.2, 0.3, 0.4]), np.array([1.0, 0, 1, 1]))
        >>> index, offsets, count, score, hit = _gauge_bins(cal, 15)  # 20 fine bins each
        >>> index.tolist(), offsets.tolist(), count.tolist(), hit.tolist()
        ([0, 40, 0], [0, 2, 3], [3.0, 3.0, 4.0], [1.0, 1.0, 1.0])
    """
    index, offsets, *sums = cal
    index, offsets = np.asarray(index, dtype=np.int64), np.asarray(offsets, dtype=np.int64)
    if index.size == 0:
        return cal
    width = FINE_BINS // n_bins
    owner = np.repeat(np.arange(offsets.shape[0] - 1), np.diff(offsets))
    coarse = index // width * width
    # A group's indices are sorted, so its coarse ones are too: a new entry wherever the
    # (group, coarse bin) pair changes.
    key = owner * FINE_BINS + coarse
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    new_offsets = np.searchsorted(owner[starts], np.arange(offsets.shape[0]), side="left")
    return (
        coarse[starts],
        new_offsets.astype(np.int64),
        *(np.add.reduceat(np.asarray(v, dtype=np.float64), starts) for v in sums),
    )


def _stage_one(store: EventStore, tenant: str, layout: _Layout, t: int) -> _Staged:
    """Read table ``t``'s score rows and merge them once per segment and key (the rows of a
    segment are merged once, however many spans hold it)."""
    rows = layout.read(store, tenant, t, _SCORE_COLUMNS)
    if not rows.num_rows:
        return _Staged(score_rows({name: [] for name in _KEY_NAMES}), np.zeros(0, np.int64))
    bucket = pc.cast(rows["bucket"], pa.int64()).to_numpy()
    segment = layout.segments_of(t, bucket)
    names = ("model", "version", "cohort_key", "cohort_value", "classes")
    key, _ = combined_codes([segment, *(rows[name] for name in names)])
    group, first = unique_groups(key)
    merged_rows = merge_scores(rows, group, first.shape[0])
    merged_rows["cal"] = _gauge_bins(merged_rows["cal"], ECE_BINS)
    picked = pa.array(first)
    keys: dict[str, Any] = {
        name: rows[name].take(picked) for name in _KEY_NAMES if name != "tenant"
    }
    keys["tenant"] = pa.array([tenant] * first.shape[0], pa.string())
    return _Staged(score_rows(keys, **merged_rows), segment[first])


_KEY_NAMES = ("tenant", "model", "version", "cohort_key", "cohort_value", "bucket", "classes")


def _merge_targets(parts: list[_Staged], layout: _Layout, n_current: int) -> list[_Target]:
    """Merge the stage-one groups per target: each current span x (model, version, cohort),
    then those per (model, cohort) for every version together; the reference spans per
    (model, every version), model-wide only. The groups of a (span, model, version,
    cohort) are those of its class list (:func:`_dominant`)."""
    staged = pa.concat_tables([part.rows for part in parts])
    g_segment = np.concatenate([part.segment for part in parts])
    if not staged.num_rows:
        return []
    codes = _Codes(staged)
    n_predictions = staged["n_predictions"].to_numpy()
    whole_model = np.array([c == (ALL, ALL) for c in codes.cohorts], dtype=bool)
    n_models, n_versions = max(len(codes.models), 1), max(len(codes.versions), 1)
    n_cohorts = max(len(codes.cohorts), 1)
    scope = (codes.model * n_versions + codes.version) * n_cohorts + codes.cohort
    take, target = [], []
    for s, members in enumerate(layout.members):
        held = np.flatnonzero(members[g_segment])
        if s >= n_current:  # a drift reference: model-wide rows only
            held = held[whole_model[codes.cohort[held]]]
        if held.size:
            kept = held[
                _dominant(scope[held], codes.classes[held], n_predictions[held], codes.class_rank)
            ]
            take.append(kept)
            target.append(s * n_models * n_versions * n_cohorts + scope[kept])
    if not take:
        return []
    picked, code = np.concatenate(take), np.concatenate(target)
    # Per version: each target's groups carry one class list.
    group, first = unique_groups(code)
    per_version = merge_scores(staged.take(pa.array(picked)), group, first.shape[0])
    rows = picked[first]
    cohort, rest = code[first] % n_cohorts, code[first] // n_cohorts
    version, rest = rest % n_versions, rest // n_versions
    model, span = rest % n_models, rest // n_models
    lists = codes.classes[rows]
    out = [
        _Target(int(span[g]), codes.models[int(model[g])], codes.versions[int(version[g])],
                codes.cohorts[int(cohort[g])], codes.class_lists[int(lists[g])], per_version, g)
        for g in range(first.shape[0])
        if span[g] < n_current
    ]  # fmt: skip
    # Every version together: the merge of the versions' merges.
    keys = {name: staged[name].take(pa.array(rows)) for name in _KEY_NAMES}
    together = (span * n_models + model) * n_cohorts + cohort
    group, first = unique_groups(together)
    every = merge_scores(score_rows(keys, **per_version), group, first.shape[0])
    high = np.full(first.shape[0], -1, dtype=np.int64)
    np.maximum.at(high, group, lists)
    low = np.full(first.shape[0], np.iinfo(np.int64).max)
    np.minimum.at(low, group, lists)
    for g, one in enumerate(first):
        single = codes.class_lists[int(high[g])] if low[g] == high[g] else None
        out.append(
            _Target(int(span[one]), codes.models[int(model[one])], None,
                    codes.cohorts[int(cohort[one])], single, every, g)
        )  # fmt: skip
    return out


def _window_values(targets: list[_Target]) -> dict[str, tuple[list[Any], list[bool]]]:
    """Gauge name -> (value, present) per target (absent: omitted), as ``Monitor.window``
    finishes a window (:meth:`xebench.monitor.windows.Monitor._finish`), for every target
    at once: the targets of a merge are finished together by the statistics' array forms
    (:func:`~xebench.stats.codec.point_results`, :func:`lag_percentiles`), which are the
    arithmetic of :meth:`~xebench.stats.scores.ScoreStats.result` and
    :func:`lag_percentile`, so the values are those of ``GET /v1/metrics`` to the bit."""
    n = len(targets)
    values = {name: np.zeros(n) for name, _ in _MODEL_GAUGES}
    present = {name: np.zeros(n, dtype=bool) for name, _ in _MODEL_GAUGES}
    merges: dict[int, tuple[dict[str, Any], list[int]]] = {}
    for i, target in enumerate(targets):
        merges.setdefault(id(target.merged), (target.merged, []))[1].append(i)
    for merge, positions in merges.values():
        at = np.array(positions, dtype=np.intp)
        g = np.array([targets[i].g for i in positions], dtype=np.intp)
        n_predictions = np.asarray(merge["n_predictions"])[g]
        n_labelled = np.asarray(merge["n_labelled"])[g]
        hist = np.asarray(merge["score_hist"])[g]
        lags = lag_matrix(merge, g)
        held = n_predictions > 0
        coverage = np.zeros(g.shape[0])
        np.divide(n_labelled, n_predictions, out=coverage, where=held)
        for name, value, mask in (
            ("xebench_label_coverage", coverage, held),
            ("xebench_label_lag_seconds", lag_percentiles(lags, 50), None),
            ("xebench_label_lag_p90_seconds", lag_percentiles(lags, 90), None),
            ("xebench_predictions", n_predictions, True),
            ("xebench_labelled", n_labelled, True),
            ("xebench_extremal_predictions", hist[:, 0] + hist[:, -1], True),
            # The label-lag bridge's calibrated estimate (its reliability map needs a
            # reference period's read: /v1/metrics only); the same sums as the window's.
            ("xebench_log_loss_estimate_calibrated", loss_sums(merge, g).mean_entropies(), None),
        ):
            values[name][at] = value
            present[name][at] = ~np.isnan(value) if mask is None else mask
        # The statistics, per number of classes (a target of no single class list, or of
        # no scored event, has none).
        n_scored = np.asarray(merge["n"])[g]
        widths: dict[int, list[int]] = {}
        for j, i in enumerate(positions):
            classes = targets[i].classes
            if classes is not None and n_scored[j] > 0:
                widths.setdefault(len(classes), []).append(j)
        for k, chosen in widths.items():
            pick = np.array(chosen, dtype=np.intp)
            points = point_results(merge, g[pick], k, n_bins=ECE_BINS)
            weighed = np.asarray(merge["nll_weight"])[g[pick]] > 0.0  # result(): else None
            for name, key in (
                ("xebench_log_loss", "log_loss"),
                ("xebench_brier", "brier"),
                ("xebench_ece", "ece"),
                ("xebench_skill", "skill"),
            ):
                values[name][at[pick]] = points[key]
                shown = weighed & (points["prior_log_loss"] != 0.0) if key == "skill" else weighed
                present[name][at[pick]] = shown
    out: dict[str, tuple[list[Any], list[bool]]] = {}
    for name, value in values.items():
        listed = value.astype(np.int64).tolist() if name in _INTEGERS else value.tolist()
        out[name] = (listed, present[name].tolist())
    return out


#: Gauges given as ints (the counts the statistics keep as integers).
_INTEGERS = ("xebench_predictions", "xebench_labelled")
_COUNTS = ("xebench_predictions", "xebench_labelled", "xebench_extremal_predictions")


def model_gauges(
    store: EventStore,
    settings: MonitorSettings,
    tenant: str,
    now: datetime,
    *,
    drift: bool = True,
    files: FileReferences | None = None,
) -> dict[str, list[tuple[tuple[str, ...], float]]]:
    """The model gauges of ``tenant`` at ``now`` (and ``xebench_drift_js`` with ``drift``):
    gauge name -> [(model, version, window, cohort[, feature]), value].

    Example:
        >>> from datetime import UTC, datetime
        >>> from xebench.ingest.events import parse_predictions
        >>> store = EventStore(":memory:")
        >>> _ = store.insert_predictions(parse_predictions([{"request_id": "a", "model": "m",
        ...     "probabilities": 0.97, "timestamp": "2026-01-01T00:00:00Z"}], tenant="t",
        ...     now=datetime(2026, 1, 1, 0, 1, tzinfo=UTC)))
        >>> _ = store.update_buckets()
        >>> gauges = model_gauges(store, MonitorSettings(), "t", datetime(2026, 1, 1, 0, 1,
        ...                       tzinfo=UTC))
        >>> gauges["xebench_predictions"][0], gauges["xebench_extremal_predictions"][0]
        ((('m', '', '1h', ''), 1), (('m', '', '1h', ''), 1.0))
        >>> gauges["xebench_log_loss"]  # no label yet: omitted
        []
    """
    score_layout, feature_layout = _layouts(store, now)
    pool = _pool()
    # Each table is read and merged on a thread of its own; then the features are read
    # while this thread merges and finishes the windows (measured: reading them at the
    # same time as the scores slowed both more than it saved).
    stages = [
        pool.submit(_stage_one, store, tenant, score_layout, t)
        for t in range(len(score_layout.tables))
    ]
    parts = [stage.result() for stage in stages]
    features = pool.submit(_feature_sums, store, tenant, feature_layout) if drift else None
    out: dict[str, list[tuple[tuple[str, ...], float]]] = {name: [] for name, _ in _MODEL_GAUGES}
    if drift:
        out["xebench_drift_js"] = []
    if not any(part.rows.num_rows for part in parts):
        if features is not None:
            features.result()
        return out
    targets = _merge_targets(parts, score_layout, len(WINDOWS))
    # Every series seen in a window is given in each window (counts 0 where it has none).
    series: dict[tuple[str, str, str], dict[int, _Target]] = {}
    for target in targets:
        if target.span < len(WINDOWS):
            key, value = target.cohort
            labels = (
                target.model,
                target.version or "",
                "" if key == ALL else f"{key}:{value}",
            )
            series.setdefault(labels, {})[target.span] = target
    shown = [t for t in targets if t.span < len(WINDOWS)]
    finished = _window_values(shown)
    position = {id(t): i for i, t in enumerate(shown)}
    names = [name for name, _ in _MODEL_GAUGES]
    for labels in sorted(series):
        model, version, cohort = labels
        for s, window in enumerate(WINDOWS):
            key = (model, version, window, cohort)
            found = series[labels].get(s)
            if found is None:  # no row in this window: counts 0
                for name in _COUNTS:
                    out[name].append((key, 0))
                continue
            i = position[id(found)]
            for name in names:
                value, present = finished[name]
                if present[i]:
                    out[name].append((key, value[i]))
    if features is not None:
        try:
            out["xebench_drift_js"] = _drift_js(
                store, settings, tenant, now, targets, features.result(), files
            )
        except Exception:  # drift never fails a scrape: its gauges are left out
            log.exception("drift gauges of tenant %r left out of the scrape", tenant)
    return out


# --- drift ----------------------------------------------------------------------------


def _feature_sums(
    store: EventStore, tenant: str, layout: _Layout
) -> dict[tuple[int, str, str], NDArray[np.float64]]:
    """(span, model, feature) -> summed counts of the model-wide feature rows."""
    tables, segments = [], []
    for t in range(len(layout.tables)):
        rows = layout.read(store, tenant, t, _FEATURE_COLUMNS)
        tables.append(rows)
        segments.append(layout.segments_of(t, pc.cast(rows["bucket"], pa.int64()).to_numpy()))
    rows = pa.concat_tables(tables) if tables else pa.table({})
    if not rows.num_rows:
        return {}
    segment = np.concatenate(segments)
    key, _ = combined_codes([segment, rows["model"], rows["feature"]])
    group, first = unique_groups(key)
    matrix, width = merge_lists(rows["counts"].combine_chunks(), group, first.shape[0])
    models = rows["model"].take(pa.array(first)).to_pylist()
    features = rows["feature"].take(pa.array(first)).to_pylist()
    out: dict[tuple[int, str, str], NDArray[np.float64]] = {}
    for s, members in enumerate(layout.members):
        for g in np.flatnonzero(members[segment[first]]):
            name = (s, models[g], features[g])
            part = matrix[g, : width[g]]
            if name in out and out[name].shape[0] == part.shape[0]:
                out[name] = out[name] + part
            else:
                out[name] = part.copy()
    return out


def _score_sides(target: _Target | None) -> dict[str, Any] | None:
    """The score histogram and label mix of ``target`` for the drift of score and labels."""
    if target is None:
        return None
    merge, g = target.merged, target.g
    return {
        "n_predictions": int(merge["n_predictions"][g]),
        "score_hist": np.asarray(merge["score_hist"][g], dtype=np.float64),
        "n": int(merge["n"][g]),
        "label_weight": np.asarray(merge["label_weight"][g], dtype=np.float64),
        "classes": target.classes,
    }


def _sides_of(table: pa.Table) -> dict[str, Any] | None:
    """:func:`_score_sides` of score rows read for a fixed reference."""
    kept, _ = one_class_list(table)
    if not kept.num_rows:
        return None
    texts = pc.unique(pc.binary_join(kept["classes"], "\x1f")).to_pylist()
    m = merged(kept)
    return {
        "n_predictions": int(m["n_predictions"][0]),
        "score_hist": np.asarray(m["score_hist"][0], dtype=np.float64),
        "n": int(m["n"][0]),
        "label_weight": np.asarray(m["label_weight"][0], dtype=np.float64),
        "classes": str(texts[0]).split("\x1f") if len(texts) == 1 else None,
    }


def _js(current: NDArray[np.float64], reference: NDArray[np.float64], least: int) -> float | None:
    """JS divergence of two count vectors when both sides hold ``least`` values."""
    n_current, n_reference = float(current.sum()), float(reference.sum())
    if n_current <= 0 or n_reference <= 0 or n_current < least or n_reference < least:
        return None
    return float(js_divergence(current, reference))


def _drift_js(
    store: EventStore,
    settings: MonitorSettings,
    tenant: str,
    now: datetime,
    targets: list[_Target],
    sums: dict[tuple[int, str, str], NDArray[np.float64]],
    files: FileReferences | None,
) -> list[tuple[tuple[str, ...], float]]:
    """``xebench_drift_js`` samples: per model (every version, the whole model) and window,
    each feature's (and the score's and labels') JS against the model's drift reference,
    computed as ``GET /v1/drift`` computes it (:mod:`xebench.monitor.drift`)."""
    n_windows = len(WINDOWS)
    whole = {(t.span, t.model): t for t in targets if t.version is None and t.cohort == (ALL, ALL)}
    least = settings.drift_min_samples
    current_spans, _ = _spans(ceil_to(now, _MINUTE))
    out: list[tuple[tuple[str, ...], float]] = []
    for model in sorted({m for _, m in whole}):
        spec = settings.references.get(model, "rolling")
        bins = store.buckets.feature_bins(tenant, model)
        fixed: tuple[dict[str, Any], dict[str, Any] | None] | None = None
        for s, window in enumerate(WINDOWS):
            if (s, model) not in whole:
                continue
            try:
                kind, ref_version, ref_span, ref_file = reference_of(spec, current_spans[s])
                if kind == "rolling":
                    ref_counts: dict[str, Any] = {
                        f: c for (t, m, f), c in sums.items() if t == s + n_windows and m == model
                    }
                    ref_scores = _score_sides(whole.get((s + n_windows, model)))
                else:
                    if fixed is None:
                        fixed = _fixed_reference(
                            store, tenant, model, kind, ref_version, ref_span, ref_file, files
                        )
                    ref_counts, ref_scores = fixed
            except Exception:  # no such upload, an unreadable file: no drift for the model
                log.debug("no drift reference for model %r", model, exc_info=True)
                break
            labels = (model, "", window, "")
            for name, spec_bins in sorted(bins.items()):
                ref, cur = ref_counts.get(name), sums.get((s, model, name))
                if ref is None or cur is None:
                    continue
                ref = np.asarray(ref, dtype=np.float64)
                if ref.shape[0] != spec_bins.n_bins or cur.shape[0] != spec_bins.n_bins:
                    continue
                if spec_bins.kind == "numeric":
                    group = group_of_bins(spec_bins, ref, settings.drift_bins)
                    ref, cur = grouped_counts(group, ref), grouped_counts(group, cur)
                value = _js(cur, ref, least)
                if value is not None:
                    out.append(((*labels, name), value))
            cur_scores = _score_sides(whole.get((s, model)))
            if ref_scores is None or cur_scores is None:
                continue
            if ref_scores["n_predictions"] > 0 and cur_scores["n_predictions"] > 0:
                value = _js(cur_scores["score_hist"], ref_scores["score_hist"], least)
                if value is not None:
                    out.append(((*labels, "__score__"), value))
            classes = ref_scores["classes"]
            if classes and classes == cur_scores["classes"] and ref_scores["n"] > 0:
                k = len(classes)
                sides = [
                    _label_mix(x["label_weight"][:k], x["n"]) for x in (cur_scores, ref_scores)
                ]
                if cur_scores["n"] > 0:
                    value = _js(sides[0], sides[1], least)
                    if value is not None:
                        out.append(((*labels, "__label__"), value))
    return out


def _label_mix(weight: NDArray[np.float64], n: int) -> NDArray[np.float64]:
    """A labels' weighted mix sized in labelled events (as ``/v1/drift``'s label histogram)."""
    total = float(weight.sum())
    return weight * (float(n) / total) if total > 0 else weight


def _fixed_reference(
    store: EventStore,
    tenant: str,
    model: str,
    kind: str,
    version: str | None,
    span: Span | None,
    path: Any,
    files: FileReferences | None,
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Feature counts (and score sides, when the reference is the model's own events) of a
    reference other than the rolling one."""
    if kind == "file":
        counted = (files or FileReferences()).counts(store, tenant, model, path)
        return {k: v for k, v in counted.items() if k != "__rows__"}, None
    if kind == "uploaded":
        uploaded = store.reference(tenant, model)
        if uploaded is None:
            raise LookupError(f"model {model!r} has no uploaded reference")
        return dict(uploaded["counts"]), None
    assert span is not None
    there = Selection(tenant, model, version, (ALL, ALL), span)
    return feature_counts(store, there), _sides_of(scores(store, there))


# --- the collector --------------------------------------------------------------------


def _gauge(name: str, documentation: str, labels: tuple[str, ...]) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, labels=list(labels))


_DRIFT_HELP = "Jensen-Shannon divergence (nats) of a feature against the model's drift reference."


def _gauge_spec(name: str) -> tuple[str, tuple[str, ...]]:
    """(help, label names) of a gauge of the snapshot."""
    if name == "xebench_drift_js":
        return _DRIFT_HELP, (*_MODEL_LABELS, "feature")
    return dict(_MODEL_GAUGES)[name], _MODEL_LABELS


class TenantCollector(Collector):
    """The metric families of one scrape of ``tenant`` (see the module docstring).

    Example:
        >>> collector = TenantCollector("t", Snapshot({}, {}), Counters(), [], 0)
        >>> [m.name for m in collector.collect()][:3]
        ['xebench_slo_minute_judged', 'xebench_slo_minute_bad', 'xebench_slo_target']
    """

    def __init__(
        self,
        tenant: str,
        snapshot: Snapshot,
        counters: Counters,
        slo_statuses: list[Any],
        queue_events: int,
    ) -> None:
        self.tenant = tenant
        self.snapshot = snapshot
        self.counters = counters
        self.slo_statuses = slo_statuses
        self.queue_events = queue_events

    def collect(self) -> Iterator[Metric]:
        """Every family: model gauges, drift, SLOs, service health."""
        for name, samples in self.snapshot.gauges.items():
            family = _gauge(name, *_gauge_spec(name))
            for labels, value in samples:
                family.add_metric(list(labels), float(value))
            yield family
        yield from self.service_families()

    def service_families(self) -> Iterator[Metric]:
        """The families after the snapshot's gauges: SLOs, service health."""
        yield from self._slos()
        yield from self._health()

    def _slos(self) -> Iterator[Metric]:
        specs = {
            "xebench_slo_minute_judged": "1 if the last complete minute was judged (good or bad).",
            "xebench_slo_minute_bad": "1 if the last complete minute was bad.",
            "xebench_slo_target": "Share of judged minutes that must be good over the period.",
            "xebench_slo_objective": "The SLI's threshold.",
            "xebench_slo_period_days": "The SLO's period, days.",
            "xebench_slo_sli": "The SLI over the SLO's window at the last complete minute.",
            "xebench_slo_budget_remaining": "Share of the period's error budget left.",
        }
        families = {name: _gauge(name, text, _SLO_LABELS) for name, text in specs.items()}
        burn = _gauge(
            "xebench_slo_burn_rate",
            "Error-budget burn rate over a trailing window (1: the budget lasts the period).",
            (*_SLO_LABELS, "window"),
        )
        info = _gauge("xebench_slo_info", "The SLO's runbook (value 1).", (*_SLO_LABELS, "runbook"))
        for status in self.slo_statuses:
            slo = status.slo
            labels = [slo.name, slo.model, slo.version or "", slo.cohort or "", slo.sli]
            verdict = status.verdict
            values = {
                "xebench_slo_minute_judged": 1.0 if verdict in (0, 1) else 0.0,
                "xebench_slo_minute_bad": 1.0 if verdict == 0 else 0.0,
                "xebench_slo_target": slo.target,
                "xebench_slo_objective": slo.objective,
                "xebench_slo_period_days": slo.period.total_seconds() / 86_400,
                "xebench_slo_sli": status.sli_value,
                "xebench_slo_budget_remaining": status.budget_remaining,
            }
            for name, value in values.items():
                if value is not None:
                    families[name].add_metric(labels, float(value))
            for window, rate in (status.burn_rates or {}).items():
                if rate is not None:
                    burn.add_metric([*labels, str(window)], float(rate))
            info.add_metric([*labels, slo.runbook or ""], 1.0)
        yield from families.values()
        yield burn
        yield info

    def _health(self) -> Iterator[Metric]:
        events = CounterMetricFamily(
            "xebench_events_total",
            "Ingested events by outcome: accepted (stored), duplicate (an identical re-send), "
            "rejected (in a batch refused with 409 or 422).",
            labels=["kind", "outcome"],
        )
        for (kind, outcome), n in self.counters.events(self.tenant).items():
            events.add_metric([kind, outcome], float(n))
        yield events
        requests = CounterMetricFamily(
            "xebench_http_requests_total",
            "HTTP answers by method, route template and status.",
            labels=["method", "route", "status"],
        )
        rejected: Counter[str] = Counter(dict.fromkeys(_REJECTED, 0))
        for (method, route, status), n in sorted(self.counters.requests(self.tenant).items()):
            requests.add_metric([method, route, status], float(n))
            if status in rejected and route not in _PROBES:  # a 503 of /readyz refuses nothing
                rejected[status] += n
        yield requests
        refused = CounterMetricFamily(
            "xebench_rejected_requests_total",
            "Requests refused for their size (413) or under back-pressure (429, 503).",
            labels=["status"],
        )
        for status in _REJECTED:
            refused.add_metric([status], float(rejected[status]))
        yield refused
        latency = HistogramMetricFamily(
            "xebench_ingest_latency_seconds",
            "Time from an ingest request's arrival to its acknowledgement (200), seconds.",
            labels=["kind"],
        )
        bounds = [*(f"{b:g}" for b in LATENCY_BUCKETS), "+Inf"]
        for kind, cumulative, total in self.counters.latency(self.tenant):
            latency.add_metric([kind], list(zip(bounds, cumulative, strict=True)), total)
        yield latency
        stored = self.snapshot.stored
        yield GaugeMetricFamily(
            "xebench_queue_events",
            "Events waiting for the writer (the service's queue, shared by every tenant).",
            value=self.queue_events,
        )
        for name, key, text in (
            ("xebench_pending_labels", "pending", "Labels waiting for their prediction."),
            (
                "xebench_orphan_labels",
                "orphans",
                "Pending labels older than the join window (kept, never dropped).",
            ),
        ):
            if key in stored:
                yield GaugeMetricFamily(name, text, value=stored[key])
        events_stored = GaugeMetricFamily(
            "xebench_stored_events", "Events stored.", labels=["kind"]
        )
        for kind, key in (("prediction", "predictions"), ("label", "labels")):
            if key in stored:
                events_stored.add_metric([kind], float(stored[key]))
        yield events_stored


# --- the text format ------------------------------------------------------------------


def _escape(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def exposition(metrics: Iterable[Metric]) -> bytes:
    """The Prometheus text format (0.0.4) of ``metrics``: byte for byte what
    :func:`prometheus_client.generate_latest` writes for them (the tests compare the two),
    about 5x faster on the thousands of samples of a scrape, where a label set is shared
    by every gauge of a window and escaped once. A family this does not write the same
    way (another type than gauge, counter or histogram; a sample with a timestamp or a
    ``_created`` one) is written by ``generate_latest`` itself.

    Example:
        >>> family = GaugeMetricFamily("x", "An x.", labels=["model"])
        >>> family.add_metric(['a "quoted" name'], 0.5)
        >>> print(exposition([family]).decode(), end="")
        # HELP x An x.
        # TYPE x gauge
        x{model="a \\"quoted\\" name"} 0.5
        >>> exposition([family]) == generate_latest(_Families([family]))
        True
    """
    out: list[str] = []
    label_text: dict[tuple[tuple[str, str], ...], str] = {}
    for metric in metrics:
        if metric.type not in ("gauge", "counter", "histogram") or any(
            s.timestamp is not None or s.name.endswith("_created") for s in metric.samples
        ):
            out.append(generate_latest(_Families([metric])).decode("utf-8"))
            continue
        name = metric.name + "_total" if metric.type == "counter" else metric.name
        help_text = metric.documentation.replace("\\", r"\\").replace("\n", r"\n")
        out.append(f"# HELP {name} {help_text}\n# TYPE {name} {metric.type}\n")
        for sample in metric.samples:
            text = ""
            if sample.labels:
                key = tuple(sample.labels.items())
                text = label_text.get(key, "")
                if not text:
                    pairs = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(key))
                    text = label_text[key] = "{" + pairs + "}"
            out.append(f"{sample.name}{text} {floatToGoString(sample.value)}\n")
    return "".join(out).encode("utf-8")


def gauge_exposition(gauges: dict[str, list[tuple[tuple[str, ...], float]]]) -> bytes:
    """The text format of a snapshot's gauges: byte for byte :func:`exposition` of the
    families :meth:`TenantCollector.collect` makes of them (the tests compare the two),
    written straight from the samples -- a label set, shared by the ten gauges of a
    series and window, is written once, and no family or sample object is made for
    the thousands of samples of a scrape.

    Example:
        >>> gauges = {"xebench_predictions": [(("m", "", "1h", ""), 3)]}
        >>> print(gauge_exposition(gauges).decode(), end="")
        # HELP xebench_predictions Predictions in the window (by prediction time).
        # TYPE xebench_predictions gauge
        xebench_predictions{cohort="",model="m",version="",window="1h"} 3.0
        >>> families = TenantCollector("t", Snapshot(gauges, {}), Counters(), [], 0).collect()
        >>> gauge_exposition(gauges) == exposition([next(families)])
        True
    """
    out: list[str] = []
    label_text: dict[tuple[str, ...], str] = {}
    for name, samples in gauges.items():
        documentation, names = _gauge_spec(name)
        order = sorted(range(len(names)), key=names.__getitem__)  # as exposition sorts them
        help_text = documentation.replace("\\", r"\\").replace("\n", r"\n")
        out.append(f"# HELP {name} {help_text}\n# TYPE {name} gauge\n")
        for labels, value in samples:
            text = label_text.get(labels)
            if text is None:
                if len(labels) != len(names):
                    raise ValueError(f"{name}: labels {labels!r} for names {names!r}")
                pairs = ",".join(f'{names[i]}="{_escape(labels[i])}"' for i in order)
                text = label_text[labels] = "{" + pairs + "}"
            out.append(f"{name}{text} {floatToGoString(value)}\n")
    return "".join(out).encode("utf-8")


class _Families:
    """A collector of given families (for :func:`generate_latest`)."""

    def __init__(self, metrics: list[Metric]) -> None:
        self.metrics = metrics

    def collect(self) -> list[Metric]:
        return self.metrics


# --- the scrape -----------------------------------------------------------------------


@dataclass
class _Entry:
    minute: datetime
    store: EventStore
    commits: int
    started: float
    future: Future[Snapshot]


class Prometheus:
    """The app's ``/metrics`` side: the :class:`Counters` and the scrape cache.

    :meth:`render` computes the bucket part of a tenant's scrape (:func:`model_gauges`,
    the stored counts) once per minute and writer commit: a scrape reuses the
    snapshot being computed or computed by another one if it started after every
    write this scrape's caller could have seen acknowledged (the writer's commit
    count), in the same minute, less than ``cache_seconds`` ago; ``cache_seconds=0``
    computes every scrape afresh.

    Example:
        >>> from xebench.service.app import create_app
        >>> from xebench.store import EventStore
        >>> state = create_app(EventStore(":memory:")).state.xebench
        >>> b"xebench_events_total" in state.prometheus.render(state, "default")
        True
    """

    def __init__(self, cache_seconds: float = 5.0) -> None:
        self.counters = Counters()
        self.cache_seconds = cache_seconds
        self._lock = threading.Lock()
        self._entries: dict[str, _Entry] = {}

    def snapshot(self, state: ServiceState, tenant: str, now: datetime | None = None) -> Snapshot:
        """The bucket part of ``tenant``'s scrape at ``now`` (default: the current time)."""
        moment = now or datetime.now(UTC)
        minute = ceil_to(moment, _MINUTE)
        store = state.store
        commits = state.writer.commits

        def compute() -> Snapshot:
            # A part the store cannot answer (it is being reopened; rows it refuses to
            # merge) is left out of the scrape, which still answers: the counters, the
            # queue and the SLO series say what the service is doing meanwhile.
            settings, files = state.monitor.settings, state.monitor.file_references
            gauges: dict[str, list[tuple[tuple[str, ...], float]]] = {}
            stored: dict[str, int] = {}
            complete = True
            try:
                gauges = model_gauges(store, settings, tenant, moment, files=files)
            except Exception:
                log.exception("model gauges of tenant %r left out of the scrape", tenant)
                complete = False
            try:
                stored = store.counts(tenant, now=moment)
            except Exception:
                log.exception("stored counts of tenant %r left out of the scrape", tenant)
                complete = False
            return Snapshot(gauges, stored, complete)

        if self.cache_seconds <= 0:
            return compute()
        with self._lock:
            entry = self._entries.get(tenant)
            fresh = (
                entry is not None
                and entry.minute == minute
                and entry.store is store
                and entry.commits >= commits
                and time.monotonic() - entry.started <= self.cache_seconds
            )
            if not fresh:
                # Read the commit count before the queries: they see at least those commits.
                entry = _Entry(minute, store, state.writer.commits, time.monotonic(), Future())
                self._entries[tenant] = entry
            assert entry is not None
        if not fresh:
            try:
                result = compute()
            except BaseException as error:
                entry.future.set_exception(error)
                result = None
            else:
                entry.future.set_result(result)
            if result is None or not result.complete:  # the next scrape tries again
                with self._lock:
                    if self._entries.get(tenant) is entry:
                        del self._entries[tenant]
        return entry.future.result()

    def render(self, state: ServiceState, tenant: str, now: datetime | None = None) -> bytes:
        """The Prometheus text exposition of ``tenant`` (:data:`CONTENT_TYPE`)."""
        snapshot = self.snapshot(state, tenant, now)
        statuses: Callable[[str], list[Any]] | None = getattr(state, "slo_statuses", None)
        slos: list[Any] = []
        if statuses is not None:
            try:
                slos = list(statuses(tenant))
            except Exception:  # the SLO series are left out, never the scrape
                log.exception("SLO statuses of tenant %r left out of the scrape", tenant)
        collector = TenantCollector(
            tenant, snapshot, self.counters, slos, state.writer.queued_events
        )
        # Byte for byte exposition(collector.collect()) (the tests compare them): the
        # snapshot's gauges written once per snapshot, then the service's families.
        return snapshot.gauge_text() + exposition(collector.service_families())
