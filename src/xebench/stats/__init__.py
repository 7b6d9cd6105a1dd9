"""Mergeable statistics: counts and sums that update per chunk and merge exactly.

A file chunk, a time bucket and (later) a Spark partition are the same
object: ``merge(A, B)`` equals the statistics of A and B concatenated.

- :mod:`.scores`: :class:`ScoreStats`, one model's predictions against labels,
  with its parts: :mod:`.moments` (mergeable moments and t intervals),
  :mod:`.scored_rows` (one chunk's per-row quantities), :mod:`.score_calibration`
  (the fine calibration bins) and :mod:`.score_forms` (its dict and row forms);
- :mod:`.discrimination`: :class:`DiscriminationStats`, ROC AUC and average
  precision from fine per-class score histograms, with a worst-case error bound;
- :mod:`.histograms`: binned distributions for drift;
- :mod:`.bootstrap`: the mergeable Poisson bootstrap;
- :mod:`.tokens`: :class:`TokenStats`, a language model's token log-probabilities.
"""

from .discrimination import DiscriminationStats
from .histograms import CategoricalHistogram, NumericHistogram, histogram_divergence
from .scores import ScoreStats
from .tokens import TokenStats

__all__ = [
    "CategoricalHistogram",
    "DiscriminationStats",
    "NumericHistogram",
    "ScoreStats",
    "TokenStats",
    "histogram_divergence",
]
