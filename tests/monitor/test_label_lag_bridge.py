"""The label-lag bridge: a window's expected log loss from its predictions alone (issue 14.10).

Simulated streams with known truths: a labelled reference period, then a
window whose labels mostly have not arrived. The window's true log loss is
computed with scikit-learn from every label the simulation drew (including
those the store never received); the estimate must track it within its
interval when the model's calibration holds (also under covariate shift and
for a model that is miscalibrated in the same way as in the reference), and
must be flagged unreliable when the calibration changed.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from scipy.stats import entropy
from sklearn.metrics import log_loss

from xebench.ingest.events import parse_labels, parse_predictions
from xebench.monitor.windows import Monitor, MonitorSettings, Scope
from xebench.stats.expected_loss import (
    ReliabilityMap,
    estimate_log_loss,
    expected_loss_sums,
    outcome_losses,
)
from xebench.stats.score_calibration import FINE_BINS
from xebench.store.event_store import EventStore

TENANT = "t"
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


# --- the per-prediction losses ----------------------------------------------------------


def test_hit_and_miss_losses_average_to_the_entropy_of_the_prediction() -> None:
    rng = np.random.default_rng(1)
    matrix = rng.dirichlet(np.ones(4), size=200)
    score, hit, miss = outcome_losses(matrix)
    assert np.allclose(score, matrix.max(axis=1))
    assert np.allclose(hit, -np.log(matrix.max(axis=1)))
    assert np.allclose(score * hit + (1 - score) * miss, entropy(matrix, axis=1))
    p = rng.uniform(0.01, 0.99, 200)
    score, hit, miss = outcome_losses(p)
    assert np.allclose(hit, -np.log(p)) and np.allclose(miss, -np.log(1 - p))
    assert np.allclose(p * hit + (1 - p) * miss, entropy(np.stack([p, 1 - p], axis=1), axis=1))


def test_a_certain_prediction_misses_at_the_clipped_loss() -> None:
    score, hit, miss = outcome_losses(np.array([[1.0, 0.0, 0.0]]), eps=1e-6)
    assert score.tolist() == [1.0]
    assert hit[0] == pytest.approx(-np.log1p(-1e-6))
    assert miss[0] == pytest.approx(-np.log(1e-6))


def test_the_interval_covers_the_realized_loss_about_95_percent_of_the_time() -> None:
    """Coverage over 300 replicated windows of a calibrated model (fixed seeds)."""
    rng = np.random.default_rng(7)
    covered = 0
    replications = 300
    for _ in range(replications):
        p = _sigmoid(rng.normal(0, 1.5, 1500))
        y = rng.uniform(size=p.size) < p
        sums = expected_loss_sums(p, None, np.zeros(p.size, dtype=np.intp), 1)
        est = estimate_log_loss(sums, None)
        assert est is not None
        true = log_loss(y, p, labels=[False, True])
        covered += est.ci[0] <= true <= est.ci[1]
    assert 0.91 <= covered / replications <= 0.99


def test_a_reliability_map_corrects_a_consistently_overconfident_model() -> None:
    """Model p = sigmoid(1.3 x), truth sigmoid(x): the entropy is off, the map is right."""
    rng = np.random.default_rng(3)
    x_ref = rng.normal(0, 1, 20_000)
    p_ref, y_ref = _sigmoid(1.3 * x_ref), rng.uniform(size=20_000) < _sigmoid(x_ref)
    fine = np.minimum((p_ref * FINE_BINS).astype(int), FINE_BINS - 1)
    reference = ReliabilityMap.from_fine_bins(
        np.bincount(fine, minlength=FINE_BINS).astype(float),
        np.bincount(fine, weights=p_ref, minlength=FINE_BINS),
        np.bincount(fine, weights=y_ref, minlength=FINE_BINS),
        20_000,
    )
    x = rng.normal(0.8, 1, 5000)  # covariate shift
    p, y = _sigmoid(1.3 * x), rng.uniform(size=5000) < _sigmoid(x)
    sums = expected_loss_sums(p, None, np.zeros(5000, dtype=np.intp), 1)
    est = estimate_log_loss(sums, reference)
    assert est is not None and est.method == "reliability_map"
    true = log_loss(y, p, labels=[False, True])
    assert est.ci[0] <= true <= est.ci[1]
    assert abs(est.calibrated - true) > est.ci[1] - est.ci[0]  # the entropy: far off


def test_weights_weigh_the_estimate() -> None:
    p = np.array([0.9, 0.6])
    w = np.array([3.0, 1.0])
    est = estimate_log_loss(expected_loss_sums(p, w, np.zeros(2, dtype=np.intp), 1), None)
    h = entropy(np.stack([p, 1 - p], axis=1), axis=1)
    assert est is not None and est.value == pytest.approx((3 * h[0] + h[1]) / 4)


# --- windows of a store ---------------------------------------------------------------


def _write_stream(
    store: EventStore,
    *,
    seed: int,
    shift: float,
    scale: float = 1.0,
    offset: float = 0.0,
    labelled: float = 0.1,
    n_ref: int = 6000,
    n_cur: int = 6000,
) -> tuple[np.ndarray, np.ndarray]:
    """A reference day (2-3 days ago, all labelled) and the last 6 hours (a share
    labelled). Model: p = sigmoid(scale * x); truth: sigmoid(x) in the reference and
    sigmoid(x + offset) in the window; the window's x is shifted by ``shift``.
    Returns the window's (p, y), y drawn for every event."""
    rng = np.random.default_rng(seed)
    predictions, labels = [], []

    def add(tag: str, x: np.ndarray, start: datetime, hours: float, truth: float, share: float):
        p = _sigmoid(scale * x)
        y = rng.uniform(size=x.size) < _sigmoid(x + truth)
        seconds = rng.uniform(0, hours * 3600, x.size)
        for i in range(x.size):
            stamp = (start + timedelta(seconds=float(seconds[i]))).isoformat()
            rid = f"{tag}{i}"
            predictions.append(
                {"request_id": rid, "model": "m", "probabilities": float(p[i]), "timestamp": stamp}
            )
            if rng.uniform() < share:
                labels.append({"request_id": rid, "model": "m", "label": int(y[i])})
        return p, y

    add("r", rng.normal(0, 1, n_ref), NOW - timedelta(days=3), 24, 0.0, 1.0)
    p, y = add("c", rng.normal(shift, 1, n_cur), NOW - timedelta(hours=6), 6, offset, labelled)
    for i in range(0, len(predictions), 5000):
        store.insert_predictions(parse_predictions(predictions[i : i + 5000], tenant=TENANT))
    for i in range(0, len(labels), 5000):
        store.insert_labels(parse_labels(labels[i : i + 5000], tenant=TENANT))
    store.update_buckets()
    return p, y


