"""`xebench bench` on large Parquet files: throughput and peak memory.

In one run it writes synthetic binary Parquet files (label + two models'
P(class 1), written in row groups so generating them needs little memory),
then, each in a fresh subprocess so peak RSS is its own:

- ``xebench bench`` on ``--rows`` rows (default 1e8: the issue's target is
  under 2 GB peak RSS, because the file is read in batches);
- ``xebench bench`` and what a user would otherwise run --
  ``pandas.read_parquet`` + ``sklearn.metrics.log_loss`` / ``brier_score_loss``
  per model -- on ``--compare-rows`` rows (default 1e7; scikit-learn needs
  the whole file in memory, several times over).

It prints rows per second, peak RSS and the ratios. Files go to a temporary
directory (about 1.7 GB per 1e8 rows) and are removed afterwards.

Usage::

    python benchmarks/bench_bench.py                 # 1e8 rows (several minutes)
    python benchmarks/bench_bench.py --rows 20000000 # quicker
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROW_GROUP = 1_000_000

SKLEARN_SCRIPT = """
import sys, pandas as pd
from sklearn.metrics import log_loss, brier_score_loss
df = pd.read_parquet(sys.argv[1])
for column in ("a", "b"):
    log_loss(df["y"], df[column]); brier_score_loss(df["y"], df[column])
"""

MEASURE = """
import resource, subprocess, sys, time
start = time.perf_counter()
code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode
seconds = time.perf_counter() - start
peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(code, seconds, peak_kb)
"""


def write_parquet(path: Path, rows: int, seed: int = 0) -> None:
    """A binary data set: label y and two models a (calibrated) and b (noisier)."""
    rng = np.random.default_rng(seed)
    schema = pa.schema([("y", pa.int8()), ("a", pa.float64()), ("b", pa.float64())])
    with pq.ParquetWriter(path, schema) as writer:
        for start in range(0, rows, ROW_GROUP):
            n = min(ROW_GROUP, rows - start)
            p = rng.uniform(0.01, 0.99, size=n)
            y = (rng.uniform(size=n) < p).astype(np.int8)
            b = np.clip(p + rng.normal(0, 0.05, size=n), 0.001, 0.999)
            writer.write_table(pa.table({"y": y, "a": p, "b": b}, schema=schema))


def measure(command: list[str]) -> tuple[float, float]:
    """(seconds, peak RSS in MB) of a command run in a fresh process."""
    out = subprocess.run(
        [sys.executable, "-c", MEASURE, *command], capture_output=True, text=True, check=True
    ).stdout.split()
    code, seconds, peak_kb = int(out[0]), float(out[1]), float(out[2])
    if code != 0:
        raise SystemExit(f"command failed with exit code {code}: {' '.join(command)}")
    return seconds, peak_kb / 1024


def xebench_command(path: Path) -> list[str]:
    return [
        sys.executable, "-m", "xebench", "bench", str(path),
        "--label", "y", "--prob", "a", "--prob", "b", "--quiet",
    ]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=float, default=1e8, help="rows of the large file")
    parser.add_argument("--compare-rows", type=float, default=1e7, help="rows for the comparison")
    args = parser.parse_args(argv)
    rows, compare_rows = int(args.rows), int(args.compare_rows)
    with tempfile.TemporaryDirectory() as tmp:
        small, large = Path(tmp) / "small.parquet", Path(tmp) / "large.parquet"
        start = time.perf_counter()
        write_parquet(small, compare_rows)
        write_parquet(large, rows, seed=1)
        print(f"wrote {compare_rows:.0e} + {rows:.0e} rows in {time.perf_counter() - start:.0f} s")
        print(
            f"file sizes: {small.stat().st_size / 1e9:.2f} GB, "
            f"{large.stat().st_size / 1e9:.2f} GB\n"
        )
        xb_small = measure(xebench_command(small))
        sk_small = measure([sys.executable, "-c", SKLEARN_SCRIPT, str(small)])
        xb_large = measure(xebench_command(large))

    print("| run | rows | seconds | rows/s | peak RSS MB |")
    print("|---|---|---|---|---|")
    for name, n, (seconds, peak) in (
        ("xebench bench", compare_rows, xb_small),
        ("pandas + sklearn", compare_rows, sk_small),
        ("xebench bench", rows, xb_large),
    ):
        print(f"| {name} | {n:.0e} | {seconds:.1f} | {n / seconds:.3g} | {peak:.0f} |")
    print()
    print(
        f"speed, xebench vs pandas + sklearn at {compare_rows:.0e} rows: "
        f"{sk_small[0] / xb_small[0]:.1f}x faster, {sk_small[1] / xb_small[1]:.1f}x less memory"
    )
    verdict = "MET " if xb_large[1] < 2048 else "MISS"
    print(f"{verdict} peak RSS under 2 GB at {rows:.0e} rows: {xb_large[1]:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
