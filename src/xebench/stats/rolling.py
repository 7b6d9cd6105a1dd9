"""Trailing-window point values of score statistics, for every minute at once.

An SLO judges each minute by its SLI over the trailing window that ends with
it (e.g. the last hour): with 40,320 minutes in 28 days, decoding one
:class:`~xebench.stats.scores.ScoreStats` per minute (~1 ms each) would take a
minute per SLO. Here the bucket rows (:data:`~xebench.stats.codec.SCORE_FIELDS`
columns, plus ``n_predictions`` / ``n_labelled``) are summed per minute, the
sums rolled over the window with cumulative sums, and the point values
finished column-wise -- the same formulas as :meth:`ScoreStats.result`
(log loss = the NLL moments' mean, Brier likewise, ECE over 15 uniform bins of
the fine calibration bins, skill = 1 - log loss / entropy of the label
weights); ``tests/stats/test_rolling.py`` checks every value against
``ScoreStats.result`` of the same window.

Example:
    >>> import pyarrow as pa
    >>> from xebench.stats.codec import encode, score_arrays
    >>> from xebench.stats.scores import ScoreStats
    >>> a = ScoreStats().update([1, 0], [0.9, 0.2]); b = ScoreStats().update([1], [0.4])
    >>> rows = pa.table({**score_arrays(encode([a, b]), 2, [2, 2]),
    ...                  "n_predictions": [2, 1], "n_labelled": [2, 1]})
    >>> points = rolling_points(rows, np.array([0, 2]), n_minutes=3, window=2, n_classes=2)
    >>> points["n"].tolist()     # windows ending at minutes 1 and 2: {0, 1}, {1, 2}
    [2, 1]
    >>> round(float(points["log_loss"][0]), 6) == round(a.result()["log_loss"], 6)
    True
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

from ..metrics.blocks import entropy_nats
from .score_calibration import ECE_BINS, FINE_BINS

__all__ = ["rolling_points", "rolling_sum"]


def rolling_sum(per_minute: NDArray[Any], window: int) -> NDArray[Any]:
    """Sums over each run of ``window`` consecutive rows (axis 0): row ``j`` of the
    answer sums rows ``j .. j + window - 1``, so it has ``len - window + 1`` rows.

    Example:
        >>> rolling_sum(np.array([1, 2, 3, 4]), 2).tolist()
        [3, 5, 7]
    """
    total = np.cumsum(per_minute, axis=0)
    zero = np.zeros((1, *per_minute.shape[1:]), dtype=total.dtype)
    total = np.concatenate([zero, total])
    return total[window:] - total[:-window]


def _column(table: pa.Table, name: str) -> NDArray[np.float64]:
    return table[name].to_numpy().astype(np.float64)


def _list_sums(
    values: pa.ChunkedArray | pa.Array, rows_minute: NDArray[np.intp], n_minutes: int, width: int
) -> NDArray[np.float64]:
    """Per-minute element-wise sums of a dense list column (label weights)."""
    values = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    parents = pc.list_parent_indices(values).to_numpy()
    starts = values.offsets.to_numpy()[:-1] - values.offsets.to_numpy()[0]
    position = np.arange(parents.shape[0]) - starts[parents]
    flat = pc.list_flatten(values).to_numpy(zero_copy_only=False).astype(np.float64)
    keep = position < width
    return np.bincount(
        rows_minute[parents[keep]].astype(np.int64) * width + position[keep],
        weights=flat[keep],
        minlength=n_minutes * width,
    ).reshape(n_minutes, width)


def _calibration_sums(
    table: pa.Table, rows_minute: NDArray[np.intp], n_minutes: int
) -> tuple[NDArray[np.float64], ...]:
    """Per-minute count, score and hit sums over :data:`ECE_BINS` coarse bins."""
    index = table["cal_index"].combine_chunks()
    parents = pc.list_parent_indices(index).to_numpy()
    coarse = pc.list_flatten(index).to_numpy(zero_copy_only=False).astype(np.int64) // (
        FINE_BINS // ECE_BINS
    )
    slot = rows_minute[parents].astype(np.int64) * ECE_BINS + coarse
    out = []
    for name in ("cal_count", "cal_score_sum", "cal_hit_sum"):
        flat = pc.list_flatten(table[name].combine_chunks()).to_numpy(zero_copy_only=False)
        sums = np.bincount(slot, weights=flat, minlength=n_minutes * ECE_BINS)
        out.append(sums.reshape(n_minutes, ECE_BINS))
    return tuple(out)


def rolling_points(
    table: pa.Table,
    minute: NDArray[np.intp],
    *,
    n_minutes: int,
    window: int,
    n_classes: int,
) -> dict[str, NDArray[Any]]:
    """Point values over every trailing ``window`` of minutes.

    Row ``i`` of ``table`` (bucket score rows of one class list) belongs to
    minute ``minute[i]`` in ``[0, n_minutes)``. Entry ``j`` of each answer
    array is the window of minutes ``j .. j + window - 1`` (it ends with minute
    ``j + window - 1``). Keys: ``n_predictions``, ``n_labelled``, ``n`` (scored
    events), ``coverage``, ``log_loss`` (nats), ``brier``, ``ece``, ``skill``;
    values are NaN where they need events the window does not have.

    Example:
        >>> import pyarrow as pa
        >>> from xebench.stats.codec import encode, score_arrays
        >>> from xebench.stats.scores import ScoreStats
        >>> s = ScoreStats().update([1, 0, 1], [0.8, 0.3, 0.6])
        >>> rows = pa.table({**score_arrays(encode([s]), 1, [2]),
        ...                  "n_predictions": [4], "n_labelled": [3]})
        >>> p = rolling_points(rows, np.array([1]), n_minutes=2, window=1, n_classes=2)
        >>> p["n"].tolist(), p["coverage"].tolist()
        ([0, 3], [nan, 0.75])
    """
    minute = np.asarray(minute, dtype=np.intp)
    if np.any((minute < 0) | (minute >= n_minutes)):
        raise ValueError("every row's minute must be in [0, n_minutes)")
    window = max(1, min(int(window), n_minutes))

    def per_minute(values: NDArray[np.float64]) -> NDArray[np.float64]:
        return np.bincount(minute, weights=values, minlength=n_minutes)

    counts = {
        name: rolling_sum(per_minute(_column(table, name)).round().astype(np.int64), window)
        for name in ("n_predictions", "n_labelled", "n")
    }
    sums = {}
    for name in ("nll", "brier"):
        weight = _column(table, f"{name}_weight")
        sums[f"{name}_w"] = rolling_sum(per_minute(weight), window)
        sums[f"{name}_wx"] = rolling_sum(
            per_minute(weight * _column(table, f"{name}_mean")), window
        )
    labels = rolling_sum(_list_sums(table["label_weight"], minute, n_minutes, n_classes), window)
    count, score, hit = (
        rolling_sum(sums_, window) for sums_ in _calibration_sums(table, minute, n_minutes)
    )
    scored = counts["n"] > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        log_loss = np.where(scored, sums["nll_wx"] / sums["nll_w"], np.nan)
        brier = np.where(scored, sums["brier_wx"] / sums["brier_w"], np.nan)
        total = count.sum(axis=1)
        ece = np.where(scored & (total > 0), np.abs(hit - score).sum(axis=1) / total, np.nan)
        label_total = labels.sum(axis=1, keepdims=True)
        prior = entropy_nats(np.clip(labels, 0.0, None) / np.where(label_total > 0, label_total, 1))
        skill = np.where(scored & (prior > 0), 1.0 - log_loss / prior, np.nan)
        coverage = np.where(
            counts["n_predictions"] > 0,
            counts["n_labelled"] / np.maximum(counts["n_predictions"], 1),
            np.nan,
        )
    return {
        **counts,
        "coverage": coverage,
        "log_loss": log_loss,
        "brier": brier,
        "ece": ece,
        "skill": skill,
    }
