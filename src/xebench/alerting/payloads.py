"""The bodies notifications carry: Alertmanager's webhook JSON (``version: "4"``) for
webhooks, and the API v2 alert list (``POST /api/v2/alerts``) for an Alertmanager.

A webhook body is one group holding one alert (the group is the alert: its key is
the alert's tenant, SLO and severity), exactly the fields Alertmanager's own
webhook notifier sends, so any receiver written for Alertmanager (PagerDuty and
Opsgenie bridges, chat relays) takes it as is. Times are RFC 3339 in UTC; an
alert that has not ended has Go's zero time ``0001-01-01T00:00:00Z`` as
``endsAt``, as Alertmanager writes it.

Example:
    >>> from datetime import UTC, datetime
    >>> from xebench.alerting.lifecycle import Alert
    >>> at = datetime(2026, 1, 1, tzinfo=UTC)
    >>> alert = Alert("t", "ll", "page", "firing", at, at, fired_at=at,
    ...               labels={"alertname": "XebenchSLOBurnRate", "slo": "ll", "severity": "page",
    ...                       "tenant": "t"}, annotations={"summary": "burning"})
    >>> body = webhook_body(alert, "firing", "oncall")
    >>> body["version"], body["status"], body["groupKey"]
    ('4', 'firing', '{}:{alertname="XebenchSLOBurnRate", severity="page", slo="ll", tenant="t"}')
    >>> body["alerts"][0]["startsAt"], body["alerts"][0]["endsAt"]
    ('2026-01-01T00:00:00Z', '0001-01-01T00:00:00Z')
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from .lifecycle import Alert

__all__ = ["GO_ZERO_TIME", "GROUP_LABELS", "alertmanager_alerts", "go_time", "webhook_body"]

#: ``endsAt`` of an alert that has not ended (Go's zero ``time.Time``).
GO_ZERO_TIME = "0001-01-01T00:00:00Z"
#: The labels that make the group (one alert per group).
GROUP_LABELS = ("alertname", "tenant", "slo", "severity")


def go_time(moment: datetime | None) -> str:
    """RFC 3339 in UTC with ``Z`` (milliseconds when there are any); None: Go's zero time.

    Example:
        >>> go_time(datetime(2026, 1, 1, 0, 0, 0, 250_000, tzinfo=UTC)), go_time(None)
        ('2026-01-01T00:00:00.250Z', '0001-01-01T00:00:00Z')
    """
    if moment is None:
        return GO_ZERO_TIME
    moment = moment.astimezone(UTC)
    spec = "milliseconds" if moment.microsecond else "seconds"
    return moment.replace(tzinfo=None).isoformat(timespec=spec) + "Z"


def _started(alert: Alert) -> datetime:
    return alert.fired_at or alert.holding_since or alert.since


def _group_key(labels: dict[str, str]) -> str:
    # Alertmanager's form: route matchers ({} for the root route), then the group labels
    # as Go prints a label set.
    shown = ", ".join(f"{k}={json.dumps(labels[k])}" for k in sorted(labels))
    return "{}:{" + shown + "}"


def _generator(external_url: str) -> str:
    return f"{external_url}/v1/alerts" if external_url else ""


def webhook_body(alert: Alert, kind: str, receiver: str, external_url: str = "") -> dict[str, Any]:
    """The Alertmanager webhook body for ``alert``'s notice ``kind`` (``firing``,
    ``repeat``, ``resolved``) to ``receiver`` (the target's name).

    Example:
        >>> from xebench.alerting.lifecycle import Alert
        >>> at = datetime(2026, 1, 1, 1, tzinfo=UTC)
        >>> a = Alert("t", "ll", "page", "resolved", at, at, fired_at=at - timedelta(hours=1),
        ...           resolved_at=at, labels={"alertname": "A", "slo": "ll"})
        >>> body = webhook_body(a, "resolved", "oncall", "https://xebench.example")
        >>> body["status"], body["alerts"][0]["endsAt"], body["alerts"][0]["generatorURL"]
        ('resolved', '2026-01-01T01:00:00Z', 'https://xebench.example/v1/alerts')
    """
    status = "resolved" if kind == "resolved" else "firing"
    labels = dict(alert.labels)
    annotations = dict(alert.annotations)
    group = {k: labels[k] for k in GROUP_LABELS if k in labels}
    return {
        "version": "4",
        "groupKey": _group_key(group),
        "truncatedAlerts": 0,
        "status": status,
        "receiver": receiver,
        "groupLabels": group,
        "commonLabels": labels,
        "commonAnnotations": annotations,
        "externalURL": external_url,
        "alerts": [
            {
                "status": status,
                "labels": labels,
                "annotations": annotations,
                "startsAt": go_time(_started(alert)),
                "endsAt": go_time(alert.resolved_at) if status == "resolved" else GO_ZERO_TIME,
                "generatorURL": _generator(external_url),
                "fingerprint": alert.fingerprint,
            }
        ],
    }


def alertmanager_alerts(
    alert: Alert,
    kind: str,
    now: datetime,
    resend_interval: timedelta,
    external_url: str = "",
) -> list[dict[str, Any]]:
    """The ``POST /api/v2/alerts`` body (a list of one postable alert) for ``alert``'s
    notice ``kind``: a firing alert ends ``4 * resend_interval`` after ``now`` unless
    posted again (Prometheus's rule: Alertmanager resolves an alert whose sender
    died); a resolved one ends when it resolved.

    Example:
        >>> from xebench.alerting.lifecycle import Alert
        >>> at = datetime(2026, 1, 1, tzinfo=UTC)
        >>> a = Alert("t", "ll", "page", "firing", at, at, fired_at=at, labels={"alertname": "A"})
        >>> alertmanager_alerts(a, "firing", at, timedelta(minutes=1))
        [{'labels': {'alertname': 'A'}, 'annotations': {}, 'startsAt': '2026-01-01T00:00:00Z', \
'endsAt': '2026-01-01T00:04:00Z'}]
    """
    ends = alert.resolved_at if kind == "resolved" else now + 4 * resend_interval
    body: dict[str, Any] = {
        "labels": dict(alert.labels),
        "annotations": dict(alert.annotations),
        "startsAt": go_time(_started(alert)),
        "endsAt": go_time(ends or now),
    }
    if external_url:
        body["generatorURL"] = _generator(external_url)
    return [body]
