"""The columnar shape of validated events, shared by validation, file import and the store.

A validated batch of prediction or label events is a :class:`pyarrow.Table`
with exactly the columns of :data:`PREDICTION_SCHEMA` or
:data:`LABEL_SCHEMA`. The HTTP service and ``xebench ingest`` build these
tables (``xebench.ingest.events``); the event store (``xebench.store``) writes them.

Identity: an event is identified by ``(tenant, model, request_id)``; a label
whose event names no model has ``model == ""`` and applies to every model's
prediction of that request. :func:`fingerprint` turns an identity into a
64-bit integer (``fp``) that the store indexes; ``payload_hash`` is a 64-bit
hash of the event's normalised content, compared when the same identity is
sent twice (identical: a harmless duplicate; different: a conflict).

Labels and classes are stored as text: ``true``/``false`` become ``"1"`` /
``"0"``, integral numbers their decimal form (``1.0`` -> ``"1"``).

Example:
    >>> fingerprint("acme", "fraud", "req-1") == fingerprint("acme", "fraud", "req-1")
    True
    >>> fingerprint("acme", "fraud", "req-1") == fingerprint("acme", "fraud", "req-2")
    False
    >>> PREDICTION_SCHEMA.field("probabilities").type
    ListType(list<item: double>)
"""

from __future__ import annotations

from hashlib import blake2b

import pyarrow as pa

__all__ = [
    "LABEL_SCHEMA",
    "PREDICTION_SCHEMA",
    "SEQUENCE_SCHEMA",
    "TIMESTAMP",
    "TOKENS_TYPE",
    "fingerprint",
    "hash64",
]

#: Every timestamp is stored in UTC with microsecond precision.
TIMESTAMP = pa.timestamp("us", tz="UTC")

PREDICTION_SCHEMA = pa.schema(
    [
        # fingerprint(tenant, model, request_id): the idempotency key.
        pa.field("fp", pa.int64(), nullable=False),
        # fingerprint(tenant, "", request_id): joins labels that name no model.
        pa.field("rfp", pa.int64(), nullable=False),
        pa.field("tenant", pa.string(), nullable=False),
        pa.field("model", pa.string(), nullable=False),
        pa.field("version", pa.string(), nullable=False),
        pa.field("request_id", pa.string(), nullable=False),
        pa.field("event_time", TIMESTAMP, nullable=False),
        pa.field("ingest_time", TIMESTAMP, nullable=False),
        # Class labels as text, in the order of ``probabilities``.
        pa.field("classes", pa.list_(pa.string()), nullable=False),
        pa.field("probabilities", pa.list_(pa.float64()), nullable=False),
        pa.field("cohort", pa.map_(pa.string(), pa.string()), nullable=False),
        # A JSON object of scalar feature values, as text.
        pa.field("features", pa.string(), nullable=False),
        pa.field("payload_hash", pa.int64(), nullable=False),
        # The event's business weight (> 0; 1 when it sent none): every window statistic
        # is weighted by it. Part of the payload hash only when it is not 1.
        pa.field("weight", pa.float64(), nullable=False),
    ]
)

#: A language model's scored sequence, summarised (``POST /v1/lm/tokens``): its NLL in
#: nats, its tokens, its tokens below the extremal threshold, and its UTF-8 bytes and
#: words (null when not given). What the monitoring buckets sum (stats.tokens).
TOKENS_TYPE = pa.struct(
    [
        pa.field("n_tokens", pa.int64(), nullable=False),
        pa.field("nll", pa.float64(), nullable=False),
        pa.field("extremal", pa.int64(), nullable=False),
        pa.field("n_bytes", pa.float64()),
        pa.field("n_words", pa.float64()),
    ]
)

#: A batch of scored sequences: prediction rows (the same identity, idempotency,
#: versions, cohorts, features and retention) with no classes nor probabilities and
#: their ``tokens`` summary. The ``tokens`` column of the predictions table is null on
#: every classifier's prediction (whose tables omit it).
SEQUENCE_SCHEMA = PREDICTION_SCHEMA.append(pa.field("tokens", TOKENS_TYPE, nullable=False))

LABEL_SCHEMA = pa.schema(
    [
        # fingerprint(tenant, model, request_id), model "" when the event names none.
        pa.field("fp", pa.int64(), nullable=False),
        pa.field("tenant", pa.string(), nullable=False),
        pa.field("model", pa.string(), nullable=False),
        pa.field("request_id", pa.string(), nullable=False),
        pa.field("label", pa.string(), nullable=False),
        pa.field("event_time", TIMESTAMP, nullable=False),
        pa.field("ingest_time", TIMESTAMP, nullable=False),
        pa.field("payload_hash", pa.int64(), nullable=False),
        # The event's "correction": true -- it replaces a stored label of another value
        # (the old one is kept in label_history). Not part of the payload hash.
        pa.field("correction", pa.bool_(), nullable=False),
    ]
)


def hash64(data: bytes) -> int:
    """A stable signed 64-bit hash of ``data`` (BLAKE2b), the same in every process.

    Example:
        >>> hash64(b"abc")
        6455300059550759896
    """
    return int.from_bytes(blake2b(data, digest_size=8).digest(), "little", signed=True)


def fingerprint(tenant: str, model: str, request_id: str) -> int:
    """The 64-bit identity of an event: ``hash64`` of its three key parts.

    The parts are joined with NUL, which validation refuses inside names and
    request ids, so ``("a", "bc")`` and ``("ab", "c")`` differ.

    Example:
        >>> fingerprint("t", "a", "bc") != fingerprint("t", "ab", "c")
        True
    """
    digest = blake2b(f"{tenant}\0{model}\0{request_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little", signed=True)
