"""The fold catches up on start (issue 13, item 0): events committed but not folded into
the monitoring buckets -- by an older version, or with bucket maintenance off, then a
kill -9 -- are in every window the service answers once it is up.
"""

from __future__ import annotations

import http.client
import json
import random
import signal
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import duckdb
import pytest
from fastapi.testclient import TestClient
from sklearn.metrics import log_loss

from benchmark_modules import load_benchmark
from xebench.ingest.events import parse_labels, parse_predictions
from xebench.service.app import create_app
from xebench.store import EventBatch, EventStore


def _marks_and_events(db: Path) -> tuple[int, int, int, int]:
    """(folded prediction mark, last prediction seq, predictions stored, predictions in the
    model-wide minute buckets), read from the file with the server stopped."""
    with duckdb.connect(str(db), read_only=True) as con:
        (mark,) = con.execute("SELECT value FROM meta WHERE key = 'folded_predictions'").fetchone()
        last, stored = con.execute(
            "SELECT coalesce(max(seq), 0), count(*) FROM predictions"
        ).fetchone()
        (folded,) = con.execute(
            "SELECT coalesce(sum(n_predictions), 0) FROM bucket_scores WHERE cohort_key = ''"
        ).fetchone()
    return int(mark), int(last), int(stored), int(folded)


def test_a_store_whose_marks_lag_its_events_is_folded_before_the_first_read(
    tmp_path: Path,
) -> None:
    now = datetime.now(UTC) - timedelta(minutes=2)
    predictions = [
        {"request_id": f"r{i}", "model": "m", "probabilities": 0.1 + 0.8 * (i % 7) / 6,
         "timestamp": (now - timedelta(seconds=i)).isoformat()}
        for i in range(300)
    ]  # fmt: skip
    labels = [{"request_id": f"r{i}", "label": i % 3 == 0} for i in range(0, 300, 2)]
    db = tmp_path / "lagging.duckdb"
    with EventStore(db) as store:  # commits without folding: what an older version left
        store.write([EventBatch("predictions", parse_predictions(predictions, tenant="default"))])
        store.write([EventBatch("labels", parse_labels(labels, tenant="default"))])
    mark, last, stored, folded = _marks_and_events(db)
    assert (mark, folded) == (-1, 0) and (last, stored) == (1, 300)

    with TestClient(create_app(EventStore(db), close_store=True)) as client:
        window = client.get("/v1/metrics?model=m&window=1h").json()
        assert (window["n_predictions"], window["n_labelled"]) == (300, 150)
        y = [int(label["label"]) for label in labels]
        p = [predictions[i]["probabilities"] for i in range(0, 300, 2)]
        assert window["log_loss"] == pytest.approx(log_loss(y, p), rel=1e-9)
        assert client.app.state.writer.store.update_buckets()["predictions"] == 0
    assert _marks_and_events(db)[::3] == (1, 300)  # caught up, and durably


@pytest.fixture(scope="module")
def chaos() -> Iterator[ModuleType]:
    yield from load_benchmark("chaos_kill.py", "xebench_chaos_catch_up")


def _window(port: int, model: str) -> dict[str, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", f"/v1/metrics?model={model}&window=7d")
        response = conn.getresponse()
        assert response.status == 200
        return json.loads(response.read())
    finally:
        conn.close()


@pytest.mark.slow
def test_the_first_commit_after_a_reopen_is_folded_when_the_last_one_stored_nothing(
    tmp_path: Path,
) -> None:
    """A commit of duplicates only (a client's resend) moves the fold's marks but stores
    no row. Numbering the next process's commits from the stored rows alone reused that
    seq, at the marks, and the fold skipped the new rows (found by 200 kill -9 cycles:
    the first commit after some restarts was missing from every window)."""

    def batch(first: int, last: int) -> EventBatch:
        events = [
            {"request_id": f"r{i}", "model": "m", "probabilities": 0.25} for i in range(first, last)
        ]
        return EventBatch("predictions", parse_predictions(events, tenant="default"))

    db = tmp_path / "resent.duckdb"
    with EventStore(db) as store:
        store.write([batch(0, 5)], fold=True)
        (outcome,) = store.write([batch(0, 5)], fold=True)  # the resend: duplicates only
        assert (outcome.inserted, outcome.duplicates) == (0, 5)
    with EventStore(db) as store:
        store.write([batch(5, 8)], fold=True)
    mark, last, stored, folded = _marks_and_events(db)
    assert (stored, folded) == (8, 8)
    assert mark == last == 3  # the third commit, numbered after the resend's marks


def test_after_kill_9_the_restarted_server_counts_every_stored_event(
    chaos: ModuleType, tmp_path: Path
) -> None:
    db, log = tmp_path / "chaos.duckdb", tmp_path / "serve.log"
    off = tmp_path / "no-fold.yaml"
    off.write_text("monitoring:\n  fold_interval: 0\n")
    ledger, rng = chaos.Ledger(), random.Random(5)
    # 1. Bucket maintenance off (an older version's deferred fold, never run), then kill -9.
    chaos.run_cycle(
        db, ledger, rng, kill_after=(1.0, 1.5), log=log, server_args=("--config", str(off))
    )
    mark, last, stored, folded = _marks_and_events(db)
    assert stored > 0 and mark < last and folded == 0, (mark, last, stored, folded)
    server = chaos.Server(db, log)  # the default configuration: it folds on start
    try:
        window = _window(server.port, chaos.MODEL)
        assert window["n_predictions"] == stored
    finally:
        server.kill(signal.SIGKILL)
    # 2. Folding in every commit, killed mid-stream: the buckets agree with the events.
    chaos.run_cycle(db, ledger, rng, kill_after=(1.0, 1.5), log=log)
    mark, last, stored_after, folded = _marks_and_events(db)
    assert stored_after > stored and mark >= last and folded == stored_after
    server = chaos.Server(db, log)
    try:
        assert _window(server.port, chaos.MODEL)["n_predictions"] == stored_after
    finally:
        server.kill(signal.SIGTERM)
    result = chaos.verify(db, ledger)
    assert result["lost"] == 0 and result["duplicated"] == 0, result
