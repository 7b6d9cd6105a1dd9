"""Canary and shadow gates over the store: is the candidate worse than the baseline?

A *canary* (two versions of one model, splitting traffic) compares the merged
score buckets of each side (Welch's test); a *shadow* (two models scoring the
same requests) pairs the joined events of its window on request id.

Example:
    >>> from xebench.monitor.windows import Monitor
    >>> from xebench.store import EventStore
    >>> gate = Monitor(EventStore(":memory:")).compare(Scope("t", "m", "v2", window="1h"), "m:v1")
    >>> gate.mode, gate.status
    ('canary', 'inconclusive')
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..analysis.compare import (
    PairedStats,
    decide,
    paired_comparison,
    unpaired_comparison,
    unpaired_token_comparison,
)
from ..errors import InvalidInputError
from ..stats.scores import ScoreStats
from ..stats.tokens import TokenStats
from ..store import queries
from ..store.buckets import ALL, score_stats
from ..store.crossings import cohort_value
from ..store.event_store import EventStore
from .reads import Selection, class_list, merged, one_class_list, scores, token_sums
from .results import Gate
from .scope import Scope, Span, parse_model
from .settings import MonitorSettings

__all__ = ["GateQuestions", "shadow_stats"]


class GateQuestions:
    """The gate question of :class:`~xebench.monitor.windows.Monitor` (mixed into it).

    Uses the monitor's ``store`` and ``settings`` (the gate defaults).
    """

    store: EventStore
    settings: MonitorSettings

    def compare(
        self,
        scope: Scope,
        baseline: str,
        *,
        mode: str = "auto",
        max_degradation: float | None = None,
        min_samples: int | None = None,
        confidence: float | None = None,
        base: str | int = "e",
    ) -> Gate:
        """The gate decision for the scope's model and version (the candidate) vs
        ``baseline`` (``model`` or ``model:version``).

        ``mode``: ``"canary"`` (split traffic, unpaired: Welch's test on the
        merged buckets), ``"shadow"`` (the same requests scored by both,
        paired on request id), or ``"auto"``: shadow for two models, canary
        for two versions of one model.

        Example:
            >>> from xebench.monitor.windows import Monitor
            >>> from xebench.store import EventStore
            >>> scope = Scope.named("t", "m:v2", "candidate", window="1h")
            >>> r = Monitor(EventStore(":memory:")).compare(scope, "m:v1").to_dict()
            >>> r["mode"], r["decision"]["status"]
            ('canary', 'inconclusive')
        """
        store, settings = self.store, self.settings
        scope = scope.pinned(self.store.buckets.config.cohort_crossings)
        span = scope.span()
        key = scope.cohort_key
        cand_model, cand_version = scope.model, scope.version
        base_model, base_version = parse_model(baseline, "baseline")
        if mode == "auto":
            mode = "canary" if cand_model == base_model else "shadow"
        if mode not in ("canary", "shadow"):
            raise InvalidInputError("mode", "must be auto, canary or shadow", value=mode)
        max_degradation = (
            settings.gate_max_degradation if max_degradation is None else max_degradation
        )
        min_samples = settings.gate_min_samples if min_samples is None else min_samples
        confidence = settings.gate_confidence if confidence is None else confidence
        metric = "log_loss"
        tokens = [
            token_sums(store, Selection(scope.tenant, model, version, key, span))
            for model, version in ((cand_model, cand_version), (base_model, base_version))
            if mode == "canary"  # a shadow pairs joined events: no sequence has any
        ]
        if tokens and tokens[0] is not None and tokens[1] is not None:
            # A language model's versions: bits per byte of their scored sequences.
            metric = "bits_per_byte"
            token_sides = [TokenStats.from_sums({k: v[0] for k, v in t.items()}) for t in tokens]
            try:
                comparison = unpaired_token_comparison(*token_sides, confidence=confidence, base=2)
            except InvalidInputError:  # fewer than 2 sequences, or no bytes: no verdict
                comparison = None
        elif mode == "canary":
            sides = []
            for model, version in ((cand_model, cand_version), (base_model, base_version)):
                table, _ = one_class_list(
                    scores(store, Selection(scope.tenant, model, version, key, span))
                )
                classes = class_list(table, model)
                merge = merged(table)
                sides.append(
                    score_stats(merge, 0, classes) if classes and merge["n"][0] else ScoreStats()
                )
            if min(sides[0].n, sides[1].n) < 2:
                comparison = None
            else:
                comparison = unpaired_comparison(
                    sides[0], sides[1], confidence=confidence, base=base
                )
        else:
            paired = shadow_stats(
                store,
                scope.tenant,
                (cand_model, cand_version),
                (base_model, base_version),
                key,
                span,
            )
            comparison = (
                paired_comparison(paired, confidence=confidence, base=base)
                if paired is not None and paired.n >= 2
                else None
            )
        decision = (
            None
            if comparison is None
            else decide(
                comparison,
                max_degradation=max_degradation,
                min_samples=min_samples,
                confidence=confidence,
            )
        )
        return Gate(
            mode,
            scope.spec,
            baseline,
            scope.cohort_label,
            span.start,
            span.end,
            decision,
            min_samples,
            metric,
        )


def shadow_stats(
    store: EventStore,
    tenant: str,
    candidate: tuple[str, str | None],
    baseline: tuple[str, str | None],
    cohort: tuple[str, str],
    span: Span,
) -> PairedStats | None:
    """Paired statistics of the requests both models scored and that have a label
    (None when there are none).

    Example:
        >>> from datetime import UTC, datetime, timedelta
        >>> from xebench.store import EventStore
        >>> t = datetime(2026, 1, 1, tzinfo=UTC)
        >>> shadow_stats(EventStore(":memory:"), "t", ("a", None), ("b", None), ("", ""),
        ...              Span(t, t + timedelta(hours=1))) is None
        True
    """
    with store.cursor() as cursor:
        table = queries.shadow_pairs(cursor, tenant, candidate, baseline, span.start, span.end)
    if cohort[0] != ALL and table.num_rows:
        values = [cohort_value(dict(c), cohort[0]) for c in table["cohort"].to_pylist()]
        table = table.filter(pa.array([v == cohort[1] for v in values]))
    if not table.num_rows:
        return None
    c_classes = pc.unique(pc.binary_join(table["c_classes"], "\x1f")).to_pylist()
    b_classes = pc.unique(pc.binary_join(table["b_classes"], "\x1f")).to_pylist()
    if len(c_classes) != 1 or c_classes != b_classes:
        raise InvalidInputError(
            "baseline",
            "a shadow comparison needs both models to predict the same class list",
            value={"candidate": c_classes, "baseline": b_classes},
        )
    classes = c_classes[0].split("\x1f")
    k = len(classes)
    labels = np.asarray(table["label"].to_pylist(), dtype=object)
    keep = np.isin(labels, classes)
    cand = pc.list_flatten(table["c_p"]).to_numpy(zero_copy_only=False).reshape(-1, k)[keep]
    base = pc.list_flatten(table["b_p"]).to_numpy(zero_copy_only=False).reshape(-1, k)[keep]
    if not keep.any():
        return None
    weight = table["weight"].to_numpy()[keep]  # the candidate's (the pair's cohort's side)
    stats = PairedStats(classes)
    if k == 2:
        return stats.update(labels[keep], cand[:, 1], base[:, 1], weight)
    return stats.update(labels[keep], cand, base, weight)
