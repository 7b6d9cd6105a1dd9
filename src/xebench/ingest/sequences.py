"""A language model's scored sequences (``POST /v1/lm/tokens``) into prediction rows.

A sequence event carries the log-probability (natural log) of each token the
model scored or generated, and the text's size: ``text`` (its UTF-8 bytes and
its words, counted as lm-evaluation-harness does) or ``n_bytes`` (and
optionally ``n_words``). It is stored as a prediction of the model -- the same
identity ``(tenant, model, request_id)``, idempotent resends, versions,
cohorts, features, retention -- with no classes and its ``tokens`` summary
(:data:`~xebench.store.schema.TOKENS_TYPE`): the sequence's NLL in nats, its
tokens, its extremal tokens (log-probability below
:data:`~xebench.stats.tokens.DEFAULT_EXTREMAL_LOGPROB`) and its bytes and
words. The server adds the sequence's cross-entropy (nats per token) to its
features as ``sequence_cross_entropy``, so that its drift is monitored as any
feature's. The windows then report the :class:`~xebench.stats.TokenStats` of
the window's sequences: perplexity, bits per byte (the measure comparable
across tokenizers) with their intervals.

Example:
    >>> t = parse_sequences(b'[{"request_id": "s1", "model": "lm", "text": "hello",'
    ...                     b' "token_logprobs": [-1.0, -2.5]}]', tenant="t")
    >>> t["tokens"][0].as_py()
    {'n_tokens': 2, 'nll': 3.5, 'extremal': 0, 'n_bytes': 5.0, 'n_words': 1.0}
    >>> t["features"][0].as_py(), t["classes"][0].as_py()
    ('{"sequence_cross_entropy":1.75}', [])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Annotated, Any

import numpy as np
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, WithJsonSchema
from pydantic_core import to_json

from ..errors import InvalidInputError
from ..metrics.tokens import LOGPROB_TOLERANCE, count_words
from ..stats.tokens import DEFAULT_EXTREMAL_LOGPROB
from ..store.schema import SEQUENCE_SCHEMA, hash64
from .batch import validate_batch
from .fields import (
    INT64_MAX,
    CohortValue,
    FeatureValue,
    Key,
    Name,
    RequestId,
    Timestamp,
    Version,
    check_timestamp,
)
from .policy import NO_PII, Limits, PiiPolicy
from .predictions import append_identity

__all__ = [
    "MAX_SEQUENCE_TOKENS",
    "MIN_LOGPROB",
    "SEQUENCE_FEATURE",
    "SequenceEvent",
    "parse_sequences",
    "sequence_columns",
]

#: The feature the server adds to every sequence: its cross-entropy in nats per token.
SEQUENCE_FEATURE = "sequence_cross_entropy"
#: Tokens of one sequence (a 20 MiB body holds about 2 million numbers in all).
MAX_SEQUENCE_TOKENS = 1_000_000
#: The lowest token log-probability taken: OpenAI's APIs send -9999.0 for "probability
#: ~0"; below, a window's sums of squares could overflow a float.
MIN_LOGPROB = -1e4
#: The longest ``text`` (characters): 4 MiB, under the body limit.
MAX_TEXT = 4 * 1024 * 1024

_LOGPROBS_SCHEMA = {
    "description": "Natural log-probability of each token (<= 0), in order.",
    "type": "array",
    "items": {"type": "number", "maximum": 0},
    "minItems": 1,
    "maxItems": MAX_SEQUENCE_TOKENS,
}
_COUNT = Annotated[int, Field(strict=True, ge=1, le=INT64_MAX)]


class SequenceEvent(BaseModel):
    """One scored sequence as sent by a client (structure only; see :func:`parse_sequences`).

    Example:
        >>> SequenceEvent(request_id="s1", model="lm", token_logprobs=[-0.5], n_bytes=3).version
        ''
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    request_id: RequestId
    model: Name
    version: Version = ""
    timestamp: Timestamp | None = None
    # Checked by hand after parsing, for exact messages and JSON-pointer paths.
    token_logprobs: Annotated[Any, WithJsonSchema(_LOGPROBS_SCHEMA)]
    text: Annotated[str, Field(strict=True, max_length=MAX_TEXT)] | None = None
    n_bytes: _COUNT | None = None
    n_words: _COUNT | None = None
    cohort: dict[Key, CohortValue] = Field(default_factory=dict, max_length=32)
    features: dict[Key, FeatureValue] = Field(default_factory=dict, max_length=255)

    def members(self) -> int:
        """How many object members (keys) the event had as sent (see
        :meth:`xebench.ingest.fields.PredictionEvent.members`).

        Example:
            >>> SequenceEvent(request_id="s", model="m", token_logprobs=[-1.0],
            ...               cohort={"lang": "en"}).members()
            5
        """
        return len(self.model_fields_set) + len(self.cohort) + len(self.features)


_SEQUENCES = TypeAdapter(list[SequenceEvent])
_RULE = "must be a log-probability: a number <= 0 (natural log)"


