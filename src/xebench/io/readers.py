"""Reading predictions and labels: files and in-memory tables, in bounded chunks.

Everything xebench reads goes through :func:`read_chunks`, which yields Arrow
record batches of at most ``batch_rows`` rows together with where they came
from, so memory does not grow with the input and every error can name the
file, the 1-based data row (the header is not counted) and the column.

Supported inputs:

- files by suffix: CSV (``.csv``, ``.tsv``), Parquet (``.parquet``, ``.pq``)
  and JSON Lines (``.jsonl``, ``.ndjson``), each optionally ``.gz``
  compressed (not Parquet); several files are read one after the other;
- pandas and polars DataFrames, pyarrow Tables and RecordBatches.

A probability column is either a float (binary: P(class 1)) or a list of
floats (multiclass, in class order); in CSV the list is a JSON array string
such as ``"[0.2, 0.5, 0.3]"``. The ``*_array`` helpers turn one column of a
chunk into the NumPy arrays the kernel takes, with located errors.
"""

from __future__ import annotations

import csv
import math
import os
import queue
import re
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

from .._validation import is_missing
from ..errors import DataError, InvalidInputError

__all__ = [
    "DEFAULT_BATCH_ROWS",
    "SUPPORTED_SUFFIXES",
    "Chunk",
    "as_arrow",
    "check_columns",
    "file_schema",
    "first_line",
    "format_of",
    "label_array",
    "prefetch",
    "probability_array",
    "read_chunks",
    "weight_array",
]

#: File suffix -> format. ``.gz`` may follow any of them except Parquet.
SUPPORTED_SUFFIXES: dict[str, str] = {
    ".csv": "csv",
    ".tsv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "json",
    ".ndjson": "json",
}
#: Rows per chunk. Per-row float64 arrays of 512 KB stay in the L2 cache and
#: below malloc's mmap threshold: measured 1.4x faster end to end than 262,144.
DEFAULT_BATCH_ROWS = 65_536
#: Bytes per CSV / JSON block read by Arrow (rows are then sliced to ``batch_rows``).
_BLOCK_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class Chunk:
    """A slice of the input with its origin.

    Attributes:
        table: the requested columns of at most ``batch_rows`` rows.
        source: file path, or ``"<pandas.DataFrame>"`` and the like.
        first_row: 1-based data row number of the chunk's first row in ``source``.
        bytes_done: bytes of ``source`` read so far (approximate; for progress).
        bytes_total: size of ``source`` in bytes (0 for in-memory tables).
    """

    table: pa.Table
    source: str
    first_row: int
    bytes_done: int = 0
    bytes_total: int = 0


def read_chunks(
    data: Any,
    columns: Sequence[str],
    *,
    float_columns: Sequence[str] = (),
    category_columns: Sequence[str] = (),
    batch_rows: int = DEFAULT_BATCH_ROWS,
) -> Iterator[Chunk]:
    """Yield ``columns`` of ``data`` in chunks of at most ``batch_rows`` rows.

    ``data`` is a path, a list of paths, a pandas or polars DataFrame, or a
    pyarrow Table / RecordBatch. ``float_columns`` are read as floats even
    when a CSV's first block holds only integers (a probability column of
    zeros and ones must not fail on a later ``0.5``). ``category_columns``
    are read dictionary-encoded from Parquet and CSV (cohorts: a few distinct
    values repeated millions of times are decoded once, not per row).

    Raises:
        DataError: missing file or column (listing the available columns),
            unsupported suffix, unreadable or empty file.

    Example:
        >>> import pyarrow as pa
        >>> table = pa.table({"y": [0, 1, 1], "p": [0.2, 0.9, 0.6], "other": [1, 2, 3]})
        >>> [(c.first_row, c.table.column_names, c.table.num_rows)
        ...  for c in read_chunks(table, ["y", "p"], batch_rows=2)]
        [(1, ['y', 'p'], 2), (3, ['y', 'p'], 1)]
    """
    if batch_rows < 1:
        raise InvalidInputError("batch_rows", "must be >= 1", value=batch_rows)
    columns = list(dict.fromkeys(columns))
    if isinstance(data, (str, os.PathLike)):
        data = [data]
    if isinstance(data, (list, tuple)) and all(isinstance(d, (str, os.PathLike)) for d in data):
        if not data:
            raise DataError("data", "no input files were given")
        for path in data:  # fail on a missing file before reading a long first one
            _check_file(Path(path))
        for path in data:
            yield from _read_file(
                Path(path), columns, set(float_columns), set(category_columns), batch_rows
            )
        return
    table, source = as_arrow(data)
    check_columns(table.schema.names, columns, source)
    table = table.select(columns)
    for offset in range(0, table.num_rows, batch_rows):
        yield Chunk(table.slice(offset, batch_rows), source, offset + 1)


