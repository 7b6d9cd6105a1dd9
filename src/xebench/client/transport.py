"""The one HTTP transport: ``xb.Client`` and ``xebench ingest --url`` both send through it.

A :class:`Transport` wraps an ``httpx.Client`` for one server URL (a path
prefix is kept): it sends a body, gzipped when asked and large enough
(:data:`GZIP_MIN_BYTES`), with ``Authorization: Bearer TOKEN`` when a token
is given and ``User-Agent: xebench-python/VERSION``, and repeats it under one
retry policy, :class:`RetryPolicy`:

- **What is retried**: transport errors (connection refused or reset,
  timeouts) and the answers 429, 502, 503 and 504 (:data:`RETRY_STATUSES`):
  back-pressure and a proxy or server that is restarting. Every other answer
  is final for that request, in particular every other 4xx (the request is
  wrong and will stay wrong) and 500 / 501 (a bug, not a passing state).
  Resending is safe because the server counts an identical event once.
- **How long to wait**: "full jitter" exponential backoff, the n-th retry
  (n = 0, 1, ...) waits a uniformly random time in
  ``[0, min(backoff_max, backoff_base * 2**n)]``, and at least the server's
  ``Retry-After`` (delta-seconds or an HTTP date), which is believed up to
  ``retry_after_max`` seconds (a server that asks for an hour gets a minute).
- **When to stop**: after ``max_retries`` retries (None: no limit), or when
  the next attempt could not finish before the caller's deadline (each
  attempt's timeout is shortened to the time left).

The waiting (``sleep``), the jitter (``rng``), the deadline clock (``clock``,
monotonic seconds) and the wall clock of HTTP dates (``now``, seconds since
the epoch) are injectable, so tests need neither time nor luck.

Example:
    >>> import httpx
    >>> answers = [httpx.Response(503, headers={"Retry-After": "2"}),
    ...            httpx.Response(200, json={"inserted": 1})]
    >>> slept = []
    >>> transport = Transport("http://xebench.test", token="t0ken",
    ...                       transport=httpx.MockTransport(lambda r: answers.pop(0)),
    ...                       sleep=slept.append)
    >>> outcome = transport.send("POST", "/v1/labels", b"[]")
    >>> outcome.state, outcome.body, slept
    ('ok', {'inserted': 1}, [2.0])
    >>> transport.close()
"""

from __future__ import annotations

import email.utils
import gzip as gzip_module
import json
import math
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC
from typing import Any, Literal

import httpx

from .._version import __version__

__all__ = [
    "GZIP_MIN_BYTES",
    "RETRY_STATUSES",
    "Failure",
    "Outcome",
    "RetryPolicy",
    "Transport",
    "answer_of",
    "named_events",
    "parse_retry_after",
    "summary",
]

#: Answers worth repeating as they are: back-pressure, or a proxy or server restarting.
RETRY_STATUSES = frozenset({429, 502, 503, 504})
#: Bodies at least this large are gzipped: below it compression costs more than it saves.
GZIP_MIN_BYTES = 1024


@dataclass(frozen=True)
class RetryPolicy:
    """Which failures are retried, how long to wait before each retry, and how many.

    Attributes:
        max_retries: retries of one request before giving up; None: until the deadline.
        backoff_base, backoff_max: the n-th retry waits a uniformly random time in
            ``[0, min(backoff_max, backoff_base * 2**n)]`` seconds ("full jitter").
        retry_after_max: the longest ``Retry-After`` believed, in seconds.

    Example:
        >>> policy = RetryPolicy(backoff_base=0.5, backoff_max=4.0)
        >>> [policy.retryable(s) for s in (429, 500, 503, 408)]
        [True, False, True, False]
        >>> class Top(random.Random):
        ...     def random(self): return 1.0
        >>> [policy.delay(n, None, Top()) for n in range(5)]
        [0.5, 1.0, 2.0, 4.0, 4.0]
        >>> policy.delay(0, 3.0, Top()), policy.delay(0, 3600.0, Top())
        (3.0, 60.0)
    """

    max_retries: int | None = None
    backoff_base: float = 0.1
    backoff_max: float = 30.0
    retry_after_max: float = 60.0

    @staticmethod
    def retryable(status: int) -> bool:
        """Whether an answer with this status is worth sending again (:data:`RETRY_STATUSES`)."""
        return status in RETRY_STATUSES

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        """Seconds to wait before retry number ``attempt`` (0-based)."""
        cap = min(self.backoff_max, self.backoff_base * 2.0 ** min(attempt, 64))
        delay = rng.random() * cap
        if retry_after is None:
            return delay
        return max(delay, min(retry_after, self.retry_after_max))


