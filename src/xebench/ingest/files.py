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
write it) or, with :class:`HttpTarget`, through a running ``xebench serve``
(``POST /v1/predictions`` in batches of up to 5,000, retrying 429 / 503).

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
import json
import math
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, tzinfo
from datetime import time as clock_time
from decimal import Decimal
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from ..errors import DataError, XebenchError
from ..io import readers as _io
from ..io.readers import Chunk, prefetch, read_chunks
from .events import NO_PII, BatchError, Limits, PiiPolicy, parse_labels, parse_predictions

if TYPE_CHECKING:  # pragma: no cover
    import httpx

    from ..store.event_store import EventStore

__all__ = [
    "DEFAULT_CHUNK_ROWS",
    "HTTP_BATCH_EVENTS",
    "HttpTarget",
    "ImportSummary",
    "IngestError",
    "estimate_rows",
    "import_labels",
    "import_predictions",
]

#: Rows validated and committed together (one transaction per chunk).
DEFAULT_CHUNK_ROWS = 10_000
#: Events per request when sending through a server (its default limit is 10,000).
HTTP_BATCH_EVENTS = 5_000

_DEFAULT_LIMITS = Limits()
_NAME_RULE = "must be 1-128 letters, digits or . _ - : / @ + (no spaces, quotes or semicolons)"


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


class IngestError(XebenchError, ValueError):
    """A row (or a batch) that cannot be imported; the message is one line.

    Attributes:
        source: the file.
        row: 1-based data row of the bad event, or None (a whole batch failed).
        field: JSON pointer of the bad field within the event (``/probabilities/1``).
        column: the file column that field came from, or None.
        message: what is wrong.
        stored_before: first row of ``source`` that was not stored (rows
            before it, and earlier files, are stored).
        summary: what was imported before the error.

    Example:
        >>> error = IngestError("preds.csv", 17, "/probabilities", "must be in [0, 1]; got 1.3",
        ...                     note="(nothing was stored)")
        >>> str(error)
        'preds.csv: row 17: /probabilities: must be in [0, 1]; got 1.3 (nothing was stored)'
    """

    def __init__(
        self,
        source: str,
        row: int | None,
        field: str | None,
        message: str,
        *,
        column: str | None = None,
        note: str = "",
        stored_before: int = 1,
        summary: ImportSummary | None = None,
    ) -> None:
        self.source, self.row, self.field, self.column = source, row, field, column
        self.message, self.stored_before, self.summary = message, stored_before, summary
        where = f"{source}: row {row}: " if row is not None else f"{source}: "
        if field:
            parts = field.strip("/").split("/")
            implied = column == parts[0] or (
                parts[0] in ("cohort", "features") and len(parts) > 1 and column == parts[1]
            )
            shown = "" if not column or implied else f" (column {column!r})"
            if column and column.startswith("--"):
                shown = f" ({column})"
            where += f"{field}{shown}: "
        elif column:
            where += f"column {column!r}: "
        super().__init__(f"{where}{message}" + (f" {note}" if note else ""))


@dataclass
class _Sent:
    inserted: int = 0
    duplicates: int = 0
    joined: int = 0
    pending: int = 0

    def __add__(self, other: _Sent) -> _Sent:
        return _Sent(
            self.inserted + other.inserted,
            self.duplicates + other.duplicates,
            self.joined + other.joined,
            self.pending + other.pending,
        )


class _Rejected(Exception):
    """A batch was refused: the first bad event (index within the batch) or the whole batch."""

    def __init__(
        self,
        index: int | None,
        field: str | None,
        message: str,
        *,
        sent: int = 0,
        more: int = 0,
    ) -> None:
        super().__init__(message)
        self.index, self.field, self.message = index, field, message
        self.sent, self.more = sent, more

    def shifted(self, offset: int) -> _Rejected:
        index = None if self.index is None else self.index + offset
        return _Rejected(index, self.field, self.message, sent=self.sent + offset, more=self.more)


Problems = dict[int, tuple[str, str]]


