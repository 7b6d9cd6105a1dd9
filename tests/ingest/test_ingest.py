"""``xebench ingest``: files -> validated events -> the event store (or a running server).

Every test writes its own small files (CSV, Parquet, JSON Lines) and checks
what the store holds afterwards, through ``store.counts`` and SQL on the
``predictions`` table.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from loopback import free_port, serve_in_thread
from xebench.cli.main import main
from xebench.client.files import HttpTarget
from xebench.errors import DataError
from xebench.ingest.files import IngestError, import_labels, import_predictions
from xebench.store.event_store import EventStore

# --- helpers ----------------------------------------------------------------------------


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def binary_csv(path: Path, n: int, *, bad: dict[int, str] | None = None) -> Path:
    """``n`` rows r1..rn of model fraud; ``bad`` replaces the probability of some rows."""
    lines = ["request_id,model,version,probabilities,timestamp,region,amount"]
    for i in range(1, n + 1):
        p = (bad or {}).get(i, f"{(i % 9 + 1) / 10:.1f}")
        lines.append(
            f"r{i},fraud,v1,{p},2026-01-01T00:{i % 60:02d}:00Z,{'eu' if i % 2 else 'us'},{i}"
        )
    return write(path, "\n".join(lines) + "\n")


def run(capsys: pytest.CaptureFixture[str], *args: Any) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out.strip(), " ".join(err.split())


def rows(store: EventStore, sql: str) -> list[tuple[Any, ...]]:
    return store.cursor().execute(sql).fetchall()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "data" / "events.duckdb"  # the parent is created by the command


def counts(db: Path) -> dict[str, Any]:
    with EventStore(db) as opened:
        return opened.counts("default")


# --- predictions ------------------------------------------------------------------------


def test_binary_csv_counts_match_and_reimport_adds_nothing(
    tmp_path: Path, db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = binary_csv(tmp_path / "preds.csv", 25)
    code, out, err = run(capsys, "ingest", "predictions", data, "--db", db, "--chunk-rows", 10)
    assert (code, err) == (0, "")
    assert out == f"imported 25 predictions from 1 file(s) into {db}: 25 new, 0 duplicates"
    before = counts(db)
    assert before["predictions"] == 25
    code, out, _ = run(capsys, "ingest", "predictions", data, "--db", db)
    assert code == 0
    assert out == f"imported 25 predictions from 1 file(s) into {db}: 0 new, 25 duplicates"
    assert counts(db) == before


def test_multiclass_parquet_list_column(tmp_path: Path, store: EventStore) -> None:
    path = tmp_path / "multi.parquet"
    table = pa.table(
        {
            "rid": ["a", "b"],
            "probs": pa.array([[0.2, 0.3, 0.5], [0.6, 0.3, 0.1]], pa.list_(pa.float64())),
            "ts": pa.array([datetime(2026, 1, 1, tzinfo=UTC)] * 2, pa.timestamp("ns", "UTC")),
        }
    )
    pq.write_table(table, path)
    summary = import_predictions(
        path,
        store,
        request_id="rid",
        model="clf",
        prob="probs",
        classes=["cat", "dog", "fox"],
        timestamp="ts",
    )
    assert (summary.rows, summary.inserted) == (2, 2)
    assert rows(
        store,
        "SELECT request_id, classes, probabilities, event_time FROM predictions "
        "ORDER BY request_id",
    ) == [
        ("a", ["cat", "dog", "fox"], [0.2, 0.3, 0.5], datetime(2026, 1, 1, tzinfo=UTC)),
        ("b", ["cat", "dog", "fox"], [0.6, 0.3, 0.1], datetime(2026, 1, 1, tzinfo=UTC)),
    ]


def test_multiclass_csv_json_arrays_and_objects(
    tmp_path: Path, db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    arrays = write(
        tmp_path / "arrays.csv",
        'request_id,p\nx1,"[0.1, 0.2, 0.7]"\nx2,"[0.5, 0.25, 0.25]"\n',
    )
    objects = write(
        tmp_path / "objects.csv",
        'request_id,p\ny1,"{""cat"": 0.4, ""dog"": 0.6}"\n',
    )
    code, out, err = run(
        capsys,
        "ingest",
        "predictions",
        arrays,
        "--db",
        db,
        "--model",
        "clf",
        "--prob",
        "p",
        "--classes",
        "a,b,c",
    )
    assert (code, err) == (0, "")
    assert out.endswith(": 2 new, 0 duplicates")
    code, out, err = run(
        capsys, "ingest", "predictions", objects, "--db", db, "--model", "pets", "--prob", "p"
    )
    assert (code, err) == (0, "")
    with EventStore(db) as opened:
        assert rows(
            opened, "SELECT model, classes, probabilities FROM predictions ORDER BY request_id"
        ) == [
            ("clf", ["a", "b", "c"], [0.1, 0.2, 0.7]),
            ("clf", ["a", "b", "c"], [0.5, 0.25, 0.25]),
            ("pets", ["cat", "dog"], [0.4, 0.6]),
        ]


def test_jsonl_keeps_offsets_and_nested_cohorts(tmp_path: Path, store: EventStore) -> None:
    # Arrow's JSON reader would drop the offset of these times: they must still be UTC.
    path = write(
        tmp_path / "events.jsonl",
        json.dumps(
            {
                "request_id": "j1",
                "model": "m",
                "probabilities": 0.75,
                "timestamp": "2026-01-01T02:00:00+02:00",
                "cohort": {"region": "eu", "tier": 3},
            }
        )
        + "\n"
        + json.dumps(
            {
                "request_id": "j2",
                "model": "m",
                "probabilities": 0.25,
                "timestamp": "2026-01-01T00:00:00Z",
                "cohort": {"region": "us"},
            }
        )
        + "\n",
    )
    summary = import_predictions(path, store, cohorts=["cohort"])
    assert summary.inserted == 2
    assert rows(
        store, "SELECT request_id, event_time, cohort FROM predictions ORDER BY request_id"
    ) == [
        ("j1", datetime(2026, 1, 1, tzinfo=UTC), {"region": "eu", "tier": "3"}),
        ("j2", datetime(2026, 1, 1, tzinfo=UTC), {"region": "us"}),
    ]
    assert import_predictions(path, store, cohorts=["cohort"]).duplicates == 2


def test_same_events_from_csv_and_jsonl_are_duplicates(tmp_path: Path, store: EventStore) -> None:
    csv = write(
        tmp_path / "a.csv",
        "request_id,model,probabilities,timestamp\n007,m,0.5,2026-01-01T01:00:00+01:00\n",
    )
    event = {
        "request_id": "007",
        "model": "m",
        "probabilities": 0.5,
        "timestamp": "2026-01-01T00:00:00Z",
    }
    jsonl = write(tmp_path / "a.jsonl", json.dumps(event) + "\n")
    assert import_predictions(csv, store).inserted == 1
    assert import_predictions(jsonl, store).duplicates == 1
    # The CSV id keeps its leading zeros: it is text, not the number 7.
    assert rows(store, "SELECT request_id FROM predictions") == [("007",)]


def test_cohort_and_feature_columns_land_in_the_stored_row(
    tmp_path: Path, db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = write(
        tmp_path / "p.csv",
        "request_id,model,probabilities,region,plan,amount,country\n"
        "a,fraud,0.9,eu,pro,12.5,FR\n"
        "b,fraud,0.1,us,,,\n",
    )
    code, _, err = run(
        capsys,
        "ingest",
        "predictions",
        data,
        "--db",
        db,
        "--cohort",
        "region",
        "--cohort",
        "tier=plan",
        "--feature",
        "amount",
        "--feature",
        "country",
    )
    assert (code, err) == (0, "")
    with EventStore(db) as opened:
        stored = rows(
            opened, "SELECT request_id, cohort, features FROM predictions ORDER BY request_id"
        )
    assert [(r, c, json.loads(f)) for r, c, f in stored] == [
        ("a", {"region": "eu", "tier": "pro"}, {"amount": 12.5, "country": "FR"}),
        ("b", {"region": "us"}, {"amount": None, "country": None}),
    ]


def test_version_and_model_columns_or_constants(tmp_path: Path, store: EventStore) -> None:
    data = write(
        tmp_path / "p.csv", "request_id,model,version,probabilities\na,fraud,2,0.9\nb,risk,,0.3\n"
    )
    import_predictions(data, store)
    import_predictions(data, store, model="other", version="v9")
    assert rows(store, "SELECT model, version, request_id FROM predictions ORDER BY 1, 3") == [
        ("fraud", "2", "a"),
        ("other", "v9", "a"),
        ("other", "v9", "b"),
        ("risk", "", "b"),
    ]


# --- errors ------------------------------------------------------------------------------


def test_bad_row_names_file_row_and_field_and_earlier_chunks_stay(
    tmp_path: Path, db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = binary_csv(tmp_path / "preds.csv", 10, bad={8: "1.3"})
    code, out, err = run(capsys, "ingest", "predictions", data, "--db", db, "--chunk-rows", 3)
    assert code == 2 and out == ""
    assert err == (
        f"error: {data}: row 8: /probabilities: probabilities must be in [0, 1]; got 1.3 "
        f"(rows before row 7 of {data} are stored; fix the file and re-run: rows already "
        "stored count as duplicates)"
    )
    with EventStore(db) as opened:  # chunks 1-3 and 4-6 stored, nothing of 7-9
        assert rows(opened, "SELECT request_id FROM predictions ORDER BY event_time") == [
            (f"r{i}",) for i in range(1, 7)
        ]
    binary_csv(data, 10)  # fixed
    code, out, _ = run(capsys, "ingest", "predictions", data, "--db", db, "--chunk-rows", 3)
    assert code == 0 and out.endswith(": 4 new, 6 duplicates")


def test_bad_row_in_first_chunk_stores_nothing_and_names_the_column(
    tmp_path: Path, store: EventStore
) -> None:
    data = write(tmp_path / "p.csv", "id,score\na,0.5\nb,\nc,nan\n")
    with pytest.raises(IngestError) as caught:
        import_predictions(data, store, request_id="id", model="m", prob="score")
    error = caught.value
    assert (error.row, error.field, error.column) == (2, "/probabilities", "score")
    assert str(error) == (
        f"{data}: row 2: /probabilities (column 'score'): probability is missing (empty or "
        "null) (and 1 more bad row(s) among rows 1-3) (nothing was stored; fix the file and "
        "re-run)"
    )
    assert store.counts("default")["predictions"] == 0


def test_conflicting_reimport_is_exit_2_with_the_row(
    tmp_path: Path, db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = binary_csv(tmp_path / "preds.csv", 5)
    assert run(capsys, "ingest", "predictions", data, "--db", db)[0] == 0
    before = counts(db)
    binary_csv(data, 6, bad={4: "0.55"})  # row 4 changed, row 6 new
    code, _, err = run(capsys, "ingest", "predictions", data, "--db", db)
    assert code == 2
    assert err.startswith(
        f"error: {data}: row 4: /request_id: request_id 'r4' of model 'fraud' "
        "is already stored with a different payload"
    )
    assert "(nothing was stored; fix the file and re-run)" in err
    assert counts(db) == before  # row 6 of the same chunk was not stored either


def test_missing_column_is_named_with_the_available_ones(
    tmp_path: Path, db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = write(tmp_path / "p.csv", "id,model,score\na,m,0.5\n")
    code, _, err = run(capsys, "ingest", "predictions", data, "--db", db, "--prob", "p")
    assert code == 2
    assert err == (
        f"error: {data}: columns: no columns 'request_id', 'p'; available columns: id, model, score"
    )
    code, _, err = run(
        capsys,
        "ingest",
        "predictions",
        data,
        "--db",
        db,
        "--request-id",
        "id",
        "--prob",
        "score",
        "--model-col",
        "name",
    )
    assert code == 2 and "no column 'name'; available columns: id, model, score" in err
    no_model = write(tmp_path / "q.csv", "request_id,probabilities\na,0.5\n")
    code, _, err = run(capsys, "ingest", "predictions", no_model, "--db", db)
    assert code == 2 and "no column 'model': name the model with --model NAME" in err


def test_missing_files_are_refused_before_anything_is_stored(
    tmp_path: Path, store: EventStore
) -> None:
    data = binary_csv(tmp_path / "preds.csv", 3)
    with pytest.raises(DataError, match="file not found"):
        import_predictions([data, tmp_path / "nope.csv"], store)
    with pytest.raises(DataError, match=r"no column 'probabilities'"):
        import_predictions([data, write(tmp_path / "x.csv", "request_id,model\na,m\n")], store)
    assert store.counts("default")["predictions"] == 0


def test_naive_timestamps_refused_unless_timezone_given(
    tmp_path: Path, db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = write(
        tmp_path / "p.csv",
        "request_id,model,probabilities,timestamp\na,m,0.5,2026-01-01 10:00:00\n",
    )
    code, _, err = run(capsys, "ingest", "predictions", data, "--db", db)
    assert code == 2
    assert f"{data}: row 1: /timestamp: timestamp '2026-01-01 10:00:00' has no time zone" in err
    assert "--timezone UTC" in err
    code, _, err = run(capsys, "ingest", "predictions", data, "--db", db, "--timezone", "UTC")
    assert (code, err) == (0, "")
    code, _, err = run(capsys, "ingest", "predictions", data, "--db", db, "--timezone", "Mars/Base")
    assert code == 2 and "is not a known time zone" in err
    with EventStore(db) as opened:
        assert rows(opened, "SELECT event_time FROM predictions") == [
            (datetime(2026, 1, 1, 10, tzinfo=UTC),)
        ]


def test_naive_parquet_timestamps_take_the_given_zone(tmp_path: Path, store: EventStore) -> None:
    path = tmp_path / "p.parquet"
    pq.write_table(
        pa.table(
            {
                "request_id": ["a"],
                "model": ["m"],
                "probabilities": [0.5],
                "timestamp": pa.array([datetime(2026, 1, 1, 12)], pa.timestamp("us")),
            }
        ),
        path,
    )
    with pytest.raises(IngestError, match="has no time zone"):
        import_predictions(path, store)
    import_predictions(path, store, timezone="Europe/Paris")
    assert rows(store, "SELECT event_time FROM predictions") == [
        (datetime(2026, 1, 1, 11, tzinfo=UTC),)
    ]


def test_bad_model_option_is_refused_up_front(tmp_path: Path, store: EventStore) -> None:
    data = write(tmp_path / "p.csv", "request_id,probabilities\na,0.5\n")
    with pytest.raises(DataError, match=r"--model: must be 1-128 letters"):
        import_predictions(data, store, model="bad name")


# --- labels -------------------------------------------------------------------------------


def test_labels_before_predictions_wait_then_join(
    tmp_path: Path, db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    labels = write(tmp_path / "labels.csv", "request_id,label\nr1,1\nr2,0\nr3,1\n")
    code, out, err = run(capsys, "ingest", "labels", labels, "--db", db)
    assert (code, err) == (0, "")
    assert out == (
        f"imported 3 labels from 1 file(s) into {db}: 3 new, 0 duplicates, 0 joined, 3 pending"
    )
    assert counts(db)["pending"] == 3
    preds = binary_csv(tmp_path / "preds.csv", 3)
    assert run(capsys, "ingest", "predictions", preds, "--db", db)[0] == 0
    after = counts(db)
    assert after["pending"] == 0
    code, out, _ = run(capsys, "ingest", "labels", labels, "--db", db)
    assert code == 0 and out.endswith(": 0 new, 3 duplicates, 0 joined, 0 pending")
    assert counts(db) == after


def test_labels_after_predictions_join_and_unknown_classes_are_refused(
    tmp_path: Path, db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    preds = binary_csv(tmp_path / "preds.csv", 3)
    assert run(capsys, "ingest", "predictions", preds, "--db", db)[0] == 0
    labels = write(tmp_path / "labels.csv", "request_id,model,outcome\nr1,fraud,1\nr2,fraud,0\n")
    code, out, _ = run(capsys, "ingest", "labels", labels, "--db", db, "--label", "outcome")
    assert code == 0 and out.endswith(": 2 new, 0 duplicates, 2 joined, 0 pending")
    bad = write(tmp_path / "bad.csv", "request_id,model,label\nr3,fraud,maybe\n")
    code, _, err = run(capsys, "ingest", "labels", bad, "--db", db)
    assert code == 2
    assert f"{bad}: row 1: /label: label 'maybe' is not a class of model 'fraud'" in err


def test_float_and_boolean_labels_from_parquet(tmp_path: Path, store: EventStore) -> None:
    path = tmp_path / "labels.parquet"
    pq.write_table(pa.table({"request_id": ["a", "b", "c"], "label": [1.0, 0.0, None]}), path)
    with pytest.raises(IngestError, match=r"row 3: /label: label is missing"):
        import_labels(path, store)
    pq.write_table(pa.table({"request_id": ["a", "b"], "label": [1.0, 0.0]}), path)
    assert import_labels(path, store).inserted == 2
    flags = tmp_path / "flags.parquet"
    pq.write_table(pa.table({"request_id": ["a", "b"], "label": [True, False]}), flags)
    assert import_labels(flags, store).duplicates == 2  # true is "1", as over HTTP


def test_progress_callback_sees_every_chunk(tmp_path: Path, store: EventStore) -> None:
    data = binary_csv(tmp_path / "preds.csv", 25)
    seen: list[tuple[int, int]] = []
    import_predictions(
        data, store, batch_rows=10, on_chunk=lambda c: seen.append((c.first_row, c.table.num_rows))
    )
    assert seen == [(1, 10), (11, 10), (21, 5)]


def test_several_files_and_an_error_in_the_second(tmp_path: Path, store: EventStore) -> None:
    first = binary_csv(tmp_path / "a.csv", 4)
    second = write(tmp_path / "b.csv", "request_id,model,probabilities\nb1,fraud,0.5\nb2,fraud,2\n")
    with pytest.raises(IngestError) as caught:
        import_predictions([first, second], store)
    assert str(caught.value).endswith(
        f"(the 1 file(s) before {second} are stored; fix the file and re-run: rows already "
        "stored count as duplicates)"
    )
    assert caught.value.summary is not None and caught.value.summary.inserted == 4
    assert store.counts("default")["predictions"] == 4


# --- through a running server ------------------------------------------------------------


@pytest.fixture
def server() -> Iterator[tuple[str, EventStore]]:
    from xebench.service.app import create_app

    store = EventStore(":memory:")
    with serve_in_thread(create_app(store)) as url:
        yield url, store


def test_url_sends_rows_through_the_server(
    tmp_path: Path, server: tuple[str, EventStore], capsys: pytest.CaptureFixture[str]
) -> None:
    url, store = server
    data = binary_csv(tmp_path / "preds.csv", 12)
    code, out, err = run(capsys, "ingest", "predictions", data, "--url", url, "--cohort", "region")
    assert (code, err) == (0, "")
    assert out == f"imported 12 predictions from 1 file(s) into {url}: 12 new, 0 duplicates"
    assert store.counts("default")["predictions"] == 12
    assert rows(store, "SELECT cohort FROM predictions WHERE request_id = 'r1'") == [
        ({"region": "eu"},)
    ]
    code, out, _ = run(capsys, "ingest", "predictions", data, "--url", url, "--cohort", "region")
    assert code == 0 and out.endswith(": 0 new, 12 duplicates")
    labels = write(tmp_path / "labels.csv", "request_id,label\nr1,1\nr99,0\n")
    code, out, _ = run(capsys, "ingest", "labels", labels, "--url", url)
    assert code == 0 and out.endswith(": 2 new, 0 duplicates, 1 joined, 1 pending")


def test_server_422_maps_back_to_the_file_row(
    tmp_path: Path, server: tuple[str, EventStore], capsys: pytest.CaptureFixture[str]
) -> None:
    url, store = server
    data = binary_csv(tmp_path / "preds.csv", 12, bad={11: "1.5"})
    with HttpTarget(url, batch_events=2) as target, pytest.raises(IngestError) as caught:
        import_predictions(data, target, batch_rows=8)
    error = caught.value
    assert (error.row, error.field, error.stored_before) == (11, "/probabilities", 11)
    assert "probabilities must be in [0, 1]; got 1.5" in str(error)
    assert store.counts("default")["predictions"] == 10  # batches before row 11 are stored
    code, _, err = run(capsys, "ingest", "predictions", data, "--url", url)
    assert code == 2
    assert err.startswith(f"error: {data}: row 11: /probabilities: probabilities must be in")
    assert "(nothing was stored; fix the file and re-run)" in err  # one 5,000-event batch


def test_url_that_answers_nothing_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = binary_csv(tmp_path / "preds.csv", 2)
    url = f"http://127.0.0.1:{free_port()}"
    code, _, err = run(capsys, "ingest", "predictions", data, "--url", url)
    assert code == 2 and err.startswith(f"error: cannot reach the server at {url}")
    code, _, err = run(capsys, "ingest", "predictions", data, "--url", url, "--db", "x.duckdb")
    assert code == 2 and "not both" in err


class NoJitter(random.Random):
    """Full jitter drawn at 0: every wait is the server's ``Retry-After`` (or 0)."""

    def random(self) -> float:
        return 0.0


