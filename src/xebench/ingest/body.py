"""Request bodies: their media type, their encoding and the size limit.

A body of events is JSON (an array, or one object) or NDJSON (one event per
line), optionally gzip-compressed; it is refused before any parsing when its
media type or encoding is another, or when it is larger than
:attr:`~xebench.ingest.policy.Limits.max_body_bytes` after decompression (a
small gzip bomb must not expand into gigabytes in memory).

Example:
    >>> decode_body(b'{"request_id": "r1"}', "application/x-ndjson; charset=utf-8")
    (b'{"request_id": "r1"}', True)
"""

from __future__ import annotations

import zlib
from collections.abc import Callable

from ..errors import BatchError
from .policy import Limits

__all__ = ["JSON_TYPES", "NDJSON_TYPES", "decode_body", "decompress_body", "media_type"]

#: Media types of a JSON array (or a single JSON object) body.
JSON_TYPES = frozenset({"application/json"})


#: Media types of a newline-delimited JSON body (one event per line).
NDJSON_TYPES = frozenset(
    {"application/x-ndjson", "application/ndjson", "application/jsonl", "application/json-lines"}
)


def media_type(content_type: str | None) -> str:
    """The media type of a ``Content-Type`` header, without parameters, lower case.

    Example:
        >>> media_type("Text/CSV; charset=utf-8"), media_type(None)
        ('text/csv', '')
    """
    return (content_type or "").split(";", 1)[0].strip().lower()


_STEP = 1 << 20  # bytes of output per decompression step


def _gunzip(raw: bytes, limit: int, reserve: Callable[[int], None] | None) -> bytes:
    # Decompress in bounded steps: a 20 KiB gzip bomb can expand to gigabytes. Before
    # each step, ``reserve`` is told the size the output may reach (admission control).
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    parts: list[bytes] = []
    size = 0
    data = raw
    while data:
        step = min(_STEP, limit + 1 - size)
        if reserve is not None:
            reserve(min(size + step, limit))
        try:
            part = inflater.decompress(data, step)
        except zlib.error as error:
            raise BatchError(400, f"body is not valid gzip: {error}") from None
        parts.append(part)
        size += len(part)
        if size > limit:
            raise BatchError(413, f"body exceeds {limit} bytes after decompression")
        data = inflater.unconsumed_tail
    if not inflater.eof:
        raise BatchError(400, "body is not valid gzip: truncated stream")
    return b"".join(parts)


def decode_body(
    raw: bytes,
    content_type: str | None,
    content_encoding: str | None = None,
    limits: Limits = Limits(),
    reserve: Callable[[int], None] | None = None,
) -> tuple[bytes, bool]:
    """Check the media type and encoding of a body; return ``(json_bytes, is_ndjson)``.

    Raises :class:`BatchError` 415 for another media type or encoding, 413
    for a body over ``limits.max_body_bytes`` after decompression, 400 for a
    corrupt gzip stream. ``reserve(size)``, when given, is called before a gzip
    body may grow to ``size`` bytes (it raises to stop: the server's admission control).

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
    return decompress_body(raw, content_encoding, limits, reserve), media in NDJSON_TYPES


def decompress_body(
    raw: bytes,
    content_encoding: str | None,
    limits: Limits = Limits(),
    reserve: Callable[[int], None] | None = None,
) -> bytes:
    """The body after its ``Content-Encoding`` (gzip or none), within ``limits.max_body_bytes``.

    Raises :class:`BatchError` 415 for another encoding, 413 for a body over
    the limit after decompression, 400 for a corrupt gzip stream; ``reserve`` as
    for :func:`decode_body`.

    Example:
        >>> import gzip
        >>> decompress_body(gzip.compress(b"a,b"), "gzip")
        b'a,b'
    """
    encoding = (content_encoding or "identity").strip().lower()
    if encoding == "gzip":
        body = _gunzip(raw, limits.max_body_bytes, reserve)
    elif encoding == "identity":
        body = raw
    else:
        raise BatchError(415, f"unsupported content encoding {encoding!r}: use gzip or none")
    if len(body) > limits.max_body_bytes:
        raise BatchError(413, f"body exceeds {limits.max_body_bytes} bytes")
    return body
