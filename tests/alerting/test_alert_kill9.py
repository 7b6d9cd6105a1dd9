"""kill -9 durability of alert delivery: a real xebench store process raising alerts and
delivering them to a flaky receiver is SIGKILLed at random points and restarted; every
alert arrives, with at most one duplicate per crash (counted by Idempotency-Key).

Runs a few cycles of ``benchmarks/alert_delivery_chaos.py`` (loaded from its path),
which runs the same code for 60 cycles or more.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from benchmark_modules import load_benchmark


@pytest.fixture(scope="module")
def chaos() -> Iterator[ModuleType]:
    yield from load_benchmark("alert_delivery_chaos.py", "xebench_alert_delivery_chaos")


@pytest.mark.slow
def test_kill_9_loses_no_alert_and_duplicates_at_most_one_per_crash(
    chaos: ModuleType, tmp_path: Path
) -> None:
    log = tmp_path / "child.log"
    result = chaos.run_chaos(tmp_path / "alerts.duckdb", 3, seed=11, log=log)
    tail = log.read_text(errors="replace")[-2000:]
    assert result["raised"] > 0, (result, tail)
    assert result["lost"] == [], (result, tail)
    assert result["delivered"] == result["raised"]
    assert result["duplicated"] <= result["cycles"], result
    assert result["unknown_accepted"] == [], result  # nothing sent that was not committed
    assert result["dead"] == 0, result
    # The receiver misbehaved: the retries were needed.
    assert result["requests"] > result["raised"], result
