"""The fast columnar path for prediction batches against the per-event (pydantic) path.

The per-event path is the reference. For every body hypothesis makes (valid
events, bad values of every field, rare layouts, duplicate keys, NDJSON and
arrays), the fast path must either decline (None) or return exactly the table
the per-event path returns: same columns, fingerprints and payload hashes.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from event_strategies import TEXT, stamps
from xebench.errors import BatchError
from xebench.ingest.fast import fast_prediction_table
from xebench.ingest.policy import Limits, PiiPolicy
from xebench.ingest.predictions import parse_predictions, prediction_table

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)

NAMES = st.sampled_from(["fraud", "ctr", "m-1.v2", "a/b@c+d:e", "Ünï", "a b", "", "x" * 129, "m\n"])
VERSIONS = st.sampled_from(["", "v7", "2024-06-01", "x" * 128, "x" * 129, "v;1", "é"])
PROB = st.one_of(
    st.floats(0, 1),
    st.sampled_from([0, 1, 0.0, -0.0, 1.0, 1e-7, 5e-324, 2, -0.5, 1.5, True, "0.5", None, 10**400]),
)


@st.composite
def probabilities(draw: st.DrawFn) -> tuple[Any, Any]:
    kind = draw(st.integers(0, 4))
    if kind <= 1:
        return draw(PROB), draw(st.sampled_from([None, None, ["neg", "pos"], ["x", "x"], [0, 1]]))
    if kind == 2:
        k = draw(st.integers(1, 4))
        raw = [draw(st.floats(0, 1)) for _ in range(k)]
        total = math.fsum(raw) or 1.0
        vector = [v / total for v in raw] if draw(st.booleans()) else raw
        classes = draw(
            st.sampled_from([None, [f"c{i}" for i in range(k)], list(range(k)), ["a"] * k, [""]])
        )
        return vector, classes
    if kind == 3:
        k = draw(st.integers(1, 3))
        names = draw(st.lists(TEXT, min_size=k, max_size=k))
        share = 1.0 / k
        return {name: share for name in names}, None
    return draw(st.sampled_from([[], [True, False], "x", {"a": 1}])), None


FEATURE_VALUE = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(-(2**63), 2**63 - 1),
    st.sampled_from([10**20, -(2**63) - 1, 1e16, 1e22, -0.0, 1e-7, 12.5, True, False, None]),
    TEXT,
    st.just("y" * 1025),
    st.just([1]),
)
WEIGHT = st.one_of(
    st.floats(1e-12, 1e12),
    st.integers(1, 10**6),
    st.sampled_from([1, 1.0, 2, 0.5, 1e-12, 1e12, 3e-6, 1e-13, 1e13, 0, -1, 0.0, -0.0]),
    st.sampled_from([True, False, None, "2", [1], 10**400, float("nan"), float("inf")]),
)
COHORT_VALUE = st.one_of(TEXT, st.integers(-5, 5), st.booleans(), st.just(2**64), st.just(1.5))
KEYS = st.sampled_from(["region", "device", "amount", "tenure_days", "país", "a b", "", "k" * 65])


@st.composite
def events(draw: st.DrawFn) -> dict[str, Any]:
    probs, classes = draw(probabilities())
    out: dict[str, Any] = {
        "request_id": draw(st.one_of(st.from_regex(r"r[0-9]{1,6}", fullmatch=True), TEXT)),
        "model": draw(NAMES),
        "probabilities": probs,
    }
    if draw(st.booleans()):
        out["version"] = draw(VERSIONS)
    if draw(st.booleans()):
        out["timestamp"] = draw(stamps())
    if classes is not None:
        out["classes"] = classes
    if draw(st.booleans()):
        out["cohort"] = draw(st.dictionaries(KEYS, COHORT_VALUE, max_size=3))
    if draw(st.booleans()):
        out["features"] = draw(st.dictionaries(KEYS, FEATURE_VALUE, max_size=4))
    if draw(st.integers(0, 3)) == 0:
        out["weight"] = draw(WEIGHT)
    if draw(st.integers(0, 30)) == 0:
        out["cohorts"] = {}
    return out


def _clean(event: dict[str, Any]) -> dict[str, Any]:
    """The common case: every field valid (so that many batches do take the fast path),
    the values of cohort and features still drawn widely."""

    def fine(value: Any, longest: int) -> bool:
        return not isinstance(value, str) or (value.isprintable() and len(value) <= longest)

    out = {
        **event,
        "request_id": f"r{abs(hash(repr(event))) % 10**6}",
        "model": "fraud",
        "version": "v7",
        "probabilities": 0.25,
        "timestamp": "2026-06-01T11:59:00.125Z",
    }
    for name, longest in (("cohort", 256), ("features", 1024)):
        if name in event:
            out[name] = {
                k: v
                for k, v in event[name].items()
                if k in ASCII_KEYS and fine(v, longest) and not isinstance(v, list)
            }
    return out


ASCII_KEYS = {"region", "device", "amount", "tenure_days"}


@st.composite
def bodies(draw: st.DrawFn) -> tuple[bytes, bool]:
    batch = draw(st.lists(events(), min_size=1, max_size=6))
    if draw(st.booleans()):
        batch = [_clean(e) for e in batch]
    elif draw(st.booleans()):
        batch = [{**_clean(e), "timestamp": e.get("timestamp")} for e in batch]
    style = draw(st.integers(0, 4))
    separators = [(",", ":"), (", ", ": "), (",", " : ")][draw(st.integers(0, 2))]

    def dump(value: Any) -> str:
        return json.dumps(value, separators=separators, ensure_ascii=draw(st.booleans()))

    if style == 0:  # NDJSON
        text = "\n".join(dump(e) for e in batch) + "\n"
        ndjson = True
    elif style == 1 and len(batch) == 1:
        text, ndjson = dump(batch[0]), False
    else:
        text, ndjson = dump(batch), False
    if draw(st.integers(0, 5)) == 0:  # a duplicate key, which both decoders let the last win
        text = text.replace('"model":', '"model":"dup","model":', 1)
    return text.encode("utf-8", "surrogatepass"), ndjson


def _slow(body: bytes, ndjson: bool, **options: Any) -> pa.Table | Exception:
    try:
        return parse_predictions(body, tenant="acme", ndjson=ndjson, now=NOW, **options)
    except Exception as error:  # BatchError; anything else is the per-event path's bug
        return error


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bodies())
def test_the_fast_path_accepts_only_what_the_per_event_path_accepts_and_builds_the_same_table(
    case: tuple[bytes, bool],
) -> None:
    body, ndjson = case
    fast = fast_prediction_table(body, tenant="acme", ndjson=ndjson, now=NOW)
    slow = _slow(body, ndjson)
    event("fast path" if fast is not None else "per-event path")
    if fast is not None:
        assert isinstance(slow, pa.Table), slow
        assert fast.schema == slow.schema
        for name in slow.column_names:
            assert fast[name].to_pylist() == slow[name].to_pylist(), name
        assert fast.equals(slow)


@settings(max_examples=60, deadline=None)
@given(bodies())
def test_prediction_table_answers_as_the_per_event_path_does(case: tuple[bytes, bool]) -> None:
    body, ndjson = case
    slow = _slow(body, ndjson)
    try:
        table = prediction_table(body, tenant="acme", ndjson=ndjson, now=NOW)
    except BatchError as error:
        assert isinstance(slow, BatchError), slow
        assert (error.status, error.errors, str(error)) == (slow.status, slow.errors, str(slow))
    else:
        assert isinstance(slow, pa.Table) and table.equals(slow)


def _benchmark_like(n: int) -> list[dict[str, Any]]:
    return [
        {
            "request_id": f"b{i:07d}",
            "model": "fraud",
            "version": "v7",
            "timestamp": f"2026-06-01T11:{i % 60:02d}:{i % 59:02d}.{i % 1000:03d}Z",
            "probabilities": (i % 997) / 997,
            "cohort": {"region": ["eu", "us"][i % 2], "device": "ios"},
            "features": {"amount": i * 1.25, "country": "de", "tenure_days": i % 3650},
        }
        for i in range(n)
    ]


@pytest.mark.parametrize("ndjson", [False, True])
def test_a_typical_batch_takes_the_fast_path(ndjson: bool) -> None:
    batch = _benchmark_like(500)
    if ndjson:
        body = ("\n".join(json.dumps(e, separators=(",", ":")) for e in batch)).encode()
    else:
        body = json.dumps(batch, separators=(",", ":")).encode()
    fast = fast_prediction_table(body, tenant="acme", ndjson=ndjson, now=NOW)
    assert fast is not None
    assert fast.equals(parse_predictions(body, tenant="acme", ndjson=ndjson, now=NOW))
    assert fast.num_rows == 500
    assert fast["event_time"][1].as_py() == datetime(2026, 6, 1, 11, 1, 1, 1000, tzinfo=UTC)


def test_weighted_events_take_the_fast_path_with_the_same_table_and_hashes() -> None:
    batch = _benchmark_like(300)
    for i, one in enumerate(batch):
        if i % 3:
            one["weight"] = [2, 0.125, 1, 1.0, 3e-6, 10**12, 7.5][i % 7]
    body = json.dumps(batch, separators=(",", ":")).encode()
    fast = fast_prediction_table(body, tenant="acme", now=NOW)
    assert fast is not None
    assert fast.equals(parse_predictions(body, tenant="acme", now=NOW))
    expected = [float(e.get("weight", 1)) for e in batch]
    assert fast["weight"].to_pylist() == expected
    # A weight of 1, sent or not, leaves the payload hash of the unweighted event.
    plain = fast_prediction_table(
        json.dumps(_benchmark_like(300), separators=(",", ":")).encode(), tenant="acme", now=NOW
    )
    assert plain is not None
    same = [w == 1.0 for w in expected]
    hashes, plain_hashes = fast["payload_hash"].to_pylist(), plain["payload_hash"].to_pylist()
    assert [a == b for a, b in zip(hashes, plain_hashes, strict=True)] == same
    # Refused weights decline the fast path; the per-event path names them.
    for bad in (0, -1, 1e13, True, "2", None):
        body = json.dumps([{**batch[0], "weight": bad}]).encode()
        assert fast_prediction_table(body, tenant="acme", now=NOW) is None
        with pytest.raises(BatchError) as caught:
            parse_predictions(body, tenant="acme", now=NOW)
        assert caught.value.errors[0]["field"] == "/0/weight"


def test_multiclass_offsets_and_pii_take_the_fast_path_with_the_same_table() -> None:
    batch = [
        {
            "request_id": "r1",
            "model": "lang",
            "probabilities": {"en": 0.5, "de": 0.25, "fr": 0.25},
            "timestamp": "2026-06-01T13:30:00.5+02:00",
            "cohort": {"user": "u-1", "plan": 3, "beta": True},
            "features": {"email": "a@b.c", "user": "u-1", "len": 3},
        },
        {
            "request_id": "r2",
            "model": "lang",
            "probabilities": [0.2, 0.8],
            "classes": ["cat", 7],
            "timestamp": "2026-06-01T07:00:00-05:00",
        },
    ]
    body = json.dumps(batch).encode()
    pii = PiiPolicy(drop=frozenset({"email"}), hash=frozenset({"user"}), key=b"k")
    fast = fast_prediction_table(body, tenant="acme", pii=pii, now=NOW)
    assert fast is not None
    assert fast.equals(parse_predictions(body, tenant="acme", pii=pii, now=NOW))
    assert [t.isoformat() for t in fast["event_time"].to_pylist()] == [
        "2026-06-01T11:30:00.500000+00:00",
        "2026-06-01T12:00:00+00:00",
    ]
    assert fast["cohort"][0].as_py()[1:] == [("plan", "3"), ("beta", "1")]


@pytest.mark.parametrize(
    "body",
    [
        b'[{"request_id":"r1","model":"m","model":"n","probabilities":0.5}]',
        b'[{"request_id":"r1","model":"m","probabilities":0.5,"cohort":{"a":"x","a":"y"}}]',
        b'[{"request_id":"r1","model":"m","probabilities":{"a":0.5,"a":0.5}}]',
    ],
)
def test_duplicate_keys_are_left_to_the_per_event_path(body: bytes) -> None:
    assert fast_prediction_table(body, tenant="acme", now=NOW) is None


def test_the_batch_limits_are_left_to_the_per_event_path() -> None:
    body = json.dumps(_benchmark_like(3)).encode()
    assert fast_prediction_table(body, tenant="acme", now=NOW, limits=Limits(max_events=2)) is None
    assert fast_prediction_table(b"[]", tenant="acme", now=NOW) is None
