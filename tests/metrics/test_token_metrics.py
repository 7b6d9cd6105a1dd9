"""Token-level cross-entropy kernel: hand-worked values, lm-evaluation-harness's formulas."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

import xebench as xb
from xebench.metrics import tokens as kt

SEQUENCES = [[-1.0, -2.0], [-3.0]]


def test_two_sequences_by_hand_pooled_is_not_the_mean_of_sequences() -> None:
    # Token-weighted: (1 + 2 + 3) / 3 = 2 nats per token; per sequence 1.5 and 3.
    assert xb.pooled_cross_entropy(SEQUENCES) == 2.0
    assert xb.pooled_perplexity(SEQUENCES) == pytest.approx(math.exp(2.0), rel=1e-15)
    assert xb.mean_sequence_cross_entropy(SEQUENCES) == 2.25
    mean_ppl = (math.exp(1.5) + math.exp(3.0)) / 2
    assert xb.mean_sequence_perplexity(SEQUENCES) == pytest.approx(mean_ppl, rel=1e-15)
    assert xb.mean_sequence_perplexity(SEQUENCES) > xb.pooled_perplexity(SEQUENCES) + 4.8
    assert xb.bits_per_token(SEQUENCES) == pytest.approx(2.0 / math.log(2), rel=1e-15)
    assert xb.sequence_cross_entropy([-1.0, -2.0]) == 1.5
    assert xb.sequence_perplexity([-3.0]) == pytest.approx(math.exp(3.0), rel=1e-15)


def test_token_nll_and_bases() -> None:
    assert xb.token_nll([-0.5, 0.0]).tolist() == [0.5, 0.0]
    # log-probabilities in bits: 1 bit = ln 2 nats.
    np.testing.assert_allclose(xb.token_nll([-1.0], logprob_base=2), [math.log(2)])
    np.testing.assert_allclose(xb.token_nll([-1.0], logprob_base=10, base=10), [1.0])
    assert xb.sequence_cross_entropy([-2.0], base=2) == pytest.approx(2 / math.log(2))
    # float32 rounding above 0 counts as 0; -inf is an infinite NLL.
    assert xb.token_nll([5e-7]).tolist() == [0.0]
    assert xb.token_nll([-math.inf]).tolist() == [math.inf]
    assert xb.pooled_perplexity([[-1.0, -math.inf]]) == math.inf


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ([-1.0, math.nan], "logprobs: must be a log-probability: a number <= 0 or -inf, not NaN; "
         "token 2 is nan"),
        ([0.1], "logprobs: must be a log-probability: a number <= 0 or -inf, not NaN; "
         "token 1 is 0.1"),
        ([math.inf], "token 1 is inf"),
    ],
)  # fmt: skip
def test_bad_log_probabilities_are_named_by_token(values: list[float], message: str) -> None:
    with pytest.raises(xb.InvalidInputError, match=re.escape(message)):
        xb.token_nll(values)


def test_a_bad_sequence_is_named() -> None:
    with pytest.raises(xb.InvalidInputError, match=r"^sequences\[1\]: .*token 1 is nan$"):
        xb.pooled_cross_entropy([[-1.0], [math.nan]])
    with pytest.raises(xb.InvalidInputError, match="every sequence must hold a token; sequence 2"):
        xb.pooled_cross_entropy([[-1.0], []])
    with pytest.raises(xb.InvalidInputError, match="wrap one in a list"):
        xb.pooled_cross_entropy(np.array([-1.0, -2.0]))
    with pytest.raises(xb.InvalidInputError, match="n_bytes: must be a number > 0"):
        xb.bits_per_byte(1.0, 0)


def test_bits_per_byte_does_not_depend_on_the_tokenization() -> None:
    text = "naïve café"  # 12 UTF-8 bytes
    n_bytes = kt.utf8_bytes(text)
    assert n_bytes == 12
    # The same text, the same total log-probability, cut into 3 or 6 tokens.
    coarse = [-2.0, -1.5, -2.5]
    fine = [-1.0, -1.0, -0.5, -1.0, -1.5, -1.0]
    assert sum(coarse) == sum(fine)
    per_token = xb.pooled_cross_entropy([coarse]), xb.pooled_cross_entropy([fine])
    assert per_token[0] == 2 * per_token[1]  # per token they differ twofold
    bpb = [xb.bits_per_byte(-sum(s), n_bytes) for s in (coarse, fine)]
    assert bpb[0] == bpb[1] == pytest.approx(6.0 / 12 / math.log(2), rel=1e-15)
    assert xb.byte_perplexity(6.0, n_bytes) == pytest.approx(math.exp(0.5), rel=1e-15)


# lm-evaluation-harness (lm_eval/api/metrics.py and tasks/wikitext/preprocess_wikitext.py),
# written out here independently of xebench.
def _lm_eval_weighted_mean(items: list[tuple[float, int]]) -> float:
    a, b = zip(*items, strict=True)
    return sum(a) / sum(b)


def _lm_eval_weighted_perplexity(items: list[tuple[float, int]]) -> float:
    return math.exp(-_lm_eval_weighted_mean(items))


def _lm_eval_bits_per_byte(items: list[tuple[float, int]]) -> float:
    return -_lm_eval_weighted_mean(items) / math.log(2)


def test_lm_evaluation_harness_formulas_on_a_small_corpus() -> None:
    docs = {
        "The cat sat on the mat.": [-2.1, -3.4, -0.9, -1.7, -0.4, -2.2, -0.3],
        "Ünïcödé text, with  two spaces": [-4.0, -1.25, -3.5, -0.75, -2.0, -1.0],
        "short": [-5.5],
    }
    loglikelihood = {doc: sum(lp) for doc, lp in docs.items()}
    words = [(loglikelihood[d], len(re.split(r"\s+", d))) for d in docs]
    n_bytes = [(loglikelihood[d], len(d.encode("utf-8"))) for d in docs]
    total_nll = -sum(loglikelihood.values())
    total_words = sum(kt.count_words(d) for d in docs)
    total_bytes = sum(kt.utf8_bytes(d) for d in docs)
    assert total_words == sum(w for _, w in words) and total_bytes == sum(b for _, b in n_bytes)

    assert xb.word_perplexity(total_nll, total_words) == pytest.approx(
        _lm_eval_weighted_perplexity(words), rel=1e-14
    )
    assert xb.byte_perplexity(total_nll, total_bytes) == pytest.approx(
        _lm_eval_weighted_perplexity(n_bytes), rel=1e-14
    )
    assert xb.bits_per_byte(total_nll, total_bytes) == pytest.approx(
        _lm_eval_bits_per_byte(n_bytes), rel=1e-14
    )
    # And TokenStats finishes the same numbers from the sequences.
    stats = xb.TokenStats().update(
        list(docs.values()),
        n_bytes=[kt.utf8_bytes(d) for d in docs],
        n_words=[kt.count_words(d) for d in docs],
    )
    result = stats.result()
    assert result["word_perplexity"] == pytest.approx(_lm_eval_weighted_perplexity(words), 1e-14)
    assert result["byte_perplexity"] == pytest.approx(_lm_eval_weighted_perplexity(n_bytes), 1e-14)
    assert result["bits_per_byte"] == pytest.approx(_lm_eval_bits_per_byte(n_bytes), rel=1e-14)


def test_extremal_tokens() -> None:
    assert xb.extremal_tokens([-0.1, -10.5, -math.inf, -9.9], threshold=-10.0) == 2


def test_token_log_loss_is_the_pooled_nll_per_token_by_hand() -> None:
    sequences = [[-1.0, -2.0, -0.5], [-3.0], [-0.25, -0.25]]
    total, tokens = 1.0 + 2.0 + 0.5 + 3.0 + 0.25 + 0.25, 6
    assert xb.token_log_loss(sequences) == pytest.approx(total / tokens, rel=1e-15)
    flat = np.array([v for s in sequences for v in s])
    assert xb.token_log_loss(flat, lengths=[3, 1, 2]) == pytest.approx(total / tokens)
    assert xb.token_log_loss(flat) == pytest.approx(total / tokens)  # one flat sequence
    assert xb.token_log_loss(sequences, base=2) == pytest.approx(total / tokens / math.log(2))
    with pytest.raises(xb.InvalidInputError, match="lengths"):
        xb.token_log_loss(flat, lengths=[3, 1])
    # The statistics' contract names: nll_per_token and perplexity, pooled over tokens.
    result = xb.TokenStats().update(sequences).result()
    assert result["nll_per_token"] == pytest.approx(total / tokens)
    assert result["perplexity"] == pytest.approx(math.exp(total / tokens))
    low, high = result["perplexity_ci"]
    assert low < result["perplexity"] < high
