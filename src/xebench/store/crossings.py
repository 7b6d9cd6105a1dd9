"""Multi-key cohorts ("crossings"): their names, the encoding of their values, their checks.

A crossing is a list of 2-3 cohort keys configured in ``MonitorConfig.cohort_crossings``
(the service's ``monitoring.cohort_crossings``). When a prediction's cohort has every key
of a crossing, its statistics are also folded under one more cohort key, the crossing's
keys joined by ``,`` in the configured order (``region,device``), whose value is the
event's values of those keys joined by ``,`` in the same order (``eu,android``). Cohort
keys cannot contain ``,`` (ingestion refuses it), so a crossed key never collides with a
plain one.

Cohort values are free text: a value holding ``,`` (or ``%``) is escaped in the crossed
value, ``%`` as ``%25`` and ``,`` as ``%2C`` (percent-encoding of just these two), so the
crossed value splits back into exactly one value per key. ``__other__`` (values beyond
``cohort_cap``) is a value of the crossed key as a whole, as of any key.

Crossing keys follow the cohort key rules (1-64 letters, digits or ``. _ - / @ +``)
except ``:``, which would make ``cohort=KEY:VALUE`` ambiguous (it splits at the first
``:``).

Example:
    >>> crossing_key(("region", "device")), crossed_value(["eu", "a,b"])
    ('region,device', 'eu,a%2Cb')
    >>> split_value("eu,a%2Cb", 2)
    ['eu', 'a,b']
    >>> cohort_value({"region": "eu", "device": "a,b"}, "region,device")
    'eu,a%2Cb'
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import InvalidInputError
from ..stats.binning import OTHER

__all__ = [
    "MAX_CROSSINGS",
    "MAX_KEYS",
    "SEPARATOR",
    "check_crossings",
    "cohort_value",
    "crossed_entries",
    "crossed_value",
    "crossing_key",
    "escape",
    "is_crossing",
    "normalise",
    "split_value",
    "unescape",
]

#: Joins the keys of a crossing, and the (escaped) values of a crossed value.
SEPARATOR = ","
#: Crossings a store keeps at most (each adds up to ``cohort_cap`` values per minute).
MAX_CROSSINGS = 8
#: Keys of one crossing: 2 to this many.
MAX_KEYS = 3
#: The cohort key rules (ingest.fields) without ``:``.
KEY = re.compile(r"^[\w.\-/@+]{1,64}$")
_ESCAPED = re.compile(r"%(25|2[Cc])")


def crossing_key(keys: Sequence[str]) -> str:
    """The cohort key of a crossing: its keys joined by ``,`` in their order."""
    return SEPARATOR.join(keys)


def is_crossing(key: str) -> bool:
    """Whether a cohort key names a crossing (plain keys never contain ``,``).

    Example:
        >>> is_crossing("region,device"), is_crossing("region")
        (True, False)
    """
    return SEPARATOR in key


def escape(value: str) -> str:
    """One value of a crossed value: ``%`` as ``%25``, ``,`` as ``%2C``.

    Example:
        >>> escape("50%,off")
        '50%25%2Coff'
    """
    return value.replace("%", "%25").replace(",", "%2C")


def unescape(value: str) -> str:
    """The inverse of :func:`escape`.

    Example:
        >>> unescape(escape("50%,off%2C"))
        '50%,off%2C'
    """
    return _ESCAPED.sub(lambda m: "%" if m[1] == "25" else ",", value)


def crossed_value(values: Sequence[str]) -> str:
    """The crossed value of one value per key (escaped, joined by ``,``)."""
    return SEPARATOR.join(escape(v) for v in values)


def split_value(value: str, n_keys: int) -> list[str]:
    """The values of a crossed value, unescaped; InvalidInputError unless ``n_keys`` of them.

    Example:
        >>> split_value("eu", 2)
        Traceback (most recent call last):
        ...
        xebench.errors.InvalidInputError: cohort: a crossing of 2 keys needs 2 values joined \
by ',' (a ',' inside a value written %2C, a '%' as %25); got 'eu'
    """
    parts = value.split(SEPARATOR)
    if len(parts) != n_keys or not all(parts):
        raise InvalidInputError(
            "cohort",
            f"a crossing of {n_keys} keys needs {n_keys} values joined by ',' "
            "(a ',' inside a value written %2C, a '%' as %25)",
            value=value,
        )
    return [unescape(p) for p in parts]


def cohort_value(cohort: Mapping[str, str], key: str) -> str | None:
    """An event's value of cohort ``key`` (plain or crossed) from its cohort map; None
    when it lacks the key (or one key of the crossing)."""
    if not is_crossing(key):
        return cohort.get(key)
    values = [cohort.get(k) for k in key.split(SEPARATOR)]
    if any(v is None for v in values):
        return None
    return crossed_value(values)  # type: ignore[arg-type]


def check_crossings(raw: Any, where: str = "cohort_crossings") -> tuple[tuple[str, ...], ...]:
    """Configured crossings as tuples of keys; InvalidInputError naming ``where[i]``.

    Example:
        >>> check_crossings([["region", "device"]])
        (('region', 'device'),)
        >>> check_crossings([["region", "device"], ["region"]])
        Traceback (most recent call last):
        ...
        xebench.errors.InvalidInputError: cohort_crossings[1]: must be a list of 2 to 3 \
