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

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

from .._validation import ROW_SUM_TOLERANCE
from ..errors import InvalidInputError
from .policy import Limits

__all__ = [
    "LabelEvent",
    "PredictionEvent",
    "check_probabilities",
    "check_timestamp",
    "error_path",
    "field_message",
    "label_text",
]

_NAME = r"^[\w.\-:/@+]{1,128}$"


_KEY = r"^[\w.\-:/@+]{1,64}$"


_PRINTABLE = re.compile(r"^[^\x00-\x1f\x7f]{1,256}$")


# --- the event models ------------------------------------------------------------


def _scalar_feature(value: Any) -> Any:
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidInputError(
                "feature value", "must be finite (NaN and infinity are refused)"
            )
        return value
    raise InvalidInputError(
        "feature value", "must be a string, a number, a boolean or null (no nesting)"
    )


def _cohort_value(value: Any) -> str:
    if isinstance(value, str):
        if len(value) > 256 or not _PRINTABLE.match(value or " "):
            raise InvalidInputError("cohort value", "must be 0-256 printable characters")
        return value
    if isinstance(value, (bool, int)):
        return label_text(value)
    raise InvalidInputError("cohort value", "must be a string, an integer or a boolean")


Name = Annotated[str, Field(strict=True, pattern=_NAME)]


Key = Annotated[str, Field(pattern=_KEY)]


# A pattern, not a Python validator: checked in Rust, it costs nothing per event.
RequestId = Annotated[str, Field(strict=True, pattern=_PRINTABLE.pattern)]


def _label(value: Any) -> Any:
    if isinstance(value, (str, bool, int)) and value != "":
        return value
    raise InvalidInputError("label", "must be a non-empty string, an integer or a boolean")


Label = Annotated[Any, AfterValidator(_label)]


class PredictionEvent(BaseModel):
    """One prediction as sent by a client (structure only; see :func:`parse_predictions`).

    Example:
        >>> PredictionEvent(request_id="r1", model="m", probabilities=0.3).version
        ''
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    request_id: RequestId
    model: Name
    version: Annotated[str, Field(strict=True, pattern=r"^[\w.\-:/@+]{0,128}$")] = ""
    timestamp: AwareDatetime | None = None
    # Checked by hand after parsing, for exact messages and JSON-pointer paths.
    probabilities: Any
    classes: list[Label] | None = None
    cohort: dict[Key, Annotated[Any, AfterValidator(_cohort_value)]] = Field(
        default_factory=dict, max_length=32
    )
    features: dict[Key, Annotated[Any, AfterValidator(_scalar_feature)]] = Field(
        default_factory=dict, max_length=256
    )


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
    timestamp: AwareDatetime | None = None


# --- messages -----------------------------------------------------------------------


def error_path(loc: Sequence[Any]) -> str:
    """A pydantic error location as JSON-pointer tokens joined by ``/`` (no leading slash).

    Example:
        >>> error_path(("features", "a/b~c", 0))
        'features/a~1b~0c/0'
    """
    return "/".join(str(part).replace("~", "~0").replace("/", "~1") for part in loc)


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
            message = "must be 1-256 printable characters (no control characters)"
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
            text = repr(value)
            message += f"; got {text if len(text) <= 60 else text[:57] + '...'}"
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
        raise InvalidInputError(field, f"probabilities must be numbers; got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise InvalidInputError(
            field, f"probabilities must be finite (NaN and infinity are refused); got {value!r}"
        )
    if not 0.0 <= value <= 1.0:
        raise InvalidInputError(field, f"probabilities must be in [0, 1]; got {value!r}")
    return value


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
        fields = [f"/probabilities/{name}" for name in names]
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
        return [label_text(c) for c in names], [1.0 - p, p]
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


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


_MICROSECOND = timedelta(microseconds=1)


def check_timestamp(
    timestamp: datetime | None, now: datetime, limits: Limits
) -> tuple[datetime, int | None]:
    """The event time in UTC and, for the payload hash, the microseconds sent (None: not sent).

    Raises :class:`~xebench.errors.InvalidInputError` (``argument``
    ``"/timestamp"``) for a time more than ``limits.max_future`` after ``now``.

    Example:
        >>> now = datetime(2026, 1, 1, tzinfo=UTC)
        >>> check_timestamp(None, now, Limits()) == (now, None)
        True
        >>> check_timestamp(datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC), now, Limits())[1]
        1000000
    """
    if timestamp is None:
        return now, None
    timestamp = timestamp.astimezone(UTC)
    if timestamp - now > limits.max_future:
        raise InvalidInputError(
            "/timestamp",
            f"timestamp {timestamp.isoformat()} is more than {limits.max_future} ahead of "
            f"the server clock ({now.isoformat(timespec='seconds')})",
        )
    return timestamp, (timestamp - _EPOCH) // _MICROSECOND
