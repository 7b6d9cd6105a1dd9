"""The label-lag bridge: the log loss a window will have, estimated from its predictions.

While labels lag, a window's log loss is known only on its labelled share. Its
predictions alone already say much: each prediction has two possible losses,
``hit`` (the event turns out to be what the calibration score bets on: class 1
for a binary model, the top label for a multiclass one) and ``miss``, and its
expected loss is ``a * hit + (1 - a) * miss`` for ``a`` the probability of a hit.

- Under calibration ``a`` is the calibration score itself, and the expected loss
  is the prediction's entropy (of its clipped log loss): the *calibrated* estimate.
- A *reliability map* learned on a labelled reference period corrects ``a``
  per score bin by the ratio of the outcomes observed there to those the scores
  predicted (:class:`ReliabilityMap`): the estimate stays right under covariate
  shift (a changed mix of scores) as long as the model's calibration is what
  it was in the reference, also for a model that was never calibrated.

The sums that make both estimates are kept per score bin in the bucket
statistics (:func:`expected_loss_sums`, merged by addition), so a window's
estimate is a merge like every other statistic. :func:`estimate_log_loss`
turns them into a :class:`LossEstimate` with a confidence interval, and checks
the reference map against the window's own labelled events: when they disagree
(a chi-square test of hits against the map's expectation, per bin), the
estimate is flagged unreliable. An estimate is never a measurement: SLOs count
only labelled events.

Example:
    >>> p = np.array([0.9, 0.8, 0.3, 0.1])
    >>> sums = expected_loss_sums(p, None, np.zeros(4, dtype=np.intp), 1)
    >>> est = estimate_log_loss(sums.row(0), reference=None)
    >>> round(est.calibrated, 4), est.method
    (0.4404, 'calibration')
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .._validation import log_of_base
from ..metrics.blocks import DEFAULT_EPS
from ..metrics.calibration import uniform_bin_index
from .score_calibration import coarse_bins

__all__ = [
    "ESTIMATE_BINS",
    "SUM_LISTS",
    "SUM_SCALARS",
    "LossEstimate",
    "LossSums",
    "ReliabilityMap",
    "estimate_log_loss",
    "expected_loss_sums",
    "outcome_losses",
    "outcome_sums",
]

#: Score bins of the estimate sums: uniform on [0, 1], a divisor of the fine calibration
#: bins (so a reference's map is exact sums of its calibration bins).
ESTIMATE_BINS = 20
_EDGES = np.linspace(0.0, 1.0, ESTIMATE_BINS + 1)
_MIDPOINTS = (_EDGES[:-1] + _EDGES[1:]) / 2
#: The bucket columns of :class:`LossSums` (``est_`` + name): scalars, then per-bin lists.
SUM_SCALARS = ("n", "weight", "var")
SUM_LISTS = ("hit", "miss", "hit_s", "miss_s")
#: Predicted outcomes of the prior of a bin's ratio (centred on 1, calibration): a bin
#: the reference barely filled leans on calibration instead of on a few events.
PRIOR_EVENTS = 2.0
#: The reference map is rejected when the window's labelled events disagree with it
#: at this significance (chi-square over the filled bins).
CHECK_ALPHA = 0.01


def outcome_losses(
    probabilities: NDArray[np.floating], eps: float = DEFAULT_EPS
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """(calibration score, loss on a hit, expected loss on a miss) of each prediction, in nats.

    ``probabilities``: P(class 1) per row (binary) or one row of class
    probabilities per prediction. Probabilities are clipped to ``[eps, 1 - eps]``
    as the log loss clips them. Binary: the score is P(class 1), a hit is class 1
    (loss ``-ln p``) and a miss class 0 (``-ln(1 - p)``). Multiclass: the score is
    the top-label confidence ``c``, a hit the top label (``-ln c``); a miss is
    one of the other classes in proportion to their probabilities
    (``-sum_j p_j ln p_j / (1 - c)`` over them), so that ``c * hit + (1 - c) * miss``
    is the prediction's entropy.

    Example:
        >>> score, hit, miss = outcome_losses(np.array([0.8]))
        >>> score.tolist(), hit.round(4).tolist(), miss.round(4).tolist()
        ([0.8], [0.2231], [1.6094])
        >>> _, hit, miss = outcome_losses(np.array([[0.5, 0.25, 0.25]]))
        >>> hit.round(4).tolist(), miss.round(4).tolist()
        ([0.6931], [1.3863])
    """
    p = np.asarray(probabilities, dtype=np.float64)
    if p.ndim == 1:
        clipped = np.clip(p, eps, 1.0 - eps)
        return p, -np.log(clipped), -np.log1p(-clipped)
    top = p.argmax(axis=1)
    rows = np.arange(p.shape[0])
    confidence = p[rows, top]
    logs = -np.log(np.clip(p, eps, 1.0 - eps))
    hit = logs[rows, top]
    rest = 1.0 - confidence
    other = (p * logs).sum(axis=1) - confidence * hit
    with np.errstate(divide="ignore", invalid="ignore"):
        # A prediction certain of its top label misses onto a class it gave ~0: -ln eps.
        miss = np.where(rest > 0, other / np.where(rest > 0, rest, 1.0), -math.log(eps))
    return confidence, hit, miss


@dataclass(frozen=True)
class LossSums:
    """The estimate sums of groups of predictions (one row per group).

    Scalars: ``n`` predictions, ``weight`` their total weight, ``var`` the sum
    of weight^2 x s(1 - s) x (hit - miss)^2 (the spread of the realized loss
    around its expectation, s the calibration score). Per score bin (columns):
    ``hit`` and ``miss``, sums of weight x the loss on a hit / a miss, and
    ``hit_s`` and ``miss_s``, the same sums weighted by the score too.
    """

    n: NDArray[np.int64]
    weight: NDArray[np.float64]
    var: NDArray[np.float64]
    hit: NDArray[np.float64]
    miss: NDArray[np.float64]
    hit_s: NDArray[np.float64]
    miss_s: NDArray[np.float64]

    @property
    def entropy(self) -> NDArray[np.float64]:
        """Per group: the sum of weight x expected loss under calibration."""
        return np.asarray((self.hit_s + self.miss - self.miss_s).sum(axis=1))

    def row(self, g: int) -> LossSums:
        """The sums of group ``g`` alone.

        Example:
            >>> sums = expected_loss_sums(np.array([0.5, 0.9]), None, np.array([0, 1]), 2)
            >>> sums.row(1).n.tolist()
            [1]
        """
        pick = slice(g, g + 1)
        return LossSums(*(getattr(self, f.name)[pick] for f in fields(self)))

    def mean_entropy(self) -> float | None:
        """The calibrated estimate of a single group: its expected loss under
        calibration per unit of weight, in nats (None without predictions).

        Example:
            >>> sums = expected_loss_sums(np.array([0.5]), None, np.array([0]), 1)
            >>> round(sums.mean_entropy(), 4)
            0.6931
        """
        value = float(self.mean_entropies()[0])
        return None if math.isnan(value) else value

    def mean_entropies(self) -> NDArray[np.float64]:
        """:meth:`mean_entropy` of every group at once (NaN for its None): what a
        Prometheus scrape finishing thousands of windows computes.

        Example:
            >>> # (ln 2 + H(0.9)) / 2 = (0.6931 + 0.3251) / 2; group 1 holds nothing
            >>> sums = expected_loss_sums(np.array([0.5, 0.9]), None, np.array([0, 0]), 2)
            >>> sums.mean_entropies().round(4).tolist()
            [0.5091, nan]
        """
        weight = np.asarray(self.weight, dtype=np.float64)
        held = (np.asarray(self.n) > 0) & (weight > 0)
        out = np.full(weight.shape[0], np.nan)
        np.divide(self.entropy, weight, out=out, where=held)
        return out


def expected_loss_sums(
    probabilities: NDArray[np.floating],
    weight: NDArray[np.float64] | None,
    group: NDArray[np.intp],
    n_groups: int,
    eps: float = DEFAULT_EPS,
) -> LossSums:
    """The estimate sums of predictions, row ``i`` counted in group ``group[i]``.

    Example:
        >>> sums = expected_loss_sums(np.array([0.8, 0.8]), None, np.array([0, 0]), 1)
        >>> sums.n.tolist(), round(float(sums.hit.sum()), 4), round(float(sums.entropy[0]), 4)
        ([2], 0.4463, 1.0008)
    """
    score, hit, miss = outcome_losses(probabilities, eps)
    return outcome_sums(score, hit, miss, weight, group, n_groups)


def outcome_sums(
    score: NDArray[np.float64],
    hit: NDArray[np.float64],
    miss: NDArray[np.float64],
    weight: NDArray[np.float64] | None,
    group: NDArray[np.intp],
    n_groups: int,
) -> LossSums:
    """The estimate sums of :func:`outcome_losses`' rows, row ``i`` in group ``group[i]``.

    Example:
        >>> score, hit, miss = outcome_losses(np.array([0.8, 0.6]))
        >>> outcome_sums(score, hit, miss, None, np.array([0, 0]), 1).n.tolist()
        [2]
    """
    w = np.ones(score.shape[0]) if weight is None else np.asarray(weight, dtype=np.float64)
    slot = group.astype(np.int64) * ESTIMATE_BINS + uniform_bin_index(score, _EDGES)
    size = n_groups * ESTIMATE_BINS

    def per_bin(values: NDArray[np.float64]) -> NDArray[np.float64]:
        return np.bincount(slot, weights=values, minlength=size).reshape(n_groups, ESTIMATE_BINS)

    ws = w * score
    return LossSums(
        n=np.bincount(group, minlength=n_groups).astype(np.int64),
        weight=np.bincount(group, weights=w, minlength=n_groups),
        var=np.bincount(
            group, weights=w * w * score * (1 - score) * (hit - miss) ** 2, minlength=n_groups
        ),
        hit=per_bin(w * hit),
        miss=per_bin(w * miss),
        hit_s=per_bin(ws * hit),
        miss_s=per_bin(ws * miss),
    )


#: Bins whose scores are above one half correct the (rare) misses, the others the
#: (rare) hits: the rarer outcome carries the large loss, and a ratio to what the
#: scores predict keeps each prediction's own probability inside its bin.
_MISS_FORM = _MIDPOINTS > 0.5


@dataclass(frozen=True)
class ReliabilityMap:
    """How labelled events' outcomes compare with their scores, per score bin.

    ``count``, ``score`` and ``hits``: per bin, the weight of labelled events,
    of their scores and of their hits (the fine calibration bins of
    :class:`~xebench.stats.scores.ScoreStats`, coarsened to
    :data:`ESTIMATE_BINS`); ``n_labelled`` their number. A bin's *ratio* is
    observed over predicted: hits over the scores' sum in the bins below one
    half, misses over the predicted misses above it; 1 for a calibrated model.
    A prediction of score ``s`` then hits with probability ``ratio * s``
    (``1 - ratio * (1 - s)`` above one half).

    Example:
        >>> from xebench.stats.score_calibration import FINE_BINS
        >>> count, score, hits = (np.zeros(FINE_BINS) for _ in range(3))
        >>> count[285], score[285], hits[285] = 100, 95, 90   # 10 misses where 5 were due
        >>> m = ReliabilityMap.from_fine_bins(count, score, hits, 100)
        >>> round(float(m.ratio()[19]), 3)                    # (10 + 2) / (5 + 2)
        1.714
    """

    count: NDArray[np.float64]
    score: NDArray[np.float64]
    hits: NDArray[np.float64]
    n_labelled: int

    @classmethod
    def from_fine_bins(
        cls,
        cal_count: NDArray[np.float64],
        cal_score: NDArray[np.float64],
        cal_hit: NDArray[np.float64],
        n_labelled: int,
    ) -> ReliabilityMap:
        """The map of calibration bins of :data:`FINE_BINS` (a ScoreStats' ``cal_*``)."""
        return cls(
            coarse_bins(np.asarray(cal_count, float), ESTIMATE_BINS),
            coarse_bins(np.asarray(cal_score, float), ESTIMATE_BINS),
            coarse_bins(np.asarray(cal_hit, float), ESTIMATE_BINS),
            int(n_labelled),
        )

    @classmethod
    def empty(cls) -> ReliabilityMap:
        """The map of no labelled event: every ratio 1 (calibration), known exactly.

        Example:
            >>> ReliabilityMap.empty().ratio()[:3].tolist(), ReliabilityMap.empty().n_labelled
            ([1.0, 1.0, 1.0], 0)
        """
        zeros = np.zeros(ESTIMATE_BINS)
        return cls(zeros, zeros, zeros, 0)

    def _observed_predicted(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        observed = np.where(_MISS_FORM, self.count - self.hits, self.hits)
        predicted = np.where(_MISS_FORM, self.count - self.score, self.score)
        return observed, predicted

    def ratio(self) -> NDArray[np.float64]:
        """Observed over predicted outcomes per bin, shrunk towards 1 by
        :data:`PRIOR_EVENTS` predicted outcomes (1 in an empty bin)."""
        observed, predicted = self._observed_predicted()
        return (observed + PRIOR_EVENTS) / (predicted + PRIOR_EVENTS)

    def ratio_variance(self) -> NDArray[np.float64]:
        """The sampling variance of each bin's ratio (binomial outcomes); 0 for
        :meth:`empty` (calibration is assumed, not estimated)."""
        if self.n_labelled == 0 and not self.count.any():
            return np.zeros(ESTIMATE_BINS)
        _, predicted = self._observed_predicted()
        expected = self.ratio() * predicted
        spread = expected * np.clip(1 - expected / np.maximum(self.count, 1e-12), 0, 1)
        return (spread + PRIOR_EVENTS) / (predicted + PRIOR_EVENTS) ** 2

    def expected_loss(self, sums: LossSums) -> tuple[float, float]:
        """(sum of weight x expected loss, its variance from the ratios' sampling error)
        of one group's ``sums`` under this map."""
        hit, miss, hit_s, miss_s = sums.hit[0], sums.miss[0], sums.hit_s[0], sums.miss_s[0]
        # Expected loss of bin b: base_b + ratio_b * slope_b, for either form; ratio 1
        # gives the entropy.
        base = np.where(_MISS_FORM, hit, miss)
        slope = np.where(_MISS_FORM, (miss - miss_s) - (hit - hit_s), hit_s - miss_s)
        value = float((base + self.ratio() * slope).sum())
        return value, float((slope**2 * self.ratio_variance()).sum())

    def disagreement(self, labelled: ReliabilityMap) -> tuple[float, int]:
        """(chi-square statistic, degrees of freedom) of ``labelled`` events' hits
        against what this map predicts for their scores, over their filled bins."""
        ratio, ratio_var = self.ratio(), self.ratio_variance()
        count, score = labelled.count, labelled.score
        hits = np.where(_MISS_FORM, count - ratio * (count - score), ratio * score)
        slope = np.where(_MISS_FORM, count - score, score)  # |d hits / d ratio|
        mean = hits / np.maximum(count, 1e-12)
        spread = hits * np.clip(1 - mean, 0, 1) + slope**2 * ratio_var
        filled = count > 0
        z2 = (labelled.hits - hits) ** 2 / np.maximum(spread, 1e-12)
        return float(z2[filled].sum()), int(filled.sum())


@dataclass(frozen=True)
class LossEstimate:
    """A window's expected log loss from its predictions (see the module docstring).

    Attributes:
        value: the estimate (the reliability map's, else the calibrated one), in the
            unit of ``base``.
        ci: its confidence interval (the map's sampling error and the spread of the
            realized loss around its expectation).
        method: ``reliability_map`` or ``calibration`` (no usable reference).
        calibrated: the mean expected loss under calibration (the predictions' entropy).
        n_predictions: the predictions it covers.
        reference_labelled: labelled events the map was learned from.
        reliable: False when the window's labelled events reject the reference map
            (or the estimate misses predictions); None when nothing could check it.
        check_labelled, check_p_value: the events of that check and its p-value.
        reason: why it is unreliable or unchecked.
    """

    value: float
    ci: tuple[float, float]
    method: str
    calibrated: float
    n_predictions: int
    reference_labelled: int
    reliable: bool | None
    check_labelled: int
    check_p_value: float | None
    reason: str | None

    def to_dict(self) -> dict[str, Any]:
        """The ``log_loss_estimate`` object of a window document."""
        return {
            "value": self.value,
            "ci": list(self.ci),
            "method": self.method,
            "calibrated": self.calibrated,
            "n_predictions": self.n_predictions,
            "reference_labelled": self.reference_labelled,
            "reliable": self.reliable,
            "check": {"n_labelled": self.check_labelled, "p_value": self.check_p_value},
            "reason": self.reason,
            "estimate": True,  # from predictions alone: never a measurement, never an SLI
        }


def estimate_log_loss(
    sums: LossSums,
    reference: ReliabilityMap | None,
    *,
    check: ReliabilityMap | None = None,
    min_reference: int = 200,
    missing: int = 0,
    confidence: float = 0.95,
    base: str | int = "e",
) -> LossEstimate | None:
    """The expected log loss of one group's predictions (``sums``, a single row).

    ``reference``: the reliability map of a labelled reference period (None, or
    fewer than ``min_reference`` labelled events: the calibrated estimate).
    ``check``: the map of the window's own labelled events, tested against the
    reference. ``missing``: predictions of the window without sums (folded
    before they were kept), which makes the estimate unreliable. None when the
    group holds no prediction.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> p = rng.uniform(0.05, 0.95, 5000)
        >>> y = rng.uniform(size=5000) < p                  # calibrated
        >>> sums = expected_loss_sums(p, None, np.zeros(5000, dtype=np.intp), 1)
        >>> true = float(-np.mean(np.where(y, np.log(p), np.log(1 - p))))
        >>> est = estimate_log_loss(sums, None)
        >>> est.ci[0] <= true <= est.ci[1], est.reliable
        (True, None)
    """
    from scipy.stats import chi2, norm  # here: `import xebench` stays fast

    calibrated = sums.mean_entropy()
    if calibrated is None:
        return None
    total = float(sums.weight[0])
    unit = log_of_base(base)
    usable = reference is not None and reference.n_labelled >= min_reference
    used = reference if usable and reference is not None else ReliabilityMap.empty()
    value, map_variance = used.expected_loss(sums)
    value /= total
    variance = map_variance + float(sums.var[0])
    half = float(norm.ppf(0.5 + confidence / 2)) * math.sqrt(max(variance, 0.0)) / total

    reliable: bool | None = None
    p_value: float | None = None
    reasons: list[str] = []
    if not usable:
        n_ref = 0 if reference is None else reference.n_labelled
        reasons.append(
            f"{n_ref} labelled events in the reference period (< {min_reference}): "
            "assumes the model is calibrated"
        )
    if check is not None and check.n_labelled > 0:
        # The window's own labelled events against the map the estimate applies.
        statistic, dof = used.disagreement(check)
        p_value = float(chi2.sf(statistic, dof)) if dof else None
        if p_value is not None:
            reliable = p_value >= CHECK_ALPHA
            if not reliable:
                reasons.append(
                    f"the window's {check.n_labelled} labelled events disagree with the "
                    f"{'reference' if usable else 'calibrated'} hit rates "
                    f"(p = {p_value:.2g} < {CHECK_ALPHA})"
                )
    else:
        reasons.append("no labelled event in the window to check the hit rates against")
    if missing:
        reliable = False
        reasons.append(f"{missing} predictions were folded before estimate sums were kept")
    return LossEstimate(
        value=value / unit,
        ci=((value - half) / unit, (value + half) / unit),
        method="reliability_map" if usable else "calibration",
        calibrated=calibrated / unit,
        n_predictions=int(sums.n[0]),
        reference_labelled=0 if reference is None else reference.n_labelled,
        reliable=reliable,
        check_labelled=0 if check is None else check.n_labelled,
        check_p_value=p_value,
        reason="; ".join(reasons) or None,
    )
