"""Production monitoring at scale: bulk load, bucket fold, query latency, live folding cost.

The issue's benchmark: bulk-load 1e7 events with labels across 100 cohorts
and 7 days, then time ``/v1/metrics`` for a 24h window per cohort and a
7-day hourly series, and ``/v1/drift`` for 20 features. Targets: each query
under 200 ms (p50) and 1 s (p99); live ingestion with bucket maintenance at
least 70% of the rate without it.

Sections:

1. ``load``: events are generated directly as Arrow tables with exactly
   :data:`~xebench.store.schema.PREDICTION_SCHEMA` / ``LABEL_SCHEMA`` (``fp``,
   ``rfp``, ``payload_hash`` and the ``features`` JSON text computed as
   ``xebench.ingest.events`` computes them; checked against ``prediction_columns`` /
   ``label_columns`` on a sample before anything is timed): ``--events``
   predictions (default 1e7) of one binary model ``m`` (versions v1, and v2
   on half the traffic of the last two days), spread over 7 days ending now,
   cohort ``{"region": one of 5, "segment": one of 100}``, 20 numeric
   features (two of them drift in the last 24 h), about 85% labelled with
   log-normal delays (median 15 min; labels not due yet are not sent). They
   are written with ``EventStore.write`` in batches of ``--chunk`` predictions
   plus their labels, into a temporary DuckDB file; then
   ``EventStore.update_buckets()`` folds everything. Prints events/s of the
   load and of the fold, the file size and bytes per million events, and the
   bucket row counts.
2. ``query``: ``python -m xebench serve`` on the loaded file; sequential
   requests with httpx after a warm-up: ``/v1/metrics?window=24h&cohort=
   segment:<v>`` for every cohort (``--rounds`` rounds), the 7-day hourly
   series, ``/v1/drift?window=24h`` (20 features); p50 / p99 / max per kind.
   Then, the server stopped, one cohort's 24h answer is checked against the
   raw tables: ``n_predictions`` / ``n_labelled`` against DuckDB counts and
   ``log_loss`` / ``brier`` against scikit-learn over the joined events of
   that cohort and window (1e-9 relative).
3. ``ingest``: live HTTP ingestion on fresh servers, with ``monitoring:
   {fold_interval: 1}`` and with ``{fold_interval: 0}`` (no bucket
   maintenance), alternated ``--ingest-repeats`` times at the same offered
   rate: bench_ingest.py's open-loop batch generator (``--ingest-rate``
   predictions/s in batches of ``--batch``) plus, at the same time, an
   open-loop generator of label batches naming the model for
   ``--label-share`` of those predictions, ``--label-delay`` seconds after
   them. Sustained events/s both ways (medians over the repeats) and their
   ratio; after a graceful stop the stored rows and the bucket totals are
   checked against the acknowledged events.
4. ``drift-offline``: ``benchmarks/bench_drift_offline.py`` (offline ``xebench
   drift`` vs Evidently and NannyML), run as a subprocess with its own
   arguments (``--quick`` passed through); its table is included.

``--quick``: 2e5 events, 5 s ingestion runs; under two minutes.

Usage::

    python benchmarks/bench_monitoring.py --quick
    python benchmarks/bench_monitoring.py                      # 1e7 events, ~20 minutes
    python benchmarks/bench_monitoring.py --sections load query --keep /tmp/mon.duckdb
    python benchmarks/bench_monitoring.py --json results.json
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import math
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_ingest as bi  # noqa: E402  (the open-loop generator, server helpers)
from xebench.store.schema import LABEL_SCHEMA, PREDICTION_SCHEMA, fingerprint, hash64  # noqa: E402

TENANT = "default"  # the service's tenant without tokens
MODEL = "m"
REGIONS = ("eu", "us", "apac", "latam", "mea")
SERVE = [sys.executable, "-m", "xebench", "serve", "--no-access-log", "--log-level", "warning"]
P50_TARGET_MS = 200.0
P99_TARGET_MS = 1000.0
RATIO_TARGET = 0.70


# --- synthetic events, built as Arrow columns --------------------------------------------


@dataclass(frozen=True)
class DataSpec:
    """What to generate: ``events`` predictions over ``days`` ending at ``end``."""

    events: int
    end: datetime
    days: float = 7.0
    cohorts: int = 100
    features: int = 20
    chunk: int = 250_000
    label_share: float = 0.85
    seed: int = 0

    @property
    def chunks(self) -> int:
        return max(1, math.ceil(self.events / self.chunk))

    @property
    def end_us(self) -> int:
        return int(self.end.timestamp() * 1_000_000)

    @property
    def start_us(self) -> int:
        return self.end_us - int(self.days * 86_400 * 1_000_000)

    @property
    def segments(self) -> list[str]:
        return [f"s{i:03d}" for i in range(self.cohorts)]

    @property
    def feature_names(self) -> list[str]:
        return [f"f{i:02d}" for i in range(self.features)]  # sorted as text, as events.py sorts


def hash_many(texts: pa.Array) -> np.ndarray:
    """``hash64`` of every UTF-8 text (one BLAKE2b per value; the only per-event Python)."""
    b2 = hashlib.blake2b
    digests = b"".join(
        [b2(x, digest_size=8).digest() for x in pc.cast(texts, pa.binary()).to_pylist()]
    )
    # hash64 is int.from_bytes(digest, "little", signed=True): a little-endian int64.
    return np.frombuffer(digests, dtype="<i8").copy()


def _join(*parts: Any) -> pa.Array:
    return pc.binary_join_element_wise(*parts, "")


def _text(values: np.ndarray) -> pa.Array:
    """Shortest round-trip text of floats (as pydantic_core's JSON writes them: checked)."""
    return pc.cast(pa.array(values), pa.string())


def make_chunk(spec: DataSpec, k: int) -> tuple[pa.Table, pa.Table]:
    """Predictions ``k * chunk ...`` (time-ordered slice ``k`` of the span) and their labels."""
    first = k * spec.chunk
    n = min(spec.chunk, spec.events - first)
    rng = np.random.default_rng([spec.seed, k])
    span = spec.end_us - spec.start_us
    lo = spec.start_us + span * first // spec.events
    hi = spec.start_us + span * (first + n) // spec.events
    t = np.sort(rng.integers(lo, max(hi, lo + 1), n))
    day_us = 86_400 * 1_000_000
    rid = _join(
        "r", pc.utf8_lpad(pc.cast(pa.array(np.arange(first, first + n)), pa.string()), 9, "0")
    )

    weights = 1.0 / (np.arange(spec.cohorts) + 5.0) ** 0.8
    seg = rng.choice(spec.cohorts, n, p=weights / weights.sum())
    segment = pa.array(spec.segments).take(pa.array(seg))
    region = pa.array(REGIONS).take(pa.array(rng.integers(0, len(REGIONS), n)))
    canary = (t >= spec.end_us - 2 * day_us) & (rng.random(n) < 0.5)
    version = pa.array(np.where(canary, "v2", "v1"))

    # Features: standard normals, shifted per feature; two drift in the last 24 h.
    z = rng.standard_normal((n, spec.features))
    recent = t >= spec.end_us - day_us
    if spec.features > 7:
        z[recent, 3] += 0.5
        z[recent, 7] *= 1.5
    x = np.arange(spec.features) * 0.5 + (1.0 + np.arange(spec.features) % 3) * z
    x[:, 0] = np.exp(3.0 + z[:, 0])  # an amount
    # Three decimals, the last one non-zero: never integral, so text round trips exactly.
    sign = np.where(x < 0, -1, 1)
    m = sign * (10 * np.round(np.abs(x) * 100).astype(np.int64) + rng.integers(1, 10, x.shape))
    x = m / 1000.0
    texts = [_text(x[:, i]) for i in range(spec.features)]
    parts: list[Any] = []
    escaped: list[Any] = []  # the same JSON as a JSON string's content (for the payload hash)
    for i, name in enumerate(spec.feature_names):
        parts += [("{" if i == 0 else ",") + f'"{name}":', texts[i]]
        escaped += [("{" if i == 0 else ",") + f'\\"{name}\\":', texts[i]]
    features = _join(*parts, "}")

    seg_effect = np.linspace(-0.6, 0.6, spec.cohorts)[seg]
    logit = -1.5 + 0.8 * z[:, 0] + 0.5 * z[:, 1] - 0.4 * z[:, 2] + seg_effect
    y = rng.random(n) < 1.0 / (1.0 + np.exp(-logit))
    noise = rng.standard_normal(n) * np.where(canary, 0.35, 0.55)
    p = np.clip(1.0 / (1.0 + np.exp(-(0.9 * logit + noise))), 0.001, 0.999)
    q = 1.0 - p  # exactly as events.py: [1.0 - p, p]

    two = np.arange(0, 2 * n + 1, 2, dtype=np.int32)
    probabilities = pa.ListArray.from_arrays(
        pa.array(two), pa.array(np.column_stack([q, p]).ravel())
    )
    classes = pa.ListArray.from_arrays(pa.array(two), pa.array(np.tile(["0", "1"], n)))
    keys = pa.array(np.tile(["region", "segment"], n))
    items = pa.concat_arrays([region, segment]).take(
        pa.array(np.column_stack([np.arange(n), n + np.arange(n)]).ravel())
    )
    cohort = pa.MapArray.from_arrays(pa.array(two), keys, items)

    fp = hash_many(_join(f"{TENANT}\0{MODEL}\0", rid))
    rfp = hash_many(_join(f"{TENANT}\0\0", rid))
    t_text = pc.cast(pa.array(t), pa.string())
    # to_json((version, sent_time, classes, probs, sorted(cohort.items()), features_json))
    content = _join(
        '["', version, '",', t_text, ',["0","1"],[', _text(q), ",", _text(p),
        '],[["region","', region, '"],["segment","', segment, '"]],"',
        *escaped, '}"]',
    )  # fmt: skip
    ts = pa.timestamp("us", tz="UTC")
    ingest = t + rng.integers(50_000, 500_000, n)
    predictions = pa.table(
        {
            "fp": fp,
            "rfp": rfp,
            "tenant": pa.array([TENANT] * n),
            "model": pa.array([MODEL] * n),
            "version": version,
            "request_id": rid,
            "event_time": pa.array(t).cast(ts),
            "ingest_time": pa.array(ingest).cast(ts),
            "classes": classes,
            "probabilities": probabilities,
            "cohort": cohort,
            "features": features,
            "payload_hash": hash_many(content),
            "weight": np.ones(n),  # unweighted, as the committed figures were measured
        },
        schema=PREDICTION_SCHEMA,
    )

    delay_us = (np.clip(rng.lognormal(math.log(900.0), 1.5, n), 1.0, 3 * 86_400) * 1e6).astype(
        np.int64
    )
    label_t = t + delay_us
    labelled = np.flatnonzero((rng.random(n) < spec.label_share) & (label_t <= spec.end_us))
    label_text = pa.array(np.where(y[labelled], "1", "0"))
    lt = label_t[labelled]
    labels = pa.table(
        {
            "fp": fp[labelled],  # the label names the model: the prediction's fingerprint
            "tenant": pa.array([TENANT] * len(labelled)),
            "model": pa.array([MODEL] * len(labelled)),
            "request_id": rid.take(pa.array(labelled)),
            "label": label_text,
            "event_time": pa.array(lt).cast(ts),
            "ingest_time": pa.array(lt + 200_000).cast(ts),
            # to_json((label, sent_time))
            "payload_hash": hash_many(
                _join('["', label_text, '",', pc.cast(pa.array(lt), pa.string()), "]")
            ),
            "correction": np.zeros(len(labelled), dtype=bool),
        },
        schema=LABEL_SCHEMA,
    )
    return predictions, labels


def self_check(spec: DataSpec, n: int = 400) -> str:
    """The generated columns equal what ``xebench.ingest.events`` makes of the same events."""
    from xebench.ingest.events import label_columns, prediction_columns

    small = DataSpec(events=n, end=spec.end, days=spec.days, cohorts=spec.cohorts,
                     features=spec.features, chunk=n, seed=spec.seed + 999)  # fmt: skip
    predictions, labels = make_chunk(small, 0)
    rows = predictions.to_pylist()
    events = [
        {
            "request_id": r["request_id"],
            "model": r["model"],
            "version": r["version"],
            "timestamp": r["event_time"].isoformat().replace("+00:00", "Z"),
            "probabilities": r["probabilities"][1],
            "cohort": dict(r["cohort"]),
            "features": json.loads(r["features"]),
        }
        for r in rows
    ]
    expected = prediction_columns(events, tenant=TENANT)
    for name in ("fp", "rfp", "payload_hash", "features", "probabilities", "classes", "version"):
        got = predictions[name].to_pylist()
        if got != expected[name]:
            pairs = zip(got, expected[name], strict=True)
            bad = next(i for i, (a, b) in enumerate(pairs) if a != b)
            raise AssertionError(
                f"generated {name} differs from events.py at row {bad}: "
                f"{got[bad]!r} != {expected[name][bad]!r}"
            )
    if [sorted(c) for c in predictions["cohort"].to_pylist()] != [
        sorted(c) for c in expected["cohort"]
    ]:
        raise AssertionError("generated cohort differs from events.py")
    lrows = labels.to_pylist()
    label_events = [
        {
            "request_id": r["request_id"],
            "model": r["model"],
            "label": int(r["label"]),
            "timestamp": r["event_time"].isoformat().replace("+00:00", "Z"),
        }
        for r in lrows
    ]
    expected = label_columns(label_events, tenant=TENANT)
    for name in ("fp", "payload_hash", "label"):
        if labels[name].to_pylist() != expected[name]:
            raise AssertionError(f"generated label {name} differs from events.py")
    assert fingerprint(TENANT, MODEL, rows[0]["request_id"]) == rows[0]["fp"]
    assert hash64(b"abc") == hash_many(pa.array(["abc"]))[0]
    return f"{len(rows)} predictions and {len(lrows)} labels identical to events.py's columns"


def _generate_to_file(args: tuple[DataSpec, int, str]) -> tuple[int, int, int, float]:
    spec, k, path = args
    started = time.perf_counter()
    predictions, labels = make_chunk(spec, k)
    with pa.OSFile(path, "wb") as sink, pa.ipc.new_file(sink, PREDICTION_SCHEMA) as out:
        out.write_table(predictions)
    with pa.OSFile(path + ".labels", "wb") as sink, pa.ipc.new_file(sink, LABEL_SCHEMA) as out:
        out.write_table(labels)
    return k, predictions.num_rows, labels.num_rows, time.perf_counter() - started


def _read_ipc(path: str) -> pa.Table:
    with pa.memory_map(path) as source:
        return pa.ipc.open_file(source).read_all()


# --- section 1: bulk load and fold -------------------------------------------------------


def db_bytes(db: Path) -> int:
    wal = db.with_name(db.name + ".wal")
    return sum(p.stat().st_size for p in (db, wal) if p.exists())


def bucket_counts(con: Any) -> dict[str, int]:
    out = {}
    for table in ("bucket_scores", "bucket_features"):
        rows = con.execute(
            f"SELECT CASE WHEN cohort_key = '' THEN 'model' ELSE cohort_key END, count(*), "
            f"count(*) FILTER (WHERE delta) FROM {table} GROUP BY ALL ORDER BY 1"
        ).fetchall()
        for key, n, delta in rows:
            out[f"{table}[{key}]"] = int(n)
            if delta:
                out[f"{table}[{key}] delta rows"] = int(delta)
        out[table] = sum(int(n) for _, n, _ in rows)
    for table in ("feature_bins", "cohort_values"):
        out[table] = int(con.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
    return out


def section_load(spec: DataSpec, db: Path, work: Path, args: argparse.Namespace) -> dict[str, Any]:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from xebench.store.event_store import EventBatch, EventStore

    out: dict[str, Any] = {"events": spec.events, "chunks": spec.chunks, "chunk": spec.chunk}
    print(f"  self-check: {self_check(spec)}", flush=True)
    # Generation first, in parallel, into Arrow IPC files: it is not part of any timing.
    started = time.perf_counter()
    jobs = [(spec, k, str(work / f"chunk{k:04d}.arrow")) for k in range(spec.chunks)]
    workers = max(1, min(os.cpu_count() or 1, spec.chunks))
    gen_cpu = 0.0
    labels_total = 0
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
        for _, _, n_labels, seconds in pool.map(_generate_to_file, jobs):
            gen_cpu += seconds
            labels_total += n_labels
    out["generate_s"] = time.perf_counter() - started
    out["generate_us_per_event"] = 1e6 * gen_cpu / spec.events
    out["labels"] = labels_total
    print(
        f"  generated {spec.events:,} predictions and {labels_total:,} labels in "
        f"{out['generate_s']:.1f} s ({workers} processes; {out['generate_us_per_event']:.1f} us "
        "of CPU per prediction, hashes included)",
        flush=True,
    )

    store = EventStore(db, memory_limit=args.load_memory)
    write_s = 0.0
    joined = inserted = 0
    try:
        for _, _, path in jobs:
            batches = [
                EventBatch("predictions", _read_ipc(path)),
                EventBatch("labels", _read_ipc(path + ".labels")),
            ]
            t0 = time.perf_counter()
            outcomes = store.write(batches)
            write_s += time.perf_counter() - t0
            inserted += outcomes[0].inserted + outcomes[1].inserted
            joined += outcomes[1].joined
            os.unlink(path)
            os.unlink(path + ".labels")
        t0 = time.perf_counter()
        store.checkpoint()
        checkpoint_s = time.perf_counter() - t0
        out["raw_db_bytes"] = db_bytes(db)
        total_events = spec.events + labels_total
        if inserted != total_events or joined != labels_total:
            raise AssertionError(
                f"stored {inserted:,} of {total_events:,} events, {joined:,} labels joined"
            )
        out.update(
            write_s=write_s,
            checkpoint_s=checkpoint_s,
            load_events_s=total_events / (write_s + checkpoint_s),
        )
        print(
            f"  loaded {total_events:,} events in {write_s:.1f} s + {checkpoint_s:.1f} s "
            f"checkpoint: {out['load_events_s']:,.0f} events/s",
            flush=True,
        )
        profiler = None
        if args.profile:
            import cProfile

            profiler = cProfile.Profile()
            profiler.enable()
        t0 = time.perf_counter()
        folded = store.update_buckets(compact=False)
        fold_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        compacted = store.update_buckets(compact=True)
        compact_s = time.perf_counter() - t0
        if profiler is not None:
            profiler.disable()
            args.profile.mkdir(parents=True, exist_ok=True)
            profiler.dump_stats(str(args.profile / "fold.prof"))
            out["fold_profile"] = profile_lines(args.profile / "fold.prof")
        out.update(
            fold_s=fold_s,
            compact_s=compact_s,
            folded_predictions=folded["predictions"],
            folded_joined=folded["joined"],
            compacted_rows=compacted["compacted"],
            fold_events_s=total_events / (fold_s + compact_s),
            fold_predictions_s=spec.events / (fold_s + compact_s),
        )
        print(
            f"  folded {folded['predictions']:,} predictions and {folded['joined']:,} labels in "
            f"{fold_s:.1f} s, compacted {compacted['compacted']:,} delta rows away in "
            f"{compact_s:.1f} s: {out['fold_events_s']:,.0f} events/s",
            flush=True,
        )
        with store.cursor() as con:
            out["buckets"] = bucket_counts(con)
    finally:
        store.close()
    out["db_bytes"] = db_bytes(db)
    out["bytes_per_m_events"] = out["db_bytes"] / (spec.events + labels_total) * 1e6
    out["raw_bytes_per_m_events"] = out["raw_db_bytes"] / (spec.events + labels_total) * 1e6
    print(
        f"  database {out['db_bytes'] / 1e6:,.0f} MB ({out['raw_db_bytes'] / 1e6:,.0f} MB before "
        f"the fold): {out['bytes_per_m_events'] / 1e6:,.1f} MB per million events",
        flush=True,
    )
    for name, n in out["buckets"].items():
        print(f"    {name}: {n:,}")
    return out


def profile_lines(path: Path, top: int = 25) -> list[str]:
    """The top functions of a cProfile dump by cumulative and by own time."""
    import io
    import pstats

    lines = []
    for key in ("cumulative", "tottime"):
        buffer = io.StringIO()
        pstats.Stats(str(path), stream=buffer).sort_stats(key).print_stats(top)
        text = buffer.getvalue()
        body = text[text.find("ncalls") :]
        lines.append(f"  by {key}:")
        lines += ["    " + line for line in body.splitlines() if line.strip()]
    return lines


# --- the server ------------------------------------------------------------------------


class LiveServer:
    """``xebench serve --db DB [--config CFG]`` in a subprocess, healthy once constructed."""

    def __init__(self, db: Path, log: Path, config: Path | None = None, start_timeout=600.0):
        self.port = bi.free_port()
        command = [*SERVE, "--db", str(db), "--port", str(self.port)]
        if config is not None:
            command += ["--config", str(config)]
        started = time.monotonic()
        with log.open("ab") as err:
            self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=err)
        while not bi.healthy(self.port):
            if self.process.poll() is not None or time.monotonic() - started > start_timeout:
                self.stop(signal.SIGKILL)
                raise RuntimeError(f"the server did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.05)
        self.start_seconds = time.monotonic() - started
        self.url = f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 300) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(30)


def percentiles(ms: list[float]) -> dict[str, float]:
    ordered = sorted(ms)
    if not ordered:
        return {"n": 0, "p50": float("nan"), "p99": float("nan"), "max": float("nan")}
    return {
        "n": len(ordered),
        "p50": statistics.median(ordered),
        "p99": ordered[min(len(ordered) - 1, math.ceil(0.99 * len(ordered)) - 1)],
        "max": ordered[-1],
        "mean": statistics.fmean(ordered),
    }


# --- section 2: queries through the service ---------------------------------------------


def section_query(spec: DataSpec, db: Path, work: Path, args: argparse.Namespace) -> dict[str, Any]:
    import httpx

    out: dict[str, Any] = {}
    log = work / "serve-query.log"
    server = LiveServer(db, log)
    out["server_start_s"] = server.start_seconds
    print(
        f"  server up in {server.start_seconds:.1f} s (RSS {bi.rss_mb(server.pid):.0f} MB)",
        flush=True,
    )
    check_cohort = spec.segments[min(7, spec.cohorts - 1)]
    kinds: dict[str, list[float]] = {}
    answers: dict[str, Any] = {}
    spy = None
    try:
        with httpx.Client(base_url=server.url, timeout=300) as client:

            def get(kind: str, path: str, params: dict[str, str]) -> dict[str, Any]:
                t0 = time.perf_counter()
                response = client.get(path, params=params)
                elapsed = 1000 * (time.perf_counter() - t0)
                if response.status_code != 200:
                    raise RuntimeError(f"{kind}: {response.status_code} {response.text[:500]}")
                if kind:
                    kinds.setdefault(kind, []).append(elapsed)
                return response.json()

            cohort_q = {"model": MODEL, "window": "24h"}
            series_q = {"model": MODEL, "window": "7d", "step": "1h"}
            drift_q = {"model": MODEL, "window": "24h"}
            # Warm-up: first-call imports, DuckDB caches, the label-delay cache.
            t0 = time.perf_counter()
            get("", "/v1/metrics", {**cohort_q, "cohort": f"segment:{spec.segments[0]}"})
            out["first_query_ms"] = 1000 * (time.perf_counter() - t0)
            get("", "/v1/metrics", series_q)
            get("", "/v1/drift", drift_q)
            for segment in spec.segments[:5]:
                get("", "/v1/metrics", {**cohort_q, "cohort": f"segment:{segment}"})
            if args.profile:
                args.profile.mkdir(parents=True, exist_ok=True)
                spy = subprocess.Popen(
                    [str(Path(sys.executable).with_name("py-spy")), "record", "--pid",
                     str(server.pid), "--rate", "200", "--threads", "--format", "raw", "--output",
                     str(args.profile / "query.txt"), "--nonblocking"],
                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                )  # fmt: skip
                time.sleep(1.0)
            started = time.perf_counter()
            for _ in range(args.rounds):
                for segment in spec.segments:
                    answer = get(
                        "metrics 24h per cohort", "/v1/metrics",
                        {**cohort_q, "cohort": f"segment:{segment}"},
                    )  # fmt: skip
                    if segment == check_cohort:
                        answers["cohort"] = answer
            for _ in range(args.repeat):
                answers["series"] = get("metrics 7d hourly series", "/v1/metrics", series_q)
            for _ in range(args.repeat):
                answers["drift"] = get("drift 24h, 20 features", "/v1/drift", drift_q)
            for _ in range(args.repeat):
                answers["model"] = get("metrics 24h whole model", "/v1/metrics", cohort_q)
            out["timed_s"] = time.perf_counter() - started
            out["rss_mb"] = bi.rss_mb(server.pid)
    finally:
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            try:
                spy.wait(60)
            except subprocess.TimeoutExpired:
                spy.kill()
        server.stop()
    out["latency_ms"] = {kind: percentiles(ms) for kind, ms in kinds.items()}
    series = answers["series"]["series"]
    drift = answers["drift"]
    out["series_points"] = len(series)
    out["drift_features"] = sum(1 for f in drift["features"] if not f["feature"].startswith("__"))
    out["drift_drifted"] = drift.get("drifted", [])
    out["cohort_answer"] = {
        k: answers["cohort"].get(k)
        for k in ("from", "to", "cohort", "n_predictions", "n_labelled", "coverage", "log_loss",
                  "brier", "label_lag_p50_s", "provisional")
    }  # fmt: skip
    for kind, stats in out["latency_ms"].items():
        print(
            f"  {kind}: n={stats['n']} p50 {stats['p50']:.1f} ms, p99 {stats['p99']:.1f} ms, "
            f"max {stats['max']:.1f} ms",
            flush=True,
        )
    print(
        f"  series: {len(series)} points; drift: {out['drift_features']} features, drifted "
        f"{', '.join(out['drift_drifted']) or 'none'}",
        flush=True,
    )
    if spy is not None and (args.profile / "query.txt").exists():
        out["query_profile"] = bi.profile_summary(args.profile / "query.txt", out["timed_s"], 200)
    out["check"] = verify(db, answers["cohort"], check_cohort)
    c = out["check"]
    print(
        f"  check segment:{check_cohort} 24h: n_predictions {c['served_n_predictions']:,} vs "
        f"DuckDB {c['raw_n_predictions']:,}; n_labelled {c['served_n_labelled']:,} vs "
        f"{c['raw_n_labelled']:,}; log_loss rel. err {c['log_loss_rel_err']:.2e}, brier rel. "
        f"err {c['brier_rel_err']:.2e}",
        flush=True,
    )
    return out


def verify(db: Path, answer: dict[str, Any], segment: str) -> dict[str, Any]:
    """One served window against DuckDB counts and scikit-learn over the raw events."""
    import duckdb
    from sklearn.metrics import brier_score_loss, log_loss

    start = datetime.fromisoformat(answer["from"].replace("Z", "+00:00"))
    end = datetime.fromisoformat(answer["to"].replace("Z", "+00:00"))
    where = (
        "p.tenant = ? AND p.model = ? AND p.cohort['segment'] = ? "
        "AND p.event_time >= ? AND p.event_time < ?"
    )
    params = [TENANT, MODEL, segment, start, end]
    with duckdb.connect(str(db), read_only=True) as con:
        (n,) = con.execute(f"SELECT count(*) FROM predictions p WHERE {where}", params).fetchone()
        joined = con.execute(
            "SELECT p.probabilities[2] AS p, l.label AS y FROM predictions p JOIN labels l "
            "ON l.fp = p.fp AND l.tenant = p.tenant AND l.model = p.model "
            f"AND l.request_id = p.request_id WHERE {where}",
            params,
        ).fetchnumpy()
    y = np.asarray(joined["y"]).astype(int)
    p = np.asarray(joined["p"], dtype=np.float64)
    ref_ll = float(log_loss(y, p, labels=[0, 1]))
    ref_brier = float(brier_score_loss(y, p))
    return {
        "segment": segment,
        "from": answer["from"],
        "to": answer["to"],
        "served_n_predictions": answer["n_predictions"],
        "raw_n_predictions": int(n),
        "served_n_labelled": answer["n_labelled"],
        "raw_n_labelled": int(y.shape[0]),
        "served_log_loss": answer["log_loss"],
        "sklearn_log_loss": ref_ll,
        "log_loss_rel_err": abs(answer["log_loss"] - ref_ll) / abs(ref_ll),
        "served_brier": answer["brier"],
        "sklearn_brier": ref_brier,
        "brier_rel_err": abs(answer["brier"] - ref_brier) / abs(ref_brier),
    }


# --- section 3: live ingestion with and without bucket maintenance ------------------------


@dataclass
class LabelPlan:
    """Label batches for the predictions of bench_ingest's generator (same request ids).

    Label request ``i`` carries a label for every ``stride``-th event of
    prediction request ``i`` and is due ``delay`` seconds after it.
    """

    port: int
    rate: float  # requests/s, the prediction requests' rate
    seconds: float
    batch: int  # events per prediction request
    stride: int
    delay: float
    prefix: str = "b"
    seed: int = 0  # bench_ingest's scenario seed: which model each event names
    connections: int = 64
    timeout: float = 60.0
    drain: float = 30.0
    predictions_ready: str = ""  # bench_ingest's ready file: the schedule's start time
    ready: str = ""

    @property
    def requests(self) -> int:
        return int(self.rate * self.seconds)

    @property
    def per_request(self) -> int:
        return len(range(0, self.batch, self.stride))


def _label_bodies(plan: LabelPlan) -> list[bytes]:
    import re

    models = [re.search(rb'"model":"([^"]+)"', t).group(1) for t in bi._tails(plan.seed)]
    pool = len(models)
    bodies = []
    for i in range(plan.requests):
        events = []
        for j in range(0, plan.batch, plan.stride):
            e = i * plan.batch + j
            label = b"1" if (e * 2654435761) % 100 < 20 else b"0"
            events.append(
                b'{"request_id":"%s%07d-%03d","model":"%s","label":%s}'
                % (plan.prefix.encode(), i, j, models[e % pool], label)
            )
        bodies.append(b"[" + b",".join(events) + b"]")
    return bodies


async def generate_labels(plan: LabelPlan) -> dict[str, Any]:
    """Open loop, as bench_ingest's generator: latency from the due time."""
    bodies = _label_bodies(plan)
    pool = bi.Pool(plan.port, plan.connections)
    await pool.warm()
    Path(plan.ready).write_text("ready")
    ready = Path(plan.predictions_ready)
    while not ready.exists() or not ready.read_text():
        await asyncio.sleep(0.01)
    start = float(ready.read_text())  # time.monotonic() of the predictions' schedule
    head = (
        b"POST /v1/labels HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
        b"Content-Type: application/json\r\nContent-Length: %%d\r\n\r\n" % plan.port
    )
    latency: list[float] = []
    statuses: Counter[int] = Counter()
    errors: Counter[str] = Counter()
    acked = {"events": 0, "requests": 0, "last_ack": 0.0, "joined": 0, "pending": 0}
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    clock = time.monotonic

    async def fire(i: int, due: float) -> None:
        conn = None
        try:
            conn = await pool.acquire()
            body = bodies[i]
            conn.writer.write(head % len(body) + body)
            async with asyncio.timeout(plan.timeout):
                status, headers, payload = await bi.read_response(conn.reader)
        except asyncio.CancelledError:
            if conn is not None:
                pool.discard(conn)
            return
        except (OSError, EOFError, TimeoutError, ValueError, IndexError) as error:
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
        statuses[status] += 1
        if status == 200:
            answer = json.loads(payload)
            acked["events"] += plan.per_request
            acked["requests"] += 1
            acked["joined"] += answer.get("joined", 0)
            acked["pending"] += answer.get("pending", 0)
            acked["last_ack"] = max(acked["last_ack"], done - start - plan.delay)

    tasks: set[asyncio.Task[None]] = set()
    for i in range(plan.requests):
        due = start + plan.delay + i / plan.rate
        delay = due - clock()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(fire(i, due))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        deadline = start + plan.delay + plan.seconds + plan.drain
        _, pending = await asyncio.wait(set(tasks), timeout=max(0.0, deadline - clock()))
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)
    pool.close()
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    window = max(plan.seconds, acked["last_ack"])
    return {
        "offered_ev_s": plan.rate * plan.per_request,
        "sustained_ev_s": acked["events"] / window if window else 0.0,
        "acked_events": acked["events"],
        "joined": acked["joined"],
        "pending": acked["pending"],
        "p50": 1000 * bi.percentile(latency, 0.50),
        "p99": 1000 * bi.percentile(latency, 0.99),
        "statuses": dict(statuses),
        "errors": dict(errors),
        "generator_cpu_s": (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime),
    }


