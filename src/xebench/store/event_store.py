"""The embedded event store: predictions, labels and their join in one DuckDB file.

Tables (schema version :data:`SCHEMA_VERSION`; :data:`MIGRATIONS` upgrade an
older file when it is opened):

- ``meta``: ``schema_version``.
- ``predictions``: every accepted prediction event, the columns of
  :data:`~xebench.store.schema.PREDICTION_SCHEMA`.
- ``labels``: every accepted label event (:data:`~xebench.store.schema.LABEL_SCHEMA`),
  one per (tenant, model, request_id); ``model = ''`` applies to every
  model's prediction of that request.
- ``pending_labels``: labels whose prediction had not arrived when they were
  stored. A row leaves when a matching prediction commits; rows received more
  than ``join_window`` ago are *orphans*: counted, kept, never dropped.
- the view ``joined``: each prediction that has a label, with ``label``,
  ``label_time`` and ``label_ingest_time``; a label naming the model wins over
  a model-less one.
- ``drift_references``: a drift reference supplied as data, per (tenant,
  model), as counts of each feature in its monitoring bins
  (:mod:`xebench.monitor.references`); the bucket tables are :mod:`xebench.store.buckets`'.

Idempotency without a database index. DuckDB's ART index on 1e7 keys outgrew a
300 MB memory limit (it is not evictable) and multi-column keys are not used
for lookups, so the tables have no key and the store keeps the 64-bit identity
fingerprints in memory instead (:class:`FingerprintIndex`): predictions' ``fp``
and ``rfp`` and labels' ``fp``, 8 bytes each -- 24 bytes per prediction + label
pair, 240 MB at 1e7 pairs, loaded when the store opens. A hit is only a
candidate: the stored rows are read back and compared on (tenant, model,
request_id), then payload hash, before an event counts as a duplicate (same
payload, skipped) or a conflict (different payload: the batch is refused).
Whether a label has its prediction is decided on fingerprints alone (a false
match needs a 64-bit collision, about 5e-13 per label at 1e7 predictions, and
would only keep one label out of the orphan count: ``joined`` itself joins on
the exact identity).

One thread writes (the service's writer, or ``xebench ingest``); each
:meth:`EventStore.write` is one transaction, and the in-memory state changes
only after its COMMIT returned (DuckDB syncs the write-ahead log on commit).
Reads may come from any thread, each on its own cursor.

Example:
    >>> from xebench.ingest.events import parse_labels, parse_predictions
    >>> store = EventStore(":memory:")
    >>> store.insert_labels(parse_labels([{"request_id": "r1", "label": 1}], tenant="t")).pending
    1
    >>> pred = parse_predictions([{"request_id": "r1", "model": "m", "probabilities": 0.9}],
    ...                          tenant="t")
    >>> store.insert_predictions(pred).joined, store.insert_predictions(pred).duplicates
    (1, 1)
    >>> store.counts("t")
    {'predictions': 1, 'labels': 1, 'pending': 0, 'orphans': 0}
    >>> store.cursor().execute("SELECT request_id, model, label FROM joined").fetchall()
    [('r1', 'm', '1')]
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

from ..errors import InvalidInputError, XebenchError
from .buckets import HOURLY, MIGRATION_2, MIGRATION_3_HOURS, Buckets, MonitorConfig
from .schema import LABEL_SCHEMA, PREDICTION_SCHEMA

__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "STORE_FAILURES",
    "Conflict",
    "EventBatch",
    "EventStore",
    "FingerprintIndex",
    "StoreError",
    "StoreLockedError",
    "WriteOutcome",
]


# --- errors -----------------------------------------------------------------------------


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


def _locked(path: str | Path, message: str) -> StoreLockedError:
    match = _LOCK_HOLDER.search(message)
    if match is None:
        return StoreLockedError(path, None)
    pid = int(match["pid"])
    return StoreLockedError(path, pid, _command_line(pid) or match["program"])


# --- schema -----------------------------------------------------------------------------

# Migration 1. Frozen: a later schema change is a new migration, never an edit here
# (files created by this version must upgrade the same way everywhere).
_MIGRATION_1 = """
CREATE TABLE predictions (
    fp BIGINT NOT NULL, rfp BIGINT NOT NULL, tenant VARCHAR NOT NULL, model VARCHAR NOT NULL,
    version VARCHAR NOT NULL, request_id VARCHAR NOT NULL,
    event_time TIMESTAMPTZ NOT NULL, ingest_time TIMESTAMPTZ NOT NULL,
    classes VARCHAR[] NOT NULL, probabilities DOUBLE[] NOT NULL,
    cohort MAP(VARCHAR, VARCHAR) NOT NULL, features VARCHAR NOT NULL,
    payload_hash BIGINT NOT NULL
);
CREATE TABLE labels (
    fp BIGINT NOT NULL, tenant VARCHAR NOT NULL, model VARCHAR NOT NULL,
    request_id VARCHAR NOT NULL, label VARCHAR NOT NULL,
    event_time TIMESTAMPTZ NOT NULL, ingest_time TIMESTAMPTZ NOT NULL,
    payload_hash BIGINT NOT NULL
);
CREATE TABLE pending_labels (
    fp BIGINT NOT NULL, tenant VARCHAR NOT NULL, model VARCHAR NOT NULL,
    request_id VARCHAR NOT NULL, received_at TIMESTAMPTZ NOT NULL
);
-- Candidates first, by fingerprint alone (integer hash joins: cheap); then the label
-- naming the model (m), else the model-less one (a), compared on the exact identity.
CREATE VIEW joined AS
WITH candidates AS (
    SELECT * FROM predictions
    WHERE fp IN (SELECT fp FROM labels) OR rfp IN (SELECT fp FROM labels WHERE model = '')
)
SELECT p.*,
       CASE WHEN m.fp IS NOT NULL THEN m.label ELSE a.label END AS label,
       CASE WHEN m.fp IS NOT NULL THEN m.event_time ELSE a.event_time END AS label_time,
       CASE WHEN m.fp IS NOT NULL THEN m.ingest_time ELSE a.ingest_time END
           AS label_ingest_time
FROM candidates p
LEFT JOIN labels m
  ON m.fp = p.fp AND m.tenant = p.tenant AND m.model = p.model
 AND m.request_id = p.request_id
LEFT JOIN labels a
  ON a.fp = p.rfp AND a.tenant = p.tenant AND a.model = '' AND a.request_id = p.request_id
