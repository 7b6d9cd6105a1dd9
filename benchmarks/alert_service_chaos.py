"""kill -9 chaos for alert delivery by a real ``xebench serve``: a flaky webhook receiver
gets every alert after it recovers, at most one duplicate per crash.

The service-level sibling of ``alert_delivery_chaos.py`` (which drives the
alerting package in a child process). Here the whole service runs: its SLO
thread judges the SLOs of its YAML config, the writer thread applies the
evaluation (the alert states and their outbox rows in one transaction), and
the delivery worker sends the outbox to three webhooks.

Setup: a DuckDB event store with bad predictions for models ``m0``..``mN``
(probability 0.9, label 0: log loss 2.3 against an objective of 0.3), from 3
hours back to an hour ahead, so every SLO on them violates its page (1h/5m) and
ticket (6h/30m) burn-rate conditions at any moment of the run.

Each cycle ``k`` rewrites the service config, adding SLO ``s{k}`` on model
``m{k}`` and keeping the earlier ones (``repeat_interval: 30d``, so no repeat
notification blurs the count); in about one cycle in five the oldest SLO is
removed instead of kept (its alerts then resolve: ``resolved`` notifications
behind their ``firing`` ones). It starts ``xebench serve --config`` on a
loopback port, waits for ``/healthz``, and after a random 0-7 s sends it SIGKILL:
before the first evaluation, mid-evaluation, mid-send, between a receiver's 200
and the commit that records it. (The writer applies the SLO thread's first
evaluation at its next "alerts" task, about 5 s after the start, so the window
reaches past the new alerts' commit and first sends.)

The receiver (127.0.0.1, on a port outside the ephemeral range so that no
``xebench serve`` can take it while it is down) changes behaviour in random
phases of 0.2-1.5 s: healthy, down (nothing listens: connection refused),
slow (200 within the sender's 3 s timeout), late (200 after the timeout: the
sender has given up, so it is not an acceptance), 500, 429 with
``Retry-After``, 503 with ``Retry-After``. It records every request by its
``Idempotency-Key``; a request is *accepted* when answered 200 within the
timeout (what a receiver that dedups by the key acts on).

After the last cycle the receiver stays healthy and the service starts once
more, until the outbox has drained (``GET /v1/alerts``: every configured SLO's
alerts firing, every removed one's resolved, nothing pending); then a SIGTERM
and the counts, from the ``alert_outbox`` table and the receiver:

- raised: outbox rows (notifications enqueued, one per alert notice and target);
- delivered: rows whose idempotency key was accepted at least once;
- duplicated: acceptances beyond the first (allowed: at most one per crash, and
  at most one attributable to any one crash: only the request in flight when
  the process died can be re-sent, the worker sending one at a time);
- lost: rows never accepted (must be 0); dead-lettered rows count as lost too;
- out of order: an alert's notification to a target first accepted before an
  earlier one (a ``resolved`` before its ``firing``; must be 0).

Usage::

    python benchmarks/alert_service_chaos.py                # 60 cycles (5-8 minutes)
    python benchmarks/alert_service_chaos.py --quick        # 5 cycles
    python benchmarks/alert_service_chaos.py --cycles 100 --seed 7 --db /tmp/a.duckdb --keep

``tests/alerting/test_alert_service_kill9.py`` runs a few cycles of the same code.

Recorded (60 cycles, seed 1, 2 cores)::

    kill -9 cycles (crashes): 60 (296 s), then a recovery run that drained in 174 s; 473 s in all
    SLOs:               40 configured at the end, 20 removed on the way (their alerts resolve)
    alerts raised:      320 notifications (firing: 240, resolved: 80); 280 raised during
                        the kill -9 cycles, 276 of them accepted before the recovery run
    delivered:          320 (320 recorded as delivered in the store)
    duplicated:         3 (most copies of one: 2; most from one crash: 1)
    lost:               0
    dead-lettered:      0
    out of order:       0
    receiver requests:  653 (error: 167, late: 2, ok: 312, slow: 11, throttle: 106,
                        unavailable: 55); most attempts of one row: 11
    kills mid-request:  3 of 60
    PASS

The recovery run's time is the backoff: a row that failed 11 times waits up to
``min(300 s, 2 ** 10 s)`` (full jitter) before its next attempt, whatever the receiver
does meanwhile; the backoff is not configurable in the service.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from chaos_kill import Server, ServerStartError  # noqa: E402

#: The sender's timeout (``alerting.timeout``); slow answers stay well within it.
TIMEOUT = 3.0
SLOW = (0.1, 0.8)
#: Receiver behaviours and their shares of the phases.
MODES = (
    ("ok", 0.40),
    ("down", 0.14),
    ("slow", 0.12),
    ("late", 0.04),
    ("error", 0.12),
    ("throttle", 0.12),
    ("unavailable", 0.06),
)
PHASE_SECONDS = (0.2, 1.5)
#: Each cycle's config gives its webhooks this header (the cycle's number), so every
#: request received is attributed to the process that sent it, even when the receiver
#: answers it after that process was killed.
CYCLE_HEADER = "X-Chaos-Cycle"
#: The webhooks: (name, path, severities).
WEBHOOKS = (
    ("oncall", "/oncall", ["page"]),
    ("all", "/all", ["page", "ticket"]),
    ("tickets", "/tickets", ["ticket"]),
)
#: Share of cycles that also remove the oldest SLO; at most this many SLOs configured.
REMOVE_SHARE = 0.2
MAX_SLOS = 40
#: How far back and ahead of now the bad events reach (a long run adds more ahead).
HISTORY = timedelta(hours=3)
AHEAD = timedelta(minutes=55)


# --- the receiver ------------------------------------------------------------------------


def quiet_port(rng: random.Random) -> int:
    """A free 127.0.0.1 port below the ephemeral range (no ``bind(0)`` hands it out)."""
    low = 32768
    with contextlib.suppress(OSError, ValueError):
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    for _ in range(200):
        port = rng.randrange(max(1024, low // 2), low)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port below the ephemeral range")


@dataclass
class Receipt:
    """One request the receiver read: its key, path, behaviour, and whether it accepted it."""

    key: str
    path: str
    mode: str
    accepted: bool
    cycle: int  # of the process that sent it (its config's CYCLE_HEADER)
    at: float  # time.monotonic() of the answer


@dataclass
class PhasedReceiver:
    """A webhook receiver on 127.0.0.1 whose behaviour changes in random phases."""

    seed: int
    port: int = 0
    mode: str = "ok"
    receipts: list[Receipt] = field(default_factory=list)
    phases: Counter[str] = field(default_factory=Counter)
    inflight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _server: ThreadingHTTPServer | None = None
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _thread: threading.Thread | None = None

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.port = self.port or quiet_port(self.rng)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                with receiver.lock:
                    receiver.inflight += 1
                try:
                    self._answer()
                finally:
                    with receiver.lock:
                        receiver.inflight -= 1

            def _answer(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                key = self.headers.get("Idempotency-Key") or "?"
                cycle = int(self.headers.get(CYCLE_HEADER) or -1)
                mode = receiver.mode
                if mode == "down":  # caught while going down: no answer at all
                    self._record(key, cycle, mode, False)
                    self.close_connection = True
                    return
                if mode == "slow":
                    time.sleep(random.uniform(*SLOW))
                elif mode == "late":
                    time.sleep(TIMEOUT + 1.0)
                status = {"ok": 200, "slow": 200, "late": 200, "error": 500, "throttle": 429,
                          "unavailable": 503}[mode]  # fmt: skip
                self._record(key, cycle, mode, status == 200 and mode != "late")
                with contextlib.suppress(OSError):  # the sender may have been killed
                    self.send_response(status)
                    if mode in ("throttle", "unavailable"):
                        self.send_header("Retry-After", str(random.choice((1, 2, 3))))
                    self.send_header("Content-Length", "0")
                    self.end_headers()

            def _record(self, key: str, cycle: int, mode: str, accepted: bool) -> None:
                with receiver.lock:
                    receiver.receipts.append(
                        Receipt(key, self.path, mode, accepted, cycle, time.monotonic())
                    )

        return Handler

    def _up(self) -> None:
        if self._server is not None:
            return
        deadline = time.monotonic() + 30
        while True:
            try:
                server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        self._server = server

    def _down(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def _phases(self) -> None:
        names, weights = zip(*MODES, strict=True)
        while not self._stop.is_set():
            mode = self.rng.choices(names, weights)[0]
            self.phases[mode] += 1
            self.mode = mode
            if mode == "down":
                self._down()
            else:
                self._up()
            self._stop.wait(self.rng.uniform(*PHASE_SECONDS))

    def start(self, *, chaos: bool = True) -> PhasedReceiver:
        self._up()
        if chaos:
            self._stop.clear()
            self._thread = threading.Thread(target=self._phases, daemon=True)
            self._thread.start()
        return self

    def heal(self) -> None:
        """End the phases: up and healthy from now on."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None
        self.mode = "ok"
        self._up()

    def stop(self) -> None:
        self.heal()
        self._down()

    def accepted(self) -> Counter[str]:
        with self.lock:
            return Counter(r.key for r in self.receipts if r.accepted)


