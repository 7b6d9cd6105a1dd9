"""Streaming token tables: chunk by chunk equals the whole file, errors located, reads lazy."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import xebench as xb
import xebench.io.tokens as tokens_module
from benchmark_modules import load_benchmark
from xebench.io.chunks import DEFAULT_BATCH_ROWS
from xebench.io.tokens import (
    mean_tokens_per_row,
    read_token_logprobs,
    read_token_table,
    token_arrays,
)
from xebench.offline.token_scan import chunk_rows, scan_token_stats

LM = Path(__file__).resolve().parents[1] / "fixtures" / "lm"


def whole_file_stats(data: Any, **options: Any) -> xb.TokenStats:
    """The reference: the whole input read into one table, then one update."""
    flat, lengths, n_bytes, n_words = token_arrays(read_token_table(data, **options))
    return xb.TokenStats().update(flat, lengths=lengths, n_bytes=n_bytes, n_words=n_words)


def _close(left: Any, right: Any, rel: float) -> bool:
    if isinstance(left, (tuple, list)):
        if len(left) != len(right):
            return False
        return all(_close(x, y, rel) for x, y in zip(left, right, strict=True))
    if isinstance(left, float) and isinstance(right, float):
        return left == pytest.approx(right, rel=rel, abs=1e-300) or left == right
    return left == right


def assert_same_stats(a: xb.TokenStats, b: xb.TokenStats, rel: float = 1e-12) -> None:
    """The same results, counts exactly, sums to ``rel`` (the chunks add in another order).

    The sums of bytes (words) are compared only when every sequence had one:
    otherwise both leave the per-byte measures None, but a chunked pass has
    summed the chunks that had them all (``update`` takes counts for every
    sequence of a chunk or none).
    """
    left, right = a.result(), b.result()
    assert left.keys() == right.keys()
    for key, value in left.items():
        assert _close(value, right[key], rel), (key, value, right[key])
    partial = {
        kind
        for kind in ("bytes", "words")
        for stats in (a, b)
        if getattr(stats, f"n_with_{kind}") != stats.n_sequences
    }
    skipped = {f"{p}{kind}{s}" for kind in partial for p, s in (
        ("n_with_", ""), ("n_", ""), ("", "_sq"), ("nll_", ""))}  # fmt: skip
    sums, other = a.to_dict(), b.to_dict()
    for key, value in sums.items():
        if key not in skipped:
            assert _close(value, other[key], rel), (key, value, other[key])


def write(path: Path, table: pa.Table, row_group_size: int | None = None) -> Path:
    pq.write_table(table, path, row_group_size=row_group_size)
    return path


def lists(rows: list[list[float]], value_type: pa.DataType | None = None) -> pa.Array:
    return pa.array(rows, pa.list_(value_type or pa.float64()))


# --- equal to the whole file --------------------------------------------------


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("columns.csv", {}),
        ("chat.jsonl", {"format": "openai"}),
        ("batch_output.jsonl", {}),
        ("chat.json", {}),
        ("hf_batch.json", {}),
        ("vllm_prompt_logprobs.json", {"format": "vllm"}),
    ],
)
def test_scan_equals_the_whole_file_on_the_fixtures(name: str, options: dict[str, Any]) -> None:
    for batch_rows in (1, 2, None):
        scanned = scan_token_stats(LM / name, batch_rows=batch_rows, **options)
        assert_same_stats(scanned, whole_file_stats(LM / name, **options))


def test_scan_of_a_parquet_table_in_chunks_and_row_groups(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    rows = [(-rng.exponential(2.0, size=rng.integers(1, 30))).tolist() for _ in range(500)]
    table = pa.table({
        "text_id": [f"d{i % 37}" for i in range(500)],  # ids repeat: rows are the sequences
        "token_logprobs": lists(rows, pa.float32()),
        "n_bytes": rng.integers(1, 200, size=500),
        "domain": rng.choice(["a", "b"], size=500),
    })  # fmt: skip
    path = write(tmp_path / "t.parquet", table, row_group_size=64)
    reference = whole_file_stats(path)
    assert reference.n_sequences == 500 and reference.n_with_bytes == 500
    for batch_rows in (1, 7, 64, 100, 10_000, None):
        for read_ahead in (True, False):
            scanned = scan_token_stats(path, batch_rows=batch_rows, read_ahead=read_ahead)
            assert_same_stats(scanned, reference)
    assert scan_token_stats(path).result()["pooled_cross_entropy_ci"] is not None


def test_rows_sharing_a_text_id_across_a_chunk_boundary_stay_two_sequences(
    tmp_path: Path,
) -> None:
    # A sequence is one row: "x" on rows 2 and 3 is two sequences, whatever the chunking.
    table = pa.table({
        "text_id": ["a", "x", "x", "b"],
        "token_logprobs": [[-1.0], [-2.0, -2.0], [-4.0], [-1.0, -1.0]],
        "n_bytes": [1, 2, 1, 2],
    })  # fmt: skip
    path = write(tmp_path / "t.parquet", table)
    for batch_rows in (1, 2, 3, 4):
        stats = scan_token_stats(path, batch_rows=batch_rows)
        assert stats.n_sequences == 4 and stats.n_tokens == 6
        # Sequence cross-entropies 1, 2, 4, 1: not (2 + 2 + 4) / 3 for a merged "x".
        assert stats.seq_ce_sum == 8.0
        assert_same_stats(stats, whole_file_stats(path))


# tmp_path is shared by the examples: each writes the same file name afresh.
SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@st.composite
def token_tables(draw: st.DrawFn) -> tuple[pa.Table, int, int]:
    """A token table of 1-60 sequences, a row-group size and a chunk size."""
    n = draw(st.integers(1, 60))
    logprob = st.one_of(
        st.floats(-40.0, 0.0, allow_nan=False),
        st.sampled_from([0.0, -0.0, 5e-7, -1e-300, -12.5]),  # 5e-7: float32 rounding, read as 0
    )
    rows = [draw(st.lists(logprob, min_size=1, max_size=25)) for _ in range(n)]
    byte_count = st.one_of(st.none(), st.integers(0, 10**6))
    n_bytes = draw(st.lists(byte_count, min_size=n, max_size=n))
    columns: dict[str, Any] = {
        "text_id": draw(st.lists(st.sampled_from(["a", "b", "c", None]), min_size=n, max_size=n)),
        "token_logprobs": lists(rows, draw(st.sampled_from([pa.float32(), pa.float64()]))),
        "n_bytes": pa.array(n_bytes, pa.int64()),
    }
    if draw(st.booleans()):
        columns["text"] = draw(st.lists(st.text(max_size=5), min_size=n, max_size=n))
    if draw(st.booleans()):
        columns["n_words"] = draw(st.lists(st.integers(0, 50), min_size=n, max_size=n))
    return pa.table(columns), draw(st.integers(1, 70)), draw(st.integers(1, 70))


@SETTINGS
@given(case=token_tables())
def test_scan_in_random_chunks_equals_the_whole_file(
    case: tuple[pa.Table, int, int], tmp_path: Path
) -> None:
    table, row_group_size, batch_rows = case
    path = write(tmp_path / "h.parquet", table, row_group_size=row_group_size)
    assert_same_stats(scan_token_stats(path, batch_rows=batch_rows), whole_file_stats(path))


@SETTINGS
@given(case=token_tables())
def test_whole_columns_equal_the_record_by_record_reader(
    case: tuple[pa.Table, int, int], tmp_path: Path
) -> None:
    table, row_group_size, batch_rows = case
    path = write(tmp_path / "h.parquet", table, row_group_size=row_group_size)
    fast = read_token_table(path, batch_rows=batch_rows)
    with pytest.MonkeyPatch.context() as patch:  # every chunk read record by record
        patch.setattr(tokens_module, "_columns_table", lambda *args: None)
        slow = read_token_table(path, batch_rows=batch_rows)
    assert fast.schema == slow.schema
    assert fast.to_pylist() == slow.to_pylist()


def test_whole_columns_keep_the_records_spelling_of_other_types(tmp_path: Path) -> None:
    table = pa.table({
        "text_id": pa.array([7, None, 9], pa.int32()),
        "token_logprobs": pa.array([[-1, -2], [0], [-3]], pa.list_(pa.int8())),
        "n_bytes": pa.array([4.0, None, 2.0]),
        "text": ["é", "éé", None],
        "n_words": pa.array([1, None, 2], pa.uint8()),
        "temperature": [0.7, None, 1.0],
        "flag": [True, False, None],
        "region": pa.array(["eu", "us", "eu"]).dictionary_encode(),
    })  # fmt: skip
    path = write(tmp_path / "t.parquet", table)
    options = {"cohorts": ["temperature", "flag", "region"]}
    rows = read_token_table(path, **options).to_pylist()
    assert rows == [
        {"text_id": "7", "token_logprobs": [-1.0, -2.0], "n_bytes": 4, "n_words": 1,
         "temperature": "0.7", "flag": "True", "region": "eu"},
        {"text_id": "2", "token_logprobs": [0.0], "n_bytes": 4, "n_words": None,
         "temperature": None, "flag": "False", "region": "us"},
        {"text_id": "9", "token_logprobs": [-3.0], "n_bytes": 2, "n_words": 2,
         "temperature": "1.0", "flag": None, "region": "eu"},
    ]  # fmt: skip
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tokens_module, "_columns_table", lambda *args: None)
        assert read_token_table(path, **options).to_pylist() == rows


# --- bad values: the same message at the same record, whatever the chunking ----


_LOGPROB = "must be a number <= 0, got"
BAD = [
    ("nan", {"token_logprobs": [-1.0, math.nan]}, f"/token_logprobs/1: {_LOGPROB} NaN"),
    ("+inf", {"token_logprobs": [math.inf]}, f"/token_logprobs/0: {_LOGPROB} Infinity"),
    ("positive", {"token_logprobs": [-1.0, -2.0, 0.5]}, f"/token_logprobs/2: {_LOGPROB} 0.5"),
    ("null token", {"token_logprobs": [-1.0, None]}, f"/token_logprobs/1: {_LOGPROB} null"),
    ("null sequence", {"token_logprobs": None},
     "/token_logprobs: must be an array of numbers, got null"),
    ("negative bytes", {"n_bytes": -3}, "/n_bytes: must be an integer >= 0, got -3"),
    ("fractional bytes", {"n_bytes": 2.5}, "/n_bytes: must be an integer >= 0, got 2.5"),
    ("nan bytes", {"n_bytes": math.nan}, "/n_bytes: must be an integer >= 0, got NaN"),
]  # fmt: skip


def _table_with(bad: dict[str, Any], at: int, n: int = 20) -> pa.Table:
    rows = [{"text_id": f"d{i}", "token_logprobs": [-1.0, -0.5], "n_bytes": 3} for i in range(n)]
    rows[at - 1] |= bad
    return pa.table({
        "text_id": [r["text_id"] for r in rows],
        "token_logprobs": pa.array([r["token_logprobs"] for r in rows], pa.list_(pa.float64())),
        "n_bytes": pa.array([r["n_bytes"] for r in rows]),  # int64 unless a bad float
    })  # fmt: skip


# Arrow's CSV reader reads an empty cell and 'nan' as null: those two cases are no CSV's.
_NOT_IN_CSV = ("null sequence", "nan bytes")
_FORMATS = [
    pytest.param(case, bad, message, suffix, id=f"{case}-{suffix}")
    for suffix in (".parquet", ".jsonl", ".csv")
    for case, bad, message in BAD
    if not (suffix == ".csv" and case in _NOT_IN_CSV)
]


@pytest.mark.parametrize(("case", "bad", "message", "suffix"), _FORMATS)
def test_bad_values_name_the_file_the_absolute_record_and_the_field(
    case: str, bad: dict[str, Any], message: str, suffix: str, tmp_path: Path
) -> None:
    table = _table_with(bad, at=14)
    path = tmp_path / f"bad{suffix}"
    if suffix == ".parquet":
        pq.write_table(table, path, row_group_size=4)
    elif suffix == ".jsonl":
        path.write_text("".join(json.dumps(row) + "\n" for row in table.to_pylist()))
    else:
        frame = table.to_pylist()
        lines = ["text_id,token_logprobs,n_bytes"] + [
            f'{r["text_id"]},"{json.dumps(r["token_logprobs"])}",{r["n_bytes"]}' for r in frame
        ]
        path.write_text("\n".join(lines) + "\n")
    if suffix == ".jsonl" and case == "null sequence":  # a record's field, not a table cell
        message = "/token_logprobs: must be an array or a string, got null"
    expected = f"{path}: record 14: {message}"
    for batch_rows in (3, 5, 13, 14, None):  # record 14: inside, first and last of a chunk
        with pytest.raises(xb.DataError) as info:
            scan_token_stats(path, batch_rows=batch_rows)
        assert str(info.value) == expected
        assert info.value.source == str(path) and info.value.row == 14
    with pytest.raises(xb.DataError) as whole:
        read_token_table(path)
    assert str(whole.value) == expected


def test_bad_values_after_good_chunks_fail_late_not_early(tmp_path: Path) -> None:
    # The chunks before the bad record were read and added: a streaming reader.
    path = write(tmp_path / "t.parquet", _table_with({"n_bytes": -1}, at=19), row_group_size=4)
    seen: list[int] = []
    with pytest.raises(xb.DataError, match="record 19: /n_bytes"):
        scan_token_stats(path, batch_rows=4, on_chunk=lambda c: seen.append(c.first_row))
    assert seen == [1, 5, 9, 13]


def test_a_missing_byte_count_is_unknown_not_an_error_unless_required(tmp_path: Path) -> None:
    table = pa.table({
        "text_id": ["a", "b", "c"],
        "token_logprobs": [[-1.0], [-2.0], [-3.0]],
        "n_bytes": pa.array([2, None, 4], pa.int64()),
    })  # fmt: skip
    path = write(tmp_path / "t.parquet", table)
    result = scan_token_stats(path, batch_rows=2).result()
    assert result["n_tokens"] == 3 and result["bits_per_byte"] is None
    assert whole_file_stats(path).result()["bits_per_byte"] is None
    with pytest.raises(xb.DataError) as info:
        scan_token_stats(path, batch_rows=1, require_bytes=True)
    assert str(info.value) == (
        f'{path}: sequence 2 (text_id "b"): n_bytes: is required (an n_bytes or a text)'
    )
    # A text stands in for the count: its UTF-8 bytes.
    with_text = write(
        tmp_path / "text.parquet", table.append_column("text", pa.array(["", "éa", ""]))
    )
    stats = scan_token_stats(with_text, require_bytes=True)
    assert stats.n_bytes == 2 + 3 + 4


def test_a_sequence_without_a_scored_token_is_named(tmp_path: Path) -> None:
    table = pa.table({"text_id": ["a", "b", "c"], "token_logprobs": [[-1.0], [-2.0], []]})
    path = write(tmp_path / "t.parquet", table)
    with pytest.raises(xb.DataError) as info:
        scan_token_stats(path, batch_rows=2)
    assert str(info.value) == (
        f'{path}: sequence 3 (text_id "c"): token_logprobs: must hold a scored token'
    )
    assert info.value.row == 3


# --- bounded memory, without timing -------------------------------------------


@pytest.fixture
def counted_batches(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Rows of every record batch pyarrow has decoded from a Parquet file so far."""
    decoded: list[int] = []
    original = pq.ParquetFile.iter_batches

    def counting(self: pq.ParquetFile, *args: Any, **kwargs: Any) -> Iterator[pa.RecordBatch]:
        for batch in original(self, *args, **kwargs):
            decoded.append(batch.num_rows)
            yield batch

    monkeypatch.setattr(pq.ParquetFile, "iter_batches", counting)
    return decoded


