"""Intervals of a loss stay at or above 0, and are flagged as rough at tiny n."""

from __future__ import annotations

import math

import numpy as np
import pytest

import xebench as xb
from xebench.report.console import markdown_report
from xebench.report.monitor import window_row
from xebench.stats.scores import MIN_RELIABLE_N, ScoreStats


def test_a_two_event_log_loss_interval_is_clipped_at_0() -> None:
    y, p = [1, 0], [0.9, 0.2]
    losses = np.array([-math.log(0.9), -math.log(0.8)])
    mean, sd = losses.mean(), losses.std(ddof=1)
    t = 12.706204736174707  # Student t, 1 degree of freedom, 97.5%
    assert mean - t * sd / math.sqrt(2) < 0  # the raw t interval goes below 0
    result = ScoreStats().update(y, p).result()
    assert result["log_loss_ci"][0] == 0.0
    assert result["log_loss_ci"][1] == pytest.approx(mean + t * sd / math.sqrt(2), rel=1e-9)
    assert result["brier_ci"][0] == 0.0
    assert result["ci_reliable"] is False


def test_intervals_are_reliable_from_min_reliable_n_events() -> None:
    rng = np.random.default_rng(0)
    p = rng.uniform(0.1, 0.9, MIN_RELIABLE_N)
    y = (rng.uniform(size=MIN_RELIABLE_N) < p).astype(int)
    assert ScoreStats().update(y, p).result()["ci_reliable"] is True
    assert ScoreStats().update(y[:-1], p[:-1]).result()["ci_reliable"] is False


def test_bench_marks_a_rough_interval_in_json_and_tables() -> None:
    document = xb.benchmark({"y": [1, 0, 1], "p": [0.9, 0.2, 0.6]}, label="y", probs=["p"])
    model = document.to_dict()["models"][0]
    assert model["ci_reliable"] is False and model["log_loss_ci"][0] >= 0.0
    assert "(rough)" in markdown_report(document.to_dict())


def test_a_monitor_window_of_few_events_shows_a_rough_interval() -> None:
    window = {"n_predictions": 2, "n_labelled": 2, "coverage": 1.0, "n": 2, "log_loss": 0.16,
              "log_loss_ci": [0.0, 0.9], "skill": 0.1, "ece": 0.1, "label_lag_p50_s": 60,
              "provisional": False, "ci_reliable": False}  # fmt: skip
    assert window_row("1h", window)[4] == "0.1600 [0.0000, 0.9000] (rough)"
    assert "(rough)" not in window_row("1h", {**window, "ci_reliable": True})[4]