class _Raised:
    def __init__(self, error: BaseException) -> None:
        self.error = error


def prefetch(items: Iterable[Any], depth: int = 2) -> Iterator[Any]:
    """Iterate ``items`` on a background thread, at most ``depth`` items ahead.

    Arrow decodes files without holding the GIL, so reading the next chunk
    overlaps with computing on this one; the bounded queue keeps memory at
    ``depth`` chunks. Errors are raised here, in the consumer, unchanged.

    Example:
        >>> list(prefetch(iter(range(5))))
        [0, 1, 2, 3, 4]
    """
    ready: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        iterator = iter(items)
        try:
            for item in iterator:
                if not put(item):
                    break
            else:
                put(done)
        except BaseException as error:  # handed to the consumer, raised there
            put(_Raised(error))
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()

    worker = threading.Thread(target=work, name="xebench-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            item = ready.get()
            if item is done:
                return
            if isinstance(item, _Raised):
                raise item.error
            yield item
    finally:
        stop.set()
        worker.join()


def as_arrow(data: Any) -> tuple[pa.Table, str]:
    """An in-memory table as a pyarrow Table, with a description for messages.

    Accepts a pyarrow Table or RecordBatch and a pandas or polars DataFrame
    (neither library is imported here: the type is recognised by its module).

    Raises:
        DataError: anything else, naming its type.

    Example:
        >>> table, source = as_arrow(pa.record_batch({"p": [0.2, 0.9]}))
        >>> table.num_rows, source
        (2, '<pyarrow.RecordBatch>')
        >>> as_arrow([0.2, 0.9])  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        xebench.errors.DataError: data: must be a file path, ...
    """
    if isinstance(data, pa.Table):
        return data, "<pyarrow.Table>"
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data]), "<pyarrow.RecordBatch>"
    module = type(data).__module__.split(".")[0]
    if module == "pandas" and hasattr(data, "columns"):
        return pa.Table.from_pandas(data, preserve_index=False), "<pandas.DataFrame>"
    if module == "polars" and hasattr(data, "to_arrow"):
        return data.to_arrow(), "<polars.DataFrame>"
    raise DataError(
        "data",
        "must be a file path, a list of paths, a pandas or polars DataFrame or a pyarrow Table",
        value=type(data).__name__,
    )


def format_of(path: Path) -> tuple[str, bool]:
    """(format, gzip-compressed?) of a data file, from its suffix (:data:`SUPPORTED_SUFFIXES`).

    The format is ``"csv"`` (``.csv``, ``.tsv``), ``"parquet"`` or ``"json"``
    (JSON Lines); CSV and JSON Lines may end in ``.gz``. Other suffixes raise
    :class:`~xebench.DataError`.

    Example:
        >>> format_of(Path("day1.jsonl.gz")), format_of(Path("scores.PARQUET"))
        (('json', True), ('parquet', False))
        >>> format_of(Path("notes.txt"))
        Traceback (most recent call last):
        ...
        xebench.errors.DataError: notes.txt: data: unsupported file type '.txt'; use one of .csv,
        .tsv, .parquet, .pq, .jsonl, .ndjson (CSV and JSON Lines may be .gz compressed)
    """
    suffixes = [s.lower() for s in path.suffixes]
    compressed = bool(suffixes) and suffixes[-1] == ".gz"
    suffix = suffixes[-2] if compressed and len(suffixes) > 1 else (suffixes or [""])[-1]
    kind = SUPPORTED_SUFFIXES.get(suffix)
    if kind is None or (compressed and kind == "parquet"):
        known = ", ".join(SUPPORTED_SUFFIXES)
        raise DataError(
            "data",
            f"unsupported file type {''.join(path.suffixes) or '(no suffix)'!r}; "
            f"use one of {known} (CSV and JSON Lines may be .gz compressed)",
            source=str(path),
        )
    return kind, compressed


