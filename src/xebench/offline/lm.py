"""Offline benchmark of language models: several models' token log-probabilities
on the same texts, paired by text id and ranked by bits per byte.

The engine of ``xebench lm``. Each model's log-probabilities come either from a
list column of shared files (one table: ``text_id``, ``logprobs_gpt``,
``logprobs_llama``, ``text`` or ``n_bytes``, cohorts) or from a file of its own
in any format :func:`~xebench.io.tokens.read_token_logprobs` reads (OpenAI,
vLLM, Hugging Face, plain columns). Texts are paired by ``text_id``.

Why bits per byte: per-token perplexity divides by the number of tokens, which
depends on the tokenizer; the UTF-8 bytes of a text do not. Models with
different tokenizers are only comparable per byte (or per word), so the ranking
uses bits per byte and a :class:`~xebench.errors.TokenizerMismatchWarning` says
when the token counts of the same texts differ.

Paired comparisons
------------------
The paired unit is the text. For models A and B, text ``t`` has NLLs ``a_t``
and ``b_t`` (nats) and ``n_t`` bytes, the same for both. The difference of
their bits per byte is a ratio of text totals::

    delta = (sum a_t - sum b_t) / sum n_t / ln 2 = R / ln 2,  R = sum d_t / sum n_t

with ``d_t = a_t - b_t``. Its standard error is the ratio estimator's, by the
delta method (the same as :class:`~xebench.TokenStats` uses for one model's
bits per byte, Cochran 6.3), applied to the per-text differences::

    se(R) = sqrt(var_t(d_t - R n_t) / n) / mean(n_t)

(``var_t`` the sample variance over the ``n`` texts, computed on the centred
residuals). The interval is ``delta -/+ t se`` and the p-value of "no
difference" the two-sided Student's t on ``n - 1`` degrees of freedom. When
every text has the same byte length this is exactly the paired t test of the
per-text NLLs (``scipy.stats.ttest_rel``). Holm's step-down method adjusts the
p-values across the pairs compared, and a pair's verdict (``better`` /
``worse``) needs its adjusted p-value below ``1 - confidence``.

Example:
    >>> records = [
    ...     {"text_id": "a", "gpt": [-1.0, -2.0], "llama": [-2.0, -2.0], "text": "ab"},
    ...     {"text_id": "b", "gpt": [-1.0], "llama": [-1.5], "text": "c"},
    ...     {"text_id": "c", "gpt": [-0.5, -0.5], "llama": [-1.0, -1.0], "text": "de"},
    ... ]
    >>> doc = lm_benchmark(records, models={"gpt": "gpt", "llama": "llama"}).to_dict()
    >>> [(m["name"], round(m["bits_per_byte"], 4)) for m in doc["models"]]   # 5 nats / 5 bytes
    [('gpt', 1.4427), ('llama', 2.164)]
    >>> c = doc["comparisons"][0]
    >>> c["model"], c["reference"], round(c["delta"], 4), c["n"]
    ('llama', 'gpt', 0.7213, 3)
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .._version import __version__
from ..analysis.cohorts import holm
from ..errors import (
    DataError,
    InvalidInputError,
    TokenizerMismatchWarning,
    ZeroProbabilityWarning,
)
from ..metrics.registry import METRICS
from ..stats.binning import MISSING, OTHER
from ..stats.moments import check_confidence
from ..stats.tokens import DEFAULT_EXTREMAL_LOGPROB, TokenStats

__all__ = [
    "LMBenchmarkResult",
    "lm_benchmark",
    "paired_bits_per_byte",
    "parse_model_specs",
]

#: Cohort values shown per column (most texts first); the rest are merged into OTHER.
SHOWN_COHORTS = 20
#: Text ids named in an error about missing or mismatched texts.
_SHOWN_IDS = 3
_LN2 = math.log(2.0)
_ON_MISSING = ("error", "drop")

#: The fields of a model's row (and of a cohort's), from TokenStats.result().
_MODEL_KEYS = (
    "n_sequences", "n_tokens", "n_bytes", "n_words", "nll_sum",
    "bits_per_byte", "bits_per_byte_se", "bits_per_byte_ci",
    "byte_perplexity", "byte_perplexity_ci", "word_perplexity", "word_perplexity_ci",
    "pooled_perplexity", "pooled_perplexity_ci",
    "pooled_cross_entropy", "pooled_cross_entropy_se", "pooled_cross_entropy_ci",
    "perplexity", "perplexity_ci", "nll_per_token", "nll_per_token_ci",  # the contract's names
    "bits_per_token", "bits_per_token_ci",
    "mean_sequence_perplexity", "mean_sequence_perplexity_ci",
    "mean_sequence_cross_entropy", "mean_sequence_cross_entropy_ci",
    "extremal_tokens",
)  # fmt: skip
#: Measures whose unit the document lists (from the metric registry).
_UNIT_METRICS = (
    "bits_per_byte", "byte_perplexity", "word_perplexity", "pooled_perplexity",
    "pooled_cross_entropy", "bits_per_token", "mean_sequence_perplexity",
    "mean_sequence_cross_entropy", "extremal_tokens",
)  # fmt: skip
_RANKING = METRICS["bits_per_byte"]


# --- model specs --------------------------------------------------------------


@dataclass(frozen=True)
class _Model:
    """One model: its log-probabilities are a column of the shared data, or a file."""

    name: str
    column: str | None = None
    file: str | None = None

    @property
    def where(self) -> str:
        return f"column {self.column!r}" if self.column is not None else str(self.file)


def _is_file(value: Any) -> bool:
    return isinstance(value, os.PathLike) or (isinstance(value, str) and Path(value).is_file())


_FILE_SUFFIXES = (".json", ".jsonl", ".ndjson", ".csv", ".parquet", ".gz")


def _looks_like_a_path(value: str) -> bool:
    """A value no column would be named: it has a folder or a data file's suffix."""
    return "/" in value or os.sep in value or value.lower().endswith(_FILE_SUFFIXES)


