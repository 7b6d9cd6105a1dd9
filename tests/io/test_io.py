"""Chunked reading: bounded memory, types fixed across blocks, located errors."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import xebench.io.readers as xio
from xebench.errors import DataError
from xebench.io import formats

GROUP_ROWS = 100_000  # rows per Parquet row group
GROUP_BYTES = GROUP_ROWS * 9  # one decoded row group: int8 + float64


def _parquet(path: Path, groups: int) -> Path:
    rng = np.random.default_rng(0)
    with pq.ParquetWriter(path, pa.schema([("y", pa.int8()), ("p", pa.float64())])) as writer:
        for _ in range(groups):
            y = rng.integers(0, 2, GROUP_ROWS).astype(np.int8)
            writer.write_table(pa.table({"y": y, "p": rng.uniform(size=GROUP_ROWS)}))
    return path


def _held_while_reading(path: Path) -> tuple[int, int]:
    """(rows read, most Arrow bytes held beyond those held before, over the chunks)."""
    start = pa.total_allocated_bytes()
    peak, rows = 0, 0
    for chunk in xio.read_chunks(path, ["y", "p"], batch_rows=10_000):
        peak = max(peak, pa.total_allocated_bytes() - start)
        rows += chunk.table.num_rows
    return rows, peak


def test_parquet_memory_does_not_grow_with_the_file(tmp_path: Path) -> None:
    """A file 5 times longer holds no more: memory follows the row group, not the file.

    Arrow's pool is sampled at each chunk, so how far its decoding threads have
    got shows as up to a row group of noise in one reading: the least of three
    readings of each file is compared. A reader that kept decoded pages alive
    (apache/arrow#39808, ~17 bytes per row) would hold 27 MB more for the long
    file's 1.6 M extra rows; the bounds are in row groups, far from that.
    """
    short, long = _parquet(tmp_path / "short.parquet", 4), _parquet(tmp_path / "long.parquet", 20)
    readings = {path: [_held_while_reading(path) for _ in range(3)] for path in (short, long)}
    assert {rows for rows, _ in readings[short]} == {4 * GROUP_ROWS}
    assert {rows for rows, _ in readings[long]} == {20 * GROUP_ROWS}
    held_short = min(peak for _, peak in readings[short])
    held_long = min(peak for _, peak in readings[long])
    assert held_long - held_short < 2 * GROUP_BYTES, (held_short, held_long)
    assert held_long < 8 * GROUP_BYTES, f"Arrow held {held_long / 1e6:.1f} MB while reading"


def test_csv_types_are_fixed_across_blocks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A probability column of 0/1 in the first block must not fail on a later 0.5."""
    monkeypatch.setattr(formats, "_BLOCK_BYTES", 64)
    lines = ["y,p,region"] + [f"{i % 2},{i % 2},eu" for i in range(40)] + ["1,0.5,us"]
    (tmp_path / "d.csv").write_text("\n".join(lines) + "\n")
    chunks = list(xio.read_chunks(tmp_path / "d.csv", ["y", "p"], float_columns=["p"]))
    p = np.concatenate([c.table.column("p").to_numpy() for c in chunks])
    assert p[-1] == 0.5 and p.dtype == np.float64 and len(chunks) > 1
    assert [c.first_row for c in chunks][:2] == [1, 1 + chunks[0].table.num_rows]


def test_csv_conversion_error_in_a_later_block_names_the_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(formats, "_BLOCK_BYTES", 64)
    lines = ["y,p"] + [f"{i % 2},0.{i % 9 + 1}" for i in range(40)] + ["1,oops"]
    (tmp_path / "bad.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError) as caught:
        list(xio.read_chunks(tmp_path / "bad.csv", ["y", "p"], float_columns=["p"]))
    message = str(caught.value)
    assert "bad.csv" in message and "row 41" in message and "'oops'" in message and "'p'" in message


def test_gzip_tsv_and_json_lines_read_the_same(tmp_path: Path) -> None:
    rows = [{"y": i % 2, "p": (i % 10) / 10, "m": [0.25, 0.75]} for i in range(100)]
    with gzip.open(tmp_path / "d.jsonl.gz", "wt") as handle:
        handle.writelines(json.dumps(r) + "\n" for r in rows)
    (tmp_path / "d.tsv").write_text("y\tp\n" + "".join(f"{r['y']}\t{r['p']}\n" for r in rows))
    for name in ("d.jsonl.gz", "d.tsv"):
        table = pa.concat_tables(c.table for c in xio.read_chunks(tmp_path / name, ["y", "p"]))
        assert table.column("p").to_pylist() == [r["p"] for r in rows], name
    chunk = next(xio.read_chunks(tmp_path / "d.jsonl.gz", ["m"]))
    m = xio.probability_array(chunk.table.column("m"), name="m", source="x", first_row=1)
    assert m.shape == (100, 2)


def test_file_schema_reads_types_without_the_data(tmp_path: Path) -> None:
    pq.write_table(pa.table({"p": [0.5], "c": ["a"]}), tmp_path / "d.parquet")
    with gzip.open(tmp_path / "d.jsonl.gz", "wt") as handle:
        handle.write('{"p": 0.5, "c": "a"}\n')
    for name in ("d.parquet", "d.jsonl.gz"):
        schema = xio.file_schema(tmp_path / name)
        assert schema.names == ["p", "c"], name
        assert schema.field("p").type == pa.float64() and schema.field("c").type == pa.string()
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(DataError, match="file is empty"):
        xio.file_schema(tmp_path / "empty.csv")
    (tmp_path / "bad.parquet").write_text("not parquet")
    with pytest.raises(DataError, match="cannot read as Parquet"):
        xio.file_schema(tmp_path / "bad.parquet")
    with pytest.raises(DataError, match="file not found"):
        xio.file_schema(tmp_path / "absent.csv")


def test_probability_array_errors_name_the_row() -> None:
    with pytest.raises(DataError, match=r"row 12 .*\[0.5, 0.5\]"):
        xio.probability_array(
            pa.array([[0.2, 0.3, 0.5], [0.5, 0.5]]), name="m", source="f", first_row=11
        )
    with pytest.raises(DataError, match="row 2 is 'x'"):
        xio.probability_array(pa.array(["0.1", "x"]), name="p", source="f", first_row=1)
    with pytest.raises(DataError, match=r"row 2 is '0\.3'"):
        xio.probability_array(pa.array(["[0.1, 0.9]", "0.3"]), name="m", source="f", first_row=1)
    with pytest.raises(DataError, match="fractions"):
        xio.label_array(pa.array([1.0, 0.5]), name="y", source="f", first_row=1)


def test_dataframes_and_unknown_inputs() -> None:
    import pandas as pd
    import polars as pl

    for frame in (
        pd.DataFrame({"y": [1, 0], "p": [0.3, 0.6]}),
        pl.DataFrame({"y": [1, 0], "p": [0.3, 0.6]}),
    ):
        (chunk,) = xio.read_chunks(frame, ["p"])
        assert chunk.table.column_names == ["p"] and chunk.source.startswith("<")
    with pytest.raises(DataError, match="data"):
        list(xio.read_chunks(42, ["p"]))
    with pytest.raises(DataError, match="available columns: y, p"):
        list(xio.read_chunks(pa.table({"y": [1], "p": [0.5]}), ["q"]))


def test_cohort_codes_keep_dictionary_columns_and_missing_values() -> None:
    array = pa.array(["eu", None, "us", "eu"]).dictionary_encode()
    codes, values = xio.cohort_codes(array, "(missing)")
    assert [values[c] for c in codes] == ["eu", "(missing)", "us", "eu"]
    codes, values = xio.cohort_codes(pa.array([3, 1, None]), "(missing)")
    assert [values[c] for c in codes] == ["3", "1", "(missing)"]
