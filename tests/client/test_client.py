"""The client SDK (xebench.client.sdk) against a scripted fake server and a real loopback server.

Most tests talk to :class:`FakeServer` through ``httpx.MockTransport``: it
decompresses and parses every request, stores events deduplicated by
(endpoint, model, request_id) like the real service, and can be scripted to
answer 429/503 with ``Retry-After``, raise connection errors, refuse events
(422/409), refuse large batches (413), or commit a batch and then lose the
answer (a timeout after the commit). Backoff waits go through an injected
``sleep``, and batch ages and deadlines through a :class:`FakeClock`, so no
test depends on how fast the machine is: what a test waits for in real time
(``wait_until``) is an outcome, never a duration.
"""

from __future__ import annotations

import gc
import gzip
import http.server
import json
import logging
import random
import socket
import subprocess
import sys
import textwrap
import threading
import time
import weakref
from collections import Counter, deque
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from email.utils import format_datetime
from typing import Any

import httpx
import numpy as np
import pytest

from xebench.client.sdk import Client, ClientError

URL = "http://xebench.test"
OK_SLEEP: Callable[[float], None] = lambda delay: None  # noqa: E731


class FixedRandom(random.Random):
    """A ``random.Random`` whose ``random()`` always returns the same number."""

    def __init__(self, value: float) -> None:
        super().__init__(0)
        self.value = value

    def random(self) -> float:
        return self.value


class FakeClock:
    """Monotonic seconds that pass only when told: :meth:`advance`, or :meth:`sleep` as a hook."""

    def __init__(self) -> None:
        self.now = 0.0
        self.lock = threading.Lock()

    def __call__(self) -> float:
        with self.lock:
            return self.now

    def advance(self, seconds: float) -> None:
        with self.lock:
            self.now += seconds

    def sleep(self, seconds: float) -> None:
        self.advance(seconds)


class FakeServer:
    """An in-memory stand-in for ``xebench serve``'s ingestion endpoints.

    ``script`` holds what to do with the next requests, one item per request:
    an ``httpx.Response``, an exception to raise, ``"commit_then_timeout"``
    (store the batch, then lose the answer) or a callable ``(request, events)``.
    When the script is empty the batch is accepted (or refused by the rules).
    """

    def __init__(self, *, max_events: int | None = None, reject_prefix: str = "bad") -> None:
        self.lock = threading.Lock()
        self.requests: list[dict[str, Any]] = []
        self.stored: dict[tuple[str, str | None, str], dict[str, Any]] = {}
        self.received: Counter[str] = Counter()  # request_id -> times seen on the wire
        self.script: deque[Any] = deque()
        self.max_events = max_events
        self.reject_prefix = reject_prefix
        self.name_errors = True  # 422 answers carry errors[].index
        self.clock: Callable[[], float] = time.monotonic  # the "time" of each request

    def __call__(self, request: httpx.Request) -> httpx.Response:
        raw = request.read()
        body = gzip.decompress(raw) if request.headers.get("content-encoding") == "gzip" else raw
        events = json.loads(body)
        kind = request.url.path.rsplit("/", 1)[-1]
        with self.lock:
            self.requests.append(
                {
                    "kind": kind,
                    "headers": dict(request.headers),
                    "raw_bytes": len(raw),
                    "events": events,
                    "time": self.clock(),
                }
            )
            self.received.update(e["request_id"] for e in events)
            action = self.script.popleft() if self.script else None
        if isinstance(action, Exception):
            raise action
        if isinstance(action, httpx.Response):
            return action
        if callable(action):
            return action(request, events)
        response = self.ingest(kind, events)
        if action == "commit_then_timeout":
            raise httpx.ReadTimeout("the answer was lost", request=request)
        return response

    def ingest(self, kind: str, events: list[dict[str, Any]]) -> httpx.Response:
        if self.max_events is not None and len(events) > self.max_events:
            return httpx.Response(413, json={"detail": "batch too large", "errors": []})
        bad = [i for i, e in enumerate(events) if e["request_id"].startswith(self.reject_prefix)]
        if bad:
            errors = [
                {"index": i, "field": f"/{i}/request_id", "message": "refused by the fake"}
                for i in bad
            ]
            detail = f"{len(bad)} of {len(events)} events are invalid"
            body = {"detail": detail, "errors": errors if self.name_errors else []}
            return httpx.Response(422, json=body)
        inserted = duplicates = 0
        with self.lock:
            for event in events:
                key = (kind, event.get("model"), event["request_id"])
                if key in self.stored:
                    duplicates += 1
                else:
                    self.stored[key] = event
                    inserted += 1
        body = {"accepted": len(events), "inserted": inserted, "duplicates": duplicates}
        return httpx.Response(200, json=body)

    def sizes(self, kind: str = "predictions") -> list[int]:
        with self.lock:
            return [len(r["events"]) for r in self.requests if r["kind"] == kind]

    def ids(self, kind: str = "predictions") -> list[str]:
        with self.lock:
            return sorted(rid for k, _, rid in self.stored if k == kind)


