"""Service configuration: tokens and tenants, privacy, limits, and where the database lives.

A YAML file (``xebench serve --config FILE``) and the environment configure
the service; every key is optional::

    db: /var/lib/xebench/xebench.duckdb     # --db overrides it
    tokens:
      - tenant: acme
        scopes: [ingest, read]
        hash: "sha256:9c1f...:4be2..."      # from `xebench token create`
      - tenant: beta
        scopes: [read]
        token_env: BETA_READ_TOKEN          # plaintext from the environment
    pii:
      drop: [email]                          # cohort/feature keys never stored
      hash: [user_id]                        # stored as a keyed hash
      key_env: XEBENCH_PII_KEY               # the secret of that hash
    limits:
      max_body_bytes: 20971520
      max_events: 10000
      max_future_seconds: 3600
    queue_events: 50000                      # writer queue bound (then 429)
    inflight_bytes: 50331648                 # body bytes in flight (then 429 before reading)
    inflight_seconds: 0.5                    # estimated seconds of work in flight (then 429)
    memory_limit: 128MB                      # DuckDB buffer pool
    identity:                                # idempotency keys in memory: a fixed bound
      filter_mb: 64                          # filter of every stored key (3 per labelled
                                             # prediction); false positives cost a lookup
      recent_keys: 1048576                   # newest keys of each kind held exactly
    retention:                               # applied by the service on a schedule
      events: 30d                            # predictions (event time), labels (ingest time)
      minutes: 7d                            # minute buckets; hourly buckets are kept
      hours: 90d                             # hourly buckets rolled up into days
      interval: 1h                           # how often (and once at start)
    join_window_days: 7                      # pending labels older: orphans
    monitoring:                              # what the buckets keep and how windows read
      cohort_cap: 100                        # values per cohort key, then "__other__"
      cohort_features: false                 # feature histograms per cohort too
      cohort_crossings: [[region, device]]   # multi-key cohorts kept too (at most 8)
      max_features: 50
      learn_after: 1000                      # values before a feature's bins are fixed
      fold_interval: 1                       # s between compactions; 0: no buckets at all
      label_delay: 30m                       # omit: the observed p90 label lag
      min_coverage: 0.5                      # below: the window is provisional
      drift: {min_samples: 500, threshold: 0.01, bins: 10}
      gate: {max_degradation: 0.02, min_samples: 1000, confidence: 0.95}
      estimate: {reference: 7d, min_labelled: 200}  # the label-lag bridge's reference
      models:
        fraud: {label_delay: 2h, min_coverage: 0.8, reference: "version:v1"}
        # reference: rolling (default) | version:V | range:FROM/TO | uploaded | file:PATH

``XEBENCH_TOKENS`` adds tokens as ``tenant:scope+scope:token`` entries
separated by commas or whitespace. Tokens are kept only as salted SHA-256
digests and compared in constant time.

Example:
    >>> entry = hash_token("s3cret", salt=bytes(16))
    >>> tokens = TokenRegistry([TokenEntry("acme", frozenset({"read"}), entry)])
    >>> tokens.authenticate("s3cret").tenant, tokens.authenticate("wrong")
    ('acme', None)
"""

from __future__ import annotations

import hmac
import os
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta
from hashlib import sha256
from pathlib import Path
from typing import Any

import yaml

from ..alerting import AlertingSettings
from ..analysis.slo import SLO
from ..errors import ConfigError, InvalidInputError
from ..ingest.events import Limits, PiiPolicy
from ..monitor.scope import canonical_cohort
from ..monitor.windows import ModelPolicy, MonitorSettings, parse_duration, parse_reference
from ..store.buckets import MonitorConfig
from ..store.crossings import check_crossings
from ..store.retention import RetentionPolicy
from .slo_config import load_slo_files, parse_slos

__all__ = [
    "SCOPES",
    "ConfigError",
    "ServiceConfig",
    "TokenEntry",
    "TokenRegistry",
    "check_tenant",
    "default_db_path",
    "hash_token",
    "load_config",
    "new_token",
    "parse_scopes",
]

