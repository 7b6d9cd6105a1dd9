"""The one retry policy (xebench.client.transport), on a scripted server and a fake clock."""

from __future__ import annotations

import gzip
import random
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

import httpx
import pytest

from xebench import __version__
from xebench.client.transport import RETRY_STATUSES, Failure, RetryPolicy, Transport

URL = "http://xebench.test"


class Top(random.Random):
    """Full jitter drawn at its top: every wait is its cap."""

    def random(self) -> float:
        return 1.0


class Script:
    """Answers (or raises) one item per request; records what came in."""

    def __init__(self, *items: httpx.Response | Exception) -> None:
        self.items = list(items)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        item = self.items.pop(0) if self.items else httpx.Response(200, json={"ok": True})
        if isinstance(item, Exception):
            raise item
        return item


@pytest.fixture
def slept() -> list[float]:
    return []


@pytest.fixture
def make(slept: list[float]) -> Iterator[Callable[..., Transport]]:
    made: list[Transport] = []

    def build(script: Script, **kwargs: Any) -> Transport:
        kwargs.setdefault("sleep", slept.append)
        kwargs.setdefault("rng", Top())
        transport = Transport(URL, transport=httpx.MockTransport(script), **kwargs)
        made.append(transport)
        return transport

    yield build
    for transport in made:
        transport.close()


@pytest.mark.parametrize("status", sorted(RETRY_STATUSES))
def test_the_retried_statuses_are_retried(
    status: int, make: Callable[..., Transport], slept: list[float]
) -> None:
    script = Script(httpx.Response(status), httpx.Response(status))
    outcome = make(script).send("POST", "/v1/labels", b"[]")
    assert (outcome.state, outcome.body, len(script.requests)) == ("ok", {"ok": True}, 3)
    assert slept == [0.1, 0.2]  # backoff_base 0.1, doubling


@pytest.mark.parametrize("status", [400, 401, 403, 404, 408, 409, 413, 415, 422, 500, 501, 505])
def test_every_other_answer_is_final(
    status: int, make: Callable[..., Transport], slept: list[float]
) -> None:
    script = Script(httpx.Response(status, json={"detail": "no"}))
    outcome = make(script).send("POST", "/v1/labels", b"[]")
    assert (outcome.state, outcome.status, outcome.body) == ("refused", status, {"detail": "no"})
    assert len(script.requests) == 1 and slept == []


def test_transport_errors_are_retried_then_given_up(
    make: Callable[..., Transport], slept: list[float]
) -> None:
    request = httpx.Request("POST", URL)
    errors = [httpx.ConnectError("refused", request=request) for _ in range(3)]
    failures: list[Failure] = []
    transport = make(Script(*errors), policy=RetryPolicy(max_retries=2, backoff_max=0.15))
    outcome = transport.send("POST", "/v1/labels", b"[]", on_failure=failures.append)
    assert outcome.state == "gave_up" and not outcome.timed_out
    assert outcome.status is None and outcome.exception is errors[-1]
    assert outcome.error == "ConnectError: refused"
    assert slept == [0.1, 0.15]  # the second wait is capped at backoff_max
    assert [f.delay for f in failures] == [0.1, 0.15, None]  # None: no retry follows


def test_retry_after_seconds_and_http_dates_are_honoured(
    make: Callable[..., Transport], slept: list[float]
) -> None:
    now = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC).timestamp()
    date = format_datetime(datetime(2026, 3, 1, 12, 0, 7, tzinfo=UTC), usegmt=True)
    script = Script(
        httpx.Response(429, headers={"Retry-After": "2.5"}),
        httpx.Response(503, headers={"Retry-After": date}),
        httpx.Response(503, headers={"Retry-After": "86400"}),
        httpx.Response(503, headers={"Retry-After": "Thu, 01 Jan 2026 00:00:00 GMT"}),
    )
    outcome = make(script, rng=random.Random(0), now=lambda: now).send("PUT", "/x", b"")
    assert outcome.state == "ok"
    # At least Retry-After (jitter is at most 0.1 * 2**n here); 86400 s is believed as 60.
    assert slept[0] == 2.5 and slept[1] == 7.0 and slept[2] == 60.0
    assert 0.0 <= slept[3] <= 0.8, "a date in the past: only the jitter"


def test_the_deadline_stops_retries_and_shortens_each_attempt(slept: list[float]) -> None:
    clock = [100.0]
    timeouts: list[float | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        timeouts.append(request.extensions["timeout"]["read"])
        clock[0] += 0.5  # each attempt takes half a second
        return httpx.Response(503)

    def sleep(delay: float) -> None:
        slept.append(delay)
        clock[0] += delay

    transport = Transport(
        URL, transport=httpx.MockTransport(handler), timeout=10.0, rng=Top(),
        sleep=sleep, clock=lambda: clock[0],
    )  # fmt: skip
    outcome = transport.send("POST", "/v1/labels", b"[]", deadline=lambda: 102.0)
    transport.close()
    # 100.0 try (0.5 s), wait 0.1; 100.6 try, wait 0.2; 101.3 try: 101.8 + 0.4 >= 102: give up.
    assert outcome.state == "gave_up" and outcome.timed_out and outcome.status == 503
    assert slept == [0.1, 0.2]
    assert timeouts == pytest.approx([2.0, 1.4, 0.7])


def test_a_wait_hook_can_stop_the_retries(make: Callable[..., Transport]) -> None:
    outcome = make(Script(httpx.Response(503))).send(
        "POST", "/v1/labels", b"[]", wait=lambda delay: False
    )
    assert outcome.state == "gave_up" and outcome.timed_out


def test_headers_gzip_and_the_url_prefix() -> None:
    script = Script()
    with Transport(f"{URL}/prefix/", "t0ken", transport=httpx.MockTransport(script)) as transport:
        transport.send("POST", "/v1/predictions", b"[" + b"0," * 1000 + b"0]")
        transport.send("POST", "/v1/labels", b"[]")
        transport.send("PUT", "/v1/references/m", b"x" * 2000, compress=False)
    big, small, upload = script.requests
    assert [r.url.path for r in script.requests] == [
        "/prefix/v1/predictions", "/prefix/v1/labels", "/prefix/v1/references/m",
    ]  # fmt: skip
    assert gzip.decompress(big.content) == b"[" + b"0," * 1000 + b"0]"
    assert big.headers["content-encoding"] == "gzip"
    assert "content-encoding" not in small.headers and "content-encoding" not in upload.headers
    for request in script.requests:
        assert request.headers["authorization"] == "Bearer t0ken"
        assert request.headers["user-agent"] == f"xebench-python/{__version__}"
        assert request.headers["content-type"] == "application/json"
