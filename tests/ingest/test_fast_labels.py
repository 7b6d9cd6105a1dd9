"""The fast columnar path for label batches against the per-event (pydantic) path.

The per-event path is the reference. For every body hypothesis makes (valid
events, labels of every JSON type, integers beyond 64 bits, floats, odd
Unicode, bad timestamps, duplicate keys, unknown fields, NDJSON and arrays)
and every answer of the store's known classes, the fast path must either
decline (None) or return exactly the table the per-event path returns: same
columns, fingerprints and payload hashes, and the same questions asked of the
store.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from event_strategies import TEXT, stamps
from xebench.errors import BatchError
from xebench.ingest.fast_labels import fast_label_table
from xebench.ingest.labels import label_table, parse_labels
from xebench.ingest.policy import Limits
from xebench.store.schema import LABEL_SCHEMA, fingerprint, hash64

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)

MODELS = ["fraud", "ctr", "m-1.v2", "a/b@c+d:e", "Ünï", "a b", "", "x" * 129, "m\n"]
POOL = ["0", "1", "cat", "dog", "7", "-1", "True"]
LABEL = st.one_of(
    TEXT,
    st.floats(),
    st.sampled_from(POOL),
    st.integers(-(2**63), 2**63 - 1),
    st.booleans(),
    st.sampled_from(
        [
            0,
            1,
            7,
            -1,
            -0,
            2**63 - 1,
            -(2**63),
            2**63,
            -(2**63) - 1,
            10**400,
            1.0,
            0.0,
            -0.0,
            1.5,
            1e16,
            None,
            [1],
            {"a": 1},
            "x" * 256,
            'a":b',
            "\u2028",
            "\u00a0",
        ]
    ),
)
CORRECTION = st.sampled_from([True, False, True, False, None, 1, 0, "true"])


@st.composite
def events(draw: st.DrawFn) -> dict[str, Any]:
    out: dict[str, Any] = {
        "request_id": draw(st.one_of(st.from_regex(r"r[0-9]{1,6}", fullmatch=True), TEXT)),
        "label": draw(LABEL),
    }
    if draw(st.booleans()):
        out["model"] = draw(st.one_of(st.sampled_from(MODELS), st.none()))
    if draw(st.booleans()):
        out["timestamp"] = draw(stamps())
    if draw(st.integers(0, 2)) == 0:
        out["correction"] = draw(CORRECTION)
    if draw(st.integers(0, 30)) == 0:
        out["labels"] = 1  # an unknown field
    if draw(st.booleans()):  # the keys in another order
        out = dict(reversed(list(out.items())))
    return out


@st.composite
def clean(draw: st.DrawFn, one: dict[str, Any]) -> dict[str, Any]:
    """The common case: every field valid (so that many batches do take the fast path);
    which fields are sent, the label's type and the key order still drawn."""
    out = {
        **{k: v for k, v in one.items() if k != "labels"},
        "request_id": f"r{draw(st.integers(0, 10**6))}",
        "label": draw(st.sampled_from([0, 1, True, False, "cat", "dog", 7, "1", -1])),
    }
    if "model" in out:
        out["model"] = draw(st.sampled_from(["fraud", "ctr", None]))
    if "timestamp" in out:
        out["timestamp"] = "2026-06-01T11:59:00.125Z"
    if "correction" in out:
        out["correction"] = draw(st.booleans())
    return out


@st.composite
def bodies(draw: st.DrawFn) -> tuple[bytes, bool]:
    batch = draw(st.lists(events(), min_size=1, max_size=6))
    mode = draw(st.integers(0, 2))
    if mode:
        raw = batch
        batch = [draw(clean(e)) for e in raw]
        if mode == 2:  # one field of one event as drawn: a hostile value among valid ones
            i = draw(st.integers(0, len(batch) - 1))
            field = draw(st.sampled_from(sorted(raw[i])))
            batch[i][field] = raw[i][field]
    style = draw(st.integers(0, 4))
    separators = [(",", ":"), (", ", ": "), (",", ":"), (",", " : ")][draw(st.integers(0, 3))]

    def dump(value: Any) -> str:
        return json.dumps(value, separators=separators, ensure_ascii=draw(st.booleans()))

    if style == 0:  # NDJSON, with blank lines and CRLF sometimes
        end = draw(st.sampled_from(["\n", "\r\n", "\n\n"]))
        text = end.join(dump(e) for e in batch) + end
        ndjson = True
    elif style == 1 and len(batch) == 1:
        text, ndjson = dump(batch[0]), False
    else:
        text, ndjson = dump(batch), False
    hostile = draw(st.integers(0, 11))
    if hostile == 0:  # a duplicate key, which both decoders let the last win
        text = text.replace('"label":', '"label":"dup","label":', 1)
    elif hostile == 1:
        text = text.replace('"request_id":', '"model":"fraud","request_id":', 1)
    elif hostile == 2:  # two events on one NDJSON line, or a trailing comma
        text = text.replace("}", "},", 1)
    return text.encode("utf-8", "surrogatepass"), ndjson


