"""One event: its pydantic models and the rules of each field, with their messages.

The models (:class:`PredictionEvent`, :class:`LabelEvent`) check the
structure, names and scalar values in pydantic's Rust core; the rules that
need exact messages and JSON-pointer paths (:func:`check_probabilities`,
:func:`check_timestamp`) run after parsing and raise
:class:`~xebench.errors.InvalidInputError` whose ``argument`` is the field's
JSON pointer within the event (``"/probabilities/1"``) and ``rule`` the message.
:func:`field_message` words a pydantic error the way the service reports it.
The batch parsers (:mod:`~xebench.ingest.predictions`,
:mod:`~xebench.ingest.labels`) and :func:`~xebench.ingest.events.check_event`
all apply these same rules, so an event is judged alike wherever it comes from.

Example:
    >>> check_probabilities([0.25, 0.75], ["cat", "dog"], Limits())
    (['cat', 'dog'], [0.25, 0.75])
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    WithJsonSchema,
)

from .._validation import ROW_SUM_TOLERANCE
from ..errors import InvalidInputError
from .policy import Limits

__all__ = [
    "EARLIEST",
    "INT64_MAX",
    "INT64_MIN",
    "MAX_FEATURE_TEXT",
    "MAX_WEIGHT",
    "MIN_WEIGHT",
    "LabelEvent",
    "PredictionEvent",
    "check_integer",
    "check_probabilities",
    "check_text",
    "check_timestamp",
    "check_weight",
    "error_path",
    "field_message",
    "label_text",
]

_NAME = r"^[\w.\-:/@+]{1,128}$"


_KEY = r"^[\w.\-:/@+]{1,64}$"


# Printable: no C0 or C1 control character (NUL included), no bidirectional
# formatting character (U+200E, U+200F, U+202A-U+202E, U+2066-U+2069: they make a
# log line or a dashboard label read other than it is) and no lone surrogate.
_UNPRINTABLE = r"\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069"


# Checked in pydantic's Rust core (whose strings cannot hold a lone surrogate).
_PRINTABLE = re.compile(rf"^[^{_UNPRINTABLE}]{{1,256}}$")


# Checked in Python, where a string can hold a lone surrogate (from a file, or a dict).
_TEXT = re.compile(rf"[{_UNPRINTABLE}\ud800-\udfff]")


#: Integers are refused outside the signed 64-bit range (DuckDB's BIGINT, Arrow's int64).
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


#: The longest string feature value (cohort values, labels and classes: 256).
MAX_FEATURE_TEXT = 1024


# --- the event models ------------------------------------------------------------


def check_text(value: str, what: str, longest: int, *, empty: bool = False) -> str:
    """``value`` unless it is too long, empty (unless ``empty``) or not printable.

    Raises :class:`~xebench.errors.InvalidInputError` (``argument``: ``what``).

    Example:
        >>> check_text("eu", "cohort value", 256)
        'eu'
        >>> check_text("a\u202eb", "label", 256)
        Traceback (most recent call last):
        ...
        xebench.errors.InvalidInputError: label: must be 1-256 printable characters \
(no control, bidirectional-override or lone surrogate characters)
    """
    if len(value) > longest or (not value and not empty) or _TEXT.search(value):
        raise InvalidInputError(
            what,
            f"must be {0 if empty else 1}-{longest} printable characters (no control, "
            "bidirectional-override or lone surrogate characters)",
        )
    return value


def check_integer(value: int, what: str) -> int:
    """``value`` unless it is outside the signed 64-bit range.

    Example:
        >>> check_integer(-3, "label")
        -3
        >>> check_integer(10**20, "feature value")
        Traceback (most recent call last):
        ...
        xebench.errors.InvalidInputError: feature value: integers must be within the signed \
