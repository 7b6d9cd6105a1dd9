"""The fine calibration bins of ScoreStats, and the results read from them.

Calibration is kept in 300 uniform bins of the calibration score (binary:
P(class 1); multiclass: top-label confidence). Any bin count dividing 300
(10, 15, 20, 25, 30, 50, 60, 100, ...) is derived exactly: the kernel's
uniform edges are ``i / n_bins``, so coarse bins are sums of fine ones
(:func:`coarse_bins`). :class:`CalibrationResults` reads the reliability
curve and the Brier and log-loss decompositions from the bins.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from .._validation import check_n_bins, log_of_base
from ..errors import InvalidInputError
from ..metrics.calibration import (
    ReliabilityCurve,
    brier_decomposition_from_bins,
    log_loss_refinement,
)
from .moments import Moments

__all__ = ["ECE_BINS", "FINE_BINS", "FINE_EDGES", "CalibrationResults", "coarse_bins"]

#: Calibration bins kept by ScoreStats; coarser bin counts must divide it.
FINE_BINS = 300
#: Edges of the fine bins, ``i / FINE_BINS``: the kernel's uniform edges.
FINE_EDGES = np.arange(FINE_BINS + 1) / FINE_BINS
#: Coarse calibration bins of the ECE by default (``ScoreStats.result()``, the SLI and
#: the ``xebench_ece`` gauge).
ECE_BINS = 15


def coarse_bins(fine: NDArray[np.float64], n_bins: int) -> NDArray[np.float64]:
    """Sums of ``fine`` (one value per fine bin, on the last axis) over ``n_bins``
    uniform bins.

    ``n_bins`` must divide :data:`FINE_BINS`.

    Example:
        >>> coarse_bins(np.ones(FINE_BINS), 3).tolist()
        [100.0, 100.0, 100.0]
    """
    if FINE_BINS % n_bins:
        allowed = [d for d in range(1, FINE_BINS + 1) if FINE_BINS % d == 0]
        raise InvalidInputError(
            "n_bins",
            f"must divide the {FINE_BINS} stored calibration bins: {allowed}",
            value=n_bins,
        )
    return fine.reshape(*fine.shape[:-1], n_bins, FINE_BINS // n_bins).sum(axis=-1)


class CalibrationResults:
    """The calibration readings of :class:`~xebench.stats.scores.ScoreStats` (mixed into it).

    Uses the statistics' fine bins (``cal_count``, ``cal_score``, ``cal_hit``),
    their total ``weight``, ``binary`` and the NLL moments ``nll``.

    Example:
        >>> from xebench.stats.scores import ScoreStats
        >>> s = ScoreStats().update([0, 0, 1, 1], [0.1, 0.3, 0.7, 0.9])
        >>> s.reliability_curve(2).count.tolist()
        [2.0, 2.0]
    """

    cal_count: NDArray[np.float64]
    cal_score: NDArray[np.float64]
    cal_hit: NDArray[np.float64]
    nll: Moments
    weight: float
    binary: bool

    def reliability_curve(self, n_bins: int = 10) -> ReliabilityCurve:
        """The reliability curve over ``n_bins`` uniform bins (must divide 300).

        Example:
            >>> from xebench.stats.scores import ScoreStats
            >>> s = ScoreStats().update([0, 0, 1, 1], [0.1, 0.3, 0.7, 0.9])
            >>> s.reliability_curve(2).observed_frequency.tolist()
            [0.0, 1.0]
        """
        count, score, hit = (coarse_bins(a, check_n_bins(n_bins)) for a in self._bins())
        with np.errstate(invalid="ignore", divide="ignore"):
            return ReliabilityCurve(
                np.arange(n_bins + 1) / n_bins, count, score / count, hit / count
            )

    def brier_decomposition(self, n_bins: int = FINE_BINS) -> dict[str, float]:
        """Murphy's decomposition (see :func:`xebench.brier_decomposition`).

        Example:
            >>> from xebench.stats.scores import ScoreStats
            >>> s = ScoreStats().update([0, 1, 0, 1], [0.2, 0.2, 0.6, 0.6])
            >>> round(s.brier_decomposition()["reliability"], 4)
            0.05
        """
        self._require_events()
        return brier_decomposition_from_bins(
            *(coarse_bins(a, check_n_bins(n_bins)) for a in self._bins())
        )

    def log_loss_decomposition(
        self, n_bins: int = FINE_BINS, *, base: str | int = "e"
    ) -> dict[str, float]:
        """Calibration and refinement loss (see :func:`xebench.log_loss_decomposition`).

        Example:
            >>> from xebench.stats.scores import ScoreStats
            >>> stats = ScoreStats().update([0, 1, 0, 1], [0.2, 0.2, 0.6, 0.6])
            >>> loss = stats.log_loss_decomposition()    # refinement: ln 2, both bins at 1/2
            >>> round(loss["refinement"], 4), round(loss["calibration"], 4)
            (0.6931, 0.1218)
        """
        self._require_events()
        if not self.binary:
            raise InvalidInputError(
                "n_classes", "the log-loss decomposition is defined for binary predictions"
            )
        divisor = log_of_base(base)
        count, _, hit = (coarse_bins(a, check_n_bins(n_bins)) for a in self._bins())
        loss = self.nll.mean / divisor
        refinement = log_loss_refinement(count, hit) / divisor
        return {"log_loss": loss, "calibration": loss - refinement, "refinement": refinement}

    def _bins(self) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
        return self.cal_count, self.cal_score, self.cal_hit

    def _require_events(self) -> None:
        if self.weight <= 0.0:
            raise InvalidInputError("ScoreStats", "holds no events yet")
