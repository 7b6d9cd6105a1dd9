"""Offline benchmark: several models' probabilities on the same rows, ranked.

:func:`benchmark` reads the data in chunks (:mod:`xebench.io.readers`), feeds one
:class:`~xebench.ScoreStats` per model, one :class:`~xebench.PairedStats` per
model against the reference, and per-cohort statistics, then finishes them
into one JSON-safe result -- the contract of ``xebench bench --json``. Every
number comes from the statistics; nothing is re-derived here.

ROC AUC and average precision rank every score, so they are exact here: the
run keeps each model's probabilities, the label codes and the row weights (8
bytes per probability column and 16 per row) and finishes them at the end with
:func:`~xebench.stats.discrimination.exact_discrimination`, the whole file and
each shown cohort alike. ``class_weight`` multiplies the row weights of every
number, as the kernel's ``class_weight=`` does; ``"balanced"`` counts the
labels in a first pass over the label column.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .._validation import check_eps, check_n_bins, log_of_base
from .._version import __version__
from ..analysis.compare import PairedStats
from ..errors import DataError, InvalidInputError, LooksLikeLabelsWarning
from ..io.readers import (
    DEFAULT_BATCH_ROWS,
    Chunk,
    cohort_codes,
    label_array,
    prefetch,
    probability_array,
    read_chunks,
    weight_array,
)
from ..metrics.blocks import ClassWeight, Predictions, class_loss_table, class_weight_vector
from ..metrics.registry import METRICS
from ..stats.binning import MISSING, OTHER
from ..stats.discrimination import exact_discrimination
from ..stats.moments import check_confidence
from ..stats.scored_rows import ScoredRows
from ..stats.scores import ScoreStats

__all__ = ["BenchmarkResult", "LooksLikeLabelsWarning", "benchmark", "parse_prob_specs"]

#: Cohort values tracked per column; rarer values beyond this count go to OTHER.
MAX_TRACKED_COHORTS = 200
#: Cohort values shown per column (largest first); the rest are merged into OTHER.
SHOWN_COHORTS = 20
_UNITS = {"e": "nats", 2: "bits", 10: "log10 units"}
_MODEL_KEYS = (
    "n", "weight", "log_loss", "log_loss_ci", "brier", "brier_ci", "ece", "mce",
    "prior_log_loss", "skill", "perplexity", "accuracy", "clipped", "ci_reliable",
)  # fmt: skip
_DISCRIMINATION_KEYS = ("roc_auc", "roc_auc_ci", "average_precision", "average_precision_ci")


def parse_prob_specs(specs: Sequence[str]) -> dict[str, str]:
    """``["name=column", "column"]`` -> ``{name: column}`` (a bare column names itself).

    Example:
        >>> parse_prob_specs(["calibrated=p_cal", "p_raw"])
        {'calibrated': 'p_cal', 'p_raw': 'p_raw'}
    """
    models: dict[str, str] = {}
    for spec in specs:
        name, _, column = spec.partition("=") if "=" in spec else (spec, "", spec)
        name, column = name.strip(), column.strip()
        if not name or not column:
            raise InvalidInputError("--prob", "must be NAME=COLUMN or COLUMN", value=spec)
        if name in models:
            raise InvalidInputError("--prob", "model names must be unique", value=name)
        models[name] = column
    if not models:
        raise InvalidInputError("--prob", "at least one probability column is needed")
    return models


@dataclass
class _Cohorts:
    """Statistics per value of one cohort column, bounded in number."""

    column: str
    stats: dict[str, dict[str, ScoreStats]] = field(default_factory=dict)
    overflowed: bool = False
    index: dict[str, int] = field(default_factory=dict)
    """Each tracked value's number, and per chunk each row's (for the exact AUC)."""
    rows: list[NDArray[np.intp]] = field(default_factory=list)


@dataclass
class BenchmarkResult:
    """The finished benchmark: a JSON-safe dict plus renderers.

    Example:
        >>> r = benchmark(
        ...     {"y": [1, 0, 1, 0], "a": [0.9, 0.2, 0.7, 0.4], "b": [0.6, 0.5, 0.5, 0.5]},
        ...     label="y", probs={"a": "a", "b": "b"},
        ... )
        >>> [m["name"] for m in r.data["models"]], r.data["comparisons"][0]["reference"]
        (['a', 'b'], 'a')
    """

    data: dict[str, Any]
    paired: dict[str, PairedStats] = field(default_factory=dict, repr=False)
    """The paired statistics of each model against the reference (for gates)."""
    predictions: dict[str, Predictions] = field(default_factory=dict, repr=False)
    """Each model's scored rows (codes, probabilities, weights): the AUC gate's input."""

    def to_dict(self) -> dict[str, Any]:
        """The ``bench --json`` document."""
        return self.data

    def to_html(self) -> str:
        """The self-contained HTML report."""
        from ..report.html import render_html  # jinja2 loads only when a report is asked for

        return render_html(self.data)

    def to_markdown(self) -> str:
        """Ranking, comparisons and cohorts as GitHub-flavoured Markdown (for PR comments)."""
        from ..report.console import markdown_report

        return markdown_report(self.data)


class _Run:
    """Accumulates the statistics of a benchmark over chunks."""

    def __init__(
        self,
        models: Mapping[str, str],
        *,
        label: str,
        cohorts: Sequence[str],
        weight: str | None,
        reference: str,
        classes: Sequence[Hashable] | None,
        eps: float,
        class_weight: dict[Any, float] | None = None,
    ) -> None:
        self.models = dict(models)
        self.class_weight = class_weight
        # What the exact AUC and AP need: the rows' label codes and weights (shared by
        # the models: same rows, same classes) and each model's probabilities.
        self.codes: list[NDArray[np.intp]] = []
        self.weights: list[NDArray[np.float64] | None] = []
        self.probs: dict[str, list[NDArray[np.floating]]] = {name: [] for name in models}
        self.class_nll: dict[str, NDArray[np.float64]] = {}
        self.predictions: dict[str, Predictions] = {}
        self.label = label
        self.weight = weight
        self.reference = reference
        self.classes = None if classes is None else list(classes)
        self.eps = eps
        self.n_rows = 0
        self.hard: dict[str, bool] = {}  # model -> every probability so far is 0 or 1
        self.stats: dict[str, ScoreStats] = {}
        self.paired: dict[str, PairedStats] = {}
        self.cohorts = [_Cohorts(column) for column in cohorts]

    def _new_stats(self) -> ScoreStats:
        return ScoreStats(self.classes, eps=self.eps, class_weight=self.class_weight)

    def update(self, chunk: Chunk) -> None:
        table, where = chunk.table, {"source": chunk.source, "first_row": chunk.first_row}
        if table.num_rows == 0:
            return
        y = label_array(table.column(self.label), name=self.label, **where)
        w = None
        if self.weight is not None:
            w = weight_array(table.column(self.weight), name=self.weight, **where)
        n_classes = None if self.classes is None else len(self.classes)
        probs = {
            name: probability_array(table.column(column), name=column, n_classes=n_classes, **where)
            for name, column in self.models.items()
        }
        if self.classes is None:
            self.classes = _default_classes(y, next(iter(probs.values())), chunk, self.label)
        scored: dict[str, ScoredRows] = {}
        for name, prob in probs.items():  # validate and score every model once per chunk
            hard = self.hard.get(name, True)
            self.hard[name] = hard and bool(np.all((prob == 0.0) | (prob == 1.0)))
            stats = self.stats.setdefault(name, self._new_stats())
            with _located(chunk, self.models[name], self.label, self.weight):
                scored[name] = stats.score(y, prob, w)
        reference_rows = scored[self.reference]
        self.codes.append(reference_rows.codes)
        self.weights.append(reference_rows.weight)
        k = self.stats[self.reference].n_classes
        for name, rows in scored.items():
            self.probs[name].append(probs[name])
            nll = rows.nll if rows.weight is None else rows.nll * rows.weight
            sums = np.bincount(rows.codes, weights=nll, minlength=k)
            self.class_nll[name] = self.class_nll.get(name, 0.0) + sums
        for name, rows in scored.items():
            self.stats[name].add(rows)
            if name != self.reference:
                paired = self.paired.setdefault(name, PairedStats(self.classes, eps=self.eps))
                paired.add(rows, scored[self.reference])
        for cohort in self.cohorts:
            codes, values = cohort_codes(table.column(cohort.column), MISSING)
            self._update_cohort(cohort, codes, values, scored)
        self.n_rows += table.num_rows

    def _update_cohort(
        self,
        cohort: _Cohorts,
        codes: NDArray[np.int64],
        values: list[str],
        scored: Mapping[str, ScoredRows],
    ) -> None:
        # Map this chunk's codes to the tracked cohorts (values beyond the cap
        # go to OTHER), then accumulate every cohort in one bincount pass.
        keys = []
        for value in values:
            if value not in cohort.stats and len(cohort.stats) >= MAX_TRACKED_COHORTS:
                value, cohort.overflowed = OTHER, True
            cohort.stats.setdefault(value, {})
            cohort.index.setdefault(value, len(cohort.index))
            keys.append(value)
        numbers = np.array([cohort.index[key] for key in keys], dtype=np.intp)
        cohort.rows.append(numbers[codes] if numbers.size else np.zeros(0, dtype=np.intp))
        for name, rows in scored.items():
            groups = [cohort.stats[key].setdefault(name, self._new_stats()) for key in keys]
            ScoreStats.add_groups(groups, codes, rows)

    def finish(
        self,
        *,
        base: str | int,
        confidence: float,
        n_bins: int,
        min_cohort_size: int,
        inputs: dict[str, Any],
    ) -> dict[str, Any]:
        if self.n_rows == 0:
            raise DataError("data", "has no rows to benchmark", source=", ".join(inputs["files"]))

        def finished(stats: ScoreStats) -> dict[str, Any]:
            result = stats.result(base=base, n_bins=n_bins, confidence=confidence)
            return {key: result[key] for key in _MODEL_KEYS}

        codes = np.concatenate(self.codes)
        weight = None if self.weights[0] is None else np.concatenate(self.weights)  # type: ignore[arg-type]
        classes = np.asarray(self.stats[self.reference]._labels())
        probs = {name: np.concatenate(chunks) for name, chunks in self.probs.items()}
        self.predictions = {
            name: _predictions(codes, prob, classes, weight) for name, prob in probs.items()
        }
        divisor = log_of_base(base)

        def ranked(name: str, rows: NDArray[np.intp] | None = None) -> dict[str, Any]:
            pred = self.predictions[name]
            if rows is not None:
                pred = _take(pred, rows)
            return _discrimination_keys(exact_discrimination(pred, confidence=confidence))

        models = []
        for name, stats in self.stats.items():
            row = {"name": name, "column": self.models[name], **finished(stats), **ranked(name)}
            table = class_loss_table(
                classes.tolist(), stats.label_weight, self.class_nll[name], divisor
            )
            row["per_class"] = [{"class": label, **v} for label, v in table.items()]
            # The contract's names (DESIGN.md): auc beside roc_auc, {class: loss}.
            row["auc"], row["auc_ci"] = row.get("roc_auc"), row.get("roc_auc_ci")
            row["per_class_log_loss"] = {str(c["class"]): c["log_loss"] for c in row["per_class"]}
            curve = stats.reliability_curve(n_bins)  # the ECE's bins: the chart shows the ECE
            histogram = stats.reliability_curve(20)
            row["reliability"] = {
                "bin_edges": curve.bin_edges.tolist(),
                "count": _counts(curve.count),
                "mean_predicted": _nullable(curve.mean_predicted),
                "observed_frequency": _nullable(curve.observed_frequency),
            }
            row["histogram"] = {
                "bin_edges": histogram.bin_edges.tolist(),
                "count": _counts(histogram.count),
            }
            row["calibration_kind"] = (
                "P(class 1) vs frequency of class 1"
                if stats.binary
                else "top-label confidence vs accuracy"
            )
            models.append(row)
        models.sort(key=_loss_order)
        comparisons = []
        for name, paired in self.paired.items():
            if paired.n < 2:
                continue
            c = paired.result(confidence=confidence, base=base)
            comparisons.append(
                {
                    "model": name,
                    "reference": self.reference,
                    "n": c.n,
                    "delta": c.delta,
                    "delta_ci": list(c.delta_ci),
                    "relative_delta": c.relative_delta,
                    "p_value": c.p_value,
                }
            )
        order = {row["name"]: rank for rank, row in enumerate(models)}
        comparisons.sort(key=lambda c: order[c["model"]])
        cohorts, notes = {}, {}
        for cohort in self.cohorts:
            numbers = np.concatenate(cohort.rows)
            table, note = _cohort_table(cohort, order, finished, min_cohort_size, ranked, numbers)
            cohorts[cohort.column], notes[cohort.column] = table, note
        return {
            "xebench_version": __version__,
            "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "inputs": {
                **inputs,
                "classes": self.classes,
                "class_weight": _class_weight_rows(self.stats[self.reference]),
            },
            "units": _UNITS[base if isinstance(base, str) else int(base)],
            "n_rows": self.n_rows,
            "models": models,
            "comparisons": comparisons,
            "cohorts": cohorts,
            "cohort_notes": notes,
        }


def _predictions(
    codes: NDArray[np.intp],
    prob: NDArray[np.floating],
    classes: NDArray[Any],
    weight: NDArray[np.float64] | None,
) -> Predictions:
    """The run's rows as the kernel's validated predictions (two columns: P(class 1))."""
    if prob.ndim == 2 and prob.shape[1] == 2:
        return Predictions(codes, np.ascontiguousarray(prob[:, 1]), classes, weight)
    return Predictions(codes, prob, classes, weight)


def _take(pred: Predictions, rows: NDArray[np.intp]) -> Predictions:
    weight = None if pred.weight is None else pred.weight[rows]
    return Predictions(pred.codes[rows], pred.prob[rows], pred.classes, weight)


def _discrimination_keys(result: dict[str, Any]) -> dict[str, Any]:
    return {key: result[key] for key in _DISCRIMINATION_KEYS}


def _class_weight_rows(stats: ScoreStats) -> list[dict[str, Any]] | None:
    """Every class's weight (1 where none was named), in class order; None without."""
    mapping = stats.class_weight_mapping()
    if mapping is None:
        return None
    return [{"class": label, "weight": weight} for label, weight in mapping.items()]


