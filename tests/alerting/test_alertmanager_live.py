"""A real Alertmanager (Debian's prometheus-alertmanager) on a loopback port receives an
xebench alert through ``POST /api/v2/alerts``: it lists it (same labels, same
fingerprint), routes it to its own webhook receiver, then takes the resolve (endsAt)
and sends the resolved notification.

Skipped where the binary is missing, except under CI (``CI`` set), where that fails.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alerting_helpers import alertmanager, alertmanager_alerts, receiver, slo, status, wait_for

from xebench.alerting import Alerting, AlertingSettings
from xebench.store import EventStore


@pytest.mark.slow
def test_alertmanager_receives_the_alert_then_its_resolve(tmp_path: Path) -> None:
    with receiver() as hook, alertmanager(tmp_path, hook.url + "/am") as base:
        settings = AlertingSettings.from_mapping(
            {"alertmanager": {"url": base, "resend_interval": "1m"},
             "external_url": "http://127.0.0.1:8000"}
        )  # fmt: skip
        with EventStore(":memory:") as store:
            alerting = Alerting(store, settings, rng=random.Random(0))
            # Alertmanager judges endsAt by its own clock: evaluate at real minutes.
            now = datetime.now(UTC)
            fired = now.replace(second=0, microsecond=0) - timedelta(minutes=2)
            s = slo(version="v7", labels={"team": "risk"})
            [page] = [c for c in alerting.evaluate([status(s, page=2)], fired) if c.notices]
            assert alerting.deliver_due(now)["delivered"] == 1

            [held] = wait_for(lambda: alertmanager_alerts(base))
            assert held["labels"] == page.after.labels
            assert held["labels"]["alertname"] == "XebenchSLOBurnRate"
            assert held["fingerprint"] == page.after.fingerprint  # the same hash of the labels
            assert held["status"]["state"] == "active"
            assert held["startsAt"].startswith(fired.strftime("%Y-%m-%dT%H:%M"))
            assert held["annotations"]["runbook_url"] == "https://runbooks.example/fraud"
            assert held["generatorURL"] == "http://127.0.0.1:8000/v1/alerts"
            # It routes it to its receivers: our webhook gets Alertmanager's own body.
            firing = wait_for(lambda: [r for r in hook.requests if r.body["status"] == "firing"])
            assert firing[0].body["alerts"][0]["fingerprint"] == page.after.fingerprint

            resolved_at = fired + timedelta(minutes=1)
            [end] = [c for c in alerting.evaluate([status(s)], resolved_at) if c.notices]
            assert end.notices == ("resolved",)
            assert alerting.deliver_due(datetime.now(UTC))["delivered"] == 1
            # Resolved: no longer active, and its receivers get the resolved notification.
            wait_for(lambda: not alertmanager_alerts(base))
            ended = wait_for(lambda: [r for r in hook.requests if r.body["status"] == "resolved"])
            [alert] = ended[0].body["alerts"]
            assert alert["fingerprint"] == page.after.fingerprint
            assert alert["endsAt"].startswith(resolved_at.strftime("%Y-%m-%dT%H:%M"))
            assert alerting.outbox_summary()["delivered"] == 2