64-bit range [-2**63, 2**63 - 1]
    """
    if not INT64_MIN <= value <= INT64_MAX:
        raise InvalidInputError(
            what, "integers must be within the signed 64-bit range [-2**63, 2**63 - 1]"
        )
    return value


def _digits(value: int) -> int:
    # str() of an integer over 4,300 digits raises ValueError (CPython's limit): count bits.
    size = abs(value)
    return len(str(size)) if size.bit_length() < 10_000 else int(size.bit_length() * 0.30103) + 1


def _scalar_feature(value: Any) -> Any:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return check_text(value, "feature value", MAX_FEATURE_TEXT, empty=True)
    if isinstance(value, int):
        return check_integer(value, "feature value")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidInputError(
                "feature value", "must be finite (NaN and infinity are refused)"
            )
        return value + 0.0  # -0.0 is stored as 0.0 (one number, one payload hash)
    raise InvalidInputError(
        "feature value", "must be a string, a number, a boolean or null (no nesting)"
    )


def _cohort_value(value: Any) -> str:
    if isinstance(value, str):
        return check_text(value, "cohort value", 256, empty=True)
    if isinstance(value, bool):
        return label_text(value)
    if isinstance(value, int):
        return label_text(check_integer(value, "cohort value"))
    raise InvalidInputError("cohort value", "must be a string, an integer or a boolean")


# What the OpenAPI document says of the values checked by hand (the checks say more).
_INTEGER = {"type": "integer", "minimum": -(2**63), "maximum": 2**63 - 1}
_LABEL_SCHEMA = {
    "oneOf": [{"type": "string", "minLength": 1, "maxLength": 256}, _INTEGER, {"type": "boolean"}]
}
_P = {"type": "number", "minimum": 0, "maximum": 1}
_PROBABILITIES_SCHEMA = {
    "description": "P(class 1); or one probability per class (summing to 1 within 1e-6), "
    "as an array (named by classes) or an object {class: p}.",
    "oneOf": [
        _P,
        {"type": "array", "items": _P, "minItems": 2, "maxItems": 10_000},
        {"type": "object", "additionalProperties": _P, "minProperties": 2},
    ],
}
_COHORT_VALUE_SCHEMA = {
    "oneOf": [{"type": "string", "maxLength": 256}, _INTEGER, {"type": "boolean"}]
}
_FEATURE_SCHEMA = {
    "oneOf": [
        {"type": "string", "maxLength": MAX_FEATURE_TEXT},
        {"type": "number"},
        {"type": "boolean"},
        {"type": "null"},
    ]
}


def _time_text(value: Any) -> Any:
    # pydantic would read a number as Unix seconds; the contract says RFC 3339 text.
    if isinstance(value, (int, float)):
        raise InvalidInputError(
            "timestamp", "must be an RFC 3339 time such as 2026-11-25T10:00:00Z, not a number"
        )
    return value


#: An event time: RFC 3339 text with an offset (or, from a file, a datetime).
Timestamp = Annotated[AwareDatetime, BeforeValidator(_time_text)]


Name = Annotated[str, Field(strict=True, pattern=_NAME)]


Key = Annotated[str, Field(pattern=_KEY)]


# A pattern, not a Python validator: checked in Rust, it costs nothing per event.
RequestId = Annotated[str, Field(strict=True, pattern=_PRINTABLE.pattern)]


def _label(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value != "":
        return check_text(value, "label", 256)
    if isinstance(value, int):
        return check_integer(value, "label")
    raise InvalidInputError("label", "must be a non-empty string, an integer or a boolean")


Label = Annotated[Any, AfterValidator(_label), WithJsonSchema(_LABEL_SCHEMA)]

#: A model version ("" when the event names none).
Version = Annotated[str, Field(strict=True, pattern=r"^[\w.\-:/@+]{0,128}$")]
#: A cohort value (text, a number or a boolean; stored as text).
CohortValue = Annotated[Any, AfterValidator(_cohort_value), WithJsonSchema(_COHORT_VALUE_SCHEMA)]
#: A feature value: a scalar (text, a number, a boolean or null).
FeatureValue = Annotated[Any, AfterValidator(_scalar_feature), WithJsonSchema(_FEATURE_SCHEMA)]


#: The range of a prediction's ``weight``: wide enough for any business value (a
#: transaction's amount in cents), narrow enough that a window's sum of squared
#: weights (its effective sample size) stays finite and exact to float precision.
MIN_WEIGHT, MAX_WEIGHT = 1e-12, 1e12


def check_weight(value: Any) -> float:
    """A prediction's ``weight`` as a float, unless it is not a number in
    [:data:`MIN_WEIGHT`, :data:`MAX_WEIGHT`] (booleans and numeric strings are not numbers).

    Raises :class:`~xebench.errors.InvalidInputError` (``argument``: ``"weight"``).

    Example:
        >>> check_weight(2), check_weight(0.5)
        (2.0, 0.5)
        >>> check_weight(0)
        Traceback (most recent call last):
        ...
        xebench.errors.InvalidInputError: weight: must be a finite number in [1e-12, 1e12] \
