"""``xebench ingest predictions|labels``: events from files into the event store.

The rows go to a database file (``--db``) or, through a running ``xebench
serve``, to its HTTP API (``--url``); both paths are in this module.

Example (bad usage: exit code 2 and the reason on one line of stderr, here
``error: MESSAGE``):
    >>> from xebench.cli.main import main
    >>> main(["ingest", "labels", "missing.csv", "--db", "x.duckdb", "--url", "http://h"])
    2
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer

from .app import Command, Fail, one_line, parse_classes

__all__ = ["ingest_app", "ingest_labels", "ingest_predictions"]

ingest_app = typer.Typer(
    help="Import prediction or label events from CSV, Parquet or JSON Lines files.",
    no_args_is_help=True,
)

IngestFiles = Annotated[
    list[Path],
    typer.Argument(metavar="FILE", help="CSV, Parquet or JSON Lines files (by suffix)."),
]
IngestDb = Annotated[
    Path | None,
    typer.Option(
        "--db",
        metavar="PATH",
        help="DuckDB database file (default: the --config file's db, $XEBENCH_DB, else "
        "~/.local/share/xebench/xebench.duckdb); created if missing.",
    ),
]
IngestUrl = Annotated[
    str | None,
    typer.Option(
        "--url",
        metavar="URL",
        help="Send through a running `xebench serve` at this URL instead of opening the "
        "database (which the server holds).",
    ),
]
IngestToken = Annotated[
    str | None,
    typer.Option(
        "--token",
        metavar="TOKEN",
        envvar="XEBENCH_TOKEN",
        help="Bearer token for --url ($XEBENCH_TOKEN).",
    ),
]
IngestTenant = Annotated[
    str,
    typer.Option(
        "--tenant",
        metavar="TENANT",
        help="Tenant of the events (--db only; with --url the token's).",
    ),
]
IngestConfig = Annotated[
    Path | None,
    typer.Option(
        "--config", metavar="FILE", help="The service's YAML config: db, PII, limits, join window."
    ),
]
IngestRequestId = Annotated[
    str, typer.Option("--request-id", metavar="COL", help="Column of request ids.")
]
IngestModel = Annotated[
    str | None,
    typer.Option("--model", metavar="NAME", help="Model name for every row (instead of a column)."),
]
IngestModelCol = Annotated[
    str | None,
    typer.Option("--model-col", metavar="COL", help="Column of model names (default: model)."),
]
IngestTimestamp = Annotated[
    str | None,
    typer.Option(
        "--timestamp",
        metavar="COL",
        help="Column of event times, RFC 3339 (default: timestamp, if present).",
    ),
]
IngestTimezone = Annotated[
    str | None,
    typer.Option(
        "--timezone",
        metavar="ZONE",
        help="Zone of times written without one, e.g. UTC (default: such times are refused).",
    ),
]
IngestChunkRows = Annotated[
    int,
    typer.Option("--chunk-rows", metavar="N", help="Rows validated and committed together.", min=1),
]


def _ingest_progress(files: Sequence[Path], kind: str) -> tuple[Any, Any]:
    """A rich progress bar (rows, rows/s, time left) on stderr when it is a terminal."""
    if not sys.stderr.isatty():
        return None, None
    import time

    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from ..ingest.files import estimate_rows

    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:,.0f}/~{task.total:,.0f} " + kind),
        TextColumn("{task.fields[rate]:,.0f} rows/s"),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    total = sum(estimate_rows(path) for path in files)
    task = progress.add_task("importing", total=max(total, 1), rate=0.0)
    state = {"rows": 0, "start": time.monotonic()}

    def on_chunk(chunk: Any) -> None:
        state["rows"] += chunk.table.num_rows
        elapsed = max(time.monotonic() - state["start"], 1e-9)
        progress.update(
            task,
            completed=state["rows"],
            total=max(total, state["rows"]),  # the estimate may be short
            description=Path(chunk.source).name,
            rate=state["rows"] / elapsed,
        )

    return on_chunk, progress


def _ingest(
    kind: str,
    files: Sequence[Path],
    *,
    db: Path | None,
    url: str | None,
    token: str | None,
    tenant: str,
    config: Path | None,
    **mapping: Any,
) -> None:
    from contextlib import ExitStack

    from ..client.files import HttpTarget
    from ..ingest.files import import_labels, import_predictions, input_files
    from ..service.config import check_tenant, default_db_path, load_config

    if db is not None and url is not None:
        raise Fail("give --db (write the database file) or --url (send to a server), not both")
    input_files(files)  # a missing file fails before a database is created or a server is called
    run = import_predictions if kind == "predictions" else import_labels
    with ExitStack() as stack:
        if url is not None:
            if tenant != "default":
                raise Fail("--tenant applies to --db; through --url the token decides the tenant")
            target: Any = stack.enter_context(HttpTarget(url, token))
            target.check()
            where = url
        else:
            from ..store.event_store import EventStore, StoreLockedError

            tenant = check_tenant(tenant, "--tenant")
            settings = load_config(config)
            path = Path(db or settings.db or default_db_path()).expanduser()
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                target = stack.enter_context(  # the config's buckets if anything folds here
                    EventStore(path, join_window=settings.join_window, monitor=settings.monitor)
                )
            except StoreLockedError as error:
                raise Fail(
                    f"{one_line(error)} (or import through that server: --url http://HOST:PORT)"
                ) from None
            except OSError as error:
                raise Fail(f"cannot open {path}: {error.strerror or error}") from None
            mapping.update(tenant=tenant, limits=settings.limits)
            if kind == "predictions":
                mapping["pii"] = settings.pii
            where = str(path)
        on_chunk, progress = _ingest_progress(files, kind)
        if progress is not None:
            stack.enter_context(progress)
        summary = run(list(files), target, on_chunk=on_chunk, **mapping)
    typer.echo(summary.line(where))


@ingest_app.command("predictions", cls=Command)
def ingest_predictions(
    files: IngestFiles,
    request_id: IngestRequestId = "request_id",
    model: IngestModel = None,
    model_col: IngestModelCol = None,
    version: Annotated[
        str | None, typer.Option("--version", metavar="NAME", help="Model version for every row.")
    ] = None,
    version_col: Annotated[
        str | None,
        typer.Option(
            "--version-col",
            metavar="COL",
            help="Column of versions (default: version, if present).",
        ),
    ] = None,
    prob: Annotated[
        str,
        typer.Option(
            "--prob",
            metavar="COL",
            help="Probability column: a float (binary P(class 1)), a list or JSON array "
            "(one per class) or a JSON object {class: p}.",
        ),
    ] = "probabilities",
    classes: Annotated[
        str | None,
        typer.Option(
            "--classes",
            metavar="A,B,...",
            help="Class names in probability order, comma separated.",
        ),
    ] = None,
    timestamp: IngestTimestamp = None,
    timezone: IngestTimezone = None,
    cohort: Annotated[
        list[str] | None,
        typer.Option(
            "--cohort", metavar="[KEY=]COL", help="Cohort column, COLUMN or KEY=COLUMN (repeat)."
        ),
    ] = None,
    feature: Annotated[
        list[str] | None,
        typer.Option(
            "--feature", metavar="[KEY=]COL", help="Feature column, COLUMN or KEY=COLUMN (repeat)."
        ),
    ] = None,
    weight: Annotated[
        str | None,
        typer.Option(
            "--weight",
            "--weight-col",
            metavar="COL",
            help="Column of the events' business weights (finite, in [1e-12, 1e12]), as "
            "bench --weight (default: every event weighs 1).",
        ),
    ] = None,
    db: IngestDb = None,
    url: IngestUrl = None,
    token: IngestToken = None,
    tenant: IngestTenant = "default",
    config: IngestConfig = None,
    chunk_rows: IngestChunkRows = 10_000,
) -> None:
    """Import prediction events (one per row) into the event store."""
    _ingest(
        "predictions", files, db=db, url=url, token=token, tenant=tenant, config=config,
        request_id=request_id, model=model, model_col=model_col, version=version,
        version_col=version_col, prob=prob, classes=parse_classes(classes),
        timestamp=timestamp, timezone=timezone, cohorts=cohort or (), features=feature or (),
        weight=weight, batch_rows=chunk_rows,
    )  # fmt: skip


@ingest_app.command("labels", cls=Command)
def ingest_labels(
    files: IngestFiles,
    request_id: IngestRequestId = "request_id",
    label: Annotated[
        str, typer.Option("--label", metavar="COL", help="Column of observed labels.")
    ] = "label",
    model: IngestModel = None,
    model_col: Annotated[
        str | None,
        typer.Option(
            "--model-col",
            metavar="COL",
            help="Column of model names (default: model, if present; no model: the label "
            "applies to every model that scored the request).",
        ),
    ] = None,
    timestamp: IngestTimestamp = None,
    timezone: IngestTimezone = None,
    db: IngestDb = None,
    url: IngestUrl = None,
    token: IngestToken = None,
    tenant: IngestTenant = "default",
    config: IngestConfig = None,
    chunk_rows: IngestChunkRows = 10_000,
) -> None:
    """Import label events (observed outcomes); labels wait for their predictions."""
    _ingest(
        "labels", files, db=db, url=url, token=token, tenant=tenant, config=config,
        request_id=request_id, label=label, model=model, model_col=model_col,
        timestamp=timestamp, timezone=timezone, batch_rows=chunk_rows,
    )  # fmt: skip
