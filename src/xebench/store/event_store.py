"""The embedded event store: predictions, labels and their join in one DuckDB file.

:class:`EventStore` is a small facade over modules of one job each:

- :mod:`~xebench.store.migrations`: the tables and the migrations that create them;
- :mod:`~xebench.store.writes` (with :mod:`~xebench.store.fingerprints`): writes and
  idempotency -- duplicates, conflicts, pending labels and their release;
- :mod:`~xebench.store.buckets`: the per-minute monitoring statistics;
- :mod:`~xebench.store.references`: drift references supplied as data;
- :mod:`~xebench.store.retention`: deleting old events;
- :mod:`~xebench.store.queries`: the read side's SQL.

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
import functools
import os
import threading
import weakref
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

from . import queries
from .buckets import HOURLY, Buckets, MonitorConfig
from .connection import connect, transaction, trim_table_cache
from .errors import STORE_FAILURES, StoreError, StoreLockedError
from .fingerprints import FingerprintIndex
from .migrations import MIGRATIONS, SCHEMA_VERSION, migrate
from .references import delete_reference, read_reference, replace_reference
from .retention import (
    RetentionPolicy,
    delete_before,
    delete_minutes_before,
    plan,
    roll_hours_before,
)
from .writes import Conflict, EventBatch, WriteOutcome, Writes, check_batch

__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "STORE_FAILURES",
    "Conflict",
    "EventBatch",
    "EventStore",
    "FingerprintIndex",
    "RetentionPolicy",
    "StoreError",
    "StoreLockedError",
    "WriteOutcome",
]

#: DuckDB's cache of table blocks is trimmed back to this size (:meth:`EventStore.trim_cache`).
TABLE_CACHE_BYTES = 32 << 20

# Delta rows of the bucket tables tolerated before a fold also compacts them.
_COMPACT_AFTER = 5_000
#: The prediction columns the bucket fold reads.
_FOLDED_COLUMNS = [
    "tenant",
    "model",
    "version",
    "event_time",
    "classes",
    "probabilities",
    "cohort",
    "features",
    "weight",
]

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
            default, 80% of RAM). The identity indexes are outside it.
        filter_bytes: the filter of every stored identity key (three keys per
            labelled prediction): fixed memory, resident once its pages are
            written. Each false positive costs one lookup in the store, never a
            wrong answer; the default 64 MiB has a rate of ~1e-7 at 1e7 keys,
            ~3e-4 at 3e7, ~6e-2 at 9e7 (:meth:`identity` reports it).
        recent_keys: identity keys of each kind kept exactly (the most recent;
            at most 8 bytes each): retries and labels of recent predictions
            are settled in memory, older ones by a lookup in the store.

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
        filter_bytes: int = 64 << 20,
        recent_keys: int = 1 << 20,
    ) -> None:
        self.path: str | Path = path if str(path) == ":memory:" else Path(path)
        self.join_window = join_window
        self.buckets = Buckets(monitor)
        self._writes = Writes(filter_bytes=filter_bytes, recent_keys=recent_keys)
        # The fold's marks (Buckets.marks) as the last folding write committed them, or
        # None (read them from the store).
        self._folded: tuple[int, int] | None = None
        self._closed = True
        self._key = None if str(path) == ":memory:" else str(Path(path).resolve())
        if self._key is not None:
            with _OPEN_LOCK:
                if self._key in _OPEN:
                    raise StoreLockedError(path, os.getpid())
                _OPEN[self._key] = self
        try:
            self._con = connect(self.path, memory_limit)
            try:
                self._writer = self._con.cursor()  # only the writing thread uses it
                self.schema_version = migrate(self._writer, self.path)
                self._writes.load(self._writer)
                self.buckets.load(self._writer)
            except BaseException:
                self._con.close()
                raise
        except BaseException:
            self._release()
            raise
        self._closed = False
        self._write_lock = threading.RLock()
        self._cursor_lock = threading.Lock()

    def _release(self) -> None:
        if self._key is not None:
            with _OPEN_LOCK:
                if _OPEN.get(self._key) is self:
                    del _OPEN[self._key]
            self._key = None

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

    def trim_cache(self, keep_bytes: int | None = None) -> int:
        """Evict DuckDB's cached table blocks down to about ``keep_bytes``
        (:data:`TABLE_CACHE_BYTES`); the bytes evicted. A write that looked keys up
        in the store calls it itself, and the service's writer between transactions,
        so that the resident size does not grow with the store
        (:func:`~xebench.store.connection.trim_table_cache` says why and how).

        Example:
            >>> EventStore(":memory:").trim_cache()
            0
        """
        with self._write_lock:
            keep = TABLE_CACHE_BYTES if keep_bytes is None else keep_bytes
            return trim_table_cache(self._open_writer(), keep)

    def healthy(self) -> bool:
        """Whether the store is open, its memory state is sound and the database answers.

        Example:
            >>> store = EventStore(":memory:")
            >>> store.healthy(), store.close(), store.healthy()
            (True, None, False)
        """
        if self._closed or self._writes.stale is not None:
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
            [('10',)]
        """
        if self._closed:
            raise StoreError(f"event store {self.path} is closed")
        with self._cursor_lock:  # making cursors concurrently is not safe in DuckDB's client
            return self._con.cursor()

    def _open_writer(self) -> duckdb.DuckDBPyConnection:
        if self._closed:
            raise StoreError(f"event store {self.path} is closed")
        if self._writes.stale is not None:  # writing now could store a retry twice
            raise StoreError(f"event store {self.path} must be reopened: {self._writes.stale}")
        return self._writer

    # --- writes ---------------------------------------------------------------------------

    def insert_predictions(self, table: pa.Table) -> WriteOutcome:
        """Write one batch of predictions (:data:`~xebench.store.schema.PREDICTION_SCHEMA`).

        Example:
            >>> from xebench.ingest.events import parse_predictions
            >>> table = parse_predictions(
            ...     [{"request_id": "a", "model": "m", "probabilities": 0.3}], tenant="t")
            >>> store = EventStore(":memory:")
            >>> store.insert_predictions(table).inserted
            1
            >>> store.insert_predictions(table)
            WriteOutcome(inserted=0, duplicates=1, conflicts=[], pending=0, joined=0, corrected=0)
        """
        return self.write([EventBatch("predictions", table)])[0]

    def insert_labels(self, table: pa.Table) -> WriteOutcome:
        """Write one batch of labels (:data:`~xebench.store.schema.LABEL_SCHEMA`).

        Example:
            >>> from xebench.ingest.events import parse_labels
            >>> table = parse_labels([{"request_id": "a", "label": 0}], tenant="t")
            >>> EventStore(":memory:").insert_labels(table)
            WriteOutcome(inserted=1, duplicates=0, conflicts=[], pending=1, joined=0, corrected=0)
        """
        return self.write([EventBatch("labels", table)])[0]

    def write(self, batches: Sequence[EventBatch], *, fold: bool = False) -> list[WriteOutcome]:
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

        ``fold=True`` also folds the new events (and any committed earlier but not
        folded yet) into the monitoring buckets in the same transaction, so that
        the buckets agree with the events at every commit (the service's writer
        does; read-your-writes, docs/architecture.md). Otherwise
        :meth:`update_buckets` folds them later.

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
            check_batch(number, batch)
        if not batches:
            return []
        with self._write_lock:
            con = self._open_writer()
            lookups = self._writes.lookups
            if not fold:
                outcomes = self._writes.write(con, batches)
            else:
                with self.buckets.restoring():  # the fold's memory state too, if COMMIT fails
                    fold_commit = functools.partial(self._fold_commit, batches=batches)
                    outcomes = self._writes.write(con, batches, fold_commit)
                # Committed: the fold moved both marks to this commit. Kept in memory (a
                # statement less per commit) until another fold moves them (_fold_steps).
                self._folded = (self._writes.seq, self._writes.seq)
            if self._writes.lookups != lookups:
                # A lookup read a whole key column into DuckDB's cache: give it back at
                # once (trim_cache), not a second later. Committed already: never an error.
                with contextlib.suppress(duckdb.Error):
                    self.trim_cache()
            return outcomes

    def _fold_commit(
        self,
        con: duckdb.DuckDBPyConnection,
        seq: int,
        outcomes: list[WriteOutcome],
        batches: Sequence[EventBatch] = (),
    ) -> None:
        """Fold commit ``seq`` (and any earlier commit not folded yet) in its transaction.

        When every earlier commit is folded, what this one changed is known:
        nothing inserted needs only the marks moved, and no new label/prediction
        match (``joined`` counts, from the fingerprint indexes: never a false
        negative) skips the search for new pairs, a join over the stored events.
        """
        known, self._folded = self._folded, None  # unknown until this commit returns
        p_mark, l_mark = known or Buckets.marks(con)
        caught_up = p_mark >= seq - 1 and l_mark >= seq - 1
        if caught_up and not any(outcome.inserted or outcome.corrected for outcome in outcomes):
            self.buckets.fold(con, seq, seq, seq, seq)  # only the marks move
            return
        paired = not caught_up or any(outcome.joined for outcome in outcomes)
        restate = not caught_up or any(outcome.corrected for outcome in outcomes)
        stored = _stored_predictions(batches, outcomes) if caught_up else None
        self.buckets.fold(
            con, p_mark, seq, l_mark, seq, pairs=paired, restate=restate, predictions=stored
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
                done["compacted"] = self._transaction(con, self.buckets.compact)
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
            self._folded = None  # the marks move
            self._transaction(con, self.buckets.reset)
            done = {**self._fold_steps(con, progress), "compacted": 0}
            done["compacted"] = self._transaction(con, self.buckets.compact)
            return done

    def _fold_steps(
        self, con: duckdb.DuckDBPyConnection, progress: Callable[[int], None] | None = None
    ) -> dict[str, int]:
        """Fold from the high-water marks to the last commit, one transaction per step."""
        done = {"predictions": 0, "joined": 0}
        self._folded = None  # the marks move
        p_mark, l_mark = Buckets.marks(con)
        for step in list(self.buckets.steps(con, p_mark, l_mark)):
            folded = self._transaction(con, self.buckets.fold, *step)
            done["predictions"] += folded["predictions"]
            done["joined"] += folded["joined"]
            if progress is not None:
                progress(folded["predictions"])
        return done

    @staticmethod
    def _transaction(con: duckdb.DuckDBPyConnection, work: Callable[..., Any], *args: Any) -> Any:
        """``work(con, *args)`` in one transaction of ``con``; its result."""
        with transaction(con):
            return work(con, *args)

    def write_transaction(self, work: Callable[[duckdb.DuckDBPyConnection], Any]) -> Any:
        """Run ``work(con)`` in one transaction of the store's single write connection,
        under its write lock, and return its result: COMMIT when ``work`` returns,
        ROLLBACK (and re-raise) when it raises.

        For tables outside the event path (the alert lifecycle and its outbox,
        :mod:`xebench.alerting`): callable from any thread, serialised with
        every other write. ``work`` must be short (never wait on the network
        inside it) and must not call the store's other write methods.

        Example:
            >>> store = EventStore(":memory:")
            >>> store.write_transaction(lambda con: con.execute("SELECT 40 + 2").fetchone()[0])
            42
            >>> def fails(con):
            ...     con.execute("CREATE TABLE scratch (x INT)")
            ...     raise RuntimeError("rolled back")
            >>> store.write_transaction(fails)
            Traceback (most recent call last):
            ...
            RuntimeError: rolled back
            >>> with store.cursor() as cursor:
            ...     cursor.execute("SELECT count(*) FROM duckdb_tables() "
            ...                    "WHERE table_name = 'scratch'").fetchone()
            (0,)
        """
        with self._write_lock:
            return self._transaction(self._open_writer(), work)

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
        with self._write_lock:
            con = self._open_writer()
            self._transaction(con, replace_reference, tenant, model, counts, rows, source, at)
        return at

    def reference(self, tenant: str, model: str) -> dict[str, Any] | None:
        """``model``'s uploaded drift reference: ``counts`` (feature -> array), ``rows``,
        ``source`` and ``uploaded_at``; None when there is none.

        Example:
            >>> EventStore(":memory:").reference("t", "m") is None
            True
        """
        with self.cursor() as cursor:
            return read_reference(cursor, tenant, model)

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
            return bool(self._transaction(con, delete_reference, tenant, model))

    # --- reads ----------------------------------------------------------------------------

    def model_versions(self, tenant: str) -> list[tuple[str, str]]:
        """The (model, version) pairs ``tenant`` has sent predictions of, sorted; from
        memory (:meth:`models` counts the stored events instead: seconds at 1e7).

        Example:
            >>> from xebench.ingest.events import parse_predictions
            >>> store = EventStore(":memory:")
            >>> _ = store.insert_predictions(parse_predictions(
            ...     [{"request_id": "a", "model": "m", "version": "v2", "probabilities": 0.4}],
            ...     tenant="t"))
            >>> store.model_versions("t"), store.model_versions("other")
            ([('m', 'v2')], [])
        """
        return sorted({(name, version) for owner, name, version in self._writes.classes
                       if owner == tenant})  # fmt: skip

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
        for (owner, name, _), seen in self._writes.classes.items():  # a snapshot: see Writes
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
        with self.cursor() as cursor:
            return queries.models(cursor, tenant, self._writes.classes)

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
        with self.cursor() as cursor:
            return queries.counts(cursor, tenant, cutoff)

    def status(self, tenant: str, *, now: datetime | None = None) -> dict[str, Any]:
        """Ingestion health of ``tenant``: ``stored`` rows, ``pending_labels``, ``orphans``
        (pending longer than ``join_window``), ``oldest_pending``, ``rates`` (events per
        second over the last 5 minutes / hour, by ingest time), ``ingest_lag_s`` (p50,
        p99, max of ingest minus event time, last hour), ``last_ingest``, ``oldest_event``.

        Example:
            >>> from xebench.ingest.events import parse_labels
            >>> store = EventStore(":memory:")
            >>> _ = store.insert_labels(parse_labels([{"request_id": "a", "label": 1}], tenant="t"))
            >>> status = store.status("t")
            >>> status["pending_labels"], status["orphans"], status["rates"]["labels_per_s_5m"]
            (1, 0, 0.003)
        """
        moment = now or datetime.now(UTC)
        with self.cursor() as cursor:
            return queries.status(cursor, tenant, moment, moment - self.join_window)

    def identity(self) -> dict[str, Any]:
        """The identity indexes' memory and accuracy: ``filter_bytes``, ``filter_keys``
        (keys added), ``false_positive_rate`` (expected, of the filter), ``recent_keys``
        (held exactly, all kinds), ``recent_bytes`` and ``store_lookups`` (keys the
        memory could not settle, looked up in the store, since the store opened).

        Example:
            >>> store = EventStore(":memory:", filter_bytes=1 << 12, recent_keys=8)
            >>> store.identity()
            {'filter_bytes': 4096, 'filter_keys': 0, 'false_positive_rate': 0.0, \
'recent_keys': 0, 'recent_bytes': 0, 'store_lookups': 0}
        """
        writes = self._writes
        indexes = (writes.prediction_fps, writes.prediction_rfps, writes.label_fps)
        return {
            "filter_bytes": writes.keys.nbytes,
            "filter_keys": writes.keys.count,
            "false_positive_rate": writes.keys.false_positive_rate,
            "recent_keys": sum(len(index.recent_keys) for index in indexes),
            "recent_bytes": sum(index.nbytes for index in indexes),
            "store_lookups": writes.lookups,
        }

    def checksum(self, tenant: str | None = None) -> str:
        """A digest of every stored row (of ``tenant``, or all), independent of row order.

        Per table, the row count and the sum of DuckDB's ``hash`` of each row:
        equal before and after an operation means nothing was stored or lost
        (stable within one DuckDB version).

        Example:
            >>> EventStore(":memory:").checksum()
            'predictions:0:0 labels:0:0 pending_labels:0:0'
        """
        with self.cursor() as cursor:
            return queries.checksum(cursor, tenant)

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
        return self._delete_events(cutoff)

    def _delete_events(self, cutoff: datetime) -> dict[str, int]:
        with self._write_lock:
            con = self._open_writer()
            deleted = delete_before(con, cutoff)
            self._writes.forget(
                con, deleted.fps, deleted.rfps, deleted.label_fps, classes=deleted.predictions > 0
            )
        return deleted.counts()

    def retention_plan(
        self, policy: RetentionPolicy, *, now: datetime | None = None
    ) -> dict[str, Any]:
        """What :meth:`apply_policy` would delete at ``now``: ``horizons`` and rows per table.

        Example:
            >>> policy = RetentionPolicy(events=timedelta(days=30))
            >>> EventStore(":memory:").retention_plan(policy)["delete"]["predictions"]
            0
        """
        with self.cursor() as cursor:
            return plan(cursor, policy, now or datetime.now(UTC))

    def apply_policy(
        self, policy: RetentionPolicy, *, now: datetime | None = None
    ) -> dict[str, Any]:
        """Apply ``policy`` at ``now``: old events (:meth:`apply_retention`), then old minute
        buckets; returns the horizons and the rows deleted per table.

        Example:
            >>> from xebench.ingest.events import parse_predictions
            >>> store = EventStore(":memory:")
            >>> _ = store.insert_predictions(parse_predictions(
            ...     [{"request_id": "a", "model": "m", "probabilities": 0.3,
            ...       "timestamp": "2026-01-01T00:00:00Z"}], tenant="t"))
            >>> store.update_buckets()["predictions"]
            1
            >>> policy = RetentionPolicy(events=timedelta(days=30), minutes=timedelta(days=7))
            >>> store.apply_policy(policy, now=datetime(2026, 3, 1, tzinfo=UTC))["delete"]
            {'predictions': 1, 'labels': 0, 'pending_labels': 0, 'bucket_scores': 1, \
'bucket_features': 0, 'bucket_tokens': 0}
        """
        horizons = policy.horizons(now or datetime.now(UTC))
        deleted: dict[str, int] = {}
        if "events" in horizons:
            deleted.update(self._delete_events(horizons["events"]))
        steps = (("minutes", delete_minutes_before), ("hours", roll_hours_before))
        for name, step in steps:
            if name in horizons:
                with self._write_lock:
                    con = self._open_writer()
                    deleted.update(self._transaction(con, step, horizons[name]))
        return {"horizons": {k: v.isoformat() for k, v in horizons.items()}, "delete": deleted}


def _stored_predictions(
    batches: Sequence[EventBatch], outcomes: Sequence[WriteOutcome]
) -> pa.Table | None:
    """The prediction rows a write stored, in the order it inserted them, when the
    outcomes say which: every prediction batch stored all its rows or none (no
    duplicate among stored rows, no conflict); else None (the fold reads them back).

    Example:
        >>> from xebench.ingest.events import parse_predictions
        >>> table = parse_predictions(
        ...     [{"request_id": "a", "model": "m", "probabilities": 0.3}], tenant="t")
        >>> _stored_predictions([EventBatch("predictions", table)], [WriteOutcome(1, 0)]).num_rows
        1
        >>> _stored_predictions([EventBatch("predictions", table)], [WriteOutcome(0, 1)]).num_rows
        0
        >>> table2 = pa.concat_tables([table, table])
        >>> _stored_predictions([EventBatch("predictions", table2)], [WriteOutcome(1, 1)]) is None
        True
    """
    parts = []
    for batch, outcome in zip(batches, outcomes, strict=True):
        if batch.kind != "predictions" or not outcome.inserted:
            continue
        if outcome.inserted != batch.table.num_rows:
            return None
        names = [*_FOLDED_COLUMNS, *(["tokens"] if "tokens" in batch.table.schema.names else [])]
        parts.append(batch.table.select(names))
    return pa.concat_tables(parts, promote_options="default") if parts else pa.table({})
