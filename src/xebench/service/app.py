"""The HTTP service: event ingestion and monitoring over the event store.

``create_app(store, config)`` builds the FastAPI application; ``xebench serve``
runs it under uvicorn. The factory makes the shared objects
(:class:`~xebench.service.state.ServiceState`: config, the single writer, the
monitor), maps errors to status codes, adds the access log and includes the
routers of :mod:`xebench.service.routers`, one file per job. Routes
(docs/service.md):

- ingest: ``POST /v1/predictions`` and ``POST /v1/labels``, batches of events
  validated whole and answered once committed;
- monitoring: ``GET /v1/models``, ``/v1/models/{model}``, ``/v1/metrics``,
  ``/v1/drift``, ``/v1/compare``;
- references: ``PUT``, ``GET`` and ``DELETE /v1/references/{model}``, a drift
  reference supplied as data;
- the web dashboard: ``GET /`` (executive), ``/oncall``, ``/debug``, the login
  form and the static files (:mod:`xebench.service.routers.dashboard`);
- health: ``GET /healthz`` (the process answers) and ``GET /readyz`` (the
  writer runs and the store is writable).

With tokens configured, every ``/v1`` call needs ``Authorization: Bearer
TOKEN``; a token belongs to one tenant and sees nothing of the others (404).

Example:
    >>> from fastapi.testclient import TestClient
    >>> from xebench.store import EventStore
    >>> with TestClient(create_app(EventStore(":memory:"))) as client:
    ...     response = client.post("/v1/predictions", json=[
    ...         {"request_id": "r1", "model": "fraud", "probabilities": 0.8}])
    ...     print(response.status_code, response.json())
    ...     print(client.get("/v1/models").json()["models"][0]["predictions"])
    200 {'accepted': 1, 'inserted': 1, 'duplicates': 0}
    1
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from .._version import __version__
from ..alerting import Alerting
from ..errors import InvalidInputError
from ..ingest.events import BatchError
from ..monitor.windows import Monitor
from ..store.event_store import EventStore
from .admission import Admission
from .auth import DEFAULT_TENANT, Principal
from .config import ServiceConfig
from .lane import IngestLane
from .prometheus import RequestCounter  # GET /metrics: HTTP answers counted
from .routers import ROUTERS
from .slo_runner import SLORunner
from .state import ServiceState
from .unread_body import CloseUnread
from .validation import ValidationPool
from .writer import StoreUnavailable, Task, Writer, WriterBusy

__all__ = ["DEFAULT_TENANT", "Principal", "create_app", "warm_up"]

log = logging.getLogger("xebench.service.app")
access_log = logging.getLogger("xebench.access")


class _AccessLog:
    """One log line per request (method, path, status, duration, tenant, events).

    Plain ASGI rather than ``@app.middleware``: Starlette's BaseHTTPMiddleware
    costs a task group and a memory stream per request.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not access_log.isEnabledFor(logging.INFO):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def record(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record)
        finally:
            state = scope.get("state", {})
            access_log.info(
                "request",
                extra={
                    "method": scope["method"],
                    "path": scope["path"],
                    "status": status,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                    "tenant": state.get("tenant"),
                    "events": state.get("events"),
                },
            )


