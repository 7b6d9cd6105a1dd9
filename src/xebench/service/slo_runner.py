"""The service's SLO evaluation: every minute, each configured SLO judged as of that minute.

A daemon thread wakes at each minute boundary (of an injectable clock), evaluates
every SLO of the config (:func:`xebench.monitor.slo.evaluate_slos`, reading the
store through cursors, never blocking the writer) and keeps the latest statuses
per tenant for ``GET /metrics``; ``on_statuses`` (the alert lifecycle, when
alerting is configured) gets each minute's statuses. ``GET /v1/slos`` and
``/v1/alerts`` evaluate at request time instead, so they reflect every
acknowledged write (read-your-writes) and accept ``at=``.

Example:
    >>> from datetime import UTC, datetime
    >>> from xebench.analysis.slo import SLO
    >>> from xebench.monitor.windows import Monitor
    >>> from xebench.store import EventStore
    >>> runner = SLORunner(Monitor(EventStore(":memory:")),
    ...                    [SLO("s", model="m", sli="log_loss", objective=0.3)])
    >>> [s.slo.name for s in runner.run_once(datetime(2026, 1, 1, tzinfo=UTC))]
    ['s']
    >>> [s.verdict for s in runner.latest("default")]
    [-1]
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from ..analysis.slo import SLO
from ..monitor.slo import SLOStatus, evaluate_slos
from ..monitor.windows import Monitor

__all__ = ["SLORunner"]

log = logging.getLogger("xebench.service.slo")


class SLORunner:
    """Evaluates ``slos`` every minute in a thread; :meth:`latest` has the last result."""

    def __init__(
        self,
        monitor: Monitor,
        slos: Sequence[SLO],
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        on_statuses: Callable[[list[SLOStatus], datetime], Any] | None = None,
    ) -> None:
        self.monitor = monitor
        self.slos = list(slos)
        self.clock = clock
        self.on_statuses = on_statuses
        self._latest: dict[str, list[SLOStatus]] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        #: When the last evaluation ran, how long it took, and its error if it failed.
        self.last: dict[str, Any] | None = None

    def run_once(self, at: datetime | None = None) -> list[SLOStatus]:
        """Evaluate every SLO as of ``at`` (default: the clock), keep and hand on the result."""
        at = at or self.clock()
        started = time.perf_counter()
        statuses = evaluate_slos(self.monitor, self.slos, at)
        by_tenant: dict[str, list[SLOStatus]] = {}
        for status in statuses:
            by_tenant.setdefault(status.slo.tenant, []).append(status)
        self._latest = by_tenant
        if self.on_statuses is not None:
            self.on_statuses(statuses, at)
        self.last = {"at": at.isoformat(), "seconds": round(time.perf_counter() - started, 3)}
        return statuses

    def latest(self, tenant: str) -> list[SLOStatus]:
        """The tenant's statuses of the last evaluation (empty before the first)."""
        return list(self._latest.get(tenant, []))

    def start(self) -> SLORunner:
        """Evaluate now, then at every minute boundary, until :meth:`stop` (no SLOs: no thread)."""
        if self.slos and self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="xebench-slo", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception as exc:  # a bad minute must not end the evaluations
                log.exception("SLO evaluation failed")
                self.last = {"at": self.clock().isoformat(), "error": str(exc)}
            now = self.clock()
            wait = 60.0 - (now.second + now.microsecond / 1e6)
            self._stop.wait(max(1.0, wait))
