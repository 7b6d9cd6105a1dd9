"""Validating prediction and label events into the columnar shape the store writes.

The HTTP service (request bodies) and ``xebench ingest`` (file rows) both go
through this module, so an event is accepted or refused by the same rules
wherever it comes from. A batch is validated whole: :func:`parse_predictions`
and :func:`parse_labels` either return an Arrow table of every event
(:data:`~xebench.store.schema.PREDICTION_SCHEMA` /
:data:`~xebench.store.schema.LABEL_SCHEMA`) or raise :class:`BatchError`
with one entry per bad event -- its index, a JSON-pointer path to the bad
field and a message -- so nothing of a bad batch is ever stored.

Rules (DESIGN.md, HTTP):

- ``probabilities`` is a number (binary: P(class 1), classes ``["0", "1"]``
  unless two ``classes`` are given), an array (one probability per class;
  classes ``"0".."k-1"`` unless given) or an object ``{label: p}``; every
  value finite and in [0, 1], a vector summing to 1 within 1e-6 (the
  kernel's tolerance).
- ``timestamp`` is RFC 3339 with a timezone (default: the time of receipt);
  more than ``Limits.max_future`` ahead of the server clock is refused.
- Names: ``model`` and ``version`` are 1-128 letters, digits and ``. _ - : /
  @ +`` (Unicode letters included, no spaces, quotes or semicolons); cohort
  and feature keys 1-64 of the same; ``request_id`` 1-256 printable
  characters. Values never reach SQL as text, but names also end up in
  URLs, Prometheus labels and dashboards, where a narrow alphabet is safer.
- Cohort values are strings, integers or booleans; feature values are
  strings, finite numbers, booleans or null; nothing nests.
- Unknown fields are refused (a misspelt ``"cohorts"`` would otherwise be
  silently ignored).

Example:
    >>> table = parse_predictions(
    ...     b'[{"request_id": "r1", "model": "fraud", "probabilities": 0.9,'
    ...     b'  "timestamp": "2026-01-01T00:00:00Z", "cohort": {"region": "eu"}}]',
    ...     tenant="default",
    ... )
    >>> table.num_rows, table["probabilities"][0].as_py(), table["classes"][0].as_py()
    (1, [0.09999999999999998, 0.9], ['0', '1'])
    >>> try:
    ...     parse_predictions(b'[{"request_id": "r1", "model": "m", "probabilities": 1.3}]',
    ...                       tenant="default")
    ... except BatchError as error:
    ...     print(error.status, error.errors[0])
    422 {'index': 0, 'field': '/0/probabilities',
         'message': 'probabilities must be in [0, 1]; got 1.3'}

The work is split by job, and every name is importable from here:

- :mod:`~xebench.ingest.body`: media type, gzip and the size limit of a body;
- :mod:`~xebench.ingest.policy`: :class:`Limits` and :class:`PiiPolicy`;
- :mod:`~xebench.ingest.fields`: the event models and the per-field rules;
- :mod:`~xebench.ingest.batch`: a batch's structure and the loop into columns;
- :mod:`~xebench.ingest.predictions`, :mod:`~xebench.ingest.labels`: the stored
  columns of each kind, and :func:`prediction_table` / :func:`label_table`, which
  take the columnar fast path (:mod:`~xebench.ingest.fast`,
  :mod:`~xebench.ingest.fast_labels`) when it can take the batch;
- this module: :func:`check_event`, one event checked by the same rules.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import ValidationError

from ..errors import BatchError, InvalidInputError
from .body import JSON_TYPES, NDJSON_TYPES, decode_body, decompress_body, media_type
from .fields import (
    LabelEvent,
    PredictionEvent,
    check_probabilities,
    check_timestamp,
    error_path,
    field_message,
    label_text,
)
from .labels import label_columns, label_table, parse_labels
from .policy import NO_PII, Limits, PiiPolicy
from .predictions import parse_predictions, prediction_columns, prediction_table

__all__ = [
    "JSON_TYPES",
    "NDJSON_TYPES",
    "NO_PII",
    "BatchError",
    "EventKind",
    "LabelEvent",
    "Limits",
    "PiiPolicy",
    "PredictionEvent",
    "check_event",
    "decode_body",
    "decompress_body",
    "label_columns",
    "label_table",
    "label_text",
    "media_type",
    "parse_labels",
    "parse_predictions",
    "prediction_columns",
    "prediction_table",
]

EventKind = Literal["predictions", "labels"]


_EVENT_MODELS: dict[str, type[PredictionEvent] | type[LabelEvent]] = {
    "predictions": PredictionEvent,
    "labels": LabelEvent,
}


def check_event(
    kind: EventKind,
    event: Mapping[str, Any],
    *,
    limits: Limits = Limits(),
    now: datetime | None = None,
) -> None:
    """Check one event by the rules of :func:`parse_predictions` / :func:`parse_labels`.

    For a caller that wants a bad event refused at once, on its side (the
    client SDK), rather than a batch refused later. The rules and messages are
    those of the batch parsers, which the HTTP service applies; ``now`` (the
    current time by default) stands for the server clock in the timestamp
    rule. Only what needs the store is left out: a label outside the classes
    the store knows for its model, duplicates and conflicts.

    Raises :class:`~xebench.errors.InvalidInputError` (a ``ValueError``) for
    the first problem, as the server would report it: ``argument`` is the
    field's JSON pointer within the event, without the leading slash
    (``"probabilities/1"``, ``"timestamp"``; ``"event"`` when the event is
    not an object), and ``rule`` is the server's message word for word (the
    exception's text is ``"<argument>: <rule>"``).

    Example:
        >>> check_event("predictions", {"request_id": "r1", "model": "fraud",
        ...                             "probabilities": [0.2, 0.8]})
        >>> check_event("predictions", {"request_id": "r1", "model": "fraud",
        ...                             "probabilities": [0.2, 1.3]})
        Traceback (most recent call last):
        ...
        xebench.errors.InvalidInputError: probabilities/1: probabilities must be in [0, 1]; got 1.3
        >>> try:
        ...     check_event("labels", {"request_id": "r1", "label": True, "modle": "fraud"})
        ... except ValueError as error:
        ...     print(error.argument, "|", error.rule)
        modle | unknown field
    """
    model = _EVENT_MODELS.get(kind)
    if model is None:
        raise InvalidInputError("kind", "must be 'predictions' or 'labels'", value=kind)
    try:
        parsed = model.model_validate(event)
    except ValidationError as error:
        first = error.errors(include_url=False)[0]
        raise InvalidInputError(error_path(first["loc"]) or "event", field_message(first)) from None
    now = now or datetime.now(UTC)
    try:
        # In the order of the batch parsers (whose loops call these two inline: the hot path).
        if isinstance(parsed, PredictionEvent):
            check_probabilities(parsed.probabilities, parsed.classes, limits)
        check_timestamp(parsed.timestamp, now, limits)
    except InvalidInputError as problem:
        raise InvalidInputError(problem.argument.lstrip("/"), problem.rule) from None
