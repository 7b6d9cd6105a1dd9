"""The column-wise checks shared by the fast paths of prediction and label batches.

:mod:`~xebench.ingest.fast` (predictions) and :mod:`~xebench.ingest.fast_labels`
(labels) decode a whole body with msgspec and check each rule once per column
(or per distinct value) instead of once per event. The helpers here are the
parts both need: the decode of a JSON array, one object or NDJSON; the
duplicate-key count; names and printable text judged on their distinct
values; RFC 3339 timestamps parsed in bulk from their digits; fingerprints.

A fast path only ever *accepts*: every helper raises :class:`Unsure` for
anything it is not sure of (an error, but also a rare layout), and the caller
then lets the per-event pydantic path, the reference, accept or refuse the
batch with its exact per-event errors.

Example:
    >>> from datetime import UTC, datetime
    >>> now = datetime(2026, 1, 1, tzinfo=UTC)
    >>> times, sent = event_times(["2026-01-01T00:00:00.5Z", None], now, Limits())
    >>> times.tolist(), sent
    ([1767225600500000, 1767225600000000], [1767225600500000, None])
    >>> check_names(["fraud", "a b"], NAME)
    Traceback (most recent call last):
    ...
    xebench.ingest.columnwise.Unsure
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from hashlib import blake2b
from typing import Annotated, Any

import msgspec
import numpy as np
from numpy.typing import NDArray

from ..errors import XebenchError
from .policy import Limits

__all__ = [
    "MAX_TEXT",
    "NAME",
    "UNSET",
    "Int64",
    "Unsure",
    "check_keys",
    "check_names",
    "check_printable",
    "decode_events",
    "event_times",
    "fingerprints",
    "micros",
    "with_default",
]

#: An integer as the models accept it: beyond 64 bits it fails to decode, and the
#: per-event path judges it.
Int64 = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]

#: msgspec's mark of a field that was not sent (its keys are counted, to detect
#: duplicate JSON keys).
UNSET: Any = msgspec.UNSET

#: The ASCII part of the names' alphabet (fields.py allows Unicode letters too: those
#: batches take the per-event path).
NAME = re.compile(r"[A-Za-z0-9_.\-:/@+]{1,128}")

#: The longest request id, label, class or cohort value (fields.py).
MAX_TEXT = 256

_MAX_OFFSET_MINUTES = 18 * 60
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
_SPACE_COLON = re.compile(rb"[ \t\r\n]:")


class Unsure(XebenchError):
    """Not for the fast path: the per-event path decides. Raised by the helpers here
    and by the fast paths' own checks, and caught by the fast paths (which then
    return None); it never reaches a caller of ``fast_*_table``.

    Example:
        >>> issubclass(Unsure, XebenchError)
        True
    """


def decode_events(
    body: bytes, ndjson: bool, many: msgspec.json.Decoder[Any], one: msgspec.json.Decoder[Any]
) -> list[Any]:
    """The events of a JSON array, one JSON object or NDJSON ``body``, decoded by ``many``
    (a list of structs) or ``one`` (a single struct).

    Raises :class:`Unsure` for a body of another shape (or NDJSON lines that do
    not hold exactly one value each) and ``msgspec.DecodeError`` for one the
    decoders refuse.

    Example:
        >>> import msgspec
        >>> class E(msgspec.Struct):
        ...     a: int
        >>> many, one = msgspec.json.Decoder(list[E]), msgspec.json.Decoder(E)
        >>> decode_events(b'{"a": 1}\\n\\n{"a": 2}\\n', True, many, one)
        [E(a=1), E(a=2)]
        >>> decode_events(b' {"a": 3}', False, many, one)
        [E(a=3)]
    """
    if ndjson:
        lines = [line for line in body.split(b"\n") if line.strip()]
        # One array, one decode; the count proves that every line held exactly one value.
        events = many.decode(b"[" + b",".join(lines) + b"]")
        if len(events) != len(lines):
            raise Unsure
        return list(events)
    start = body.lstrip()[:1]
    if start == b"[":
        return list(many.decode(body))
    if start == b"{":
        return [one.decode(body)]
    raise Unsure


def with_default(column: Sequence[Any], value: Any) -> Sequence[Any]:
    """``column`` with :data:`UNSET` (a field not sent) replaced by ``value``.

    Example:
        >>> with_default(("v1", UNSET), "")
        ['v1', '']
    """
    if UNSET not in column:
        return column
    return [value if v is UNSET else v for v in column]


def check_keys(body: bytes, keys: int) -> None:
    """Raise :class:`Unsure` unless ``body`` holds exactly ``keys`` object keys: the
    keys the decoded events have. More means a repeated key, which both decoders
    would let the last one win.

    Every key is a string followed by a colon. With no whitespace before any
    colon (else unsure), the ``":`` pairs of the body are its keys plus any
    ``\\":`` inside strings, so their count equals the keys decoded only if no
    key was repeated.

    Example:
        >>> check_keys(b'{"a":1,"b":{"c":2}}', 3)
        >>> check_keys(b'{"a":1,"a":2}', 1)
        Traceback (most recent call last):
        ...
        xebench.ingest.columnwise.Unsure
    """
    # Scans of the bytes themselves: no copy of the body (a 20 MB body cost a 20 MB mask).
    if _SPACE_COLON.search(body) or body.count(b'":') != keys:
        raise Unsure


def check_names(values: Sequence[str], pattern: re.Pattern[str]) -> None:
    """Raise :class:`Unsure` unless every distinct value matches ``pattern`` in full.

    Example:
        >>> check_names(["fraud", "ctr", "fraud"], NAME)
    """
    for value in set(values):
        if not pattern.fullmatch(value):
            raise Unsure


def check_printable(values: Sequence[str], longest: int, *, empty: bool) -> None:
    """Raise :class:`Unsure` unless every value is printable (no control, format or
    surrogate character: stricter than the models' rule), at most ``longest``
    characters and, unless ``empty``, not empty.

    Example:
        >>> check_printable(["eu", "us"], 256, empty=False)
        >>> check_printable(["a\\u202eb"], 256, empty=False)
        Traceback (most recent call last):
        ...
        xebench.ingest.columnwise.Unsure
    """
    if not "".join(values).isprintable():
        raise Unsure
    lengths = list(map(len, values))
    if max(lengths) > longest or (not empty and min(lengths) == 0):
        raise Unsure


def micros(moment: datetime) -> int:
    """Microseconds since the Unix epoch of an aware datetime.

    Example:
        >>> micros(datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC))
        1000000
    """
    return (moment - _EPOCH) // _US


def fingerprints(
    prefix: str, models: Sequence[str], request_ids: Sequence[str]
) -> NDArray[np.int64]:
    """``schema.fingerprint`` of every event (BLAKE2b of the NUL-joined key; ``prefix``
    is the tenant and a NUL), the digests read as one int64 array.

    Example:
        >>> from xebench.store.schema import fingerprint
        >>> int(fingerprints("t\\0", ["m"], ["r1"])[0]) == fingerprint("t", "m", "r1")
        True
    """
    digests = b"".join(
        [
            blake2b(f"{prefix}{m}\0{r}".encode(), digest_size=8).digest()
            for m, r in zip(models, request_ids, strict=True)
        ]
    )
    return np.frombuffer(digests, "<i8")


def event_times(
    stamps: Sequence[Any], now: datetime, limits: Limits
) -> tuple[NDArray[np.int64], list[int | None]]:
    """Event times (UTC microseconds; ``now`` where none was sent: :data:`UNSET` or
    None) and what was sent (None: nothing), as ``fields.check_timestamp`` gives them.

    Raises :class:`Unsure` for a layout other than ``2026-01-01T00:00:00[.f]Z`` /
    ``...+01:00`` (1-6 fraction digits), an invalid date or time, and a time
    before the epoch or more than ``limits.max_future`` ahead of ``now``.

    Example:
        >>> now = datetime(2026, 1, 1, tzinfo=UTC)
        >>> event_times(["2026-01-01T01:00:00+01:00"], now, Limits())[1]
        [1767225600000000]
        >>> event_times(["1969-12-31T23:59:59Z"], now, Limits())
        Traceback (most recent call last):
        ...
        xebench.ingest.columnwise.Unsure
    """
    n = len(stamps)
    now_us = micros(now)
    event_us = np.full(n, now_us, dtype=np.int64)
    sent = [i for i, s in enumerate(stamps) if s is not UNSET and s is not None]
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
        raise Unsure  # before the epoch, or too far ahead: the per-event path words it
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
        raise Unsure
    chars = np.frombuffer(joined.encode("ascii"), dtype=np.uint8).reshape(len(texts), length)
    zone = 1 if texts[0][-1] == "Z" else 6
    fraction = length - 19 - zone - 1  # digits after the dot; -1: no dot
    if fraction == -1:
        fraction = 0
    elif not 1 <= fraction <= 6 or texts[0][19] != ".":
        raise Unsure
    if length != 19 + zone + (fraction + 1 if fraction else 0):
        raise Unsure
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
        raise Unsure

    def number(first: int, count: int) -> NDArray[np.int64]:
        value = np.zeros(len(texts), dtype=np.int64)
        for k in range(first, first + count):
            value = value * 10 + d[:, k]
        return value

    year, month, day = number(0, 4), number(4, 2), number(6, 2)
    hour, minute, second = number(8, 2), number(10, 2), number(12, 2)
    fraction_us = number(14, fraction) * 10 ** (6 - fraction) if fraction else 0
    offset = np.zeros(len(texts), dtype=np.int64)
    if zone == 6:
        k = 14 + fraction
        offset = number(k, 2) * 60 + number(k + 2, 2)
        if bool((number(k + 2, 2) > 59).any()) or bool((offset > _MAX_OFFSET_MINUTES).any()):
            raise Unsure
        offset = np.where(chars[:, z] == ord("-"), -offset, offset)
    leap = ((year % 4 == 0) & (year % 100 != 0)) | (year % 400 == 0)
    month_days = np.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)
    valid = (month >= 1) & (month <= 12) & (day >= 1) & (year >= 1)
    last = month_days[np.clip(month, 1, 12) - 1] + ((month == 2) & leap)
    valid &= (day <= last) & (hour <= 23) & (minute <= 59) & (second <= 59)
    if not bool(valid.all()):
        raise Unsure
    # Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant, days_from_civil).
    y = year - (month <= 2)
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (month + np.where(month > 2, -3, 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    days = era * 146097 + doe - 719468
    seconds = days * 86400 + hour * 3600 + minute * 60 + second - offset * 60
    return seconds * 1_000_000 + fraction_us