def _loss_order(row: dict[str, Any]) -> tuple[float, str]:
    return (METRICS["log_loss"].sort_key(row["log_loss"]), row["name"])


def _counts(values: NDArray[np.float64]) -> list[int] | list[float]:
    """Bin counts: integers when every row weighs 1, weight sums otherwise."""
    if np.all(values == np.round(values)):
        return [int(v) for v in values.tolist()]
    return values.tolist()


def _nullable(values: NDArray[np.float64]) -> list[float | None]:
    return [None if not math.isfinite(v) else float(v) for v in values.tolist()]


def _cohort_table(
    cohort: _Cohorts,
    order: Mapping[str, int],
    finished: Callable[[ScoreStats], dict[str, Any]],
    min_cohort_size: int,
    discrimination: Callable[[str, NDArray[np.intp]], dict[str, Any]],
    numbers: NDArray[np.intp],
) -> tuple[dict[str, list[dict[str, Any]]], dict[str, Any]]:
    """Top cohorts by size, the rest merged into OTHER (statistics merge exactly).

    ``discrimination(model, rows)`` gives the exact AUC and AP of a cohort's rows,
    ``numbers`` each row's cohort (its number in ``cohort.index``).
    """
    sizes = {value: next(iter(per.values())).n for value, per in cohort.stats.items()}
    ranked = sorted((v for v in sizes if v != OTHER), key=lambda v: (-sizes[v], str(v)))
    shown, rest = ranked[:SHOWN_COHORTS], ranked[SHOWN_COHORTS:]
    if OTHER in cohort.stats:
        rest.append(OTHER)
    groups: dict[str, dict[str, ScoreStats]] = {str(v): cohort.stats[v] for v in shown}
    members = {str(v): [cohort.index[v]] for v in shown}
    if rest:
        members[OTHER] = [cohort.index[v] for v in rest]
        merged: dict[str, ScoreStats] = {}
        for value in rest:
            for name, stats in cohort.stats[value].items():
                merged[name] = merged[name].merge(stats) if name in merged else stats
        groups[OTHER] = merged
    table = {}
    small = []
    for value, per_model in groups.items():
        rows = []
        rows_of_value = np.flatnonzero(np.isin(numbers, members[value]))
        for name in sorted(per_model, key=lambda n: order.get(n, len(order))):
            row = {"name": name, **finished(per_model[name])}
            row.update(discrimination(name, rows_of_value))
            row["small"] = row["n"] < min_cohort_size
            rows.append(row)
        if rows and rows[0]["small"]:
            small.append(value)
        table[value] = rows
    note = {
        "values": len(sizes) if not cohort.overflowed else None,
        "shown": len(shown),
        "other": bool(rest),
        "overflowed": cohort.overflowed,
        "min_size": min_cohort_size,
        "small": small,
    }
    return table, note