class Store:
    """``known_labels`` as the service's store answers it, recording the questions."""

    def __init__(self, known: dict[str | None, set[str] | None], default: set[str] | None):
        self.known, self.default, self.asked = known, default, list[str | None]()

    def __call__(self, model: str | None) -> set[str] | None:
        self.asked.append(model)
        return self.known.get(model, self.default)


KNOWN = st.one_of(
    st.none(), st.sets(st.sampled_from(POOL), max_size=4), st.just({"0", "1"}), st.just(set(POOL))
)
STORES = st.one_of(
    st.none(),
    st.builds(
        Store,
        st.dictionaries(st.sampled_from([None, "fraud", "ctr"]), KNOWN, max_size=3),
        KNOWN,
    ),
)


def _slow(
    body: bytes, ndjson: bool, known: Callable[[str | None], set[str] | None] | None
) -> pa.Table | Exception:
    try:
        return parse_labels(body, tenant="acme", ndjson=ndjson, known_labels=known, now=NOW)
    except Exception as error:  # BatchError; anything else is the per-event path's bug
        return error


def _fresh(store: Store | None) -> Store | None:
    return None if store is None else Store(store.known, store.default)


@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bodies(), STORES)
def test_the_fast_path_accepts_only_what_the_per_event_path_accepts_and_builds_the_same_table(
    case: tuple[bytes, bool], store: Store | None
) -> None:
    body, ndjson = case
    fast_store, slow_store = _fresh(store), _fresh(store)
    fast = fast_label_table(body, tenant="acme", ndjson=ndjson, known_labels=fast_store, now=NOW)
    slow = _slow(body, ndjson, slow_store)
    event("fast path" if fast is not None else "per-event path")
    if isinstance(slow, Exception):
        assert isinstance(slow, BatchError), repr(slow)  # never anything but a 4xx
    if fast is not None:
        assert isinstance(slow, pa.Table), slow
        assert fast.schema == slow.schema == LABEL_SCHEMA
        for name in slow.column_names:
            assert fast[name].to_pylist() == slow[name].to_pylist(), name
        assert fast.equals(slow)
        # The store was asked the same questions, in the same order: once per model.
        if fast_store is not None and slow_store is not None:
            assert fast_store.asked == slow_store.asked
            assert len(set(fast_store.asked)) == len(fast_store.asked)


@settings(max_examples=100, deadline=None)
@given(bodies(), STORES)
def test_label_table_answers_as_the_per_event_path_does(
    case: tuple[bytes, bool], store: Store | None
) -> None:
    body, ndjson = case
    slow = _slow(body, ndjson, _fresh(store))
    asked = _fresh(store)
    try:
        table = label_table(body, tenant="acme", ndjson=ndjson, known_labels=asked, now=NOW)
    except BatchError as error:
        assert isinstance(slow, BatchError), slow
        assert (error.status, error.errors, str(error)) == (slow.status, slow.errors, str(slow))
    else:
        assert isinstance(slow, pa.Table) and table.equals(slow)
    if asked is not None:  # whichever path answered, each model was looked up once
        assert len(set(asked.asked)) == len(asked.asked)


def _typical(n: int) -> list[dict[str, Any]]:
    return [
        {
            "request_id": f"b{i:07d}",
            "model": "fraud",
            "label": i % 2,
            "timestamp": f"2026-06-01T11:{i % 60:02d}:{i % 59:02d}.{i % 1000:03d}Z",
        }
        for i in range(n)
    ]


@pytest.mark.parametrize("ndjson", [False, True])
def test_a_typical_batch_takes_the_fast_path_with_independently_computed_columns(
    ndjson: bool,
) -> None:
    batch = _typical(500)
    if ndjson:
        body = "\n".join(json.dumps(e, separators=(",", ":")) for e in batch).encode()
    else:
        body = json.dumps(batch, separators=(",", ":")).encode()
    store = Store({}, {"0", "1"})
    fast = fast_label_table(body, tenant="acme", ndjson=ndjson, known_labels=store, now=NOW)
    assert fast is not None and fast.num_rows == 500
    assert store.asked == ["fraud"]
    assert fast.equals(parse_labels(body, tenant="acme", ndjson=ndjson, now=NOW))
    # The columns, computed here from the events themselves.
    stamp = [datetime.fromisoformat(e["timestamp"]) for e in batch]
    sent = [(t - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1) for t in stamp]
    assert fast["fp"].to_pylist() == [fingerprint("acme", "fraud", e["request_id"]) for e in batch]
    assert fast["label"].to_pylist() == [str(i % 2) for i in range(500)]
    assert fast["event_time"].to_pylist() == stamp
    assert fast["ingest_time"].to_pylist() == [NOW] * 500
    assert fast["payload_hash"].to_pylist() == [
        hash64(f'["{i % 2}",{s}]'.encode()) for i, s in enumerate(sent)
    ]
    assert fast["correction"].to_pylist() == [False] * 500


