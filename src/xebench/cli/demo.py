"""``xebench demo``: a synthetic production stream, monitored end to end (:mod:`xebench.demo`).

Example (bad usage: exit code 2 and the reason on one line of stderr, here
``error: MESSAGE``):
    >>> from xebench.cli.main import main
    >>> main(["demo", "--hours", "1"])
    2
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .app import Fail

__all__ = ["demo"]


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
        raise Fail("--hours must be at least 2 (the canary and the drift need a history)")
    run_demo(out, seed=seed, hours=hours, echo=typer.echo)
