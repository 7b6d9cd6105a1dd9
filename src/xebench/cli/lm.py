"""``xebench lm``: language models' token log-probabilities on the same texts, ranked
by bits per byte, with paired comparisons and cohort tables.

Example (bad usage: exit code 2 and one line on stderr):
    >>> from xebench.cli.main import main
    >>> main(["lm", "missing.csv", "--model", "gpt=logprobs_gpt"])
    2
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Annotated

import typer

from .app import Confidence, Fail, JsonOut, write_text

__all__ = ["lm"]


def lm(
    data: Annotated[
        list[Path] | None,
        typer.Argument(
            metavar="[FILE]",
            help="Shared files (CSV, Parquet, JSON Lines): text_id, one token log-prob list "
            "column per model, text or n_bytes, cohort columns. None when every --model is a file.",
            show_default=False,
        ),
    ] = None,
    model: Annotated[
        list[str] | None,
        typer.Option(
            "--model",
            help="NAME=COLUMN (a list column of FILE) or NAME=PATH (that model's own file: "
            "OpenAI, vLLM, Hugging Face or plain columns); repeat per model.",
        ),
    ] = None,
    text_id: Annotated[
        str, typer.Option("--text-id", help="The column of FILE that pairs texts across models.")
    ] = "text_id",
    bytes_column: Annotated[
        str | None, typer.Option("--bytes", help="The column of FILE with each text's UTF-8 bytes.")
    ] = None,
    text_column: Annotated[
        str | None, typer.Option("--text", help="The column of FILE with each text (its bytes).")
    ] = None,
    words_column: Annotated[
        str | None, typer.Option("--words", help="The column of FILE with each text's words.")
    ] = None,
    cohort: Annotated[
        list[str] | None, typer.Option("--cohort", help="Break results down by this column.")
    ] = None,
    reference: Annotated[
        str | None,
        typer.Option(
            "--reference", help="Compare every model with this one (default: every pair)."
        ),
    ] = None,
    on_missing: Annotated[
        str,
        typer.Option(
            "--on-missing",
            help="A text some model did not score: error, or drop it (counted in the output).",
        ),
    ] = "error",
    token_format: Annotated[
        str,
        typer.Option(
            "--format", help="Format of NAME=PATH files: auto, openai, vllm, hf, columns."
        ),
    ] = "auto",
    extremal_logprob: Annotated[
        float,
        typer.Option(
            "--extremal-logprob", help="Count tokens whose log-probability is below this."
        ),
    ] = -10.0,
    confidence: Confidence = 0.95,
    json_path: JsonOut = None,
    markdown_path: Annotated[
        Path | None, typer.Option("--markdown", help="Write Markdown tables here (PR comment).")
    ] = None,
    html_path: Annotated[
        Path | None, typer.Option("--html", help="Write a self-contained HTML report here.")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="Print no tables.")] = False,
) -> None:
    """Rank language models by bits per byte on the same texts, paired by text id.

    Per model: bits per byte, byte / token / mean-sequence / word perplexity,
    tokens and extremal tokens, with intervals over texts. Paired deltas of bits
    per byte with p-values (Holm across pairs), cohort tables, and a warning
    when the models' tokenizers cut the same texts differently (per-token
    perplexity is then not comparable). Exit code 2 on bad usage or bad input.
    """
    if not model:
        raise Fail("at least one --model NAME=COLUMN or NAME=PATH is needed")
    if not 0.0 < confidence < 1.0:
        raise Fail(f"--confidence must be in (0, 1); got {confidence!r}")
    if on_missing not in ("error", "drop"):
        raise Fail(f"--on-missing must be error or drop; got {on_missing!r}")
    from ..errors import TokenizerMismatchWarning, ZeroProbabilityWarning
    from ..io.tokens import TOKEN_FORMATS

    if token_format not in TOKEN_FORMATS:
        raise Fail(f"--format must be one of {', '.join(TOKEN_FORMATS)}; got {token_format!r}")
    from ..offline.lm import lm_benchmark

    if bytes_column is not None and text_column is not None:
        raise Fail("--bytes and --text are two ways to give the same sizes: give one")
    renames = {
        standard: given
        for standard, given in (
            ("text_id", text_id), ("n_bytes", bytes_column), ("text", text_column),
            ("n_words", words_column),
        )
        if given is not None and given != standard
    }  # fmt: skip

    kinds = (TokenizerMismatchWarning, ZeroProbabilityWarning)
    with warnings.catch_warnings(record=True) as caught:
        for kind in kinds:
            warnings.simplefilter("always", kind)
        result = lm_benchmark(
            [str(path) for path in data or ()],
            models=list(model),
            cohorts=cohort or (),
            reference=reference,
            on_missing=on_missing,
            confidence=confidence,
            extremal_logprob=extremal_logprob,
            format=token_format,
            columns=renames or None,
        )
    for warning in caught:
        if not isinstance(warning.message, kinds):
            warnings.warn_explicit(
                warning.message, warning.category, warning.filename, warning.lineno
            )
        elif quiet:  # the tables print them otherwise
            typer.echo(f"warning: {warning.message}", err=True)
    document = result.to_dict()
    if json_path is not None:
        write_text(json_path, json.dumps(document, indent=2, allow_nan=False) + "\n")
    if markdown_path is not None:
        write_text(markdown_path, result.to_markdown())
    if html_path is not None:
        write_text(html_path, result.to_html())
    if not quiet:
        from ..report.lm import print_lm

        print_lm(document)
