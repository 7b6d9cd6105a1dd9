"""Benchmark scripts imported by the tests that run a few of their cycles in CI."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def load_benchmark(filename: str, name: str) -> Iterator[ModuleType]:
    """Yield ``benchmarks/filename`` imported as module ``name`` (a fixture's body:
    ``yield from load_benchmark(...)``); it leaves ``sys.modules`` afterwards."""
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / filename)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(spec.name, None)
