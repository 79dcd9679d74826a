"""scripts/dq/drift_tests.py and the data-quality check's Robust drift verdict built on it.

The statistical functions against exact known values and scipy (pinned in requirements.lock), then
the engine (scripts/data_quality.py) on crafted and real data: symmetry, the inconclusive path,
the effect-size floor, the multiple-testing correction, and abalone end to end.
"""

import importlib
import math
from statistics import NormalDist

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from tests.conftest import shared_path
from tests.test_data_quality import (
    _halves,
    dq,
    dq_checks,
    read_json,
    run_baseline,
    run_check,
    violation_set,
)

# As data_quality.py imports them (tests.test_data_quality put scripts/ on sys.path).
dt = importlib.import_module("dq.drift_tests")
dq_settings = importlib.import_module("dq.settings")

# ----------------------------------------------------------------------------- functions


def test_normal_survival_matches_known_values():
    assert dt.normal_sf(0.0) == 0.5
    assert dt.normal_sf(1.959963984540054) == pytest.approx(0.025, rel=1e-12)
    assert dt.normal_sf(-1.6448536269514722) == pytest.approx(0.95, rel=1e-12)
    assert dt.normal_sf(8.0) == pytest.approx(6.22096057427178e-16, rel=1e-9)


def test_chi_square_survival_matches_known_values():
    # 95 % critical values from the standard tables, and the exact df = 2 form exp(-x / 2).
    for x, df in [(3.841458820694124, 1), (5.991464547107979, 2), (11.070497693516351, 5)]:
        assert dt.chi2_sf(x, df) == pytest.approx(0.05, rel=1e-9)
    for x in [0.01, 0.7, 3.0, 25.0, 200.0]:
        assert dt.chi2_sf(x, 2) == pytest.approx(math.exp(-x / 2), rel=1e-10)
    assert dt.chi2_sf(0.0, 3) == 1.0
    for x, df in [(0.5, 1), (2.0, 7), (9.9, 10), (60.0, 30), (150.0, 99)]:
        assert dt.chi2_sf(x, df) == pytest.approx(scipy_stats.chi2.sf(x, df), rel=1e-9)


def test_kolmogorov_survival_matches_known_values():
    # The classic critical values of the Kolmogorov distribution (Smirnov 1948).
    assert dt.kolmogorov_sf(1.3580986393225505) == pytest.approx(0.05, rel=1e-9)
    assert dt.kolmogorov_sf(1.6276236115189) == pytest.approx(0.01, rel=1e-8)
    assert dt.kolmogorov_sf(0.0) == 1.0
    for lam in [0.2, 0.5, 0.9, 1.0, 1.1, 2.0, 3.5]:  # both branches and the switch at 1
        assert dt.kolmogorov_sf(lam) == pytest.approx(
            scipy_stats.kstwobign.sf(lam), rel=1e-9, abs=1e-15
        )


def test_ks_pvalue_scales_with_both_sample_sizes():
    # Same distance: more rows on either side make it more surprising.
    assert (
        dt.ks_pvalue(0.1, 2000, 100) > dt.ks_pvalue(0.1, 2000, 1000) > dt.ks_pvalue(0.1, 1e6, 1000)
    )
    # 1.358 / sqrt(effective n) is the 5 % critical distance (up to Stephens' correction).
    n, m = 2000, 1000
    root = math.sqrt(n * m / (n + m))
    assert dt.ks_pvalue(1.3580986393225505 / (root + 0.12 + 0.11 / root), n, m) == pytest.approx(
        0.05, rel=1e-9
    )


def test_holm_adjusts_in_input_order():
    # Sorted 0.005, 0.01, 0.03, 0.04 -> 4 * 0.005, 3 * 0.01, max(2 * 0.03, 0.03), max(0.04, .06)
    assert dt.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert dt.holm([0.5, 0.9]) == [1.0, 1.0]  # capped at 1
    assert dt.holm([]) == []


