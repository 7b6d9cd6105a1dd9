"""The slos: section: every mistake names its key path; OpenSLO documents are read too."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from xebench.errors import ConfigError
from xebench.service.config import load_config
from xebench.service.slo_config import from_openslo, parse_slos

BASE = {"name": "ll", "model": "fraud", "sli": "log_loss", "objective": 0.3}


def one(**changes: object) -> dict:
    entry = {**BASE, **changes}
    return {k: v for k, v in entry.items() if v is not None}


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (one(sli="auc"), r"slos\[0\]\.sli: must be one of"),
        (one(objective="low"), r"slos\[0\]\.objective: must be a number"),
        (one(objective=float("nan")), r"slos\[0\]\.objective: must be finite"),
        (one(objective=-1), r"slos\[0\]\.objective: must be within \[0, inf\]"),
        (one(target=1), r"slos\[0\]\.target: must be between 0 and 1"),
        (one(target=True), r"slos\[0\]\.target: must be a number"),
        (one(window="90s"), r"slos\[0\]\.window: must be a whole number of minutes"),
        (one(window="99999999d"), r"slos\[0\]\.window"),
        (one(window="2d", period="1d"), r"slos\[0\]\.window: must not be longer than period"),
        (one(min_samples=0), r"slos\[0\]\.min_samples: must be an integer >= 1"),
        (one(min_samples=10**400), r"slos\[0\]\.min_samples: must be at most"),
        (one(model=None), r"slos\[0\]\.model: is required"),
        (one(name="has space"), r"slos\[0\]\.name: must be letters"),
        (one(colour="red"), r"slos\[0\]: unknown keys \['colour'\]"),
        (one(sli="drift_js"), r"slos\[0\]\.feature: is required for drift_js"),
        (one(feature="amount"), r"slos\[0\]\.feature: applies to drift_js only"),
        (one(sli="canary_delta", version="v2"), r"slos\[0\]\.baseline: is required"),
        (one(cohort="nocolon"), r"slos\[0\]\.cohort"),
        (one(runbook="ftp://x"), r"slos\[0\]\.runbook: must be an http\(s\) URL"),
        (one(labels={"severity": "low"}), r"slos\[0\]\.labels"),
        (
            one(burn_alerts=[{"severity": "sms", "long": "1h", "short": "5m", "factor": 2}]),
            r"slos\[0\]\.burn_alerts\[0\]\.severity: must be page or ticket",
        ),
        (
            one(burn_alerts=[{"severity": "page", "long": "5m", "short": "1h", "factor": 2}]),
            r"slos\[0\]\.burn_alerts\[0\]\.short: must not be longer than long",
        ),
        (
            one(burn_alerts=[{"severity": "page", "long": "1h", "short": "5m", "factor": 0}]),
            r"slos\[0\]\.burn_alerts\[0\]\.factor: must be > 0",
        ),
    ],
)
def test_bad_entries_name_the_key(entry: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_slos([entry])


def test_duplicate_names_and_not_a_list() -> None:
    with pytest.raises(ConfigError, match="two SLOs are named 'll'"):
        parse_slos([BASE, BASE])
    with pytest.raises(ConfigError, match="slos: must be a list"):
        parse_slos({"name": "x"})


def test_defaults_and_the_yaml_file(tmp_path: Path) -> None:
    openslo = {
        "apiVersion": "openslo/v1", "kind": "SLO",
        "metadata": {"name": "cov", "labels": {"team": "risk"},
                     "annotations": {"runbook": "https://runbooks.example/cov"}},
        "spec": {"service": "fraud", "budgetingMethod": "Timeslices",
                 "timeWindow": [{"duration": "7d", "isRolling": True}],
                 "indicator": {"metadata": {"name": "cov"}, "spec": {"thresholdMetric": {
                     "metricSource": {"type": "xebench",
                                      "spec": {"sli": "label_coverage", "window": "6h"}}}}},
                 "objectives": [{"op": "gte", "value": 0.8, "targetPercent": 95}]},
    }  # fmt: skip
    (tmp_path / "more.yaml").write_text(yaml.safe_dump_all([openslo]))
    config = tmp_path / "xebench.yaml"
    config.write_text(yaml.safe_dump({"slos": [BASE], "slo_files": ["more.yaml"]}))
    slos = load_config(config, env={}).slos
    assert [s.name for s in slos] == ["ll", "cov"]
    ll, cov = slos
    assert (ll.window, ll.period, ll.target, ll.min_samples) == (
        timedelta(hours=1), timedelta(days=28), 0.99, 200,
    )  # fmt: skip
    assert cov.target == pytest.approx(0.95) and cov.window == timedelta(hours=6)
    assert cov.labels == {"team": "risk"} and cov.runbook.endswith("/cov")
    assert cov.period == timedelta(days=7)


def test_openslo_op_must_agree_with_the_direction() -> None:
    doc = {
        "apiVersion": "openslo/v1", "kind": "SLO", "metadata": {"name": "ll"},
        "spec": {"service": "fraud",
                 "indicator": {"spec": {"thresholdMetric": {"metricSource": {
                     "type": "xebench", "spec": {"sli": "log_loss"}}}}},
                 "objectives": [{"op": "gte", "value": 0.3, "target": 0.99}]},
    }  # fmt: skip
    with pytest.raises(ConfigError, match=r"objectives\[0\]\.op: must be lte"):
        from_openslo(doc, "slos[0]")
    with pytest.raises(ConfigError, match="apiVersion: openslo/v1"):
        from_openslo({**doc, "kind": "SLI"}, "slos[0]")
