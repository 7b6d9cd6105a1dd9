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
    memory_limit: 128MB                      # DuckDB buffer pool
    join_window_days: 7                      # pending labels older: orphans

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
from dataclasses import dataclass, field
from datetime import timedelta
from hashlib import sha256
from pathlib import Path
from typing import Any

import yaml

from .errors import XebenchError
from .events import Limits, PiiPolicy

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


class ConfigError(XebenchError, ValueError):
    """The configuration file or environment is invalid; the message names the key.

    Example:
        >>> str(ConfigError("tokens[0].scopes: unknown scope 'write'"))
        "tokens[0].scopes: unknown scope 'write'"
    """


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
    join_window: timedelta = timedelta(days=7)
    #: DuckDB's buffer pool; without a bound it grows with the database file.
    memory_limit: str = "128MB"


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
    known = {"db", "tokens", "pii", "limits", "queue_events", "join_window_days", "memory_limit"}
    unknown = set(raw) - known
    if unknown:
        raise ConfigError(f"{path}: unknown key {sorted(unknown)[0]!r}; keys are {sorted(known)}")
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
        join_window=timedelta(days=_positive(raw, "join_window_days", 7, "")),
        memory_limit=str(raw.get("memory_limit", "128MB")),
    )
