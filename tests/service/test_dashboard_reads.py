"""GET /v1/cohorts, /v1/reliability and /v1/events (issue 15, item 4): values computed
independently (scikit-learn, NumPy, SciPy, Holm by hand), read right after the write,
tenants, the PII policy, bounds and hostile parameters."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from scipy.stats import norm
from sklearn.metrics import log_loss

from xebench.ingest.policy import PiiPolicy
from xebench.monitor.scope import Scope
from xebench.monitor.windows import Monitor
from xebench.service.app import create_app
from xebench.service.config import ServiceConfig, TokenEntry, TokenRegistry, hash_token
from xebench.store.event_store import EventStore

# Minute-aligned, so that from/to and the previous window are exact.
NOW = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=5)
START, END = NOW - timedelta(hours=1), NOW
RANGE = {"from": START.isoformat(), "to": END.isoformat()}
# Per region: (events per hour, the model's probability noise now, before): us gets
# worse, eu stays, latam has too few labels to conclude.
REGIONS = {
    "us": (600, 0.35, 0.0),
    "eu": (500, 0.0, 0.0),
    "apac": (400, 0.15, 0.05),
    "latam": (12, 0.3, 0.0),
}


def _events(seed: int = 0) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Binary events of the hour before START and of [START, END); 90% labelled."""
    rng = np.random.default_rng(seed)
    predictions, labels = [], []
    for region, (n, noise_now, noise_before) in REGIONS.items():
        for hour, noise in ((0, noise_before), (1, noise_now)):
            for i in range(n):
                moment = (
                    START
                    - timedelta(hours=1 - hour)
                    + timedelta(seconds=float(rng.uniform(0, 3599)))
                )
                truth = float(rng.uniform(0.05, 0.95))
                p = float(np.clip(truth + rng.normal(0, noise), 0.01, 0.99)) if noise else truth
                rid = f"{region}-{hour}-{i}"
                predictions.append(
                    {
                        "request_id": rid,
                        "model": "fraud",
                        "version": "v1",
                        "timestamp": moment.isoformat(),
                        "probabilities": p,
                        "cohort": {"region": region, "device": ["ios", "web"][i % 2]},
                        "features": {"amount": round(float(rng.lognormal()), 2)},
                    }
                )
                if i % 10 != 9:
                    labels.append(
                        {"request_id": rid, "model": "fraud", "label": int(rng.uniform() < truth)}
                    )
    return predictions, labels


PREDICTIONS, LABELS = _events()


def _send(
    client: TestClient,
    predictions: list[dict[str, Any]],
    labels: list[dict[str, Any]],
    headers: dict[str, str] | None = None,
) -> None:
    for start in range(0, len(predictions), 1000):
        reply = client.post(
            "/v1/predictions", json=predictions[start : start + 1000], headers=headers
        )
        assert reply.status_code == 200, reply.text
    assert client.post("/v1/labels", json=labels, headers=headers).status_code == 200


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with TestClient(create_app(EventStore(":memory:"), close_store=True)) as opened:
        _send(opened, PREDICTIONS, LABELS)  # each GET below follows the write at once
        yield opened


def _labelled(
    begin: datetime, end: datetime, region: str | None = None
) -> tuple[list[int], list[float]]:
    labels = {label["request_id"]: label["label"] for label in LABELS}
    y, p = [], []
    for event in PREDICTIONS:
        if not begin <= datetime.fromisoformat(event["timestamp"]) < end:
            continue
        if region is not None and event["cohort"]["region"] != region:
            continue
        if event["request_id"] in labels:
            y.append(labels[event["request_id"]])
            p.append(event["probabilities"])
    return y, p


def _nll(y: list[int], p: list[float]) -> np.ndarray:
    y_arr, p_arr = np.asarray(y), np.asarray(p)
    return -np.log(np.where(y_arr == 1, p_arr, 1 - p_arr))


def _holm(p: list[float]) -> list[float]:
    """Holm's adjustment, written out: sorted ascending, times (m - rank), running max."""
    m, order = len(p), np.argsort(p)
    out, running = [0.0] * m, 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out


# --- GET /v1/cohorts -------------------------------------------------------------------


