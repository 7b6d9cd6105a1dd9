"""kill -9 chaos: no acknowledged prediction event is ever lost or stored twice.

Each cycle starts ``xebench serve`` on the same DuckDB file (a restart after
a SIGKILL must succeed: no lock or half-written state left behind), waits for
``/healthz``, and lets several client threads (one keep-alive connection
each) stream uniquely numbered prediction events in batches of 1 to 500
events (log-uniform sizes). A batch's events count as *acknowledged* only
when the server answered HTTP 200. After a random 0.2-2 s the server gets
SIGKILL, mid-stream; the next cycle restarts it and carries on with new ids.
In some cycles (``--resend``, default 0.5 of them) the clients also re-send a
random sample of already-acknowledged events with an identical payload: they
must come back as duplicates (``inserted == 0``), stored once.

At the end, with the server dead, the database is opened read-only and every
stored ``request_id`` is counted. Right after every restart, before any
write, the window over all events (``GET /v1/metrics``, from the bucket
statistics) must count what the table holds (``GET /v1/models``). It
prints acknowledged vs stored vs lost vs duplicated events, the events that
were stored without an acknowledgement (allowed: the commit happened, the
answer died with the process), events refused with 429/503 yet stored (must be 0), and a MET/MISS
line for "0 acknowledged events lost over N kill -9 cycles".

Usage::

    python benchmarks/chaos_kill.py                  # 200 cycles (about 10 minutes)
    python benchmarks/chaos_kill.py --cycles 20 --seed 7 --clients 4
    python benchmarks/chaos_kill.py --db /tmp/chaos.duckdb --keep

``tests/service/test_chaos.py`` runs three cycles of the same code.
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

SERVE = [sys.executable, "-m", "xebench", "serve"]
MODEL = "chaos"
HEADERS = {"Content-Type": "application/json"}
REGIONS = ("eu", "us", "apac", "latam")
DEVICES = ("ios", "android", "web")


class ServerStartError(RuntimeError):
    """``xebench serve`` did not come up (the message holds its log)."""


# --- the server ---------------------------------------------------------------------


def free_port() -> int:
    """A TCP port that was free a moment ago on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _healthy(port: int) -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
    try:
        conn.request("GET", "/healthz")
        return conn.getresponse().status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


