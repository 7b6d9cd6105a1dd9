"""The monitoring commands against a database file: metrics, compare, drift --model, rebuild.

One stream is written to a DuckDB file with known truths (probabilities,
labels, a planted degradation in version v2 and a shift of feature ``x`` in
the second hour); the commands' JSON is checked against those raw events with
scikit-learn, and their exit codes against the planted facts.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.metrics import log_loss

from html_checks import external_references, parse
from xebench.cli.main import main
from xebench.ingest.events import parse_labels, parse_predictions
from xebench.store.event_store import EventStore

END = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=5)
MIDDLE = END - timedelta(hours=1)
START = END - timedelta(hours=2)
N_PER_HOUR = {"v1": 1500, "v2": 700, "v3": 700}


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


@pytest.fixture(scope="module")
def stream(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """``fraud`` v1 (baseline), v2 (overconfident and noisy), v3 (made like v1) over two
    hours; ``x`` moves by one standard deviation in the second hour, ``y`` never does;
    90% of the predictions get a label. The first hour is folded before the second
    is written, so the feature bins are learned from it."""
    rng = np.random.default_rng(11)
    db = tmp_path_factory.mktemp("monitor") / "events.duckdb"
    truth: dict[str, list] = {"version": [], "p": [], "y": [], "labelled": []}
    with EventStore(db) as store:
        for hour, begin in enumerate((START, MIDDLE)):
            predictions, labels = [], []
            for version, n in N_PER_HOUR.items():
                z = rng.normal(-0.5, 1.5, n)
                y = (rng.random(n) < _sigmoid(z)).astype(int)
                noise = 1.8 * z + 0.8 + rng.normal(0, 1.0, n) if version == "v2" else z
                p = np.clip(_sigmoid(noise + rng.normal(0, 0.3, n)), 1e-4, 1 - 1e-4)
                labelled = rng.random(n) < 0.9
                x = rng.normal(float(hour), 1.0, n)
                other = rng.normal(0.0, 1.0, n)
                offsets = rng.integers(0, 3_600_000, n)
                for i in range(n):
                    rid = f"{version}-{hour}-{i}"
                    predictions.append(
                        {
                            "request_id": rid,
                            "model": "fraud",
                            "version": version,
                            "timestamp": _iso(begin + timedelta(milliseconds=int(offsets[i]))),
                            "probabilities": float(p[i]),
                            "cohort": {"region": "eu" if i % 3 == 0 else "us"},
                            "features": {"x": float(x[i]), "y": float(other[i])},
                        }
                    )
                    if labelled[i]:
                        labels.append({"request_id": rid, "model": "fraud", "label": int(y[i])})
                truth["version"] += [version] * n
                truth["p"] += p.tolist()
                truth["y"] += y.tolist()
                truth["labelled"] += labelled.tolist()
            for i in range(0, len(predictions), 2000):
                store.insert_predictions(
                    parse_predictions(predictions[i : i + 2000], tenant="default")
                )
            store.insert_labels(parse_labels(labels, tenant="default"))
            store.update_buckets()
    return {"db": db, **{k: np.array(v) for k, v in truth.items()}}


def run(capsys: pytest.CaptureFixture[str], *args: Any) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_metrics_window_equals_sklearn_on_the_raw_events(stream, capsys, tmp_path) -> None:
    out_path = tmp_path / "w.json"
    code, out, err = run(
        capsys, "metrics", "--db", stream["db"], "--model", "fraud", "--version", "v1",
        "--from", _iso(START), "--to", _iso(END), "--json", out_path,
    )  # fmt: skip
    assert code == 0, err
    window = json.loads(out_path.read_text())
    mine = stream["version"] == "v1"
    scored = mine & stream["labelled"]
    assert window["n_predictions"] == int(mine.sum()) == 2 * N_PER_HOUR["v1"]
    assert window["n_labelled"] == int(scored.sum())
    expected = log_loss(stream["y"][scored], stream["p"][scored], labels=[0, 1])
    assert window["log_loss"] == pytest.approx(expected, rel=1e-9)
    assert (window["from"], window["to"]) == (_iso(START), _iso(END))
    assert "fraud v1" in out and f"{window['log_loss']:.4f}" in out


def test_metrics_series_partitions_the_range(stream, capsys, tmp_path) -> None:
    out_path = tmp_path / "s.json"
    code, out, err = run(
        capsys, "metrics", "--db", stream["db"], "--model", "fraud",
        "--from", _iso(START), "--to", _iso(END), "--step", "30m", "--json", out_path,
    )  # fmt: skip
    assert code == 0, err
    series = json.loads(out_path.read_text())["series"]
    assert len(series) == 4
    assert [w["from"] for w in series] == [
        _iso(START + timedelta(minutes=30 * k)) for k in range(4)
    ]
    assert sum(w["n_predictions"] for w in series) == stream["version"].size
    assert sum(w["n_labelled"] for w in series) == int(stream["labelled"].sum())
    assert "every 30m" in out


@pytest.mark.parametrize(
    ("candidate", "options", "exit_code", "word"),
    [
        ("fraud:v2", [], 1, "FAIL"),
        ("fraud:v3", [], 0, "PASS"),
        ("fraud:v3", ["--min-samples", 100_000], 3, "INCONCLUSIVE"),
    ],
)
def test_compare_exit_code_is_the_gate_decision(
    stream, capsys, tmp_path, candidate, options, exit_code, word
) -> None:
    out_path = tmp_path / "c.json"
    code, out, err = run(
        capsys, "compare", "--db", stream["db"], "--candidate", candidate,
        "--baseline", "fraud:v1", "--window", "3h", "--json", out_path, *options,
    )  # fmt: skip
    assert code == exit_code, (out, err)
    assert word in out.upper()
    document = json.loads(out_path.read_text())
    assert document["decision"]["status"] == {0: "pass", 1: "fail", 3: "inconclusive"}[code]


def test_drift_of_a_model_ranks_the_shifted_feature_first(stream, capsys, tmp_path) -> None:
    json_path, html_path = tmp_path / "d.json", tmp_path / "d.html"
    code, out, err = run(
        capsys, "drift", "--db", stream["db"], "--model", "fraud", "--version", "v1",
        "--from", _iso(MIDDLE), "--to", _iso(END), "--json", json_path, "--html", html_path,
    )  # fmt: skip
    assert code == 0, err
    document = json.loads(json_path.read_text())
    assert document["reference"]["kind"] == "rolling"
    assert document["reference"]["from"] == _iso(START)
    assert document["reference"]["to"] == _iso(MIDDLE)
    features = {f["feature"]: f for f in document["features"]}
    assert document["features"][0]["feature"] == "x"
    assert features["x"]["verdict"] == "drift"
    assert features["y"]["verdict"] == "stable"
    assert features["x"]["n_reference"] == features["x"]["n_current"] == N_PER_HOUR["v1"]
    assert document["drifted"] == ["x"]
    assert document["current_files"] == [f"fraud v1, window: {_iso(MIDDLE)} to {_iso(END)}"]
    assert f"reference: fraud v1, rolling: {_iso(START)} to {_iso(MIDDLE)}" in out
    page = html_path.read_text()
    assert external_references(page) == [] and parse(page).loads == []
    assert "fraud v1, rolling" in page and "chart-feature-0" in page


def test_drift_against_a_version_reference(stream, capsys, tmp_path) -> None:
    json_path = tmp_path / "d.json"
    code, _, err = run(
        capsys, "drift", "--db", stream["db"], "--model", "fraud", "--version", "v2",
        "--reference", "version:v1", "--from", _iso(START), "--to", _iso(END),
        "--json", json_path, "--quiet",
    )  # fmt: skip
    assert code == 0, err
    document = json.loads(json_path.read_text())
    features = {f["feature"]: f for f in document["features"]}
    # Same feature distributions in both versions; v2's scores are overconfident.
    assert features["x"]["verdict"] == features["y"]["verdict"] == "stable"
    assert features["__score__"]["verdict"] == "drift"
    assert document["reference"] == {
        "kind": "version", "version": "v1", "from": "1970-01-01T00:00:00Z",
        "to": _iso(END), "file": None, "source": None, "uploaded_at": None,
    }  # fmt: skip


def test_drift_of_a_cohort_without_its_feature_histograms_says_so(stream, capsys) -> None:
    code, out, err = run(
        capsys, "drift", "--db", stream["db"], "--model", "fraud", "--cohort", "region:eu",
        "--from", _iso(MIDDLE), "--to", _iso(END),
    )  # fmt: skip
    assert code == 0, err
    assert "no feature histograms of this cohort" in out
    assert "__score__" in out and "│ x " not in out


def test_rebuild_recomputes_the_same_windows(stream, capsys, tmp_path) -> None:
    args = ["metrics", "--db", stream["db"], "--model", "fraud", "--window", "3h", "--json"]
    assert run(capsys, *args, tmp_path / "before.json")[0] == 0
    code, out, err = run(capsys, "rebuild", "--db", stream["db"])
    assert code == 0, err
    n = stream["version"].size
    assert f"rebuilt the buckets of {n:,} predictions and {int(stream['labelled'].sum()):,}" in out
    assert run(capsys, *args, tmp_path / "after.json")[0] == 0
    before = json.loads((tmp_path / "before.json").read_text())
    after = json.loads((tmp_path / "after.json").read_text())
    # Counts exactly; float sums to 1e-12 (a rebuild adds the same terms in another order).
    assert after.keys() == before.keys()
    for key, value in before.items():
        if isinstance(value, float | list):
            assert after[key] == pytest.approx(value, rel=1e-12), key
        else:
            assert after[key] == value, key
    assert after["n_predictions"] == n and after["n_labelled"] == int(stream["labelled"].sum())


def test_rebuild_refuses_to_lose_history_that_retention_deleted(capsys, tmp_path) -> None:
    db = tmp_path / "old.duckdb"
    now = datetime.now(UTC)
    events = [
        {
            "request_id": f"r{i}",
            "model": "m",
            "timestamp": _iso(now - timedelta(hours=6 * i + 1)),
            "probabilities": 0.3,
        }
        for i in range(12)
    ]
    with EventStore(db) as store:
        store.insert_predictions(parse_predictions(events, tenant="default"))
        store.update_buckets()
        assert store.apply_retention(1.5, now=now)["predictions"] == 6
    code, _, err = run(capsys, "rebuild", "--db", db)
    assert code == 2
    assert "retention deleted the rest" in err and "--force" in err
    args = ["metrics", "--db", db, "--model", "m", "--window", "7d", "--json"]
    assert run(capsys, *args, tmp_path / "kept.json")[0] == 0
    assert json.loads((tmp_path / "kept.json").read_text())["n_predictions"] == 12
    code, out, err = run(capsys, "rebuild", "--db", db, "--force")
    assert code == 0, err
    assert "rebuilt the buckets of 6 predictions" in out
    assert run(capsys, *args, tmp_path / "after.json")[0] == 0
    assert json.loads((tmp_path / "after.json").read_text())["n_predictions"] == 6


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["drift", "--model", "fraud", "--current", "c.csv"], "--current compare files offline"),
        (["drift", "--model", "fraud", "--reference", "rolling", "--reference", "version:v1"],
         "give one --reference"),
        (["drift", "--window", "1h", "--reference", "a.csv", "--current", "b.csv"],
         "--db, --window need --model"),
        (["drift", "--model", "fraud", "--reference", "bogus"], "reference"),
        (["drift", "--model", "nope"], "no model 'nope'"),
        (["metrics", "--model", "fraud", "--step", "90s"], "step"),
        (["compare", "--candidate", "fraud:v2", "--baseline", "fraud:v1", "--mode", "x"], "mode"),
    ],
)  # fmt: skip
def test_bad_usage_exits_2_with_one_line(stream, capsys, args, message) -> None:
    code, out, err = run(capsys, *args, "--db", stream["db"])
    assert code == 2, (out, err)
    assert err.startswith("error: ") and message in err, err
    assert len(err.strip().splitlines()) == 1, err


def test_a_missing_database_is_named(capsys, tmp_path: Path) -> None:
    missing = tmp_path / "none.duckdb"
    for command in (["metrics", "--model", "m"], ["drift", "--model", "m"], ["rebuild"]):
        code, _, err = run(capsys, *command, "--db", missing)
        assert code == 2
        assert f"no event database at {missing}" in err
        assert not missing.exists()
