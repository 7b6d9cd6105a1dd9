"""``import xebench`` stays light: the heavy libraries load where they are used.

The metrics are re-exported at the top level, so every script pays for what
``import xebench`` imports; scipy alone used to double it. This checks which
modules are loaded, not how long it takes (no timing assertions).
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys

HEAVY = ("scipy", "pandas", "duckdb", "fastapi", "jinja2", "httpx", "pyarrow")
PROBE = (
    "import xebench, sys; "
    f"print(sorted(m for m in sys.modules if m.split('.')[0] in {set(HEAVY)!r}))"
)


def _loaded_after(code: str) -> list[str]:
    """The heavy modules a fresh interpreter holds after running ``code``."""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=os.environ
    ).stdout
    return ast.literal_eval(out)


def test_import_xebench_loads_no_heavy_library() -> None:
    assert _loaded_after(PROBE) == []


def test_the_probe_would_see_a_heavy_import() -> None:
    # The same probe after a metric that needs scipy.special: the check is live.
    code = PROBE.replace(
        "import xebench, sys; ", "import xebench, sys; xebench.entropy([0.5, 0.5]); "
    )
    assert "scipy.special" in _loaded_after(code)


def test_the_version_is_still_an_attribute() -> None:
    # __version__ is lazy (package metadata is slow to import) but still there.
    from xebench._version import __version__

    code = "import xebench; print(xebench.__version__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == __version__ != ""
