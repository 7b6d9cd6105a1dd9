"""xebench: cross-entropy benchmarking and monitoring of probabilistic models.

The metrics kernel is re-exported here::

    >>> import xebench as xb
    >>> round(xb.log_loss([1, 0], [0.9, 0.2]), 4)
    0.1643
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from .compare import (
    Comparison,
    Decision,
    PairedStats,
    decide,
    paired_comparison,
    unpaired_comparison,
)
from .errors import InvalidInputError, XebenchError
from .histograms import CategoricalHistogram, NumericHistogram, histogram_divergence
from .metrics import (
    ReliabilityCurve,
    accuracy,
    brier_decomposition,
    brier_score,
    calibration_error,
    clipped_count,
    cross_entropy,
    entropy,
    js_divergence,
    kl_divergence,
    log_loss,
    log_loss_decomposition,
    nll,
    perplexity,
    prior_log_loss,
    psi,
    reliability_curve,
    skill_score,
)
from .stats import ScoreStats

try:
    __version__ = version("xebench")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = [
    "CategoricalHistogram",
    "Comparison",
    "Decision",
    "InvalidInputError",
    "NumericHistogram",
    "PairedStats",
    "ReliabilityCurve",
    "ScoreStats",
    "XebenchError",
    "__version__",
    "accuracy",
    "brier_decomposition",
    "brier_score",
    "calibration_error",
    "clipped_count",
    "cross_entropy",
    "decide",
    "entropy",
    "histogram_divergence",
    "js_divergence",
    "kl_divergence",
    "log_loss",
    "log_loss_decomposition",
    "nll",
    "paired_comparison",
    "perplexity",
    "prior_log_loss",
    "psi",
    "reliability_curve",
    "skill_score",
    "unpaired_comparison",
]
