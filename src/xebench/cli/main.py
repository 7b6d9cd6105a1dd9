"""The ``xebench`` command line: every command group registered, and the entry point.

Exit codes: 0 success (``gate``: pass), 1 ``gate`` fail, 3 ``gate``
inconclusive, 2 bad usage or bad input -- always a one-line message on stderr,
never a traceback.

One module per command group; this one lists them, in the order ``--help``
shows them:

- :mod:`~xebench.cli.bench`: ``bench``, ``gate`` (files)
- :mod:`~xebench.cli.serve`: ``serve`` (the HTTP service)
- :mod:`~xebench.cli.monitor`: ``metrics``, ``compare``, ``rebuild`` (an event database)
- :mod:`~xebench.cli.alerts`: ``alerts`` (SLOs, budgets, burn-rate alerts of a database)
- :mod:`~xebench.cli.demo`: ``demo``
- :mod:`~xebench.cli.drift`: ``drift`` (files, or an event database)
- :mod:`~xebench.cli.tokens`: ``token create``
- :mod:`~xebench.cli.ingest`: ``ingest predictions``, ``ingest labels``
- :mod:`~xebench.cli.xeb`: ``xeb`` (quantum XEB fidelity of a table of shots)
- :mod:`~xebench.cli.lm`: ``lm`` (language models' token log-probabilities on the same texts)
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

import typer

from ..errors import XebenchError
from . import alerts, bench, demo, drift, ingest, lm, monitor, operations, serve, tokens, xeb
from .app import EXIT_USAGE, Command, Fail, app, one_line

__all__ = ["app", "main"]

for command in (
    bench.bench,
    bench.gate,
    serve.serve,
    monitor.metrics,
    monitor.compare,
    monitor.rebuild,
    operations.status,
    operations.retention,
    alerts.alerts,
    demo.demo,
    drift.drift,
    xeb.xeb,
    lm.lm,
):
    app.command(cls=Command)(command)
app.add_typer(tokens.token_app, name="token")
app.add_typer(ingest.ingest_app, name="ingest")


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
    except (XebenchError, ValueError, Fail) as error:
        typer.echo(f"error: {one_line(error)}", err=True)
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


if __name__ == "__main__":  # pragma: no cover
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
