"""Quantum XEB kernel: hand-worked values, the edge cases, and validation."""

from __future__ import annotations

import math

import numpy as np
import pytest

import xebench as xb
from xebench.metrics.registry import METRICS
from xebench.metrics.xeb import EULER_GAMMA, MAX_QUBITS, XEBWarning, hilbert_dimension


def test_probabilities_all_one_over_d_give_linear_zero_exactly() -> None:
    for n in (1, 5, 20, 53):
        assert xb.xeb_fidelity(np.full(7, 2.0**-n), n) == 0.0
        # log XEB of p = 1/D: ln D + gamma - ln D = gamma exactly (no Porter-Thomas spread)
        assert xb.xeb_fidelity(np.full(7, 2.0**-n), n, kind="log") == pytest.approx(EULER_GAMMA)


def test_uniform_sampling_gives_linear_zero_in_expectation() -> None:
    # Each bitstring once is the exact expectation of uniform sampling: D * (1/D) sum p - 1.
    rng = np.random.default_rng(0)
    ideal = rng.exponential(size=2**6)
    ideal /= ideal.sum()
    assert xb.xeb_fidelity(ideal, 6) == pytest.approx(0.0, abs=1e-12)
    # ... and sampled uniformly, the interval covers 0.
    shots = ideal[rng.integers(0, 2**6, size=20_000)]
    low, high = xb.XEBStats(6).update(shots).result()["linear_ci"]
    assert low < 0.0 < high


def test_a_hand_worked_example() -> None:
    p = [0.5, 0.25, 0.5, 0.125]
    assert xb.xeb_fidelity(p, 2) == 4 * (1.375 / 4) - 1
    expected = math.log(4) + EULER_GAMMA + np.mean(np.log(p))
    assert xb.xeb_fidelity(p, 2, kind="log") == pytest.approx(expected, rel=1e-15)


def test_dimension_is_an_exact_power_of_two_up_to_1023_qubits() -> None:
    assert hilbert_dimension(1023) == 2.0**1023
    assert xb.xeb_fidelity([2.0**-1000], 1000) == 0.0
    for bad in (0, -1, MAX_QUBITS + 1, 2.5, True, "3"):
        with pytest.raises(xb.InvalidInputError, match="n_qubits"):
            xb.xeb_fidelity([0.5], bad)  # type: ignore[arg-type]
    with pytest.raises(xb.InvalidInputError, match=r"1023.*float64"):
        xb.xeb_fidelity([0.5], 1024)


@pytest.mark.parametrize(
    ("p", "message"),
    [
        ([0.5, 1.5], "probabilities must be in [0, 1]; row 2 is 1.5"),
        ([-0.1], "probabilities must be in [0, 1]; row 1 is -0.1"),
        ([0.1, float("nan")], "must be finite (NaN and infinity are not probabilities); row 2"),
        ([float("inf")], "must be finite"),
        ([[0.1, 0.2], [0.3, 0.4]], "must be 1-D"),
        (["a"], "must be numbers"),
    ],
)
def test_bad_probabilities_are_refused_naming_the_row(p: object, message: str) -> None:
    with pytest.raises(xb.InvalidInputError) as error:
        xb.xeb_fidelity(p, 2)  # type: ignore[arg-type]
    assert message in str(error.value)


def test_an_unknown_kind_is_refused() -> None:
    with pytest.raises(xb.InvalidInputError, match="kind: must be one of 'linear', 'log'"):
        xb.xeb_fidelity([0.5], 1, kind="hog")  # type: ignore[arg-type]


def test_no_shots_give_nan_with_a_warning_not_a_crash() -> None:
    for kind in ("linear", "log"):
        with pytest.warns(XEBWarning, match="empty"):
            assert math.isnan(xb.xeb_fidelity([], 3, kind=kind))  # type: ignore[arg-type]


def test_a_zero_probability_is_minus_infinity_in_log_xeb_only() -> None:
    assert xb.xeb_fidelity([0.0, 0.5], 2, kind="log") == -math.inf
    assert xb.xeb_fidelity([0.0, 0.5], 2) == 0.0


def test_the_registry_calls_them_quantum_fidelities() -> None:
    for name in ("xeb_linear", "xeb_log"):
        entry = METRICS[name]
        assert entry.higher_is_better and entry.unit == "ratio"
        assert "quantum circuit fidelity" in entry.description
    assert (METRICS["xeb_linear"].key, METRICS["xeb_log"].key) == ("linear", "log")
