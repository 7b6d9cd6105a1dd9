"""Reading language models' token log-probabilities: serving payloads and plain columns.

:func:`read_token_logprobs` yields :class:`~xebench.io.chunks.Chunk` s of at
most ``batch_rows`` sequences, one row each, with the columns

- ``text_id`` (string), ``token_logprobs`` (``list<double>``, natural logs),
- ``n_bytes`` (int64: the UTF-8 bytes of the scored text, null when unknown),
- ``n_words`` (int64, null unless given), and the requested cohort columns,

from these inputs (``format=``; ``"auto"`` tells them apart by their fields):

``"openai"``
    OpenAI chat completion responses (a ``.json`` file of one response or a
    list of them, ``.jsonl`` of one per line, a Batch API output line
    ``{"custom_id", "response": {"body": ...}}``, or the parsed payload):
    one sequence per ``choices[i]``, the log-probabilities
    ``choices[i].logprobs.content[j].logprob``; the text is the concatenation
    of the ``bytes`` arrays when every entry has one (a token may hold part of
    a UTF-8 character), else of the ``token`` strings. Legacy completions
    (``logprobs.tokens`` / ``logprobs.token_logprobs``, the first null when
    ``echo`` is on) are read too. ``text_id``: ``custom_id`` or ``id``
    (the record number without either), ``/i`` appended when a response has
    several choices.
``"vllm"``
    vLLM ``prompt_logprobs``: a ``RequestOutput``-like object
    ``{"request_id", "prompt_token_ids", "prompt_logprobs"}`` or a completions
    response whose ``choices[i]`` hold ``prompt_logprobs``. Each position is
    ``null`` (the first token: nothing to condition on, not scored) or
    ``{token_id: {"logprob", "rank", "decoded_token"}}``, the prompt token and
    the top-k. Assumed: with ``prompt_token_ids`` the entry of the prompt's
    token id is taken; without, the first entry of each position (vLLM puts
    the prompt token first). The text is the scored positions'
    ``decoded_token`` s (the unscored first token is in neither the NLL nor
    the bytes); ``n_bytes`` is null if one is missing.
``"hf"``
    Hugging Face style arrays: ``{"input_ids": [[...]], "logprobs": [[...]]}``
    (a batch; or one sequence as flat lists), the log-probability of each
    token given the ones before it; leading nulls (the first token) are
    skipped, ``attention_mask`` zeros (padding) dropped; optional ``text``
    (for the bytes), ``n_bytes``, ``n_words`` and ``text_id`` per sequence.
``"columns"``
    plain columns in Parquet, CSV or JSON Lines: ``text_id``,
    ``token_logprobs`` (a list column; in CSV a JSON array string),
    ``text`` or ``n_bytes``, optional ``n_words`` and cohort columns.

A ``.json`` file is parsed whole (JSON has no record boundaries); JSON Lines,
CSV and Parquet are read line by line or in Arrow batches, so memory follows
``batch_rows``, not the file: :func:`read_token_table` is these chunks
concatenated, and :func:`xebench.offline.token_scan.scan_token_stats` sums
them into a ``TokenStats`` one chunk at a time. A table's list column is
checked and converted whole columns at a time (NumPy over the flattened
values); a chunk holding a value that may be refused is read record by
record, which raises the error, so both paths give the same table and the
same message. A sequence is one row (one record): rows that share a
``text_id`` are separate sequences, and no chunk boundary falls inside one.
:func:`mean_tokens_per_row` reads a Parquet file's tokens per row from its
metadata, to size chunks in tokens. A bad payload
raises a :class:`~xebench.errors.DataError` naming the file, the record (the
line of a JSON Lines file, the element of a JSON array, the data row of a
table, counted from 1) and the JSON pointer of the field within the record
(``err.source``, ``err.row``, ``err.pointer``).

    >>> payload = {"id": "c1", "choices": [{"index": 0, "logprobs": {"content": [
    ...     {"token": "Hi", "logprob": -0.5, "bytes": [72, 105]},
    ...     {"token": "!", "logprob": -1.5, "bytes": [33]}]}}]}
    >>> chunk = next(read_token_logprobs(payload))
    >>> chunk.table.to_pylist()
    [{'text_id': 'c1', 'token_logprobs': [-0.5, -1.5], 'n_bytes': 3, 'n_words': None}]
"""

from __future__ import annotations

import gzip
import json
import math
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import DataError, InvalidInputError
from .chunks import DEFAULT_BATCH_ROWS, Chunk, read_chunks
from .formats import SUPPORTED_SUFFIXES, check_file, format_of

