"""Service configuration: tokens, scopes, PII policy and limits, with errors that name the key."""

from __future__ import annotations

import hmac
from datetime import timedelta
from hashlib import sha256
from pathlib import Path

import pytest

from xebench.cli.main import main
from xebench.service.config import ConfigError, hash_token, load_config


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "xebench.yaml"
    path.write_text(text)
    return path


def test_file_tokens_env_tokens_pii_and_limits(tmp_path: Path) -> None:
    digest = hash_token("file-token")
    path = write(
        tmp_path,
        f"""
tokens:
  - {{tenant: acme, scopes: [ingest], hash: "{digest}"}}
  - {{tenant: bravo, scopes: [read], token_env: BRAVO}}
pii: {{drop: [email], hash: [user], key_env: PII_KEY}}
limits: {{max_body_bytes: 1000, max_events: 10, max_future_seconds: 60}}
queue_events: 5000
join_window_days: 2
""",
    )
    env = {"BRAVO": "bravo-token", "PII_KEY": "k", "XEBENCH_TOKENS": "carol:ingest+read:c-token"}
    config = load_config(path, env)
    assert config.tokens.authenticate("file-token").tenant == "acme"
    assert config.tokens.authenticate("bravo-token").scopes == {"read"}
    assert config.tokens.authenticate("c-token").scopes == {"ingest", "read"}
    assert config.tokens.authenticate("file-token ") is None
    assert config.pii.apply({"email": "a", "user": "u", "x": 1}) == {
        "user": "h:" + hmac.new(b"k", b"u", sha256).hexdigest()[:16],
        "x": 1,
    }
    assert (config.limits.max_body_bytes, config.limits.max_events) == (1000, 10)
    assert config.limits.max_future == timedelta(seconds=60)
    assert (config.queue_events, config.join_window) == (5000, timedelta(days=2))


def test_token_digests_are_salted(tmp_path: Path) -> None:
    assert hash_token("same") != hash_token("same")
    assert "same" not in hash_token("same")


@pytest.mark.parametrize(
    ("text", "env", "message"),
    [
        ("tokens: [{tenant: a, scopes: [write], hash: x}]", {}, "tokens[0].scopes: unknown scope"),
        ("tokens: [{tenant: 'a b', scopes: [read], token_env: T}]", {"T": "t"}, "tokens[0].tenant"),
        ("tokens: [{tenant: a, scopes: [read], token_env: MISSING}]", {}, "'MISSING' is not set"),
        ("tokens: [{tenant: a, scopes: [read], hash: plain}]", {}, "tokens[0].hash"),
        ("pii: {hash: [user]}", {}, "pii.hash: needs a secret; set XEBENCH_PII_KEY"),
        ("limits: {max_events: -1}", {}, "limits.max_events: must be a positive number"),
        ("queue: 5", {}, "unknown key 'queue'"),
        ("[1, 2]", {}, "must be a YAML mapping"),
        ("tokens: [", {}, "not valid YAML"),
    ],
)
def test_bad_configuration_names_the_key(
    tmp_path: Path, text: str, env: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_config(write(tmp_path, text), env)


def test_bad_env_tokens() -> None:
    with pytest.raises(ConfigError, match="XEBENCH_TOKENS entry 0"):
        load_config(env={"XEBENCH_TOKENS": "acme-token-without-scopes"})


def test_token_create_prints_a_token_and_only_its_hash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["token", "create", "--tenant", "acme", "--scopes", "ingest,read"]) == 0
    out = capsys.readouterr().out
    token = out.split("it is not stored anywhere): ")[1].split()[0]
    config_text = out.split("config entry (add under `tokens:` in the --config file):\n")[1]
    assert token not in config_text
    path = write(tmp_path, "tokens:\n" + config_text)
    assert load_config(path, {}).tokens.authenticate(token).tenant == "acme"


@pytest.mark.parametrize(
    ("reference", "message"),
    [
        ("weekly", "must be rolling, version:V"),
        ("version:", "must be rolling, version:V"),
        ("range:2026-01-02T00:00:00Z/2026-01-01T00:00:00Z", "FROM before TO"),
        ("range:2026-01-01/2026-01-02T00:00:00Z", "reference"),
    ],
)
def test_a_bad_drift_reference_is_refused_at_load(
    tmp_path: Path, reference: str, message: str
) -> None:
    path = write(tmp_path, f"monitoring:\n  models:\n    fraud: {{reference: '{reference}'}}\n")
    with pytest.raises(ConfigError, match=r"monitoring\.models\.fraud\.reference: ") as caught:
        load_config(path, {})
    assert message in str(caught.value)


def test_every_kind_of_drift_reference_loads(tmp_path: Path) -> None:
    lines = [
        "monitoring:",
        "  models:",
        "    a: {reference: rolling}",
        "    b: {reference: 'version:v1'}",
        "    c: {reference: 'range:2026-01-01T00:00:00Z/2026-01-02T00:00:00Z'}",
        "    d: {reference: uploaded}",
        "    e: {reference: 'file:/data/validation.parquet'}",
    ]
    config = load_config(write(tmp_path, "\n".join(lines) + "\n"), {})
    assert config.monitoring.references["d"] == "uploaded"
    assert sorted(config.monitoring.references) == ["a", "b", "c", "d", "e"]


def test_identity_bounds_load_and_bad_ones_name_the_key(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "identity: {filter_mb: 0.5, recent_keys: 1000}\n"), {})
    assert (config.filter_bytes, config.recent_keys) == (512 * 1024, 1000)
    assert (load_config(None, {}).filter_bytes, load_config(None, {}).recent_keys) == (
        64 << 20,
        1 << 20,
    )
    for text, message in [
        ("identity: {filter_mb: -1}", "identity.filter_mb: must be a positive number"),
        ("identity: {recent_keys: 1}", "identity.recent_keys: must be at least 2"),
        ("identity: {bloom: 1}", "identity.bloom: unknown key"),
        ("identity: 5", "identity: must be a mapping"),
    ]:
        with pytest.raises(ConfigError, match=message):
            load_config(write(tmp_path, text + "\n"), {})
