"""The fast path for a batch of prediction events: JSON bytes to an Arrow table, column-wise.

:func:`~xebench.ingest.predictions.prediction_columns` validates events one at
a time through pydantic and Python rules (~15 us per event). This module
decodes a whole body with msgspec into small structs (~1 us per event), checks
the rules column-wise (names and keys by regular expression over their
distinct values, probability ranges with NumPy, timestamps parsed in bulk from
their digits) and builds the Arrow columns of
:data:`~xebench.store.schema.PREDICTION_SCHEMA` directly, with the same
fingerprints and payload hashes as the per-event path.

It only ever *accepts*: whenever it meets anything it is not sure of (an error,
but also a rare shape such as a timestamp with a lowercase ``t``, a duplicate
JSON key, a float written with an exponent), it returns None and the caller
runs the per-event path, which is the reference: it accepts or refuses the
batch with its exact per-event errors (index, JSON pointer, message).
``tests/ingest/test_fast.py`` checks, with hypothesis, that every batch the
fast path accepts is accepted by the per-event path with identical columns.

Example:
    >>> from datetime import UTC, datetime
    >>> now = datetime(2026, 1, 1, tzinfo=UTC)
    >>> body = b'[{"request_id": "r1", "model": "m", "probabilities": 0.9}]'
    >>> table = fast_prediction_table(body, tenant="t", now=now)
    >>> table["probabilities"][0].as_py(), table["classes"][0].as_py()
    ([0.09999999999999998, 0.9], ['0', '1'])
    >>> fast_prediction_table(b'[{"request_id": "r1", "model": "m", "probabilities": 2}]',
    ...                       tenant="t", now=now) is None  # the per-event path says why
    True
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from hashlib import blake2b
from typing import Annotated, Any

import msgspec
import numpy as np
import pyarrow as pa
from msgspec.structs import astuple
from numpy.typing import NDArray

from ..errors import InvalidInputError
from ..store.schema import PREDICTION_SCHEMA, TIMESTAMP
from .fields import MAX_WEIGHT, MIN_WEIGHT, check_probabilities, label_text
from .policy import NO_PII, Limits, PiiPolicy

__all__ = ["fast_prediction_table"]

# Integers beyond 64 bits fail to decode here: the per-event path judges them.
_Int = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]
_UNSET: Any = msgspec.UNSET


class _Event(msgspec.Struct, forbid_unknown_fields=True):
    """A prediction event as msgspec decodes it; UNSET marks a field that was not sent
    (its keys are counted, to detect duplicate JSON keys)."""

    request_id: str
    model: str
    probabilities: float | list[float] | dict[str, float]
    version: str | msgspec.UnsetType = _UNSET
    timestamp: str | msgspec.UnsetType | None = _UNSET
    classes: list[str | _Int | bool] | msgspec.UnsetType | None = _UNSET
    cohort: dict[str, str | _Int | bool] | msgspec.UnsetType = _UNSET
    features: dict[str, str | _Int | float | bool | None] | msgspec.UnsetType = _UNSET
    weight: float | msgspec.UnsetType = _UNSET  # an integer decodes as a float; no bool


_ARRAY = msgspec.json.Decoder(list[_Event])
_ONE = msgspec.json.Decoder(_Event)
_SORTED = msgspec.json.Encoder(order="sorted")
_ENCODE = msgspec.json.Encoder()

# The ASCII part of the names' alphabet (fields.py allows Unicode letters too: those
# batches take the per-event path).
_NAME = re.compile(r"[A-Za-z0-9_.\-:/@+]{1,128}")
_VERSION = re.compile(r"[A-Za-z0-9_.\-:/@+]{0,128}")
_KEY = re.compile(r"[A-Za-z0-9_.\-:/@+]{1,64}")
# A JSON float with a positive exponent is written 1e16 by msgspec, 1e+16 by pydantic.
_EXPONENT = re.compile(rb"[0-9.]e[0-9]")
_NEGATIVE_ZERO = re.compile(rb":-0\.0[,}]")

_MAX_COHORT, _MAX_FEATURES = 32, 256  # the models' max_length (fields.py)
_MAX_TEXT, _MAX_FEATURE_TEXT = 256, 1024
_FLOAT_DIGITS = 1e16  # below this both encoders write a float the same way
_MAX_OFFSET_MINUTES = 18 * 60
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
_EMPTY: dict[str, Any] = {}
_COLON, _QUOTE, _BACKSLASH = ord(":"), ord('"'), ord("\\")
_SPACES = np.array([ord(c) for c in " \t\r\n"], dtype=np.uint8)


class _Unsure(Exception):
    """Not for the fast path: the per-event path decides."""


def fast_prediction_table(
    body: bytes,
    *,
    tenant: str,
    ndjson: bool = False,
    limits: Limits = Limits(),
    pii: PiiPolicy = NO_PII,
    now: datetime | None = None,
) -> pa.Table | None:
    """The :data:`PREDICTION_SCHEMA` table of a valid batch, or None: "ask the per-event path".

    The same result as :func:`~xebench.ingest.predictions.parse_predictions`
    for every batch it accepts (see the module docstring).

    Example:
        >>> body = b'{"request_id": "r1", "model": "m", "probabilities": [0.2, 0.8]}\\n'
        >>> fast_prediction_table(body, tenant="t", ndjson=True)["probabilities"].to_pylist()
        [[0.2, 0.8]]
    """
    now = now or datetime.now(UTC)
    try:
        events = _decode(body, ndjson)
        if not 1 <= len(events) <= limits.max_events:
            return None
        return _table(body, events, tenant, limits, pii, now)
    except (_Unsure, msgspec.DecodeError, msgspec.EncodeError, InvalidInputError):
        return None


def _decode(body: bytes, ndjson: bool) -> list[_Event]:
    if ndjson:
        lines = [line for line in body.split(b"\n") if line.strip()]
        # One array, one decode; the count proves that every line held exactly one value.
        events = _ARRAY.decode(b"[" + b",".join(lines) + b"]")
        if len(events) != len(lines):
            raise _Unsure
        return events
    start = body.lstrip()[:1]
    if start == b"[":
        return _ARRAY.decode(body)
    if start == b"{":
        return [_ONE.decode(body)]
    raise _Unsure


def _default(column: tuple[Any, ...], value: Any) -> tuple[Any, ...] | list[Any]:
    """``column`` with UNSET (a field not sent) replaced by the field's default."""
    if _UNSET not in column:
        return column
    return [value if v is _UNSET else v for v in column]


