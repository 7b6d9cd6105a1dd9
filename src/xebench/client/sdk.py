"""Sending prediction and label events to a running ``xebench serve``.

:class:`Client` is made for the request path of a model server: ``log_prediction``
and ``log_label`` check the event, put it on a bounded in-memory buffer and
return; one background thread per client batches the events per endpoint and
POSTs them (``/v1/predictions``, ``/v1/labels``), retrying with exponential
backoff and full jitter until the server acknowledges them::

    client = Client("http://127.0.0.1:8000", token=os.environ["XEBENCH_TOKEN"])
    client.log_prediction(request_id, p, model="fraud", version="v7")
    ...                                     # later, perhaps much later
    client.log_label(request_id, is_fraud, model="fraud")

Delivery rules, in short:

- A 200 answer means the batch is durably committed. Re-sending identical
  events is idempotent on the server (counted as ``duplicates``), so a batch
  whose answer was lost (timeout, dropped connection) is simply sent again:
  delivery is at least once on the wire and exactly once in the store.
- Connection errors, timeouts, 408, 429 and 5xx are retried, waiting at least
  the server's ``Retry-After``. Other answers are permanent for that batch:
  413 splits it in halves; 422 drops exactly the events the server names
  (``errors[].index``) and resends the rest; 409 drops the conflicting events
  when the answer names them, otherwise both 422 and 409 bisect the batch down
  to the offending events; anything else (401, 404, 415...) fails the batch.
- Nothing is lost silently: an event is either acknowledged (``sent``),
  refused by the server (``failed``) or never delivered because the buffer
  was full or :meth:`Client.close` ran out of time (``dropped``); see
  :meth:`Client.stats`. Failures and drops are logged on the
  ``xebench.client`` logger at WARNING, at most one line per kind of problem
  every 10 seconds, with a count of what was not shown.

Scripts that would rather wait for each answer use :meth:`Client.send_predictions`
and :meth:`Client.send_labels`, which POST at once and raise :class:`ClientError`.

Example:
    >>> import httpx, json
    >>> received = []
    >>> def server(request):  # a stand-in for xebench serve
    ...     events = json.loads(request.content)
    ...     received.extend(e["request_id"] for e in events)
    ...     return httpx.Response(200, json={"accepted": len(events),
    ...                                      "inserted": len(events), "duplicates": 0})
    >>> with Client("http://xebench.test", transport=httpx.MockTransport(server)) as client:
    ...     client.log_prediction("req-1", 0.9, model="fraud")
    ...     client.log_label("req-1", 1, model="fraud")
    ...     client.flush()
    True
    >>> sorted(received), client.stats()["sent"]
    (['req-1', 'req-1'], 2)
"""

from __future__ import annotations

import atexit
import email.utils
import gzip as gzip_module
import json
import logging
import math
import os
import random
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

import httpx

from .._version import __version__
from ..errors import DataError, InvalidInputError, XebenchError
from ..ingest.events import EventKind, check_event, label_text

__all__ = ["Client", "ClientError"]

logger = logging.getLogger("xebench.client")

Kind = EventKind
_KINDS: tuple[Kind, ...] = ("predictions", "labels")

#: Bodies at least this large are gzipped: below it compression costs more than it saves.
GZIP_MIN_BYTES = 1024
#: At most one log line per kind of problem in this many seconds (plus a count of the rest).
LOG_INTERVAL = 10.0


def _retryable(status: int) -> bool:
    """Answers worth repeating as they are: the server (or a proxy) may answer otherwise later."""
    return status in (408, 429) or status >= 500