def _window(store: EventStore, **settings: object) -> dict:
    monitor = Monitor(store, MonitorSettings(**settings))  # type: ignore[arg-type]
    return monitor.window(Scope(TENANT, "m", window="6h", now=NOW)).to_dict()


@pytest.mark.parametrize("scale", [1.0, 1.3], ids=["calibrated", "overconfident"])
def test_the_estimate_tracks_the_true_loss_under_covariate_shift(scale: float) -> None:
    with EventStore(":memory:") as store:
        p, y = _write_stream(store, seed=11, shift=1.0, scale=scale, labelled=0.1)
        window = _window(store)
    true = log_loss(y, p, labels=[False, True])
    est = window["log_loss_estimate"]
    assert est["estimate"] is True and est["method"] == "reliability_map"
    assert est["n_predictions"] == 6000 and est["reference_labelled"] == 6000
    assert est["ci"][0] <= true <= est["ci"][1]
    assert est["reliable"] is True, est["reason"]
    assert 0.05 < window["coverage"] < 0.15  # the measured loss covers a tenth of the window
    assert est["calibrated"] == pytest.approx(np.mean(entropy(np.stack([p, 1 - p]), axis=0)))
    if scale != 1.0:  # the map corrects what calibration alone would get wrong
        assert abs(est["value"] - true) < abs(est["calibrated"] - true) / 2


def test_a_calibration_change_is_flagged_unreliable() -> None:
    with EventStore(":memory:") as store:
        p, y = _write_stream(store, seed=12, shift=0.0, offset=1.0, labelled=0.2)
        window = _window(store)
    est = window["log_loss_estimate"]
    true = log_loss(y, p, labels=[False, True])
    assert not est["ci"][0] <= true <= est["ci"][1]  # the estimate is wrong ...
    assert est["reliable"] is False  # ... and says so
    assert est["check"]["p_value"] < 0.01 and est["check"]["n_labelled"] > 500
    assert "disagree" in est["reason"]


def test_without_labels_in_the_window_the_estimate_is_unchecked() -> None:
    with EventStore(":memory:") as store:
        p, y = _write_stream(store, seed=13, shift=0.5, labelled=0.0)
        window = _window(store)
    est = window["log_loss_estimate"]
    assert window["log_loss"] is None and window["n_labelled"] == 0
    assert est["reliable"] is None and "no labelled event" in est["reason"]
    assert est["ci"][0] <= log_loss(y, p, labels=[False, True]) <= est["ci"][1]


