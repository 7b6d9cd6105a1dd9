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

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic_core import PydanticSerializationError, from_json, to_json

from ..errors import BatchError, InvalidInputError
from .fields import error_path, field_message
from .policy import Limits

__all__ = ["duplicate_keys", "key_count", "text_problems", "validate_batch"]


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


# --- what pydantic's JSON parser cannot see: repeated keys, lone surrogates ----------


def key_count(body: bytes) -> int:
    """The number of object members in the JSON text ``body``, or more.

    Every key is a string whose closing quote is followed by a colon (after
    optional whitespace), so once the whitespace is removed ``'":'`` occurs
    once per key, plus once per escaped quote followed by a colon inside a
    string (``"a\\":b"``). If the count equals the members of the parsed objects
    (which keep one member per distinct key), no object repeated a key;
    otherwise :func:`duplicate_keys` decides. Counting costs ~0.3 us per event;
    parsing with a hook for every object would cost ~5 times as much on every batch.

    Example:
        >>> key_count(b'{"a": 1, "b": {"c": "x\\":"}}'), key_count(b'{"a" : 1}')
        (4, 1)
    """
    return body.translate(None, b" \t\n\r").count(b'":')


class _Repeated(dict[str, Any]):
    """An object of the JSON text that repeated ``key`` (its last value kept)."""

    key: str = ""


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) == len(pairs):
        return out
    seen: set[str] = set()
    repeated = _Repeated(out)
    repeated.key = next(k for k, _ in pairs if k in seen or seen.add(k))  # type: ignore[func-returns-value]
    return repeated


class _LongInteger(int):
    """An integer literal too long to convert (CPython refuses over 4,300 digits); its
    value is its number of digits."""


def _integer(text: str) -> int:
    digits = len(text.lstrip("-"))
    return int(text) if digits <= 4000 else _LongInteger(digits)


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def text_problems(root: Any, index: int) -> list[tuple[int, str, str]]:
    """The repeated keys, lone surrogates and integers too long to read in event
    ``index`` (a value parsed by :func:`duplicate_keys`' parser): (index, JSON
    pointer, message), first in document order.

    Example:
        >>> text_problems({"features": {"a": "\\ud800"}}, 2)
        [(2, '/2/features/a', 'is not valid Unicode: a lone surrogate (U+D800-U+DFFF) \
cannot be stored')]
    """
    problems: list[tuple[int, str, str]] = []
    stack: list[tuple[Any, tuple[Any, ...]]] = [(root, ())]
    while stack:
        value, path = stack.pop()
        if isinstance(value, dict):
            if isinstance(value, _Repeated):
                where = _pointer(index, (*path, value.key))
                problems.append((index, where, f"repeats the key {value.key!r} in one object"))
            for key, item in reversed(value.items()):
                if _has_surrogate(key):
                    where = _pointer(index, path)
                    problems.append((index, where, "has a key that is not valid Unicode"))
                stack.append((item, (*path, key)))
        elif isinstance(value, list):
            stack.extend((item, (*path, i)) for i, item in reversed(list(enumerate(value))))
        elif isinstance(value, _LongInteger):
            problems.append(
                (
                    index,
                    _pointer(index, path),
                    f"is an integer of {int(value)} digits: numbers must fit a 64-bit integer "
                    "or a double",
                )
            )
        elif isinstance(value, str) and _has_surrogate(value):
            problems.append(
                (
                    index,
                    _pointer(index, path),
                    "is not valid Unicode: a lone surrogate (U+D800-U+DFFF) cannot be stored",
                )
            )
    return problems


def _loads(text: bytes) -> Any:
    """``text`` parsed by Python's JSON parser (lone surrogates kept, repeated keys
    marked), or None when even that parser refuses it (or it nests too deep)."""
    try:
        return json.loads(text, object_pairs_hook=_pairs, parse_int=_integer)
    except (ValueError, RecursionError):
        return None


