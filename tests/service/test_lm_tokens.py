"""A language model's scored sequences through the service: ``POST /v1/lm/tokens``, then
the same store, buckets, windows, cohorts, drift and SLOs as any model's.

The expected numbers are computed here from the token log-probabilities by hand
(lm-evaluation-harness's definitions: perplexity ``exp(sum NLL / tokens)``, bits per
byte ``sum NLL / bytes / ln 2``), not from xebench's statistics.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from xebench.analysis.slo import SLO
from xebench.monitor.slo import evaluate_slo, minute_sli
from xebench.monitor.windows import Monitor
from xebench.service.app import create_app
from xebench.service.slo_config import parse_slo
from xebench.store import EventStore
from xebench.store.bucket_schema import MonitorConfig

NOW = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=5)
TEXTS = ["hello world", "naïve café", "日本語のテキスト", "a b c d", "🙂 emoji"]


def sequences(n: int, *, seed: int = 0, start: int = 0, model: str = "lm", version: str = "v1",
              minute: datetime = NOW) -> list[dict]:  # fmt: skip
    rng = random.Random(seed)
    events = []
    for i in range(start, start + n):
        size = rng.randint(1, 12)
        events.append(
            {
                "request_id": f"{model}-{version}-{i}",
                "model": model,
                "version": version,
                "timestamp": (minute + timedelta(seconds=rng.randint(0, 59))).isoformat(),
                "text": TEXTS[i % len(TEXTS)],
                "token_logprobs": [-rng.expovariate(0.7) for _ in range(size)],
                "cohort": {"lang": "ja" if i % len(TEXTS) == 2 else "other"},
            }
        )
    return events


def by_hand(events: list[dict]) -> dict[str, float]:
    nll = sum(-sum(e["token_logprobs"]) for e in events)
    tokens = sum(len(e["token_logprobs"]) for e in events)
    n_bytes = sum(len(e["text"].encode("utf-8")) for e in events)
    words = sum(len(e["text"].split()) for e in events)
    return {
        "n_sequences": len(events),
        "n_tokens": tokens,
        "n_bytes": n_bytes,
        "pooled_perplexity": math.exp(nll / tokens),
        "bits_per_byte": nll / n_bytes / math.log(2),
        "byte_perplexity": math.exp(nll / n_bytes),
        "word_perplexity": math.exp(nll / words),
        "mean_sequence_perplexity": float(
            np.mean(
                [math.exp(-sum(e["token_logprobs"]) / len(e["token_logprobs"])) for e in events]
            )
        ),
        "extremal_tokens": sum(lp < -10 for e in events for lp in e["token_logprobs"]),
    }


def check(tokens: dict, expected: dict[str, float]) -> None:
    for name, value in expected.items():
        assert tokens[name] == pytest.approx(value, rel=1e-9), name


@pytest.fixture
def client() -> Iterator[TestClient]:
    with TestClient(create_app(EventStore(":memory:"))) as client:
        yield client


def window(client: TestClient, **params: str) -> dict:
    answer = client.get("/v1/metrics", params={"model": "lm", "window": "1h", **params})
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_a_window_reports_the_sequences_as_lm_eval_defines_them(client: TestClient) -> None:
    events = sequences(300)
    answer = client.post("/v1/lm/tokens", json=events)
    assert answer.json() == {"accepted": 300, "inserted": 300, "duplicates": 0}
    doc = window(client)
    check(doc["tokens"], by_hand(events))
    low, high = doc["tokens"]["bits_per_byte_ci"]
    assert low < doc["tokens"]["bits_per_byte"] < high
    # The classifier fields stay empty: a scored sequence is no labelled prediction.
    assert doc["log_loss"] is None and doc["n_labelled"] == 0
    # A cohort, and a version.
    japanese = [e for e in events if e["cohort"]["lang"] == "ja"]
    check(window(client, cohort="lang:ja")["tokens"], by_hand(japanese))
    check(window(client, version="v1")["tokens"], by_hand(events))
    assert window(client, version="v2")["tokens"] is None


def test_reads_right_after_each_write_see_every_sequence(client: TestClient) -> None:
    rng = random.Random(7)
    sent: list[dict] = []
    for step in range(25):
        batch = sequences(rng.choice([1, 2, 7, 60, 400]), seed=step, start=len(sent))
        assert client.post("/v1/lm/tokens", json=batch).status_code == 200
        sent += batch
        tokens = window(client)["tokens"]  # at once: no sleep, no retry
        assert tokens["n_sequences"] == len(sent)
        assert tokens["n_tokens"] == sum(len(e["token_logprobs"]) for e in sent)
    check(window(client)["tokens"], by_hand(sent))


def test_a_series_splits_the_sequences_by_their_minute(client: TestClient) -> None:
    late = datetime.now(UTC) - timedelta(minutes=40)
    base = late.replace(minute=late.minute // 30 * 30, second=0, microsecond=0)
    first = sequences(40, minute=base - timedelta(minutes=20))
    second = sequences(25, start=40, minute=base + timedelta(minutes=10))
    client.post("/v1/lm/tokens", json=first + second)
    span = {"from": (base - timedelta(minutes=30)).isoformat(),
            "to": (base + timedelta(minutes=30)).isoformat()}  # fmt: skip
    series = client.get("/v1/metrics", params={"model": "lm", "step": "30m", **span})
    points = [p["tokens"] for p in series.json()["series"]]
    assert len(points) == 2
    check(points[0], by_hand(first))
    check(points[1], by_hand(second))


def test_resends_are_idempotent_and_a_changed_sequence_is_a_conflict(client: TestClient) -> None:
    events = sequences(20)
    client.post("/v1/lm/tokens", json=events)
    again = client.post("/v1/lm/tokens", json=events).json()
    assert again == {"accepted": 20, "inserted": 0, "duplicates": 20}
    changed = dict(events[3], token_logprobs=[-0.1])
    answer = client.post("/v1/lm/tokens", json=[changed])
    assert answer.status_code == 409
    assert answer.json()["conflicts"][0]["request_id"] == events[3]["request_id"]
    check(window(client)["tokens"], by_hand(events))  # nothing counted twice


BAD = [
    ({"token_logprobs": [0.5]}, "/0/token_logprobs/0"),
    ({"token_logprobs": []}, "/0/token_logprobs"),
    ({"token_logprobs": "-1"}, "/0/token_logprobs"),
    ({"token_logprobs": [True]}, "/0/token_logprobs/0"),
    ({"token_logprobs": [-1, "x"]}, "/0/token_logprobs/1"),
    ({"token_logprobs": [[-1.0]]}, "/0/token_logprobs/0"),
    ({"token_logprobs": [-(10**400)]}, "/0/token_logprobs/0"),
    ({"token_logprobs": [-1.0, -1e300, -1e300]}, "/0/token_logprobs/1"),
    ({"token_logprobs": [-10000.5]}, "/0/token_logprobs/0"),
    ({"n_bytes": 0}, "/0/n_bytes"),
    ({"n_bytes": 2**70}, "/0/n_bytes"),
    ({"n_words": -3}, "/0/n_words"),
    ({"text": "abc", "n_bytes": 4}, "/0/n_bytes"),
    ({"features": {"sequence_cross_entropy": 1.0}}, "/0/features/sequence_cross_entropy"),
    ({"probabilities": 0.4}, "/0/probabilities"),
    ({"timestamp": "0001-01-01T00:00:00+01:00"}, "/0/timestamp"),
    ({"timestamp": "9999-12-31T23:59:59-01:00"}, "/0/timestamp"),
    ({"model": "a b"}, "/0/model"),
    ({"request_id": "\u202eevil"}, "/0/request_id"),
]


@pytest.mark.parametrize(("change", "field"), BAD)
def test_bad_sequences_are_refused_naming_the_field(
    client: TestClient, change: dict, field: str
) -> None:
    good = {"request_id": "r", "model": "lm", "token_logprobs": [-1.0], "n_bytes": 3}
    answer = client.post("/v1/lm/tokens", json=[{**good, **change}])
    assert answer.status_code == 422, answer.text
    assert answer.json()["errors"][0]["field"] == field
    assert client.get("/v1/models").json()["models"] == []  # nothing stored


def test_raw_json_edge_cases_are_4xx(client: TestClient) -> None:
    headers = {"content-type": "application/json"}
    for body in (
        b'[{"request_id":"r","model":"lm","token_logprobs":[-1e999]}]',  # -inf
        b'[{"request_id":"r","model":"lm","token_logprobs":[-1,NaN]}]',
        b'[{"request_id":"r","model":"lm","model":"lm2","token_logprobs":[-1]}]',  # duplicate key
        b'[{"request_id":"r","model":"lm","token_logprobs":[-1]',  # truncated
        b"",
    ):
        answer = client.post("/v1/lm/tokens", content=body, headers=headers)
        assert 400 <= answer.status_code < 500, (body, answer.text)
    assert client.get("/v1/models").json()["models"] == []


def test_an_lm_model_takes_no_labels_and_no_class_probabilities(client: TestClient) -> None:
    client.post("/v1/lm/tokens", json=sequences(5))
    label = client.post("/v1/labels", json=[{"request_id": "lm-v1-1", "model": "lm", "label": 1}])
    assert label.status_code == 422
    clash = {"request_id": "c1", "model": "lm", "version": "v1", "probabilities": 0.3}
    assert client.post("/v1/predictions", json=[clash]).status_code == 409
    # A model-less label of the same request id joins a classifier's prediction of it,
    # never the scored sequence.
    same_id = {"request_id": "lm-v1-1", "model": "clf", "probabilities": 0.3}
    assert client.post("/v1/predictions", json=[same_id]).status_code == 200
    assert (
        client.post("/v1/labels", json=[{"request_id": "lm-v1-1", "label": 1}]).status_code == 200
    )
    doc = window(client)
    assert doc["n_labelled"] == 0 and doc["tokens"]["n_sequences"] == 5
    assert window(client, model="clf")["n_labelled"] == 1


def test_an_slo_on_bits_per_byte_reads_the_token_buckets(tmp_path: Path) -> None:
    store = EventStore(tmp_path / "lm.duckdb")
    with TestClient(create_app(store)) as client:
        events = sequences(80)
        client.post("/v1/lm/tokens", json=events)
        slo = SLO("lm-bpb", model="lm", sli="bits_per_byte", objective=5.0,
                  window=timedelta(hours=1), min_samples=10)  # fmt: skip
        sli = minute_sli(client.app.state.xebench.monitor, slo, NOW + timedelta(minutes=2), 3)
        # Every minute from NOW on has the whole batch in its trailing hour.
        assert sli.values[-1] == pytest.approx(by_hand(events)["bits_per_byte"], rel=1e-9)
        assert sli.samples[-1] == 80
        perplexity = SLO("lm-ppl", model="lm", sli="pooled_perplexity", objective=100.0,
                         window=timedelta(hours=1))  # fmt: skip
        sli = minute_sli(
            client.app.state.xebench.monitor, perplexity, NOW + timedelta(minutes=2), 3
        )
        assert sli.values[-1] == pytest.approx(by_hand(events)["pooled_perplexity"], rel=1e-9)
        # Judged: good under a loose objective, bad under a tight one (lower is better).
        monitor, at = client.app.state.xebench.monitor, NOW + timedelta(minutes=2)
        assert evaluate_slo(monitor, slo, at).verdict == 1
        tight = SLO("lm-bpb-tight", model="lm", sli="bits_per_byte", objective=0.01,
                    window=timedelta(hours=1), min_samples=10)  # fmt: skip
        assert evaluate_slo(monitor, tight, at).verdict == 0
    assert (
        parse_slo(
            {"name": "x", "model": "lm", "sli": "bits_per_byte", "objective": 1.5}, "slos[0]"
        ).sli
        == "bits_per_byte"
    )


def test_the_buckets_survive_a_restart_a_rebuild_and_compaction(tmp_path: Path) -> None:
    path = tmp_path / "lm.duckdb"
    events = sequences(120)
    first = EventStore(path)
    with TestClient(create_app(first)) as client:
        client.post("/v1/lm/tokens", json=events)
    first.close()
    store = EventStore(path)
    scope_doc = Monitor(store).window(_scope()).to_dict()["tokens"]
    check(scope_doc, by_hand(events))
    store.update_buckets(compact=True)
    check(Monitor(store).window(_scope()).to_dict()["tokens"], by_hand(events))
    store.rebuild_buckets()
    check(Monitor(store).window(_scope()).to_dict()["tokens"], by_hand(events))
    store.close()


def test_the_sequence_cross_entropy_is_a_monitored_feature(tmp_path: Path) -> None:
    store = EventStore(tmp_path / "lm.duckdb", monitor=MonitorConfig(learn_after=50))
    with TestClient(create_app(store)) as client:
        client.post("/v1/lm/tokens", json=sequences(200, minute=NOW - timedelta(hours=1)))
        client.post("/v1/lm/tokens", json=sequences(200, start=200, seed=3))
        drift = client.get("/v1/drift", params={"model": "lm", "window": "1h"})
        assert drift.status_code == 200, drift.text
        names = [f["feature"] for f in drift.json()["features"]]
        assert "sequence_cross_entropy" in names


def test_classifier_predictions_and_sequences_in_one_commit() -> None:
    from xebench.ingest.events import parse_predictions
    from xebench.ingest.sequences import parse_sequences
    from xebench.store.writes import EventBatch

    store = EventStore(":memory:")
    events = sequences(10)
    batches = [
        EventBatch("predictions", parse_predictions(
            [{"request_id": "c", "model": "clf", "probabilities": 0.2}], tenant="default")),
        EventBatch("predictions", parse_sequences(events, tenant="default")),
    ]  # fmt: skip
    outcomes = store.write(batches, fold=True)
    assert [o.inserted for o in outcomes] == [1, 10]
    check(Monitor(store).window(_scope()).to_dict()["tokens"], by_hand(events))
    clf = Monitor(store).window(_scope(model="clf")).to_dict()
    assert clf["n_predictions"] == 1 and clf["tokens"] is None


def _scope(model: str = "lm"):
    from xebench.monitor.scope import Scope

    return Scope("default", model, window="1h", now=datetime.now(UTC) + timedelta(minutes=1))


def test_extreme_but_valid_sequences_keep_every_read_answering(client: TestClient) -> None:
    # OpenAI's floor (-9999) on a long sequence, one tiny sequence, a huge byte count.
    events = [
        {"request_id": "floor", "model": "lm", "token_logprobs": [-9999.0] * 20_000, "n_bytes": 1},
        {"request_id": "tiny", "model": "lm", "token_logprobs": [-0.0], "n_bytes": 2**62},
    ]
    assert client.post("/v1/lm/tokens", json=events).status_code == 200
    tokens = window(client)["tokens"]
    assert tokens["n_tokens"] == 20_001
    # e^9998.5 is past the largest float: null in JSON, the cross-entropy stays exact.
    assert tokens["pooled_perplexity"] is None
    assert tokens["pooled_cross_entropy"] == pytest.approx(9999.0 * 20_000 / 20_001)
    assert tokens["extremal_tokens"] == 20_000
    for path in ("/v1/metrics?step=10m", "/v1/drift", "/v1/models/lm", "/v1/status",
                 "/v1/cohorts?key=lang", "/v1/reliability", "/v1/events", "/v1/slos",
                 "/metrics", "/", "/oncall", "/debug"):  # fmt: skip
        answer = client.get(path, params={"model": "lm", "window": "1h"})
        assert answer.status_code < 500, (path, answer.text)


def test_a_canary_of_two_lm_versions_compares_bits_per_byte(client: TestClient) -> None:
    baseline = sequences(400, version="v1", seed=1)
    same = sequences(400, version="v2", seed=2)
    client.post("/v1/lm/tokens", json=baseline + same)
    answer = client.get("/v1/compare", params={"model": "lm", "version": "v2",
                                               "candidate": "lm:v2", "baseline": "lm:v1",
                                               "window": "1h"})  # fmt: skip
    assert answer.status_code == 200, answer.text
    doc = answer.json()
    assert doc["metric"] == "bits_per_byte"
    assert doc["comparison"]["candidate_log_loss"] == pytest.approx(
        by_hand(same)["bits_per_byte"], rel=1e-9
    )
    assert doc["comparison"]["baseline_log_loss"] == pytest.approx(
        by_hand(baseline)["bits_per_byte"], rel=1e-9
    )
    assert doc["decision"]["status"] in {"pass", "inconclusive"}
    # A version twice as surprised per token fails.
    worse = [dict(e, token_logprobs=[2 * lp for lp in e["token_logprobs"]])
             for e in sequences(400, version="v3", seed=3)]  # fmt: skip
    client.post("/v1/lm/tokens", json=worse)
    doc = client.get("/v1/compare", params={"candidate": "lm:v3", "baseline": "lm:v1",
                                            "window": "1h", "min_samples": 200}).json()  # fmt: skip
    assert doc["decision"]["status"] == "fail", doc


def test_the_cli_shows_the_scored_sequences(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from xebench.cli import main

    path = tmp_path / "lm.duckdb"
    events = sequences(60)
    store = EventStore(path)
    with TestClient(create_app(store)) as client:
        client.post("/v1/lm/tokens", json=events)
    store.close()
    out_json = tmp_path / "w.json"
    code = main(["metrics", "--db", str(path), "--model", "lm", "--window", "1h",
                 "--json", str(out_json)])  # fmt: skip
    shown = capsys.readouterr().out
    assert code == 0
    assert "scored sequences" in shown
    assert f"{by_hand(events)['bits_per_byte']:.4f}" in shown
    import json

    check(json.loads(out_json.read_text())["tokens"], by_hand(events))


def test_the_client_sends_sequences_to_a_real_server(tmp_path: Path) -> None:
    import xebench as xb
    from loopback import serve_in_thread

    events = sequences(30)
    app = create_app(EventStore(str(tmp_path / "lm.duckdb")), close_store=True)
    with serve_in_thread(app) as url, xb.Client(url) as sdk:
        assert sdk.send_sequences(events) == {"accepted": 30, "inserted": 30, "duplicates": 0}
        assert sdk.send_sequences(events)["duplicates"] == 30
        with pytest.raises(xb.ClientError) as refused:
            sdk.send_sequences([{"request_id": "x", "model": "lm", "token_logprobs": [1.0]}])
        assert refused.value.status == 422
        assert refused.value.body["errors"][0]["field"] == "/0/token_logprobs/0"
        import httpx

        tokens = httpx.get(f"{url}/v1/metrics", params={"model": "lm", "window": "1h"}).json()
    check(tokens["tokens"], by_hand(events))
