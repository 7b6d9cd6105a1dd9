"""Label corrections (issue 13, item 4): ``"correction": true`` replaces a stored label,
restates the windows it touches, keeps the old label for audit, and is idempotent."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
from fastapi.testclient import TestClient
from sklearn.metrics import log_loss

from xebench.ingest.events import parse_labels, parse_predictions
from xebench.service.app import create_app
from xebench.store import EventBatch, EventStore
from xebench.store import migrations as store_module

NOW = datetime.now(UTC) - timedelta(minutes=3)
P = [0.1, 0.2, 0.7, 0.15, 0.3, 0.05, 0.6, 0.25, 0.4, 0.35]


@pytest.fixture
def client() -> Iterator[TestClient]:
    with TestClient(create_app(EventStore(":memory:"), close_store=True)) as opened:
        yield opened


def _predictions(ids: range, minute: int = 0) -> list[dict[str, Any]]:
    return [
        {
            "request_id": f"tx{i}",
            "model": "fraud",
            "probabilities": P[i % len(P)],
            "timestamp": (NOW - timedelta(minutes=minute, seconds=i)).isoformat(),
            "cohort": {"region": ["eu", "us"][i % 2]},
        }
        for i in ids
    ]


def _window(client: TestClient, query: str = "") -> dict[str, Any]:
    reply = client.get(f"/v1/metrics?model=fraud&window=1h{query}")
    assert reply.status_code == 200, reply.text
    return reply.json()


def _history(client: TestClient) -> list[tuple[Any, ...]]:
    with client.app.state.writer.store.cursor() as cursor:
        return cursor.execute(
            "SELECT request_id, label, replaced_seq > seq FROM label_history ORDER BY request_id"
        ).fetchall()


def test_a_chargeback_reverses_a_fraud_label_and_restates_the_window(client: TestClient) -> None:
    assert client.post("/v1/predictions", json=_predictions(range(10))).status_code == 200
    labels = [{"request_id": f"tx{i}", "model": "fraud", "label": 0} for i in range(10)]
    assert client.post("/v1/labels", json=labels).json()["joined"] == 10
    y = [0] * 10
    before = _window(client)
    assert before["log_loss"] == pytest.approx(log_loss(y, P, labels=[0, 1]), rel=1e-9)

    # Without the flag a different label is a conflict: 409, nothing changes.
    changed = {"request_id": "tx3", "model": "fraud", "label": 1}
    assert client.post("/v1/labels", json=[changed]).status_code == 409
    assert _window(client)["log_loss"] == before["log_loss"]

    # The chargeback: tx3 was fraud after all.
    correction = {**changed, "correction": True}
    reply = client.post("/v1/labels", json=[correction])
    assert reply.status_code == 200, reply.text
    assert reply.json() == {
        "accepted": 1, "inserted": 0, "duplicates": 0, "joined": 0, "pending": 0, "corrected": 1
    }  # fmt: skip
    y[3] = 1
    after = _window(client)
    assert (after["n_predictions"], after["n_labelled"]) == (10, 10)
    assert after["log_loss"] == pytest.approx(log_loss(y, P), rel=1e-9)
    assert after["label_counts"] == {"0": 9.0, "1": 1.0}
    eu = _window(client, "&cohort=region:us")  # tx3 is odd: region us
    odd = [i for i in range(10) if i % 2]
    assert eu["log_loss"] == pytest.approx(
        log_loss([y[i] for i in odd], [P[i] for i in odd]), rel=1e-9
    )
    # Audited: the old label is kept with the commit that replaced it.
    assert _history(client) == [("tx3", "0", True)]

    # Idempotent: the same correction again is a duplicate; the old label is now a 409.
    again = client.post("/v1/labels", json=[correction]).json()
    assert (again["inserted"], again["duplicates"], again.get("corrected", 0)) == (0, 1, 0)
    assert client.post("/v1/labels", json=[{**changed, "label": 0}]).status_code == 409
    assert _window(client)["log_loss"] == after["log_loss"] and len(_history(client)) == 1

    # The restated buckets equal a recomputation from the corrected events.
    store = client.app.state.writer.store
    store.rebuild_buckets()
    rebuilt = _window(client)
    assert rebuilt["log_loss"] == pytest.approx(after["log_loss"], rel=1e-12)
    assert rebuilt["n_labelled"] == 10


def test_a_correction_without_a_stored_label_is_just_a_label(client: TestClient) -> None:
    client.post("/v1/predictions", json=_predictions(range(4)))
    body = [{"request_id": "tx1", "label": 1, "correction": True}]  # names no model
    reply = client.post("/v1/labels", json=body).json()
    assert (reply["inserted"], reply["joined"], reply.get("corrected", 0)) == (1, 1, 0)
    window = _window(client)
    assert window["n_labelled"] == 1
    assert window["log_loss"] == pytest.approx(log_loss([1], [P[1]], labels=[0, 1]), rel=1e-9)
    assert _history(client) == []


def test_a_pending_label_corrected_before_its_prediction_arrives(client: TestClient) -> None:
    client.post("/v1/predictions", json=_predictions(range(2)))  # the model exists
    early = {"request_id": "tx7", "model": "fraud", "label": 0}
    assert client.post("/v1/labels", json=[early]).json()["pending"] == 1
    fixed = client.post("/v1/labels", json=[{**early, "label": 1, "correction": True}]).json()
    assert fixed["corrected"] == 1
    client.post("/v1/predictions", json=_predictions(range(7, 8)))
    window = _window(client)
    assert window["n_labelled"] == 1
    assert window["log_loss"] == pytest.approx(log_loss([1], [P[7]], labels=[0, 1]), rel=1e-9)
    assert _history(client) == [("tx7", "0", True)]


def test_corrections_in_one_commit_with_other_events_and_across_minutes() -> None:
    """A label and its correction in the same write, and corrections in two minutes and
    two hours, folded in the commit or later by update_buckets: the same buckets."""
    results = []
    for fold in (True, False):
        store = EventStore(":memory:")
        events = _predictions(range(10)) + _predictions(range(10, 20), minute=70)
        table = parse_predictions(events, tenant="t")
        first = [{"request_id": f"tx{i}", "label": 0} for i in range(20)]
        fixes = [{"request_id": f"tx{i}", "label": 1, "correction": True} for i in (2, 4, 15)]
        store.write([EventBatch("predictions", table)], fold=fold)
        outcomes = store.write(
            [
                EventBatch("labels", parse_labels(first, tenant="t")),
                EventBatch("labels", parse_labels(fixes, tenant="t")),
            ],
            fold=fold,
        )
        assert [o.corrected for o in outcomes] == [0, 3]
        if not fold:
            store.update_buckets()
        with store.cursor() as cursor:
            results.append(
                cursor.execute(
                    "SELECT cohort_key, cohort_value, epoch_us(bucket) // 3600000000, "
                    "sum(n_labelled), sum(label_weight[2]) FROM bucket_scores_hour "
                    "GROUP BY ALL ORDER BY ALL"
                ).fetchall()
            )
        store.close()
    assert results[0] == results[1]
    total = sum(row[3] for row in results[0] if row[0] == "")
    positives = sum(row[4] for row in results[0] if row[0] == "")
    assert (total, positives) == (20, 3)


def test_a_schema_4_store_upgrades_to_corrections(tmp_path: Path) -> None:
    path = tmp_path / "v4.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE meta (key VARCHAR PRIMARY KEY, value VARCHAR)")
    for step in store_module.MIGRATIONS[:4]:
        step(con) if callable(step) else con.execute(step)
    con.execute("INSERT INTO meta VALUES ('schema_version', '4')")
    old = parse_labels([{"request_id": "tx0", "model": "fraud", "label": 0}], tenant="default")
    old = old.drop(["correction"])  # what version 4 stored
    con.execute("INSERT INTO labels BY NAME SELECT *, 1 AS seq FROM old")
    con.close()
    with EventStore(path) as store:
        assert store.schema_version == store_module.SCHEMA_VERSION  # 5 and later
        with store.cursor() as cursor:
            assert cursor.execute("SELECT label, correction FROM labels").fetchall() == [
                ("0", False)
            ]
            assert cursor.execute("SELECT count(*) FROM label_history").fetchone() == (0,)
        fix = parse_labels(
            [{"request_id": "tx0", "model": "fraud", "label": 1, "correction": True}],
            tenant="default",
        )
        assert store.insert_labels(fix).corrected == 1
        with store.cursor() as cursor:
            assert cursor.execute("SELECT label FROM label_history").fetchall() == [("0",)]
