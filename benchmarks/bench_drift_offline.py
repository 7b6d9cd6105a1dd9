"""Offline drift, whole processes: `xebench drift` vs Evidently vs NannyML.

Writes (seeded) a reference and a current Parquet file of ``--rows`` rows
(default 1e6 each) and 20 float64 features, four of them shifted in the
current data (mean, scale, a new mode, a small mean shift), and times, in
the same run, each in a fresh process (start-up, imports, reading the files
and writing the result included; the files are read into the page cache
before every run, for every tool alike):

- ``xebench drift --reference REF --current CUR --json OUT``;
- **Evidently**: ``Report([DataDriftPreset()])`` run on the two files read
  with pandas, the snapshot saved as JSON -- its default data-drift report;
- **NannyML**: ``UnivariateDriftCalculator(continuous_methods=["jensen_shannon"],
  chunk_number=1)`` fitted on the reference and calculated on the current
  data as one chunk, the result table saved as JSON.

Evidently and NannyML are never dependencies of xebench: they run from their
own virtual environment, ``benchmarks/.venv-drift`` (``--drift-python``)::

    python3 -m venv benchmarks/.venv-drift
    benchmarks/.venv-drift/bin/pip install -r benchmarks/requirements-drift.txt

It prints the median seconds and peak RSS of ``--repeat`` runs, the ratios
NannyML / xebench and Evidently / xebench against the targets (>= 2x and
>= 20x), and checks that xebench flags exactly the shifted features, ranked
first.

Usage::

    python benchmarks/bench_drift_offline.py                 # 1e6 + 1e6 rows, 3 runs each
    python benchmarks/bench_drift_offline.py --quick         # 1e5 rows, 1 run: a smoke test
    python benchmarks/bench_drift_offline.py --skip-evidently  # Evidently takes minutes
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent
DEFAULT_DRIFT_PYTHON = HERE / ".venv-drift" / "bin" / "python"
N_FEATURES = 20
#: Planted changes in the current data: feature -> what moved.
SHIFTED = {
    "f03": "mean +0.5 sd",
    "f07": "scale x1.5",
    "f12": "20% of values moved to a new mode at +3 sd",
    "f16": "mean -0.4 sd",
}
TARGETS = {"NannyML": 2.0, "Evidently": 20.0}

EVIDENTLY_SCRIPT = """
import sys
import pandas as pd
from evidently import Report
from evidently.presets import DataDriftPreset

reference, current = pd.read_parquet(sys.argv[1]), pd.read_parquet(sys.argv[2])
snapshot = Report([DataDriftPreset()]).run(current_data=current, reference_data=reference)
snapshot.save_json(sys.argv[3])
"""

NANNYML_SCRIPT = """
import sys, warnings
import pandas as pd
import nannyml as nml

