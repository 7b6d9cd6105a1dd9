"""Per-event business weights (issue 13, item 4): ``"weight"`` on a prediction weights
every window statistic -- log loss, Brier, ECE, skill, perplexity, accuracy -- in
windows, cohorts, series, canary and shadow comparisons and restated corrections,
while counts stay counts. Expected values are computed here, independently, with
scikit-learn and NumPy on the events as sent."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from sklearn.metrics import accuracy_score, brier_score_loss, log_loss

from loopback import serve_in_thread
from xebench.client import Client
from xebench.service.app import create_app
from xebench.store import EventStore
from xebench.store.buckets import MonitorConfig

NOW = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=6)
N = 240


@pytest.fixture
def client() -> Iterator[TestClient]:
    with TestClient(create_app(EventStore(":memory:"), close_store=True)) as opened:
        yield opened


def _data(seed: int = 7) -> dict[str, np.ndarray]:
    """Binary events over 4 minutes: probabilities, outcomes, weights, regions, minutes.
    Probabilities avoid the ECE's bin edges (multiples of 1/15) and 0.5 (accuracy)."""
    rng = np.random.default_rng(seed)
    p = np.round(rng.uniform(0.03, 0.97, N), 4)
    p[np.isclose((p * 15) % 1, 0) | (p == 0.5)] += 0.001
    return {
        "p": p,
        "y": (rng.uniform(size=N) < p).astype(int),
        # Business weights over three orders of magnitude, some integral, a few of 1.
        "w": np.where(rng.uniform(size=N) < 0.2, 1.0, np.round(rng.lognormal(0, 1.5, N), 3)),
        "region": np.array(["eu", "us", "apac"])[rng.integers(0, 3, N)],
        "minute": rng.integers(0, 4, N),
        "labelled": rng.uniform(size=N) < 0.8,
        "version": np.where(rng.uniform(size=N) < 0.3, "v2", "v1"),
    }


DATA = _data()


def _time(i: int) -> datetime:
    return NOW - timedelta(minutes=int(DATA["minute"][i]), seconds=i % 50 + 1)


def _predictions(model: str = "fraud", weighted: bool = True) -> list[dict[str, Any]]:
    events = []
    for i in range(N):
        event = {
            "request_id": f"r{i}",
            "model": model,
            "version": str(DATA["version"][i]),
            "timestamp": _time(i).isoformat(),
            "probabilities": float(DATA["p"][i]),
            "cohort": {"region": str(DATA["region"][i])},
            "features": {"amount": float(i % 17), "channel": ["web", "app"][i % 2]},
        }
        if weighted and DATA["w"][i] != 1.0:
            event["weight"] = float(DATA["w"][i])
        events.append(event)
    return events


def _labels(model: str = "fraud") -> list[dict[str, Any]]:
    return [
        {"request_id": f"r{i}", "model": model, "label": int(DATA["y"][i])}
        for i in range(N)
        if DATA["labelled"][i]
    ]


def _send(client: TestClient, model: str = "fraud", weighted: bool = True) -> None:
    batches = (("predictions", _predictions(model, weighted)), ("labels", _labels(model)))
    for path, events in batches:
        reply = client.post(f"/v1/{path}", json=events)
        assert reply.status_code == 200, reply.text


def _get(client: TestClient, query: str) -> dict[str, Any]:
    reply = client.get(f"/v1/{query}")
    assert reply.status_code == 200, reply.text
    return reply.json()


def _ece(y: np.ndarray, p: np.ndarray, w: np.ndarray, n_bins: int = 15) -> float:
    """Weighted ECE over uniform bins of P(class 1), written out (docs/metrics.md)."""
    bins = np.minimum((p * n_bins).astype(int), n_bins - 1)
    gap = 0.0
    for b in range(n_bins):
        inside = bins == b
        if inside.any():
            weight = w[inside].sum()
            observed = (w[inside] * y[inside]).sum() / weight
            predicted = (w[inside] * p[inside]).sum() / weight
            gap += weight * abs(observed - predicted)
    return gap / w.sum()


