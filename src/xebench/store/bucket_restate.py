"""Restating score buckets after label corrections.

A correction (a label event with ``"correction": true``) replaces a stored label in
place and keeps the old row in ``label_history`` with the commit that replaced it
(``replaced_seq``). The score buckets are sums whose unsigned counts cannot take a
negative delta, so the fold *recomputes* every minute bucket that holds a corrected
pair -- all of its rows, every cohort -- from the raw events, with the same code that
folds them (:meth:`~xebench.store.buckets.Buckets` builds the delta rows), then the
hourly rows of those hours from their minutes. Counts stay exact and a window equals
a recomputation on the corrected labels, as :meth:`EventStore.rebuild_buckets` does.

:class:`Restatement` is mixed into :class:`~xebench.store.buckets.Buckets`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from .bucket_rollup import insert_rows, query_arrow
from .bucket_rows import arrow_column, group_ids, merge_scores, score_rows
from .bucket_schema import SCORE_KEY

__all__ = ["Restatement"]

_MINUTE_US = 60_000_000
_HOUR_US = 3_600_000_000

# Minutes (tenant, model, version, epoch minute) of the predictions, seq <= $p1, whose
# label was replaced by a commit in ($l0, $l1].
_MINUTES = """
    WITH fixed AS (
        SELECT DISTINCT fp, tenant, model, request_id FROM label_history
        WHERE replaced_seq > $l0 AND replaced_seq <= $l1
    )
    SELECT DISTINCT p.tenant, p.model, p.version, epoch_us(p.event_time) // 60000000 AS minute
    FROM predictions p JOIN fixed f
      ON (f.model <> '' AND p.fp = f.fp AND p.model = f.model
          OR f.model = '' AND p.rfp = f.fp)
     AND p.tenant = f.tenant AND p.request_id = f.request_id
    WHERE p.seq <= $p1
"""

_IN_MINUTES = """
    SELECT p.* FROM predictions p JOIN _xb_minutes k
      ON p.tenant = k.tenant AND p.model = k.model AND p.version = k.version
     AND epoch_us(p.event_time) // 60000000 = k.minute
    WHERE p.seq <= $p1 AND p.tokens IS NULL
"""


class Restatement:
    """Recomputes the score buckets of corrected pairs (mixed into ``Buckets``).

    Example:
        >>> from xebench.store.buckets import Buckets
        >>> issubclass(Buckets, Restatement)
        True
    """

    FIRST_LABELS: str

    if TYPE_CHECKING:  # provided by Buckets

        def _prediction_deltas(self, table: pa.Table) -> tuple[pa.Table, Any]: ...

        def _pair_deltas(self, table: pa.Table) -> pa.Table: ...

    def _restate(self, con: duckdb.DuckDBPyConnection, p1: int, l0: int, l1: int) -> int:
        """Recompute the minute and hour score buckets of the predictions (seq <= p1)
        whose label a commit in (l0, l1] corrected, from the events (labels up to
        seq l1); returns the minutes restated. In the caller's transaction, after the
        step's own deltas are in."""
        if l1 <= l0:
            return 0
        minutes = query_arrow(con, _MINUTES, {"p1": p1, "l0": l0, "l1": l1})
        if not minutes.num_rows:
            return 0
        con.register("_xb_minutes", minutes)
        try:
            predictions = query_arrow(
                con,
                "SELECT tenant, model, version, event_time, classes, probabilities, cohort, "
                f"weight FROM ({_IN_MINUTES}) ORDER BY seq",
                {"p1": p1},
            )
            pairs = query_arrow(
                con,
                f"WITH candidates AS ({_IN_MINUTES}), {self.FIRST_LABELS}",
                {"p1": p1, "l1": l1},
            )
            con.execute(
                "DELETE FROM bucket_scores b USING _xb_minutes k WHERE b.tenant = k.tenant "
                "AND b.model = k.model AND b.version = k.version "
                "AND epoch_us(b.bucket) // 60000000 = k.minute"
            )
            rows = [self._prediction_deltas(predictions)[0]]
            if pairs.num_rows:
                rows.append(self._pair_deltas(pairs))
            insert_rows(con, "bucket_scores", pa.concat_tables(rows))
        finally:
            con.unregister("_xb_minutes")
        self._restate_hours(con, minutes)
        return minutes.num_rows

    @staticmethod
    def _restate_hours(con: duckdb.DuckDBPyConnection, minutes: pa.Table) -> None:
        """Replace the hourly rows of the hours of ``minutes`` by merges of their minutes."""
        hour = pc.cast(
            pc.divide(arrow_column(minutes, "minute"), pa.scalar(_HOUR_US // _MINUTE_US)),
            pa.int64(),
        )
        hours = minutes.select(["tenant", "model", "version"]).append_column("hour", hour)
        con.register("_xb_hours", hours)
        try:
            on = (
                "b.tenant = h.tenant AND b.model = h.model AND b.version = h.version "
                f"AND epoch_us(b.bucket) // {_HOUR_US} = h.hour"
            )
            con.execute(f"DELETE FROM bucket_scores_hour b USING _xb_hours h WHERE {on}")
            rows = query_arrow(
                con,
                "SELECT b.* FROM bucket_scores b "
                f"WHERE EXISTS (SELECT 1 FROM _xb_hours h WHERE {on})",
            )
        finally:
            con.unregister("_xb_hours")
        if not rows.num_rows:
            return
        bucket = pc.floor_temporal(arrow_column(rows, "bucket"), multiple=1, unit="hour")
        key_columns = [
            bucket if name == "bucket" else arrow_column(rows, name) for name in SCORE_KEY
        ]
        group, first = group_ids(key_columns)
        keys = {
            name: column.take(pa.array(first))
            for name, column in zip(SCORE_KEY, key_columns, strict=True)
        }
        merged = merge_scores(rows, group, first.shape[0])
        insert_rows(con, "bucket_scores_hour", score_rows(keys, **merged))
