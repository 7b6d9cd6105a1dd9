"""Answers given before a body was read: the body is drained, or the connection closed.

A real uvicorn server on loopback and raw sockets, so that what is checked is what
a client sees on the wire: whether the connection stays usable after a refusal,
and whether the server closes it. Memory is why (xebench.service.unread_body): the
last test counts the bytes uvicorn still holds for refused requests.
"""

from __future__ import annotations

import json
import socket
import time
from typing import Any

import pytest

from loopback import serve_in_thread
from xebench.ingest.policy import Limits
from xebench.service.app import create_app
from xebench.service.config import ServiceConfig, TokenEntry, TokenRegistry, hash_token
from xebench.service.unread_body import CloseUnread
from xebench.store import EventStore

TOKEN = "ingest-token"


def _app(**limits: Any) -> Any:
    tokens = TokenRegistry([TokenEntry("acme", frozenset({"ingest", "read"}), hash_token(TOKEN))])
    config = ServiceConfig(tokens=tokens, limits=Limits(**limits), validation_processes=0)
    return create_app(EventStore(":memory:"), config)


def _request(body: bytes, *, token: str = TOKEN, length: int | None = None) -> bytes:
    head = (
        "POST /v1/predictions HTTP/1.1\r\nhost: 127.0.0.1\r\n"
        f"authorization: Bearer {token}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body) if length is None else length}\r\n\r\n"
    )
    return head.encode() + body


def _answer(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 answer (status, headers, body) read from ``sock``."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed before an answer: {data!r}"
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    headers = {k.lower(): v for k, v in headers.items()}
    while len(rest) < int(headers["content-length"]):
        rest += sock.recv(65536)
    return int(lines[0].split()[1]), headers, rest


def _closed(sock: socket.socket, timeout: float = 5.0) -> bool:
    """Whether the server closes ``sock`` (EOF or reset) within ``timeout``."""
    sock.settimeout(timeout)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def _events(n: int, prefix: str = "r") -> bytes:
    return json.dumps(
        [{"request_id": f"{prefix}{i}", "model": "m", "probabilities": 0.5} for i in range(n)]
    ).encode()


def test_a_small_body_refused_unread_is_drained_and_the_connection_kept() -> None:
    with serve_in_thread(_app()) as url:
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(_request(_events(2000), token="wrong"))  # 401 before reading
            status, headers, _ = _answer(sock)
            assert (status, "connection" in headers) == (401, False)
            sock.sendall(_request(_events(3)))  # the same connection serves the next one
            status, headers, body = _answer(sock)
            assert status == 200 and json.loads(body)["inserted"] == 3


def test_a_large_body_refused_unread_closes_the_connection() -> None:
    with serve_in_thread(_app(max_body_bytes=1000)) as url:
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port)) as sock:
            # Declared 2 MiB, over the body limit: 413 before reading, nothing drained.
            sock.sendall(_request(b"[", length=2 << 20))
            status, headers, body = _answer(sock)
            assert status == 413 and headers["connection"] == "close"
            assert "exceeds 1000 bytes" in json.loads(body)["detail"]
            assert _closed(sock)


def test_a_body_that_stalls_is_answered_and_closed_after_the_drain_time() -> None:
    app = _app()
    app.user_middleware = [m for m in app.user_middleware if m.cls is not CloseUnread]
    app.add_middleware(CloseUnread, drain_seconds=0.3)
    with serve_in_thread(app) as url:
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port)) as sock:
            # 100 bytes declared, 10 sent, then nothing: the 401 waits 0.3 s at most.
            started = time.monotonic()
            sock.sendall(_request(b"[" * 10, token="wrong", length=100))
            status, headers, _ = _answer(sock)
            assert (status, headers["connection"]) == (401, "close")
            assert time.monotonic() - started < 5
            assert _closed(sock)


def test_bodies_read_to_their_end_keep_the_connection() -> None:
    with serve_in_thread(_app()) as url:
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port)) as sock:
            for n, expected in ((5, 200), (0, 422), (5, 200)):  # accepted, refused, accepted
                sock.sendall(_request(_events(n, prefix=f"k{n}-{expected}")))
                status, headers, _ = _answer(sock)
                assert (status, "connection" in headers) == (expected, False)


@pytest.mark.parametrize("drained", [True, False])
def test_refused_connections_leave_no_body_in_the_server(drained: bool) -> None:
    """What uvicorn still holds for 64 connections whose 120 KB batches were refused:
    the bodies' bytes, measured on the server's live connection objects."""
    app = _app()
    if not drained:  # the same app without the middleware: the bytes stay
        app.user_middleware = [m for m in app.user_middleware if m.cls is not CloseUnread]
    body = _events(2000)
    with serve_in_thread(app) as url:
        port = int(url.rsplit(":", 1)[1])
        socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(64)]
        try:
            for sock in socks:
                sock.sendall(_request(body, token="wrong"))
            for sock in socks:
                assert _answer(sock)[0] == 401
            time.sleep(0.2)  # the bodies' last bytes reach the server
            held = _held_body_bytes()
        finally:
            for sock in socks:
                sock.close()
    if drained:
        assert held < 64 * 1024  # at most crumbs
    else:
        assert held > 64 * 64 * 1024  # > 64 KiB per connection: why the middleware exists


def _held_body_bytes() -> int:
    """Bytes in the request bodies uvicorn's live HTTP connections keep."""
    import gc

    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    total = 0
    for obj in gc.get_objects():
        if isinstance(obj, HttpToolsProtocol) and obj.cycle is not None:
            total += len(obj.cycle.body)
    return total
