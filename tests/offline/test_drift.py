"""Offline drift: planted shifts, verdicts, oracles (SciPy, hand counts), files and the CLI."""

from __future__ import annotations

import json
import math
from itertools import pairwise
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import jensenshannon
from scipy.stats import entropy

import xebench as xb
from html_checks import external_references, parse
from xebench.cli.main import main
from xebench.errors import DataError, InvalidInputError
from xebench.offline.drift import (
    DEFAULT_MIN_SAMPLES,
    DEFAULT_SMOOTHING,
    DEFAULT_THRESHOLD,
    DriftReport,
    FeatureDrift,
    compare_histograms,
    drift_files,
    drift_frames,
    rank,
)
from xebench.stats.binning import Bins
from xebench.stats.quantiles import quantiles


def smoothed(share: list[float], smoothing: float = DEFAULT_SMOOTHING) -> np.ndarray:
    values = np.asarray(share) + smoothing
    return values / values.sum()


def shifted_frames(n: int = 20_000, seed: int = 0) -> tuple[dict, dict]:
    """Six numeric features and one categorical; only ``income`` moves (+0.5 sd)."""
    rng = np.random.default_rng(seed)

    def frame(shift: float) -> dict:
        return {
            "age": rng.normal(40, 10, n),
            "income": rng.normal(50 + 10 * shift, 10, n),
            "clicks": rng.poisson(3, n).astype(np.int64),
            "score": rng.uniform(0, 1, n),
            "tenure": rng.exponential(2.0, n),
            "balance": rng.lognormal(0, 1, n),
            "plan": rng.choice(["free", "pro", "team"], n, p=[0.6, 0.3, 0.1]),
        }

    return frame(0.0), frame(0.5)


# --- the main job ------------------------------------------------------------------


def test_planted_shift_ranks_first_and_the_rest_stay_stable() -> None:
    ref, cur = shifted_frames()
    report = drift_frames(ref, cur)
    first = report.features[0]
    assert first.feature == "income"
    assert first.verdict == "drift"
    assert first.js >= DEFAULT_THRESHOLD
    assert report.drifted == ["income"]
    for result in report.features[1:]:
        assert result.verdict == "stable", result
        assert result.js < DEFAULT_THRESHOLD / 5
    # The planted shift's numbers, recomputed independently: NumPy quantile edges, counts
    # by explicit comparisons with the same bin rule ([e0, e1], then (a, b]), and the
    # SciPy divergences with the same additive smoothing.
    edges = np.unique(np.quantile(ref["income"], np.linspace(0, 1, 11)))

    def shares(x: np.ndarray) -> np.ndarray:
        inner = [np.count_nonzero((x >= edges[0]) & (x <= edges[1]))]
        inner += [np.count_nonzero((x > a) & (x <= b)) for a, b in pairwise(edges[1:])]
        below, above = np.count_nonzero(x < edges[0]), np.count_nonzero(x > edges[-1])
        return np.array([below, *inner, above, np.count_nonzero(np.isnan(x))]) / len(x)

    expected_ref, expected_cur = shares(ref["income"]), shares(cur["income"])
    assert first.reference_share == pytest.approx(expected_ref.tolist(), rel=1e-12, abs=0)
    assert first.current_share == pytest.approx(expected_cur.tolist(), rel=1e-12, abs=0)
    assert first.js == pytest.approx(jensenshannon(expected_cur, expected_ref) ** 2, rel=1e-9)
    ps, qs = smoothed(expected_cur.tolist()), smoothed(expected_ref.tolist())
    # The source documents' direction: KL(P_baseline || Q_current); kl_reverse the other.
    assert first.kl == pytest.approx(entropy(qs, ps), rel=1e-9)
    assert first.kl_reverse == pytest.approx(entropy(ps, qs), rel=1e-9)
    assert first.psi == pytest.approx(float(np.sum((ps - qs) * np.log(ps / qs))), rel=1e-9)
    expected_band = "none" if first.psi < 0.1 else "moderate" if first.psi < 0.25 else "significant"
    assert first.to_dict()["psi_band"] == expected_band


