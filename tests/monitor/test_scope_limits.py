"""Query ranges at the datetime limits: bounded, named, never an overflow (issue 13)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from xebench.errors import InvalidInputError
from xebench.monitor.scope import EARLIEST, LATEST, MAX_DURATION, Scope, parse_duration, parse_time

NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize("text", ["99999999d", "999999999999d", "84007d", "1e300s", "inf"])
def test_durations_beyond_the_range_are_refused(text: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        parse_duration(text if text != "inf" else float("inf"), "step")
    assert caught.value.argument == "step"


def test_the_longest_duration_is_the_whole_range() -> None:
    assert parse_duration(f"{MAX_DURATION.days}d") == MAX_DURATION
    assert MAX_DURATION == LATEST - EARLIEST


@pytest.mark.parametrize(
    "text",
    [
        "0001-01-01T00:00:00+01:00",
        "9999-12-31T23:59:59-01:00",
        "1969-12-31T23:59:59Z",
        "2200-01-01T00:00:00Z",
    ],
)
def test_times_outside_the_range_are_refused_by_name(text: str) -> None:
    with pytest.raises(InvalidInputError, match="1970-01-01T00:00:00Z") as caught:
        parse_time(text, "to")
    assert caught.value.argument == "to"


def test_a_window_reaching_before_the_epoch_names_window() -> None:
    scope = Scope("t", "m", window="60000d", now=NOW)
    with pytest.raises(InvalidInputError, match="reaches before 1970") as caught:
        scope.span()
    assert caught.value.argument == "window"
    early = Scope("t", "m", window=f"{(NOW - EARLIEST).days - 1}d", now=NOW).span()
    assert early.start >= EARLIEST
