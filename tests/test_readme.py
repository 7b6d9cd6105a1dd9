"""The README shows what the example really prints.

The README's ``>>>`` examples run as doctests (``--doctest-glob=README.md``);
this test covers the output of its first command, which is not a doctest.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_readme_shows_the_quickstart_output_verbatim() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "quickstart.py")],
        capture_output=True,
        text=True,
        check=True,
    )
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert result.stdout.strip() in readme


def test_ci_runs_exactly_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    test_command = "pip install -e '.[test]' && python -m pytest"
    assert f". .venv/bin/activate && {test_command}" in readme
    assert test_command in ci.splitlines()
    assert "pip install . && python examples/quickstart.py" in readme
