"""kill -9 chaos for alert delivery: no raised alert is lost, at most one is duplicated
per crash.

A child process opens a DuckDB event store file and runs the alert lifecycle
(:class:`xebench.alerting.Alerting`) on a simulated minute-by-minute timeline of
six SLOs whose page and ticket conditions come and go, enqueueing firing, repeat
and resolved notifications for two webhooks, and delivers them to a flaky
receiver on 127.0.0.1 (answers 200, 500, 503, 429 with ``Retry-After``, slowly,
or drops the connection without an answer). After a random moment the parent
sends the child SIGKILL -- mid-evaluation, mid-send, mid-commit -- and starts
the next one on the same file, which resumes the timeline where the store says
it stopped. After the last cycle a final child drains the outbox.

The receiver counts the requests it *accepted* (answered 200) per
``Idempotency-Key``. At the end, every notification raised (a row of the
``alert_outbox`` table) must have been accepted at least once (lost: 0) and
the extra acceptances (duplicated) must not exceed the crashes: a request is
only re-sent when the process died between the receiver's answer and the
commit that records it, and the worker sends one request at a time.

Usage::

    python benchmarks/alert_delivery_chaos.py                # 60 cycles (~2 minutes)
    python benchmarks/alert_delivery_chaos.py --cycles 100 --seed 7 --db /tmp/a.duckdb --keep

``tests/alerting/test_alert_kill9.py`` runs a few cycles of the same code.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any

START = datetime(2026, 3, 1, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
N_SLOS = 6
#: Receiver behaviours and their shares.
BEHAVIOURS = (
    ("ok", 0.55),
    ("error", 0.15),
    ("throttle", 0.10),
    ("unavailable", 0.05),
    ("slow", 0.10),
    ("drop", 0.05),
)


# --- the flaky receiver (in the parent) ---------------------------------------------------


class FlakyReceiver:
    """An HTTP receiver on 127.0.0.1 that misbehaves at random; counts what it accepted."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.accepted: Counter[str] = Counter()
        self.requests = 0
        self.lock = threading.Lock()
        self.server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def _behaviour(self) -> str:
        with self.lock:
            self.requests += 1
            draw, total = self.rng.random(), 0.0
            for name, share in BEHAVIOURS:
                total += share
                if draw < total:
                    return name
        return "ok"

    def start(self) -> FlakyReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                key = self.headers.get("Idempotency-Key") or "?"
                behaviour = receiver._behaviour()
                if behaviour == "drop":  # read it, answer nothing
                    self.close_connection = True
                    return
                if behaviour == "slow":
                    time.sleep(receiver.rng.uniform(0.05, 0.3))  # within the sender's timeout
                status = {"ok": 200, "slow": 200, "error": 500, "throttle": 429,
                          "unavailable": 503}[behaviour]  # fmt: skip
                if status == 200:
                    with receiver.lock:
                        receiver.accepted[key] += 1
                with contextlib.suppress(OSError):  # the sender may have been killed
                    self.send_response(status)
                    if behaviour == "throttle":
                        self.send_header("Retry-After", "1")
                    self.send_header("Content-Length", "0")
                    self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


# --- the child: an xebench store process raising and delivering alerts -----------------


