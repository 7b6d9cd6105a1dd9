"""The read side: every SQL query that answers a question about stored events or buckets.

Each function takes a DuckDB cursor (:meth:`xebench.store.EventStore.cursor`,
one per reading thread) and returns plain rows, an Arrow table or a dict; the
statistics are finished by their callers (:mod:`xebench.monitor`). Monitoring
reads go through here, so only this package knows the tables' layout.

Example:
    >>> from xebench.store import EventStore
    >>> with EventStore(":memory:") as store, store.cursor() as cursor:
    ...     counts(cursor, "t", datetime(2026, 1, 1, tzinfo=UTC))
    {'predictions': 0, 'labels': 0, 'pending': 0, 'orphans': 0}
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import pyarrow as pa

from .bucket_schema import DAILY, DAY_SECONDS
from .buckets import HOUR_SECONDS, HOURLY

__all__ = [
    "TABLES",
    "bucket_rows",
    "checksum",
    "cohort_keys",
    "counts",
    "label_lags",
    "models",
    "shadow_pairs",
    "status",
]

#: The event tables, in the order :func:`checksum` digests them.
TABLES = ("predictions", "labels", "pending_labels")

_HOUR = timedelta(seconds=HOUR_SECONDS)


def models(
    cursor: duckdb.DuckDBPyConnection,
    tenant: str,
    classes: Mapping[tuple[str, str, str], frozenset[tuple[str, ...]]],
) -> list[dict[str, Any]]:
    """One entry per (model, version) of ``tenant``; see :meth:`EventStore.models`.

    ``classes`` maps (tenant, model, version) to the class lists seen (the
    store keeps them in memory: a scan of every class list costs ~1 s at 1e7).

    Example:
        >>> from xebench.store import EventStore
        >>> with EventStore(":memory:") as store, store.cursor() as cursor:
        ...     models(cursor, "t", {})
        []
    """
    sql = """
        WITH p AS (
            SELECT model, version, count(*) AS n,
                   min(event_time) AS first_event, max(event_time) AS last_event
            FROM predictions WHERE tenant = $tenant GROUP BY model, version
        ), j AS (
            SELECT model, version, count(*) AS joined
            FROM joined WHERE tenant = $tenant GROUP BY model, version
        )
        SELECT p.model, p.version, p.n, coalesce(j.joined, 0), p.first_event, p.last_event
        FROM p LEFT JOIN j USING (model, version)
        ORDER BY p.model, p.version
    """
    rows = cursor.execute(sql, {"tenant": tenant}).fetchall()
    return [
        {
            "model": model,
            "version": version,
            "predictions": n,
            "labels": joined,
            "joined": joined,
            "first_event": first.astimezone(UTC).isoformat(),
            "last_event": last.astimezone(UTC).isoformat(),
            "classes": sorted(list(c) for c in classes.get((tenant, model, version), ())),
        }
        for model, version, n, joined, first, last in rows
    ]


def counts(
    cursor: duckdb.DuckDBPyConnection, tenant: str | None, cutoff: datetime
) -> dict[str, int]:
    """Predictions, labels, pending labels and orphans (pending rows received before
    ``cutoff``) of ``tenant``, or of all tenants when None.

    Example:
        >>> from xebench.store import EventStore
        >>> with EventStore(":memory:") as store, store.cursor() as cursor:
        ...     counts(cursor, None, datetime(2026, 1, 1, tzinfo=UTC))["orphans"]
        0
    """
    where = "WHERE tenant = $tenant" if tenant is not None else "WHERE true"
    params: dict[str, Any] = {"cutoff": cutoff}
    if tenant is not None:
        params["tenant"] = tenant
    sql = f"""
        SELECT (SELECT count(*) FROM predictions {where}),
               (SELECT count(*) FROM labels {where}),
               (SELECT count(*) FROM pending_labels {where}),
               (SELECT count(*) FROM pending_labels {where} AND received_at < $cutoff)
    """
    row = cursor.execute(sql, params).fetchone()
    return dict(zip(("predictions", "labels", "pending", "orphans"), row, strict=True))


def status(
    cursor: duckdb.DuckDBPyConnection, tenant: str, now: datetime, orphan_cutoff: datetime
) -> dict[str, Any]:
    """Ingestion health of ``tenant`` at ``now`` (see :meth:`EventStore.status`).

    Rates are over the ingest times of the last 5 minutes and the last hour
    (the ingest-time zone maps keep these scans to the recent row groups);
    the ingest lag is ``ingest_time - event_time`` of the predictions
    ingested in the last hour.

    Example:
        >>> from xebench.store import EventStore
        >>> now = datetime(2026, 1, 1, tzinfo=UTC)
        >>> with EventStore(":memory:") as store, store.cursor() as cursor:
        ...     status(cursor, "t", now, now)["stored"]
        {'predictions': 0, 'labels': 0}
    """
    params = {"tenant": tenant, "cutoff": orphan_cutoff, "m5": now - timedelta(minutes=5),
              "h1": now - _HOUR, "now": now}  # fmt: skip
    row = cursor.execute(
        """
        SELECT (SELECT count(*) FROM predictions WHERE tenant = $tenant),
               (SELECT count(*) FROM labels WHERE tenant = $tenant),
               (SELECT count(*) FROM pending_labels WHERE tenant = $tenant),
               (SELECT count(*) FROM pending_labels
                WHERE tenant = $tenant AND received_at < $cutoff),
               (SELECT min(received_at) FROM pending_labels WHERE tenant = $tenant),
               (SELECT count(*) FROM predictions
                WHERE tenant = $tenant AND ingest_time >= $m5 AND ingest_time <= $now),
               (SELECT count(*) FROM labels
                WHERE tenant = $tenant AND ingest_time >= $m5 AND ingest_time <= $now),
               (SELECT count(*) FROM labels
                WHERE tenant = $tenant AND ingest_time >= $h1 AND ingest_time <= $now),
               (SELECT max(ingest_time) FROM predictions WHERE tenant = $tenant),
               (SELECT max(ingest_time) FROM labels WHERE tenant = $tenant),
               (SELECT min(event_time) FROM predictions WHERE tenant = $tenant)
        """,
        params,
    ).fetchone()
    (n_pred, n_lab, pending, orphans, oldest_pending, p5, l5, l60, last_p, last_l, oldest) = row
    lag = cursor.execute(
        """
        SELECT count(*),
               quantile_cont(epoch(ingest_time) - epoch(event_time), 0.5),
               quantile_cont(epoch(ingest_time) - epoch(event_time), 0.99),
               max(epoch(ingest_time) - epoch(event_time))
        FROM predictions WHERE tenant = $tenant AND ingest_time >= $h1 AND ingest_time <= $now
        """,
        {"tenant": tenant, "h1": params["h1"], "now": now},
    ).fetchone()

    def iso(moment: datetime | None) -> str | None:
        return None if moment is None else moment.astimezone(UTC).isoformat()

    def seconds(value: float | None) -> float | None:
        return None if value is None else round(float(value), 3)

    return {
        "stored": {"predictions": int(n_pred), "labels": int(n_lab)},
        "pending_labels": int(pending),
        "orphans": int(orphans),
        "oldest_pending": iso(oldest_pending),
        "rates": {
            "predictions_per_s_5m": round(p5 / 300, 3),
            "labels_per_s_5m": round(l5 / 300, 3),
            "labels_per_s_1h": round(l60 / 3600, 3),
        },
        "ingest_lag_s": {
            "n": int(lag[0]),
            "p50": seconds(lag[1]),
            "p99": seconds(lag[2]),
            "max": seconds(lag[3]),
        },
        "last_ingest": {"predictions": iso(last_p), "labels": iso(last_l)},
        "oldest_event": iso(oldest),
    }


def checksum(cursor: duckdb.DuckDBPyConnection, tenant: str | None) -> str:
    """Per event table, the row count and the sum of DuckDB's ``hash`` of each row.

    Example:
        >>> from xebench.store import EventStore
        >>> with EventStore(":memory:") as store, store.cursor() as cursor:
        ...     checksum(cursor, "t")
        'predictions:0:0 labels:0:0 pending_labels:0:0'
    """
    where = "WHERE t.tenant = $tenant" if tenant is not None else ""
    params = {"tenant": tenant} if tenant is not None else {}
    parts = []
    for name in TABLES:
        sql = f"SELECT count(*), coalesce(sum(hash(t)), 0) FROM {name} AS t {where}"
        n, total = cursor.execute(sql, params).fetchone()
        parts.append(f"{name}:{n}:{total}")
    return " ".join(parts)


def _ceil(moment: datetime, unit: int) -> datetime:
    stamp = moment.timestamp()
    return datetime.fromtimestamp(-(-stamp // unit) * unit, UTC)


def _floor(moment: datetime, unit: int) -> datetime:
    return datetime.fromtimestamp(moment.timestamp() // unit * unit, UTC)


def _hours_rolled_before(cursor: duckdb.DuckDBPyConnection) -> datetime | None:
    """Where retention rolled the hour buckets into days (none before it), if it did."""
    rows = cursor.execute("SELECT value FROM meta WHERE key = 'hours_rolled_before'").fetchall()
    return datetime.fromisoformat(rows[0][0]) if rows else None


def bucket_rows(
    cursor: duckdb.DuckDBPyConnection,
    table: str,
    columns: str,
    *,
    tenant: str,
    model: str,
    version: str | None,
    cohort: tuple[str, str | None],
    start: datetime,
    end: datetime,
    hours: bool = True,
) -> pa.Table:
    """The ``columns`` of a bucket table's rows for one model (and version, when not
    None), cohort (key, value) and time range [start, end); a value of None takes
    every value of the key (the rows of each value in the order a query of that
    value alone returns them: the scans keep the tables' insertion order).

    ``table`` is a minute table (``bucket_scores`` or ``bucket_features``). With
    ``hours``, the whole hours of the range come from its hourly twin and only
    its ends from the minutes: the same statistics in up to 60x fewer rows. (A
    series whose steps do not fall on hours passes False: an hour row must not
    straddle two of its points.)
    Before the horizon where retention rolled hours into days
    (``meta.hours_rolled_before``), the whole days of the range come from the
    daily twin; what is left there at finer grain (its ragged ends) is gone.

    Example:
        >>> from xebench.store import EventStore
        >>> start = datetime(2026, 1, 1, tzinfo=UTC)
        >>> with EventStore(":memory:") as store, store.cursor() as cursor:
        ...     bucket_rows(cursor, "bucket_scores", "bucket", tenant="t", model="m",
        ...                 version=None, cohort=("", ""), start=start,
        ...                 end=start + timedelta(hours=3)).num_rows
        0
    """
    # (table, ranges): each table is scanned once, for all its ranges (its rows are
    # not ordered by time, so every scan reads it whole).
    ranges: dict[str, list[tuple[datetime, datetime]]] = {}
    segments = [(start, end)]
    rolled = _hours_rolled_before(cursor) if hours else None
    if rolled is not None and start < rolled:
        # Before the roll-up horizon only whole days remain (retention.roll_hours_before).
        first_day, last_day = _ceil(start, DAY_SECONDS), _floor(min(end, rolled), DAY_SECONDS)
        if first_day < last_day:
            ranges[DAILY[table]] = [(first_day, last_day)]
            segments = [(start, first_day), (last_day, end)]
    for begin, stop in segments:
        first_hour, last_hour = _ceil(begin, HOUR_SECONDS), _floor(stop, HOUR_SECONDS)
        if hours and first_hour < last_hour:
            ranges.setdefault(table, []).extend([(begin, first_hour), (last_hour, stop)])
            ranges.setdefault(HOURLY[table], []).append((first_hour, last_hour))
        else:
            ranges.setdefault(table, []).append((begin, stop))
    parts = list(ranges.items())
    params: dict[str, Any] = {"tenant": tenant, "model": model, "key": cohort[0]}
    if cohort[1] is not None:
        params["value"] = cohort[1]
    if version is not None:
        params["version"] = version
    queries = []
    for name, ranges in parts:
        within = []
        for begin, stop in ranges:
            if begin < stop:
                i = len(params)
                within.append(f"(bucket >= $p{i} AND bucket < $p{i + 1})")
                params[f"p{i}"], params[f"p{i + 1}"] = begin, stop
        if not within:
            continue
        queries.append(
            f"SELECT {columns} FROM {name} WHERE tenant = $tenant AND model = $model "
            "AND cohort_key = $key "
            + ("AND cohort_value = $value " if cohort[1] is not None else "")
            + ("AND version = $version " if version is not None else "")
            + f"AND ({' OR '.join(within)})"
        )
    return cursor.sql(" UNION ALL ".join(queries), params=params).to_arrow_table()


def cohort_keys(cursor: duckdb.DuckDBPyConnection, tenant: str, model: str) -> list[str]:
    """The cohort keys of ``model`` that have buckets (those its events carried), sorted.

    Example:
        >>> from xebench.store import EventStore
        >>> with EventStore(":memory:") as store, store.cursor() as cursor:
        ...     cohort_keys(cursor, "t", "m")
        []
    """
    sql = "SELECT DISTINCT key FROM cohort_values WHERE tenant = $t AND model = $m ORDER BY key"
    return [row[0] for row in cursor.execute(sql, {"t": tenant, "m": model}).fetchall()]


def label_lags(
    cursor: duckdb.DuckDBPyConnection, tenant: str, model: str, since: datetime
) -> list[tuple[int, float]]:
    """(lag bin, count) of ``model``'s labels (every version, the model as a whole) in
    the hourly buckets from ``since``; the bins are :func:`~xebench.store.buckets.lag_bin`'s.

    Example:
        >>> from xebench.store import EventStore
        >>> with EventStore(":memory:") as store, store.cursor() as cursor:
        ...     label_lags(cursor, "t", "m", datetime(2026, 1, 1, tzinfo=UTC))
        []
    """
    sql = """
        SELECT b, sum(c) FROM (
            SELECT unnest(lag_bin) AS b, unnest(lag_count) AS c FROM bucket_scores_hour
            WHERE tenant = $t AND model = $m AND cohort_key = '' AND bucket >= $since
            UNION ALL
            SELECT unnest(lag_bin) AS b, unnest(lag_count) AS c FROM bucket_scores_day
            WHERE tenant = $t AND model = $m AND cohort_key = '' AND bucket >= $since
        ) GROUP BY b
    """
    return cursor.execute(sql, {"t": tenant, "m": model, "since": since}).fetchall()


def shadow_pairs(
    cursor: duckdb.DuckDBPyConnection,
    tenant: str,
    candidate: tuple[str, str | None],
    baseline: tuple[str, str | None],
    start: datetime,
    end: datetime,
) -> pa.Table:
    """The labelled requests of [start, end) that both (model, version) sides scored.

    Columns: ``c_classes``, ``c_p`` (the candidate's classes and probabilities),
    ``b_classes``, ``b_p`` (the baseline's), ``label`` and the candidate's
    ``cohort`` and ``weight`` (a pair is one request: its cohort and business
    weight are read from one side). A version of None matches every version of its model.

    Example:
        >>> from xebench.store import EventStore
        >>> start = datetime(2026, 1, 1, tzinfo=UTC)
        >>> with EventStore(":memory:") as store, store.cursor() as cursor:
        ...     shadow_pairs(cursor, "t", ("a", None), ("b", "v1"), start,
        ...                  start + timedelta(hours=1)).column_names
        ['c_classes', 'c_p', 'b_classes', 'b_p', 'label', 'cohort', 'weight']
    """
    sql = """
        WITH side AS (
            SELECT model, version, request_id, classes, probabilities, label, cohort, weight
            FROM joined WHERE tenant = $tenant AND event_time >= $start AND event_time < $end
              AND model IN ($cm, $bm)
        )
        SELECT c.classes AS c_classes, c.probabilities AS c_p,
               b.classes AS b_classes, b.probabilities AS b_p, c.label, c.cohort, c.weight
        FROM side c JOIN side b USING (request_id)
        WHERE c.model = $cm AND b.model = $bm
          AND ($cv IS NULL OR c.version = $cv) AND ($bv IS NULL OR b.version = $bv)
          AND c.label = b.label
    """
    params = {
        "tenant": tenant,
        "start": start,
        "end": end,
        "cm": candidate[0],
        "bm": baseline[0],
        "cv": candidate[1],
        "bv": baseline[1],
    }
    return cursor.sql(sql, params=params).to_arrow_table()
