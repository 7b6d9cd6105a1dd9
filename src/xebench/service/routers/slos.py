"""``GET /v1/slos`` and ``GET /v1/alerts``: the tenant's SLOs judged as of now (or ``at=``).

Both evaluate at request time -- every acknowledged write is in the answer
(read-your-writes) -- with the same evaluator as ``xebench alerts`` and the
service's minute loop (:func:`xebench.monitor.slo.evaluate_slos`). ``/v1/slos``
answers ``{"at", "slos", "alerts"}`` like ``xebench alerts --json``;
``/v1/alerts`` answers ``{"at", "alerts"}``. A tenant sees its own SLOs only.

Example:
    >>> from fastapi.testclient import TestClient
    >>> from xebench.service.app import create_app
    >>> from xebench.store import EventStore
    >>> with TestClient(create_app(EventStore(":memory:"))) as client:
    ...     client.get("/v1/slos", params={"at": "2026-01-01T00:00:00Z"}).json()
    {'at': '2026-01-01T00:00:00Z', 'slos': [], 'alerts': []}
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from ...errors import InvalidInputError
from ...monitor.scope import iso, parse_time
from ...monitor.slo import evaluate_slos, slo_document
from ..auth import Reader
from ..openapi import responses
from ..state import ServiceState, State

__all__ = ["router"]

router = APIRouter()

At = Annotated[str | None, Query(description="Judge as of this RFC 3339 time (default: now).")]


def _only_at(request: Request) -> None:
    """422 for a query parameter other than ``at``: a mistyped one (``?at_=``) would
    otherwise be ignored and the answer silently be about now."""
    for name in request.query_params:
        if name != "at":
            raise InvalidInputError(name, "is not a parameter of this route (only at=)")


OnlyAt = Depends(_only_at)


def _document(state: ServiceState, tenant: str, at: str | None) -> dict[str, Any]:
    moment = parse_time(at, "at") if at is not None else datetime.now(UTC)
    slos = [slo for slo in state.config.slos if slo.tenant == tenant]
    state.monitor.store = state.store
    statuses = evaluate_slos(state.monitor, slos, moment)
    suppressed = state.config.alerting.suppressed if state.config.alerting else None
    return slo_document(statuses, moment, suppressed)


@router.get(
    "/v1/slos",
    summary="SLOs: verdicts, budgets, burn rates",
    tags=["read"],
    responses=responses(401, 403, 422),
    dependencies=[OnlyAt],
)
def get_slos(who: Reader, state: State, at: At = None) -> dict[str, Any]:
    """Every SLO of the tenant: the latest minute's verdict, the period's good, bad and
    excluded minutes, the budget remaining, burn rates, and the burn-rate alerts that
    hold."""
    return _document(state, who.tenant, at)


@router.get(
    "/v1/alerts",
    summary="Alerts: active and recent",
    tags=["read"],
    responses=responses(401, 403, 422),
    dependencies=[OnlyAt],
)
def get_alerts(who: Reader, state: State, at: At = None) -> dict[str, Any]:
    """The tenant's alerts. With ``alerting:`` configured and no ``at``: the stored alert
    states (pending, firing, suppressed, resolved in the last 24 hours, with ``since``
    and ``last_notified``) and the outbox's delivery counts. Otherwise the burn-rate
    alerts that hold at ``at`` (default now), evaluated at request time."""
    if state.alerting is not None and at is None:
        return {
            "at": iso(datetime.now(UTC)),
            "alerts": state.alerting.states(who.tenant),
            "delivery": state.alerting.outbox_summary(),
        }
    document = _document(state, who.tenant, at)
    return {"at": document["at"], "alerts": document["alerts"]}
