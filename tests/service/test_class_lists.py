"""A model version's class list is part of its identity (issue 13): the first stored wins,
an event with another list is a 409 naming ``/i/classes``, so no event can make a model's
windows unreadable; stores that already mix lists (older versions) stay readable."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sklearn.metrics import log_loss

from xebench.ingest.events import parse_labels, parse_predictions
from xebench.monitor.windows import Monitor, Scope
from xebench.service.app import create_app
from xebench.store.event_store import EventBatch, EventStore
from xebench.store.writes import Writes

NOW = datetime.now(UTC).replace(microsecond=0)


def event(request_id: str, classes: list[str] | None = None, **fields: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"request_id": request_id, "model": "m1", "probabilities": 0.3}
    if classes is not None:
        out["classes"] = classes
    return {**out, **fields}


@pytest.fixture
def client(store: EventStore) -> Iterator[TestClient]:
    with TestClient(create_app(store), raise_server_exceptions=False) as client:
        yield client


def test_the_poisoning_event_of_the_issue_no_longer_poisons(
    client: TestClient, store: EventStore
) -> None:
    first = client.post("/v1/predictions", json=[event("p1", ["neg", "pos"], probabilities=0.5)])
    assert first.status_code == 200
    before = store.checksum()
    later = client.post("/v1/predictions", json=[event(f"q{i}") for i in range(3)])
    assert later.status_code == 409
    answer = later.json()
    assert [c["field"] for c in answer["conflicts"]] == ["/0/classes", "/1/classes", "/2/classes"]
    assert answer["conflicts"][0]["stored_classes"] == ["neg", "pos"]
    assert answer["conflicts"][0]["classes"] == ["0", "1"]
    assert "['neg', 'pos']" in answer["detail"] and "['0', '1']" in answer["detail"]
    assert store.checksum() == before
    for route in ("/v1/metrics?model=m1&window=24h", "/v1/drift?model=m1&window=24h"):
        assert client.get(route).status_code == 200, route
    window = client.get("/v1/metrics?model=m1&window=24h").json()
    assert (window["n_predictions"], window["n_other_classes"]) == (1, 0)
    # The same list is welcome, and so is another list under another version.
    ok = client.post("/v1/predictions", json=[event("p2", ["neg", "pos"])]).json()
    assert ok["inserted"] == 1
    assert client.post("/v1/predictions", json=[event("q0", version="v2")]).status_code == 200


def test_within_one_batch_the_first_row_wins(client: TestClient, store: EventStore) -> None:
    batch = [event("a", ["x", "y"]), event("b"), event("c", ["x", "y"]), event("d", ["y", "x"])]
    response = client.post("/v1/predictions", json=batch)
    assert response.status_code == 409
    conflicts = response.json()["conflicts"]
    assert [(c["index"], c["field"], c["classes"]) for c in conflicts] == [
        (1, "/1/classes", ["0", "1"]),
        (3, "/3/classes", ["y", "x"]),
    ]
    assert store.models("default") == []
    # Versions are separate identities, in one batch as well.
    mixed = [event("a", ["x", "y"]), event("b", version="v2"), event("c", ["x", "y"])]
    assert client.post("/v1/predictions", json=mixed).json()["inserted"] == 3


def test_two_batches_in_one_write_cannot_both_win(store: EventStore) -> None:
    one = parse_predictions([event("a", ["neg", "pos"])], tenant="t")
    two = parse_predictions([event("b")], tenant="t")
    outcomes = store.write([EventBatch("predictions", one), EventBatch("predictions", two)])
    assert [o.inserted for o in outcomes] == [1, 0]
    assert [(c.index, c.field, c.stored_classes) for c in outcomes[1].conflicts] == [
        (0, "/classes", ("neg", "pos"))
    ]
    assert [m["classes"] for m in store.models("t")] == [[["neg", "pos"]]]


def test_concurrent_clients_with_two_class_lists_get_one_winner_each_time(
    client: TestClient, store: EventStore
) -> None:
    for round_ in range(8):
        model, answers = f"race{round_}", []
        barrier = threading.Barrier(2)

        def send(
            classes: list[str],
            request_id: str,
            model: str = model,
            answers: list[int] = answers,
            barrier: threading.Barrier = barrier,
        ) -> None:
            barrier.wait()
            body = [event(request_id, classes, model=model)]
            answers.append(client.post("/v1/predictions", json=body).status_code)

        threads = [
            threading.Thread(target=send, args=(["neg", "pos"], "a")),
            threading.Thread(target=send, args=(["no", "yes"], "b")),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(answers) == [200, 409]
        (row,) = [m for m in store.models("default") if m["model"] == model]
        assert row["predictions"] == 1 and len(row["classes"]) == 1


def test_the_winner_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "events.duckdb"
    with EventStore(path) as store:
        store.insert_predictions(parse_predictions([event("a", ["neg", "pos"])], tenant="t"))
    with EventStore(path) as store:
        outcome = store.insert_predictions(parse_predictions([event("b")], tenant="t"))
        assert [c.stored_classes for c in outcome.conflicts] == [("neg", "pos")]
        again = parse_predictions([event("c", ["neg", "pos"])], tenant="t")
        assert store.insert_predictions(again).inserted == 1


def test_retention_that_deletes_a_version_forgets_its_class_list(store: EventStore) -> None:
    old = NOW - timedelta(days=30)
    store.insert_predictions(parse_predictions([event("a", ["neg", "pos"])], tenant="t", now=old))
    assert store.apply_retention(7, now=NOW)["predictions"] == 1
    assert store.insert_predictions(parse_predictions([event("b")], tenant="t")).inserted == 1


# --- stores written before the rule: mixed lists stay readable -----------------------


def legacy_store(path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[EventStore, dict[str, Any]]:
    """A store as an older version wrote it, reopened: version '' of m1 holds 6
    predictions with the default classes and 2 with ["neg", "pos"], all labelled."""
    store = EventStore(path / "legacy.duckdb")
    at = NOW - timedelta(minutes=30)
    binary = [event(f"d{i}", probabilities=p, timestamp=at.isoformat()) for i, p in
              enumerate([0.9, 0.8, 0.3, 0.2, 0.6, 0.4])]  # fmt: skip
    named = [event(f"n{i}", ["neg", "pos"], probabilities=p, timestamp=at.isoformat())
             for i, p in enumerate([0.7, 0.1])]  # fmt: skip
    labels = [1, 1, 0, 0, 0, 1]
    with monkeypatch.context() as patch:  # the rule did not exist yet
        patch.setattr(Writes, "_class_conflicts", lambda self, table, call: ([], {}))
        for rows in (binary, named):
            store.write(
                [EventBatch("predictions", parse_predictions(rows, tenant="default"))], fold=True
            )
        label_rows = [{"request_id": f"d{i}", "label": y} for i, y in enumerate(labels)]
        label_rows += [{"request_id": "n0", "label": "pos"}, {"request_id": "n1", "label": "neg"}]
        store.write([EventBatch("labels", parse_labels(label_rows, tenant="default"))], fold=True)
    store.close()
    store = EventStore(path / "legacy.duckdb")
    expected = {
        "log_loss": log_loss(
            labels, [[1 - e["probabilities"], e["probabilities"]] for e in binary]
        ),
        "n": 6,
    }
    return store, expected


def test_a_legacy_mixed_version_reads_its_majority_list(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, expected = legacy_store(tmp_path, monkeypatch)
    with store:
        assert [m["classes"] for m in store.models("default")] == [[["0", "1"], ["neg", "pos"]]]
        monitor = Monitor(store)
        window = monitor.window(Scope("default", "m1", window="24h")).to_dict()
        assert (window["n_predictions"], window["n"], window["n_other_classes"]) == (6, 6, 2)
        assert window["log_loss"] == pytest.approx(expected["log_loss"], rel=1e-12)
        series = monitor.series(Scope("default", "m1", window="2h"), step="1h").to_dict()["series"]
        assert sum(w["n_other_classes"] for w in series) == 2
        assert sum(w["n_predictions"] for w in series) == 6
        assert monitor.drift(Scope("default", "m1", window="24h")).to_dict()["n_current"] >= 0
        # The writer holds the version to the same list from now on.
        named = parse_predictions([event("n9", ["neg", "pos"])], tenant="default")
        assert [c.stored_classes for c in store.insert_predictions(named).conflicts] == [("0", "1")]
        assert (
            store.insert_predictions(parse_predictions([event("d9")], tenant="default")).inserted
            == 1
        )


def test_a_legacy_mixed_version_over_http(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store, _ = legacy_store(tmp_path, monkeypatch)
    with TestClient(create_app(store), raise_server_exceptions=False) as client:
        for route in ("/v1/metrics?model=m1", "/v1/drift?model=m1", "/v1/metrics?model=m1&step=1h",
                      "/v1/compare?candidate=m1&baseline=m1"):  # fmt: skip
            assert client.get(route).status_code == 200, route
        assert client.get("/v1/metrics?model=m1").json()["n_other_classes"] == 2
    store.close()


def test_different_versions_with_different_lists_still_name_version(
    client: TestClient,
) -> None:
    client.post("/v1/predictions", json=[event("a", ["neg", "pos"], version="v1")])
    client.post("/v1/predictions", json=[event("b", version="v2", probabilities=[0.2, 0.8])])
    response = client.get("/v1/metrics?model=m1")
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["/query/version"]
    assert client.get("/v1/metrics?model=m1&version=v1").status_code == 200
