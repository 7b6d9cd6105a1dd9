"""The ``xebench`` command line.

Exit codes: 0 success (``gate``: pass), 1 ``gate`` fail, 3 ``gate``
inconclusive, 2 bad usage or bad input -- always a one-line message on stderr,
never a traceback.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any

import typer

from .._version import __version__
from ..errors import XebenchError

app = typer.Typer(
    name="xebench",
    help="Cross-entropy benchmarking and monitoring of probabilistic models.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

#: Inputs smaller than this finish in a few seconds: no progress bar for them.
PROGRESS_MIN_BYTES = 64 * 1024 * 1024

EXIT_USAGE = 2


class _Fail(Exception):
    """A usage or input error: printed on one line, exit code 2."""


def _version(value: bool) -> None:
    if value:
        typer.echo(f"xebench {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Cross-entropy benchmarking and monitoring of probabilistic models."""


# --- shared options ------------------------------------------------------------

Data = Annotated[list[Path], typer.Argument(help="CSV, Parquet or JSON Lines files (by suffix).")]
Label = Annotated[str, typer.Option("--label", help="Column of observed labels.")]
Weight = Annotated[str | None, typer.Option("--weight", help="Column of row weights.")]
Classes = Annotated[
    str | None,
    typer.Option(
        "--classes",
        help="Classes in probability-column order, comma separated (needed for non-integer "
        "labels; binary: negative,positive).",
    ),
]
Eps = Annotated[float, typer.Option("--eps", help="Clip probabilities to [eps, 1 - eps].")]
Confidence = Annotated[float, typer.Option("--confidence", help="Confidence level.")]
JsonOut = Annotated[Path | None, typer.Option("--json", help="Write the result as JSON here.")]


def parse_classes(text: str | None) -> list[Any] | None:
    """``"a,b,c"`` -> ``["a", "b", "c"]``; integers stay integers.

    Example:
        >>> parse_classes("0,1,2"), parse_classes("neg, pos"), parse_classes(None)
        ([0, 1, 2], ['neg', 'pos'], None)
    """
    if text is None:
        return None
    items = [item.strip() for item in text.split(",") if item.strip()]
    try:
        return [int(item) for item in items]
    except ValueError:
        if {item.lower() for item in items} == {"true", "false"}:
            return [item.lower() == "true" for item in items]
        return items


def _progress(data: Sequence[Path]) -> tuple[Callable[[Any], None] | None, Any]:
    """A rich progress bar on stderr for large inputs on a terminal, else nothing."""
    total = sum(path.stat().st_size for path in data if path.is_file())
    if not sys.stderr.isatty() or total < PROGRESS_MIN_BYTES:
        return None, None
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    task = progress.add_task("reading", total=total)
    done: dict[str, int] = {}

    def on_chunk(chunk: Any) -> None:
        done[chunk.source] = chunk.bytes_done
        progress.update(task, completed=sum(done.values()), description=Path(chunk.source).name)

    return on_chunk, progress


def _run_benchmark(
    data: Sequence[Path],
    *,
    label: str,
    prob: Sequence[str],
    **options: Any,
) -> Any:
    from ..offline.benchmark import benchmark

    on_chunk, progress = _progress(data)
    files = [str(path) for path in data]
    if progress is None:
        return benchmark(files, label=label, probs=list(prob), on_chunk=on_chunk, **options)
    with progress:
        return benchmark(files, label=label, probs=list(prob), on_chunk=on_chunk, **options)


def _write(path: Path, text: str) -> None:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise _Fail(f"cannot write {path}: {exc.strerror or exc}") from None


def _parse_base(base: str) -> str | int:
    if base == "e":
        return "e"
    if base in ("2", "10"):
        return int(base)
    raise _Fail(f"--base must be e, 2 or 10; got {base!r}")


# --- bench ---------------------------------------------------------------------