def _sketch(values) -> tuple:
    values = np.asarray(values, dtype=float)
    return values, np.ones(len(values))


def test_normal_scores_test_matches_the_textbook_statistic():
    """van der Waerden on a small pooled sample, by hand: scores Phi^-1(rank / (N + 1))."""
    base, batch = [1.0, 2.0, 4.0, 7.0, 8.0], [3.0, 5.0, 6.0, 9.0]
    ranks = {v: r for r, v in enumerate(sorted(base + batch), start=1)}
    scores = {v: NormalDist().inv_cdf(r / 10) for v, r in ranks.items()}
    total = sum(scores[v] for v in batch)  # the pooled scores sum to 0
    variance = 5 * 4 / (9 * 8) * sum(a * a for a in scores.values())
    expected = 2 * dt.normal_sf(abs(total) / math.sqrt(variance))
    assert dt.normal_scores_pvalue(_sketch(base), _sketch(batch)) == pytest.approx(expected)
    # Ties share the mean rank; weights count as repeated values.
    tied = dt.normal_scores_pvalue(_sketch([1, 1, 2, 2]), _sketch([2, 3]))
    assert tied == pytest.approx(
        dt.normal_scores_pvalue((np.array([1.0, 2.0]), np.array([2.0, 2.0])), _sketch([2, 3]))
    )
    assert dt.normal_scores_pvalue(_sketch([5, 5]), _sketch([5])) == 1.0


def _column(values) -> dict:
    values = np.asarray(values, dtype=float)
    return {"n": len(values), "mean": values.mean(), "sd": values.std(), "sketch": _sketch(values)}


def test_numeric_test_is_symmetric():
    """A shift down is exactly as surprising as the same shift up (mirror images)."""
    base = np.array([NormalDist().inv_cdf((i + 0.5) / 2000) for i in range(2000)])
    batch = np.array([NormalDist().inv_cdf((i + 0.5) / 200) for i in range(200)]) + 0.3
    up = dt.numeric_test(_column(base), _column(batch), 0.12)
    down = dt.numeric_test(_column(-base), _column(-batch), 0.12)
    assert up["p_value"] == pytest.approx(down["p_value"], rel=1e-9) and up["p_value"] < 1e-3
    assert up["shift_sd"] == pytest.approx(0.3, rel=1e-3) == -down["shift_sd"]
    assert up["p_value"] == pytest.approx(2 * min(up["p_location"], up["p_ks"]))


def test_numeric_test_without_baseline_sd_still_tests_but_has_no_shift():
    base, batch = _column([1.0, 2, 3, 4] * 30), _column([6.0, 7, 8, 9] * 30)
    result = dt.numeric_test({**base, "sd": None}, batch, 1.0)
    assert math.isnan(result["shift_sd"]) and result["p_value"] < 1e-10


def test_categorical_test_on_a_hand_computed_table():
    # 60/40 vs 40/60 of 100 each: expected 50 per cell, chi-square 4 * 10**2 / 50 = 8, df 1.
    result = dt.categorical_test({"a": 60, "b": 40}, {"a": 40, "b": 60})
    assert result["p_value"] == pytest.approx(dt.chi2_sf(8.0, 1), rel=1e-12)
    assert result["share_change"] == pytest.approx(0.2) and result["category"] == "a"
    same = dt.categorical_test({"a": 60, "b": 40}, {"a": 30, "b": 20})
    assert same["p_value"] == 1.0 and same["share_change"] == 0.0


def test_categorical_test_pools_rare_categories():
    # c and d expect < 5 in the batch: pooled into one cell, so df = 2, not 3.
    base, batch = {"a": 500, "b": 400, "c": 60, "d": 40}, {"a": 20, "b": 20, "c": 5, "d": 5}
    n, m = 1000, 50
    table = np.array([[500, 400, 100], [20, 20, 10]], dtype=float)
    expected = table.sum(1, keepdims=True) * table.sum(0, keepdims=True) / (n + m)
    statistic = ((table - expected) ** 2 / expected).sum()
    assert dt.categorical_test(base, batch)["p_value"] == pytest.approx(
        dt.chi2_sf(statistic, 2), rel=1e-12
    )


