"""The reliability curve of a window, and the histogram of its scores, from the buckets.

The curve is read from the calibration bins of the window's
:class:`~xebench.ScoreStats` (the 300 fine bins every bucket keeps, summed
into ``bins`` uniform ones, :func:`~xebench.stats.score_calibration.coarse_bins`),
the same statistics whose ECE ``GET /v1/metrics`` reports: with the default
``bins`` (:data:`~xebench.stats.score_calibration.ECE_BINS`) the answer's ``ece`` is
the window's. The histogram is the buckets' score histogram of *every* prediction
of the window, labelled or not (20 uniform bins, as kept for score drift).

Example:
    >>> from xebench.monitor.windows import Monitor
    >>> from xebench.store import EventStore
    >>> r = Monitor(EventStore(":memory:")).reliability(Scope("t", "m", window="1h"))
    >>> r["n_bins"], r["ece"], len(r["bins"]), len(r["histogram"])
    (15, None, 15, 20)
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..errors import InvalidInputError
from ..stats.score_calibration import ECE_BINS, FINE_BINS
from ..store.buckets import SCORE_BINS, score_stats
from ..store.event_store import EventStore
from .reads import Selection, class_list, merged, one_class_list, scores
from .scope import Scope, iso

__all__ = ["ReliabilityQuestions"]


class ReliabilityQuestions:
    """The reliability question of :class:`~xebench.monitor.windows.Monitor` (mixed into it)."""

    store: EventStore

    def reliability(self, scope: Scope, *, bins: int = ECE_BINS) -> dict[str, Any]:
        """The window's reliability curve over ``bins`` uniform bins of the calibration
        score, its ECE over those bins, and the histogram of its predictions' scores.

        The calibration score is the ECE's (the kernel's ``calibration_inputs``): for a
        binary model P(class 1), and ``observed`` is the frequency of class 1 among
        the bin's labelled events; for a multiclass model the top-label confidence
        (the largest probability), and ``observed`` is how often the top label was
        the true one (a top-label reliability curve). ``count`` is the labelled
        events' weight in the bin (their number when unweighted), ``mean_predicted``
        their mean score; both are None in an empty bin. ``bins`` must divide the
        300 stored bins (1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 25, 30, 50, 60, 75, 100,
        150, 300). ``histogram``: ``{"lo", "hi", "count"}`` of every prediction (labelled
        or not) in the 20 score bins the buckets keep.

        Example:
            >>> from xebench.demo.stream import generate, load
            >>> from xebench.monitor.windows import Monitor
            >>> from xebench.store import EventStore
            >>> store = EventStore(":memory:")
            >>> stream = generate(hours=2, rate_per_minute=30)
            >>> _ = load(store, stream); _ = store.update_buckets()
            >>> monitor = Monitor(store)
            >>> scope = Scope("default", "fraud", window="2h", now=stream.now)
            >>> curve = monitor.reliability(scope, bins=10)
            >>> curve["bins"][0]["lo"], curve["bins"][0]["hi"], curve["score"]
            (0.0, 0.1, 'p_positive')
            >>> monitor.reliability(scope)["ece"] == monitor.window(scope).ece
            True
        """
        if (
            isinstance(bins, bool)
            or not isinstance(bins, int | np.integer)
            or not 1 <= bins <= FINE_BINS
            or FINE_BINS % bins
        ):
            allowed = [d for d in range(1, FINE_BINS + 1) if FINE_BINS % d == 0]
            raise InvalidInputError(
                "bins",
                f"must divide the {FINE_BINS} stored calibration bins: {allowed}",
                value=bins,
            )
        bins = int(bins)
        scope = scope.pinned(self.store.buckets.config.cohort_crossings)
        span = scope.span()
        table, _ = one_class_list(scores(self.store, Selection.of(scope, span)))
        classes = class_list(table, scope.model)
        merge = merged(table)
        edges = np.arange(bins + 1) / bins
        count = np.zeros(bins)
        predicted = observed = np.full(bins, np.nan)
        ece = None
        if classes is not None and int(merge["n"][0]) > 0:
            stats = score_stats(merge, 0, classes)
            curve = stats.reliability_curve(bins)
            count, predicted, observed = curve.count, curve.mean_predicted, curve.observed_frequency
            ece = stats.result(n_bins=bins)["ece"]
        hist = merge["score_hist"][0]
        hist_edges = np.arange(SCORE_BINS + 1) / SCORE_BINS
        return {
            "model": scope.model,
            "version": scope.version,
            "cohort": scope.cohort_label,
            "from": iso(span.start),
            "to": iso(span.end),
            "classes": classes,
            "score": "p_positive" if classes is None or len(classes) == 2 else "top_label",
            "n_predictions": int(merge["n_predictions"][0]),
            "n_labelled": int(merge["n_labelled"][0]),
            "n": int(merge["n"][0]),
            "n_bins": bins,
            "ece": ece,
            "bins": [
                {
                    "lo": float(edges[i]),
                    "hi": float(edges[i + 1]),
                    "count": float(count[i]),
                    "mean_predicted": _number(predicted[i]),
                    "observed": _number(observed[i]),
                }
                for i in range(bins)
            ],
            "histogram": [
                {"lo": float(hist_edges[i]), "hi": float(hist_edges[i + 1]), "count": int(hist[i])}
                for i in range(SCORE_BINS)
            ],
        }


def _number(value: float) -> float | None:
    return None if not math.isfinite(float(value)) else float(value)
