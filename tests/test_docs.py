"""The README and docs/ show what the commands really print, and their examples run.

The ``>>>`` examples of README.md and docs/*.md run as doctests (pytest's
``--doctest-glob``); these tests cover the shell commands, the HTTP examples
(run in order against one server, as a user would), the configuration file,
the contract's command list, and the links between the pages.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from loopback import serve_in_thread
from xebench.cli import main

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
DOCS = {p.name: p.read_text(encoding="utf-8") for p in sorted((ROOT / "docs").glob("*.md"))}
PAGES = {"README.md": README, **{f"docs/{name}": text for name, text in DOCS.items()}}


def _strip_lines(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.strip().splitlines())


def _first_command() -> str:
    return re.search(r"```bash\n(.*?)\n```", README, re.S)[1]


def _section(text: str, title: str) -> str:
    """From the heading ``title`` to the next heading of the same or a higher level."""
    start = text.index(title)
    level = len(title) - len(title.lstrip("#"))
    pattern = re.compile(rf"\n#{{1,{level}}} ")
    found = pattern.search(text, start + len(title))
    return text[start : found.start() if found else len(text)]


def _command_lines(text: str, prefix: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(prefix)]


# --- the front door ----------------------------------------------------------


def test_readme_is_a_front_door() -> None:
    assert len(README.splitlines()) <= 250
    assert README.index("## Two commands") < 40 * 80  # within the first screens
    for name in DOCS:
        assert f"(docs/{name})" in README, f"README links every page of docs/: {name}"


@pytest.mark.slow
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
    # Its SLOs: the drifted region pages on its calibration, its drift only tickets.
    assert "PAGE firing: fraud-eu-calibration" in out
    assert "TICKET firing: fraud-eu-amount-drift" in out
    assert "PAGE firing: fraud-eu-amount-drift" not in out
    assert "PAGE firing: fraud-log-loss" not in out
    assert "prometheus --config.file=" in out
    assert (tmp_path / "xebench-demo" / "prometheus.yml").exists()
    assert (tmp_path / "xebench-demo" / "xebench.duckdb").exists()
    assert (tmp_path / "xebench-demo" / "drift.html").exists()
    assert "xebench serve --config" in out


def test_ci_runs_exactly_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    test_command = "pip install -e '.[test]' && python -m pytest"
    assert f". .venv/bin/activate && {test_command}" in README
    assert test_command in ci.splitlines()
    assert _first_command().startswith(
        "python3 -m venv .venv && . .venv/bin/activate && pip install ."
    )


# --- outputs shown verbatim ----------------------------------------------------


@pytest.mark.parametrize("page", ["README.md", "docs/benchmark.md"])
def test_bench_example_output_is_shown_verbatim(
    page: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    text = PAGES[page]
    [line] = _command_lines(text, "$ xebench bench ")
    args = shlex.split(line)[1:]
    monkeypatch.chdir(ROOT)
    report = tmp_path / "report.html"
    args[args.index("--html") + 1] = str(report)
    assert main(args[1:]) == 0
    assert _strip_lines(capsys.readouterr().out) in _strip_lines(text)
    assert report.stat().st_size > 0


@pytest.mark.parametrize("page", ["README.md", "docs/benchmark.md"])
def test_gate_example_is_shown_verbatim(
    page: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    text = PAGES[page]
    [line] = _command_lines(text, "$ xebench gate ")
    monkeypatch.chdir(ROOT)
    assert main(shlex.split(line)[2:]) == 1
    assert _strip_lines(capsys.readouterr().out) in text


def test_readme_drift_excerpt_is_what_the_command_prints(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The README shows the drift command's first lines (docs/monitoring.md all of them)."""
    [line] = _command_lines(README, "$ xebench drift ")
    args = shlex.split(line)[1:]
    args[args.index("--html") + 1] = str(tmp_path / "drift.html")
    monkeypatch.chdir(ROOT)
    assert main(args[1:]) == 0
    printed = _strip_lines(capsys.readouterr().out).splitlines()
    block = README[README.index(line) :].split("```")[0].splitlines()[1:]
    shown = [row.rstrip() for row in block if row.strip() and row != "..."]
    assert shown == printed[: len(shown)]


