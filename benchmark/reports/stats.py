"""Which differences are real: gain over ``random``, fraction of ``full``, t-tests, bootstrap intervals.

Every accuracy cell is compared with the ``random`` coreset at the same dataset, IPC, architecture and
protocol (the DC paper's floor, Table 1) and with the ``full`` training set there (its upper bound); a
method that ablates another (``Distiller.ablation_of``: D2M's ``d2m-gen``, ``d2m-em``, ...) is also compared
with it (:func:`ablation_comparisons`).
The unit of the tests is a distillation seed (the mean of its set's networks) where both cells hold two or
more seeds, else one evaluation network. Networks trained on one set share that set's luck: pooling them over
seeds as if independent overstates significance (on digits, d2m over random at IPC 1 read p = 2e-4 over 25
networks and p = 0.14 over their 5 seeds); and within one seed, the networks' spread is training noise only.

* Paired by seed where both cells hold the same two or more seeds: evaluation network k of seed s starts
  from the same weights and draws the same minibatches and augmentations whichever set it trains on
  (``benchmark.runner``: ``derive_seed("eval-network", s, k)``), and a generator method's ablation samples
  the same noise at seed s, so seed s's two cells share luck that a per-seed difference cancels: a paired
  t-test (``scipy.stats.ttest_rel``) on the seeds' differences and a bootstrap of those differences. The
  rule depends only on which seeds ran, never on the outcome.
* Otherwise Welch's unequal-variance t-test (``scipy.stats.ttest_ind(equal_var=False)``): the two cells need
  not share a variance (a distilled set is often steadier than a random one), with a percentile bootstrap
  interval of the difference of the two means (resampling each cell independently).
* Bootstraps use a fixed seed so reports are reproducible, and need no normality assumption.
* Spearman's rank correlation for the NAS application (the DC paper, §4.3, ranks architectures by it).
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from benchmark.reports.frame import KEYS

REFERENCE = "random"
UPPER_BOUND = "full"
BOOTSTRAP_RESAMPLES = 4000
BOOTSTRAP_SEED = 0
LEVEL = 0.95


def finite_or_none(value: float) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


def welch_p(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Two-sided p-value of Welch's t-test; None when either side has fewer than two values or both are
    constant (no variance to test against)."""
    if len(a) < 2 or len(b) < 2 or (np.std(a) == 0 and np.std(b) == 0):
        return None
    with warnings.catch_warnings():  # one constant side is a valid Welch test; scipy warns of precision anyway
        warnings.simplefilter("ignore", RuntimeWarning)
        return finite_or_none(stats.ttest_ind(a, b, equal_var=False).pvalue)


def bootstrap_interval(a: Sequence[float], b: Sequence[float], level: float = LEVEL,
                       resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED) -> tuple[float, float] | None:
    """Percentile interval of mean(a) − mean(b), resampling a and b independently; None below two values."""
    if len(a) < 2 or len(b) < 2:
        return None
    rng = np.random.default_rng(seed)
    xa, xb = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    diffs = (rng.choice(xa, (resamples, len(xa))).mean(axis=1) - rng.choice(xb, (resamples, len(xb))).mean(axis=1))
    return percentile_interval(diffs, level)


def percentile_interval(samples: np.ndarray, level: float) -> tuple[float, float]:
    """The central ``level`` interval of bootstrap ``samples``."""
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(samples, [tail, 100 - tail])
    return float(low), float(high)


