"""schemathesis against the app, every check on, the OpenAPI document as served (issue 13).

Each operation gets a bounded budget (``MAX_EXAMPLES`` generated cases) so the test runs
in CI. The app has a token configured, so the ``ignored_auth`` check has something to
check: every case is sent with the token, and the check sends it again without.

One setting differs from the defaults, and why: ``positive_data_acceptance`` also
expects 422. JSON Schema cannot state a probability vector's sum, a timestamp's
distance from the server clock, the classes a model already knows or a window's
range, so schema-valid data can still break a rule; the 422 names the field, which
the other checks (status codes, bodies, headers as documented) hold it to.
"""

from __future__ import annotations

import pytest

schemathesis = pytest.importorskip("schemathesis")

import json  # noqa: E402
import os  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from typing import Any  # noqa: E402

from fastapi.testclient import TestClient  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis.config import SchemathesisConfig  # noqa: E402
from schemathesis.python.asgi import shutdown_lifespans  # noqa: E402

from xebench.ingest.body import NDJSON_TYPES  # noqa: E402
from xebench.service.app import create_app  # noqa: E402
from xebench.service.config import ServiceConfig, TokenEntry, TokenRegistry, hash_token  # noqa: E402
from xebench.store.event_store import EventStore  # noqa: E402

TOKEN = "fuzz-0123456789abcdef"
MAX_EXAMPLES = int(os.environ.get("XEBENCH_FUZZ_EXAMPLES", "30"))

CONFIG = SchemathesisConfig.from_dict(
    {
        "checks": {
            "enabled": True,  # every check (the CLI's --checks all)
            "positive_data_acceptance": {
                "expected-statuses": ["2xx", "401", "403", "404", "409", "422", "429"]
            },
        },
        "generation": {"max-examples": MAX_EXAMPLES},
    }
)


def _app():
    tokens = TokenRegistry([TokenEntry("acme", frozenset({"ingest", "read"}), hash_token(TOKEN))])
    return create_app(EventStore(":memory:"), ServiceConfig(tokens=tokens))


class _OwnLifespan:
    """The app, its lifespan left to the test: schemathesis starts and stops lifespans per
    client, and the writer thread must run for the whole module."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return
        while True:
            message = await receive()
            done = message["type"] + ".complete"
            await send({"type": done})
            if message["type"] == "lifespan.shutdown":
                return


@schemathesis.serializer(*sorted(NDJSON_TYPES))
def _ndjson(ctx: Any, value: Any) -> bytes:
    """An NDJSON body of the one generated event (the schema of such a body is one line)."""
    return json.dumps(value, allow_nan=True).encode() + b"\n"


# A reference upload's body is a file: Parquet is bytes like any other binary type.
schemathesis.serializer.alias(
    ["application/vnd.apache.parquet", "application/x-parquet"], "application/octet-stream"
)


APP = _app()
schema = schemathesis.openapi.from_asgi("/openapi.json", _OwnLifespan(APP), config=CONFIG)


@pytest.fixture(scope="module", autouse=True)
def _running_app() -> Iterator[None]:
    with TestClient(APP):  # runs the lifespan: the writer thread starts and stops here
        yield
    shutdown_lifespans()


@pytest.mark.slow
@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_the_app_conforms_to_its_openapi_document(case) -> None:
    case.call_and_validate(headers={"Authorization": f"Bearer {TOKEN}"})
