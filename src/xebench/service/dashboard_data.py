"""What each dashboard view shows, as the API's own JSON documents.

The three views (executive, on-call, debug; :mod:`xebench.report.dashboard`
draws them) ask the same questions as the HTTP API, of the same
:class:`~xebench.monitor.windows.Monitor`, SLO evaluator and store, and get
the same documents: a number on a page is the number ``GET /v1/metrics``,
``/v1/slos``, ``/v1/cohorts``, ``/v1/drift`` ... answer for the same query.
Each builder returns a plain dict (the template's context); nothing here
formats text.

Every question is asked at one ``now`` fixed when the page is built, so the
windows of a page agree with each other.

Example:
    >>> from xebench.service.app import create_app
    >>> from xebench.store import EventStore
    >>> state = create_app(EventStore(":memory:")).state.xebench
    >>> page = ViewRequest(state, "default", now=datetime(2026, 1, 1, tzinfo=UTC))
    >>> executive(page)["models"]
    []
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import pairwise
from typing import TYPE_CHECKING, Any

from ..errors import InvalidInputError, XebenchError
from ..monitor.scope import Scope, iso
from ..monitor.slo import evaluate_slos, slo_document
from ..store import queries
from ..store.crossings import crossing_key, is_crossing, normalise

if TYPE_CHECKING:
    from .state import ServiceState

__all__ = ["ViewRequest", "debug", "executive", "model_names", "oncall"]

#: The windows of the on-call view, and the step of its 24-hour chart.
ONCALL_WINDOWS = ("1h", "6h", "24h")
ONCALL_STEP = "30m"
#: The executive trend: days shown, one point a day.
TREND_WINDOW, TREND_STEP = "30d", "1d"
#: Cohort values ranked per key on the executive view.
TOP_COHORTS = 5
#: Windows a user may pick on the debug view.
DEBUG_WINDOWS = ("1h", "6h", "24h", "7d", "30d")
#: Recent events shown on the debug view: the worst of the window's last hour (a read
#: of raw events, not buckets: ~50 ms an hour at 1e7 events a week, ~1 s a day).
EXTREME_EVENTS, EVENTS_WINDOW = 20, "1h"
#: Versions a canary decision is shown for (the last ones in version order).
DECISION_VERSIONS = 5


@dataclass
class ViewRequest:
    """One page's question: the tenant, its filters, and the moment it is asked.

    Filters are the query string's (shareable URLs): ``model``, ``version``,
    ``cohort`` (``key:value``), ``window`` and ``key`` (a cohort key).
    """

    state: ServiceState
    tenant: str
    model: str | None = None
    version: str | None = None
    cohort: str | None = None
    window: str | None = None
    key: str | None = None
    now: datetime = field(default_factory=lambda: datetime.now(UTC))

    def scope(self, model: str, window: str, **fields: Any) -> Scope:
        """The scope of ``model`` over ``window`` ending at this page's ``now``."""
        values = {"version": self.version, "cohort": self.cohort, **fields}
        return Scope(self.tenant, model, window=window, now=self.now, **values)

    _models: list[tuple[str, str]] | None = field(default=None, repr=False)

    @property
    def monitor(self) -> Any:
        """The service's monitor, over the writer's current store."""
        monitor = self.state.monitor
        monitor.store = self.state.store
        return monitor

    @property
    def models(self) -> list[tuple[str, str]]:
        """The tenant's (model, version) pairs, sorted (from the store's memory)."""
        if self._models is None:
            self._models = self.state.store.model_versions(self.tenant)
        return self._models


#: The questions of one page are independent and DuckDB runs them without the GIL:
#: they are asked side by side (a page costs its slowest question, not their sum).
_QUESTIONS = ThreadPoolExecutor(4, thread_name_prefix="xebench-dashboard")


def _together(**questions: Callable[[], Any]) -> dict[str, Any]:
    """Every question's answer, asked concurrently; the first error is raised.

    Example:
        >>> _together(a=lambda: 1, b=lambda: 2)
        {'a': 1, 'b': 2}
    """
    futures = {name: _QUESTIONS.submit(ask) for name, ask in questions.items()}
    return {name: future.result() for name, future in futures.items()}


def model_names(page: ViewRequest) -> list[str]:
    """The tenant's models, sorted (each once, whatever its versions).

    Example:
        >>> from xebench.service.app import create_app
        >>> from xebench.store import EventStore
        >>> model_names(ViewRequest(create_app(EventStore(":memory:")).state.xebench, "t"))
        []
    """
    return sorted({name for name, _version in page.models})


def _versions(page: ViewRequest, model: str) -> list[str]:
    return [version for name, version in page.models if name == model]


def _doc(answer: Any) -> dict[str, Any]:
    """An answer of the monitor as its JSON document (a result object or a dict)."""
    return answer if isinstance(answer, dict) else answer.to_dict()


