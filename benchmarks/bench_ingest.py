"""HTTP ingestion: sustained events/s, latency, memory and storage of ``xebench serve``.

Each scenario starts a real server (``python -m xebench serve --no-access-log``)
on a fresh temporary DuckDB file and drives it from a *separate* load
generator process over loopback. The generator is open-loop: request ``i`` is
due at ``start + i / rate`` and is sent then whether or not earlier requests
have finished, on one of many keep-alive connections (a request waits for a
connection only when all of them are busy), and its latency is measured from
the time it was *due*, so a slow server cannot hide its backlog
(no coordinated omission). The generator is a lean HTTP/1.1 client on raw
asyncio streams (uvloop when installed) with request bodies serialised before
the run (unique ``request_id`` per event; model, version, a ``Z`` timestamp,
a binary probability, cohort ``{region, device}`` and three features); past
``--prebuild-mb`` of bodies, the rest are built just before they are sent.

Scenarios (``--quick``: 5 s each with a 3 s drain; all of them take about 6 minutes):

1. ``batch``: batches of 500 events at 50,000 events/s (100 req/s) for 60 s;
2. ``single``: one event per request at 2,000 req/s for 30 s;
3. ``overload``: batches of 500 at 3x the batch rate (150,000 events/s) for
   30 s from 1,024 connections (``--overload-connections``): only 200 /
   429 / 503 may come back, every 429 / 503 with ``Retry-After`` and within
   1 s; the server must stay alive with bounded memory;
4. ``formats``: batches of 500 and of 5,000, as a JSON array and as NDJSON,
   plain and gzip (8 scenarios) at ``--target-rate`` (100,000 events/s) for
   20 s each;
5. ``capacity``: the same 8 formats offered at 250,000 events/s for 10 s, to
   ``xebench serve`` and to a minimal FastAPI endpoint that only parses the
   JSON (``benchmarks/_minimal_app.py``): what each sustains is its capacity;
6. ``large``: bodies of 10,000 events of ~1.3 KB (13 MB) at 3 per second from
   16 connections for 15 s: the server's resident memory (RSS) and its answers;
7. ``floor``: no server -- the same events, already Arrow tables, inserted
   straight into DuckDB in this process (a commit per 20,000 events);
8. ``soak`` (``--soak 300``): scenario 1 for 5 minutes, server RSS every 5 s.

The capacity table then gives, per format, the service's capacity divided by
the minimal endpoint's and by the floor's: how close to the floor the service is.

Per scenario it prints offered and sustained events/s (events answered 200,
over the schedule or until the last 200 if later; the targets allow 1% for
the tail of the last answers), latency p50 / p99 / max from the due time,
answers by status, transport errors, server RSS at start / peak / end
(``/proc/PID/status`` VmRSS; with validation workers, the Pss of the server and
its workers summed), server and generator CPU, and the database's bytes per
million events (after a graceful stop). It then opens the database read-only
(server stopped) and checks that the stored rows are exactly the acknowledged
events (plus, listed apart, requests committed but unanswered when the drain
ended), and prints MET / MISS lines for the targets: >= 50,000 events/s
sustained in batches of 500 with p99 < 250 ms (scenario 1); >= 100,000
events/s with p99 < 250 ms in every format (scenario 4); >= 2,000
single-event requests/s with p99 < 50 ms; RSS < 500 MB; under overload and
large bodies only 200 / 429 / 503, with Retry-After, refusals within 1 s
(p99) and the server alive.

``--profile DIR`` additionally records each scenario's server with py-spy
(``pip install py-spy``; raw stacks in ``DIR/<scenario>.txt``) and prints where
the server's samples go: validation, JSON, Arrow, the DuckDB insert and
commit, uvicorn / Starlette. Profiling costs CPU: take throughput numbers from
a run without it. ``--profile-gil`` samples only the thread holding the GIL: where the
serialised Python time goes (the rest of a thread's busy time then waits or runs in C).

Usage::

    python benchmarks/bench_ingest.py                     # scenarios 1-7, about 20 minutes
    python benchmarks/bench_ingest.py --quick             # the same, 5 s each
    python benchmarks/bench_ingest.py --soak 300          # scenarios 1-7, then the soak
    python benchmarks/bench_ingest.py --scenarios capacity floor   # the ratios only
    python benchmarks/bench_ingest.py --scenarios soak --soak 300
    python benchmarks/bench_ingest.py --scenarios batch --rate 80000 --profile /tmp/prof
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import random
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter, deque
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

SERVE = [sys.executable, "-m", "xebench", "serve", "--no-access-log", "--log-level", "warning"]
MINIMAL = [
    sys.executable, "-m", "uvicorn", "_minimal_app:app", "--no-access-log",
    "--log-level", "warning", "--loop", "uvloop", "--http", "httptools",
]  # fmt: skip
HERE = str(Path(__file__).resolve().parent)
MODELS = (("fraud", "v7"), ("fraud", "v8"), ("ctr", "2024-06-01"))
REGIONS = ("eu", "us", "apac", "latam", "mea")
DEVICES = ("ios", "android", "web")
COUNTRIES = ("de", "fr", "us", "br", "in", "jp", "ng", "gb")
TAIL_POOL = 4096
EVENT_BYTES = 250  # about; for the pre-build budget


@dataclass
class Scenario:
    """One open-loop run: ``rate`` requests/s of ``batch`` events for ``seconds``."""

    name: str
    batch: int
    rate: float
    seconds: float
    connections: int
    prefix: str = "b"
    port: int = 0
    timeout: float = 60.0  # per request, from the moment it is sent
    drain: float = 30.0  # after the last due time, for the answers still out
    prebuild_mb: float = 1200.0
    seed: int = 0
    ready: str = ""  # the generator creates this file when it starts sending
    ndjson: bool = False  # one event per line instead of a JSON array
    gzip: bool = False  # Content-Encoding: gzip (compressed when built)
    pad: int = 0  # characters of an extra string feature (large bodies)
    target: str = "xebench"  # or "minimal": the FastAPI endpoint that only parses JSON
    spread_minutes: float = 30.0  # event times uniformly over this many minutes before now

    @property
    def requests(self) -> int:
        return int(self.rate * self.seconds)

    @property
    def offered_events_s(self) -> float:
        return self.rate * self.batch


# --- the load generator (its own process) ----------------------------------------------


def _tails(seed: int, pad: int = 0, spread_minutes: float = 30.0) -> list[bytes]:
    """Everything of an event after its request id, for a pool of realistic events
    (``pad``: extra string features of that many characters in all; event times uniformly
    over the ``spread_minutes`` before now)."""
    rng = random.Random(seed)
    # Feature values are at most 1,024 characters: a longer pad is several notes.
    sizes = [min(1000, pad - start) for start in range(0, pad, 1000)]
    note = "".join(f'"note{i or ""}":"{"x" * size}",' for i, size in enumerate(sizes))
    span = max(1, int(spread_minutes * 60_000))
    base = datetime.now(UTC) - timedelta(milliseconds=span)
    tails = []
    for _ in range(TAIL_POOL):
        model, version = rng.choice(MODELS)
        moment = base + timedelta(milliseconds=rng.randrange(span))
        stamp = moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        p = min(max(rng.betavariate(0.6, 3.0), 1e-6), 1 - 1e-6)
        tails.append(
            (
                f'","model":"{model}","version":"{version}","timestamp":"{stamp}",'
                f'"probabilities":{p:.6f},"cohort":{{"region":"{rng.choice(REGIONS)}",'
                f'"device":"{rng.choice(DEVICES)}"}},"features":{{{note}"amount":'
                f'{rng.lognormvariate(3, 1.2):.2f},"country":"{rng.choice(COUNTRIES)}",'
                f'"tenure_days":{rng.randrange(3650)}}}}}'
            ).encode()
        )
    return tails


class Bodies:
    """Request bodies: pre-built up to a memory budget, the rest built when due."""

    def __init__(self, scenario: Scenario) -> None:
        self.batch = scenario.batch
        self.ndjson, self.gzip = scenario.ndjson, scenario.gzip
        self.prefix = b'{"request_id":"' + scenario.prefix.encode()
        self.tails = _tails(scenario.seed, scenario.pad, scenario.spread_minutes)
        per_event = EVENT_BYTES + scenario.pad
        budget = int(scenario.prebuild_mb * 1e6 / (per_event * scenario.batch))
        self.prebuilt: list[bytes | None] = [
            self.build(i) for i in range(min(scenario.requests, budget))
        ]

    def build(self, i: int) -> bytes:
        prefix, tails, b = self.prefix, self.tails, self.batch
        events = [
            b"%s%07d-%03d%s" % (prefix, i, j, tails[(i * b + j) % TAIL_POOL]) for j in range(b)
        ]
        if self.ndjson:
            body = b"\n".join(events) + b"\n"
        else:
            body = events[0] if b == 1 else b"[" + b",".join(events) + b"]"
        return gzip.compress(body, 6) if self.gzip else body

    def take(self, i: int) -> bytes:
        if i < len(self.prebuilt):
            body, self.prebuilt[i] = self.prebuilt[i], None
            assert body is not None
            return body
        return self.build(i)


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.used = time.monotonic()

    def close(self) -> None:
        self.writer.close()


class Pool:
    """Keep-alive connections handed out FIFO; callers queue when all are busy."""

    def __init__(self, port: int, size: int) -> None:
        self.port = port
        self.size = size
        self.open = 0
        self.idle: deque[Connection] = deque()
        self.waiters: deque[asyncio.Future[Connection | None]] = deque()
        self.most_busy = 0

    async def connect(self) -> Connection:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port, limit=1 << 20)
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return Connection(reader, writer)

    async def warm(self) -> None:
        conns = await asyncio.gather(*(self.connect() for _ in range(self.size)))
        self.open = len(conns)
        self.idle.extend(conns)

    async def acquire(self) -> Connection:
        while True:
            while self.idle:
                conn = self.idle.popleft()
                # uvicorn drops keep-alive connections idle for 5 s: do not reuse those.
                if conn.reader.at_eof() or time.monotonic() - conn.used > 4.0:
                    conn.close()
                    self.open -= 1
                    continue
                self._note_busy()
                return conn
            if self.open < self.size:
                self.open += 1
                try:
                    conn = await self.connect()
                except BaseException:
                    self.open -= 1
                    self._wake()
                    raise
                self._note_busy()
                return conn
            waiter = asyncio.get_running_loop().create_future()
            self.waiters.append(waiter)
            try:
                conn = await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled() and waiter.result() is not None:
                    self.release(waiter.result())
                raise
            if conn is not None:
                return conn

    def _note_busy(self) -> None:
        self.most_busy = max(self.most_busy, self.open - len(self.idle))

    def release(self, conn: Connection) -> None:
        conn.used = time.monotonic()
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return
        self.idle.append(conn)

    def discard(self, conn: Connection) -> None:
        conn.close()
        self.open -= 1
        self._wake()

    def _wake(self) -> None:
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # it may open a connection now
                return

    def close(self) -> None:
        for conn in self.idle:
            conn.close()


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict[bytes, bytes], bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
    if b"content-length" in headers:
        body = await reader.readexactly(int(headers[b"content-length"]))
    elif headers.get(b"transfer-encoding", b"").lower() == b"chunked":
        parts = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            parts.append(await reader.readexactly(size + 2))
            if size == 0:
                break
        body = b"".join(p[:-2] for p in parts)
    else:
        body = b""
    return status, headers, body


async def generate(scenario: Scenario) -> dict[str, Any]:
    """Run the schedule; everything the report needs, as JSON-able data."""
    built = time.perf_counter()
    bodies = Bodies(scenario)
    build_seconds = time.perf_counter() - built
    pool = Pool(scenario.port, scenario.connections)
    await pool.warm()
    clock = time.monotonic  # uvloop's loop.time() ticks in whole milliseconds
    media = b"application/x-ndjson" if scenario.ndjson else b"application/json"
    encoding = b"Content-Encoding: gzip\r\n" if scenario.gzip else b""
    head = (
        b"POST /v1/predictions HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: %s\r\n"
        b"%sContent-Length: %%d\r\n\r\n" % (scenario.port, media, encoding)
    )
    latency: list[float] = []  # from the due time
    refused: list[float] = []  # of the 429 / 503 answers, from the moment they were sent
    service: list[float] = []  # from the moment it was sent
    censored: list[float] = []  # no answer by the end of the drain: at least this long
    statuses: Counter[int] = Counter()
    errors: Counter[str] = Counter()
    unfinished: Counter[str] = Counter()
    missing_retry_after: Counter[int] = Counter()
    acked: list[int] = []
    acked_per_s: Counter[int] = Counter()
    answers = {"inserted": 0, "duplicates": 0, "last_ack": 0.0}
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    samples: dict[int, str] = {}  # one answer body per unexpected status
    start = clock() + 0.2
    if scenario.ready:
        Path(scenario.ready).write_text(str(start))

    async def fire(i: int, due: float) -> None:
        conn, state = None, "waiting for a connection"
        try:
            conn = await pool.acquire()
            state = "sent, no answer yet"
            sent = clock()
            body = bodies.take(i)
            conn.writer.write(head % len(body) + body)
            async with asyncio.timeout(scenario.timeout):
                status, headers, payload = await read_response(conn.reader)
        except asyncio.CancelledError:
            unfinished[state] += 1
            censored.append(clock() - due)
            if conn is not None:
                pool.discard(conn)
            return
        except (OSError, EOFError, TimeoutError, ValueError, IndexError) as error:
            # IncompleteReadError is an EOFError, ConnectionResetError an OSError
            errors[type(error).__name__] += 1
            if conn is not None:
                pool.discard(conn)
            return
        done = clock()
        if headers.get(b"connection", b"").lower() == b"close":
            pool.discard(conn)
        else:
            pool.release(conn)
        latency.append(done - due)
        service.append(done - sent)
        statuses[status] += 1
        if status in (429, 503):
            refused.append(done - sent)
            if b"retry-after" not in headers:
                missing_retry_after[status] += 1
        if status not in (200, 429, 503) and status not in samples:
            samples[status] = payload[:300].decode(errors="replace")
        if status == 200:
            acked.append(i)
            acked_per_s[int(done - start)] += scenario.batch
            answers["last_ack"] = max(answers["last_ack"], done - start)
            answer = json.loads(payload)
            answers["inserted"] += answer.get("inserted", 0)
            answers["duplicates"] += answer.get("duplicates", 0)

    tasks: set[asyncio.Task[None]] = set()
    late = 0
    for i in range(scenario.requests):
        due = start + i / scenario.rate
        delay = due - clock()
        if delay > 0:
            await asyncio.sleep(delay)
        elif delay < -0.005:
            late += 1
        task = asyncio.create_task(fire(i, due))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    scheduled_end = clock()
    if tasks:
        deadline = start + scenario.seconds + scenario.drain
        _, pending = await asyncio.wait(set(tasks), timeout=max(0.0, deadline - clock()))
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)
    finished = clock()
    pool.close()
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    return {
        "scenario": asdict(scenario),
        "build_seconds": build_seconds,
        "prebuilt": len(bodies.prebuilt),
        "mono_start": start,
        "mono_end": finished,
        "schedule_seconds": scheduled_end - start,
        "elapsed": finished - start,
        "last_ack": answers["last_ack"],
        "latency": latency,
        "refused": refused,
        "service": service,
        "censored": censored,
        "statuses": dict(statuses),
        "errors": dict(errors),
        "unfinished": dict(unfinished),
        "missing_retry_after": dict(missing_retry_after),
        "acked": acked,
        "samples": samples,
        "acked_per_s": dict(acked_per_s),
        "answers": answers,
        "late_sends": late,
        "most_busy_connections": pool.most_busy,
        "generator_cpu_s": cpu,
    }


def loadgen_main(spec_path: str, out_path: str, ready_path: str) -> int:
    scenario = Scenario(**json.loads(Path(spec_path).read_text()))
    scenario.ready = ready_path
    try:
        import uvloop

        runner: Any = uvloop.run
    except ImportError:
        runner = asyncio.run
    result = runner(generate(scenario))
    Path(out_path).write_text(json.dumps(result))
    return 0


# --- the server and its resources -----------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def process_tree(pid: int) -> list[int]:
    """``pid`` and every process below it (the server's validation workers and their
    forkserver), from /proc."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    parents[int(entry)] = int(stat.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    tree, todo = [pid], [pid]
    while todo:
        parent = todo.pop()
        children = [child for child, ppid in parents.items() if ppid == parent]
        tree.extend(children)
        todo.extend(children)
    return tree