def test_cohort_ranking_matches_independent_values(client: TestClient) -> None:
    reply = client.get("/v1/cohorts", params={"model": "fraud", "key": "region", **RANGE})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert list(body) == [
        "from",
        "to",
        "model",
        "version",
        "key",
        "baseline",
        "correction",
        "confidence",
        "min_samples",
        "cohorts",
    ]
    assert body["baseline"]["kind"] == "previous" and body["correction"] == "holm"
    assert body["baseline"]["from"].startswith((START - timedelta(hours=1)).isoformat()[:16])
    rows = {row["value"]: row for row in body["cohorts"]}
    assert set(rows) == set(REGIONS)
    z = norm.ppf(0.975)
    expected_p = {}
    for region, row in rows.items():
        y, p = _labelled(START, END, region)
        yb, pb = _labelled(START - timedelta(hours=1), START, region)
        assert row["n_labelled"] == len(y)
        assert row["n_predictions"] == REGIONS[region][0]
        assert row["log_loss"] == pytest.approx(log_loss(y, p, labels=[0, 1]), rel=1e-9)
        assert row["baseline_log_loss"] == pytest.approx(log_loss(yb, pb, labels=[0, 1]), rel=1e-9)
        now, before = _nll(y, p), _nll(yb, pb)
        delta = now.mean() - before.mean()
        se = math.hypot(
            now.std(ddof=1) / math.sqrt(now.size), before.std(ddof=1) / math.sqrt(before.size)
        )
        assert row["delta"] == pytest.approx(delta, rel=1e-9)
        assert row["delta_ci"] == pytest.approx([delta - z * se, delta + z * se], rel=1e-7)
        assert row["p_value"] == pytest.approx(2 * norm.sf(abs(delta) / se), rel=1e-6, abs=1e-300)
        assert row["inconclusive"] is (min(now.size, before.size) < 30)
        if not row["inconclusive"]:
            expected_p[region] = row["p_value"]
    # Holm across the conclusive values; latam (10-11 labels) is inconclusive and last.
    adjusted = dict(zip(expected_p, _holm(list(expected_p.values())), strict=True))
    for region, p_adj in adjusted.items():
        assert rows[region]["p_adjusted"] == pytest.approx(p_adj, rel=1e-12)
    assert rows["latam"]["inconclusive"] and rows["latam"]["p_adjusted"] is None
    order = [row["value"] for row in body["cohorts"]]
    assert order[-1] == "latam"
    deltas = [row["delta"] for row in body["cohorts"][:-1]]
    assert deltas == sorted(deltas, reverse=True) and order[0] == "us"
    assert rows["us"]["p_adjusted"] < 1e-6  # the degraded region stands out


def test_a_values_log_loss_equals_metrics_of_its_cohort_exactly(client: TestClient) -> None:
    for params in (RANGE, {"window": "90m"}, {"window": "7h"}):
        ranking = client.get(
            "/v1/cohorts", params={"model": "fraud", "key": "device", **params}
        ).json()
        for row in ranking["cohorts"]:
            window = client.get(
                "/v1/metrics",
                params={
                    "model": "fraud",
                    "cohort": f"device:{row['value']}",
                    "from": ranking["from"],
                    "to": ranking["to"],
                },
            ).json()
            assert row["log_loss"] == window["log_loss"]  # the same buckets, the same code
            assert row["log_loss_ci"] == window["log_loss_ci"]
            assert (row["n_predictions"], row["n_labelled"]) == (
                window["n_predictions"],
                window["n_labelled"],
            )


