"""Monitor: windows, series, provisional flags, label lag, canary/shadow gates and drift.

Every stream here is generated in the test with known truths (probabilities,
labels, label lags, planted degradations and shifts); expectations come from
those raw events with NumPy and scikit-learn, never from the code under test.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon
from sklearn.metrics import brier_score_loss, log_loss

from xebench.errors import InvalidInputError
from xebench.ingest.events import parse_labels, parse_predictions
from xebench.monitor.windows import ModelPolicy, Monitor, MonitorSettings, Scope
from xebench.store.buckets import MonitorConfig
from xebench.store.event_store import EventStore

TENANT = "t"
NOW = datetime.now(UTC).replace(microsecond=0)
NOW_MINUTE = NOW.replace(second=0)
#: One lag bin: ten per decade.
LAG_RESOLUTION = 10**0.1 * 1.001


def _stamp(moment: datetime) -> str:
    return moment.isoformat()


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _ceil_minute(moment: datetime) -> datetime:
    floor = moment.replace(second=0, microsecond=0)
    return floor if floor == moment else floor + timedelta(minutes=1)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def _write(store: EventStore, predictions: list[dict], labels: list[dict]) -> None:
    for i in range(0, len(predictions), 2000):
        store.insert_predictions(parse_predictions(predictions[i : i + 2000], tenant=TENANT))
    for i in range(0, len(labels), 2000):
        store.insert_labels(parse_labels(labels[i : i + 2000], tenant=TENANT))


# --- the production stream --------------------------------------------------------------


@dataclass
class Stream:
    """One binary model's events as arrays: the truth the windows are checked against."""

    time: np.ndarray  # datetime64[ms]
    version: np.ndarray
    region: np.ndarray
    p: np.ndarray
    y: np.ndarray
    labelled: np.ndarray
    lag_s: np.ndarray  # NaN when not labelled

    def select(self, start: datetime, end: datetime, **where: str) -> np.ndarray:
        lo = np.datetime64(start.replace(tzinfo=None), "ms")
        hi = np.datetime64(end.replace(tzinfo=None), "ms")
        mask = (self.time >= lo) & (self.time < hi)
        for name, value in where.items():
            mask &= getattr(self, name) == value
        return mask


STREAM_END = NOW_MINUTE - timedelta(minutes=10)
STREAM_START = STREAM_END - timedelta(hours=5)


@pytest.fixture(scope="module")
def production() -> tuple[EventStore, Stream]:
    rng = np.random.default_rng(42)
    n = 1500
    span_ms = int((STREAM_END - STREAM_START).total_seconds() * 1000)
    offsets = np.sort(rng.integers(0, span_ms, n))
    start = np.datetime64(STREAM_START.replace(tzinfo=None), "ms")
    time = start + offsets.astype("timedelta64[ms]")
    version = np.where(rng.random(n) < 0.8, "v1", "v2")
    region = rng.choice(np.array(["eu", "us", "apac"]), n)
    p = np.round(rng.uniform(0.02, 0.98, n), 6)
    y = (rng.random(n) < p).astype(int)
    lag_ms = np.round(rng.lognormal(math.log(900.0), 1.2, n) * 1000).astype(np.int64)
    label_time = time + lag_ms.astype("timedelta64[ms]")
    now64 = np.datetime64(NOW.replace(tzinfo=None), "ms")
    labelled = (rng.random(n) < 0.8) & (label_time <= now64)
    stream = Stream(time, version, region, p, y, labelled, np.where(labelled, lag_ms / 1e3, np.nan))

    def stamp(moment: np.datetime64) -> str:
        return str(moment) + "+00:00"

    predictions = [
        {
            "request_id": f"f{i}",
            "model": "fraud",
            "version": str(version[i]),
            "timestamp": stamp(time[i]),
            "probabilities": float(p[i]),
            "cohort": {"region": str(region[i])},
        }
        for i in range(n)
    ]
    # Another model on the same requests, with other probabilities: never mixed in.
    predictions += [{**event, "model": "other", "probabilities": 0.5} for event in predictions[::3]]
    labels = [
        {"request_id": f"f{i}", "model": "fraud", "label": int(y[i]), "timestamp": stamp(t)}
        for i, t in enumerate(label_time)
        if labelled[i]
    ]
    store = EventStore(":memory:")
    _write(store, predictions, labels)
    store.update_buckets()
    return store, stream


