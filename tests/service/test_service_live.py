"""``xebench serve`` for real: a server process on a loopback port, spoken to over TCP."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import httpx
import pytest

from loopback import free_port
from xebench.service.config import hash_token

SERVE = [sys.executable, "-m", "xebench", "serve"]


class Server:
    """A ``xebench serve`` subprocess, killed at the end whatever happens."""

    def __init__(self, db: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = db.with_suffix(f".{self.port}.log")
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [*SERVE, "--db", str(db), "--port", str(self.port), *args],
                stdout=subprocess.DEVNULL,
                stderr=log,
                env={**os.environ, **(env or {})},
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"server exited: {self.log.read_text()}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.05)
        self.stop()
        raise AssertionError(f"server did not start: {self.log.read_text()}")

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(20)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    running = Server(tmp_path / "events.duckdb")
    try:
        yield running
    finally:
        running.stop(signal.SIGKILL)


def event(request_id: str, **fields: object) -> dict[str, object]:
    return {"request_id": request_id, "model": "fraud", "probabilities": 0.7, **fields}


@pytest.mark.slow
def test_ingest_over_loopback_then_graceful_stop_keeps_every_event(
    server: Server, tmp_path: Path
) -> None:
    with httpx.Client(base_url=server.url) as client:
        ok = client.post("/v1/predictions", json=[event(f"r{i}") for i in range(300)])
        assert ok.json() == {"accepted": 300, "inserted": 300, "duplicates": 0}
        ndjson = "\n".join(json.dumps({"request_id": f"r{i}", "label": i % 2}) for i in range(10))
        labels = client.post(
            "/v1/labels",
            content=gzip.compress(ndjson.encode()),
            headers={"content-type": "application/x-ndjson", "content-encoding": "gzip"},
        )
        assert labels.json()["joined"] == 10
        big = client.post(
            "/v1/predictions",
            content=b"[" + b" " * (21 * 1024 * 1024) + b"]",
            headers={"content-type": "application/json"},
        )
        assert big.status_code == 413
        garbage = client.post(
            "/v1/predictions", content=b"\xff\xfe\x00", headers={"content-type": "application/json"}
        )
        assert garbage.status_code == 400
        assert client.get("/v1/models").json()["models"][0]["joined"] == 10
    # uvicorn re-raises SIGTERM after its graceful shutdown; a crash would be 1 or -9.
    assert server.stop(signal.SIGTERM) in (0, -signal.SIGTERM)
    with duckdb.connect(str(tmp_path / "events.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM predictions").fetchone() == (300,)
        assert con.execute("SELECT count(*) FROM labels").fetchone() == (10,)
    log = server.log.read_text()
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    ingest = [line for line in lines if line.get("path") == "/v1/predictions"]
    assert {"status": 200, "tenant": "default", "events": 300}.items() <= ingest[0].items()


@pytest.mark.slow
def test_second_process_on_the_same_database_names_the_holder(
    server: Server, tmp_path: Path
) -> None:
    second = subprocess.run(
        [*SERVE, "--db", str(tmp_path / "events.duckdb"), "--port", str(free_port())],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert second.returncode == 2
    assert f"PID {server.process.pid}" in second.stderr
    assert "in use by another process" in second.stderr
    assert "Traceback" not in second.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--workers", "2"], "one process"),
        (["--host", "0.0.0.0"], "without tokens"),
    ],
)
def test_unsafe_serve_options_are_refused_with_a_reason(
    tmp_path: Path, args: list[str], message: str
) -> None:
    result = subprocess.run(
        [*SERVE, "--db", str(tmp_path / "x.duckdb"), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr


@pytest.mark.slow
def test_tenants_are_isolated_over_loopback(tmp_path: Path) -> None:
    config = tmp_path / "xebench.yaml"
    config.write_text(
        "tokens:\n"
        f"  - {{tenant: acme, scopes: [ingest, read], hash: '{hash_token('acme-secret')}'}}\n"
        "  - {tenant: bravo, scopes: [ingest, read], token_env: BRAVO_TOKEN}\n"
    )
    running = Server(
        tmp_path / "t.duckdb", "--config", str(config), env={"BRAVO_TOKEN": "bravo-secret"}
    )
    try:
        acme = {"authorization": "Bearer acme-secret"}
        bravo = {"authorization": "Bearer bravo-secret"}
        with httpx.Client(base_url=running.url) as client:
            assert client.post("/v1/predictions", json=[event("a")]).status_code == 401
            sent = client.post("/v1/predictions", json=[event("a")], headers=acme)
            assert sent.status_code == 200
            assert client.get("/v1/models", headers=bravo).json() == {"models": []}
            assert client.get("/v1/models/fraud", headers=bravo).status_code == 404
            assert client.get("/v1/models/fraud", headers=acme).status_code == 200
    finally:
        running.stop(signal.SIGKILL)
    assert "acme-secret" not in running.log.read_text()
