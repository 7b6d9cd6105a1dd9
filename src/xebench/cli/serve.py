"""``xebench serve``: the HTTP service under uvicorn (:mod:`xebench.service.server`).

Example (bad usage: exit code 2 and the reason on one line of stderr, here
``error: MESSAGE``):
    >>> from xebench.cli.main import main
    >>> main(["serve", "--workers", "2"])
    2
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["serve"]


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
