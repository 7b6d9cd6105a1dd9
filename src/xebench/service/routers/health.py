"""``GET /healthz`` (the process answers) and ``GET /readyz`` (the writer runs, the
store is writable and the write queue has room).

Neither needs a token: they are for the orchestrator's probes.

Example:
    >>> from fastapi.testclient import TestClient
    >>> from xebench.service.app import create_app
    >>> from xebench.store import EventStore
    >>> with TestClient(create_app(EventStore(":memory:"))) as client:
    ...     print(client.get("/healthz").json(), client.get("/readyz").json())
    {'status': 'ok'} {'status': 'ready', 'problems': [], 'queued_events': 0}
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from ..openapi import ReadyBody
from ..state import State

__all__ = ["router"]

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness")
def healthz() -> dict[str, str]:
    """The process answers."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Readiness",
    responses={
        200: {"model": ReadyBody, "description": "Ready."},
        503: {"model": ReadyBody, "description": "Not ready: the problems say why."},
    },
)
def readyz(state: State) -> JSONResponse:
    """Ready when the writer runs, the store is writable and the queue has room."""
    writer = state.writer
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