def test_http_target_retries_429_and_503_then_splits_413() -> None:
    answers = [
        httpx.Response(429, headers={"retry-after": "0.25"}, json={"detail": "busy"}),
        httpx.Response(503, headers={"retry-after": "2"}, json={"detail": "reopening"}),
    ]
    bodies: list[int] = []

    def handle(request: httpx.Request) -> httpx.Response:
        events = json.loads(request.content)
        bodies.append(len(events))
        if answers:
            return answers.pop(0)
        if len(events) > 2:
            return httpx.Response(413, json={"detail": "body too large"})
        return httpx.Response(
            200, json={"accepted": len(events), "inserted": len(events), "duplicates": 0}
        )

    slept: list[float] = []
    client = httpx.Client(transport=httpx.MockTransport(handle))
    target = HttpTarget("http://xebench.test", client=client, sleep=slept.append, rng=NoJitter())
    events = [{"request_id": f"r{i}", "model": "m", "probabilities": 0.5} for i in range(5)]
    sent = target.send("predictions", events, {})
    assert (sent.inserted, sent.duplicates) == (5, 0)
    assert slept == [0.25, 2.0]
    assert bodies == [5, 5, 5, 2, 3, 1, 2]  # 5 -> 2 + 3 -> 2 + (1 + 2)
    client.close()


