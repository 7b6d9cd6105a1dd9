"""A full disk under a real ``xebench serve``: 503 with Retry-After while full, nothing
acknowledged lost, ingestion resumed without a restart once space returns.

The database lives on a small tmpfs mounted for the test (root only: CI runs
as root, so there it must run, never skip). A filler file takes most of the
space; batches are posted until the server refuses one; a few more are
refused while the disk stays full; then the filler is deleted and the same
server must accept batches again. At the end (server stopped) the stored
request ids must be exactly the acknowledged ones: none lost, none twice,
none of the refused.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from loopback import free_port

BATCH = 200
SERVE = (sys.executable, "-m", "xebench", "serve")


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 6 MiB tmpfs at ``tmp_path / "disk"`` (unmounted afterwards)."""
    if os.geteuid() != 0:
        if os.environ.get("CI"):
            pytest.fail("CI runs as root: the disk-full test must run there")
        pytest.skip("mounting a tmpfs needs root")
    disk = tmp_path / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(disk)], check=True)
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


class Serve:
    def __init__(self, db: Path, log: Path) -> None:
        self.port = free_port()
        self.log = log
        with log.open("ab") as err:
            self.process = subprocess.Popen(
                [*SERVE, "--db", str(db), "--port", str(self.port), "--no-access-log"],
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
        deadline = time.monotonic() + 60
        while self.get("/healthz")[0] != 200:
            assert self.process.poll() is None and time.monotonic() < deadline, self.tail()
            time.sleep(0.05)
        self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]

    def get(self, path: str) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            return response.status, response.read()
        except OSError:
            return 0, b""
        finally:
            conn.close()

    def post(self, first: int) -> tuple[int, str | None, dict]:
        events = [
            {
                "request_id": f"r{i}",
                "model": "m",
                "probabilities": 0.3,
                "features": {"pad": "x" * 200},
            }
            for i in range(first, first + BATCH)
        ]
        self.conn.request(
            "POST", "/v1/predictions", json.dumps(events), {"Content-Type": "application/json"}
        )
        response = self.conn.getresponse()
        return response.status, response.getheader("Retry-After"), json.loads(response.read())

    def stop(self) -> int:
        self.conn.close()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(30)


@pytest.mark.slow
def test_a_full_disk_answers_503_loses_nothing_and_recovers_without_a_restart(
    small_disk: Path, tmp_path: Path
) -> None:
    filler = small_disk / "filler"
    filler.write_bytes(b"\0" * (3 << 20))
    server = Serve(small_disk / "events.duckdb", tmp_path / "serve.log")
    acked, refused, first = [], [], 0
    try:
        for _ in range(200):  # ~3 MiB of WAL fill the disk well before 200 batches
            status, retry_after, body = server.post(first)
            if status != 200:
                break
            assert body["inserted"] == BATCH, body
            acked.append(first)
            first += BATCH
        assert acked, server.tail()
        assert status == 503 and retry_after is not None and float(retry_after) > 0, body
        assert "No space left on device" in body["detail"], body
        refused.append(first)
        first += BATCH
        for _ in range(3):  # still full: still refused, never acknowledged
            status, retry_after, body = server.post(first)
            assert status == 503 and retry_after is not None, (status, body)
            refused.append(first)
            first += BATCH
            time.sleep(0.2)

        filler.unlink()  # space returns; the same process must take events again
        deadline = time.monotonic() + 30
        while True:
            status, retry_after, body = server.post(first)
            if status == 200:
                acked.append(first)
                first += BATCH
                break
            assert status == 503 and retry_after is not None, (status, body)
            assert time.monotonic() < deadline, server.tail()
            refused.append(first)
            first += BATCH
            time.sleep(0.2)
        for _ in range(3):
            status, _, body = server.post(first)
            assert status == 200 and body["inserted"] == BATCH, body
            acked.append(first)
            first += BATCH
        status, models = server.get("/v1/models")
        assert status == 200
        assert json.loads(models)["models"][0]["predictions"] == len(acked) * BATCH
        assert server.process.poll() is None  # never restarted
    finally:
        server.stop()

    with duckdb.connect(str(small_disk / "events.duckdb"), read_only=True) as con:
        rows = con.execute(
            "SELECT CAST(substr(request_id, 2) AS BIGINT) AS i FROM predictions"
        ).fetchnumpy()["i"]
    stored = rows.tolist()
    want = {start + i for start in acked for i in range(BATCH)}
    assert len(stored) == len(set(stored)) == len(want)  # none twice
    assert set(stored) == want  # none lost, none of the refused batches
