"""Readers of token log-probabilities: OpenAI, vLLM, Hugging Face payloads and plain columns."""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import xebench as xb
from xebench.io.tokens import read_token_logprobs, read_token_table, token_arrays

LM = Path(__file__).resolve().parents[1] / "fixtures" / "lm"


def _rows(path: Path, **options: object) -> list[dict[str, object]]:
    return read_token_table(path, **options).to_pylist()


def test_openai_chat_completion_uses_the_bytes_arrays() -> None:
    # "Hi" + " caf" + "é": 2 + 4 + 2 UTF-8 bytes (é is two bytes).
    assert _rows(LM / "chat.json", cohorts=["model"]) == [
        {"text_id": "chatcmpl-1", "token_logprobs": [-0.25, -1.0, -0.75], "n_bytes": 8,
         "n_words": None, "model": "gpt-4o-mini"},
    ]  # fmt: skip


def test_openai_json_lines_and_batch_output() -> None:
    rows = _rows(LM / "chat.jsonl", format="openai", cohorts=["model"])
    assert [(r["text_id"], r["token_logprobs"], r["model"]) for r in rows] == [
        ("chatcmpl-1", [-0.5, -1.5], "m-a"),
        ("chatcmpl-2", [-2.0], "m-b"),
    ]
    assert _rows(LM / "batch_output.jsonl")[0]["text_id"] == "req-7"


def test_openai_without_bytes_counts_the_tokens_text_and_legacy_completions() -> None:
    payload = {"id": "x", "choices": [
        {"index": 0, "logprobs": {"content": [{"token": "é", "logprob": -1.0, "bytes": None}]}},
        {"index": 1, "logprobs": {"tokens": ["a", "b"], "token_logprobs": [None, -2.0]}},
    ]}  # fmt: skip
    rows = read_token_table(payload).to_pylist()
    assert [(r["text_id"], r["token_logprobs"], r["n_bytes"]) for r in rows] == [
        ("x/0", [-1.0], 2),
        ("x/1", [-2.0], 1),
    ]


def test_vllm_prompt_logprobs_take_the_prompt_tokens_entry() -> None:
    rows = _rows(LM / "vllm_prompt_logprobs.json", format="vllm")
    # The first position is None (not scored); " cat" had rank 12, not the top token.
    assert [(r["text_id"], r["token_logprobs"], r["n_bytes"]) for r in rows] == [
        ("0", [-3.5, -2.5], len(" cat sat")),
        ("1", [-1.0], len(" world")),
    ]


def test_vllm_without_token_ids_takes_each_positions_first_entry() -> None:
    position = {"5": {"logprob": -0.7, "rank": 4}, "2": {"logprob": -0.1, "rank": 1}}
    payload = {"choices": [{"prompt_logprobs": [None, position]}]}
    row = read_token_table(payload).to_pylist()[0]
    assert row["token_logprobs"] == [-0.7] and row["n_bytes"] is None


def test_hugging_face_arrays_skip_the_first_token_and_padding() -> None:
    rows = _rows(LM / "hf_batch.json")
    assert [(r["text_id"], r["token_logprobs"], r["n_bytes"]) for r in rows] == [
        ("doc-a", [-2.0, -1.0], 7),
        ("doc-b", [-0.5], 5),  # the padded -9.0 is masked out
    ]


def test_plain_columns_in_csv_parquet_and_json_lines(tmp_path: Path) -> None:
    expected = _rows(LM / "columns.csv", cohorts=["split"])
    assert expected == [
        {
            "text_id": "d1",
            "token_logprobs": [-1.0, -2.0],
            "n_bytes": 2,
            "n_words": 1,
            "split": "dev",
        },
        {"text_id": "d2", "token_logprobs": [-3.0], "n_bytes": 2, "n_words": 1, "split": "test"},
    ]
    table = pa.table({
        "text_id": ["d1", "d2"], "token_logprobs": [[-1.0, -2.0], [-3.0]],
        "text": ["ab", "cd"], "n_words": [1, 1], "split": ["dev", "test"],
    })  # fmt: skip
    pq.write_table(table, tmp_path / "lm.parquet")
    assert _rows(tmp_path / "lm.parquet", cohorts=["split"]) == expected
    lines = "".join(json.dumps(row) + "\n" for row in table.to_pylist())
    with gzip.open(tmp_path / "lm.jsonl.gz", "wt") as handle:
        handle.write(lines)
    assert _rows(tmp_path / "lm.jsonl.gz", cohorts=["split"]) == expected


def test_chunks_are_bounded_and_feed_token_stats() -> None:
    payload = [
        {"text_id": str(i), "token_logprobs": [-1.0] * (i + 1), "text": "ab"} for i in range(5)
    ]
    chunks = list(read_token_logprobs(payload, batch_rows=2))
    assert [(c.first_row, c.table.num_rows) for c in chunks] == [(1, 2), (3, 2), (5, 1)]
    stats = xb.TokenStats()
    for chunk in chunks:
        flat, lengths, n_bytes, n_words = token_arrays(chunk.table)
        stats.update(flat, lengths=lengths, n_bytes=n_bytes, n_words=n_words)
    result = stats.result()
    assert result["n_tokens"] == 15 and result["pooled_cross_entropy"] == 1.0
    assert result["bits_per_byte"] == pytest.approx(15 / 10 / math.log(2))


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("chat_bad.jsonl",
         'chat_bad.jsonl: record 3: /choices/0/logprobs/content/1/logprob: '
         'must be a number <= 0, got "x"'),
        ("vllm_bad.json",
         "vllm_bad.json: record 2: /prompt_logprobs/1: has no entry for the prompt token id 1917"),
        ("hf_bad.json", "hf_bad.json: record 1: /logprobs/0/2: must be a number <= 0, got 1.5"),
        ("columns_bad.csv",
         "columns_bad.csv: record 2: /token_logprobs/1: must be a number <= 0, got NaN"),
    ],
)  # fmt: skip
def test_bad_payloads_name_the_file_the_record_and_the_field(
    name: str, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(LM)
    with pytest.raises(xb.DataError) as info:
        read_token_table(name)
    assert str(info.value) == message
    assert info.value.source == name


def test_more_bad_payloads() -> None:
    with pytest.raises(xb.DataError, match=r"^<payload>: record 2: /choices: is required$"):
        read_token_table([{"choices": []}, {"id": "x"}], format="openai")
    with pytest.raises(xb.DataError, match=r"record 1: /: is not a format xebench reads"):
        read_token_table({"something": 1})
    with pytest.raises(xb.DataError, match=r"/choices/0/logprobs: must be an object, got null"):
        read_token_table({"choices": [{"logprobs": None}]})
    with pytest.raises(xb.DataError, match="file not found"):
        read_token_table(LM / "missing.json")
    with pytest.raises(xb.InvalidInputError, match="format: must be one of"):
        read_token_table({}, format="anthropic")
