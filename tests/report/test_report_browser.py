"""The HTML report in a real headless browser: charts render with the network off.

Needs Debian's ``chromium`` and the ``playwright`` package (in the test
extra; it drives the system browser, nothing is downloaded). Skipped, with
the reason, where either is missing.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

import xebench as xb

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
playwright = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium on this machine")


def test_report_renders_every_chart_offline(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    truth = rng.uniform(0.05, 0.95, 3000)
    data = {
        "y": (rng.uniform(size=3000) < truth).astype(int),
        "good": truth,
        "sharp": np.clip(truth + rng.normal(0, 0.2, 3000), 0.01, 0.99),
        "region": rng.choice(["eu", "us"], 3000),
    }
    result = xb.benchmark(data, label="y", probs=["good", "sharp"], cohorts=["region"])
    page_path = tmp_path / "report.html"
    page_path.write_text(result.to_html(), encoding="utf-8")
    requests: list[str] = []
    errors: list[str] = []
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            context = browser.new_context(offline=True)
            page = context.new_page()
            page.on("request", lambda request: requests.append(request.url))
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.on(
                "console",
                lambda message: errors.append(message.text) if message.type == "error" else None,
            )
            page.goto(page_path.as_uri())
            page.wait_for_function("document.querySelectorAll('.js-plotly-plot').length >= 5")
            plots = page.eval_on_selector_all(".js-plotly-plot", "nodes => nodes.map(n => n.id)")
            traces = page.evaluate("document.getElementById('chart-reliability-0').data.length")
        finally:
            browser.close()
    assert errors == []
    assert [url for url in requests if not url.startswith("file://")] == []
    assert set(plots) == {
        "chart-ranking",
        "chart-reliability-0",
        "chart-reliability-1",
        "chart-histogram-0",
        "chart-histogram-1",
    }
    assert traces == 3  # rows per bin, the diagonal, the model