def _assert_same(a: Any, b: Any) -> None:
    """Equal documents, numbers up to the last bits (the order in which minutes add up)."""
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for key in a:
            _assert_same(a[key], b[key])
    elif isinstance(a, list):
        assert len(a) == len(b)
        for x, z in zip(a, b, strict=True):
            _assert_same(x, z)
    elif isinstance(a, float):
        assert a == pytest.approx(b, rel=1e-13, abs=1e-15)
    else:
        assert a == b


def _assert_window(window: dict[str, Any], rows: np.ndarray) -> None:
    """The window's statistics are those of ``rows`` (a mask of the events), weighted."""
    scored = rows & DATA["labelled"]
    y, p, w = DATA["y"][scored], DATA["p"][scored], DATA["w"][scored]
    # Counts stay counts.
    assert window["n_predictions"] == int(rows.sum())
    assert window["n_labelled"] == window["n"] == int(scored.sum())
    assert window["coverage"] == pytest.approx(scored.sum() / rows.sum(), rel=1e-12)
    # Every score statistic is weighted.
    assert window["weight"] == pytest.approx(w.sum(), rel=1e-12)
    expected = log_loss(y, p, sample_weight=w, labels=[0, 1])
    assert window["log_loss"] == pytest.approx(expected, rel=1e-9)
    assert window["brier"] == pytest.approx(brier_score_loss(y, p, sample_weight=w), rel=1e-9)
    assert window["ece"] == pytest.approx(_ece(y, p, w), rel=1e-9, abs=1e-12)
    frequency = np.array([w[y == 0].sum(), w[y == 1].sum()]) / w.sum()
    prior = -sum(f * math.log(f) for f in frequency if f > 0)
    assert window["prior_log_loss"] == pytest.approx(prior, rel=1e-9)
    assert window["skill"] == pytest.approx(1 - expected / prior, rel=1e-9)
    assert window["perplexity"] == pytest.approx(math.exp(expected), rel=1e-9)
    hits = accuracy_score(y, (p > 0.5).astype(int), sample_weight=w)
    assert window["accuracy"] == pytest.approx(hits, rel=1e-9)
    assert window["label_counts"] == pytest.approx({"0": w[y == 0].sum(), "1": w[y == 1].sum()})


def test_a_window_a_cohort_and_a_series_step_are_weighted(client: TestClient) -> None:
    _send(client)
    everything = np.ones(N, dtype=bool)
    _assert_window(_get(client, "metrics?model=fraud&window=1h"), everything)
    v2 = DATA["version"] == "v2"
    _assert_window(_get(client, "metrics?model=fraud&window=1h&version=v2"), v2)
    for region in ("eu", "apac"):
        window = _get(client, f"metrics?model=fraud&window=1h&cohort=region:{region}")
        _assert_window(window, DATA["region"] == region)
    start, end = (f"{t:%Y-%m-%dT%H:%M:%SZ}" for t in (NOW - timedelta(minutes=4), NOW))
    series = _get(client, f"metrics?model=fraud&from={start}&to={end}&step=1m")["series"]
    times = np.array([_time(i) for i in range(N)])
    assert len(series) == 4
    for step in series:
        begin = datetime.fromisoformat(step["from"].replace("Z", "+00:00"))
        end = datetime.fromisoformat(step["to"].replace("Z", "+00:00"))
        _assert_window(step, (times >= begin) & (times < end))


