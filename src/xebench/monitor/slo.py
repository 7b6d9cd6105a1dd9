"""SLO evaluation over the store: every minute judged from the buckets, budgets, burn rates.

:func:`evaluate_slo` answers, for one :class:`~xebench.analysis.slo.SLO` as of a
given time ``at`` (no hidden clock: a replay passes each minute in turn):

- the verdict of every minute of the SLO's history (its period, or the 3 days
  of the longest burn window, whichever is longer), each judged by the SLI over
  the trailing ``window`` that ends with it (:func:`minute_sli`);
- good, bad and excluded minutes and the budget remaining over the period;
- burn rates over 5m / 30m / 1h / 6h / 3d and each burn-rate alert's condition;
- the evidence an alert carries: the SLI over the current window with its CI,
  n, coverage, label lag, the versions live in the window, the top drifting
  features and the runbook.

The latest minute is the one that ends at ``at`` rounded up to a minute -- the
same window ``GET /v1/metrics?window=1h`` reads at that time. The minutes of
the last 3 days (plus one window) are read from minute buckets, so the minute
buckets' retention (``retention.minutes``, 7 days by default) must cover them;
older minutes of a long period are read from hourly buckets, where each row
counts at its hour's first minute (so a judged hour's minutes share its events).

Per-minute values come from :func:`xebench.stats.rolling.rolling_points` (the
score SLIs: ``ScoreStats.result``'s formulas over rolled sums) and, for
``drift_js``, from the feature histograms rolled the same way against the
model's drift reference (:mod:`xebench.monitor.drift`'s definitions).

Example:
    >>> from datetime import timedelta
    >>> from xebench.demo.stream import generate, load
    >>> from xebench.store import EventStore
    >>> store = EventStore(":memory:")
    >>> stream = generate(hours=3, rate_per_minute=20)
    >>> _ = load(store, stream); _ = store.update_buckets()
    >>> slo = SLO("fraud-ll", model="fraud", sli="log_loss", objective=5.0, min_samples=50,
    ...           period=timedelta(days=1))
    >>> status = evaluate_slo(Monitor(store), slo, stream.now)
    >>> status.verdict, status.bad_minutes, status.good_minutes > 0
    (1, 0, True)
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta  # noqa: F401  (UTC: the examples)
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

from ..analysis.slo import (
    BURN_WINDOWS,
    EXCLUDED,
    SLO,
    TOKEN_SLIS,
    BurnCondition,
    budget_remaining,
    burn_conditions,
    burn_rates,
    judge,
    minute_counts,
)
from ..errors import XebenchError
from ..metrics.tokens import bits_per_byte
from ..stats.rolling import rolling_points, rolling_sum
from .reads import Selection, class_list, one_class_list, scores, token_sums
from .scope import Scope, Span, ceil_to, iso
from .windows import Monitor

__all__ = [
    "MinuteSLI",
    "SLOStatus",
    "evaluate_slo",
    "evaluate_slos",
    "minute_sli",
    "slo_document",
]

log = logging.getLogger("xebench.monitor.slo")

_MINUTE = timedelta(minutes=1)
_HOUR = timedelta(hours=1)
#: The minutes read at minute resolution: the longest default burn window.
_FINE = timedelta(days=3)


@dataclass(frozen=True)
class MinuteSLI:
    """The SLI of each minute (``values``) and the samples behind it, oldest first; the
    last minute ends at ``end``.

    Example:
        >>> m = MinuteSLI(datetime(2026, 1, 1, 1, 0, tzinfo=UTC), np.array([0.2]), np.array([9]))
        >>> m.minute_end(0).isoformat()
        '2026-01-01T01:00:00+00:00'
    """

    end: datetime
    values: NDArray[np.float64]
    samples: NDArray[np.float64]
    #: Versions with predictions in the latest window (evidence).
    versions: list[str] = field(default_factory=list)

    def minute_end(self, i: int) -> datetime:
        """When minute ``i`` (0: the oldest) ends."""
        return self.end - (len(self.values) - 1 - i) * _MINUTE


@dataclass(frozen=True)
class SLOStatus:
    """One SLO as of ``at``: the latest verdict, the period's minutes, budget, burn rates,
    the burn-rate alert conditions and the evidence (see :func:`evaluate_slo`).

    ``error`` says why the SLI could not be computed (e.g. a model with several
    class lists in the range): every minute then counts as excluded.
    """

    slo: SLO
    at: datetime
    verdict: int
    sli_value: float | None
    n: int
    good_minutes: int
    bad_minutes: int
    excluded_minutes: int
    budget_remaining: float | None
    burn_rates: dict[str, float | None]
    conditions: list[BurnCondition]
    evidence: dict[str, Any]
    error: str | None = None

    @property
    def firing(self) -> list[BurnCondition]:
        """The burn-rate conditions that hold."""
        return [c for c in self.conditions if c.active]

    def to_dict(self) -> dict[str, Any]:
        """The JSON of one SLO in ``xebench alerts --json`` and ``GET /v1/slos``."""
        slo = self.slo
        return {
            "name": slo.name,
            "model": slo.model,
            "version": slo.version,
            "cohort": slo.cohort,
            "sli": slo.sli,
            "feature": slo.feature,
            "objective": slo.objective,
            "direction": slo.metric.direction,
            "window": slo.to_dict()["window"],
            "target": slo.target,
            "period": slo.to_dict()["period"],
            "min_samples": slo.min_samples,
            "at": iso(self.at),
            "verdict": {1: "good", 0: "bad"}.get(self.verdict, "excluded"),
            "sli_value": _finite(self.sli_value),
            "n": self.n,
            "budget_remaining": _finite(self.budget_remaining),
            "burn_rates": {k: _finite(v) for k, v in self.burn_rates.items()},
            "good_minutes": self.good_minutes,
            "bad_minutes": self.bad_minutes,
            "excluded_minutes": self.excluded_minutes,
            "conditions": [c.to_dict() for c in self.conditions],
            "runbook": slo.runbook,
            "evidence": self.evidence,
            "error": self.error,
        }


def _finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def _end_of(at: datetime) -> datetime:
    return ceil_to(at, _MINUTE)


def _score_rows(monitor: Monitor, slo: SLO, start: datetime, end: datetime) -> pa.Table:
    """Score bucket rows of the SLO's model, version and cohort in [start, end): hourly
    rows before the last 3 days and a window, minute rows after."""
    scope = Scope(slo.tenant, slo.model, slo.version, slo.cohort)
    split = max(start, ceil_to(end - _FINE - slo.window, _HOUR))
    parts = []
    if start < split:
        parts.append(scores(monitor.store, Selection.of(scope, Span(start, split)), hours=True))
    parts.append(scores(monitor.store, Selection.of(scope, Span(split, end)), hours=False))
    parts = [p for p in parts if p.num_rows]
    if not parts:
        return scores(monitor.store, Selection.of(scope, Span(split, end)), hours=False)
    return pa.concat_tables(parts, promote_options="permissive") if len(parts) > 1 else parts[0]


def minute_sli(monitor: Monitor, slo: SLO, at: datetime, minutes: int | None = None) -> MinuteSLI:
    """The SLI over each minute's trailing window for the ``minutes`` minutes (default:
    the SLO's history) ending at ``at`` rounded up to a minute.

    Raises:
        InvalidInputError: the model has several class lists in the range (an SLO
            on all versions of a model whose versions predict different classes;
            name a version).

    Example:
        >>> from xebench.store import EventStore
        >>> slo = SLO("s", model="m", sli="log_loss", objective=0.3)
        >>> m = minute_sli(Monitor(EventStore(":memory:")), slo, datetime(2026, 1, 1, tzinfo=UTC),
        ...                minutes=3)
        >>> m.values.tolist(), m.samples.tolist()
        ([nan, nan, nan], [0.0, 0.0, 0.0])
    """
    end = _end_of(at)
    count = minutes if minutes is not None else int(slo.history / _MINUTE)
    window = slo.window_minutes
    total = count + window
    start = end - total * _MINUTE
    if slo.sli == "drift_js":
        from .slo_drift import drift_minutes  # here: only drift SLOs need it

        return drift_minutes(monitor, slo, start, end, count)
    if slo.sli == "canary_delta":
        return _canary_minutes(monitor, slo, start, end, count)
    if slo.sli in TOKEN_SLIS:
        return _token_minutes(monitor, slo, start, end, count)
    table, _ = one_class_list(_score_rows(monitor, slo, start, end))
    classes = class_list(table, slo.model) or ["0", "1"]
    minute = _minute_of(table, start)
    points = rolling_points(table, minute, n_minutes=total, window=window, n_classes=len(classes))
    values, samples = _sli_values(slo, points, window)
    versions = _versions(table, minute, total - window)
    return MinuteSLI(end, values[1:], samples[1:], versions)


def _minute_of(table: pa.Table, start: datetime) -> NDArray[np.intp]:
    micros = pc.cast(table["bucket"], pa.int64()).to_numpy()
    return ((micros - int(start.timestamp() * 1e6)) // 60_000_000).astype(np.intp)


def _versions(table: pa.Table, minute: NDArray[np.intp], first: int) -> list[str]:
    recent = minute >= first
    if not recent.any():
        return []
    names = table["version"].to_numpy(zero_copy_only=False)[recent]
    counts = table["n_predictions"].to_numpy()[recent]
    return sorted({str(v) for v, c in zip(names, counts, strict=True) if c > 0})


def _sli_values(
    slo: SLO, points: dict[str, NDArray[Any]], window: int
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """The SLI and its samples per window, from :func:`rolling_points`."""
    if slo.sli == "label_coverage":
        return points["coverage"], points["n_predictions"].astype(np.float64)
    if slo.sli == "event_rate":
        # Every minute is judged (no events is the telemetry loss it watches for) once a
        # whole window has passed since the model's first prediction in the range.
        counts = points["n_predictions"]
        rate = (counts / float(window)).astype(np.float64)
        first = np.flatnonzero(counts > 0)
        judged = np.arange(counts.shape[0]) >= (first[0] + window - 1 if first.size else np.inf)
        return rate, np.where(judged, np.inf, 0.0)
    return points[slo.sli].astype(np.float64), points["n"].astype(np.float64)


def _token_minutes(
    monitor: Monitor, slo: SLO, start: datetime, end: datetime, count: int
) -> MinuteSLI:
    """``bits_per_byte`` / ``pooled_perplexity`` of the scored sequences over each
    trailing window (the kernel's definitions on the window's summed NLL, bytes and
    tokens); samples: the window's sequences."""
    window = slo.window_minutes
    total = count + window
    scope = Scope(slo.tenant, slo.model, slo.version, slo.cohort)
    split = max(start, ceil_to(end - _FINE - slo.window, _HOUR))
    per_minute = {name: np.zeros(total) for name in _TOKEN_PARTS}
    for begin, stop, hours in ((start, split, True), (split, end, False)):
        if begin >= stop:
            continue
        sums = token_sums(
            monitor.store, Selection.of(scope, Span(begin, stop)), hours=hours,
            step=_MINUTE, points=total,
        )  # fmt: skip
        if sums is not None:
            offset = int((begin - start) / _MINUTE)
            for name in _TOKEN_PARTS:
                per_minute[name][offset:] += sums[name][: total - offset]
    rolled = {name: rolling_sum(values, window) for name, values in per_minute.items()}
    values = np.full(rolled["n_sequences"].shape, np.nan)
    for j in np.flatnonzero(rolled["n_sequences"] > 0).tolist():
        nll = float(rolled["nll_sum"][j])
        if slo.sli == "pooled_perplexity":
            values[j] = math.exp(nll / float(rolled["n_tokens"][j]))
        elif rolled["n_with_bytes"][j] == rolled["n_sequences"][j] and rolled["n_bytes"][j] > 0:
            values[j] = bits_per_byte(nll, float(rolled["n_bytes"][j]))
    # The versions the model has sent (the token buckets keep no per-minute version list).
    versions = sorted({v for m, v in monitor.store.model_versions(slo.tenant) if m == slo.model})
    return MinuteSLI(end, values[1:], rolled["n_sequences"][1:].astype(np.float64), versions)


