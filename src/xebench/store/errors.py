"""The store's failures: what cannot be opened, what is locked, what means "reopen me".

Example:
    >>> issubclass(StoreLockedError, StoreError), OSError in STORE_FAILURES
    (True, True)
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import duckdb

from ..errors import XebenchError

__all__ = ["STORE_FAILURES", "StoreError", "StoreLockedError", "locked_error"]


class StoreError(XebenchError, OSError):
    """The event store cannot be opened or used; the message says why.

    It is also an :class:`OSError`, so code that reports unusable files (the
    CLI) reports an unusable database the same way.

    Example:
        >>> error = StoreError("cannot open event store x.duckdb: not a DuckDB file")
        >>> isinstance(error, OSError), str(error)
        (True, 'cannot open event store x.duckdb: not a DuckDB file')
    """


class StoreLockedError(StoreError):
    """Another process holds the database file: DuckDB allows one writing process.

    Also raised when this process already has the file open in another
    :class:`EventStore` (DuckDB would share the database between the two,
    each with its own fingerprint index).

    Attributes:
        path: the database file.
        pid: the holding process, when DuckDB names it.
        command: its command line (from ``/proc``), or the program DuckDB names.

    Example:
        >>> error = StoreLockedError("/data/x.duckdb", 4242, "xebench serve")
        >>> error.pid, str(error)
        (4242, 'database /data/x.duckdb is in use by another process (PID 4242: xebench serve):
         DuckDB allows one writing process; stop that process or pass another --db')
    """

    def __init__(self, path: str | Path, pid: int | None, command: str | None = None) -> None:
        self.path = path
        self.pid = pid
        self.command = command
        if pid is not None and pid == os.getpid():
            super().__init__(
                f"database {path} is already open in this process (PID {pid}): close that "
                "EventStore first (two would share the file with separate indexes)"
            )
            return
        holder = "PID unknown" if pid is None else f"PID {pid}"
        if command:
            holder += f": {command}"
        super().__init__(
            f"database {path} is in use by another process ({holder}): DuckDB allows one "
            "writing process; stop that process or pass another --db"
        )


#: Errors meaning the store itself failed (disk, file, memory), not one bad
#: batch: the service's writer answers 503 and reopens the store.
STORE_FAILURES: tuple[type[BaseException], ...] = (
    duckdb.IOException,
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
