"""What :class:`xebench.Client` sends: Python values as event JSON, drift reference bodies.

Whether the server would accept an event is decided by
:func:`xebench.ingest.events.check_event`, the server's own rules, so that a
caller's mistake raises at once instead of failing, later and in the
background, a whole batch of otherwise good events. Here only the shaping
into JSON: NumPy values as Python ones, datetimes as RFC 3339 text.

Example:
    >>> import numpy as np
    >>> json_value("probabilities", np.array([0.25, 0.75])), request_id_value(7)
    ([0.25, 0.75], '7')
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..errors import DataError, InvalidInputError
from ..ingest.events import label_text

__all__ = [
    "json_default",
    "json_value",
    "reference_body",
    "request_id_value",
    "timestamp_value",
]


def _plain(value: Any) -> Any:
    """NumPy scalars and arrays as Python values (they are common, and not JSON-serialisable)."""
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        return value.tolist()
    return value


def json_value(argument: str, value: Any, *, labels: bool = False) -> Any:
    """``value`` as the JSON an event carries, for
    :func:`~xebench.ingest.events.check_event` to judge.

    NumPy values become Python ones, tuples lists, mappings dicts whose keys
    are text (a label key as the server stores it: ``True`` -> ``"1"``). With
    ``labels``, an integral float is the integer class (``1.0`` from a pandas
    column means the class ``1``). What JSON cannot carry at all is refused.

    Example:
        >>> json_value("probabilities", {True: 0.25, 0: 0.75})
        {'1': 0.25, '0': 0.75}
        >>> json_value("classes", (1.0, "b"), labels=True)
        [1, 'b']
        >>> json_value("classes", {"a", "b"}, labels=True)
        Traceback (most recent call last):
        ...
        xebench.errors.InvalidInputError: classes: a set cannot be sent as JSON
    """
    value = _plain(value)
    if labels and isinstance(value, float) and value.is_integer():
        return int(value)
    if value is None or isinstance(value, (str, int, float)):
        return value
    if isinstance(value, (list, tuple)):
        return [json_value(argument, item, labels=labels) for item in value]
    if isinstance(value, Mapping):
        return {_json_key(argument, key): json_value(argument, item) for key, item in value.items()}
    raise InvalidInputError(argument, f"a {type(value).__name__} cannot be sent as JSON")


def _json_key(argument: str, key: Any) -> str:
    key = json_value(argument, key, labels=True)
    if isinstance(key, (str, int)):
        return label_text(key)
    raise InvalidInputError(argument, "keys must be strings, integers or booleans", value=key)


def request_id_value(value: Any) -> Any:
    """An integer request id goes as its decimal text; the server wants a string.

    Example:
        >>> request_id_value(42), request_id_value("r-1")
        ('42', 'r-1')
    """
    value = json_value("request_id", value)
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


def timestamp_value(value: Any) -> Any:
    """A datetime as RFC 3339 text, refused without a timezone; now (UTC) when None.

    Text goes as it is: :func:`~xebench.ingest.events.check_event` applies the server's rule to it.

    Example:
        >>> timestamp_value(datetime(2026, 1, 1, tzinfo=UTC))
        '2026-01-01T00:00:00+00:00'
        >>> timestamp_value(datetime(2026, 1, 1))
        Traceback (most recent call last):
        ...
        xebench.errors.InvalidInputError: timestamp: has no timezone: pass an aware datetime
        (e.g. datetime.now(UTC)) or add the offset; got '2026-01-01T00:00:00'
    """
    value = _plain(value)  # numpy.datetime64 -> datetime
    if value is None:
        return datetime.now(UTC).isoformat()
    if not isinstance(value, datetime):
        return json_value("timestamp", value)
    if value.utcoffset() is None:
        raise InvalidInputError(
            "timestamp",
            "has no timezone: pass an aware datetime (e.g. datetime.now(UTC)) or add the offset",
            value=value.isoformat(),
        )
    return value.isoformat()


def json_default(value: Any) -> Any:
    """The ``default`` of ``json.dumps`` for events built by hand (``send_*``).

    They may hold datetimes or NumPy values.

    Example:
        >>> import json, numpy as np
        >>> json.dumps({"p": np.float32(0.5), "at": datetime(2026, 1, 1, tzinfo=UTC)},
        ...            default=json_default)
        '{"p": 0.5, "at": "2026-01-01T00:00:00+00:00"}'
    """
    if isinstance(value, datetime):
        return timestamp_value(value)
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


#: The media type of a reference file, by the format its suffix names (xebench.io.readers).
_REFERENCE_TYPES = {
    "csv": "text/csv",
    "tsv": "text/tab-separated-values",
    "parquet": "application/vnd.apache.parquet",
    "json": "application/x-ndjson",
}


def reference_body(data: Any, name: str | None) -> tuple[bytes, dict[str, str]]:
    """The body and headers of a drift reference upload: a file as it is, a table as Parquet.

    ``name`` (default: the file's name, or the table's size) is sent as ``X-Reference-Name``.

    Example:
        >>> import pathlib, tempfile
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "ref.csv"
        >>> _ = path.write_text("amount\\n3.5\\n")
        >>> reference_body(path, None)
        (b'amount\\n3.5\\n', {'Content-Type': 'text/csv', 'X-Reference-Name': 'ref.csv'})
        >>> reference_body({"amount": [3.5]}, "day 1")[1]["X-Reference-Name"]
        'day 1'
    """
    if isinstance(data, str | os.PathLike):
        from ..io.readers import SUPPORTED_SUFFIXES, format_of

        path = Path(data)
        try:
            kind, compressed = format_of(path)
        except DataError:
            suffixes = ", ".join(sorted(SUPPORTED_SUFFIXES))
            raise InvalidInputError(
                "data", f"must be a {suffixes} file (CSV, JSON Lines: .gz too)", value=str(path)
            ) from None
        if ".tsv" in (s.lower() for s in path.suffixes):
            kind = "tsv"
        try:
            body = path.read_bytes()
        except OSError as error:
            raise InvalidInputError("data", f"cannot read {path}: {error.strerror}") from None
        headers = {"Content-Type": _REFERENCE_TYPES[kind], "X-Reference-Name": name or path.name}
        if compressed:
            headers["Content-Encoding"] = "gzip"
        return body, headers
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pa.table(data)
    except (TypeError, ValueError, pa.ArrowException) as error:
        raise InvalidInputError(
            "data", f"must be a file path or a table ({type(error).__name__}: {error})"
        ) from None
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd")
    headers = {
        "Content-Type": "application/vnd.apache.parquet",
        "X-Reference-Name": name or f"table of {table.num_rows} rows",
    }
    return buffer.getvalue(), headers