def _check_keys(body: bytes, n: int, present: int, counts: int) -> None:
    """Duplicate JSON keys, which both decoders would let the last one win.

    Every key is a string followed by a colon. With no whitespace before any
    colon, the ``":`` pairs of the body are its keys plus any ``\\":`` inside
    strings, so their count equals the keys decoded only if no key was repeated.
    """
    chars = np.frombuffer(body, dtype=np.uint8)
    before = chars[np.flatnonzero(chars[1:] == _COLON)]  # the byte before each colon
    if bool(np.isin(before, _SPACES).any()):
        raise _Unsure
    if int(np.count_nonzero(before == _QUOTE)) != 3 * n + present + counts:
        raise _Unsure


def _names(values: list[str], pattern: re.Pattern[str]) -> None:
    for value in set(values):
        if not pattern.fullmatch(value):
            raise _Unsure


def _printable(values: list[str], longest: int, *, empty: bool) -> None:
    if not "".join(values).isprintable():  # no control, format or surrogate character
        raise _Unsure
    lengths = list(map(len, values))
    if max(lengths) > longest or (not empty and min(lengths) == 0):
        raise _Unsure


def _table(
    body: bytes,
    events: list[_Event],
    tenant: str,
    limits: Limits,
    pii: PiiPolicy,
    now: datetime,
) -> pa.Table:
    n = len(events)
    # Field by field (the struct's order), transposed in C.
    (request_ids, models, raw_probs, versions, stamps, classes, cohorts, features, weights) = zip(
        *map(astuple, events), strict=True
    )
    optional = (versions, stamps, classes, cohorts, features, weights)
    present = len(optional) * n - sum(column.count(_UNSET) for column in optional)
    versions = _default(versions, "")
    cohorts = _default(cohorts, _EMPTY)
    features = _default(features, _EMPTY)
    nested = sum(map(len, cohorts)) + sum(map(len, features))
    if dict in set(map(type, raw_probs)):
        nested += sum(len(p) for p in raw_probs if type(p) is dict)
    _check_keys(body, n, present, nested)

    _printable(request_ids, _MAX_TEXT, empty=False)
    _names(models, _NAME)
    _names(versions, _VERSION)
    class_lists, prob_lists = _probabilities(raw_probs, classes, limits)
    event_us, sent_us = _times(stamps, now, limits)
    cohorts = _cohorts(cohorts)
    if pii.active:
        cohorts = [pii.apply(c) for c in cohorts]
        features = [pii.apply(f) for f in features]
    features_json, features_column = _features(features)
    weight, weight_json = _weights(weights)

    fps = _fingerprints(f"{tenant}\0", models, request_ids)
    rfps = _fingerprints(f"{tenant}\0", [""] * n, request_ids)
    encode = _ENCODE.encode
    hashes = np.frombuffer(
        b"".join(
            [
                blake2b(
                    encode((v, s, c, p, sorted(co.items())))[:-1] + b"," + _quoted(f) + w + b"]",
                    digest_size=8,
                ).digest()
                for v, s, c, p, co, f, w in zip(
                    versions,
                    sent_us,
                    class_lists,
                    prob_lists,
                    cohorts,
                    features_json,
                    weight_json,
                    strict=True,
                )
            ]
        ),
        "<i8",
    )
    now_us = (now - _EPOCH) // _US
    columns = [
        pa.array(fps, pa.int64()),
        pa.array(rfps, pa.int64()),
        pa.array([tenant] * n, pa.string()),
        pa.array(models, pa.string()),
        pa.array(versions, pa.string()),
        pa.array(request_ids, pa.string()),
        pa.array(event_us, pa.int64()).cast(TIMESTAMP),
        pa.array(np.full(n, now_us, dtype=np.int64)).cast(TIMESTAMP),
        _lists(class_lists, pa.string()),
        _lists(prob_lists, pa.float64()),
        _map(cohorts),
        features_column,
        pa.array(hashes, pa.int64()),
        pa.array(weight, pa.float64()),
    ]
    return pa.Table.from_arrays(columns, schema=PREDICTION_SCHEMA)


