"""The statistics behind the reports, checked against hand computations."""

import math

import pandas as pd
import pytest
from scipy import stats as scipy_stats

from benchmark.reports.frame import KEYS
from benchmark.reports.plots import pareto_front
from benchmark.reports.stats import bootstrap_interval, spearman, welch_p, with_comparisons
from benchmark.reports.tables import gain_cell


def test_welch_p_matches_the_welch_satterthwaite_formula():
    a, b = [60.0, 62.0, 64.0], [50.0, 55.0, 51.0, 52.0]
    va, vb = 4.0 / 3, (14.0 / 3) / 4  # sample variance / n: 4 and 14/3 by hand
    t = (62.0 - 52.0) / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / 2 + vb**2 / 3)
    assert t == pytest.approx(6.3246, abs=1e-4) and df == pytest.approx(4.655, abs=1e-3)
    assert welch_p(a, b) == pytest.approx(2 * scipy_stats.t.sf(t, df), rel=1e-9)
    assert welch_p(a, b) < 0.01 and welch_p(a, a) == pytest.approx(1.0)


@pytest.mark.parametrize("a,b", [([1.0], [2.0, 3.0]), ([5.0, 5.0], [5.0, 5.0]), ([], [1.0, 2.0])])
def test_welch_p_is_none_where_nothing_can_be_tested(a, b):
    assert welch_p(a, b) is None


def test_bootstrap_interval_is_reproducible_and_brackets_the_difference():
    a, b = [60.0, 62.0, 64.0, 61.0], [50.0, 55.0, 51.0, 52.0]
    low, high = bootstrap_interval(a, b)
    assert (low, high) == bootstrap_interval(a, b)  # fixed seed
    assert 6.0 < low < 9.75 < high < 14.0  # mean difference 61.75 − 52 = 9.75
    assert bootstrap_interval([1.0], b) is None


def test_spearman_on_hand_examples():
    assert spearman([1, 2, 3, 4], [10, 30, 20, 40]) == pytest.approx(0.8)  # 1 − 6·2 / (4·15)
    # ties share average ranks: y ranks (1, 2, 3.5, 5, 3.5) → ρ = 8 / √95
    assert spearman([1, 2, 3, 4, 5], [5, 6, 7, 8, 7]) == pytest.approx(8 / math.sqrt(95))
    assert spearman([1, 2], [2, 1]) is None and spearman([1, 2, 3], [4, 4, 4]) is None


def test_gain_over_random_fraction_of_full_and_p_values():
    rows = [("random", 10, 50.0), ("dm", 10, 60.0), ("full", 0, 80.0), ("dm", 50, 70.0)]
    summary = pd.DataFrame([{"dataset": "digits", "method": m, "variant": "", "ipc": i, "arch": "convnet",
                             "protocol": "smoke", "mean": mean, "std": 1.0, "n": 2} for m, i, mean in rows])
    accs = {tuple(r[KEYS]): [[r["mean"] - 1, r["mean"] + 1]] for _, r in summary.iterrows()}  # one seed each
    out = with_comparisons(summary, accs).set_index("method")
    assert out.loc["dm"].iloc[0]["gain"] == pytest.approx(10.0)  # dm at IPC 10
    dm10 = out[(out.index == "dm") & (out["ipc"] == 10)].iloc[0]
    assert dm10["of_full"] == pytest.approx(0.75)
    assert dm10["p_value"] == pytest.approx(welch_p([59, 61], [49, 51])) and dm10["test_unit"] == "network"
    assert pd.isna(out.loc["random"]["gain"]) and out.loc["random"]["of_full"] == pytest.approx(50 / 80)
    dm50 = out[(out.index == "dm") & (out["ipc"] == 50)].iloc[0]
    assert pd.isna(dm50["gain"]) and dm50["of_full"] == pytest.approx(70 / 80)  # no random at IPC 50


def test_cells_with_several_seeds_are_compared_seed_by_seed():
    """Networks of one set share its luck: with two or more seeds on both sides the unit is a seed's mean."""
    summary = pd.DataFrame([{"dataset": "digits", "method": m, "variant": "", "ipc": 1, "arch": "convnet",
                             "protocol": "paper", "mean": mean, "std": 1.0, "n": 6} for m, mean in
                            (("random", 70.0), ("d2m", 75.0), ("dm", 72.0))])
    key = {m: tuple(r[KEYS]) for m, (_, r) in zip(summary["method"], summary.iterrows(), strict=True)}
    accs = {key["random"]: [[69.0, 70.0, 71.0], [68.0, 70.0, 72.0]],
            key["d2m"]: [[80.0, 80.5, 81.0], [69.0, 70.0, 70.5]],  # two seeds far apart, tight within each
            key["dm"]: [[71.0, 72.0, 73.0, 71.0, 72.0, 73.0]]}  # one seed
    out = with_comparisons(summary, accs).set_index("method")
    assert out.loc["d2m", "test_unit"] == "seed" and out.loc["dm", "test_unit"] == "network"
    assert out.loc["d2m", "p_value"] == pytest.approx(welch_p([80.5, 69.833333], [70.0, 70.0]))
    pooled = welch_p([80.0, 80.5, 81.0, 69.0, 70.0, 70.5], [69.0, 70.0, 71.0, 68.0, 70.0, 72.0])
    assert out.loc["d2m", "p_value"] > 0.5 > 0.1 > pooled  # six networks as if independent overstate it
    assert out.loc["dm", "p_value"] == pytest.approx(welch_p([71, 72, 73, 71, 72, 73], [69, 70, 71, 68, 70, 72]))
    assert "(per seed)" in gain_cell(out.reset_index().iloc[1]) and "(per seed)" not in gain_cell(
        out.reset_index().iloc[2])


def test_pareto_front_keeps_only_undominated_points():
    points = [(1.0, 50.0), (10.0, 70.0), (5.0, 40.0), (100.0, 65.0), (10.0, 60.0), (200.0, 80.0)]
    assert pareto_front(points) == [(1.0, 50.0), (10.0, 70.0), (200.0, 80.0)]