# ----------------------------------------------------------------------------- engine


def _normal_column(n: int, shift: float = 0.0) -> list:
    """n evenly spread standard-normal quantiles (deterministic, exactly N(0, 1)-shaped)."""
    dist = NormalDist()
    return [repr(dist.inv_cdf((i + 0.5) / n) + shift) for i in range(n)]


def _drift_violations(result: dict) -> set:
    return {name for name, check in violation_set(result) if check == "baseline_drift_check"}


def test_holm_correction_silences_a_borderline_feature_among_many(tmp_path):
    """Raw p about 0.01 on one feature: an alarm when it is the only feature, none among 20
    (Holm: 20 x 0.01 > 0.05), because 20 clean features would give such a p by chance."""
    one_base = pd.DataFrame({"x": _normal_column(2000)})
    one_batch = pd.DataFrame({"x": _normal_column(200, shift=0.19)})
    alone = run_check(tmp_path / "one", run_baseline(tmp_path / "b1", one_base), one_batch)
    assert _drift_violations(alone) == {"x"}
    p = alone["summary"]["drift"]["features"]["x"]["p_value"]
    assert 0.05 / 20 < p < 0.05

    many_base = one_base.assign(**{f"c{i}": _normal_column(2000) for i in range(19)})
    many_batch = one_batch.assign(**{f"c{i}": _normal_column(200) for i in range(19)})
    many = run_check(tmp_path / "many", run_baseline(tmp_path / "b2", many_base), many_batch)
    assert _drift_violations(many) == set()
    x = many["summary"]["drift"]["features"]["x"]
    assert x["p_value"] == pytest.approx(p) and x["adjusted_p_value"] == pytest.approx(20 * p)
    assert many["summary"]["drift"]["verdict"] == "no drift"
    # A looser family-wise alpha (0.5 > 20 x p) lets it through again.
    loose = run_check(
        tmp_path / "loose", run_baseline(tmp_path / "b3", many_base), many_batch,
        "--drift-alpha", "0.5",
    )  # fmt: skip
    assert _drift_violations(loose) == {"x"}


def test_effect_size_floor_hides_significant_but_tiny_shifts(tmp_path):
    """40 000 rows shifted by 0.05 sd: highly significant, below the default 0.1 sd floor."""
    baseline = run_baseline(tmp_path / "b", pd.DataFrame({"x": _normal_column(8000)}))
    batch = pd.DataFrame({"x": _normal_column(40000, shift=0.05)})
    quiet = run_check(tmp_path / "quiet", baseline, batch)
    x = quiet["summary"]["drift"]["features"]["x"]
    assert x["adjusted_p_value"] < 1e-3 and x["shift_sd"] == pytest.approx(0.05, abs=1e-3)
    assert _drift_violations(quiet) == set() and x["verdict"] == "no drift"
    loud = run_check(tmp_path / "loud", baseline, batch, "--drift-min-shift-sd", "0.04")
    (violation,) = loud["constraint_violations"]["violations"]
    assert "a shift of +0.05 sd (floor 0.04 sd)" in violation["description"]
    assert "after Holm's correction over 1 features (alpha 0.05)" in violation["description"]


def test_small_batches_are_inconclusive_not_violations(tmp_path):
    baseline = run_baseline(tmp_path / "b", pd.DataFrame({"x": _normal_column(2000)}))
    batch = pd.DataFrame({"x": _normal_column(30, shift=3.0)})  # 3 sd: obvious, but 30 rows
    result = run_check(tmp_path / "c", baseline, batch)
    assert result["summary"]["violation_count"] == 0
    drift = result["summary"]["drift"]
    assert drift["verdict"] == "inconclusive" and drift["reason"] == (
        "30 rows, fewer than drift_min_rows 50"
    )
    assert result["summary"]["message"].endswith(
        "; drift check inconclusive: 30 rows, fewer than drift_min_rows 50"
    )
    lower = run_check(tmp_path / "lower", baseline, batch, "--drift-min-rows", "20")
    assert _drift_violations(lower) == {"x"}


