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
from datetime import UTC, datetime
from hashlib import blake2b
from typing import Any

import msgspec
import numpy as np
import pyarrow as pa
from msgspec.structs import astuple
from numpy.typing import NDArray

from ..errors import InvalidInputError
from ..store.schema import PREDICTION_SCHEMA, TIMESTAMP
from .columnwise import (
    MAX_TEXT,
    NAME,
    UNSET,
    Int64,
    Unsure,
    check_keys,
    check_names,
    check_printable,
    decode_events,
    event_times,
    fingerprints,
    micros,
    with_default,
)
from .fields import MAX_WEIGHT, MIN_WEIGHT, check_probabilities, label_text
from .policy import NO_PII, Limits, PiiPolicy

__all__ = ["fast_prediction_table"]


class _Event(msgspec.Struct, forbid_unknown_fields=True):
    """A prediction event as msgspec decodes it; UNSET marks a field that was not sent
    (its keys are counted, to detect duplicate JSON keys)."""

    request_id: str
    model: str
    probabilities: float | list[float] | dict[str, float]
    version: str | msgspec.UnsetType = UNSET
    timestamp: str | msgspec.UnsetType | None = UNSET
    classes: list[str | Int64 | bool] | msgspec.UnsetType | None = UNSET
    cohort: dict[str, str | Int64 | bool] | msgspec.UnsetType = UNSET
    features: dict[str, str | Int64 | float | bool | None] | msgspec.UnsetType = UNSET
    weight: float | msgspec.UnsetType = UNSET  # an integer decodes as a float; no bool


_ARRAY = msgspec.json.Decoder(list[_Event])
_ONE = msgspec.json.Decoder(_Event)
_SORTED = msgspec.json.Encoder(order="sorted")
_ENCODE = msgspec.json.Encoder()

_VERSION = re.compile(r"[A-Za-z0-9_.\-:/@+]{0,128}")
_KEY = re.compile(r"[A-Za-z0-9_.\-:/@+]{1,64}")
# A JSON float with a positive exponent is written 1e16 by msgspec, 1e+16 by pydantic.
_EXPONENT = re.compile(rb"[0-9.]e[0-9]")
_NEGATIVE_ZERO = re.compile(rb":-0\.0[,}]")

_MAX_COHORT, _MAX_FEATURES = 32, 256  # the models' max_length (fields.py)
_MAX_FEATURE_TEXT = 1024
_FLOAT_DIGITS = 1e16  # below this both encoders write a float the same way
_EMPTY: dict[str, Any] = {}
# Scanned in place, not as NumPy masks: a mask is as large as the features' text.
_UNCLEAR = re.compile(rb"[\x7f-\xff\\]")


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
        events = decode_events(body, ndjson, _ARRAY, _ONE)
        if not 1 <= len(events) <= limits.max_events:
            return None
        return _table(body, events, tenant, limits, pii, now)
    except (Unsure, msgspec.DecodeError, msgspec.EncodeError, InvalidInputError):
        return None


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
    events.clear()  # the caller's list: its structs go now, the fields live on in the columns
    optional = (versions, stamps, classes, cohorts, features, weights)
    present = len(optional) * n - sum(column.count(UNSET) for column in optional)
    del optional
    versions = with_default(versions, "")
    cohorts = with_default(cohorts, _EMPTY)
    features = with_default(features, _EMPTY)
    nested = sum(map(len, cohorts)) + sum(map(len, features))
    if dict in set(map(type, raw_probs)):
        nested += sum(len(p) for p in raw_probs if type(p) is dict)
    check_keys(body, 3 * n + present + nested)

    check_printable(request_ids, MAX_TEXT, empty=False)
    check_names(models, NAME)
    check_names(versions, _VERSION)
    class_lists, prob_lists = _probabilities(raw_probs, classes, limits)
    event_us, sent_us = event_times(stamps, now, limits)
    cohorts = _cohorts(cohorts)
    if pii.active:
        cohorts = [pii.apply(c) for c in cohorts]
        features = [pii.apply(f) for f in features]
    features_json, features_column = _features(features)
    del features  # a large body's biggest Python objects: free before the hashes and Arrow
    weight, weight_json = _weights(weights)

    fps = fingerprints(f"{tenant}\0", models, request_ids)
    rfps = fingerprints(f"{tenant}\0", [""] * n, request_ids)
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
    now_us = micros(now)
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


def _probabilities(
    raw: list[Any], classes: list[Any], limits: Limits
) -> tuple[list[list[str]], list[list[float]]]:
    """Class lists and probability vectors; binary scalars checked with NumPy, every other
    form by :func:`~xebench.ingest.fields.check_probabilities` itself."""
    scalar = [type(p) is float for p in raw]
    if all(scalar) and all(c is UNSET or c is None for c in classes):
        p = np.array(raw, dtype=np.float64)
        if not bool(((p >= 0.0) & (p <= 1.0)).all()) or bool((np.signbit(p) & (p == 0)).any()):
            raise Unsure  # out of range, NaN, or -0.0 (the rules say what becomes of it)
        q = (1.0 - p).tolist()
        binary = ["0", "1"]
        return [binary] * len(raw), [[a, b] for a, b in zip(q, p.tolist(), strict=True)]
    class_lists, prob_lists = [], []
    for value, names in zip(raw, classes, strict=True):
        if names is UNSET:
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
        check_printable(texts, MAX_TEXT, empty=False)


def _cohorts(cohorts: Sequence[dict[str, Any]]) -> Sequence[dict[str, str]]:
    """Each event's cohort with its values as text; keys and values checked on their
    distinct values."""
    if max(map(len, cohorts)) > _MAX_COHORT:
        raise Unsure
    check_names(list({k for c in cohorts for k in c}), _KEY)
    values = {v for c in cohorts for v in c.values()}
    texts = [v for v in values if type(v) is str]
    if texts:
        check_printable(texts, MAX_TEXT, empty=True)
    if len(texts) == len(values):
        return cohorts
    return [{k: v if type(v) is str else label_text(v) for k, v in c.items()} for c in cohorts]


def _features(features: Sequence[dict[str, Any]]) -> tuple[list[bytes], pa.Array]:
    """Each event's features as JSON text with sorted keys (bytes, and the Arrow column),
    checked on the encoded text where it is enough (ASCII without escapes: no control
    or format character)."""
    if max(map(len, features)) > _MAX_FEATURES:
        raise Unsure
    check_names(list({k for f in features for k in f}), _KEY)
    encode = _SORTED.encode
    encoded = [encode(f) for f in features]
    column = pa.array(encoded, pa.binary())
    text = column.buffers()[2] or b""  # every event's text, end to end
    if (
        _UNCLEAR.search(text)  # non-ASCII or DEL; or an escape: a control character, \ or "
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
    if weights.count(UNSET) == n:
        return np.ones(n), [b""] * n
    weight = np.array([1.0 if w is UNSET else w for w in weights], dtype=np.float64)
    if not bool(((weight >= MIN_WEIGHT) & (weight <= MAX_WEIGHT)).all()):
        raise Unsure  # out of range or NaN: the per-event path words it
    encode = _ENCODE.encode
    parts = [b"" if w == 1.0 else b"," + encode(w) for w in weight.tolist()]
    if any(_EXPONENT.search(part) for part in parts):
        raise Unsure  # a positive exponent: msgspec writes 1e16, pydantic 1e+16
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
                    raise Unsure
            elif type(value) is float:
                if not math.isfinite(value) or abs(value) >= _FLOAT_DIGITS:
                    raise Unsure
                if value == 0.0 and math.copysign(1.0, value) < 0:
                    raise Unsure


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
