"""The embedded event store: predictions, labels and their join in one DuckDB file.

Tables (schema version 1; :data:`MIGRATIONS` upgrades older files on open):

- ``predictions``: every accepted prediction event
  (:data:`~xebench.event_schema.PREDICTION_SCHEMA`).
- ``labels``: every accepted label event, one per (tenant, model,
  request_id); ``model = ''`` applies to every model's prediction of the request.
- ``pending_labels``: labels whose prediction had not arrived when they were
  stored; a row leaves when its prediction commits. Rows older than the join
  window are *orphans*: counted, kept, never dropped silently.
- the view ``joined``: each prediction with its label (a label naming the
  model wins over a model-less one), plus ``label_time`` and
  ``label_ingest_time``.

Idempotency without a database index: DuckDB's ART index on 1e7 keys
outgrew a 300 MB memory limit (it is not evictable) and multi-column keys are
not used for lookups, so the store keeps each table's 64-bit identity
fingerprints in sorted NumPy arrays (:class:`FingerprintIndex`): 8 bytes per
prediction for ``fp``, 8 for ``rfp`` and 8 per label -- about 24 MB per
million prediction + label pairs, bounded by retention. A fingerprint hit is
only a candidate; the stored rows are read back and compared on (tenant,
model, request_id) and payload hash before an event counts as a duplicate or
a conflict.

Writes come from one thread at a time (the service's writer, or ``xebench
ingest``); reads may come from any thread, each on its own cursor.

Example:
    >>> from xebench.events import parse_labels, parse_predictions
    >>> store = EventStore(":memory:")
    >>> label = parse_labels([{"request_id": "r1", "label": 1}], tenant="t")
    >>> store.insert_labels(label).pending
    1
    >>> pred = parse_predictions([{"request_id": "r1", "model": "m", "probabilities": 0.9}],
    ...                          tenant="t")
    >>> store.insert_predictions(pred).joined, store.insert_predictions(pred).duplicates
    (1, 1)
    >>> store.counts("t")["pending"], store.models("t")[0]["joined"]
    (0, 1)
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

from .errors import XebenchError

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


class StoreError(XebenchError):
    """The database cannot be opened or used; the message says why.

    Example:
        >>> str(StoreError("disk full"))
        'disk full'
    """


class StoreLockedError(StoreError):
    """Another process holds the database file (DuckDB allows one writing process).

    Attributes:
        path: the database file.
        pid: the holder's process id, when DuckDB names it.

    Example:
        >>> StoreLockedError("/data/x.duckdb", 4242).pid
        4242
    """

    def __init__(self, path: str, pid: int | None) -> None:
        holder = f"PID {pid}" if pid is not None else "another process"
        command = _command_line(pid)
        if command:
            holder += f": {command}"
        super().__init__(
            f"database {path} is in use by another process ({holder}): DuckDB allows one "
            "writing process; stop that process or pass another --db"
        )
        self.path = path
        self.pid = pid


def _command_line(pid: int | None) -> str:
    if pid is None:
        return ""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return " ".join(part.decode(errors="replace") for part in raw.split(b"\0") if part)[:200]


#: Errors that mean the store itself failed (as opposed to one bad batch): the writer
#: answers 503 and reopens the database.
STORE_FAILURES: tuple[type[BaseException], ...] = (
    duckdb.IOException,
    duckdb.FatalException,
    duckdb.InternalException,
    duckdb.OutOfMemoryException,
    OSError,
)


# --- schema ---------------------------------------------------------------------------

_MIGRATION_1 = """
CREATE TABLE predictions (
    fp BIGINT NOT NULL, rfp BIGINT NOT NULL, tenant VARCHAR NOT NULL, model VARCHAR NOT NULL,
    version VARCHAR NOT NULL, request_id VARCHAR NOT NULL,
    event_time TIMESTAMPTZ NOT NULL, ingest_time TIMESTAMPTZ NOT NULL,
    classes VARCHAR[] NOT NULL, probabilities DOUBLE[] NOT NULL,
    cohort MAP(VARCHAR, VARCHAR) NOT NULL, features VARCHAR NOT NULL, payload_hash BIGINT NOT NULL
);
CREATE TABLE labels (
    fp BIGINT NOT NULL, tenant VARCHAR NOT NULL, model VARCHAR NOT NULL,
    request_id VARCHAR NOT NULL, label VARCHAR NOT NULL,
    event_time TIMESTAMPTZ NOT NULL, ingest_time TIMESTAMPTZ NOT NULL, payload_hash BIGINT NOT NULL
);
CREATE TABLE pending_labels (
    fp BIGINT NOT NULL, tenant VARCHAR NOT NULL, model VARCHAR NOT NULL,
    request_id VARCHAR NOT NULL, received_at TIMESTAMPTZ NOT NULL
);
CREATE VIEW joined AS
SELECT p.*, l.label, l.event_time AS label_time, l.ingest_time AS label_ingest_time
FROM predictions p JOIN labels l
  ON l.fp = p.fp AND l.tenant = p.tenant AND l.model = p.model AND l.request_id = p.request_id
