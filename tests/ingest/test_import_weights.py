"""``xebench ingest predictions --weight COL``: a file's column of business weights
becomes each event's ``weight``, in the store and in its windows; bad weights name
the row and the column."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sklearn.metrics import log_loss

from xebench.cli.main import main
from xebench.ingest.files import IngestError, import_labels, import_predictions
from xebench.monitor.scope import Scope
from xebench.monitor.windows import Monitor
from xebench.store.event_store import EventStore

NOW = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=3)
P = [0.9, 0.2, 0.65, 0.4, 0.85, 0.1, 0.3, 0.55]
Y = [1, 0, 1, 1, 0, 0, 0, 1]
W = [2.5, 1, 10, 0.25, 3, 1, 1e-3, 7]


def _files(tmp_path: Path) -> tuple[Path, Path]:
    stamp = NOW.strftime("%Y-%m-%dT%H:%M:%SZ")
    lines = ["request_id,p,value,timestamp"]
    lines += [f"r{i},{p},{w},{stamp}" for i, (p, w) in enumerate(zip(P, W, strict=True))]
    predictions = tmp_path / "predictions.csv"
    predictions.write_text("\n".join(lines) + "\n")
    labels = tmp_path / "labels.csv"
    labels.write_text("request_id,label\n" + "".join(f"r{i},{y}\n" for i, y in enumerate(Y)))
    return predictions, labels


def _window(store: EventStore) -> Any:
    store.update_buckets()
    return Monitor(store).window(Scope("default", "fraud", window="1h"))


def test_the_cli_imports_a_weight_column_into_weighted_windows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    predictions, labels = _files(tmp_path)
    db = tmp_path / "events.duckdb"
    args = ["ingest", "predictions", str(predictions), "--db", str(db), "--model", "fraud"]
    assert main([*args, "--prob", "p", "--weight", "value"]) == 0
    assert main(["ingest", "labels", str(labels), "--db", str(db)]) == 0
    # Imported again, as --weight-col: the same events, so duplicates.
    assert main([*args, "--prob", "p", "--weight-col", "value"]) == 0
    assert "0 new, 8 duplicates" in capsys.readouterr().out
    with EventStore(db) as store:
        with store.cursor() as cursor:
            stored = cursor.execute("SELECT weight FROM predictions ORDER BY request_id")
            assert [w for (w,) in stored.fetchall()] == W
        window = _window(store)
    assert (window.n, window.n_predictions) == (8, 8)
    assert window.weight == pytest.approx(sum(W), rel=1e-12)
    assert window.log_loss == pytest.approx(log_loss(Y, P, sample_weight=W), rel=1e-9)
    # Without the option every event weighs 1: the 6 rows weighing otherwise are other
    # events (a conflict), the 2 weighing 1 the same.
    assert main([*args, "--prob", "p"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert (
        "row 1: /request_id: request_id 'r0' of model 'fraud' is already stored with a "
        "different payload" in err
    )
    assert "(and 5 more bad row(s) among rows 1-8)" in err


def test_a_parquet_weight_column_and_its_bad_values(tmp_path: Path) -> None:
    path = tmp_path / "predictions.parquet"
    table = pa.table(
        {
            "request_id": [f"r{i}" for i in range(len(P))],
            "model": ["fraud"] * len(P),
            "probabilities": P,
            "timestamp": [NOW] * len(P),
            "w": pa.array(W, pa.float32()),  # any numeric type
        }
    )
    pq.write_table(table, path)
    labels = tmp_path / "labels.csv"
    labels.write_text("request_id,label\n" + "".join(f"r{i},{y}\n" for i, y in enumerate(Y)))
    with EventStore(":memory:") as store:
        assert import_predictions(path, store, weight="w").inserted == len(P)
        import_labels(labels, store)
        weights = [float(v) for v in pa.array(W, pa.float32()).to_pylist()]
        assert _window(store).log_loss == pytest.approx(
            log_loss(Y, P, sample_weight=weights), rel=1e-6
        )
        for bad, message in (
            (None, "weight is missing (empty or null)"),
            (0.0, "must be a finite number in [1e-12, 1e12] (> 0); got 0.0"),
            (-2.0, "must be a finite number in [1e-12, 1e12] (> 0); got -2.0"),
            (float("inf"), "must be a finite number in [1e-12, 1e12] (> 0); got inf"),
        ):
            values = [1.0, bad, 2.0]
            pq.write_table(
                pa.table({"request_id": ["a", "b", "c"], "model": ["fraud"] * 3,
                          "probabilities": [0.5] * 3, "w": pa.array(values, pa.float64())}),
                path,
            )  # fmt: skip
            with pytest.raises(IngestError) as caught:
                import_predictions(path, store, weight="w")
            error = caught.value
            assert (error.row, error.field, error.column) == (2, "/weight", "w")
            assert message in str(error)
        # A text column (one bad cell in a CSV): numbers in it are numbers, the rest refused.
        text = tmp_path / "text.csv"
        text.write_text("request_id,model,probabilities,w\nx1,fraud,0.5,2\nx2,fraud,0.5,lots\n")
        with pytest.raises(IngestError) as caught:
            import_predictions(text, store, weight="w")
        assert (caught.value.row, caught.value.column) == (2, "w")
        assert "must be a number (omit it for 1" in str(caught.value)
        assert "got 'lots'" in str(caught.value)
        # A missing column is named before anything is read.
        with pytest.raises(Exception, match="nope"):
            import_predictions(text, store, weight="nope")
