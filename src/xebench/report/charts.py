"""Chart specs: the one charting contract of the HTML reports and the web dashboard.

A chart is a small JSON document (a *spec*) in a ``<script type="application/json"
class="xb-chart">`` block; ``static/xebench-charts.js`` finds every block and draws it
with Chart.js (``static/chart.umd.min.js``, vendored at a pinned version, see
``static/VENDORED.md``) into a ``<canvas>`` right after it. Nothing is fetched at run
time: a report inlines both files (:func:`chart_assets`), the dashboard serves them
from :func:`static_dir` as cached static files (``script-src 'self'``).

The spec::

    {"kind": "line" | "bar" | "histogram" | "reliability" | "ranking",
     "title": str, "x_label": str, "y_label": str,
     "x_type": "time" | "linear" | "category",
     "series": [{"name": str, "x": [...], "y": [...],
                 "lo": [...], "hi": [...], "counts": [...], "color": "#rrggbb"}],
     "thresholds": [{"y": float, "label": str}], "height": int}

``lo`` / ``hi`` (a band on a line chart, horizontal CI bars on a ranking), ``counts``
(a reliability diagram's rows per bin), ``color`` and ``thresholds`` are optional.
Optional keys beyond the contract: ``y_format`` (``"percent"``: shares drawn as
percentages), ``bin_edges`` (reliability: the count bars span the bins) and
``y2_label`` (reliability: the count axis).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Iterable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from markupsafe import Markup

__all__ = [
    "CHART_JS_VERSION",
    "KINDS",
    "X_TYPES",
    "chart_assets",
    "chart_block",
    "chart_spec",
    "script_json",
    "static_dir",
]

CHART_JS_VERSION = "4.6.1"
"""The vendored Chart.js (``static/chart.umd.min.js``; see ``static/VENDORED.md``)."""

KINDS = ("line", "bar", "histogram", "reliability", "ranking")
X_TYPES = ("time", "linear", "category")
LIBRARY = "chart.umd.min.js"
RENDERER = "xebench-charts.js"

_SERIES_ARRAYS = ("x", "y", "lo", "hi", "counts")
_SOURCE_MAP = re.compile(r"^//# sourceMappingURL=.*$", re.MULTILINE)


def _value(value: Any) -> Any:
    """One value made JSON-safe: NumPy scalars to Python, NaN / inf to None, times to ms.

    Example:
        >>> [_value(v) for v in (np.float32(0.5), np.int64(3), float("nan"), -math.inf)]
        [0.5, 3, None, None]
        >>> _value(dt.datetime(2024, 1, 1)), _value(np.datetime64("2024-01-01T00:00:01"))
        (1704067200000, 1704067201000)
    """
    if value is None or isinstance(value, str | bool):
        return value
    if isinstance(value, np.datetime64):
        if np.isnat(value):
            return None
        return int(value.astype("datetime64[ms]").astype(np.int64))
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:  # naive times are UTC, as everywhere in xebench
            value = value.replace(tzinfo=dt.UTC)
        return round(value.timestamp() * 1000)
    if isinstance(value, dt.date):
        return _value(dt.datetime(value.year, value.month, value.day))
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    raise TypeError(f"a chart value must be a number, a string, a time or None, not {value!r}")


def _values(values: Any, field: str) -> list[Any]:
    if isinstance(values, str | bytes) or not isinstance(values, Iterable | np.ndarray):
        raise TypeError(f"series {field!r} must be a sequence, not {type(values).__name__}")
    if isinstance(values, np.ndarray):
        if values.dtype.kind == "M":  # datetime64 stays itself (.tolist() turns ns into ints)
            return [_value(v) for v in values.ravel()]
        return [_value(v) for v in values.ravel().tolist()]
    return [_value(v) for v in values]


def _series(entry: Mapping[str, Any], index: int) -> dict[str, Any]:
    if not isinstance(entry, Mapping):
        raise TypeError(f"series {index} must be a mapping, not {type(entry).__name__}")
    missing = [key for key in ("name", "x", "y") if key not in entry]
    if missing:
        raise ValueError(f"series {index} lacks {', '.join(map(repr, missing))}")
    out: dict[str, Any] = {"name": str(entry["name"])}
    for key, value in entry.items():
        if key == "name":
            continue
        if key in _SERIES_ARRAYS:
            out[key] = _values(value, key)
        elif key == "color":
            out[key] = str(value)
        else:
            out[key] = _json_safe(value)
    n = len(out["x"])
    for key in _SERIES_ARRAYS:
        if key in out and len(out[key]) != n:
            raise ValueError(
                f"series {out['name']!r}: {key!r} has {len(out[key])} values, 'x' has {n}"
            )
    return out


def _json_safe(value: Any) -> Any:
    """Nested mappings and sequences made JSON-safe, value by value."""
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [_json_safe(v) for v in value]
    return _value(value)


def _threshold(entry: Mapping[str, Any]) -> dict[str, Any]:
    axis = "y" if "y" in entry else "x"
    if axis not in entry:
        raise ValueError(f"a threshold needs 'y' (or 'x' for a vertical line): {entry!r}")
    value = _value(entry[axis])
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise ValueError(f"a threshold's {axis!r} must be a finite number: {entry!r}")
    out = {axis: value, "label": str(entry.get("label", ""))}
    if "color" in entry:
        out["color"] = str(entry["color"])
    return out


def chart_spec(
    kind: str,
    *,
    title: str,
    series: Iterable[Mapping[str, Any]],
    x_type: str = "category",
    x_label: str = "",
    y_label: str = "",
    thresholds: Iterable[Mapping[str, Any]] = (),
    height: int = 260,
    **extra: Any,
) -> dict[str, Any]:
    """A chart spec as a JSON-safe dict, checked against the contract.

    Values may be Python or NumPy numbers, strings, ``datetime`` / ``datetime64``
    (epoch milliseconds, naive times as UTC) or None; NaN and infinities become None
    (``null``: a gap in a line, no bar). ``extra`` keys (``y_format``, ``bin_edges``,
    ``y2_label``) are optional keys beyond the contract, made JSON-safe too.

    Example:
        >>> spec = chart_spec(
        ...     "line",
        ...     title="log loss, 1h windows",
        ...     x_type="time",
        ...     series=[{"name": "v1", "x": ["2024-05-01T00:00:00Z", "2024-05-01T01:00:00Z"],
        ...              "y": np.array([0.31, np.nan])}],
        ...     thresholds=[{"y": 0.3, "label": "SLO log loss <= 0.3"}],
        ... )
        >>> spec["series"][0]["y"], spec["thresholds"], spec["height"]
        ([0.31, None], [{'y': 0.3, 'label': 'SLO log loss <= 0.3'}], 260)
        >>> chart_spec("pie", title="", series=[])
        Traceback (most recent call last):
        ...
        ValueError: unknown chart kind 'pie'; one of line, bar, histogram, reliability, ranking
    """
    if kind not in KINDS:
        raise ValueError(f"unknown chart kind {kind!r}; one of {', '.join(KINDS)}")
    if x_type not in X_TYPES:
        raise ValueError(f"unknown x_type {x_type!r}; one of {', '.join(X_TYPES)}")
    if isinstance(height, bool) or not isinstance(height, int | np.integer) or height <= 0:
        raise ValueError(f"height must be a positive number of pixels, not {height!r}")
    spec: dict[str, Any] = {
        "kind": kind,
        "title": str(title),
        "x_label": str(x_label),
        "y_label": str(y_label),
        "x_type": x_type,
        "series": [_series(entry, i) for i, entry in enumerate(series)],
        "thresholds": [_threshold(entry) for entry in thresholds],
        "height": int(height),
    }
    spec.update({key: _json_safe(value) for key, value in extra.items()})
    return spec


def script_json(value: Any) -> str:
    """JSON that is safe inside ``<script>``: no ``</script>``, no HTML specials.

    ``<``, ``>`` and ``&`` become ``\\u003c``, ``\\u003e`` and ``\\u0026`` (the same
    string to a JSON parser), and so do U+2028 / U+2029; NaN is refused.

    Example:
        >>> print(script_json({"name": "</script><b>&"}))
        {"name": "\\u003c/script\\u003e\\u003cb\\u003e\\u0026"}
    """
    text = json.dumps(value, allow_nan=False)
    for char in "<>&\u2028\u2029":
        text = text.replace(char, f"\\u{ord(char):04x}")
    return text


def chart_block(spec: Mapping[str, Any]) -> Markup:
    """The ``<script type="application/json" class="xb-chart">`` block for one spec.

    Example:
        >>> spec = chart_spec("bar", title="a <b>", series=[{"name": "n", "x": ["a"], "y": [1]}])
        >>> block = chart_block(spec)
        >>> print(block[:63])
        <script type="application/json" class="xb-chart">{"kind": "bar"
        >>> "<b>" in block, "\\\\u003cb\\\\u003e" in block
        (False, True)
    """
    return Markup(f'<script type="application/json" class="xb-chart">{script_json(spec)}</script>')


def static_dir() -> Path:
    """The folder with ``chart.umd.min.js``, its licence and ``xebench-charts.js``.

    Example:
        >>> sorted(p.name for p in static_dir().glob("*.js"))
        ['chart.umd.min.js', 'xebench-charts.js']
    """
    return Path(__file__).resolve().parent / "static"


@lru_cache(maxsize=1)
def chart_assets() -> str:
    """Chart.js and ``xebench-charts.js`` as one script, to inline into a report file.

    The library's ``sourceMappingURL`` comment is left out (an inlined script has
    no file for the map to sit beside); nothing in either file closes a ``<script>``.

    Example:
        >>> js = chart_assets()
        >>> f"Chart.js v{CHART_JS_VERSION}" in js, "window.xebenchCharts" in js
        (True, True)
        >>> "</script" in js.lower(), "<!--" in js, "sourceMappingURL" in js
        (False, False, False)
    """
    parts = []
    for name in (LIBRARY, RENDERER):
        text = (static_dir() / name).read_text(encoding="utf-8")
        text = _SOURCE_MAP.sub("", text).rstrip() + "\n"
        if "</script" in text.lower() or "<!--" in text:
            raise RuntimeError(f"{name} cannot be inlined into a <script> element as it is")
        parts.append(f"/* {name} */\n{text}")
    return "\n".join(parts)
