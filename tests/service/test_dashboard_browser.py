"""The web dashboard in a real browser: Debian's chromium, driven by Playwright.

A served store (a few hours of the demo's stream for tenant ``acme``, plus
traffic whose cohort values, request ids and features are hostile HTML, and
another tenant's model) is opened as a user would: the login form, each view,
the navigation and the filters. Every view must load with no console error,
no request leaving the server, no dialog (the hostile text stays text), its
charts drawn (a Chart.js chart with data on every canvas), the numbers shown
equal to the API's, and nothing of the other tenant. Screenshots of each view
go to ``$XEBENCH_SCREENSHOTS`` (default: the test's temporary directory).

Needs chromium and playwright: skipped where missing, failed under CI (``.ci/run``
installs chromium), as for the report's browser test.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from dashboard_helpers import ACME, HOSTILE, OTHER, SECRET_MODEL, bearer, config, number, traffic

from loopback import serve_in_thread
from xebench.analysis.slo import SLO
from xebench.demo.stream import generate, load
from xebench.service.app import create_app
from xebench.store import EventStore

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
IN_CI = os.environ.get("CI", "").lower() in {"1", "true"}

pytestmark = pytest.mark.slow


def _playwright() -> Any:
    try:
        import playwright.sync_api
    except ImportError:
        if IN_CI:
            pytest.fail("playwright is not installed, but CI is set (it is in the test extra)")
        pytest.skip("playwright is not installed")
    if CHROMIUM is None:
        if IN_CI:
            pytest.fail("no chromium, but CI is set (.ci/run installs Debian's chromium)")
        pytest.skip("no chromium on this machine")
    return playwright.sync_api


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    store = EventStore(tmp_path_factory.mktemp("dash") / "events.duckdb")
    stream = generate(hours=4, rate_per_minute=40)
    load(store, stream, tenant="acme")
    store.update_buckets()
    hour = timedelta(hours=1)
    slos = (
        SLO("fraud-log-loss", model="fraud", sli="log_loss", objective=0.35, window=hour,
            min_samples=50, tenant="acme", runbook="https://runbooks.example/fraud"),
        SLO("fraud-eu-ece", model="fraud", cohort="region:eu", sli="ece", objective=0.02,
            window=hour, min_samples=50, tenant="acme", runbook="javascript:alert(1)"),
    )  # fmt: skip
    app = create_app(store, dataclasses.replace(config(), slos=slos))
    with serve_in_thread(app) as url:
        predictions, labels = traffic(400, model="triage-hostile")
        with httpx.Client(base_url=url, headers=bearer(ACME)) as client:
            assert client.post("/v1/predictions", json=predictions).status_code == 200
            assert client.post("/v1/labels", json=labels).status_code == 200
        secret, _ = traffic(30, model=SECRET_MODEL, seed=2)
        httpx.post(url + "/v1/predictions", json=secret, headers=bearer(OTHER))
        yield url
    store.close()


class Watch:
    """What a page did: console errors, page errors, dialogs, requests off the server."""

    def __init__(self, page: Any, base: str) -> None:
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        self.foreign: list[str] = []
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)

        def dialog(d: Any) -> None:
            self.dialogs.append(d.message)
            d.dismiss()

        page.on("dialog", dialog)
        page.on("request", lambda r: None if r.url.startswith(base) else self.foreign.append(r.url))

    def clean(self) -> None:
        assert self.errors == [] and self.dialogs == [] and self.foreign == []


def _charts(page: Any) -> list[dict[str, Any]]:
    """Per chart block: its kind, whether Chart.js drew it and how many points it has."""
    page.wait_for_function(
        "document.querySelectorAll('script.xb-chart').length"
        " === document.querySelectorAll('.xb-chart-box canvas').length"
    )
    return page.evaluate(
        """() => Array.from(document.querySelectorAll('.xb-chart-box canvas')).map(c => {
            const chart = Chart.getChart(c);
            return {kind: c.closest('.xb-chart-box').dataset.kind, drawn: !!chart,
                    width: c.width, points: chart ? chart.data.datasets.reduce(
                        (n, d) => n + d.data.filter(v => v !== null).length, 0) : 0};
        })"""
    )


def test_every_view_in_a_real_browser(served: str, tmp_path: Path) -> None:
    playwright = _playwright()
    shots = Path(os.environ.get("XEBENCH_SCREENSHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    with (
        playwright.sync_playwright() as p,
        httpx.Client(base_url=served, headers=bearer(ACME)) as api,
    ):
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
            watch = Watch(page, served)
            # A user follows a link to the on-call view and is asked to log in first.
            page.goto(served + "/oncall?model=fraud")
            assert page.url.startswith(served + "/login")
            page.fill("input[name=token]", ACME)
            page.click("button[type=submit]")
            page.wait_for_url(served + "/oncall?model=fraud")
            charts = _charts(page)
            assert {c["kind"] for c in charts} >= {"line", "bar"}
            assert all(c["drawn"] and c["points"] > 0 and c["width"] > 0 for c in charts)
            for window in ("1h", "6h", "24h"):
                shown = page.inner_text(f"tr[data-window='{window}'] td[data-metric=log_loss]")
                expected = api.get("/v1/metrics", params={"model": "fraud", "window": window})
                assert number(shown) == pytest.approx(expected.json()["log_loss"], abs=5e-5)
            page.screenshot(path=str(shots / "dashboard-oncall.png"), full_page=True)

            page.click("nav a:text('Executive')")
            page.wait_for_url(served + "/?model=fraud")
            assert all(c["drawn"] and c["points"] > 0 for c in _charts(page))
            assert page.locator("table.slos tr").count() >= 3
            page.select_option("select[name=model]", "")  # every model
            page.click("form.filters button")
            page.wait_for_url(served + "/?model=&key=")
            page.screenshot(path=str(shots / "dashboard-executive.png"), full_page=True)
            assert page.locator("section.model").count() == 3  # fraud, triage, triage-hostile

            page.goto(served + "/debug?model=triage-hostile")
            page.select_option("select[name=window]", "6h")
            page.click("form.filters button")
            page.wait_for_url(lambda url: "triage-hostile" in url and "window=6h" in url)
            kinds = {c["kind"] for c in _charts(page)}
            assert {"reliability", "histogram"} <= kinds
            shown = page.inner_text("table.events")
            assert all(text in shown for text in HOSTILE)  # shown as text, not run as markup
            page.goto(served + "/debug?model=fraud&cohort=region:eu")
            assert all(c["drawn"] for c in _charts(page))
            page.screenshot(path=str(shots / "dashboard-debug.png"), full_page=True)
            html = page.content()
            watch.clean()
        finally:
            browser.close()
    assert SECRET_MODEL not in html
    assert not any(text in html for text in HOSTILE)
    assert all((shots / f"dashboard-{v}.png").stat().st_size > 10_000 for v in
               ("oncall", "executive", "debug"))  # fmt: skip