def wait_until(predicate: Callable[[], bool], timeout: float = 20.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.005)
    return predicate()


@pytest.fixture
def server() -> FakeServer:
    return FakeServer()


@pytest.fixture
def make_client(server: FakeServer) -> Iterator[Callable[..., Client]]:
    clients: list[Client] = []

    def make(**kwargs: Any) -> Client:
        kwargs.setdefault("transport", httpx.MockTransport(server))
        kwargs.setdefault("sleep", OK_SLEEP)
        client = Client(URL, **kwargs)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close(timeout=2)


def log_many(client: Client, n: int, prefix: str = "r", **extra: Any) -> None:
    for i in range(n):
        client.log_prediction(f"{prefix}{i}", 0.25, model="fraud", **extra)


# --- batching and encoding ------------------------------------------------------------


def test_batches_by_size(server: FakeServer, make_client: Callable[..., Client]) -> None:
    client = make_client(batch_size=10, flush_interval=60, clock=FakeClock())
    log_many(client, 25)
    assert wait_until(lambda: server.sizes() == [10, 10])
    time.sleep(0.05)  # a chance to send too early: on the fake clock the interval never ends
    assert server.sizes() == [10, 10], "a partial batch waits for flush_interval"
    assert client.stats()["queued"] == 5
    assert client.flush(timeout=2)
    assert server.sizes() == [10, 10, 5]
    assert server.ids() == sorted(f"r{i}" for i in range(25))


def test_batches_by_interval(server: FakeServer, make_client: Callable[..., Client]) -> None:
    clock = server.clock = FakeClock()
    client = make_client(batch_size=500, flush_interval=0.1, clock=clock)
    log_many(client, 3)
    clock.advance(0.05)
    time.sleep(0.05)  # a chance to send too early
    assert server.sizes() == [], "the oldest event has waited 0.05 s of 0.1"
    clock.advance(0.05)
    assert wait_until(lambda: server.sizes() == [3])
    assert server.requests[0]["time"] == pytest.approx(0.1)
    assert wait_until(lambda: client.stats()["sent"] == 3)


def test_predictions_and_labels_go_to_their_endpoints(
    server: FakeServer, make_client: Callable[..., Client]
) -> None:
    client = make_client(flush_interval=60)
    client.log_prediction("r1", [0.2, 0.8], model="fraud", version="v2", classes=["no", "yes"])
    client.log_label("r1", "yes", model="fraud")
    client.log_label("r2", True)
    assert client.flush(timeout=2)
    assert server.sizes("predictions") == [1] and server.sizes("labels") == [2]
    labels = next(r for r in server.requests if r["kind"] == "labels")["events"]
    assert labels[0] == {
        "request_id": "r1",
        "model": "fraud",
        "label": "yes",
        "timestamp": labels[0]["timestamp"],
    }
    assert "model" not in labels[1] and labels[1]["label"] is True


def test_gzip_large_bodies_and_send_the_token(server: FakeServer) -> None:
    with Client(URL, "s3cret", transport=httpx.MockTransport(server), flush_interval=60) as c:
        log_many(c, 30, features={"amount": 12.5, "country": "FR"})
        c.log_label("r1", 1)
        assert c.flush(timeout=2)
    big = next(r for r in server.requests if r["kind"] == "predictions")
    small = next(r for r in server.requests if r["kind"] == "labels")
    assert big["headers"]["content-encoding"] == "gzip"
    assert big["raw_bytes"] < len(json.dumps(big["events"]))
    assert "content-encoding" not in small["headers"], "small bodies are not worth compressing"
    for request in (big, small):
        assert request["headers"]["authorization"] == "Bearer s3cret"
        assert request["headers"]["content-type"] == "application/json"
    assert len(server.ids()) == 30


def test_gzip_can_be_disabled_and_no_token_sends_no_header(server: FakeServer) -> None:
    with Client(URL, transport=httpx.MockTransport(server), gzip=False) as client:
        log_many(client, 30, features={"amount": 12.5})
        assert client.flush(timeout=2)
    assert "content-encoding" not in server.requests[0]["headers"]
    assert "authorization" not in server.requests[0]["headers"]


def test_url_path_prefix_is_kept() -> None:
    paths = []

    def handler(request: httpx.Request) -> httpx.Response:
        paths.append(request.url.path)
        return httpx.Response(200, json={"duplicates": 0})

    with Client("http://proxy.test/xebench/", transport=httpx.MockTransport(handler)) as c:
        c.send_labels([{"request_id": "r1", "label": 0}])
    assert paths == ["/xebench/v1/labels"]


