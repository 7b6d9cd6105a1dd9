"""``POST /v1/predictions`` and ``POST /v1/labels``: batches of events into the store.

A body is a JSON array (or one object) or NDJSON of events, optionally gzip.
The batch is validated whole (422 with one entry per bad event, nothing
stored), queued for the single writer and answered only once committed: 200
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

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import TypeAdapter

from ...ingest.events import (
    JSON_TYPES,
    NDJSON_TYPES,
    LabelEvent,
    PredictionEvent,
    decode_body,
    label_columns,
    prediction_columns,
)
from ...store.event_store import WriteOutcome
from ..auth import Ingester, Principal
from ..state import ServiceState, State

__all__ = ["router"]

router = APIRouter(tags=["ingest"])


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
        if outcome.corrected:
            body["corrected"] = outcome.corrected
    return JSONResponse(body)


async def _ingest(request: Request, kind: str, who: Principal, state: ServiceState) -> JSONResponse:
    # Refuse before reading and validating: under overload, parsing bodies that
    # will be refused anyway would starve the requests that can be served.
    writer, limits = state.writer, state.config.limits
    writer.check_room()
    raw = await state.read_body(request)
    body, ndjson = decode_body(
        raw,
        request.headers.get("content-type"),
        request.headers.get("content-encoding"),
        limits,
    )
    if kind == "predictions":
        columns = prediction_columns(
            body, tenant=who.tenant, ndjson=ndjson, limits=limits, pii=state.config.pii
        )
    else:
        columns = label_columns(
            body,
            tenant=who.tenant,
            ndjson=ndjson,
            limits=limits,
            known_labels=lambda model: writer.store.known_labels(who.tenant, model),
        )
    n = len(columns["fp"])
    request.state.events = n
    outcome = await writer.write(kind, columns)
    return _outcome(outcome, n, kind)


@router.post(
    "/v1/predictions", summary="Send prediction events", openapi_extra=_body_schema(PredictionEvent)
)
async def post_predictions(request: Request, who: Ingester, state: State) -> JSONResponse:
    """Store a batch of predictions; answered once durably committed."""
    return await _ingest(request, "predictions", who, state)


@router.post("/v1/labels", summary="Send label events", openapi_extra=_body_schema(LabelEvent))
async def post_labels(request: Request, who: Ingester, state: State) -> JSONResponse:
    """Store a batch of labels; a label whose prediction has not arrived waits for it."""
    return await _ingest(request, "labels", who, state)
