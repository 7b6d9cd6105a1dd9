"""A batch of events: its structure, its size, and the one loop that turns it into columns.

A batch is validated whole (DESIGN.md, HTTP): :func:`validate_batch` parses
a JSON array, one object, NDJSON or a sequence of dicts, checks every event
and returns the columns of every event, or raises
:class:`~xebench.errors.BatchError` with one entry per bad event (index,
JSON pointer, message), so nothing of a bad batch is ever stored. What the
columns are is the caller's (:mod:`~xebench.ingest.predictions`,
:mod:`~xebench.ingest.labels`).

Example:
    >>> from xebench.ingest.fields import LabelEvent
    >>> from pydantic import TypeAdapter
    >>> def add(event, now, columns):
    ...     columns["request_id"].append(event.request_id)
    >>> validate_batch(TypeAdapter(list[LabelEvent]), LabelEvent, ["request_id"],
    ...                b'{"request_id": "r1", "label": 1}', add_row=add)
    {'request_id': ['r1']}
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic_core import from_json, to_json

from ..errors import BatchError, InvalidInputError
from .fields import error_path, field_message
from .policy import Limits

__all__ = ["validate_batch"]


def _pointer(index: int, loc: Sequence[Any]) -> str:
    return "/" + error_path((index, *loc))


def _first_per_event(errors: Iterable[tuple[int, str, str]]) -> list[dict[str, Any]]:
    seen: dict[int, dict[str, Any]] = {}
    for index, pointer, message in errors:
        seen.setdefault(index, {"index": index, "field": pointer, "message": message})
    return [seen[i] for i in sorted(seen)]


def _invalid(errors: list[dict[str, Any]], total: int) -> BatchError:
    verb = "is" if len(errors) == 1 else "are"
    shown = errors[:100]
    detail = f"{len(errors)} of {total} events {verb} invalid; nothing of the batch was stored"
    return BatchError(422, detail, shown)


_Problem = tuple[int, str, str]  # (event index, JSON pointer, message)


def _structure_problems(index: int, error: ValidationError) -> list[_Problem]:
    return [
        (index, _pointer(index, item["loc"]), field_message(item))
        for item in error.errors(include_url=False)
    ]


def _one_by_one(model: type[BaseModel], items: Sequence[Any]) -> tuple[list[Any], list[_Problem]]:
    """Validate events one at a time: the slow path, taken only when a batch has errors,
    so that every bad event is reported and the good ones still get their semantic checks."""
    events: list[Any] = []
    problems: list[_Problem] = []
    for index, item in enumerate(items):
        try:
            # Through JSON again, so the rules are exactly those of the fast path.
            events.append(model.model_validate_json(to_json(item, inf_nan_mode="constants")))
        except ValidationError as error:
            events.append(None)
            problems.extend(_structure_problems(index, error))
    return events, problems


def _parse(
    adapter: TypeAdapter[Any],
    model: type[BaseModel],
    body: bytes | Sequence[Mapping[str, Any]],
    ndjson: bool,
    limits: Limits,
) -> tuple[list[Any], list[_Problem]]:
    """Structural validation of a batch: JSON array, single object, NDJSON or dicts.

    Returns the events (None where an event is malformed) and the problems
    found; raises :class:`BatchError` for a body that is not a batch at all.
    """
    if not isinstance(body, (bytes, bytearray)):
        items = list(body)
        _check_count(len(items), limits)
        try:
            return adapter.validate_python(items), []
        except ValidationError:
            return _one_by_one(model, items)
    if ndjson:
        lines = [line for line in body.split(b"\n") if line.strip()]
        _check_count(len(lines), limits)
        events: list[Any] = []
        problems: list[_Problem] = []
        for index, line in enumerate(lines):
            try:
                events.append(model.model_validate_json(line))
            except ValidationError as error:
                first = error.errors(include_url=False)[0]
                if first["type"] == "json_invalid":
                    raise BatchError(
                        400, f"line {index + 1} is not valid JSON: {first['msg']}"
                    ) from None
                events.append(None)
                problems.extend(_structure_problems(index, error))
        return events, problems
    stripped = body.lstrip()
    if stripped[:1] == b"{":  # a single event is a batch of one
        body = b"[" + body + b"]"
    elif stripped[:1] != b"[":
        raise BatchError(400, "body must be a JSON array of events (or one event object)")
    try:
        events = adapter.validate_json(body)
    except ValidationError as error:
        _raise_if_not_a_batch(error)
        items = from_json(body, allow_inf_nan=True)
        _check_count(len(items), limits)
        return _one_by_one(model, items)
    _check_count(len(events), limits)
    return events, []


def _check_count(n: int, limits: Limits) -> None:
    if n > limits.max_events:
        raise BatchError(413, f"batch has {n} events; at most {limits.max_events} per request")
    if n == 0:
        raise BatchError(422, "batch is empty: send at least one event")


def _raise_if_not_a_batch(error: ValidationError) -> None:
    """A 400 for a body that is not JSON or not an array; event errors are left to the caller."""
    for item in error.errors(include_url=False):
        loc = item["loc"]
        if item["type"] == "json_invalid" or not loc:
            raise BatchError(400, f"body is not valid JSON: {item['msg']}") from None
        if not isinstance(loc[0], int):
            raise BatchError(400, f"body must be a JSON array of events: {item['msg']}") from None


def validate_batch(
    adapter: TypeAdapter[Any],
    model: type[BaseModel],
    names: Sequence[str],
    body: bytes | Sequence[Mapping[str, Any]],
    *,
    add_row: Callable[[Any, datetime, dict[str, list[Any]]], None],
    ndjson: bool = False,
    limits: Limits = Limits(),
    now: datetime | None = None,
) -> dict[str, list[Any]]:
    """Validate a batch and build its columns; raise :class:`~xebench.errors.BatchError`.

    ``adapter`` validates a list of ``model`` (the fast path, one call for
    the batch); ``names`` are the columns. ``add_row(event, now, columns)``
    is called for each well-formed event, in order, with ``now`` the time of
    receipt: it raises :class:`~xebench.errors.InvalidInputError` (``argument``: the
    field's JSON pointer within the event) for a bad
    event *before* it appends anything, or appends one value to every column.

    Example:
        >>> from xebench.ingest.fields import LabelEvent
        >>> def add(event, now, columns):
        ...     if event.label == "?":
        ...         raise InvalidInputError("/label", "label must be known")
        ...     columns["label"].append(event.label)
        >>> try:
        ...     validate_batch(TypeAdapter(list[LabelEvent]), LabelEvent, ["label"],
        ...                    b'[{"request_id": "a", "label": "?"}, {"request_id": "b"}]',
        ...                    add_row=add)
        ... except BatchError as error:
        ...     print(error.status, [e["field"] for e in error.errors])
        422 ['/0/label', '/1/label']
    """
    events, problems = _parse(adapter, model, body, ndjson, limits)
    now = now or datetime.now(UTC)
    columns: dict[str, list[Any]] = {name: [] for name in names}
    for index, event in enumerate(events):
        if event is None:
            continue
        try:
            add_row(event, now, columns)
        except InvalidInputError as problem:
            problems.append((index, f"/{index}{problem.argument}", problem.rule))
    if problems:
        raise _invalid(_first_per_event(problems), len(events))
    return columns
