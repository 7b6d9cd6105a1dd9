"""Drift decisions: one feature's reference vs current histograms, judged and ranked.

Pure functions over :mod:`xebench.stats.histograms`; the engines that count
files, tables and the store into histograms (:mod:`xebench.offline.drift`,
:mod:`xebench.monitor.windows`) all judge through here, so a feature's number
is the same wherever it is shown.

- **Divergences** come from :func:`~xebench.stats.histograms.histogram_divergence`
  (the kernel's :func:`~xebench.kl_divergence`, :func:`~xebench.js_divergence`
  and :func:`~xebench.psi`): KL(reference || current) -- the source documents'
  KL(P_baseline || Q_current); ``kl_reverse`` is KL(current || reference) -- and PSI with additive
  ``smoothing`` for empty bins, and the Jensen-Shannon divergence in nats.
- **Verdict**: ``"insufficient"`` when either side has fewer than
  ``min_samples`` values (no alarm on tiny samples), else ``"drift"`` when
  the JS divergence is at or above ``threshold``, else ``"stable"``. The
  default threshold 0.01 nats is Evidently's default Jensen-Shannon
  *distance* threshold 0.1, squared.
- **Ranking**: drifted features first, then stable, then insufficient; by JS
  divergence within each group.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .._validation import check_smoothing
from ..errors import InvalidInputError
from ..metrics.registry import METRICS
from ..stats.histograms import (
    CategoricalHistogram,
    Histogram,
    NumericHistogram,
    histogram_divergence,
)

__all__ = [
    "DEFAULT_BINS",
    "DEFAULT_MIN_SAMPLES",
    "DEFAULT_SMOOTHING",
    "DEFAULT_THRESHOLD",
    "DEFAULT_TOP_K",
    "PSI_BANDS",
    "DriftReport",
    "FeatureDrift",
    "check_min_samples",
    "check_threshold",
    "compare_histograms",
    "psi_band",
    "rank",
]

#: Fewer values than this on either side: no verdict ("insufficient").
DEFAULT_MIN_SAMPLES = 500
#: JS divergence (nats) at or above which a feature is "drift"
#: (Evidently's default Jensen-Shannon distance threshold 0.1, squared).
DEFAULT_THRESHOLD = 0.01
#: Additive smoothing of the bin shares for KL and PSI (empty bins stay finite).
DEFAULT_SMOOTHING = 1e-4
#: Quantile bins of a numeric feature.
DEFAULT_BINS = 10
#: Categories of a categorical feature (the most frequent reference values).
DEFAULT_TOP_K = 20

KINDS = ("numeric", "categorical", "score", "label")
VERDICTS = ("drift", "stable", "insufficient")


# --- results ---------------------------------------------------------------------


@dataclass(frozen=True)
class FeatureDrift:
    """One feature's reference vs current comparison.

    Attributes:
        feature: column (or score / label) name.
        kind: ``"numeric"``, ``"categorical"``, ``"score"`` or ``"label"``.
        n_reference, n_current: values on each side (NaN and missing included).
        kl: KL(reference || current) in nats, smoothed; ``None`` if a side is empty.
        kl_reverse: KL(current || reference), the other direction (the default before
            December 2026); ``None`` if a side is empty.
        js: Jensen-Shannon divergence in nats (0 to ln 2); ``None`` if a side is empty.
        psi: population stability index, smoothed; ``None`` if a side is empty.
        verdict: ``"drift"``, ``"stable"`` or ``"insufficient"``.
        bins: bin labels, out-of-range / NaN / other / missing bins included.
        reference_share, current_share: share of each side's values per bin.

    Example:
        >>> ref = NumericHistogram([0, 1, 2]).update([0.5, 1.5] * 300)
        >>> cur = ref.empty_copy().update([0.5, 1.5, 1.5, 1.5] * 150)
        >>> d = compare_histograms("age", ref, cur)
        >>> d.verdict, round(d.js, 4), d.bins
        ('drift', 0.0338, ['< 0', '[0, 1]', '(1, 2]', '> 2', 'NaN'])
        >>> d.to_dict()["current_share"]
        [0.0, 0.25, 0.75, 0.0, 0.0]
    """

    feature: str
    kind: str
    n_reference: float
    n_current: float
    kl: float | None
    js: float | None
    psi: float | None
    verdict: str
    bins: list[str]
    reference_share: list[float]
    current_share: list[float]
    kl_reverse: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe plain data (every number finite or ``None``)."""
        return {
            "feature": self.feature,
            "kind": self.kind,
            "n_reference": self.n_reference,
            "n_current": self.n_current,
            "kl": self.kl,
            "kl_reverse": self.kl_reverse,
            "js": self.js,
            "psi": self.psi,
            "psi_band": psi_band(self.psi),
            "verdict": self.verdict,
            "bins": list(self.bins),
            "reference_share": list(self.reference_share),
            "current_share": list(self.current_share),
        }


