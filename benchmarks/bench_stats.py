"""Mergeable statistics against the kernel alone, and the cost of the bootstrap.

In one run, for 1e7 binary events and 1e6 x 10 multiclass events fed in
chunks of 1e5 rows, it times:

- ``ScoreStats.update`` over all chunks (every metric of ``result()``:
  log loss and its variance, Brier and its variance, accuracy, clipped count,
  label counts, 300 calibration bins);
- the kernel on the whole arrays computing the same numbers
  (``log_loss``, ``brier_score``, ``calibration_error``, ``accuracy``,
  ``prior_log_loss``, ``clipped_count``) -- what a user without
  mergeable statistics would run;
- the kernel's ``log_loss`` alone, the least any score needs;
- ``ScoreStats(bootstrap=200).update`` (Poisson bootstrap, 200 replicates).

It prints throughput (events per second), the ratios, and the size of the
serialized state and the peak memory of an update for growing N, which must
not grow with N. Medians of ``--repeat`` runs; read the ratios, not the
absolute times (these machines are noisy).

Usage::

    python benchmarks/bench_stats.py            # full sizes (a few minutes)
    python benchmarks/bench_stats.py --quick    # 10x smaller
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import tracemalloc

import numpy as np

import xebench as xb
from _timing import median_seconds
from xebench.stats.scores import ScoreStats

CHUNK = 100_000


def make_binary(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    prob = rng.uniform(size=n)
    return (rng.uniform(size=n) < prob).astype(np.int64), prob


def make_multiclass(n: int, k: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, k))
    prob = np.exp(logits - logits.max(axis=1, keepdims=True))
    prob /= prob.sum(axis=1, keepdims=True)
    return rng.integers(0, k, size=n), prob


def feed(stats: ScoreStats, y: np.ndarray, prob: np.ndarray) -> ScoreStats:
    for start in range(0, y.shape[0], CHUNK):
        stats.update(y[start : start + CHUNK], prob[start : start + CHUNK])
    return stats


def kernel_same_metrics(y: np.ndarray, prob: np.ndarray, labels: list[int]) -> dict[str, float]:
    return {
        "log_loss": xb.log_loss(y, prob, labels=labels),
        "brier": xb.brier_score(y, prob, labels=labels),
        "ece": xb.calibration_error(y, prob, labels=labels),
        "accuracy": xb.accuracy(y, prob, labels=labels),
        "prior": xb.prior_log_loss(y, labels=labels),
        "clipped": xb.clipped_count(y, prob, labels=labels),
    }


def run_case(
    name: str, y: np.ndarray, prob: np.ndarray, classes: list[int] | None, repeat: int
) -> dict[str, float | str]:
    labels = [0, 1] if classes is None else classes
    n = y.shape[0]
    t_stats = median_seconds(lambda: feed(ScoreStats(classes), y, prob), repeat, warm_up=False)
    t_kernel = median_seconds(lambda: kernel_same_metrics(y, prob, labels), repeat, warm_up=False)
    t_log_loss = median_seconds(lambda: xb.log_loss(y, prob, labels=labels), repeat, warm_up=False)
    t_boot = median_seconds(
        lambda: feed(ScoreStats(classes, bootstrap=200), y, prob), repeat, warm_up=False
    )
    # The statistics and the kernel must agree: a benchmark of wrong numbers is worthless.
    result = feed(ScoreStats(classes), y, prob).result()
    reference = kernel_same_metrics(y, prob, labels)
    assert abs(result["log_loss"] / reference["log_loss"] - 1) < 1e-12
    assert abs(result["ece"] - reference["ece"]) < 1e-12
    return {
        "case": name,
        "n": n,
        "stats": n / t_stats,
        "kernel": n / t_kernel,
        "log_loss": n / t_log_loss,
        "bootstrap": n / t_boot,
    }


def state_and_memory(n_values: list[int]) -> list[tuple[int, int, int, float]]:
    """(N, JSON bytes of the state, JSON bytes with bootstrap, peak MB of one update)."""
    rows = []
    for n in n_values:
        y, prob = make_binary(n, seed=n)
        stats = feed(ScoreStats(), y, prob)
        boot = feed(ScoreStats(bootstrap=200), y[:CHUNK], prob[:CHUNK])
        gc.collect()
        tracemalloc.start()
        feed(ScoreStats(), y, prob)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        rows.append(
            (n, len(json.dumps(stats.to_dict())), len(json.dumps(boot.to_dict())), peak / 1e6)
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per cell (median)")
    parser.add_argument("--quick", action="store_true", help="10x smaller inputs")
    args = parser.parse_args(argv)
    scale = 10 if args.quick else 1
    print(f"xebench {xb.__version__}, numpy {np.__version__}; chunks of {CHUNK:,} rows")
    print(f"median of {args.repeat} runs{' (quick: sizes / 10)' if args.quick else ''}\n")

    rows = [
        run_case("binary", *make_binary(10**7 // scale), None, args.repeat),
        run_case(
            "multiclass k=10", *make_multiclass(10**6 // scale, 10), list(range(10)), args.repeat
        ),
    ]
    print(
        "| case | events | stats ev/s | kernel (same metrics) ev/s | kernel log_loss ev/s "
        "| stats / kernel | stats / log_loss | bootstrap B=200 ev/s | bootstrap cost x stats |"
    )
    print("|" + "---|" * 9)
    for r in rows:
        print(
            f"| {r['case']} | {r['n']:.0e} | {r['stats']:.3g} | {r['kernel']:.3g} "
            f"| {r['log_loss']:.3g} | {r['stats'] / r['kernel']:.2f} "
            f"| {r['stats'] / r['log_loss']:.2f} | {r['bootstrap']:.3g} "
            f"| {r['stats'] / r['bootstrap']:.1f} |"
        )

    print("\nstate size and update memory as N grows (binary):\n")
    print("| N | state JSON bytes | state with bootstrap B=200 | peak MB while updating |")
    print("|---|---|---|---|")
    sizes = [10**5, 10**6, 10**7 // scale]
    memory = state_and_memory(sizes)
    for n, size, boot_size, peak in memory:
        print(f"| {n:.0e} | {size:,} | {boot_size:,} | {peak:.1f} |")

    print()
    worst_ratio = min(r["stats"] / r["kernel"] for r in rows)
    worst_boot = max(r["stats"] / r["bootstrap"] for r in rows)
    peaks = [peak for *_, peak in memory]
    state_sizes = [size for _, size, _, _ in memory]
    flat = max(peaks) <= 1.5 * min(peaks) and max(state_sizes) <= 1.5 * min(state_sizes)
    print(
        f"{'MET ' if worst_ratio >= 0.6 else 'MISS'} statistics throughput >= 0.6x kernel: "
        f"worst {worst_ratio:.2f}x"
    )
    print(
        f"{'MET ' if worst_boot <= 10 else 'MISS'} bootstrap B=200 under 10x plain statistics: "
        f"worst {worst_boot:.1f}x"
    )
    print(
        f"{'MET ' if flat else 'MISS'} memory independent of N: state {min(state_sizes):,}-"
        f"{max(state_sizes):,} bytes, update peak {min(peaks):.1f}-{max(peaks):.1f} MB"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
