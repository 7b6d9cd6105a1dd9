"""Who is calling: a bearer token names a tenant and what it may do.

With no tokens configured every caller is the :data:`DEFAULT_TENANT` with
every scope; with tokens, each ``/v1`` route needs ``Authorization: Bearer
TOKEN`` (401 without a valid one) whose entry holds the route's scope (403
otherwise). Routers take the caller as a parameter: ``who: Ingester`` or
``who: Reader``.

Example:
    >>> from fastapi import FastAPI
    >>> from fastapi.testclient import TestClient
    >>> from xebench.service.config import ServiceConfig
    >>> app = FastAPI()
    >>> app.state.config = ServiceConfig()
    >>> @app.get("/whoami")
    ... def whoami(who: Reader) -> dict:
    ...     return {"tenant": who.tenant}
    >>> TestClient(app).get("/whoami").json()
    {'tenant': 'default'}
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from .config import TokenEntry

__all__ = ["DEFAULT_TENANT", "Ingester", "Principal", "Reader", "principal"]

#: The tenant of every event when no tokens are configured.
DEFAULT_TENANT = "default"


@dataclass(frozen=True)
class Principal:
    """Who is calling: a tenant and what it may do.

    Example:
        >>> Principal("acme", frozenset({"read"})).may("ingest")
        False
    """

    tenant: str
    scopes: frozenset[str]

    def may(self, scope: str) -> bool:
        """Whether this caller holds ``scope``.

        Example:
            >>> Principal("acme", frozenset({"read"})).may("read")
            True
        """
        return scope in self.scopes


def principal(request: Request, scope: str) -> Principal:
    """The caller of ``request``, who must hold ``scope`` (401 / 403 otherwise).

    The tenant is also kept on ``request.state`` for the access log.

    Example:
        >>> from types import SimpleNamespace
        >>> from xebench.service.config import ServiceConfig
        >>> app = SimpleNamespace(state=SimpleNamespace(config=ServiceConfig()))
        >>> request = Request({"type": "http", "app": app, "headers": []})
        >>> who = principal(request, "ingest")
        >>> who.tenant, sorted(who.scopes), request.state.tenant
        ('default', ['ingest', 'read'], 'default')
    """
    tokens = request.app.state.config.tokens
    if not tokens.enabled:
        who = Principal(DEFAULT_TENANT, frozenset({"ingest", "read"}))
    else:
        kind, _, token = request.headers.get("authorization", "").partition(" ")
        if kind.lower() != "bearer" or not token.strip():
            raise HTTPException(
                401,
                "missing bearer token: send Authorization: Bearer TOKEN",
                {"WWW-Authenticate": "Bearer"},
            )
        entry: TokenEntry | None = tokens.authenticate(token.strip())
        if entry is None:
            raise HTTPException(401, "invalid token", {"WWW-Authenticate": "Bearer"})
        who = Principal(entry.tenant, entry.scopes)
    if not who.may(scope):
        raise HTTPException(403, f"this token lacks the {scope!r} scope")
    request.state.tenant = who.tenant
    return who


# Declares the bearer scheme in the OpenAPI document; principal() reads the header itself
# (auto_error=False: this never answers on its own, so a missing token stays our 401).
_BEARER = HTTPBearer(
    auto_error=False,
    description="A token of `xebench token create`, needed once tokens are configured.",
)
_Credentials = Annotated[HTTPAuthorizationCredentials | None, Security(_BEARER)]


# Coroutines, not functions: FastAPI runs a plain dependency in a worker thread, a hop
# (and a wait for the GIL) per request for a check of a few microseconds.
async def _ingester(request: Request, _: _Credentials) -> Principal:
    return principal(request, "ingest")


async def _reader(request: Request, _: _Credentials) -> Principal:
    return principal(request, "read")


#: A route parameter: the caller, who may send events.
Ingester = Annotated[Principal, Depends(_ingester)]
#: A route parameter: the caller, who may read.
Reader = Annotated[Principal, Depends(_reader)]
