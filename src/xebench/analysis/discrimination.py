"""A gate on ROC AUC: DeLong's paired test of a candidate against a baseline.

:func:`decide_auc` is the ranking counterpart of :func:`xebench.decide`: the
same pass / fail / inconclusive contract and exit codes, the same allowance
(``max_degradation``, relative to the baseline's value) and Bonferroni
``looks``, but on the exact AUCs of the two models on the same rows, with the
standard error of their difference from DeLong's covariance
(:func:`xebench.stats.discrimination.paired_auc`) and a normal test. Which
side is worse comes from the registry (higher AUC is better), not from code.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

from ..errors import InvalidInputError
from ..metrics.blocks import Predictions
from ..metrics.discrimination import Average
from ..metrics.registry import METRICS
from ..stats.discrimination import paired_auc
from ..stats.moments import check_confidence

__all__ = ["RankDecision", "decide_auc"]


@dataclass(frozen=True)
class RankDecision:
    """The AUC gate's verdict with its evidence (``xebench gate --metric roc_auc --json``).

    Attributes:
        metric: the registry name gated on (``"roc_auc"``).
        status: ``"pass"``, ``"fail"`` or ``"inconclusive"``.
        reason: one sentence saying why.
        n: rows scored by both models.
        candidate, baseline: their values; ``delta`` is candidate minus baseline.
        delta_se: DeLong's standard error of the difference.
        delta_ci: its two-sided interval at ``confidence``.
        max_degradation: allowed relative worsening of the baseline's value.
        threshold_delta: the worst tolerated ``delta`` (``-max_degradation * baseline``).
        worst_delta: the one-sided bound of ``delta`` on the bad side at ``1 - alpha``.
        alpha: ``(1 - confidence) / looks``.
        p_value: one-sided p-value of "the candidate is no worse than allowed".
    """

    metric: str
    status: Literal["pass", "fail", "inconclusive"]
    reason: str
    n: int
    candidate: float
    baseline: float
    delta: float
    delta_se: float
    delta_ci: tuple[float, float]
    max_degradation: float
    min_samples: int
    confidence: float
    looks: int
    alpha: float
    threshold_delta: float
    worst_delta: float
    p_value: float

    @property
    def exit_code(self) -> int:
        """0 pass, 1 fail, 3 inconclusive (the ``xebench gate`` contract)."""
        return {"pass": 0, "fail": 1, "inconclusive": 3}[self.status]

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (``alpha`` rounded to 12 digits, as :class:`xebench.Decision`).

        Example:
            >>> from xebench.metrics.blocks import prepare
            >>> y = [0, 1] * 600
            >>> a = prepare(y, [0.3, 0.7] * 600, None, None, False)
            >>> decide_auc(a, a).to_dict()["alpha"]
            0.05
        """
        data = asdict(self)
        data["delta_ci"] = list(self.delta_ci)
        data["alpha"] = float(f"{self.alpha:.12g}")
        # An undefined AUC (one class) is NaN here and null in JSON.
        return {
            key: [_finite(v) for v in value] if isinstance(value, list) else _finite(value)
            for key, value in data.items()
        }


def decide_auc(
    candidate: Predictions,
    baseline: Predictions,
    *,
    max_degradation: float = 0.0,
    min_samples: int = 1000,
    confidence: float = 0.95,
    looks: int = 1,
    average: Average = "macro",
) -> RankDecision:
    """Pass, fail or inconclusive for a candidate's ROC AUC against a baseline's.

    - **inconclusive** below ``min_samples`` rows, or when the AUC is undefined
      (a single class);
    - **fail** when the candidate's AUC is below the baseline's by more than
      ``max_degradation`` (relative) with the given confidence: the one-sided
      test of ``delta >= -max_degradation * baseline`` rejects at ``alpha``;
    - **pass** otherwise.

    Example:
        >>> from xebench.metrics.blocks import prepare
        >>> y = [0, 1] * 600
        >>> good = prepare(y, [0.3, 0.7] * 500 + [0.6, 0.4] * 100, None, None, False)
        >>> poor = prepare(y, [0.3, 0.7] * 300 + [0.6, 0.4] * 300, None, None, False)
        >>> decide_auc(poor, good).status, decide_auc(good, poor).status
        ('fail', 'pass')
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
    from scipy.special import ndtr, ndtri  # here: `import xebench` stays fast

    alpha = (1.0 - confidence) / looks
    auc_c, auc_b, se = paired_auc(candidate, baseline, average=average)
    delta = auc_c - auc_b
    metric = METRICS["roc_auc"]
    # The registry's direction: badness(delta) > 0 is a worse candidate, whichever way.
    worse_side = metric.badness(1.0)  # -1 for a higher-is-better metric: worse is lower
    threshold = worse_side * max_degradation * abs(auc_b) if math.isfinite(auc_b) else math.nan
    excess = metric.worse_by(delta, threshold)  # how far delta is beyond the allowance
    z_two = float(ndtri(0.5 + confidence / 2.0))
    if se > 0.0:
        worst = delta + worse_side * float(ndtri(1.0 - alpha)) * se
        p_value = float(ndtr(-excess / se))
    else:
        worst, p_value = delta, 0.0 if excess > 0 else 1.0
    n = candidate.n_rows
    evidence = (
        f"ROC AUC {auc_c:.6g} vs {auc_b:.6g}, delta {delta:+.6g} vs allowed {threshold:+.6g} "
        f"(-{max_degradation:.2%}); one-sided bound {worst:+.6g} at {1 - alpha:.4g} "
        f"confidence; n = {n}"
    )
    status: Literal["pass", "fail", "inconclusive"]
    if not math.isfinite(se):
        status, p_value = "inconclusive", math.nan
        reason = "ROC AUC is undefined (the rows hold a single class); " + evidence
    elif n < min_samples:
        status = "inconclusive"
        reason = f"only {n} events, fewer than min_samples = {min_samples}; " + evidence
    elif p_value < alpha:
        status = "fail"
        reason = "candidate ranks worse than baseline beyond the allowance: " + evidence
    else:
        status = "pass"
        reason = "no evidence of a ranking regression beyond the allowance: " + evidence
    return RankDecision(
        metric="roc_auc",
        status=status,
        reason=reason,
        n=n,
        candidate=auc_c,
        baseline=auc_b,
        delta=delta,
        delta_se=se,
        delta_ci=(delta - z_two * se, delta + z_two * se),
        max_degradation=float(max_degradation),
        min_samples=min_samples,
        confidence=confidence,
        looks=looks,
        alpha=alpha,
        threshold_delta=threshold,
        worst_delta=worst,
        p_value=p_value,
    )


def _finite(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else value