@app.command()
def bench(
    data: Data,
    label: Label,
    prob: Annotated[
        list[str],
        typer.Option("--prob", help="A model's probability column: [NAME=]COLUMN (repeat)."),
    ],
    cohort: Annotated[
        list[str] | None, typer.Option("--cohort", help="Break results down by this column.")
    ] = None,
    weight: Weight = None,
    reference: Annotated[
        str | None, typer.Option("--reference", help="Model the others are compared with.")
    ] = None,
    classes: Classes = None,
    eps: Eps = 1e-15,
    base: Annotated[str, typer.Option("--base", help="Log base: e (nats), 2 (bits) or 10.")] = "e",
    confidence: Confidence = 0.95,
    n_bins: Annotated[int, typer.Option("--n-bins", help="Bins of the ECE.")] = 15,
    min_cohort_size: Annotated[
        int, typer.Option("--min-cohort-size", help="Smaller cohorts are marked as small.")
    ] = 100,
    json_path: JsonOut = None,
    markdown_path: Annotated[
        Path | None, typer.Option("--markdown", help="Write Markdown tables here (PR comment).")
    ] = None,
    html_path: Annotated[
        Path | None, typer.Option("--html", help="Write a self-contained HTML report here.")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="Print no tables.")] = False,
) -> None:
    """Rank models by log loss on the same rows, with CIs, comparisons and cohorts."""
    result = _run_benchmark(
        data,
        label=label,
        prob=prob,
        cohorts=cohort or (),
        weight=weight,
        reference=reference,
        classes=parse_classes(classes),
        eps=eps,
        base=_parse_base(base),
        confidence=confidence,
        n_bins=n_bins,
        min_cohort_size=min_cohort_size,
    )
    document = result.to_dict()
    if json_path is not None:
        _write(json_path, json.dumps(document, indent=2, allow_nan=False) + "\n")
    if markdown_path is not None:
        _write(markdown_path, result.to_markdown())
    if html_path is not None:
        _write(html_path, result.to_html())
    if not quiet:
        from ..report.console import print_report

        print_report(document)


# --- gate ----------------------------------------------------------------------


@app.command()
def gate(
    data: Data,
    label: Label,
    prob: Annotated[
        list[str],
        typer.Option("--prob", help="candidate=COLUMN and baseline=COLUMN."),
    ],
    max_degradation: Annotated[
        float,
        typer.Option("--max-degradation", help="Allowed relative increase of log loss."),
    ] = 0.0,
    min_samples: Annotated[
        int, typer.Option("--min-samples", help="Fewer rows give 'inconclusive' (exit 3).")
    ] = 1000,
    confidence: Confidence = 0.95,
    looks: Annotated[
        int, typer.Option("--looks", help="Planned number of checks (Bonferroni).")
    ] = 1,
    weight: Weight = None,
    classes: Classes = None,
    eps: Eps = 1e-15,
    json_path: JsonOut = None,
) -> None:
    """Pass (0), fail (1) or inconclusive (3): is the candidate worse than the baseline?"""
    from ..analysis.compare import decide
    from ..offline.benchmark import parse_prob_specs

    models = parse_prob_specs(prob)
    if sorted(models) != ["baseline", "candidate"]:
        raise _Fail(
            "gate needs exactly --prob candidate=COLUMN and --prob baseline=COLUMN; "
            f"got models {list(models)}"
        )
    result = _run_benchmark(
        data,
        label=label,
        prob=[f"{name}={column}" for name, column in models.items()],
        reference="baseline",
        weight=weight,
        classes=parse_classes(classes),
        eps=eps,
        confidence=confidence,
    )
    comparison = result.paired["candidate"].result(confidence=confidence)
    decision = decide(
        comparison,
        max_degradation=max_degradation,
        min_samples=min_samples,
        confidence=confidence,
        looks=looks,
    )
    if json_path is not None:
        _write(json_path, json.dumps(decision.to_dict(), indent=2, allow_nan=False) + "\n")
    typer.echo(f"{decision.status.upper()}: {decision.reason}")
    c = decision.comparison
    typer.echo(
        f"  candidate log loss {c.candidate_log_loss:.6f}, baseline {c.baseline_log_loss:.6f}, "
        f"delta {c.delta:+.6f} [{c.delta_ci[0]:+.6f}, {c.delta_ci[1]:+.6f}], "
        f"p = {decision.p_value:.3g} (alpha {decision.alpha:.3g})"
    )
    raise typer.Exit(decision.exit_code)


# --- serve ---------------------------------------------------------------------