# --- retries ----------------------------------------------------------------------------


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_is_honoured(
    status: int, server: FakeServer, make_client: Callable[..., Client]
) -> None:
    delays: list[float] = []
    busy = httpx.Response(status, headers={"Retry-After": "2"}, json={"detail": "busy"})
    server.script.extend([busy])
    client = make_client(sleep=delays.append, rng=FixedRandom(0.0))
    log_many(client, 3)
    assert client.flush(timeout=2)
    assert delays == [2.0], "the jittered backoff is 0 here: the wait comes from Retry-After"
    stats = client.stats()
    assert stats["retries"] == 1 and stats["sent"] == 3 and stats["failed"] == 0
    assert stats["last_error"] == f"HTTP {status}: busy"
    assert server.sizes() == [3, 3] and server.ids() == ["r0", "r1", "r2"]


def test_retry_after_as_an_http_date(
    server: FakeServer, make_client: Callable[..., Client]
) -> None:
    """An hour from now: the date is read, and believed up to 60 s (exact dates: test_transport)."""
    delays: list[float] = []
    when = format_datetime(datetime.now(UTC) + timedelta(hours=1), usegmt=True)
    server.script.append(httpx.Response(503, headers={"Retry-After": when}))
    client = make_client(sleep=delays.append, rng=FixedRandom(0.0))
    client.log_label("r1", 1)
    assert client.flush(timeout=2)
    assert delays == [60.0]


def test_retry_after_really_waits_without_a_sleep_hook(server: FakeServer) -> None:
    clock = server.clock = FakeClock()
    server.script.append(httpx.Response(429, headers={"Retry-After": "0.3"}))
    transport = httpx.MockTransport(server)
    with Client(URL, transport=transport, rng=FixedRandom(0.0), clock=clock) as client:
        client.log_label("r1", 1)
        flushed: list[bool] = []
        flusher = threading.Thread(target=lambda: flushed.append(client.flush(timeout=20)))
        flusher.start()
        assert wait_until(lambda: client.stats()["retries"] == 1)
        clock.advance(0.2)
        time.sleep(0.05)  # a chance to retry too early
        assert len(server.requests) == 1, "0.2 s of the 0.3 s Retry-After have passed"
        # The sender reads the clock when it starts waiting, a moment after counting
        # the retry: if it started after the advance above, 0.1 s more is not enough,
        # so time goes on in 0.1 s steps (each given the sender's real re-check period)
        # until the retry instead of leaving it waiting for time that never comes.
        for _ in range(6):
            clock.advance(0.1)
            if wait_until(lambda: len(server.requests) == 2, timeout=0.6):
                break
        flusher.join(20)
        assert flushed == [True]
    first, second = server.requests
    # Never before the 0.3 s the server asked for (0.5 s if the wait started late).
    assert 0.3 - 1e-9 <= second["time"] - first["time"] <= 0.5 + 1e-9


def test_exponential_backoff_with_full_jitter(
    server: FakeServer, make_client: Callable[..., Client]
) -> None:
    caps = [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]  # base 0.1 doubling, capped at backoff_max 1.0
    for value, expect in ((0.999, [0.999 * c for c in caps]), (0.0, [0.0] * 6)):
        server.script.extend([httpx.Response(503)] * len(caps))
        delays: list[float] = []
        client = make_client(
            sleep=delays.append, rng=FixedRandom(value), backoff_base=0.1, backoff_max=1.0
        )
        client.log_label(f"r{value}", 1)
        assert client.flush(timeout=2)
        assert delays == pytest.approx(expect)
        assert client.stats()["retries"] == len(caps)
    # A real generator: every delay within [0, its cap], and not all the same.
    server.script.extend([httpx.Response(503)] * len(caps))
    delays = []
    client = make_client(sleep=delays.append, rng=random.Random(7), backoff_max=1.0)
    client.log_label("seeded", 1)
    assert client.flush(timeout=2)
    assert all(0.0 <= d <= c for d, c in zip(delays, caps, strict=True))
    assert len(set(delays)) == len(delays)


def test_connection_errors_timeouts_429_and_gateway_errors_are_retried(
    server: FakeServer, make_client: Callable[..., Client]
) -> None:
    request = httpx.Request("POST", URL)
    server.script.extend(
        [
            httpx.ConnectError("connection refused", request=request),
            httpx.ReadTimeout("timed out", request=request),
            httpx.Response(429),
            httpx.Response(502, text="bad gateway"),
            httpx.Response(503),
            httpx.Response(504),
        ]
    )
    client = make_client()
    log_many(client, 4)
    assert client.flush(timeout=2)
    stats = client.stats()
    assert stats["retries"] == 6 and stats["sent"] == 4 and stats["failed"] == 0
    assert server.ids() == ["r0", "r1", "r2", "r3"]


