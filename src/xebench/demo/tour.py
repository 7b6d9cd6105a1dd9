"""``xebench demo``: the on-call tour of production monitoring, on synthetic data.

It writes a 48-hour synthetic production stream (:mod:`xebench.demo.stream`)
into a fresh embedded store, folds it into the bucket statistics, and prints
what an on-call engineer looks at: the rolling windows with label coverage
and lag, the cohorts, the drift ranking, and the canary decision. Everything
printed comes from the same :class:`~xebench.monitor.Monitor` calls that
serve ``/v1/metrics``, ``/v1/drift`` and ``/v1/compare``. It leaves behind
the database, a config for ``xebench serve``, the drift report of the
drifted region (``drift.html``) and ``summary.json``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..monitor.windows import Monitor, Scope
from ..report.drift import render_drift_html
from ..service.config import load_config
from ..store.event_store import EventStore
from .stream import generate, load

__all__ = ["DEMO_CONFIG", "PROMETHEUS_CONFIG", "deploy_file", "run_demo"]

#: The config written next to the demo database: feature histograms per cohort
#: (the drift is planted in one region) and the canary's gate.
DEMO_CONFIG = """\
# Written by `xebench demo`: serve the demo database with
#   xebench serve --config {config}
db: {db}
monitoring:
  cohort_features: true      # the demo's drift is in one region: keep features per cohort
  min_coverage: 0.5
  gate: {{max_degradation: 0.02, min_samples: 1000, confidence: 0.95}}
  models:
    fraud: {{label_delay: 1h, reference: rolling}}
    triage: {{label_delay: 1h, reference: rolling}}
slos:                        # judged every minute: `xebench alerts --config {config}`
  - name: fraud-log-loss
    model: fraud
    sli: log_loss
    objective: 0.35
    window: 1h
    min_samples: 200
  - name: fraud-eu-calibration     # the drifted region's calibration: pages
    model: fraud
    cohort: "region:eu"
    sli: ece
    objective: 0.05
    window: 6h
    min_samples: 500
    runbook: https://runbooks.example/fraud-calibration
  - name: fraud-eu-amount-drift    # a drift that grows over a day: a ticket, never a page
    model: fraud
    cohort: "region:eu"
    sli: drift_js
    feature: amount
    objective: 0.02
    window: 24h
    min_samples: 500
    burn_alerts: [{{severity: ticket, long: 3d, short: 6h, factor: 1}}]
"""

#: A Prometheus config for the demo's server (`xebench serve` on 127.0.0.1:8000) with
#: the SLO rules of deploy/ (docs/slos.md).
PROMETHEUS_CONFIG = """\
# Written by `xebench demo`: scrape `xebench serve --config {config}` with
#   prometheus --config.file={prometheus} --web.listen-address=127.0.0.1:9090 \\
#     --storage.tsdb.path={data}
global: {{scrape_interval: 15s, evaluation_interval: 1m}}
rule_files: [{rules}]
scrape_configs:
  - job_name: xebench
    static_configs: [{{targets: ["127.0.0.1:8000"]}}]
