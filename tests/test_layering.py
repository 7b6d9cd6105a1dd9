"""The package's layers, checked from the source: imports flow one way.

Every module's imports are read with :mod:`ast` (lazy imports inside
functions included) and resolved to the sub-package they land in. A layer may
import itself, the foundation (``errors``, ``_validation``, ``_version``) and
the layers listed for it below; nothing else. No module imports another
module's private (``_``-prefixed) name, nor reaches one through a module it
imported (``from ..io import readers as _io`` and then ``_io._check_file``).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "xebench"

FOUNDATION = {"errors", "_validation", "_version"}

# Each layer and the layers it may use. Read from the bottom up: the kernel
# uses nothing; statistics use the kernel; decisions use statistics; ...
ALLOWED: dict[str, set[str]] = {
    "errors": set(),
    "_validation": {"errors"},
    "_version": set(),
    "metrics": set(),
    "stats": {"metrics"},
    "analysis": {"metrics", "stats"},
    "io": set(),
    # Renderers take finished JSON documents (plain dicts) and the metric
    # registry; they import no producer, so any producer may render.
    "report": {"metrics"},
    "offline": {"metrics", "stats", "analysis", "io", "report"},
    "store": {"metrics", "stats", "io"},
    "ingest": {"metrics", "stats", "io", "store"},
    "monitor": {"metrics", "stats", "analysis", "io", "offline", "store", "ingest"},
    "client": {"io", "ingest"},
    # SLO alerts: the lifecycle over the evaluator's statuses, its tables, their delivery.
    "alerting": {"metrics", "stats", "analysis", "io", "store", "monitor"},
    # The web dashboard's pages are drawn by report/ (templates, charts) from the
    # documents service/dashboard_data.py asks for.
    "service": {
        "metrics", "stats", "analysis", "io", "report", "store", "ingest", "monitor", "alerting",
    },
    "demo": {
        "metrics", "stats", "analysis", "io", "report", "offline",
        "store", "ingest", "monitor", "service", "client", "alerting",
    },
    "cli": {
        "metrics", "stats", "analysis", "io", "report", "offline",
        "store", "ingest", "monitor", "service", "client", "demo", "alerting",
    },
}  # fmt: skip

# The package root re-exports the public names of every layer.
TOP = {"__init__", "__main__"}


def _modules() -> list[Path]:
    return sorted(SRC.rglob("*.py"))


def _dotted(path: Path) -> list[str]:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return parts[:-1] if parts[-1] == "__init__" else parts


def _package(path: Path) -> list[str]:
    return _dotted(path) if path.name == "__init__.py" else _dotted(path)[:-1]


def _from_target(node: ast.ImportFrom, package: list[str]) -> list[str] | None:
    """The xebench module (parts) that ``from X import ...`` reads; None if X is not ours."""
    if node.level:
        base = package[: len(package) - (node.level - 1)]
        return base + (node.module.split(".") if node.module else [])
    if node.module and node.module.split(".")[0] == "xebench":
        return node.module.split(".")[1:]
    return None


def _imports(path: Path) -> list[tuple[int, list[str], list[str]]]:
    """(line, target module parts within xebench, imported names) of every import."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = _package(path)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            target = _from_target(node, package)
            if target is not None:
                found.append((node.lineno, target, [alias.name for alias in node.names]))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "xebench":
                    found.append((node.lineno, parts[1:], []))
    return found


def _layer(parts: list[str]) -> str:
    return parts[0] if parts else "__init__"


def test_every_module_belongs_to_a_known_layer() -> None:
    layers = {_layer(_dotted(path)) for path in _modules()}
    assert layers <= set(ALLOWED) | TOP, sorted(layers - set(ALLOWED) - TOP)


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(SRC)))
def test_imports_flow_one_way(path: Path) -> None:
    layer = _layer(_dotted(path))
    if layer in TOP:
        return
    allowed = (
        ALLOWED[layer] | {layer} | (FOUNDATION - {layer} if layer not in FOUNDATION else set())
    )
    if layer in FOUNDATION:
        allowed = ALLOWED[layer] | {layer}
    wrong = []
    for line, target, names in _imports(path):
        into = _layer(target)
        if target == []:  # ``from .. import x``: x names the layer
            wrong += [f"line {line}: {n}" for n in names if n not in allowed]
        elif into not in allowed:
            wrong.append(
                f"line {line}: imports xebench.{'.'.join(target)} ({into} is above {layer})"
            )
    assert not wrong, "\n".join(wrong)


