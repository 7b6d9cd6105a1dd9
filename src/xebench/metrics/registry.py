"""The metric registry: every metric's name, direction, unit and range, in one table.

Direction is metadata, not code: the gate, the drift ranking, the reports
(and the SLOs) ask the registry whether a larger value is worse instead of
special-casing a metric. Names follow scikit-learn's rule where they carry a
suffix (``*_loss`` / ``*_error``: lower is better; ``*_score``: higher).

    >>> METRICS["log_loss"].lower_is_better, METRICS["skill"].lower_is_better
    (True, False)
    >>> better("accuracy", 0.9, 0.8), worse_by("log_loss", 0.35, 0.30) > 0
    (True, True)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

__all__ = ["METRICS", "Metric", "better", "metric", "sort_key", "worse_by"]

Direction = Literal["lower", "higher"]


@dataclass(frozen=True)
class Metric:
    """One metric: which way is better, in what unit, over what range.

    Attributes:
        name: the registry name (the SLO ``sli`` and the JSON field, unless ``key``).
        direction: ``"lower"`` or ``"higher"`` is better.
        unit: ``"nats"`` (log units: nats, bits or log10 per ``base``),
            ``"probability"``, ``"ratio"``, ``"classes"`` (an effective number
            of classes) or ``"count"``; for language models ``"nats/token"``,
            ``"bits/token"``, ``"bits/byte"`` and ``"unitless"`` (perplexities).
        low, high: the range of possible values (``math.inf`` when unbounded).
        description: one line for humans.
        key: the field that holds it in JSON results (default: ``name``).

    Example:
        >>> ece = METRICS["ece"]
        >>> ece.direction, ece.unit, (ece.low, ece.high), ece.worse(0.08, 0.05)
        ('lower', 'probability', (0.0, 1.0), True)
    """

    name: str
    direction: Direction
    unit: str
    low: float
    high: float
    description: str
    key: str = ""

    def __post_init__(self) -> None:
        if not self.key:
            object.__setattr__(self, "key", self.name)

    @property
    def lower_is_better(self) -> bool:
        """Whether smaller values are better (a loss, an error, a divergence)."""
        return self.direction == "lower"

    @property
    def higher_is_better(self) -> bool:
        """Whether larger values are better (a score, a coverage)."""
        return self.direction == "higher"

    def badness(self, value: float) -> float:
        """``value`` oriented so that larger is worse: the value itself, or its negation.

        Example:
            >>> METRICS["log_loss"].badness(0.3), METRICS["accuracy"].badness(0.9)
            (0.3, -0.9)
        """
        return value if self.lower_is_better else -value

    def worse_by(self, value: float, threshold: float) -> float:
        """How far ``value`` is on the bad side of ``threshold`` (negative: on the good side).

        Example:
            >>> round(METRICS["log_loss"].worse_by(0.35, 0.30), 4)
            0.05
            >>> round(METRICS["skill"].worse_by(0.35, 0.30), 4)
            -0.05
        """
        return self.badness(value) - self.badness(threshold)

    def better(self, a: float, b: float) -> bool:
        """Whether ``a`` is strictly better than ``b``.

        Example:
            >>> METRICS["brier"].better(0.1, 0.2), METRICS["brier"].better(0.2, 0.2)
            (True, False)
        """
        return self.worse_by(a, b) < 0

    def worse(self, a: float, b: float) -> bool:
        """Whether ``a`` is strictly worse than ``b``.

        Example:
            >>> METRICS["label_coverage"].worse(0.4, 0.9)
            True
        """
        return self.worse_by(a, b) > 0

    def sort_key(self, value: float | None, *, worst_first: bool = False) -> float:
        """Ascending sort key: the best value first (or the worst), missing values last.

        Example:
            >>> sorted([0.4, None, 0.9], key=METRICS["accuracy"].sort_key)
            [0.9, 0.4, None]
            >>> sorted([0.01, None, 0.2], key=lambda v: METRICS["js"].sort_key(v, worst_first=True))
            [0.2, 0.01, None]
        """
        if value is None or math.isnan(value):
            return math.inf
        return -self.badness(value) if worst_first else self.badness(value)


_INF = math.inf

#: Every metric xebench reports, by name.
METRICS: Mapping[str, Metric] = {
    m.name: m
    for m in (
        Metric("log_loss", "lower", "nats", 0.0, _INF, "mean negative log-likelihood"),
        Metric("nll", "lower", "nats", 0.0, _INF, "negative log-likelihood of one event"),
        Metric("perplexity", "lower", "classes", 1.0, _INF, "exp(log loss in nats)"),
        Metric("brier", "lower", "probability", 0.0, 2.0, "mean squared probability error"),
        Metric("ece", "lower", "probability", 0.0, 1.0, "expected calibration error"),
        Metric("mce", "lower", "probability", 0.0, 1.0, "maximum calibration error"),
        Metric("skill", "higher", "ratio", -_INF, 1.0, "1 - log loss / prior log loss"),
        Metric("accuracy", "higher", "probability", 0.0, 1.0, "share of top labels right"),
        Metric("prior_log_loss", "lower", "nats", 0.0, _INF, "log loss of the label rates"),
        Metric("clipped", "lower", "count", 0.0, _INF, "events whose loss eps capped"),
        # Discrimination (xebench.metrics.discrimination): ranking, beside calibration.
        Metric("roc_auc", "higher", "probability", 0.0, 1.0, "P(a positive outranks a negative)"),
        Metric("average_precision", "higher", "probability", 0.0, 1.0, "area under the PR curve"),
        # Imbalance: one true class's mean NLL (per_class_log_loss; bench's "per_class").
        Metric(
            "class_log_loss", "lower", "nats", 0.0, _INF, "mean NLL of one true class",
            key="log_loss",
        ),
        Metric("entropy", "lower", "nats", 0.0, _INF, "Shannon entropy: less is sharper"),
        Metric("kl", "lower", "nats", 0.0, _INF, "KL(reference || current)"),
        Metric("js", "lower", "nats", 0.0, math.log(2.0), "Jensen-Shannon divergence"),
        Metric("psi", "lower", "nats", 0.0, _INF, "population stability index"),
        Metric(
            "label_coverage", "higher", "probability", 0.0, 1.0, "labelled share of predictions",
            key="coverage",
        ),
        Metric("delta", "lower", "nats", -_INF, _INF, "log loss minus the reference's"),
        Metric("event_rate", "higher", "events/min", 0.0, _INF, "predictions per minute"),
        # Quantum XEB: a distinct domain, the fidelity of a quantum circuit's execution
        # (xebench.metrics.xeb), not a model-quality metric; ~[0, 1] for a real device.
        Metric(
            "xeb_linear", "higher", "ratio", -1.0, _INF,
            "quantum circuit fidelity (linear XEB): D mean(p) - 1", key="linear",
        ),
        Metric(
            "xeb_log", "higher", "ratio", -_INF, _INF,
            "quantum circuit fidelity (log XEB): ln D + gamma + mean(ln p)", key="log",
        ),
        # Language models: token log-probabilities (xebench.metrics.tokens, TokenStats).
        Metric("pooled_cross_entropy", "lower", "nats/token", 0.0, _INF, "total NLL / tokens"),
        Metric("pooled_perplexity", "lower", "unitless", 1.0, _INF, "exp(pooled cross-entropy)"),
        Metric("bits_per_token", "lower", "bits/token", 0.0, _INF, "pooled cross-entropy in bits"),
        Metric(
            "mean_sequence_cross_entropy", "lower", "nats/token", 0.0, _INF,
            "mean of the sequences' cross-entropies",
        ),
        Metric(
            "mean_sequence_perplexity", "lower", "unitless", 1.0, _INF,
            "mean of the sequences' perplexities",
        ),
        Metric("bits_per_byte", "lower", "bits/byte", 0.0, _INF, "total NLL / UTF-8 bytes, bits"),
        Metric("byte_perplexity", "lower", "unitless", 1.0, _INF, "exp(total NLL / bytes)"),
        Metric("word_perplexity", "lower", "unitless", 1.0, _INF, "exp(total NLL / words)"),
        Metric("extremal_tokens", "lower", "count", 0.0, _INF, "tokens below a log-probability"),
    )
}  # fmt: skip


def metric(name: str) -> Metric:
    """The registry entry of ``name``; a ``KeyError`` that lists the known names otherwise.

    Example:
        >>> metric("psi").unit
        'nats'
        >>> metric("auroc")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        KeyError: "unknown metric 'auroc'; known: accuracy, ..."
    """
    try:
        return METRICS[name]
    except KeyError:
        known = ", ".join(sorted(METRICS))
        raise KeyError(f"unknown metric {name!r}; known: {known}") from None


def better(name: str, a: float, b: float) -> bool:
    """Whether ``a`` is a strictly better value of metric ``name`` than ``b``.

    Example:
        >>> better("log_loss", 0.2, 0.3), better("skill", 0.2, 0.3)
        (True, False)
    """
    return metric(name).better(a, b)


def worse_by(name: str, value: float, threshold: float) -> float:
    """How far ``value`` of metric ``name`` is on the bad side of ``threshold``.

    Positive when ``value`` is worse than ``threshold``, negative when better,
    whatever the metric's direction.

    Example:
        >>> worse_by("ece", 0.07, 0.05) > 0, worse_by("label_coverage", 0.7, 0.5) > 0
        (True, False)
    """
    return metric(name).worse_by(value, threshold)


def sort_key(name: str, value: float | None, *, worst_first: bool = False) -> float:
    """Ascending sort key of metric ``name``: the best value first (or the worst), missing last.

    Example:
        >>> sorted([0.3, 0.1, None], key=lambda v: sort_key("log_loss", v))
        [0.1, 0.3, None]
    """
    return metric(name).sort_key(value, worst_first=worst_first)
