"""What a monitoring question is about: a :class:`Scope`, and the parsing of its parts.

A scope names a tenant's model (and optionally a version and a cohort) and a
time range: a rolling ``window`` ending at ``now``, or explicit ``start`` /
``end`` (the HTTP API's ``from`` / ``to``). :meth:`Scope.span` resolves the
range onto bucket boundaries.

Example:
    >>> scope = Scope("acme", "fraud", cohort="region:eu", window="1h",
    ...               now=datetime(2026, 1, 1, 12, 0, 30, tzinfo=UTC))
    >>> scope.cohort_key, scope.cohort_label
    (('region', 'eu'), 'region:eu')
    >>> span = scope.span()
    >>> iso(span.start), iso(span.end)
    ('2026-01-01T11:01:00Z', '2026-01-01T12:01:00Z')
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from ..errors import InvalidInputError
from ..store.buckets import ALL, BUCKET_SECONDS, OTHER
from ..store.crossings import KEY as CROSSING_KEY
from ..store.crossings import (
    SEPARATOR,
    crossed_value,
    crossing_key,
    is_crossing,
    normalise,
    split_value,
)

__all__ = [
    "EARLIEST",
    "LATEST",
    "MAX_DURATION",
    "WINDOWS",
    "Scope",
    "Span",
    "canonical_cohort",
    "ceil_to",
    "floor_to",
    "iso",
    "parse_cohort",
    "parse_duration",
    "parse_model",
    "parse_reference",
    "parse_time",
]

#: The named rolling windows (any duration such as "30m" or "3d" works too).
WINDOWS = {"1h": 3600, "6h": 6 * 3600, "24h": 86400, "7d": 7 * 86400}

#: The range of times a question may name (``from``, ``to``, a window's start): no
#: event is older than the Unix epoch (ingestion refuses them), and far-future ends
#: would only overflow the datetime arithmetic (docs/service.md, "Time ranges").
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)

#: The longest window or step: the whole range above (84,006 days).
MAX_DURATION = LATEST - EARLIEST
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_STEP = timedelta(seconds=BUCKET_SECONDS)


def parse_duration(text: str | float | timedelta, argument: str = "window") -> timedelta:
    """``"90s"``, ``"15m"``, ``"1h"``, ``"7d"``, ``"2w"`` (or seconds) as a timedelta.

    Example:
        >>> parse_duration("6h"), parse_duration("90s").total_seconds()
        (datetime.timedelta(seconds=21600), 90.0)
        >>> parse_duration("99999999d")
        Traceback (most recent call last):
        ...
        xebench.errors.InvalidInputError: window: must be at most 84006d (from 1970 to 2200); \
got '99999999d'
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
    if not seconds <= MAX_DURATION.total_seconds():
        raise InvalidInputError(
            argument,
            f"must be at most {MAX_DURATION.days}d (from {EARLIEST.year} to {LATEST.year})",
            value=text,
        )
    return timedelta(seconds=seconds)


def parse_time(text: str | datetime, argument: str) -> datetime:
    """An RFC 3339 time with its offset (``Z`` is UTC), as an aware UTC datetime.

    Example:
        >>> parse_time("2026-11-25T10:00:00+01:00", "from").isoformat()
        '2026-11-25T09:00:00+00:00'
        >>> parse_time("0001-01-01T00:00:00+01:00", "from")
        Traceback (most recent call last):
        ...
        xebench.errors.InvalidInputError: from: must be from 1970-01-01T00:00:00Z and before \
2200-01-01T00:00:00Z; got '0001-01-01T00:00:00+01:00'
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
    # Compared before astimezone, which overflows at the datetime limits (year 1 at +01:00).
    if not EARLIEST <= moment < LATEST:
        raise InvalidInputError(
            argument,
            f"must be from {iso(EARLIEST)} and before {iso(LATEST)}",
            value=text if isinstance(text, str) else moment.isoformat(),
        )
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

    A crossing (multi-key cohort, :mod:`xebench.store.crossings`) is
    ``"region,device:eu,android"`` (split at the first ``:``; a ``,`` inside a value
    written ``%2C``, a ``%`` as ``%25``) or ``"region:eu,device:android"`` (every
    ``,``-separated part a ``key:value`` of a distinct key without ``:``; its values
    cannot hold ``,``), both read as the crossed key and value in the order given:
    :func:`canonical_cohort` puts them in the configured order.

    Example:
        >>> parse_cohort("device:ios"), parse_cohort(None)
        (('device', 'ios'), ('', ''))
        >>> parse_cohort("region:eu,device:a%b"), parse_cohort("region,device:eu,a%2Cb")
        (('region,device', 'eu,a%25b'), ('region,device', 'eu,a%2Cb'))
    """
    if text is None or text == "":
        return ALL, ALL
    text = str(text)
    key, sep, value = text.partition(":")
    if not sep or not key or not value:
        raise InvalidInputError("cohort", "must be key:value, e.g. region:eu", value=text)
    if is_crossing(key):
        if value != OTHER:  # the crossing's values beyond its cap
            split_value(value, len(key.split(SEPARATOR)))  # one value per key
        return key, value
    pairs = [part.partition(":") for part in text.split(SEPARATOR)]
    keys = [k for k, _, _ in pairs]
    if (
        len(pairs) > 1
        and all(sep and v and CROSSING_KEY.match(k) for k, sep, v in pairs)
        and len(set(keys)) == len(keys)
    ):
        return crossing_key(keys), crossed_value([v for _, _, v in pairs])
    return key, value


