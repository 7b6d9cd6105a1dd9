"""The HTML report: every section, self-contained, escaped, same numbers as JSON."""

from __future__ import annotations

import html
import json
import math
import re

import numpy as np
import pytest
from sklearn.metrics import brier_score_loss, log_loss

import xebench as xb
from html_checks import external_references, parse
from xebench.report.charts import chart_assets
from xebench.report.html import render_html

SECTIONS = ("ranking", "comparisons", "reliability", "histograms", "cohorts", "inputs")


@pytest.fixture(scope="module")
def data() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(11)
    n = 2000
    truth = rng.uniform(0.05, 0.95, n)
    y = (rng.uniform(size=n) < truth).astype(int)
    return {
        "y": y,
        "good": truth,
        "sharp": np.clip(truth + rng.normal(0, 0.2, n), 0.01, 0.99),
        "region": rng.choice(["eu", "us", "<b>latam</b>"], n),
    }


@pytest.fixture(scope="module")
def page(data: dict[str, np.ndarray]) -> tuple[str, dict]:
    hostile = '<img src=x onerror="alert(1)">'
    result = xb.benchmark(
        data, label="y", probs={"good": "good", hostile: "sharp"}, cohorts=["region"]
    ).to_dict()
    return render_html(result), result


def test_every_section_is_present(page) -> None:
    text, result = page
    ids = parse(text).ids
    assert set(SECTIONS) <= ids
    for i in range(len(result["models"])):
        assert {f"chart-reliability-{i}", f"chart-histogram-{i}"} <= ids
    assert "chart-ranking" in ids
    assert f"xebench {xb.__version__}" in text


def _chart_specs(text: str) -> list[dict]:
    blocks = re.findall(
        r'<script type="application/json" class="xb-chart">(.*?)</script>', text, re.S
    )
    return [json.loads(block) for block in blocks]


def test_self_contained_and_the_charting_code_inlined_once(page) -> None:
    text, _ = page
    assert external_references(text) == []
    assert parse(text).loads == [], "nothing is loaded from another file"
    assert text.count(chart_assets()) == 1
    assert "plotly" not in text.lower()


def test_under_one_megabyte(page) -> None:
    text, _ = page
    assert len(text.encode()) < 1_000_000


def test_one_chart_spec_per_chart_with_the_documents_numbers(page) -> None:
    text, result = page
    specs = _chart_specs(text)
    models = result["models"]
    assert [s["kind"] for s in specs] == ["ranking"] + ["reliability"] * len(models) + [
        "histogram"
    ] * len(models)
    [ranking] = specs[0]["series"]
    assert ranking["y"] == [m["name"] for m in models]
    assert ranking["x"] == [m["log_loss"] for m in models]
    assert ranking["lo"] == [m["log_loss_ci"][0] for m in models]
    assert ranking["hi"] == [m["log_loss_ci"][1] for m in models]
    for m, spec in zip(models, specs[1 : 1 + len(models)], strict=True):
        [series] = spec["series"]
        curve = m["reliability"]
        assert series["name"] == m["name"]
        assert series["x"] == curve["mean_predicted"]
        assert series["y"] == curve["observed_frequency"]
        assert series["counts"] == curve["count"]
        assert spec["bin_edges"] == curve["bin_edges"]
    for m, spec in zip(models, specs[1 + len(models) :], strict=True):
        [series] = spec["series"]
        assert series["y"] == m["histogram"]["count"]
        assert len(series["x"]) == len(m["histogram"]["bin_edges"]) - 1


def test_user_names_are_escaped(page) -> None:
    text, _ = page
    tags = parse(text).tags
    assert "img" not in tags and "b" in tags  # the template's own <b> only
    assert "&lt;img src=x onerror=" in text
    assert html.escape("<b>latam</b>") in text
    blocks = re.findall(r'class="xb-chart">(.*?)</script>', text, re.S)
    assert blocks and all("<img" not in block for block in blocks)
    assert any("\\u003cimg" in block for block in blocks)


def test_numbers_match_sklearn(page, data) -> None:
    text, result = page
    for model in result["models"]:
        column = "good" if model["name"] == "good" else "sharp"
        expected = log_loss(data["y"], data[column])
        assert model["log_loss"] == pytest.approx(expected, rel=1e-9)
        assert f"<b>{expected:.4f}</b>" in text
        assert f"{brier_score_loss(data['y'], data[column]):.4f}" in text


def test_reliability_counts_are_shown(page, data) -> None:
    text, result = page
    assert result["inputs"]["n_bins"] == 15  # the ECE's bins are the diagram's
    counts, _ = np.histogram(data["good"], bins=np.linspace(0, 1, 16))
    good = next(m for m in result["models"] if m["name"] == "good")
    assert good["reliability"]["count"] == counts.tolist()
    for count in counts:
        assert f"<td>{count:,}</td>" in text


def test_single_model_without_cohorts_renders() -> None:
    result = xb.benchmark({"y": [0, 1, 1], "p": [0.3, 0.6, 0.8]}, label="y", probs=["p"])
    text = result.to_html()
    assert "Only one model" in text and "No cohort columns" in text
    assert math.isfinite(result.to_dict()["models"][0]["log_loss"])


def test_the_reliability_diagram_uses_the_ece_bins_and_says_so(data) -> None:
    result = xb.benchmark(data, label="y", probs=["good"], n_bins=12).to_dict()
    curve = result["models"][0]["reliability"]
    assert curve["bin_edges"] == pytest.approx(np.linspace(0, 1, 13).tolist())
    counts, _ = np.histogram(data["good"], bins=np.linspace(0, 1, 13))
    assert curve["count"] == counts.tolist()
    text = render_html(result)
    assert "good: 12 bins, as the ECE" in text and "12 uniform bins, the ECE" in text
