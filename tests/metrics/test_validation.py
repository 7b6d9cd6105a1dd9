"""Input validation of the metrics kernel (xebench._validation via the public functions).

The contract (docs/contracts.md): bad input raises ``ValueError`` -- here always
:class:`xebench.InvalidInputError` -- whose message names the argument and, for a
bad element, the first offending row and its value. Errors also carry those as
fields (``argument``, ``row``, ``value``) for the CLI and the HTTP service.
"""

from __future__ import annotations

import math
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import xebench as xb

NAN, INF = math.nan, math.inf

Y2 = [0, 1, 1]
P1 = [0.2, 0.7, 0.6]
P2 = [[0.8, 0.2], [0.3, 0.7], [0.4, 0.6]]
P3 = [[0.5, 0.25, 0.25], [0.2, 0.3, 0.5], [0.1, 0.1, 0.8]]
Y3 = [0, 2, 1]

# Every public function that takes (y_true, y_prob), with the keywords it accepts.
PREDICTION_METRICS: list[Callable[..., Any]] = [
    xb.log_loss,
    xb.nll,
    xb.perplexity,
    xb.brier_score,
    xb.calibration_error,
    xb.reliability_curve,
    xb.accuracy,
    xb.clipped_count,
    xb.skill_score,
]
WEIGHTED_METRICS = [
    xb.log_loss,
    xb.perplexity,
    xb.brier_score,
    xb.calibration_error,
    xb.reliability_curve,
    xb.accuracy,
    xb.skill_score,
]


def case(
    func: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    argument: str,
    fragments: tuple[str, ...],
    id: str,
) -> Any:
    return pytest.param(func, args, kwargs, argument, fragments, id=id)