def label_loadgen_main(spec_path: str, out_path: str) -> int:
    plan = LabelPlan(**json.loads(Path(spec_path).read_text()))
    try:
        import uvloop

        runner: Any = uvloop.run
    except ImportError:
        runner = asyncio.run
    Path(out_path).write_text(json.dumps(runner(generate_labels(plan))))
    return 0


def ingest_run(
    fold_interval: float, run: int, work: Path, args: argparse.Namespace
) -> dict[str, Any]:
    import duckdb

    tmp = work / f"ingest-{run}-fold{fold_interval:g}"
    tmp.mkdir()
    db, log, config = tmp / "live.duckdb", tmp / "serve.log", tmp / "config.yaml"
    config.write_text(f"monitoring:\n  fold_interval: {fold_interval:g}\n")
    server = LiveServer(db, log, config, start_timeout=60)
    scenario = bi.Scenario(
        "batch", args.batch, args.ingest_rate / args.batch, args.ingest_seconds,
        connections=args.connections, prefix="b", drain=args.drain,
    )  # fmt: skip
    scenario.port = server.port
    files = {
        name: tmp / name
        for name in ("spec.json", "out.json", "ready", "lspec.json", "lout.json", "lready")
    }
    files["spec.json"].write_text(json.dumps(asdict(scenario)))
    label_gen = None
    stride = round(1 / args.label_share) if args.label_share > 0 else 0
    if stride:
        plan = LabelPlan(
            port=server.port, rate=scenario.rate, seconds=scenario.seconds, batch=args.batch,
            stride=stride, delay=args.label_delay, prefix=scenario.prefix, seed=scenario.seed,
            drain=args.drain, predictions_ready=str(files["ready"]), ready=str(files["lready"]),
        )  # fmt: skip
        files["lspec.json"].write_text(json.dumps(asdict(plan)))
        label_gen = subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--label-loadgen",
                str(files["lspec.json"]),
                str(files["lout.json"]),
            ]
        )
        while not files["lready"].exists() and label_gen.poll() is None:
            time.sleep(0.05)
    sampler = bi.Sampler(server.pid, 0.25)
    sampler.start()
    generator = subprocess.Popen(
        [sys.executable, str(HERE / "bench_ingest.py"), "--loadgen", str(files["spec.json"]),
         str(files["out.json"]), str(files["ready"])]
    )  # fmt: skip
    try:
        limit = scenario.seconds + args.label_delay + scenario.drain + 600
        if generator.wait(limit) != 0:
            raise RuntimeError("the prediction load generator failed")
        if label_gen is not None and label_gen.wait(limit) != 0:
            raise RuntimeError("the label load generator failed")
        sampler.stop()
        stopped = time.monotonic()
        exit_code = server.stop(signal.SIGTERM)
        stop_s = time.monotonic() - stopped
    finally:
        for process in (generator, label_gen):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()
        server.stop(signal.SIGKILL)
    result = json.loads(files["out.json"].read_text())
    summary = bi.summarise(result)
    labels = json.loads(files["lout.json"].read_text()) if label_gen is not None else None
    window = sampler.between(result["mono_start"], result["mono_end"])
    with duckdb.connect(str(db), read_only=True) as con:
        stored = dict(
            zip(
                (
                    "predictions",
                    "labels",
                    "pending",
                    "joined",
                    "bucket_predictions",
                    "bucket_labelled",
                ),
                con.execute(
                    "SELECT (SELECT count(*) FROM predictions), (SELECT count(*) FROM labels), "
                    "(SELECT count(*) FROM pending_labels), "
                    "(SELECT count(*) FROM labels l JOIN predictions p ON p.fp = l.fp "
                    " AND p.request_id = l.request_id AND p.model = l.model), "
                    "(SELECT coalesce(sum(n_predictions), 0) FROM bucket_scores "
                    " WHERE cohort_key = ''), "
                    "(SELECT coalesce(sum(n_labelled), 0) FROM bucket_scores WHERE cohort_key = '')"
                ).fetchone(),
                strict=True,
            )
        )
    acked_labels = labels["acked_events"] if labels else 0
    out = {
        "fold_interval": fold_interval,
        "offered_predictions_ev_s": summary["offered_ev_s"],
        "offered_labels_ev_s": labels["offered_ev_s"] if labels else 0.0,
        "predictions_ev_s": summary["sustained_ev_s"],
        "labels_ev_s": labels["sustained_ev_s"] if labels else 0.0,
        "p50_ms": summary["p50"],
        "p99_ms": summary["p99"],
        "label_p50_ms": labels["p50"] if labels else None,
        "label_p99_ms": labels["p99"] if labels else None,
        "statuses": result["statuses"],
        "label_statuses": labels["statuses"] if labels else {},
        "errors": {
            **result["errors"],
            **result["unfinished"],
            **(labels["errors"] if labels else {}),
        },
        "acked_predictions": summary["acked_events"],
        "acked_labels": acked_labels,
        "server_cpu": (
            (window[-1][2] - window[0][2]) / (window[-1][0] - window[0][0])
            if len(window) > 1
            else 0.0
        ),
        "rss_peak_mb": max((s[1] for s in sampler.samples), default=0.0),
        "stop_s": stop_s,
        "exit_code": exit_code,
        "stored": stored,
        "db_bytes": db_bytes(db),
    }
    out["total_ev_s"] = out["predictions_ev_s"] + out["labels_ev_s"]
    problems = []
    if stored["predictions"] < out["acked_predictions"] or stored["labels"] < acked_labels:
        problems.append("fewer stored rows than acknowledged events")
    if fold_interval:
        if stored["bucket_predictions"] != stored["predictions"]:
            problems.append(
                f"buckets count {stored['bucket_predictions']:,} predictions "
                f"of {stored['predictions']:,}"
            )
        if stored["bucket_labelled"] != stored["joined"]:
            problems.append(
                f"buckets count {stored['bucket_labelled']:,} labelled "
                f"of {stored['joined']:,} joined"
            )
    elif stored["bucket_predictions"]:
        problems.append("buckets were folded with fold_interval 0")
    out["problems"] = problems
    shutil.rmtree(tmp, ignore_errors=True)
    return out


