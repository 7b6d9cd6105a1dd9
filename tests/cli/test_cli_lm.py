"""`xebench lm`: the tables, --json / --markdown / --html, warnings, and exit 2 on bad input."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest

from html_checks import external_references, parse
from xebench.cli.main import main

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "lm" / "two_models.csv"
MODELS = ["--model", "gpt=gpt", "--model", "llama=llama"]
LN2 = math.log(2.0)


def _run(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_the_tables_rank_by_bits_per_byte_and_warn(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys, "lm", FIXTURE, *MODELS, "--cohort", "domain")
    assert code == 0 and err == ""
    assert out.startswith("4 texts, 2 model(s); ranked by bits per byte")
    rows = [line for line in out.splitlines() if line.startswith("│ 1 ") or line.startswith("│ 2 ")]
    assert "gpt" in rows[0] and f"{8.5 / 12 / LN2:.4f}" in rows[0]
    assert "llama" in rows[1] and f"{9.75 / 12 / LN2:.4f}" in rows[1]
    assert f"+{1.25 / 12 / LN2:.4f}" in out  # the paired delta
    assert "Bits per byte by 'domain'" in out
    assert "warning: models 'gpt' and 'llama' have different token counts for 3 of 4 texts" in out


def test_json_markdown_and_html_carry_the_same_numbers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = {kind: tmp_path / f"lm.{kind}" for kind in ("json", "md", "html")}
    code, out, err = _run(
        capsys, "lm", FIXTURE, *MODELS, "--cohort", "language", "--quiet",
        "--json", paths["json"], "--markdown", paths["md"], "--html", paths["html"],
    )  # fmt: skip
    assert code == 0 and out == ""
    assert err.startswith("warning: models 'gpt' and 'llama'")  # --quiet: the warning on stderr
    doc = json.loads(paths["json"].read_text())
    assert doc["models"][0]["bits_per_byte"] == pytest.approx(8.5 / 12 / LN2)
    assert doc["warnings"][0]["kind"] == "tokenizer_mismatch"
    assert list(doc["cohorts"]["language"]) == ["en", "fr"]
    shown = f"{8.5 / 12 / LN2:.4f}"
    markdown = paths["md"].read_text()
    assert markdown.startswith("### xebench lm") and f"| 1 | gpt | 8 | {shown} |" in markdown
    assert "> **Warning**: models 'gpt' and 'llama'" in markdown
    page = paths["html"].read_text()
    parsed = parse(page)
    assert {"ranking", "ranking-table", "comparisons-table", "cohort-0", "warnings"} <= parsed.ids
    assert external_references(page) == [] and parsed.loads == []
    assert shown in page and f"{9.75 / 12 / LN2:.4f}" in page
    spec = json.loads(re.search(r'class="xb-chart">(.*?)</script>', page)[1])
    assert spec["kind"] == "ranking" and spec["series"][0]["y"] == ["gpt", "llama"]
    assert spec["series"][0]["x"][0] == pytest.approx(8.5 / 12 / LN2)


def test_html_escapes_names_from_the_data(tmp_path: Path, capsys) -> None:
    data = tmp_path / "x.csv"
    data.write_text('text_id,m,text,dom\na,[-1.0],x,<b>bold</b>\nb,"[-2.0]",y,<b>bold</b>\n')
    page = tmp_path / "x.html"
    code, _, _ = _run(
        capsys, "lm", data, "--model", "<script>m=m", "--cohort", "dom", "--html", page, "--quiet"
    )
    assert code == 0
    text = page.read_text()
    assert "<b>bold</b>" not in text and "&lt;b&gt;bold&lt;/b&gt;" in text
    assert "<script>m" not in text and "&lt;script&gt;m" in text


def test_one_file_per_model_and_drop(tmp_path: Path, capsys) -> None:
    a = tmp_path / "a.jsonl"
    a.write_text(
        '{"text_id": "1", "token_logprobs": [-1.0], "text": "x"}\n'
        '{"text_id": "2", "token_logprobs": [-1.0], "text": "y"}\n'
        '{"text_id": "3", "token_logprobs": [-1.0], "text": "z"}\n'
    )
    b = tmp_path / "b.csv"
    b.write_text('text_id,token_logprobs,text\n1,"[-2.0]",x\n2,"[-2.5]",y\n')
    code, _, err = _run(capsys, "lm", "--model", a, "--model", f"bee={b}")
    assert code == 2
    assert err.startswith("error: texts: model 'bee' (") and "1 text id(s)" in err and "'3'" in err
    code, out, _ = _run(capsys, "lm", "--model", a, "--model", f"bee={b}", "--on-missing", "drop")
    assert code == 0 and "2 texts, 2 model(s)" in out and "1 text(s) dropped" in out
    assert "│ 1 │ a " in out  # a bare path names the model after the file


def test_reference_and_a_single_model(capsys) -> None:
    code, out, _ = _run(capsys, "lm", FIXTURE, "--model", "gpt=gpt")
    assert code == 0 and "Paired comparisons" not in out
    code, out, _ = _run(capsys, "lm", FIXTURE, *MODELS, "--reference", "llama")
    assert code == 0 and re.search(r"│ gpt\s+│ llama\s+│\s+4 │\s+-0\.1503", out)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["lm", "missing.csv", "--model", "a=a"], "missing.csv"),
        (["lm", "FIXTURE"], "at least one --model"),
        (["lm", "FIXTURE", "--model", "a=gpt", "--model", "a=llama"], "model names must be unique"),
        (["lm", "--model", "a=gpt"], "a=gpt: is not a file, and no data files were given"),
        (["lm", "FIXTURE", "--model", "x=nope"], "no column 'nope'"),
        (["lm", "FIXTURE", "--model", "gpt", "--on-missing", "skip"], "--on-missing must be"),
        (["lm", "FIXTURE", "--model", "gpt", "--confidence", "1.5"], "--confidence must be"),
        (["lm", "FIXTURE", "--model", "gpt", "--format", "xml"], "--format must be one of"),
        (["lm", "FIXTURE", "--model", "gpt", "--reference", "zz"], "must be one of the models"),
    ],
)
def test_bad_usage_is_one_line_and_exit_2(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [str(FIXTURE) if a == "FIXTURE" else a for a in args]
    code, out, err = _run(capsys, *args)
    assert code == 2 and out == ""
    assert err.startswith("error: ") and message in err and len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("", "file is empty"),
        ("text_id,m,text\n", "has no texts for model 'm'"),
        ('text_id,m,text\na,"[-1.0]",x\nb,"[-1.0, NaN]",y\n', "record 2: /m/1: must be a number"),
        ('text_id,m,text\na,"[0.5]",x\n', "record 1: /m/0: must be a number <= 0, got 0.5"),
        ('text_id,m,n_bytes\na,"[-1.0]",0\n', "record 1: /n_bytes: must be > 0"),
        ('text_id,m,text\na,"[-1.0]",x\na,"[-1.0]",x\n', "record 2: /text_id: text id repeats"),
        ('text_id,m\na,"[-1.0]"\n', "have no byte count"),
    ],
)
def test_bad_input_names_the_file_row_and_field(
    tmp_path: Path, content: str, expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "bad.csv"
    data.write_text(content)
    code, _, err = _run(capsys, "lm", data, "--model", "m")
    assert code == 2 and expected in err and len(err.strip().splitlines()) == 1
    if "record" in expected:
        assert err.startswith(f"error: {data}: record")


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".jsonl"])
def test_columns_under_other_names(tmp_path: Path, capsys, suffix: str) -> None:
    """The contract's --text-id / --bytes / --text: a table whose columns have its own names."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    table = pacsv.read_csv(FIXTURE)
    names = {"text_id": "doc", "text": "body", "n_bytes": "size"}
    renamed = table.rename_columns([names.get(n, n) for n in table.column_names])
    if "size" not in renamed.column_names:  # the fixture gives text: sizes from it
        body = renamed["body"].to_pylist()
        renamed = renamed.append_column("size", pa.array([len(t.encode()) for t in body]))
        renamed = renamed.drop_columns(["body"])
    path = tmp_path / f"own{suffix}"
    if suffix == ".parquet":
        lists = {
            m: pa.array([json.loads(v) for v in renamed[m].to_pylist()]) for m in ("gpt", "llama")
        }
        for m, values in lists.items():
            renamed = renamed.set_column(renamed.column_names.index(m), m, values)
        pq.write_table(renamed, path)
    elif suffix == ".jsonl":
        rows = renamed.to_pylist()
        path.write_text("".join(json.dumps({**r, "gpt": json.loads(r["gpt"]),
                                            "llama": json.loads(r["llama"])}) + "\n"
                                for r in rows))  # fmt: skip
    else:
        pacsv.write_csv(renamed, path)
    expected = tmp_path / "expected.json"
    got = tmp_path / "got.json"
    assert _run(capsys, "lm", FIXTURE, *MODELS, "--quiet", "--json", expected)[0] == 0
    code, _, err = _run(capsys, "lm", path, *MODELS, "--text-id", "doc", "--bytes", "size",
                        "--quiet", "--json", got)  # fmt: skip
    assert code == 0, err
    strip = ("inputs", "generated_at")
    want = {k: v for k, v in json.loads(expected.read_text()).items() if k not in strip}
    have = {k: v for k, v in json.loads(got.read_text()).items() if k not in strip}
    assert have == want
    model = have["models"][0]
    assert model["perplexity"] == model["pooled_perplexity"]  # the contract's name
    code, _, err = _run(capsys, "lm", path, *MODELS, "--text-id", "nope", "--bytes", "size")
    assert code == 2 and "nope" in err
