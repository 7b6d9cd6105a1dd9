"""deploy/prometheus: the rule files pass ``promtool check rules``, the example config
``promtool check config``, and every unit test under deploy/prometheus/tests passes
``promtool test rules`` (synthetic series, hand-computed alert times and ratios)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from promstack import DEPLOY, RULES, require, run

PROMETHEUS_DIR = DEPLOY / "prometheus"
RULE_FILES = sorted(PROMETHEUS_DIR.glob("*rules*.yml"))
TEST_FILES = sorted((PROMETHEUS_DIR / "tests").glob("*.yml"))

#: The series Sloth-style dashboards read (Sloth's names), all recorded here.
SLOTH_SERIES = {
    *(f"slo:sli_error:ratio_rate{w}" for w in ("5m", "30m", "1h", "2h", "6h", "1d", "3d")),
    "slo:objective:ratio",
    "slo:error_budget:ratio",
    "slo:time_period:days",
    "slo:current_burn_rate:ratio",
    "slo:period_burn_rate:ratio",
    "slo:period_error_budget_remaining:ratio",
}


def test_the_files_are_there() -> None:
    assert RULES in RULE_FILES
    assert {p.name for p in TEST_FILES} >= {
        "page.yml",
        "ticket.yml",
        "excluded.yml",
        "recording.yml",
    }


@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: p.name)
def test_promtool_check_rules(path: Path) -> None:
    result = run(require("promtool"), "check", "rules", str(path))
    assert result.returncode == 0, result.stdout


def test_promtool_check_config() -> None:
    result = run(require("promtool"), "check", "config", str(PROMETHEUS_DIR / "prometheus.yml"))
    assert result.returncode == 0, result.stdout


@pytest.mark.slow
@pytest.mark.parametrize("path", TEST_FILES, ids=lambda p: p.name)
def test_promtool_test_rules(path: Path) -> None:
    # Relative rule_files resolve against the test file's folder.
    result = run(require("promtool"), "test", "rules", str(path), timeout=120)
    assert result.returncode == 0, result.stdout


def test_sloth_series_and_labels() -> None:
    """Every series Sloth's dashboards read is recorded, each with Sloth's labels."""
    groups = yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
    recorded = {r["record"]: r for g in groups for r in g["rules"] if "record" in r}
    assert set(recorded) >= SLOTH_SERIES
    for name, rule in recorded.items():
        if name.startswith("slo:sli_error:ratio_rate"):
            window = name.removeprefix("slo:sli_error:ratio_rate")
            assert rule["labels"] == {"sloth_window": window}, name
            assert f"[{window}]" in rule["expr"], name
            # The labels Sloth's dashboards select on, made from xebench's.
            for label in ("sloth_id", "sloth_service", "sloth_slo"):
                assert f'"{label}"' in rule["expr"], (name, label)


def test_the_alerts_mirror_xebench_defaults() -> None:
    """One page and one ticket rule, named as xebench names its alerts, with the
    windows and factors of xebench.analysis.slo.DEFAULT_BURN_ALERTS."""
    from xebench.analysis.slo import DEFAULT_BURN_ALERTS, duration_label

    groups = yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
    alerts = [r for g in groups for r in g["rules"] if "alert" in r]
    by_severity = {a["labels"]["severity"]: a for a in alerts}
    assert len(alerts) == len(by_severity) == 2
    assert {a["alert"] for a in alerts} == {"XebenchSLOBurnRate"}
    for burn in DEFAULT_BURN_ALERTS:
        expr = " ".join(by_severity[burn.severity]["expr"].split())
        factor = f"{burn.factor:g}"
        for span in (burn.long, burn.short):
            window = duration_label(span)
            term = (
                f"slo:sli_error:ratio_rate{window} / ignoring(sloth_window) "
                f"slo:error_budget:ratio > {factor}"
            )
            assert term in expr, (burn.name, term)
    for alert in alerts:
        assert set(alert["annotations"]) == {"summary", "description", "runbook_url"}