@app.command()
def serve(
    db: Annotated[
        Path | None,
        typer.Option(
            "--db",
            help="DuckDB database file (default: $XEBENCH_DB, else "
            "~/.local/share/xebench/xebench.duckdb); created if missing.",
        ),
    ] = None,
    host: Annotated[str, typer.Option("--host", help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port.")] = 8000,
    config: Annotated[
        Path | None, typer.Option("--config", help="YAML file: tokens, PII, limits.")
    ] = None,
    workers: Annotated[
        int, typer.Option("--workers", help="Must be 1: one process writes the database.")
    ] = 1,
    insecure: Annotated[
        bool,
        typer.Option("--insecure", help="Allow a non-loopback address without tokens."),
    ] = False,
    log_level: Annotated[str, typer.Option("--log-level", help="debug, info, warning.")] = "info",
    access_log: Annotated[
        bool, typer.Option("--access-log/--no-access-log", help="Log one line per request.")
    ] = True,
) -> None:
    """Run the HTTP service: ingest prediction and label events into the event store."""
    from ..service.server import run_server

    run_server(
        db=db,
        host=host,
        port=port,
        config_path=config,
        workers=workers,
        insecure=insecure,
        log_level=log_level,
        access_log=access_log,
    )


token_app = typer.Typer(help="Create service tokens.", no_args_is_help=True)
app.add_typer(token_app, name="token")


@token_app.command("create")
def token_create(
    tenant: Annotated[str, typer.Option("--tenant", help="Tenant the token belongs to.")],
    scopes: Annotated[
        str, typer.Option("--scopes", help="Comma-separated: ingest, read.")
    ] = "ingest,read",
) -> None:
    """Print a new random token and the config entry that stores only its salted hash."""
    from ..service.config import TokenEntry, check_tenant, hash_token, new_token, parse_scopes

    entry = TokenEntry(
        check_tenant(tenant, "--tenant"),
        parse_scopes(scopes, "--scopes"),
        hash_token(token := new_token()),
    )
    typer.echo(f"token (give it to the client; it is not stored anywhere): {token}")
    typer.echo("config entry (add under `tokens:` in the --config file):")
    typer.echo(f"  - tenant: {entry.tenant}")
    typer.echo(f"    scopes: [{', '.join(sorted(entry.scopes))}]")
    typer.echo(f'    hash: "{entry.digest}"')


# --- ingest --------------------------------------------------------------------

ingest_app = typer.Typer(
    help="Import prediction or label events from CSV, Parquet or JSON Lines files.",
    no_args_is_help=True,
)
app.add_typer(ingest_app, name="ingest")

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
        raise _Fail("give --db (write the database file) or --url (send to a server), not both")
    input_files(files)  # a missing file fails before a database is created or a server is called
    run = import_predictions if kind == "predictions" else import_labels
    with ExitStack() as stack:
        if url is not None:
            if tenant != "default":
                raise _Fail("--tenant applies to --db; through --url the token decides the tenant")
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
                target = stack.enter_context(EventStore(path, join_window=settings.join_window))
            except StoreLockedError as error:
                raise _Fail(
                    f"{_one_line(error)} (or import through that server: --url http://HOST:PORT)"
                ) from None
            except OSError as error:
                raise _Fail(f"cannot open {path}: {error.strerror or error}") from None
            mapping.update(tenant=tenant, limits=settings.limits)
            if kind == "predictions":
                mapping["pii"] = settings.pii
            where = str(path)
        on_chunk, progress = _ingest_progress(files, kind)
        if progress is not None:
            stack.enter_context(progress)
        summary = run(list(files), target, on_chunk=on_chunk, **mapping)
    typer.echo(summary.line(where))


@ingest_app.command("predictions")
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
        batch_rows=chunk_rows,
    )  # fmt: skip


@ingest_app.command("labels")
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


# --- monitoring over a database file ---------------------------------------------

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


def _open_monitor(
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
        raise _Fail(f"no event database at {path} (run `xebench demo` or `xebench ingest`)")
    try:
        store = stack.enter_context(
            EventStore(path, join_window=settings.join_window, monitor=settings.monitor)
        )
    except StoreLockedError as error:
        raise _Fail(f"{_one_line(error)}; ask that server instead (GET /v1/...)") from None
    for model in models:
        if store.known_labels(tenant, model.partition(":")[0]) is None:
            raise _Fail(f"no model {model.partition(':')[0]!r} for tenant {tenant!r} in {path}")
    store.update_buckets()
    return Monitor(store, settings.monitoring)


@app.command()
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

    from ..report.monitor import print_series, print_windows

    with ExitStack() as stack:
        monitor = _open_monitor(db, config, stack, tenant, model)
        from ..monitor.scope import Scope

        asked = Scope(tenant, model, version, cohort, window, start, end)
        if step is not None:
            document = monitor.series(asked, step=step, base=_parse_base(base)).to_dict()
        else:
            document = monitor.window(asked, base=_parse_base(base)).to_dict()
    if json_path is not None:
        _write(json_path, json.dumps(document, indent=2) + "\n")
    scope = f"{model}" + (f" {version}" if version else "") + (f" {cohort}" if cohort else "")
    if step is not None:
        print_series(f"{scope}: every {step}", document["series"])
    else:
        print_windows(f"{scope}: {document['from']} to {document['to']}", [("window", document)])
        if document["provisional"]:
            typer.echo(f"provisional: {document['provisional_reason']}")


@app.command()
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
        monitor = _open_monitor(db, config, stack, tenant, candidate, baseline)
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
        _write(json_path, json.dumps(document, indent=2) + "\n")
    print_compare(document)
    raise typer.Exit({"pass": 0, "fail": 1, "inconclusive": 3}[document["decision"]["status"]])


@app.command()
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
        store = _open_monitor(db, config, stack).store
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
            raise _Fail(
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


@app.command()
def demo(
    out: Annotated[
        Path, typer.Option("--out", help="Directory for the demo database, config and summary.")
    ] = Path("xebench-demo"),
    seed: Annotated[int, typer.Option("--seed", help="Seed of the synthetic stream.")] = 0,
    hours: Annotated[float, typer.Option("--hours", help="Length of the stream.")] = 48.0,
) -> None:
    """A synthetic production stream, monitored end to end: windows, drift, canary.

    Writes a fresh event database to --out, prints what an on-call engineer
    would check, and tells how to serve it. Finishes in well under a minute.
    """
    from ..demo.tour import run_demo

    if hours < 2:
        raise _Fail("--hours must be at least 2 (the canary and the drift need a history)")
    run_demo(out, seed=seed, hours=hours, echo=typer.echo)


# --- drift ---------------------------------------------------------------------


def _drift_offline(
    reference: Sequence[Path],
    current: Sequence[Path],
    **options: Any,
) -> Any:
    """``drift_files`` on the given files, with a progress bar for big inputs."""
    from ..offline.drift import drift_files

    on_chunk, progress = _progress([*reference, *current])
    if progress is None:
        return drift_files(list(reference), list(current), progress=on_chunk, **options)
    with progress:
        return drift_files(list(reference), list(current), progress=on_chunk, **options)


@app.command()
def drift(
    reference: Annotated[
        list[str] | None,
        typer.Option(
            "--reference",
            metavar="FILE|SPEC",
            help="Offline: reference data (the baseline the bins are fixed from), CSV, Parquet "
            "or JSON Lines; repeat for several files. With --model: rolling (the previous "
            "window, the default), version:V, range:FROM/TO, uploaded (PUT "
            "/v1/references/MODEL) or file:PATH.",
        ),
    ] = None,
    current: Annotated[
        list[Path] | None,
        typer.Option(
            "--current",
            metavar="FILE",
            help="Offline: current data compared with the reference; repeat for several files.",
        ),
    ] = None,
    feature: Annotated[
        list[str] | None,
        typer.Option(
            "--feature",
            metavar="COL",
            help="Compare this column (repeat). Default: every column in all files of both sides.",
        ),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option("--model", help="Drift of this model's events in the event database."),
    ] = None,
    db: MonitorDb = None,
    version: Annotated[
        str | None, typer.Option("--version", help="With --model: one version.")
    ] = None,
    cohort: Cohort = None,
    window: Window = None,
    start: Start = None,
    end: End = None,
    tenant: Tenant = "default",
    config: MonitorConfigFile = None,
    bins: Annotated[
        int | None,
        typer.Option("--bins", help="Offline: quantile bins of a numeric feature (10)."),
    ] = None,
    top_k: Annotated[
        int | None,
        typer.Option(
            "--top-k",
            help="Offline: categories of a categorical feature, the most frequent reference "
            "values; the rest count as __other__ (20).",
        ),
    ] = None,
    min_samples: Annotated[
        int | None,
        typer.Option(
            "--min-samples",
            help="Fewer values than this on either side: verdict 'insufficient', no alarm (500).",
        ),
    ] = None,
    threshold: Annotated[
        float | None,
        typer.Option(
            "--threshold",
            help="Jensen-Shannon divergence (nats) at or above which a feature has drifted "
            "(0.01 = Evidently's JS distance 0.1, squared).",
        ),
    ] = None,
    smoothing: Annotated[
        float | None,
        typer.Option("--smoothing", help="Offline: added to every bin share for KL and PSI."),
    ] = None,
    json_path: JsonOut = None,
    html_path: Annotated[
        Path | None, typer.Option("--html", help="Write a self-contained HTML report here.")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="Print no table.")] = False,
) -> None:
    """Feature drift: KL, JS and PSI per feature, drifted first.

    Offline, between two sets of files: --reference FILE... --current FILE....
    Bins are fixed from the reference (quantiles for numbers, the most
    frequent values for categories, plus out-of-range / NaN / other / missing
    bins).

    In production, with --model: the window of the model's events in the
    event database (--db or the --config's) against a reference (--reference
    rolling, version:V, range:FROM/TO, uploaded or file:PATH; default: the
    model's configured reference, else rolling), for its features, score and labels,
    from the monitoring buckets, as GET /v1/drift answers.

    The exit code is 0 whether or not drift is found (read the verdicts, or
    "drifted" in --json); 2 on bad usage or bad input.
    """
    if model is not None:
        offline_only = {
            "--current": current,
            "--feature": feature,
            "--bins": bins,
            "--top-k": top_k,
            "--smoothing": smoothing,
        }
        given = [name for name, value in offline_only.items() if value]
        if given:
            raise _Fail(
                f"{', '.join(given)} compare files offline; with --model the bins and "
                "features are the monitoring ones"
            )
        if reference is not None and len(reference) > 1:
            raise _Fail(
                "with --model, give one --reference (rolling, version:V, range:A/B, uploaded, "
                "file:P)"
            )
        document = _drift_of_model(
            model,
            db=db,
            config=config,
            tenant=tenant,
            reference=reference[0] if reference else None,
            version=version,
            cohort=cohort,
            window=window,
            start=start,
            end=end,
            min_samples=min_samples,
            threshold=threshold,
        )
    else:
        store_only = {
            "--db": db,
            "--config": config,
            "--version": version,
            "--cohort": cohort,
            "--window": window,
            "--from": start,
            "--to": end,
        }
        given = [name for name, value in store_only.items() if value]
        if given:
            verb = "needs" if len(given) == 1 else "need"
            raise _Fail(f"{', '.join(given)} {verb} --model (drift of a model's stored events)")
        from ..offline import drift as offline

        document = _drift_of_files(
            [Path(r) for r in reference or []],
            current or [],
            features=feature or None,
            n_bins=offline.DEFAULT_BINS if bins is None else bins,
            top_k=offline.DEFAULT_TOP_K if top_k is None else top_k,
            min_samples=offline.DEFAULT_MIN_SAMPLES if min_samples is None else min_samples,
            threshold=offline.DEFAULT_THRESHOLD if threshold is None else threshold,
            smoothing=offline.DEFAULT_SMOOTHING if smoothing is None else smoothing,
        )
    if json_path is not None:
        _write(json_path, json.dumps(document, indent=2, allow_nan=False) + "\n")
    if html_path is not None:
        from ..report.drift import render_drift_html

        _write(html_path, render_drift_html(document))
    if not quiet:
        from ..report.console import print_drift

        print_drift(document)


def _drift_of_files(reference: list[Path], current: list[Path], **options: Any) -> dict[str, Any]:
    """The offline drift document of two sets of files."""
    if not reference and not current:
        raise _Fail(
            "give the data to compare: --reference FILE... --current FILE..., "
            "or --model M for a model's stored events"
        )
    if not reference or not current:
        missing = "--reference" if not reference else "--current"
        raise _Fail(f"{missing} FILE is needed too: drift compares reference with current data")
    return _drift_offline(reference, current, **options).to_dict()


def _drift_of_model(
    model: str, *, db: Path | None, config: Path | None, tenant: str, **options: Any
) -> dict[str, Any]:
    """The drift document of a model's window in the event database."""
    from contextlib import ExitStack

    with ExitStack() as stack:
        from ..monitor.scope import Scope

        monitor = _open_monitor(db, config, stack, tenant, model)
        scope = {
            name: options.pop(name) for name in ("version", "cohort", "window", "start", "end")
        }
        return monitor.drift(Scope(tenant, model, **scope), **options).to_dict()


# --- entry point ---------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code.

    Example:
        >>> main(["--version"])  # doctest: +ELLIPSIS
        xebench ...
        0
    """
    command = typer.main.get_command(app)
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        # Not standalone: click returns typer.Exit codes instead of exiting, and
        # lets our errors through so they print as one line, not a traceback.
        code = command.main(args=args, prog_name="xebench", standalone_mode=False)
    except (XebenchError, ValueError, _Fail) as error:
        typer.echo(f"error: {_one_line(error)}", err=True)
        return EXIT_USAGE
    except FileNotFoundError as error:
        typer.echo(f"error: {error.filename}: no such file", err=True)
        return EXIT_USAGE
    except typer.Abort:
        typer.echo("aborted", err=True)
        return 130
    except Exception as error:
        # Usage errors of the click that typer bundles: they know how to show themselves.
        show, exit_code = getattr(error, "show", None), getattr(error, "exit_code", None)
        if callable(show) and isinstance(exit_code, int):
            show(file=sys.stderr)
            return exit_code
        raise
    return code if isinstance(code, int) else 0


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


if __name__ == "__main__":  # pragma: no cover
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