def test_unit_weights_change_nothing_and_integer_weights_equal_repeated_events(
    client: TestClient,
) -> None:
    # The same events sent without weights and with "weight": 1 give the same window.
    plain = _predictions("plain", weighted=False)
    ones = [{**event, "model": "ones", "weight": 1} for event in plain]
    for model, events in (("plain", plain), ("ones", ones)):
        assert client.post("/v1/predictions", json=events).status_code == 200
        assert client.post("/v1/labels", json=_labels(model)).status_code == 200
    a = _get(client, "metrics?model=plain&window=1h")
    b = _get(client, "metrics?model=ones&window=1h")
    a.pop("model"), b.pop("model")
    for lag in ("label_lag_p50_s", "label_lag_p90_s", "label_lag_p99_s"):
        # Label arrival minus event time: the two models' labels arrive a few ms apart,
        # which failed the comparison about 1 run in 5 (a quantile crossing a bin).
        assert a.pop(lag) == pytest.approx(b.pop(lag), rel=0.05)
    # The observed label delay is that p90 lag too, and the provisional reason quotes it.
    assert a.pop("label_delay_s") == pytest.approx(b.pop("label_delay_s"), rel=0.05)
    reasons = [re.sub(r"\([0-9.e+]+ s\)", "(s)", w.pop("provisional_reason") or "") for w in (a, b)]
    assert reasons[0] == reasons[1]
    _assert_same(a, b)
    assert a["weight"] == a["n"]
    # A weight of 3 scores as three copies of the event (the means; n and the intervals,
    # which see 1 event, differ).
    base = {"model": "w", "timestamp": NOW.isoformat(), "probabilities": 0.3}
    weighted = [{**base, "request_id": "a", "weight": 3}, {**base, "request_id": "b"}]
    copies = [{**base, "model": "copies", "request_id": r} for r in ("a1", "a2", "a3", "b")]
    assert client.post("/v1/predictions", json=weighted + copies).status_code == 200
    labels = [{"request_id": r, "label": 1} for r in ("a1", "a2", "a3", "a")]
    labels += [{"request_id": "b", "label": 0}]
    assert client.post("/v1/labels", json=labels).status_code == 200
    w = _get(client, "metrics?model=w&window=1h")
    c = _get(client, "metrics?model=copies&window=1h")
    assert (w["n"], w["weight"], c["n"], c["weight"]) == (2, 4.0, 4, 4.0)
    for name in ("log_loss", "brier", "ece", "prior_log_loss", "skill", "accuracy"):
        assert w[name] == pytest.approx(c[name], rel=1e-12), name


def test_the_glossarys_class_weighting_example(client: TestClient) -> None:
    # The log-loss glossary (the project's seed documents, "Imbalanced Dataset
    # Optimization"): in a 1:99 fraud data set, weighting the fraud class by 99
    # "ensures a single false negative contributes as much to the loss as 99 false
    # positives". One missed fraud (P(fraud) = 0.01) weighing 99 and 99 false alarms
    # (P(fraud) = 0.99) weighing 1 each: both halves weigh 99 * ln(100).
    at = NOW.isoformat()
    events = [
        {"request_id": "fn", "model": "fraud", "timestamp": at, "probabilities": 0.01,
         "weight": 99, "cohort": {"outcome": "missed_fraud"}},
        *({"request_id": f"fp{i}", "model": "fraud", "timestamp": at, "probabilities": 0.99,
           "cohort": {"outcome": "false_alarm"}} for i in range(99)),
    ]  # fmt: skip
    assert client.post("/v1/predictions", json=events).status_code == 200
    labels = [{"request_id": "fn", "label": 1}, *({"request_id": f"fp{i}", "label": 0}
                                                  for i in range(99))]  # fmt: skip
    assert client.post("/v1/labels", json=labels).json()["joined"] == 100
    window = _get(client, "metrics?model=fraud&window=1h")
    y, p, w = [1] + [0] * 99, [0.01] + [0.99] * 99, [99] + [1] * 99
    assert window["log_loss"] == pytest.approx(math.log(100), rel=1e-12)
    assert window["log_loss"] == pytest.approx(log_loss(y, p, sample_weight=w), rel=1e-12)
    assert (window["n"], window["weight"], window["n_predictions"]) == (100, 198.0, 100)
    missed = _get(client, "metrics?model=fraud&window=1h&cohort=outcome:missed_fraud")
    alarms = _get(client, "metrics?model=fraud&window=1h&cohort=outcome:false_alarm")
    assert missed["weight"] * missed["log_loss"] == pytest.approx(
        alarms["weight"] * alarms["log_loss"], rel=1e-12
    )
    # Unweighted, the one missed fraud is 1% of the loss instead of half of it.
    assert log_loss(y, p) == pytest.approx(math.log(100), rel=1e-12)  # symmetric by design
    assert window["label_counts"] == {"0": 99.0, "1": 99.0}


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("0", "0"),
        ("-2.5", "-2.5"),
        ("NaN", "nan"),
        ("Infinity", "inf"),
        ("-Infinity", "-inf"),
        ('"2"', "'2'"),
        ("1" + "0" * 399, "an integer of 400 digits"),
        ("true", "True"),
        ("false", "False"),
        ("null", "None"),
        ("1e-300", "1e-300"),
        ("1e13", "10000000000000.0"),
    ],
)
def test_a_bad_weight_is_a_422_naming_the_field_and_the_value(
    client: TestClient, text: str, shown: str
) -> None:
    body = (
        '[{"request_id": "ok", "model": "fraud", "probabilities": 0.5, "weight": 2},'
        f'{{"request_id": "bad", "model": "fraud", "probabilities": 0.5, "weight": {text}}}]'
    )
    reply = client.post(
        "/v1/predictions", content=body, headers={"Content-Type": "application/json"}
    )
    assert reply.status_code == 422, reply.text
    (error,) = reply.json()["errors"]
    assert (error["index"], error["field"]) == (1, "/1/weight")
    assert error["message"].startswith("must be a ")
    assert error["message"].endswith(f"; got {shown}")
    assert _get(client, "models")["models"] == []  # nothing of the batch stored
    # NDJSON alike.
    line = f'{{"request_id": "bad", "model": "fraud", "probabilities": 0.5, "weight": {text}}}'
    reply = client.post(
        "/v1/predictions", content=line, headers={"Content-Type": "application/x-ndjson"}
    )
    assert reply.status_code == 422
    assert reply.json()["errors"][0]["field"] == "/0/weight"


