"""Prediction events into the columns of :data:`~xebench.store.schema.PREDICTION_SCHEMA`.

The rules are those of :mod:`xebench.ingest.events` (probabilities, classes,
timestamp, names, cohort and features); this module applies them to a batch
and writes the stored shape: fingerprints, the privacy policy applied, the
features as sorted JSON and the payload hash that makes resends idempotent.

Example:
    >>> t = parse_predictions(b'{"request_id": "r1", "model": "m", "probabilities": 0.9}',
    ...                       tenant="t")
    >>> t["request_id"][0].as_py(), t["classes"][0].as_py()
    ('r1', ['0', '1'])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
from pydantic import TypeAdapter
from pydantic_core import to_json

from ..store.schema import PREDICTION_SCHEMA, fingerprint, hash64
from .batch import validate_batch
from .fast import fast_prediction_table
from .fields import PredictionEvent, check_probabilities, check_timestamp
from .policy import NO_PII, Limits, PiiPolicy

__all__ = ["append_identity", "parse_predictions", "prediction_columns", "prediction_table"]

_PREDICTIONS = TypeAdapter(list[PredictionEvent])


def append_identity(
    columns: dict[str, list[Any]],
    tenant: str,
    event: Any,
    event_time: datetime,
    now: datetime,
    cohort: Mapping[str, str],
    features_json: str,
) -> None:
    """Append a prediction row's identity, times, cohort and features (every prediction
    kind's: classifier events and scored sequences alike).

    Example:
        >>> columns = {name: [] for name in PREDICTION_SCHEMA.names}
        >>> event = PredictionEvent(request_id="r1", model="m", probabilities=0.5)
        >>> now = datetime(2026, 1, 1, tzinfo=UTC)
        >>> append_identity(columns, "t", event, now, now, {}, "{}")
        >>> columns["request_id"], columns["fp"] == [fingerprint("t", "m", "r1")]
        (['r1'], True)
    """
    columns["fp"].append(fingerprint(tenant, event.model, event.request_id))
    columns["rfp"].append(fingerprint(tenant, "", event.request_id))
    columns["tenant"].append(tenant)
    columns["model"].append(event.model)
    columns["version"].append(event.version)
    columns["request_id"].append(event.request_id)
    columns["event_time"].append(event_time)
    columns["ingest_time"].append(now)
    columns["cohort"].append(list(cohort.items()))
    columns["features"].append(features_json)


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

    def add_row(event: PredictionEvent, now: datetime, columns: dict[str, list[Any]]) -> None:
        classes, probs = check_probabilities(event.probabilities, event.classes, limits)
        event_time, sent_time = check_timestamp(event.timestamp, now, limits)
        cohort = pii.apply(event.cohort) if pii.active else event.cohort
        features = pii.apply(event.features) if pii.active else event.features
        features_json = to_json(dict(sorted(features.items()))).decode()
        append_identity(columns, tenant, event, event_time, now, cohort, features_json)
        columns["classes"].append(classes)
        columns["probabilities"].append(probs)
        # What the client sent, after the privacy policy: an identical resend hashes the same
        # even when it leaves the timestamp to the server. A weight of 1 is no weight: the
        # hash of an event sent before weights existed, resent as it was, is unchanged.
        content: tuple[Any, ...] = (
            event.version, sent_time, classes, probs, sorted(cohort.items()), features_json
        )  # fmt: skip
        if event.weight != 1.0:
            content += (event.weight,)
        columns["payload_hash"].append(hash64(to_json(content)))
        columns["weight"].append(event.weight)

    return validate_batch(
        _PREDICTIONS,
        PredictionEvent,
        PREDICTION_SCHEMA.names,
        body,
        add_row=add_row,
        ndjson=ndjson,
        limits=limits,
        now=now,
    )


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


def prediction_table(
    body: bytes | Sequence[Mapping[str, Any]],
    *,
    tenant: str,
    ndjson: bool = False,
    limits: Limits = Limits(),
    pii: PiiPolicy = NO_PII,
    now: datetime | None = None,
) -> pa.Table:
    """:func:`parse_predictions` through the fast columnar path when it can take the batch.

    :func:`~xebench.ingest.fast.fast_prediction_table` decodes and checks a
    JSON body column-wise (~4x faster); whatever it declines (a bad event, a
    rare layout) goes through :func:`parse_predictions`, which accepts it or
    raises :class:`BatchError` with one entry per bad event. Same table, same
    errors, either way.

    Example:
        >>> t = prediction_table(b'[{"request_id": "r1", "model": "m", "probabilities": 0.9}]',
        ...                      tenant="t")
        >>> t.num_rows, t["model"][0].as_py()
        (1, 'm')
    """
    now = now or datetime.now(UTC)
    if isinstance(body, (bytes, bytearray)):
        table = fast_prediction_table(
            bytes(body), tenant=tenant, ndjson=ndjson, limits=limits, pii=pii, now=now
        )
        if table is not None:
            return table
    return parse_predictions(body, tenant=tenant, ndjson=ndjson, limits=limits, pii=pii, now=now)
