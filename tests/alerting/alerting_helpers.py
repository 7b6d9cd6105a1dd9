"""Helpers of the alerting tests: SLO statuses built by hand, a real HTTP receiver on
127.0.0.1 whose behaviour the test sets, and a real Alertmanager process.

The statuses have the fields :class:`xebench.monitor.slo.SLOStatus` gives the
lifecycle (``slo``, ``conditions``, ``evidence``), so these tests do not depend
on the evaluator.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from xebench.analysis.slo import DEFAULT_BURN_ALERTS, SLO, BurnCondition

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
ALERTMANAGER = shutil.which("prometheus-alertmanager") or (
    "/usr/bin/prometheus-alertmanager"
    if Path("/usr/bin/prometheus-alertmanager").exists()
    else None
)
IN_CI = os.environ.get("CI", "").lower() in {"1", "true"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def slo(name: str = "fraud-ll", **extra: Any) -> SLO:
    """An SLO with the SRE workbook's burn alerts (two page conditions, one ticket)."""
    fields: dict[str, Any] = {
        "model": "fraud",
        "sli": "log_loss",
        "objective": 0.3,
        "runbook": "https://runbooks.example/fraud",
        **extra,
    }
    return SLO(name, **fields)


def status(
    objective: SLO, *, page: int = 0, ticket: bool = False, sli_value: float = 0.41
) -> SimpleNamespace:
    """A status in which the first ``page`` page conditions (0, 1 or 2) and, with
    ``ticket``, the ticket condition hold."""
    pages = [a for a in DEFAULT_BURN_ALERTS if a.severity == "page"]
    conditions = [
        BurnCondition(a, i < page, 20.0 if i < page else 0.5, 30.0 if i < page else 0.2)
        for i, a in enumerate(pages)
    ]
    conditions += [
        BurnCondition(a, ticket, 2.0 if ticket else 0.1, 3.0 if ticket else 0.1)
        for a in DEFAULT_BURN_ALERTS
        if a.severity == "ticket"
    ]
    evidence = {
        "sli": objective.sli,
        "sli_value": sli_value,
        "sli_ci": [sli_value - 0.02, sli_value + 0.02],
        "n": 1200,
        "coverage": 0.93,
        "label_lag_p50_s": 41.0,
        "burn_rates": {"5m": 30.0, "30m": 25.0, "1h": 20.0, "6h": 8.0, "3d": 1.2},
        "top_drift": [{"feature": "amount", "js": 0.12}],
        "versions": ["v7"],
        "runbook": objective.runbook,
    }
    return SimpleNamespace(slo=objective, conditions=conditions, evidence=evidence)


# --- a receiver we control ---------------------------------------------------------


@dataclass
class Request:
    path: str
    key: str | None
    body: Any
    mode: str
    headers: dict[str, str]


@dataclass
class Receiver:
    """A threaded HTTP server on 127.0.0.1 (a fixed port, so it can go down and come back).

    ``mode``: ``ok`` (200), ``error`` (500), ``throttle`` (429 with ``Retry-After:
    retry_after``), ``unavailable`` (503 with it), ``slow`` (answers 200 after
    ``delay`` seconds, when the sender has given up), ``refuse`` (400), ``redirect``
    (302 to the cloud metadata address). A request is
    *accepted* only when answered 200 in ``ok`` mode: what a receiver that dedups by
    ``Idempotency-Key`` would act on.
    """

    port: int = field(default_factory=free_port)
    mode: str = "ok"
    retry_after: str = "30"
    delay: float = 1.5
    requests: list[Request] = field(default_factory=list)
    accepted: Counter[str] = field(default_factory=Counter)
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                mode = receiver.mode
                key = self.headers.get("Idempotency-Key")
                with receiver._lock:
                    receiver.requests.append(
                        Request(self.path, key, json.loads(raw or b"null"), mode,
                                dict(self.headers.items()))
                    )  # fmt: skip
                    if mode == "ok" and key is not None:
                        receiver.accepted[key] += 1
                if mode == "slow":
                    time.sleep(receiver.delay)
                status = {"ok": 200, "slow": 200, "error": 500, "throttle": 429,
                          "unavailable": 503, "refuse": 400, "redirect": 302}[mode]  # fmt: skip
                with contextlib.suppress(OSError):  # a slow answer's client is gone
                    self.send_response(status)
                    if mode in {"throttle", "unavailable"}:
                        self.send_header("Retry-After", receiver.retry_after)
                    if mode == "redirect":
                        self.send_header("Location", "http://169.254.169.254/latest/meta-data")
                    body = b'{"status": "ok"}' if status == 200 else b"busy"
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        self._server = server
        return self

    def stop(self) -> None:
        """Down: nothing listens on the port (connections are refused)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def keys(self) -> list[str | None]:
        return [r.key for r in self.requests]


@contextlib.contextmanager
def receiver(**options: Any) -> Iterator[Receiver]:
    running = Receiver(**options).start()
    try:
        yield running
    finally:
        running.stop()


# --- a real Alertmanager ---------------------------------------------------------------


def alertmanager_binary() -> str:
    """The Alertmanager binary; a skip where it is missing, a failure under CI."""
    if ALERTMANAGER is None:
        message = "prometheus-alertmanager is not installed"
        if IN_CI:
            pytest.fail(f"{message}, but CI is set (Debian's prometheus-alertmanager)")
        pytest.skip(message)
    return ALERTMANAGER


def _get(url: str, timeout: float = 2.0) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=timeout) as answer:
        return answer.status, answer.read()


@contextlib.contextmanager
def alertmanager(tmp: Path, webhook_url: str) -> Iterator[str]:
    """Alertmanager on a free loopback port, routing everything to ``webhook_url`` at
    once (and its resolves); yields its base URL; killed when the block ends."""
    binary = alertmanager_binary()
    port = free_port()
    config = tmp / "alertmanager.yml"
    config.write_text(
        "route:\n"
        "  receiver: xebench-test\n"
        "  group_by: [alertname, slo, severity]\n"
        "  group_wait: 0s\n"
        "  group_interval: 1s\n"
        "  repeat_interval: 1h\n"
        "receivers:\n"
        "  - name: xebench-test\n"
        "    webhook_configs:\n"
        f"      - url: {webhook_url}\n"
        "        send_resolved: true\n",
        encoding="utf-8",
    )
    log = (tmp / "alertmanager.log").open("wb")
    process = subprocess.Popen(
        [
            binary,
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
            f"--storage.path={tmp / 'am-data'}",
            f"--config.file={config}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, (tmp / "alertmanager.log").read_text()
            with contextlib.suppress(OSError):
                if _get(f"{base}/-/ready")[0] == 200:
                    break
            assert time.monotonic() < deadline, "Alertmanager did not become ready"
            time.sleep(0.1)
        yield base
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        log.close()


def alertmanager_alerts(base: str) -> list[dict[str, Any]]:
    """``GET /api/v2/alerts`` (the alerts Alertmanager holds as active)."""
    return json.loads(_get(f"{base}/api/v2/alerts")[1])


def wait_for(predicate: Any, timeout: float = 15.0, step: float = 0.1) -> Any:
    """Poll ``predicate`` until it returns something truthy; that value (or fail)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout} s waiting for {predicate}")