def test_weights_are_part_of_the_identity_only_when_not_1(client: TestClient) -> None:
    event = {"request_id": "r1", "model": "fraud", "probabilities": 0.2,
             "timestamp": NOW.isoformat()}  # fmt: skip

    def post(**extra: Any) -> tuple[int, dict[str, Any]]:
        reply = client.post("/v1/predictions", json=[{**event, **extra}])
        return reply.status_code, reply.json()

    assert post() == (200, {"accepted": 1, "inserted": 1, "duplicates": 0})
    # 1 is the default: sending it, as an integer or a float, is the same event.
    assert post(weight=1) == (200, {"accepted": 1, "inserted": 0, "duplicates": 1})
    assert post(weight=1.0) == (200, {"accepted": 1, "inserted": 0, "duplicates": 1})
    assert post(weight=2)[0] == 409
    # A weighted event: resent with the same weight (2 or 2.0) a duplicate, else a 409.
    event["request_id"] = "r2"
    assert post(weight=2)[1]["inserted"] == 1
    assert post(weight=2.0)[1]["duplicates"] == 1
    status, body = post(weight=3)
    assert status == 409, body
    assert post()[0] == 409  # without it: weight 1, another event
    window = _get(client, "metrics?model=fraud&window=1h")
    assert window["n_predictions"] == 2


def test_canary_and_shadow_comparisons_are_weighted(client: TestClient) -> None:
    _send(client)
    reply = _get(client, "compare?candidate=fraud:v2&baseline=fraud:v1&window=1h&min_samples=10")
    assert reply["mode"] == "canary"
    comparison = reply["comparison"]
    losses = []
    for version in ("v2", "v1"):
        rows = (DATA["version"] == version) & DATA["labelled"]
        y, p, w = DATA["y"][rows], DATA["p"][rows], DATA["w"][rows]
        losses.append(log_loss(y, p, sample_weight=w, labels=[0, 1]))
    assert comparison["candidate_log_loss"] == pytest.approx(losses[0], rel=1e-9)
    assert comparison["delta"] == pytest.approx(losses[0] - losses[1], rel=1e-9)
    # Shadow: a second model scored the same requests; each pair weighs what the
    # candidate's prediction weighs (as it takes the candidate's cohort).
    shadow = [
        {**event, "model": "shadow", "probabilities": round(0.9 * event["probabilities"] + 0.05, 6)}
        for event in _predictions()
    ]
    assert client.post("/v1/predictions", json=shadow).status_code == 200
    assert client.post("/v1/labels", json=_labels("shadow")).status_code == 200
    paired = _get(client, "compare?candidate=shadow&baseline=fraud&window=1h&min_samples=10")
    assert paired["mode"] == "shadow"
    rows = DATA["labelled"]
    y, p, w = DATA["y"][rows], DATA["p"][rows], DATA["w"][rows]
    q = np.round(0.9 * p + 0.05, 6)
    delta = log_loss(y, q, sample_weight=w) - log_loss(y, p, sample_weight=w)
    assert paired["comparison"]["delta"] == pytest.approx(delta, rel=1e-9)


