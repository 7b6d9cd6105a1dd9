"""TokenStats: merges of random splits, JSON form, intervals and their coverage."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import xebench as xb
from xebench.stats.tokens import TokenStats, ratio_interval


def _corpus(rng: np.random.Generator, n: int) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Sequences whose tokens share a per-sequence difficulty (not independent)."""
    lengths = rng.poisson(15, n) + 1
    difficulty = rng.gamma(4.0, 0.5, n)  # mean 2 nats per token
    sequences = [-rng.exponential(d, t) for d, t in zip(difficulty, lengths, strict=True)]
    n_bytes = (lengths * rng.uniform(3, 5, n)).astype(int) + 1
    return sequences, n_bytes, lengths // 2 + 1


def test_the_hand_worked_example() -> None:
    result = TokenStats().update([[-1.0, -2.0], [-3.0]], n_bytes=[5, 3]).result()
    assert result["pooled_cross_entropy"] == 2.0
    assert result["pooled_perplexity"] == pytest.approx(math.exp(2))
    assert result["mean_sequence_perplexity"] == pytest.approx((math.exp(1.5) + math.exp(3)) / 2)
    assert result["mean_sequence_cross_entropy"] == 2.25
    assert result["bits_per_byte"] == pytest.approx(6 / 8 / math.log(2))
    assert result["byte_perplexity"] == pytest.approx(math.exp(6 / 8))
    assert result["word_perplexity"] is None and result["n_words"] is None
    # The ratio estimator by hand: R = 2, d = (3 - 2*2, 3 - 2*1) = (-1, 1), var 2,
    # se = sqrt(2 / 2) / mean tokens 1.5.
    assert result["pooled_cross_entropy_se"] == pytest.approx(1 / 1.5)


def test_merging_random_splits_gives_the_same_numbers() -> None:
    rng = np.random.default_rng(16)
    sequences, n_bytes, n_words = _corpus(rng, 300)
    whole = TokenStats().update(sequences, n_bytes=n_bytes, n_words=n_words)
    for _ in range(5):
        cuts = np.sort(rng.choice(np.arange(1, 300), size=6, replace=False))
        parts = [
            TokenStats().update(sequences[a:b], n_bytes=n_bytes[a:b], n_words=n_words[a:b])
            for a, b in zip([0, *cuts], [*cuts, 300], strict=True)
        ]
        left = parts[0]
        for part in parts[1:]:
            left = left.merge(part)
        right = parts[-1]
        for part in reversed(parts[:-1]):
            right = part.merge(right)
        for merged in (left, right):
            for key, value in whole.result().items():
                got = merged.result()[key]
                if isinstance(value, tuple):
                    np.testing.assert_allclose(got, value, rtol=1e-12)
                elif isinstance(value, float):
                    assert got == pytest.approx(value, rel=1e-12), key
                else:
                    assert got == value, key


def test_flat_arrays_equal_lists_and_json_round_trips() -> None:
    rng = np.random.default_rng(3)
    sequences, n_bytes, _ = _corpus(rng, 20)
    listed = TokenStats().update(sequences, n_bytes=n_bytes)
    flat = TokenStats().update(
        np.concatenate(sequences), lengths=[len(s) for s in sequences], n_bytes=n_bytes
    )
    assert flat.to_dict() == listed.to_dict()
    text = json.dumps(listed.to_dict())
    assert TokenStats.from_dict(json.loads(text)).result() == listed.result()
    with pytest.raises(xb.InvalidInputError, match="is not TokenStats version 1 data"):
        TokenStats.from_dict({"kind": "score_stats", "version": 1})


def test_a_zero_probability_token_gives_infinite_measures_and_no_intervals() -> None:
    stats = TokenStats().update([[-1.0, -math.inf], [-2.0]])
    result = stats.result()
    assert result["pooled_cross_entropy"] == math.inf and result["pooled_perplexity"] == math.inf
    assert result["pooled_cross_entropy_ci"] is None and result["extremal_tokens"] == 1
    back = TokenStats.from_dict(json.loads(json.dumps(stats.to_dict())))
    assert back.result()["pooled_cross_entropy"] == math.inf


def test_bad_input_names_the_sequence_and_the_token() -> None:
    with pytest.raises(xb.InvalidInputError, match=r"sequence 2, token 1 is 0\.5$"):
        TokenStats().update([[-1.0], [0.5]])
    with pytest.raises(
        xb.InvalidInputError, match="n_bytes: must be finite counts >= 0; sequence 1"
    ):
        TokenStats().update([[-1.0]], n_bytes=[-3])
    with pytest.raises(xb.InvalidInputError, match="must count extremal tokens below the same"):
        TokenStats().merge(TokenStats(extremal_logprob=-5.0))


def test_one_sequence_has_no_interval() -> None:
    result = TokenStats().update([[-1.0, -2.0]]).result()
    assert result["pooled_cross_entropy"] == 1.5 and result["pooled_cross_entropy_ci"] is None
    assert TokenStats().result()["pooled_cross_entropy"] is None


def test_ratio_interval_matches_the_delta_method_written_out() -> None:
    rng = np.random.default_rng(5)
    y, x = rng.gamma(3, 10, 50), rng.poisson(20, 50).astype(float) + 1
    r, se, _ = ratio_interval(y.sum(), x.sum(), y @ y, x @ x, x @ y, 50, 0.95)
    residual = y - r * x
    expected = math.sqrt(residual.var(ddof=1) / 50) / x.mean()
    assert se == pytest.approx(expected, rel=1e-10)


def test_the_ratio_interval_covers_the_true_value_about_95_percent_of_the_time() -> None:
    # True pooled cross-entropy: E[sum nll] / E[tokens] = E[difficulty] = 2 nats per token
    # (difficulty independent of length). 200 corpora of 40 sequences each.
    rng = np.random.default_rng(2024)
    covered = 0
    for _ in range(200):
        sequences, _, _ = _corpus(rng, 40)
        low, high = TokenStats().update(sequences).result()["pooled_cross_entropy_ci"]
        covered += low <= 2.0 <= high
    assert 180 <= covered <= 198, covered
