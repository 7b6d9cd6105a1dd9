"""The typer application of ``xebench`` and what its command groups share.

The command modules (``bench``, ``serve``, ``monitor``, ``demo``, ``drift``,
``tokens``, ``ingest``) define their commands with the options declared here;
:mod:`xebench.cli.main` registers them on :data:`app`, in the order ``--help``
lists them, and runs it.

Example:
    >>> parse_base("2"), one_line(ValueError("a\\n  b"))
    (2, 'a b')
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperArgument, TyperCommand

from .._version import __version__
from ..errors import XebenchError

__all__ = [
    "EXIT_USAGE",
    "PROGRESS_MIN_BYTES",
    "Classes",
    "Command",
    "Confidence",
    "Data",
    "Eps",
    "Fail",
    "JsonOut",
    "Label",
    "Weight",
    "app",
    "file_progress",
    "one_line",
    "parse_base",
    "parse_classes",
    "write_text",
]


class _Many(TyperArgument):
    """An argument of one or more values, shown as its metavar: ``DATA...``.

    Typer would print ``{data}...`` in the usage line and ``data...
    <list[Path]>`` among the arguments.
    """

    def _usage_display_name(self) -> str:
        return f"{self.metavar or (self.name or '').upper()}..."

    def _rich_display_name(self) -> str:
        return self._usage_display_name()

    def display_type_rich(self, ctx: Any) -> str | None:
        return None


class Command(TyperCommand):
    """A typer command whose list arguments show as ``DATA...`` / ``FILE...`` in ``--help``.

    Example:
        >>> from typer.testing import CliRunner
        >>> demo = typer.Typer(add_completion=False, rich_markup_mode=None)
        >>> @demo.command(cls=Command)
        ... def count(data: Data) -> None:
        ...     typer.echo(len(data))
        >>> print(CliRunner().invoke(demo, ["--help"]).output)  # doctest: +ELLIPSIS
        Usage: count [OPTIONS] DATA...
        <BLANKLINE>
        Arguments:
          DATA...  CSV, Parquet or JSON Lines files (by suffix).  [required]
        ...
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for param in self.params:
            if type(param) is TyperArgument and param.nargs == -1:
                param.__class__ = _Many  # the same argument, shown by its metavar


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


class Fail(XebenchError):
    """A usage or input error: printed on one line, exit code 2.

    Example:
        >>> str(Fail("--base must be e, 2 or 10"))
        '--base must be e, 2 or 10'
    """


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

Data = Annotated[
    list[Path],
    typer.Argument(metavar="DATA", help="CSV, Parquet or JSON Lines files (by suffix)."),
]
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


def parse_base(base: str) -> str | int:
    """The ``--base`` option as the metrics take it: ``"e"``, 2 or 10.

    Example:
        >>> parse_base("e"), parse_base("10")
        ('e', 10)
        >>> parse_base("3")
        Traceback (most recent call last):
        ...
        xebench.cli.app.Fail: --base must be e, 2 or 10; got '3'
    """
    if base == "e":
        return "e"
    if base in ("2", "10"):
        return int(base)
    raise Fail(f"--base must be e, 2 or 10; got {base!r}")


def file_progress(data: Sequence[Path]) -> tuple[Callable[[Any], None] | None, Any]:
    """A rich progress bar on stderr for large inputs on a terminal, else nothing.

    Returns the ``on_chunk`` callback of the readers and the bar to enter
    (``with progress:``), or ``(None, None)``.

    Example:
        >>> file_progress([])  # nothing to read, and no terminal under doctest
        (None, None)
    """
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


def write_text(path: Path, text: str) -> None:
    """Write an output file (``--json``, ``--html``...); a failure is a :class:`Fail`.

    Example:
        >>> write_text(Path("/nonexistent-dir/out.json"), "{}")
        Traceback (most recent call last):
        ...
        xebench.cli.app.Fail: cannot write /nonexistent-dir/out.json: No such file or directory
    """
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise Fail(f"cannot write {path}: {exc.strerror or exc}") from None


def one_line(error: BaseException) -> str:
    """The message of ``error`` on one line (the CLI's errors never span lines).

    Example:
        >>> one_line(ValueError("bad row\\n  in x.csv")), one_line(KeyError())
        ('bad row in x.csv', 'KeyError')
    """
    return " ".join(str(error).split()) or type(error).__name__