def test_max_retries_then_failed(server: FakeServer, make_client: Callable[..., Client]) -> None:
    server.script.extend([httpx.Response(503)] * 10)
    client = make_client(max_retries=2)
    log_many(client, 3)
    assert client.flush(timeout=2) is False
    stats = client.stats()
    assert stats["failed"] == 3 and stats["retries"] == 2 and stats["sent"] == 0
    assert len(server.requests) == 3


def test_resend_after_a_lost_answer_is_counted_once(
    server: FakeServer, make_client: Callable[..., Client]
) -> None:
    server.script.append("commit_then_timeout")
    client = make_client()
    log_many(client, 5)
    assert client.flush(timeout=2)
    assert server.sizes() == [5, 5], "the batch was sent again after the timeout"
    assert server.ids() == [f"r{i}" for i in range(5)], "stored once"
    stats = client.stats()
    assert stats["sent"] == 5 and stats["duplicates"] == 5 and stats["retries"] == 1


# --- permanent refusals -----------------------------------------------------------------


def test_422_drops_the_named_events_logs_them_and_delivers_the_rest(
    server: FakeServer, make_client: Callable[..., Client], caplog: pytest.LogCaptureFixture
) -> None:
    client = make_client(flush_interval=60)
    for rid in ["ok0", "bad1", "ok2", "bad3", "ok4"]:
        client.log_prediction(rid, 0.5, model="fraud")
    with caplog.at_level(logging.WARNING, logger="xebench.client"):
        assert client.flush(timeout=2) is False
    stats = client.stats()
    assert stats["failed"] == 2 and stats["sent"] == 3 and stats["retries"] == 0
    assert server.sizes() == [5, 3], "the bad events are never sent again"
    assert server.ids() == ["ok0", "ok2", "ok4"]
    assert stats["last_error"] == "HTTP 422: 2 of 5 events are invalid"
    [record] = [r for r in caplog.records if r.name == "xebench.client"]
    assert record.levelno == logging.WARNING
    message = record.getMessage()
    assert "refused 2 prediction events" in message
    assert "'bad1'" in message and "'bad3'" in message and "refused by the fake" in message


def test_422_naming_no_event_bisects_down_to_the_bad_one(
    server: FakeServer, make_client: Callable[..., Client]
) -> None:
    server.name_errors = False
    client = make_client(flush_interval=60)
    ids = [f"ok{i}" for i in range(7)] + ["bad7"]
    for rid in ids:
        client.log_prediction(rid, 0.5, model="fraud")
    assert client.flush(timeout=2) is False
    assert server.ids() == sorted(ids[:-1])
    assert client.stats()["failed"] == 1 and client.stats()["sent"] == 7
    assert server.received["bad7"] == 4, "8 -> 4 -> 2 -> 1: log2(n) + 1 tries"


def test_409_conflicts_are_isolated(server: FakeServer, make_client: Callable[..., Client]) -> None:
    def conflict(request: httpx.Request, events: list[dict[str, Any]]) -> httpx.Response:
        return httpx.Response(
            409,
            json={
                "detail": "1 event(s) reuse a stored (model, request_id) with a different payload",
                "conflicts": [{"index": 1, "model": "fraud", "request_id": "r1"}],
            },
        )

    server.script.append(conflict)
    client = make_client(flush_interval=60)
    log_many(client, 3)
    assert client.flush(timeout=2) is False
    assert server.ids() == ["r0", "r2"]
    assert client.stats()["failed"] == 1 and client.stats()["sent"] == 2


# 408 and 500 were retried before the client and `xebench ingest --url` shared one policy.
@pytest.mark.parametrize("status", [400, 401, 404, 408, 415, 500, 501])
def test_other_refusals_fail_the_batch_without_retrying(
    status: int, server: FakeServer, make_client: Callable[..., Client]
) -> None:
    server.script.append(httpx.Response(status, json={"detail": "no"}))
    client = make_client(flush_interval=60)
    log_many(client, 4)
    assert client.flush(timeout=2) is False
    stats = client.stats()
    assert stats["failed"] == 4 and stats["retries"] == 0 and len(server.requests) == 1
    assert stats["last_error"] == f"HTTP {status}: no"


def test_413_splits_the_batch_in_halves(
    server: FakeServer, make_client: Callable[..., Client]
) -> None:
    server.max_events = 3
    client = make_client(batch_size=10, flush_interval=60)
    log_many(client, 10)
    assert client.flush(timeout=2)
    assert server.sizes() == [10, 5, 2, 3, 5, 2, 3]
    assert server.ids() == sorted(f"r{i}" for i in range(10))
    stats = client.stats()
    assert stats["sent"] == 10 and stats["failed"] == 0 and stats["duplicates"] == 0


