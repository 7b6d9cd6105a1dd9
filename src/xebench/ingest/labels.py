"""Label events into the columns of :data:`~xebench.store.schema.LABEL_SCHEMA`.

The rules are those of :mod:`xebench.ingest.events` (names, label, timestamp);
this module applies them to a batch, refuses a label outside the classes the
store knows for its model, and writes the stored shape: the fingerprint and
the payload hash that makes resends idempotent.

Example:
    >>> t = parse_labels(b'{"request_id": "r1", "model": "m", "label": "cat"}', tenant="t")
    >>> t["model"][0].as_py(), t["label"][0].as_py()
    ('m', 'cat')
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
from pydantic import TypeAdapter
from pydantic_core import to_json

from ..errors import InvalidInputError
from ..store.schema import LABEL_SCHEMA, fingerprint, hash64
from .batch import validate_batch
from .fast_labels import fast_label_table
from .fields import LabelEvent, check_timestamp, label_text
from .policy import Limits

__all__ = ["label_columns", "label_table", "parse_labels"]

_LABELS = TypeAdapter(list[LabelEvent])


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
    known_cache: dict[str | None, set[str] | None] = {}

    def add_row(event: LabelEvent, now: datetime, columns: dict[str, list[Any]]) -> None:
        label = label_text(event.label)
        event_time, sent_time = check_timestamp(event.timestamp, now, limits)
        if known_labels is not None:
            if event.model not in known_cache:
                known_cache[event.model] = known_labels(event.model)
            known = known_cache[event.model]
            if known is not None and label not in known:
                whose = f"model {event.model!r}" if event.model else "any model of the tenant"
                if not known and event.model:  # no class: a language model's sequences
                    raise InvalidInputError(
                        "/label",
                        f"model {event.model!r} has no classes: it scores token sequences "
                        "(POST /v1/lm/tokens), which take no labels",
                    )
                shown = ", ".join(sorted(known)[:20])
                raise InvalidInputError(
                    "/label", f"label {label!r} is not a class of {whose} (classes: {shown})"
                )
        model = event.model or ""
        columns["fp"].append(fingerprint(tenant, model, event.request_id))
        columns["tenant"].append(tenant)
        columns["model"].append(model)
        columns["request_id"].append(event.request_id)
        columns["label"].append(label)
        columns["event_time"].append(event_time)
        columns["ingest_time"].append(now)
        columns["payload_hash"].append(hash64(to_json((label, sent_time))))
        columns["correction"].append(event.correction)

    return validate_batch(
        _LABELS,
        LabelEvent,
        LABEL_SCHEMA.names,
        body,
        add_row=add_row,
        ndjson=ndjson,
        limits=limits,
        now=now,
    )


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


def label_table(
    body: bytes | Sequence[Mapping[str, Any]],
    *,
    tenant: str,
    ndjson: bool = False,
    limits: Limits = Limits(),
    known_labels: Callable[[str | None], set[str] | None] | None = None,
    now: datetime | None = None,
) -> pa.Table:
    """:func:`parse_labels` through the fast columnar path when it can take the batch.

    :func:`~xebench.ingest.fast_labels.fast_label_table` decodes and checks a
    JSON body column-wise (~2.2 us per event against ~6.7, batches of 500 to
    5,000); whatever it declines (a bad event, a label outside its model's
    known classes, a rare layout) goes through :func:`parse_labels`, which
    accepts it or raises :class:`BatchError` with one entry per bad event.
    Same table, same errors, either way; the store is asked for each model's
    known classes once, whichever path answers.

    Example:
        >>> t = label_table(b'[{"request_id": "r1", "model": "m", "label": "cat"}]',
        ...                 tenant="t", known_labels=lambda model: {"cat", "dog"})
        >>> t.num_rows, t["label"][0].as_py()
        (1, 'cat')
        >>> label_table(b'[{"request_id": "r1", "model": "m", "label": "fox"}]',
        ...             tenant="t", known_labels=lambda model: {"cat", "dog"})
        Traceback (most recent call last):
        ...
        xebench.errors.BatchError: 1 of 1 events is invalid; nothing of the batch was stored
    """
    now = now or datetime.now(UTC)
    known = known_labels
    if known_labels is not None:
        asked: dict[str | None, set[str] | None] = {}

        def known(model: str | None) -> set[str] | None:
            if model not in asked:
                asked[model] = known_labels(model)
            return asked[model]

    if isinstance(body, (bytes, bytearray)):
        table = fast_label_table(
            bytes(body), tenant=tenant, ndjson=ndjson, limits=limits, known_labels=known, now=now
        )
        if table is not None:
            return table
    return parse_labels(
        body, tenant=tenant, ndjson=ndjson, limits=limits, known_labels=known, now=now
    )
