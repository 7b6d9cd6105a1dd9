"""Cohort ranking: which values of a cohort key got worse, from the score buckets.

Every value of the key seen in the window is finished exactly as
:meth:`~xebench.monitor.windows.Monitor.window` finishes the window of
``cohort=key:value`` (the same buckets, the same :class:`~xebench.ScoreStats`
code: a value's ``log_loss`` is ``GET /v1/metrics?cohort=key:value``'s), then
compared with its baseline (:func:`xebench.analysis.cohorts.independent_delta`)
and the p-values adjusted with Holm's method across the values ranked.

Buckets are kept per cohort key (``region``, ``device``) and per configured
crossing (``monitoring.cohort_crossings``, :mod:`xebench.store.crossings`): a
multi-key request (``region,device`` or ``device,region``) ranks the crossed
values of a configured crossing, and is refused, naming the configured
crossings, for any other combination.

Example:
    >>> from xebench.monitor.windows import Monitor
    >>> from xebench.store import EventStore
    >>> Monitor(EventStore(":memory:")).cohort_ranking(Scope("t", "m", window="1h"), "region")
    Traceback (most recent call last):
    ...
    xebench.errors.InvalidInputError: key: model 'm' has no cohort key 'region'; its keys: []; \
got 'region'
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from ..analysis.cohorts import holm, independent_delta
from ..errors import InvalidInputError
from ..stats.moments import check_confidence
from ..stats.scores import ScoreStats
from ..store import queries
from ..store.buckets import BUCKET_SECONDS, score_stats
from ..store.crossings import is_crossing, normalise
from ..store.event_store import EventStore
from .drift import reference_of
from .reads import Selection, class_list, merged, one_class_list, scores
from .results import CohortRanking, CohortRow
from .scope import Scope, Span, ceil_to, iso, parse_reference, parse_time
from .settings import MonitorSettings

__all__ = ["BASELINES", "CohortQuestions"]

#: The baselines of a ranking (``range:FROM/TO`` besides).
BASELINES = ("previous", "reference")
_MINUTE = timedelta(seconds=BUCKET_SECONDS)


class CohortQuestions:
    """The cohort ranking of :class:`~xebench.monitor.windows.Monitor` (mixed into it).

    Uses the monitor's ``store`` and ``settings`` (``cohort_min_samples``, the
    models' configured drift references).
    """

    store: EventStore
    settings: MonitorSettings

    def cohort_ranking(
        self,
        scope: Scope,
        key: str,
        *,
        baseline: str = "previous",
        limit: int | None = None,
        confidence: float = 0.95,
        min_samples: int | None = None,
    ) -> CohortRanking:
        """Each value of cohort ``key`` in the scope's window against its baseline,
        the most degraded (largest ``delta``) first.

        ``baseline``: ``"previous"`` (the window of the same length just before),
        ``"reference"`` (the model's configured drift reference, ``monitoring.models.
        M.reference``: rolling is the previous window, ``range:A/B`` that range,
        ``version:V`` everything of version V up to the window's end; data references,
        which have no scores, are refused) or ``"range:FROM/TO"``. Values with fewer
        than ``min_samples`` (default ``settings.cohort_min_samples``, 30) labelled,
        scorable events on either side are ``inconclusive`` and listed last; Holm's
        correction (``p_adjusted``) runs over the other values. ``limit`` keeps the
        first values of the ranking (after the correction).

        Example:
            >>> from xebench.demo.stream import generate, load
            >>> from xebench.monitor.windows import Monitor
            >>> from xebench.store import EventStore
            >>> store = EventStore(":memory:")
            >>> stream = generate(hours=4, rate_per_minute=30)
            >>> _ = load(store, stream); _ = store.update_buckets()
            >>> scope = Scope("default", "fraud", window="2h", now=stream.now)
            >>> ranking = Monitor(store).cohort_ranking(scope, "region").to_dict()
            >>> ranking["baseline"]["kind"], ranking["correction"]
            ('previous', 'holm')
            >>> sorted(row["value"] for row in ranking["cohorts"])
            ['apac', 'eu', 'latam', 'us']
        """
        scope = scope.pinned(self.store.buckets.config.cohort_crossings)
        if scope.cohort is not None:
            raise InvalidInputError(
                "cohort", "a ranking covers every value of its key: give key, not cohort"
            )
        confidence = check_confidence(confidence)
        min_samples = self.settings.cohort_min_samples if min_samples is None else min_samples
        if isinstance(min_samples, bool) or not isinstance(min_samples, int) or min_samples < 0:
            raise InvalidInputError("min_samples", "must be an integer >= 0", value=min_samples)
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)):
            raise InvalidInputError("limit", "must be a positive integer", value=limit)
        if limit is not None and limit < 1:
            raise InvalidInputError("limit", "must be a positive integer", value=limit)
        key = self._check_key(scope, key)
        span = scope.span()
        described, base_version, base_span = self._baseline(scope, span, baseline)
        tenant, model = scope.tenant, scope.model
        here = _by_value(
            scores(self.store, Selection(tenant, model, scope.version, (key, None), span))
        )
        there_version = base_version or scope.version
        there = _by_value(
            scores(self.store, Selection(tenant, model, there_version, (key, None), base_span))
        )
        rows = []
        for value, table in here.items():
            merge, stats = _side(table, scope.model)
            if int(merge["n_predictions"][0]) == 0:
                continue
            base = _side(there[value], scope.model)[1] if value in there else None
            rows.append(_row(value, merge, stats, base, confidence, min_samples))
        return CohortRanking(
            scope.model,
            scope.version,
            key,
            span.start,
            span.end,
            described,
            confidence,
            min_samples,
            _ranked(rows, limit),
        )

    def _check_key(self, scope: Scope, key: str) -> str:
        """The key (a crossing's in its configured order); 422 for a key the model's
        buckets do not keep (naming the keys they do) or a crossing not configured
        (naming the configured ones)."""
        with self.store.cursor() as cursor:
            keys = queries.cohort_keys(cursor, scope.tenant, scope.model)
        if isinstance(key, str) and is_crossing(key):
            crossings = self.store.buckets.config.cohort_crossings
            try:
                key = normalise(key, None, crossings, "key")[0]
            except InvalidInputError as error:
                raise InvalidInputError(
                    "key", f"{error.rule}; model {scope.model!r}'s keys: {keys}", value=key
                ) from None
        if isinstance(key, str) and key in keys:
            return key
        raise InvalidInputError(
            "key", f"model {scope.model!r} has no cohort key {key!r}; its keys: {keys}", value=key
        )

    def _baseline(
        self, scope: Scope, span: Span, spec: str
    ) -> tuple[dict[str, Any], str | None, Span]:
        """(the baseline's description, its version when not the window's, its range)."""
        described: dict[str, Any] = {"kind": None, "from": None, "to": None, "version": None}
        if spec == "previous":
            kind, version, there = "previous", None, Span(span.start - span.length, span.start)
        elif spec == "reference":
            configured = self.settings.references.get(scope.model, "rolling")
            _, version, found, _ = reference_of(configured, span)
            if found is None:
                raise InvalidInputError(
                    "baseline",
                    f"model {scope.model!r}'s reference is {configured!r}, data without scores: "
                    "use previous or range:FROM/TO",
                    value=spec,
                )
            kind, there = "reference", found
            described["reference"] = configured
        elif isinstance(spec, str) and spec.startswith("range:"):
            try:
                _, value = parse_reference(spec)
                first, _, last = value.partition("/")
                there = Span(
                    ceil_to(parse_time(first, "baseline"), _MINUTE),
                    ceil_to(parse_time(last, "baseline"), _MINUTE),
                )
            except InvalidInputError as error:
                raise InvalidInputError(
                    "baseline",
                    f"range:FROM/TO needs two RFC 3339 times, FROM first ({error})",
                    value=spec,
                ) from None
            if there.start >= there.end:
                raise InvalidInputError("baseline", "range:FROM/TO is empty at minutes", value=spec)
            kind, version = "range", None
        else:
            raise InvalidInputError(
                "baseline", "must be previous, reference or range:FROM/TO", value=spec
            )
        described.update(kind=kind, version=version)
        described.update({"from": iso(there.start), "to": iso(there.end)})
        return described, version, there


def _by_value(table: pa.Table) -> dict[str, pa.Table]:
    """The bucket rows of each cohort value, each in the order they were read."""
    if not table.num_rows:
        return {}
    values = table["cohort_value"]
    return {
        value: table.filter(pc.equal(values, value))
        for value in sorted(pc.unique(values).to_pylist())
    }


def _side(table: pa.Table, model: str) -> tuple[dict[str, Any], ScoreStats | None]:
    """Merged buckets and their ScoreStats (None without scorable events), as a window."""
    table, _ = one_class_list(table)
    classes = class_list(table, model)
    merge = merged(table)
    if classes is None or int(merge["n"][0]) == 0:
        return merge, None
    return merge, score_stats(merge, 0, classes)


def _row(
    value: str,
    merge: dict[str, Any],
    stats: ScoreStats | None,
    base: ScoreStats | None,
    confidence: float,
    min_samples: int,
) -> CohortRow:
    here = (stats or ScoreStats()).result(confidence=confidence)
    there = (base or ScoreStats()).result(confidence=confidence)
    delta = None
    if stats is not None and base is not None:
        delta = independent_delta(stats, base, confidence=confidence)
    enough = stats is not None and base is not None and min(stats.n, base.n) >= min_samples
    return CohortRow(
        value,
        int(merge["n_predictions"][0]),
        int(merge["n_labelled"][0]),
        here["log_loss"],
        here["log_loss_ci"],
        there["log_loss"],
        there["log_loss_ci"],
        None if delta is None else delta.delta,
        None if delta is None else list(delta.delta_ci),
        None if delta is None else delta.p_value,
        None,
        not enough or delta is None,
    )


def _ranked(rows: list[CohortRow], limit: int | None) -> list[CohortRow]:
    """Conclusive values by delta, largest first, with Holm's adjustment; then the rest."""
    tested = [row for row in rows if not row.inconclusive]
    adjusted = holm([row.p_value for row in tested])  # type: ignore[misc]
    tested = [replace(row, p_adjusted=p) for row, p in zip(tested, adjusted, strict=True)]
    tested.sort(key=lambda row: (-row.delta, row.value))  # type: ignore[operator]
    rest = sorted(
        (row for row in rows if row.inconclusive),
        key=lambda row: (row.delta is None, -(row.delta or 0.0), row.value),
    )
    ranked = tested + rest
    return ranked if limit is None else ranked[:limit]