def test_http_target_retries_what_the_client_retries() -> None:
    """One policy: 502 and 504 are retried too (they were not before), 500 is not."""
    request = httpx.Request("POST", "http://xebench.test")
    answers: list[Any] = [
        httpx.ConnectError("refused", request=request),
        httpx.Response(502),
        httpx.Response(504),
        httpx.Response(500, json={"detail": "internal error"}),
    ]

    def handle(request: httpx.Request) -> httpx.Response:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    slept: list[float] = []
    with httpx.Client(transport=httpx.MockTransport(handle)) as client:
        target = HttpTarget("http://xebench.test", client=client, sleep=slept.append)
        events = [{"request_id": "r0", "model": "m", "probabilities": 0.5}]
        with pytest.raises(Exception, match="the server answered 500: internal error"):
            target.send("predictions", events, {})
    assert answers == [] and len(slept) == 3
    assert all(0.0 <= d <= cap for d, cap in zip(slept, [0.5, 1.0, 2.0], strict=True))


def test_http_target_maps_409_and_refuses_nan_locally() -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            409,
            json={
                "detail": "conflict",
                "conflicts": [
                    {"index": 1, "model": "m", "request_id": "r1", "field": "/1/request_id"}
                ],
            },
        )

    with httpx.Client(transport=httpx.MockTransport(handle)) as client:
        target = HttpTarget("http://xebench.test", client=client)
        events = [{"request_id": f"r{i}", "model": "m", "probabilities": 0.5} for i in range(2)]
        with pytest.raises(Exception, match="already stored with a different payload") as caught:
            target.send("predictions", events, {})
        assert caught.value.index == 1  # type: ignore[attr-defined]
        events[1]["features"] = {"x": float("nan")}
        with pytest.raises(Exception, match="feature values must be finite") as caught:
            target.send("predictions", events, {})
        assert caught.value.field == "/features/x"  # type: ignore[attr-defined]


