"""Prediction weights in the store: schema 7 (``predictions.weight``), the upgrade of a
schema-6 file (old events weigh 1, their payload hashes and windows unchanged) and
what a weight does to an event's identity."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
from sklearn.metrics import brier_score_loss, log_loss

from xebench.ingest.events import parse_labels, parse_predictions
from xebench.monitor.scope import Scope
from xebench.monitor.windows import Monitor
from xebench.store import EventStore
from xebench.store import migrations as store_module

NOW = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=3)
TENANT = "default"
# The payload hash of EVENT as xebench stored it before weights existed (schemas 5-6, commit
# 155334e): an event resent as it was must keep it, or every resend would be a 409.
EVENT = {
    "request_id": "tx1",
    "model": "fraud",
    "version": "v1",
    "timestamp": "2026-01-01T00:00:00Z",
    "probabilities": 0.8,
    "cohort": {"region": "eu"},
    "features": {"amount": 12.5},
}
SCHEMA_6_HASH = 8524422669041081431


def _events(n: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[float]]:
    p = [round(0.05 + 0.9 * ((i * 37) % 100) / 100, 4) for i in range(n)]
    predictions = [
        {"request_id": f"r{i}", "model": "fraud", "probabilities": p[i],
         "timestamp": (NOW - timedelta(seconds=i)).isoformat()}
        for i in range(n)
    ]  # fmt: skip
    labels = [{"request_id": f"r{i}", "model": "fraud", "label": int(i % 3 == 0)} for i in range(n)]
    return predictions, labels, p


def _window(store: EventStore) -> Any:
    return Monitor(store).window(Scope(TENANT, "fraud", window="1h"))


def test_the_hash_of_an_unweighted_event_is_the_one_schema_6_stored() -> None:
    for extra in ({}, {"weight": 1}, {"weight": 1.0}):
        table = parse_predictions([{**EVENT, **extra}], tenant=TENANT)
        assert table["payload_hash"].to_pylist() == [SCHEMA_6_HASH]
        assert table["weight"].to_pylist() == [1.0]
    weighted = parse_predictions([{**EVENT, "weight": 2}], tenant=TENANT)
    assert weighted["payload_hash"].to_pylist() != [SCHEMA_6_HASH]
    assert weighted["weight"].to_pylist() == [2.0]


def test_a_schema_6_store_upgrades_its_events_weigh_1_and_resends_are_duplicates(
    tmp_path: Path,
) -> None:
    path = tmp_path / "v6.duckdb"
    predictions, labels, p = _events(60)
    con = duckdb.connect(str(path))  # a file as schema 6 wrote it
    con.execute("CREATE TABLE meta (key VARCHAR PRIMARY KEY, value VARCHAR)")
    for step in store_module.MIGRATIONS[:6]:
        step(con) if callable(step) else con.execute(step)
    con.execute("INSERT INTO meta VALUES ('schema_version', '6')")
    old = parse_predictions([EVENT, *predictions], tenant=TENANT).drop(["weight"])
    assert old["payload_hash"][0].as_py() == SCHEMA_6_HASH
    con.execute("INSERT INTO predictions BY NAME SELECT *, 1 AS seq FROM old")
    con.register("old_labels", parse_labels(labels, tenant=TENANT))
    con.execute("INSERT INTO labels BY NAME SELECT *, 2 AS seq FROM old_labels")
    con.close()

    with EventStore(path) as store:
        assert store.schema_version == store_module.SCHEMA_VERSION  # 7 and later
        with store.cursor() as cursor:
            assert cursor.execute(
                "SELECT count(*), min(weight), max(weight) FROM predictions"
            ).fetchone() == (61, 1.0, 1.0)
        store.update_buckets()
        window = _window(store)
        y = [label["label"] for label in labels]
        assert (window.n, window.weight) == (60, 60.0)
        assert window.log_loss == pytest.approx(log_loss(y, p), rel=1e-9)
        # The old event resent as it was (no weight, or weight 1): a duplicate, not a 409.
        for extra in ({}, {"weight": 1}):
            outcome = store.insert_predictions(
                parse_predictions([{**EVENT, **extra}], tenant=TENANT)
            )
            assert (outcome.inserted, outcome.duplicates, outcome.conflicts) == (0, 1, [])
        # With another weight it is another event: a conflict, nothing stored.
        outcome = store.insert_predictions(
            parse_predictions([{**EVENT, "weight": 3}], tenant=TENANT)
        )
        assert (outcome.inserted, len(outcome.conflicts)) == (0, 1)
        # New weighted events mix with the old ones in one window.
        new = [{"request_id": "n1", "model": "fraud", "probabilities": 0.3, "weight": 4,
                "timestamp": NOW.isoformat()}]  # fmt: skip
        store.insert_predictions(parse_predictions(new, tenant=TENANT))
        store.insert_labels(parse_labels([{"request_id": "n1", "label": 1}], tenant=TENANT))
        store.update_buckets()
        window = _window(store)
        weights = [1.0] * 60 + [4.0]
        assert (window.n, window.weight, window.n_predictions) == (61, 64.0, 61)  # not EVENT
        assert window.log_loss == pytest.approx(
            log_loss([*y, 1], [*p, 0.3], sample_weight=weights), rel=1e-9
        )
        assert window.brier == pytest.approx(
            brier_score_loss([*y, 1], [*p, 0.3], sample_weight=weights), rel=1e-9
        )


def test_a_rebuild_from_the_events_keeps_the_weights(tmp_path: Path) -> None:
    predictions, labels, p = _events(40)
    w = [1 + (i % 5) * 0.75 for i in range(40)]
    for event, weight in zip(predictions, w, strict=True):
        event["weight"] = weight
    with EventStore(tmp_path / "w.duckdb") as store:
        store.insert_predictions(parse_predictions(predictions, tenant=TENANT))
        store.insert_labels(parse_labels(labels, tenant=TENANT))
        store.update_buckets()
        folded = _window(store)
        store.rebuild_buckets()
        rebuilt = _window(store)
    y = [label["label"] for label in labels]
    for window in (folded, rebuilt):
        assert window.weight == pytest.approx(sum(w), rel=1e-12)
        assert window.log_loss == pytest.approx(log_loss(y, p, sample_weight=w), rel=1e-9)
