"""The file formats xebench reads: suffixes, file and column checks, schemas, errors.

A file's format comes from its suffix (:data:`SUPPORTED_SUFFIXES`): CSV
(``.csv``, ``.tsv``), Parquet (``.parquet``, ``.pq``) and JSON Lines
(``.jsonl``, ``.ndjson``), CSV and JSON Lines optionally ``.gz``
compressed. :class:`TextReader` opens a CSV or JSON Lines file as Arrow's
streaming reader, and :func:`read_error` turns what Arrow raises while
reading into a :class:`~xebench.errors.DataError` naming the column, the
1-based data row and the value where it can find them.

Example:
    >>> format_of(Path("day1.csv.gz"))
    ('csv', True)
    >>> check_columns(["y", "p"], ["p", "q"], "day1.csv.gz")
    Traceback (most recent call last):
    ...
    xebench.errors.DataError: day1.csv.gz: columns: no column 'q'; available columns: y, p
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa

from ..errors import DataError

__all__ = [
    "READ_ERRORS",
    "SUPPORTED_SUFFIXES",
    "TextReader",
    "check_columns",
    "check_file",
    "file_schema",
    "first_line",
    "format_of",
    "read_error",
]


#: What Arrow raises on a file (or body) it cannot read: a malformed value, a
#: type it cannot convert, a truncated or unreadable file.
READ_ERRORS: tuple[type[Exception], ...] = (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError)

#: File suffix -> format. ``.gz`` may follow any of them except Parquet.
SUPPORTED_SUFFIXES: dict[str, str] = {
    ".csv": "csv",
    ".tsv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "json",
    ".ndjson": "json",
}
#: Bytes per CSV / JSON block read by Arrow (rows are then sliced to ``batch_rows``).
_BLOCK_BYTES = 16 * 1024 * 1024


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


def check_file(path: Path) -> None:
    """Raise unless ``path`` is an existing file of a supported format (:func:`format_of`).

    Called on every input before any is read, so that a missing second file
    fails at once, not after a long first one.

    Raises:
        DataError: the file is missing, is not a file, or has an unsupported suffix.

    Example:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> _ = (folder / "a.csv").write_text("y\\n1\\n")
        >>> check_file(folder / "a.csv")
        >>> check_file(folder / "b.csv")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        xebench.errors.DataError: .../b.csv: data: file not found
        >>> check_file(folder)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        xebench.errors.DataError: ...: data: is not a file
    """
    if not path.exists():
        raise DataError("data", "file not found", source=str(path))
    if not path.is_file():
        raise DataError("data", "is not a file", source=str(path))
    format_of(path)


def file_schema(path: str | os.PathLike[str]) -> pa.Schema:
    """The Arrow schema of a file, read without reading its data.

    Parquet: the schema stored in the file. CSV and JSON Lines: the types
    Arrow infers from the first block of rows (16 MiB), as
    :func:`~xebench.io.chunks.read_chunks` would read them.

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
    check_file(path)
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
    with TextReader(path, kind, compressed) as (reader, _):
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


class TextReader:
    """Context manager: an Arrow streaming reader over a CSV / JSON Lines file.

    ``kind`` and ``compressed`` are what :func:`format_of` says of ``path``
    (``.tsv`` is read tab-separated). ``columns`` limits a CSV to those
    columns; ``types`` fixes column types instead of letting Arrow infer them
    from the first block (for JSON Lines, as its explicit schema). Entering
    gives ``(reader, raw)``: the streaming reader and the open file under it,
    whose ``tell()`` is the (compressed) bytes read so far; leaving closes it.

    Raises:
        DataError: on entering, an empty file or one Arrow cannot open as ``kind``.

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "preds.tsv"
        >>> _ = path.write_text("y\\tp\\n1\\t1\\n0\\t0.25\\n")
        >>> with TextReader(path, "csv", False, ["p"], {"p": pa.float64()}) as (reader, raw):
        ...     reader.read_all().to_pydict()
        {'p': [1.0, 0.25]}
        >>> raw.closed
        True
    """

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


def read_error(
    error: BaseException, path: Path, kind: str, compressed: bool, first_row: int
) -> DataError:
    """Arrow's reading error as a DataError naming the row where it can be found.

    ``error`` was raised while reading ``path`` (of format ``kind``,
    ``compressed`` or not) in the chunk starting at 1-based data row
    ``first_row``. A CSV value that does not convert to its column's type is
    looked up in the file (uncompressed CSV only) to name its column, row and
    value; any other error keeps Arrow's first line.

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "preds.csv"
        >>> _ = path.write_text("y,p\\n1,0.9\\n0,oops\\n")
        >>> arrow = "In CSV column #1: CSV conversion error to double: invalid value 'oops'"
        >>> error = read_error(pa.ArrowInvalid(arrow), path, "csv", False, 1)
        >>> error.column, error.rule, error.row, error.value
        ('p', 'is not a number', 2, 'oops')
        >>> error = read_error(OSError("disk gone\\nat 7"), path, "json", False, 1)
        >>> error.column, error.rule
        (None, 'cannot read as JSON (disk gone)')
    """
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
