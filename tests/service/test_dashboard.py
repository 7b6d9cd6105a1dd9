"""The web dashboard over HTTP (no browser): numbers equal the API's, tenants, sessions,
hostile text, bad filters, headers and static files. The browser's side is in
test_dashboard_browser.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from dashboard_helpers import (
    ACME,
    HOSTILE,
    IMG,
    OTHER,
    SCRIPT,
    SECRET_MODEL,
    bearer,
    cells,
    config,
    number,
    traffic,
)
from fastapi.testclient import TestClient
from sklearn.metrics import log_loss

from xebench.service.app import create_app
from xebench.service.routers.dashboard import SECURITY_HEADERS
from xebench.service.sessions import COOKIE
from xebench.store import EventStore

pytestmark = pytest.mark.slow


@pytest.fixture
def client() -> Iterator[TestClient]:
    app = create_app(EventStore(":memory:"), config())
    with TestClient(app) as client:
        predictions, labels = traffic()
        for body, path in ((predictions, "/v1/predictions"), (labels, "/v1/labels")):
            assert client.post(path, json=body, headers=bearer(ACME)).status_code == 200
        secret, secret_labels = traffic(50, model=SECRET_MODEL, seed=1)
        assert client.post("/v1/predictions", json=secret, headers=bearer(OTHER)).status_code == 200
        client.post("/v1/labels", json=secret_labels, headers=bearer(OTHER))
        yield client


def login(client: TestClient, token: str = ACME) -> None:
    answer = client.post("/login", data={"token": token, "next": "/oncall"}, follow_redirects=False)
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == "/oncall"
    cookie = answer.headers["set-cookie"]
    assert f"{COOKIE}=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert ACME not in cookie and OTHER not in cookie  # the token never goes to the cookie


def test_a_page_needs_a_session_or_a_token(client: TestClient) -> None:
    for path in ("/", "/oncall", "/debug?model=fraud"):
        answer = client.get(path, follow_redirects=False)
        assert answer.status_code == 303
        assert answer.headers["location"].startswith("/login?next=")
    assert client.get("/oncall", headers=bearer("wrong"), follow_redirects=False).status_code == 401
    assert client.get("/oncall", headers=bearer(ACME)).status_code == 200
    wrong = client.post("/login", data={"token": "nope"}, follow_redirects=False)
    assert wrong.status_code == 401 and "invalid token" in wrong.text
    assert COOKIE not in wrong.headers.get("set-cookie", "")


def test_login_then_logout(client: TestClient) -> None:
    login(client)
    assert client.get("/oncall").status_code == 200
    out = client.post("/logout", follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"] == "/login"
    assert client.get("/oncall", follow_redirects=False).status_code == 303


def test_login_never_redirects_elsewhere(client: TestClient) -> None:
    for target in ("//evil.example/", "https://evil.example/", "/v1/metrics", "javascript:x"):
        answer = client.post("/login", data={"token": ACME, "next": target}, follow_redirects=False)
        assert answer.headers["location"] == "/", target
    json_body = client.post("/login", json={"token": ACME})
    assert json_body.status_code == 415


def test_oncall_numbers_are_the_apis(client: TestClient) -> None:
    login(client)
    predictions, labels = traffic()
    for _attempt in range(3):  # a minute boundary between the page and the API: again
        page = client.get("/oncall?model=fraud")
        shown = cells(page.text).cells
        api = client.get(
            "/v1/metrics", params={"model": "fraud", "window": "1h"}, headers=bearer(ACME)
        ).json()
        if f"{api['from']} to {api['to']}" in page.text:
            break
    assert page.status_code == 200
    assert number(shown["1h", "n_predictions"]) == api["n_predictions"] == 600
    assert number(shown["1h", "n_labelled"]) == api["n_labelled"] == 600
    assert number(shown["1h", "log_loss"]) == pytest.approx(api["log_loss"], abs=5e-5)
    assert number(shown["1h", "ece"]) == pytest.approx(api["ece"], abs=5e-5)
    # ... and the API's log loss is scikit-learn's over the events sent.
    y = [label["label"] for label in labels]
    p = [event["probabilities"] for event in predictions]
    assert api["log_loss"] == pytest.approx(log_loss(y, p), rel=1e-9)
    for window in ("6h", "24h"):
        other = client.get(
            "/v1/metrics", params={"model": "fraud", "window": window}, headers=bearer(ACME)
        ).json()
        assert number(shown[window, "n_predictions"]) == other["n_predictions"]


def test_every_view_renders_with_data_and_escapes_hostile_text(client: TestClient) -> None:
    login(client)
    for path in ("/", "/oncall", "/debug?model=fraud", "/debug?model=fraud&window=6h",
                 "/debug?model=fraud&cohort=region:eu&version=v1", "/?key=region"):  # fmt: skip
        page = client.get(path)
        assert page.status_code == 200, (path, page.text[:500])
        for header, value in SECURITY_HEADERS.items():
            assert page.headers[header] == value
        parsed = cells(page.text)
        assert set(parsed.inline_scripts) <= {"application/json"}, path
        assert parsed.style_attributes == 0, path
        for text in HOSTILE:
            assert text not in page.text, (path, text)
        assert SECRET_MODEL not in page.text
        assert "server-timing" in page.headers
    debug = client.get("/debug?model=fraud").text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in debug  # shown, as text
    assert 'class="xb-chart"' in debug and "reliability" in debug


def test_other_tenant_sees_only_its_model(client: TestClient) -> None:
    login(client, OTHER)
    page = client.get("/").text
    assert SECRET_MODEL in page and ">fraud<" not in page
    refused = client.get("/debug?model=fraud")
    assert refused.status_code == 422 and "model" in refused.text
    assert "fraud" in refused.text  # the refusal names the value, nothing of acme's data
    assert "eu" not in cells(refused.text).cells.values()


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("window=99y", "window"),
        ("window=999999999999d", "window"),
        ("model=nope", "model"),
        ("model=fraud&model=other", "model"),
        ("cohort=no-colon", "cohort"),
        ("cohort=" + "x" * 300, "cohort"),
        ("version=" + "%00", "version"),
        ("model=%F0%9F%92%A5", "model"),
    ],
)
def test_bad_filters_answer_422_naming_the_parameter(
    client: TestClient, query: str, words: str
) -> None:
    login(client)
    answer = client.get(f"/debug?{query}")
    assert answer.status_code == 422, (query, answer.text[:300])
    assert words in answer.text
    assert answer.headers["content-security-policy"] == SECURITY_HEADERS["Content-Security-Policy"]


def test_static_files_are_the_packages_and_cached_by_version(client: TestClient) -> None:
    page = client.get("/oncall", headers=bearer(ACME)).text
    scripts = [part.split('"')[0] for part in page.split('<script src="')[1:]]
    assert scripts and all(s.startswith("/static/") and "?v=" in s for s in scripts)
    for src in scripts:
        answer = client.get(src)
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/javascript")
        assert "immutable" in answer.headers["cache-control"]
        again = client.get(src, headers={"If-None-Match": answer.headers["etag"]})
        assert again.status_code == 304
    assert "no-cache" in client.get("/static/dashboard.css?v=old").headers["cache-control"]
    for name in ("../charts.py", "..%2Fcharts.py", "VENDORED.md", "nope.js"):
        assert client.get(f"/static/{name}").status_code == 404, name


def test_without_tokens_everyone_is_the_default_tenant() -> None:
    with TestClient(create_app(EventStore(":memory:"))) as client:
        empty = client.get("/")
        assert empty.status_code == 200 and "No model has sent predictions yet" in empty.text
        assert client.get("/login", follow_redirects=False).headers["location"] == "/"
        predictions, labels = traffic(100)
        client.post("/v1/predictions", json=predictions)
        client.post("/v1/labels", json=labels)
        page = client.get("/oncall")  # read right after the write
        assert number(cells(page.text).cells["1h", "n_labelled"]) == 100
        assert SCRIPT not in page.text and IMG not in page.text


def test_a_token_without_read_scope_gets_no_session() -> None:
    from xebench.service.config import ServiceConfig, TokenEntry, TokenRegistry, hash_token

    tokens = TokenRegistry([TokenEntry("acme", frozenset({"ingest"}), hash_token("ingest-only"))])
    with TestClient(create_app(EventStore(":memory:"), ServiceConfig(tokens=tokens))) as client:
        answer = client.post("/login", data={"token": "ingest-only"}, follow_redirects=False)
        assert answer.status_code == 403 and "read" in answer.text
        assert COOKIE not in answer.headers.get("set-cookie", "")
        client.cookies.set(COOKIE, "forged")
        forged = client.get("/oncall", follow_redirects=False)
        assert forged.status_code == 303  # an unknown session is no session
        big = client.post(
            "/login",
            content=b"token=" + b"x" * 10_000,
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert big.status_code == 413


def test_sessions_expire_and_stay_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    from xebench.service.auth import Principal
    from xebench.service.sessions import Sessions

    sessions = Sessions(ttl=60.0, max_sessions=3)
    who = Principal("acme", frozenset({"read"}))
    ids = [sessions.open(who) for _ in range(5)]
    assert len(sessions) == 3 and sessions.get(ids[0]) is None and sessions.get(ids[-1]) == who
    later = time.monotonic() + 61
    monkeypatch.setattr(time, "monotonic", lambda: later)
    assert sessions.get(ids[-1]) is None


def test_executive_view_ranks_a_configured_crossing() -> None:
    from xebench.store.bucket_schema import MonitorConfig

    crossing = MonitorConfig(cohort_crossings=[["region", "device"]])
    store = EventStore(":memory:", monitor=crossing)
    with TestClient(create_app(store, config(monitor=crossing))) as client:
        predictions, labels = traffic(300)
        for i, event in enumerate(predictions):
            event["cohort"]["device"] = "android" if i % 2 else "ios"
        client.post("/v1/predictions", json=predictions, headers=bearer(ACME))
        client.post("/v1/labels", json=labels, headers=bearer(ACME))
        page = client.get("/?model=fraud", headers=bearer(ACME)).text
        ranked = client.get(
            "/v1/cohorts",
            params={"model": "fraud", "key": "region,device", "window": "7d"},
            headers=bearer(ACME),
        ).json()
    assert 'data-key="region,device"' in page
    values = [row["value"] for row in ranked["cohorts"]][:5]
    assert values and all(value in page for value in values if value.isascii() and "<" not in value)
