"""The HTTP service in process: bad input, idempotency, labels, auth, tenants, PII, back-pressure.

Every bad request must get the right 4xx with a field path, never a 5xx, and
leave the stored rows unchanged (the store's checksum before and after).
"""

from __future__ import annotations

import gzip
import hmac
import json
import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from hashlib import sha256
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xebench.ingest.events import Limits, PiiPolicy
from xebench.service.app import create_app
from xebench.service.config import ServiceConfig, TokenEntry, TokenRegistry, hash_token
from xebench.store.event_store import EventStore

JSON = {"content-type": "application/json"}
NDJSON = {"content-type": "application/x-ndjson"}


def prediction(request_id: str = "r1", **fields: Any) -> dict[str, Any]:
    event = {
        "request_id": request_id,
        "model": "fraud",
        "version": "v1",
        "timestamp": "2026-01-01T00:00:00Z",
        "probabilities": 0.8,
        "cohort": {"region": "eu"},
        "features": {"amount": 12.5},
    }
    event.update(fields)
    return event


def client_for(store: EventStore, config: ServiceConfig | None = None) -> TestClient:
    return TestClient(create_app(store, config), raise_server_exceptions=False)


@pytest.fixture
def client(store: EventStore) -> Iterator[TestClient]:
    with client_for(store) as client:
        # Something stored already, so "unchanged" is not trivially an empty table.
        assert client.post("/v1/predictions", json=[prediction("seed")]).status_code == 200
        yield client


def post(client: TestClient, body: bytes, headers: dict[str, str] | None = None, path: str = ""):
    return client.post(path or "/v1/predictions", content=body, headers=headers or JSON)


