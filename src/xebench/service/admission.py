"""Admission control: refuse work the server cannot finish in time, before it costs anything.

A single process validates and writes every event, so more concurrency only
lengthens a queue (and holds more bodies in memory). :class:`Admission`
bounds what is *in flight* -- admitted and not yet answered -- two ways:

- **bytes**: the bodies held (counted after decompression, reserved before
  they are read: the declared ``Content-Length`` first, then as a chunked
  body or a gzip stream grows), at most ``max_bytes``. This is what bounds
  the server's memory whatever the number of connections;
- **large bodies**: one body over ``large_bytes`` (4 MiB) at a time. Validating,
  writing and folding a body needs ~10x its size at its peak (Python objects,
  the Arrow table, DuckDB's copies: a 10 MiB body of 10,000 events took the
  server from 173 to 440-540 MB alone), so three 13 MiB bodies, well within
  the byte budget, would still cost ~400 MB together;
- **CPU time**: each request costs its bytes plus ``request_cost`` (the fixed
  work of an HTTP request, in bytes of events), and the server measures how
  much cost it completes per second while it is busy. In-flight cost divided
  by that rate is the time the last admitted request will wait; past
  ``max_seconds`` the next one is refused.

A refusal raises :class:`~xebench.errors.WriterBusy` (HTTP 429 with
``Retry-After``) at once, before the body is read or parsed, so an
overloaded server answers quickly instead of queueing. One request is always
admitted when nothing is in flight, whatever its size (within the body limit).

Example:
    >>> admission = Admission(max_bytes=1000, max_seconds=1.0, rate=10_000, request_cost=0)
    >>> first = admission.admit(600)
    >>> admission.admit(600)
    Traceback (most recent call last):
    ...
    xebench.errors.WriterBusy: the server is at capacity (600 bytes in flight); retry in 1 s
    >>> admission.release(first)
    >>> admission.release(admission.admit(600))
    >>> admission.in_flight_bytes
    0
    >>> big = Admission(large_bytes=100).admit(500)  # one body over large_bytes at a time
    >>> big.large
    True
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import WriterBusy

__all__ = ["Admission", "Ticket"]


@dataclass
class Ticket:
    """What one admitted request holds: its bytes and its cost (bytes + the request cost).

    Example:
        >>> Ticket(10, 4106).size
        10
    """

    size: int
    cost: int
    released: bool = False
    large: bool = False  # holds the one place for a body over ``large_bytes``


class Admission:
    """Bounds in-flight bytes and estimated seconds of work; thread-safe (see the module).

    Args:
        max_bytes: body bytes in flight at most (after decompression).
        max_seconds: estimated seconds of work in flight at most.
        rate: the first estimate of the cost completed per second (bytes/s),
            replaced by measurements once the server has been busy.
        request_cost: the fixed cost of one request, in bytes of body.
        retry_after: the ``Retry-After`` of a refusal, seconds.
        large_bytes: a body over this many bytes is refused while another such body
            is in flight.
        clock: monotonic seconds (tests pass a fake one).
    """

    def __init__(
        self,
        *,
        max_bytes: int = 48 * 1024 * 1024,
        max_seconds: float = 0.5,
        rate: float = 20e6,
        request_cost: int = 8192,
        retry_after: float = 1.0,
        large_bytes: int = 4 * 1024 * 1024,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_bytes = max_bytes
        self.max_seconds = max_seconds
        self.request_cost = request_cost
        self.retry_after = retry_after
        self.large_bytes = large_bytes
        self._large = 0  # large bodies in flight (0 or 1)
        self.rate = rate
        self._floor = rate / 100  # a measurement over a stall must not shut the door
        self._clock = clock
        self._lock = threading.Lock()
        self._bytes = 0
        self._cost = 0
        self._count = 0
        self.refused = 0
        # The rate is measured over the time something was in flight.
        self._busy = 0.0
        self._done = 0
        self._since = clock()

    @property
    def in_flight_bytes(self) -> int:
        """Body bytes admitted and not yet released."""
        return self._bytes

    @property
    def in_flight_seconds(self) -> float:
        """The estimated seconds of work admitted and not yet released."""
        return self._cost / self.rate

    def _tick(self, now: float) -> None:
        """Count busy time; every 0.5 s of it, move the rate half-way to the one measured."""
        if self._count:
            self._busy += now - self._since
        self._since = now
        if self._busy >= 0.5 and self._done:
            measured = self._done / self._busy
            self.rate = max(0.5 * self.rate + 0.5 * measured, self._floor)
            self._busy, self._done = 0.0, 0

    @staticmethod
    def _reason(what: str) -> str:
        return f"the server is at capacity ({what} in flight)"

    def _check_large(self) -> None:
        if self._large:
            self.refused += 1
            raise WriterBusy(
                self.retry_after, self._reason(f"a body over {self.large_bytes} bytes")
            )

    def _check(self, size: int, cost: int) -> None:
        if self._count and self._bytes + size > self.max_bytes:
            self.refused += 1
            raise WriterBusy(self.retry_after, self._reason(f"{self._bytes} bytes"))
        if self._count and (self._cost + cost) / self.rate > self.max_seconds:
            self.refused += 1
            raise WriterBusy(
                self.retry_after, self._reason(f"~{self._cost / self.rate:.2f} s of work")
            )

    def admit(self, size: int) -> Ticket:
        """Admit a request of ``size`` bytes (its declared length; 0 when unknown) or raise
        :class:`~xebench.errors.WriterBusy`."""
        cost = size + self.request_cost
        large = size > self.large_bytes
        with self._lock:
            self._tick(self._clock())
            if large:
                self._check_large()
            self._check(size, cost)
            self._bytes += size
            self._cost += cost
            self._count += 1
            self._large += large
        return Ticket(size, cost, large=large)

    def grow(self, ticket: Ticket, size: int) -> None:
        """Reserve more bytes for an admitted request (its body turned out larger: chunked,
        or decompressed) or raise :class:`~xebench.errors.WriterBusy`; ``ticket`` keeps
        what it held until it is released."""
        extra = size - ticket.size
        if extra <= 0:
            return
        with self._lock:
            becomes_large = not ticket.large and size > self.large_bytes
            if becomes_large:
                self._check_large()
            if self._count > 1:  # alone, a request may use the whole body limit
                self._check(extra, extra)
            if becomes_large:
                ticket.large = True
                self._large += 1
            self._bytes += extra
            self._cost += extra
            ticket.size += extra
            ticket.cost += extra

    def release(self, ticket: Ticket) -> None:
        """The request is answered: its bytes and cost are free (once; later calls do nothing)."""
        with self._lock:
            if ticket.released:
                return
            ticket.released = True
            self._done += ticket.cost
            self._tick(self._clock())
            self._bytes -= ticket.size
            self._cost -= ticket.cost
            self._count -= 1
            self._large -= ticket.large