def statuses(minute: int) -> list[SimpleNamespace]:
    """The six SLOs at ``minute``: SLO i's page conditions hold in runs of 2 + i
    minutes, its ticket condition in runs of 5 + i."""
    from xebench.analysis.slo import DEFAULT_BURN_ALERTS, SLO, BurnCondition

    out = []
    for i in range(N_SLOS):
        slo = SLO(f"slo-{i}", model=f"model-{i % 2}", sli="log_loss", objective=0.3)
        page = ((minute + i) // (2 + i)) % 2 == 0
        ticket = (minute // (5 + i)) % 2 == 0
        conditions = [
            BurnCondition(a, page if a.severity == "page" else ticket, 20.0, 30.0)
            for a in DEFAULT_BURN_ALERTS
        ]
        out.append(SimpleNamespace(slo=slo, conditions=conditions, evidence={"minute": minute}))
    return out


def _settings(url: str) -> Any:
    from xebench.alerting import AlertingSettings

    return AlertingSettings.from_mapping(
        {
            "webhooks": [
                {"url": f"{url}/all", "name": "all"},
                {"url": f"{url}/pages", "name": "pages", "severities": ["page"]},
            ],
            "repeat_interval": "5m",
            "max_age": "3650d",  # nothing may be dead-lettered: every alert must arrive
            "timeout": 2,
        }
    )


def child(db: Path, url: str, seed: int, drain: bool) -> int:
    """Run the timeline from where the store stopped (or only drain the outbox)."""
    from xebench.alerting import Alerting
    from xebench.store import EventStore

    store = EventStore(db)
    alerting = Alerting(store, _settings(url), rng=random.Random(seed))
    alerting.worker.backoff_base, alerting.worker.backoff_cap = 0.01, 0.2
    with store.cursor() as cursor:
        (latest,) = cursor.execute("SELECT max(evaluated_at) FROM alerts").fetchone()
    minute = 0 if latest is None else int((latest - START) / MINUTE) + 1
    print("ready", flush=True)
    if drain:
        now = START + (minute + 1) * MINUTE
        deadline = time.monotonic() + 120
        while alerting.outbox_summary()["pending"] and time.monotonic() < deadline:
            alerting.deliver_due(now)
            now += timedelta(seconds=2)  # past any Retry-After (1 s) and backoff (0.2 s)
        summary = alerting.outbox_summary()
        print(json.dumps(summary), flush=True)
        store.close()
        return 0 if summary["pending"] == 0 else 1
    while True:  # until killed
        at = START + minute * MINUTE
        alerting.evaluate(statuses(minute), at)
        for step in range(4):
            alerting.deliver_due(at + step * timedelta(seconds=15))
        minute += 1


# --- the parent ------------------------------------------------------------------------


def _spawn(db: Path, url: str, seed: int, log: Any, *, drain: bool = False) -> subprocess.Popen:
    command = [sys.executable, str(Path(__file__).resolve()), "--child", "--db", str(db),
               "--url", url, "--seed", str(seed)] + (["--drain"] if drain else [])  # fmt: skip
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log, text=True)


def _wait_ready(process: subprocess.Popen, timeout: float = 60.0) -> threading.Thread:
    """Wait for the child's "ready" line (its store is open); the thread that read it."""
    stdout = process.stdout
    assert stdout is not None
    ready = threading.Event()
    reader = threading.Thread(
        target=lambda: stdout.readline() == "ready\n" and ready.set(), daemon=True
    )
    reader.start()
    if not ready.wait(timeout):
        process.kill()
        raise RuntimeError(f"the child did not start (exit {process.poll()})")
    return reader


def outbox_keys(db: Path) -> dict[str, Any]:
    """The outbox's idempotency keys and delivery state, read from the file."""
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    try:
        rows = con.execute(
            "SELECT idempotency_key, delivered_at IS NOT NULL, dead_at IS NOT NULL,"
            " superseded_by IS NOT NULL FROM alert_outbox"
        ).fetchall()
    finally:
        con.close()
    return {
        "keys": [r[0] for r in rows],
        "delivered": sum(1 for r in rows if r[1]),
        "dead": sum(1 for r in rows if r[2]),
        "superseded": sum(1 for r in rows if r[3]),
    }


def run_chaos(
    db: Path,
    cycles: int,
    *,
    seed: int = 1,
    kill_after: tuple[float, float] = (0.05, 1.5),
    log: Path | None = None,
) -> dict[str, Any]:
    """``cycles`` kill -9 cycles, then a drain; the counts (see the module docstring)."""
    rng = random.Random(seed)
    receiver = FlakyReceiver(seed).start()
    sink = log.open("a") if log is not None else subprocess.DEVNULL
    try:
        for cycle in range(cycles):
            process = _spawn(db, receiver.url, seed * 1000 + cycle, sink)
            reader = None
            try:
                reader = _wait_ready(process)
                time.sleep(rng.uniform(*kill_after))  # mid-evaluation, mid-send, mid-commit
            finally:
                process.send_signal(signal.SIGKILL)
                process.wait(30)
                if reader is not None:
                    reader.join(10)
                if process.stdout is not None:
                    process.stdout.close()
        drain = _spawn(db, receiver.url, seed * 1000 + cycles, sink, drain=True)
        out, _ = drain.communicate(timeout=300)
        if drain.returncode != 0:
            raise RuntimeError(f"the drain failed (exit {drain.returncode}): {out[-2000:]}")
    finally:
        receiver.stop()
        if log is not None:
            sink.close()  # type: ignore[union-attr]
    stored = outbox_keys(db)
    raised = set(stored["keys"])
    accepted = receiver.accepted
    duplicates = {k: n - 1 for k, n in accepted.items() if n > 1}
    return {
        "cycles": cycles,
        "raised": len(raised),
        "delivered": sum(1 for k in raised if accepted.get(k)),
        "duplicated": sum(duplicates.values()),
        "most_copies": max(accepted.values(), default=0),
        "lost": sorted(raised - set(accepted)),
        "unknown_accepted": sorted(set(accepted) - raised),
        "dead": stored["dead"],
        "superseded": stored["superseded"],
        "requests": receiver.requests,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cycles", type=int, default=60)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--db", type=Path)
    parser.add_argument("--keep", action="store_true", help="keep the database file")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--drain", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(args.db, args.url, args.seed, args.drain)
    with tempfile.TemporaryDirectory() as tmp:
        db = args.db or Path(tmp) / "alerts.duckdb"
        started = time.monotonic()
        result = run_chaos(db, args.cycles, seed=args.seed, log=Path(tmp) / "child.log")
        seconds = time.monotonic() - started
        if args.keep and args.db is None:
            kept = Path(tempfile.gettempdir()) / "alert-chaos.duckdb"
            kept.write_bytes(db.read_bytes())
            print(f"database kept at {kept}")
    lost = result["lost"]
    print(f"kill -9 cycles:      {result['cycles']} ({seconds:.0f} s)")
    print(f"alerts raised:       {result['raised']} notifications (outbox rows)")
    print(f"delivered:           {result['delivered']}")
    print(f"duplicated:          {result['duplicated']} (most copies of one: "
          f"{result['most_copies']}; allowed: at most one per crash)")  # fmt: skip
    print(f"lost:                {len(lost)}")
    print(f"receiver requests:   {result['requests']} (retries of 500 / 503 / 429 / drops)")
    print(f"dead-lettered:       {result['dead']}")
    ok = not lost and result["duplicated"] <= result["cycles"] and not result["unknown_accepted"]
    print(
        f"{'MET' if ok else 'MISS'}: 0 alerts lost and at most one duplicate per crash over "
        f"{result['cycles']} kill -9 cycles"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        sys.exit(main())
