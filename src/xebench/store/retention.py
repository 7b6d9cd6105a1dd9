"""Retention: delete the events older than a cutoff, and name the keys that left.

A prediction goes when its event time is older than the cutoff, a label when
its ingest time is (then its pending row too). The deleted rows' fingerprints
that no remaining row still has are returned, for the in-memory indexes
(:meth:`xebench.store.writes.Writes.forget`) to drop.

Example:
    >>> from datetime import UTC
    >>> from xebench.store.migrations import migrate
    >>> con = duckdb.connect(":memory:"); _ = migrate(con, ":memory:")
    >>> delete_before(con, datetime(2026, 1, 1, tzinfo=UTC)).counts()
    {'predictions': 0, 'labels': 0, 'pending_labels': 0}
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

from .connection import transaction
from .fingerprints import as_int64, sorted_unique

__all__ = ["Deleted", "delete_before"]


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
