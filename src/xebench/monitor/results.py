"""Monitoring answers as typed objects; ``to_dict()`` gives the JSON of the HTTP API and CLI.

Each class keeps its fields in the order of its JSON document, so that
``to_dict()`` writes the keys as the service always has.

Example:
    >>> from datetime import UTC, datetime, timedelta
    >>> t = datetime(2026, 1, 1, tzinfo=UTC)
    >>> ref = ReferenceInfo("rolling", None, t, t + timedelta(hours=1))
    >>> ref.to_dict()["from"], ref.to_dict()["file"]
    ('2026-01-01T00:00:00Z', None)
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .scope import iso

if TYPE_CHECKING:
    from ..analysis.compare import Decision
    from ..analysis.drift import DriftReport

__all__ = [
    "CohortRanking",
    "CohortRow",
    "Gate",
    "ReferenceInfo",
    "Series",
    "Window",
    "WindowDrift",
]


@dataclass(frozen=True)
class Window:
    """One window of a model: counts, coverage, label lag, the scores' metrics, provisional.

    ``start`` / ``end`` are the document's ``from`` / ``to``; the metric fields
    (``n`` to ``label_counts``) are :meth:`xebench.ScoreStats.result`'s, None
    when nothing in the window is scorable. They are weighted by the events'
    ``weight`` (``weight`` is the scored events' total, ``n`` their number);
    ``n_predictions``, ``n_labelled`` and ``coverage`` are counts of events.

    Example:
        >>> from xebench.monitor.windows import Monitor, Scope
        >>> from xebench.store import EventStore
        >>> w = Monitor(EventStore(":memory:")).window(Scope("t", "fraud", window="1h"))
        >>> list(w.to_dict())[:3], w.n, w.log_loss, w.provisional
        (['from', 'to', 'model'], 0, None, False)
    """

    start: datetime
    end: datetime
    model: str
    version: str | None
    cohort: str | None
    n_predictions: int
    n_labelled: int
    coverage: float | None
    label_lag_p50_s: float | None
    label_lag_p90_s: float | None
    label_lag_p99_s: float | None
    n: int
    weight: float
    log_loss: float | None
    log_loss_ci: Any
    brier: float | None
    brier_ci: Any
    ece: float | None
    mce: float | None
    prior_log_loss: float | None
    skill: float | None
    perplexity: float | None
    accuracy: float | None
    clipped: Any
    label_counts: Any
    ci_reliable: bool | None
    n_unscorable: int
    base: str | int
    provisional: bool
    provisional_reason: str | None
    label_delay_s: float
    #: Predictions left out because they carry another class list than the one most
    #: of their version's predictions in the range carry (only stores written before
    #: class lists were enforced hold such mixtures; docs/service.md).
    n_other_classes: int = 0
    #: Predictions per minute over the window (the ``event_rate`` SLI).
    event_rate: float | None = None
    #: The label-lag bridge: the window's expected log loss from its predictions alone
    #: (:class:`~xebench.stats.expected_loss.LossEstimate`'s document); an estimate,
    #: never counted toward an SLO. None without predictions.
    log_loss_estimate: dict[str, Any] | None = None
    #: A language model's scored sequences in the window (``POST /v1/lm/tokens``):
    #: :meth:`xebench.TokenStats.result` -- pooled perplexity and cross-entropy, bits
    #: per byte and per token, with intervals over sequences; None without sequences.
    tokens: dict[str, Any] | None = None

    #: The fields taken from ScoreStats.result(), in document order.
    METRICS = (
        "n", "weight", "log_loss", "log_loss_ci", "brier", "brier_ci", "ece", "mce",
        "prior_log_loss", "skill", "perplexity", "accuracy", "clipped", "label_counts",
        "ci_reliable",
    )  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        """The window document of ``GET /v1/metrics``."""
        out: dict[str, Any] = {"from": iso(self.start), "to": iso(self.end)}
        for f in fields(self)[2:]:
            out[f.name] = getattr(self, f.name)
        return out


@dataclass(frozen=True)
class Series:
    """Consecutive windows of one step.

    Example:
        >>> Series([]).to_dict()
        {'series': []}
    """

    windows: list[Window]

    def to_dict(self) -> dict[str, Any]:
        """The document of ``GET /v1/metrics?step=``: ``{"series": [window, ...]}``."""
        return {"series": [w.to_dict() for w in self.windows]}


@dataclass(frozen=True)
class ReferenceInfo:
    """What a window's drift was measured against.

    Attributes:
        kind: ``rolling``, ``version``, ``range``, ``file`` or ``uploaded``.
        version: the reference version (kind ``version``).
        start, end: the reference range (kinds drawn from the model's events).
        file: the reference file (kind ``file``).
        source, uploaded_at: the upload's file name and time (kind ``uploaded``).
    """

    kind: str
    version: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    file: Path | None = None
    source: str | None = None
    uploaded_at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        """The ``reference`` object of ``GET /v1/drift``."""
        return {
            "kind": self.kind,
            "version": self.version,
            "from": None if self.start is None else iso(self.start),
            "to": None if self.end is None else iso(self.end),
            "file": None if self.file is None else str(self.file),
            "source": self.source,
            "uploaded_at": None if self.uploaded_at is None else iso(self.uploaded_at),
        }


@dataclass(frozen=True)
class WindowDrift:
    """A window's drift against its reference: the drift report and what it covers.

    ``note`` says when a cohort's feature histograms were not kept.
    """

    report: DriftReport
    model: str
    version: str | None
    cohort: str | None
    start: datetime
    end: datetime
    reference: ReferenceInfo
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The document of ``GET /v1/drift``: the report's fields, then the scope's."""
        out = self.report.to_dict()
        out.update(
            {
                "model": self.model,
                "version": self.version,
                "cohort": self.cohort,
                "from": iso(self.start),
                "to": iso(self.end),
                "reference": self.reference.to_dict(),
            }
        )
        if self.note is not None:
            out["note"] = self.note
        return out


@dataclass(frozen=True)
class Gate:
    """A canary or shadow gate: the decision of candidate vs baseline in one range.

    ``decision`` is None when a side has fewer than 2 labelled events
    (inconclusive without a comparison).

    Example:
        >>> from datetime import UTC, datetime, timedelta
        >>> t = datetime(2026, 1, 1, tzinfo=UTC)
        >>> gate = Gate("canary", "m:v2", "m:v1", None, t, t + timedelta(hours=1), None, 1000)
        >>> gate.status, gate.to_dict()["decision"]["reason"]
        ('inconclusive', 'fewer than 2 labelled events on a side')
    """

    mode: str
    candidate: str
    baseline: str
    cohort: str | None
    start: datetime
    end: datetime
    decision: Decision | None
    min_samples: int
    #: What the two sides compare: ``log_loss`` (nats), or ``bits_per_byte`` for the
    #: versions of a language model (their scored sequences).
    metric: str = "log_loss"

    @property
    def status(self) -> str:
        """``pass``, ``fail`` or ``inconclusive``."""
        return "inconclusive" if self.decision is None else self.decision.status

    def to_dict(self) -> dict[str, Any]:
        """The document of ``GET /v1/compare``."""
        out: dict[str, Any] = {
            "mode": self.mode,
            "candidate": self.candidate,
            "baseline": self.baseline,
            "cohort": self.cohort,
            "from": iso(self.start),
            "to": iso(self.end),
        }
        if self.metric != "log_loss":  # the classifiers' documents stay as they were
            out["metric"] = self.metric
        if self.decision is None:
            out["decision"] = {
                "status": "inconclusive",
                "reason": "fewer than 2 labelled events on a side",
                "min_samples": self.min_samples,
            }
            out["comparison"] = None
            return out
        # The comparison comes first here, as the API always wrote it.
        data = self.decision.to_dict()
        out["comparison"] = data.pop("comparison")
        out["decision"] = data
        return out


@dataclass(frozen=True)
class CohortRow:
    """One value of a cohort key in a ranking: the window against its baseline.

    Log losses and deltas are in nats; ``delta`` is the window's minus the
    baseline's (positive: worse), with ``delta_ci`` and ``p_value`` from the normal
    approximation of two independent samples
    (:func:`xebench.analysis.cohorts.independent_delta`) and ``p_adjusted``
    (Holm's) across the ranking's values. ``inconclusive``: a side has fewer
    labelled, scorable events than the ranking's ``min_samples``.

    Example:
        >>> row = CohortRow("eu", 10, 0, None, None, None, None, None, None, None, None, True)
        >>> row.to_dict()["value"], row.to_dict()["inconclusive"]
        ('eu', True)
    """

    value: str
    n_predictions: int
    n_labelled: int
    log_loss: float | None
    log_loss_ci: list[float] | None
    baseline_log_loss: float | None
    baseline_log_loss_ci: list[float] | None
    delta: float | None
    delta_ci: list[float] | None
    p_value: float | None
    p_adjusted: float | None
    inconclusive: bool

    def to_dict(self) -> dict[str, Any]:
        """The entry of ``cohorts`` in ``GET /v1/cohorts``."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class CohortRanking:
    """The values of one cohort key ranked by how much worse their window is than
    their baseline: the most degraded first, inconclusive values last.

    ``baseline`` is ``{"kind", "from", "to", "version"}``: ``kind`` ``previous``,
    ``reference`` or ``range``; ``version`` is the baseline's version when it is
    not the window's (a configured ``version:V`` reference).

    Example:
        >>> from datetime import UTC, datetime, timedelta
        >>> t = datetime(2026, 1, 1, tzinfo=UTC)
        >>> r = CohortRanking("m", None, "region", t, t + timedelta(hours=1),
        ...                   {"kind": "previous"}, 0.95, 30, [])
        >>> r.to_dict()["correction"], r.to_dict()["from"]
        ('holm', '2026-01-01T00:00:00Z')
    """

    model: str
    version: str | None
    key: str
    start: datetime
    end: datetime
    baseline: dict[str, Any]
    confidence: float
    min_samples: int
    cohorts: list[CohortRow]

    def to_dict(self) -> dict[str, Any]:
        """The document of ``GET /v1/cohorts``."""
        return {
            "model": self.model,
            "version": self.version,
            "key": self.key,
            "from": iso(self.start),
            "to": iso(self.end),
            "baseline": self.baseline,
            "correction": "holm",
            "confidence": self.confidence,
            "min_samples": self.min_samples,
            "cohorts": [row.to_dict() for row in self.cohorts],
        }
