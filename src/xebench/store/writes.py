"""Writes and idempotency: batches in, duplicates and conflicts out, labels joined or pending.

A batch's rows are checked against the bounded in-memory identity indexes
(:mod:`xebench.store.fingerprints`: a filter of every stored key, the recent
keys exactly). A key the filter does not know is new; any other is only a
candidate: the stored rows are read back and compared on (tenant, model,
request_id), then payload hash, before an event counts as a duplicate (same
payload, skipped) or a conflict (different payload: the batch is refused).
Whether a label has its prediction (and a prediction its label) is decided on
fingerprints: from the recent keys, else -- when the filter reports the key --
by a lookup of the stored fingerprints (a false match needs a 64-bit
collision, about 5e-13 per label at 1e7 predictions, and would only keep one
label out of the orphan count: ``joined`` itself joins on the exact
identity). A label whose prediction has not arrived waits in
``pending_labels``; a new prediction releases the labels waiting for it.

A write call checks all its batches of one kind at once
(:mod:`xebench.store.write_runs`): the batches that can only be new are
stored without a check of their own, every other one batch by batch, in
order -- the same outcomes either way, for the cost of one check per call
and kind instead of one per request.

One thread writes; each :meth:`Writes.write` is one transaction, and the
in-memory state changes only after its COMMIT returned (DuckDB syncs the
write-ahead log on commit).

Example:
    >>> from xebench.ingest.events import parse_labels
    >>> from xebench.store.migrations import migrate
    >>> con = duckdb.connect(":memory:"); _ = migrate(con, ":memory:")
    >>> writes = Writes(filter_bytes=1 << 12); writes.load(con)
    >>> label = parse_labels([{"request_id": "r1", "label": 1}], tenant="t")
    >>> writes.write(con, [EventBatch("labels", label)])
    [WriteOutcome(inserted=1, duplicates=0, conflicts=[], pending=1, joined=0, corrected=0)]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

from ..errors import InvalidInputError
from .connection import transaction
from .corrections import apply_corrections
from .fingerprints import IdentityIndex, as_int64, sorted_unique
from .key_filter import KeyFilter
from .schema import LABEL_SCHEMA, PREDICTION_SCHEMA, SEQUENCE_SCHEMA
from .write_runs import Combo, batch_of, class_combos, classes_clean, concat, repeats_earlier

__all__ = ["Conflict", "EventBatch", "WriteOutcome", "Writes", "check_batch"]

SCHEMAS = {"predictions": PREDICTION_SCHEMA, "labels": LABEL_SCHEMA}

# Rows ingested within this span are looked up first when a fingerprint hits:
# retries come soon after the original, and the ingest-time zone maps then let
# DuckDB skip every older row group (5 ms instead of ~100 ms at 1e7 rows).
_RECENT = timedelta(hours=1)

#: (tenant, model, version) -> the class lists seen in its predictions.
Classes = dict[tuple[str, str, str], frozenset[tuple[str, ...]]]


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

    A class-list conflict (the event's ``classes`` differ from the list its
    model version was first stored with) carries both lists.

    Example:
        >>> Conflict(3, "fraud", "tx-9")
        Conflict(index=3, model='fraud', request_id='tx-9', stored_classes=None, classes=None, \
version='')
    """

    index: int
    model: str
    request_id: str
    #: For a class-list conflict: the class list stored first for the event's
    #: (tenant, model, version), and the event's own (None: a payload conflict).
    stored_classes: tuple[str, ...] | None = None
    classes: tuple[str, ...] | None = None
    version: str = ""

    @property
    def field(self) -> str:
        """The JSON pointer, within the event, of what conflicts.

        Example:
            >>> Conflict(0, "m", "r", ("0", "1"), ("neg", "pos")).field
            '/classes'
        """
        return "/request_id" if self.stored_classes is None else "/classes"

    @property
    def message(self) -> str:
        """Why the event is refused.

        Example:
            >>> print(Conflict(0, "m", "r", ("0", "1"), ("neg", "pos"), "v1").message)
            model 'm' version 'v1' is stored with classes ['0', '1'] and this event has \
['neg', 'pos']: a model version's class list is part of its identity (send these \
events as another version)
        """
        if self.stored_classes is None or self.classes is None:
            return "already stored with a different payload"
        return (
            f"model {self.model!r} version {self.version!r} is stored with classes "
            f"{list(self.stored_classes)} and this event has {list(self.classes)}: a model "
            "version's class list is part of its identity (send these events as another version)"
        )


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
        corrected: labels with ``correction`` that replaced a stored label of
            another value (the old one goes to ``label_history``).

    Example:
        >>> WriteOutcome(inserted=2, duplicates=1, conflicts=[])
        WriteOutcome(inserted=2, duplicates=1, conflicts=[], pending=0, joined=0, corrected=0)
    """

    inserted: int
    duplicates: int
    conflicts: list[Conflict] = field(default_factory=list)
    pending: int = 0
    joined: int = 0
    corrected: int = 0


@dataclass
class _Call:
    """Keys stored by the current write call, not yet in the indexes (not committed)."""

    prediction_fps: list[NDArray[np.int64]] = field(default_factory=list)
    prediction_rfps: list[NDArray[np.int64]] = field(default_factory=list)
    label_fps: list[NDArray[np.int64]] = field(default_factory=list)
    seq: int = 0  # written on every event row: what the bucket fold has seen (buckets.py)
    classes: list[tuple[str, str, str, Sequence[str]]] = field(default_factory=list)
    # The class list of each (tenant, model, version) first written by this call.
    class_list: dict[tuple[str, str, str], tuple[str, ...]] = field(default_factory=dict)
    # Rows are inserted once per table at the end of the call (an INSERT costs ~1 ms
    # whatever its size); until then their payload hashes answer duplicate checks.
    rows: dict[str, list[pa.Table]] = field(default_factory=dict)
    releases: list[pa.Table] = field(default_factory=list)
    # Deferred predictions whose class lists are not in ``classes`` yet (_flush).
    unclassed: list[pa.Table] = field(default_factory=list)
    # The rows whose payload hashes answer duplicate checks, in the order deferred
    # (the last one of an identity wins); read only when a later batch needs them.
    written: dict[str, list[pa.Table]] = field(
        default_factory=lambda: {"predictions": [], "labels": []}
    )
    _keys: dict[str, tuple[int, set[int]]] = field(default_factory=dict)

    def defer(self, target: str, rows: pa.Table) -> None:
        """Queue ``rows`` for ``INSERT INTO target`` at the end of the call."""
        self.rows.setdefault(target, []).append(rows)
        target = "labels" if target == "corrections" else target  # they replace labels
        if target in self.written:
            self.written[target].append(rows)

    def payloads(self, kind: str, fps: NDArray[np.int64]) -> dict[tuple[str, str, str], int]:
        """The payload hash of the call's ``kind`` rows with these fingerprints, by
        identity (the last deferred wins: a correction replaces a label)."""
        tables = self.written[kind]
        if not fps.size or not tables:
            return {}
        if len(tables) > 1:  # one table from now on: later look-ups concatenate less
            # Promoted: a call may hold classifier predictions and scored sequences.
            tables[:] = [pa.concat_tables(tables, promote_options="default")]
        hit = np.isin(as_int64(tables[0]["fp"]), fps)
        if not hit.any():
            return {}
        part = tables[0].filter(pa.array(hit))
        parts = (part[name].to_pylist() for name in ("tenant", "model", "request_id"))
        hashes = part["payload_hash"].to_pylist()
        return dict(zip(zip(*parts, strict=True), hashes, strict=True))

    def has(self, name: str, keys: NDArray[np.int64]) -> NDArray[np.bool_]:
        """Which ``keys`` are in ``prediction_fps``, ``prediction_rfps`` or ``label_fps``:
        a set of them, extended as parts are added (~0.1 us per key either way; an
        np.isin costs ~30 us whatever the size, and batches of predictions and labels
        interleave one request at a time)."""
        parts = getattr(self, name)
        done, seen = self._keys.get(name) or (0, set())
        if done < len(parts):
            for part in parts[done:]:
                seen.update(part.tolist())
            self._keys[name] = (len(parts), seen)
        return np.fromiter((key in seen for key in keys.tolist()), dtype=bool, count=keys.size)

    @staticmethod
    def contains(parts: list[NDArray[np.int64]], keys: NDArray[np.int64]) -> NDArray[np.bool_]:
        if not parts:
            return np.zeros(keys.shape, dtype=bool)
        return np.isin(keys, np.concatenate(parts))


def check_batch(number: int, batch: EventBatch) -> None:
    """Raise :class:`~xebench.errors.InvalidInputError` unless ``batch`` (0-based
    position ``number`` in a write; the error counts rows from 1) is an
    :class:`EventBatch` of a known kind and schema.

    Example:
        >>> check_batch(0, EventBatch("events", pa.table({})))
        Traceback (most recent call last):
        ...
        xebench.errors.InvalidInputError: batches: kind must be 'predictions' or 'labels'; \
