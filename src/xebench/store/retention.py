"""Retention: delete the events older than a cutoff, and name the keys that left; and
the minute buckets older than theirs (the hourly twins keep that history).

A prediction goes when its event time is older than the cutoff, a label when
its ingest time is (then its pending row too). The deleted rows' fingerprints
that no remaining row still has are returned, for the in-memory indexes
(:meth:`xebench.store.writes.Writes.forget`) to drop. :class:`RetentionPolicy`
is what the service's ``retention:`` configures; :func:`plan` counts what it
would delete, :func:`delete_minutes_before` deletes the minute bucket rows
(every fold writes each minute row's hourly twin too, so windows over whole
hours read the same numbers afterwards).

Example:
    >>> from datetime import UTC
    >>> from xebench.store.migrations import migrate
    >>> con = duckdb.connect(":memory:"); _ = migrate(con, ":memory:")
    >>> delete_before(con, datetime(2026, 1, 1, tzinfo=UTC)).counts()
    {'predictions': 0, 'labels': 0, 'pending_labels': 0}
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

from .bucket_rollup import compact
from .bucket_schema import DAILY, HOURLY
from .connection import transaction
from .fingerprints import as_int64, sorted_unique

__all__ = [
    "MINUTE_TABLES",
    "Deleted",
    "RetentionPolicy",
    "delete_before",
    "delete_minutes_before",
    "plan",
    "roll_hours_before",
]

#: The minute bucket tables (their hourly twins are kept).
MINUTE_TABLES = tuple(HOURLY)
#: The hour bucket tables (rolled into their daily twins).
HOUR_TABLES = tuple(HOURLY.values())


@dataclass(frozen=True)
class RetentionPolicy:
    """How long the store keeps events and minute buckets (None: for ever).

    Attributes:
        events: predictions older than this (event time) go, labels older
            than this (ingest time) and their pending rows too.
        minutes: minute bucket rows older than this go (the hour buckets keep
            their statistics: windows and series by whole hours are unchanged;
            finer steps over that range find nothing).
        hours: hour bucket rows older than this (floored to the day) are rolled
            up into day rows and go: windows over whole days are unchanged,
            finer ones over that range find nothing.
        interval: how often the service applies the policy.

    Example:
        >>> policy = RetentionPolicy(events=timedelta(days=30), minutes=timedelta(days=7))
        >>> now = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)
        >>> [h.isoformat() for h in policy.horizons(now).values()]
        ['2026-01-30T12:30:00+00:00', '2026-02-22T12:00:00+00:00']
        >>> RetentionPolicy(hours=timedelta(days=90)).horizons(now)["hours"].isoformat()
        '2025-12-01T00:00:00+00:00'
    """

    events: timedelta | None = None
    minutes: timedelta | None = None
    hours: timedelta | None = None
    interval: timedelta = timedelta(hours=1)

    @property
    def active(self) -> bool:
        """Whether anything is ever deleted."""
        return any(x is not None for x in (self.events, self.minutes, self.hours))

    def horizons(self, now: datetime) -> dict[str, datetime]:
        """The cutoffs at ``now``: ``events``; ``minutes`` floored to the hour and
        ``hours`` to the day (an hour's minutes, a day's hours go together)."""
        out = {}
        if self.events is not None:
            out["events"] = now - self.events
        for name, span, unit in (("minutes", self.minutes, 3600), ("hours", self.hours, 86_400)):
            if span is not None:
                cut = (now - span).timestamp() // unit * unit
                out[name] = datetime.fromtimestamp(cut, UTC)
        return out


def plan(con: duckdb.DuckDBPyConnection, policy: RetentionPolicy, now: datetime) -> dict[str, Any]:
    """What ``policy`` would delete at ``now``: rows per table and the horizons (ISO 8601).

    Example:
        >>> from xebench.store.migrations import migrate
        >>> con = duckdb.connect(":memory:"); _ = migrate(con, ":memory:")
        >>> plan(con, RetentionPolicy(events=timedelta(days=1)), datetime(2026, 1, 2, tzinfo=UTC))
        {'horizons': {'events': '2026-01-01T00:00:00+00:00'}, 'delete': {'predictions': 0, \
'labels': 0, 'pending_labels': 0}}
    """
    horizons = policy.horizons(now)
    counts: dict[str, int] = {}
    if "events" in horizons:
        cutoff = horizons["events"]
        for table, column in (
            ("predictions", "event_time"),
            ("labels", "ingest_time"),
            ("pending_labels", "received_at"),
        ):
            (n,) = con.execute(
                f"SELECT count(*) FROM {table} WHERE {column} < ?", [cutoff]
            ).fetchone()
            counts[table] = int(n)
    for name, tables in (("minutes", MINUTE_TABLES), ("hours", HOUR_TABLES)):
        if name in horizons:
            for table in tables:
                (n,) = con.execute(
                    f"SELECT count(*) FROM {table} WHERE bucket < ?", [horizons[name]]
                ).fetchone()
                counts[table] = int(n)
    return {"horizons": {k: v.isoformat() for k, v in horizons.items()}, "delete": counts}


def delete_minutes_before(con: duckdb.DuckDBPyConnection, cutoff: datetime) -> dict[str, int]:
    """Delete, in the caller's transaction, the minute bucket rows older than ``cutoff``
    (give it on an hour: see :meth:`RetentionPolicy.horizons`); the rows deleted per table.

    Example:
        >>> from xebench.store.migrations import migrate
        >>> con = duckdb.connect(":memory:"); _ = migrate(con, ":memory:")
        >>> delete_minutes_before(con, datetime(2026, 1, 1, tzinfo=UTC))
        {'bucket_scores': 0, 'bucket_features': 0, 'bucket_tokens': 0}
    """
    out = {}
    for table in MINUTE_TABLES:
        [(n,)] = con.execute(f"DELETE FROM {table} WHERE bucket < ?", [cutoff]).fetchall()
        out[table] = int(n)
    return out


def roll_hours_before(con: duckdb.DuckDBPyConnection, cutoff: datetime) -> dict[str, int]:
    """Roll, in the caller's transaction, the hour bucket rows older than ``cutoff`` (a
    day boundary: :meth:`RetentionPolicy.horizons`) into day rows, and delete them;
    the hour rows rolled per table. Reads take whole days from the day tables
    before ``meta.hours_rolled_before`` (:func:`xebench.store.queries.bucket_rows`).

    The hour rows are copied with their bucket floored to the day, as delta rows,
    and :func:`~xebench.store.bucket_rollup.compact` merges each key's rows (the
    merge of statistics is exact), so a day row is the merge of its hours.

    Example:
        >>> from xebench.store.migrations import migrate
        >>> con = duckdb.connect(":memory:"); _ = migrate(con, ":memory:")
        >>> roll_hours_before(con, datetime(2026, 1, 1, tzinfo=UTC))
        {'bucket_scores_hour': 0, 'bucket_features_hour': 0, 'bucket_tokens_hour': 0}
        >>> con.execute("SELECT value FROM meta WHERE key = 'hours_rolled_before'").fetchall()
        [('2026-01-01T00:00:00+00:00',)]
    """
    out = {}
    for minute, hour in HOURLY.items():
        [(n,)] = con.execute(f"SELECT count(*) FROM {hour} WHERE bucket < ?", [cutoff]).fetchall()
        if n:
            con.execute(
                f"INSERT INTO {DAILY[minute]} SELECT * REPLACE ("
                "to_timestamp(epoch_us(bucket) // 86400000000 * 86400) AS bucket, true AS delta"
                f") FROM {hour} WHERE bucket < ?",
                [cutoff],
            ).fetchall()
            con.execute(f"DELETE FROM {hour} WHERE bucket < ?", [cutoff]).fetchall()
        out[hour] = int(n)
    if any(out.values()):
        compact(con)
    rows = con.execute("SELECT value FROM meta WHERE key = 'hours_rolled_before'").fetchall()
    if not rows or datetime.fromisoformat(rows[0][0]) < cutoff:
        con.execute(
            "INSERT OR REPLACE INTO meta VALUES ('hours_rolled_before', ?)", [cutoff.isoformat()]
        ).fetchall()
    return out


@dataclass(frozen=True)
class Deleted:
    """What one retention pass deleted.

    Attributes:
        predictions, labels: the number of rows deleted from each table.
        pending_labels: the pending rows deleted (those of deleted labels).
        fps, rfps, label_fps: the keys no remaining row has (to forget).

    Example:
        >>> none = np.empty(0, dtype=np.int64)
        >>> Deleted(2, 1, 0, none, none, none).counts()
        {'predictions': 2, 'labels': 1, 'pending_labels': 0}
    """

    predictions: int
    labels: int
    pending_labels: int
    fps: NDArray[np.int64]
    rfps: NDArray[np.int64]
    label_fps: NDArray[np.int64]

    def counts(self) -> dict[str, int]:
        """The rows deleted per table, as :meth:`EventStore.apply_retention` returns them."""
        return {
            "predictions": self.predictions,
            "labels": self.labels,
            "pending_labels": self.pending_labels,
        }


def delete_before(con: duckdb.DuckDBPyConnection, cutoff: datetime) -> Deleted:
    """Delete, in one transaction, the predictions and labels older than ``cutoff``.

    Example:
        >>> from datetime import UTC
    >>> from xebench.store.migrations import migrate
        >>> con = duckdb.connect(":memory:"); _ = migrate(con, ":memory:")
        >>> delete_before(con, datetime(2026, 1, 1, tzinfo=UTC)).fps.size
        0
    """
    with transaction(con):
        # SELECT then DELETE, not DELETE ... RETURNING: DuckDB keeps a RETURNING
        # result in memory, which outgrew a 256 MB limit at 5e6 rows.
        gone = con.execute(
            "SELECT fp, rfp FROM predictions WHERE event_time < ?", [cutoff]
        ).fetchnumpy()
        con.execute("DELETE FROM predictions WHERE event_time < ?", [cutoff])
        gone_labels = con.execute(
            "SELECT fp FROM labels WHERE ingest_time < ?", [cutoff]
        ).fetchnumpy()
        con.execute("DELETE FROM labels WHERE ingest_time < ?", [cutoff])
        # A pending row is received when its label is ingested (received_at is the
        # label's ingest_time), so these are exactly the rows of deleted labels.
        (pending,) = con.execute(
            "DELETE FROM pending_labels WHERE received_at < ?", [cutoff]
        ).fetchone()
        # A request's rfp stays while another model's prediction of it remains.
        return Deleted(
            predictions=int(gone["fp"].size),
            labels=int(gone_labels["fp"].size),
            pending_labels=int(pending),
            fps=_unused(con, "predictions", "fp", gone["fp"]),
            rfps=_unused(con, "predictions", "rfp", gone["rfp"]),
            label_fps=_unused(con, "labels", "fp", gone_labels["fp"]),
        )


def _unused(
    con: duckdb.DuckDBPyConnection, table: str, column: str, deleted: Any
) -> NDArray[np.int64]:
    """The deleted keys that no remaining row of ``table`` still has."""
    keys = sorted_unique(as_int64(deleted))
    if not keys.size:
        return keys
    con.register("_xb_gone", pa.table({"k": keys}))
    try:
        kept = con.execute(
            f"SELECT DISTINCT {column} AS k FROM {table} WHERE {column} IN (SELECT k FROM _xb_gone)"
        ).fetchnumpy()["k"]
    finally:
        con.unregister("_xb_gone")
    return np.setdiff1d(keys, as_int64(kept), assume_unique=True)
