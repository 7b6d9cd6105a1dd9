"""Drift references from data: counts of a file's columns in a model's monitoring bins.

A drift reference is what a window of a model is compared with. Besides its
own events (the previous window, a version, a time range), it can be data the
user supplies: a file on the server's disk configured per model
(``reference: file:PATH``) or a file uploaded with ``PUT /v1/references/{model}``.
Either way, each column named like a monitored feature is counted in that
feature's fixed bins (:class:`~xebench.store.buckets.FeatureBins`), exactly as the
fold counts the ``features`` of prediction events, and only those counts are
kept: the file's other columns, which may hold personal data, are never stored.

Example:
    >>> import pyarrow as pa
    >>> from xebench.store.buckets import FeatureBins
    >>> bins = {"amount": FeatureBins("amount", "numeric", edges=(10.0, 100.0)),
    ...         "plan": FeatureBins("plan", "categorical", categories=("free", "pro"))}
    >>> ref = count_tables([pa.table({"amount": [5.0, 50.0, None], "plan": ["pro", "x", None],
    ...                               "email": ["a@b", "c@d", "e@f"]})], bins)
    >>> ref.rows, ref.counts["amount"].tolist(), ref.counts["plan"].tolist(), ref.ignored
    (3, [1.0, 1.0, 0.0, 1.0], [0.0, 1.0, 1.0, 1.0], ['email'])
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

from .._validation import is_missing
from ..errors import DataError
from ..ingest.events import NDJSON_TYPES
from ..store.buckets import FeatureBins

__all__ = ["UPLOAD_TYPES", "ReferenceCounts", "count_file", "count_tables", "read_upload"]

#: Media types accepted by ``PUT /v1/references/{model}``, and the format each means.
UPLOAD_TYPES: Mapping[str, str] = {
    "text/csv": "csv",
    "text/tab-separated-values": "tsv",
    **dict.fromkeys(NDJSON_TYPES, "jsonl"),
    "application/vnd.apache.parquet": "parquet",
    "application/x-parquet": "parquet",
}


@dataclass
class ReferenceCounts:
    """A reference's counts per monitored feature, in that feature's bins.

    Attributes:
        counts: feature -> counts (one per bin of its :class:`FeatureBins`).
        rows: rows of the data.
        ignored: columns that are not monitored features (not kept).
    """

    counts: dict[str, NDArray[np.float64]] = field(default_factory=dict)
    rows: int = 0
    ignored: list[str] = field(default_factory=list)


def feature_texts(column: pa.Array | pa.ChunkedArray) -> NDArray[Any]:
    """Values as text, the way the fold reads a JSON feature for categorical bins.

    JSON booleans read as ``true`` / ``false`` and numbers as their JSON text;
    a null (or NaN, which JSON cannot carry) is missing (None), and so is an
    empty text: a CSV file cannot tell the two apart.

    Example:
        >>> feature_texts(pa.array([True, None])).tolist(), feature_texts(pa.array([3, 2])).tolist()
        (['true', None], ['3', '2'])
        >>> feature_texts(pa.array(["pro", ""])).tolist()
        ['pro', None]
        >>> feature_texts(pa.array([0.5, float("nan")])).tolist()
        ['0.5', None]
    """
    kind = column.type
    values = column.to_pylist()
    if pa.types.is_boolean(kind):
        texts = [None if v is None else ("true" if v else "false") for v in values]
    elif pa.types.is_floating(kind):
        texts = [None if v is None or not math.isfinite(v) else json.dumps(v) for v in values]
    else:
        texts = [None if is_missing(v) else str(v) for v in values]
    return np.array(texts, dtype=object)


def _feature_numbers(column: pa.Array | pa.ChunkedArray) -> NDArray[np.float64]:
    """Values as numbers for numeric bins: only numeric columns have any (as in JSON, a
    text or a boolean is not a number and counts as missing)."""
    kind = column.type
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        values = pc.cast(column, pa.float64(), safe=False)
        return np.asarray(values.to_numpy(zero_copy_only=False), dtype=np.float64)
    return np.full(len(column), np.nan)


def count_tables(tables: Iterable[pa.Table], bins: Mapping[str, FeatureBins]) -> ReferenceCounts:
    """Counts of the monitored features of ``tables`` (chunks of one data set) in ``bins``.

    Example:
        >>> b = {"x": FeatureBins("x", "numeric", edges=(0.0,))}
        >>> count_tables([pa.table({"x": [-1, 1]}), pa.table({"x": [2.5]})], b).counts["x"]
        array([1., 2., 0.])
    """
    out = ReferenceCounts()
    ignored: dict[str, None] = {}
    for table in tables:
        out.rows += table.num_rows
        for name in table.column_names:
            spec = bins.get(name)
            if spec is None:
                ignored[name] = None
                continue
            column = table[name]
            values = _feature_numbers(column) if spec.kind == "numeric" else feature_texts(column)
            counts = np.bincount(spec.index(values), minlength=spec.n_bins).astype(np.float64)
            out.counts[name] = out.counts[name] + counts if name in out.counts else counts
    out.ignored = list(ignored)
    return out


def count_file(path: str | Path, bins: Mapping[str, FeatureBins]) -> ReferenceCounts:
    """:func:`count_tables` of a CSV, Parquet or JSON Lines file, read in chunks; only the
    columns that are monitored features are read.

    Raises:
        DataError: a missing, empty or unreadable file.

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "ref.csv"
        >>> _ = path.write_text("x,other\\n-1,a\\n1,b\\n")
        >>> ref = count_file(path, {"x": FeatureBins("x", "numeric", edges=(0.0,))})
        >>> ref.rows, ref.counts["x"].tolist(), ref.ignored
        (2, [1.0, 1.0, 0.0], ['other'])
    """
    from ..io.readers import file_schema, read_chunks

    path = Path(path)
    names = file_schema(path).names
    wanted = [name for name in names if name in bins]
    ignored = [name for name in names if name not in bins]
    if not wanted:
        # Count the rows of one column: a file without monitored features still has a size.
        rows = sum(chunk.table.num_rows for chunk in read_chunks([path], names[:1]))
        return ReferenceCounts(rows=rows, ignored=ignored)
    out = count_tables((chunk.table for chunk in read_chunks([path], wanted)), bins)
    out.ignored = ignored
    return out


def read_upload(body: bytes, media_type: str) -> pa.Table:
    """The table of an uploaded reference: CSV, TSV, JSON Lines or Parquet (``UPLOAD_TYPES``).

    Raises:
        DataError: the body cannot be read in that format, or holds no rows.

    Example:
        >>> read_upload(b"x,plan\\n1.5,pro\\n", "text/csv").to_pylist()
        [{'x': 1.5, 'plan': 'pro'}]
    """
    import pyarrow.csv
    import pyarrow.json
    import pyarrow.parquet as pq

    from ..io.readers import READ_ERRORS, first_line

    kind = UPLOAD_TYPES[media_type]
    readers = {
        "csv": lambda data: pyarrow.csv.read_csv(data),
        "tsv": lambda data: pyarrow.csv.read_csv(
            data, parse_options=pyarrow.csv.ParseOptions(delimiter="\t")
        ),
        "jsonl": lambda data: pyarrow.json.read_json(data),
        "parquet": lambda data: pq.read_table(data),
    }
    try:
        table = readers[kind](io.BytesIO(body))
    except READ_ERRORS as error:
        raise DataError("body", f"cannot read as {kind} ({first_line(error)})") from error
    if not table.num_rows:
        raise DataError("body", f"the {kind} reference holds no rows")
    return table
