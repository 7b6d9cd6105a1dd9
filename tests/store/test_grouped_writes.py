"""Batches checked together (store.write_runs) decide exactly what batch-by-batch checks do.

A write call checks all its batches of one kind at once and stores the
clean ones without a check of their own. The reference is the batch-by-batch path
(``Writes._grouped = False``): random calls -- predictions and labels mixed,
duplicates within and across batches and against committed rows, payload and
class-list conflicts, model-less labels, corrections -- must give the same outcomes
and leave the same rows in every event table.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xebench.ingest.events import parse_labels, parse_predictions
from xebench.store import EventBatch, EventStore
from xebench.store.schema import LABEL_SCHEMA, PREDICTION_SCHEMA
from xebench.store.write_runs import class_combos, classes_clean, concat, repeats_earlier

T0 = datetime.now(UTC) - timedelta(minutes=5)
IDS = [f"r{i}" for i in range(10)]

# (model, request_id, version, classes, p): classes None is the binary default ["0", "1"].
predictions = st.tuples(
    st.sampled_from(["m1", "m2"]),
    st.sampled_from(IDS),
    st.sampled_from(["v1", "v2"]),
    st.sampled_from([None, None, None, ("no", "yes")]),
    st.sampled_from([0.2, 0.7]),
)
# (model, request_id, label, correction): model "" is a label that names no model.
labels = st.tuples(
    st.sampled_from(["m1", "m2", ""]),
    st.sampled_from(IDS),
    st.sampled_from(["0", "1"]),
    st.sampled_from([False, False, True]),
)
batches = st.one_of(
    st.tuples(st.just("predictions"), st.lists(predictions, max_size=4)),
    st.tuples(st.just("labels"), st.lists(labels, max_size=4)),
)
calls = st.lists(st.lists(batches, min_size=1, max_size=7), min_size=1, max_size=3)


def _table(kind: str, events: Sequence[tuple[Any, ...]]) -> pa.Table:
    if not events:
        return (PREDICTION_SCHEMA if kind == "predictions" else LABEL_SCHEMA).empty_table()
    stamp = T0.isoformat()  # the same for every batch: a resent event is a duplicate
    if kind == "predictions":
        rows = [
            {"request_id": r, "model": m, "version": v, "probabilities": p, "timestamp": stamp}
            | ({} if classes is None else {"classes": list(classes)})
            for m, r, v, classes, p in events
        ]
        return parse_predictions(rows, tenant="t")
    rows = [
        {"request_id": r, "label": value, "timestamp": stamp, "correction": fix}
        | ({"model": m} if m else {})
        for m, r, value, fix in events
    ]
    return parse_labels(rows, tenant="t")


def _contents(store: EventStore) -> dict[str, list[tuple[Any, ...]]]:
    tables = {
        "predictions": "*",
        "labels": "*",
        "pending_labels": "*",
        "label_history": "* EXCLUDE (replaced_at)",
    }
    with store.cursor() as cursor:
        return {
            name: cursor.execute(f"SELECT {columns} FROM {name} ORDER BY rowid").fetchall()
            for name, columns in tables.items()
        }


@pytest.mark.parametrize(
    "bounds",
    [
        {"filter_bytes": 1 << 16, "recent_keys": 1 << 10},  # memory settles almost every key
        {"filter_bytes": 64, "recent_keys": 2},  # saturated filter: the store settles them
    ],
    ids=["roomy", "tiny"],
)
@settings(max_examples=60, deadline=None)
@given(calls=calls)
def test_grouped_writes_decide_what_batch_by_batch_writes_do(
    bounds: dict[str, int], calls: list[list[tuple[str, list[tuple[Any, ...]]]]]
) -> None:
    grouped, reference = EventStore(":memory:", **bounds), EventStore(":memory:", **bounds)
    reference._writes._grouped = False
    try:
        for call in calls:
            written = [EventBatch(kind, _table(kind, events)) for kind, events in call]
            assert grouped.write(written) == reference.write(written)
        assert _contents(grouped) == _contents(reference)
        ours, theirs = grouped._writes, reference._writes
        assert (ours.class_list, ours.classes, ours.seq) == (
            theirs.class_list,
            theirs.classes,
            theirs.seq,
        )
    finally:
        grouped.close()
        reference.close()


def test_a_run_of_clean_batches_skips_the_per_batch_checks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = EventStore(":memory:", filter_bytes=1 << 16)
    writes = store._writes

    def refuse(*args: Any) -> None:
        raise AssertionError("a clean batch went through the per-batch path")

    monkeypatch.setattr(writes, "_write_predictions", refuse)
    monkeypatch.setattr(writes, "_write_labels", refuse)
    first = _table("predictions", [("m1", "a", "v1", None, 0.2)])
    second = _table("predictions", [("m1", "b", "v1", None, 0.7), ("m2", "a", "v1", None, 0.2)])
    label = _table("labels", [("m1", "a", "1", False), ("", "zz", "0", False)])
    run = [("predictions", first), ("predictions", second), ("labels", label)]
    outcomes = store.write([EventBatch(kind, table) for kind, table in run])
    assert [(o.inserted, o.duplicates, o.pending, o.joined) for o in outcomes] == [
        (1, 0, 0, 0),
        (2, 0, 0, 0),
        (2, 0, 1, 1),
    ]
    with store.cursor() as cursor:
        assert cursor.execute("SELECT count(*) FROM predictions").fetchone() == (3,)
        assert cursor.execute("SELECT request_id FROM pending_labels").fetchall() == [("zz",)]
    store.close()


def test_interleaved_clean_batches_join_what_came_earlier_in_the_call(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = EventStore(":memory:", filter_bytes=1 << 16)

    def refuse(*args: Any) -> None:
        raise AssertionError("a clean batch went through the per-batch path")

    monkeypatch.setattr(store._writes, "_write_predictions", refuse)
    monkeypatch.setattr(store._writes, "_write_labels", refuse)
    run = [
        ("predictions", [("m1", "a", "v1", None, 0.2)]),
        ("labels", [("m1", "a", "1", False), ("", "b", "0", False)]),  # a joins, b waits
        ("predictions", [("m2", "b", "v1", None, 0.7)]),  # b's model-less label is earlier
        ("labels", [("", "c", "1", False)]),
        ("predictions", [("m1", "d", "v1", None, 0.7)]),
    ]
    outcomes = store.write([EventBatch(kind, _table(kind, events)) for kind, events in run])
    assert [(o.inserted, o.pending, o.joined) for o in outcomes] == [
        (1, 0, 0),
        (2, 1, 1),
        (1, 0, 1),
        (1, 1, 0),
        (1, 0, 0),
    ]
    with store.cursor() as cursor:  # b's pending label was released by its prediction
        assert cursor.execute("SELECT request_id FROM pending_labels").fetchall() == [("c",)]
    store.close()


def test_a_duplicate_in_a_run_falls_back_for_its_batch_only() -> None:
    store = EventStore(":memory:", filter_bytes=1 << 16)
    one = _table("predictions", [("m1", "a", "v1", None, 0.2)])
    changed = _table("predictions", [("m1", "a", "v1", None, 0.7)])
    other = _table("predictions", [("m1", "b", "v1", None, 0.7)])
    outcomes = store.write([EventBatch("predictions", t) for t in (one, one, changed, other)])
    assert [(o.inserted, o.duplicates, len(o.conflicts)) for o in outcomes] == [
        (1, 0, 0),
        (0, 1, 0),
        (0, 0, 1),
        (1, 0, 0),
    ]
    store.close()


def test_a_label_corrected_earlier_in_the_call_and_resent_is_a_duplicate() -> None:
    store = EventStore(":memory:", filter_bytes=1 << 16)
    first = _table("labels", [("m1", "a", "0", False)])
    fix = _table("labels", [("m1", "a", "1", True)])
    again = _table("labels", [("m1", "a", "1", False), ("m1", "b", "1", False)])
    outcomes = store.write([EventBatch("labels", t) for t in (first, fix, again)])
    assert [(o.inserted, o.duplicates, len(o.conflicts), o.corrected) for o in outcomes] == [
        (1, 0, 0, 0),
        (0, 0, 0, 1),
        (1, 1, 0, 0),
    ]
    with store.cursor() as cursor:
        assert cursor.execute("SELECT request_id, label FROM labels ORDER BY 1").fetchall() == [
            ("a", "1"),
            ("b", "1"),
        ]
    store.close()


@given(st.lists(st.integers(0, 6), max_size=30))
def test_repeats_earlier_marks_every_occurrence_after_the_first(keys: list[int]) -> None:
    expected = [key in keys[:i] for i, key in enumerate(keys)]
    assert repeats_earlier(np.array(keys, dtype=np.int64)).tolist() == expected


@given(
    st.lists(
        st.lists(
            st.tuples(
                st.sampled_from(["m1", "m2"]),
                st.sampled_from(["v1", "v2"]),
                st.sampled_from([("0", "1"), ("no", "yes"), ("0", "1", "2"), ("01",)]),
            ),
            max_size=4,
        ),
        min_size=1,
        max_size=5,
    )
)
def test_class_combos_are_each_batchs_distinct_version_and_list(
    batches: list[list[tuple[str, str, tuple[str, ...]]]],
) -> None:
    tables = [
        pa.table(
            {
                "tenant": pa.array(["t"] * len(rows), pa.string()),
                "model": pa.array([m for m, _, _ in rows], pa.string()),
                "version": pa.array([v for _, v, _ in rows], pa.string()),
                "classes": pa.array([list(c) for _, _, c in rows], pa.list_(pa.string())),
            }
        )
        for rows in batches
    ]
    joined = concat(tables)
    assert joined is not None
    combos = class_combos(*joined)
    assert combos is not None
    expected = [{(("t", m, v), c) for m, v, c in rows} for rows in batches]
    assert [set(found) for found in combos] == expected
    assert all(len(found) == len(set(found)) for found in combos)


def test_class_combos_give_up_when_a_class_holds_the_separator() -> None:
    table = pa.table(
        {
            "tenant": ["t", "t"],
            "model": ["m", "m"],
            "version": ["", ""],
            "classes": [["a\x1fb", "c"], ["a", "b\x1fc"]],
        }
    )
    assert class_combos(table, np.array([0, 2])) is None


def test_classes_clean_whatever_the_earlier_batches_stored() -> None:
    v1, v2 = ("t", "m", "v1"), ("t", "m", "v2")
    binary, named = ("0", "1"), ("no", "yes")
    # v1 is known: only its list is clean. v2 is not: an earlier batch of the run with
    # another list may be stored first (or not), so a later batch is not clean either way.
    combos = [[(v1, binary)], [(v1, named)], [(v2, named)], [(v2, binary)], [(v2, named)]]
    assert classes_clean(combos, {v1: binary}) == [True, False, True, False, False]
    assert concat([pa.table({"x": [1]}), pa.table({"x": [1.0]})]) is None