#: The usual PSI bands: below 0.1 no significant change, 0.1 to 0.25 a moderate one,
#: 0.25 and above a significant one (Siddiqi, *Credit Risk Scorecards*, 2006).
PSI_BANDS = (0.1, 0.25)


def psi_band(value: float | None) -> str | None:
    """The PSI band of ``value``: ``"none"`` (< 0.1), ``"moderate"`` (0.1 to 0.25) or
    ``"significant"`` (>= 0.25); None without a value.

    Example:
        >>> psi_band(0.05), psi_band(0.1), psi_band(0.2333), psi_band(0.25), psi_band(None)
        ('none', 'moderate', 'moderate', 'significant', None)
    """
    if value is None:
        return None
    return "none" if value < PSI_BANDS[0] else "moderate" if value < PSI_BANDS[1] else "significant"


def compare_histograms(
    feature: str,
    reference: Histogram,
    current: Histogram,
    *,
    kind: str | None = None,
    min_samples: int = DEFAULT_MIN_SAMPLES,
    threshold: float = DEFAULT_THRESHOLD,
    smoothing: float = DEFAULT_SMOOTHING,
) -> FeatureDrift:
    """Compare a current histogram with the reference one (same bins).

    ``kind`` defaults to ``"numeric"`` or ``"categorical"`` from the
    histogram type (pass ``"score"`` or ``"label"`` for model scores and
    labels). Divergences are those of
    :func:`~xebench.stats.histograms.histogram_divergence`; an empty side gives
    ``None`` divergences and the verdict ``"insufficient"``.

    Example:
        >>> ref = CategoricalHistogram(["eu", "us"]).update(["eu"] * 600 + ["us"] * 400)
        >>> cur = ref.empty_copy().update(["eu"] * 450 + ["us"] * 450 + ["apac"] * 100)
        >>> d = compare_histograms("region", ref, cur)
        >>> d.kind, d.verdict, round(d.js, 4), round(d.psi, 4)
        ('categorical', 'drift', 0.0408, 0.7396)
        >>> compare_histograms("region", ref, cur, min_samples=2000).verdict
        'insufficient'
    """
    if not isinstance(feature, str):
        raise InvalidInputError("feature", "must be a string", value=feature)
    kind = _check_kind(kind, reference)
    min_samples = check_min_samples(min_samples)
    threshold = check_threshold(threshold)
    smoothing = check_smoothing(smoothing)
    _check_same_bins(reference, current)
    n_reference, n_current = reference.total, current.total
    kl = kl_reverse = js = psi_value = None
    if n_reference > 0 and n_current > 0:
        divergence = histogram_divergence(reference, current, smoothing=smoothing)
        kl, js, psi_value = divergence["kl"], divergence["js"], divergence["psi"]
        kl_reverse = divergence["kl_reverse"]
    if js is None or n_reference < min_samples or n_current < min_samples:
        verdict = "insufficient"
    else:
        verdict = "drift" if js >= threshold else "stable"
    return FeatureDrift(
        feature=feature,
        kind=kind,
        n_reference=n_reference,
        n_current=n_current,
        kl=kl,
        js=js,
        psi=psi_value,
        kl_reverse=kl_reverse,
        verdict=verdict,
        bins=reference.bin_labels(),
        reference_share=_shares(reference.distribution()),
        current_share=_shares(current.distribution()),
    )


def rank(results: Iterable[FeatureDrift]) -> list[FeatureDrift]:
    """Drifted features first, then stable, then insufficient; by JS (descending), then name.

    Example:
        >>> def fd(name, js, verdict):
        ...     return FeatureDrift(name, "numeric", 1e3, 1e3, js, js, js, verdict, [], [], [])
        >>> [d.feature for d in rank([fd("a", 0.001, "stable"), fd("b", 0.2, "insufficient"),
        ...                           fd("c", 0.05, "drift"), fd("d", 0.003, "stable")])]
        ['c', 'd', 'a', 'b']
    """
    order = {verdict: index for index, verdict in enumerate(VERDICTS)}
    js = METRICS["js"]

    def key(result: FeatureDrift) -> tuple[int, float, str]:
        # Worst (most drifted) first; a feature without a JS value last.
        return (
            order.get(result.verdict, len(order)),
            js.sort_key(result.js, worst_first=True),
            result.feature,
        )

    return sorted(results, key=key)


