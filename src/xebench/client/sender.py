"""The background sender of :class:`xebench.Client`: a bounded buffer, batches, one worker thread.

``log_*`` puts an event on the buffer of its kind (predictions, labels) and
returns; one worker thread per client takes a batch when it is full
(``batch_size``), when its oldest event has waited ``flush_interval``, or at
once while someone flushes or closes, and POSTs it through the
:class:`~xebench.client.transport.Transport` (retried under its policy). The
answer decides each event's fate: 413 splits the batch in halves; 422 and
409 drop exactly the events the answer names and resend the rest (or bisect
when it names none); other refusals fail the batch. Every event ends
``sent``, ``failed`` or ``dropped``; see :meth:`Sender.stats`.

Example:
    >>> import httpx
    >>> answers = httpx.MockTransport(lambda r: httpx.Response(200, json={"duplicates": 0}))
    >>> sender = Sender(Transport("http://xebench.test", transport=answers), batch_size=10,
    ...                 flush_interval=60, max_buffer=100, max_block=0, close_timeout=5)
    >>> sender.put("labels", {"request_id": "r1", "label": 1})
    >>> sender.flush(timeout=5), sender.stats()["sent"]
    (True, 1)
    >>> sender.begin_close(5); sender.wait_closed()
    True
"""

from __future__ import annotations

import atexit
import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

from ..ingest.events import EventKind
from .encoding import json_default
from .transport import Failure, Outcome, Transport, named_events, summary

__all__ = ["LOG_INTERVAL", "Sender"]

logger = logging.getLogger("xebench.client")

#: What a POST sends: events of a kind, or a language model's scored sequences.
Kind = EventKind | Literal["lm/tokens"]
_KINDS: tuple[Kind, ...] = ("predictions", "labels")

#: At most one log line per kind of problem in this many seconds (plus a count of the rest).
LOG_INTERVAL = 10.0


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
_LIVE: set[Sender] = set()
_LIVE_LOCK = threading.Lock()


def _close_all_at_exit() -> None:
    with _LIVE_LOCK:
        cores = list(_LIVE)
    for core in cores:  # start every close first, so that clients drain in parallel
        core.begin_close(core.close_timeout)
    for core in cores:
        core.wait_closed()


atexit.register(_close_all_at_exit)


