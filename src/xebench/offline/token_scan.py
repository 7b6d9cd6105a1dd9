"""Scoring a file of token log-probabilities in bounded memory: one pass to :class:`TokenStats`.

:func:`scan_token_stats` reads a token table (or any payload
:func:`~xebench.io.tokens.read_token_logprobs` reads) chunk by chunk and adds
each chunk's sequences to one :class:`~xebench.stats.tokens.TokenStats`:
the per-sequence sums are taken over the chunk's flattened list column
(``np.add.reduceat`` over the offsets; no Python loop per sequence or token),
so memory is bounded by ``batch_rows`` whatever the size of the file, and
the statistics (with their intervals, see ``TokenStats.result``) equal those
of the whole file read at once.

A sequence is one row (one record): rows sharing a ``text_id`` are separate
sequences, exactly as when the table is read whole, so a chunk boundary never
falls inside a sequence.

Example:
    >>> import tempfile
    >>> from pathlib import Path
    >>> import pyarrow as pa, pyarrow.parquet as pq
    >>> path = Path(tempfile.mkdtemp()) / "tokens.parquet"
    >>> pq.write_table(pa.table({
    ...     "text_id": ["a", "b", "c"],
    ...     "token_logprobs": [[-1.0, -2.0], [-3.0], [-0.5, -0.5, -2.0]],
    ...     "n_bytes": [6, 2, 7]}), path)
    >>> stats = scan_token_stats(path, batch_rows=2)     # two chunks: rows 1-2, row 3
    >>> stats.n_sequences, stats.n_tokens, stats.nll_sum
    (3, 6, 9.0)
    >>> result = stats.result()
    >>> result["pooled_cross_entropy"], round(result["bits_per_byte"], 4)  # 9 / 15 / ln 2
    (1.5, 0.8656)
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np

from ..errors import DataError
from ..io.chunks import DEFAULT_BATCH_ROWS, Chunk, prefetch
from ..io.tokens import mean_tokens_per_row, read_token_logprobs, token_arrays
from ..stats.tokens import DEFAULT_EXTREMAL_LOGPROB, TokenStats

__all__ = ["DEFAULT_CHUNK_TOKENS", "chunk_rows", "scan_token_stats"]

#: Log-probabilities per chunk when the rows are sized from a Parquet file's
#: metadata: 8 MB of float64. On the 1e7-token benchmark file the scan peaked at
#: 253 MB RSS with it, 375 MB with DEFAULT_BATCH_ROWS rows of ~100 tokens (6.5e6),
#: no faster (docs/performance.md, "Token log-probs at 1e8").
DEFAULT_CHUNK_TOKENS = 2**20


def chunk_rows(data: Any, tokens: int = DEFAULT_CHUNK_TOKENS) -> int:
    """Rows per chunk holding about ``tokens`` log-probabilities.

    Sequences may be 10 or 10,000 tokens long, so a fixed row count does not
    bound memory: for a Parquet file the rows come from its metadata (the
    tokens per row group), within [64, ``DEFAULT_BATCH_ROWS``]; anything else
    gets ``DEFAULT_BATCH_ROWS``.

    Example:
        >>> chunk_rows([{"token_logprobs": [-1.0]}]) == DEFAULT_BATCH_ROWS
        True
    """
    per_row = mean_tokens_per_row(data)
    if not per_row:
        return DEFAULT_BATCH_ROWS
    return int(min(max(tokens / per_row, 64), DEFAULT_BATCH_ROWS))


def _sequence_error(chunk: Chunk, index: int, field: str, rule: str) -> DataError:
    """``source: sequence N (text_id "x"): field: rule`` for the chunk's ``index``-th row."""
    text_id = chunk.table["text_id"][index].as_py()
    number = chunk.first_row + index
    error = DataError(field, rule, row=number, source=chunk.source)
    error.args = (f'{chunk.source}: sequence {number} (text_id "{text_id}"): {field}: {rule}',)
    return error


def scan_token_stats(
    data: str | os.PathLike[str] | dict[str, Any] | list[Any],
    *,
    format: str = "auto",
    batch_rows: int | None = None,
    extremal_logprob: float = DEFAULT_EXTREMAL_LOGPROB,
    source: str | None = None,
    require_bytes: bool = False,
    read_ahead: bool = False,
    on_chunk: Callable[[Chunk], None] | None = None,
) -> TokenStats:
    """The :class:`TokenStats` of every sequence of ``data``, read ``batch_rows`` at a time.

    ``data``, ``format`` and ``source`` are those of
    :func:`~xebench.io.tokens.read_token_logprobs` (a Parquet / CSV / JSON
    Lines token table, OpenAI / vLLM / Hugging Face payloads), with the same
    validation and the same errors (file, record, JSON pointer). Only the
    columns the statistics need are read (no cohort column). ``batch_rows`` is
    the rows per chunk (default: about :data:`DEFAULT_CHUNK_TOKENS` tokens, see
    :func:`chunk_rows`); memory is bounded by it. ``read_ahead`` reads the
    next chunk on a thread while this one is summed (one more chunk in
    memory); off by default because the sums are cheap next to decoding: on
    the 2-core benchmark machine it made the 1e8-token scan slower (2.66 s
    against 1.48 s). ``on_chunk`` is called with each chunk after it is added
    (progress).

    Bytes (words) count only when every sequence has them: a sequence
    without a byte count (a null ``n_bytes`` and no ``text``) is not an error
    but leaves ``bits_per_byte`` None, as for the whole file; with
    ``require_bytes`` it raises instead, naming the first such sequence.

    Raises:
        DataError: a bad payload or value (see ``read_token_logprobs``), a
            sequence with no scored token (its cross-entropy is undefined) or,
            with ``require_bytes``, without a byte count, naming the file and
            the sequence (counted from 1; for a table, its record).

    Example:
        >>> rows = [{"text_id": "a", "token_logprobs": [-1.0, -2.0], "text": "hi!"},
        ...         {"text_id": "b", "token_logprobs": [], "text": ""}]
        >>> scan_token_stats(rows[:1]).result()["pooled_cross_entropy"]
        1.5
        >>> scan_token_stats(rows)
        Traceback (most recent call last):
        ...
        xebench.errors.DataError: <payload>: sequence 2 (text_id "b"): token_logprobs: must hold a
        scored token
    """
    stats = TokenStats(extremal_logprob=extremal_logprob)
    rows = chunk_rows(data) if batch_rows is None else batch_rows
    chunks = read_token_logprobs(data, format=format, batch_rows=rows, source=source)
    for chunk in prefetch(chunks) if read_ahead else chunks:
        flat, lengths, n_bytes, n_words = token_arrays(chunk.table)
        if lengths.size and not lengths.min() > 0:
            i = int(np.argmax(lengths <= 0))
            raise _sequence_error(chunk, i, "token_logprobs", "must hold a scored token")
        if require_bytes and n_bytes is None:
            i = int(np.argmax(np.asarray(chunk.table["n_bytes"].is_null())))
            raise _sequence_error(chunk, i, "n_bytes", "is required (an n_bytes or a text)")
        stats.update(flat, lengths=lengths, n_bytes=n_bytes, n_words=n_words)
        if on_chunk is not None:
            on_chunk(chunk)
    return stats