def _first_problem(problems: Problems, errors: Iterable[tuple[int, str, str]] = ()) -> _Rejected:
    """The first bad event among conversion problems and validation errors."""
    merged: Problems = {}
    for index, pointer, message in errors:
        merged.setdefault(index, (pointer, message))
    merged.update(problems)  # a conversion problem explains the row better
    index = min(merged)
    pointer, message = merged[index]
    return _Rejected(index, pointer, message, more=len(merged) - 1)


def _relative(pointer: str) -> str:
    """``/3/probabilities/1`` -> ``/probabilities/1`` (the event index is the row)."""
    parts = pointer.split("/", 2)
    return "/" + parts[2] if len(parts) > 2 else ""


def _conflict_message(model: str, request_id: str) -> str:
    return (
        f"request_id {request_id!r} of model {model!r} is already stored with a different "
        "payload (or appears twice in this batch); a stored event is never changed (give the "
        "row a new request_id or restore its original values)"
    )


# --- targets: the store, or a running server ------------------------------------------


class _StoreTarget:
    """Validate like the HTTP service, then write one chunk per transaction."""

    def __init__(
        self, store: EventStore, tenant: str, limits: Limits, pii: PiiPolicy, batch_rows: int
    ) -> None:
        self.store, self.tenant, self.pii = store, tenant, pii
        self.limits = replace(limits, max_events=batch_rows)

    def send(self, kind: str, events: list[dict[str, Any]], problems: Problems) -> _Sent:
        from ..store.event_store import EventBatch

        limits = replace(self.limits, max_events=max(self.limits.max_events, len(events)))
        try:
            if kind == "predictions":
                table = parse_predictions(events, tenant=self.tenant, limits=limits, pii=self.pii)
            else:
                table = parse_labels(
                    events,
                    tenant=self.tenant,
                    limits=limits,
                    known_labels=lambda model: self.store.known_labels(self.tenant, model),
                )
        except BatchError as error:
            if not error.errors and not problems:
                raise _Rejected(None, None, error.detail) from None
            found = ((e["index"], _relative(e["field"]), e["message"]) for e in error.errors)
            raise _first_problem(problems, found) from None
        if problems:
            raise _first_problem(problems)
        (outcome,) = self.store.write([EventBatch(kind, table)])
        if outcome.conflicts:
            first = min(outcome.conflicts, key=lambda c: c.index)
            raise _Rejected(
                first.index,
                "/request_id",
                _conflict_message(first.model, first.request_id),
                more=len(outcome.conflicts) - 1,
            )
        return _Sent(outcome.inserted, outcome.duplicates, outcome.joined, outcome.pending)


