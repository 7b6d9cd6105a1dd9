"""`xebench bench` end to end: whole-process time and peak RSS vs the alternatives.

For each size (default 1e6, 1e7 and 1e8 rows) it writes a synthetic Parquet
file -- a binary label, two models' P(class 1) and a ``region`` cohort
column, written row group by row group so generating it needs little
memory -- and runs, each in a fresh process so time and peak RSS are its own:

- ``xebench bench FILE --label y --prob a --prob b --cohort region``;
- **pandas + scikit-learn**: ``read_parquet``, then ``log_loss``,
  ``brier_score_loss`` and ``calibration_curve`` per model, overall and per
  cohort -- what users write by hand (up to ``--sklearn-max`` rows);
- **bare DuckDB SQL**: one ``GROUP BY`` straight over the Parquet file giving,
  per model, cohort and one of 15 calibration bins, the count, the sum of
  -ln p, the Brier sum, the sum of p and the sum of y -- the same aggregates,
  with no validation, no intervals and no report: the practical speed limit;
- **Evidently**'s classification report on the ``--evidently-rows`` file
  (one report per model), run from its own virtual environment
  (``--evidently-python``; Evidently is never a dependency of xebench).

It prints a table of seconds and peak RSS and the ratios the issue sets as
targets. Needs ``duckdb``, ``pandas`` and ``scikit-learn`` in the running
environment (``pip install -e '.[test]' duckdb``). Files go to a temporary
directory (about 1.3 GB per 1e8 rows) and are removed afterwards.

Usage::

    python benchmarks/bench_cli.py                               # 1e6, 1e7, 1e8
    python benchmarks/bench_cli.py --sizes 1e6 1e7               # quicker
    python benchmarks/bench_cli.py --evidently-python /tmp/venv-evidently/bin/python
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
REGIONS = np.array(["eu", "us", "apac", "latam", "mea"])
REGION_SHARES = np.array([0.4, 0.3, 0.15, 0.1, 0.05])

SKLEARN_SCRIPT = """
import sys, pandas as pd
from sklearn.calibration import calibration_curve
from sklearn.metrics import brier_score_loss, log_loss
df = pd.read_parquet(sys.argv[1])
def scores(frame):
    for model in ("a", "b"):
        log_loss(frame["y"], frame[model], labels=[0, 1])
        brier_score_loss(frame["y"], frame[model])
        calibration_curve(frame["y"], frame[model], n_bins=15)
scores(df)
for _, cohort in df.groupby("region"):
    scores(cohort)
"""

DUCKDB_SCRIPT = """
import sys, duckdb
query = '''
WITH t AS (
    SELECT region, y, a AS p, 'a' AS model FROM read_parquet($path)
    UNION ALL
    SELECT region, y, b AS p, 'b' AS model FROM read_parquet($path)
)
SELECT model, region, least(floor(p * 15), 14) AS bin, count(*) AS n,
       sum(-ln(CASE WHEN y = 1 THEN greatest(p, 1e-15) ELSE greatest(1 - p, 1e-15) END)),
       sum((p - y) * (p - y)), sum(p), sum(y)
FROM t GROUP BY ALL
'''
rows = duckdb.execute(query, {"path": sys.argv[1]}).fetchall()
assert rows
"""

EVIDENTLY_SCRIPT = """
import sys
import pandas as pd
df = pd.read_parquet(sys.argv[1])
try:  # Evidently >= 0.7
    from evidently import BinaryClassification, DataDefinition, Dataset, Report
    from evidently.presets import ClassificationPreset
    for model in ("a", "b"):
        frame = df[["y", model]].rename(columns={model: "p"})
        definition = DataDefinition(
            classification=[BinaryClassification(target="y", prediction_probas="p")],
            numerical_columns=["p"],
        )
        data = Dataset.from_pandas(frame, data_definition=definition)
        Report([ClassificationPreset()]).run(data, None).json()
except ImportError:  # Evidently 0.4 - 0.6
    from evidently import ColumnMapping
    from evidently.metric_preset import ClassificationPreset
    from evidently.report import Report
    for model in ("a", "b"):
        frame = df[["y", model]].rename(columns={model: "p"})
        report = Report(metrics=[ClassificationPreset()])
        report.run(reference_data=None, current_data=frame,
                   column_mapping=ColumnMapping(target="y", prediction="p"))
        report.json()
