"""Windows, series, drift and canary/shadow comparisons over the bucket statistics.

Every answer here is a merge of the one-minute buckets of
:mod:`xebench.store.buckets` -- never a rescan of raw events -- finished by the
same statistics code as ``xebench bench`` (:class:`~xebench.ScoreStats`,
:mod:`xebench.analysis.drift`, :mod:`xebench.analysis.compare`). The one exception is a
*shadow* comparison (two models scoring the same requests): pairing is per
request, so it reads the joined events of its window.

Example:
    >>> from xebench.demo.stream import generate, load
    >>> from xebench.store import EventStore
    >>> store = EventStore(":memory:")
    >>> stream = generate(hours=3, rate_per_minute=20)
    >>> _ = load(store, stream); _ = store.update_buckets()
    >>> w = Monitor(store).window("default", "fraud", window="6h", now=stream.now)
    >>> w["n_predictions"] > 0, 0 < w["coverage"] <= 1
    (True, True)
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

from ..analysis.compare import PairedStats, decide, paired_comparison, unpaired_comparison
from ..errors import InvalidInputError
from ..stats.histograms import CategoricalHistogram
from ..stats.scores import ScoreStats
from ..store import queries
from ..store.buckets import (
    ALL,
    BUCKET_SECONDS,
    HOUR_SECONDS,
    SCORE_BINS,
    FeatureBins,
    group_ids,
    lag_counts,
    lag_percentile,
    merge_scores,
    score_stats,
)
from ..store.event_store import EventStore

__all__ = [
    "WINDOWS",
    "ModelPolicy",
    "Monitor",
    "MonitorSettings",
    "parse_cohort",
    "parse_duration",
    "parse_reference",
    "parse_time",
]

#: The named rolling windows (any duration such as "30m" or "3d" works too).
WINDOWS = {"1h": 3600, "6h": 6 * 3600, "24h": 86400, "7d": 7 * 86400}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_STEP = timedelta(seconds=BUCKET_SECONDS)
_HOUR = timedelta(seconds=HOUR_SECONDS)
_MAX_POINTS = 10_000
_LAG_CACHE_SECONDS = 60.0


def parse_duration(text: str | float | timedelta, argument: str = "window") -> timedelta:
    """``"90s"``, ``"15m"``, ``"1h"``, ``"7d"``, ``"2w"`` (or seconds) as a timedelta.

    Example:
        >>> parse_duration("6h"), parse_duration("90s").total_seconds()
        (datetime.timedelta(seconds=21600), 90.0)
    """
    if isinstance(text, timedelta):
        return text
    if isinstance(text, int | float) and not isinstance(text, bool):
        seconds = float(text)
    else:
        match = _DURATION.match(str(text))
        if not match:
            raise InvalidInputError(
                argument, "must be a duration such as 30m, 1h, 6h, 24h or 7d", value=text
            )
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if not seconds > 0:
        raise InvalidInputError(argument, "must be a positive duration", value=text)
    return timedelta(seconds=seconds)


def parse_time(text: str | datetime, argument: str) -> datetime:
    """An RFC 3339 time with its offset (``Z`` is UTC), as an aware UTC datetime.

    Example:
        >>> parse_time("2026-11-25T10:00:00+01:00", "from").isoformat()
        '2026-11-25T09:00:00+00:00'
    """
    if isinstance(text, datetime):
        moment = text
    else:
        try:
            moment = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
        except ValueError:
            raise InvalidInputError(
                argument, "must be an RFC 3339 time such as 2026-11-25T10:00:00Z", value=text
            ) from None
    if moment.tzinfo is None:
        raise InvalidInputError(argument, "needs a timezone offset (or Z for UTC)", value=text)
    return moment.astimezone(UTC)


def parse_reference(spec: str) -> tuple[str, str]:
    """A drift reference as (kind, value): ``rolling``, ``version:V``, ``range:FROM/TO``
    (RFC 3339 times, FROM before TO), ``uploaded`` or ``file:PATH``.

    Example:
        >>> parse_reference("version:v1"), parse_reference("rolling")
        (('version', 'v1'), ('rolling', ''))
        >>> parse_reference("weekly")
        Traceback (most recent call last):
        ...
        xebench.errors.InvalidInputError: reference: must be rolling, version:V, \
