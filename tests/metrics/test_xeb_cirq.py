"""Quantum XEB against Cirq's own estimators, on simulated random circuits.

Cirq (``cirq.experiments.fidelity_estimation``) is the oracle: for each
circuit, the ideal amplitudes come from ``cirq.Simulator`` (complex128),
bitstrings are sampled with a fixed seed from the ideal distribution and
from a depolarized one (mixed with uniform noise), and
``cirq.experiments.linear_xeb_fidelity`` / ``log_xeb_fidelity`` must agree
with ``xb.xeb_fidelity``, ``XEBStats`` and ``xebench xeb`` to 1e-9.
"""

from __future__ import annotations

import json
from pathlib import Path

import cirq
import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from cirq.experiments import fidelity_estimation as fe
from cirq.experiments import random_quantum_circuit_generation as rqcg

import xebench as xb
from xebench.cli.main import main

TOLERANCE = 1e-9
SHOTS = 2000


def _circuit(n_qubits: int, seed: int) -> tuple[cirq.Circuit, list[cirq.GridQubit]]:
    """A Sycamore-style random circuit (random single-qubit rotations between sqrt-iSWAP
    layers) on a row of ``n_qubits`` qubits: generic, Porter-Thomas-like probabilities."""
    qubits = cirq.GridQubit.rect(1, n_qubits)
    circuit = rqcg.random_rotations_between_grid_interaction_layers_circuit(
        qubits, depth=10, seed=seed
    )
    return circuit, qubits


def _case(n_qubits: int, seed: int, fidelity: float):
    """(circuit, qubits, amplitudes, sampled bitstrings, their ideal probabilities)."""
    circuit, qubits = _circuit(n_qubits, seed)
    simulator = cirq.Simulator(dtype=np.complex128)
    amplitudes = simulator.simulate(circuit, qubit_order=qubits).final_state_vector
    ideal = np.abs(amplitudes) ** 2
    dimension = 2**n_qubits
    noisy = fidelity * ideal / ideal.sum() + (1.0 - fidelity) / dimension
    rng = np.random.default_rng(seed)
    bitstrings = rng.choice(dimension, size=SHOTS, p=noisy / noisy.sum())
    p = np.abs(amplitudes[bitstrings]) ** 2
    return circuit, qubits, amplitudes, bitstrings, p


CASES = [(n, seed, f) for n, seed in ((3, 1), (4, 2), (5, 3)) for f in (1.0, 0.6, 0.0)]


@pytest.mark.parametrize(("n_qubits", "seed", "fidelity"), CASES)
def test_linear_and_log_xeb_equal_cirq(n_qubits: int, seed: int, fidelity: float) -> None:
    circuit, qubits, amplitudes, bitstrings, p = _case(n_qubits, seed, fidelity)
    args = (circuit, list(bitstrings), qubits, amplitudes)
    linear, log = fe.linear_xeb_fidelity(*args), fe.log_xeb_fidelity(*args)
    assert xb.xeb_fidelity(p, n_qubits) == pytest.approx(linear, rel=TOLERANCE, abs=TOLERANCE)
    assert xb.xeb_fidelity(p, n_qubits, kind="log") == pytest.approx(
        log, rel=TOLERANCE, abs=TOLERANCE
    )
    # The general entry point with an explicit estimator, and the mergeable statistics.
    assert fe.xeb_fidelity(*args, estimator=fe.linear_xeb_fidelity_from_probabilities) == linear
    half = SHOTS // 2
    stats = xb.XEBStats(n_qubits).update(p[:half]).merge(xb.XEBStats(n_qubits).update(p[half:]))
    result = stats.result()
    assert result["linear"] == pytest.approx(linear, rel=TOLERANCE, abs=TOLERANCE)
    assert result["log"] == pytest.approx(log, rel=TOLERANCE, abs=TOLERANCE)


def test_the_estimates_track_the_device_fidelity() -> None:
    # Sanity of the oracle setup: ideal sampling scores near 1, depolarized near its
    # fidelity times the ideal score, uniform noise near 0 (Porter-Thomas is rough at 5 qubits).
    scores = {f: xb.xeb_fidelity(_case(5, 3, f)[-1], 5) for f in (1.0, 0.6, 0.0)}
    assert scores[1.0] > scores[0.6] > scores[0.0]
    assert abs(scores[0.0]) < 0.1


def test_pooled_across_circuits_equals_cirq_on_all_shots(tmp_path: Path) -> None:
    n_qubits, ids, probabilities = 4, [], []
    for seed in (11, 12, 13):
        *_, p = _case(n_qubits, seed, 0.8)
        ids += [f"c{seed}"] * p.size
        probabilities.append(p)
    p = np.concatenate(probabilities)
    dimension = 2**n_qubits
    linear = fe.linear_xeb_fidelity_from_probabilities(dimension, p)
    log = fe.log_xeb_fidelity_from_probabilities(dimension, p)
    path = tmp_path / "shots.csv"
    pacsv.write_csv(pa.table({"circuit": ids, "p": p}), path)
    args = ["xeb", str(path), "--circuit", "circuit", "--prob", "p", "--n-qubits", "4", "--json"]
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(args) == 0
    document = json.loads(out.getvalue())
    assert document["pooled"]["linear"] == pytest.approx(linear, rel=TOLERANCE, abs=TOLERANCE)
    assert document["pooled"]["log"] == pytest.approx(log, rel=TOLERANCE, abs=TOLERANCE)
    for circuit, chunk in zip(document["circuits"], probabilities, strict=True):
        expected = fe.linear_xeb_fidelity_from_probabilities(dimension, chunk)
        assert circuit["linear"] == pytest.approx(expected, rel=TOLERANCE, abs=TOLERANCE)
        expected = fe.log_xeb_fidelity_from_probabilities(dimension, chunk)
        assert circuit["log"] == pytest.approx(expected, rel=TOLERANCE, abs=TOLERANCE)


def test_a_bitstring_the_ideal_circuit_never_yields_makes_log_xeb_minus_infinity() -> None:
    # A Clifford circuit has exact zeros in its output: a noisy device still yields them.
    qubits = cirq.LineQubit.range(3)
    circuit = cirq.Circuit(cirq.H(qubits[0]), cirq.CNOT(qubits[0], qubits[1]), cirq.H(qubits[2]))
    amplitudes = cirq.final_state_vector(circuit, qubit_order=qubits, dtype=np.complex128)
    bitstrings = [0, 1, 2, 7]  # 2 (|010>) has amplitude 0
    p = np.abs(amplitudes[bitstrings]) ** 2
    with np.errstate(divide="ignore"):
        log = fe.log_xeb_fidelity(circuit, bitstrings, qubits, amplitudes)
    assert log == -np.inf == xb.xeb_fidelity(p, 3, kind="log")
    linear = fe.linear_xeb_fidelity(circuit, bitstrings, qubits, amplitudes)
    assert xb.xeb_fidelity(p, 3) == pytest.approx(linear, rel=TOLERANCE, abs=TOLERANCE)
    result = xb.XEBStats(3).update(p).result()
    assert (result["log"], result["log_ci"], result["n_zero"]) == (-np.inf, None, 1)