def test_a_correction_restates_the_weighted_window(client: TestClient) -> None:
    _send(client)
    fixed = [i for i in range(N) if DATA["labelled"][i]][:25]
    corrections = [
        {"request_id": f"r{i}", "model": "fraud", "label": 1 - int(DATA["y"][i]),
         "correction": True}
        for i in fixed
    ]  # fmt: skip
    assert client.post("/v1/labels", json=corrections).json()["corrected"] == 25
    y = DATA["y"].copy()
    y[fixed] = 1 - y[fixed]
    rows = DATA["labelled"]
    for query, mask in (("", rows), ("&cohort=region:us", rows & (DATA["region"] == "us"))):
        window = _get(client, f"metrics?model=fraud&window=1h{query}")
        expected = log_loss(y[mask], DATA["p"][mask], sample_weight=DATA["w"][mask])
        assert window["log_loss"] == pytest.approx(expected, rel=1e-9)
        assert window["weight"] == pytest.approx(DATA["w"][mask].sum(), rel=1e-12)
    # The restated buckets equal a rebuild from the events.
    before = _get(client, "metrics?model=fraud&window=1h")
    client.app.state.writer.store.rebuild_buckets()
    _assert_same(_get(client, "metrics?model=fraud&window=1h"), before)


def test_drift_counts_events_and_weighs_the_label_mix() -> None:
    # Feature bins are learnt from the first 100 values (not 1000): 240 events suffice.
    store = EventStore(":memory:", monitor=MonitorConfig(learn_after=100))
    with TestClient(create_app(store, close_store=True)) as client:
        _drift_cases(client)


def _drift_cases(client: TestClient) -> None:
    _send(client, "fraud", weighted=True)
    _send(client, "plain", weighted=False)
    query = "drift?model={}&window=1h&reference=version:v1&version=v2"
    weighted = _get(client, query.format("fraud"))
    plain = _get(client, query.format("plain"))
    for name in ("n_current", "n_reference"):
        assert weighted[name] == plain[name], name
    rows = {f["feature"]: f for f in weighted["features"]}
    plain_rows = {f["feature"]: f for f in plain["features"]}
    assert rows.keys() == plain_rows.keys() >= {"amount", "channel", "__score__", "__label__"}
    # Feature and score histograms count events, whatever they weigh.
    for feature in rows.keys() - {"__label__"}:
        assert rows[feature] == plain_rows[feature], feature
    # The label row: the weighted label mix (the windows' label_counts), sized in events.
    label, plain_label = rows["__label__"], plain_rows["__label__"]
    for side, version in (("current", "v2"), ("reference", "v1")):
        scored = (DATA["version"] == version) & DATA["labelled"]
        y, w = DATA["y"][scored], DATA["w"][scored]
        assert plain_label[f"n_{side}"] == scored.sum()
        assert label[f"n_{side}"] == pytest.approx(scored.sum(), rel=1e-12)
        share = [w[y == 0].sum() / w.sum(), w[y == 1].sum() / w.sum()]
        assert label[f"{side}_share"][:2] == pytest.approx(share, rel=1e-12)
        assert plain_label[f"{side}_share"][:2] == pytest.approx(
            [np.mean(y == 0), np.mean(y == 1)], rel=1e-12
        )


def test_the_client_sdk_sends_weights() -> None:
    store = EventStore(":memory:")
    with serve_in_thread(create_app(store, close_store=True)) as url:
        with Client(url, batch_size=50, flush_interval=0.05) as sdk:
            for i in range(N):
                sdk.log_prediction(
                    f"r{i}",
                    np.float64(DATA["p"][i]),
                    model="fraud",
                    version=str(DATA["version"][i]),
                    cohort={"region": str(DATA["region"][i])},
                    timestamp=_time(i),
                    weight=DATA["w"][i],  # a NumPy float
                )
            for label in _labels():
                sdk.log_label(label["request_id"], label["label"], model="fraud")
            assert sdk.flush(timeout=30)
            with pytest.raises(ValueError, match=r"^weight: must be a finite number"):
                sdk.log_prediction("bad", 0.5, model="fraud", weight=0)
        reply = httpx.get(f"{url}/v1/metrics", params={"model": "fraud", "window": "1h"})
        assert reply.status_code == 200, reply.text
        _assert_window(reply.json(), np.ones(N, dtype=bool))
