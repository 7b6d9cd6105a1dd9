"""Mergeable statistics of quantum XEB: shots of a circuit, and of many circuits.

A distinct domain (see :mod:`xebench.metrics.xeb`): ``p`` is the ideal-circuit
probability of each observed bitstring, and the estimates are fidelities of
a quantum device, not scores of a model.

- :class:`XEBStats` is one pool of shots: the count, the moments of ``p``
  and of ``ln p`` (Welford / Chan, :class:`~xebench.stats.moments.Moments`,
  numerically stable where raw sums of squares cancel), the number of shots
  with ``p = 0`` and the qubit count. It updates chunk by chunk and merges
  exactly, and ``result()`` finishes linear and log XEB with the kernel's
  definitions and their intervals.
- :class:`XEBCircuits` keeps one :class:`XEBStats` per circuit id; the
  across-circuits estimate is the pooled one: every shot of every circuit
  together (so circuits weigh by their shot counts; with equal shots per
  circuit it is the mean of the per-circuit estimates).

Confidence intervals: the normal approximation, ``estimate +- z * SE``, with
the standard error of the mean of the per-shot values ``D p`` (linear) and
``ln p`` (log), ``SE = s / sqrt(n)`` from the sample standard deviation
``s``. It assumes independent shots (each a fresh run of the circuit), which
is how XEB experiments sample; no interval below 2 shots. Across circuits,
the pooled interval treats the circuits as fixed: it is the uncertainty from
the shots, not from which random circuits were drawn.

Statistics of different qubit counts do not merge (``D`` differs, and a
fidelity pooled over circuit sizes mixes different error budgets): that
raises, and each size is its own :class:`XEBCircuits`.

Example:
    >>> s = XEBStats(2).update([0.5, 0.25]).merge(XEBStats(2).update([0.5, 0.125]))
    >>> r = s.result()
    >>> r["n"], r["linear"], round(r["log"], 6)
    (4, 0.375, 0.750502)
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from ..errors import InvalidInputError
from ..metrics.xeb import (
    check_n_qubits,
    check_xeb_probabilities,
    hilbert_dimension,
    linear_xeb_from_mean,
    log_xeb_from_mean,
)
from .moments import Moments, check_confidence

__all__ = ["XEB_STATS_VERSION", "XEBCircuits", "XEBStats"]

#: The version of :meth:`XEBStats.to_dict` and :meth:`XEBCircuits.to_dict`.
XEB_STATS_VERSION = 1


def _moments_dict(moments: Moments) -> dict[str, float]:
    return {"count": moments.weight, "mean": moments.mean, "m2": moments.m2}


def _moments_of(data: Mapping[str, Any]) -> Moments:
    return Moments(float(data["count"]), float(data["mean"]), float(data["m2"]))


def _standard_error(moments: Moments) -> float | None:
    """Standard error of the mean, ``s / sqrt(n)``; None below 2 values."""
    if moments.weight < 2.0:
        return None
    return math.sqrt(moments.m2 / (moments.weight - 1.0) / moments.weight)


def _interval(value: float, se: float | None, z: float) -> list[float] | None:
    if se is None or not math.isfinite(value):
        return None
    return [value - z * se, value + z * se]


def _check_same_qubits(a: int, b: int) -> None:
    if a != b:
        raise InvalidInputError(
            "other",
            f"XEB statistics of {a} and {b} qubits do not merge (D = 2**n differs); "
            "keep each circuit size apart",
            value=b,
        )


@dataclass
class XEBStats:
    """Mergeable XEB statistics of one pool of shots (a circuit, or several pooled).

    Attributes:
        n_qubits: the qubit count; ``D = 2 ** n_qubits``.
        p: moments of the ideal probabilities of the observed bitstrings.
        log_p: moments of ``ln p`` over the shots with ``p > 0``.
        n_zero: shots with ``p = 0`` (log XEB is then ``-inf``).

    Example:
        >>> s = XEBStats(3).update(np.full(100, 1 / 8))    # p = 1/D: no signal
        >>> r = s.result()
        >>> round(r["linear"], 12), r["linear_ci"], round(r["log"], 6)
        (0.0, [0.0, 0.0], 0.577216)
        >>> XEBStats.from_dict(s.to_dict()) == s
        True
    """

    n_qubits: int
    p: Moments = field(default_factory=Moments)
    log_p: Moments = field(default_factory=Moments)
    n_zero: int = 0

    def __post_init__(self) -> None:
        self.n_qubits = check_n_qubits(self.n_qubits)

    @property
    def n(self) -> int:
        """The number of shots."""
        return int(self.p.weight)

    @property
    def dimension(self) -> float:
        """``D = 2.0 ** n_qubits``."""
        return hilbert_dimension(self.n_qubits)

    def update(self, p: ArrayLike) -> XEBStats:
        """Add shots: their ideal probabilities, each in [0, 1]. Returns ``self``."""
        values = check_xeb_probabilities(p)
        if values.size == 0:
            return self
        positive = values[values > 0.0]
        self.p = self.p.merge(Moments.of(values))
        self.log_p = self.log_p.merge(Moments.of(np.log(positive)))
        self.n_zero += int(values.size - positive.size)
        return self

    def merge(self, other: XEBStats) -> XEBStats:
        """A new :class:`XEBStats` of both pools' shots (the same qubit count only)."""
        _check_same_qubits(self.n_qubits, other.n_qubits)
        return XEBStats(
            self.n_qubits,
            self.p.merge(other.p),
            self.log_p.merge(other.log_p),
            self.n_zero + other.n_zero,
        )

    def result(self, confidence: float = 0.95) -> dict[str, Any]:
        """Linear and log XEB with standard errors and normal intervals.

        Keys: ``n`` (shots), ``n_qubits``, ``dimension``, ``confidence``,
        ``linear``, ``linear_se``, ``linear_ci`` ([low, high]), ``log``,
        ``log_se``, ``log_ci`` and ``n_zero``. With no shots the estimates
        are None; below 2 shots the errors and intervals are None; with a
        shot of ``p = 0``, ``log`` is ``-inf`` and its error and interval None.
        """
        z = NormalDist().inv_cdf(0.5 + check_confidence(confidence) / 2.0)
        dimension = self.dimension
        out: dict[str, Any] = {
            "n": self.n,
            "n_qubits": self.n_qubits,
            "dimension": dimension,
            "confidence": confidence,
        }
        if self.n == 0:
            none = dict.fromkeys(("linear", "linear_se", "linear_ci", "log", "log_se", "log_ci"))
            return {**out, **none, "n_zero": 0}
        linear = linear_xeb_from_mean(self.p.mean, dimension)
        se_p = _standard_error(self.p)
        linear_se = None if se_p is None else dimension * se_p
        if self.n_zero:
            log, log_se = -math.inf, None
        else:
            log, log_se = log_xeb_from_mean(self.log_p.mean, dimension), _standard_error(self.log_p)
        return {
            **out,
            "linear": linear,
            "linear_se": linear_se,
            "linear_ci": _interval(linear, linear_se, z),
            "log": log,
            "log_se": log_se,
            "log_ci": _interval(log, log_se, z),
            "n_zero": self.n_zero,
        }

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe form; :meth:`from_dict` reads it back."""
        return {
            "version": XEB_STATS_VERSION,
            "n_qubits": self.n_qubits,
            "p": _moments_dict(self.p),
            "log_p": _moments_dict(self.log_p),
            "n_zero": self.n_zero,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> XEBStats:
        """The statistics of a :meth:`to_dict` form."""
        if data.get("version") != XEB_STATS_VERSION:
            raise InvalidInputError(
                "data", f"is not XEBStats version {XEB_STATS_VERSION}", value=data.get("version")
            )
        return cls(
            int(data["n_qubits"]),
            _moments_of(data["p"]),
            _moments_of(data["log_p"]),
            int(data["n_zero"]),
        )


def _circuit_key(circuit: str) -> tuple[int, int, str]:
    """Sort circuit ids naturally: integers by value, then the rest as text.

    Example:
        >>> sorted(["10", "b", "2", "a"], key=_circuit_key)
        ['2', '10', 'a', 'b']
    """
    is_int = circuit.isdigit()
    return (0, int(circuit), "") if is_int else (1, 0, circuit)


@dataclass
class XEBCircuits:
    """Per-circuit :class:`XEBStats` by circuit id, and their pooled estimate.

    Circuit ids are kept as text. ``merge`` adds the shots of the same id
    and keeps the others, so files, chunks and machines combine in any order.

    Example:
        >>> c = XEBCircuits(2).update(["a", "a", "b", "b"], [0.5, 0.25, 0.5, 0.125])
        >>> r = c.result()
        >>> [(x["circuit"], x["n"], x["linear"]) for x in r["circuits"]]
        [('a', 2, 0.5), ('b', 2, 0.25)]
        >>> r["pooled"]["n"], r["pooled"]["linear"]
        (4, 0.375)
    """

    n_qubits: int
    circuits: dict[str, XEBStats] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.n_qubits = check_n_qubits(self.n_qubits)

    def update(self, circuit: Iterable[Hashable] | ArrayLike, p: ArrayLike) -> XEBCircuits:
        """Add shots: each one's circuit id and ideal probability. Returns ``self``."""
        values = check_xeb_probabilities(p)
        ids = np.asarray([str(c) for c in circuit], dtype=object)
        if ids.shape[0] != values.shape[0]:
            raise InvalidInputError(
                "circuit", f"must have one id per probability ({values.shape[0]})", value=ids.size
            )
        if values.size == 0:
            return self
        names, codes = np.unique(ids, return_inverse=True)
        order = np.argsort(codes, kind="stable")
        bounds = np.searchsorted(codes[order], np.arange(names.size + 1))
        for index, name in enumerate(names.tolist()):
            rows = order[bounds[index] : bounds[index + 1]]
            self.add(name, XEBStats(self.n_qubits).update(values[rows]))
        return self

    def add(self, circuit: str, stats: XEBStats) -> XEBCircuits:
        """Merge ``stats`` into circuit ``circuit``'s. Returns ``self``."""
        _check_same_qubits(self.n_qubits, stats.n_qubits)
        current = self.circuits.get(circuit)
        self.circuits[circuit] = stats if current is None else current.merge(stats)
        return self

    def merge(self, other: XEBCircuits) -> XEBCircuits:
        """A new :class:`XEBCircuits` with both sides' shots, circuit by circuit."""
        _check_same_qubits(self.n_qubits, other.n_qubits)
        merged = XEBCircuits(self.n_qubits, dict(self.circuits))
        for circuit, stats in other.circuits.items():
            merged.add(circuit, stats)
        return merged

    def ids(self) -> list[str]:
        """The circuit ids, sorted (integers by value, then text)."""
        return sorted(self.circuits, key=_circuit_key)

    def pooled(self) -> XEBStats:
        """Every circuit's shots together: the across-circuits estimate."""
        total = XEBStats(self.n_qubits)
        for circuit in self.ids():
            total = total.merge(self.circuits[circuit])
        return total

    def result(self, confidence: float = 0.95) -> dict[str, Any]:
        """``{"n_qubits", "dimension", "confidence", "n_circuits", "pooled", "circuits"}``.

        ``pooled`` is :meth:`XEBStats.result` of :meth:`pooled`; ``circuits``
        lists one such result per circuit, with its ``circuit`` id, sorted.
        """
        pooled = self.pooled().result(confidence)
        return {
            "n_qubits": self.n_qubits,
            "dimension": pooled["dimension"],
            "confidence": pooled["confidence"],
            "n_circuits": len(self.circuits),
            "pooled": pooled,
            "circuits": [{"circuit": c, **self.circuits[c].result(confidence)} for c in self.ids()],
        }

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe form; :meth:`from_dict` reads it back."""
        return {
            "version": XEB_STATS_VERSION,
            "n_qubits": self.n_qubits,
            "circuits": {c: self.circuits[c].to_dict() for c in self.ids()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> XEBCircuits:
        """The statistics of a :meth:`to_dict` form."""
        if data.get("version") != XEB_STATS_VERSION:
            raise InvalidInputError(
                "data", f"is not XEBCircuits version {XEB_STATS_VERSION}", value=data.get("version")
            )
        out = cls(int(data["n_qubits"]))
        for circuit, stats in data["circuits"].items():
            out.add(str(circuit), XEBStats.from_dict(stats))
        return out