def test_readme_lm_excerpt_is_what_the_command_prints(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    [line] = _command_lines(README, "$ xebench lm ")
    monkeypatch.chdir(ROOT)
    assert main(shlex.split(line)[2:]) == 0
    printed = _strip_lines(capsys.readouterr().out).splitlines()
    block = README[README.index(line) :].split("```")[0].splitlines()[1:]
    shown = [row.rstrip() for row in block if row.strip()]
    assert shown[:9] == printed[:9]  # the summary and the ranking table
    warning = shown[-1].removesuffix(" ...")  # a tokenizer warning, cut
    assert any(row.startswith(warning) for row in printed), warning


@pytest.mark.parametrize("page", ["docs/monitoring.md"])
def test_drift_example_is_shown_verbatim(
    page: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    text = PAGES[page]
    [line] = _command_lines(text, "$ xebench drift ")
    args = shlex.split(line)[1:]
    monkeypatch.chdir(ROOT)
    report = tmp_path / "drift.html"
    args[args.index("--html") + 1] = str(report)
    assert main(args[1:]) == 0
    out = _strip_lines(capsys.readouterr().out)
    assert out in _strip_lines(text)
    # The two planted drifts, and only they, come first.
    assert [line.split("│")[2].strip() for line in out.splitlines() if "drift  " in line] == [
        "income",
        "channel",
    ]
    assert report.read_text().startswith("<!DOCTYPE html>")


def test_lm_example_output_is_shown_verbatim(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    text = DOCS["benchmark.md"]
    [line] = _command_lines(text, "$ xebench lm ")
    args = shlex.split(line)[1:]
    monkeypatch.chdir(ROOT)
    report = tmp_path / "lm.html"
    args[args.index("--html") + 1] = str(report)
    assert main(args[1:]) == 0
    out = _strip_lines(capsys.readouterr().out)
    assert out in _strip_lines(text)
    # What the prose says: the other tokenizer's token perplexity is lowest, yet it is second.
    ranking = [row.split("│")[2].strip() for row in out.splitlines() if row.startswith("│ ")][:3]
    assert ranking == ["tuned", "other", "base"]
    assert "warning: models 'tuned' and 'other' have different token counts" in out
    assert report.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_lm_example_file_is_what_its_generator_writes(tmp_path: Path) -> None:
    generator = (ROOT / "examples" / "make_lm_texts.py").read_text(encoding="utf-8")
    here = 'OUT = Path(__file__).resolve().parent / "data" / "lm_texts.csv"'
    assert generator.count(here) == 1
    script = tmp_path / "make_lm_texts.py"
    script.write_text(generator.replace(here, f"OUT = Path({str(tmp_path / 'lm.csv')!r})"))
    subprocess.run([sys.executable, str(script)], check=True, capture_output=True)
    shipped = (ROOT / "examples" / "data" / "lm_texts.csv").read_bytes()
    assert (tmp_path / "lm.csv").read_bytes() == shipped


def test_quickstart_output_is_shown_verbatim() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "quickstart.py")],
        capture_output=True,
        text=True,
        check=True,
    )
    assert _strip_lines(result.stdout) in _strip_lines(DOCS["metrics.md"])