def _memory_mb(pid: int, field: str, path: str) -> float | None:
    try:
        with open(f"/proc/{pid}/{path}") as status:
            for line in status:
                if line.startswith(field):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def rss_mb(pid: int, tree: list[int] | None = None) -> float | None:
    """Resident memory (MB) of ``pid`` and its worker processes (``tree``: its
    :func:`process_tree`, when known), None once it is gone: the server's VmRSS alone,
    or with workers the sum of every process's proportional share (Pss: a page shared
    by k processes counts 1/k in each), what the processes cost."""
    tree = tree or process_tree(pid)
    if len(tree) == 1:
        return _memory_mb(pid, "VmRSS:", "status")
    own = _memory_mb(pid, "Pss:", "smaps_rollup")
    if own is None:
        return None
    return own + sum(_memory_mb(child, "Pss:", "smaps_rollup") or 0.0 for child in tree[1:])


def _own_cpu_seconds(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int, tree: list[int] | None = None) -> float | None:
    """User + system CPU seconds of ``pid`` (all threads) and its worker processes
    (``tree``: its :func:`process_tree`, when known)."""
    own = _own_cpu_seconds(pid)
    if own is None:
        return None
    tree = tree or process_tree(pid)
    return own + sum(_own_cpu_seconds(child) or 0.0 for child in tree[1:])


