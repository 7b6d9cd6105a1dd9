"""ScoreStats as plain data: a versioned JSON dict and a flat DuckDB/Arrow row.

:class:`ScoreForms` (mixed into :class:`~xebench.stats.scores.ScoreStats`)
writes and reads both forms; ``from_dict(s.to_dict())`` and
``from_row(s.to_row())`` give back equal statistics. The grouped columnar
form (many rows merged at once) is :mod:`xebench.stats.codec`.
"""

from __future__ import annotations

from typing import Any, Self

import numpy as np
from numpy.typing import NDArray

from ..errors import InvalidInputError
from .moments import Moments
from .score_calibration import FINE_BINS

__all__ = ["STATS_VERSION", "ScoreForms"]

#: Version of the serialized form (to_dict / to_row).
STATS_VERSION = 1


class ScoreForms:
    """The plain-data forms of :class:`~xebench.stats.scores.ScoreStats` (mixed into it).

    Example:
        >>> from xebench.stats.scores import ScoreStats
        >>> s = ScoreStats().update([1, 0], [0.9, 0.2])
        >>> s.to_dict()["kind"], s.to_row()["nll_weight"]
        ('score_stats', 2.0)
    """

    classes: tuple[Any, ...] | None
    class_weight: tuple[float, ...] | None
    eps: float
    replicates: int
    seed: int
    n: int
    weight_sq: float
    nll: Moments
    brier: Moments
    hits: float
    clipped: int
    label_weight: NDArray[np.float64]
    cal_count: NDArray[np.float64]
    cal_score: NDArray[np.float64]
    cal_hit: NDArray[np.float64]
    boot: NDArray[np.float64]

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe, versioned plain data; calibration bins stored sparsely.

        Class-weighted statistics also hold ``class_weight`` (one weight per
        class, in class order); others do not have the key, as before.

        Example:
            >>> from xebench.stats.scores import ScoreStats
            >>> d = ScoreStats().update([1, 0], [0.9, 0.2]).to_dict()
            >>> d["version"], d["n"], d["calibration"]["index"]
            (1, 2, [59, 269])
        """
        filled = np.flatnonzero(self.cal_count)
        data = {
            "kind": "score_stats",
            "version": STATS_VERSION,
            "classes": None if self.classes is None else list(self.classes),
            "eps": self.eps,
            "n": self.n,
            "weight_sq": self.weight_sq,
            "nll": [self.nll.weight, self.nll.mean, self.nll.m2],
            "brier": [self.brier.weight, self.brier.mean, self.brier.m2],
            "hits": self.hits,
            "clipped": self.clipped,
            "label_weight": self.label_weight.tolist(),
            "calibration": {
                "bins": FINE_BINS,
                "index": filled.tolist(),
                "count": self.cal_count[filled].tolist(),
                "score_sum": self.cal_score[filled].tolist(),
                "hit_sum": self.cal_hit[filled].tolist(),
            },
            "bootstrap": {
                "replicates": self.replicates,
                "seed": self.seed,
                "sums": self.boot.tolist(),
            },
        }
        if self.class_weight is not None:
            data["class_weight"] = list(self.class_weight)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """Rebuild statistics written by :meth:`to_dict`.

        Example:
            >>> from xebench.stats.scores import ScoreStats
            >>> s = ScoreStats(["a", "b", "c"]).update(["b"], [[0.2, 0.5, 0.3]])
            >>> ScoreStats.from_dict(s.to_dict()).to_dict() == s.to_dict()
            True
        """
        if data.get("kind") != "score_stats" or data.get("version") != STATS_VERSION:
            raise InvalidInputError(
                "data",
                f"is not ScoreStats version {STATS_VERSION} data",
                value={"kind": data.get("kind"), "version": data.get("version")},
            )
        calibration = data["calibration"]
        if calibration["bins"] != FINE_BINS:
            raise InvalidInputError(
                "data", f"calibration bins must be {FINE_BINS}", value=calibration["bins"]
            )
        boot = data["bootstrap"]
        weights = data.get("class_weight")
        labels = [0, 1] if data["classes"] is None else list(data["classes"])
        stats = cls(
            data["classes"],
            eps=data["eps"],
            bootstrap=boot["replicates"],
            seed=boot["seed"],
            class_weight=None if weights is None else dict(zip(labels, weights, strict=True)),
        )
        stats.n = int(data["n"])
        stats.weight_sq = float(data["weight_sq"])
        stats.nll = Moments(*map(float, data["nll"]))
        stats.brier = Moments(*map(float, data["brier"]))
        stats.hits = float(data["hits"])
        stats.clipped = int(data["clipped"])
        stats.label_weight = np.asarray(data["label_weight"], dtype=np.float64)
        index = np.asarray(calibration["index"], dtype=np.intp)
        stats.cal_count[index] = calibration["count"]
        stats.cal_score[index] = calibration["score_sum"]
        stats.cal_hit[index] = calibration["hit_sum"]
        if stats.replicates:
            stats.boot = np.asarray(boot["sums"], dtype=np.float64).reshape(stats.replicates, 3)
        return stats

    def to_row(self) -> dict[str, Any]:
        """A flat row -- scalars and lists of numbers -- for a DuckDB/Arrow table.

        Example:
            >>> from xebench.stats.scores import ScoreStats
            >>> row = ScoreStats().update([1, 0], [0.9, 0.2]).to_row()
            >>> row["n"], row["nll_mean"] > 0, row["cal_index"]
            (2, True, [59, 269])
        """
        data = self.to_dict()
        calibration, boot = data["calibration"], data["bootstrap"]
        return {
            "version": data["version"],
            "classes": data["classes"],
            "eps": data["eps"],
            "n": data["n"],
            "weight_sq": data["weight_sq"],
            "nll_weight": self.nll.weight,
            "nll_mean": self.nll.mean,
            "nll_m2": self.nll.m2,
            "brier_weight": self.brier.weight,
            "brier_mean": self.brier.mean,
            "brier_m2": self.brier.m2,
            "hits": data["hits"],
            "clipped": data["clipped"],
            "label_weight": data["label_weight"],
            "cal_index": calibration["index"],
            "cal_count": calibration["count"],
            "cal_score_sum": calibration["score_sum"],
            "cal_hit_sum": calibration["hit_sum"],
            "boot_replicates": boot["replicates"],
            "boot_seed": boot["seed"],
            "boot_sums": [value for row in boot["sums"] for value in row],
        }

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Self:
        """Rebuild statistics written by :meth:`to_row`.

        Example:
            >>> from xebench.stats.scores import ScoreStats
            >>> s = ScoreStats().update([1, 0], [0.9, 0.2])
            >>> ScoreStats.from_row(s.to_row()).to_dict() == s.to_dict()
            True
        """
        replicates = int(row["boot_replicates"])
        sums = list(row["boot_sums"])
        return cls.from_dict(
            {
                "kind": "score_stats",
                "version": row["version"],
                "classes": row["classes"],
                "eps": row["eps"],
                "n": row["n"],
                "weight_sq": row["weight_sq"],
                "nll": [row["nll_weight"], row["nll_mean"], row["nll_m2"]],
                "brier": [row["brier_weight"], row["brier_mean"], row["brier_m2"]],
                "hits": row["hits"],
                "clipped": row["clipped"],
                "label_weight": row["label_weight"],
                "calibration": {
                    "bins": FINE_BINS,
                    "index": row["cal_index"],
                    "count": row["cal_count"],
                    "score_sum": row["cal_score_sum"],
                    "hit_sum": row["cal_hit_sum"],
                },
                "bootstrap": {
                    "replicates": replicates,
                    "seed": row["boot_seed"],
                    "sums": [sums[i : i + 3] for i in range(0, len(sums), 3)],
                },
            }
        )
