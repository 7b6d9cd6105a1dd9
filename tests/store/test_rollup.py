"""Bucket history outlives its fine grain: retention deletes old minutes (hours keep
them) and rolls old hours into days; windows over whole hours / days read the
same statistics before and after, and the log loss equals scikit-learn's on the
events themselves.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from sklearn.metrics import log_loss

from xebench.ingest.events import parse_labels, parse_predictions
from xebench.monitor.windows import Monitor, Scope
from xebench.store.event_store import EventStore
from xebench.store.retention import RetentionPolicy

NOW = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
DAY0 = datetime.fromtimestamp((NOW - timedelta(days=100)).timestamp() // 86400 * 86400, UTC)


def window(store: EventStore, start: datetime, end: datetime) -> dict:
    scope = Scope("t", "m", start=start.isoformat(), end=end.isoformat(), now=NOW)
    return Monitor(store).window(scope).to_dict()


@pytest.fixture
def store() -> EventStore:
    rng = np.random.default_rng(5)
    n = 600
    offsets = rng.uniform(0, 3 * 86400, n)  # three days from DAY0, at any minute
    p = rng.uniform(0.05, 0.95, n)
    y = (rng.uniform(size=n) < p).astype(int)
    events = [
        {"request_id": f"r{i}", "model": "m", "probabilities": float(p[i]),
         "timestamp": (DAY0 + timedelta(seconds=float(offsets[i]))).isoformat()}
        for i in range(n)
    ]  # fmt: skip
    store = EventStore(":memory:")
    store.insert_predictions(parse_predictions(events, tenant="t"))
    store.insert_labels(
        parse_labels([{"request_id": f"r{i}", "label": int(y[i])} for i in range(n)], tenant="t")
    )
    store.update_buckets()
    store.truth = (offsets, p, y)  # type: ignore[attr-defined]
    return store


def test_rolled_days_and_kept_hours_answer_as_before(store: EventStore) -> None:
    offsets, p, y = store.truth  # type: ignore[attr-defined]
    whole = (DAY0, DAY0 + timedelta(days=3))
    hours = (DAY0 + timedelta(hours=5), DAY0 + timedelta(days=2, hours=7))
    before = {name: window(store, *span) for name, span in (("whole", whole), ("hours", hours))}
    # Independent: the events themselves.
    assert before["whole"]["n_labelled"] == len(y)
    assert before["whole"]["log_loss"] == pytest.approx(log_loss(y, p), rel=1e-9)

    # Minutes older than 50 days go; hours older than 98 days (DAY0 + 2 days) become days.
    policy = RetentionPolicy(minutes=timedelta(days=50), hours=timedelta(days=98))
    plan = store.retention_plan(policy, now=NOW)
    done = store.apply_policy(policy, now=NOW)
    assert done["delete"] == plan["delete"] and done["delete"]["bucket_scores"] > 0
    rolled = datetime.fromisoformat(done["horizons"]["hours"])
    assert rolled == DAY0 + timedelta(days=2)
    with store.cursor() as cursor:
        assert cursor.execute("SELECT count(*) FROM bucket_scores").fetchone() == (0,)
        assert cursor.execute(
            "SELECT count(*) FROM bucket_scores_hour WHERE bucket < ?", [rolled]
        ).fetchone() == (0,)
        days = cursor.execute("SELECT DISTINCT bucket FROM bucket_scores_day ORDER BY 1").fetchall()
        assert [d.astimezone(UTC) for (d,) in days] == [DAY0, DAY0 + timedelta(days=1)]
        assert cursor.execute("SELECT count(*) FROM bucket_scores_day WHERE delta").fetchone() == (
            0,
        )  # compacted: one row per key and day

    after = window(store, *whole)  # two whole days from the day rows, the third from hours
    for key in ("n_predictions", "n_labelled", "log_loss", "brier", "coverage"):
        assert after[key] == pytest.approx(before["whole"][key], rel=1e-12), key
    # A range with ragged ends inside the rolled days keeps only its whole days there.
    ragged = window(store, *hours)
    in_days = (offsets >= 86400) & (offsets < 2 * 86400)  # the one whole rolled day
    in_hours = (offsets >= 2 * 86400) & (offsets < 2 * 86400 + 7 * 3600)
    kept = in_days | in_hours
    assert ragged["n_labelled"] == int(kept.sum())
    assert ragged["log_loss"] == pytest.approx(log_loss(y[kept], p[kept]), rel=1e-9)


def test_a_rebuild_forgets_the_roll_up(store: EventStore) -> None:
    store.apply_policy(RetentionPolicy(hours=timedelta(days=98)), now=NOW)
    store.rebuild_buckets()  # recomputed from the events: hours again, no day rows
    with store.cursor() as cursor:
        assert cursor.execute("SELECT count(*) FROM bucket_scores_day").fetchone() == (0,)
        assert cursor.execute(
            "SELECT count(*) FROM meta WHERE key = 'hours_rolled_before'"
        ).fetchone() == (0,)
    _, p, y = store.truth  # type: ignore[attr-defined]
    got = window(store, DAY0, DAY0 + timedelta(days=3))
    assert got["log_loss"] == pytest.approx(log_loss(y, p), rel=1e-9)


def test_compaction_merges_a_late_delta_in_old_history() -> None:
    """Compaction reads only the buckets from the oldest delta row on: a late label for
    a prediction days old still merges into that bucket's row, and newer rows too."""
    store = EventStore(":memory:")
    old, new = DAY0 + timedelta(minutes=3), NOW - timedelta(minutes=5)
    events = [
        {"request_id": f"r{i}", "model": "m", "probabilities": 0.25,
         "timestamp": (old if i < 3 else new).isoformat()}
        for i in range(6)
    ]  # fmt: skip
    store.insert_predictions(parse_predictions(events[:5], tenant="t"))
    store.update_buckets(compact=True)
    store.insert_labels(parse_labels([{"request_id": "r0", "label": 1}], tenant="t"))
    store.insert_predictions(parse_predictions(events[5:], tenant="t"))
    assert store.update_buckets(compact=True)["compacted"] > 0
    with store.cursor() as cursor:
        rows = cursor.execute(
            "SELECT bucket, delta, n_predictions, n_labelled FROM bucket_scores "
            "WHERE cohort_key = '' ORDER BY bucket"
        ).fetchall()
    minute = timedelta(minutes=1)
    assert [(b.timestamp(), d, p, n) for b, d, p, n in rows] == [
        ((DAY0 + 3 * minute).timestamp(), False, 3, 1),
        (new.replace(second=0, microsecond=0).timestamp(), False, 3, 0),
    ]
