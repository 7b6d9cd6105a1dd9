"""Identity in bounded memory stays exact: the key filter, the recent keys, and the
store lookups behind them, checked against a model of sets in plain Python.

The stores here have a tiny bound (a 64-byte filter: saturated after a few dozen
keys, so nearly every key is a false positive; 2 recent keys: every older key
needs the store) and a normal one; every outcome must equal the model's.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from xebench.store.event_store import EventBatch, EventStore
from xebench.store.fingerprints import IdentityIndex, RecentKeys
from xebench.store.key_filter import KeyFilter
from xebench.store.schema import LABEL_SCHEMA, PREDICTION_SCHEMA, fingerprint, hash64

T0 = datetime(2026, 1, 1, tzinfo=UTC)
TINY = {"filter_bytes": 64, "recent_keys": 2}


def prediction(model: str, request_id: str, p: float) -> pa.Table:
    content = json.dumps([model, request_id, p]).encode()
    row = {
        "fp": fingerprint("t", model, request_id),
        "rfp": fingerprint("t", "", request_id),
        "tenant": "t",
        "model": model,
        "version": "v1",
        "request_id": request_id,
        "event_time": T0,
        "ingest_time": datetime.now(UTC),
        "classes": ["0", "1"],
        "probabilities": [1 - p, p],
        "cohort": [],
        "features": "{}",
        "payload_hash": hash64(content),
        "weight": 1.0,
    }
    return pa.Table.from_pylist([row], schema=PREDICTION_SCHEMA)


def label(model: str, request_id: str, value: int) -> pa.Table:
    row = {
        "fp": fingerprint("t", model, request_id),
        "tenant": "t",
        "model": model,
        "request_id": request_id,
        "label": str(value),
        "event_time": T0,
        "ingest_time": datetime.now(UTC),
        "payload_hash": hash64(json.dumps([model, request_id, value]).encode()),
    }
    return pa.Table.from_pylist([row], schema=LABEL_SCHEMA)


class Model:
    """What the store must answer, from sets."""

    def __init__(self) -> None:
        self.predictions: dict[tuple[str, str], float] = {}
        self.labels: dict[tuple[str, str], int] = {}

    def predict(self, model: str, request_id: str, p: float) -> tuple[int, int, int, int, int]:
        stored = self.predictions.get((model, request_id))
        if stored is not None:
            return (0, 1, 0, 0, 0) if stored == p else (0, 0, 1, 0, 0)
        self.predictions[model, request_id] = p
        joined = (model, request_id) in self.labels or ("", request_id) in self.labels
        return (1, 0, 0, 0, int(joined))

    def label(self, model: str, request_id: str, value: int) -> tuple[int, int, int, int, int]:
        stored = self.labels.get((model, request_id))
        if stored is not None:
            return (0, 1, 0, 0, 0) if stored == value else (0, 0, 1, 0, 0)
        self.labels[model, request_id] = value
        if model:
            matched = (model, request_id) in self.predictions
        else:
            matched = any(r == request_id for _, r in self.predictions)
        return (1, 0, 0, int(not matched), int(matched))

    def pending(self) -> int:
        def waits(model: str, request_id: str) -> bool:
            if model:
                return (model, request_id) not in self.predictions
            return not any(r == request_id for _, r in self.predictions)

        return sum(waits(m, r) for m, r in self.labels)


def outcome(store: EventStore, kind: str, table: pa.Table) -> tuple[int, int, int, int, int]:
    o = store.write([EventBatch(kind, table)])[0]  # type: ignore[arg-type]
    return (o.inserted, o.duplicates, len(o.conflicts), o.pending, o.joined)


@pytest.mark.parametrize("bounds", [TINY, {"filter_bytes": 1 << 16, "recent_keys": 4}, {}])
def test_random_traffic_gets_the_answers_of_a_model_of_sets(
    bounds: dict[str, int], tmp_path: Path
) -> None:
    rng = random.Random(7)
    path = tmp_path / "events.duckdb"
    store = EventStore(path, **bounds)
    model = Model()
    requests = [f"r{i}" for i in range(60)]
    for step in range(300):
        request_id = rng.choice(requests)
        if rng.random() < 0.5:
            name, p = rng.choice(["a", "b"]), rng.choice([0.2, 0.2, 0.7])
            got, want = outcome(store, "predictions", prediction(name, request_id, p)), None
            want = model.predict(name, request_id, p)
        else:
            name, value = rng.choice(["a", "b", ""]), rng.choice([0, 0, 1])
            got = outcome(store, "labels", label(name, request_id, value))
            want = model.label(name, request_id, value)
        assert got == want, (step, name, request_id, bounds)
        if step == 150:  # a reopen reloads the filter and the recent keys from the file
            store.close()
            store = EventStore(path, **bounds)
    counts = store.counts("t")
    assert counts["predictions"] == len(model.predictions)
    assert counts["labels"] == len(model.labels)
    assert counts["pending"] == model.pending()
    store.close()


def test_an_old_event_is_a_duplicate_or_a_conflict_and_an_old_prediction_is_found() -> None:
    store = EventStore(":memory:", **TINY)
    assert outcome(store, "predictions", prediction("m", "old", 0.3)) == (1, 0, 0, 0, 0)
    for i in range(20):  # push "old" out of the recent keys, saturate the filter
        outcome(store, "predictions", prediction("m", f"new{i}", 0.3))
    before = store.identity()["store_lookups"]
    assert outcome(store, "predictions", prediction("m", "old", 0.3)) == (0, 1, 0, 0, 0)
    assert outcome(store, "predictions", prediction("m", "old", 0.9)) == (0, 0, 1, 0, 0)
    assert outcome(store, "labels", label("m", "old", 1)) == (1, 0, 0, 0, 1)
    assert outcome(store, "labels", label("", "new0", 0)) == (1, 0, 0, 0, 1)
    assert store.identity()["store_lookups"] > before
    # False positives of the saturated filter are settled in the store: new, not duplicates.
    assert outcome(store, "predictions", prediction("m", "never-seen", 0.3)) == (1, 0, 0, 0, 0)
    assert outcome(store, "labels", label("m", "also-never", 1)) == (1, 0, 0, 1, 0)
    assert store.counts("t") == {"predictions": 22, "labels": 3, "pending": 1, "orphans": 0}


def test_new_keys_cost_no_store_lookup_with_a_filter_of_normal_size() -> None:
    store = EventStore(":memory:", filter_bytes=1 << 20, recent_keys=1 << 10)
    for i in range(200):
        outcome(store, "predictions", prediction("m", f"r{i}", 0.3))
        outcome(store, "labels", label("m", f"r{i}", 1))  # recent: settled in memory
    assert store.identity()["store_lookups"] == 0
    assert store.identity()["filter_keys"] == 600  # fp and rfp per prediction, fp per label


def test_retention_forgets_old_keys_so_the_same_event_is_new_again() -> None:
    store = EventStore(":memory:", **TINY)
    outcome(store, "predictions", prediction("m", "gone", 0.3))
    assert store.apply_retention(1, now=datetime(2026, 3, 1, tzinfo=UTC))["predictions"] == 1
    assert outcome(store, "predictions", prediction("m", "gone", 0.3)) == (1, 0, 0, 0, 0)


def test_recent_keys_hold_the_last_half_capacity_at_least() -> None:
    recent = RecentKeys(10)
    for key in range(100):
        recent.add(np.array([key], dtype=np.int64))
        held = recent.contains(np.arange(key + 1, dtype=np.int64))
        assert held[max(0, key - 4) :].all()  # the last 5 keys at least
        assert len(recent) <= 10
    assert recent.nbytes <= 10 * 8


def test_the_filter_has_no_false_negatives_and_the_rate_it_reports() -> None:
    keys = np.random.default_rng(3).integers(-(2**63), 2**63 - 1, 50_000, dtype=np.int64)
    shared = KeyFilter(1 << 16)  # 10.5 bits per key
    index = IdentityIndex(shared, salt=1, recent_keys=16)
    for chunk in np.array_split(keys, 37):
        index.add(chunk)
    assert index.maybe(keys).all()
    absent = np.random.default_rng(4).integers(-(2**63), 2**63 - 1, 200_000, dtype=np.int64)
    measured = index.maybe(absent).mean()
    expected = (1 - np.exp(-6 * 50_000 / (8 << 16))) ** 6
    assert shared.false_positive_rate == pytest.approx(expected)
    assert abs(measured - expected) < 5 * np.sqrt(expected / 200_000), (measured, expected)
