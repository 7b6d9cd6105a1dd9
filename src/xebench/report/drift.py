"""The drift report as one self-contained HTML page (its charting code inlined, no CDN).

It renders the ``xebench drift --json`` document (:meth:`DriftReport.to_dict
<xebench.offline.drift.DriftReport.to_dict>`), so the page, the terminal table and the
JSON show the same numbers: the ranking table, then one bar chart per feature
with the reference and current share of every bin.
"""

from __future__ import annotations

from typing import Any

from .charts import chart_assets, chart_block, chart_spec
from .html import environment

__all__ = ["render_drift_html"]

_COLORS = {"reference": "#7f8c9a", "current": "#1f77b4", "drift": "#c0392b"}


def _chart(feature: dict[str, Any]) -> dict[str, Any]:
    """Grouped bars: the share of each bin, reference vs current."""
    current_color = _COLORS["drift"] if feature["verdict"] == "drift" else _COLORS["current"]
    js = feature["js"]
    if js is None:
        title = f"{feature['feature']} ({feature['verdict']})"
    else:
        title = f"{feature['feature']}: JS {js:.4f} ({feature['verdict']})"
    return chart_spec(
        "bar",
        title=title,
        x_type="category",
        x_label="bin",
        y_label="share of values",
        series=[
            {
                "name": "reference",
                "x": feature["bins"],
                "y": feature["reference_share"],
                "color": _COLORS["reference"],
            },
            {
                "name": "current",
                "x": feature["bins"],
                "y": feature["current_share"],
                "color": current_color,
            },
        ],
        y_format="percent",
        height=340,
    )


def render_drift_html(data: dict[str, Any]) -> str:
    """Render a ``drift --json`` document as one self-contained HTML page.

    Example:
        >>> from xebench.offline.drift import drift_frames
        >>> doc = drift_frames({"x": [0.0, 1.0] * 300}, {"x": [1.0] * 600}).to_dict()
        >>> page = render_drift_html(doc)
        >>> page.startswith("<!DOCTYPE html>"), "chart-feature-0" in page, "<script src=" in page
        (True, True, False)
    """
    template = environment().get_template("drift.html.j2")
    charts = [_chart(feature) for feature in data["features"]]
    return template.render(
        data=data,
        charts=[chart_block(spec) for spec in charts],
        chart_assets=chart_assets(),
    )
