"""Accuracy tables: methods × (dataset, IPC) per architecture and protocol, the same as gains over
``random`` and fractions of ``full``, and the cross-architecture table (methods × architectures).

A cell nobody ran shows ``MISSING``; a cell whose evaluation (or distillation) failed shows ``FAILED``,
so a partial store renders as a partial table instead of silently dropping rows.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable

import pandas as pd

from benchmark.reports.frame import KEYS, method_label
from benchmark.reports.stats import SeedAccuracies

MISSING = "—"
FAILED = "✗ failed"
LEGEND = f"{MISSING}: not run yet; {FAILED}: the cell failed (see *Failed cells*)."
CONVNET = "convnet"


def column_name(dataset: str, ipc: int) -> str:
    return f"{dataset} ipc={ipc}" if ipc else f"{dataset} (whole)"


def column_order(column: str) -> tuple[str, int]:
    dataset, _, rest = column.partition(" ")
    return dataset, int(rest.split("=")[1]) if "=" in rest else 0


def failed_cells(failures: pd.DataFrame, arch: str | None, protocol: str | None) -> list[tuple[str, str, int]]:
    """(dataset, method, ipc) of failures that belong in a table of ``arch`` and ``protocol``: evaluations
    there, and distillations (which every table of their dataset would have shown)."""
    if failures.empty:
        return []
    rows = failures[(failures["stage"] == "distill")
                    | ((failures["arch"] == arch) & (failures["protocol"] == protocol))]
    return [(r["dataset"], r["method"], int(r["ipc"])) for _, r in rows.iterrows() if r["dataset"] and r["method"]]


def pivot(summary: pd.DataFrame, arch: str, protocol: str, cell: Callable[[pd.Series], str],
          failures: pd.DataFrame | None = None) -> pd.DataFrame:
    """Rows: method; columns: dataset × IPC. ``full`` (IPC-independent, ipc 0) fills every IPC column of
    its dataset; a failed distillation of a generator (ipc 0) marks every IPC column of its dataset."""
    part = summary[(summary["arch"] == arch) & (summary["protocol"] == protocol)]
    failed = failed_cells(failures if failures is not None else pd.DataFrame(), arch, protocol)
    ipcs: dict[str, set[int]] = {}
    for dataset, ipc in [*zip(part["dataset"], part["ipc"], strict=True), *((d, i) for d, _, i in failed)]:
        ipcs.setdefault(dataset, set()).update({ipc} - {0})
    rows: dict[str, dict[str, str]] = {}

    def put(label: str, dataset: str, ipc: int, text: str) -> None:
        for target in ([ipc] if ipc else sorted(ipcs.get(dataset, ())) or [0]):
            rows.setdefault(label, {}).setdefault(column_name(dataset, target), text)

    for _, row in part.iterrows():
        put(method_label(row), row["dataset"], row["ipc"], cell(row))
    for dataset, method, ipc in failed:
        if dataset in ipcs:
            put(method, dataset, ipc, FAILED)
    table = pd.DataFrame.from_dict(rows, orient="index").sort_index()
    return table[sorted(table.columns, key=column_order)].fillna(MISSING)


def accuracy_cell(row: pd.Series) -> str:
    return f"{row['mean']:.2f} ± {row['std']:.2f}"


UNIT_MARKS = {"paired seed": " (paired seeds)", "seed": " (per seed)"}
"""How a gain cell names its test's unit (none: one evaluation network; see :mod:`benchmark.reports.stats`)."""


def difference_text(row: pd.Series) -> str:
    """``+3.21 [+1.10, +5.02] p=0.004 (paired seeds)``: a difference in points, its bootstrap interval, the
    p-value, and the test's unit where it was not one network."""
    text = f"{row['gain']:+.2f}"
    if not pd.isna(row["gain_low"]):
        text += f" [{row['gain_low']:+.2f}, {row['gain_high']:+.2f}]"
    if not pd.isna(row["p_value"]):
        text += f" p={row['p_value']:.3g}"
    if not pd.isna(row["gain_low"]):
        text += UNIT_MARKS.get(row["test_unit"], "")
    return text


def gain_cell(row: pd.Series) -> str:
    """The gain over random (:func:`difference_text`), or why there is none."""
    if row["method"] == "random":
        return "(reference)"
    if pd.isna(row["gain"]):
        return "n/a (no random)" if row["ipc"] else "n/a"
    return difference_text(row)


def ablation_table(ablations: pd.DataFrame) -> pd.DataFrame:
    """The :func:`benchmark.reports.stats.ablation_comparisons` rows as text: method and ablation with their
    variants and accuracies, and the method's gain over its ablation."""
    rows = [{"dataset": r["dataset"], "IPC": r["ipc"], "arch": r["arch"], "protocol": r["protocol"],
             "method": method_label(r), "accuracy": f"{r['mean']:.2f}",
             "ablation": method_label({"method": r["ablation"], "variant": r["ablation_variant"]}),
             "ablation accuracy": f"{r['ablation_mean']:.2f}", "method − ablation": difference_text(r)}
            for _, r in ablations.sort_values(["dataset", "ipc", "arch", "protocol", "variant", "ablation"]).iterrows()]
    return pd.DataFrame(rows, columns=["dataset", "IPC", "arch", "protocol", "method", "accuracy", "ablation",
                                       "ablation accuracy", "method − ablation"])


