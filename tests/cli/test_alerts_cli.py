"""xebench alerts: the SLO document of a database file, exit 1 when a page fires."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from xebench.cli.main import main
from xebench.demo.stream import generate, load
from xebench.monitor.scope import iso
from xebench.store import EventStore


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    folder = tmp_path_factory.mktemp("alerts")
    stream = generate(hours=3, rate_per_minute=30, seed=4)
    with EventStore(folder / "x.duckdb") as store:
        load(store, stream)
        store.update_buckets()
    return folder, iso(stream.now)


def write_config(folder: Path, objective: float) -> Path:
    path = folder / f"x-{objective}.yaml"
    slos = [{"name": "ll", "model": "fraud", "sli": "log_loss", "objective": objective,
             "window": "30m", "min_samples": 20, "period": "7d"}]  # fmt: skip
    path.write_text(yaml.safe_dump({"db": str(folder / "x.duckdb"), "slos": slos}))
    return path


def test_a_strict_objective_pages_and_exits_1(demo, capsys) -> None:
    folder, now = demo
    assert main(["alerts", "--config", str(write_config(folder, 0.01)), "--at", now,
                 "--json"]) == 1  # fmt: skip
    document = json.loads(capsys.readouterr().out)
    (slo,) = document["slos"]
    assert slo["verdict"] == "bad" and slo["budget_remaining"] < 0
    total = slo["good_minutes"] + slo["bad_minutes"] + slo["excluded_minutes"]
    assert total == 7 * 1440
    severities = sorted(a["severity"] for a in document["alerts"])
    assert severities == ["page", "ticket"]
    page = next(a for a in document["alerts"] if a["severity"] == "page")
    assert page["labels"]["slo"] == "ll" and page["evidence"]["n"] > 0


def test_a_loose_objective_passes(demo, capsys) -> None:
    folder, now = demo
    assert main(["alerts", "--config", str(write_config(folder, 5.0)), "--at", now]) == 0
    assert "no burn-rate alert holds" in capsys.readouterr().out


def test_bad_usage_exits_2(demo, capsys) -> None:
    folder, _ = demo
    config = write_config(folder, 0.3)
    assert main(["alerts", "--config", str(config), "--at", "2026-01-01T00:00:00"]) == 2
    assert "--at: needs a timezone" in capsys.readouterr().err
    empty = folder / "none.yaml"
    empty.write_text(yaml.safe_dump({"db": str(folder / "x.duckdb")}))
    assert main(["alerts", "--config", str(empty)]) == 2
    assert "no slos:" in capsys.readouterr().err
