"""Token log-probs from Parquet in bounded memory: xebench vs bare NumPy and DuckDB passes.

Writes (once; cached in ``--dir``) a Parquet file of ``--tokens`` token
log-probabilities (default 1e8, ``--quick`` 1e7): one row per sequence of 1
to 199 tokens (about 100 on average), with the columns ``text_id``,
``token_logprobs`` (``list<float32>``, as serving stacks return them),
``n_bytes`` and a ``domain`` cohort column. The file is written row group by
row group, so generating it needs little memory too. Then, each in a fresh
process so its time and peak RSS (``ru_maxrss``, ``VmHWM``) are its own:

- **xebench**: ``scan_token_stats(path)`` -- validation of every value, the
  per-sequence sums, ``TokenStats`` and its ratio-estimator intervals;
- **bare NumPy**: ``pyarrow`` ``iter_batches`` per row group, flatten the list
  column, sum it and the byte counts: the floor for a Python user, with no
  validation, no per-sequence sums and no intervals;
- **bare DuckDB**: ``SELECT sum(list_sum(...)), sum(len(...)), sum(n_bytes)``
  over ``read_parquet``: the same totals in SQL (DuckDB uses every core).

It prints seconds (the pass itself, after imports, and the whole process),
tokens per second, peak RSS and the ratios xebench / NumPy and xebench /
DuckDB; checks that the three agree on the totals (tokens, sequences and
bytes exactly, the NLL to 1e-9 relative) and prints MET / MISS for a peak RSS
below 500 MB. Needs ``duckdb`` (``pip install duckdb``); without it the
DuckDB run is skipped. The 1e8 file is about 0.5 GB.

Usage::

    python benchmarks/bench_tokens.py                  # 1e8 tokens
    python benchmarks/bench_tokens.py --quick          # 1e7 tokens
    python benchmarks/bench_tokens.py --tokens 2e6 --dir /tmp/tokens --repeat 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

#: Sequences per row group: about 6.5e6 tokens, 26 MB of float32 per group.
ROW_GROUP = 65_536
DOMAINS = np.array(["web", "code", "books", "chat"])
RSS_TARGET_MB = 500.0
#: Bumped whenever the generated file changes, so a cached file is not reused.
FILE_VERSION = "1"

SCHEMA = pa.schema(
    [
        ("text_id", pa.string()),
        ("token_logprobs", pa.list_(pa.float32())),
        ("n_bytes", pa.int64()),
        ("domain", pa.string()),
    ]
)

# Each method prints one JSON line: the pass's own seconds, its totals, peak RSS.
PEAK = """
import resource
def peak_mb():
    hwm = 0.0
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    hwm = int(line.split()[1]) / 1024
    except OSError:
        pass
    # Linux keeps ru_maxrss across exec (a child of a 3 GB parent reports 3 GB);
    # VmHWM is the new process's own. ru_maxrss only where there is no /proc.
    return hwm or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
"""

XEBENCH_SCRIPT = (
    PEAK
    + """
import json, sys, time
from xebench.offline.token_scan import scan_token_stats
start = time.perf_counter()
stats = scan_token_stats(sys.argv[1])
result = stats.result()
seconds = time.perf_counter() - start
print(json.dumps({
    "seconds": seconds, "n_sequences": stats.n_sequences, "n_tokens": stats.n_tokens,
    "nll": stats.nll_sum, "n_bytes": int(stats.n_bytes), "peak_mb": peak_mb(),
    "ce": result["pooled_cross_entropy"], "ce_ci": result["pooled_cross_entropy_ci"],
    "bpb": result["bits_per_byte"], "bpb_ci": result["bits_per_byte_ci"],
}))
"""
)

NUMPY_SCRIPT = (
    PEAK
    + """
