"""``GET /metrics``: the caller's tenant in the Prometheus text format.

No ``/v1`` prefix (Prometheus scrapes ``/metrics`` by default). With tokens
configured it needs a read token, sent by Prometheus as
``authorization: {credentials: TOKEN}`` in the scrape config, and shows that
token's tenant only. The families are listed in docs/service.md ("/metrics");
:mod:`xebench.service.prometheus` builds them.

Example:
    >>> from fastapi.testclient import TestClient
    >>> from xebench.service.app import create_app
    >>> from xebench.store import EventStore
    >>> with TestClient(create_app(EventStore(":memory:"))) as client:
    ...     response = client.get("/metrics")
    >>> response.headers["content-type"]
    'text/plain; version=0.0.4; charset=utf-8'
    >>> "# TYPE xebench_events_total counter" in response.text
    True
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from ..auth import Reader
from ..openapi import responses
from ..prometheus import CONTENT_TYPE
from ..state import State

__all__ = ["router"]

router = APIRouter()


@router.get(
    "/metrics",
    summary="Prometheus exposition of the tenant",
    tags=["monitoring"],
    # Response, not PlainTextResponse: the error answers stay documented as JSON.
    response_class=Response,
    responses={
        200: {
            "description": "The Prometheus text format (version 0.0.4).",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        },
        **responses(401, 403),
    },
)
def get_prometheus_metrics(who: Reader, state: State) -> Response:
    """Model gauges of the 1h / 6h / 24h windows (per version and cohort), drift, SLO
    series and service health, computed at scrape time from the bucket statistics."""
    return Response(state.prometheus.render(state, who.tenant), media_type=CONTENT_TYPE)
