"""Self-contained HTML reports: jinja2 templates with the charting code inlined.

The report renders the same ``bench --json`` document the terminal and the
Markdown output show, so the numbers are identical everywhere. Every chart is a
spec block (:mod:`xebench.report.charts`) that the vendored Chart.js and
``xebench-charts.js`` draw; both are copied into the page (``chart_assets()``):
the file opens offline and never fetches anything (no CDN, no fonts, no images).
"""

from __future__ import annotations

import itertools
from functools import lru_cache
from typing import Any

import jinja2

from ..metrics.registry import METRICS
from .charts import chart_assets, chart_block, chart_spec
from .console import fmt, verdict

__all__ = ["render_html"]


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("xebench.report", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"], default=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["fmt"] = fmt
    env.filters["pct"] = lambda v: "n/a" if v is None else f"{v:+.2%}"
    env.filters["pvalue"] = lambda p: "n/a" if p is None else ("< 1e-300" if p == 0 else f"{p:.2g}")
    return env


def _ci_end(model: dict[str, Any], side: int) -> float | None:
    """One end of the log loss's CI (None when there is no CI)."""
    ci = model.get("log_loss_ci")
    return ci[side] if ci else None


def _charts(data: dict[str, Any]) -> dict[str, Any]:
    """Chart blocks (:mod:`xebench.report.charts`): the ranking, reliability, histograms."""
    models = data["models"]
    units = data["units"]
    ranking = chart_spec(
        "ranking",
        title=f"Log loss with {data['inputs']['confidence']:.0%} CI ({units})",
        x_type="linear",
        x_label=f"log loss ({units}), {METRICS['log_loss'].direction} is better",
        series=[
            {
                "name": "log loss",
                "x": [m["log_loss"] for m in models],
                "y": [m["name"] for m in models],
                "lo": [_ci_end(m, 0) for m in models],
                "hi": [_ci_end(m, 1) for m in models],
            }
        ],
        height=120 + 40 * len(models),
    )
    reliability, histograms = [], []
    for m in models:
        curve = m["reliability"]
        edges = curve["bin_edges"]
        reliability.append(
            chart_spec(
                "reliability",
                title=f"{m['name']}: {len(edges) - 1} bins, as the ECE",
                x_type="linear",
                x_label="mean predicted",
                y_label="observed",
                series=[
                    {
                        "name": m["name"],
                        "x": curve["mean_predicted"],
                        "y": curve["observed_frequency"],
                        "counts": curve["count"],
                    }
                ],
                bin_edges=edges,
                y2_label="rows",
                height=360,
            )
        )
        hist = m["histogram"]
        edges = hist["bin_edges"]
        histograms.append(
            chart_spec(
                "histogram",
                title=m["name"],
                x_type="linear",
                x_label="predicted probability",
                y_label="rows",
                series=[
                    {
                        "name": m["name"],
                        "x": [(a + b) / 2 for a, b in itertools.pairwise(edges)],
                        "y": hist["count"],
                    }
                ],
                height=300,
            )
        )
    return {
        "ranking": chart_block(ranking),
        "reliability": [chart_block(spec) for spec in reliability],
        "histograms": [chart_block(spec) for spec in histograms],
    }


def render_html(data: dict[str, Any]) -> str:
    """Render a ``bench --json`` document as one self-contained HTML page.

    Example:
        >>> import xebench as xb
        >>> result = xb.benchmark(
        ...     {"y": [1, 0, 1, 0], "p": [0.8, 0.3, 0.6, 0.1]}, label="y", probs=["p"]
        ... )
        >>> page = render_html(result.to_dict())
        >>> page.startswith("<!DOCTYPE html>"), "Reliability" in page, "<script src=" in page
        (True, True, False)
    """
    template = environment().get_template("benchmark.html.j2")
    return template.render(
        data=data,
        inputs=data["inputs"],
        verdict=verdict,
        charts=_charts(data),
        chart_assets=chart_assets(),
    )
