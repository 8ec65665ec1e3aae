"""Which differences are real: gain over ``random``, fraction of ``full``, Welch's t-test, bootstrap intervals.

Every accuracy cell is compared with the ``random`` coreset at the same dataset, IPC, architecture and
protocol (the DC paper's floor, Table 1) and with the ``full`` training set there (its upper bound).
The unit of the tests is a distillation seed (the mean of its set's networks) where both cells hold two or
more seeds, else one evaluation network. Networks trained on one set share that set's luck: pooling them over
seeds as if independent overstates significance (on digits, d2m over random at IPC 1 read p = 2e-4 over 25
networks and p = 0.14 over their 5 seeds); and within one seed, the networks' spread is training noise only.

* Welch's unequal-variance t-test (``scipy.stats.ttest_ind(equal_var=False)``): the two cells need not
  share a variance (a distilled set is often steadier than a random one).
* A percentile bootstrap interval of the difference of the two means (resampling each cell's networks
  independently, a fixed seed so reports are reproducible), which needs no normality assumption.
* Spearman's rank correlation for the NAS application (the DC paper, §4.3, ranks architectures by it).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

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
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(diffs, [tail, 100 - tail])
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


def comparison_units(mine: list[list[float]], theirs: list[list[float]]) -> tuple[list[float], list[float], str]:
    """What two cells' tests compare, given each cell's networks per distillation seed: the seeds' means where
    both cells have at least two seeds (unit ``seed``), else every network (unit ``network``)."""
    if len(mine) >= 2 and len(theirs) >= 2:
        return [float(np.mean(s)) for s in mine], [float(np.mean(s)) for s in theirs], "seed"
    return [a for s in mine for a in s], [a for s in theirs for a in s], "network"


def with_comparisons(summary: pd.DataFrame, accuracies: dict[tuple, list[list[float]]]) -> pd.DataFrame:
    """``summary`` plus, per row: ``gain`` over random (points), its bootstrap interval ``gain_low``/
    ``gain_high``, Welch ``p_value``, the ``test_unit`` they used, and ``of_full`` (mean / mean of ``full``, a
    fraction). ``accuracies``: per summary key, the networks' accuracies of each distillation seed."""
    out = summary.copy()
    columns: dict[str, list] = {"gain": [], "gain_low": [], "gain_high": [], "p_value": [], "of_full": []}
    test_unit: list[str | None] = []
    for _, row in summary.iterrows():
        where = (row["dataset"], row["ipc"], row["arch"], row["protocol"])
        random_row = reference_row(summary, REFERENCE, *where)
        full_row = reference_row(summary, UPPER_BOUND, row["dataset"], 0, row["arch"], row["protocol"])
        gain = low = high = p = unit = None
        if random_row is not None and row["method"] != REFERENCE:
            mine, theirs, unit = comparison_units(accuracies.get(tuple(row[KEYS]), []),
                                                  accuracies.get(tuple(random_row[KEYS]), []))
            gain = row["mean"] - random_row["mean"]
            interval = bootstrap_interval(mine, theirs)
            low, high = interval if interval else (None, None)
            p = welch_p(mine, theirs)
        of_full = row["mean"] / full_row["mean"] if full_row is not None and full_row["mean"] > 0 else None
        for name, value in zip(columns, (gain, low, high, p, of_full), strict=True):
            columns[name].append(value)
        test_unit.append(unit)
    for name, values in columns.items():
        out[name] = pd.Series(values, index=out.index, dtype=float)
    out["test_unit"] = pd.Series(test_unit, index=out.index, dtype=object)
    return out


def missing_references(summary: pd.DataFrame) -> list[str]:
    """Positions (dataset, IPC, arch, protocol) with results but no ``random`` row to compare with."""
    missing = []
    positions = summary[(summary["ipc"] > 0)][["dataset", "ipc", "arch", "protocol"]].drop_duplicates()
    for _, pos in positions.iterrows():
        if reference_row(summary, REFERENCE, pos["dataset"], pos["ipc"], pos["arch"], pos["protocol"]) is None:
            missing.append(f"{pos['dataset']} ipc={pos['ipc']} {pos['arch']} protocol {pos['protocol']}")
    return missing
