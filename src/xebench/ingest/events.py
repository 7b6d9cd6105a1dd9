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
"""

from __future__ import annotations

import hmac
import math
import re
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from hashlib import sha256
from typing import Annotated, Any, Literal

import pyarrow as pa
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
)
from pydantic_core import from_json, to_json

from .._validation import ROW_SUM_TOLERANCE
from ..errors import BatchError, InvalidInputError
from ..store.schema import LABEL_SCHEMA, PREDICTION_SCHEMA, fingerprint, hash64

__all__ = [
    "JSON_TYPES",
    "NDJSON_TYPES",
    "BatchError",
    "LabelEvent",
    "Limits",
    "PiiPolicy",
    "PredictionEvent",
    "check_event",
    "decode_body",
    "decompress_body",
    "label_columns",
    "label_text",
    "media_type",
    "parse_labels",
    "parse_predictions",
    "prediction_columns",
]

#: Media types of a JSON array (or a single JSON object) body.
JSON_TYPES = frozenset({"application/json"})
#: Media types of a newline-delimited JSON body (one event per line).
NDJSON_TYPES = frozenset(
    {"application/x-ndjson", "application/ndjson", "application/jsonl", "application/json-lines"}
)

_NAME = r"^[\w.\-:/@+]{1,128}$"
_KEY = r"^[\w.\-:/@+]{1,64}$"
_PRINTABLE = re.compile(r"^[^\x00-\x1f\x7f]{1,256}$")


@dataclass(frozen=True)
class Limits:
    """Bounds on one request, so that no client can exhaust the server.

    Attributes:
        max_body_bytes: body size after decompression (413 above it).
        max_events: events in one batch (413 above it).
        max_future: how far ahead of the server clock a timestamp may be.
        max_classes: entries of a probability vector.

    Example:
        >>> Limits().max_body_bytes == 20 * 1024 * 1024
        True
    """

    max_body_bytes: int = 20 * 1024 * 1024
    max_events: int = 10_000
    max_future: timedelta = timedelta(hours=1)
    max_classes: int = 10_000


# --- the event models ------------------------------------------------------------


def _scalar_feature(value: Any) -> Any:
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidInputError(
                "feature value", "must be finite (NaN and infinity are refused)"
            )
        return value
    raise InvalidInputError(
        "feature value", "must be a string, a number, a boolean or null (no nesting)"
    )


def _cohort_value(value: Any) -> str:
    if isinstance(value, str):
        if len(value) > 256 or not _PRINTABLE.match(value or " "):
            raise InvalidInputError("cohort value", "must be 0-256 printable characters")
        return value
    if isinstance(value, (bool, int)):
        return label_text(value)
    raise InvalidInputError("cohort value", "must be a string, an integer or a boolean")


Name = Annotated[str, Field(strict=True, pattern=_NAME)]
Key = Annotated[str, Field(pattern=_KEY)]
# A pattern, not a Python validator: checked in Rust, it costs nothing per event.
RequestId = Annotated[str, Field(strict=True, pattern=_PRINTABLE.pattern)]


def _label(value: Any) -> Any:
    if isinstance(value, (str, bool, int)) and value != "":
        return value
    raise InvalidInputError("label", "must be a non-empty string, an integer or a boolean")


Label = Annotated[Any, AfterValidator(_label)]


class PredictionEvent(BaseModel):
    """One prediction as sent by a client (structure only; see :func:`parse_predictions`).

    Example:
        >>> PredictionEvent(request_id="r1", model="m", probabilities=0.3).version
        ''
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    request_id: RequestId
    model: Name
    version: Annotated[str, Field(strict=True, pattern=r"^[\w.\-:/@+]{0,128}$")] = ""
    timestamp: AwareDatetime | None = None
    # Checked by hand after parsing, for exact messages and JSON-pointer paths.
    probabilities: Any
    classes: list[Label] | None = None
    cohort: dict[Key, Annotated[Any, AfterValidator(_cohort_value)]] = Field(
        default_factory=dict, max_length=32
    )
    features: dict[Key, Annotated[Any, AfterValidator(_scalar_feature)]] = Field(
        default_factory=dict, max_length=256
    )