def section_ingest(work: Path, args: argparse.Namespace) -> dict[str, Any]:
    runs = []
    order = []
    for r in range(args.ingest_repeats):  # alternate, so slow drift of the machine hits both
        order += [0.0, 1.0] if r % 2 == 0 else [1.0, 0.0]
    for run, interval in enumerate(order):
        label = (
            "with bucket maintenance (fold_interval 1)" if interval else "without (fold_interval 0)"
        )
        print(f"  run {run + 1}/{len(order)}: {label} ...", flush=True)
        r = ingest_run(interval, run, work, args)
        runs.append(r)
        print(
            f"    predictions {r['predictions_ev_s']:,.0f}/s (p50 {r['p50_ms']:.0f} ms, p99 "
            f"{r['p99_ms']:.0f} ms) + labels {r['labels_ev_s']:,.0f}/s = {r['total_ev_s']:,.0f} "
            f"events/s; server CPU {100 * r['server_cpu']:.0f}%, "
            f"RSS peak {r['rss_peak_mb']:.0f} MB; "
            f"stored {r['stored']['predictions']:,} + {r['stored']['labels']:,}, in buckets "
            f"{r['stored']['bucket_predictions']:,} / {r['stored']['bucket_labelled']:,} labelled"
            + (f"; PROBLEMS: {'; '.join(r['problems'])}" if r["problems"] else "")
            + (f"; errors {r['errors']}" if r["errors"] else ""),
            flush=True,
        )
    out: dict[str, Any] = {"runs": runs}
    for interval, name in ((1.0, "on"), (0.0, "off")):
        mine = [r for r in runs if r["fold_interval"] == interval]
        out[name] = {
            key: statistics.median(r[key] for r in mine)
            for key in (
                "predictions_ev_s",
                "labels_ev_s",
                "total_ev_s",
                "p50_ms",
                "p99_ms",
                "server_cpu",
            )
        }
    out["ratio_total"] = out["on"]["total_ev_s"] / out["off"]["total_ev_s"]
    out["ratio_predictions"] = out["on"]["predictions_ev_s"] / out["off"]["predictions_ev_s"]
    out["labels_sent"] = args.label_share > 0
    return out


