"""Mergeable statistics of a language model's token log-probabilities.

A :class:`TokenStats` is plain data -- counts and sums over sequences -- from
which the corpus measures of :mod:`xebench.metrics.tokens` are finished:
pooled (token-weighted) cross-entropy and perplexity, the mean of the
sequences' own cross-entropies and perplexities, bits per token, bits per
byte, byte and word perplexity, and the count of extremal tokens. It updates
chunk by chunk and merges across files, buckets and processes (every field
is a sum, so ``merge`` is associative and commutative).

Confidence intervals
--------------------
Tokens of one sequence are not independent (a hard document is hard
throughout), so the unit of sampling is the sequence, not the token. A
pooled measure is a ratio of sequence totals, ``R = sum_s y_s / sum_s x_s``
(``y_s`` the sequence's NLL in nats, ``x_s`` its tokens, bytes or words);
its variance comes from the delta method for a ratio estimator (Cochran,
*Sampling Techniques*, 3rd ed., section 6.3):

    var(R) ~ 1 / (n * mean(x)^2) * var_s(y_s - R * x_s)

with ``var_s`` the sample variance over the ``n`` sequences (``n - 1`` in
the denominator). It needs only ``sum y^2``, ``sum x^2`` and ``sum x y``,
which merge by addition. The interval is ``R -/+ t * se`` with Student's t
on ``n - 1`` degrees of freedom; perplexities get ``exp`` of the
cross-entropy interval's ends (``exp`` is monotone), bits ``/ ln 2``. Means
over sequences (mean sequence cross-entropy, mean sequence perplexity) get
the t interval of a mean of i.i.d. sequences. No interval below two
sequences, nor when a token had probability 0 (an infinite NLL).

The variances are computed from raw sums of squares: fine while the
sequences' spread is not many orders of magnitude below their size (real
corpora), and clamped at 0 against rounding.

    >>> stats = TokenStats().update([[-1.0, -2.0], [-3.0]])
    >>> result = stats.result()
    >>> result["pooled_cross_entropy"], round(result["pooled_perplexity"], 4)
    (2.0, 7.3891)
    >>> round(result["mean_sequence_perplexity"], 4)     # (e**1.5 + e**3) / 2
    12.2836
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .._validation import log_of_base
from ..errors import InvalidInputError
from ..metrics.tokens import (
    LOGPROB_TOLERANCE,
    bits_per_byte,
    byte_perplexity,
    perplexity_of,
    word_perplexity,
)
from .moments import check_confidence

__all__ = [
    "DEFAULT_EXTREMAL_LOGPROB",
    "TOKEN_COUNTS",
    "TOKEN_STATS_VERSION",
    "TOKEN_SUMS",
    "TokenStats",
    "sequence_sums",
]

#: Version of the serialized form (:meth:`TokenStats.to_dict`).
TOKEN_STATS_VERSION = 1

#: A token is extremal when its natural log-probability is below this (p < 4.5e-5).
DEFAULT_EXTREMAL_LOGPROB = -10.0

_LN2 = math.log(2.0)

_RULE = "must be a log-probability: a number <= 0 or -inf, not NaN"

#: The summed fields, in the order of the JSON form.
_SUMS = (
    "n_sequences", "n_tokens", "nll_sum", "nll_sq", "tokens_sq", "nll_tokens",
    "seq_ce_sum", "seq_ce_sq", "seq_ppl_sum", "seq_ppl_sq", "extremal",
    "n_with_bytes", "n_bytes", "bytes_sq", "nll_bytes",
    "n_with_words", "n_words", "words_sq", "nll_words",
)  # fmt: skip
#: The summed fields (a bucket row of token statistics has one column each).
TOKEN_SUMS = _SUMS
_COUNTS = {"n_sequences", "n_tokens", "extremal", "n_with_bytes", "n_with_words"}
#: The integer fields of :data:`TOKEN_SUMS`.
TOKEN_COUNTS = frozenset(_COUNTS)


def _t_quantile(confidence: float, df: float) -> float:
    from scipy.special import stdtrit  # here: `import xebench` stays light

    return float(stdtrit(df, 0.5 + confidence / 2.0))


def ratio_interval(
    y_sum: float,
    x_sum: float,
    y_sq: float,
    x_sq: float,
    xy: float,
    n: int,
    confidence: float,
) -> tuple[float, float | None, tuple[float, float] | None]:
    """(ratio, standard error, interval) of ``R = sum y / sum x`` over ``n`` sequences.

    The delta method (ratio estimator): ``se^2 = var_s(y - R x) / (n mean(x)^2)``,
    ``var_s(d) = (sum y^2 - 2 R sum xy + R^2 sum x^2) / (n - 1)``; Student's t on
    ``n - 1`` degrees of freedom. No error below two sequences or for an infinite ratio.

    Example:
        >>> # sequences (NLL, tokens): (3, 2), (3, 1): R = 6 / 3
        >>> r, se, ci = ratio_interval(6.0, 3.0, 18.0, 5.0, 9.0, 2, 0.95)
        >>> r, round(se, 4)                          # d = (-1, 1): var 2, se sqrt(2/2)/1.5
        (2.0, 0.6667)
    """
    ratio = y_sum / x_sum
    if n < 2 or not math.isfinite(ratio):
        return ratio, None, None
    mean_x = x_sum / n
    spread = (y_sq - 2.0 * ratio * xy + ratio * ratio * x_sq) / (n - 1)
    se = math.sqrt(max(spread, 0.0) / n) / mean_x
    half = _t_quantile(confidence, n - 1.0) * se
    return ratio, se, (ratio - half, ratio + half)


def _mean_interval(
    total: float, sq: float, n: int, confidence: float
) -> tuple[float, tuple[float, float] | None]:
    mean = total / n
    if n < 2 or not math.isfinite(mean):
        return mean, None
    variance = max(sq - total * total / n, 0.0) / (n - 1)
    half = _t_quantile(confidence, n - 1.0) * math.sqrt(variance / n)
    return mean, (mean - half, mean + half)


def _scaled(ci: tuple[float, float] | None, scale: float) -> tuple[float, float] | None:
    return None if ci is None else (ci[0] * scale, ci[1] * scale)


def _exp(ci: tuple[float, float] | None) -> tuple[float, float] | None:
    return None if ci is None else (perplexity_of(max(ci[0], 0.0)), perplexity_of(ci[1]))


def _positive(ci: tuple[float, float] | None) -> tuple[float, float] | None:
    return None if ci is None else (max(ci[0], 0.0), ci[1])


def _per_sequence(values: ArrayLike | None, n: int, argument: str) -> NDArray[np.float64] | None:
    if values is None:
        return None
    array = np.asarray(values, dtype=np.float64).reshape(-1)
    if array.size != n:
        raise InvalidInputError(
            argument, f"must hold one count per sequence ({n})", value=int(array.size)
        )
    bad = ~(np.isfinite(array) & (array >= 0.0))
    if bad.any():
        i = int(np.argmax(bad))
        raise InvalidInputError(
            argument, "must be finite counts >= 0", index=i, value=array[i], row_name="sequence"
        )
    return array


class TokenStats:
    """Mergeable statistics of token log-probabilities, one sequence at a time.

    Args:
        extremal_logprob: a token whose natural log-probability is below this
            counts as extremal (default -10: p < 4.5e-5); statistics merge
            only with equal thresholds.

    Attributes (all sums over sequences ``s``; NLL in nats):
        n_sequences, n_tokens: the counts; ``nll_sum``: total NLL;
        nll_sq, tokens_sq, nll_tokens: ``sum nll_s^2``, ``sum t_s^2``, ``sum nll_s t_s``;
        seq_ce_sum, seq_ce_sq: sums of the sequences' cross-entropies and their squares;
        seq_ppl_sum, seq_ppl_sq: the same of their perplexities;
        extremal: tokens below ``extremal_logprob``;
        n_with_bytes, n_bytes, bytes_sq, nll_bytes: sequences with a byte count,
        their bytes, ``sum b_s^2`` and ``sum nll_s b_s``; the same for words.

    Example:
        >>> a = TokenStats().update([[-1.0, -2.0]], n_bytes=[5])
        >>> b = TokenStats().update([[-3.0]], n_bytes=[3])
        >>> result = a.merge(b).result()
        >>> result["n_sequences"], result["n_tokens"], result["n_bytes"]
        (2, 3, 8)
        >>> round(result["bits_per_byte"], 4)           # 6 nats / 8 bytes / ln 2
        1.082
    """

    def __init__(self, *, extremal_logprob: float = DEFAULT_EXTREMAL_LOGPROB) -> None:
        threshold = float(extremal_logprob)
        if not threshold <= 0.0:
            raise InvalidInputError(
                "extremal_logprob", "must be a number <= 0", value=extremal_logprob
            )
        self.extremal_logprob = threshold
        for name in _SUMS:
            setattr(self, name, 0 if name in _COUNTS else 0.0)

    # --- updates ----------------------------------------------------------

    def update(
        self,
        token_logprobs: Sequence[ArrayLike] | ArrayLike,
        *,
        lengths: ArrayLike | None = None,
        n_bytes: ArrayLike | None = None,
        n_words: ArrayLike | None = None,
        logprob_base: object = "e",
    ) -> TokenStats:
        """Add sequences; returns self.

        ``token_logprobs`` is a list of sequences (each the log-probabilities of
        its tokens), or one flat array of every token with ``lengths``, the
        tokens per sequence (an Arrow list column's values and lengths).
        ``n_bytes`` and ``n_words`` hold one count per sequence, or None.

        Raises:
            InvalidInputError: a NaN or positive log-probability (naming the
                sequence and the token, counted from 1), an empty sequence, a
                bad count.

        Example:
            >>> flat = TokenStats().update([-1.0, -2.0, -3.0], lengths=[2, 1])
            >>> flat.to_dict() == TokenStats().update([[-1.0, -2.0], [-3.0]]).to_dict()
            True
            >>> TokenStats().update([[-1.0], [-0.5, float("nan")]])
            Traceback (most recent call last):
            ...
            xebench.errors.InvalidInputError: token_logprobs: must be a log-probability: a number
            <= 0 or -inf, not NaN; sequence 2, token 2 is nan
        """
        if lengths is None:
            sequences = list(token_logprobs)  # type: ignore[arg-type]
            sizes = np.array([np.size(s) for s in sequences], dtype=np.int64)
            flat = (
                np.concatenate([np.asarray(s, dtype=np.float64).reshape(-1) for s in sequences])
                if sequences
                else np.zeros(0)
            )
        else:
            flat = np.asarray(token_logprobs, dtype=np.float64).reshape(-1)
            sizes = np.asarray(lengths, dtype=np.int64).reshape(-1)
            if int(sizes.sum()) != flat.size:
                raise InvalidInputError(
                    "lengths", f"must sum to the {flat.size} tokens given", value=int(sizes.sum())
                )
        n = int(sizes.size)
        if n == 0:
            return self
        if (sizes <= 0).any():
            i = int(np.argmax(sizes <= 0))
            raise InvalidInputError(
                "token_logprobs",
                "every sequence must hold a token",
                index=i,
                value=[],
                row_name="sequence",
            )
        starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
        top = flat.max() if flat.size else 0.0
        if not top <= LOGPROB_TOLERANCE:  # NaN fails too
            bad = int(np.flatnonzero(~(flat <= LOGPROB_TOLERANCE))[0])
            seq = int(np.searchsorted(starts, bad, side="right")) - 1
            raise InvalidInputError(
                "token_logprobs",
                _RULE,
                row=seq + 1,
                row_name="sequence",
                where=f"token {bad - starts[seq] + 1}",
                value=flat[bad],
            )
        # Copies only when needed: a chunk of 1e7 float64 tokens is 80 MB a copy.
        scale = log_of_base(logprob_base)
        nats = flat if top <= 0.0 else np.minimum(flat, 0.0)
        if scale != 1.0:
            nats = nats * scale
        extremal = np.add.reduceat((nats < self.extremal_logprob).astype(np.int64), starts)
        nll = -np.add.reduceat(nats, starts)
        counts = {
            kind: _per_sequence(values, n, f"n_{kind}")
            for kind, values in (("bytes", n_bytes), ("words", n_words))
        }
        sums = sequence_sums(
            nll, sizes, extremal, counts["bytes"], counts["words"], np.zeros(n, np.intp), 1
        )
        for name in _SUMS:
            total = sums[name][0]
            add = int(total) if name in _COUNTS else float(total)
            setattr(self, name, getattr(self, name) + add)
        return self

    def merge(self, other: TokenStats) -> TokenStats:
        """New statistics of both samples (sums add: associative and commutative).

        Example:
            >>> a, b = TokenStats().update([[-1.0]]), TokenStats().update([[-2.0, -3.0]])
            >>> a.merge(b).result()["pooled_cross_entropy"]
            2.0
        """
        if not isinstance(other, TokenStats):
            raise InvalidInputError("other", "must be TokenStats", value=type(other).__name__)
        if other.extremal_logprob != self.extremal_logprob:
            raise InvalidInputError(
                "other",
                "must count extremal tokens below the same log-probability",
                value=other.extremal_logprob,
            )
        merged = TokenStats(extremal_logprob=self.extremal_logprob)
        for name in _SUMS:
            setattr(merged, name, getattr(self, name) + getattr(other, name))
        return merged

    # --- results ----------------------------------------------------------

    def result(self, confidence: float = 0.95) -> dict[str, Any]:
        """The corpus measures, with intervals (see the module docstring).

        Keys: ``n_sequences``, ``n_tokens``, ``n_bytes`` and ``n_words`` (None
        unless every sequence had one), ``nll_sum`` (nats);
        ``pooled_cross_entropy`` (nats per token) with ``_se`` and ``_ci``,
        ``pooled_perplexity``, ``bits_per_token``, ``mean_sequence_cross_entropy``,
        ``mean_sequence_perplexity``, ``bits_per_byte`` (with ``_se``),
        ``byte_perplexity``, ``word_perplexity``, each with ``_ci`` (None below
        two sequences); ``extremal_tokens`` and ``extremal_logprob``;
        ``confidence``. Measures are None without sequences (and per-byte and
        per-word ones without bytes or words for every sequence).

        Example:
            >>> r = TokenStats().update([[-1.0, -2.0], [-3.0], [-1.0]], n_words=[1, 1, 1]).result()
            >>> round(r["word_perplexity"], 4), r["byte_perplexity"]   # exp(7 / 3)
            (10.3123, None)
        """
        confidence = check_confidence(confidence)
        n = self.n_sequences
        out: dict[str, Any] = {
            "n_sequences": n,
            "n_tokens": self.n_tokens,
            "n_bytes": None,
            "n_words": None,
            "nll_sum": self.nll_sum,
        }
        names = (
            "pooled_cross_entropy",
            "pooled_perplexity",
            "bits_per_token",
            "mean_sequence_cross_entropy",
            "mean_sequence_perplexity",
            "bits_per_byte",
            "byte_perplexity",
            "word_perplexity",
        )
        for name in (*names, "nll_per_token", "perplexity"):
            out[name] = None
            out[f"{name}_ci"] = None
        out["pooled_cross_entropy_se"] = out["bits_per_byte_se"] = None
        if n:
            ce, se, ci = ratio_interval(
                self.nll_sum,
                self.n_tokens,
                self.nll_sq,
                self.tokens_sq,
                self.nll_tokens,
                n,
                confidence,
            )
            ci = _positive(ci)
            out |= {
                "pooled_cross_entropy": ce,
                "pooled_cross_entropy_se": se,
                "pooled_cross_entropy_ci": ci,
                "pooled_perplexity": perplexity_of(ce),
                "pooled_perplexity_ci": _exp(ci),
                # The contract's names (DESIGN.md) of the same two: per-token, pooled.
                "nll_per_token": ce,
                "nll_per_token_ci": ci,
                "perplexity": perplexity_of(ce),
                "perplexity_ci": _exp(ci),
                "bits_per_token": ce / _LN2,
                "bits_per_token_ci": _scaled(ci, 1 / _LN2),
            }
            mean_ce, ce_ci = _mean_interval(self.seq_ce_sum, self.seq_ce_sq, n, confidence)
            mean_ppl, ppl_ci = _mean_interval(self.seq_ppl_sum, self.seq_ppl_sq, n, confidence)
            out |= {
                "mean_sequence_cross_entropy": mean_ce,
                "mean_sequence_cross_entropy_ci": _positive(ce_ci),
                "mean_sequence_perplexity": mean_ppl,
                "mean_sequence_perplexity_ci": None
                if ppl_ci is None
                else (max(ppl_ci[0], 1.0), ppl_ci[1]),
            }
        if n and self.n_with_bytes == n and self.n_bytes > 0:
            _, se, ci = ratio_interval(
                self.nll_sum,
                self.n_bytes,
                self.nll_sq,
                self.bytes_sq,
                self.nll_bytes,
                n,
                confidence,
            )
            ci = _positive(ci)
            out |= {
                "n_bytes": int(self.n_bytes),
                "bits_per_byte": bits_per_byte(self.nll_sum, self.n_bytes),
                "bits_per_byte_se": None if se is None else se / _LN2,
                "bits_per_byte_ci": _scaled(ci, 1 / _LN2),
                "byte_perplexity": byte_perplexity(self.nll_sum, self.n_bytes),
                "byte_perplexity_ci": _exp(ci),
            }
        if n and self.n_with_words == n and self.n_words > 0:
            _, _, ci = ratio_interval(
                self.nll_sum,
                self.n_words,
                self.nll_sq,
                self.words_sq,
                self.nll_words,
                n,
                confidence,
            )
            out |= {
                "n_words": int(self.n_words),
                "word_perplexity": word_perplexity(self.nll_sum, self.n_words),
                "word_perplexity_ci": _exp(_positive(ci)),
            }
        out |= {
            "extremal_tokens": self.extremal,
            "extremal_logprob": self.extremal_logprob,
            "confidence": confidence,
        }
        return out

    # --- plain data -------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe, versioned plain data (infinite sums, from a zero-probability
        token, are written as the string ``"inf"``).

        Example:
            >>> d = TokenStats().update([[-1.0, -2.0]]).to_dict()
            >>> d["kind"], d["version"], d["n_tokens"], d["nll_sum"]
            ('token_stats', 1, 2, 3.0)
        """
        data: dict[str, Any] = {
            "kind": "token_stats",
            "version": TOKEN_STATS_VERSION,
            "extremal_logprob": self.extremal_logprob,
        }
        for name in _SUMS:
            value = getattr(self, name)
            data[name] = value if math.isfinite(value) else repr(float(value))
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TokenStats:
        """Rebuild statistics written by :meth:`to_dict`.

        Example:
            >>> s = TokenStats().update([[-1.0, -2.0], [-0.5]], n_bytes=[4, 2])
            >>> TokenStats.from_dict(s.to_dict()).to_dict() == s.to_dict()
            True
        """
        if (
            not isinstance(data, dict)
            or data.get("kind") != "token_stats"
            or data.get("version") != TOKEN_STATS_VERSION
        ):
            got = (
                data
                if not isinstance(data, dict)
                else {"kind": data.get("kind"), "version": data.get("version")}
            )
            raise InvalidInputError(
                "data", f"is not TokenStats version {TOKEN_STATS_VERSION} data", value=got
            )
        stats = cls(extremal_logprob=data["extremal_logprob"])
        for name in _SUMS:
            if name not in data:
                raise InvalidInputError("data", f"has no {name!r}")
            value = data[name]
            setattr(stats, name, int(value) if name in _COUNTS else float(value))
        return stats

    @classmethod
    def from_sums(
        cls, sums: Mapping[str, Any], *, extremal_logprob: float = DEFAULT_EXTREMAL_LOGPROB
    ) -> TokenStats:
        """Statistics from their sums (a bucket row's :data:`TOKEN_SUMS` columns).

        Example:
            >>> s = TokenStats().update([[-1.0, -2.0]])
            >>> TokenStats.from_sums(s.to_dict()).to_dict() == s.to_dict()
            True
        """
        stats = cls(extremal_logprob=extremal_logprob)
        for name in _SUMS:
            value = sums[name]
            setattr(stats, name, int(value) if name in _COUNTS else float(value))
        return stats

    def __repr__(self) -> str:
        return (
            f"TokenStats(n_sequences={self.n_sequences}, n_tokens={self.n_tokens}, "
            f"nll_sum={self.nll_sum!r})"
        )


def sequence_sums(
    nll: NDArray[np.float64],
    n_tokens: NDArray[np.int64],
    extremal: NDArray[np.int64],
    n_bytes: NDArray[np.float64] | None,
    n_words: NDArray[np.float64] | None,
    group: NDArray[np.intp],
    n_groups: int,
) -> dict[str, NDArray[Any]]:
    """The :class:`TokenStats` sums of sequences summed into ``n_groups`` groups.

    One definition of what a sequence adds, shared by :meth:`TokenStats.update`
    and the monitoring buckets (which store a sequence as its NLL in nats, its
    token count, its extremal tokens and its byte and word counts). ``n_bytes``
    / ``n_words`` may hold NaN for a sequence without that count (or be None).

    Example:
        >>> sums = sequence_sums(np.array([3.0, 3.0]), np.array([2, 1]), np.array([0, 1]),
        ...                      np.array([4.0, np.nan]), None, np.array([0, 0]), 1)
        >>> sums["n_sequences"].tolist(), sums["nll_sum"].tolist(), sums["n_with_bytes"].tolist()
        ([2], [6.0], [1])
        >>> stats = TokenStats.from_sums({k: v[0] for k, v in sums.items()})
        >>> stats.result()["pooled_cross_entropy"]
        2.0
    """
    tokens = np.asarray(n_tokens, dtype=np.float64)
    nll = np.asarray(nll, dtype=np.float64)

    def add(values: NDArray[Any]) -> NDArray[np.float64]:
        return np.bincount(group, weights=values, minlength=n_groups)

    with np.errstate(over="ignore", invalid="ignore"):
        ce = nll / tokens
        ppl = np.exp(ce)
        out: dict[str, NDArray[Any]] = {
            "n_sequences": np.bincount(group, minlength=n_groups).astype(np.int64),
            "n_tokens": add(tokens).astype(np.int64),
            "nll_sum": add(nll),
            "nll_sq": add(nll * nll),
            "tokens_sq": add(tokens * tokens),
            "nll_tokens": add(nll * tokens),
            "seq_ce_sum": add(ce),
            "seq_ce_sq": add(ce * ce),
            "seq_ppl_sum": add(ppl),
            "seq_ppl_sq": add(ppl * ppl),
            "extremal": add(np.asarray(extremal, dtype=np.float64)).astype(np.int64),
        }
        for kind, values in (("bytes", n_bytes), ("words", n_words)):
            counts = np.full(nll.shape, np.nan) if values is None else np.asarray(values, float)
            has = ~np.isnan(counts)
            c = np.where(has, counts, 0.0)
            out[f"n_with_{kind}"] = np.bincount(group[has], minlength=n_groups).astype(np.int64)
            out[f"n_{kind}"] = add(c)
            out[f"{kind}_sq"] = add(c * c)
            out[f"nll_{kind}"] = add(np.where(has, nll * c, 0.0))
    return out
