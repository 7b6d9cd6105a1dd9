"""``bench --class-weight / --discrimination`` and ``gate --metric roc_auc`` on a file:
the JSON fields, the exit codes, and the console, Markdown and HTML reports."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from xebench.cli.bench import parse_class_weight
from xebench.cli.main import main


def _file(tmp_path: Path, n: int = 4000) -> tuple[Path, dict[str, np.ndarray]]:
    rng = np.random.default_rng(3)
    y = (rng.uniform(size=n) < 0.1).astype(int)
    good = np.clip(0.1 + 0.5 * y + rng.normal(0, 0.15, n), 0.01, 0.99)
    poor = np.clip(0.1 + 0.2 * y + rng.normal(0, 0.15, n), 0.01, 0.99)
    path = tmp_path / "fraud.csv"
    lines = ["fraud,p_good,p_poor"]
    lines += [f"{a},{b:.17g},{c:.17g}" for a, b, c in zip(y, good, poor, strict=True)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path, {"y": y, "good": good, "poor": poor}


def test_bench_json_markdown_and_html_hold_the_new_fields(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, d = _file(tmp_path)
    out, md, html = tmp_path / "b.json", tmp_path / "b.md", tmp_path / "b.html"
    args = ["bench", path, "--label", "fraud", "--prob", "good=p_good", "--prob", "poor=p_poor"]
    extra = ["--class-weight", "1=9", "--json", out, "--markdown", md, "--html", html]
    assert main([str(a) for a in [*args, *extra]]) == 0
    printed = capsys.readouterr().out
    assert "Discrimination" in printed and "Log loss by true class" in printed
    assert "class weights 0: 1, 1: 9" in printed
    document = json.loads(out.read_text())
    good = document["models"][0]
    assert good["name"] == "good"
    assert good["roc_auc"] == pytest.approx(roc_auc_score(d["y"], d["good"]), abs=1e-9)
    assert set(good) >= {"roc_auc_ci", "average_precision", "average_precision_ci", "per_class"}
    assert [c["class"] for c in good["per_class"]] == [0, 1]
    assert document["inputs"]["class_weight"] == [
        {"class": 0, "weight": 1.0},
        {"class": 1, "weight": 9.0},
    ]
    markdown = md.read_text()
    assert "**Discrimination**" in markdown and "| 1 | good | " in markdown
    assert f"{good['roc_auc']:.4f}" in markdown
    page = html.read_text()
    assert 'id="discrimination"' in page and f"{good['roc_auc']:.4f}" in page
    assert "Log loss by true class" in page and "class weights" in page


def test_bench_prints_as_before_without_the_new_flags(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, _ = _file(tmp_path, 200)
    assert main(["bench", str(path), "--label", "fraud", "--prob", "p_good"]) == 0
    assert "Discrimination" not in capsys.readouterr().out
    assert (
        main(["bench", str(path), "--label", "fraud", "--prob", "p_good", "--discrimination"]) == 0
    )
    assert "Discrimination" in capsys.readouterr().out


def test_gate_on_roc_auc_fails_a_worse_ranker_and_passes_a_better_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, d = _file(tmp_path)
    out = tmp_path / "gate.json"
    base = ["gate", str(path), "--label", "fraud", "--metric", "roc_auc", "--json", str(out)]
    assert main([*base, "--prob", "candidate=p_poor", "--prob", "baseline=p_good"]) == 1
    printed = capsys.readouterr().out
    assert printed.startswith("FAIL: candidate ranks worse than baseline")
    decision = json.loads(out.read_text())
    assert decision["metric"] == "roc_auc" and decision["status"] == "fail"
    assert decision["candidate"] == pytest.approx(roc_auc_score(d["y"], d["poor"]), abs=1e-9)
    assert decision["baseline"] == pytest.approx(roc_auc_score(d["y"], d["good"]), abs=1e-9)
    assert decision["delta"] < decision["worst_delta"] + 1e-12 or decision["worst_delta"] < 0
    assert set(decision) >= {"delta_se", "delta_ci", "threshold_delta", "p_value", "alpha"}
    assert main([*base, "--prob", "candidate=p_good", "--prob", "baseline=p_poor"]) == 0
    assert capsys.readouterr().out.startswith("PASS: ")
    few = [*base, "--prob", "candidate=p_good", "--prob", "baseline=p_poor"]
    assert main([*few, "--min-samples", "100000"]) == 3


def test_gate_takes_class_weights_for_the_log_loss(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, _ = _file(tmp_path)
    out = tmp_path / "gate.json"
    args = ["gate", str(path), "--label", "fraud", "--prob", "candidate=p_poor"]
    args += ["--prob", "baseline=p_good", "--json", str(out)]
    main([*args, "--class-weight", "balanced"])
    balanced = json.loads(out.read_text())["comparison"]["baseline_log_loss"]
    main(args)
    plain = json.loads(out.read_text())["comparison"]["baseline_log_loss"]
    capsys.readouterr()
    assert balanced > plain  # the frauds, badly predicted, now weigh half


def test_class_weight_and_metric_errors_are_usage_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, _ = _file(tmp_path, 50)
    assert parse_class_weight("0=1, 1=99") == {0: 1.0, 1: 99.0}
    args = ["bench", str(path), "--label", "fraud", "--prob", "p_good"]
    assert main([*args, "--class-weight", "1:99"]) == 2
    assert "--class-weight: expected 'balanced' or CLASS=WEIGHT" in capsys.readouterr().err
    assert main([*args, "--class-weight", "2=5"]) == 2
    assert "names a label that is no class" in capsys.readouterr().err
    gate = ["gate", str(path), "--label", "fraud", "--prob", "candidate=p_good"]
    assert main([*gate, "--prob", "baseline=p_poor", "--metric", "ece"]) == 2
    assert "--metric: must be log_loss or roc_auc" in capsys.readouterr().err
