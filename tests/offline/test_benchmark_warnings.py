"""Hard 0/1 "probabilities" are scored, with a warning that they look like labels."""

from __future__ import annotations

from pathlib import Path

import pytest

import xebench as xb
from xebench.cli.main import main
from xebench.offline.benchmark import LooksLikeLabelsWarning

DATA = {"y": [1, 0, 1, 0], "hard": [1, 0, 0, 0], "soft": [0.8, 0.3, 0.6, 0.1]}


def test_a_column_of_zeros_and_ones_warns_in_python() -> None:
    with pytest.warns(LooksLikeLabelsWarning, match="column 'hard' holds only 0 and 1") as caught:
        result = xb.benchmark(DATA, label="y", probs=["soft", "hard"])
    assert [w.message.column for w in caught] == ["hard"]  # the soft column does not warn
    assert result.to_dict()["n_rows"] == 4


def test_probabilities_that_merely_touch_0_or_1_do_not_warn() -> None:
    data = {"y": [1, 0, 1], "p": [1.0, 0.0, 0.5]}
    xb.benchmark(data, label="y", probs=["p"])  # filterwarnings=error: a warning fails


def test_the_cli_prints_a_warning_line_and_still_benchmarks(tmp_path: Path, capsys) -> None:
    data = tmp_path / "hard.csv"
    data.write_text("y,hard,soft\n1,1,0.8\n0,0,0.3\n1,0,0.6\n", encoding="utf-8")
    code = main(["bench", str(data), "--label", "y", "--prob", "hard", "--prob", "soft"])
    err = capsys.readouterr().err
    assert code in (0, 1)
    warning = "warning: column 'hard' holds only 0 and 1: it looks like labels, not probabilities"
    assert err.splitlines() == [warning]