def _check_file(path: Path) -> None:
    if not path.exists():
        raise DataError("data", "file not found", source=str(path))
    if not path.is_file():
        raise DataError("data", "is not a file", source=str(path))
    format_of(path)


def file_schema(path: str | os.PathLike[str]) -> pa.Schema:
    """The Arrow schema of a file, read without reading its data.

    Parquet: the schema stored in the file. CSV and JSON Lines: the types
    Arrow infers from the first block of rows (16 MiB), as :func:`read_chunks`
    would read them.

    Raises:
        DataError: a missing, empty or unreadable file, or an unsupported suffix.

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "preds.csv"
        >>> _ = path.write_text("y,p,region\\n1,0.9,eu\\n")
        >>> file_schema(path).names, str(file_schema(path).field("p").type)
        (['y', 'p', 'region'], 'double')
    """
    path = Path(path)
    _check_file(path)
    kind, compressed = format_of(path)
    if path.stat().st_size == 0:
        raise DataError("data", "file is empty", source=str(path))
    if kind == "parquet":
        import pyarrow.parquet as pq

        try:
            return pq.ParquetFile(path).schema_arrow
        except (pa.ArrowInvalid, OSError) as error:
            raise DataError(
                "data", f"cannot read as Parquet ({first_line(error)})", source=str(path)
            ) from error
    with _text_reader(path, kind, compressed) as (reader, _):
        return reader.schema


def check_columns(available: Sequence[str], wanted: Sequence[str], source: str) -> None:
    """Raise unless every ``wanted`` column is ``available``; the message lists them all.

    Raises:
        DataError: the missing columns of ``source`` and the available ones.

    Example:
        >>> check_columns(["y", "p"], ["p"], "a.csv")
        >>> check_columns(["y", "p"], ["p", "q"], "a.csv")
        Traceback (most recent call last):
        ...
        xebench.errors.DataError: a.csv: columns: no column 'q'; available columns: y, p
    """
    missing = [c for c in wanted if c not in available]
    if missing:
        names = ", ".join(repr(c) for c in missing)
        raise DataError(
            "columns",
            f"no column{'s' if len(missing) > 1 else ''} {names}; "
            f"available columns: {', '.join(available)}",
            source=source,
        )


def _read_file(
    path: Path,
    columns: list[str],
    float_columns: set[str],
    category_columns: set[str],
    batch_rows: int,
) -> Iterator[Chunk]:
    kind, compressed = format_of(path)
    source, total = str(path), path.stat().st_size
    if total == 0:
        raise DataError("data", "file is empty", source=source)
    if kind == "parquet":
        batches = _parquet_batches(path, columns, category_columns, batch_rows)
    else:
        batches = _text_batches(path, kind, compressed, columns, float_columns, category_columns)
    first_row = 1
    try:
        for batch, bytes_done in batches:
            for offset in range(0, batch.num_rows, batch_rows):
                piece = pa.Table.from_batches([batch.slice(offset, batch_rows)])
                yield Chunk(piece, source, first_row, min(bytes_done, total), total)
                first_row += piece.num_rows
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError) as error:
        raise _read_error(error, path, kind, compressed, first_row) from error


