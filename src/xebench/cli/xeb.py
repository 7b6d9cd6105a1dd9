"""``xebench xeb``: quantum cross-entropy benchmarking (XEB) fidelity of a table of shots.

A distinct domain from ``bench``: each row is one shot of a quantum circuit,
with its circuit id and the ideal-circuit probability of the bitstring the
device observed (see :mod:`xebench.metrics.xeb`).

Example (bad usage: exit code 2 and one line on stderr):
    >>> from xebench.cli.main import main
    >>> main(["xeb", "missing.csv", "--circuit", "c", "--prob", "p", "--n-qubits", "3"])
    2
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from .app import Confidence, Data, Fail, file_progress

__all__ = ["xeb"]

_KINDS = {"linear": ("linear",), "log": ("log",), "both": ("linear", "log")}


def xeb(
    data: Data,
    circuit: Annotated[str, typer.Option("--circuit", help="Column of circuit ids.")],
    prob: Annotated[
        str,
        typer.Option(
            "--prob", help="Column of the observed bitstring's probability under the ideal circuit."
        ),
    ],
    n_qubits: Annotated[
        int, typer.Option("--n-qubits", help="Measured qubits; D = 2**n (1 to 1023).")
    ],
    kind: Annotated[
        str, typer.Option("--kind", help="Estimators shown: linear, log or both.")
    ] = "both",
    confidence: Confidence = 0.95,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print the JSON document instead of the table.")
    ] = False,
) -> None:
    """Quantum XEB fidelity per circuit and pooled, with confidence intervals.

    Linear XEB is D * mean(p) - 1 and log XEB ln(D) + euler_gamma + mean(ln p)
    (as Cirq defines them), D = 2**n-qubits: about 1 for an ideal device and
    0 for uniform noise, when the circuits' output follows Porter-Thomas
    (deep random circuits). Intervals: normal approximation over independent
    shots. Exit code 2 on bad usage or bad input.
    """
    if kind not in _KINDS:
        raise Fail(f"--kind must be linear, log or both; got {kind!r}")
    if not 0.0 < confidence < 1.0:
        raise Fail(f"--confidence must be in (0, 1); got {confidence!r}")
    from ..offline.xeb import xeb_document, xeb_tables

    files = [str(path) for path in data]
    on_chunk, progress = file_progress(data)
    if progress is None:
        stats = xeb_tables(files, circuit=circuit, prob=prob, n_qubits=n_qubits)
    else:
        with progress:
            stats = xeb_tables(
                files, circuit=circuit, prob=prob, n_qubits=n_qubits, on_chunk=on_chunk
            )
    document = xeb_document(stats, confidence=confidence, files=files)
    if json_out:
        typer.echo(json.dumps(document, indent=2, allow_nan=False))
        return
    from ..report.xeb import print_xeb

    print_xeb(document, _KINDS[kind])
