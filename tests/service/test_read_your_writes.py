"""Read-your-writes: every read after an acknowledged write reflects it (issue 13, item 1).

The app runs with its real writer thread and the default configuration (the fold runs
in each write's transaction). Each iteration writes one random batch -- predictions,
labels before or after their predictions, labels naming no model, resent duplicates --
and reads at once; every read is compared with values computed independently from what
was sent (counts, and scikit-learn's log loss).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sklearn.metrics import log_loss

from xebench.service.app import create_app
from xebench.store.event_store import EventStore

ITERATIONS = 200


@dataclass
class Sent:
    """What the client sent and had acknowledged: the oracle's only input."""

    predictions: dict[str, dict[str, Any]] = field(default_factory=dict)
    labels: dict[str, int] = field(default_factory=dict)
    label_events: dict[str, dict[str, Any]] = field(default_factory=dict)
    prediction_events: dict[str, dict[str, Any]] = field(default_factory=dict)

    def window(
        self, version: str | None = None, region: str | None = None
    ) -> tuple[int, list[int], list[float]]:
        n, y, p = 0, [], []
        for rid, event in self.predictions.items():
            if version is not None and event["version"] != version:
                continue
            if region is not None and event["cohort"]["region"] != region:
                continue
            n += 1
            if rid in self.labels:
                y.append(self.labels[rid])
                p.append(event["probabilities"])
        return n, y, p


@pytest.fixture
def client() -> Iterator[TestClient]:
    with TestClient(create_app(EventStore(":memory:"), close_store=True)) as opened:
        assert opened.app.state.writer.fold_interval is not None  # the real, folding writer
        yield opened


def _prediction(rng: np.random.Generator, rid: str, now: datetime) -> dict[str, Any]:
    moment = now - timedelta(seconds=float(rng.uniform(1, 1800)))
    return {
        "request_id": rid,
        "model": "m",
        "version": str(rng.choice(["v1", "v2"])),
        "timestamp": moment.isoformat(),
        "probabilities": round(float(rng.uniform(0.02, 0.98)), 6),
        "cohort": {"region": str(rng.choice(["eu", "us"]))},
        "features": {"amount": round(float(rng.lognormal()), 4)},
    }


def _label(rng: np.random.Generator, rid: str, now: datetime) -> dict[str, Any]:
    event: dict[str, Any] = {
        "request_id": rid,
        "label": int(rng.integers(0, 2)),
        "timestamp": now.isoformat(),
    }
    if rng.random() < 0.6:  # else it names no model: it applies to every model's prediction
        event["model"] = "m"
    return event


