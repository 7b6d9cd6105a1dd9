"""The HTTP service: event ingestion and model listing over the event store.

``create_app(store, config)`` builds the FastAPI application; ``xebench serve``
runs it under uvicorn. Routes (DESIGN.md, HTTP):

- ``POST /v1/predictions`` and ``POST /v1/labels``: a JSON array (or one
  object) or NDJSON of events, optionally gzip. The batch is validated whole
  (422 with one entry per bad event, nothing stored), queued for the single
  writer and answered only once committed: 200 ``{"accepted", "inserted",
  "duplicates", ...}``; 409 when an event reuses a stored (model,
  request_id) with a different payload; 413 / 415 for the body; 429 / 503
  with ``Retry-After`` under back-pressure or while the store is reopened.
- ``GET /v1/models`` and ``GET /v1/models/{model}``: what the tenant has sent.
- ``GET /v1/metrics``: one window, or a series with ``step=``, of a model
  (``version``, ``cohort=key:value``, ``window=1h|6h|24h|7d`` or ``from``/``to``):
  counts, label coverage and lag, log loss with CI, Brier, ECE, skill,
  perplexity, ``provisional``; merged from the one-minute buckets.
- ``GET /v1/drift``: KL, JS and PSI per feature, score and label of the
  window against a reference (``reference=rolling|version:V|range:A/B|uploaded``),
  ranked.
- ``PUT /v1/references/{model}`` (CSV, JSON Lines or Parquet), ``GET`` and
  ``DELETE``: a drift reference supplied as data, kept as counts in the
  model's monitoring bins (``reference=uploaded``).
- ``GET /v1/compare``: the gate decision for ``candidate`` vs ``baseline``
  (``model`` or ``model:version``): canary (unpaired) or shadow (paired).
- ``GET /healthz`` (the process answers) and ``GET /readyz`` (the writer runs
  and the store is writable).

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
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import TypeAdapter

from .._version import __version__
from ..errors import DataError, InvalidInputError, XebenchError
from ..ingest.events import (
    JSON_TYPES,
    NDJSON_TYPES,
    BatchError,
    LabelEvent,
    PredictionEvent,
    decode_body,
    decompress_body,
    label_columns,
    media_type,
    prediction_columns,
)
from ..monitor.references import UPLOAD_TYPES, count_tables, read_upload
from ..monitor.windows import Monitor, Scope
from ..store.event_store import STORE_FAILURES, EventStore, WriteOutcome
from .config import ServiceConfig, TokenEntry
from .writer import StoreUnavailable, Writer, WriterBusy

__all__ = ["DEFAULT_TENANT", "Principal", "create_app"]

log = logging.getLogger("xebench.service.app")
access_log = logging.getLogger("xebench.access")

#: The tenant of every event when no tokens are configured.
DEFAULT_TENANT = "default"


@dataclass(frozen=True)
class Principal:
    """Who is calling: a tenant and what it may do.

    Example:
        >>> Principal("acme", frozenset({"read"})).may("ingest")
        False
    """

    tenant: str
    scopes: frozenset[str]

    def may(self, scope: str) -> bool:
        """Whether this caller holds ``scope``."""
        return scope in self.scopes


class _HttpError(XebenchError):
    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None):
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers or {}


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


def _principal(request: Request, scope: str) -> Principal:
    """The caller of ``request``, who must hold ``scope`` (401 / 403 otherwise)."""
    tokens = request.app.state.config.tokens
    if not tokens.enabled:
        who = Principal(DEFAULT_TENANT, frozenset({"ingest", "read"}))
    else:
        kind, _, token = request.headers.get("authorization", "").partition(" ")
        if kind.lower() != "bearer" or not token.strip():
            raise _HttpError(
                401,
                "missing bearer token: send Authorization: Bearer TOKEN",
                {"WWW-Authenticate": "Bearer"},
            )
        entry: TokenEntry | None = tokens.authenticate(token.strip())
        if entry is None:
            raise _HttpError(401, "invalid token", {"WWW-Authenticate": "Bearer"})
        who = Principal(entry.tenant, entry.scopes)
    if not who.may(scope):
        raise _HttpError(403, f"this token lacks the {scope!r} scope")
    request.state.tenant = who.tenant
    return who


def _ingester(request: Request) -> Principal:
    return _principal(request, "ingest")


def _reader(request: Request) -> Principal:
    return _principal(request, "read")


Ingester = Annotated[Principal, Depends(_ingester)]
Reader = Annotated[Principal, Depends(_reader)]


def _body_schema(model: type[Any]) -> dict[str, Any]:
    schema = TypeAdapter(list[model]).json_schema(ref_template="#/components/schemas/{model}")
    schema.pop("$defs", None)
    item = model.model_json_schema(ref_template="#/components/schemas/{model}")
    item.pop("$defs", None)
    content = {media: {"schema": schema} for media in sorted(JSON_TYPES)}
    content.update({media: {"schema": item} for media in sorted(NDJSON_TYPES)})
    return {"requestBody": {"required": True, "content": content}}


def _outcome(outcome: WriteOutcome, n: int, kind: str) -> JSONResponse:
    if outcome.conflicts:
        conflicts = [
            {
                "index": c.index,
                "field": f"/{c.index}/request_id",
                "model": c.model,
                "request_id": c.request_id,
                "message": "already stored with a different payload",
            }
            for c in outcome.conflicts[:100]
        ]
        detail = (
            f"{len(outcome.conflicts)} event(s) reuse a stored (model, request_id) with a "
            "different payload; nothing of the batch was stored"
        )
        return JSONResponse({"detail": detail, "conflicts": conflicts}, status_code=409)
    body: dict[str, Any] = {
        "accepted": n,
        "inserted": outcome.inserted,
        "duplicates": outcome.duplicates,
    }
    if kind == "labels":
        body.update(joined=outcome.joined, pending=outcome.pending)
    return JSONResponse(body)


# Query parameters shared by the monitoring routes (module level: FastAPI resolves
# the annotations by name).
Window = Annotated[
    str | None, Query(description="Rolling window: 1h, 6h, 24h, 7d or any duration (30m).")
]
From = Annotated[str | None, Query(alias="from", description="Start, RFC 3339.")]
To = Annotated[str | None, Query(alias="to", description="End (exclusive), RFC 3339.")]
Cohort = Annotated[str | None, Query(description="key:value, e.g. region:eu.")]


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
    writer = Writer(
        store,
        reopen=reopen,
        max_events=config.queue_events,
        fold_interval=config.fold_interval,
    )
    monitor = Monitor(store, config.monitoring)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        writer.start()
        try:
            yield
        finally:
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
    )
    app.state.writer = writer
    app.state.config = config

    # --- errors ---------------------------------------------------------------------

    def error(status: int, detail: str, headers: dict[str, str] | None = None, **extra: Any):
        return JSONResponse({"detail": detail, **extra}, status_code=status, headers=headers)

    @app.exception_handler(_HttpError)
    async def _http_error(_: Request, exc: _HttpError) -> JSONResponse:
        return error(exc.status, exc.detail, exc.headers)

    @app.exception_handler(BatchError)
    async def _batch_error(_: Request, exc: BatchError) -> JSONResponse:
        return JSONResponse(exc.to_dict(), status_code=exc.status)

    @app.exception_handler(WriterBusy)
    async def _busy(_: Request, exc: WriterBusy) -> JSONResponse:
        return error(429, str(exc), {"Retry-After": f"{exc.retry_after:g}"})

    @app.exception_handler(StoreUnavailable)
    async def _unavailable(_: Request, exc: StoreUnavailable) -> JSONResponse:
        return error(503, str(exc), {"Retry-After": f"{exc.retry_after:g}"})

    @app.exception_handler(InvalidInputError)
    async def _bad_query(_: Request, exc: InvalidInputError) -> JSONResponse:
        errors = [{"field": f"/query/{exc.argument}", "message": str(exc)}]
        return error(422, str(exc), errors=errors)

    @app.exception_handler(RequestValidationError)
    async def _query_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": "/" + "/".join(str(p) for p in e["loc"]), "message": e["msg"]}
            for e in exc.errors()
        ]
        return error(422, "invalid request parameters", errors=errors)

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> JSONResponse:
        incident = uuid.uuid4().hex[:12]
        log.error(
            "unhandled error",
            exc_info=exc,
            extra={"incident": incident, "path": request.url.path},
        )
        return error(500, f"internal error (incident {incident}); see the server log")

    # --- access log -------------------------------------------------------------------

    app.add_middleware(_AccessLog)

    # --- ingestion ------------------------------------------------------------------

    async def read_body(request: Request) -> bytes:
        limit = config.limits.max_body_bytes
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise BatchError(413, f"body exceeds {limit} bytes")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise BatchError(413, f"body exceeds {limit} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    async def ingest(request: Request, kind: str, who: Principal) -> JSONResponse:
        # Refuse before reading and validating: under overload, parsing bodies that
        # will be refused anyway would starve the requests that can be served.
        writer.check_room()
        raw = await read_body(request)
        body, ndjson = decode_body(
            raw,
            request.headers.get("content-type"),
            request.headers.get("content-encoding"),
            config.limits,
        )
        if kind == "predictions":
            columns = prediction_columns(
                body, tenant=who.tenant, ndjson=ndjson, limits=config.limits, pii=config.pii
            )
        else:
            columns = label_columns(
                body,
                tenant=who.tenant,
                ndjson=ndjson,
                limits=config.limits,
                known_labels=lambda model: writer.store.known_labels(who.tenant, model),
            )
        n = len(columns["fp"])
        request.state.events = n
        outcome = await writer.write(kind, columns)
        return _outcome(outcome, n, kind)

    @app.post(
        "/v1/predictions",
        summary="Send prediction events",
        openapi_extra=_body_schema(PredictionEvent),
        tags=["ingest"],
    )
    async def post_predictions(request: Request, who: Ingester) -> JSONResponse:
        """Store a batch of predictions; answered once durably committed."""
        return await ingest(request, "predictions", who)

    @app.post(
        "/v1/labels",
        summary="Send label events",
        openapi_extra=_body_schema(LabelEvent),
        tags=["ingest"],
    )
    async def post_labels(request: Request, who: Ingester) -> JSONResponse:
        """Store a batch of labels; a label whose prediction has not arrived waits for it."""
        return await ingest(request, "labels", who)

    # --- reading ----------------------------------------------------------------------

    @app.get("/v1/models", summary="Models and versions of the tenant", tags=["read"])
    def get_models(who: Reader) -> dict[str, Any]:
        """Every (model, version) with its prediction, label and joined counts."""
        return {"models": writer.store.models(who.tenant)}

    @app.get("/v1/models/{model}", summary="One model's versions", tags=["read"])
    def get_model(model: str, who: Reader) -> dict[str, Any]:
        """The versions of ``model``; 404 when the tenant has no such model."""
        rows = [row for row in writer.store.models(who.tenant) if row["model"] == model]
        if not rows:
            raise _HttpError(404, f"no model {model!r}")
        return {"model": model, "versions": rows}

    # --- monitoring -----------------------------------------------------------------------

    def monitor_of(who: Principal, model: str) -> Monitor:
        """The monitor over the current store (the writer may have reopened it); 404 when
        the tenant has no prediction of ``model``."""
        if writer.store.known_labels(who.tenant, model) is None:
            raise _HttpError(404, f"no model {model!r}")
        monitor.store = writer.store
        return monitor

    @app.get("/v1/metrics", summary="Windowed metrics of a model", tags=["monitoring"])
    def get_metrics(
        who: Reader,
        model: str,
        version: str | None = None,
        cohort: Cohort = None,
        window: Window = None,
        start: From = None,
        end: To = None,
        step: Annotated[str | None, Query(description="Series step, e.g. 1h.")] = None,
        base: Annotated[str, Query(description="Log base: e, 2 or 10.")] = "e",
        confidence: float = 0.95,
    ) -> dict[str, Any]:
        """One window (default: the last 24h), or ``{"series": [...]}`` with ``step``."""
        units: str | int = base if base == "e" else _base(base)
        scope = Scope(who.tenant, model, version, cohort, window, start, end)
        if step is not None:
            return (
                monitor_of(who, model)
                .series(scope, step=step, base=units, confidence=confidence)
                .to_dict()
            )
        return monitor_of(who, model).window(scope, base=units, confidence=confidence).to_dict()

    @app.get("/v1/drift", summary="Drift of features, score and labels", tags=["monitoring"])
    def get_drift(
        who: Reader,
        model: str,
        version: str | None = None,
        cohort: Cohort = None,
        window: Window = None,
        start: From = None,
        end: To = None,
        reference: Annotated[
            str | None,
            Query(
                description="rolling, version:V, range:FROM/TO or uploaded (default: the "
                "model's configured reference, else rolling)."
            ),
        ] = None,
        min_samples: int | None = None,
        threshold: float | None = None,
    ) -> dict[str, Any]:
        """Per-feature KL, JS and PSI of the window against the reference, drifted first."""
        if reference is not None and reference.startswith("file:"):
            raise InvalidInputError(
                "reference", "file references are configured (monitoring.models), not passed"
            )
        return (
            monitor_of(who, model)
            .drift(
                Scope(who.tenant, model, version, cohort, window, start, end),
                reference=reference,
                min_samples=min_samples,
                threshold=threshold,
            )
            .to_dict()
        )

    # --- drift references given as data ------------------------------------------------

    def reference_summary(model: str, found: dict[str, Any]) -> dict[str, Any]:
        return {
            "model": model,
            "rows": found["rows"],
            "source": found["source"],
            "uploaded_at": found["uploaded_at"].isoformat().replace("+00:00", "Z"),
            "features": {name: int(c.sum()) for name, c in found["counts"].items()},
        }

    @app.put(
        "/v1/references/{model}",
        summary="Upload a drift reference",
        tags=["monitoring"],
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    media: {"schema": {"type": "string", "format": "binary"}}
                    for media in sorted(UPLOAD_TYPES)
                },
            }
        },
    )
    async def put_reference(model: str, request: Request, who: Ingester) -> dict[str, Any]:
        """Store a CSV, JSON Lines or Parquet file as ``model``'s drift reference
        (``GET /v1/drift?reference=uploaded``): each column named like a monitored
        feature is counted in that feature's bins and only the counts are kept."""
        monitor_of(who, model)
        media = media_type(request.headers.get("content-type"))
        if media not in UPLOAD_TYPES:
            raise _HttpError(
                415,
                f"unsupported content type {media or '(none)'!r}: send the reference as "
                + ", ".join(sorted(UPLOAD_TYPES)),
            )
        body = decompress_body(
            await read_body(request), request.headers.get("content-encoding"), config.limits
        )
        bins = writer.store.buckets.feature_bins(who.tenant, model)
        if not bins:
            raise _HttpError(
                409,
                f"model {model!r} has no monitored features with fixed bins yet (bins are "
                "learned from its first predictions' features): upload the reference later",
            )
        try:
            counted = await run_in_threadpool(
                lambda: count_tables([read_upload(body, media)], bins)
            )
        except DataError as exc:
            raise BatchError(422, str(exc), [{"field": "/body", "message": str(exc)}]) from None
        if not counted.counts:
            detail = (
                f"no column of the reference is a monitored feature of {model!r} "
                f"(columns: {', '.join(counted.ignored)}; features: {', '.join(sorted(bins))})"
            )
            raise BatchError(422, detail, [{"field": "/body", "message": detail}])
        source = request.headers.get("x-reference-name") or f"upload ({media})"
        request.state.events = counted.rows
        try:
            await run_in_threadpool(
                writer.store.put_reference, who.tenant, model, counted.counts, counted.rows, source
            )
        except STORE_FAILURES as exc:  # nothing was stored: the client retries
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise StoreUnavailable(reason, 5.0) from None
        found = writer.store.reference(who.tenant, model)
        assert found is not None
        return {
            **reference_summary(model, found),
            "ignored_columns": counted.ignored,
            "missing_features": sorted(set(bins) - set(counted.counts)),
        }

    @app.get("/v1/references/{model}", summary="The uploaded drift reference", tags=["monitoring"])
    def get_reference(model: str, who: Reader) -> dict[str, Any]:
        """Rows, source, upload time and counted values per feature; 404 when none."""
        monitor_of(who, model)
        found = writer.store.reference(who.tenant, model)
        if found is None:
            raise _HttpError(404, f"model {model!r} has no uploaded reference")
        return reference_summary(model, found)

    @app.delete(
        "/v1/references/{model}", summary="Remove the uploaded drift reference", tags=["monitoring"]
    )
    def delete_reference(model: str, who: Ingester) -> dict[str, Any]:
        """Remove ``model``'s uploaded reference; 404 when there is none."""
        monitor_of(who, model)
        if not writer.store.delete_reference(who.tenant, model):
            raise _HttpError(404, f"model {model!r} has no uploaded reference")
        return {"model": model, "deleted": True}

    @app.get("/v1/compare", summary="Canary or shadow gate decision", tags=["monitoring"])
    def get_compare(
        who: Reader,
        candidate: Annotated[str, Query(description="model or model:version.")],
        baseline: Annotated[str, Query(description="model or model:version.")],
        cohort: Cohort = None,
        window: Window = None,
        start: From = None,
        end: To = None,
        mode: Annotated[str, Query(description="auto, canary or shadow.")] = "auto",
        max_degradation: float | None = None,
        min_samples: int | None = None,
        confidence: float | None = None,
    ) -> dict[str, Any]:
        """Pass, fail or inconclusive, with the delta, its interval and the sample sizes."""
        for name in (candidate, baseline):
            monitor_of(who, name.partition(":")[0])
        scope = Scope.named(
            who.tenant, candidate, "candidate", cohort=cohort, window=window, start=start, end=end
        )
        return monitor.compare(
            scope,
            baseline,
            mode=mode,
            max_degradation=max_degradation,
            min_samples=min_samples,
            confidence=confidence,
        ).to_dict()

    # --- health -------------------------------------------------------------------------

    @app.get("/healthz", summary="Liveness", tags=["health"])
    def healthz() -> dict[str, str]:
        """The process answers."""
        return {"status": "ok"}

    @app.get("/readyz", summary="Readiness", tags=["health"])
    def readyz() -> JSONResponse:
        """Ready when the writer runs, the store is writable and the queue has room."""
        problems = []
        if not writer.alive:
            problems.append("writer thread is not running")
        if writer.failure is not None:
            problems.append(f"event store unavailable: {writer.failure}")
        if writer.queued_events >= 0.9 * writer.max_events:
            problems.append(f"write queue nearly full ({writer.queued_events} events)")
        status = 503 if problems else 200
        body = {
            "status": "unready" if problems else "ready",
            "problems": problems,
            "queued_events": writer.queued_events,
        }
        return JSONResponse(body, status_code=status)

    return app


def _base(text: str) -> int:
    if text not in ("2", "10"):
        raise InvalidInputError("base", "must be e, 2 or 10", value=text)
    return int(text)
