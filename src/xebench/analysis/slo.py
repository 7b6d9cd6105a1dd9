"""SLOs on model quality: minutes judged good or bad, error budgets, burn rates, and the
multi-window multi-burn-rate alert conditions of the Google SRE workbook.

An SLO names a model (optionally a version and a cohort), an SLI (log loss, ECE,
Brier, skill, label coverage, drift, a canary's delta or the event rate), an
objective threshold whose direction comes from the metric registry, a target and
a period. Time is cut into minutes; **a minute is good when the SLI over its
trailing evaluation window (``window``, e.g. 1h, ending with the minute) meets
the objective with at least ``min_samples`` events behind it, bad when it misses
it, and excluded when there are fewer samples** (labels not arrived yet, no
traffic): an excluded minute is neither good nor bad, and is counted apart.

The error ratio of a span is ``bad / (good + bad)`` over its judged minutes, the
error budget ``1 - target``, the burn rate ``error ratio / budget`` (1: the
budget lasts exactly the period) and the budget remaining ``1 - error ratio /
budget`` over the period (1: untouched, 0: spent, below 0: overspent). An alert
condition holds when both its long and its short window burn faster than its
factor (the short one makes it reset quickly after recovery).

Everything here is pure: arrays of per-minute SLI values and sample counts in,
decisions out, with the evaluation time passed in (no hidden clock), so a test
can replay a timeline minute by minute. :mod:`xebench.monitor.slo` computes the
per-minute SLI values from the store's buckets.

Example:
    >>> import numpy as np
    >>> slo = SLO("fraud-ll", model="fraud", sli="log_loss", objective=0.3, min_samples=10)
    >>> verdicts = judge(np.array([0.2, 0.4, 0.25, np.nan]), np.array([50, 50, 3, 0]), slo)
    >>> verdicts.tolist()        # good, bad, excluded (3 < 10 samples), excluded (no data)
    [1, 0, -1, -1]
    >>> round(burn_rate(verdicts, target=0.99), 9)  # 1 bad of 2 judged minutes, budget 1%
    50.0
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from ..metrics.registry import Metric, metric

__all__ = [
    "BAD",
    "BURN_WINDOWS",
    "DEFAULT_BURN_ALERTS",
    "EXCLUDED",
    "GOOD",
    "SLIS",
    "SLO",
    "BurnAlert",
    "BurnCondition",
    "budget_remaining",
    "burn_conditions",
    "burn_rate",
    "burn_rates",
    "duration_label",
    "error_ratio",
    "judge",
    "label_span",
    "minute_counts",
]

#: Verdicts of a minute.
GOOD, BAD, EXCLUDED = 1, 0, -1

#: SLI name -> the registry metric that gives its direction and unit.
SLIS: Mapping[str, str] = {
    "log_loss": "log_loss",
    "ece": "ece",
    "brier": "brier",
    "skill": "skill",
    "label_coverage": "label_coverage",
    "drift_js": "js",
    "canary_delta": "delta",
    "event_rate": "event_rate",
    # A language model's scored sequences (POST /v1/lm/tokens).
    "bits_per_byte": "bits_per_byte",
    "pooled_perplexity": "pooled_perplexity",
}
#: The SLIs computed from the scored sequences' token statistics.
TOKEN_SLIS = frozenset({"bits_per_byte", "pooled_perplexity"})

Severity = Literal["page", "ticket"]


@dataclass(frozen=True)
class BurnAlert:
    """One multi-window burn-rate alert: fires while both windows burn faster than ``factor``.

    Example:
        >>> BurnAlert("page", timedelta(hours=1), timedelta(minutes=5), 14.4).name
        'page-1h-5m'
    """

    severity: Severity
    long: timedelta
    short: timedelta
    factor: float

    @property
    def name(self) -> str:
        """``severity-long-short``, e.g. ``page-1h-5m``: the alert's stable identity."""
        return f"{self.severity}-{duration_label(self.long)}-{duration_label(self.short)}"


#: The Google SRE workbook's defaults (chapter "Alerting on SLOs", 99.9% over 30 days):
#: page at 14.4x over 1h and 5m (2% of the budget in an hour) or 6x over 6h and 30m
#: (5% in six hours); ticket at 1x over 3d and 6h (10% in three days).
DEFAULT_BURN_ALERTS: tuple[BurnAlert, ...] = (
    BurnAlert("page", timedelta(hours=1), timedelta(minutes=5), 14.4),
    BurnAlert("page", timedelta(hours=6), timedelta(minutes=30), 6.0),
    BurnAlert("ticket", timedelta(days=3), timedelta(hours=6), 1.0),
)

#: The windows whose burn rates every SLO reports (``burn_rates`` keys).
BURN_WINDOWS: tuple[str, ...] = ("5m", "30m", "1h", "6h", "3d")