def parse_retry_after(response: httpx.Response, now: float) -> float | None:
    """The ``Retry-After`` header in seconds from ``now`` (epoch seconds), or None.

    Both forms of RFC 9110 are read: delta-seconds and an HTTP date (a date in
    the past means 0). A missing or unreadable header is None.

    Example:
        >>> date = {"Retry-After": "Thu, 01 Jan 2026 00:00:30 GMT"}
        >>> parse_retry_after(httpx.Response(503, headers=date), now=1767225600.0)
        30.0
        >>> parse_retry_after(httpx.Response(429, headers={"Retry-After": "1.5"}), now=0.0)
        1.5
        >>> parse_retry_after(httpx.Response(429, headers={"Retry-After": "soon"}), now=0.0)
    """
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:  # "-0000": UTC by RFC 5322
            when = when.replace(tzinfo=UTC)
        seconds = when.timestamp() - now
    return max(0.0, seconds) if math.isfinite(seconds) else None


def answer_of(response: httpx.Response) -> Any:
    """An answer's JSON, else its text (at most 2,000 characters), else None.

    Example:
        >>> answer_of(httpx.Response(422, json={"detail": "bad"})), answer_of(httpx.Response(502))
        ({'detail': 'bad'}, None)
    """
    try:
        return response.json()
    except ValueError:
        return response.text[:2000] or None


def summary(status: int | None, body: Any) -> str:
    """A one-line summary of an answer, for logs and exceptions.

    Example:
        >>> summary(422, {"detail": "1 of 2 events is invalid"}), summary(None, None)
        ('HTTP 422: 1 of 2 events is invalid', 'no answer')
    """
    if isinstance(body, Mapping) and body.get("detail") is not None:
        text = body["detail"] if isinstance(body["detail"], str) else json.dumps(body["detail"])
    else:
        text = body if isinstance(body, str) else ""
    text = " ".join(str(text).split())[:300]
    prefix = f"HTTP {status}" if status is not None else "no answer"
    return f"{prefix}: {text}" if text else prefix


@dataclass
class Outcome:
    """How one request (after its retries) ended.

    Attributes:
        state: ``"ok"`` (a 2xx answer), ``"refused"`` (an answer that is not
            retried) or ``"gave_up"`` (retries exhausted, or the deadline came first).
        status, body: the last answer's status and :func:`answer_of` body, if any.
        error: the last retryable failure as text ("" if there was none).
        timed_out: whether the deadline (rather than ``max_retries``) ended the retries.
        response: the last answer, if any.
        exception: the last transport error, if the last attempt got no answer.

    Example:
        >>> Outcome("refused", 404, {"detail": "no such route"}).state
        'refused'
    """

    state: Literal["ok", "refused", "gave_up"]
    status: int | None = None
    body: Any = None
    error: str = ""
    timed_out: bool = False
    response: httpx.Response | None = None
    exception: httpx.TransportError | None = None


@dataclass(frozen=True)
class Failure:
    """One failed attempt that the policy retries: what went wrong and what comes next.

    ``delay`` is the wait before the next attempt, or None when none follows.

    Example:
        >>> Failure(0, 503, "HTTP 503", 0.25)
        Failure(attempt=0, status=503, error='HTTP 503', delay=0.25)
    """

    attempt: int
    status: int | None
    error: str
    delay: float | None