def test_cohort_baselines_and_limit(client: TestClient) -> None:
    base = {"model": "fraud", "key": "region", **RANGE}
    span = f"range:{(START - timedelta(hours=1)).isoformat()}/{START.isoformat()}"
    previous = client.get("/v1/cohorts", params=base).json()
    ranged = client.get("/v1/cohorts", params={**base, "baseline": span}).json()
    assert ranged["baseline"]["kind"] == "range"
    assert [r["delta"] for r in ranged["cohorts"]] == [r["delta"] for r in previous["cohorts"]]
    reference = client.get("/v1/cohorts", params={**base, "baseline": "reference"}).json()
    assert reference["baseline"] | {"kind": "previous", "reference": None} == previous["baseline"]
    top = client.get("/v1/cohorts", params={**base, "limit": 2}).json()["cohorts"]
    assert top == previous["cohorts"][:2]
    loose = client.get("/v1/cohorts", params={**base, "min_samples": 0}).json()["cohorts"]
    assert all(not row["inconclusive"] for row in loose)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"key": "region,device"}, "key"),
        ({"key": "<script>alert(1)</script>"}, "key"),
        ({"key": "régïon\u202e"}, "key"),
        ({"key": ""}, "key"),
        ({"key": "region", "limit": "99999999999999999999"}, "limit"),
        ({"key": "region", "limit": "0"}, "limit"),
        ({"key": "region", "window": "999999999999d"}, "window"),
        ({"key": "region", "baseline": "weekly"}, "baseline"),
        (
            {"key": "region", "baseline": "range:2026-01-02T00:00:00Z/2026-01-01T00:00:00Z"},
            "baseline",
        ),
        ({"key": "region", "baseline": "range:yesterday/today"}, "baseline"),
        ({"key": "region", "confidence": "1.5"}, "confidence"),
        ({"key": "region", "min_samples": "-1"}, "min_samples"),
    ],
)
def test_bad_cohort_parameters_are_422_naming_them(
    client: TestClient, params: dict[str, str], field: str
) -> None:
    reply = client.get("/v1/cohorts", params={"model": "fraud", **params})
    assert reply.status_code == 422, reply.text
    assert [e["field"] for e in reply.json()["errors"]] == [f"/query/{field}"]
    if params["key"] == "region,device":  # the buckets keep single keys: say which
        assert "['device', 'region']" in reply.json()["detail"]


def test_unknown_models_are_404(client: TestClient) -> None:
    for path in ("/v1/cohorts?key=region", "/v1/reliability?", "/v1/events?"):
        assert client.get(f"{path}&model=nope").status_code == 404


# --- GET /v1/reliability ---------------------------------------------------------------


def test_reliability_curve_matches_numpy(client: TestClient) -> None:
    reply = client.get("/v1/reliability", params={"model": "fraud", **RANGE})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    window = client.get("/v1/metrics", params={"model": "fraud", **RANGE}).json()
    assert body["ece"] == window["ece"] and body["n_bins"] == 15
    y, p = (np.asarray(a) for a in _labelled(START, END))
    index = np.minimum((p * 15).astype(int), 14)
    for i, entry in enumerate(body["bins"]):
        assert entry["lo"] == pytest.approx(i / 15) and entry["hi"] == pytest.approx((i + 1) / 15)
        inside = index == i
        assert entry["count"] == inside.sum()
        if inside.any():
            assert entry["mean_predicted"] == pytest.approx(p[inside].mean(), rel=1e-9)
            assert entry["observed"] == pytest.approx(y[inside].mean(), rel=1e-9)
    weights = np.array([e["count"] for e in body["bins"]])
    gaps = np.array([abs((e["mean_predicted"] or 0) - (e["observed"] or 0)) for e in body["bins"]])
    assert body["ece"] == pytest.approx(float(weights @ gaps / weights.sum()), rel=1e-9)
    # The histogram counts every prediction, labelled or not, in 20 bins.
    every = np.array(
        [
            e["probabilities"]
            for e in PREDICTIONS
            if START <= datetime.fromisoformat(e["timestamp"]) < END
        ]
    )
    counts, _ = np.histogram(every, bins=np.linspace(0, 1, 21))
    assert [h["count"] for h in body["histogram"]] == counts.tolist()
    assert sum(counts) == body["n_predictions"] > body["n_labelled"] == len(y)
    coarse = client.get("/v1/reliability", params={"model": "fraud", **RANGE, "bins": 5}).json()
    assert [b["count"] for b in coarse["bins"]] == np.bincount(
        np.minimum((p * 5).astype(int), 4)
    ).tolist()