#: The token sums a token SLI needs.
_TOKEN_PARTS = ("n_sequences", "n_tokens", "nll_sum", "n_with_bytes", "n_bytes")


def _canary_minutes(
    monitor: Monitor, slo: SLO, start: datetime, end: datetime, count: int
) -> MinuteSLI:
    """``canary_delta``: the candidate version's log loss minus the baseline version's,
    each over the same trailing window; samples: the smaller of their scored events."""
    if slo.version is None or slo.baseline is None:  # the config refuses this already
        raise XebenchError("a canary_delta SLO needs version (candidate) and baseline")
    window = slo.window_minutes
    total = count + window
    values, samples, versions = [], [], []
    for version in (slo.version, slo.baseline):
        side = replace(slo, version=version, sli="log_loss")
        table, _ = one_class_list(_score_rows(monitor, side, start, end))
        classes = class_list(table, slo.model) or ["0", "1"]
        minute = _minute_of(table, start)
        points = rolling_points(table, minute, n_minutes=total, window=window,
                                n_classes=len(classes))  # fmt: skip
        values.append(points["log_loss"])
        samples.append(points["n"].astype(np.float64))
        versions += _versions(table, minute, total - window)
    delta = values[0] - values[1]
    return MinuteSLI(end, delta[1:], np.minimum(*samples)[1:], sorted(set(versions)))


