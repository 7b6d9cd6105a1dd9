"""Folding a language model's scored sequences into ``bucket_tokens``.

A scored sequence is a prediction row whose ``tokens`` summary is set
(:data:`~xebench.store.schema.TOKENS_TYPE`; ``POST /v1/lm/tokens``). Its bucket
row holds the :class:`~xebench.stats.TokenStats` sums
(:data:`~xebench.stats.tokens.TOKEN_SUMS`) of the sequences of one key
(tenant, model, version, cohort, minute), computed by the statistics' own
:func:`~xebench.stats.tokens.sequence_sums`, so a window's
``TokenStats.from_sums`` equals ``TokenStats.update`` over the same sequences.
Every field is a sum: rows merge by addition (compaction, the hourly and daily
twins, retention's roll-ups).

Example:
    >>> keys = {"tenant": ["t"], "model": ["m"], "version": [""], "cohort_key": [""],
    ...         "cohort_value": [""], "bucket": [0]}
    >>> sums = sequence_sums(np.array([6.0]), np.array([3]), np.array([0]), np.array([8.0]),
    ...                      None, np.array([0]), 1)
    >>> row = token_rows(keys, sums)
    >>> row["n_tokens"].to_pylist(), row["nll_bytes"].to_pylist(), row["delta"].to_pylist()
    ([3], [48.0], [True])
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

from ..stats.tokens import TOKEN_COUNTS, TOKEN_SUMS, sequence_sums
from .bucket_rows import arrow_column
from .bucket_schema import KEY, TOKEN_SCHEMA

__all__ = ["merge_tokens", "sequence_mask", "token_rows", "token_sums_of"]


def sequence_mask(table: pa.Table) -> NDArray[np.bool_] | None:
    """Which rows of a prediction table are scored sequences; None when none is.

    Example:
        >>> sequence_mask(pa.table({"model": ["m"]})) is None
        True
    """
    if "tokens" not in table.schema.names:
        return None
    mask = pc.is_valid(arrow_column(table, "tokens")).to_numpy(zero_copy_only=False)
    return mask if mask.any() else None


def token_sums_of(
    table: pa.Table, rows: NDArray[np.intp], group: NDArray[np.intp], n_groups: int
) -> dict[str, NDArray[Any]]:
    """The sums of the sequences of ``table`` (every row a scored sequence) into the
    groups of an expansion: entry ``e`` is row ``rows[e]`` of group ``group[e]``.

    Example:
        >>> from xebench.store.schema import TOKENS_TYPE
        >>> tokens = pa.array([{"n_tokens": 2, "nll": 3.0, "extremal": 0, "n_bytes": None,
        ...                     "n_words": None}], TOKENS_TYPE)
        >>> sums = token_sums_of(pa.table({"tokens": tokens}), np.array([0, 0]),
        ...                      np.array([0, 1]), 2)
        >>> sums["nll_sum"].tolist(), sums["n_with_bytes"].tolist()
        ([3.0, 3.0], [0, 0])
    """
    tokens = arrow_column(table, "tokens")

    def field(name: str) -> NDArray[Any]:
        values = pc.struct_field(tokens, name)
        if pa.types.is_floating(values.type):
            return pc.fill_null(values, np.nan).to_numpy(zero_copy_only=False)[rows]
        return values.to_numpy(zero_copy_only=False)[rows]

    return sequence_sums(
        field("nll"),
        field("n_tokens"),
        field("extremal"),
        field("n_bytes"),
        field("n_words"),
        group,
        n_groups,
    )


def token_rows(keys: Mapping[str, Any], sums: Mapping[str, NDArray[Any]]) -> pa.Table:
    """Delta rows of ``bucket_tokens`` from the key columns and the sums of each group
    (see the module's example)."""
    n = len(keys["tenant"])
    columns: dict[str, Any] = {name: keys[name] for name in KEY}
    columns["delta"] = np.ones(n, dtype=bool)
    for name in TOKEN_SUMS:
        values = np.asarray(sums[name])
        columns[name] = values.astype(np.int64 if name in TOKEN_COUNTS else np.float64)
    return pa.table(columns, schema=TOKEN_SCHEMA)


def merge_tokens(
    rows: pa.Table, group: NDArray[np.intp], n_groups: int, keys: Mapping[str, Any]
) -> pa.Table:
    """Rows of ``bucket_tokens`` merged: row ``i`` into group ``group[i]``, keyed by ``keys``.

    Example:
        >>> keys = {"tenant": ["t"], "model": ["m"], "version": [""], "cohort_key": [""],
        ...         "cohort_value": [""], "bucket": [0]}
        >>> one = token_rows(keys, sequence_sums(np.array([2.0]), np.array([1]),
        ...                  np.array([1]), None, None, np.array([0]), 1))
        >>> merged = merge_tokens(pa.concat_tables([one, one]), np.array([0, 0]), 1, keys)
        >>> merged["nll_sum"].to_pylist(), merged["extremal"].to_pylist()
        ([4.0], [2])
    """
    sums = {
        name: np.bincount(
            group,
            weights=arrow_column(rows, name).to_numpy(zero_copy_only=False),
            minlength=n_groups,
        )
        for name in TOKEN_SUMS
    }
    return token_rows(keys, sums)