def _slos(page: ViewRequest) -> dict[str, Any]:
    """``/v1/slos``'s document for the tenant, from the service's minute loop (the same
    evaluator; judging 28 days of minutes per SLO at every page load would cost a
    second). ``pending`` is true before the loop's first evaluation; without a loop
    (an app run without its lifespan) the SLOs are judged now."""
    runner = page.state.slo_runner
    slos = [slo for slo in page.state.config.slos if slo.tenant == page.tenant]
    if runner is not None and runner.last is not None:
        statuses, pending = runner.latest(page.tenant), False
    elif runner is not None and slos:
        statuses, pending = [], True
    else:
        statuses, pending = (evaluate_slos(page.monitor, slos, page.now) if slos else []), False
    alerting = page.state.config.alerting
    document = slo_document(statuses, page.now, alerting.suppressed if alerting else None)
    return {**document, "pending": pending}


def _thresholds(slos: list[dict[str, Any]], model: str, sli: str) -> list[dict[str, Any]]:
    """The objectives of ``model``'s SLOs on ``sli`` (the model as a whole)."""
    return [
        {"y": slo["objective"], "label": f"SLO {slo['name']}: {sli} {_op(slo)} {slo['objective']}"}
        for slo in slos
        if slo["model"] == model and slo["sli"] == sli and slo["cohort"] is None
    ]


def _op(slo: dict[str, Any]) -> str:
    return "<=" if slo["direction"] == "lower" else ">="


def cohort_keys(page: ViewRequest, model: str) -> list[str]:
    """The cohort keys ``model`` has buckets for, sorted."""
    with page.state.store.cursor() as cursor:
        return queries.cohort_keys(cursor, page.tenant, model)


def _ranked_key(
    asked: str | None, keys: list[str], crossings: tuple[tuple[str, ...], ...]
) -> list[str]:
    """The cohort key the executive view ranks: ``asked`` if the model has it (a
    crossing in any order of its keys), else the first configured crossing it has
    (issue 15: "a multi-key cohort such as region x device where configured"), else
    its first key."""
    if asked is not None and is_crossing(asked):
        with contextlib.suppress(InvalidInputError):
            asked = normalise(asked, None, crossings, "key")[0]
    if asked in keys:
        return [asked]  # type: ignore[list-item]
    crossed = [crossing_key(c) for c in crossings if crossing_key(c) in keys]
    return (crossed or keys)[:1]


def executive(page: ViewRequest) -> dict[str, Any]:
    """Per model: the 30-day daily trend of log loss and skill with the SLO objectives,
    the budget left per SLO, coverage, and the cohort values that degraded most."""
    slos = _slos(page)
    names = model_names(page)
    shown = names if page.model is None else [_pick(page, names)]
    monitor = page.monitor
    keys = {model: cohort_keys(page, model) for model in shown}
    # One key per model (?key=, else the first configured crossing the model has, else
    # the first key): a ranking reads 14 days.
    crossings = monitor.store.buckets.config.cohort_crossings
    ranked = {model: _ranked_key(page.key, keys[model], crossings) for model in shown}
    questions: dict[str, Callable[[], Any]] = {}
    for i, model in enumerate(shown):
        trend = page.scope(model, TREND_WINDOW)
        questions[f"series {i}"] = lambda trend=trend: monitor.series(
            trend, step=TREND_STEP
        ).to_dict()["series"]
        questions[f"month {i}"] = lambda trend=trend: monitor.window(trend).to_dict()
        week = page.scope(model, "7d", cohort=None)
        for j, key in enumerate(ranked[model]):
            questions[f"cohorts {i} {j}"] = lambda week=week, key=key: _doc(
                monitor.cohort_ranking(week, key, limit=TOP_COHORTS)
            )
    answers = _together(**questions)
    models = [
        {
            "model": model,
            "series": answers[f"series {i}"],
            "window": answers[f"month {i}"],
            "thresholds": {
                "log_loss": _thresholds(slos["slos"], model, "log_loss"),
                "skill": _thresholds(slos["slos"], model, "skill"),
            },
            "slos": [slo for slo in slos["slos"] if slo["model"] == model],
            "cohort_keys": keys[model],
            "cohorts": [answers[f"cohorts {i} {j}"] for j in range(len(ranked[model]))],
        }
        for i, model in enumerate(shown)
    ]
    return {"at": iso(page.now), "models": models, "model_names": names,
            "slos_pending": slos["pending"]}  # fmt: skip


def _pick(page: ViewRequest, names: list[str]) -> str | None:
    if page.model is not None:
        if page.model not in names:
            raise InvalidInputError("model", "is not a model of this tenant", value=page.model)
        return page.model
    return names[0] if names else None


