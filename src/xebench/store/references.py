"""Drift references supplied as data: one model's counts per feature, in ``drift_references``.

Only counts in the model's monitoring bins are stored, never the uploaded rows
(:mod:`xebench.monitor.references` counts them). A write is a replacement of
the model's whole reference, in the caller's transaction.

Example:
    >>> from xebench.store.migrations import migrate
    >>> con = duckdb.connect(":memory:"); _ = migrate(con, ":memory:")
    >>> at = datetime(2026, 1, 1, tzinfo=UTC)
    >>> replace_reference(con, "t", "m", {"x": np.array([1.0, 2.0])}, 3, "ref.csv", at)
    >>> read_reference(con, "t", "m")["counts"]["x"].tolist()
    [1.0, 2.0]
    >>> delete_reference(con, "t", "m"), read_reference(con, "t", "m")
    (True, None)
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import duckdb
import numpy as np
from numpy.typing import NDArray

__all__ = ["delete_reference", "read_reference", "replace_reference"]

_DELETE = "DELETE FROM drift_references WHERE tenant = ? AND model = ?"


def replace_reference(
    con: duckdb.DuckDBPyConnection,
    tenant: str,
    model: str,
    counts: Mapping[str, NDArray[np.float64]],
    rows: int,
    source: str,
    at: datetime,
) -> None:
    """Replace ``model``'s reference with ``counts`` (feature -> counts) of ``rows`` rows.

    Example:
        >>> from xebench.store.migrations import migrate
        >>> con = duckdb.connect(":memory:"); _ = migrate(con, ":memory:")
        >>> at = datetime(2026, 1, 1, tzinfo=UTC)
        >>> replace_reference(con, "t", "m", {"x": np.ones(2), "y": np.ones(3)}, 2, "a.csv", at)
        >>> replace_reference(con, "t", "m", {"x": np.ones(2)}, 2, "b.csv", at)
        >>> con.execute("SELECT feature, source FROM drift_references").fetchall()
        [('x', 'b.csv')]
    """
    rows_of = [
        (tenant, model, name, np.asarray(c, dtype=np.float64).tolist(), rows, source, at)
        for name, c in sorted(counts.items())
    ]
    con.execute(_DELETE, [tenant, model])
    if rows_of:
        con.executemany("INSERT INTO drift_references VALUES (?, ?, ?, ?, ?, ?, ?)", rows_of)


def read_reference(
    con: duckdb.DuckDBPyConnection, tenant: str, model: str
) -> dict[str, Any] | None:
    """``model``'s reference: ``counts`` (feature -> array), ``rows``, ``source`` and
    ``uploaded_at`` (UTC); None when there is none.

    Example:
        >>> from xebench.store.migrations import migrate
        >>> con = duckdb.connect(":memory:"); _ = migrate(con, ":memory:")
        >>> read_reference(con, "t", "m") is None
        True
    """
    sql = (
        "SELECT feature, counts, n_rows, source, uploaded_at FROM drift_references "
        "WHERE tenant = ? AND model = ? ORDER BY feature"
    )
    found = con.execute(sql, [tenant, model]).fetchall()
    if not found:
        return None
    return {
        "counts": {row[0]: np.array(row[1], dtype=np.float64) for row in found},
        "rows": int(found[0][2]),
        "source": found[0][3],
        "uploaded_at": found[0][4].astimezone(UTC),
    }


def delete_reference(con: duckdb.DuckDBPyConnection, tenant: str, model: str) -> bool:
    """Remove ``model``'s reference; False when there was none.

    Example:
        >>> from xebench.store.migrations import migrate
        >>> con = duckdb.connect(":memory:"); _ = migrate(con, ":memory:")
        >>> delete_reference(con, "t", "m")
        False
    """
    (n,) = con.execute(_DELETE, [tenant, model]).fetchone()
    return n > 0