distinct cohort keys; got ['region']
    """
    if raw is None:
        return ()
    if isinstance(raw, str | bytes) or not isinstance(raw, Sequence):
        raise InvalidInputError(where, "must be a list of crossings such as [region, device]")
    if len(raw) > MAX_CROSSINGS:
        raise InvalidInputError(where, f"at most {MAX_CROSSINGS} crossings", value=len(raw))
    crossings: list[tuple[str, ...]] = []
    for i, entry in enumerate(raw):
        at = f"{where}[{i}]"
        if (
            isinstance(entry, str | bytes)
            or not isinstance(entry, Sequence)
            or not 2 <= len(entry) <= MAX_KEYS
            or len(set(map(str, entry))) != len(entry)
        ):
            raise InvalidInputError(
                at, f"must be a list of 2 to {MAX_KEYS} distinct cohort keys", value=entry
            )
        for key in entry:
            if not isinstance(key, str) or not KEY.match(key):
                raise InvalidInputError(
                    at,
                    "keys must be 1-64 letters, digits or . _ - / @ + (cohort keys without ':')",
                    value=key,
                )
        keys = tuple(entry)
        if any(set(keys) == set(other) for other in crossings):
            raise InvalidInputError(at, "repeats a crossing of the same keys", value=entry)
        crossings.append(keys)
    return tuple(crossings)


def normalise(
    key: str, value: str | None, crossings: Sequence[Sequence[str]], argument: str = "cohort"
) -> tuple[str, str | None]:
    """A crossed (key, value) in the configured order of its keys (a plain key as is);
    InvalidInputError naming ``argument`` for a combination that is not configured.

    Example:
        >>> normalise("device,region", "android,eu", [("region", "device")])
        ('region,device', 'eu,android')
        >>> normalise("region,os", "eu,ios", [("region", "device")], "key")
        Traceback (most recent call last):
        ...
        xebench.errors.InvalidInputError: key: 'region,os' is not a configured crossing \
(monitoring.cohort_crossings): [['region', 'device']]; got 'region,os'
    """
    if not is_crossing(key):
        return key, value
    keys = key.split(SEPARATOR)
    for crossing in crossings:
        if len(crossing) == len(keys) and set(crossing) == set(keys):
            if value is None or value == OTHER:  # the values beyond the cap, as a whole
                return crossing_key(crossing), value
            by_key = dict(zip(keys, split_value(value, len(keys)), strict=True))
            return crossing_key(crossing), crossed_value([by_key[k] for k in crossing])
    configured = [list(c) for c in crossings]
    raise InvalidInputError(
        argument,
        f"{key!r} is not a configured crossing (monitoring.cohort_crossings): {configured}",
        value=key,
    )


def crossed_entries(
    cohort: pa.Array, crossings: Sequence[Sequence[str]]
) -> list[tuple[Any, str, pa.Array]]:
    """The crossed cohort entries of a column of cohort maps: per crossing, (rows having
    every key of it, its cohort key, their crossed values).

    Example:
        >>> maps = pa.array([[("r", "eu"), ("d", "a,b")], [("r", "us")]],
        ...                 pa.map_(pa.string(), pa.string()))
        >>> [(rows.tolist(), key, values.to_pylist())
        ...  for rows, key, values in crossed_entries(maps, [("r", "d")])]
        [([0], 'r,d', ['eu,a%2Cb'])]
    """
    out = []
    for crossing in crossings:
        parts = [pc.map_lookup(cohort, pa.scalar(k, pa.string()), "first") for k in crossing]
        present = pc.is_valid(parts[0])
        for part in parts[1:]:
            present = pc.and_(present, pc.is_valid(part))
        rows = pc.indices_nonzero(present).to_numpy().astype(np.intp)
        if not rows.size:
            continue
        index = pa.array(rows)
        escaped = [
            pc.replace_substring(pc.replace_substring(p.take(index), "%", "%25"), ",", "%2C")
            for p in parts
        ]
        values = pc.binary_join_element_wise(*escaped, SEPARATOR)
        out.append((rows, crossing_key(crossing), values))
    return out