def _write(
    client: TestClient,
    rng: np.random.Generator,
    sent: Sent,
    kinds: Counter[str],
    kind: str | None = None,
) -> None:
    """One acknowledged batch of ``kind`` (default: random) and of a random size."""
    now = datetime.now(UTC)
    size = int(rng.choice([1, 2, 5, 20, 100, 400]))
    unlabelled = [rid for rid in sent.predictions if rid not in sent.label_events]
    kind = kind or str(rng.choice(["predictions", "labels after", "labels before", "duplicates"]))
    if kind == "labels after" and not unlabelled:
        kind = "predictions"
    if kind == "predictions":
        # New request ids, and the predictions of labels sent before them.
        waiting = [rid for rid in sent.label_events if rid not in sent.predictions]
        rids = waiting[: size // 2] + [f"r{len(sent.prediction_events) + i}" for i in range(size)]
        body = [_prediction(rng, rid, now) for rid in dict.fromkeys(rids)]
        reply = client.post("/v1/predictions", json=body)
        assert reply.status_code == 200, reply.text
        assert reply.json()["inserted"] == len(body)
        for event in body:
            sent.predictions[event["request_id"]] = event
            sent.prediction_events[event["request_id"]] = event
    elif kind.startswith("labels"):
        if kind == "labels after":
            rids = list(rng.choice(unlabelled, min(size, len(unlabelled)), replace=False))
        else:  # for requests whose prediction comes later: pending until then
            rids = [f"early{len(sent.label_events) + i}" for i in range(size)]
        body = [_label(rng, str(rid), now) for rid in rids]
        reply = client.post("/v1/labels", json=body)
        assert reply.status_code == 200, reply.text
        joined = sum(event["request_id"] in sent.predictions for event in body)
        assert reply.json()["joined"] == joined
        assert reply.json()["pending"] == len(body) - joined
        for event in body:
            sent.label_events[event["request_id"]] = event
            sent.labels[event["request_id"]] = event["label"]
    else:  # resend stored events exactly: duplicates, nothing changes
        kind = "duplicates"
        pool = [*sent.prediction_events.values()][-500:]
        labels = [*sent.label_events.values()][-500:]
        if pool:
            body = [pool[i] for i in rng.choice(len(pool), min(size, len(pool)), replace=False)]
            reply = client.post("/v1/predictions", json=body)
            assert reply.status_code == 200 and reply.json()["duplicates"] == len(body), reply.text
        if labels:
            body = [
                labels[i] for i in rng.choice(len(labels), min(size, len(labels)), replace=False)
            ]
            reply = client.post("/v1/labels", json=body)
            assert reply.status_code == 200 and reply.json()["duplicates"] == len(body), reply.text
    kinds[kind] += 1


def _check_window(window: dict[str, Any], n: int, y: list[int], p: list[float]) -> None:
    assert window["n_predictions"] == n
    assert window["n_labelled"] == len(y)
    if y:
        assert window["log_loss"] == pytest.approx(log_loss(y, p, labels=[0, 1]), rel=1e-9)
    else:
        assert window["log_loss"] is None


def _read(client: TestClient, sent: Sent, path: str) -> None:
    """One read path, checked against ``sent``."""
    if path == "window":
        reply = client.get("/v1/metrics?model=m&window=1h")
        assert reply.status_code == 200, reply.text
        _check_window(reply.json(), *sent.window())
    elif path == "cohort":
        region = "eu"
        reply = client.get(f"/v1/metrics?model=m&window=1h&cohort=region:{region}")
        assert reply.status_code == 200, reply.text
        _check_window(reply.json(), *sent.window(region=region))
    elif path == "version":
        reply = client.get("/v1/metrics?model=m&window=1h&version=v2")
        _check_window(reply.json(), *sent.window(version="v2"))
    elif path == "series":
        reply = client.get("/v1/metrics?model=m&window=2h&step=30m")
        assert reply.status_code == 200, reply.text
        series = reply.json()["series"]
        n, y, _ = sent.window()
        assert sum(w["n_predictions"] for w in series) == n
        assert sum(w["n_labelled"] for w in series) == len(y)
    elif path == "drift":
        reply = client.get("/v1/drift?model=m&window=1h")
        assert reply.status_code == 200, reply.text
        assert reply.json()["n_current"] == sent.window()[0]
    elif path == "compare":
        reply = client.get("/v1/compare?candidate=m:v2&baseline=m:v1&window=1h")
        assert reply.status_code == 200, reply.text
        comparison = reply.json()["comparison"]
        assert comparison["n_candidate"] == len(sent.window(version="v2")[1])
        assert comparison["n_baseline"] == len(sent.window(version="v1")[1])
    else:
        reply = client.get("/v1/models")
        assert reply.status_code == 200, reply.text
        for entry in reply.json()["models"]:
            n, y, _ = sent.window(version=entry["version"])
            assert (entry["predictions"], entry["joined"]) == (n, len(y))


PATHS = ("cohort", "version", "series", "drift", "compare", "models")


def test_every_read_right_after_an_acknowledged_write_reflects_it(client: TestClient) -> None:
    rng = np.random.default_rng(13)
    sent, kinds, reads = Sent(), Counter[str](), Counter[str]()
    _write(client, rng, sent, kinds, "predictions")  # the model exists from here on
    for _ in range(ITERATIONS):
        _write(client, rng, sent, kinds)
        for path in ("window", str(rng.choice(PATHS))):
            _read(client, sent, path)
            reads[path] += 1
    for path in PATHS:
        _read(client, sent, path)
    # Every kind of write was exercised, and the data is not trivial.
    assert min(kinds.values()) >= 20, kinds
    assert reads["window"] == ITERATIONS and all(reads[p] >= 10 for p in PATHS), reads
    n, y, _ = sent.window()
    assert n > 1000 and len(y) > 300
    anonymous = sum("model" not in sent.label_events[rid] for rid in sent.labels)
    assert anonymous > 100
    print(f"\nread-your-writes: {sum(kinds.values())} writes {dict(kinds)}, reads {dict(reads)},")
    print(f"{n} predictions, {len(y)} labelled; {len(sent.labels)} labels,", end=" ")
    print(f"{anonymous} naming no model")
