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
import pyarrow.compute as pc
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
        """Fold the feature histograms of the predictions with seq in (p0, p1], whose
        ``tenant``, ``model``, ``version``, ``event_time``, ``cohort``, ``features`` and
        ``__keys`` (``json_keys(features)``) are ``table``'s;
        their deltas go in with one INSERT per table (each costs ~1-2 ms)."""
        parts: list[pa.Table] = []
        for (tenant, model), names in self._feature_names(table).items():
            bins = self._bins.setdefault((tenant, model), {})
            # Every monitored feature, present in this step or not: an absent value counts
            # in the missing bin (else the counts would depend on how the folds were cut).
            binned = list(bins.values())
            if binned:
                parts.extend(self._histogram(con, tenant, model, binned, p0, p1, table))
            room = self.config.max_features - len(bins)
            fresh = [name for name in names if name not in bins][: max(room, 0)]
            if fresh:
                parts.extend(self._learn(con, tenant, model, fresh, p0, p1))
        if parts:
            insert_deltas(con, "bucket_features", pa.concat_tables(parts))

    @staticmethod
    def _feature_names(table: pa.Table) -> dict[tuple[str, str], list[str]]:
        """The feature names of each (tenant, model) of ``table`` (from its ``__keys``
        column), sorted; a model whose rows have none maps to an empty list.

        Example:
            >>> rows = pa.table({"tenant": ["t", "t", "t"], "model": ["a", "a", "b"],
            ...                  "__keys": [["y", "x"], ["x", "z"], []]})
            >>> FeatureFolding._feature_names(rows)
            {('t', 'a'): ['x', 'y', 'z'], ('t', 'b'): []}
        """
        tenant, model = arrow_column(table, "tenant"), arrow_column(table, "model")
        keys = arrow_column(table, "__keys")
        group, first = group_ids([tenant, model])
        models = list(
            zip(tenant.take(first).to_pylist(), model.take(first).to_pylist(), strict=True)
        )
        names: dict[tuple[str, str], set[str]] = {key: set() for key in models}
        flat = pc.list_flatten(keys)
        if len(flat):  # each (model, name) once, in Python
            parent = group[pc.list_parent_indices(keys).to_numpy()]
            _, distinct = group_ids([parent, flat])
            for g, name in zip(
                parent[distinct].tolist(), flat.take(pa.array(distinct)).to_pylist(), strict=True
            ):
                if name is not None:
                    names[models[g]].add(name)
        # sorted(): code point order, which is UTF-8 byte order, DuckDB's list_sort order.
        return {key: sorted(found) for key, found in names.items()}

    def _learn(
        self,
        con: duckdb.DuckDBPyConnection,
        tenant: str,
        model: str,
        names: list[str],
        p0: int,
        p1: int,
    ) -> list[pa.Table]:
        """Fix the bins of features seen ``learn_after`` times; returns the histogram
        deltas of all they stored."""
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
            return []
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
        return self._histogram(con, tenant, model, new_bins, -1, p1)

    @staticmethod
    def _feature_sql(
        names: Sequence[str], *, numbers: bool = True, texts: bool = True
    ) -> tuple[str, str]:
        """SQL reading the features ``names`` of ``predictions`` rows: (an expression that
        extracts them all, to be selected as ``__fx``; the list columns ``__n`` / ``__t``
        computed from ``__fx``, element ``i`` for ``names[i]``; only ``__n`` without
        ``texts``, only ``__t`` without ``numbers``).

        ``__n[i]`` is a JSON number as a double, ``__t[i]`` the value as text (a JSON
        string or boolean, or a number's JSON text), both NULL when absent. One
        ``json_extract`` with every path parses each row's JSON once: a parse per
        feature and function measured 5.6x slower at 24 features. One lambda over the
        extracted list, not an expression per feature: DuckDB plans per expression, and
        the per-feature form cost ~1.7 ms of planning per feature (256 ms at 50).

        Example:
            >>> con = duckdb.connect()
            >>> extract, columns = FeatureFolding._feature_sql(["x", "b"])
            >>> sql = f"SELECT {columns} FROM (SELECT {extract} AS __fx FROM rows)"
            >>> rows = pa.table({"features": ['{"x": 1.5, "b": true}', '{"x": "a"}']})
            >>> con.sql(sql).fetchall()
            [([1.5, None], ['1.5', 'true']), ([None, None], ['a', None])]
            >>> extract, columns = FeatureFolding._feature_sql(["x", "b"], texts=False)
            >>> con.sql(f"SELECT {columns} FROM (SELECT {extract} AS __fx FROM rows)").fetchall()
            [([1.5, None],), ([None, None],)]
        """
        # JSON paths with the key quoted, so that any key text is addressed literally.
        paths = ", ".join(
            "'" + ("$." + json.dumps(name)).replace("'", "''") + "'" for name in names
        )
        number = "json_type(v) IN ('BIGINT', 'UBIGINT', 'DOUBLE')"
        columns = []
        if numbers:
            columns.append(
                f"list_transform(__fx, lambda v: CASE WHEN {number} THEN CAST(v AS DOUBLE) END)"
                " AS __n"
            )
        if texts:
            columns.append(
                "list_transform(__fx, lambda v: CASE WHEN json_type(v) IN ('VARCHAR', 'BOOLEAN') "
                f"THEN json_extract_string(v, '$') WHEN {number} THEN v::VARCHAR END) AS __t"
            )
        return f"json_extract(features, [{paths}])", ", ".join(columns)

    @staticmethod
    def _numbers(table: pa.Table, i: int) -> NDArray[np.float64]:
        """Feature ``i`` of :meth:`_feature_sql`'s rows as doubles (NaN when absent)."""
        values = pc.list_element(arrow_column(table, "__n"), i)
        return values.to_numpy(zero_copy_only=False).astype(np.float64)

    @staticmethod
    def _texts(table: pa.Table, i: int) -> list[str | None]:
        """Feature ``i`` of :meth:`_feature_sql`'s rows as text (None when absent)."""
        return pc.list_element(arrow_column(table, "__t"), i).to_pylist()

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
            name: (self._numbers(table, i), self._texts(table, i)) for i, name in enumerate(names)
        }

    def _histogram(
        self,
        con: duckdb.DuckDBPyConnection,
        tenant: str,
        model: str,
        bins: Sequence[FeatureBins],
        p0: int,
        p1: int,
        read: pa.Table | None = None,
    ) -> list[pa.Table]:
        """Feature-histogram deltas of the model's predictions with seq in (p0, p1]; from
        ``read`` when given: those predictions (every model's) as the fold read them, with
        ``tenant``, ``model``, ``version``, ``event_time``, ``cohort`` and ``features``."""
        names = [b.feature for b in bins]
        # Each kind's column only when a feature bins by it: the other costs ~0.2 us a value.
        numeric = [b.kind == "numeric" for b in bins]
        extract, columns = self._feature_sql(names, numbers=any(numeric), texts=not all(numeric))
        if read is None:
            table = query_arrow(
                con,
                f"SELECT tenant, model, version, event_time, cohort, {columns} FROM ("
                f"SELECT tenant, model, version, event_time, cohort, seq, {extract} AS __fx "
                "FROM predictions WHERE tenant = ? AND model = ? AND seq > ? AND seq <= ?"
                ") ORDER BY seq",
                [tenant, model, p0, p1],
            )
        else:  # no second scan of the commit's rows: ~3.5 ms per 5,000
            mine = pc.and_(
                pc.equal(arrow_column(read, "tenant"), tenant),
                pc.equal(arrow_column(read, "model"), model),
            )
            picked = read.filter(mine)
            table = picked.select(["tenant", "model", "version", "event_time", "cohort"])
            # DuckDB's replacement scan reads the local ``_xb_features``, in its row order.
            _xb_features = picked.select(["features"])
            values = con.sql(
                f"SELECT {columns} FROM (SELECT {extract} AS __fx FROM _xb_features)"
            ).to_arrow_table()
            for name in values.column_names:
                table = table.append_column(name, values[name])
        if not table.num_rows:
            return []
        rows, keys = self._expand(table, cohorts=self.config.cohort_features)
        group, first = group_ids(list(keys.values()))
        n_groups = first.shape[0]
        key_rows = take_keys(keys, first)
        parts = []
        for i, spec in enumerate(bins):
            if spec.kind == "numeric":
                values = self._numbers(table, i)
            else:
                values = np.array(self._texts(table, i), dtype=object)
            index = spec.index(values)[rows]
            counts = np.bincount(group * spec.n_bins + index, minlength=n_groups * spec.n_bins)
            columns = dict(key_rows)
            columns["feature"] = pa.array([spec.feature] * n_groups, pa.string())
            columns["delta"] = pa.array(np.ones(n_groups, dtype=bool))
            columns["counts"] = dense_list(counts.reshape(n_groups, spec.n_bins), pa.uint32())
            parts.append(pa.table(columns, schema=FEATURE_SCHEMA))
        return parts
