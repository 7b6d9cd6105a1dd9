"""The HTML reports and the chart renderer in a real headless browser.

Needs Debian's ``chromium`` and the ``playwright`` package (in the test
extra; it drives the system browser, nothing is downloaded). Skipped, with
the reason, where either is missing -- except under CI (``CI`` set to ``1`` or
``true``, as ``.ci/run`` does, which installs chromium): there a missing
browser fails the test, so CI cannot pass without running it.

Checked: every chart block becomes a canvas with a Chart.js chart that drew
something, no console error, no request off the page, hostile model and
feature names stay text (no dialog, no element), and the renderer works when
served as static files under ``script-src 'self'`` (the dashboard's way).
"""

from __future__ import annotations

import contextlib
import http.server
import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import xebench as xb
from xebench.offline.drift import drift_frames
from xebench.report.charts import chart_block, chart_spec, static_dir
from xebench.report.drift import render_drift_html

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
IN_CI = os.environ.get("CI", "").lower() in {"1", "true"}
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
HOSTILE = ("<script>alert(1)</script>", '"><img src=x onerror=alert(1)>')

# In the page: one entry per chart block, what the browser made of it.
CHARTS = """() => Array.from(document.querySelectorAll('script.xb-chart')).map(block => {
  const box = block.nextElementSibling;
  const canvas = box && box.querySelector('canvas');
  const chart = canvas && Chart.getChart(canvas);
  let painted = 0;
  if (canvas) {
    const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
    for (let i = 3; i < pixels.length; i += 4) if (pixels[i] > 0) painted++;
  }
  return {
    box: box ? box.className : null,
    kind: box ? box.dataset.kind : null,
    label: canvas ? canvas.getAttribute('aria-label') : null,
    title: JSON.parse(block.textContent).title,
    chart: !!chart,
    datasets: chart ? chart.data.datasets.length : 0,
    painted: canvas ? painted / (canvas.width * canvas.height) : 0,
    yLabels: chart && chart.scales.y.type === 'category' ? chart.scales.y.getLabels() : null,
  };
})"""


def _playwright() -> Any:
    """playwright.sync_api; a skip where it is not installed, a failure under CI."""
    try:
        import playwright.sync_api
    except ImportError:
        if IN_CI:
            pytest.fail("playwright is not installed, but CI is set (it is in the test extra)")
        pytest.skip("playwright is not installed")
    return playwright.sync_api


@pytest.fixture
def browser_path() -> str:
    """The system chromium; a skip where it is missing, a failure under CI."""
    if CHROMIUM is None:
        message = "no chromium on this machine"
        if IN_CI:
            pytest.fail(f"{message}, but CI is set (.ci/run installs Debian's chromium)")
        pytest.skip(message)
    return CHROMIUM


class _Watch:
    """Everything a page did that a report must not: errors, requests, dialogs."""

    def __init__(self, page: Any) -> None:
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.dialogs: list[str] = []
        page.on("request", lambda request: self.requests.append(request.url))
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.on(
            "console",
            lambda message: self.errors.append(message.text) if message.type == "error" else None,
        )
        page.on("dialog", self._dialog)

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()


def _open_offline(browser_path: str, path: Path, probe: str) -> tuple[Any, _Watch]:
    """Open a report file with the network off; ``probe`` (JS) evaluated once drawn."""
    playwright = _playwright()
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=browser_path, args=ARGS)
        try:
            context = browser.new_context(offline=True, viewport={"width": 1200, "height": 900})
            page = context.new_page()
            watch = _Watch(page)
            page.goto(path.as_uri())
            page.wait_for_function(
                "document.querySelectorAll('script.xb-chart').length > 0 && "
                "document.querySelectorAll('.xb-chart-box canvas').length"
                " === document.querySelectorAll('script.xb-chart').length"
            )
            page.wait_for_timeout(200)  # a dialog, if any, has had its chance
            return page.evaluate(probe), watch
        finally:
            browser.close()


def _check_charts(charts: list[dict], kinds: list[str]) -> None:
    assert [c["kind"] for c in charts] == kinds
    for c in charts:
        assert c["box"] == "xb-chart-box" and c["chart"], c
        assert c["label"] == c["title"]
        assert c["painted"] > 0.01, f"{c['kind']} chart {c['title']!r} looks blank"


def _check_clean(watch: _Watch, path: Path) -> None:
    assert watch.errors == []
    assert watch.dialogs == []
    assert [url for url in watch.requests if url != path.as_uri()] == []