def _parquet_batches(
    path: Path, columns: list[str], category_columns: set[str], batch_rows: int
) -> Iterator[tuple[pa.RecordBatch, int]]:
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path, read_dictionary=sorted(category_columns))
    except (pa.ArrowInvalid, OSError) as error:
        raise DataError(
            "data", f"cannot read as Parquet ({first_line(error)})", source=str(path)
        ) from error
    check_columns(parquet.schema_arrow.names, columns, str(path))
    total_rows = max(parquet.metadata.num_rows, 1)
    size, rows_done = path.stat().st_size, 0
    # One iterator per row group: a single iter_batches over the whole file keeps
    # decoded pages alive (memory grew ~17 bytes per row, 1.9 GB at 1e8 rows;
    # apache/arrow#39808), one per row group frees them at the group's end.
    for group in range(parquet.num_row_groups):
        batches = parquet.iter_batches(batch_size=batch_rows, row_groups=[group], columns=columns)
        for batch in batches:
            rows_done += batch.num_rows
            yield batch, size * rows_done // total_rows


def _text_batches(
    path: Path,
    kind: str,
    compressed: bool,
    columns: list[str],
    float_columns: set[str],
    category_columns: set[str],
) -> Iterator[tuple[pa.RecordBatch, int]]:
    """CSV / JSON Lines record batches, each with the (compressed) bytes read so far."""
    # A first reader only infers the schema (from the first block): the real one
    # then reads just the requested columns, and probability / weight columns as
    # floats even if that first block held only integers.
    with _text_reader(path, kind, compressed) as (reader, _):
        schema = reader.schema
    check_columns(schema.names, columns, str(path))
    types: dict[str, pa.DataType] = {
        name: pa.float64()
        for name in float_columns
        if name in schema.names and pa.types.is_integer(schema.field(name).type)
    }
    if kind == "csv":
        types |= {name: pa.dictionary(pa.int32(), pa.string()) for name in category_columns}
    with _text_reader(path, kind, compressed, columns, types) as (reader, raw):
        for batch in reader:
            if kind == "json":
                batch = batch.select(columns)
            # A gzip stream may close the file under it once it is exhausted.
            yield batch, (path.stat().st_size if raw.closed else raw.tell())


class _text_reader:
    """Context manager: an Arrow streaming reader over a CSV / JSON Lines file."""

    def __init__(
        self,
        path: Path,
        kind: str,
        compressed: bool,
        columns: list[str] | None = None,
        types: dict[str, pa.DataType] | None = None,
    ) -> None:
        self.path, self.kind, self.compressed = path, kind, compressed
        self.columns, self.types = columns, types or {}

    def __enter__(self) -> tuple[Any, Any]:
        import pyarrow.csv as pacsv
        import pyarrow.json as pajson

        self.raw = pa.OSFile(str(self.path))
        stream = pa.CompressedInputStream(self.raw, "gzip") if self.compressed else self.raw
        try:
            if self.kind == "json":
                parse = pajson.ParseOptions(
                    explicit_schema=pa.schema(self.types) if self.types else None,
                    unexpected_field_behavior="infer",
                )
                read = pajson.ReadOptions(block_size=_BLOCK_BYTES)
                reader = pajson.open_json(stream, read_options=read, parse_options=parse)
            else:
                tsv = ".tsv" in [s.lower() for s in self.path.suffixes]
                reader = pacsv.open_csv(
                    stream,
                    read_options=pacsv.ReadOptions(block_size=_BLOCK_BYTES),
                    parse_options=pacsv.ParseOptions(delimiter="\t" if tsv else ","),
                    convert_options=pacsv.ConvertOptions(
                        include_columns=self.columns, column_types=self.types
                    ),
                )
        except (pa.ArrowInvalid, OSError) as error:
            self.raw.close()
            if "Empty CSV file" in str(error) or "Empty JSON file" in str(error):
                raise DataError("data", "file is empty", source=str(self.path)) from error
            raise DataError(
                "data",
                f"cannot read as {self.kind.upper()} ({first_line(error)})",
                source=str(self.path),
            ) from error
        return reader, self.raw

    def __exit__(self, *_: object) -> None:
        self.raw.close()


