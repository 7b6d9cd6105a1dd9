"""The rules of error messages that hold across Python and the CLI.

Rows are counted from 1 everywhere (the errors module docstring says so), and
a missing number is shown as ``nan``, not ``None``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import xebench as xb
from xebench.cli.main import main


def cli_error(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(args) == 2
    return capsys.readouterr().err


def test_python_and_the_cli_count_the_same_row(tmp_path: Path, capsys) -> None:
    # The second value is bad: Python arrays, DataFrames and files all say row 2.
    with pytest.raises(xb.InvalidInputError) as info:
        xb.log_loss([1, 0, 1], [0.5, 1.5, 0.5])
    assert info.value.row == 2 and "row 2 is 1.5" in str(info.value)

    with pytest.raises(xb.DataError) as info:
        xb.benchmark({"y": [1, 0, 1], "p": [0.5, 1.5, 0.5]}, label="y", probs=["p"])
    assert info.value.row == 2 and "row 2 is 1.5" in str(info.value)

    data = tmp_path / "bad.csv"
    data.write_text("y,p\n1,0.5\n0,1.5\n1,0.5\n", encoding="utf-8")
    err = cli_error(["bench", str(data), "--label", "y", "--prob", "p"], capsys)
    assert "row 2 is 1.5" in err


def test_the_first_row_is_row_1() -> None:
    with pytest.raises(xb.InvalidInputError, match=r"row 1 is -0\.1$"):
        xb.brier_score([1, 0], [-0.1, 0.5])


@pytest.mark.parametrize("cell", ["nan", "NaN", ""])
def test_a_missing_number_is_reported_as_nan(tmp_path: Path, capsys, cell: str) -> None:
    data = tmp_path / "nan.csv"
    data.write_text(f"y,p\n1,0.5\n0,{cell}\n", encoding="utf-8")
    err = cli_error(["bench", str(data), "--label", "y", "--prob", "p"], capsys)
    assert err.rstrip().endswith("row 2 is nan"), err

    with pytest.raises(xb.DataError) as info:
        xb.benchmark({"y": [1, 0], "p": [0.5, float("nan")]}, label="y", probs=["p"])
    assert str(info.value).endswith("row 2 is nan")


def test_a_missing_label_in_a_column_of_numbers_is_nan(tmp_path: Path, capsys) -> None:
    data = tmp_path / "nan_label.csv"
    data.write_text("y,p\n1,0.5\nnan,0.2\n", encoding="utf-8")
    err = cli_error(["bench", str(data), "--label", "y", "--prob", "p"], capsys)
    assert "column 'y'" in err and err.rstrip().endswith("row 2 is nan")
