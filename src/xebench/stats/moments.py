"""Mergeable weighted moments (Welford / Chan) and the t intervals of their mean.

A :class:`Moments` is the weighted count, mean and sum of squared deviations
of a sample: it updates chunk by chunk and merges exactly (Chan, Golub and
LeVeque), so the variance of a window is the merge of its buckets' moments,
never a second pass over the events. :func:`combine_moments` merges many at
once (vectorized); :func:`standard_error` and :func:`t_interval` give the
error and the Student t interval of the mean, with Kish's effective sample
size ``(sum w)^2 / sum w^2`` when rows are weighted.

Example:
    >>> m = Moments.of(np.array([1.0, 2.0])).merge(Moments.of(np.array([3.0, 4.0])))
    >>> low, high, se = t_interval(m, 4.0, 0.95)
    >>> m.mean, round(low, 4), round(high, 4)
    (2.5, 0.4457, 4.5543)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ..errors import InvalidInputError
from ..metrics.blocks import dot

__all__ = ["Moments", "check_confidence", "combine_moments", "standard_error", "t_interval"]


@dataclass(frozen=True)
class Moments:
    """Weighted count, mean and sum of squared deviations (Welford / Chan).

    Merging uses the parallel formula of Chan, Golub and LeVeque (1979):
    exact in exact arithmetic and numerically stable, unlike a running sum of
    squares.

    Example:
        >>> a = Moments.of(np.array([1.0, 2.0]))
        >>> b = Moments.of(np.array([3.0, 4.0, 5.0]))
        >>> both = a.merge(b)
        >>> both.weight, both.mean, both.m2    # m2 = sum (x - 3)^2
        (5.0, 3.0, 10.0)
    """

    weight: float = 0.0
    mean: float = 0.0
    m2: float = 0.0

    @classmethod
    def of(cls, values: NDArray[np.float64], weight: NDArray[np.float64] | None = None) -> Moments:
        """Moments of one chunk, two-pass for accuracy."""
        if values.shape[0] == 0:
            return cls()
        if weight is None:
            mean = float(np.mean(values))
            deviation = values - mean
            return cls(float(values.shape[0]), mean, dot(deviation, deviation))
        total = float(weight.sum())
        if total == 0.0:
            return cls()
        mean = dot(weight, values) / total
        deviation = values - mean
        return cls(total, mean, dot(weight, deviation * deviation))

    def merge(self, other: Moments) -> Moments:
        """Moments of the union of both samples."""
        if other.weight == 0.0:
            return self
        if self.weight == 0.0:
            return other
        total = self.weight + other.weight
        delta = other.mean - self.mean
        return Moments(
            total,
            self.mean + delta * (other.weight / total),
            self.m2 + other.m2 + delta * delta * (self.weight * other.weight / total),
        )


def combine_moments(
    group: NDArray[np.intp],
    n_groups: int,
    weight: NDArray[np.float64],
    mean: NDArray[np.float64],
    m2: NDArray[np.float64],
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Merge many :class:`Moments` at once: part ``i`` goes into group ``group[i]``.

    The k-part form of Chan's formula, ``M2 = sum m2_i + sum w_i (mean_i - mean)^2``:
    equal in exact arithmetic to merging the parts one by one, and vectorized,
    so a window of ten thousand one-minute buckets merges in a millisecond.
    Returns per-group (weight, mean, m2); empty groups are all zero.

    Example:
        >>> w, mean, m2 = combine_moments(
        ...     np.array([0, 0]), 1, np.array([2.0, 3.0]), np.array([1.5, 4.0]),
        ...     np.array([0.5, 2.0]))
        >>> float(w[0]), float(mean[0]), float(m2[0])    # as Moments.merge: values 1..5
        (5.0, 3.0, 10.0)
    """
    total = np.bincount(group, weights=weight, minlength=n_groups)
    with np.errstate(invalid="ignore", divide="ignore"):
        center = np.bincount(group, weights=weight * mean, minlength=n_groups) / total
    center[total == 0.0] = 0.0
    deviation = mean - center[group]
    spread = np.bincount(group, weights=m2 + weight * deviation * deviation, minlength=n_groups)
    return total, center, spread


def standard_error(moments: Moments, weight_sq: float) -> tuple[float, float]:
    """(standard error of a weighted mean, effective sample size).

    Kish's effective sample size ``n_eff = W^2 / sum w^2`` is ``n`` for unit
    weights; the error is infinite below 2 effective rows.

    Example:
        >>> se, n_eff = standard_error(Moments.of(np.array([1.0, 2.0, 3.0, 4.0])), 4.0)
        >>> round(se, 4), n_eff
        (0.6455, 4.0)
    """
    n_eff = moments.weight**2 / weight_sq if weight_sq > 0.0 else 0.0
    if n_eff <= 1.0:
        return math.inf, n_eff
    variance = moments.m2 / moments.weight * n_eff / (n_eff - 1.0)
    return math.sqrt(variance / n_eff), n_eff


def t_interval(
    moments: Moments, weight_sq: float, confidence: float
) -> tuple[float, float, float] | None:
    """(low, high, standard error) of a weighted mean, or None below 2 effective rows.

    Student's t with ``n_eff - 1`` degrees of freedom (see :func:`standard_error`).

    Example:
        >>> m = Moments.of(np.array([1.0, 2.0, 3.0, 4.0]))
        >>> low, high, se = t_interval(m, 4.0, 0.95)
        >>> round(low, 4), round(high, 4), round(se, 4)
        (0.4457, 4.5543, 0.6455)
    """
    se, n_eff = standard_error(moments, weight_sq)
    if not math.isfinite(se):
        return None
    from scipy.special import stdtrit  # here, not at the top: `import xebench` stays fast

    t = float(stdtrit(n_eff - 1.0, 0.5 + confidence / 2.0))
    return moments.mean - t * se, moments.mean + t * se, se


def check_confidence(confidence: object) -> float:
    """Validate a confidence level in (0, 1).

    Example:
        >>> check_confidence(0.95)
        0.95
    """
    if (
        isinstance(confidence, bool)
        or not isinstance(confidence, (int, float, np.floating))
        or not 0.0 < float(confidence) < 1.0
    ):
        raise InvalidInputError("confidence", "must be a number in (0, 1)", value=confidence)
    return float(confidence)