def first_line(error: BaseException) -> str:
    """The first line of an error's message (Arrow's run on), or its type when it has none.

    Example:
        >>> first_line(ValueError("bad row\\nat offset 7")), first_line(OSError())
        ('bad row', 'OSError')
    """
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


_CSV_CONVERSION = re.compile(
    r"In CSV column #(\d+): .*CSV conversion error to (\w+): invalid value '(.*)'"
)


def _read_error(
    error: BaseException, path: Path, kind: str, compressed: bool, first_row: int
) -> DataError:
    """Arrow's reading error as a DataError naming the row where it can be found."""
    match = _CSV_CONVERSION.search(str(error))
    if kind == "csv" and match and not compressed:
        index, type_name, value = int(match[1]), match[2], match[3]
        column, row = _find_csv_value(path, index, value, first_row)
        return DataError(
            column or f"#{index}",
            "is not a number" if type_name in ("double", "float") else f"is not {type_name}",
            row=row,
            value=value,
            source=str(path),
            column=column,
        )
    return DataError(
        "data", f"cannot read as {kind.upper()} ({first_line(error)})", source=str(path)
    )


def _find_csv_value(
    path: Path, index: int, value: str, from_row: int
) -> tuple[str | None, int | None]:
    """(column name, 1-based data row) of the first ``value`` in column ``index``.

    Only called on the error path, so a plain streaming scan is fine.
    """
    delimiter = "\t" if ".tsv" in [s.lower() for s in path.suffixes] else ","
    with path.open(newline="", encoding="utf-8", errors="replace") as handle:
        rows = csv.reader(handle, delimiter=delimiter)
        header = next(rows, [])
        column = header[index] if index < len(header) else None
        for number, row in enumerate(rows, start=1):
            if number >= from_row and index < len(row) and row[index] == value:
                return column, number
    return column, None


# --- columns -> NumPy ---------------------------------------------------------------


def _combined(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    return array


def _first_null(array: pa.Array) -> int | None:
    if array.null_count == 0:
        return None
    return int(np.flatnonzero(array.is_null().to_numpy(zero_copy_only=False))[0])


def _raise_on_null(array: pa.Array, name: str, what: str, source: str, first_row: int) -> None:
    index = _first_null(array)
    if index is not None:
        # Readers turn NaN into null (pyarrow's CSV parser, pandas' NaN): in a column
        # of numbers the missing value is shown as the nan a NumPy user would see.
        numeric = pa.types.is_floating(array.type) or pa.types.is_integer(array.type)
        value = math.nan if numeric else None
        raise DataError(
            name, f"{what} is missing (empty, null or NaN)", row=first_row + index,
            value=value, source=source, column=name,
        )  # fmt: skip


def probability_array(
    column: pa.ChunkedArray | pa.Array,
    *,
    name: str,
    source: str,
    first_row: int,
    n_classes: int | None = None,
) -> NDArray[np.float64]:
    """A probability column as float64: 1-D for floats, 2-D ``(n, k)`` for lists.

    Lists may be Arrow lists (Parquet, JSON Lines, DataFrames) or JSON array
    strings (CSV). Range and sum checks are left to the kernel; this checks
    types, missing values and vector lengths.

    Example:
        >>> import pyarrow as pa
        >>> probability_array(pa.array([0.25, 0.5]), name="p", source="t", first_row=1)
        array([0.25, 0.5 ])
        >>> probability_array(pa.array(["[0.2, 0.8]", "[1, 0]"]), name="m", source="t", first_row=1)
        array([[0.2, 0.8],
               [1. , 0. ]])
        >>> probability_array(pa.array([0.2, None]), name="p", source="f.csv", first_row=10)
        ... # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        xebench.errors.DataError: f.csv: column 'p': probability is missing ...; row 11 is nan
    """
    array = _combined(column)
    where = {"source": source, "column": name}
    _raise_on_null(array, name, "probability", source, first_row)
    kind = array.type
    if pa.types.is_floating(kind) or pa.types.is_integer(kind) or pa.types.is_boolean(kind):
        if n_classes is not None and n_classes != 2:
            raise DataError(
                name, f"holds one probability per row, but there are {n_classes} classes "
                "(multiclass probabilities are lists, one entry per class)", **where,
            )  # fmt: skip
        return np.asarray(array.cast(pa.float64()).to_numpy(zero_copy_only=False), np.float64)
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return _probabilities_from_text(array, name, source, first_row, n_classes)
    if pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind):
        return _probability_matrix(array, name, source, first_row, n_classes)
    raise DataError(
        name, f"must hold numbers or lists of numbers, not {kind}", **where,
    )  # fmt: skip


