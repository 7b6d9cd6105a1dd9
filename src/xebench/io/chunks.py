"""Reading in bounded chunks: data files one after the other, and in-memory tables.

:func:`read_chunks` yields :class:`Chunk` s: Arrow tables of at most
``batch_rows`` rows with where they came from (the source and the 1-based
data row of their first row), so memory does not grow with the input and
every error can be located. Files are read by their format
(:mod:`xebench.io.formats`); pandas and polars DataFrames and pyarrow
Tables and RecordBatches are sliced (:func:`as_arrow`). :func:`prefetch`
reads the next chunk on a thread while the caller computes on this one.

Example:
    >>> import pyarrow as pa
    >>> table = pa.table({"y": [0, 1, 1], "p": [0.2, 0.9, 0.6]})
    >>> [c.table.num_rows for c in prefetch(read_chunks(table, ["p"], batch_rows=2))]
    [2, 1]
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from ..errors import DataError, InvalidInputError
from .formats import (
    READ_ERRORS,
    TextReader,
    check_columns,
    check_file,
    first_line,
    format_of,
    read_error,
)

__all__ = ["DEFAULT_BATCH_ROWS", "Chunk", "as_arrow", "chunks_of", "prefetch", "read_chunks"]


#: Rows per chunk. Per-row float64 arrays of 512 KB stay in the L2 cache and
#: below malloc's mmap threshold: measured 1.4x faster end to end than 262,144.
DEFAULT_BATCH_ROWS = 65_536


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
            check_file(Path(path))
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
    yield from chunks_of(batches, path, kind, compressed, batch_rows)


def chunks_of(
    batches: Iterable[tuple[pa.RecordBatch, int]],
    path: Path,
    kind: str,
    compressed: bool,
    batch_rows: int,
) -> Iterator[Chunk]:
    """Chunks of at most ``batch_rows`` rows from (batch, bytes read so far) pairs of a file.

    Rows are numbered from 1 across chunks; an Arrow reading error raised while
    ``batches`` is iterated becomes a :class:`DataError` naming the file and
    the row where the failing chunk starts (see :func:`read_error`).

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "x.csv"
        >>> _ = path.write_text("x\\n1\\n2\\n3\\n")
        >>> batch = pa.record_batch({"x": [1, 2, 3]})
        >>> chunks = chunks_of([(batch, 8)], path, "csv", False, 2)
        >>> [(chunk.first_row, chunk.table.num_rows) for chunk in chunks]
        [(1, 2), (3, 1)]
    """
    source, total = str(path), path.stat().st_size
    first_row = 1
    try:
        for batch, bytes_done in batches:
            for offset in range(0, batch.num_rows, batch_rows):
                piece = pa.Table.from_batches([batch.slice(offset, batch_rows)])
                yield Chunk(piece, source, first_row, min(bytes_done, total), total)
                first_row += piece.num_rows
    except READ_ERRORS as error:
        raise read_error(error, path, kind, compressed, first_row) from error


#: Bytes Parquet column chunks are read in (see _parquet_batches).
_PARQUET_BUFFER = 1 << 20


def _parquet_batches(
    path: Path, columns: list[str], category_columns: set[str], batch_rows: int
) -> Iterator[tuple[pa.RecordBatch, int]]:
    import pyarrow.parquet as pq

    try:
        # A buffered stream, not each column chunk read whole: a row group of 3e7
        # token log-probs peaked at 385 MB read whole, 264 MB streamed (1 MB
        # buffers), as fast; memory then follows batch_rows, not how the file
        # was written (pandas writes row groups of 1M rows).
        parquet = pq.ParquetFile(
            path,
            read_dictionary=sorted(category_columns),
            buffer_size=_PARQUET_BUFFER,
            pre_buffer=False,
        )
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
    with TextReader(path, kind, compressed) as (reader, _):
        schema = reader.schema
    check_columns(schema.names, columns, str(path))
    types: dict[str, pa.DataType] = {
        name: pa.float64()
        for name in float_columns
        if name in schema.names and pa.types.is_integer(schema.field(name).type)
    }
    if kind == "csv":
        types |= {name: pa.dictionary(pa.int32(), pa.string()) for name in category_columns}
    with TextReader(path, kind, compressed, columns, types) as (reader, raw):
        for batch in reader:
            if kind == "json":
                batch = batch.select(columns)
            # A gzip stream may close the file under it once it is exhausted.
            yield batch, (path.stat().st_size if raw.closed else raw.tell())