class Server:
    """One ``xebench serve`` process on ``db``; started healthy or not at all."""

    def __init__(
        self,
        db: Path,
        log: Path,
        *,
        timeout: float = 60.0,
        attempts: int = 3,
        args: tuple[str, ...] = (),
    ) -> None:
        self.db = db
        self.log = log
        text = ""
        for _ in range(attempts):
            self.port = free_port()
            with log.open("ab") as err:
                err.write(f"--- start on port {self.port}\n".encode())
                err.flush()
                self.process = subprocess.Popen(
                    [*SERVE, "--db", str(db), "--port", str(self.port), "--no-access-log", *args],
                    stdout=subprocess.DEVNULL,
                    stderr=err,
                )
            started = time.monotonic()
            while time.monotonic() - started < timeout:
                if self.process.poll() is not None:
                    break
                if _healthy(self.port):
                    self.startup_seconds = time.monotonic() - started
                    return
                time.sleep(0.02)
            self.kill()
            text = log.read_text(errors="replace")[-3000:]
            if "address already in use" not in text.lower():  # a lost port race: try another
                raise ServerStartError(f"xebench serve did not start on {db}:\n{text}")
        raise ServerStartError(f"no free port after {attempts} attempts:\n{text}")

    @property
    def pid(self) -> int:
        return self.process.pid

    def kill(self, sig: int = signal.SIGKILL) -> int:
        """Send ``sig`` (if still running) and reap the process; its exit code."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(30)


# --- events -------------------------------------------------------------------------


def event_bytes(i: int, day: str) -> bytes:
    """Event number ``i``: the same bytes every time it is built (resends are identical)."""
    ms = (i * 7919) % 86_400_000  # a time within ``day``, so never in the future
    hh, rest = divmod(ms, 3_600_000)
    mm, rest = divmod(rest, 60_000)
    ss, milli = divmod(rest, 1000)
    p = ((i * 2_654_435_761) % 999_983) / 999_983
    return (
        f'{{"request_id":"c{i:010d}","model":"{MODEL}","version":"v{i % 3}",'
        f'"timestamp":"{day}T{hh:02d}:{mm:02d}:{ss:02d}.{milli:03d}Z","probabilities":{p:.6f},'
        f'"cohort":{{"region":"{REGIONS[i % 4]}","device":"{DEVICES[i % 3]}"}},'
        f'"features":{{"amount":{(i % 10_000) / 7:.2f},"country":"c{i % 31}",'
        f'"tenure_days":{i % 3650}}}}}'
    ).encode()


def batch_bytes(ids: list[int] | range, day: str) -> bytes:
    return b"[" + b",".join(event_bytes(i, day) for i in ids) + b"]"


def batch_size(rng: random.Random) -> int:
    """Log-uniform in 1..500: many small batches, some full ones."""
    return min(500, int(math.exp(rng.uniform(0.0, math.log(501)))))


# --- what the clients saw -----------------------------------------------------------


@dataclass
class Ledger:
    """Event ids handed out, and what became of each batch (thread-safe)."""

    day: str = field(
        default_factory=lambda: (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
    )
    next_id: int = 0
    acked: list[tuple[int, int]] = field(default_factory=list)  # (first id, count)
    refused: list[tuple[int, int]] = field(default_factory=list)  # answered 429 / 503
    unanswered: list[tuple[int, int]] = field(default_factory=list)  # no answer: killed
    failed: list[tuple[int, int]] = field(default_factory=list)  # any other status
    statuses: dict[int, int] = field(default_factory=dict)
    samples: dict[int, str] = field(default_factory=dict)  # an answer per unexpected status
    resent_events: int = 0
    resend_problems: list[str] = field(default_factory=list)
    windows_checked: int = 0
    window_problems: list[str] = field(default_factory=list)  # windows stale after a restart
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def allocate(self, n: int) -> int:
        with self.lock:
            first, self.next_id = self.next_id, self.next_id + n
            return first

    def add(self, kind: str, first: int, n: int) -> None:
        with self.lock:
            getattr(self, kind).append((first, n))

    def count(self, status: int) -> None:
        with self.lock:
            self.statuses[status] = self.statuses.get(status, 0) + 1

    def sample_acked(self, rng: random.Random, k: int) -> list[int]:
        """Up to ``k`` distinct already-acknowledged ids."""
        with self.lock:
            ranges = list(self.acked)
        if not ranges:
            return []
        picked: set[int] = set()
        for _ in range(k * 2):
            first, n = rng.choice(ranges)
            picked.add(first + rng.randrange(n))
            if len(picked) >= k:
                break
        return sorted(picked)

    @property
    def acked_events(self) -> int:
        return sum(n for _, n in self.acked)


def _post(conn: http.client.HTTPConnection, body: bytes) -> tuple[int, bytes]:
    conn.request("POST", "/v1/predictions", body, HEADERS)
    response = conn.getresponse()
    return response.status, response.read()


def client(
    port: int, ledger: Ledger, rng: random.Random, stop: threading.Event, resend: bool
) -> None:
    """Send batches until ``stop`` or until the server dies under us."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        while not stop.is_set():
            if resend and ledger.acked and rng.random() < 0.25:
                ids = ledger.sample_acked(rng, batch_size(rng))
                try:
                    status, data = _post(conn, batch_bytes(ids, ledger.day))
                except (OSError, http.client.HTTPException):
                    return  # killed: a resend's ids are acknowledged already
                ledger.count(status)
                if status == 200:
                    answer = json.loads(data)
                    with ledger.lock:
                        ledger.resent_events += len(ids)
                    if answer.get("inserted") != 0 or answer.get("duplicates") != len(ids):
                        ledger.resend_problems.append(f"resent {len(ids)}: {answer}")
                elif status not in (429, 503):
                    ledger.resend_problems.append(f"resent {len(ids)}: {status} {data[:200]!r}")
                continue
            n = batch_size(rng)
            first = ledger.allocate(n)
            try:
                status, data = _post(conn, batch_bytes(range(first, first + n), ledger.day))
            except (OSError, http.client.HTTPException):
                ledger.add("unanswered", first, n)
                return
            ledger.count(status)
            if status == 200:
                ledger.add("acked", first, n)
            elif status in (429, 503):
                ledger.add("refused", first, n)
                time.sleep(0.05)
            else:
                ledger.add("failed", first, n)
                ledger.samples.setdefault(status, data[:500].decode(errors="replace"))
    finally:
        conn.close()


def check_windows(port: int, ledger: Ledger) -> None:
    """Right after a restart, before any write: the window over every chaos event (from
    the bucket statistics) must count what the table holds (``/v1/models``, from the rows).

    A kill -9 between a commit and its fold would show here as a window that
    under-counts until the next write arrives.
    """
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", "/v1/models")
        response = conn.getresponse()
        models = json.loads(response.read()) if response.status == 200 else {}
        rows = sum(m["predictions"] for m in models.get("models", []) if m["model"] == MODEL)
        if not rows:
            return  # the first cycle: nothing stored yet
        conn.request("GET", f"/v1/metrics?model={MODEL}&window=7d")
        response = conn.getresponse()
        body = response.read()
    except (OSError, http.client.HTTPException) as error:
        with ledger.lock:
            ledger.window_problems.append(f"window check failed: {error}")
        return
    finally:
        conn.close()
    with ledger.lock:
        ledger.windows_checked += 1
        if response.status != 200:
            ledger.window_problems.append(f"/v1/metrics {response.status}: {body[:200]!r}")
            return
        n = json.loads(body).get("n_predictions")
        if n != rows:
            ledger.window_problems.append(f"window n_predictions {n} != {rows} stored")


