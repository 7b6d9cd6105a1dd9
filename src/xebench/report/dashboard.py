"""The web dashboard's pages: the views' documents drawn as HTML, charts and tables.

:mod:`xebench.service.dashboard_data` asks the questions; this module only
draws the answers, with the reports' Jinja2 environment (autoescaped: a model
or cohort named ``<script>`` is text) and the reports' charts
(:mod:`xebench.report.charts`: one JSON block per chart, drawn by the
package's ``xebench-charts.js``, served as a static file). No page holds an
inline script or style, so the service can send a strict
Content-Security-Policy.

Example:
    >>> html = render_page("executive", {"at": "2026-01-01T00:00:00Z", "models": [],
    ...                                  "model_names": []}, DashboardPage(view="executive"))
    >>> "No model has sent predictions yet" in html
    True
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from markupsafe import Markup

from .charts import LIBRARY, RENDERER, chart_block, chart_spec
from .html import environment

__all__ = ["VIEWS", "DashboardPage", "chart_scripts", "render_error", "render_login", "render_page"]


#: The views: path, title, what they are for.
VIEWS = {
    "executive": ("/", "Executive", "30-day trends, error budgets, cohorts that degraded"),
    "oncall": ("/oncall", "On-call", "the last 24 hours, alerts, labels and the pipeline"),
    "debug": ("/debug", "Debug", "one window: reliability, drift, the worst events"),
}


@dataclass
class DashboardPage:
    """What every page needs besides its view's document: the view, its filters (kept in
    the links: shareable URLs), the static files' version and whether a session is open."""

    view: str
    filters: dict[str, str] = field(default_factory=dict)
    asset_version: str = "0"
    session: bool = False
    render_ms: float | None = None

    def link(self, view: str, **changes: str | None) -> str:
        """The URL of ``view`` with this page's filters, changed by ``changes``.

        Example:
            >>> DashboardPage("oncall", {"model": "fraud"}).link("debug", window="6h")
            '/debug?model=fraud&window=6h'
        """
        query = {**self.filters, **changes}
        query = {k: v for k, v in query.items() if v}
        path = VIEWS[view][0]
        return f"{path}?{urlencode(query)}" if query else path


def _ci(window: dict[str, Any], key: str = "log_loss_ci") -> tuple[Any, Any]:
    ci = window.get(key)
    return (ci[0], ci[1]) if ci else (None, None)


def _line(
    title: str, windows: Sequence[dict[str, Any]], metric: str, thresholds: Sequence[Any], y: str
) -> Markup:
    """A line over time of ``metric`` from a series of windows, with its CI band when the
    windows carry one, and the SLO objectives as thresholds."""
    ci_key = f"{metric}_ci"
    has_ci = any(w.get(ci_key) for w in windows)
    series: dict[str, Any] = {
        "name": metric.replace("_", " "),
        "x": [w["from"] for w in windows],
        "y": [w.get(metric) for w in windows],
    }
    if has_ci:
        series["lo"] = [_ci(w, ci_key)[0] for w in windows]
        series["hi"] = [_ci(w, ci_key)[1] for w in windows]
    spec = chart_spec(
        "line", title=title, series=[series], x_type="time", y_label=y, thresholds=thresholds
    )
    return chart_block(spec)


def _executive_charts(data: dict[str, Any]) -> None:
    for model in data["models"]:
        name = model["model"]
        model["charts"] = [
            _line(f"{name}: log loss per day (95% CI)", model["series"], "log_loss",
                  model["thresholds"]["log_loss"], "log loss (nats)"),
            _line(f"{name}: skill per day", model["series"], "skill",
                  model["thresholds"]["skill"], "skill vs the no-skill prior"),
        ]  # fmt: skip


def _oncall_charts(data: dict[str, Any]) -> None:
    if data.get("model") is None:
        return
    name = data["model"]
    rate = data["rate"]
    data["charts"] = [
        _line(f"{name}: log loss every 30 minutes, last 24 hours (95% CI)", data["series"],
              "log_loss", data["thresholds"], "log loss (nats)"),
        chart_block(chart_spec(
            "bar", title=f"{name}: predictions per minute, last hour", x_type="time",
            series=[{"name": "predictions", "x": [w["from"] for w in rate],
                     "y": [w["n_predictions"] for w in rate]}],
            y_label="events / minute")),
    ]  # fmt: skip