WHERE m.fp IS NOT NULL OR a.fp IS NOT NULL;
"""

# Migration 3: drift references supplied as data (xebench.monitor.references), as counts in the
# model's monitoring bins -- never the uploaded rows themselves; and the hourly twins of
# the bucket tables (buckets.MIGRATION_3_HOURS). Frozen.
_MIGRATION_3 = """
CREATE TABLE drift_references (
    tenant VARCHAR NOT NULL, model VARCHAR NOT NULL, feature VARCHAR NOT NULL,
    counts DOUBLE[] NOT NULL, n_rows BIGINT NOT NULL, source VARCHAR NOT NULL,
    uploaded_at TIMESTAMPTZ NOT NULL
);
"""

#: ``MIGRATIONS[i]`` takes a database from schema version ``i`` to ``i + 1``: SQL
#: text, or a function of the DuckDB connection. Append, never edit.
MIGRATIONS: list[str | Callable[[duckdb.DuckDBPyConnection], None]] = [
    _MIGRATION_1,
    MIGRATION_2,
    _MIGRATION_3 + MIGRATION_3_HOURS,
]

#: The schema version this code writes.
SCHEMA_VERSION = len(MIGRATIONS)

_TABLES = ("predictions", "labels", "pending_labels")
# Delta rows of the bucket tables tolerated before a fold also compacts them.
_COMPACT_AFTER = 5_000
_SCHEMAS = {"predictions": PREDICTION_SCHEMA, "labels": LABEL_SCHEMA}

# Rows ingested within this span are looked up first when a fingerprint hits:
# retries come soon after the original, and the ingest-time zone maps then let
# DuckDB skip every older row group (5 ms instead of ~100 ms at 1e7 rows).
_RECENT = timedelta(hours=1)


# --- the fingerprint index --------------------------------------------------------------

_SMALL = 1 << 16  # below this np.searchsorted is as fast as anything


def _member(haystack: NDArray[np.int64], needles: NDArray[np.int64]) -> NDArray[np.bool_]:
    """Which of the sorted ``needles`` are in the sorted ``haystack``."""
    if not haystack.size or not needles.size:
        return np.zeros(needles.shape, dtype=bool)
    if haystack.size <= _SMALL:
        at = np.searchsorted(haystack, needles)
        np.minimum(at, haystack.size - 1, out=at)
        return haystack[at] == needles
    # A branchless binary search run for all needles at once: the loads of one step
    # are independent, so the CPU overlaps their cache misses; about 3x faster than
    # np.searchsorted on 1e7 keys (1.3 ms instead of 4.5 ms for 5,000 needles).
    base = np.zeros(needles.size, dtype=np.intp)
    size = haystack.size
    while size > 1:
        half = size >> 1
        probe = base + half
        np.copyto(base, probe, where=haystack[probe] <= needles)
        size -= half
    return haystack[base] == needles


def _merge(a: NDArray[np.int64], b: NDArray[np.int64]) -> NDArray[np.int64]:
    """Two sorted arrays into one sorted array."""
    if not b.size:
        return a
    if not a.size:
        return b
    out = np.concatenate([a, b])
    out.sort(kind="stable")  # timsort: finds the two sorted runs and merges them in O(n)
    return out


def _without(a: NDArray[np.int64], gone: NDArray[np.int64]) -> NDArray[np.int64]:
    """The sorted unique array ``a`` less the sorted unique keys ``gone``."""
    if not a.size or not gone.size:
        return a
    at = np.searchsorted(a, gone)
    inside = at < a.size
    at = at[inside]
    hit = a[at] == gone[inside]
    return np.delete(a, at[hit]) if hit.any() else a


def _sorted_unique(keys: NDArray[np.int64]) -> NDArray[np.int64]:
    """Sorted distinct keys (np.unique hashes first: 11 s instead of 0.7 s at 1e7 keys)."""
    keys = np.sort(keys)
    if keys.size > 1:
        keys = keys[np.concatenate(([True], keys[1:] != keys[:-1]))]
    return keys


def _int64(keys: Any) -> NDArray[np.int64]:
    if isinstance(keys, pa.ChunkedArray | pa.Array):
        keys = keys.to_numpy()
    return np.ascontiguousarray(keys, dtype=np.int64)


class FingerprintIndex:
    """Exact membership of int64 fingerprints: a sorted array and a small sorted log.

    Keys are kept once each, sorted, in a main NumPy array; new keys are merged
    into a log array, which merges into the main array once it holds
    ``merge_at`` keys (a lookup searches both). Memory is 8 bytes per key; a
    merge into the main array briefly needs about 2.5 times the main array
    (a copy and timsort's buffer), and takes ~125 ms at 1e7 keys.

    Example:
        >>> index = FingerprintIndex(np.array([5, 1, 5], dtype=np.int64))
        >>> index.add(np.array([3, 1], dtype=np.int64))
        >>> index.contains(np.array([1, 2, 3, 5], dtype=np.int64)).tolist(), len(index)
        ([True, False, True, True], 3)
        >>> index.remove(np.array([5], dtype=np.int64))
        >>> index.contains(np.array([5, 3], dtype=np.int64)).tolist(), index.nbytes
        ([False, True], 16)
    """

    def __init__(self, keys: Any = None, *, merge_at: int = 1 << 18) -> None:
        self.merge_at = merge_at
        main = _sorted_unique(_int64(keys)) if keys is not None else np.empty(0, dtype=np.int64)
        self._main: NDArray[np.int64] = main
        self._log: NDArray[np.int64] = np.empty(0, dtype=np.int64)

    def __len__(self) -> int:
        return int(self._main.size + self._log.size)

    @property
    def nbytes(self) -> int:
        """Bytes held by the key arrays."""
        return int(self._main.nbytes + self._log.nbytes)

    def contains(self, keys: Any) -> NDArray[np.bool_]:
        """One boolean per key: is it in the index."""
        keys = _int64(keys)
        if keys.size <= 1:
            return _member(self._main, keys) | _member(self._log, keys)
        # Sorted needles make consecutive searches touch the same cache lines.
        order = np.argsort(keys, kind="stable")
        ordered = keys[order]
        found = _member(self._main, ordered) | _member(self._log, ordered)
        out = np.empty(keys.size, dtype=bool)
        out[order] = found
        return out

    def add(self, keys: Any) -> None:
        """Add ``keys``; keys already present (or repeated) are kept once."""
        new = _sorted_unique(_int64(keys))
        new = new[~(_member(self._main, new) | _member(self._log, new))]
        if not new.size:
            return
        log = _merge(self._log, new)
        if log.size >= self.merge_at:
            self._main, self._log = _merge(self._main, log), np.empty(0, dtype=np.int64)
        else:
            self._log = log

    def remove(self, keys: Any) -> None:
        """Forget ``keys`` (absent keys are ignored); used by retention."""
        gone = _sorted_unique(_int64(keys))
        self._main = _without(self._main, gone)
        self._log = _without(self._log, gone)


# --- what a write takes and returns -----------------------------------------------------


@dataclass(frozen=True)
class EventBatch:
    """One validated batch: ``kind`` and a table with exactly that kind's schema.

    Example:
        >>> from xebench.store.schema import LABEL_SCHEMA
        >>> EventBatch("labels", LABEL_SCHEMA.empty_table()).kind
        'labels'
    """

    kind: Literal["predictions", "labels"]
    table: pa.Table


@dataclass(frozen=True)
class Conflict:
    """An event whose identity is stored (or earlier in the write) with another payload.

    ``index`` is the event's row in its batch's table.

    Example:
        >>> Conflict(3, "fraud", "tx-9")
        Conflict(index=3, model='fraud', request_id='tx-9')
    """

    index: int
    model: str
    request_id: str


@dataclass
class WriteOutcome:
    """What became of one batch.

    Attributes:
        inserted: rows stored for the first time.
        duplicates: rows identical to stored ones (or to earlier rows of the
            same write), not stored again.
        conflicts: rows whose identity is stored with another payload; when
            there are any, nothing of the batch is stored and the counts are 0.
        pending: new labels whose prediction has not arrived (label batches).
        joined: new labels that found their prediction (label batches), or new
            predictions that found a stored label (prediction batches).

    Example:
        >>> WriteOutcome(inserted=2, duplicates=1, conflicts=[])
        WriteOutcome(inserted=2, duplicates=1, conflicts=[], pending=0, joined=0)
    """

    inserted: int
    duplicates: int
    conflicts: list[Conflict] = field(default_factory=list)
    pending: int = 0
    joined: int = 0


@dataclass
class _Call:
    """Keys stored by the current write call, not yet in the indexes (not committed)."""

    prediction_fps: list[NDArray[np.int64]] = field(default_factory=list)
    prediction_rfps: list[NDArray[np.int64]] = field(default_factory=list)
    label_fps: list[NDArray[np.int64]] = field(default_factory=list)
    seq: int = 0  # written on every event row: what the bucket fold has seen (buckets.py)
    classes: list[tuple[str, str, str, list[str]]] = field(default_factory=list)
    # Rows are inserted once per table at the end of the call (an INSERT costs ~1 ms
    # whatever its size); until then their payload hashes answer duplicate checks.
    rows: dict[str, list[pa.Table]] = field(default_factory=dict)
    releases: list[pa.Table] = field(default_factory=list)
    payloads: dict[str, dict[tuple[str, str, str], int]] = field(
        default_factory=lambda: {"predictions": {}, "labels": {}}
    )

    def defer(self, target: str, rows: pa.Table) -> None:
        """Queue ``rows`` for ``INSERT INTO target`` at the end of the call."""
        self.rows.setdefault(target, []).append(rows)
        if target in self.payloads:
            parts = (rows[name].to_pylist() for name in ("tenant", "model", "request_id"))
            hashes = rows["payload_hash"].to_pylist()
            self.payloads[target].update(zip(zip(*parts, strict=True), hashes, strict=True))

    @staticmethod
    def contains(parts: list[NDArray[np.int64]], keys: NDArray[np.int64]) -> NDArray[np.bool_]:
        if not parts:
            return np.zeros(keys.shape, dtype=bool)
        return np.isin(keys, np.concatenate(parts))


def _check_batch(number: int, batch: EventBatch) -> None:
    if not isinstance(batch, EventBatch) or not isinstance(batch.table, pa.Table):
        raise InvalidInputError(
            "batches", "must be EventBatch(kind, pyarrow.Table)", row=number, value=batch
        )
    schema = _SCHEMAS.get(batch.kind)
    if schema is None:
        raise InvalidInputError(
            "batches", "kind must be 'predictions' or 'labels'", row=number, value=batch.kind
        )
    got = [(f.name, f.type) for f in batch.table.schema]
    if got != [(f.name, f.type) for f in schema]:
        raise InvalidInputError(
            "batches",
            f"a {batch.kind} table must have the columns and types of xebench.store.schema",
            row=number,
            value=", ".join(f"{name}: {kind}" for name, kind in got),
        )


def _numpy_bool(values: pa.ChunkedArray | pa.Array) -> NDArray[np.bool_]:
    return np.asarray(values.to_numpy(zero_copy_only=False), dtype=bool)


# --- the store --------------------------------------------------------------------------

# Files open in this process: DuckDB would silently share one database between two
# stores, each with its own fingerprint index. Weak, so a leaked store frees its file.
_OPEN: weakref.WeakValueDictionary[str, EventStore] = weakref.WeakValueDictionary()
_OPEN_LOCK = threading.Lock()


class EventStore:
    """Predictions, labels, pending labels and their join; see the module docstring.

    Args:
        path: a DuckDB file (created if missing; its directory must exist) or
            ``":memory:"``.
        join_window: pending labels received longer ago than this are orphans.
        monitor: what the per-minute monitoring statistics keep (see
            :mod:`xebench.store.buckets`); :meth:`update_buckets` folds new events in.
        memory_limit: DuckDB's memory limit, e.g. ``"512MB"`` (None: DuckDB's
            default, 80% of RAM). The fingerprint indexes are outside it.

    Raises:
        StoreLockedError: another process has the file open.
        StoreError: the file cannot be opened, or was written by a newer
            xebench (a higher schema version).

    Example:
        >>> with EventStore(":memory:") as store:
        ...     store.schema_version == SCHEMA_VERSION, store.counts()["predictions"]
        (True, 0)
    """

    def __init__(
        self,
        path: str | Path = ":memory:",
        *,
        join_window: timedelta = timedelta(days=7),
        memory_limit: str | None = None,
        monitor: MonitorConfig | None = None,
    ) -> None:
        self.path: str | Path = path if str(path) == ":memory:" else Path(path)
        self.join_window = join_window
        self.buckets = Buckets(monitor)
        self._closed = True
        self._stale: str | None = None  # why the memory state may be wrong after a commit
        self._key = None if str(path) == ":memory:" else str(Path(path).resolve())
        if self._key is not None:
            with _OPEN_LOCK:
                if self._key in _OPEN:
                    raise StoreLockedError(path, os.getpid())
                _OPEN[self._key] = self
        try:
            self._con = self._connect(memory_limit)
            try:
                self._writer = self._con.cursor()  # only the writing thread uses it
                self.schema_version = self._migrate()
                self._load()
            except BaseException:
                self._con.close()
                raise
        except BaseException:
            self._release()
            raise
        self._closed = False
        self._write_lock = threading.RLock()
        self._cursor_lock = threading.Lock()

    def _connect(self, memory_limit: str | None) -> duckdb.DuckDBPyConnection:
        config = {"memory_limit": memory_limit} if memory_limit else {}
        try:
            return duckdb.connect(str(self.path), config=config)
        except duckdb.Error as error:
            message = str(error)
            if "Conflicting lock" in message:
                raise _locked(self.path, message) from None
            reason = message.removeprefix("IO Error: ")
            raise StoreError(f"cannot open event store {self.path}: {reason}") from error

    def _release(self) -> None:
        if self._key is not None:
            with _OPEN_LOCK:
                if _OPEN.get(self._key) is self:
                    del _OPEN[self._key]
            self._key = None

    def _migrate(self) -> int:
        """Create or upgrade the schema in one transaction; return the schema version."""
        con = self._writer
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute("CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR)")
            row = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            version = int(row[0]) if row else 0
            target = len(MIGRATIONS)
            if version > target:
                raise StoreError(
                    f"event store {self.path} has schema version {version}, newer than this "
                    f"xebench knows ({target}); upgrade xebench"
                )
            for step in MIGRATIONS[version:]:
                if callable(step):
                    step(con)
                else:
                    con.execute(step)
            if version != target:
                con.execute(
                    "INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", [str(target)]
                )
            con.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(duckdb.Error):
                con.execute("ROLLBACK")
            raise
        return target

    def _load(self) -> None:
        """Read every fingerprint and the classes of each model into memory."""
        con = self._writer

        def keys(sql: str) -> NDArray[np.int64]:
            return _int64(con.execute(sql).fetchnumpy()["fp"])

        self._prediction_fps = FingerprintIndex(keys("SELECT fp FROM predictions"))
        self._prediction_rfps = FingerprintIndex(keys("SELECT rfp AS fp FROM predictions"))
        self._label_fps = FingerprintIndex(keys("SELECT fp FROM labels"))
        self._load_classes(con)
        (self._seq,) = con.execute(
            "SELECT greatest((SELECT coalesce(max(seq), 0) FROM predictions),"
            " (SELECT coalesce(max(seq), 0) FROM labels))"
        ).fetchone()
        self.buckets.load(con)

    def _load_classes(self, con: duckdb.DuckDBPyConnection) -> None:
        rows = con.execute("SELECT DISTINCT tenant, model, version, classes FROM predictions")
        classes: dict[tuple[str, str, str], frozenset[tuple[str, ...]]] = {}
        for tenant, model, version, seen in rows.fetchall():
            key = (tenant, model, version)
            classes[key] = classes.get(key, frozenset()) | {tuple(seen)}
        # (tenant, model, version) -> the class lists seen; replaced, never mutated, so
        # that readers on other threads can iterate a snapshot.
        self._classes = classes

    # --- lifecycle ------------------------------------------------------------------------

    def close(self) -> None:
        """Close the database; committed rows are already durable. Closing twice is fine."""
        if self._closed:
            return
        self._closed = True
        try:
            with self._write_lock:
                self._con.close()  # closes the cursors made from it too
        finally:
            self._release()

    def __enter__(self) -> EventStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def checkpoint(self) -> None:
        """Fold the write-ahead log into the database file (DuckDB also does it by itself).

        Example:
            >>> EventStore(":memory:").checkpoint()
        """
        with self._write_lock:
            self._open_writer().execute("CHECKPOINT")

    def healthy(self) -> bool:
        """Whether the store is open, its memory state is sound and the database answers.

        Example:
            >>> store = EventStore(":memory:")
            >>> store.healthy(), store.close(), store.healthy()
            (True, None, False)
        """
        if self._closed or self._stale is not None:
            return False
        try:
            with self.cursor() as cursor:
                cursor.execute("SELECT count(*) FROM meta").fetchone()
        except Exception:
            return False
        return True

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A new DuckDB cursor for reading, from any thread; close it (or use ``with``).

        It sees the last committed state, never a write in progress.

        Example:
            >>> store = EventStore(":memory:")
            >>> with store.cursor() as cursor:
            ...     cursor.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchall()
            [('3',)]
        """
        if self._closed:
            raise StoreError(f"event store {self.path} is closed")
        with self._cursor_lock:  # making cursors concurrently is not safe in DuckDB's client
            return self._con.cursor()

    def _open_writer(self) -> duckdb.DuckDBPyConnection:
        if self._closed:
            raise StoreError(f"event store {self.path} is closed")
        if self._stale is not None:  # writing now could store a retry twice
            raise StoreError(f"event store {self.path} must be reopened: {self._stale}")
        return self._writer

    # --- writes ---------------------------------------------------------------------------

    def insert_predictions(self, table: pa.Table) -> WriteOutcome:
        """Write one batch of predictions (:data:`~xebench.store.schema.PREDICTION_SCHEMA`).

        Example:
            >>> from xebench.ingest.events import parse_predictions
            >>> table = parse_predictions(
            ...     [{"request_id": "a", "model": "m", "probabilities": 0.3}], tenant="t")
            >>> store = EventStore(":memory:")
            >>> store.insert_predictions(table).inserted, store.insert_predictions(table)
            (1, WriteOutcome(inserted=0, duplicates=1, conflicts=[], pending=0, joined=0))
        """
        return self.write([EventBatch("predictions", table)])[0]

    def insert_labels(self, table: pa.Table) -> WriteOutcome:
        """Write one batch of labels (:data:`~xebench.store.schema.LABEL_SCHEMA`).

        Example:
            >>> from xebench.ingest.events import parse_labels
            >>> table = parse_labels([{"request_id": "a", "label": 0}], tenant="t")
            >>> EventStore(":memory:").insert_labels(table)
            WriteOutcome(inserted=1, duplicates=0, conflicts=[], pending=1, joined=0)
        """
        return self.write([EventBatch("labels", table)])[0]

    def write(self, batches: Sequence[EventBatch]) -> list[WriteOutcome]:
        """Write several batches in one transaction; one :class:`WriteOutcome` per batch.

        - A row whose identity is stored, or was accepted earlier in this call,
          with the same payload hash is a duplicate: counted, not stored again.
        - With another payload hash it is a conflict, and its batch stores
          nothing; the other batches still commit.
        - A new label joins its stored prediction (the same model, or any model
          when the label names none) or waits in ``pending_labels``; a new
          prediction releases the pending labels waiting for it. A prediction
          and its label written in the same call end up joined.

        Nothing is acknowledged before COMMIT returns, and if anything raises
        the transaction is rolled back and the in-memory state is unchanged.

        Raises:
            InvalidInputError: a batch is of an unknown kind or schema
                (before anything is written).

        Example:
            >>> from xebench.ingest.events import parse_labels, parse_predictions
            >>> p = parse_predictions([{"request_id": "a", "model": "m", "probabilities": 0.3}],
            ...                       tenant="t")
            >>> changed = parse_predictions(
            ...     [{"request_id": "a", "model": "m", "probabilities": 0.6}], tenant="t")
            >>> label = parse_labels([{"request_id": "a", "label": 1}], tenant="t")
            >>> store = EventStore(":memory:")
            >>> [(o.inserted, o.duplicates, len(o.conflicts), o.joined) for o in store.write(
            ...     [EventBatch("labels", label), EventBatch("predictions", p),
            ...      EventBatch("predictions", changed)])]
            [(1, 0, 0, 0), (1, 0, 0, 1), (0, 0, 1, 0)]
        """
        for number, batch in enumerate(batches):
            _check_batch(number, batch)
        if not batches:
            return []
        with self._write_lock:
            con = self._open_writer()
            call = _Call(seq=self._seq + 1)
            con.execute("BEGIN TRANSACTION")
            try:
                outcomes = [
                    self._write_predictions(con, batch.table, call)
                    if batch.kind == "predictions"
                    else self._write_labels(con, batch.table, call)
                    for batch in batches
                ]
                self._flush(con, call)
                con.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(duckdb.Error):  # a failed COMMIT has already ended it
                    con.execute("ROLLBACK")
                raise
            self._seq = call.seq
            self._publish(call)
            return outcomes

    def _publish(self, call: _Call) -> None:
        """Add what the call committed to the in-memory state."""
        try:
            for index, parts in (
                (self._prediction_fps, call.prediction_fps),
                (self._prediction_rfps, call.prediction_rfps),
                (self._label_fps, call.label_fps),
            ):
                if parts:
                    index.add(np.concatenate(parts))
            if call.classes:
                classes = dict(self._classes)  # copy on write: readers iterate the old one
                for tenant, model, version, seen in call.classes:
                    key = (tenant, model, version)
                    classes[key] = classes.get(key, frozenset()) | {tuple(seen)}
                self._classes = classes
        except BaseException as error:
            # The rows are committed but the keys are not all in memory: a retry could
            # be stored twice. Report unhealthy so that the owner reopens (and reloads).
            self._stale = f"{type(error).__name__} while updating the fingerprint index"
            raise

    def _resolve(
        self,
        con: duckdb.DuckDBPyConnection,
        kind: str,
        table: pa.Table,
        fps: NDArray[np.int64],
        candidates: NDArray[np.bool_],
        call: _Call,
    ) -> tuple[NDArray[np.bool_], int, list[Conflict]]:
        """Which rows are new; count duplicates; list conflicts.

        Only rows whose fingerprint is stored (``candidates``) or repeated in the
        batch are compared one by one; every other row is new.
        """
        keep = np.ones(table.num_rows, dtype=bool)
        order = np.argsort(fps, kind="stable")
        same = fps[order[1:]] == fps[order[:-1]]
        repeated = np.zeros(table.num_rows, dtype=bool)
        repeated[order[1:][same]] = True
        repeated[order[:-1][same]] = True
        rows = np.flatnonzero(candidates | repeated)
        if not rows.size:
            return keep, 0, []
        part = table.select(["tenant", "model", "request_id", "payload_hash"]).take(rows)
        columns = (part[name].to_pylist() for name in ("tenant", "model", "request_id"))
        identities = list(zip(*columns, strict=True))
        hashes = part["payload_hash"].to_pylist()
        stored_here = candidates[rows]
        wanted = {identity for identity, hit in zip(identities, stored_here, strict=True) if hit}
        seen = self._stored(con, kind, fps[rows[stored_here]], wanted, call)
        duplicates, conflicts = 0, []
        for row, identity, payload in zip(rows.tolist(), identities, hashes, strict=True):
            stored = seen.get(identity)
            if stored is None:  # the first occurrence of the identity: a new row
                seen[identity] = payload
                continue
            keep[row] = False
            if stored == payload:
                duplicates += 1
            else:
                conflicts.append(Conflict(row, identity[1], identity[2]))
        return keep, duplicates, conflicts

    def _stored(
        self,
        con: duckdb.DuckDBPyConnection,
        kind: str,
        fps: NDArray[np.int64],
        wanted: set[tuple[str, str, str]],
        call: _Call,
    ) -> dict[tuple[str, str, str], int]:
        """Payload hash of the stored rows with these fingerprints, by identity.

        Recent rows first (cheap: zone maps skip older row groups); the whole
        table only for fingerprints not found there (an old duplicate, or a
        64-bit collision).
        """
        written = call.payloads[kind]
        found = {identity: written[identity] for identity in wanted if identity in written}
        if not fps.size or wanted <= found.keys():
            return found
        sql = (
            f"SELECT tenant, model, request_id, payload_hash FROM {kind} "
            "WHERE fp IN (SELECT fp FROM _xb_keys)"
        )
        keys = _sorted_unique(fps)
        con.register("_xb_keys", pa.table({"fp": keys}))
        try:
            since = datetime.now(UTC) - _RECENT
            rows = con.execute(f"{sql} AND ingest_time >= ?", [since]).fetchall()
            found.update(((t, m, r), h) for t, m, r, h in rows)
            if wanted <= found.keys():
                return found
            # DuckDB pushes a Bloom filter of the keys into the scan, so this reads the
            # strings of matching rows only: ~70 ms at 1e7 rows, whatever the key count.
            rows = con.execute(sql).fetchall()
            found.update(((t, m, r), h) for t, m, r, h in rows)
            return found
        finally:
            con.unregister("_xb_keys")

    def _insert(
        self, con: duckdb.DuckDBPyConnection, target: str, rows: pa.Table, seq: int | None = None
    ) -> None:
        """``INSERT INTO target`` the Arrow ``rows``, matched by column name (plus ``seq``)."""
        con.register("_xb_rows", rows)
        extra = "" if seq is None else f", {int(seq)} AS seq"
        try:
            con.execute(f"INSERT INTO {target} BY NAME SELECT *{extra} FROM _xb_rows")
        finally:
            con.unregister("_xb_rows")

    def _write_predictions(
        self, con: duckdb.DuckDBPyConnection, table: pa.Table, call: _Call
    ) -> WriteOutcome:
        if not table.num_rows:
            return WriteOutcome(0, 0, [])
        fps = _int64(table["fp"])
        candidates = self._prediction_fps.contains(fps) | _Call.contains(call.prediction_fps, fps)
        keep, duplicates, conflicts = self._resolve(
            con, "predictions", table, fps, candidates, call
        )
        if conflicts:
            return WriteOutcome(0, 0, conflicts)
        new = table if keep.all() else table.filter(pa.array(keep))
        if not new.num_rows:
            return WriteOutcome(0, duplicates, [])
        fps, rfps = fps[keep], _int64(new["rfp"])
        call.defer("predictions", new)
        # Does a label wait for (or already exist for) any of the new predictions?
        labelled = np.zeros(new.num_rows, dtype=bool)
        for keys in (fps, rfps):
            labelled |= self._label_fps.contains(keys) | _Call.contains(call.label_fps, keys)
        if labelled.any():
            call.releases.append(new.filter(pa.array(labelled)))
        call.prediction_fps.append(fps)
        call.prediction_rfps.append(rfps)
        return WriteOutcome(int(new.num_rows), duplicates, [], joined=int(labelled.sum()))

    def _classes_of(
        self, con: duckdb.DuckDBPyConnection, rows: pa.Table
    ) -> list[tuple[str, str, str, list[str]]]:
        """The distinct class lists of each (tenant, model, version) in ``rows``."""
        first = rows.slice(0, 1).select(["tenant", "model", "version", "classes"]).to_pylist()[0]
        key = [first["tenant"], first["model"], first["version"]]
        same = all(len(pc.unique(rows[name])) == 1 for name in ("tenant", "model", "version"))
        lists = rows["classes"].combine_chunks()
        width = len(first["classes"])
        if same and pc.all(pc.equal(pc.list_value_length(lists), width)).as_py():
            # The usual batch: one model version, one class list (checked on codes: ~0.3 ms).
            codes = lists.flatten().dictionary_encode().indices.to_numpy()
            if width == 0 or (codes.reshape(-1, width) == codes[:width]).all():
                return [(*key, first["classes"])]
        con.register("_xb_rows", rows)
        try:
            return con.execute(
                "SELECT DISTINCT tenant, model, version, classes FROM _xb_rows"
            ).fetchall()
        finally:
            con.unregister("_xb_rows")

    def _flush(self, con: duckdb.DuckDBPyConnection, call: _Call) -> None:
        """Insert the call's rows, one statement per table, then release pending labels
        (after the pending rows of this very call are in)."""
        for target in ("predictions", "labels", "pending_labels"):
            if call.rows.get(target):
                # One chunk: DuckDB scans a table of many tiny chunks slowly.
                rows = pa.concat_tables(call.rows[target]).combine_chunks()
                seq = call.seq if target in _SCHEMAS else None
                self._insert(con, target, rows, seq)
                if target == "predictions":
                    call.classes.extend(self._classes_of(con, rows))
        if call.releases:
            self._release_pending(con, pa.concat_tables(call.releases))

    def _release_pending(self, con: duckdb.DuckDBPyConnection, rows: pa.Table) -> None:
        """Delete the pending labels that these new predictions satisfy (exact identity)."""
        con.register("_xb_keys", rows.select(["fp", "rfp", "tenant", "model", "request_id"]))
        try:
            con.execute(
                """
                DELETE FROM pending_labels AS q USING (
                    SELECT fp, tenant, model, request_id FROM _xb_keys
                    UNION ALL
                    SELECT rfp, tenant, '', request_id FROM _xb_keys
                ) AS k
                WHERE q.fp = k.fp AND q.tenant = k.tenant AND q.model = k.model
                  AND q.request_id = k.request_id
                """
            )
        finally:
            con.unregister("_xb_keys")

    def _write_labels(
        self, con: duckdb.DuckDBPyConnection, table: pa.Table, call: _Call
    ) -> WriteOutcome:
        if not table.num_rows:
            return WriteOutcome(0, 0, [])
        fps = _int64(table["fp"])
        candidates = self._label_fps.contains(fps) | _Call.contains(call.label_fps, fps)
        keep, duplicates, conflicts = self._resolve(con, "labels", table, fps, candidates, call)
        if conflicts:
            return WriteOutcome(0, 0, conflicts)
        new = table if keep.all() else table.filter(pa.array(keep))
        if not new.num_rows:
            return WriteOutcome(0, duplicates, [])
        fps = fps[keep]
        call.defer("labels", new)
        # A label naming a model matches that prediction's fp; a model-less label has
        # fp = fingerprint(tenant, "", request_id), which is every prediction's rfp.
        model_less = _numpy_bool(pc.equal(new["model"], ""))
        by_model = self._prediction_fps.contains(fps) | _Call.contains(call.prediction_fps, fps)
        by_request = self._prediction_rfps.contains(fps) | _Call.contains(call.prediction_rfps, fps)
        matched = np.where(model_less, by_request, by_model)
        waiting = ~matched
        if waiting.any():
            pending = new.filter(pa.array(waiting)).select(
                ["fp", "tenant", "model", "request_id", "ingest_time"]
            )
            received = pending.rename_columns([*pending.column_names[:4], "received_at"])
            call.defer("pending_labels", received)
        call.label_fps.append(fps)
        return WriteOutcome(
            int(new.num_rows),
            duplicates,
            [],
            pending=int(waiting.sum()),
            joined=int(matched.sum()),
        )

    # --- monitoring statistics -------------------------------------------------------------

    def update_buckets(self, *, compact: bool | None = None) -> dict[str, int]:
        """Fold every event committed since the last call into the bucket statistics.

        Each step (about ``monitor.fold_rows`` events) is its own transaction
        with the high-water marks, so a crash loses nothing and folds nothing
        twice. Then the delta rows are compacted (``compact=None``: when more
        than a few thousand have piled up). Returns what was folded.

        Example:
            >>> from xebench.ingest.events import parse_labels, parse_predictions
            >>> store = EventStore(":memory:")
            >>> _ = store.insert_predictions(parse_predictions(
            ...     [{"request_id": "a", "model": "m", "probabilities": 0.8}], tenant="t"))
            >>> _ = store.insert_labels(parse_labels([{"request_id": "a", "label": 1}], tenant="t"))
            >>> store.update_buckets()
            {'predictions': 1, 'joined': 1, 'compacted': 0}
        """
        done = {"predictions": 0, "joined": 0, "compacted": 0}
        with self._write_lock:
            con = self._open_writer()
            done.update(self._fold_steps(con))
            if compact is None:
                (pending,) = con.execute(
                    "SELECT "
                    + " + ".join(
                        f"(SELECT count(*) FROM {table} WHERE delta)"
                        for table in (*HOURLY, *HOURLY.values())
                    )
                ).fetchone()
                compact = pending > _COMPACT_AFTER
            if compact:
                done["compacted"] = self._transaction(con, self.buckets.compact, con)
        return done

    def rebuild_buckets(self, progress: Callable[[int], None] | None = None) -> dict[str, int]:
        """Recompute every bucket from the stored events (after an upgrade, or to audit).

        Feature bins and the cohort vocabulary are kept, so the result equals
        what incremental folding produced. ``progress`` gets the predictions
        folded after each step.

        Example:
            >>> EventStore(":memory:").rebuild_buckets()
            {'predictions': 0, 'joined': 0, 'compacted': 0}
        """
        with self._write_lock:
            con = self._open_writer()
            self._transaction(con, self.buckets.reset, con)
            done = {**self._fold_steps(con, progress), "compacted": 0}
            done["compacted"] = self._transaction(con, self.buckets.compact, con)
            return done

    def _fold_steps(
        self, con: duckdb.DuckDBPyConnection, progress: Callable[[int], None] | None = None
    ) -> dict[str, int]:
        """Fold from the high-water marks to the last commit, one transaction per step."""
        done = {"predictions": 0, "joined": 0}
        p_mark, l_mark = Buckets.marks(con)
        for step in list(self.buckets.steps(con, p_mark, l_mark)):
            folded = self._transaction(con, self.buckets.fold, con, *step)
            done["predictions"] += folded["predictions"]
            done["joined"] += folded["joined"]
            if progress is not None:
                progress(folded["predictions"])
        return done

    @staticmethod
    def _transaction(con: duckdb.DuckDBPyConnection, work: Callable[..., Any], *args: Any) -> Any:
        con.execute("BEGIN TRANSACTION")
        try:
            result = work(*args)
            con.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(duckdb.Error):
                con.execute("ROLLBACK")
            raise
        return result

    # --- drift references ------------------------------------------------------------------

    def put_reference(
        self,
        tenant: str,
        model: str,
        counts: Mapping[str, NDArray[np.float64]],
        rows: int,
        source: str,
        *,
        now: datetime | None = None,
    ) -> datetime:
        """Replace ``model``'s uploaded drift reference (counts per feature) in one
        transaction; returns when it was stored.

        Example:
            >>> store = EventStore(":memory:")
            >>> at = store.put_reference("t", "m", {"x": np.array([1.0, 2.0])}, 3, "ref.csv")
            >>> ref = store.reference("t", "m")
            >>> ref["rows"], ref["counts"]["x"].tolist(), ref["source"], ref["uploaded_at"] == at
            (3, [1.0, 2.0], 'ref.csv', True)
        """
        at = now or datetime.now(UTC)
        rows_of = [
            (tenant, model, name, np.asarray(c, dtype=np.float64).tolist(), rows, source, at)
            for name, c in sorted(counts.items())
        ]

        def replace() -> None:
            con.execute(
                "DELETE FROM drift_references WHERE tenant = ? AND model = ?", [tenant, model]
            )
            if rows_of:
                con.executemany(
                    "INSERT INTO drift_references VALUES (?, ?, ?, ?, ?, ?, ?)", rows_of
                )

        with self._write_lock:
            con = self._open_writer()
            self._transaction(con, replace)
        return at

    def reference(self, tenant: str, model: str) -> dict[str, Any] | None:
        """``model``'s uploaded drift reference: ``counts`` (feature -> array), ``rows``,
        ``source`` and ``uploaded_at``; None when there is none.

        Example:
            >>> EventStore(":memory:").reference("t", "m") is None
            True
        """
        sql = (
            "SELECT feature, counts, n_rows, source, uploaded_at FROM drift_references "
            "WHERE tenant = ? AND model = ? ORDER BY feature"
        )
        with self.cursor() as cursor:
            found = cursor.execute(sql, [tenant, model]).fetchall()
        if not found:
            return None
        return {
            "counts": {row[0]: np.array(row[1], dtype=np.float64) for row in found},
            "rows": int(found[0][2]),
            "source": found[0][3],
            "uploaded_at": found[0][4].astimezone(UTC),
        }

    def delete_reference(self, tenant: str, model: str) -> bool:
        """Remove ``model``'s uploaded drift reference; False when there was none.

        Example:
            >>> store = EventStore(":memory:")
            >>> _ = store.put_reference("t", "m", {"x": np.ones(2)}, 2, "r.csv")
            >>> store.delete_reference("t", "m"), store.delete_reference("t", "m")
            (True, False)
        """
        with self._write_lock:
            con = self._open_writer()
            (n,) = self._transaction(
                con,
                lambda: con.execute(
                    "DELETE FROM drift_references WHERE tenant = ? AND model = ?", [tenant, model]
                ).fetchone(),
            )
        return n > 0

    # --- reads ----------------------------------------------------------------------------

    def known_labels(self, tenant: str, model: str | None) -> set[str] | None:
        """The classes seen in ``model``'s predictions (every model's when None), or None.

        None means the tenant has no prediction of that model (or none at all),
        so a label cannot be checked yet. Answered from memory.

        Example:
            >>> from xebench.ingest.events import parse_predictions
            >>> store = EventStore(":memory:")
            >>> _ = store.insert_predictions(parse_predictions(
            ...     [{"request_id": "a", "model": "m", "probabilities": {"cat": 0.4, "dog": 0.6}}],
            ...     tenant="t"))
            >>> sorted(store.known_labels("t", "m")), store.known_labels("t", "other")
            (['cat', 'dog'], None)
        """
        union: set[str] | None = None
        for (owner, name, _), seen in self._classes.items():  # a snapshot: see _load_classes
            if owner == tenant and (model is None or name == model):
                union = union or set()
                for classes in seen:
                    union.update(classes)
        return union

    def models(self, tenant: str) -> list[dict[str, Any]]:
        """One entry per (model, version) of ``tenant``, sorted by model and version.

        Keys: ``model``, ``version``, ``predictions``, ``labels`` and ``joined``
        (the predictions that have a label: a prediction has at most one, so
        the two are equal), ``first_event`` and ``last_event`` (ISO 8601, UTC,
        event time) and ``classes`` (the class lists seen, usually one).

        Example:
            >>> from xebench.ingest.events import parse_predictions
            >>> store = EventStore(":memory:")
            >>> _ = store.insert_predictions(parse_predictions(
            ...     [{"request_id": "a", "model": "m", "version": "v1", "probabilities": 0.3,
            ...       "timestamp": "2026-01-01T00:00:00Z"}], tenant="t"))
            >>> store.models("t")
            [{'model': 'm', 'version': 'v1', 'predictions': 1, 'labels': 0, 'joined': 0,
              'first_event': '2026-01-01T00:00:00+00:00',
              'last_event': '2026-01-01T00:00:00+00:00', 'classes': [['0', '1']]}]
        """
        sql = """
            WITH p AS (
                SELECT model, version, count(*) AS n,
                       min(event_time) AS first_event, max(event_time) AS last_event
                FROM predictions WHERE tenant = $tenant GROUP BY model, version
            ), j AS (
                SELECT model, version, count(*) AS joined
                FROM joined WHERE tenant = $tenant GROUP BY model, version
            )
            SELECT p.model, p.version, p.n, coalesce(j.joined, 0), p.first_event, p.last_event
            FROM p LEFT JOIN j USING (model, version)
            ORDER BY p.model, p.version
        """
        with self.cursor() as cursor:
            rows = cursor.execute(sql, {"tenant": tenant}).fetchall()
        classes = self._classes  # from memory: a scan of every class list costs ~1 s at 1e7
        return [
            {
                "model": model,
                "version": version,
                "predictions": n,
                "labels": joined,
                "joined": joined,
                "first_event": first.astimezone(UTC).isoformat(),
                "last_event": last.astimezone(UTC).isoformat(),
                "classes": sorted(list(c) for c in classes.get((tenant, model, version), ())),
            }
            for model, version, n, joined, first, last in rows
        ]

    def counts(self, tenant: str | None = None, *, now: datetime | None = None) -> dict[str, int]:
        """Stored predictions, labels, pending labels and orphans (of ``tenant``, or all).

        Orphans are pending labels received more than ``join_window`` before
        ``now`` (default: the current time); they are kept and still join if
        their prediction comes.

        Example:
            >>> from xebench.ingest.events import parse_labels
            >>> store = EventStore(":memory:", join_window=timedelta(days=1))
            >>> _ = store.insert_labels(parse_labels([{"request_id": "a", "label": 1}], tenant="t"))
            >>> store.counts("t", now=datetime.now(UTC) + timedelta(days=2))
            {'predictions': 0, 'labels': 1, 'pending': 1, 'orphans': 1}
        """
        cutoff = (now or datetime.now(UTC)) - self.join_window
        where = "WHERE tenant = $tenant" if tenant is not None else "WHERE true"
        params: dict[str, Any] = {"cutoff": cutoff}
        if tenant is not None:
            params["tenant"] = tenant
        sql = f"""
            SELECT (SELECT count(*) FROM predictions {where}),
                   (SELECT count(*) FROM labels {where}),
                   (SELECT count(*) FROM pending_labels {where}),
                   (SELECT count(*) FROM pending_labels {where} AND received_at < $cutoff)
        """
        with self.cursor() as cursor:
            row = cursor.execute(sql, params).fetchone()
        return dict(zip(("predictions", "labels", "pending", "orphans"), row, strict=True))

    def checksum(self, tenant: str | None = None) -> str:
        """A digest of every stored row (of ``tenant``, or all), independent of row order.

        Per table, the row count and the sum of DuckDB's ``hash`` of each row:
        equal before and after an operation means nothing was stored or lost
        (stable within one DuckDB version).

        Example:
            >>> EventStore(":memory:").checksum()
            'predictions:0:0 labels:0:0 pending_labels:0:0'
        """
        where = "WHERE t.tenant = $tenant" if tenant is not None else ""
        params = {"tenant": tenant} if tenant is not None else {}
        parts = []
        with self.cursor() as cursor:
            for name in _TABLES:
                sql = f"SELECT count(*), coalesce(sum(hash(t)), 0) FROM {name} AS t {where}"
                n, total = cursor.execute(sql, params).fetchone()
                parts.append(f"{name}:{n}:{total}")
        return " ".join(parts)

    # --- retention ------------------------------------------------------------------------

    def apply_retention(self, days: float, *, now: datetime | None = None) -> dict[str, int]:
        """Delete predictions and labels older than ``days``; return the counts deleted.

        A prediction goes when its event time is older than ``now - days``, a
        label when its ingest time is (then its pending row too); their keys
        leave the fingerprint indexes, so the same event can be sent again.
        The bucket statistics outlive the raw events (so a later
        :meth:`rebuild_buckets` can only recompute what is still stored).

        Example:
            >>> from xebench.ingest.events import parse_predictions
            >>> store = EventStore(":memory:")
            >>> _ = store.insert_predictions(parse_predictions(
            ...     [{"request_id": "a", "model": "m", "probabilities": 0.3,
            ...       "timestamp": "2026-01-01T00:00:00Z"}], tenant="t"))
            >>> store.apply_retention(30, now=datetime(2026, 3, 1, tzinfo=UTC))
            {'predictions': 1, 'labels': 0, 'pending_labels': 0}
        """
        cutoff = (now or datetime.now(UTC)) - timedelta(days=days)
        with self._write_lock:
            con = self._open_writer()
            con.execute("BEGIN TRANSACTION")
            try:
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
                pending = con.execute(
                    "DELETE FROM pending_labels WHERE received_at < ?", [cutoff]
                ).fetchone()[0]
                # A request's rfp stays while another model's prediction of it remains.
                forget = {
                    "fp": self._gone(con, "predictions", "fp", gone["fp"]),
                    "rfp": self._gone(con, "predictions", "rfp", gone["rfp"]),
                    "label": self._gone(con, "labels", "fp", gone_labels["fp"]),
                }
                con.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(duckdb.Error):
                    con.execute("ROLLBACK")
                raise
            try:
                self._prediction_fps.remove(forget["fp"])
                self._prediction_rfps.remove(forget["rfp"])
                self._label_fps.remove(forget["label"])
                if gone["fp"].size:  # a model's classes may be gone with its rows
                    self._load_classes(con)
            except BaseException as error:
                self._stale = f"{type(error).__name__} while updating the fingerprint index"
                raise
        return {
            "predictions": int(gone["fp"].size),
            "labels": int(gone_labels["fp"].size),
            "pending_labels": int(pending),
        }

    def _gone(
        self, con: duckdb.DuckDBPyConnection, table: str, column: str, deleted: Any
    ) -> NDArray[np.int64]:
        """The deleted keys that no remaining row of ``table`` still has."""
        keys = _sorted_unique(_int64(deleted))
        if not keys.size:
            return keys
        con.register("_xb_gone", pa.table({"k": keys}))
        try:
            kept = con.execute(
                f"SELECT DISTINCT {column} AS k FROM {table} "
                f"WHERE {column} IN (SELECT k FROM _xb_gone)"
            ).fetchnumpy()["k"]
        finally:
            con.unregister("_xb_gone")
        return np.setdiff1d(keys, _int64(kept), assume_unique=True)
