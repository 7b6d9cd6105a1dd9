"""The ingest lane (xebench.service.lane) answers exactly as the FastAPI routes would.

The same scripted requests -- good, bad, unauthenticated, oversized, conflicting,
compressed, on neighbouring paths and methods -- go to an app with the lane and to
one without it (the routes then answer). Status, headers (but the date) and bodies
must be byte-identical, and the access log must still see every request.
"""

from __future__ import annotations

import gzip
import json
import logging
from typing import Any

import pytest
from fastapi.testclient import TestClient

from xebench.ingest.policy import Limits
from xebench.service.app import create_app
from xebench.service.config import ServiceConfig, TokenEntry, TokenRegistry, hash_token
from xebench.service.lane import IngestLane
from xebench.store import EventStore

INGEST, READ = "ingest-token", "read-token"


def _config() -> ServiceConfig:
    tokens = TokenRegistry(
        [
            TokenEntry("acme", frozenset({"ingest", "read"}), hash_token(INGEST)),
            TokenEntry("acme", frozenset({"read"}), hash_token(READ)),
        ]
    )
    return ServiceConfig(
        tokens=tokens, limits=Limits(max_body_bytes=64 * 1024), validation_processes=0
    )


def _app(lane: bool) -> Any:
    app = create_app(EventStore(":memory:"), _config())
    if not lane:  # the middleware stack is built at the first request: drop the lane
        app.user_middleware = [m for m in app.user_middleware if m.cls is not IngestLane]
    return app


def _events(n: int, start: int = 0, **extra: Any) -> list[dict[str, Any]]:
    return [
        {"request_id": f"r{start + i}", "model": "fraud", "probabilities": 0.25, **extra}
        for i in range(n)
    ]


def _script() -> list[tuple[str, str, dict[str, str], bytes]]:
    """(method, path, headers, body) of every request, in order."""
    auth = {"authorization": f"Bearer {INGEST}"}
    as_json = {**auth, "content-type": "application/json"}
    big = json.dumps(_events(300, start=5000)).encode()  # over the 16 KB done inline
    conflict = _events(1)
    conflict[0]["probabilities"] = 0.75
    bad = _events(3, start=100)
    bad[1]["probabilities"] = "high"
    del bad[2]["model"]
    return [
        ("POST", "/v1/predictions", as_json, json.dumps(_events(5)).encode()),
        ("POST", "/v1/predictions", as_json, json.dumps(_events(5)).encode()),  # duplicates
        ("POST", "/v1/predictions", as_json, json.dumps(conflict).encode()),  # 409
        ("POST", "/v1/predictions", as_json, big),
        ("POST", "/v1/predictions", as_json, json.dumps(bad).encode()),  # 422
        ("POST", "/v1/predictions", as_json, b"[{"),  # 400
        ("POST", "/v1/predictions", as_json, b"[]"),  # 422: no event
        ("POST", "/v1/predictions", {**auth, "content-type": "text/plain"}, b"[]"),  # 415
        ("POST", "/v1/predictions", as_json, b" " * (65 * 1024)),  # 413
        (
            "POST",
            "/v1/predictions",
            {**as_json, "content-encoding": "gzip"},
            gzip.compress(json.dumps(_events(4, start=200)).encode()),
        ),
        ("POST", "/v1/predictions", {**as_json, "content-encoding": "br"}, b"[]"),  # 415
        ("POST", "/v1/predictions", {"content-type": "application/json"}, b"[]"),  # 401
        ("POST", "/v1/predictions", {**as_json, "authorization": "Bearer nope"}, b"[]"),
        ("POST", "/v1/predictions", {**as_json, "authorization": f"Bearer {READ}"}, b"[]"),
        (
            "POST",
            "/v1/labels",
            {**auth, "content-type": "application/x-ndjson"},
            b'{"request_id": "r1", "label": 1}\n{"request_id": "r999", "label": 0}\n',
        ),
        ("POST", "/v1/labels", as_json, json.dumps([{"request_id": "r1", "label": 0}]).encode()),
        ("POST", "/v1/labels", as_json, json.dumps([{"request_id": "r2"}]).encode()),
        ("GET", "/v1/predictions", auth, b""),  # 405 with Allow
        ("POST", "/v1/predictions/", as_json, b"[]"),  # not the lane's path
        ("POST", "/v1/prediction", as_json, b"[]"),  # 404
        ("GET", "/v1/metrics?model=fraud&window=1h", auth, b""),
    ]


def _answers(lane: bool) -> list[tuple[int, list[tuple[str, str]], bytes]]:
    answers = []
    with TestClient(_app(lane), follow_redirects=False) as client:
        for method, path, headers, body in _script():
            answer = client.request(method, path, headers=headers, content=body)
            kept = sorted((k, v) for k, v in answer.headers.items() if k != "date")
            answers.append((answer.status_code, kept, answer.content))
    return answers


def test_the_lane_answers_every_request_as_the_routes_do() -> None:
    with_lane, routes_only = _answers(True), _answers(False)
    for step, (mine, theirs) in enumerate(zip(with_lane, routes_only, strict=True)):
        assert mine == theirs, f"request {step}: {_script()[step][:2]}"
    statuses = [status for status, _, _ in with_lane]
    # The script covers what it says (so that the comparison means something).
    assert statuses == [200, 200, 409, 200, 422, 400, 422, 415, 413, 200, 415, 401, 401,
                        403, 200, 409, 422, 405, 307, 404, 200]  # fmt: skip
    metrics = json.loads(with_lane[20][2])
    assert metrics["n_predictions"] == 5 + 300 + 4


def test_the_access_log_sees_lane_requests(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="xebench.access"), TestClient(_app(True)) as client:
        answer = client.post(
            "/v1/predictions", json=_events(3), headers={"authorization": f"Bearer {INGEST}"}
        )
    assert answer.status_code == 200
    (record,) = [r for r in caplog.records if getattr(r, "path", None) == "/v1/predictions"]
    assert (record.status, record.tenant, record.events) == (200, "acme", 3)


def test_a_handler_bug_in_the_lane_is_one_logged_500(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import xebench.service.lane as lane

    async def broken(request: Any, kind: str) -> Any:
        raise KeyError("boom")

    monkeypatch.setattr(lane, "ingest", broken)
    with TestClient(_app(True), raise_server_exceptions=False) as client:
        answer = client.post(
            "/v1/predictions", json=_events(1), headers={"authorization": f"Bearer {INGEST}"}
        )
        assert answer.status_code == 500
        assert "incident" in answer.json()["detail"]
        assert client.get("/healthz").status_code == 200  # the app still answers
    assert [r for r in caplog.records if r.getMessage() == "unhandled error"]
