"""Monitoring settings: label delays and coverage per model, drift and gate defaults.

They are read from the ``monitoring:`` section of the service's config
(:mod:`xebench.service.config`).

Example:
    >>> MonitorSettings().policy("fraud").min_coverage
    0.5
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta

__all__ = ["ModelPolicy", "MonitorSettings"]


@dataclass(frozen=True)
class ModelPolicy:
    """When a model's windows are final.

    Attributes:
        label_delay: how long labels take to arrive; a window ending less than
            this ago is provisional. None: the observed 90th percentile of label
            lag over the last 7 days.
        min_coverage: a window with a smaller labelled share is provisional.

    Example:
        >>> ModelPolicy(label_delay=timedelta(hours=1)).min_coverage
        0.5
    """

    label_delay: timedelta | None = None
    min_coverage: float = 0.5


@dataclass(frozen=True)
class MonitorSettings:
    """Monitoring defaults, per model where it matters (``monitoring:`` in the config).

    Example:
        >>> s = MonitorSettings(models={"fraud": ModelPolicy(label_delay=timedelta(hours=2))})
        >>> s.policy("fraud").label_delay, s.policy("other").label_delay
        (datetime.timedelta(seconds=7200), None)
    """

    default: ModelPolicy = field(default_factory=ModelPolicy)
    models: Mapping[str, ModelPolicy] = field(default_factory=dict)
    #: Drift reference per model: "rolling", "version:V", "range:FROM/TO" or "file:PATH".
    references: Mapping[str, str] = field(default_factory=dict)
    drift_min_samples: int = 500
    drift_threshold: float = 0.01
    drift_bins: int = 10
    gate_max_degradation: float = 0.02
    gate_min_samples: int = 1000
    gate_confidence: float = 0.95
    #: The label-lag bridge (stats.expected_loss): a window's estimate applies the
    #: reliability map of the labelled events of this long before the window (or series)
    #: starts, when it holds at least ``estimate_min_labelled`` of them.
    estimate_reference: timedelta = timedelta(days=7)
    estimate_min_labelled: int = 200
    #: Cohort ranking (``GET /v1/cohorts``): a value with fewer labelled, scorable events
    #: on a side is inconclusive (as ScoreStats' ``ci_reliable``: 30 effective events).
    cohort_min_samples: int = 30

    def policy(self, model: str) -> ModelPolicy:
        """The policy of ``model`` (the default when it has none)."""
        return self.models.get(model, self.default)