#: What a token may do: send events, read metrics.
SCOPES = frozenset({"ingest", "read"})
_TENANT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def hash_token(token: str, *, salt: bytes | None = None) -> str:
    """``sha256:SALT:DIGEST`` of a token; what the configuration stores instead of it.

    Tokens are long random strings, so one salted SHA-256 is enough (a slow
    password hash would cost milliseconds on every request for no gain).

    Example:
        >>> hash_token("abc", salt=bytes(4))
        'sha256:00000000:0a834ab04b1628b0b4ec20ca71e77f96a80431c1da87ebf07276c438b662206a'
    """
    salt = secrets.token_bytes(16) if salt is None else salt
    return f"sha256:{salt.hex()}:{sha256(salt + token.encode()).hexdigest()}"


def new_token() -> str:
    """A fresh random token (256 bits, URL-safe).

    Example:
        >>> len(new_token()) >= 43
        True
    """
    return "xeb_" + secrets.token_urlsafe(32)


@dataclass(frozen=True)
class TokenEntry:
    """One configured token: its tenant, its scopes and its salted digest.

    Example:
        >>> TokenEntry("acme", frozenset({"ingest"}), hash_token("t")).matches("t")
        True
    """

    tenant: str
    scopes: frozenset[str]
    digest: str

    def matches(self, token: str) -> bool:
        """Whether ``token`` hashes to this entry's digest (constant-time comparison)."""
        _, salt, expected = self.digest.split(":")
        actual = sha256(bytes.fromhex(salt) + token.encode()).hexdigest()
        return hmac.compare_digest(actual, expected)


class TokenRegistry:
    """The configured tokens; empty means authentication is off (one tenant, ``default``).

    Example:
        >>> TokenRegistry([]).enabled
        False
    """

    def __init__(self, entries: Iterable[TokenEntry]) -> None:
        self.entries = list(entries)

    @property
    def enabled(self) -> bool:
        """Whether any token is configured."""
        return bool(self.entries)

    def authenticate(self, token: str) -> TokenEntry | None:
        """The entry of ``token``, or None. Every entry is checked, so timing reveals nothing."""
        found = None
        for entry in self.entries:
            if entry.matches(token) and found is None:
                found = entry
        return found


@dataclass
class ServiceConfig:
    """Everything ``xebench serve`` needs besides host and port.

    Example:
        >>> ServiceConfig().queue_events
        50000
    """

    db: Path | None = None
    tokens: TokenRegistry = field(default_factory=lambda: TokenRegistry([]))
    pii: PiiPolicy = field(default_factory=PiiPolicy)
    limits: Limits = field(default_factory=Limits)
    queue_events: int = 50_000
    #: Admission control (service.admission): body bytes and estimated seconds of work
    #: in flight before a request is answered 429 without being read.
    inflight_bytes: int = 48 * 1024 * 1024
    inflight_seconds: float = 0.5
    #: Worker processes validating prediction bodies (service.validation): the Python
    #: of validation then runs beside the server's, not under its GIL; each costs ~100 MB
    #: resident. 0 (the default): in the server's validation threads.
    validation_processes: int = 0
    join_window: timedelta = timedelta(days=7)
    #: DuckDB's buffer pool; without a bound it grows with the database file.
    memory_limit: str = "128MB"
    #: What the bucket statistics keep (fixed when events are folded).
    monitor: MonitorConfig = field(default_factory=MonitorConfig)
    #: How windows, drift and comparisons read them (may change at any restart).
    monitoring: MonitorSettings = field(default_factory=MonitorSettings)
    #: Each commit folds its events into the buckets; this many seconds pass at least
    #: between two compactions under load (an idle writer compacts at once). None: no
    #: bucket maintenance at all (the buckets then go stale: benchmarks only).
    fold_interval: float | None = 1.0
    #: The identity indexes' bound (:class:`~xebench.store.event_store.EventStore`):
    #: the filter of every stored key, and the recent keys of each kind held exactly.
    filter_bytes: int = 64 << 20
    recent_keys: int = 1 << 20
    #: What the service deletes, and how often (inactive by default: keep everything).
    retention: RetentionPolicy = field(default_factory=RetentionPolicy)
    #: The SLOs the service judges every minute (``slos:`` and ``slo_files:``).
    slos: tuple[SLO, ...] = ()
    #: Where their alerts go (``alerting:``; None: alerts are only read, never sent).
    alerting: AlertingSettings | None = None