def test_identical_distributions_insufficient_below_min_samples_stable_above() -> None:
    rng = np.random.default_rng(1)
    small = drift_frames({"x": rng.normal(size=200)}, {"x": rng.normal(size=200)})
    assert [f.verdict for f in small.features] == ["insufficient"]
    assert small.features[0].js is not None  # numbers are still given, without a verdict
    assert small.drifted == []
    big = drift_frames({"x": rng.normal(size=50_000)}, {"x": rng.normal(size=50_000)})
    assert [f.verdict for f in big.features] == ["stable"]
    assert big.features[0].js < DEFAULT_THRESHOLD / 10
    same = rng.normal(size=5_000)
    exact = drift_frames({"x": same}, {"x": same.copy()})
    assert exact.features[0].js == 0.0 and exact.features[0].psi == 0.0
    assert exact.features[0].kl == 0.0
    # exactly min_samples on each side is enough for a verdict
    edge = drift_frames({"x": same[:500]}, {"x": same[:500]}, min_samples=500)
    assert edge.features[0].verdict == "stable"
    assert drift_frames({"x": same[:499]}, {"x": same[:600]}).features[0].verdict == "insufficient"


def test_divergences_match_scipy_and_hand_formulas() -> None:
    ref, cur = shifted_frames(n=5_000, seed=3)
    for result in drift_frames(ref, cur, min_samples=0).features:
        p, q = np.asarray(result.current_share), np.asarray(result.reference_share)
        assert sum(p) == pytest.approx(1.0, rel=1e-12) and sum(q) == pytest.approx(1.0, rel=1e-12)
        assert result.js == pytest.approx(jensenshannon(p, q) ** 2, rel=1e-9, abs=1e-15)
        ps, qs = smoothed(result.current_share), smoothed(result.reference_share)
        assert result.kl == pytest.approx(entropy(qs, ps), rel=1e-9, abs=1e-15)
        assert result.kl_reverse == pytest.approx(entropy(ps, qs), rel=1e-9, abs=1e-15)
        psi = float(np.sum((ps - qs) * np.log(ps / qs)))
        assert result.psi == pytest.approx(psi, rel=1e-9, abs=1e-15)
        assert 0.0 <= result.js <= math.log(2)


def test_compare_histograms_worked_example() -> None:
    ref = xb.NumericHistogram([0.0, 1.0, 2.0]).update([0.5] * 500 + [1.5] * 500)
    cur = ref.empty_copy().update([0.5] * 250 + [1.5] * 650 + [5.0] * 100)
    result = compare_histograms("x", ref, cur)
    assert result.bins == ["< 0", "[0, 1]", "(1, 2]", "> 2", "NaN"]
    assert result.reference_share == [0.0, 0.5, 0.5, 0.0, 0.0]
    assert result.current_share == [0.0, 0.25, 0.65, 0.1, 0.0]
    m = np.array([0.0, 0.375, 0.575, 0.05, 0.0])
    by_hand = 0.5 * (
        0.25 * math.log(0.25 / 0.375) + 0.65 * math.log(0.65 / 0.575) + 0.1 * math.log(2)
    ) + 0.5 * (0.5 * math.log(0.5 / 0.375) + 0.5 * math.log(0.5 / 0.575))
    assert m.sum() == pytest.approx(1.0, rel=1e-12)
    assert result.js == pytest.approx(by_hand, rel=1e-12)
    assert result.verdict == "drift" and result.kind == "numeric"
    assert result.n_reference == 1000 and result.n_current == 1000
    assert compare_histograms("x", ref, cur, kind="score").kind == "score"
    assert compare_histograms("x", ref, cur, threshold=0.5).verdict == "stable"
    assert compare_histograms("x", ref, cur, min_samples=1001).verdict == "insufficient"


