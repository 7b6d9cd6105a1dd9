"""Verdicts, budgets, burn rates and the multi-window conditions, worked by hand."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest

from xebench.analysis.slo import (
    BAD,
    EXCLUDED,
    GOOD,
    SLO,
    BurnAlert,
    budget_remaining,
    burn_conditions,
    burn_rates,
    duration_label,
    error_ratio,
    judge,
    label_span,
)

LL = SLO("ll", model="m", sli="log_loss", objective=0.3, min_samples=10, target=0.99)


def verdicts(*runs: tuple[int, int]) -> np.ndarray:
    """Concatenated runs of (verdict, minutes), oldest first."""
    return np.concatenate([np.full(n, v, dtype=np.int8) for v, n in runs])


def test_judge_follows_the_registry_direction_and_excludes_thin_minutes() -> None:
    values = np.array([0.3, 0.31, 0.1, np.nan, 0.9])
    samples = np.array([10, 10, 9, 100, 10])
    assert judge(values, samples, LL).tolist() == [GOOD, BAD, EXCLUDED, EXCLUDED, BAD]
    coverage = SLO("c", model="m", sli="label_coverage", objective=0.8, min_samples=1)
    assert judge(np.array([0.8, 0.79]), np.array([5, 5]), coverage).tolist() == [GOOD, BAD]


def test_excluded_minutes_spend_no_budget() -> None:
    # 990 good, 10 bad, 5000 excluded: error ratio 1%, exactly the 99% target's budget.
    v = verdicts((GOOD, 990), (BAD, 10), (EXCLUDED, 5000))
    assert error_ratio(v) == pytest.approx(0.01)
    assert budget_remaining(v, 0.99) == pytest.approx(0.0, abs=1e-12)
    assert error_ratio(verdicts((EXCLUDED, 60))) is None
    assert budget_remaining(verdicts((EXCLUDED, 60)), 0.99) is None


def test_burn_rates_over_trailing_windows() -> None:
    # The last 5 minutes bad, the 55 before good: 5m burns 100x, 1h 5/60/0.01 = 8.33x.
    v = verdicts((GOOD, 55), (BAD, 5))
    rates = burn_rates(v, 0.99, ("5m", "30m", "1h"))
    assert rates["5m"] == pytest.approx(100.0)
    assert rates["30m"] == pytest.approx(5 / 30 / 0.01)
    assert rates["1h"] == pytest.approx(5 / 60 / 0.01)


def test_page_needs_both_windows() -> None:
    # 1h at 14.4x needs > 8.64 bad minutes of 60. 9 bad minutes, 5 of them in the last 5:
    # 1h: 15x, 5m: 100x -> pages.
    v = verdicts((GOOD, 1020), (BAD, 4), (GOOD, 31), (BAD, 5))
    first = burn_conditions(v, LL)[0]
    assert first.alert.name == "page-1h-5m"
    assert first.long_rate == pytest.approx(9 / 60 / 0.01)
    assert first.active
    # Recovery: 5 good minutes make the short window clean, the page resets at once
    # although the hour still burns fast.
    recovered = burn_conditions(np.concatenate([v, verdicts((GOOD, 5))]), LL)[0]
    assert recovered.long_rate > 14.4 and recovered.short_rate == 0.0
    assert not recovered.active


def test_a_slow_burn_opens_a_ticket_not_a_page() -> None:
    # 2% bad minutes evenly spread over 3 days: burns 2x the budget everywhere.
    day = np.tile(verdicts((GOOD, 49), (BAD, 1)), 3 * 1440 // 50 + 1)[-3 * 1440 :]
    states = {c.alert.name: c.active for c in burn_conditions(day, LL)}
    assert states == {"page-1h-5m": False, "page-6h-30m": False, "ticket-3d-6h": True}


def test_custom_burn_alerts_and_labels() -> None:
    slo = SLO(
        "x", model="m", sli="brier", objective=0.2,
        burn_alerts=(BurnAlert("page", timedelta(minutes=10), timedelta(minutes=2), 2.0),),
    )  # fmt: skip
    v = verdicts((GOOD, 7), (BAD, 3))
    (condition,) = burn_conditions(v, slo)
    assert condition.alert.name == "page-10m-2m" and condition.active
    assert duration_label(timedelta(hours=36)) == "36h"
    assert label_span("6h") == timedelta(hours=6)
    with pytest.raises(ValueError, match="duration label"):
        label_span("6x")