def _long_file(tmp_path: Path, rows: int = 400, tokens: int = 10) -> Path:
    table = pa.table({
        "text_id": [str(i) for i in range(rows)],
        "token_logprobs": lists([[-1.0] * tokens] * rows, pa.float32()),
        "n_bytes": [4 * tokens] * rows,
    })  # fmt: skip
    return write(tmp_path / "long.parquet", table, row_group_size=50)


def test_the_reader_decodes_batches_lazily(tmp_path: Path, counted_batches: list[int]) -> None:
    chunks = read_token_logprobs(_long_file(tmp_path), batch_rows=20)
    first = next(chunks)
    assert first.first_row == 1 and first.table.num_rows == 20
    assert counted_batches == [20]  # one batch of the first of 8 row groups, nothing ahead
    second = next(chunks)
    assert second.first_row == 21 and counted_batches == [20, 20]
    chunks.close()


def test_the_scan_holds_one_chunk_at_a_time(tmp_path: Path, counted_batches: list[int]) -> None:
    sizes: list[int] = []
    stats = scan_token_stats(
        _long_file(tmp_path), batch_rows=30, read_ahead=False,
        on_chunk=lambda chunk: sizes.append(chunk.table.num_rows),
    )  # fmt: skip
    assert stats.n_sequences == 400
    assert max(counted_batches) <= 30 and max(sizes) <= 30
    assert sum(sizes) == 400 and len(sizes) == len(counted_batches)