def default_db_path() -> Path:
    """``$XEBENCH_DB``, else ``$XDG_DATA_HOME/xebench/xebench.duckdb`` (``~/.local/share``).

    Example:
        >>> default_db_path().name
        'xebench.duckdb'
    """
    if os.environ.get("XEBENCH_DB"):
        return Path(os.environ["XEBENCH_DB"])
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "xebench" / "xebench.duckdb"


def parse_scopes(value: Any, where: str) -> frozenset[str]:
    """Scopes from a list or an ``"ingest,read"`` string; ``where`` names the key in errors.

    Example:
        >>> sorted(parse_scopes("ingest+read", "--scopes"))
        ['ingest', 'read']
    """
    if isinstance(value, str):
        value = re.split(r"[+,\s]+", value.strip())
    if not isinstance(value, list) or not value:
        raise ConfigError(f"{where}: give a list of scopes from {sorted(SCOPES)}")
    unknown = [s for s in value if s not in SCOPES]
    if unknown:
        raise ConfigError(f"{where}: unknown scope {unknown[0]!r}; scopes are {sorted(SCOPES)}")
    return frozenset(value)


def check_tenant(value: Any, where: str) -> str:
    """A valid tenant name (1-64 letters, digits, ``.``, ``_``, ``-``) or :class:`ConfigError`.

    Example:
        >>> check_tenant("acme", "--tenant")
        'acme'
    """
    if not isinstance(value, str) or not _TENANT.match(value):
        raise ConfigError(f"{where}: a tenant is 1-64 letters, digits, '.', '_' or '-'")
    return value


def _token_entries(raw: Any, env: Mapping[str, str]) -> list[TokenEntry]:
    entries = []
    if raw is None:
        raw = []
    if not isinstance(raw, list):
        raise ConfigError("tokens: must be a list of {tenant, scopes, hash | token_env}")
    for i, item in enumerate(raw):
        where = f"tokens[{i}]"
        if not isinstance(item, dict):
            raise ConfigError(f"{where}: must be a mapping with tenant, scopes and hash")
        unknown = set(item) - {"tenant", "scopes", "hash", "token_env"}
        if unknown:
            raise ConfigError(f"{where}: unknown key {sorted(unknown)[0]!r}")
        tenant = check_tenant(item.get("tenant"), f"{where}.tenant")
        scopes = parse_scopes(item.get("scopes"), f"{where}.scopes")
        if "hash" in item:
            digest = str(item["hash"])
            if not re.fullmatch(r"sha256:[0-9a-f]+:[0-9a-f]{64}", digest):
                raise ConfigError(
                    f"{where}.hash: expected sha256:SALT:DIGEST from `xebench token create`"
                )
        elif "token_env" in item:
            secret = env.get(str(item["token_env"]))
            if not secret:
                raise ConfigError(
                    f"{where}.token_env: environment variable {item['token_env']!r} is not set"
                )
            digest = hash_token(secret)
        else:
            raise ConfigError(f"{where}: give hash (from `xebench token create`) or token_env")
        entries.append(TokenEntry(tenant, scopes, digest))
    for i, text in enumerate(t for t in re.split(r"[,\s]+", env.get("XEBENCH_TOKENS", "")) if t):
        parts = text.split(":", 2)
        if len(parts) != 3 or not parts[2]:
            raise ConfigError(f"XEBENCH_TOKENS entry {i}: expected tenant:scope+scope:token")
        tenant = check_tenant(parts[0], f"XEBENCH_TOKENS entry {i}")
        scopes = parse_scopes(parts[1], f"XEBENCH_TOKENS entry {i}")
        entries.append(TokenEntry(tenant, scopes, hash_token(parts[2])))
    return entries


