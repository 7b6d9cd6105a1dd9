"""The ``slos:`` section of the service YAML (and OpenSLO v1 ``SLO`` documents), validated.

Each entry becomes an :class:`~xebench.analysis.slo.SLO`; any mistake is a
:class:`~xebench.errors.ConfigError` whose message names the key path
(``slos[2].objective: ...``), raised when the configuration loads::

    slos:
      - name: fraud-log-loss          # unique
        model: fraud                  # optional: version: v2, cohort: "region:eu"
        sli: log_loss                 # log_loss | ece | brier | skill | label_coverage
                                      # | drift_js (feature: NAME | score)
                                      # | canary_delta (version: CANDIDATE, baseline: V)
                                      # | event_rate (predictions per minute)
        objective: 0.30               # threshold; its direction comes from the registry
        window: 1h                    # the trailing window that judges each minute
        target: 0.99                  # share of judged minutes that must be good
        period: 28d
        min_samples: 200              # fewer labelled events: the minute is excluded
        runbook: https://runbooks.example/fraud
        labels: {team: risk}          # extra alert labels (routing)
        tenant: default
        burn_alerts:                  # default: the SRE workbook's three
          - {severity: page, long: 1h, short: 5m, factor: 14.4}

An entry with ``apiVersion: openslo/v1`` and ``kind: SLO`` is read as an
OpenSLO document (:func:`from_openslo`); ``slo_files:`` lists YAML files of
such documents (several per file, ``---`` separated).

Example:
    >>> [s.name for s in parse_slos([{"name": "a", "model": "m", "sli": "ece",
    ...                               "objective": 0.05}])]
    ['a']
    >>> parse_slos([{"name": "a", "model": "m", "sli": "ece", "objective": 2}])
    Traceback (most recent call last):
    ...
    xebench.errors.ConfigError: slos[0].objective: must be within [0, 1] (ece's range); got 2
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml

from ..analysis.slo import DEFAULT_BURN_ALERTS, SLIS, SLO, BurnAlert
from ..errors import ConfigError, InvalidInputError
from ..metrics.registry import metric
from ..monitor.scope import parse_cohort, parse_duration

__all__ = ["from_openslo", "load_slo_files", "parse_slos"]

_KEYS = {
    "name", "model", "version", "cohort", "sli", "feature", "baseline", "objective", "window",
    "target", "period", "min_samples", "runbook", "labels", "tenant", "burn_alerts",
}  # fmt: skip
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")
_LABEL = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
#: Labels every alert sets itself: an SLO may not override them.
_RESERVED = {"alertname", "slo", "model", "version", "cohort", "severity", "tenant", "sli"}


def _fail(where: str, message: str, value: Any = None) -> ConfigError:
    shown = "" if value is None else f"; got {value!r}"
    return ConfigError(f"{where}: {message}{shown}")


def _text(raw: Mapping[str, Any], key: str, where: str, *, required: bool = False) -> str | None:
    value = raw.get(key)
    if value is None:
        if required:
            raise _fail(f"{where}.{key}", "is required")
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > 256:
        raise _fail(f"{where}.{key}", "must be a non-empty string of at most 256 characters", value)
    return value


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail(where, "must be a number", value)
    number = float(value)
    if not math.isfinite(number):
        raise _fail(where, "must be finite", value)
    return number


def _duration(raw: Mapping[str, Any], key: str, default: timedelta, where: str) -> timedelta:
    if key not in raw:
        return default
    try:
        span = parse_duration(raw[key], key)
    except InvalidInputError as exc:
        raise _fail(f"{where}.{key}", exc.rule, raw[key]) from None
    if span < timedelta(minutes=1) or span.total_seconds() % 60:
        raise _fail(f"{where}.{key}", "must be a whole number of minutes, at least 1m", raw[key])
    if span > timedelta(days=400):
        raise _fail(f"{where}.{key}", "must be at most 400d", raw[key])
    return span


def _burn_alerts(raw: Any, where: str) -> tuple[BurnAlert, ...]:
    if raw is None:
        return DEFAULT_BURN_ALERTS
    if not isinstance(raw, list) or not raw:
        raise _fail(where, "must be a non-empty list of {severity, long, short, factor}", raw)
    out = []
    for i, entry in enumerate(raw):
        here = f"{where}[{i}]"
        if not isinstance(entry, Mapping):
            raise _fail(here, "must be a mapping", entry)
        unknown = set(entry) - {"severity", "long", "short", "factor"}
        if unknown:
            raise _fail(here, f"unknown keys {sorted(unknown)}")
        severity = entry.get("severity")
        if severity not in ("page", "ticket"):
            raise _fail(f"{here}.severity", "must be page or ticket", severity)
        for key in ("long", "short", "factor"):
            if key not in entry:
                raise _fail(f"{here}.{key}", "is required")
        long = _duration(entry, "long", timedelta(0), here)
        short = _duration(entry, "short", timedelta(0), here)
        if short > long:
            raise _fail(f"{here}.short", "must not be longer than long", entry["short"])
        factor = _number(entry["factor"], f"{here}.factor")
        if factor <= 0:
            raise _fail(f"{here}.factor", "must be > 0", entry["factor"])
        out.append(BurnAlert(severity, long, short, factor))
    names = [a.name for a in out]
    if len(set(names)) != len(names):
        raise _fail(where, "has two alerts with the same severity and windows", names)
    return tuple(out)


def parse_slo(raw: Any, where: str) -> SLO:
    """One ``slos:`` entry (xebench's own form) as an :class:`SLO`.

    Example:
        >>> parse_slo({"name": "c", "model": "m", "sli": "label_coverage", "objective": 0.8,
        ...            "window": "6h"}, "slos[0]").window
        datetime.timedelta(seconds=21600)
    """
    if not isinstance(raw, Mapping):
        raise _fail(where, "must be a mapping", raw)
    unknown = set(raw) - _KEYS
    if unknown:
        raise _fail(where, f"unknown keys {sorted(unknown)} (known: {sorted(_KEYS)})")
    name = _text(raw, "name", where, required=True)
    assert name is not None
    if not _NAME.match(name):
        raise _fail(f"{where}.name", "must be letters, digits, '_.:-' (at most 128)", name)
    model = _text(raw, "model", where, required=True)
    assert model is not None
    sli = raw.get("sli")
    if sli not in SLIS:
        raise _fail(f"{where}.sli", f"must be one of {sorted(SLIS)}", sli)
    version = _text(raw, "version", where)
    cohort = _text(raw, "cohort", where)
    if cohort is not None:
        try:
            parse_cohort(cohort)
        except InvalidInputError as exc:
            raise _fail(f"{where}.cohort", exc.rule, cohort) from None
    feature = _text(raw, "feature", where)
    baseline = _text(raw, "baseline", where)
    if sli == "drift_js" and feature is None:
        raise _fail(f"{where}.feature", "is required for drift_js (a feature name or score)")
    if sli != "drift_js" and feature is not None:
        raise _fail(f"{where}.feature", "applies to drift_js only", feature)
    if sli == "canary_delta":
        if version is None or baseline is None:
            raise _fail(
                f"{where}.{'version' if version is None else 'baseline'}",
                "is required for canary_delta (version: the candidate, baseline: its baseline)",
            )
        if version == baseline:
            raise _fail(f"{where}.baseline", "must differ from version", baseline)
    elif baseline is not None:
        raise _fail(f"{where}.baseline", "applies to canary_delta only", baseline)
    if "objective" not in raw:
        raise _fail(f"{where}.objective", "is required")
    objective = _number(raw["objective"], f"{where}.objective")
    entry = metric(SLIS[sli])
    if not entry.low <= objective <= entry.high:
        low, high = (f"{v:g}" for v in (entry.low, entry.high))
        raise _fail(
            f"{where}.objective", f"must be within [{low}, {high}] ({entry.name}'s range)",
            raw["objective"],
        )  # fmt: skip
    target = _number(raw.get("target", 0.99), f"{where}.target")
    if not 0.0 < target < 1.0:
        raise _fail(f"{where}.target", "must be between 0 and 1 (exclusive), e.g. 0.99", target)
    window = _duration(raw, "window", timedelta(hours=1), where)
    period = _duration(raw, "period", timedelta(days=28), where)
    if window > period:
        raise _fail(f"{where}.window", "must not be longer than period", raw.get("window"))
    min_samples = raw.get("min_samples", 200)
    if isinstance(min_samples, bool) or not isinstance(min_samples, int) or min_samples < 1:
        raise _fail(f"{where}.min_samples", "must be an integer >= 1", min_samples)
    if min_samples > 10**12:
        raise _fail(f"{where}.min_samples", "must be at most 1e12", min_samples)
    runbook = _text(raw, "runbook", where)
    if runbook is not None and not re.match(r"^https?://", runbook):
        raise _fail(f"{where}.runbook", "must be an http(s) URL", runbook)
    labels = raw.get("labels") or {}
    if not isinstance(labels, Mapping):
        raise _fail(f"{where}.labels", "must be a mapping of label -> text", labels)
    for key, value in labels.items():
        if not isinstance(key, str) or not _LABEL.match(key) or key in _RESERVED:
            raise _fail(
                f"{where}.labels",
                f"label names match [A-Za-z_][A-Za-z0-9_]*, not {sorted(_RESERVED)}", key,
            )  # fmt: skip
        if not isinstance(value, str):
            raise _fail(f"{where}.labels.{key}", "must be a string", value)
    tenant = _text(raw, "tenant", where) or "default"
    return SLO(
        name=name,
        model=model,
        sli=sli,
        objective=objective,
        version=version,
        cohort=cohort,
        feature=feature,
        baseline=baseline,
        window=window,
        target=target,
        period=period,
        min_samples=min_samples,
        runbook=runbook,
        burn_alerts=_burn_alerts(raw.get("burn_alerts"), f"{where}.burn_alerts"),
        labels=dict(labels),
        tenant=tenant,
    )


def _dig(raw: Any, path: list[str], where: str) -> Any:
    for key in path:
        if not isinstance(raw, Mapping) or key not in raw:
            raise _fail(f"{where}.{'.'.join(path)}", "is required")
        raw = raw[key]
    return raw


def from_openslo(doc: Any, where: str) -> SLO:
    """An OpenSLO v1 ``SLO`` document as an :class:`SLO`.

    ``spec.service`` is the model; the indicator's ``metricSource`` (type
    ``xebench``) carries ``sli`` and optionally ``model``, ``version``,
    ``cohort``, ``feature``, ``baseline``, ``window``, ``min_samples``;
    ``spec.timeWindow[0].duration`` is the period; ``spec.objectives[0]`` has
    ``op`` (which must agree with the metric's direction: ``lte`` for a loss,
    ``gte`` for coverage or skill), ``value`` (the objective) and ``target``
    (or ``targetPercent``); ``metadata.labels`` become alert labels and
    ``metadata.annotations.runbook`` the runbook.

    Example:
        >>> doc = {"apiVersion": "openslo/v1", "kind": "SLO", "metadata": {"name": "ll"},
        ...        "spec": {"service": "fraud", "budgetingMethod": "Timeslices",
        ...                 "timeWindow": [{"duration": "28d", "isRolling": True}],
        ...                 "indicator": {"metadata": {"name": "ll"}, "spec": {
        ...                     "thresholdMetric": {"metricSource": {
        ...                         "type": "xebench", "spec": {"sli": "log_loss"}}}}},
        ...                 "objectives": [{"op": "lte", "value": 0.3, "target": 0.99}]}}
        >>> slo = from_openslo(doc, "slos[0]"); slo.model, slo.objective, slo.period.days
        ('fraud', 0.3, 28)
    """
    if not isinstance(doc, Mapping):
        raise _fail(where, "must be a mapping", doc)
    if doc.get("apiVersion") != "openslo/v1" or doc.get("kind") != "SLO":
        raise _fail(where, "an OpenSLO document needs apiVersion: openslo/v1 and kind: SLO")
    name = _dig(doc, ["metadata", "name"], where)
    spec = _dig(doc, ["spec"], where)
    source = _dig(spec, ["indicator", "spec", "thresholdMetric", "metricSource"], f"{where}.spec")
    if not isinstance(source, Mapping) or source.get("type", "xebench") != "xebench":
        raise _fail(f"{where}.spec.indicator...metricSource.type", "must be xebench", source)
    params = dict(source.get("spec") or {})
    objectives = spec.get("objectives")
    if not isinstance(objectives, list) or len(objectives) != 1:
        raise _fail(f"{where}.spec.objectives", "must hold exactly one objective", objectives)
    objective = objectives[0]
    if not isinstance(objective, Mapping):
        raise _fail(f"{where}.spec.objectives[0]", "must be a mapping", objective)
    entry: dict[str, Any] = {
        "name": name,
        "model": params.pop("model", spec.get("service")),
        "objective": objective.get("value"),
        **params,
    }
    if "target" in objective:
        entry["target"] = objective["target"]
    elif "targetPercent" in objective:
        entry["target"] = _number(objective["targetPercent"], f"{where}.targetPercent") / 100
    windows = spec.get("timeWindow")
    if windows:
        if not isinstance(windows, list) or not isinstance(windows[0], Mapping):
            raise _fail(f"{where}.spec.timeWindow", "must be a list of {duration}", windows)
        entry["period"] = windows[0].get("duration")
    metadata = doc.get("metadata") or {}
    if metadata.get("labels"):
        entry["labels"] = metadata["labels"]
    runbook = (metadata.get("annotations") or {}).get("runbook")
    if runbook:
        entry["runbook"] = runbook
    slo = parse_slo(entry, f"{where}(openslo)")
    op = objective.get("op")
    expected = "lte" if slo.metric.lower_is_better else "gte"
    if op is not None and op not in (expected, expected[:2]):
        raise _fail(
            f"{where}.spec.objectives[0].op",
            f"must be {expected}: lower {slo.sli} is {'better' if expected == 'lte' else 'worse'}",
            op,
        )
    return slo


def parse_slos(raw: Any, where: str = "slos") -> tuple[SLO, ...]:
    """The ``slos:`` list: xebench entries and OpenSLO documents; names must be unique.

    Example:
        >>> parse_slos(None)
        ()
    """
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise _fail(where, "must be a list of SLOs", raw)
    out = []
    for i, entry in enumerate(raw):
        here = f"{where}[{i}]"
        if isinstance(entry, Mapping) and "apiVersion" in entry:
            out.append(from_openslo(entry, here))
        else:
            out.append(parse_slo(entry, here))
    _unique(out, where)
    return tuple(out)


def _unique(slos: list[SLO], where: str) -> None:
    seen: set[str] = set()
    for slo in slos:
        if slo.name in seen:
            raise _fail(where, f"two SLOs are named {slo.name!r}; names must be unique")
        seen.add(slo.name)


def load_slo_files(paths: Any, base: Path | None, where: str = "slo_files") -> tuple[SLO, ...]:
    """SLOs from YAML files of OpenSLO (or xebench) documents, ``---`` separated; relative
    paths are read from ``base`` (the config file's folder).

    Example:
        >>> load_slo_files([], None)
        ()
    """
    if paths is None:
        return ()
    if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
        raise _fail(where, "must be a list of file paths", paths)
    out: list[SLO] = []
    for i, text in enumerate(paths):
        path = Path(text).expanduser()
        if base is not None and not path.is_absolute():
            path = base / path
        try:
            docs = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise _fail(f"{where}[{i}]", f"cannot read {path}: {exc}") from None
        out += parse_slos(docs, f"{where}[{i}]({path.name})")
    return tuple(out)
