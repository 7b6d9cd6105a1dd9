"""``POST /v1/predictions`` and ``POST /v1/labels``: batches of events into the store.

A body is a JSON array (or one object) or NDJSON of events, optionally gzip.
Admission control (:mod:`~xebench.service.admission`) answers 429 before the
body is read when the bytes or the work in flight are at their bound. The
batch is decompressed and validated whole off the event loop (the fast
columnar path, :func:`~xebench.ingest.predictions.prediction_table`, in the
worker processes of :mod:`~xebench.service.validation` for predictions;
:func:`~xebench.ingest.labels.label_table` in a validation thread for labels; 422
with one entry per bad event, nothing stored), queued for the single writer as an
Arrow table and answered only once committed: 200
``{"accepted", "inserted", "duplicates", ...}``; 409 when an event reuses a
stored (model, request_id) with a different payload; 413 / 415 for the body;
429 / 503 with ``Retry-After`` under back-pressure or while the store is
reopened.

Example:
    >>> from fastapi.testclient import TestClient
    >>> from xebench.service.app import create_app
    >>> from xebench.store import EventStore
    >>> with TestClient(create_app(EventStore(":memory:"))) as client:
    ...     _ = client.post("/v1/predictions", json=[
    ...         {"request_id": "r1", "model": "fraud", "probabilities": 0.8}])
    ...     client.post("/v1/labels", json=[{"request_id": "r1", "label": 1}]).json()
    {'accepted': 1, 'inserted': 1, 'duplicates': 0, 'joined': 1, 'pending': 0}
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, cast

import pyarrow as pa
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from ...ingest.events import (
    BatchError,
    LabelEvent,
    PredictionEvent,
    decode_body,
    label_columns,
    label_table,
    prediction_columns,
)
from ...ingest.sequences import SequenceEvent, parse_sequences
from ...store.event_store import WriteOutcome
from ..admission import Ticket
from ..auth import Principal, principal
from ..memory import LARGE, release_memory
from ..openapi import IngestAnswer, event_body, responses
from ..state import ServiceState

__all__ = ["INGEST_PATHS", "ingest", "router"]

router = APIRouter(tags=["ingest"])


def _outcome(outcome: WriteOutcome, n: int, kind: str) -> JSONResponse:
    if outcome.conflicts:
        conflicts = [
            {
                "index": c.index,
                "field": f"/{c.index}{c.field}",
                "model": c.model,
                "request_id": c.request_id,
                "message": c.message,
                **(
                    {}
                    if c.stored_classes is None
                    else {
                        "stored_classes": list(c.stored_classes),
                        "classes": list(c.classes or ()),
                    }
                ),
            }
            for c in outcome.conflicts[:100]
        ]
        n, first = len(outcome.conflicts), outcome.conflicts[0]
        if first.stored_classes is None:
            detail = (
                f"{n} event(s) reuse a stored (model, request_id) with a different payload; "
                "nothing of the batch was stored"
            )
        else:
            detail = (
                f"{n} event(s) carry another class list than their model version's (first: "
                f"{first.message}); nothing of the batch was stored"
            )
        return JSONResponse({"detail": detail, "conflicts": conflicts}, status_code=409)
    body: dict[str, Any] = {
        "accepted": n,
        "inserted": outcome.inserted,
        "duplicates": outcome.duplicates,
    }
    if kind == "labels":
        body.update(joined=outcome.joined, pending=outcome.pending)
        if outcome.corrected:
            body["corrected"] = outcome.corrected
    return JSONResponse(body)


_INLINE = 16 * 1024  # bytes of body validated on the event loop itself (~50 events)


def _declared_size(request: Request, limit: int) -> int:
    declared = request.headers.get("content-length")
    return min(int(declared), limit) if declared is not None and declared.isdigit() else 0


def _validate(
    raw: bytes,
    request: Request,
    kind: str,
    who: Principal,
    state: ServiceState,
    ticket: Ticket,
    small: bool = False,
) -> pa.Table | dict[str, list[Any]]:
    """Decompress and validate a body into its table (in a validation thread); a small
    body (``small``) into its columns, which the writer merges with the other requests
    of its commit into one table (cheaper than a table per request of a few events)."""
    limits, admission = state.config.limits, state.admission
    body, ndjson = decode_body(
        raw,
        request.headers.get("content-type"),
        request.headers.get("content-encoding"),
        limits,
        reserve=lambda size: admission.grow(ticket, size),
    )
    if kind == "predictions":
        if small:
            return prediction_columns(
                body, tenant=who.tenant, ndjson=ndjson, limits=limits, pii=state.config.pii
            )
        table = state.workers.prediction_table(body, tenant=who.tenant, ndjson=ndjson)
        if len(body) > LARGE:
            release_memory()
        return table
    if kind == "sequences":  # a language model's scored sequences: always a table
        return parse_sequences(
            body, tenant=who.tenant, ndjson=ndjson, limits=limits, pii=state.config.pii
        )
    store = state.writer.store
    # Labels need the store (each model's known classes): validated in this thread,
    # through the columnar fast path (label_table) unless the body is small.
    parse = label_columns if small else label_table
    return parse(
        body,
        tenant=who.tenant,
        ndjson=ndjson,
        limits=limits,
        known_labels=lambda model: store.known_labels(who.tenant, model),
    )


async def _ingest(request: Request, kind: str, who: Principal, state: ServiceState) -> JSONResponse:
    # Refuse before reading and validating: under overload, parsing bodies that
    # will be refused anyway would starve the requests that can be served.
    started = time.perf_counter()  # GET /metrics: xebench_ingest_latency_seconds
    writer = state.writer
    writer.check_room()
    ticket = state.admission.admit(_declared_size(request, state.config.limits.max_body_bytes))
    try:
        raw = await state.read_body(request, ticket)
        if len(raw) <= _INLINE and kind != "sequences":  # a few events: columns, on the loop
            columns = cast(
                dict[str, list[Any]], _validate(raw, request, kind, who, state, ticket, True)
            )
            n = len(columns["fp"])
            request.state.events = n
            outcome = await writer.write(kind, columns)
        else:
            # In a thread: measured 17,200 events/s against 12,600 inline on the event
            # loop (batches of 500 at 100,000 offered): the loop keeps answering meanwhile.
            table = cast(
                pa.Table,
                await asyncio.get_running_loop().run_in_executor(
                    state.validation, _validate, raw, request, kind, who, state, ticket
                ),
            )
            del raw
            n = table.num_rows
            request.state.events = n
            # A sequence is a prediction row of its model, with its token summary.
            outcome = await writer.write_table(_STORED.get(kind, kind), table)
    finally:
        state.admission.release(ticket)
    # GET /metrics: xebench_events_total and the latency of the acknowledged batches.
    state.prometheus.counters.ingested(who.tenant, kind, outcome, n, time.perf_counter() - started)
    return _outcome(outcome, n, kind)


_INGEST_ERRORS = responses(400, 401, 403, 409, 413, 415, 422, 429, 503)


# The ingest routes take no FastAPI dependency: solving them (the bearer scheme, the
# state) cost ~60 us per request, a fifth of a single event's time on the event loop.
# The caller is checked by the same function (auth.principal); the OpenAPI document
# declares the bearer scheme as the dependency would.
def _openapi(event: type) -> dict[str, Any]:
    return {**event_body(event), "security": [{"HTTPBearer": []}]}


#: The ingest paths and the kind of event each takes (:mod:`~xebench.service.lane`).
INGEST_PATHS = {
    "/v1/predictions": "predictions",
    "/v1/labels": "labels",
    "/v1/lm/tokens": "sequences",
}
#: The store's kind of each event kind (a scored sequence is a prediction row).
_STORED = {"sequences": "predictions"}


async def ingest(request: Request, kind: str) -> JSONResponse:
    """Answer an ingest request of ``kind`` (``"predictions"`` or ``"labels"``): the
    caller checked, the body admitted, validated, committed; the exceptions of a refusal
    (401 / 403 / 413 / 415 / 422 / 429 / 503) are the app's handlers' to answer.

    Example:
        >>> from fastapi.testclient import TestClient
        >>> from xebench.service.app import create_app
        >>> from xebench.store import EventStore
        >>> with TestClient(create_app(EventStore(":memory:"))) as client:
        ...     client.post("/v1/predictions", json={"request_id": "r", "model": "m",
        ...                                          "probabilities": 0.5}).json()
        {'accepted': 1, 'inserted': 1, 'duplicates': 0}
    """
    state = request.app.state.xebench
    try:
        return await _ingest(request, kind, principal(request, "ingest"), state)
    except BatchError as error:  # GET /metrics: the events of a batch refused with 422
        state.prometheus.counters.refused(getattr(request.state, "tenant", None), kind, error)
        raise


@router.post(
    "/v1/predictions",
    summary="Send prediction events",
    openapi_extra=_openapi(PredictionEvent),
    responses={200: {"model": IngestAnswer}, **_INGEST_ERRORS},
)
async def post_predictions(request: Request) -> JSONResponse:
    """Store a batch of predictions; answered once durably committed."""
    return await ingest(request, "predictions")


@router.post(
    "/v1/labels",
    summary="Send label events",
    openapi_extra=_openapi(LabelEvent),
    responses={200: {"model": IngestAnswer}, **_INGEST_ERRORS},
)
async def post_labels(request: Request) -> JSONResponse:
    """Store a batch of labels; a label whose prediction has not arrived waits for it."""
    return await ingest(request, "labels")


@router.post(
    "/v1/lm/tokens",
    summary="Send a language model's scored sequences",
    openapi_extra=_openapi(SequenceEvent),
    responses={200: {"model": IngestAnswer}, **_INGEST_ERRORS},
)
async def post_lm_tokens(request: Request) -> JSONResponse:
    """Store a batch of scored sequences (each token's log-probability, and the text or its
    bytes); the windows of the model then report perplexity and bits per byte."""
    return await ingest(request, "sequences")
