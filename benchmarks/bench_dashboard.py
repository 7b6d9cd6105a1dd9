"""Server-side render time of the dashboard's views (issue 15: each under 500 ms).

For each store -- the demo's (``xebench demo`` writes it; ``--demo DIR``) and a
store of 1e7 events (``bench_metrics_scrape.py --keep DB --load-only`` builds
one; ``--big DB``, its end time read from ``DB.json``) -- each view (executive,
on-call, debug) is built as the service builds it (the same
:mod:`xebench.service.dashboard_data` questions, then the template; the SLOs
judged once beforehand, as the service's minute loop does), asked at the
store's end time, ``--repeat`` times after a warm-up. Printed per view:
median and p95 milliseconds, the share spent drawing HTML (the rest is the
monitor's questions), and the ratio to the floor: the same questions asked
through the monitor and answered as JSON, as ``GET /v1/metrics`` & co. would,
with no HTML at all. The verdict line says whether each median is under 500 ms.

Usage::

    python benchmarks/bench_dashboard.py --demo xebench-demo
    python benchmarks/bench_dashboard.py --demo xebench-demo --big /tmp/scrape9.duckdb
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from xebench.monitor.windows import Monitor
from xebench.report.dashboard import DashboardPage, render_page
from xebench.service import dashboard_data
from xebench.service.app import create_app
from xebench.service.config import ServiceConfig, load_config
from xebench.service.slo_runner import SLORunner
from xebench.store import EventStore

VIEWS = ("executive", "oncall", "debug")
TARGET_MS = 500.0


def _times(fn: Any, repeat: int) -> list[float]:
    fn()  # warm-up: imports, DuckDB's first reads
    out = []
    for _ in range(repeat):
        gc.collect()
        started = time.perf_counter()
        fn()
        out.append(1000 * (time.perf_counter() - started))
    return out


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def bench_store(
    label: str, db: Path, config: ServiceConfig, now: datetime, tenant: str, repeat: int
) -> list[tuple[str, str, float, bool]]:
    """Print the table of one store; (store, view, median ms, met) per view."""
    store = EventStore(db)
    state = create_app(store, config).state.xebench
    if config.slos:  # as the served app: the minute loop has judged the SLOs once
        state.slo_runner = SLORunner(Monitor(store, config.monitoring), config.slos)
        state.slo_runner.run_once(now)
    rows = []
    print(f"\n{label}: {db} (asked at {now.isoformat()})")
    print(f"{'view':<10} {'median ms':>10} {'p95 ms':>8} {'HTML share':>11} {'JSON floor ms':>14} "
          f"{'ratio':>6}")  # fmt: skip
    for view in VIEWS:
        build = getattr(dashboard_data, view)

        def ask(build: Any = build) -> dict[str, Any]:
            return build(dashboard_data.ViewRequest(state, tenant, now=now))

        def page(view: str = view, ask: Any = ask) -> str:
            return render_page(view, ask(), DashboardPage(view))

        def floor(ask: Any = ask) -> str:
            return json.dumps(ask(), default=str)

        whole = _times(page, repeat)
        bare = _times(floor, repeat)
        median, base = statistics.median(whole), statistics.median(bare)
        share = max(0.0, 1 - base / median) if median else 0.0
        print(f"{view:<10} {median:>10.1f} {_p95(whole):>8.1f} {share:>10.0%} {base:>14.1f} "
              f"{median / base:>6.2f}")  # fmt: skip
        rows.append((label, view, median, median < TARGET_MS))
    store.close()
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--demo", type=Path, help="the directory `xebench demo` wrote")
    parser.add_argument("--big", type=Path, help="a store of bench_metrics_scrape.py (DB.json)")
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args(argv)
    if args.demo is None and args.big is None:
        parser.error("give --demo DIR and/or --big DB")
    rows = []
    if args.demo is not None:
        config = load_config(args.demo / "xebench.yaml")
        summary = json.loads((args.demo / "summary.json").read_text())
        # The demo's stream ends when the demo ran: ask as of its last minute.
        now = datetime.fromisoformat(summary["windows"]["fraud"]["1h"]["to"].replace("Z", "+00:00"))
        db = config.db if Path(config.db).is_absolute() else args.demo.parent / config.db
        rows += bench_store("demo", Path(db), config, now, "default", args.repeat)
    if args.big is not None:
        facts = json.loads(args.big.with_name(args.big.name + ".json").read_text())
        now = datetime.fromisoformat(facts["end"])
        rows += bench_store("1e7 events", args.big, ServiceConfig(), now, "default", args.repeat)
    print()
    for label, view, median, met in rows:
        verdict = "MET " if met else "MISS"
        print(f"{verdict} {label} {view}: median {median:.0f} ms (target < {TARGET_MS:.0f} ms)")
    return 0 if all(met for *_, met in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
