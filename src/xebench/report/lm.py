"""The ``xebench lm`` document as terminal tables, Markdown and a self-contained HTML page.

All three render the same ``lm --json`` document (:mod:`xebench.offline.lm`),
so the numbers agree everywhere. The ranking is by bits per byte; per-token
perplexity is shown beside it, with the tokenizer warning when it is not
comparable between the models.

Example:
    >>> doc = {"n_texts": 2, "models": [{"name": "a"}], "warnings": [],
    ...        "inputs": {"confidence": 0.95}, "dropped": {"n": 0}}
    >>> lm_headline(doc)
    '2 texts, 1 model(s); ranked by bits per byte (tokenizer-independent), 95% confidence intervals'
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from ..metrics.registry import METRICS

__all__ = [
    "comparison_rows",
    "lm_cohort_rows",
    "lm_headline",
    "lm_markdown",
    "print_lm",
    "ranking_rows",
    "render_lm_html",
]


def _fmt(value: float | None, digits: int = 4) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _ci(interval: Sequence[float] | None, digits: int = 4) -> str:
    if not interval:
        return "n/a"
    return f"[{_fmt(interval[0], digits)}, {_fmt(interval[1], digits)}]"


def _infinite(row: dict[str, Any], key: str, digits: int = 4) -> str:
    """A measure, or ``inf`` when a zero-probability token made it infinite (null in JSON)."""
    if row.get(key) is None and row.get("nll_sum") is None:
        return "inf"
    return _fmt(row.get(key), digits)


def _p(value: float | None) -> str:
    if value is None:
        return "n/a"
    return "< 1e-300" if value == 0.0 else f"{value:.2g}"


def lm_headline(data: dict[str, Any]) -> str:
    """One line: texts, models, the ranking measure, the confidence level (and drops).

    Example:
        >>> lm_headline({"n_texts": 9, "models": [{}, {}], "inputs": {"confidence": 0.9},
        ...              "dropped": {"n": 2}})  # doctest: +ELLIPSIS
        '9 texts, 2 model(s); ranked by ..., 90% confidence intervals; 2 text(s) dropped (...)'
    """
    text = (
        f"{data['n_texts']:,} texts, {len(data['models'])} model(s); ranked by bits per byte "
        f"(tokenizer-independent), {data['inputs']['confidence']:.0%} confidence intervals"
    )
    if data["dropped"]["n"]:
        text += f"; {data['dropped']['n']:,} text(s) dropped (not scored by every model)"
    return text


def ranking_rows(data: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the ranking, best (lowest bits per byte) first.

    Example:
        >>> row = {"name": "a", "n_tokens": 3, "bits_per_byte": 1.0, "bits_per_byte_ci": None,
        ...        "byte_perplexity": 2.0, "pooled_perplexity": 4.0,
        ...        "mean_sequence_perplexity": 4.5, "word_perplexity": None,
        ...        "extremal_tokens": 0, "nll_sum": 2.0}
        >>> ranking_rows({"models": [row], "inputs": {"confidence": 0.95}})[1]
        [['1', 'a', '3', '1.0000', 'n/a', '2.0000', '4.00', '4.50', 'n/a', '0']]
    """
    level = f"{data['inputs']['confidence']:.0%}"
    header = [
        "#", "model", "tokens", "bits/byte", f"{level} CI", "byte ppl", "token ppl",
        "mean seq ppl", "word ppl", "extremal",
    ]  # fmt: skip
    rows = [
        [
            str(rank),
            m["name"],
            f"{m['n_tokens']:,}",
            _infinite(m, "bits_per_byte"),
            _ci(m["bits_per_byte_ci"]),
            _infinite(m, "byte_perplexity"),
            _infinite(m, "pooled_perplexity", 2),
            _infinite(m, "mean_sequence_perplexity", 2),
            _fmt(m["word_perplexity"], 2),
            f"{m['extremal_tokens']:,}",
        ]
        for rank, m in enumerate(data["models"], start=1)
    ]
    return header, rows


