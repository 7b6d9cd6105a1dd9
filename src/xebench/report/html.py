"""Self-contained HTML reports: jinja2 templates with plotly.js inlined.

The report renders the same ``bench --json`` document the terminal and the
Markdown output show, so the numbers are identical everywhere. plotly.js is
copied into the page from the ``plotly`` package: the file opens offline and
never fetches anything (no CDN, no fonts, no images).
"""

from __future__ import annotations

import itertools
import json
from functools import lru_cache
from typing import Any

import jinja2

from ..metrics.registry import METRICS
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


@lru_cache(maxsize=1)
def plotly_js() -> str:
    from plotly.offline import get_plotlyjs

    return get_plotlyjs()


def script_json(value: Any) -> str:
    """JSON that is safe inside ``<script>``: no ``</script>``, no HTML specials."""
    text = json.dumps(value, allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _ci_arm(model: dict[str, Any], side: int) -> float:
    """Distance from the log loss to one end of its CI (0 when there is no CI)."""
    ci = model.get("log_loss_ci")
    if not ci or ci[side] is None or model["log_loss"] is None:
        return 0.0
    return abs(ci[side] - model["log_loss"])


def _charts(data: dict[str, Any]) -> dict[str, Any]:
    """Plotly figure specs (plain JSON) for the ranking, reliability and histograms."""
    models = data["models"]
    units = data["units"]
    ranking = {
        "data": [
            {
                "type": "scatter",
                "mode": "markers",
                "x": [m["log_loss"] for m in models],
                "y": [m["name"] for m in models],
                "error_x": {
                    "type": "data",
                    "symmetric": False,
                    "array": [_ci_arm(m, 1) for m in models],
                    "arrayminus": [_ci_arm(m, 0) for m in models],
                },
                "marker": {"size": 10},
                "name": "log loss",
            }
        ],
        "layout": {
            "title": {"text": f"Log loss with {data['inputs']['confidence']:.0%} CI ({units})"},
            "xaxis": {
                "title": {"text": f"log loss ({units}), {METRICS['log_loss'].direction} is better"}
            },
            "yaxis": {"autorange": "reversed", "automargin": True},
            "height": 120 + 40 * len(models),
            "margin": {"t": 50, "b": 50},
        },
    }
    reliability, histograms = [], []
    for m in models:
        curve = m["reliability"]
        edges = curve["bin_edges"]
        centers = [(a + b) / 2 for a, b in itertools.pairwise(edges)]
        reliability.append(
            {
                "data": [
                    {
                        "type": "bar",
                        "x": centers,
                        "y": curve["count"],
                        "yaxis": "y2",
                        "name": "rows per bin",
                        "opacity": 0.25,
                        "width": [b - a for a, b in itertools.pairwise(edges)],
                    },
                    {
                        "type": "scatter",
                        "mode": "lines",
                        "x": [0, 1],
                        "y": [0, 1],
                        "name": "perfect calibration",
                        "line": {"dash": "dash", "color": "grey"},
                    },
                    {
                        "type": "scatter",
                        "mode": "lines+markers",
                        "x": curve["mean_predicted"],
                        "y": curve["observed_frequency"],
                        "text": [f"n = {c:,}" for c in curve["count"]],
                        "name": m["name"],
                    },
                ],
                "layout": {
                    "title": {"text": f"{m['name']}: {len(edges) - 1} bins, as the ECE"},
                    "xaxis": {"title": {"text": "mean predicted"}, "range": [0, 1]},
                    "yaxis": {"title": {"text": "observed"}, "range": [0, 1]},
                    "yaxis2": {"overlaying": "y", "side": "right", "title": {"text": "rows"}},
                    "height": 360,
                    "legend": {"orientation": "h", "y": -0.25},
                    "margin": {"t": 40},
                },
            }
        )
        hist = m["histogram"]
        edges = hist["bin_edges"]
        histograms.append(
            {
                "data": [
                    {
                        "type": "bar",
                        "x": [(a + b) / 2 for a, b in itertools.pairwise(edges)],
                        "y": hist["count"],
                        "width": [b - a for a, b in itertools.pairwise(edges)],
                        "name": m["name"],
                    }
                ],
                "layout": {
                    "title": {"text": m["name"]},
                    "xaxis": {"title": {"text": "predicted probability"}, "range": [0, 1]},
                    "yaxis": {"title": {"text": "rows"}},
                    "height": 300,
                    "margin": {"t": 40},
                },
            }
        )
    return {"ranking": ranking, "reliability": reliability, "histograms": histograms}


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
        charts_json=script_json(_charts(data)),
        plotly_js=plotly_js(),
    )
