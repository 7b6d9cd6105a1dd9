"""Quantum cross-entropy benchmarking (XEB): the fidelity of a quantum circuit's execution.

A distinct domain from the rest of the kernel. The mathematics is the same
cross-entropy, but the question is a different one. Here the "model" is the
*ideal* (noiseless, simulated) quantum circuit and the "events" are the
bitstrings a real device measured when it ran the circuit. ``p`` holds, for
each observed bitstring (each shot), its probability under the ideal circuit.
The result estimates the device's fidelity: about 1 for a perfect device, 0
for one whose output is uniform noise. It is not a score of a probabilistic
model's predictions.

``D = 2 ** n_qubits`` is the dimension of the Hilbert space. The two
estimators follow Cirq exactly (``cirq.experiments.fidelity_estimation``,
``linear_xeb_fidelity_from_probabilities`` and
``log_xeb_fidelity_from_probabilities``; Boixo et al., "Characterizing
quantum supremacy in near-term devices", Nature Physics 14, 2018;
arXiv:1608.00263):

- linear XEB: ``D * mean(p) - 1``;
- log XEB: ``ln(D) + euler_gamma + mean(ln p)``, the cross entropy of the
  ideal distribution against the observed shots, shifted so that the ideal
  device scores 1 and uniform noise scores 0.

Both are unbiased estimators of the fidelity *only when* the circuit's ideal
output probabilities follow the Porter-Thomas (exponential) distribution
``P(D p) = exp(-D p)``, as deep enough random circuits do. Then ``E[D p] = 2``
and ``E[ln(D p)] = 1 - euler_gamma`` on an ideal device, and ``E[D p] = 1`` and
``E[ln(D p)] = -euler_gamma`` under uniform noise. Shallow, structured or tiny
circuits break the assumption, and then the numbers are not fidelities.
Cirq gives the per-shot variances as ``(1 + 2f - f^2) / M`` (linear) and
``(pi^2/6 - f^2) / M`` (log): log XEB is the sharper estimator above ``f ~ 0.32``.

Example:
    >>> round(xeb_fidelity([0.25, 0.25, 0.25, 0.25], 2), 12)   # p = 1/D: linear XEB 0
    0.0
"""

from __future__ import annotations

import math
import warnings
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .._validation import check_choice
from ..errors import InvalidInputError, XEBWarning

__all__ = [
    "EULER_GAMMA",
    "KINDS",
    "MAX_QUBITS",
    "XEBWarning",
    "check_n_qubits",
    "check_xeb_probabilities",
    "hilbert_dimension",
    "linear_xeb_from_mean",
    "log_xeb_from_mean",
    "xeb_fidelity",
]

#: The Euler-Mascheroni constant (``numpy.euler_gamma``, as Cirq uses).
EULER_GAMMA = float(np.euler_gamma)

#: The largest qubit count: ``2.0 ** 1024`` overflows a float64.
MAX_QUBITS = 1023

#: The estimators of :func:`xeb_fidelity`.
KINDS = ("linear", "log")

Kind = Literal["linear", "log"]


def check_n_qubits(n_qubits: object) -> int:
    """Validate a qubit count: an integer in [1, 1023] (``D = 2 ** n`` must be a float64).

    Example:
        >>> check_n_qubits(53)
        53
        >>> check_n_qubits(1024)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        xebench.errors.InvalidInputError: n_qubits: must be an integer in [1, 1023] ...; got 1024
    """
    if (
        isinstance(n_qubits, bool)
        or not isinstance(n_qubits, (int, np.integer))
        or not 1 <= n_qubits <= MAX_QUBITS
    ):
        raise InvalidInputError(
            "n_qubits",
            f"must be an integer in [1, {MAX_QUBITS}] (D = 2**n_qubits must fit a float64)",
            value=n_qubits,
        )
    return int(n_qubits)


def hilbert_dimension(n_qubits: int) -> float:
    """``D = 2.0 ** n_qubits``, exact as a float64 (a power of two).

    Example:
        >>> hilbert_dimension(3), hilbert_dimension(53) == 2**53
        (8.0, True)
    """
    return 2.0 ** check_n_qubits(n_qubits)


