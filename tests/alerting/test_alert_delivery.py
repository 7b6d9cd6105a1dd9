"""Delivery against a real HTTP receiver on 127.0.0.1 that is down, slow, failing or
throttling: every alert arrives exactly once after recovery, always with the same
Idempotency-Key; what cannot be delivered in max_age is dead-lettered, never dropped."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest
from alerting_helpers import MINUTE, T0, Receiver, receiver, slo, status, wait_for

from xebench.alerting import Alerting, AlertingSettings, Reply
from xebench.alerting.delivery import HttpSender, Outbound, backoff
from xebench.store import EventStore

WEBHOOK_KEYS = {
    "version", "groupKey", "truncatedAlerts", "status", "receiver", "groupLabels",
    "commonLabels", "commonAnnotations", "externalURL", "alerts",
}  # fmt: skip
ALERT_KEYS = {"status", "labels", "annotations", "startsAt", "endsAt", "generatorURL",
              "fingerprint"}  # fmt: skip


@pytest.fixture
def store() -> Iterator[EventStore]:
    with EventStore(":memory:") as opened:
        yield opened


def alerting_for(store: EventStore, url: str, **extra: Any) -> Alerting:
    raw = {"webhooks": [{"url": url + "/hook", "name": "hook"}], "timeout": 0.5, **extra}
    options = {k: extra.pop(k) for k in ("resolver",) if k in extra}
    settings = AlertingSettings.from_mapping(raw, **options)
    return Alerting(store, settings, rng=random.Random(0))


def outbox(store: EventStore) -> list[dict[str, Any]]:
    from xebench.alerting.store import outbox_rows

    with store.cursor() as cursor:
        return outbox_rows(cursor)


def raise_three(alerting: Alerting) -> list[str]:
    alerting.evaluate([status(slo(name), page=1) for name in ("a", "b", "c")], T0)
    return [row["idempotency_key"] for row in outbox(alerting.store)]


def test_down_slow_500_and_429_then_each_alert_arrives_once(store: EventStore) -> None:
    hook = Receiver(delay=1.5)  # not started: down
    alerting = alerting_for(store, hook.url)
    keys = raise_three(alerting)
    assert len(set(keys)) == 3
    now = T0
    try:
        # Down: the connection is refused; the target is skipped for the rest of the pass.
        for _ in range(2):
            assert alerting.deliver_due(now) == {
                "attempted": 1, "delivered": 0, "retrying": 1, "dead": 0,
            }  # fmt: skip
            now += 10 * MINUTE  # past any backoff (capped at 5 minutes)
        assert "cannot connect" in outbox(store)[0]["last_error"]
        assert outbox(store)[0]["last_status"] is None

        hook.mode = "slow"  # answers after the 0.5 s timeout
        hook.start()
        started = time.monotonic()
        assert alerting.deliver_due(now)["retrying"] == 1
        assert time.monotonic() - started < 1.4  # gave up at the timeout
        assert any("timed out" in (r["last_error"] or "") for r in outbox(store))
        now += 10 * MINUTE

        hook.mode = "error"
        assert alerting.deliver_due(now) == {
            "attempted": 3, "delivered": 0, "retrying": 3, "dead": 0,
        }  # fmt: skip
        assert {r["last_status"] for r in outbox(store)} == {500}
        now += 10 * MINUTE

        hook.mode, hook.retry_after = "throttle", "30"
        assert alerting.deliver_due(now)["retrying"] == 3
        assert {r["next_attempt_at"].astimezone(UTC) for r in outbox(store)} == {
            now + timedelta(seconds=30)
        }
        hook.mode = "ok"
        assert alerting.deliver_due(now + timedelta(seconds=29))["attempted"] == 0  # waits
        assert alerting.deliver_due(now + timedelta(seconds=30))["delivered"] == 3
        assert alerting.deliver_due(now + timedelta(hours=1))["attempted"] == 0  # all settled
    finally:
        hook.stop()
    # Exactly once each, after recovery; every attempt of an alert carried the same key.
    assert hook.accepted == {key: 1 for key in keys}
    assert set(hook.keys()) == set(keys)
    assert len(hook.requests) > len(keys)  # the retries did reach the receiver
    summary = alerting.outbox_summary()
    assert (summary["delivered"], summary["pending"], summary["dead"]) == (3, 0, 0)
    assert all(r["attempts"] >= 3 for r in outbox(store))


def test_the_webhook_body_is_alertmanagers(store: EventStore) -> None:
    with receiver() as hook:
        alerting = alerting_for(store, hook.url, external_url="https://xebench.example")
        s = slo(version="v7", labels={"team": "risk"})
        alerting.evaluate([status(s, page=2)], T0)
        alerting.evaluate([status(s)], T0 + MINUTE)
        alerting.deliver_due(T0 + MINUTE)
        alerting.deliver_due(T0 + MINUTE)  # the resolve follows the firing
    firing, resolved = hook.requests
    assert firing.headers["Content-Type"] == "application/json"
    assert firing.headers["Idempotency-Key"] != resolved.headers["Idempotency-Key"]
    body = firing.body
    assert set(body) == WEBHOOK_KEYS
    assert (body["version"], body["status"], body["receiver"]) == ("4", "firing", "hook")
    assert body["groupLabels"] == {"alertname": "XebenchSLOBurnRate", "tenant": "default",
                                   "slo": "fraud-ll", "severity": "page"}  # fmt: skip
    assert body["groupKey"] == (
        '{}:{alertname="XebenchSLOBurnRate", severity="page", slo="fraud-ll", tenant="default"}'
    )
    assert body["externalURL"] == "https://xebench.example"
    [alert] = body["alerts"]
    assert set(alert) == ALERT_KEYS
    assert alert["labels"]["team"] == "risk" and alert["labels"]["version"] == "v7"
    assert alert["startsAt"] == "2026-03-01T12:00:00Z"
    assert alert["endsAt"] == "0001-01-01T00:00:00Z"
    assert alert["generatorURL"] == "https://xebench.example/v1/alerts"
    assert alert["annotations"]["runbook_url"] == "https://runbooks.example/fraud"
    assert '"page-6h-30m"' in alert["annotations"]["evidence"]
    [ended] = resolved.body["alerts"]
    assert resolved.body["status"] == ended["status"] == "resolved"
    assert ended["endsAt"] == "2026-03-01T12:01:00Z"
    assert ended["fingerprint"] == alert["fingerprint"]


def test_retry_after_as_an_http_date(store: EventStore) -> None:
    with receiver(mode="unavailable") as hook:
        hook.retry_after = format_datetime(T0 + timedelta(seconds=90), usegmt=True)
        alerting = alerting_for(store, hook.url)
        alerting.evaluate([status(slo(), page=1)], T0)
        assert alerting.deliver_due(T0)["retrying"] == 1
        [row] = outbox(store)
        assert row["last_status"] == 503
        assert row["next_attempt_at"].astimezone(UTC) == T0 + timedelta(seconds=90)


def test_a_resolve_never_overtakes_its_firing(store: EventStore) -> None:
    hook = Receiver()
    alerting = alerting_for(store, hook.url)
    alerting.evaluate([status(slo(), page=1)], T0)
    alerting.evaluate([status(slo())], T0 + MINUTE)
    now = T0 + MINUTE
    assert alerting.deliver_due(now)["retrying"] == 1  # down: only the head was tried
    hook.start()
    try:
        for step in range(1, 5):
            alerting.deliver_due(now + step * 10 * MINUTE)
    finally:
        hook.stop()
    assert [r.body["status"] for r in hook.requests] == ["firing", "resolved"]


def test_dead_letter_after_max_age_with_an_injected_clock(store: EventStore) -> None:
    hook = Receiver()  # never up
    alerting = alerting_for(store, hook.url, max_age="1h")
    alerting.evaluate([status(slo(), page=1)], T0)
    now = T0
    while now < T0 + timedelta(minutes=59):
        assert alerting.deliver_due(now)["dead"] == 0
        now += 7 * MINUTE
    assert alerting.deliver_due(T0 + timedelta(minutes=61)) == {
        "attempted": 0, "delivered": 0, "retrying": 0, "dead": 1,
    }  # fmt: skip
    [dead] = alerting.dead_letters()
    assert dead["attempts"] >= 8 and "cannot connect" in dead["last_error"]
    assert dead["last_error"].endswith("undelivered after max_age (1:00:00)")
    assert dead["payload"]["status"] == "firing"
    assert alerting.outbox_summary()["dead"] == 1
    assert alerting.deliver_due(T0 + timedelta(hours=5))["attempted"] == 0  # kept, not retried


def test_a_4xx_is_dead_at_once_and_redirects_are_not_followed(store: EventStore) -> None:
    with receiver(mode="refuse") as hook:
        alerting = alerting_for(store, hook.url)
        alerting.evaluate([status(slo("a"), page=1)], T0)
        assert alerting.deliver_due(T0)["dead"] == 1
        hook.mode = "redirect"
        alerting.evaluate([status(slo("a"), page=1), status(slo("b"), page=1)], T0 + MINUTE)
        assert alerting.deliver_due(T0 + MINUTE)["dead"] == 1
    assert len(hook.requests) == 2  # no request went to the redirect's target
    errors = sorted(d["last_error"] for d in alerting.dead_letters())
    assert errors[0].startswith("HTTP 302") and errors[1].startswith("HTTP 400: busy")


def test_the_address_is_checked_again_at_send_time(store: EventStore) -> None:
    with receiver() as hook:
        answers = {"hooks.test": ["127.0.0.1"]}
        resolver = lambda host, port: answers[host]  # noqa: E731
        url = f"http://hooks.test:{hook.port}"
        settings = AlertingSettings.from_mapping(
            {"webhooks": [{"url": url + "/hook", "name": "hook"}]}, resolver=resolver
        )
        alerting = Alerting(store, settings, resolver=resolver, rng=random.Random(0))
        alerting.evaluate([status(slo("a"), page=1)], T0)
        answers["hooks.test"] = ["169.254.169.254"]  # DNS changed since the config loaded
        assert alerting.deliver_due(T0)["retrying"] == 1
        assert hook.requests == []  # nothing was sent
        [row] = outbox(store)
        assert row["last_error"].startswith("refused: hooks.test resolves to 169.254.169.254")
        answers["hooks.test"] = ["127.0.0.1"]
        assert alerting.deliver_due(T0 + 10 * MINUTE)["delivered"] == 1
    # The request went to the checked address, with the URL's host as Host.
    assert hook.requests[0].headers["Host"] == f"hooks.test:{hook.port}"


def test_a_refused_address_in_the_allow_list_is_sent(store: EventStore) -> None:
    resolver = lambda host, port: ["10.0.0.9"]  # noqa: E731
    sent: list[Outbound] = []
    settings = AlertingSettings.from_mapping(
        {"webhooks": [{"url": "http://relay.internal/h", "name": "hook"}],
         "allow_private": ["10.0.0.0/24"]},
        resolver=resolver,
    )  # fmt: skip
    alerting = Alerting(
        store, settings, resolver=resolver, sender=lambda r: sent.append(r) or Reply(204)
    )
    alerting.evaluate([status(slo(), page=1)], T0)
    assert alerting.deliver_due(T0)["delivered"] == 1
    assert sent[0].addresses == ("10.0.0.9",)


def test_a_removed_target_keeps_its_rows_until_they_are_dead_lettered(store: EventStore) -> None:
    with receiver() as hook:
        alerting = alerting_for(store, hook.url)
        alerting.evaluate([status(slo(), page=1)], T0)
        later = Alerting(store, AlertingSettings(), rng=random.Random(0))
        assert later.deliver_due(T0)["retrying"] == 1
        assert "no longer configured" in outbox(store)[0]["last_error"]
        assert later.deliver_due(T0 + timedelta(days=2))["dead"] == 1


def test_the_thread_delivers_soon_after_an_evaluation(store: EventStore) -> None:
    with receiver() as hook:
        alerting = alerting_for(store, hook.url).start()
        try:
            now = datetime.now(UTC).replace(second=0, microsecond=0)
            alerting.evaluate([status(slo(), page=1)], now)
            wait_for(lambda: alerting.outbox_summary()["delivered"] == 1, timeout=10)
        finally:
            alerting.stop()
    assert len(hook.accepted) == 1
    assert alerting.worker.last is not None and "error" not in alerting.worker.last


def test_backoff_is_exponential_with_full_jitter_and_capped() -> None:
    rng = random.Random(3)
    for failures in range(1, 15):
        ceiling = min(300.0, 2.0 ** (failures - 1))
        draws = [backoff(failures, rng) for _ in range(200)]
        assert all(0.0 <= d <= ceiling for d in draws)
        assert max(draws) > 0.8 * ceiling  # full jitter spans the range
    assert backoff(10_000, rng) <= 300.0


def test_the_http_sender_reports_failures_instead_of_raising() -> None:
    sender = HttpSender()
    try:
        reply = sender(Outbound("http://127.0.0.1:9/x", b"{}", {}, 0.5, ("127.0.0.1",)))
        assert reply.status is None and "cannot connect" in (reply.error or "")
        with receiver(mode="error") as hook:
            reply = sender(Outbound(hook.url + "/x", b"{}", {}, 2.0, ("127.0.0.1",)))
        assert (reply.status, reply.error) == (500, "HTTP 500: busy")
    finally:
        sender.close()
