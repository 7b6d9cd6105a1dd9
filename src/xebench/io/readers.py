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

This module gathers the readers' public names from the modules that define
them, one job each: :mod:`~xebench.io.formats` (suffixes, file and column
checks, schemas, Arrow's text reader and its located errors),
:mod:`~xebench.io.chunks` (chunks of files and in-memory tables, read ahead
on a thread) and :mod:`~xebench.io.columns` (columns to NumPy).

Example:
    >>> import pyarrow as pa
    >>> chunk = next(read_chunks(pa.table({"y": [1, 0], "p": [0.9, 0.2]}), ["y", "p"]))
    >>> label_array(chunk.table["y"], name="y", source=chunk.source, first_row=chunk.first_row)
    array([1, 0])
"""

from __future__ import annotations

from .chunks import DEFAULT_BATCH_ROWS, Chunk, as_arrow, chunks_of, prefetch, read_chunks
from .columns import cohort_codes, label_array, probability_array, weight_array
from .formats import (
    READ_ERRORS,
    SUPPORTED_SUFFIXES,
    TextReader,
    check_columns,
    check_file,
    file_schema,
    first_line,
    format_of,
    read_error,
)

__all__ = [
    "DEFAULT_BATCH_ROWS",
    "READ_ERRORS",
    "SUPPORTED_SUFFIXES",
    "Chunk",
    "TextReader",
    "as_arrow",
    "check_columns",
    "check_file",
    "chunks_of",
    "cohort_codes",
    "file_schema",
    "first_line",
    "format_of",
    "label_array",
    "prefetch",
    "probability_array",
    "read_chunks",
    "read_error",
    "weight_array",
]