def run_cycle(
    db: Path,
    ledger: Ledger,
    rng: random.Random,
    *,
    clients: int = 4,
    resend: bool = False,
    kill_after: tuple[float, float] = (0.2, 2.0),
    log: Path | None = None,
    server_args: tuple[str, ...] = (),
) -> float:
    """Start the server on ``db`` (with ``server_args``), stream events, SIGKILL it; the
    server's startup seconds.

    Raises :class:`ServerStartError` when the restart fails.
    """
    server = Server(db, log or db.with_suffix(".serve.log"), args=server_args)
    check_windows(server.port, ledger)
    stop = threading.Event()
    threads = [
        threading.Thread(
            target=client,
            args=(server.port, ledger, random.Random(rng.random()), stop, resend),
            daemon=True,
        )
        for _ in range(clients)
    ]
    try:
        for thread in threads:
            thread.start()
        time.sleep(rng.uniform(*kill_after))
    finally:
        server.kill(signal.SIGKILL)
        stop.set()
        for thread in threads:
            thread.join(60)
    return server.startup_seconds


def resend_after_restart(
    db: Path, ledger: Ledger, rng: random.Random, *, k: int = 200, log: Path | None = None
) -> tuple[int, dict[str, int], int]:
    """Restart the server on ``db`` (killed by the last cycle) and re-send ``k`` acknowledged ids.

    The deterministic half of the resend check: the cycles' own resends race
    the kill and may not be answered at all. Waits out 429 / 503 (the store may
    still be recovering), then stops the server gracefully. Returns (status,
    answer, events re-sent); the answer must count every event as a duplicate.
    """
    ids = ledger.sample_acked(rng, k)
    server = Server(db, log or db.with_suffix(".serve.log"))
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        for _ in range(100):
            status, data = _post(conn, batch_bytes(ids, ledger.day))
            if status not in (429, 503):
                break
            time.sleep(0.1)
    finally:
        conn.close()
        server.kill(signal.SIGTERM)
    answer = json.loads(data) if status == 200 else {}
    return status, answer, len(ids)


# --- verification -------------------------------------------------------------------


def _mask(ranges: list[tuple[int, int]], size: int) -> np.ndarray:
    mask = np.zeros(size, dtype=bool)
    for first, n in ranges:
        mask[first : first + n] = True
    return mask


def stored_ids(db: Path) -> np.ndarray:
    """The numeric id of every stored chaos prediction (one entry per stored row)."""
    import duckdb

    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute(
            "SELECT CAST(substr(request_id, 2) AS BIGINT) AS i FROM predictions WHERE model = ?",
            [MODEL],
        ).fetchnumpy()
    return np.asarray(rows["i"], dtype=np.int64)


def verify(db: Path, ledger: Ledger) -> dict[str, int]:
    """Compare what the server acknowledged with what the database holds."""
    ids = stored_ids(db)
    size = max(ledger.next_id, int(ids.max()) + 1 if ids.size else 0)
    counts = np.bincount(ids, minlength=size) if ids.size else np.zeros(size, dtype=np.int64)
    acked = _mask(ledger.acked, size)
    refused = _mask(ledger.refused, size)
    unanswered = _mask(ledger.unanswered, size)
    return {
        "sent": ledger.next_id,
        "acknowledged": int(acked.sum()),
        "stored_rows": int(ids.size),
        "stored_distinct": int((counts > 0).sum()),
        "lost": int((acked & (counts == 0)).sum()),
        "duplicated": int((counts > 1).sum()),
        "unacked_stored": int((~acked & (counts > 0)).sum()),
        "unanswered": int(unanswered.sum()),
        "refused": int(refused.sum()),
        "refused_stored": int((refused & (counts > 0)).sum()),
        "failed": int(_mask(ledger.failed, size).sum()),
        "unknown_stored": int((counts[ledger.next_id :] > 0).sum()),
        "resent": ledger.resent_events,
        "resend_problems": len(ledger.resend_problems),
        "windows_checked": ledger.windows_checked,
        "window_problems": len(ledger.window_problems),
    }


