"""Multi-key cohorts through the service: configured in YAML, read right after each write.

The app runs with its real writer (the fold runs in each write's commit). Every read is
compared with values computed from what was sent (counts and scikit-learn's log loss
over exactly the events that have both keys with those values).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from fastapi.testclient import TestClient
from sklearn.metrics import log_loss

from xebench.errors import ConfigError
from xebench.service.app import create_app
from xebench.service.config import load_config
from xebench.store.crossings import crossed_value
from xebench.store.event_store import EventStore

REGIONS = ("eu", "us")
DEVICES = ("android", "ios", "tv, 4k")  # the last holds ',' (and a space)


def _config(tmp_path: Path, monitoring: dict[str, Any], **more: Any) -> Any:
    path = tmp_path / "xebench.yaml"
    path.write_text(yaml.safe_dump({"monitoring": monitoring, **more}))
    return load_config(path)


@pytest.mark.parametrize(
    ("crossings", "message"),
    [
        ([["region", "device"], ["region"]], r"monitoring\.cohort_crossings\[1\]: must be a list"),
        ([["region", "region"]], r"monitoring\.cohort_crossings\[0\]: must be a list of 2 to 3"),
        ([["region", "a:b"]], r"monitoring\.cohort_crossings\[0\]: keys must be"),
        ({"region": "device"}, r"monitoring\.cohort_crossings: must be a list of crossings"),
        ([[f"k{i}", "x"] for i in range(9)], r"monitoring\.cohort_crossings: at most 8"),
    ],
)
def test_config_errors_name_the_key_path(tmp_path: Path, crossings: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _config(tmp_path, {"cohort_crossings": crossings})


def test_slo_cohorts_are_put_in_the_configured_order(tmp_path: Path) -> None:
    slo = {"name": "s", "model": "m", "sli": "log_loss", "objective": 0.5, "window": "1h"}
    config = _config(
        tmp_path,
        {"cohort_crossings": [["region", "device"]]},
        slos=[{**slo, "cohort": "device:ios,region:eu"}],
    )
    assert config.monitor.cohort_crossings == (("region", "device"),)
    assert config.slos[0].cohort == "region,device:eu,ios"
    with pytest.raises(ConfigError, match=r"slos\[0\]\.cohort: 'region,plan' is not a configured"):
        _config(
            tmp_path,
            {"cohort_crossings": [["region", "device"]]},
            slos=[{**slo, "cohort": "region:eu,plan:pro"}],
        )


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    config = _config(tmp_path, {"cohort_crossings": [["region", "device"]]})
    store = EventStore(":memory:", monitor=config.monitor)
    with TestClient(create_app(store, config, close_store=True)) as opened:
        assert opened.app.state.writer.fold_interval is not None  # the real, folding writer
        yield opened


def _send(client: TestClient, rng: np.random.Generator, start: int, n: int) -> list[dict]:
    now = datetime.now(UTC)
    events = []
    for i in range(start, start + n):
        cohort = {}
        if rng.random() < 0.9:
            cohort["region"] = str(rng.choice(REGIONS))
        if rng.random() < 0.85:
            cohort["device"] = str(rng.choice(DEVICES))
        p = round(float(np.clip(rng.beta(2, 3), 0.01, 0.99)), 6)
        events.append(
            {
                "request_id": f"r{i}",
                "model": "m",
                "version": str(rng.choice(["v1", "v2"])),
                "timestamp": (now - timedelta(seconds=float(rng.uniform(1, 1800)))).isoformat(),
                "probabilities": p,
                "cohort": cohort,
                "label": int(rng.random() < p),
            }
        )
    body = [{k: v for k, v in e.items() if k != "label"} for e in events]
    assert client.post("/v1/predictions", json=body).status_code == 200
    labels = [{"request_id": e["request_id"], "model": "m", "label": e["label"]} for e in events]
    assert client.post("/v1/labels", json=labels).status_code == 200
    return events


def _expected(events: list[dict], region: str, device: str) -> tuple[int, float]:
    mine = [e for e in events if e["cohort"].get("region") == region]
    mine = [e for e in mine if e["cohort"].get("device") == device]
    y = [e["label"] for e in mine]
    p = [e["probabilities"] for e in mine]
    return len(mine), float(log_loss(y, p, labels=[0, 1]))


def test_crossed_reads_right_after_each_write(client: TestClient) -> None:
    rng = np.random.default_rng(3)
    sent: list[dict] = []
    for step in range(3):
        sent += _send(client, rng, len(sent), 150)
        reply = client.get("/v1/cohorts", params={"model": "m", "key": "region,device",
                                                  "window": "1h", "min_samples": 0})  # fmt: skip
        assert reply.status_code == 200, reply.text
        ranking = reply.json()
        assert ranking["key"] == "region,device"
        flipped = client.get("/v1/cohorts", params={"model": "m", "key": "device,region",
                                                    "window": "1h", "min_samples": 0})  # fmt: skip
        assert flipped.json()["cohorts"] == ranking["cohorts"]
        values = {row["value"]: row for row in ranking["cohorts"]}
        assert set(values) == {crossed_value([r, d]) for r in REGIONS for d in DEVICES}
        for region in REGIONS:
            for device in DEVICES:
                n, expected = _expected(sent, region, device)
                value = crossed_value([region, device])
                row = values[value]
                assert row["n_predictions"] == n
                assert row["log_loss"] == pytest.approx(expected, rel=1e-9)
                metrics = client.get("/v1/metrics", params={
                    "model": "m", "window": "1h", "cohort": f"region,device:{value}"})  # fmt: skip
                assert metrics.status_code == 200, metrics.text
                window = metrics.json()
                assert window["n_predictions"] == n
                assert window["log_loss"] == row["log_loss"]
                if "," not in device:  # the form, in either order
                    for text in (f"region:{region},device:{device}",
                                 f"device:{device},region:{region}"):  # fmt: skip
                        again = client.get("/v1/metrics", params={
                            "model": "m", "window": "1h", "cohort": text}).json()  # fmt: skip
                        assert again["log_loss"] == window["log_loss"]
                        assert again["cohort"] == f"region,device:{value}"
        if step == 0:
            both = [e for e in sent if {"region", "device"} <= set(e["cohort"])]
            assert sum(r["n_predictions"] for r in ranking["cohorts"]) == len(both) < len(sent)


def test_every_read_takes_a_crossed_cohort(client: TestClient) -> None:
    sent = _send(client, np.random.default_rng(5), 0, 400)
    cohort = "region,device:eu,tv%2C 4k"
    n, expected = _expected(sent, "eu", "tv, 4k")
    base = {"model": "m", "window": "1h", "cohort": cohort}
    reliability = client.get("/v1/reliability", params=base)
    assert reliability.status_code == 200, reliability.text
    assert reliability.json()["n_predictions"] == n
    drift = client.get("/v1/drift", params=base)
    assert drift.status_code == 200, drift.text
    assert drift.json()["cohort"] == cohort
    compare = client.get("/v1/compare", params={**base, "candidate": "m:v2", "baseline": "m:v1"})
    assert compare.status_code == 200, compare.text
    events = client.get("/v1/events", params={**base, "limit": 100})
    assert events.status_code == 200, events.text
    assert len(events.json()["events"]) == n
    series = client.get("/v1/metrics", params={**base, "step": "30m", "window": "2h"})
    assert series.status_code == 200, series.text
    assert client.get("/v1/metrics", params=base).json()["log_loss"] == pytest.approx(
        expected, rel=1e-9
    )


def test_unconfigured_crossings_are_422s_naming_the_configured_ones(client: TestClient) -> None:
    _send(client, np.random.default_rng(1), 0, 50)
    for params in (
        {"model": "m", "key": "region,plan"},
        {"model": "m", "cohort": "region:eu,plan:pro"},
        {"model": "m", "cohort": "region,plan:eu,pro"},
    ):
        path = "/v1/cohorts" if "key" in params else "/v1/metrics"
        reply = client.get(path, params=params)
        assert reply.status_code == 422, reply.text
        text = reply.text
        assert ("key" if "key" in params else "cohort") in text
        assert "region" in text and "device" in text and "cohort_crossings" in text
    reply = client.get("/v1/metrics", params={"model": "m", "cohort": "region,device:eu"})
    assert reply.status_code == 422 and "needs 2 values" in reply.text
