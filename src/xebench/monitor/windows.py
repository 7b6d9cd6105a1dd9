"""Windows and series of a model over the bucket statistics; the :class:`Monitor` front.

Every answer here is a merge of the one-minute buckets of
:mod:`xebench.store.buckets` -- never a rescan of raw events -- finished by the
same statistics code as ``xebench bench`` (:class:`~xebench.ScoreStats`). The
drift of a window is :mod:`xebench.monitor.drift`'s, canary and shadow gates
are :mod:`xebench.monitor.compare`'s; :class:`Monitor` answers all of them.

Example:
    >>> from xebench.demo.stream import generate, load
    >>> from xebench.store import EventStore
    >>> store = EventStore(":memory:")
    >>> stream = generate(hours=3, rate_per_minute=20)
    >>> _ = load(store, stream); _ = store.update_buckets()
    >>> w = Monitor(store).window(Scope("default", "fraud", window="6h", now=stream.now))
    >>> w.n_predictions > 0, 0 < w.coverage <= 1
    (True, True)
"""

from __future__ import annotations

import math
import time
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

from ..errors import InvalidInputError
from ..ingest.policy import NO_PII, PiiPolicy
from ..stats.expected_loss import ReliabilityMap, estimate_log_loss
from ..stats.scores import ScoreStats
from ..stats.tokens import TokenStats
from ..store import queries
from ..store.bucket_rows import loss_sums
from ..store.buckets import HOUR_SECONDS, lag_counts, lag_percentile, merge_scores, score_stats
from ..store.event_store import EventStore
from .cohorts import CohortQuestions
from .compare import GateQuestions
from .drift import DriftQuestions, FileReferences
from .events import EventQuestions
from .reads import Selection, class_list, merged, one_class_list, scores, token_sums
from .reliability import ReliabilityQuestions
from .results import Series, Window
from .scope import (
    WINDOWS,
    Scope,
    Span,
    floor_to,
    parse_cohort,
    parse_duration,
    parse_reference,
    parse_time,
)
from .settings import ModelPolicy, MonitorSettings

# The parsing helpers and settings live in .scope and .settings; they are named
# here too, where the service's config and the demo have always imported them.
__all__ = [
    "WINDOWS",
    "ModelPolicy",
    "Monitor",
    "MonitorSettings",
    "Scope",
    "parse_cohort",
    "parse_duration",
    "parse_reference",
    "parse_time",
]

_HOUR = timedelta(seconds=HOUR_SECONDS)
_MAX_POINTS = 10_000
_LAG_CACHE_SECONDS = 60.0


