"""The alert tables: a state change and its outbox rows commit together or not at all,
through the store's one write connection; migration 8 upgrades an older file."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
from alerting_helpers import MINUTE, T0, slo, status

import xebench.alerting.store as alert_store
import xebench.store.event_store as store_module
from xebench.alerting import Alerting, AlertingSettings
from xebench.store import EventStore

SETTINGS = AlertingSettings.from_mapping(
    {"webhooks": [{"url": "http://127.0.0.1:9/hook", "name": "hook"}]}
)


@pytest.fixture
def store() -> Iterator[EventStore]:
    with EventStore(":memory:") as opened:
        yield opened


def counts(store: EventStore) -> tuple[int, int, int]:
    with store.cursor() as cursor:
        return tuple(  # type: ignore[return-value]
            cursor.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in ("alerts", "alert_history", "alert_outbox")
        )


def test_the_tables_of_schema_8(store: EventStore) -> None:
    with store.cursor() as cursor:
        outbox = [row[0] for row in cursor.execute("DESCRIBE alert_outbox").fetchall()]
        alerts = [row[0] for row in cursor.execute("DESCRIBE alerts").fetchall()]
    assert outbox == [
        "id", "key", "target", "kind", "payload", "idempotency_key", "created_at", "attempts",
        "next_attempt_at", "delivered_at", "dead_at", "superseded_by", "last_error",
        "last_status",
    ]  # fmt: skip
    assert {"key", "state", "since", "fingerprint", "labels", "evidence"} <= set(alerts)


def test_a_failure_after_the_state_change_rolls_back_state_history_and_outbox(
    store: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    alerting = Alerting(store, SETTINGS)
    seen: list[tuple[int, int, int]] = []

    def failing_enqueue(con: duckdb.DuckDBPyConnection, rows: Any) -> list[int]:
        # The state and its history row are written by now (same connection, same
        # transaction): the failure comes between them and the outbox rows.
        seen.append(
            tuple(con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]  # type: ignore[misc]
                  for t in ("alerts", "alert_history", "alert_outbox"))
        )  # fmt: skip
        raise OSError("disk full")

    monkeypatch.setattr(alert_store, "enqueue", failing_enqueue)
    with pytest.raises(OSError, match="disk full"):
        alerting.evaluate([status(slo(), page=1)], T0)
    assert seen == [(1, 1, 0)]  # the state change happened inside the transaction ...
    assert counts(store) == (0, 0, 0)  # ... and was rolled back with the missing rows
    monkeypatch.undo()
    # The same minute again: the alert fires and its notification is enqueued.
    [change] = [c for c in alerting.evaluate([status(slo(), page=1)], T0) if c.notices]
    assert change.notices == ("firing",)
    assert counts(store) == (1, 1, 1)


def test_an_outbox_row_is_enqueued_once_per_idempotency_key(store: EventStore) -> None:
    row = alert_store.OutboxRow("t/s/page", "hook", "firing", "{}", "xeb-1", T0)
    assert store.write_transaction(lambda con: alert_store.enqueue(con, [row])) == [1]
    assert store.write_transaction(lambda con: alert_store.enqueue(con, [row])) == []
    assert alert_store.outbox_summary(store)["total"] == 1


def test_writes_go_through_the_stores_write_lock(store: EventStore) -> None:
    # While another thread holds the write lock (the writer thread in a transaction),
    # an evaluation waits for it instead of opening a second write transaction.
    alerting = Alerting(store, SETTINGS)
    done = threading.Event()
    with store._write_lock:  # the writer, mid-transaction
        thread = threading.Thread(
            target=lambda: (alerting.evaluate([status(slo(), page=1)], T0), done.set())
        )
        thread.start()
        assert not done.wait(0.3)
    assert done.wait(10)
    thread.join()
    assert counts(store) == (1, 1, 1)


def test_summary_and_dead_letters(store: EventStore) -> None:
    alerting = Alerting(store, SETTINGS)
    alerting.evaluate([status(slo("a"), page=1), status(slo("b"), page=1)], T0)
    summary = alerting.outbox_summary()
    assert (summary["total"], summary["pending"], summary["dead"]) == (2, 2, 0)
    assert summary["oldest_pending"] == "2026-03-01T12:00:00Z"
    assert summary["targets"]["hook"]["pending"] == 2
    ids = store.write_transaction(
        lambda con: alert_store.dead_letter_expired(con, T0 + 25 * 60 * MINUTE, SETTINGS.max_age)
    )
    assert ids == [1, 2]
    summary = alerting.outbox_summary()
    assert (summary["pending"], summary["dead"], summary["oldest_pending"]) == (0, 2, None)
    [first, *_] = alerting.dead_letters()
    assert first["payload"]["version"] == "4"
    assert first["last_error"].startswith("undelivered after max_age")


def test_a_schema_7_file_upgrades_and_keeps_its_events(tmp_path: Path) -> None:
    path = tmp_path / "v7.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE meta (key VARCHAR PRIMARY KEY, value VARCHAR)")
    for step in store_module.MIGRATIONS[:7]:
        step(con) if callable(step) else con.execute(step)
    con.execute("INSERT INTO meta VALUES ('schema_version', '7')")
    con.close()
    with EventStore(path) as store:
        assert store.schema_version == store_module.SCHEMA_VERSION  # 8 and later
        assert counts(store) == (0, 0, 0)
        Alerting(store, SETTINGS).evaluate([status(slo(), page=1)], T0)
    with EventStore(path) as store:
        assert counts(store) == (1, 1, 1)
