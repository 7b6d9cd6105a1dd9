"""``xebench alerts``: every configured SLO judged as of a time, with its budget, burn rates
and the burn-rate alerts that hold -- from a database file, the same evaluation the
service runs every minute.

Exit code 0 when no page fires, 1 when one does, 2 on bad usage or input: a CI job
or a cron script can gate on it.

Example:
    >>> from xebench.cli.main import main
    >>> main(["alerts", "--config", "missing.yaml"])
    2
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from .app import Fail
from .monitor import MonitorConfigFile, MonitorDb

__all__ = ["alerts"]


def _fmt(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}g}"


def alerts(
    config: MonitorConfigFile = None,
    db: MonitorDb = None,
    at: Annotated[
        str | None,
        typer.Option("--at", help="Judge as of this RFC 3339 time (default: now)."),
    ] = None,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print the JSON document instead of tables.")
    ] = False,
) -> None:
    """Evaluate every SLO of the config (slos: / slo_files:) on a database file as of --at:
    each SLO's latest verdict, good / bad / excluded minutes, budget remaining and burn
    rates, then the multi-window burn-rate alerts that hold (page or ticket).

    Exit code 1 when a page fires (not suppressed by a maintenance window), else 0.
    """
    from contextlib import ExitStack

    from ..monitor.scope import parse_time
    from ..monitor.slo import evaluate_slos, slo_document
    from ..monitor.windows import Monitor
    from .operations import open_store

    if config is None:
        raise Fail("give --config FILE: the service YAML whose slos: to evaluate")
    moment = parse_time(at, "--at") if at is not None else datetime.now(UTC)
    with ExitStack() as stack:
        store, settings = open_store(db, config, stack)
        if not settings.slos:
            raise Fail(f"{config}: no slos: (or slo_files:) to evaluate")
        monitor = Monitor(store, settings.monitoring)
        statuses = evaluate_slos(monitor, settings.slos, moment)
    suppressed = getattr(settings, "alerting", None)  # maintenance windows, when configured
    suppressed = getattr(suppressed, "suppressed", None)
    document = slo_document(statuses, moment, suppressed)
    if json_out:
        typer.echo(json.dumps(document, indent=2))
    else:
        _print(document)
    pages = [a for a in document["alerts"] if a["severity"] == "page" and a["state"] == "firing"]
    if pages:
        raise typer.Exit(1)


def _print(document: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title=f"SLOs at {document['at']}")
    for column in ("slo", "model", "sli", "objective", "now", "verdict", "good / bad / excl.",
                   "budget left", "burn 5m / 1h / 6h / 3d"):  # fmt: skip
        table.add_column(column)
    for slo in document["slos"]:
        rates = slo["burn_rates"]
        where = slo["model"] + (f":{slo['version']}" if slo["version"] else "")
        where += f" [{slo['cohort']}]" if slo["cohort"] else ""
        table.add_row(
            slo["name"],
            where,
            slo["sli"] + (f"({slo['feature']})" if slo.get("feature") else ""),
            f"{'<=' if slo['direction'] == 'lower' else '>='} {slo['objective']:g}",
            _fmt(slo["sli_value"]),
            slo["verdict"] + (f" ({slo['error']})" if slo.get("error") else ""),
            f"{slo['good_minutes']:,} / {slo['bad_minutes']:,} / {slo['excluded_minutes']:,}",
            "-" if slo["budget_remaining"] is None else f"{slo['budget_remaining']:.1%}",
            " / ".join(_fmt(rates[w], 3) for w in ("5m", "1h", "6h", "3d")),
        )
    console.print(table)
    if not document["alerts"]:
        console.print("no burn-rate alert holds")
    for alert in document["alerts"]:
        held = ", ".join(
            f"{c['name']} ({_fmt(c['long_burn_rate'], 3)}x / {_fmt(c['short_burn_rate'], 3)}x)"
            for c in alert["evidence"]["conditions"]
        )
        runbook = alert["evidence"].get("runbook")
        console.print(
            f"[bold]{alert['severity'].upper()}[/bold] {alert['state']}: {alert['slo']} "
            f"burns {held}" + (f"; runbook {runbook}" if runbook else "")
        )
