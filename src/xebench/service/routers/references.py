"""``PUT``, ``GET`` and ``DELETE /v1/references/{model}``: a drift reference given as data.

The uploaded file (CSV, JSON Lines or Parquet) is counted in the model's
monitoring bins and only the counts are kept; ``GET
/v1/drift?reference=uploaded`` compares a window with them.

Example:
    >>> from fastapi.testclient import TestClient
    >>> from xebench.service.app import create_app
    >>> from xebench.store import EventStore
    >>> with TestClient(create_app(EventStore(":memory:"))) as client:
    ...     _ = client.post("/v1/predictions", json=[
    ...         {"request_id": "r1", "model": "fraud", "probabilities": 0.8}])
    ...     response = client.get("/v1/references/fraud")
    ...     print(response.status_code, response.json())
    404 {'detail': "model 'fraud' has no uploaded reference"}
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool

from ...errors import DataError
from ...ingest.events import BatchError, decompress_body, media_type
from ...monitor.references import UPLOAD_TYPES, count_tables, read_upload
from ...store.event_store import STORE_FAILURES
from ..auth import Ingester, Reader
from ..openapi import ErrorBody, responses
from ..state import State
from ..writer import StoreUnavailable

__all__ = ["router"]

router = APIRouter(tags=["monitoring"])


def _summary(model: str, found: dict[str, Any]) -> dict[str, Any]:
    return {
        "model": model,
        "rows": found["rows"],
        "source": found["source"],
        "uploaded_at": found["uploaded_at"].isoformat().replace("+00:00", "Z"),
        "features": {name: int(c.sum()) for name, c in found["counts"].items()},
    }


def _no_reference(model: str) -> HTTPException:
    return HTTPException(404, f"model {model!r} has no uploaded reference")


@router.put(
    "/v1/references/{model}",
    summary="Upload a drift reference",
    responses=responses(401, 403, 404, 409, 413, 415, 422, 503, conflict=ErrorBody),
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
async def put_reference(
    model: str, request: Request, who: Ingester, state: State
) -> dict[str, Any]:
    """Store a CSV, JSON Lines or Parquet file as ``model``'s drift reference
    (``GET /v1/drift?reference=uploaded``): each column named like a monitored
    feature is counted in that feature's bins and only the counts are kept."""
    state.monitor_of(who, model)
    media = media_type(request.headers.get("content-type"))
    if media not in UPLOAD_TYPES:
        raise HTTPException(
            415,
            f"unsupported content type {media or '(none)'!r}: send the reference as "
            + ", ".join(sorted(UPLOAD_TYPES)),
        )
    body = decompress_body(
        await state.read_body(request),
        request.headers.get("content-encoding"),
        state.config.limits,
    )
    bins = state.store.buckets.feature_bins(who.tenant, model)
    if not bins:
        raise HTTPException(
            409,
            f"model {model!r} has no monitored features with fixed bins yet (bins are "
            "learned from its first predictions' features): upload the reference later",
        )
    try:
        counted = await run_in_threadpool(lambda: count_tables([read_upload(body, media)], bins))
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
            state.store.put_reference, who.tenant, model, counted.counts, counted.rows, source
        )
    except STORE_FAILURES as exc:  # nothing was stored: the client retries
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise StoreUnavailable(reason, 5.0) from None
    found = state.store.reference(who.tenant, model)
    assert found is not None
    return {
        **_summary(model, found),
        "ignored_columns": counted.ignored,
        "missing_features": sorted(set(bins) - set(counted.counts)),
    }


@router.get(
    "/v1/references/{model}",
    summary="The uploaded drift reference",
    responses=responses(401, 403, 404, 422),
)
def get_reference(model: str, who: Reader, state: State) -> dict[str, Any]:
    """Rows, source, upload time and counted values per feature; 404 when none."""
    state.monitor_of(who, model)
    found = state.store.reference(who.tenant, model)
    if found is None:
        raise _no_reference(model)
    return _summary(model, found)


@router.delete(
    "/v1/references/{model}",
    summary="Remove the uploaded drift reference",
    responses=responses(401, 403, 404, 422),
)
def delete_reference(model: str, who: Ingester, state: State) -> dict[str, Any]:
    """Remove ``model``'s uploaded reference; 404 when there is none."""
    state.monitor_of(who, model)
    if not state.store.delete_reference(who.tenant, model):
        raise _no_reference(model)
    return {"model": model, "deleted": True}