def run_chaos(
    db: Path,
    cycles: int,
    *,
    seed: int = 0,
    clients: int = 4,
    resend_share: float = 0.5,
    log: Path | None = None,
    progress: bool = False,
) -> tuple[dict[str, int], Ledger, list[float]]:
    """``cycles`` kill -9 cycles on ``db``, then :func:`verify`; (result, ledger, startups)."""
    rng = random.Random(seed)
    ledger = Ledger()
    startups: list[float] = []
    for cycle in range(cycles):
        resend = cycle > 0 and rng.random() < resend_share
        startups.append(run_cycle(db, ledger, rng, clients=clients, resend=resend, log=log))
        if progress and (cycle + 1) % 10 == 0:
            print(
                f"  cycle {cycle + 1}/{cycles}: {ledger.acked_events} acknowledged, "
                f"{ledger.next_id} sent",
                flush=True,
            )
    try:
        result = verify(db, ledger)
    except Exception as error:  # cannot read after the kill: recover through the server
        if progress:
            print(f"  read-only open after kill -9 failed ({error}); restarting to recover")
        Server(db, log or db.with_suffix(".serve.log")).kill(signal.SIGTERM)
        result = verify(db, ledger)
    return result, ledger, startups


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=200)
    parser.add_argument("--clients", type=int, default=4, help="concurrent connections")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--resend", type=float, default=0.5, help="share of resend cycles")
    parser.add_argument("--db", type=Path, help="database file (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="xebench-chaos-"))
    db = args.db or tmp / "chaos.duckdb"
    log = tmp / "serve.log"
    started = time.perf_counter()
    try:
        result, ledger, startups = run_chaos(
            db,
            args.cycles,
            seed=args.seed,
            clients=args.clients,
            resend_share=args.resend,
            log=log,
            progress=True,
        )
    except ServerStartError as error:
        print(f"MISS restart after kill -9: {error}")
        return 1
    finally:
        if not args.keep and args.db is None:
            for path in sorted(tmp.iterdir(), reverse=True):
                path.unlink()
            tmp.rmdir()
    seconds = time.perf_counter() - started
    print(f"\nkill -9 chaos: {args.cycles} cycles in {seconds:.0f} s, {args.clients} clients")
    print("\n| cycles | sent | acknowledged | stored | lost | duplicated | unacked stored |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    print(
        f"| {args.cycles} | {result['sent']:,} | {result['acknowledged']:,} | "
        f"{result['stored_rows']:,} | {result['lost']:,} | {result['duplicated']:,} | "
        f"{result['unacked_stored']:,} |"
    )
    statuses = ", ".join(f"{code}: {n:,}" for code, n in sorted(ledger.statuses.items()))
    print(f"\nresponses by status: {statuses}")
    print(
        f"unanswered (in flight at the kill): {result['unanswered']:,} events, of which "
        f"{result['unacked_stored']:,} stored (committed; the answer died with the process)"
    )
    print(
        f"refused with 429/503: {result['refused']:,} events, stored anyway: "
        f"{result['refused_stored']:,}"
    )
    print(
        f"re-sent acknowledged events: {result['resent']:,}, not answered as duplicates: "
        f"{result['resend_problems']}"
    )
    for problem in ledger.resend_problems[:5]:
        print(f"  {problem}")
    print(
        f"windows right after a restart checked against the stored rows: "
        f"{result['windows_checked']}, wrong: {result['window_problems']}"
    )
    for problem in ledger.window_problems[:5]:
        print(f"  {problem}")
    for status, sample in ledger.samples.items():
        print(f"  a {status} answer: {sample}")
    startups.sort()
    print(
        f"server startup after kill -9: median {startups[len(startups) // 2]:.2f} s, "
        f"max {startups[-1]:.2f} s; every restart succeeded"
    )
    print()
    checks = [
        (
            f"0 acknowledged events lost over {args.cycles} kill -9 cycles",
            result["lost"] == 0,
            f"{result['lost']} lost of {result['acknowledged']:,}",
        ),
        ("no event stored twice", result["duplicated"] == 0, f"{result['duplicated']}"),
        (
            "re-sent acknowledged events answered as duplicates",
            result["resend_problems"] == 0,
            f"{result['resend_problems']} problems in {result['resent']:,} re-sent",
        ),
        (
            "windows right after each restart count every stored event",
            result["window_problems"] == 0 and result["windows_checked"] > 0,
            f"{result['window_problems']} wrong of {result['windows_checked']} checked",
        ),
        (
            "only 200 / 429 / 503 answers to fresh batches",
            result["failed"] == 0,
            f"{result['failed']} events answered otherwise",
        ),
        (
            "events refused with 429/503 not stored",
            result["refused_stored"] == 0 and result["unknown_stored"] == 0,
            f"{result['refused_stored']}",
        ),
    ]
    for text, met, value in checks:
        print(f"{'MET ' if met else 'MISS'} {text}: {value}")
    return 0 if all(met for _, met, _ in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
