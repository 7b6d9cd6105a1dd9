"""Benchmark results as terminal tables (rich) and Markdown.

Both render the ``bench --json`` document, so the terminal, a pull-request
comment and the HTML report show the same numbers.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from ..metrics.registry import METRICS

__all__ = [
    "drift_headline",
    "drift_rows",
    "fmt",
    "markdown_report",
    "print_drift",
    "print_report",
    "verdict",
]


def fmt(value: float | None, digits: int = 4) -> str:
    """A number with ``digits`` decimals, or ``n/a``.

    Example:
        >>> fmt(0.123456), fmt(None), fmt(12, 0)
        ('0.1235', 'n/a', '12')
    """
    return "n/a" if value is None else f"{value:.{digits}f}"


def _ci(interval: Sequence[float] | None, digits: int = 4, reliable: bool | None = True) -> str:
    """An interval as text; ``reliable=False`` (too few events) marks it ``(rough)``.

    Example:
        >>> _ci([0.0, 0.91], reliable=False)
        '[0.0000, 0.9100] (rough)'
    """
    if not interval:
        return "n/a"
    text = f"[{fmt(interval[0], digits)}, {fmt(interval[1], digits)}]"
    return text if reliable is not False else f"{text} (rough)"


def _p_value(p: float | None) -> str:
    if p is None:
        return "n/a"
    return "< 1e-300" if p == 0.0 else f"{p:.2g}"


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.2%}"


def verdict(comparison: dict[str, Any]) -> str:
    """``worse``, ``better`` or ``no significant difference`` from the delta's CI.

    Example:
        >>> verdict({"delta_ci": [0.01, 0.02]}), verdict({"delta_ci": [-0.01, 0.02]})
        ('worse', 'no significant difference')
    """
    # How far each end of the CI is on the bad side of "no difference" (the registry's direction).
    best, worst = sorted(METRICS["delta"].worse_by(end, 0.0) for end in comparison["delta_ci"])
    if best > 0:
        return "worse"
    if worst < 0:
        return "better"
    return "no significant difference"


def _headline(data: dict[str, Any]) -> str:
    inputs = data["inputs"]
    confidence = f"{inputs['confidence']:.0%}"
    return (
        f"{data['n_rows']:,} rows, {len(data['models'])} model(s); log loss in {data['units']}, "
        f"{confidence} confidence intervals"
    )


def _ranking_rows(data: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    confidence = f"{data['inputs']['confidence']:.0%}"
    header = [
        "#", "model", "n", "log loss", f"{confidence} CI", "skill", "Brier", "ECE",
        "accuracy", "clipped",
    ]  # fmt: skip
    rows = [
        [
            str(rank),
            m["name"],
            f"{m['n']:,}",
            fmt(m["log_loss"]),
            _ci(m["log_loss_ci"], reliable=m.get("ci_reliable")),
            fmt(m["skill"], 3),
            fmt(m["brier"]),
            fmt(m["ece"]),
            fmt(m["accuracy"], 3),
            f"{m['clipped']:,}",
        ]
        for rank, m in enumerate(data["models"], start=1)
    ]
    return header, rows


def _comparison_rows(data: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    confidence = f"{data['inputs']['confidence']:.0%}"
    header = ["model", "Δ log loss", f"{confidence} CI", "relative", "p-value", "verdict"]
    rows = [
        [
            c["model"],
            f"{c['delta']:+.4f}",
            _ci(c["delta_ci"]),
            _percent(c["relative_delta"]),
            _p_value(c["p_value"]),
            verdict(c),
        ]
        for c in data["comparisons"]
    ]
    return header, rows


def _cohort_rows(data: dict[str, Any], column: str) -> tuple[list[str], list[list[str]]]:
    names = [m["name"] for m in data["models"]]
    header = [column, "n", *names]
    rows = []
    for value, per_model in data["cohorts"][column].items():
        by_name = {row["name"]: row for row in per_model}
        n = per_model[0]["n"] if per_model else 0
        mark = " (small)" if per_model and per_model[0]["small"] else ""
        rows.append(
            [
                f"{value}{mark}",
                f"{n:,}",
                *(fmt(by_name[name]["log_loss"]) if name in by_name else "n/a" for name in names),
            ]
        )
    return header, rows


def _cohort_note(data: dict[str, Any], column: str) -> str:
    note = data["cohort_notes"][column]
    if note["other"]:
        parts = [
            f"log loss per model; the {note['shown']} largest values, the rest pooled in one row"
        ]
    else:
        parts = [f"log loss per model; all {note['shown']} values"]
    if note["small"]:
        parts.append(f"(small) = fewer than {note['min_size']} rows: read with care")
    return "; ".join(parts)


def _discrimination_rows(data: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    confidence = f"{data['inputs']['confidence']:.0%}"
    header = ["#", "model", "ROC AUC", f"{confidence} CI", "avg precision", f"{confidence} CI"]
    rows = [
        [
            str(rank),
            m["name"],
            fmt(m.get("roc_auc")),
            _ci(m.get("roc_auc_ci")),
            fmt(m.get("average_precision")),
            _ci(m.get("average_precision_ci")),
        ]
        for rank, m in enumerate(data["models"], start=1)
    ]
    return header, rows


def _per_class_rows(data: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    classes = [str(c["class"]) for c in data["models"][0].get("per_class", [])]
    header = ["#", "model", *(f"{c}: log loss (share)" for c in classes)]
    rows = [
        [
            str(rank),
            m["name"],
            *(
                f"{fmt(c['log_loss'] if c['weight'] > 0 else None)} ({c['share']:.1%})"
                for c in m.get("per_class", [])
            ),
        ]
        for rank, m in enumerate(data["models"], start=1)
    ]
    return header, rows


def _per_class_caption(data: dict[str, Any]) -> str:
    weights = data["inputs"].get("class_weight")
    text = "mean log loss of the rows of each true class, and its share of the total loss"
    if weights:
        shown = ", ".join(f"{w['class']}: {w['weight']:.4g}" for w in weights)
        text += f"; class weights {shown}"
    return text


def print_report(
    data: dict[str, Any], console: Any = None, *, discrimination: bool = False
) -> None:
    """Print ranking, comparison and cohort tables with rich.

    ``discrimination=True`` also prints ROC AUC and average precision, and the
    log loss by true class (``bench --discrimination``).

    Example:
        >>> from xebench.offline.benchmark import benchmark
        >>> from rich.console import Console
        >>> r = benchmark({"y": [1, 0, 1, 0], "p": [0.9, 0.2, 0.6, 0.5]}, label="y", probs=["p"])
        >>> print_report(r.to_dict(), Console(width=100, color_system=None))  # doctest: +ELLIPSIS
        4 rows, 1 model(s); log loss in nats, 95% confidence intervals
        ...
    """
    from rich.console import Console
    from rich.table import Table

    # Piped output (CI logs, files) gets a wide table instead of rich's 80 columns.
    console = console or Console(width=None if sys.stdout.isatty() else 160)
    console.print(_headline(data))

    def table(title: str, header: list[str], rows: list[list[str]], caption: str = "") -> None:
        t = Table(
            title=title, title_justify="left", caption=caption or None, caption_justify="left"
        )
        for index, name in enumerate(header):
            numeric = index > 1 or name in ("n", "#")
            t.add_column(name, justify="right" if numeric else "left", no_wrap=numeric)
        for row in rows:
            t.add_row(*row)
        console.print(t)

    table("Ranking (best first)", *_ranking_rows(data))
    if discrimination:
        table(
            "Discrimination (ranking of the scores; higher is better)", *_discrimination_rows(data)
        )
        table("Log loss by true class", *_per_class_rows(data), _per_class_caption(data))
    if data["comparisons"]:
        reference = data["comparisons"][0]["reference"]
        table(
            f"Compared with {reference!r} on the same rows (Δ > 0: worse)",
            *_comparison_rows(data),
        )
    for column in data["cohorts"]:
        table(f"Cohorts by {column!r}", *_cohort_rows(data, column), _cohort_note(data, column))


def _markdown_table(header: list[str], rows: list[list[str]]) -> str:
    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    lines = ["| " + " | ".join(cell(h) for h in header) + " |"]
    lines.append("|" + "|".join("---" if i < 2 else "---:" for i in range(len(header))) + "|")
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def markdown_report(data: dict[str, Any]) -> str:
    """The benchmark as GitHub-flavoured Markdown, for a pull-request comment.

    Example:
        >>> from xebench.offline.benchmark import benchmark
        >>> r = benchmark({"y": [1, 0, 1, 0], "p": [0.9, 0.2, 0.6, 0.5]}, label="y", probs=["p"])
        >>> print(markdown_report(r.to_dict()).splitlines()[0])
        ### xebench benchmark
    """
    parts = ["### xebench benchmark", "", _headline(data), ""]
    parts += ["**Ranking** (best first)", "", _markdown_table(*_ranking_rows(data)), ""]
    parts += ["**Discrimination** (higher is better)", ""]
    parts += [_markdown_table(*_discrimination_rows(data)), ""]
    parts += [f"**Log loss by true class**: {_per_class_caption(data)}", ""]
    parts += [_markdown_table(*_per_class_rows(data)), ""]
    if data["comparisons"]:
        reference = data["comparisons"][0]["reference"]
        parts += [f"**Compared with `{reference}`** on the same rows (Δ > 0: worse)", ""]
        parts += [_markdown_table(*_comparison_rows(data)), ""]
    for column in data["cohorts"]:
        parts += [f"**Cohorts by `{column}`**: {_cohort_note(data, column)}", ""]
        parts += [_markdown_table(*_cohort_rows(data, column)), ""]
    parts.append(f"<sub>xebench {data['xebench_version']}</sub>")
    return "\n".join(parts) + "\n"


# --- drift -----------------------------------------------------------------------


def _count(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def _divergence(value: float | None) -> str:
    """4 decimals; tiny non-zero values in scientific notation rather than 0.0000."""
    if value is not None and 0 < abs(value) < 5e-5:
        return f"{value:.1e}"
    return fmt(value)


def drift_rows(data: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the drift ranking (the ``drift --json`` document).

    Example:
        >>> from xebench.offline.drift import drift_frames
        >>> doc = drift_frames({"x": [0.0, 1.0] * 300}, {"x": [1.0] * 600}).to_dict()
        >>> drift_rows(doc)[1]
        [['1', 'x', 'numeric', '600', '600', '0.2158', '4.6029', '3.9110', 'drift']]
    """
    header = ["#", "feature", "kind", "n ref", "n cur", "JS", "PSI", "KL", "verdict"]
    rows = [
        [
            str(rank),
            f["feature"],
            f["kind"],
            _count(f["n_reference"]),
            _count(f["n_current"]),
            _divergence(f["js"]),
            _divergence(f["psi"]),
            _divergence(f["kl"]),
            f["verdict"],
        ]
        for rank, f in enumerate(data["features"], start=1)
    ]
    return header, rows


