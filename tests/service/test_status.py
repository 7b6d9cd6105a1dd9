"""``GET /v1/status``, the scheduled retention and the writer's maintenance tasks.

Expected values are worked out from what the test sent and from the stored
rows read back (NumPy percentiles of ingest minus event time), never from the
status code path itself.
"""

from __future__ import annotations

import itertools
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from xebench.service.app import create_app
from xebench.service.config import ServiceConfig, TokenEntry, TokenRegistry, hash_token
from xebench.service.writer import Task, Writer
from xebench.store.event_store import EventStore
from xebench.store.retention import RetentionPolicy


def prediction(request_id: str, at: datetime, model: str = "fraud") -> dict[str, Any]:
    return {
        "request_id": request_id,
        "model": model,
        "timestamp": at.isoformat(),
        "probabilities": 0.7,
        "features": {"amount": 3.0},
    }


def wait_for(check: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_status_counts_pending_orphans_rates_and_lag_of_what_was_sent() -> None:
    store = EventStore(":memory:", join_window=timedelta(days=1))
    now = datetime.now(UTC)
    lags = [5, 10, 30, 60, 600, 3000, 7200]  # seconds before now
    with TestClient(create_app(store)) as client:
        events = [prediction(f"p{i}", now - timedelta(seconds=s)) for i, s in enumerate(lags)]
        assert client.post("/v1/predictions", json=events).status_code == 200
        labels = [{"request_id": "p0", "label": 1}, {"request_id": "p1", "label": 0}]
        labels += [{"request_id": f"waiting{i}", "label": 1} for i in range(3)]
        answer = client.post("/v1/labels", json=labels).json()
        assert (answer["joined"], answer["pending"]) == (2, 3)
        status = client.get("/v1/status").json()

    assert status["tenant"] == "default"
    assert status["stored"] == {"predictions": len(lags), "labels": 5}
    assert (status["pending_labels"], status["orphans"]) == (3, 0)
    # Everything was ingested within the last 5 minutes.
    assert status["rates"]["predictions_per_s_5m"] == round(len(lags) / 300, 3)
    assert status["rates"]["labels_per_s_5m"] == round(5 / 300, 3)
    assert status["rates"]["labels_per_s_1h"] == round(5 / 3600, 3)
    with store.cursor() as cursor:
        ingest, event = (
            cursor.execute("SELECT epoch(ingest_time), epoch(event_time) FROM predictions")
            .fetchnumpy()
            .values()
        )
    lag = np.asarray(ingest) - np.asarray(event)
    assert status["ingest_lag_s"]["n"] == len(lags)
    assert status["ingest_lag_s"]["p50"] == pytest.approx(np.percentile(lag, 50), abs=1e-3)
    assert status["ingest_lag_s"]["p99"] == pytest.approx(np.percentile(lag, 99), abs=1e-3)
    assert status["ingest_lag_s"]["max"] == pytest.approx(lag.max(), abs=1e-3)
    assert 7200 <= status["ingest_lag_s"]["max"] < 7260
    oldest = datetime.fromisoformat(status["oldest_event"])
    assert abs((oldest - (now - timedelta(seconds=7200))).total_seconds()) < 1e-3
    assert status["queue"] == {"events": 0, "max_events": 50_000, "store_failure": None}
    assert status["retention"]["horizons"] == {} and status["retention"]["last_run"] is None
    assert status["join_window_s"] == 86_400


def test_orphans_are_pending_labels_older_than_the_join_window() -> None:
    store = EventStore(":memory:", join_window=timedelta(microseconds=1))
    with TestClient(create_app(store)) as client:
        client.post("/v1/labels", json=[{"request_id": f"x{i}", "label": 1} for i in range(4)])
        time.sleep(0.01)
        status = client.get("/v1/status").json()
    assert (status["pending_labels"], status["orphans"]) == (4, 4)


def test_a_tenants_token_sees_only_its_own_counts() -> None:
    tokens = {"acme": "token-a", "bravo": "token-b"}
    registry = TokenRegistry(
        [TokenEntry(t, frozenset({"ingest", "read"}), hash_token(k)) for t, k in tokens.items()]
    )
    now = datetime.now(UTC)
    with TestClient(create_app(EventStore(":memory:"), ServiceConfig(tokens=registry))) as client:

        def auth(tenant: str) -> dict[str, str]:
            return {"authorization": f"Bearer {tokens[tenant]}"}

        sent = {"acme": 3, "bravo": 5}
        for tenant, n in sent.items():
            events = [prediction(f"r{i}", now) for i in range(n)]
            assert client.post("/v1/predictions", json=events, headers=auth(tenant)).is_success
        client.post("/v1/labels", json=[{"request_id": "z", "label": 1}], headers=auth("bravo"))
        assert client.get("/v1/status").status_code == 401
        for tenant, n in sent.items():
            status = client.get("/v1/status", headers=auth(tenant)).json()
            assert status["tenant"] == tenant
            assert status["stored"]["predictions"] == n
            assert status["pending_labels"] == (1 if tenant == "bravo" else 0)


def test_the_service_applies_retention_on_schedule_through_the_writer() -> None:
    store = EventStore(":memory:")
    now = datetime.now(UTC)
    policy = RetentionPolicy(
        events=timedelta(days=30), minutes=timedelta(days=7), interval=timedelta(hours=1)
    )
    with TestClient(create_app(store)) as client:  # old and new events, no retention yet
        old = [prediction(f"old{i}", now - timedelta(days=40)) for i in range(4)]
        new = [prediction(f"new{i}", now - timedelta(hours=1)) for i in range(2)]
        assert client.post("/v1/predictions", json=old + new).status_code == 200
    with store.cursor() as cursor:
        (old_minutes,) = cursor.execute(
            "SELECT count(*) FROM bucket_scores WHERE bucket < ?", [now - timedelta(days=8)]
        ).fetchone()
        hours_before = cursor.execute(
            "SELECT sum(n_predictions) FROM bucket_scores_hour WHERE cohort_key = ''"
        ).fetchone()
    assert old_minutes > 0

    app = create_app(store, ServiceConfig(retention=policy))
    (task,) = app.state.writer.tasks
    with TestClient(app) as client:
        wait_for(lambda: task.last is not None)  # once at start, then every hour
        status = client.get("/v1/status").json()
    assert task.last["result"]["delete"]["predictions"] == 4
    assert store.counts()["predictions"] == 2
    with store.cursor() as cursor:
        assert cursor.execute(
            "SELECT count(*) FROM bucket_scores WHERE bucket < ?", [now - timedelta(days=8)]
        ).fetchone() == (0,)
        # The hour buckets keep the history of the deleted events and minutes.
        assert (
            cursor.execute(
                "SELECT sum(n_predictions) FROM bucket_scores_hour WHERE cohort_key = ''"
            ).fetchone()
            == hours_before
        )
    horizon = datetime.fromisoformat(status["retention"]["horizons"]["events"])
    assert abs((horizon - (now - timedelta(days=30))).total_seconds()) < 60
    assert status["retention"]["events_s"] == 30 * 86_400
    assert status["retention"]["interval_s"] == 3600
    assert status["retention"]["last_run"]["ok"] is True


def test_writer_tasks_run_on_their_interval_and_a_failure_is_recorded() -> None:
    runs: list[float] = []

    def count(store: EventStore) -> int:
        runs.append(time.monotonic())
        return len(runs)

    def broken(store: EventStore) -> None:
        raise RuntimeError("nope")

    tasks = [Task("count", 0.05, count), Task("broken", 3600.0, broken)]
    writer = Writer(EventStore(":memory:"), tasks=tasks, fold_interval=None).start()
    try:
        wait_for(lambda: len(runs) >= 4)
    finally:
        writer.stop()
    assert all(b - a >= 0.045 for a, b in itertools.pairwise(runs))
    assert tasks[1].last is not None and tasks[1].last["error"] == "RuntimeError: nope"