def test_multiclass_reliability_is_top_label() -> None:
    rng = np.random.default_rng(3)
    classes = ["a", "b", "c"]
    probs = rng.dirichlet([1.0, 1.0, 1.0], size=400)
    truth = [classes[int(rng.choice(3, p=row))] for row in probs]
    events = [
        {
            "request_id": f"m{i}",
            "model": "tri",
            "timestamp": (START + timedelta(seconds=5 * i)).isoformat(),
            "probabilities": dict(zip(classes, map(float, row), strict=True)),
        }
        for i, row in enumerate(probs)
    ]
    labels = [{"request_id": f"m{i}", "label": truth[i]} for i in range(len(truth))]
    with TestClient(create_app(EventStore(":memory:"), close_store=True)) as client:
        _send(client, events, labels)
        body = client.get("/v1/reliability", params={"model": "tri", **RANGE, "bins": 10}).json()
        window = client.get("/v1/metrics", params={"model": "tri", **RANGE}).json()
        assert (
            client.get("/v1/reliability", params={"model": "tri", **RANGE}).json()["ece"]
            == window["ece"]
        )
    assert body["score"] == "top_label" and body["classes"] == classes
    top = probs.max(axis=1)
    hit = np.array([classes[int(np.argmax(row))] == t for row, t in zip(probs, truth, strict=True)])
    index = np.minimum((top * 10).astype(int), 9)
    for i, entry in enumerate(body["bins"]):
        inside = index == i
        assert entry["count"] == inside.sum()
        if inside.any():
            assert entry["mean_predicted"] == pytest.approx(top[inside].mean(), rel=1e-9)
            assert entry["observed"] == pytest.approx(hit[inside].mean(), rel=1e-9)


@pytest.mark.parametrize("bins", ["7", "0", "301", "99999999999999999999", "x"])
def test_bad_bins_are_422(client: TestClient, bins: str) -> None:
    reply = client.get("/v1/reliability", params={"model": "fraud", "bins": bins})
    assert reply.status_code == 422
    assert [e["field"] for e in reply.json()["errors"]] == ["/query/bins"]


# --- GET /v1/events --------------------------------------------------------------------


def test_events_list_the_highest_losses_first(client: TestClient) -> None:
    reply = client.get("/v1/events", params={"model": "fraud", **RANGE, "limit": 5})
    assert reply.status_code == 200, reply.text
    events = reply.json()["events"]
    labels = {label["request_id"]: label["label"] for label in LABELS}
    scored = [
        (e, labels[e["request_id"]])
        for e in PREDICTIONS
        if e["request_id"] in labels and START <= datetime.fromisoformat(e["timestamp"]) < END
    ]
    # The highest loss (the lowest probability of the label) first; among ties
    # (probabilities clipped at 0.01) the latest first.
    ranked = sorted(
        scored,
        key=lambda pair: (
            pair[0]["probabilities"] if pair[1] else 1 - pair[0]["probabilities"],
            -datetime.fromisoformat(pair[0]["timestamp"]).timestamp(),
            pair[0]["request_id"],
        ),
    )
    losses = [
        (-math.log(e["probabilities"] if y else 1 - e["probabilities"]), e["request_id"])
        for e, y in ranked
    ]
    assert [e["request_id"] for e in events] == [rid for _, rid in losses[:5]]
    worst = next(e for e, _ in scored if e["request_id"] == events[0]["request_id"])
    assert set(events[0]) == {
        "request_id",
        "model",
        "version",
        "timestamp",
        "label",
        "p_label",
        "loss",
        "weight",
        "cohort",
        "features",
    }
    assert events[0]["loss"] == pytest.approx(losses[0][0], rel=1e-12)
    assert events[0]["cohort"] == worst["cohort"] and events[0]["features"] == worst["features"]
    assert events[0]["p_label"] == pytest.approx(math.exp(-losses[0][0]))
    recent = client.get(
        "/v1/events",
        params={"model": "fraud", **RANGE, "order": "recent", "cohort": "region:eu", "limit": 100},
    ).json()["events"]
    times = [e["timestamp"] for e in recent]
    assert len(recent) == 100 and times == sorted(times, reverse=True)
    assert {e["cohort"]["region"] for e in recent} == {"eu"}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "101"}, "limit"),
        ({"limit": "99999999999999999999"}, "limit"),
        ({"order": "worst"}, "order"),
        ({"cohort": "region"}, "cohort"),
        ({"window": "-1h"}, "window"),
        ({"from": "yesterday"}, "from"),
    ],
)
def test_bad_event_parameters_are_422(
    client: TestClient, params: dict[str, str], field: str
) -> None:
    reply = client.get("/v1/events", params={"model": "fraud", **params})
    assert reply.status_code == 422, reply.text
    assert [e["field"] for e in reply.json()["errors"]] == [f"/query/{field}"]