__all__ = [
    "TOKEN_FORMATS",
    "mean_tokens_per_row",
    "read_token_logprobs",
    "read_token_table",
    "token_arrays",
]

#: The payload formats :func:`read_token_logprobs` reads (``"auto"`` guesses).
TOKEN_FORMATS = ("auto", "openai", "vllm", "hf", "columns")

_PAYLOAD = "<payload>"
_RULE = "must be a number <= 0"
#: Log-probabilities up to this much above 0 (float32 rounding) are read as 0.
_TOLERANCE = 1e-6


def _shown(value: Any) -> str:
    try:
        return json.dumps(value, allow_nan=True)
    except (TypeError, ValueError):
        return repr(value)


def payload_error(
    source: str, record: int, pointer: str, message: str, value: Any = ...
) -> DataError:
    """The one error of this module: ``source: record N: /pointer: message[, got value]``.

    Example:
        >>> str(payload_error("chat.jsonl", 3, "/choices/0/logprobs", "is required"))
        'chat.jsonl: record 3: /choices/0/logprobs: is required'
    """
    text = message if value is ... else f"{message}, got {_shown(value)}"
    error = DataError(pointer or "/", text, row=record, source=source)
    error.args = (f"{source}: record {record}: {pointer or '/'}: {text}",)
    error.pointer = pointer  # type: ignore[attr-defined]
    error.value = None if value is ... else value
    return error


class _Record:
    """One record being read: where errors point to."""

    def __init__(self, source: str, number: int) -> None:
        self.source, self.number = source, number

    def fail(self, pointer: str, message: str, value: Any = ...) -> DataError:
        return payload_error(self.source, self.number, pointer, message, value)

    def get(
        self, obj: Any, key: str | int, pointer: str, kind: type | tuple[type, ...] | None = None
    ) -> Any:
        """``obj[key]``, required, of type ``kind`` (any type when None)."""
        where = f"{pointer}/{key}"
        if isinstance(key, int):
            value = obj[key]
        elif not isinstance(obj, dict) or key not in obj:
            raise self.fail(where, "is required")
        else:
            value = obj[key]
        if kind is not None and not isinstance(value, kind):
            names = {dict: "an object", list: "an array", str: "a string"}
            wanted = kind if isinstance(kind, tuple) else (kind,)
            shown = " or ".join(names.get(k, k.__name__) for k in wanted)
            raise self.fail(where, f"must be {shown}", value)
        return value

    def logprob(self, value: Any, pointer: str) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(pointer, _RULE, value)
        number = float(value)
        if math.isnan(number) or number > _TOLERANCE:
            raise self.fail(pointer, _RULE, value)
        return min(number, 0.0)


def _row(
    text_id: str,
    logprobs: list[float],
    n_bytes: int | None,
    n_words: int | None = None,
    cohorts: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "text_id": text_id,
        "token_logprobs": logprobs,
        "n_bytes": n_bytes,
        "n_words": n_words,
        **(cohorts or {}),
    }


def _cohorts(record: dict[str, Any], names: Sequence[str]) -> dict[str, Any]:
    return {n: None if record.get(n) is None else str(record.get(n)) for n in names}


def _record_id(record: dict[str, Any], number: int) -> str:
    for key in ("custom_id", "id", "request_id", "text_id"):
        if isinstance(record.get(key), (str, int)) and not isinstance(record.get(key), bool):
            return str(record[key])
    return str(number)


# --- OpenAI -----------------------------------------------------------------


def _openai_rows(
    obj: dict[str, Any], at: _Record, cohorts: Sequence[str]
) -> Iterator[dict[str, Any]]:
    base = ""
    if isinstance(obj.get("response"), dict) and "body" in obj["response"]:  # Batch API line
        record_id = _record_id(obj, at.number)
        obj, base = at.get(obj["response"], "body", "/response", dict), "/response/body"
    else:
        record_id = _record_id(obj, at.number)
    choices = at.get(obj, "choices", base, list)
    for i, choice in enumerate(choices):
        where = f"{base}/choices/{i}"
        at.get(choices, i, f"{base}/choices", dict)
        logprobs = at.get(choice, "logprobs", where, dict)
        text_id = record_id if len(choices) == 1 else f"{record_id}/{i}"
        if "content" in logprobs or "token_logprobs" not in logprobs:
            values, n_bytes = _openai_chat(logprobs, at, f"{where}/logprobs")
        else:
            values, n_bytes = _openai_legacy(logprobs, at, f"{where}/logprobs")
        yield _row(text_id, values, n_bytes, None, _cohorts(obj, cohorts))


