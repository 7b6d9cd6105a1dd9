"""Drill-down reads beside a window: cohort ranking, reliability curve, extreme events.

The web dashboard (``routers/dashboard.py``) shows the same answers.

- ``GET /v1/cohorts``: every value of a cohort ``key`` in the window against a
  ``baseline`` (``previous``, ``reference`` or ``range:FROM/TO``), the most
  degraded first, with intervals, p-values and Holm's adjusted p-values.
- ``GET /v1/reliability``: the window's reliability curve (``bins``, default the
  ECE's 15), its ECE and the score histogram of every prediction.
- ``GET /v1/events``: the window's labelled events with the highest log loss
  (``order=loss``) or the latest (``order=recent``), at most 100; the one route
  that reads raw events rather than buckets.

Parameters are those of ``GET /v1/metrics`` (``model``, ``version``, ``cohort``,
``window`` or ``from`` / ``to``); a model the tenant never sent is a 404, a bad
parameter a 422 naming it.

Example:
    >>> from fastapi.testclient import TestClient
    >>> from xebench.service.app import create_app
    >>> from xebench.store import EventStore
    >>> with TestClient(create_app(EventStore(":memory:"))) as client:
    ...     client.get("/v1/events", params={"model": "fraud"}).json()
    {'detail': "no model 'fraud'"}
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from ...monitor.events import MAX_EVENTS
from ...monitor.scope import Scope
from ...stats.score_calibration import ECE_BINS, FINE_BINS
from ..answers import CohortsAnswer, EventsAnswer, ReliabilityAnswer
from ..auth import Reader
from ..openapi import responses
from ..state import State
from .monitoring import Cohort, Confidence, From, MinSamples, To, Window

__all__ = ["router"]

router = APIRouter()

_READ_ERRORS = responses(401, 403, 404, 422)


@router.get(
    "/v1/cohorts",
    summary="Cohort values ranked by degradation against a baseline",
    tags=["monitoring"],
    responses=_READ_ERRORS,
    response_model=CohortsAnswer,
)
def get_cohorts(
    who: Reader,
    state: State,
    model: str,
    key: Annotated[
        str,
        Query(
            description="A cohort key, e.g. region, or a configured crossing "
            "(monitoring.cohort_crossings), e.g. region,device."
        ),
    ],
    version: str | None = None,
    window: Window = None,
    start: From = None,
    end: To = None,
    baseline: Annotated[
        str, Query(description="previous (default), reference or range:FROM/TO.")
    ] = "previous",
    limit: Annotated[
        int | None, Query(ge=1, le=10_000, description="Keep the first values of the ranking.")
    ] = None,
    confidence: Confidence = 0.95,
    min_samples: MinSamples = None,
) -> dict[str, Any]:
    """Each value of ``key``: window and baseline log loss with intervals, the delta
    (window minus baseline: positive is worse) with its interval and p-value, and
    Holm's adjusted p-value; inconclusive values (too few labels) last."""
    monitor = state.monitor_of(who, model)
    scope = Scope(who.tenant, model, version, None, window, start, end)
    return monitor.cohort_ranking(
        scope,
        key,
        baseline=baseline,
        limit=limit,
        confidence=confidence,
        min_samples=min_samples,
    ).to_dict()


@router.get(
    "/v1/reliability",
    summary="Reliability curve and score histogram of a window",
    tags=["monitoring"],
    responses=_READ_ERRORS,
    response_model=ReliabilityAnswer,
)
def get_reliability(
    who: Reader,
    state: State,
    model: str,
    version: str | None = None,
    cohort: Cohort = None,
    window: Window = None,
    start: From = None,
    end: To = None,
    bins: Annotated[
        int,
        Query(ge=1, le=FINE_BINS, description=f"Uniform bins; must divide {FINE_BINS}."),
    ] = ECE_BINS,
) -> dict[str, Any]:
    """Per bin of the calibration score: labelled weight, mean predicted, observed
    frequency; the ECE over the bins; the histogram of every prediction's score."""
    monitor = state.monitor_of(who, model)
    return monitor.reliability(
        Scope(who.tenant, model, version, cohort, window, start, end), bins=bins
    )


@router.get(
    "/v1/events",
    summary="A window's labelled events with the highest log loss, or the latest",
    tags=["monitoring"],
    responses=_READ_ERRORS,
    response_model=EventsAnswer,
)
def get_events(
    who: Reader,
    state: State,
    model: str,
    version: str | None = None,
    cohort: Cohort = None,
    window: Window = None,
    start: From = None,
    end: To = None,
    order: Annotated[str, Query(description="loss (highest first) or recent.")] = "loss",
    limit: Annotated[
        int, Query(ge=1, le=MAX_EVENTS, description=f"Events, 1 to {MAX_EVENTS}.")
    ] = 20,
) -> dict[str, Any]:
    """Labelled events of the window with their label, the probability given to it,
    their log loss, cohort and features (as stored, under the PII policy)."""
    monitor = state.monitor_of(who, model)
    return monitor.extreme_events(
        Scope(who.tenant, model, version, cohort, window, start, end), limit=limit, order=order
    )
