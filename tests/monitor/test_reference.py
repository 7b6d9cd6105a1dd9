"""Drift references supplied as data: counting in the monitoring bins, upload, file, CLI.

The strongest check: a reference holding exactly the feature values of the
window's own events (as a file or an upload, in every format) must give the
very counts the fold gave those events -- JS 0 for every feature -- whatever
the value types (floats, integers, texts, booleans, missing values).
"""

from __future__ import annotations

import gzip
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from xebench.cli.main import main
from xebench.ingest.events import Limits, parse_predictions
from xebench.monitor.references import count_file, count_tables, read_upload
from xebench.monitor.windows import Monitor, MonitorSettings, Scope
from xebench.service.app import create_app
from xebench.service.config import ServiceConfig, TokenEntry, TokenRegistry, hash_token
from xebench.store.buckets import FeatureBins, MonitorConfig
from xebench.store.event_store import EventStore

NOW = datetime.now(UTC).replace(second=0, microsecond=0)
N = 1500


def _values(rng: np.random.Generator, shift: float = 0.0) -> dict[str, list[Any]]:
    """Feature columns with every kind of value, about 5% missing in each."""
    x = rng.normal(shift, 1.0, N)
    n = rng.integers(0, 20, N)
    c = rng.choice(["red", "green", "blue", "black"], N, p=[0.4, 0.3, 0.2, 0.1])
    flag = rng.random(N) < 0.3
    gone = {name: rng.random(N) < 0.05 for name in ("x", "n", "c", "flag")}
    return {
        "x": [None if gone["x"][i] else float(x[i]) for i in range(N)],
        "n": [None if gone["n"][i] else int(n[i]) for i in range(N)],
        "c": [None if gone["c"][i] else str(c[i]) for i in range(N)],
        "flag": [None if gone["flag"][i] else bool(flag[i]) for i in range(N)],
    }


def _events(values: dict[str, list[Any]], start: datetime, prefix: str) -> list[dict]:
    return [
        {
            "request_id": f"{prefix}{i}",
            "model": "m",
            "timestamp": (start + timedelta(seconds=2 * i)).isoformat(),
            "probabilities": 0.4,
            "features": {k: v[i] for k, v in values.items() if v[i] is not None},
        }
        for i in range(N)
    ]


@pytest.fixture(scope="module")
def world() -> dict[str, Any]:
    """Model ``m``: an hour of events (bins learned from them), then the current hour."""
    rng = np.random.default_rng(5)
    store = EventStore(":memory:", monitor=MonitorConfig(learn_after=300))
    first = NOW - timedelta(hours=2)
    older = _values(rng)
    current = _values(rng)
    for values, start, prefix in ((older, first, "a"), (current, NOW - timedelta(hours=1), "b")):
        events = _events(values, start, prefix)
        store.insert_predictions(parse_predictions(events, tenant="default"))
        store.update_buckets()
    return {"store": store, "current": current, "shifted": _values(rng, shift=1.0)}


def _table(values: dict[str, list[Any]]) -> pa.Table:
    return pa.table(
        {
            "x": pa.array(values["x"], pa.float64()),
            "n": pa.array(values["n"], pa.int64()),
            "c": pa.array(values["c"], pa.string()),
            "flag": pa.array(values["flag"], pa.bool_()),
            "email": pa.array([f"user{i}@example.com" for i in range(N)]),
        }
    )


def _body(table: pa.Table, kind: str) -> tuple[bytes, str]:
    buffer = io.BytesIO()
    if kind == "parquet":
        pq.write_table(table, buffer)
        return buffer.getvalue(), "application/vnd.apache.parquet"
    if kind == "csv":
        pyarrow.csv.write_csv(table, buffer)
        return buffer.getvalue(), "text/csv"
    lines = [
        json.dumps({k: v for k, v in row.items() if v is not None}) for row in table.to_pylist()
    ]
    return ("\n".join(lines) + "\n").encode(), "application/x-ndjson"


