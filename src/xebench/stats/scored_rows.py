"""The per-row quantities of one scored chunk: :class:`ScoredRows`.

:meth:`~xebench.stats.scores.ScoreStats.score` validates a chunk once and
returns its rows' NLL, Brier, hits, clipping and calibration inputs; the
statistics of a model, of its cohorts and of a paired comparison all
accumulate from the same rows, so nothing is validated or logged twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["ScoredRows"]


@dataclass(frozen=True)
class ScoredRows:
    """Per-row quantities of one validated chunk, computed once.

    :meth:`ScoreStats.score` builds it; :meth:`ScoreStats.add` accumulates
    it. Scoring once lets one chunk feed several accumulators -- a model's
    statistics, its cohorts (:meth:`take` of their rows) and a paired
    comparison -- without validating or taking logarithms again.

    Example:
        >>> from xebench.stats.scores import ScoreStats
        >>> rows = ScoreStats().score([1, 0, 1], [0.9, 0.2, 0.4])
        >>> rows.n_rows, rows.nll.round(4).tolist(), rows.hit.tolist()
        (3, [0.1054, 0.2231, 0.9163], [True, True, False])
    """

    codes: NDArray[np.intp]
    """Class index of each row's label."""
    weight: NDArray[np.float64] | None
    nll: NDArray[np.float64]
    """Negative log-likelihood in nats, after clipping to [eps, 1 - eps]."""
    brier: NDArray[np.float64]
    hit: NDArray[np.bool_]
    """Whether the top label was right (accuracy)."""
    clipped: NDArray[np.bool_]
    """Whether the observed class got a probability below eps."""
    score: NDArray[np.float64]
    """What calibration bins: P(class 1) (binary) or top-label confidence."""
    score_hit: NDArray[np.bool_]
    """What calibration compares it with: label is 1, or top label right."""
    fine_bin: NDArray[np.intp]
    """Index of the score's fine calibration bin (of FINE_BINS)."""
    keys: NDArray[np.uint64] | None = None
    """Bootstrap seeds of the rows (only when the statistics keep replicates)."""

    @property
    def n_rows(self) -> int:
        """Number of rows."""
        return int(self.nll.shape[0])

    def take(self, rows: NDArray[np.intp] | slice) -> ScoredRows:
        """The same quantities for a subset of rows (e.g. one cohort).

        Example:
            >>> from xebench.stats.scores import ScoreStats
            >>> ScoreStats().score([1, 0, 1], [0.9, 0.2, 0.4]).take(np.array([0, 2])).n_rows
            2
        """

        def pick(values: NDArray[Any] | None) -> NDArray[Any] | None:
            return None if values is None else values[rows]

        return ScoredRows(
            codes=self.codes[rows],
            weight=pick(self.weight),
            nll=self.nll[rows],
            brier=self.brier[rows],
            hit=self.hit[rows],
            clipped=self.clipped[rows],
            score=self.score[rows],
            score_hit=self.score_hit[rows],
            fine_bin=self.fine_bin[rows],
            keys=pick(self.keys),
        )