def _pii(raw: Any, env: Mapping[str, str]) -> PiiPolicy:
    if raw is None:
        return PiiPolicy()
    if not isinstance(raw, dict):
        raise ConfigError("pii: must be a mapping with drop, hash and key_env")
    unknown = set(raw) - {"drop", "hash", "key_env", "key"}
    if unknown:
        raise ConfigError(f"pii: unknown key {sorted(unknown)[0]!r}")
    key_env = str(raw.get("key_env", "XEBENCH_PII_KEY"))
    key = raw.get("key") or env.get(key_env, "")
    hashed = frozenset(raw.get("hash") or [])
    if hashed and not key:
        raise ConfigError(f"pii.hash: needs a secret; set {key_env} in the environment")
    return PiiPolicy(drop=frozenset(raw.get("drop") or []), hash=hashed, key=str(key).encode())


def _positive(raw: Mapping[str, Any], key: str, default: Any, where: str) -> Any:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ConfigError(f"{where}{key}: must be a positive number; got {value!r}")
    return value


def load_config(path: Path | None = None, env: Mapping[str, str] | None = None) -> ServiceConfig:
    """Read the YAML file at ``path`` (optional) and the environment.

    Example:
        >>> config = load_config(env={"XEBENCH_TOKENS": "acme:ingest+read:t0ken"})
        >>> config.tokens.authenticate("t0ken").scopes == {"ingest", "read"}
        True
    """
    env = os.environ if env is None else env
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except OSError as error:
            raise ConfigError(f"{path}: cannot read: {error.strerror}") from None
        except yaml.YAMLError as error:
            raise ConfigError(f"{path}: not valid YAML: {error}") from None
        raw = loaded or {}
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: must be a YAML mapping")
    known = {
        "db", "tokens", "pii", "limits", "queue_events", "join_window_days", "memory_limit",
        "monitoring", "identity", "inflight_bytes", "inflight_seconds", "retention",
        "validation_processes", "slos", "slo_files", "alerting",
    }  # fmt: skip
    unknown = set(raw) - known
    if unknown:
        raise ConfigError(f"{path}: unknown key {sorted(unknown)[0]!r}; keys are {sorted(known)}")
    monitoring = _monitoring(raw.get("monitoring"))
    crossings = monitoring["monitor"].cohort_crossings if "monitor" in monitoring else ()
    limits_raw = raw.get("limits") or {}
    limits = Limits(
        max_body_bytes=int(_positive(limits_raw, "max_body_bytes", 20 * 1024 * 1024, "limits.")),
        max_events=int(_positive(limits_raw, "max_events", 10_000, "limits.")),
        max_future=timedelta(seconds=_positive(limits_raw, "max_future_seconds", 3600, "limits.")),
    )
    return ServiceConfig(
        db=Path(raw["db"]) if raw.get("db") else None,
        tokens=TokenRegistry(_token_entries(raw.get("tokens"), env)),
        pii=_pii(raw.get("pii"), env),
        limits=limits,
        queue_events=int(_positive(raw, "queue_events", 50_000, "")),
        inflight_bytes=int(_positive(raw, "inflight_bytes", 48 * 1024 * 1024, "")),
        inflight_seconds=float(_positive(raw, "inflight_seconds", 0.5, "")),
        validation_processes=_processes(raw.get("validation_processes")),
        join_window=timedelta(days=_positive(raw, "join_window_days", 7, "")),
        memory_limit=str(raw.get("memory_limit", "128MB")),
        **_identity(raw.get("identity")),
        retention=_retention(raw.get("retention")),
        **monitoring,
        slos=_slos(raw, None if path is None else Path(path).parent, crossings),
        alerting=_alerting(raw.get("alerting")),
    )