class ClientError(XebenchError):
    """The server refused a request for good, or it could not be delivered in time.

    Raised by :meth:`Client.send_predictions` and :meth:`Client.send_labels`
    (the background delivery of ``log_*`` never raises; it counts and logs).

    Attributes:
        status: the HTTP status of the refusal, or of the last answer when the
            retries ran out (429, 503...), or ``None`` when no answer came at all.
        body: the answer's JSON (``{"detail", "errors"}`` for a 422), its text
            when it was not JSON, or ``None``.

    Example:
        >>> err = ClientError("HTTP 422: 1 of 1 events is invalid", status=422,
        ...                   body={"detail": "1 of 1 events is invalid", "errors": []})
        >>> err.status, str(err)
        (422, 'HTTP 422: 1 of 1 events is invalid')
    """

    def __init__(self, message: str, *, status: int | None = None, body: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = body


# --- event construction ----------------------------------------------------------------
# Whether the server would accept an event is decided by xebench.ingest.events.check_event, the
# server's own rules, so that a caller's mistake raises at once instead of failing, later and
# in the background, a whole batch of otherwise good events. Here only the shaping into JSON.


def _plain(value: Any) -> Any:
    """NumPy scalars and arrays as Python values (they are common, and not JSON-serialisable)."""
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        return value.tolist()
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _json(argument: str, value: Any, *, labels: bool = False) -> Any:
    """``value`` as the JSON an event carries, for
    :func:`~xebench.ingest.events.check_event` to judge.

    NumPy values become Python ones, tuples lists, mappings dicts whose keys
    are text (a label key as the server stores it: ``True`` -> ``"1"``). With
    ``labels``, an integral float is the integer class (``1.0`` from a pandas
    column means the class ``1``). What JSON cannot carry at all is refused.

    Example:
        >>> _json("probabilities", {True: 0.25, 0: 0.75}), _json("classes", (1.0, "b"), labels=True)
        ({'1': 0.25, '0': 0.75}, [1, 'b'])
        >>> _json("classes", {"a", "b"}, labels=True)
        Traceback (most recent call last):
        ...
        xebench.errors.InvalidInputError: classes: a set cannot be sent as JSON
    """
    value = _plain(value)
    if labels and isinstance(value, float) and value.is_integer():
        return int(value)
    if value is None or isinstance(value, (str, int, float)):
        return value
    if isinstance(value, (list, tuple)):
        return [_json(argument, item, labels=labels) for item in value]
    if isinstance(value, Mapping):
        return {_json_key(argument, key): _json(argument, item) for key, item in value.items()}
    raise InvalidInputError(argument, f"a {type(value).__name__} cannot be sent as JSON")


def _json_key(argument: str, key: Any) -> str:
    key = _json(argument, key, labels=True)
    if isinstance(key, (str, int)):
        return label_text(key)
    raise InvalidInputError(argument, "keys must be strings, integers or booleans", value=key)


def _request_id(value: Any) -> Any:
    """An integer request id goes as its decimal text; the server wants a string."""
    value = _json("request_id", value)
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


def _timestamp(value: Any) -> Any:
    """A datetime as RFC 3339 text, refused without a timezone; now (UTC) when None.

    Text goes as it is: :func:`~xebench.ingest.events.check_event` applies the server's rule to it.
    """
    value = _plain(value)  # numpy.datetime64 -> datetime
    if value is None:
        return datetime.now(UTC).isoformat()
    if not isinstance(value, datetime):
        return _json("timestamp", value)
    if value.utcoffset() is None:
        raise InvalidInputError(
            "timestamp",
            "has no timezone: pass an aware datetime (e.g. datetime.now(UTC)) or add the offset",
            value=value.isoformat(),
        )
    return value.isoformat()


def _json_default(value: Any) -> Any:
    # For send_*: events built by hand may hold datetimes or NumPy values.
    if isinstance(value, datetime):
        return _timestamp(value)
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


# --- delivery ----------------------------------------------------------------------------


def _retry_after(response: httpx.Response) -> float | None:
    """The ``Retry-After`` header in seconds (delta-seconds or an HTTP date), if any."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    return max(0.0, seconds) if math.isfinite(seconds) else None


def _answer(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text[:2000] or None


def _detail(status: int | None, body: Any) -> str:
    """A one-line summary of an answer, for logs and exceptions."""
    if isinstance(body, Mapping) and body.get("detail") is not None:
        text = body["detail"] if isinstance(body["detail"], str) else json.dumps(body["detail"])
    else:
        text = body if isinstance(body, str) else ""
    text = " ".join(str(text).split())[:300]
    prefix = f"HTTP {status}" if status is not None else "no answer"
    return f"{prefix}: {text}" if text else prefix


@dataclass
class _Outcome:
    """How one POST (after its retries) ended."""

    # "ok": acknowledged; "refused": a permanent answer; "gave_up": retries exhausted or the
    # close deadline passed before an answer came.
    state: Literal["ok", "refused", "gave_up"]
    status: int | None = None
    body: Any = None
    error: str = ""
    # Whether the deadline of close() (rather than max_retries) ended the retries.
    timed_out: bool = False


class _Throttle:
    """At most one log line per ``interval`` seconds; counts what it held back."""

    def __init__(self, interval: float = LOG_INTERVAL) -> None:
        self._interval = interval
        self._next = 0.0
        self._held = 0
        self._lock = threading.Lock()

    def __call__(self, level: int, message: str, *args: Any) -> None:
        with self._lock:
            now = time.monotonic()
            if now < self._next:
                self._held += 1
                return
            held, self._held, self._next = self._held, 0, now + self._interval
        if held:
            message += " (%d similar messages suppressed)"
            args = (*args, held)
        logger.log(level, message, *args)


# Cores of live clients: closed (flushed) at interpreter exit. The set holds the core, the
# state shared with the worker thread, not the Client, so an unreferenced Client can still be
# collected; its weakref.finalize then starts the close and the worker drains on its own.
_LIVE: set[_Core] = set()
_LIVE_LOCK = threading.Lock()


def _close_all_at_exit() -> None:
    with _LIVE_LOCK:
        cores = list(_LIVE)
    for core in cores:  # start every close first, so that clients drain in parallel
        core.begin_close(core.close_timeout)
    for core in cores:
        core.wait_closed()


atexit.register(_close_all_at_exit)


class _Core:
    """Buffers, counters, the HTTP client and the worker loop of one :class:`Client`."""

    def __init__(
        self,
        url: str,
        token: str | None,
        *,
        batch_size: int,
        flush_interval: float,
        max_buffer: int,
        max_block: float,
        timeout: float,
        max_retries: int | None,
        backoff_base: float,
        backoff_max: float,
        close_timeout: float,
        transport: httpx.BaseTransport | None,
        gzip: bool,
        rng: random.Random | None,
        sleep: Callable[[float], object] | None,
    ) -> None:
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.max_buffer = max_buffer
        self.max_block = max_block
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.close_timeout = close_timeout
        self.gzip = gzip
        self.rng = rng or random.Random()
        self.sleep_hook = sleep
        headers = {"User-Agent": f"xebench-python/{__version__}", "Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.http = httpx.Client(
            base_url=url, headers=headers, timeout=timeout, transport=transport
        )

        # One lock guards everything below; the conditions say who is waiting for what.
        self.lock = threading.Lock()
        self.work = threading.Condition(self.lock)  # the worker: events or a deadline
        self.space = threading.Condition(self.lock)  # log_* blocked on a full buffer
        self.settled_cond = threading.Condition(self.lock)  # flush() and close()
        self.wake = threading.Condition(self.lock)  # a retry backoff, woken by close()
        # Per kind, FIFO: (sequence number, monotonic arrival time, event).
        self.buffers: dict[Kind, deque[tuple[int, float, dict[str, Any]]]] = {
            kind: deque() for kind in _KINDS
        }
        self.buffered = 0
        self.inflight = 0
        self.seq = 0  # every log_* call that passed validation, delivered or not
        self.logged = dict.fromkeys(_KINDS, 0)  # events that entered the buffer
        # Events whose fate is known. Batches leave the buffer in order and are finished one
        # at a time, so "settled >= logged at the time of the call" means all earlier ones are.
        self.settled = dict.fromkeys(_KINDS, 0)
        self.first_lost: int | None = None  # smallest sequence number dropped or failed
        self.flush_waiters = 0
        self.closing = False
        self.deadline: float | None = None
        self.stopped = False
        self.thread: threading.Thread | None = None
        self.turn = 0  # alternates the endpoints so neither starves the other
        self.counts = {"sent": 0, "duplicates": 0, "failed": 0, "dropped": 0, "retries": 0}
        self.last_error: str | None = None
        self.log_drop = _Throttle()
        self.log_reject = _Throttle()
        self.log_retry = _Throttle()

    # --- the caller's side -----------------------------------------------------------

    def put(self, kind: Kind, event: dict[str, Any]) -> None:
        with self.lock:
            self.seq += 1
            seq = self.seq
            if not self.closing and self.buffered >= self.max_buffer and self.max_block > 0:
                self.space.wait_for(
                    lambda: self.closing or self.buffered < self.max_buffer, self.max_block
                )
            if self.closing or self.buffered >= self.max_buffer:
                self._lose(seq, 1, "dropped")
                reason = "the client is closed" if self.closing else "the buffer is full"
                dropped, error = self.counts["dropped"], self.last_error
            else:
                buffer = self.buffers[kind]
                buffer.append((seq, time.monotonic(), event))
                self.buffered += 1
                self.logged[kind] += 1
                if self.thread is None:
                    self._start()
                elif len(buffer) == 1 or len(buffer) == self.batch_size:
                    self.work.notify()  # a new deadline, or a full batch to send now
                return
        self.log_drop(
            logging.WARNING,
            "xebench client dropped a %s event: %s (max_buffer=%d; %d dropped in all; "
            "last error: %s)",
            kind[:-1],
            reason,
            self.max_buffer,
            dropped,
            error,
        )

    def _start(self) -> None:
        # Started on first use, so scripts that only call send_* never have a thread.
        self.thread = threading.Thread(target=self.run, name="xebench-client", daemon=True)
        with _LIVE_LOCK:
            _LIVE.add(self)
        self.thread.start()

    def _lose(self, seq: int, n: int, counter: Literal["dropped", "failed"]) -> None:
        """Count ``n`` undelivered events, the first with sequence number ``seq`` (lock held)."""
        self.counts[counter] += n
        if self.first_lost is None or seq < self.first_lost:
            self.first_lost = seq

    def flush(self, timeout: float | None) -> bool:
        with self.lock:
            target, seq = dict(self.logged), self.seq
            self.flush_waiters += 1
            self.work.notify()
            try:
                done = self.settled_cond.wait_for(
                    lambda: self.stopped or all(self.settled[k] >= target[k] for k in _KINDS),
                    timeout,
                )
            finally:
                self.flush_waiters -= 1
            done = done and all(self.settled[k] >= target[k] for k in _KINDS)
            return done and (self.first_lost is None or self.first_lost > seq)

    def begin_close(self, timeout: float) -> None:
        with self.lock:
            if self.closing:
                return
            self.closing = True
            self.deadline = time.monotonic() + max(0.0, timeout)
            self.work.notify_all()
            self.wake.notify_all()
            self.space.notify_all()
            started = self.thread is not None
        if not started:
            self.http.close()
            self._finished()

    def wait_closed(self) -> bool:
        """Wait for the worker until the close deadline; True if everything was delivered."""
        with self.lock:
            thread, deadline, seq = self.thread, self.deadline, self.seq
        if thread is not None and thread is not threading.current_thread():
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            thread.join(remaining)
            if thread.is_alive():
                # Stuck in a request that began before close(): what is still buffered will not
                # be sent in time. The worker finishes its batch, then closes the HTTP client.
                with self.lock:
                    for kind, buffer in self.buffers.items():
                        if buffer:
                            self._lose(min(seq for seq, _, _ in buffer), len(buffer), "dropped")
                            self.settled[kind] += len(buffer)
                            self.buffered -= len(buffer)
                            buffer.clear()
                    self.settled_cond.notify_all()
        with self.lock:
            delivered = self.buffered == 0 and self.inflight == 0
            return delivered and (self.first_lost is None or self.first_lost > seq)

    def _finished(self) -> None:
        with self.lock:
            self.stopped = True
            self.settled_cond.notify_all()
        with _LIVE_LOCK:
            _LIVE.discard(self)

    def stats(self) -> dict[str, Any]:
        with self.lock:
            return {
                "queued": self.buffered + self.inflight,
                **self.counts,
                "last_error": self.last_error,
            }

    # --- the worker thread -----------------------------------------------------------

    def run(self) -> None:
        try:
            while (batch := self._next_batch()) is not None:
                kind, items = batch
                try:
                    self._deliver(kind, items)
                except Exception as error:  # a bug must not kill the thread silently
                    logger.exception("xebench client: unexpected error delivering a batch")
                    with self.lock:
                        self.last_error = f"{type(error).__name__}: {error}"
                        self._lose(min(seq for seq, _, _ in items), len(items), "failed")
                finally:
                    with self.lock:
                        self.settled[kind] += len(items)
                        self.inflight -= len(items)
                        self.settled_cond.notify_all()
        finally:
            self.http.close()
            self._finished()

    def _next_batch(self) -> tuple[Kind, list[tuple[int, float, dict[str, Any]]]] | None:
        """The next batch to send, waiting until one is full or due; None once closed and empty."""
        with self.lock:
            while True:
                now = time.monotonic()
                urgent = self.closing or self.flush_waiters > 0
                wait: float | None = None
                for i in range(len(_KINDS)):
                    kind = _KINDS[(self.turn + i) % len(_KINDS)]
                    buffer = self.buffers[kind]
                    if not buffer:
                        continue
                    due = buffer[0][1] + self.flush_interval
                    if urgent or len(buffer) >= self.batch_size or now >= due:
                        n = min(self.batch_size, len(buffer))
                        items = [buffer.popleft() for _ in range(n)]
                        self.buffered -= n
                        self.inflight += n
                        self.turn += 1
                        self.space.notify_all()
                        return kind, items
                    wait = due - now if wait is None else min(wait, due - now)
                if self.closing:
                    return None
                self.work.wait(wait)

    def _deliver(self, kind: Kind, items: list[tuple[int, float, dict[str, Any]]]) -> None:
        """Send one batch, splitting it on 413 and isolating the events a 422/409 names."""
        parts = [items]
        while parts:
            part = parts.pop()
            outcome = self.post(kind, [event for _, _, event in part], background=True)
            if outcome.state == "ok":
                body = outcome.body if isinstance(outcome.body, Mapping) else {}
                duplicates = body.get("duplicates", 0)
                with self.lock:
                    self.counts["sent"] += len(part)
                    self.counts["duplicates"] += duplicates if isinstance(duplicates, int) else 0
                continue
            if outcome.state == "gave_up":
                counter: Literal["dropped", "failed"] = "dropped" if outcome.timed_out else "failed"
                self._give_up(kind, part, counter, outcome.error)
                continue
            status, body = outcome.status, outcome.body
            if status == 413 and len(part) > 1:
                half = len(part) // 2
                parts += [part[half:], part[:half]]  # first half first
                continue
            if status in (409, 422):
                bad = _named_events(status, body, [event for _, _, event in part])
                if bad:
                    self._reject(kind, [part[i] for i in sorted(bad)], status, body, bad)
                    rest = [item for i, item in enumerate(part) if i not in bad]
                    if rest:
                        parts.append(rest)
                    continue
                if len(part) > 1:  # the answer names no event: bisect to find them
                    half = len(part) // 2
                    parts += [part[half:], part[:half]]
                    continue
            self._reject(kind, part, status, body, {})

    def _give_up(
        self,
        kind: Kind,
        part: list[tuple[int, float, dict[str, Any]]],
        counter: Literal["dropped", "failed"],
        error: str,
    ) -> None:
        with self.lock:
            self._lose(min(seq for seq, _, _ in part), len(part), counter)
        why = "not delivered by the close deadline" if counter == "dropped" else "retries exhausted"
        self.log_reject(
            logging.WARNING,
            "xebench client %s %d %s events: %s; last error: %s",
            counter,
            len(part),
            kind[:-1],
            why,
            error,
        )

    def _reject(
        self,
        kind: Kind,
        part: list[tuple[int, float, dict[str, Any]]],
        status: int | None,
        body: Any,
        messages: Mapping[int, str],
    ) -> None:
        summary = _detail(status, body)
        with self.lock:
            self._lose(min(seq for seq, _, _ in part), len(part), "failed")
            self.last_error = summary
        shown = [f"{part[0][2].get('request_id')!r}"] if not messages else []
        shown += [messages[i] for i in sorted(messages)[:5]]
        self.log_reject(
            logging.WARNING,
            "xebench server refused %d %s events (%s): %s",
            len(part),
            kind[:-1],
            summary,
            "; ".join(shown),
        )

    # --- one POST with retries (both the worker and send_*) ---------------------------

    def backoff(self, attempt: int, retry_after: float | None) -> float:
        """Full jitter: uniform in [0, min(max, base * 2**attempt)], at least ``retry_after``."""
        cap = min(self.backoff_max, self.backoff_base * 2.0 ** min(attempt, 64))
        delay = self.rng.random() * cap
        return delay if retry_after is None else max(delay, retry_after)

    def post(
        self,
        kind: Kind,
        events: Sequence[Mapping[str, Any]],
        *,
        background: bool,
        deadline: float | None = None,
    ) -> _Outcome:
        body = json.dumps(
            events,
            separators=(",", ":"),
            ensure_ascii=False,
            default=_json_default,
            allow_nan=False,
        ).encode()
        headers = {"Content-Type": "application/json"}
        if self.gzip and len(body) >= GZIP_MIN_BYTES:
            body = gzip_module.compress(body, compresslevel=5, mtime=0)
            headers["Content-Encoding"] = "gzip"
        return self.send("POST", f"/v1/{kind}", body, headers, background, deadline)

    def send(
        self,
        method: str,
        path: str,
        body: bytes,
        headers: Mapping[str, str],
        background: bool,
        deadline: float | None,
    ) -> _Outcome:
        """One request, retried (transport errors, 408, 429, 5xx) with backoff and jitter."""
        attempt = 0
        while True:
            if background:
                deadline = self.deadline  # set by close(); None while the client runs
            timeout = self.timeout
            if deadline is not None:
                timeout = min(timeout, deadline - time.monotonic())
                if timeout <= 0:
                    return _Outcome("gave_up", error=self.last_error or "", timed_out=True)
            retry_after, status = None, None
            try:
                response = self.http.request(
                    method, path, content=body, headers=headers, timeout=timeout
                )
            except httpx.TransportError as error:  # connection refused/reset, timeouts
                error_text = f"{type(error).__name__}: {error}" if str(error) else repr(error)
            else:
                if response.is_success:
                    return _Outcome("ok", response.status_code, _answer(response))
                answer = _answer(response)
                if not _retryable(response.status_code):
                    return _Outcome("refused", response.status_code, answer)
                status = response.status_code
                error_text = _detail(status, answer)
                retry_after = _retry_after(response)
            with self.lock:
                self.last_error = error_text
            if self.max_retries is not None and attempt >= self.max_retries:
                return _Outcome("gave_up", status, error=error_text)
            delay = self.backoff(attempt, retry_after)
            if deadline is not None and time.monotonic() + delay >= deadline:
                return _Outcome("gave_up", status, error=error_text, timed_out=True)
            with self.lock:
                self.counts["retries"] += 1
            self.log_retry(
                logging.WARNING,
                "xebench client: %s %s failed (%s); retrying in %.2f s",
                method,
                path,
                error_text,
                delay,
            )
            if not self._sleep(delay, background):
                return _Outcome("gave_up", status, error=error_text, timed_out=True)
            attempt += 1

    def _sleep(self, delay: float, background: bool) -> bool:
        """Wait ``delay`` seconds; False when close() set a deadline that falls before the end."""
        if self.sleep_hook is not None:
            self.sleep_hook(delay)
            return True
        if not background:
            time.sleep(delay)
            return True
        until = time.monotonic() + delay
        with self.lock:
            while (remaining := until - time.monotonic()) > 0:
                if self.deadline is not None and until >= self.deadline:
                    return False
                self.wake.wait(remaining)
        return True


def _named_events(status: int, body: Any, events: Sequence[Mapping[str, Any]]) -> dict[int, str]:
    """The events of a batch that a 422 or 409 answer names, with the server's message."""
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


class Client:
    """Buffered, batched, retried delivery of events to an xebench server.

    Args:
        url: the server, e.g. ``"http://127.0.0.1:8000"`` (a path prefix is kept).
        token: sent as ``Authorization: Bearer TOKEN`` when given.
        batch_size: at most this many events per request.
        flush_interval: seconds an event may wait for its batch to fill.
        max_buffer: events held in memory, both kinds together; beyond it
            ``log_*`` drops the event and counts it (memory stays bounded when
            the server is down).
        max_block: seconds ``log_*`` may wait for room in a full buffer before
            dropping; 0 (the default) never waits.
        timeout: seconds for each HTTP request (connect, read, write).
        max_retries: retries of one batch before its events count as failed;
            None retries until :meth:`close`'s deadline.
        backoff_base, backoff_max: the n-th retry waits a uniformly random time
            in [0, min(backoff_max, backoff_base * 2**n)] seconds ("full
            jitter"), and at least the server's ``Retry-After``.
        close_timeout: default time :meth:`close` (and interpreter exit) gives
            the remaining events; also the give-up time of ``send_*`` when
            ``max_retries`` is None.
        transport: an ``httpx`` transport, e.g. ``httpx.MockTransport`` in tests.
        gzip: gzip request bodies of at least 1 KiB.
        rng: the source of jitter (``random.Random``); for reproducible tests.
        sleep: called with the delay instead of waiting between retries; for tests.

    ``log_*`` may be called from any number of threads. The worker thread starts
    on the first ``log_*``; the client is flushed at interpreter exit, and when
    it is garbage-collected without :meth:`close`. The thread does not survive
    ``fork``: create the client in each worker process, or at least do not log
    through it before forking (e.g. gunicorn's ``--preload``).

    Example:
        >>> import httpx
        >>> transport = httpx.MockTransport(lambda request: httpx.Response(
        ...     200, json={"accepted": 1, "inserted": 1, "duplicates": 0}))
        >>> client = Client("http://xebench.test", transport=transport, batch_size=100)
        >>> client.log_prediction("r1", [0.2, 0.5, 0.3], classes=["a", "b", "c"],
        ...                       model="router", cohort={"region": "eu"})
        >>> client.close()
        True
        >>> {k: client.stats()[k] for k in ("queued", "sent", "failed", "dropped")}
        {'queued': 0, 'sent': 1, 'failed': 0, 'dropped': 0}
    """

    def __init__(
        self,
        url: str,
        token: str | None = None,
        *,
        batch_size: int = 500,
        flush_interval: float = 1.0,
        max_buffer: int = 100_000,
        max_block: float = 0.0,
        timeout: float = 10.0,
        max_retries: int | None = None,
        backoff_base: float = 0.1,
        backoff_max: float = 30.0,
        close_timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        gzip: bool = True,
        rng: random.Random | None = None,
        sleep: Callable[[float], object] | None = None,
    ) -> None:
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise InvalidInputError("url", "must start with http:// or https://", value=url)
        for name, value, low in (
            ("batch_size", batch_size, 1),
            ("max_buffer", max_buffer, 1),
            ("max_retries", 0 if max_retries is None else max_retries, 0),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise InvalidInputError(name, f"must be an integer >= {low}", value=value)
        for name, number, positive in (
            ("flush_interval", flush_interval, True),
            ("max_block", max_block, False),
            ("timeout", timeout, True),
            ("backoff_base", backoff_base, True),
            ("backoff_max", backoff_max, True),
            ("close_timeout", close_timeout, False),
        ):
            if not _is_number(number) or not math.isfinite(number) or number < 0:
                raise InvalidInputError(name, "must be a finite number >= 0", value=number)
            if positive and number == 0:
                raise InvalidInputError(name, "must be > 0", value=number)
        self.url = url
        self._core = _Core(
            url,
            token,
            batch_size=batch_size,
            flush_interval=float(flush_interval),
            max_buffer=max_buffer,
            max_block=float(max_block),
            timeout=float(timeout),
            max_retries=max_retries,
            backoff_base=float(backoff_base),
            backoff_max=float(backoff_max),
            close_timeout=float(close_timeout),
            transport=transport,
            gzip=gzip,
            rng=rng,
            sleep=sleep,
        )
        # Collected without close(): start the close; the worker drains on its own (it holds
        # the core, never the client) and interpreter exit waits for it.
        self._finalizer = weakref.finalize(self, self._core.begin_close, close_timeout)
        self._finalizer.atexit = False

    def __repr__(self) -> str:
        stats = self.stats()
        return f"Client({self.url!r}, queued={stats['queued']}, sent={stats['sent']})"

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def log_prediction(
        self,
        request_id: str | int,
        probabilities: Any,
        *,
        model: str,
        version: str = "",
        classes: Sequence[Any] | None = None,
        cohort: Mapping[str, Any] | None = None,
        features: Mapping[str, Any] | None = None,
        timestamp: datetime | str | None = None,
    ) -> None:
        """Queue one prediction event; returns at once (see ``max_block``).

        ``probabilities`` is P(class 1) for a binary model, a sequence with one
        probability per class (``classes``, or ``0..k-1``), or a mapping
        ``{label: p}``; NumPy values are fine. ``timestamp`` defaults to now;
        it must carry a timezone. Raises ``ValueError``
        (:class:`~xebench.InvalidInputError`) for what the server would refuse,
        by its own rules (:func:`xebench.ingest.events.check_event`) and in its words:
        a missing or empty ``request_id``, NaN, a vector not summing to 1, a
        naive datetime... The error's ``argument`` names the field
        (``probabilities/1``, ``cohort/region``).

        Example:
            >>> import httpx
            >>> ok = httpx.MockTransport(lambda r: httpx.Response(200, json={"duplicates": 0}))
            >>> with Client("http://xebench.test", transport=ok) as client:
            ...     client.log_prediction("r1", {"cat": 0.25, "dog": 0.75}, model="pets",
            ...                           version="v2", features={"age": 3.5},
            ...                           timestamp="2026-01-01T12:00:00+01:00")
            ...     client.log_prediction("r2", float("nan"), model="pets")
            Traceback (most recent call last):
            ...
            xebench.errors.InvalidInputError: probabilities: probabilities must be finite (NaN
            and infinity are refused); got nan
        """
        event: dict[str, Any] = {
            "request_id": _request_id(request_id),
            "model": _json("model", model),
            "version": _json("version", version),
            "timestamp": _timestamp(timestamp),
            "probabilities": _json("probabilities", probabilities),
        }
        if classes is not None:
            event["classes"] = _json("classes", classes, labels=True)
        if cohort is not None:
            event["cohort"] = _json("cohort", cohort)
        if features is not None:
            event["features"] = _json("features", features)
        check_event("predictions", event)
        self._core.put("predictions", event)

    def log_label(
        self,
        request_id: str | int,
        label: str | int | bool,
        *,
        model: str | None = None,
        timestamp: datetime | str | None = None,
    ) -> None:
        """Queue one label (observed outcome) event; returns at once.

        ``model`` None means the label applies to every model that scored
        ``request_id``. A label may be logged before its prediction: the
        server joins them when both have arrived.

        Example:
            >>> import httpx
            >>> ok = httpx.MockTransport(lambda r: httpx.Response(200, json={"duplicates": 0}))
            >>> with Client("http://xebench.test", transport=ok) as client:
            ...     client.log_label("r1", True, model="fraud")
            ...     client.log_label("", True)
            Traceback (most recent call last):
            ...
            xebench.errors.InvalidInputError: request_id: must be 1-256 printable characters
            (no control characters); got ''
        """
        event: dict[str, Any] = {"request_id": _request_id(request_id)}
        if model is not None:
            event["model"] = _json("model", model)
        event["label"] = _json("label", label, labels=True)
        event["timestamp"] = _timestamp(timestamp)
        check_event("labels", event)
        self._core.put("labels", event)

    def flush(self, timeout: float | None = None) -> bool:
        """Send what is buffered now and wait until everything logged before the call is settled.

        Returns True when every event logged so far was acknowledged by the
        server; False when ``timeout`` (seconds; None waits as long as it takes)
        expired first, or when any event logged before the call was dropped or
        refused (then see :meth:`stats`). The client keeps running.

        Example:
            >>> import httpx
            >>> ok = httpx.MockTransport(lambda r: httpx.Response(200, json={"duplicates": 0}))
            >>> with Client("http://xebench.test", transport=ok, flush_interval=60) as client:
            ...     client.log_label("r1", 0, model="fraud")
            ...     client.flush(timeout=5), client.stats()["sent"]
            (True, 1)
        """
        return self._core.flush(timeout)

    def close(self, timeout: float | None = None) -> bool:
        """Flush (for at most ``timeout`` seconds, default ``close_timeout``), then stop.

        Events still undelivered at the deadline are counted as ``dropped``.
        Returns what :meth:`flush` would. Calling it again does nothing more;
        ``log_*`` after close drops (and counts) the event.

        Example:
            >>> import httpx
            >>> down = httpx.MockTransport(lambda r: httpx.Response(503))
            >>> client = Client("http://xebench.test", transport=down, backoff_max=0.01)
            >>> client.log_label("r1", 1)
            >>> client.close(timeout=0.2)
            False
            >>> client.stats()["dropped"], client.stats()["last_error"]
            (1, 'HTTP 503')
        """
        core = self._core
        core.begin_close(core.close_timeout if timeout is None else timeout)
        self._finalizer.detach()
        return core.wait_closed()

    def stats(self) -> dict[str, Any]:
        """Counters since the client was created.

        ``queued``: buffered or in flight; ``sent``: acknowledged by the server;
        ``duplicates``: of those, already stored (a resend); ``failed``: refused
        by the server (or retries exhausted); ``dropped``: buffer full, logged
        after close, or close ran out of time; ``retries``: repeated requests;
        ``last_error``: the last failure, as text, or None.

        Example:
            >>> import httpx
            >>> client = Client("http://xebench.test",
            ...                 transport=httpx.MockTransport(lambda r: httpx.Response(200)))
            >>> client.stats()
            {'queued': 0, 'sent': 0, 'duplicates': 0, 'failed': 0, 'dropped': 0, 'retries': 0,
             'last_error': None}
            >>> client.close()
            True
        """
        return self._core.stats()

    def send_predictions(self, events: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """POST prediction events now, in one request, and return the server's answer.

        Retries like the background delivery (giving up after ``close_timeout``
        when ``max_retries`` is None); raises :class:`ClientError` when the
        server refuses the batch (nothing of it is stored then) or no answer
        came in time. Events are plain dicts in the HTTP shape; datetimes and
        NumPy values are converted. No buffering, so ``flush`` is not needed.

        Example:
            >>> import httpx
            >>> def server(request):
            ...     return httpx.Response(422, json={"detail": "1 of 1 events is invalid",
            ...         "errors": [{"index": 0, "field": "/0/model", "message": "required"}]})
            >>> with Client("http://xebench.test", transport=httpx.MockTransport(server)) as c:
            ...     c.send_predictions([{"request_id": "r1", "probabilities": 0.3}])
            Traceback (most recent call last):
            ...
            xebench.client.sdk.ClientError: HTTP 422: 1 of 1 events is invalid
        """
        return self._send("predictions", events)

    def send_labels(self, events: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """POST label events now, in one request, and return the server's answer.

        Same rules as :meth:`send_predictions`.

        Example:
            >>> import httpx
            >>> answer = {"accepted": 1, "inserted": 1, "duplicates": 0, "pending": 1, "joined": 0}
            >>> server = httpx.MockTransport(lambda request: httpx.Response(200, json=answer))
            >>> with Client("http://xebench.test", transport=server) as client:
            ...     client.send_labels([{"request_id": "r1", "label": 1}])["pending"]
            1
        """
        return self._send("labels", events)

    def upload_reference(self, model: str, data: Any, *, name: str | None = None) -> dict[str, Any]:
        """PUT ``data`` as ``model``'s drift reference and return the server's answer.

        ``data`` is a CSV, Parquet or JSON Lines file (by suffix; ``.gz`` is sent
        gzip-encoded) or a table (a pyarrow Table, a pandas or polars DataFrame,
        a dict of columns), sent as Parquet. The server keeps only the counts of
        the monitored features in their bins (``GET /v1/drift?reference=uploaded``).
        Retried like ``send_*``; raises :class:`ClientError` when refused.

        Example:
            >>> import httpx
            >>> def server(request):
            ...     return httpx.Response(200, json={"model": "fraud", "rows": 2,
            ...         "kind": request.headers["content-type"]})
            >>> with Client("http://xebench.test", transport=httpx.MockTransport(server)) as c:
            ...     c.upload_reference("fraud", {"amount": [3.5, 12.0]})
            {'model': 'fraud', 'rows': 2, 'kind': 'application/vnd.apache.parquet'}
        """
        body, headers = _reference_body(data, name)
        core = self._core
        if core.closing:
            raise ClientError("the client is closed")
        deadline = time.monotonic() + core.close_timeout if core.max_retries is None else None
        path = f"/v1/references/{quote(str(model), safe='')}"
        return _answer_or_raise(core, core.send("PUT", path, body, headers, False, deadline))

    def _send(self, kind: Kind, events: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        if isinstance(events, Mapping) or not isinstance(events, Sequence) or not events:
            raise InvalidInputError("events", "must be a non-empty list of event dicts")
        if any(not isinstance(event, Mapping) for event in events):
            raise InvalidInputError("events", "every event must be a dict")
        core = self._core
        if core.closing:
            raise ClientError("the client is closed")
        deadline = time.monotonic() + core.close_timeout if core.max_retries is None else None
        outcome = core.post(kind, events, background=False, deadline=deadline)
        body = outcome.body if isinstance(outcome.body, dict) else {}
        with core.lock:
            if outcome.state == "ok":
                core.counts["sent"] += len(events)
                duplicates = body.get("duplicates", 0)
                core.counts["duplicates"] += duplicates if isinstance(duplicates, int) else 0
            else:
                core.counts["failed"] += len(events)
        return _answer_or_raise(core, outcome)


def _answer_or_raise(core: _Core, outcome: _Outcome) -> dict[str, Any]:
    """The answer of an acknowledged request; :class:`ClientError` otherwise."""
    if outcome.state == "ok":
        return outcome.body if isinstance(outcome.body, dict) else {}
    if outcome.state == "refused":
        message = _detail(outcome.status, outcome.body)
        with core.lock:
            core.last_error = message
        raise ClientError(message, status=outcome.status, body=outcome.body)
    raise ClientError(
        f"no acknowledgement, gave up retrying: {outcome.error}", status=outcome.status
    )


#: The media type of a reference file, by the format its suffix names (xebench.io.readers).
_REFERENCE_TYPES = {
    "csv": "text/csv",
    "tsv": "text/tab-separated-values",
    "parquet": "application/vnd.apache.parquet",
    "json": "application/x-ndjson",
}


def _reference_body(data: Any, name: str | None) -> tuple[bytes, dict[str, str]]:
    """The body and headers of a reference upload: a file as it is, a table as Parquet."""
    if isinstance(data, str | os.PathLike):
        from ..io.readers import SUPPORTED_SUFFIXES, _format_of

        path = Path(data)
        try:
            kind, compressed = _format_of(path)
        except DataError:
            suffixes = ", ".join(sorted(SUPPORTED_SUFFIXES))
            raise InvalidInputError(
                "data", f"must be a {suffixes} file (CSV, JSON Lines: .gz too)", value=str(path)
            ) from None
        if ".tsv" in (s.lower() for s in path.suffixes):
            kind = "tsv"
        try:
            body = path.read_bytes()
        except OSError as error:
            raise InvalidInputError("data", f"cannot read {path}: {error.strerror}") from None
        headers = {"Content-Type": _REFERENCE_TYPES[kind], "X-Reference-Name": name or path.name}
        if compressed:
            headers["Content-Encoding"] = "gzip"
        return body, headers
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pa.table(data)
    except (TypeError, ValueError, pa.ArrowException) as error:
        raise InvalidInputError(
            "data", f"must be a file path or a table ({type(error).__name__}: {error})"
        ) from None
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd")
    headers = {
        "Content-Type": "application/vnd.apache.parquet",
        "X-Reference-Name": name or f"table of {table.num_rows} rows",
    }
    return buffer.getvalue(), headers