UNION ALL
SELECT p.*, l.label, l.event_time AS label_time, l.ingest_time AS label_ingest_time
FROM predictions p JOIN labels l
  ON l.fp = p.rfp AND l.tenant = p.tenant AND l.model = '' AND l.request_id = p.request_id
WHERE NOT EXISTS (
    SELECT 1 FROM labels x
    WHERE x.fp = p.fp AND x.tenant = p.tenant AND x.model = p.model
      AND x.request_id = p.request_id
);
"""

#: Migration ``i`` takes a database from schema version ``i`` to ``i + 1``.
MIGRATIONS: list[str] = [_MIGRATION_1]
SCHEMA_VERSION = len(MIGRATIONS)


# --- the fingerprint index -----------------------------------------------------------

_RECENT_ARRAYS = 16
_LEVEL_ONE_KEYS = 1 << 21


def _member(sorted_keys: NDArray[np.int64], keys: NDArray[np.int64]) -> NDArray[np.bool_]:
    if not sorted_keys.size:
        return np.zeros(keys.shape, dtype=bool)
    at = np.searchsorted(sorted_keys, keys).clip(max=sorted_keys.size - 1)
    return sorted_keys[at] == keys


def _merge(a: NDArray[np.int64], b: NDArray[np.int64]) -> NDArray[np.int64]:
    """Two sorted arrays into one, in O(len(a) + len(b)) (no re-sort of ``a``)."""
    if not a.size:
        return b
    return np.insert(a, np.searchsorted(a, b), b)


class FingerprintIndex:
    """Exact membership of int64 fingerprints in a few sorted arrays (a small LSM tree).

    New keys land in small sorted arrays; 16 of them merge into a level-one
    array, which merges into the main array past 2M keys, so an insert never
    re-sorts everything and a lookup is a handful of binary searches.

    Example:
        >>> index = FingerprintIndex(np.array([5, 1], dtype=np.int64))
        >>> index.add(np.array([3], dtype=np.int64))
        >>> index.contains(np.array([1, 2, 3], dtype=np.int64)).tolist(), len(index)
        ([True, False, True], 3)
    """

    def __init__(self, keys: NDArray[np.int64] | None = None) -> None:
        self._main = np.sort(np.asarray(keys if keys is not None else [], dtype=np.int64))
        self._level_one = np.empty(0, dtype=np.int64)
        self._recent: list[NDArray[np.int64]] = []

    def __len__(self) -> int:
        return self._main.size + self._level_one.size + sum(r.size for r in self._recent)

    def contains(self, keys: NDArray[np.int64]) -> NDArray[np.bool_]:
        """A boolean array: which ``keys`` are in the index."""
        keys = np.asarray(keys, dtype=np.int64)
        found = _member(self._main, keys) | _member(self._level_one, keys)
        for recent in self._recent:
            found |= _member(recent, keys)
        return found

    def add(self, keys: NDArray[np.int64]) -> None:
        """Add ``keys`` (duplicates are harmless)."""
        keys = np.sort(np.asarray(keys, dtype=np.int64))
        if not keys.size:
            return
        self._recent.append(keys)
        if len(self._recent) >= _RECENT_ARRAYS:
            self._level_one = _merge(self._level_one, np.sort(np.concatenate(self._recent)))
            self._recent = []
            if self._level_one.size >= _LEVEL_ONE_KEYS:
                self._main = _merge(self._main, self._level_one)
                self._level_one = np.empty(0, dtype=np.int64)


# --- writes -----------------------------------------------------------------------------


@dataclass(frozen=True)
class EventBatch:
    """One validated batch to write: ``kind`` and a table of that kind's schema.

    Example:
        >>> from xebench.event_schema import LABEL_SCHEMA
        >>> EventBatch("labels", LABEL_SCHEMA.empty_table()).kind
        'labels'
    """

    kind: Literal["predictions", "labels"]
    table: pa.Table


@dataclass(frozen=True)
class Conflict:
    """An event whose identity is stored with a different payload.

    Example:
        >>> Conflict(3, "fraud", "tx-9").index
        3
    """

    index: int
    model: str
    request_id: str


@dataclass
class WriteOutcome:
    """What became of one batch: new rows, duplicates, or the conflicts that refused it.

    ``joined`` counts labels matched to a prediction (for a label batch) or
    pending labels a prediction released (for a prediction batch); ``pending``
    the labels that wait for their prediction.

    Example:
        >>> WriteOutcome(inserted=2, duplicates=1).conflicts
        []
    """

    inserted: int = 0
    duplicates: int = 0
    conflicts: list[Conflict] = field(default_factory=list)
    pending: int = 0
    joined: int = 0


@dataclass
class _Plan:
    """The rows of one batch to write, decided before the transaction starts."""

    batch: EventBatch
    outcome: WriteOutcome
    rows: pa.Table | None = None
    pending_rows: pa.Table | None = None
    released: list[int] = field(default_factory=list)


_LOCK_PID = re.compile(r"PID (\d+)")


class EventStore:
    """Predictions, labels, pending labels and their join; see the module docstring.

    Args:
        path: a DuckDB file (created if missing) or ``":memory:"``.
        join_window: pending labels older than this count as orphans.
        memory_limit: DuckDB's memory limit, e.g. ``"512MB"`` (default: DuckDB's).
    """

    def __init__(
        self,
        path: str | Path = ":memory:",
        *,
        join_window: timedelta = timedelta(days=7),
        memory_limit: str | None = None,
    ) -> None:
        self.path = str(path)
        self.join_window = join_window
        config = {"memory_limit": memory_limit} if memory_limit else {}
        try:
            self._con = duckdb.connect(self.path, config=config)
        except duckdb.IOException as error:
            text = str(error)
            if "lock" in text.lower():
                match = _LOCK_PID.search(text)
                raise StoreLockedError(self.path, int(match[1]) if match else None) from None
            raise StoreError(f"cannot open database {self.path}: {text}") from None
        except duckdb.Error as error:
            raise StoreError(f"cannot open database {self.path}: {error}") from None
        self._write_lock = threading.Lock()
        self._cursor_lock = threading.Lock()
        self.schema_version = self._migrate()
        self._load_indexes()

    # --- lifecycle --------------------------------------------------------------------

    def _migrate(self) -> int:
        con = self._con
        con.execute("CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR)")
        row = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        version = int(row[0]) if row else 0
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"database {self.path} has schema version {version}, newer than this "
                f"xebench ({SCHEMA_VERSION}); upgrade xebench"
            )
        for target in range(version + 1, SCHEMA_VERSION + 1):
            con.execute("BEGIN")
            try:
                con.execute(MIGRATIONS[target - 1])
                con.execute(
                    "INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", [str(target)]
                )
                con.execute("COMMIT")
            except Exception:
                con.execute("ROLLBACK")
                raise
        return SCHEMA_VERSION

    def _keys(self, sql: str) -> NDArray[np.int64]:
        column = self._con.execute(sql).fetchnumpy()
        values = next(iter(column.values()))
        return np.asarray(values, dtype=np.int64)

    def _load_indexes(self) -> None:
        self._predictions = FingerprintIndex(self._keys("SELECT fp FROM predictions"))
        self._requests = FingerprintIndex(self._keys("SELECT rfp FROM predictions"))
        self._labels = FingerprintIndex(self._keys("SELECT fp FROM labels"))
        self._pending = set(self._keys("SELECT fp FROM pending_labels").tolist())
        self._classes: dict[tuple[str, str], set[str]] = {}
        rows = self._con.execute("SELECT DISTINCT tenant, model, classes FROM predictions")
        for tenant, model, classes in rows.fetchall():
            self._classes.setdefault((tenant, model), set()).update(classes)

    def close(self) -> None:
        """Close the database (committed data is already durable)."""
        self._con.close()

    def __enter__(self) -> EventStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def checkpoint(self) -> None:
        """Fold the write-ahead log into the database file."""
        with self._write_lock:
            self._con.execute("CHECKPOINT")

    def healthy(self) -> bool:
        """Whether the database still answers a query.

        Example:
            >>> EventStore(":memory:").healthy()
            True
        """
        try:
            with self.cursor() as cursor:
                cursor.execute("SELECT 1").fetchone()
        except Exception:
            return False
        return True

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A new cursor for reading from any thread (close it, or use ``with``)."""
        with self._cursor_lock:
            return self._con.cursor()

    # --- writes -------------------------------------------------------------------------

    def insert_predictions(self, table: pa.Table) -> WriteOutcome:
        """Write one batch of predictions (see :meth:`write`)."""
        return self.write([EventBatch("predictions", table)])[0]

    def insert_labels(self, table: pa.Table) -> WriteOutcome:
        """Write one batch of labels (see :meth:`write`)."""
        return self.write([EventBatch("labels", table)])[0]

    def write(self, batches: Sequence[EventBatch]) -> list[WriteOutcome]:
        """Write several batches in one transaction; one outcome per batch.

        A row whose identity is stored (or earlier in this call) with the same
        payload hash is a duplicate and is skipped; with another payload it is
        a conflict, and a batch with any conflict writes nothing. The
        fingerprint indexes change only after the commit succeeded.
        """
        with self._write_lock:
            plans = self._plan(batches)
            self._commit(plans)
            return [plan.outcome for plan in plans]

    def _stored(self, table: str, fps: NDArray[np.int64]) -> dict[int, list[tuple[Any, ...]]]:
        """Identity and payload hash of stored rows with these fingerprints (the rare path)."""
        keys = ",".join(str(int(fp)) for fp in np.unique(fps))
        sql = (
            f"SELECT fp, tenant, model, request_id, payload_hash FROM {table} WHERE fp IN ({keys})"
        )
        found: dict[int, list[tuple[Any, ...]]] = {}
        for fp, *rest in self._con.execute(sql).fetchall():
            found.setdefault(fp, []).append(tuple(rest))
        return found

    def _plan(self, batches: Sequence[EventBatch]) -> list[_Plan]:
        # Identities accepted earlier in this call: fp -> (tenant, model, request_id, hash).
        seen: dict[str, dict[int, tuple[Any, ...]]] = {"predictions": {}, "labels": {}}
        new_fps: set[int] = set()  # predictions' fp of this call, for labels that follow
        new_rfps: set[int] = set()
        pending_now: set[int] = set()  # labels made pending earlier in this call
        plans = []
        for batch in batches:
            plan = _Plan(batch, WriteOutcome())
            plans.append(plan)
            table = batch.table
            if not table.num_rows:
                continue
            index = self._predictions if batch.kind == "predictions" else self._labels
            fps = table["fp"].to_numpy()
            hashes = table["payload_hash"].to_numpy()
            tenants = table["tenant"].to_pylist()
            models = table["model"].to_pylist()
            ids = table["request_id"].to_pylist()
            candidates = index.contains(fps)
            stored = self._stored(batch.kind, fps[candidates]) if candidates.any() else {}
            local: dict[int, tuple[Any, ...]] = {}
            keep = np.zeros(table.num_rows, dtype=bool)
            for i, fp in enumerate(fps.tolist()):
                identity = (tenants[i], models[i], ids[i])
                earlier = [r for r in stored.get(fp, ()) if r[:3] == identity]
                for source in (seen[batch.kind], local):
                    if fp in source and source[fp][:3] == identity:
                        earlier.append(source[fp])
                if not earlier:
                    keep[i] = True
                    local[fp] = (*identity, hashes[i])
                elif all(row[3] == hashes[i] for row in earlier):
                    plan.outcome.duplicates += 1
                else:
                    plan.outcome.conflicts.append(Conflict(i, models[i], ids[i]))
            if plan.outcome.conflicts:
                plan.outcome.duplicates = 0
                continue
            seen[batch.kind].update(local)
            rows = table.filter(pa.array(keep))
            plan.rows = rows
            plan.outcome.inserted = rows.num_rows
            if batch.kind == "predictions":
                self._plan_release(plan, rows, pending_now, new_fps, new_rfps)
            else:
                self._plan_pending(plan, rows, pending_now, new_fps, new_rfps)
        return plans

    def _plan_release(
        self,
        plan: _Plan,
        rows: pa.Table,
        pending_now: set[int],
        new_fps: set[int],
        new_rfps: set[int],
    ) -> None:
        """New predictions release the pending labels that wait for them."""
        fps, rfps = rows["fp"].to_pylist(), rows["rfp"].to_pylist()
        new_fps.update(fps)
        new_rfps.update(rfps)
        waiting = (self._pending | pending_now) - set(plan.released)
        if waiting:
            released = {fp for fp in fps if fp in waiting} | {fp for fp in rfps if fp in waiting}
            plan.released = sorted(released)
            pending_now.difference_update(released)
            plan.outcome.joined = len(released)

    def _plan_pending(
        self,
        plan: _Plan,
        rows: pa.Table,
        pending_now: set[int],
        new_fps: set[int],
        new_rfps: set[int],
    ) -> None:
        """New labels join a stored prediction, or wait in ``pending_labels``."""
        fps = rows["fp"].to_numpy()
        model_less = pc.equal(rows["model"], "").to_numpy(zero_copy_only=False)
        matched = np.where(
            model_less, self._requests.contains(fps), self._predictions.contains(fps)
        )
        for i, fp in enumerate(fps.tolist()):
            if not matched[i] and fp in (new_rfps if model_less[i] else new_fps):
                matched[i] = True
        plan.outcome.joined = int(matched.sum())
        plan.outcome.pending = int((~matched).sum())
        if plan.outcome.pending:
            waiting = rows.filter(pa.array(~matched))
            plan.pending_rows = waiting.select(
                ["fp", "tenant", "model", "request_id"]
            ).append_column("received_at", waiting["ingest_time"])
            pending_now.update(waiting["fp"].to_pylist())

    def _commit(self, plans: list[_Plan]) -> None:
        con = self._con
        con.execute("BEGIN")
        try:
            for plan in plans:
                if plan.rows is None or not plan.rows.num_rows:
                    continue
                con.register("new_rows", plan.rows)
                con.execute(f"INSERT INTO {plan.batch.kind} SELECT * FROM new_rows")
                con.unregister("new_rows")
                if plan.pending_rows is not None:
                    con.register("new_pending", plan.pending_rows)
                    con.execute("INSERT INTO pending_labels SELECT * FROM new_pending")
                    con.unregister("new_pending")
                if plan.released:
                    keys = ",".join(map(str, plan.released))
                    con.execute(f"DELETE FROM pending_labels WHERE fp IN ({keys})")
            con.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(duckdb.Error):  # a failed commit already ended it
                con.execute("ROLLBACK")
            raise
        self._apply(plans)

    def _apply(self, plans: list[_Plan]) -> None:
        """Bring the in-memory indexes in line with what was just committed."""
        for plan in plans:
            rows = plan.rows
            if rows is None or not rows.num_rows:
                continue
            if plan.batch.kind == "predictions":
                self._predictions.add(rows["fp"].to_numpy())
                self._requests.add(rows["rfp"].to_numpy())
                self._pending.difference_update(plan.released)
                self._remember_classes(rows)
            else:
                self._labels.add(rows["fp"].to_numpy())
                if plan.pending_rows is not None:
                    self._pending.update(plan.pending_rows["fp"].to_pylist())

    def _remember_classes(self, rows: pa.Table) -> None:
        with self.cursor() as cursor:
            cursor.register("new_rows", rows)
            found = cursor.execute("SELECT DISTINCT tenant, model, classes FROM new_rows")
            for tenant, model, classes in found.fetchall():
                self._classes.setdefault((tenant, model), set()).update(classes)

    # --- reads ----------------------------------------------------------------------------

    def known_labels(self, tenant: str, model: str | None) -> set[str] | None:
        """The classes seen for ``model`` (every model of the tenant when None), or None.

        Example:
            >>> EventStore(":memory:").known_labels("t", "m") is None
            True
        """
        if model is not None:
            found = self._classes.get((tenant, model))
            return set(found) if found is not None else None
        union: set[str] = set()
        hit = False
        for (owner, _), classes in list(self._classes.items()):
            if owner == tenant:
                union |= classes
                hit = True
        return union if hit else None

    def models(self, tenant: str) -> list[dict[str, Any]]:
        """One entry per (model, version) of ``tenant``: counts, first and last event, classes.

        ``labels`` and ``joined`` both count this version's predictions that
        have a label.
        """
        sql = """
            WITH p AS (
                SELECT model, version, count(*) AS predictions,
                       min(event_time) AS first_event, max(event_time) AS last_event,
                       list(DISTINCT classes) AS classes
                FROM predictions WHERE tenant = $tenant GROUP BY model, version
            ), j AS (
                SELECT model, version, count(*) AS joined
                FROM joined WHERE tenant = $tenant GROUP BY model, version
            )
            SELECT p.model, p.version, p.predictions, coalesce(j.joined, 0) AS joined,
                   p.first_event, p.last_event, p.classes
            FROM p LEFT JOIN j USING (model, version) ORDER BY p.model, p.version
        """
        with self.cursor() as cursor:
            rows = cursor.execute(sql, {"tenant": tenant}).fetchall()
        return [
            {
                "model": model,
                "version": version,
                "predictions": n,
                "labels": joined,
                "joined": joined,
                "first_event": first.astimezone(UTC).isoformat(),
                "last_event": last.astimezone(UTC).isoformat(),
                "classes": sorted(classes),
            }
            for model, version, n, joined, first, last, classes in rows
        ]

    def counts(self, tenant: str | None = None, *, now: datetime | None = None) -> dict[str, int]:
        """Rows per table, and orphans: pending labels older than the join window.

        Example:
            >>> EventStore(":memory:").counts()
            {'predictions': 0, 'labels': 0, 'pending': 0, 'orphans': 0}
        """
        cutoff = (now or datetime.now(UTC)) - self.join_window
        where = "WHERE tenant = $tenant" if tenant is not None else ""
        params: dict[str, Any] = {"tenant": tenant} if tenant is not None else {}
        sql = f"""
            SELECT (SELECT count(*) FROM predictions {where}),
                   (SELECT count(*) FROM labels {where}),
                   (SELECT count(*) FROM pending_labels {where}),
                   (SELECT count(*) FROM pending_labels {where or "WHERE true"}
                      AND received_at < $cutoff)
        """
        with self.cursor() as cursor:
            row = cursor.execute(sql, {**params, "cutoff": cutoff}).fetchone()
        return dict(zip(("predictions", "labels", "pending", "orphans"), row, strict=True))

    def checksum(self, tenant: str | None = None) -> str:
        """An order-independent digest of every stored row (tests compare it before and after).

        Example:
            >>> EventStore(":memory:").checksum()
            'predictions:0:0 labels:0:0 pending_labels:0:0'
        """
        where = "WHERE t.tenant = $tenant" if tenant is not None else ""
        params = {"tenant": tenant} if tenant is not None else {}
        parts = []
        with self.cursor() as cursor:
            for table in ("predictions", "labels", "pending_labels"):
                sql = f"SELECT count(*), coalesce(sum(hash(t)), 0) FROM {table} t {where}"
                n, digest = cursor.execute(sql, params).fetchone()
                parts.append(f"{table}:{n}:{digest}")
        return " ".join(parts)

    # --- retention ------------------------------------------------------------------------

    def apply_retention(self, days: float, *, now: datetime | None = None) -> dict[str, int]:
        """Delete predictions older than ``days`` (event time) and labels received before then.

        Pending labels of deleted labels go too. Per-bucket statistics, once
        the store keeps them, are not touched: windows over old data stay
        available after their raw events are gone.

        Example:
            >>> EventStore(":memory:").apply_retention(30)
            {'predictions': 0, 'labels': 0, 'pending_labels': 0}
        """
        cutoff = (now or datetime.now(UTC)) - timedelta(days=days)
        deleted = {}
        with self._write_lock:
            con = self._con
            con.execute("BEGIN")
            try:
                for table, column in (("predictions", "event_time"), ("labels", "ingest_time")):
                    n = con.execute(f"DELETE FROM {table} WHERE {column} < ?", [cutoff]).fetchone()[
                        0
                    ]
                    deleted[table] = int(n)
                n = con.execute(
                    "DELETE FROM pending_labels WHERE fp NOT IN (SELECT fp FROM labels)"
                ).fetchone()[0]
                deleted["pending_labels"] = int(n)
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
            self._load_indexes()  # rare: rebuilding is simpler than deleting from sorted arrays
        return deleted