def _openai_chat(logprobs: dict[str, Any], at: _Record, where: str) -> tuple[list[float], int]:
    content = at.get(logprobs, "content", where, list)
    values, tokens, raw = [], [], []
    all_bytes = True
    for j, entry in enumerate(content):
        place = f"{where}/content/{j}"
        at.get(content, j, f"{where}/content", dict)
        values.append(at.logprob(at.get(entry, "logprob", place), f"{place}/logprob"))
        tokens.append(at.get(entry, "token", place, str))
        data = entry.get("bytes")
        if data is None:
            all_bytes = False
            continue
        if not isinstance(data, list) or not all(
            isinstance(b, int) and not isinstance(b, bool) and 0 <= b < 256 for b in data
        ):
            raise at.fail(f"{place}/bytes", "must be an array of integers in [0, 255]", data)
        raw.extend(data)
    n_bytes = len(raw) if all_bytes else len("".join(tokens).encode("utf-8"))
    return values, n_bytes


def _openai_legacy(logprobs: dict[str, Any], at: _Record, where: str) -> tuple[list[float], int]:
    tokens = at.get(logprobs, "tokens", where, list)
    given = at.get(logprobs, "token_logprobs", where, list)
    if len(tokens) != len(given):
        raise at.fail(
            f"{where}/token_logprobs", f"must hold one entry per token ({len(tokens)})", len(given)
        )
    values, scored = [], []
    for j, value in enumerate(given):
        if j == 0 and value is None:  # echo: the first token has no log-probability
            continue
        values.append(at.logprob(value, f"{where}/token_logprobs/{j}"))
        scored.append(at.get(tokens, j, f"{where}/tokens", str))
    return values, len("".join(scored).encode("utf-8"))


# --- vLLM -------------------------------------------------------------------


def _vllm_rows(
    obj: dict[str, Any], at: _Record, cohorts: Sequence[str]
) -> Iterator[dict[str, Any]]:
    record_id = _record_id(obj, at.number)
    if "prompt_logprobs" in obj:
        parts = [(obj, "", record_id)]
    else:
        choices = at.get(obj, "choices", "", list)
        parts = [
            (
                at.get(choices, i, "/choices", dict),
                f"/choices/{i}",
                record_id if len(choices) == 1 else f"{record_id}/{i}",
            )
            for i in range(len(choices))
        ]
    for part, where, text_id in parts:
        positions = at.get(part, "prompt_logprobs", where, list)
        ids = part.get("prompt_token_ids", obj.get("prompt_token_ids"))
        if ids is not None and (not isinstance(ids, list) or len(ids) != len(positions)):
            got = len(ids) if isinstance(ids, list) else ids
            raise at.fail(
                f"{where}/prompt_token_ids",
                f"must hold one id per prompt position ({len(positions)})",
                got,
            )
        values, decoded = [], []
        for j, position in enumerate(positions):
            place = f"{where}/prompt_logprobs/{j}"
            if position is None:
                if j == 0:
                    continue
                raise at.fail(
                    place, "must be an object of token ids (only the first is null)", None
                )
            at.get(positions, j, f"{where}/prompt_logprobs", dict)
            if not position:
                raise at.fail(place, "must hold the prompt token's entry", position)
            key = next(iter(position)) if ids is None else str(ids[j])
            if key not in position:
                raise at.fail(place, f"has no entry for the prompt token id {key}")
            entry = position[key]
            if isinstance(entry, (int, float)) and not isinstance(entry, bool):
                values.append(at.logprob(entry, f"{place}/{key}"))  # {id: logprob}
                decoded.append(None)
                continue
            at.get(position, key, place, dict)
            values.append(
                at.logprob(at.get(entry, "logprob", f"{place}/{key}"), f"{place}/{key}/logprob")
            )
            token = entry.get("decoded_token")
            decoded.append(token if isinstance(token, str) else None)
        n_bytes = (
            None if None in decoded else len("".join(decoded).encode("utf-8"))  # type: ignore[arg-type]
        )
        yield _row(text_id, values, n_bytes, None, _cohorts(obj, cohorts))


# --- Hugging Face -------------------------------------------------------------