# --- section 4: offline drift (another script) --------------------------------------------


def section_drift_offline(args: argparse.Namespace) -> dict[str, Any]:
    script = HERE / "bench_drift_offline.py"
    if not script.exists():
        print(f"  {script.name} is missing: section skipped", flush=True)
        return {"missing": True}
    command = [
        args.drift_python or sys.executable,
        str(script),
        *(["--quick"] if args.quick else []),
    ]
    command += args.drift_args
    print(f"  $ {' '.join(command)}", flush=True)
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, timeout=args.drift_timeout)
    seconds = time.perf_counter() - started
    lines = done.stdout.splitlines()
    table = [line for line in lines if line.startswith("|")]
    verdicts = [line for line in lines if line.startswith(("MET", "MISS"))]
    for line in table + verdicts:
        print(f"  {line}")
    if done.returncode:
        print(f"  exit code {done.returncode}; stderr tail:\n{done.stderr[-1500:]}")
    return {
        "command": command,
        "exit_code": done.returncode,
        "seconds": seconds,
        "table": table,
        "verdicts": verdicts,
        "stdout": done.stdout[-20000:],
        "stderr_tail": done.stderr[-3000:],
    }


# --- the report ---------------------------------------------------------------------------


def verdict(met: bool) -> str:
    return "MET " if met else "MISS"