def _expect(window: dict[str, Any], stream: Stream, mask: np.ndarray) -> None:
    """The window's counts and scores equal those of the raw events under ``mask``."""
    scored = mask & stream.labelled
    assert window["n_predictions"] == int(mask.sum())
    assert window["n_labelled"] == int(scored.sum())
    assert window["n"] == int(scored.sum())
    assert window["coverage"] == pytest.approx(scored.sum() / mask.sum(), rel=1e-12)
    y, p = stream.y[scored], stream.p[scored]
    assert window["log_loss"] == pytest.approx(log_loss(y, p, labels=[0, 1]), rel=1e-9)
    assert window["brier"] == pytest.approx(brier_score_loss(y, p), rel=1e-9)
    assert window["label_counts"] == {"0": float((y == 0).sum()), "1": float((y == 1).sum())}


# --- 1. windows -------------------------------------------------------------------------------


def test_window_between_minute_boundaries_equals_the_raw_events(production) -> None:
    store, stream = production
    start = STREAM_START + timedelta(minutes=37)
    end = STREAM_START + timedelta(hours=2, minutes=13)
    window = (
        Monitor(store)
        .window(Scope(TENANT, "fraud", start=_iso(start), end=_iso(end), now=NOW))
        .to_dict()
    )
    assert (window["from"], window["to"]) == (_iso(start), _iso(end))
    mask = stream.select(start, end)
    assert 200 < mask.sum() < 1500
    _expect(window, stream, mask)
    assert window["log_loss_ci"][0] < window["log_loss"] < window["log_loss_ci"][1]


def test_window_over_everything_and_rolling_windows(production) -> None:
    store, stream = production
    monitor = Monitor(store)
    everything = monitor.window(Scope(TENANT, "fraud", window="24h", now=NOW)).to_dict()
    _expect(everything, stream, np.ones(stream.p.shape[0], dtype=bool))
    hour = monitor.window(Scope(TENANT, "fraud", window="1h", now=NOW)).to_dict()
    stop = _ceil_minute(NOW)
    assert (hour["from"], hour["to"]) == (_iso(stop - timedelta(hours=1)), _iso(stop))
    _expect(hour, stream, stream.select(stop - timedelta(hours=1), stop))


def test_window_from_and_to_are_aligned_to_minutes(production) -> None:
    store, _ = production
    start = STREAM_START + timedelta(minutes=20, seconds=31)
    end = STREAM_START + timedelta(minutes=80, seconds=5)
    window = (
        Monitor(store)
        .window(Scope(TENANT, "fraud", start=_iso(start), end=_iso(end), now=NOW))
        .to_dict()
    )
    for name, asked in (("from", start), ("to", end)):
        got = datetime.fromisoformat(window[name].replace("Z", "+00:00"))
        assert got.second == 0 and got.microsecond == 0
        assert abs(got - asked) < timedelta(minutes=1)


@pytest.mark.parametrize(
    ("cohort", "version", "where"),
    [
        ("region:eu", None, {"region": "eu"}),
        ("region:apac", None, {"region": "apac"}),
        (None, "v2", {"version": "v2"}),
        ("region:us", "v1", {"region": "us", "version": "v1"}),
    ],
)
def test_window_by_cohort_and_version(production, cohort, version, where) -> None:
    store, stream = production
    start, end = STREAM_START, STREAM_END
    window = (
        Monitor(store)
        .window(
            Scope(
                TENANT,
                "fraud",
                cohort=cohort,
                version=version,
                start=_iso(start),
                end=_iso(end),
                now=NOW,
            )
        )
        .to_dict()
    )
    assert window["cohort"] == cohort and window["version"] == version
    _expect(window, stream, stream.select(start, end, **where))