def duration_label(span: timedelta) -> str:
    """The shortest of ``Nd``, ``Nh``, ``Nm``, ``Ns`` that spells ``span`` exactly.

    Example:
        >>> duration_label(timedelta(days=3)), duration_label(timedelta(minutes=90))
        ('3d', '90m')
    """
    seconds = int(span.total_seconds())
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _minutes(span: timedelta) -> int:
    return max(1, int(span.total_seconds() // 60))


@dataclass(frozen=True)
class SLO:
    """One service level objective on a model's predictions.

    Args:
        name: unique among the SLOs of the service (the alert's identity).
        model: the model; ``version`` one of its versions (None: all), ``cohort``
            a ``key:value`` cohort (None: the whole model).
        sli: one of :data:`SLIS`; ``drift_js`` needs ``feature`` (a feature name or
            ``score``), ``canary_delta`` needs ``baseline`` (the baseline version;
            ``version`` is then the candidate).
        objective: the SLI's threshold: a minute meets it when the SLI is at or
            better than it (the metric registry says which way is better).
        window: the trailing window over which each minute's SLI is computed.
        target: share of judged minutes that must be good over ``period``.
        min_samples: fewer labelled events (events, for ``event_rate``; predictions,
            for ``label_coverage``) behind a minute's window: the minute is excluded.
        runbook: a URL the alerts link to.
        burn_alerts: the multi-window burn-rate alerts (default: the SRE workbook's).
        labels: extra labels on its alerts (e.g. ``team``), for routing.
        tenant: whose events it judges.

    Example:
        >>> slo = SLO("cov", model="fraud", sli="label_coverage", objective=0.8)
        >>> slo.metric.direction, slo.meets(0.9), slo.meets(0.5)
        ('higher', True, False)
    """

    name: str
    model: str
    sli: str
    objective: float
    version: str | None = None
    cohort: str | None = None
    feature: str | None = None
    baseline: str | None = None
    window: timedelta = timedelta(hours=1)
    target: float = 0.99
    period: timedelta = timedelta(days=28)
    min_samples: int = 200
    runbook: str | None = None
    burn_alerts: tuple[BurnAlert, ...] = DEFAULT_BURN_ALERTS
    labels: Mapping[str, str] = field(default_factory=dict)
    tenant: str = "default"

    @property
    def metric(self) -> Metric:
        """The registry entry of the SLI (direction, unit, range)."""
        return metric(SLIS[self.sli])

    @property
    def budget(self) -> float:
        """The error budget: the share of judged minutes allowed to be bad."""
        return 1.0 - self.target

    @property
    def window_minutes(self) -> int:
        return _minutes(self.window)

    @property
    def period_minutes(self) -> int:
        return _minutes(self.period)

    @property
    def history(self) -> timedelta:
        """How far back the minutes it needs reach: the period or the longest alert
        window, whichever is longer."""
        longest = max((a.long for a in self.burn_alerts), default=timedelta(0))
        return max(self.period, longest, timedelta(days=3))

    def meets(self, value: float) -> bool:
        """Whether an SLI ``value`` meets the objective (equal meets it)."""
        return not self.metric.worse(value, self.objective)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (durations as ``1h`` / ``28d`` labels)."""
        return {
            "name": self.name,
            "tenant": self.tenant,
            "model": self.model,
            "version": self.version,
            "cohort": self.cohort,
            "sli": self.sli,
            "feature": self.feature,
            "baseline": self.baseline,
            "objective": self.objective,
            "direction": self.metric.direction,
            "window": duration_label(self.window),
            "target": self.target,
            "period": duration_label(self.period),
            "min_samples": self.min_samples,
            "runbook": self.runbook,
            "labels": dict(self.labels),
            "burn_alerts": [
                {
                    "name": a.name,
                    "severity": a.severity,
                    "long": duration_label(a.long),
                    "short": duration_label(a.short),
                    "factor": a.factor,
                }
                for a in self.burn_alerts
            ],
        }


def judge(
    values: NDArray[np.float64], samples: NDArray[np.int64] | NDArray[np.float64], slo: SLO
) -> NDArray[np.int8]:
    """The verdict of each minute: :data:`GOOD`, :data:`BAD` or :data:`EXCLUDED`.

    ``values[i]`` is the SLI over minute ``i``'s trailing window and ``samples[i]``
    the events behind it; a minute with fewer than ``slo.min_samples`` samples, or
    no value (NaN), is excluded.

    Example:
        >>> slo = SLO("s", model="m", sli="skill", objective=0.1, min_samples=1)
        >>> judge(np.array([0.2, 0.05]), np.array([5, 5]), slo).tolist()
        [1, 0]
    """
    values = np.asarray(values, dtype=np.float64)
    samples = np.asarray(samples, dtype=np.float64)
    judged = (samples >= slo.min_samples) & ~np.isnan(values)
    good = values <= slo.objective if slo.metric.lower_is_better else values >= slo.objective
    verdicts = np.where(good, GOOD, BAD).astype(np.int8)
    verdicts[~judged] = EXCLUDED
    return verdicts


def minute_counts(verdicts: NDArray[np.int8]) -> dict[str, int]:
    """Good, bad and excluded minutes among ``verdicts``.

    Example:
        >>> minute_counts(np.array([1, 1, 0, -1], dtype=np.int8))
        {'good_minutes': 2, 'bad_minutes': 1, 'excluded_minutes': 1}
    """
    return {
        "good_minutes": int(np.count_nonzero(verdicts == GOOD)),
        "bad_minutes": int(np.count_nonzero(verdicts == BAD)),
        "excluded_minutes": int(np.count_nonzero(verdicts == EXCLUDED)),
    }


def error_ratio(verdicts: NDArray[np.int8]) -> float | None:
    """``bad / (good + bad)``; None when no minute is judged.

    Example:
        >>> error_ratio(np.array([1, 0, 0, -1], dtype=np.int8))
        0.6666666666666666
    """
    counts = minute_counts(verdicts)
    judged = counts["good_minutes"] + counts["bad_minutes"]
    return counts["bad_minutes"] / judged if judged else None


def burn_rate(verdicts: NDArray[np.int8], target: float) -> float | None:
    """How fast ``verdicts`` spend the error budget: error ratio / (1 - target).

    Example:
        >>> round(burn_rate(np.array([1] * 99 + [0], dtype=np.int8), target=0.99), 9)
        1.0
    """
    ratio = error_ratio(verdicts)
    return None if ratio is None else ratio / (1.0 - target)


def budget_remaining(verdicts: NDArray[np.int8], target: float) -> float | None:
    """``1 - error ratio / (1 - target)`` over the period's verdicts (None: none judged).

    Example:
        >>> round(budget_remaining(np.array([1] * 199 + [0], dtype=np.int8), target=0.99), 9)
        0.5
    """
    rate = burn_rate(verdicts, target)
    return None if rate is None else 1.0 - rate


def burn_rates(
    verdicts: NDArray[np.int8], target: float, windows: tuple[str, ...] = BURN_WINDOWS
) -> dict[str, float | None]:
    """The burn rate over each trailing window (``5m`` ... ``3d``) of ``verdicts``,
    whose last element is the latest minute.

    Example:
        >>> rates = burn_rates(np.array([1] * 55 + [0] * 5, dtype=np.int8), 0.99, ("5m", "1h"))
        >>> {k: round(v, 2) for k, v in rates.items()}
        {'5m': 100.0, '1h': 8.33}
    """
    return {w: burn_rate(_tail(verdicts, label_span(w)), target) for w in windows}


def label_span(label: str) -> timedelta:
    """The span a :func:`duration_label` spells (``5m``, ``6h``, ``3d``, ``90s``).

    Example:
        >>> label_span("30m"), label_span("3d") == timedelta(days=3)
        (datetime.timedelta(seconds=1800), True)
    """
    units = {"s": 1, "m": 60, "h": 3_600, "d": 86_400}
    number, unit = label[:-1], label[-1:]
    if unit not in units or not number.isdigit():
        raise ValueError(f"not a duration label: {label!r} (e.g. 5m, 6h, 3d)")
    return timedelta(seconds=int(number) * units[unit])


@dataclass(frozen=True)
class BurnCondition:
    """Whether one :class:`BurnAlert` holds at the evaluation time, and why.

    Example:
        >>> alert = DEFAULT_BURN_ALERTS[0]
        >>> BurnCondition(alert, True, 20.0, 30.0).to_dict()["active"]
        True
    """

    alert: BurnAlert
    active: bool
    long_rate: float | None
    short_rate: float | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.alert.name,
            "severity": self.alert.severity,
            "factor": self.alert.factor,
            "long": duration_label(self.alert.long),
            "short": duration_label(self.alert.short),
            "long_burn_rate": _finite(self.long_rate),
            "short_burn_rate": _finite(self.short_rate),
            "active": self.active,
        }


def burn_conditions(verdicts: NDArray[np.int8], slo: SLO) -> list[BurnCondition]:
    """Each of ``slo.burn_alerts`` evaluated on ``verdicts`` (the last one: the latest
    minute). A window without a judged minute burns nothing (None): it never fires.

    Example:
        >>> slo = SLO("s", model="m", sli="log_loss", objective=0.3)
        >>> bad_hour = np.array([1] * 600 + [0] * 60, dtype=np.int8)
        >>> [(c.alert.name, c.active) for c in burn_conditions(bad_hour, slo)]
        [('page-1h-5m', True), ('page-6h-30m', True), ('ticket-3d-6h', True)]
    """
    out = []
    for alert in slo.burn_alerts:
        long_rate = burn_rate(_tail(verdicts, alert.long), slo.target)
        short_rate = burn_rate(_tail(verdicts, alert.short), slo.target)
        active = (
            long_rate is not None
            and short_rate is not None
            and long_rate > alert.factor
            and short_rate > alert.factor
        )
        out.append(BurnCondition(alert, active, long_rate, short_rate))
    return out


def _tail(verdicts: NDArray[np.int8], span: timedelta) -> NDArray[np.int8]:
    return verdicts[-_minutes(span) :]


def _finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)
