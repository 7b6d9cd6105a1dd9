"""Real Prometheus and Alertmanager processes for the tests of ``deploy/`` (the
fixtures built on these are in this folder's conftest.py).

Debian's binaries (``prometheus``, ``promtool``, ``prometheus-alertmanager``,
``amtool``; ``.ci/run`` installs them): :func:`require` finds one, or skips the
test where it is missing -- except under CI (``CI`` set to ``1`` or ``true``),
where a missing binary fails it, so CI cannot pass without running them.

:func:`start_prometheus` and :func:`start_alertmanager` start one on a free
127.0.0.1 port with its storage under a test's ``tmp_path`` and return a
:class:`Daemon` once it answers ``/-/ready`` (stop it with :meth:`Daemon.stop`;
:class:`Daemons` stops all it started). :class:`WebhookSink` is a loopback
receiver for Alertmanager's webhooks; :func:`run` runs promtool or amtool.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from loopback import free_port

#: The repository's deploy/ folder: the files under test.
DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
RULES = DEPLOY / "prometheus" / "xebench-slo-rules.yml"
ALERTMANAGER_CONFIG = DEPLOY / "alertmanager" / "alertmanager.yml"

IN_CI = os.environ.get("CI", "").lower() in {"1", "true"}

#: How long a process may take to answer /-/ready (both take about a second).
START_TIMEOUT = 30.0


def require(binary: str) -> str:
    """The path of ``binary`` (on PATH, else in /usr/bin): a skip where it is missing,
    a failure under CI."""
    found = shutil.which(binary) or (
        f"/usr/bin/{binary}" if os.access(f"/usr/bin/{binary}", os.X_OK) else None
    )
    if found is None:
        message = (
            f"no {binary} on this machine"
            " (Debian: apt-get install prometheus prometheus-alertmanager)"
        )
        if IN_CI:
            pytest.fail(f"{message}, but CI is set (.ci/run installs it)")
        pytest.skip(message)
    return found


def run(*args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    """Run a command to its end; its output (stdout then stderr) in ``.stdout``."""
    return subprocess.run(
        args,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
        check=False,
    )


@dataclass(eq=False)
class Daemon:
    """A started Prometheus or Alertmanager: its base URL, its process and its log."""

    name: str
    url: str
    process: subprocess.Popen[bytes]
    log: Path
    workdir: Path

    def logs(self) -> str:
        """Everything the process wrote so far (stdout and stderr)."""
        return self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""

    def stop(self) -> int | None:
        """SIGTERM, then SIGKILL after 10 s; the exit code (None if it never started)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                return self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        return self.process.wait(10)

    def get(self, path: str, **params: Any) -> Any:
        """GET ``path`` and decode its JSON; fails on a status other than 2xx."""
        response = httpx.get(self.url + path, params=params, timeout=10)
        assert response.is_success, f"GET {path}: {response.status_code} {response.text}"
        return response.json()

    def post(self, path: str, body: Any) -> httpx.Response:
        """POST ``body`` as JSON to ``path``."""
        return httpx.post(self.url + path, json=body, timeout=10)

    def query(self, expr: str, **params: Any) -> dict[str, Any]:
        """Prometheus: the whole ``/api/v1/query`` answer for ``expr`` (status, data or error),
        whatever its HTTP status (a bad expression is a 400 with status "error")."""
        response = httpx.get(
            self.url + "/api/v1/query", params={"query": expr, **params}, timeout=10
        )
        return response.json()

    def wait_for(self, expr: str, timeout: float = 20.0) -> list[dict[str, Any]]:
        """Prometheus: poll ``expr`` until it returns a sample; those samples."""
        deadline = time.monotonic() + timeout
        while True:
            answer = self.query(expr)
            assert answer["status"] == "success", answer
            if answer["data"]["result"]:
                return answer["data"]["result"]
            assert time.monotonic() < deadline, f"{expr!r} returned nothing in {timeout} s"
            time.sleep(0.2)


def _start(name: str, argv: Sequence[str], port: int, workdir: Path) -> Daemon:
    """Start ``argv`` with its output in ``workdir/NAME.log``; return once ``/-/ready``
    answers 200, else stop it and fail with its log."""
    log = workdir / f"{name}.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(argv, stdout=sink, stderr=subprocess.STDOUT, cwd=workdir)
    daemon = Daemon(name, f"http://127.0.0.1:{port}", process, log, workdir)
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if process.poll() is not None:
            daemon.stop()
            raise AssertionError(f"{name} exited with {process.returncode}:\n{daemon.logs()}")
        try:
            if httpx.get(daemon.url + "/-/ready", timeout=1).status_code == 200:
                return daemon
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            daemon.stop()
            raise AssertionError(f"{name} not ready in {START_TIMEOUT} s:\n{daemon.logs()}")
        time.sleep(0.1)