(> 0); got 0
        >>> check_weight(True)
        Traceback (most recent call last):
        ...
        xebench.errors.InvalidInputError: weight: must be a number (omit it for 1; booleans, \
strings and null are not numbers); got True
    """
    rule = _weight_rule(value)
    if rule is not None:
        raise InvalidInputError("weight", f"{rule}; got {_shown(value)}")
    return float(value)


def _weight_rule(value: Any) -> str | None:
    """The rule ``value`` breaks as a weight, or None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "must be a number (omit it for 1; booleans, strings and null are not numbers)"
    # Compared before float(): a 400-digit integer overflows a float; NaN fails both.
    if not MIN_WEIGHT <= value <= MAX_WEIGHT:
        return "must be a finite number in [1e-12, 1e12] (> 0)"
    return None


def _weight(value: Any) -> float:
    rule = _weight_rule(value)
    if rule is not None:  # pydantic words it: the rule, then the value
        raise ValueError(rule)
    return float(value)


_WEIGHT_SCHEMA = {
    "description": "The event's business weight in every window statistic (default 1).",
    "type": "number",
    "minimum": MIN_WEIGHT,
    "maximum": MAX_WEIGHT,
}


class PredictionEvent(BaseModel):
    """One prediction as sent by a client (structure only; see :func:`parse_predictions`).

    Example:
        >>> PredictionEvent(request_id="r1", model="m", probabilities=0.3).version
        ''
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    request_id: RequestId
    model: Name
    version: Version = ""
    timestamp: Timestamp | None = None
    # Checked by hand after parsing, for exact messages and JSON-pointer paths.
    probabilities: Annotated[Any, WithJsonSchema(_PROBABILITIES_SCHEMA)]
    classes: list[Label] | None = None
    cohort: dict[Key, CohortValue] = Field(default_factory=dict, max_length=32)
    features: dict[Key, FeatureValue] = Field(default_factory=dict, max_length=256)
    #: The event's business weight in every window statistic (> 0; default 1). Checked
    #: by hand (booleans and numeric strings are refused); the schema says what passes.
    weight: Annotated[Any, AfterValidator(_weight), WithJsonSchema(_WEIGHT_SCHEMA)] = 1.0

    def members(self) -> int:
        """How many object members (keys) the event had as sent: the event's own, its
        cohort's, its features' and its probability map's. A JSON text with more keys
        than that repeated one (see :func:`xebench.ingest.batch.duplicate_keys`).

        Example:
            >>> PredictionEvent(request_id="r", model="m", probabilities={"a": 1, "b": 0},
            ...                 features={"x": 1}).members()
            7
        """
        mapping = self.probabilities if isinstance(self.probabilities, dict) else ()
        return len(self.model_fields_set) + len(self.cohort) + len(self.features) + len(mapping)


class LabelEvent(BaseModel):
    """One observed outcome; ``model`` omitted means every model that scored the request.

    Example:
        >>> LabelEvent(request_id="r1", label=True).model is None
        True
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    request_id: RequestId
    model: Name | None = None
    label: Label
    timestamp: Timestamp | None = None
    #: True: replaces the request's stored label of another value (a chargeback
    #: reverses a fraud label); without it, a different label is a 409.
    correction: StrictBool = False

    def members(self) -> int:
        """How many object members (keys) the event had as sent.

        Example:
            >>> LabelEvent(request_id="r1", label=True).members()
            2
        """
        return len(self.model_fields_set)


# --- messages -----------------------------------------------------------------------


