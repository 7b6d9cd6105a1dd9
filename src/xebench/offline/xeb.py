"""Quantum XEB over files: per-circuit and pooled fidelity of a table of shots.

The engine of ``xebench xeb``. A distinct domain (see :mod:`xebench.metrics.xeb`):
each row is one shot of a quantum circuit -- its circuit id and the
probability, under the ideal (simulated) circuit, of the bitstring the device
observed. Files (CSV, Parquet, JSON Lines) are read in bounded chunks; every
bad value is reported with its file, row (counted from 1, the header not
included) and column.

Example:
    >>> import pyarrow as pa
    >>> table = pa.table({"circuit": [1, 1, 2, 2], "p": [0.5, 0.25, 0.5, 0.125]})
    >>> doc = xeb_document(xeb_tables(table, circuit="circuit", prob="p", n_qubits=2))
    >>> [(c["circuit"], c["linear"]) for c in doc["circuits"]], doc["pooled"]["linear"]
    ([('1', 0.5), ('2', 0.25)], 0.375)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..errors import DataError
from ..io.readers import DEFAULT_BATCH_ROWS, Chunk, cohort_codes, probability_array, read_chunks
from ..metrics.xeb import check_n_qubits
from ..stats.xeb import XEBCircuits, XEBStats

__all__ = ["xeb_document", "xeb_tables"]

_MISSING = "\x00missing"


def _probabilities(chunk: Chunk, prob: str) -> np.ndarray:
    p = probability_array(
        chunk.table[prob], name=prob, source=chunk.source, first_row=chunk.first_row
    )
    if p.ndim != 1:
        raise DataError(
            prob, "must hold one probability per row (the observed bitstring's), not lists",
            row=chunk.first_row, value=p[0].tolist(), source=chunk.source, column=prob,
        )  # fmt: skip
    bad = ~((p >= 0.0) & (p <= 1.0))  # NaN is bad too
    if bad.any():
        row = int(np.argmax(bad))
        value = float(p[row])
        rule = (
            "probabilities must be in [0, 1]"
            if math.isfinite(value)
            else "probabilities must be finite (NaN and infinity are not probabilities)"
        )
        raise DataError(
            prob, rule, row=chunk.first_row + row, value=value, source=chunk.source, column=prob
        )
    return p


def xeb_tables(
    data: Any,
    *,
    circuit: str,
    prob: str,
    n_qubits: int,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    on_chunk: Callable[[Chunk], None] | None = None,
) -> XEBCircuits:
    """The per-circuit XEB statistics of files (or an in-memory table) of shots.

    ``data`` is what :func:`~xebench.io.readers.read_chunks` takes: a path, a
    list of paths (read one after the other), a DataFrame or an Arrow table.
    ``circuit`` names the circuit-id column (any type, kept as text) and
    ``prob`` the column of ideal probabilities of the observed bitstrings.

    Raises:
        DataError: a missing file or column, a missing circuit id, a
            probability that is missing, not a number or outside [0, 1].
    """
    n_qubits = check_n_qubits(n_qubits)
    stats = XEBCircuits(n_qubits)
    columns = [circuit, prob] if circuit != prob else [circuit]
    for chunk in read_chunks(
        data, columns, float_columns=[prob], category_columns=[circuit], batch_rows=batch_rows
    ):
        if on_chunk is not None:
            on_chunk(chunk)
        p = _probabilities(chunk, prob)
        codes, names = cohort_codes(chunk.table[circuit], _MISSING)
        if _MISSING in names:
            missing = [i for i, name in enumerate(names) if name == _MISSING]
            row = int(np.flatnonzero(np.isin(codes, missing))[0])
            raise DataError(
                circuit, "circuit id is missing (empty or null)", row=chunk.first_row + row,
                source=chunk.source, column=circuit,
            )  # fmt: skip
        order = np.argsort(codes, kind="stable")
        bounds = np.searchsorted(codes[order], np.arange(len(names) + 1))
        for code, name in enumerate(names):
            rows = order[bounds[code] : bounds[code + 1]]
            if rows.size:
                stats.add(name, XEBStats(n_qubits).update(p[rows]))
    return stats


def _finite_or_none(value: Any) -> Any:
    """JSON has no infinities: ``-inf`` (log XEB with a p = 0 shot) becomes null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, list):
        return [_finite_or_none(v) for v in value]
    return value


def _json_result(result: dict[str, Any]) -> dict[str, Any]:
    return {key: _finite_or_none(value) for key, value in result.items()}


def xeb_document(
    stats: XEBCircuits, *, confidence: float = 0.95, files: Sequence[str] = ()
) -> dict[str, Any]:
    """The ``xebench xeb --json`` document of per-circuit XEB statistics.

    Keys: ``domain`` (``"quantum-xeb"``), ``files``, ``n_qubits``,
    ``dimension``, ``confidence``, ``n_shots``, ``n_circuits``, ``pooled`` and
    ``circuits`` (one per circuit id, sorted, with ``circuit``); each result
    has ``n``, ``linear``, ``linear_se``, ``linear_ci``, ``log``, ``log_se``,
    ``log_ci`` and ``n_zero``. ``log`` is null when a shot has p = 0
    (``-inf`` in Python; ``n_zero`` counts them).
    """
    result = stats.result(confidence)
    return {
        "domain": "quantum-xeb",
        "files": list(files),
        "n_qubits": result["n_qubits"],
        "dimension": result["dimension"],
        "confidence": result["confidence"],
        "n_shots": result["pooled"]["n"],
        "n_circuits": result["n_circuits"],
        "pooled": _json_result(result["pooled"]),
        "circuits": [_json_result(c) for c in result["circuits"]],
    }