def _stem(path: str) -> str:
    name = Path(path).name
    return name.split(".", 1)[0] or name


def parse_model_specs(specs: Sequence[str] | Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """``--model`` values as ``{name: {"column": COL}}`` or ``{name: {"file": PATH}}``.

    ``NAME=VALUE``: VALUE is a file when such a file exists (one model's own
    log-probabilities, in any format ``read_token_logprobs`` reads), else a
    list column of the shared data files. A bare ``VALUE`` names the model
    after the column, or after the file's name without its suffixes.

    Example:
        >>> parse_model_specs(["gpt=logprobs_gpt", "llama_col"])
        {'gpt': {'column': 'logprobs_gpt'}, 'llama_col': {'column': 'llama_col'}}
        >>> parse_model_specs(["a=x", "a=y"])
        Traceback (most recent call last):
        ...
        xebench.errors.InvalidInputError: --model: model names must be unique; got 'a'
    """
    pairs: list[tuple[str, Any]] = []
    if isinstance(specs, Mapping):
        pairs = [(str(name), value) for name, value in specs.items()]
    else:
        for spec in [specs] if isinstance(specs, str) else list(specs):
            text = str(spec)
            if "=" in text:
                name, _, value = text.partition("=")
            else:
                value = text
                name = _stem(text) if _is_file(text) else text
            name, value = name.strip(), value.strip()
            if not name or not value:
                raise InvalidInputError("--model", "must be NAME=COLUMN or NAME=FILE", value=text)
            pairs.append((name, value))
    models: dict[str, dict[str, str]] = {}
    for name, value in pairs:
        if name in models:
            raise InvalidInputError("--model", "model names must be unique", value=name)
        key = "file" if _is_file(value) else "column"
        if key == "column" and isinstance(value, str) and _looks_like_a_path(value):
            raise InvalidInputError(
                "--model", f"{name}={value}: file not found (a column name has no folder or suffix)"
            )
        models[name] = {key: os.fspath(value) if key == "file" else str(value)}
    if not models:
        raise InvalidInputError("--model", "at least one model is needed")
    return models


# --- reading -------------------------------------------------------------------


@dataclass
class _Texts:
    """One model's texts as read: the table and where each row came from."""

    model: _Model
    table: Any  # pyarrow.Table of read_token_logprobs' columns
    sources: list[str]
    rows: NDArray[np.int64]
    position: dict[str, int] = field(default_factory=dict)  # text_id -> row of the table

    def at(self, i: int) -> str:
        return f"{self.sources[i]}: row {int(self.rows[i])}"


def _read_model(
    model: _Model,
    files: Sequence[Any],
    cohorts: Sequence[str],
    format: str,
    columns: Mapping[str, str] | None = None,
) -> _Texts:
    import pyarrow as pa

    from ..io.tokens import payload_error, read_token_logprobs

    if model.file is not None:
        readings = [read_token_logprobs(model.file, format=format, cohorts=cohorts)]
    else:
        readings = [
            read_token_logprobs(
                data, logprobs_column=model.column, cohorts=cohorts, columns=columns
            )
            for data in files
        ]
    tables, sources, rows = [], [], []
    for reading in readings:
        for chunk in reading:
            tables.append(chunk.table)
            sources += [chunk.source] * chunk.table.num_rows
            rows.append(np.arange(chunk.table.num_rows, dtype=np.int64) + chunk.first_row)
    where = model.file if model.file is not None else ", ".join(map(str, files))
    if not tables or sum(t.num_rows for t in tables) == 0:
        raise DataError("data", f"has no texts for model {model.name!r}", source=where)
    table = pa.concat_tables(tables)
    texts = _Texts(model, table, sources, np.concatenate(rows))
    pointer = f"/{model.column or 'token_logprobs'}"
    lengths = table["token_logprobs"].combine_chunks().value_lengths().to_numpy(False)
    n_bytes = table["n_bytes"].to_pylist()
    for i, text_id in enumerate(table["text_id"].to_pylist()):
        fail = (texts.sources[i], int(texts.rows[i]))
        if text_id in texts.position:
            first = texts.at(texts.position[text_id])
            raise payload_error(
                *fail, "/text_id", f"text id repeats for model {model.name!r} (first at {first})",
                text_id,
            )  # fmt: skip
        texts.position[text_id] = i
        if lengths[i] == 0:
            raise payload_error(*fail, pointer, "must hold at least one token", [])
        if n_bytes[i] == 0:
            raise payload_error(
                *fail, "/n_bytes", "must be > 0: a scored text has at least one byte", 0
            )
    return texts


# --- pairing ---------------------------------------------------------------------


def _shown(ids: Iterable[str]) -> str:
    ids = list(ids)
    text = ", ".join(repr(i) for i in ids[:_SHOWN_IDS])
    return text + (f" and {len(ids) - _SHOWN_IDS} more" if len(ids) > _SHOWN_IDS else "")


def _pair(texts: list[_Texts], on_missing: str) -> tuple[list[str], dict[str, Any]]:
    """The text ids every model scored, in the first model's order, and what was dropped."""
    every = set().union(*(t.position for t in texts))
    missing = {t.model.name: every - t.position.keys() for t in texts}
    dropped = {name: len(ids) for name, ids in missing.items()}
    if any(dropped.values()) and on_missing == "error":
        name, ids = next((n, ids) for n, ids in missing.items() if ids)
        order = [i for t in texts for i in t.position if i in ids]
        raise DataError(
            "texts",
            f"model {name!r} ({next(t for t in texts if t.model.name == name).model.where}) "
            f"has no log-probabilities for {len(ids)} text id(s) other models have: "
            f"{_shown(dict.fromkeys(order))}; pass --on-missing drop (on_missing='drop') "
            "to benchmark on the texts every model scored",
        )
    common = [i for i in texts[0].position if all(i in t.position for t in texts)]
    if not common:
        seen = "; ".join(f"{t.model.name!r} has {_shown(t.position)}" for t in texts)
        raise DataError(
            "texts",
            f"no text id is scored by every model: nothing to compare ({seen}); OpenAI "
            "responses need a custom_id (Batch API) or an id shared across models",
        )
    return common, {
        "n": len(every) - len(common),
        "missing_by_model": dropped,
    }


def _agreed(
    texts: list[_Texts],
    index: dict[str, NDArray[np.int64]],
    common: list[str],
    column: str,
    what: str,
) -> list[Any]:
    """Per text, the value every model's input that has one agrees on (None: nobody has)."""
    values = [t.table[column].take(index[t.model.name]).to_pylist() for t in texts]
    out: list[Any] = []
    for j, text_id in enumerate(common):
        seen: tuple[int, Any] | None = None
        for k, per_model in enumerate(values):
            value = per_model[j]
            if value is None:
                continue
            if seen is None:
                seen = (k, value)
            elif value != seen[1]:
                first, other = texts[seen[0]], texts[k]
                raise DataError(
                    "texts",
                    f"text id {text_id!r} has {what} {seen[1]!r} for model "
                    f"{first.model.name!r} ({first.at(int(index[first.model.name][j]))}) but "
                    f"{value!r} for model {other.model.name!r} "
                    f"({other.at(int(index[other.model.name][j]))}): the same text id must be "
                    "the same text",
                )
        out.append(None if seen is None else seen[1])
    return out


# --- statistics ------------------------------------------------------------------


def _nll_per_text(flat: NDArray[np.float64], lengths: NDArray[np.int64]) -> NDArray[np.float64]:
    starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
    return -np.add.reduceat(np.minimum(flat, 0.0), starts)  # as TokenStats: <= 1e-6 counts as 0


def paired_bits_per_byte(
    nll_model: Sequence[float] | NDArray[np.float64],
    nll_reference: Sequence[float] | NDArray[np.float64],
    n_bytes: Sequence[float] | NDArray[np.float64],
    *,
    confidence: float = 0.95,
) -> dict[str, Any]:
    """Bits per byte of a model minus a reference's on the same texts, paired by text.

    ``nll_model`` and ``nll_reference`` are each text's total NLL in nats,
    ``n_bytes`` its UTF-8 bytes (see the module docstring for the ratio
    estimator). Returns ``n``, ``delta`` (bits per byte; positive: the model is
    worse), ``delta_se``, ``delta_ci``, ``p_value`` (two-sided, Student's t on
    ``n - 1`` degrees of freedom); the last three are None below two texts,
    and everything but ``n`` with an infinite NLL.

    Example:
        >>> r = paired_bits_per_byte([2.0, 3.0, 1.0], [1.0, 2.5, 1.0], [2, 3, 1])
        >>> round(r["delta"], 4), r["n"]          # 1.5 nats / 6 bytes / ln 2
        (0.3607, 3)
        >>> # d = (1, 0.5, 0), R = 0.25, residuals (0.5, -0.25, -0.25): se(R) = 0.125, t = 2
        >>> round(r["p_value"], 4)                # 2 P(T_2 > 2) = 1 - 2 / sqrt(6)
        0.1835
    """
    confidence = check_confidence(confidence)
    a = np.asarray(nll_model, dtype=np.float64)
    b = np.asarray(nll_reference, dtype=np.float64)
    x = np.asarray(n_bytes, dtype=np.float64)
    if not (a.shape == b.shape == x.shape) or a.ndim != 1:
        raise InvalidInputError("n_bytes", "must hold one count per text, as both NLLs do")
    n = int(a.size)
    out: dict[str, Any] = {"n": n, "delta": None, "delta_se": None, "delta_ci": None}
    out["p_value"] = None
    if n == 0 or not (np.isfinite(a).all() and np.isfinite(b).all()) or x.sum() <= 0:
        return out
    d = a - b
    ratio = float(d.sum() / x.sum())
    out["delta"] = ratio / _LN2
    if n < 2:
        return out
    residual = d - ratio * x
    se = float(np.sqrt(np.var(residual, ddof=1) / n) / x.mean()) / _LN2
    from scipy.special import stdtr, stdtrit  # here: `import xebench` stays light

    if se > 0.0:
        half = float(stdtrit(n - 1.0, 0.5 + confidence / 2.0)) * se
        p_value = float(2.0 * stdtr(n - 1.0, -abs(out["delta"]) / se))
    else:  # every text differs by the same bits per byte: the observed delta is the delta
        half, p_value = 0.0, 1.0 if ratio == 0.0 else 0.0
    out |= {
        "delta_se": se,
        "delta_ci": [out["delta"] - half, out["delta"] + half],
        "p_value": min(p_value, 1.0),
    }
    return out


def _json_safe(value: Any) -> Any:
    """Tuples to lists, infinities (a zero-probability token) to None: JSON has neither."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def _finished(stats: TokenStats, confidence: float) -> dict[str, Any]:
    result = stats.result(confidence)
    return {key: _json_safe(result[key]) for key in _MODEL_KEYS}


def _order_key(row: dict[str, Any]) -> tuple[float, str]:
    return (_RANKING.sort_key(row["bits_per_byte"]), row["name"])


@dataclass
class LMBenchmarkResult:
    """The finished LM benchmark: the ``xebench lm --json`` document plus renderers.

    Example:
        >>> records = [{"text_id": str(i), "m": [-1.0] * (i + 1), "text": "x" * (i + 1)}
        ...            for i in range(3)]
        >>> result = lm_benchmark(records, models=["m"])
        >>> result.to_dict()["models"][0]["bits_per_byte"] == 1 / math.log(2)
        True
    """

    data: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """The ``xebench lm --json`` document."""
        return self.data

    def to_markdown(self) -> str:
        """Ranking, comparisons, cohorts and warnings as GitHub-flavoured Markdown."""
        from ..report.lm import lm_markdown

        return lm_markdown(self.data)

    def to_html(self) -> str:
        """The self-contained HTML report (Chart.js inlined, nothing fetched)."""
        from ..report.lm import render_lm_html  # jinja2 loads only when a report is asked for

        return render_lm_html(self.data)


def _source_names(data: Any) -> list[str]:
    if isinstance(data, (str, os.PathLike)):
        return [os.fspath(data)]
    return [os.fspath(d) if isinstance(d, (str, os.PathLike)) else "<payload>" for d in data]


def _as_sources(data: Any) -> list[Any]:
    """Shared data as a list of sources: paths, or one in-memory payload (records)."""
    if data is None:
        return []
    if isinstance(data, (str, os.PathLike, dict)):
        return [data]
    data = list(data)
    if data and all(isinstance(d, dict) for d in data):
        return [data]
    return data


def lm_benchmark(
    data: Any = (),
    *,
    models: Sequence[str] | Mapping[str, Any],
    cohorts: Iterable[str] = (),
    reference: str | None = None,
    on_missing: str = "error",
    confidence: float = 0.95,
    extremal_logprob: float = DEFAULT_EXTREMAL_LOGPROB,
    format: str = "auto",
    columns: Mapping[str, str] | None = None,
) -> LMBenchmarkResult:
    """Benchmark language models on the same texts, paired by text id.

    ``data``: the shared files (or one in-memory list of records) holding a
    ``text_id`` column, one token log-probability list column per model, ``text``
    or ``n_bytes``, optionally ``n_words`` and cohort columns; empty when every
    model has a file of its own. ``models``: ``{name: column_or_file}`` or
    ``["name=column_or_file", ...]`` (:func:`parse_model_specs`); a model's own
    file is read with ``format`` (``read_token_logprobs``). ``cohorts``: columns
    (or record fields) to break the results down by. ``reference``: compare
    every model with this one only (default: every pair, each with the better
    ranked of the two). ``columns``: the shared files' names for ``text_id``,
    ``text``, ``n_bytes`` and ``n_words`` when they differ (``{"text_id": "doc"}``).
    ``on_missing``: ``"error"`` when a model lacks a text
    another has, ``"drop"`` to keep the texts every model scored (counted in
    ``dropped``).

    Models are ranked by bits per byte. Warns with
    :class:`~xebench.errors.TokenizerMismatchWarning` when two models' token
    counts differ on the same texts, and with
    :class:`~xebench.errors.ZeroProbabilityWarning` for a ``-inf``
    log-probability; both are listed in the document's ``warnings`` too.

    Raises:
        DataError: a missing or empty file, a bad log-probability (NaN,
            positive: the file, row and field), a repeated text id, a text
            without tokens or with 0 bytes, texts missing from a model, the
            same text id with other bytes (another text) for two models, no
            byte count for a text.
        InvalidInputError: a bad argument (a repeated model name...).

    Example:
        >>> records = [{"text_id": "t1", "a": [-0.5, -0.5], "b": [-1.0, -1.0], "text": "hi"},
        ...            {"text_id": "t2", "a": [-1.0], "b": [-1.2], "text": "!"}]
        >>> doc = lm_benchmark(records, models=["a", "b"]).to_dict()
        >>> [m["name"] for m in doc["models"]], doc["n_texts"], doc["warnings"]
        (['a', 'b'], 2, [])
    """
    specs = parse_model_specs(models)
    confidence = check_confidence(confidence)
    if on_missing not in _ON_MISSING:
        raise InvalidInputError("on_missing", "must be 'error' or 'drop'", value=on_missing)
    if reference is not None and reference not in specs:
        raise InvalidInputError(
            "reference", f"must be one of the models {list(specs)}", value=reference
        )
    cohort_columns = list(dict.fromkeys(cohorts))
    files = _as_sources(data)
    entries = [_Model(name, **spec) for name, spec in specs.items()]
    for model in entries:
        if model.column is not None and not files:
            raise InvalidInputError(
                "--model",
                f"{model.name}={model.column}: is not a file, and no data files were given "
                "to hold a column of that name",
            )
    texts = [_read_model(model, files, cohort_columns, format, columns) for model in entries]
    common, dropped = _pair(texts, on_missing)
    index = {t.model.name: np.array([t.position[i] for i in common], dtype=np.int64) for t in texts}
    n_bytes = _agreed(texts, index, common, "n_bytes", "n_bytes")
    unknown = [i for i, b in zip(common, n_bytes, strict=True) if b is None]
    if unknown:
        raise DataError(
            "n_bytes",
            f"{len(unknown)} text(s) have no byte count in any model's input "
            f"({_shown(unknown)}): bits per byte needs a 'text' or 'n_bytes' column "
            "(OpenAI: token bytes; vLLM: decoded tokens)",
        )
    n_words = _agreed(texts, index, common, "n_words", "n_words")
    byte_counts = np.asarray(n_bytes, dtype=np.float64)
    word_counts = None if None in n_words else np.asarray(n_words, dtype=np.float64)
    labels = {
        column: [
            MISSING if v is None else v
            for v in _agreed(texts, index, common, column, f"cohort {column!r}")
        ]
        for column in cohort_columns
    }

    from ..io.tokens import token_arrays

    per_model: dict[str, tuple[NDArray[np.float64], NDArray[np.int64]]] = {}
    stats: dict[str, TokenStats] = {}
    nll: dict[str, NDArray[np.float64]] = {}
    for t in texts:
        name = t.model.name
        flat, lengths, _, _ = token_arrays(t.table.take(index[name]))
        per_model[name] = (flat, lengths)
        stats[name] = TokenStats(extremal_logprob=extremal_logprob).update(
            flat, lengths=lengths, n_bytes=byte_counts, n_words=word_counts
        )
        nll[name] = _nll_per_text(flat, lengths)

    notes: list[dict[str, Any]] = []
    for name, (flat, _) in per_model.items():
        zeros = int(np.count_nonzero(np.isneginf(flat)))
        if zeros:
            warning: Warning = ZeroProbabilityWarning(name, zeros)
            notes.append({"kind": "zero_probability", "message": str(warning), "models": [name]})
            warnings.warn(warning, stacklevel=2)
    names = list(per_model)
    for i, first in enumerate(names):
        for second in names[i + 1 :]:
            a, b = per_model[first][1], per_model[second][1]
            differ = np.flatnonzero(a != b)
            if differ.size:
                j = int(differ[0])
                warning = TokenizerMismatchWarning(
                    (first, second),
                    int(differ.size),
                    len(common),
                    (common[j], int(a[j]), int(b[j])),
                )
                notes.append(
                    {
                        "kind": "tokenizer_mismatch",
                        "message": str(warning),
                        "models": [first, second],
                        "n_texts": int(differ.size),
                    }
                )
                warnings.warn(warning, stacklevel=2)

    rows = []
    for model in entries:
        row = {"name": model.name, "column": model.column, "file": model.file}
        rows.append(row | _finished(stats[model.name], confidence))
    rows.sort(key=_order_key)
    order = [row["name"] for row in rows]
    by_name = {row["name"]: row for row in rows}

    pairs = (
        [(m, reference) for m in order if m != reference]
        if reference is not None
        else [(order[j], order[i]) for i in range(len(order)) for j in range(i + 1, len(order))]
    )
    comparisons = []
    for model, ref in pairs:
        c = paired_bits_per_byte(nll[model], nll[ref], byte_counts, confidence=confidence)
        base = by_name[ref]["bits_per_byte"]
        relative = None if c["delta"] is None or not base else c["delta"] / base
        comparisons.append({"model": model, "reference": ref, **c, "relative_delta": relative})
    tested = [c for c in comparisons if c["p_value"] is not None]
    for c, adjusted in zip(tested, holm([c["p_value"] for c in tested]), strict=True):
        c["p_holm"] = adjusted
    alpha = 1.0 - confidence
    for c in comparisons:
        c.setdefault("p_holm", None)
        c["verdict"] = _verdict(c, alpha)

    cohort_tables, cohort_notes = {}, {}
    for column, values in labels.items():
        table, note = _cohort_table(
            values, per_model, byte_counts, word_counts, order, confidence, extremal_logprob
        )
        cohort_tables[column], cohort_notes[column] = table, note

    inputs = {
        "files": _source_names(files) if files else [],
        "models": {m.name: {"column": m.column, "file": m.file} for m in entries},
        "cohorts": cohort_columns,
        "reference": reference,
        "on_missing": on_missing,
        "confidence": confidence,
        "extremal_logprob": float(extremal_logprob),
        "format": format,
    }
    document = {
        "domain": "language-model",
        "xebench_version": __version__,
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "inputs": inputs,
        "ranking_metric": _RANKING.name,
        "units": {name: METRICS[name].unit for name in _UNIT_METRICS},
        "n_texts": len(common),
        "dropped": dropped,
        "models": rows,
        "comparisons": comparisons,
        "cohorts": cohort_tables,
        "cohort_notes": cohort_notes,
        "warnings": notes,
    }
    return LMBenchmarkResult(document)


def _verdict(comparison: dict[str, Any], alpha: float) -> str:
    """``better`` / ``worse`` when Holm's adjusted p-value is below ``alpha``; direction
    from the registry (a delta of bits per byte is worse on its bad side of 0)."""
    p, delta = comparison["p_holm"], comparison["delta"]
    if p is None or delta is None or p >= alpha:
        return "no significant difference" if p is not None else "n/a"
    return "worse" if _RANKING.worse_by(delta, 0.0) > 0 else "better"


def _cohort_table(
    values: list[str],
    per_model: Mapping[str, tuple[NDArray[np.float64], NDArray[np.int64]]],
    byte_counts: NDArray[np.float64],
    word_counts: NDArray[np.float64] | None,
    order: Sequence[str],
    confidence: float,
    extremal_logprob: float,
) -> tuple[dict[str, list[dict[str, Any]]], dict[str, Any]]:
    """Per cohort value, every model's statistics on its texts, models in ranking order."""
    labels = np.asarray([str(v) for v in values], dtype=object)
    sizes: dict[str, int] = {}
    for v in labels:
        sizes[v] = sizes.get(v, 0) + 1
    ranked = sorted(sizes, key=lambda v: (-sizes[v], v))
    shown, rest = ranked[:SHOWN_COHORTS], ranked[SHOWN_COHORTS:]
    groups = {v: labels == v for v in shown}
    if rest:
        groups[OTHER] = np.isin(labels, rest)
    table: dict[str, list[dict[str, Any]]] = {}
    for value, mask in groups.items():
        rows = []
        for name in order:
            flat, lengths = per_model[name]
            keep = np.repeat(mask, lengths)
            stats = TokenStats(extremal_logprob=extremal_logprob).update(
                flat[keep],
                lengths=lengths[mask],
                n_bytes=byte_counts[mask],
                n_words=None if word_counts is None else word_counts[mask],
            )
            rows.append({"name": name, **_finished(stats, confidence)})
        table[value] = rows
    note = {"values": len(sizes), "shown": len(shown), "other": bool(rest)}
    return table, note
