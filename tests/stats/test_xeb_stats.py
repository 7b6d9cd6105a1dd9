"""Mergeable quantum XEB statistics: merges of random splits, CIs, the JSON round trip."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import xebench as xb
from xebench.errors import InvalidInputError
from xebench.stats.xeb import XEBCircuits, XEBStats


def _shots(seed: int, n: int = 5000, n_qubits: int = 10) -> np.ndarray:
    rng = np.random.default_rng(seed)
    dimension = 2.0**n_qubits
    return np.clip(rng.exponential(2.0, size=n) / dimension, 1e-300, 1.0)  # D p ~ PT-biased


def _close(a: dict, b: dict) -> None:
    for key in ("linear", "linear_se", "log", "log_se", "linear_ci", "log_ci"):
        if b[key] is None or b[key] == -math.inf:
            assert a[key] == b[key], key
        else:
            assert a[key] == pytest.approx(b[key], rel=1e-12), key
    assert (a["n"], a["n_zero"]) == (b["n"], b["n_zero"])


@pytest.mark.parametrize("seed", range(5))
def test_merging_random_splits_in_any_grouping_gives_the_same_numbers(seed: int) -> None:
    p = _shots(seed)
    p[::997] = 0.0  # some impossible bitstrings too
    whole = XEBStats(10).update(p).result()
    rng = np.random.default_rng(100 + seed)
    cuts = np.sort(rng.choice(np.arange(1, p.size), size=6, replace=False))
    parts = [XEBStats(10).update(part) for part in np.split(p, cuts)]
    left = parts[0]
    for part in parts[1:]:
        left = left.merge(part)
    right = parts[-1]
    for part in reversed(parts[:-1]):
        right = part.merge(right)
    shuffled = [parts[i] for i in rng.permutation(len(parts))]
    tree = shuffled[0].merge(shuffled[1]).merge(shuffled[2].merge(shuffled[3]))
    tree = tree.merge(shuffled[4].merge(shuffled[5].merge(shuffled[6])))
    positive = XEBStats(10).update(p[p > 0]).log_p  # the moments of ln p merge too
    for merged in (left, right, tree):
        _close(merged.result(), whole)
        assert merged.log_p.weight == positive.weight
        assert merged.log_p.mean == pytest.approx(positive.mean, rel=1e-12)
        assert merged.log_p.m2 == pytest.approx(positive.m2, rel=1e-12)
    assert whole["log"] == -math.inf and whole["n_zero"] == len(range(0, p.size, 997))


def test_the_estimates_are_the_kernel_and_the_intervals_normal() -> None:
    p = _shots(7)
    result = XEBStats(10).update(p).result(confidence=0.9)
    assert result["linear"] == pytest.approx(xb.xeb_fidelity(p, 10), rel=1e-12)
    assert result["log"] == pytest.approx(xb.xeb_fidelity(p, 10, kind="log"), rel=1e-12)
    se = 1024.0 * np.std(p, ddof=1) / math.sqrt(p.size)
    assert result["linear_se"] == pytest.approx(se, rel=1e-10)
    z = 1.6448536269514722
    assert result["linear_ci"] == pytest.approx(
        [result["linear"] - z * se, result["linear"] + z * se], rel=1e-10
    )
    log_se = np.std(np.log(p), ddof=1) / math.sqrt(p.size)
    assert result["log_se"] == pytest.approx(log_se, rel=1e-10)


def test_no_shots_and_one_shot() -> None:
    empty = XEBStats(3).result()
    assert empty["n"] == 0 and empty["linear"] is None and empty["log_ci"] is None
    one = XEBStats(3).update([0.25]).result()
    assert one["linear"] == 1.0 and one["linear_ci"] is None and one["log_se"] is None


def test_different_qubit_counts_do_not_merge() -> None:
    with pytest.raises(InvalidInputError, match="3 and 4 qubits do not merge"):
        XEBStats(3).merge(XEBStats(4))
    with pytest.raises(InvalidInputError, match="do not merge"):
        XEBCircuits(3).merge(XEBCircuits(4))


def test_per_circuit_results_are_kept_and_the_pooled_one_is_every_shot() -> None:
    rng = np.random.default_rng(3)
    p = _shots(3, n=3000)
    ids = rng.choice(["a", "b", "10", "2"], size=p.size)
    whole = XEBCircuits(10).update(ids, p)
    halves = (
        XEBCircuits(10)
        .update(ids[:1234], p[:1234])
        .merge(XEBCircuits(10).update(ids[1234:], p[1234:]))
    )
    a, b = whole.result(), halves.result()
    assert [c["circuit"] for c in a["circuits"]] == ["2", "10", "a", "b"]
    _close(a["pooled"], b["pooled"])
    _close(a["pooled"], XEBStats(10).update(p).result())
    for ca, cb in zip(a["circuits"], b["circuits"], strict=True):
        _close(ca, cb)
        assert ca["linear"] == pytest.approx(xb.xeb_fidelity(p[ids == ca["circuit"]], 10))


def test_to_dict_is_json_and_round_trips() -> None:
    circuits = XEBCircuits(10).update(["x"] * 100 + ["y"] * 50, _shots(1, n=150))
    again = XEBCircuits.from_dict(json.loads(json.dumps(circuits.to_dict())))
    assert again.result() == circuits.result()
    stats = circuits.circuits["x"]
    assert XEBStats.from_dict(json.loads(json.dumps(stats.to_dict()))) == stats
    with pytest.raises(InvalidInputError, match="version"):
        XEBStats.from_dict({**stats.to_dict(), "version": 99})
