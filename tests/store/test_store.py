"""The DuckDB event store: schema and migrations, idempotency, pending labels and the join,
orphans, retention, rollback, locking and durability (kill -9).

Tables are built here from the schemas (not through ``xebench.ingest.events``), so every
expectation is worked out from the rows written, by hand.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xebench.errors import InvalidInputError
from xebench.store import migrations as store_module
from xebench.store.event_store import (
    SCHEMA_VERSION,
    Conflict,
    EventBatch,
    EventStore,
    FingerprintIndex,
    StoreError,
    StoreLockedError,
)
from xebench.store.schema import (
    LABEL_SCHEMA,
    PREDICTION_SCHEMA,
    SEQUENCE_SCHEMA,
    fingerprint,
    hash64,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def predictions(
    *ids: str,
    tenant: str = "t",
    model: str = "m",
    version: str = "v1",
    p: float = 0.25,
    classes: tuple[str, ...] = ("0", "1"),
    at: datetime = T0,
    ingest: datetime | None = None,
) -> pa.Table:
    """Binary (or ``classes``) predictions of ``model``, one per request id."""
    probabilities = [1 - p, p] if len(classes) == 2 else [1 / len(classes)] * len(classes)
    content = json.dumps([version, list(classes), probabilities, at.isoformat()]).encode()
    n = len(ids)
    return pa.table(
        {
            "fp": [fingerprint(tenant, model, i) for i in ids],
            "rfp": [fingerprint(tenant, "", i) for i in ids],
            "tenant": [tenant] * n,
            "model": [model] * n,
            "version": [version] * n,
            "request_id": list(ids),
            "event_time": [at] * n,
            "ingest_time": [ingest or datetime.now(UTC)] * n,
            "classes": [list(classes)] * n,
            "probabilities": [probabilities] * n,
            "cohort": [[("region", "eu")]] * n,
            "features": ['{"amount": 3}'] * n,
            "payload_hash": [hash64(content)] * n,
            "weight": [1.0] * n,
        },
        schema=PREDICTION_SCHEMA,
    )


def labels(
    *ids: str,
    tenant: str = "t",
    model: str = "",
    label: str = "1",
    at: datetime = T0,
    ingest: datetime | None = None,
) -> pa.Table:
    """Labels of ``model`` ("" names none), one per request id."""
    n = len(ids)
    return pa.table(
        {
            "fp": [fingerprint(tenant, model, i) for i in ids],
            "tenant": [tenant] * n,
            "model": [model] * n,
            "request_id": list(ids),
            "label": [label] * n,
            "event_time": [at] * n,
            "ingest_time": [ingest or datetime.now(UTC)] * n,
            "payload_hash": [hash64(f"{label}|{at.isoformat()}".encode())] * n,
            "correction": [False] * n,
        },
        schema=LABEL_SCHEMA,
    )


def rows(store: EventStore, sql: str) -> list[tuple[Any, ...]]:
    with store.cursor() as cursor:
        return cursor.execute(sql).fetchall()


def outcome(result: Any) -> tuple[int, int, int, int, int]:
    """(inserted, duplicates, conflicts, pending, joined) of one WriteOutcome."""
    return (
        result.inserted,
        result.duplicates,
        len(result.conflicts),
        result.pending,
        result.joined,
    )


# --- schema and migrations ----------------------------------------------------------------


def test_tables_follow_the_event_schemas(store: EventStore) -> None:
    assert store.schema_version == SCHEMA_VERSION == 10
    assert rows(store, "SELECT key, value FROM meta ORDER BY key") == [
        ("folded_labels", "-1"),
        ("folded_predictions", "-1"),
        ("schema_version", "10"),
    ]
    # Every event row carries the sequence number of its commit (what the bucket fold reads).
    for table, schema in (("predictions", SEQUENCE_SCHEMA), ("labels", LABEL_SCHEMA)):
        columns = [name for name, *_ in rows(store, f"DESCRIBE {table}")]
        added = ["seq", "correction"] if table == "labels" else ["seq", "weight", "tokens"]
        assert sorted(columns) == sorted([*schema.names, "seq"])
        assert columns[-len(added) :] == added  # by migrations, in order
    joined = [name for name, *_ in rows(store, "DESCRIBE joined")]
    stored = [name for name in PREDICTION_SCHEMA.names if name != "weight"]
    assert joined == [
        *stored, "seq", "weight", "tokens", "label", "label_time", "label_ingest_time"
    ]  # fmt: skip


def test_migrations_run_once_in_order_in_one_transaction(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "events.duckdb"
    with EventStore(path) as store:
        store.insert_predictions(predictions("a"))
    calls = []

    def third(con: duckdb.DuckDBPyConnection) -> None:
        calls.append(con.execute("SELECT count(*) FROM extra").fetchone()[0])
        con.execute("INSERT INTO extra VALUES (3)")

    first = list(store_module.MIGRATIONS)
    base = len(first)  # the real migrations; two made-up ones follow
    monkeypatch.setattr(store_module, "MIGRATIONS", [*first, "CREATE TABLE extra (x INT)", third])
    with EventStore(path) as store:
        assert store.schema_version == base + 2
        assert rows(store, "SELECT value FROM meta WHERE key = 'schema_version'") == [
            (str(base + 2),)
        ]
        assert rows(store, "SELECT x FROM extra") == [(3,)]
        assert rows(store, "SELECT request_id FROM predictions") == [("a",)]
    with EventStore(path) as store:  # already up to date: nothing runs again
        assert store.schema_version == base + 2
    assert calls == [0]

    def failing(con: duckdb.DuckDBPyConnection) -> None:
        raise RuntimeError("the last migration failed")

    upgrades = [*first, "CREATE TABLE extra (x INT)", third, "CREATE TABLE four (y INT)", failing]
    monkeypatch.setattr(store_module, "MIGRATIONS", upgrades)
    with pytest.raises(RuntimeError, match="the last migration failed"):
        EventStore(path)
    monkeypatch.setattr(store_module, "MIGRATIONS", [*first, "CREATE TABLE extra (x INT)", third])
    with EventStore(path) as store:  # the table of the one before was rolled back with it
        assert store.schema_version == base + 2
        assert rows(store, "SELECT count(*) FROM information_schema.tables "
                           "WHERE table_name = 'four'") == [(0,)]  # fmt: skip
    monkeypatch.setattr(store_module, "MIGRATIONS", first)
    with pytest.raises(StoreError, match=f"schema version {base + 2}, newer than this xebench"):
        EventStore(path)


def test_a_batch_with_another_schema_is_refused_before_anything_is_written(
    store: EventStore,
) -> None:
    before = store.checksum()
    wrong = predictions("a").drop_columns(["features"])
    with pytest.raises(InvalidInputError, match="batches: a predictions table must have"):
        store.write([EventBatch("predictions", predictions("b")), EventBatch("predictions", wrong)])
    with pytest.raises(InvalidInputError, match="kind must be"):
        store.write([EventBatch("scores", predictions("c"))])  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="must be EventBatch"):
        store.write([("predictions", predictions("c"))])  # type: ignore[list-item]
    assert store.write([]) == []
    assert store.checksum() == before


# --- idempotency ------------------------------------------------------------------------


def test_an_identical_resend_is_counted_once(store: EventStore) -> None:
    assert outcome(store.insert_predictions(predictions("a", "b"))) == (2, 0, 0, 0, 0)
    before = store.checksum()
    assert outcome(store.insert_predictions(predictions("a", "b", "c"))) == (1, 2, 0, 0, 0)
    assert outcome(store.insert_predictions(predictions("a", "b", "c"))) == (0, 3, 0, 0, 0)
    assert store.checksum() != before
    assert rows(store, "SELECT request_id FROM predictions ORDER BY 1") == [
        ("a",), ("b",), ("c",)
    ]  # fmt: skip
    assert outcome(store.insert_labels(labels("a"))) == (1, 0, 0, 0, 1)
    assert outcome(store.insert_labels(labels("a"))) == (0, 1, 0, 0, 0)
    assert store.counts() == {"predictions": 3, "labels": 1, "pending": 0, "orphans": 0}


def test_a_conflict_refuses_its_whole_batch_and_the_other_batches_commit(
    store: EventStore,
) -> None:
    store.insert_predictions(predictions("a", "b"))
    before = store.checksum()
    # "c" is new, "a" reuses a stored identity with another payload (p 0.5).
    refused = store.insert_predictions(predictions("c", "a", p=0.5))
    assert (refused.inserted, refused.duplicates) == (0, 0)
    assert [(c.index, c.model, c.request_id) for c in refused.conflicts] == [(1, "m", "a")]
    assert store.checksum() == before  # not even "c"
    good, bad, also_good = store.write(
        [
            EventBatch("predictions", predictions("d")),
            EventBatch("predictions", predictions("e", "b", p=0.9)),
            EventBatch("labels", labels("d")),
        ]
    )
    assert outcome(good) == (1, 0, 0, 0, 0)
    assert outcome(bad) == (0, 0, 1, 0, 0) and bad.conflicts[0].index == 1
    assert outcome(also_good) == (1, 0, 0, 0, 1)
    assert rows(store, "SELECT request_id FROM predictions ORDER BY 1") == [
        ("a",), ("b",), ("d",)
    ]  # fmt: skip
    assert store.checksum() != before
    # A label conflicts the same way: one per (tenant, model, request_id).
    refused_label = store.insert_labels(labels("d", label="0"))
    assert [(c.index, c.model, c.request_id) for c in refused_label.conflicts] == [(0, "", "d")]
    assert rows(store, "SELECT label FROM labels") == [("1",)]


def test_duplicates_of_rows_ingested_long_ago_are_found(store: EventStore) -> None:
    long_ago = T0 - timedelta(days=300)  # outside the recent span looked up first
    store.insert_predictions(predictions("a", "b", ingest=long_ago))
    store.insert_labels(labels("a", ingest=long_ago))
    again = store.insert_predictions(predictions("a", "b", "c", ingest=datetime.now(UTC)))
    assert outcome(again) == (1, 2, 0, 0, 0)
    changed = store.insert_predictions(predictions("b", p=0.9))
    assert [(c.index, c.request_id) for c in changed.conflicts] == [(0, "b")]
    assert outcome(store.insert_labels(labels("a"))) == (0, 1, 0, 0, 0)


def test_duplicates_inside_one_batch(store: EventStore) -> None:
    same = pa.concat_tables([predictions("a"), predictions("a"), predictions("b")])
    assert outcome(store.insert_predictions(same)) == (2, 1, 0, 0, 0)
    different = pa.concat_tables([predictions("c"), predictions("c", p=0.75)])
    refused = store.insert_predictions(different)
    assert [(c.index, c.request_id) for c in refused.conflicts] == [(1, "c")]
    assert rows(store, "SELECT count(*) FROM predictions") == [(2,)]


def test_duplicates_across_the_batches_of_one_write(store: EventStore) -> None:
    one, two = store.write(
        [EventBatch("predictions", predictions("x")), EventBatch("predictions", predictions("x"))]
    )
    assert (outcome(one), outcome(two)) == ((1, 0, 0, 0, 0), (0, 1, 0, 0, 0))
    first, second = store.write(
        [
            EventBatch("predictions", predictions("y")),
            EventBatch("predictions", predictions("y", p=0.9)),
        ]
    )
    assert (first.inserted, len(second.conflicts)) == (1, 1)
    # A refused batch leaves nothing for later batches of the call to collide with.
    refused, after = store.write(
        [
            EventBatch("predictions", predictions("z", "y", p=0.9)),
            EventBatch("predictions", predictions("z", p=0.6)),
        ]
    )
    assert (len(refused.conflicts), outcome(after)) == (1, (1, 0, 0, 0, 0))
    assert rows(store, "SELECT request_id, probabilities[2] FROM predictions ORDER BY 1") == [
        ("x", 0.25), ("y", 0.25), ("z", 0.6)
    ]  # fmt: skip


def test_tenant_model_and_request_id_make_the_identity(store: EventStore) -> None:
    assert store.insert_predictions(predictions("a", tenant="t1")).inserted == 1
    assert store.insert_predictions(predictions("a", tenant="t2", p=0.9)).inserted == 1
    assert store.insert_predictions(predictions("a", tenant="t1", model="k", p=0.9)).inserted == 1
    assert store.insert_predictions(predictions("a", tenant="t1", p=0.9)).conflicts


# --- labels, pending labels and the join ---------------------------------------------------


def test_a_label_before_its_prediction_waits_then_joins(store: EventStore) -> None:
    assert outcome(store.insert_labels(labels("a", model="m"))) == (1, 0, 0, 1, 0)
    assert outcome(store.insert_labels(labels("b"))) == (1, 0, 0, 1, 0)  # model-less
    assert rows(store, "SELECT request_id, model FROM pending_labels ORDER BY 1") == [
        ("a", "m"), ("b", "")
    ]  # fmt: skip
    assert rows(store, "SELECT count(*) FROM joined") == [(0,)]
    # a (model m) and b (model-less) join; c has no label.
    assert outcome(store.insert_predictions(predictions("a", "b", "c"))) == (3, 0, 0, 0, 2)
    assert rows(store, "SELECT count(*) FROM pending_labels") == [(0,)]
    assert rows(store, "SELECT request_id, model, label FROM joined ORDER BY 1") == [
        ("a", "m", "1"), ("b", "m", "1")
    ]  # fmt: skip
    # The model-less label of b also joins another model's prediction of b.
    assert outcome(store.insert_predictions(predictions("b", model="k"))) == (1, 0, 0, 0, 1)
    assert rows(store, "SELECT model FROM joined WHERE request_id = 'b' ORDER BY 1") == [
        ("k",), ("m",)
    ]  # fmt: skip


def test_a_label_for_another_model_keeps_waiting(store: EventStore) -> None:
    store.insert_labels(labels("a", model="other"))
    assert store.insert_predictions(predictions("a")).joined == 0
    assert store.counts()["pending"] == 1
    assert store.insert_predictions(predictions("a", model="other")).joined == 1
    assert store.counts()["pending"] == 0


def test_a_label_after_its_prediction_joins_directly(store: EventStore) -> None:
    store.insert_predictions(predictions("a", "b"))
    store.insert_predictions(predictions("b", model="k"))
    assert outcome(store.insert_labels(labels("a", model="m", label="0"))) == (1, 0, 0, 0, 1)
    assert outcome(store.insert_labels(labels("b"))) == (1, 0, 0, 0, 1)
    assert outcome(store.insert_labels(labels("b", model="zz"))) == (1, 0, 0, 1, 0)
    assert rows(store, "SELECT request_id, model, label FROM joined ORDER BY 1, 2") == [
        ("a", "m", "0"), ("b", "k", "1"), ("b", "m", "1")
    ]  # fmt: skip
    assert store.counts()["pending"] == 1  # only the label of model zz


def test_a_label_naming_the_model_wins_over_a_model_less_one(store: EventStore) -> None:
    store.insert_predictions(predictions("a"))
    store.insert_predictions(predictions("a", model="k"))
    later = T0 + timedelta(hours=2)
    store.insert_labels(labels("a", label="0"))
    store.insert_labels(labels("a", model="m", label="1", at=later))
    assert rows(store, "SELECT model, label, label_time FROM joined ORDER BY 1") == [
        ("k", "0", T0), ("m", "1", later)
    ]  # fmt: skip


def test_a_prediction_and_its_label_in_the_same_write_are_joined(store: EventStore) -> None:
    label_first = store.write(
        [EventBatch("labels", labels("a")), EventBatch("predictions", predictions("a"))]
    )
    assert [outcome(o) for o in label_first] == [(1, 0, 0, 1, 0), (1, 0, 0, 0, 1)]
    prediction_first = store.write(
        [EventBatch("predictions", predictions("b")), EventBatch("labels", labels("b", model="m"))]
    )
    assert [outcome(o) for o in prediction_first] == [(1, 0, 0, 0, 0), (1, 0, 0, 0, 1)]
    assert store.counts()["pending"] == 0
    assert rows(store, "SELECT request_id FROM joined ORDER BY 1") == [("a",), ("b",)]


def test_orphans_are_counted_after_the_join_window_and_kept() -> None:
    received = datetime(2026, 1, 10, tzinfo=UTC)
    with EventStore(":memory:", join_window=timedelta(days=1)) as store:
        store.insert_labels(labels("lost", ingest=received))
        store.insert_labels(labels("late", ingest=received + timedelta(days=2)))
        at = received + timedelta(days=2, hours=1)
        assert store.counts(now=at) == {"predictions": 0, "labels": 2, "pending": 2, "orphans": 1}
        assert store.counts(now=received + timedelta(hours=1))["orphans"] == 0
        store.checkpoint()
        assert store.counts(now=at + timedelta(days=30))["orphans"] == 2  # kept, not dropped
        # A very late prediction still joins its orphan.
        assert store.insert_predictions(predictions("lost")).joined == 1
        assert store.counts(now=at + timedelta(days=30))["orphans"] == 1


# --- reads ----------------------------------------------------------------------------------


def test_models_counts_and_known_labels(store: EventStore) -> None:
    store.insert_predictions(predictions("a", "b", version="v1", at=T0))
    store.insert_predictions(predictions("c", version="v2", at=T0 + timedelta(days=1)))
    store.insert_predictions(predictions("d", version="v2", at=T0 + timedelta(days=2)))
    store.insert_predictions(predictions("a", model="k", version="", classes=("cat", "dog", "fox")))
    store.insert_predictions(predictions("z", tenant="other"))
    store.insert_labels(labels("a"))  # joins m/v1 and k
    store.insert_labels(labels("c", model="m"))  # joins m/v2
    store.insert_labels(labels("q"))  # pending
    assert store.models("t") == [
        {"model": "k", "version": "", "predictions": 1, "labels": 1, "joined": 1,
         "first_event": "2026-01-01T00:00:00+00:00", "last_event": "2026-01-01T00:00:00+00:00",
         "classes": [["cat", "dog", "fox"]]},
        {"model": "m", "version": "v1", "predictions": 2, "labels": 1, "joined": 1,
         "first_event": "2026-01-01T00:00:00+00:00", "last_event": "2026-01-01T00:00:00+00:00",
         "classes": [["0", "1"]]},
        {"model": "m", "version": "v2", "predictions": 2, "labels": 1, "joined": 1,
         "first_event": "2026-01-02T00:00:00+00:00", "last_event": "2026-01-03T00:00:00+00:00",
         "classes": [["0", "1"]]},
    ]  # fmt: skip
    assert store.models("nobody") == []
    assert store.counts("t") == {"predictions": 5, "labels": 3, "pending": 1, "orphans": 0}
    assert store.counts("other") == {"predictions": 1, "labels": 0, "pending": 0, "orphans": 0}
    assert store.counts()["predictions"] == 6
    assert store.known_labels("t", "m") == {"0", "1"}
    assert store.known_labels("t", "k") == {"cat", "dog", "fox"}
    assert store.known_labels("t", None) == {"0", "1", "cat", "dog", "fox"}
    assert store.known_labels("t", "nope") is None
    assert store.known_labels("nobody", None) is None


def test_one_batch_of_several_versions_and_class_lists(store: EventStore) -> None:
    # A model version's class list is part of its identity: within one batch too, the
    # first row's list wins and a row of the same version with another list is refused.
    mixed = pa.concat_tables(
        [
            predictions("a", "b"),
            predictions("c", classes=("no", "yes")),
            predictions("d", version="v2"),
            predictions("e", model="k", classes=("x", "y", "z")),
        ]
    )
    outcome = store.insert_predictions(mixed)
    assert (outcome.inserted, outcome.conflicts) == (
        0,
        [Conflict(2, "m", "c", ("0", "1"), ("no", "yes"), "v1")],
    )
    assert outcome.conflicts[0].field == "/classes"
    assert store.models("t") == []
    clean = pa.concat_tables([mixed.slice(0, 2), mixed.slice(3)])
    assert store.insert_predictions(clean).inserted == 4
    models = store.models("t")
    assert [(m["model"], m["version"], m["predictions"], m["classes"]) for m in models] == [
        ("k", "v1", 1, [["x", "y", "z"]]),
        ("m", "v1", 2, [["0", "1"]]),
        ("m", "v2", 1, [["0", "1"]]),
    ]  # fmt: skip
    assert store.known_labels("t", "m") == {"0", "1"}


def test_a_refused_batch_teaches_no_classes(store: EventStore) -> None:
    store.insert_predictions(predictions("a"))
    refused = pa.concat_tables([predictions("b", classes=("x", "y")), predictions("a", p=0.9)])
    assert store.insert_predictions(refused).conflicts
    assert store.known_labels("t", "m") == {"0", "1"}


def test_checksum_covers_every_table_and_tenant(store: EventStore) -> None:
    empty = store.checksum()
    store.insert_labels(labels("a", tenant="t2"))
    assert store.checksum() != empty
    assert store.checksum("t") == empty  # tenant t has nothing yet
    with_label = store.checksum()
    store.insert_predictions(predictions("a", tenant="t2"))  # releases the pending label
    assert store.checksum() != with_label
    assert store.checksum("t2").startswith("predictions:1:")


def test_reads_from_other_threads_while_writing(store: EventStore) -> None:
    errors: list[BaseException] = []
    stop = threading.Event()

    def read() -> None:
        try:
            while not stop.is_set():
                store.counts("t")
                store.models("t")
                store.known_labels("t", None)
        except BaseException as error:  # reported below
            errors.append(error)

    readers = [threading.Thread(target=read) for _ in range(2)]
    for reader in readers:
        reader.start()
    try:
        for i in range(30):
            store.write(
                [
                    EventBatch("predictions", predictions(*(f"{i}-{j}" for j in range(20)))),
                    EventBatch("labels", labels(f"{i}-0")),
                ]
            )
    finally:
        stop.set()
        for reader in readers:
            reader.join()
    assert errors == []
    assert store.counts("t") == {"predictions": 600, "labels": 30, "pending": 0, "orphans": 0}


# --- retention --------------------------------------------------------------------------------


def test_retention_deletes_old_rows_and_frees_their_keys(store: EventStore) -> None:
    old, new = T0, T0 + timedelta(days=60)
    store.insert_predictions(predictions("a", "b", at=old))
    store.insert_predictions(predictions("b", model="k", at=new))
    store.insert_predictions(predictions("c", at=new))
    store.insert_labels(labels("a", model="m", ingest=old))
    store.insert_labels(labels("gone", ingest=old))  # pending, deleted with its label
    store.insert_labels(labels("kept", ingest=new))  # pending, kept
    deleted = store.apply_retention(30, now=new + timedelta(days=1))
    assert deleted == {"predictions": 2, "labels": 2, "pending_labels": 1}
    assert rows(store, "SELECT request_id, model FROM predictions ORDER BY 1, 2") == [
        ("b", "k"), ("c", "m")
    ]  # fmt: skip
    assert rows(store, "SELECT request_id FROM pending_labels") == [("kept",)]
    # Their keys are free again: the same events are new, not duplicates.
    assert outcome(store.insert_predictions(predictions("a", at=old))) == (1, 0, 0, 0, 0)
    assert outcome(store.insert_labels(labels("a", model="m", ingest=new))) == (1, 0, 0, 0, 1)
    # b's model-less key (rfp) survives through model k's prediction of b.
    assert outcome(store.insert_labels(labels("b"))) == (1, 0, 0, 0, 1)
    assert store.known_labels("t", "k") == {"0", "1"}


def test_retention_forgets_the_classes_of_a_model_that_is_gone(store: EventStore) -> None:
    store.insert_predictions(predictions("a", model="k", classes=("x", "y"), at=T0))
    store.apply_retention(1, now=T0 + timedelta(days=2))
    assert store.known_labels("t", "k") is None


# --- failures ------------------------------------------------------------------------------


class _FailingCommit:
    """A stand-in for the store's DuckDB connection whose COMMIT fails like a full disk."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con

    def execute(self, sql: str, *args: Any) -> Any:
        if sql == "COMMIT":
            raise duckdb.IOException("could not write the WAL: No space left on device")
        return self.con.execute(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.con, name)


