"""Compare two models' log loss, and decide whether a candidate may ship.

Two designs, two tests:

- **Paired** (offline benchmark, shadow traffic): both models scored the
  same events. :class:`PairedStats` keeps mergeable moments of the per-event
  difference ``nll(candidate) - nll(baseline)``; the test is a paired t test
  on that difference, far more sensitive than comparing two means because
  the per-event difficulty cancels.
- **Unpaired** (canary): the models saw different events (split traffic).
  :func:`unpaired_comparison` runs Welch's t test on two
  :class:`~xebench.ScoreStats`.

:func:`decide` turns a comparison into pass / fail / inconclusive with the
evidence. Deltas are candidate minus baseline, in nats unless a ``base`` is
given: positive means the candidate is worse.

Repeated checks
---------------
A gate evaluated again and again on a growing sample (every hour of a canary,
every CI run of a branch) gets more chances to fail by luck: at a 5% false-fail
rate per look, five independent looks fail a harmless change about 23% of the
time. Pass ``looks=K``, the number of checks you plan, and each check uses
``alpha / K`` (Bonferroni), which keeps the overall false-fail rate at or below
``alpha`` whatever the correlation between looks. It is conservative; for
dozens of looks prefer fewer, planned checks.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

from numpy.typing import ArrayLike

from .._validation import check_eps, check_same_length, log_of_base
from ..errors import InvalidInputError
from ..metrics.blocks import DEFAULT_EPS, Labels, dot
from ..metrics.registry import METRICS
from ..stats.moments import Moments, check_confidence, standard_error
from ..stats.scored_rows import ScoredRows
from ..stats.scores import ScoreStats
from ..stats.tokens import TokenStats

__all__ = [
    "Comparison",
    "Decision",
    "PairedStats",
    "decide",
    "paired_comparison",
    "unpaired_comparison",
    "unpaired_token_comparison",
]

COMPARISON_VERSION = 1


@dataclass(frozen=True)
class Comparison:
    """A candidate's log loss against a baseline's, with its uncertainty.

    Attributes:
        kind: ``"paired"`` (same events) or ``"unpaired"`` (Welch).
        n_candidate, n_baseline: events behind each side (equal when paired).
        candidate_log_loss, baseline_log_loss: mean log losses.
        delta: candidate minus baseline (positive: candidate worse).
        delta_se: standard error of ``delta``.
        delta_ci: two-sided confidence interval of ``delta``.
        relative_delta: ``delta / baseline_log_loss``.
        relative_ci: ``delta_ci / baseline_log_loss`` (baseline taken as known).
        p_value: two-sided p-value of "no difference".
        df: degrees of freedom of the t test.
        confidence: the confidence level of ``delta_ci``.
    """

    kind: Literal["paired", "unpaired"]
    n_candidate: int
    n_baseline: int
    candidate_log_loss: float
    baseline_log_loss: float
    delta: float
    delta_se: float
    delta_ci: tuple[float, float]
    relative_delta: float | None
    relative_ci: tuple[float, float] | None
    p_value: float
    df: float
    confidence: float

    @property
    def n(self) -> int:
        """Events on the smaller side."""
        return min(self.n_candidate, self.n_baseline)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict of every field."""
        data = asdict(self)
        data["delta_ci"] = list(self.delta_ci)
        data["relative_ci"] = None if self.relative_ci is None else list(self.relative_ci)
        return data


def _build(
    kind: Literal["paired", "unpaired"],
    n_candidate: int,
    n_baseline: int,
    candidate: float,
    baseline: float,
    se: float,
    df: float,
    confidence: float,
    divisor: float,
) -> Comparison:
    delta = candidate - baseline
    if se > 0.0 and df > 0.0:
        from scipy.special import stdtr, stdtrit  # here: `import xebench` stays fast

        half = float(stdtrit(df, 0.5 + confidence / 2.0)) * se
        p_value = float(2.0 * stdtr(df, -abs(delta) / se))
    else:  # no variation in the difference: the observed delta is the delta
        half, p_value = 0.0, 1.0 if delta == 0.0 else 0.0
    ci = (delta - half, delta + half)
    relative = None if baseline == 0.0 else delta / baseline
    relative_ci = None if baseline == 0.0 else (ci[0] / baseline, ci[1] / baseline)
    return Comparison(
        kind=kind,
        n_candidate=n_candidate,
        n_baseline=n_baseline,
        candidate_log_loss=candidate / divisor,
        baseline_log_loss=baseline / divisor,
        delta=delta / divisor,
        delta_se=se / divisor,
        delta_ci=(ci[0] / divisor, ci[1] / divisor),
        relative_delta=relative,
        relative_ci=relative_ci,
        p_value=p_value,
        df=df,
        confidence=confidence,
    )


