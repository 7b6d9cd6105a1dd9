"""xebench: cross-entropy benchmarking and monitoring of probabilistic models.

The metrics kernel is re-exported here::

    >>> import xebench as xb
    >>> round(xb.log_loss([1, 0], [0.9, 0.2]), 4)
    0.1643
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from .errors import InvalidInputError, XebenchError
from .metrics import (
    ReliabilityCurve,
    accuracy,
    brier_score,
    calibration_error,
    clipped_count,
    cross_entropy,
    entropy,
    js_divergence,
    kl_divergence,
    log_loss,
    nll,
    perplexity,
    prior_log_loss,
    psi,
    reliability_curve,
    skill_score,
)

try:
    __version__ = version("xebench")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = [
    "InvalidInputError",
    "ReliabilityCurve",
    "XebenchError",
    "__version__",
    "accuracy",
    "brier_score",
    "calibration_error",
    "clipped_count",
    "cross_entropy",
    "entropy",
    "js_divergence",
    "kl_divergence",
    "log_loss",
    "nll",
    "perplexity",
    "prior_log_loss",
    "psi",
    "reliability_curve",
    "skill_score",
]