def test_a_failed_commit_leaves_disk_and_memory_unchanged(
    store: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.insert_predictions(predictions("a"))
    before = store.checksum()
    monkeypatch.setattr(store, "_writer", _FailingCommit(store._writer))
    batches = [
        EventBatch("labels", labels("b")),
        EventBatch("predictions", predictions("b", "c", version="v2", classes=("x", "y"))),
    ]
    with pytest.raises(duckdb.IOException, match="No space left"):
        store.write(batches)
    monkeypatch.undo()
    assert store.checksum() == before
    assert store.known_labels("t", "m") == {"0", "1"}
    # No phantom keys: the same events are new, not duplicates.
    assert [outcome(o) for o in store.write(batches)] == [(1, 0, 0, 1, 0), (2, 0, 0, 0, 1)]


def test_a_failure_mid_write_rolls_back_the_batches_before_it(
    store: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = store.checksum()
    real = store._writes._insert

    def insert(con: Any, target: str, table: pa.Table, seq: int | None = None) -> None:
        if target == "labels":
            raise duckdb.IOException("disk I/O error")
        real(con, target, table, seq)

    monkeypatch.setattr(store._writes, "_insert", insert)
    batches = [EventBatch("predictions", predictions("a")), EventBatch("labels", labels("a"))]
    with pytest.raises(duckdb.IOException):
        store.write(batches)
    monkeypatch.undo()
    assert store.checksum() == before
    assert store.healthy()
    assert [outcome(o) for o in store.write(batches)] == [(1, 0, 0, 0, 0), (1, 0, 0, 0, 1)]


def test_a_store_whose_index_update_failed_refuses_writes_until_reopened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "events.duckdb"
    store = EventStore(path)

    def out_of_memory(keys: Any) -> None:
        raise MemoryError

    monkeypatch.setattr(store._writes.prediction_rfps, "add", out_of_memory)
    with pytest.raises(MemoryError):
        store.insert_predictions(predictions("a"))  # committed, but not fully indexed
    assert not store.healthy()
    with pytest.raises(StoreError, match="must be reopened: MemoryError"):
        store.insert_predictions(predictions("a"))
    store.close()
    with EventStore(path) as reopened:  # reloads every key from the file
        assert reopened.healthy()
        assert outcome(reopened.insert_predictions(predictions("a"))) == (0, 1, 0, 0, 0)


def test_a_closed_store_is_unhealthy_and_refuses_writes() -> None:
    store = EventStore(":memory:")
    assert store.healthy()
    store.close()
    store.close()
    assert not store.healthy()
    with pytest.raises(StoreError, match="closed"):
        store.insert_predictions(predictions("a"))


def test_a_second_process_gets_a_lock_error_naming_the_holder(tmp_path: Path) -> None:
    path = tmp_path / "locked.duckdb"
    script = textwrap.dedent(f"""
        import time
        from xebench.store.event_store import EventStore
        store = EventStore({str(path)!r})
        print("open", flush=True)
        time.sleep(60)
    """)
    holder = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        with pytest.raises(StoreLockedError) as caught:
            EventStore(path)
    finally:
        holder.kill()
        holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()
    error = caught.value
    assert (error.pid, error.path) == (holder.pid, path)
    message = str(error)
    assert message.startswith(f"database {path} is in use by another process (PID {holder.pid}: ")
    assert sys.executable in message and "EventStore" in message  # its command line
    assert message.endswith("stop that process or pass another --db")
    with EventStore(path) as store:  # free again once the holder is gone
        assert store.counts()["predictions"] == 0


def test_the_same_file_twice_in_one_process_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "once.duckdb"
    with EventStore(path):
        with pytest.raises(StoreLockedError, match="already open in this process") as caught:
            EventStore(path)
        assert caught.value.pid == os.getpid()
    with EventStore(path) as store:  # closing released it
        assert store.healthy()


def test_an_unusable_file_is_a_clear_store_error(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.duckdb"
    garbage.write_bytes(b"not a database" * 1000)
    with pytest.raises(StoreError, match=r"cannot open event store .*garbage\.duckdb") as caught:
        EventStore(garbage)
    assert not isinstance(caught.value, StoreLockedError)
    assert isinstance(caught.value, OSError)
    with pytest.raises(StoreError, match="cannot open event store"):
        EventStore(tmp_path / "missing" / "x.duckdb")
    with EventStore(tmp_path / "fine.duckdb"):  # a failed open leaves nothing registered
        pass


# --- durability -------------------------------------------------------------------------------


def test_a_reopened_file_still_detects_duplicates_and_joins(tmp_path: Path) -> None:
    path = tmp_path / "events.duckdb"
    with EventStore(path) as store:
        store.insert_predictions(predictions("a", "b"))
        store.insert_predictions(predictions("a", model="k", classes=("x", "y")))
        store.insert_labels(labels("a"))
        store.insert_labels(labels("w", model="m"))
    with EventStore(path) as store:
        assert outcome(store.insert_predictions(predictions("a", "c"))) == (1, 1, 0, 0, 0)
        assert store.insert_predictions(predictions("b", p=0.9)).conflicts
        assert outcome(store.insert_labels(labels("a"))) == (0, 1, 0, 0, 0)
        assert outcome(store.insert_labels(labels("b", model="m"))) == (1, 0, 0, 0, 1)
        assert outcome(store.insert_labels(labels("c"))) == (1, 0, 0, 0, 1)  # via rfp
        assert outcome(store.insert_predictions(predictions("w"))) == (1, 0, 0, 0, 1)
        assert store.known_labels("t", None) == {"0", "1", "x", "y"}
        assert store.counts() == {"predictions": 5, "labels": 4, "pending": 0, "orphans": 0}


@pytest.mark.slow
def test_every_acknowledged_write_survives_kill_9(tmp_path: Path) -> None:
    path = tmp_path / "crash.duckdb"
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_store import predictions
        from xebench.store.event_store import EventStore
        store = EventStore({str(path)!r})
        for batch in range(100000):
            store.insert_predictions(predictions(*(f"{{batch}}-{{i}}" for i in range(50))))
            print(batch, flush=True)  # acknowledged only once the commit returned
    """)
    writer = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    acknowledged = -1
    deadline = time.monotonic() + 60
    try:
        assert writer.stdout is not None
        while acknowledged < 40 and time.monotonic() < deadline:
            line = writer.stdout.readline()
            if not line:
                break
            acknowledged = int(line)
    finally:
        os.kill(writer.pid, signal.SIGKILL)  # in the middle of a later write
        writer.wait()
        if writer.stdout is not None:
            writer.stdout.close()
    assert acknowledged >= 40
    with EventStore(path) as store:
        per_batch = dict(
            rows(
                store,
                "SELECT split_part(request_id, '-', 1)::INT, count(*) FROM predictions GROUP BY 1",
            )
        )
        assert set(range(acknowledged + 1)) <= per_batch.keys()
        assert set(per_batch.values()) == {50}  # a commit is whole or absent
        # The fingerprints were reloaded: resending an acknowledged batch stores nothing.
        resent = store.insert_predictions(predictions(*(f"7-{i}" for i in range(50))))
        assert (resent.inserted, resent.duplicates) == (0, 50)


# --- the fingerprint index ------------------------------------------------------------------


@settings(max_examples=80, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.booleans(),
            st.lists(st.integers(-(2**63), 2**63 - 1) | st.integers(-3, 3), max_size=30),
        ),
        max_size=30,
    )
)
def test_fingerprint_index_behaves_like_a_set(steps: list[tuple[bool, list[int]]]) -> None:
    index, reference = FingerprintIndex(merge_at=16), set()  # small: merges happen often
    for adding, keys in steps:
        if adding:
            index.add(np.array(keys, dtype=np.int64))
            reference.update(keys)
        else:
            index.remove(np.array(keys, dtype=np.int64))
            reference.difference_update(keys)
    probe = sorted(reference | {0, 1, -1, 2**63 - 1, -(2**63)})
    found = index.contains(np.array(probe[::-1], dtype=np.int64)).tolist()
    assert found == [k in reference for k in probe[::-1]]
    assert len(index) == len(reference) and index.nbytes == 8 * len(reference)


def test_fingerprint_index_on_a_large_array() -> None:
    rng = np.random.default_rng(7)
    stored = rng.integers(-(2**63), 2**63 - 1, 200_000, dtype=np.int64)
    index = FingerprintIndex(stored)  # large enough for the vectorised binary search
    probe = np.concatenate([rng.choice(stored, 5_000), rng.integers(-(2**63), 2**63 - 1, 5_000)])
    assert np.array_equal(index.contains(probe), np.isin(probe, stored))
    index.add(probe[-10:])
    index.remove(stored[:100])
    expected = np.isin(probe, np.setdiff1d(np.concatenate([stored, probe[-10:]]), stored[:100]))
    assert np.array_equal(index.contains(probe), expected)