def test_window_of_unknown_model_or_cohort_is_empty(production) -> None:
    store, _ = production
    monitor = Monitor(store)
    for window in (
        monitor.window(Scope(TENANT, "nobody", window="24h", now=NOW)).to_dict(),
        monitor.window(
            Scope(TENANT, "fraud", cohort="region:mars", window="24h", now=NOW)
        ).to_dict(),
        monitor.window(Scope(TENANT, "fraud", version="v9", window="24h", now=NOW)).to_dict(),
        monitor.window(Scope("other-tenant", "fraud", window="24h", now=NOW)).to_dict(),
    ):
        assert window["n_predictions"] == 0 and window["n_labelled"] == 0
        assert window["coverage"] is None
        assert window["log_loss"] is None and window["brier"] is None
        assert window["label_lag_p50_s"] is None


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"window": "abc"}, "window"),
        ({"window": "0h"}, "window"),
        ({"window": "-1h"}, "window"),
        ({"cohort": "eu"}, "cohort"),
        ({"cohort": "region:"}, "cohort"),
        ({"cohort": ":eu"}, "cohort"),
        ({"start": "yesterday", "end": "2026-01-01T00:00:00Z"}, "from"),
        ({"start": "2026-01-01T00:00:00"}, "from"),
        ({"start": "2026-01-01T00:00:00Z", "end": "2026-01-01T00:00:00+01:00"}, "from"),
    ],
)
def test_window_bad_arguments_are_named(production, kwargs, argument) -> None:
    store, _ = production
    with pytest.raises(InvalidInputError) as error:
        Monitor(store).window(Scope(TENANT, "fraud", now=NOW, **kwargs)).to_dict()
    assert error.value.argument == argument
    assert str(error.value).startswith(f"{argument}:")


# --- 2. series ------------------------------------------------------------------------------------


def test_series_points_partition_the_window(production) -> None:
    store, stream = production
    monitor = Monitor(store)
    start, end = STREAM_START - timedelta(minutes=30), STREAM_END + timedelta(minutes=10)
    whole = monitor.window(
        Scope(TENANT, "fraud", start=_iso(start), end=_iso(end), now=NOW)
    ).to_dict()
    series = monitor.series(
        Scope(TENANT, "fraud", start=_iso(start), end=_iso(end), now=NOW), step="20m"
    ).to_dict()["series"]
    assert len(series) == (end - start) // timedelta(minutes=20)
    assert series[0]["from"] == _iso(start) and series[-1]["to"] == _iso(end)
    for before, after in itertools.pairwise(series):
        assert before["to"] == after["from"]
    assert sum(w["n_predictions"] for w in series) == whole["n_predictions"] == stream.p.size
    assert sum(w["n_labelled"] for w in series) == whole["n_labelled"]
    for point in series:
        begin = datetime.fromisoformat(point["from"].replace("Z", "+00:00"))
        stop = datetime.fromisoformat(point["to"].replace("Z", "+00:00"))
        mask = stream.select(begin, stop)
        assert point["n_predictions"] == int(mask.sum())
        if (mask & stream.labelled).sum() > 0:
            _expect(point, stream, mask)
        else:
            assert point["log_loss"] is None


def test_series_rolling_window_by_cohort(production) -> None:
    store, stream = production
    series = (
        Monitor(store)
        .series(Scope(TENANT, "fraud", window="6h", cohort="region:eu", now=NOW), step="1h")
        .to_dict()["series"]
    )
    assert len(series) == 6
    # A rolling series ends at the step boundary after now.
    hour = NOW.replace(minute=0, second=0)
    stop = hour if hour == NOW else hour + timedelta(hours=1)
    assert series[-1]["to"] == _iso(stop) and series[0]["from"] == _iso(stop - timedelta(hours=6))
    for point in series:
        begin = datetime.fromisoformat(point["from"].replace("Z", "+00:00"))
        mask = stream.select(begin, begin + timedelta(hours=1), region="eu")
        assert point["n_predictions"] == int(mask.sum())