def test_too_small_a_reference_falls_back_to_calibration() -> None:
    with EventStore(":memory:") as store:
        p, _ = _write_stream(store, seed=14, shift=0.0, n_ref=100)
        window = _window(store)
        shorter = _window(store, estimate_reference=timedelta(hours=1))
    est = window["log_loss_estimate"]
    assert est["method"] == "calibration" and est["reference_labelled"] == 100
    assert est["value"] == pytest.approx(np.mean(entropy(np.stack([p, 1 - p]), axis=0)))
    assert "assumes the model is calibrated" in est["reason"]
    assert shorter["log_loss_estimate"]["reference_labelled"] == 0


def test_the_estimate_follows_the_base_and_a_series_has_one_per_step() -> None:
    with EventStore(":memory:") as store:
        _write_stream(store, seed=15, shift=0.0, n_ref=3000, n_cur=3000)
        monitor = Monitor(store)
        scope = Scope(TENANT, "m", window="6h", now=NOW)
        nats = monitor.window(scope).to_dict()["log_loss_estimate"]
        bits = monitor.window(scope, base=2).to_dict()["log_loss_estimate"]
        series = monitor.series(scope, step="1h").to_dict()["series"]
    assert bits["value"] == pytest.approx(nats["value"] / np.log(2))
    assert bits["ci"][1] == pytest.approx(nats["ci"][1] / np.log(2))
    parts = [w["log_loss_estimate"] for w in series]
    assert len(parts) == 6 and sum(e["n_predictions"] for e in parts) == 3000
    # Additive sums: the windows' estimates weighted by their predictions give the whole.
    whole = sum(e["value"] * e["n_predictions"] for e in parts) / 3000
    assert whole == pytest.approx(nats["value"])


def test_predictions_folded_before_the_sums_existed_mark_the_estimate_partial() -> None:
    with EventStore(":memory:") as store:
        _write_stream(store, seed=16, shift=0.0, n_ref=2000, n_cur=2000)
        with store.cursor() as cursor:  # as rows folded at schema 8 read after migration 9
            for table in ("bucket_scores", "bucket_scores_hour"):
                cursor.execute(
                    f"UPDATE {table} SET est_n = 0, est_weight = 0, est_var = 0, "
                    "est_hit = [], est_miss = [], est_hit_s = [], est_miss_s = [] "
                    "WHERE bucket >= ? AND bucket < ?",
                    [NOW - timedelta(hours=6), NOW - timedelta(hours=3)],
                )
        est = _window(store)["log_loss_estimate"]
    assert 0 < est["n_predictions"] < 2000
    assert est["reliable"] is False and "folded before" in est["reason"]


def test_a_window_without_predictions_has_no_estimate() -> None:
    with EventStore(":memory:") as store:
        assert _window(store)["log_loss_estimate"] is None


def test_a_calibrated_multiclass_model_under_a_changed_class_mix() -> None:
    rng = np.random.default_rng(21)
    classes = ["a", "b", "c"]
    predictions, labels = [], []
    truth: list[tuple[np.ndarray, int]] = []
    for tag, start, hours, alpha, share in (
        ("r", NOW - timedelta(days=2), 24, [1.0, 1.0, 1.0], 1.0),
        ("c", NOW - timedelta(hours=6), 6, [4.0, 1.0, 0.5], 0.1),  # the mix shifts
    ):
        p = rng.dirichlet(alpha, size=4000)
        y = np.array([rng.choice(3, p=row) for row in p])  # calibrated by construction
        seconds = rng.uniform(0, hours * 3600, 4000)
        for i in range(4000):
            rid = f"{tag}{i}"
            stamp = (start + timedelta(seconds=float(seconds[i]))).isoformat()
            predictions.append(
                {
                    "request_id": rid,
                    "model": "m",
                    "classes": classes,
                    "timestamp": stamp,
                    "probabilities": [float(v) for v in p[i]],
                }
            )
            if rng.uniform() < share:
                labels.append({"request_id": rid, "model": "m", "label": classes[y[i]]})
            if tag == "c":
                truth.append((p[i], int(y[i])))
    with EventStore(":memory:") as store:
        for i in range(0, len(predictions), 5000):
            store.insert_predictions(parse_predictions(predictions[i : i + 5000], tenant=TENANT))
        store.insert_labels(parse_labels(labels, tenant=TENANT))
        store.update_buckets()
        est = _window(store)["log_loss_estimate"]
    p_cur = np.array([row for row, _ in truth])
    y_cur = np.array([label for _, label in truth])
    true = log_loss(y_cur, p_cur, labels=[0, 1, 2])
    assert est["method"] == "reliability_map" and est["reliable"] is True, est["reason"]
    assert est["ci"][0] <= true <= est["ci"][1]
    assert est["calibrated"] == pytest.approx(np.mean(entropy(p_cur, axis=1)), rel=1e-6)
