"""The web dashboard: ``GET /`` (executive), ``/oncall`` and ``/debug``, the login form and
the static files.

Pages are rendered on the server (:mod:`xebench.report.dashboard`) from the
documents of :mod:`xebench.service.dashboard_data` -- the API's own answers --
and carry no inline script or style: every answer sends a strict
Content-Security-Policy (``script-src 'self'``, nothing from elsewhere), and
the charts are drawn by the package's static ``xebench-charts.js``. Filters
live in the query string, so a URL is shareable. These are pages, not API: they
are left out of the OpenAPI document (``/v1/...`` has every number they show).

Who sees what: with no tokens configured, everyone is the default tenant.
With tokens, a page needs a session (``POST /login`` exchanges a token with
the ``read`` scope for an HttpOnly, SameSite=Strict cookie;
:mod:`xebench.service.sessions`) or an ``Authorization: Bearer`` header; a
browser without either is sent to ``/login``. A page shows the caller's
tenant only.

Example:
    >>> from fastapi.testclient import TestClient
    >>> from xebench.service.app import create_app
    >>> from xebench.store import EventStore
    >>> with TestClient(create_app(EventStore(":memory:"))) as client:
    ...     page = client.get("/")
    >>> page.status_code, "script-src 'self'" in page.headers["content-security-policy"]
    (200, True)
"""

from __future__ import annotations

import hashlib
import time
from functools import lru_cache
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from ...errors import InvalidInputError
from ...report.charts import static_dir
from ...report.dashboard import VIEWS, DashboardPage, render_error, render_login, render_page
from .. import dashboard_data
from ..auth import Principal, principal
from ..sessions import COOKIE
from ..state import ServiceState, State

__all__ = ["SECURITY_HEADERS", "router"]

router = APIRouter()

#: Sent with every page: nothing runs or loads that the server did not serve itself.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
_FILTERS = ("model", "version", "cohort", "window", "key")
_MAX_FILTER = 256
_MAX_FORM = 4096
_MEDIA = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}


@lru_cache(maxsize=1)
def _assets() -> tuple[dict[str, bytes], str]:
    """The static files served (name -> bytes) and their version (a hash of them all):
    asset URLs carry ``?v=VERSION``, so a browser may cache them for good."""
    files = {
        path.name: path.read_bytes()
        for path in sorted(Path(static_dir()).iterdir())
        if path.suffix in _MEDIA
    }
    digest = hashlib.sha256()
    for name, body in files.items():
        digest.update(name.encode() + b"\0" + body)
    return files, digest.hexdigest()[:12]


def _page_response(html: str, status: int = 200, started: float | None = None) -> HTMLResponse:
    headers = dict(SECURITY_HEADERS)
    if started is not None:
        headers["Server-Timing"] = f"render;dur={1000 * (time.perf_counter() - started):.1f}"
    return HTMLResponse(html, status, headers=headers)


def _viewer(request: Request, state: ServiceState) -> tuple[Principal, bool] | None:
    """The caller and whether a session cookie named them; None: send them to log in."""
    if not state.config.tokens.enabled:
        return principal(request, "read"), False
    who = state.sessions.get(request.cookies.get(COOKIE))
    if who is not None:
        if not who.may("read"):
            raise HTTPException(403, "this token lacks the 'read' scope")
        request.state.tenant = who.tenant
        return who, True
    if request.headers.get("authorization"):
        return principal(request, "read"), False  # 401 / 403 as for the API
    return None


class _Refused(Exception):
    """A page refused for its query string (status and message)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _filters(request: Request) -> dict[str, str]:
    """The page's filters from the query string (unknown parameters are ignored: they
    are not the dashboard's); a value too long, or sent twice, is a 422."""
    out = {}
    for name in _FILTERS:
        values = request.query_params.getlist(name)
        if len(values) > 1:
            raise _Refused(422, f"query parameter {name!r} is given {len(values)} times")
        if values and values[0].strip():
            value = values[0].strip()
            if len(value) > _MAX_FILTER:
                raise _Refused(422, f"query parameter {name!r} is longer than {_MAX_FILTER}")
            if not value.isprintable():
                raise _Refused(422, f"query parameter {name!r} holds a control character")
            out[name] = value
    return out


def _view(view: str, request: Request, state: ServiceState) -> Response:
    started = time.perf_counter()
    viewer = _viewer(request, state)
    assets_version = _assets()[1]
    if viewer is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?{_next_query(target)}", 303, headers=SECURITY_HEADERS)
    who, session = viewer
    page = DashboardPage(view, asset_version=assets_version, session=session)
    try:
        page.filters = _filters(request)
        question = dashboard_data.ViewRequest(state, who.tenant, **page.filters)
        data = getattr(dashboard_data, view)(question)
        html = render_page(view, data, page)
    except _Refused as error:
        return _page_response(render_error(str(error), page), error.status)
    except InvalidInputError as error:  # a filter the monitor refuses: it names the parameter
        return _page_response(render_error(str(error), page), 422)
    except HTTPException as error:
        return _page_response(render_error(str(error.detail), page), error.status_code)
    return _page_response(html, started=started)


