"""The metric registry: every name exists in the results, directions are right, ranges hold."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

import xebench as xb
from xebench.analysis.drift import FeatureDrift
from xebench.metrics.registry import METRICS, Metric, better, metric, sort_key, worse_by


def _result_fields() -> set[str]:
    """Every field of the statistics, benchmark, drift and monitoring results."""
    from xebench.demo.stream import generate, load
    from xebench.monitor.windows import Monitor, Scope
    from xebench.store import EventStore

    y, p, q = [1, 0, 1, 0, 1], [0.9, 0.2, 0.6, 0.5, 0.7], [0.8, 0.3, 0.5, 0.5, 0.4]
    fields = set(xb.ScoreStats().update(y, p).result())
    bench = xb.benchmark({"y": y, "p": p, "q": q}, label="y", probs=["p", "q"]).to_dict()
    fields |= set(bench["models"][0]) | set(bench["comparisons"][0])
    fields |= {f.name for f in dataclasses.fields(FeatureDrift)}
    fields |= set(xb.XEBStats(2).update([0.5, 0.25]).result())  # quantum XEB (xeb_linear, xeb_log)
    with EventStore(":memory:") as store:
        stream = generate(hours=1, rate_per_minute=5)
        load(store, stream)
        store.update_buckets()
        window = Monitor(store).window(Scope("default", "fraud", window="1h", now=stream.now))
        fields |= set(window.to_dict())
    return fields


def test_every_registered_metric_is_a_result_field_or_a_kernel_function() -> None:
    fields = _result_fields()
    kernel = set(xb.metrics.__all__)
    missing = [m.name for m in METRICS.values() if m.key not in fields and m.name not in kernel]
    assert not missing


@pytest.mark.parametrize("entry", METRICS.values(), ids=lambda m: m.name)
def test_direction_follows_the_scikit_learn_naming_rule(entry: Metric) -> None:
    if entry.name.endswith(("_loss", "_error")):
        assert entry.lower_is_better
    if entry.name.endswith("_score"):
        assert entry.higher_is_better
    assert entry.lower_is_better != entry.higher_is_better
    assert entry.low < entry.high


def test_each_kernel_function_named_by_the_rule_has_the_direction_of_its_metric() -> None:
    # The functions whose names carry the suffix, and the registry entry they compute.
    named = {"log_loss": "log_loss", "prior_log_loss": "prior_log_loss",
             "calibration_error": "ece", "skill_score": "skill"}  # fmt: skip
    for function, name in named.items():
        assert function in xb.metrics.__all__
        lower = function.endswith(("_loss", "_error"))
        assert METRICS[name].lower_is_better is lower, function


# A perfect forecaster against a noisy one: the registry must call the first better.
_RNG = np.random.default_rng(7)
_TRUTH = _RNG.uniform(0.05, 0.95, 4000)
_Y = (_RNG.uniform(size=4000) < _TRUTH).astype(int)
_NOISY = np.clip(_TRUTH + _RNG.normal(0, 0.25, 4000), 0.001, 0.999)

_SCORES = {
    "log_loss": lambda p: xb.log_loss(_Y, p),
    "perplexity": lambda p: xb.perplexity(_Y, p),
    "brier": lambda p: xb.brier_score(_Y, p),
    "ece": lambda p: xb.calibration_error(_Y, p),
    "mce": lambda p: xb.calibration_error(_Y, p, norm="max"),
    "skill": lambda p: xb.skill_score(_Y, p),
    "accuracy": lambda p: xb.accuracy(_Y, p),
}


@pytest.mark.parametrize("name", sorted(_SCORES))
def test_the_true_probabilities_score_better_than_noisy_ones(name: str) -> None:
    good, bad = _SCORES[name](_TRUTH), _SCORES[name](_NOISY)
    assert better(name, good, bad) and not better(name, bad, good)
    assert worse_by(name, bad, good) > 0 > worse_by(name, good, bad)
    for value in (good, bad):
        assert METRICS[name].low <= value <= METRICS[name].high


def test_divergences_and_their_direction() -> None:
    same, shifted = xb.js_divergence([1, 1], [1, 1]), xb.js_divergence([1, 1], [9, 1])
    for name, a, b in [
        ("js", same, shifted),
        ("kl", xb.kl_divergence([1, 1], [1, 1]), xb.kl_divergence([1, 1], [9, 1])),
        ("psi", xb.psi([1, 1], [1, 1]), xb.psi([1, 1], [9, 1])),
    ]:
        assert better(name, a, b)
        assert METRICS[name].low <= a <= b <= METRICS[name].high
    assert METRICS["js"].high == pytest.approx(xb.js_divergence([1, 0], [0, 1]))


def test_sort_keys_put_best_or_worst_first_and_missing_last() -> None:
    assert sorted([0.3, math.nan, 0.1], key=lambda v: sort_key("log_loss", v))[:2] == [0.1, 0.3]
    assert sorted([0.2, None, 0.9], key=lambda v: sort_key("skill", v)) == [0.9, 0.2, None]
    worst = sorted([0.01, None, 0.3], key=lambda v: sort_key("js", v, worst_first=True))
    assert worst == [0.3, 0.01, None]


def test_an_unknown_metric_names_the_known_ones() -> None:
    with pytest.raises(KeyError, match="unknown metric 'auc'; known: accuracy"):
        metric("auc")


def test_the_gate_reads_its_direction_from_the_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    y = (_RNG.uniform(size=4000) < _TRUTH).astype(int)
    comparison = xb.PairedStats().update(y, _NOISY, _TRUTH).result()
    assert xb.decide(comparison, min_samples=10).status == "fail"
    # Were a smaller delta the worse one, the same evidence would be a pass.
    flipped = dict(METRICS, delta=dataclasses.replace(METRICS["delta"], direction="higher"))
    monkeypatch.setattr("xebench.analysis.compare.METRICS", flipped)
    assert xb.decide(comparison, min_samples=10).status == "pass"
