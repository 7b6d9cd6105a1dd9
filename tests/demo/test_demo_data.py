"""The demo stream (``xebench.demo.stream``): valid events, and the planted problems
really are in the events.

Every planted truth is measured from the events themselves (NumPy, scikit-learn),
never read back from ``DemoStream.facts``; the facts are only checked to agree.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from sklearn.metrics import log_loss

from xebench.demo import stream as demo_data
from xebench.ingest.events import parse_labels, parse_predictions
from xebench.store.event_store import EventStore

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
CLASSES = ["low", "medium", "high", "critical"]


def _time(stamp: str) -> datetime:
    assert stamp.endswith("+00:00"), stamp
    return datetime.fromisoformat(stamp)


class Frame:
    """The events of a stream as NumPy columns, predictions joined to their labels."""

    def __init__(self, stream: demo_data.DemoStream) -> None:
        p = stream.predictions
        self.model = np.array([e["model"] for e in p])
        self.version = np.array([e["version"] for e in p])
        self.region = np.array([e["cohort"]["region"] for e in p])
        self.device = np.array([e["cohort"]["device"] for e in p])
        self.time = np.array([_time(e["timestamp"]) for e in p], dtype=object)
        self.amount = np.array([e["features"]["amount"] for e in p], dtype=float)
        self.age = np.array([e["features"]["account_age_days"] for e in p], dtype=float)
        labels = {(e["model"], e["request_id"]): e for e in stream.labels}
        found = [labels.get((e["model"], e["request_id"])) for e in p]
        self.labelled = np.array([e is not None for e in found])
        self.label: list[Any] = [None if e is None else e["label"] for e in found]
        self.label_time = np.array(
            [None if e is None else _time(e["timestamp"]) for e in found], dtype=object
        )
        self.prob: list[Any] = [e["probabilities"] for e in p]

    def fraud_loss(self, mask: np.ndarray) -> float:
        rows = np.flatnonzero(mask & self.labelled & (self.model == "fraud"))
        y = [self.label[i] for i in rows]
        q = [self.prob[i] for i in rows]
        return float(log_loss(y, q, labels=[0, 1]))

    def triage_loss(self, mask: np.ndarray) -> float:
        rows = np.flatnonzero(mask & self.labelled & (self.model == "triage"))
        y = [self.label[i] for i in rows]
        # sklearn orders the columns by the sorted labels.
        order = [CLASSES.index(c) for c in sorted(CLASSES)]
        q = np.array([self.prob[i] for i in rows])[:, order]
        return float(log_loss(y, q, labels=sorted(CLASSES)))


@pytest.fixture(scope="module")
def full() -> demo_data.DemoStream:
    """The default size (48 h at 60 events a minute): the statistics need the events."""
    return demo_data.generate(seed=0, now=NOW)


@pytest.fixture(scope="module")
def frame(full: demo_data.DemoStream) -> Frame:
    return Frame(full)


@pytest.fixture(scope="module")
def small() -> demo_data.DemoStream:
    return demo_data.generate(seed=7, now=NOW, hours=6)


# --- shape and validity ---------------------------------------------------------------------


def test_same_seed_same_stream_other_seed_other_stream() -> None:
    a = demo_data.generate(seed=5, now=NOW, hours=1)
    b = demo_data.generate(seed=5, now=NOW, hours=1)
    c = demo_data.generate(seed=6, now=NOW, hours=1)
    assert a == b
    assert a.predictions != c.predictions
    assert a.labels != c.labels


def test_every_event_passes_the_service_validation(small: demo_data.DemoStream) -> None:
    for i in range(0, len(small.predictions), 5000):
        table = parse_predictions(small.predictions[i : i + 5000], tenant="t", now=NOW)
        assert table.num_rows == len(small.predictions[i : i + 5000])
    known = {"fraud": {"0", "1"}, "triage": set(CLASSES)}
    for i in range(0, len(small.labels), 5000):
        table = parse_labels(
            small.labels[i : i + 5000], tenant="t", now=NOW, known_labels=known.get
        )
        assert table.num_rows == len(small.labels[i : i + 5000])


def test_events_have_the_documented_shape(small: demo_data.DemoStream) -> None:
    start = NOW - timedelta(hours=6)
    seen_versions = set()
    for event in small.predictions:
        assert start <= _time(event["timestamp"]) <= NOW
        assert set(event["cohort"]) == {"region", "device"}
        assert event["cohort"]["region"] in {"eu", "us", "apac", "latam"}
        assert event["cohort"]["device"] in {"ios", "android", "web"}
        features = event["features"]
        assert isinstance(features["merchant_category"], str)
        assert isinstance(features["amount"], float) and features["amount"] > 0
        assert all(isinstance(features[k], int) for k in ("account_age_days", "n_items"))
        assert 0 <= features["hour_of_day"] < 24
        seen_versions.add((event["model"], event["version"]))
        if event["model"] == "fraud":
            p = event["probabilities"]
            assert isinstance(p, float) and 0 < p < 1
            assert "classes" not in event
            assert event["request_id"].startswith("fraud-")
        else:
            assert event["classes"] == CLASSES
            row = np.array(event["probabilities"])
            assert row.shape == (4,) and (row > 0).all()
            assert abs(row.sum() - 1) <= 1e-9
            assert event["request_id"].startswith("triage-")
    assert seen_versions == {("fraud", "v1"), ("fraud", "v2"), ("triage", "v1")}
    stamps = [e["timestamp"] for e in small.predictions]
    assert stamps == sorted(stamps)
    for model in ("fraud", "triage"):
        ids = [e["request_id"] for e in small.predictions if e["model"] == model]
        assert len(ids) == len(set(ids))
    for label in small.labels:
        assert set(label) == {"request_id", "model", "label", "timestamp"}
        if label["model"] == "fraud":
            assert type(label["label"]) is int and label["label"] in (0, 1)
        else:
            assert label["label"] in CLASSES


def test_traffic_mix(frame: Frame, full: demo_data.DemoStream) -> None:
    n = len(full.predictions)
    assert 0.9 * 48 * 60 * 60 < n < 1.1 * 48 * 60 * 60
    fraud = frame.model == "fraud"
    canary = (frame.version[fraud] == "v2").mean()
    assert 0.09 < canary < 0.11
    shares = {r: (frame.region == r).mean() for r in ("eu", "us", "apac", "latam")}
    assert len({round(s, 2) for s in shares.values()}) == 4  # unequal
    assert min(shares.values()) > 0.05


def test_naive_now_and_bad_sizes_are_refused() -> None:
    with pytest.raises(ValueError, match="time zone"):
        demo_data.generate(now=datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="hours"):
        demo_data.generate(hours=0)
    with pytest.raises(ValueError, match="rate_per_minute"):
        demo_data.generate(rate_per_minute=-1)


# --- the planted problems -------------------------------------------------------------------


def test_amount_drifts_in_eu_from_halfway_and_nowhere_else(
    frame: Frame, full: demo_data.DemoStream
) -> None:
    halfway = NOW - timedelta(hours=24)
    after = frame.time >= halfway
    for region in ("eu", "us", "apac", "latam"):
        here = frame.region == region
        ratio = np.median(frame.amount[here & after]) / np.median(frame.amount[here & ~after])
        if region == "eu":
            assert ratio > 2, ratio
        else:
            assert abs(ratio - 1) < 0.1, (region, ratio)
        # Another feature stays put, in eu too.
        age_ratio = np.median(frame.age[here & after]) / np.median(frame.age[here & ~after])
        assert abs(age_ratio - 1) < 0.1, (region, age_ratio)
    # The drift starts at halfway, not before: the quarter before it looks like the first.
    eu = frame.region == "eu"
    first = eu & (frame.time < NOW - timedelta(hours=36))
    third = eu & (frame.time >= NOW - timedelta(hours=36)) & ~after
    assert abs(np.median(frame.amount[third]) / np.median(frame.amount[first]) - 1) < 0.1
    assert full.facts["drift_feature"] == "amount"
    assert full.facts["drift_region"] == "eu"
    assert _time(full.facts["drift_start"]) == halfway


def test_drift_makes_the_models_worse_in_eu(frame: Frame) -> None:
    after = frame.time >= NOW - timedelta(hours=24)
    eu_v1 = (frame.region == "eu") & (frame.version == "v1")
    fraud = frame.model == "fraud"
    before_loss = frame.fraud_loss(eu_v1 & ~after)
    after_loss = frame.fraud_loss(eu_v1 & after)
    assert after_loss > 1.08 * before_loss, (before_loss, after_loss)

    # The consequence is over-prediction: scores rise, the fraud rate does not.
    def gap(mask: np.ndarray) -> float:
        rows = np.flatnonzero(mask & fraud & frame.labelled)
        return float(
            np.mean([frame.prob[i] for i in rows]) - np.mean([frame.label[i] for i in rows])
        )

    assert abs(gap(eu_v1 & ~after)) < 0.02
    assert gap(eu_v1 & after) > 0.04
    # Elsewhere the model is as good after as before.
    us = (frame.region == "us") & (frame.version == "v1")
    assert abs(frame.fraud_loss(us & after) / frame.fraud_loss(us & ~after) - 1) < 0.1


def test_log_loss_is_realistic(frame: Frame) -> None:
    everything = np.ones(frame.model.size, dtype=bool)
    fraud = frame.model == "fraud"
    base_rate = np.mean([frame.label[i] for i in np.flatnonzero(fraud & frame.labelled)])
    assert 0.05 <= base_rate <= 0.10
    assert 0.2 <= frame.fraud_loss(frame.version == "v1") <= 0.35
    assert 0.9 <= frame.triage_loss(everything) <= 1.1


def test_canary_is_worse_on_android_only(frame: Frame, full: demo_data.DemoStream) -> None:
    v1, v2 = frame.version == "v1", frame.version == "v2"
    android = frame.device == "android"
    assert frame.fraud_loss(v2 & android) > 1.25 * frame.fraud_loss(v1 & android)
    for device in ("ios", "web"):
        here = frame.device == device
        ratio = frame.fraud_loss(v2 & here) / frame.fraud_loss(v1 & here)
        assert abs(ratio - 1) < 0.1, (device, ratio)
    # Over all traffic the candidate is measurably worse.
    assert frame.fraud_loss(v2) > 1.1 * frame.fraud_loss(v1)
    facts = full.facts
    assert (facts["canary_version"], facts["baseline_version"]) == ("v2", "v1")
    assert facts["canary_bad_cohort"] == ("device", "android")
    assert facts["canary_share"] == 0.1


def test_labels_are_delayed_partly_missing_and_never_from_the_future(
    frame: Frame, full: demo_data.DemoStream
) -> None:
    assert all(_time(label["timestamp"]) <= NOW for label in full.labels)
    stamps = [label["timestamp"] for label in full.labels]
    assert stamps == sorted(stamps)
    rows = np.flatnonzero(frame.labelled)
    delays = np.array([(frame.label_time[i] - frame.time[i]).total_seconds() for i in rows])
    assert (delays >= 0).all()
    # Old predictions have had time for every label to come: what is missing never will.
    old = frame.time < NOW - timedelta(hours=24)
    never = 1 - frame.labelled[old].mean()
    assert 0.065 <= never <= 0.095, never
    old_delays = delays[old[rows]]
    assert 20 * 60 <= np.median(old_delays) <= 30 * 60
    assert np.quantile(old_delays, 0.99) > 4 * 3600  # a long tail
    # The latest minutes are mostly unlabelled; the last hour about half.
    assert frame.labelled[frame.time >= NOW - timedelta(minutes=15)].mean() < 0.3
    assert frame.labelled[frame.time >= NOW - timedelta(hours=1)].mean() < 0.6
    assert full.facts["never_labelled_share"] == 0.08
    assert 20 * 60 <= full.facts["label_delay_median_s"] <= 30 * 60


# --- loading --------------------------------------------------------------------------------


@pytest.mark.slow
def test_load_stores_everything_and_every_label_joins() -> None:
    stream = demo_data.generate(seed=3, now=NOW, hours=2)
    store = EventStore(":memory:")
    steps: list[int] = []
    counts = demo_data.load(store, stream, batch_size=1000, progress=steps.append)
    assert counts == {"predictions": len(stream.predictions), "labels": len(stream.labels)}
    assert sum(steps) == len(stream.predictions) + len(stream.labels)
    assert max(steps) <= 1000
    stored = store.counts("default", now=NOW)
    assert stored == {
        "predictions": len(stream.predictions),
        "labels": len(stream.labels),
        "pending": 0,
        "orphans": 0,
    }
    with store.cursor() as cursor:
        joined = cursor.execute("SELECT count(*) FROM joined WHERE tenant = 'default'").fetchone()
        per_version = dict(
            cursor.execute(
                "SELECT model || '/' || version, count(*) FROM predictions GROUP BY ALL"
            ).fetchall()
        )
    assert joined[0] == len(stream.labels)
    expected: dict[str, int] = {}
    for event in stream.predictions:
        key = f"{event['model']}/{event['version']}"
        expected[key] = expected.get(key, 0) + 1
    assert per_version == expected
    # Idempotent; other tenants see nothing.
    assert demo_data.load(store, stream) == {"predictions": 0, "labels": 0}
    assert store.counts("acme")["predictions"] == 0
    # Another stream into the same tenant conflicts on request ids: refused, not mixed.
    other = demo_data.generate(seed=4, now=NOW, hours=2)
    with pytest.raises(ValueError, match="conflict"):
        demo_data.load(store, other)
    assert demo_data.load(store, other, tenant="acme")["predictions"] == len(other.predictions)


def test_a_stream_ending_in_the_future_still_loads() -> None:
    later = datetime.now(UTC) + timedelta(hours=5)
    stream = demo_data.generate(seed=1, now=later, hours=0.5, rate_per_minute=20)
    counts = demo_data.load(EventStore(":memory:"), stream)
    assert counts["predictions"] == len(stream.predictions)