def _probability_matrix(
    array: pa.Array, name: str, source: str, first_row: int, n_classes: int | None
) -> NDArray[np.float64]:
    if pa.types.is_fixed_size_list(array.type):
        array = array.cast(pa.list_(array.type.value_type))
    lengths = pc.list_value_length(array).to_numpy(zero_copy_only=False)
    expected = n_classes if n_classes is not None else int(lengths[0])
    wrong = np.flatnonzero(lengths != expected)
    if wrong.size:
        row = int(wrong[0])
        raise DataError(
            name, f"has {int(lengths[row])} probabilities where {expected} are expected "
            "(one per class)", row=first_row + row, value=array[row].as_py(),
            source=source, column=name,
        )  # fmt: skip
    values = pc.list_flatten(array)
    index = _first_null(values)
    if index is not None:
        row = index // max(expected, 1)
        raise DataError(
            name, "has a missing probability in its list", row=first_row + row,
            value=array[row].as_py(), source=source, column=name,
        )  # fmt: skip
    if not (pa.types.is_floating(values.type) or pa.types.is_integer(values.type)):
        raise DataError(
            name, f"lists must hold numbers, not {values.type}", source=source, column=name
        )
    flat = np.asarray(values.cast(pa.float64()).to_numpy(zero_copy_only=False), np.float64)
    return flat.reshape(len(array), expected)


def _probabilities_from_text(
    array: pa.Array, name: str, source: str, first_row: int, n_classes: int | None
) -> NDArray[np.float64]:
    """Strings: numbers (a CSV column Arrow could not type) or JSON arrays."""
    trimmed = pc.utf8_trim_whitespace(array)
    is_list = pc.starts_with(trimmed, "[").to_numpy(zero_copy_only=False)
    if not is_list.any():
        try:
            return np.asarray(trimmed.cast(pa.float64()).to_numpy(zero_copy_only=False))
        except pa.ArrowInvalid:
            row = _first_unparsable(trimmed.to_pylist(), _parse_float)
            raise DataError(
                name, "is not a number", row=first_row + row,
                value=array[row].as_py(), source=source, column=name,
            ) from None  # fmt: skip
    if not is_list.all():
        row = int(np.flatnonzero(~is_list)[0])
        raise DataError(
            name, "mixes numbers and lists; multiclass rows must all be JSON arrays",
            row=first_row + row, value=array[row].as_py(), source=source, column=name,
        )  # fmt: skip
    inner = pc.replace_substring_regex(trimmed, r"^\[|\]$", "")
    parts = pc.split_pattern(inner, ",")
    try:
        numbers = pc.list_flatten(parts)
        numbers = pc.utf8_trim_whitespace(numbers).cast(pa.float64())
        lists = pa.ListArray.from_arrays(parts.offsets, numbers)
    except pa.ArrowInvalid:
        row = _first_unparsable(array.to_pylist(), _parse_vector)
        raise DataError(
            name, "is not a JSON array of numbers", row=first_row + row,
            value=array[row].as_py(), source=source, column=name,
        ) from None  # fmt: skip
    return _probability_matrix(lists, name, source, first_row, n_classes)


def _parse_float(text: str) -> None:
    float(text)


