"""Kernel speed and memory against scikit-learn and plain NumPy, in one run.

For each case (binary N = 1e6 and 1e7; multiclass 1e6 x 10 and 1e6 x 100;
float64 and float32) and each metric (log loss, Brier, ECE) it times:

- ``xebench``: the public, validated function;
- ``sklearn``: what a user would otherwise call (``log_loss``,
  ``brier_score_loss``, ``calibration_curve`` + bin counts for ECE; scikit-learn
  has no multiclass ECE);
- ``numpy``: the same formula as a plain NumPy expression, without any
  validation -- the floor that validation must not push us far above.

Times are medians of ``--repeat`` runs (these machines are noisy: read the
ratios, not the absolute times). Peak extra memory is measured in separate
runs with ``tracemalloc`` (NumPy reports its buffers to it) and printed in
units of one float64 copy of the probability input (n x k x 8 bytes).

Usage::

    python benchmarks/bench_metrics.py            # the full table (a few minutes)
    python benchmarks/bench_metrics.py --quick    # 10x smaller, for a smoke run
"""

from __future__ import annotations

import argparse
import gc
import sys
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import sklearn.metrics
from sklearn.calibration import calibration_curve

import xebench as xb
from _timing import median_seconds

EPS = 1e-15
N_BINS = 15


