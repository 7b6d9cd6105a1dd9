"""The monitoring bins of a feature, fixed once per (tenant, model, feature)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .bucket_schema import MonitorConfig

__all__ = ["FeatureBins"]


@dataclass(frozen=True)
class FeatureBins:
    """The monitoring bins of one feature of one model, fixed once.

    Numeric: ``edges`` e_0 < ... < e_m give the bins (-inf, e_0], (e_0, e_1],
    ..., (e_m, +inf), then one bin for missing or non-numeric values.
    Categorical: one bin per category, then "other", then missing.

    Example:
        >>> bins = FeatureBins("amount", "numeric", edges=(1.0, 10.0))
        >>> bins.n_bins, bins.index(np.array([0.5, 5.0, 50.0, np.nan])).tolist()
        (4, [0, 1, 2, 3])
    """

    feature: str
    kind: str
    edges: tuple[float, ...] = ()
    categories: tuple[str, ...] = ()

    @property
    def n_bins(self) -> int:
        """Number of bins, the missing bin included."""
        if self.kind == "numeric":
            return len(self.edges) + 2
        return len(self.categories) + 2

    def index(self, values: NDArray[Any]) -> NDArray[np.intp]:
        """Bin of each value (numeric: float array with NaN for missing; else object array)."""
        if self.kind == "numeric":
            numbers = np.asarray(values, dtype=np.float64)
            index = np.searchsorted(np.asarray(self.edges), numbers, side="left")
            index[~np.isfinite(numbers)] = self.n_bins - 1
            return index.astype(np.intp)
        lookup = {c: i for i, c in enumerate(self.categories)}
        other, missing = len(self.categories), len(self.categories) + 1
        return np.fromiter(
            (missing if v is None else lookup.get(v, other) for v in values),
            dtype=np.intp,
            count=len(values),
        )

    @classmethod
    def learn(
        cls,
        feature: str,
        numbers: NDArray[np.float64],
        texts: Sequence[str | None],
        config: MonitorConfig,
    ) -> FeatureBins:
        """Bins from the first values seen: numeric when at least 95% of the present
        values are numbers, else the ``top_k`` most frequent texts.

        Example:
            >>> values = np.arange(100.0)
            >>> texts = [str(v) for v in values]
            >>> FeatureBins.learn("n", values, texts, MonitorConfig(numeric_bins=4))
            FeatureBins(feature='n', kind='numeric', edges=(24.75, 49.5, 74.25), categories=())
        """
        finite = numbers[np.isfinite(numbers)]
        present = sum(t is not None for t in texts)  # numbers have a text form too
        if present and finite.shape[0] >= 0.95 * present:
            inner = np.linspace(0.0, 1.0, config.numeric_bins + 1)[1:-1]
            edges = np.unique(np.quantile(finite, inner)) if finite.size else np.array([])
            return cls(feature, "numeric", edges=tuple(float(e) for e in edges))
        counts: dict[str, int] = {}
        for text in texts:
            if text is not None:
                counts[text] = counts.get(text, 0) + 1
        top = sorted(counts, key=lambda t: (-counts[t], t))[: config.top_k]
        return cls(feature, "categorical", categories=tuple(top))