def _parse_vector(text: str) -> None:
    import json

    values = json.loads(text)
    if not isinstance(values, list) or not all(isinstance(v, (int, float)) for v in values):
        raise InvalidInputError("probabilities", "must be a JSON array of numbers", value=text)


def _first_unparsable(values: list[Any], parse: Any) -> int:
    for index, value in enumerate(values):
        try:
            parse(value)
        except (ValueError, TypeError):
            return index
    return 0


def label_array(
    column: pa.ChunkedArray | pa.Array, *, name: str, source: str, first_row: int
) -> NDArray[Any]:
    """Labels as NumPy: integers (also integral floats) as int64, others as objects.

    Example:
        >>> import pyarrow as pa
        >>> label_array(pa.array([1.0, 0.0]), name="y", source="t", first_row=1)
        array([1, 0])
        >>> label_array(pa.array(["cat", "dog"]), name="y", source="t", first_row=1)
        array(['cat', 'dog'], dtype=object)
    """
    array = _combined(column)
    _raise_on_null(array, name, "label", source, first_row)
    kind = array.type
    if pa.types.is_integer(kind):
        return np.asarray(array.cast(pa.int64()).to_numpy(zero_copy_only=False))
    if pa.types.is_boolean(kind):
        return np.asarray(array.to_numpy(zero_copy_only=False), dtype=np.int64)
    if pa.types.is_floating(kind):
        values = array.to_numpy(zero_copy_only=False)
        fractional = np.flatnonzero(~np.isfinite(values) | (values != np.round(values)))
        if fractional.size:
            row = int(fractional[0])
            raise DataError(
                name, "labels must be class labels, not fractions", row=first_row + row,
                value=float(values[row]), source=source, column=name,
            )  # fmt: skip
        return values.astype(np.int64)
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return np.asarray(array.to_numpy(zero_copy_only=False), dtype=object)
    raise DataError(
        name, f"labels must be integers, booleans or strings, not {kind}", source=source,
        column=name,
    )  # fmt: skip


def weight_array(
    column: pa.ChunkedArray | pa.Array, *, name: str, source: str, first_row: int
) -> NDArray[np.float64]:
    """Row weights as float64 (signs and finiteness are checked by the kernel).

    Example:
        >>> import pyarrow as pa
        >>> weight_array(pa.array([1, 2]), name="w", source="t", first_row=1)
        array([1., 2.])
    """
    array = _combined(column)
    _raise_on_null(array, name, "weight", source, first_row)
    if not (pa.types.is_floating(array.type) or pa.types.is_integer(array.type)):
        raise DataError(
            name, f"weights must be numbers, not {array.type}", source=source, column=name
        )
    return np.asarray(array.cast(pa.float64()).to_numpy(zero_copy_only=False), np.float64)


def cohort_codes(
    column: pa.ChunkedArray | pa.Array, missing: str
) -> tuple[NDArray[np.int64], list[str]]:
    """Cohort column -> (code per row, value per code), values as strings.

    Missing values (:func:`~xebench._validation.is_missing`: null, NaN, "")
    become ``missing``. Dictionary-encoded columns are used as
    they are; others are encoded here, so no Python object is made per row.
    A value may appear under two codes (e.g. a chunk spanning two Parquet
    dictionaries); callers key on the value.

    Example:
        >>> import pyarrow as pa
        >>> cohort_codes(pa.array(["eu", None, "us", "eu", ""]), "(missing)")
        (array([0, 3, 1, 0, 2]), ['eu', 'us', '(missing)', '(missing)'])
    """
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if not pa.types.is_dictionary(array.type):
        array = array.dictionary_encode()
    dictionary = array.dictionary
    if not (pa.types.is_string(dictionary.type) or pa.types.is_large_string(dictionary.type)):
        dictionary = dictionary.cast(pa.string())
    values = [missing if is_missing(v) else str(v) for v in dictionary.to_pylist()]
    indices = array.indices
    if indices.null_count:
        indices = pc.fill_null(indices, len(values))
        values.append(missing)
    return np.asarray(indices.to_numpy(zero_copy_only=False), dtype=np.int64), values