"""

_TENANT = "default"


def run_demo(
    out: Path,
    *,
    seed: int = 0,
    hours: float = 48.0,
    rate_per_minute: float = 60.0,
    echo: Callable[[str], None] = print,
    quiet: bool = False,
) -> dict[str, Any]:
    """Build the demo store in ``out`` and return (and print) what on-call would check.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     summary = run_demo(Path(tmp), hours=3, rate_per_minute=10, quiet=True)
        >>> summary["canary"][0]["decision"]["status"]   # too few canary labels in 3 h
        'inconclusive'
        >>> sorted(summary["drift"])
        ['all', 'region:eu']
    """
    started = time.monotonic()
    out.mkdir(parents=True, exist_ok=True)
    db = out / "xebench.duckdb"
    for stale in (db, db.with_name(db.name + ".wal")):
        stale.unlink(missing_ok=True)  # a fresh store every run
    say = (lambda _: None) if quiet else echo
    stream = generate(seed=seed, hours=hours, rate_per_minute=rate_per_minute)
    say(
        f"Generated {len(stream.predictions):,} predictions and {len(stream.labels):,} labels "
        f"over {hours:g} h (seed {seed}); writing {db}"
    )
    # The settings come from the config written for `xebench serve`: one definition.
    config = out / "xebench.yaml"
    config.write_text(DEMO_CONFIG.format(config=config, db=db), encoding="utf-8")
    settings = load_config(config)
    with EventStore(db, monitor=settings.monitor) as store:
        load(store, stream, tenant=_TENANT)
        store.update_buckets(compact=True)
        monitor = Monitor(store, settings.monitoring)
        summary = _tour(monitor, stream.now, stream.facts, say, quiet)
        summary["slos"] = _slos(monitor, settings.slos, stream.now, say, quiet)
        summary["database"] = str(db)
        summary["models"] = store.models(_TENANT)
    summary["config"] = str(config)
    prometheus = out / "prometheus.yml"
    rules = deploy_file("prometheus/xebench-slo-rules.yml")
    prometheus.write_text(
        PROMETHEUS_CONFIG.format(
            config=config, prometheus=prometheus, data=out / "prometheus-data",
            rules=json.dumps(str(rules)) if rules is not None else "",
        ),
        encoding="utf-8",
    )  # fmt: skip
    # The drifted region's report, as `xebench drift --html` writes it.
    report = out / "drift.html"
    drift_cohort = f"region:{stream.facts['drift_region']}"
    report.write_text(render_drift_html(summary["drift"][drift_cohort]), encoding="utf-8")
    summary["report"] = str(report)
    summary["seconds"] = round(time.monotonic() - started, 1)
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    say("")
    say(f"Done in {summary['seconds']} s. Serve it, then open the dashboard or ask the API:")
    say(f"  xebench serve --config {config}")
    say("  open http://127.0.0.1:8000/ (executive), /oncall?model=fraud, /debug?model=fraud")
    say("  curl 'http://127.0.0.1:8000/v1/metrics?model=fraud&window=24h'")
    say("  curl 'http://127.0.0.1:8000/v1/metrics?model=fraud&window=24h&step=1h&cohort=region:eu'")
    say("  curl 'http://127.0.0.1:8000/v1/drift?model=fraud&window=24h&cohort=region:eu'")
    say("  curl 'http://127.0.0.1:8000/v1/compare?candidate=fraud:v2&baseline=fraud:v1&window=48h'")
    say(f"or the CLI (stop the server first): xebench metrics --config {config} --model fraud")
    say(f"SLOs and alerts: xebench alerts --config {config}")
    say("Prometheus against the running server (Debian's `prometheus`; deploy/README.md):")
    say(
        f"  prometheus --config.file={prometheus} --web.listen-address=127.0.0.1:9090 "
        f"--storage.tsdb.path={out / 'prometheus-data'}"
    )
    say(f"The drift report of {drift_cohort}: {report}")
    return summary


def _tour(
    monitor: Monitor,
    now: Any,
    facts: dict[str, Any],
    say: Callable[[str], None],
    quiet: bool,
) -> dict[str, Any]:
    """The on-call checks, printed and collected."""
    from ..report.monitor import compare_line, print_windows

    show = not quiet
    summary: dict[str, Any] = {"windows": {}, "cohorts": {}, "drift": {}, "canary": []}
    for model in ("fraud", "triage"):
        windows = [
            (name, monitor.window(Scope(_TENANT, model, window=name, now=now)).to_dict())
            for name in ("1h", "6h", "24h")
        ]
        summary["windows"][model] = dict(windows)
        if show:
            say("")
            print_windows(f"{model}: rolling windows (nats)", windows)
    say("Recent windows are provisional: their labels are still arriving (coverage, lag p50).")

    regions = sorted(facts["region_shares"])
    by_region = [
        (
            f"region:{r}",
            monitor.window(
                Scope(_TENANT, "fraud", cohort=f"region:{r}", window="24h", now=now)
            ).to_dict(),
        )
        for r in regions
    ]
    # Skill, not raw log loss: base rates differ by region, skill is comparable across them.
    by_region.sort(key=lambda item: item[1]["skill"] if item[1]["skill"] is not None else 1.0)
    summary["cohorts"]["fraud"] = dict(by_region)
    if show:
        say("")
        print_windows("fraud: last 24h by region, lowest skill first", by_region)

    drift_cohort = f"region:{facts['drift_region']}"
    for cohort in (None, drift_cohort):
        report = monitor.drift(
            Scope(_TENANT, "fraud", cohort=cohort, window="24h", now=now)
        ).to_dict()
        summary["drift"][cohort or "all"] = report
        if show:
            say("")
            _print_drift(report, cohort)

    canary = []
    for cohort in [None] + [f"device:{d}" for d in sorted(facts["device_shares"])]:
        hours = f"{facts_hours(facts)}h"
        scope = Scope(_TENANT, "fraud", "v2", cohort=cohort, window=hours, now=now)
        result = monitor.compare(scope, "fraud:v1").to_dict()
        canary.append(result)
    summary["canary"] = canary
    say("")
    say("Canary fraud:v2 (10% of traffic) against fraud:v1, whole stream:")
    for result in canary:
        say("  " + compare_line(result))
    return summary


def _slos(
    monitor: Monitor, slos: Any, now: Any, say: Callable[[str], None], quiet: bool
) -> dict[str, Any]:
    """The SLOs of the demo config judged as of the stream's end (``xebench alerts``)."""
    from ..monitor.slo import evaluate_slos, slo_document
    from ..report.slo import print_slos

    document = slo_document(evaluate_slos(monitor, slos, now), now)
    if not quiet:
        say("")
        print_slos(document)
    say(
        "The drifted region pages on its calibration; its drift, growing over a day, "
        "opens a ticket (docs/slos.md)."
    )
    return document


def deploy_file(relative: str) -> Path | None:
    """A file of ``deploy/``: shipped in the wheel (``xebench/deploy``) or, in a source
    checkout, the repository's; None when neither has it.

    Example:
        >>> deploy_file("no/such.yml") is None
        True
    """
    package = Path(__file__).resolve().parent.parent
    for base in (package / "deploy", package.parent.parent / "deploy"):
        if (base / relative).is_file():
            return base / relative
    return None


def facts_hours(facts: dict[str, Any]) -> int:
    """Whole hours the demo stream spans (its canary runs throughout).

    Example:
        >>> facts_hours({"start": "2026-01-01T00:00:00+00:00", "now": "2026-01-03T00:00:00+00:00"})
        48
    """
    from ..monitor.windows import parse_time

    span = parse_time(str(facts["now"]), "now") - parse_time(str(facts["start"]), "start")
    return max(1, round(span.total_seconds() / 3600))


def _print_drift(report: dict[str, Any], cohort: str | None) -> None:
    from ..report.console import fmt
    from ..report.monitor import print_table

    scope = cohort or "all traffic"
    rows = [
        [
            f["feature"],
            f["kind"],
            f"{f['n_reference']:.0f}",
            f"{f['n_current']:.0f}",
            fmt(f["js"]),
            fmt(f["psi"]),
            f["verdict"],
        ]
        for f in report["features"]
    ]
    print_table(
        f"fraud drift, {scope}: last 24h vs the 24h before (JS threshold {report['threshold']})",
        ("feature", "kind", "n ref", "n cur", "JS", "PSI", "verdict"),
        rows,
    )
