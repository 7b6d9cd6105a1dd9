"""GET /v1/metrics, /v1/drift and /v1/compare: contracts, independent values, tenants."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sklearn.metrics import brier_score_loss, log_loss

from xebench.service.app import create_app
from xebench.service.config import ServiceConfig, TokenEntry, TokenRegistry, hash_token
from xebench.store.event_store import EventStore

NOW = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=5)
# docs/contracts.md: a window object has at least these fields.
WINDOW_FIELDS = {
    "from", "to", "n_predictions", "n_labelled", "coverage", "log_loss", "log_loss_ci",
    "brier", "ece", "skill", "perplexity", "label_lag_p50_s", "provisional",
}  # fmt: skip


def _events(seed: int = 0, n: int = 3000) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Binary predictions over the last 3 hours, 80% labelled 10 minutes later."""
    rng = np.random.default_rng(seed)
    predictions, labels = [], []
    for i in range(n):
        moment = NOW - timedelta(seconds=int(rng.integers(0, 3 * 3600)))
        p = float(rng.uniform(0.05, 0.95))
        region = ["eu", "us"][i % 2]
        predictions.append(
            {
                "request_id": f"r{i}",
                "model": "fraud",
                "version": "v2" if i % 5 == 0 else "v1",
                "timestamp": moment.isoformat(),
                "probabilities": p,
                "cohort": {"region": region},
                "features": {"amount": float(rng.lognormal()), "channel": ["web", "app"][i % 2]},
            }
        )
        if i % 5 != 4:
            labels.append(
                {
                    "request_id": f"r{i}",
                    "model": "fraud",
                    "label": int(rng.uniform() < p),
                    "timestamp": (moment + timedelta(minutes=10)).isoformat(),
                }
            )
    return predictions, labels


PREDICTIONS, LABELS = _events()


def _client(config: ServiceConfig | None = None) -> Iterator[TestClient]:
    with TestClient(create_app(EventStore(":memory:"), config, close_store=True)) as client:
        yield client


def _send(client: TestClient, headers: dict[str, str] | None = None) -> None:
    for start in range(0, len(PREDICTIONS), 1000):
        reply = client.post(
            "/v1/predictions", json=PREDICTIONS[start : start + 1000], headers=headers
        )
        assert reply.status_code == 200, reply.text
    assert client.post("/v1/labels", json=LABELS, headers=headers).status_code == 200


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    for opened in _client():
        _send(opened)
        yield opened


def _expected(
    start: datetime, end: datetime, region: str | None = None, version: str | None = None
) -> tuple[int, list[int], list[float]]:
    labels = {label["request_id"]: label["label"] for label in LABELS}
    n, y, p = 0, [], []
    for event in PREDICTIONS:
        moment = datetime.fromisoformat(event["timestamp"])
        if not start <= moment < end:
            continue
        if region and event["cohort"]["region"] != region:
            continue
        if version and event["version"] != version:
            continue
        n += 1
        if event["request_id"] in labels:
            y.append(labels[event["request_id"]])
            p.append(event["probabilities"])
    return n, y, p


@pytest.mark.parametrize(
    ("query", "region", "version"),
    [("", None, None), ("&cohort=region:eu", "eu", None), ("&version=v2", None, "v2")],
)
def test_a_window_matches_sklearn_on_its_raw_events(
    client: TestClient, query: str, region: str | None, version: str | None
) -> None:
    reply = client.get(f"/v1/metrics?model=fraud&window=6h{query}")
    assert reply.status_code == 200, reply.text
    window = reply.json()
    assert set(window) >= WINDOW_FIELDS
    start = datetime.fromisoformat(window["from"].replace("Z", "+00:00"))
    end = datetime.fromisoformat(window["to"].replace("Z", "+00:00"))
    assert end - start == timedelta(hours=6) and start.second == 0
    n, y, p = _expected(start, end, region, version)
    assert window["n_predictions"] == n
    assert window["n_labelled"] == len(y)
    assert window["coverage"] == pytest.approx(len(y) / n)
    assert window["log_loss"] == pytest.approx(log_loss(y, p), rel=1e-9)
    assert window["brier"] == pytest.approx(brier_score_loss(y, p), rel=1e-9)
    low, high = window["log_loss_ci"]
    assert low < window["log_loss"] < high
    assert window["label_lag_p50_s"] == pytest.approx(600, rel=0.26)  # one lag bin