# --- the store and the config --------------------------------------------------------------


def seed_events(db: Path, models: int, start: datetime, end: datetime) -> int:
    """Bad events (p=0.9, label 0) every 30 s in [start, end) for models m0..m{models-1};
    their labels a second later. Returns the predictions written (re-seeding a span
    writes nothing twice)."""
    from xebench.ingest.events import parse_labels, parse_predictions
    from xebench.ingest.fields import Limits
    from xebench.store import EventBatch, EventStore

    step = timedelta(seconds=30)
    first = int(start.timestamp()) // 30
    last = int(end.timestamp()) // 30
    clock = end + timedelta(minutes=1)  # the far-future check is relative to this
    written = 0
    with EventStore(db) as store:
        for m in range(models):
            preds, labels = [], []
            for i in range(first, last):
                at = datetime.fromtimestamp(i * 30, UTC)
                rid = f"m{m}-{i}"
                preds.append({"request_id": rid, "model": f"m{m}", "probabilities": 0.9,
                              "timestamp": at.isoformat()})  # fmt: skip
                labels.append({"request_id": rid, "label": 0,
                               "timestamp": (at + step / 30).isoformat()})  # fmt: skip
            limits = Limits(max_events=max(len(preds), 1))
            table = parse_predictions(preds, tenant="default", limits=limits, now=clock)
            (outcome,) = store.write([EventBatch("predictions", table)])
            written += outcome.inserted
            table = parse_labels(labels, tenant="default", limits=limits, now=clock)
            store.write([EventBatch("labels", table)])
        store.update_buckets()
    return written


