"""deploy/alertmanager/alertmanager.yml: ``amtool check-config`` passes, pages route to
the pager and tickets to the ticket queue, and a real Alertmanager running it takes
alerts in (``POST /api/v2/alerts``), lists them (``GET /api/v2/alerts``), mutes an
SLO's ticket while the same SLO pages, and notifies the pager's webhook."""

from __future__ import annotations

import copy
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from promstack import ALERTMANAGER_CONFIG, Daemons, WebhookSink, require, run

SLO = {"alertname": "XebenchSLOBurnRate", "slo": "fraud-ll", "model": "fraud", "sli": "log_loss"}


def _route(*labels: str) -> str:
    """The receiver amtool routes an alert with ``labels`` (``name=value``) to."""
    result = run(
        require("amtool"),
        "config",
        "routes",
        "test",
        f"--config.file={ALERTMANAGER_CONFIG}",
        *labels,
    )
    assert result.returncode == 0, result.stdout
    # amtool warns on stderr that --config.file overrides --alertmanager.url; the
    # receivers are the last line.
    return result.stdout.strip().splitlines()[-1]


def test_amtool_check_config() -> None:
    result = run(require("amtool"), "check-config", str(ALERTMANAGER_CONFIG))
    assert result.returncode == 0, result.stdout
    assert "SUCCESS" in result.stdout


def test_routes() -> None:
    slo = [f"{k}={v}" for k, v in SLO.items()]
    assert _route(*slo, "severity=page") == "pager"
    assert _route(*slo, "severity=ticket") == "ticket"
    assert _route("alertname=SomethingElse") == "ticket"  # no severity: not dropped


def test_grouping_and_inhibition_are_per_slo() -> None:
    config = yaml.safe_load(ALERTMANAGER_CONFIG.read_text(encoding="utf-8"))
    keys = ["slo", "model", "version", "cohort"]
    assert config["route"]["group_by"] == ["alertname", *keys]
    (inhibit,) = config["inhibit_rules"]
    assert inhibit["equal"] == keys
    assert 'severity="page"' in inhibit["source_matchers"]
    assert 'severity="ticket"' in inhibit["target_matchers"]
    for receiver in config["receivers"]:
        for hook in receiver["webhook_configs"]:
            assert hook["url"].startswith("http://127.0.0.1:"), hook


def _alert(severity: str, **labels: str) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "labels": {**SLO, "severity": severity, **labels},
        "annotations": {
            "summary": f"{severity} test",
            "runbook_url": "https://runbooks.example/fraud",
        },
        "startsAt": now.isoformat(),
        "endsAt": (now + timedelta(minutes=10)).isoformat(),
        "generatorURL": "http://127.0.0.1:9090/graph",
    }


def _local(config: dict[str, Any], sink: WebhookSink) -> dict[str, Any]:
    """deploy's config with the webhooks pointed at ``sink`` and waits of 1 s (the
    routes, grouping and inhibition untouched)."""
    config = copy.deepcopy(config)
    for receiver in config["receivers"]:
        for hook in receiver["webhook_configs"]:
            hook["url"] = f"{sink.url}/{receiver['name']}"
    for route in [config["route"], *config["route"]["routes"]]:
        route["group_wait"] = "1s"
    return config


def _listed(daemon: Any, timeout: float = 10.0, **match: str) -> list[dict[str, Any]]:
    """``GET /api/v2/alerts`` until it lists an alert whose labels include ``match``."""
    deadline = time.monotonic() + timeout
    while True:
        alerts = daemon.get("/api/v2/alerts")
        found = [a for a in alerts if match.items() <= a["labels"].items()]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


@pytest.mark.slow
def test_alertmanager_takes_lists_and_inhibits(daemons: Daemons, tmp_path: Path) -> None:
    config = yaml.safe_load(ALERTMANAGER_CONFIG.read_text(encoding="utf-8"))
    with WebhookSink() as sink:
        am = daemons.alertmanager(config=_local(config, sink))
        # A ticket alone is active and routed to the ticket receiver.
        assert am.post("/api/v2/alerts", [_alert("ticket")]).status_code == 200
        (ticket,) = _listed(am, severity="ticket")
        assert ticket["status"]["state"] == "active"
        assert [r["name"] for r in ticket["receivers"]] == ["ticket"]
        # The same SLO pages: the page is active, routed to the pager, and mutes the ticket.
        assert am.post("/api/v2/alerts", [_alert("page")]).status_code == 200
        (page,) = _listed(am, severity="page")
        assert page["status"]["state"] == "active"
        assert [r["name"] for r in page["receivers"]] == ["pager"]
        deadline = time.monotonic() + 10
        while True:  # the inhibitor sees new source alerts asynchronously
            (ticket,) = _listed(am, severity="ticket")
            if ticket["status"]["inhibitedBy"] or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert ticket["status"]["state"] == "suppressed"
        assert ticket["status"]["inhibitedBy"] == [page["fingerprint"]]
        # Another SLO's ticket is not muted by this page.
        other = _alert("ticket", slo="triage-brier", model="triage")
        assert am.post("/api/v2/alerts", [other]).status_code == 200
        (other_ticket,) = _listed(am, slo="triage-brier")
        assert other_ticket["status"]["state"] == "active"
        # The pager's webhook gets the page, grouped by SLO, with its labels.
        sink.wait(lambda got: any(path == "/pager" for path, _ in got))
        body = next(b for p, b in sink.received if p == "/pager")
        assert body["receiver"] == "pager"
        assert body["groupLabels"] == {k: v for k, v in SLO.items() if k != "sli"}
        assert [a["labels"]["severity"] for a in body["alerts"]] == ["page"]
