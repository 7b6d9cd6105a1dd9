"""The alert state machine: an SLO's burn-rate conditions, minute by minute, become alerts
with states, and the notifications each evaluation owes. Pure: the time is passed in.

One alert per (tenant, SLO, severity) -- the grouping key; the SLO fixes the
model, version and cohort -- so the two page conditions of the SRE workbook
(1h/5m and 6h/30m) are one page alert, whose evidence lists the conditions
that hold. Its states:

- ``inactive``: no condition of its severity holds (or it was pending and stopped);
- ``pending``: one holds, for less than ``pending_for`` so far (Prometheus's ``for``);
- ``firing``: one has held for ``pending_for`` (at once when it is 0);
- ``suppressed``: one holds while a maintenance window covers the SLO: shown, never
  notified; when the window ends and it still holds it fires (pending first if it
  has not held for ``pending_for`` yet);
- ``resolved``: it fired (or was suppressed) and no condition holds any more.

Notifications (:class:`Transition.notices`): ``firing`` on entering firing,
``repeat`` every ``repeat_interval`` while firing, ``resolved`` when an alert
whose firing was notified stops holding -- also inside a maintenance window,
so that no receiver is left believing it still fires -- and, for targets that
keep state (Alertmanager, ``refresh_interval``), ``refresh`` in between.

``since`` is when the alert entered its state; ``fired_at`` when the episode
first fired (Alertmanager's ``startsAt``); ``fingerprint`` hashes the labels
exactly as Alertmanager fingerprints a label set (FNV-1a 64), so both name an
alert the same way.

Example:
    >>> from datetime import UTC, datetime, timedelta
    >>> from xebench.analysis.slo import SLO, DEFAULT_BURN_ALERTS, BurnCondition
    >>> slo = SLO("fraud-ll", model="fraud", sli="log_loss", objective=0.3)
    >>> burning = [BurnCondition(DEFAULT_BURN_ALERTS[0], True, 20.0, 30.0)]
    >>> policy = Policy(pending_for=timedelta(minutes=1))
    >>> t0 = datetime(2026, 1, 1, tzinfo=UTC)
    >>> alert, states = None, []
    >>> for minute, conditions in enumerate([burning, burning, burning, []]):
    ...     at = t0 + timedelta(minutes=minute)
    ...     page = observations(slo, at, conditions, {"sli_value": 0.5})[0]
    ...     change = step(alert, page, at, policy)
    ...     alert = change.after
    ...     states.append((alert.state, change.notices))
    >>> states
    [('pending', ()), ('firing', ('firing',)), ('firing', ()), ('resolved', ('resolved',))]
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

__all__ = [
    "ACTIVE",
    "ALERTNAME",
    "STATES",
    "Alert",
    "Observation",
    "Policy",
    "Transition",
    "alert_key",
    "alert_labels",
    "fingerprint",
    "iso",
    "observations",
    "step",
    "stopped",
    "to_json",
]

#: The ``alertname`` label of every xebench SLO alert.
ALERTNAME = "XebenchSLOBurnRate"
STATES = ("inactive", "pending", "firing", "suppressed", "resolved")
#: The states in which a condition holds.
ACTIVE = frozenset({"pending", "firing", "suppressed"})
_SEVERITY_ORDER = {"page": 0, "ticket": 1}


@dataclass(frozen=True)
class Policy:
    """When alerts fire and are notified again.

    Args:
        pending_for: how long a condition must hold before the alert fires.
        repeat_interval: a firing alert is notified again this often.
        refresh_interval: targets that keep alert state (Alertmanager) get the
            firing alert again this often (None: no such target).

    Example:
        >>> Policy().repeat_interval
        datetime.timedelta(seconds=14400)
    """

    pending_for: timedelta = timedelta(0)
    repeat_interval: timedelta = timedelta(hours=4)
    refresh_interval: timedelta | None = None


@dataclass(frozen=True)
class Observation:
    """One alert's inputs at one evaluation: whether a condition of its severity holds,
    whether a maintenance window covers it, and what it would say.

    Example:
        >>> o = Observation("t", "s", "page", "m", True, False, {"alertname": "A"}, {}, {})
        >>> o.key
        't/s/page'
    """

    tenant: str
    slo: str
    severity: str
    model: str
    holds: bool
    suppressed: bool
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    evidence: Mapping[str, Any]

    @property
    def key(self) -> str:
        return alert_key(self.tenant, self.slo, self.severity)


@dataclass(frozen=True)
class Alert:
    """One alert's state after an evaluation (a row of the ``alerts`` table).

    Example:
        >>> at = datetime(2026, 1, 1, tzinfo=UTC)
        >>> a = Alert("t", "s", "page", "firing", at, at, labels={"alertname": "A"})
        >>> a.key, a.to_dict()["since"], a.fingerprint
        ('t/s/page', '2026-01-01T00:00:00Z', 'd2c6efc389df0927')
    """

    tenant: str
    slo: str
    severity: str
    state: str
    since: datetime
    evaluated_at: datetime
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    evidence: Mapping[str, Any] = field(default_factory=dict)
    #: When the condition started holding without a break (None: it does not hold).
    holding_since: datetime | None = None
    #: When this episode first fired (Alertmanager's startsAt).
    fired_at: datetime | None = None
    resolved_at: datetime | None = None
    #: When the last firing / repeat / resolved notification was enqueued.
    last_notified: datetime | None = None
    #: When a stateful target (Alertmanager) was last given the firing alert.
    last_refreshed: datetime | None = None
    #: Receivers were told it fires and not yet that it resolved (a resolve is owed).
    notified: bool = False

    @property
    def key(self) -> str:
        return alert_key(self.tenant, self.slo, self.severity)

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.labels)

    def to_dict(self) -> dict[str, Any]:
        """The JSON of one alert (``GET /v1/alerts``, ``xebench alerts --json``)."""
        return {
            "key": self.key,
            "tenant": self.tenant,
            "slo": self.slo,
            "severity": self.severity,
            "state": self.state,
            "since": iso(self.since),
            "fired_at": iso(self.fired_at),
            "resolved_at": iso(self.resolved_at),
            "last_notified": iso(self.last_notified),
            "evaluated_at": iso(self.evaluated_at),
            "fingerprint": self.fingerprint,
            "labels": dict(self.labels),
            "annotations": dict(self.annotations),
            "evidence": dict(self.evidence),
        }


@dataclass(frozen=True)
class Transition:
    """What one evaluation did to one alert: its state before (None: new) and after, and
    the notifications it owes (``firing``, ``repeat``, ``resolved``, ``refresh``).

    Example:
        >>> at = datetime(2026, 1, 1, tzinfo=UTC)
        >>> t = Transition(None, Alert("t", "s", "page", "firing", at, at), ("firing",))
        >>> t.changed, t.from_state, t.to_dict()["to"]
        (True, 'inactive', 'firing')
    """

    before: Alert | None
    after: Alert
    notices: tuple[str, ...] = ()

    @property
    def from_state(self) -> str:
        return self.before.state if self.before is not None else "inactive"

    @property
    def changed(self) -> bool:
        """Whether the state changed (a row of ``alert_history``)."""
        return self.from_state != self.after.state

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.after.key,
            "slo": self.after.slo,
            "severity": self.after.severity,
            "from": self.from_state,
            "to": self.after.state,
            "at": iso(self.after.evaluated_at),
            "notices": list(self.notices),
            "fingerprint": self.after.fingerprint,
        }


def alert_key(tenant: str, slo: str, severity: str) -> str:
    """The grouping key ``tenant/slo/severity`` (a tenant has no ``/``; the severity is last).

    Example:
        >>> alert_key("acme", "fraud-ll", "page")
        'acme/fraud-ll/page'
    """
    return f"{tenant}/{slo}/{severity}"


def alert_labels(slo: Any, severity: str) -> dict[str, str]:
    """The labels of ``slo``'s ``severity`` alert: ``alertname``, ``slo``, ``model``,
    ``version`` and ``cohort`` (when the SLO names them: an empty label is no label, in
    Prometheus and Alertmanager), ``severity``, ``tenant``, then the SLO's own labels
    (which cannot replace these).

    Example:
        >>> from xebench.analysis.slo import SLO
        >>> alert_labels(SLO("ll", model="fraud", sli="log_loss", objective=0.3,
        ...                  cohort="region:eu", labels={"team": "risk"}), "page")
        {'team': 'risk', 'alertname': 'XebenchSLOBurnRate', 'slo': 'll', 'model': 'fraud', \
'cohort': 'region:eu', 'severity': 'page', 'tenant': 'default'}
    """
    own = {
        "alertname": ALERTNAME,
        "slo": slo.name,
        "model": slo.model,
        "version": slo.version or "",
        "cohort": slo.cohort or "",
        "severity": severity,
        "tenant": slo.tenant,
    }
    labels = {str(k): str(v) for k, v in dict(slo.labels).items() if k not in own}
    labels.update(own)
    return {k: v for k, v in labels.items() if v != ""}


def fingerprint(labels: Mapping[str, str]) -> str:
    """Alertmanager's fingerprint of a label set: FNV-1a 64 over the sorted names and
    values, each followed by the byte 0xff; 16 hex digits.

    Example:
        >>> fingerprint({"alertname": "X", "slo": "s"})   # what Alertmanager reports too
        'f73ad85309032c39'
    """
    value = 0xCBF29CE484222325
    for name in sorted(labels):
        for part in (name.encode(), b"\xff", str(labels[name]).encode(), b"\xff"):
            for byte in part:
                value = ((value ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{value:016x}"


def to_json(value: Any) -> str:
    """Compact JSON with sorted keys; NaN and infinities become null, other objects text.

    Example:
        >>> to_json({"b": float("nan"), "a": [1.5, datetime(2026, 1, 1, tzinfo=UTC)]})
        '{"a":[1.5,"2026-01-01T00:00:00Z"],"b":null}'
    """
    return json.dumps(_plain(value), sort_keys=True, separators=(",", ":"), allow_nan=False)


def _plain(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, bool | int | str):
        return value
    if hasattr(value, "item"):  # numpy scalars
        return _plain(value.item())
    return str(value)


def iso(moment: datetime | None) -> str | None:
    """RFC 3339 in UTC with ``Z``, as every xebench answer writes times; None stays None.

    Example:
        >>> iso(datetime(2026, 1, 1, tzinfo=UTC)), iso(None)
        ('2026-01-01T00:00:00Z', None)
    """
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _rate(value: Any) -> str:
    return "n/a" if value is None else f"{value:.3g}x"


def _annotations(
    slo: Any, severity: str, held: Sequence[Any], evidence: Mapping[str, Any]
) -> dict[str, str]:
    """summary, description, runbook_url and the evidence (JSON text)."""
    where = slo.model + (f":{slo.version}" if slo.version else "")
    where += f" [{slo.cohort}]" if slo.cohort else ""
    value = evidence.get("sli_value")
    shown = "n/a" if value is None else f"{value:.4g}"
    direction = "<=" if slo.metric.direction == "lower" else ">="
    burns = "; ".join(
        f"{c.alert.name}: {_rate(c.long_rate)} over {c.to_dict()['long']}, "
        f"{_rate(c.short_rate)} over {c.to_dict()['short']} (threshold {c.alert.factor:g}x)"
        for c in held
    )
    return {
        "summary": f"SLO {slo.name} ({slo.sli} of {where}) burns its error budget ({severity})",
        "description": (
            f"{slo.sli} is {shown} (objective {direction} {slo.objective:g}, "
            f"n={evidence.get('n', 'n/a')}); target {slo.target:g}. "
            + (f"Burning: {burns}." if burns else "No burn-rate condition holds.")
        ),
        "runbook_url": slo.runbook or "",
        "evidence": to_json(evidence),
    }


def observations(
    slo: Any,
    at: datetime,
    conditions: Sequence[Any],
    evidence: Mapping[str, Any],
    *,
    suppressed: bool = False,
) -> list[Observation]:
    """One :class:`Observation` per severity of ``slo``'s burn alerts (page first):
    whether any of ``conditions`` (:class:`~xebench.analysis.slo.BurnCondition`) of that
    severity holds, with the evidence listing those that do.

    Example:
        >>> from xebench.analysis.slo import SLO, DEFAULT_BURN_ALERTS, BurnCondition
        >>> slo = SLO("ll", model="fraud", sli="log_loss", objective=0.3)
        >>> both = [BurnCondition(a, a.severity == "page", 20.0, 30.0) for a in DEFAULT_BURN_ALERTS]
        >>> [(o.severity, o.holds, len(o.evidence["conditions"]))
        ...  for o in observations(slo, datetime(2026, 1, 1, tzinfo=UTC), both, {})]
        [('page', True, 2), ('ticket', False, 0)]
    """
    severities = {a.severity for a in slo.burn_alerts} | {c.alert.severity for c in conditions}
    out = []
    for severity in sorted(severities, key=lambda s: (_SEVERITY_ORDER.get(s, 9), s)):
        held = [c for c in conditions if c.alert.severity == severity and c.active]
        proof = {**_plain(dict(evidence)), "conditions": [_plain(c.to_dict()) for c in held]}
        out.append(
            Observation(
                tenant=slo.tenant,
                slo=slo.name,
                severity=severity,
                model=slo.model,
                holds=bool(held),
                suppressed=suppressed,
                labels=alert_labels(slo, severity),
                annotations=_annotations(slo, severity, held, proof),
                evidence=proof,
            )
        )
    return out


def stopped(alert: Alert, *, suppressed: bool = False) -> Observation:
    """The observation of an alert whose SLO is no longer evaluated (removed from the
    configuration): nothing holds.

    Example:
        >>> at = datetime(2026, 1, 1, tzinfo=UTC)
        >>> stopped(Alert("t", "s", "page", "firing", at, at)).holds
        False
    """
    return Observation(
        alert.tenant,
        alert.slo,
        alert.severity,
        str(alert.labels.get("model", "")),
        False,
        suppressed,
        alert.labels,
        alert.annotations,
        alert.evidence,
    )


def step(
    before: Alert | None, observed: Observation, at: datetime, policy: Policy
) -> Transition | None:
    """The alert after ``observed`` at ``at``, and the notifications it owes; None when
    nothing is to be written (it was and stays quiet, or ``at`` is not after the last
    evaluation of the alert: a replayed minute changes nothing).

    Example:
        >>> t0 = datetime(2026, 1, 1, tzinfo=UTC)
        >>> o = Observation("t", "s", "page", "m", True, True, {"alertname": "A"}, {}, {})
        >>> step(None, o, t0, Policy()).after.state         # held under maintenance
        'suppressed'
        >>> from dataclasses import replace
        >>> later = replace(o, suppressed=False)            # the window ended, it still holds
        >>> step(step(None, o, t0, Policy()).after, later, t0 + timedelta(minutes=1),
        ...      Policy()).notices
        ('firing',)
    """
    if before is not None and at <= before.evaluated_at:
        return None
    previous = before.state if before is not None else "inactive"
    if not observed.holds and previous not in ACTIVE:
        return None  # quiet, and was: nothing to write
    holding_since = None
    if observed.holds:
        kept = before is not None and previous in ACTIVE and before.holding_since is not None
        holding_since = before.holding_since if kept else at  # type: ignore[union-attr]
    if observed.holds:
        if observed.suppressed:
            state = "suppressed"
        elif previous == "firing" or at - holding_since >= policy.pending_for:  # type: ignore[operator]
            state = "firing"
        else:
            state = "pending"
    else:
        state = "inactive" if previous == "pending" else "resolved"

    notices: list[str] = []
    last_notified = before.last_notified if before else None
    last_refreshed = before.last_refreshed if before else None
    notified = before.notified if before else False
    same_episode = before is not None and previous in ACTIVE
    fired_at = before.fired_at if same_episode else None  # type: ignore[union-attr]
    if state == "firing" and previous != "firing":
        notices.append("firing")
        fired_at = fired_at or at
        last_notified = last_refreshed = at
        notified = True
    elif state == "firing":
        if last_notified is None or at - last_notified >= policy.repeat_interval:
            notices.append("repeat")
            last_notified = last_refreshed = at
        elif policy.refresh_interval is not None and (
            last_refreshed is None or at - last_refreshed >= policy.refresh_interval
        ):
            notices.append("refresh")
            last_refreshed = at
    elif state == "resolved" and notified:
        notices.append("resolved")
        last_notified = at
        notified = False
    if state in {"pending", "inactive"}:
        fired_at = None

    content = observed if observed.holds or before is None else before
    after = Alert(
        tenant=observed.tenant,
        slo=observed.slo,
        severity=observed.severity,
        state=state,
        since=at if state != previous or before is None else before.since,
        evaluated_at=at,
        labels=dict(content.labels),
        annotations=dict(content.annotations),
        evidence=dict(content.evidence),
        holding_since=holding_since,
        fired_at=fired_at,
        resolved_at=at if state == "resolved" else None,
        last_notified=last_notified,
        last_refreshed=last_refreshed,
        notified=notified,
    )
    return Transition(before, after, tuple(notices))
