"""Reading the files of ``xebench ingest``: checked paths, column names, chunks, row counts.

Example:
    >>> import pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "labels.csv"
    >>> _ = path.write_text("request_id,label\\nr1,1\\nr2,0\\n")
    >>> column_names(path), estimate_rows(path)
    (['request_id', 'label'], 2)
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import pyarrow as pa

from ..errors import DataError
from ..io.readers import (
    Chunk,
    TextReader,
    check_columns,
    check_file,
    chunks_of,
    file_schema,
    format_of,
    read_chunks,
)

__all__ = ["PathsLike", "chunks", "column_names", "estimate_rows", "input_files"]

#: One path or several.
PathsLike = str | os.PathLike[str] | Sequence[str | os.PathLike[str]]


def input_files(paths: PathsLike) -> list[Path]:
    """The input files as paths, each checked to exist and to have a known suffix.

    One path or several; every file is checked before anything is stored (or
    a database is created, or a server called).

    Example:
        >>> import pathlib, tempfile
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (folder / "a.csv").write_text("request_id,label\\nr1,1\\n")
        >>> [p.name for p in input_files(folder / "a.csv")]
        ['a.csv']
        >>> input_files([folder / "a.csv", folder / "b.csv"])  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        xebench.errors.DataError: .../b.csv: data: file not found
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    result = [Path(p) for p in paths]
    if not result:
        raise DataError("data", "no input files were given")
    for path in result:  # every file is checked before anything is stored
        check_file(path)
    return result


def column_names(path: Path) -> list[str]:
    """The columns of a data file (:func:`xebench.io.readers.file_schema`).

    Example:
        >>> import pathlib, tempfile
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "p.jsonl"
        >>> _ = path.write_text('{"request_id": "r1", "probabilities": 0.5}\\n')
        >>> column_names(path)
        ['request_id', 'probabilities']
    """
    return list(file_schema(path).names)


def chunks(
    path: Path, columns: list[str], text_columns: list[str], prob: str | None, batch_rows: int
) -> Iterator[Chunk]:
    """A file's ``columns`` in chunks of ``batch_rows`` rows, as ``xebench ingest`` reads them.

    ``text_columns`` stay text (CSV: ids, names and cohorts, so "007" stays
    "007"); ``prob`` is read as floats. JSON Lines keep date-like strings as text.

    Example:
        >>> import pathlib, tempfile
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "p.csv"
        >>> _ = path.write_text("request_id,p\\n007,1\\n008,0.5\\n")
        >>> [c.table.to_pydict() for c in chunks(path, ["request_id", "p"], ["request_id"],
        ...                                        "p", batch_rows=1)]
        [{'request_id': ['007'], 'p': [1.0]}, {'request_id': ['008'], 'p': [0.5]}]
    """
    kind, compressed = format_of(path)
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
    with TextReader(path, "json", compressed) as (reader, _):
        schema = reader.schema
    check_columns(schema.names, columns, source)
    types: dict[str, pa.DataType] = {}
    for name in columns:
        kind = schema.field(name).type
        if pa.types.is_timestamp(kind) or pa.types.is_date(kind) or pa.types.is_time(kind):
            types[name] = pa.string()
        elif name in floats and pa.types.is_integer(kind):
            types[name] = pa.float64()

    def batches() -> Iterator[tuple[pa.RecordBatch, int]]:
        with TextReader(path, "json", compressed, columns, types) as (reader, raw):
            for batch in reader:
                yield batch.select(columns), total if raw.closed else raw.tell()

    yield from chunks_of(batches(), path, "json", compressed, batch_rows)


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
        kind, compressed = format_of(path)
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
