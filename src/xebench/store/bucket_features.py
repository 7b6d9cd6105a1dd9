"""Folding monitored features into ``bucket_features``: learning each feature's bins
from its first values, then histogramming every stored value in them.

:class:`FeatureFolding` is the feature half of :class:`~xebench.store.buckets.Buckets`
(which inherits it): it uses the maintainer's ``config``, its fixed bins and its
expansion of events into (model-wide + cohort) entries.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import duckdb
import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

from .bucket_rollup import insert_deltas, query_arrow
from .bucket_rows import arrow_column, dense_list, group_ids, take_keys
from .bucket_schema import FEATURE_SCHEMA, MonitorConfig
from .feature_bins import FeatureBins

__all__ = ["FeatureFolding"]


class FeatureFolding:
    """Feature histograms of folded predictions (mixed into :class:`Buckets`).

    Example:
        >>> from xebench.store.buckets import Buckets
        >>> issubclass(Buckets, FeatureFolding)
        True
    """

    config: MonitorConfig
    #: Fixed bins per (tenant, model), then per feature.
    _bins: dict[tuple[str, str], dict[str, FeatureBins]]
    #: Present values seen per (tenant, model, feature) whose bins are not learned yet.
    _unbinned: dict[tuple[str, str, str], int]

    if TYPE_CHECKING:  # provided by Buckets

        def _expand(
            self, table: pa.Table, *, cohorts: bool = True
        ) -> tuple[NDArray[np.intp], dict[str, pa.Array | NDArray[Any]]]: ...

    def _fold_features(
        self, con: duckdb.DuckDBPyConnection, table: pa.Table, p0: int, p1: int
    ) -> None:
        # One statement (each costs ~1 ms whatever it reads: this runs in every commit).
        models = con.execute(
            """
            SELECT tenant, model, list_sort(list_distinct(flatten(list(json_keys(features)))))
            FROM predictions WHERE seq > ? AND seq <= ? GROUP BY tenant, model
            """,
            [p0, p1],
        ).fetchall()
        for tenant, model, names in models:
            bins = self._bins.setdefault((tenant, model), {})
            # Every monitored feature, present in this step or not: an absent value counts
            # in the missing bin (else the counts would depend on how the folds were cut).
            binned = list(bins.values())
            if binned:
                self._histogram(con, tenant, model, binned, p0, p1)
            room = self.config.max_features - len(bins)
            fresh = [name for name in names if name not in bins][: max(room, 0)]
            if fresh:
                self._learn(con, tenant, model, fresh, p0, p1)

    def _learn(
        self,
        con: duckdb.DuckDBPyConnection,
        tenant: str,
        model: str,
        names: list[str],
        p0: int,
        p1: int,
    ) -> None:
        """Fix the bins of features seen ``learn_after`` times; histogram all they stored."""
        seen = self._feature_values(con, tenant, model, names, p0, p1)
        # Not counted since the store was opened: the values stored before this step count too.
        unseen = [name for name in names if (tenant, model, name) not in self._unbinned]
        before = self._feature_values(con, tenant, model, unseen, -1, p0) if unseen else {}
        ready = []
        for name in names:
            key = (tenant, model, name)
            present = sum(t is not None for t in seen[name][1])
            if name in before:
                present += sum(t is not None for t in before[name][1])
            self._unbinned[key] = self._unbinned.get(key, 0) + present
            if self._unbinned[key] >= self.config.learn_after:
                ready.append(name)
        if not ready:
            return
        # Learn from everything stored so far (a one-time scan), then count it all.
        every = self._feature_values(con, tenant, model, ready, -1, p1)
        new_bins = []
        for name in ready:
            numbers, texts = every[name]
            spec = FeatureBins.learn(name, numbers, texts, self.config)
            self._bins.setdefault((tenant, model), {})[name] = spec
            self._unbinned.pop((tenant, model, name), None)
            new_bins.append(spec)
            con.execute(
                "INSERT INTO feature_bins VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    tenant,
                    model,
                    name,
                    spec.kind,
                    list(spec.edges) if spec.kind == "numeric" else None,
                    list(spec.categories) if spec.kind == "categorical" else None,
                    sum(t is not None for t in texts),
                ],
            )
        self._histogram(con, tenant, model, new_bins, -1, p1)

    @staticmethod
    def _feature_sql(names: Sequence[str]) -> tuple[str, str]:
        """SQL reading the features ``names`` of ``predictions`` rows: (an expression that
        extracts them all, to be selected as ``__fx``; the columns ``n{i}`` / ``t{i}``
        computed from ``__fx``).

        ``n{i}`` is a JSON number as a double, ``t{i}`` the value as text (a JSON
        string or boolean, or a number's JSON text), both NULL when absent. One
        ``json_extract`` with every path parses each row's JSON once: a parse per
        feature and function measured 5.6x slower at 24 features.
        """
        # JSON paths with the key quoted, so that any key text is addressed literally.
        paths = ", ".join(
            "'" + ("$." + json.dumps(name)).replace("'", "''") + "'" for name in names
        )
        parts = []
        for i in range(len(names)):
            value = f"__fx[{i + 1}]"
            number = f"json_type({value}) IN ('BIGINT', 'UBIGINT', 'DOUBLE')"
            parts.append(
                f"CASE WHEN {number} THEN CAST({value} AS DOUBLE) END AS n{i}, "
                f"CASE WHEN json_type({value}) IN ('VARCHAR', 'BOOLEAN') "
                f"THEN json_extract_string({value}, '$') "
                f"WHEN {number} THEN {value}::VARCHAR END AS t{i}"
            )
        return f"json_extract(features, [{paths}])", ", ".join(parts)

    def _feature_values(
        self,
        con: duckdb.DuckDBPyConnection,
        tenant: str,
        model: str,
        names: Sequence[str],
        p0: int,
        p1: int,
    ) -> dict[str, tuple[NDArray[np.float64], list[str | None]]]:
        extract, columns = self._feature_sql(names)
        sql = (
            f"SELECT {columns} FROM (SELECT {extract} AS __fx FROM predictions "
            "WHERE tenant = ? AND model = ? AND seq > ? AND seq <= ?)"
        )
        table = query_arrow(con, sql, [tenant, model, p0, p1])
        return {
            name: (
                arrow_column(table, f"n{i}").to_numpy(zero_copy_only=False).astype(np.float64),
                arrow_column(table, f"t{i}").to_pylist(),
            )
            for i, name in enumerate(names)
        }

    def _histogram(
        self,
        con: duckdb.DuckDBPyConnection,
        tenant: str,
        model: str,
        bins: Sequence[FeatureBins],
        p0: int,
        p1: int,
    ) -> None:
        """Append feature-histogram deltas of the model's predictions with seq in (p0, p1]."""
        names = [b.feature for b in bins]
        extract, columns = self._feature_sql(names)
        table = query_arrow(
            con,
            f"SELECT tenant, model, version, event_time, cohort, {columns} FROM ("
            f"SELECT tenant, model, version, event_time, cohort, seq, {extract} AS __fx "
            "FROM predictions WHERE tenant = ? AND model = ? AND seq > ? AND seq <= ?"
            ") ORDER BY seq",
            [tenant, model, p0, p1],
        )
        if not table.num_rows:
            return
        rows, keys = self._expand(table, cohorts=self.config.cohort_features)
        group, first = group_ids(list(keys.values()))
        n_groups = first.shape[0]
        key_rows = take_keys(keys, first)
        parts = []
        for i, spec in enumerate(bins):
            if spec.kind == "numeric":
                values = (
                    arrow_column(table, f"n{i}").to_numpy(zero_copy_only=False).astype(np.float64)
                )
            else:
                values = np.array(arrow_column(table, f"t{i}").to_pylist(), dtype=object)
            index = spec.index(values)[rows]
            counts = np.bincount(group * spec.n_bins + index, minlength=n_groups * spec.n_bins)
            columns = dict(key_rows)
            columns["feature"] = pa.array([spec.feature] * n_groups, pa.string())
            columns["delta"] = pa.array(np.ones(n_groups, dtype=bool))
            columns["counts"] = dense_list(counts.reshape(n_groups, spec.n_bins), pa.uint32())
            parts.append(pa.table(columns, schema=FEATURE_SCHEMA))
        insert_deltas(con, "bucket_features", pa.concat_tables(parts))