range:FROM/TO, uploaded or file:PATH; got 'weekly'
    """
    kind, _, value = str(spec).partition(":")
    if kind in ("rolling", "uploaded") and not value:
        return kind, ""
    if kind in ("version", "file") and value:
        return kind, value
    if kind == "range" and "/" in value:
        first, _, last = value.partition("/")
        if parse_time(first, "reference") >= parse_time(last, "reference"):
            raise InvalidInputError("reference", "range:FROM/TO needs FROM before TO", value=spec)
        return kind, value
    raise InvalidInputError(
        "reference", "must be rolling, version:V, range:FROM/TO, uploaded or file:PATH", value=spec
    )


def parse_cohort(text: str | None) -> tuple[str, str]:
    """``"region:eu"`` -> ``("region", "eu")``; None is the model as a whole.

    Example:
        >>> parse_cohort("device:ios"), parse_cohort(None)
        (('device', 'ios'), ('', ''))
    """
    if text is None or text == "":
        return ALL, ALL
    key, sep, value = str(text).partition(":")
    if not sep or not key or not value:
        raise InvalidInputError("cohort", "must be key:value, e.g. region:eu", value=text)
    return key, value


@dataclass(frozen=True)
class ModelPolicy:
    """When a model's windows are final.

    Attributes:
        label_delay: how long labels take to arrive; a window ending less than
            this ago is provisional. None: the observed 90th percentile of label
            lag over the last 7 days.
        min_coverage: a window with a smaller labelled share is provisional.

    Example:
        >>> ModelPolicy(label_delay=timedelta(hours=1)).min_coverage
        0.5
    """

    label_delay: timedelta | None = None
    min_coverage: float = 0.5


@dataclass(frozen=True)
class MonitorSettings:
    """Monitoring defaults, per model where it matters (``monitoring:`` in the config).

    Example:
        >>> s = MonitorSettings(models={"fraud": ModelPolicy(label_delay=timedelta(hours=2))})
        >>> s.policy("fraud").label_delay, s.policy("other").label_delay
        (datetime.timedelta(seconds=7200), None)
    """

    default: ModelPolicy = field(default_factory=ModelPolicy)
    models: Mapping[str, ModelPolicy] = field(default_factory=dict)
    #: Drift reference per model: "rolling", "version:V", "range:FROM/TO" or "file:PATH".
    references: Mapping[str, str] = field(default_factory=dict)
    drift_min_samples: int = 500
    drift_threshold: float = 0.01
    drift_bins: int = 10
    gate_max_degradation: float = 0.02
    gate_min_samples: int = 1000
    gate_confidence: float = 0.95

    def policy(self, model: str) -> ModelPolicy:
        """The policy of ``model`` (the default when it has none)."""
        return self.models.get(model, self.default)


@dataclass(frozen=True)
class _Range:
    start: datetime
    end: datetime

    @property
    def length(self) -> timedelta:
        return self.end - self.start


def _ceil(moment: datetime, step: timedelta) -> datetime:
    seconds = step.total_seconds()
    stamp = moment.timestamp()
    return datetime.fromtimestamp(-(-stamp // seconds) * seconds, UTC)


def _floor(moment: datetime, step: timedelta) -> datetime:
    seconds = step.total_seconds()
    return datetime.fromtimestamp(moment.timestamp() // seconds * seconds, UTC)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


class Monitor:
    """Answers monitoring questions from a store's buckets; safe from any thread.

    Args:
        store: the event store (read through its cursors).
        settings: label delays, coverage thresholds, drift and gate defaults.
    """

    def __init__(self, store: EventStore, settings: MonitorSettings | None = None) -> None:
        self.store = store
        self.settings = settings or MonitorSettings()
        self._lag_cache: dict[tuple[str, str], tuple[float, float | None]] = {}
        self._file_references: dict[tuple[Any, ...], dict[str, Any]] = {}

    # --- ranges -------------------------------------------------------------------------

    def resolve(
        self,
        *,
        window: str | timedelta | None = None,
        start: str | datetime | None = None,
        end: str | datetime | None = None,
        now: datetime | None = None,
        step: timedelta | None = None,
    ) -> _Range:
        """[start, end) from a rolling window or explicit times, on bucket boundaries.

        A rolling window ends at the next bucket (or step) boundary after ``now``.
        """
        align = step or _STEP
        if step is not None and step.total_seconds() % BUCKET_SECONDS:
            raise InvalidInputError("step", f"must be a multiple of {BUCKET_SECONDS} s", value=step)
        if start is not None or end is not None:
            if window is not None and start is not None and end is not None:
                raise InvalidInputError("window", "give window or from/to, not both", value=window)
            stop = parse_time(end, "to") if end is not None else now or datetime.now(UTC)
            stop = _ceil(stop, _STEP)
            if start is not None:
                begin = _ceil(parse_time(start, "from"), _STEP)
            else:
                begin = stop - parse_duration(window or "24h")
        else:
            stop = _ceil(now or datetime.now(UTC), align)
            begin = stop - parse_duration(window or "24h")
        if begin >= stop:
            raise InvalidInputError("from", "must be before to", value=_iso(begin))
        return _Range(begin, stop)

    # --- reading buckets --------------------------------------------------------------

    def _scores(
        self,
        tenant: str,
        model: str,
        version: str | None,
        cohort: tuple[str, str],
        span: _Range,
        *,
        hours: bool = True,
    ) -> pa.Table:
        return self._bucket_rows(
            "bucket_scores", "*", tenant, model, version, cohort, span, hours=hours
        )

    def _bucket_rows(
        self,
        table: str,
        columns: str,
        tenant: str,
        model: str,
        version: str | None,
        cohort: tuple[str, str],
        span: _Range,
        *,
        hours: bool = True,
    ) -> pa.Table:
        """The rows of a bucket table for one model (and version), cohort and range
        (:func:`xebench.store.queries.bucket_rows`)."""
        with self.store.cursor() as cursor:
            return queries.bucket_rows(
                cursor,
                table,
                columns,
                tenant=tenant,
                model=model,
                version=version,
                cohort=cohort,
                start=span.start,
                end=span.end,
                hours=hours,
            )

    @staticmethod
    def _classes(table: pa.Table, model: str) -> list[str] | None:
        if not table.num_rows:
            return None
        distinct = pc.unique(pc.binary_join(table["classes"], "\x1f")).to_pylist()
        if len(distinct) > 1:
            shown = " and ".join(str(d.split("\x1f")) for d in distinct[:2])
            raise InvalidInputError(
                "version",
                f"model {model!r} has several class lists in this range ({shown}); "
                "ask for one version",
            )
        return str(distinct[0]).split("\x1f")

    # --- windows ----------------------------------------------------------------------

    def window(
        self,
        tenant: str,
        model: str,
        *,
        version: str | None = None,
        cohort: str | None = None,
        window: str | timedelta | None = None,
        start: str | datetime | None = None,
        end: str | datetime | None = None,
        now: datetime | None = None,
        base: str | int = "e",
        confidence: float = 0.95,
    ) -> dict[str, Any]:
        """One window: counts, coverage, label lag, log loss with CI, Brier, ECE, skill...

        Example:
            >>> Monitor(EventStore(":memory:")).window("t", "m", window="1h")["n_predictions"]
            0
        """
        now = now or datetime.now(UTC)
        span = self.resolve(window=window, start=start, end=end, now=now)
        key = parse_cohort(cohort)
        table = self._scores(tenant, model, version, key, span)
        classes = self._classes(table, model)
        merged = merge_scores(table, np.zeros(table.num_rows, dtype=np.intp), 1)
        delay = self._label_delay(tenant, model, now)
        return self._finish(
            merged, 0, classes, span, now, delay, model, version, key, base, confidence
        )

    def series(
        self,
        tenant: str,
        model: str,
        *,
        step: str | timedelta,
        version: str | None = None,
        cohort: str | None = None,
        window: str | timedelta | None = None,
        start: str | datetime | None = None,
        end: str | datetime | None = None,
        now: datetime | None = None,
        base: str | int = "e",
        confidence: float = 0.95,
    ) -> dict[str, Any]:
        """Consecutive windows of ``step`` (a multiple of a minute) covering the range.

        Example:
            >>> s = Monitor(EventStore(":memory:")).series("t", "m", window="6h", step="1h")
            >>> len(s["series"])
            6
        """
        now = now or datetime.now(UTC)
        size = parse_duration(step, "step")
        span = self.resolve(window=window, start=start, end=end, now=now, step=size)
        points = int(-(-span.length.total_seconds() // size.total_seconds()))
        if points > _MAX_POINTS:
            raise InvalidInputError(
                "step", f"gives {points} points; at most {_MAX_POINTS} per series", value=step
            )
        key = parse_cohort(cohort)
        on_hours = (
            size.total_seconds() % HOUR_SECONDS == 0 and _floor(span.start, _HOUR) == span.start
        )
        table = self._scores(tenant, model, version, key, span, hours=on_hours)
        classes = self._classes(table, model)
        micros = pc.cast(table["bucket"], pa.int64()).to_numpy()
        offset = (micros - int(span.start.timestamp() * 1e6)) // int(size.total_seconds() * 1e6)
        merged = merge_scores(table, offset.astype(np.intp), points)
        delay = self._label_delay(tenant, model, now)
        series = []
        for g in range(points):
            begin = span.start + g * size
            part = _Range(begin, min(begin + size, span.end))
            series.append(
                self._finish(
                    merged, g, classes, part, now, delay, model, version, key, base, confidence
                )
            )
        return {"series": series}

    def _finish(
        self,
        merged: dict[str, Any],
        g: int,
        classes: list[str] | None,
        span: _Range,
        now: datetime,
        delay: timedelta,
        model: str,
        version: str | None,
        cohort: tuple[str, str],
        base: str | int,
        confidence: float,
    ) -> dict[str, Any]:
        n_predictions = int(merged["n_predictions"][g])
        n_labelled = int(merged["n_labelled"][g])
        coverage = n_labelled / n_predictions if n_predictions else None
        lags = lag_counts(merged, g)
        out: dict[str, Any] = {
            "from": _iso(span.start),
            "to": _iso(span.end),
            "model": model,
            "version": version,
            "cohort": None if cohort[0] == ALL else f"{cohort[0]}:{cohort[1]}",
            "n_predictions": n_predictions,
            "n_labelled": n_labelled,
            "coverage": coverage,
            "label_lag_p50_s": lag_percentile(lags, 50),
            "label_lag_p90_s": lag_percentile(lags, 90),
            "label_lag_p99_s": lag_percentile(lags, 99),
        }
        keys = (
            "n", "log_loss", "log_loss_ci", "brier", "brier_ci", "ece", "mce", "prior_log_loss",
            "skill", "perplexity", "accuracy", "clipped", "label_counts",
        )  # fmt: skip
        result: dict[str, Any] = dict.fromkeys(keys)
        result["n"] = 0
        if classes is not None and int(merged["n"][g]) > 0:
            stats = score_stats(merged, g, classes)
            result.update(
                {
                    k: v
                    for k, v in stats.result(base=base, confidence=confidence).items()
                    if k in keys
                }
            )
        out.update(result)
        out["n_unscorable"] = n_labelled - int(result["n"])
        out["base"] = base if isinstance(base, str) else int(base)
        policy = self.settings.policy(model)
        reasons = []
        if delay > timedelta(0) and span.end > now - delay:
            reasons.append(f"ends within the label delay ({delay.total_seconds():g} s)")
        if coverage is not None and coverage < policy.min_coverage:
            reasons.append(f"coverage {coverage:.1%} < {policy.min_coverage:.0%}")
        out["provisional"] = bool(reasons)
        out["provisional_reason"] = "; ".join(reasons) or None
        out["label_delay_s"] = delay.total_seconds()
        return out

    def _label_delay(self, tenant: str, model: str, now: datetime) -> timedelta:
        """The configured label delay, else the observed p90 lag of the last 7 days."""
        configured = self.settings.policy(model).label_delay
        if configured is not None:
            return configured
        cached = self._lag_cache.get((tenant, model))
        if cached is not None and time.monotonic() - cached[0] < _LAG_CACHE_SECONDS:
            seconds = cached[1]
        else:
            with self.store.cursor() as cursor:
                rows = queries.label_lags(cursor, tenant, model, now - timedelta(days=7))
            counts = lag_counts(
                {
                    "lag": (
                        np.array([b for b, _ in rows], dtype=np.int64),
                        np.array([0, len(rows)]),
                        np.array([c for _, c in rows], dtype=np.float64),
                    )
                },
                0,
            )
            seconds = lag_percentile(counts, 90)
            self._lag_cache[(tenant, model)] = (time.monotonic(), seconds)
        return timedelta(seconds=seconds or 0.0)

    # --- drift ------------------------------------------------------------------------

    def drift(
        self,
        tenant: str,
        model: str,
        *,
        version: str | None = None,
        cohort: str | None = None,
        window: str | timedelta | None = None,
        start: str | datetime | None = None,
        end: str | datetime | None = None,
        reference: str | None = None,
        now: datetime | None = None,
        min_samples: int | None = None,
        threshold: float | None = None,
    ) -> dict[str, Any]:
        """Per feature, score and label: KL, JS, PSI of the window vs a reference, ranked.

        ``reference``: ``"rolling"`` (the previous window of the same length, the
        default), ``"version:V"`` (everything of version V), ``"range:FROM/TO"``,
        ``"uploaded"`` (the data uploaded with ``PUT /v1/references/{model}``)
        or ``"file:PATH"`` (a CSV/Parquet/JSON Lines file of feature columns);
        the model's configured reference when None. A reference given as data
        has no scores or labels: only the features are compared.

        Example:
            >>> d = Monitor(EventStore(":memory:")).drift("t", "m", window="1h")
            >>> d["features"], d["reference"]["kind"]
            ([], 'rolling')
        """
        from ..analysis.drift import DriftReport, compare_histograms, rank

        now = now or datetime.now(UTC)
        span = self.resolve(window=window, start=start, end=end, now=now)
        key = parse_cohort(cohort)
        spec = reference or self.settings.references.get(model, "rolling")
        min_samples = self.settings.drift_min_samples if min_samples is None else min_samples
        threshold = self.settings.drift_threshold if threshold is None else threshold
        kind, ref_version, ref_span, ref_file = self._reference(spec, span)
        current_scores = self._scores(tenant, model, version, key, span)
        current = self._feature_counts(tenant, model, version, key, span)
        # A reference given as data (a file, an upload) has features only; one of the
        # model's own events also has its scores and labels.
        reference_scores = None
        uploaded: dict[str, Any] | None = None
        if kind == "file":
            assert ref_file is not None
            ref_counts = self._file_counts(tenant, model, ref_file)
        elif kind == "uploaded":
            uploaded = self.store.reference(tenant, model)
            if uploaded is None:
                raise InvalidInputError(
                    "reference",
                    f"model {model!r} has no uploaded reference (PUT /v1/references/{model})",
                    value=spec,
                )
            ref_counts = {**uploaded["counts"], "__rows__": uploaded["rows"]}
        else:
            reference_scores = self._scores(tenant, model, ref_version or version, key, ref_span)
            ref_counts = self._feature_counts(tenant, model, ref_version or version, key, ref_span)
        bins = self.store.buckets.feature_bins(tenant, model)
        results = []
        for name, spec_bins in sorted(bins.items()):
            ref = ref_counts.get(name)
            cur = current.get(name)
            if ref is None or cur is None or len(ref) != spec_bins.n_bins:
                continue
            reference_hist, current_hist = _grouped(spec_bins, ref, cur, self.settings.drift_bins)
            results.append(
                compare_histograms(
                    name,
                    reference_hist,
                    current_hist,
                    kind=spec_bins.kind,
                    min_samples=min_samples,
                    threshold=threshold,
                )
            )
        if reference_scores is not None:
            for name, pair in _score_and_label(reference_scores, current_scores).items():
                results.append(
                    compare_histograms(
                        name,
                        pair[0],
                        pair[1],
                        kind=name.strip("_").split("_")[0],
                        min_samples=min_samples,
                        threshold=threshold,
                    )
                )
        report = DriftReport(
            features=rank(results),
            n_reference=int(
                reference_scores["n_predictions"].to_numpy().sum()
                if reference_scores is not None
                else ref_counts.get("__rows__", 0)
            ),
            n_current=int(current_scores["n_predictions"].to_numpy().sum()),
            min_samples=min_samples,
            threshold=threshold,
            n_bins=self.settings.drift_bins,
            top_k=self.store.buckets.config.top_k,
            reference_files=[
                _describe(model, ref_version or version, key, kind, ref_span, ref_file, uploaded)
            ],
            current_files=[_describe(model, version, key, "window", span, None)],
        )
        out = report.to_dict()
        out.update(
            {
                "model": model,
                "version": version,
                "cohort": None if key[0] == ALL else f"{key[0]}:{key[1]}",
                "from": _iso(span.start),
                "to": _iso(span.end),
                "reference": {
                    "kind": kind,
                    "version": ref_version,
                    "from": None if ref_span is None else _iso(ref_span.start),
                    "to": None if ref_span is None else _iso(ref_span.end),
                    "file": None if ref_file is None else str(ref_file),
                    "source": None if uploaded is None else uploaded["source"],
                    "uploaded_at": None if uploaded is None else _iso(uploaded["uploaded_at"]),
                },
            }
        )
        if key[0] != ALL and not current:
            out["note"] = (
                "no feature histograms of this cohort in the window (they are kept per cohort "
                "only with monitoring.cohort_features): its drift covers its score and labels"
            )
        return out

    def _reference(
        self, spec: str, span: _Range
    ) -> tuple[str, str | None, _Range | None, Path | None]:
        kind, value = parse_reference(spec)
        if kind == "rolling":
            return "rolling", None, _Range(span.start - span.length, span.start), None
        if kind == "version":
            epoch = datetime(1970, 1, 1, tzinfo=UTC)
            return "version", value, _Range(epoch, span.end), None
        if kind == "range":
            first, _, last = value.partition("/")
            return "range", None, _Range(parse_time(first, "from"), parse_time(last, "to")), None
        if kind == "file":
            return "file", None, None, Path(value)
        return "uploaded", None, None, None

    def _feature_counts(
        self, tenant: str, model: str, version: str | None, cohort: tuple[str, str], span: _Range
    ) -> dict[str, NDArray[np.float64]]:
        # Per-cohort histograms exist only where monitoring.cohort_features was on when
        # the events were folded: read what is stored rather than trust today's setting.
        table = self._bucket_rows(
            "bucket_features", "feature, counts", tenant, model, version, cohort, span
        )
        if not table.num_rows:
            return {}
        group, first = group_ids([table["feature"].combine_chunks()])
        names = table["feature"].take(pa.array(first)).to_pylist()
        counts = table["counts"].combine_chunks()
        lengths = pc.list_value_length(counts).to_numpy(zero_copy_only=False).astype(np.intp)
        flat = pc.list_flatten(counts).to_numpy(zero_copy_only=False)
        # One bincount for every feature: value j of a row of feature g lands in slot
        # offset[g] + j (all rows of a feature have its width: its bins are fixed once).
        width = lengths[first]
        offset = np.concatenate([[0], np.cumsum(width)])
        row_of_value = np.repeat(np.arange(lengths.size), lengths)
        row_start = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        slot = offset[group][row_of_value] + np.arange(flat.size) - row_start[row_of_value]
        totals = np.bincount(slot, weights=flat, minlength=int(offset[-1]))
        return {name: totals[offset[g] : offset[g + 1]] for g, name in enumerate(names)}

    def _file_counts(self, tenant: str, model: str, path: Path) -> dict[str, Any]:
        """Counts of a reference file's columns in the model's monitoring bins, cached
        until the file or the model's set of binned features changes."""
        from .references import count_file

        bins = self.store.buckets.feature_bins(tenant, model)
        try:
            stat = path.stat()
        except OSError as error:
            raise InvalidInputError(
                "reference", f"cannot read the reference file {path}: {error.strerror}"
            ) from None
        key = (tenant, model, str(path), stat.st_mtime_ns, stat.st_size, tuple(sorted(bins)))
        if key not in self._file_references:
            counted = count_file(path, bins)
            for stale in [k for k in self._file_references if k[:3] == key[:3]]:
                del self._file_references[stale]  # one entry per file: the latest
            self._file_references[key] = {**counted.counts, "__rows__": counted.rows}
        return self._file_references[key]

    # --- comparisons ------------------------------------------------------------------

    def compare(
        self,
        tenant: str,
        candidate: str,
        baseline: str,
        *,
        cohort: str | None = None,
        window: str | timedelta | None = None,
        start: str | datetime | None = None,
        end: str | datetime | None = None,
        now: datetime | None = None,
        mode: str = "auto",
        max_degradation: float | None = None,
        min_samples: int | None = None,
        confidence: float | None = None,
        base: str | int = "e",
    ) -> dict[str, Any]:
        """The gate decision for ``candidate`` vs ``baseline`` (``model`` or ``model:version``).

        ``mode``: ``"canary"`` (split traffic, unpaired: Welch's test on the
        merged buckets), ``"shadow"`` (the same requests scored by both,
        paired on request id), or ``"auto"``: shadow for two models, canary
        for two versions of one model.

        Example:
            >>> r = Monitor(EventStore(":memory:")).compare("t", "m:v2", "m:v1", window="1h")
            >>> r["mode"], r["decision"]["status"]
            ('canary', 'inconclusive')
        """
        now = now or datetime.now(UTC)
        span = self.resolve(window=window, start=start, end=end, now=now)
        key = parse_cohort(cohort)
        cand_model, cand_version = _model_version(candidate, "candidate")
        base_model, base_version = _model_version(baseline, "baseline")
        if mode == "auto":
            mode = "canary" if cand_model == base_model else "shadow"
        if mode not in ("canary", "shadow"):
            raise InvalidInputError("mode", "must be auto, canary or shadow", value=mode)
        settings = self.settings
        max_degradation = (
            settings.gate_max_degradation if max_degradation is None else max_degradation
        )
        min_samples = settings.gate_min_samples if min_samples is None else min_samples
        confidence = settings.gate_confidence if confidence is None else confidence
        if mode == "canary":
            sides = []
            for model, version in ((cand_model, cand_version), (base_model, base_version)):
                table = self._scores(tenant, model, version, key, span)
                classes = self._classes(table, model)
                merged = merge_scores(table, np.zeros(table.num_rows, dtype=np.intp), 1)
                sides.append(
                    score_stats(merged, 0, classes) if classes and merged["n"][0] else ScoreStats()
                )
            if min(sides[0].n, sides[1].n) < 2:
                comparison = None
            else:
                comparison = unpaired_comparison(
                    sides[0], sides[1], confidence=confidence, base=base
                )
        else:
            paired = self._paired(
                tenant, (cand_model, cand_version), (base_model, base_version), key, span
            )
            comparison = (
                paired_comparison(paired, confidence=confidence, base=base)
                if paired is not None and paired.n >= 2
                else None
            )
        out: dict[str, Any] = {
            "mode": mode,
            "candidate": candidate,
            "baseline": baseline,
            "cohort": None if key[0] == ALL else f"{key[0]}:{key[1]}",
            "from": _iso(span.start),
            "to": _iso(span.end),
        }
        if comparison is None:
            out["decision"] = {
                "status": "inconclusive",
                "reason": "fewer than 2 labelled events on a side",
                "min_samples": min_samples,
            }
            out["comparison"] = None
            return out
        decision = decide(
            comparison,
            max_degradation=max_degradation,
            min_samples=min_samples,
            confidence=confidence,
        )
        data = decision.to_dict()
        out["comparison"] = data.pop("comparison")
        out["decision"] = data
        return out

    def _paired(
        self,
        tenant: str,
        candidate: tuple[str, str | None],
        baseline: tuple[str, str | None],
        cohort: tuple[str, str],
        span: _Range,
    ) -> PairedStats | None:
        """Paired statistics of the requests both models scored and that have a label."""
        with self.store.cursor() as cursor:
            table = queries.shadow_pairs(cursor, tenant, candidate, baseline, span.start, span.end)
        if cohort[0] != ALL and table.num_rows:
            values = [dict(c).get(cohort[0]) for c in table["cohort"].to_pylist()]
            table = table.filter(pa.array([v == cohort[1] for v in values]))
        if not table.num_rows:
            return None
        c_classes = pc.unique(pc.binary_join(table["c_classes"], "\x1f")).to_pylist()
        b_classes = pc.unique(pc.binary_join(table["b_classes"], "\x1f")).to_pylist()
        if len(c_classes) != 1 or c_classes != b_classes:
            raise InvalidInputError(
                "baseline",
                "a shadow comparison needs both models to predict the same class list",
                value={"candidate": c_classes, "baseline": b_classes},
            )
        classes = c_classes[0].split("\x1f")
        k = len(classes)
        labels = np.asarray(table["label"].to_pylist(), dtype=object)
        keep = np.isin(labels, classes)
        cand = pc.list_flatten(table["c_p"]).to_numpy(zero_copy_only=False).reshape(-1, k)[keep]
        base = pc.list_flatten(table["b_p"]).to_numpy(zero_copy_only=False).reshape(-1, k)[keep]
        if not keep.any():
            return None
        stats = PairedStats(classes)
        if k == 2:
            return stats.update(labels[keep], cand[:, 1], base[:, 1])
        return stats.update(labels[keep], cand, base)