def spearman(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Spearman's rank correlation (ties get average ranks); None below three pairs or for constant input."""
    if len(x) < 3 or len(set(x)) < 2 or len(set(y)) < 2:
        return None
    return finite_or_none(stats.spearmanr(x, y).statistic)


def reference_row(summary: pd.DataFrame, method: str, dataset: str, ipc: int, arch: str,
                  protocol: str) -> pd.Series | None:
    """The ``method`` row at that position, preferring its default variant; None when absent."""
    rows = summary[(summary["method"] == method) & (summary["dataset"] == dataset) & (summary["ipc"] == ipc)
                   & (summary["arch"] == arch) & (summary["protocol"] == protocol)]
    if rows.empty:
        return None
    default = rows[rows["variant"] == ""]
    return (default if not default.empty else rows).iloc[0]


SeedAccuracies = Mapping[object, Sequence[float]]
"""One cell's evaluation networks' accuracies per distillation seed (networks in evaluation-seed order)."""


def paired_p(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Two-sided p-value of the paired t-test of ``a[i]`` against ``b[i]``; None below two pairs or where every
    difference is equal (no variance to test against)."""
    differences = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    if len(differences) < 2 or np.std(differences) == 0:
        return None
    return finite_or_none(stats.ttest_rel(a, b).pvalue)


def paired_bootstrap_interval(a: Sequence[float], b: Sequence[float], level: float = LEVEL,
                              resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED
                              ) -> tuple[float, float] | None:
    """Percentile interval of mean(a − b), resampling the pairs; None below two pairs."""
    if len(a) < 2:
        return None
    differences = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    means = np.random.default_rng(seed).choice(differences, (resamples, len(differences))).mean(axis=1)
    return percentile_interval(means, level)


@dataclass(frozen=True)
class Comparison:
    """The test of one cell against another: interval of the difference, p-value, and the unit they used
    (``paired seed``, ``seed`` or ``network``; None where nothing could be compared)."""

    low: float | None = None
    high: float | None = None
    p_value: float | None = None
    unit: str | None = None


def compare(mine: SeedAccuracies, theirs: SeedAccuracies) -> Comparison:
    """Test ``mine`` against ``theirs`` by the module's rule: paired seeds, else seeds, else networks."""
    if len(mine) >= 2 and len(theirs) >= 2:
        if set(mine) == set(theirs):
            seeds = sorted(mine, key=str)
            a, b = [float(np.mean(mine[s])) for s in seeds], [float(np.mean(theirs[s])) for s in seeds]
            return Comparison(*(paired_bootstrap_interval(a, b) or (None, None)), paired_p(a, b), "paired seed")
        a, b = [float(np.mean(v)) for v in mine.values()], [float(np.mean(v)) for v in theirs.values()]
        unit = "seed"
    else:
        a, b = [x for v in mine.values() for x in v], [x for v in theirs.values() for x in v]
        unit = "network"
    return Comparison(*(bootstrap_interval(a, b) or (None, None)), welch_p(a, b), unit)


def with_comparisons(summary: pd.DataFrame, accuracies: dict[tuple, SeedAccuracies]) -> pd.DataFrame:
    """``summary`` plus, per row: ``gain`` over random (points), its bootstrap interval ``gain_low``/
    ``gain_high``, ``p_value``, the ``test_unit`` they used, and ``of_full`` (mean / mean of ``full``, a
    fraction). ``accuracies``: per summary key, the networks' accuracies of each distillation seed."""
    out = summary.copy()
    columns: dict[str, list] = {"gain": [], "gain_low": [], "gain_high": [], "p_value": [], "of_full": []}
    test_unit: list[str | None] = []
    for _, row in summary.iterrows():
        where = (row["dataset"], row["ipc"], row["arch"], row["protocol"])
        random_row = reference_row(summary, REFERENCE, *where)
        full_row = reference_row(summary, UPPER_BOUND, row["dataset"], 0, row["arch"], row["protocol"])
        gain, test = None, Comparison()
        if random_row is not None and row["method"] != REFERENCE:
            gain = row["mean"] - random_row["mean"]
            test = compare(accuracies.get(tuple(row[KEYS]), {}), accuracies.get(tuple(random_row[KEYS]), {}))
        of_full = row["mean"] / full_row["mean"] if full_row is not None and full_row["mean"] > 0 else None
        for name, value in zip(columns, (gain, test.low, test.high, test.p_value, of_full), strict=True):
            columns[name].append(value)
        test_unit.append(test.unit)
    for name, values in columns.items():
        out[name] = pd.Series(values, index=out.index, dtype=float)
    out["test_unit"] = pd.Series(test_unit, index=out.index, dtype=object)
    return out


def same_ablated_setting(parent_hparams: str, ablation_hparams: str, unread: frozenset[str]) -> bool:
    """Whether an ablation's row ablates this parent row: their hyper-parameters agree on every name the
    ablation reads (``d2m-gen`` ignores the distillation's, so it ablates each ``d2m`` run of its generator)."""
    parent, ablation = json.loads(parent_hparams or "{}"), json.loads(ablation_hparams or "{}")
    return all(parent.get(name) == value for name, value in ablation.items() if name not in unread)


def ablation_comparisons(summary: pd.DataFrame, accuracies: dict[tuple, SeedAccuracies],
                         ablations: Mapping[str, tuple[str, frozenset[str]]]) -> pd.DataFrame:
    """One row per (parent row, ablation row) at the same dataset, IPC, architecture and protocol whose
    settings agree (:func:`same_ablated_setting`): the parent's gain over its ablation with the test of
    :func:`compare`. ``ablations``: ablation method → (the method it ablates, the hyper-parameters it ignores)."""
    rows = []
    for _, ablated in summary[summary["method"].isin(list(ablations))].iterrows():
        parent_method, unread = ablations[ablated["method"]]
        where = ((summary["method"] == parent_method) & (summary["dataset"] == ablated["dataset"])
                 & (summary["ipc"] == ablated["ipc"]) & (summary["arch"] == ablated["arch"])
                 & (summary["protocol"] == ablated["protocol"]))
        for _, parent in summary[where].iterrows():
            if not same_ablated_setting(parent["hparams"], ablated["hparams"], unread):
                continue
            test = compare(accuracies.get(tuple(parent[KEYS]), {}), accuracies.get(tuple(ablated[KEYS]), {}))
            rows.append({**{k: parent[k] for k in KEYS}, "ablation": ablated["method"],
                         "ablation_variant": ablated["variant"], "mean": parent["mean"],
                         "ablation_mean": ablated["mean"], "gain": parent["mean"] - ablated["mean"],
                         "gain_low": test.low, "gain_high": test.high, "p_value": test.p_value,
                         "test_unit": test.unit})
    columns = [*KEYS, "ablation", "ablation_variant", "mean", "ablation_mean", "gain", "gain_low", "gain_high",
               "p_value", "test_unit"]
    return pd.DataFrame(rows, columns=columns)


def missing_references(summary: pd.DataFrame) -> list[str]:
    """Positions (dataset, IPC, arch, protocol) with results but no ``random`` row to compare with."""
    missing = []
    positions = summary[(summary["ipc"] > 0)][["dataset", "ipc", "arch", "protocol"]].drop_duplicates()
    for _, pos in positions.iterrows():
        if reference_row(summary, REFERENCE, pos["dataset"], pos["ipc"], pos["arch"], pos["protocol"]) is None:
            missing.append(f"{pos['dataset']} ipc={pos['ipc']} {pos['arch']} protocol {pos['protocol']}")
    return missing