def start_prometheus(
    tmp_path: Path,
    *,
    rule_files: Sequence[Path] = (RULES,),
    scrape_targets: Sequence[str] = (),
    scrape_configs: Sequence[Mapping[str, Any]] = (),
    alertmanagers: Sequence[str] = (),
    interval: str = "1s",
) -> Daemon:
    """Prometheus on a free loopback port, storage and config under ``tmp_path``.

    It loads ``rule_files`` (default: deploy's SLO rules), scrapes ``scrape_targets``
    (``host:port``, ``/metrics``) as job ``xebench`` plus any ``scrape_configs``, sends
    alerts to ``alertmanagers`` (``host:port``), and scrapes and evaluates every
    ``interval``. Stop it with :meth:`Daemon.stop` (the :func:`daemons` fixture does).
    """
    binary = require("prometheus")
    workdir = tmp_path / f"prometheus-{free_port()}"
    workdir.mkdir(parents=True)
    scrapes = [dict(c) for c in scrape_configs]
    if scrape_targets:
        scrapes.insert(
            0,
            {
                "job_name": "xebench",
                "metrics_path": "/metrics",
                "static_configs": [{"targets": list(scrape_targets)}],
            },
        )
    config: dict[str, Any] = {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "rule_files": [str(Path(f).resolve()) for f in rule_files],
        "scrape_configs": scrapes,
    }
    if alertmanagers:
        config["alerting"] = {
            "alertmanagers": [{"static_configs": [{"targets": list(alertmanagers)}]}]
        }
    config_file = workdir / "prometheus.yml"
    config_file.write_text(yaml.safe_dump(config), encoding="utf-8")
    port = free_port()
    argv = [
        binary,
        f"--config.file={config_file}",
        f"--web.listen-address=127.0.0.1:{port}",
        f"--storage.tsdb.path={workdir / 'data'}",
    ]
    return _start("prometheus", argv, port, workdir)


def start_alertmanager(
    tmp_path: Path, *, config: Path | Mapping[str, Any] = ALERTMANAGER_CONFIG
) -> Daemon:
    """Alertmanager on a free loopback port, clustering off, storage under ``tmp_path``.

    ``config``: a file (default: deploy's alertmanager.yml) or a dict written as one.
    Alerts go in with ``POST /api/v2/alerts`` and come out of ``GET /api/v2/alerts``.
    """
    binary = require("prometheus-alertmanager")
    workdir = tmp_path / f"alertmanager-{free_port()}"
    workdir.mkdir(parents=True)
    if isinstance(config, Mapping):
        config_file = workdir / "alertmanager.yml"
        config_file.write_text(yaml.safe_dump(dict(config)), encoding="utf-8")
    else:
        config_file = Path(config).resolve()
    port = free_port()
    argv = [
        binary,
        f"--config.file={config_file}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",
        f"--storage.path={workdir / 'data'}",
    ]
    return _start("alertmanager", argv, port, workdir)


@dataclass
class Daemons:
    """The processes a test started (through the :func:`daemons` fixture)."""

    tmp_path: Path
    started: list[Daemon] = field(default_factory=list)

    def prometheus(self, **kwargs: Any) -> Daemon:
        """:func:`start_prometheus` under the test's ``tmp_path``, stopped at its end."""
        daemon = start_prometheus(self.tmp_path, **kwargs)
        self.started.append(daemon)
        return daemon

    def alertmanager(self, **kwargs: Any) -> Daemon:
        """:func:`start_alertmanager` under the test's ``tmp_path``, stopped at its end."""
        daemon = start_alertmanager(self.tmp_path, **kwargs)
        self.started.append(daemon)
        return daemon


class WebhookSink:
    """An HTTP server on a free loopback port that keeps every JSON body POSTed to it:
    a receiver for Alertmanager's ``webhook_configs`` (``url``: :attr:`url` + any path).

    Use as a context manager; :meth:`wait` blocks until ``predicate`` holds on the
    bodies received so far.
    """

    def __init__(self) -> None:
        self.received: list[tuple[str, Any]] = []
        self._changed = threading.Condition()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"null")
                with sink._changed:
                    sink.received.append((self.path, body))
                    sink._changed.notify_all()
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(
            target=self.server.serve_forever, name="webhook-sink", daemon=True
        )

    def __enter__(self) -> WebhookSink:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(10)

    def wait(
        self, predicate: Callable[[list[tuple[str, Any]]], bool], timeout: float = 20.0
    ) -> None:
        """Block until ``predicate(received)`` holds; fail after ``timeout`` seconds."""
        with self._changed:
            ok = self._changed.wait_for(lambda: predicate(self.received), timeout)
        assert ok, f"webhook: condition not met in {timeout} s; received {self.received}"