"""

MEASURE = """
import resource, subprocess, sys, time
start = time.perf_counter()
result = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
seconds = time.perf_counter() - start
peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(result.returncode, seconds, peak_kb)
sys.stderr.write(result.stderr[-2000:])
"""


def write_parquet(path: Path, rows: int, seed: int = 0) -> None:
    """Label y, models a (calibrated) and b (noisier), and a region cohort."""
    rng = np.random.default_rng(seed)
    schema = pa.schema(
        [("y", pa.int8()), ("a", pa.float64()), ("b", pa.float64()), ("region", pa.string())]
    )
    with pq.ParquetWriter(path, schema) as writer:
        for start in range(0, rows, ROW_GROUP):
            n = min(ROW_GROUP, rows - start)
            p = rng.uniform(0.01, 0.99, size=n)
            y = (rng.uniform(size=n) < p).astype(np.int8)
            b = np.clip(p + rng.normal(0, 0.05, size=n), 0.001, 0.999)
            region = REGIONS[rng.choice(len(REGIONS), size=n, p=REGION_SHARES)]
            table = pa.table({"y": y, "a": p, "b": b, "region": region}, schema=schema)
            writer.write_table(table)


def measure(command: list[str]) -> tuple[float, float] | None:
    """(seconds, peak RSS in MB) of a command in a fresh process; None if it failed."""
    out = subprocess.run(
        [sys.executable, "-c", MEASURE, *command], capture_output=True, text=True, check=True
    )
    code, seconds, peak_kb = out.stdout.split()
    if int(code) != 0:
        print(f"  failed ({code}): {' '.join(command[:4])} ...\n{out.stderr}", file=sys.stderr)
        return None
    return float(seconds), float(peak_kb) / 1024


def xebench_command(path: Path) -> list[str]:
    return [
        sys.executable, "-m", "xebench", "bench", str(path), "--label", "y",
        "--prob", "a", "--prob", "b", "--cohort", "region", "--quiet",
    ]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=float, nargs="+", default=[1e6, 1e7, 1e8])
    parser.add_argument("--sklearn-max", type=float, default=1e7, help="largest pandas run")
    parser.add_argument("--evidently-rows", type=float, default=1e6)
    parser.add_argument("--evidently-python", help="python of a venv with evidently installed")
    args = parser.parse_args(argv)
    results: dict[tuple[str, int], tuple[float, float] | None] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for size in (int(s) for s in args.sizes):
            path = Path(tmp) / f"bench_{size}.parquet"
            start = time.perf_counter()
            write_parquet(path, size)
            print(
                f"{size:.0e} rows: wrote {path.stat().st_size / 1e9:.2f} GB "
                f"in {time.perf_counter() - start:.0f} s",
                flush=True,
            )
            runs = {
                "xebench bench": xebench_command(path),
                "bare DuckDB SQL": [sys.executable, "-c", DUCKDB_SCRIPT, str(path)],
            }
            if size <= args.sklearn_max:
                runs["pandas + sklearn"] = [sys.executable, "-c", SKLEARN_SCRIPT, str(path)]
            if args.evidently_python and size == int(args.evidently_rows):
                runs["Evidently"] = [args.evidently_python, "-c", EVIDENTLY_SCRIPT, str(path)]
            for name, command in runs.items():
                results[name, size] = measured = measure(command)
                if measured:
                    print(f"  {name:<18} {measured[0]:7.2f} s  {measured[1]:7.0f} MB", flush=True)
            path.unlink()

    print("\n| run | rows | seconds | peak RSS MB | xebench speed-up |")
    print("|---|---:|---:|---:|---:|")
    for (name, size), measured in results.items():
        if measured is None:
            print(f"| {name} | {size:.0e} | failed | | |")
            continue
        ours = results.get(("xebench bench", size))
        ratio = f"{measured[0] / ours[0]:.1f}x" if ours and name != "xebench bench" else ""
        print(f"| {name} | {size:.0e} | {measured[0]:.2f} | {measured[1]:.0f} | {ratio} |")
    print()
    _targets(results)
    return 0


def _targets(results: dict[tuple[str, int], tuple[float, float] | None]) -> None:
    """The issue's targets, MET or MISS, from the measured ratios."""

    def get(name: str, size: int) -> tuple[float, float] | None:
        return results.get((name, size))

    ours7, duck7, sk7 = get("xebench bench", 10**7), get("bare DuckDB SQL", 10**7), None
    sk7 = get("pandas + sklearn", 10**7)
    checks = []
    if ours7:
        checks.append(("1e7 rows under 5 s whole-process", ours7[0] < 5, f"{ours7[0]:.2f} s"))
    if ours7 and duck7:
        ratio = ours7[0] / duck7[0]
        checks.append(("1e7 rows within 3x of bare DuckDB", ratio <= 3, f"{ratio:.1f}x"))
    if ours7 and sk7:
        ratio = sk7[0] / ours7[0]
        checks.append(("1e7 rows 10x faster than pandas + sklearn", ratio >= 10, f"{ratio:.1f}x"))
    ours6, evidently = get("xebench bench", 10**6), get("Evidently", 10**6)
    if ours6 and evidently:
        ratio = evidently[0] / ours6[0]
        checks.append(("1e6 rows 10x faster than Evidently", ratio >= 10, f"{ratio:.1f}x"))
    ours8 = get("xebench bench", 10**8)
    if ours8:
        checks.append(("1e8 rows under 2 GB peak RSS", ours8[1] < 2048, f"{ours8[1]:.0f} MB"))
    for text, met, value in checks:
        print(f"{'MET ' if met else 'MISS'} {text}: {value}")


if __name__ == "__main__":
    sys.exit(main())
