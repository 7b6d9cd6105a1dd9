"""Importing prediction and label events from files: ``xebench ingest``.

A file row becomes an event dict, exactly as a client would send it over
HTTP, and goes through the same validation (:func:`xebench.ingest.events.parse_predictions`
/ :func:`~xebench.ingest.events.parse_labels`), so a row is accepted or refused by
the same rules wherever it comes from. Files are CSV, Parquet or JSON Lines
(by suffix, as ``xebench bench``), read in chunks of ``batch_rows`` rows
(:func:`xebench.io.read_chunks`), so memory does not grow with the file.

Each chunk is validated whole and written in one transaction. A bad row stops
the import with an :class:`IngestError` naming the file, the 1-based data row
(the header is not counted), the event field and its column; the chunks
before it stay stored, the bad chunk is not stored at all. Re-running the
import after fixing the file is safe: an identical event is a duplicate,
counted once, so rows already stored are simply counted as duplicates.

Events go either straight into an :class:`~xebench.store.EventStore` (the
database file must not be open in a running server: DuckDB lets one process
write it) or, with :class:`xebench.client.files.HttpTarget`, through a running
``xebench serve`` (``POST /v1/predictions`` in batches of up to 5,000, retried
under the client's policy, :mod:`xebench.client.transport`). The pieces: file
reading in :mod:`xebench.ingest.reading`, the column mapping in
:mod:`xebench.ingest.columns`, the store target in :mod:`xebench.ingest.targets`.

Column mapping (predictions):

- ``request_id`` column (default ``request_id``);
- the model: a constant ``model`` or a column ``model_col`` (default column
  ``model``); the version likewise (default column ``version`` if the file
  has one, else ``""``);
- ``prob`` (default ``probabilities``): a float column is binary P(class 1);
  a list column (Parquet, JSON Lines) or a JSON array string (CSV) holds one
  probability per class, in the order of ``classes``; a JSON object string
  ``{"cat": 0.2, "dog": 0.8}`` (or a struct / map column) names its classes;
- ``timestamp`` (default column ``timestamp`` if present): RFC 3339 strings
  with an offset, or Arrow timestamps with a time zone. Times without a zone
  are refused unless ``timezone`` says which zone they are in;
- ``cohorts`` and ``features``: columns whose values land under their column
  name (``"KEY=COLUMN"`` stores a column under another key). A struct or map
  column contributes all of its entries. Missing cohort values are left out;
  missing feature values are stored as null.

A missing value is a null, a NaN in a float column or an empty string (an
empty CSV cell). It is an error in ``request_id``, the model column,
``prob`` and ``label``; a missing version is ``""`` and a missing timestamp
means the time of import.

Labels: ``request_id``, ``label`` (default ``label``), the model (optional: a
label without a model applies to every model that scored the request) and
``timestamp``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import DataError, IngestError, InvalidInputError
from ..io.readers import Chunk, prefetch
from .columns import LabelColumns, PredictionColumns
from .events import NO_PII, Limits, PiiPolicy
from .reading import PathsLike, chunks, column_names, estimate_rows, input_files
from .targets import Rejected, StoreTarget, Target

if TYPE_CHECKING:  # pragma: no cover
    from ..store.event_store import EventStore

__all__ = [
    "DEFAULT_CHUNK_ROWS",
    "ImportSummary",
    "IngestError",
    "PathsLike",
    "estimate_rows",
    "import_labels",
    "import_predictions",
    "input_files",
]

#: Rows validated and committed together (one transaction per chunk).
DEFAULT_CHUNK_ROWS = 10_000

_DEFAULT_LIMITS = Limits()


# --- results and errors -------------------------------------------------------------


@dataclass
class ImportSummary:
    """What an import did.

    Attributes:
        kind: ``"predictions"`` or ``"labels"``.
        files: input files read.
        rows: rows read and accepted (new and duplicate).
        inserted: events stored for the first time.
        duplicates: events identical to stored ones (counted once).
        joined: labels matched to their prediction (labels), or waiting labels
            that the new predictions matched (predictions).
        pending: labels still waiting for their prediction.

    Example:
        >>> ImportSummary("labels", files=1, rows=3, inserted=2, duplicates=1,
        ...               joined=1, pending=1).line("db.duckdb")
        'imported 3 labels from 1 file(s) into db.duckdb: 2 new, 1 duplicates, 1 joined, 1 pending'
    """

    kind: str
    files: int = 0
    rows: int = 0
    inserted: int = 0
    duplicates: int = 0
    joined: int = 0
    pending: int = 0

    def line(self, target: str) -> str:
        """The one-line report printed by ``xebench ingest``."""
        text = (
            f"imported {self.rows} {self.kind} from {self.files} file(s) into {target}: "
            f"{self.inserted} new, {self.duplicates} duplicates"
        )
        if self.kind == "labels":
            text += f", {self.joined} joined, {self.pending} pending"
        elif self.joined:
            text += f" ({self.joined} waiting labels joined)"
        return text

    def to_dict(self) -> dict[str, Any]:
        """The summary as a JSON-safe dict."""
        return {
            "kind": self.kind,
            "files": self.files,
            "rows": self.rows,
            "inserted": self.inserted,
            "duplicates": self.duplicates,
            "joined": self.joined,
            "pending": self.pending,
        }


# --- the import loop -----------------------------------------------------------------


def _note(source: str, boundary: int, files_before: int) -> str:
    earlier = f"the {files_before} file(s) before {source}" if files_before else ""
    if boundary > 1:
        stored = f"rows before row {boundary} of {source}"
        stored += f", and {earlier}," if earlier else ""
    elif earlier:
        stored = earlier
    else:
        return "(nothing was stored; fix the file and re-run)"
    fix = "fix the file and re-run: rows already stored count as duplicates"
    return f"({stored} are stored; {fix})"


def _run(
    kind: str,
    paths: list[Path],
    target: Target,
    columns: PredictionColumns | LabelColumns,
    batch_rows: int,
    on_chunk: Callable[[Chunk], None] | None,
) -> ImportSummary:
    if batch_rows < 1:
        raise InvalidInputError("batch_rows", "must be >= 1", value=batch_rows)
    plans = [(path, columns.plan(column_names(path), str(path))) for path in paths]
    summary = ImportSummary(kind, files=len(paths))
    for number, (path, plan) in enumerate(plans):
        source, boundary = str(path), 1
        prob = plan.fields.get("probabilities")
        reader = prefetch(chunks(path, plan.columns, plan.text_columns(), prob, batch_rows))
        try:
            with contextlib.closing(reader) as read:
                for chunk in read:
                    n = chunk.table.num_rows
                    if n == 0:
                        continue
                    events, problems = columns.events(chunk.table, plan)
                    try:
                        sent = target.send(kind, events, problems)
                    except Rejected as rejected:
                        boundary = chunk.first_row + rejected.sent
                        message, last = rejected.message, chunk.first_row + n - 1
                        if rejected.more:
                            message += (
                                f" (and {rejected.more} more bad row(s) among rows "
                                f"{chunk.first_row}-{last})"
                            )
                        if rejected.index is None:
                            message = f"rows {boundary}-{last}: {message}"
                        raise IngestError(
                            source,
                            None if rejected.index is None else chunk.first_row + rejected.index,
                            rejected.field,
                            message,
                            column=plan.column_of(rejected.field),
                            note=_note(source, boundary, number),
                            stored_before=boundary,
                            summary=summary,
                        ) from None
                    summary.rows += n
                    summary.inserted += sent.inserted
                    summary.duplicates += sent.duplicates
                    summary.joined += sent.joined
                    summary.pending += sent.pending
                    boundary = chunk.first_row + n
                    if on_chunk is not None:
                        on_chunk(chunk)
        except DataError as error:  # the file became unreadable part way
            if boundary == 1 and number == 0:
                raise
            raise IngestError(
                source, None, None, str(error).removeprefix(f"{source}: "),
                note=_note(source, boundary, number), stored_before=boundary, summary=summary,
            ) from None  # fmt: skip
    return summary


def _target(
    store: EventStore | Target, tenant: str, limits: Limits, pii: PiiPolicy, batch_rows: int
) -> Target:
    from ..store.event_store import EventStore

    if isinstance(store, EventStore):
        return StoreTarget(store, tenant, limits, pii, batch_rows)
    return store  # a running server (xebench.client.files.HttpTarget), or another target


def import_predictions(
    paths: PathsLike,
    store: EventStore | Target,
    *,
    tenant: str = "default",
    request_id: str = "request_id",
    model: str | None = None,
    model_col: str | None = None,
    version: str | None = None,
    version_col: str | None = None,
    prob: str = "probabilities",
    classes: Sequence[Any] | None = None,
    timestamp: str | None = None,
    timezone: str | tzinfo | None = None,
    cohorts: Sequence[str] = (),
    features: Sequence[str] = (),
    weight: str | None = None,
    pii: PiiPolicy = NO_PII,
    limits: Limits = _DEFAULT_LIMITS,
    batch_rows: int = DEFAULT_CHUNK_ROWS,
    on_chunk: Callable[[Chunk], None] | None = None,
) -> ImportSummary:
    """Import prediction events from CSV / Parquet / JSON Lines files (see the module doc).

    Args:
        paths: one file or several, read one after the other.
        store: an open :class:`~xebench.store.EventStore`, or a target such as
            :class:`xebench.client.files.HttpTarget` (then ``tenant``, ``pii``
            and ``limits`` are the server's).
        model, version: constant names; otherwise the columns ``model_col`` /
            ``version_col`` (default columns ``model`` and, if present, ``version``).
        prob: the probability column; ``classes`` names the classes in its order.
        timestamp: the event time column (default ``timestamp`` if present);
            ``timezone`` is the zone of times written without one.
        cohorts, features: columns (``"KEY=COLUMN"`` to store under another key).
        weight: the column of the events' business weights (default: every event 1).
        batch_rows: rows per chunk: validated together, one transaction each.
        on_chunk: called with each :class:`~xebench.io.Chunk` once it is stored.

    Raises:
        IngestError: a row is invalid or conflicts with a stored event;
            chunks before it are stored (the message says which rows).
        DataError: a file or column is missing (nothing is stored).

    Example:
        >>> import tempfile, pathlib
        >>> from xebench.store import EventStore
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (folder / "preds.csv").write_text(
        ...     "request_id,p,region,timestamp\\n"
        ...     "r1,0.9,eu,2026-01-01T00:00:00Z\\n"
        ...     "r2,0.2,us,2026-01-01T00:01:00Z\\n")
        >>> with EventStore(":memory:") as store:
        ...     first = import_predictions(folder / "preds.csv", store, model="fraud",
        ...                                prob="p", cohorts=["region"])
        ...     again = import_predictions(folder / "preds.csv", store, model="fraud",
        ...                                prob="p", cohorts=["region"])
        >>> first.line("db")
        'imported 2 predictions from 1 file(s) into db: 2 new, 0 duplicates'
        >>> again.line("db")
        'imported 2 predictions from 1 file(s) into db: 0 new, 2 duplicates'
    """
    files = input_files(paths)
    columns = PredictionColumns(
        request_id=request_id,
        model=model,
        model_col=model_col,
        version=version,
        version_col=version_col,
        prob=prob,
        classes=classes,
        timestamp=timestamp,
        timezone=timezone,
        cohorts=cohorts,
        features=features,
        weight=weight,
    )
    target = _target(store, tenant, limits, pii, batch_rows)
    return _run("predictions", files, target, columns, batch_rows, on_chunk)


def import_labels(
    paths: PathsLike,
    store: EventStore | Target,
    *,
    tenant: str = "default",
    request_id: str = "request_id",
    label: str = "label",
    model: str | None = None,
    model_col: str | None = None,
    timestamp: str | None = None,
    timezone: str | tzinfo | None = None,
    limits: Limits = _DEFAULT_LIMITS,
    batch_rows: int = DEFAULT_CHUNK_ROWS,
    on_chunk: Callable[[Chunk], None] | None = None,
) -> ImportSummary:
    """Import label events (observed outcomes) from files; see :func:`import_predictions`.

    The model is optional: a constant ``model``, a column ``model_col``, the
    column ``model`` if the file has one, or none -- then the label applies to
    every model that scored the request (so does a row whose model is empty).
    A label that arrives before its prediction waits (``pending``) and joins
    when the prediction is imported; a label outside a model's known classes
    is refused.

    Example:
        >>> import tempfile, pathlib
        >>> from xebench.store import EventStore
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (folder / "labels.csv").write_text("request_id,label\\nr1,1\\nr2,0\\n")
        >>> _ = (folder / "preds.csv").write_text(
        ...     "request_id,model,probabilities\\nr1,fraud,0.9\\n")
        >>> with EventStore(":memory:") as store:
        ...     print(import_labels(folder / "labels.csv", store).line("db"))
        ...     print(import_predictions(folder / "preds.csv", store).line("db"))
        imported 2 labels from 1 file(s) into db: 2 new, 0 duplicates, 0 joined, 2 pending
        imported 1 predictions from 1 file(s) into db: 1 new, 0 duplicates (1 waiting labels joined)
    """
    files = input_files(paths)
    columns = LabelColumns(
        request_id=request_id,
        label=label,
        model=model,
        model_col=model_col,
        timestamp=timestamp,
        timezone=timezone,
    )
    target = _target(store, tenant, limits, NO_PII, batch_rows)
    return _run("labels", files, target, columns, batch_rows, on_chunk)
