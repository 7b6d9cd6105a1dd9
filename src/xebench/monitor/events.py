"""A window's extreme events: its labelled events with the highest log loss, or the latest.

This is the one monitoring answer read from raw events rather than buckets
(buckets hold statistics, not events): :func:`xebench.store.event_reads.labelled_events`
reads only the window's rows of the tenant's model and lets DuckDB sort and cut
them (``ORDER BY ... LIMIT``, at most :data:`MAX_EVENTS`), and each event's loss
is the kernel's per-event log loss (:func:`xebench.nll`, with the store's clip
``eps``: the loss the window's ``log_loss`` averages). Retention deletes raw
events while the buckets outlive them, so an old window may list none.

Cohorts and features are shown as stored: the service's PII policy drops or
hashes keys before an event is stored, and is applied again on display
(:meth:`~xebench.ingest.policy.PiiPolicy.for_display`) so that a key the policy
came to name after an event was stored is never shown in the clear.

Example:
    >>> from xebench.monitor.windows import Monitor
    >>> from xebench.store import EventStore
    >>> Monitor(EventStore(":memory:")).extreme_events(Scope("t", "m", window="1h"))["events"]
    []
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import InvalidInputError
from ..ingest.policy import PiiPolicy
from ..metrics.classification import nll
from ..store.buckets import ALL
from ..store.event_reads import ORDERS, labelled_events
from ..store.event_store import EventStore
from .scope import Scope, iso

__all__ = ["MAX_EVENTS", "EventQuestions"]

#: The most events one answer lists.
MAX_EVENTS = 100


class EventQuestions:
    """The extreme-events question of :class:`~xebench.monitor.windows.Monitor` (mixed in).

    Uses the monitor's ``store`` and ``pii`` (the service's privacy policy).
    """

    store: EventStore
    pii: PiiPolicy

    def extreme_events(
        self, scope: Scope, *, limit: int = 20, order: str = "loss"
    ) -> dict[str, Any]:
        """Up to ``limit`` (1 to 100) labelled events of the window, by ``order``:
        ``"loss"`` (the highest per-event log loss first; the latest first among
        ties) or ``"recent"`` (the latest prediction time first).

        Each event: ``request_id``, ``model``, ``version``, ``timestamp`` (the
        prediction's), ``label``, ``p_label`` (the probability the model gave the
        label, as sent), ``loss`` (its log loss in nats, clipped as the windows'),
        ``weight``, ``cohort`` and ``features``. Events whose label is not one of
        their classes are not scorable and not listed.

        Example:
            >>> from xebench.demo.stream import generate, load
            >>> from xebench.monitor.windows import Monitor
            >>> from xebench.store import EventStore
            >>> store = EventStore(":memory:")
            >>> stream = generate(hours=2, rate_per_minute=30)
            >>> _ = load(store, stream); _ = store.update_buckets()
            >>> scope = Scope("default", "fraud", window="2h", now=stream.now)
            >>> worst = Monitor(store).extreme_events(scope, limit=3)["events"]
            >>> len(worst), worst[0]["loss"] >= worst[1]["loss"] >= worst[2]["loss"]
            (3, True)
            >>> import math
            >>> math.isclose(worst[0]["loss"], -math.log(worst[0]["p_label"]))
            True
        """
        if isinstance(limit, bool) or not isinstance(limit, int | np.integer):
            raise InvalidInputError(
                "limit", f"must be an integer from 1 to {MAX_EVENTS}", value=limit
            )
        if not 1 <= limit <= MAX_EVENTS:
            raise InvalidInputError("limit", f"must be from 1 to {MAX_EVENTS}", value=limit)
        if order not in ORDERS:
            raise InvalidInputError("order", f"must be one of {sorted(ORDERS)}", value=order)
        scope = scope.pinned(self.store.buckets.config.cohort_crossings)
        span = scope.span()
        key = scope.cohort_key
        with self.store.cursor() as cursor:
            table = labelled_events(
                cursor,
                scope.tenant,
                scope.model,
                scope.version,
                None if key[0] == ALL else key,
                span.start,
                span.end,
                order=order,
                limit=int(limit),
            )
        losses = _losses(table, self.store.buckets.config.eps)
        events = []
        for i, row in enumerate(table.to_pylist()):
            events.append(
                {
                    "request_id": row["request_id"],
                    "model": row["model"],
                    "version": row["version"],
                    "timestamp": iso(row["event_time"]),
                    "label": row["label"],
                    "p_label": row["p_label"],
                    "loss": float(losses[i]),
                    "weight": row["weight"],
                    "cohort": self.pii.for_display(dict(row["cohort"])),
                    "features": self.pii.for_display(json.loads(row["features"])),
                }
            )
        return {
            "model": scope.model,
            "version": scope.version,
            "cohort": scope.cohort_label,
            "from": iso(span.start),
            "to": iso(span.end),
            "order": order,
            "limit": int(limit),
            "events": events,
        }


def _losses(table: pa.Table, eps: float) -> np.ndarray:
    """The kernel's per-event log loss of each row, each class list on its own."""
    out = np.zeros(table.num_rows)
    if not table.num_rows:
        return out
    texts = pc.binary_join(table["classes"], "\x1f")
    for text in pc.unique(texts).to_pylist():
        rows = np.flatnonzero(pc.equal(texts, text).to_numpy(zero_copy_only=False))
        part = table.take(pa.array(rows))
        classes = str(text).split("\x1f")
        probs = np.asarray(part["probabilities"].to_pylist(), dtype=np.float64)
        labels = part["label"].to_pylist()
        out[rows] = nll(labels, probs, labels=classes, eps=eps)
    return out