class HttpTarget:
    """Send events through a running ``xebench serve`` instead of opening its database.

    Events are POSTed as JSON arrays of at most ``batch_events`` to
    ``URL/v1/predictions`` or ``URL/v1/labels``. 429 and 503 answers are
    retried after their ``Retry-After`` (connection failures with a growing
    delay), up to ``max_retries`` times; a resend is safe because identical
    events are counted once. A 413 (body too large) splits the batch in two.
    A 422 or 409 answer is mapped back to the file row it came from. The
    token, if any, decides the tenant.

    Example:
        >>> target = HttpTarget("http://127.0.0.1:8000/", token="xeb_...")
        >>> target.url
        'http://127.0.0.1:8000'
        >>> target.close()
    """

    def __init__(
        self,
        url: str,
        token: str | None = None,
        *,
        batch_events: int = HTTP_BATCH_EVENTS,
        max_retries: int = 10,
        timeout: float = 120.0,
        client: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        import httpx

        if batch_events < 1:
            raise ValueError(f"batch_events must be >= 1; got {batch_events!r}")
        self.url = url.rstrip("/")
        self.batch_events, self.max_retries, self._sleep = batch_events, max_retries, sleep
        headers = {"content-type": "application/json", "accept": "application/json"}
        if token:
            headers["authorization"] = f"Bearer {token}"
        self._own_client = client is None
        self.client = client or httpx.Client(timeout=httpx.Timeout(timeout, connect=10.0))
        self.headers = headers

    def __enter__(self) -> HttpTarget:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the HTTP connection pool (when this target created it)."""
        if self._own_client:
            self.client.close()

    def check(self) -> None:
        """Fail fast, with a clear message, when nothing answers at the URL."""
        import httpx

        try:
            response = self.client.get(f"{self.url}/healthz", headers=self.headers)
        except httpx.HTTPError as error:
            raise XebenchError(f"cannot reach the server at {self.url}: {error}") from None
        if response.status_code != 200:
            raise XebenchError(
                f"{self.url}/healthz answered {response.status_code}: is this an xebench server?"
            )

    def send(self, kind: str, events: list[dict[str, Any]], problems: Problems) -> _Sent:
        """POST ``events`` in batches; raises :class:`_Rejected` for the first refused event."""
        if problems:
            raise _first_problem(problems)
        total = _Sent()
        for start in range(0, len(events), self.batch_events):
            try:
                total += self._send_batch(kind, events[start : start + self.batch_events])
            except _Rejected as rejected:
                raise rejected.shifted(start) from None
        return total

    def _send_batch(self, kind: str, events: list[dict[str, Any]]) -> _Sent:
        try:
            body = json.dumps(events, allow_nan=False, separators=(",", ":"), default=str)
        except ValueError:  # NaN or infinity: JSON cannot carry them
            index, pointer = next(
                ((i, p) for i, e in enumerate(events) if (p := _non_finite(e)) is not None),
                (0, "/probabilities"),
            )
            what = {"probabilities": "probabilities", "cohort": "cohort values"}.get(
                pointer.split("/")[1], "feature values"
            )
            raise _Rejected(
                index, pointer, f"{what} must be finite (NaN and infinity are refused)"
            ) from None
        response = self._post(kind, body.encode())
        if response.status_code == 413 and len(events) > 1:
            half = len(events) // 2
            first = self._send_batch(kind, events[:half])
            try:
                second = self._send_batch(kind, events[half:])
            except _Rejected as rejected:
                raise rejected.shifted(half) from None
            return first + second
        return self._result(response)

    def _post(self, kind: str, body: bytes) -> httpx.Response:
        import httpx

        delay = 0.5
        for attempt in range(self.max_retries + 1):
            last = attempt == self.max_retries
            try:
                response = self.client.post(
                    f"{self.url}/v1/{kind}", content=body, headers=self.headers
                )
            except httpx.TransportError as error:
                if last:
                    raise _Rejected(
                        None, None, f"cannot reach the server at {self.url}: {error}"
                    ) from None
                self._sleep(delay)
                delay = min(delay * 2, 30.0)
                continue
            if response.status_code in (429, 503) and not last:
                self._sleep(_retry_after(response, delay))
                delay = min(delay * 2, 30.0)
                continue
            return response
        raise AssertionError("unreachable")  # pragma: no cover

    def _result(self, response: httpx.Response) -> _Sent:
        status = response.status_code
        try:
            payload = response.json()
        except ValueError:
            payload = {}
        if not isinstance(payload, dict):
            payload = {}
        if status == 200:
            return _Sent(
                int(payload.get("inserted", 0)),
                int(payload.get("duplicates", 0)),
                int(payload.get("joined", 0)),
                int(payload.get("pending", 0)),
            )
        detail = str(payload.get("detail") or response.text[:200] or response.reason_phrase)
        if status == 422 and payload.get("errors"):
            found = [
                (int(e["index"]), _relative(str(e.get("field", ""))), str(e.get("message", "")))
                for e in payload["errors"]
                if isinstance(e, dict) and isinstance(e.get("index"), int)
            ]
            if found:
                raise _first_problem({}, found)
        if status == 409 and payload.get("conflicts"):
            conflicts = [c for c in payload["conflicts"] if isinstance(c, dict)]
            first = min(conflicts, key=lambda c: int(c.get("index", 0)))
            raise _Rejected(
                int(first.get("index", 0)),
                "/request_id",
                _conflict_message(str(first.get("model", "")), str(first.get("request_id", ""))),
                more=len(conflicts) - 1,
            )
        hint = ""
        if status in (401, 403):
            hint = " (pass --token TOKEN or set XEBENCH_TOKEN; the token needs the ingest scope)"
        raise _Rejected(None, None, f"the server answered {status}: {detail}{hint}")


def _retry_after(response: httpx.Response, fallback: float) -> float:
    value = response.headers.get("retry-after", "")
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds()
        except (TypeError, ValueError, IndexError):
            seconds = fallback
    return min(max(seconds, 0.0), 60.0)


def _non_finite(event: Mapping[str, Any]) -> str | None:
    """JSON pointer of the first NaN / infinite number of an event, or None."""

    def bad(value: Any) -> bool:
        return isinstance(value, float) and not math.isfinite(value)

    probabilities = event.get("probabilities")
    if bad(probabilities):
        return "/probabilities"
    if isinstance(probabilities, list):
        for i, value in enumerate(probabilities):
            if bad(value):
                return f"/probabilities/{i}"
    if isinstance(probabilities, dict):
        for name, value in probabilities.items():
            if bad(value):
                return f"/probabilities/{name}"
    for part in ("cohort", "features"):
        for name, value in (event.get(part) or {}).items():
            if bad(value):
                return f"/{part}/{name}"
    return None


# --- reading ------------------------------------------------------------------------


def _paths(paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]) -> list[Path]:
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    result = [Path(p) for p in paths]
    if not result:
        raise DataError("data", "no input files were given")
    for path in result:  # every file is checked before anything is stored
        _io._check_file(path)
    return result


def _column_names(path: Path) -> list[str]:
    kind, compressed = _io.format_of(path)
    if kind == "parquet":
        import pyarrow.parquet as pq

        try:
            return list(pq.read_schema(path).names)
        except (pa.ArrowInvalid, OSError) as error:
            raise DataError(
                "data", f"cannot read as Parquet ({_io.first_line(error)})", source=str(path)
            ) from error
    if path.stat().st_size == 0:
        raise DataError("data", "file is empty", source=str(path))
    with _io._text_reader(path, kind, compressed) as (reader, _):
        return list(reader.schema.names)


def _chunks(
    path: Path, columns: list[str], text_columns: list[str], prob: str | None, batch_rows: int
) -> Iterator[Chunk]:
    kind, compressed = _io.format_of(path)
    floats = [prob] if prob else []
    if kind != "json":
        # CSV: ids, names and cohorts as text (request id "007" stays "007").
        yield from read_chunks(
            path,
            columns,
            float_columns=floats,
            category_columns=text_columns,
            batch_rows=batch_rows,
        )
        return
    yield from _json_chunks(path, compressed, columns, floats, batch_rows)


def _json_chunks(
    path: Path, compressed: bool, columns: list[str], floats: list[str], batch_rows: int
) -> Iterator[Chunk]:
    """JSON Lines chunks with date-like strings kept as text.

    Arrow's JSON reader turns ``"2026-01-01T00:00:00+02:00"`` into a timestamp
    *without* a time zone (it drops the offset after applying it), which would
    make an explicit UTC time look naive; so such columns are read as strings
    and parsed here. Otherwise the same as :func:`xebench.io.read_chunks`.
    """
    source, total = str(path), path.stat().st_size
    with _io._text_reader(path, "json", compressed) as (reader, _):
        schema = reader.schema
    _io.check_columns(schema.names, columns, source)
    types: dict[str, pa.DataType] = {}
    for name in columns:
        kind = schema.field(name).type
        if pa.types.is_timestamp(kind) or pa.types.is_date(kind) or pa.types.is_time(kind):
            types[name] = pa.string()
        elif name in floats and pa.types.is_integer(kind):
            types[name] = pa.float64()
    first_row = 1
    try:
        with _io._text_reader(path, "json", compressed, columns, types) as (reader, raw):
            for batch in reader:
                batch = batch.select(columns)
                done = total if raw.closed else raw.tell()
                for offset in range(0, batch.num_rows, batch_rows):
                    piece = pa.Table.from_batches([batch.slice(offset, batch_rows)])
                    yield Chunk(piece, source, first_row, min(done, total), total)
                    first_row += piece.num_rows
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError) as error:
        raise _io._read_error(error, path, "json", compressed, first_row) from error


def estimate_rows(path: str | os.PathLike[str], sample_bytes: int = 1 << 20) -> int:
    """About how many data rows a file holds, for progress bars (0 if it cannot tell).

    Exact for Parquet (its metadata); for CSV and JSON Lines, the file size
    over the mean line length of the first ``sample_bytes``; for gzip files a
    rough guess (the compressed size over 64 bytes per row).

    Example:
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "p.csv"
        >>> _ = path.write_text("request_id,p\\na,0.5\\nb,0.25\\n")
        >>> estimate_rows(path)
        2
    """
    path = Path(path)
    try:
        kind, compressed = _io.format_of(path)
        size = path.stat().st_size
        if kind == "parquet":
            import pyarrow.parquet as pq

            return int(pq.ParquetFile(path).metadata.num_rows)
        if compressed:
            return size // 64
        with path.open("rb") as handle:
            sample = handle.read(sample_bytes)
    except (DataError, OSError, pa.ArrowInvalid):
        return 0
    lines = sample.count(b"\n") + (0 if sample.endswith(b"\n") or not sample else 1)
    header = 1 if kind == "csv" else 0
    if len(sample) >= size:
        return max(lines - header, 0)
    return max(int(size * lines / max(len(sample), 1)) - header, 0)


# --- column values -> event values --------------------------------------------------------


def _pylist(column: pa.ChunkedArray) -> list[Any]:
    kind = column.type
    if pa.types.is_dictionary(kind):
        column = column.cast(kind.value_type)
        kind = column.type
    if pa.types.is_timestamp(kind):  # microseconds: no pandas.Timestamp for nanoseconds
        column = column.cast(pa.timestamp("us", "UTC" if kind.tz else None), safe=False)
    values = column.to_pylist()
    if pa.types.is_map(kind):
        values = [None if v is None else dict(v) for v in values]
    return values


def _values(column: pa.ChunkedArray, convert: Callable[[Any], Any]) -> list[Any]:
    """``convert`` applied to a column's values, skipping types it leaves unchanged."""
    values = _pylist(column)
    kind = column.type
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return [None if v == "" else v for v in values] if convert is _feature else values
    if convert is _feature and pa.types.is_floating(kind):
        return [None if v != v else v for v in values]  # NaN: a missing value
    if convert is not _text and (pa.types.is_integer(kind) or pa.types.is_boolean(kind)):
        return values
    return [convert(v) for v in values]


def _missing(value: Any) -> bool:
    """Null, NaN and the empty string (an empty CSV cell) are missing values."""
    return value is None or value == "" or (isinstance(value, float) and math.isnan(value))


def _text(value: Any) -> Any:
    """Ids, model and version names: numbers as their decimal text."""
    if isinstance(value, bool):
        return value  # refused by validation: a name is text
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (date, clock_time)):
        return value.isoformat()
    return value


