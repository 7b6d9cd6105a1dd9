"""Terminal report of SLOs and their alerts: the document of ``xebench alerts --json``
and ``GET /v1/slos``, rendered (the CLI and the demo print the same thing).

Example:
    >>> print_slos({"at": "2026-01-01T00:00:00Z", "slos": [], "alerts": []})
    ... # doctest: +ELLIPSIS
    SLOs at 2026-01-01T00:00:00Z
    ...
    no burn-rate alert holds
"""

from __future__ import annotations

from typing import Any

from .monitor import print_table

__all__ = ["alert_lines", "print_slos", "slo_row"]

COLUMNS = (
    "slo", "model", "sli", "objective", "now", "verdict", "good / bad / excl. min.",
    "budget left", "burn 5m / 1h / 6h / 3d",
)  # fmt: skip


def _fmt(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}g}"


def slo_row(slo: dict[str, Any]) -> list[str]:
    """One SLO of the document as table cells.

    Example:
        >>> slo_row({"name": "ll", "model": "m", "version": None, "cohort": "region:eu",
        ...          "sli": "log_loss", "feature": None, "direction": "lower", "objective": 0.3,
        ...          "sli_value": 0.25, "verdict": "good", "error": None, "good_minutes": 9,
        ...          "bad_minutes": 1, "excluded_minutes": 0, "budget_remaining": -9.0,
        ...          "burn_rates": {"5m": 0.0, "1h": 10.0, "6h": 10.0, "3d": None}})[1:5]
        ['m [region:eu]', 'log_loss', '<= 0.3', '0.25']
    """
    rates = slo["burn_rates"]
    where = slo["model"] + (f":{slo['version']}" if slo.get("version") else "")
    where += f" [{slo['cohort']}]" if slo.get("cohort") else ""
    return [
        slo["name"],
        where,
        slo["sli"] + (f"({slo['feature']})" if slo.get("feature") else ""),
        f"{'<=' if slo['direction'] == 'lower' else '>='} {slo['objective']:g}",
        _fmt(slo["sli_value"]),
        slo["verdict"] + (f" ({slo['error']})" if slo.get("error") else ""),
        f"{slo['good_minutes']:,} / {slo['bad_minutes']:,} / {slo['excluded_minutes']:,}",
        "-" if slo["budget_remaining"] is None else f"{slo['budget_remaining']:.1%}",
        " / ".join(_fmt(rates.get(w), 3) for w in ("5m", "1h", "6h", "3d")),
    ]


def alert_lines(document: dict[str, Any]) -> list[str]:
    """One line per alert: severity, state, SLO, the conditions that hold, the runbook.

    Example:
        >>> alert_lines({"alerts": [{"severity": "page", "state": "firing", "slo": "ll",
        ...     "evidence": {"runbook": None, "conditions": [{"name": "page-1h-5m",
        ...     "long_burn_rate": 20.0, "short_burn_rate": 30.0}]}}]})
        ['PAGE firing: ll burns page-1h-5m (20x over the long window, 30x over the short)']
    """
    lines = []
    for alert in document["alerts"]:
        evidence = alert.get("evidence") or {}
        held = ", ".join(
            f"{c['name']} ({_fmt(c['long_burn_rate'], 3)}x over the long window, "
            f"{_fmt(c['short_burn_rate'], 3)}x over the short)"
            for c in evidence.get("conditions", [])
        )
        runbook = evidence.get("runbook")
        lines.append(
            f"{alert['severity'].upper()} {alert['state']}: {alert['slo']} burns {held}"
            + (f"; runbook {runbook}" if runbook else "")
        )
    return lines


def print_slos(document: dict[str, Any]) -> None:
    """The SLO table, then a line per alert (or that none holds)."""
    print_table(f"SLOs at {document['at']}", COLUMNS, [slo_row(s) for s in document["slos"]])
    for line in alert_lines(document) or ["no burn-rate alert holds"]:
        print(line)
