"""One way to bin a variable: bins fixed once, from a reference, then counted into.

Drift histograms (:mod:`xebench.stats.histograms`), the offline drift engine
and the store's monitoring buckets all bin a feature the same way, with
:class:`Bins`:

- **numeric**: edges ``e_0 < ... < e_m`` cut the line into ``m + 2`` bins:
  below ``e_0``, ``(e_0, e_1]``, ..., ``(e_{m-1}, e_m]``, above ``e_m``. A
  value on an inner edge falls in the lower bin (as for calibration bins).
  With ``include_lowest`` the first inner bin is closed on the left
  (``[e_0, e_1]``, as ``pandas.cut(include_lowest=True)``), so the minimum of
  a reference whose range the edges span is inside the range. Infinities
  are values: below or above every edge.
- **categorical**: one bin per category, then :data:`OTHER` for every value
  that is not one of them.

Both end with one bin for missing values, by the package's one rule
(:func:`is_missing`, re-exported here: None, NaN and the empty string).
Edges are chosen from a reference by exact quantiles (:func:`quantile_edges`,
equal to ``np.quantile`` bit for bit), categories as its most frequent values.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .._validation import check_choice, check_n_bins, check_strategy, is_missing
from ..errors import InvalidInputError
from .quantiles import quantiles

__all__ = ["MISSING", "OTHER", "Bins", "as_numbers", "is_missing", "quantile_edges"]

#: The name of the overflow category and cohort, wherever values beyond a cap or
#: outside the reference's categories are pooled: histogram bins, monitoring
#: cohorts (stored in the bucket tables), benchmark cohorts. Dunder-quoted so that
#: it does not collide with a real value such as "other".
OTHER = "__other__"
#: The label of the missing-value bin of a categorical variable.
MISSING = "(missing)"
BINS_VERSION = 1
KINDS = ("numeric", "categorical")

#: Values per block when counting numeric bins (a block stays in the L2 cache).
_BLOCK = 1 << 16
#: Up to this many edges, bins are counted by comparisons; above, by binary search.
_COMPARE_MAX_EDGES = 24


def as_numbers(values: ArrayLike, argument: str = "values") -> NDArray[np.float64]:
    """Values as a float64 array, missing values (:func:`is_missing`) as NaN.

    Raises:
        InvalidInputError: a value that is neither a number nor missing, with its row.

    Example:
        >>> as_numbers([1, None, "", 2.5]).tolist()
        [1.0, nan, nan, 2.5]
    """
    array = np.asarray(values)
    if array.dtype.kind in "biuf":
        return array.astype(np.float64, copy=False).reshape(-1)
    flat = array.astype(object).reshape(-1).tolist()
    out = np.empty(len(flat))
    for row, item in enumerate(flat):
        try:
            out[row] = np.nan if is_missing(item) else float(item)
        except (TypeError, ValueError):
            raise InvalidInputError(argument, "must be numbers", index=row, value=item) from None
    return out


def quantile_edges(
    finite: NDArray[np.float64], n_bins: int, *, ends: bool = True
) -> NDArray[np.float64]:
    """Distinct quantiles of ``finite`` values at ``0, 1/n_bins, ..., 1``.

    ``ends=False`` leaves out the 0 and 1 quantiles (the minimum and the
    maximum): the cut points of ``n_bins`` bins with open tails. Repeated
    quantiles are merged, so a discrete variable may get fewer bins.

    Example:
        >>> quantile_edges(np.arange(100.0), 4).tolist()
        [0.0, 24.75, 49.5, 74.25, 99.0]
        >>> quantile_edges(np.arange(100.0), 4, ends=False).tolist()
        [24.75, 49.5, 74.25]
    """
    q = np.linspace(0.0, 1.0, n_bins + 1)
    if not ends:
        q = q[1:-1]
    if finite.shape[0] == 0 or q.shape[0] == 0:
        return np.zeros(0)
    return np.unique(quantiles(finite, q, float(finite.min()), float(finite.max())))


@dataclass(frozen=True)
class Bins:
    """The fixed bins of one variable (see the module docstring for the rules).

    Attributes:
        kind: ``"numeric"`` or ``"categorical"``.
        edges: numeric: the edges, strictly increasing and finite.
        categories: categorical: the distinct categories.
        include_lowest: numeric: the first inner bin is ``[e_0, e_1]`` (with two edges or more).

    Example:
        >>> bins = Bins("numeric", edges=(1.0, 10.0))
        >>> bins.n_bins, bins.index([0.5, 1.0, 5.0, 50.0, None]).tolist()
        (4, [0, 0, 1, 2, 3])
        >>> Bins("numeric", edges=(1.0, 10.0), include_lowest=True).index([1.0]).tolist()
        [1]
        >>> plan = Bins("categorical", categories=("free", "pro"))
        >>> plan.index(["pro", "team", "", None]).tolist(), plan.labels()
        ([1, 2, 3, 3], ['free', 'pro', '__other__', '(missing)'])
    """

    kind: str
    edges: tuple[float, ...] = ()
    categories: tuple[Any, ...] = ()
    include_lowest: bool = False
    _cuts: NDArray[np.float64] = field(init=False, repr=False, compare=False)
    _lookup: dict[Any, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        check_choice("kind", self.kind, KINDS)
        edges = tuple(float(e) for e in self.edges)
        categories = tuple(_plain(c) for c in self.categories)
        cuts = np.asarray(edges, dtype=np.float64)
        if self.kind == "numeric":
            if categories:
                raise InvalidInputError("categories", "numeric bins have no categories")
            if not np.isfinite(cuts).all() or not (np.diff(cuts) > 0).all():
                raise InvalidInputError(
                    "edges", "must be finite and strictly increasing", value=list(edges)
                )
            if self.include_lowest and cuts.shape[0] > 1:  # no inner bin: nothing to include
                # x < e_0 <=> x <= the float just below e_0: one search rule for both.
                cuts = cuts.copy()
                cuts[0] = np.nextafter(cuts[0], -np.inf)
        else:
            if edges:
                raise InvalidInputError("edges", "categorical bins have no edges")
            if len(set(categories)) != len(categories):
                raise InvalidInputError(
                    "categories", "must be distinct values", value=list(categories)
                )
        object.__setattr__(self, "edges", edges)
        object.__setattr__(self, "categories", categories)
        object.__setattr__(self, "_cuts", cuts)
        lookup = {c: i for i, c in enumerate(categories)}
        lookup.update({None: len(categories) + 1, "": len(categories) + 1})
        object.__setattr__(self, "_lookup", lookup)

    @classmethod
    def from_reference(
        cls, values: ArrayLike, *, n_bins: int = 10, strategy: str = "quantile"
    ) -> Bins:
        """Numeric bins spanning a reference sample, ``include_lowest``.

        ``strategy="quantile"`` puts about the same number of reference values
        in each bin (:func:`quantile_edges`); ``"uniform"`` splits [min, max]
        evenly. A constant reference gets one unit-wide bin around it. NaN
        and infinite values are ignored for the edges.

        Example:
            >>> Bins.from_reference(range(100), n_bins=4).edges
            (0.0, 24.75, 49.5, 74.25, 99.0)
            >>> Bins.from_reference([3.0, 3.0]).edges
            (2.5, 3.5)
        """
        n_bins = check_n_bins(n_bins)
        strategy = check_strategy(strategy)
        array = as_numbers(values)
        finite_mask = np.isfinite(array)
        finite = array if finite_mask.all() else array[finite_mask]
        if finite.shape[0] == 0:
            raise InvalidInputError("values", "the reference has no finite value to bin")
        low, high = float(finite.min()), float(finite.max())
        if low == high:
            edges = np.array([low - 0.5, low + 0.5])
        elif strategy == "uniform":
            edges = np.linspace(low, high, n_bins + 1)
        else:
            edges = quantile_edges(finite, n_bins)
        return cls("numeric", edges=tuple(edges.tolist()), include_lowest=True)

    @classmethod
    def top_k(cls, values: Sequence[Any] | ArrayLike, k: int = 20) -> Bins:
        """Categorical bins of the ``k`` most frequent non-missing values of a reference
        (ties broken by the value's text, for determinism).

        Example:
            >>> Bins.top_k(["a", "b", "b", "c", "c", "c", "", None], 2).categories
            ('c', 'b')
        """
        k = check_n_bins(k)
        items = [_plain(v) for v in np.asarray(values, dtype=object).reshape(-1).tolist()]
        counted = Counter(v for v in items if not is_missing(v))
        if not counted:
            raise InvalidInputError("values", "the reference has no non-missing value")
        ranked = sorted(counted.items(), key=lambda item: (-item[1], str(item[0])))
        return cls("categorical", categories=tuple(value for value, _ in ranked[:k]))

    @property
    def n_bins(self) -> int:
        """Number of bins, the missing bin included.

        Example:
            >>> Bins("numeric", edges=(0.0, 1.0)).n_bins
            4
        """
        if self.kind == "numeric":
            return len(self.edges) + 2
        return len(self.categories) + 2

    def index(self, values: ArrayLike) -> NDArray[np.intp]:
        """The bin of each value; the last bin holds the missing ones.

        Numeric bins take numbers (or missing values, :func:`as_numbers`);
        categorical bins take any hashable values.

        Example:
            >>> Bins("numeric", edges=(0.0,)).index([-1.0, 0.0, np.inf, np.nan, None]).tolist()
            [0, 0, 1, 2, 2]
        """
        if self.kind == "numeric":
            numbers = as_numbers(values)
            index = np.searchsorted(self._cuts, numbers, side="left")
            index[np.isnan(numbers)] = self.n_bins - 1
            return index.astype(np.intp, copy=False)
        array = np.asarray(values, dtype=object).reshape(-1)
        items = array.tolist()
        other = len(self.categories)
        # One dict lookup per value (None and "" are keys of the missing bin); only the
        # values that found no bin are checked for NaN (the one value unequal to itself),
        # which no lookup can match.
        get = self._lookup.get
        index = np.fromiter((get(v, other) for v in items), dtype=np.intp, count=len(items))
        rows = np.flatnonzero(index == other)
        if rows.shape[0]:
            picked = array[rows]
            if not {type(v) for v in picked.tolist()}.isdisjoint((float, np.float64, np.float32)):
                index[rows[picked != picked]] = other + 1
        return index

    def count(self, values: ArrayLike, sample_weight: ArrayLike | None = None) -> NDArray[Any]:
        """Counts (or summed weights) of ``values`` per bin.

        Unweighted numbers are counted without an index per value: with few
        edges, counts of ``x > e_i`` per cache-resident block and their
        differences; with many, one binary search per value (int64 counts).

        Example:
            >>> Bins("numeric", edges=(0.0, 1.0), include_lowest=True).count(
            ...     np.array([-1.0, 0.0, 0.5, 1.0, 2.0, np.nan])).tolist()
            [1, 3, 1, 1]
        """
        if sample_weight is not None or self.kind != "numeric":
            weights = None if sample_weight is None else np.asarray(sample_weight, np.float64)
            return np.bincount(self.index(values), weights=weights, minlength=self.n_bins)
        return self._count_numbers(as_numbers(values))

    def _count_numbers(self, values: NDArray[np.float64]) -> NDArray[np.int64]:
        n_edges = self._cuts.shape[0]
        n = values.shape[0]
        if n_edges > _COMPARE_MAX_EDGES or n_edges == 0:
            nan = int(np.count_nonzero(np.isnan(values)))
            codes = np.searchsorted(self._cuts, values, side="left")  # NaN sorts last
            counts = np.bincount(codes, minlength=n_edges + 1).astype(np.int64)
            counts[n_edges] -= nan
            return np.concatenate([counts, [nan]])
        cuts = self._cuts
        bounds = [float(e) for e in self.edges]
        first, rest = bounds[0], bounds[1:]
        above = np.zeros(n_edges, dtype=np.int64)  # x >(=) e0, x > e1, ..., x > e_m
        nan = 0
        for start in range(0, n, _BLOCK):
            block = values[start : start + _BLOCK]
            above[0] += np.count_nonzero(block > first if cuts[0] == first else block >= first)
            for index, edge in enumerate(rest, start=1):
                above[index] += np.count_nonzero(block > edge)
            nan += np.count_nonzero(np.isnan(block))
        underflow = n - nan - int(above[0])
        inner = above[:-1] - above[1:]
        return np.concatenate([[underflow], inner, [above[-1], nan]]).astype(np.int64)

    def labels(self) -> list[str]:
        """A name for each bin, in order.

        Example:
            >>> Bins("numeric", edges=(0, 1, 2), include_lowest=True).labels()
            ['< 0', '[0, 1]', '(1, 2]', '> 2', 'NaN']
            >>> Bins("numeric", edges=(0, 1)).labels()
            ['<= 0', '(0, 1]', '> 1', 'NaN']
        """
        if self.kind == "categorical":
            return [str(c) for c in self.categories] + [OTHER, MISSING]
        if not self.edges:
            return ["(-inf, inf)", "NaN"]
        e = [f"{edge:g}" for edge in self.edges]
        if self.include_lowest and len(e) > 1:
            lowest = [f"< {e[0]}", f"[{e[0]}, {e[1]}]"]
            inner = [f"({a}, {b}]" for a, b in pairwise(e[1:])]
        else:
            lowest = [f"<= {e[0]}"]
            inner = [f"({a}, {b}]" for a, b in pairwise(e)]
        return [*lowest, *inner, f"> {e[-1]}", "NaN"]

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe, versioned plain data.

        Example:
            >>> bins = Bins("categorical", categories=("eu", "us"))
            >>> Bins.from_dict(bins.to_dict()) == bins, bins.to_dict()["kind"]
            (True, 'categorical_bins')
        """
        data: dict[str, Any] = {"kind": f"{self.kind}_bins", "version": BINS_VERSION}
        if self.kind == "numeric":
            data.update(edges=list(self.edges), include_lowest=self.include_lowest)
        else:
            data["categories"] = list(self.categories)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Bins:
        """Rebuild bins written by :meth:`to_dict`."""
        kind = str(data.get("kind", "")).removesuffix("_bins")
        if kind not in KINDS or data.get("version") != BINS_VERSION:
            raise InvalidInputError(
                "data",
                f"is not numeric_bins or categorical_bins version {BINS_VERSION} data",
                value={"kind": data.get("kind"), "version": data.get("version")},
            )
        if kind == "numeric":
            return cls(kind, edges=tuple(data["edges"]), include_lowest=data["include_lowest"])
        return cls(kind, categories=tuple(data["categories"]))


def _plain(value: Hashable) -> Any:
    return value.item() if isinstance(value, np.generic) else value
