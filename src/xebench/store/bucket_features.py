"""Folding monitored features into ``bucket_features``: learning each feature's bins
from its first values, then histogramming every stored value in them.

:class:`FeatureFolding` is the feature half of :class:`~xebench.store.buckets.Buckets`
(which inherits it): it uses the maintainer's ``config``, its fixed bins and its
expansion of events into (model-wide + cohort) entries.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
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

__all__ = ["FeatureEntries", "FeatureFolding"]


@dataclass(frozen=True)
class FeatureEntries:
    """The feature expansion of a fold's rows (model-wide entries, plus cohort entries
    with ``cohort_features``) and its groups: ``rows[e]`` is entry ``e``'s row,
    ``group[e]`` its group, ``keys`` the key columns of each group.

    The fold computes it once per commit, from the same codes as the score groups
    (:meth:`~xebench.store.buckets.Buckets.fold`).

    Example:
        >>> entries = FeatureEntries(np.array([0, 1]), np.array([0, 0]), {"model": ["m"]})
        >>> entries.group.tolist()
        [0, 0]
    """

    rows: NDArray[np.intp]
    group: NDArray[np.intp]
    keys: dict[str, Any]


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
        self,
        con: duckdb.DuckDBPyConnection,
        table: pa.Table,
        p0: int,
        p1: int,
        entries: FeatureEntries | None = None,
    ) -> None:
        """Fold the feature histograms of the predictions with seq in (p0, p1], whose
        ``tenant``, ``model``, ``version``, ``event_time``, ``cohort`` and ``features``
        are ``table``'s, in seq order; ``entries``: their feature expansion and groups
        when the caller has them (:meth:`feature_entries`).

        One statement reads every binned feature of every model of the commit and the
        feature names (:meth:`_extraction_sql`); the deltas go in with one INSERT
        (each statement costs ~1-2 ms)."""
        models = self._models(table)
        binned = {key: list(self._bins.get(key, {}).values()) for key, _ in models}
        read = self._extract(con, table, binned)
        names = self._fresh_names(read, [key for key, _ in models])
        if entries is None and any(binned.values()):
            entries = self.feature_entries(table)
        parts: list[pa.Table] = []
        for (tenant, model), rows in models:
            bins = self._bins.setdefault((tenant, model), {})
            # Every monitored feature, present in this step or not: an absent value counts
            # in the missing bin (else the counts would depend on how the folds were cut).
            specs = binned[(tenant, model)]
            if specs:
                assert entries is not None
                values = self._slot_values(read, rows, specs)
                parts.extend(self._counts(entries, table.num_rows, rows, specs, values))
            room = self.config.max_features - len(bins)
            fresh = [name for name in names[(tenant, model)] if name not in bins][: max(room, 0)]
            if fresh:
                parts.extend(self._learn(con, tenant, model, fresh, p0, p1))
        if parts:
            insert_deltas(con, "bucket_features", pa.concat_tables(parts))

    def feature_entries(self, table: pa.Table) -> FeatureEntries:
        """The feature expansion of ``table``'s rows and its groups (see
        :class:`FeatureEntries`)."""
        rows, keys = self._expand(table, cohorts=self.config.cohort_features)
        group, first = group_ids(list(keys.values()))
        return FeatureEntries(rows, group, take_keys(keys, first))

    @staticmethod
    def _models(table: pa.Table) -> list[tuple[tuple[str, str], NDArray[np.intp]]]:
        """Each (tenant, model) of ``table`` with its rows, in the order of
        :func:`~xebench.store.bucket_rows.group_ids`.

        Example:
            >>> rows = pa.table({"tenant": ["t", "t", "t"], "model": ["b", "a", "b"]})
            >>> [(key, rows.tolist()) for key, rows in FeatureFolding._models(rows)]
            [(('t', 'b'), [0, 2]), (('t', 'a'), [1])]
        """
        tenant, model = arrow_column(table, "tenant"), arrow_column(table, "model")
        group, first = group_ids([tenant, model])
        keys = zip(tenant.take(first).to_pylist(), model.take(first).to_pylist(), strict=True)
        order = np.argsort(group, kind="stable")
        bounds = np.cumsum(np.bincount(group, minlength=first.shape[0]))[:-1]
        return list(zip(keys, np.split(order, bounds), strict=True))

    @staticmethod
    def _slots(specs: Sequence[FeatureBins]) -> list[tuple[str, int]]:
        """Where each spec's values are in :meth:`_extraction_sql`'s columns: numeric
        features in ``__n``, in order, then categorical ones in ``__t``.

        Example:
            >>> specs = [FeatureBins("a", "categorical", categories=("x",)),
            ...          FeatureBins("b", "numeric", edges=(1.0,))]
            >>> FeatureFolding._slots(specs)
            [('__t', 0), ('__n', 0)]
        """
        numeric = [s for s in specs if s.kind == "numeric"]
        text = [s for s in specs if s.kind != "numeric"]
        where = {id(s): ("__n", i) for i, s in enumerate(numeric)}
        where.update({id(s): ("__t", i) for i, s in enumerate(text)})
        return [where[id(s)] for s in specs]

    @classmethod
    def _extraction_sql(cls, binned: dict[tuple[str, str], list[FeatureBins]]) -> str:
        """SQL over a local Arrow table ``_xb_events`` (``tenant``, ``model``,
        ``features``): ``__keys`` (``json_keys(features)``), and per row the values of
        its model's binned features: ``__n`` the numeric ones as doubles, ``__t`` the
        categorical ones as text, in :meth:`_slots` order (the forms of
        :meth:`_feature_sql`; NULL when absent, and for a model without bins).

        One ``json_extract`` per row with its model's paths (a CASE on the model),
        and each kind's conversion only over its own features: ``__n`` costs ~0.2 us
        a value, ``__t`` ~0.3.

        Example:
            >>> con = duckdb.connect()
            >>> binned = {("t", "m"): [FeatureBins("c", "categorical", categories=("x",)),
            ...                        FeatureBins("a", "numeric", edges=(1.0,))]}
            >>> _xb_events = pa.table({"tenant": ["t", "t"], "model": ["m", "o"],
            ...     "features": ['{"a": 2, "c": "x", "d": 1}', '{"a": 3}']})
            >>> con.sql(FeatureFolding._extraction_sql(binned)).fetchall()
            [(['a', 'c', 'd'], [2.0], ['x']), (['a'], None, None)]
        """
        paths, splits = [], []
        for (tenant, model), specs in binned.items():
            if not specs:
                continue
            ordered = [s for s in specs if s.kind == "numeric"]
            ordered += [s for s in specs if s.kind != "numeric"]
            is_model = f"tenant = {_literal(tenant)} AND model = {_literal(model)}"
            extract, _ = cls._feature_sql([s.feature for s in ordered])
            paths.append(f"WHEN {is_model} THEN {extract}")
            n_numeric = sum(s.kind == "numeric" for s in specs)
            splits.append(f"WHEN {is_model} THEN {n_numeric}")
        if not paths:
            return "SELECT json_keys(features) AS __keys FROM _xb_events"
        numbers, texts = _CONVERT
        return (
            f"SELECT __keys, list_transform(__fx[1:__k], {numbers}) AS __n, "
            f"list_transform(__fx[__k + 1:], {texts}) AS __t FROM ("
            f"SELECT json_keys(features) AS __keys, CASE {' '.join(paths)} END AS __fx, "
            f"CASE {' '.join(splits)} END AS __k FROM _xb_events)"
        )

    def _extract(
        self,
        con: duckdb.DuckDBPyConnection,
        table: pa.Table,
        binned: dict[tuple[str, str], list[FeatureBins]],
    ) -> pa.Table:
        """:meth:`_extraction_sql` over ``table``, in its row order."""
        # DuckDB's replacement scan reads the local ``_xb_events``, in its row order.
        _xb_events = table.select(["tenant", "model", "features"])
        read = con.sql(self._extraction_sql(binned)).to_arrow_table()
        for name in ("model", "tenant"):
            read = read.add_column(0, name, arrow_column(table, name))
        return read

    def _slot_values(
        self, read: pa.Table, rows: NDArray[np.intp], specs: Sequence[FeatureBins]
    ) -> list[NDArray[np.float64] | pa.Array]:
        """The values of each spec at ``rows`` of :meth:`_extract`'s table: doubles (NaN
        when absent) for numeric features, text (null when absent) for the others."""
        columns = {
            name: arrow_column(read, name).take(pa.array(rows))
            for name in {slot for slot, _ in self._slots(specs)}
        }
        return [
            self._numbers_of(columns[slot], i)
            if slot == "__n"
            else self._texts_of(columns[slot], i)
            for slot, i in self._slots(specs)
        ]

    @staticmethod
    def _numbers_of(lists: pa.Array, i: int) -> NDArray[np.float64]:
        return pc.list_element(lists, i).to_numpy(zero_copy_only=False).astype(np.float64)

    @staticmethod
    def _texts_of(lists: pa.Array, i: int) -> pa.Array:
        return pc.list_element(lists, i)

    def _counts(
        self,
        entries: FeatureEntries,
        n_rows: int,
        rows: NDArray[np.intp],
        specs: Sequence[FeatureBins],
        values: Sequence[NDArray[np.float64] | pa.Array],
    ) -> list[pa.Table]:
        """Histogram deltas, one table per spec, of the entries of ``entries`` whose row
        is in ``rows`` (one model's rows of a table of ``n_rows``); ``values[k]``: spec
        ``k``'s value at each of ``rows``."""
        position = np.full(n_rows, -1, dtype=np.intp)
        position[rows] = np.arange(rows.shape[0])
        mine = np.flatnonzero(position[entries.rows] >= 0)
        groups, group = np.unique(entries.group[mine], return_inverse=True)
        n_groups = groups.shape[0]
        key_rows = take_keys(entries.keys, groups)
        at = position[entries.rows[mine]]
        parts = []
        for spec, column in zip(specs, values, strict=True):
            bin_of = (
                spec.index(column) if isinstance(column, np.ndarray) else spec.index_texts(column)
            )
            counts = np.bincount(group * spec.n_bins + bin_of[at], minlength=n_groups * spec.n_bins)
            table = dict(key_rows)
            table["feature"] = pa.repeat(pa.scalar(spec.feature, pa.string()), n_groups)
            table["delta"] = pa.array(np.ones(n_groups, dtype=bool))
            table["counts"] = dense_list(counts.reshape(n_groups, spec.n_bins), pa.uint32())
            parts.append(pa.table(table, schema=FEATURE_SCHEMA))
        return parts

    def _fresh_names(
        self, read: pa.Table, models: list[tuple[str, str]]
    ) -> dict[tuple[str, str], list[str]]:
        """:meth:`_feature_names` of ``read`` (its ``tenant``, ``model`` and ``__keys``),
        or an empty list per model when no model has a name to learn: every name present
        is binned already, or the model has no room (the usual commit, ~0.3 ms)."""
        distinct = set(pc.unique(pc.list_flatten(arrow_column(read, "__keys"))).to_pylist())
        distinct.discard(None)
        settled = all(
            distinct <= self._bins.get(key, {}).keys()
            or len(self._bins.get(key, {})) >= self.config.max_features
            for key in models
        )
        if settled:
            return {key: [] for key in models}
        return self._feature_names(read)

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
        numbers_of, texts_of = _CONVERT
        columns = []
        if numbers:
            columns.append(f"list_transform(__fx, {numbers_of}) AS __n")
        if texts:
            columns.append(f"list_transform(__fx, {texts_of}) AS __t")
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
    ) -> list[pa.Table]:
        """Feature-histogram deltas of the model's stored predictions with seq in (p0, p1]
        (when its bins are learned: a one-time scan)."""
        names = [b.feature for b in bins]
        # Each kind's column only when a feature bins by it: the other costs ~0.2 us a value.
        numeric = [b.kind == "numeric" for b in bins]
        extract, columns = self._feature_sql(names, numbers=any(numeric), texts=not all(numeric))
        table = query_arrow(
            con,
            f"SELECT tenant, model, version, event_time, cohort, {columns} FROM ("
            f"SELECT tenant, model, version, event_time, cohort, seq, rowid, {extract} AS __fx "
            "FROM predictions WHERE tenant = ? AND model = ? AND seq > ? AND seq <= ?"
            ") ORDER BY seq, rowid",
            [tenant, model, p0, p1],
        )
        if not table.num_rows:
            return []
        values = [
            self._numbers(table, i) if spec.kind == "numeric" else self._texts_of(table["__t"], i)
            for i, spec in enumerate(bins)
        ]
        rows = np.arange(table.num_rows)
        return self._counts(self.feature_entries(table), table.num_rows, rows, bins, values)


#: The conversions of :meth:`FeatureFolding._feature_sql`, as lambdas over JSON values:
#: a JSON number as a double; a JSON string or boolean as text, a number as its JSON text.
_NUMBER = "json_type(v) IN ('BIGINT', 'UBIGINT', 'DOUBLE')"
_CONVERT = (
    f"lambda v: CASE WHEN {_NUMBER} THEN CAST(v AS DOUBLE) END",
    "lambda v: CASE WHEN json_type(v) IN ('VARCHAR', 'BOOLEAN') "
    f"THEN json_extract_string(v, '$') WHEN {_NUMBER} THEN v::VARCHAR END",
)


def _literal(text: str) -> str:
    """``text`` as a SQL string literal.

    Example:
        >>> _literal("it's")
        "'it''s'"
    """
    return "'" + text.replace("'", "''") + "'"