def test_tenant_option_keeps_tenants_apart(
    tmp_path: Path, db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = binary_csv(tmp_path / "preds.csv", 3)
    assert run(capsys, "ingest", "predictions", data, "--db", db, "--tenant", "acme")[0] == 0
    with EventStore(db) as opened:
        assert opened.counts("acme")["predictions"] == 3
        assert opened.counts("default")["predictions"] == 0
    code, _, err = run(capsys, "ingest", "predictions", data, "--db", db, "--tenant", "a b")
    assert code == 2 and err.startswith("error: --tenant: a tenant is 1-64 letters")


def test_database_held_by_another_process_is_one_line(
    tmp_path: Path, db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db.parent.mkdir(parents=True)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from xebench.store import EventStore; "
         "store = EventStore(sys.argv[1]); print('ready', flush=True); time.sleep(60)", str(db)],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        data = binary_csv(tmp_path / "preds.csv", 2)
        code, out, err = run(capsys, "ingest", "predictions", data, "--db", db)
        assert code == 2 and out == ""
        assert err.startswith(
            f"error: database {db} is in use by another process (PID {holder.pid}"
        )
        assert err.endswith("(or import through that server: --url http://HOST:PORT)")
    finally:
        holder.kill()
        holder.wait(10)
        if holder.stdout is not None:
            holder.stdout.close()


def test_gzip_csv_and_jsonl(tmp_path: Path, store: EventStore) -> None:
    import gzip

    csv = tmp_path / "p.csv.gz"
    csv.write_bytes(gzip.compress(b"request_id,model,probabilities\na,m,0.5\nb,m,0.25\n"))
    jsonl = tmp_path / "p.jsonl.gz"
    jsonl.write_bytes(
        gzip.compress(b'{"request_id": "c", "model": "m", "probabilities": [0.5, 0.5], '
                      b'"timestamp": "2026-01-01T00:00:00Z"}\n')
    )  # fmt: skip
    summary = import_predictions([csv, jsonl], store)
    assert (summary.files, summary.rows, summary.inserted) == (2, 3, 3)