def _z(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _window(store: EventStore, reference: str, settings: MonitorSettings | None = None) -> dict:
    monitor = Monitor(store, settings)
    return monitor.drift(Scope("default", "m", window="1h", now=NOW), reference=reference).to_dict()


# --- counting -------------------------------------------------------------------------------


def test_counts_equal_numpy_on_the_bins() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(0, 1, 500)
    x[::50] = np.nan
    colour = rng.choice(["a", "b", "c"], 500).astype(object)
    colour[::7] = None
    edges = (-1.0, 0.0, 0.5)
    bins = {
        "x": FeatureBins("x", "numeric", edges=edges),
        "colour": FeatureBins("colour", "categorical", categories=("a", "b")),
    }
    table = pa.table({"x": x, "colour": pa.array(colour.tolist(), pa.string())})
    got = count_tables([table.slice(0, 200), table.slice(200)], bins)
    finite = x[np.isfinite(x)]
    expected_x = np.bincount(np.searchsorted(edges, finite, side="left"), minlength=4).tolist()
    assert got.counts["x"].tolist() == [*expected_x, float(np.isnan(x).sum())]
    present = [v for v in colour if v is not None]
    expected_colour = [present.count("a"), present.count("b"), present.count("c")]
    assert got.counts["colour"].tolist() == [*expected_colour, float(500 - len(present))]
    assert got.rows == 500 and got.ignored == []


def test_a_text_or_boolean_is_missing_for_numeric_bins() -> None:
    bins = {"x": FeatureBins("x", "numeric", edges=(0.0,))}
    assert count_tables([pa.table({"x": ["1.5", "no"]})], bins).counts["x"].tolist() == [0, 0, 2]
    assert count_tables([pa.table({"x": [True, False]})], bins).counts["x"].tolist() == [0, 0, 2]


@pytest.mark.parametrize("kind", ["parquet", "csv", "jsonl"])
def test_the_windows_own_values_as_a_reference_give_its_exact_counts(world, kind) -> None:
    store = world["store"]
    body, media = _body(_table(world["current"]), kind)
    counted = count_tables([read_upload(body, media)], store.buckets.feature_bins("default", "m"))
    assert counted.ignored == ["email"]
    store.put_reference("default", "m", counted.counts, counted.rows, kind)
    report = _window(store, "uploaded")
    features = {f["feature"]: f for f in report["features"]}
    assert set(features) == {"x", "n", "c", "flag"}  # no scores or labels in a data reference
    for name, result in features.items():
        assert result["reference_share"] == result["current_share"], (kind, name)
        assert result["js"] == 0.0 and result["verdict"] == "stable", (kind, name)
        assert result["n_reference"] == result["n_current"] == N
    assert report["n_reference"] == N
    assert report["reference"]["kind"] == "uploaded" and report["reference"]["source"] == kind


def test_a_configured_file_reference_counts_as_the_upload_does(world, tmp_path: Path) -> None:
    store = world["store"]
    path = tmp_path / "reference.parquet"
    pq.write_table(_table(world["shifted"]), path, row_group_size=400)
    settings = MonitorSettings(references={"m": f"file:{path}"})
    from_file = _window(store, None, settings)  # the model's configured reference
    assert from_file["reference"]["kind"] == "file"
    assert from_file["reference"]["file"] == str(path)
    bins = store.buckets.feature_bins("default", "m")
    counted = count_file(path, bins)
    store.put_reference("default", "m", counted.counts, counted.rows, "same")
    uploaded = _window(store, "uploaded")
    assert from_file["features"] == uploaded["features"]
    assert from_file["features"][0]["feature"] == "x"
    assert from_file["features"][0]["verdict"] == "drift"
    assert [f["verdict"] for f in from_file["features"][1:]] == ["stable"] * 3


def test_a_missing_reference_file_is_named(world, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"reference: cannot read the reference file .*nope\.csv"):
        _window(world["store"], f"file:{tmp_path / 'nope.csv'}")


def test_unreadable_or_empty_uploads_are_data_errors() -> None:
    with pytest.raises(ValueError, match="cannot read as parquet"):
        read_upload(b"not parquet", "application/vnd.apache.parquet")
    with pytest.raises(ValueError, match="holds no rows"):
        read_upload(b"x,y\n", "text/csv")


def test_references_survive_reopen_and_upgrade(tmp_path: Path) -> None:
    path = tmp_path / "events.duckdb"
    with EventStore(path) as store:
        store.put_reference("t", "m", {"x": np.array([1.0, 2.0, 3.0])}, 6, "ref.csv")
    with EventStore(path) as store:
        found = store.reference("t", "m")
        assert found is not None and found["rows"] == 6
        assert found["counts"]["x"].tolist() == [1.0, 2.0, 3.0]
        assert store.reference("other", "m") is None


# --- the service ----------------------------------------------------------------------------


def _upload(client: TestClient, body: bytes, media: str, **headers: str):
    return client.put("/v1/references/m", content=body, headers={"content-type": media, **headers})


def test_upload_then_drift_against_it(world) -> None:
    with TestClient(create_app(world["store"])) as client:
        body, media = _body(_table(world["shifted"]), "csv")
        reply = _upload(client, gzip.compress(body), media, **{"content-encoding": "gzip"})
        assert reply.status_code == 200, reply.text
        answer = reply.json()
        assert answer["rows"] == N and answer["ignored_columns"] == ["email"]
        assert answer["missing_features"] == []
        assert answer["features"] == {k: N for k in ("c", "flag", "n", "x")}
        assert client.get("/v1/references/m").json() == {
            k: v for k, v in answer.items() if k not in ("ignored_columns", "missing_features")
        }
        drift = client.get("/v1/drift?model=m&window=1h&reference=uploaded").json()
        assert drift["features"][0]["feature"] == "x"
        assert drift["features"][0]["verdict"] == "drift"
        assert drift["drifted"] == ["x"]
        assert client.delete("/v1/references/m").json() == {"model": "m", "deleted": True}
        assert client.get("/v1/references/m").status_code == 404
        gone = client.get("/v1/drift?model=m&window=1h&reference=uploaded")
        assert gone.status_code == 422 and "no uploaded reference" in gone.json()["detail"]


@pytest.mark.parametrize(
    ("body", "media", "status", "text"),
    [
        (b"x\n1\n", "text/plain", 415, "unsupported content type 'text/plain'"),
        (b"x\n", "text/csv", 422, "holds no rows"),
        (b"PAR1 nope", "application/vnd.apache.parquet", 422, "cannot read as parquet"),
        (b"q,r\n1,2\n", "text/csv", 422, "no column of the reference is a monitored feature"),
    ],
)
def test_bad_uploads_are_refused_and_keep_the_stored_reference(
    world, body, media, status, text
) -> None:
    store = world["store"]
    store.put_reference("default", "m", {"x": np.ones(5)}, 5, "kept")
    with TestClient(create_app(store)) as client:
        reply = _upload(client, body, media)
        assert reply.status_code == status, reply.text
        assert text in reply.json()["detail"]
    assert store.reference("default", "m")["source"] == "kept"


def test_upload_limits_and_unknown_models(world) -> None:
    config = ServiceConfig(limits=Limits(max_body_bytes=1000))
    with TestClient(create_app(world["store"], config)) as client:
        body, media = _body(_table(world["current"]), "csv")
        assert _upload(client, body, media).status_code == 413
        reply = client.put(
            "/v1/references/nope", content=b"x\n1\n", headers={"content-type": "text/csv"}
        )
        assert reply.status_code == 404
    fresh = EventStore(":memory:")
    event = {"request_id": "r", "model": "m", "probabilities": 0.5, "features": {"x": 1.0}}
    fresh.insert_predictions(parse_predictions([event], tenant="default"))
    with TestClient(create_app(fresh)) as client:
        reply = client.put(
            "/v1/references/m", content=b"x\n1\n", headers={"content-type": "text/csv"}
        )
        assert reply.status_code == 409 and "no monitored features" in reply.json()["detail"]


def test_a_tenant_sees_only_its_own_references() -> None:
    registry = TokenRegistry(
        [
            TokenEntry("a", frozenset({"ingest", "read"}), hash_token("token-a")),
            TokenEntry("b", frozenset({"ingest", "read"}), hash_token("token-b")),
        ]
    )
    store = EventStore(":memory:", monitor=MonitorConfig(learn_after=10))
    for tenant in ("a", "b"):  # both tenants have a model "m" with bins for x
        events = [
            {"request_id": f"r{i}", "model": "m", "probabilities": 0.5, "features": {"x": i}}
            for i in range(20)
        ]
        store.insert_predictions(parse_predictions(events, tenant=tenant))
    store.update_buckets()
    as_a = {"Authorization": "Bearer token-a"}
    as_b = {"Authorization": "Bearer token-b"}
    with TestClient(create_app(store, ServiceConfig(tokens=registry))) as client:
        csv = {"content-type": "text/csv"}
        assert (
            client.put("/v1/references/m", content=b"x\n1\n", headers={**as_a, **csv}).status_code
            == 200
        )
        assert client.get("/v1/references/m", headers=as_a).json()["rows"] == 1
        assert client.get("/v1/references/m", headers=as_b).status_code == 404
        assert client.delete("/v1/references/m", headers=as_b).status_code == 404
        drift = client.get("/v1/drift?model=m&window=1h&reference=uploaded", headers=as_b)
        assert drift.status_code == 422
        assert client.get("/v1/references/m").status_code == 401
    assert store.reference("a", "m") is not None and store.reference("b", "m") is None


# --- the command line -----------------------------------------------------------------------


def test_cli_drift_against_a_reference_file(tmp_path: Path, capsys) -> None:
    db = tmp_path / "events.duckdb"
    rng = np.random.default_rng(9)
    with EventStore(db) as store:
        for start, prefix in ((NOW - timedelta(hours=2), "a"), (NOW - timedelta(hours=1), "b")):
            events = _events(_values(rng), start, prefix)
            store.insert_predictions(parse_predictions(events, tenant="default"))
            store.update_buckets()
    reference = tmp_path / "ref.csv"
    pyarrow.csv.write_csv(_table(_values(rng, shift=1.0)), reference)
    out_path = tmp_path / "d.json"
    code = main(
        ["drift", "--db", str(db), "--model", "m", "--window", "3h",
         "--reference", f"file:{reference}", "--json", str(out_path)]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    document = json.loads(out_path.read_text())
    assert document["drifted"] == ["x"]
    assert f"reference: m: file {reference}" in out


def test_the_client_uploads_files_and_tables(world, tmp_path: Path) -> None:
    import httpx

    from xebench.client.sdk import Client, ClientError

    with TestClient(create_app(world["store"])) as app:

        def forward(request: httpx.Request) -> httpx.Response:
            reply = app.request(
                request.method, request.url.path, content=request.content, headers=request.headers
            )
            return httpx.Response(reply.status_code, content=reply.content, headers=reply.headers)

        path = tmp_path / "validation.csv.gz"
        body, _ = _body(_table(world["current"]), "csv")
        path.write_bytes(gzip.compress(body))
        with Client("http://xebench.test", transport=httpx.MockTransport(forward)) as client:
            answer = client.upload_reference("m", path)
            assert (answer["rows"], answer["source"]) == (N, "validation.csv.gz")
            hour = f"from={_z(NOW - timedelta(hours=1))}&to={_z(NOW)}"
            stable = app.get(f"/v1/drift?model=m&{hour}&reference=uploaded").json()
            assert [f["js"] for f in stable["features"]] == [0.0] * 4
            answer = client.upload_reference(
                "m", _table(world["shifted"]).to_pandas(), name="shift"
            )
            assert (answer["rows"], answer["source"]) == (N, "shift")
            drifted = app.get("/v1/drift?model=m&window=1h&reference=uploaded").json()
            assert drifted["drifted"] == ["x"]
            with pytest.raises(ClientError) as refused:
                client.upload_reference("nope", path)
            assert refused.value.status == 404
            with pytest.raises(ValueError, match=r"must be a \.csv, \.jsonl"):
                client.upload_reference("m", tmp_path / "notes.txt")


def test_a_tab_separated_reference_reads_like_csv(world) -> None:
    table = _table(world["current"])
    buffer = io.BytesIO()
    pyarrow.csv.write_csv(table, buffer, pyarrow.csv.WriteOptions(delimiter="\t"))
    from_tsv = read_upload(buffer.getvalue(), "text/tab-separated-values")
    csv_body, _ = _body(table, "csv")
    assert from_tsv.equals(read_upload(csv_body, "text/csv"))
