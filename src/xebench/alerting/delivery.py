"""Sending the outbox: each notification delivered at least once, retried with backoff,
dead-lettered (kept, counted) when it cannot be delivered in ``max_age``.

:meth:`DeliveryWorker.deliver_due` is one pass at a given time (a test passes
the time and a sender); :meth:`DeliveryWorker.start` runs passes in a thread.
A pass:

1. dead-letters the pending rows older than ``max_age`` (``dead_at``, with why);
2. reads the due rows -- of each (alert, target) only the oldest pending one, so
   a target gets an alert's notifications in order;
3. sends them one at a time (so a crash re-sends at most the one in flight):
   the target's address is resolved and checked again
   (:class:`~xebench.alerting.addresses.AddressGuard`) and the request goes to
   the checked address; every request carries ``Idempotency-Key``, the row's
   key, identical on every retry, for the receiver to drop duplicates;
4. records each outcome in its own small transaction, after the answer:

   - 2xx: delivered;
   - 429 / 503 with ``Retry-After`` (seconds or an HTTP date): retried then;
   - no answer (refused, timeout, reset), 5xx, 408, 425, 429: retried after an
     exponential backoff with full jitter: ``uniform(0, min(cap, base * 2**n))``
     after the n-th failure (base 1 s, cap 5 min), so that receivers coming
     back are not hit by every sender at once;
   - any other status (a 4xx: the body or the credentials are wrong; a 3xx:
     redirects are not followed): dead at once, with the status and answer.

A target whose request got no answer is skipped for the rest of the pass (its
other rows are due again next pass): one dead receiver costs one timeout per
pass, not one per alert.

Example:
    >>> from datetime import UTC, datetime
    >>> from xebench.store import EventStore
    >>> from xebench.alerting.settings import AlertingSettings
    >>> from xebench.alerting.store import OutboxRow, write_transitions, outbox_summary
    >>> settings = AlertingSettings.from_mapping(
    ...     {"webhooks": [{"url": "http://127.0.0.1:9/hook", "name": "hook"}]})
    >>> at = datetime(2026, 1, 1, tzinfo=UTC)
    >>> store = EventStore(":memory:")
    >>> _ = store.write_transaction(lambda con: write_transitions(
    ...     con, [], [OutboxRow("t/s/page", "hook", "firing", '{"version": "4"}', "k1", at)]))
    >>> sent = []
    >>> def sender(request):
    ...     sent.append(request.headers["Idempotency-Key"])
    ...     return Reply(500) if len(sent) == 1 else Reply(200)
    >>> worker = DeliveryWorker(store, settings, sender=sender, rng=random.Random(0))
    >>> worker.deliver_due(at)
    {'attempted': 1, 'delivered': 0, 'retrying': 1, 'dead': 0}
    >>> worker.deliver_due(at + timedelta(seconds=2))
    {'attempted': 1, 'delivered': 1, 'retrying': 0, 'dead': 0}
    >>> sent, outbox_summary(store)["delivered"]
    (['k1', 'k1'], 1)
"""

from __future__ import annotations

import contextlib
import email.utils
import json
import logging
import random
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from .._version import __version__
from ..errors import ConfigError
from .addresses import Resolver
from .settings import AlertingSettings, Target
from .store import OutboxEntry, dead_letter_expired, due_entries, next_due, record_attempt

__all__ = [
    "BACKOFF_BASE",
    "BACKOFF_CAP",
    "DeliveryWorker",
    "HttpSender",
    "Outbound",
    "Reply",
    "Sender",
    "backoff",
    "retry_after",
]

log = logging.getLogger("xebench.alerting.delivery")

BACKOFF_BASE = 1.0
BACKOFF_CAP = 300.0
#: Statuses worth retrying (the others below 200 or from 300 are permanent).
_RETRYABLE = frozenset({408, 425, 429})
_ANSWER_BYTES = 2048  # of a failed answer, kept as last_error


