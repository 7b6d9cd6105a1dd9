"""GET /v1/slos and /v1/alerts over a replayed timeline, through the real service."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from xebench.analysis.slo import SLO
from xebench.service.app import create_app
from xebench.service.config import ServiceConfig, TokenEntry, TokenRegistry, hash_token
from xebench.store import EventStore

START = (datetime.now(UTC) - timedelta(hours=3)).replace(second=0, microsecond=0)
SLOS = (
    SLO("fraud-ll", model="fraud", sli="log_loss", objective=0.3, window=timedelta(minutes=5),
        min_samples=5, runbook="https://runbooks.example/fraud"),
    SLO("other-tenant", model="fraud", sli="log_loss", objective=0.3, tenant="beta"),
)  # fmt: skip


def at(minute: float) -> str:
    return (START + timedelta(minutes=minute)).isoformat().replace("+00:00", "Z")


def send(client: TestClient, first: int, last: int, label: int | None, prefix: str) -> None:
    """Ten predictions of P(1) = 0.9 per minute in [first, last); labelled ``label``."""
    events = [
        {"request_id": f"{prefix}-{m}-{i}", "model": "fraud", "probabilities": 0.9,
         "timestamp": at(m + i / 10)}
        for m in range(first, last) for i in range(10)
    ]  # fmt: skip
    assert client.post("/v1/predictions", json=events).status_code == 200
    if label is not None:
        labels = [{"request_id": e["request_id"], "label": label} for e in events]
        assert client.post("/v1/labels", json=labels).status_code == 200


@pytest.fixture(scope="module")
def client():
    config = ServiceConfig(slos=SLOS)
    with TestClient(create_app(EventStore(":memory:"), config)) as client:
        send(client, 0, 70, 1, "good")  # log loss -ln 0.9 = 0.105: good
        send(client, 70, 80, 0, "bad")  # -ln 0.1 = 2.3: bad
        send(client, 80, 100, 1, "after")  # recovery
        send(client, 100, 130, None, "unlabelled")  # labels not arrived yet
        yield client


def pages(client: TestClient, minute: int) -> list[str]:
    body = client.get("/v1/alerts", params={"at": at(minute)}).json()
    return sorted(a["severity"] for a in body["alerts"] if a["slo"] == "fraud-ll")


def test_a_planted_degradation_pages_and_resolves(client) -> None:
    assert pages(client, 70) == []
    assert pages(client, 71) == ["ticket"]  # 3d/6h at 1x: 1 bad of 71 judged > 1%
    # Minute E's verdict is the log loss of [E - 5m, E): the minute ending at 71 holds
    # one bad minute of five (10 of 50 events, mean 0.545 > 0.3), so minutes ending at
    # 71..84 are bad (b = E - 70 of them by minute E), all minutes since 1 judged.
    # Page 6h/30m at 6x a 1% budget: b / E > 0.06 first at E = 75 (5 / 75); the 1h
    # window (all 75 judged minutes so far) burns the same; 30m: 5 / 30 > 0.06.
    assert pages(client, 74) == ["ticket"]
    assert pages(client, 75) == ["page", "ticket"]
    # Recovery: the 30m window at E holds the minutes ending at E - 29 .. E, and burns
    # over its judged ones (those ending after 104 are excluded: no labels yet). At 112:
    # bad 83, 84 of judged 83..104 = 2 / 22 > 6%; at 113: 1 / 21 = 4.8% < 6%: resolved.
    assert "page" in pages(client, 112)
    assert "page" not in pages(client, 113)


def test_minutes_without_labels_are_excluded_not_bad(client) -> None:
    body = client.get("/v1/slos", params={"at": at(128)}).json()
    (slo,) = body["slos"]  # the default tenant sees its own SLO only
    assert slo["name"] == "fraud-ll" and slo["verdict"] == "excluded"
    assert "page" not in pages(client, 128)
    assert slo["bad_minutes"] == 14  # minutes ending at 71..84: only the planted period
    # Judged: minutes ending at 1..104 (the last one whose 5m window holds labelled events).
    assert slo["good_minutes"] + slo["bad_minutes"] == 104
    assert set(slo["burn_rates"]) == {"5m", "30m", "1h", "6h", "3d"}


def test_read_right_after_write_and_bad_queries(client) -> None:
    send(client, 130, 131, 0, "late")
    body = client.get("/v1/slos", params={"at": at(131)}).json()
    assert body["slos"][0]["verdict"] == "bad"  # the batch just acknowledged is in it
    for value in ("yesterday", "0001-01-01T00:00:00+01:00", "2026-01-01T00:00:00"):
        response = client.get("/v1/slos", params={"at": value})
        assert response.status_code == 422, value
        assert response.json()["errors"][0]["field"] == "/query/at"
    typo = client.get("/v1/alerts", params={"at_": at(131)})
    assert typo.status_code == 422 and typo.json()["errors"][0]["field"] == "/query/at_"


def test_tenants_see_only_their_slos() -> None:
    entries = [
        TokenEntry(tenant, frozenset({"read", "ingest"}), hash_token(token))
        for tenant, token in (("default", "a-token"), ("beta", "b-token"))
    ]
    config = ServiceConfig(slos=SLOS, tokens=TokenRegistry(entries))
    with TestClient(create_app(EventStore(":memory:"), config)) as client:
        assert client.get("/v1/slos").status_code == 401
        names = client.get("/v1/slos", headers={"Authorization": "Bearer b-token"}).json()
        assert [s["name"] for s in names["slos"]] == ["other-tenant"]