def of_full_cell(row: pd.Series) -> str:
    return "n/a (no full)" if pd.isna(row["of_full"]) else f"{100 * row['of_full']:.1f}%"


def table_positions(summary: pd.DataFrame) -> list[tuple[str, str]]:
    """The (architecture, protocol) pairs with results, ConvNet first."""
    pairs = summary[["arch", "protocol"]].drop_duplicates().itertuples(index=False)
    return sorted({(a, p) for a, p in pairs}, key=lambda ap: (ap[0] != CONVNET, ap))


def cross_arch_tables(summary: pd.DataFrame, failures: pd.DataFrame,
                      accuracies: dict[tuple, SeedAccuracies]) -> list[tuple[tuple[str, int, str], pd.DataFrame]]:
    """Per (dataset, IPC, protocol) evaluated on an architecture other than ConvNet: rows method, columns
    architecture (ConvNet first) with ``(−drop)`` from ConvNet, and the mean drop over the others. Where rows
    were evaluated on different sets of architectures their mean drops are not comparable (AlexNet costs
    every method 5–15 points, ResNet-18 about none), so a second column averages only the architectures
    every such row has. A method's hyper-parameter variants (sweeps, ablation grids) get a row only where they
    were evaluated off ConvNet too; a registered method always has one, so a missing column reads "not run yet".

    ``accuracies`` (:func:`benchmark.reports.frame.accuracies_by_key`) lets each drop compare the same
    distilled sets: ConvNet rows often hold more seeds than the other architectures, and one seed's set can
    sit points away from the seeds' mean (:func:`same_seed_drop`)."""
    tables = []
    with_ipc = summary[summary["ipc"] > 0]
    for (dataset, ipc, protocol), part in with_ipc.groupby(["dataset", "ipc", "protocol"]):
        archs = sorted(set(part["arch"]), key=lambda a: (a != CONVNET, a))
        if archs == [CONVNET]:
            continue
        whole = summary[(summary["dataset"] == dataset) & (summary["ipc"] == 0) & (summary["protocol"] == protocol)]
        rows: dict[str, dict[str, str]] = {}
        row_drops: dict[str, dict[str, float]] = {}
        both = pd.concat([part, whole])
        for label, group in both.assign(label=both.apply(method_label, axis=1)).groupby("label"):
            if group["variant"].iloc[0] and set(group["arch"]) == {CONVNET}:
                continue  # a hyper-parameter variant never taken off ConvNet: no row of "not run yet"
            cells, drops = {}, {}
            for _, r in group.iterrows():
                text = accuracy_cell(r)
                drop = same_seed_drop(accuracies, tuple(r[k] for k in KEYS)) if r["arch"] != CONVNET else None
                if drop is not None:
                    drops[r["arch"]] = drop
                    text += f" ({-drop:+.2f})"
                cells[r["arch"]] = text
            cells["mean drop"] = mean_drop(drops, drops)
            rows[label], row_drops[label] = cells, drops
        coverages = [set(drops) for drops in row_drops.values() if drops]
        shared = sorted(set.intersection(*coverages), key=archs.index) if coverages else []
        shared_column = f"mean drop ({', '.join(shared)})"
        if shared and any(coverage != set(shared) for coverage in coverages):
            for label, drops in row_drops.items():
                rows[label][shared_column] = mean_drop(drops, shared)
        for _, f in failures[(failures["dataset"] == dataset) & (failures["ipc"].isin([ipc, 0]))
                             & (failures["protocol"] == protocol)].iterrows():
            rows.setdefault(f["method"], {}).setdefault(f["arch"], FAILED)
        table = pd.DataFrame.from_dict(rows, orient="index").sort_index()
        columns = [a for a in archs if a in table.columns] + [c for c in ("mean drop", shared_column)
                                                              if c in table.columns]
        tables.append(((dataset, ipc, protocol), table.reindex(columns=columns).fillna(MISSING)))
    return tables


def same_seed_drop(accuracies: dict[tuple, SeedAccuracies], key: tuple) -> float | None:
    """ConvNet's mean accuracy minus this architecture's, both over the evaluation networks of the
    distillation seeds the two share; None where they share none."""
    here = accuracies.get(key, {})
    convnet = accuracies.get((*key[:KEYS.index("arch")], CONVNET, *key[KEYS.index("arch") + 1:]), {})
    shared = set(here) & set(convnet)
    if not shared:
        return None
    return (statistics.fmean(a for seed in shared for a in convnet[seed])
            - statistics.fmean(a for seed in shared for a in here[seed]))


def mean_drop(drops: dict[str, float], archs: Iterable[str]) -> str:
    """The mean of ``drops`` over ``archs``, or MISSING when a row lacks one of them."""
    values = [drops.get(arch) for arch in archs]
    if not values or None in values:
        return MISSING
    return f"{sum(values) / len(values):.2f}"
