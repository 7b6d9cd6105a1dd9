"""kill -9 of a real ``xebench serve`` mid-stream loses no acknowledged event.

Three cycles of ``benchmarks/chaos_kill.py`` (loaded from its path): start the
server on one DuckDB file, stream numbered prediction batches from four
connections, SIGKILL the server after 0.2-2 s, restart it on the same file;
the second and third cycles also re-send acknowledged events, which must
come back as duplicates when they are answered at all (they race the kill).
Then every acknowledged request id must be stored exactly once; and a final
restart re-sends acknowledged events deterministically, which must all be
duplicates. The benchmark runs the same cycles 200 times.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from benchmark_modules import load_benchmark


@pytest.fixture(scope="module")
def chaos() -> Iterator[ModuleType]:
    yield from load_benchmark("chaos_kill.py", "xebench_chaos_kill")


@pytest.mark.slow
def test_three_kill_9_cycles_lose_no_acknowledged_event(chaos: ModuleType, tmp_path: Path):
    db, log_path = tmp_path / "chaos.duckdb", tmp_path / "serve.log"
    result, ledger, startups = chaos.run_chaos(
        db, 3, seed=1234, clients=4, resend_share=1.0, log=log_path
    )
    log = log_path.read_text(errors="replace")[-2000:]
    assert len(startups) == 3, log  # every restart on the killed database came up
    assert result["acknowledged"] > 0, (result, ledger.statuses, log)
    assert result["lost"] == 0, result
    assert result["duplicated"] == 0, result
    assert result["stored_distinct"] == result["acknowledged"] + result["unacked_stored"]
    assert result["refused_stored"] == 0 and result["unknown_stored"] == 0, result
    assert result["failed"] == 0, (ledger.statuses, ledger.samples, log)
    # Resends that raced the kills: whichever were answered came back as duplicates. How many
    # were answered is up to the timing of the kills, so none is also a correct run.
    assert ledger.resend_problems == [], ledger.resend_problems[:3]
    # Right after each restart (before any write) the window counts every stored event.
    assert result["windows_checked"] >= 1, result
    assert ledger.window_problems == [], ledger.window_problems[:3]

    # Idempotency across a kill -9, forced: restart once more and re-send acknowledged events.
    status, answer, n = chaos.resend_after_restart(db, ledger, random.Random(7), log=log_path)
    assert n > 0 and status == 200, (status, log_path.read_text(errors="replace")[-2000:])
    assert (answer["inserted"], answer["duplicates"]) == (0, n), answer
    again = chaos.verify(db, ledger)
    assert again["lost"] == 0 and again["duplicated"] == 0, again
    assert again["stored_distinct"] == result["stored_distinct"], (again, result)