def _scalar(value: Any) -> Any:
    """Cohort, feature and label values: integral floats as integers, times as text."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, (date, clock_time)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def _feature(value: Any) -> Any:
    if _missing(value):
        return None
    if isinstance(value, (date, clock_time)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return value


def _probabilities(value: Any) -> tuple[Any, str | None]:
    """(value for the event, problem or None); validation checks ranges and sums."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None, "probability is missing (empty or null)"
    if isinstance(value, str):
        text = value.strip()
        if text[:1] in ("[", "{"):
            try:
                return json.loads(text), None
            except json.JSONDecodeError as error:
                kind = "array" if text[0] == "[" else "object"
                return value, f"is not a valid JSON {kind} ({error.msg}); got {value[:60]!r}"
        try:
            return float(text), None
        except ValueError:
            return value, None  # validation: "probabilities must be numbers; got '...'"
    if isinstance(value, dict):  # struct column: absent keys of a row are nulls
        return {k: v for k, v in value.items() if v is not None}, None
    if isinstance(value, Decimal):
        return float(value), None
    return value, None


def _timezone(zone: str | tzinfo | None) -> tzinfo | None:
    if zone is None or isinstance(zone, tzinfo):
        return zone
    if zone.upper() in ("UTC", "Z", "GMT"):
        return UTC
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise DataError(
            "timezone", "is not a known time zone (use UTC or a name like Europe/Paris)",
            value=zone,
        ) from None  # fmt: skip


