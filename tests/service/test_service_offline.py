"""The service serves nothing that loads from another host.

FastAPI's default ``/docs`` (Swagger UI) and ``/redoc`` pages load their
scripts from a CDN, which fails on an offline machine and leaks requests: the
service turns them off and keeps the machine-readable ``/openapi.json``.
"""

from __future__ import annotations

from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from starlette.routing import Route

from html_checks import external_references
from xebench.service.app import create_app
from xebench.store.event_store import EventStore


def test_no_page_the_service_serves_references_another_host(store: EventStore) -> None:
    app = create_app(store)
    paths = sorted(
        route.path
        for route in app.routes
        if isinstance(route, (APIRoute, Route))
        and "GET" in (route.methods or set())
        and "{" not in route.path  # every route without parameters
    )
    assert "/openapi.json" in paths and "/docs" not in paths and "/redoc" not in paths
    with TestClient(app, raise_server_exceptions=False) as client:
        for path in [*paths, "/docs", "/redoc", "/docs/oauth2-redirect"]:
            response = client.get(path)
            if "html" in response.headers.get("content-type", ""):
                assert external_references(response.text) == [], path
            assert "cdn.jsdelivr" not in response.text and "unpkg.com" not in response.text, path
        assert client.get("/docs").status_code == 404
        assert client.get("/redoc").status_code == 404
        assert client.get("/openapi.json").json()["info"]["title"] == "xebench"