def _deep(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


BIG = Limits().max_body_bytes

# (case, path, body, headers, status, field path of the first error or None)
BAD_INPUTS: list[tuple[str, str, bytes, dict[str, str], int, str | None]] = [
    ("NaN literal", "", b'[{"request_id":"a","model":"m","probabilities":NaN}]', JSON, 422,
     "/0/probabilities"),
    ("infinity in a vector", "",
     b'[{"request_id":"a","model":"m","probabilities":[0.5,Infinity]}]', JSON, 422,
     "/0/probabilities/1"),
    ("NaN as a string", "", b'[{"request_id":"a","model":"m","probabilities":"NaN"}]', JSON, 422,
     "/0/probabilities"),
    ("negative probability", "", json.dumps([prediction(probabilities=-0.1)]).encode(), JSON,
     422, "/0/probabilities"),
    ("probability above 1", "", json.dumps([prediction(probabilities=[0.2, 1.3])]).encode(),
     JSON, 422, "/0/probabilities/1"),
    ("row not summing to 1", "", json.dumps([prediction(probabilities=[0.2, 0.5])]).encode(),
     JSON, 422, "/0/probabilities"),
    ("wrong vector length", "",
     json.dumps([prediction(probabilities=[0.2, 0.8], classes=["a", "b", "c"])]).encode(), JSON,
     422, "/0/probabilities"),
    ("missing model", "", b'[{"request_id":"a","probabilities":0.5}]', JSON, 422, "/0/model"),
    ("missing label", "/v1/labels", b'[{"request_id":"a"}]', JSON, 422, "/0/label"),
    ("request_id of the wrong type", "", json.dumps([prediction(request_id=17)]).encode(), JSON,
     422, "/0/request_id"),
    ("cohort of the wrong type", "", json.dumps([prediction(cohort=["eu"])]).encode(), JSON, 422,
     "/0/cohort"),
    ("timestamp without timezone", "",
     json.dumps([prediction(timestamp="2026-01-01T00:00:00")]).encode(), JSON, 422,
     "/0/timestamp"),
    ("far-future timestamp", "",
     json.dumps([prediction(timestamp="2099-01-01T00:00:00Z")]).encode(), JSON, 422,
     "/0/timestamp"),
    ("label timestamp without timezone", "/v1/labels",
     b'[{"request_id":"a","label":1,"timestamp":"2026-01-01 10:00"}]', JSON, 422, "/0/timestamp"),
    ("SQL-like model name", "",
     json.dumps([prediction(model="fraud'; DROP TABLE predictions; --")]).encode(), JSON, 422,
     "/0/model"),
    ("emoji model name", "", json.dumps([prediction(model="\U0001f525")]).encode(), JSON, 422,
     "/0/model"),
    ("control character in request_id", "", json.dumps([prediction(request_id="a\nb")]).encode(),
     JSON, 422, "/0/request_id"),
    ("nested feature", "", json.dumps([prediction(features={"a": {"b": 1}})]).encode(), JSON, 422,
     "/0/features/a"),
    ("unknown field", "", json.dumps([prediction(cohorts={"region": "eu"})]).encode(), JSON, 422,
     "/0/cohorts"),
    ("second event of two bad", "",
     json.dumps([prediction("ok"), prediction("bad", probabilities=2)]).encode(), JSON, 422,
     "/1/probabilities"),
    ("bad NDJSON line", "",
     (json.dumps(prediction("x")) + "\n" + json.dumps(prediction("y", model="")) + "\n").encode(),
     NDJSON, 422, "/1/model"),
    ("empty batch", "", b"[]", JSON, 422, None),
    ("not JSON", "", b"predictions please", JSON, 400, None),
    ("truncated JSON", "", b'[{"request_id":"a",', JSON, 400, None),
    ("deep nesting", "", _deep(100_000), JSON, 400, None),
    ("invalid UTF-8", "", b'[{"request_id":"a\xff\xfe","model":"m","probabilities":0.5}]', JSON,
     400, None),
    ("wrong content type", "", json.dumps([prediction()]).encode(), {"content-type": "text/csv"},
     415, None),
    ("no content type", "", json.dumps([prediction()]).encode(), {"content-type": ""}, 415, None),
    ("unsupported encoding", "", json.dumps([prediction()]).encode(),
     {**JSON, "content-encoding": "br"}, 415, None),
    ("corrupt gzip", "", b"\x1f\x8b\x08\x00garbage", {**JSON, "content-encoding": "gzip"}, 400,
     None),
    ("oversized body", "", b"[" + b" " * (BIG + 1) + b"]", JSON, 413, None),
    ("gzip bomb", "", gzip.compress(b"[" + b" " * (64 * BIG) + b"]"),
     {**JSON, "content-encoding": "gzip"}, 413, None),
    ("too many events", "",
     json.dumps([prediction(f"r{i}") for i in range(Limits().max_events + 1)]).encode(), JSON, 413,
     None),
]  # fmt: skip


@pytest.mark.parametrize(
    ("path", "body", "headers", "status", "field"),
    [case[1:] for case in BAD_INPUTS],
    ids=[case[0] for case in BAD_INPUTS],
)
def test_bad_input_gets_4xx_with_field_path_and_stores_nothing(
    client: TestClient,
    store: EventStore,
    path: str,
    body: bytes,
    headers: dict[str, str],
    status: int,
    field: str | None,
) -> None:
    before = store.checksum()
    response = post(client, body, headers, path)
    assert response.status_code == status, response.text
    answer = response.json()
    assert answer["detail"]
    if field is not None:
        assert answer["errors"][0]["field"] == field
        assert answer["errors"][0]["message"]
    assert store.checksum() == before


def test_unknown_label_is_refused_once_the_model_classes_are_known(
    client: TestClient, store: EventStore
) -> None:
    spam = prediction("p", version="v2", probabilities=[0.1, 0.9], classes=["ham", "spam"])
    assert client.post("/v1/predictions", json=[spam]).status_code == 200
    before = store.checksum()
    response = client.post(
        "/v1/labels", json=[{"request_id": "p", "model": "fraud", "label": "eggs"}]
    )
    assert response.status_code == 422
    error = response.json()["errors"][0]
    assert error["field"] == "/0/label" and "'eggs'" in error["message"]
    assert store.checksum() == before
    ok = client.post("/v1/labels", json=[{"request_id": "p", "model": "fraud", "label": "spam"}])
    assert ok.status_code == 200 and ok.json()["joined"] == 1


@pytest.mark.parametrize("ndjson", [False, True])
def test_a_large_label_body_takes_the_fast_path_and_is_judged_like_a_small_one(
    client: TestClient, store: EventStore, monkeypatch: pytest.MonkeyPatch, ndjson: bool
) -> None:
    import xebench.ingest.labels as labels_module

    taken: list[bool] = []
    fast = labels_module.fast_label_table

    def spy(*args: Any, **kwargs: Any) -> Any:
        table = fast(*args, **kwargs)
        taken.append(table is not None)
        return table

    monkeypatch.setattr(labels_module, "fast_label_table", spy)
    predictions = [prediction(f"p{i}", timestamp="2026-01-01T00:00:01Z") for i in range(600)]
    assert client.post("/v1/predictions", json=predictions).status_code == 200
    sent = [{"request_id": f"p{i}", "model": "fraud", "label": i % 2} for i in range(600)]

    def body(events: list[dict[str, Any]]) -> tuple[bytes, dict[str, str]]:
        if ndjson:
            return "\n".join(json.dumps(e) for e in events).encode(), NDJSON
        return json.dumps(events).encode(), JSON

    bad = [*sent[:417], {**sent[417], "label": "eggs"}, *sent[418:]]
    content, headers = body(bad)
    assert len(content) > 16 * 1024  # not validated inline: the validation thread's path
    before = store.checksum()
    refused = client.post("/v1/labels", content=content, headers=headers)
    assert refused.status_code == 422
    assert [e["field"] for e in refused.json()["errors"]] == ["/417/label"]
    assert "'eggs' is not a class of model 'fraud'" in refused.json()["errors"][0]["message"]
    assert store.checksum() == before and taken == [False]
    content, headers = body(sent)
    answer = client.post("/v1/labels", content=content, headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"accepted": 600, "inserted": 600, "duplicates": 0, "joined": 600,
                             "pending": 0}  # fmt: skip
    assert taken == [False, True]
    assert stored(store, "SELECT request_id, label FROM labels ORDER BY 1") == sorted(
        (e["request_id"], str(e["label"])) for e in sent
    )


def test_one_error_entry_per_bad_event(client: TestClient) -> None:
    batch = [
        prediction("a", probabilities=2, model=""),
        prediction("b"),
        prediction("c", probabilities=-1),
    ]
    errors = client.post("/v1/predictions", json=batch).json()["errors"]
    assert [e["index"] for e in errors] == [0, 2]


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(
        st.sampled_from(["request_id", "model", "version", "probabilities", "classes", "cohort",
                         "features", "timestamp", "label", "x"]), children, max_size=6),
    max_leaves=20,
)  # fmt: skip