@pytest.mark.slow
def test_benchmark_report_renders_every_chart_offline(tmp_path: Path, browser_path: str) -> None:
    rng = np.random.default_rng(0)
    truth = rng.uniform(0.05, 0.95, 3000)
    data = {
        "y": (rng.uniform(size=3000) < truth).astype(int),
        "good": truth,
        "sharp": np.clip(truth + rng.normal(0, 0.2, 3000), 0.01, 0.99),
        "region": rng.choice(["eu", "us"], 3000),
    }
    probs = {HOSTILE[0]: "good", HOSTILE[1]: "sharp"}
    result = xb.benchmark(data, label="y", probs=probs, cohorts=["region"])
    path = tmp_path / "report.html"
    path.write_text(result.to_html(), encoding="utf-8")
    assert path.stat().st_size < 1_000_000
    probe = f"""() => ({{
      charts: ({CHARTS})(),
      text: document.body.innerText,
      images: document.querySelectorAll('img').length,
      scripts: document.querySelectorAll('script').length,
      reliability: Chart.getChart(
        document.querySelector('#chart-reliability-0 canvas')).data.datasets.length,
    }})"""
    found, watch = _open_offline(browser_path, path, probe)
    _check_clean(watch, path)
    _check_charts(found["charts"], ["ranking"] + ["reliability"] * 2 + ["histogram"] * 2)
    assert found["reliability"] == 3  # the diagonal, the model, its rows per bin
    names = [m["name"] for m in result.to_dict()["models"]]
    assert found["charts"][0]["yLabels"] == names  # drawn as text on the canvas
    assert found["images"] == 0
    assert found["scripts"] == 1 + 5  # the charting code and the five chart blocks
    for name in HOSTILE:
        assert name in found["text"]  # in the tables, as text


@pytest.mark.slow
def test_drift_report_renders_every_feature_offline(tmp_path: Path, browser_path: str) -> None:
    rng = np.random.default_rng(1)
    reference = {HOSTILE[0]: rng.normal(0, 1, 2000), HOSTILE[1]: ["a", "b"] * 1000}
    current = {HOSTILE[0]: rng.normal(1, 1, 2000), HOSTILE[1]: ["a", "b", "b", "b"] * 500}
    document = drift_frames(reference, current).to_dict()
    path = tmp_path / "drift.html"
    path.write_text(render_drift_html(document), encoding="utf-8")
    assert path.stat().st_size < 1_000_000
    probe = f"""() => ({{
      charts: ({CHARTS})(),
      text: document.body.innerText,
      images: document.querySelectorAll('img').length,
    }})"""
    found, watch = _open_offline(browser_path, path, probe)
    _check_clean(watch, path)
    _check_charts(found["charts"], ["bar", "bar"])
    assert all(c["datasets"] == 2 for c in found["charts"])  # reference, current
    assert found["images"] == 0
    for name in HOSTILE:
        assert name in found["text"]
        assert any(c["title"].startswith(name) for c in found["charts"])


def _every_kind() -> list[dict]:
    hours = [1714521600000 + i * 3_600_000 for i in range(24)]
    loss = [0.3 + 0.03 * np.sin(i / 3) for i in range(24)]
    loss[7] = float("nan")  # a gap
    return [
        chart_spec(
            "line",
            title="log loss, 1h windows",
            x_type="time",
            x_label="time (UTC)",
            y_label="nats",
            series=[
                {
                    "name": "v1",
                    "x": hours,
                    "y": loss,
                    "lo": [v - 0.02 for v in loss],
                    "hi": [v + 0.02 for v in loss],
                },
                {
                    "name": "v2",
                    "x": [f"2024-05-01T{h:02d}:30:00Z" for h in range(24)],
                    "y": [0.33] * 24,
                },
            ],
            thresholds=[{"y": 0.3, "label": "SLO log loss <= 0.3"}],
        ),
        chart_spec(
            "bar",
            title="share per bin",
            series=[
                {"name": "reference", "x": ["a", "b", "c"], "y": [0.2, 0.5, 0.3]},
                {"name": "current", "x": ["a", "b", "c"], "y": [0.1, 0.4, 0.5]},
            ],
            y_format="percent",
        ),
        chart_spec(
            "histogram",
            title="predicted probability",
            x_type="linear",
            series=[
                {"name": "reference", "x": [0.125, 0.375, 0.625, 0.875], "y": [5, 9, 4, 1]},
                {"name": "current", "x": [0.125, 0.375, 0.625, 0.875], "y": [2, 6, 8, 3]},
            ],
        ),
        chart_spec(
            "reliability",
            title="reliability",
            x_type="linear",
            series=[
                {
                    "name": "m",
                    "x": [0.1, 0.5, None, 0.9],
                    "y": [0.12, 0.45, None, 0.8],
                    "counts": [400, 250, 0, 50],
                },
            ],
            bin_edges=[0, 0.25, 0.5, 0.75, 1],
        ),
        chart_spec(
            "ranking",
            title="ranking",
            x_type="linear",
            series=[
                {
                    "name": "log loss",
                    "x": [0.4460084, 0.5391481],
                    "y": list(HOSTILE),
                    "lo": [0.4349132, 0.5193953],
                    "hi": [0.4571035, 0.5589008],
                }
            ],
        ),
    ]