def _naive(text: str) -> str:
    return (
        f"timestamp {text!r} has no time zone; write times with an offset "
        "(2026-01-01T00:00:00Z) or pass --timezone UTC (or the zone the file's times are in)"
    )


def _timestamp(value: Any, zone: tzinfo | None) -> tuple[Any, str | None]:
    """RFC 3339 text for the event, or (value, problem)."""
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            return value, None  # validation names the problem
        value = parsed
    elif isinstance(value, date) and not isinstance(value, datetime):
        value = datetime.combine(value, clock_time())
    if isinstance(value, datetime):
        if value.tzinfo is None:
            if zone is None:
                return value.isoformat(), _naive(value.isoformat(sep=" "))
            value = value.replace(tzinfo=zone)
        return value.isoformat(), None
    return value, None


# --- column plans -------------------------------------------------------------------


@dataclass(frozen=True)
class _Plan:
    """Which column feeds which event field, for one file."""

    fields: dict[str, str]  # event field -> column
    cohorts: tuple[tuple[str, str], ...] = ()  # (key, column)
    features: tuple[tuple[str, str], ...] = ()
    options: dict[str, str] = field(default_factory=dict)  # event field -> option (--classes)

    @property
    def columns(self) -> list[str]:
        names = [*self.fields.values(), *(c for _, c in self.cohorts)]
        return list(dict.fromkeys([*names, *(c for _, c in self.features)]))

    def text_columns(self) -> list[str]:
        text = [self.fields[k] for k in ("request_id", "model", "version") if k in self.fields]
        return list(dict.fromkeys([*text, *(c for _, c in self.cohorts)]))

    def column_of(self, pointer: str | None) -> str | None:
        parts = (pointer or "").strip("/").split("/")
        if parts[0] in ("cohort", "features") and len(parts) > 1:
            pairs = self.cohorts if parts[0] == "cohort" else self.features
            return next((column for key, column in pairs if key == parts[1]), None)
        return self.fields.get(parts[0]) or self.options.get(parts[0])