@pytest.mark.slow
@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=st.lists(JSON_VALUES, max_size=3) | JSON_VALUES, labels=st.booleans())
def test_arbitrary_json_never_gets_a_5xx(client: TestClient, body: Any, labels: bool) -> None:
    path = "/v1/labels" if labels else "/v1/predictions"
    response = client.post(path, content=json.dumps(body).encode(), headers=JSON)
    assert response.status_code < 500, response.text


# --- what is stored -------------------------------------------------------------------------


def stored(store: EventStore, sql: str) -> list[tuple[Any, ...]]:
    return store.cursor().execute(sql).fetchall()


def test_accepted_batch_is_stored_as_sent(store: EventStore) -> None:
    with client_for(store) as client:
        events = [
            prediction("a", probabilities={"cat": 0.2, "dog": 0.8}, cohort={"tier": 3}),
            prediction("b", model="modèle", probabilities=[0.1, 0.2, 0.7], classes=[0, 1, 2]),
        ]
        body = gzip.compress("\n".join(json.dumps(e) for e in events).encode())
        response = post(client, body, {**NDJSON, "content-encoding": "gzip"})
        assert response.json() == {"accepted": 2, "inserted": 2, "duplicates": 0}
    rows = stored(
        store,
        "SELECT request_id, model, classes, probabilities, cohort FROM predictions ORDER BY 1",
    )
    assert rows == [
        ("a", "fraud", ["cat", "dog"], [0.2, 0.8], {"tier": "3"}),
        ("b", "modèle", ["0", "1", "2"], [0.1, 0.2, 0.7], {"region": "eu"}),
    ]


def test_identical_resend_is_idempotent_and_a_changed_one_conflicts(store: EventStore) -> None:
    with client_for(store) as client:
        first = client.post("/v1/predictions", json=[prediction("a"), prediction("b")])
        assert first.json() == {"accepted": 2, "inserted": 2, "duplicates": 0}
        again = client.post("/v1/predictions", json=[prediction("a"), prediction("c")])
        assert again.json() == {"accepted": 2, "inserted": 1, "duplicates": 1}
        before = store.checksum()
        changed = client.post(
            "/v1/predictions", json=[prediction("d"), prediction("a", probabilities=0.1)]
        )
        assert changed.status_code == 409
        conflict = changed.json()["conflicts"][0]
        assert (conflict["index"], conflict["request_id"], conflict["field"]) == (
            1,
            "a",
            "/1/request_id",
        )
        assert store.checksum() == before  # "d" was not stored either: the batch is whole
    assert stored(store, "SELECT count(*) FROM predictions") == [(3,)]


def test_resend_without_timestamp_is_a_duplicate_not_a_conflict(store: EventStore) -> None:
    event = {"request_id": "a", "model": "m", "probabilities": 0.3}
    with client_for(store) as client:
        assert client.post("/v1/predictions", json=[event]).json()["inserted"] == 1
        assert client.post("/v1/predictions", json=[event]).json()["duplicates"] == 1


