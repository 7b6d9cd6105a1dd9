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

__all__ = ["connect", "transaction"]


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
