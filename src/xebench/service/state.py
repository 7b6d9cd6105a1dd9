"""What the routers share: the configuration, the single writer, the monitor.

:func:`~xebench.service.app.create_app` builds one :class:`ServiceState` and
keeps it on ``app.state.xebench``; a route takes it as a parameter
(``state: State``), so a router is one file that needs nothing from the
factory's scope.

Example:
    >>> from xebench.service.app import create_app
    >>> from xebench.store import EventStore
    >>> state = create_app(EventStore(":memory:")).state.xebench
    >>> state.store is state.writer.store, state.config.limits.max_body_bytes
    (True, 20971520)
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, HTTPException, Request

from ..alerting import Alerting
from ..ingest.events import BatchError
from ..monitor.slo import SLOStatus
from ..monitor.windows import Monitor
from ..store.event_store import EventStore
from .admission import Admission, Ticket
from .auth import Principal
from .config import ServiceConfig
from .prometheus import Prometheus  # GET /metrics: counters and the scrape cache
from .sessions import Sessions
from .slo_runner import SLORunner
from .validation import ValidationPool
from .writer import Writer

__all__ = ["ServiceState", "State"]


@dataclass
class ServiceState:
    """The service's shared objects; ``store`` is always the writer's current one.

    Example:
        >>> from xebench.store import EventStore
        >>> store = EventStore(":memory:")
        >>> config = ServiceConfig()
        >>> state = ServiceState(config, Writer(store), Monitor(store, config.monitoring))
        >>> state.monitor_of(Principal("default", frozenset({"read"})), "fraud")
        Traceback (most recent call last):
        ...
        fastapi.exceptions.HTTPException: 404: no model 'fraud'
    """

    config: ServiceConfig
    writer: Writer
    monitor: Monitor
    #: Bounds the bytes and the work in flight (429 before a body is read).
    admission: Admission = field(default_factory=Admission)
    #: Decompression and validation run here, off the event loop (two threads: the
    #: parts that release the GIL -- zlib, Arrow -- overlap with the other's Python).
    validation: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(2, thread_name_prefix="xebench-validate")
    )
    #: Prediction bodies are validated in these worker processes (from those threads).
    workers: ValidationPool = field(default_factory=lambda: ValidationPool(0))
    #: ``GET /metrics``: the service counters and the scrape cache (service/prometheus.py).
    prometheus: Prometheus = field(default_factory=Prometheus)
    #: The minute loop judging the configured SLOs (None: no SLOs configured).
    slo_runner: SLORunner | None = None
    #: Alert states, their outbox and its delivery (None: no ``alerting:`` section).
    alerting: Alerting | None = None
    #: The dashboard's login sessions (service/sessions.py).
    sessions: Sessions = field(default_factory=Sessions)

    @property
    def store(self) -> EventStore:
        """The event store the writer writes to (it may have reopened it after a failure)."""
        return self.writer.store

    def slo_statuses(self, tenant: str) -> list[SLOStatus]:
        """The tenant's SLO statuses of the last minute's evaluation (``GET /metrics``)."""
        return [] if self.slo_runner is None else self.slo_runner.latest(tenant)

    def monitor_of(self, who: Principal, model: str) -> Monitor:
        """The monitor over the current store; 404 when the tenant has no prediction of
        ``model``."""
        if self.store.known_labels(who.tenant, model) is None:
            raise HTTPException(404, f"no model {model!r}")
        self.monitor.store = self.store
        return self.monitor

    async def read_body(self, request: Request, ticket: Ticket | None = None) -> bytes:
        """The raw request body, refused with 413 as soon as it exceeds the configured limit
        (the declared Content-Length is checked before reading); with ``ticket``, the
        bytes read are reserved in :attr:`admission` as they arrive (429 past its budget)."""
        limit = self.config.limits.max_body_bytes
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise BatchError(413, f"body exceeds {limit} bytes")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise BatchError(413, f"body exceeds {limit} bytes")
            if ticket is not None and size > ticket.size:
                self.admission.grow(ticket, size)
            chunks.append(chunk)
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def _state(request: Request) -> ServiceState:  # a coroutine: no worker-thread hop
    return request.app.state.xebench


#: A route parameter: the app's :class:`ServiceState`.
State = Annotated[ServiceState, Depends(_state)]