def _fingerprints(prefix: str, models: list[str], request_ids: list[str]) -> NDArray[np.int64]:
    """``schema.fingerprint`` of every event (BLAKE2b of the NUL-joined key), vectorised
    only in that the digests are read as one int64 array."""
    digests = b"".join(
        [
            blake2b(f"{prefix}{m}\0{r}".encode(), digest_size=8).digest()
            for m, r in zip(models, request_ids, strict=True)
        ]
    )
    return np.frombuffer(digests, "<i8")


def _probabilities(
    raw: list[Any], classes: list[Any], limits: Limits
) -> tuple[list[list[str]], list[list[float]]]:
    """Class lists and probability vectors; binary scalars checked with NumPy, every other
    form by :func:`~xebench.ingest.fields.check_probabilities` itself."""
    scalar = [type(p) is float for p in raw]
    if all(scalar) and all(c is _UNSET or c is None for c in classes):
        p = np.array(raw, dtype=np.float64)
        if not bool(((p >= 0.0) & (p <= 1.0)).all()) or bool((np.signbit(p) & (p == 0)).any()):
            raise _Unsure  # out of range, NaN, or -0.0 (the rules say what becomes of it)
        q = (1.0 - p).tolist()
        binary = ["0", "1"]
        return [binary] * len(raw), [[a, b] for a, b in zip(q, p.tolist(), strict=True)]
    class_lists, prob_lists = [], []
    for value, names in zip(raw, classes, strict=True):
        if names is _UNSET:
            names = None
        elif names is not None:
            _check_classes(names)
        texts, probs = check_probabilities(value, names, limits)
        class_lists.append(texts)
        prob_lists.append(probs)
    return class_lists, prob_lists


def _check_classes(names: list[Any]) -> None:
    """The models' rule for a class: a non-empty printable string, an integer or a boolean."""
    texts = [name for name in names if type(name) is str]
    if texts:
        _printable(texts, _MAX_TEXT, empty=False)


