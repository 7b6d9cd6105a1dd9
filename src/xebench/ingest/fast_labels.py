"""The fast path for a batch of label events: JSON bytes to an Arrow table, column-wise.

:func:`~xebench.ingest.labels.label_columns` validates label events one at a
time through pydantic and Python rules. This module decodes a whole body with
msgspec into small structs, checks the rules column-wise (request ids, model
names and labels on their distinct values, timestamps parsed in bulk from
their digits, the store's known classes once per distinct model) and builds
the Arrow columns of :data:`~xebench.store.schema.LABEL_SCHEMA` directly, with
the same fingerprints and payload hashes as the per-event path.

Like :mod:`~xebench.ingest.fast` for predictions it only ever *accepts*:
anything it is not sure of (a bad event, a label outside its model's known
classes, a duplicate JSON key, a float label, an integer beyond 64 bits, a
rare timestamp layout, text with a control or format character) makes it
return None, and the caller runs the per-event path, which is the reference
and words every error (index, JSON pointer, message).
``tests/ingest/test_fast_labels.py`` checks, with hypothesis, that every batch
the fast path accepts is accepted by the per-event path with identical columns.

Example:
    >>> from datetime import UTC, datetime
    >>> now = datetime(2026, 1, 1, tzinfo=UTC)
    >>> body = (b'[{"request_id": "r1", "model": "m", "label": true},'
    ...         b' {"request_id": "r2", "label": 7}]')
    >>> table = fast_label_table(body, tenant="t", now=now)
    >>> table["label"].to_pylist(), table["model"].to_pylist()
    (['1', '7'], ['m', ''])
    >>> fast_label_table(b'[{"request_id": "r1", "label": 1.5}]', tenant="t",
    ...                  now=now) is None  # the per-event path says why
    True
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from hashlib import blake2b

import msgspec
import numpy as np
import pyarrow as pa
from msgspec.structs import astuple

from ..errors import InvalidInputError
from ..store.schema import LABEL_SCHEMA, TIMESTAMP
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
)
from .fields import label_text
from .policy import Limits

__all__ = ["fast_label_table"]

# known_labels(model): the classes the store knows for a model (None: every model of
# the tenant), or None when it knows none.
_KnownLabels = Callable[[str | None], set[str] | None]


class _Label(msgspec.Struct, forbid_unknown_fields=True):
    """A label event as msgspec decodes it; UNSET marks a field that was not sent
    (its keys are counted, to detect duplicate JSON keys). A float label fails to
    decode (the models refuse it), and so does null for any field but model and
    timestamp."""

    request_id: str
    label: str | Int64 | bool
    model: str | msgspec.UnsetType | None = UNSET
    timestamp: str | msgspec.UnsetType | None = UNSET
    correction: bool | msgspec.UnsetType = UNSET


_ARRAY = msgspec.json.Decoder(list[_Label])
_ONE = msgspec.json.Decoder(_Label)
_ENCODE = msgspec.json.Encoder()


def fast_label_table(
    body: bytes,
    *,
    tenant: str,
    ndjson: bool = False,
    limits: Limits = Limits(),
    known_labels: _KnownLabels | None = None,
    now: datetime | None = None,
) -> pa.Table | None:
    """The :data:`LABEL_SCHEMA` table of a valid batch, or None: "ask the per-event path".

    The same result as :func:`~xebench.ingest.labels.parse_labels` for every
    batch it accepts (see the module docstring). ``known_labels`` is called
    once per distinct model of the batch (None for the events that name none),
    in the order the models first appear.

    Example:
        >>> body = b'{"request_id": "r1", "model": "fraud", "label": 0}\\n'
        >>> fast_label_table(body, tenant="t", ndjson=True,
        ...                  known_labels=lambda model: {"0", "1"})["label"].to_pylist()
        ['0']
        >>> fast_label_table(body, tenant="t", ndjson=True,
        ...                  known_labels=lambda model: {"cat", "dog"}) is None
        True
    """
    now = now or datetime.now(UTC)
    try:
        events = decode_events(body, ndjson, _ARRAY, _ONE)
        if not 1 <= len(events) <= limits.max_events:
            return None
        return _table(body, events, tenant, limits, known_labels, now)
    except (Unsure, msgspec.DecodeError, msgspec.EncodeError, InvalidInputError):
        return None


def _table(
    body: bytes,
    events: list[_Label],
    tenant: str,
    limits: Limits,
    known_labels: _KnownLabels | None,
    now: datetime,
) -> pa.Table:
    n = len(events)
    # Field by field (the struct's order), transposed in C.
    request_ids, raw_labels, sent_models, stamps, corrections = zip(
        *map(astuple, events), strict=True
    )
    optional = (sent_models, stamps, corrections)
    present = len(optional) * n - sum(column.count(UNSET) for column in optional)
    check_keys(body, 2 * n + present)

    check_printable(request_ids, MAX_TEXT, empty=False)
    # The model as the rules see it: None when not sent (or null), else a name.
    models: Sequence[str | None] = sent_models
    if UNSET in sent_models:
        models = [None if m is UNSET else m for m in sent_models]
    named = [m for m in models if m is not None]
    if named:
        check_names(named, NAME)
    labels = _labels(raw_labels)
    event_us, sent_us = event_times(stamps, now, limits)
    if known_labels is not None:  # last: the only check that asks the store
        _check_known(models, labels, known_labels)

    stored_models = models if None not in models else [m or "" for m in models]
    encode = _ENCODE.encode
    hashes = np.frombuffer(
        b"".join(
            [
                blake2b(encode((label, sent)), digest_size=8).digest()
                for label, sent in zip(labels, sent_us, strict=True)
            ]
        ),
        "<i8",
    )
    correction = [False] * n if corrections.count(True) == 0 else [c is True for c in corrections]
    columns = [
        pa.array(fingerprints(f"{tenant}\0", stored_models, request_ids), pa.int64()),
        pa.array([tenant] * n, pa.string()),
        pa.array(stored_models, pa.string()),
        pa.array(request_ids, pa.string()),
        pa.array(labels, pa.string()),
        pa.array(event_us, pa.int64()).cast(TIMESTAMP),
        pa.array(np.full(n, micros(now), dtype=np.int64)).cast(TIMESTAMP),
        pa.array(hashes, pa.int64()),
        pa.array(correction, pa.bool_()),
    ]
    return pa.Table.from_arrays(columns, schema=LABEL_SCHEMA)


def _labels(raw: Sequence[str | int | bool]) -> Sequence[str]:
    """Each label's stored text (``fields.label_text``), computed once per distinct value;
    text labels checked on their distinct values (1-256 printable characters)."""
    distinct = set(raw)
    texts = [v for v in distinct if type(v) is str]
    if texts:
        check_printable(texts, MAX_TEXT, empty=False)
    if len(texts) == len(distinct):
        return raw  # type: ignore[return-value]
    # True and 1 (False and 0) are one key of the mapping: their texts are the same.
    stored = {v: label_text(v) for v in distinct}
    return [stored[v] for v in raw]


def _check_known(
    models: Sequence[str | None], labels: Sequence[str], known_labels: _KnownLabels
) -> None:
    """Raise :class:`Unsure` when a label is outside its model's known classes (the
    per-event path words the refusal); the store is asked once per distinct model."""
    seen: dict[str | None, set[str]] = {}
    for model, label in set(zip(models, labels, strict=True)):
        seen.setdefault(model, set()).add(label)
    for model in dict.fromkeys(models):  # in the order the models first appear
        known = known_labels(model)
        if known is not None and not seen[model] <= known:
            raise Unsure
