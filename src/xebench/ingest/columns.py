"""File columns to event fields: the column mapping of ``xebench ingest``.

:class:`PredictionColumns` and :class:`LabelColumns` hold the options (which
column is the request id, the model, the probabilities...); for each file
they make a :class:`Plan` (column -> field, checked against the file's
columns) and turn each chunk's rows into event dicts, exactly as a client
would send them over HTTP, with the problems of rows that cannot even be
events (a missing id, a naive timestamp). The rules are in
:mod:`xebench.ingest.files`.

Example:
    >>> import pyarrow as pa
    >>> columns = LabelColumns(model="fraud")
    >>> table = pa.table({"request_id": ["r1", ""], "label": [1, 0]})
    >>> columns.events(table, columns.plan(table.column_names, "labels.csv"))
    ([{'request_id': 'r1', 'model': 'fraud', 'label': 1}, {'model': 'fraud', 'label': 0}], \
{1: ('/request_id', 'request_id is missing (empty or null)')})
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, tzinfo
from datetime import time as clock_time
from decimal import Decimal
from typing import Any

import pyarrow as pa

from .._validation import is_missing
from ..errors import DataError
from ..io import readers as _io
from .targets import Problems

__all__ = ["LabelColumns", "Plan", "PredictionColumns"]

_NAME_RULE = "must be 1-128 letters, digits or . _ - : / @ + (no spaces, quotes or semicolons)"


class PredictionColumns:
    """The column mapping of prediction files (see :func:`xebench.ingest.files.import_predictions`).

    The options are checked here, before any file is read.

    Example:
        >>> import pyarrow as pa
        >>> columns = PredictionColumns(model="fraud", prob="p", cohorts=["region"])
        >>> table = pa.table({"request_id": ["r1"], "p": [0.9], "region": ["eu"]})
        >>> columns.events(table, columns.plan(table.column_names, "preds.csv"))
        ([{'request_id': 'r1', 'model': 'fraud', 'probabilities': 0.9, \
'cohort': {'region': 'eu'}}], {})
    """

    def __init__(
        self,
        *,
        request_id: str = "request_id",
        model: str | None = None,
        model_col: str | None = None,
        version: str | None = None,
        version_col: str | None = None,
        prob: str = "probabilities",
        classes: Sequence[Any] | None = None,
        timestamp: str | None = None,
        timezone: str | tzinfo | None = None,
        cohorts: Sequence[str] = (),
        features: Sequence[str] = (),
        weight: str | None = None,
    ) -> None:
        self.zone = _timezone(timezone)
        _check_name(model, "--model")
        _check_name(version, "--version", empty=True)
        if version is not None and version_col is not None:
            raise DataError("version", "give --version NAME or --version-col COLUMN, not both")
        self.cohort_pairs = _keyed(cohorts, "--cohort")
        self.feature_pairs = _keyed(features, "--feature")
        self.class_list = list(classes) if classes is not None else None
        self.request_id, self.prob, self.timestamp = request_id, prob, timestamp
        self.model, self.model_col = model, model_col
        self.version, self.version_col = version, version_col
        self.weight = weight

    def plan(self, names: Sequence[str], source: str) -> Plan:
        """Which column feeds which field in the file ``source`` with columns ``names``."""
        fields = {"request_id": self.request_id, "probabilities": self.prob}
        model_column = _model_column(names, self.model, self.model_col, source, required=True)
        if model_column:
            fields["model"] = model_column
        if self.version_col is not None:
            fields["version"] = self.version_col
        elif self.version is None and "version" in names:
            fields["version"] = "version"
        if self.timestamp is not None:
            fields["timestamp"] = self.timestamp
        elif "timestamp" in names:
            fields["timestamp"] = "timestamp"
        if self.weight is not None:  # never guessed: a column "weight" may be a feature
            fields["weight"] = self.weight
        plan = Plan(fields, self.cohort_pairs, self.feature_pairs, {"classes": "--classes"})
        _require(names, plan.columns, source)
        return plan

    def events(self, table: pa.Table, plan: Plan) -> tuple[list[dict[str, Any]], Problems]:
        """One chunk's rows as event dicts, and the problems of rows that cannot be events."""
        n, f = table.num_rows, plan.fields
        problems: Problems = {}
        ids = _values(table[f["request_id"]], _text)
        models = _values(table[f["model"]], _text) if "model" in f else [self.model] * n
        versions = _values(table[f["version"]], _text) if "version" in f else None
        probs = _pylist(table[f["probabilities"]])
        times = _pylist(table[f["timestamp"]]) if "timestamp" in f else None
        weights = _pylist(table[f["weight"]]) if "weight" in f else None
        cohort_values = [(key, _values(table[column], _scalar)) for key, column in plan.cohorts]
        feature_values = [(key, _values(table[col], _feature)) for key, col in plan.features]
        events = []
        for i in range(n):
            event: dict[str, Any] = {}
            for name, value in (("request_id", ids[i]), ("model", models[i])):
                if is_missing(value):
                    problems.setdefault(i, (f"/{name}", f"{name} is missing (empty or null)"))
                else:
                    event[name] = value
            if versions is not None:
                event["version"] = "" if is_missing(versions[i]) else versions[i]
            elif self.version is not None:
                event["version"] = self.version
            value, problem = _probabilities(probs[i])
            event["probabilities"] = value
            if problem:
                problems.setdefault(i, ("/probabilities", problem))
            if self.class_list is not None:
                event["classes"] = self.class_list
            if times is not None and not is_missing(times[i]):
                value, problem = _timestamp(times[i], self.zone)
                event["timestamp"] = value
                if problem:
                    problems.setdefault(i, ("/timestamp", problem))
            if weights is not None:
                value, problem = _weight(weights[i])
                event["weight"] = value
                if problem:
                    problems.setdefault(i, ("/weight", problem))
            cohort: dict[str, Any] = {}
            for key, values in cohort_values:
                value = values[i]
                if isinstance(value, dict):
                    cohort.update((k, _scalar(v)) for k, v in value.items() if not is_missing(v))
                elif not is_missing(value):
                    cohort[key] = value
            if cohort:
                event["cohort"] = cohort
            feats: dict[str, Any] = {}
            for key, values in feature_values:
                value = values[i]
                if isinstance(value, dict):
                    feats.update((k, _feature(v)) for k, v in value.items())
                else:
                    feats[key] = value
            if feats:
                event["features"] = feats
            events.append(event)
        return events, problems


