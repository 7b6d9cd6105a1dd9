"""The bucket fold's cost per commit: deferred (``update_buckets`` after the write) vs in
the write's own transaction (``EventStore.write(fold=True)``, what the service does).

A store file is preloaded with ``--base`` predictions (about 85% labelled, 20 cohorts,
5 features, over 7 days) and folded. Then, for commits of 1, 500, 5,000 and 50,000
events of live traffic (event times within the last minute), three shapes:

- ``predictions``: new predictions, no label yet;
- ``labels``: labels naming the model for predictions of an earlier commit;
- ``mixed``: predictions and their labels in one commit.

Each shape is timed ``--repeat`` times (twice at 50,000) both ways on fresh events:
the write alone plus ``update_buckets(compact=False)`` after it, and the write with
its fold. Prints median milliseconds: write, deferred fold, write+fold, and the
fold's share of the in-transaction commit.

Usage::

    python benchmarks/bench_fold_commit.py            # ~2 minutes on 2 cores
    python benchmarks/bench_fold_commit.py --base 50000 --sizes 1 500
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_monitoring import DataSpec, make_chunk  # noqa: E402
from xebench.store import EventBatch, EventStore  # noqa: E402
from xebench.store.schema import LABEL_SCHEMA, TIMESTAMP  # noqa: E402


def live(table: pa.Table, now_us: int) -> pa.Table:
    """``table`` with event and ingest times within the minute before ``now_us``."""
    n = table.num_rows
    t = pa.array(now_us - np.arange(n)[::-1] * (60_000_000 // max(n, 1))).cast(TIMESTAMP)
    table = table.set_column(table.schema.get_field_index("event_time"), "event_time", t)
    return table.set_column(table.schema.get_field_index("ingest_time"), "ingest_time", t)


def labels_for(predictions: pa.Table, seed: int) -> pa.Table:
    """One label naming the model per prediction, a second after it."""
    n = predictions.num_rows
    label = pa.array(np.where(np.random.default_rng(seed).random(n) < 0.3, "1", "0"))
    t = pa.array(predictions["event_time"].combine_chunks().cast(pa.int64()).to_numpy() + 10**6)
    return pa.table(
        {
            "fp": predictions["fp"],
            "tenant": predictions["tenant"],
            "model": predictions["model"],
            "request_id": predictions["request_id"],
            "label": label,
            "event_time": t.cast(TIMESTAMP),
            "ingest_time": t.cast(TIMESTAMP),
            "payload_hash": pa.array(np.arange(n, dtype=np.int64) + seed * 10**9),
            "correction": np.zeros(n, dtype=bool),
        },
        schema=LABEL_SCHEMA,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=int, default=200_000)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 500, 5_000, 50_000])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    repeats = {n: args.repeat if n < 50_000 else 2 for n in args.sizes}
    pool_size = sum(6 * repeats[n] * n for n in args.sizes)
    end = datetime.now(UTC)
    spec = DataSpec(events=args.base + pool_size, end=end, cohorts=20, features=5, chunk=50_000)
    started = time.perf_counter()
    chunks = [make_chunk(spec, k) for k in range(spec.chunks)]
    predictions = pa.concat_tables([p for p, _ in chunks]).combine_chunks()
    base_labels = pa.concat_tables([lab for _, lab in chunks]).combine_chunks()
    print(f"generated {predictions.num_rows:,} events in {time.perf_counter() - started:.1f} s")
    with tempfile.TemporaryDirectory() as tmp:
        store = EventStore(Path(tmp) / "fold.duckdb")
        base = predictions.slice(0, args.base)
        for offset in range(0, args.base, 50_000):
            part = base.slice(offset, 50_000)
            ids = set(part["request_id"].to_pylist())
            mask = pa.array([r in ids for r in base_labels["request_id"].to_pylist()])
            store.write(
                [EventBatch("predictions", part), EventBatch("labels", base_labels.filter(mask))]
            )
        store.update_buckets(compact=True)
        print(f"base: {store.counts()}")
        now_us = int(end.timestamp() * 1e6)
        offset, seed = args.base, 0
        print(
            f"{'events':>7} {'shape':<12} {'write ms':>9} {'deferred fold ms':>17} "
            f"{'write+fold ms':>14} {'fold share':>10}"
        )
        for n in args.sizes:
            for shape in ("predictions", "labels", "mixed"):
                timings: dict[str, list[float]] = {"write": [], "fold": [], "both": []}
                for _ in range(repeats[n]):
                    for mode in ("deferred", "in-commit"):
                        seed += 1
                        p = live(predictions.slice(offset, n), now_us)
                        offset += n
                        lab = labels_for(p, seed)
                        if shape == "labels":  # the predictions come in an earlier commit
                            store.write([EventBatch("predictions", p)], fold=True)
                            batches = [EventBatch("labels", lab)]
                        elif shape == "predictions":
                            batches = [EventBatch("predictions", p)]
                        else:
                            batches = [EventBatch("predictions", p), EventBatch("labels", lab)]
                        t0 = time.perf_counter()
                        if mode == "deferred":
                            store.write(batches)
                            t1 = time.perf_counter()
                            store.update_buckets(compact=False)
                            t2 = time.perf_counter()
                            timings["write"].append((t1 - t0) * 1e3)
                            timings["fold"].append((t2 - t1) * 1e3)
                        else:
                            store.write(batches, fold=True)
                            timings["both"].append((time.perf_counter() - t0) * 1e3)
                write, fold, both = (
                    statistics.median(timings[k]) for k in ("write", "fold", "both")
                )
                share = max(both - write, 0.0) / both
                print(
                    f"{n:>7,} {shape:<12} {write:>9.2f} {fold:>17.2f} {both:>14.2f} {share:>10.0%}"
                )
            store.update_buckets(compact=True)
        store.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