def _slos(
    raw: dict[str, Any], base: Path | None, crossings: tuple[tuple[str, ...], ...] = ()
) -> tuple[SLO, ...]:
    """``slos:`` entries and the SLOs of ``slo_files:``; names unique across both; a
    crossing's cohort in the configured order of ``monitoring.cohort_crossings``."""
    inline = parse_slos(raw.get("slos"))
    slos = inline + load_slo_files(raw.get("slo_files"), base)
    names = [slo.name for slo in slos]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise ConfigError(f"slos: two SLOs are named {twice[0]!r}; names must be unique")
    out = []
    for i, slo in enumerate(slos):
        if slo.cohort is not None:
            try:
                slo = replace(slo, cohort=canonical_cohort(slo.cohort, crossings))
            except InvalidInputError as error:
                where = f"slos[{i}]" if i < len(inline) else f"slo_files: SLO {slo.name!r}"
                raise ConfigError(f"{where}.cohort: {error.rule}; got {slo.cohort!r}") from None
        out.append(slo)
    return tuple(out)


def _alerting(raw: Any) -> AlertingSettings | None:
    """The ``alerting:`` section (:class:`~xebench.alerting.AlertingSettings`), if any."""
    if raw is None:
        return None
    return AlertingSettings.from_mapping(raw, where="alerting")


def _processes(raw: Any) -> int:
    """The ``validation_processes:`` key: a whole number from 0 to 64 (omitted: 0).

    Example:
        >>> _processes(2), _processes(None)
        (2, 0)
        >>> _processes(-1)
        Traceback (most recent call last):
        ...
        xebench.errors.ConfigError: validation_processes: must be a whole number from 0 to 64 \
(0: validate in threads); got -1
    """
    if raw is None:
        return 0
    if isinstance(raw, bool) or not isinstance(raw, int) or not 0 <= raw <= 64:
        raise ConfigError(
            f"validation_processes: must be a whole number from 0 to 64 (0: validate in "
            f"threads); got {raw!r}"
        )
    return raw


def _retention(raw: Any) -> RetentionPolicy:
    """The ``retention:`` section: durations such as ``30d`` (omitted: kept for ever).

    Example:
        >>> _retention({"events": "30d", "interval": "6h"})
        RetentionPolicy(events=datetime.timedelta(days=30), minutes=None, hours=None, \
interval=datetime.timedelta(seconds=21600))
    """
    if raw is None:
        return RetentionPolicy()
    if not isinstance(raw, dict):
        raise ConfigError("retention: must be a mapping with events, minutes, hours, interval")
    known = ("events", "minutes", "hours", "interval")
    unknown = set(raw) - set(known)
    if unknown:
        raise ConfigError(f"retention.{sorted(unknown)[0]}: unknown key; keys are {list(known)}")
    values: dict[str, timedelta] = {}
    for key in known:
        if raw.get(key) is None:
            continue
        try:
            values[key] = parse_duration(raw[key], f"retention.{key}")
        except ValueError as error:
            raise ConfigError(str(error)) from None
        if values[key] <= timedelta(0):
            raise ConfigError(f"retention.{key}: must be a positive duration; got {raw[key]!r}")
    return RetentionPolicy(**values)


