"""``xebench status`` (a database file, or a server through the SDK) and ``xebench
retention`` (``--dry-run`` counts, then the same counts deleted).

The store is built here with known old and new events, so every expected count
is known from what was written.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from loopback import serve_in_thread
from xebench.cli.main import main
from xebench.ingest.events import parse_labels, parse_predictions
from xebench.service.app import create_app
from xebench.store.event_store import EventStore

NOW = datetime.now(UTC)


def build(path: Path) -> None:
    """6 predictions 40 days old, 3 an hour old; labels: 2 for old ones (ingested now), 1
    waiting for a prediction that never came."""
    old = [
        {"request_id": f"old{i}", "model": "m", "probabilities": 0.2,
         "timestamp": (NOW - timedelta(days=40)).isoformat()}
        for i in range(6)
    ]  # fmt: skip
    new = [
        {"request_id": f"new{i}", "model": "m", "probabilities": 0.6,
         "timestamp": (NOW - timedelta(hours=1)).isoformat()}
        for i in range(3)
    ]  # fmt: skip
    labels = [{"request_id": r, "label": 1} for r in ("old0", "old1", "missing")]
    with EventStore(path) as store:
        store.insert_predictions(parse_predictions(old + new, tenant="default"))
        store.insert_labels(parse_labels(labels, tenant="default"))
        store.update_buckets()


def test_retention_dry_run_counts_what_the_real_run_deletes(tmp_path: Path, capsys) -> None:
    db = tmp_path / "events.duckdb"
    build(db)
    with EventStore(db) as store, store.cursor() as cursor:
        (old_minutes,) = cursor.execute(
            "SELECT count(*) FROM bucket_scores WHERE bucket < ?", [NOW - timedelta(days=7)]
        ).fetchone()
    assert old_minutes > 0
    args = ["retention", "--db", str(db), "--events", "30d", "--minutes", "7d"]
    dry = tmp_path / "dry.json"
    assert main([*args, "--dry-run", "--json", str(dry)]) == 0
    plan = json.loads(dry.read_text())
    # Labels go by ingest time (now): none of them is 30 days old.
    expected = {"predictions": 6, "labels": 0, "pending_labels": 0}
    assert plan["delete"] == {
        **expected,
        "bucket_scores": old_minutes,
        "bucket_features": 0,
        "bucket_tokens": 0,
    }
    assert "would delete: 6 predictions" in capsys.readouterr().out
    with EventStore(db) as store:  # the dry run deleted nothing
        assert store.counts()["predictions"] == 9

    done = tmp_path / "done.json"
    assert main([*args, "--json", str(done)]) == 0
    assert json.loads(done.read_text())["delete"] == plan["delete"]
    with EventStore(db) as store:  # old0's and old1's labels joined once: not pending
        assert store.counts() == {"predictions": 3, "labels": 3, "pending": 1, "orphans": 0}
    assert main([*args, "--dry-run", "--json", str(dry)]) == 0  # nothing left to delete
    assert set(json.loads(dry.read_text())["delete"].values()) == {0}


def test_retention_without_a_policy_is_a_usage_error(tmp_path: Path, capsys) -> None:
    db = tmp_path / "events.duckdb"
    build(db)
    assert main(["retention", "--db", str(db), "--dry-run"]) == 2
    assert "nothing to apply" in capsys.readouterr().err
    assert main(["retention", "--db", str(db), "--events", "soon"]) == 2


def test_status_of_a_file_and_of_a_server_agree(tmp_path: Path, capsys) -> None:
    db = tmp_path / "events.duckdb"
    build(db)
    out = tmp_path / "status.json"
    assert main(["status", "--db", str(db), "--json", str(out)]) == 0
    local = json.loads(out.read_text())
    assert local["stored"] == {"predictions": 9, "labels": 3}
    # old0 and old1 joined; "missing" waits.
    assert (local["pending_labels"], local["orphans"]) == (1, 0)
    assert local["identity"]["filter_keys"] == 9 * 2 + 3
    assert "pending labels: 1, of which orphans: 0" in capsys.readouterr().out

    with serve_in_thread(create_app(EventStore(db), close_store=True)) as url:
        assert main(["status", "--url", url, "--json", str(out)]) == 0
    remote = json.loads(out.read_text())
    for key in ("stored", "pending_labels", "orphans", "oldest_event", "oldest_pending"):
        assert remote[key] == local[key], key
    assert remote["queue"]["events"] == 0


@pytest.mark.parametrize(
    "args", [["status", "--db", "nowhere.duckdb"], ["retention", "--db", "nowhere.duckdb"]]
)
def test_a_missing_database_is_a_usage_error(args: list[str], tmp_path: Path) -> None:
    assert main([*args[:-1], str(tmp_path / args[-1])]) == 2