def _times(
    stamps: list[Any], now: datetime, limits: Limits
) -> tuple[NDArray[np.int64], list[int | None]]:
    """Event times (UTC microseconds; ``now`` when not sent) and what was sent (None: none)."""
    n = len(stamps)
    now_us = (now - _EPOCH) // _US
    event_us = np.full(n, now_us, dtype=np.int64)
    sent = [i for i, s in enumerate(stamps) if s is not _UNSET and s is not None]
    if not sent:
        return event_us, [None] * n
    texts = [stamps[i] for i in sent]
    at = np.array(sent, dtype=np.intp)
    lengths = np.fromiter(map(len, texts), dtype=np.intp, count=len(texts))
    values = np.empty(len(texts), dtype=np.int64)
    for length in np.unique(lengths).tolist():
        rows = np.flatnonzero(lengths == length)
        values[rows] = _parse_stamps([texts[i] for i in rows.tolist()], length)
    future = limits.max_future // _US
    if bool((values < 0).any()) or bool((values - now_us > future).any()):
        raise _Unsure  # before the epoch, or too far ahead: the per-event path words it
    event_us[at] = values
    sent_us: list[int | None] = [None] * n
    for i, value in zip(sent, values.tolist(), strict=True):
        sent_us[i] = value
    return event_us, sent_us


