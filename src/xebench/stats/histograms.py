"""Mergeable histograms for drift: numeric with fixed edges, categorical top-K.

Drift compares the distribution of a feature, a model score or the labels in
a current window with a reference. Both sides must be binned the same way,
so the bins are fixed once from the reference sample and every later
histogram -- a file chunk, a one-minute bucket, a Spark partition -- counts
into them; histograms then merge by adding counts. Values outside the
reference range, NaN and missing values get bins of their own, so a shift
into "never seen before" shows up as drift instead of being dropped.

The bins themselves are :class:`~xebench.stats.binning.Bins`, the one binning
type shared with the offline drift engine and the store's monitoring buckets,
with its missing-value rule (None, NaN and "" are missing) and its overflow
category :data:`~xebench.stats.binning.OTHER`.

Divergences between two histograms go through the kernel's
:func:`~xebench.kl_divergence`, :func:`~xebench.js_divergence` and
:func:`~xebench.psi`, with their smoothing.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .._validation import check_n_bins, check_sample_weight
from ..errors import InvalidInputError
from ..metrics import js_divergence, kl_divergence, psi
from .binning import Bins, as_numbers

__all__ = ["CategoricalHistogram", "NumericHistogram", "histogram_divergence"]

HISTOGRAM_VERSION = 1


class NumericHistogram:
    """Counts of a numeric variable in fixed bins, plus underflow, overflow and NaN.

    Bins are ``[e0, e1], (e1, e2], ..., (e_{n-1}, e_n]`` (a value on an inner
    edge falls in the lower bin, as for calibration bins); values below
    ``e0`` are underflow, above ``e_n`` overflow.

    Example:
        >>> h = NumericHistogram([0.0, 1.0, 2.0]).update([0.5, 1.0, 1.5, 3.0, float("nan")])
        >>> h.counts.tolist(), h.underflow, h.overflow, h.nan
        ([2.0, 1.0], 0.0, 1.0, 1.0)
        >>> h.distribution().tolist()   # underflow, bins..., overflow, NaN
        [0.0, 2.0, 1.0, 1.0, 1.0]
    """

    def __init__(self, edges: ArrayLike) -> None:
        edges_array = np.asarray(edges, dtype=np.float64)
        if edges_array.ndim != 1 or edges_array.shape[0] < 2:
            raise InvalidInputError("edges", "must be a 1-D list of at least 2 edges", value=edges)
        self.bins = Bins("numeric", edges=tuple(edges_array.tolist()), include_lowest=True)
        self.edges = edges_array
        self.counts = np.zeros(edges_array.shape[0] - 1)
        self.underflow = 0.0
        self.overflow = 0.0
        self.nan = 0.0

    @classmethod
    def from_reference(
        cls, values: ArrayLike, *, n_bins: int = 10, strategy: str = "quantile"
    ) -> NumericHistogram:
        """Bins chosen from a reference sample, filled with that sample.

        ``strategy="quantile"`` puts about the same number of reference values
        in each bin (repeated quantiles are merged, so a discrete variable may
        get fewer bins); ``"uniform"`` splits [min, max] evenly (the bins of
        :meth:`Bins.from_reference <xebench.stats.binning.Bins.from_reference>`).
        NaN values are ignored for the edges and counted as NaN.

        Example:
            >>> h = NumericHistogram.from_reference(range(100), n_bins=4)
            >>> h.edges.tolist(), h.counts.tolist()
            ([0.0, 24.75, 49.5, 74.25, 99.0], [25.0, 25.0, 25.0, 25.0])
        """
        array = as_numbers(values)
        bins = Bins.from_reference(array, n_bins=n_bins, strategy=strategy)
        return cls(bins.edges).update(array)

    def empty_copy(self) -> NumericHistogram:
        """A histogram with the same bins and no counts.

        Example:
            >>> NumericHistogram([0, 1]).update([0.5]).empty_copy().total
            0.0
        """
        return NumericHistogram(self.edges)

    def update(self, values: ArrayLike, sample_weight: ArrayLike | None = None) -> NumericHistogram:
        """Count more values (missing ones: None, NaN, "" count as NaN); returns ``self``."""
        array = as_numbers(values)
        weight = _check_weight(sample_weight, array.shape[0])
        counts = self.bins.count(array, weight)
        self.underflow += float(counts[0])
        self.counts += counts[1:-2]
        self.overflow += float(counts[-2])
        self.nan += float(counts[-1])
        return self

    def merge(self, other: NumericHistogram) -> NumericHistogram:
        """A new histogram holding the counts of both (same edges required).

        Example:
            >>> a, b = NumericHistogram([0, 1]).update([0.5]), NumericHistogram([0, 1]).update([2])
            >>> merged = a.merge(b)
            >>> merged.counts.tolist(), merged.overflow
            ([1.0], 1.0)
        """
        if not isinstance(other, NumericHistogram) or not np.array_equal(self.edges, other.edges):
            raise InvalidInputError(
                "other",
                "can only merge numeric histograms with the same edges",
                value=getattr(other, "edges", type(other)),
            )
        merged = self.empty_copy()
        merged.counts = self.counts + other.counts
        merged.underflow = self.underflow + other.underflow
        merged.overflow = self.overflow + other.overflow
        merged.nan = self.nan + other.nan
        return merged

    def distribution(self) -> NDArray[np.float64]:
        """Counts in a fixed order: underflow, each bin, overflow, NaN."""
        return np.concatenate([[self.underflow], self.counts, [self.overflow, self.nan]])

    def bin_labels(self) -> list[str]:
        """Names of the entries of :meth:`distribution`.

        Example:
            >>> NumericHistogram([0, 1, 2]).bin_labels()
            ['< 0', '[0, 1]', '(1, 2]', '> 2', 'NaN']
        """
        return self.bins.labels()

    @property
    def total(self) -> float:
        """Total count (weight), NaN included."""
        return float(self.distribution().sum())

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe, versioned plain data.

        Example:
            >>> h = NumericHistogram([0, 1]).update([0.5, 7])
            >>> NumericHistogram.from_dict(h.to_dict()).to_dict() == h.to_dict()
            True
        """
        return {
            "kind": "numeric_histogram",
            "version": HISTOGRAM_VERSION,
            "edges": self.edges.tolist(),
            "counts": self.counts.tolist(),
            "underflow": self.underflow,
            "overflow": self.overflow,
            "nan": self.nan,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NumericHistogram:
        """Rebuild a histogram written by :meth:`to_dict`."""
        _check_kind(data, "numeric_histogram")
        histogram = cls(data["edges"])
        histogram.counts = np.asarray(data["counts"], dtype=np.float64)
        histogram.underflow = float(data["underflow"])
        histogram.overflow = float(data["overflow"])
        histogram.nan = float(data["nan"])
        return histogram


class CategoricalHistogram:
    """Counts of a categorical variable: fixed categories, plus other and missing.

    Example:
        >>> h = CategoricalHistogram(["eu", "us"]).update(["eu", "us", "eu", "apac", None, ""])
        >>> h.counts.tolist(), h.other, h.missing
        ([2.0, 1.0], 1.0, 2.0)
        >>> h.bin_labels()
        ['eu', 'us', '__other__', '(missing)']
    """

    def __init__(self, categories: Sequence[Hashable]) -> None:
        values = [_plain(c) for c in categories]
        if len(values) == 0 or len(set(values)) != len(values):
            raise InvalidInputError(
                "categories", "must be a non-empty list of distinct values", value=values
            )
        self.bins = Bins("categorical", categories=tuple(values))
        self.categories: list[Any] = values
        self.counts = np.zeros(len(values))
        self.other = 0.0
        self.missing = 0.0

    @classmethod
    def from_reference(
        cls, values: Sequence[Any] | ArrayLike, *, top_k: int = 20
    ) -> CategoricalHistogram:
        """The ``top_k`` most frequent reference values as categories, filled
        with the reference (ties broken by the value's text, for determinism).

        Example:
            >>> h = CategoricalHistogram.from_reference(["a", "b", "b", "c", "c", "c"], top_k=2)
            >>> h.categories, h.counts.tolist(), h.other
            (['c', 'b'], [3.0, 2.0], 1.0)
        """
        top_k = check_n_bins(top_k)
        items = np.asarray(values, dtype=object).reshape(-1)
        return cls(list(Bins.top_k(items, top_k).categories)).update(items)

    def empty_copy(self) -> CategoricalHistogram:
        """A histogram with the same categories and no counts."""
        return CategoricalHistogram(self.categories)

    def update(
        self, values: Sequence[Any] | ArrayLike, sample_weight: ArrayLike | None = None
    ) -> CategoricalHistogram:
        """Count more values (None, NaN and "" are missing); returns ``self``."""
        items = np.asarray(values, dtype=object).reshape(-1)
        weight = _check_weight(sample_weight, items.shape[0])
        totals = np.bincount(self.bins.index(items), weights=weight, minlength=self.bins.n_bins)
        self.counts += totals[:-2]
        self.other += float(totals[-2])
        self.missing += float(totals[-1])
        return self

    def merge(self, other: CategoricalHistogram) -> CategoricalHistogram:
        """A new histogram holding the counts of both (same categories required)."""
        if not isinstance(other, CategoricalHistogram) or self.categories != other.categories:
            raise InvalidInputError(
                "other",
                "can only merge categorical histograms with the same categories",
                value=getattr(other, "categories", type(other)),
            )
        merged = self.empty_copy()
        merged.counts = self.counts + other.counts
        merged.other = self.other + other.other
        merged.missing = self.missing + other.missing
        return merged

    def distribution(self) -> NDArray[np.float64]:
        """Counts in a fixed order: each category, other, missing."""
        return np.concatenate([self.counts, [self.other, self.missing]])

    def bin_labels(self) -> list[str]:
        """Names of the entries of :meth:`distribution`."""
        return self.bins.labels()

    @property
    def total(self) -> float:
        """Total count (weight), missing included."""
        return float(self.distribution().sum())

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe, versioned plain data.

        Example:
            >>> h = CategoricalHistogram(["x"]).update(["x", "y"])
            >>> CategoricalHistogram.from_dict(h.to_dict()).to_dict() == h.to_dict()
            True
        """
        return {
            "kind": "categorical_histogram",
            "version": HISTOGRAM_VERSION,
            "categories": list(self.categories),
            "counts": self.counts.tolist(),
            "other": self.other,
            "missing": self.missing,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CategoricalHistogram:
        """Rebuild a histogram written by :meth:`to_dict`."""
        _check_kind(data, "categorical_histogram")
        histogram = cls(data["categories"])
        histogram.counts = np.asarray(data["counts"], dtype=np.float64)
        histogram.other = float(data["other"])
        histogram.missing = float(data["missing"])
        return histogram


Histogram = NumericHistogram | CategoricalHistogram


def histogram_divergence(
    reference: Histogram,
    current: Histogram,
    *,
    smoothing: float = 1e-4,
    base: str | int = "e",
) -> dict[str, float]:
    """KL(reference || current) (the source documents' direction: the baseline P against
    the current Q), its reverse KL(current || reference), JS and PSI between two
    histograms of the same bins.

    Computed by the kernel (:func:`~xebench.kl_divergence`,
    :func:`~xebench.js_divergence`, :func:`~xebench.psi`) over the full
    distributions, out-of-range, NaN, other and missing bins included;
    ``smoothing`` applies to KL and PSI. ``base`` applies to KL and JS (PSI is
    conventionally in nats).

    Example:
        >>> ref = NumericHistogram([0, 1, 2]).update([0.5, 0.5, 1.5, 1.5])
        >>> cur = ref.empty_copy().update([0.5, 1.5, 1.5, 1.5])
        >>> {k: round(v, 4) for k, v in histogram_divergence(ref, cur).items()}
        {'kl': 0.1437, 'kl_reverse': 0.1307, 'js': 0.0338, 'psi': 0.2744, 'n_reference': 4.0, \
'n_current': 4.0}
    """
    same_kind = type(reference) is type(current)
    same_bins = same_kind and (
        np.array_equal(reference.edges, current.edges)  # type: ignore[union-attr]
        if isinstance(reference, NumericHistogram)
        else reference.categories == current.categories  # type: ignore[union-attr]
    )
    if not same_bins:
        raise InvalidInputError(
            "current", "must have the same bins as the reference (use reference.empty_copy())"
        )
    if reference.total <= 0 or current.total <= 0:
        raise InvalidInputError("current", "both histograms need at least one value")
    expected, actual = reference.distribution(), current.distribution()
    return {
        "kl": float(kl_divergence(expected, actual, smoothing=smoothing, base=base)),
        "kl_reverse": float(kl_divergence(actual, expected, smoothing=smoothing, base=base)),
        "js": float(js_divergence(actual, expected, base=base)),
        "psi": float(psi(expected, actual, smoothing=smoothing)),
        "n_reference": reference.total,
        "n_current": current.total,
    }


# --- helpers -------------------------------------------------------------------


def _check_weight(sample_weight: ArrayLike | None, n_rows: int) -> NDArray[np.float64] | None:
    return None if sample_weight is None else check_sample_weight(sample_weight, n_rows)


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _check_kind(data: dict[str, Any], kind: str) -> None:
    if data.get("kind") != kind or data.get("version") != HISTOGRAM_VERSION:
        raise InvalidInputError(
            "data",
            f"is not {kind} version {HISTOGRAM_VERSION} data",
            value={"kind": data.get("kind"), "version": data.get("version")},
        )