def _next_query(target: str) -> str:
    return urlencode({"next": target})


def _safe_next(value: str | None) -> str:
    """Where to go after logging in: a dashboard path of this server, never elsewhere."""
    if not value:
        return "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or not parts.path.startswith("/") or value.startswith("//"):
        return "/"
    if parts.path not in {path for path, _title, _what in VIEWS.values()}:
        return "/"
    return parts.path + (f"?{parts.query}" if parts.query else "")


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def executive(request: Request, state: State) -> Response:
    """The executive view: 30-day trends with SLO objectives, budgets, degraded cohorts."""
    return _view("executive", request, state)


@router.get("/oncall", response_class=HTMLResponse, include_in_schema=False)
def oncall(request: Request, state: State) -> Response:
    """The on-call view: 1h / 6h / 24h windows, alerts, labels, canaries, the pipeline."""
    return _view("oncall", request, state)


@router.get("/debug", response_class=HTMLResponse, include_in_schema=False)
def debug(request: Request, state: State) -> Response:
    """The debug view: reliability, prediction histogram, drift, worst events, versions."""
    return _view("debug", request, state)


@router.get("/login", response_class=HTMLResponse, include_in_schema=False)
def login_form(request: Request, state: State) -> Response:
    """The login form (only with tokens configured; otherwise straight to the dashboard)."""
    target = _safe_next(request.query_params.get("next"))
    if not state.config.tokens.enabled:
        return RedirectResponse(target, 303, headers=SECURITY_HEADERS)
    return _page_response(render_login(next_path=target, asset_version=_assets()[1]))


@router.post("/login", response_class=HTMLResponse, include_in_schema=False)
async def login(request: Request, state: State) -> Response:
    """Exchange a token (form field ``token``) for a session cookie; 401 with the form
    again for a wrong one."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/x-www-form-urlencoded":
        raise HTTPException(415, "send the login form as application/x-www-form-urlencoded")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > _MAX_FORM:
            raise HTTPException(413, f"a login form is at most {_MAX_FORM} bytes")
    try:
        form = parse_qs(body.decode("utf-8"), max_num_fields=4, strict_parsing=False)
    except (UnicodeDecodeError, ValueError):
        raise HTTPException(422, "the login form is not valid UTF-8 form data") from None
    target = _safe_next((form.get("next") or ["/"])[0])
    version = _assets()[1]
    if not state.config.tokens.enabled:
        return RedirectResponse(target, 303, headers=SECURITY_HEADERS)
    token = (form.get("token") or [""])[0].strip()
    entry = state.config.tokens.authenticate(token) if token else None
    if entry is None:
        html = render_login(error="invalid token", next_path=target, asset_version=version)
        return _page_response(html, 401)
    if "read" not in entry.scopes:
        html = render_login(
            error="this token lacks the 'read' scope", next_path=target, asset_version=version
        )
        return _page_response(html, 403)
    sid = state.sessions.open(Principal(entry.tenant, entry.scopes))
    response = RedirectResponse(target, 303, headers=SECURITY_HEADERS)
    response.set_cookie(
        COOKIE,
        sid,
        max_age=int(state.sessions.ttl),
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )
    return response


@router.post("/logout", include_in_schema=False)
def logout(request: Request, state: State) -> Response:
    """End the session and forget its cookie."""
    state.sessions.close(request.cookies.get(COOKIE))
    target = "/login" if state.config.tokens.enabled else "/"
    response = RedirectResponse(target, 303, headers=SECURITY_HEADERS)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return response


@router.get("/static/{name}", include_in_schema=False)
def static(name: str, request: Request) -> Response:
    """The dashboard's scripts and stylesheet, from the package (nothing from elsewhere);
    cached for good when asked for with the current ``?v=``."""
    files, version = _assets()
    body = files.get(name)
    if body is None:
        raise HTTPException(404, f"no static file {name!r}")
    fresh = request.query_params.get("v") == version
    headers = {
        "Cache-Control": "public, max-age=31536000, immutable" if fresh else "no-cache",
        "ETag": f'"{version}"',
        "X-Content-Type-Options": "nosniff",
    }
    if request.headers.get("if-none-match") == headers["ETag"]:
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=_MEDIA[Path(name).suffix], headers=headers)
