"""The bounds and the privacy policy that ingestion applies to every request.

:class:`Limits` bounds one request (body size, events, classes, how far ahead
a timestamp may be); :class:`PiiPolicy` drops or hashes cohort and feature
keys before anything is stored. The service reads both from its
configuration; ``xebench ingest`` and the demo pass them in.

Example:
    >>> Limits(max_events=500).max_events, NO_PII.active
    (500, False)
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from hashlib import sha256
from typing import Any

from ..errors import InvalidInputError

__all__ = ["NO_PII", "Limits", "PiiPolicy"]

#: A value :meth:`PiiPolicy.apply` hashed: ``h:`` and 16 hexadecimal digits.
_TOKEN = re.compile(r"^h:[0-9a-f]{16}$")


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
                value = self._token(value)
            out[name] = value
        return out

    def for_display(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """Stored cohort or feature values as they may be shown: :meth:`apply` again,
        except that a value already hashed at ingest is kept as stored.

        Events are stored after :meth:`apply`, so this changes nothing for them; it
        matters for events stored before the policy named a key: a key now dropped
        is never shown, a key now hashed is shown hashed.

        Example:
            >>> policy = PiiPolicy(drop=frozenset({"email"}), hash=frozenset({"user"}), key=b"k")
            >>> stored = policy.apply({"email": "a@b.c", "user": "u-17", "plan": "pro"})
            >>> policy.for_display(stored) == stored
            True
            >>> policy.for_display({"email": "old@b.c", "user": "u-17"})
            {'user': 'h:8ee45fc7054f1027'}
        """
        out: dict[str, Any] = {}
        for name, value in values.items():
            if name in self.drop:
                continue
            hashed = isinstance(value, str) and _TOKEN.match(value) is not None
            if name in self.hash and value is not None and not hashed:
                value = self._token(value)
            out[name] = value
        return out

    def _token(self, value: Any) -> str:
        digest = hmac.new(self.key, str(value).encode("utf-8"), sha256).hexdigest()
        return "h:" + digest[:16]


NO_PII = PiiPolicy()