def error_path(loc: Sequence[Any]) -> str:
    """A pydantic error location as JSON-pointer tokens joined by ``/`` (no leading slash).

    A lone surrogate in a key (which no UTF-8 answer can carry) is written as its
    escape, ``\\ud800``.

    Example:
        >>> error_path(("features", "a/b~c", 0))
        'features/a~1b~0c/0'
        >>> print(error_path(("features", chr(0xD800))))
        features/\\ud800
    """
    path = "/".join(str(part).replace("~", "~0").replace("/", "~1") for part in loc)
    return path if path.isascii() else path.encode("utf-8", "backslashreplace").decode()


def field_message(error: Mapping[str, Any]) -> str:
    """The service's message for one pydantic error of an event (its rule, then the value).

    Example:
        >>> from pydantic import ValidationError
        >>> try:
        ...     LabelEvent.model_validate({"request_id": "r1", "label": True, "model": "a b"})
        ... except ValidationError as error:
        ...     print(field_message(error.errors()[0]))
        must be 1-128 letters, digits or . _ - : / @ + (no spaces, quotes or semicolons)
    """
    message = str(error["msg"])
    if error["type"] == "extra_forbidden":
        return "unknown field"
    if error["type"] == "string_pattern_mismatch":
        pattern = error.get("ctx", {}).get("pattern")
        if pattern == _PRINTABLE.pattern:
            message = (
                "must be 1-256 printable characters (no control, bidirectional-override "
                "or lone surrogate characters)"
            )
        else:
            size = {_NAME: "1-128", _KEY: "1-64"}.get(pattern, "0-128")
            return (
                f"must be {size} letters, digits or . _ - : / @ + (no spaces, quotes or semicolons)"
            )
    if message.startswith("Value error, "):
        message = message[len("Value error, ") :]
    if "input" in error and error["type"] not in ("missing",):
        value = error["input"]
        if isinstance(value, (str, int, float, bool)) or value is None:
            message += f"; got {_shown(value)}"
    return message


# --- the rules checked after parsing ------------------------------------------------


