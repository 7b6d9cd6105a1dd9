"""The metrics kernel: pure NumPy functions over arrays, no I/O, no state.

Every metric is defined once, as a validated public function over the
building blocks of clean arrays; the mergeable statistics, the CLI, the
service and the engines all get their numbers from these definitions. This
package imports nothing of the project but :mod:`xebench.errors` and
:mod:`xebench._validation`. One module per family:

- :mod:`~xebench.metrics.blocks`: validated predictions and per-row sums
  (NLL, Brier, top label) that every family and the statistics build on;
- :mod:`~xebench.metrics.classification`: log loss, NLL, perplexity,
  cross-entropy, Brier score, accuracy, clipped count, prior and skill;
- :mod:`~xebench.metrics.calibration`: reliability curves, ECE / MCE, the
  Brier and log-loss decompositions, and their per-bin building blocks;
- :mod:`~xebench.metrics.discrimination`: ROC AUC and average precision,
  exact, binary and one-vs-rest;
- :mod:`~xebench.metrics.information`: entropy, KL, Jensen-Shannon, PSI;
- :mod:`~xebench.metrics.tokens`: language models' token log-probabilities:
  pooled and per-sequence cross-entropy and perplexity, bits per byte;
- :mod:`~xebench.metrics.registry`: each metric's direction, unit and range;
- :mod:`~xebench.metrics.xeb`: quantum cross-entropy benchmarking, a distinct
  domain (the fidelity of a quantum circuit's execution, not a model score).

Conventions shared by every function:

- ``y_true`` holds labels of any hashable type (ints, strings, bools).
- Binary ``y_prob`` is a 1-D array of P(class 1), where class 1 is
  ``labels[1]`` (0/1 or False/True when ``y_true`` holds those, else the
  larger of the two sorted labels). A 2-D ``(n, k)`` array has one column per
  class, in the order of ``labels`` (the sorted unique labels, or 0..k-1 for
  integer labels, when ``labels`` is None). Two columns are the binary case.
- ``eps`` clips probabilities to ``[eps, 1 - eps]`` before the logarithm, so
  a confident miss costs at most ``-ln(eps)`` (34.5 nats at the default).
- ``base`` is ``"e"`` (nats, the default), ``2`` (bits) or ``10``.
- ``sample_weight`` weighs rows; integer weights equal repeated rows.
- ``class_weight`` (a weight per label, or ``"balanced"``) multiplies each
  row's weight by its class's weight (see :func:`~xebench.metrics.blocks.prepare`).
- Scalars come back as Python ``float``.

    >>> from xebench.metrics import log_loss
    >>> round(log_loss([1, 0], [0.9, 0.2]), 4)
    0.1643
"""

from .calibration import (
    ReliabilityCurve,
    brier_decomposition,
    calibration_error,
    log_loss_decomposition,
    reliability_curve,
)
from .classification import (
    accuracy,
    brier_score,
    clipped_count,
    cross_entropy,
    log_loss,
    nll,
    per_class_log_loss,
    perplexity,
    prior_log_loss,
    skill_score,
)
from .discrimination import average_precision, roc_auc
from .information import entropy, js_divergence, kl_divergence, psi
from .registry import METRICS, Metric
from .tokens import (
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
    token_nll,
    word_perplexity,
)
from .xeb import xeb_fidelity

__all__ = [
    "METRICS",
    "Metric",
    "ReliabilityCurve",
    "accuracy",
    "average_precision",
    "bits_per_byte",
    "bits_per_token",
    "brier_decomposition",
    "brier_score",
    "byte_perplexity",
    "calibration_error",
    "clipped_count",
    "cross_entropy",
    "entropy",
    "extremal_tokens",
    "js_divergence",
    "kl_divergence",
    "log_loss",
    "log_loss_decomposition",
    "mean_sequence_cross_entropy",
    "mean_sequence_perplexity",
    "nll",
    "per_class_log_loss",
    "perplexity",
    "pooled_cross_entropy",
    "pooled_perplexity",
    "prior_log_loss",
    "psi",
    "reliability_curve",
    "roc_auc",
    "sequence_cross_entropy",
    "sequence_perplexity",
    "skill_score",
    "token_nll",
    "word_perplexity",
    "xeb_fidelity",
]