def report(results: dict[str, Any], args: argparse.Namespace) -> list[tuple[str, bool, str]]:
    checks: list[tuple[str, bool, str]] = []
    rows: list[tuple[str, str]] = []
    load = results.get("load")
    if load:
        rows += [
            ("predictions / labels loaded", f"{load['events']:,} / {load['labels']:,}"),
            ("generation (not timed below)", f"{load['generate_s']:.1f} s"),
            ("bulk load (EventStore.write + checkpoint)",
             f"{load['write_s'] + load['checkpoint_s']:.1f} s = "
             f"{load['load_events_s']:,.0f} events/s"),
            ("fold (update_buckets, all events)",
             f"{load['fold_s']:.1f} s + compaction {load['compact_s']:.1f} s = "
             f"{load['fold_events_s']:,.0f} events/s "
             f"({load['fold_predictions_s']:,.0f} predictions/s)"),
            ("database size", f"{load['db_bytes'] / 1e6:,.0f} MB (events only: "
             f"{load['raw_db_bytes'] / 1e6:,.0f} MB)"),
            ("bytes per million events",
             f"{load['bytes_per_m_events'] / 1e6:,.1f} MB (events only: "
             f"{load['raw_bytes_per_m_events'] / 1e6:,.1f} MB)"),
            ("bucket_scores rows (model / segment / region)",
             f"{load['buckets'].get('bucket_scores', 0):,} ("
             + " / ".join(f"{load['buckets'].get(f'bucket_scores[{k}]', 0):,}"
                          for k in ("model", "segment", "region")) + ")"),
            ("bucket_features rows", f"{load['buckets'].get('bucket_features', 0):,}"),
        ]  # fmt: skip
    query = results.get("query")
    if query:
        rows.append(("server start on the loaded file", f"{query['server_start_s']:.1f} s"))
        for kind, s in query["latency_ms"].items():
            rows.append((f"{kind} (n={s['n']})",
                         f"p50 {s['p50']:.1f} ms, p99 {s['p99']:.1f} ms, "
                         f"max {s['max']:.1f} ms"))  # fmt: skip
            if "whole model" in kind:
                continue  # informational
            checks.append((f"{kind}: p50 < {P50_TARGET_MS:.0f} ms", s["p50"] < P50_TARGET_MS,
                           f"{s['p50']:.1f} ms"))  # fmt: skip
            checks.append((f"{kind}: p99 < {P99_TARGET_MS:.0f} ms", s["p99"] < P99_TARGET_MS,
                           f"{s['p99']:.1f} ms"))  # fmt: skip
        c = query["check"]
        rows.append(("check: n_predictions served / DuckDB",
                     f"{c['served_n_predictions']:,} / {c['raw_n_predictions']:,}"))  # fmt: skip
        rows.append(("check: log_loss served / sklearn",
                     f"{c['served_log_loss']!r} / {c['sklearn_log_loss']!r} "
                     f"(rel. err {c['log_loss_rel_err']:.1e})"))  # fmt: skip
        checks.append((
            f"segment:{c['segment']} 24h n_predictions equals the raw count; n_labelled too",
            c["served_n_predictions"] == c["raw_n_predictions"]
            and c["served_n_labelled"] == c["raw_n_labelled"],
            f"{c['served_n_predictions']:,} vs {c['raw_n_predictions']:,}; "
            f"{c['served_n_labelled']:,} vs {c['raw_n_labelled']:,}",
        ))  # fmt: skip
        checks.append((
            f"segment:{c['segment']} 24h log_loss equals sklearn's to 1e-9 relative",
            c["log_loss_rel_err"] <= 1e-9,
            f"rel. err {c['log_loss_rel_err']:.1e} (brier {c['brier_rel_err']:.1e})",
        ))  # fmt: skip
        checks.append((
            f"drift answer covers {args.features} features; series has 168 points",
            query["drift_features"] == args.features and query["series_points"] == 168,
            f"{query['drift_features']} features, {query['series_points']} points",
        ))  # fmt: skip
    ingest = results.get("ingest")
    if ingest:
        for name, label in (
            ("off", "live ingestion without buckets"),
            ("on", "live ingestion with buckets"),
        ):
            m = ingest[name]
            rows.append((f"{label} (median of {args.ingest_repeats})",
                         f"{m['total_ev_s']:,.0f} events/s = "
                         f"{m['predictions_ev_s']:,.0f} predictions "
                         f"+ {m['labels_ev_s']:,.0f} labels; p50 {m['p50_ms']:.0f} ms, p99 "
                         f"{m['p99_ms']:.0f} ms; "
                         f"server CPU {100 * m['server_cpu']:.0f}%"))  # fmt: skip
        rows.append(("ratio with / without (events; predictions)",
                     f"{ingest['ratio_total']:.2f}; "
                     f"{ingest['ratio_predictions']:.2f}"))  # fmt: skip
        offered = ingest["runs"][0]
        checks.append((
            "live ingestion with bucket maintenance >= 70% of the rate without it",
            ingest["ratio_total"] >= RATIO_TARGET,
            f"{ingest['ratio_total']:.2f} ({ingest['on']['total_ev_s']:,.0f} vs "
            f"{ingest['off']['total_ev_s']:,.0f} events/s; offered "
            f"{offered['offered_predictions_ev_s']:,.0f} predictions + "
            f"{offered['offered_labels_ev_s']:,.0f} labels/s)",
        ))  # fmt: skip
        problems = [p for r in ingest["runs"] for p in r["problems"]]
        checks.append((
            "live runs: stored >= acknowledged; buckets == stored events (fold on), empty (off)",
            not problems, "; ".join(problems) or "ok",
        ))  # fmt: skip
    print("\n| figure | value |")
    print("|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")
    drift = results.get("drift_offline")
    if drift:
        print("\nOffline drift (benchmarks/bench_drift_offline.py):")
        if drift.get("missing"):
            print("  bench_drift_offline.py is missing: not run")
        else:
            for line in drift["table"] + drift["verdicts"]:
                print(f"  {line}")
            if drift["exit_code"]:
                print(f"  (exit code {drift['exit_code']})")
    return checks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2e5 events, 5 s ingestion runs")
    parser.add_argument(
        "--sections", nargs="+", default=["load", "query", "ingest", "drift-offline"],
        choices=["load", "query", "ingest", "drift-offline"],
    )  # fmt: skip
    parser.add_argument("--events", type=float, help="predictions to load (default 1e7)")
    parser.add_argument("--chunk", type=int, help="predictions per EventStore.write call")
    parser.add_argument("--days", type=float, default=7.0)
    parser.add_argument("--cohorts", type=int, default=100)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--load-memory", default=None, help="DuckDB memory_limit of the bulk load")
    parser.add_argument("--db", type=Path, help="use this loaded file (skips the load section)")
    parser.add_argument("--keep", type=Path, help="keep the loaded database at this path")
    parser.add_argument("--rounds", type=int, help="rounds over every cohort (default 3)")
    parser.add_argument("--repeat", type=int, help="requests per other query kind (default 30)")
    parser.add_argument("--ingest-rate", type=float, default=40_000, help="predictions/s offered")
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--ingest-seconds", type=float, help="per run (default 30)")
    parser.add_argument(
        "--ingest-repeats", type=int, help="runs per setting, alternated (default 2)"
    )
    parser.add_argument("--label-share", type=float, default=0.5, help="0: predictions only")
    parser.add_argument(
        "--label-delay", type=float, default=2.0, help="seconds after the predictions"
    )
    parser.add_argument("--connections", type=int, default=256)
    parser.add_argument("--drain", type=float, default=30.0)
    parser.add_argument("--drift-python", help="interpreter for bench_drift_offline.py")
    parser.add_argument("--drift-args", nargs=argparse.REMAINDER, default=[],
                        help="the rest is passed to bench_drift_offline.py")  # fmt: skip
    parser.add_argument("--drift-timeout", type=float, default=1800)
    parser.add_argument(
        "--profile", type=Path, help="cProfile the fold, py-spy the queries, into DIR"
    )
    parser.add_argument("--json", type=Path, help="save every figure here")
    args = parser.parse_args(argv)
    quick = args.quick
    args.events = int(args.events or (2e5 if quick else 1e7))
    args.chunk = args.chunk or (50_000 if quick else 250_000)
    args.rounds = args.rounds or (2 if quick else 3)
    args.repeat = args.repeat or (5 if quick else 30)
    args.ingest_seconds = args.ingest_seconds or (5.0 if quick else 30.0)
    args.ingest_repeats = args.ingest_repeats or (1 if quick else 2)
    if quick:
        args.drain = min(args.drain, 5.0)

    began = time.perf_counter()
    load_avg = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"xebench monitoring benchmark: {os.cpu_count()} cores (load average {load_avg}); "
        f"{args.events:,} predictions, {args.cohorts} cohorts, {args.features} features, "
        f"{args.days:g} days",
        flush=True,
    )
    spec = DataSpec(
        events=args.events, end=datetime.now(UTC).replace(microsecond=0), days=args.days,
        cohorts=args.cohorts, features=args.features, chunk=args.chunk,
    )  # fmt: skip
    results: dict[str, Any] = {"args": {k: str(v) for k, v in vars(args).items()}}
    work = Path(tempfile.mkdtemp(prefix="xebench-monitoring-"))
    db = args.db or (args.keep if args.keep else work / "monitoring.duckdb")
    timings: dict[str, float] = {}
    try:
        if "load" in args.sections and args.db is None:
            if db.exists():
                raise SystemExit(f"{db} exists: remove it or pass it with --db")
            print("\n1. bulk load and fold", flush=True)
            t0 = time.perf_counter()
            results["load"] = section_load(spec, db, work, args)
            timings["load"] = time.perf_counter() - t0
        if "query" in args.sections:
            if not db.exists():
                raise SystemExit("the query section needs the load section or --db")
            print("\n2. queries through the HTTP service", flush=True)
            t0 = time.perf_counter()
            results["query"] = section_query(spec, db, work, args)
            timings["query"] = time.perf_counter() - t0
        if "ingest" in args.sections:
            print(
                f"\n3. live ingestion with and without bucket maintenance: "
                f"{args.ingest_rate:,.0f} predictions/s in batches of {args.batch}"
                + (f" + labels for 1 in {round(1 / args.label_share)}" if args.label_share > 0
                   else " (predictions only)")
                + f", {args.ingest_seconds:g} s per run",
                flush=True,
            )  # fmt: skip
            t0 = time.perf_counter()
            results["ingest"] = section_ingest(work, args)
            timings["ingest"] = time.perf_counter() - t0
        if "drift-offline" in args.sections:
            print("\n4. offline drift (bench_drift_offline.py)", flush=True)
            t0 = time.perf_counter()
            results["drift_offline"] = section_drift_offline(args)
            timings["drift_offline"] = time.perf_counter() - t0
    finally:
        shutil.rmtree(work, ignore_errors=True)
    results["section_seconds"] = timings
    results["total_seconds"] = time.perf_counter() - began
    checks = report(results, args)
    results["checks"] = [{"target": t, "met": m, "value": v} for t, m, v in checks]
    for prof in ("fold_profile", "query_profile"):
        for section in ("load", "query"):
            if prof in results.get(section, {}):
                print(f"\n{prof.replace('_', ' ')}:")
                print("\n".join(results[section][prof]))
    print(
        "\nsection times: "
        + ", ".join(f"{k} {v:.0f} s" for k, v in timings.items())
        + f"; total {results['total_seconds']:.0f} s; load average at the end "
        + " / ".join(f"{x:.1f}" for x in os.getloadavg())
    )
    for text, met, value in checks:
        print(f"{verdict(met)} {text}: {value}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))
        print(f"\nsaved {args.json}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--label-loadgen":
        sys.exit(label_loadgen_main(*sys.argv[2:]))
    sys.exit(main())
