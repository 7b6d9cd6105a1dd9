"""The alert tables of the event store (schema 8, :mod:`xebench.store.migrations`): state,
history, and the outbox of notifications.

- ``alerts``: one row per alert key (``tenant/slo/severity``) with its current
  state, timestamps, labels, annotations and evidence (JSON text);
- ``alert_history``: one row per state transition (from, to, at, the notices);
- ``alert_outbox``: one row per notification and target: the body to send,
  its ``idempotency_key`` (stable across retries: the receiver's dedup key),
  ``attempts``, ``next_attempt_at``, and ``delivered_at`` or ``dead_at`` (with
  ``last_error`` / ``last_status``) once settled. ``superseded_by`` marks an
  Alertmanager post that a newer post of the same alert replaced before it
  went out (Alertmanager keeps state: only the newest matters).

:func:`write_transitions` writes a state change, its history row and its outbox
rows with the caller's connection: the caller runs it inside one transaction
(``EventStore.write_transaction``), so a crash leaves both or neither. Reads
(:func:`alert_states`, :func:`outbox_summary`, :func:`dead_letters`) use the
store's read cursors.

Example:
    >>> from xebench.store import EventStore
    >>> outbox_summary(EventStore(":memory:"))
    {'total': 0, 'pending': 0, 'delivered': 0, 'dead': 0, 'superseded': 0, \
'oldest_pending': None, 'targets': {}}
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb

from .lifecycle import ACTIVE, Alert, Transition, iso, to_json

__all__ = [
    "OutboxEntry",
    "OutboxRow",
    "alert_states",
    "dead_letter_expired",
    "dead_letters",
    "due_entries",
    "enqueue",
    "load_alerts",
    "next_due",
    "outbox_rows",
    "outbox_summary",
    "prune_outbox",
    "record_attempt",
    "write_transitions",
]

_ALERT_COLUMNS = (
    "key", "tenant", "slo", "severity", "state", "since", "evaluated_at", "holding_since",
    "fired_at", "resolved_at", "last_notified", "last_refreshed", "notified", "fingerprint",
    "labels", "annotations", "evidence",
)  # fmt: skip
_PENDING = "delivered_at IS NULL AND dead_at IS NULL AND superseded_by IS NULL"


@dataclass(frozen=True)
class OutboxRow:
    """A notification to enqueue: ``payload`` (JSON text) for ``target`` about alert ``key``.

    ``replaces_older``: earlier undelivered rows of the same key and target are
    superseded by this one (a target that keeps state, such as Alertmanager).
    """

    key: str
    target: str
    kind: str
    payload: str
    idempotency_key: str
    created_at: datetime
    replaces_older: bool = False


@dataclass(frozen=True)
class OutboxEntry:
    """An enqueued notification as the delivery reads it."""

    id: int
    key: str
    target: str
    kind: str
    payload: str
    idempotency_key: str
    created_at: datetime
    attempts: int
    next_attempt_at: datetime


def _utc(moment: datetime | None) -> datetime | None:
    return None if moment is None else moment.astimezone(UTC)


def _alert(row: Sequence[Any]) -> Alert:
    values = dict(zip(_ALERT_COLUMNS, row, strict=True))
    return Alert(
        tenant=values["tenant"],
        slo=values["slo"],
        severity=values["severity"],
        state=values["state"],
        since=_utc(values["since"]),  # type: ignore[arg-type]
        evaluated_at=_utc(values["evaluated_at"]),  # type: ignore[arg-type]
        labels=json.loads(values["labels"]),
        annotations=json.loads(values["annotations"]),
        evidence=json.loads(values["evidence"]),
        holding_since=_utc(values["holding_since"]),
        fired_at=_utc(values["fired_at"]),
        resolved_at=_utc(values["resolved_at"]),
        last_notified=_utc(values["last_notified"]),
        last_refreshed=_utc(values["last_refreshed"]),
        notified=bool(values["notified"]),
    )


def load_alerts(con: duckdb.DuckDBPyConnection) -> dict[str, Alert]:
    """Every stored alert by key (read inside the writing transaction: what it updates).

    Example:
        >>> from xebench.store import EventStore
        >>> EventStore(":memory:").write_transaction(load_alerts)
        {}
    """
    rows = con.execute(f"SELECT {', '.join(_ALERT_COLUMNS)} FROM alerts").fetchall()
    return {row[0]: _alert(row) for row in rows}


def _alert_values(alert: Alert) -> list[Any]:
    return [
        alert.key, alert.tenant, alert.slo, alert.severity, alert.state, alert.since,
        alert.evaluated_at, alert.holding_since, alert.fired_at, alert.resolved_at,
        alert.last_notified, alert.last_refreshed, alert.notified, alert.fingerprint,
        to_json(alert.labels), to_json(alert.annotations), to_json(alert.evidence),
    ]  # fmt: skip


def write_transitions(
    con: duckdb.DuckDBPyConnection,
    transitions: Iterable[Transition],
    rows: Iterable[OutboxRow] = (),
) -> list[int]:
    """Store each transition's alert state (and, when the state changed, a history row),
    then enqueue ``rows``; the ids of the rows enqueued (a row whose idempotency key is
    already stored is not enqueued twice). Call it inside one transaction.

    Example:
        >>> from xebench.store import EventStore
        >>> from xebench.alerting.lifecycle import Alert, Transition
        >>> at = datetime(2026, 1, 1, tzinfo=UTC)
        >>> firing = Transition(None, Alert("t", "s", "page", "firing", at, at), ("firing",))
        >>> row = OutboxRow("t/s/page", "hook", "firing", "{}", "k1", at)
        >>> store = EventStore(":memory:")
        >>> store.write_transaction(lambda con: write_transitions(con, [firing], [row, row]))
        [1]
        >>> outbox_summary(store)["pending"], [a["state"] for a in alert_states(store, "t", at=at)]
        (1, ['firing'])
    """
    placeholders = ", ".join("?" for _ in _ALERT_COLUMNS)
    updates = ", ".join(f"{c} = excluded.{c}" for c in _ALERT_COLUMNS[1:])
    for transition in transitions:
        after = transition.after
        con.execute(
            f"INSERT INTO alerts ({', '.join(_ALERT_COLUMNS)}) VALUES ({placeholders}) "
            f"ON CONFLICT (key) DO UPDATE SET {updates}",
            _alert_values(after),
        )
        if transition.changed:
            con.execute(
                "INSERT INTO alert_history VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    after.key, after.tenant, after.slo, after.severity, transition.from_state,
                    after.state, after.evaluated_at, after.fingerprint, list(transition.notices),
                    to_json(after.evidence),
                ],
            )  # fmt: skip
    return enqueue(con, rows)


def enqueue(con: duckdb.DuckDBPyConnection, rows: Iterable[OutboxRow]) -> list[int]:
    """Add ``rows`` to the outbox (inside the caller's transaction); the ids added. A row
    whose idempotency key is stored already is skipped; a ``replaces_older`` row
    supersedes the pending rows of its alert and target enqueued before it.

    Example:
        >>> from xebench.store import EventStore
        >>> at = datetime(2026, 1, 1, tzinfo=UTC)
        >>> rows = [OutboxRow("t/s/page", "am", kind, "[]", f"k-{kind}", at, replaces_older=True)
        ...         for kind in ("firing", "refresh")]
        >>> store = EventStore(":memory:")
        >>> store.write_transaction(lambda con: enqueue(con, rows))
        [1, 2]
        >>> outbox_summary(store)["superseded"], outbox_summary(store)["pending"]
        (1, 1)
    """
    ids = []
    for row in rows:
        found = con.execute(
            "INSERT INTO alert_outbox (key, target, kind, payload, idempotency_key, created_at,"
            " next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (idempotency_key) DO NOTHING RETURNING id",
            [
                row.key, row.target, row.kind, row.payload, row.idempotency_key,
                row.created_at, row.created_at,
            ],
        ).fetchall()  # fmt: skip
        if not found:
            continue
        ids.append(int(found[0][0]))
        if row.replaces_older:
            con.execute(
                f"UPDATE alert_outbox SET superseded_by = ? WHERE key = ? AND target = ? "
                f"AND id < ? AND {_PENDING}",
                [ids[-1], row.key, row.target, ids[-1]],
            )
    return ids


def outbox_rows(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """Every outbox row as a dict, oldest first (tests, audits).

    Example:
        >>> from xebench.store import EventStore
        >>> EventStore(":memory:").write_transaction(outbox_rows)
        []
    """
    cursor = con.execute("SELECT * FROM alert_outbox ORDER BY id")
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def due_entries(
    con: duckdb.DuckDBPyConnection, now: datetime, limit: int = 100
) -> list[OutboxEntry]:
    """The notifications to send at ``now``: of each (alert, target), only the oldest
    pending one (so a target sees an alert's notifications in order: never a resolve
    before its firing), when its ``next_attempt_at`` has come; soonest first.

    Example:
        >>> from xebench.store import EventStore
        >>> with EventStore(":memory:").cursor() as cursor:
        ...     due_entries(cursor, datetime(2026, 1, 1, tzinfo=UTC))
        []
    """
    rows = con.execute(
        "SELECT o.id, o.key, o.target, o.kind, o.payload, o.idempotency_key, o.created_at,"
        " o.attempts, o.next_attempt_at FROM alert_outbox o JOIN ("
        f"  SELECT min(id) AS id FROM alert_outbox WHERE {_PENDING} GROUP BY key, target"
        ") AS head USING (id) WHERE o.next_attempt_at <= ? "
        "ORDER BY o.next_attempt_at, o.id LIMIT ?",
        [now, limit],
    ).fetchall()
    return [
        OutboxEntry(
            int(r[0]),
            r[1],
            r[2],
            r[3],
            r[4],
            r[5],
            _utc(r[6]),
            int(r[7]),
            _utc(r[8]),  # type: ignore[arg-type]
        )
        for r in rows
    ]


def next_due(con: duckdb.DuckDBPyConnection) -> datetime | None:
    """When the next pending notification is due (None: nothing pending).

    Example:
        >>> from xebench.store import EventStore
        >>> with EventStore(":memory:").cursor() as cursor:
        ...     next_due(cursor) is None
        True
    """
    row = con.execute(f"SELECT min(next_attempt_at) FROM alert_outbox WHERE {_PENDING}").fetchone()
    return _utc(row[0]) if row else None


def record_attempt(
    con: duckdb.DuckDBPyConnection,
    entry_id: int,
    *,
    status: int | None,
    error: str | None,
    delivered_at: datetime | None = None,
    dead_at: datetime | None = None,
    next_attempt_at: datetime | None = None,
) -> None:
    """Count one attempt of outbox row ``entry_id`` and its outcome: delivered, dead, or
    to be retried at ``next_attempt_at``.

    Example:
        >>> from xebench.store import EventStore
        >>> at = datetime(2026, 1, 1, tzinfo=UTC)
        >>> store = EventStore(":memory:")
        >>> [i] = store.write_transaction(lambda con: write_transitions(
        ...     con, [], [OutboxRow("t/s/page", "hook", "firing", "{}", "k1", at)]))
        >>> store.write_transaction(lambda con: record_attempt(
        ...     con, i, status=200, error=None, delivered_at=at))
        >>> outbox_summary(store)["delivered"]
        1
    """
    con.execute(
        "UPDATE alert_outbox SET attempts = attempts + 1, last_status = ?, last_error = ?,"
        " delivered_at = coalesce(?, delivered_at), dead_at = coalesce(?, dead_at),"
        " next_attempt_at = coalesce(?, next_attempt_at) WHERE id = ?",
        [status, error, delivered_at, dead_at, next_attempt_at, entry_id],
    )


def dead_letter_expired(
    con: duckdb.DuckDBPyConnection, now: datetime, max_age: timedelta
) -> list[int]:
    """Dead-letter the pending notifications enqueued more than ``max_age`` before
    ``now`` (kept, with why; never deleted); their ids.

    Example:
        >>> from xebench.store import EventStore
        >>> at = datetime(2026, 1, 1, tzinfo=UTC)
        >>> store = EventStore(":memory:")
        >>> _ = store.write_transaction(lambda con: write_transitions(
        ...     con, [], [OutboxRow("t/s/page", "hook", "firing", "{}", "k1", at)]))
        >>> store.write_transaction(lambda con: dead_letter_expired(
        ...     con, at + timedelta(days=2), timedelta(days=1)))
        [1]
        >>> dead_letters(store)[0]["last_error"]
        'undelivered after max_age (1 day, 0:00:00)'
    """
    note = f"undelivered after max_age ({max_age})"
    (expired,) = con.execute(
        f"SELECT count(*) FROM alert_outbox WHERE {_PENDING} AND created_at < ?",
        [now - max_age],
    ).fetchone()
    if not expired:  # the common case: no write at all
        return []
    rows = con.execute(
        "UPDATE alert_outbox SET dead_at = ?, last_error = CASE WHEN last_error IS NULL"
        " THEN ? ELSE last_error || '; ' || ? END"
        f" WHERE {_PENDING} AND created_at < ? RETURNING id",
        [now, note, note, now - max_age],
    ).fetchall()
    return sorted(int(r[0]) for r in rows)


def prune_outbox(con: duckdb.DuckDBPyConnection, before: datetime) -> int:
    """Delete the delivered and superseded outbox rows created before ``before`` (dead
    letters stay until someone looks at them); the rows deleted.

    Example:
        >>> from xebench.store import EventStore
        >>> at = datetime(2026, 1, 1, tzinfo=UTC)
        >>> store = EventStore(":memory:")
        >>> [i] = store.write_transaction(lambda con: enqueue(
        ...     con, [OutboxRow("t/s/page", "hook", "firing", "{}", "k1", at)]))
        >>> store.write_transaction(lambda con: record_attempt(
        ...     con, i, status=200, error=None, delivered_at=at))
        >>> store.write_transaction(lambda con: prune_outbox(con, at + timedelta(days=31)))
        1
    """
    rows = con.execute(
        "DELETE FROM alert_outbox WHERE created_at < ? AND dead_at IS NULL"
        " AND (delivered_at IS NOT NULL OR superseded_by IS NOT NULL) RETURNING id",
        [before],
    ).fetchall()
    return len(rows)


def alert_states(
    store: Any,
    tenant: str | None = None,
    *,
    at: datetime | None = None,
    recent: timedelta = timedelta(hours=24),
) -> list[dict[str, Any]]:
    """The alerts of ``tenant`` (None: every tenant) that are pending, firing or suppressed,
    or resolved less than ``recent`` before ``at`` (default: now), as JSON
    (:meth:`~xebench.alerting.lifecycle.Alert.to_dict`), page first, by SLO.

    Example:
        >>> from xebench.store import EventStore
        >>> alert_states(EventStore(":memory:"), "default")
        []
    """
    with store.cursor() as cursor:
        rows = cursor.execute(
            f"SELECT {', '.join(_ALERT_COLUMNS)} FROM alerts"
            " WHERE (? IS NULL OR tenant = ?) AND state <> 'inactive'",
            [tenant, tenant],
        ).fetchall()
    alerts = [_alert(row) for row in rows]
    horizon = (at or datetime.now(UTC)) - recent
    keep = [a for a in alerts if a.state in ACTIVE or a.since >= horizon]  # or recently resolved
    keep.sort(key=lambda a: (a.tenant, a.severity != "page", a.slo, a.severity))
    return [alert.to_dict() for alert in keep]


def outbox_summary(store: Any) -> dict[str, Any]:
    """Notifications ``total``, ``pending``, ``delivered``, ``dead`` (dead letters: kept,
    never dropped), ``superseded``, the ``oldest_pending`` creation time, and the same
    counts per target (with ``last_error`` of its latest failure).

    Example:
        >>> from xebench.store import EventStore
        >>> outbox_summary(EventStore(":memory:"))["dead"]
        0
    """
    with store.cursor() as cursor:
        rows = cursor.execute(
            "SELECT target, count(*),"
            f" count(*) FILTER (WHERE {_PENDING}),"
            " count(*) FILTER (WHERE delivered_at IS NOT NULL),"
            " count(*) FILTER (WHERE delivered_at IS NULL AND dead_at IS NOT NULL),"
            " count(*) FILTER (WHERE delivered_at IS NULL AND dead_at IS NULL"
            "                  AND superseded_by IS NOT NULL),"
            f" min(created_at) FILTER (WHERE {_PENDING}),"
            " arg_max(last_error, id) FILTER (WHERE last_error IS NOT NULL)"
            " FROM alert_outbox GROUP BY target ORDER BY target"
        ).fetchall()
    names = ("total", "pending", "delivered", "dead", "superseded")
    targets = {}
    for target, *counts, oldest, error in rows:
        targets[target] = {
            **dict(zip(names, map(int, counts), strict=True)),
            "oldest_pending": iso(_utc(oldest)),
            "last_error": error,
        }
    summary: dict[str, Any] = {n: sum(t[n] for t in targets.values()) for n in names}
    oldest_all = [t["oldest_pending"] for t in targets.values() if t["oldest_pending"]]
    summary["oldest_pending"] = min(oldest_all) if oldest_all else None
    summary["targets"] = targets
    return summary


def dead_letters(store: Any, limit: int = 100) -> list[dict[str, Any]]:
    """The dead-lettered notifications, newest first: ``id``, ``key``, ``target``,
    ``kind``, ``idempotency_key``, ``created_at``, ``dead_at``, ``attempts``,
    ``last_status``, ``last_error`` and the ``payload`` (JSON) -- enough to resend by hand.

    Example:
        >>> from xebench.store import EventStore
        >>> dead_letters(EventStore(":memory:"))
        []
    """
    with store.cursor() as cursor:
        rows = cursor.execute(
            "SELECT id, key, target, kind, idempotency_key, created_at, dead_at, attempts,"
            " last_status, last_error, payload FROM alert_outbox"
            " WHERE dead_at IS NOT NULL AND delivered_at IS NULL ORDER BY dead_at DESC, id DESC"
            " LIMIT ?",
            [limit],
        ).fetchall()
    names = (
        "id", "key", "target", "kind", "idempotency_key", "created_at", "dead_at", "attempts",
        "last_status", "last_error", "payload",
    )  # fmt: skip
    out = []
    for row in rows:
        entry = dict(zip(names, row, strict=True))
        entry["created_at"] = iso(_utc(entry["created_at"]))
        entry["dead_at"] = iso(_utc(entry["dead_at"]))
        entry["payload"] = json.loads(entry["payload"])
        out.append(entry)
    return out
