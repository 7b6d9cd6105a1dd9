"""The ingest rules against hostile values, below HTTP: the field rules, the repeated-key
and lone-surrogate checks of a body, and events from dicts (``xebench ingest``), which can
hold what JSON cannot (a lone surrogate, an integer of 5,000 digits)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xebench.errors import BatchError, InvalidInputError
from xebench.ingest.batch import duplicate_keys, key_count
from xebench.ingest.events import Limits, parse_labels, parse_predictions
from xebench.ingest.fields import EARLIEST, check_probabilities, check_timestamp

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def first_error(rows: Any, labels: bool = False) -> dict[str, Any]:
    parse = parse_labels if labels else parse_predictions
    with pytest.raises(BatchError) as caught:
        parse(rows, tenant="t")
    assert caught.value.status == 422
    return caught.value.errors[0]


@pytest.mark.parametrize(
    ("row", "field", "words"),
    [
        ({"request_id": "\ud800"}, "/0/request_id", "valid string"),
        ({"model": "m\udfff"}, "/0/model", "valid string"),
        ({"features": {"f": "\ud800"}}, "/0/features/f", "lone surrogate"),
        ({"cohort": {"c": "\ud800"}}, "/0/cohort/c", "lone surrogate"),
        ({"probabilities": {"\ud800": 1.0, "b": 0.0}}, "/0/probabilities/\\ud800", "class name"),
        ({"features": {"f": 10**5000}}, "/0/features/f", "got an integer of 5001 digits"),
        ({"probabilities": 10**5000}, "/0/probabilities", "got an integer of 5001 digits"),
        ({"probabilities": [2**64, 0]}, "/0/probabilities/0", "must be in [0, 1]"),
        ({"cohort": {"c": -(2**63) - 1}}, "/0/cohort/c", "signed 64-bit range"),
        ({"classes": ["a", "a"]}, "/0/classes", "distinct"),
        ({"timestamp": datetime(1, 1, 1, tzinfo=UTC)}, "/0/timestamp", "before 1970-01-01"),
    ],
)
def test_dict_events_with_what_json_cannot_carry_are_refused_by_field(
    row: dict[str, Any], field: str, words: str
) -> None:
    event = {"request_id": "r", "model": "m", "probabilities": 0.5, **row}
    error = first_error([event])
    assert error["field"] == field
    assert words in error["message"]
    json.dumps(error, ensure_ascii=False).encode()  # an answer can carry it


def test_labels_from_dicts_obey_the_same_text_and_integer_rules() -> None:
    assert first_error([{"request_id": "r", "label": "\udc00"}], labels=True)["field"] == "/0/label"
    assert "64-bit" in first_error([{"request_id": "r", "label": 2**70}], labels=True)["message"]
    table = parse_labels([{"request_id": "r", "label": 2**63 - 1}], tenant="t")
    assert table["label"].to_pylist() == [str(2**63 - 1)]


def test_the_limits_themselves_are_accepted() -> None:
    table = parse_predictions(
        [
            {
                "request_id": "r" * 256,
                "model": "m",
                "probabilities": 1,
                "cohort": {"c": "v" * 256, "n": -(2**63)},
                "features": {"f": "x" * 1024, "i": 2**63 - 1, "z": -0.0},
                "timestamp": "1970-01-01T00:00:00Z",
            }
        ],
        tenant="t",
    )
    assert table["event_time"][0].as_py() == EARLIEST
    assert table["probabilities"][0].as_py() == [0.0, 1.0]
    assert json.loads(table["features"][0].as_py())["z"] == 0.0
    assert "-0.0" not in table["features"][0].as_py()


def test_check_probabilities_never_converts_a_huge_integer() -> None:
    with pytest.raises(InvalidInputError, match="integer of 401 digits"):
        check_probabilities(10**400, None, Limits())
    assert check_probabilities(-0.0, None, Limits())[1] == [1.0, 0.0]


@pytest.mark.parametrize(
    "text", ["0001-01-01T00:00:00+01:00", "0001-01-01T00:00:00+00:00", "1969-12-31T23:59:59+00:00"]
)
def test_timestamps_before_the_epoch_are_refused(text: str) -> None:
    with pytest.raises(InvalidInputError, match="before 1970-01-01") as caught:
        check_timestamp(datetime.fromisoformat(text), NOW, Limits())
    assert caught.value.argument == "/timestamp"


def test_year_9999_at_a_negative_offset_is_too_far_ahead_not_an_overflow() -> None:
    with pytest.raises(InvalidInputError, match="ahead of the server clock"):
        check_timestamp(datetime.fromisoformat("9999-12-31T23:59:59-01:00"), NOW, Limits())


# --- repeated keys: the cheap count and the exact check agree ------------------------


def members(value: Any) -> int:
    if isinstance(value, dict):
        return len(value) + sum(members(v) for v in value.values())
    if isinstance(value, list):
        return sum(members(v) for v in value)
    return 0


keys = st.sampled_from(["a", "b", 'q":', "c d", "\\"])
scalars = st.one_of(st.integers(), st.sampled_from(['x":y', "a\\", " : ", "\n"]), st.none())
trees = st.recursive(
    scalars,
    lambda inner: st.lists(st.tuples(keys, inner), max_size=4) | st.lists(inner, max_size=3),
    max_leaves=12,
)


def render(tree: Any, spaced: bool) -> str:
    """JSON text of a tree whose objects are lists of (key, value) pairs (keys may repeat)."""
    if isinstance(tree, list) and tree and isinstance(tree[0], tuple):
        colon = " : " if spaced else ":"
        return "{" + ",".join(json.dumps(k) + colon + render(v, spaced) for k, v in tree) + "}"
    if isinstance(tree, list):
        return "[" + ",".join(render(v, spaced) for v in tree) + "]"
    return json.dumps(tree)


def repeats(tree: Any) -> bool:
    if isinstance(tree, list) and tree and isinstance(tree[0], tuple):
        names = [k for k, _ in tree]
        return len(set(names)) < len(names) or any(repeats(v) for _, v in tree)
    return isinstance(tree, list) and any(repeats(v) for v in tree)


@settings(max_examples=300, deadline=None)
@given(trees=st.lists(trees, min_size=1, max_size=3), spaced=st.booleans())
def test_key_count_never_hides_a_repeated_key(trees: list[Any], spaced: bool) -> None:
    body = ("[" + ",".join(render(t, spaced) for t in trees) + "]").encode()
    parsed = json.loads(body)
    found = duplicate_keys(body)
    assert found is not None
    assert bool(found) == any(repeats(t) for t in trees)
    if key_count(body) == members(parsed):  # the fast path's "no repeated key"
        assert not found


def test_duplicate_keys_points_at_each_event_and_nested_object() -> None:
    body = b'[{"a": 1}, {"f": {"x": 1, "x": 2}}, {"b": 1, "b": 2}]'
    assert duplicate_keys(body) == [
        (1, "/1/f/x", "repeats the key 'x' in one object"),
        (2, "/2/b", "repeats the key 'b' in one object"),
    ]
    assert duplicate_keys(b'{"a": 1}\n\n{"a": 1, "a": 1}\n', ndjson=True) == [
        (1, "/1/a", "repeats the key 'a' in one object")
    ]
    assert duplicate_keys(b"[1, 2") is None