def test_chunks_are_sized_in_tokens_from_the_parquet_metadata(tmp_path: Path) -> None:
    path = _long_file(tmp_path, rows=400, tokens=10)
    assert mean_tokens_per_row(path) == 10.0
    assert chunk_rows(path, tokens=1000) == 100
    assert chunk_rows(path, tokens=10) == 64  # never below 64 rows
    assert chunk_rows(path, tokens=10**12) == DEFAULT_BATCH_ROWS
    assert chunk_rows(LM / "columns.csv") == DEFAULT_BATCH_ROWS
    assert mean_tokens_per_row(tmp_path / "missing.parquet") is None
    sizes: list[int] = []
    scan_token_stats(path, on_chunk=lambda chunk: sizes.append(chunk.table.num_rows))
    assert sizes == [50] * 8  # 4,000 tokens fit 2**20, but a chunk never spans row groups


# --- the benchmark -------------------------------------------------------------


@pytest.fixture
def bench() -> Iterator[ModuleType]:
    yield from load_benchmark("bench_tokens.py", "xebench_bench_tokens")


def test_the_benchmark_writes_exactly_n_tokens_and_the_methods_agree(
    bench: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bench, "ROW_GROUP", 100)  # several row groups of a tiny file
    path = bench.token_file(tmp_path, 20_011)
    parquet = pq.ParquetFile(path)
    assert parquet.num_row_groups > 1 and parquet.schema_arrow == bench.SCHEMA
    assert mean_tokens_per_row(path) * parquet.metadata.num_rows == 20_011
    assert bench.token_file(tmp_path, 20_011) == path  # cached
    methods = dict(bench.METHODS)
    try:
        import duckdb  # noqa: F401
    except ImportError:  # the benchmark skips it too
        methods.pop("bare DuckDB")
    results = bench.measure(path, 1, methods)
    assert bench.check_totals(results) == []
    assert results["xebench"]["n_tokens"] == 20_011
    assert bench.report(20_011, results) is True


def test_a_near_impossible_text_has_an_infinite_perplexity_not_an_overflow() -> None:
    # Two sequences, 1 byte each: the per-byte interval's upper end passes 709 nats.
    stats = xb.TokenStats().update([[-400.0], [-10.0]], n_bytes=[1, 1])
    result = stats.result()
    assert result["byte_perplexity_ci"][1] == math.inf
    assert xb.TokenStats().update([[-800.0]]).result()["pooled_perplexity"] == math.inf
    assert xb.byte_perplexity(800.0, 1) == math.inf and xb.sequence_perplexity([-800.0]) == math.inf
