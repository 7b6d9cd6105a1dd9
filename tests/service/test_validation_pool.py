"""Prediction bodies validated in worker processes (xebench.service.validation).

The reference is the in-process path: every table the workers build, and every
refusal they report, must be exactly what ``prediction_table`` gives in process;
a worker killed with SIGKILL must cost no request.
"""

from __future__ import annotations

import json
import os
import signal
import time
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from xebench.errors import BatchError, ConfigError
from xebench.ingest.policy import Limits, PiiPolicy
from xebench.ingest.predictions import prediction_table
from xebench.service.app import create_app
from xebench.service.config import ServiceConfig, load_config
from xebench.service.validation import ValidationPool
from xebench.store import EventStore


def _events(n: int, start: int = 0) -> list[dict]:
    stamp = (datetime.now(UTC) - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return [
        {
            "request_id": f"r{start + i}",
            "model": "fraud",
            "version": "v2",
            "timestamp": stamp,
            "probabilities": round((i % 97) / 97, 6),
            "cohort": {"region": ["eu", "us"][i % 2], "user": f"u{i}"},
            "features": {"amount": i * 1.5, "country": "de", "note": "é ✓"},
        }
        for i in range(n)
    ]


def _body(events: list[dict]) -> bytes:
    return json.dumps(events).encode()


def _without_ingest_time(table):  # the one column that is "now" where it was built
    return table.drop_columns(["ingest_time"]).to_pylist()


@pytest.fixture(scope="module")
def pool():
    with ValidationPool(1) as pool:
        yield pool


def test_a_worker_builds_the_same_table_as_the_process(pool: ValidationPool) -> None:
    body = _body(_events(300))
    got = pool.prediction_table(body, tenant="acme")
    assert got.schema == prediction_table(body, tenant="acme").schema
    assert _without_ingest_time(got) == _without_ingest_time(prediction_table(body, tenant="acme"))
    ndjson = b"\n".join(json.dumps(e).encode() for e in _events(50))
    assert _without_ingest_time(pool.prediction_table(ndjson, tenant="t", ndjson=True)) == (
        _without_ingest_time(prediction_table(ndjson, tenant="t", ndjson=True))
    )


def test_a_refusal_is_the_same_error_as_in_process(pool: ValidationPool) -> None:
    events = _events(40)
    events[3]["probabilities"] = 2
    del events[17]["model"]
    events[25]["timestamp"] = "0001-01-01T00:00:00+01:00"
    body = _body(events)
    with pytest.raises(BatchError) as here:
        prediction_table(body, tenant="t")
    with pytest.raises(BatchError) as there:
        pool.prediction_table(body, tenant="t")
    assert (there.value.status, there.value.detail) == (here.value.status, here.value.detail)
    assert there.value.errors == here.value.errors
    assert {e["index"] for e in there.value.errors} == {3, 17, 25}
    with pytest.raises(BatchError) as broken:
        pool.prediction_table(b"[{", tenant="t")
    assert broken.value.status == 400


def test_the_workers_apply_the_limits_and_the_privacy_policy() -> None:
    pii = PiiPolicy(drop=frozenset({"user"}), hash=frozenset({"country"}), key=b"secret")
    body = _body(_events(20))
    with ValidationPool(1, limits=Limits(max_events=10), pii=pii) as pool:
        with pytest.raises(BatchError) as many:
            pool.prediction_table(body, tenant="t")
        assert many.value.status == 413 or "10" in many.value.detail
        ten = _body(_events(10))
        table = pool.prediction_table(ten, tenant="t")
    expected = prediction_table(ten, tenant="t", pii=pii)
    assert _without_ingest_time(table) == _without_ingest_time(expected)
    assert all("user" not in dict(c) for c in table["cohort"].to_pylist())
    assert json.loads(table["features"][0].as_py())["country"].startswith("h:")


def _wait_gone(pid: int) -> None:
    """Until ``pid`` (a child of the forkserver, not ours) has died."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                if stat.read().split(") ")[-1].startswith("Z"):
                    return
        except FileNotFoundError:
            return
        time.sleep(0.01)
    raise AssertionError(f"worker {pid} still alive")


def test_a_killed_worker_costs_no_request() -> None:
    body = _body(_events(100))
    expected = _without_ingest_time(prediction_table(body, tenant="t"))
    with ValidationPool(1) as pool:
        assert _without_ingest_time(pool.prediction_table(body, tenant="t")) == expected
        (pid,) = list(pool._pool._processes)  # type: ignore[union-attr]
        os.kill(pid, signal.SIGKILL)
        _wait_gone(pid)
        # The pool is broken: this body is validated in process, the next pool starts.
        assert _without_ingest_time(pool.prediction_table(body, tenant="t")) == expected
        assert pool.restarts == 1
        assert _without_ingest_time(pool.prediction_table(body, tenant="t")) == expected
        assert pool._pool is not None and pid not in pool._pool._processes


def test_no_worker_with_zero_processes_or_after_close() -> None:
    body = _body(_events(5))
    pool = ValidationPool(0)
    assert pool.prediction_table(body, tenant="t").num_rows == 5
    assert pool._pool is None
    pool = ValidationPool(1)
    pool.close()
    assert pool.prediction_table(body, tenant="t").num_rows == 5  # in process
    assert pool._pool is None
    with pytest.raises(ValueError, match="processes must be >= 0"):
        ValidationPool(-1)


def test_the_config_key_is_checked(tmp_path) -> None:
    path = tmp_path / "xebench.yaml"
    path.write_text("validation_processes: 0\n")
    assert load_config(path).validation_processes == 0
    for bad in ("-1", "1.5", "true", "'two'", "65"):
        path.write_text(f"validation_processes: {bad}\n")
        with pytest.raises(ConfigError, match="validation_processes: must be a whole number"):
            load_config(path)


def test_the_service_answers_the_same_with_and_without_workers() -> None:
    """A large body (validated in a worker) and a bad one, against processes=0."""
    good = _body(_events(400))  # well over the 16 KB validated on the event loop
    bad_events = _events(400, start=1000)
    bad_events[399]["probabilities"] = -0.5
    bad = _body(bad_events)
    assert len(good) > 64 * 1024
    answers = []
    for processes in (1, 0):
        config = ServiceConfig(validation_processes=processes)
        store = EventStore(":memory:")
        with TestClient(create_app(store, config)) as client:
            headers = {"content-type": "application/json"}
            ok = client.post("/v1/predictions", content=good, headers=headers)
            refused = client.post("/v1/predictions", content=bad, headers=headers)
            window = client.get("/v1/metrics", params={"model": "fraud", "window": "1h"})
            answers.append(
                (ok.status_code, ok.json(), refused.status_code, refused.json(), window.json())
            )
            if processes:
                assert client.app.state.xebench.workers._pool is not None  # a worker ran
            assert store.counts()["predictions"] == 400
    (with_workers, in_threads) = answers
    assert with_workers[:4] == in_threads[:4]
    assert with_workers[0] == 200 and with_workers[1]["inserted"] == 400
    assert with_workers[2] == 422 and with_workers[3]["errors"][0]["index"] == 399
    assert with_workers[4]["n_predictions"] == in_threads[4]["n_predictions"] == 400


def _descendants(pid: int) -> set[int]:
    """Every process below ``pid``, from /proc (the workers are the forkserver's children)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    parents[int(entry)] = int(stat.read().rpartition(") ")[2].split()[1])
            except (FileNotFoundError, ProcessLookupError, IndexError):
                continue
    found, todo = set(), [pid]
    while todo:
        parent = todo.pop()
        children = [child for child, ppid in parents.items() if ppid == parent]
        found.update(children)
        todo.extend(children)
    return found


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return not stat.read().rpartition(") ")[2].startswith("Z")
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads the process tree from /proc")
def test_the_workers_die_with_a_killed_server(tmp_path) -> None:
    """kill -9 of ``xebench serve`` leaves no validation worker (nor its forkserver) behind."""
    import subprocess
    import sys
    import urllib.request

    from loopback import free_port

    port = free_port()
    config = tmp_path / "xebench.yaml"
    config.write_text("validation_processes: 1\n")
    server = subprocess.Popen(
        [sys.executable, "-m", "xebench", "serve", "--db", str(tmp_path / "x.duckdb"),
         "--port", str(port), "--no-access-log", "--config", str(config)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{url}/healthz", timeout=1).read()
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, "no server"
                time.sleep(0.05)
        request = urllib.request.Request(
            f"{url}/v1/predictions",
            data=_body(_events(500)),
            headers={"content-type": "application/json"},
        )
        answer = json.loads(urllib.request.urlopen(request, timeout=60).read())
        assert answer["inserted"] == 500
        below = _descendants(server.pid)
        assert len(below) >= 2  # the forkserver and at least one worker
    finally:
        server.kill()
        server.wait()
    deadline = time.monotonic() + 15
    while any(_running(pid) for pid in below) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in below if _running(pid)]
