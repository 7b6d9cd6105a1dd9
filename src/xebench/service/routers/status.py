"""``GET /v1/status``: the ingestion health of the caller's tenant.

Counts are the tenant's own (a token sees nothing of other tenants): stored
predictions and labels, pending labels and orphans (pending longer than the
join window), label and prediction arrival rates, the ingest lag (ingest
minus event time) of the last hour, the last ingest. The writer's queue
depth is the service's (shared by every tenant), and the retention section
is the configured policy: its horizons now and when it last ran.

Example:
    >>> from fastapi.testclient import TestClient
    >>> from xebench.service.app import create_app
    >>> from xebench.store import EventStore
    >>> with TestClient(create_app(EventStore(":memory:"))) as client:
    ...     _ = client.post("/v1/labels", json=[{"request_id": "r1", "label": 1}])
    ...     status = client.get("/v1/status").json()
    >>> status["tenant"], status["stored"], status["pending_labels"], status["queue"]["events"]
    ('default', {'predictions': 0, 'labels': 1}, 1, 0)
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter

from ..auth import Reader
from ..openapi import responses
from ..state import State

__all__ = ["router"]

router = APIRouter()


@router.get(
    "/v1/status",
    summary="Ingestion health of the tenant",
    tags=["read"],
    responses=responses(401, 403),
)
def get_status(who: Reader, state: State) -> dict[str, Any]:
    """Pending labels, orphans, arrival rates, ingest lag, queue depth, stored events and
    the retention horizon (docs/service.md)."""
    now = datetime.now(UTC)
    store, writer, policy = state.store, state.writer, state.config.retention
    body: dict[str, Any] = {"tenant": who.tenant, "at": now.isoformat()}
    body.update(store.status(who.tenant, now=now))
    body["join_window_s"] = store.join_window.total_seconds()
    body["queue"] = {
        "events": writer.queued_events,
        "max_events": writer.max_events,
        "store_failure": writer.failure,
    }
    last = next((task.last for task in writer.tasks if task.name == "retention"), None)
    body["retention"] = {
        "events_s": None if policy.events is None else policy.events.total_seconds(),
        "minutes_s": None if policy.minutes is None else policy.minutes.total_seconds(),
        "hours_s": None if policy.hours is None else policy.hours.total_seconds(),
        "interval_s": policy.interval.total_seconds() if policy.active else None,
        "horizons": {name: at.isoformat() for name, at in policy.horizons(now).items()},
        # When it ran and whether it worked; what it deleted spans tenants, so not here.
        "last_run": None
        if last is None
        else {"at": last["at"], "seconds": last["seconds"], "ok": "error" not in last},
    }
    return body
