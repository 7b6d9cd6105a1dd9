"""Dashboard sessions: a login form exchanges a token for an HttpOnly session cookie.

A browser cannot send ``Authorization: Bearer`` on a link it follows, so the
dashboard's login form (``POST /login``) checks a token once and answers with
a cookie naming a session: a random 256-bit id that maps, in this process's
memory, to the token's tenant and scopes. The token itself never reaches the
cookie, so a stolen cookie is worth one session of one process: sessions
expire after ``ttl`` seconds, end at logout, and all end when the server
restarts (the user logs in again). The cookie is ``HttpOnly`` (no script can
read it), ``SameSite=Strict`` (no other site's page can send it: no CSRF on the
forms) and ``Secure`` when the request came over HTTPS.

The table is bounded: past ``max_sessions`` the oldest session goes first.

Example:
    >>> from xebench.service.auth import Principal
    >>> sessions = Sessions(ttl=60.0)
    >>> sid = sessions.open(Principal("acme", frozenset({"read"})))
    >>> sessions.get(sid).tenant, sessions.get("forged") is None
    ('acme', True)
    >>> sessions.close(sid); sessions.get(sid) is None
    True
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict

from .auth import Principal

__all__ = ["COOKIE", "Sessions"]

#: The session cookie's name.
COOKIE = "xebench_session"


class Sessions:
    """Session id -> :class:`~xebench.service.auth.Principal`, bounded and expiring;
    thread-safe.

    Args:
        ttl: seconds a session lives after it was opened.
        max_sessions: sessions kept at most (the oldest is dropped first).
    """

    def __init__(self, ttl: float = 12 * 3600.0, max_sessions: int = 10_000) -> None:
        self.ttl = ttl
        self.max_sessions = max_sessions
        self._lock = threading.Lock()
        self._table: OrderedDict[str, tuple[Principal, float]] = OrderedDict()

    def open(self, who: Principal) -> str:
        """A new session of ``who``; its id (the cookie's value)."""
        sid = secrets.token_urlsafe(32)
        with self._lock:
            self._table[sid] = (who, time.monotonic() + self.ttl)
            while len(self._table) > self.max_sessions:
                self._table.popitem(last=False)
        return sid

    def get(self, sid: str | None) -> Principal | None:
        """The principal of session ``sid``; None when unknown or expired."""
        if not sid:
            return None
        with self._lock:
            entry = self._table.get(sid)
            if entry is None:
                return None
            if entry[1] < time.monotonic():
                del self._table[sid]
                return None
            return entry[0]

    def close(self, sid: str | None) -> None:
        """End session ``sid`` (nothing when unknown)."""
        with self._lock:
            self._table.pop(sid or "", None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._table)