def test_an_empty_side_gives_no_numbers_and_no_verdict() -> None:
    ref = xb.NumericHistogram([0.0, 1.0]).update([0.5] * 10)
    result = compare_histograms("x", ref, ref.empty_copy(), min_samples=0)
    assert (result.kl, result.js, result.psi, result.verdict) == (None, None, None, "insufficient")
    assert result.current_share == [0.0, 0.0, 0.0, 0.0]
    assert json.loads(json.dumps(result.to_dict(), allow_nan=False))["js"] is None


def test_compare_histograms_rejects_bad_arguments() -> None:
    ref = xb.NumericHistogram([0.0, 1.0]).update([0.5])
    with pytest.raises(InvalidInputError, match="same bins"):
        compare_histograms("x", ref, xb.NumericHistogram([0.0, 2.0]))
    with pytest.raises(InvalidInputError, match="must both be NumericHistogram"):
        compare_histograms("x", ref, xb.CategoricalHistogram(["a"]))
    with pytest.raises(InvalidInputError, match="kind"):
        compare_histograms("x", ref, ref.empty_copy(), kind="feature")
    with pytest.raises(InvalidInputError, match="min_samples"):
        compare_histograms("x", ref, ref.empty_copy(), min_samples=-1)
    with pytest.raises(InvalidInputError, match="threshold"):
        compare_histograms("x", ref, ref.empty_copy(), threshold=float("nan"))
    with pytest.raises(InvalidInputError, match="smoothing"):
        compare_histograms("x", ref, ref.empty_copy(), smoothing=-1)


def test_rank_orders_verdicts_then_js_then_name() -> None:
    def fd(name: str, js: float | None, verdict: str) -> FeatureDrift:
        return FeatureDrift(name, "numeric", 1.0, 1.0, js, js, js, verdict, [], [], [])

    ranked = rank(
        [
            fd("z", 0.001, "stable"),
            fd("a", 0.3, "insufficient"),
            fd("b", None, "insufficient"),
            fd("c", 0.02, "drift"),
            fd("d", 0.5, "drift"),
            fd("e", 0.001, "stable"),
        ]
    )
    assert [r.feature for r in ranked] == ["d", "c", "e", "z", "a", "b"]


# --- bins: the same as the histogram classes -------------------------------------------


def reference_path(ref: np.ndarray, cur: np.ndarray, n_bins: int) -> tuple[list, list, list]:
    h = xb.NumericHistogram.from_reference(ref, n_bins=n_bins)
    c = h.empty_copy().update(cur)
    total_r, total_c = h.distribution().sum(), max(c.distribution().sum(), 1.0)
    return h.bin_labels(), (h.distribution() / total_r).tolist(), (c.distribution() / total_c)


numbers = st.one_of(
    st.floats(-1e6, 1e6, allow_nan=False),
    st.sampled_from([0.0, 1.0, -1.0, 2.5, float("nan"), float("inf"), -float("inf")]),
)


@settings(max_examples=150, deadline=None)
@given(
    ref=st.lists(numbers, min_size=1, max_size=60),
    cur=st.lists(numbers, min_size=0, max_size=60),
    n_bins=st.integers(1, 12),
)
def test_numeric_bins_equal_the_numeric_histogram(ref: list, cur: list, n_bins: int) -> None:
    if not any(math.isfinite(v) for v in ref):
        ref = [*ref, 0.0]
    report = drift_frames({"x": ref}, {"x": cur}, n_bins=n_bins, min_samples=0)
    (result,) = report.features
    labels, ref_share, cur_share = reference_path(np.array(ref), np.array(cur), n_bins)
    assert result.bins == labels
    assert result.reference_share == ref_share
    if cur:
        assert result.current_share == cur_share.tolist()
    else:
        assert result.current_share == [0.0] * len(labels) and result.js is None


