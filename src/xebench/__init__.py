"""xebench: cross-entropy benchmarking and monitoring of probabilistic models.

The metrics kernel is re-exported here::

    >>> import xebench as xb
    >>> round(xb.log_loss([1, 0], [0.9, 0.2]), 4)
    0.1643
"""

from __future__ import annotations

import importlib
from typing import Any

from .analysis.compare import (
    Comparison,
    Decision,
    PairedStats,
    decide,
    paired_comparison,
    unpaired_comparison,
)
from .errors import DataError, InvalidInputError, UndefinedMetricWarning, XebenchError
from .metrics import (
    ReliabilityCurve,
    accuracy,
    average_precision,
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
    per_class_log_loss,
    perplexity,
    prior_log_loss,
    psi,
    reliability_curve,
    roc_auc,
    skill_score,
)
from .metrics.tokens import (
    bits_per_byte,
    bits_per_token,
    byte_perplexity,
    extremal_tokens,
    mean_sequence_cross_entropy,
    mean_sequence_perplexity,
    pooled_cross_entropy,
    pooled_perplexity,
    sequence_cross_entropy,
    sequence_perplexity,
    token_log_loss,
    token_nll,
    word_perplexity,
)
from .metrics.xeb import xeb_fidelity
from .stats.discrimination import DiscriminationStats
from .stats.histograms import CategoricalHistogram, NumericHistogram, histogram_divergence
from .stats.scores import ScoreStats
from .stats.tokens import TokenStats
from .stats.xeb import XEBCircuits, XEBStats

_LAZY = {
    "__version__": "_version",  # package metadata: importlib.metadata costs 0.05-0.1 s
    "benchmark": "offline.benchmark",
    "BenchmarkResult": "offline.benchmark",
    "Client": "client.sdk",
    "ClientError": "client.sdk",
    "EventStore": "store.event_store",
    "scan_token_stats": "offline.token_scan",
    "lm_benchmark": "offline.lm",
    "LMBenchmarkResult": "offline.lm",
}


def __getattr__(name: str) -> Any:
    """Import the version, benchmarks, token scan, client and store (and their
    dependencies) on first use."""
    if name in _LAZY:
        module = importlib.import_module(f".{_LAZY[name]}", __name__)
        return getattr(module, name)
    raise AttributeError(f"module 'xebench' has no attribute {name!r}")


__all__ = [
    "BenchmarkResult",
    "CategoricalHistogram",
    "Client",
    "ClientError",
    "Comparison",
    "DataError",
    "Decision",
    "DiscriminationStats",
    "EventStore",
    "InvalidInputError",
    "LMBenchmarkResult",
    "NumericHistogram",
    "PairedStats",
    "ReliabilityCurve",
    "ScoreStats",
    "TokenStats",
    "UndefinedMetricWarning",
    "XEBCircuits",
    "XEBStats",
    "XebenchError",
    "__version__",
    "accuracy",
    "average_precision",
    "benchmark",
    "bits_per_byte",
    "bits_per_token",
    "brier_decomposition",
    "brier_score",
    "byte_perplexity",
    "calibration_error",
    "clipped_count",
    "cross_entropy",
    "decide",
    "entropy",
    "extremal_tokens",
    "histogram_divergence",
    "js_divergence",
    "kl_divergence",
    "lm_benchmark",
    "log_loss",
    "log_loss_decomposition",
    "mean_sequence_cross_entropy",
    "mean_sequence_perplexity",
    "nll",
    "paired_comparison",
    "per_class_log_loss",
    "perplexity",
    "pooled_cross_entropy",
    "pooled_perplexity",
    "prior_log_loss",
    "psi",
    "reliability_curve",
    "roc_auc",
    "scan_token_stats",
    "sequence_cross_entropy",
    "sequence_perplexity",
    "skill_score",
    "token_log_loss",
    "token_nll",
    "unpaired_comparison",
    "word_perplexity",
    "xeb_fidelity",
]
