"""Chart specs and blocks (xebench.report.charts), and the vendored files they rely on."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import re
from html.parser import HTMLParser

import numpy as np
import pytest

from xebench.report.charts import (
    CHART_JS_VERSION,
    chart_assets,
    chart_block,
    chart_spec,
    script_json,
    static_dir,
)

HOSTILE = ("</script><script>alert(1)</script>", '"><img src=x onerror=alert(1)>', "a & b")


def _vendored_sha256() -> dict[str, str]:
    text = (static_dir() / "VENDORED.md").read_text(encoding="utf-8")
    return {name: digest for digest, name in re.findall(r"^([0-9a-f]{64})  (\S+)$", text, re.M)}


def test_the_vendored_files_match_their_recorded_sha256() -> None:
    recorded = _vendored_sha256()
    for name in ("chart.umd.min.js", "chart.js.LICENSE.md"):
        digest = hashlib.sha256((static_dir() / name).read_bytes()).hexdigest()
        assert recorded[name] == digest, name
    head = (static_dir() / "chart.umd.min.js").read_text(encoding="utf-8")[:200]
    assert f"Chart.js v{CHART_JS_VERSION}" in head and "MIT" in head
    assert "MIT License" in (static_dir() / "chart.js.LICENSE.md").read_text(encoding="utf-8")


def test_nan_inf_and_numpy_become_json_safe() -> None:
    spec = chart_spec(
        "line",
        title="t",
        x_type="linear",
        series=[
            {
                "name": "s",
                "x": np.arange(5),
                "y": np.array([0.5, np.nan, np.inf, -np.inf, 1.0], dtype=np.float32),
                "lo": [None, float("nan"), 0.1, np.float64(0.2), math.inf],
                "hi": (np.int64(1), 2, 3, 4, 5),
            }
        ],
        thresholds=[{"y": np.float64(0.3), "label": "slo"}],
    )
    [series] = spec["series"]
    assert series["x"] == [0, 1, 2, 3, 4]
    assert series["y"] == [0.5, None, None, None, 1.0]
    assert series["lo"] == [None, None, 0.1, 0.2, None]
    assert series["hi"] == [1, 2, 3, 4, 5]
    assert spec["thresholds"] == [{"y": 0.3, "label": "slo"}]
    text = json.dumps(spec, allow_nan=False)  # strict JSON: would raise on NaN
    assert json.loads(text) == spec
    assert all(type(v) in (int, float, type(None)) for v in series["y"] + series["x"])


def test_times_become_epoch_milliseconds_in_utc() -> None:
    stamps = np.array(["2024-05-01T00:00:00", "NaT"], dtype="datetime64[ns]")
    spec = chart_spec(
        "line",
        title="t",
        x_type="time",
        series=[{"name": "s", "x": stamps, "y": [1, 2]}],
    )
    assert spec["series"][0]["x"] == [1714521600000, None]
    aware = dt.datetime(2024, 5, 1, 2, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    naive = dt.datetime(2024, 5, 1)
    iso = "2024-05-01T00:00:00Z"  # strings pass through: the renderer parses ISO-8601
    spec = chart_spec(
        "line",
        title="t",
        x_type="time",
        series=[{"name": "s", "x": [aware, naive, iso], "y": [1, 2, 3]}],
    )
    assert spec["series"][0]["x"] == [1714521600000, 1714521600000, iso]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "pie"}, "unknown chart kind 'pie'"),
        ({"x_type": "log"}, "unknown x_type 'log'"),
        ({"height": 0}, "height must be a positive"),
        ({"series": [{"name": "s", "x": [1, 2], "y": [1]}]}, "'y' has 1 values, 'x' has 2"),
        ({"series": [{"name": "s", "x": [1, 2]}]}, "lacks 'y'"),
        ({"series": [{"name": "s", "x": "ab", "y": "ab"}]}, "must be a sequence"),
        ({"series": [{"name": "s", "x": [object()], "y": [1]}]}, "a chart value must be"),
        ({"thresholds": [{"y": float("nan"), "label": "x"}]}, "finite number"),
        ({"thresholds": [{"label": "x"}]}, "needs 'y'"),
    ],
)
def test_chart_spec_validates(kwargs: dict, message: str) -> None:
    args = {"kind": "bar", "title": "t", "series": [{"name": "s", "x": [1], "y": [1]}]}
    args.update(kwargs)
    kind = args.pop("kind")
    with pytest.raises((ValueError, TypeError), match=re.escape(message)):
        chart_spec(kind, **args)


def test_extra_keys_are_kept() -> None:
    series = [{"name": "s", "x": ["a"], "y": [0.5], "color": "#ff0000"}]
    spec = chart_spec("bar", title="t", series=series, y_format="percent")
    assert spec["y_format"] == "percent" and spec["series"][0]["color"] == "#ff0000"
    assert set(spec) >= {"kind", "title", "x_label", "y_label", "x_type", "series", "height"}


class _Scripts(HTMLParser):
    """What an HTML parser sees: the script elements, their attributes and text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.scripts: list[tuple[dict, str]] = []
        self.tags: list[str] = []
        self._attrs: dict | None = None

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.tags.append(tag)
        if tag == "script":
            self._attrs = dict(attrs)
            self.scripts.append((self._attrs, ""))

    def handle_data(self, data: str) -> None:
        if self._attrs is not None:
            attrs, text = self.scripts[-1]
            self.scripts[-1] = (attrs, text + data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._attrs = None


@pytest.mark.parametrize("name", [*HOSTILE, "line\u2028break\u2029", "<!--", "]]>"])
def test_chart_block_is_one_inert_script_element_for_any_name(name: str) -> None:
    spec = chart_spec(
        "ranking",
        title=name,
        x_type="linear",
        x_label=name,
        series=[{"name": name, "x": [0.5], "y": [name], "lo": [0.4], "hi": [0.6]}],
        thresholds=[{"x": 0.5, "label": name}],
    )
    block = str(chart_block(spec))
    for char in "<>&\u2028\u2029":
        assert char not in block[len('<script type="application/json" class="xb-chart">') : -9]
    parser = _Scripts()
    parser.feed(f"<body>{block}<p>after</p></body>")
    assert parser.tags == ["body", "script", "p"]  # nothing escaped the block
    [(attrs, text)] = parser.scripts
    assert attrs == {"type": "application/json", "class": "xb-chart"}
    assert json.loads(text) == spec  # and the JSON reads back exactly


def test_script_json_refuses_nan_and_escapes_like_json() -> None:
    with pytest.raises(ValueError):
        script_json({"v": float("nan")})
    value = {"s": "</script>&\u2028"}
    assert json.loads(script_json(value)) == value
    assert script_json(value) == '{"s": "\\u003c/script\\u003e\\u0026\\u2028"}'


def test_one_script_json_in_the_package() -> None:
    package = static_dir().parents[1]
    defined = [
        str(path.relative_to(package))
        for path in package.rglob("*.py")
        if "def script_json" in path.read_text(encoding="utf-8")
    ]
    assert defined == ["report/charts.py"]


def test_chart_assets_are_the_two_static_files_inlinable() -> None:
    js = chart_assets()
    library = (static_dir() / "chart.umd.min.js").read_text(encoding="utf-8")
    renderer = (static_dir() / "xebench-charts.js").read_text(encoding="utf-8")
    assert library.split("//# sourceMappingURL=")[0].strip() in js
    assert renderer.strip() in js
    assert js.index("window.Chart") < js.index("window.xebenchCharts")  # library first
    assert "</script" not in js.lower() and "<!--" not in js and "sourceMappingURL" not in js


def test_the_renderer_needs_no_eval_and_builds_no_html() -> None:
    renderer = (static_dir() / "xebench-charts.js").read_text(encoding="utf-8")
    for banned in ("eval(", "new Function", "innerHTML", "outerHTML", "insertAdjacentHTML",
                   "document.write", "setTimeout(\"", "import("):  # fmt: skip
        assert banned not in renderer, banned
    assert 'script[type="application/json"].xb-chart' in renderer and "xb-chart-box" in renderer
    assert "aria-label" in renderer and "DOMContentLoaded" in renderer