def _hf_rows(obj: dict[str, Any], at: _Record, cohorts: Sequence[str]) -> Iterator[dict[str, Any]]:
    batch = at.get(obj, "logprobs", "", list)
    flat = not batch or not isinstance(batch[0], list)
    rows = [batch] if flat else batch

    def column(name: str) -> list[Any] | None:
        value = obj.get(name)
        if value is None:
            return None
        value = [value] if flat and not isinstance(value, list) else value
        if flat and name in ("input_ids", "attention_mask"):
            value = [value]
        if not isinstance(value, list) or len(value) != len(rows):
            raise at.fail(f"/{name}", f"must hold one entry per sequence ({len(rows)})", value)
        return value

    ids, masks = column("input_ids"), column("attention_mask")
    texts, sizes, words, names = (column(n) for n in ("text", "n_bytes", "n_words", "text_id"))
    record_id = _record_id(obj, at.number)
    for b, sequence in enumerate(rows):
        where = "/logprobs" if flat else f"/logprobs/{b}"
        if not isinstance(sequence, list):
            raise at.fail(where, "must be an array", sequence)
        mask = None if masks is None else masks[b]
        if mask is not None and (not isinstance(mask, list) or len(mask) != len(sequence)):
            raise at.fail(
                f"/attention_mask/{b}", f"must hold one entry per token ({len(sequence)})", mask
            )
        if (
            ids is not None
            and isinstance(ids[b], list)
            and len(ids[b]) not in (len(sequence), len(sequence) + 1)
        ):
            raise at.fail(
                f"/input_ids/{b}",
                f"must hold as many ids as log-probabilities ({len(sequence)}), or one more",
                len(ids[b]),
            )
        values, leading = [], True
        for j, value in enumerate(sequence):
            if mask is not None and not mask[j]:
                continue
            if leading and value is None:
                continue
            leading = False
            values.append(at.logprob(value, f"{where}/{j}"))
        n_bytes = None
        if sizes is not None and sizes[b] is not None:
            n_bytes = _count(sizes[b], at, f"/n_bytes/{b}")
        elif texts is not None and texts[b] is not None:
            if not isinstance(texts[b], str):
                raise at.fail(f"/text/{b}", "must be a string", texts[b])
            n_bytes = len(texts[b].encode("utf-8"))
        n_words = (
            None if words is None or words[b] is None else _count(words[b], at, f"/n_words/{b}")
        )
        text_id = (
            str(names[b])
            if names is not None
            else (record_id if len(rows) == 1 else f"{record_id}/{b}")
        )
        yield _row(text_id, values, n_bytes, n_words, _cohorts(obj, cohorts))


def _count(value: Any, at: _Record, pointer: str) -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not (math.isfinite(value) and value >= 0 and float(value).is_integer())
    ):
        raise at.fail(pointer, "must be an integer >= 0", value)
    return int(value)


# --- plain columns ------------------------------------------------------------


def _column_row(
    obj: dict[str, Any], at: _Record, cohorts: Sequence[str], column: str = "token_logprobs"
) -> dict[str, Any]:
    raw = obj.get(column)
    if isinstance(raw, str):  # CSV: a JSON array string
        try:
            raw = json.loads(raw)
        except ValueError:
            raise at.fail(f"/{column}", "must be a JSON array of numbers", obj[column]) from None
    if not isinstance(raw, list):
        raise at.fail(f"/{column}", "must be an array of numbers", raw)
    values = [at.logprob(v, f"/{column}/{j}") for j, v in enumerate(raw)]
    n_bytes = None
    if obj.get("n_bytes") is not None:
        n_bytes = _count(obj["n_bytes"], at, "/n_bytes")
    elif obj.get("text") is not None:
        if not isinstance(obj["text"], str):
            raise at.fail("/text", "must be a string", obj["text"])
        n_bytes = len(obj["text"].encode("utf-8"))
    n_words = None if obj.get("n_words") is None else _count(obj["n_words"], at, "/n_words")
    text_id = obj.get("text_id")
    return _row(
        str(at.number) if text_id is None else str(text_id),
        values,
        n_bytes,
        n_words,
        _cohorts(obj, cohorts),
    )


def _columns_rows(
    obj: dict[str, Any], at: _Record, cohorts: Sequence[str], column: str = "token_logprobs"
) -> Iterator[dict[str, Any]]:
    at.get(obj, column, "", (list, str))
    yield _column_row(obj, at, cohorts, column)


_READERS = {"openai": _openai_rows, "vllm": _vllm_rows, "hf": _hf_rows, "columns": _columns_rows}


