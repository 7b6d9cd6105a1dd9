"""Token-level cross-entropy of language models: NLL, perplexities, bits per byte.

Language-model serving stacks (OpenAI, vLLM, Hugging Face) return the
log-probability of each observed token, not a probability matrix. These
functions score such log-probabilities; :class:`xebench.stats.tokens.TokenStats`
keeps their mergeable sums and intervals.

Conventions:

- ``logprobs`` are log-probabilities of the observed tokens, natural logs by
  default (what OpenAI, vLLM and Hugging Face return; ``logprob_base=2`` or
  ``10`` otherwise). Each must be ``<= 0`` (values up to
  :data:`LOGPROB_TOLERANCE` above 0, float32 rounding, count as 0) or
  ``-inf`` (a token the model gave probability 0: its NLL is infinite);
  NaN is refused with the index of the token.
- ``base`` is the unit of the result: ``"e"`` (nats, the default), 2 (bits), 10.
- *Pooled* means token-weighted over a corpus: total NLL over total tokens
  (what training losses and lm-evaluation-harness report). The *mean
  sequence* perplexity averages each sequence's own perplexity: a short
  sequence weighs as much as a long one, and ``exp`` is convex, so the two
  differ (see :func:`mean_sequence_perplexity`).
- Perplexity per token depends on the tokenizer: two models with different
  vocabularies are only comparable per byte (:func:`bits_per_byte`) or per
  word (:func:`word_perplexity`) of the same text.

The corpus-level formulas follow lm-evaluation-harness
(``lm_eval/api/metrics.py``: ``weighted_perplexity``, ``bits_per_byte``),
``loglikelihood`` being the total log-probability (``-total_nll``):

- ``word_perplexity = exp(-sum(loglikelihood) / sum(words))``
- ``byte_perplexity = exp(-sum(loglikelihood) / sum(bytes))``
- ``bits_per_byte = -sum(loglikelihood) / sum(bytes) / ln(2)``

    >>> sequences = [[-1.0, -2.0], [-3.0]]
    >>> pooled_cross_entropy(sequences)                # (1 + 2 + 3) / 3 tokens
    2.0
    >>> round(pooled_perplexity(sequences), 4), round(mean_sequence_perplexity(sequences), 4)
    (7.3891, 12.2836)
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .._validation import log_of_base
from ..errors import InvalidInputError

__all__ = [
    "LOGPROB_TOLERANCE",
    "bits_per_byte",
    "bits_per_token",
    "byte_perplexity",
    "check_logprobs",
    "count_words",
    "extremal_tokens",
    "mean_sequence_cross_entropy",
    "mean_sequence_perplexity",
    "perplexity_of",
    "pooled_cross_entropy",
    "pooled_perplexity",
    "sequence_cross_entropy",
    "sequence_perplexity",
    "token_log_loss",
    "token_nll",
    "utf8_bytes",
    "word_perplexity",
]

#: Log-probabilities up to this much above 0 (float32 rounding of a near-certain
#: token) are read as 0; anything larger is refused.
LOGPROB_TOLERANCE = 1e-6

_LN2 = math.log(2.0)

_RULE = "must be a log-probability: a number <= 0 or -inf, not NaN"


def check_logprobs(
    logprobs: ArrayLike, *, argument: str = "logprobs", logprob_base: object = "e"
) -> NDArray[np.float64]:
    """``logprobs`` as a 1-D float64 array of natural log-probabilities, validated.

    NaN and values above :data:`LOGPROB_TOLERANCE` are refused, naming the
    argument, the token (counted from 1) and its value; ``-inf`` is kept.

    Example:
        >>> check_logprobs([-0.5, 0.0, -float("inf")])
        array([-0.5,  0. , -inf])
        >>> check_logprobs([-0.5, float("nan")])
        Traceback (most recent call last):
        ...
        xebench.errors.InvalidInputError: logprobs: must be a log-probability: a number <= 0
        or -inf, not NaN; token 2 is nan
    """
    try:
        values = np.asarray(logprobs, dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidInputError(argument, "must be a sequence of numbers", value=logprobs) from None
    if values.ndim != 1:
        raise InvalidInputError(argument, "must be one-dimensional (one sequence)")
    scale = log_of_base(logprob_base)
    if values.size and not values.max() <= LOGPROB_TOLERANCE:  # NaN fails too
        bad = np.flatnonzero(~(values <= LOGPROB_TOLERANCE))[0]
        raise InvalidInputError(
            argument, _RULE, index=int(bad), value=values[bad], row_name="token"
        )
    values = np.minimum(values, 0.0)
    return values * scale if scale != 1.0 else values


def perplexity_of(cross_entropy_nats: float) -> float:
    """``exp(cross_entropy_nats)``, infinite past the largest float (a perplexity of a
    sequence of near-zero probability tokens) instead of an ``OverflowError``.

    Example:
        >>> round(perplexity_of(1.0), 4), perplexity_of(1e4)
        (2.7183, inf)
    """
    try:
        return math.exp(cross_entropy_nats)
    except OverflowError:
        return math.inf


def token_nll(
    logprobs: ArrayLike, *, logprob_base: object = "e", base: object = "e"
) -> NDArray[np.float64]:
    """Per-token negative log-likelihood ``-log p(token)``, in ``base`` units.

    ``logprob_base`` is the base of the given log-probabilities (natural by
    default); ``base`` the unit of the result (nats by default).

    Example:
        >>> token_nll([-0.5, -2.0, 0.0])
        array([0.5, 2. , 0. ])
        >>> token_nll([-1.0, -3.0], logprob_base=2)            # bits in, nats out
        array([0.69314718, 2.07944154])
        >>> token_nll([-1.0, -3.0], logprob_base=2, base=2)
        array([1., 3.])
    """
    nats = 0.0 - check_logprobs(logprobs, logprob_base=logprob_base)  # no -0.0
    return nats / log_of_base(base)


def _sequence_nll(sequences: Sequence[ArrayLike], logprob_base: object) -> list[tuple[float, int]]:
    if isinstance(sequences, np.ndarray) and sequences.ndim == 1 and sequences.dtype != object:
        raise InvalidInputError(
            "sequences", "must be a list of sequences of log-probabilities (wrap one in a list)"
        )
    if len(sequences) == 0:
        raise InvalidInputError("sequences", "must hold at least one sequence")
    totals = []
    for i, sequence in enumerate(sequences):
        values = check_logprobs(sequence, argument=f"sequences[{i}]", logprob_base=logprob_base)
        if values.size == 0:
            raise InvalidInputError(
                "sequences",
                "every sequence must hold a token",
                index=i,
                value=[],
                row_name="sequence",
            )
        totals.append((float(-values.sum()), values.size))
    return totals


def sequence_cross_entropy(
    logprobs: ArrayLike, *, logprob_base: object = "e", base: object = "e"
) -> float:
    """Cross-entropy of one sequence: its mean NLL per token, in ``base`` units.

    Example:
        >>> sequence_cross_entropy([-1.0, -2.0])
        1.5
        >>> round(sequence_cross_entropy([-1.0, -2.0], base=2), 4)   # bits per token
        2.164
    """
    values = check_logprobs(logprobs, logprob_base=logprob_base)
    if values.size == 0:
        raise InvalidInputError("logprobs", "must hold at least one token", value=[])
    return float(-values.mean()) / log_of_base(base)


def sequence_perplexity(logprobs: ArrayLike, *, logprob_base: object = "e") -> float:
    """Perplexity of one sequence: ``exp(its cross-entropy in nats)``.

    Example:
        >>> round(sequence_perplexity([-1.0, -2.0]), 4)    # e ** 1.5
        4.4817
    """
    return perplexity_of(sequence_cross_entropy(logprobs, logprob_base=logprob_base))


def pooled_cross_entropy(
    sequences: Sequence[ArrayLike], *, logprob_base: object = "e", base: object = "e"
) -> float:
    """Token-weighted cross-entropy of a corpus: total NLL / total tokens, in ``base`` units.

    Example:
        >>> pooled_cross_entropy([[-1.0, -2.0], [-3.0]])
        2.0
    """
    totals = _sequence_nll(sequences, logprob_base)
    nll = math.fsum(t for t, _ in totals)
    return nll / sum(n for _, n in totals) / log_of_base(base)


def _is_flat(values: object) -> bool:
    """Whether ``values`` is one array of numbers (not a list of sequences)."""
    if isinstance(values, np.ndarray):
        return values.dtype != object and values.ndim == 1
    return isinstance(values, Sequence) and len(values) > 0 and np.ndim(values[0]) == 0


def token_log_loss(
    token_logprobs: Sequence[ArrayLike] | ArrayLike,
    *,
    lengths: ArrayLike | None = None,
    base: object = "e",
    logprob_base: object = "e",
) -> float:
    """The token-weighted log loss (cross-entropy) of a corpus: total NLL / total tokens,
    in ``base`` units -- :func:`pooled_cross_entropy` under the name of the contract.

    ``token_logprobs`` is a list of sequences (one array of log-probabilities each)
    or one flat array of every token; ``lengths``, when given, are the tokens per
    sequence of the flat array (they must sum to its size; pooling does not depend
    on them otherwise).

    Example:
        >>> token_log_loss([[-1.0, -2.0], [-3.0]])              # 6 nats over 3 tokens
        2.0
        >>> token_log_loss([-1.0, -2.0, -3.0], lengths=[2, 1], base=2) == 2.0 / math.log(2)
        True
    """
    if lengths is None and _is_flat(token_logprobs):
        lengths = [len(token_logprobs)]  # type: ignore[arg-type]  # one sequence
    if lengths is not None:
        flat = check_logprobs(token_logprobs, argument="token_logprobs", logprob_base=logprob_base)
        sizes = np.asarray(lengths, dtype=np.int64).reshape(-1)
        if int(sizes.sum()) != flat.size or (sizes < 0).any():
            raise InvalidInputError(
                "lengths", f"must be counts that sum to the {flat.size} tokens given",
                value=int(sizes.sum()),
            )  # fmt: skip
        if flat.size == 0:
            raise InvalidInputError("token_logprobs", "must hold at least one token", value=[])
        return float(-math.fsum(flat)) / flat.size / log_of_base(base)
    return pooled_cross_entropy(token_logprobs, logprob_base=logprob_base, base=base)  # type: ignore[arg-type]


def pooled_perplexity(sequences: Sequence[ArrayLike], *, logprob_base: object = "e") -> float:
    """Token-weighted perplexity of a corpus: ``exp(pooled cross-entropy in nats)``.

    Example:
        >>> round(pooled_perplexity([[-1.0, -2.0], [-3.0]]), 4)   # e ** 2
        7.3891
    """
    return perplexity_of(pooled_cross_entropy(sequences, logprob_base=logprob_base))


def mean_sequence_cross_entropy(
    sequences: Sequence[ArrayLike], *, logprob_base: object = "e", base: object = "e"
) -> float:
    """The mean of the sequences' own cross-entropies (each sequence weighs the same).

    Example:
        >>> mean_sequence_cross_entropy([[-1.0, -2.0], [-3.0]])   # (1.5 + 3) / 2
        2.25
    """
    totals = _sequence_nll(sequences, logprob_base)
    return float(np.mean([t / n for t, n in totals])) / log_of_base(base)


def mean_sequence_perplexity(
    sequences: Sequence[ArrayLike], *, logprob_base: object = "e"
) -> float:
    """The mean of the sequences' own perplexities (each sequence weighs the same).

    Not the pooled perplexity: by Jensen's inequality the mean of ``exp`` of
    the per-sequence cross-entropies is at least ``exp`` of their mean, and
    the pooled cross-entropy weighs sequences by their token counts.

    Example:
        >>> round(mean_sequence_perplexity([[-1.0, -2.0], [-3.0]]), 4)  # (e**1.5 + e**3) / 2
        12.2836
    """
    totals = _sequence_nll(sequences, logprob_base)
    return float(np.mean([perplexity_of(t / n) for t, n in totals]))


def bits_per_token(sequences: Sequence[ArrayLike], *, logprob_base: object = "e") -> float:
    """Pooled cross-entropy in bits per token.

    Example:
        >>> round(bits_per_token([[-1.0, -2.0], [-3.0]]), 4)   # 2 / ln 2
        2.8854
    """
    return pooled_cross_entropy(sequences, logprob_base=logprob_base, base=2)


def _check_total(total_nll_nats: object, count: object, name: str) -> tuple[float, float]:
    nll = float(total_nll_nats)  # type: ignore[arg-type]
    if not nll >= 0.0:
        raise InvalidInputError("total_nll_nats", "must be a number >= 0", value=total_nll_nats)
    size = float(count)  # type: ignore[arg-type]
    if not (math.isfinite(size) and size > 0):
        raise InvalidInputError(name, "must be a number > 0", value=count)
    return nll, size


def bits_per_byte(total_nll_nats: float, n_bytes: float) -> float:
    """Bits per UTF-8 byte: ``total_nll_nats / n_bytes / ln 2``, lm-evaluation-harness's
    ``bits_per_byte``. Independent of the tokenizer: the same text has the same bytes.

    Example:
        >>> round(bits_per_byte(6.0, 10), 4)     # 6 nats over 10 bytes
        0.8656
    """
    nll, size = _check_total(total_nll_nats, n_bytes, "n_bytes")
    return nll / size / _LN2


def byte_perplexity(total_nll_nats: float, n_bytes: float) -> float:
    """Perplexity per UTF-8 byte: ``exp(total_nll_nats / n_bytes)`` (lm-eval's ``byte_perplexity``).

    Example:
        >>> round(byte_perplexity(6.0, 10), 4)   # exp(0.6)
        1.8221
    """
    nll, size = _check_total(total_nll_nats, n_bytes, "n_bytes")
    return perplexity_of(nll / size)


def word_perplexity(total_nll_nats: float, n_words: float) -> float:
    """Perplexity per word: ``exp(total_nll_nats / n_words)`` (lm-eval's ``word_perplexity``).

    Example:
        >>> round(word_perplexity(6.0, 3), 4)    # exp(2)
        7.3891
    """
    nll, size = _check_total(total_nll_nats, n_words, "n_words")
    return perplexity_of(nll / size)


def utf8_bytes(text: str) -> int:
    """The UTF-8 byte length of ``text`` (the denominator of bits per byte).

    Example:
        >>> utf8_bytes("naïve"), len("naïve")
        (6, 5)
    """
    if not isinstance(text, str):
        raise InvalidInputError("text", "must be a string", value=text)
    return len(text.encode("utf-8"))


def count_words(text: str) -> int:
    """Words as lm-evaluation-harness counts them: ``len(re.split(r"\\s+", text))``.

    (Its wikitext task; a leading or trailing space adds an empty "word", as there.)

    Example:
        >>> count_words("the cat sat"), count_words("the cat sat ")
        (3, 4)
    """
    if not isinstance(text, str):
        raise InvalidInputError("text", "must be a string", value=text)
    return len(re.split(r"\s+", text))


def extremal_tokens(logprobs: ArrayLike, threshold: float, *, logprob_base: object = "e") -> int:
    """Tokens whose log-probability (natural) is below ``threshold`` (``-inf`` included).

    Example:
        >>> extremal_tokens([-0.1, -12.0, -float("inf")], threshold=-10.0)
        2
    """
    values = check_logprobs(logprobs, logprob_base=logprob_base)
    return int(np.count_nonzero(values < float(threshold)))
