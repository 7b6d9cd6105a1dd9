"""Hostile input over HTTP (issue 13): each case a 4xx naming the field or the query
parameter, nothing stored, and never a 5xx; a handler's own bug is one logged 500 that
keeps the client's connection.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from fastapi.testclient import TestClient

from loopback import serve_in_thread
from xebench.service.app import create_app
from xebench.store.event_store import EventStore

JSON = {"content-type": "application/json"}
NDJSON = {"content-type": "application/x-ndjson"}
BIG = "1" + "0" * 400  # 10**400: no float holds it
PRINTABLE = "printable characters (no control, bidirectional-override or lone surrogate"
INT64 = "signed 64-bit range"
SURROGATE = "lone surrogate (U+D800-U+DFFF)"


def obj(*members: tuple[str, str]) -> str:
    """A JSON object as text from (key, value as JSON text) pairs; keys may repeat."""
    return "{" + ",".join(f'"{key}":{value}' for key, value in members) + "}"


def event(**fields: str) -> str:
    """A prediction event as JSON text, ``fields`` given as JSON text (so that they can
    be what no Python value serialises to: 10**400 as a literal, a lone surrogate)."""
    base = {"request_id": '"h1"', "model": '"m"', "probabilities": "0.5", **fields}
    return obj(*base.items())


def label(**fields: str) -> str:
    return obj(*{"request_id": '"h1"', "label": "1", **fields}.items())


def batch(*events: str) -> str:
    return "[" + ",".join(events) + "]"


def text(value: Any) -> str:
    return json.dumps(value)


P, L = "/v1/predictions", "/v1/labels"
LONE, LONE_LOW = '"\\ud800"', '"m\\udfff"'  # JSON escapes of lone surrogates

# (case, path, body, headers, field of the first error, words of its message)
CASES: list[tuple[str, str, str, dict[str, str], str, str]] = [
    ("400-digit probability", P, batch(event(probabilities=BIG)), JSON, "/0/probabilities",
     "got an integer of 401 digits"),
    ("400-digit probability in a vector", P, batch(event(probabilities=f"[{BIG},0]")), JSON,
     "/0/probabilities/0", "got an integer of 401 digits"),
    ("400-digit class probability", P, batch(event(probabilities=obj(("x", BIG), ("y", "0")))),
     JSON, "/0/probabilities/x", "got an integer of 401 digits"),
    ("10**400 feature value", P, batch(event(features=obj(("f", BIG)))), JSON, "/0/features/f",
     INT64),
    ("10**400 cohort value", P, batch(event(cohort=obj(("c", BIG)))), JSON, "/0/cohort/c", INT64),
    ("10**400 label", L, batch(label(label=BIG)), JSON, "/0/label", INT64),
    ("10**400 class", P, batch(event(classes=f"[{BIG},1]")), JSON, "/0/classes/0", INT64),
    ("2**63 label", L, batch(label(label=str(2**63))), JSON, "/0/label", INT64),
    ("5000-digit feature value", P, batch(event(features=obj(("f", "9" * 5000)))), JSON,
     "/0/features/f", "an integer of 5000 digits"),
    ("5000-digit label, NDJSON", L, label(label="-" + "9" * 5000), NDJSON, "/0/label",
     "an integer of 5000 digits"),
    ("year 1 at +01:00", P, batch(event(timestamp=text("0001-01-01T00:00:00+01:00"))), JSON,
     "/0/timestamp", "before 1970-01-01"),
    ("year 1 UTC", P, batch(event(timestamp=text("0001-01-01T00:00:00Z"))), JSON, "/0/timestamp",
     "before 1970-01-01"),
    ("1969", P, batch(event(timestamp=text("1969-12-31T23:59:59Z"))), JSON, "/0/timestamp",
     "before 1970-01-01"),
    ("year 9999 at -01:00", P, batch(event(timestamp=text("9999-12-31T23:59:59-01:00"))), JSON,
     "/0/timestamp", "ahead of the server clock"),
    ("label at year 1 +01:00", L, batch(label(timestamp=text("0001-01-01T00:00:00+01:00"))),
     JSON, "/0/timestamp", "before 1970-01-01"),
    ("label at year 9999 -01:00", L, batch(label(timestamp=text("9999-12-31T23:59:59-01:00"))),
     JSON, "/0/timestamp", "ahead of the server clock"),
    ("repeated request_id, array", P,
     batch(obj(("request_id", '"a"'), ("request_id", '"b"'), ("model", '"m"'),
               ("probabilities", "0.5"))), JSON, "/0/request_id", "repeats the key 'request_id'"),
    ("repeated request_id, one object", P,
     obj(("request_id", '"a"'), ("request_id", '"b"'), ("model", '"m"'), ("probabilities", "0.5")),
     JSON, "/0/request_id", "repeats the key 'request_id'"),
    ("repeated request_id, NDJSON line 2", P,
     event() + "\n" + obj(("request_id", '"a"'), ("model", '"m"'), ("request_id", '"b"'),
                          ("probabilities", "0.5")) + "\n", NDJSON, "/1/request_id",
     "repeats the key 'request_id'"),
    ("repeated key with spaces before colons", P,
     '[{"request_id" : "a", "model" : "m", "model" : "n", "probabilities" : 0.5}]', JSON,
     "/0/model", "repeats the key 'model'"),
    ("repeated cohort key", P, batch(event(cohort=obj(("c", '"a"'), ("c", '"b"')))), JSON,
     "/0/cohort/c", "repeats the key 'c'"),
    ("repeated feature key", P, batch(event(features=obj(("f", "1"), ("f", "2")))), JSON,
     "/0/features/f", "repeats the key 'f'"),
    ("repeated class in a probability map", P,
     batch(event(probabilities=obj(("x", "0.5"), ("x", "0.5")))), JSON, "/0/probabilities/x",
     "repeats the key 'x'"),
    ("repeated label key", L, batch(obj(("request_id", '"a"'), ("label", "1"), ("label", "0"))),
     JSON, "/0/label", "repeats the key 'label'"),
    ("repeated key in a bad batch", P,
     batch(event(probabilities="2"), obj(("request_id", '"a"'), ("request_id", '"b"'),
                                        ("model", '"m"'), ("probabilities", "0.5"))), JSON,
     "/0/probabilities", "must be in [0, 1]"),
    ("scalar probability, classes x x", P, batch(event(classes=text(["x", "x"]))), JSON,
     "/0/classes", "classes must be distinct"),
    ("scalar probability, classes true and 1", P, batch(event(classes="[true, 1]")), JSON,
     "/0/classes", "classes must be distinct"),
    ("lone surrogate in request_id", P, batch(event(request_id=LONE)), JSON, "/0/request_id",
     SURROGATE),
    ("lone surrogate in model", P, batch(event(model=LONE_LOW)), JSON, "/0/model", SURROGATE),
    ("lone surrogate in a cohort value", P, batch(event(cohort=obj(("c", LONE)))), JSON,
     "/0/cohort/c", SURROGATE),
    ("lone surrogate in a feature value", P, batch(event(features=obj(("f", LONE)))), JSON,
     "/0/features/f", SURROGATE),
    ("lone surrogate in a label, NDJSON", L, label(label=LONE) + "\n", NDJSON, "/0/label",
     SURROGATE),
    ("lone surrogate, second event", P, batch(event(), event(request_id=LONE)), JSON,
     "/1/request_id", SURROGATE),
    ("NUL in request_id", P, batch(event(request_id=text("a\x00"))), JSON, "/0/request_id",
     PRINTABLE),
    ("NUL in a feature value", P, batch(event(features=text({"f": "a\x00b"}))), JSON,
     "/0/features/f", PRINTABLE),
    ("NUL in a label", L, batch(label(label=text("a\x00"))), JSON, "/0/label", PRINTABLE),
    ("NUL in a class name", P, batch(event(probabilities=text({"a\x00": 0.5, "b": 0.5}))), JSON,
     "/0/probabilities/a\x00", PRINTABLE),
    ("RTL override in request_id", P, batch(event(request_id=text("tx\u202e1"))), JSON,
     "/0/request_id", PRINTABLE),
    ("RTL mark in a cohort value", P, batch(event(cohort=text({"c": "eu\u200f"}))), JSON,
     "/0/cohort/c", PRINTABLE),
    ("C1 control in a label", L, batch(label(label=text("a\x85"))), JSON, "/0/label", PRINTABLE),
    ("request_id of 257 characters", P, batch(event(request_id=text("r" * 257))), JSON,
     "/0/request_id", PRINTABLE),
    ("1 MB feature string", P, batch(event(features=text({"f": "x" * 1_000_000}))), JSON,
     "/0/features/f", "0-1024 " + PRINTABLE),
    ("1 MB label", L, batch(label(label=text("x" * 1_000_000))), JSON, "/0/label",
     "1-256 " + PRINTABLE),
    ("1 MB request_id", P, batch(event(request_id=text("x" * 1_000_000))), JSON, "/0/request_id",
     PRINTABLE),
    ("300-character cohort value", P, batch(event(cohort=text({"c": "v" * 300}))), JSON,
     "/0/cohort/c", "0-256 " + PRINTABLE),
    ("200,000 probabilities", P, batch(event(probabilities=text([0] * 200_000))), JSON,
     "/0/probabilities", "at most 10000 classes"),
    ("1e308*10 as text", P, batch(event(probabilities="1e309")), JSON, "/0/probabilities",
     "must be finite"),
    ("-1e309 feature", P, batch(event(features=obj(("f", "-1e309")))), JSON, "/0/features/f",
     "must be finite"),
    ("NaN literal", P, batch(event(probabilities="NaN")), JSON, "/0/probabilities",
     "must be finite"),
    ("Infinity feature", P, batch(event(features=obj(("f", "Infinity")))), JSON,
     "/0/features/f", "must be finite"),
    ("-Infinity in a vector", P, batch(event(probabilities="[1,-Infinity]")), JSON,
     "/0/probabilities/1", "must be finite"),
]  # fmt: skip


@pytest.fixture
def client(store: EventStore) -> Iterator[TestClient]:
    with TestClient(create_app(store), raise_server_exceptions=False) as client:
        seed = [{"request_id": "seed", "model": "m", "probabilities": 0.5}]
        assert client.post(P, json=seed).status_code == 200
        yield client


def models(client: TestClient) -> list[dict[str, Any]]:
    return [
        {k: row[k] for k in ("model", "version", "predictions", "labels")}
        for row in client.get("/v1/models").json()["models"]
    ]


@pytest.mark.parametrize(
    ("path", "body", "headers", "field", "words"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_hostile_event_is_a_422_naming_the_field_and_stores_nothing(
    client: TestClient,
    store: EventStore,
    path: str,
    body: str,
    headers: dict[str, str],
    field: str,
    words: str,
) -> None:
    before, listed = store.checksum(), models(client)
    response = client.post(path, content=body.encode("utf-8", "surrogatepass"), headers=headers)
    assert response.status_code == 422, response.text
    first = response.json()["errors"][0]
    assert (first["field"], first["index"]) == (field, int(field.split("/")[1]))
    assert words in first["message"], first["message"]
    assert store.checksum() == before
    assert (
        models(client) == listed == [{"model": "m", "version": "", "predictions": 1, "labels": 0}]
    )


# Accepted as what they are: -0.0 is the number 0 (stored as 0.0, so that a resend of 0 is
# the same payload), a key repeated in *different* objects is no repetition, and an escaped
# quote before a colon inside a string is not a key.
ACCEPTED = [
    ("negative zero", event(probabilities="-0.0"), [1.0, 0.0]),
    ("same key in two objects", event(cohort=obj(("f", '"a"')), features=obj(("f", "1"))),
     [0.5, 0.5]),
    ("escaped quote and colon in a string", event(features=text({"f": 'a":b'})), [0.5, 0.5]),
    ("a string holding a key-like text", event(request_id=text('{"a":1,"a":2}')), [0.5, 0.5]),
    ("spaces before colons", '{"request_id" : "s", "model" : "m", "probabilities" : 0.5}',
     [0.5, 0.5]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("body", "stored"), [c[1:] for c in ACCEPTED], ids=[c[0] for c in ACCEPTED]
)
def test_odd_but_valid_events_are_stored(
    client: TestClient, store: EventStore, body: str, stored: list[float]
) -> None:
    response = client.post(P, content=f"[{body}]", headers=JSON)
    assert response.status_code == 200, response.text
    with store.cursor() as cursor:
        (probabilities,) = cursor.execute(
            "SELECT probabilities FROM predictions WHERE request_id <> 'seed'"
        ).fetchone()
    assert probabilities == stored
    assert all(str(p) != "-0.0" for p in probabilities)


def test_depth_bomb_is_a_400_with_its_position(client: TestClient, store: EventStore) -> None:
    # Nothing to name: the body is not JSON within the parser's depth; the answer says where.
    before = store.checksum()
    for body in ("[" * 10_000 + "]" * 10_000, batch(event(features="[" * 10_000 + "]" * 10_000))):
        response = client.post(P, content=body, headers=JSON)
        assert response.status_code == 400
        assert "recursion limit exceeded at line 1 column" in response.json()["detail"]
    assert store.checksum() == before


QUERIES = ["window=99999999d", "window=999999999999d", "window=84007d", "window=60000d"]
TIMES = [
    ("from", "0001-01-01T00:00:00+01:00"),
    ("from", "1969-12-31T23:59:59Z"),
    ("to", "9999-12-31T23:59:59-01:00"),
    ("to", "2200-01-01T00:00:00Z"),
]
ROUTES = [
    "/v1/metrics?model=m",
    "/v1/metrics?model=m&step=1h",
    "/v1/drift?model=m",
    "/v1/compare?candidate=m&baseline=m",
]


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("query", QUERIES)
def test_huge_windows_are_a_422_naming_window(client: TestClient, route: str, query: str) -> None:
    response = client.get(f"{route}&{query}")
    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["errors"]] == ["/query/window"]


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize(("name", "value"), TIMES)
def test_times_at_the_datetime_limits_are_a_422_naming_the_parameter(
    client: TestClient, route: str, name: str, value: str
) -> None:
    response = client.get(f"{route}&{name}={quote(value)}")
    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["errors"]] == [f"/query/{name}"]
    assert "1970-01-01T00:00:00Z" in response.json()["detail"]


@pytest.mark.parametrize(
    ("query", "name"),
    [
        ("step=0", "step"),
        ("step=0s", "step"),
        ("step=99999999d", "step"),
        ("step=1e300s", "step"),
        ("step=30s", "step"),
        ("window=7d&step=1m", "step"),  # 10,080 points
        ("window=0.0000001s", "window"),
        ("from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z", "from"),
        ("from=2026-01-01T00:00:00Z&to=2026-01-01T00:00:00Z", "from"),
        ("window=2h&from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z", "window"),
        ("confidence=nan", "confidence"),
        ("confidence=1", "confidence"),
        ("confidence=0", "confidence"),
        ("base=3", "base"),
    ],
)
def test_bad_series_and_ranges_are_a_422_naming_the_parameter(
    client: TestClient, query: str, name: str
) -> None:
    response = client.get(f"/v1/metrics?model=m&{query}")
    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["errors"]] == [f"/query/{name}"]


@pytest.mark.parametrize(
    ("route", "name"),
    [
        ("/v1/drift?model=m&threshold=nan", "threshold"),
        ("/v1/drift?model=m&threshold=-1", "threshold"),
        ("/v1/drift?model=m&min_samples=-1", "min_samples"),
        ("/v1/drift?model=m&reference=range:0001-01-01T00:00:00%2B01:00/2026-01-01T00:00:00Z",
         "reference"),
        ("/v1/drift?model=m&reference=range:2026-01-01T00:00:00Z/9999-12-31T23:59:59-01:00",
         "reference"),
        ("/v1/compare?candidate=m&baseline=m&confidence=inf", "confidence"),
        ("/v1/compare?candidate=m&baseline=m&max_degradation=nan", "max_degradation"),
        ("/v1/compare?candidate=m&baseline=m&min_samples=-5", "min_samples"),
    ],
)  # fmt: skip
def test_bad_drift_and_compare_options_are_a_422_naming_them(
    client: TestClient, route: str, name: str
) -> None:
    response = client.get(route)
    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["errors"]] == [f"/query/{name}"]


def test_the_earliest_window_still_answers(client: TestClient) -> None:
    response = client.get("/v1/metrics?model=m&from=1970-01-01T00:00:00Z&to=2199-12-31T23:00:00Z")
    assert response.status_code == 200, response.text
    answer = response.json()
    assert (answer["from"], answer["to"]) == ("1970-01-01T00:00:00Z", "2199-12-31T23:00:00Z")


def failing_app(store: EventStore) -> Any:
    app = create_app(store)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("a bug in a handler")

    return app


def test_a_handler_bug_is_one_logged_500_json_answer(
    store: EventStore, caplog: pytest.LogCaptureFixture
) -> None:
    # raise_server_exceptions=True (the default): nothing may escape the app.
    with TestClient(failing_app(store)) as client, caplog.at_level(logging.ERROR):
        response = client.get("/boom")
        assert response.status_code == 500
        detail = response.json()["detail"]
        assert detail.startswith("internal error (incident ")
        assert client.get("/healthz").status_code == 200
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert errors[0].getMessage() == "unhandled error"
    assert errors[0].incident in detail  # type: ignore[attr-defined]
    assert errors[0].exc_info is not None and "a bug in a handler" in str(errors[0].exc_info[1])


@pytest.mark.slow
def test_a_handler_bug_keeps_the_keep_alive_connection_over_loopback(
    store: EventStore, caplog: pytest.LogCaptureFixture
) -> None:
    with (
        serve_in_thread(failing_app(store)) as url,
        caplog.at_level(logging.ERROR),
        httpx.Client(base_url=url, limits=httpx.Limits(max_connections=1)) as http,
    ):
        sockets = []
        for path in ("/healthz", "/boom", "/healthz", "/boom", "/v1/models"):
            response = http.get(path)
            sockets.append(response.extensions["network_stream"].get_extra_info("socket"))
            assert response.status_code == (500 if path == "/boom" else 200)
        # One TCP connection served all five: the 500s did not close it.
        assert len({s.getsockname() for s in sockets}) == 1
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert [r.getMessage() for r in errors] == ["unhandled error", "unhandled error"]
