"""A large commit of several models, folded: every feature value counted in its model's bins.

The fold reads the commit's predictions once and histograms each model's features from that
read; these counts are recomputed here from the events and the learned bins.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from xebench.ingest.events import parse_predictions
from xebench.store.buckets import MonitorConfig
from xebench.store.event_store import EventStore
from xebench.store.writes import EventBatch

TENANT = "t"
BASE = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=1)
MINUTE_US = 60_000_000
MODELS = ("a", "b", "c")


def _event(i: int, rng: np.random.Generator) -> dict[str, Any]:
    features: dict[str, Any] = {"amount": round(float(rng.lognormal(3.0, 1.0)), 3)}
    if i % 11 == 0:
        features["amount"] = None if i % 2 else "n/a"  # the missing bin
    elif i % 13 == 0:
        features["amount"] = int(rng.integers(0, 100))
    if i % 5:
        features["colour"] = str(
            rng.choice(["red", "blue", "green", "teal"], p=[0.4, 0.3, 0.2, 0.1])
        )
    return {
        "request_id": f"r{i}",
        "model": MODELS[i % 3] if i % 7 else "a",  # interleaved, unevenly
        "version": "v1" if i % 4 else "v2",
        "timestamp": (BASE + timedelta(milliseconds=397 * i)).isoformat(),
        "probabilities": 0.4,
        "features": features,
    }


def _bin(value: Any, kind: str, edges: tuple, categories: tuple) -> tuple[int, int]:
    """(bin, number of bins) of one value, from the bins' definition."""
    if kind == "numeric":
        number = isinstance(value, int | float) and not isinstance(value, bool) and value == value
        return (sum(value > e for e in edges) if number else len(edges) + 1), len(edges) + 2
    if value is None or value == "":
        return len(categories) + 1, len(categories) + 2
    return (categories.index(value) if value in categories else len(categories)), len(
        categories
    ) + 2


def test_a_large_commit_of_several_models_counts_each_value_in_its_models_bins() -> None:
    store = EventStore(":memory:", monitor=MonitorConfig(learn_after=50, numeric_bins=6, top_k=2))
    rng = np.random.default_rng(13)
    events = [_event(i, rng) for i in range(7_000)]
    store.insert_predictions(parse_predictions(events[:600], tenant=TENANT))
    store.update_buckets()  # learns each model's bins
    store.insert_predictions(parse_predictions(events[600:], tenant=TENANT))
    store.update_buckets()  # one fold of 6,400 predictions of three models

    bins = {model: store.buckets.feature_bins(TENANT, model) for model in MODELS}
    assert {model: sorted(b) for model, b in bins.items()} == {
        model: ["amount", "colour"] for model in MODELS
    }
    expected: dict[tuple, list[int]] = {}
    for e in events:
        stamp = datetime.fromisoformat(e["timestamp"]) - datetime(1970, 1, 1, tzinfo=UTC)
        bucket = stamp // timedelta(microseconds=1) // MINUTE_US * MINUTE_US
        for name, spec in bins[e["model"]].items():
            index, width = _bin(e["features"].get(name), spec.kind, spec.edges, spec.categories)
            counts = expected.setdefault((e["model"], e["version"], bucket, name), [0] * width)
            counts[index] += 1
    with store.cursor() as cursor:
        rows = cursor.execute(
            "SELECT model, version, epoch_us(bucket), feature, counts FROM bucket_features "
            "WHERE cohort_key = ''"
        ).fetchall()
    got: dict[tuple, list[int]] = {}
    for *key, counts in rows:
        total = got.setdefault(tuple(key), [0] * len(counts))
        got[tuple(key)] = [x + y for x, y in zip(total, counts, strict=True)]
    assert got == expected


def _counts(store: EventStore) -> dict[tuple, list[int]]:
    """The feature histograms per key, delta rows merged."""
    with store.cursor() as cursor:
        rows = cursor.execute(
            "SELECT model, version, cohort_key, cohort_value, epoch_us(bucket), feature, counts "
            "FROM bucket_features"
        ).fetchall()
    got: dict[tuple, list[int]] = {}
    for *key, counts in rows:
        total = got.setdefault(tuple(key), [0] * len(counts))
        got[tuple(key)] = [x + y for x, y in zip(total, counts, strict=True)]
    return got


@pytest.mark.parametrize("cohort_features", [False, True])
def test_folding_in_the_commit_counts_as_folding_after_it(cohort_features: bool) -> None:
    """The writer's own rows (fold=True) and the rows read back (update_buckets) give the
    same buckets, also when a batch holds duplicates (then the fold reads them back)."""
    rng = np.random.default_rng(5)
    events = [_event(i, rng) for i in range(3_000)]
    for e in events:
        e["cohort"] = {"region": ["eu", "us", "ü"][len(e["request_id"]) % 3]}
    config = MonitorConfig(learn_after=50, numeric_bins=6, top_k=3, cohort_features=cohort_features)
    after, within = EventStore(":memory:", monitor=config), EventStore(":memory:", monitor=config)
    batches = [events[:400], events[400:1_500], events[1_400:2_200], events[2_200:]]
    for part in batches:  # the third batch repeats 100 events of the second: duplicates
        table = parse_predictions(part, tenant=TENANT)
        after.write([EventBatch("predictions", table)])
        after.update_buckets()
        within.write([EventBatch("predictions", table)], fold=True)
    assert _counts(within) == _counts(after)
    assert sum(c for counts in _counts(within).values() for c in counts) > 0
    with after.cursor() as a, within.cursor() as w:
        sql = "SELECT * EXCLUDE (delta) FROM bucket_scores ORDER BY ALL"
        assert w.execute(sql).fetchall() == a.execute(sql).fetchall()