@pytest.mark.parametrize(
    "name",
    ["normal", "ties", "lognormal", "outlier", "half_zero", "sorted", "cauchy", "with_nan"],
)
def test_fast_quantiles_equal_numpy_on_large_columns(name: str) -> None:
    rng = np.random.default_rng(abs(hash(name)) % 2**32)
    n = 150_000
    values = {
        "normal": rng.normal(size=n),
        "ties": rng.integers(-3, 4, n).astype(float),
        "lognormal": rng.lognormal(0, 3, n),
        "outlier": np.concatenate([rng.uniform(size=n - 1), [1e12]]),
        "half_zero": np.concatenate([np.zeros(n // 2), rng.exponential(size=n // 2)]),
        "sorted": np.sort(rng.normal(size=n)),
        "cauchy": rng.standard_cauchy(n),
        "with_nan": np.where(rng.uniform(size=n) < 0.1, np.nan, rng.normal(size=n)),
    }[name]
    finite = values[np.isfinite(values)]
    for n_bins in (1, 4, 10, 37, 100):
        q = np.linspace(0, 1, n_bins + 1)
        fast = quantiles(finite, q, float(finite.min()), float(finite.max()))
        assert np.array_equal(fast, np.quantile(finite, q))
    cur = rng.permutation(values)[: n // 2] * 1.1
    report = drift_frames({"x": values}, {"x": cur}, n_bins=25)
    labels, ref_share, cur_share = reference_path(values, cur, 25)
    assert report.features[0].bins == labels
    assert report.features[0].reference_share == ref_share
    assert report.features[0].current_share == cur_share.tolist()


def test_many_edges_use_binary_search_with_the_same_counts() -> None:
    rng = np.random.default_rng(5)
    values = np.concatenate([rng.normal(size=10_000), [np.nan, np.inf, -np.inf, -2.0, 2.0]])
    edges = np.linspace(-2.0, 2.0, 60)
    expected = xb.NumericHistogram(edges).update(values).distribution()

    def count(edges: np.ndarray) -> list[int]:
        return Bins("numeric", edges=tuple(edges), include_lowest=True).count(values).tolist()

    assert count(edges) == expected.tolist()
    assert count(edges[:5]) == (
        xb.NumericHistogram(edges[:5]).update(values).distribution().tolist()
    )


# --- categories, NaN, missing ------------------------------------------------------------


def test_categorical_top_k_and_other_equal_the_categorical_histogram() -> None:
    rng = np.random.default_rng(7)
    names = [f"c{i:02d}" for i in range(30)]
    weights = np.arange(30, 0, -1) / np.arange(30, 0, -1).sum()
    ref = rng.choice(names, 3000, p=weights).astype(object)
    ref[::50] = None
    cur = rng.choice([*names, "never-seen"], 2000).astype(object)
    report = drift_frames({"city": ref}, {"city": cur}, top_k=5)
    (result,) = report.features
    assert result.kind == "categorical"
    expected = xb.CategoricalHistogram.from_reference(ref, top_k=5)
    assert result.bins == [*expected.categories, "__other__", "(missing)"]
    assert len(result.bins) == 7
    assert result.reference_share == (expected.distribution() / len(ref)).tolist()
    current = expected.empty_copy().update(cur)
    assert result.current_share == (current.distribution() / len(cur)).tolist()
    # "never-seen" and the 25 rarer cities all land in __other__; nothing is missing now
    assert result.current_share[-1] == 0.0
    other = sum(1 for v in cur if v not in expected.categories) / len(cur)
    assert result.current_share[-2] == pytest.approx(other, rel=1e-12)
    assert result.verdict == "drift"  # uniform over 31 values vs a skewed reference


def test_booleans_are_categories() -> None:
    report = drift_frames({"flag": [True, False] * 300}, {"flag": [True] * 600})
    (result,) = report.features
    assert result.kind == "categorical"
    assert result.bins == ["False", "True", "__other__", "(missing)"]
    assert result.current_share == [0.0, 1.0, 0.0, 0.0]


def test_nan_missing_and_out_of_range_get_their_own_bins() -> None:
    ref = {"x": np.linspace(0, 1, 1000), "c": ["a", "b"] * 500}
    cur = {
        "x": [np.nan] * 100 + [None] * 100 + [5.0] * 100 + [-5.0] * 100 + [0.5] * 600,
        "c": [None] * 300 + ["a"] * 700,
    }
    report = drift_frames(ref, cur)
    by_name = {f.feature: f for f in report.features}
    x = by_name["x"]
    assert x.bins[0] == "< 0" and x.bins[-2] == "> 1" and x.bins[-1] == "NaN"
    assert x.current_share[0] == 0.1 and x.current_share[-2] == 0.1
    assert x.current_share[-1] == 0.2  # NaN and null
    assert x.n_current == 1000
    c = by_name["c"]
    assert c.bins == ["a", "b", "__other__", "(missing)"]
    assert c.current_share == [0.7, 0.0, 0.0, 0.3]
    assert report.drifted == ["x", "c"] or report.drifted == ["c", "x"]


def test_a_reference_without_finite_values_cannot_be_binned() -> None:
    ref = {"x": [np.nan] * 10, "y": [1.0] * 10}
    report = drift_frames(ref, {"x": [1.0] * 10, "y": [1.0] * 10})
    assert [f.feature for f in report.features] == ["y"]
    assert "finite" in report.skipped["x"]
    with pytest.raises(DataError, match=r"'x'.*no finite value"):
        drift_frames(ref, {"x": [1.0] * 10, "y": [1.0] * 10}, features=["x"])


# --- columns, types, options --------------------------------------------------------------


def test_default_compares_common_columns_and_lists_the_others() -> None:
    ref = {"a": [1.0] * 10, "b": [2.0] * 10, "when": pa.array([1] * 10, pa.timestamp("s"))}
    cur = {"a": [1.0] * 10, "c": [3.0] * 10, "when": pa.array([2] * 10, pa.timestamp("s"))}
    report = drift_frames(ref, cur)
    assert [f.feature for f in report.features] == ["a"]
    assert report.skipped["b"] == "only in the reference data"
    assert report.skipped["c"] == "only in the current data"
    assert "timestamp" in report.skipped["when"]
    assert report.to_dict()["skipped"] == report.skipped


def test_named_missing_column_is_an_error_naming_column_and_file(tmp_path: Path) -> None:
    ref, cur = tmp_path / "ref.parquet", tmp_path / "cur.parquet"
    pq.write_table(pa.table({"a": [1.0, 2.0], "b": [1.0, 2.0]}), ref)
    pq.write_table(pa.table({"a": [1.0, 2.0]}), cur)
    with pytest.raises(DataError) as caught:
        drift_files([ref], [cur], features=["a", "b"])
    message = str(caught.value)
    assert "'b'" in message and str(cur) in message and "available columns: a" in message


def test_type_change_is_an_error_for_a_named_feature() -> None:
    with pytest.raises(DataError, match=r"'x'.*double.*string"):
        drift_frames({"x": [1.0, 2.0]}, {"x": ["1", "2"]}, features=["x"])
    report = drift_frames({"x": [1.0, 2.0], "y": [1, 2]}, {"x": ["1", "2"], "y": [1, 2]})
    assert "double" in report.skipped["x"] and [f.feature for f in report.features] == ["y"]


@pytest.mark.parametrize(
    ("options", "argument"),
    [
        ({"n_bins": 0}, "n_bins"),
        ({"top_k": 0}, "top_k"),
        ({"min_samples": -1}, "min_samples"),
        ({"threshold": -0.1}, "threshold"),
        ({"smoothing": float("inf")}, "smoothing"),
        ({"features": "x"}, "features"),
        ({"features": []}, "features"),
    ],
)
def test_bad_options_name_the_argument(options: dict, argument: str) -> None:
    with pytest.raises(InvalidInputError, match=argument):
        drift_frames({"x": [1.0]}, {"x": [1.0]}, **options)


def test_bad_frames_name_the_side() -> None:
    with pytest.raises(InvalidInputError, match="current"):
        drift_frames({"x": [1.0]}, 42)
    with pytest.raises(InvalidInputError, match=r"reference\['y'\].*3 values"):
        drift_frames({"x": [1.0, 2.0], "y": [1, 2, 3]}, {"x": [1.0]})
    with pytest.raises(InvalidInputError, match="reference"):
        drift_files([], ["x.csv"])


def test_report_to_dict_is_json_safe_and_complete() -> None:
    ref, cur = shifted_frames(n=2_000)
    report = drift_frames(ref, cur)
    document = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    for key in ("n_reference", "n_current", "min_samples", "threshold", "drifted", "features"):
        assert key in document
    assert document["n_reference"] == 2_000 and document["min_samples"] == DEFAULT_MIN_SAMPLES
    assert document["drifted"] == report.drifted
    assert [f["feature"] for f in document["features"]] == [f.feature for f in report.features]
    assert isinstance(report, DriftReport)


# --- files ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def drift_data(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("drift")
    ref, cur = shifted_frames(n=4_000, seed=11)
    files: dict = {"root": root, "ref": ref, "cur": cur}
    for side, frame in (("ref", ref), ("cur", cur)):
        table = pa.table(frame)
        pq.write_table(table, root / f"{side}.parquet", row_group_size=1_500)
        pacsv.write_csv(table, root / f"{side}.csv")
        with (root / f"{side}.jsonl").open("w") as handle:
            for row in table.to_pylist():
                handle.write(json.dumps(row) + "\n")
        pq.write_table(table.slice(0, 2_500), root / f"{side}_a.parquet")
        pq.write_table(table.slice(2_500), root / f"{side}_b.parquet")
    return files


def test_files_in_every_format_give_the_in_memory_numbers(drift_data: dict) -> None:
    root = drift_data["root"]
    expected = drift_frames(drift_data["ref"], drift_data["cur"]).to_dict()
    for ref, cur in [
        (["ref.parquet"], ["cur.parquet"]),
        (["ref.csv"], ["cur.csv"]),
        (["ref.jsonl"], ["cur.parquet"]),
        (["ref_a.parquet", "ref_b.parquet"], ["cur_a.parquet", "cur_b.parquet"]),
    ]:
        report = drift_files([root / r for r in ref], [root / c for c in cur]).to_dict()
        assert report["n_reference"] == 4_000 and report["n_current"] == 4_000
        assert report["features"] == expected["features"], (ref, cur)
        assert report["reference_files"] == [str(root / r) for r in ref]


def test_only_the_named_features_are_read(drift_data: dict) -> None:
    root = drift_data["root"]
    report = drift_files([root / "ref.parquet"], [root / "cur.csv"], features=["plan", "income"])
    assert [f.feature for f in report.features] == ["income", "plan"]
    assert report.drifted == ["income"]


def test_progress_sees_every_chunk(drift_data: dict) -> None:
    root = drift_data["root"]
    seen: list = []
    drift_files([root / "ref.parquet"], [root / "cur.parquet"], progress=seen.append)
    assert {c.source for c in seen} == {str(root / "ref.parquet"), str(root / "cur.parquet")}
    assert sum(c.table.num_rows for c in seen) == 8_000
    for name in ("ref.parquet", "cur.parquet"):
        done = [c.bytes_done for c in seen if c.source == str(root / name)]
        assert done == sorted(done) and done[-1] == (root / name).stat().st_size


def test_missing_file_is_named(drift_data: dict) -> None:
    with pytest.raises(DataError, match=r"nope\.parquet: data: file not found"):
        drift_files([drift_data["root"] / "ref.parquet"], [drift_data["root"] / "nope.parquet"])


# --- the command line -------------------------------------------------------------------------


def run(args: list, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_table_json_and_html(drift_data: dict, tmp_path: Path, capsys) -> None:
    root = drift_data["root"]
    json_path, html_path = tmp_path / "drift.json", tmp_path / "drift.html"
    args = ["drift", "--reference", root / "ref.parquet", "--current", root / "cur.parquet"]
    code, out, err = run([*args, "--json", json_path, "--html", html_path], capsys)
    assert code == 0, err
    # table: drifted first, every feature listed with its verdict
    lines = [line for line in out.splitlines() if "│" in line]
    assert "income" in lines[0] and "drift" in lines[0]
    assert sum("stable" in line for line in lines) == 6
    assert "1 of 7 feature(s) drifted" in out
    document = json.loads(json_path.read_text())
    expected = drift_files([root / "ref.parquet"], [root / "cur.parquet"]).to_dict()
    assert document["features"] == expected["features"]
    assert document["drifted"] == ["income"]
    page = html_path.read_text()
    assert page.startswith("<!DOCTYPE html>")
    assert external_references(page) == []
    assert parse(page).loads == []  # no <script src=...>, not even a local file
    assert page.count('<script type="application/json" class="xb-chart">') == 7
    assert page.count("chart-feature-") >= 7
    assert "income" in page


def test_cli_exit_code_is_0_without_drift_too(drift_data: dict, capsys) -> None:
    root = drift_data["root"]
    args = ["drift", "--reference", root / "ref.parquet", "--current", root / "ref_a.parquet"]
    code, out, _ = run([*args, "--feature", "age", "--feature", "plan"], capsys)
    assert code == 0
    assert "0 of 2 feature(s) drifted" in out


def test_cli_options_reach_the_report(drift_data: dict, tmp_path: Path, capsys) -> None:
    root = drift_data["root"]
    out_path = tmp_path / "d.json"
    code, _, err = run(
        [
            "drift", "--reference", root / "ref.csv", "--current", root / "cur.csv",
            "--bins", 4, "--top-k", 2, "--min-samples", 5_000, "--threshold", 0.5,
            "--json", out_path, "--quiet",
        ],
        capsys,
    )  # fmt: skip
    assert code == 0, err
    document = json.loads(out_path.read_text())
    assert (document["n_bins"], document["top_k"]) == (4, 2)
    assert {f["verdict"] for f in document["features"]} == {"insufficient"}
    plan = next(f for f in document["features"] if f["feature"] == "plan")
    assert plan["bins"] == ["free", "pro", "__other__", "(missing)"]
    age = next(f for f in document["features"] if f["feature"] == "age")
    assert len(age["bins"]) == 4 + 3


def test_cli_bad_usage_exits_2_with_one_line(drift_data: dict, capsys) -> None:
    root = drift_data["root"]
    ref, cur = root / "ref.parquet", root / "cur.parquet"
    cases = [
        (["drift"], "--reference FILE"),
        (["drift", "--reference", ref], "--current FILE is needed"),
        (["drift", "--current", cur], "--reference FILE is needed"),
        (["drift", "--reference", ref, "--current", root / "nope.csv"], "file not found"),
        (["drift", "--reference", ref, "--current", cur, "--feature", "zzz"], "'zzz'"),
        (["drift", "--reference", ref, "--current", cur, "--bins", 0], "n_bins"),
        (["drift", "--reference", ref, "--current", cur, "--threshold", -1], "threshold"),
    ]
    for args, message in cases:
        code, out, err = run(args, capsys)
        assert code == 2, (args, out, err)
        assert err.startswith("error: ") and message in err, (args, err)
        assert len(err.strip().splitlines()) == 1, err


def test_cli_help_says_the_exit_code(capsys) -> None:
    code, out, _ = run(["drift", "--help"], capsys)
    assert code == 0
    assert "0 whether or not drift" in " ".join(out.split())
