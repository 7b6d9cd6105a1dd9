"""deploy/grafana/xebench.json: a dashboard Grafana imports (a ``${DS_PROMETHEUS}``
input, the model / version / window / cohort variables), whose every panel queries
PromQL over xebench's metric names or the SLO rules' series -- and every expression,
its variables filled in, runs on a real Prometheus with those rules loaded."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from promstack import DEPLOY, RULES, Daemon

DASHBOARD = DEPLOY / "grafana" / "xebench.json"

#: What GET /metrics exports (docs of issue 14): the only xebench names a panel may use.
XEBENCH_METRICS = {
    *(
        f"xebench_slo_{name}"
        for name in (
            "minute_judged",
            "minute_bad",
            "target",
            "objective",
            "period_days",
            "sli",
            "budget_remaining",
            "burn_rate",
            "info",
        )
    ),
    *(
        f"xebench_{name}"
        for name in (
            "log_loss",
            "brier",
            "ece",
            "skill",
            "label_coverage",
            "label_lag_seconds",
            "predictions",
            "drift_js",
            "events_total",
            "http_requests_total",
            "rejected_requests_total",
            "queue_events",
            "pending_labels",
            "orphan_labels",
        )
    ),
    *(f"xebench_ingest_latency_seconds_{part}" for part in ("bucket", "sum", "count")),
}

#: A value for each variable, as Grafana interpolates it: "^$" is the All of version
#: and cohort (the all-versions / whole-model series), ".*" the All of slo.
VALUES = {
    "model": "fraud",
    "version": "^$",
    "cohort": "^$",
    "window": "1h",
    "slo": ".*",
    "__rate_interval": "5m",
    "__interval": "1m",
    "__range": "1h",
}
_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]")
_METRIC = re.compile(r"\b(?:xebench_\w+|slo:[\w:]+|ALERTS)\b")


def _dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text(encoding="utf-8"))


def _panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, rows and the panels of collapsed rows included."""
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def _exprs(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(where, PromQL) for every panel target and annotation query, and the series
    selector of every label_values() variable query."""
    out = [
        (f"panel {p['title']!r} {t['refId']}", t["expr"])
        for p in _panels(dashboard)
        for t in p.get("targets", [])
    ]
    out += [
        (f"annotation {a['name']!r}", a["expr"])
        for a in dashboard["annotations"]["list"]
        if "expr" in a
    ]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            selector = re.fullmatch(r"label_values\((.+), *\w+\)", variable["definition"])
            assert selector, variable["definition"]
            out.append((f"variable {variable['name']!r}", selector.group(1)))
    return out


def _fill(expr: str) -> str:
    """``expr`` with its variables replaced by :data:`VALUES` (an unknown one fails)."""

    def value(match: re.Match[str]) -> str:
        name = next(g for g in match.groups() if g)
        assert name in VALUES, f"unknown variable ${name} in {expr!r}"
        return VALUES[name]

    return _VARIABLE.sub(value, expr)


def _recorded() -> set[str]:
    groups = yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
    return {r["record"] for g in groups for r in g["rules"] if "record" in r}


def test_dashboard_is_importable() -> None:
    dashboard = _dashboard()
    assert 36 <= dashboard["schemaVersion"] <= 39
    assert dashboard["uid"] and dashboard["title"] and dashboard["id"] is None
    (source,) = dashboard["__inputs"]
    assert source == {
        **source,
        "name": "DS_PROMETHEUS",
        "type": "datasource",
        "pluginId": "prometheus",
    }
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["DS_PROMETHEUS"]["type"] == "datasource"
    assert variables["DS_PROMETHEUS"]["query"] == "prometheus"
    for name in ("model", "version", "window", "cohort"):
        assert variables[name]["type"] == "query"
        assert variables[name]["definition"].startswith("label_values("), name
        assert variables[name]["datasource"] == {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
    assert set(variables) - {"DS_PROMETHEUS"} <= set(VALUES)  # each one tried below
    # All of version / cohort is the all-versions / whole-model series (no label).
    assert variables["version"]["allValue"] == variables["cohort"]["allValue"] == "^$"


def test_rows_and_panels() -> None:
    dashboard = _dashboard()
    panels = list(_panels(dashboard))
    rows = [p["title"] for p in panels if p["type"] == "row"]
    assert [r.split(":")[0] for r in rows] == ["Executive", "On call"]
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    for panel in panels:
        assert panel["gridPos"]["x"] >= 0 and panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}, panel[
            "title"
        ]
        assert panel["targets"], f"panel {panel['title']!r} has no targets"
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs)), panel["title"]
        for target in panel["targets"]:
            assert target.get("expr", "").strip(), f"panel {panel['title']!r} {target['refId']}"
            assert target["datasource"] == panel["datasource"]
    titles = " | ".join(p["title"] for p in panels).lower()
    for needed in (
        "log loss vs slo objective",
        "error budget remaining",
        "burn rate",
        "label coverage",
        "log loss 1h / 6h / 24h",
        "label lag",
        "drift",
        "cohort",
        "events",
        "429",
        "queue",
        "pending",
    ):
        assert needed in titles, needed


def test_exprs_use_known_series_and_variables() -> None:
    known = XEBENCH_METRICS | _recorded() | {"ALERTS"}
    exprs = _exprs(_dashboard())
    used = set()
    for where, expr in exprs:
        names = set(_METRIC.findall(expr))
        assert names, f"{where}: no xebench series in {expr!r}"
        assert names <= known, f"{where}: unknown series {names - known}"
        used |= names
        _fill(expr)  # fails on a variable the dashboard does not define
    # The drift ranking is a topk over xebench_drift_js, the objective line is drawn.
    assert any(expr.startswith("topk(") and "xebench_drift_js" in expr for _, expr in exprs)
    assert {
        "xebench_slo_objective",
        "xebench_slo_budget_remaining",
        "xebench_slo_burn_rate",
    } <= used


def _wait_rules_evaluated(prometheus: Daemon, timeout: float = 20.0) -> list[dict[str, Any]]:
    """/api/v1/rules once every rule has been evaluated at least once."""
    deadline = time.monotonic() + timeout
    while True:
        groups = prometheus.get("/api/v1/rules")["data"]["groups"]
        rules = [r for g in groups for r in g["rules"]]
        if (rules and all(r["health"] != "unknown" for r in rules)) or time.monotonic() > deadline:
            return groups
        time.sleep(0.2)


@pytest.mark.slow
def test_rules_load_healthy(rules_prometheus: Daemon) -> None:
    groups = _wait_rules_evaluated(rules_prometheus)
    expected = yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
    assert [g["name"] for g in groups] == [g["name"] for g in expected]
    for group, spec in zip(groups, expected, strict=True):
        assert len(group["rules"]) == len(spec["rules"]), group["name"]
        for rule in group["rules"]:
            assert rule["health"] == "ok", (group["name"], rule["name"], rule.get("lastError"))
            assert not rule.get("lastError"), (group["name"], rule["name"], rule["lastError"])


@pytest.mark.slow
def test_every_expr_runs_in_prometheus(rules_prometheus: Daemon) -> None:
    failures = []
    for where, expr in _exprs(_dashboard()):
        answer = rules_prometheus.query(_fill(expr))
        if answer.get("status") != "success":
            failures.append(f"{where}: {answer.get('error')}\n    {_fill(expr)}")
    assert not failures, "\n".join(failures)