class PairedStats:
    """Mergeable statistics of two models scored on the same events.

    Holds the moments of the per-event NLL difference (candidate minus
    baseline) and of the baseline's NLL; merges like :class:`ScoreStats`.

    Example:
        >>> y = [1, 0, 1, 0]
        >>> paired = PairedStats().update(y, [0.7, 0.4, 0.6, 0.2], [0.8, 0.3, 0.7, 0.2])
        >>> c = paired.result()
        >>> round(c.delta, 4), round(c.relative_delta, 4), c.n
        (0.1105, 0.381, 4)
    """

    def __init__(self, classes: Labels = None, *, eps: float = DEFAULT_EPS) -> None:
        self._score_shape = ScoreStats(classes, eps=eps)  # validates classes and eps once
        self.classes = self._score_shape.classes
        self.eps = check_eps(eps)
        self.n = 0
        self.weight_sq = 0.0
        self.delta = Moments()
        self.baseline = Moments()

    def update(
        self,
        y_true: ArrayLike,
        prob_candidate: ArrayLike,
        prob_baseline: ArrayLike,
        sample_weight: ArrayLike | None = None,
    ) -> PairedStats:
        """Add a chunk of events scored by both models; returns ``self``."""
        candidate = self._score_shape.score(y_true, prob_candidate, sample_weight)
        baseline = self._score_shape.score(y_true, prob_baseline, sample_weight)
        return self.add(candidate, baseline)

    def add(self, candidate: ScoredRows, baseline: ScoredRows) -> PairedStats:
        """Accumulate the same rows scored for both models by :meth:`ScoreStats.score`.

        Example:
            >>> stats = ScoreStats()
            >>> y = [1, 0, 1, 0]
            >>> a, b = stats.score(y, [0.7, 0.4, 0.6, 0.2]), stats.score(y, [0.8, 0.3, 0.7, 0.2])
            >>> round(PairedStats().add(a, b).result().delta, 4)
            0.1105
        """
        check_same_length("baseline", baseline.n_rows, "candidate", candidate.n_rows)
        weight = candidate.weight
        self.delta = self.delta.merge(Moments.of(candidate.nll - baseline.nll, weight))
        self.baseline = self.baseline.merge(Moments.of(baseline.nll, weight))
        self.weight_sq += candidate.n_rows if weight is None else dot(weight, weight)
        self.n += candidate.n_rows
        return self

    def merge(self, other: PairedStats) -> PairedStats:
        """A new PairedStats holding the events of both."""
        if not isinstance(other, PairedStats) or (self.classes, self.eps) != (
            other.classes,
            other.eps,
        ):
            raise InvalidInputError(
                "other", "can only merge PairedStats with the same classes and eps"
            )
        merged = PairedStats(self.classes, eps=self.eps)
        merged.n = self.n + other.n
        merged.weight_sq = self.weight_sq + other.weight_sq
        merged.delta = self.delta.merge(other.delta)
        merged.baseline = self.baseline.merge(other.baseline)
        return merged

    def result(self, *, confidence: float = 0.95, base: str | int = "e") -> Comparison:
        """The paired comparison (paired t test on the NLL differences)."""
        return paired_comparison(self, confidence=confidence, base=base)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe, versioned plain data."""
        return {
            "kind": "paired_stats",
            "version": COMPARISON_VERSION,
            "classes": None if self.classes is None else list(self.classes),
            "eps": self.eps,
            "n": self.n,
            "weight_sq": self.weight_sq,
            "delta": [self.delta.weight, self.delta.mean, self.delta.m2],
            "baseline": [self.baseline.weight, self.baseline.mean, self.baseline.m2],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PairedStats:
        """Rebuild statistics written by :meth:`to_dict`.

        Example:
            >>> p = PairedStats().update([1, 0], [0.6, 0.3], [0.7, 0.2])
            >>> PairedStats.from_dict(p.to_dict()).to_dict() == p.to_dict()
            True
        """
        if data.get("kind") != "paired_stats" or data.get("version") != COMPARISON_VERSION:
            raise InvalidInputError("data", "is not PairedStats data", value=data.get("kind"))
        stats = cls(data["classes"], eps=data["eps"])
        stats.n = int(data["n"])
        stats.weight_sq = float(data["weight_sq"])
        stats.delta = Moments(*map(float, data["delta"]))
        stats.baseline = Moments(*map(float, data["baseline"]))
        return stats


def _require(condition: bool, argument: str, rule: str) -> None:
    if not condition:
        raise InvalidInputError(argument, rule)


def paired_comparison(
    stats: PairedStats, *, confidence: float = 0.95, base: str | int = "e"
) -> Comparison:
    """Paired t test of the mean NLL difference (candidate minus baseline).

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> p = rng.uniform(0.05, 0.95, 5000)
        >>> y = (rng.uniform(size=5000) < p).astype(int)
        >>> worse = np.clip(p + rng.normal(0, 0.1, 5000), 0.01, 0.99)
        >>> c = paired_comparison(PairedStats().update(y, worse, p))
        >>> c.delta > 0, c.p_value < 0.001
        (True, True)
    """
    confidence = check_confidence(confidence)
    divisor = log_of_base(base)
    _require(stats.n >= 2, "stats", "a paired comparison needs at least 2 events")
    se, n_eff = standard_error(stats.delta, stats.weight_sq)
    baseline = stats.baseline.mean
    return _build(
        "paired",
        stats.n,
        stats.n,
        baseline + stats.delta.mean,
        baseline,
        se,
        n_eff - 1.0,
        confidence,
        divisor,
    )


def unpaired_comparison(
    candidate: ScoreStats,
    baseline: ScoreStats,
    *,
    confidence: float = 0.95,
    base: str | int = "e",
) -> Comparison:
    """Welch's t test of mean log loss between two independent samples (canary).

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(1)
        >>> def sample(noise):
        ...     p = rng.uniform(0.05, 0.95, 20000)
        ...     y = (rng.uniform(size=20000) < p).astype(int)
        ...     return ScoreStats().update(y, np.clip(p + rng.normal(0, noise, 20000), 0.01, 0.99))
        >>> c = unpaired_comparison(sample(0.0), sample(0.0))
        >>> c.kind, c.p_value > 0.01
        ('unpaired', True)
    """
    confidence = check_confidence(confidence)
    divisor = log_of_base(base)
    for name, side in (("candidate", candidate), ("baseline", baseline)):
        _require(isinstance(side, ScoreStats), name, "must be a ScoreStats")
        _require(side.n >= 2, name, "an unpaired comparison needs at least 2 events per side")
    se_c, n_c = standard_error(candidate.nll, candidate.weight_sq)
    se_b, n_b = standard_error(baseline.nll, baseline.weight_sq)
    se = math.hypot(se_c, se_b)
    # Welch-Satterthwaite degrees of freedom.
    denominator = se_c**4 / (n_c - 1.0) + se_b**4 / (n_b - 1.0)
    df = se**4 / denominator if denominator > 0 else n_c + n_b - 2.0
    return _build(
        "unpaired",
        candidate.n,
        baseline.n,
        candidate.nll.mean,
        baseline.nll.mean,
        se,
        df,
        confidence,
        divisor,
    )


def unpaired_token_comparison(
    candidate: TokenStats,
    baseline: TokenStats,
    *,
    confidence: float = 0.95,
    base: str | int = "e",
) -> Comparison:
    """A language model canary: the candidate's NLL per UTF-8 byte against the baseline's
    (bits per byte with ``base=2``), two independent samples of sequences.

    Bytes, not tokens: a new version may bring a new tokenizer, and the same text has
    the same bytes under every one. Each side's standard error is its ratio
    estimator's (:func:`~xebench.stats.tokens.ratio_interval`, the sequence as the
    unit); the test is Welch's, on ``n - 1`` degrees of freedom per side.
    The :class:`Comparison`'s ``*_log_loss`` fields hold the two losses per byte.

    Raises:
        InvalidInputError: a side with fewer than 2 sequences, or without the byte
            count of every sequence.

    Example:
        >>> from xebench.stats.tokens import TokenStats
        >>> a = TokenStats().update([[-1.0, -1.0], [-2.0]], n_bytes=[4, 2])
        >>> b = TokenStats().update([[-1.0], [-1.5]], n_bytes=[4, 2])
        >>> c = unpaired_token_comparison(a, b, base=2)
        >>> round(c.candidate_log_loss, 4), round(c.baseline_log_loss, 4)  # 4/6/ln2, 2.5/6/ln2
        (0.9618, 0.6011)
    """
    from ..stats.tokens import ratio_interval

    confidence = check_confidence(confidence)
    divisor = log_of_base(base)
    sides = []
    for name, side in (("candidate", candidate), ("baseline", baseline)):
        _require(side.n_sequences >= 2, name, "a comparison needs at least 2 sequences per side")
        _require(
            side.n_with_bytes == side.n_sequences and side.n_bytes > 0,
            name,
            "needs the UTF-8 bytes of every sequence (text or n_bytes)",
        )
        per_byte, se, _ = ratio_interval(
            side.nll_sum, side.n_bytes, side.nll_sq, side.bytes_sq, side.nll_bytes,
            side.n_sequences, confidence,
        )  # fmt: skip
        sides.append((per_byte, se or 0.0, side.n_sequences))
    (loss_c, se_c, n_c), (loss_b, se_b, n_b) = sides
    se = math.hypot(se_c, se_b)
    denominator = se_c**4 / (n_c - 1.0) + se_b**4 / (n_b - 1.0)
    df = se**4 / denominator if denominator > 0 else n_c + n_b - 2.0
    return _build("unpaired", n_c, n_b, loss_c, loss_b, se, df, confidence, divisor)


@dataclass(frozen=True)
class Decision:
    """The gate's verdict with its evidence.

    Attributes:
        status: ``"pass"``, ``"fail"`` or ``"inconclusive"``.
        reason: one sentence saying why.
        comparison: the :class:`Comparison` it was based on.
        max_degradation: allowed relative degradation of log loss.
        min_samples: events needed on each side for a verdict.
        confidence: requested confidence.
        looks: planned number of checks (Bonferroni).
        alpha: false-fail rate used for this check, ``(1 - confidence) / looks``.
        threshold_delta: the largest tolerated ``delta``,
            ``max_degradation * baseline_log_loss``.
        lower_bound: one-sided lower confidence bound of ``delta`` at ``1 - alpha``.
        p_value: one-sided p-value of "delta <= threshold_delta".
    """

    status: Literal["pass", "fail", "inconclusive"]
    reason: str
    comparison: Comparison
    max_degradation: float
    min_samples: int
    confidence: float
    looks: int
    alpha: float
    threshold_delta: float
    lower_bound: float
    p_value: float

    @property
    def exit_code(self) -> int:
        """0 pass, 1 fail, 3 inconclusive (the ``xebench gate`` contract)."""
        return {"pass": 0, "fail": 1, "inconclusive": 3}[self.status]

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict, the comparison nested.

        ``alpha`` is a parameter derived from the inputs, ``(1 - confidence) /
        looks``: it is rounded to 12 significant digits so that 0.95 gives 0.05,
        not 0.050000000000000044. Measurements keep every digit.

        Example:
            >>> y = [1, 0, 1, 1, 0, 0] * 200
            >>> c = paired_comparison(PairedStats().update(y, [0.7, 0.4] * 600, [0.8, 0.3] * 600))
            >>> decide(c, confidence=0.95).alpha, decide(c, confidence=0.95).to_dict()["alpha"]
            (0.050000000000000044, 0.05)
        """
        data = {k: v for k, v in asdict(self).items() if k != "comparison"}
        data["alpha"] = float(f"{self.alpha:.12g}")
        data["comparison"] = self.comparison.to_dict()
        return data