BAD_INPUT = [
    # --- y_prob values ------------------------------------------------------------
    case(xb.log_loss, (Y2, [0.2, NAN, 0.6]), {}, "y_prob", ("finite", "row 2", "nan"), "nan-1d"),
    case(xb.log_loss, (Y2, [0.2, 0.7, INF]), {}, "y_prob", ("finite", "row 3", "inf"), "inf-1d"),
    case(xb.log_loss, (Y2, [-INF, 0.7, 0.6]), {}, "y_prob", ("row 1", "-inf"), "neg-inf-1d"),
    case(
        xb.log_loss,
        (Y2, [[0.8, 0.2], [0.3, 0.7], [NAN, 0.6]]),
        {},
        "y_prob",
        ("finite", "row 3", "column 0", "nan"),
        "nan-2d",
    ),
    case(
        xb.brier_score,
        (Y3, [[0.5, 0.25, 0.25], [0.2, INF, 0.5], [0.1, 0.1, 0.8]]),
        {},
        "y_prob",
        ("row 2", "column 1", "inf"),
        "inf-2d",
    ),
    case(xb.log_loss, (Y2, [0.2, -0.1, 0.6]), {}, "y_prob", ("[0, 1]", "row 2", "-0.1"), "neg"),
    case(xb.log_loss, (Y2, [0.2, 0.7, 1.3]), {}, "y_prob", ("[0, 1]", "row 3", "1.3"), "gt1"),
    case(
        xb.accuracy,
        (Y3, [[0.5, 0.25, 0.25], [0.2, 1.3, -0.5], [0.1, 0.1, 0.8]]),
        {},
        "y_prob",
        ("row 2", "column 1", "1.3"),
        "gt1-2d",
    ),
    case(
        xb.log_loss,
        (Y2, [[0.8, 0.2], [0.25, 0.5], [0.4, 0.6]]),
        {},
        "y_prob",
        ("sum to 1", "row 2", "sum", "0.75", "renormalize=True"),
        "row-sum",
    ),
    case(
        xb.calibration_error,
        (Y3, [[0.5, 0.25, 0.25], [0.2, 0.3, 0.5], [0.5, 0.5, 0.5]]),
        {},
        "y_prob",
        ("sum to 1", "row 3", "1.5"),
        "row-sum-over",
    ),
    case(
        xb.log_loss,
        (Y2, [[0.8, 0.2], [0.0, 0.0], [0.4, 0.6]]),
        {"renormalize": True},
        "y_prob",
        ("renormalized", "row 2"),
        "renormalize-zero-row",
    ),
    case(xb.log_loss, ([0, 1], [0.5, "abc"]), {}, "y_prob", ("numbers", "row 2", "'abc'"), "str"),
    # NumPy reads None as NaN: reported as a non-finite probability.
    case(xb.log_loss, ([0, 1], [0.5, None]), {}, "y_prob", ("finite", "row 2"), "none"),
    case(
        xb.log_loss,
        ([0, 1], [[0.5, 0.5], [1.0]]),
        {},
        "y_prob",
        ("rectangular",),
        "ragged",
    ),
    case(
        xb.log_loss,
        ([0, 1], np.full((2, 2, 2), 0.5)),
        {},
        "y_prob",
        ("1-D", "2-D", "3-D"),
        "3d",
    ),
    case(xb.log_loss, ([0, 1], [[1.0], [1.0]]), {}, "y_prob", ("2 columns",), "one-column"),
    case(xb.log_loss, ([], []), {}, "y_prob", ("empty",), "empty"),
    case(xb.log_loss, ([], np.empty((0, 3))), {}, "y_prob", ("empty",), "empty-2d"),
    case(xb.log_loss, ([], [0.5]), {}, "y_true", ("empty",), "empty-y-true"),
    # --- y_true and labels --------------------------------------------------------
    case(
        xb.log_loss,
        (["a", "z", "b"], [[0.5, 0.5]] * 3),
        {"labels": ["a", "b"]},
        "y_true",
        ("one of ['a', 'b']", "row 2", "'z'"),
        "label-not-in-labels",
    ),
    case(
        xb.prior_log_loss,
        ([2, 0, 7],),
        {"labels": [0, 1, 2]},
        "y_true",
        ("row 3", "7"),
        "prior-label-not-in-labels",
    ),
    case(
        xb.log_loss,
        (["a", "b", "c"], P1),
        {},
        "y_true",
        ("3 distinct labels", "2 classes", "labels="),
        "too-many-labels-binary",
    ),
    case(
        xb.log_loss,
        (["a", "b", "c", "d"], [*P3, [0.2, 0.2, 0.6]]),
        {},
        "y_true",
        ("4 distinct labels", "3 classes"),
        "too-many-labels-multiclass",
    ),
    case(
        xb.log_loss,
        (Y3, P3),
        {"labels": [0, 1]},
        "labels",
        ("one label per class", "3 classes"),
        "too-few-labels",
    ),
    case(
        xb.log_loss,
        (["a", "b"], [0.3, 0.6]),
        {"labels": ["a", "b", "a"]},
        "labels",
        ("unique", "row 3", "'a'"),
        "duplicate-labels",
    ),
    case(xb.log_loss, (Y2, P1), {"labels": []}, "labels", ("non-empty",), "empty-labels"),
    case(
        xb.log_loss,
        (np.zeros((3, 2)), P1),
        {},
        "y_true",
        ("1-D", "(3, 2)"),
        "y-true-2d",
    ),
    case(
        xb.log_loss,
        (np.array([1, "a", 0], dtype=object), P1),
        {},
        "y_true",
        ("one comparable type",),
        "mixed-types-object-array",
    ),
    # --- lengths --------------------------------------------------------------------
    case(xb.log_loss, (Y2, [0.2, 0.7]), {}, "y_prob", ("y_true", "3 rows", "2"), "len-1d"),
    case(xb.brier_score, (Y3, P3[:2]), {}, "y_prob", ("y_true", "3 rows"), "len-2d"),
    case(
        xb.log_loss,
        (Y2, P1),
        {"sample_weight": [1.0, 2.0]},
        "sample_weight",
        ("3 rows", "2"),
        "weight-len",
    ),
    # --- sample weights ---------------------------------------------------------------
    case(
        xb.log_loss,
        (Y2, P1),
        {"sample_weight": [1.0, -2.0, 1.0]},
        "sample_weight",
        (">= 0", "row 2", "-2.0"),
        "weight-negative",
    ),
    case(
        xb.brier_score,
        (Y2, P1),
        {"sample_weight": [1.0, 1.0, NAN]},
        "sample_weight",
        ("finite", "row 3", "nan"),
        "weight-nan",
    ),
    case(
        xb.accuracy,
        (Y2, P1),
        {"sample_weight": [INF, 1.0, 1.0]},
        "sample_weight",
        ("finite", "row 1", "inf"),
        "weight-inf",
    ),
    case(
        xb.log_loss,
        (Y2, P1),
        {"sample_weight": [0, 0, 0]},
        "sample_weight",
        ("sum to 0",),
        "weight-all-zero",
    ),
    case(
        xb.prior_log_loss,
        (Y2,),
        {"sample_weight": [0.0, 0.0, 0.0]},
        "sample_weight",
        ("sum to 0",),
        "prior-weight-all-zero",
    ),
    case(
        xb.log_loss,
        (Y2, P1),
        {"sample_weight": [[1.0, 1.0, 1.0]]},
        "sample_weight",
        ("1-D",),
        "weight-2d",
    ),
    case(
        xb.log_loss,
        (Y2, P1),
        {"sample_weight": [1.0, "x", 1.0]},
        "sample_weight",
        ("numbers", "row 2", "'x'"),
        "weight-str",
    ),
    # --- scalar parameters ------------------------------------------------------------
    case(xb.log_loss, (Y2, P1), {"base": 3}, "base", ("'e', 2 or 10", "3"), "base-3"),
    case(xb.log_loss, (Y2, P1), {"base": "ten"}, "base", ("'ten'",), "base-ten"),
    case(xb.log_loss, (Y2, P1), {"base": True}, "base", ("True",), "base-true"),
    case(xb.nll, (Y2, P1), {"base": 1}, "base", ("1",), "nll-base-1"),
    case(xb.entropy, ([0.5, 0.5],), {"base": 3}, "base", ("3",), "entropy-base"),
    case(xb.kl_divergence, ([1], [1]), {"base": "2"}, "base", ("'2'",), "kl-base-str"),
    case(xb.js_divergence, ([1], [1]), {"base": math.e}, "base", ("2.718",), "js-base-float-e"),
    case(xb.cross_entropy, ([1], [1]), {"base": None}, "base", ("'e', 2 or 10",), "ce-base-none"),
    case(xb.prior_log_loss, (Y2,), {"base": 0}, "base", ("0",), "prior-base-0"),
    case(xb.calibration_error, (Y2, P1), {"n_bins": 0}, "n_bins", (">= 1", "0"), "n_bins-0"),
    case(xb.calibration_error, (Y2, P1), {"n_bins": -1}, "n_bins", ("-1",), "n_bins-neg"),
    case(xb.calibration_error, (Y2, P1), {"n_bins": 2.5}, "n_bins", ("2.5",), "n_bins-float"),
    case(xb.calibration_error, (Y2, P1), {"n_bins": True}, "n_bins", ("True",), "n_bins-bool"),
    case(xb.reliability_curve, (Y2, P1), {"n_bins": 0}, "n_bins", ("0",), "curve-n_bins-0"),
    case(xb.reliability_curve, (Y2, P1), {"n_bins": "10"}, "n_bins", ("'10'",), "n_bins-str"),
    case(
        xb.calibration_error,
        (Y2, P1),
        {"strategy": "linear"},
        "strategy",
        ("'uniform'", "'quantile'", "'linear'"),
        "strategy",
    ),
    case(
        xb.reliability_curve, (Y2, P1), {"strategy": None}, "strategy", ("'uniform'",), "strat-none"
    ),
    case(xb.calibration_error, (Y2, P1), {"norm": "l2"}, "norm", ("'l1'", "'max'"), "norm"),
    case(xb.log_loss, (Y2, P1), {"eps": -1}, "eps", ("[0, 0.5)", "-1"), "eps-neg"),
    case(xb.log_loss, (Y2, P1), {"eps": 0.5}, "eps", ("[0, 0.5)", "0.5"), "eps-half"),
    case(xb.log_loss, (Y2, P1), {"eps": NAN}, "eps", ("nan",), "eps-nan"),
    case(xb.log_loss, (Y2, P1), {"eps": "1e-15"}, "eps", ("'1e-15'",), "eps-str"),
    case(xb.nll, (Y2, P1), {"eps": 0.7}, "eps", ("0.7",), "nll-eps"),
    case(xb.clipped_count, (Y2, P1), {"eps": -1e-3}, "eps", ("-0.001",), "clipped-eps"),
    case(xb.cross_entropy, ([1], [1]), {"eps": 1.0}, "eps", ("1.0",), "ce-eps"),
    case(xb.skill_score, (Y2, P1), {"eps": 0.5}, "eps", ("0.5",), "skill-eps"),
    case(xb.kl_divergence, ([1], [1]), {"smoothing": -1}, "smoothing", (">= 0", "-1"), "sm-neg"),
    case(xb.kl_divergence, ([1], [1]), {"smoothing": NAN}, "smoothing", ("nan",), "sm-nan"),
    case(xb.kl_divergence, ([1], [1]), {"smoothing": INF}, "smoothing", ("inf",), "sm-inf"),
    case(xb.psi, ([1], [1]), {"smoothing": -1e-4}, "smoothing", ("-0.0001",), "psi-sm-neg"),
    case(xb.psi, ([1], [1]), {"smoothing": "a"}, "smoothing", ("'a'",), "psi-sm-str"),
    # --- distributions --------------------------------------------------------------
    case(
        xb.kl_divergence,
        ([0.5, 0.5], [1.0, 0.0]),
        {"smoothing": 0},
        "q",
        ("0 where p is not", "smoothing > 0", "bin 1"),
        "kl-unsupported",
    ),
    case(
        xb.kl_divergence,
        ([[0.5, 0.5], [0.2, 0.8]], [[0.5, 0.5], [1.0, 0.0]]),
        {"smoothing": 0},
        "q",
        ("row 2", "bin 1"),
        "kl-unsupported-2d",
    ),
    case(
        xb.psi,
        ([0.5, 0.5, 0.0], [0.4, 0.4, 0.2]),
        {"smoothing": 0},
        "expected",
        ("0 where actual is not", "bin 2"),
        "psi-unsupported-expected",
    ),
    case(
        xb.psi,
        ([0.4, 0.4, 0.2], [0.0, 0.5, 0.5]),
        {"smoothing": 0},
        "actual",
        ("0 where expected is not", "bin 0"),
        "psi-unsupported-actual",
    ),
    case(xb.kl_divergence, ([0.5, 0.5], [0.2, 0.3, 0.5]), {}, "q", ("shape",), "kl-shape"),
    case(xb.js_divergence, ([[0.5, 0.5]], [0.5, 0.5]), {}, "q", ("shape",), "js-shape"),
    case(xb.psi, ([1, 2, 3], [1, 2]), {}, "actual", ("shape", "(3,)"), "psi-shape"),
    case(
        xb.cross_entropy,
        ([[0.5, 0.5]], [[0.2, 0.3, 0.5]]),
        {},
        "q_pred",
        ("shape",),
        "ce-shape",
    ),
    case(xb.entropy, ([1, -1, 2],), {}, "p", (">= 0", "bin 1", "-1.0"), "entropy-negative"),
    case(
        xb.entropy,
        ([[1, 1], [2, -3]],),
        {},
        "p",
        ("row 2", "column 1", "-3.0"),
        "entropy-negative-2d",
    ),
    case(xb.entropy, ([1, NAN],), {}, "p", ("finite", "bin 1", "nan"), "entropy-nan"),
    case(xb.entropy, ([INF, 1],), {}, "p", ("bin 0", "inf"), "entropy-inf"),
    case(xb.entropy, ([0, 0],), {}, "p", ("positive total",), "entropy-zero-total"),
    case(xb.entropy, ([],), {}, "p", ("empty",), "entropy-empty"),
    case(xb.entropy, ([1, "abc"],), {}, "p", ("numbers", "'abc'"), "entropy-str"),
    case(xb.entropy, (np.ones((2, 2, 2)),), {}, "p", ("1-D",), "entropy-3d"),
    case(xb.kl_divergence, ([1, -2], [1, 1]), {}, "p", ("bin 1", "-2.0"), "kl-neg-p"),
    case(xb.kl_divergence, ([1, 1], [-1, 1]), {}, "q", ("bin 0", "-1.0"), "kl-neg-q"),
    case(xb.js_divergence, ([1, 1], [1, -0.5]), {}, "q", ("bin 1", "-0.5"), "js-neg-q"),
    case(xb.js_divergence, ([-1, 1], [1, 1]), {}, "p", ("bin 0",), "js-neg-p"),
    case(xb.psi, ([3, -1], [1, 1]), {}, "expected", ("bin 1", "-1.0"), "psi-neg-expected"),
    case(xb.psi, ([3, 1], [1, -7]), {}, "actual", ("bin 1", "-7.0"), "psi-neg-actual"),
    case(xb.kl_divergence, ([[1, 1], [0, 0]], [[1, 1], [1, 1]]), {}, "p", ("row 2",), "kl-0"),
    # --- soft labels --------------------------------------------------------------------
    case(
        xb.cross_entropy,
        ([[0.5, 0.4]], [[0.5, 0.5]]),
        {},
        "p_true",
        ("sum to 1", "row 1", "0.9"),
        "ce-p-true-sum",
    ),
    case(
        xb.cross_entropy,
        ([[0.5, 0.5]], [[0.5, NAN]]),
        {},
        "q_pred",
        ("finite", "row 1", "column 1"),
        "ce-q-nan",
    ),
    case(
        xb.cross_entropy,
        ([[0.5, 0.5], [1, 0]], [[0.5, 0.5], [0.5, 0.5]]),
        {"sample_weight": [1.0, -1.0]},
        "sample_weight",
        ("row 2",),
        "ce-weight",
    ),
]