def evaluate_slo(monitor: Monitor, slo: SLO, at: datetime) -> SLOStatus:
    """Judge the SLO's minutes as of ``at``: verdicts, budget, burn rates, alert conditions
    and evidence (see the module's docstring). Never raises for data reasons: an SLI
    that cannot be computed gives a status with ``error`` and no judged minute.

    Example:
        >>> from xebench.store import EventStore
        >>> slo = SLO("s", model="m", sli="brier", objective=0.2)
        >>> status = evaluate_slo(Monitor(EventStore(":memory:")), slo,
        ...                       datetime(2026, 1, 1, tzinfo=UTC))
        >>> status.verdict, status.budget_remaining, status.excluded_minutes
        (-1, None, 40320)
    """
    error = None
    try:
        minutes = minute_sli(monitor, slo, at)
    except XebenchError as exc:
        error = str(exc)
        count = int(slo.history / _MINUTE)
        nan = np.full(count, np.nan)
        minutes = MinuteSLI(_end_of(at), nan, np.zeros(count))
    verdicts = judge(minutes.values, minutes.samples, slo)
    period = verdicts[-slo.period_minutes :]
    counts = minute_counts(period)
    rates = burn_rates(verdicts, slo.target, BURN_WINDOWS)
    conditions = burn_conditions(verdicts, slo)
    latest = float(minutes.values[-1]) if len(minutes.values) else math.nan
    samples = float(minutes.samples[-1]) if len(minutes.samples) else 0.0
    evidence = _evidence(monitor, slo, at, minutes, rates, error)
    return SLOStatus(
        slo=slo,
        at=_end_of(at),
        verdict=int(verdicts[-1]) if len(verdicts) else EXCLUDED,
        sli_value=None if math.isnan(latest) else latest,
        n=int(samples) if math.isfinite(samples) else int(evidence.get("n_predictions") or 0),
        budget_remaining=budget_remaining(period, slo.target),
        burn_rates=rates,
        conditions=conditions,
        evidence=evidence,
        error=error,
        **counts,
    )


