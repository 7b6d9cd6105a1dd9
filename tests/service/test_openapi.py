"""The OpenAPI document says what the service does (issue 13): every ``$ref`` resolves, the
event bodies are described inline, every error status a route can give is declared with
the body the service really sends, and 429 / 503 carry ``Retry-After``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from xebench.service.app import create_app
from xebench.store.event_store import EventStore


@pytest.fixture(scope="module")
def spec() -> Iterator[dict[str, Any]]:
    with TestClient(create_app(EventStore(":memory:"))) as client:
        yield client.get("/openapi.json").json()


def refs(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "$ref":
                yield item
            else:
                yield from refs(item)
    elif isinstance(value, list):
        for item in value:
            yield from refs(item)


def test_every_reference_resolves(spec: dict[str, Any]) -> None:
    found = set(refs(spec))
    assert found  # the error bodies are components
    for ref in found:
        node: Any = spec
        for part in ref.removeprefix("#/").split("/"):
            node = node[part]
        assert isinstance(node, dict), ref


def test_fastapis_validation_error_shape_is_not_claimed(spec: dict[str, Any]) -> None:
    # The service answers 422 with its own {"detail", "errors": [{"field", "message"}]}.
    assert "HTTPValidationError" not in json.dumps(spec)
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            answer = operation["responses"].get("422")
            if answer is not None:
                schema = answer["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/ErrorBody"}, (method, path)
    entry = spec["components"]["schemas"]["ErrorEntry"]
    assert {"field", "message"} <= set(entry["required"])


ERRORS = {
    ("post", "/v1/predictions"): {"400", "401", "403", "409", "413", "415", "422", "429", "503"},
    ("post", "/v1/labels"): {"400", "401", "403", "409", "413", "415", "422", "429", "503"},
    ("get", "/v1/metrics"): {"401", "403", "404", "422"},
    ("get", "/v1/drift"): {"401", "403", "404", "422"},
    ("get", "/v1/compare"): {"401", "403", "404", "422"},
    ("get", "/v1/cohorts"): {"401", "403", "404", "422"},
    ("get", "/v1/reliability"): {"401", "403", "404", "422"},
    ("get", "/v1/events"): {"401", "403", "404", "422"},
    ("get", "/v1/models"): {"401", "403"},
    ("get", "/v1/models/{model}"): {"401", "403", "404", "422"},
    ("put", "/v1/references/{model}"): {"401", "403", "404", "409", "413", "415", "422", "503"},
    ("get", "/readyz"): {"503"},
}


@pytest.mark.parametrize(("method", "path"), sorted(ERRORS))
def test_each_route_declares_its_error_statuses(
    spec: dict[str, Any], method: str, path: str
) -> None:
    responses = spec["paths"][path][method]["responses"]
    assert ERRORS[method, path] <= set(responses)
    for status in ("429", "503"):
        if status in responses and path != "/readyz":
            assert responses[status]["headers"]["Retry-After"]["schema"]["type"] == "integer"
    if "401" in responses:
        assert "WWW-Authenticate" in responses["401"]["headers"]
    if "409" in responses and method == "post":
        schema = responses["409"]["content"]["application/json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/ConflictBody"}


def test_the_event_bodies_are_inline_and_name_their_fields(spec: dict[str, Any]) -> None:
    for path, fields in (
        ("/v1/predictions", {"request_id", "model", "probabilities", "classes", "cohort"}),
        ("/v1/labels", {"request_id", "label", "model", "timestamp"}),
    ):
        content = spec["paths"][path]["post"]["requestBody"]["content"]
        batch, one = content["application/json"]["schema"]["oneOf"]
        assert batch["type"] == "array" and batch["items"] == one
        assert fields <= set(one["properties"])
        assert content["application/x-ndjson"]["schema"] == one
        assert "$ref" not in json.dumps(content)
    prediction = spec["paths"]["/v1/predictions"]["post"]["requestBody"]["content"]
    probabilities = prediction["application/json"]["schema"]["oneOf"][1]["properties"][
        "probabilities"
    ]
    assert [kind["type"] for kind in probabilities["oneOf"]] == ["number", "array", "object"]


def test_the_bearer_scheme_is_declared(spec: dict[str, Any]) -> None:
    schemes = spec["components"]["securitySchemes"]
    assert [s["scheme"] for s in schemes.values()] == ["bearer"]
    assert spec["paths"]["/v1/metrics"]["get"]["security"]
    assert "security" not in spec["paths"]["/healthz"]["get"]


def test_the_answers_match_the_declared_shapes(spec: dict[str, Any]) -> None:
    # The bodies the handlers really send, checked against the declared component.
    with TestClient(create_app(EventStore(":memory:")), raise_server_exceptions=False) as client:
        bad = client.get("/v1/metrics?model=m&window=99999999d")
        missing = client.get("/v1/models/nope")
        invalid = client.post(
            "/v1/predictions", content=b"[{}]", headers={"content-type": "application/json"}
        )
    schema = spec["components"]["schemas"]["ErrorBody"]
    for response in (bad, missing, invalid):
        body = response.json()
        assert set(schema["required"]) <= set(body)
        assert all({"field", "message"} <= set(e) for e in body.get("errors") or [])


def test_the_dashboard_reads_declare_their_answers(spec: dict[str, Any]) -> None:
    for path, model in (
        ("/v1/cohorts", "CohortsAnswer"),
        ("/v1/reliability", "ReliabilityAnswer"),
        ("/v1/events", "EventsAnswer"),
    ):
        ok = spec["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]
        assert ok["schema"] == {"$ref": f"#/components/schemas/{model}"}
        assert {"from", "to", "model"} <= set(spec["components"]["schemas"][model]["required"])
