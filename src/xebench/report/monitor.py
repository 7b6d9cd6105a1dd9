"""Terminal tables of monitoring answers: windows, series, comparisons.

They render the same JSON documents that ``GET /v1/metrics`` and
``GET /v1/compare`` return, so the CLI and the API show the same numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .console import fmt

__all__ = [
    "compare_line",
    "print_compare",
    "print_series",
    "print_table",
    "print_windows",
    "window_row",
]

WINDOW_COLUMNS = (
    "window", "predictions", "labelled", "coverage", "log loss [95% CI]", "skill", "ECE",
    "lag p50", "state",
)  # fmt: skip


def _duration(seconds: float | None) -> str:
    """``1h 05m``-style text of a duration in seconds.

    Example:
        >>> _duration(3900), _duration(42.0), _duration(None)
        ('1h 05m', '42s', 'n/a')
    """
    if seconds is None:
        return "n/a"
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m {seconds % 60:02d}s"
    if seconds < 86400:
        return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"
    return f"{seconds // 86400}d {seconds % 86400 // 3600:02d}h"


def window_row(name: str, window: dict[str, Any]) -> list[str]:
    """One table row of a window object.

    Example:
        >>> window_row("1h", {"n_predictions": 10, "n_labelled": 5, "coverage": 0.5,
        ...     "log_loss": 0.25, "log_loss_ci": [0.2, 0.3], "skill": 0.1, "ece": 0.02,
        ...     "label_lag_p50_s": 600, "provisional": True})[:5]
        ['1h', '10', '5', '50.0%', '0.2500 [0.2000, 0.3000]']
    """
    coverage = window.get("coverage")
    interval = window.get("log_loss_ci")
    loss = fmt(window.get("log_loss"))
    if interval:
        loss += f" [{fmt(interval[0])}, {fmt(interval[1])}]"
        if window.get("ci_reliable") is False:
            loss += " (rough)"  # a t interval on a handful of events
    return [
        name,
        str(window["n_predictions"]),
        str(window["n_labelled"]),
        "n/a" if coverage is None else f"{coverage:.1%}",
        loss,
        fmt(window.get("skill"), 3),
        fmt(window.get("ece"), 3),
        _duration(window.get("label_lag_p50_s")),
        "provisional" if window.get("provisional") else "final",
    ]


def print_table(
    title: str, columns: Sequence[str], rows: Sequence[Sequence[str]], *, labelled: bool = True
) -> None:
    """Print a rich table of text cells, numbers right-aligned, at least 140 columns wide.

    ``labelled``: the first column names the rows and is left-aligned.

    Example:
        >>> print_table("drift", ("feature", "JS"), [["amount", "0.0123"], ["country", "0.0008"]])
        ... # doctest: +NORMALIZE_WHITESPACE
        drift
        ┏━━━━━━━━━┳━━━━━━━━┓
        ┃ feature ┃     JS ┃
        ┡━━━━━━━━━╇━━━━━━━━┩
        │ amount  │ 0.0123 │
        │ country │ 0.0008 │
        └─────────┴────────┘
    """
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for i, column in enumerate(columns):
        table.add_column(column, justify="left" if labelled and i == 0 else "right")
    for row in rows:
        table.add_row(*row)
    Console(width=max(Console().width, 140)).print(table)


def print_windows(title: str, windows: Sequence[tuple[str, dict[str, Any]]]) -> None:
    """A table with one row per named window."""
    print_table(title, WINDOW_COLUMNS, [window_row(name, w) for name, w in windows])


def print_series(title: str, series: Sequence[dict[str, Any]]) -> None:
    """A table with one row per step of a series (named by its start)."""
    rows = [window_row(w["from"][:16].replace("T", " "), w) for w in series]
    print_table(title, ("from (UTC)", *WINDOW_COLUMNS[1:]), rows)


def _with_ci(value: Any, interval: Any) -> str:
    text = fmt(value)
    return text + (f" [{fmt(interval[0])}, {fmt(interval[1])}]" if interval else "")


def token_row(name: str, tokens: dict[str, Any]) -> list[str]:
    """One table row of a window's ``tokens`` document (a language model's sequences).

    Example:
        >>> token_row("window", {"n_sequences": 2, "n_tokens": 5, "pooled_perplexity": 4.953,
        ...     "pooled_perplexity_ci": None, "bits_per_byte": 0.7213,
        ...     "bits_per_byte_ci": [0.5, 0.9], "extremal_tokens": 0})
        ['window', '2', '5', '4.9530', '0.7213 [0.5000, 0.9000]', '0']
    """
    return [
        name,
        str(tokens["n_sequences"]),
        str(tokens["n_tokens"]),
        _with_ci(tokens.get("pooled_perplexity"), tokens.get("pooled_perplexity_ci")),
        _with_ci(tokens.get("bits_per_byte"), tokens.get("bits_per_byte_ci")),
        str(tokens.get("extremal_tokens", 0)),
    ]


#: The columns of :func:`print_token_windows`.
TOKEN_COLUMNS = ("window", "sequences", "tokens", "perplexity [95% CI]",
                 "bits/byte [95% CI]", "extremal")  # fmt: skip


def print_token_windows(title: str, windows: Sequence[tuple[str, dict[str, Any]]]) -> None:
    """A table of the windows' scored sequences (nothing when no window has any)."""
    rows = [token_row(name, w["tokens"]) for name, w in windows if w.get("tokens")]
    if rows:
        print_table(f"{title} (scored sequences)", TOKEN_COLUMNS, rows)


def compare_line(result: dict[str, Any]) -> str:
    """One line: the decision, the candidate's relative change and its evidence.

    Example:
        >>> compare_line({"candidate": "m:v2", "baseline": "m:v1", "mode": "canary",
        ...     "cohort": None, "decision": {"status": "pass", "reason": "ok"}})
        'PASS  m:v2 vs m:v1 (canary, all traffic): ok'
    """
    decision = result["decision"]
    scope = result.get("cohort") or "all traffic"
    return (
        f"{decision['status'].upper():<5} {result['candidate']} vs {result['baseline']} "
        f"({result['mode']}, {scope}): {decision['reason']}"
    )


def print_compare(result: dict[str, Any]) -> None:
    """The comparison's evidence as a small table, then the decision line."""
    comparison = result.get("comparison")
    loss = result.get("metric", "log_loss").replace("_", " ")
    if comparison:
        interval = comparison.get("delta_ci") or [None, None]
        print_table(
            f"{result['candidate']} vs {result['baseline']} ({result['mode']})",
            ("n candidate", "n baseline", f"{loss} cand.", f"{loss} base", "delta [95% CI]"),
            [
                [
                    str(comparison.get("n_candidate")),
                    str(comparison.get("n_baseline")),
                    fmt(comparison.get("candidate_log_loss")),
                    fmt(comparison.get("baseline_log_loss")),
                    f"{fmt(comparison.get('delta'))} [{fmt(interval[0])}, {fmt(interval[1])}]",
                ]
            ],
            labelled=False,
        )
    print(compare_line(result))