def evaluate_slos(monitor: Monitor, slos: Sequence[SLO], at: datetime) -> list[SLOStatus]:
    """:func:`evaluate_slo` for each SLO, in order.

    Example:
        >>> from xebench.store import EventStore
        >>> evaluate_slos(Monitor(EventStore(":memory:")), [], datetime(2026, 1, 1, tzinfo=UTC))
        []
    """
    return [evaluate_slo(monitor, slo, at) for slo in slos]


def _evidence(
    monitor: Monitor,
    slo: SLO,
    at: datetime,
    minutes: MinuteSLI,
    rates: dict[str, float | None],
    error: str | None,
) -> dict[str, Any]:
    """What an alert carries: the current window's SLI with CI, n, coverage, label lag,
    burn rates, live versions, the top drifting features and the runbook."""
    evidence: dict[str, Any] = {
        "sli": slo.sli,
        "sli_value": None,
        "sli_ci": None,
        "n": 0,
        "n_predictions": 0,
        "coverage": None,
        "label_lag_p50_s": None,
        "burn_rates": {k: _finite(v) for k, v in rates.items()},
        "versions": minutes.versions,
        "top_drift": [],
        "log_loss_estimate": None,
        "runbook": slo.runbook,
        "window": {"from": None, "to": None},
    }
    if len(minutes.values):
        evidence["sli_value"] = _finite(float(minutes.values[-1]))
    scope = Scope(slo.tenant, slo.model, slo.version, slo.cohort, window=slo.window, now=at)
    try:
        window = monitor.window(scope)
    except XebenchError as exc:
        evidence["error"] = error or str(exc)
        return evidence
    evidence.update(
        n=window.n,
        n_predictions=window.n_predictions,
        coverage=window.coverage,
        label_lag_p50_s=window.label_lag_p50_s,
        window={"from": iso(window.start), "to": iso(window.end)},
        # What the window's loss is expected to be once its labels are in: context for
        # the on-call while labels lag, never what the alert was decided on.
        log_loss_estimate=window.log_loss_estimate,
    )
    interval = {"log_loss": window.log_loss_ci, "brier": window.brier_ci}.get(slo.sli)
    evidence["sli_ci"] = list(interval) if interval is not None else None
    try:
        drift = monitor.drift(scope).to_dict()
        ranked = sorted(
            (f for f in drift.get("features", []) if f.get("js") is not None),
            key=lambda f: -f["js"],
        )
        evidence["top_drift"] = [
            {"feature": f["feature"], "js": f["js"], "drifted": f.get("drifted")}
            for f in ranked[:3]
        ]
    except XebenchError as exc:  # no reference yet, too few samples: no drift evidence
        log.debug("no drift evidence for %s: %s", slo.name, exc)
    return evidence