class _Internal:
    """A handler's unexpected exception as one logged 500 JSON answer, the connection kept.

    Starlette's handler for ``Exception`` answers 500 but re-raises, so the
    server logs the error a second time and drops the client's keep-alive
    connection. This layer, inside the access log and outside the routes'
    own handlers, logs once (with an incident id the answer quotes) and
    answers; the exception goes no further. When the answer had already
    started there is nothing left to say: the error is logged, the response
    ends there.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watch(message: Any) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception as exc:
            incident = uuid.uuid4().hex[:12]
            log.error(
                "unhandled error",
                exc_info=exc,
                extra={"incident": incident, "path": scope.get("path")},
            )
            if not started:
                answer = _error(500, f"internal error (incident {incident}); see the server log")
                await answer(scope, receive, send)


def create_app(
    store: EventStore,
    config: ServiceConfig | None = None,
    *,
    reopen: Callable[[], EventStore] | None = None,
    close_store: bool = False,
) -> FastAPI:
    """The FastAPI application over ``store``; the writer thread runs while the app does.

    ``reopen`` makes a fresh store after a storage failure (``xebench serve``
    passes one that reopens the database file); ``close_store`` closes the
    store at shutdown, after the writer has committed everything queued.
    """
    config = config or ServiceConfig()
    tasks = maintenance_tasks(config)
    # Alert states and their outbox are written by the writer thread (one writer per
    # store), from the SLO thread's evaluations; the delivery worker sends the outbox.
    alerting = Alerting(store, config.alerting) if config.alerting is not None else None
    if alerting is not None:
        tasks.append(Task("alerts", 5.0, alerting.run_pending))
    writer = Writer(
        store,
        reopen=reopen,
        max_events=config.queue_events,
        fold_interval=config.fold_interval,
        tasks=tasks,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state = app.state.xebench
        state.validation = ThreadPoolExecutor(2, thread_name_prefix="xebench-validate")
        state.workers = ValidationPool(
            config.validation_processes, limits=config.limits, pii=config.pii
        )
        warm_up()
        writer.start()
        if config.slos:
            # Its own monitor: the request handlers' one keeps per-request state.
            offer = alerting.offer if alerting is not None else None
            state.slo_runner = SLORunner(
                Monitor(writer.store, config.monitoring), config.slos, on_statuses=offer
            )
            state.slo_runner.start()
        if alerting is not None:
            alerting.start()
        try:
            yield
        finally:
            if state.slo_runner is not None:
                state.slo_runner.stop()
            if alerting is not None:
                alerting.stop()
            state.validation.shutdown(wait=True)
            state.workers.close()
            writer.stop()
            if close_store:
                writer.store.close()  # the writer may have reopened it: the current one

    app = FastAPI(
        title="xebench",
        version=__version__,
        description=(
            "Cross-entropy monitoring of probabilistic models: event ingestion, windowed "
            "metrics, drift and canary/shadow comparison."
        ),
        lifespan=lifespan,
        docs_url=None,  # Swagger UI and ReDoc load from a CDN: the spec is at /openapi.json
        redoc_url=None,
    )
    admission = Admission(max_bytes=config.inflight_bytes, max_seconds=config.inflight_seconds)
    app.state.xebench = ServiceState(
        config,
        writer,
        Monitor(store, config.monitoring, pii=config.pii),
        admission=admission,
        alerting=alerting,
    )
    app.state.writer = writer
    app.state.config = config
    _handle_errors(app)
    app.add_middleware(IngestLane)  # added first: innermost, inside the 500 layer
    app.add_middleware(_Internal)
    app.add_middleware(_AccessLog)  # outside _Internal, so it logs the 500s too
    app.add_middleware(RequestCounter)  # GET /metrics: xebench_http_requests_total, 500s too
    app.add_middleware(CloseUnread)  # outermost: every answer given before its body was read
    for router in ROUTERS:
        app.include_router(router)
    return app


def warm_up() -> None:
    """Load now what the first request would: pyarrow imports pandas (~0.3 s, 355
    modules) the first time it builds an array from a Python list, to check whether it
    is a pandas object; on the first write that stalled every request in flight.

    Example:
        >>> import sys
        >>> warm_up()
        >>> "pandas" in sys.modules or not _has_pandas()
        True
    """
    import pyarrow as pa

    pa.array([b""], pa.binary())


def _has_pandas() -> bool:
    import importlib.util

    return importlib.util.find_spec("pandas") is not None


def maintenance_tasks(config: ServiceConfig) -> list[Task]:
    """The writer's scheduled store maintenance: the ``retention:`` policy, when set.

    Example:
        >>> from datetime import timedelta
        >>> from xebench.store.retention import RetentionPolicy
        >>> config = ServiceConfig(retention=RetentionPolicy(events=timedelta(days=30)))
        >>> [(task.name, task.interval) for task in maintenance_tasks(config)]
        [('retention', 3600.0)]
    """
    policy = config.retention
    if not policy.active:
        return []
    return [Task("retention", policy.interval.total_seconds(), lambda s: s.apply_policy(policy))]


def _error(
    status: int, detail: str, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    return JSONResponse({"detail": detail, **extra}, status_code=status, headers=headers)


def _methods_of(request: Request) -> str:
    """The methods of every route of the request's path (a 405's ``Allow``)."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches(request.scope)
        if match != Match.NONE:
            methods |= set(getattr(route, "methods", None) or ())
    return ", ".join(sorted(methods))


def _seconds(retry_after: float) -> str:
    """A ``Retry-After`` value: whole seconds, at least 1 (RFC 9110 delta-seconds).

    Example:
        >>> _seconds(0.25), _seconds(2.0), _seconds(2.5)
        ('1', '2', '3')
    """
    return str(max(1, math.ceil(retry_after)))


def _handle_errors(app: FastAPI) -> None:
    """Map the service's exceptions to status codes and JSON bodies (``{"detail", ...}``);
    ``HTTPException`` keeps FastAPI's own handler, which answers the same shape. Any
    other exception is :class:`_Internal`'s."""

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Any:
        if exc.status_code == 405:  # Allow: every method of the path, not just one route's
            exc.headers = {**(exc.headers or {}), "Allow": _methods_of(request)}
        return await http_exception_handler(request, exc)

    @app.exception_handler(BatchError)
    async def _batch_error(_: Request, exc: BatchError) -> JSONResponse:
        return JSONResponse(exc.to_dict(), status_code=exc.status)

    @app.exception_handler(WriterBusy)
    async def _busy(_: Request, exc: WriterBusy) -> JSONResponse:
        return _error(429, str(exc), {"Retry-After": _seconds(exc.retry_after)})

    @app.exception_handler(StoreUnavailable)
    async def _unavailable(_: Request, exc: StoreUnavailable) -> JSONResponse:
        return _error(503, str(exc), {"Retry-After": _seconds(exc.retry_after)})

    @app.exception_handler(InvalidInputError)
    async def _bad_query(_: Request, exc: InvalidInputError) -> JSONResponse:
        errors = [{"field": f"/query/{exc.argument}", "message": str(exc)}]
        return _error(422, str(exc), errors=errors)

    @app.exception_handler(RequestValidationError)
    async def _query_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": "/" + "/".join(str(p) for p in e["loc"]), "message": e["msg"]}
            for e in exc.errors()
        ]
        return _error(422, "invalid request parameters", errors=errors)