class LabelColumns:
    """The column mapping of label files (see :func:`xebench.ingest.files.import_labels`).

    Example:
        >>> import pyarrow as pa
        >>> columns = LabelColumns()
        >>> table = pa.table({"request_id": ["r1"], "label": ["yes"], "model": [""]})
        >>> columns.events(table, columns.plan(table.column_names, "labels.csv"))
        ([{'request_id': 'r1', 'label': 'yes'}], {})
    """

    def __init__(
        self,
        *,
        request_id: str = "request_id",
        label: str = "label",
        model: str | None = None,
        model_col: str | None = None,
        timestamp: str | None = None,
        timezone: str | tzinfo | None = None,
    ) -> None:
        self.zone = _timezone(timezone)
        _check_name(model, "--model")
        self.request_id, self.label, self.timestamp = request_id, label, timestamp
        self.model, self.model_col = model, model_col

    def plan(self, names: Sequence[str], source: str) -> Plan:
        """Which column feeds which field in the file ``source`` with columns ``names``."""
        fields = {"request_id": self.request_id, "label": self.label}
        model_column = _model_column(names, self.model, self.model_col, source, required=False)
        if model_column:
            fields["model"] = model_column
        if self.timestamp is not None:
            fields["timestamp"] = self.timestamp
        elif "timestamp" in names:
            fields["timestamp"] = "timestamp"
        plan = Plan(fields)
        _require(names, plan.columns, source)
        return plan

    def events(self, table: pa.Table, plan: Plan) -> tuple[list[dict[str, Any]], Problems]:
        """One chunk's rows as event dicts, and the problems of rows that cannot be events."""
        n, f = table.num_rows, plan.fields
        problems: Problems = {}
        ids = _values(table[f["request_id"]], _text)
        labels = _values(table[f["label"]], _scalar)
        models = _values(table[f["model"]], _text) if "model" in f else [self.model] * n
        times = _pylist(table[f["timestamp"]]) if "timestamp" in f else None
        events = []
        for i in range(n):
            event: dict[str, Any] = {}
            if is_missing(ids[i]):
                problems.setdefault(i, ("/request_id", "request_id is missing (empty or null)"))
            else:
                event["request_id"] = ids[i]
            if not is_missing(models[i]) and models[i] != "":
                event["model"] = models[i]
            if is_missing(labels[i]):
                problems.setdefault(i, ("/label", "label is missing (empty or null)"))
            else:
                event["label"] = labels[i]
            if times is not None and not is_missing(times[i]):
                value, problem = _timestamp(times[i], self.zone)
                event["timestamp"] = value
                if problem:
                    problems.setdefault(i, ("/timestamp", problem))
            events.append(event)
        return events, problems