def slo_document(
    statuses: Sequence[SLOStatus], at: datetime, suppressed: Any = None
) -> dict[str, Any]:
    """The JSON of ``xebench alerts --json`` (and ``GET /v1/slos``): ``{"at", "slos",
    "alerts"}``; an alert per SLO and severity whose burn-rate condition holds at ``at``,
    ``suppressed`` (a callable of (slo, at)) when a maintenance window covers it.

    Example:
        >>> slo_document([], datetime(2026, 1, 1, tzinfo=UTC))
        {'at': '2026-01-01T00:00:00Z', 'slos': [], 'alerts': []}
    """
    alerts = []
    for status in statuses:
        by_severity: dict[str, list[BurnCondition]] = {}
        for condition in status.firing:
            by_severity.setdefault(condition.alert.severity, []).append(condition)
        for severity, held in by_severity.items():
            slo = status.slo
            quiet = bool(suppressed is not None and suppressed(slo, at))
            alerts.append(
                {
                    "slo": slo.name,
                    "severity": severity,
                    "state": "suppressed" if quiet else "firing",
                    "since": None,
                    "labels": {
                        "alertname": "XebenchSLOBurnRate",
                        "slo": slo.name,
                        "model": slo.model,
                        "version": slo.version or "",
                        "cohort": slo.cohort or "",
                        "severity": severity,
                        "tenant": slo.tenant,
                        **slo.labels,
                    },
                    "evidence": {
                        **status.evidence,
                        "conditions": [c.to_dict() for c in held],
                    },
                }
            )
    return {"at": iso(at), "slos": [s.to_dict() for s in statuses], "alerts": alerts}