@pytest.mark.parametrize(("func", "args", "kwargs", "argument", "fragments"), BAD_INPUT)
def test_bad_input_raises_a_named_error(
    func: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    argument: str,
    fragments: tuple[str, ...],
) -> None:
    with pytest.raises(ValueError) as info:
        func(*args, **kwargs)
    err = info.value
    assert isinstance(err, xb.InvalidInputError)
    assert isinstance(err, xb.XebenchError)
    assert err.argument == argument
    message = str(err)
    assert message.startswith(f"{argument}: ")
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"


# --- structured fields: the first offending row and its value ----------------------


@pytest.mark.parametrize(
    ("y_true", "y_prob", "row", "is_bad"),
    [
        pytest.param(Y2, [0.2, NAN, 0.6], 1, math.isnan, id="nan-1d"),
        pytest.param(Y2, [0.2, 0.7, INF], 2, lambda v: v == INF, id="inf-1d"),
        pytest.param(Y2, [-INF, 0.7, NAN], 0, lambda v: v == -INF, id="neg-inf-first"),
        pytest.param(
            Y2, [[0.8, 0.2], [NAN, NAN], [INF, 0.6]], 1, math.isnan, id="nan-2d-first-row"
        ),
        pytest.param(
            Y3,
            [[0.5, 0.25, 0.25], [0.2, 0.3, 0.5], [0.1, -INF, 0.8]],
            2,
            lambda v: v == -INF,
            id="neg-inf-2d",
        ),
    ],
)
@pytest.mark.parametrize("func", PREDICTION_METRICS, ids=lambda f: f.__name__)
def test_non_finite_probability_fields(
    func: Callable[..., Any],
    y_true: list[int],
    y_prob: list[Any],
    row: int,
    is_bad: Callable[[float], bool],
) -> None:
    with pytest.raises(xb.InvalidInputError) as info:
        func(y_true, y_prob)
    err = info.value
    assert err.argument == "y_prob"
    assert err.row == row + 1  # rows count from 1: y_prob[row] is row row + 1
    assert is_bad(err.value)
    assert f"row {row + 1}" in str(err)


