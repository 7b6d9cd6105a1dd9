"""JSON output: derived parameters without float noise, measurements with every digit."""

from __future__ import annotations

import json
from pathlib import Path

from xebench.cli.main import main


def test_gate_json_rounds_alpha_but_not_the_measurements(tmp_path: Path, capsys) -> None:
    data = tmp_path / "two.csv"
    data.write_text("y,a,b\n1,0.8,0.7\n0,0.3,0.2\n1,0.6,0.9\n0,0.1,0.4\n", encoding="utf-8")
    out = tmp_path / "gate.json"
    args = ["gate", data, "--label", "y", "--prob", "candidate=a", "--prob", "baseline=b"]
    main([str(a) for a in [*args, "--min-samples", "1", "--json", out]])
    capsys.readouterr()
    text = out.read_text(encoding="utf-8")
    assert '"alpha": 0.05,' in text  # (1 - 0.95) / 1 is 0.050000000000000044 in floats
    document = json.loads(text)
    brier_a = ((1 - 0.8) ** 2 + 0.3**2 + (1 - 0.6) ** 2 + 0.1**2) / 4
    assert document["comparison"]["candidate_log_loss"] > 0
    bench = tmp_path / "bench.json"
    main(
        [str(a) for a in ["bench", data, "--label", "y", "--prob", "a", "--json", bench, "--quiet"]]
    )
    assert json.loads(bench.read_text())["models"][0]["brier"] == brier_a  # not rounded