# --- column values -> event values --------------------------------------------------------


def _pylist(column: pa.ChunkedArray) -> list[Any]:
    kind = column.type
    if pa.types.is_dictionary(kind):
        column = column.cast(kind.value_type)
        kind = column.type
    if pa.types.is_timestamp(kind):  # microseconds: no pandas.Timestamp for nanoseconds
        column = column.cast(pa.timestamp("us", "UTC" if kind.tz else None), safe=False)
    values = column.to_pylist()
    if pa.types.is_map(kind):
        values = [None if v is None else dict(v) for v in values]
    return values


def _values(column: pa.ChunkedArray, convert: Callable[[Any], Any]) -> list[Any]:
    """``convert`` applied to a column's values, skipping types it leaves unchanged."""
    values = _pylist(column)
    kind = column.type
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return [None if v == "" else v for v in values] if convert is _feature else values
    if convert is _feature and pa.types.is_floating(kind):
        return [None if v != v else v for v in values]  # NaN: a missing value
    if convert is not _text and (pa.types.is_integer(kind) or pa.types.is_boolean(kind)):
        return values
    return [convert(v) for v in values]


def _text(value: Any) -> Any:
    """Ids, model and version names: numbers as their decimal text."""
    if isinstance(value, bool):
        return value  # refused by validation: a name is text
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (date, clock_time)):
        return value.isoformat()
    return value


def _scalar(value: Any) -> Any:
    """Cohort, feature and label values: integral floats as integers, times as text."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, (date, clock_time)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def _feature(value: Any) -> Any:
    if is_missing(value):
        return None
    if isinstance(value, (date, clock_time)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return value


def _probabilities(value: Any) -> tuple[Any, str | None]:
    """(value for the event, problem or None); validation checks ranges and sums."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None, "probability is missing (empty or null)"
    if isinstance(value, str):
        text = value.strip()
        if text[:1] in ("[", "{"):
            try:
                return json.loads(text), None
            except json.JSONDecodeError as error:
                kind = "array" if text[0] == "[" else "object"
                return value, f"is not a valid JSON {kind} ({error.msg}); got {value[:60]!r}"
        try:
            return float(text), None
        except ValueError:
            return value, None  # validation: "probabilities must be numbers; got '...'"
    if isinstance(value, dict):  # struct column: absent keys of a row are nulls
        return {k: v for k, v in value.items() if v is not None}, None
    if isinstance(value, Decimal):
        return float(value), None
    return value, None


def _weight(value: Any) -> tuple[Any, str | None]:
    """(value for the event, problem or None): a weight column's value, numeric text as
    its number (a CSV column with one bad cell is text); validation checks the range."""
    if is_missing(value) or (isinstance(value, str) and not value.strip()):
        return None, "weight is missing (empty or null); give every row of --weight a weight"
    if isinstance(value, Decimal):
        return float(value), None
    if isinstance(value, str):
        try:
            return float(value.strip()), None
        except ValueError:
            return value, None  # validation: "must be a number ...; got '...'"
    return value, None