@pytest.mark.parametrize("step", ["90s", "1.5m", "45s", "abc", "0m"])
def test_series_step_must_be_whole_minutes(production, step) -> None:
    store, _ = production
    with pytest.raises(InvalidInputError) as error:
        Monitor(store).series(Scope(TENANT, "fraud", window="6h", now=NOW), step=step).to_dict()
    assert error.value.argument == "step"


# --- 3. provisional windows ------------------------------------------------------------------


def test_provisional_follows_the_configured_label_delay(production) -> None:
    store, _ = production
    settings = MonitorSettings(
        default=ModelPolicy(label_delay=timedelta(hours=1), min_coverage=0.0)
    )
    monitor = Monitor(store, settings)
    recent = monitor.window(Scope(TENANT, "fraud", window="1h", now=NOW)).to_dict()
    assert recent["provisional"] is True
    assert "label delay" in recent["provisional_reason"]
    assert recent["label_delay_s"] == 3600.0
    end = NOW_MINUTE - timedelta(hours=2)
    old = monitor.window(
        Scope(TENANT, "fraud", start=_iso(end - timedelta(hours=2)), end=_iso(end), now=NOW)
    ).to_dict()
    assert old["n_predictions"] > 0
    assert old["provisional"] is False and old["provisional_reason"] is None
    # Just inside the delay: provisional again.
    end = NOW_MINUTE - timedelta(minutes=50)
    inside = monitor.window(
        Scope(TENANT, "fraud", start=_iso(end - timedelta(hours=1)), end=_iso(end), now=NOW)
    ).to_dict()
    assert inside["provisional"] is True


def test_low_coverage_makes_a_window_provisional(production) -> None:
    store, stream = production
    end = NOW_MINUTE - timedelta(hours=2)
    start = end - timedelta(hours=2)
    mask = stream.select(start, end)
    coverage = (mask & stream.labelled).sum() / mask.sum()
    assert 0.5 < coverage < 0.9  # about 80% of predictions get a label
    for min_coverage, provisional in ((0.9, True), (0.5, False)):
        settings = MonitorSettings(
            default=ModelPolicy(label_delay=timedelta(hours=1), min_coverage=min_coverage)
        )
        window = (
            Monitor(store, settings)
            .window(Scope(TENANT, "fraud", start=_iso(start), end=_iso(end), now=NOW))
            .to_dict()
        )
        assert window["provisional"] is provisional
        if provisional:
            assert "coverage" in window["provisional_reason"]
    # A per-model policy overrides the default.
    settings = MonitorSettings(
        default=ModelPolicy(label_delay=timedelta(hours=1), min_coverage=0.99),
        models={"fraud": ModelPolicy(label_delay=timedelta(hours=1), min_coverage=0.1)},
    )
    window = (
        Monitor(store, settings)
        .window(Scope(TENANT, "fraud", start=_iso(start), end=_iso(end), now=NOW))
        .to_dict()
    )
    assert window["provisional"] is False


def test_label_delay_is_estimated_from_observed_lags(production) -> None:
    store, stream = production
    settings = MonitorSettings(default=ModelPolicy(label_delay=None, min_coverage=0.0))
    monitor = Monitor(store, settings)
    window = monitor.window(Scope(TENANT, "fraud", window="24h", now=NOW)).to_dict()
    true_p90 = float(np.percentile(stream.lag_s[stream.labelled], 90))
    delay = window["label_delay_s"]
    assert true_p90 / LAG_RESOLUTION <= delay <= true_p90 * LAG_RESOLUTION
    assert window["provisional"] is True  # ends now, within the delay
    end = NOW_MINUTE - timedelta(seconds=60 * math.ceil(delay / 60) + 120)
    old = monitor.window(
        Scope(TENANT, "fraud", start=_iso(end - timedelta(hours=1)), end=_iso(end), now=NOW)
    ).to_dict()
    assert old["provisional"] is False
    # No labels at all: no delay to wait for.
    assert (
        monitor.window(Scope(TENANT, "other", window="24h", now=NOW)).to_dict()["label_delay_s"]
        == 0.0
    )