row 1 is 'events'
    """
    if not isinstance(batch, EventBatch) or not isinstance(batch.table, pa.Table):
        raise InvalidInputError(
            "batches", "must be EventBatch(kind, pyarrow.Table)", index=number, value=batch
        )
    schema = SCHEMAS.get(batch.kind)
    if schema is not None and batch.table.schema.equals(schema):
        return  # the usual batch (~1 us; the comparison below is ~12 us)
    if batch.kind == "predictions" and batch.table.schema.equals(SEQUENCE_SCHEMA):
        return  # a language model's scored sequences (POST /v1/lm/tokens)
    if schema is None:
        raise InvalidInputError(
            "batches", "kind must be 'predictions' or 'labels'", index=number, value=batch.kind
        )
    got = [(f.name, f.type) for f in batch.table.schema]
    if got != [(f.name, f.type) for f in schema]:
        raise InvalidInputError(
            "batches",
            f"a {batch.kind} table must have the columns and types of xebench.store.schema",
            index=number,
            value=", ".join(f"{name}: {kind}" for name, kind in got),
        )


def _pending(labels: pa.Table) -> pa.Table:
    """The ``pending_labels`` rows of these new labels."""
    pending = labels.select(["fp", "tenant", "model", "request_id", "ingest_time"])
    return pending.rename_columns([*pending.column_names[:4], "received_at"])


@dataclass(frozen=True)
class _Plan:
    """What :meth:`Writes._plan` found for a call's batches of one kind (their rows in
    order)."""

    kind: str
    clean: list[bool]  # per batch of the kind: stored whole, without a check of its own
    starts: list[int]  # the row offset of each batch, and the row count
    fps: NDArray[np.int64]
    rfps: NDArray[np.int64]  # predictions' (labels: their fps)
    committed: NDArray[np.bool_]  # rows of clean batches: a committed label / prediction
    model_less: NDArray[np.bool_]  # labels: the rows that name no model
    combos: list[list[Combo]]  # per batch of predictions: its model versions' class lists


def _numpy_bool(values: pa.ChunkedArray | pa.Array) -> NDArray[np.bool_]:
    return np.asarray(values.to_numpy(zero_copy_only=False), dtype=bool)


class Writes:
    """The write side's memory -- identity indexes, class lists, the last sequence
    number -- and the write of batches into one connection.

    Args:
        filter_bytes: the size of the filter of every stored key, shared by the
            three kinds of key (a prediction has two, a label one); see
            :class:`~xebench.store.key_filter.KeyFilter` for its false-positive rate.
        recent_keys: keys of each kind kept exactly (8 bytes each, at most).

    ``stale`` says why the memory state may be wrong after a commit (None: it is
    sound); the owner must then refuse writes and reopen. ``lookups`` counts the
    lookups of stored keys that the memory could not settle.

    Example:
        >>> Writes(filter_bytes=1 << 12).stale is None
        True
    """

    def __init__(self, *, filter_bytes: int = 64 << 20, recent_keys: int = 1 << 20) -> None:
        self.filter_bytes = filter_bytes
        self.recent_keys = recent_keys
        self._new_indexes()
        # Replaced, never mutated, so that readers on other threads iterate a snapshot.
        self.classes: Classes = {}
        # The class list of each (tenant, model, version): the first one stored wins.
        self.class_list: dict[tuple[str, str, str], tuple[str, ...]] = {}
        self.seq = 0
        self.stale: str | None = None
        self.lookups = 0
        self._forgotten = 0  # keys deleted since the filter was built (it keeps them)
        # Check runs of batches together (write_runs.py); False: batch by batch, the
        # reference the tests compare the grouped path with.
        self._grouped = True

    def _new_indexes(self) -> None:
        self.keys = KeyFilter(self.filter_bytes)
        self.prediction_fps = IdentityIndex(self.keys, salt=1, recent_keys=self.recent_keys)
        self.prediction_rfps = IdentityIndex(self.keys, salt=2, recent_keys=self.recent_keys)
        self.label_fps = IdentityIndex(self.keys, salt=3, recent_keys=self.recent_keys)
        self._forgotten = 0

    def load(self, con: duckdb.DuckDBPyConnection) -> None:
        """Read every key into the filter, the most recent into the recent indexes, the
        classes of each model and the last ``seq``."""
        self._new_indexes()
        every = (
            (self.prediction_fps, "SELECT fp FROM predictions"),
            (self.prediction_rfps, "SELECT rfp FROM predictions"),
            (self.label_fps, "SELECT fp FROM labels"),
        )
        for index, sql in every:  # in chunks: never a whole column in memory
            for chunk in con.sql(sql).to_arrow_reader(1 << 20):
                index.add_old(chunk.column(0))
        half = self.recent_keys // 2
        recent = con.execute(
            "SELECT fp, rfp FROM predictions ORDER BY seq DESC LIMIT ?", [half]
        ).fetchnumpy()
        self.prediction_fps.recent_keys.add(as_int64(recent["fp"]))
        self.prediction_rfps.recent_keys.add(as_int64(recent["rfp"]))
        labels = con.execute("SELECT fp FROM labels ORDER BY seq DESC LIMIT ?", [half])
        self.label_fps.recent_keys.add(as_int64(labels.fetchnumpy()["fp"]))
        self.load_classes(con)
        # The last commit's seq is not always on a stored row: a commit of duplicates
        # only (a client's resend) moves the fold's marks and stores nothing, and
        # retention may delete the newest rows. A seq at or below a mark would never
        # be folded, so the next commit numbers after the marks too.
        (self.seq,) = con.execute(
            "SELECT greatest((SELECT coalesce(max(seq), 0) FROM predictions),"
            " (SELECT coalesce(max(seq), 0) FROM labels),"
            " (SELECT coalesce(max(CAST(value AS BIGINT)), 0) FROM meta"
            "  WHERE key IN ('folded_predictions', 'folded_labels')))"
        ).fetchone()

    def load_classes(self, con: duckdb.DuckDBPyConnection) -> None:
        """Read the class lists of each (tenant, model, version) from the predictions,
        and the one that wins: the first stored (lowest ``seq``). A store written
        before class lists were enforced may hold several; the one most of the
        version's predictions carry wins there (ties: the first stored)."""
        rows = con.execute(
            "SELECT tenant, model, version, classes FROM predictions GROUP BY ALL"
            " ORDER BY count(*) DESC, min(seq), classes"
        )
        classes: Classes = {}
        winners: dict[tuple[str, str, str], tuple[str, ...]] = {}
        for tenant, model, version, seen in rows.fetchall():
            key = (tenant, model, version)
            classes[key] = classes.get(key, frozenset()) | {tuple(seen)}
            winners.setdefault(key, tuple(seen))
        self.classes, self.class_list = classes, winners

    def forget(
        self,
        con: duckdb.DuckDBPyConnection,
        fps: NDArray[np.int64],
        rfps: NDArray[np.int64],
        label_fps: NDArray[np.int64],
        *,
        classes: bool,
    ) -> None:
        """Drop deleted keys from the recent indexes (and reload the classes when
        ``classes``); rebuild everything from the store once a quarter of the
        filter's keys are gone (the filter cannot drop them: they would only cost
        lookups)."""
        try:
            self.prediction_fps.remove(fps)
            self.prediction_rfps.remove(rfps)
            self.label_fps.remove(label_fps)
            self._forgotten += int(fps.size + rfps.size + label_fps.size)
            if self._forgotten > self.keys.count / 4:
                self.load(con)
            elif classes:  # a model's classes may be gone with its rows
                self.load_classes(con)
        except BaseException as error:
            self.stale = f"{type(error).__name__} while updating the fingerprint index"
            raise

    def write(
        self,
        con: duckdb.DuckDBPyConnection,
        batches: Sequence[EventBatch],
        then: Callable[[duckdb.DuckDBPyConnection, int, list[WriteOutcome]], None] | None = None,
    ) -> list[WriteOutcome]:
        """Write checked ``batches`` in one transaction of ``con``; see
        :meth:`xebench.store.EventStore.write` for what becomes of each row.

        ``then(con, seq, outcomes)`` runs in the same transaction after the rows are
        in (``seq``: the commit's sequence number): the bucket fold of the commit."""
        call = _Call(seq=self.seq + 1)
        with transaction(con):
            outcomes = self._write_batches(con, batches, call)
            self._flush(con, call)
            if then is not None:
                then(con, call.seq, outcomes)
        self.seq = call.seq
        self._publish(call)
        return outcomes

    def _publish(self, call: _Call) -> None:
        """Add what the call committed to the in-memory state."""
        try:
            for index, parts in (
                (self.prediction_fps, call.prediction_fps),
                (self.prediction_rfps, call.prediction_rfps),
                (self.label_fps, call.label_fps),
            ):
                if parts:
                    index.add(np.concatenate(parts))
            if call.classes:
                classes = dict(self.classes)  # copy on write: readers iterate the old one
                for tenant, model, version, seen in call.classes:
                    key = (tenant, model, version)
                    classes[key] = classes.get(key, frozenset()) | {tuple(seen)}
                self.classes = classes
            if call.class_list:
                self.class_list = {**call.class_list, **self.class_list}
        except BaseException as error:
            # The rows are committed but the keys are not all in memory: a retry could
            # be stored twice. Report unhealthy so that the owner reopens (and reloads).
            self.stale = f"{type(error).__name__} while updating the fingerprint index"
            raise

    def _write_batches(
        self, con: duckdb.DuckDBPyConnection, batches: Sequence[EventBatch], call: _Call
    ) -> list[WriteOutcome]:
        """Write the batches in order: the clean ones (write_runs.py) without a check of
        their own, every other one batch by batch."""
        kinds = ("predictions", "labels")
        plans = {
            kind: self._plan(con, kind, [batch.table for batch in batches if batch.kind == kind])
            for kind in kinds
            if self._grouped
        }
        numbers = dict.fromkeys(kinds, 0)  # each batch's position among its kind's
        outcomes = []
        for batch in batches:
            number, plan = numbers[batch.kind], plans.get(batch.kind)
            numbers[batch.kind] += 1
            if plan is not None and plan.clean[number]:
                outcomes.append(self._store_clean(plan, number, batch.table, call))
            elif batch.kind == "predictions":
                outcomes.append(self._write_predictions(con, batch.table, call))
            else:
                outcomes.append(self._write_labels(con, batch.table, call))
        return outcomes

    def _plan(
        self, con: duckdb.DuckDBPyConnection, kind: str, tables: list[pa.Table]
    ) -> _Plan | None:
        """Which of a call's batches of ``kind`` are clean, and which of their rows match
        a committed row of the other kind; None: none is clean. Made before anything of
        the call is written: a batch's duplicates and class lists depend on earlier
        batches of its own kind only, and the matches within the call are added when
        a clean batch is stored."""
        joined = concat(tables) if tables else None
        if joined is None or not joined[0].num_rows:
            return None
        whole, starts = joined
        fps = as_int64(whole["fp"])
        batches = batch_of(starts)
        index = self.prediction_fps if kind == "predictions" else self.label_fps
        unsure = index.maybe(fps) | repeats_earlier(fps)
        clean = np.diff(starts) > 0
        clean[batches[unsure]] = False
        combos: list[list[Combo]] = [[] for _ in tables]
        if kind == "predictions" and clean.any():
            found = class_combos(whole, starts)
            if found is None:
                return None
            combos = found
            clean &= classes_clean(combos, self.class_list)
        if not clean.any():
            return None
        rows = clean[batches]
        committed = np.zeros(whole.num_rows, dtype=bool)
        keys = fps[rows]
        if kind == "predictions":  # does a label wait for (or exist for) a prediction?
            rfps = as_int64(whole["rfp"])
            both = self._committed(con, "labels", "fp", np.concatenate([keys, rfps[rows]]))
            committed[rows] = both[: keys.size] | both[keys.size :]
            model_less = committed  # unused for predictions
        else:  # a model-less label matches every prediction's rfp
            rfps = fps
            model_less = _numpy_bool(pc.equal(whole["model"], ""))
            for part, column in ((rows & ~model_less, "fp"), (rows & model_less, "rfp")):
                if part.any():
                    committed[part] = self._committed(con, "predictions", column, fps[part])
        found_rows = (fps, rfps, committed, model_less)
        return _Plan(kind, clean.tolist(), starts.tolist(), *found_rows, combos)

    def _store_clean(self, plan: _Plan, number: int, table: pa.Table, call: _Call) -> WriteOutcome:
        """Store batch ``number`` of the plan's kind, which :meth:`_plan` found clean:
        every row is new and its class lists agree (what the batch path decides)."""
        start, stop = plan.starts[number], plan.starts[number + 1]
        fps, matched = plan.fps[start:stop], plan.committed[start:stop]
        if plan.kind == "predictions":
            rfps = plan.rfps[start:stop]
            if call.label_fps:  # or a label of this call, stored before this batch
                both = call.has("label_fps", np.concatenate([fps, rfps]))
                matched = matched | both[: fps.size] | both[fps.size :]
            for key, classes in plan.combos[number]:
                if key not in self.class_list and key not in call.class_list:
                    call.class_list[key] = classes
                call.classes.append((*key, classes))
            call.defer("predictions", table)
            joined = int(matched.sum())
            if joined:
                call.releases.append(table.filter(pa.array(matched)))
            call.prediction_fps.append(fps)
            call.prediction_rfps.append(rfps)
            return WriteOutcome(stop - start, 0, [], joined=joined)
        if call.prediction_fps:  # or a prediction of this call, stored before this batch
            model_less = plan.model_less[start:stop]
            inside = np.zeros(fps.size, dtype=bool)
            for rows, name in ((model_less, "prediction_rfps"), (~model_less, "prediction_fps")):
                if rows.any():
                    inside[rows] = call.has(name, fps[rows])
            matched = matched | inside
        call.defer("labels", table)
        joined = int(matched.sum())
        waiting = stop - start - joined
        if waiting:
            call.defer("pending_labels", _pending(table.filter(pa.array(~matched))))
        call.label_fps.append(fps)
        return WriteOutcome(stop - start, 0, [], pending=waiting, joined=joined)

    def _resolve(
        self,
        con: duckdb.DuckDBPyConnection,
        kind: str,
        table: pa.Table,
        fps: NDArray[np.int64],
        candidates: NDArray[np.bool_],
        call: _Call,
    ) -> tuple[NDArray[np.bool_], int, list[Conflict], list[int]]:
        """Which rows are new; count duplicates; list conflicts and corrections (rows
        flagged ``correction`` whose identity is stored with another payload).

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
            return keep, 0, [], []
        correcting = (
            _numpy_bool(table["correction"]) if "correction" in table.column_names else None
        )
        part = table.select(["tenant", "model", "request_id", "payload_hash"]).take(rows)
        columns = (part[name].to_pylist() for name in ("tenant", "model", "request_id"))
        identities = list(zip(*columns, strict=True))
        hashes = part["payload_hash"].to_pylist()
        stored_here = candidates[rows]
        wanted = {identity for identity, hit in zip(identities, stored_here, strict=True) if hit}
        seen = self._stored(con, kind, fps[rows[stored_here]], wanted, call)
        duplicates, conflicts, corrections = 0, [], []
        for row, identity, payload in zip(rows.tolist(), identities, hashes, strict=True):
            stored = seen.get(identity)
            if stored is None:  # the first occurrence of the identity: a new row
                seen[identity] = payload
                continue
            keep[row] = False
            if stored == payload:
                duplicates += 1
            elif correcting is not None and correcting[row]:
                corrections.append(row)
                seen[identity] = payload  # what is stored once the call commits
            else:
                conflicts.append(Conflict(row, identity[1], identity[2]))
        return keep, duplicates, conflicts, corrections

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
        written = call.payloads(kind, fps)
        found = {identity: written[identity] for identity in wanted if identity in written}
        if not fps.size or wanted <= found.keys():
            return found
        sql = (
            f"SELECT tenant, model, request_id, payload_hash FROM {kind} "
            "WHERE fp IN (SELECT fp FROM _xb_keys)"
        )
        keys = sorted_unique(fps)
        con.register("_xb_keys", pa.table({"fp": keys}))
        try:
            since = datetime.now(UTC) - _RECENT
            rows = con.execute(f"{sql} AND ingest_time >= ?", [since]).fetchall()
            found.update(((t, m, r), h) for t, m, r, h in rows)
            if wanted <= found.keys():
                return found
            # DuckDB pushes a Bloom filter of the keys into the scan, so this reads the
            # strings of matching rows only: ~70 ms at 1e7 rows, whatever the key count.
            self.lookups += 1
            rows = con.execute(sql).fetchall()
            found.update(((t, m, r), h) for t, m, r, h in rows)
            return found
        finally:
            con.unregister("_xb_keys")

    def _exists(
        self,
        con: duckdb.DuckDBPyConnection,
        table: str,
        column: str,
        keys: NDArray[np.int64],
        call: _Call,
    ) -> NDArray[np.bool_]:
        """Which ``keys`` some row of ``table`` (committed, or of this call) has in
        ``column``: from the recent keys and the call's, else, for the keys the
        filter reports, from the store (an old key, or a false positive)."""
        written = {
            ("labels", "fp"): call.label_fps,
            ("predictions", "fp"): call.prediction_fps,
            ("predictions", "rfp"): call.prediction_rfps,
        }[(table, column)]
        return self._committed(con, table, column, keys, _Call.contains(written, keys))

    def _committed(
        self,
        con: duckdb.DuckDBPyConnection,
        table: str,
        column: str,
        keys: NDArray[np.int64],
        known: NDArray[np.bool_] | None = None,
    ) -> NDArray[np.bool_]:
        """Which ``keys`` a committed row of ``table`` has in ``column`` (or ``known``
        says are there): the recent keys, else the store for the keys the filter
        reports."""
        index = {
            ("labels", "fp"): self.label_fps,
            ("predictions", "fp"): self.prediction_fps,
            ("predictions", "rfp"): self.prediction_rfps,
        }[(table, column)]
        found = index.recent(keys) if known is None else index.recent(keys) | known
        unsure = ~found & index.maybe(keys)
        if unsure.any():
            self.lookups += 1
            wanted = keys[unsure]
            con.register("_xb_keys", pa.table({"k": sorted_unique(wanted)}))
            try:
                stored = con.execute(
                    f"SELECT DISTINCT {column} AS k FROM {table} "
                    f"WHERE {column} IN (SELECT k FROM _xb_keys)"
                ).fetchnumpy()["k"]
            finally:
                con.unregister("_xb_keys")
            found[unsure] = np.isin(wanted, as_int64(stored))
        return found

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

    def _new_rows(
        self, con: duckdb.DuckDBPyConnection, kind: str, table: pa.Table, call: _Call
    ) -> tuple[pa.Table, NDArray[np.int64], int, list[int], WriteOutcome | None]:
        """The rows of ``table`` to store, their fingerprints, the duplicates counted and
        the rows that correct a stored label; or, last, the outcome when no new row is
        to be stored (no row, a conflict, only duplicates and corrections)."""
        if not table.num_rows:
            return table, np.empty(0, dtype=np.int64), 0, [], WriteOutcome(0, 0, [])
        fps = as_int64(table["fp"])
        index, written = (
            (self.prediction_fps, call.prediction_fps)
            if kind == "predictions"
            else (self.label_fps, call.label_fps)
        )
        candidates = index.maybe(fps) | _Call.contains(written, fps)
        keep, duplicates, conflicts, fixes = self._resolve(con, kind, table, fps, candidates, call)
        if conflicts:
            return table, fps, 0, [], WriteOutcome(0, 0, conflicts)
        new = table if keep.all() else table.filter(pa.array(keep))
        if not new.num_rows:
            return new, fps, duplicates, fixes, WriteOutcome(0, duplicates, [])
        return new, fps[keep], duplicates, fixes, None

    def _class_conflicts(
        self, table: pa.Table, call: _Call
    ) -> tuple[list[Conflict], dict[tuple[str, str, str], tuple[str, ...]]]:
        """Rows whose class list differs from their (tenant, model, version)'s, and the
        lists this table would make the first of a version.

        A model version's class list is part of its identity: the first stored
        (committed, earlier in this write, or earlier in this table) wins, so two
        batches written together cannot both win."""
        known = {**self.class_list, **call.class_list}
        first = table.slice(0, 1).select(["tenant", "model", "version", "classes"]).to_pylist()
        key = (first[0]["tenant"], first[0]["model"], first[0]["version"])
        lists = table["classes"].combine_chunks()
        one_version = all(len(pc.unique(table[n])) == 1 for n in ("tenant", "model", "version"))
        if one_version and len(pc.unique(pc.binary_join(lists, "\x1f"))) == 1:
            # The usual batch: one model version, one class list (~0.1 ms).
            seen = tuple(first[0]["classes"])
            winner = known.get(key)
            if winner is None:
                return [], {key: seen}
            if winner == seen:
                return [], {}
            rows: Sequence[int] = range(table.num_rows)
        else:
            rows = range(table.num_rows)
        conflicts, fresh = [], {}
        parts = [table[n].to_pylist() for n in ("tenant", "model", "version", "request_id")]
        for row, tenant, model, version, request_id, seen in zip(
            rows, *parts, lists.to_pylist(), strict=True
        ):
            key, seen = (tenant, model, version), tuple(seen)
            winner = known.get(key)
            if winner is None:
                known[key] = fresh[key] = seen
            elif winner != seen:
                conflicts.append(Conflict(row, model, request_id, winner, seen, version))
        return conflicts, fresh

    def _write_predictions(
        self, con: duckdb.DuckDBPyConnection, table: pa.Table, call: _Call
    ) -> WriteOutcome:
        if not table.num_rows:
            return WriteOutcome(0, 0, [])
        conflicts, fresh = self._class_conflicts(table, call)
        if conflicts:
            return WriteOutcome(0, 0, conflicts)
        new, fps, duplicates, _, done = self._new_rows(con, "predictions", table, call)
        if done is not None:
            return done
        call.class_list.update(fresh)
        rfps = as_int64(new["rfp"])
        call.defer("predictions", new)
        call.unclassed.append(new)
        # Does a label wait for (or already exist for) any of the new predictions?
        both = self._exists(con, "labels", "fp", np.concatenate([fps, rfps]), call)
        labelled = both[: fps.size] | both[fps.size :]
        if labelled.any():
            call.releases.append(new.filter(pa.array(labelled)))
        call.prediction_fps.append(fps)
        call.prediction_rfps.append(rfps)
        return WriteOutcome(int(new.num_rows), duplicates, [], joined=int(labelled.sum()))

    def _classes_of(
        self, con: duckdb.DuckDBPyConnection, rows: pa.Table
    ) -> list[tuple[str, str, str, Sequence[str]]]:
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
        combos = class_combos(rows, np.array([0, rows.num_rows]))
        if combos is not None:  # ~1.5 ms for 10,000 rows of a few versions
            return [(*key, classes) for key, classes in combos[0]]
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
        for target in ("predictions", "labels", "pending_labels"):  # corrections: below
            if call.rows.get(target):
                # One chunk: DuckDB scans a table of many tiny chunks slowly.
                parts = call.rows[target]
                rows = pa.concat_tables(parts, promote_options="default").combine_chunks()
                seq = call.seq if target in SCHEMAS else None
                self._insert(con, target, rows, seq)
        if call.unclassed:  # the rows the batch path stored (the others are in call.classes)
            rows = pa.concat_tables(call.unclassed, promote_options="default")
            call.classes.extend(self._classes_of(con, rows))
        if call.releases:
            self._release_pending(con, pa.concat_tables(call.releases))
        if call.rows.get("corrections"):
            apply_corrections(con, pa.concat_tables(call.rows["corrections"]), call.seq)

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
        new, fps, duplicates, fixes, done = self._new_rows(con, "labels", table, call)
        if fixes:  # applied after the call's inserts: they may correct a row of this call
            call.defer("corrections", table.take(pa.array(fixes)))
        if done is not None:
            done.corrected = len(fixes)
            return done
        call.defer("labels", new)
        # A label naming a model matches that prediction's fp; a model-less label has
        # fp = fingerprint(tenant, "", request_id), which is every prediction's rfp.
        model_less = _numpy_bool(pc.equal(new["model"], ""))
        matched = np.zeros(new.num_rows, dtype=bool)
        for rows, column in ((~model_less, "fp"), (model_less, "rfp")):
            if rows.any():
                matched[rows] = self._exists(con, "predictions", column, fps[rows], call)
        waiting = ~matched
        if waiting.any():
            call.defer("pending_labels", _pending(new.filter(pa.array(waiting))))
        call.label_fps.append(fps)
        return WriteOutcome(
            int(new.num_rows),
            duplicates,
            [],
            pending=int(waiting.sum()),
            joined=int(matched.sum()),
            corrected=len(fixes),
        )
