"""Reads of raw events (not buckets): the labelled events of a window, bounded.

Monitoring answers come from the buckets (:mod:`xebench.store.queries`); the one
question they cannot answer is *which* events: the dashboard's list of a
window's worst-scored (or latest) labelled events. :func:`labelled_events`
reads them from the ``joined`` view, only the window's rows of one tenant's
model, sorted and cut by DuckDB (``ORDER BY ... LIMIT``), so the answer is at
most ``limit`` rows whatever the window holds.

Example:
    >>> from xebench.store import EventStore
    >>> start = datetime(2026, 1, 1, tzinfo=UTC)
    >>> with EventStore(":memory:") as store, store.cursor() as cursor:
    ...     labelled_events(cursor, "t", "m", None, None, start, start + timedelta(hours=1),
    ...                     order="loss", limit=5).num_rows
    0
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta  # noqa: F401  (the doctest's names)
from typing import Any

import duckdb
import pyarrow as pa

from .bucket_schema import OTHER
from .crossings import SEPARATOR, is_crossing, split_value

__all__ = ["ORDERS", "labelled_events"]

#: The orders of :func:`labelled_events`: ``loss`` (the lowest probability given to
#: the observed label first, i.e. the highest log loss; the latest first among ties)
#: and ``recent`` (the latest prediction time first).
ORDERS = {
    "loss": "p_label ASC, event_time DESC, request_id",
    "recent": "event_time DESC, request_id",
}


def labelled_events(
    cursor: duckdb.DuckDBPyConnection,
    tenant: str,
    model: str,
    version: str | None,
    cohort: tuple[str, str] | None,
    start: datetime,
    end: datetime,
    *,
    order: str,
    limit: int,
) -> pa.Table:
    """At most ``limit`` labelled predictions of [start, end) (prediction time) of one
    tenant's model (one version when not None, one cohort ``(key, value)`` when not
    None), in ``order`` (a key of :data:`ORDERS`).

    Only events whose label is one of their classes are read (the others are not
    scorable). Columns: ``request_id``, ``model``, ``version``, ``event_time``,
    ``classes``, ``probabilities``, ``label``, ``p_label`` (the probability given to
    the label, as stored), ``cohort``, ``features`` (JSON text), ``weight``. The
    ordering is by ``p_label``, never by a loss computed here: the per-event loss
    is the kernel's (:func:`xebench.nll`), finished by the caller.

    Example:
        >>> from xebench.store import EventStore
        >>> start = datetime(2026, 1, 1, tzinfo=UTC)
        >>> with EventStore(":memory:") as store, store.cursor() as cursor:
        ...     labelled_events(cursor, "t", "m", "v1", ("region", "eu"), start,
        ...                     start + timedelta(hours=1), order="recent", limit=1).column_names
        ['request_id', 'model', 'version', 'event_time', 'classes', 'probabilities', 'label', \
'p_label', 'cohort', 'features', 'weight']
    """
    params: dict[str, Any] = {
        "tenant": tenant,
        "model": model,
        "start": start,
        "end": end,
    }
    where = ["tenant = $tenant", "model = $model", "event_time >= $start", "event_time < $end"]
    if version is not None:
        params["version"] = version
        where.append("version = $version")
    if cohort is not None and is_crossing(cohort[0]) and cohort[1] == OTHER:
        where.append("false")  # which events went beyond the cap is not in the events
    elif cohort is not None and is_crossing(cohort[0]):  # every key of the crossing
        keys = cohort[0].split(SEPARATOR)
        for i, (key, value) in enumerate(zip(keys, split_value(cohort[1], len(keys)), strict=True)):
            params[f"key{i}"], params[f"value{i}"] = key, value
            where.append(f"cohort[$key{i}] = $value{i}")
    elif cohort is not None:
        params["key"], params["value"] = cohort
        where.append("cohort[$key] = $value")
    # A top-N by row_number() rather than ORDER BY ... LIMIT: DuckDB 2.0.1 ignores a
    # LIMIT over the joined view's LEFT JOINs (it returns every row; duckdb issues
    # 24542 and 22924 are of this family), QUALIFY keeps the same top-N bounded.
    sql = f"""
        SELECT * FROM (
            SELECT request_id, model, version, event_time, classes, probabilities, label,
                   probabilities[list_position(classes, label)] AS p_label,
                   cohort, features, weight
            FROM joined WHERE {" AND ".join(where)}
        ) WHERE p_label IS NOT NULL
        QUALIFY row_number() OVER (ORDER BY {ORDERS[order]}) <= {int(limit)}
        ORDER BY {ORDERS[order]}
    """
    return cursor.sql(sql, params=params).to_arrow_table().slice(0, int(limit))
