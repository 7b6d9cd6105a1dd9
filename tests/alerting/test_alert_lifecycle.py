"""The alert lifecycle on replayed minute-by-minute timelines: pending_for, repeats,
resolves, maintenance windows, the dedup of two page conditions, and what the store
keeps across a restart."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from alerting_helpers import MINUTE, T0, slo, status

from xebench.alerting import Alerting, AlertingSettings, Reply
from xebench.alerting.lifecycle import ALERTNAME, Policy, fingerprint, observations, step
from xebench.store import EventStore

HOUR = timedelta(hours=1)


@pytest.fixture
def store() -> Iterator[EventStore]:
    with EventStore(":memory:") as opened:
        yield opened


def settings(**extra: Any) -> AlertingSettings:
    raw = {"webhooks": [{"url": "http://127.0.0.1:9/hook", "name": "hook"}], **extra}
    return AlertingSettings.from_mapping(raw)


def replay(
    alerting: Alerting, timeline: Sequence[Sequence[SimpleNamespace]], start: Any = T0
) -> list[list[tuple[str, str, str, tuple[str, ...]]]]:
    """Evaluate one minute per entry; per minute, (slo, severity, state, notices) of each
    transition written."""
    out = []
    for minute, statuses in enumerate(timeline):
        changes = alerting.evaluate(statuses, start + minute * MINUTE)
        out.append([(c.after.slo, c.after.severity, c.after.state, c.notices) for c in changes])
    return out


def page_states(store: EventStore) -> list[tuple[str, str]]:
    with store.cursor() as cursor:
        return cursor.execute(
            "SELECT from_state, to_state FROM alert_history WHERE severity = 'page' "
            "ORDER BY changed_at"
        ).fetchall()


def outbox(store: EventStore) -> list[tuple[str, str, str]]:
    with store.cursor() as cursor:
        return cursor.execute("SELECT target, kind, key FROM alert_outbox ORDER BY id").fetchall()


def test_pending_for_then_firing_repeats_and_resolve(store: EventStore) -> None:
    s = slo()
    alerting = Alerting(store, settings(pending_for="2m", repeat_interval="10m"))
    burning, calm = status(s, page=1), status(s, page=0)
    minutes = replay(alerting, [[burning]] * 16 + [[calm]] * 2)
    pages = [[c for c in m if c[1] == "page"] for m in minutes]
    assert pages[0] == [("fraud-ll", "page", "pending", ())]
    assert pages[1] == [("fraud-ll", "page", "pending", ())]  # held 1 min < 2 min
    assert pages[2] == [("fraud-ll", "page", "firing", ("firing",))]  # held 2 min
    assert all(p == [("fraud-ll", "page", "firing", ())] for p in pages[3:12])
    assert pages[12] == [("fraud-ll", "page", "firing", ("repeat",))]  # 10 min after firing
    assert pages[16] == [("fraud-ll", "page", "resolved", ("resolved",))]
    assert pages[17] == []  # resolved and quiet: nothing written
    assert page_states(store) == [
        ("inactive", "pending"), ("pending", "firing"), ("firing", "resolved"),
    ]  # fmt: skip
    assert [kind for _, kind, _ in outbox(store)] == ["firing", "repeat", "resolved"]
    [alert] = alerting.states("default", at=T0 + HOUR)
    assert alert["state"] == "resolved"
    assert alert["since"] == (T0 + 16 * MINUTE).isoformat().replace("+00:00", "Z")
    assert alert["fired_at"] == (T0 + 2 * MINUTE).isoformat().replace("+00:00", "Z")
    assert alert["last_notified"] == alert["since"]


def test_a_pending_alert_that_stops_holding_goes_back_to_inactive_silently(
    store: EventStore,
) -> None:
    s = slo()
    alerting = Alerting(store, settings(pending_for="5m"))
    replay(alerting, [[status(s, page=1)]] * 3 + [[status(s)]])
    assert page_states(store) == [("inactive", "pending"), ("pending", "inactive")]
    assert outbox(store) == []
    assert alerting.states("default", at=T0 + HOUR) == []  # inactive is not shown


def test_pending_for_zero_fires_at_once(store: EventStore) -> None:
    alerting = Alerting(store, settings())
    [[change]] = replay(alerting, [[status(slo(), page=1)]])
    assert change[2:] == ("firing", ("firing",))


def test_maintenance_suppresses_then_fires_when_it_ends_if_it_still_holds(
    store: EventStore,
) -> None:
    s = slo()
    window = {"from": (T0 + 5 * MINUTE).isoformat(), "to": (T0 + 10 * MINUTE).isoformat(),
              "models": ["fraud"], "reason": "migration"}  # fmt: skip
    alerting = Alerting(store, settings(maintenance=[window]))
    burning, calm = status(s, page=1), status(s)
    # Holds from minute 3 to 14: fires at 3, suppressed 5..9, fires again at 10.
    pages = [
        [c[2:] for c in m if c[1] == "page"]
        for m in replay(alerting, [[calm]] * 3 + [[burning]] * 12 + [[calm]])
    ]
    assert pages[3] == [("firing", ("firing",))]
    assert pages[4] == [("firing", ())]
    assert pages[5:10] == [[("suppressed", ())]] * 5  # shown, never notified
    assert pages[10] == [("firing", ("firing",))]  # the window ended, it still holds
    assert pages[15] == [("resolved", ("resolved",))]
    assert [kind for _, kind, _ in outbox(store)] == ["firing", "firing", "resolved"]
    assert alerting.suppressed(s, T0 + 7 * MINUTE) and not alerting.suppressed(s, T0 + 10 * MINUTE)


def test_an_alert_born_and_gone_inside_a_window_never_notifies(store: EventStore) -> None:
    s = slo()
    window = {"from": T0.isoformat(), "to": (T0 + 60 * MINUTE).isoformat()}
    alerting = Alerting(store, settings(maintenance=[window]))
    minutes = replay(alerting, [[status(s, page=2, ticket=True)]] * 3 + [[status(s)]])
    assert {c[2] for c in minutes[0]} == {"suppressed"}
    assert {c[2:] for c in minutes[3]} == {("resolved", ())}  # nothing was told: no resolve
    assert outbox(store) == []
    states = alerting.states("default", at=T0 + HOUR)
    assert [a["state"] for a in states] == ["resolved", "resolved"]


def test_a_resolve_inside_a_window_is_still_sent_when_the_firing_was(store: EventStore) -> None:
    # No receiver may be left believing an alert fires: the resolve goes out.
    s = slo()
    window = {"from": (T0 + 2 * MINUTE).isoformat(), "to": (T0 + 60 * MINUTE).isoformat()}
    alerting = Alerting(store, settings(maintenance=[window]))
    minutes = replay(alerting, [[status(s, page=1)]] * 4 + [[status(s)]])
    pages = [[c[2:] for c in m if c[1] == "page"] for m in minutes]
    assert pages[0] == [("firing", ("firing",))]
    assert pages[2] == [("suppressed", ())]
    assert pages[4] == [("resolved", ("resolved",))]


def test_a_window_that_ends_before_pending_for_has_passed_goes_to_pending(
    store: EventStore,
) -> None:
    s = slo()
    window = {"from": T0.isoformat(), "to": (T0 + 2 * MINUTE).isoformat()}
    alerting = Alerting(store, settings(maintenance=[window], pending_for="5m"))
    pages = [[c[2:] for c in m] for m in replay(alerting, [[status(s, page=1)]] * 6)]
    # Holding since minute 0 (through the window): pending at 2..4, fires at 5.
    assert [p[0][0] for p in pages if p] == ["suppressed"] * 2 + ["pending"] * 3 + ["firing"]
    assert pages[5][0] == ("firing", ("firing",))


def test_two_page_conditions_are_one_deduplicated_alert(store: EventStore) -> None:
    s = slo()
    alerting = Alerting(store, settings())
    minutes = replay(
        alerting,
        [[status(s, page=1)], [status(s, page=2)], [status(s, page=2, ticket=True)],
         [status(s, page=1, ticket=True)]],
    )  # fmt: skip
    assert minutes[0] == [("fraud-ll", "page", "firing", ("firing",))]
    assert minutes[1] == [("fraud-ll", "page", "firing", ())]  # the second condition: no news
    assert minutes[2] == [
        ("fraud-ll", "page", "firing", ()), ("fraud-ll", "ticket", "firing", ("firing",)),
    ]  # fmt: skip
    by_severity = {a["severity"]: a for a in alerting.states("default", at=T0 + HOUR)}
    assert list(by_severity) == ["page", "ticket"]
    page = by_severity["page"]
    assert [c["name"] for c in page["evidence"]["conditions"]] == ["page-1h-5m"]  # minute 3
    with store.cursor() as cursor:
        ((evidence,),) = cursor.execute(
            "SELECT evidence FROM alert_history WHERE severity = 'page'"
        ).fetchall()
    assert [c["name"] for c in json.loads(evidence)["conditions"]] == ["page-1h-5m"]
    assert len(outbox(store)) == 2  # one page, one ticket notification


def test_the_dedup_evidence_lists_both_page_conditions() -> None:
    s = slo()
    [page, ticket] = observations(s, T0, status(s, page=2).conditions, status(s).evidence)
    assert page.holds and not ticket.holds
    assert [c["name"] for c in page.evidence["conditions"]] == ["page-1h-5m", "page-6h-30m"]
    assert (
        "page-1h-5m: 20x over 1h, 30x over 5m (threshold 14.4x)" in page.annotations["description"]
    )


def test_labels_annotations_and_a_stable_fingerprint() -> None:
    s = slo(version="v7", cohort="region:eu", labels={"team": "risk"}, tenant="acme")
    [page, _] = observations(s, T0, status(s, page=1).conditions, status(s).evidence)
    assert page.labels == {
        "alertname": ALERTNAME, "slo": "fraud-ll", "model": "fraud", "version": "v7",
        "cohort": "region:eu", "severity": "page", "tenant": "acme", "team": "risk",
    }  # fmt: skip
    assert set(page.annotations) == {"summary", "description", "runbook_url", "evidence"}
    assert page.annotations["runbook_url"] == "https://runbooks.example/fraud"
    evidence = json.loads(page.annotations["evidence"])
    assert evidence["sli_value"] == 0.41 and evidence["versions"] == ["v7"]
    assert evidence["burn_rates"]["1h"] == 20.0
    # The fingerprint hashes the labels only: the same however the evidence changes.
    [again, _] = observations(s, T0, status(s, page=2, sli_value=0.9).conditions, {})
    assert fingerprint(page.labels) == fingerprint(again.labels)
    assert fingerprint({**page.labels, "team": "ops"}) != fingerprint(page.labels)


def test_a_replayed_minute_changes_nothing(store: EventStore) -> None:
    s = slo()
    alerting = Alerting(store, settings())
    assert alerting.evaluate([status(s, page=1)], T0)
    assert alerting.evaluate([status(s, page=1)], T0) == []
    assert alerting.evaluate([status(s)], T0 - MINUTE) == []  # older than the last evaluation
    assert len(outbox(store)) == 1


def test_an_slo_removed_from_the_configuration_resolves(store: EventStore) -> None:
    a, b = slo("a"), slo("b")
    alerting = Alerting(store, settings())
    alerting.evaluate([status(a, page=1), status(b, page=1)], T0)
    changes = alerting.evaluate([status(a, page=1)], T0 + MINUTE)
    assert [(c.after.slo, c.after.state, c.notices) for c in changes] == [
        ("a", "firing", ()), ("b", "resolved", ("resolved",)),
    ]  # fmt: skip
    changes = alerting.evaluate([status(a, page=1)], T0 + 2 * MINUTE, complete=False)
    assert [c.after.slo for c in changes] == ["a"]


def test_routing_by_severity_and_resolve_notify(store: EventStore) -> None:
    raw = {
        "webhooks": [
            {"url": "http://127.0.0.1:9/pages", "name": "pages", "severities": ["page"]},
            {"url": "http://127.0.0.1:9/all", "name": "all"},
        ],
        "resolve_notify": False,
    }
    alerting = Alerting(store, AlertingSettings.from_mapping(raw))
    s = slo()
    replay(alerting, [[status(s, page=1, ticket=True)], [status(s)]])
    assert sorted((target, kind, key.split("/")[-1]) for target, kind, key in outbox(store)) == [
        ("all", "firing", "page"), ("all", "firing", "ticket"), ("pages", "firing", "page"),
    ]  # fmt: skip
    # No resolve notification was sent, yet the alerts resolved.
    assert {a["state"] for a in alerting.states("default", at=T0 + HOUR)} == {"resolved"}


def test_alertmanager_gets_refreshes_and_always_the_resolve(store: EventStore) -> None:
    raw = {"alertmanager": {"url": "http://127.0.0.1:9093", "resend_interval": "2m"},
           "resolve_notify": False, "repeat_interval": "1h"}  # fmt: skip
    alerting = Alerting(store, AlertingSettings.from_mapping(raw))
    s = slo()
    replay(alerting, [[status(s, page=1)]] * 5 + [[status(s)]])
    assert [kind for _, kind, _ in outbox(store)] == ["firing", "refresh", "refresh", "resolved"]
    with store.cursor() as cursor:
        superseded = cursor.execute(
            "SELECT count(*) FROM alert_outbox WHERE superseded_by IS NOT NULL"
        ).fetchone()[0]
    assert superseded == 3  # nothing was delivered: only the newest post matters


def test_refresh_interval_in_the_pure_state_machine() -> None:
    s = slo()
    policy = Policy(repeat_interval=timedelta(minutes=10), refresh_interval=timedelta(minutes=3))
    alert, notices = None, []
    for minute in range(12):
        at = T0 + minute * MINUTE
        [page, _] = observations(s, at, status(s, page=1).conditions, {})
        change = step(alert, page, at, policy)
        assert change is not None
        alert = change.after
        notices.append(change.notices)
    assert [(i, n) for i, n in enumerate(notices) if n] == [
        (0, ("firing",)), (3, ("refresh",)), (6, ("refresh",)), (9, ("refresh",)),
        (10, ("repeat",)),
    ]  # fmt: skip


def test_state_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "alerts.duckdb"
    s = slo()
    with EventStore(path) as store:
        Alerting(store, settings(pending_for="2m")).evaluate([status(s, page=1)], T0)
    with EventStore(path) as store:
        alerting = Alerting(store, settings(pending_for="2m"))
        alerting.evaluate([status(s, page=1)], T0 + MINUTE)
        [change] = [
            c for c in alerting.evaluate([status(s, page=1)], T0 + 2 * MINUTE)
            if c.after.severity == "page"
        ]  # fmt: skip
        assert (change.from_state, change.after.state, change.notices) == (
            "pending", "firing", ("firing",),
        )  # fmt: skip
        assert change.after.holding_since == T0


def test_offer_and_run_pending_apply_minutes_in_order(store: EventStore) -> None:
    s = slo()
    alerting = Alerting(store, settings(pending_for="1m"), sender=lambda r: Reply(200))
    for minute in range(3):
        alerting.offer([status(s, page=1)], T0 + minute * MINUTE)
    assert alerting.run_pending(store) == {"evaluations": 3, "transitions": 3}
    assert page_states(store) == [("inactive", "pending"), ("pending", "firing")]
    assert alerting.run_pending() == {"evaluations": 0, "transitions": 0}


def test_states_show_recent_resolves_only(store: EventStore) -> None:
    alerting = Alerting(store, settings())
    replay(alerting, [[status(slo(), page=1)], [status(slo())]])
    assert [a["state"] for a in alerting.states("default", at=T0 + HOUR)] == ["resolved"]
    assert alerting.states("default", at=T0 + 25 * HOUR) == []
    assert alerting.states("other", at=T0 + HOUR) == []
    assert alerting.states(None, at=T0 + HOUR)[0]["tenant"] == "default"


def test_prune_deletes_delivered_rows_and_keeps_dead_letters(store: EventStore) -> None:
    alerting = Alerting(store, settings(), sender=lambda r: Reply(200))
    replay(alerting, [[status(slo("a"), page=1)], [status(slo("a"))]])
    alerting.deliver_due(T0 + MINUTE)
    alerting.deliver_due(T0 + MINUTE)
    assert alerting.outbox_summary()["delivered"] == 2
    assert alerting.prune(T0 + 30 * 24 * HOUR) == 2
    assert alerting.outbox_summary()["total"] == 0
