"""`lm_benchmark`: hand-computed measures, pairing, the paired test, cohorts, warnings, errors."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as scipy_stats

import xebench as xb
from xebench.errors import (
    DataError,
    InvalidInputError,
    TokenizerMismatchWarning,
    ZeroProbabilityWarning,
)
from xebench.offline.lm import lm_benchmark, paired_bits_per_byte, parse_model_specs

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "lm" / "two_models.csv"
LN2 = math.log(2.0)
# The fixture by hand: per text (NLL nats, tokens) for each model, bytes and words.
GPT = [(3.0, 2), (0.5, 1), (4.0, 3), (1.0, 2)]
LLAMA = [(3.0, 2), (0.75, 2), (5.0, 2), (1.0, 1)]
BYTES = [2, 3, 5, 2]  # "ab", "c d", "héé" (é is 2 bytes), "xy"
WORDS = [1, 2, 1, 1]
DOMAIN = ["web", "code", "web", "code"]


def _fixture(**options: object) -> dict:
    with pytest.warns(TokenizerMismatchWarning):
        return lm_benchmark(FIXTURE, models=["gpt", "llama"], **options).to_dict()


def _model(doc: dict, name: str) -> dict:
    return next(m for m in doc["models"] if m["name"] == name)


def test_hand_computed_bits_per_byte_and_perplexities() -> None:
    doc = _fixture()
    for name, texts in (("gpt", GPT), ("llama", LLAMA)):
        m = _model(doc, name)
        nll = sum(t[0] for t in texts)
        tokens = sum(t[1] for t in texts)
        assert m["n_sequences"] == 4 and m["n_tokens"] == tokens and m["n_bytes"] == 12
        assert m["nll_sum"] == pytest.approx(nll)
        assert m["bits_per_byte"] == pytest.approx(nll / 12 / LN2)
        assert m["byte_perplexity"] == pytest.approx(math.exp(nll / 12))
        assert m["word_perplexity"] == pytest.approx(math.exp(nll / sum(WORDS)))
        assert m["pooled_perplexity"] == pytest.approx(math.exp(nll / tokens))
        assert m["pooled_cross_entropy"] == pytest.approx(nll / tokens)
        assert m["mean_sequence_perplexity"] == pytest.approx(
            np.mean([math.exp(y / t) for y, t in texts])
        )
        lo, hi = m["bits_per_byte_ci"]
        assert lo < m["bits_per_byte"] < hi
    # 8.5 nats against 9.75: gpt first.
    assert [m["name"] for m in doc["models"]] == ["gpt", "llama"]
    assert doc["ranking_metric"] == "bits_per_byte"
    assert doc["units"]["bits_per_byte"] == xb.metrics.registry.METRICS["bits_per_byte"].unit


def test_bits_per_byte_interval_is_the_ratio_estimator_over_texts() -> None:
    m = _model(_fixture(), "gpt")
    y = np.array([t[0] for t in GPT])
    x = np.array(BYTES, dtype=float)
    ratio = y.sum() / x.sum()
    # Covariance form of the delta method (not the residual form the code uses).
    var = (np.var(y, ddof=1) - 2 * ratio * np.cov(y, x)[0, 1] + ratio**2 * np.var(x, ddof=1)) / (
        4 * x.mean() ** 2
    )
    assert m["bits_per_byte_se"] == pytest.approx(math.sqrt(var) / LN2)
    half = scipy_stats.t.ppf(0.975, 3) * math.sqrt(var) / LN2
    assert m["bits_per_byte_ci"][1] == pytest.approx(ratio / LN2 + half)


def test_same_text_two_tokenizations_same_bits_per_byte_other_token_perplexity() -> None:
    records = [
        {"text_id": "a", "one": [-2.0], "two": [-1.0, -1.0], "text": "hello"},
        {"text_id": "b", "one": [-3.0], "two": [-1.0, -2.0], "text": "world!"},
    ]
    with pytest.warns(TokenizerMismatchWarning, match="'one' and 'two'.*2 of 2 texts") as caught:
        doc = lm_benchmark(records, models=["one", "two"]).to_dict()
    assert len(caught) == 1
    one, two = _model(doc, "one"), _model(doc, "two")
    assert one["bits_per_byte"] == pytest.approx(two["bits_per_byte"]) == 5 / 11 / LN2
    assert one["pooled_perplexity"] == pytest.approx(math.exp(5 / 2))
    assert two["pooled_perplexity"] == pytest.approx(math.exp(5 / 4))
    [warning] = doc["warnings"]
    assert warning["kind"] == "tokenizer_mismatch" and warning["models"] == ["one", "two"]
    assert "per-token perplexity" in warning["message"] and warning["n_texts"] == 2
    [c] = doc["comparisons"]
    assert c["delta"] == pytest.approx(0.0, abs=1e-15) and c["verdict"] != "worse"


def test_same_tokenizer_no_warning(recwarn: pytest.WarningsRecorder) -> None:
    records = [{"text_id": str(i), "a": [-1.0], "b": [-2.0], "text": "x"} for i in range(3)]
    doc = lm_benchmark(records, models=["a", "b"]).to_dict()
    assert doc["warnings"] == [] and len(recwarn) == 0


def test_the_fixture_comparison_is_the_paired_test_of_its_texts_by_hand() -> None:
    [c] = _fixture()["comparisons"]
    assert (c["model"], c["reference"], c["n"]) == ("llama", "gpt", 4)
    d = np.array([y for y, _ in LLAMA]) - np.array([y for y, _ in GPT])  # 0, 0.25, 1, 0
    x = np.array(BYTES, dtype=float)
    ratio = d.sum() / x.sum()  # 1.25 / 12
    se = math.sqrt(np.sum((d - ratio * x) ** 2) / 3 / 4) / x.mean()
    assert c["delta"] == pytest.approx(ratio / LN2) == (9.75 - 8.5) / 12 / LN2
    assert c["delta_se"] == pytest.approx(se / LN2)
    assert c["p_value"] == pytest.approx(2 * scipy_stats.t.sf(ratio / se, 3))
    assert c["p_holm"] == c["p_value"]  # one pair: nothing to adjust
    assert c["relative_delta"] == pytest.approx(1.25 / 8.5)


def test_paired_p_value_is_scipy_paired_t_test_when_bytes_are_equal() -> None:
    rng = np.random.default_rng(3)
    a = rng.gamma(5.0, 2.0, 30)
    b = a + rng.normal(0.3, 1.0, 30)
    r = paired_bits_per_byte(b, a, np.full(30, 40.0))
    expected = scipy_stats.ttest_rel(b, a)
    assert r["p_value"] == pytest.approx(expected.pvalue, rel=1e-9)
    assert r["delta"] == pytest.approx((b - a).mean() / 40 / LN2)
    ci = expected.confidence_interval(0.95)
    assert r["delta_ci"] == pytest.approx([ci.low / 40 / LN2, ci.high / 40 / LN2])


def test_paired_standard_error_matches_a_bootstrap_over_texts() -> None:
    rng = np.random.default_rng(7)
    n = 200
    x = rng.integers(50, 2000, n).astype(float)  # texts of very different lengths
    a = x * rng.lognormal(-0.3, 0.3, n)
    b = a + x * rng.normal(0.02, 0.05, n)
    r = paired_bits_per_byte(b, a, x)
    draws = rng.integers(0, n, size=(4000, n))
    boot = ((b[draws] - a[draws]).sum(axis=1) / x[draws].sum(axis=1)) / LN2
    assert r["delta_se"] == pytest.approx(boot.std(ddof=1), rel=0.08)
    assert r["delta"] == pytest.approx(((b - a).sum() / x.sum()) / LN2)


def test_paired_edge_cases() -> None:
    one = paired_bits_per_byte([2.0], [1.0], [4])
    assert one["delta"] == pytest.approx(0.25 / LN2) and one["p_value"] is None
    flat = paired_bits_per_byte([2.0, 4.0], [1.0, 2.0], [1, 2])  # d = x exactly: no spread
    assert flat["delta_se"] == 0.0 and flat["p_value"] == 0.0
    same = paired_bits_per_byte([1.0, 2.0], [1.0, 2.0], [1, 2])
    assert same["p_value"] == 1.0 and same["delta"] == 0.0
    infinite = paired_bits_per_byte([math.inf, 1.0], [1.0, 1.0], [1, 1])
    assert infinite["delta"] is None and infinite["p_value"] is None


def _three_models() -> list[dict]:
    rng = np.random.default_rng(11)
    records = []
    for i in range(40):
        n = int(rng.integers(2, 8))
        base = rng.uniform(-3.0, -0.2, n)
        records.append(
            {
                "text_id": f"t{i}",
                "a": base.tolist(),
                "b": (base - 0.05 + rng.normal(0, 0.2, n)).clip(max=0).tolist(),
                "c": (base - 0.3 + rng.normal(0, 0.2, n)).clip(max=0).tolist(),
                "text": "x" * (n * 3),
                "domain": ["web", "code"][i % 2],
            }
        )
    return records


def test_every_pair_with_holm_adjusted_p_values() -> None:
    doc = lm_benchmark(_three_models(), models=["a", "b", "c"]).to_dict()
    assert [m["name"] for m in doc["models"]] == ["a", "b", "c"]
    pairs = [(c["model"], c["reference"]) for c in doc["comparisons"]]
    assert pairs == [("b", "a"), ("c", "a"), ("c", "b")]
    raw = [c["p_value"] for c in doc["comparisons"]]
    # Holm by hand: sorted ascending, times 3, 2, 1, running maximum, capped at 1.
    order = np.argsort(raw)
    expected = [0.0] * 3
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (3 - rank) * raw[i]))
        expected[i] = running
    assert [c["p_holm"] for c in doc["comparisons"]] == pytest.approx(expected)
    assert doc["comparisons"][1]["verdict"] == "worse"  # c is much worse than a


def test_reference_compares_every_model_with_it_only() -> None:
    doc = lm_benchmark(_three_models(), models=["a", "b", "c"], reference="c").to_dict()
    pairs = [(c["model"], c["reference"]) for c in doc["comparisons"]]
    assert pairs == [("a", "c"), ("b", "c")]
    assert doc["comparisons"][0]["delta"] < 0 and doc["comparisons"][0]["verdict"] == "better"


def test_cohort_tables_match_each_subset_by_hand() -> None:
    doc = _fixture(cohorts=["domain", "language"])
    table = doc["cohorts"]["domain"]
    assert list(table) == ["code", "web"]  # equal sizes: by value
    for value in ("code", "web"):
        rows = {r["name"]: r for r in table[value]}
        keep = [i for i, d in enumerate(DOMAIN) if d == value]
        for name, texts in (("gpt", GPT), ("llama", LLAMA)):
            nll = sum(texts[i][0] for i in keep)
            assert rows[name]["n_sequences"] == 2
            assert rows[name]["bits_per_byte"] == pytest.approx(
                nll / sum(BYTES[i] for i in keep) / LN2
            )
            assert rows[name]["n_tokens"] == sum(texts[i][1] for i in keep)
    assert [r["name"] for r in doc["cohorts"]["language"]["fr"]] == ["gpt", "llama"]
    assert doc["cohort_notes"]["language"] == {"values": 2, "shown": 2, "other": False}


def test_json_shape_is_stable_and_json_safe() -> None:
    doc = _fixture(cohorts=["domain"])
    text = json.dumps(doc, allow_nan=False)
    assert json.loads(text) == doc
    assert set(doc) == {
        "domain", "xebench_version", "generated_at", "inputs", "ranking_metric", "units",
        "n_texts", "dropped", "models", "comparisons", "cohorts", "cohort_notes", "warnings",
    }  # fmt: skip
    assert {
        "name", "column", "file", "n_sequences", "n_tokens", "n_bytes", "n_words", "nll_sum",
        "bits_per_byte", "bits_per_byte_se", "bits_per_byte_ci", "byte_perplexity",
        "word_perplexity", "pooled_perplexity", "pooled_cross_entropy", "bits_per_token",
        "mean_sequence_perplexity", "extremal_tokens",
    } <= set(doc["models"][0])  # fmt: skip
    assert set(doc["comparisons"][0]) == {
        "model", "reference", "n", "delta", "delta_se", "delta_ci", "p_value", "p_holm",
        "relative_delta", "verdict",
    }  # fmt: skip
    assert doc["inputs"]["models"] == {
        "gpt": {"column": "gpt", "file": None},
        "llama": {"column": "llama", "file": None},
    }


def test_a_zero_probability_token_is_infinite_and_null_in_json() -> None:
    records = [
        {"text_id": "a", "m": [-1.0, -math.inf], "n": [-1.0, -1.0], "text": "ab"},
        {"text_id": "b", "m": [-1.0], "n": [-2.0], "text": "c"},
    ]
    with pytest.warns(ZeroProbabilityWarning, match="'m' gave probability 0 to 1"):
        doc = lm_benchmark(records, models=["m", "n"]).to_dict()
    json.dumps(doc, allow_nan=False)
    assert [m["name"] for m in doc["models"]] == ["n", "m"]  # infinite last
    m = _model(doc, "m")
    assert m["bits_per_byte"] is None and m["nll_sum"] is None
    assert doc["comparisons"][0]["p_value"] is None
    assert doc["warnings"][0]["kind"] == "zero_probability"


def test_single_model_has_no_comparisons() -> None:
    doc = lm_benchmark(FIXTURE, models=["gpt"]).to_dict()
    assert doc["comparisons"] == [] and doc["warnings"] == []
    assert doc["models"][0]["bits_per_byte"] == pytest.approx(8.5 / 12 / LN2)


def test_one_file_per_model_in_different_formats(tmp_path: Path) -> None:
    openai = tmp_path / "gpt.jsonl"
    lines = []
    for text_id, (values, text) in {"t1": ([-1.0, -2.0], "ab"), "t2": ([-0.5], "c")}.items():
        content = [
            {"token": ch, "logprob": v, "bytes": list(ch.encode())}
            for ch, v in zip(text if len(text) == len(values) else [text], values, strict=True)
        ]
        body = {"id": "x", "choices": [{"index": 0, "logprobs": {"content": content}}]}
        lines.append(json.dumps({"custom_id": text_id, "response": {"body": body}}))
    openai.write_text("\n".join(lines) + "\n")
    llama = tmp_path / "llama.jsonl"
    llama.write_text(
        '{"text_id": "t2", "token_logprobs": [-1.0], "text": "c"}\n'
        '{"text_id": "t1", "token_logprobs": [-1.0, -1.0], "text": "ab"}\n'
    )
    doc = lm_benchmark(models=[str(openai), f"llama={llama}"]).to_dict()
    assert doc["inputs"]["files"] == []
    assert doc["inputs"]["models"]["gpt"] == {"column": None, "file": str(openai)}
    gpt, other = _model(doc, "gpt"), _model(doc, "llama")
    assert gpt["bits_per_byte"] == pytest.approx(3.5 / 3 / LN2)
    assert other["bits_per_byte"] == pytest.approx(3.0 / 3 / LN2)
    assert doc["n_texts"] == 2  # paired by id whatever the order


# --- pairing and errors --------------------------------------------------------------


def _write(tmp_path: Path, text: str, name: str = "data.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_a_text_missing_from_a_model_is_an_error_or_dropped(tmp_path: Path) -> None:
    gpt = _write(tmp_path, "text_id,token_logprobs,text\na,[-1.0],x\nb,[-1.0],y\nc,[-2.0],z\n",
                 "gpt.csv")  # fmt: skip
    llama = _write(tmp_path, "text_id,token_logprobs,text\na,[-2.0],x\n", "llama.csv")
    with pytest.raises(
        DataError,
        match=r"model 'llama' \(.*llama.csv\) has no log-probabilities "
        r"for 2 text id\(s\) other models have: 'b', 'c'; pass --on-missing drop",
    ):
        lm_benchmark(models=[f"gpt={gpt}", f"llama={llama}"])  # fmt: skip
    doc = lm_benchmark(models=[f"gpt={gpt}", f"llama={llama}"], on_missing="drop").to_dict()
    assert doc["n_texts"] == 1
    assert doc["dropped"] == {"n": 2, "missing_by_model": {"gpt": 0, "llama": 2}}
    assert _model(doc, "gpt")["bits_per_byte"] == pytest.approx(1.0 / 1 / LN2)


def test_no_common_text_is_an_error(tmp_path: Path) -> None:
    a = _write(tmp_path, "text_id,token_logprobs,text\na,[-1.0],x\n", "a.csv")
    b = _write(tmp_path, "text_id,token_logprobs,text\nb,[-1.0],x\n", "b.csv")
    with pytest.raises(
        DataError,
        match=r"no text id is scored by every model: nothing to "
        r"compare \('a' has 'a'; 'b' has 'b'\)",
    ):
        lm_benchmark(models=[f"a={a}", f"b={b}"], on_missing="drop")


def test_the_same_id_with_other_bytes_is_an_error(tmp_path: Path) -> None:
    a = _write(tmp_path, "text_id,token_logprobs,text\nt,[-1.0],hello\n", "a.csv")
    b = _write(tmp_path, "text_id,token_logprobs,text\nt,[-1.0],hello!\n", "b.csv")
    with pytest.raises(
        DataError,
        match=r"text id 't' has n_bytes 5 for model 'a' \(.*a.csv: row "
        r"1\) but 6 for model 'b' \(.*b.csv: row 1\): the same text id must be",
    ):
        lm_benchmark(models=[f"a={a}", f"b={b}"])  # fmt: skip


def test_bytes_known_to_one_model_serve_the_other(tmp_path: Path) -> None:
    a = _write(tmp_path, "text_id,token_logprobs,text\nt,[-1.0],hello\nu,[-1.0],hi\n", "a.csv")
    b = _write(tmp_path, "text_id,token_logprobs\nt,[-2.0]\nu,[-1.0]\n", "b.csv")
    doc = lm_benchmark(models=[f"a={a}", f"b={b}"]).to_dict()
    assert _model(doc, "b")["bits_per_byte"] == pytest.approx(3.0 / 7 / LN2)


def test_no_byte_count_anywhere_is_an_error(tmp_path: Path) -> None:
    data = _write(tmp_path, "text_id,m\nt,[-1.0]\n")
    with pytest.raises(DataError, match=r"1 text.* have no byte count.*'t'.*'text' or 'n_bytes'"):
        lm_benchmark(data, models=["m"])


def test_a_repeated_id_within_a_model_names_both_rows(tmp_path: Path) -> None:
    data = _write(tmp_path, "text_id,m,text\na,[-1.0],x\nb,[-1.0],y\na,[-2.0],x\n")
    with pytest.raises(
        DataError,
        match=r"data.csv: record 3: /text_id: text id repeats for model "
        r"'m' \(first at .*data.csv: row 1\), got \"a\"",
    ):
        lm_benchmark(data, models=["m"])  # fmt: skip


@pytest.mark.parametrize(
    ("cell", "pointer"),
    [('"[-1.0, NaN]"', "/gpt/1"), ('"[-1.0, 0.5]"', "/gpt/1"), ('"[-1.0, ""x""]"', "/gpt/1")],
)
def test_a_bad_log_probability_names_file_row_and_field(
    tmp_path: Path, cell: str, pointer: str
) -> None:
    data = _write(tmp_path, f"text_id,gpt,text\na,[-1.0],x\nb,{cell},y\n")
    with pytest.raises(DataError, match=rf"data.csv: record 2: {pointer}: must be a number <= 0"):
        lm_benchmark(data, models=["gpt"])


def test_an_infinite_positive_log_probability_is_refused(tmp_path: Path) -> None:
    data = _write(tmp_path, "text_id,gpt,text\na,[Infinity],x\n")
    with pytest.raises(DataError, match=r"record 1: /gpt/0: must be a number <= 0, got Infinity"):
        lm_benchmark(data, models=["gpt"])


def test_zero_bytes_and_no_tokens_are_refused(tmp_path: Path) -> None:
    zero = _write(tmp_path, "text_id,gpt,n_bytes\na,[-1.0],3\nb,[-1.0],0\n")
    with pytest.raises(DataError, match=r"record 2: /n_bytes: must be > 0.*got 0"):
        lm_benchmark(zero, models=["gpt"])
    empty = _write(tmp_path, "text_id,gpt,text\na,[],x\n", "empty_list.csv")
    with pytest.raises(DataError, match=r"empty_list.csv: record 1: /gpt: must hold at least one"):
        lm_benchmark(empty, models=["gpt"])


def test_empty_files_are_refused(tmp_path: Path) -> None:
    empty = _write(tmp_path, "", "empty.csv")
    with pytest.raises(DataError, match=r"empty\.csv: data: file is empty"):
        lm_benchmark(empty, models=["gpt"])
    header_only = _write(tmp_path, "text_id,gpt,text\n", "header.csv")
    with pytest.raises(DataError, match=r"header\.csv: data: has no texts for model 'gpt'"):
        lm_benchmark(header_only, models=["gpt"])
    jsonl = _write(tmp_path, "\n", "blank.jsonl")
    with pytest.raises(DataError, match=r"blank\.jsonl: data: has no texts for model 'm'"):
        lm_benchmark(models=[f"m={jsonl}"])


def test_bad_arguments() -> None:
    with pytest.raises(InvalidInputError, match="model names must be unique; got 'a'"):
        parse_model_specs(["a=x", "a=y"])
    with pytest.raises(InvalidInputError, match="at least one model"):
        parse_model_specs([])
    with pytest.raises(InvalidInputError, match=r"a=runs/a\.jsonl: file not found"):
        lm_benchmark(FIXTURE, models=["a=runs/a.jsonl"])
    with pytest.raises(InvalidInputError, match="a=x: is not a file, and no data files"):
        lm_benchmark(models=["a=x"])
    with pytest.raises(InvalidInputError, match="on_missing: must be 'error' or 'drop'"):
        lm_benchmark(FIXTURE, models=["gpt"], on_missing="skip")
    with pytest.raises(InvalidInputError, match="reference: must be one of the models"):
        lm_benchmark(FIXTURE, models=["gpt"], reference="llama")
    with pytest.raises(DataError, match="no column 'nope'"):
        lm_benchmark(FIXTURE, models=["nope"])