def drift_headline(data: dict[str, Any]) -> str:
    """One line: rows on each side and how many features drifted.

    Example:
        >>> from xebench.offline.drift import drift_frames
        >>> drift_headline(drift_frames({"x": [0.0, 1.0] * 300}, {"x": [1.0] * 600}).to_dict())
        '600 reference rows, 600 current rows: 1 of 1 feature(s) drifted (JS >= 0.01 nats)'
    """
    return (
        f"{data['n_reference']:,} reference rows, {data['n_current']:,} current rows: "
        f"{len(data['drifted'])} of {len(data['features'])} feature(s) drifted "
        f"(JS >= {data['threshold']:g} nats)"
    )


def print_drift(data: dict[str, Any], console: Any = None) -> None:
    """Print the drift ranking with rich: drifted first, then stable, then insufficient.

    Example:
        >>> from xebench.offline.drift import drift_frames
        >>> from rich.console import Console
        >>> doc = drift_frames({"x": [0.0, 1.0] * 300}, {"x": [1.0] * 600}).to_dict()
        >>> print_drift(doc, Console(width=100, color_system=None))  # doctest: +ELLIPSIS
        600 reference rows, 600 current rows: 1 of 1 feature(s) drifted (JS >= 0.01 nats)
        ...
    """
    from rich.console import Console
    from rich.table import Table

    console = console or Console(width=None if sys.stdout.isatty() else 160)
    if "model" in data:  # a monitored window (GET /v1/drift), not two files
        for side in ("current", "reference"):
            console.print(f"{side}: {data[f'{side}_files'][0]}", markup=False, highlight=False)
    console.print(drift_headline(data))
    caption = (
        f"JS: Jensen-Shannon divergence, KL: KL(reference || current), both in nats; "
        f"PSI and KL with smoothing {data['smoothing']:g}. 'insufficient': fewer than "
        f"{data['min_samples']:,} values on a side."
    )
    table = Table(
        title="Drift by feature (drifted first)",
        title_justify="left",
        caption=caption,
        caption_justify="left",
    )
    header, rows = drift_rows(data)
    for index, name in enumerate(header):
        numeric = index == 0 or 3 <= index <= 7
        table.add_column(name, justify="right" if numeric else "left", no_wrap=numeric)
    styles = {"drift": "bold red", "insufficient": "dim"}
    for row in rows:
        table.add_row(*row, style=styles.get(row[-1]))
    console.print(table)
    for name, reason in data.get("skipped", {}).items():
        console.print(f"skipped {name!r}: {reason}", markup=False, highlight=False)
    if data.get("note"):
        console.print(data["note"], markup=False, highlight=False)