class LabelEvent(BaseModel):
    """One observed outcome; ``model`` omitted means every model that scored the request.

    Example:
        >>> LabelEvent(request_id="r1", label=True).model is None
        True
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    request_id: RequestId
    model: Name | None = None
    label: Label
    timestamp: AwareDatetime | None = None


_PREDICTIONS = TypeAdapter(list[PredictionEvent])
_LABELS = TypeAdapter(list[LabelEvent])


# --- privacy ------------------------------------------------------------------------


@dataclass(frozen=True)
class PiiPolicy:
    """Cohort and feature keys to drop, or to replace by a keyed hash, before storage.

    The hash is HMAC-SHA256 with a secret key, so values can still be grouped
    and joined but not reversed by someone who lacks the key; the same value
    always maps to the same token (idempotent resends stay identical).

    Example:
        >>> policy = PiiPolicy(drop=frozenset({"email"}), hash=frozenset({"user"}), key=b"k")
        >>> policy.apply({"email": "a@b.c", "user": "u-17", "plan": "pro"})
        {'user': 'h:8ee45fc7054f1027', 'plan': 'pro'}
    """

    drop: frozenset[str] = frozenset()
    hash: frozenset[str] = frozenset()
    key: bytes = b""

    def __post_init__(self) -> None:
        if self.hash and not self.key:
            raise InvalidInputError(
                "pii", "hashing keys needs a secret key (pii.key_env or pii.key)"
            )

    @property
    def active(self) -> bool:
        """Whether the policy changes anything."""
        return bool(self.drop or self.hash)

    def apply(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """A copy of ``values`` with dropped keys removed and hashed keys replaced."""
        out: dict[str, Any] = {}
        for name, value in values.items():
            if name in self.drop:
                continue
            if name in self.hash and value is not None:
                digest = hmac.new(self.key, str(value).encode("utf-8"), sha256).hexdigest()
                value = "h:" + digest[:16]
            out[name] = value
        return out


NO_PII = PiiPolicy()


# --- bodies -------------------------------------------------------------------------


def media_type(content_type: str | None) -> str:
    """The media type of a ``Content-Type`` header, without parameters, lower case.

    Example:
        >>> media_type("Text/CSV; charset=utf-8"), media_type(None)
        ('text/csv', '')
    """
    return (content_type or "").split(";", 1)[0].strip().lower()


def _gunzip(raw: bytes, limit: int) -> bytes:
    # Decompress in bounded steps: a 20 KiB gzip bomb can expand to gigabytes.
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    out = bytearray()
    data = raw
    while data:
        try:
            out += inflater.decompress(data, limit + 1 - len(out))
        except zlib.error as error:
            raise BatchError(400, f"body is not valid gzip: {error}") from None
        if len(out) > limit:
            raise BatchError(413, f"body exceeds {limit} bytes after decompression")
        data = inflater.unconsumed_tail
    if not inflater.eof:
        raise BatchError(400, "body is not valid gzip: truncated stream")
    return bytes(out)


def decode_body(
    raw: bytes,
    content_type: str | None,
    content_encoding: str | None = None,
    limits: Limits = Limits(),
) -> tuple[bytes, bool]:
    """Check the media type and encoding of a body; return ``(json_bytes, is_ndjson)``.

    Raises :class:`BatchError` 415 for another media type or encoding, 413
    for a body over ``limits.max_body_bytes`` after decompression, 400 for a
    corrupt gzip stream.

    Example:
        >>> import gzip
        >>> decode_body(gzip.compress(b"[]"), "application/json", "gzip")
        (b'[]', False)
        >>> decode_body(b"{}", "text/plain")
        Traceback (most recent call last):
        ...
        xebench.errors.BatchError: unsupported content type 'text/plain':
        send application/json (an array of events) or application/x-ndjson (one event per line)
    """
    media = media_type(content_type)
    if media not in JSON_TYPES and media not in NDJSON_TYPES:
        raise BatchError(
            415,
            f"unsupported content type {media or '(none)'!r}: send application/json "
            "(an array of events) or application/x-ndjson (one event per line)",
        )
    return decompress_body(raw, content_encoding, limits), media in NDJSON_TYPES


def decompress_body(raw: bytes, content_encoding: str | None, limits: Limits = Limits()) -> bytes:
    """The body after its ``Content-Encoding`` (gzip or none), within ``limits.max_body_bytes``.

    Raises :class:`BatchError` 415 for another encoding, 413 for a body over
    the limit after decompression, 400 for a corrupt gzip stream.

    Example:
        >>> import gzip
        >>> decompress_body(gzip.compress(b"a,b"), "gzip")
        b'a,b'
    """
    encoding = (content_encoding or "identity").strip().lower()
    if encoding == "gzip":
        body = _gunzip(raw, limits.max_body_bytes)
    elif encoding == "identity":
        body = raw
    else:
        raise BatchError(415, f"unsupported content encoding {encoding!r}: use gzip or none")
    if len(body) > limits.max_body_bytes:
        raise BatchError(413, f"body exceeds {limits.max_body_bytes} bytes")
    return body


def _path(loc: Sequence[Any]) -> str:
    """A pydantic error location as JSON-pointer tokens joined by ``/`` (no leading slash)."""
    return "/".join(str(part).replace("~", "~0").replace("/", "~1") for part in loc)


def _pointer(index: int, loc: Sequence[Any]) -> str:
    return "/" + _path((index, *loc))


def _message(error: Mapping[str, Any]) -> str:
    message = str(error["msg"])
    if error["type"] == "extra_forbidden":
        return "unknown field"
    if error["type"] == "string_pattern_mismatch":
        pattern = error.get("ctx", {}).get("pattern")
        if pattern == _PRINTABLE.pattern:
            message = "must be 1-256 printable characters (no control characters)"
        else:
            size = {_NAME: "1-128", _KEY: "1-64"}.get(pattern, "0-128")
            return (
                f"must be {size} letters, digits or . _ - : / @ + (no spaces, quotes or semicolons)"
            )
    if message.startswith("Value error, "):
        message = message[len("Value error, ") :]
    if "input" in error and error["type"] not in ("missing",):
        value = error["input"]
        if isinstance(value, (str, int, float, bool)) or value is None:
            text = repr(value)
            message += f"; got {text if len(text) <= 60 else text[:57] + '...'}"
    return message


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
        (index, _pointer(index, item["loc"]), _message(item))
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


# --- normalisation ------------------------------------------------------------------


def label_text(value: Any) -> str:
    """The stored text of a label or class: booleans as ``"1"``/``"0"``, integers in decimal.

    Example:
        >>> label_text(True), label_text(2), label_text(1.0), label_text("cat")
        ('1', '2', '1', 'cat')
    """
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


class _EventProblem(Exception):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def _probability(value: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _EventProblem(field, f"probabilities must be numbers; got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise _EventProblem(
            field, f"probabilities must be finite (NaN and infinity are refused); got {value!r}"
        )
    if not 0.0 <= value <= 1.0:
        raise _EventProblem(field, f"probabilities must be in [0, 1]; got {value!r}")
    return value


def _distribution(
    raw: Any, classes: list[Any] | None, limits: Limits
) -> tuple[list[str], list[float]]:
    """Classes (text) and the probability vector of one event, or :class:`_EventProblem`."""
    if isinstance(raw, Mapping):
        if classes is not None:
            raise _EventProblem("/classes", "omit classes when probabilities is an object")
        names, values = list(raw.keys()), list(raw.values())
        fields = [f"/probabilities/{name}" for name in names]
    elif isinstance(raw, list):
        names, values = classes, raw
        fields = [f"/probabilities/{i}" for i in range(len(raw))]
        if len(raw) < 2:
            raise _EventProblem("/probabilities", "a probability vector needs at least 2 classes")
    else:
        p = _probability(raw, "/probabilities")
        if classes is not None and len(classes) != 2:
            raise _EventProblem(
                "/classes", f"a single probability needs 2 classes; got {len(classes)}"
            )
        names = classes if classes is not None else ["0", "1"]
        return [label_text(c) for c in names], [1.0 - p, p]
    if len(values) > limits.max_classes:
        raise _EventProblem("/probabilities", f"at most {limits.max_classes} classes")
    probs = [_probability(v, f) for v, f in zip(values, fields, strict=True)]
    total = math.fsum(probs)
    if not abs(total - 1.0) <= ROW_SUM_TOLERANCE:
        raise _EventProblem(
            "/probabilities",
            f"probabilities must sum to 1 within {ROW_SUM_TOLERANCE:g}; sum is {total!r}",
        )
    if names is None:
        texts = [str(i) for i in range(len(probs))]
    else:
        if len(names) != len(probs):
            raise _EventProblem(
                "/probabilities",
                f"has {len(probs)} values but classes has {len(names)}: one probability per class",
            )
        texts = [label_text(c) for c in names]
        if len(set(texts)) != len(texts):
            raise _EventProblem("/classes", "classes must be distinct")
    return texts, probs


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def _event_time(
    timestamp: datetime | None, now: datetime, limits: Limits
) -> tuple[datetime, int | None]:
    """The event time in UTC and, for the payload hash, the microseconds sent (None: not sent)."""
    if timestamp is None:
        return now, None
    timestamp = timestamp.astimezone(UTC)
    if timestamp - now > limits.max_future:
        raise _EventProblem(
            "/timestamp",
            f"timestamp {timestamp.isoformat()} is more than {limits.max_future} ahead of "
            f"the server clock ({now.isoformat(timespec='seconds')})",
        )
    return timestamp, (timestamp - _EPOCH) // _MICROSECOND


def prediction_columns(
    body: bytes | Sequence[Mapping[str, Any]],
    *,
    tenant: str,
    ndjson: bool = False,
    limits: Limits = Limits(),
    pii: PiiPolicy = NO_PII,
    now: datetime | None = None,
) -> dict[str, list[Any]]:
    """Validate a batch of prediction events into the columns of :data:`PREDICTION_SCHEMA`.

    ``body`` is a JSON array (or one object), NDJSON when ``ndjson`` is true,
    or a sequence of dicts (file import). Raises :class:`BatchError`.

    Example:
        >>> t = parse_predictions([{"request_id": "a", "model": "m",
        ...                         "probabilities": {"cat": 0.25, "dog": 0.75}}], tenant="t")
        >>> t["classes"][0].as_py(), t["probabilities"][0].as_py()
        (['cat', 'dog'], [0.25, 0.75])
    """
    events, problems = _parse(_PREDICTIONS, PredictionEvent, body, ndjson, limits)
    now = now or datetime.now(UTC)
    columns: dict[str, list[Any]] = {name: [] for name in PREDICTION_SCHEMA.names}
    for index, event in enumerate(events):
        if event is None:
            continue
        try:
            classes, probs = _distribution(event.probabilities, event.classes, limits)
            event_time, sent_time = _event_time(event.timestamp, now, limits)
        except _EventProblem as problem:
            problems.append((index, f"/{index}{problem.field}", problem.message))
            continue
        cohort = pii.apply(event.cohort) if pii.active else event.cohort
        features = pii.apply(event.features) if pii.active else event.features
        features_json = to_json(dict(sorted(features.items()))).decode()
        columns["fp"].append(fingerprint(tenant, event.model, event.request_id))
        columns["rfp"].append(fingerprint(tenant, "", event.request_id))
        columns["tenant"].append(tenant)
        columns["model"].append(event.model)
        columns["version"].append(event.version)
        columns["request_id"].append(event.request_id)
        columns["event_time"].append(event_time)
        columns["ingest_time"].append(now)
        columns["classes"].append(classes)
        columns["probabilities"].append(probs)
        columns["cohort"].append(list(cohort.items()))
        columns["features"].append(features_json)
        # What the client sent, after the privacy policy: an identical resend hashes the same
        # even when it leaves the timestamp to the server.
        content = (event.version, sent_time, classes, probs, sorted(cohort.items()), features_json)
        columns["payload_hash"].append(hash64(to_json(content)))
    if problems:
        raise _invalid(_first_per_event(problems), len(events))
    return columns


def parse_predictions(
    body: bytes | Sequence[Mapping[str, Any]],
    *,
    tenant: str,
    ndjson: bool = False,
    limits: Limits = Limits(),
    pii: PiiPolicy = NO_PII,
    now: datetime | None = None,
) -> pa.Table:
    """:func:`prediction_columns` as a :data:`PREDICTION_SCHEMA` table (see there for the rules).

    The service skips this step per request: its writer builds one table for
    all the requests it commits together, which costs a fraction per event.
    """
    return pa.table(
        prediction_columns(body, tenant=tenant, ndjson=ndjson, limits=limits, pii=pii, now=now),
        schema=PREDICTION_SCHEMA,
    )


def label_columns(
    body: bytes | Sequence[Mapping[str, Any]],
    *,
    tenant: str,
    ndjson: bool = False,
    limits: Limits = Limits(),
    known_labels: Callable[[str | None], set[str] | None] | None = None,
    now: datetime | None = None,
) -> dict[str, list[Any]]:
    """Validate a batch of label events into the columns of :data:`LABEL_SCHEMA`.

    ``known_labels(model)`` returns the classes the store has seen for that
    model (every model of the tenant when ``model`` is None), or None when it
    knows none; a label outside a known class list is refused.

    Example:
        >>> t = parse_labels(b'{"request_id": "a", "label": true}', tenant="t")
        >>> t["label"][0].as_py(), t["model"][0].as_py()
        ('1', '')
        >>> parse_labels(b'[{"request_id": "a", "model": "m", "label": "fox"}]', tenant="t",
        ...              known_labels=lambda model: {"cat", "dog"})
        Traceback (most recent call last):
        ...
        xebench.errors.BatchError: 1 of 1 events is invalid; nothing of the batch was stored
    """
    events, problems = _parse(_LABELS, LabelEvent, body, ndjson, limits)
    now = now or datetime.now(UTC)
    columns: dict[str, list[Any]] = {name: [] for name in LABEL_SCHEMA.names}
    known_cache: dict[str | None, set[str] | None] = {}
    for index, event in enumerate(events):
        if event is None:
            continue
        label = label_text(event.label)
        try:
            event_time, sent_time = _event_time(event.timestamp, now, limits)
            if known_labels is not None:
                if event.model not in known_cache:
                    known_cache[event.model] = known_labels(event.model)
                known = known_cache[event.model]
                if known is not None and label not in known:
                    whose = f"model {event.model!r}" if event.model else "any model of the tenant"
                    shown = ", ".join(sorted(known)[:20])
                    raise _EventProblem(
                        "/label", f"label {label!r} is not a class of {whose} (classes: {shown})"
                    )
        except _EventProblem as problem:
            problems.append((index, f"/{index}{problem.field}", problem.message))
            continue
        model = event.model or ""
        columns["fp"].append(fingerprint(tenant, model, event.request_id))
        columns["tenant"].append(tenant)
        columns["model"].append(model)
        columns["request_id"].append(event.request_id)
        columns["label"].append(label)
        columns["event_time"].append(event_time)
        columns["ingest_time"].append(now)
        columns["payload_hash"].append(hash64(to_json((label, sent_time))))
    if problems:
        raise _invalid(_first_per_event(problems), len(events))
    return columns


def parse_labels(
    body: bytes | Sequence[Mapping[str, Any]],
    *,
    tenant: str,
    ndjson: bool = False,
    limits: Limits = Limits(),
    known_labels: Callable[[str | None], set[str] | None] | None = None,
    now: datetime | None = None,
) -> pa.Table:
    """:func:`label_columns` as a :data:`LABEL_SCHEMA` table (see there for the rules).

    The service skips this step per request: its writer builds one table for
    all the requests it commits together, which costs a fraction per event.
    """
    return pa.table(
        label_columns(
            body, tenant=tenant, ndjson=ndjson, limits=limits, known_labels=known_labels, now=now
        ),
        schema=LABEL_SCHEMA,
    )


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
        raise InvalidInputError(_path(first["loc"]) or "event", _message(first)) from None
    now = now or datetime.now(UTC)
    try:
        # In the order of the batch parsers (whose loops call these two inline: the hot path).
        if isinstance(parsed, PredictionEvent):
            _distribution(parsed.probabilities, parsed.classes, limits)
        _event_time(parsed.timestamp, now, limits)
    except _EventProblem as problem:
        raise InvalidInputError(problem.field.lstrip("/"), problem.message) from None