def canonical_cohort(
    text: str | None, crossings: Sequence[Sequence[str]], argument: str = "cohort"
) -> str | None:
    """A cohort as ``key:value`` with a crossing's keys (and values) in the configured
    order; InvalidInputError naming ``argument`` for a crossing that is not configured.

    Example:
        >>> canonical_cohort("device:android,region:eu", [("region", "device")])
        'region,device:eu,android'
        >>> canonical_cohort("region:eu", []), canonical_cohort(None, [])
        ('region:eu', None)
    """
    try:
        key, value = parse_cohort(text)
        if key == ALL:
            return None
        key, canonical = normalise(key, value, crossings, argument)
    except InvalidInputError as error:
        if error.argument == argument:
            raise
        raise InvalidInputError(argument, error.rule, value=text) from None
    return f"{key}:{canonical}"


def parse_model(text: str, argument: str) -> tuple[str, str | None]:
    """``"model"`` or ``"model:version"`` as (model, version or None).

    Example:
        >>> parse_model("fraud:v2", "candidate"), parse_model("fraud", "baseline")
        (('fraud', 'v2'), ('fraud', None))
    """
    model, sep, version = str(text).partition(":")
    if not model or (sep and not version):
        raise InvalidInputError(argument, "must be model or model:version", value=text)
    return model, version or None


@dataclass(frozen=True)
class Span:
    """A time range [start, end), both aware UTC datetimes.

    Example:
        >>> t = datetime(2026, 1, 1, tzinfo=UTC)
        >>> Span(t, t + timedelta(hours=2)).length
        datetime.timedelta(seconds=7200)
    """

    start: datetime
    end: datetime

    @property
    def length(self) -> timedelta:
        """``end - start``."""
        return self.end - self.start