def _never() -> float | None:
    return None


class Transport:
    """POST (or PUT) bodies to one server, retried under one :class:`RetryPolicy`.

    Args:
        url: the server (``http://host:port``, a path prefix is kept).
        token: sent as ``Authorization: Bearer TOKEN``.
        timeout: seconds for each attempt; ``connect_timeout`` for connecting (default the same).
        policy: the retry policy.
        gzip: gzip bodies of at least :data:`GZIP_MIN_BYTES`.
        transport: an ``httpx`` transport (``httpx.MockTransport`` in tests), or
            ``client``: an ``httpx.Client`` to use (and not close).
        sleep, rng, clock, now: waiting, jitter, the deadline clock (monotonic
            seconds) and the wall clock (epoch seconds) of ``Retry-After`` dates.

    Example:
        >>> import httpx
        >>> seen = []
        >>> def server(request):
        ...     seen.append((request.url.path, request.headers["content-encoding"]))
        ...     return httpx.Response(404, json={"detail": "no"})
        >>> with Transport("http://xebench.test/prefix/",
        ...                transport=httpx.MockTransport(server)) as transport:
        ...     outcome = transport.send("POST", "/v1/predictions", b"[" + b" " * 2000 + b"]")
        >>> outcome.state, outcome.status, seen
        ('refused', 404, [('/prefix/v1/predictions', 'gzip')])
    """

    def __init__(
        self,
        url: str,
        token: str | None = None,
        *,
        timeout: float = 10.0,
        connect_timeout: float | None = None,
        policy: RetryPolicy = RetryPolicy(),
        gzip: bool = True,
        transport: httpx.BaseTransport | None = None,
        client: httpx.Client | None = None,
        sleep: Callable[[float], object] = time.sleep,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.url = url.rstrip("/")
        self.policy, self.gzip = policy, gzip
        self.timeout = timeout
        self.connect_timeout = timeout if connect_timeout is None else connect_timeout
        self.sleep, self.rng = sleep, rng or random.Random()
        self.clock, self.now = clock, now
        self.headers = {"User-Agent": f"xebench-python/{__version__}", "Accept": "application/json"}
        if token:
            self.headers["Authorization"] = f"Bearer {token}"
        self._own = client is None
        self.http = client or httpx.Client(transport=transport)

    def __enter__(self) -> Transport:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool (unless the ``httpx.Client`` was given)."""
        if self._own:
            self.http.close()

    def _timeout(self, limit: float | None) -> httpx.Timeout:
        if limit is None:
            return httpx.Timeout(self.timeout, connect=self.connect_timeout)
        return httpx.Timeout(min(self.timeout, limit), connect=min(self.connect_timeout, limit))

    def get(self, path: str) -> httpx.Response:
        """One GET, not retried (raises ``httpx.HTTPError`` when nothing answers)."""
        return self.http.get(self.url + path, headers=self.headers, timeout=self._timeout(None))

    def send(
        self,
        method: str,
        path: str,
        body: bytes,
        *,
        headers: Mapping[str, str] | None = None,
        content_type: str = "application/json",
        deadline: Callable[[], float | None] = _never,
        wait: Callable[[float], bool] | None = None,
        on_failure: Callable[[Failure], None] | None = None,
        compress: bool = True,
    ) -> Outcome:
        """Send ``body`` until it is answered for good, retries run out or the deadline passes.

        ``deadline()`` is read before every attempt (a caller may set one later:
        the client's close); None means none. ``wait(delay)`` replaces
        ``sleep`` and returns False to stop waiting (and give up, timed out).
        ``on_failure`` hears of every retryable failure, retried or not.
        ``compress`` False sends the body as it is even when the transport gzips.
        """
        sent = {"Content-Type": content_type, **self.headers, **(headers or {})}
        if compress and self.gzip and len(body) >= GZIP_MIN_BYTES:
            body = gzip_module.compress(body, compresslevel=5, mtime=0)
            sent["Content-Encoding"] = "gzip"
        attempt, error = 0, ""
        while True:
            limit = deadline()
            left = None if limit is None else limit - self.clock()
            if left is not None and left <= 0:
                return Outcome("gave_up", error=error, timed_out=True)
            retry_after, response, exception = None, None, None
            try:
                response = self.http.request(
                    method, self.url + path, content=body, headers=sent, timeout=self._timeout(left)
                )
            except httpx.TransportError as caught:  # connection refused/reset, timeouts
                exception = caught
                error = f"{type(caught).__name__}: {caught}" if str(caught) else repr(caught)
                status, answer = None, None
            else:
                status, answer = response.status_code, answer_of(response)
                if response.is_success:
                    return Outcome("ok", status, answer, response=response)
                if not self.policy.retryable(status):
                    return Outcome("refused", status, answer, response=response)
                error = summary(status, answer)
                retry_after = parse_retry_after(response, self.now())
            given_up = Outcome("gave_up", status, answer, error, False, response, exception)
            retries = self.policy.max_retries
            delay = self.policy.delay(attempt, retry_after, self.rng)
            if retries is not None and attempt >= retries:
                delay_or_none = None
            else:
                limit = deadline()
                given_up.timed_out = limit is not None and self.clock() + delay >= limit
                delay_or_none = None if given_up.timed_out else delay
            if on_failure is not None:
                on_failure(Failure(attempt, status, error, delay_or_none))
            if delay_or_none is None:
                return given_up
            if wait is not None:
                if not wait(delay):
                    given_up.timed_out = True
                    return given_up
            else:
                self.sleep(delay)
            attempt += 1


def named_events(status: int, body: Any, events: Sequence[Mapping[str, Any]]) -> dict[int, str]:
    """The events of a batch that a 422 or 409 answer names, with the server's message.

    A 422 names them by ``errors[].index``; a 409 by ``conflicts[]`` index,
    (model, request_id) or request id. Events are numbered within the batch.

    Example:
        >>> events = [{"request_id": "a"}, {"request_id": "b"}]
        >>> named_events(422, {"errors": [{"index": 1, "field": "/1/label",
        ...                                "message": "missing"}]}, events)
        {1: "[1] request_id 'b': /1/label missing"}
        >>> named_events(409, {"conflicts": ["a"]}, events)
        {0: "[0] request_id 'a': conflict"}
    """
    if not isinstance(body, Mapping):
        return {}
    entries = body.get("errors" if status == 422 else "conflicts")
    if not isinstance(entries, list):
        return {}
    by_key = {(e.get("model"), e.get("request_id")): i for i, e in enumerate(events)}
    by_id: dict[Any, list[int]] = {}
    for i, e in enumerate(events):
        by_id.setdefault(e.get("request_id"), []).append(i)
    named: dict[int, str] = {}
    for entry in entries:
        if isinstance(entry, Mapping):
            index = entry.get("index")
            text = " ".join(
                str(entry[key]) for key in ("field", "message", "detail") if entry.get(key)
            )
            if isinstance(index, int) and not isinstance(index, bool):
                hits = [index] if 0 <= index < len(events) else []
            elif "model" in entry and (entry.get("model"), entry.get("request_id")) in by_key:
                hits = [by_key[(entry.get("model"), entry.get("request_id"))]]
            else:
                hits = by_id.get(entry.get("request_id"), [])
        else:  # a bare request id
            hits, text = by_id.get(entry, []) if isinstance(entry, str) else [], ""
        for i in hits:
            request_id = events[i].get("request_id")
            named[i] = f"[{i}] request_id {request_id!r}: {text or 'conflict'}"
    return named
