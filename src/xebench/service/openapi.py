"""The OpenAPI document's shapes: the event bodies, the answers and the error bodies of
every status code a route can give, so that ``/openapi.json`` says what the service does.

Each route declares its error statuses with :func:`responses`; the bodies are
the models here, which are what the handlers in :mod:`xebench.service.app`
really send (``{"detail", "errors"}`` for every 4xx, ``{"detail",
"conflicts"}`` for a 409 of events). :func:`event_body` is the request body of
``POST /v1/predictions`` and ``/v1/labels``: a JSON array of events or one
event, or NDJSON, each event described inline (no dangling ``$ref``).

Example:
    >>> sorted(responses(401, 429))
    [401, 429]
    >>> responses(429)[429]["headers"]["Retry-After"]["schema"]
    {'type': 'integer', 'minimum': 1}
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from ..ingest.body import JSON_TYPES, NDJSON_TYPES

__all__ = [
    "ConflictBody",
    "ConflictEntry",
    "ErrorBody",
    "ErrorEntry",
    "IngestAnswer",
    "ReadyBody",
    "event_body",
    "responses",
]


class ErrorEntry(BaseModel):
    """One problem of a refused request: the field (a JSON pointer: ``/3/probabilities``
    in a batch, ``/query/window`` for a query parameter) and why; ``index`` is the
    event's position in its batch.

    Example:
        >>> ErrorEntry(field="/query/window", message="window: must be a duration").index is None
        True
    """

    model_config = ConfigDict(extra="allow")

    index: int | None = None
    field: str
    message: str


class ErrorBody(BaseModel):
    """The body of every 4xx and 5xx: ``detail``, and ``errors`` when fields are at fault.

    Example:
        >>> ErrorBody(detail="no model 'fraud'").errors is None
        True
    """

    model_config = ConfigDict(extra="allow")

    detail: str
    errors: list[ErrorEntry] | None = None


class ConflictEntry(BaseModel):
    """An event refused with 409: its index and field (``/i/request_id``: stored with
    another payload; ``/i/classes``: another class list than its model version's,
    with both lists).

    Example:
        >>> ConflictEntry(index=0, field="/0/request_id", model="m", request_id="r",
        ...               message="already stored with a different payload").classes is None
        True
    """

    index: int
    field: str
    model: str
    request_id: str
    message: str
    stored_classes: list[str] | None = None
    classes: list[str] | None = None


class ConflictBody(BaseModel):
    """The body of a 409 of ``POST /v1/predictions`` and ``/v1/labels``.

    Example:
        >>> ConflictBody(detail="1 event(s) ...", conflicts=[]).conflicts
        []
    """

    detail: str
    conflicts: list[ConflictEntry]


class IngestAnswer(BaseModel):
    """A committed batch: events accepted, newly stored and duplicates (labels: joined
    to their prediction, or pending).

    Example:
        >>> IngestAnswer(accepted=2, inserted=1, duplicates=1).joined is None
        True
    """

    accepted: int
    inserted: int
    duplicates: int
    joined: int | None = None
    pending: int | None = None
    corrected: int | None = None


class ReadyBody(BaseModel):
    """``GET /readyz``: ``ready`` (200) or ``unready`` (503) and why.

    Example:
        >>> ReadyBody(status="ready", problems=[], queued_events=0).status
        'ready'
    """

    status: str
    problems: list[str]
    queued_events: int


_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before sending the request again.",
        "schema": {"type": "integer", "minimum": 1},
    }
}


_WHY: dict[int, str] = {
    400: "The body is not JSON (or not valid UTF-8, nests deeper than 200, is corrupt gzip).",
    401: "Tokens are configured and the request has no valid bearer token.",
    403: "The token lacks the scope the route needs (ingest or read).",
    404: "The tenant has no such model (another tenant's model is a 404 too), or no such "
    "uploaded reference.",
    409: "An event reuses a stored (model, request_id) with another payload, or carries "
    "another class list than its model version's; nothing of the batch was stored.",
    413: "The body is over the limit after decompression, or has too many events.",
    415: "The content type or content encoding is not one the route takes.",
    422: "An event or a query parameter breaks a rule: one entry per bad event (its index "
    "and JSON pointer) or per parameter (/query/NAME); nothing was stored.",
    429: "The write queue is full: retry after Retry-After seconds.",
    503: "The store failed and is being reopened: retry after Retry-After seconds.",
}


def responses(*codes: int, conflict: type[BaseModel] = ConflictBody) -> dict[int | str, Any]:
    """The ``responses=`` of a route for these error status codes, with their bodies
    (:class:`ErrorBody`; ``conflict`` for 409) and headers (``Retry-After`` for 429 and
    503, ``WWW-Authenticate`` for 401).

    Example:
        >>> responses(409, conflict=ErrorBody)[409]["model"].__name__
        'ErrorBody'
    """
    out: dict[int | str, Any] = {}
    for code in codes:
        entry: dict[str, Any] = {
            "description": _WHY[code],
            "model": conflict if code == 409 else ErrorBody,
        }
        if code in (429, 503):
            entry["headers"] = _RETRY_AFTER
        if code == 401:
            entry["headers"] = {
                "WWW-Authenticate": {"description": "Bearer", "schema": {"type": "string"}}
            }
        out[code] = entry
    return out


def event_body(model: type[BaseModel], max_events: int = 10_000) -> dict[str, Any]:
    """The ``openapi_extra`` of an ingest route: its request body, a JSON array of
    ``model`` events (or one event) or NDJSON (one event per line), gzip allowed.

    Example:
        >>> from xebench.ingest.fields import LabelEvent
        >>> body = event_body(LabelEvent, 10)["requestBody"]["content"]["application/json"]
        >>> [s.get("type") for s in body["schema"]["oneOf"]]
        ['array', 'object']
    """
    item = model.model_json_schema()
    assert "$defs" not in item, "event models are flat: their schema needs no components"
    # The event limit is a size limit (413, like the byte limit), not a rule of the data.
    batch = {
        "type": "array",
        "items": item,
        "minItems": 1,
        "description": f"At most {max_events} events (by default; more is a 413).",
    }
    content: dict[str, Any] = {
        media: {"schema": {"oneOf": [batch, item]}} for media in sorted(JSON_TYPES)
    }
    content.update({media: {"schema": item} for media in sorted(NDJSON_TYPES)})
    return {"requestBody": {"required": True, "content": content}}