def test_label_before_prediction_waits_then_joins(store: EventStore) -> None:
    with client_for(store) as client:
        early = client.post("/v1/labels", json=[{"request_id": "a", "label": 1}])
        assert early.json() == {
            "accepted": 1,
            "inserted": 1,
            "duplicates": 0,
            "joined": 0,
            "pending": 1,
        }
        assert client.post("/v1/predictions", json=[prediction("a")]).status_code == 200
        late = client.post("/v1/labels", json=[{"request_id": "b", "model": "fraud", "label": 0}])
        assert late.json()["pending"] == 1
        client.post("/v1/predictions", json=[prediction("b")])
        models = client.get("/v1/models").json()["models"]
    assert [(m["model"], m["version"], m["predictions"], m["joined"]) for m in models] == [
        ("fraud", "v1", 2, 2)
    ]
    assert store.counts("default")["pending"] == 0


def test_models_route_and_404(client: TestClient) -> None:
    assert client.get("/v1/models/fraud").json()["versions"][0]["predictions"] == 1
    missing = client.get("/v1/models/nothing")
    assert missing.status_code == 404 and "nothing" in missing.json()["detail"]


def test_openapi_documents_the_event_bodies(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    body = spec["paths"]["/v1/predictions"]["post"]["requestBody"]["content"]
    assert {"application/json", "application/x-ndjson"} <= set(body)
    assert "probabilities" in json.dumps(body)
    assert client.get("/docs").status_code == 404  # no Swagger UI: it loads from a CDN


def test_health_and_readiness(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"


# --- tokens and tenants ------------------------------------------------------------------

TOKENS = {"a": "token-of-a", "b": "token-of-b", "a_read": "read-only-token-of-a"}


@pytest.fixture
def tenants(store: EventStore) -> Iterator[TestClient]:
    registry = TokenRegistry(
        [
            TokenEntry("acme", frozenset({"ingest", "read"}), hash_token(TOKENS["a"])),
            TokenEntry("bravo", frozenset({"ingest", "read"}), hash_token(TOKENS["b"])),
            TokenEntry("acme", frozenset({"read"}), hash_token(TOKENS["a_read"])),
        ]
    )
    with client_for(store, ServiceConfig(tokens=registry)) as client:
        yield client


def auth(who: str) -> dict[str, str]:
    return {"authorization": f"Bearer {TOKENS[who]}"}


READ_ROUTES = ["/v1/models", "/v1/models/fraud"]


@pytest.mark.parametrize("path", ["/v1/predictions", "/v1/labels", *READ_ROUTES])
def test_every_v1_route_needs_a_valid_token(tenants: TestClient, path: str) -> None:
    call = tenants.post if path in ("/v1/predictions", "/v1/labels") else tenants.get
    kwargs = {"json": [prediction()]} if call == tenants.post else {}
    missing = call(path, **kwargs)
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
    wrong = call(path, headers={"authorization": "Bearer nope"}, **kwargs)
    assert wrong.status_code == 401


def test_scopes_are_enforced(tenants: TestClient) -> None:
    response = tenants.post("/v1/predictions", json=[prediction()], headers=auth("a_read"))
    assert response.status_code == 403 and "ingest" in response.json()["detail"]
    assert tenants.get("/v1/models", headers=auth("a_read")).status_code == 200


def test_a_tenant_never_sees_or_touches_another_tenants_data(
    tenants: TestClient, store: EventStore
) -> None:
    assert (
        tenants.post("/v1/predictions", json=[prediction("r1")], headers=auth("a")).status_code
        == 200
    )
    # Every read route, as the other tenant: nothing, or 404.
    assert tenants.get("/v1/models", headers=auth("b")).json() == {"models": []}
    assert tenants.get("/v1/models/fraud", headers=auth("b")).status_code == 404
    assert tenants.get("/v1/models/fraud", headers=auth("a_read")).status_code == 200
    # The same key in the other tenant is a different event, not a conflict or a duplicate.
    other = tenants.post(
        "/v1/predictions", json=[prediction("r1", probabilities=0.1)], headers=auth("b")
    )
    assert other.json()["inserted"] == 1
    # A label from bravo joins bravo's prediction only.
    label = tenants.post("/v1/labels", json=[{"request_id": "r1", "label": 1}], headers=auth("b"))
    assert label.json()["joined"] == 1
    acme = tenants.get("/v1/models", headers=auth("a")).json()["models"]
    assert [(m["predictions"], m["joined"]) for m in acme] == [(1, 0)]
    assert stored(store, "SELECT tenant, probabilities[2] FROM predictions ORDER BY tenant") == [
        ("acme", 0.8), ("bravo", 0.1)
    ]  # fmt: skip


def test_tokens_and_bodies_never_reach_the_logs(
    tenants: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret_feature = "4111-1111-1111-1111"
    tenants.post(
        "/v1/predictions",
        json=[prediction("r9", features={"card": secret_feature})],
        headers=auth("a"),
    )
    tenants.post("/v1/predictions", json=[prediction(probabilities=7)], headers=auth("a"))
    text = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert caplog.records, "the access log should have recorded the requests"
    assert TOKENS["a"] not in text and secret_feature not in text


# --- privacy --------------------------------------------------------------------------------


def test_pii_keys_are_dropped_or_hashed_before_storage(store: EventStore) -> None:
    pii = PiiPolicy(drop=frozenset({"email"}), hash=frozenset({"user"}), key=b"secret")
    with client_for(store, ServiceConfig(pii=pii)) as client:
        event = prediction(
            "a", cohort={"region": "eu", "user": "u-17"}, features={"email": "x@y.z", "amount": 3}
        )
        assert client.post("/v1/predictions", json=[event]).status_code == 200
        assert client.post("/v1/predictions", json=[event]).json()["duplicates"] == 1
    expected = "h:" + hmac.new(b"secret", b"u-17", sha256).hexdigest()[:16]
    cohort, features = stored(store, "SELECT cohort, features FROM predictions")[0]
    assert cohort == {"region": "eu", "user": expected}
    assert json.loads(features) == {"amount": 3}
    everything = str(stored(store, "SELECT * FROM predictions"))
    assert "u-17" not in everything and "x@y.z" not in everything


# --- back-pressure and storage failures -----------------------------------------------------


def test_full_queue_answers_429_with_retry_after(
    store: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    entered, release = threading.Event(), threading.Event()
    real_write = store.write

    def slow_write(batches: Any, **options: Any) -> Any:
        entered.set()
        release.wait(10)
        return real_write(batches, **options)

    monkeypatch.setattr(store, "write", slow_write)
    # The bound counts events queued and in flight: "a" in the writer plus "b" fill it.
    with client_for(store, ServiceConfig(queue_events=2)) as client:
        results: list[int] = []

        def send(rid: str) -> None:
            results.append(client.post("/v1/predictions", json=[prediction(rid)]).status_code)

        first = threading.Thread(target=send, args=("a",))
        first.start()
        assert entered.wait(10)  # the writer holds "a"
        second = threading.Thread(target=send, args=("b",))
        second.start()
        app_writer = client.app.state.writer
        for _ in range(1000):
            if app_writer.queued_events == 2:
                break
            threading.Event().wait(0.01)
        busy = client.post("/v1/predictions", json=[prediction("c")])
        assert busy.status_code == 429 and float(busy.headers["retry-after"]) > 0
        release.set()
        first.join(10)
        second.join(10)
        assert sorted(results) == [200, 200]
    assert stored(store, "SELECT request_id FROM predictions ORDER BY 1") == [("a",), ("b",)]


def test_store_failure_answers_503_then_recovers_after_reopen(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    broken = EventStore(":memory:")
    fresh = EventStore(":memory:")

    def fail(batches: Any, **options: Any) -> Any:
        raise OSError("disk full")

    monkeypatch.setattr(broken, "write", fail)
    monkeypatch.setattr(broken, "healthy", lambda: False)
    reopened = threading.Event()

    def reopen() -> EventStore:
        reopened.set()
        return fresh

    with TestClient(create_app(broken, reopen=reopen), raise_server_exceptions=False) as client:
        failed = client.post("/v1/predictions", json=[prediction("a")])
        assert failed.status_code == 503 and failed.headers["retry-after"]
        assert "disk full" in failed.json()["detail"]
        assert reopened.wait(10)
        for _ in range(500):
            response = client.post("/v1/predictions", json=[prediction("a")])
            if response.status_code == 200:
                break
            threading.Event().wait(0.01)
        assert response.json()["inserted"] == 1
        assert client.get("/readyz").status_code == 200
    assert fresh.counts("default")["predictions"] == 1


def test_orphan_labels_are_counted_not_dropped(store: EventStore) -> None:
    with client_for(store, ServiceConfig(join_window=timedelta(days=7))) as client:
        client.post("/v1/labels", json=[{"request_id": "never", "label": 0}])
    assert store.counts("default")["orphans"] == 0
    later = store.counts("default", now=datetime.now(UTC) + timedelta(days=8))
    assert (later["pending"], later["labels"], later["orphans"]) == (1, 1, 1)