warnings.simplefilter("ignore")  # "the resulting number of chunks is too low": one chunk on purpose
reference, current = pd.read_parquet(sys.argv[1]), pd.read_parquet(sys.argv[2])
calculator = nml.UnivariateDriftCalculator(
    column_names=list(reference.columns),
    continuous_methods=["jensen_shannon"],
    categorical_methods=["jensen_shannon"],
    chunk_number=1,
)
calculator.fit(reference)
result = calculator.calculate(current)
result.to_df().to_json(sys.argv[3])
"""


def write_data(folder: Path, rows: int, seed: int = 0) -> tuple[Path, Path]:
    """Reference and current Parquet files; only the SHIFTED features change."""
    rng = np.random.default_rng(seed)
    reference = {f"f{i:02d}": rng.normal(10.0 * i, 1.0 + i, rows) for i in range(N_FEATURES)}
    current = {f"f{i:02d}": rng.normal(10.0 * i, 1.0 + i, rows) for i in range(N_FEATURES)}
    sd = {name: 1.0 + i for i, name in enumerate(current)}
    current["f03"] = current["f03"] + 0.5 * sd["f03"]
    current["f07"] = 70.0 + (current["f07"] - 70.0) * 1.5
    moved = rng.uniform(size=rows) < 0.2
    current["f12"] = np.where(moved, 120.0 + 3 * sd["f12"], current["f12"])
    current["f16"] = current["f16"] - 0.4 * sd["f16"]
    paths = folder / "reference.parquet", folder / "current.parquet"
    for path, columns in zip(paths, (reference, current), strict=True):
        pq.write_table(pa.table(columns), path)
    return paths


def warm(paths: list[Path]) -> None:
    """Read the files once so every tool starts with them in the page cache."""
    for path in paths:
        with path.open("rb") as handle:
            while handle.read(1 << 24):
                pass


def measure(command: list[str], files: list[Path]) -> tuple[float, float] | None:
    """(seconds, peak RSS MB) of one fresh process; None if it failed."""
    warm(files)
    start = time.perf_counter()
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    stderr = process.stderr.read() if process.stderr else ""
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        print(f"  failed ({process.returncode}): {' '.join(command[:3])} ...", file=sys.stderr)
        print(stderr[-3000:], file=sys.stderr)
        return None
    return seconds, usage.ru_maxrss / 1024


def check_ranking(document: dict) -> tuple[bool, str]:
    """Does xebench flag exactly the planted features, and rank them first?"""
    names = [f["feature"] for f in document["features"]]
    top = names[: len(SHIFTED)]
    ok = set(document["drifted"]) == set(SHIFTED) and set(top) == set(SHIFTED)
    details = ", ".join(
        f"{f['feature']} JS {f['js']:.4f} {f['verdict']}" for f in document["features"][:6]
    )
    return ok, details


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=float, default=1e6, help="rows on each side")
    parser.add_argument("--repeat", type=int, default=3, help="runs per tool (median)")
    parser.add_argument("--quick", action="store_true", help="1e5 rows, one run each")
    parser.add_argument("--drift-python", default=str(DEFAULT_DRIFT_PYTHON))
    parser.add_argument("--skip-evidently", action="store_true")
    parser.add_argument("--skip-nannyml", action="store_true")
    args = parser.parse_args(argv)
    rows, repeat = (int(1e5), 1) if args.quick else (int(args.rows), args.repeat)
    other_python = Path(args.drift_python)
    if not other_python.exists():
        print(f"no {other_python}: Evidently and NannyML are skipped (see --help)")
        args.skip_evidently = args.skip_nannyml = True

    with tempfile.TemporaryDirectory(prefix="xebench-drift-bench-") as tmp:
        folder = Path(tmp)
        start = time.perf_counter()
        reference, current = write_data(folder, rows)
        files = [reference, current]
        size = sum(p.stat().st_size for p in files) / 1e6
        print(
            f"{rows:,} + {rows:,} rows x {N_FEATURES} float64 features ({size:.0f} MB of "
            f"Parquet) written in {time.perf_counter() - start:.1f} s; shifted: "
            + "; ".join(f"{k} ({v})" for k, v in SHIFTED.items()),
            flush=True,
        )
        out = {name: folder / f"{name}.json" for name in ("xebench", "NannyML", "Evidently")}
        xebench = ["drift", "--reference", str(reference), "--current", str(current)]
        commands = {
            "xebench": [sys.executable, "-m", "xebench", *xebench, "--json", str(out["xebench"])]
        }
        if not args.skip_nannyml:
            commands["NannyML"] = [
                str(other_python), "-c", NANNYML_SCRIPT, str(reference), str(current),
                str(out["NannyML"]),
            ]  # fmt: skip
        if not args.skip_evidently:
            commands["Evidently"] = [
                str(other_python), "-c", EVIDENTLY_SCRIPT, str(reference), str(current),
                str(out["Evidently"]),
            ]  # fmt: skip
        runs: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
        for round_number in range(1, repeat + 1):
            for name, command in commands.items():
                measured = measure(command, files)
                if measured is not None:
                    runs[name].append(measured)
                    print(
                        f"  run {round_number}/{repeat} {name:<9} {measured[0]:8.2f} s "
                        f"{measured[1]:7.0f} MB  (load average {os.getloadavg()[0]:.2f})",
                        flush=True,
                    )
        document = json.loads(out["xebench"].read_text()) if out["xebench"].exists() else None

    medians = {
        name: (statistics.median(s for s, _ in got), max(m for _, m in got))
        for name, got in runs.items()
        if got
    }
    ours = medians.get("xebench")
    print(f"\n| tool | median s ({repeat} runs) | peak RSS MB | ratio to xebench | target |")
    print("|---|---:|---:|---:|---|")
    all_met = ours is not None
    for name in commands:
        if name not in medians:
            print(f"| {name} | failed | | | |")
            all_met = False
            continue
        seconds, rss = medians[name]
        ratio, target = "", ""
        if name != "xebench" and ours:
            factor = seconds / ours[0]
            met = factor >= TARGETS[name]
            all_met &= met
            ratio = f"{factor:.1f}x"
            target = f">= {TARGETS[name]:.0f}x {'MET' if met else 'MISS'}"
        print(f"| {name} | {seconds:.2f} | {rss:.0f} | {ratio} | {target} |")
    if document is not None:
        ok, details = check_ranking(document)
        all_met &= ok
        print(
            f"\nxebench ranking vs planted shifts {sorted(SHIFTED)}: "
            f"{'AGREES' if ok else 'DISAGREES'} (drifted {document['drifted']}); top: {details}"
        )
    return 0 if all_met else 1


if __name__ == "__main__":
    sys.exit(main())