def test_413_for_a_single_event_fails_it(
    server: FakeServer, make_client: Callable[..., Client]
) -> None:
    server.max_events = 0
    client = make_client()
    client.log_label("huge", 1)
    assert client.flush(timeout=2) is False
    assert client.stats()["failed"] == 1


# --- the buffer, flush and close --------------------------------------------------------


def test_full_buffer_drops_counts_and_logs_once(
    server: FakeServer, make_client: Callable[..., Client], caplog: pytest.LogCaptureFixture
) -> None:
    client = make_client(max_buffer=5, max_block=0, batch_size=100, flush_interval=60)
    with caplog.at_level(logging.WARNING, logger="xebench.client"):
        log_many(client, 8)  # returns: the three that do not fit are dropped, not waited for
    stats = client.stats()
    assert stats["dropped"] == 3 and stats["queued"] == 5
    [record] = [r for r in caplog.records if r.name == "xebench.client"]
    assert "buffer is full" in record.getMessage()
    assert client.flush(timeout=2) is False, "events logged before the flush were dropped"
    assert server.ids() == [f"r{i}" for i in range(5)]


def test_max_block_waits_for_room(server: FakeServer, make_client: Callable[..., Client]) -> None:
    # max_block is long: the check that log_prediction is still waiting cannot come too late.
    gate = threading.Event()

    def slow(request: httpx.Request, events: list[dict[str, Any]]) -> httpx.Response:
        gate.wait(5)
        return server.ingest("predictions", events)

    server.script.append(slow)
    client = make_client(max_buffer=2, max_block=60, batch_size=2, flush_interval=60)
    log_many(client, 2, prefix="a")  # the worker takes these and waits on the gate
    assert wait_until(lambda: len(server.requests) == 1)
    log_many(client, 2, prefix="b")  # the buffer is full now
    blocked = threading.Thread(target=log_many, args=(client, 1, "c"))
    blocked.start()
    time.sleep(0.05)
    assert blocked.is_alive(), "log_prediction waits for room (max_block)"
    gate.set()
    blocked.join()
    assert client.flush(timeout=2)
    assert client.stats()["dropped"] == 0 and len(server.ids()) == 5


def test_flush_returns_after_acknowledgement(
    server: FakeServer, make_client: Callable[..., Client]
) -> None:
    gate = threading.Event()

    def held(request: httpx.Request, events: list[dict[str, Any]]) -> httpx.Response:
        gate.wait()  # the answer comes when the test says so
        return server.ingest("predictions", events)

    server.script.append(held)
    client = make_client(flush_interval=60)
    log_many(client, 3)
    assert client.flush(timeout=0.01) is False, "timed out before the answer"
    assert client.stats()["queued"] == 3
    gate.set()
    assert client.flush(timeout=20)
    assert server.ids() == ["r0", "r1", "r2"] and client.stats()["queued"] == 0


def test_close_flushes_and_stops(server: FakeServer) -> None:
    client = Client(URL, transport=httpx.MockTransport(server), flush_interval=60)
    log_many(client, 3)
    client.log_label("r0", 0)
    assert client.close() is True
    assert server.ids() == ["r0", "r1", "r2"] and server.ids("labels") == ["r0"]
    assert client._core.thread is not None and not client._core.thread.is_alive()
    client.log_label("r1", 1)  # after close: counted, not raised
    assert client.stats()["dropped"] == 1
    assert client.close() is False
    with pytest.raises(ClientError, match="closed"):
        client.send_labels([{"request_id": "r1", "label": 1}])


def test_close_gives_up_at_its_deadline(server: FakeServer) -> None:
    server.script.extend([httpx.Response(503)] * 1000)
    clock = FakeClock()
    client = Client(
        URL,
        transport=httpx.MockTransport(server),
        backoff_max=0.02,
        rng=FixedRandom(0.5),  # every wait 0.01 s
        clock=clock,
        sleep=clock.sleep,
    )
    log_many(client, 4)
    assert client.close(timeout=0.2) is False
    stats = client.stats()
    assert stats["dropped"] == 4 and stats["queued"] == 0 and stats["last_error"] == "HTTP 503"
    # Retried while the deadline allowed, then gave up instead of waiting past it.
    assert 15 <= len(server.requests) <= 21 and clock() < 0.2


