"""Rolled per-minute point values equal ScoreStats.result over the same window's events."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from sklearn.metrics import brier_score_loss, log_loss

from xebench.stats.codec import encode, score_arrays
from xebench.stats.rolling import rolling_points, rolling_sum
from xebench.stats.scores import ScoreStats


def test_rolling_sum_matches_a_loop() -> None:
    values = np.random.default_rng(1).random((20, 3))
    rolled = rolling_sum(values, 4)
    expected = np.array([values[j : j + 4].sum(axis=0) for j in range(17)])
    np.testing.assert_allclose(rolled, expected, rtol=1e-12)


@pytest.mark.parametrize("window", [1, 3, 7])
def test_every_window_equals_scorestats_of_its_events(window: int) -> None:
    rng = np.random.default_rng(window)
    n_minutes = 12
    events = []  # per minute: (labels, probabilities, weights)
    for m in range(n_minutes):
        size = int(rng.integers(0, 6)) if m != 4 else 0  # an empty minute
        p = rng.random(size)
        events.append(((rng.random(size) < p).astype(int), p, rng.uniform(0.5, 2.0, size)))
    stats = [ScoreStats().update(y, p, w) for y, p, w in events]
    rows = pa.table(
        {
            **score_arrays(encode(stats), n_minutes, [2] * n_minutes),
            "n_predictions": [len(e[0]) + 1 for e in events],  # one unlabelled each
            "n_labelled": [len(e[0]) for e in events],
        }
    )
    points = rolling_points(
        rows, np.arange(n_minutes), n_minutes=n_minutes, window=window, n_classes=2
    )
    for j in range(n_minutes - window + 1):
        part = events[j : j + window]
        y = np.concatenate([e[0] for e in part])
        p = np.concatenate([e[1] for e in part])
        w = np.concatenate([e[2] for e in part])
        assert points["n"][j] == len(y)
        assert points["coverage"][j] == pytest.approx(len(y) / (len(y) + window))
        if len(y) == 0:
            assert np.isnan(points["log_loss"][j])
            continue
        expected = ScoreStats().update(y, p, w).result()
        assert points["log_loss"][j] == pytest.approx(expected["log_loss"], rel=1e-9)
        # Independent oracle: scikit-learn on the raw events.
        assert points["log_loss"][j] == pytest.approx(
            log_loss(y, p, sample_weight=w, labels=[0, 1]), rel=1e-9
        )
        assert points["brier"][j] == pytest.approx(expected["brier"], rel=1e-9)
        assert points["brier"][j] == pytest.approx(
            brier_score_loss(y, p, sample_weight=w), rel=1e-9
        )
        assert points["ece"][j] == pytest.approx(expected["ece"], abs=1e-12)
        if expected["skill"] is None:
            assert np.isnan(points["skill"][j])
        else:
            assert points["skill"][j] == pytest.approx(expected["skill"], rel=1e-9, abs=1e-12)


def test_multiclass_rows() -> None:
    classes = ["a", "b", "c"]
    rng = np.random.default_rng(5)
    stats = []
    raw = []
    for _ in range(4):
        p = rng.dirichlet([1, 1, 1], size=5)
        y = rng.choice(classes, size=5)
        stats.append(ScoreStats(classes).update(y, p))
        raw.append((y, p))
    rows = pa.table(
        {**score_arrays(encode(stats), 4, [3] * 4), "n_predictions": [5] * 4, "n_labelled": [5] * 4}
    )
    points = rolling_points(rows, np.arange(4), n_minutes=4, window=2, n_classes=3)
    for j in range(3):
        y = np.concatenate([raw[j][0], raw[j + 1][0]])
        p = np.concatenate([raw[j][1], raw[j + 1][1]])
        expected = ScoreStats(classes).update(y, p).result()
        assert points["log_loss"][j] == pytest.approx(log_loss(y, p, labels=classes), rel=1e-9)
        assert points["ece"][j] == pytest.approx(expected["ece"], abs=1e-12)
        assert points["skill"][j] == pytest.approx(expected["skill"], rel=1e-9)