@dataclass(frozen=True)
class DriftReport:
    """Every compared feature, ranked, and the settings they were judged with.

    Attributes:
        features: per-feature results, ranked (:func:`rank`).
        n_reference, n_current: rows on each side.
        min_samples, threshold: the verdict rule.
        smoothing, n_bins, top_k: how bins and divergences were made.
        reference_files, current_files: inputs (file paths, or a description
            of in-memory tables).
        skipped: columns not compared, with the reason (e.g. only on one side,
            an unsupported type).

    Example:
        >>> ref = NumericHistogram([0, 1, 2]).update([0.5, 1.5] * 300)
        >>> cur = ref.empty_copy().update([1.5] * 600)
        >>> report = DriftReport([compare_histograms("x", ref, cur)], 600, 600, 500, 0.01)
        >>> report.drifted, report.to_dict()["features"][0]["verdict"]
        (['x'], 'drift')
    """

    features: list[FeatureDrift]
    n_reference: int
    n_current: int
    min_samples: int
    threshold: float
    smoothing: float = DEFAULT_SMOOTHING
    n_bins: int = DEFAULT_BINS
    top_k: int = DEFAULT_TOP_K
    reference_files: list[str] = field(default_factory=list)
    current_files: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)

    @property
    def drifted(self) -> list[str]:
        """Names of the features whose verdict is ``"drift"``, in ranking order."""
        return [f.feature for f in self.features if f.verdict == "drift"]

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe plain data, the document of ``xebench drift --json``."""
        from .._version import __version__

        return {
            "n_reference": self.n_reference,
            "n_current": self.n_current,
            "min_samples": self.min_samples,
            "threshold": self.threshold,
            "smoothing": self.smoothing,
            "n_bins": self.n_bins,
            "top_k": self.top_k,
            "drifted": self.drifted,
            "features": [f.to_dict() for f in self.features],
            "skipped": dict(self.skipped),
            "reference_files": list(self.reference_files),
            "current_files": list(self.current_files),
            "xebench_version": __version__,
        }


def check_min_samples(min_samples: object) -> int:
    """``min_samples`` as an int, or an :class:`InvalidInputError` naming it.

    Example:
        >>> check_min_samples(500)
        500
        >>> check_min_samples(-1)
        Traceback (most recent call last):
        ...
        xebench.errors.InvalidInputError: min_samples: must be an integer >= 0; got -1
    """
    if (
        isinstance(min_samples, bool)
        or not isinstance(min_samples, (int, np.integer))
        or min_samples < 0
    ):
        raise InvalidInputError("min_samples", "must be an integer >= 0", value=min_samples)
    return int(min_samples)


def check_threshold(threshold: object) -> float:
    """``threshold`` as a finite float >= 0, or an :class:`InvalidInputError` naming it.

    Example:
        >>> check_threshold(1)
        1.0
        >>> check_threshold(float("inf"))
        Traceback (most recent call last):
        ...
        xebench.errors.InvalidInputError: threshold: must be a finite number >= 0; got inf
    """
    if isinstance(threshold, bool) or not isinstance(
        threshold, (int, float, np.integer, np.floating)
    ):
        raise InvalidInputError("threshold", "must be a number >= 0", value=threshold)
    if not (math.isfinite(threshold) and threshold >= 0):
        raise InvalidInputError("threshold", "must be a finite number >= 0", value=threshold)
    return float(threshold)


def _check_kind(kind: object, reference: Histogram) -> str:
    if kind is None:
        return "numeric" if isinstance(reference, NumericHistogram) else "categorical"
    if kind not in KINDS:
        raise InvalidInputError("kind", f"must be one of {', '.join(KINDS)}", value=kind)
    return str(kind)


def _check_same_bins(reference: Histogram, current: Histogram) -> None:
    if isinstance(reference, NumericHistogram) and isinstance(current, NumericHistogram):
        same = np.array_equal(reference.edges, current.edges)
    elif isinstance(reference, CategoricalHistogram) and isinstance(current, CategoricalHistogram):
        same = reference.categories == current.categories
    else:
        raise InvalidInputError(
            "current",
            "reference and current must both be NumericHistogram or both CategoricalHistogram",
            value=f"{type(reference).__name__} and {type(current).__name__}",
        )
    if not same:
        raise InvalidInputError(
            "current", "must have the same bins as the reference (use reference.empty_copy())"
        )


def _shares(counts: NDArray[np.float64]) -> list[float]:
    total = float(counts.sum())
    return (counts / total).tolist() if total > 0 else [0.0] * counts.shape[0]