@pytest.mark.parametrize("func", PREDICTION_METRICS, ids=lambda f: f.__name__)
@pytest.mark.parametrize(("bad", "row"), [(-0.1, 1), (1.3, 2), (1.0000001, 0)])
def test_out_of_range_probability_fields(func: Callable[..., Any], bad: float, row: int) -> None:
    y_prob = [0.2, 0.7, 0.6]
    y_prob[row] = bad
    y_prob.append(2.0)  # a later offender: only the first is reported
    with pytest.raises(xb.InvalidInputError) as info:
        func([0, 1, 1, 0], y_prob)
    err = info.value
    assert (err.argument, err.row, err.value) == ("y_prob", row + 1, bad)
    assert f"row {row + 1} is {bad!r}" in str(err)


def test_first_offender_is_reported_across_chunks() -> None:
    n = 300_000
    y_prob = np.full(n, 0.5)
    y_prob[[170_001, 250_000]] = [1.5, NAN]
    with pytest.raises(xb.InvalidInputError) as info:
        xb.log_loss(np.zeros(n, dtype=int), y_prob)
    assert (info.value.row, info.value.value) == (170_002, 1.5)

    rows = np.full((n, 3), 1 / 3)
    rows[150_000, 1], rows[260_000, 2] = 1.5, -0.5
    with pytest.raises(xb.InvalidInputError) as info:
        xb.log_loss(np.zeros(n, dtype=int), rows)
    assert (info.value.row, info.value.value) == (150_001, 1.5)
    assert "column 1" in str(info.value)

    rows = np.full((n, 3), 1 / 3)
    rows[[123_456, 200_000], 0] = 0.5  # the sum of those rows is 1 1/6
    with pytest.raises(xb.InvalidInputError) as info:
        xb.log_loss(np.zeros(n, dtype=int), rows)
    assert info.value.row == 123_457
    assert info.value.value == pytest.approx(0.5 + 2 / 3)