def _describe(
    model: str,
    version: str | None,
    cohort: tuple[str, str],
    kind: str,
    span: _Range | None,
    path: Path | None,
    uploaded: Mapping[str, Any] | None = None,
) -> str:
    """One side of a drift comparison in words, for the report's inputs table.

    Example:
        >>> start = datetime(2026, 1, 1, tzinfo=UTC)
        >>> _describe("fraud", "v2", ("region", "eu"), "rolling",
        ...           _Range(start, start + timedelta(hours=1)), None)
        'fraud v2 region:eu, rolling: 2026-01-01T00:00:00Z to 2026-01-01T01:00:00Z'
    """
    if path is not None:
        return f"{model}: file {path}"
    if uploaded is not None:
        return f"{model}: uploaded {uploaded['source']} at {_iso(uploaded['uploaded_at'])}"
    scope = " ".join(
        part
        for part in (model, version, None if cohort[0] == ALL else f"{cohort[0]}:{cohort[1]}")
        if part
    )
    assert span is not None
    start = "the first event" if span.start.year == 1970 else _iso(span.start)
    return f"{scope}, {kind}: {start} to {_iso(span.end)}"


def _model_version(text: str, argument: str) -> tuple[str, str | None]:
    model, sep, version = str(text).partition(":")
    if not model or (sep and not version):
        raise InvalidInputError(argument, "must be model or model:version", value=text)
    return model, version or None


