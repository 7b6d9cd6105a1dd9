"""Writing bucket rows: folded deltas into the minute tables and their hourly twins,
and compaction, which merges the rows of each key into one.
"""

from __future__ import annotations

from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .bucket_rows import arrow_column, group_ids, merge_features, merge_scores, score_rows
from .bucket_schema import DAILY, FEATURE_KEY, HOURLY, KEY, SCORE_KEY
from .bucket_tokens import merge_tokens

__all__ = ["compact", "insert_deltas", "insert_rows", "query_arrow"]


def compact(con: duckdb.DuckDBPyConnection) -> int:
    """Merge the rows of every key that has delta rows into one; returns rows removed.

    Runs in the caller's transaction, on every minute table and its hourly and daily twins.

    Example:
        >>> from xebench.store.bucket_schema import FEATURE_SCHEMA, SCORE_SCHEMA, TOKEN_SCHEMA
        >>> con = duckdb.connect()
        >>> tables = {"bucket_scores": SCORE_SCHEMA, "bucket_features": FEATURE_SCHEMA,
        ...           "bucket_tokens": TOKEN_SCHEMA}
        >>> for name, schema in tables.items():
        ...     empty = schema.empty_table()
        ...     for table in (name, HOURLY[name], DAILY[name]):
        ...         _ = con.execute(f"CREATE TABLE {table} AS SELECT * FROM empty")
        >>> keys = {"tenant": ["t"], "model": ["m"], "version": ["v"], "cohort_key": [""],
        ...     "cohort_value": [""], "bucket": [0], "classes": [["0", "1"]]}
        >>> delta = score_rows(keys, n_predictions=np.array([3]))
        >>> insert_deltas(con, "bucket_scores", pa.concat_tables([delta, delta]))
        >>> compact(con)  # two rows merged into one, in the minute table and its twin
        2
        >>> query_arrow(con, "SELECT n_predictions, delta FROM bucket_scores").to_pylist()
        [{'n_predictions': 6, 'delta': False}]
    """
    removed = 0
    tables = [
        ("bucket_scores", SCORE_KEY),
        ("bucket_features", FEATURE_KEY),
        ("bucket_tokens", KEY),
    ]
    twins = [(twin[t], k) for twin in (HOURLY, DAILY) for t, k in tables]
    for table, key in [*tables, *twins]:
        columns = ", ".join(key)
        # Bounded by the oldest delta row's bucket (every key with a delta row is at or
        # after it), as a constant: the zone maps then skip the row groups of older
        # history, so the cost follows the recent buckets, not the table's size.
        ((low,),) = con.execute(f"SELECT min(bucket) FROM {table} WHERE delta").fetchall()
        if low is None:
            continue
        rows = query_arrow(
            con,
            f"""
            SELECT rowid AS _rowid, * FROM {table}
            WHERE bucket >= $low AND ({columns}) IN (
                SELECT DISTINCT {columns} FROM {table} WHERE delta AND bucket >= $low
            )
            """,
            {"low": low},
        )
        if not rows.num_rows:
            continue
        group, first = group_ids([arrow_column(rows, name) for name in key])
        n_groups = first.shape[0]
        keys = {name: arrow_column(rows, name).take(pa.array(first)) for name in key}
        if table.startswith("bucket_scores"):
            # score_rows cuts merge_scores' padded label_weight to each key's classes.
            out = score_rows(keys, **merge_scores(rows, group, n_groups))
        elif table.startswith("bucket_tokens"):
            out = merge_tokens(rows, group, n_groups, keys)
        else:
            out = merge_features(rows, group, n_groups, keys)
        out = out.set_column(
            out.schema.get_field_index("delta"),
            "delta",
            pa.array(np.zeros(n_groups, dtype=bool)),
        )
        con.register("_xb_gone", pa.table({"r": arrow_column(rows, "_rowid")}))
        try:
            con.execute(f"DELETE FROM {table} WHERE rowid IN (SELECT r FROM _xb_gone)")
        finally:
            con.unregister("_xb_gone")
        insert_rows(con, table, out)
        removed += rows.num_rows - n_groups
    return removed


def query_arrow(con: duckdb.DuckDBPyConnection, sql: str, params: Any = None) -> pa.Table:
    """The result of ``sql`` as an Arrow table (without DuckDB's extra DB-API copy); see
    :func:`compact` for an example."""
    return con.sql(sql, params=params).to_arrow_table()


def insert_deltas(con: duckdb.DuckDBPyConnection, target: str, rows: pa.Table) -> None:
    """Append folded delta rows to a minute bucket table and, per hour, to its twin (see
    :func:`compact` for an example)."""
    insert_rows(con, target, rows)
    index = rows.schema.get_field_index("bucket")
    hours = pc.floor_temporal(rows["bucket"], multiple=1, unit="hour")
    insert_rows(con, HOURLY[target], rows.set_column(index, "bucket", hours))


def insert_rows(con: duckdb.DuckDBPyConnection, target: str, rows: pa.Table) -> None:
    """Append the Arrow ``rows`` to table ``target``, matching columns by name (see
    :func:`compact` for an example)."""
    # DuckDB's replacement scan reads the local ``_xb_rows``: ``register`` would create
    # and drop a view in the transaction's catalog, ~1 ms more per insert, and this runs
    # several times per commit.
    _xb_rows = rows
    con.execute(f"INSERT INTO {target} BY NAME SELECT * FROM _xb_rows")
