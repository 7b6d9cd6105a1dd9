"""A real Prometheus scrapes a real ``xebench serve``: the scraped log loss equals
``/v1/metrics`` for the same window, and every expression of the Grafana dashboard and
of deploy's rules returns data.

Skipped where Prometheus is missing, except under CI (``CI`` set), where that fails.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from promstack import RULES, Daemons, free_port
from test_grafana import _dashboard, _exprs, _fill

from xebench.demo.stream import generate, load
from xebench.store import EventStore

SLOS = [
    {"name": "fraud-ll", "model": "fraud", "sli": "log_loss", "objective": 0.3,
     "window": "1h", "min_samples": 50, "runbook": "https://runbooks.example/fraud"},
    {"name": "eu-coverage", "model": "fraud", "cohort": "region:eu", "sli": "label_coverage",
     "objective": 0.5, "min_samples": 20},
]  # fmt: skip


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``xebench serve`` on a loopback port over a 3-hour demo store with two SLOs."""
    folder = tmp_path_factory.mktemp("scrape")
    with EventStore(folder / "x.duckdb") as store:
        load(store, generate(hours=3, rate_per_minute=30, seed=2))
        store.update_buckets()
    config = folder / "xebench.yaml"
    config.write_text(yaml.safe_dump({"db": str(folder / "x.duckdb"), "slos": SLOS}))
    port = free_port()
    log = (folder / "serve.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "xebench", "serve", "--config", str(config),
         "--host", "127.0.0.1", "--port", str(port)],
        stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "NO_COLOR": "1"},
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, (folder / "serve.log").read_text()
            try:
                if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "xebench serve did not become ready"
            time.sleep(0.2)
        # One refused batch and one 422, so the rejection counters have samples too.
        httpx.post(url + "/v1/predictions", json=[{"request_id": "x", "model": "fraud",
                                                    "probabilities": 2}])  # fmt: skip
        yield url
    finally:
        process.terminate()
        process.wait(20)
        log.close()


@pytest.mark.slow
def test_prometheus_scrapes_what_v1_metrics_answers(daemons: Daemons, server: str) -> None:
    port = server.rsplit(":", 1)[1]
    prometheus = daemons.prometheus(scrape_targets=[f"127.0.0.1:{port}"], rule_files=[RULES])
    prometheus.wait_for('up{job="xebench"} == 1')
    # The 24h window holds the whole 3-hour stream: the same value at any minute.
    selector = 'xebench_log_loss{model="fraud", window="24h", version="", cohort=""}'
    [sample] = prometheus.wait_for(selector)
    window = httpx.get(server + "/v1/metrics", params={"model": "fraud", "window": "24h"}).json()
    assert float(sample["value"][1]) == pytest.approx(window["log_loss"], rel=1e-12)
    [coverage] = prometheus.wait_for(
        'xebench_label_coverage{model="fraud", window="24h", version="", cohort="region:eu"}'
    )
    eu = httpx.get(
        server + "/v1/metrics", params={"model": "fraud", "window": "24h", "cohort": "region:eu"}
    ).json()
    assert float(coverage["value"][1]) == pytest.approx(eu["coverage"], rel=1e-12)
    # The SLO series and the rules over them.
    prometheus.wait_for('xebench_slo_minute_judged{slo="fraud-ll"}')
    prometheus.wait_for('slo:sli_error:ratio_rate5m{slo="fraud-ll"}', timeout=30)
    # Every panel and variable of the dashboard returns data on this server's series
    # (rates need two scrapes of a counter: give them a few seconds).
    time.sleep(3)
    empty = []
    for where, expr in _exprs(_dashboard()):
        answer = prometheus.query(_fill(expr))
        assert answer["status"] == "success", (where, expr, answer)
        if not answer["data"]["result"]:
            empty.append(where)
    assert not empty, f"no data for {empty}"
    # Every recording rule has a value.
    groups = yaml.safe_load(Path(RULES).read_text(encoding="utf-8"))["groups"]
    records = {r["record"] for g in groups for r in g["rules"] if "record" in r}
    missing = [r for r in sorted(records) if not prometheus.query(r)["data"]["result"]]
    assert not missing, f"recording rules without data: {missing}"
