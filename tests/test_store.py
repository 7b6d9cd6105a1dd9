"""The DuckDB event store: idempotency, pending labels, the join, retention, locking, durability."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xebench.events import parse_labels, parse_predictions
from xebench.store import (
    SCHEMA_VERSION,
    EventBatch,
    EventStore,
    FingerprintIndex,
    StoreLockedError,
)

T0 = "2026-01-01T00:00:00Z"


def preds(*ids: str, tenant: str = "t", **fields: Any):
    events = [
        {"request_id": i, "model": "m", "probabilities": 0.25, "timestamp": T0, **fields}
        for i in ids
    ]
    return parse_predictions(events, tenant=tenant)


def labels(*ids: str, tenant: str = "t", **fields: Any):
    return parse_labels([{"request_id": i, "label": 1, **fields} for i in ids], tenant=tenant)


def rows(store: EventStore, sql: str) -> list[tuple[Any, ...]]:
    with store.cursor() as cursor:
        return cursor.execute(sql).fetchall()


@pytest.fixture
def store():
    with EventStore(":memory:") as store:
        yield store


def test_new_file_gets_the_schema_and_reopens_with_its_keys(tmp_path: Path) -> None:
    path = tmp_path / "events.duckdb"
    with EventStore(path) as store:
        assert store.schema_version == SCHEMA_VERSION
        store.insert_predictions(preds("a", "b"))
    with EventStore(path) as store:
        assert rows(store, "SELECT value FROM meta") == [(str(SCHEMA_VERSION),)]
        again = store.insert_predictions(preds("a", "c"))
        assert (again.inserted, again.duplicates) == (1, 1)  # keys reloaded from the file


def test_duplicates_conflicts_and_whole_batch_refusal(store: EventStore) -> None:
    first = store.insert_predictions(preds("a", "b"))
    assert (first.inserted, first.duplicates, first.conflicts) == (2, 0, [])
    before = store.checksum()
    changed = preds("c", "a", probabilities=0.5)
    outcome = store.insert_predictions(changed)
    assert outcome.inserted == 0 and [(c.index, c.request_id) for c in outcome.conflicts] == [
        (1, "a")
    ]
    assert store.checksum() == before
    # In one write, the conflicting batch stores nothing and the others commit.
    good, bad = store.write(
        [EventBatch("predictions", preds("d")), EventBatch("predictions", changed)]
    )
    assert (good.inserted, bad.inserted, len(bad.conflicts)) == (1, 0, 1)
    assert rows(store, "SELECT request_id FROM predictions ORDER BY 1") == [("a",), ("b",), ("d",)]


def test_duplicates_within_a_batch_and_across_batches_of_one_write(store: EventStore) -> None:
    same = preds("a", "a", "b")
    assert (store.insert_predictions(same).inserted, store.counts()["predictions"]) == (2, 2)
    one, two = store.write(
        [EventBatch("predictions", preds("x")), EventBatch("predictions", preds("x"))]
    )
    assert (one.inserted, two.inserted, two.duplicates) == (1, 0, 1)
    a, b = preds("y"), preds("y", probabilities=0.9)
    merged = store.write([EventBatch("predictions", a), EventBatch("predictions", b)])
    assert merged[0].inserted == 1 and len(merged[1].conflicts) == 1


def test_tenants_and_models_are_separate_identities(store: EventStore) -> None:
    assert store.insert_predictions(preds("a", tenant="t1")).inserted == 1
    assert store.insert_predictions(preds("a", tenant="t2", probabilities=0.9)).inserted == 1
    other_model = parse_predictions(
        [{"request_id": "a", "model": "m2", "probabilities": 0.9}], tenant="t1"
    )
    assert store.insert_predictions(other_model).inserted == 1


def test_labels_wait_for_their_prediction_and_then_join(store: EventStore) -> None:
    early = store.insert_labels(labels("a"))  # model-less, before the prediction
    specific = store.insert_labels(labels("b", model="m"))
    assert (early.pending, specific.pending) == (1, 1)
    released = store.insert_predictions(preds("a", "b", "c"))
    assert released.joined == 2
    late = store.insert_labels(labels("c"))
    assert (late.joined, late.pending) == (1, 0)
    assert store.counts("t")["pending"] == 0
    assert rows(store, "SELECT request_id, label FROM joined ORDER BY 1") == [
        ("a", "1"), ("b", "1"), ("c", "1")
    ]  # fmt: skip


def test_prediction_and_label_in_the_same_write_join(store: EventStore) -> None:
    label_first = store.write(
        [EventBatch("labels", labels("a")), EventBatch("predictions", preds("a"))]
    )
    assert (label_first[0].pending, label_first[1].joined) == (1, 1)
    prediction_first = store.write(
        [EventBatch("predictions", preds("b")), EventBatch("labels", labels("b", model="m"))]
    )
    assert (prediction_first[1].joined, prediction_first[1].pending) == (1, 0)
    assert store.counts()["pending"] == 0


def test_label_naming_the_model_wins_over_a_model_less_one(store: EventStore) -> None:
    store.insert_predictions(preds("a"))
    store.insert_labels(parse_labels([{"request_id": "a", "label": 0}], tenant="t"))
    store.insert_labels(parse_labels([{"request_id": "a", "model": "m", "label": 1}], tenant="t"))
    assert rows(store, "SELECT label FROM joined") == [("1",)]


def test_model_less_label_joins_every_model_of_the_request(store: EventStore) -> None:
    shadow = parse_predictions(
        [
            {"request_id": "a", "model": "prod", "probabilities": 0.2},
            {"request_id": "a", "model": "shadow", "probabilities": 0.4},
        ],
        tenant="t",
    )
    store.insert_predictions(shadow)
    assert store.insert_labels(labels("a")).joined == 1
    assert rows(store, "SELECT model FROM joined ORDER BY 1") == [("prod",), ("shadow",)]


def test_orphans_are_counted_after_the_join_window_and_kept() -> None:
    with EventStore(":memory:", join_window=timedelta(hours=1)) as store:
        store.insert_labels(labels("lost"))
        now = datetime.now(UTC)
        assert store.counts(now=now)["orphans"] == 0
        later = store.counts(now=now + timedelta(hours=2))
        assert (later["orphans"], later["pending"], later["labels"]) == (1, 1, 1)
        # A very late prediction still joins it.
        assert store.insert_predictions(preds("lost")).joined == 1


def test_models_and_known_labels(store: EventStore) -> None:
    store.insert_predictions(
        parse_predictions(
            [
                {"request_id": "a", "model": "m", "version": "v1", "probabilities": 0.2,
                 "timestamp": "2026-01-01T00:00:00Z"},
                {"request_id": "b", "model": "m", "version": "v2", "probabilities": 0.2,
                 "timestamp": "2026-01-02T00:00:00Z"},
                {"request_id": "c", "model": "k", "probabilities": {"cat": 0.5, "dog": 0.5}},
            ],
            tenant="t",
        )
    )  # fmt: skip
    store.insert_labels(labels("a", model="m"))
    models = store.models("t")
    assert [(m["model"], m["version"], m["predictions"], m["joined"]) for m in models] == [
        ("k", "", 1, 0), ("m", "v1", 1, 1), ("m", "v2", 1, 0)
    ]  # fmt: skip
    assert models[1]["first_event"] == "2026-01-01T00:00:00+00:00"
    assert store.known_labels("t", "m") == {"0", "1"}
    assert store.known_labels("t", None) == {"0", "1", "cat", "dog"}
    assert store.known_labels("t", "nope") is None and store.known_labels("other", None) is None
    assert store.models("other") == []


def test_retention_deletes_old_rows_and_frees_their_keys(store: EventStore) -> None:
    store.insert_predictions(preds("old", timestamp="2026-01-01T00:00:00Z"))
    store.insert_predictions(preds("new", timestamp="2026-03-01T00:00:00Z"))
    deleted = store.apply_retention(30, now=datetime(2026, 3, 2, tzinfo=UTC))
    assert deleted["predictions"] == 1
    assert rows(store, "SELECT request_id FROM predictions") == [("new",)]
    assert store.insert_predictions(preds("old", timestamp="2026-01-01T00:00:00Z")).inserted == 1


def test_a_failed_commit_leaves_memory_and_disk_unchanged(
    store: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.insert_predictions(preds("a"))
    before = store.checksum()
    real = store._commit

    def exploding(plans: Any) -> None:
        monkeypatch.setattr(store, "_apply", lambda plans: None)
        store._con.execute("BEGIN")
        store._con.execute("ROLLBACK")
        raise OSError("disk full")

    monkeypatch.setattr(store, "_commit", exploding)
    with pytest.raises(OSError):
        store.insert_predictions(preds("b"))
    monkeypatch.setattr(store, "_commit", real)
    assert store.checksum() == before
    assert store.insert_predictions(preds("b")).inserted == 1  # "b" did not become a phantom key


def test_second_process_gets_a_lock_error_naming_the_holder(tmp_path: Path) -> None:
    path = tmp_path / "locked.duckdb"
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys, time
            from xebench.store import EventStore
            store = EventStore({str(path)!r})
            print("open", flush=True)
            time.sleep(60)
        """)],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "open"
        with pytest.raises(StoreLockedError) as caught:
            EventStore(path)
        assert caught.value.pid == holder.pid
        assert f"PID {holder.pid}" in str(caught.value) and str(path) in str(caught.value)
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()


