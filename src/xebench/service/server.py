"""``xebench serve``: open the event store and run the HTTP service under uvicorn.

Example:
    >>> check_bind("127.0.0.1", tokens=False, insecure=False)
    >>> check_bind("0.0.0.0", tokens=False, insecure=False)
    Traceback (most recent call last):
    ...
    xebench.errors.ServeError: refusing to listen on 0.0.0.0 without tokens:
    anyone who reaches the port could write and read events. Configure
    tokens (`xebench token create`, then --config or XEBENCH_TOKENS), bind 127.0.0.1,
    or pass --insecure.
"""

from __future__ import annotations

import ipaddress
import logging
import sys
from pathlib import Path

from .._version import __version__
from ..errors import ServeError
from .config import ServiceConfig, default_db_path, load_config
from .logs import configure_logging

__all__ = ["ServeError", "check_bind", "check_workers", "run_server"]


def check_workers(workers: int) -> None:
    """Refuse more than one worker process, and say why.

    Example:
        >>> check_workers(1)
    """
    if workers != 1:
        raise ServeError(
            f"--workers {workers}: xebench serves from one process. DuckDB lets one process "
            "write a database file, and the single writer thread is what makes every "
            "acknowledged event durable and counted once. One process ingests tens of "
            "thousands of events per second; run one server per database (e.g. per tenant "
            "group) if you need more."
        )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_bind(host: str, *, tokens: bool, insecure: bool) -> None:
    """Without tokens, only a loopback address may be bound unless ``insecure``."""
    if not tokens and not insecure and not _is_loopback(host):
        raise ServeError(
            f"refusing to listen on {host} without tokens: anyone who reaches the port could "
            "write and read events. Configure tokens (`xebench token create`, then --config "
            "or XEBENCH_TOKENS), bind 127.0.0.1, or pass --insecure."
        )


def run_server(
    *,
    db: Path | None,
    host: str,
    port: int,
    config_path: Path | None,
    workers: int = 1,
    insecure: bool = False,
    log_level: str = "info",
    access_log: bool = True,
) -> None:
    """Open the store, print where it is, and serve until interrupted."""
    import uvicorn

    from ..store.event_store import EventStore
    from .app import create_app
    from .memory import configure_allocators

    check_workers(workers)
    configure_allocators()
    config: ServiceConfig = load_config(config_path)
    check_bind(host, tokens=config.tokens.enabled, insecure=insecure)
    path = Path(db or config.db or default_db_path()).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)

    def open_store() -> EventStore:
        return EventStore(
            path,
            join_window=config.join_window,
            memory_limit=config.memory_limit,
            monitor=config.monitor,
            filter_bytes=config.filter_bytes,
            recent_keys=config.recent_keys,
        )

    store = open_store()
    configure_logging(log_level)
    if not access_log:
        logging.getLogger("xebench.access").setLevel(logging.WARNING)
    tenants = sorted({entry.tenant for entry in config.tokens.entries})
    auth = f"tokens for {', '.join(tenants)}" if tenants else "no tokens (single tenant 'default')"
    print(f"xebench {__version__}: database {path}", file=sys.stderr, flush=True)
    print(
        f"listening on http://{host}:{port} ({auth}); API spec at http://{host}:{port}/openapi.json",
        file=sys.stderr,
        flush=True,
    )
    app = create_app(store, config, reopen=open_store, close_store=True)
    # On SIGTERM / SIGINT uvicorn stops accepting, the lifespan drains the writer and
    # closes the store, then uvicorn re-raises the signal (exit status -15 / 130).
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=10,
    )