# --- 4. label lag ----------------------------------------------------------------------------


@pytest.mark.parametrize("cohort", [None, "region:eu"])
def test_label_lag_percentiles_within_one_lag_bin(production, cohort) -> None:
    store, stream = production
    window = (
        Monitor(store)
        .window(Scope(TENANT, "fraud", window="24h", cohort=cohort, now=NOW))
        .to_dict()
    )
    mask = stream.labelled & (True if cohort is None else stream.region == "eu")
    lags = stream.lag_s[mask]
    assert lags.size > 100
    for q in (50, 90, 99):
        truth = float(np.percentile(lags, q))
        got = window[f"label_lag_p{q}_s"]
        assert truth / LAG_RESOLUTION <= got <= truth * LAG_RESOLUTION, (q, got, truth)


# --- 5. canary and shadow ---------------------------------------------------------------------


COMPARE_END = NOW_MINUTE - timedelta(minutes=5)


@pytest.fixture(scope="module")
def comparisons() -> tuple[EventStore, dict[str, Any]]:
    """Canary versions of ``fraud`` on split traffic; shadow models on the same requests."""
    rng = np.random.default_rng(7)
    start = COMPARE_END - timedelta(hours=2)
    span_ms = 2 * 3600 * 1000
    truth: dict[str, Any] = {}
    predictions: list[dict] = []
    labels: list[dict] = []

    def moments(n: int) -> list[str]:
        return [
            _stamp(start + timedelta(milliseconds=int(ms))) for ms in rng.integers(0, span_ms, n)
        ]

    # Canary: v1 (baseline), v2 degraded (overconfident, noisy), v3 made like v1, v4 one event.
    for version, n in (("v1", 3000), ("v2", 1500), ("v3", 1500), ("v4", 1)):
        z = rng.normal(-0.5, 1.5, n)
        y = (rng.random(n) < _sigmoid(z)).astype(int)
        if version == "v2":
            seen = 1.8 * z + 0.8 + rng.normal(0, 1.0, n)
        else:
            seen = z + rng.normal(0, 0.3, n)
        p = np.clip(_sigmoid(seen), 1e-4, 1 - 1e-4)
        truth[version] = (y, p)
        for i, (when, prob, label) in enumerate(zip(moments(n), p, y, strict=True)):
            rid = f"c-{version}-{i}"
            predictions.append(
                {
                    "request_id": rid,
                    "model": "fraud",
                    "version": version,
                    "timestamp": when,
                    "probabilities": float(prob),
                }
            )
            labels.append({"request_id": rid, "model": "fraud", "label": int(label)})

    # Shadow: "a" and its exact copy, and a worse "b", all scoring the same requests;
    # labels name no model, so each joins all three.
    n = 1500
    z = rng.normal(0.0, 1.5, n)
    y = (rng.random(n) < _sigmoid(z)).astype(int)
    good = np.clip(_sigmoid(z + rng.normal(0, 0.3, n)), 1e-4, 1 - 1e-4)
    bad = np.clip(_sigmoid(0.5 * z + rng.normal(0, 1.2, n)), 1e-4, 1 - 1e-4)
    truth["shadow"] = (y, good, bad)
    for i, when in enumerate(moments(n)):
        rid = f"s-{i}"
        for model, prob in (("a", good[i]), ("a_copy", good[i]), ("b", bad[i])):
            predictions.append(
                {
                    "request_id": rid,
                    "model": model,
                    "version": "v1",
                    "timestamp": when,
                    "probabilities": float(prob),
                }
            )
        labels.append({"request_id": rid, "label": int(y[i])})
    store = EventStore(":memory:")
    _write(store, predictions, labels)
    store.update_buckets()
    return store, truth