def _keyed(specs: Sequence[str], what: str) -> tuple[tuple[str, str], ...]:
    pairs = []
    for spec in specs:
        key, sep, column = spec.partition("=")
        if not sep:
            key, column = spec, spec
        if not key or not column:
            raise DataError(what, "give COLUMN or KEY=COLUMN", value=spec)
        pairs.append((key, column))
    return tuple(pairs)


def _check_name(value: str | None, option: str, *, empty: bool = False) -> None:
    if value is None or (empty and value == ""):
        return
    if not re.fullmatch(r"[\w.\-:/@+]{1,128}", value):
        raise DataError(option, _NAME_RULE, value=value)


def _require(names: Sequence[str], columns: Iterable[str], source: str) -> None:
    _io.check_columns(names, list(dict.fromkeys(columns)), source)


def _model_column(
    names: Sequence[str], model: str | None, model_col: str | None, source: str, required: bool
) -> str | None:
    if model is not None and model_col is not None:
        raise DataError("model", "give --model NAME or --model-col COLUMN, not both")
    if model is not None:
        return None
    if model_col is not None:
        return model_col
    if "model" in names:
        return "model"
    if required:
        raise DataError(
            "columns",
            "no column 'model': name the model with --model NAME (or its column with "
            f"--model-col COLUMN); available columns: {', '.join(names)}",
            source=source,
        )
    return None


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
    target: Any,
    plan_for: Callable[[Sequence[str], str], _Plan],
    build: Callable[[pa.Table, _Plan], tuple[list[dict[str, Any]], Problems]],
    batch_rows: int,
    on_chunk: Callable[[Chunk], None] | None,
) -> ImportSummary:
    if batch_rows < 1:
        raise ValueError(f"batch_rows must be >= 1; got {batch_rows!r}")
    plans = [(path, plan_for(_column_names(path), str(path))) for path in paths]
    summary = ImportSummary(kind, files=len(paths))
    for number, (path, plan) in enumerate(plans):
        source, boundary = str(path), 1
        prob = plan.fields.get("probabilities")
        reader = prefetch(_chunks(path, plan.columns, plan.text_columns(), prob, batch_rows))
        try:
            with contextlib.closing(reader) as chunks:
                for chunk in chunks:
                    n = chunk.table.num_rows
                    if n == 0:
                        continue
                    events, problems = build(chunk.table, plan)
                    try:
                        sent = target.send(kind, events, problems)
                    except _Rejected as rejected:
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
    store: Any, tenant: str, limits: Limits, pii: PiiPolicy, batch_rows: int
) -> _StoreTarget | HttpTarget:
    if isinstance(store, HttpTarget):
        return store
    return _StoreTarget(store, tenant, limits, pii, batch_rows)


