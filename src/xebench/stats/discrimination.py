"""Mergeable ROC AUC and average precision: per-class histograms of scores in fine bins.

The exact AUC needs every score sorted, which a one-minute bucket, a cohort
or a Spark partition cannot keep. :class:`DiscriminationStats` keeps, for each
class scored one-vs-rest, the weight of positives and of negatives in each of
``n_bins`` fine score bins (4,096 by default). Histograms merge exactly (the
counts add), and the AUC and AP are finished from them by the kernel's own
:func:`~xebench.metrics.discrimination.auc_from_groups` and
:func:`~xebench.metrics.discrimination.ap_from_groups`, each bin one group of
tied scores: the binned value is exactly the metric of the scores rounded to
their bins.

Only pairs within one bin can be ranked otherwise by the real scores, so the
error has a worst-case bound computed from the same histograms and reported
beside the value (``roc_auc_bound``):
``|AUC_binned - AUC_exact| <= 0.5 * sum_b pos_b neg_b / (P N)``
(:func:`~xebench.metrics.discrimination.auc_group_bound`; likewise
``average_precision_bound``). Bins are uniform in the log-odds of the score by
default (``spacing="logit"``, between p = 6e-6 and 1 - 6e-6), so the rare
class's small scores get as fine bins as the rest: the bound stays small when
all the scores are near 0, which uniform bins (``spacing="uniform"``) do not
manage.

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> p = rng.beta(1, 20, 50_000)
    >>> y = (rng.uniform(size=p.size) < p).astype(int)
    >>> a = DiscriminationStats().update(y[:20_000], p[:20_000])
    >>> b = DiscriminationStats().update(y[20_000:], p[20_000:])
    >>> r = a.merge(b).result()
    >>> from xebench.metrics import roc_auc
    >>> round(r["roc_auc"], 5), round(r["roc_auc_bound"], 5), round(roc_auc(y, p), 5)
    (0.75521, 0.00068, 0.75523)
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .._validation import check_choice, check_n_bins
from ..errors import InvalidInputError
from ..metrics.blocks import Predictions, class_weight_vector, prepare
from ..metrics.discrimination import (
    Average,
    RankGroups,
    ap_from_groups,
    ap_group_bound,
    auc_from_groups,
    auc_group_bound,
    auc_variance,
    average_scores,
    one_vs_rest,
    rank_groups,
)

__all__ = [
    "DISCRIMINATION_BINS",
    "DISCRIMINATION_VERSION",
    "DiscriminationStats",
    "auc_with_influence",
    "bin_edges",
    "exact_discrimination",
    "paired_auc",
]

#: Score bins per class by default: 4,096. For continuous scores the bound is then
#: ~1e-3 and the real error much smaller (a bin's pairs fall both ways).
DISCRIMINATION_BINS = 4096
#: Version of :meth:`DiscriminationStats.to_dict`.
DISCRIMINATION_VERSION = 1
#: Log-odds of the outermost inner edges of ``spacing="logit"`` bins: p = 6.1e-6 and
#: 1 - 6.1e-6 (wider would spend bins where models rarely score).
_LOGIT_RANGE = 12.0

Spacing = Literal["logit", "uniform"]


def bin_edges(n_bins: int, spacing: Spacing = "logit") -> NDArray[np.float64]:
    """The ``n_bins - 1`` inner edges of the score bins, ascending in (0, 1).

    A score on an edge falls in the upper bin (``searchsorted(side="right")``);
    equal scores always share a bin, which is all the bound needs.

    Example:
        >>> bin_edges(4, "uniform").tolist()
        [0.25, 0.5, 0.75]
        >>> [round(e, 6) for e in bin_edges(4).tolist()]  # log-odds -12, 0, 12
        [6e-06, 0.5, 0.999994]
    """
    n_bins = check_n_bins(n_bins)
    check_choice("spacing", spacing, ("logit", "uniform"))
    if spacing == "uniform":
        return np.arange(1, n_bins) / n_bins
    log_odds = np.linspace(-_LOGIT_RANGE, _LOGIT_RANGE, n_bins - 1)
    return 1.0 / (1.0 + np.exp(-log_odds))


class DiscriminationStats:
    """Mergeable binned ROC AUC and average precision, with their error bounds.

    Args:
        classes: ``None`` for binary 0/1 labels with 1-D P(class 1); otherwise
            the classes in the column order of ``y_prob`` (two are binary), as
            :class:`~xebench.stats.scores.ScoreStats`. Multiclass statistics
            keep one histogram pair per class (one-vs-rest).
        n_bins: score bins per class (4,096 by default). The bound shrinks
            about as ``1 / n_bins`` for continuous scores.
        spacing: ``"logit"`` (bins uniform in log-odds, the default) or
            ``"uniform"`` (uniform in probability).
        class_weight: a weight per label (absent labels weigh 1), multiplied
            into the row weights as the kernel does. ``"balanced"`` needs the
            class counts of all the events, which a stream does not know: pass
            the weights it computes (``class_weight_vector``) once counted.

    Example:
        >>> s = DiscriminationStats(n_bins=1024).update([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
        >>> r = s.result()
        >>> r["roc_auc"], r["roc_auc_bound"], round(r["average_precision"], 4)
        (0.75, 0.0, 0.8333)
    """

    def __init__(
        self,
        classes: Sequence[Hashable] | None = None,
        *,
        n_bins: int = DISCRIMINATION_BINS,
        spacing: Spacing = "logit",
        class_weight: Mapping[Hashable, float] | None = None,
    ) -> None:
        if classes is not None:
            values = tuple(v.item() if isinstance(v, np.generic) else v for v in classes)
            if len(values) < 2 or len(set(values)) != len(values):
                raise InvalidInputError(
                    "classes", "must list at least 2 distinct classes", value=list(values)
                )
            classes = values
        self.classes: tuple[Any, ...] | None = classes
        self.n_bins = check_n_bins(n_bins)
        self.spacing: Spacing = spacing
        self.edges = bin_edges(self.n_bins, spacing)
        if isinstance(class_weight, str):
            raise InvalidInputError(
                "class_weight",
                "'balanced' needs the class counts of all the events; pass the weights "
                "(xebench.metrics.blocks.class_weight_vector of the labels) instead",
                value=class_weight,
            )
        labels = np.asarray(self._labels())
        vector = class_weight_vector(class_weight, np.zeros(0, dtype=np.intp), labels)
        self.class_weight: tuple[float, ...] | None = (
            None if vector is None else tuple(vector.tolist())
        )
        rows = 1 if self.binary else len(self._labels())
        self.n = 0
        self.pos = np.zeros((rows, self.n_bins))
        self.neg = np.zeros((rows, self.n_bins))

    @property
    def binary(self) -> bool:
        """True when predictions are P(class 1) of two classes."""
        return self.classes is None or len(self.classes) == 2

    def _labels(self) -> list[Any]:
        return [0, 1] if self.classes is None else list(self.classes)

    def _class_weight_mapping(self) -> dict[Any, float] | None:
        if self.class_weight is None:
            return None
        return dict(zip(self._labels(), self.class_weight, strict=True))

    def update(
        self, y_true: ArrayLike, y_prob: ArrayLike, sample_weight: ArrayLike | None = None
    ) -> DiscriminationStats:
        """Add a chunk of events; returns ``self``.

        Example:
            >>> DiscriminationStats().update([1, 0], [0.9, 0.2]).n
            2
        """
        if np.shape(y_true)[:1] == (0,):
            return self
        pred = prepare(
            y_true, y_prob, self._labels(), sample_weight, False, self._class_weight_mapping()
        )
        if pred.binary != self.binary:
            expected = "1-D P(class 1) or 2 columns" if self.binary else "a column per class"
            raise InvalidInputError(
                "y_prob",
                f"these statistics hold classes {self._labels()}, so y_prob needs {expected}",
                value=f"shape {np.shape(y_prob)}",
            )
        weight = np.ones(pred.n_rows) if pred.weight is None else pred.weight
        for c, (score, positive) in enumerate(one_vs_rest(pred)):
            index = np.searchsorted(self.edges, score, side="right")
            self.pos[c] += np.bincount(
                index, weights=np.where(positive, weight, 0.0), minlength=self.n_bins
            )
            self.neg[c] += np.bincount(
                index, weights=np.where(positive, 0.0, weight), minlength=self.n_bins
            )
        self.n += pred.n_rows
        return self

    def _check_mergeable(self, other: DiscriminationStats) -> None:
        if not isinstance(other, DiscriminationStats):
            raise InvalidInputError(
                "other", "can only merge with a DiscriminationStats", value=type(other)
            )
        for name in ("classes", "n_bins", "spacing", "class_weight"):
            if getattr(self, name) != getattr(other, name):
                raise InvalidInputError(
                    "other",
                    f"cannot merge statistics with {name}={getattr(self, name)!r} "
                    f"and {name}={getattr(other, name)!r}",
                )

    def merge(self, other: DiscriminationStats) -> DiscriminationStats:
        """A new DiscriminationStats holding the events of both (the histograms add).

        Example:
            >>> a = DiscriminationStats().update([1, 0], [0.9, 0.2])
            >>> a.merge(DiscriminationStats().update([0], [0.4])).n
            3
        """
        self._check_mergeable(other)
        merged = self._empty()
        merged.n = self.n + other.n
        merged.pos = self.pos + other.pos
        merged.neg = self.neg + other.neg
        return merged

    __add__ = merge

    def _empty(self) -> DiscriminationStats:
        return DiscriminationStats(
            self.classes,
            n_bins=self.n_bins,
            spacing=self.spacing,
            class_weight=self._class_weight_mapping(),
        )

    def result(self, *, average: Average = "macro") -> dict[str, Any]:
        """The binned ROC AUC and AP with their worst-case error bounds, JSON-safe.

        Keys: ``n``, ``roc_auc``, ``roc_auc_bound``, ``average_precision``,
        ``average_precision_bound`` (the exact value lies within ``bound`` of
        the binned one), ``n_bins``, ``spacing`` and, for multiclass
        statistics, ``per_class`` (each class's one-vs-rest values). Averages
        follow ``average`` (``"macro"`` or ``"weighted"`` by class weight);
        an average's bound is the same average of the classes' bounds. Values
        are ``None`` where undefined (no events, or a class without positives
        or negatives).

        Example:
            >>> r = DiscriminationStats().update([1, 1], [0.9, 0.2]).result()
            >>> r["roc_auc"], r["average_precision"]
            (None, 1.0)
        """
        if average not in ("macro", "weighted"):
            check_choice("average", average, ("macro", "weighted"))
        values: dict[str, list[float]] = {
            "roc_auc": [], "roc_auc_bound": [], "average_precision": [],
            "average_precision_bound": [],
        }  # fmt: skip
        for pos, neg in zip(self.pos, self.neg, strict=True):
            values["roc_auc"].append(auc_from_groups(pos, neg))
            values["roc_auc_bound"].append(auc_group_bound(pos, neg))
            values["average_precision"].append(ap_from_groups(pos, neg))
            values["average_precision_bound"].append(ap_group_bound(pos, neg))
        support = self.pos.sum(axis=1)
        result: dict[str, Any] = {"n": self.n, "n_bins": self.n_bins, "spacing": self.spacing}
        for key, per in values.items():
            value = average_scores(np.array(per), support, average) if not self.binary else per[0]
            result[key] = _json_float(float(value))  # type: ignore[arg-type]
        if not self.binary:
            result["per_class"] = [
                {"class": label, **{key: _json_float(per[c]) for key, per in values.items()}}
                for c, label in enumerate(self._labels())
            ]
        return result

    # --- plain data -------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe, versioned plain data; only filled bins are stored.

        Example:
            >>> s = DiscriminationStats(n_bins=8, spacing="uniform").update([1, 0], [0.9, 0.2])
            >>> d = s.to_dict()
            >>> d["kind"], d["histograms"][0]
            ('discrimination_stats', {'index': [1, 7], 'pos': [0.0, 1.0], 'neg': [1.0, 0.0]})
        """
        histograms = []
        for pos, neg in zip(self.pos, self.neg, strict=True):
            filled = np.flatnonzero((pos != 0.0) | (neg != 0.0))
            histograms.append(
                {
                    "index": filled.tolist(),
                    "pos": pos[filled].tolist(),
                    "neg": neg[filled].tolist(),
                }
            )
        return {
            "kind": "discrimination_stats",
            "version": DISCRIMINATION_VERSION,
            "classes": None if self.classes is None else list(self.classes),
            "n_bins": self.n_bins,
            "spacing": self.spacing,
            "class_weight": None if self.class_weight is None else list(self.class_weight),
            "n": self.n,
            "histograms": histograms,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DiscriminationStats:
        """Rebuild statistics written by :meth:`to_dict`.

        Example:
            >>> s = DiscriminationStats(["a", "b", "c"]).update(["b"], [[0.2, 0.5, 0.3]])
            >>> DiscriminationStats.from_dict(s.to_dict()).to_dict() == s.to_dict()
            True
        """
        if (
            data.get("kind") != "discrimination_stats"
            or data.get("version") != DISCRIMINATION_VERSION
        ):
            raise InvalidInputError(
                "data",
                f"is not DiscriminationStats version {DISCRIMINATION_VERSION} data",
                value={"kind": data.get("kind"), "version": data.get("version")},
            )
        classes = data["classes"]
        labels = [0, 1] if classes is None else list(classes)
        weights = data.get("class_weight")
        stats = cls(
            classes,
            n_bins=int(data["n_bins"]),
            spacing=data["spacing"],
            class_weight=None if weights is None else dict(zip(labels, weights, strict=True)),
        )
        if len(data["histograms"]) != stats.pos.shape[0]:
            raise InvalidInputError(
                "data", f"needs {stats.pos.shape[0]} histograms", value=len(data["histograms"])
            )
        stats.n = int(data["n"])
        for c, histogram in enumerate(data["histograms"]):
            index = np.asarray(histogram["index"], dtype=np.intp)
            stats.pos[c, index] = histogram["pos"]
            stats.neg[c, index] = histogram["neg"]
        return stats

    def __repr__(self) -> str:
        classes = "binary" if self.classes is None else f"classes={list(self.classes)}"
        return f"DiscriminationStats({classes}, n={self.n}, n_bins={self.n_bins})"


def _json_float(value: float) -> float | None:
    return None if math.isnan(value) else value


# --- exact values with intervals (offline: every score at hand) -------------------


def _normal_quantile(confidence: float) -> float:
    from scipy.special import ndtri  # here: `import xebench` stays fast

    return float(ndtri(0.5 + confidence / 2.0))


def _class_groups(pred: Predictions) -> list[tuple[RankGroups, NDArray[np.bool_]]]:
    """Each one-vs-rest class's tie groups (one sort per class) and its positives."""
    return [
        (rank_groups(score, positive, pred.weight), positive)
        for score, positive in one_vs_rest(pred)
    ]


def auc_with_influence(
    pred: Predictions,
    average: Average = "macro",
    groups: list[tuple[RankGroups, NDArray[np.bool_]]] | None = None,
) -> tuple[float, NDArray[np.float64] | None]:
    """The exact (averaged) ROC AUC and each row's DeLong influence on it.

    Binary: the AUC and :func:`~xebench.metrics.discrimination.auc_variance`'s
    influence. Multiclass: the one-vs-rest AUCs averaged as ``average`` says
    and the same average of their influences (the weights of ``weighted`` taken
    as fixed), so ``sum phi^2`` is the variance of the average, covariances
    between the classes included. ``(nan, None)`` when undefined.

    Example:
        >>> pred = prepare([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8], None, None, False)
        >>> auc, phi = auc_with_influence(pred)
        >>> auc, round(float(np.sum(phi**2)), 4)
        (0.75, 0.125)
    """
    values, phis, support = [], [], []
    for group, positive in _class_groups(pred) if groups is None else groups:
        values.append(auc_from_groups(group.pos, group.neg))
        phis.append(auc_variance(group, positive, pred.weight)[1])
        support.append(float(group.pos.sum()))
    array = np.array(values)
    if np.isnan(array).any():
        return math.nan, None
    if pred.binary:
        return float(array[0]), phis[0]
    share = (
        np.full(array.shape[0], 1.0 / array.shape[0])
        if average == "macro"
        else np.array(support) / float(np.sum(support))
    )
    return float(np.dot(share, array)), np.einsum("c,ci->i", share, np.array(phis))


def exact_discrimination(
    pred: Predictions, *, confidence: float = 0.95, average: Average = "macro"
) -> dict[str, Any]:
    """Exact ROC AUC and AP of validated predictions, with confidence intervals.

    ``roc_auc`` (equal to :func:`xebench.roc_auc`) has DeLong's standard error
    ``roc_auc_se`` and the normal interval ``roc_auc_ci`` (clipped to [0, 1]);
    ``average_precision`` has, for binary predictions, the logit interval of
    Boyd, Eng and Page (2013), ``expit(logit(AP) +- z / sqrt(m AP (1 - AP)))``
    over the ``m`` (Kish-effective, when weighted) positives, which stays in
    (0, 1) and covered well in their simulations; multiclass AP has no
    interval (None). Undefined values are None.

    Example:
        >>> y = [0, 1] * 50
        >>> p = [0.2, 0.6] * 40 + [0.7, 0.3] * 10
        >>> r = exact_discrimination(prepare(y, p, None, None, False))
        >>> r["roc_auc"], [round(v, 3) for v in r["roc_auc_ci"]], round(r["average_precision"], 3)
        (0.8, [0.688, 0.912], 0.807)
    """
    z = _normal_quantile(confidence)
    groups = _class_groups(pred)
    auc, phi = auc_with_influence(pred, average, groups)
    result: dict[str, Any] = dict.fromkeys(
        ("roc_auc", "roc_auc_se", "roc_auc_ci", "average_precision", "average_precision_ci")
    )
    if phi is not None:
        se = math.sqrt(float(np.sum(phi**2)))
        result.update(roc_auc=auc, roc_auc_se=se)
        result["roc_auc_ci"] = [max(0.0, auc - z * se), min(1.0, auc + z * se)]
    values = [ap_from_groups(group.pos, group.neg) for group, _ in groups]
    support = [float(group.pos.sum()) for group, _ in groups]
    ap = average_scores(np.array(values), np.array(support), average)
    if not math.isnan(ap):  # type: ignore[arg-type]
        result["average_precision"] = float(ap)  # type: ignore[arg-type]
        if pred.binary:
            result["average_precision_ci"] = _logit_interval(float(ap), pred, z)  # type: ignore[arg-type]
    return result


def _logit_interval(ap: float, pred: Predictions, z: float) -> list[float] | None:
    positive = pred.codes == 1
    if pred.weight is None:
        m = float(np.count_nonzero(positive))
    else:
        w = pred.weight[positive]
        m = float(w.sum()) ** 2 / float(np.dot(w, w)) if w.sum() > 0 else 0.0
    if not (0.0 < ap < 1.0 and m > 0):
        return None
    eta, tau = math.log(ap / (1.0 - ap)), 1.0 / math.sqrt(m * ap * (1.0 - ap))
    return [1.0 / (1.0 + math.exp(-(eta + sign * z * tau))) for sign in (-1.0, 1.0)]


def paired_auc(
    candidate: Predictions, baseline: Predictions, *, average: Average = "macro"
) -> tuple[float, float, float]:
    """Two models' exact AUCs on the same rows and the standard error of their difference.

    DeLong's test for correlated ROC curves: the difference's variance is
    ``sum_i (phi_i - psi_i)^2`` over the rows' influences on each AUC (see
    :func:`auc_with_influence`), which counts the covariance the shared rows
    bring -- much tighter than two separate intervals.

    Example:
        >>> y = [0, 1] * 200
        >>> a = prepare(y, [0.3, 0.7] * 150 + [0.6, 0.4] * 50, None, None, False)
        >>> b = prepare(y, [0.3, 0.7] * 100 + [0.6, 0.4] * 100, None, None, False)
        >>> [round(v, 4) for v in paired_auc(a, b)]
        [0.9375, 0.75, 0.0208]
    """
    auc_a, phi_a = auc_with_influence(candidate, average)
    auc_b, phi_b = auc_with_influence(baseline, average)
    if phi_a is None or phi_b is None:
        return auc_a, auc_b, math.nan
    return auc_a, auc_b, math.sqrt(float(np.sum((phi_a - phi_b) ** 2)))