def test_events_never_show_another_tenants_events() -> None:
    tokens = TokenRegistry(
        [TokenEntry(t, frozenset({"ingest", "read"}), hash_token(f"tok-{t}")) for t in "ab"]
    )
    a, b = ({"Authorization": f"Bearer tok-{t}"} for t in "ab")
    mine = [
        {
            "request_id": f"r{i}",
            "model": "fraud",
            "timestamp": (START + timedelta(minutes=i)).isoformat(),
            "probabilities": 0.6,
            "cohort": {"region": "eu"},
        }
        for i in range(30)
    ]
    theirs = [dict(e, probabilities=0.001) for e in mine]  # the same ids, far worse losses
    with TestClient(
        create_app(EventStore(":memory:"), ServiceConfig(tokens=tokens), close_store=True)
    ) as client:
        _send(client, mine, [{"request_id": f"r{i}", "label": 1} for i in range(30)], a)
        _send(client, theirs, [{"request_id": f"r{i}", "label": 1} for i in range(30)], b)
        for path in ("/v1/events", "/v1/reliability", "/v1/cohorts"):
            params = {"model": "fraud", **RANGE, "key": "region", "limit": 50}
            if path != "/v1/cohorts":
                params.pop("key")
            assert client.get(path, params=params).status_code == 401
            assert (
                client.get(path, params={**params, "model": "nope"}, headers=a).status_code == 404
            )
        events = client.get(
            "/v1/events", params={"model": "fraud", **RANGE, "limit": 100}, headers=a
        ).json()["events"]
        assert len(events) == 30 and {e["p_label"] for e in events} == {0.6}
        cohorts = client.get(
            "/v1/cohorts", params={"model": "fraud", "key": "region", **RANGE}, headers=b
        ).json()
        assert cohorts["cohorts"][0]["log_loss"] == pytest.approx(-math.log(0.001))


def test_events_apply_the_pii_policy() -> None:
    policy = PiiPolicy(drop=frozenset({"email"}), hash=frozenset({"user"}), key=b"secret")
    event = {
        "request_id": "p1",
        "model": "fraud",
        "timestamp": START.isoformat(),
        "probabilities": 0.2,
        "cohort": {"user": "u-17", "region": "eu"},
        "features": {"email": "a@b.c", "amount": 3.5},
    }
    with TestClient(
        create_app(EventStore(":memory:"), ServiceConfig(pii=policy), close_store=True)
    ) as client:
        _send(client, [event], [{"request_id": "p1", "label": 1}])
        shown = client.get("/v1/events", params={"model": "fraud", **RANGE}).json()["events"]
    assert shown[0]["features"] == {"amount": 3.5}
    assert shown[0]["cohort"] == {"user": policy.apply({"user": "u-17"})["user"], "region": "eu"}
    # An event stored before the policy named its keys: shown under today's policy.
    with EventStore(":memory:") as store:
        with TestClient(create_app(store)) as client:
            _send(client, [event], [{"request_id": "p1", "label": 1}])
        monitor = Monitor(store, pii=policy)
        got = monitor.extreme_events(Scope("default", "fraud", start=START, end=END))["events"][0]
    assert "email" not in got["features"] and got["cohort"]["user"] == shown[0]["cohort"]["user"]


def test_events_stay_bounded_on_a_large_window() -> None:
    """DuckDB sorts and cuts (a top-N): the answer is ``limit`` rows whatever the window."""
    rng = np.random.default_rng(5)
    p = rng.uniform(0.01, 0.99, 20_000)
    events = [
        {
            "request_id": f"x{i}",
            "model": "big",
            "timestamp": (START + timedelta(seconds=i % 3600)).isoformat(),
            "probabilities": float(p[i]),
        }
        for i in range(p.size)
    ]
    labels = [{"request_id": f"x{i}", "label": 0} for i in range(p.size)]
    with TestClient(create_app(EventStore(":memory:"), close_store=True)) as client:
        for start in range(0, p.size, 5000):
            _send(client, events[start : start + 5000], labels[start : start + 5000])
        got = client.get("/v1/events", params={"model": "big", **RANGE, "limit": 7}).json()[
            "events"
        ]
    assert [e["request_id"] for e in got] == [f"x{i}" for i in np.argsort(-p, kind="stable")[:7]]