def _grouped(
    spec: FeatureBins,
    reference: NDArray[np.float64],
    current: NDArray[np.float64],
    n_groups: int,
) -> tuple[CategoricalHistogram, CategoricalHistogram]:
    """Reference and current histograms on bins fixed from the reference.

    Numeric monitoring bins are merged into at most ``n_groups`` groups of
    about equal reference mass (quantile bins of the reference, at the
    resolution of the monitoring bins); categories are kept as they are.
    """
    if spec.kind != "numeric":
        labels = list(spec.categories) or ["(none)"]
        return _histogram(labels, reference, len(spec.categories)), _histogram(
            labels, current, len(spec.categories)
        )
    finite_ref = reference[:-1]
    total = finite_ref.sum()
    if total > 0:
        # A bin joins the group of the reference quantile its lower end falls in.
        before = np.concatenate([[0.0], np.cumsum(finite_ref)[:-1]]) / total
        group = np.floor(before * n_groups + 1e-9).clip(0, n_groups - 1).astype(np.intp)
    else:
        group = np.zeros(finite_ref.shape[0], dtype=np.intp)
    _, group = np.unique(group, return_inverse=True)
    n = int(group.max()) + 1
    edges = list(spec.edges)
    labels = []
    for g in range(n):
        members = np.flatnonzero(group == g)
        low = "-inf" if members[0] == 0 else f"{edges[members[0] - 1]:.6g}"
        high = "inf" if members[-1] >= len(edges) else f"{edges[members[-1]]:.6g}"
        labels.append(f"({low}, {high}]")
    merged_ref = np.concatenate(
        [np.bincount(group, weights=finite_ref, minlength=n), reference[-1:]]
    )
    merged_cur = np.concatenate(
        [np.bincount(group, weights=current[:-1], minlength=n), current[-1:]]
    )
    return _histogram(labels, merged_ref, n), _histogram(labels, merged_cur, n)