def _counters(page: ViewRequest) -> dict[str, Any]:
    """The service's own counts since it started: events by kind and outcome, and the
    ingest answers refused for load (429 / 503)."""
    counters = page.state.prometheus.counters
    events = {f"{kind} {outcome}": n for (kind, outcome), n in counters.events(page.tenant).items()}
    refused: dict[str, int] = {}
    for (_method, route, status), n in counters.requests(page.tenant).items():
        if status in ("429", "503", "413", "422") and route.startswith("/v1/"):
            refused[status] = refused.get(status, 0) + n
    return {"events": events, "refused": refused}


def _alerts(page: ViewRequest, slos: dict[str, Any]) -> list[dict[str, Any]]:
    """``/v1/alerts``'s list: the stored alert states with ``alerting:`` configured (and
    recently resolved ones), else the burn-rate alerts that hold now."""
    if page.state.alerting is not None:
        return list(page.state.alerting.states(page.tenant))
    return list(slos["alerts"])


def _decisions(page: ViewRequest, model: str, versions: list[str]) -> list[dict[str, Any]]:
    """The canary decision of each live version against the one before it (24 hours)."""
    out = []
    for before, after in pairwise(versions):
        scope = Scope(page.tenant, model, version=after, window="24h", now=page.now)
        try:
            out.append(page.monitor.compare(scope, f"{model}:{before}").to_dict())
        except XebenchError as error:  # e.g. different class lists: say so, do not fail
            out.append({"candidate": f"{model}:{after}", "baseline": f"{model}:{before}",
                        "error": str(error)})  # fmt: skip
    return out


def oncall(page: ViewRequest) -> dict[str, Any]:
    """For one model: the 1h / 6h / 24h windows with CIs and SLO objectives, the last 24
    hours every 30 minutes, label coverage, lag and queue, alerts, canary decisions and
    the pipeline's health."""
    names = model_names(page)
    model = _pick(page, names)
    slos = _slos(page)
    body: dict[str, Any] = {
        "at": iso(page.now),
        "model_names": names,
        "model": model,
        "alerts": _alerts(page, slos),
        "slos_pending": slos["pending"],
        "status": page.state.store.status(page.tenant, now=page.now),
        "queue": {
            "events": page.state.writer.queued_events,
            "max_events": page.state.writer.max_events,
            "store_failure": page.state.writer.failure,
        },
        "counters": _counters(page),
    }
    if model is None:
        return body
    monitor, live = page.monitor, _versions(page, model)
    answers = _together(
        **{w: (lambda w=w: monitor.window(page.scope(model, w)).to_dict()) for w in ONCALL_WINDOWS},
        series=lambda: monitor.series(page.scope(model, "24h"), step=ONCALL_STEP).to_dict(),
        rate=lambda: monitor.series(page.scope(model, "1h"), step="1m").to_dict(),
        decisions=lambda: (
            _decisions(page, model, live[-DECISION_VERSIONS:]) if page.version is None else []
        ),
    )
    body.update(
        windows=[answers[w] for w in ONCALL_WINDOWS],
        series=answers["series"]["series"],
        rate=[
            {"from": w["from"], "n_predictions": w["n_predictions"]}
            for w in answers["rate"]["series"]
        ],
        thresholds=_thresholds(slos["slos"], model, "log_loss"),
        slos=[slo for slo in slos["slos"] if slo["model"] == model],
        decisions=answers["decisions"],
        versions=live,
    )
    return body


def debug(page: ViewRequest) -> dict[str, Any]:
    """For one model, version, cohort and window: the reliability curve with bin counts,
    the histogram of predicted probabilities, the drift ranking with both histograms,
    the highest-loss recent events, and each version's window on the same traffic."""
    names = model_names(page)
    model = _pick(page, names)
    window = page.window or "24h"
    if window not in DEBUG_WINDOWS:
        raise InvalidInputError(
            "window", f"must be one of {', '.join(DEBUG_WINDOWS)}", value=window
        )
    body: dict[str, Any] = {"at": iso(page.now), "model_names": names, "model": model,
                            "window_name": window, "windows": list(DEBUG_WINDOWS)}  # fmt: skip
    if model is None:
        return body
    scope = page.scope(model, window)
    versions = _versions(page, model)
    monitor = page.monitor
    compare_versions = page.version is None and len(versions) > 1
    body.update(
        _together(
            window=lambda: monitor.window(scope).to_dict(),
            reliability=lambda: _doc(monitor.reliability(scope)),
            drift=lambda: monitor.drift(scope).to_dict(),
            # every debug window is an hour or longer: the worst events of its last hour
            events=lambda: _doc(
                monitor.extreme_events(page.scope(model, EVENTS_WINDOW), limit=EXTREME_EVENTS)
            ),
            cohort_keys=lambda: cohort_keys(page, model),
            by_version=lambda: (
                [monitor.window(page.scope(model, window, version=v)).to_dict() for v in versions]
                if compare_versions
                else []
            ),
        ),
        versions=versions,
    )
    return body
