"""``xebench bench`` and ``xebench gate``: models scored on the same rows of files.

Example:
    >>> import tempfile
    >>> from pathlib import Path
    >>> from xebench.cli.main import main
    >>> data = Path(tempfile.mkdtemp()) / "scores.csv"
    >>> _ = data.write_text("y,new,old\\n" + "1,0.9,0.6\\n0,0.2,0.4\\n" * 50)
    >>> main(["gate", str(data), "--label", "y", "--prob", "candidate=new",
    ...       "--prob", "baseline=old", "--min-samples", "10"])  # doctest: +ELLIPSIS
    PASS: ...
    0
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Sequence
from contextlib import nullcontext, suppress
from pathlib import Path
from typing import Annotated, Any

import typer

from .app import (
    Classes,
    Confidence,
    Data,
    Eps,
    Fail,
    JsonOut,
    Label,
    Weight,
    file_progress,
    parse_base,
    parse_classes,
    write_text,
)

__all__ = ["bench", "gate", "parse_class_weight"]

ClassWeightOption = Annotated[
    str | None,
    typer.Option(
        "--class-weight",
        help="Weigh each class: 'balanced' (n / (k * count)) or CLASS=W,... e.g. 1=99 "
        "(classes as the labels spell them; unnamed classes weigh 1).",
    ),
]


def parse_class_weight(text: str | None) -> str | dict[Any, float] | None:
    """``"balanced"``, or ``"1=99,0=1"`` -> ``{1: 99.0, 0: 1.0}`` (integer labels stay integers).

    Example:
        >>> parse_class_weight("1=99"), parse_class_weight("fraud=99, ok=1")
        ({1: 99.0}, {'fraud': 99.0, 'ok': 1.0})
        >>> parse_class_weight("balanced"), parse_class_weight(None)
        ('balanced', None)
        >>> parse_class_weight('{"1": 99, "0": 1}')
        {1: 99.0, 0: 1.0}
    """
    if text is None or text.strip() == "balanced":
        return None if text is None else "balanced"
    if text.strip().startswith("{"):  # the contract's JSON form: {"1": 99, "0": 1}
        try:
            given = json.loads(text)
        except ValueError as error:
            raise Fail(f"--class-weight: not JSON: {error}") from None
        if not isinstance(given, dict) or not given:
            raise Fail('--class-weight: a JSON object of class -> weight, e.g. {"1": 99}')
        text = ",".join(f"{label}={weight}" for label, weight in given.items())
    weights: dict[Any, float] = {}
    for item in (part.strip() for part in text.split(",") if part.strip()):
        label, sep, value = item.partition("=")
        try:
            weight = float(value)
        except ValueError:
            weight = math.nan
        if not sep or not label.strip() or not (math.isfinite(weight) and weight >= 0):
            raise Fail(
                f"--class-weight: expected 'balanced' or CLASS=WEIGHT,... (weights >= 0); "
                f"got {item!r}"
            )
        key: Any = label.strip()
        with suppress(ValueError):
            key = int(key)
        weights[key] = weight
    if not weights:
        raise Fail("--class-weight: expected 'balanced' or CLASS=WEIGHT,...")
    return weights


def _run_benchmark(
    data: Sequence[Path],
    *,
    label: str,
    prob: Sequence[str],
    **options: Any,
) -> Any:
    from ..offline.benchmark import LooksLikeLabelsWarning, benchmark

    on_chunk, progress = file_progress(data)
    files = [str(path) for path in data]
    with warnings.catch_warnings(record=True) as caught, progress or nullcontext():
        warnings.simplefilter("always", LooksLikeLabelsWarning)
        result = benchmark(files, label=label, probs=list(prob), on_chunk=on_chunk, **options)
    for warning in caught:  # hard 0/1 "probabilities": a stderr line, the run goes on
        if isinstance(warning.message, LooksLikeLabelsWarning):
            typer.echo(f"warning: {warning.message}", err=True)
        else:
            warnings.warn_explicit(
                warning.message, warning.category, warning.filename, warning.lineno
            )
    return result


def bench(
    data: Data,
    label: Label,
    prob: Annotated[
        list[str],
        typer.Option("--prob", help="A model's probability column: [NAME=]COLUMN (repeat)."),
    ],
    cohort: Annotated[
        list[str] | None, typer.Option("--cohort", help="Break results down by this column.")
    ] = None,
    weight: Weight = None,
    reference: Annotated[
        str | None, typer.Option("--reference", help="Model the others are compared with.")
    ] = None,
    classes: Classes = None,
    class_weight: ClassWeightOption = None,
    eps: Eps = 1e-15,
    base: Annotated[str, typer.Option("--base", help="Log base: e (nats), 2 (bits) or 10.")] = "e",
    confidence: Confidence = 0.95,
    n_bins: Annotated[int, typer.Option("--n-bins", help="Bins of the ECE.")] = 15,
    min_cohort_size: Annotated[
        int, typer.Option("--min-cohort-size", help="Smaller cohorts are marked as small.")
    ] = 100,
    json_path: JsonOut = None,
    markdown_path: Annotated[
        Path | None, typer.Option("--markdown", help="Write Markdown tables here (PR comment).")
    ] = None,
    html_path: Annotated[
        Path | None, typer.Option("--html", help="Write a self-contained HTML report here.")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="Print no tables.")] = False,
    discrimination: Annotated[
        bool,
        typer.Option(
            "--discrimination",
            help="Also print ROC AUC, average precision and the log loss by true class "
            "(always in --json, --markdown and --html; printed with --class-weight too).",
        ),
    ] = False,
) -> None:
    """Rank models by log loss on the same rows, with CIs, comparisons and cohorts."""
    result = _run_benchmark(
        data,
        label=label,
        prob=prob,
        cohorts=cohort or (),
        weight=weight,
        reference=reference,
        classes=parse_classes(classes),
        class_weight=parse_class_weight(class_weight),
        eps=eps,
        base=parse_base(base),
        confidence=confidence,
        n_bins=n_bins,
        min_cohort_size=min_cohort_size,
    )
    document = result.to_dict()
    if json_path is not None:
        write_text(json_path, json.dumps(document, indent=2, allow_nan=False) + "\n")
    if markdown_path is not None:
        write_text(markdown_path, result.to_markdown())
    if html_path is not None:
        write_text(html_path, result.to_html())
    if not quiet:
        from ..report.console import print_report

        print_report(document, discrimination=discrimination or class_weight is not None)


# --- gate ----------------------------------------------------------------------


def gate(
    data: Data,
    label: Label,
    prob: Annotated[
        list[str],
        typer.Option("--prob", help="candidate=COLUMN and baseline=COLUMN."),
    ],
    max_degradation: Annotated[
        float,
        typer.Option(
            "--max-degradation", help="Allowed relative worsening of the metric (of log loss)."
        ),
    ] = 0.0,
    metric: Annotated[
        str,
        typer.Option(
            "--metric",
            help="Gate on log_loss (paired t test) or roc_auc (DeLong's paired test).",
        ),
    ] = "log_loss",
    min_samples: Annotated[
        int, typer.Option("--min-samples", help="Fewer rows give 'inconclusive' (exit 3).")
    ] = 1000,
    confidence: Confidence = 0.95,
    looks: Annotated[
        int, typer.Option("--looks", help="Planned number of checks (Bonferroni).")
    ] = 1,
    weight: Weight = None,
    classes: Classes = None,
    class_weight: ClassWeightOption = None,
    eps: Eps = 1e-15,
    json_path: JsonOut = None,
) -> None:
    """Pass (0), fail (1) or inconclusive (3): is the candidate worse than the baseline?"""
    from ..analysis.compare import decide
    from ..offline.benchmark import parse_prob_specs

    if metric not in ("log_loss", "roc_auc"):
        raise Fail(f"--metric: must be log_loss or roc_auc; got {metric!r}")

    models = parse_prob_specs(prob)
    if sorted(models) != ["baseline", "candidate"]:
        raise Fail(
            "gate needs exactly --prob candidate=COLUMN and --prob baseline=COLUMN; "
            f"got models {list(models)}"
        )
    result = _run_benchmark(
        data,
        label=label,
        prob=[f"{name}={column}" for name, column in models.items()],
        reference="baseline",
        weight=weight,
        classes=parse_classes(classes),
        class_weight=parse_class_weight(class_weight),
        eps=eps,
        confidence=confidence,
    )
    if metric == "roc_auc":
        _gate_auc(result, max_degradation, min_samples, confidence, looks, json_path)
    comparison = result.paired["candidate"].result(confidence=confidence)
    decision = decide(
        comparison,
        max_degradation=max_degradation,
        min_samples=min_samples,
        confidence=confidence,
        looks=looks,
    )
    if json_path is not None:
        write_text(json_path, json.dumps(decision.to_dict(), indent=2, allow_nan=False) + "\n")
    typer.echo(f"{decision.status.upper()}: {decision.reason}")
    c = decision.comparison
    typer.echo(
        f"  candidate log loss {c.candidate_log_loss:.6f}, baseline {c.baseline_log_loss:.6f}, "
        f"delta {c.delta:+.6f} [{c.delta_ci[0]:+.6f}, {c.delta_ci[1]:+.6f}], "
        f"p = {decision.p_value:.3g} (alpha {decision.alpha:.3g})"
    )
    raise typer.Exit(decision.exit_code)


def _gate_auc(
    result: Any,
    max_degradation: float,
    min_samples: int,
    confidence: float,
    looks: int,
    json_path: Path | None,
) -> None:
    """The ``--metric roc_auc`` gate: DeLong's paired test on the exact AUCs."""
    from ..analysis.discrimination import decide_auc

    decision = decide_auc(
        result.predictions["candidate"],
        result.predictions["baseline"],
        max_degradation=max_degradation,
        min_samples=min_samples,
        confidence=confidence,
        looks=looks,
    )
    if json_path is not None:
        write_text(json_path, json.dumps(decision.to_dict(), indent=2, allow_nan=False) + "\n")
    typer.echo(f"{decision.status.upper()}: {decision.reason}")
    low, high = decision.delta_ci
    typer.echo(
        f"  candidate ROC AUC {decision.candidate:.6f}, baseline {decision.baseline:.6f}, "
        f"delta {decision.delta:+.6f} [{low:+.6f}, {high:+.6f}], "
        f"p = {decision.p_value:.3g} (alpha {decision.alpha:.3g})"
    )
    raise typer.Exit(decision.exit_code)
