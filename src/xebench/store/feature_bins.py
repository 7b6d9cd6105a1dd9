"""The monitoring bins of a feature, fixed once per (tenant, model, feature)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

from .._validation import is_missing
from ..stats.binning import Bins, quantile_edges
from .bucket_schema import MonitorConfig

__all__ = ["FeatureBins"]


@dataclass(frozen=True)
class FeatureBins:
    """The monitoring bins of one feature of one model, fixed once: a named
    :class:`~xebench.stats.binning.Bins`, the bins of histograms and drift.

    Numeric: ``edges`` e_0 < ... < e_m give the bins (-inf, e_0], (e_0, e_1],
    ..., (e_m, +inf), then one bin for missing or non-numeric values.
    Categorical: one bin per category, then ``OTHER``, then missing. Missing
    is :func:`~xebench._validation.is_missing` (None, NaN and ""). These are
    the columns of the ``feature_bins`` table, which stores no other form.

    Example:
        >>> bins = FeatureBins("amount", "numeric", edges=(1.0, 10.0))
        >>> bins.n_bins, bins.index(np.array([0.5, 5.0, 50.0, np.nan])).tolist()
        (4, [0, 1, 2, 3])
        >>> FeatureBins("plan", "categorical", categories=("pro",)).index(["pro", "", "x"]).tolist()
        [0, 2, 1]
    """

    feature: str
    kind: str
    edges: tuple[float, ...] = ()
    categories: tuple[str, ...] = ()

    @cached_property
    def bins(self) -> Bins:
        """The bins themselves.

        Example:
            >>> FeatureBins("amount", "numeric", edges=(1.0,)).bins.labels()
            ['<= 1', '> 1', 'NaN']
        """
        return Bins(self.kind, edges=self.edges, categories=self.categories)

    @property
    def n_bins(self) -> int:
        """Number of bins, the missing bin included."""
        return self.bins.n_bins

    def index(self, values: NDArray[Any] | Sequence[Any]) -> NDArray[np.intp]:
        """Bin of each value (numeric: numbers, NaN for missing; else any values)."""
        return self.bins.index(values)

    def index_texts(self, texts: pa.Array | pa.ChunkedArray) -> NDArray[np.intp]:
        """:meth:`index` of Arrow text values (null for missing), computed once per
        distinct value: the same bins as :meth:`index` of their Python values.

        Example:
            >>> plan = FeatureBins("plan", "categorical", categories=("pro", "1.5"))
            >>> plan.index_texts(pa.array(["pro", None, "x", "1.5", "", "pro"])).tolist()
            [0, 3, 2, 1, 3, 0]
        """
        if isinstance(texts, pa.ChunkedArray):
            texts = texts.combine_chunks()
        encoded = pc.dictionary_encode(texts)
        distinct = encoded.dictionary.to_pylist()
        # The distinct values (Arrow compares text by bytes: Python's str equality),
        # then None for the nulls, binned one by one as before.
        mapped = self.index(np.array([*distinct, None], dtype=object))
        codes = encoded.indices.fill_null(len(distinct)).to_numpy(zero_copy_only=False)
        return mapped[codes]

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
        present = sum(not is_missing(t) for t in texts)  # numbers have a text form too
        if present and finite.shape[0] >= 0.95 * present:
            edges = quantile_edges(finite, config.numeric_bins, ends=False)
            return cls(feature, "numeric", edges=tuple(float(e) for e in edges))
        counts: dict[str, int] = {}
        for text in texts:
            if not is_missing(text):
                counts[text] = counts.get(text, 0) + 1  # type: ignore[index]
        top = sorted(counts, key=lambda t: (-counts[t], t))[: config.top_k]
        return cls(feature, "categorical", categories=tuple(top))