def _timezone(zone: str | tzinfo | None) -> tzinfo | None:
    if zone is None or isinstance(zone, tzinfo):
        return zone
    if zone.upper() in ("UTC", "Z", "GMT"):
        return UTC
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise DataError(
            "timezone", "is not a known time zone (use UTC or a name like Europe/Paris)",
            value=zone,
        ) from None  # fmt: skip


def _naive(text: str) -> str:
    return (
        f"timestamp {text!r} has no time zone; write times with an offset "
        "(2026-01-01T00:00:00Z) or pass --timezone UTC (or the zone the file's times are in)"
    )


def _timestamp(value: Any, zone: tzinfo | None) -> tuple[Any, str | None]:
    """RFC 3339 text for the event, or (value, problem)."""
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            return value, None  # validation names the problem
        value = parsed
    elif isinstance(value, date) and not isinstance(value, datetime):
        value = datetime.combine(value, clock_time())
    if isinstance(value, datetime):
        if value.tzinfo is None:
            if zone is None:
                return value.isoformat(), _naive(value.isoformat(sep=" "))
            value = value.replace(tzinfo=zone)
        return value.isoformat(), None
    return value, None


# --- column plans -------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """Which column feeds which event field, for one file.

    Example:
        >>> plan = Plan({"request_id": "id", "probabilities": "p"}, cohorts=(("region", "r"),))
        >>> plan.columns, plan.column_of("/cohort/region"), plan.column_of("/probabilities/0")
        (['id', 'p', 'r'], 'r', 'p')
    """

    fields: dict[str, str]  # event field -> column
    cohorts: tuple[tuple[str, str], ...] = ()  # (key, column)
    features: tuple[tuple[str, str], ...] = ()
    options: dict[str, str] = field(default_factory=dict)  # event field -> option (--classes)

    @property
    def columns(self) -> list[str]:
        """The file columns to read, each once."""
        names = [*self.fields.values(), *(c for _, c in self.cohorts)]
        return list(dict.fromkeys([*names, *(c for _, c in self.features)]))

    def text_columns(self) -> list[str]:
        """Columns read as text from CSV (ids, names, cohorts: "007" stays "007")."""
        text = [self.fields[k] for k in ("request_id", "model", "version") if k in self.fields]
        return list(dict.fromkeys([*text, *(c for _, c in self.cohorts)]))

    def column_of(self, pointer: str | None) -> str | None:
        """The column (or option) an event field's JSON pointer came from."""
        parts = (pointer or "").strip("/").split("/")
        if parts[0] in ("cohort", "features") and len(parts) > 1:
            pairs = self.cohorts if parts[0] == "cohort" else self.features
            return next((column for key, column in pairs if key == parts[1]), None)
        return self.fields.get(parts[0]) or self.options.get(parts[0])


def _keyed(specs: Sequence[str], what: str) -> tuple[tuple[str, str], ...]:
    pairs = []
    for spec in specs:
        key, sep, column = spec.partition("=")
        if not sep:
            key, column = spec, spec
        if not key or not column:
            raise DataError(what, "give COLUMN or KEY=COLUMN", value=spec)
        pairs.append((key, column))
    return tuple(pairs)


def _check_name(value: str | None, option: str, *, empty: bool = False) -> None:
    if value is None or (empty and value == ""):
        return
    if not re.fullmatch(r"[\w.\-:/@+]{1,128}", value):
        raise DataError(option, _NAME_RULE, value=value)


def _require(names: Sequence[str], columns: Iterable[str], source: str) -> None:
    _io.check_columns(names, list(dict.fromkeys(columns)), source)


def _model_column(
    names: Sequence[str], model: str | None, model_col: str | None, source: str, required: bool
) -> str | None:
    if model is not None and model_col is not None:
        raise DataError("model", "give --model NAME or --model-col COLUMN, not both")
    if model is not None:
        return None
    if model_col is not None:
        return model_col
    if "model" in names:
        return "model"
    if required:
        raise DataError(
            "columns",
            "no column 'model': name the model with --model NAME (or its column with "
            f"--model-col COLUMN); available columns: {', '.join(names)}",
            source=source,
        )
    return None
