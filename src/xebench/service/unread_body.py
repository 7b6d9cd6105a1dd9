"""Discard the body of a request answered before its body was read, or close the connection.

Admission control, authentication and the declared-size check answer 429 /
401 / 413 *before* reading a body, so that an overloaded server spends
nothing on work it refuses. HTTP then leaves two choices for the body still
on its way (RFC 9112, section 9.3): read and discard it, or close the
connection. uvicorn keeps the part that arrived before the answer in the
connection's request state until the next request on it, up to ~64 KiB plus
a read per connection: with 1,024 clients posting 120 KB batches to a server
at capacity, that was ~130 MB of the server's memory (measured with
tracemalloc, ``uvicorn/protocols/http/httptools_impl.py: self.cycle.body +=
body``). :class:`CloseUnread` does what a careful HTTP server does
("lingering close"):

- a body of at most ``drain_bytes`` (1 MiB) is read to its end and dropped
  before the answer goes out, for at most ``drain_seconds`` (1 s): the
  connection stays open, and nothing of the body stays in memory;
- a larger body, one that does not arrive in time, or one without a length
  that grows past ``drain_bytes``, gets ``Connection: close`` on the answer:
  the server drops the connection and what it buffered.

Closing every such connection instead was measured too: it bounds the memory
the same way, but 1,024 clients reconnecting after every 429 cut what the
server still accepted at 3x overload from ~17,000 to ~11,700 events/s.

A request whose body was read to its end (every accepted batch, every 422),
or that has no body, is passed through untouched.

Example:
    >>> from fastapi.testclient import TestClient
    >>> from xebench.service.app import create_app
    >>> from xebench.store import EventStore
    >>> from xebench.ingest.policy import Limits
    >>> from xebench.service.config import ServiceConfig
    >>> config = ServiceConfig(limits=Limits(max_body_bytes=100))
    >>> with TestClient(create_app(EventStore(":memory:"), config)) as client:
    ...     small = client.post("/v1/predictions", content=b" " * 200)  # 413: drained
    ...     large = client.post("/v1/predictions", content=b" " * (2 << 20))  # 413: closed
    ...     read = client.post("/v1/predictions", json=[{"model": "m"}])  # read: a 422
    >>> small.status_code, "connection" in small.headers
    (413, False)
    >>> large.status_code, large.headers["connection"]
    (413, 'close')
    >>> read.status_code, "connection" in read.headers
    (422, False)
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

__all__ = ["CloseUnread", "declared_length", "has_body"]


def declared_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    """The ``Content-Length`` of an ASGI request's ``headers`` (None: absent or not a number).

    Example:
        >>> declared_length([(b"content-length", b"12")]), declared_length([])
        (12, None)
    """
    for name, value in headers:
        if name == b"content-length":
            value = value.strip()
            return int(value) if value.isdigit() else None
    return None


def has_body(headers: list[tuple[bytes, bytes]]) -> bool:
    """Whether an ASGI request's ``headers`` announce a body (a non-zero
    ``Content-Length``, or any ``Transfer-Encoding``).

    Example:
        >>> has_body([(b"content-length", b"12")]), has_body([(b"content-length", b"0")])
        (True, False)
        >>> has_body([(b"transfer-encoding", b"chunked")]), has_body([])
        (True, False)
    """
    for name, value in headers:
        if name == b"content-length":
            return value.strip() not in (b"0", b"")
        if name == b"transfer-encoding":
            return True
    return False


class CloseUnread:
    """ASGI middleware: an answer that starts before the request's body was received to
    its end first drains a small body, or else closes the connection (see the module).

    Args:
        app: the ASGI app.
        drain_bytes: the largest body (declared or read so far) drained rather than
            answered with ``Connection: close``.
        drain_seconds: how long the rest of a body may take to arrive.
    """

    def __init__(self, app: Any, drain_bytes: int = 1 << 20, drain_seconds: float = 1.0) -> None:
        self.app = app
        self.drain_bytes = drain_bytes
        self.drain_seconds = drain_seconds

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        headers = scope["headers"] if scope["type"] == "http" else ()
        if not has_body(headers):
            await self.app(scope, receive, send)
            return
        received, size = False, 0

        async def tracked() -> Any:
            nonlocal received, size
            message = await receive()
            if message["type"] == "http.request":
                size += len(message.get("body", b""))
                received = not message.get("more_body", False)
            else:
                received = True  # disconnected: nothing more will come
            return message

        async def answer(message: Any) -> None:
            if (
                message["type"] == "http.response.start"
                and not received
                and not await self._drained(tracked, declared_length(headers), lambda: size)
            ):
                kept = [(k, v) for k, v in message.get("headers", ()) if k != b"connection"]
                message = {**message, "headers": [*kept, (b"connection", b"close")]}
            await send(message)

        await self.app(scope, tracked, answer)

    async def _drained(self, receive: Any, declared: int | None, read: Any) -> bool:
        """Read the rest of the body and drop it; False when it is too large or too slow."""
        if declared is not None and declared > self.drain_bytes:
            return False
        deadline = time.monotonic() + self.drain_seconds
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or read() > self.drain_bytes:
                return False
            try:
                message = await asyncio.wait_for(receive(), left)
            except TimeoutError:
                return False
            if message["type"] != "http.request" or not message.get("more_body", False):
                return message["type"] == "http.request"