def check_xeb_probabilities(p: ArrayLike, *, argument: str = "p") -> NDArray[np.float64]:
    """Ideal probabilities of the observed bitstrings as a 1-D float64 array, checked.

    Values must be finite and in [0, 1]; the array may be empty (no shots).
    Errors name the first bad row (counted from 1) and its value.

    Example:
        >>> check_xeb_probabilities([0.5, 0.125])
        array([0.5  , 0.125])
        >>> check_xeb_probabilities([0.5, 1.5])
        Traceback (most recent call last):
        ...
        xebench.errors.InvalidInputError: p: probabilities must be in [0, 1]; row 2 is 1.5
    """
    try:
        array = np.asarray(p, dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidInputError(argument, "must be numbers (one probability per shot)") from None
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise InvalidInputError(
            argument, "must be 1-D (one probability per shot)", value=f"shape {array.shape}"
        )
    if array.size and not (array.min() >= 0.0 and array.max() <= 1.0):  # NaN fails too
        bad = ~((array >= 0.0) & (array <= 1.0))
        row = int(np.argmax(bad))
        value = float(array[row])
        rule = (
            "probabilities must be finite (NaN and infinity are not probabilities)"
            if not math.isfinite(value)
            else "probabilities must be in [0, 1]"
        )
        raise InvalidInputError(argument, rule, index=row, value=value)
    return array


def linear_xeb_from_mean(mean_p: float, dimension: float) -> float:
    """Linear XEB from the mean ideal probability: ``D * mean(p) - 1``.

    Example:
        >>> linear_xeb_from_mean(0.25, 8.0)    # E[D p] = 2 on an ideal Porter-Thomas device
        1.0
    """
    return dimension * mean_p - 1.0


def log_xeb_from_mean(mean_log_p: float, dimension: float) -> float:
    """Log XEB from the mean log ideal probability: ``ln(D) + euler_gamma + mean(ln p)``.

    Example:
        >>> round(log_xeb_from_mean(math.log(1 / 8), 8.0), 6)    # p = 1/D: euler_gamma
        0.577216
    """
    return math.log(dimension) + EULER_GAMMA + mean_log_p


def xeb_fidelity(p: ArrayLike, n_qubits: int, kind: Kind = "linear") -> float:
    """XEB fidelity estimate of a quantum circuit's execution from its observed bitstrings.

    Args:
        p: for each shot, the probability of the observed bitstring under the
            ideal circuit (``|<x|U|0>|^2``), in [0, 1].
        n_qubits: the number of measured qubits; ``D = 2 ** n_qubits``.
        kind: ``"linear"``: ``D * mean(p) - 1`` (Cirq's
            ``linear_xeb_fidelity_from_probabilities``); ``"log"``:
            ``ln(D) + euler_gamma + mean(ln p)`` (Cirq's
            ``log_xeb_fidelity_from_probabilities``).

    Returns:
        The fidelity estimate as a float: about 1 for an ideal device, 0 for
        uniform noise (under the Porter-Thomas assumption; see the module).
        With no shots it is NaN, with an :class:`XEBWarning`. Log XEB is
        ``-inf`` when a shot has ``p = 0`` (a bitstring the ideal circuit
        never produces), as in Cirq: that evidence is infinitely against the
        ideal circuit, so it is reported, not hidden.

    Raises:
        InvalidInputError: ``p`` not 1-D, not finite or outside [0, 1];
            ``n_qubits`` not an integer in [1, 1023]; an unknown ``kind``.

    Example:
        Two qubits (``D = 4``), four shots:

        >>> p = [0.5, 0.25, 0.5, 0.125]
        >>> xeb_fidelity(p, 2)                       # 4 * 0.34375 - 1
        0.375
        >>> round(xeb_fidelity(p, 2, kind="log"), 6)  # ln 4 + gamma + mean(ln p)
        0.750502
        >>> xeb_fidelity([0.0, 0.5], 2, kind="log")
        -inf
    """
    kind = check_choice("kind", kind, KINDS)  # type: ignore[assignment]
    dimension = hilbert_dimension(n_qubits)
    probabilities = check_xeb_probabilities(p)
    if probabilities.size == 0:
        warnings.warn(
            "xeb_fidelity: p is empty (0 shots); the fidelity is undefined (nan)",
            XEBWarning,
            stacklevel=2,
        )
        return math.nan
    if kind == "linear":
        return linear_xeb_from_mean(float(np.mean(probabilities)), dimension)
    if probabilities.min() == 0.0:
        return -math.inf
    return log_xeb_from_mean(float(np.mean(np.log(probabilities))), dimension)