def slo_entry(k: int) -> dict[str, Any]:
    return {
        "name": f"s{k}",
        "model": f"m{k}",
        "sli": "log_loss",
        "objective": 0.3,
        "window": "10m",
        "min_samples": 5,
        "period": "1d",
        "burn_alerts": [
            {"severity": "page", "long": "1h", "short": "5m", "factor": 14.4},
            {"severity": "ticket", "long": "6h", "short": "30m", "factor": 6},
        ],
    }


def write_config(path: Path, slos: list[int], url: str, cycle: int) -> None:
    config = {
        "slos": [slo_entry(k) for k in slos],
        "alerting": {
            "webhooks": [
                {
                    "url": url + where,
                    "name": name,
                    "severities": severities,
                    "headers": {CYCLE_HEADER: str(cycle)},
                }
                for name, where, severities in WEBHOOKS
            ],
            "repeat_interval": "30d",
            "max_age": "1d",
            "timeout": TIMEOUT,
        },
    }
    tmp = path.with_suffix(".tmp")
    tmp.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    tmp.replace(path)


def outbox(db: Path) -> list[dict[str, Any]]:
    """Every ``alert_outbox`` row (id, key, target, kind, idempotency_key, delivered,
    dead, attempts), oldest first; read from the file with the service stopped."""
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    try:
        rows = con.execute(
            "SELECT id, key, target, kind, idempotency_key, delivered_at IS NOT NULL,"
            " dead_at IS NOT NULL, attempts, created_at FROM alert_outbox ORDER BY id"
        ).fetchall()
    finally:
        con.close()
    names = ("id", "key", "target", "kind", "idempotency_key", "delivered", "dead", "attempts",
             "created_at")  # fmt: skip
    return [dict(zip(names, row, strict=True)) for row in rows]