def test_a_series_partitions_its_window_and_matches_per_step(client: TestClient) -> None:
    reply = client.get("/v1/metrics?model=fraud&window=4h&step=1h&base=2")
    assert reply.status_code == 200, reply.text
    series = reply.json()["series"]
    assert len(series) == 4
    total = client.get(f"/v1/metrics?model=fraud&from={series[0]['from']}&to={series[-1]['to']}")
    assert sum(w["n_predictions"] for w in series) == total.json()["n_predictions"]
    for window in series:
        start = datetime.fromisoformat(window["from"].replace("Z", "+00:00"))
        end = datetime.fromisoformat(window["to"].replace("Z", "+00:00"))
        n, y, p = _expected(start, end)
        assert window["n_predictions"] == n
        if y:
            assert window["log_loss"] == pytest.approx(log_loss(y, p) / np.log(2), rel=1e-9)


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("model=fraud&window=soon", "/query/window"),
        ("model=fraud&cohort=eu", "/query/cohort"),
        ("model=fraud&window=1h&step=90s", "/query/step"),
        ("model=fraud&from=2026-01-01T00:00:00", "/query/from"),
        ("model=fraud&base=3", "/query/base"),
        (
            "model=fraud&window=1h&from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z",
            "/query/window",
        ),
        ("window=1h", "/query/model"),
    ],
)
def test_bad_queries_get_422_naming_the_parameter(
    client: TestClient, query: str, field: str
) -> None:
    reply = client.get(f"/v1/metrics?{query}")
    assert reply.status_code == 422, reply.text
    assert reply.json()["errors"][0]["field"] == field


def test_drift_ranks_and_reports_the_reference(client: TestClient) -> None:
    reply = client.get("/v1/drift?model=fraud&window=1h&min_samples=50")
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["reference"]["kind"] == "rolling"
    assert body["reference"]["to"] == body["from"]  # the previous window of the same length
    names = [f["feature"] for f in body["features"]]
    assert {"amount", "channel", "__score__"} <= set(names)
    for feature in body["features"]:
        assert feature["verdict"] in {"drift", "stable", "insufficient"}
        assert 0.0 <= feature["js"] <= np.log(2)
    # Same generator both sides: nothing drifts.
    assert body["drifted"] == []
    version = client.get("/v1/drift?model=fraud&window=3h&reference=version:v1&version=v2")
    assert version.status_code == 200 and version.json()["reference"]["version"] == "v1"
    bad = client.get("/v1/drift?model=fraud&reference=yesterday")
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "/query/reference"
    assert client.get("/v1/drift?model=fraud&reference=file:/etc/passwd").status_code == 422


def test_compare_returns_the_gate_decision_with_its_evidence(client: TestClient) -> None:
    reply = client.get("/v1/compare?candidate=fraud:v2&baseline=fraud:v1&window=6h&min_samples=100")
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["mode"] == "canary"
    comparison = body["comparison"]
    start = datetime.fromisoformat(body["from"].replace("Z", "+00:00"))
    end = datetime.fromisoformat(body["to"].replace("Z", "+00:00"))
    _, y2, p2 = _expected(start, end, version="v2")
    _, y1, p1 = _expected(start, end, version="v1")
    assert comparison["n_candidate"] == len(y2) and comparison["n_baseline"] == len(y1)
    delta = log_loss(y2, p2) - log_loss(y1, p1)
    assert comparison["delta"] == pytest.approx(delta, rel=1e-9)
    # The same generator for both versions: no regression beyond 2% is shown.
    assert body["decision"]["status"] in {"pass", "fail"}
    assert body["decision"]["status"] == ("fail" if body["decision"]["p_value"] < 0.05 else "pass")
    few = client.get("/v1/compare?candidate=fraud:v2&baseline=fraud:v1&window=6h")
    assert few.json()["decision"]["status"] == "inconclusive"  # default min_samples 1000
    assert client.get("/v1/compare?candidate=nope:v2&baseline=fraud:v1").status_code == 404


@pytest.mark.slow
def test_unknown_models_and_other_tenants_get_404() -> None:
    token_a, token_b = "token-a", "token-b"
    tokens = TokenRegistry(
        [
            TokenEntry("a", frozenset({"ingest", "read"}), hash_token(token_a)),
            TokenEntry("b", frozenset({"ingest", "read"}), hash_token(token_b)),
        ]
    )
    for client in _client(ServiceConfig(tokens=tokens)):
        _send(client, {"Authorization": f"Bearer {token_a}"})
        as_b = {"Authorization": f"Bearer {token_b}"}
        for url in (
            "/v1/metrics?model=fraud",
            "/v1/drift?model=fraud",
            "/v1/compare?candidate=fraud:v2&baseline=fraud:v1",
        ):
            assert client.get(url, headers=as_b).status_code == 404
            assert client.get(url).status_code == 401
            assert (
                client.get(url, headers={"Authorization": f"Bearer {token_a}"}).status_code == 200
            )
