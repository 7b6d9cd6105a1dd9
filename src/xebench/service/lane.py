"""The ingest lane: ``POST /v1/predictions`` and ``POST /v1/labels`` past FastAPI's routing.

A single-event request spends ~300 us of the event loop's time, and half of
it in FastAPI's routing and route machinery (matching every route, the
request-validation and dependency layers, the exit stack), none of which the
ingest routes use: they take the raw request and check the caller themselves.
:class:`IngestLane` answers those two exact paths itself, inside the access
log and the 500 layer, with the same handler
(:func:`~xebench.service.routers.ingest.ingest`) and the app's own exception
handlers for refusals, so the answers are the routes' to the byte
(``tests/service/test_lane.py`` compares them). Every other request -- other
methods, paths, a trailing slash -- goes on to FastAPI; the routes stay
declared there for the OpenAPI document.

Example:
    >>> from fastapi.testclient import TestClient
    >>> from xebench.service.app import create_app
    >>> from xebench.store import EventStore
    >>> app = create_app(EventStore(":memory:"))
    >>> IngestLane in [m.cls for m in app.user_middleware]
    True
    >>> with TestClient(app) as client:
    ...     client.post("/v1/labels", json=[{"request_id": "r1", "label": 1}]).json()
    {'accepted': 1, 'inserted': 1, 'duplicates': 0, 'joined': 0, 'pending': 1}
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from .routers.ingest import INGEST_PATHS, ingest

__all__ = ["IngestLane"]

Handler = Callable[[Request, Exception], Awaitable[Response]]


def _handler(app: Any, error: Exception) -> Handler | None:
    """The app's handler of ``error`` (the nearest class in its MRO), as Starlette looks
    it up; None: nobody handles it (it goes on to the 500 layer)."""
    handlers = getattr(app, "exception_handlers", {})
    for kind in type(error).__mro__:
        if kind in handlers:
            return handlers[kind]  # type: ignore[no-any-return]
    return None


class IngestLane:
    """ASGI middleware: the ingest paths answered without routing (see the module)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        kind = None
        if scope["type"] == "http" and scope["method"] == "POST":
            path, root = scope["path"], scope.get("root_path", "")
            if root and path.startswith(root):
                path = path[len(root) :]
            kind = INGEST_PATHS.get(path)
        if kind is None:
            await self.app(scope, receive, send)
            return
        scope["xebench.route"] = path  # GET /metrics: the route of the request (no routing here)
        request = Request(scope, receive)
        try:
            response = await ingest(request, kind)
        except Exception as error:
            handler = _handler(scope.get("app"), error)
            if handler is None:
                raise
            response = await handler(request, error)
        await response(scope, receive, send)