def _debug_charts(data: dict[str, Any]) -> None:
    if data.get("model") is None:
        return
    reliability = data["reliability"]
    bins = [b for b in reliability.get("bins", []) if b.get("count")]
    charts = [
        chart_block(chart_spec(
            "reliability", title="Reliability: observed frequency vs mean predicted probability",
            series=[{"name": "observed", "x": [b["mean_predicted"] for b in bins],
                     "y": [b["observed"] for b in bins], "counts": [b["count"] for b in bins]}],
            x_type="linear", x_label="mean predicted probability", y_label="observed frequency")),
    ]  # fmt: skip
    histogram = reliability.get("histogram")
    if histogram:
        charts.append(chart_block(chart_spec(
            "histogram", title="Predicted probabilities, every prediction of the window",
            series=[{"name": "predictions", "x": [_bin_label(h) for h in histogram],
                     "y": [h["count"] for h in histogram]}],
            x_label="predicted probability", y_label="predictions")))  # fmt: skip
    data["charts"] = charts
    features = data["drift"].get("features", [])
    for feature in features[:6]:
        feature["chart"] = chart_block(chart_spec(
            "histogram", title=f"{feature['feature']}: reference vs current",
            series=[{"name": "reference", "x": feature.get("bins", []),
                     "y": feature.get("reference_share", [])},
                    {"name": "current", "x": feature.get("bins", []),
                     "y": feature.get("current_share", [])}],
            y_label="share of events"))  # fmt: skip


def _bin_label(entry: dict[str, Any]) -> str:
    return f"{entry['lo']:.2f}-{entry['hi']:.2f}"


def chart_scripts() -> list[str]:
    """The static scripts every page loads, in order: the vendored chart library, then
    the renderer of the pages' chart blocks.

    Example:
        >>> chart_scripts()[-1]
        'xebench-charts.js'
    """
    return [LIBRARY, RENDERER]


def http_url(url: str) -> bool:
    """Whether ``url`` may be a link: http or https only (a runbook named
    ``javascript:...`` is shown as text).

    Example:
        >>> http_url("https://runbooks.example/x"), http_url("javascript:alert(1)")
        (True, False)
    """
    return url.lower().startswith(("https://", "http://"))


def _render(template: str, page: DashboardPage, **context: Any) -> str:
    return (
        environment()
        .get_template(f"dashboard/{template}.html.j2")
        .render(page=page, views=VIEWS, scripts=chart_scripts(), http_url=http_url, **context)
    )


_CHARTS = {"executive": _executive_charts, "oncall": _oncall_charts, "debug": _debug_charts}


def render_page(view: str, data: dict[str, Any], page: DashboardPage) -> str:
    """The HTML of ``view`` (executive, oncall or debug) for its document ``data``.

    Example:
        >>> html = render_page("oncall", {"at": "2026-01-01T00:00:00Z", "model": None,
        ...     "model_names": [], "alerts": [], "status": {}, "queue": {}, "counters": {}},
        ...     DashboardPage(view="oncall"))
        >>> '<nav' in html and 'href="/debug"' in html
        True
    """
    if view not in VIEWS:
        raise ValueError(f"no dashboard view {view!r}; views: {', '.join(VIEWS)}")
    _CHARTS[view](data)
    return _render(view, page, data=data)


def render_login(
    *, error: str | None = None, next_path: str = "/", asset_version: str = "0"
) -> str:
    """The login form (a token, exchanged for a session cookie by ``POST /login``).

    Example:
        >>> "name=\\"token\\"" in render_login(error="invalid token")
        True
    """
    page = DashboardPage(view="login", asset_version=asset_version)
    return _render("login", page, error=error, next_path=next_path)


def render_error(message: str, page: DashboardPage) -> str:
    """A refusal (a bad filter, an unknown model) in the dashboard's frame.

    Example:
        >>> "window: must be one of" in render_error("window: must be one of 1h, 6h",
        ...                                            DashboardPage(view="debug"))
        True
    """
    return _render("error", page, message=message)
