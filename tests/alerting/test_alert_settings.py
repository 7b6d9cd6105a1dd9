"""``alerting:`` parsing: defaults, every key, errors that name the key path, and the
refusal of private / link-local webhook targets."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import yaml

from xebench.alerting import AlertingSettings
from xebench.errors import ConfigError

LOCAL = "http://127.0.0.1:9000/hook"


def parse(raw: Any, **options: Any) -> AlertingSettings:
    return AlertingSettings.from_mapping(raw, where="alerting", **options)


def test_defaults() -> None:
    s = parse({})
    assert (s.webhooks, s.alertmanager, s.maintenance) == ((), None, ())
    assert s.pending_for == timedelta(0)
    assert s.repeat_interval == timedelta(hours=4)
    assert s.resolve_notify is True
    assert s.max_age == timedelta(hours=24)
    assert s.timeout == 5.0
    assert parse(None) == AlertingSettings()


def test_every_key_from_yaml() -> None:
    raw = yaml.safe_load(
        """
        webhooks:
          - {url: "http://127.0.0.1:9000/all"}
          - url: "https://10.20.3.4/pages"
            name: oncall
            severities: [page]
            headers: {Authorization: "Bearer abc"}
        alertmanager: {url: "http://127.0.0.1:9093/", resend_interval: 30s}
        maintenance:
          - from: 2026-03-01T10:00:00Z
            to: "2026-03-01T13:00:00+01:00"
            models: [fraud]
            reason: migration
          - {from: "2026-03-02T00:00:00Z", to: "2026-03-02T01:00:00Z", slos: [a], tenants: [t]}
        pending_for: 2m
        repeat_interval: 1h
        resolve_notify: false
        max_age: 2d
        allow_private: [10.20.0.0/16]
        timeout: 2.5
        external_url: https://xebench.example/
        """
    )
    s = parse(raw)
    first, oncall = s.webhooks
    assert first.name.startswith("webhook-") and first.severities == {"page", "ticket"}
    assert (oncall.name, oncall.severities, dict(oncall.headers)) == (
        "oncall", {"page"}, {"Authorization": "Bearer abc"},
    )  # fmt: skip
    assert s.alertmanager is not None
    assert s.alertmanager.endpoint == "http://127.0.0.1:9093/api/v2/alerts"
    assert s.alertmanager.resend_interval == timedelta(seconds=30)
    assert [t.name for t in s.targets] == [first.name, "oncall", "alertmanager"]
    window = s.maintenance[0]
    assert window.end - window.start == timedelta(hours=2)  # +01:00 read as such
    assert window.models == {"fraud"} and window.reason == "migration"
    assert s.maintenance[1].tenants == {"t"}
    assert (s.pending_for, s.repeat_interval, s.max_age) == (
        timedelta(minutes=2), timedelta(hours=1), timedelta(days=2),
    )  # fmt: skip
    assert s.resolve_notify is False and s.timeout == 2.5
    assert s.external_url == "https://xebench.example"


def test_default_webhook_names_do_not_depend_on_the_order() -> None:
    a = parse({"webhooks": [{"url": LOCAL}, {"url": LOCAL + "2"}]})
    b = parse({"webhooks": [{"url": LOCAL + "2"}, {"url": LOCAL}]})
    assert {t.url: t.name for t in a.webhooks} == {t.url: t.name for t in b.webhooks}


@pytest.mark.parametrize("zero", [0, "0", "0s", "0m"])
def test_pending_for_may_be_zero(zero: Any) -> None:
    assert parse({"pending_for": zero}).pending_for == timedelta(0)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ([], "alerting: must be a mapping"),
        ({"webhook": []}, "alerting.webhook: unknown key"),
        ({"webhooks": {"url": LOCAL}}, "alerting.webhooks: must be a list"),
        ({"webhooks": [{"url": LOCAL}, {"url": "ftp://x"}]}, "alerting.webhooks[1].url: must be"),
        ({"webhooks": [{"url": LOCAL}, {"url": "http://:80/x"}]}, "alerting.webhooks[1].url:"),
        ({"webhooks": [{"url": LOCAL, "severities": ["sev1"]}]}, "alerting.webhooks[0].severities"),
        ({"webhooks": [{"url": LOCAL, "severities": []}]}, "alerting.webhooks[0].severities"),
        ({"webhooks": [{"url": LOCAL, "headers": {"Idempotency-Key": "x"}}]},
         "alerting.webhooks[0].headers: 'Idempotency-Key'"),
        ({"webhooks": [{"url": LOCAL, "headers": {"X-A": "a\r\nb"}}]},
         "alerting.webhooks[0].headers.X-A: must be one line"),
        ({"webhooks": [{"url": LOCAL, "name": "a b"}]}, "alerting.webhooks[0].name"),
        ({"webhooks": [{"url": LOCAL, "name": "x"}, {"url": LOCAL + "2", "name": "x"}]},
         "alerting.webhooks: two targets are named 'x'"),
        ({"webhooks": [{"url": LOCAL, "colour": "red"}]}, "alerting.webhooks[0].colour: unknown"),
        ({"alertmanager": {"url": "http://127.0.0.1:9093", "resend_interval": "-1m"}},
         "alerting.alertmanager.resend_interval"),
        ({"maintenance": [{"from": "2026-03-01T10:00:00", "to": "2026-03-01T11:00:00Z"}]},
         "alerting.maintenance[0].from: needs a timezone offset"),
        ({"maintenance": [{"from": "2026-03-01T10:00:00Z"}]},
         "alerting.maintenance[0].to: required"),
        ({"maintenance": [{"from": "2026-03-01T10:00:00Z", "to": "2026-03-01T09:00:00Z"}]},
         "alerting.maintenance[0].to: must be after from"),
        ({"maintenance": [{"from": "2026-03-01T10:00:00Z", "to": "2026-03-01T11:00:00Z",
                           "models": [1]}]}, "alerting.maintenance[0].models"),
        ({"pending_for": "soon"}, "alerting.pending_for: must be a duration"),
        ({"repeat_interval": 0}, "alerting.repeat_interval: must be a positive duration"),
        ({"max_age": "1y"}, "alerting.max_age: must be a duration"),
        ({"timeout": 0}, "alerting.timeout: must be seconds"),
        ({"timeout": True}, "alerting.timeout: must be seconds"),
        ({"resolve_notify": "yes"}, "alerting.resolve_notify: must be true or false"),
        ({"allow_private": "10.0.0.0/8"}, "alerting.allow_private: must be a list"),
        ({"allow_private": ["not a host!"]}, "alerting.allow_private[0]: not a host name or CIDR"),
        ({"external_url": "xebench"}, "alerting.external_url: must be an http(s) URL"),
    ],
)  # fmt: skip
def test_errors_name_the_key_path(raw: Any, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse(raw)
    assert str(error.value).startswith(message), str(error.value)


@pytest.mark.parametrize(
    "url",
    [
        "http://10.1.2.3/hook",
        "http://192.168.1.10:8080/hook",
        "http://172.16.0.1/hook",
        "http://169.254.169.254/latest/meta-data",  # the cloud metadata service
        "http://[fe80::1]/hook",
        "http://[fd12::1]/hook",
        "http://[::ffff:10.0.0.1]/hook",
        "http://100.64.1.1/hook",
        "http://0.0.0.0/hook",
    ],
)
def test_private_and_link_local_targets_are_refused_at_load(url: str) -> None:
    with pytest.raises(ConfigError, match=r"alerting\.webhooks\[0\]\.url: .* address; list it"):
        parse({"webhooks": [{"url": url}]})
    with pytest.raises(ConfigError, match=r"alerting\.alertmanager\.url: "):
        parse({"alertmanager": {"url": url}})


def test_allow_private_lists_networks_and_host_names() -> None:
    assert parse({"webhooks": [{"url": "http://10.1.2.3/h"}], "allow_private": ["10.1.0.0/16"]})
    with pytest.raises(ConfigError, match=r"10\.2\.0\.1 is a private address"):
        parse({"webhooks": [{"url": "http://10.2.0.1/h"}], "allow_private": ["10.1.0.0/16"]})
    resolver = lambda host, port: ["10.9.9.9"]  # noqa: E731
    with pytest.raises(ConfigError, match=r"relay\.internal resolves to 10\.9\.9\.9, a private"):
        parse({"webhooks": [{"url": "http://relay.internal/h"}]}, resolver=resolver)
    allowed = parse(
        {"webhooks": [{"url": "http://relay.internal/h"}], "allow_private": ["relay.internal"]},
        resolver=resolver,
    )
    assert allowed.webhooks[0].url == "http://relay.internal/h"


def test_a_name_resolving_to_a_public_and_a_private_address_is_refused() -> None:
    resolver = lambda host, port: ["93.184.216.34", "169.254.169.254"]  # noqa: E731
    with pytest.raises(ConfigError, match=r"resolves to 169\.254\.169\.254, a link-local"):
        parse({"webhooks": [{"url": "https://hooks.example/x"}]}, resolver=resolver)


def test_loopback_and_public_targets_are_allowed_and_unresolvable_ones_checked_later() -> None:
    public = lambda host, port: ["93.184.216.34"]  # noqa: E731
    assert parse({"webhooks": [{"url": "https://hooks.example/x"}]}, resolver=public)
    assert parse({"webhooks": [{"url": "http://[::1]:9000/x"}]})

    def down(host: str, port: int) -> list[str]:
        raise OSError("no DNS")

    # DNS down at start must not stop the service: the address is checked before each send.
    assert parse({"webhooks": [{"url": "https://hooks.example/x"}]}, resolver=down)


def test_maintenance_window_coverage() -> None:
    from xebench.analysis.slo import SLO

    s = parse(
        {
            "maintenance": [
                {"from": "2026-03-01T10:00:00Z", "to": "2026-03-01T11:00:00Z", "slos": ["b"]},
            ]
        }
    )
    window = s.maintenance[0]
    a = SLO("a", model="fraud", sli="log_loss", objective=0.3)
    b = SLO("b", model="fraud", sli="log_loss", objective=0.3)
    inside, end = window.start + timedelta(minutes=30), window.end
    assert (s.suppressed(a, inside), s.suppressed(b, inside), s.suppressed(b, end)) == (
        False, True, False,
    )  # fmt: skip
    assert s.suppressed(b, window.start)  # [from, to)
    assert window.to_dict()["from"] == "2026-03-01T10:00:00Z"
