"""Reading routes: the tenant's models, windowed metrics, drift and canary/shadow gates.

- ``GET /v1/models`` and ``GET /v1/models/{model}``: what the tenant has sent.
- ``GET /v1/metrics``: one window, or a series with ``step=``, of a model
  (``version``, ``cohort=key:value``, ``window=1h|6h|24h|7d`` or
  ``from``/``to``): counts, label coverage and lag, log loss with CI, Brier,
  ECE, skill, perplexity, ``provisional``; merged from the one-minute buckets.
- ``GET /v1/drift``: KL, JS and PSI per feature, score and label of the
  window against a reference (``reference=rolling|version:V|range:A/B|uploaded``),
  ranked.
- ``GET /v1/compare``: the gate decision for ``candidate`` vs ``baseline``
  (``model`` or ``model:version``): canary (unpaired) or shadow (paired).

A model the tenant has sent no prediction of is a 404.

Example:
    >>> from fastapi.testclient import TestClient
    >>> from xebench.service.app import create_app
    >>> from xebench.store import EventStore
    >>> with TestClient(create_app(EventStore(":memory:"))) as client:
    ...     client.get("/v1/metrics", params={"model": "fraud"}).json()
    {'detail': "no model 'fraud'"}
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query

from ...errors import InvalidInputError
from ...monitor.scope import Scope
from ..auth import Reader
from ..openapi import responses
from ..state import State

__all__ = ["Cohort", "Confidence", "From", "MinSamples", "To", "Window", "router"]

router = APIRouter()

# Query parameters shared by the monitoring routes (module level: FastAPI resolves
# the annotations by name).
Window = Annotated[
    str | None, Query(description="Rolling window: 1h, 6h, 24h, 7d or any duration (30m).")
]
From = Annotated[str | None, Query(alias="from", description="Start, RFC 3339.")]
To = Annotated[str | None, Query(alias="to", description="End (exclusive), RFC 3339.")]
Cohort = Annotated[str | None, Query(description="key:value, e.g. region:eu.")]
Confidence = Annotated[
    float, Query(gt=0, lt=1, allow_inf_nan=False, description="Confidence level, in (0, 1).")
]
MinSamples = Annotated[
    int | None, Query(ge=0, le=2**63 - 1, description="Fewer events: inconclusive / skipped.")
]


@router.get(
    "/v1/models",
    summary="Models and versions of the tenant",
    tags=["read"],
    responses=responses(401, 403),
)
def get_models(who: Reader, state: State) -> dict[str, Any]:
    """Every (model, version) with its prediction, label and joined counts."""
    return {"models": state.store.models(who.tenant)}


@router.get(
    "/v1/models/{model}",
    summary="One model's versions",
    tags=["read"],
    responses=responses(401, 403, 404, 422),
)
def get_model(model: str, who: Reader, state: State) -> dict[str, Any]:
    """The versions of ``model``; 404 when the tenant has no such model."""
    rows = [row for row in state.store.models(who.tenant) if row["model"] == model]
    if not rows:
        raise HTTPException(404, f"no model {model!r}")
    return {"model": model, "versions": rows}


_READ_ERRORS = responses(401, 403, 404, 422)


@router.get(
    "/v1/metrics",
    summary="Windowed metrics of a model",
    tags=["monitoring"],
    responses=_READ_ERRORS,
)
def get_metrics(
    who: Reader,
    state: State,
    model: str,
    version: str | None = None,
    cohort: Cohort = None,
    window: Window = None,
    start: From = None,
    end: To = None,
    step: Annotated[str | None, Query(description="Series step, e.g. 1h.")] = None,
    base: Annotated[str, Query(description="Log base: e, 2 or 10.")] = "e",
    confidence: Confidence = 0.95,
) -> dict[str, Any]:
    """One window (default: the last 24h), or ``{"series": [...]}`` with ``step``."""
    units: str | int = base if base == "e" else _base(base)
    scope = Scope(who.tenant, model, version, cohort, window, start, end)
    monitor = state.monitor_of(who, model)
    if step is not None:
        return monitor.series(scope, step=step, base=units, confidence=confidence).to_dict()
    return monitor.window(scope, base=units, confidence=confidence).to_dict()


@router.get(
    "/v1/drift",
    summary="Drift of features, score and labels",
    tags=["monitoring"],
    responses=_READ_ERRORS,
)
def get_drift(
    who: Reader,
    state: State,
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
    min_samples: MinSamples = None,
    threshold: Annotated[
        float | None,
        Query(ge=0, allow_inf_nan=False, description="Divergence above which a feature drifted."),
    ] = None,
) -> dict[str, Any]:
    """Per-feature KL, JS and PSI of the window against the reference, drifted first."""
    if reference is not None and reference.startswith("file:"):
        raise InvalidInputError(
            "reference", "file references are configured (monitoring.models), not passed"
        )
    return (
        state.monitor_of(who, model)
        .drift(
            Scope(who.tenant, model, version, cohort, window, start, end),
            reference=reference,
            min_samples=min_samples,
            threshold=threshold,
        )
        .to_dict()
    )


@router.get(
    "/v1/compare",
    summary="Canary or shadow gate decision",
    tags=["monitoring"],
    responses=_READ_ERRORS,
)
def get_compare(
    who: Reader,
    state: State,
    candidate: Annotated[str, Query(description="model or model:version.")],
    baseline: Annotated[str, Query(description="model or model:version.")],
    cohort: Cohort = None,
    window: Window = None,
    start: From = None,
    end: To = None,
    mode: Annotated[str, Query(description="auto, canary or shadow.")] = "auto",
    max_degradation: Annotated[
        float | None,
        Query(allow_inf_nan=False, description="Allowed relative degradation (0.02: 2%)."),
    ] = None,
    min_samples: MinSamples = None,
    confidence: Annotated[
        float | None,
        Query(gt=0, lt=1, allow_inf_nan=False, description="Confidence level, in (0, 1)."),
    ] = None,
) -> dict[str, Any]:
    """Pass, fail or inconclusive, with the delta, its interval and the sample sizes."""
    for name in (candidate, baseline):
        state.monitor_of(who, name.partition(":")[0])  # 404 for a model never sent
    scope = Scope.named(
        who.tenant, candidate, "candidate", cohort=cohort, window=window, start=start, end=end
    )
    return state.monitor.compare(
        scope,
        baseline,
        mode=mode,
        max_degradation=max_degradation,
        min_samples=min_samples,
        confidence=confidence,
    ).to_dict()


def _base(text: str) -> int:
    if text not in ("2", "10"):
        raise InvalidInputError("base", "must be e, 2 or 10", value=text)
    return int(text)