def test_labels_without_a_model_booleans_and_corrections_take_the_fast_path() -> None:
    body = json.dumps(
        [
            {"request_id": "r1", "label": True},
            {"request_id": "r2", "label": False, "model": None, "correction": True},
            {"request_id": "r3", "label": "chargeback", "model": "fraud", "timestamp": None},
            {"request_id": "r4", "label": -(2**63), "timestamp": "2026-06-01T13:30:00.5+02:00"},
        ]
    ).encode()
    store = Store({None: {"0", "1", str(-(2**63))}, "fraud": {"chargeback"}}, None)
    fast = fast_label_table(body, tenant="acme", known_labels=store, now=NOW)
    assert fast is not None
    assert store.asked == [None, "fraud"]
    assert fast.equals(parse_labels(body, tenant="acme", now=NOW))
    assert fast["model"].to_pylist() == ["", "", "fraud", ""]
    assert fast["label"].to_pylist() == ["1", "0", "chargeback", "-9223372036854775808"]
    assert fast["correction"].to_pylist() == [False, True, False, False]
    assert fast["event_time"][3].as_py() == datetime(2026, 6, 1, 11, 30, 0, 500000, tzinfo=UTC)
    assert fast["fp"][0].as_py() == fingerprint("acme", "", "r1")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b'[{"request_id":"r1","label":1.0}]', "/0/label"),
        (b'[{"request_id":"r1","label":1e2}]', "/0/label"),
        (b'[{"request_id":"r1","label":9223372036854775808}]', "/0/label"),
        (b'[{"request_id":"r1","label":"' + b"9" * 400 + b'"},{"request_id":"r2","label":""}]',
         "/0/label"),
        (b'[{"request_id":"r1","label":null}]', "/0/label"),
        (b'[{"request_id":"r1","label":"a\\u202eb"}]', "/0/label"),
        (b'[{"request_id":"r1","label":"\\ud800"}]', "/0/label"),
        (b'[{"request_id":"r1","label":1,"label":2}]', "/0/label"),
        (b'[{"request_id":"r1","label":1,"correction":1}]', "/0/correction"),
        (b'[{"request_id":"r1","label":1,"model":"a b"}]', "/0/model"),
        (b'[{"request_id":"r1","label":1,"timestamp":"0001-01-01T00:00:00+01:00"}]',
         "/0/timestamp"),
        (b'[{"request_id":"r1","label":1,"timestamp":"9999-12-31T23:59:59-01:00"}]',
         "/0/timestamp"),
        (b'[{"request_id":"r1","label":1,"timestamp":"2026-06-01T14:00:00Z"}]', "/0/timestamp"),
    ],
)  # fmt: skip
def test_bad_labels_are_left_to_the_per_event_path_which_names_the_field(
    body: bytes, field: str
) -> None:
    assert fast_label_table(body, tenant="acme", now=NOW) is None
    with pytest.raises(BatchError) as caught:
        label_table(body, tenant="acme", now=NOW)
    assert caught.value.status == 422
    assert caught.value.errors[0]["field"] == field


def test_a_label_outside_the_known_classes_is_worded_by_the_per_event_path() -> None:
    body = json.dumps(
        [{"request_id": f"r{i}", "model": "fraud", "label": ["0", "1", "fox"][i % 3]}
         for i in range(6)]
    ).encode()  # fmt: skip
    store = Store({"fraud": {"0", "1"}}, None)
    assert fast_label_table(body, tenant="acme", known_labels=store, now=NOW) is None
    store = Store({"fraud": {"0", "1"}}, None)
    with pytest.raises(BatchError) as caught:
        label_table(body, tenant="acme", known_labels=store, now=NOW)
    assert [e["field"] for e in caught.value.errors] == ["/2/label", "/5/label"]
    assert caught.value.errors[0]["message"] == (
        "label 'fox' is not a class of model 'fraud' (classes: 0, 1)"
    )
    assert store.asked == ["fraud"]  # both paths ran, the store was asked once


def test_the_batch_limits_are_left_to_the_per_event_path() -> None:
    body = json.dumps(_typical(3)).encode()
    assert fast_label_table(body, tenant="acme", now=NOW, limits=Limits(max_events=2)) is None
    assert fast_label_table(b"[]", tenant="acme", now=NOW) is None
    with pytest.raises(BatchError) as caught:
        label_table(body, tenant="acme", now=NOW, limits=Limits(max_events=2))
    assert caught.value.status == 413
