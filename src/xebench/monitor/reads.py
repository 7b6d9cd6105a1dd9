"""Reading bucket statistics for a model, a cohort and a range (via :mod:`xebench.store.queries`).

Example:
    >>> from datetime import UTC, datetime, timedelta
    >>> from xebench.store import EventStore
    >>> t = datetime(2026, 1, 1, tzinfo=UTC)
    >>> where = Selection("t", "m", None, ("", ""), Span(t, t + timedelta(hours=1)))
    >>> with EventStore(":memory:") as store:
    ...     table = scores(store, where)
    >>> table.num_rows, class_list(table, "m"), merged(table)["n"].tolist()
    (0, None, [0])
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

from ..errors import InvalidInputError
from ..stats.tokens import TOKEN_SUMS
from ..store import queries
from ..store.buckets import group_ids, merge_scores
from ..store.event_store import EventStore
from .scope import Scope, Span

__all__ = [
    "Selection",
    "bucket_rows",
    "class_list",
    "feature_counts",
    "merged",
    "one_class_list",
    "scores",
    "token_sums",
]


@dataclass(frozen=True)
class Selection:
    """Which bucket rows: one model's (one version's, or every version's when None),
    one cohort's (key, value) -- ``("", "")`` is the whole model, ``(key, None)``
    every value of a key -- in one range.

    Example:
        >>> from datetime import UTC, datetime, timedelta
        >>> t = datetime(2026, 1, 1, tzinfo=UTC)
        >>> Selection("t", "m", None, ("", ""), Span(t, t + timedelta(hours=1))).model
        'm'
    """

    tenant: str
    model: str
    version: str | None
    cohort: tuple[str, str | None]
    span: Span

    @classmethod
    def of(cls, scope: Scope, span: Span) -> Selection:
        """The buckets of ``scope`` in ``span`` (its resolved range, or a part of it)."""
        return cls(scope.tenant, scope.model, scope.version, scope.cohort_key, span)


def bucket_rows(
    store: EventStore, table: str, columns: str, where: Selection, *, hours: bool = True
) -> pa.Table:
    """The ``columns`` of a bucket table's rows ``where``
    (:func:`xebench.store.queries.bucket_rows`, on a cursor of ``store``)."""
    with store.cursor() as cursor:
        return queries.bucket_rows(
            cursor,
            table,
            columns,
            tenant=where.tenant,
            model=where.model,
            version=where.version,
            cohort=where.cohort,
            start=where.span.start,
            end=where.span.end,
            hours=hours,
        )


def scores(store: EventStore, where: Selection, *, hours: bool = True) -> pa.Table:
    """The score buckets (every column) ``where``."""
    return bucket_rows(store, "bucket_scores", "*", where, hours=hours)


def token_sums(
    store: EventStore,
    where: Selection,
    *,
    hours: bool = True,
    step: timedelta | None = None,
    points: int = 1,
) -> dict[str, NDArray[Any]] | None:
    """The :class:`~xebench.stats.TokenStats` sums of the scored sequences ``where``:
    one value per point of ``step`` from the selection's start (the whole range when
    None); None when the range holds no sequence (a classifier's windows).

    Example:
        >>> from datetime import UTC, datetime
        >>> from xebench.store import EventStore
        >>> t = datetime(2026, 1, 1, tzinfo=UTC)
        >>> where = Selection("t", "lm", None, ("", ""), Span(t, t + timedelta(hours=1)))
        >>> token_sums(EventStore(":memory:"), where) is None
        True
    """
    rows = bucket_rows(
        store, "bucket_tokens", "bucket, " + ", ".join(TOKEN_SUMS), where, hours=hours
    )
    if not rows.num_rows:
        return None
    if step is None:
        group = np.zeros(rows.num_rows, dtype=np.intp)
    else:
        micros = pc.cast(rows["bucket"], pa.int64()).to_numpy()
        start = int(where.span.start.timestamp() * 1e6)
        group = ((micros - start) // int(step.total_seconds() * 1e6)).astype(np.intp)
    return {
        name: np.bincount(group, weights=rows[name].to_numpy(), minlength=points)
        for name in TOKEN_SUMS
    }


def merged(table: pa.Table) -> dict[str, Any]:
    """Score buckets merged into one group (:func:`~xebench.store.buckets.merge_scores`)."""
    return merge_scores(table, np.zeros(table.num_rows, dtype=np.intp), 1)


def class_list(table: pa.Table, model: str) -> list[str] | None:
    """The one class list of score buckets (None when there are none).

    Raises:
        InvalidInputError: the rows hold several class lists (ask for one version).
    """
    if not table.num_rows:
        return None
    distinct = pc.unique(pc.binary_join(table["classes"], "\x1f")).to_pylist()
    if len(distinct) > 1:
        shown = " and ".join(str(d.split("\x1f")) for d in distinct[:2])
        raise InvalidInputError(
            "version",
            f"model {model!r} has several class lists in this range ({shown}); ask for one version",
        )
    return str(distinct[0]).split("\x1f")


def one_class_list(table: pa.Table) -> tuple[pa.Table, pa.Table]:
    """Score buckets split into those of each version's class list and the others.

    The writer refuses an event whose class list differs from its model
    version's (409), but a store written before that rule may hold a version
    with several lists; its windows would otherwise be unreadable ("several
    class lists"). Each version keeps the list most of its predictions in the
    range carry (ties: the first in text order); the rows of its other lists
    are returned second, to be counted as ``n_other_classes``.

    Example:
        >>> rows = pa.table({"version": ["v1", "v1", "v1"], "n_predictions": [5, 1, 2],
        ...                  "classes": [["0", "1"], ["neg", "pos"], ["0", "1"]]})
        >>> kept, other = one_class_list(rows)
        >>> kept["n_predictions"].to_pylist(), other["classes"].to_pylist()
        ([5, 2], [['neg', 'pos']])
    """
    if not table.num_rows:
        return table, table
    texts = pc.binary_join(table["classes"], "\x1f")
    if len(pc.unique(texts)) == 1:
        return table, table.slice(0, 0)
    keyed = pa.table({"version": table["version"], "list": texts, "n": table["n_predictions"]})
    totals = keyed.group_by(["version", "list"]).aggregate([("n", "sum")]).to_pylist()
    best: dict[str, tuple[int, str]] = {}
    for row in sorted(totals, key=lambda r: r["list"]):
        if row["version"] not in best or row["n_sum"] > best[row["version"]][0]:
            best[row["version"]] = (row["n_sum"], row["list"])
    if len(best) == len(totals):  # one list per version: nothing to leave out
        return table, table.slice(0, 0)
    winners = {(version, text) for version, (_, text) in best.items()}
    pairs = zip(table["version"].to_pylist(), texts.to_pylist(), strict=True)
    keep = pa.array([pair in winners for pair in pairs])
    return table.filter(keep), table.filter(pc.invert(keep))


def feature_counts(store: EventStore, where: Selection) -> dict[str, NDArray[np.float64]]:
    """Feature -> counts in its monitoring bins, summed over the range's buckets."""
    # Per-cohort histograms exist only where monitoring.cohort_features was on when
    # the events were folded: read what is stored rather than trust today's setting.
    table = bucket_rows(store, "bucket_features", "feature, counts", where)
    if not table.num_rows:
        return {}
    group, first = group_ids([table["feature"].combine_chunks()])
    names = table["feature"].take(pa.array(first)).to_pylist()
    counts = table["counts"].combine_chunks()
    lengths = pc.list_value_length(counts).to_numpy(zero_copy_only=False).astype(np.intp)
    flat = pc.list_flatten(counts).to_numpy(zero_copy_only=False)
    # One bincount for every feature: value j of a row of feature g lands in slot
    # offset[g] + j (all rows of a feature have its width: its bins are fixed once).
    width = lengths[first]
    offset = np.concatenate([[0], np.cumsum(width)])
    row_of_value = np.repeat(np.arange(lengths.size), lengths)
    row_start = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    slot = offset[group][row_of_value] + np.arange(flat.size) - row_start[row_of_value]
    totals = np.bincount(slot, weights=flat, minlength=int(offset[-1]))
    return {name: totals[offset[g] : offset[g + 1]] for g, name in enumerate(names)}
