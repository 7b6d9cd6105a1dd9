"""The ``xebench xeb`` document as a terminal table: per circuit, then pooled.

Example:
    >>> from rich.console import Console
    >>> doc = {"n_qubits": 2, "dimension": 4.0, "confidence": 0.95, "n_shots": 2,
    ...        "n_circuits": 1, "files": ["shots.csv"],
    ...        "circuits": [{"circuit": "a", "n": 2, "linear": 0.5, "linear_ci": [0.0, 1.0],
    ...                      "log": 0.9, "log_ci": None, "n_zero": 0}],
    ...        "pooled": {"n": 2, "linear": 0.5, "linear_ci": [0.0, 1.0], "log": 0.9,
    ...                   "log_ci": None, "n_zero": 0}}
    >>> xeb_rows(doc, ("linear", "log"))[1][-1]
    ['pooled', '2', '0.5000 [0.0000, 1.0000]', '0.9000']
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

__all__ = ["print_xeb", "xeb_rows"]

_TITLES = {"linear": "linear XEB", "log": "log XEB"}


def _estimate(result: dict[str, Any], kind: str) -> str:
    value, interval = result.get(kind), result.get(f"{kind}_ci")
    if value is None:
        return "-inf (p = 0 shots)" if kind == "log" and result.get("n_zero") else "n/a"
    text = f"{value:.4f}"
    return f"{text} [{interval[0]:.4f}, {interval[1]:.4f}]" if interval else text


def xeb_rows(data: dict[str, Any], kinds: Sequence[str]) -> tuple[list[str], list[list[str]]]:
    """Header and rows: one per circuit, then the pooled estimate."""
    level = f"{data['confidence']:.0%} CI"
    header = ["circuit", "shots", *(f"{_TITLES[k]} [{level}]" for k in kinds)]
    rows = [
        [str(r["circuit"]), f"{r['n']:,}", *(_estimate(r, k) for k in kinds)]
        for r in data["circuits"]
    ]
    pooled = data["pooled"]
    rows.append(["pooled", f"{pooled['n']:,}", *(_estimate(pooled, k) for k in kinds)])
    return header, rows


def print_xeb(data: dict[str, Any], kinds: Sequence[str], console: Any = None) -> None:
    """Print the per-circuit table and the pooled estimate with rich.

    Example:
        >>> from rich.console import Console
        >>> doc = {"n_qubits": 1, "dimension": 2.0, "confidence": 0.95, "n_shots": 1,
        ...        "n_circuits": 1, "circuits": [{"circuit": "c", "n": 1, "linear": 0.0}],
        ...        "pooled": {"n": 1, "linear": 0.0}}
        >>> print_xeb(doc, ["linear"], Console(width=80, color_system=None))  # doctest: +ELLIPSIS
        Quantum XEB fidelity: 1 shots of 1 circuit(s), 1 qubits (D = 2)
        ...
    """
    from rich.console import Console
    from rich.table import Table

    console = console or Console(width=None if sys.stdout.isatty() else 160)
    console.print(
        f"Quantum XEB fidelity: {data['n_shots']:,} shots of {data['n_circuits']:,} circuit(s), "
        f"{data['n_qubits']} qubits (D = {data['dimension']:.6g})",
        markup=False,
        highlight=False,
    )
    table = Table(
        caption="Fidelity of the device against the ideal circuit (1: ideal, 0: uniform "
        "noise), assuming Porter-Thomas output; normal intervals over independent shots.",
        caption_justify="left",
    )
    header, rows = xeb_rows(data, kinds)
    for index, name in enumerate(header):
        table.add_column(name, justify="left" if index == 0 else "right", no_wrap=index > 0)
    for index, row in enumerate(rows):
        table.add_row(*row, style="bold" if index == len(rows) - 1 else None)
    console.print(table)
