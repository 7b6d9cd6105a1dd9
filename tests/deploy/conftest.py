"""Fixtures for the tests of ``deploy/``: real Prometheus and Alertmanager processes.

The helpers are in :mod:`promstack` (this folder is on ``sys.path`` for its tests):
:func:`~promstack.start_prometheus` and :func:`~promstack.start_alertmanager` start
one on a free 127.0.0.1 port with its storage under a temporary folder, and return
once it answers ``/-/ready``; a missing binary skips the test, or fails it under CI.
Here:

- :func:`daemons` starts them for one test (``daemons.prometheus(...)``,
  ``daemons.alertmanager(...)``) and stops them at its end whatever happens;
- :func:`rules_prometheus` is one Prometheus per module with deploy's SLO rules;
- a failed test's report gets the log of every process it used.

For instance, to scrape a ``xebench serve`` listening on ``port``::

    def test_scrape(daemons):
        prometheus = daemons.prometheus(scrape_targets=[f"127.0.0.1:{port}"])
        prometheus.wait_for('up{job="xebench"} == 1')
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from promstack import Daemon, Daemons, start_prometheus

_DAEMONS = pytest.StashKey[Daemons]()


@pytest.fixture
def daemons(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Daemons]:
    """Start Prometheus / Alertmanager for this test: stopped at its end, their logs
    added to the report when it fails."""
    registry = Daemons(tmp_path)
    request.node.stash[_DAEMONS] = registry
    try:
        yield registry
    finally:
        for daemon in registry.started:
            daemon.stop()


@pytest.fixture(scope="module")
def rules_prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    """One Prometheus for a test module: deploy's SLO rules loaded, nothing scraped."""
    daemon = start_prometheus(tmp_path_factory.mktemp("rules-prometheus"))
    try:
        yield daemon
    finally:
        daemon.stop()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """A failed test's report gets a section per process it used (started through
    :func:`daemons`, or a fixture's :class:`Daemon`): the process's log."""
    report = yield
    if report.failed:
        used: list[Daemon] = []
        registry = item.stash.get(_DAEMONS, None)
        if registry is not None:
            used += registry.started
        used += [v for v in getattr(item, "funcargs", {}).values() if isinstance(v, Daemon)]
        for daemon in dict.fromkeys(used):
            report.sections.append((f"{daemon.name} log ({daemon.url})", daemon.logs()))
    return report