class Monitor(DriftQuestions, GateQuestions, CohortQuestions, ReliabilityQuestions, EventQuestions):
    """Answers monitoring questions from a store's buckets; safe from any thread.

    Each question is asked for one :class:`~xebench.monitor.scope.Scope` (tenant,
    model, version, cohort, range, now) and answered with a typed result whose
    ``to_dict()`` is the HTTP API's JSON.

    Args:
        store: the event store (read through its cursors).
        settings: label delays, coverage thresholds, drift and gate defaults.
        pii: the privacy policy applied to the cohorts and features of the events
            it shows (:meth:`extreme_events`); the service passes its own.

    Example:
        >>> from xebench.store import EventStore
        >>> Monitor(EventStore(":memory:")).window(Scope("t", "m", window="1h")).n_predictions
        0
    """

    def __init__(
        self,
        store: EventStore,
        settings: MonitorSettings | None = None,
        *,
        pii: PiiPolicy = NO_PII,
    ) -> None:
        self.store = store
        self.settings = settings or MonitorSettings()
        self.pii = pii
        self._lag_cache: dict[tuple[str, str], tuple[float, float | None]] = {}
        self.file_references = FileReferences()

    # --- windows ----------------------------------------------------------------------

    def window(self, scope: Scope, *, base: str | int = "e", confidence: float = 0.95) -> Window:
        """One window: counts, coverage, label lag, log loss with CI, Brier, ECE, skill...

        Example:
            >>> from xebench.store import EventStore
            >>> w = Monitor(EventStore(":memory:")).window(Scope("t", "m", window="1h"))
            >>> w.to_dict()["n_predictions"], w.log_loss
            (0, None)
        """
        scope = scope.pinned(self.store.buckets.config.cohort_crossings)
        span = scope.span()
        table, other = one_class_list(scores(self.store, Selection.of(scope, span)))
        classes = class_list(table, scope.model)
        delay = self._label_delay(scope)
        excluded = [int(pc.sum(other["n_predictions"]).as_py() or 0)]
        reference = self._reference_map(scope, span.start, classes)
        tokens = token_sums(self.store, Selection.of(scope, span))
        return self._finish(
            scope,
            merged(table),
            0,
            classes,
            span,
            delay,
            base,
            confidence,
            excluded,
            reference,
            tokens,
        )

    def series(
        self,
        scope: Scope,
        *,
        step: str | timedelta,
        base: str | int = "e",
        confidence: float = 0.95,
    ) -> Series:
        """Consecutive windows of ``step`` (a multiple of a minute) covering the range.

        Example:
            >>> from xebench.store import EventStore
            >>> s = Monitor(EventStore(":memory:")).series(Scope("t", "m", window="6h"), step="1h")
            >>> len(s.windows)
            6
        """
        scope = scope.pinned(self.store.buckets.config.cohort_crossings)
        size = parse_duration(step, "step")
        span = scope.span(step=size)
        points = int(-(-span.length.total_seconds() // size.total_seconds()))
        if points > _MAX_POINTS:
            raise InvalidInputError(
                "step", f"gives {points} points; at most {_MAX_POINTS} per series", value=step
            )
        on_hours = (
            size.total_seconds() % HOUR_SECONDS == 0 and floor_to(span.start, _HOUR) == span.start
        )
        table, other = one_class_list(scores(self.store, Selection.of(scope, span), hours=on_hours))
        classes = class_list(table, scope.model)

        def offsets(rows: pa.Table) -> NDArray[np.intp]:
            micros = pc.cast(rows["bucket"], pa.int64()).to_numpy()
            start, width = int(span.start.timestamp() * 1e6), int(size.total_seconds() * 1e6)
            return ((micros - start) // width).astype(np.intp)

        merge = merge_scores(table, offsets(table), points)
        excluded = np.bincount(
            offsets(other), weights=other["n_predictions"].to_numpy(), minlength=points
        ).astype(np.int64)
        delay = self._label_delay(scope)
        reference = self._reference_map(scope, span.start, classes)
        tokens = token_sums(
            self.store, Selection.of(scope, span), hours=on_hours, step=size, points=points
        )
        windows = []
        for g in range(points):
            begin = span.start + g * size
            part = Span(begin, min(begin + size, span.end))
            windows.append(
                self._finish(
                    scope,
                    merge,
                    g,
                    classes,
                    part,
                    delay,
                    base,
                    confidence,
                    excluded,
                    reference,
                    tokens,
                )
            )
        return Series(windows)

    def _finish(
        self,
        scope: Scope,
        merge: dict[str, Any],
        g: int,
        classes: list[str] | None,
        span: Span,
        delay: timedelta,
        base: str | int,
        confidence: float,
        excluded: Any = (0,),
        reference: ReliabilityMap | None = None,
        tokens: dict[str, NDArray[Any]] | None = None,
    ) -> Window:
        """Group ``g`` of merged score buckets as the window ``span`` of ``scope``;
        ``excluded[g]`` predictions carried another class list (:func:`one_class_list`);
        ``reference``: the reliability map of the label-lag bridge's estimate;
        ``tokens``: the sums of the scored sequences per group (:func:`token_sums`)."""
        n_predictions = int(merge["n_predictions"][g])
        n_labelled = int(merge["n_labelled"][g])
        coverage = n_labelled / n_predictions if n_predictions else None
        lags = lag_counts(merge, g)
        metrics: dict[str, Any] = dict.fromkeys(Window.METRICS)
        metrics["n"], metrics["weight"] = 0, 0.0
        check = None
        if classes is not None and int(merge["n"][g]) > 0:
            stats = score_stats(merge, g, classes)
            result = stats.result(base=base, confidence=confidence)
            metrics.update({k: v for k, v in result.items() if k in metrics})
            check = _labelled_map(stats)
        sums = loss_sums(merge, g)
        estimate = estimate_log_loss(
            sums,
            reference,
            check=check,
            min_reference=self.settings.estimate_min_labelled,
            missing=n_predictions - int(sums.n[0]),
            confidence=confidence,
            base=base,
        )
        n_sequences, token_result = 0, None
        if tokens is not None and int(tokens["n_sequences"][g]) > 0:
            stats = TokenStats.from_sums({name: values[g] for name, values in tokens.items()})
            n_sequences = stats.n_sequences
            token_result = _finite(stats.result(confidence=confidence))
        policy = self.settings.policy(scope.model)
        reasons = []
        assert scope.now is not None  # pinned by the caller
        if delay > timedelta(0) and span.end > scope.now - delay:
            reasons.append(f"ends within the label delay ({delay.total_seconds():g} s)")
        if coverage is not None and coverage < policy.min_coverage:
            reasons.append(f"coverage {coverage:.1%} < {policy.min_coverage:.0%}")
        return Window(
            span.start,
            span.end,
            scope.model,
            scope.version,
            scope.cohort_label,
            n_predictions,
            n_labelled,
            coverage,
            lag_percentile(lags, 50),
            lag_percentile(lags, 90),
            lag_percentile(lags, 99),
            **metrics,
            n_unscorable=n_labelled - int(metrics["n"]),
            base=base if isinstance(base, str) else int(base),
            provisional=bool(reasons),
            provisional_reason="; ".join(reasons) or None,
            label_delay_s=delay.total_seconds(),
            n_other_classes=int(excluded[g]),
            event_rate=(n_predictions + n_sequences) / max(span.length.total_seconds() / 60, 1e-9),
            log_loss_estimate=None if estimate is None else estimate.to_dict(),
            tokens=token_result,
        )

    def _reference_map(
        self, scope: Scope, start: datetime, classes: list[str] | None
    ) -> ReliabilityMap | None:
        """The reliability map of the labelled events of ``settings.estimate_reference``
        before ``start`` (same model, version and cohort); None when they carry
        another class list than the window's, or the range leaves the calendar."""
        if classes is None:
            return None
        try:
            span = Span(start - self.settings.estimate_reference, start)
        except OverflowError:  # a window starting in year 1
            return None
        table, _ = one_class_list(scores(self.store, Selection.of(scope, span)))
        try:
            if class_list(table, scope.model) not in (None, classes):
                return None
        except InvalidInputError:  # several versions with several lists
            return None
        m = merged(table)
        if int(m["n"][0]) == 0:
            return ReliabilityMap.empty()
        return _labelled_map(score_stats(m, 0, classes))

    def _label_delay(self, scope: Scope) -> timedelta:
        """The configured label delay, else the observed p90 lag of the last 7 days."""
        tenant, model = scope.tenant, scope.model
        configured = self.settings.policy(model).label_delay
        if configured is not None:
            return configured
        cached = self._lag_cache.get((tenant, model))
        if cached is not None and time.monotonic() - cached[0] < _LAG_CACHE_SECONDS:
            seconds = cached[1]
        else:
            assert scope.now is not None  # pinned by the caller
            with self.store.cursor() as cursor:
                rows = queries.label_lags(cursor, tenant, model, scope.now - timedelta(days=7))
            counts = lag_counts(
                {
                    "lag": (
                        np.array([b for b, _ in rows], dtype=np.int64),
                        np.array([0, len(rows)]),
                        np.array([c for _, c in rows], dtype=np.float64),
                    )
                },
                0,
            )
            seconds = lag_percentile(counts, 90)
            self._lag_cache[(tenant, model)] = (time.monotonic(), seconds)
        return timedelta(seconds=seconds or 0.0)


def _finite(document: dict[str, Any]) -> dict[str, Any]:
    """``document`` with every infinite number (a perplexity past the largest float)
    as None: JSON has no infinity."""

    def clean(value: Any) -> Any:
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, tuple | list):
            return [clean(v) for v in value]
        return value

    return {key: clean(value) for key, value in document.items()}


def _labelled_map(stats: ScoreStats) -> ReliabilityMap:
    """The reliability map of the labelled events of ``stats``."""
    return ReliabilityMap.from_fine_bins(stats.cal_count, stats.cal_score, stats.cal_hit, stats.n)
