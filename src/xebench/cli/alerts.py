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
from typing import Annotated

import typer

from .app import Fail
from .monitor import MonitorConfigFile, MonitorDb

__all__ = ["alerts"]


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
    from ..report.slo import print_slos
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
    # Maintenance windows of the alerting: section mark the alerts they cover suppressed.
    suppressed = settings.alerting.suppressed if settings.alerting is not None else None
    document = slo_document(statuses, moment, suppressed)
    if json_out:
        typer.echo(json.dumps(document, indent=2))
    else:
        print_slos(document)
    pages = [a for a in document["alerts"] if a["severity"] == "page" and a["state"] == "firing"]
    if pages:
        raise typer.Exit(1)