def test_label_error_fields() -> None:
    with pytest.raises(xb.InvalidInputError) as info:
        xb.brier_score(["cat", "dog", "emu", "yak"], [[0.5, 0.5]] * 4, labels=["cat", "dog"])
    assert (info.value.argument, info.value.row, info.value.value) == ("y_true", 3, "emu")


def test_weight_error_fields() -> None:
    with pytest.raises(xb.InvalidInputError) as info:
        xb.log_loss(Y2, P1, sample_weight=[1.0, 2.0, -0.5])
    assert (info.value.argument, info.value.row, info.value.value) == ("sample_weight", 3, -0.5)


def test_row_sum_error_fields() -> None:
    with pytest.raises(xb.InvalidInputError) as info:
        xb.log_loss(Y3, [[0.5, 0.25, 0.25], [0.2, 0.3, 0.5], [0.25, 0.25, 0.25]])
    err = info.value
    assert (err.argument, err.row, err.value) == ("y_prob", 3, 0.75)


def test_row_sum_tolerance_is_1e_6() -> None:
    inside = [[0.5 + 9e-7, 0.5], [0.3, 0.7 - 9e-7]]
    assert xb.log_loss([0, 1], inside) > 0
    outside = [[0.5 + 2e-6, 0.5], [0.3, 0.7]]
    with pytest.raises(xb.InvalidInputError) as info:
        xb.log_loss([0, 1], outside)
    assert info.value.row == 1