@dataclass(frozen=True)
class Case:
    name: str
    n: int
    k: int  # 1 = binary P(class 1)
    dtype: type

    def make(self, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(seed)
        if self.k == 1:
            prob = rng.uniform(size=self.n).astype(self.dtype)
            y = (rng.uniform(size=self.n) < prob).astype(np.int64)
            return y, prob
        logits = rng.normal(size=(self.n, self.k)).astype(self.dtype)
        prob = np.exp(logits - logits.max(axis=1, keepdims=True))
        prob /= prob.sum(axis=1, keepdims=True)
        y = rng.integers(0, self.k, size=self.n)
        return y, prob


# --- plain NumPy: the same formulas, no validation ---------------------------


def numpy_log_loss(y: np.ndarray, p: np.ndarray) -> float:
    if p.ndim == 1:
        q = np.clip(p, EPS, 1 - EPS)
        return float(-np.mean(y * np.log(q) + (1 - y) * np.log(1 - q)))
    return float(-np.mean(np.log(np.clip(p[np.arange(len(y)), y], EPS, 1 - EPS))))


def numpy_brier(y: np.ndarray, p: np.ndarray) -> float:
    if p.ndim == 1:
        return float(np.mean((p - y) ** 2))
    onehot = np.zeros_like(p)
    onehot[np.arange(len(y)), y] = 1
    return float(np.mean(np.sum((p - onehot) ** 2, axis=1)))


def numpy_ece(y: np.ndarray, p: np.ndarray) -> float:
    if p.ndim == 1:
        score, hit = p, y
    else:
        score, hit = p.max(axis=1), p.argmax(axis=1) == y
    edges = np.linspace(0, 1, N_BINS + 1)
    index = np.searchsorted(edges[1:-1], score)
    count = np.bincount(index, minlength=N_BINS)
    gap = np.abs(
        np.bincount(index, weights=hit, minlength=N_BINS)
        - np.bincount(index, weights=score, minlength=N_BINS)
    )
    return float(gap.sum() / count.sum())


# --- scikit-learn: what a user would call ------------------------------------


def sklearn_ece(y: np.ndarray, p: np.ndarray) -> float:
    prob_true, prob_pred = calibration_curve(y, p, n_bins=N_BINS)
    edges = np.linspace(0, 1, N_BINS + 1)
    count = np.bincount(np.searchsorted(edges[1:-1], p), minlength=N_BINS)
    count = count[count > 0]
    return float(np.sum(count * np.abs(prob_true - prob_pred)) / count.sum())


IMPLEMENTATIONS: dict[str, dict[str, Callable[[np.ndarray, np.ndarray], float] | None]] = {
    "log_loss": {
        "xebench": lambda y, p: xb.log_loss(y, p, eps=EPS),
        "sklearn": lambda y, p: sklearn.metrics.log_loss(y, p),
        "numpy": numpy_log_loss,
    },
    "brier_score": {
        "xebench": xb.brier_score,
        "sklearn": sklearn.metrics.brier_score_loss,
        "numpy": numpy_brier,
    },
    "calibration_error": {
        "xebench": lambda y, p: xb.calibration_error(y, p, n_bins=N_BINS),
        "sklearn": sklearn_ece,
        "numpy": numpy_ece,
    },
}


def peak_extra_bytes(fn: Callable[[], object]) -> int:
    gc.collect()
    tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak - base


def run(cases: list[Case], repeat: int) -> list[dict[str, object]]:
    rows = []
    for case in cases:
        y, p = case.make()
        copy_bytes = case.n * case.k * 8  # one float64 copy of the input
        for metric, impls in IMPLEMENTATIONS.items():
            row: dict[str, object] = {"case": case.name, "metric": metric, "size": case.n * case.k}
            skip_sklearn = metric == "calibration_error" and case.k > 1
            for impl, fn in impls.items():
                if impl == "sklearn" and skip_sklearn:
                    row[impl] = None
                    continue
                assert fn is not None
                reps = repeat if impl != "sklearn" or case.n * case.k <= 10**7 else 3
                row[impl] = median_seconds(lambda fn=fn, y=y, p=p: fn(y, p), reps)
                if impl == "xebench":
                    row["memory"] = peak_extra_bytes(lambda fn=fn, y=y, p=p: fn(y, p)) / copy_bytes
                    row["value"] = fn(y, p)
            rows.append(row)
            print_row(row, file=sys.stderr)
        del y, p
    return rows


def ratio(a: object, b: object) -> str:
    return "n/a" if a is None or b is None else f"{a / b:.2f}"  # type: ignore[operator]


def ms(seconds: object) -> str:
    return "n/a" if seconds is None else f"{seconds * 1e3:.1f}"  # type: ignore[operator]


HEADER = (
    "| case | metric | xebench ms | sklearn ms | numpy ms "
    "| sklearn / xebench | xebench / numpy | peak extra (f64 copies) |"
)


def print_row(row: dict[str, object], file: object = sys.stdout) -> None:
    print(
        f"| {row['case']} | {row['metric']} | {ms(row['xebench'])} | {ms(row['sklearn'])} "
        f"| {ms(row['numpy'])} | {ratio(row['sklearn'], row['xebench'])} "
        f"| {ratio(row['xebench'], row['numpy'])} | {row['memory']:.2f} |",
        file=file,  # type: ignore[arg-type]
    )


def check_targets(rows: list[dict[str, object]]) -> list[str]:
    """The issue's targets, stated as checks over the measured rows."""
    lines = []

    def find(case: str, metric: str) -> dict[str, object] | None:
        return next((r for r in rows if r["case"] == case and r["metric"] == metric), None)

    def verdict(ok: bool) -> str:
        return "MET " if ok else "MISS"

    row = find("binary 1e7 float64", "log_loss")
    if row:
        speedup = row["sklearn"] / row["xebench"]  # type: ignore[operator]
        overhead = row["xebench"] / row["numpy"]  # type: ignore[operator]
        lines.append(
            f"{verdict(speedup >= 5)} log_loss 1e7 binary vs sklearn: {speedup:.1f}x >= 5x"
        )
        lines.append(
            f"{verdict(overhead <= 1.5)} log_loss 1e7 binary vs numpy: {overhead:.2f} <= 1.5"
        )
    for dtype in ("float64", "float32"):
        row = find(f"multiclass 1e6x100 {dtype}", "log_loss")
        if row:
            speedup = row["sklearn"] / row["xebench"]  # type: ignore[operator]
            lines.append(
                f"{verdict(speedup >= 3)} log_loss 1e6x100 {dtype} vs sklearn: {speedup:.1f}x >= 3x"
            )
    # Chunk buffers are a constant ~2 MB, so memory is judged on inputs of 1e6 values and up.
    large = [r for r in rows if r["size"] >= 10**6] or rows
    worst = max(large, key=lambda r: r["memory"])  # type: ignore[arg-type,return-value]
    lines.append(
        f"{verdict(worst['memory'] <= 2)} peak extra memory <= 2 float64 copies of the input: "  # type: ignore[operator]
        f"worst {worst['memory']:.2f} ({worst['case']}, {worst['metric']})"
    )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per cell (median)")
    parser.add_argument("--quick", action="store_true", help="10x smaller inputs")
    args = parser.parse_args(argv)
    scale = 10 if args.quick else 1
    cases = []
    for dtype in (np.float64, np.float32):
        tag = np.dtype(dtype).name
        cases += [
            Case(f"binary 1e6 {tag}", 10**6 // scale, 1, dtype),
            Case(f"binary 1e7 {tag}", 10**7 // scale, 1, dtype),
            Case(f"multiclass 1e6x10 {tag}", 10**6 // scale, 10, dtype),
            Case(f"multiclass 1e6x100 {tag}", 10**6 // scale, 100, dtype),
        ]
    print(f"xebench {xb.__version__}, numpy {np.__version__}, scikit-learn {sklearn.__version__}")
    print(f"median of {args.repeat} runs{' (quick: sizes / 10)' if args.quick else ''}\n")
    print(HEADER, file=sys.stderr)
    rows = run(cases, args.repeat)
    print(HEADER)
    print("|" + "---|" * 8)
    for row in rows:
        print_row(row)
    print()
    for line in check_targets(rows):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
