"""DuckDB's cache of table blocks is trimmed back, so memory does not grow with the store.

An identity lookup in the store scans a whole key column (xebench.store.fingerprints);
DuckDB keeps the blocks it read until its memory limit needs the room, so the resident
size would follow the store's size up to the limit. These tests fill the cache with
such a scan and check that the trim evicts it, keeps the limit as configured, and
changes no answer.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from xebench.store import EventStore
from xebench.store.connection import connect, table_cache_bytes, trim_table_cache


def _filled(path: Path, rows: int = 4_000_000) -> tuple[object, int]:
    con = connect(path, "128MB")
    con.execute("CREATE TABLE keys (fp BIGINT)")
    keys = np.random.default_rng(7).integers(-(2**62), 2**62, rows)
    con.register("batch", pa.table({"fp": keys}))
    con.execute("INSERT INTO keys SELECT fp FROM batch")
    con.unregister("batch")
    con.execute("CHECKPOINT")
    return con, int(keys[12345])


def test_a_full_scan_fills_the_cache_and_the_trim_empties_it(tmp_path: Path) -> None:
    con, key = _filled(tmp_path / "cache.duckdb")
    limit = con.execute("SELECT current_setting('memory_limit')").fetchall()
    found = con.execute(f"SELECT count(*) FROM keys WHERE fp = {key}").fetchall()
    before = table_cache_bytes(con)
    assert before > 24 << 20  # 4e6 keys x 8 B = 32 MB, read into the cache

    evicted = trim_table_cache(con, 4 << 20)

    after = table_cache_bytes(con)
    assert after <= 4 << 20 and evicted == before - after
    assert con.execute("SELECT current_setting('memory_limit')").fetchall() == limit
    assert trim_table_cache(con, 4 << 20) == 0  # at most keep_bytes cached: nothing to do
    assert con.execute(f"SELECT count(*) FROM keys WHERE fp = {key}").fetchall() == found
    assert table_cache_bytes(con) > 24 << 20  # read from the file again, cached again


def test_the_store_trims_its_cache_and_keeps_its_answers(tmp_path: Path) -> None:
    from xebench.ingest.events import parse_predictions

    store = EventStore(tmp_path / "store.duckdb", memory_limit="128MB")
    events = [{"request_id": f"r{i}", "model": "m", "probabilities": 0.25} for i in range(5000)]
    store.insert_predictions(parse_predictions(events, tenant="t"))
    counts = store.counts("t")
    assert store.trim_cache(keep_bytes=0) >= 0
    assert table_cache_bytes(store._writer) == 0
    assert store.counts("t") == counts
    again = store.insert_predictions(parse_predictions(events[:10], tenant="t"))
    assert (again.inserted, again.duplicates) == (0, 10)
    store.close()


def test_a_write_that_looked_keys_up_in_the_store_trims_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import timedelta

    from xebench.ingest.events import parse_predictions
    from xebench.store import event_store, writes

    monkeypatch.setattr(event_store, "TABLE_CACHE_BYTES", 0)
    trims: list[int] = []

    def recorded(con: object, keep_bytes: int) -> int:
        trims.append(keep_bytes)
        return trim_table_cache(con, keep_bytes)  # type: ignore[arg-type]

    monkeypatch.setattr(event_store, "trim_table_cache", recorded)
    monkeypatch.setattr(writes, "_RECENT", timedelta(0))  # every stored row counts as old
    # Two recent keys per kind: the resend of an older event is settled in the store.
    store = EventStore(tmp_path / "store.duckdb", memory_limit="128MB", recent_keys=2)
    events = [{"request_id": f"r{i}", "model": "m", "probabilities": 0.25} for i in range(2000)]
    store.insert_predictions(parse_predictions(events, tenant="t"))
    for i in range(3):  # newer keys push r0 out of the recent ones
        store.insert_predictions(
            parse_predictions([{**events[0], "request_id": f"n{i}"}], tenant="t")
        )
    lookups = store.identity()["store_lookups"]
    assert trims == []  # no lookup so far: no trim
    again = store.insert_predictions(parse_predictions(events[:1], tenant="t"))
    assert (again.inserted, again.duplicates) == (0, 1)
    assert store.identity()["store_lookups"] > lookups
    assert trims == [0]  # the write that looked a key up trimmed the cache at once
    assert table_cache_bytes(store._writer) <= 1 << 20
    store.close()
