"""SLO alerts: burn-rate conditions become alerts with a lifecycle, stored with an outbox
of notifications that a worker delivers to webhooks and Alertmanager.

Every minute the SLO evaluator (:mod:`xebench.monitor.slo`) judges each SLO;
:meth:`Alerting.evaluate` turns its statuses into alert transitions
(:mod:`~xebench.alerting.lifecycle`: pending, firing, suppressed, resolved,
one alert per tenant, SLO and severity) and writes each state change with the
notifications it owes in ONE transaction of the event store
(:mod:`~xebench.alerting.store`), so no notification is lost between the two.
The delivery worker (:mod:`~xebench.alerting.delivery`) sends them, retried
with backoff, each with an ``Idempotency-Key`` stable across retries, and
dead-letters (keeps, counts) what it cannot deliver within ``max_age``.

Example:
    >>> from datetime import UTC, datetime, timedelta
    >>> from types import SimpleNamespace
    >>> from xebench.analysis.slo import SLO, DEFAULT_BURN_ALERTS, BurnCondition
    >>> from xebench.store import EventStore
    >>> settings = AlertingSettings.from_mapping(
    ...     {"webhooks": [{"url": "http://127.0.0.1:9/hook", "name": "oncall"}]})
    >>> sent = []
    >>> alerting = Alerting(EventStore(":memory:"), settings,
    ...                     sender=lambda request: sent.append(request) or Reply(200))
    >>> slo = SLO("fraud-ll", model="fraud", sli="log_loss", objective=0.3)
    >>> burning = SimpleNamespace(slo=slo, evidence={"sli_value": 0.41},
    ...     conditions=[BurnCondition(DEFAULT_BURN_ALERTS[0], True, 20.0, 30.0)])
    >>> at = datetime(2026, 1, 1, tzinfo=UTC)
    >>> [t.to_dict()["to"] for t in alerting.evaluate([burning], at)]
    ['firing']
    >>> alerting.deliver_due(at)["delivered"], sent[0].headers["Idempotency-Key"][:4]
    (1, 'xeb-')
    >>> [(a["slo"], a["severity"], a["state"]) for a in alerting.states("default")]
    [('fraud-ll', 'page', 'firing')]
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import deque
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

from .addresses import AddressGuard
from .delivery import DeliveryWorker, HttpSender, Outbound, Reply, Sender
from .lifecycle import (
    ACTIVE,
    ALERTNAME,
    Alert,
    Policy,
    Transition,
    iso,
    observations,
    step,
    stopped,
)
from .payloads import alertmanager_alerts, webhook_body
from .settings import AlertingSettings, MaintenanceWindow, Target
from .store import (
    OutboxRow,
    alert_states,
    dead_letters,
    load_alerts,
    outbox_summary,
    prune_outbox,
    write_transitions,
)

__all__ = [
    "ALERTNAME",
    "AddressGuard",
    "Alert",
    "Alerting",
    "AlertingSettings",
    "DeliveryWorker",
    "HttpSender",
    "MaintenanceWindow",
    "Outbound",
    "Policy",
    "Reply",
    "Sender",
    "Target",
    "Transition",
    "alert_states",
    "dead_letters",
    "idempotency_key",
    "outbox_summary",
]

#: Minutes of offered evaluations kept for the writer (a day; older ones are dropped
#: with a count, the newest always kept).
_OFFERED = 1440


def idempotency_key(target: str, key: str, kind: str, at: datetime) -> str:
    """The ``Idempotency-Key`` of the notification ``kind`` of alert ``key`` to ``target``
    at ``at``: the same inputs give the same key, so re-running an evaluation cannot
    enqueue a notification twice, and every retry of a row sends the same key.

    Example:
        >>> from datetime import UTC
        >>> idempotency_key("oncall", "t/s/page", "firing", datetime(2026, 1, 1, tzinfo=UTC))
        'xeb-fe10efb5e70f1be6d6363a3a53524a5a'
    """
    text = "\n".join([target, key, kind, iso(at) or ""])
    return "xeb-" + hashlib.sha256(text.encode()).hexdigest()[:32]


class Alerting:
    """The alert lifecycle and its delivery over one event store.

    Args:
        store: the open :class:`~xebench.store.EventStore` (the alert tables are in
            it). :meth:`run_pending` replaces it with the store it is given.
        settings: the ``alerting:`` section.
        sender, clock, rng, resolver: the delivery's
            (:class:`~xebench.alerting.delivery.DeliveryWorker`); for tests.

    Thread safety: :meth:`evaluate` writes through ``EventStore.write_transaction``
    (the store's one write connection, under its lock), so it may run in any
    thread; in the service it runs in the writer thread (:meth:`offer` from the
    SLO thread, :meth:`run_pending` as a writer task).
    """

    def __init__(
        self,
        store: Any,
        settings: AlertingSettings | None = None,
        *,
        sender: Sender | None = None,
        clock: Callable[[], datetime] | None = None,
        rng: Any = None,
        resolver: Any = None,
        poll: float = 1.0,
    ) -> None:
        self.store = store
        self.settings = settings or AlertingSettings()
        manager = self.settings.alertmanager
        self.policy = Policy(
            pending_for=self.settings.pending_for,
            repeat_interval=self.settings.repeat_interval,
            refresh_interval=manager.resend_interval if manager is not None else None,
        )
        self.worker = DeliveryWorker(
            lambda: self.store,
            self.settings,
            sender=sender,
            clock=clock,
            rng=rng,
            resolver=resolver,
            poll=poll,
        )
        self._offered: deque[tuple[list[Any], datetime]] = deque(maxlen=_OFFERED)
        self._offered_lock = threading.Lock()
        #: Evaluations dropped because the writer did not take them for a day.
        self.dropped_evaluations = 0

    # --- evaluation -------------------------------------------------------------------

    def evaluate(
        self, statuses: Iterable[Any], at: datetime, *, complete: bool = True
    ) -> list[Transition]:
        """Apply one evaluation: each status (``.slo``, ``.conditions``, ``.evidence``, as
        :class:`xebench.monitor.slo.SLOStatus` has them) of the minute ``at``; returns
        the transitions written (a state change, new evidence, or a notification).

        ``complete``: the statuses are every configured SLO's, so an active alert of
        an SLO missing from them (removed from the configuration) stops holding and
        resolves. Re-applying a minute already applied changes nothing.

        Example:
            >>> from datetime import UTC
            >>> from xebench.store import EventStore
            >>> Alerting(EventStore(":memory:")).evaluate([], datetime(2026, 1, 1, tzinfo=UTC))
            []
        """
        observed = []
        for status in statuses:
            slo = status.slo
            quiet = self.settings.suppressed(slo, at)
            observed += observations(slo, at, status.conditions, status.evidence, suppressed=quiet)

        def work(con: Any) -> list[Transition]:
            before = load_alerts(con)
            transitions = []
            seen = set()
            for item in observed:
                seen.add(item.key)
                change = step(before.get(item.key), item, at, self.policy)
                if change is not None:
                    transitions.append(change)
            if complete:
                for key, alert in sorted(before.items()):
                    if key not in seen and alert.state in ACTIVE:
                        change = step(alert, stopped(alert), at, self.policy)
                        if change is not None:
                            transitions.append(change)
            rows = [row for change in transitions for row in self._rows(change, at)]
            write_transitions(con, transitions, rows)
            return transitions

        transitions: list[Transition] = self.store.write_transaction(work)
        if any(t.notices for t in transitions):
            self.worker.wake()
        return transitions

    def _rows(self, change: Transition, at: datetime) -> list[OutboxRow]:
        """The outbox rows of ``change``'s notices: webhooks get firing, repeat and (with
        ``resolve_notify``) resolved; Alertmanager gets every notice, refreshes too."""
        alert, settings = change.after, self.settings
        rows = []
        for kind in change.notices:
            for target in settings.targets:
                if not target.receives(alert.severity):
                    continue
                if target.kind == "webhook":
                    if kind == "refresh" or (kind == "resolved" and not settings.resolve_notify):
                        continue
                    body: Any = webhook_body(alert, kind, target.name, settings.external_url)
                else:
                    body = alertmanager_alerts(
                        alert, kind, at, target.resend_interval, settings.external_url
                    )
                rows.append(
                    OutboxRow(
                        key=alert.key,
                        target=target.name,
                        kind=kind,
                        payload=json.dumps(body, separators=(",", ":")),
                        idempotency_key=idempotency_key(target.name, alert.key, kind, at),
                        created_at=at,
                        replaces_older=target.kind == "alertmanager",
                    )
                )
        return rows

    def offer(self, statuses: Iterable[Any], at: datetime) -> None:
        """Queue one minute's statuses for :meth:`run_pending` (the SLO thread calls it;
        the writer thread applies them in order).

        Example:
            >>> from datetime import UTC
            >>> from xebench.store import EventStore
            >>> alerting = Alerting(EventStore(":memory:"))
            >>> alerting.offer([], datetime(2026, 1, 1, tzinfo=UTC))
            >>> alerting.run_pending()
            {'evaluations': 1, 'transitions': 0}
        """
        with self._offered_lock:
            if len(self._offered) == self._offered.maxlen:
                self.dropped_evaluations += 1
            self._offered.append((list(statuses), at))

    def run_pending(self, store: Any = None) -> dict[str, int]:
        """Apply every offered evaluation, oldest first (a writer ``Task``'s ``run``: it gets
        the writer's current store, which becomes this one's); the counts applied."""
        if store is not None:
            self.store = store
        done = {"evaluations": 0, "transitions": 0}
        while True:
            with self._offered_lock:
                if not self._offered:
                    return done
                statuses, at = self._offered[0]
            done["transitions"] += len(self.evaluate(statuses, at))
            done["evaluations"] += 1
            with self._offered_lock:  # only once applied: a failure retries it
                self._offered.popleft()

    # --- reads ------------------------------------------------------------------------

    def states(
        self,
        tenant: str | None = None,
        *,
        at: datetime | None = None,
        recent: timedelta = timedelta(hours=24),
    ) -> list[dict[str, Any]]:
        """The tenant's active alerts and those resolved within ``recent`` (JSON dicts:
        ``slo``, ``severity``, ``state``, ``since``, ``labels``, ``annotations``,
        ``evidence``, ``fingerprint``, ``last_notified``, ...); see :func:`alert_states`."""
        return alert_states(self.store, tenant, at=at, recent=recent)

    def suppressed(self, slo: Any, at: datetime) -> bool:
        """Whether a maintenance window covers ``slo`` at ``at``."""
        return self.settings.suppressed(slo, at)

    def prune(self, before: datetime) -> int:
        """Delete delivered and superseded notifications created before ``before`` (a
        retention task's job; dead letters and the alert history are kept); the count."""
        return int(self.store.write_transaction(lambda con: prune_outbox(con, before)))

    def outbox_summary(self) -> dict[str, Any]:
        """See :func:`~xebench.alerting.store.outbox_summary`."""
        return outbox_summary(self.store)

    def dead_letters(self, limit: int = 100) -> list[dict[str, Any]]:
        """See :func:`~xebench.alerting.store.dead_letters`."""
        return dead_letters(self.store, limit)

    # --- delivery ---------------------------------------------------------------------

    def deliver_due(self, now: datetime | None = None) -> dict[str, int]:
        """One delivery pass (:meth:`DeliveryWorker.deliver_due`)."""
        return self.worker.deliver_due(now)

    def start(self) -> Alerting:
        """Start the delivery thread; returns self."""
        self.worker.start()
        return self

    def stop(self) -> None:
        """Stop the delivery thread (undelivered rows wait in the outbox)."""
        self.worker.stop()
