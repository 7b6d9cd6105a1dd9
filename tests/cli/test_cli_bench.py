"""`xebench bench` and `xebench gate`: every option and error path, checked
against scikit-learn and SciPy on the same files."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from scipy import stats as scipy_stats
from sklearn.metrics import accuracy_score, brier_score_loss, log_loss

import xebench as xb
from html_checks import external_references
from xebench.cli.main import main

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "examples"))
import make_dataset  # noqa: E402

MODELS = ["p_calibrated", "p_overconfident", "p_underfit"]


@pytest.fixture(scope="module")
def columns() -> dict[str, np.ndarray]:
    return make_dataset.make(n_rows=3000, seed=7)


def write_csv(path: Path, columns: dict[str, Any]) -> Path:
    table = pa.table({k: list(v) if isinstance(v, np.ndarray) else v for k, v in columns.items()})
    import pyarrow.csv as pacsv

    pacsv.write_csv(table, path)
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory, columns: dict[str, np.ndarray]) -> dict:
    root = tmp_path_factory.mktemp("data")
    table = pa.table(dict(columns))
    csv_path = write_csv(root / "clicks.csv", columns)
    parquet_path = root / "clicks.parquet"
    pq.write_table(table, parquet_path)
    jsonl_path = root / "clicks.jsonl"
    with jsonl_path.open("w") as handle:
        for row in table.to_pylist():
            handle.write(json.dumps(row) + "\n")
    return {"csv": csv_path, "parquet": parquet_path, "jsonl": jsonl_path, "root": root}


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def bench_json(args: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> dict:
    out_path = tmp_path / "result.json"
    code, _, err = run(["bench", *args, "--json", out_path, "--quiet"], capsys)
    assert code == 0, err
    return json.loads(out_path.read_text())


def prob_args(names: list[str] = MODELS) -> list[str]:
    return [arg for name in names for arg in ("--prob", f"{name.removeprefix('p_')}={name}")]


# --- numbers ------------------------------------------------------------------


def test_bench_json_matches_sklearn(files, columns, tmp_path, capsys) -> None:
    result = bench_json([files["csv"], "--label", "clicked", *prob_args()], tmp_path, capsys)
    y = columns["clicked"]
    assert result["n_rows"] == len(y)
    losses = [m["log_loss"] for m in result["models"]]
    assert losses == sorted(losses), "models are listed best first"
    for model in result["models"]:
        p = columns[model["column"]]  # pyarrow writes floats with their shortest exact repr
        assert model["log_loss"] == pytest.approx(log_loss(y, p), rel=1e-9)
        assert model["brier"] == pytest.approx(brier_score_loss(y, p), rel=1e-9)
        assert model["accuracy"] == pytest.approx(accuracy_score(y, p > 0.5), rel=1e-12)
        prior = -(y.mean() * math.log(y.mean()) + (1 - y.mean()) * math.log(1 - y.mean()))
        assert model["prior_log_loss"] == pytest.approx(prior, rel=1e-9)
        assert model["skill"] == pytest.approx(1 - log_loss(y, p) / prior, rel=1e-9)
        assert model["perplexity"] == pytest.approx(math.exp(log_loss(y, p)), rel=1e-9)
        assert model["ece"] == pytest.approx(xb.calibration_error(y, p), rel=1e-9)
        nll = -np.log(np.where(y == 1, p, 1 - p))
        low, high = scipy_stats.t.interval(
            0.95, len(y) - 1, loc=nll.mean(), scale=scipy_stats.sem(nll)
        )
        assert model["log_loss_ci"] == pytest.approx([low, high], rel=1e-9)
        assert model["clipped"] == 0
    ref = columns["p_calibrated"]
    nll_ref = -np.log(np.where(y == 1, ref, 1 - ref))
    for comparison in result["comparisons"]:
        assert comparison["reference"] == "calibrated"
        p = columns["p_" + comparison["model"]]
        nll = -np.log(np.where(y == 1, p, 1 - p))
        assert comparison["delta"] == pytest.approx((nll - nll_ref).mean(), rel=1e-9)
        t = scipy_stats.ttest_rel(nll, nll_ref)
        assert comparison["p_value"] == pytest.approx(t.pvalue, rel=1e-6, abs=1e-300)
        assert comparison["relative_delta"] == pytest.approx(
            (nll - nll_ref).mean() / nll_ref.mean(), rel=1e-9
        )


def test_same_numbers_from_csv_parquet_and_jsonl(files, tmp_path, capsys) -> None:
    args = ["--label", "clicked", *prob_args(), "--cohort", "region"]
    results = [
        bench_json([files[kind], *args], tmp_path, capsys) for kind in ("csv", "parquet", "jsonl")
    ]
    for other in results[1:]:
        for a, b in zip(results[0]["models"], other["models"], strict=True):
            assert a["name"] == b["name"] and a["n"] == b["n"]
            assert a["log_loss"] == pytest.approx(b["log_loss"], rel=1e-12)
            assert a["ece"] == pytest.approx(b["ece"], rel=1e-12, abs=1e-15)
        assert results[0]["cohorts"].keys() == other["cohorts"].keys()


def test_chunked_reading_gives_the_single_chunk_result(files) -> None:
    kwargs = {"label": "clicked", "probs": MODELS, "cohorts": ["region", "device"]}
    one = xb.benchmark(files["parquet"], batch_rows=10**6, **kwargs).to_dict()
    many = xb.benchmark(files["parquet"], batch_rows=97, **kwargs).to_dict()
    for a, b in zip(one["models"], many["models"], strict=True):
        assert a["n"] == b["n"] and a["clipped"] == b["clipped"]
        for key in ("log_loss", "brier", "ece", "accuracy", "skill"):
            assert a[key] == pytest.approx(b[key], rel=1e-12, abs=1e-15), key
        assert a["reliability"]["count"] == b["reliability"]["count"]
    for column in ("region", "device"):
        for value, rows in one["cohorts"][column].items():
            for a, b in zip(rows, many["cohorts"][column][value], strict=True):
                assert a["n"] == b["n"]
                assert a["log_loss"] == pytest.approx(b["log_loss"], rel=1e-12)


def test_cohorts_match_sklearn_on_each_subset(files, columns, tmp_path, capsys) -> None:
    result = bench_json(
        [files["csv"], "--label", "clicked", *prob_args(), "--cohort", "region",
         "--min-cohort-size", "200"],
        tmp_path,
        capsys,
    )  # fmt: skip
    y = columns["clicked"]
    for value, rows in result["cohorts"]["region"].items():
        mask = columns["region"] == value
        for row in rows:
            p = columns["p_" + row["name"]][mask]
            assert row["n"] == mask.sum()
            assert row["log_loss"] == pytest.approx(log_loss(y[mask], p, labels=[0, 1]), rel=1e-9)
            assert row["small"] == (mask.sum() < 200)
    note = result["cohort_notes"]["region"]
    assert note["small"] == [
        v for v, rows in result["cohorts"]["region"].items() if rows[0]["small"]
    ]


def test_base_2_weights_and_reference(files, columns, tmp_path, capsys) -> None:
    columns_w = dict(columns)
    rng = np.random.default_rng(3)
    columns_w["w"] = rng.uniform(0.5, 2.0, size=len(columns["clicked"]))
    path = write_csv(tmp_path / "weighted.csv", columns_w)
    result = bench_json(
        [path, "--label", "clicked", *prob_args(), "--weight", "w", "--base", "2",
         "--reference", "underfit"],
        tmp_path,
        capsys,
    )  # fmt: skip
    y, w = columns["clicked"], columns_w["w"]
    assert result["units"] == "bits"
    for model in result["models"]:
        p = columns[model["column"]]
        expected = log_loss(y, p, sample_weight=w) / math.log(2)
        assert model["log_loss"] == pytest.approx(expected, rel=1e-9)
        assert model["brier"] == pytest.approx(brier_score_loss(y, p, sample_weight=w), rel=1e-9)
    assert {c["reference"] for c in result["comparisons"]} == {"underfit"}
    assert {c["model"] for c in result["comparisons"]} == {"calibrated", "overconfident"}


def test_multiclass_parquet_lists_and_csv_json_arrays(tmp_path, capsys) -> None:
    rng = np.random.default_rng(5)
    n, classes = 600, ["cat", "dog", "fox"]
    probs = rng.dirichlet(np.ones(3), size=n)
    labels = np.array([classes[rng.choice(3, p=row)] for row in probs])
    table = pa.table({"animal": labels.tolist(), "model": probs.tolist()})
    pq.write_table(table, tmp_path / "animals.parquet")
    with (tmp_path / "animals.csv").open("w") as handle:
        handle.write("animal,model\n")
        for label, row in zip(labels, probs, strict=True):
            handle.write(f'{label},"{json.dumps(row.tolist())}"\n')
    for name in ("animals.parquet", "animals.csv"):
        result = bench_json(
            [tmp_path / name, "--label", "animal", "--prob", "model", "--classes", "cat,dog,fox"],
            tmp_path,
            capsys,
        )
        model = result["models"][0]
        assert model["log_loss"] == pytest.approx(log_loss(labels, probs, labels=classes), rel=1e-9)
        assert model["accuracy"] == pytest.approx(
            accuracy_score(labels, np.array(classes)[probs.argmax(1)])
        )
        assert result["inputs"]["classes"] == classes


def test_string_binary_labels_need_classes(tmp_path, capsys) -> None:
    path = write_csv(tmp_path / "spam.csv", {"kind": ["spam", "ham", "spam"], "p": [0.9, 0.2, 0.6]})
    code, _, err = run(["bench", path, "--label", "kind", "--prob", "p"], capsys)
    assert code == 2 and "--classes" in err
    result = bench_json(
        [path, "--label", "kind", "--prob", "p", "--classes", "ham,spam"], tmp_path, capsys
    )
    assert result["models"][0]["log_loss"] == pytest.approx(
        log_loss(["spam", "ham", "spam"], [0.9, 0.2, 0.6]), rel=1e-9
    )


def test_several_files_are_concatenated(files, columns, tmp_path, capsys) -> None:
    first = {k: v[:1000] for k, v in columns.items()}
    second = {k: v[1000:] for k, v in columns.items()}
    a, b = write_csv(tmp_path / "a.csv", first), write_csv(tmp_path / "b.csv", second)
    split = bench_json([a, b, "--label", "clicked", *prob_args()], tmp_path, capsys)
    whole = bench_json([files["csv"], "--label", "clicked", *prob_args()], tmp_path, capsys)
    assert split["n_rows"] == whole["n_rows"]
    assert split["inputs"]["files"] == [str(a), str(b)]
    for x, y in zip(split["models"], whole["models"], strict=True):
        assert x["log_loss"] == pytest.approx(y["log_loss"], rel=1e-12)


# --- outputs ------------------------------------------------------------------


def test_terminal_markdown_and_html_outputs(files, tmp_path, capsys) -> None:
    md, html = tmp_path / "r.md", tmp_path / "r.html"
    code, out, err = run(
        ["bench", files["csv"], "--label", "clicked", *prob_args(), "--cohort", "region",
         "--markdown", md, "--html", html],
        capsys,
    )  # fmt: skip
    assert code == 0 and err == "", "no progress bar when stderr is not a terminal"
    for text in ("Ranking", "calibrated", "overconfident", "underfit", "Cohorts by 'region'"):
        assert text in out
    markdown = md.read_text()
    assert markdown.startswith("### xebench benchmark")
    assert "| # | model |" in markdown and "**Cohorts by `region`**" in markdown
    page = html.read_text()
    assert page.lstrip().lower().startswith("<!doctype html")
    for name in ("calibrated", "overconfident", "underfit", "latam"):
        assert name in page
    assert external_references(page) == []


def test_quiet_prints_nothing(files, capsys) -> None:
    code, out, err = run(
        ["bench", files["csv"], "--label", "clicked", "--prob", "p_calibrated", "--quiet"], capsys
    )
    assert (code, out, err) == (0, "", "")


# --- gate ---------------------------------------------------------------------


def gate(args: list[str], capsys) -> tuple[int, str, str]:
    return run(["gate", *args], capsys)


def test_gate_exit_codes(files, tmp_path, capsys) -> None:
    data = [files["csv"], "--label", "clicked"]
    code, out, _ = gate(
        [*data, "--prob", "candidate=p_overconfident", "--prob", "baseline=p_calibrated"], capsys
    )
    assert code == 1 and out.startswith("FAIL:")
    code, out, _ = gate(
        [*data, "--prob", "candidate=p_calibrated", "--prob", "baseline=p_calibrated"], capsys
    )
    assert code == 0 and out.startswith("PASS:")
    code, out, _ = gate(
        [*data, "--prob", "candidate=p_overconfident", "--prob", "baseline=p_calibrated",
         "--min-samples", "100000"],
        capsys,
    )  # fmt: skip
    assert code == 3 and out.startswith("INCONCLUSIVE:")
    decision_path = tmp_path / "decision.json"
    code, _, _ = gate(
        [*data, "--prob", "candidate=p_underfit", "--prob", "baseline=p_calibrated",
         "--max-degradation", "0.5", "--looks", "3", "--json", decision_path],
        capsys,
    )  # fmt: skip
    decision = json.loads(decision_path.read_text())
    assert code == 0 and decision["status"] == "pass" and decision["looks"] == 3
    assert decision["alpha"] == pytest.approx(0.05 / 3)


def test_gate_needs_candidate_and_baseline(files, capsys) -> None:
    code, _, err = gate(
        [files["csv"], "--label", "clicked", "--prob", "a=p_calibrated", "--prob", "b=p_underfit"],
        capsys,
    )
    assert code == 2 and "candidate" in err and "Traceback" not in err


# --- errors: one line on stderr, exit code 2 -----------------------------------


def assert_one_line_error(code: int, err: str, *needles: str) -> None:
    assert code == 2
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in err, (needle, err)


def test_missing_column_lists_available_columns(files, capsys) -> None:
    code, _, err = run(["bench", files["csv"], "--label", "clicked", "--prob", "p_nope"], capsys)
    assert_one_line_error(code, err, "p_nope", "p_calibrated", "region")


def test_bad_probabilities_name_file_and_row(tmp_path, capsys) -> None:
    cases = {
        "nan.csv": ("clicked,p\n0,0.2\n1,nan\n", ["nan.csv", "row 2"]),
        "big.csv": ("clicked,p\n0,0.2\n1,0.4\n1,1.3\n", ["big.csv", "row 3", "1.3"]),
        "text.csv": ("clicked,p\n0,0.2\n1,high\n", ["text.csv", "row 2", "high"]),
    }
    for name, (text, needles) in cases.items():
        (tmp_path / name).write_text(text)
        code, _, err = run(["bench", tmp_path / name, "--label", "clicked", "--prob", "p"], capsys)
        assert_one_line_error(code, err, *needles)


def test_multiclass_errors(tmp_path, capsys) -> None:
    (tmp_path / "short.csv").write_text('y,m\n0,"[0.2, 0.3, 0.5]"\n1,"[0.5, 0.5]"\n')
    code, _, err = run(["bench", tmp_path / "short.csv", "--label", "y", "--prob", "m"], capsys)
    assert_one_line_error(code, err, "short.csv", "row 2")
    (tmp_path / "sum.csv").write_text('y,m\n0,"[0.2, 0.3, 0.5]"\n1,"[0.5, 0.3, 0.1]"\n')
    code, _, err = run(["bench", tmp_path / "sum.csv", "--label", "y", "--prob", "m"], capsys)
    assert_one_line_error(code, err, "sum.csv", "row 2", "sum")
    (tmp_path / "label.csv").write_text('y,m\n0,"[0.2, 0.3, 0.5]"\n7,"[0.5, 0.3, 0.2]"\n')
    code, _, err = run(["bench", tmp_path / "label.csv", "--label", "y", "--prob", "m"], capsys)
    assert_one_line_error(code, err, "label.csv", "row 2", "7")


def test_file_errors(tmp_path, capsys) -> None:
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "header.csv").write_text("clicked,p\n")
    (tmp_path / "fake.parquet").write_text("this is not parquet\n")
    (tmp_path / "data.xlsx").write_text("nope")
    for name, needle in (
        ("missing.csv", "missing.csv"),
        ("empty.csv", "empty.csv"),
        ("header.csv", "header.csv"),
        ("fake.parquet", "fake.parquet"),
        ("data.xlsx", ".parquet"),
    ):
        code, _, err = run(["bench", tmp_path / name, "--label", "clicked", "--prob", "p"], capsys)
        assert_one_line_error(code, err, needle)


def test_usage_errors(files, capsys) -> None:
    data = [files["csv"], "--label", "clicked", "--prob", "p_calibrated"]
    code, _, err = run(["bench", *data, "--base", "3"], capsys)
    assert_one_line_error(code, err, "--base")
    code, _, err = run(["bench", *data, "--reference", "nope"], capsys)
    assert_one_line_error(code, err, "reference", "nope")
    code, _, err = run(["bench", *data, "--prob", "p_calibrated"], capsys)
    assert_one_line_error(code, err, "unique")
    code, _, err = run(["bench", *data, "--confidence", "1.5"], capsys)
    assert_one_line_error(code, err, "confidence")
    code, _, err = run(["bench", files["csv"], "--prob", "p_calibrated"], capsys)
    assert code == 2 and "--label" in err


@pytest.mark.parametrize(
    ("command", "metavar"),
    [(["bench"], "DATA"), (["gate"], "DATA"), (["ingest", "predictions"], "FILE"),
     (["ingest", "labels"], "FILE")],
)  # fmt: skip
def test_help_names_the_file_arguments(command, metavar, capsys) -> None:
    """The files are DATA... / FILE... in the usage line and the arguments, not a type."""
    assert main([*command, "--help"]) == 0
    out = capsys.readouterr().out
    assert f"[OPTIONS] {metavar}...\n" in out
    [arguments] = [line for line in out.splitlines() if line.startswith(f"  {metavar}")]
    assert arguments.split()[0] == f"{metavar}..."
    assert "<list[" not in arguments and "{" not in out.splitlines()[0]


def test_console_script_exit_codes_for_real(files, tmp_path) -> None:
    """The installed entry point, in a subprocess: exit codes and clean stderr."""
    exe = [sys.executable, "-m", "xebench"]
    ok = subprocess.run(
        [*exe, "bench", str(files["csv"]), "--label", "clicked", "--prob", "p_calibrated"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert ok.returncode == 0 and ok.stderr == "" and "Ranking" in ok.stdout
    bad = subprocess.run(
        [*exe, "bench", str(tmp_path / "nope.csv"), "--label", "y", "--prob", "p"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert (
        bad.returncode == 2 and bad.stderr.startswith("error: ") and "Traceback" not in bad.stderr
    )


# --- Python API with DataFrames -------------------------------------------------


def test_benchmark_accepts_pandas_polars_and_arrow(columns) -> None:
    import pandas as pd
    import polars as pl

    data = {k: columns[k] for k in ("clicked", "region", *MODELS)}
    expected = log_loss(columns["clicked"], columns["p_calibrated"])
    for frame in (pd.DataFrame(data), pl.DataFrame(data), pa.table(data)):
        result = xb.benchmark(frame, label="clicked", probs={"cal": "p_calibrated"}).to_dict()
        assert result["models"][0]["log_loss"] == pytest.approx(expected, rel=1e-12)
