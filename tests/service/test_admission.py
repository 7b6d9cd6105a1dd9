"""Admission control: overload answers 429 with Retry-After at once, memory stays bounded.

The unit tests drive :class:`Admission` with a fake clock. The service tests hold
the writer so that requests pile up in flight, and check that the next one is
refused at once (not queued, not timed out); the last test runs ``xebench serve``
as a subprocess and sends 16 concurrent 13 MiB bodies while sampling the server's
resident memory (``/proc/PID/status``): the peak is that of one body at a time (what
the store itself needs to commit and fold such a body is not admission's to bound).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from loopback import free_port
from xebench.errors import WriterBusy
from xebench.service.admission import Admission
from xebench.service.app import create_app
from xebench.service.config import ServiceConfig
from xebench.store.event_store import EventStore


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_bytes_in_flight_are_bounded_but_one_request_always_passes() -> None:
    admission = Admission(max_bytes=1_000, max_seconds=100, rate=1e6, request_cost=0)
    alone = admission.admit(5_000)  # larger than the budget, but nothing else is in flight
    with pytest.raises(WriterBusy, match="5000 bytes in flight") as refused:
        admission.admit(1)
    assert refused.value.retry_after == 1.0
    admission.release(alone)
    admission.release(alone)  # a second release changes nothing
    held = [admission.admit(400), admission.admit(400)]
    with pytest.raises(WriterBusy):
        admission.admit(400)
    with pytest.raises(WriterBusy):  # a body that grows past the budget while read
        admission.grow(held[1], 700)
    assert admission.in_flight_bytes == 800
    admission.grow(held[1], 600)
    assert (admission.in_flight_bytes, held[1].size) == (1_000, 600)
    for ticket in held:
        admission.release(ticket)
    assert admission.in_flight_bytes == 0
    assert admission.refused == 3


def test_one_large_body_at_a_time() -> None:
    admission = Admission(max_bytes=10_000, max_seconds=100, rate=1e9, large_bytes=1_000)
    small = admission.admit(500)
    first = admission.admit(2_000)  # large, and the only large one: admitted
    with pytest.raises(WriterBusy, match="a body over 1000 bytes"):
        admission.admit(1_500)
    growing = admission.admit(0)  # chunked: its size is unknown when admitted
    admission.grow(growing, 900)
    with pytest.raises(WriterBusy):
        admission.grow(growing, 1_200)  # it turned out large too
    assert admission.refused == 2
    admission.release(first)
    admission.grow(growing, 1_200)  # now it holds the place
    assert growing.large
    with pytest.raises(WriterBusy):
        admission.admit(5_000)
    admission.release(growing)
    admission.release(admission.admit(5_000))
    admission.release(small)
    assert admission.in_flight_bytes == 0


def test_work_in_flight_is_bounded_by_the_measured_rate() -> None:
    clock = Clock()
    admission = Admission(
        max_bytes=10**9, max_seconds=1.0, rate=1_000, request_cost=100, clock=clock
    )
    first = admission.admit(400)  # cost 500: 0.5 s at 1,000/s
    second = admission.admit(400)  # 1.0 s in all
    with pytest.raises(WriterBusy, match="s of work in flight"):
        admission.admit(0)
    # The server turns out faster: 1,000 of cost done in 0.5 s of busy time is 2,000/s,
    # and the estimate moves half-way there.
    clock.now += 0.25
    admission.release(first)
    clock.now += 0.25
    admission.release(second)
    assert admission.rate == pytest.approx(0.5 * 1_000 + 0.5 * 2_000)
    held = [admission.admit(400) for _ in range(3)]  # 1,500 of cost: exactly 1 s at 1,500/s
    with pytest.raises(WriterBusy):
        admission.admit(0)
    assert admission.in_flight_seconds == pytest.approx(1.0)
    for ticket in held:
        admission.release(ticket)


def _event(i: int, **fields: Any) -> dict[str, Any]:
    return {"request_id": f"r{i}", "model": "fraud", "probabilities": 0.25, **fields}


def test_a_server_at_capacity_answers_429_before_reading_and_recovers(
    store: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    entered, release = threading.Event(), threading.Event()
    real_write = store.write

    def held_write(batches: Any) -> Any:
        entered.set()
        release.wait(10)
        return real_write(batches)

    monkeypatch.setattr(store, "write", held_write)
    body = json.dumps([_event(i) for i in range(200)]).encode()
    config = ServiceConfig(inflight_bytes=2 * len(body) + 2_000)  # the two senders' bodies
    with TestClient(create_app(store, config), raise_server_exceptions=False) as client:
        answers: list[int] = []

        def send(offset: int) -> None:
            shifted = body.replace(b'"request_id": "r', b'"request_id": "r%d-' % offset)
            answer = client.post(
                "/v1/predictions", content=shifted, headers={"content-type": "application/json"}
            )
            answers.append(answer.status_code)

        senders = [threading.Thread(target=send, args=(k,)) for k in range(2)]
        for sender in senders:
            sender.start()
        assert entered.wait(10)
        admission = client.app.state.xebench.admission
        for _ in range(1000):  # both bodies admitted: one in the writer, one queued
            if admission.in_flight_bytes >= 2 * len(body):
                break
            time.sleep(0.01)
        started = time.monotonic()
        busy = client.post(
            "/v1/predictions", content=body, headers={"content-type": "application/json"}
        )
        assert busy.status_code == 429
        assert busy.headers["retry-after"] == "1"
        assert "at capacity" in busy.json()["detail"]
        assert time.monotonic() - started < 5  # answered, not queued behind the writer
        release.set()
        for sender in senders:
            sender.join(10)
        assert sorted(answers) == [200, 200]
        assert admission.in_flight_bytes == 0
        again = client.post(
            "/v1/predictions", content=body, headers={"content-type": "application/json"}
        )
        assert again.status_code == 200
    assert store.counts("default")["predictions"] == 600


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc")
def test_concurrent_large_bodies_cost_no_more_memory_than_one(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    log = (tmp_path / "serve.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "xebench", "serve", "--no-access-log", "--log-level", "warning",
         "--db", str(tmp_path / "big.duckdb"), "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=log, env=env,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, "server did not start"
            time.sleep(0.1)
        # 10,000 events of ~1.35 KB: a 13 MiB body.
        padding = "x" * 1000
        tail = "y" * 200
        events = [
            _event(i, features={"note": padding, "tail": tail, "n": i}, cohort={"region": "eu"})
            for i in range(10_000)
        ]
        body = json.dumps(events, separators=(",", ":")).encode()
        assert 12.5 * 2**20 < len(body) < 20 * 2**20
        peak, stop = [_rss_mb(server.pid)], threading.Event()

        def sample() -> None:
            while not stop.is_set():
                peak.append(_rss_mb(server.pid))
                stop.wait(0.02)

        sampler = threading.Thread(target=sample)
        sampler.start()
        statuses: list[int] = []
        failures: list[str] = []

        def send(k: int) -> None:
            unique = body.replace(b'"request_id":"r', b'"request_id":"c%d-' % k)
            try:
                answer = httpx.post(
                    f"{url}/v1/predictions",
                    content=unique,
                    headers={"content-type": "application/json"},
                    timeout=120,
                )
            except httpx.HTTPError as error:
                failures.append(repr(error))
                return
            statuses.append(answer.status_code)
            if answer.status_code == 429:
                assert answer.headers["retry-after"] == "1"

        for k in range(3):  # one at a time first: what the store needs for such a body
            send(100 + k)
        alone = max(peak)
        for _round in range(2):
            senders = [threading.Thread(target=send, args=(k + 16 * _round,)) for k in range(16)]
            for sender in senders:
                sender.start()
            for sender in senders:
                sender.join(180)
        stop.set()
        sampler.join()
        assert failures == []
        assert set(statuses) <= {200, 429} and len(statuses) == 35
        assert statuses.count(200) >= 4
        # 16 concurrent bodies cost what one does (admission holds the rest back before
        # reading them); before admission control they took the server to 2 GB.
        assert max(peak) < alone + 64, f"peak RSS {max(peak):.0f} MB, one at a time {alone:.0f}"
        assert max(peak) < 700
        assert server.poll() is None
    finally:
        server.terminate()
        server.wait(60)
        log.close()
