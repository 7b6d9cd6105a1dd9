"""Opening the DuckDB file, and the one transaction pattern every write of the store uses.

Example:
    >>> con = connect(":memory:", None)
    >>> with transaction(con):
    ...     _ = con.execute("CREATE TABLE t (x INT)")
    >>> with contextlib.suppress(ZeroDivisionError), transaction(con):
    ...     _ = con.execute("INSERT INTO t VALUES (1)")
    ...     1 / 0
    >>> con.execute("SELECT count(*) FROM t").fetchone()
    (0,)
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import duckdb

from .errors import StoreError, locked_error

__all__ = ["connect", "table_cache_bytes", "transaction", "trim_table_cache"]


def connect(path: str | Path, memory_limit: str | None) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection to ``path`` (``":memory:"`` or a file), with ``memory_limit``.

    Raises:
        StoreLockedError: another process holds the file.
        StoreError: the file cannot be opened (the message says why).

    Example:
        >>> try:
        ...     connect("/nonexistent/dir/x.duckdb", None)
        ... except StoreError as error:
        ...     str(error).split(":")[0]
        'cannot open event store /nonexistent/dir/x.duckdb'
    """
    config = {"memory_limit": memory_limit} if memory_limit else {}
    try:
        return duckdb.connect(str(path), config=config)
    except duckdb.Error as error:
        message = str(error)
        if "Conflicting lock" in message:
            raise locked_error(path, message) from None
        reason = message.removeprefix("IO Error: ")
        raise StoreError(f"cannot open event store {path}: {reason}") from error


@contextlib.contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """BEGIN; COMMIT when the block ends, ROLLBACK (and re-raise) when anything raises.

    A failed COMMIT has already ended the transaction, so the ROLLBACK after it
    may fail too: that second error is not the news and is suppressed.
    """
    con.execute("BEGIN TRANSACTION")
    try:
        yield con
        con.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(duckdb.Error):
            con.execute("ROLLBACK")
        raise


def table_cache_bytes(con: duckdb.DuckDBPyConnection) -> int:
    """Bytes of the database's table blocks DuckDB holds in memory (``duckdb_memory()``'s
    ``BASE_TABLE``).

    Example:
        >>> table_cache_bytes(connect(":memory:", None))
        0
    """
    rows = con.execute(
        "SELECT coalesce(sum(memory_usage_bytes), 0) FROM duckdb_memory() WHERE tag = 'BASE_TABLE'"
    ).fetchall()
    return int(rows[0][0])


def trim_table_cache(con: duckdb.DuckDBPyConnection, keep_bytes: int) -> int:
    """Evict cached table blocks down to about ``keep_bytes``; the bytes evicted.

    DuckDB keeps every table block it has read until its ``memory_limit`` needs the
    room. An identity lookup in the store (a filter false positive,
    :mod:`xebench.store.fingerprints`) scans a whole key column, so once the store
    holds millions of rows those scans fill the cache up to the limit: measured in
    process, ``BASE_TABLE`` went from ~20 MB at 5 M events to 86 MB at 8 M, and
    the service's resident size with it. DuckDB has no call to drop its cache; a
    lower ``memory_limit`` evicts unpinned blocks at once (~10 ms), so the limit is
    lowered to what everything else holds plus ``keep_bytes`` and set back. If
    DuckDB cannot get that low (blocks pinned by a running query), nothing changes.

    Example:
        >>> con = connect(":memory:", "64MB")
        >>> trim_table_cache(con, 16 << 20)  # nothing cached: nothing to do
        0
        >>> con.execute("SELECT current_setting('memory_limit')").fetchall()
        [('61.0 MiB',)]
    """
    rows = con.execute(
        "SELECT coalesce(sum(memory_usage_bytes), 0),"
        " coalesce(sum(memory_usage_bytes) FILTER (WHERE tag = 'BASE_TABLE'), 0)"
        " FROM duckdb_memory()"
    ).fetchall()
    total, cached = int(rows[0][0]), int(rows[0][1])
    if cached <= keep_bytes:
        return 0
    limit = con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]
    try:
        con.execute(f"SET memory_limit = '{total - cached + keep_bytes}B'")
    except duckdb.Error:  # pinned: try again at the next pass
        return 0
    finally:
        con.execute(f"SET memory_limit = '{limit}'")
    return max(0, cached - table_cache_bytes(con))
