"""The README shows what the commands really print.

The README's ``>>>`` examples run as doctests (``--doctest-glob=README.md``);
these tests cover the shell commands, which are not doctests.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from xebench.cli.main import main

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _strip_lines(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.strip().splitlines())


def _first_command() -> str:
    return re.search(r"```bash\n(.*?)\n```", README, re.S)[1]


def test_first_command_runs_the_demo_as_described(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    command = _first_command().split(" && ")[-1]
    assert shlex.split(command) == ["xebench", "demo"]
    monkeypatch.chdir(tmp_path)
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    # What the README says the demo shows: provisional recent windows, the drift
    # standing out in eu, the canary failing on android and passing on ios.
    assert "│ 1h     │" in out and "provisional" in out
    eu = out[out.index("fraud drift, region:eu") :]
    first_row = eu.splitlines()[4]
    assert first_row.split("│")[1].strip() == "amount" and "drift" in first_row
    assert "FAIL  fraud:v2 vs fraud:v1 (canary, device:android)" in out
    assert "PASS  fraud:v2 vs fraud:v1 (canary, device:ios)" in out
    assert (tmp_path / "xebench-demo" / "xebench.duckdb").exists()
    assert "xebench serve --config" in out


def test_bench_example_output_is_shown_verbatim(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    line = next(line for line in README.splitlines() if line.startswith("$ xebench bench "))
    args = shlex.split(line)[1:]
    monkeypatch.chdir(ROOT)
    report = tmp_path / "report.html"
    args[args.index("--html") + 1] = str(report)
    assert main(args[1:]) == 0
    assert _strip_lines(capsys.readouterr().out) in _strip_lines(README)
    assert report.stat().st_size > 0


def test_drift_example_is_shown_verbatim(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    line = next(line for line in README.splitlines() if line.startswith("$ xebench drift "))
    args = shlex.split(line)[1:]
    monkeypatch.chdir(ROOT)
    report = tmp_path / "drift.html"
    args[args.index("--html") + 1] = str(report)
    assert main(args[1:]) == 0
    out = _strip_lines(capsys.readouterr().out)
    assert out in _strip_lines(README)
    # The two planted drifts, and only they, come first.
    assert [line.split("│")[2].strip() for line in out.splitlines() if "drift  " in line] == [
        "income",
        "channel",
    ]
    assert report.read_text().startswith("<!DOCTYPE html>")


def test_monitoring_examples_answer_on_the_demo_store(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from xebench.demo.tour import run_demo
    from xebench.service.app import create_app
    from xebench.service.config import load_config
    from xebench.store.event_store import EventStore

    run_demo(tmp_path, hours=12, quiet=True)
    config = load_config(tmp_path / "xebench.yaml")
    section = _section("## Monitor: windows, drift, canaries")
    urls = re.findall(r"curl '(http://127\.0\.0\.1:8000[^']+)'", section)
    assert len(urls) == 4
    store = EventStore(config.db, monitor=config.monitor)
    with TestClient(create_app(store, config, close_store=True)) as client:
        for url in urls:
            reply = client.get(url.removeprefix("http://127.0.0.1:8000"))
            assert reply.status_code == 200, (url, reply.text)
        android = client.get(urls[-1].removeprefix("http://127.0.0.1:8000").replace("48h", "12h"))
        assert android.json()["decision"]["status"] in {"fail", "inconclusive"}


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


def _section(title: str) -> str:
    start = README.index(title)
    return README[start : README.index("\n## ", start + 1)]


def test_serve_examples_answer_as_shown() -> None:
    """Each `curl ... -d '...'` of the serve section, sent in process, answers what is shown."""
    from fastapi.testclient import TestClient

    from xebench.service.app import create_app
    from xebench.store.event_store import EventStore

    text = _section("## Ingest production events")
    calls = re.findall(r"\$ curl -s localhost:8000(\S+)(.*?)\n(\{.*?\})\n", text, re.S)
    assert len(calls) == 4
    with EventStore(":memory:") as store, TestClient(create_app(store)) as client:
        for path, options, shown in calls:
            body = re.search(r"-d '(.*?)'", options, re.S)
            if body:
                answer = client.post(
                    path, content=body[1], headers={"content-type": "application/json"}
                )
            else:
                answer = client.get(path)
            expected = json.loads(shown)
            got = answer.json()
            if path == "/v1/models":  # the second event took the time of receipt
                for entry in (*got["models"], *expected["models"]):
                    entry.pop("last_event")
            assert got == expected


def test_ingest_examples_print_as_shown(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = [
        f"tx-{i},fraud,v7,2026-11-24T{i % 24:02d}:00:00Z,{(i * 37 % 1000) / 1000},eu"
        for i in range(1000)
    ]
    header = "request_id,model,version,timestamp,p_fraud,region\n"
    (tmp_path / "preds.csv").write_text(header + "\n".join(rows) + "\n")
    rows[7] = "tx-7,fraud,v7,2026-11-24T07:00:00Z,1.3,eu"  # data row 8
    (tmp_path / "bad.csv").write_text(header + "\n".join(rows) + "\n")
    labels = "\n".join(f"tx-{i},{i % 3 == 0:d}" for i in range(0, 1000, 2))
    (tmp_path / "labels.csv").write_text("request_id,is_fraud\n" + labels + "\n")
    monkeypatch.chdir(tmp_path)
    text = _section("### Import files")
    for command, shown in re.findall(r"\$ (xebench ingest .*?)\n(.*?)\n", text):
        main(shlex.split(command)[1:])
        captured = capsys.readouterr()
        assert (captured.out + captured.err).strip() == shown