def duplicate_keys(body: bytes, ndjson: bool = False) -> list[tuple[int, str, str]] | None:
    """The repeated keys and lone surrogates of each event of a JSON array (or one
    object) or NDJSON ``body``: (event index, JSON pointer, message). None when
    Python's JSON parser refuses the body too (it is not JSON).

    Example:
        >>> duplicate_keys(b'[{"a": 1}, {"request_id": "a", "request_id": "b"}]')
        [(1, '/1/request_id', "repeats the key 'request_id' in one object")]
    """
    if ndjson:
        problems: list[tuple[int, str, str]] = []
        lines = [line for line in body.split(b"\n") if line.strip()]
        for index, line in enumerate(lines):
            parsed = _loads(line)
            if parsed is None:
                return None
            problems.extend(text_problems(parsed, index))
        return problems
    parsed = _loads(body)
    if parsed is None:
        return None
    items = parsed if isinstance(parsed, list) else [parsed]
    return [problem for i, item in enumerate(items) for problem in text_problems(item, i)]


def _one_by_one(model: type[BaseModel], items: Sequence[Any]) -> tuple[list[Any], list[_Problem]]:
    """Validate events one at a time: the slow path, taken only when a batch has errors,
    so that every bad event is reported and the good ones still get their semantic checks."""
    events: list[Any] = []
    problems: list[_Problem] = []
    for index, item in enumerate(items):
        try:
            events.append(_validate_one(model, item))
        except ValidationError as error:
            events.append(None)
            problems.extend(_structure_problems(index, error))
    return events, problems


def _validate_one(model: type[BaseModel], item: Any) -> Any:
    """One event, through JSON again so that the rules are exactly those of the fast
    path; from Python when JSON cannot carry it (a lone surrogate or an integer of
    thousands of digits in a dict from a file)."""
    try:
        return model.model_validate_json(to_json(item, inf_nan_mode="constants"))
    except PydanticSerializationError:
        return model.model_validate(item)
    except ValidationError as error:
        if error.errors(include_url=False)[0]["type"] != "json_invalid":
            raise
        return model.model_validate(item)


def _repeated_keys(body: bytes, events: Sequence[Any], ndjson: bool) -> list[_Problem]:
    """The repeated keys of a body whose events all parsed; cheap unless there are some."""
    if key_count(body) == sum(event.members() for event in events):
        return []
    return duplicate_keys(body, ndjson) or []


def _unicode_problems(text: bytes) -> list[Any] | None:
    """The items of a body (or line) that pydantic's parser refused, when Python's
    parser reads it and finds lone surrogates, integers too long or repeated keys
    (None: it is not JSON)."""
    parsed = _loads(text)
    if parsed is None:
        return None
    items = parsed if isinstance(parsed, list) else [parsed]
    if not any(text_problems(item, i) for i, item in enumerate(items)):
        return None
    return items


def _parse_unicode(
    model: type[BaseModel], items: list[Any], limits: Limits
) -> tuple[list[Any], list[_Problem]]:
    """Events of Python-parsed ``items``: those with lone surrogates, integers too long
    or repeated keys are reported, the others validated one by one."""
    _check_count(len(items), limits)
    events: list[Any] = []
    problems: list[_Problem] = []
    for index, item in enumerate(items):
        found = text_problems(item, index)
        if found:
            events.append(None)
            problems.extend(found)
            continue
        parsed, more = _one_by_one(model, [item])
        events.extend(parsed)
        problems.extend((index, f"/{index}{pointer[2:]}", message) for _, pointer, message in more)
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
                    items = _unicode_problems(line)
                    if items is None or len(items) != 1:
                        raise BatchError(
                            400, f"line {index + 1} is not valid JSON: {first['msg']}"
                        ) from None
                    events.append(None)
                    problems.extend(text_problems(items[0], index))
                    continue
                events.append(None)
                problems.extend(_structure_problems(index, error))
        if problems:
            problems.extend(duplicate_keys(body, True) or [])
            return events, problems
        return events, _repeated_keys(body, events, True)
    stripped = body.lstrip()
    if stripped[:1] == b"{":  # a single event is a batch of one
        body = b"[" + body + b"]"
    elif stripped[:1] != b"[":
        raise BatchError(400, "body must be a JSON array of events (or one event object)")
    try:
        events = adapter.validate_json(body)
    except ValidationError as error:
        if error.errors(include_url=False)[0]["type"] == "json_invalid":
            unicode_items = _unicode_problems(body)
            if unicode_items is not None:
                return _parse_unicode(model, unicode_items, limits)
        _raise_if_not_a_batch(error)
        items = from_json(body, allow_inf_nan=True)
        _check_count(len(items), limits)
        events, problems = _one_by_one(model, items)
        return events, problems + (duplicate_keys(body) or [])
    _check_count(len(events), limits)
    return events, _repeated_keys(body, events, False)


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