def test_close_interrupts_a_long_backoff(server: FakeServer) -> None:
    server.script.append(httpx.Response(503, headers={"Retry-After": "60"}))
    clock = FakeClock()
    client = Client(URL, transport=httpx.MockTransport(server), flush_interval=0.01, clock=clock)
    client.log_label("r1", 1)
    clock.advance(0.01)  # the batch is due
    assert wait_until(lambda: client.stats()["retries"] == 1)  # now waiting out the 60 s
    # On the fake clock the 60 s never pass, nor the 5 s of close: only the interruption of
    # the backoff by close() (the retry would come after its deadline) lets close() return.
    assert client.close(timeout=5) is False
    assert client.stats()["dropped"] == 1 and len(server.requests) == 1
    assert client._core.thread is not None and not client._core.thread.is_alive()
    assert clock() == pytest.approx(0.01)


def test_unreferenced_client_is_collected_and_still_delivers(server: FakeServer) -> None:
    client = Client(URL, transport=httpx.MockTransport(server), flush_interval=60)
    client.log_label("r1", 1)
    ref, thread = weakref.ref(client), client._core.thread
    del client
    gc.collect()
    assert ref() is None, "the worker thread must not keep the client alive"
    assert wait_until(lambda: server.ids("labels") == ["r1"])
    assert thread is not None
    thread.join(2)
    assert not thread.is_alive(), "collecting the client closed it: the worker drained and quit"