def _histogram(labels: Sequence[str], counts: NDArray[np.float64], n: int) -> CategoricalHistogram:
    """A categorical histogram from counts laid out as [bins..., (other,) missing]."""
    histogram = CategoricalHistogram(labels)
    histogram.counts = np.asarray(counts[:n], dtype=np.float64).copy()
    if histogram.counts.shape[0] < len(labels):
        histogram.counts = np.zeros(len(labels))
    rest = np.asarray(counts[n:], dtype=np.float64)
    histogram.other = float(rest[0]) if rest.shape[0] == 2 else 0.0
    histogram.missing = float(rest[-1]) if rest.shape[0] else 0.0
    return histogram


def _score_and_label(
    reference: pa.Table, current: pa.Table
) -> dict[str, tuple[CategoricalHistogram, CategoricalHistogram]]:
    """Histograms of the model's score and of the labels, reference and current."""
    out = {}
    labels = [f"[{i / SCORE_BINS:.2f}, {(i + 1) / SCORE_BINS:.2f}]" for i in range(SCORE_BINS)]
    sides = []
    for table in (reference, current):
        merged = merge_scores(table, np.zeros(table.num_rows, dtype=np.intp), 1)
        sides.append(merged)
    if all(m["n_predictions"][0] > 0 for m in sides):
        out["__score__"] = tuple(
            _histogram(labels, np.concatenate([m["score_hist"][0], [0.0]]), SCORE_BINS)
            for m in sides
        )
    ref_classes = Monitor._classes(reference, "reference") if reference.num_rows else None
    cur_classes = Monitor._classes(current, "current") if current.num_rows else None
    if ref_classes and ref_classes == cur_classes and all(m["n"][0] > 0 for m in sides):
        k = len(ref_classes)
        out["__label__"] = tuple(
            _histogram(ref_classes, np.concatenate([m["label_weight"][0][:k], [0.0]]), k)
            for m in sides
        )
    return out