def _compare(store: EventStore, candidate: str, baseline: str, **kwargs: Any) -> dict[str, Any]:
    kwargs.setdefault("min_samples", 500)
    scope = Scope.named(TENANT, candidate, "candidate", window="6h", now=NOW)
    return Monitor(store).compare(scope, baseline, max_degradation=0.02, **kwargs).to_dict()


def test_canary_with_a_planted_degradation_fails(comparisons) -> None:
    store, truth = comparisons
    result = _compare(store, "fraud:v2", "fraud:v1")
    assert result["mode"] == "canary"
    assert result["decision"]["status"] == "fail"
    comparison = result["comparison"]
    (y2, p2), (y1, p1) = truth["v2"], truth["v1"]
    assert comparison["kind"] == "unpaired"
    assert comparison["n_candidate"] == y2.size and comparison["n_baseline"] == y1.size
    assert comparison["candidate_log_loss"] == pytest.approx(log_loss(y2, p2), rel=1e-9)
    assert comparison["baseline_log_loss"] == pytest.approx(log_loss(y1, p1), rel=1e-9)
    assert comparison["delta"] == pytest.approx(log_loss(y2, p2) - log_loss(y1, p1), rel=1e-9)
    lo, hi = comparison["delta_ci"]
    assert 0 < lo < comparison["delta"] < hi


def test_canary_like_the_baseline_passes(comparisons) -> None:
    store, truth = comparisons
    result = _compare(store, "fraud:v3", "fraud:v1")
    assert result["mode"] == "canary"
    assert result["decision"]["status"] == "pass"
    (y3, p3), (y1, p1) = truth["v3"], truth["v1"]
    comparison = result["comparison"]
    assert comparison["delta"] == pytest.approx(log_loss(y3, p3) - log_loss(y1, p1), rel=1e-9)
    lo, _ = comparison["delta_ci"]
    assert lo < 0.02 * comparison["baseline_log_loss"]


def test_canary_with_too_few_samples_is_inconclusive(comparisons) -> None:
    store, _ = comparisons
    # Above min_samples on neither side: inconclusive, whatever the difference.
    result = _compare(store, "fraud:v2", "fraud:v1", min_samples=10_000)
    assert result["decision"]["status"] == "inconclusive"
    # One event (or none) on a side.
    for candidate in ("fraud:v4", "fraud:v9"):
        result = _compare(store, candidate, "fraud:v1", min_samples=0)
        assert result["decision"]["status"] == "inconclusive"
        assert result["comparison"] is None
    # An empty window.
    result = (
        Monitor(store)
        .compare(
            Scope.named(TENANT, "fraud:v2", "candidate", window="1h", now=NOW - timedelta(days=3)),
            "fraud:v1",
        )
        .to_dict()
    )
    assert result["decision"]["status"] == "inconclusive"


def test_shadow_worse_model_fails_and_identical_model_passes(comparisons) -> None:
    store, truth = comparisons
    y, good, bad = truth["shadow"]
    result = _compare(store, "b", "a")
    assert result["mode"] == "shadow"
    assert result["decision"]["status"] == "fail"
    comparison = result["comparison"]
    assert comparison["kind"] == "paired"
    assert comparison["n_candidate"] == comparison["n_baseline"] == y.size
    assert comparison["candidate_log_loss"] == pytest.approx(log_loss(y, bad), rel=1e-9)
    assert comparison["baseline_log_loss"] == pytest.approx(log_loss(y, good), rel=1e-9)
    assert comparison["delta"] == pytest.approx(log_loss(y, bad) - log_loss(y, good), rel=1e-9)

    same = _compare(store, "a_copy", "a")
    assert same["mode"] == "shadow"
    assert same["decision"]["status"] == "pass"
    assert same["comparison"]["delta"] == pytest.approx(0.0, abs=1e-12)

    # The better model as candidate passes; version-qualified models work too.
    assert _compare(store, "a:v1", "b:v1")["decision"]["status"] == "pass"
    assert _compare(store, "b", "a", min_samples=5000)["decision"]["status"] == "inconclusive"