# --- renormalize -------------------------------------------------------------------


@pytest.mark.parametrize(
    "func",
    [xb.log_loss, xb.brier_score, xb.accuracy, xb.calibration_error, xb.skill_score],
    ids=lambda f: f.__name__,
)
def test_renormalize_equals_manually_normalised_rows(func: Callable[..., Any]) -> None:
    rng = np.random.default_rng(3)
    n, k = 200, 4
    raw = rng.uniform(0.01, 0.5, size=(n, k))  # rows sum to about 1, never within 1e-6
    y = rng.integers(0, k, size=n)
    with pytest.raises(xb.InvalidInputError):
        func(y, raw)
    normalised = raw / raw.sum(axis=1, keepdims=True)
    assert func(y, raw, renormalize=True) == pytest.approx(func(y, normalised), rel=1e-12)


def test_renormalize_by_hand() -> None:
    # rows [2, 6] / 8 and [1, 1] / 2: -(ln .75 + ln .5) / 2
    expected = -(math.log(0.75) + math.log(0.5)) / 2
    actual = xb.log_loss([1, 0], [[0.2, 0.6], [0.5, 0.5]], renormalize=True)
    assert actual == pytest.approx(expected, rel=1e-12)


def test_renormalize_applies_to_soft_labels() -> None:
    expected = -(0.25 * math.log(0.5) + 0.75 * math.log(0.5))
    actual = xb.cross_entropy([[0.1, 0.3]], [[0.4, 0.4]], renormalize=True)
    assert actual == pytest.approx(expected, rel=1e-12)


# --- accepted inputs ----------------------------------------------------------------


def test_float32_binary_input() -> None:
    rng = np.random.default_rng(4)
    p32 = rng.uniform(0.01, 0.99, size=1000).astype(np.float32)
    y = rng.integers(0, 2, size=1000)
    as64 = p32.astype(np.float64)
    expected = -np.mean(np.where(y == 1, np.log(as64), np.log(1.0 - as64)))
    assert xb.log_loss(y, p32) == pytest.approx(expected, rel=1e-9)
    assert xb.brier_score(y, p32) == pytest.approx(np.mean((as64 - y) ** 2), rel=1e-9)