def _guess(obj: Any, at: _Record) -> str:
    if not isinstance(obj, dict):
        raise at.fail("", "must be a JSON object", type(obj).__name__)
    body = obj.get("response", {}).get("body", {}) if isinstance(obj.get("response"), dict) else {}
    choices = obj.get("choices", body.get("choices") if isinstance(body, dict) else None)
    if "prompt_logprobs" in obj:
        return "vllm"
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        return "vllm" if "prompt_logprobs" in choices[0] else "openai"
    if "token_logprobs" in obj:
        return "columns"
    if "logprobs" in obj:
        return "hf"
    raise at.fail(
        "",
        "is not a format xebench reads: no choices (OpenAI), prompt_logprobs "
        "(vLLM), logprobs (Hugging Face) or token_logprobs (columns)",
    )


# --- the reader ---------------------------------------------------------------


def _json_records(path: Path) -> Iterator[tuple[int, Any]]:
    kind_suffixes = [s.lower() for s in path.suffixes]
    compressed = kind_suffixes[-1:] == [".gz"]
    opener = gzip.open if compressed else open
    lines = any(s in (".jsonl", ".ndjson") for s in kind_suffixes)
    with opener(path, "rt", encoding="utf-8") as handle:  # type: ignore[operator]
        if lines:
            for number, line in enumerate(handle, start=1):
                if line.strip():
                    try:
                        yield number, json.loads(line)
                    except ValueError as error:
                        raise payload_error(
                            str(path), number, "", f"is not JSON ({error})"
                        ) from None
            return
        try:
            document = json.load(handle)
        except ValueError as error:
            raise DataError("data", f"is not JSON ({error})", source=str(path)) from None
    items = document if isinstance(document, list) else [document]
    yield from enumerate(items, start=1)


def _schema(cohorts: Sequence[str]) -> pa.Schema:
    fields = [
        ("text_id", pa.string()),
        ("token_logprobs", pa.list_(pa.float64())),
        ("n_bytes", pa.int64()),
        ("n_words", pa.int64()),
    ]
    return pa.schema(fields + [(name, pa.string()) for name in cohorts])


def _rows_to_table(rows: list[dict[str, Any]], cohorts: Sequence[str]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=_schema(cohorts))