def test_interpreter_exit_flushes() -> None:
    script = textwrap.dedent(
        """
        import json, httpx
        from xebench.client.sdk import Client

        def server(request):
            print("received", len(json.loads(request.content)), flush=True)
            return httpx.Response(200, json={"duplicates": 0})

        client = Client("http://x.test", transport=httpx.MockTransport(server),
                        flush_interval=60, gzip=False)
        for i in range(3):
            client.log_label(f"r{i}", 1)
        print("exiting", flush=True)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.split("\n")[:2] == ["exiting", "received 3"], result.stderr


# --- concurrency ------------------------------------------------------------------------


def test_many_threads_deliver_every_event_exactly_once(
    server: FakeServer, make_client: Callable[..., Client]
) -> None:
    # Every 5th request fails: before storing (503) or after (a lost answer).
    counter = iter(range(10**9))
    original = server.ingest

    def flaky(kind: str, events: list[dict[str, Any]]) -> httpx.Response:
        n = next(counter)
        if n % 10 == 3:
            return httpx.Response(503)
        response = original(kind, events)
        if n % 10 == 8:
            raise httpx.ReadTimeout("lost answer")
        return response

    server.ingest = flaky  # type: ignore[method-assign]
    client = make_client(batch_size=64, flush_interval=0.01)
    n_threads, per_thread = 8, 400

    def work(t: int) -> None:
        for i in range(per_thread):
            client.log_prediction(f"t{t}-{i}", 0.5, model="fraud")
            if i % 2:
                client.log_label(f"t{t}-{i}", 1, model="fraud")

    threads = [threading.Thread(target=work, args=(t,)) for t in range(n_threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert client.flush(timeout=10)
    n_predictions, n_labels = n_threads * per_thread, n_threads * per_thread // 2
    assert len(server.ids("predictions")) == n_predictions
    assert len(server.ids("labels")) == n_labels
    stats = client.stats()
    assert stats["sent"] == n_predictions + n_labels
    assert stats["failed"] == stats["dropped"] == stats["queued"] == 0
    assert stats["retries"] > 0 and stats["duplicates"] > 0


# --- validation on the caller's side ----------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"request_id": ""}, "request_id"),
        ({"request_id": None}, "request_id"),
        ({"probabilities": float("nan")}, "probabilities"),
        ({"probabilities": float("inf")}, "probabilities"),
        ({"probabilities": 1.5}, "probabilities"),
        ({"probabilities": True}, "probabilities"),
        ({"probabilities": "0.3"}, "probabilities"),
        ({"probabilities": [0.2, 0.2]}, "probabilities"),
        ({"probabilities": [1.0]}, "probabilities"),
        ({"probabilities": {"a": 0.5, "b": float("nan")}}, "probabilities"),
        # The server names the vector (/probabilities) when its length and the classes' differ.
        ({"probabilities": [0.5, 0.5], "classes": ["a"]}, "probabilities"),
        ({"probabilities": [0.5, 0.5], "classes": ["a", "a"]}, "classes"),
        ({"probabilities": {"a": 0.5, "b": 0.5}, "classes": ["a", "b"]}, "classes"),
        ({"model": ""}, "model"),
        ({"model": "my model"}, "model"),
        ({"version": 3}, "version"),
        ({"timestamp": datetime(2026, 1, 1)}, "timestamp"),
        ({"timestamp": "2026-01-01T00:00:00"}, "timestamp"),
        ({"timestamp": "yesterday"}, "timestamp"),
        ({"cohort": {"region": ["eu"]}}, "cohort"),
        ({"cohort": {"bad key": "x"}}, "cohort"),
        ({"features": {"x": float("nan")}}, "features"),
        ({"features": {"x": {"nested": 1}}}, "features"),
    ],
)
def test_log_prediction_refuses_what_the_server_would(
    kwargs: dict[str, Any], argument: str, make_client: Callable[..., Client]
) -> None:
    client = make_client()
    args = {"request_id": "r1", "probabilities": 0.5, "model": "fraud", **kwargs}
    with pytest.raises(ValueError, match=rf"^{argument}"):
        client.log_prediction(args.pop("request_id"), args.pop("probabilities"), **args)
    assert client.stats()["queued"] == 0


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"label": ""}, "label"),
        ({"label": None}, "label"),
        ({"label": 0.5}, "label"),
        ({"model": "a b"}, "model"),
        ({"timestamp": datetime(2026, 1, 1)}, "timestamp"),
    ],
)
def test_log_label_refuses_what_the_server_would(
    kwargs: dict[str, Any], argument: str, make_client: Callable[..., Client]
) -> None:
    client = make_client()
    args = {"request_id": "r1", "label": 1, **kwargs}
    with pytest.raises(ValueError, match=rf"^{argument}"):
        client.log_label(args.pop("request_id"), args.pop("label"), **args)


def test_events_are_normalised(server: FakeServer, make_client: Callable[..., Client]) -> None:
    client = make_client(flush_interval=60)
    paris = timezone(timedelta(hours=1))
    client.log_prediction(
        np.int64(7),
        np.array([0.1, 0.9], dtype=np.float32) / np.float32(1.0),
        model="fraud",
        classes=np.array([False, True]),
        cohort={"region": "eu", "tier": 2},
        features={"amount": np.float64(3.5), "n": np.int32(4), "missing": None},
        timestamp=datetime(2026, 1, 1, 12, tzinfo=paris),
    )
    client.log_prediction("r2", {True: 0.4, False: 0.6}, model="fraud")
    client.log_label("7", np.float64(1.0), model="fraud")
    before = datetime.now(UTC)
    client.log_label("r2", "1")
    assert client.flush(timeout=2)
    first, second = server.requests[0]["events"]
    assert first["request_id"] == "7" and first["classes"] == [False, True]
    assert first["probabilities"] == pytest.approx([0.1, 0.9], abs=1e-7)
    assert first["timestamp"] == "2026-01-01T12:00:00+01:00"
    assert first["features"] == {"amount": 3.5, "n": 4, "missing": None}
    assert first["version"] == "" and first["cohort"] == {"region": "eu", "tier": 2}
    assert second["probabilities"] == {"1": 0.4, "0": 0.6}
    assert "cohort" not in second and "features" not in second and "classes" not in second
    labels = next(r for r in server.requests if r["kind"] == "labels")["events"]
    assert labels[0]["label"] == 1
    stamp = datetime.fromisoformat(labels[1]["timestamp"])
    assert stamp.utcoffset() == timedelta(0) and stamp >= before - timedelta(seconds=1)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"batch_size": 0},
        {"max_buffer": 0},
        {"flush_interval": 0},
        {"max_retries": -1},
        {"timeout": float("nan")},
        {"max_block": -1},
    ],
)
def test_constructor_arguments_are_checked(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=rf"^{next(iter(kwargs))}"):
        Client(URL, **kwargs)
    with pytest.raises(ValueError, match=r"^url"):
        Client("xebench.test:8000")


# --- the synchronous helpers ------------------------------------------------------------


def test_send_returns_the_answer_and_retries(
    server: FakeServer, make_client: Callable[..., Client]
) -> None:
    server.script.append(httpx.Response(429, headers={"Retry-After": "1"}))
    delays: list[float] = []
    client = make_client(sleep=delays.append)
    answer = client.send_predictions(
        [
            {
                "request_id": "r1",
                "model": "fraud",
                "probabilities": np.float64(0.2),
                "timestamp": datetime(2026, 1, 1, tzinfo=UTC),
            }
        ]
    )
    assert answer == {"accepted": 1, "inserted": 1, "duplicates": 0}
    assert delays and delays[0] >= 1.0
    assert server.requests[-1]["events"][0]["timestamp"] == "2026-01-01T00:00:00+00:00"
    again = {"request_id": "r1", "model": "fraud", "probabilities": 0.2}
    again["timestamp"] = "2026-01-01T00:00:00+00:00"
    assert client.send_predictions([again])["duplicates"] == 1, "the same event, sent again"
    assert client.stats()["sent"] == 2 and client.stats()["retries"] == 1


def test_send_raises_client_error_on_refusal(
    server: FakeServer, make_client: Callable[..., Client]
) -> None:
    client = make_client()
    with pytest.raises(ClientError) as info:
        client.send_labels([{"request_id": "bad1", "label": 1}])
    assert info.value.status == 422
    assert info.value.body["errors"][0]["index"] == 0
    assert len(server.requests) == 1, "not retried"
    assert client.stats()["failed"] == 1


def test_send_gives_up_when_retries_run_out(
    server: FakeServer, make_client: Callable[..., Client]
) -> None:
    server.script.extend([httpx.Response(503)] * 5)
    client = make_client(max_retries=2)
    with pytest.raises(ClientError, match="gave up") as info:
        client.send_labels([{"request_id": "r1", "label": 1}])
    assert info.value.status == 503 and len(server.requests) == 3
    with pytest.raises(ValueError, match=r"^events"):
        client.send_labels([])
    naive = [{"request_id": "r1", "label": 1, "timestamp": datetime(2026, 1, 1)}]
    with pytest.raises(ValueError, match=r"^timestamp"):
        client.send_labels(naive)


# --- real HTTP on a loopback port -------------------------------------------------------


class _Handler(http.server.BaseHTTPRequestHandler):
    stored: dict[tuple[str, str], dict[str, Any]]
    lock = threading.Lock()

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers["Content-Length"]))
        if self.headers.get("Content-Encoding") == "gzip":
            raw = gzip.decompress(raw)
        if self.headers.get("Authorization") != "Bearer t0ken":
            self._answer(401, {"detail": "bad token"})
            return
        events = json.loads(raw)
        kind = self.path.rsplit("/", 1)[-1]
        with self.lock:
            new = [e for e in events if (kind, e["request_id"]) not in self.stored]
            self.stored.update({(kind, e["request_id"]): e for e in events})
        body = {"accepted": len(events), "inserted": len(new), "duplicates": len(events) - len(new)}
        self._answer(200, body)

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:  # keep the test output quiet
        pass


def test_real_http_server_on_loopback() -> None:
    stored: dict[tuple[str, str], dict[str, Any]] = {}
    handler = type("Handler", (_Handler,), {"stored": stored})
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as httpd:
        thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.01})
        thread.start()
        try:
            url = f"http://127.0.0.1:{httpd.server_address[1]}"
            with Client(url, "t0ken", batch_size=40, flush_interval=60) as client:
                for i in range(100):
                    client.log_prediction(f"r{i}", [0.1, 0.2, 0.7], model="lm", version="v1")
                    client.log_label(f"r{i}", 2, model="lm")
                assert client.flush(timeout=10)
                assert client.send_labels([{"request_id": "r0", "label": 2}])["duplicates"] == 1
            assert client.stats()["sent"] == 201
            with Client(url, "wrong", flush_interval=60) as client:
                client.log_label("x", 1)
                assert client.flush(timeout=10) is False
                assert client.stats()["last_error"] == "HTTP 401: bad token"
        finally:
            httpd.shutdown()
            thread.join()
    assert len(stored) == 200


def test_real_fastapi_app_under_uvicorn() -> None:
    fastapi = pytest.importorskip("fastapi")
    uvicorn = pytest.importorskip("uvicorn")
    stored: dict[str, dict[str, Any]] = {}
    calls = Counter[str]()
    app = fastapi.FastAPI()

    async def ingest(request: Any) -> Any:  # a plain Starlette endpoint: no signature magic
        kind = request.path_params["kind"]
        raw = await request.body()
        if request.headers.get("content-encoding") == "gzip":
            raw = gzip.decompress(raw)
        events = json.loads(raw)
        calls[kind] += 1
        if calls[kind] == 1:  # back-pressure once, like the real writer queue
            return fastapi.responses.JSONResponse(
                {"detail": "queue full"}, status_code=429, headers={"Retry-After": "0.05"}
            )
        new = [e for e in events if f"{kind}/{e['request_id']}" not in stored]
        stored.update({f"{kind}/{e['request_id']}": e for e in events})
        answer = {"accepted": len(events), "inserted": len(new), "duplicates": 0}
        return fastapi.responses.JSONResponse(answer)

    app.router.add_route("/v1/{kind}", ingest, methods=["POST"])
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, log_level="warning", lifespan="off")
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, kwargs={"sockets": [sock]})
    thread.start()
    try:
        assert wait_until(lambda: uv.started, timeout=10)
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        with Client(url, flush_interval=60) as client:
            for i in range(50):
                client.log_prediction(f"r{i}", 0.3, model="fraud", cohort={"region": "eu"})
            client.log_label("r1", 0)
            assert client.flush(timeout=10)
            assert client.stats()["retries"] == 2
    finally:
        uv.should_exit = True
        thread.join(10)
        sock.close()
    assert len(stored) == 51
