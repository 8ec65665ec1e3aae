"""The statistics behind the reports, checked against hand computations."""

import json
import math

import pandas as pd
import pytest
from scipy import stats as scipy_stats

from benchmark.reports.frame import KEYS
from benchmark.reports.plots import pareto_front
from benchmark.reports.stats import (
    ablation_comparisons,
    bootstrap_interval,
    compare,
    paired_bootstrap_interval,
    paired_p,
    spearman,
    welch_p,
    with_comparisons,
)
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
    accs = {tuple(r[KEYS]): {0: [r["mean"] - 1, r["mean"] + 1]} for _, r in summary.iterrows()}  # one seed each
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
    accs = {key["random"]: {0: [69.0, 70.0, 71.0], 1: [68.0, 70.0, 72.0]},
            key["d2m"]: {2: [80.0, 80.5, 81.0], 3: [69.0, 70.0, 70.5]},  # two seeds far apart, tight within each
            key["dm"]: {0: [71.0, 72.0, 73.0, 71.0, 72.0, 73.0]}}  # one seed
    out = with_comparisons(summary, accs).set_index("method")
    assert out.loc["d2m", "test_unit"] == "seed" and out.loc["dm", "test_unit"] == "network"
    assert out.loc["d2m", "p_value"] == pytest.approx(welch_p([80.5, 69.833333], [70.0, 70.0]))
    pooled = welch_p([80.0, 80.5, 81.0, 69.0, 70.0, 70.5], [69.0, 70.0, 71.0, 68.0, 70.0, 72.0])
    assert out.loc["d2m", "p_value"] > 0.5 > 0.1 > pooled  # six networks as if independent overstate it
    assert out.loc["dm", "p_value"] == pytest.approx(welch_p([71, 72, 73, 71, 72, 73], [69, 70, 71, 68, 70, 72]))
    assert "(per seed)" in gain_cell(out.reset_index().iloc[1]) and "seed" not in gain_cell(
        out.reset_index().iloc[2])


def test_paired_p_is_the_one_sample_t_test_of_the_differences():
    a, b = [72.0, 75.0, 70.0, 78.0], [70.0, 71.0, 69.0, 74.0]  # differences 2, 4, 1, 4: mean 2.75, sd 1.5
    t = 2.75 / (1.5 / math.sqrt(4))
    assert paired_p(a, b) == pytest.approx(2 * scipy_stats.t.sf(t, 3), rel=1e-9)
    assert paired_p([1.0, 2.0], [0.0, 1.0]) is None and paired_p([1.0], [0.0]) is None  # no variance; one pair
    low, high = paired_bootstrap_interval(a, b)
    assert 1.0 <= low < 2.75 < high <= 4.0 and paired_bootstrap_interval([1.0], [0.0]) is None


def test_cells_sharing_their_seeds_are_paired_by_seed():
    """Seed luck both cells share cancels in a per-seed difference: a steady +2 over seeds that scatter by
    ten points is significant paired, not unpaired; different seed sets fall back to Welch over seeds."""
    theirs = {0: [60.0, 61.0], 1: [70.0, 71.0], 2: [80.0, 81.0]}
    mine = {s: [a + 2.0 + 0.1 * s for a in accs] for s, accs in theirs.items()}
    paired = compare(mine, theirs)
    assert paired.unit == "paired seed" and paired.p_value == pytest.approx(paired_p([62.5, 72.6, 82.7],
                                                                                     [60.5, 70.5, 80.5]))
    assert paired.p_value < 0.01 and paired.low == pytest.approx(2.0) and paired.high == pytest.approx(2.2)
    shifted = {s + 3: accs for s, accs in mine.items()}  # the same numbers from other seeds
    welch = compare(shifted, theirs)
    assert welch.unit == "seed" and welch.p_value == pytest.approx(welch_p([62.5, 72.6, 82.7], [60.5, 70.5, 80.5]))
    assert welch.p_value > 0.5
    assert compare({0: [62.0, 63.0]}, {0: [60.0, 61.0]}).unit == "network"  # one seed: its networks
    assert compare({}, theirs) == compare({}, {}) and compare({}, theirs).p_value is None


def summary_row(method: str, variant: str, mean: float, hparams: dict) -> dict:
    return {"dataset": "digits", "method": method, "variant": variant, "ipc": 10, "arch": "convnet",
            "protocol": "paper", "mean": mean, "std": 1.0, "n": 4, "hparams": json.dumps(hparams)}


def test_an_ablation_is_compared_with_each_run_of_the_method_it_ablates_on_the_settings_it_reads():
    generator = {"generator_width": 32, "pretrain_iterations": 2000}
    rows = [summary_row("d2m", "", 80.0, {"generator_width": 64, "pretrain_iterations": 2000, "iterations": 100}),
            summary_row("d2m", "a", 90.0, {**generator, "iterations": 100}),
            summary_row("d2m", "b", 92.0, {**generator, "iterations": 400}),
            summary_row("d2m-gen", "a", 85.0, {**generator, "iterations": 100}),
            summary_row("d2m-em", "a", 88.0, {**generator, "iterations": 100})]
    summary = pd.DataFrame(rows)
    accs = {tuple(r[KEYS]): {0: [r["mean"] - 1, r["mean"] + 1], 1: [r["mean"], r["mean"] + 2]}
            for _, r in summary.iterrows()}
    ablations = {"d2m-gen": ("d2m", frozenset({"iterations"})), "d2m-em": ("d2m", frozenset())}
    out = ablation_comparisons(summary, accs, ablations)
    pairs = {(r.variant, r.ablation): r for r in out.itertuples()}
    # d2m-gen reads no distillation setting: it ablates both runs of its generator, not the width-64 one;
    # d2m-em reads ``iterations``, so only the run with its 100 iterations
    assert set(pairs) == {("a", "d2m-gen"), ("b", "d2m-gen"), ("a", "d2m-em")}
    assert pairs[("b", "d2m-gen")].gain == pytest.approx(7.0) and pairs[("a", "d2m-em")].gain == pytest.approx(2.0)
    assert pairs[("a", "d2m-gen")].test_unit == "paired seed"
    assert ablation_comparisons(summary[summary["method"] == "d2m"], accs, ablations).empty


def test_pareto_front_keeps_only_undominated_points():
    points = [(1.0, 50.0), (10.0, 70.0), (5.0, 40.0), (100.0, 65.0), (10.0, 60.0), (200.0, 80.0)]
    assert pareto_front(points) == [(1.0, 50.0), (10.0, 70.0), (200.0, 80.0)]