import json, sys, time
import numpy as np
import pyarrow.parquet as pq
start = time.perf_counter()
parquet = pq.ParquetFile(sys.argv[1])
nll = 0.0
n_sequences = n_tokens = n_bytes = 0
for group in range(parquet.num_row_groups):  # per row group: see io/chunks.py
    for batch in parquet.iter_batches(
        batch_size=65_536, row_groups=[group], columns=["token_logprobs", "n_bytes"]
    ):
        flat = batch.column(0).flatten().to_numpy()
        nll -= float(flat.sum(dtype=np.float64))
        n_tokens += flat.size
        n_sequences += batch.num_rows
        n_bytes += int(batch.column(1).to_numpy().sum())
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "n_sequences": n_sequences, "n_tokens": n_tokens,
                  "nll": nll, "n_bytes": n_bytes, "peak_mb": peak_mb()}))
"""
)

DUCKDB_SCRIPT = (
    PEAK
    + """
import json, sys, time
import duckdb
start = time.perf_counter()
query = '''
SELECT count(*), sum(len(token_logprobs)), -sum(list_sum(token_logprobs::DOUBLE[])),
       sum(n_bytes)
FROM read_parquet($path)
'''
n_sequences, n_tokens, nll, n_bytes = duckdb.execute(query, {"path": sys.argv[1]}).fetchone()
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "n_sequences": n_sequences, "n_tokens": int(n_tokens),
                  "nll": float(nll), "n_bytes": int(n_bytes), "peak_mb": peak_mb()}))
"""
)

METHODS = {"xebench": XEBENCH_SCRIPT, "bare NumPy": NUMPY_SCRIPT, "bare DuckDB": DUCKDB_SCRIPT}


def write_tokens(path: Path, tokens: int, seed: int = 0) -> int:
    """Write ``tokens`` log-probabilities, one row group at a time; returns the rows.

    Sequence lengths are uniform on 1..199 (the last one cut to hit ``tokens``
    exactly); log-probabilities are -Exponential(mean 2 nats), a few below -10
    (extremal); ``n_bytes`` is about 4 bytes per token.
    """
    rng = np.random.default_rng(seed)
    partial = path.with_name(path.name + ".partial")  # a killed run leaves no bad cache
    rows = done = 0
    with pq.ParquetWriter(partial, SCHEMA) as writer:
        while done < tokens:
            lengths = rng.integers(1, 200, size=ROW_GROUP)
            ends = np.cumsum(lengths)
            if done + ends[-1] >= tokens:  # the last group: stop at exactly `tokens`
                last = int(np.searchsorted(ends, tokens - done))
                lengths = lengths[: last + 1]
                lengths[-1] -= done + int(lengths.sum()) - tokens
            n = lengths.size
            offsets = np.concatenate(([0], np.cumsum(lengths))).astype(np.int32)
            values = (-rng.exponential(2.0, size=int(offsets[-1]))).astype(np.float32)
            column = pa.ListArray.from_arrays(pa.array(offsets), pa.array(values))
            n_bytes = lengths * 4 + rng.integers(-2, 3, size=n)
            table = pa.table(
                {
                    "text_id": pa.array(np.char.add("doc-", np.arange(rows, rows + n).astype(str))),
                    "token_logprobs": column,
                    "n_bytes": n_bytes.astype(np.int64),
                    "domain": DOMAINS[rng.integers(0, len(DOMAINS), size=n)],
                },
                schema=SCHEMA,
            )
            writer.write_table(table, row_group_size=ROW_GROUP)
            rows += n
            done += int(offsets[-1])
    partial.replace(path)
    return rows


def token_file(directory: Path, tokens: int) -> Path:
    """The cached file of ``tokens`` log-probabilities in ``directory`` (written if missing)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"tokens_{tokens}_v{FILE_VERSION}.parquet"
    if path.exists():
        print(f"{tokens:.0e} tokens: cached {path} ({path.stat().st_size / 1e9:.2f} GB)")
        return path
    start = time.perf_counter()
    rows = write_tokens(path, tokens)
    print(
        f"{tokens:.0e} tokens: wrote {rows:,} sequences, {path.stat().st_size / 1e9:.2f} GB "
        f"in {time.perf_counter() - start:.0f} s",
        flush=True,
    )
    return path


