"""``xebench ingest --url``: file chunks sent through a running ``xebench serve``.

The files are read and mapped to events by :mod:`xebench.ingest` exactly as
for a local import (:func:`~xebench.ingest.files.import_predictions` takes an
:class:`HttpTarget` where it would take an :class:`~xebench.store.EventStore`);
here each chunk is POSTed through the client's
:class:`~xebench.client.transport.Transport`, retried under its one policy,
and the server's answers (413, 422, 409) are mapped back to file rows.

Example:
    >>> import httpx, json, pathlib, tempfile
    >>> from xebench.ingest.files import import_labels
    >>> def server(request):
    ...     n = len(json.loads(request.content))
    ...     return httpx.Response(200, json={"inserted": n, "duplicates": 0, "pending": n})
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "labels.csv"
    >>> _ = path.write_text("request_id,label\\nr1,1\\nr2,0\\n")
    >>> with httpx.Client(transport=httpx.MockTransport(server)) as http:
    ...     target = HttpTarget("http://xebench.test", client=http)
    ...     print(import_labels(path, target).line(target.url))
    imported 2 labels from 1 file(s) into http://xebench.test: 2 new, 0 duplicates, 0 joined, \
2 pending
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from ..errors import XebenchError
from ..ingest.targets import (
    Problems,
    Rejected,
    Sent,
    conflict_message,
    first_problem,
    relative_pointer,
)
from .transport import RetryPolicy, Transport

__all__ = ["HTTP_BATCH_EVENTS", "HttpTarget"]

#: Events per request when sending through a server (its default limit is 10,000).
HTTP_BATCH_EVENTS = 5_000


class HttpTarget:
    """Send events through a running ``xebench serve`` instead of opening its database.

    Events are POSTed as JSON arrays of at most ``batch_events`` to
    ``URL/v1/predictions`` or ``URL/v1/labels``. Transport errors and 429,
    502, 503 and 504 answers are retried under the client's policy
    (:mod:`xebench.client.transport`: full-jitter backoff from 0.5 s, at least
    ``Retry-After``), up to ``max_retries`` times; a resend is safe because
    identical events are counted once. A 413 (body too large) splits the batch in two.
    A 422 or 409 answer is mapped back to the file row it came from. The
    token, if any, decides the tenant.

    Example:
        >>> target = HttpTarget("http://127.0.0.1:8000/", token="xeb_...")
        >>> target.url
        'http://127.0.0.1:8000'
        >>> target.close()
    """

    def __init__(
        self,
        url: str,
        token: str | None = None,
        *,
        batch_events: int = HTTP_BATCH_EVENTS,
        max_retries: int = 10,
        timeout: float = 120.0,
        client: httpx.Client | None = None,
        sleep: Callable[[float], object] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        if batch_events < 1:
            raise ValueError(f"batch_events must be >= 1; got {batch_events!r}")
        self.batch_events = batch_events
        # The client's policy with a first backoff of 0.5 s, as before; bodies are not gzipped
        # (the usual server is on the same machine: compressing would cost more than it saves).
        self.transport = Transport(
            url,
            token,
            timeout=timeout,
            connect_timeout=10.0,
            policy=RetryPolicy(max_retries=max_retries, backoff_base=0.5),
            gzip=False,
            client=client,
            sleep=sleep,
            rng=rng,
        )
        self.url = self.transport.url

    def __enter__(self) -> HttpTarget:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the HTTP connection pool (when this target created it)."""
        self.transport.close()

    def check(self) -> None:
        """Fail fast, with a clear message, when nothing answers at the URL."""
        try:
            response = self.transport.get("/healthz")
        except httpx.HTTPError as error:
            raise XebenchError(f"cannot reach the server at {self.url}: {error}") from None
        if response.status_code != 200:
            raise XebenchError(
                f"{self.url}/healthz answered {response.status_code}: is this an xebench server?"
            )

    def send(self, kind: str, events: list[dict[str, Any]], problems: Problems) -> Sent:
        """POST ``events`` in batches; raises :class:`Rejected` for the first refused event."""
        if problems:
            raise first_problem(problems)
        total = Sent()
        for start in range(0, len(events), self.batch_events):
            try:
                total += self._send_batch(kind, events[start : start + self.batch_events])
            except Rejected as rejected:
                raise rejected.shifted(start) from None
        return total

    def _send_batch(self, kind: str, events: list[dict[str, Any]]) -> Sent:
        try:
            body = json.dumps(events, allow_nan=False, separators=(",", ":"), default=str)
        except ValueError:  # NaN or infinity: JSON cannot carry them
            index, pointer = next(
                ((i, p) for i, e in enumerate(events) if (p := _non_finite(e)) is not None),
                (0, "/probabilities"),
            )
            what = {"probabilities": "probabilities", "cohort": "cohort values"}.get(
                pointer.split("/")[1], "feature values"
            )
            raise Rejected(
                index, pointer, f"{what} must be finite (NaN and infinity are refused)"
            ) from None
        outcome = self.transport.send("POST", f"/v1/{kind}", body.encode())
        if outcome.status == 413 and len(events) > 1:
            half = len(events) // 2
            first = self._send_batch(kind, events[:half])
            try:
                second = self._send_batch(kind, events[half:])
            except Rejected as rejected:
                raise rejected.shifted(half) from None
            return first + second
        if outcome.response is None:  # retries ran out without an answer
            error = outcome.exception or outcome.error
            raise Rejected(None, None, f"cannot reach the server at {self.url}: {error}")
        return self._result(outcome.response)

    def _result(self, response: httpx.Response) -> Sent:
        status = response.status_code
        try:
            payload = response.json()
        except ValueError:
            payload = {}
        if not isinstance(payload, dict):
            payload = {}
        if status == 200:
            return Sent(
                int(payload.get("inserted", 0)),
                int(payload.get("duplicates", 0)),
                int(payload.get("joined", 0)),
                int(payload.get("pending", 0)),
            )
        detail = str(payload.get("detail") or response.text[:200] or response.reason_phrase)
        if status == 422 and payload.get("errors"):
            found = [
                (
                    int(e["index"]),
                    relative_pointer(str(e.get("field", ""))),
                    str(e.get("message", "")),
                )
                for e in payload["errors"]
                if isinstance(e, dict) and isinstance(e.get("index"), int)
            ]
            if found:
                raise first_problem({}, found)
        if status == 409 and payload.get("conflicts"):
            conflicts = [c for c in payload["conflicts"] if isinstance(c, dict)]
            first = min(conflicts, key=lambda c: int(c.get("index", 0)))
            raise Rejected(
                int(first.get("index", 0)),
                "/request_id",
                conflict_message(str(first.get("model", "")), str(first.get("request_id", ""))),
                more=len(conflicts) - 1,
            )
        hint = ""
        if status in (401, 403):
            hint = " (pass --token TOKEN or set XEBENCH_TOKEN; the token needs the ingest scope)"
        raise Rejected(None, None, f"the server answered {status}: {detail}{hint}")


def _non_finite(event: Mapping[str, Any]) -> str | None:
    """JSON pointer of the first NaN / infinite number of an event, or None."""

    def bad(value: Any) -> bool:
        return isinstance(value, float) and not math.isfinite(value)

    probabilities = event.get("probabilities")
    if bad(probabilities):
        return "/probabilities"
    if isinstance(probabilities, list):
        for i, value in enumerate(probabilities):
            if bad(value):
                return f"/probabilities/{i}"
    if isinstance(probabilities, dict):
        for name, value in probabilities.items():
            if bad(value):
                return f"/probabilities/{name}"
    for part in ("cohort", "features"):
        for name, value in (event.get(part) or {}).items():
            if bad(value):
                return f"/{part}/{name}"
    return None
