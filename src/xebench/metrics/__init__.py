"""The metrics kernel: pure functions over arrays, no I/O, no state.

Every other layer computes its numbers through these functions; this package
imports nothing of the project but :mod:`xebench.errors` and
:mod:`xebench._validation`.

    >>> from xebench.metrics import log_loss
    >>> round(log_loss([1, 0], [0.9, 0.2]), 4)
    0.1643
"""

from .kernel import (
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

__all__ = [
    "ReliabilityCurve",
    "accuracy",
    "brier_decomposition",
    "brier_score",
    "calibration_error",
    "clipped_count",
    "cross_entropy",
    "entropy",
    "js_divergence",
    "kl_divergence",
    "log_loss",
    "log_loss_decomposition",
    "nll",
    "perplexity",
    "prior_log_loss",
    "psi",
    "reliability_curve",
    "skill_score",
]
