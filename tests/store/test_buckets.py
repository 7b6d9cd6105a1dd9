"""The bucket statistics of the event store: every committed event folded exactly once.

Expectations are worked out here from the raw events written (a ledger of every
write, in commit order), with NumPy and scikit-learn, never from what the fold
code returns: late and early labels, model-less labels, duplicates, interleaved
folds, crashes, reopening, cohort caps, feature bins and upgrading a schema-1 file.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pytest
from sklearn.metrics import brier_score_loss, log_loss

from xebench.ingest.events import parse_labels, parse_predictions
from xebench.monitor.windows import Monitor, Scope
from xebench.store import migrations as store_module
from xebench.store import queries
from xebench.store.buckets import OTHER, MonitorConfig
from xebench.store.event_store import EventStore

TENANT = "t"
NOW = datetime.now(UTC).replace(microsecond=0)
# Predictions live in [BASE, BASE + 40 min): far enough back that labels may come hours later.
BASE = NOW.replace(second=0) - timedelta(hours=3)
MINUTE_US = 60_000_000
TRIAGE = ("x", "y", "z")


def _us(moment: datetime) -> int:
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


def _stamp(moment: datetime) -> str:
    return moment.isoformat()


# --- the ledger: what was written, in commit order ------------------------------------


class Ledger:
    """Writes events to a store and remembers each accepted identity with its commit."""

    def __init__(self, store: EventStore) -> None:
        self.store = store
        self.commit = 0
        self.predictions: dict[tuple[str, str], tuple[int, dict[str, Any]]] = {}
        self.labels: dict[tuple[str, str], tuple[int, dict[str, Any]]] = {}

    def predict(self, events: Sequence[dict[str, Any]]) -> Any:
        outcome = self.store.insert_predictions(parse_predictions(list(events), tenant=TENANT))
        for event in events:
            self.predictions.setdefault((event["model"], event["request_id"]), (self.commit, event))
        self.commit += 1
        return outcome

    def label(self, events: Sequence[dict[str, Any]]) -> Any:
        outcome = self.store.insert_labels(parse_labels(list(events), tenant=TENANT))
        for event in events:
            key = (event.get("model", ""), event["request_id"])
            self.labels.setdefault(key, (self.commit, event))
        self.commit += 1
        return outcome

    def first_label(self, model: str, request_id: str) -> dict[str, Any] | None:
        """The label a prediction joins: the earliest commit; in one commit, the named model."""
        options = []
        for anonymous, owner in ((0, model), (1, "")):
            found = self.labels.get((owner, request_id))
            if found is not None:
                options.append((found[0], anonymous, found[1]))
        return min(options, key=lambda o: o[:2])[2] if options else None


def _classes(event: dict[str, Any]) -> tuple[str, ...]:
    return tuple(event.get("classes") or ("0", "1"))


def _vector(event: dict[str, Any]) -> list[float]:
    p = event["probabilities"]
    return [1.0 - p, p] if isinstance(p, float) else list(p)


def _lag_bin(seconds: float) -> int:
    """Ten bins per decade from 1 s, bin 0 below 1 s (buckets.py's documented layout)."""
    if seconds < 1.0:
        return 0
    return min(1 + math.floor(10 * math.log10(seconds)), 81)


def _score_bin(event: dict[str, Any]) -> int:
    """Uniform bins closed on the right, as scikit-learn's calibration_curve."""
    vector = _vector(event)
    score = vector[1] if len(vector) == 2 else max(vector)
    return int(np.searchsorted(np.linspace(0.0, 1.0, 21)[1:-1], score, side="left"))


def expected_scores(
    ledger: Ledger, cohort_map: dict[tuple[str, str, str], str] | None = None
) -> dict[tuple, dict[str, Any]]:
    """Per bucket key, the statistics worked out from the raw events of the ledger."""
    out: dict[tuple, dict[str, Any]] = {}
    for (model, request_id), (_, event) in ledger.predictions.items():
        moment = datetime.fromisoformat(event["timestamp"])
        bucket = _us(moment) // MINUTE_US * MINUTE_US
        classes = _classes(event)
        version = event.get("version", "")
        keys = [(model, version, "", "", bucket, classes)]
        for key, value in event.get("cohort", {}).items():
            if cohort_map is not None:
                value = cohort_map.get((model, key, value), OTHER)
            keys.append((model, version, key, value, bucket, classes))
        label = ledger.first_label(model, request_id)
        for key in keys:
            acc = out.setdefault(
                key,
                {
                    "n_predictions": 0,
                    "n_labelled": 0,
                    "n": 0,
                    "nll": 0.0,
                    "brier": 0.0,
                    "lag": Counter(),
                    "labels": Counter(),
                    "hist": Counter(),
                },
            )
            acc["n_predictions"] += 1
            acc["hist"][_score_bin(event)] += 1
            if label is None:
                continue
            text = str(label["label"])
            acc["n_labelled"] += 1
            acc["n"] += 1
            vector = _vector(event)
            hit = classes.index(text)
            acc["nll"] += -math.log(vector[hit])
            if len(vector) == 2:  # binary: (p - y)^2, as scikit-learn's brier_score_loss
                acc["brier"] += (vector[1] - (hit == 1)) ** 2
            else:
                acc["brier"] += sum((p - (j == hit)) ** 2 for j, p in enumerate(vector))
            lag = (datetime.fromisoformat(label["timestamp"]) - moment).total_seconds()
            acc["lag"][_lag_bin(lag)] += 1
            acc["labels"][text] += 1
    return out


# --- reading the bucket tables ----------------------------------------------------------

_SCORE_COLUMNS = (
    "model, version, cohort_key, cohort_value, epoch_us(bucket), classes, n_predictions, "
    "score_hist, n_labelled, lag_bin, lag_count, n, nll_mean, nll_m2, brier_mean, brier_m2, "
    "hits, clipped, label_weight, cal_index, cal_count, cal_score_sum, cal_hit_sum"
)


def _hour(micros: int) -> int:
    """The start of the hour of a bucket given as epoch microseconds."""
    return micros // 3_600_000_000 * 3_600_000_000


def snapshot(
    store: EventStore, table: str = "bucket_scores", *, by_hour: bool = False
) -> dict[tuple, dict[str, Any]]:
    """Every key of a bucket_scores table with its rows merged (delta rows summed, moments
    combined); ``by_hour``: the minute rows merged per hour instead."""
    with store.cursor() as cursor:
        rows = cursor.execute(f"SELECT {_SCORE_COLUMNS} FROM {table}").fetchall()
    grouped: dict[tuple, list[tuple]] = defaultdict(list)
    for row in rows:
        bucket = _hour(row[4]) if by_hour else row[4]
        grouped[(*row[:4], bucket, tuple(row[5]))].append(row[6:])
    out = {}
    for key, parts in grouped.items():
        merged: dict[str, Any] = {
            name: sum(int(p[i]) for p in parts)
            for name, i in (("n_predictions", 0), ("n_labelled", 2), ("n", 5), ("clipped", 11))
        }
        merged["hits"] = sum(p[10] for p in parts)
        hist = np.zeros(20)
        for p in parts:
            if p[1]:
                hist += np.asarray(p[1], dtype=float)
        merged["hist"] = hist
        lag: Counter[int] = Counter()
        for p in parts:
            for b, c in zip(p[3], p[4], strict=True):
                lag[int(b)] += int(c)
        merged["lag"] = +lag
        n = merged["n"]
        for name, mean_i, m2_i in (("nll", 6, 7), ("brier", 8, 9)):
            total = sum(p[5] * p[mean_i] for p in parts)
            mean = total / n if n else 0.0
            m2 = sum(p[m2_i] + p[5] * (p[mean_i] - mean) ** 2 for p in parts)
            merged[f"{name}_sum"], merged[f"{name}_m2"] = total, m2
        width = len(key[5])
        weights = np.zeros(width)
        for p in parts:
            weights += np.asarray(p[12] or [0.0] * width, dtype=float)
        merged["label_weight"] = weights
        cal: dict[int, np.ndarray] = defaultdict(lambda: np.zeros(3))
        for p in parts:
            for index, *values in zip(p[13], p[14], p[15], p[16], strict=True):
                cal[int(index)] += np.asarray(values)
        merged["cal"] = {k: v for k, v in cal.items() if v[0] != 0}
        out[key] = merged
    return out


def feature_snapshot(
    store: EventStore, table: str = "bucket_features", *, by_hour: bool = False
) -> dict[tuple, np.ndarray]:
    """Every key of a bucket_features table with its counts summed (per hour: ``by_hour``)."""
    with store.cursor() as cursor:
        rows = cursor.execute(
            "SELECT tenant, model, version, cohort_key, cohort_value, epoch_us(bucket), feature, "
            "counts "
            f"FROM {table}"
        ).fetchall()
    out: dict[tuple, np.ndarray] = {}
    for *key, counts in rows:
        if by_hour:
            key[5] = _hour(key[5])
        key = tuple(key)
        out[key] = out.get(key, 0) + np.asarray(counts, dtype=np.int64)
    return out


def assert_hours_merge_the_minutes(store: EventStore) -> None:
    """Each hourly row holds exactly what the minute rows of its hour hold."""
    assert_same_buckets(snapshot(store, "bucket_scores_hour"), snapshot(store, by_hour=True))
    hours = feature_snapshot(store, "bucket_features_hour")
    minutes = feature_snapshot(store, by_hour=True)
    assert hours.keys() == minutes.keys()
    for key, counts in minutes.items():
        np.testing.assert_array_equal(hours[key], counts, err_msg=str(key))


def assert_same_buckets(got: dict, want: dict) -> None:
    """Two snapshots equal: counts exactly, float sums to 1e-12 relative."""
    assert got.keys() == want.keys()
    for key in want:
        a, b = got[key], want[key]
        for name in ("n_predictions", "n_labelled", "n", "clipped"):
            assert a[name] == b[name], (key, name)
        assert a["lag"] == b["lag"], key
        np.testing.assert_array_equal(a["hist"], b["hist"], err_msg=str(key))
        np.testing.assert_array_equal(a["label_weight"], b["label_weight"], err_msg=str(key))
        for name in ("hits", "nll_sum", "nll_m2", "brier_sum", "brier_m2"):
            assert math.isclose(a[name], b[name], rel_tol=1e-12, abs_tol=1e-12), (key, name)
        assert a["cal"].keys() == b["cal"].keys(), key
        for index in b["cal"]:
            np.testing.assert_allclose(a["cal"][index], b["cal"][index], rtol=1e-12, atol=1e-12)


def assert_matches_events(got: dict, want: dict) -> None:
    """A snapshot equals the statistics worked out from the raw events."""
    assert set(got) == set(want)
    for key, w in want.items():
        g = got[key]
        assert g["n_predictions"] == w["n_predictions"], key
        assert g["n_labelled"] == w["n_labelled"], key
        assert g["n"] == w["n"], key
        assert g["lag"] == +w["lag"], key
        hist = np.zeros(20)
        for b, c in w["hist"].items():
            hist[b] = c
        np.testing.assert_array_equal(g["hist"], hist, err_msg=str(key))
        assert dict(zip(key[5], g["label_weight"].tolist(), strict=True)) == {
            c: float(w["labels"][c]) for c in key[5]
        }, key
        assert math.isclose(g["nll_sum"], w["nll"], rel_tol=1e-9, abs_tol=1e-12), key
        assert math.isclose(g["brier_sum"], w["brier"], rel_tol=1e-9, abs_tol=1e-12), key


def window_all(store: EventStore, model: str, **kwargs: Any) -> dict[str, Any]:
    """The window over every event of the tests (minute-aligned from/to)."""
    return (
        Monitor(store)
        .window(
            Scope(
                TENANT,
                model,
                start=_stamp(BASE - timedelta(hours=1)),
                end=_stamp(NOW.replace(second=0) + timedelta(minutes=1)),
                now=NOW,
                **kwargs,
            )
        )
        .to_dict()
    )


def joined_truth(ledger: Ledger, model: str) -> tuple[list[str], np.ndarray, int]:
    """(labels, probability matrix, predictions) of ``model``'s labelled predictions."""
    y, probs, n = [], [], 0
    for (owner, request_id), (_, event) in ledger.predictions.items():
        if owner != model:
            continue
        n += 1
        label = ledger.first_label(owner, request_id)
        if label is not None:
            y.append(str(label["label"]))
            probs.append(_vector(event))
    return y, np.asarray(probs), n


def assert_window_matches_sklearn(store: EventStore, ledger: Ledger, model: str) -> None:
    window = window_all(store, model)
    y, probs, n = joined_truth(ledger, model)
    assert window["n_predictions"] == n
    assert window["n_labelled"] == len(y)
    assert window["n"] == len(y)
    first = next(e for (m, _), (_, e) in ledger.predictions.items() if m == model)
    classes = list(_classes(first))
    expected_loss = log_loss(y, probs, labels=classes)
    assert math.isclose(window["log_loss"], expected_loss, rel_tol=1e-9)
    if len(classes) == 2:
        expected_brier = brier_score_loss(np.array(y) == "1", probs[:, 1])
    else:
        onehot = np.array([[c == label for c in classes] for label in y], dtype=float)
        expected_brier = float(np.mean(np.sum((probs - onehot) ** 2, axis=1)))
    assert math.isclose(window["brier"], expected_brier, rel_tol=1e-9)


# --- a synthetic world -----------------------------------------------------------------


def make_world(seed: int, n: int = 160) -> tuple[list[dict], list[dict]]:
    """Predictions of three models and labels of every kind, early, late and missing.

    ``m`` (binary, versions v1/v2, cohorts region and device) and ``m2`` (binary)
    score the same request ids ``r*``, so a model-less label joins both;
    ``k`` (three classes) scores its own ids ``k*``.
    """
    rng = np.random.default_rng(seed)
    predictions: list[dict] = []
    labels: list[dict] = []
    span_ms = 40 * 60 * 1000

    def moment() -> datetime:
        return BASE + timedelta(milliseconds=int(rng.integers(0, span_ms)))

    def label_time(at: datetime) -> datetime:
        kind = rng.random()
        if kind < 0.1:  # a clock skewed label: before its prediction
            return at - timedelta(milliseconds=int(rng.integers(1, 5000)))
        if kind < 0.3:
            lag = rng.uniform(0.0, 3.0)
        elif kind < 0.7:
            lag = rng.uniform(5.0, 1800.0)
        elif kind < 0.9:
            lag = rng.uniform(1800.0, 2 * 3600.0)
        else:  # much later: now
            return NOW
        return min(at + timedelta(milliseconds=int(lag * 1000)), NOW)

    for i in range(n):
        rid = f"r{i:04d}"
        at = moment()
        p = float(rng.uniform(0.03, 0.97))
        predictions.append(
            {
                "request_id": rid,
                "model": "m",
                "version": "v1" if rng.random() < 0.7 else "v2",
                "timestamp": _stamp(at),
                "probabilities": p,
                "cohort": {
                    "region": str(rng.choice(["eu", "us", "apac"])),
                    "device": str(rng.choice(["ios", "web"])),
                },
            }
        )
        also_m2 = rng.random() < 0.5
        if also_m2:
            q = float(np.clip(p + rng.normal(0, 0.1), 0.02, 0.98))
            predictions.append(
                {
                    "request_id": rid,
                    "model": "m2",
                    "version": "v1",
                    "timestamp": _stamp(at + timedelta(milliseconds=int(rng.integers(0, 900)))),
                    "probabilities": q,
                    "cohort": {"region": predictions[-1]["cohort"]["region"]},
                }
            )
        y = int(rng.random() < p)
        kind = rng.random()
        owners = (
            []
            if kind < 0.15
            else [""]
            if kind < 0.45
            else ["m"]
            if kind < 0.7
            else ["", "m"]
            if kind < 0.85
            else ["m", "m2"]
        )
        for owner in owners:
            value = y if rng.random() < 0.8 else 1 - y
            event = {"request_id": rid, "label": value, "timestamp": _stamp(label_time(at))}
            if owner:
                event["model"] = owner
            labels.append(event)
    for i in range(n // 2):
        rid = f"k{i:04d}"
        at = moment()
        vector = rng.dirichlet(np.ones(3)) * 0.97 + 0.01
        vector = (vector / vector.sum()).tolist()
        predictions.append(
            {
                "request_id": rid,
                "model": "k",
                "version": "v1",
                "timestamp": _stamp(at),
                "probabilities": vector,
                "classes": list(TRIAGE),
                "cohort": {"region": str(rng.choice(["eu", "us"]))},
            }
        )
        if rng.random() < 0.8:
            event = {
                "request_id": rid,
                "label": str(rng.choice(TRIAGE)),
                "timestamp": _stamp(label_time(at)),
            }
            if rng.random() < 0.5:
                event["model"] = "k"
            labels.append(event)
    return predictions, labels


def _split(rng: np.random.Generator, events: list[dict], parts: int) -> list[list[dict]]:
    order = rng.permutation(len(events))
    cuts = np.sort(rng.choice(np.arange(1, len(events)), size=parts - 1, replace=False))
    return [[events[i] for i in chunk] for chunk in np.split(order, cuts)]


# --- 1. late labels give exactly the from-scratch result ----------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(5))
def test_interleaved_folds_equal_rebuild_and_the_raw_events(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    predictions, labels = make_world(seed)
    fold_rows = [25, 60, 200_000][seed % 3]
    store = EventStore(":memory:", monitor=MonitorConfig(fold_rows=fold_rows))
    ledger = Ledger(store)
    writes = [("p", b) for b in _split(rng, predictions, 6)]
    writes += [("l", b) for b in _split(rng, labels, 8)]
    order = rng.permutation(len(writes))
    writes = [writes[i] for i in order]
    # An identical re-send of one batch: duplicates, stored and counted once.
    writes.insert(int(rng.integers(len(writes))), writes[int(rng.integers(len(writes)))])
    for kind, batch in writes:
        (ledger.predict if kind == "p" else ledger.label)(batch)
        if rng.random() < 0.5:  # a fold at a random point, compacting or not
            store.update_buckets(compact=[None, True, False][int(rng.integers(3))])
    store.update_buckets(compact=False)
    incremental = snapshot(store)
    assert_matches_events(incremental, expected_scores(ledger))
    assert_hours_merge_the_minutes(store)
    for model in ("m", "m2", "k"):
        assert_window_matches_sklearn(store, ledger, model)

    store.rebuild_buckets()
    rebuilt = snapshot(store)
    assert_same_buckets(incremental, rebuilt)
    assert_hours_merge_the_minutes(store)
    with store.cursor() as cursor:
        assert cursor.execute("SELECT count(*) FROM bucket_scores WHERE delta").fetchone() == (0,)
    # Pending: the labels whose prediction never came (m2 labels of requests m2 did not score).
    unmatched = [
        key
        for key in ledger.labels
        if (key[0] and key not in ledger.predictions)
        or (not key[0] and not any(rid == key[1] for _, rid in ledger.predictions))
    ]
    assert store.counts(TENANT)["pending"] == len(unmatched) > 0


def test_labels_before_predictions_wait_then_fold_once() -> None:
    store = EventStore(":memory:")
    ledger = Ledger(store)
    at = BASE + timedelta(minutes=3, seconds=10)
    ledger.label(
        [
            {"request_id": f"r{i}", "model": "m", "label": i % 2, "timestamp": _stamp(NOW)}
            for i in range(6)
        ]
    )
    assert store.update_buckets()["joined"] == 0  # nothing to join yet
    assert store.counts(TENANT)["pending"] == 6
    ledger.predict(
        [
            {
                "request_id": f"r{i}",
                "model": "m",
                "timestamp": _stamp(at),
                "probabilities": 0.05 + 0.09 * i,
            }
            for i in range(10)
        ]
    )
    assert store.update_buckets() == {"predictions": 10, "joined": 6, "compacted": 0}
    assert_matches_events(snapshot(store), expected_scores(ledger))
    assert_window_matches_sklearn(store, ledger, "m")


# --- 2. each event folded once ------------------------------------------------------------


def _binary_predictions(n: int, model: str = "m", start: int = 0) -> list[dict]:
    return [
        {
            "request_id": f"r{i}",
            "model": model,
            "timestamp": _stamp(BASE + timedelta(seconds=13 * i)),
            "probabilities": round(0.05 + 0.9 * ((i * 37) % 100) / 100, 4),
            "cohort": {"region": "eu" if i % 3 else "us"},
        }
        for i in range(start, start + n)
    ]


def _label(request_id: str, value: Any, model: str = "") -> dict[str, Any]:
    event = {"request_id": request_id, "label": value, "timestamp": _stamp(NOW)}
    if model:
        event["model"] = model
    return event


def _raw_rows(store: EventStore) -> list[tuple]:
    with store.cursor() as cursor:
        return sorted(
            cursor.execute(f"SELECT {_SCORE_COLUMNS}, delta FROM bucket_scores").fetchall(),
            key=repr,
        )


def test_second_fold_changes_nothing() -> None:
    store = EventStore(":memory:")
    ledger = Ledger(store)
    ledger.predict(_binary_predictions(40))
    ledger.label([_label(f"r{i}", i % 2) for i in range(0, 40, 2)])
    first = store.update_buckets(compact=False)
    assert first["predictions"] == 40 and first["joined"] == 20
    rows = _raw_rows(store)
    assert store.update_buckets(compact=False) == {"predictions": 0, "joined": 0, "compacted": 0}
    assert _raw_rows(store) == rows
    assert_matches_events(snapshot(store), expected_scores(ledger))


def test_duplicate_and_second_labels_are_not_counted_twice() -> None:
    store = EventStore(":memory:")
    ledger = Ledger(store)
    ledger.predict(_binary_predictions(30))
    specific = [
        {"request_id": f"r{i}", "model": "m", "label": 1, "timestamp": _stamp(NOW)}
        for i in range(10)
    ]
    anonymous = [_label(f"r{i}", 0) for i in range(10, 20)]
    ledger.label(specific + anonymous)
    store.update_buckets()
    before = snapshot(store)
    assert window_all(store, "m")["n_labelled"] == 20

    # The same labels again: duplicates, not stored, nothing folded.
    outcome = ledger.label(specific + anonymous)
    assert outcome.duplicates == 20 and outcome.inserted == 0
    assert store.update_buckets()["joined"] == 0
    assert_same_buckets(snapshot(store), before)

    # A label of the other kind (and another value) for predictions that have one: stored,
    # never counted twice; the first label keeps counting.
    outcome = ledger.label(
        [_label(f"r{i}", 0) for i in range(10)] + [_label(f"r{i}", 1, "m") for i in range(10, 20)]
    )
    assert outcome.inserted == 20
    assert store.update_buckets()["joined"] == 0
    assert_same_buckets(snapshot(store), before)
    assert_matches_events(snapshot(store), expected_scores(ledger))
    window = window_all(store, "m")
    assert window["n_labelled"] == 20
    assert window["label_counts"] == {"0": 10.0, "1": 10.0}
    assert_window_matches_sklearn(store, ledger, "m")


def test_one_commit_with_both_kinds_counts_the_named_model() -> None:
    store = EventStore(":memory:")
    ledger = Ledger(store)
    ledger.predict(_binary_predictions(8))
    # Labels before the prediction of r8..r11 and in one commit with both kinds.
    ledger.label(
        [_label(f"r{i}", 0) for i in range(12)] + [_label(f"r{i}", 1, "m") for i in range(12)]
    )
    ledger.predict(_binary_predictions(4, start=8))
    store.update_buckets()
    window = window_all(store, "m")
    assert window["n_labelled"] == 12
    assert window["label_counts"] == {"0": 0.0, "1": 12.0}
    assert_matches_events(snapshot(store), expected_scores(ledger))


def test_one_model_less_label_joins_every_model_of_the_request() -> None:
    store = EventStore(":memory:")
    ledger = Ledger(store)
    ledger.predict(_binary_predictions(10, model="a"))
    ledger.label([_label(f"r{i}", i % 2) for i in range(10)])
    store.update_buckets()
    ledger.predict(_binary_predictions(10, model="b"))  # after the labels were folded
    store.update_buckets()
    assert window_all(store, "a")["n_labelled"] == 10
    assert window_all(store, "b")["n_labelled"] == 10
    assert_matches_events(snapshot(store), expected_scores(ledger))


# --- 3. crash safety -----------------------------------------------------------------------


def test_marks_survive_close_and_reopen(tmp_path: Path) -> None:
    path = tmp_path / "events.duckdb"
    predictions, labels = make_world(7, n=120)
    rng = np.random.default_rng(7)
    p_parts, l_parts = _split(rng, predictions, 3), _split(rng, labels, 3)

    store = EventStore(path, monitor=MonitorConfig(fold_rows=40))
    ledger = Ledger(store)
    ledger.predict(p_parts[0])
    ledger.label(l_parts[0])
    store.update_buckets(compact=False)
    ledger.predict(p_parts[1])
    store.close()

    store = EventStore(path, monitor=MonitorConfig(fold_rows=40))
    ledger.store = store
    store.update_buckets()
    ledger.label(l_parts[1])
    ledger.predict(p_parts[2])
    store.close()

    store = EventStore(path, monitor=MonitorConfig(fold_rows=40))
    ledger.store = store
    ledger.label(l_parts[2])
    store.update_buckets(compact=False)
    store.close()

    store = EventStore(path, monitor=MonitorConfig(fold_rows=40))
    ledger.store = store
    assert store.update_buckets() == {"predictions": 0, "joined": 0, "compacted": 0}
    incremental = snapshot(store)
    assert_matches_events(incremental, expected_scores(ledger))
    store.rebuild_buckets()
    assert_same_buckets(snapshot(store), incremental)
    store.close()


@pytest.mark.slow
def test_a_failed_fold_step_is_rolled_back_and_redone_once(monkeypatch) -> None:
    predictions, labels = make_world(11, n=120)
    store = EventStore(":memory:", monitor=MonitorConfig(fold_rows=30, learn_after=20))
    ledger = Ledger(store)
    for i, event in enumerate(predictions):
        event["features"] = {"amount": float(i % 17), "kind": "ab"[i % 2]}
    rng = np.random.default_rng(11)
    for batch in _split(rng, predictions, 4):
        ledger.predict(batch)
    for batch in _split(rng, labels, 3):
        ledger.label(batch)

    real = store.buckets._set_marks
    calls = {"n": 0}

    def failing(con: Any, p: int, lbl: int) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError("disk full")
        real(con, p, lbl)

    monkeypatch.setattr(store.buckets, "_set_marks", failing)
    with pytest.raises(OSError, match="disk full"):
        store.update_buckets(compact=False)
    monkeypatch.setattr(store.buckets, "_set_marks", real)
    store.update_buckets(compact=False)

    incremental = snapshot(store)
    assert_matches_events(incremental, expected_scores(ledger))
    features = _feature_snapshot(store)
    store.rebuild_buckets()
    assert_same_buckets(snapshot(store), incremental)
    assert _feature_snapshot(store) == features
    per_model = Counter(e["model"] for e in predictions)
    assert _feature_totals(store) == {
        (model, name): n for model, n in per_model.items() for name in ("amount", "kind")
    }


# --- 4. cohort cap ------------------------------------------------------------------------


def test_within_one_fold_the_most_frequent_values_get_the_cap() -> None:
    store = EventStore(":memory:", monitor=MonitorConfig(cohort_cap=2))
    cities = ["lima"] + ["oslo"] * 5 + ["bern"] * 2 + ["rome"] * 3  # lima comes first, once
    events = [
        {
            "request_id": f"r{i}",
            "model": "m",
            "timestamp": _stamp(BASE + timedelta(seconds=20 * i)),
            "probabilities": 0.3,
            "cohort": {"city": city},
        }
        for i, city in enumerate(cities)
    ]
    Ledger(store).predict(events)
    store.update_buckets()
    totals: Counter[str] = Counter()
    for key, stats in snapshot(store).items():
        if key[2] == "city":
            totals[key[3]] += stats["n_predictions"]
    assert totals == {"oslo": 5, "rome": 3, OTHER: 3}  # lima and bern share "other"


def test_cohort_values_beyond_the_cap_go_to_other() -> None:
    store = EventStore(":memory:", monitor=MonitorConfig(cohort_cap=2))
    ledger = Ledger(store)

    def batch(values: list[str], start: int, model: str = "m") -> list[dict]:
        return [
            {
                "request_id": f"r{start + i}",
                "model": model,
                "timestamp": _stamp(BASE + timedelta(seconds=20 * (start + i))),
                "probabilities": 0.3,
                "cohort": {"city": value, "tier": "gold" if i % 2 else "free"},
            }
            for i, value in enumerate(values)
        ]

    ledger.predict(batch(["paris"] * 5, 0))
    ledger.predict(batch(["rome"] * 3, 5))
    ledger.predict(batch(["oslo", "lima", "oslo", "rome", "kyiv", "paris"], 8))
    store.update_buckets()
    ledger.predict(batch(["lima", "bern", "paris"], 14))
    # Another model has its own first two values.
    ledger.predict(batch(["oslo", "lima", "rome"], 100, model="other"))
    ledger.label([_label(f"r{i}", i % 2, "m") for i in range(17)])
    store.update_buckets()

    own = {("m", "city", "paris"), ("m", "city", "rome"), ("other", "city", "oslo")}
    own |= {("other", "city", "lima")}
    own |= {(m, "tier", t) for m in ("m", "other") for t in ("gold", "free")}
    cohort_map = {key: key[2] for key in own}
    got = snapshot(store)
    assert_matches_events(got, expected_scores(ledger, cohort_map))

    totals: dict[tuple[str, str, str], int] = Counter()
    for key, stats in got.items():
        totals[(key[0], key[2], key[3])] += stats["n_predictions"]
    assert totals[("m", "city", OTHER)] == 6  # oslo, lima, oslo, kyiv, lima, bern
    assert totals[("m", "city", "paris")] == 7 and totals[("m", "city", "rome")] == 4
    assert totals[("other", "city", OTHER)] == 1
    for model in ("m", "other"):
        whole = totals[(model, "", "")]
        assert sum(v for k, v in totals.items() if k[:2] == (model, "city")) == whole
        assert sum(v for k, v in totals.items() if k[:2] == (model, "tier")) == whole
    window = (
        Monitor(store)
        .window(Scope(TENANT, "m", cohort=f"city:{OTHER}", window="24h", now=NOW))
        .to_dict()
    )
    assert window["n_predictions"] == 6 and window["n_labelled"] == 6

    store.rebuild_buckets()
    assert_same_buckets(snapshot(store), got)


# --- 5. feature bins ------------------------------------------------------------------------


def _feature_snapshot(store: EventStore) -> dict[tuple, list[int]]:
    """Feature histograms per (model, version, cohort, bucket, feature), rows summed."""
    with store.cursor() as cursor:
        rows = cursor.execute(
            "SELECT model, version, cohort_key, cohort_value, epoch_us(bucket), feature, counts "
            "FROM bucket_features"
        ).fetchall()
    out: dict[tuple, np.ndarray] = {}
    for *key, counts in rows:
        key = tuple(key)
        counts = np.asarray(counts, dtype=np.int64)
        if key in out:
            assert out[key].shape == counts.shape
            out[key] = out[key] + counts
        else:
            out[key] = counts
    return {k: v.tolist() for k, v in out.items()}


def _feature_totals(store: EventStore) -> dict[tuple[str, str], int]:
    """Values counted per (model, feature), model-wide buckets."""
    totals: Counter[tuple[str, str]] = Counter()
    for key, counts in _feature_snapshot(store).items():
        if key[2] == "":
            totals[(key[0], key[5])] += sum(counts)
    return dict(totals)


def test_feature_bins_are_learned_then_every_prediction_counted_once() -> None:
    config = MonitorConfig(learn_after=50, numeric_bins=8, top_k=3)
    store = EventStore(":memory:", monitor=config)
    ledger = Ledger(store)
    rng = np.random.default_rng(5)
    colours = ["red"] * 20 + ["blue"] * 15 + ["green"] * 12 + ["black"] * 7
    colours += ["white"] * 4 + ["pink"] * 2
    rng.shuffle(colours)

    def event(i: int, features: dict[str, Any]) -> dict[str, Any]:
        return {
            "request_id": f"r{i}",
            "model": "m",
            "version": "v1" if i % 4 else "v2",
            "timestamp": _stamp(BASE + timedelta(seconds=11 * i)),
            "probabilities": 0.4,
            "features": features,
        }

    amounts = np.round(rng.lognormal(3.0, 1.0, 200), 2)
    events = []
    for i in range(60):
        features: dict[str, Any] = {"amount": float(amounts[i]), "colour": colours[i]}
        if i == 17:
            features["amount"] = "n/a"  # not a number: the missing bin of a numeric feature
        events.append(event(i, features))
    ledger.predict(events[:30])
    store.update_buckets()
    assert store.buckets.feature_bins(TENANT, "m") == {}  # 30 values: not learned yet
    with store.cursor() as cursor:
        assert cursor.execute("SELECT count(*) FROM bucket_features").fetchone() == (0,)
    ledger.predict(events[30:60])
    store.update_buckets()

    bins = store.buckets.feature_bins(TENANT, "m")
    assert set(bins) == {"amount", "colour"}
    learned_from = np.array([e["features"]["amount"] for e in events if e["request_id"] != "r17"])
    inner = np.linspace(0.0, 1.0, config.numeric_bins + 1)[1:-1]
    assert bins["amount"].kind == "numeric"
    np.testing.assert_allclose(
        bins["amount"].edges, np.unique(np.quantile(learned_from, inner)), rtol=1e-12
    )
    assert bins["colour"].kind == "categorical"
    assert bins["colour"].categories == ("red", "blue", "green")

    # Later predictions: new categories, missing features, no features at all (alone in
    # their commit and their fold), a feature the bins never saw.
    later = []
    for i in range(60, 120):
        features = {"amount": float(amounts[i]), "colour": str(rng.choice(["red", "teal"]))}
        if i % 5 == 0:
            del features["colour"]
        if i % 7 == 0:
            features["amount"] = None
        later.append(event(i, features))
    ledger.predict(later[:30])
    ledger.predict([event(i, {}) for i in range(120, 130)])
    store.update_buckets()
    ledger.predict(later[30:])
    store.update_buckets()
    ledger.predict([event(i, {}) for i in range(130, 135)])
    store.update_buckets()

    every = [e for _, (_, e) in ledger.predictions.items()]
    expected: dict[tuple, np.ndarray] = {}
    edges = bins["amount"].edges
    categories = bins["colour"].categories
    for e in every:
        bucket = _us(datetime.fromisoformat(e["timestamp"])) // MINUTE_US * MINUTE_US
        amount = e["features"].get("amount")
        a = sum(amount > edge for edge in edges) if isinstance(amount, float) else len(edges) + 1
        colour = e["features"].get("colour")
        c = (
            len(categories) + 1
            if colour is None
            else (categories.index(colour) if colour in categories else len(categories))
        )
        for feature, index, width in (
            ("amount", a, len(edges) + 2),
            ("colour", c, len(categories) + 2),
        ):
            key = ("m", e["version"], "", "", bucket, feature)
            expected.setdefault(key, np.zeros(width, dtype=np.int64))[index] += 1
    got = _feature_snapshot(store)
    assert got == {k: v.tolist() for k, v in expected.items()}
    assert _feature_totals(store) == {("m", "amount"): 135, ("m", "colour"): 135}

    store.rebuild_buckets()
    assert _feature_snapshot(store) == got


def test_feature_bins_survive_reopen_and_learning_resumes(tmp_path: Path) -> None:
    path = tmp_path / "features.duckdb"
    config = MonitorConfig(learn_after=40, numeric_bins=5)

    def events(start: int, n: int) -> list[dict]:
        return [
            {
                "request_id": f"r{i}",
                "model": "m",
                "timestamp": _stamp(BASE + timedelta(seconds=7 * i)),
                "probabilities": 0.5,
                "features": {"size": float(i % 13)},
            }
            for i in range(start, start + n)
        ]

    store = EventStore(path, monitor=config)
    Ledger(store).predict(events(0, 30))
    store.update_buckets()
    store.close()
    store = EventStore(path, monitor=config)
    Ledger(store).predict(events(30, 30))
    store.update_buckets()
    store.close()
    store = EventStore(path, monitor=config)
    Ledger(store).predict(events(60, 30))
    store.update_buckets()
    # Whenever the bins were learned, every stored prediction is in the histograms once.
    assert "size" in store.buckets.feature_bins(TENANT, "m")
    assert _feature_totals(store) == {("m", "size"): 90}
    store.close()


# --- 6. upgrading a schema-1 database -------------------------------------------------------


def test_schema_1_database_upgrades_and_folds_everything(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    predictions, labels = make_world(3, n=80)
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE meta (key VARCHAR PRIMARY KEY, value VARCHAR)")
    con.execute(store_module.MIGRATIONS[0])
    con.execute("INSERT INTO meta VALUES ('schema_version', '1')")
    old_p, new_p = predictions[:150], predictions[150:]
    old_l, new_l = labels[: len(labels) // 2], labels[len(labels) // 2 :]
    for table, rows in (
        ("predictions", parse_predictions(old_p, tenant=TENANT).drop(["weight"])),  # schema 6
        ("labels", parse_labels(old_l, tenant=TENANT).drop(["correction"])),  # schema 5
    ):
        con.register("_rows", rows)
        con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM _rows")
        con.unregister("_rows")
    con.close()

    store = EventStore(path, monitor=MonitorConfig(fold_rows=50))
    assert store.schema_version == len(store_module.MIGRATIONS)
    ledger = Ledger(store)
    # What the old file holds, as if written in one commit before everything else.
    ledger.predictions = {(e["model"], e["request_id"]): (-1, e) for e in old_p}
    ledger.labels = {(e.get("model", ""), e["request_id"]): (-1, e) for e in old_l}
    assert store.update_buckets()["predictions"] == len(old_p)
    assert_matches_events(snapshot(store), expected_scores(ledger))

    # New events after the upgrade, including late labels of old predictions.
    ledger.predict(new_p)
    ledger.label(new_l)
    store.update_buckets()
    incremental = snapshot(store)
    assert_matches_events(incremental, expected_scores(ledger))
    for model in ("m", "m2", "k"):
        assert_window_matches_sklearn(store, ledger, model)
    store.rebuild_buckets()
    assert_same_buckets(snapshot(store), incremental)
    store.close()


def test_feature_names_with_json_path_characters_are_read_literally() -> None:
    store = EventStore(":memory:", monitor=MonitorConfig(learn_after=5))
    ledger = Ledger(store)
    names = ["a.b", "x:y", "p/q@r"]
    ledger.predict(
        [
            {
                "request_id": f"r{i}",
                "model": "m",
                "timestamp": _stamp(BASE + timedelta(seconds=i)),
                "probabilities": 0.5,
                "features": {name: float(i) for name in names},
            }
            for i in range(10)
        ]
    )
    store.update_buckets()
    bins = store.buckets.feature_bins(TENANT, "m")
    assert set(bins) == set(names)
    assert all(spec.kind == "numeric" for spec in bins.values())
    assert _feature_totals(store) == {("m", name): 10 for name in names}


def test_a_failed_step_that_learned_bins_leaves_no_trace_in_memory(
    tmp_path: Path, monkeypatch
) -> None:
    # The step that fails is the one that fixes the bins (and admits cohort values): after
    # the rollback, redoing it must count the predictions of the earlier steps too.
    path = tmp_path / "failed.duckdb"
    config = MonitorConfig(fold_rows=30, learn_after=60)
    store = EventStore(path, monitor=config)
    ledger = Ledger(store)
    events = [
        {
            "request_id": f"r{i}",
            "model": "m",
            "timestamp": _stamp(BASE + timedelta(seconds=9 * i)),
            "probabilities": 0.3,
            "cohort": {"region": f"z{i // 40}"},
            "features": {"amount": float(i % 11)},
        }
        for i in range(80)
    ]
    ledger.predict(events[:40])
    ledger.predict(events[40:])
    real = store.buckets._set_marks
    calls = {"n": 0}

    def failing(con: Any, p: int, lbl: int) -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError("disk full")
        real(con, p, lbl)

    monkeypatch.setattr(store.buckets, "_set_marks", failing)
    with pytest.raises(OSError, match="disk full"):
        store.update_buckets(compact=False)
    assert calls["n"] == 2
    monkeypatch.setattr(store.buckets, "_set_marks", real)
    store.update_buckets(compact=False)
    assert _feature_totals(store) == {("m", "amount"): 80}
    assert_matches_events(snapshot(store), expected_scores(ledger))
    store.close()

    # What memory held is what the file holds: reopening and folding changes nothing.
    store = EventStore(path, monitor=config)
    assert set(store.buckets.feature_bins(TENANT, "m")) == {"amount"}
    ledger.store = store
    ledger.predict([{**events[0], "request_id": "late", "cohort": {"region": "z9"}}])
    store.update_buckets()
    assert _feature_totals(store) == {("m", "amount"): 81}
    assert_matches_events(snapshot(store), expected_scores(ledger))
    store.close()


# --- hourly twins ---------------------------------------------------------------------------


@pytest.mark.slow
def _close(a: Any, b: Any) -> bool:
    """Equal documents, floats (also nested) to 1e-12 relative."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float):
        return a == pytest.approx(b, rel=1e-12)
    return bool(a == b)


def test_hourly_rows_merge_their_minutes_and_answer_like_them() -> None:
    """Five hours of predictions with features and cohorts, labels late and out of order,
    folds and compactions in between: each hourly row holds exactly its minutes, and
    windows and series read through the hours answer as the minutes alone do."""
    rng = np.random.default_rng(17)
    store = EventStore(
        ":memory:", monitor=MonitorConfig(learn_after=50, cohort_features=True, fold_rows=300)
    )
    start = NOW.replace(minute=0, second=0) - timedelta(hours=6)
    n = 1500
    offsets = np.sort(rng.integers(0, 5 * 3600 * 1000, n))
    predictions = [
        {
            "request_id": f"h{i}",
            "model": "m",
            "version": "v1" if i % 3 else "v2",
            "timestamp": _stamp(start + timedelta(milliseconds=int(offsets[i]))),
            "probabilities": float(rng.uniform(0.05, 0.95)),
            "cohort": {"region": str(rng.choice(["eu", "us"]))},
            "features": {"x": float(rng.normal()), "c": str(rng.choice(["a", "b", "c"]))},
        }
        for i in range(n)
    ]
    labels = [
        {"request_id": f"h{i}", "model": "m", "label": int(rng.random() < 0.3)}
        for i in rng.permutation(n)[: int(0.8 * n)]
    ]
    ledger = Ledger(store)
    for i in range(0, n, 250):
        ledger.predict(predictions[i : i + 250])
        ledger.label(labels[i // 2 : i // 2 + 125])  # late, in random order
        store.update_buckets(compact=bool(i % 500))
    ledger.label(labels[n // 2 :])
    store.update_buckets(compact=False)
    with store.cursor() as cursor:
        hours = cursor.execute("SELECT count(DISTINCT bucket) FROM bucket_scores_hour").fetchone()
    assert hours[0] >= 5
    assert_hours_merge_the_minutes(store)

    monitor = Monitor(store)
    original = queries.bucket_rows

    def minutes(*args: Any, **kwargs: Any) -> Any:
        return original(*args, **{**kwargs, "hours": False})

    def minute_only(ask: Callable[[Monitor], Any]) -> dict[str, Any]:
        """The answer of ``ask`` when every bucket read is of the minute tables."""
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(queries, "bucket_rows", minutes)
            return ask(Monitor(store)).to_dict()

    ragged = {"start": start + timedelta(minutes=37), "end": start + timedelta(hours=4, minutes=13)}
    for cohort in (None, "region:eu"):
        scope = Scope(TENANT, "m", cohort=cohort, now=NOW, **ragged)
        via_hours = monitor.window(scope).to_dict()
        via_minutes = minute_only(lambda m, scope=scope: m.window(scope))
        assert via_hours.keys() == via_minutes.keys()
        for key, value in via_minutes.items():
            if isinstance(value, float):
                assert via_hours[key] == pytest.approx(value, rel=1e-12), key
            elif key == "log_loss_estimate":  # sums added in another order
                assert _close(via_hours[key], value), key
            elif key not in ("log_loss_ci", "brier_ci"):
                assert via_hours[key] == value, key
    series = monitor.series(
        Scope(TENANT, "m", window="6h", now=start + timedelta(hours=6)), step="1h"
    ).to_dict()
    flat = minute_only(
        lambda m: m.series(
            Scope(TENANT, "m", window="6h", now=start + timedelta(hours=6)), step="1h"
        )
    )
    assert [w["n_predictions"] for w in series["series"]] == [
        w["n_predictions"] for w in flat["series"]
    ]
    assert sum(w["n_predictions"] for w in series["series"]) == n
    for a, b in zip(series["series"], flat["series"], strict=True):
        assert a["n_labelled"] == b["n_labelled"]
        if b["log_loss"] is None:  # the sixth hour has no events
            assert a["log_loss"] is None and b["n_predictions"] == 0
        else:
            assert a["log_loss"] == pytest.approx(b["log_loss"], rel=1e-12)
    drift_hours = monitor.drift(
        Scope(TENANT, "m", window="2h", now=start + timedelta(hours=5))
    ).to_dict()
    drift_minutes = minute_only(
        lambda m: m.drift(Scope(TENANT, "m", window="2h", now=start + timedelta(hours=5)))
    )
    assert [f["feature"] for f in drift_hours["features"]] == [
        f["feature"] for f in drift_minutes["features"]
    ]
    for a, b in zip(drift_hours["features"], drift_minutes["features"], strict=True):
        assert a["n_reference"] == b["n_reference"] and a["n_current"] == b["n_current"]
        assert a["js"] == pytest.approx(b["js"], rel=1e-9, abs=1e-15)


def test_a_window_keeps_the_clip_policy_of_its_store() -> None:
    """Buckets folded with a non-default eps give the log loss of that eps, not 1e-15's."""
    eps = 0.05
    predictions, labels = make_world(7)
    store = EventStore(":memory:", monitor=MonitorConfig(eps=eps))
    ledger = Ledger(store)
    ledger.predict(predictions)
    ledger.label(labels)
    store.update_buckets()
    for model in ("m", "k"):
        window = window_all(store, model)
        y, probs, _ = joined_truth(ledger, model)
        first = next(e for (m, _), (_, e) in ledger.predictions.items() if m == model)
        classes = list(_classes(first))
        true = probs[np.arange(len(y)), [classes.index(label) for label in y]]
        assert (true < eps).any()  # the policy matters for these events
        expected = float(np.mean(-np.log(np.clip(true, eps, 1 - eps))))
        assert math.isclose(window["log_loss"], expected, rel_tol=1e-9)
        if len(classes) == 2:  # scikit-learn on the same clipped probabilities
            clipped = np.clip(probs[:, 1], eps, 1 - eps)
            assert math.isclose(
                window["log_loss"], log_loss(y, clipped, labels=classes), rel_tol=1e-9
            )
