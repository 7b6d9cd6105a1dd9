"""Multi-key cohorts ("crossings"): folded as one more cohort key, read like any key.

Expectations come from the events written (their cohorts, probabilities and labels),
with scikit-learn: a crossed window's log loss is ``log_loss`` over exactly the
events that have both keys with those values.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from sklearn.metrics import log_loss

from xebench.errors import InvalidInputError
from xebench.ingest.events import parse_labels, parse_predictions
from xebench.monitor.scope import canonical_cohort, parse_cohort
from xebench.monitor.windows import Monitor, Scope
from xebench.store.buckets import OTHER, MonitorConfig
from xebench.store.crossings import (
    check_crossings,
    cohort_value,
    crossed_value,
    escape,
    split_value,
    unescape,
)
from xebench.store.event_store import EventStore

TENANT = "t"
NOW = datetime.now(UTC).replace(microsecond=0)
START = NOW.replace(second=0) - timedelta(hours=2)
REGIONS = ("eu", "us")
DEVICES = ("android", "ios", "a,b%")  # the last: a free-text value holding ',' and '%'
CROSSED = (("region", "device"),)


def _events(seed: int = 7, n: int = 600) -> list[dict[str, Any]]:
    """Predictions with known cohorts (some lacking region or device), labels for most."""
    rng = np.random.default_rng(seed)
    events = []
    for i in range(n):
        cohort: dict[str, str] = {}
        if rng.random() < 0.9:
            cohort["region"] = str(rng.choice(REGIONS))
        if rng.random() < 0.85:
            cohort["device"] = str(rng.choice(DEVICES))
        if rng.random() < 0.5:
            cohort["plan"] = str(rng.choice(["free", "pro"]))
        p = float(np.clip(rng.beta(2, 3), 0.01, 0.99))
        events.append(
            {
                "request_id": f"r{i}",
                "model": "m",
                "version": "v1",
                "timestamp": (START + timedelta(seconds=float(rng.uniform(0, 3600)))).isoformat(),
                "probabilities": round(p, 6),
                "cohort": cohort,
                "features": {"amount": round(float(rng.lognormal()), 3)},
                "label": int(rng.random() < p) if rng.random() < 0.8 else None,
            }
        )
    return events


def _store(events: list[dict[str, Any]], **config: Any) -> EventStore:
    store = EventStore(":memory:", monitor=MonitorConfig(cohort_crossings=CROSSED, **config))
    predictions = [{k: v for k, v in e.items() if k != "label"} for e in events]
    store.insert_predictions(parse_predictions(predictions, tenant=TENANT))
    labels = [
        {"request_id": e["request_id"], "model": "m", "label": e["label"]}
        for e in events
        if e["label"] is not None
    ]
    store.insert_labels(parse_labels(labels, tenant=TENANT))
    store.update_buckets()
    return store


def _having(events: list[dict[str, Any]], **wanted: str) -> list[dict[str, Any]]:
    return [e for e in events if all(e["cohort"].get(k) == v for k, v in wanted.items())]


def _expected(events: list[dict[str, Any]]) -> tuple[int, float | None]:
    labelled = [e for e in events if e["label"] is not None]
    if not labelled:
        return len(events), None
    y = [e["label"] for e in labelled]
    p = [e["probabilities"] for e in labelled]
    return len(events), float(log_loss(y, p, labels=[0, 1]))


def _close(a: Any, b: Any) -> bool:
    """Equal, floats to 1e-9 (relative), element by element."""
    if isinstance(a, float) and isinstance(b, float):
        return bool(np.isclose(a, b, rtol=1e-9, atol=1e-12))
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def _window(store: EventStore, cohort: str | None) -> Any:
    scope = Scope(TENANT, "m", cohort=cohort, window="3h", now=NOW)
    return Monitor(store).window(scope)


@pytest.fixture(scope="module")
def events() -> list[dict[str, Any]]:
    return _events()


@pytest.fixture(scope="module")
def store(events: list[dict[str, Any]]) -> EventStore:
    return _store(events)


# --- the encoding ---------------------------------------------------------------------


def test_escaping_round_trips_every_value() -> None:
    for value in ["eu", "a,b", "50%", "%2C", "%25,%", ",", "a,,b%%"]:
        assert unescape(escape(value)) == value
        assert "," not in escape(value)
        assert split_value(crossed_value([value, "x"]), 2) == [value, "x"]
    assert cohort_value({"region": "eu", "device": "a,b%"}, "region,device") == "eu,a%2Cb%25"
    assert cohort_value({"region": "eu"}, "region,device") is None


def test_a_crossed_cohort_parses_in_both_forms_and_in_the_configured_order() -> None:
    assert parse_cohort("region,device:eu,android") == ("region,device", "eu,android")
    assert parse_cohort("region:eu,device:android") == ("region,device", "eu,android")
    for text in (
        "region,device:eu,android",
        "region:eu,device:android",
        "device:android,region:eu",
        "device,region:android,eu",
    ):
        assert canonical_cohort(text, CROSSED) == "region,device:eu,android"
    # A plain value may hold ',' (a part without ':' is no key:value).
    assert canonical_cohort("city:Washington, DC", CROSSED) == "city:Washington, DC"
    assert canonical_cohort("region,device:__other__", CROSSED) == "region,device:__other__"
    with pytest.raises(InvalidInputError, match=r"cohort: .*needs 2 values"):
        canonical_cohort("region,device:eu", CROSSED)
    with pytest.raises(InvalidInputError) as raised:
        canonical_cohort("region:eu,plan:pro", CROSSED)
    assert raised.value.argument == "cohort"
    assert "[['region', 'device']]" in str(raised.value)


@pytest.mark.parametrize(
    ("crossings", "message"),
    [
        ([["region"]], r"cohort_crossings\[0\]: must be a list of 2 to 3 distinct"),
        ([["region", "device"], ["a", "b", "c", "d"]], r"cohort_crossings\[1\]: must be"),
        ([["region", "region"]], r"cohort_crossings\[0\]: must be a list of 2 to 3 distinct"),
        ([["region", "geo:x"]], r"cohort_crossings\[0\]: keys must be .*without ':'"),
        ([["region", "a,b"]], r"cohort_crossings\[0\]: keys must be"),
        ([["region", 3]], r"cohort_crossings\[0\]: keys must be"),
        ([["a", "b"], ["b", "a"]], r"cohort_crossings\[1\]: repeats a crossing"),
        ("region,device", r"cohort_crossings: must be a list of crossings"),
        ([["a", f"k{i}"] for i in range(9)], r"cohort_crossings: at most 8 crossings"),
    ],
)
def test_crossings_are_checked(crossings: Any, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        MonitorConfig(cohort_crossings=crossings)
    with pytest.raises(InvalidInputError, match=message):
        check_crossings(crossings)


# --- folding and reading ------------------------------------------------------------------


def test_each_crossed_window_is_the_log_loss_of_exactly_its_events(
    store: EventStore, events: list[dict[str, Any]]
) -> None:
    for region in REGIONS:
        for device in DEVICES:
            mine = _having(events, region=region, device=device)
            n, expected = _expected(mine)
            assert n > 10
            value = crossed_value([region, device])
            window = _window(store, f"region,device:{value}")
            assert window.n_predictions == n
            assert window.log_loss == pytest.approx(expected, rel=1e-12)
            if "," not in device and "%" not in device:  # the form, either order
                for text in (
                    f"region:{region},device:{device}",
                    f"device:{device},region:{region}",
                ):
                    again = _window(store, text)
                    assert again.n_predictions == n
                    assert again.log_loss == window.log_loss
            assert window.to_dict()["cohort"] == f"region,device:{value}"


def test_events_missing_a_key_of_the_crossing_are_not_in_it(
    store: EventStore, events: list[dict[str, Any]]
) -> None:
    with store.cursor() as cursor:
        rows = cursor.execute(
            "SELECT cohort_value, sum(n_predictions) FROM bucket_scores "
            "WHERE cohort_key = 'region,device' GROUP BY ALL"
        ).fetchall()
    both = [e for e in events if {"region", "device"} <= set(e["cohort"])]
    assert len(both) < len(events)  # some lack one key
    assert sum(count for _, count in rows) == len(both)
    assert {value for value, _ in rows} == {crossed_value([r, d]) for r in REGIONS for d in DEVICES}


def test_the_hourly_twins_and_compaction_keep_the_crossing(
    store: EventStore, events: list[dict[str, Any]]
) -> None:
    both = [e for e in events if {"region", "device"} <= set(e["cohort"])]
    store.update_buckets(compact=True)
    with store.cursor() as cursor:
        for table in ("bucket_scores", "bucket_scores_hour"):
            total, deltas = cursor.execute(
                f"SELECT sum(n_predictions), count(*) FILTER (WHERE delta) FROM {table} "
                "WHERE cohort_key = 'region,device'"
            ).fetchone()
            assert total == len(both)
            assert deltas == 0
    # A long window reads whole hours from the twin: the same answer.
    mine = _having(events, region="eu", device="ios")
    window = Monitor(store).window(
        Scope(TENANT, "m", cohort="region,device:eu,ios", window="7d", now=NOW)
    )
    assert window.log_loss == pytest.approx(_expected(mine)[1], rel=1e-12)


def test_the_ranking_of_a_crossing_matches_each_window(
    store: EventStore, events: list[dict[str, Any]]
) -> None:
    monitor = Monitor(store)
    scope = Scope(TENANT, "m", window="3h", now=NOW)
    ranking = monitor.cohort_ranking(scope, "region,device", min_samples=0).to_dict()
    assert ranking["key"] == "region,device"
    assert monitor.cohort_ranking(scope, "device,region", min_samples=0).to_dict() == ranking
    assert len(ranking["cohorts"]) == len(REGIONS) * len(DEVICES)
    for row in ranking["cohorts"]:
        window = _window(store, f"region,device:{row['value']}")
        assert row["log_loss"] == window.log_loss
        assert row["n_predictions"] == window.n_predictions
        region, device = split_value(row["value"], 2)
        assert row["log_loss"] == pytest.approx(
            _expected(_having(events, region=region, device=device))[1], rel=1e-12
        )
    with pytest.raises(InvalidInputError) as raised:
        monitor.cohort_ranking(scope, "region,plan")
    assert raised.value.argument == "key"
    assert "[['region', 'device']]" in str(raised.value)


def test_a_rebuild_gives_the_same_buckets(events: list[dict[str, Any]]) -> None:
    store = _store(events, cohort_features=True, learn_after=50)
    query = "SELECT * EXCLUDE (delta) FROM {table} WHERE cohort_key = 'region,device' ORDER BY ALL"

    def snapshot() -> dict[str, list[Any]]:
        store.update_buckets(compact=True)
        with store.cursor() as cursor:
            return {
                table: cursor.execute(query.format(table=table)).fetchall()
                for table in ("bucket_scores", "bucket_scores_hour", "bucket_features")
            }

    before = snapshot()
    assert all(before.values())  # feature histograms per crossing too (cohort_features)
    store.rebuild_buckets()
    after = snapshot()
    assert after.keys() == before.keys()
    for table, rows in before.items():
        assert len(after[table]) == len(rows)
        for old, new in zip(rows, after[table], strict=True):
            # Exact keys and counts; sums to rounding (summed in another order).
            assert _close(old, new), (table, old, new)


def test_the_cap_sends_crossed_values_beyond_it_to_other(events: list[dict[str, Any]]) -> None:
    store = _store(events, cohort_cap=2)
    with store.cursor() as cursor:
        values = dict(
            cursor.execute(
                "SELECT cohort_value, sum(n_predictions) FROM bucket_scores "
                "WHERE cohort_key = 'region,device' GROUP BY ALL"
            ).fetchall()
        )
    assert len(values) == 3 and OTHER in values
    kept = [v for v in values if v != OTHER]
    both = [e for e in events if {"region", "device"} <= set(e["cohort"])]
    inside = [
        e for e in both if crossed_value([e["cohort"]["region"], e["cohort"]["device"]]) in kept
    ]
    other = [e for e in both if e not in inside]
    window = _window(store, f"region,device:{OTHER}")
    assert window.n_predictions == len(other) == values[OTHER]
    assert window.log_loss == pytest.approx(_expected(other)[1], rel=1e-12)


def test_a_crossing_added_later_applies_to_events_folded_after(
    events: list[dict[str, Any]],
) -> None:
    first, second = events[:300], events[300:]
    store = EventStore(":memory:")
    for part in (first,):
        store.insert_predictions(
            parse_predictions(
                [{k: v for k, v in e.items() if k != "label"} for e in part], tenant=TENANT
            )
        )
    store.update_buckets()
    store.buckets.config = MonitorConfig(cohort_crossings=CROSSED)
    store.insert_predictions(
        parse_predictions(
            [{k: v for k, v in e.items() if k != "label"} for e in second], tenant=TENANT
        )
    )
    store.update_buckets()
    n = len(_having(second, region="eu", device="ios"))
    assert _window(store, "region,device:eu,ios").n_predictions == n
    store.rebuild_buckets()
    assert _window(store, "region,device:eu,ios").n_predictions == len(
        _having(events, region="eu", device="ios")
    )


def test_extreme_events_and_reliability_read_the_crossing(
    store: EventStore, events: list[dict[str, Any]]
) -> None:
    monitor = Monitor(store)
    scope = Scope(TENANT, "m", cohort="device,region:a%2Cb%25,us", window="3h", now=NOW)
    mine = [e for e in _having(events, region="us", device="a,b%") if e["label"] is not None]
    found = monitor.extreme_events(scope, limit=100)
    assert {e["request_id"] for e in found["events"]} == {e["request_id"] for e in mine}
    curve = monitor.reliability(scope)
    assert curve["cohort"] == "region,device:us,a%2Cb%25"
    assert sum(b["count"] for b in curve["histogram"]) == len(
        _having(events, region="us", device="a,b%")
    )
