"""Sending prediction and label events to a running ``xebench serve``.

:class:`Client` is made for the request path of a model server: ``log_prediction``
and ``log_label`` check the event, put it on a bounded in-memory buffer and
return; one background thread per client batches the events per endpoint and
POSTs them (``/v1/predictions``, ``/v1/labels``), retrying with exponential
backoff and full jitter until the server acknowledges them (the buffer and the
worker: :mod:`xebench.client.sender`; the HTTP side:
:mod:`xebench.client.transport`)::

    client = Client("http://127.0.0.1:8000", token=os.environ["XEBENCH_TOKEN"])
    client.log_prediction(request_id, p, model="fraud", version="v7")
    ...                                     # later, perhaps much later
    client.log_label(request_id, is_fraud, model="fraud")

Delivery rules, in short:

- A 200 answer means the batch is durably committed. Re-sending identical
  events is idempotent on the server (counted as ``duplicates``), so a batch
  whose answer was lost (timeout, dropped connection) is simply sent again:
  delivery is at least once on the wire and exactly once in the store.
- Connection errors, timeouts, 429, 502, 503 and 504 are retried, waiting at
  least the server's ``Retry-After``, under the one policy of
  :mod:`xebench.client.transport` (``xebench ingest --url`` uses the same).
  Other answers are permanent for that batch:
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

import math
import random
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import quote

import httpx

from ..errors import ClientError, InvalidInputError
from ..ingest.events import check_event
from .encoding import json_value, reference_body, request_id_value, timestamp_value
from .sender import Kind, Sender
from .transport import Outcome, RetryPolicy, Transport, answer_of, summary

__all__ = ["Client", "ClientError"]


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


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
            jitter"), and at least the server's ``Retry-After`` (believed up to
            60 s); see :mod:`xebench.client.transport` for what is retried.
        close_timeout: default time :meth:`close` (and interpreter exit) gives
            the remaining events; also the give-up time of ``send_*`` when
            ``max_retries`` is None.
        transport: an ``httpx`` transport, e.g. ``httpx.MockTransport`` in tests.
        gzip: gzip request bodies of at least 1 KiB.
        rng: the source of jitter (``random.Random``); for reproducible tests.
        sleep: called with the delay instead of waiting between retries; for tests.
        clock: monotonic seconds (``time.monotonic``), read for batch ages and
            deadlines; for tests, a fake clock (with ``sleep`` advancing it).

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
        clock: Callable[[], float] | None = None,
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
        policy = RetryPolicy(max_retries, float(backoff_base), float(backoff_max))
        self._transport = Transport(
            url,
            token,
            timeout=float(timeout),
            policy=policy,
            gzip=gzip,
            transport=transport,
            sleep=time.sleep if sleep is None else sleep,
            rng=rng,
            clock=time.monotonic if clock is None else clock,
        )
        self._core = Sender(
            self._transport,
            batch_size=batch_size,
            flush_interval=float(flush_interval),
            max_buffer=max_buffer,
            max_block=float(max_block),
            close_timeout=float(close_timeout),
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
        weight: float | None = None,
    ) -> None:
        """Queue one prediction event; returns at once (see ``max_block``).

        ``probabilities`` is P(class 1) for a binary model, a sequence with one
        probability per class (``classes``, or ``0..k-1``), or a mapping
        ``{label: p}``; NumPy values are fine. ``timestamp`` defaults to now;
        it must carry a timezone. ``weight`` is the event's business weight in
        every window statistic (a number > 0; None sends none: 1). Raises ``ValueError``
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
            ...                           version="v2", features={"age": 3.5}, weight=2.5,
            ...                           timestamp="2026-01-01T12:00:00+01:00")
            ...     client.log_prediction("r2", float("nan"), model="pets")
            Traceback (most recent call last):
            ...
            xebench.errors.InvalidInputError: probabilities: probabilities must be finite (NaN
            and infinity are refused); got nan
        """
        event: dict[str, Any] = {
            "request_id": request_id_value(request_id),
            "model": json_value("model", model),
            "version": json_value("version", version),
            "timestamp": timestamp_value(timestamp),
            "probabilities": json_value("probabilities", probabilities),
        }
        if classes is not None:
            event["classes"] = json_value("classes", classes, labels=True)
        if cohort is not None:
            event["cohort"] = json_value("cohort", cohort)
        if features is not None:
            event["features"] = json_value("features", features)
        if weight is not None:
            event["weight"] = json_value("weight", weight)
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
            (no control, bidirectional-override or lone surrogate characters); got ''
        """
        event: dict[str, Any] = {"request_id": request_id_value(request_id)}
        if model is not None:
            event["model"] = json_value("model", model)
        event["label"] = json_value("label", label, labels=True)
        event["timestamp"] = timestamp_value(timestamp)
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

        Events still buffered at the deadline are counted as ``dropped``; a
        batch in flight then is counted when its request ends (``sent`` if the
        server acknowledges it after all, else ``dropped``).
        Returns what :meth:`flush` would. Calling it again does nothing more;
        ``log_*`` after close drops (and counts) the event.

        Example:
            >>> import httpx, threading
            >>> attempts, retried = [], threading.Event()
            >>> def down(request):  # a server that is down; the second try means one was read
            ...     attempts.append(request)
            ...     if len(attempts) == 2:
            ...         retried.set()
            ...     return httpx.Response(503)
            >>> client = Client("http://xebench.test", transport=httpx.MockTransport(down),
            ...                 backoff_max=0.01)
            >>> client.log_label("r1", 1)
            >>> client.flush(timeout=0)  # start sending now, without waiting
            False
            >>> retried.wait(30)
            True
            >>> client.close(timeout=0.05)
            False
            >>> client.stats()["last_error"]
            'HTTP 503'
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
            xebench.errors.ClientError: HTTP 422: 1 of 1 events is invalid
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

    def send_sequences(self, events: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """POST a language model's scored sequences (``/v1/lm/tokens``: ``request_id``,
        ``model``, ``token_logprobs``, ``text`` or ``n_bytes``...) now, in one request, and
        return the server's answer. Same rules as :meth:`send_predictions`.

        Example:
            >>> import httpx
            >>> def server(request):
            ...     assert request.url.path == "/v1/lm/tokens"
            ...     return httpx.Response(200, json={"accepted": 1, "inserted": 1, "duplicates": 0})
            >>> with Client("http://xebench.test", transport=httpx.MockTransport(server)) as c:
            ...     c.send_sequences([{"request_id": "s1", "model": "chat", "text": "hi",
            ...                        "token_logprobs": [-0.5, -1.25]}])["inserted"]
            1
        """
        return self._send("lm/tokens", events)

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
        body, headers = reference_body(data, name)
        core, deadline = self._core, self._give_up_at()
        path = f"/v1/references/{quote(str(model), safe='')}"
        return _answer_or_raise(core, core.send("PUT", path, body, headers, False, deadline))

    def status(self) -> dict[str, Any]:
        """``GET /v1/status``: the ingestion health of this client's tenant (pending
        labels, orphans, arrival rates, ingest lag, queue depth, stored events,
        retention horizon). One request, not retried; :class:`ClientError` when it is
        not answered 200.

        Example:
            >>> import httpx
            >>> answer = {"tenant": "default", "pending_labels": 3, "orphans": 1}
            >>> server = httpx.MockTransport(lambda request: httpx.Response(200, json=answer))
            >>> with Client("http://xebench.test", transport=server) as client:
            ...     client.status()["pending_labels"]
            3
        """
        try:
            response = self._transport.get("/v1/status")
        except httpx.HTTPError as error:
            raise ClientError(f"GET /v1/status: no answer: {error}") from None
        body = answer_of(response)
        if response.status_code != 200 or not isinstance(body, dict):
            raise ClientError(
                summary(response.status_code, body), status=response.status_code, body=body
            )
        return body

    def _give_up_at(self) -> float | None:
        """When ``send_*`` stops retrying: ``close_timeout`` from now, unless retries are counted.

        Raises :class:`ClientError` once the client is closed.
        """
        core = self._core
        if core.closing:
            raise ClientError("the client is closed")
        if self._transport.policy.max_retries is not None:
            return None
        return core.clock() + core.close_timeout

    def _send(self, kind: Kind, events: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        if isinstance(events, Mapping) or not isinstance(events, Sequence) or not events:
            raise InvalidInputError("events", "must be a non-empty list of event dicts")
        if any(not isinstance(event, Mapping) for event in events):
            raise InvalidInputError("events", "every event must be a dict")
        core, deadline = self._core, self._give_up_at()
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


def _answer_or_raise(core: Sender, outcome: Outcome) -> dict[str, Any]:
    """The answer of an acknowledged request; :class:`ClientError` otherwise."""
    if outcome.state == "ok":
        return outcome.body if isinstance(outcome.body, dict) else {}
    if outcome.state == "refused":
        message = summary(outcome.status, outcome.body)
        with core.lock:
            core.last_error = message
        raise ClientError(message, status=outcome.status, body=outcome.body)
    raise ClientError(
        f"no acknowledgement, gave up retrying: {outcome.error}", status=outcome.status
    )