@dataclass(frozen=True)
class Outbound:
    """One request to send: ``body`` to ``url`` with ``headers``, within ``timeout``
    seconds, connecting to one of ``addresses`` (checked; empty: resolve as usual)."""

    url: str
    body: bytes
    headers: Mapping[str, str]
    timeout: float
    addresses: tuple[str, ...] = ()


@dataclass(frozen=True)
class Reply:
    """What a send got: the HTTP ``status`` (None: no answer), ``Retry-After``, an error."""

    status: int | None
    retry_after: str | None = None
    error: str | None = None


#: Sends one request; never raises for network reasons (a :class:`Reply` says what happened).
Sender = Callable[[Outbound], Reply]


def backoff(failures: int, rng: random.Random, base: float = BACKOFF_BASE,
            cap: float = BACKOFF_CAP) -> float:  # fmt: skip
    """Seconds to wait after the ``failures``-th failure: full jitter,
    ``uniform(0, min(cap, base * 2 ** (failures - 1)))``.

    Example:
        >>> rng = random.Random(1)
        >>> [round(backoff(n, rng), 2) for n in (1, 2, 3, 20)]
        [0.13, 1.69, 3.06, 76.52]
    """
    ceiling = min(cap, base * 2.0 ** min(max(failures - 1, 0), 60))
    return rng.uniform(0.0, ceiling)


def retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds a ``Retry-After`` header asks to wait: delay-seconds or an HTTP date;
    None when absent or unreadable.

    Example:
        >>> now = datetime(2026, 1, 1, tzinfo=UTC)
        >>> retry_after("7", now), retry_after("Thu, 01 Jan 2026 00:00:30 GMT", now)
        (7.0, 30.0)
        >>> retry_after("soon", now) is None
        True
    """
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(min(int(text), 366 * 86_400))
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


class HttpSender:
    """The default :data:`Sender`: httpx, no redirects, no proxies from the environment
    (a proxy would reach addresses the guard never saw), connecting to the checked
    address (``Host`` and TLS's server name stay the URL's host, so certificates are
    checked against it). Tries the next checked address only when the connection
    itself failed (nothing was sent).

    Example:
        >>> sender = HttpSender()
        >>> reply = sender(Outbound("http://127.0.0.1:9/x", b"{}", {}, 0.5, ("127.0.0.1",)))
        >>> reply.status, reply.error.startswith("cannot connect to 127.0.0.1")
        (None, True)
        >>> sender.close()
    """

    def __init__(self) -> None:
        self._client = httpx.Client(follow_redirects=False, trust_env=False)

    def close(self) -> None:
        """Close the connections."""
        self._client.close()

    def __call__(self, outbound: Outbound) -> Reply:
        url = httpx.URL(outbound.url)
        headers = {**outbound.headers, "Host": url.netloc.decode("ascii")}
        extensions: dict[str, Any] = {}
        if url.scheme == "https":
            extensions["sni_hostname"] = url.host
        error = "no address to connect to"
        for address in outbound.addresses or (None,):
            pinned = url.copy_with(host=address) if address else url
            try:
                with self._client.stream(
                    "POST",
                    pinned,
                    content=outbound.body,
                    headers=headers,
                    timeout=outbound.timeout,
                    extensions=extensions,
                ) as response:
                    answer = b""
                    if not response.is_success:
                        for chunk in response.iter_bytes():
                            answer += chunk
                            if len(answer) >= _ANSWER_BYTES:
                                break
                    return Reply(
                        response.status_code,
                        response.headers.get("retry-after"),
                        None
                        if response.is_success
                        else f"HTTP {response.status_code}: "
                        + answer[:_ANSWER_BYTES].decode("utf-8", "replace").strip(),
                    )
            except httpx.ConnectError as exc:  # nothing sent: the next address may answer
                error = f"cannot connect to {pinned.host}: {exc}"
            except httpx.TimeoutException as exc:
                kind = type(exc).__name__
                return Reply(None, error=f"timed out after {outbound.timeout:g} s ({kind})")
            except httpx.HTTPError as exc:
                return Reply(None, error=f"{type(exc).__name__}: {exc}")
        return Reply(None, error=error)


@dataclass
class _Pass:
    attempted: int = 0
    delivered: int = 0
    retrying: int = 0
    dead: int = 0
    down: set[str] = field(default_factory=set)

    def counts(self) -> dict[str, int]:
        return {
            "attempted": self.attempted,
            "delivered": self.delivered,
            "retrying": self.retrying,
            "dead": self.dead,
        }


class DeliveryWorker:
    """Delivers the alert outbox of ``store`` to the targets of ``settings``.

    Args:
        store: the event store, or a function returning the current one (the
            service's writer may replace a failed store).
        settings: targets, ``timeout``, ``max_age``, ``allow_private``.
        sender: sends one request (:class:`HttpSender` by default).
        clock: the time of each pass of the thread (default: now, UTC).
        rng: the jitter's randomness.
        resolver: resolves host names for the address check (the system's).
        poll: seconds between passes of the thread at most (it also wakes
            when :meth:`wake` is called and when the next row is due).
        batch: rows sent per pass at most.
        backoff_base, backoff_cap: the retry backoff's (seconds; :func:`backoff`).
    """

    def __init__(
        self,
        store: Any,
        settings: AlertingSettings,
        *,
        sender: Sender | None = None,
        clock: Callable[[], datetime] | None = None,
        rng: random.Random | None = None,
        resolver: Resolver | None = None,
        poll: float = 1.0,
        batch: int = 100,
        backoff_base: float = BACKOFF_BASE,
        backoff_cap: float = BACKOFF_CAP,
    ) -> None:
        self._store = store if callable(store) and not hasattr(store, "cursor") else (lambda: store)
        self.settings = settings
        self._own_sender = sender is None
        self.sender: Sender = sender or HttpSender()
        self.clock = clock or (lambda: datetime.now(UTC))
        self.rng = rng or random.Random()
        self.resolver = resolver
        self.poll = poll
        self.batch = batch
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        #: The last pass: its counts, or the error that ended it.
        self.last: dict[str, Any] | None = None

    @property
    def store(self) -> Any:
        return self._store()

    # --- one pass ---------------------------------------------------------------------

    def deliver_due(self, now: datetime | None = None) -> dict[str, int]:
        """Dead-letter expired rows, then send every due row once, as of ``now`` (default:
        the clock); the counts of the pass: ``attempted``, ``delivered``, ``retrying``
        (failed, to be retried) and ``dead`` (dead-lettered in this pass).

        Example:
            >>> from xebench.store import EventStore
            >>> DeliveryWorker(EventStore(":memory:"), AlertingSettings(),
            ...                sender=lambda r: Reply(200)).deliver_due()
            {'attempted': 0, 'delivered': 0, 'retrying': 0, 'dead': 0}
        """
        now = now or self.clock()
        store = self.store
        expired = store.write_transaction(
            lambda con: dead_letter_expired(con, now, self.settings.max_age)
        )
        done = _Pass(dead=len(expired))
        if expired:
            log.error("alert notifications dead-lettered after max_age", extra={"ids": expired})
        with store.cursor() as cursor:
            entries = due_entries(cursor, now, self.batch)
        for entry in entries:
            if entry.target in done.down:
                continue
            self._deliver(store, entry, now, done)
        return done.counts()

    def _deliver(self, store: Any, entry: OutboxEntry, now: datetime, done: _Pass) -> None:
        done.attempted += 1
        target = self.settings.target(entry.target)
        if target is None:
            reply = Reply(None, error=f"target {entry.target!r} is no longer configured")
        else:
            try:
                addresses = self.settings.allow_private.check_url(target.endpoint, self.resolver)
            except ConfigError as exc:  # refused: DNS changed since the config was loaded
                reply = Reply(None, error=f"refused: {exc}")
            else:
                reply = self._send(target, entry, now, addresses)
        self._record(store, entry, reply, now, done)

    def _send(
        self, target: Target, entry: OutboxEntry, now: datetime, addresses: tuple[str, ...]
    ) -> Reply:
        body = entry.payload
        if target.kind == "alertmanager" and entry.kind != "resolved":
            # A firing alert ends 4 resend intervals after it is posted, not after it was
            # enqueued: a post delayed by an outage must not arrive already expired.
            alerts = json.loads(body)
            ends = now + 4 * target.resend_interval
            for alert in alerts:
                alert["endsAt"] = (
                    ends.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="seconds") + "Z"
                )
            body = json.dumps(alerts, separators=(",", ":"))
        headers = {
            **target.headers,
            "Content-Type": "application/json",
            "User-Agent": f"xebench/{__version__}",
            "Idempotency-Key": entry.idempotency_key,
        }
        outbound = Outbound(
            target.endpoint, body.encode(), headers, self.settings.timeout, addresses
        )
        try:
            return self.sender(outbound)
        except Exception as exc:  # a sender bug must not stop the outbox
            log.exception("alert sender raised")
            return Reply(None, error=f"{type(exc).__name__}: {exc}")

    def _record(
        self, store: Any, entry: OutboxEntry, reply: Reply, now: datetime, done: _Pass
    ) -> None:
        status, error = reply.status, reply.error
        failures = entry.attempts + 1
        outcome: dict[str, Any] = {}
        if status is not None and 200 <= status < 300:
            outcome["delivered_at"] = now
            error = None
            done.delivered += 1
        elif status is not None and status not in _RETRYABLE and status < 500:
            outcome["dead_at"] = now
            error = (error or f"HTTP {status}") + " (not retried)"
            done.dead += 1
            log.error(
                "alert notification refused by its target; dead-lettered",
                extra={"id": entry.id, "target": entry.target, "status": status},
            )
        else:
            wait = retry_after(reply.retry_after, now) if status in (429, 503) else None
            if wait is None:
                wait = backoff(failures, self.rng, self.backoff_base, self.backoff_cap)
            outcome["next_attempt_at"] = now + timedelta(seconds=wait)
            error = error or f"HTTP {status}"
            done.retrying += 1
            if status is None:
                done.down.add(entry.target)
            log.warning(
                "alert notification failed; retrying",
                extra={"id": entry.id, "target": entry.target, "error": error, "in_s": wait},
            )
        store.write_transaction(
            lambda con: record_attempt(con, entry.id, status=status, error=error, **outcome)
        )

    # --- the thread ---------------------------------------------------------------------

    def wake(self) -> None:
        """Run a pass now (new rows were enqueued)."""
        self._wake.set()

    def start(self) -> DeliveryWorker:
        """Deliver in a daemon thread until :meth:`stop`; returns self."""
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._run, name="xebench-alert-delivery", daemon=True
            )
            self._thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the thread (a request in flight finishes or times out first); the rows it
        did not settle stay in the outbox for the next start."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        if self._own_sender and isinstance(self.sender, HttpSender):
            self.sender.close()
            self.sender = HttpSender()

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                self.last = {"at": self.clock().isoformat(), **self.deliver_due()}
            except Exception as exc:  # a closed or failed store: try again next pass
                log.exception("alert delivery pass failed")
                error = f"{type(exc).__name__}: {exc}"
                self.last = {"at": self.clock().isoformat(), "error": error}
            self._wake.wait(self._wait())

    def _wait(self) -> float:
        """Seconds until the next row is due, within (0.01 s, poll)."""
        with contextlib.suppress(Exception):
            with self.store.cursor() as cursor:
                due = next_due(cursor)
            if due is not None:
                return min(self.poll, max(0.01, (due - self.clock()).total_seconds()))
        return self.poll