def test_compare_mode_auto_and_explicit(comparisons) -> None:
    store, _ = comparisons
    assert _compare(store, "fraud:v2", "fraud:v1")["mode"] == "canary"
    assert _compare(store, "b", "a")["mode"] == "shadow"
    # Forced canary between two models: unpaired on their own buckets.
    forced = _compare(store, "b", "a", mode="canary")
    assert forced["mode"] == "canary" and forced["comparison"]["kind"] == "unpaired"
    with pytest.raises(InvalidInputError) as error:
        _compare(store, "b", "a", mode="bogus")
    assert error.value.argument == "mode"
    with pytest.raises(InvalidInputError) as error:
        _compare(store, "fraud:", "fraud:v1")
    assert error.value.argument == "candidate"


# --- 6. drift -----------------------------------------------------------------------------------

DRIFT_END = NOW_MINUTE - timedelta(minutes=3)


@pytest.fixture(scope="module")
def drifting() -> tuple[EventStore, dict[tuple[str, str, int], np.ndarray]]:
    """Models ``d`` (``x`` shifts in the last hour), ``same`` (nothing changes) and ``dv``
    (version ``v2`` has a shifted ``x`` against ``v1``); feature bins learned from the
    first hour. Also returns the raw ``x`` values per (model, version, hour)."""
    rng = np.random.default_rng(3)
    raw: dict[tuple[str, str, int], np.ndarray] = {}
    store = EventStore(":memory:", monitor=MonitorConfig(learn_after=200))
    n = 1200
    colours = np.array(["red", "green", "blue", "black"])

    def hour(model: str, begin: datetime, shift: float, version: str = "v1") -> list[dict]:
        stamps = [
            _stamp(begin + timedelta(milliseconds=int(ms)))
            for ms in np.sort(rng.integers(0, 3_600_000, n))
        ]
        x = rng.normal(shift, 1.0, n)
        raw[(model, version, int(begin == DRIFT_END - timedelta(hours=1)))] = x
        y = rng.normal(0.0, 1.0, n)
        z = rng.lognormal(2.0, 0.5, n)
        colour = rng.choice(colours, n, p=[0.4, 0.3, 0.2, 0.1])
        p = rng.uniform(0.05, 0.95, n)
        return [
            {
                "request_id": f"{model}-{version}-{begin.timestamp():.0f}-{i}",
                "model": model,
                "version": version,
                "timestamp": stamps[i],
                "probabilities": float(p[i]),
                "features": {
                    "x": float(x[i]),
                    "y": float(y[i]),
                    "z": float(z[i]),
                    "colour": str(colour[i]),
                },
            }
            for i in range(n)
        ]

    first = DRIFT_END - timedelta(hours=2)
    second = DRIFT_END - timedelta(hours=1)
    older = hour("d", first, 0.0) + hour("same", first, 0.0) + hour("dv", first, 0.0)
    _write(store, older, [])
    store.update_buckets()
    newer = hour("d", second, 1.0) + hour("same", second, 0.0)
    newer += hour("dv", second, 0.0) + hour("dv", second, 1.5, version="v2")
    labels = [
        {"request_id": e["request_id"], "model": e["model"], "label": int(rng.random() < 0.4)}
        for e in older + newer
    ]
    _write(store, newer, labels)
    store.update_buckets()
    return store, raw


def _by_name(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["feature"]: f for f in report["features"]}