def ceil_to(moment: datetime, step: timedelta) -> datetime:
    """The first multiple of ``step`` (since the epoch, UTC) at or after ``moment``.

    Example:
        >>> ceil_to(datetime(2026, 1, 1, 0, 0, 1, tzinfo=UTC), timedelta(minutes=1)).minute
        1
    """
    seconds = step.total_seconds()
    stamp = moment.timestamp()
    return datetime.fromtimestamp(-(-stamp // seconds) * seconds, UTC)


def floor_to(moment: datetime, step: timedelta) -> datetime:
    """The last multiple of ``step`` (since the epoch, UTC) at or before ``moment``.

    Example:
        >>> floor_to(datetime(2026, 1, 1, 0, 59, tzinfo=UTC), timedelta(hours=1)).hour
        0
    """
    seconds = step.total_seconds()
    return datetime.fromtimestamp(moment.timestamp() // seconds * seconds, UTC)


def iso(moment: datetime) -> str:
    """RFC 3339 in UTC with ``Z``, as every monitoring answer writes times.

    Example:
        >>> iso(datetime(2026, 1, 1, 1, tzinfo=UTC))
        '2026-01-01T01:00:00Z'
    """
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class Scope:
    """One monitoring question's subject: a model's events (a version's, a cohort's) in a range.

    Attributes:
        tenant, model: whose events.
        version: one version (None: every version).
        cohort: ``"key:value"`` (None: the model as a whole).
        window: a rolling window ending at ``now`` (``"24h"`` when no range is given).
        start, end: explicit times (``from`` / ``to``), RFC 3339 text or datetimes.
        now: the time the question is asked (None: the current time, fixed by
            :meth:`pinned`).

    Example:
        >>> Scope.named("acme", "fraud:v2", "candidate", window="1h").version
        'v2'
    """

    tenant: str
    model: str
    version: str | None = None
    cohort: str | None = None
    window: str | timedelta | None = None
    start: str | datetime | None = None
    end: str | datetime | None = None
    now: datetime | None = None

    @classmethod
    def named(cls, tenant: str, spec: str, argument: str = "model", **fields: object) -> Scope:
        """A scope whose model and version come from ``"model"`` or ``"model:version"``.

        Example:
            >>> Scope.named("t", "fraud").model, Scope.named("t", "fraud").version
            ('fraud', None)
        """
        model, version = parse_model(spec, argument)
        return cls(tenant, model, version, **fields)  # type: ignore[arg-type]

    @property
    def spec(self) -> str:
        """``"model"`` or ``"model:version"``.

        Example:
            >>> Scope("t", "fraud", "v1").spec
            'fraud:v1'
        """
        return self.model if self.version is None else f"{self.model}:{self.version}"

    @property
    def cohort_key(self) -> tuple[str, str]:
        """The cohort as (key, value); ``("", "")`` for the model as a whole."""
        return parse_cohort(self.cohort)

    @property
    def cohort_label(self) -> str | None:
        """The cohort as answers write it: ``"key:value"``, or None for the whole model."""
        key, value = self.cohort_key
        return None if key == ALL else f"{key}:{value}"

    def pinned(self, crossings: Sequence[Sequence[str]] | None = None) -> Scope:
        """This scope with ``now`` fixed (to the current time when it is None) and, given
        the configured ``crossings``, its cohort in their order (:func:`canonical_cohort`).

        Example:
            >>> Scope("t", "m").pinned().now is not None
            True
            >>> Scope("t", "m", cohort="device:ios,region:eu").pinned([("region", "device")]).cohort
            'region,device:eu,ios'
        """
        scope = self if self.now is not None else replace(self, now=datetime.now(UTC))
        if crossings is not None and scope.cohort is not None:
            scope = replace(scope, cohort=canonical_cohort(scope.cohort, crossings))
        return scope

    def span(self, step: timedelta | None = None) -> Span:
        """[start, end) from the rolling window or the explicit times, on bucket boundaries.

        A rolling window ends at the next bucket (or ``step``) boundary after ``now``.

        Example:
            >>> Scope("t", "m", window="2h", start="2026-01-01T00:00:00Z",
            ...       end="2026-01-01T01:00:00Z").span()
            Traceback (most recent call last):
            ...
            xebench.errors.InvalidInputError: window: give window or from/to, not both; got '2h'
        """
        window, start, end = self.window, self.start, self.end
        now = self.now or datetime.now(UTC)
        align = step or _STEP
        if step is not None and step.total_seconds() % BUCKET_SECONDS:
            raise InvalidInputError("step", f"must be a multiple of {BUCKET_SECONDS} s", value=step)
        if start is not None or end is not None:
            if window is not None and start is not None and end is not None:
                raise InvalidInputError("window", "give window or from/to, not both", value=window)
            stop = parse_time(end, "to") if end is not None else now
            stop = ceil_to(stop, _STEP)
            if start is not None:
                begin = ceil_to(parse_time(start, "from"), _STEP)
            else:
                begin = _back(stop, window)
        else:
            stop = ceil_to(now, align)
            begin = _back(stop, window)
        if begin >= stop:
            if start is None:  # a window that rounds to nothing
                raise InvalidInputError("window", "must be at least 1 microsecond", value=window)
            raise InvalidInputError("from", "must be before to", value=iso(begin))
        return Span(begin, stop)


def _back(stop: datetime, window: str | timedelta | None) -> datetime:
    """The start of a rolling ``window`` ending at ``stop``, not before :data:`EARLIEST`."""
    begin = stop - parse_duration(window or "24h")
    if begin < EARLIEST:
        raise InvalidInputError(
            "window", f"reaches before {iso(EARLIEST)}, the earliest event time", value=window
        )
    return begin
