"""Per-minute statistics of the event store: what every window, drift check and canary merges.

The event tables hold raw events; monitoring never rescans them. Instead,
each committed event is *folded* once into mergeable statistics per

    (tenant, model, version, cohort key/value or "all", one-minute bucket)

of the prediction's event time:

- ``bucket_scores``: predictions counted, a histogram of the model's score,
  labels joined, a histogram of label lag, the :class:`~xebench.ScoreStats`
  of the labelled predictions (as its ``to_row`` columns), and the sums of the
  label-lag bridge's estimate over every prediction
  (:mod:`xebench.stats.expected_loss`);
- ``bucket_features``: a histogram of each monitored feature, in bins fixed
  per (tenant, model, feature) in ``feature_bins``.

A window is a merge of buckets (:func:`~xebench.store.bucket_rows.merge_scores`),
so a window computed after late labels equals a recomputation from scratch: a
late label folds into the bucket of *its prediction*. Folding is idempotent by construction:
every prediction and label row carries the ``seq`` of the commit that wrote
it, and the fold advances two high-water marks (stored in ``meta`` in the
same transaction as the statistics), so each event is folded exactly once,
even across a kill -9.

A prediction joins the first label that arrived for it (the lowest ``seq``;
in one commit a label naming the model wins over a model-less one); a second
label for the same prediction is stored but never counted twice.

Folds append *delta* rows; :meth:`Buckets.compact` merges the rows of each key
into one, so queries read about one row per key.

Cardinality is bounded: the first ``cohort_cap`` values of each cohort key of
a model get their own buckets (within one fold, the most frequent first),
later ones go to ``"__other__"``; feature
histograms are kept for the model as a whole (and per cohort only when
``cohort_features`` is set), for at most ``max_features`` features per model.

This module is the maintainer (:class:`Buckets`: folding predictions and
labels). The rest is one job per module, re-exported here:

- :mod:`~xebench.store.bucket_schema`: granularity, DDL, Arrow schemas and
  :class:`MonitorConfig`;
- :mod:`~xebench.store.feature_bins`: :class:`FeatureBins`;
- :mod:`~xebench.store.bucket_features`: folding feature histograms;
- :mod:`~xebench.store.bucket_rows`: building and merging rows;
- :mod:`~xebench.store.bucket_rollup`: writing deltas, hourly twins, compaction.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

from ..metrics.calibration import uniform_bin_index
from ..stats import codec
from ..stats.codec import SCORE_COLUMNS, sparse_offsets
from ..stats.expected_loss import LossSums, outcome_losses, outcome_sums
from ..stats.score_calibration import FINE_BINS
from ..stats.scores import ScoreStats
from .bucket_features import FeatureEntries, FeatureFolding
from .bucket_restate import Restatement
from .bucket_rollup import compact, insert_deltas, query_arrow
from .bucket_rows import (
    arrow_column,
    calibration_score,
    column_codes,
    combined_codes,
    estimate_columns,
    group_ids,
    lag_bin,
    lag_counts,
    lag_percentile,
    merge_scores,
    score_rows,
    score_stats,
    take_keys,
    unique_groups,
)
from .bucket_schema import (
    ALL,
    BUCKET_MICROS,
    BUCKET_SECONDS,
    DAILY,
    HOUR_SECONDS,
    HOURLY,
    LAG_BINS,
    MIGRATION_2,
    MIGRATION_3_HOURS,
    MIGRATION_4_SCORE_WEIGHTS,
    MIGRATION_9_ESTIMATES,
    OTHER,
    SCORE_BINS,
    SCORE_EDGES,
    MonitorConfig,
)
from .bucket_tokens import sequence_mask, token_rows, token_sums_of
from .crossings import crossed_entries
from .feature_bins import FeatureBins

__all__ = [
    "ALL",
    "BUCKET_SECONDS",
    "HOURLY",
    "HOUR_SECONDS",
    "LAG_BINS",
    "MIGRATION_2",
    "MIGRATION_3_HOURS",
    "MIGRATION_4_SCORE_WEIGHTS",
    "MIGRATION_9_ESTIMATES",
    "OTHER",
    "SCORE_BINS",
    "Buckets",
    "FeatureBins",
    "MonitorConfig",
    "group_ids",
    "lag_counts",
    "lag_percentile",
    "merge_scores",
    "score_stats",
]


# --- the maintainer -----------------------------------------------------------------------


@dataclass
class _Vocabulary:
    """Admitted cohort values per (tenant, model, key), first come first served."""

    values: dict[tuple[str, str, str], dict[str, int]] = field(default_factory=dict)
    added: list[tuple[str, str, str, str, int]] = field(default_factory=list)

    def admit(self, tenant: str, model: str, key: str, value: str, cap: int) -> str:
        known = self.values.setdefault((tenant, model, key), {})
        if value in known:
            return value
        if len(known) >= cap:
            return OTHER
        known[value] = len(known)
        self.added.append((tenant, model, key, value, known[value]))
        return value


class Buckets(FeatureFolding, Restatement):
    """Folds committed events into the bucket tables; one per :class:`EventStore`.

    All methods take the store's writing connection and run inside the
    caller's transaction, except :meth:`fold_all` and :meth:`rebuild`, which
    commit step by step.
    """

    def __init__(self, config: MonitorConfig | None = None) -> None:
        self.config = config or MonitorConfig()
        self._vocabulary = _Vocabulary()
        self._bins: dict[tuple[str, str], dict[str, FeatureBins]] = {}
        self._unbinned: dict[tuple[str, str, str], int] = {}

    # --- state ---------------------------------------------------------------------

    def load(self, con: duckdb.DuckDBPyConnection) -> None:
        """Read the cohort vocabulary and the feature bins."""
        self._vocabulary = _Vocabulary()
        for tenant, model, key, value, position in con.execute(
            "SELECT tenant, model, key, value, position FROM cohort_values ORDER BY position"
        ).fetchall():
            self._vocabulary.values.setdefault((tenant, model, key), {})[value] = position
        self._bins = {}
        for tenant, model, feature, kind, edges, categories in con.execute(
            "SELECT tenant, model, feature, kind, edges, categories FROM feature_bins"
        ).fetchall():
            self._bins.setdefault((tenant, model), {})[feature] = FeatureBins(
                feature, kind, tuple(edges or ()), tuple(categories or ())
            )
        self._unbinned = {}

    def feature_bins(self, tenant: str, model: str) -> dict[str, FeatureBins]:
        """The fixed bins of each monitored feature of a model (a copy)."""
        return dict(self._bins.get((tenant, model), {}))

    @staticmethod
    def marks(con: duckdb.DuckDBPyConnection) -> tuple[int, int]:
        """(last folded prediction seq, last folded label seq)."""
        rows = dict(
            con.execute(
                "SELECT key, value FROM meta WHERE key IN ('folded_predictions', 'folded_labels')"
            ).fetchall()
        )
        return int(rows["folded_predictions"]), int(rows["folded_labels"])

    @staticmethod
    def _set_marks(con: duckdb.DuckDBPyConnection, predictions: int, labels: int) -> None:
        con.execute(
            "UPDATE meta SET value = CASE key WHEN 'folded_predictions' THEN ? ELSE ? END "
            "WHERE key IN ('folded_predictions', 'folded_labels')",
            [str(predictions), str(labels)],
        )

    # --- folding -------------------------------------------------------------------

    def steps(
        self, con: duckdb.DuckDBPyConnection, p_mark: int, l_mark: int
    ) -> Iterator[tuple[int, int, int, int]]:
        """The fold steps from the marks to the last commit: predictions first (labels
        fixed), then labels (predictions fixed), each about ``fold_rows`` events."""
        p_end, l_end = p_mark, l_mark
        for table, mark in (("predictions", p_mark), ("labels", l_mark)):
            sizes = con.execute(
                f"SELECT seq, count(*) FROM {table} WHERE seq > ? GROUP BY seq ORDER BY seq",
                [mark],
            ).fetchall()
            start, rows = mark, 0
            for seq, count in sizes:
                rows += count
                if rows >= self.config.fold_rows:
                    yield (
                        (start, seq, l_end, l_end)
                        if table == "predictions"
                        else (
                            p_end,
                            p_end,
                            start,
                            seq,
                        )
                    )
                    start, rows = seq, 0
            if rows:
                last = sizes[-1][0]
                yield (
                    (start, last, l_end, l_end)
                    if table == "predictions"
                    else (
                        p_end,
                        p_end,
                        start,
                        last,
                    )
                )
                start = last
            if table == "predictions":
                p_end = start

    def fold(
        self,
        con: duckdb.DuckDBPyConnection,
        p0: int,
        p1: int,
        l0: int,
        l1: int,
        *,
        pairs: bool = True,
        restate: bool = True,
        predictions: pa.Table | None = None,
    ) -> dict[str, int]:
        """Fold predictions with seq in (p0, p1] and labels in (l0, l1]; set the marks.

        Runs in the caller's transaction. Returns counts of what was folded. If it
        raises (the caller rolls back), the in-memory vocabulary and bins are restored.
        ``pairs=False`` skips the search for newly joined (prediction, label) pairs: the
        caller knows there is none (the writer's fingerprint indexes say so);
        ``restate=False`` skips looking for label corrections in (l0, l1]
        (:mod:`~xebench.store.bucket_restate`): the caller knows there is none.
        ``predictions``: the predictions with seq in (p0, p1] as stored, in the order
        they were inserted (the writer has them; else they are read back).
        """
        with self.restoring():
            # The score deltas of new predictions and of new pairs go in one INSERT per
            # table: a statement costs ~1-4 ms whatever its size, and this runs per commit.
            deltas: list[pa.Table] = []
            folded = self._fold_predictions(con, p0, p1, deltas, predictions) if p1 > p0 else 0
            joined = self._fold_pairs(con, p0, p1, l0, l1, deltas) if pairs else 0
            if deltas:
                insert_deltas(con, "bucket_scores", pa.concat_tables(deltas))
            if restate:  # after the deltas: it recomputes whole minutes from the events
                self._restate(con, p1, l0, l1)
            self._save_vocabulary(con)
            self._set_marks(con, p1, l1)
        return {"predictions": folded, "joined": joined}

    @contextlib.contextmanager
    def restoring(self) -> Iterator[None]:
        """Restore the in-memory vocabulary and bins if the block raises: wrap a fold
        *and its COMMIT*, so that a failed commit leaves no admitted value in memory.

        Example:
            >>> buckets = Buckets()
            >>> with contextlib.suppress(ZeroDivisionError), buckets.restoring():
            ...     _ = buckets._vocabulary.admit("t", "m", "region", "eu", 10)
            ...     1 / 0
            >>> buckets._vocabulary.values
            {}
        """
        saved = (
            {key: dict(values) for key, values in self._vocabulary.values.items()},
            list(self._vocabulary.added),
            {key: dict(bins) for key, bins in self._bins.items()},
            dict(self._unbinned),
        )
        try:
            yield
        except BaseException:
            self._vocabulary.values, self._vocabulary.added, self._bins, self._unbinned = saved
            raise

    def _save_vocabulary(self, con: duckdb.DuckDBPyConnection) -> None:
        if self._vocabulary.added:
            con.executemany(
                "INSERT INTO cohort_values VALUES (?, ?, ?, ?, ?)", self._vocabulary.added
            )
            self._vocabulary.added = []

    def _expand(
        self, table: pa.Table, *, cohorts: bool = True
    ) -> tuple[NDArray[np.intp], dict[str, pa.Array | NDArray[Any]]]:
        """One entry per row for the model as a whole, plus one per cohort entry and
        one per configured crossing whose every key the row's cohort has (the one
        place the fold reads the cohort maps).

        Returns (source row of each entry, key columns of each entry).
        """
        n = table.num_rows
        tenant, model = arrow_column(table, "tenant"), arrow_column(table, "model")
        micros = pc.cast(arrow_column(table, "event_time"), pa.int64()).to_numpy()
        bucket = (micros // BUCKET_MICROS) * BUCKET_MICROS
        source = [np.arange(n)]
        everything = pa.repeat(pa.scalar(ALL, pa.string()), n)
        keys: list[pa.Array] = [everything]
        values: list[pa.Array] = [everything]
        if cohorts and n:
            cohort = arrow_column(table, "cohort")
            offsets = cohort.offsets.to_numpy()
            start, stop = int(offsets[0]), int(offsets[-1])
            if stop > start:
                parents = [np.repeat(np.arange(n), np.diff(offsets))]
                key_cols = [cohort.keys.slice(start, stop - start)]
                value_cols = [cohort.items.slice(start, stop - start)]
                # The crossings (multi-key cohorts) are one more cohort key each: every
                # bucket table, twin, compaction and roll-up sees them as any other key.
                for crossed, key, value in crossed_entries(cohort, self.config.cohort_crossings):
                    parents.append(crossed)
                    key_cols.append(pa.repeat(pa.scalar(key, pa.string()), len(crossed)))
                    value_cols.append(value)
                parent = np.concatenate(parents)
                key_col = pa.concat_arrays(key_cols)
                admitted = self._admit(
                    tenant.take(pa.array(parent)),
                    model.take(pa.array(parent)),
                    key_col,
                    pa.concat_arrays(value_cols),
                )
                source.append(parent)
                keys.append(key_col)
                values.append(admitted)
        rows = np.concatenate(source)
        columns: dict[str, pa.Array | NDArray[Any]] = {
            "tenant": tenant.take(pa.array(rows)),
            "model": model.take(pa.array(rows)),
            "version": arrow_column(table, "version").take(pa.array(rows)),
            "cohort_key": pa.concat_arrays(keys),
            "cohort_value": pa.concat_arrays(values),
            "bucket": bucket[rows],
        }
        return rows, columns

    def _admit(self, tenant: pa.Array, model: pa.Array, key: pa.Array, value: pa.Array) -> pa.Array:
        """Cohort values, with those beyond the cap of their key replaced by OTHER."""
        combos = pa.table({"t": tenant, "m": model, "k": key, "v": value})
        group, first = group_ids([tenant, model, key, value])
        unique = combos.take(pa.array(first)).to_pylist()
        cap = self.config.cohort_cap
        # New values are admitted most frequent first (ties by first appearance), so
        # when the cap fills within one fold -- a bulk import -- the top values get it.
        order = np.lexsort((first, -np.bincount(group, minlength=len(unique))))
        mapped: list[str] = [""] * len(unique)
        for i in order.tolist():
            r = unique[i]
            mapped[i] = self._vocabulary.admit(r["t"], r["m"], r["k"], r["v"], cap)
        return pa.array(mapped, pa.string()).take(pa.array(group))

    def _fold_predictions(
        self,
        con: duckdb.DuckDBPyConnection,
        p0: int,
        p1: int,
        deltas: list[pa.Table],
        table: pa.Table | None = None,
    ) -> int:
        """Fold the predictions with seq in (p0, p1] (``table`` when the caller has them):
        their feature histograms, and their score-bucket deltas appended to ``deltas``;
        returns how many."""
        if table is None:
            # In insertion order within a commit (rowid): what the writer's rows have.
            table = query_arrow(
                con,
                "SELECT tenant, model, version, event_time, classes, probabilities, cohort, "
                "features, weight, tokens FROM predictions WHERE seq > ? AND seq <= ? "
                "ORDER BY seq, rowid",
                [p0, p1],
            )
        if not table.num_rows:
            return 0
        sequences = sequence_mask(table)
        if sequences is None:  # the usual commit: classifier predictions only
            delta, entries = self._prediction_deltas(table)
            deltas.append(delta)
            self._fold_features(con, table, p0, p1, entries)
            return table.num_rows
        # A language model's scored sequences: their TokenStats sums, no score buckets;
        # their features (the server adds each one's cross-entropy) fold as any model's.
        self._fold_sequences(con, table.filter(pa.array(sequences)))
        if not sequences.all():
            delta, _ = self._prediction_deltas(table.filter(pa.array(~sequences)))
            deltas.append(delta)
        self._fold_features(con, table, p0, p1)
        return table.num_rows

    def _fold_sequences(self, con: duckdb.DuckDBPyConnection, table: pa.Table) -> None:
        """Append the ``bucket_tokens`` deltas of scored sequences (every row one)."""
        rows, keys = self._expand(table)
        group, first = group_ids(list(keys.values()))
        sums = token_sums_of(table, rows, group, first.shape[0])
        insert_deltas(con, "bucket_tokens", token_rows(take_keys(keys, first), sums))

    def _prediction_deltas(self, table: pa.Table) -> tuple[pa.Table, FeatureEntries]:
        """Score-bucket delta rows of predictions (counts and score histograms), and the
        feature expansion of the same rows (its groups from the same key codes)."""
        rows, keys = self._expand(table)
        codes, _ = combined_codes(list(keys.values()))
        classes = arrow_column(table, "classes").take(pa.array(rows))
        class_codes, n_classes = column_codes(classes)
        # = group_ids of the keys and the classes, without coding the keys twice.
        group, first = unique_groups(codes * max(n_classes, 1) + class_codes)
        n_groups = first.shape[0]
        score_bin = uniform_bin_index(calibration_score(table), SCORE_EDGES)
        hist = np.bincount(
            group * SCORE_BINS + score_bin[rows], minlength=n_groups * SCORE_BINS
        ).reshape(n_groups, SCORE_BINS)
        delta = score_rows(
            take_keys({**keys, "classes": classes}, first),
            n_predictions=np.bincount(group, minlength=n_groups),
            score_hist=hist,
            **estimate_columns(self._estimate_sums(table, rows, group, n_groups)),
        )
        # The model-wide entries come first in the expansion (all of it with cohorts).
        mine = slice(None) if self.config.cohort_features else slice(0, table.num_rows)
        feature_group, feature_first = unique_groups(codes[mine])
        return delta, FeatureEntries(rows[mine], feature_group, take_keys(keys, feature_first))

    def _estimate_sums(
        self, table: pa.Table, rows: NDArray[np.intp], group: NDArray[np.intp], n_groups: int
    ) -> LossSums:
        """The label-lag bridge's sums (stats.expected_loss) of the expansion's groups:
        each prediction's losses computed once, summed into every group it counts in."""
        probabilities = arrow_column(table, "probabilities")
        lengths = pc.list_value_length(probabilities).to_numpy(zero_copy_only=False)
        flat = pc.list_flatten(probabilities).to_numpy(zero_copy_only=False)
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
        n = table.num_rows
        score, hit, miss = np.zeros(n), np.zeros(n), np.zeros(n)
        for k in np.unique(lengths).tolist():  # one class-list width at a time
            of_width = np.flatnonzero(lengths == k)
            matrix = flat[starts[of_width, None] + np.arange(k)]
            score[of_width], hit[of_width], miss[of_width] = outcome_losses(
                matrix[:, 1] if k == 2 else matrix, self.config.eps
            )
        # Required: predictions without their weights would estimate an unweighted loss.
        weight = arrow_column(table, "weight").to_numpy(zero_copy_only=False)
        return outcome_sums(
            score[rows],
            hit[rows],
            miss[rows],
            None if (weight == 1.0).all() else weight[rows],
            group,
            n_groups,
        )

    # --- labels --------------------------------------------------------------------------

    #: The first label of each candidate prediction (the lowest seq; in one commit a
    #: label naming the model wins over a model-less one), labels up to seq $l1.
    FIRST_LABELS = """
        matches AS (
            SELECT c.tenant, c.model, c.version, c.request_id, c.event_time, c.classes,
                   c.probabilities, c.cohort, c.weight, c.seq AS pseq, l.label,
                   l.event_time AS label_time, l.seq AS lseq, 0 AS anonymous
            FROM candidates c JOIN labels l
              ON l.fp = c.fp AND l.tenant = c.tenant AND l.model = c.model
             AND l.request_id = c.request_id
            WHERE l.seq <= $l1
            UNION ALL
            SELECT c.tenant, c.model, c.version, c.request_id, c.event_time, c.classes,
                   c.probabilities, c.cohort, c.weight, c.seq, l.label, l.event_time, l.seq, 1
            FROM candidates c JOIN labels l
              ON l.fp = c.rfp AND l.tenant = c.tenant AND l.model = ''
             AND l.request_id = c.request_id
            WHERE l.seq <= $l1
        ), first_label AS (
            SELECT *, row_number() OVER (
                PARTITION BY tenant, model, request_id ORDER BY lseq, anonymous
            ) AS position
            FROM matches
        )
        SELECT tenant, model, version, event_time, classes, probabilities, cohort,
               weight, label, label_time
        FROM first_label
        WHERE position = 1
    """

    _PAIRS = (
        """
        WITH new_labels AS (
            SELECT fp, model FROM labels WHERE seq > $l0 AND seq <= $l1
        ), candidates AS (
            SELECT * FROM predictions WHERE seq > $p0 AND seq <= $p1 AND tokens IS NULL
            UNION ALL
            SELECT * FROM predictions
            WHERE seq <= $p0 AND tokens IS NULL
              AND (fp IN (SELECT fp FROM new_labels WHERE model <> '')
                   OR rfp IN (SELECT fp FROM new_labels WHERE model = ''))
        ),"""
        + FIRST_LABELS
        + "AND (pseq > $p0 OR lseq > $l0)"
    )

    def _fold_pairs(
        self,
        con: duckdb.DuckDBPyConnection,
        p0: int,
        p1: int,
        l0: int,
        l1: int,
        deltas: list[pa.Table],
    ) -> int:
        """Fold the pairs first joined by these ranges: score-bucket deltas appended to
        ``deltas``; returns how many."""
        if p1 <= p0 and l1 <= l0:
            return 0
        table = query_arrow(con, self._PAIRS, {"p0": p0, "p1": p1, "l0": l0, "l1": l1})
        if not table.num_rows:
            return 0
        deltas.append(self._pair_deltas(table))
        return table.num_rows

    def _pair_deltas(self, table: pa.Table) -> pa.Table:
        """Score-bucket delta rows of (prediction, label) pairs: labelled counts, lags
        and the ScoreStats columns."""
        rows, keys = self._expand(table)
        classes = arrow_column(table, "classes")
        keys["classes"] = classes.take(pa.array(rows))
        group, first = group_ids(list(keys.values()))
        n_groups = first.shape[0]
        key_rows = take_keys(keys, first)
        lag = (
            pc.cast(arrow_column(table, "label_time"), pa.int64()).to_numpy()
            - pc.cast(arrow_column(table, "event_time"), pa.int64()).to_numpy()
        ) / 1e6
        lag_keys, lag_inverse = np.unique(
            group.astype(np.int64) * LAG_BINS + lag_bin(lag)[rows], return_inverse=True
        )
        lag_index, lag_offsets = sparse_offsets(lag_keys, LAG_BINS, n_groups)
        columns: dict[str, Any] = {
            "n_labelled": np.bincount(group, minlength=n_groups),
            "lag": (lag_index, lag_offsets, np.bincount(lag_inverse, minlength=lag_keys.shape[0])),
        }
        columns.update(self._score_sums(table, rows, group, n_groups, key_rows["classes"]))
        return score_rows(key_rows, **columns)

    def _score_sums(
        self,
        table: pa.Table,
        rows: NDArray[np.intp],
        group: NDArray[np.intp],
        n_groups: int,
        group_classes: pa.Array,
    ) -> dict[str, Any]:
        """ScoreStats columns per group (stats.codec), scored once per distinct class list."""
        eps = self.config.eps
        out: dict[str, Any] = {
            name: np.full(n_groups, eps) if name == "eps" else np.zeros(n_groups, kind)
            for name, kind in SCORE_COLUMNS.items()
        }
        widths = pc.list_value_length(group_classes).to_numpy(zero_copy_only=False)
        out["label_weight"] = np.zeros((n_groups, int(widths.max()) if n_groups else 0))
        cal_parts: list[tuple[NDArray[Any], ...]] = []
        class_text = pc.binary_join(arrow_column(table, "classes"), "\x1f").to_numpy(
            zero_copy_only=False
        )
        labels = np.asarray(arrow_column(table, "label").to_pylist(), dtype=object)
        probabilities = arrow_column(table, "probabilities")
        # The events' business weights; unweighted rows (all 1) skip the products.
        weight = arrow_column(table, "weight").to_numpy(zero_copy_only=False)
        for text in np.unique(class_text):
            classes = text.split("\x1f")
            source = np.flatnonzero(class_text == text)
            scorable = source[np.isin(labels[source], classes)]
            if not scorable.size:
                continue
            k = len(classes)
            matrix = (
                pc.list_flatten(probabilities.take(pa.array(scorable)))
                .to_numpy(zero_copy_only=False)
                .reshape(-1, k)
            )
            stats = ScoreStats(classes, eps=eps)
            w = weight[scorable]
            scored = stats.score(
                labels[scorable],
                matrix[:, 1] if k == 2 else matrix,
                None if (w == 1.0).all() else w,
            )
            # Entries of the expansion whose source row is scorable, and their position.
            position = np.full(table.num_rows, -1)
            position[scorable] = np.arange(scorable.shape[0])
            entries = np.flatnonzero(position[rows] >= 0)
            local_groups, local_group = np.unique(group[entries], return_inverse=True)
            sums = codec.score_sums(
                local_group, local_groups.shape[0], scored.take(position[rows[entries]]), k, eps
            )
            for name in SCORE_COLUMNS:
                out[name][local_groups] = sums[name]
            out["label_weight"][local_groups, :k] = sums["label_weight"]
            index, offsets, *values = sums["cal"]
            parent = np.repeat(local_groups, np.diff(offsets)).astype(np.int64)
            cal_parts.append((parent * FINE_BINS + index, *values))
        if cal_parts:
            key = np.concatenate([p[0] for p in cal_parts])
            order = np.argsort(key, kind="stable")
            out["cal"] = (
                *sparse_offsets(key[order], FINE_BINS, n_groups),
                *(np.concatenate([p[i] for p in cal_parts])[order] for i in (1, 2, 3)),
            )
        return out

    # --- compaction and rebuild --------------------------------------------------------

    def compact(self, con: duckdb.DuckDBPyConnection) -> int:
        """Merge the rows of every key that has delta rows into one; returns rows removed."""
        return compact(con)

    def reset(self, con: duckdb.DuckDBPyConnection) -> None:
        """Forget every bucket (keeping feature bins and the cohort vocabulary) so that the
        next folds recompute them from the raw events. In the caller's transaction."""
        for table in (*HOURLY, *HOURLY.values(), *DAILY.values()):
            con.execute(f"DELETE FROM {table}")
        con.execute("DELETE FROM meta WHERE key = 'hours_rolled_before'").fetchall()
        last_label = con.execute("SELECT coalesce(max(seq), -1) FROM labels").fetchone()[0]
        # Predictions are folded from the start with every label already visible: each
        # pair is counted once, in the step of its prediction.
        self._set_marks(con, -1, int(last_label))
        self._unbinned = {}