PathsLike = str | os.PathLike[str] | Sequence[str | os.PathLike[str]]


def import_predictions(
    paths: PathsLike,
    store: EventStore | HttpTarget,
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
    pii: PiiPolicy = NO_PII,
    limits: Limits = _DEFAULT_LIMITS,
    batch_rows: int = DEFAULT_CHUNK_ROWS,
    on_chunk: Callable[[Chunk], None] | None = None,
) -> ImportSummary:
    """Import prediction events from CSV / Parquet / JSON Lines files (see the module doc).

    Args:
        paths: one file or several, read one after the other.
        store: an open :class:`~xebench.store.EventStore`, or an :class:`HttpTarget`
            (then ``tenant``, ``pii`` and ``limits`` are the server's).
        model, version: constant names; otherwise the columns ``model_col`` /
            ``version_col`` (default columns ``model`` and, if present, ``version``).
        prob: the probability column; ``classes`` names the classes in its order.
        timestamp: the event time column (default ``timestamp`` if present);
            ``timezone`` is the zone of times written without one.
        cohorts, features: columns (``"KEY=COLUMN"`` to store under another key).
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
    files = _paths(paths)
    zone = _timezone(timezone)
    _check_name(model, "--model")
    _check_name(version, "--version", empty=True)
    if version is not None and version_col is not None:
        raise DataError("version", "give --version NAME or --version-col COLUMN, not both")
    cohort_pairs = _keyed(cohorts, "--cohort")
    feature_pairs = _keyed(features, "--feature")
    class_list = list(classes) if classes is not None else None

    def plan_for(names: Sequence[str], source: str) -> _Plan:
        fields = {"request_id": request_id, "probabilities": prob}
        model_column = _model_column(names, model, model_col, source, required=True)
        if model_column:
            fields["model"] = model_column
        if version_col is not None:
            fields["version"] = version_col
        elif version is None and "version" in names:
            fields["version"] = "version"
        if timestamp is not None:
            fields["timestamp"] = timestamp
        elif "timestamp" in names:
            fields["timestamp"] = "timestamp"
        plan = _Plan(fields, cohort_pairs, feature_pairs, {"classes": "--classes"})
        _require(names, plan.columns, source)
        return plan

    def build(table: pa.Table, plan: _Plan) -> tuple[list[dict[str, Any]], Problems]:
        n, f = table.num_rows, plan.fields
        problems: Problems = {}
        ids = _values(table[f["request_id"]], _text)
        models = _values(table[f["model"]], _text) if "model" in f else [model] * n
        versions = _values(table[f["version"]], _text) if "version" in f else None
        probs = _pylist(table[f["probabilities"]])
        times = _pylist(table[f["timestamp"]]) if "timestamp" in f else None
        cohort_values = [(key, _values(table[column], _scalar)) for key, column in plan.cohorts]
        feature_values = [(key, _values(table[col], _feature)) for key, col in plan.features]
        events = []
        for i in range(n):
            event: dict[str, Any] = {}
            for name, value in (("request_id", ids[i]), ("model", models[i])):
                if _missing(value):
                    problems.setdefault(i, (f"/{name}", f"{name} is missing (empty or null)"))
                else:
                    event[name] = value
            if versions is not None:
                event["version"] = "" if _missing(versions[i]) else versions[i]
            elif version is not None:
                event["version"] = version
            value, problem = _probabilities(probs[i])
            event["probabilities"] = value
            if problem:
                problems.setdefault(i, ("/probabilities", problem))
            if class_list is not None:
                event["classes"] = class_list
            if times is not None and not _missing(times[i]):
                value, problem = _timestamp(times[i], zone)
                event["timestamp"] = value
                if problem:
                    problems.setdefault(i, ("/timestamp", problem))
            cohort: dict[str, Any] = {}
            for key, values in cohort_values:
                value = values[i]
                if isinstance(value, dict):
                    cohort.update((k, _scalar(v)) for k, v in value.items() if not _missing(v))
                elif not _missing(value):
                    cohort[key] = value
            if cohort:
                event["cohort"] = cohort
            feats: dict[str, Any] = {}
            for key, values in feature_values:
                value = values[i]
                if isinstance(value, dict):
                    feats.update((k, _feature(v)) for k, v in value.items())
                else:
                    feats[key] = value
            if feats:
                event["features"] = feats
            events.append(event)
        return events, problems

    target = _target(store, tenant, limits, pii, batch_rows)
    return _run("predictions", files, target, plan_for, build, batch_rows, on_chunk)


def import_labels(
    paths: PathsLike,
    store: EventStore | HttpTarget,
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
    files = _paths(paths)
    zone = _timezone(timezone)
    _check_name(model, "--model")

    def plan_for(names: Sequence[str], source: str) -> _Plan:
        fields = {"request_id": request_id, "label": label}
        model_column = _model_column(names, model, model_col, source, required=False)
        if model_column:
            fields["model"] = model_column
        if timestamp is not None:
            fields["timestamp"] = timestamp
        elif "timestamp" in names:
            fields["timestamp"] = "timestamp"
        plan = _Plan(fields)
        _require(names, plan.columns, source)
        return plan

    def build(table: pa.Table, plan: _Plan) -> tuple[list[dict[str, Any]], Problems]:
        n, f = table.num_rows, plan.fields
        problems: Problems = {}
        ids = _values(table[f["request_id"]], _text)
        labels = _values(table[f["label"]], _scalar)
        models = _values(table[f["model"]], _text) if "model" in f else [model] * n
        times = _pylist(table[f["timestamp"]]) if "timestamp" in f else None
        events = []
        for i in range(n):
            event: dict[str, Any] = {}
            if _missing(ids[i]):
                problems.setdefault(i, ("/request_id", "request_id is missing (empty or null)"))
            else:
                event["request_id"] = ids[i]
            if not _missing(models[i]) and models[i] != "":
                event["model"] = models[i]
            if _missing(labels[i]):
                problems.setdefault(i, ("/label", "label is missing (empty or null)"))
            else:
                event["label"] = labels[i]
            if times is not None and not _missing(times[i]):
                value, problem = _timestamp(times[i], zone)
                event["timestamp"] = value
                if problem:
                    problems.setdefault(i, ("/timestamp", problem))
            events.append(event)
        return events, problems

    target = _target(store, tenant, limits, NO_PII, batch_rows)
    return _run("labels", files, target, plan_for, build, batch_rows, on_chunk)