def read_token_logprobs(
    data: str | os.PathLike[str] | dict[str, Any] | list[Any],
    *,
    format: str = "auto",
    cohorts: Sequence[str] = (),
    batch_rows: int = DEFAULT_BATCH_ROWS,
    source: str | None = None,
    logprobs_column: str = "token_logprobs",
    columns: Mapping[str, str] | None = None,
) -> Iterator[Chunk]:
    """Yield chunks of at most ``batch_rows`` sequences (see the module docstring).

    ``data`` is a file (``.json``, ``.jsonl`` / ``.ndjson``, optionally ``.gz``,
    ``.parquet``, ``.csv``) or a parsed payload (a dict, or a list of them);
    ``format`` one of :data:`TOKEN_FORMATS`; ``cohorts`` the record fields (or
    table columns) to keep beside each sequence; ``source`` names a payload
    in messages (default ``"<payload>"``); ``logprobs_column`` the list column
    of plain columns to read as ``token_logprobs`` (one table holding several
    models' columns; another name implies ``format="columns"``); ``columns`` the
    names plain columns have in ``data`` when they are not the standard ones
    (``{"text_id": "doc", "n_bytes": "size", "text": "body"}``; messages name
    the standard field).

    Raises:
        DataError: a missing file, a bad payload (file, record, JSON pointer).

    Example:
        >>> vllm = {"request_id": "r1", "prompt_token_ids": [1, 7, 9], "prompt_logprobs": [
        ...     None,
        ...     {"7": {"logprob": -2.0, "rank": 3, "decoded_token": " a"},
        ...      "5": {"logprob": -0.5, "rank": 1, "decoded_token": " the"}},
        ...     {"9": {"logprob": -1.0, "rank": 1, "decoded_token": " cat"}}]}
        >>> next(read_token_logprobs(vllm)).table.to_pylist()[0]["token_logprobs"]
        [-2.0, -1.0]
        >>> next(read_token_logprobs({"choices": [{"logprobs": {"content": [
        ...     {"token": "x", "logprob": "x"}]}}]}))
        Traceback (most recent call last):
        ...
        xebench.errors.DataError: <payload>: record 1: /choices/0/logprobs/content/0/logprob:
        must be a number <= 0, got "x"
    """
    if format not in TOKEN_FORMATS:
        raise InvalidInputError(
            "format", f"must be one of {', '.join(TOKEN_FORMATS)}", value=format
        )
    if batch_rows < 1:
        raise InvalidInputError("batch_rows", "must be >= 1", value=batch_rows)
    if logprobs_column != "token_logprobs":
        if format not in ("auto", "columns"):
            raise InvalidInputError(
                "logprobs_column", "is for plain columns (format 'columns')", value=format
            )
        format = "columns"
    cohorts = list(cohorts)
    renames = dict(columns or {})
    unknown = set(renames) - set(_RENAMEABLE)
    if unknown:
        raise InvalidInputError(
            "columns", f"may rename only {', '.join(_RENAMEABLE)}", value=sorted(unknown)
        )
    if renames:
        format = "columns" if format == "auto" else format
        if format != "columns":
            raise InvalidInputError("columns", "is for plain columns (format 'columns')")
    reserved = {"text_id", "token_logprobs", "n_bytes", "n_words", logprobs_column} & set(cohorts)
    reserved |= set(renames.values()) & set(cohorts)
    if reserved:
        raise InvalidInputError(
            "cohorts", "must not be the sequence's own columns", value=sorted(reserved)
        )
    if isinstance(data, (str, os.PathLike)):
        path = Path(data)
        name = source or str(data)
        suffixes = [s.lower() for s in path.suffixes]
        if ".json" in suffixes[-2:]:  # .json, .json.gz: not a table format of check_file
            if not path.is_file():
                why = "file not found" if not path.exists() else "is not a file"
                raise DataError("data", why, source=name)
        else:
            check_file(path)
        if path.stat().st_size == 0:
            raise DataError("data", "file is empty", source=name)
        if ".json" not in suffixes[-2:]:
            kind, _ = format_of(path)
            if kind != "json":
                if format not in ("auto", "columns"):
                    raise DataError(
                        "format", f"{format!r} payloads are JSON, not {kind.upper()}", source=name
                    )
                yield from _table_chunks(path, name, cohorts, batch_rows, logprobs_column, renames)
                return
        records: Any = _json_records(path)
    else:
        name = source or _PAYLOAD
        records = enumerate(data if isinstance(data, list) else [data], start=1)
    rows: list[dict[str, Any]] = []
    first_row = 1
    for number, obj in records:
        at = _Record(name, number)
        kind = _guess(obj, at) if format == "auto" else format
        if not isinstance(obj, dict):
            raise at.fail("", "must be a JSON object", type(obj).__name__)
        if kind == "columns":
            if renames:
                missing = [given for given in renames.values() if given not in obj]
                if missing:  # named by the caller: not optional
                    raise at.fail("", f"has no field {missing[0]!r} (columns=)", sorted(obj))
                obj = _renamed(obj, renames)
            rows.extend(_columns_rows(obj, at, cohorts, logprobs_column))
        else:
            rows.extend(_READERS[kind](obj, at, cohorts))
        while len(rows) >= batch_rows:
            yield Chunk(_rows_to_table(rows[:batch_rows], cohorts), name, first_row)
            first_row += batch_rows
            rows = rows[batch_rows:]
    if rows:
        yield Chunk(_rows_to_table(rows, cohorts), name, first_row)


#: The plain columns a reader may find under another name (``columns=``).
_RENAMEABLE = ("text_id", "text", "n_bytes", "n_words")


def _renamed(obj: dict[str, Any], renames: Mapping[str, str]) -> dict[str, Any]:
    """A record with its renamed fields under their standard names."""
    out = {k: v for k, v in obj.items() if k not in renames}
    for standard, given in renames.items():
        if given in obj:
            out[standard] = obj[given]
    return out


