"""kill -9 of a real ``xebench serve`` raising and delivering alerts: a webhook receiver that
is down, slow, or answers 500 / 429 / 503 with ``Retry-After`` in random phases gets every
alert after it recovers, with at most one duplicate per crash (counted by Idempotency-Key).

Runs four cycles of ``benchmarks/alert_service_chaos.py`` (loaded from its path): each
adds an SLO to the service's config (one cycle also removes the oldest, whose alerts
then resolve), starts the service, SIGKILLs it 0-7 s after ``/healthz`` answers; then
a recovery run with a healthy receiver drains the outbox. The benchmark runs the same
code for 60 cycles.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from benchmark_modules import load_benchmark


@pytest.fixture(scope="module")
def chaos() -> Iterator[ModuleType]:
    yield from load_benchmark("alert_service_chaos.py", "xebench_alert_service_chaos")


@pytest.mark.slow
def test_kill_9_of_the_service_loses_no_alert_and_duplicates_at_most_one_per_crash(
    chaos: ModuleType, tmp_path: Path
) -> None:
    log = tmp_path / "serve.log"
    # Seed 2: kills 6.7, 0.4, 5.8 and 4.7 s after /healthz, the oldest SLO removed in
    # the third cycle (the first alerts are applied about 5 s after the start).
    result = chaos.run_chaos(tmp_path / "alerts.duckdb", 4, seed=2, log=log)
    tail = log.read_text(errors="replace")[-2000:]
    figures = {k: v for k, v in result.items() if k not in ("receipts", "timeline")}
    # At least the 3 SLOs configured at the end: page and ticket, 2 webhooks each.
    assert result["raised"] >= 3 * 4, (figures, tail)
    assert result["lost"] == [], (figures, tail)
    assert result["dead"] == 0, figures
    assert result["delivered"] == result["raised"] == result["delivered_in_store"], figures
    assert result["duplicated"] <= result["crashes"], figures
    assert result["most_duplicates_per_crash"] <= 1, figures
    assert result["duplicates_without_crash"] == 0, figures
    assert result["unknown_accepted"] == [], figures  # nothing sent that was not enqueued
    assert result["out_of_order"] == 0, figures  # no resolve before its firing
    assert chaos.met(result), figures
