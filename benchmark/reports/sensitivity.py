"""Sensitivity studies: accuracy against each swept hyper-parameter, the others held at their base values.

A grid's ``[sweep]`` axes become hyper-parameter variants of a method (the D2M paper's Figure 4 sweeps
temperature, task balance and real batch size for CIFAR-10 at IPC 10). For every (dataset, method, IPC,
architecture, protocol) with several variants, each hyper-parameter that varies gets one series: the
variants where every *other* varying hyper-parameter sits at its base value. The base value is the most
common one across the variants, which in a one-at-a-time sweep is the default (it appears in every other
axis's runs); ties (a full product sweep) go to the first value in sorted order.
"""

from __future__ import annotations

import json
from collections import Counter

import pandas as pd

from benchmark.reports.frame import canonical, varying_keys

COLUMNS = ["dataset", "method", "ipc", "arch", "protocol", "hparam", "value", "mean", "std", "n", "held"]
GROUP = ["dataset", "method", "ipc", "arch", "protocol"]


def base_values(settings: list[dict], names: list[str]) -> dict[str, str]:
    """The most common (canonical) value of each name; ties to the smallest in sorted order."""
    base = {}
    for name in names:
        counts = Counter(canonical(s.get(name)) for s in settings)
        best = max(counts.values())
        base[name] = min(v for v, c in counts.items() if c == best)
    return base


def sort_key(value: object) -> tuple:
    """Numbers in numeric order, then anything else as text."""
    numeric = isinstance(value, int | float) and not isinstance(value, bool)
    return (0, float(value), "") if numeric else (1, 0.0, str(value))


def sensitivity_series(summary: pd.DataFrame) -> pd.DataFrame:
    """One row per (group, swept hyper-parameter, value): mean, std and n of the variant with the others
    held at their base values (``held`` names them)."""
    rows = []
    for key, group in summary.groupby(GROUP):
        if group["variant"].nunique() < 2:
            continue
        settings = [json.loads(h) for h in group["hparams"]]
        names = sorted(varying_keys(settings))
        base = base_values(settings, names)
        for name in names:
            others = [o for o in names if o != name]
            points = [(s.get(name), r) for s, (_, r) in zip(settings, group.iterrows(), strict=True)
                      if all(canonical(s.get(o)) == base[o] for o in others)]
            if len(points) < 2:
                continue
            held = ",".join(f"{o}={json.loads(base[o])}" for o in others)
            for value, r in sorted(points, key=lambda p: sort_key(p[0])):
                rows.append({**dict(zip(GROUP, key, strict=True)), "hparam": name, "value": value, "mean": r["mean"],
                             "std": r["std"], "n": r["n"], "held": held})
    table = pd.DataFrame(rows, columns=COLUMNS)
    table["value"] = pd.Series([r["value"] for r in rows], index=table.index, dtype=object)  # 64 stays 64, not 64.0
    return table
