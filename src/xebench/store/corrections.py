"""Label corrections in the store: the stored label replaced in place, the old one kept.

A label event with ``"correction": true`` whose (tenant, model, request_id) is stored
with another value replaces it (:mod:`xebench.store.writes` decides which rows are
corrections); the bucket fold then restates the buckets of the corrected pairs
(:mod:`xebench.store.bucket_restate`).
"""

from __future__ import annotations

import duckdb
import pyarrow as pa

__all__ = ["apply_corrections"]


def apply_corrections(con: duckdb.DuckDBPyConnection, rows: pa.Table, seq: int) -> None:
    """Replace stored labels by their corrections (the last per identity): the old row
    goes to ``label_history`` (with the commit ``seq`` that replaced it), the new
    value takes its place and keeps its ``seq``, the order in which labels join.

    Runs in the caller's transaction, after the rows of the same write are in.

    Example:
        >>> from xebench.ingest.events import parse_labels
        >>> from xebench.store.migrations import migrate
        >>> con = duckdb.connect(); _ = migrate(con, ":memory:")
        >>> old = parse_labels([{"request_id": "r", "label": 0}], tenant="t")
        >>> _ = con.execute("INSERT INTO labels BY NAME SELECT *, 1 AS seq FROM old")
        >>> fix = parse_labels([{"request_id": "r", "label": 1, "correction": True}], tenant="t")
        >>> apply_corrections(con, fix, seq=2)
        >>> con.execute("SELECT label, seq, correction FROM labels").fetchall()
        [('1', 1, True)]
        >>> con.execute("SELECT label, seq, replaced_seq FROM label_history").fetchall()
        [('0', 1, 2)]
    """
    last: dict[tuple[str, str, str], int] = {}
    parts = (rows[name].to_pylist() for name in ("tenant", "model", "request_id"))
    for i, identity in enumerate(zip(*parts, strict=True)):
        last[identity] = i
    fixes = rows.take(pa.array(sorted(last.values()))).select(
        ["fp", "tenant", "model", "request_id", "label", "event_time", "ingest_time",
         "payload_hash"]
    )  # fmt: skip
    match = (
        "l.fp = f.fp AND l.tenant = f.tenant AND l.model = f.model AND l.request_id = f.request_id"
    )
    con.register("_xb_fix", fixes)
    try:
        con.execute(
            "INSERT INTO label_history SELECT l.fp, l.tenant, l.model, l.request_id, "
            "l.label, l.event_time, l.ingest_time, l.payload_hash, l.seq, "
            f"coalesce(l.correction, false), now(), {int(seq)} "
            f"FROM labels l JOIN _xb_fix f ON {match}"
        )
        con.execute(
            "UPDATE labels AS l SET label = f.label, event_time = f.event_time, "
            "ingest_time = f.ingest_time, payload_hash = f.payload_hash, correction = true "
            f"FROM _xb_fix AS f WHERE {match}"
        )
    finally:
        con.unregister("_xb_fix")
