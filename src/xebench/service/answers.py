"""Response models of the dashboard's read routes (``/v1/cohorts``, ``/v1/reliability``,
``/v1/events``): the OpenAPI document's description of their answers, which FastAPI
also checks every answer against.

The documents themselves are built by :class:`~xebench.monitor.windows.Monitor`
(``cohort_ranking(...).to_dict()``, ``reliability``, ``extreme_events``); these
models name the same keys.

Example:
    >>> EventsAnswer(model="m", version=None, cohort=None, order="loss", limit=1,
    ...              events=[], **{"from": "2026-01-01T00:00:00Z", "to": "2026-01-01T01:00:00Z"}
    ...              ).model_dump(by_alias=True)["from"]
    '2026-01-01T00:00:00Z'
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "BaselineInfo",
    "CohortEntry",
    "CohortsAnswer",
    "EventEntry",
    "EventsAnswer",
    "HistogramBin",
    "ReliabilityAnswer",
    "ReliabilityBin",
]


class _Ranged(BaseModel):
    """A document of one range: ``from`` / ``to`` (RFC 3339, minute boundaries)."""

    model_config = ConfigDict(populate_by_name=True)

    start: str = Field(alias="from")
    end: str = Field(alias="to")


class BaselineInfo(_Ranged):
    """What a ranking compares with: ``kind`` previous, reference or range; ``version``
    when it is not the window's; ``reference``: the configured spec (kind reference).

    Example:
        >>> BaselineInfo(kind="previous", **{"from": "a", "to": "b"}).version is None
        True
    """

    kind: str
    version: str | None = None
    reference: str | None = None


class CohortEntry(BaseModel):
    """One cohort value of ``GET /v1/cohorts`` (nats; ``delta``: window minus baseline).

    Example:
        >>> CohortEntry(value="eu", n_predictions=1, n_labelled=0, inconclusive=True).delta
    """

    value: str
    n_predictions: int
    n_labelled: int
    log_loss: float | None = None
    log_loss_ci: list[float] | None = None
    baseline_log_loss: float | None = None
    baseline_log_loss_ci: list[float] | None = None
    delta: float | None = None
    delta_ci: list[float] | None = None
    p_value: float | None = None
    p_adjusted: float | None = None
    inconclusive: bool


class CohortsAnswer(_Ranged):
    """``GET /v1/cohorts``: the values of a cohort key, most degraded first.

    Example:
        >>> CohortsAnswer(model="m", key="region", baseline=BaselineInfo(kind="previous",
        ...     **{"from": "a", "to": "b"}), correction="holm", confidence=0.95, min_samples=30,
        ...     cohorts=[], **{"from": "a", "to": "b"}).correction
        'holm'
    """

    model: str
    version: str | None = None
    key: str
    baseline: BaselineInfo
    correction: str
    confidence: float
    min_samples: int
    cohorts: list[CohortEntry]


class ReliabilityBin(BaseModel):
    """One bin of a reliability curve: the labelled events' weight, mean score and
    observed frequency (None when empty).

    Example:
        >>> ReliabilityBin(lo=0.0, hi=0.5, count=0.0).observed is None
        True
    """

    lo: float
    hi: float
    count: float
    mean_predicted: float | None = None
    observed: float | None = None


class HistogramBin(BaseModel):
    """One bin of the score histogram of every prediction.

    Example:
        >>> HistogramBin(lo=0.0, hi=0.05, count=3).count
        3
    """

    lo: float
    hi: float
    count: int


class ReliabilityAnswer(_Ranged):
    """``GET /v1/reliability``: the window's reliability curve, ECE and score histogram.

    Example:
        >>> ReliabilityAnswer(model="m", score="p_positive", n_predictions=0, n_labelled=0,
        ...     n=0, n_bins=15, bins=[], histogram=[], **{"from": "a", "to": "b"}).ece is None
        True
    """

    model: str
    version: str | None = None
    cohort: str | None = None
    classes: list[str] | None = None
    score: str
    n_predictions: int
    n_labelled: int
    n: int
    n_bins: int
    ece: float | None = None
    bins: list[ReliabilityBin]
    histogram: list[HistogramBin]


class EventEntry(BaseModel):
    """One labelled event of ``GET /v1/events`` (``loss`` in nats).

    Example:
        >>> EventEntry(request_id="r", model="m", version="v", timestamp="t", label="1",
        ...     p_label=0.5, loss=0.69, weight=1.0, cohort={}, features={}).label
        '1'
    """

    request_id: str
    model: str
    version: str
    timestamp: str
    label: str
    p_label: float
    loss: float
    weight: float
    cohort: dict[str, str]
    features: dict[str, Any]


class EventsAnswer(_Ranged):
    """``GET /v1/events``: a window's labelled events by loss or recency."""

    model: str
    version: str | None = None
    cohort: str | None = None
    order: str
    limit: int
    events: list[EventEntry]