def run_method(script: str, path: Path) -> dict[str, float]:
    """One method in a fresh process: its JSON line plus the whole process's seconds."""
    start = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", script, str(path)], capture_output=True, text=True, check=False
    )
    wall = time.perf_counter() - start
    if out.returncode != 0:
        raise RuntimeError(f"failed ({out.returncode}):\n{out.stderr[-3000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["process_seconds"] = wall
    return result


def measure(path: Path, repeat: int, methods: dict[str, str]) -> dict[str, dict[str, float]]:
    """Each method ``repeat`` times (interleaved), the run of median pass time kept."""
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in methods}
    for _ in range(repeat):
        for name, script in methods.items():
            runs[name].append(run_method(script, path))
            last = runs[name][-1]
            print(f"  {name:<12} {last['seconds']:7.2f} s  {last['peak_mb']:6.0f} MB", flush=True)
    kept = {}
    for name, results in runs.items():
        middle = statistics.median_low([r["seconds"] for r in results])
        kept[name] = next(r for r in results if r["seconds"] == middle)
        kept[name]["peak_mb"] = max(r["peak_mb"] for r in results)
    return kept


def check_totals(results: dict[str, dict[str, float]], rel: float = 1e-9) -> list[str]:
    """Disagreements between the methods' totals (empty when they agree)."""
    problems = []
    ours = results["xebench"]
    for name, other in results.items():
        for key in ("n_sequences", "n_tokens", "n_bytes"):
            if other[key] != ours[key]:
                problems.append(f"{name} {key} {other[key]} != xebench {ours[key]}")
        if abs(other["nll"] - ours["nll"]) > rel * abs(ours["nll"]):
            problems.append(f"{name} NLL {other['nll']!r} != xebench {ours['nll']!r}")
    return problems


def report(tokens: int, results: dict[str, dict[str, float]]) -> bool:
    """Print the table, the ratios and the targets; True when every check passed."""
    print("\n| method | tokens | pass s | process s | tokens/s | peak RSS MB | xebench / this |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    ours = results["xebench"]
    for name, r in results.items():
        ratio = "" if name == "xebench" else f"{ours['seconds'] / r['seconds']:.2f}"
        print(
            f"| {name} | {tokens:.0e} | {r['seconds']:.2f} | {r['process_seconds']:.2f} "
            f"| {tokens / r['seconds']:.3g} | {r['peak_mb']:.0f} | {ratio} |"
        )
    lo, hi = ours["ce_ci"]
    print(
        f"\nxebench: pooled cross-entropy {ours['ce']:.6f} nats/token "
        f"[{lo:.6f}, {hi:.6f}], bits per byte {ours['bpb']:.6f}"
    )
    problems = check_totals(results)
    for problem in problems:
        print(f"MISMATCH {problem}")
    if not problems:
        print(f"totals agree: {len(results)} methods, NLL to 1e-9 relative, counts exactly")
    met = ours["peak_mb"] < RSS_TARGET_MB
    print(
        f"{'MET ' if met else 'MISS'} xebench peak RSS < {RSS_TARGET_MB:.0f} MB at "
        f"{tokens:.0e} tokens: {ours['peak_mb']:.0f} MB"
    )
    for name in results:
        if name != "xebench":
            print(f"ratio xebench / {name}: {ours['seconds'] / results[name]['seconds']:.2f}x")
    return met and not problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=float, default=1e8)
    parser.add_argument("--quick", action="store_true", help="1e7 tokens")
    parser.add_argument("--dir", type=Path, help="where the file is cached")
    parser.add_argument("--repeat", type=int, default=1, help="runs per method (median)")
    args = parser.parse_args(argv)
    tokens = int(1e7 if args.quick else args.tokens)
    directory = args.dir or Path(tempfile.gettempdir()) / "xebench-bench-tokens"
    path = token_file(directory, tokens)
    methods = dict(METHODS)
    try:
        import duckdb  # noqa: F401
    except ImportError:
        print("duckdb is not installed: the DuckDB run is skipped")
        methods.pop("bare DuckDB")
    results = measure(path, max(args.repeat, 1), methods)
    return 0 if report(tokens, results) else 1


if __name__ == "__main__":
    sys.exit(main())
