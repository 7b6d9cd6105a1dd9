"""The HTML report in a real headless browser: charts render with the network off.

Needs Debian's ``chromium`` and the ``playwright`` package (in the test
extra; it drives the system browser, nothing is downloaded). Skipped, with
the reason, where either is missing -- except under CI (``CI`` set to ``1`` or
``true``, as ``.ci/run`` does, which installs chromium): there a missing
browser fails the test, so CI cannot pass without running it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import xebench as xb

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
IN_CI = os.environ.get("CI", "").lower() in {"1", "true"}


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


@pytest.mark.slow
def test_report_renders_every_chart_offline(tmp_path: Path, browser_path: str) -> None:
    playwright = _playwright()
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
            executable_path=browser_path,
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