def test_drift_planted_shift_ranks_first(drifting) -> None:
    store, raw = drifting
    report = Monitor(store).drift(Scope(TENANT, "d", window="1h", now=DRIFT_END)).to_dict()
    assert report["reference"]["kind"] == "rolling"
    assert report["reference"]["from"] == _iso(DRIFT_END - timedelta(hours=2))
    assert report["reference"]["to"] == report["from"] == _iso(DRIFT_END - timedelta(hours=1))
    assert report["n_reference"] == report["n_current"] == 1200
    first = report["features"][0]
    assert first["feature"] == "x"
    assert first["verdict"] == "drift"
    assert first["js"] > report["threshold"]
    features = _by_name(report)
    assert set(features) >= {"x", "y", "z", "colour", "__score__", "__label__"}
    for name, result in features.items():
        if name != "x":
            assert result["verdict"] == "stable", (name, result["js"])
            assert result["js"] < first["js"] / 5
    assert features["x"]["n_reference"] == features["x"]["n_current"] == 1200
    # The shares are those of the raw values in the reported bins: "(low, high]" groups of
    # the monitoring bins, then the out-of-bins ones (empty here: every x is a number).
    uppers = [label.rpartition(", ")[2].rstrip("]") for label in first["bins"][:-2]]
    edges = np.array([float(u) for u in uppers[:-1]])
    assert uppers[-1] == "inf" and np.all(np.diff(edges) > 0)
    shares = {}
    for side, hour in (("reference", 0), ("current", 1)):
        values = raw[("d", "v1", hour)]
        counts = np.bincount(np.searchsorted(edges, values, side="left"), minlength=edges.size + 1)
        shares[side] = counts / values.size
        np.testing.assert_allclose(first[f"{side}_share"][:-2], shares[side], atol=1e-12)
        assert first[f"{side}_share"][-2:] == [0.0, 0.0]
    expected_js = float(jensenshannon(shares["reference"], shares["current"]) ** 2)
    assert first["js"] == pytest.approx(expected_js, rel=1e-9)


def test_drift_identical_distributions(drifting) -> None:
    monitor = Monitor(drifting[0])
    few = monitor.drift(
        Scope(TENANT, "same", window="1h", now=DRIFT_END), min_samples=5000
    ).to_dict()
    assert few["features"]
    assert {f["verdict"] for f in few["features"]} == {"insufficient"}
    enough = monitor.drift(
        Scope(TENANT, "same", window="1h", now=DRIFT_END), min_samples=500
    ).to_dict()
    verdicts = {f["feature"]: f["verdict"] for f in enough["features"]}
    assert "drift" not in verdicts.values()
    assert verdicts["x"] == verdicts["y"] == "stable"


def test_drift_against_a_version_reference(drifting) -> None:
    monitor = Monitor(drifting[0])
    report = monitor.drift(
        Scope(TENANT, "dv", version="v2", window="1h", now=DRIFT_END), reference="version:v1"
    ).to_dict()
    assert report["reference"]["kind"] == "version"
    assert report["reference"]["version"] == "v1"
    assert report["n_reference"] == 2400 and report["n_current"] == 1200
    assert report["features"][0]["feature"] == "x"
    assert report["features"][0]["verdict"] == "drift"
    for result in report["features"][1:]:
        assert result["verdict"] != "drift", result["feature"]
    # v1 against itself, rolling: nothing moved.
    same = monitor.drift(Scope(TENANT, "dv", version="v1", window="1h", now=DRIFT_END)).to_dict()
    assert "drift" not in {f["verdict"] for f in same["features"]}


@pytest.mark.parametrize("reference", ["weekly", "version:", "range:2026-01-01", "file:"])
def test_drift_invalid_reference_is_an_error(drifting, reference) -> None:
    with pytest.raises(InvalidInputError) as error:
        Monitor(drifting[0]).drift(
            Scope(TENANT, "d", window="1h", now=DRIFT_END), reference=reference
        ).to_dict()
    assert error.value.argument == "reference"


def test_drift_of_an_unknown_model_is_empty(drifting) -> None:
    report = (
        Monitor(drifting[0]).drift(Scope(TENANT, "nobody", window="1h", now=DRIFT_END)).to_dict()
    )
    assert report["features"] == [] and report["n_current"] == 0