def test_every_committed_write_survives_kill_9(tmp_path: Path) -> None:
    path = tmp_path / "crash.duckdb"
    writer = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            from xebench.events import parse_predictions
            from xebench.store import EventStore
            store = EventStore({str(path)!r})
            for batch in range(100000):
                events = [{{"request_id": f"{{batch}}-{{i}}", "model": "m", "probabilities": 0.5}}
                          for i in range(50)]
                store.insert_predictions(parse_predictions(events, tenant="t"))
                print(batch, flush=True)   # acknowledged only after the commit returned
        """)],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    acknowledged = -1
    deadline = time.monotonic() + 30
    try:
        while acknowledged < 40 and time.monotonic() < deadline:
            acknowledged = int(writer.stdout.readline())
    finally:
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait()
        writer.stdout.close()
    with EventStore(path) as store:
        stored_batches = rows(
            store, "SELECT DISTINCT split_part(request_id, '-', 1)::INT FROM predictions"
        )
        stored = {b for (b,) in stored_batches}
        assert set(range(acknowledged + 1)) <= stored
        per_batch = rows(
            store, "SELECT count(*) FROM predictions GROUP BY split_part(request_id, '-', 1)"
        )
        assert {n for (n,) in per_batch} == {50}  # whole batches only: a commit is atomic


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.integers(-(2**63), 2**63 - 1), max_size=40), max_size=40))
def test_fingerprint_index_matches_a_set(batches: list[list[int]]) -> None:
    index, reference = FingerprintIndex(), set()
    for batch in batches:
        index.add(np.array(batch, dtype=np.int64))
        reference.update(batch)
    probe = np.array(sorted(reference | {0, 1, -1}), dtype=np.int64)
    assert index.contains(probe).tolist() == [int(k) in reference for k in probe]
