"""`xebench xeb`: the table, the JSON document, every format, and exit 2 on bad input."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import xebench as xb
from xebench.cli.main import main

SHOTS = "circuit,p\n1,0.5\n1,0.25\n2,0.5\n2,0.125\n"
ARGS = ["--circuit", "circuit", "--prob", "p", "--n-qubits", "2"]


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    path = tmp_path / "shots.csv"
    path.write_text(SHOTS)
    return path


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_the_table_shows_each_circuit_and_the_pooled_estimate(
    shots: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _run(capsys, "xeb", str(shots), *ARGS)
    assert code == 0
    assert "4 shots of 2 circuit(s), 2 qubits (D = 4)" in out
    lines = {line.split()[1]: line for line in out.splitlines() if line.startswith("│")}
    assert "0.5000 [-0.4800, 1.4800]" in lines["1"]
    assert "0.3750 [-0.3600, 1.1100]" in lines["pooled"]
    assert "0.7505 [0.1001, 1.4009]" in lines["pooled"]
    code, out, _ = _run(capsys, "xeb", str(shots), *ARGS, "--kind", "linear")
    assert code == 0 and "linear XEB" in out and "log XEB" not in out


def test_json_has_per_circuit_and_pooled_results(
    shots: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _run(capsys, "xeb", str(shots), *ARGS, "--json", "--confidence", "0.9")
    assert code == 0
    document = json.loads(out)
    assert set(document) == {
        "domain", "files", "n_qubits", "dimension", "confidence", "n_shots", "n_circuits",
        "pooled", "circuits",
    }  # fmt: skip
    assert document["domain"] == "quantum-xeb" and document["confidence"] == 0.9
    assert [c["circuit"] for c in document["circuits"]] == ["1", "2"]
    pooled = document["pooled"]
    assert pooled["linear"] == xb.xeb_fidelity([0.5, 0.25, 0.5, 0.125], 2) == 0.375
    keys = {"n", "linear", "linear_se", "linear_ci", "log", "log_se", "log_ci", "n_zero"}
    assert keys <= set(pooled) and keys <= set(document["circuits"][0])


def test_parquet_jsonl_and_several_files_give_the_same_answer(
    tmp_path: Path, shots: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = np.random.default_rng(0)
    ids = rng.choice(["a", "b", "c"], size=400).tolist()
    p = (rng.exponential(size=400) / 32).clip(0, 1).tolist()
    pq.write_table(pa.table({"circuit": ids[:250], "p": p[:250]}), tmp_path / "a.parquet")
    with gzip.open(tmp_path / "b.jsonl.gz", "wt") as out:
        for c, v in zip(ids[250:], p[250:], strict=True):
            out.write(json.dumps({"circuit": c, "p": v}) + "\n")
    files = [str(tmp_path / "a.parquet"), str(tmp_path / "b.jsonl.gz")]
    args = ["--circuit", "circuit", "--prob", "p", "--n-qubits", "5", "--json"]
    code, out, _ = _run(capsys, "xeb", *files, *args)
    assert code == 0
    document = json.loads(out)
    expected = xb.XEBCircuits(5).update(ids, p).result()
    assert document["pooled"]["linear"] == pytest.approx(expected["pooled"]["linear"], rel=1e-12)
    assert document["pooled"]["log"] == pytest.approx(expected["pooled"]["log"], rel=1e-12)
    assert document["n_shots"] == 400 and document["files"] == files


def test_a_zero_probability_makes_log_xeb_null_in_json_and_says_so_in_the_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "zero.csv"
    path.write_text("circuit,p\nx,0\nx,0.5\n")
    code, out, _ = _run(capsys, "xeb", str(path), *ARGS, "--json")
    pooled = json.loads(out)["pooled"]
    assert code == 0 and pooled["log"] is None and pooled["n_zero"] == 1
    assert pooled["linear"] == 0.0
    code, out, _ = _run(capsys, "xeb", str(path), *ARGS)
    assert code == 0 and "-inf (p = 0 shots)" in out


@pytest.mark.parametrize(
    ("content", "args", "message"),
    [
        ("circuit,p\n1,0.5\n1,1.5\n", ARGS, "'p': probabilities must be in [0, 1]; row 2 is 1.5"),
        ("circuit,p\n1,0.5\n1,-0.5\n", ARGS, "column 'p': probabilities must be in [0, 1]; row 2"),
        ("circuit,p\n1,0.5\n2,abc\n", ARGS, "column 'p': is not a number; row 2 is 'abc'"),
        ("circuit,p\n1,0.5\n2,\n", ARGS, "column 'p': probability is missing"),
        ("circuit,p\n1,0.5\n,0.25\n", ARGS, "column 'circuit': circuit id is missing"),
        ("circuit,p\n1,0.5\n", ["--circuit", "c", "--prob", "p", "--n-qubits", "2"],
         "no column 'c'; available columns: circuit, p"),
        ("circuit,p\n1,0.5\n", [*ARGS[:-1], "0"], "n_qubits: must be an integer in [1, 1023]"),
        ("circuit,p\n1,0.5\n", [*ARGS, "--kind", "hog"], "--kind must be linear, log or both"),
        ("circuit,p\n1,0.5\n", [*ARGS, "--confidence", "1.5"], "--confidence must be in (0, 1)"),
    ],
)  # fmt: skip
def test_bad_input_exits_2_naming_the_file_row_and_column(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, args: list[str], message: str
) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content)
    code, out, err = _run(capsys, "xeb", str(path), *args)
    assert code == 2 and out == ""
    assert err.startswith("error: ") and err.count("\n") == 1
    assert message in err
    if "column '" in message:
        assert str(path) in err


def test_a_missing_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "xeb", str(tmp_path / "nope.csv"), *ARGS)
    assert code == 2 and "nope.csv" in err


def test_the_command_is_listed_in_help(capsys: pytest.CaptureFixture[str]) -> None:
    main(["--help"])
    assert "xeb" in capsys.readouterr().out
