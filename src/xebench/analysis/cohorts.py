"""Cohort ranking's tests: a window's log loss against a baseline's, many values at once.

Each cohort value is tested on its own (:func:`independent_delta`): the window
and the baseline are two independent samples (different events, different
times), so the difference of their mean log losses has the variance
``se_window^2 + se_baseline^2``, each side's squared standard error of the
mean from its :class:`~xebench.ScoreStats` moments (Kish's effective sample
size when weighted, :func:`~xebench.stats.moments.standard_error`). The interval
and the two-sided p-value use the normal approximation of that difference
(the samples behind a ranked value are hundreds of events or more; below
``min_samples`` the ranking marks a value inconclusive).

Testing tens of values at once, some differ by luck: :func:`holm` adjusts the
p-values with Holm's step-down method, which controls the family-wise error
rate (the chance of any false "changed") at the level, whatever the dependence
between the tests, and is uniformly more powerful than Bonferroni.

Example:
    >>> from xebench.stats.scores import ScoreStats
    >>> now = ScoreStats().update([1, 0, 1, 0], [0.6, 0.4, 0.3, 0.7])
    >>> before = ScoreStats().update([1, 0, 1, 0], [0.8, 0.2, 0.7, 0.3])
    >>> d = independent_delta(now, before, confidence=0.95)
    >>> round(d.delta, 4), d.delta > 0, 0 < d.p_value < 1
    (0.5675, True, True)
    >>> holm([0.01, 0.04, 0.03])
    [0.03, 0.06, 0.06]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from ..stats.moments import check_confidence, standard_error
from ..stats.scores import ScoreStats

__all__ = ["Delta", "holm", "independent_delta"]


@dataclass(frozen=True)
class Delta:
    """``window - baseline`` mean log loss (nats), its standard error, interval and
    two-sided p-value of "no difference" (normal approximation).

    Example:
        >>> Delta(0.1, 0.05, (0.002, 0.198), 0.0455).delta_ci
        (0.002, 0.198)
    """

    delta: float
    delta_se: float
    delta_ci: tuple[float, float]
    p_value: float


def independent_delta(
    window: ScoreStats, baseline: ScoreStats, *, confidence: float = 0.95
) -> Delta | None:
    """The difference of two independent samples' mean log loss (nats), with its
    normal-approximation interval at ``confidence`` and two-sided p-value.

    ``se = sqrt(se_w^2 + se_b^2)``, each the standard error of a side's mean;
    ``ci = delta -/+ z se`` with ``z`` the normal quantile at ``(1 + confidence)/2``;
    ``p = 2 Phi(-|delta| / se)``. None when a side has fewer than 2 effective events
    (no variance of its mean). A difference without any spread (both sides constant)
    has ``se = 0``: its interval is the point and ``p`` is 1 when it is 0, else 0.

    Example:
        >>> a = ScoreStats().update([1, 1, 0, 0], [0.9, 0.6, 0.2, 0.3])
        >>> b = ScoreStats().update([1, 0, 1, 0], [0.7, 0.3, 0.8, 0.1])
        >>> d = independent_delta(a, b)
        >>> round(d.delta, 6) == round(a.nll.mean - b.nll.mean, 6), d.delta_ci[0] < d.delta
        (True, True)
        >>> independent_delta(a, ScoreStats().update([1], [0.5])) is None
        True
    """
    confidence = check_confidence(confidence)
    se_w, _ = standard_error(window.nll, window.weight_sq)
    se_b, _ = standard_error(baseline.nll, baseline.weight_sq)
    if not (math.isfinite(se_w) and math.isfinite(se_b)):
        return None
    delta = window.nll.mean - baseline.nll.mean
    se = math.hypot(se_w, se_b)
    if se > 0.0:
        from scipy.special import ndtr, ndtri  # here: `import xebench` stays fast

        half = float(ndtri(0.5 + confidence / 2.0)) * se
        p_value = float(2.0 * ndtr(-abs(delta) / se))
    else:
        half, p_value = 0.0, 1.0 if delta == 0.0 else 0.0
    return Delta(delta, se, (delta - half, delta + half), min(p_value, 1.0))


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the order given.

    Sorted ascending, the i-th smallest (from 0) of m is multiplied by ``m - i``,
    the running maximum is taken (adjusted values never decrease with the raw
    ones) and capped at 1. Rejecting where the adjusted value is below alpha
    controls the family-wise error rate at alpha.

    Example:
        >>> holm([0.04, 0.001, 0.02, 0.5])    # x4, x3, x2, x1 in ascending order
        [0.08, 0.004, 0.06, 0.5]
        >>> holm([])
        []
    """
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * float(p_values[i])))
        adjusted[i] = running
    return adjusted
