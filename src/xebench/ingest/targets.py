"""Where imported events go: the store, or (in :mod:`xebench.client.files`) a running server.

A target takes one chunk's events at a time (``send(kind, events,
problems)``) and answers what it stored (:class:`Sent`), or raises
:class:`Rejected` naming the first bad event of the chunk (its index, the
field as a JSON pointer, the message). ``problems`` are what the file's
columns could not even turn into event values, by event index; they are
reported before (or merged with) the target's own validation errors.

Example:
    >>> from xebench.ingest.events import NO_PII
    >>> from xebench.store import EventStore
    >>> with EventStore(":memory:") as store:
    ...     target = StoreTarget(store, "default", Limits(), NO_PII, batch_rows=100)
    ...     target.send("labels", [{"request_id": "r1", "label": 1}], {})
    Sent(inserted=1, duplicates=0, joined=0, pending=1)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol

from ..errors import XebenchError
from .events import BatchError, Limits, PiiPolicy, parse_labels, parse_predictions

if TYPE_CHECKING:  # pragma: no cover
    from ..store.event_store import EventStore

__all__ = [
    "Problems",
    "Rejected",
    "Sent",
    "StoreTarget",
    "Target",
    "conflict_message",
    "first_problem",
    "relative_pointer",
]

#: Conversion problems of a chunk: event index -> (JSON pointer, message).
Problems = dict[int, tuple[str, str]]


@dataclass
class Sent:
    """What a target stored of a chunk; sums with ``+``.

    Example:
        >>> Sent(2, 1) + Sent(1, 0, joined=1)
        Sent(inserted=3, duplicates=1, joined=1, pending=0)
    """

    inserted: int = 0
    duplicates: int = 0
    joined: int = 0
    pending: int = 0

    def __add__(self, other: Sent) -> Sent:
        return Sent(
            self.inserted + other.inserted,
            self.duplicates + other.duplicates,
            self.joined + other.joined,
            self.pending + other.pending,
        )


class Rejected(XebenchError):
    """A batch was refused: the first bad event (index within the batch) or the whole batch.

    ``sent``: events of the batch stored before the refusal; ``more``: other
    bad events in it. :meth:`shifted` renumbers it within a larger batch.

    Example:
        >>> Rejected(1, "/label", "label is missing").shifted(10).index
        11
    """

    def __init__(
        self,
        index: int | None,
        field: str | None,
        message: str,
        *,
        sent: int = 0,
        more: int = 0,
    ) -> None:
        super().__init__(message)
        self.index, self.field, self.message = index, field, message
        self.sent, self.more = sent, more

    def shifted(self, offset: int) -> Rejected:
        """The same refusal, ``offset`` events further into the batch."""
        index = None if self.index is None else self.index + offset
        return Rejected(index, self.field, self.message, sent=self.sent + offset, more=self.more)


def first_problem(problems: Problems, errors: Iterable[tuple[int, str, str]] = ()) -> Rejected:
    """The first bad event among conversion problems and validation errors.

    ``errors`` are (index, pointer, message); a conversion problem of the
    same event explains it better and wins.

    Example:
        >>> rejected = first_problem({3: ("/timestamp", "no time zone")},
        ...                          [(1, "/label", "missing"), (3, "/model", "bad")])
        >>> rejected.index, rejected.field, rejected.more
        (1, '/label', 1)
    """
    merged: Problems = {}
    for index, pointer, message in errors:
        merged.setdefault(index, (pointer, message))
    merged.update(problems)  # a conversion problem explains the row better
    index = min(merged)
    pointer, message = merged[index]
    return Rejected(index, pointer, message, more=len(merged) - 1)


def relative_pointer(pointer: str) -> str:
    """A batch error's field without its event index (the index is the row).

    Example:
        >>> relative_pointer("/3/probabilities/1"), relative_pointer("/3")
        ('/probabilities/1', '')
    """
    parts = pointer.split("/", 2)
    return "/" + parts[2] if len(parts) > 2 else ""


def conflict_message(model: str, request_id: str) -> str:
    """The message of a 409: the key is stored with another payload.

    Example:
        >>> conflict_message("fraud", "r1")[:45]
        "request_id 'r1' of model 'fraud' is already s"
    """
    return (
        f"request_id {request_id!r} of model {model!r} is already stored with a different "
        "payload (or appears twice in this batch); a stored event is never changed (give the "
        "row a new request_id or restore its original values)"
    )


class StoreTarget:
    """Validate like the HTTP service, then write one chunk per transaction (module example)."""

    def __init__(
        self, store: EventStore, tenant: str, limits: Limits, pii: PiiPolicy, batch_rows: int
    ) -> None:
        self.store, self.tenant, self.pii = store, tenant, pii
        self.limits = replace(limits, max_events=batch_rows)

    def send(self, kind: str, events: list[dict[str, Any]], problems: Problems) -> Sent:
        """Store ``events`` in one transaction, or raise :class:`Rejected` (nothing stored)."""
        from ..store.event_store import EventBatch

        limits = replace(self.limits, max_events=max(self.limits.max_events, len(events)))
        try:
            if kind == "predictions":
                table = parse_predictions(events, tenant=self.tenant, limits=limits, pii=self.pii)
            else:
                table = parse_labels(
                    events,
                    tenant=self.tenant,
                    limits=limits,
                    known_labels=lambda model: self.store.known_labels(self.tenant, model),
                )
        except BatchError as error:
            if not error.errors and not problems:
                raise Rejected(None, None, error.detail) from None
            found = ((e["index"], relative_pointer(e["field"]), e["message"]) for e in error.errors)
            raise first_problem(problems, found) from None
        if problems:
            raise first_problem(problems)
        (outcome,) = self.store.write([EventBatch(kind, table)])
        if outcome.conflicts:
            first = min(outcome.conflicts, key=lambda c: c.index)
            message = (
                conflict_message(first.model, first.request_id)
                if first.stored_classes is None
                else first.message
            )
            raise Rejected(first.index, first.field, message, more=len(outcome.conflicts) - 1)
        return Sent(outcome.inserted, outcome.duplicates, outcome.joined, outcome.pending)


class Target(Protocol):
    """What the import loop sends chunks to: :class:`StoreTarget`, ``xebench.client.HttpTarget``.

    Example:
        >>> isinstance(StoreTarget, type) and hasattr(StoreTarget, "send")
        True
    """

    def send(self, kind: str, events: list[dict[str, Any]], problems: Problems) -> Sent:
        """Store or send one chunk's events; raise :class:`Rejected` for the first bad one."""
        ...