class Sender:
    """Buffers, counters and the worker loop of one :class:`xebench.Client`.

    Args:
        transport: where batches go (it holds the retry policy).
        batch_size, flush_interval, max_buffer, max_block, close_timeout: as
            :class:`xebench.Client` documents them.
        sleep: the client's sleep hook, or None: then the worker waits out a
            backoff on a condition that :meth:`begin_close` interrupts.

    Example:
        >>> import httpx
        >>> from xebench.client.transport import RetryPolicy
        >>> down = Transport("http://xebench.test", policy=RetryPolicy(max_retries=1),
        ...                  transport=httpx.MockTransport(lambda r: httpx.Response(503)))
        >>> sender = Sender(down, batch_size=10, flush_interval=60, max_buffer=100,
        ...                 max_block=0, close_timeout=5, sleep=lambda delay: None)
        >>> sender.put("labels", {"request_id": "r1", "label": 1})
        >>> sender.flush(timeout=5), sender.stats()["failed"], sender.stats()["retries"]
        (False, 1, 1)
        >>> sender.begin_close(5); sender.wait_closed()
        False
    """

    def __init__(
        self,
        transport: Transport,
        *,
        batch_size: int,
        flush_interval: float,
        max_buffer: int,
        max_block: float,
        close_timeout: float,
        sleep: Callable[[float], object] | None = None,
    ) -> None:
        self.transport = transport
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.max_buffer = max_buffer
        self.max_block = max_block
        self.close_timeout = close_timeout
        self.sleep_hook = sleep
        self.clock = transport.clock

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
                buffer.append((seq, self.clock(), event))
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
            self.deadline = self.clock() + max(0.0, timeout)
            self.work.notify_all()
            self.wake.notify_all()
            self.space.notify_all()
            started = self.thread is not None
        if not started:
            self.transport.close()
            self._finished()

    def wait_closed(self) -> bool:
        """Wait for the worker until the close deadline; True if everything was delivered."""
        with self.lock:
            thread, deadline, seq = self.thread, self.deadline, self.seq
        if thread is not None and thread is not threading.current_thread():
            # In slices, so that the deadline is read on the sender's clock (a test's fake one).
            while thread.is_alive():
                remaining = None if deadline is None else deadline - self.clock()
                if remaining is not None and remaining <= 0:
                    break
                thread.join(None if remaining is None else min(remaining, 0.1))
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
            self.transport.close()
            self._finished()

    def _next_batch(self) -> tuple[Kind, list[tuple[int, float, dict[str, Any]]]] | None:
        """The next batch to send, waiting until one is full or due; None once closed and empty."""
        with self.lock:
            while True:
                now = self.clock()
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
                bad = named_events(status, body, [event for _, _, event in part])
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
        text = summary(status, body)
        with self.lock:
            self._lose(min(seq for seq, _, _ in part), len(part), "failed")
            self.last_error = text
        shown = [f"{part[0][2].get('request_id')!r}"] if not messages else []
        shown += [messages[i] for i in sorted(messages)[:5]]
        self.log_reject(
            logging.WARNING,
            "xebench server refused %d %s events (%s): %s",
            len(part),
            kind[:-1],
            text,
            "; ".join(shown),
        )

    # --- one POST with retries (both the worker and send_*) ---------------------------

    def post(
        self,
        kind: Kind,
        events: Sequence[Mapping[str, Any]],
        *,
        background: bool,
        deadline: float | None = None,
    ) -> Outcome:
        """POST ``events`` to ``/v1/{kind}``; ``deadline`` (on :attr:`clock`) is for ``send_*``."""
        body = json.dumps(
            events,
            separators=(",", ":"),
            ensure_ascii=False,
            default=json_default,
            allow_nan=False,
        ).encode()
        return self.send("POST", f"/v1/{kind}", body, {}, background, deadline, compress=True)

    def send(
        self,
        method: str,
        path: str,
        body: bytes,
        headers: Mapping[str, str],
        background: bool,
        deadline: float | None,
        *,
        compress: bool = False,
    ) -> Outcome:
        """One request through the transport, counting and logging its retries.

        ``compress``: gzip the body if the transport does (event batches; a
        reference file goes as it is, with its own encoding).
        """

        def limit() -> float | None:
            return self.deadline if background else deadline  # close() sets self.deadline

        def failed(failure: Failure) -> None:
            with self.lock:
                self.last_error = failure.error
                if failure.delay is not None:
                    self.counts["retries"] += 1
            if failure.delay is not None:
                self.log_retry(
                    logging.WARNING,
                    "xebench client: %s %s failed (%s); retrying in %.2f s",
                    method,
                    path,
                    failure.error,
                    failure.delay,
                )

        wait = self._wait if background and self.sleep_hook is None else None
        outcome = self.transport.send(
            method,
            path,
            body,
            headers=headers,
            content_type=headers.get("Content-Type", "application/json"),
            deadline=limit,
            wait=wait,
            on_failure=failed,
            compress=compress,
        )
        if outcome.state == "gave_up" and not outcome.error:
            outcome.error = self.last_error or ""  # the deadline passed before a first answer
        return outcome

    def _wait(self, delay: float) -> bool:
        """Wait ``delay`` seconds; False when close() set a deadline that falls before the end."""
        until = self.clock() + delay
        with self.lock:
            while (remaining := until - self.clock()) > 0:
                if self.deadline is not None and until >= self.deadline:
                    return False
                self.wake.wait(remaining)
        return True