def _identity(raw: Any) -> dict[str, int]:
    """``filter_bytes`` and ``recent_keys`` of :class:`ServiceConfig` from ``identity:``."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError("identity: must be a mapping with filter_mb and recent_keys")
    unknown = set(raw) - {"filter_mb", "recent_keys"}
    if unknown:
        raise ConfigError(
            f"identity.{sorted(unknown)[0]}: unknown key; keys are filter_mb, recent_keys"
        )
    megabytes = _positive(raw, "filter_mb", 64, "identity.")
    recent = _positive(raw, "recent_keys", 1 << 20, "identity.")
    if recent < 2:
        raise ConfigError(f"identity.recent_keys: must be at least 2; got {recent!r}")
    return {"filter_bytes": max(64, int(megabytes * (1 << 20))), "recent_keys": int(recent)}


def _monitoring(raw: Any) -> dict[str, Any]:
    """``monitor`` and ``monitoring`` of :class:`ServiceConfig` from the ``monitoring:`` key."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError("monitoring: must be a mapping")
    where = "monitoring."
    known = {
        "cohort_cap", "cohort_features", "max_features", "learn_after", "label_delay",
        "min_coverage", "drift", "gate", "models", "fold_interval", "estimate",
        "cohort_crossings",
    }  # fmt: skip
    unknown = set(raw) - known
    if unknown:
        raise ConfigError(f"{where}{sorted(unknown)[0]}: unknown key; keys are {sorted(known)}")
    try:
        crossings = check_crossings(raw.get("cohort_crossings"), f"{where}cohort_crossings")
    except InvalidInputError as error:
        raise ConfigError(str(error)) from None
    monitor = MonitorConfig(
        cohort_crossings=crossings,
        cohort_cap=int(_positive(raw, "cohort_cap", 100, where)),
        cohort_features=bool(raw.get("cohort_features", False)),
        max_features=int(_positive(raw, "max_features", 50, where)),
        learn_after=int(_positive(raw, "learn_after", 1000, where)),
    )
    drift = _section(raw, "drift", {"min_samples", "threshold", "bins"})
    gate = _section(raw, "gate", {"max_degradation", "min_samples", "confidence"})
    estimate = _section(raw, "estimate", {"reference", "min_labelled"})
    try:
        estimate_reference = parse_duration(
            estimate.get("reference", "7d"), f"{where}estimate.reference"
        )
    except InvalidInputError as error:
        raise ConfigError(str(error)) from None
    models, references = {}, {}
    for name, entry in _section(raw, "models", None).items():
        entry = entry or {}
        if not isinstance(entry, dict):
            raise ConfigError(f"{where}models.{name}: must be a mapping")
        extra = set(entry) - {"label_delay", "min_coverage", "reference"}
        if extra:
            raise ConfigError(f"{where}models.{name}.{sorted(extra)[0]}: unknown key")
        models[str(name)] = _policy(entry, raw, f"{where}models.{name}.")
        if entry.get("reference"):
            try:
                parse_reference(str(entry["reference"]))
            except InvalidInputError as error:
                raise ConfigError(f"{where}models.{name}.reference: {error}") from None
            references[str(name)] = str(entry["reference"])
    settings = MonitorSettings(
        default=_policy(raw, {}, where),
        models=models,
        references=references,
        drift_min_samples=int(drift.get("min_samples", 500)),
        drift_threshold=float(_positive(drift, "threshold", 0.01, f"{where}drift.")),
        drift_bins=int(_positive(drift, "bins", 10, f"{where}drift.")),
        gate_max_degradation=float(gate.get("max_degradation", 0.02)),
        gate_min_samples=int(gate.get("min_samples", 1000)),
        gate_confidence=float(_positive(gate, "confidence", 0.95, f"{where}gate.")),
        estimate_reference=estimate_reference,
        estimate_min_labelled=int(_positive(estimate, "min_labelled", 200, f"{where}estimate.")),
    )
    interval = raw.get("fold_interval", 1.0)
    if isinstance(interval, bool) or not isinstance(interval, int | float) or interval < 0:
        raise ConfigError(f"{where}fold_interval: must be seconds >= 0; got {interval!r}")
    return {
        "monitor": monitor,
        "monitoring": settings,
        "fold_interval": float(interval) or None,
    }


def _section(raw: dict[str, Any], key: str, known: set[str] | None) -> dict[str, Any]:
    value = raw.get(key) or {}
    if not isinstance(value, dict):
        raise ConfigError(f"monitoring.{key}: must be a mapping")
    if known is not None and set(value) - known:
        raise ConfigError(
            f"monitoring.{key}.{sorted(set(value) - known)[0]}: unknown key; keys are "
            f"{sorted(known)}"
        )
    return value


def _policy(entry: dict[str, Any], defaults: dict[str, Any], where: str) -> ModelPolicy:
    delay = entry.get("label_delay", defaults.get("label_delay"))
    try:
        label_delay = None if delay is None else parse_duration(delay, f"{where}label_delay")
    except ValueError as error:
        raise ConfigError(str(error)) from None
    coverage = float(entry.get("min_coverage", defaults.get("min_coverage", 0.5)))
    if not 0.0 <= coverage <= 1.0:
        raise ConfigError(f"{where}min_coverage: must be between 0 and 1; got {coverage}")
    return ModelPolicy(label_delay=label_delay, min_coverage=coverage)
