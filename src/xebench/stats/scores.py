"""Mergeable sufficient statistics of one model's predictions.

A :class:`ScoreStats` is plain data -- counts, weighted moments, per-class
label weights, fine calibration bins and, optionally, Poisson bootstrap
replicate sums -- from which every metric of the kernel is finished. It is
updated chunk by chunk and merged across files, time buckets, processes and
machines: ``a.merge(b)`` holds the statistics of ``a``'s and ``b``'s events
together, so a 100 GB file, a one-minute bucket and a Spark partition are the
same object. Per-event numbers (NLL, Brier, bins) come from the kernel's own
definitions in :mod:`xebench.metrics`; nothing is re-derived here.

Its parts live beside it, one job each (what was importable from here still is):

- :mod:`.moments`: the mergeable moments (Welford/Chan) and their t intervals;
- :mod:`.scored_rows`: the per-row quantities of one scored chunk;
- :mod:`.score_calibration`: the 300 fine calibration bins and the
  reliability curve and decompositions read from them;
- :mod:`.score_forms`: the JSON dict and flat row forms (``to_dict``, ``to_row``).

Confidence intervals
--------------------
``result()`` always gives a t interval for mean log loss and mean Brier from
the merged variance (Welford/Chan), with Kish's effective sample size
``(sum w)^2 / sum w^2`` when rows are weighted. It is accurate once a few
hundred events are in, which is the usual case for a benchmark file or a
monitoring window. Pass ``bootstrap=200`` to also keep Poisson bootstrap
replicates (see :mod:`xebench.stats.bootstrap`): percentile intervals that do not
lean on normality, for small or heavy-tailed samples (confident misses make
log loss heavy-tailed), at several times the update cost.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .._validation import check_eps, check_n_bins, log_of_base, row_chunks
from ..errors import InvalidInputError
from ..metrics.blocks import (
    DEFAULT_EPS,
    brier_per_row,
    class_weight_vector,
    dot,
    entropy_nats,
    prepare,
    top_label_hit,
    true_class_prob_into,
)
from ..metrics.calibration import calibration_gaps, calibration_inputs, uniform_bin_index
from ..metrics.registry import METRICS
from .bootstrap import (
    DEFAULT_REPLICATES,
    MAX_REPLICATES,
    event_hashes,
    event_keys,
    weights_from_hashes,
)
from .moments import Moments, check_confidence, combine_moments, standard_error, t_interval
from .score_calibration import ECE_BINS, FINE_BINS, FINE_EDGES, CalibrationResults, coarse_bins
from .score_forms import STATS_VERSION, ScoreForms
from .scored_rows import ScoredRows

__all__ = [
    "FINE_BINS",
    "MIN_RELIABLE_N",
    "STATS_VERSION",
    "Moments",
    "ScoreStats",
    "ScoredRows",
    "combine_moments",
    "point_metrics",
    "standard_error",
    "t_interval",
]

#: Events per bootstrap block: the (block, B) weight matrix stays in cache.
_BOOTSTRAP_BLOCK = 512

#: Effective events below which a t interval is flagged as unreliable (``ci_reliable``).
MIN_RELIABLE_N = 30


def _clipped(interval: tuple[float, ...], name: str) -> tuple[float, float]:
    """``interval`` within the range of metric ``name`` (see :mod:`xebench.metrics.registry`).

    Example:
        >>> _clipped((-0.2, 0.9), "log_loss"), _clipped((-0.1, 2.5), "brier")
        ((0.0, 0.9), (0.0, 2.0))
    """
    metric = METRICS[name]
    return max(interval[0], metric.low), min(interval[1], metric.high)


def _check_replicates(bootstrap: object) -> int:
    if bootstrap is True:
        return DEFAULT_REPLICATES
    if bootstrap is False or bootstrap is None:
        return 0
    if not isinstance(bootstrap, (int, np.integer)) or not 0 <= bootstrap <= MAX_REPLICATES:
        raise InvalidInputError(
            "bootstrap",
            f"must be a number of replicates in [0, {MAX_REPLICATES}] (or True for 200)",
            value=bootstrap,
        )
    return int(bootstrap)


def _jsonable(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def point_metrics(
    nll_mean: NDArray[np.float64],
    brier_mean: NDArray[np.float64],
    label_weight: NDArray[np.float64],
    cal_count: NDArray[np.float64],
    cal_score: NDArray[np.float64],
    cal_hit: NDArray[np.float64],
    *,
    n_bins: int = ECE_BINS,
) -> dict[str, NDArray[np.float64]]:
    """The point metrics of :meth:`ScoreStats.result` (in nats), one per row of the
    statistics of many groups at once: ``log_loss``, ``brier``, ``ece`` and ``mce``
    (over ``n_bins`` uniform bins), ``prior_log_loss`` and ``skill`` (NaN where
    ``result`` says None: a prior log loss of 0). ``result`` finishes its own
    statistics with this function (a row of one), so a caller finishing hundreds of
    windows at once -- a Prometheus scrape -- gets its values to the bit.

    Rows must hold events (a positive weight); ``label_weight`` is (rows, classes),
    the ``cal_*`` (rows, :data:`FINE_BINS`).

    Example:
        >>> a = ScoreStats().update([1, 0, 1], [0.8, 0.3, 0.6])
        >>> b = ScoreStats().update([0, 0], [0.1, 0.4])
        >>> means = [np.array([s.nll.mean, s.brier.mean]) for s in (a, b)]
        >>> rows = [np.stack([getattr(s, f) for s in (a, b)]) for f in
        ...         ("label_weight", "cal_count", "cal_score", "cal_hit")]
        >>> points = point_metrics(*np.stack(means).T, *rows)
        >>> [float(points["ece"][i]) == s.result()["ece"] for i, s in enumerate((a, b))]
        [True, True]
    """
    n_bins = check_n_bins(n_bins)
    label_weight = np.asarray(label_weight, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        prior = entropy_nats(label_weight / label_weight.sum(axis=-1, keepdims=True))
        skill = 1.0 - nll_mean / prior
    count, score, hit = (coarse_bins(a, n_bins) for a in (cal_count, cal_score, cal_hit))
    return {
        "log_loss": np.asarray(nll_mean, dtype=np.float64),
        "brier": np.asarray(brier_mean, dtype=np.float64),
        "ece": calibration_gaps(count, score, hit, "l1"),
        "mce": calibration_gaps(count, score, hit, "max"),
        "prior_log_loss": prior,
        "skill": np.where(prior == 0.0, np.nan, skill),
    }


class ScoreStats(CalibrationResults, ScoreForms):
    """Mergeable statistics of one model's probabilistic predictions.

    Args:
        classes: ``None`` for binary 0/1 (or False/True) labels with 1-D
            P(class 1); otherwise the fixed list of classes, in the column
            order of ``y_prob`` (two classes are binary: 1-D P(classes[1])).
        eps: clipping for the log loss, as in :func:`xebench.log_loss`.
        bootstrap: Poisson bootstrap replicates to keep (0: none; True: 200).
        seed: seed of the bootstrap weights; statistics merge only with equal
            seeds and replicate counts.
        class_weight: a weight per label (absent labels weigh 1), multiplied
            into each row's weight as the kernel's ``class_weight=`` does, so
            ``result()`` equals ``xebench.log_loss(..., class_weight=...)``.
            Statistics merge only with equal class weights. ``"balanced"``
            needs the class counts of all the events, which a stream does not
            know yet: count them first (``xebench bench --class-weight
            balanced`` reads the labels once more) and pass the weights.

    Example:
        >>> stats = ScoreStats()
        >>> _ = stats.update([1, 0, 1], [0.8, 0.1, 0.65])
        >>> _ = stats.update([1, 1, 0], [0.78, 0.91, 0.2])
        >>> result = stats.result()
        >>> result["n"], round(result["log_loss"], 4), round(result["accuracy"], 4)
        (6, 0.2209, 1.0)
        >>> part = ScoreStats().update([1, 0, 1], [0.8, 0.1, 0.65])
        >>> rest = ScoreStats().update([1, 1, 0], [0.78, 0.91, 0.2])
        >>> round(part.merge(rest).result()["log_loss"], 4)
        0.2209
    """

    def __init__(
        self,
        classes: Sequence[Hashable] | None = None,
        *,
        eps: float = DEFAULT_EPS,
        bootstrap: int | bool = 0,
        seed: int = 0,
        class_weight: Mapping[Hashable, float] | None = None,
    ) -> None:
        self.classes: tuple[Any, ...] | None = None if classes is None else self._classes(classes)
        self.eps = check_eps(eps)
        if isinstance(class_weight, str):
            raise InvalidInputError(
                "class_weight",
                "'balanced' needs the class counts of all the events; count them and pass "
                "the weights (xebench.metrics.blocks.class_weight_vector of the labels)",
                value=class_weight,
            )
        vector = class_weight_vector(
            class_weight, np.zeros(0, dtype=np.intp), np.asarray(self._labels())
        )
        #: The weight of each class (in the order of the classes), or None.
        self.class_weight: tuple[float, ...] | None = (
            None if vector is None else tuple(vector.tolist())
        )
        self.replicates = _check_replicates(bootstrap)
        self.seed = int(seed)
        k = self.n_classes
        self.n = 0
        self.weight_sq = 0.0
        self.nll = Moments()
        self.brier = Moments()
        self.hits = 0.0
        self.clipped = 0
        self.label_weight = np.zeros(k)
        self.cal_count = np.zeros(FINE_BINS)
        self.cal_score = np.zeros(FINE_BINS)
        self.cal_hit = np.zeros(FINE_BINS)
        # Columns: sum k*w, sum k*w*nll, sum k*w*brier, per replicate.
        self.boot = np.zeros((self.replicates, 3))

    @staticmethod
    def _classes(classes: Sequence[Hashable]) -> tuple[Any, ...]:
        values = tuple(_jsonable(c) for c in np.asarray(classes).tolist())
        if len(values) < 2 or len(set(values)) != len(values):
            raise InvalidInputError(
                "classes", "must list at least 2 distinct classes", value=list(values)
            )
        return values

    # --- shape ----------------------------------------------------------------

    @property
    def binary(self) -> bool:
        """True when predictions are P(class 1) of two classes."""
        return self.classes is None or len(self.classes) == 2

    @property
    def n_classes(self) -> int:
        """Number of classes (2 when binary)."""
        return 2 if self.classes is None else len(self.classes)

    @property
    def weight(self) -> float:
        """Total weight of the events (their number when unweighted)."""
        return self.nll.weight

    def _labels(self) -> list[Any]:
        return [0, 1] if self.classes is None else list(self.classes)

    def class_weight_mapping(self) -> dict[Any, float] | None:
        """The class weights as ``{label: weight}`` (the constructor's form), or None.

        Example:
            >>> ScoreStats(class_weight={1: 99}).class_weight_mapping()
            {0: 1.0, 1: 99.0}
        """
        if self.class_weight is None:
            return None
        return dict(zip(self._labels(), self.class_weight, strict=True))

    # --- update and merge -----------------------------------------------------

    def update(
        self,
        y_true: ArrayLike,
        y_prob: ArrayLike,
        sample_weight: ArrayLike | None = None,
        *,
        ids: ArrayLike | None = None,
        row_offset: int | None = None,
    ) -> ScoreStats:
        """Add a chunk of events; returns ``self``.

        ``ids`` (or, without ids, the row index ``row_offset + i``, where
        ``row_offset`` defaults to the number of rows seen so far) seed each
        event's bootstrap weights: give partitions their ids or global row
        offsets and merged bootstrap results equal a single pass.

        Example:
            >>> ScoreStats().update([1, 0], [0.9, 0.2]).n
            2
        """
        if np.shape(y_true)[:1] == (0,):
            return self
        return self.add(self.score(y_true, y_prob, sample_weight, ids=ids, row_offset=row_offset))

    def score(
        self,
        y_true: ArrayLike,
        y_prob: ArrayLike,
        sample_weight: ArrayLike | None = None,
        *,
        ids: ArrayLike | None = None,
        row_offset: int | None = None,
    ) -> ScoredRows:
        """Validate a chunk and compute its per-row quantities (nothing is added).

        Example:
            >>> stats = ScoreStats()
            >>> rows = stats.score([1, 0], [0.9, 0.2])
            >>> stats.add(rows).n, round(float(rows.nll.sum()), 4)
            (2, 0.3285)
        """
        self._check_columns(y_prob)
        pred = prepare(
            y_true, y_prob, self._labels(), sample_weight, False, self.class_weight_mapping()
        )
        true_prob = np.empty(pred.n_rows)
        for rows in row_chunks(pred.n_rows, pred.n_columns):
            true_class_prob_into(true_prob[rows], pred, rows)
        clipped = true_prob < self.eps
        np.clip(true_prob, self.eps, 1.0 - self.eps, out=true_prob)
        with np.errstate(divide="ignore"):  # eps=0 and p=0: an honest +inf
            nll = np.negative(np.log(true_prob, out=true_prob), out=true_prob)
        score, score_hit = calibration_inputs(pred.codes, pred.prob)
        keys = None
        if self.replicates:
            offset = self.n if row_offset is None else int(row_offset)
            keys = event_keys(ids, pred.n_rows, offset)
        return ScoredRows(
            codes=pred.codes,
            weight=pred.weight,
            nll=nll,
            brier=brier_per_row(pred),
            hit=top_label_hit(pred.codes, pred.prob),
            clipped=clipped,
            score=score,
            score_hit=score_hit,
            fine_bin=uniform_bin_index(score, FINE_EDGES),
            keys=keys,
        )

    def add(self, rows: ScoredRows) -> ScoreStats:
        """Accumulate rows scored by :meth:`score` (of statistics with the same classes).

        Example:
            >>> stats = ScoreStats()
            >>> rows = stats.score([1, 0, 1], [0.9, 0.2, 0.4])
            >>> stats.add(rows.take(slice(0, 2))).add(rows.take(slice(2, 3))).n
            3
        """
        if rows.n_rows == 0:
            return self
        weight = rows.weight
        self.nll = self.nll.merge(Moments.of(rows.nll, weight))
        self.brier = self.brier.merge(Moments.of(rows.brier, weight))
        self.hits += float(np.count_nonzero(rows.hit)) if weight is None else dot(weight, rows.hit)
        self.clipped += int(np.count_nonzero(rows.clipped))
        self.label_weight += np.bincount(rows.codes, weights=weight, minlength=self.n_classes)
        index = rows.fine_bin
        self.cal_count += np.bincount(index, weights=weight, minlength=FINE_BINS)
        score = rows.score if weight is None else rows.score * weight
        self.cal_score += np.bincount(index, weights=score, minlength=FINE_BINS)
        hit = rows.score_hit if weight is None else np.where(rows.score_hit, weight, 0.0)
        self.cal_hit += np.bincount(index, weights=hit, minlength=FINE_BINS)
        self.weight_sq += rows.n_rows if weight is None else dot(weight, weight)
        if self.replicates:
            if rows.keys is None:
                raise InvalidInputError(
                    "rows", "were scored by statistics without bootstrap replicates"
                )
            self._update_bootstrap(rows)
        self.n += rows.n_rows
        return self

    @staticmethod
    def add_groups(
        groups: Sequence[ScoreStats], group: NDArray[np.integer], rows: ScoredRows
    ) -> None:
        """Accumulate row ``i`` into ``groups[group[i]]`` (e.g. one statistics per cohort).

        Equivalent to ``groups[g].add(rows.take(group == g))`` for every ``g``,
        but computed with one pass of ``np.bincount`` per quantity instead of a
        gather and an update per group. The groups must share the classes and
        eps the rows were scored with.

        Example:
            >>> eu, us = ScoreStats(), ScoreStats()
            >>> rows = ScoreStats().score([1, 0, 1, 1], [0.9, 0.2, 0.4, 0.7])
            >>> ScoreStats.add_groups([eu, us], np.array([0, 1, 0, 1]), rows)
            >>> eu.n, round(eu.result()["log_loss"], 4), us.n
            (2, 0.5108, 2)
        """
        n_groups = len(groups)
        group = np.asarray(group, dtype=np.intp)
        if any(stats.replicates for stats in groups):  # bootstrap weights are per row
            order = np.argsort(group, kind="stable")
            bounds = np.searchsorted(group[order], np.arange(n_groups + 1))
            for g, stats in enumerate(groups):
                stats.add(rows.take(order[bounds[g] : bounds[g + 1]]))
            return
        # The codec's columnar sums: one bincount per quantity for all the groups.
        from .codec import decode, score_sums  # the codec builds on this module

        k = groups[0].n_classes if groups else 2
        eps = groups[0].eps if groups else DEFAULT_EPS
        sums = score_sums(group, n_groups, rows, k, eps)
        for g, stats in enumerate(groups):
            if sums["n"][g]:
                stats._absorb(decode(sums, g, stats.classes))

    def _check_columns(self, y_prob: ArrayLike) -> None:
        shape = np.shape(y_prob)
        binary_shape = len(shape) == 1 or (len(shape) == 2 and shape[1] == 2)
        ok = binary_shape if self.binary else len(shape) == 2 and shape[1] == self.n_classes
        if not ok:
            expected = "1-D P(class 1) or 2 columns" if self.binary else f"{self.n_classes} columns"
            raise InvalidInputError(
                "y_prob",
                f"these statistics hold classes {self._labels()}, so y_prob needs {expected}",
                value=f"shape {shape}",
            )

    def _update_bootstrap(self, rows: ScoredRows) -> None:
        weight = np.ones(rows.n_rows) if rows.weight is None else rows.weight
        values = np.column_stack([weight, weight * rows.nll, weight * rows.brier])
        low, high = event_hashes(rows.keys, self.seed)
        for start in range(0, rows.n_rows, _BOOTSTRAP_BLOCK):
            block = slice(start, start + _BOOTSTRAP_BLOCK)
            draws = weights_from_hashes(low[block], high[block], self.replicates)
            self.boot += draws.T.astype(np.float64) @ values[block]

    def merge(self, other: ScoreStats) -> ScoreStats:
        """A new ScoreStats holding the events of both.

        Example:
            >>> a = ScoreStats().update([1, 0], [0.9, 0.2])
            >>> b = ScoreStats().update([0], [0.4])
            >>> a.merge(b).n
            3
        """
        if not isinstance(other, ScoreStats):
            raise InvalidInputError("other", "can only merge with a ScoreStats", value=type(other))
        if self._labels() != other._labels():
            raise InvalidInputError(
                "other",
                f"cannot merge statistics of classes {self._labels()} "
                f"with statistics of classes {other._labels()}",
            )
        for name in ("eps", "replicates", "seed", "class_weight"):
            if getattr(self, name) != getattr(other, name):
                raise InvalidInputError(
                    "other",
                    f"cannot merge statistics with {name}={getattr(self, name)!r} "
                    f"and {name}={getattr(other, name)!r}",
                )
        merged = ScoreStats(
            self.classes,
            eps=self.eps,
            bootstrap=self.replicates,
            seed=self.seed,
            class_weight=self.class_weight_mapping(),
        )
        return merged._absorb(self)._absorb(other)

    def _absorb(self, other: ScoreStats) -> ScoreStats:
        """Add ``other``'s sums into these (checked by the caller); returns ``self``."""
        self.n += other.n
        self.weight_sq += other.weight_sq
        self.nll = self.nll.merge(other.nll)
        self.brier = self.brier.merge(other.brier)
        self.hits += other.hits
        self.clipped += other.clipped
        self.label_weight = self.label_weight + other.label_weight
        self.cal_count = self.cal_count + other.cal_count
        self.cal_score = self.cal_score + other.cal_score
        self.cal_hit = self.cal_hit + other.cal_hit
        self.boot = self.boot + other.boot
        return self

    __add__ = merge

    # --- results --------------------------------------------------------------

    def result(
        self, *, base: str | int = "e", n_bins: int = ECE_BINS, confidence: float = 0.95
    ) -> dict[str, Any]:
        """Every metric of these events, as a JSON-safe dict.

        Keys: ``n``, ``weight``, ``log_loss``, ``log_loss_se``, ``log_loss_ci``,
        ``brier``, ``brier_ci``, ``ece``, ``mce`` (over ``n_bins`` uniform
        bins), ``prior_log_loss``, ``skill``, ``perplexity``, ``accuracy``,
        ``clipped``, ``label_counts``, ``ci_reliable`` (False below
        :data:`MIN_RELIABLE_N` effective events: the intervals are then rough;
        they are clipped at 0, a loss's lower bound); with the bootstrap also
        ``log_loss_ci_bootstrap`` and ``brier_ci_bootstrap``. Log losses are
        in ``base`` units. Values that need events are ``None`` when empty.

        Example:
            >>> r = ScoreStats().update([1, 0, 1, 0], [0.5, 0.5, 0.5, 0.5]).result(base=2)
            >>> r["log_loss"], r["prior_log_loss"], r["skill"], r["perplexity"]
            (1.0, 1.0, 0.0, 2.0)
        """
        divisor = log_of_base(base)
        confidence = check_confidence(confidence)
        n_bins = check_n_bins(n_bins)
        labels = self._labels()
        result: dict[str, Any] = {
            "n": self.n,
            "weight": self.weight,
            "clipped": self.clipped,
            "label_counts": {
                str(label): float(w) for label, w in zip(labels, self.label_weight, strict=True)
            },
        }
        keys = (
            "log_loss", "log_loss_se", "log_loss_ci", "brier", "brier_ci", "ece", "mce",
            "prior_log_loss", "skill", "perplexity", "accuracy", "ci_reliable",
        )  # fmt: skip
        result.update(dict.fromkeys(keys))
        if self.weight <= 0.0:
            return result
        log_loss = self.nll.mean
        points = {
            name: float(values[0])
            for name, values in point_metrics(
                np.array([log_loss]),
                np.array([self.brier.mean]),
                self.label_weight[None],
                self.cal_count[None],
                self.cal_score[None],
                self.cal_hit[None],
                n_bins=n_bins,
            ).items()
        }
        prior = points["prior_log_loss"]
        loss_interval = t_interval(self.nll, self.weight_sq, confidence)
        brier_interval = t_interval(self.brier, self.weight_sq, confidence)
        result.update(
            log_loss=points["log_loss"] / divisor,
            brier=points["brier"],
            ece=points["ece"],
            mce=points["mce"],
            prior_log_loss=prior / divisor,
            skill=None if prior == 0.0 else points["skill"],
            perplexity=math.exp(log_loss),
            accuracy=self.hits / self.weight,
        )
        # A t interval that reaches past the metric's range (a few events, a large
        # spread: a log loss below 0) is clipped to the range of the registry, and
        # flagged as unreliable below MIN_RELIABLE_N effective events.
        if loss_interval is not None:
            low, high = _clipped(loss_interval, "log_loss")
            result.update(log_loss_se=loss_interval[2] / divisor)
            result.update(log_loss_ci=[low / divisor, high / divisor])
        if brier_interval is not None:
            result["brier_ci"] = list(_clipped(brier_interval, "brier"))
        n_eff = self.weight**2 / self.weight_sq if self.weight_sq > 0.0 else 0.0
        result["ci_reliable"] = n_eff >= MIN_RELIABLE_N
        if self.replicates:
            loss_ci, brier_ci = self._bootstrap_intervals(confidence)
            result["log_loss_ci_bootstrap"] = (
                None if loss_ci is None else [loss_ci[0] / divisor, loss_ci[1] / divisor]
            )
            result["brier_ci_bootstrap"] = brier_ci
        return result

    def _bootstrap_intervals(
        self, confidence: float
    ) -> tuple[list[float] | None, list[float] | None]:
        filled = self.boot[:, 0] > 0
        if filled.sum() < 2:
            return None, None
        replicate_means = self.boot[filled, 1:] / self.boot[filled, :1]
        tails = [50.0 * (1.0 - confidence), 50.0 * (1.0 + confidence)]
        low_high = np.percentile(replicate_means, tails, axis=0)
        return [float(v) for v in low_high[:, 0]], [float(v) for v in low_high[:, 1]]

    def __repr__(self) -> str:
        classes = "binary" if self.classes is None else f"classes={list(self.classes)}"
        return f"ScoreStats({classes}, n={self.n}, log_loss={self.nll.mean:.6g})"
