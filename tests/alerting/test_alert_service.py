"""The service end to end: events posted, the SLO minute loop judges them, the alert
fires, the writer stores it with its outbox, and the delivery worker reaches a webhook
and a real Alertmanager; GET /v1/alerts shows the stored state.

Skipped where Alertmanager is missing, except under CI (``CI`` set), where that fails.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alerting_helpers import alertmanager, alertmanager_alerts, receiver, wait_for
from fastapi.testclient import TestClient

from xebench.alerting import AlertingSettings
from xebench.analysis.slo import SLO
from xebench.service.app import create_app
from xebench.service.config import ServiceConfig
from xebench.store import EventStore


def _events(start: datetime, minutes: range, label: int, prefix: str) -> tuple[list, list]:
    preds = [
        {"request_id": f"{prefix}-{m}-{i}", "model": "fraud", "probabilities": 0.9,
         "timestamp": (start + timedelta(minutes=m, seconds=6 * i)).isoformat()}
        for m in minutes for i in range(10)
    ]  # fmt: skip
    return preds, [{"request_id": p["request_id"], "label": label} for p in preds]


@pytest.mark.slow
def test_a_degradation_reaches_the_webhook_and_alertmanager(tmp_path: Path) -> None:
    slo = SLO("fraud-ll", model="fraud", sli="log_loss", objective=0.3,
              window=timedelta(minutes=5), min_samples=5,
              runbook="https://runbooks.example/fraud")  # fmt: skip
    with receiver() as hook, alertmanager(tmp_path, hook.url + "/am") as base:
        alerting = AlertingSettings.from_mapping(
            {"webhooks": [{"url": hook.url + "/oncall", "name": "oncall"}],
             "alertmanager": {"url": base}}
        )  # fmt: skip
        config = ServiceConfig(slos=(slo,), alerting=alerting)
        # 70 good minutes then 10 bad ones, ending now: the page holds at the real
        # clock's minute (Alertmanager judges startsAt / endsAt by its own clock).
        start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=79)
        with TestClient(create_app(EventStore(tmp_path / "x.duckdb"), config)) as client:
            for minutes, label, prefix in ((range(0, 70), 1, "good"), (range(70, 80), 0, "bad")):
                preds, labels = _events(start, minutes, label, prefix)
                assert client.post("/v1/predictions", json=preds).status_code == 200
                assert client.post("/v1/labels", json=labels).status_code == 200
            state = client.app.state.xebench
            # The minute loop's next turn, now rather than at the next minute boundary;
            # the writer thread applies it (its "alerts" task) and the worker sends it.
            state.slo_runner.run_once()
            stored = wait_for(
                lambda: [a for a in client.get("/v1/alerts").json()["alerts"]
                         if a["severity"] == "page" and a["state"] == "firing"]
            )  # fmt: skip
            assert stored[0]["slo"] == "fraud-ll"
            assert stored[0]["labels"]["alertname"] == "XebenchSLOBurnRate"
            # The webhook gets the Alertmanager webhook body, with an idempotency key.
            sent = wait_for(lambda: [r for r in hook.requests if r.path == "/oncall"])
            body = sent[0].body
            assert body["version"] == "4" and body["status"] == "firing"
            assert sent[0].key and body["alerts"][0]["labels"]["slo"] == "fraud-ll"
            assert body["alerts"][0]["annotations"]["runbook_url"].endswith("/fraud")
            # And the real Alertmanager holds it.
            held = wait_for(lambda: [a for a in alertmanager_alerts(base)
                                     if a["labels"].get("severity") == "page"])  # fmt: skip
            assert held[0]["labels"]["slo"] == "fraud-ll"
            delivery = client.get("/v1/alerts").json()["delivery"]
            assert delivery["dead"] == 0
