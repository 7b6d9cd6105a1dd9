"""The ``alerting:`` section of the service YAML: where alerts go, when they fire, when not.

::

    alerting:
      webhooks:                         # Alertmanager-style webhook JSON (version "4")
        - url: https://hooks.example/xebench
          name: oncall                  # optional; default: webhook-<hash of the url>
          severities: [page]            # optional; default: [page, ticket]
          headers: {Authorization: "Bearer ..."}
      alertmanager:                     # optional: POST {url}/api/v2/alerts
        url: http://127.0.0.1:9093
        resend_interval: 1m             # firing alerts re-posted this often (endsAt: 4x)
      maintenance:
        - {from: "2026-11-25T10:00:00Z", to: "2026-11-25T12:00:00Z", models: [fraud],
           reason: "feature store migration"}
      pending_for: 2m                   # must hold this long before it fires (default 0)
      repeat_interval: 4h               # re-notify a firing alert this often
      resolve_notify: true              # notify when it stops holding
      max_age: 24h                      # undelivered after this: dead-lettered, kept
      allow_private: [10.20.0.0/16, relay.internal]
      timeout: 5                        # seconds per request
      external_url: https://xebench.example   # optional: generatorURL, externalURL

Every error is a :class:`~xebench.errors.ConfigError` whose message starts with
the key path (``alerting.webhooks[1].url: ...``).

Example:
    >>> s = AlertingSettings.from_mapping({"webhooks": [{"url": "http://127.0.0.1:9000/h"}],
    ...                                    "pending_for": "2m"})
    >>> s.pending_for, s.repeat_interval, [sorted(t.severities) for t in s.targets]
    (datetime.timedelta(seconds=120), datetime.timedelta(seconds=14400), [['page', 'ticket']])
    >>> AlertingSettings.from_mapping({"webhooks": [{"url": "http://10.0.0.8/h"}]})
    Traceback (most recent call last):
    ...
    xebench.errors.ConfigError: alerting.webhooks[0].url: 10.0.0.8 is a private address; \
list it (or its network) in alerting.allow_private to allow it
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from ..errors import ConfigError, InvalidInputError
from ..monitor.scope import parse_duration, parse_time
from .addresses import AddressGuard, Resolver

__all__ = ["SEVERITIES", "AlertingSettings", "MaintenanceWindow", "Target"]

#: The severities of burn-rate alerts (xebench.analysis.slo.BurnAlert).
SEVERITIES = frozenset({"page", "ticket"})
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
_ZERO = re.compile(r"\s*0+(\.0*)?\s*[smhdw]?\s*")  # pending_for may be 0 (fire at once)
_HEADER = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # an RFC 9110 token
# Headers a target may not set: the delivery owns them.
_OWN_HEADERS = {"content-type", "content-length", "host", "idempotency-key"}


@dataclass(frozen=True)
class Target:
    """Where notifications go: a webhook (``kind="webhook"``) or an Alertmanager.

    Example:
        >>> t = Target("oncall", "webhook", "http://127.0.0.1:9/h", frozenset({"page"}))
        >>> t.receives("page"), t.receives("ticket")
        (True, False)
    """

    name: str
    kind: str  # "webhook" | "alertmanager"
    url: str
    severities: frozenset[str] = SEVERITIES
    headers: Mapping[str, str] = field(default_factory=dict)
    #: Alertmanager only: how often a firing alert is posted again (endsAt is 4x ahead).
    resend_interval: timedelta = timedelta(minutes=1)

    def receives(self, severity: str) -> bool:
        """Whether alerts of ``severity`` are routed to this target."""
        return severity in self.severities

    @property
    def endpoint(self) -> str:
        """The URL requests go to (``/api/v2/alerts`` under an Alertmanager's URL)."""
        if self.kind == "alertmanager":
            return self.url.rstrip("/") + "/api/v2/alerts"
        return self.url


@dataclass(frozen=True)
class MaintenanceWindow:
    """``[start, end)``: alerts of the listed models / SLOs / tenants (none listed: all)
    are suppressed.

    Example:
        >>> from datetime import UTC
        >>> w = MaintenanceWindow(datetime(2026, 1, 1, tzinfo=UTC),
        ...                       datetime(2026, 1, 1, 2, tzinfo=UTC), models=frozenset({"fraud"}))
        >>> w.covers("default", "fraud", "fraud-ll", datetime(2026, 1, 1, 1, tzinfo=UTC))
        True
        >>> w.covers("default", "churn", "churn-ll", datetime(2026, 1, 1, 1, tzinfo=UTC))
        False
    """

    start: datetime
    end: datetime
    models: frozenset[str] = frozenset()
    slos: frozenset[str] = frozenset()
    tenants: frozenset[str] = frozenset()
    reason: str = ""

    def covers(self, tenant: str, model: str, slo: str, at: datetime) -> bool:
        """Whether the window suppresses ``slo`` (of ``model``, ``tenant``) at ``at``."""
        return (
            self.start <= at < self.end
            and (not self.models or model in self.models)
            and (not self.slos or slo in self.slos)
            and (not self.tenants or tenant in self.tenants)
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (times in RFC 3339, UTC)."""
        return {
            "from": self.start.isoformat().replace("+00:00", "Z"),
            "to": self.end.isoformat().replace("+00:00", "Z"),
            "models": sorted(self.models),
            "slos": sorted(self.slos),
            "tenants": sorted(self.tenants),
            "reason": self.reason,
        }


@dataclass(frozen=True)
class AlertingSettings:
    """What the ``alerting:`` section configures; see the module docstring.

    Example:
        >>> AlertingSettings().targets, AlertingSettings().max_age
        ((), datetime.timedelta(days=1))
    """

    webhooks: tuple[Target, ...] = ()
    alertmanager: Target | None = None
    maintenance: tuple[MaintenanceWindow, ...] = ()
    pending_for: timedelta = timedelta(0)
    repeat_interval: timedelta = timedelta(hours=4)
    resolve_notify: bool = True
    max_age: timedelta = timedelta(hours=24)
    allow_private: AddressGuard = field(default_factory=AddressGuard)
    timeout: float = 5.0
    external_url: str = ""

    @property
    def targets(self) -> tuple[Target, ...]:
        """Every target: the webhooks, then the Alertmanager."""
        return self.webhooks + ((self.alertmanager,) if self.alertmanager else ())

    def target(self, name: str) -> Target | None:
        """The target called ``name`` (None: not configured, e.g. removed since).

        Example:
            >>> s = AlertingSettings.from_mapping({"alertmanager": {"url": "http://127.0.0.1:9093"}})
            >>> s.target("alertmanager").endpoint, s.target("gone")
            ('http://127.0.0.1:9093/api/v2/alerts', None)
        """
        return next((t for t in self.targets if t.name == name), None)

    def window_for(
        self, tenant: str, model: str, slo: str, at: datetime
    ) -> MaintenanceWindow | None:
        """The first maintenance window that covers ``slo`` at ``at``, or None."""
        return next((w for w in self.maintenance if w.covers(tenant, model, slo, at)), None)

    def suppressed(self, slo: Any, at: datetime) -> bool:
        """Whether a maintenance window covers ``slo`` (an :class:`~xebench.analysis.slo.SLO`:
        its ``tenant``, ``model`` and ``name``) at ``at``.

        Example:
            >>> from datetime import UTC
            >>> from xebench.analysis.slo import SLO
            >>> s = AlertingSettings.from_mapping({"maintenance": [
            ...     {"from": "2026-01-01T00:00:00Z", "to": "2026-01-01T01:00:00+00:00"}]})
            >>> slo = SLO("ll", model="fraud", sli="log_loss", objective=0.3)
            >>> s.suppressed(slo, datetime(2026, 1, 1, 0, 30, tzinfo=UTC)), s.suppressed(
            ...     slo, datetime(2026, 1, 1, 1, tzinfo=UTC))
            (True, False)
        """
        return self.window_for(slo.tenant, slo.model, slo.name, at) is not None

    @classmethod
    def from_mapping(
        cls, raw: Any, where: str = "alerting", *, resolver: Resolver | None = None
    ) -> AlertingSettings:
        """Parse the ``alerting:`` mapping; :class:`ConfigError` names the bad key.

        Webhook and Alertmanager hosts are resolved (``resolver``: the system's by
        default) and refused on private or link-local addresses unless
        ``allow_private`` lists them; a host that does not resolve now is accepted
        (it is checked again before every send).

        Example:
            >>> AlertingSettings.from_mapping({"webhooks": [{"url": "http://127.0.0.1/a"},
            ...                                              {"url": "ftp://x"}]})
            Traceback (most recent call last):
            ...
            xebench.errors.ConfigError: alerting.webhooks[1].url: must be an http:// or \
https:// URL with a host; got 'ftp://x'
            >>> AlertingSettings.from_mapping({"pending_for": "soon"})
            Traceback (most recent call last):
            ...
            xebench.errors.ConfigError: alerting.pending_for: must be a duration such as \
30m, 1h, 6h, 24h or 7d; got 'soon'
        """
        if raw is None:
            return cls()
        if not isinstance(raw, Mapping):
            raise ConfigError(f"{where}: must be a mapping (webhooks, alertmanager, maintenance)")
        known = {
            "webhooks", "alertmanager", "maintenance", "pending_for", "repeat_interval",
            "resolve_notify", "max_age", "allow_private", "timeout", "external_url",
        }  # fmt: skip
        unknown = sorted(set(map(str, raw)) - known)
        if unknown:
            raise ConfigError(f"{where}.{unknown[0]}: unknown key; keys are {sorted(known)}")
        allow = raw.get("allow_private") or []
        if not isinstance(allow, list):
            raise ConfigError(f"{where}.allow_private: must be a list of host names or CIDRs")
        guard = AddressGuard.parse(allow, f"{where}.allow_private")
        webhooks_raw = raw.get("webhooks") or []
        if not isinstance(webhooks_raw, list):
            raise ConfigError(f"{where}.webhooks: must be a list of {{url, name, severities}}")
        webhooks = tuple(
            _target(item, f"{where}.webhooks[{i}]", "webhook", guard, resolver)
            for i, item in enumerate(webhooks_raw)
        )
        manager = raw.get("alertmanager")
        alertmanager = (
            None
            if manager is None
            else _target(manager, f"{where}.alertmanager", "alertmanager", guard, resolver)
        )
        names = [t.name for t in webhooks] + ([alertmanager.name] if alertmanager else [])
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ConfigError(f"{where}.webhooks: two targets are named {twice[0]!r}")
        windows_raw = raw.get("maintenance") or []
        if not isinstance(windows_raw, list):
            raise ConfigError(f"{where}.maintenance: must be a list of {{from, to, models}}")
        timeout = raw.get("timeout", 5.0)
        if (
            isinstance(timeout, bool)
            or not isinstance(timeout, int | float)
            or not (0 < timeout <= 300)
        ):
            raise ConfigError(f"{where}.timeout: must be seconds in (0, 300]; got {timeout!r}")
        resolve_notify = raw.get("resolve_notify", True)
        if not isinstance(resolve_notify, bool):
            raise ConfigError(
                f"{where}.resolve_notify: must be true or false; got {resolve_notify!r}"
            )
        external = raw.get("external_url") or ""
        if external and not _is_http_url(external):
            raise ConfigError(f"{where}.external_url: must be an http(s) URL; got {external!r}")
        return cls(
            webhooks=webhooks,
            alertmanager=alertmanager,
            maintenance=tuple(
                _window(item, f"{where}.maintenance[{i}]") for i, item in enumerate(windows_raw)
            ),
            pending_for=_duration(raw, "pending_for", timedelta(0), where, zero=True),
            repeat_interval=_duration(raw, "repeat_interval", timedelta(hours=4), where),
            resolve_notify=resolve_notify,
            max_age=_duration(raw, "max_age", timedelta(hours=24), where),
            allow_private=guard,
            timeout=float(timeout),
            external_url=str(external).rstrip("/"),
        )


def _duration(
    raw: Mapping[str, Any], key: str, default: timedelta, where: str, *, zero: bool = False
) -> timedelta:
    value = raw.get(key)
    if value is None:
        return default
    if zero and (value == 0 or (isinstance(value, str) and _ZERO.fullmatch(value))):
        return timedelta(0)
    try:
        return parse_duration(value, f"{where}.{key}")
    except InvalidInputError as error:
        raise ConfigError(str(error)) from None


def _is_http_url(text: Any) -> bool:
    if not isinstance(text, str):
        return False
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018  (raises on a bad port)
    except ValueError:
        return False
    return parts.scheme in {"http", "https"} and bool(parts.hostname)


def _target(
    item: Any, where: str, kind: str, guard: AddressGuard, resolver: Resolver | None
) -> Target:
    if not isinstance(item, Mapping):
        raise ConfigError(f"{where}: must be a mapping with url (and name, severities, headers)")
    known = {"url", "name", "severities", "headers"} | (
        {"resend_interval"} if kind == "alertmanager" else set()
    )
    unknown = sorted(set(map(str, item)) - known)
    if unknown:
        raise ConfigError(f"{where}.{unknown[0]}: unknown key; keys are {sorted(known)}")
    url = item.get("url")
    if not _is_http_url(url):
        raise ConfigError(
            f"{where}.url: must be an http:// or https:// URL with a host; got {url!r}"
        )
    try:
        guard.check_url(url, resolver, unresolved_ok=True)
    except ConfigError as error:
        raise ConfigError(f"{where}.url: {error}") from None
    # A default name must not change when the list is reordered: the outbox names targets.
    digest = hashlib.sha256(url.encode()).hexdigest()[:8]
    default_name = "alertmanager" if kind == "alertmanager" else f"webhook-{digest}"
    name = item.get("name", default_name)
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError(f"{where}.name: must be 1-64 letters, digits or '_.:-'; got {name!r}")
    severities = item.get("severities", sorted(SEVERITIES))
    if isinstance(severities, str):
        severities = [severities]
    if not isinstance(severities, list) or not severities or not set(severities) <= SEVERITIES:
        raise ConfigError(
            f"{where}.severities: must be a non-empty list of {sorted(SEVERITIES)}; "
            f"got {severities!r}"
        )
    headers = item.get("headers") or {}
    if not isinstance(headers, Mapping):
        raise ConfigError(f"{where}.headers: must be a mapping of header -> text")
    for key, value in headers.items():
        if not isinstance(key, str) or not _HEADER.match(key) or key.lower() in _OWN_HEADERS:
            raise ConfigError(
                f"{where}.headers: {key!r} is not a header name xebench lets a target set"
            )
        if not isinstance(value, str) or any(c in value for c in "\r\n\0"):
            raise ConfigError(f"{where}.headers.{key}: must be one line of text")
    resend = _duration(item, "resend_interval", timedelta(minutes=1), where)
    return Target(
        name=name,
        kind=kind,
        url=url,
        severities=frozenset(severities),
        headers=dict(headers),
        resend_interval=resend,
    )


def _names(item: Mapping[str, Any], key: str, where: str) -> frozenset[str]:
    value = item.get(key) or []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, Sequence) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"{where}.{key}: must be a list of names")
    return frozenset(value)


def _window(item: Any, where: str) -> MaintenanceWindow:
    if not isinstance(item, Mapping):
        raise ConfigError(f"{where}: must be a mapping with from, to (and models, slos, reason)")
    known = {"from", "to", "models", "slos", "tenants", "reason"}
    unknown = sorted(set(map(str, item)) - known)
    if unknown:
        raise ConfigError(f"{where}.{unknown[0]}: unknown key; keys are {sorted(known)}")
    times = {}
    for key in ("from", "to"):
        if item.get(key) is None:
            raise ConfigError(f"{where}.{key}: required (an RFC 3339 time with its offset)")
        try:
            times[key] = parse_time(item[key], f"{where}.{key}")
        except InvalidInputError as error:
            raise ConfigError(str(error)) from None
    if times["to"] <= times["from"]:
        raise ConfigError(f"{where}.to: must be after from")
    reason = item.get("reason") or ""
    if not isinstance(reason, str):
        raise ConfigError(f"{where}.reason: must be text")
    return MaintenanceWindow(
        start=times["from"],
        end=times["to"],
        models=_names(item, "models", where),
        slos=_names(item, "slos", where),
        tenants=_names(item, "tenants", where),
        reason=reason,
    )