def wait_drained(
    port: int, configured: list[int], removed: list[int], timeout: float
) -> dict[str, Any]:
    """Poll ``GET /v1/alerts`` until every configured SLO's page and ticket fire, no alert
    of a removed SLO is active, and nothing is pending; the last delivery summary."""
    want = {f"s{k}" for k in configured}
    gone = {f"s{k}" for k in removed}
    deadline = time.monotonic() + timeout
    last: dict[str, Any] = {}
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30, trust_env=False) as client:
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError, ValueError):
                body = client.get("/v1/alerts").json()
                last = body.get("delivery") or {}
                firing = Counter(a["slo"] for a in body["alerts"] if a["state"] == "firing")
                active = {a["slo"] for a in body["alerts"]
                          if a["state"] in ("pending", "firing", "suppressed")}  # fmt: skip
                if (
                    all(firing[s] == 2 for s in want)
                    and not active & gone
                    and last.get("pending") == 0
                ):
                    return last
            time.sleep(0.5)
    raise TimeoutError(f"the outbox did not drain within {timeout:.0f} s: {last}")


# --- the run -------------------------------------------------------------------------------


def run_chaos(
    db: Path,
    cycles: int,
    *,
    seed: int = 1,
    kill_after: tuple[float, float] = (0.0, 7.0),
    drain_timeout: float = 420.0,
    log: Path | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """``cycles`` kill -9 cycles of ``xebench serve`` on ``db``, then a recovery run that
    drains the outbox; the counts (see the module docstring)."""
    rng = random.Random(seed)
    log = log or db.with_suffix(".serve.log")
    config = db.with_suffix(".yaml")
    now = datetime.now(UTC)
    covered = now + AHEAD
    seed_events(db, cycles, now - HISTORY, covered)
    receiver = PhasedReceiver(seed).start()
    configured: list[int] = []
    removed: list[int] = []
    startups: list[float] = []
    kills_mid_request = 0
    timeline: list[dict[str, Any]] = []
    started = time.monotonic()
    try:
        for cycle in range(cycles):
            if datetime.now(UTC) > covered - timedelta(minutes=15):  # a long run: more data
                later = datetime.now(UTC) + AHEAD
                seed_events(db, cycles, covered - timedelta(minutes=1), later)
                covered = later
            configured.append(cycle)
            if len(configured) > MAX_SLOS or (len(configured) > 1 and rng.random() < REMOVE_SHARE):
                removed.append(configured.pop(0))
            write_config(config, configured, receiver.url, cycle)
            server = Server(db, log, args=("--config", str(config)))
            delay = rng.uniform(*kill_after)
            try:
                startups.append(server.startup_seconds)
                time.sleep(delay)
            finally:
                inflight = receiver.inflight
                kills_mid_request += inflight > 0
                server.kill(signal.SIGKILL)
            timeline.append({"cycle": cycle, "startup_s": round(server.startup_seconds, 3),
                             "kill_after_s": round(delay, 3), "inflight": inflight,
                             "killed_at": time.monotonic()})  # fmt: skip
            if progress and (cycle + 1) % 10 == 0:
                print(f"  cycle {cycle + 1}/{cycles}: {len(receiver.receipts)} requests "
                      f"received ({time.monotonic() - started:.0f} s)", flush=True)  # fmt: skip
        crash_seconds = time.monotonic() - started
        receiver.heal()
        write_config(config, configured, receiver.url, cycles)
        recovered, recovered_at = time.monotonic(), datetime.now(UTC)
        server = Server(db, log, args=("--config", str(config)))
        try:
            summary = wait_drained(server.port, configured, removed, drain_timeout)
        finally:
            server.kill(signal.SIGTERM)
        drain_seconds = time.monotonic() - recovered
    finally:
        receiver.stop()
    return count(
        outbox(db),
        receiver,
        cycles=cycles,
        configured=configured,
        removed=removed,
        extra={
            "summary": summary,
            "startups": startups,
            "kills_mid_request": kills_mid_request,
            "crash_seconds": crash_seconds,
            "drain_seconds": drain_seconds,
            "recovered_at": recovered_at,
            "timeline": timeline,
        },
    )


def count(
    rows: list[dict[str, Any]],
    receiver: PhasedReceiver,
    *,
    cycles: int,
    configured: list[int],
    removed: list[int],
    extra: dict[str, Any],
) -> dict[str, Any]:
    """The figures of a run from the outbox rows and the receiver's receipts."""
    raised = {r["idempotency_key"]: r for r in rows}
    accepted = receiver.accepted()
    first: dict[str, Receipt] = {}
    by_cycle: Counter[int] = Counter()  # duplicates by the cycle of the first acceptance
    for receipt in receiver.receipts:
        if not receipt.accepted:
            continue
        if receipt.key in first:
            by_cycle[first[receipt.key].cycle] += 1
        else:
            first[receipt.key] = receipt
    out_of_order = 0
    seen: dict[tuple[str, str], float] = {}
    for row in rows:  # oldest first: each (alert, target)'s notices in enqueue order
        got = first.get(row["idempotency_key"])
        pair = (row["key"], row["target"])
        if got is None:
            continue
        if pair in seen and got.at < seen[pair]:
            out_of_order += 1
        seen[pair] = got.at
    lost = sorted(k for k in raised if not accepted.get(k))
    recovery = [c for c in by_cycle if c >= cycles]  # first accepted by the recovery run
    recovered_at = extra.get("recovered_at")
    early = [r for r in rows if recovered_at is not None and r["created_at"] < recovered_at]
    cycle_of = {key: receipt.cycle for key, receipt in first.items()}  # of the 1st acceptance
    return {
        "cycles": cycles,
        "crashes": cycles,
        "slos_configured": len(configured),
        "slos_removed": len(removed),
        "raised": len(raised),
        "kinds": dict(Counter(r["kind"] for r in rows)),
        "raised_while_crashing": len(early),
        "accepted_while_crashing": sum(
            1 for r in early if cycle_of.get(r["idempotency_key"], cycles) < cycles
        ),
        "delivered": sum(1 for k in raised if accepted.get(k)),
        "delivered_in_store": sum(1 for r in rows if r["delivered"]),
        "duplicated": sum(n - 1 for n in accepted.values() if n > 1),
        "most_copies": max(accepted.values(), default=0),
        "most_duplicates_per_crash": max(by_cycle.values(), default=0),
        "duplicates_without_crash": sum(by_cycle[c] for c in recovery),
        "lost": lost,
        "dead": sum(1 for r in rows if r["dead"]),
        "unknown_accepted": sorted(set(accepted) - set(raised)),
        "out_of_order": out_of_order,
        "requests": len(receiver.receipts),
        "requests_by_mode": dict(Counter(r.mode for r in receiver.receipts)),
        "max_attempts": max((r["attempts"] for r in rows), default=0),
        "phases": dict(receiver.phases),
        "receipts": [vars(r) for r in receiver.receipts],
        **extra,
    }


def met(result: dict[str, Any]) -> bool:
    """The contract: nothing lost or dead, at most one duplicate per crash (and per
    any one crash), nothing sent that was not enqueued, every target's order kept."""
    return (
        result["raised"] > 0
        and not result["lost"]
        and result["dead"] == 0
        and result["duplicated"] <= result["crashes"]
        and result["most_duplicates_per_crash"] <= 1
        and result["duplicates_without_crash"] == 0
        and not result["unknown_accepted"]
        and result["out_of_order"] == 0
    )


def report(result: dict[str, Any], seconds: float) -> str:
    startups = sorted(result["startups"]) or [0.0]
    modes = ", ".join(f"{k}: {v}" for k, v in sorted(result["requests_by_mode"].items()))
    kinds = ", ".join(f"{k}: {v}" for k, v in sorted(result["kinds"].items()))
    lines = [
        f"kill -9 cycles (crashes): {result['crashes']} ({result['crash_seconds']:.0f} s), then a "
        f"recovery run that drained in {result['drain_seconds']:.0f} s; {seconds:.0f} s in all",
        f"SLOs:               {result['slos_configured']} configured at the end, "
        f"{result['slos_removed']} removed on the way (their alerts resolve)",
        f"alerts raised:      {result['raised']} notifications (alert_outbox rows; {kinds}); "
        f"{result['raised_while_crashing']} raised during the kill -9 cycles, "
        f"{result['accepted_while_crashing']} of them accepted before the recovery run",
        f"delivered:          {result['delivered']} (distinct idempotency keys accepted; "
        f"{result['delivered_in_store']} recorded as delivered in the store)",
        f"duplicated:         {result['duplicated']} (most copies of one: {result['most_copies']}; "
        f"most from one crash: {result['most_duplicates_per_crash']}; allowed: one per crash)",
        f"lost:               {len(result['lost'])}",
        f"dead-lettered:      {result['dead']}",
        f"out of order:       {result['out_of_order']}",
        f"receiver requests:  {result['requests']} ({modes}); most attempts of one row: "
        f"{result['max_attempts']}",
        f"kills mid-request:  {result['kills_mid_request']} of {result['crashes']}",
        f"server startup:     median {startups[len(startups) // 2]:.2f} s, "
        f"max {startups[-1]:.2f} s",
    ]
    ok = met(result)
    lines.append(
        f"{'PASS' if ok else 'FAIL'}: {len(result['lost'])} alerts lost, {result['duplicated']} "
        f"duplicated (at most one per crash) over {result['crashes']} kill -9 cycles of "
        "xebench serve"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cycles", type=int, default=60, help="kill -9 cycles (default 60)")
    parser.add_argument("--quick", action="store_true", help="5 cycles")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--db", type=Path, help="database file (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args(argv)
    cycles = 5 if args.quick else args.cycles
    tmp = Path(tempfile.mkdtemp(prefix="xebench-alert-chaos-"))
    db = args.db or tmp / "alerts.duckdb"
    started = time.monotonic()
    try:
        result = run_chaos(db, cycles, seed=args.seed, log=tmp / "serve.log", progress=True)
    except (ServerStartError, TimeoutError) as error:
        print(f"FAIL: {error}\nkept: {tmp} (the server log: serve.log)")
        return 1
    print(report(result, time.monotonic() - started))
    ok = met(result)
    if result["lost"]:
        print(f"lost keys: {result['lost'][:10]}")
    if args.keep or not ok:
        trace = {k: result[k] for k in ("timeline", "receipts", "lost", "unknown_accepted")}
        (tmp / "trace.json").write_text(json.dumps(trace, indent=1), encoding="utf-8")
        print(f"kept: {tmp} (trace.json: the cycles and every request received)")
    else:
        shutil.rmtree(tmp)
    return 0 if ok else 1


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        sys.exit(main())
