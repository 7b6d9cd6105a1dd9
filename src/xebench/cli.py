"""The ``xebench`` command line (later commands: bench, gate, serve, demo)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import __version__

DESCRIPTION = """\
Cross-entropy benchmarking and monitoring of probabilistic models.

The metrics kernel is available from Python today:

    import xebench as xb
    xb.log_loss(y_true, y_prob)          # nats; base=2 for bits
    xb.calibration_error(y_true, y_prob) # ECE; norm="max" for MCE

See README.md for every metric and its formula.
"""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``xebench`` command.

    Example:
        >>> build_parser().prog
        'xebench'
    """
    parser = argparse.ArgumentParser(
        prog="xebench",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"xebench {__version__}")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code.

    Example:
        >>> main(["--version"])  # doctest: +ELLIPSIS
        xebench ...
        0
    """
    parser = build_parser()
    try:
        parser.parse_args(argv)
    except SystemExit as exit_:  # --help and --version exit early by design
        return int(exit_.code or 0)
    parser.print_help()
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