def label_text(value: Any) -> str:
    """The stored text of a label or class: booleans as ``"1"``/``"0"``, integers in decimal.

    Example:
        >>> label_text(True), label_text(2), label_text(1.0), label_text("cat")
        ('1', '2', '1', 'cat')
    """
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _probability(value: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidInputError(field, f"probabilities must be numbers; got {_shown(value)}")
    if isinstance(value, int):  # before float(): a 400-digit integer overflows a float
        if value not in (0, 1):
            raise InvalidInputError(field, f"probabilities must be in [0, 1]; got {_shown(value)}")
        return float(value)
    value += 0.0  # -0.0 is 0.0
    if not math.isfinite(value):
        raise InvalidInputError(
            field, f"probabilities must be finite (NaN and infinity are refused); got {value!r}"
        )
    if not 0.0 <= value <= 1.0:
        raise InvalidInputError(field, f"probabilities must be in [0, 1]; got {value!r}")
    return value


def _shown(value: Any) -> str:
    """``repr(value)`` cut to 60 characters (an integer of any size, a string of 1 MB)."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**50:
        return f"an integer of {_digits(value)} digits"
    text = repr(value) if not isinstance(value, (str, list, dict)) else repr(value)[:61]
    return text if len(text) <= 60 else text[:57] + "..."


def check_probabilities(
    raw: Any, classes: list[Any] | None, limits: Limits
) -> tuple[list[str], list[float]]:
    """Classes (text) and the probability vector of one event's ``probabilities`` and ``classes``.

    Raises :class:`~xebench.errors.InvalidInputError` (``argument``: the
    field's JSON pointer within the event) for a value that breaks the rules.

    Example:
        >>> check_probabilities({"cat": 0.25, "dog": 0.75}, None, Limits())
        (['cat', 'dog'], [0.25, 0.75])
        >>> try:
        ...     check_probabilities([0.5, 0.6], None, Limits())
        ... except InvalidInputError as error:
        ...     print(error.argument, "|", error.rule)
        /probabilities | probabilities must sum to 1 within 1e-06; sum is 1.1
    """
    if isinstance(raw, Mapping):
        if classes is not None:
            raise InvalidInputError("/classes", "omit classes when probabilities is an object")
        names, values = list(raw.keys()), list(raw.values())
        fields = [f"/probabilities/{error_path([name])}" for name in names]
        for name, where in zip(names, fields, strict=True):
            _class_name(name, where)
    elif isinstance(raw, list):
        names, values = classes, raw
        fields = [f"/probabilities/{i}" for i in range(len(raw))]
        if len(raw) < 2:
            raise InvalidInputError(
                "/probabilities", "a probability vector needs at least 2 classes"
            )
    else:
        p = _probability(raw, "/probabilities")
        if classes is not None and len(classes) != 2:
            raise InvalidInputError(
                "/classes", f"a single probability needs 2 classes; got {len(classes)}"
            )
        names = classes if classes is not None else ["0", "1"]
        texts = [label_text(c) for c in names]
        if len(set(texts)) != 2:
            raise InvalidInputError("/classes", f"classes must be distinct; got {texts!r}")
        return texts, [1.0 - p, p]
    if len(values) > limits.max_classes:
        raise InvalidInputError("/probabilities", f"at most {limits.max_classes} classes")
    probs = [_probability(v, f) for v, f in zip(values, fields, strict=True)]
    total = math.fsum(probs)
    if not abs(total - 1.0) <= ROW_SUM_TOLERANCE:
        raise InvalidInputError(
            "/probabilities",
            f"probabilities must sum to 1 within {ROW_SUM_TOLERANCE:g}; sum is {total!r}",
        )
    if names is None:
        texts = [str(i) for i in range(len(probs))]
    else:
        if len(names) != len(probs):
            raise InvalidInputError(
                "/probabilities",
                f"has {len(probs)} values but classes has {len(names)}: one probability per class",
            )
        texts = [label_text(c) for c in names]
        if len(set(texts)) != len(texts):
            raise InvalidInputError("/classes", "classes must be distinct")
    return texts, probs


def _class_name(name: str, where: str) -> None:
    try:
        check_text(name, "class", 256)
    except InvalidInputError as error:
        raise InvalidInputError(where, f"a class name {error.rule}; got {_shown(name)}") from None


#: The earliest event time accepted: the Unix epoch (docs/service.md, "Timestamps").
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)


_EPOCH = EARLIEST


_MICROSECOND = timedelta(microseconds=1)


def check_timestamp(
    timestamp: datetime | None, now: datetime, limits: Limits
) -> tuple[datetime, int | None]:
    """The event time in UTC and, for the payload hash, the microseconds sent (None: not sent).

    Raises :class:`~xebench.errors.InvalidInputError` (``argument``
    ``"/timestamp"``) for a time more than ``limits.max_future`` after ``now``
    or before :data:`EARLIEST` (1970-01-01T00:00:00Z).

    Example:
        >>> now = datetime(2026, 1, 1, tzinfo=UTC)
        >>> check_timestamp(None, now, Limits()) == (now, None)
        True
        >>> check_timestamp(datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC), now, Limits())[1]
        1000000
        >>> check_timestamp(datetime.fromisoformat("0001-01-01T00:00:00+01:00"), now, Limits())
        Traceback (most recent call last):
        ...
        xebench.errors.InvalidInputError: /timestamp: timestamp 0001-01-01T00:00:00+01:00 is \
before 1970-01-01T00:00:00+00:00: event times start at the Unix epoch
    """
    if timestamp is None:
        return now, None
    # Aware comparisons cannot overflow; astimezone can (year 1 at +01:00 is year 0 in
    # UTC, 9999-12-31T23:59:59-01:00 is year 10000).
    if timestamp < EARLIEST:
        raise InvalidInputError(
            "/timestamp",
            f"timestamp {timestamp.isoformat()} is before {EARLIEST.isoformat()}: "
            "event times start at the Unix epoch",
        )
    if timestamp - now > limits.max_future:
        raise InvalidInputError(
            "/timestamp",
            f"timestamp {timestamp.isoformat()} is more than {limits.max_future} ahead of "
            f"the server clock ({now.isoformat(timespec='seconds')})",
        )
    timestamp = timestamp.astimezone(UTC)
    return timestamp, (timestamp - _EPOCH) // _MICROSECOND