class Sampler(threading.Thread):
    """(monotonic time, RSS MB, CPU s) of a process every ``interval`` seconds."""

    def __init__(self, pid: int, interval: float) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.interval = interval
        self.samples: list[tuple[float, float, float]] = []
        self._halt = threading.Event()

    def sample(self) -> None:
        tree = process_tree(self.pid)  # one scan of /proc for both readings
        rss, cpu = rss_mb(self.pid, tree), cpu_seconds(self.pid, tree)
        if rss is not None and cpu is not None:
            self.samples.append((time.monotonic(), rss, cpu))

    def run(self) -> None:
        while not self._halt.is_set():
            self.sample()
            self._halt.wait(self.interval)

    def stop(self) -> None:
        self._halt.set()
        self.join()
        self.sample()

    def between(self, t0: float, t1: float) -> list[tuple[float, float, float]]:
        return [s for s in self.samples if t0 <= s[0] <= t1]


def healthy(port: int, timeout: float = 2.0) -> bool:
    try:
        url = f"http://127.0.0.1:{port}/healthz"
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            return answer.status == 200
    except OSError:
        return False


class Server:
    """``xebench serve`` on ``db`` in a subprocess, healthy once constructed."""

    def __init__(
        self, db: Path, log: Path, target: str = "xebench", config: Path | None = None
    ) -> None:
        self.port = free_port()
        self.log = log
        extra = ["--config", str(config)] if config else []
        command = (
            [*SERVE, "--db", str(db), *extra]
            if target == "xebench"
            else [*MINIMAL, "--app-dir", HERE]
        )
        with log.open("ab") as err:
            self.process = subprocess.Popen(
                [*command, "--port", str(self.port)],
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
        deadline = time.monotonic() + 60
        while not healthy(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop(signal.SIGKILL)
                raise RuntimeError(f"the server did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.05)

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        """Running and answering /healthz (within 60 s: it may still be working off a backlog)."""
        return self.process.poll() is None and healthy(self.port, timeout=60)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 120) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(30)


def db_bytes(db: Path) -> int:
    wal = db.with_name(db.name + ".wal")
    return sum(p.stat().st_size for p in (db, wal) if p.exists())


def check_stored(db: Path, scenario: Scenario, acked: list[int]) -> dict[str, int]:
    """Stored rows vs acknowledged events, per request (server stopped: read-only open)."""
    import duckdb

    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute(
            "SELECT CAST(substr(request_id, 2, 7) AS INTEGER) AS i, count(*), "
            "count(DISTINCT request_id) FROM predictions GROUP BY i"
        ).fetchall()
        total = con.execute("SELECT count(*) FROM predictions").fetchone()[0]
    per_request = {i: n for i, n, _ in rows}
    acked_set = set(acked)
    return {
        "stored": int(total),
        "acknowledged": len(acked) * scenario.batch,
        "lost": sum(scenario.batch - per_request.get(i, 0) for i in acked_set),
        "duplicated": sum(n - d for _, n, d in rows),
        "unacked_stored": sum(n for i, n in per_request.items() if i not in acked_set),
    }


# --- profiling --------------------------------------------------------------------------

# (category, substrings of a frame), matched from the innermost frame outwards.
CATEGORIES = [
    ("DuckDB commit / WAL sync", ("commit (", "checkpoint (")),
    ("event store write (DuckDB insert, dedup)", ("store.py",)),
    ("hashing (fingerprint, payload hash)", ("fingerprint (", "hash64 (")),
    ("JSON encode (features, payload hash)", ("to_json (",)),
    ("JSON parse + pydantic validation", ("validate_json (", "_parse (", "model_validate_json")),
    ("Arrow table build", ("pyarrow", "table (")),
    ("event checks (probabilities, timestamps)", ("check_probabilities (", "check_timestamp (")),
    ("validation, other Python", ("xebench/ingest/",)),
    ("writer thread (queue, futures)", ("writer.py",)),
    ("FastAPI / Starlette (routing, middleware, response)", ("starlette", "fastapi")),
    ("uvicorn / httptools (HTTP parsing, transport)", ("uvicorn", "httptools")),
    ("asyncio / uvloop event loop", ("asyncio", "uvloop")),
]


def _function(frame: str) -> str:
    """``name (path/file.py:line)`` -> ``name (file.py)``: lines of one function merged."""
    name, _, where = frame.partition(" (")
    return f"{name} ({where.rsplit('/', 1)[-1].rsplit(':', 1)[0].rstrip(')')})"


def profile_summary(raw: Path, seconds: float, rate: int) -> list[str]:
    """Share of py-spy samples by category, thread and function, from a ``--format raw`` file."""
    by_category: Counter[str] = Counter()
    by_thread: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    leaf: Counter[str] = Counter()
    lines_hot: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        thread, *frames = stack.split(";")
        total += n
        by_thread[thread.partition("): ")[2] or thread] += n
        for frame in reversed(frames):
            category = next(
                (name for name, keys in CATEGORIES if any(k in frame for k in keys)), None
            )
            if category:
                by_category[category] += n
                break
        else:
            by_category["other"] += n
        if frames:
            leaf[_function(frames[-1])] += n
            own = next((f for f in reversed(frames) if "xebench/" in f), None)
            if own is not None:  # the project line that is running (or calling out)
                lines_hot[own.rsplit("/", 1)[-1].rstrip(")") + " " + own.partition(" (")[0]] += n
        for function in {_function(f) for f in frames if "xebench/" in f}:
            if not function.endswith(("(__main__.py)", "(cli.py)", "(serve.py)")):
                inclusive[function] += n
    if not total:
        return ["  (no samples)"]
    possible = seconds * rate
    lines = [f"  {total} samples over {seconds:.0f} s at {rate} Hz (threads not idle)"]
    lines += ["  | where (innermost match) | share | cores |", "  |---|---:|---:|"]
    for name, n in by_category.most_common():
        lines.append(f"  | {name} | {100 * n / total:.1f}% | {n / possible:.2f} |")
    lines += ["  | thread | busy (share of wall time) |", "  |---|---:|"]
    for name, n in by_thread.most_common(4):
        lines.append(f"  | {name} | {100 * n / possible:.0f}% |")
    lines += ["  | xebench function (inclusive) | share |", "  |---|---:|"]
    for name, n in inclusive.most_common(12):
        lines.append(f"  | {name} | {100 * n / total:.1f}% |")
    lines += ["  | innermost frame (self) | share |", "  |---|---:|"]
    for name, n in leaf.most_common(12):
        lines.append(f"  | {name} | {100 * n / total:.1f}% |")
    lines += ["  | innermost xebench line | share |", "  |---|---:|"]
    for name, n in lines_hot.most_common(12):
        lines.append(f"  | {name} | {100 * n / total:.1f}% |")
    return lines


def start_profiler(
    pid: int, out: Path, seconds: float, rate: int, gil: bool = False
) -> subprocess.Popen[bytes]:
    spy = Path(sys.executable).with_name("py-spy")
    command = [
        str(spy if spy.exists() else "py-spy"), "record", "--pid", str(pid), "--rate", str(rate),
        "--duration", str(max(1, int(seconds))), "--threads", "--format", "raw",
        "--output", str(out), "--nonblocking", *(["--gil"] if gil else []),
    ]  # fmt: skip
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


# --- one scenario -----------------------------------------------------------------------


def run_scenario(scenario: Scenario, args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="xebench-bench-") as tmp:
        db, log = Path(tmp) / "bench.duckdb", Path(tmp) / "serve.log"
        spec, out, ready = (Path(tmp) / name for name in ("spec.json", "result.json", "ready"))
        server = Server(db, log, scenario.target, args.config)
        generator = profiler = None
        try:
            scenario.port = server.port
            spec.write_text(json.dumps(asdict(scenario)))
            sampler = Sampler(server.pid, 0.25)
            sampler.start()
            idle_rss = rss_mb(server.pid)
            generator = subprocess.Popen(
                [sys.executable, __file__, "--loadgen", str(spec), str(out), str(ready)]
            )
            while not ready.exists() and generator.poll() is None:
                time.sleep(0.05)  # bodies are being built, connections opened
            idle_rss = rss_mb(server.pid) or idle_rss
            if args.profile and generator.poll() is None:
                args.profile.mkdir(parents=True, exist_ok=True)
                raw = args.profile / f"{scenario.name}.txt"
                profiler = start_profiler(
                    server.pid, raw, scenario.seconds, args.profile_rate, args.profile_gil
                )
            try:
                code = generator.wait(scenario.seconds + scenario.drain + 600)
            except subprocess.TimeoutExpired:
                generator.kill()
                code = generator.wait()
            if code != 0:
                raise RuntimeError(f"the load generator failed ({code})")
            result = json.loads(out.read_text())
            result["exited_during_run"] = server.process.poll()
            asked = time.monotonic()
            alive = server.alive()
            result["healthz_seconds"] = time.monotonic() - asked
            sampler.stop()
            if profiler is not None:
                _, spy_err = profiler.communicate(timeout=scenario.seconds + 120)
                result["profile"] = (
                    profile_summary(raw, scenario.seconds, args.profile_rate)
                    if raw.exists()
                    else [f"  py-spy failed: {spy_err.decode()[-500:]}"]
                )
            result["exit_code"] = server.stop(signal.SIGTERM)
        finally:
            for process in (generator, profiler):
                if process is not None and process.poll() is None:
                    process.kill()
                    process.wait()
            server.stop(signal.SIGKILL)  # a no-op once stopped
        result["alive"] = alive
        result["db_bytes"] = db_bytes(db)
        if scenario.target == "xebench":
            result.update(check_stored(db, scenario, result["acked"]))
        else:  # nothing is stored
            acked = len(result["acked"]) * scenario.batch
            result.update(stored=acked, acknowledged=acked, lost=0, duplicated=0)
            result.update(unacked_stored=0)
        result["log_tail"] = log.read_text(errors="replace")[-1500:]
    window = sampler.between(result["mono_start"], result["mono_end"])
    all_samples = sampler.samples
    result["rss_start"] = idle_rss or (all_samples[0][1] if all_samples else 0.0)
    result["rss_peak"] = max((s[1] for s in all_samples), default=0.0)
    result["rss_end"] = all_samples[-1][1] if all_samples else 0.0
    result["server_cpu"] = (
        (window[-1][2] - window[0][2]) / (window[-1][0] - window[0][0]) if len(window) > 1 else 0.0
    )
    if scenario.name == "soak":  # every 5 s: RSS and the events acknowledged in those 5 s
        t0, per_s = result["mono_start"], result["acked_per_s"]
        series, next_t = [], t0 + 5.0
        for t, rss, _ in window:
            if t >= next_t:
                second = int(next_t - t0)
                acked = sum(per_s.get(str(k), 0) for k in range(second - 5, second))
                series.append((second, rss, acked / 5))
                next_t += 5.0
        result["rss_series"] = series
    return result


# --- the report -------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summarise(result: dict[str, Any]) -> dict[str, Any]:
    sc = result["scenario"]
    batch, seconds = sc["batch"], sc["seconds"]
    acked_events = len(result["acked"]) * batch
    window = max(seconds, result["last_ack"])
    latency = result["latency"] + result["censored"]  # unanswered: a lower bound
    return {
        "name": sc["name"]
        + (f" ({sc['target']})" if sc.get("target", "xebench") != "xebench" else ""),
        "batch": batch,
        "offered_ev_s": sc["rate"] * batch,
        "offered_req_s": sc["rate"],
        "sustained_ev_s": acked_events / window if window else 0.0,
        "sustained_req_s": len(result["acked"]) / window if window else 0.0,
        "p50": 1000 * percentile(latency, 0.50),
        "p99": 1000 * percentile(latency, 0.99),
        "max": 1000 * max(latency, default=float("nan")),
        "service_p50": 1000 * percentile(result["service"], 0.50),
        "service_p99": 1000 * percentile(result["service"], 0.99),
        "acked_events": acked_events,
        "refused_p99": 1000 * percentile(result["refused"], 0.99),
        "bound": ">=" if result["censored"] else "",  # percentiles include unanswered requests
    }


def fmt_counts(counts: dict[Any, int]) -> str:
    return ", ".join(f"{k}: {v:,}" for k, v in sorted(counts.items(), key=str)) or "none"


def report(results: list[dict[str, Any]]) -> list[tuple[str, bool, str]]:
    rows = [(r, summarise(r)) for r in results]
    print(
        "\n| scenario | batch | offered ev/s | offered req/s | sustained ev/s | sustained req/s "
        "| p50 ms | p99 ms | max ms | 429/503 p99 ms | by status | errors / unfinished |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|")
    for r, s in rows:
        problems = {**r["errors"], **r["unfinished"]}
        print(
            f"| {s['name']} | {s['batch']} | {s['offered_ev_s']:,.0f} | {s['offered_req_s']:,.0f} "
            f"| {s['sustained_ev_s']:,.0f} | {s['sustained_req_s']:,.0f} | {s['p50']:.1f} "
            f"| {s['bound']}{s['p99']:.1f} | {s['bound']}{s['max']:.1f} "
            f"| {s['refused_p99']:.1f} | {fmt_counts(r['statuses'])} "
            f"| {fmt_counts(problems)} |"
        )
    print(
        "\nLatency is from each request's due time (open loop); '>=' marks percentiles that "
        "include requests still unanswered when the drain ended (a lower bound)."
    )
    print("\n| scenario | server RSS MB start / peak / end | server CPU | generator CPU "
          "| service p50 / p99 ms | acknowledged | stored | lost | unacked stored "
          "| DB bytes / M events |")  # fmt: skip
    print("|---|---|---:|---:|---|---:|---:|---:|---:|---:|")
    for r, s in rows:
        gen_cpu = r["generator_cpu_s"] / max(r["elapsed"], 1e-9)
        per_m = r["db_bytes"] / r["stored"] * 1e6 if r["stored"] else float("nan")
        print(
            f"| {s['name']} | {r['rss_start']:.0f} / {r['rss_peak']:.0f} / {r['rss_end']:.0f} "
            f"| {100 * r['server_cpu']:.0f}% | {100 * gen_cpu:.0f}% "
            f"| {s['service_p50']:.1f} / {s['service_p99']:.1f} | {r['acknowledged']:,} "
            f"| {r['stored']:,} | {r['lost']:,} | {r['unacked_stored']:,} | {per_m / 1e6:,.1f} MB |"
        )
    for r, s in rows:
        notes = []
        if r["late_sends"]:
            notes.append(f"{r['late_sends']} sends > 5 ms late (generator busy)")
        if r["prebuilt"] < r["scenario"]["rate"] * r["scenario"]["seconds"]:
            notes.append(f"{r['prebuilt']} bodies pre-built, the rest built when due")
        notes.append(f"bodies built in {r['build_seconds']:.1f} s")
        notes.append(
            f"at most {r['most_busy_connections']} of {r['scenario']['connections']} "
            "connections busy"
        )
        if r["missing_retry_after"]:
            notes.append(f"429/503 without Retry-After: {fmt_counts(r['missing_retry_after'])}")
        if r["answers"]["duplicates"]:
            notes.append(f"{r['answers']['duplicates']} answered as duplicates")
        if r["exited_during_run"] is not None:
            notes.append(f"SERVER EXITED during the run (exit code {r['exited_during_run']})")
        elif not r["alive"]:
            notes.append("SERVER DEAD (or /healthz silent for 60 s) after the run")
        elif r["healthz_seconds"] > 1:
            notes.append(f"/healthz answered {r['healthz_seconds']:.1f} s after the run ended")
        if r["exit_code"] not in (0, -signal.SIGTERM):  # uvicorn re-raises the SIGTERM
            notes.append(f"server exit code {r['exit_code']} on SIGTERM")
        for status, body in r["samples"].items():
            notes.append(f"a {status} answer: {body}")
        print(f"- {s['name']}: " + "; ".join(notes))
        if "rss_series" in r:
            print("  | t s | server RSS MB | acknowledged events/s |")
            print("  |---:|---:|---:|")
            for t, rss, rate in r["rss_series"]:
                print(f"  | {t} | {rss:.0f} | {rate:,.0f} |")
        if "profile" in r:
            print(f"  py-spy profile of the server ({s['name']}):")
            print("\n".join(r["profile"]))
        if r["exit_code"] not in (0, -signal.SIGTERM) or not r["alive"] or r["errors"]:
            print("  server log tail:\n    " + r["log_tail"].replace("\n", "\n    "))
    return targets(rows)


def soak_levels(series: list[tuple[int, float, float]]) -> tuple[float, float]:
    """The soak's RSS after warm-up (the median of the 30 s after the first fifth of the
    run, at most after 60 s) and at the end (the median of the last 30 s)."""
    last = series[-1][0]
    warm_at = min(60, last // 5)
    warm = [rss for t, rss, _ in series if warm_at < t <= warm_at + 30]
    end = [rss for t, rss, _ in series if t > last - 30]
    return statistics.median(warm or end), statistics.median(end)


def targets(rows: list[tuple[dict[str, Any], dict[str, Any]]]) -> list[tuple[str, bool, str]]:
    checks = []
    named = {s["name"]: (r, s) for r, s in rows}
    for name in ("batch", "soak"):
        if name in named:
            r, s = named[name]
            met = s["sustained_ev_s"] >= 0.99 * 50_000 and s["p99"] < 250 and not r["errors"]
            checks.append(
                (
                    f">= 50,000 events/s sustained in batches of 500 with p99 < 250 ms ({name})",
                    met,
                    f"{s['sustained_ev_s']:,.0f} events/s, p99 {s['p99']:.0f} ms",
                )
            )
    for batch, nd, gz in FORMATS:
        name = format_name(batch, nd, gz)
        if name in named:
            r, s = named[name]
            met = s["sustained_ev_s"] >= 0.99 * 100_000 and s["p99"] < 250 and not r["errors"]
            checks.append(
                (
                    f">= 100,000 events/s sustained with p99 < 250 ms ({name})",
                    met,
                    f"{s['sustained_ev_s']:,.0f} events/s of {s['offered_ev_s']:,.0f} offered, "
                    f"p99 {s['bound']}{s['p99']:.0f} ms",
                )
            )
    if "single" in named:
        r, s = named["single"]
        checks.append(
            (
                ">= 2,000 single-event requests/s with p99 < 50 ms",
                s["sustained_req_s"] >= 0.99 * 2_000 and s["p99"] < 50 and not r["errors"],
                f"{s['sustained_req_s']:,.0f} req/s of {s['offered_req_s']:,.0f} offered, "
                f"p99 {s['bound']}{s['p99']:.0f} ms",
            )
        )
    peak = max(r["rss_peak"] for r, _ in rows)
    checks.append(("server RSS < 500 MB over the run", peak < 500, f"peak {peak:.0f} MB"))
    if named.get("soak", ({}, {}))[0].get("rss_series"):
        warm, end = soak_levels(named["soak"][0]["rss_series"])
        checks.append(
            (
                "soak: RSS at the end within 50 MB of its level after warm-up",
                end - warm <= 50,
                f"{warm:.0f} MB after warm-up, {end:.0f} MB at the end (medians of 30 s)",
            )
        )
    for name in ("overload", "large"):
        if name not in named:
            continue
        r, s = named[name]
        others = {k: v for k, v in r["statuses"].items() if int(k) not in (200, 429, 503)}
        met = not others and not r["missing_retry_after"] and r["alive"] and not r["errors"]
        what = "3x overload" if name == "overload" else "13 MB bodies from many connections"
        checks.append(
            (
                f"{what}: only 200/429/503, Retry-After on every 429/503, server alive",
                met,
                f"statuses {fmt_counts(r['statuses'])}; errors {fmt_counts(r['errors'])}; "
                f"alive {r['alive']}; peak RSS {r['rss_peak']:.0f} MB",
            )
        )
        if r["refused"]:
            checks.append(
                (
                    f"{what}: 429/503 answered within 1 s (p99)",
                    s["refused_p99"] < 1000,
                    f"p99 {s['refused_p99']:.0f} ms over {len(r['refused']):,} refusals",
                )
            )
    lost = sum(r["lost"] for r, _ in rows)
    dup = sum(r["duplicated"] for r, _ in rows)
    exact = all(r["stored"] == r["acknowledged"] for r, _ in rows)
    extra = sum(r["unacked_stored"] for r, _ in rows)
    checks.append(
        (
            "stored rows == acknowledged events (0 lost, 0 stored twice)",
            lost == 0
            and dup == 0
            and (exact or extra == sum(r["stored"] - r["acknowledged"] for r, _ in rows)),
            f"{lost} lost, {dup} duplicated, {extra} stored without an answer (timed out)",
        )
    )
    return checks


FORMATS = [(b, nd, gz) for b in (500, 5000) for nd in (False, True) for gz in (False, True)]
GROUPS = ["batch", "single", "overload", "formats", "capacity", "large", "floor", "soak"]


def format_name(batch: int, ndjson: bool, gz: bool) -> str:
    return f"{batch}-{'ndjson' if ndjson else 'json'}{'-gzip' if gz else ''}"


def floor_events_s(batch: int, events: int, tmp: Path) -> float:
    """The floor: the same events, already Arrow tables, inserted straight into DuckDB in
    this process (one INSERT per request's batch, a commit per 20,000 events)."""
    import duckdb

    from xebench.ingest.events import parse_predictions

    bodies = Bodies(Scenario("floor", batch, 1, events // batch, 1, prefix="f", prebuild_mb=0))
    tables = [parse_predictions(bodies.build(i), tenant="default") for i in range(events // batch)]
    with duckdb.connect(str(tmp / f"floor-{batch}.duckdb")) as con:
        con.register("first", tables[0])
        con.execute("CREATE TABLE predictions AS SELECT * FROM first LIMIT 0")
        con.unregister("first")
        per_commit = max(1, 20_000 // batch)
        started = time.perf_counter()
        for k in range(0, len(tables), per_commit):
            con.execute("BEGIN")
            for table in tables[k : k + per_commit]:
                con.register("batch", table)
                con.execute("INSERT INTO predictions SELECT * FROM batch")
                con.unregister("batch")
            con.execute("COMMIT")
        elapsed = time.perf_counter() - started
    return len(tables) * batch / elapsed


def ratios(results: list[dict[str, Any]], floors: dict[int, float]) -> None:
    """Service capacity vs the minimal endpoint and vs the floor, per body format."""
    capacity = {
        (r["scenario"]["target"], r["scenario"]["name"].split(":", 1)[1]): summarise(r)
        for r in results
        if r["scenario"]["name"].startswith("capacity:")
    }
    if not capacity and not floors:
        return
    print("\nCapacity (offered above what any target sustains; events/s answered 200):")
    print("| format | xebench | minimal FastAPI (parse only) | floor (DuckDB Arrow insert) "
          "| xebench / minimal | xebench / floor |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|")
    for batch, nd, gz in FORMATS:
        name = format_name(batch, nd, gz)
        ours, minimal = capacity.get(("xebench", name)), capacity.get(("minimal", name))
        floor = floors.get(batch)
        cells = [f"{x['sustained_ev_s']:,.0f}" if x else "-" for x in (ours, minimal)]
        cells.append(f"{floor:,.0f}" if floor else "-")
        a = ours["sustained_ev_s"] / minimal["sustained_ev_s"] if ours and minimal else None
        b = ours["sustained_ev_s"] / floor if ours and floor else None
        cells += [f"{x:.2f}" if x is not None else "-" for x in (a, b)]
        print(f"| {name} | " + " | ".join(cells) + " |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--scenarios",
        nargs="+",
        choices=GROUPS,
        default=["batch", "single", "overload", "formats", "capacity", "large", "floor"],
    )
    parser.add_argument("--quick", action="store_true", help="5 s per scenario")
    parser.add_argument("--rate", type=float, default=50_000, help="batch events/s (scenario 1)")
    parser.add_argument(
        "--spread-minutes",
        type=float,
        default=30.0,
        help="event times spread uniformly over this many minutes before now (30: a late, "
        "out-of-order backfill, every commit touching ~30 minute buckets per cohort; 1: live "
        "traffic)",
    )
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=60, help="scenario 1")
    parser.add_argument("--single-rate", type=float, default=2_000, help="requests/s")
    parser.add_argument("--single-seconds", type=float, default=30)
    parser.add_argument("--overload", type=float, default=3.0, help="x the batch rate")
    parser.add_argument("--overload-seconds", type=float, default=30)
    parser.add_argument(
        "--target-rate", type=float, default=100_000, help="events/s of the format scenarios"
    )
    parser.add_argument("--format-seconds", type=float, default=20)
    parser.add_argument(
        "--capacity-rate", type=float, default=250_000, help="events/s offered for capacity"
    )
    parser.add_argument("--capacity-seconds", type=float, default=10)
    parser.add_argument("--large-rate", type=float, default=3, help="13 MB bodies per second")
    parser.add_argument("--large-seconds", type=float, default=15)
    parser.add_argument("--large-connections", type=int, default=16)
    parser.add_argument(
        "--large-pad",
        type=int,
        default=1000,
        help="characters of extra string features per large event, in notes of <= 1,000 "
        "(1000: ~13 MB bodies; 1700: ~20 MB, near the 20 MiB body limit)",
    )
    parser.add_argument("--floor-events", type=int, default=200_000)
    parser.add_argument("--soak", type=float, help="soak seconds (adds the soak scenario)")
    parser.add_argument("--connections", type=int, default=256)
    parser.add_argument(
        "--overload-connections",
        type=int,
        default=1024,
        help="overload clients: 1024 x 500 events in flight exceed the 200,000-event writer "
        "queue, so back-pressure (429) can show; 256 x 500 could never fill it",
    )
    parser.add_argument("--prebuild-mb", type=float, default=1200)
    parser.add_argument(
        "--drain", type=float, default=30, help="seconds to wait for answers after the schedule"
    )
    parser.add_argument(
        "--config",
        type=Path,
        help="the server's YAML (e.g. `monitoring: {fold_interval: 0}`: no bucket maintenance)",
    )
    parser.add_argument("--profile", type=Path, help="record the server with py-spy into DIR")
    parser.add_argument("--profile-rate", type=int, default=100, help="py-spy samples/s")
    parser.add_argument(
        "--profile-gil",
        action="store_true",
        help="sample only the thread holding the GIL (where the serialised Python time goes)",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds = args.single_seconds = args.overload_seconds = 5
        args.format_seconds = args.capacity_seconds = args.large_seconds = 5
        args.floor_events = min(args.floor_events, 50_000)
        args.drain = min(args.drain, 3)
    names = list(dict.fromkeys([*args.scenarios, *(["soak"] if args.soak else [])]))
    rate = args.rate / args.batch
    common = {
        "connections": args.connections,
        "prebuild_mb": args.prebuild_mb,
        "drain": args.drain,
        "spread_minutes": args.spread_minutes,
    }
    plans: dict[str, list[Scenario]] = {
        "batch": [Scenario("batch", args.batch, rate, args.seconds, prefix="b", **common)],
        "single": [
            Scenario("single", 1, args.single_rate, args.single_seconds, prefix="s", **common)
        ],
        "overload": [
            Scenario(
                "overload",
                args.batch,
                rate * args.overload,
                args.overload_seconds,
                prefix="o",
                **{**common, "connections": args.overload_connections},
            )
        ],
        "formats": [
            Scenario(
                format_name(b, nd, gz),
                b,
                args.target_rate / b,
                args.format_seconds,
                prefix="f",
                ndjson=nd,
                gzip=gz,
                **common,
            )
            for b, nd, gz in FORMATS
        ],
        "capacity": [
            Scenario(
                f"capacity:{format_name(b, nd, gz)}",
                b,
                args.capacity_rate / b,
                args.capacity_seconds,
                prefix="c",
                ndjson=nd,
                gzip=gz,
                target=target,
                **{**common, "drain": min(args.drain, 5)},
            )
            for b, nd, gz in FORMATS
            for target in ("xebench", "minimal")
        ],
        "large": [
            Scenario(
                "large",
                10_000,
                args.large_rate,
                args.large_seconds,
                prefix="l",
                pad=args.large_pad,
                **{**common, "connections": args.large_connections},
            )
        ],
        "soak": [Scenario("soak", args.batch, rate, args.soak or 300, prefix="k", **common)],
    }
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"xebench ingestion benchmark: {os.cpu_count()} cores (load average {load}), loopback")
    results = []
    floors: dict[int, float] = {}
    for name in names:
        if name == "floor":
            with tempfile.TemporaryDirectory(prefix="xebench-floor-") as tmp:
                for batch in sorted({b for b, _, _ in FORMATS}):
                    floors[batch] = floor_events_s(batch, args.floor_events, Path(tmp))
                    print(f"floor: batches of {batch}: {floors[batch]:,.0f} events/s", flush=True)
            continue
        for scenario in plans[name]:
            print(
                f"{scenario.name} ({scenario.target}): {scenario.offered_events_s:,.0f} events/s "
                f"in batches of {scenario.batch} ({scenario.rate:,.1f} req/s) for "
                f"{scenario.seconds:.0f} s ...",
                flush=True,
            )
            results.append(run_scenario(scenario, args))
    checks = report(results)
    ratios(results, floors)
    print(f"\nload average at the end: {' / '.join(f'{x:.1f}' for x in os.getloadavg())}")
    for text, met, value in checks:
        print(f"{'MET ' if met else 'MISS'} {text}: {value}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--loadgen":
        sys.exit(loadgen_main(*sys.argv[2:]))
    sys.exit(main())