def _table_chunks(
    path: Path,
    name: str,
    cohorts: list[str],
    batch_rows: int,
    column: str = "token_logprobs",
    renames: Mapping[str, str] | None = None,
) -> Iterator[Chunk]:
    from .formats import file_schema

    renames = renames or {}
    available = file_schema(path).names
    for standard, given in renames.items():
        if given not in available:
            raise DataError(
                "columns", f"has no column {given!r} (for {standard}); has {available}", source=name
            )
    stored = {standard: renames.get(standard, standard) for standard in _RENAMEABLE}
    wanted = [column] + [stored[c] for c in _RENAMEABLE if stored[c] in available]
    back = {given: standard for standard, given in stored.items()}
    for chunk in read_chunks(path, wanted + cohorts, batch_rows=batch_rows):
        if renames:  # the standard names from here on: one reader for every file
            names = [back.get(n, n) if n in wanted else n for n in chunk.table.column_names]
            chunk = replace(chunk, table=chunk.table.rename_columns(names))
        # Whole columns at once when every value passes; otherwise the chunk is
        # read record by record, which raises the located error (one rule, one
        # message: the vectorised pass only decides that there is nothing to say).
        table = _columns_table(chunk.table, chunk.first_row, cohorts, column)
        if table is None:
            rows = []
            for offset, obj in enumerate(chunk.table.to_pylist()):
                at = _Record(name, chunk.first_row + offset)
                row = _column_row(obj, at, (), column)
                row |= {c: None if obj[c] is None else str(obj[c]) for c in cohorts}
                rows.append(row)
            table = _rows_to_table(rows, cohorts)
        yield Chunk(table, name, chunk.first_row, chunk.bytes_done, chunk.bytes_total)