def test_float32_softmax_with_100_classes_is_accepted() -> None:
    rng = np.random.default_rng(5)
    n, k = 2000, 100
    logits = rng.normal(0.0, 3.0, size=(n, k)).astype(np.float32)
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    prob = exp / exp.sum(axis=1, keepdims=True)
    assert prob.dtype == np.float32
    off = np.abs(prob.sum(axis=1, dtype=np.float64) - 1.0)
    assert off.max() < k * np.finfo(np.float32).eps  # within float32 rounding
    y = rng.integers(0, k, size=n)
    as64 = prob.astype(np.float64)
    expected = -np.mean(np.log(np.maximum(as64[np.arange(n), y], 1e-15)))
    assert xb.log_loss(y, prob) == pytest.approx(expected, rel=1e-9)
    assert xb.accuracy(y, prob) == pytest.approx(np.mean(as64.argmax(axis=1) == y))


def test_column_vector_y_true_is_accepted() -> None:
    expected = -(math.log(0.8) + math.log(0.7)) / 2
    assert xb.log_loss(np.array([[1], [0]]), [0.8, 0.3]) == pytest.approx(expected, rel=1e-12)
    assert xb.prior_log_loss(np.array([[1], [0]])) == pytest.approx(math.log(2), rel=1e-12)


def test_lists_tuples_and_ints_are_accepted() -> None:
    expected = -(math.log(0.5) + math.log(0.25)) / 2
    assert xb.log_loss((1, 0), (0.5, 0.75)) == pytest.approx(expected, rel=1e-12)
    assert xb.log_loss([1, 0], [[0, 1], [1, 0]]) == pytest.approx(0.0, abs=1e-14)
    assert xb.entropy((1, 1)) == pytest.approx(math.log(2), rel=1e-12)


def test_the_kernel_imports_neither_pandas_nor_pyarrow() -> None:
    """``import xebench`` stays light: DataFrames and Arrow load only when used."""
    code = (
        "import sys, xebench as xb; xb.log_loss([1, 0], [0.8, 0.3]); xb.ScoreStats();"
        "print(sorted(m for m in ('pandas', 'polars', 'pyarrow', 'rich', 'jinja2') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_float_labels_equal_to_integers() -> None:
    expected = -(math.log(0.8) + math.log(0.7)) / 2
    assert xb.log_loss([1.0, 0.0], [0.8, 0.3]) == pytest.approx(expected, rel=1e-12)


# --- mixed and malformed labels (the contract: an InvalidInputError naming y_true) --


@pytest.mark.parametrize(
    ("y_true", "y_prob"),
    [
        pytest.param([1, "a"], [0.2, 0.7], id="list-int-str-binary"),
        pytest.param([10, 9, "a"], [[0.2, 0.3, 0.5]] * 3, id="list-int-str-multiclass"),
        pytest.param(np.array([1, "a"], dtype=object), [0.2, 0.7], id="object-array"),
    ],
)
def test_ints_mixed_with_strings_in_y_true_are_rejected(y_true: Any, y_prob: Any) -> None:
    with pytest.raises(xb.InvalidInputError) as info:
        xb.log_loss(y_true, y_prob)
    assert info.value.argument == "y_true"


def test_ragged_y_true_is_an_invalid_input_error() -> None:
    with pytest.raises(xb.InvalidInputError) as info:
        xb.log_loss([[0], [1, 0]], [0.2, 0.7])
    assert info.value.argument == "y_true"


def test_distribution_with_no_bins_is_an_invalid_input_error() -> None:
    with pytest.raises(xb.InvalidInputError) as info:
        xb.entropy(np.empty((2, 0)))
    assert info.value.argument == "p"


# --- exceptions ---------------------------------------------------------------------


def test_invalid_input_error_is_a_value_error_and_a_xebench_error() -> None:
    assert issubclass(xb.InvalidInputError, ValueError)
    assert issubclass(xb.InvalidInputError, xb.XebenchError)
    err = xb.InvalidInputError("y_prob", "values must be in [0, 1]", row=np.intp(3), value=1.3)
    assert (err.argument, err.rule, err.row, err.value) == (
        "y_prob",
        "values must be in [0, 1]",
        3,
        1.3,
    )
    assert str(err) == "y_prob: values must be in [0, 1]; row 3 is 1.3"


def test_numpy_scalar_values_are_reported_as_python_scalars() -> None:
    with pytest.raises(xb.InvalidInputError) as info:
        xb.log_loss(Y2, np.array([0.2, 1.5, 0.6]))
    assert type(info.value.value) is float
    assert "row 2 is 1.5" in str(info.value)