def test_bad_drift_settings_are_one_clear_line(tmp_path, capsys):
    for option, value in [("--drift-alpha", "1"), ("--drift-min-rows", "0")]:
        with pytest.raises(SystemExit):
            dq.parse_args(["--mode", "check", option, value])
        assert f"argument {option}: expected" in capsys.readouterr().err
    with pytest.raises(dq.InputError, match=r"x: drift_alpha must be a number in \(0, 1\)"):
        dq_settings.read_settings({"drift_alpha": 0}, "x")


# ----------------------------------------------------------------------------- real data


@pytest.fixture
def abalone_halves():
    """Real UCI abalone only (the generated sample is not what this claim is about)."""
    first, second = _halves(shared_path("data/abalone.csv"))
    return first.copy(), second.reset_index(drop=True)


def test_abalone_half_sd_shift_at_1000_rows_is_flagged_both_ways(tmp_path, abalone_halves):
    baseline_half, other = abalone_halves
    baseline = run_baseline(tmp_path / "b", baseline_half)
    rows = np.random.default_rng(1).integers(0, len(other), 1000)
    batch = other.iloc[rows].reset_index(drop=True)
    clean = run_check(tmp_path / "clean", baseline, batch)
    assert _drift_violations(clean) == set() and clean["summary"]["drift"]["verdict"] == "no drift"

    sd = baseline_half["shell_weight"].astype(float).std(ddof=0)
    for sign in (+1, -1):  # a one-sided distance would miss one direction
        shifted = batch.assign(
            shell_weight=(batch["shell_weight"].astype(float) + sign * 0.5 * sd).map(repr)
        )
        result = run_check(tmp_path / f"shift{sign}", baseline, shifted)
        assert _drift_violations(result) == {"shell_weight"}
        feature = result["summary"]["drift"]["features"]["shell_weight"]
        assert sign * feature["shift_sd"] == pytest.approx(0.5, abs=0.1)
    summary = read_json(tmp_path / "shift-1" / "output" / "summary.json")
    assert summary["drift"]["verdict"] == "drift"


def test_ks_distance_is_two_sided_and_symmetric():
    """The distance is the largest gap either way: swapping the samples or mirroring both
    gives the same value, so a batch below the baseline is as far as one above it."""
    rng = np.random.default_rng(5)
    a, b = rng.normal(0, 1, 400), rng.normal(0.4, 1, 300)
    ones = np.ones
    distance = dq_checks.cdf_distance((a, ones(len(a))), (b, ones(len(b))))
    assert distance > 0.1
    assert dq_checks.cdf_distance((b, ones(len(b))), (a, ones(len(a)))) == distance
    assert dq_checks.cdf_distance((-a, ones(len(a))), (-b, ones(len(b)))) == pytest.approx(distance)


def test_downward_shift_drifts_like_an_upward_one_by_distance_alone(tmp_path):
    """Simple comparison: only the KS distance decides, so a one-sided distance would pass a
    batch shifted down. Mirror-image batches (+0.5 sd, -0.5 sd) give the same distance."""
    baseline = run_baseline(tmp_path / "b", pd.DataFrame({"x": _normal_column(2000)}))
    distances = {}
    for sign in (+1, -1):
        batch = pd.DataFrame({"x": _normal_column(500, shift=sign * 0.5)})
        result = run_check(tmp_path / f"s{sign}", baseline, batch, "--comparison-method", "Simple")
        assert _drift_violations(result) == {"x"}
        distances[sign] = result["summary"]["drift_distances"]["x"]
    assert distances[+1] == pytest.approx(distances[-1], abs=1e-3) and distances[+1] > 0.15