class _Static(http.server.SimpleHTTPRequestHandler):
    """The page at /, the package's static files under /static/, a strict CSP on all."""

    page = b""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, directory=str(static_dir()), **kwargs)

    def translate_path(self, path: str) -> str:
        return super().translate_path(path.removeprefix("/static"))

    def do_GET(self) -> None:
        if self.path == "/favicon.ico":  # the browser asks; a 404 would log a console error
            self.send_response(204)
            self.end_headers()
            return None
        if self.path != "/":
            return super().do_GET()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(self.page)))
        self.end_headers()
        self.wfile.write(self.page)

    def end_headers(self) -> None:
        csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'"
        self.send_header("Content-Security-Policy", csp)
        super().end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@contextlib.contextmanager
def _serve(page: str) -> Iterator[str]:
    handler = type("Handler", (_Static,), {"page": page.encode()})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.slow
def test_every_kind_from_static_files_under_a_strict_csp(browser_path: str) -> None:
    playwright = _playwright()
    blocks = "\n".join(chart_block(spec) for spec in _every_kind())
    page_html = (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>charts</title>'
        '<script src="/static/chart.umd.min.js" defer></script>'
        '<script src="/static/xebench-charts.js" defer></script></head>'
        f'<body><main id="main">{blocks}</main></body></html>'
    )
    with _serve(page_html) as base, playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=browser_path, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1000, "height": 900})
            page.add_init_script(
                "window.__violations = [];"
                "document.addEventListener('securitypolicyviolation',"
                " e => window.__violations.push(e.violatedDirective));"
            )
            watch = _Watch(page)
            page.goto(base + "/")
            page.wait_for_function("document.querySelectorAll('.xb-chart-box canvas').length === 5")
            charts = page.evaluate(CHARTS)
            line = page.evaluate(
                "() => Chart.getChart(document.querySelector('[data-kind=line] canvas'))"
                ".data.datasets.map(d => d.label)"
            )
            tooltip = page.evaluate(
                """() => {
                  const canvas = document.querySelector('[data-kind=ranking] canvas');
                  const chart = Chart.getChart(canvas);
                  chart.tooltip.setActiveElements([{datasetIndex: 0, index: 0}], {x: 0, y: 0});
                  chart.update();
                  return chart.tooltip.body.map(b => b.lines).flat();
                }"""
            )
            # Re-render after a change of content: one chart per block still, the new numbers.
            rerendered = page.evaluate(
                """() => {
                  const block = document.querySelector('script.xb-chart');
                  const old = block.nextElementSibling.querySelector('canvas');
                  const spec = JSON.parse(block.textContent);
                  spec.title = 'changed';
                  block.textContent = JSON.stringify(spec);
                  const drawn = window.xebenchCharts.render(document.getElementById('main'));
                  const boxes = document.querySelectorAll('.xb-chart-box');
                  return {
                    drawn: drawn.length,
                    boxes: boxes.length,
                    oldGone: !Chart.getChart(old) && !old.isConnected,
                    label: boxes[0].querySelector('canvas').getAttribute('aria-label'),
                  };
                }"""
            )
            violations = page.evaluate("window.__violations")
            formatted = page.evaluate(
                "[0.123456, 12345.678, 1e-7, 0, null].map(window.xebenchCharts.format)"
            )
        finally:
            browser.close()
    assert watch.errors == [] and watch.dialogs == [] and violations == []
    assert {url.split("/", 3)[-1] for url in watch.requests} == {
        "",
        "static/chart.umd.min.js",
        "static/xebench-charts.js",
    }
    assert all(url.startswith(base) for url in watch.requests)
    _check_charts(charts, ["line", "bar", "histogram", "reliability", "ranking"])
    assert line == ["v1 (upper)", "v1 (lower)", "v1", "v2"]  # the band, then the lines
    assert charts[-1]["yLabels"] == list(HOSTILE)
    assert tooltip == ["log loss: 0.4460 [0.4349, 0.4571]"]  # 4 significant digits
    assert rerendered == {"drawn": 5, "boxes": 5, "oldGone": True, "label": "changed"}
    assert formatted == ["0.1235", "12,350", "1.000e-7", "0.000", "n/a"]