def _text_column(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    """``str(value)`` of each value, null kept (what the record reader keeps)."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    kind = array.type
    if pa.types.is_string(kind):
        return array
    if pa.types.is_large_string(kind) or pa.types.is_integer(kind):
        return array.cast(pa.string())  # Arrow writes integers as Python's str does
    # Floats, booleans, dates...: Python's spelling (str(True) is "True", not "true").
    return pa.array([None if v is None else str(v) for v in array.to_pylist()], pa.string())


def _counts_column(table: pa.Table, name: str) -> np.ndarray | bool | None:
    """An int64 count column (-1 for null) when every value is an integer >= 0;
    False when one is not (or of another type), None when the column is absent."""
    if name not in table.column_names:
        return None
    array = table[name].combine_chunks()
    kind = array.type
    if not (pa.types.is_integer(kind) or pa.types.is_floating(kind)):
        return False  # strings, booleans: the record reader says what is wrong
    # Nulls filled, not read as NaN: a NaN value is refused, a null is "unknown".
    valid = np.asarray(array.is_valid()) if array.null_count else None
    values = (array if valid is None else array.fill_null(0)).to_numpy(zero_copy_only=False)
    given = values if valid is None else values[valid]
    if given.size:
        if pa.types.is_floating(kind) and not (
            np.isfinite(given).all() and (given == np.floor(given)).all()
        ):
            return False
        if not (given.min() >= 0 and given.max() < 2**62):  # int64 holds them exactly
            return False
    counts = values.astype(np.int64)
    if valid is not None:
        counts[~valid] = -1
    return counts


def _columns_table(
    table: pa.Table, first_row: int, cohorts: Sequence[str], column: str = "token_logprobs"
) -> pa.Table | None:
    """A chunk of plain columns read whole columns at a time, or None to read it by record.

    None whenever a value may be refused (or read differently) by
    :func:`_column_row`: a null or NaN log-probability, one above
    :data:`LOGPROB_TOLERANCE`, a count that is not an integer >= 0, a column of
    an unexpected type (CSV's JSON-array strings). The result equals the
    record reader's table.
    """
    logprobs = table[column].combine_chunks()  # the model's column (logprobs_column=)
    kind = logprobs.type
    if not (pa.types.is_list(kind) or pa.types.is_large_list(kind)) or logprobs.null_count:
        return None
    value_type = kind.value_type
    if not (pa.types.is_floating(value_type) or pa.types.is_integer(value_type)):
        return None
    if pa.types.is_large_list(kind) and len(logprobs) and logprobs.offsets[-1].as_py() >= 2**31:
        return None
    lists = logprobs.cast(pa.list_(pa.float64()))  # rebased at offset 0; float32 exact
    values = lists.values
    if values.null_count:
        return None
    flat = values.to_numpy(zero_copy_only=False)
    if flat.size:
        top = flat.max()
        if not top <= _TOLERANCE:  # NaN fails too (and +inf)
            return None
        if top > 0.0:  # float32 rounding of a certain token: read as 0, as the records are
            flat = np.minimum(flat, 0.0)
            lists = pa.ListArray.from_arrays(lists.offsets, pa.array(flat))
    n = table.num_rows
    sizes = _counts_column(table, "n_bytes")
    words = _counts_column(table, "n_words")
    if sizes is False or words is False:
        return None
    n_bytes = np.full(n, -1, dtype=np.int64) if sizes is None else sizes
    if "text" in table.column_names and (n_bytes < 0).any():
        text = table["text"].combine_chunks()
        missing = n_bytes < 0
        if not (pa.types.is_string(text.type) or pa.types.is_large_string(text.type)):
            if text.null_count < n and np.asarray(text.is_valid())[missing].any():
                return None  # a text that is not a string: the records say so
        else:
            lengths = pc.binary_length(text).fill_null(-1).to_numpy().astype(np.int64)
            n_bytes = np.where(missing, lengths, n_bytes)
    numbers = None
    if "text_id" in table.column_names:
        ids = _text_column(table["text_id"])
        if ids.null_count:
            numbers = pa.array(np.arange(first_row, first_row + n).astype(str))
            ids = pc.if_else(ids.is_null(), numbers, ids)
    else:
        ids = pa.array(np.arange(first_row, first_row + n).astype(str), pa.string())
    columns = {
        "text_id": ids,
        "token_logprobs": lists,
        "n_bytes": pa.array(n_bytes, mask=n_bytes < 0),
        "n_words": pa.nulls(n, pa.int64()) if words is None else pa.array(words, mask=words < 0),
    }
    columns |= {c: _text_column(table[c]) for c in cohorts}
    return pa.table(columns, schema=_schema(cohorts))


def mean_tokens_per_row(data: Any) -> float | None:
    """Log-probabilities per row of a Parquet token table, from its metadata alone.

    None for anything else (another format, a payload, a file without a
    ``token_logprobs`` column, an empty one): what a reader sizes its chunks
    by when sequences may be 10 or 10,000 tokens long.

    Example:
        >>> import tempfile
        >>> import pyarrow.parquet as pq
        >>> path = Path(tempfile.mkdtemp()) / "t.parquet"
        >>> pq.write_table(pa.table({"token_logprobs": [[-1.0, -2.0], [-3.0]]}), path)
        >>> mean_tokens_per_row(path), mean_tokens_per_row({"token_logprobs": [-1.0]})
        (1.5, None)
    """
    if not isinstance(data, (str, os.PathLike)):
        return None
    path = Path(data)
    if not path.is_file() or SUPPORTED_SUFFIXES.get(path.suffix.lower()) != "parquet":
        return None
    import pyarrow.parquet as pq

    try:
        metadata = pq.ParquetFile(path).metadata
    except (pa.ArrowInvalid, OSError):
        return None  # the reader reports it, with the file's name
    if not metadata.num_rows:
        return None
    names = [metadata.schema.column(i).path for i in range(metadata.num_columns)]
    column = next((i for i, name in enumerate(names) if name.startswith("token_logprobs.")), None)
    if column is None:
        return None
    # A list column's leaf holds one value per token (and one per null or empty list).
    values = sum(
        metadata.row_group(g).column(column).num_values for g in range(metadata.num_row_groups)
    )
    return values / metadata.num_rows


def read_token_table(
    data: str | os.PathLike[str] | dict[str, Any] | list[Any], **options: Any
) -> pa.Table:
    """Every chunk of :func:`read_token_logprobs` in one table (for small inputs).

    Example:
        >>> read_token_table([{"text_id": "a", "token_logprobs": [-1.0], "text": "é"}]).num_rows
        1
    """
    tables = [chunk.table for chunk in read_token_logprobs(data, **options)]
    if not tables:
        return _rows_to_table([], list(options.get("cohorts", ())))
    return pa.concat_tables(tables)


def token_arrays(
    table: pa.Table,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    """(flat log-probabilities, tokens per sequence, bytes, words) of a chunk's table.

    The arguments of ``TokenStats.update(flat, lengths=..., n_bytes=..., n_words=...)``;
    bytes (words) are None unless every sequence has them.

    Example:
        >>> table = read_token_table([{"token_logprobs": [-1.0, -2.0], "n_bytes": 4},
        ...                           {"token_logprobs": [-3.0], "n_bytes": 2}])
        >>> flat, lengths, n_bytes, n_words = token_arrays(table)
        >>> flat.tolist(), lengths.tolist(), n_bytes.tolist(), n_words
        ([-1.0, -2.0, -3.0], [2, 1], [4, 2], None)
    """
    column = table["token_logprobs"]
    # One chunk (what the readers yield) is used as is: combine_chunks copies.
    column = column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()
    flat = np.asarray(column.flatten().to_numpy(zero_copy_only=False), dtype=np.float64)
    lengths = column.value_lengths().fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)

    def counts(name: str) -> np.ndarray | None:
        if name not in table.column_names or table[name].null_count:
            return None
        return table[name].to_numpy().astype(np.int64)

    return flat, lengths, counts("n_bytes"), counts("n_words")
