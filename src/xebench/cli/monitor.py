"""``xebench metrics``, ``compare`` and ``rebuild``: monitoring over an event database file.

The same windows, comparisons and buckets as the service's ``GET /v1/...``,
read from the database file directly (no server needed). The options that
name the database and a window are shared with ``xebench drift --model``.

Example (bad usage: exit code 2 and the reason on one line of stderr, here
``error: MESSAGE``):
    >>> from xebench.cli.main import main
    >>> main(["metrics", "--model", "m", "--db", "/nonexistent/x.duckdb"])
    2
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from .app import Fail, JsonOut, one_line, parse_base, write_text

__all__ = [
    "Cohort",
    "End",
    "MonitorConfigFile",
    "MonitorDb",
    "Start",
    "Tenant",
    "Window",
    "compare",
    "metrics",
    "open_monitor",
    "rebuild",
]

MonitorDb = Annotated[
    Path | None,
    typer.Option("--db", help="The event database (default: --config's db, else the default)."),
]
MonitorConfigFile = Annotated[
    Path | None, typer.Option("--config", help="Service config (its monitoring: section).")
]
Tenant = Annotated[str, typer.Option("--tenant", help="Whose events.")]
Cohort = Annotated[str | None, typer.Option("--cohort", help="key:value, e.g. region:eu.")]
Window = Annotated[
    str | None, typer.Option("--window", help="Rolling window: 1h, 6h, 24h, 7d, 30m... (24h).")
]
Start = Annotated[str | None, typer.Option("--from", help="Start of the range, RFC 3339.")]
End = Annotated[str | None, typer.Option("--to", help="End of the range (exclusive), RFC 3339.")]


def open_monitor(
    db: Path | None, config: Path | None, stack: Any, tenant: str = "default", *models: str
) -> Any:
    """The store (folded up to date) and a Monitor over it, from --db / --config;
    fails when ``tenant`` has no prediction of one of ``models``."""
    from ..monitor.windows import Monitor
    from ..service.config import default_db_path, load_config
    from ..store.event_store import EventStore, StoreLockedError

    settings = load_config(config)
    path = Path(db or settings.db or default_db_path()).expanduser()
    if not path.exists():
        raise Fail(f"no event database at {path} (run `xebench demo` or `xebench ingest`)")
    try:
        store = stack.enter_context(
            EventStore(path, join_window=settings.join_window, monitor=settings.monitor)
        )
    except StoreLockedError as error:
        raise Fail(f"{one_line(error)}; ask that server instead (GET /v1/...)") from None
    for model in models:
        if store.known_labels(tenant, model.partition(":")[0]) is None:
            raise Fail(f"no model {model.partition(':')[0]!r} for tenant {tenant!r} in {path}")
    store.update_buckets()
    return Monitor(store, settings.monitoring)


def metrics(
    model: Annotated[str, typer.Option("--model", help="The model.")],
    db: MonitorDb = None,
    version: Annotated[str | None, typer.Option("--version", help="One version.")] = None,
    cohort: Cohort = None,
    window: Window = None,
    start: Start = None,
    end: End = None,
    step: Annotated[
        str | None, typer.Option("--step", help="A series of windows of this length (e.g. 1h).")
    ] = None,
    base: Annotated[str, typer.Option("--base", help="Log base: e (nats), 2 (bits) or 10.")] = "e",
    tenant: Tenant = "default",
    config: MonitorConfigFile = None,
    json_path: JsonOut = None,
) -> None:
    """Windowed metrics of a model from the event database, as GET /v1/metrics returns them."""
    from contextlib import ExitStack

    from ..report.monitor import print_series, print_token_windows, print_windows

    with ExitStack() as stack:
        monitor = open_monitor(db, config, stack, tenant, model)
        from ..monitor.scope import Scope

        asked = Scope(tenant, model, version, cohort, window, start, end)
        if step is not None:
            document = monitor.series(asked, step=step, base=parse_base(base)).to_dict()
        else:
            document = monitor.window(asked, base=parse_base(base)).to_dict()
    if json_path is not None:
        write_text(json_path, json.dumps(document, indent=2) + "\n")
    scope = f"{model}" + (f" {version}" if version else "") + (f" {cohort}" if cohort else "")
    if step is not None:
        print_series(f"{scope}: every {step}", document["series"])
        named = [(w["from"][:16].replace("T", " "), w) for w in document["series"]]
        print_token_windows(f"{scope}: every {step}", named)
    else:
        title = f"{scope}: {document['from']} to {document['to']}"
        print_windows(title, [("window", document)])
        print_token_windows(title, [("window", document)])
        if document["provisional"]:
            typer.echo(f"provisional: {document['provisional_reason']}")


def compare(
    candidate: Annotated[str, typer.Option("--candidate", help="model or model:version.")],
    baseline: Annotated[str, typer.Option("--baseline", help="model or model:version.")],
    db: MonitorDb = None,
    cohort: Cohort = None,
    window: Window = None,
    start: Start = None,
    end: End = None,
    mode: Annotated[
        str, typer.Option("--mode", help="auto, canary (two versions) or shadow (two models).")
    ] = "auto",
    max_degradation: Annotated[
        float | None, typer.Option("--max-degradation", help="Allowed relative increase.")
    ] = None,
    min_samples: Annotated[
        int | None, typer.Option("--min-samples", help="Labelled events needed per side.")
    ] = None,
    confidence: Annotated[float | None, typer.Option("--confidence")] = None,
    tenant: Tenant = "default",
    config: MonitorConfigFile = None,
    json_path: JsonOut = None,
) -> None:
    """Canary or shadow gate from the event database. Exit 0 pass, 1 fail, 3 inconclusive."""
    from contextlib import ExitStack

    from ..report.monitor import print_compare

    with ExitStack() as stack:
        monitor = open_monitor(db, config, stack, tenant, candidate, baseline)
        from ..monitor.scope import Scope

        asked = Scope.named(
            tenant, candidate, "candidate", cohort=cohort, window=window, start=start, end=end
        )
        document = monitor.compare(
            asked,
            baseline,
            mode=mode,
            max_degradation=max_degradation,
            min_samples=min_samples,
            confidence=confidence,
        ).to_dict()
    if json_path is not None:
        write_text(json_path, json.dumps(document, indent=2) + "\n")
    print_compare(document)
    raise typer.Exit({"pass": 0, "fail": 1, "inconclusive": 3}[document["decision"]["status"]])


def rebuild(
    db: MonitorDb = None,
    config: MonitorConfigFile = None,
    force: Annotated[
        bool,
        typer.Option("--force", help="Rebuild even where retention deleted events."),
    ] = False,
) -> None:
    """Recompute every monitoring bucket from the stored events (after an upgrade, or to audit).

    Events deleted by retention are gone, and a rebuild would drop their history
    from the buckets: it refuses when the buckets are older than the oldest stored
    event, unless --force.
    """
    from contextlib import ExitStack
    from datetime import UTC

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    with ExitStack() as stack:
        store = open_monitor(db, config, stack).store
        with store.cursor() as cursor:
            total, oldest_event, oldest_bucket = cursor.execute(
                "SELECT count(*), min(event_time), (SELECT min(bucket) FROM bucket_scores) "
                "FROM predictions"
            ).fetchone()
        if oldest_event is not None:
            oldest_event = oldest_event.astimezone(UTC)
        if oldest_bucket is not None:
            oldest_bucket = oldest_bucket.astimezone(UTC)
        first_minute = oldest_event and oldest_event.replace(second=0, microsecond=0)
        if (
            oldest_bucket is not None
            and not force
            and (first_minute is None or oldest_bucket < first_minute)
        ):
            since = (
                "no event"
                if oldest_event is None
                else f"events since {oldest_event:%Y-%m-%d %H:%M}"
            )
            raise Fail(
                f"the buckets go back to {oldest_bucket:%Y-%m-%d %H:%M} but the store keeps "
                f"{since} (retention deleted the rest): a rebuild would lose that history; "
                "--force to rebuild anyway"
            )
        progress = Progress(
            TextColumn("folding predictions"),
            BarColumn(),
            MofNCompleteColumn(),
            console=Console(stderr=True),
            transient=True,
            disable=not sys.stderr.isatty(),
        )
        with progress:
            task = progress.add_task("fold", total=total)
            done = store.rebuild_buckets(lambda n: progress.advance(task, n))
    typer.echo(
        f"rebuilt the buckets of {done['predictions']:,} predictions and "
        f"{done['joined']:,} labelled ones in {store.path}"
    )