def test_ingest_examples_run_as_written_and_print_as_shown(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The commands of docs/service.md, in order, from a checkout's root, on its own files."""
    shutil.copytree(ROOT / "examples" / "data", tmp_path / "examples" / "data")
    monkeypatch.chdir(tmp_path)
    text = _section(DOCS["service.md"], "## Import files")
    steps = re.findall(r"\$ (xebench ingest .*?)\n(.*?)\n", text)
    assert len(steps) == 4
    for command, shown in steps:
        main(shlex.split(command)[1:])
        captured = capsys.readouterr()
        assert (captured.out + captured.err).strip() == shown


@pytest.mark.slow
def test_example_files_are_what_their_generator_writes(tmp_path: Path) -> None:
    generator = (ROOT / "examples" / "make_ingest_files.py").read_text(encoding="utf-8")
    script = tmp_path / "make_ingest_files.py"
    here = 'DATA = Path(__file__).resolve().parent / "data"'
    script.write_text(generator.replace(here, f"DATA = Path({str(tmp_path)!r})"))
    subprocess.run([sys.executable, str(script)], check=True)
    for name in ("preds.csv", "labels.csv", "bad.csv", "validation.csv"):
        shipped = (ROOT / "examples" / "data" / name).read_bytes()
        assert (tmp_path / name).read_bytes() == shipped, name


# --- the HTTP examples, in order, on one server ---------------------------------


def _curl_calls(text: str) -> list[tuple[str, str, str]]:
    """(path, options, shown answer) of every ``$ curl -s localhost:8000...`` with an answer."""
    return re.findall(r"\$ curl -s localhost:8000(\S+)(.*?)\n(\{.*?\})\n", text, re.S)


def _send(client: object, path: str, options: str) -> object:
    body = re.search(r"-d '(.*?)'", options, re.S)
    if body:
        return client.post(path, content=body[1], headers={"content-type": "application/json"})
    return client.get(path)


def _same_answer(path: str, got: dict, expected: dict) -> None:
    if path == "/v1/models":  # the second event took the time of receipt
        for entry in (*got["models"], *expected["models"]):
            entry.pop("last_event")
    assert got == expected


def test_readme_serve_examples_answer_as_shown() -> None:
    from fastapi.testclient import TestClient

    from xebench.service.app import create_app
    from xebench.store import EventStore

    calls = _curl_calls(_section(README, "## Monitor in production"))
    assert len(calls) == 3
    with EventStore(":memory:") as store, TestClient(create_app(store)) as client:
        for path, options, shown in calls:
            _same_answer(path, _send(client, path, options).json(), json.loads(shown))


def test_service_examples_run_in_order_on_one_server(tmp_path: Path) -> None:
    """docs/service.md top to bottom on one server: curl calls, the bad batch, then the client."""
    import httpx

    from xebench.service.app import create_app
    from xebench.store import EventStore

    text = DOCS["service.md"]
    calls = _curl_calls(text)
    assert len(calls) == 4
    client_code = re.search(r"```python\n(import xebench as xb\n.*?)```", text, re.S)[1]
    store = EventStore(str(tmp_path / "events.duckdb"))
    app = create_app(store, close_store=True)
    with serve_in_thread(app) as url, httpx.Client(base_url=url) as http:
        for path, options, shown in calls:
            answer = _send(http, path, options)
            _same_answer(path, answer.json(), json.loads(shown))
        namespace: dict[str, object] = {}
        exec(client_code.replace("http://127.0.0.1:8000", url), namespace)
        stats = namespace["client"].stats()
        assert stats["failed"] == 0 and stats["dropped"] == 0 and stats["sent"] == 2, stats
        models = http.get("/v1/models").json()["models"]
    [fraud] = models
    # tx-1 and tx-2 from curl, tx-5 from the client; tx-4 was refused; tx-1 and tx-5 labelled.
    assert (fraud["predictions"], fraud["labels"], fraud["joined"]) == (3, 2, 2)


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from xebench.demo.tour import run_demo

    folder = tmp_path_factory.mktemp("demo")
    run_demo(folder, quiet=True)  # the full 48 hours, as `xebench demo` writes them
    return folder


@pytest.mark.slow
@pytest.mark.parametrize("page", ["README.md", "docs/monitoring.md"])
def test_monitoring_examples_answer_on_the_demo_store(page: str, demo_store: Path) -> None:
    from fastapi.testclient import TestClient

    from xebench.service.app import create_app
    from xebench.service.config import load_config
    from xebench.store import EventStore

    config = load_config(demo_store / "xebench.yaml")
    urls = re.findall(r"curl '(http://127\.0\.0\.1:8000[^']+)'", PAGES[page])
    assert len(urls) == (4 if page == "README.md" else 7)  # monitoring.md: the dashboard reads
    store = EventStore(config.db, monitor=config.monitor)
    with TestClient(create_app(store, config, close_store=True)) as client:
        for url in urls:
            reply = client.get(url.removeprefix("http://127.0.0.1:8000"))
            assert reply.status_code == 200, (url, reply.text)
        android = client.get(urls[3].removeprefix("http://127.0.0.1:8000").replace("48h", "12h"))
        assert android.json()["decision"]["status"] in {"fail", "inconclusive"}


@pytest.mark.slow
def test_reference_upload_example_answers_as_shown(demo_store: Path) -> None:
    from fastapi.testclient import TestClient

    from xebench.service.app import create_app
    from xebench.service.config import load_config
    from xebench.store import EventStore

    text = DOCS["monitoring.md"]
    upload = re.search(r"\$ curl -s -X PUT localhost:8000(\S+) (.*?)\n(\{.*?\})\n\$", text, re.S)
    path, options, shown = upload.groups()
    headers = dict(re.findall(r"-H '([^:]+): ([^']+)'", options))
    body = (ROOT / re.search(r"--data-binary @(\S+)", options)[1]).read_bytes()
    drift_path = re.search(r"\$ curl -s 'localhost:8000([^']+)'\n(\{.*?\})\n", text)
    config = load_config(demo_store / "xebench.yaml")
    store = EventStore(config.db, monitor=config.monitor)
    with TestClient(create_app(store, config, close_store=True)) as client:
        got = client.put(path, content=body, headers=headers).json()
        expected = json.loads(shown.replace('"uploaded_at":"..."', '"uploaded_at":null'))
        got["uploaded_at"] = None
        assert got == expected
        drift = client.get(drift_path[1]).json()
    assert drift["n_reference"] == 2000
    assert drift["drifted"] == json.loads(re.search(r'"drifted":(\[.*?\])', drift_path[2])[1])


# --- configuration, contracts, links ------------------------------------------


def test_configuration_file_loads_as_documented(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from xebench.service.config import load_config

    text = DOCS["configuration.md"]
    [yaml_text] = re.findall(r"```yaml\n(.*?)```", text, re.S)
    path = tmp_path / "xebench.yaml"
    path.write_text(yaml_text)
    monkeypatch.setenv("BRAVO_READ_TOKEN", "bravo-token")
    monkeypatch.setenv("XEBENCH_PII_KEY", "a-secret")
    config = load_config(path)
    # The documented token matches the documented digest; the env token its tenant.
    assert config.tokens.authenticate("acme-token-change-me").tenant == "acme"
    assert config.tokens.authenticate("bravo-token").tenant == "bravo"
    assert config.queue_events == 50_000 and config.memory_limit == "128MB"


def _help(args: list[str]) -> str:
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"}
    result = subprocess.run(
        [sys.executable, "-m", "xebench", *args, "--help"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    return result.stdout


@pytest.mark.slow
def test_every_command_and_flag_of_the_contract_exists() -> None:
    block = re.search(r"## Command line\n\n```\n(.*?)```", DOCS["contracts.md"], re.S)[1]
    commands: dict[tuple[str, ...], set[str]] = {}
    current: tuple[str, ...] = ()
    for line in block.splitlines():
        if line.startswith("xebench "):
            # "xebench token create ...", "xebench ingest predictions|labels ...": groups
            words = (
                re.findall(r"^xebench ([a-z]+)(?: (create|predictions))?", line)[0]
                if re.match(r"xebench [a-z]", line)
                else ()
            )
            current = tuple(word for word in words if word)
            commands.setdefault(current, set())
        commands[current] |= set(re.findall(r"--[a-z][a-z-]*", line))
    assert ("bench",) in commands and ("gate",) in commands and ("serve",) in commands
    for command, flags in commands.items():
        if not command:
            continue
        shown = _help(list(command))
        missing = {flag for flag in flags - {"--help"} if flag not in shown}
        assert not missing, (command, missing)


def _slug(heading: str) -> str:
    """GitHub's anchor of a heading."""
    text = heading.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


@pytest.mark.parametrize("page", sorted(PAGES))
def test_links_between_pages_resolve(page: str) -> None:
    base = (ROOT / page).parent
    for target in re.findall(r"\]\(([^)\s]+)\)", PAGES[page]):
        if target.startswith(("http://", "https://")):
            continue
        file, _, anchor = target.partition("#")
        path = (base / file).resolve() if file else (ROOT / page)
        assert path.exists(), f"{page}: link to {target}"
        if anchor:
            headings = re.findall(r"^#+ (.*)$", path.read_text(encoding="utf-8"), re.M)
            assert anchor in {_slug(h) for h in headings}, f"{page}: anchor {target}"


@pytest.mark.parametrize("page", sorted(PAGES))
def test_pages_cite_only_documents_users_have(page: str) -> None:
    assert "DESIGN.md" not in PAGES[page] and "../shared" not in PAGES[page]


@pytest.mark.slow
def test_readme_slo_section_runs_as_written(
    demo_store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The README's SLO excerpt is valid config and one of the demo's SLOs; its
    `xebench alerts` and `prometheus` commands run on what `xebench demo` writes."""
    from xebench.service.config import load_config

    section = README[README.index("## SLOs, alerts and Prometheus") :]
    section = section[: section.index("\n## ")]
    [yaml_text] = re.findall(r"```yaml\n(.*?)```", section, re.S)
    path = tmp_path / "slos.yaml"
    path.write_text(f"db: {tmp_path / 'x.duckdb'}\n{yaml_text}")
    config = load_config(path)
    [slo] = config.slos
    demo = load_config(demo_store / "xebench.yaml")
    shipped = {s.name: s for s in demo.slos}
    assert slo.name in shipped and slo.objective == shipped[slo.name].objective
    assert [w.url for w in config.alerting.webhooks] == ["http://127.0.0.1:9095/hook"]

    [command] = re.findall(r"`(xebench alerts --config [^`]+)`", section)
    args = shlex.split(command)[1:]
    args[args.index("--config") + 1] = str(demo_store / "xebench.yaml")
    assert main(args) in (0, 1)  # 1: a page fires
    assert "fraud-eu-calibration" in capsys.readouterr().out

    [prometheus] = re.findall(r"```bash\n(prometheus --config\.file=[^\n]+)\n```", section)
    flags = dict(arg.split("=", 1) for arg in shlex.split(prometheus)[1:])
    assert flags["--config.file"] == "xebench-demo/prometheus.yml"
    assert (demo_store / "prometheus.yml").is_file()
    assert flags["--web.listen-address"].startswith("127.0.0.1:")