# Private imports that the layering work has still to remove. The list may
# only shrink: an entry that no longer occurs fails the test too.
STILL_PRIVATE: set[tuple[str, str]] = set()


def _is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _private_imports(path: Path) -> set[tuple[str, str]]:
    where = str(path.relative_to(SRC))
    return {(where, name) for _, _, names in _imports(path) for name in names if _is_private(name)}


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(SRC)))
def test_no_module_imports_another_modules_private_name(path: Path) -> None:
    private = _private_imports(path) - STILL_PRIVATE
    assert not private, sorted(private)


def test_the_list_of_remaining_private_imports_only_shrinks() -> None:
    found = set().union(*(_private_imports(path) for path in _modules()))
    assert not STILL_PRIVATE - found, sorted(STILL_PRIVATE - found)


# --- private names reached through an imported module ---------------------------


def _is_module(parts: list[str]) -> bool:
    where = SRC.joinpath(*parts)
    return where.with_suffix(".py").is_file() or (where / "__init__.py").is_file()


def _module_names(tree: ast.Module, package: list[str]) -> dict[str, list[str]]:
    """Local name -> the xebench module (parts) it is bound to by an import."""
    bound: dict[str, list[str]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            target = _from_target(node, package)
            for alias in node.names if target is not None else []:
                if _is_module([*target, alias.name]):
                    bound[alias.asname or alias.name] = [*target, alias.name]
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "xebench":  # ``import xebench.io`` binds ``xebench``
                    bound[alias.asname or "xebench"] = parts[1:] if alias.asname else []
    return bound


def _private_attributes(source: str, package: list[str]) -> set[tuple[int, str]]:
    """(line, dotted name) of every private name read off an imported xebench module.

    ``_io._check_file``, ``xebench.io.readers._BLOCK_BYTES`` and
    ``getattr(_io, "_read_error")`` all count; the chain of attributes is
    followed as long as it names modules.
    """
    tree = ast.parse(source)
    bound = _module_names(tree, package)
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            chain, base = [], node
            while isinstance(base, ast.Attribute):
                chain.insert(0, base.attr)
                base = base.value
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "getattr"
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
        ):
            chain, base = [node.args[1].value], node.args[0]
        else:
            continue
        if not isinstance(base, ast.Name) or base.id not in bound:
            continue
        module = bound[base.id]
        for attr in chain:
            if _is_private(attr):
                found.add((node.lineno, ".".join(["xebench", *module, attr])))
                break
            if not _is_module([*module, attr]):
                break
            module = [*module, attr]
    return found


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(SRC)))
def test_no_module_reaches_into_another_modules_private_names(path: Path) -> None:
    found = _private_attributes(path.read_text(encoding="utf-8"), _package(path))
    assert not found, [f"line {line}: {name}" for line, name in sorted(found)]


def test_the_private_attribute_check_follows_module_aliases() -> None:
    source = "\n".join(
        [
            "from ..io import readers as _io",  # 1
            "import xebench.io.readers",
            "import xebench.io.formats as formats",
            "from .. import io",
            "from ..io.readers import read_chunks",  # a function, not a module
            "_io._check_file(path)",  # 6
            "xebench.io.readers._read_error",  # 7
            "io.readers._BLOCK_BYTES",  # 8
            "getattr(formats, '_CSV_CONVERSION')",  # 9
            "io.readers.check_file(path), _io.__name__, read_chunks._private",
            "other._private, formats.TextReader._private",
        ]
    )
    assert _private_attributes(source, ["ingest"]) == {
        (6, "xebench.io.readers._check_file"),
        (7, "xebench.io.readers._read_error"),
        (8, "xebench.io.readers._BLOCK_BYTES"),
        (9, "xebench.io.formats._CSV_CONVERSION"),
    }
