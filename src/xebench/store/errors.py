"""The store's failures: what cannot be opened, what is locked, what means "reopen me".

Example:
    >>> issubclass(StoreLockedError, StoreError), OSError in STORE_FAILURES
    (True, True)
"""

from __future__ import annotations

import re
from pathlib import Path

import duckdb

from ..errors import StoreError, StoreLockedError

__all__ = ["STORE_FAILURES", "StoreError", "StoreLockedError", "locked_error"]


#: Errors meaning the store itself failed (disk, file, memory), not one bad
#: batch: the service's writer answers 503 and reopens the store. A full disk
#: shows as an IOException when a checkpoint cannot write the database file, as
#: a TransactionException ("Failed to commit: Could not write file ... .wal: No
#: space left on device") when the commit cannot write the WAL (DuckDB 2.0.1),
#: or as a FatalException once the database is invalidated. With one writer a
#: TransactionException is never one batch's fault (no write-write conflicts).
STORE_FAILURES: tuple[type[BaseException], ...] = (
    duckdb.IOException,
    duckdb.TransactionException,
    duckdb.FatalException,
    duckdb.InternalException,
    duckdb.OutOfMemoryException,
    OSError,
)

_LOCK_HOLDER = re.compile(r"Conflicting lock is held in (?P<program>.*?) \(PID (?P<pid>\d+)\)")


def _command_line(pid: int) -> str | None:
    """The command line of ``pid`` from ``/proc`` (Linux), shortened; None when unreadable."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    command = " ".join(part.decode(errors="replace") for part in raw.split(b"\0") if part)
    return (command[:197] + "...") if len(command) > 200 else command or None


def locked_error(path: str | Path, message: str) -> StoreLockedError:
    """The :class:`StoreLockedError` for DuckDB's "Conflicting lock" ``message``.

    Example:
        >>> locked_error("x.duckdb", "IO Error: Could not set lock").pid is None
        True
    """
    match = _LOCK_HOLDER.search(message)
    if match is None:
        return StoreLockedError(path, None)
    pid = int(match["pid"])
    return StoreLockedError(path, pid, _command_line(pid) or match["program"])