def _parse_stamps(texts: list[str], length: int) -> NDArray[np.int64]:
    """RFC 3339 timestamps of one length and layout (``2026-01-01T00:00:00.5Z``,
    ``...+01:00``) to UTC microseconds, from their digits; any other layout is unsure."""
    joined = "".join(texts)
    if not joined.isascii():
        raise _Unsure
    chars = np.frombuffer(joined.encode("ascii"), dtype=np.uint8).reshape(len(texts), length)
    zone = 1 if texts[0][-1] == "Z" else 6
    fraction = length - 19 - zone - 1  # digits after the dot; -1: no dot
    if fraction == -1:
        fraction = 0
    elif not 1 <= fraction <= 6 or texts[0][19] != ".":
        raise _Unsure
    if length != 19 + zone + (fraction + 1 if fraction else 0):
        raise _Unsure
    literal = {4: b"-", 7: b"-", 10: b"T", 13: b":", 16: b":"}
    if fraction:
        literal[19] = b"."
    z = length - zone
    if zone == 1:
        literal[z] = b"Z"
    else:
        literal[z + 3] = b":"
    digits = [i for i in range(length) if i not in literal and not (zone == 6 and i == z)]
    ok = np.ones(len(texts), dtype=bool)
    for i, char in literal.items():
        ok &= chars[:, i] == char[0]
    d = chars[:, digits].astype(np.int64) - 48
    ok &= ((d >= 0) & (d <= 9)).all(axis=1)
    if zone == 6:
        sign = chars[:, z]
        ok &= (sign == ord("+")) | (sign == ord("-"))
    if not bool(ok.all()):
        raise _Unsure

    def number(first: int, count: int) -> NDArray[np.int64]:
        value = np.zeros(len(texts), dtype=np.int64)
        for k in range(first, first + count):
            value = value * 10 + d[:, k]
        return value

    year, month, day = number(0, 4), number(4, 2), number(6, 2)
    hour, minute, second = number(8, 2), number(10, 2), number(12, 2)
    micros = number(14, fraction) * 10 ** (6 - fraction) if fraction else 0
    offset = np.zeros(len(texts), dtype=np.int64)
    if zone == 6:
        k = 14 + fraction
        offset = number(k, 2) * 60 + number(k + 2, 2)
        if bool((number(k + 2, 2) > 59).any()) or bool((offset > _MAX_OFFSET_MINUTES).any()):
            raise _Unsure
        offset = np.where(chars[:, z] == ord("-"), -offset, offset)
    leap = ((year % 4 == 0) & (year % 100 != 0)) | (year % 400 == 0)
    month_days = np.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)
    valid = (month >= 1) & (month <= 12) & (day >= 1) & (year >= 1)
    last = month_days[np.clip(month, 1, 12) - 1] + ((month == 2) & leap)
    valid &= (day <= last) & (hour <= 23) & (minute <= 59) & (second <= 59)
    if not bool(valid.all()):
        raise _Unsure
    # Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant, days_from_civil).
    y = year - (month <= 2)
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (month + np.where(month > 2, -3, 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    days = era * 146097 + doe - 719468
    seconds = days * 86400 + hour * 3600 + minute * 60 + second - offset * 60
    return seconds * 1_000_000 + micros


def _cohorts(cohorts: Sequence[dict[str, Any]]) -> Sequence[dict[str, str]]:
    """Each event's cohort with its values as text; keys and values checked on their
    distinct values."""
    if max(map(len, cohorts)) > _MAX_COHORT:
        raise _Unsure
    _names(list({k for c in cohorts for k in c}), _KEY)
    values = {v for c in cohorts for v in c.values()}
    texts = [v for v in values if type(v) is str]
    if texts:
        _printable(texts, _MAX_TEXT, empty=True)
    if len(texts) == len(values):
        return cohorts
    return [{k: v if type(v) is str else label_text(v) for k, v in c.items()} for c in cohorts]


def _features(features: Sequence[dict[str, Any]]) -> tuple[list[bytes], pa.Array]:
    """Each event's features as JSON text with sorted keys (bytes, and the Arrow column),
    checked on the encoded text where it is enough (ASCII without escapes: no control
    or format character)."""
    if max(map(len, features)) > _MAX_FEATURES:
        raise _Unsure
    _names(list({k for f in features for k in f}), _KEY)
    encode = _SORTED.encode
    encoded = [encode(f) for f in features]
    column = pa.array(encoded, pa.binary())
    text = column.buffers()[2]  # every event's text, end to end
    chars = np.frombuffer(text, dtype=np.uint8) if text is not None else np.zeros(0, np.uint8)
    if (
        bool((chars >= 0x7F).any())  # non-ASCII, or DEL
        or bool((chars == _BACKSLASH).any())  # an escape: a control character, or \ or "
        or max(map(len, encoded)) > _MAX_FEATURE_TEXT
        or _EXPONENT.search(text)
        or _NEGATIVE_ZERO.search(text)
    ):
        _check_values(features)
    return encoded, column.cast(pa.string())


def _weights(weights: Sequence[Any]) -> tuple[NDArray[np.float64], list[bytes]]:
    """Each event's weight (1 when not sent) and its part of the payload hash's JSON: none
    for a weight of 1, else ``,`` and the number (fields.py: part of the hash unless 1)."""
    n = len(weights)
    if weights.count(_UNSET) == n:
        return np.ones(n), [b""] * n
    weight = np.array([1.0 if w is _UNSET else w for w in weights], dtype=np.float64)
    if not bool(((weight >= MIN_WEIGHT) & (weight <= MAX_WEIGHT)).all()):
        raise _Unsure  # out of range or NaN: the per-event path words it
    encode = _ENCODE.encode
    parts = [b"" if w == 1.0 else b"," + encode(w) for w in weight.tolist()]
    if any(_EXPONENT.search(part) for part in parts):
        raise _Unsure  # a positive exponent: msgspec writes 1e16, pydantic 1e+16
    return weight, parts


def _quoted(text: bytes) -> bytes:
    """JSON text as a JSON string, as both encoders write it (the text has no control
    character: JSON escapes them, and \\u2028, DEL and non-ASCII pass as they are)."""
    return b'"' + text.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


def _check_values(features: list[dict[str, Any]]) -> None:
    """Feature values one by one, for the batches the encoded text could not clear."""
    for f in features:
        for value in f.values():
            if type(value) is str:
                if len(value) > _MAX_FEATURE_TEXT or not value.isprintable():
                    raise _Unsure
            elif type(value) is float:
                if not math.isfinite(value) or abs(value) >= _FLOAT_DIGITS:
                    raise _Unsure
                if value == 0.0 and math.copysign(1.0, value) < 0:
                    raise _Unsure


def _lists(values: list[list[Any]], kind: pa.DataType) -> pa.Array:
    offsets = np.zeros(len(values) + 1, dtype=np.int32)
    np.cumsum(np.fromiter(map(len, values), dtype=np.int32, count=len(values)), out=offsets[1:])
    flat = [x for row in values for x in row]
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(flat, kind))


def _map(cohorts: Sequence[dict[str, str]]) -> pa.Array:
    offsets = np.zeros(len(cohorts) + 1, dtype=np.int32)
    np.cumsum(np.fromiter(map(len, cohorts), dtype=np.int32, count=len(cohorts)), out=offsets[1:])
    keys = [k for c in cohorts for k in c]
    values = [v for c in cohorts for v in c.values()]
    return pa.MapArray.from_arrays(
        pa.array(offsets), pa.array(keys, pa.string()), pa.array(values, pa.string())
    )