def _default_classes(
    y: NDArray[Any], prob: NDArray[np.float64], chunk: Chunk, label: str
) -> list[Any] | None:
    """Classes when none were given: 0/1 for binary, 0..k-1 for k columns.

    String labels need ``classes`` (``--classes``): their order fixes which
    column (or which side of a binary probability) belongs to which class.
    """
    if y.dtype.kind in "biu":
        return None if prob.ndim == 1 else list(range(prob.shape[1]))
    raise DataError(
        "classes",
        f"labels are not integers (e.g. {y[0]!r}); name the classes in probability-column "
        "order with --classes (Python: classes=[...]); for binary data, the positive class last",
        source=chunk.source,
        column=label,
    )


class _located:
    """Re-raise kernel errors with the file, row and column they came from."""

    def __init__(self, chunk: Chunk, prob_column: str, label: str, weight: str | None) -> None:
        self.chunk, self.columns = (
            chunk,
            {
                "y_prob": prob_column,
                "y_true": label,
                "sample_weight": weight,
            },
        )

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type | None, error: BaseException | None, _: object) -> bool:
        if isinstance(error, InvalidInputError) and not isinstance(error, DataError):
            column = self.columns.get(error.argument) or error.argument
            row = None if error.row is None else self.chunk.first_row + error.row - 1
            raise DataError(
                column,
                error.rule,
                row=row,
                value=error.value,
                source=self.chunk.source,
                column=column,
            ) from error
        return False