def decide(
    comparison: Comparison,
    *,
    max_degradation: float = 0.0,
    min_samples: int = 1000,
    confidence: float = 0.95,
    looks: int = 1,
) -> Decision:
    """Pass, fail or inconclusive for a candidate against a baseline.

    - **inconclusive** when either side has fewer than ``min_samples`` events;
    - **fail** when the candidate's log loss exceeds the baseline's by more
      than ``max_degradation`` (relative) with the given confidence: the
      one-sided test of ``delta <= max_degradation * baseline`` rejects at
      ``alpha = (1 - confidence) / looks``;
    - **pass** otherwise (no evidence of a regression beyond the allowance).

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(2)
        >>> p = rng.uniform(0.05, 0.95, 50_000)
        >>> y = (rng.uniform(size=50_000) < p).astype(int)
        >>> noisy = np.clip(p + rng.normal(0, 0.15, 50_000), 0.01, 0.99)
        >>> decide(PairedStats().update(y, noisy, p).result(), max_degradation=0.01).status
        'fail'
        >>> decide(PairedStats().update(y, p, p).result()).status
        'pass'
        >>> decide(PairedStats().update(y[:50], noisy[:50], p[:50]).result()).status
        'inconclusive'
    """
    confidence = check_confidence(confidence)
    if isinstance(looks, bool) or not isinstance(looks, int) or looks < 1:
        raise InvalidInputError("looks", "must be an integer >= 1", value=looks)
    if isinstance(min_samples, bool) or not isinstance(min_samples, int) or min_samples < 0:
        raise InvalidInputError("min_samples", "must be an integer >= 0", value=min_samples)
    if not (math.isfinite(max_degradation) and max_degradation >= 0):
        raise InvalidInputError(
            "max_degradation", "must be a finite relative change >= 0", value=max_degradation
        )
    alpha = (1.0 - confidence) / looks
    c = comparison
    # The registry says which side of the delta is worse (+1: larger values); the
    # allowance and the one-sided bound lie on that side.
    delta = METRICS["delta"]
    worse_side = delta.badness(1.0)
    threshold = worse_side * max_degradation * c.baseline_log_loss
    excess = delta.worse_by(c.delta, threshold)
    if c.delta_se > 0.0 and c.df > 0.0:
        from scipy.special import stdtr, stdtrit  # here: `import xebench` stays fast

        lower = c.delta - worse_side * float(stdtrit(c.df, 1.0 - alpha)) * c.delta_se
        p_value = float(stdtr(c.df, -excess / c.delta_se))
    else:
        lower, p_value = c.delta, 0.0 if excess > 0 else 1.0
    evidence = (
        f"delta {c.delta:+.6g} ({_percent(c.relative_delta)}) vs allowed "
        f"{threshold:+.6g} (+{max_degradation:.2%}); one-sided lower bound {lower:+.6g} "
        f"at {1 - alpha:.4g} confidence; n = {c.n}"
    )
    status: Literal["pass", "fail", "inconclusive"]
    if c.n < min_samples:
        status = "inconclusive"
        reason = f"only {c.n} events, fewer than min_samples = {min_samples}; " + evidence
    elif p_value < alpha:
        status = "fail"
        reason = "candidate is worse than baseline beyond the allowance: " + evidence
    else:
        status = "pass"
        reason = "no evidence of a regression beyond the allowance: " + evidence
    return Decision(
        status=status,
        reason=reason,
        comparison=c,
        max_degradation=float(max_degradation),
        min_samples=min_samples,
        confidence=confidence,
        looks=looks,
        alpha=alpha,
        threshold_delta=threshold,
        lower_bound=lower,
        p_value=p_value,
    )


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.2%}"
