"""The README shows what the commands really print.

The README's ``>>>`` examples run as doctests (``--doctest-glob=README.md``);
these tests cover the shell commands, which are not doctests.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from xebench.cli import main

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _strip_lines(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.strip().splitlines())


def _first_command() -> str:
    return re.search(r"```bash\n(.*?)\n```", README, re.S)[1]


def test_first_command_output_is_shown_verbatim(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    command = _first_command().split(" && ")[-1]
    args = shlex.split(command)
    assert args[0] == "xebench"
    monkeypatch.chdir(ROOT)
    report = tmp_path / "report.html"
    args[args.index("--html") + 1] = str(report)
    assert main(args[1:]) == 0
    assert _strip_lines(capsys.readouterr().out) in _strip_lines(README)
    assert report.stat().st_size > 0


def test_gate_example_is_shown_verbatim(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    line = next(line for line in README.splitlines() if line.startswith("$ xebench gate "))
    monkeypatch.chdir(ROOT)
    assert main(shlex.split(line)[2:]) == 1
    assert _strip_lines(capsys.readouterr().out) in README


def test_quickstart_output_is_shown_verbatim() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "quickstart.py")],
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip() in README


def test_ci_runs_exactly_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    test_command = "pip install -e '.[test]' && python -m pytest"
    assert f". .venv/bin/activate && {test_command}" in README
    assert test_command in ci.splitlines()
    assert _first_command().startswith(
        "python3 -m venv .venv && . .venv/bin/activate && pip install ."
    )
