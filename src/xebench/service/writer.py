"""The single writer: one thread commits every event batch, then acknowledges it.

DuckDB allows one writing connection per file, and a commit (a WAL sync) costs
the same for one event as for ten thousand. So request handlers validate and
:meth:`Writer.submit` their batch on a bounded queue; one thread drains the
queue, writes several batches in one transaction (group commit) and only then
resolves each batch's future. A handler answers after its future resolves, so
an acknowledged event is always committed.

Read-your-writes: each transaction also folds its events into the monitoring
buckets (``EventStore.write(fold=True)``), so an acknowledged batch is in every
window read after the acknowledgement, and the buckets agree with the events
across a kill -9. :meth:`Writer.start` first folds whatever an older version or
an interrupted run committed without folding, before the service answers.
Between transactions (when idle, or every ``fold_interval`` seconds under load)
the writer compacts the buckets' delta rows and trims DuckDB's cache of table
blocks (:meth:`EventStore.trim_cache`).

Back-pressure instead of memory growth: when the queue holds ``max_events``
events, :meth:`Writer.submit` raises :class:`WriterBusy` (HTTP 429). When the
store fails (disk full, I/O error), the batches in flight and every new
submission get :class:`StoreUnavailable` (HTTP 503) until the writer has
reopened the store; queued batches wait and are written after the reopen.

Example:
    >>> from xebench.store import EventBatch, EventStore
    >>> from xebench.ingest.events import parse_predictions
    >>> table = parse_predictions([{"request_id": "r1", "model": "m", "probabilities": 0.4}],
    ...                           tenant="default")
    >>> writer = Writer(EventStore(":memory:")).start()
    >>> writer.submit(EventBatch("predictions", table)).result().inserted
    1
    >>> writer.stop()
    >>> writer.store.close()
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from ..errors import StoreUnavailable, WriterBusy
from ..store.event_store import STORE_FAILURES, EventBatch, EventStore, WriteOutcome
from ..store.schema import LABEL_SCHEMA, PREDICTION_SCHEMA
from .memory import LARGE, release_memory

__all__ = ["StoreUnavailable", "Task", "Writer", "WriterBusy"]

log = logging.getLogger("xebench.service.writer")


@dataclass
class _Item:
    kind: str
    n: int
    future: Future[WriteOutcome]
    table: pa.Table | None = None  # or, from the service, the columns of one
    columns: dict[str, list[Any]] | None = None
    nbytes: int = 0


_SCHEMAS = {"predictions": PREDICTION_SCHEMA, "labels": LABEL_SCHEMA}


@dataclass
class Task:
    """Store maintenance the writer thread runs between transactions, once at start and
    then every ``interval`` seconds (e.g. retention); ``last`` says how the last run went.

    Example:
        >>> from xebench.store import EventStore
        >>> task = Task("count", 3600.0, lambda store: store.counts()["predictions"])
        >>> writer = Writer(EventStore(":memory:"), tasks=[task]).start()
        >>> while task.last is None:  # the writer thread runs it at once
        ...     time.sleep(0.01)
        >>> writer.stop(); task.last["result"]
        0
    """

    name: str
    interval: float
    run: Callable[[EventStore], Any]
    last: dict[str, Any] | None = None  # {"at", "seconds", "result" | "error"}
    due: float = 0.0  # time.monotonic() of the next run; 0: at once


def _batches(group: list[_Item]) -> list[EventBatch]:
    """The group as store batches; all column items of a kind become one Arrow table,
    sliced per request (building a table costs ~100 us whatever its size)."""
    tables: dict[int, pa.Table] = {}
    for kind, schema in _SCHEMAS.items():
        items = [i for i, item in enumerate(group) if item.kind == kind and item.columns]
        if not items:
            continue
        merged: dict[str, list[Any]] = {name: [] for name in schema.names}
        for i in items:
            for name, values in group[i].columns.items():  # type: ignore[union-attr]
                merged[name].extend(values)
        table = pa.table(merged, schema=schema)
        offset = 0
        for i in items:
            tables[i] = table.slice(offset, group[i].n)
            offset += group[i].n
    return [
        EventBatch(item.kind, item.table if item.table is not None else tables[i])  # type: ignore[arg-type]
        for i, item in enumerate(group)
    ]


class Writer:
    """Owns the store's writes; see the module docstring.

    Args:
        store: the open store.
        reopen: makes a new store after a failure (None: a failed store stays
            failed, as for ``":memory:"``, which a reopen would empty).
        max_events: events queued before :class:`WriterBusy`.
        max_group_events: events written per transaction at most.
        max_group_bytes: Arrow bytes of the tables written per transaction at most
            (large events: a group's copies in DuckDB and the fold stay bounded).
        fold_interval: None: no bucket maintenance at all (benchmarks, tools: reads
            then see no new event). Otherwise every transaction folds its
            events into the monitoring buckets, and this many seconds pass at
            least between two maintenance passes under load
            (:meth:`EventStore.update_buckets`: compaction, and any fold a
            failure left behind); an idle writer does it at once.
    """

    def __init__(
        self,
        store: EventStore,
        *,
        reopen: Callable[[], EventStore] | None = None,
        max_events: int = 50_000,
        max_group_events: int = 50_000,
        max_group_bytes: int = 16 * 1024 * 1024,
        fold_interval: float | None = 1.0,
        tasks: Sequence[Task] = (),
    ) -> None:
        self.store = store
        self.tasks = list(tasks)
        self._reopen = reopen
        self.max_events = max_events
        self.max_group_events = max_group_events
        self.max_group_bytes = max_group_bytes
        self._queue: deque[_Item] = deque()
        self._queued_events = 0
        self._cond = threading.Condition()
        self._stopping = False
        self._failure: str | None = None
        self._thread: threading.Thread | None = None
        self.commits = 0
        self.fold_interval = fold_interval
        self.fold_failure: str | None = None
        self._unfolded = False
        self._last_fold = time.monotonic()

    # --- the caller's side --------------------------------------------------------

    @property
    def queued_events(self) -> int:
        """Events waiting for the writer."""
        return self._queued_events

    @property
    def failure(self) -> str | None:
        """Why the store is unavailable, or None when it is healthy."""
        return self._failure

    @property
    def alive(self) -> bool:
        """Whether the writer thread runs."""
        return self._thread is not None and self._thread.is_alive()

    def check_room(self) -> None:
        """Raise :class:`WriterBusy` / :class:`StoreUnavailable` now if a batch would be refused."""
        if self._failure is not None:
            raise StoreUnavailable(self._failure, 5.0)
        if self._queued_events >= self.max_events:
            raise WriterBusy(1.0)

    def submit(self, batch: EventBatch) -> Future[WriteOutcome]:
        """Queue ``batch``; the future resolves once it is committed (or rejected).

        Raises :class:`WriterBusy` when the queue is full and
        :class:`StoreUnavailable` while the store is being reopened.
        """
        table = batch.table
        return self._enqueue(
            _Item(batch.kind, table.num_rows, Future(), table=table, nbytes=table.nbytes)
        )

    def submit_columns(self, kind: str, columns: dict[str, list[Any]]) -> Future[WriteOutcome]:
        """:meth:`submit` for the columns of one batch (``events.prediction_columns``)."""
        n = len(columns["fp"])
        return self._enqueue(_Item(kind, n, Future(), columns=columns))

    def _enqueue(self, item: _Item) -> Future[WriteOutcome]:
        n = item.n
        with self._cond:
            if self._stopping:
                raise StoreUnavailable("the server is shutting down", 5.0)
            if self._failure is not None:
                raise StoreUnavailable(self._failure, 5.0)
            if self._queued_events and self._queued_events + n > self.max_events:
                raise WriterBusy(1.0)
            self._queue.append(item)
            self._queued_events += n
            self._cond.notify()
        return item.future

    async def write(self, kind: str, columns: dict[str, list[Any]]) -> WriteOutcome:
        """:meth:`submit_columns` for asyncio code: await the commit without blocking the loop."""
        return await asyncio.wrap_future(self.submit_columns(kind, columns))

    async def write_table(self, kind: str, table: pa.Table) -> WriteOutcome:
        """:meth:`submit` for asyncio code: the batch as a table of ``kind``'s schema."""
        return await asyncio.wrap_future(self.submit(EventBatch(kind, table)))  # type: ignore[arg-type]

    # --- the writer thread ------------------------------------------------------------

    def start(self) -> Writer:
        """Fold what was committed but not folded (a kill -9 between an older version's
        commit and its fold, or a store of an older version), then start the writer
        thread; returns self. The caller serves reads only after this returns."""
        if self.fold_interval is not None:
            self._catch_up()
        self._thread = threading.Thread(target=self._run, name="xebench-writer", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Write what is queued and stop the thread; the store stays open (its owner closes it)."""
        with self._cond:
            self._stopping = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join(timeout)

    def _take_group(self) -> list[_Item] | None:
        """The next group of batches; [] when it is time for maintenance; None when stopping."""
        with self._cond:
            while not self._queue:
                if self._stopping:
                    return None
                if self._unfolded and self.fold_interval is not None:
                    return []  # idle after commits: compact the buckets now
                wait = self._until_task()
                if wait == 0.0:
                    return []  # a maintenance task is due
                self._cond.wait(wait)
            group, events, size = [], 0, 0
            while self._queue and (
                not group or (events < self.max_group_events and size < self.max_group_bytes)
            ):
                item = self._queue.popleft()
                group.append(item)
                events += item.n
                size += item.nbytes
            return group

    def _done(self, group: list[_Item]) -> None:
        with self._cond:
            self._queued_events -= sum(item.n for item in group)

    def _run(self) -> None:
        while (group := self._take_group()) is not None:
            if group:
                try:
                    self._write(group)
                finally:
                    self._done(group)
            due = time.monotonic() - self._last_fold >= (self.fold_interval or 0.0)
            if self._unfolded and (not group or due):
                self._fold()
            if self._until_task() == 0.0:
                self._run_tasks()
        if self._unfolded and self.fold_interval is not None:
            self._fold()

    def _until_task(self) -> float | None:
        """Seconds until the next task is due (0.0: now); None without tasks."""
        if not self.tasks:
            return None
        return max(0.0, min(task.due for task in self.tasks) - time.monotonic())

    def _run_tasks(self) -> None:
        """Run the due tasks on the current store; a failure is logged and recorded (the
        next write finds a failed store by itself)."""
        for task in self.tasks:
            now = time.monotonic()
            if task.due > now:
                continue
            task.due = now + task.interval
            if self._failure is not None:
                continue
            started = datetime.now(UTC)
            record: dict[str, Any] = {"at": started.isoformat()}
            try:
                record["result"] = task.run(self.store)
            except Exception as error:
                record["error"] = f"{type(error).__name__}: {error}"
                log.error("maintenance task failed", extra={"task": task.name}, exc_info=error)
            record["seconds"] = round((datetime.now(UTC) - started).total_seconds(), 3)
            task.last = record

    def _catch_up(self) -> None:
        """Fold every committed event not in the buckets yet; a failure is logged (the
        events are safe; the next maintenance pass retries)."""
        started = time.monotonic()
        try:
            done = self.store.update_buckets()
        except Exception as error:
            self.fold_failure = f"{type(error).__name__}: {error}"
            log.error("folding the committed events at start failed", exc_info=error)
            return
        if done["predictions"] or done["joined"]:
            log.warning(
                "folded events committed before the start into the monitoring buckets",
                extra={**done, "seconds": round(time.monotonic() - started, 3)},
            )

    def _fold(self) -> None:
        """Bucket maintenance between transactions (compaction; a fold a failure left
        behind); a failure is logged, never fatal: the events are safe and the next
        pass retries."""
        self._last_fold = time.monotonic()
        self._unfolded = False
        if self._failure is not None:
            return
        try:
            self.store.update_buckets()
            self.fold_failure = None
        except Exception as error:
            self.fold_failure = f"{type(error).__name__}: {error}"
            log.error("folding events into the monitoring buckets failed", exc_info=error)
        try:  # the resident size must not grow with the store (EventStore.trim_cache)
            self.store.trim_cache()
        except Exception as error:
            log.warning("trimming the store's cache failed", exc_info=error)

    def _write(self, group: list[_Item]) -> None:
        batches = _batches(group)
        fold = self.fold_interval is not None
        try:
            outcomes = self.store.write(batches, fold=fold)
        except Exception as error:
            if not fold or isinstance(error, STORE_FAILURES) or not self.store.healthy():
                self._recover(group, error)
                return
            # A healthy store refused the write with its fold: without the fold, either
            # the events commit (a fold bug must not stop ingestion: logged, retried by
            # the next maintenance pass) or the batch at fault is isolated as before.
            try:
                outcomes = self.store.write(batches)
            except Exception as again:
                self._recover(group, again)
                return
            self.fold_failure = f"{type(error).__name__}: {error}"
            log.error("folding a commit into the monitoring buckets failed", exc_info=error)
        self.commits += 1
        self._unfolded = fold
        for item, outcome in zip(group, outcomes, strict=True):
            item.future.set_result(outcome)
        if sum(item.nbytes for item in group) > LARGE:
            release_memory()

    def _recover(self, group: list[_Item], error: Exception) -> None:
        """A write raised: isolate a batch the store refuses, or reopen a failed store."""
        if not isinstance(error, STORE_FAILURES) and self.store.healthy():
            if len(group) > 1:  # find the batch that fails on its own; commit the others
                for item in group:
                    self._write([item])
                return
            log.error("write failed on a healthy store", exc_info=error)
            group[0].future.set_exception(error)
            return
        reason = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
        log.error("event store failed; reopening", extra={"reason": reason})
        with self._cond:
            self._failure = reason
        for item in group:  # not committed: the client retries, idempotency dedups
            item.future.set_exception(StoreUnavailable(reason, 5.0))
        self._reopen_store()

    def _reopen_store(self) -> None:
        if self._reopen is None:
            return  # a store that cannot be reopened stays failed (503) until restart
        delay = 0.5
        while not self._stopping:
            try:
                self.store.close()
            except Exception:  # already broken: closing is best effort
                log.debug("closing the failed store raised", exc_info=True)
            try:
                self.store = self._reopen()
            except Exception as error:
                log.error("reopening the event store failed", extra={"reason": str(error)})
                time.sleep(delay)
                delay = min(delay * 2, 10.0)
                continue
            if self.fold_interval is not None:
                self._catch_up()  # before the first write: its fold then starts caught up
            with self._cond:
                self._failure = None
            log.warning("event store reopened")
            return
