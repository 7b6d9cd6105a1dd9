"""``xebench status`` (ingestion health, from a server or a database file) and
``xebench retention`` (what the configured retention deletes; ``--dry-run`` only says).

Example:
    >>> from xebench.cli.main import main
    >>> main(["retention", "--db", "missing.duckdb", "--events", "30d", "--dry-run"])
    2
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from .app import Fail, JsonOut, one_line, write_text
from .ingest import IngestToken, IngestUrl
from .monitor import MonitorConfigFile, MonitorDb, Tenant

__all__ = ["open_store", "retention", "status"]


def open_store(db: Path | None, config: Path | None, stack: Any) -> tuple[Any, Any]:
    """The store of ``--db`` / ``--config`` (which must exist) and the loaded config;
    the store is closed with ``stack``.

    Example:
        >>> from contextlib import ExitStack
        >>> with ExitStack() as stack:  # doctest: +ELLIPSIS
        ...     open_store(Path("missing.duckdb"), None, stack)
        Traceback (most recent call last):
        ...
        xebench.cli.app.Fail: no event database at missing.duckdb (run ...)
    """
    from ..service.config import default_db_path, load_config
    from ..store.event_store import EventStore, StoreLockedError

    settings = load_config(config)
    path = Path(db or settings.db or default_db_path()).expanduser()
    if not path.exists():
        raise Fail(f"no event database at {path} (run `xebench demo` or `xebench ingest`)")
    try:
        store = stack.enter_context(
            EventStore(
                path,
                join_window=settings.join_window,
                monitor=settings.monitor,
                filter_bytes=settings.filter_bytes,
                recent_keys=settings.recent_keys,
            )
        )
    except StoreLockedError as error:
        raise Fail(f"{one_line(error)}; ask that server instead (--url)") from None
    return store, settings


def status(
    url: IngestUrl = None,
    token: IngestToken = None,
    db: MonitorDb = None,
    config: MonitorConfigFile = None,
    tenant: Tenant = "default",
    json_path: JsonOut = None,
) -> None:
    """Ingestion health: stored events, pending labels, orphans, arrival rates, ingest lag,
    queue depth and retention horizon, as GET /v1/status returns them.

    With --url it asks a running server (the token decides the tenant); else it
    opens the database file (--db, or the config's), which no server may hold.
    """
    from contextlib import ExitStack

    if url is not None:
        if db is not None:
            raise Fail("give --url (ask a server) or --db (open the database file), not both")
        from ..client.sdk import Client

        with Client(url, token=token) as client:
            document = client.status()
    else:
        with ExitStack() as stack:
            store, settings = open_store(db, config, stack)
            now = datetime.now(UTC)
            document = {"tenant": tenant, "at": now.isoformat(), **store.status(tenant, now=now)}
            document["join_window_s"] = store.join_window.total_seconds()
            document["retention"] = {
                "horizons": {k: v.isoformat() for k, v in settings.retention.horizons(now).items()}
            }
            document["identity"] = store.identity()
    if json_path is not None:
        write_text(json_path, json.dumps(document, indent=2) + "\n")
    _print_status(document)


def _print_status(document: dict[str, Any]) -> None:
    stored, rates, lag = document["stored"], document["rates"], document["ingest_lag_s"]
    lines = [
        f"tenant {document['tenant']} at {document['at']}",
        f"stored: {stored['predictions']:,} predictions, {stored['labels']:,} labels "
        f"(oldest event {document['oldest_event'] or '-'})",
        f"pending labels: {document['pending_labels']:,}, of which orphans: "
        f"{document['orphans']:,} (oldest pending {document['oldest_pending'] or '-'})",
        f"arrivals: {rates['predictions_per_s_5m']:g} predictions/s and "
        f"{rates['labels_per_s_5m']:g} labels/s (5 min), "
        f"{rates['labels_per_s_1h']:g} labels/s (1 h)",
        "ingest lag (last hour): "
        + (
            f"p50 {lag['p50']:g} s, p99 {lag['p99']:g} s, max {lag['max']:g} s"
            if lag["n"]
            else "no predictions"
        ),
    ]
    if "queue" in document:
        queue = document["queue"]
        lines.append(f"write queue: {queue['events']:,} of {queue['max_events']:,} events")
    horizons = document.get("retention", {}).get("horizons") or {}
    lines.append(
        "retention: "
        + (", ".join(f"{k} before {v}" for k, v in horizons.items()) or "keeps everything")
    )
    typer.echo("\n".join(lines))


def retention(
    db: MonitorDb = None,
    config: MonitorConfigFile = None,
    events: Annotated[
        str | None,
        typer.Option("--events", help="Delete events older than this (30d); default: config."),
    ] = None,
    minutes: Annotated[
        str | None,
        typer.Option("--minutes", help="Delete minute buckets older (7d); hourly ones stay."),
    ] = None,
    hours: Annotated[
        str | None,
        typer.Option("--hours", help="Roll hourly buckets older (90d) up into days."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only count what would be deleted.")
    ] = False,
    json_path: JsonOut = None,
) -> None:
    """Apply the retention policy (the config's retention: section, or --events /
    --minutes / --hours) to a database file: old events and old minute buckets go,
    old hourly buckets are rolled up into days.

    With --dry-run nothing is deleted: it prints the horizons and the rows per
    table that would go. A running server applies its own policy on a schedule.
    """
    from contextlib import ExitStack
    from dataclasses import replace

    from ..monitor.scope import parse_duration

    with ExitStack() as stack:
        store, settings = open_store(db, config, stack)
        policy = settings.retention
        try:
            if events is not None:
                policy = replace(policy, events=parse_duration(events, "--events"))
            if minutes is not None:
                policy = replace(policy, minutes=parse_duration(minutes, "--minutes"))
            if hours is not None:
                policy = replace(policy, hours=parse_duration(hours, "--hours"))
        except ValueError as error:
            raise Fail(str(error)) from None
        if not policy.active:
            raise Fail(
                "nothing to apply: give --events / --minutes / --hours or a config with retention:"
            )
        now = datetime.now(UTC)
        if dry_run:
            document = {"dry_run": True, **store.retention_plan(policy, now=now)}
        else:
            document = {"dry_run": False, **store.apply_policy(policy, now=now)}
    if json_path is not None:
        write_text(json_path, json.dumps(document, indent=2) + "\n")
    verb = "would delete" if dry_run else "deleted"
    typer.echo(
        "horizons: "
        + ", ".join(f"{k} before {v}" for k, v in document["horizons"].items())
        + f"\n{verb}: "
        + ", ".join(f"{n:,} {table}" for table, n in document["delete"].items())
    )