def check_token_logprobs(values: Any) -> np.ndarray:
    """The token log-probabilities as floats, or :class:`~xebench.errors.InvalidInputError`
    naming the first bad token (``argument``: its JSON pointer).

    Example:
        >>> check_token_logprobs([-1, -0.5]).tolist()
        [-1.0, -0.5]
        >>> check_token_logprobs([-1, 0.5])
        Traceback (most recent call last):
        ...
        xebench.errors.InvalidInputError: /token_logprobs/1: must be a log-probability: a \
number <= 0 (natural log); got 0.5
    """
    if not isinstance(values, list) or not values:
        raise InvalidInputError(
            "/token_logprobs", "must be a non-empty array of numbers (one per token)"
        )
    if len(values) > MAX_SEQUENCE_TOKENS:
        raise InvalidInputError(
            "/token_logprobs", f"holds {len(values)} tokens; at most {MAX_SEQUENCE_TOKENS}"
        )
    array = None
    if not any(isinstance(v, bool) for v in values):
        try:
            array = np.array(values, dtype=np.float64)
        except (TypeError, ValueError, OverflowError):
            array = None
    if array is None or array.ndim != 1:
        for i, value in enumerate(values):  # find and name the first bad one
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise InvalidInputError(f"/token_logprobs/{i}", f"{_RULE}; got {value!r}"[:300])
            if isinstance(value, int) and abs(value) > 1e300:
                raise InvalidInputError(f"/token_logprobs/{i}", f"{_RULE}; got a huge integer")
        raise InvalidInputError("/token_logprobs", "must be an array of numbers")
    bad = ~(array <= LOGPROB_TOLERANCE)  # NaN fails too
    if bad.any():
        i = int(np.argmax(bad))
        raise InvalidInputError(f"/token_logprobs/{i}", f"{_RULE}; got {values[i]!r}"[:300])
    low = ~(array >= MIN_LOGPROB)  # -inf too: a token of probability 0 has no log
    if low.any():
        i = int(np.argmax(low))
        raise InvalidInputError(
            f"/token_logprobs/{i}",
            f"must be >= {MIN_LOGPROB:g} (OpenAI's floor is -9999; a probability below "
            f"e^{MIN_LOGPROB:g} is no float); got {values[i]!r}"[:300],
        )
    return np.minimum(array, 0.0)


def _sizes(event: SequenceEvent) -> tuple[float | None, float | None]:
    """(bytes, words) of the scored text: counted from ``text``, or as sent."""
    n_bytes, n_words = event.n_bytes, event.n_words
    if event.text is not None:
        try:
            counted = len(event.text.encode("utf-8"))
        except UnicodeEncodeError as error:  # a lone surrogate, from a file
            raise InvalidInputError("/text", f"is not valid Unicode: {error.reason}") from None
        if n_bytes is not None and n_bytes != counted:
            raise InvalidInputError(
                "/n_bytes", f"is {n_bytes} but the text has {counted} UTF-8 bytes; send one"
            )
        n_bytes = counted or None
        if n_words is None and event.text.strip():
            n_words = count_words(event.text)
    return (
        None if n_bytes is None else float(n_bytes),
        None if n_words is None else float(n_words),
    )


def sequence_columns(
    body: bytes | Sequence[Mapping[str, Any]],
    *,
    tenant: str,
    ndjson: bool = False,
    limits: Limits = Limits(),
    pii: PiiPolicy = NO_PII,
    now: datetime | None = None,
) -> dict[str, list[Any]]:
    """Validate a batch of sequence events into the columns of
    :data:`~xebench.store.schema.SEQUENCE_SCHEMA`; raises :class:`~xebench.errors.BatchError`
    whose entries name the event and the field (``/0/token_logprobs/3``).

    Example:
        >>> from xebench.errors import BatchError
        >>> try:
        ...     sequence_columns(b'[{"request_id": "a", "model": "m", "token_logprobs": [1]}]',
        ...                      tenant="t")
        ... except BatchError as error:
        ...     print(error.errors[0]["field"])
        /0/token_logprobs/0
    """

    def add_row(event: SequenceEvent, now: datetime, columns: dict[str, list[Any]]) -> None:
        logprobs = check_token_logprobs(event.token_logprobs)
        n_bytes, n_words = _sizes(event)
        if SEQUENCE_FEATURE in event.features:
            raise InvalidInputError(
                f"/features/{SEQUENCE_FEATURE}", "is reserved: the server adds it"
            )
        event_time, sent_time = check_timestamp(event.timestamp, now, limits)
        cohort = pii.apply(event.cohort) if pii.active else event.cohort
        features = pii.apply(event.features) if pii.active else event.features
        nll = float(-logprobs.sum())
        tokens = {
            "n_tokens": int(logprobs.size),
            "nll": nll,
            "extremal": int(np.count_nonzero(logprobs < DEFAULT_EXTREMAL_LOGPROB)),
            "n_bytes": n_bytes,
            "n_words": n_words,
        }
        derived = {**features, SEQUENCE_FEATURE: nll / logprobs.size}
        features_json = to_json(dict(sorted(derived.items()))).decode()
        append_identity(columns, tenant, event, event_time, now, cohort, features_json)
        columns["classes"].append([])
        columns["probabilities"].append([])
        # What the client sent (the token log-probabilities as summed): an identical
        # resend hashes the same; another sequence under the same id is a conflict.
        content = ("sequence", event.version, sent_time, tokens, sorted(cohort.items()),
                   features_json)  # fmt: skip
        columns["payload_hash"].append(hash64(to_json(content)))
        columns["weight"].append(1.0)
        columns["tokens"].append(tokens)

    return validate_batch(
        _SEQUENCES,
        SequenceEvent,
        SEQUENCE_SCHEMA.names,
        body,
        add_row=add_row,
        ndjson=ndjson,
        limits=limits,
        now=now,
    )


def parse_sequences(
    body: bytes | Sequence[Mapping[str, Any]],
    *,
    tenant: str,
    ndjson: bool = False,
    limits: Limits = Limits(),
    pii: PiiPolicy = NO_PII,
    now: datetime | None = None,
) -> pa.Table:
    """:func:`sequence_columns` as a :data:`~xebench.store.schema.SEQUENCE_SCHEMA` table
    (see the module's example)."""
    return pa.table(
        sequence_columns(body, tenant=tenant, ndjson=ndjson, limits=limits, pii=pii, now=now),
        schema=SEQUENCE_SCHEMA,
    )