def benchmark(
    data: Any,
    *,
    label: str,
    probs: Mapping[str, str] | Sequence[str],
    cohorts: Iterable[str] = (),
    weight: str | None = None,
    reference: str | None = None,
    classes: Sequence[Hashable] | None = None,
    class_weight: ClassWeight = None,
    eps: float = 1e-15,
    base: str | int = "e",
    confidence: float = 0.95,
    n_bins: int = 15,
    min_cohort_size: int = 100,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    on_chunk: Callable[[Chunk], None] | None = None,
) -> BenchmarkResult:
    """Benchmark models' probabilities on the same rows (paired), by cohort too.

    ``data`` is a path, a list of paths (CSV, Parquet, JSON Lines), a pandas
    or polars DataFrame, a pyarrow Table or a dict of columns. ``probs`` maps
    model names to probability columns (a list of columns names each model
    after its column). Models are ranked by log loss; each is compared with
    ``reference`` (default: the first model) on the same rows. A probability
    column of hard 0/1 values warns (:class:`LooksLikeLabelsWarning`).
    ``class_weight`` (a weight per label, or ``"balanced"``: ``n / (k *
    count_c)`` over the file's labels) multiplies every row's weight by its
    class's, for every number; each model also gets its exact ``roc_auc`` and
    ``average_precision`` with intervals and its ``per_class`` log loss.

    Example:
        >>> data = {"y": [1, 0, 1, 1, 0, 0], "p": [0.8, 0.3, 0.6, 0.7, 0.2, 0.4]}
        >>> result = benchmark(data, label="y", probs=["p"]).to_dict()
        >>> result["n_rows"], round(result["models"][0]["log_loss"], 4)
        (6, 0.3635)
    """
    if isinstance(probs, Mapping):
        models = {str(name): str(column) for name, column in probs.items()}
        if not models:
            raise InvalidInputError("probs", "at least one probability column is needed")
    else:
        models = parse_prob_specs([probs] if isinstance(probs, str) else list(probs))
    eps = check_eps(eps)
    log_of_base(base)
    confidence = check_confidence(confidence)
    n_bins = check_n_bins(n_bins)
    reference = next(iter(models)) if reference is None else reference
    if reference not in models:
        raise InvalidInputError(
            "reference", f"must be one of the models {list(models)}", value=reference
        )
    cohort_columns = list(dict.fromkeys(cohorts))
    columns = list(dict.fromkeys([label, *models.values(), *cohort_columns]))
    if weight is not None and weight not in columns:
        columns.append(weight)
    source = _as_table_source(data)
    resolved = _resolve_class_weight(class_weight, source, label, classes, batch_rows)
    run = _Run(
        models,
        label=label,
        cohorts=cohort_columns,
        weight=weight,
        reference=reference,
        classes=classes,
        eps=eps,
        class_weight=resolved,
    )
    files: list[str] = []
    float_columns = [*models.values(), *([weight] if weight else [])]
    chunks = closing(
        prefetch(
            read_chunks(
                source,
                columns,
                float_columns=float_columns,
                category_columns=[
                    c for c in cohort_columns if c not in (label, weight, *models.values())
                ],
                batch_rows=batch_rows,
            )
        )
    )
    with chunks as reading:  # stops the reader thread if a chunk is rejected
        for chunk in reading:
            if not files or files[-1] != chunk.source:
                files.append(chunk.source)
            run.update(chunk)
            if on_chunk is not None:
                on_chunk(chunk)
    for name, hard in run.hard.items():
        if hard:
            warnings.warn(LooksLikeLabelsWarning(models[name]), stacklevel=2)
    inputs = {
        "files": files or _source_names(data),
        "label": label,
        "probs": models,
        "cohorts": cohort_columns,
        "weight": weight,
        "reference": reference,
        "eps": eps,
        "base": base,
        "confidence": confidence,
        "n_bins": n_bins,
        "min_cohort_size": min_cohort_size,
    }
    return BenchmarkResult(
        run.finish(
            base=base,
            confidence=confidence,
            n_bins=n_bins,
            min_cohort_size=min_cohort_size,
            inputs=inputs,
        ),
        paired=run.paired,
        predictions=run.predictions,
    )


