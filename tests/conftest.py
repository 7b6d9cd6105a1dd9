"""Shared test fixtures.

The tests mirror the package (``tests/store`` tests ``xebench.store``). This
folder is on ``sys.path``, so the helper modules here import from any of
them: :mod:`html_checks` (the HTML reports' offline and structure checks),
:mod:`loopback` (free ports, an app served in a thread) and
:mod:`event_strategies` (hypothesis strategies for the fast paths' tests).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from xebench.store import EventStore


@pytest.fixture
def store() -> Iterator[EventStore]:
    """A fresh in-memory event store, closed after the test."""
    with EventStore(":memory:") as opened:
        yield opened