def comparison_rows(data: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the paired comparisons (model minus reference, bits per byte).

    Example:
        >>> c = {"model": "b", "reference": "a", "n": 40, "delta": 0.05,
        ...      "delta_ci": [0.01, 0.09], "relative_delta": 0.05, "p_value": 0.02,
        ...      "p_holm": 0.04, "verdict": "worse"}
        >>> comparison_rows({"comparisons": [c], "inputs": {"confidence": 0.95}})[1]
        [['b', 'a', '40', '+0.0500', '[0.0100, 0.0900]', '+5.00%', '0.02', '0.04', 'worse']]
    """
    level = f"{data['inputs']['confidence']:.0%}"
    header = [
        "model", "vs", "texts", "Δ bits/byte", f"{level} CI", "relative", "p-value",
        "Holm p", "verdict",
    ]  # fmt: skip
    rows = [
        [
            c["model"],
            c["reference"],
            f"{c['n']:,}",
            "n/a" if c["delta"] is None else f"{c['delta']:+.4f}",
            _ci(c["delta_ci"]),
            "n/a" if c["relative_delta"] is None else f"{c['relative_delta']:+.2%}",
            _p(c["p_value"]),
            _p(c["p_holm"]),
            c["verdict"],
        ]
        for c in data["comparisons"]
    ]
    return header, rows


def lm_cohort_rows(data: dict[str, Any], column: str) -> tuple[list[str], list[list[str]]]:
    """Header and rows of one cohort column: texts, then each model's bits per byte.

    Example:
        >>> doc = {"models": [{"name": "a"}], "cohorts": {"lang": {"en": [
        ...     {"name": "a", "n_sequences": 5, "bits_per_byte": 0.9, "nll_sum": 3.0}]}}}
        >>> lm_cohort_rows(doc, "lang")
        (['lang', 'texts', 'a'], [['en', '5', '0.9000']])
    """
    names = [m["name"] for m in data["models"]]
    header = [column, "texts", *names]
    rows = []
    for value, per_model in data["cohorts"][column].items():
        by_name = {row["name"]: row for row in per_model}
        n = per_model[0]["n_sequences"] if per_model else 0
        rows.append(
            [
                str(value),
                f"{n:,}",
                *(
                    _infinite(by_name[name], "bits_per_byte") if name in by_name else "n/a"
                    for name in names
                ),
            ]
        )
    return header, rows


def _captions(data: dict[str, Any]) -> dict[str, str]:
    direction = METRICS["bits_per_byte"].direction
    return {
        "ranking": (
            f"bits/byte: total NLL / UTF-8 bytes / ln 2 ({direction} is better), the ranking; "
            "ppl: perplexity per byte, per token (pooled), mean over texts, per word. "
            "Intervals over texts (ratio estimator)."
        ),
        "comparisons": (
            "Paired by text: Δ = model minus the other's bits per byte (> 0: worse); "
            "t test of the ratio estimator over texts; Holm-adjusted across the pairs, "
            "the verdict uses the adjusted p-value."
        ),
    }


def print_lm(data: dict[str, Any], console: Any = None) -> None:
    """Print the ranking, comparisons, cohort tables and warnings with rich.

    Example:
        >>> from rich.console import Console
        >>> from xebench.offline.lm import lm_benchmark
        >>> records = [{"text_id": str(i), "m": [-1.0], "text": "ab"} for i in range(3)]
        >>> doc = lm_benchmark(records, models=["m"]).to_dict()
        >>> print_lm(doc, Console(width=120, color_system=None))  # doctest: +ELLIPSIS
        3 texts, 1 model(s); ranked by bits per byte (tokenizer-independent), 95% ...
        ...
    """
    from rich.console import Console
    from rich.table import Table

    console = console or Console(width=None if sys.stdout.isatty() else 160)
    console.print(lm_headline(data), markup=False, highlight=False)
    captions = _captions(data)

    def table(title: str, header: list[str], rows: list[list[str]], caption: str = "") -> None:
        t = Table(
            title=title, title_justify="left", caption=caption or None, caption_justify="left"
        )
        for index, name in enumerate(header):
            numeric = name in ("#", "texts", "tokens") or index > 1
            t.add_column(name, justify="right" if numeric else "left", no_wrap=numeric)
        for row in rows:
            t.add_row(*row)
        console.print(t)

    table("Ranking by bits per byte (best first)", *ranking_rows(data), captions["ranking"])
    if data["comparisons"]:
        table(
            "Paired comparisons on the same texts", *comparison_rows(data), captions["comparisons"]
        )
    for column in data["cohorts"]:
        table(f"Bits per byte by {column!r}", *lm_cohort_rows(data, column))
    for warning in data["warnings"]:
        console.print(f"warning: {warning['message']}", markup=False, highlight=False)


def _markdown_table(header: list[str], rows: list[list[str]]) -> str:
    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    lines = ["| " + " | ".join(cell(h) for h in header) + " |"]
    lines.append("|" + "|".join("---" if i < 2 else "---:" for i in range(len(header))) + "|")
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def lm_markdown(data: dict[str, Any]) -> str:
    """The benchmark as GitHub-flavoured Markdown (a pull-request comment).

    Example:
        >>> from xebench.offline.lm import lm_benchmark
        >>> records = [{"text_id": str(i), "m": [-1.0], "text": "ab"} for i in range(3)]
        >>> print(lm_markdown(lm_benchmark(records, models=["m"]).to_dict()).splitlines()[0])
        ### xebench lm
    """
    captions = _captions(data)
    parts = ["### xebench lm", "", lm_headline(data), ""]
    for warning in data["warnings"]:
        parts += [f"> **Warning**: {warning['message']}", ""]
    parts += ["**Ranking by bits per byte** (best first)", ""]
    parts += [_markdown_table(*ranking_rows(data)), "", captions["ranking"], ""]
    if data["comparisons"]:
        parts += ["**Paired comparisons** on the same texts", ""]
        parts += [_markdown_table(*comparison_rows(data)), "", captions["comparisons"], ""]
    for column in data["cohorts"]:
        parts += [f"**Bits per byte by `{column}`**", ""]
        parts += [_markdown_table(*lm_cohort_rows(data, column)), ""]
    parts.append(f"<sub>xebench {data['xebench_version']}</sub>")
    return "\n".join(parts) + "\n"


def render_lm_html(data: dict[str, Any]) -> str:
    """Render an ``lm --json`` document as one self-contained HTML page.

    Example:
        >>> from xebench.offline.lm import lm_benchmark
        >>> records = [{"text_id": str(i), "m": [-1.0], "text": "ab"} for i in range(3)]
        >>> page = render_lm_html(lm_benchmark(records, models=["m"]).to_dict())
        >>> page.startswith("<!DOCTYPE html>"), "chart-ranking" in page, "<script src=" in page
        (True, True, False)
    """
    from .charts import chart_assets, chart_block, chart_spec
    from .html import environment

    models = data["models"]
    unit = data["units"]["bits_per_byte"]
    ranking = chart_spec(
        "ranking",
        title=f"Bits per byte with {data['inputs']['confidence']:.0%} CI",
        x_type="linear",
        x_label=f"bits per byte ({unit}), {METRICS['bits_per_byte'].direction} is better",
        series=[
            {
                "name": "bits per byte",
                "x": [m["bits_per_byte"] for m in models],
                "y": [m["name"] for m in models],
                "lo": [m["bits_per_byte_ci"][0] if m["bits_per_byte_ci"] else None for m in models],
                "hi": [m["bits_per_byte_ci"][1] if m["bits_per_byte_ci"] else None for m in models],
            }
        ],
        height=120 + 40 * len(models),
    )
    tables = {
        "ranking": ranking_rows(data),
        "comparisons": comparison_rows(data),
        "cohorts": {column: lm_cohort_rows(data, column) for column in data["cohorts"]},
    }
    return (
        environment()
        .get_template("lm.html.j2")
        .render(
            data=data,
            headline=lm_headline(data),
            tables=tables,
            captions=_captions(data),
            ranking_chart=chart_block(ranking),
            chart_assets=chart_assets(),
        )
    )