def _resolve_class_weight(
    class_weight: ClassWeight,
    source: Any,
    label: str,
    classes: Sequence[Hashable] | None,
    batch_rows: int,
) -> dict[Any, float] | None:
    """``class_weight`` as ``{label: weight}``; ``"balanced"`` from one pass over the labels.

    The statistics weigh rows as they stream, so "balanced" weights must be known
    before the first chunk: the labels are counted first (reading one column).
    """
    if class_weight is None:
        return None
    if not isinstance(class_weight, str):
        if not isinstance(class_weight, Mapping):
            class_weight_vector(class_weight, np.zeros(0, dtype=np.intp), np.array([0, 1]))
        return dict(class_weight)
    if class_weight != "balanced":
        class_weight_vector(class_weight, np.zeros(0, dtype=np.intp), np.array([0, 1]))
    counts: dict[Any, int] = {}
    with closing(read_chunks(source, [label], batch_rows=batch_rows)) as reading:
        for chunk in reading:
            where = {"source": chunk.source, "first_row": chunk.first_row}
            y = label_array(chunk.table.column(label), name=label, **where)
            values, n = np.unique(y, return_counts=True)
            for value, count in zip(values.tolist(), n.tolist(), strict=True):
                counts[value] = counts.get(value, 0) + count
    if classes is not None:
        unknown = [value for value in counts if value not in list(classes)]
        if unknown:
            raise DataError(label, f"labels must be one of {list(classes)}", value=unknown[0])
    total = sum(counts.values())
    return {value: total / (len(counts) * count) for value, count in sorted(counts.items())}


def _as_table_source(data: Any) -> Any:
    """Plain dicts of columns become a pyarrow Table; everything else passes through."""
    if isinstance(data, Mapping):
        import pyarrow as pa

        return pa.table({key: list(values) for key, values in data.items()})
    return data


def _source_names(data: Any) -> list[str]:
    if isinstance(data, (str, bytes)) or hasattr(data, "__fspath__"):
        return [str(data)]
    if isinstance(data, (list, tuple)):
        return [str(d) for d in data]
    return [f"<{type(data).__module__.split('.')[0]}.{type(data).__name__}>"]
