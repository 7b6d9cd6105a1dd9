"""``GET /metrics`` (issue 14, item 6): the Prometheus exposition of a tenant.

The exposition is parsed with ``prometheus_client``'s own parser. Model gauges are
compared with ``GET /v1/metrics`` (the same window, the same statistics) and, for one
window, with scikit-learn's log loss over the stored events; drift with
``GET /v1/drift``; the service counters with what the test sent.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sklearn.metrics import log_loss

from xebench.analysis.slo import SLO
from xebench.demo.stream import generate, load
from xebench.service.app import create_app
from xebench.service.config import ServiceConfig, TokenEntry, TokenRegistry, hash_token
from xebench.service.prometheus import WINDOWS
from xebench.store.buckets import MonitorConfig
from xebench.store.event_store import EventStore

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]

# /v1/metrics field of each model gauge.
FIELDS = {
    "xebench_log_loss": "log_loss",
    "xebench_brier": "brier",
    "xebench_ece": "ece",
    "xebench_skill": "skill",
    "xebench_label_coverage": "coverage",
    "xebench_label_lag_seconds": "label_lag_p50_s",
    "xebench_label_lag_p90_seconds": "label_lag_p90_s",
    "xebench_predictions": "n_predictions",
    "xebench_labelled": "n_labelled",
}


def parse(text: str) -> Samples:
    """Every sample of an exposition: (name, labels) -> value."""
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = (sample.name, frozenset(sample.labels.items()))
            assert key not in out, f"sample {key} given twice"
            out[key] = sample.value
    return out


def scrape(client: TestClient, **headers: str) -> Samples:
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return parse(response.text)


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def series(samples: Samples, name: str) -> list[dict[str, str]]:
    return [dict(labels) for (n, labels) in samples if n == name]


def in_one_minute(read: Callable[[], Any]) -> Any:
    """``read()`` done within one wall-clock minute (the windows end at the minute)."""
    for _ in range(5):
        before = datetime.now(UTC).replace(second=0, microsecond=0)
        result = read()
        if datetime.now(UTC).replace(second=0, microsecond=0) == before:
            return result
    raise AssertionError("every attempt straddled a minute")


def close(got: float | None, expected: float | None) -> bool:
    if got is None or expected is None:
        return got is None and expected is None
    return math.isclose(got, expected, rel_tol=1e-9, abs_tol=1e-12)


# --- a demo-like store ------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo() -> Iterator[tuple[TestClient, Any]]:
    """26 hours of the demo stream (a binary model with a canary version, a multiclass
    model, region and device cohorts, features), loaded and folded."""
    store = EventStore(":memory:")
    stream = generate(hours=26, rate_per_minute=12, seed=3)
    load(store, stream)
    store.update_buckets()
    with TestClient(create_app(store, close_store=True)) as client:
        yield client, stream


def test_model_gauges_equal_v1_metrics_for_every_series_and_window(demo: Any) -> None:
    client, _ = demo

    def read() -> tuple[Samples, dict[tuple[str, str, str, str], dict[str, Any]]]:
        samples = scrape(client)
        answers = {}
        for labels in series(samples, "xebench_predictions"):
            params = {"model": labels["model"], "window": labels["window"]}
            if labels["version"]:
                params["version"] = labels["version"]
            if labels["cohort"]:
                params["cohort"] = labels["cohort"]
            response = client.get("/v1/metrics", params=params)
            assert response.status_code == 200, response.text
            key = (labels["model"], labels["version"], labels["window"], labels["cohort"])
            answers[key] = response.json()
        return samples, answers

    samples, answers = in_one_minute(read)
    seen_windows, seen_versions, seen_cohorts, scored = set(), set(), set(), 0
    for (model, version, window, cohort), answer in answers.items():
        labels = {"model": model, "version": version, "window": window, "cohort": cohort}
        for name, field in FIELDS.items():
            got = value(samples, name, **labels)
            assert close(got, answer[field]), (name, labels, got, answer[field])
        estimate = answer["log_loss_estimate"]
        got = value(samples, "xebench_log_loss_estimate_calibrated", **labels)
        assert close(got, None if estimate is None else estimate["calibrated"]), labels
        scored += answer["log_loss"] is not None
        seen_windows.add(window)
        seen_versions.add(version)
        seen_cohorts.add(cohort)
    assert seen_windows == set(WINDOWS)
    assert {"", "v1", "v2"} <= seen_versions  # every version, and all of them together
    assert "" in seen_cohorts and "region:eu" in seen_cohorts
    assert scored > 50
    # Both models: the binary one and the multiclass one.
    assert {labels["model"] for labels in series(samples, "xebench_log_loss")} == {
        "fraud",
        "triage",
    }
    # Extremal predictions: the two outermost bins of the score histogram, counted.
    for labels in series(samples, "xebench_extremal_predictions"):
        extremal = value(samples, "xebench_extremal_predictions", **labels)
        assert extremal is not None
        assert 0 <= extremal <= (value(samples, "xebench_predictions", **labels) or 0)


def test_whole_model_log_loss_equals_scikit_learn_over_the_stored_events(demo: Any) -> None:
    client, _ = demo
    samples = in_one_minute(lambda: (scrape(client), datetime.now(UTC)))
    samples, at = samples
    end = at.replace(second=0, microsecond=0) + timedelta(minutes=1)
    start = end - timedelta(hours=6)
    store = client.app.state.xebench.store
    with store.cursor() as cursor:
        rows = cursor.execute(
            "SELECT probabilities[2], label FROM joined WHERE tenant = 'default' "
            "AND model = 'fraud' AND event_time >= $start AND event_time < $end",
            {"start": start, "end": end},
        ).fetchall()
    p = np.array([r[0] for r in rows])
    y = np.array([int(r[1]) for r in rows])
    expected = log_loss(y, p, labels=[0, 1])
    got = value(samples, "xebench_log_loss", model="fraud", version="", window="6h", cohort="")
    assert got is not None and len(rows) > 500
    assert math.isclose(got, expected, rel_tol=1e-9)


def test_drift_equals_v1_drift(demo: Any) -> None:
    client, _ = demo

    def read() -> tuple[Samples, dict[tuple[str, str], Any]]:
        samples = scrape(client)
        drift = {
            (model, window): client.get("/v1/drift", params={"model": model, "window": window})
            for model in ("fraud", "triage")
            for window in WINDOWS
        }
        return samples, {k: r.json() for k, r in drift.items()}

    samples, drift = in_one_minute(read)
    compared = 0
    for (model, window), answer in drift.items():
        for row in answer["features"]:
            got = value(
                samples,
                "xebench_drift_js",
                model=model,
                version="",
                window=window,
                cohort="",
                feature=row["feature"],
            )
            if row["verdict"] == "insufficient":
                assert got is None, (model, window, row)
            else:
                assert close(got, row["js"]), (model, window, row["feature"], got, row["js"])
                compared += 1
    assert compared >= 6
    # Score drift is there too, named as /v1/drift names it.
    assert any(labels["feature"] == "__score__" for labels in series(samples, "xebench_drift_js"))


# --- bounded labels, tenants --------------------------------------------------------------


def _prediction(i: int, at: datetime, **fields: Any) -> dict[str, Any]:
    return {
        "request_id": f"r{i}",
        "model": "fraud",
        "timestamp": at.isoformat(),
        "probabilities": 0.2 + 0.6 * ((i * 7) % 10) / 10,
        **fields,
    }


def test_cohort_label_values_are_bounded_by_the_stores_cap() -> None:
    config = ServiceConfig(monitor=MonitorConfig(cohort_cap=3))
    now = datetime.now(UTC) - timedelta(minutes=2)
    events = [_prediction(i, now, cohort={"shop": f"s{i % 12}"}) for i in range(120)]
    with TestClient(create_app(EventStore(":memory:", monitor=config.monitor), config)) as c:
        assert c.post("/v1/predictions", json=events).status_code == 200
        samples = scrape(c)
    cohorts = {labels["cohort"] for labels in series(samples, "xebench_predictions")}
    assert "" in cohorts and "shop:__other__" in cohorts
    assert len(cohorts - {""}) == 3 + 1  # the cap, and the rest together
    # The series of a window add up: the capped values and __other__ hold every event.
    total = sum(
        value(samples, "xebench_predictions", **labels) or 0
        for labels in series(samples, "xebench_predictions")
        if labels["cohort"] and labels["window"] == "1h" and labels["version"] == ""
    )
    assert total == 120


def _tokens() -> TokenRegistry:
    return TokenRegistry(
        [
            TokenEntry("acme", frozenset({"ingest", "read"}), hash_token("a-token")),
            TokenEntry("beta", frozenset({"read"}), hash_token("b-token")),
            TokenEntry("acme", frozenset({"ingest"}), hash_token("a-ingest")),
        ]
    )


def test_a_token_sees_its_tenant_only_and_no_token_is_401() -> None:
    config = ServiceConfig(tokens=_tokens())
    now = datetime.now(UTC) - timedelta(minutes=2)
    with TestClient(create_app(EventStore(":memory:"), config)) as client:
        auth = {"Authorization": "Bearer a-token"}
        events = [_prediction(i, now) for i in range(10)]
        assert client.post("/v1/predictions", json=events, headers=auth).status_code == 200
        acme, beta = scrape(client, **auth), scrape(client, Authorization="Bearer b-token")
        missing = client.get("/metrics")
        wrong = client.get("/metrics", headers={"Authorization": "Bearer nope"})
        ingest_only = client.get("/metrics", headers={"Authorization": "Bearer a-ingest"})
    assert value(acme, "xebench_predictions", model="fraud", version="", window="1h", cohort="")
    assert value(acme, "xebench_stored_events", kind="prediction") == 10
    assert value(acme, "xebench_events_total", kind="prediction", outcome="accepted") == 10
    for name in ("xebench_predictions", "xebench_log_loss", "xebench_drift_js"):
        assert series(beta, name) == []
    assert value(beta, "xebench_stored_events", kind="prediction") == 0
    assert value(beta, "xebench_events_total", kind="prediction", outcome="accepted") == 0
    # acme's requests are not beta's to count.
    assert not any(
        s["route"] == "/v1/predictions" for s in series(beta, "xebench_http_requests_total")
    )
    assert missing.status_code == 401 and wrong.status_code == 401
    assert missing.headers["www-authenticate"] == "Bearer"
    assert ingest_only.status_code == 403


# --- service counters ---------------------------------------------------------------------


def test_counters_move_with_accepted_duplicate_rejected_and_refused_requests() -> None:
    now = datetime.now(UTC) - timedelta(minutes=2)
    with TestClient(create_app(EventStore(":memory:"))) as client:
        before = scrape(client)
        batch = [_prediction(i, now) for i in range(4)]
        assert client.post("/v1/predictions", json=batch).status_code == 200
        assert client.post("/v1/predictions", json=batch[:3]).status_code == 200  # re-sent
        invalid = [_prediction(10, now), {**_prediction(11, now), "probabilities": 1.5}]
        invalid.append(_prediction(12, now))
        assert client.post("/v1/predictions", json=invalid).status_code == 422
        changed = [{**batch[0], "probabilities": 0.99}, _prediction(20, now)]
        assert client.post("/v1/predictions", json=changed).status_code == 409
        labels = [{"request_id": "r0", "label": 1}, {"request_id": "r1", "label": 0}]
        assert client.post("/v1/labels", json=labels).status_code == 200
        assert client.post("/v1/labels", json=labels[:1]).status_code == 200
        writer = client.app.state.writer
        writer.max_events, room = 0, writer.max_events  # the queue is "full": 429
        assert client.post("/v1/predictions", json=batch).status_code == 429
        writer.max_events = room
        assert client.get("/v1/models/fraud").status_code == 200
        assert client.get("/no/such/path/123").status_code == 404
        after = scrape(client)

    def events(samples: Samples, kind: str, outcome: str) -> float | None:
        return value(samples, "xebench_events_total", kind=kind, outcome=outcome)

    for kind in ("prediction", "label"):
        for outcome in ("accepted", "duplicate", "rejected"):
            assert events(before, kind, outcome) == 0
    assert events(after, "prediction", "accepted") == 4
    assert events(after, "prediction", "duplicate") == 3
    assert events(after, "prediction", "rejected") == 3 + 2  # the 422 batch, the 409 one
    assert events(after, "label", "accepted") == 2
    assert events(after, "label", "duplicate") == 1

    def requests(route: str, status: str, method: str = "POST") -> float | None:
        return value(
            after, "xebench_http_requests_total", method=method, route=route, status=status
        )

    assert requests("/v1/predictions", "200") == 2
    assert requests("/v1/predictions", "422") == 1
    assert requests("/v1/predictions", "409") == 1
    assert requests("/v1/predictions", "429") == 1
    assert requests("/v1/labels", "200") == 2
    assert requests("/v1/models/{model}", "200", "GET") == 1  # the template, not the path
    assert requests("unmatched", "404", "GET") == 1
    assert requests("/metrics", "200", "GET") == 1  # the first scrape
    assert not any("/no/such" in s["route"] for s in series(after, "xebench_http_requests_total"))
    rejected = {s["status"]: value(after, "xebench_rejected_requests_total", **s)
                for s in series(after, "xebench_rejected_requests_total")}  # fmt: skip
    assert rejected == {"413": 0, "429": 1, "503": 0}
    # The latency of the acknowledged batches: 2 of predictions, 2 of labels.
    for kind, n in (("prediction", 2), ("label", 2)):
        assert value(after, "xebench_ingest_latency_seconds_count", kind=kind) == n
        assert value(after, "xebench_ingest_latency_seconds_bucket", kind=kind, le="+Inf") == n
        total = value(after, "xebench_ingest_latency_seconds_sum", kind=kind)
        assert total is not None and 0 < total < 60
    assert value(after, "xebench_queue_events") == 0
    assert value(after, "xebench_pending_labels") == 0
    assert value(after, "xebench_stored_events", kind="prediction") == 4


def test_a_413_is_counted_as_a_refused_request() -> None:
    config = ServiceConfig()
    with TestClient(create_app(EventStore(":memory:"), config)) as client:
        limit = config.limits.max_body_bytes
        response = client.post(
            "/v1/labels",
            content=b"[" + b" " * (limit + 1) + b"]",
            headers={"content-type": "application/json"},
        )
        assert response.status_code == 413
        samples = scrape(client)
    assert value(samples, "xebench_rejected_requests_total", status="413") == 1


def test_read_your_writes_a_scrape_at_once_shows_the_acknowledged_batch() -> None:
    now = datetime.now(UTC) - timedelta(minutes=3)
    with TestClient(create_app(EventStore(":memory:"), close_store=True)) as client:
        p = [0.9, 0.2, 0.7, 0.4, 0.65, 0.1]
        y = [1, 0, 0, 1, 1, 0]
        labels = {"model": "fraud", "version": "", "window": "1h", "cohort": ""}
        for step in range(2):  # the second scrape must not be an old, cached answer
            events = [
                {"request_id": f"s{step}-{i}", "model": "fraud", "timestamp": now.isoformat(),
                 "probabilities": q} for i, q in enumerate(p)
            ]  # fmt: skip
            assert client.post("/v1/predictions", json=events).status_code == 200
            sent = [{"request_id": f"s{step}-{i}", "label": v} for i, v in enumerate(y)]
            assert client.post("/v1/labels", json=sent).status_code == 200
            samples = scrape(client)
            assert value(samples, "xebench_predictions", **labels) == 6 * (step + 1)
            assert value(samples, "xebench_labelled", **labels) == 6 * (step + 1)
            got = value(samples, "xebench_log_loss", **labels)
            assert got is not None and math.isclose(got, log_loss(y, p), rel_tol=1e-9)


def test_an_empty_store_answers_a_valid_exposition() -> None:
    with TestClient(create_app(EventStore(":memory:"))) as client:
        response = client.get("/metrics")
    assert response.status_code == 200
    samples = parse(response.text)
    assert series(samples, "xebench_predictions") == []
    assert value(samples, "xebench_stored_events", kind="label") == 0
    assert value(samples, "xebench_events_total", kind="label", outcome="accepted") == 0
    assert "# TYPE xebench_log_loss gauge" in response.text
    assert "# TYPE xebench_ingest_latency_seconds histogram" in response.text


def test_unscored_windows_omit_the_metrics_that_need_labels_and_count_zero() -> None:
    now = datetime.now(UTC)
    old = now - timedelta(hours=3)  # in the 6h and 24h windows only
    with TestClient(create_app(EventStore(":memory:"))) as client:
        events = [_prediction(i, old) for i in range(5)]
        assert client.post("/v1/predictions", json=events).status_code == 200
        samples = scrape(client)
    base = {"model": "fraud", "version": "", "cohort": ""}
    assert value(samples, "xebench_predictions", window="6h", **base) == 5
    assert value(samples, "xebench_predictions", window="1h", **base) == 0
    assert value(samples, "xebench_labelled", window="1h", **base) == 0
    assert value(samples, "xebench_label_coverage", window="6h", **base) == 0
    for name in ("xebench_log_loss", "xebench_brier", "xebench_ece", "xebench_skill",
                 "xebench_label_lag_seconds", "xebench_label_coverage"):  # fmt: skip
        assert value(samples, name, window="1h", **base) is None
    for name in ("xebench_log_loss", "xebench_label_lag_seconds"):
        assert value(samples, name, window="6h", **base) is None
    assert "NaN" not in str(samples)


# --- SLO series ---------------------------------------------------------------------------


def test_slo_series_come_from_the_evaluators_statuses() -> None:
    slo = SLO("fraud-ll", model="fraud", sli="log_loss", objective=0.3, target=0.99,
              period=timedelta(days=28), runbook="https://runbooks.example/fraud")  # fmt: skip
    other = SLO("cov", model="fraud", sli="label_coverage", objective=0.8, version="v2",
                cohort="region:eu")  # fmt: skip
    statuses = [
        SimpleNamespace(slo=slo, verdict=0, sli_value=0.41, budget_remaining=0.25,
                        burn_rates={"5m": 14.0, "1h": 2.5, "3d": None}),
        SimpleNamespace(slo=other, verdict=-1, sli_value=None, budget_remaining=None,
                        burn_rates={}),
    ]  # fmt: skip
    with TestClient(create_app(EventStore(":memory:"))) as client:
        state = client.app.state.xebench
        asked = []

        def slo_statuses(tenant: str) -> list[Any]:
            asked.append(tenant)
            return statuses

        state.slo_statuses = slo_statuses  # the evaluator's answer, faked
        samples = scrape(client)
    assert asked == ["default"]
    first = {"slo": "fraud-ll", "model": "fraud", "version": "", "cohort": "", "sli": "log_loss"}
    assert value(samples, "xebench_slo_minute_judged", **first) == 1
    assert value(samples, "xebench_slo_minute_bad", **first) == 1
    assert value(samples, "xebench_slo_target", **first) == 0.99
    assert value(samples, "xebench_slo_objective", **first) == 0.3
    assert value(samples, "xebench_slo_period_days", **first) == 28
    assert value(samples, "xebench_slo_sli", **first) == 0.41
    assert value(samples, "xebench_slo_budget_remaining", **first) == 0.25
    assert value(samples, "xebench_slo_burn_rate", window="5m", **first) == 14
    assert value(samples, "xebench_slo_burn_rate", window="1h", **first) == 2.5
    assert value(samples, "xebench_slo_burn_rate", window="3d", **first) is None
    runbook = "https://runbooks.example/fraud"
    assert value(samples, "xebench_slo_info", runbook=runbook, **first) == 1
    second = {"slo": "cov", "model": "fraud", "version": "v2", "cohort": "region:eu",
              "sli": "label_coverage"}  # fmt: skip
    assert value(samples, "xebench_slo_minute_judged", **second) == 0
    assert value(samples, "xebench_slo_minute_bad", **second) == 0
    assert value(samples, "xebench_slo_sli", **second) is None
    assert value(samples, "xebench_slo_budget_remaining", **second) is None
    assert value(samples, "xebench_slo_info", runbook="", **second) == 1


def test_a_failing_slo_evaluator_leaves_its_series_out_not_the_scrape() -> None:
    with TestClient(create_app(EventStore(":memory:"))) as client:

        def broken(tenant: str) -> list[Any]:
            raise RuntimeError("evaluator down")

        client.app.state.xebench.slo_statuses = broken
        samples = scrape(client)
    assert series(samples, "xebench_slo_target") == []
    assert value(samples, "xebench_queue_events") == 0


# --- the scrape cache -----------------------------------------------------------------------


def test_scrapes_of_one_minute_share_a_snapshot_until_a_write_is_acknowledged() -> None:
    at = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
    with TestClient(create_app(EventStore(":memory:"))) as client:
        state = client.app.state.xebench
        first = state.prometheus.snapshot(state, "default", at)
        assert state.prometheus.snapshot(state, "default", at) is first
        assert state.prometheus.snapshot(state, "other", at) is not first  # per tenant
        later = state.prometheus.snapshot(state, "default", at + timedelta(minutes=1))
        assert later is not first and later.stored["predictions"] == 0
        event = _prediction(0, at - timedelta(minutes=5))
        assert client.post("/v1/predictions", json=[event]).status_code == 200
        again = state.prometheus.snapshot(state, "default", at + timedelta(minutes=1))
    assert again is not later
    assert again.stored["predictions"] == 1


# --- the same numbers in the corners: hours, days, class lists, the text format ------------


def _aligned_store(hours: float, seed: int) -> tuple[EventStore, datetime]:
    """A demo stream ending at a whole minute, loaded and folded."""
    end = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=2)
    store = EventStore(":memory:")
    load(store, generate(hours=hours, rate_per_minute=8, seed=seed, now=end))
    store.update_buckets()
    return store, end


def _compare_at(client: TestClient, at: datetime, models: tuple[str, ...]) -> int:
    """The scrape "at" ``at`` against /v1/metrics from/to over the same windows."""
    state = client.app.state.xebench
    samples = parse(state.prometheus.render(state, "default", now=at).decode())
    compared = 0
    for labels in series(samples, "xebench_predictions"):
        if labels["model"] not in models:
            continue
        start = at - {"1h": timedelta(hours=1), "6h": timedelta(hours=6),
                      "24h": timedelta(hours=24)}[labels["window"]]  # fmt: skip
        params = {"model": labels["model"], "from": start.isoformat(), "to": at.isoformat()}
        if labels["version"]:
            params["version"] = labels["version"]
        if labels["cohort"]:
            params["cohort"] = labels["cohort"]
        answer = client.get("/v1/metrics", params=params).json()
        for name, field in FIELDS.items():
            got = value(samples, name, **labels)
            assert close(got, answer[field]), (name, labels, got, answer[field])
        estimate = answer["log_loss_estimate"]
        got = value(samples, "xebench_log_loss_estimate_calibrated", **labels)
        assert close(got, None if estimate is None else estimate["calibrated"]), labels
        compared += 1
    return compared


@pytest.mark.parametrize("minute", [0, 1, 59])
def test_windows_ending_on_or_near_an_hour_equal_v1_metrics(minute: int) -> None:
    store, end = _aligned_store(hours=8, seed=5)
    at = end.replace(minute=minute) - timedelta(hours=1)  # on the hour, just after, before
    with TestClient(create_app(store)) as client:
        assert _compare_at(client, at, ("fraud", "triage")) > 20


def test_windows_over_rolled_up_days_equal_v1_metrics() -> None:
    from xebench.service.prometheus import read_buckets
    from xebench.store.retention import RetentionPolicy

    store, end = _aligned_store(hours=50, seed=6)
    # Hours older than an hour, floored to the day, become day rows (and the hours go).
    done = store.apply_policy(RetentionPolicy(hours=timedelta(hours=1)), now=end)
    midnight = datetime.fromisoformat(done["horizons"]["hours"])
    # A scrape at the horizon: its 24h window is the whole day before, in a day row.
    assert sum(table.num_rows for table in read_buckets(store, "default", midnight)) > 0
    with TestClient(create_app(store)) as client:
        assert _compare_at(client, end, ("fraud",)) > 10
        assert _compare_at(client, midnight, ("fraud",)) > 10


def test_rows_of_another_class_list_are_left_out_as_v1_metrics_leaves_them() -> None:
    # Stores written before class lists were enforced may hold a version with two lists;
    # /v1/metrics keeps each version's majority list (reads.one_class_list).
    store, end = _aligned_store(hours=3, seed=7)
    with store.cursor() as cursor:
        for table in ("bucket_scores", "bucket_scores_hour"):
            cursor.execute(
                f"INSERT INTO {table} SELECT * REPLACE (['neg', 'pos'] AS classes) FROM {table} "
                "WHERE model = 'fraud' AND version = 'v2'"
            )
    with TestClient(create_app(store)) as client:
        answer = client.get("/v1/metrics", params={"model": "fraud", "version": "v2",
                                                   "window": "6h"}).json()  # fmt: skip
        assert answer["n_other_classes"] > 0  # the planted rows are there, left out
        assert _compare_at(client, end, ("fraud",)) > 10


def test_the_text_is_generate_latests_byte_for_byte(demo: Any) -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    from xebench.service.prometheus import Counters, TenantCollector, exposition

    client, _ = demo
    state = client.app.state.xebench
    client.post("/v1/labels", json=[{"request_id": "nobody", "label": 1}])  # a counter moves
    snapshot = state.prometheus.snapshot(state, "default")
    registry = CollectorRegistry()
    registry.register(TenantCollector("default", snapshot, state.prometheus.counters, [], 0))
    assert exposition(registry.collect()) == generate_latest(registry)
    assert len(parse(exposition(registry.collect()).decode())) > 1000
    # What render() sends: the snapshot's gauges written straight from the samples, then
    # the service's families -- the same bytes again.
    collector = TenantCollector("default", snapshot, state.prometheus.counters, [], 0)
    sent = snapshot.gauge_text() + exposition(collector.service_families())
    assert sent == generate_latest(registry)
    empty = CollectorRegistry()
    empty.register(TenantCollector("t", snapshot, Counters(), [], 0))
    assert exposition(empty.collect()) == generate_latest(empty)


def test_a_part_the_store_cannot_answer_is_left_out_and_not_shared(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from xebench.service import prometheus

    calls = []

    def broken(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        raise RuntimeError("the store is being reopened")

    monkeypatch.setattr(prometheus, "model_gauges", broken)
    with TestClient(create_app(EventStore(":memory:"))) as client:
        first, second = scrape(client), scrape(client)
    assert len(calls) == 2  # not cached: the second scrape tried again
    assert series(first, "xebench_predictions") == []
    assert value(second, "xebench_stored_events", kind="prediction") == 0
    assert value(second, "xebench_events_total", kind="label", outcome="accepted") == 0


def test_probes_answering_503_are_not_refused_requests() -> None:
    from xebench.service.prometheus import Counters, Snapshot, TenantCollector, exposition

    counters = Counters()
    counters.request(None, "GET", "/readyz", 503)
    counters.request("t", "POST", "/v1/predictions", 503)
    counters.request(None, "FOO", "unmatched", 405)
    text = exposition(TenantCollector("t", Snapshot({}, {}), counters, [], 0).collect())
    samples = parse(text.decode())
    assert value(samples, "xebench_rejected_requests_total", status="503") == 1
    assert value(samples, "xebench_http_requests_total", method="GET", route="/readyz",
                 status="503") == 1  # fmt: skip
    assert value(samples, "xebench_http_requests_total", method="other", route="unmatched",
                 status="405") == 1  # fmt: skip
