"""The cost of serving a set of IPCs (the D2M paper's re-distillation question; DESIGN §6).

To offer IPC {1, 10, 50}, a pixel method distils once per IPC and keeps every set; a generator method
(``serves_any_ipc``) distils once, keeps its parameters, and samples each IPC. So, per method and dataset:

* pixel:     time = stage + Σ_ipc distill(ipc);                 storage = Σ_ipc bytes(set at ipc)
* generator: time = stage + distill + Σ_ipc sample(ipc);        storage = bytes(parameters), once

``stage`` is the one-time stage the method's distillations reuse from a cache (D2M's GAN pre-training, MTT's
expert buffer, DiM's GAN and model pool; :mod:`.stages`), counted once at its full cost whether or not these
runs paid it, and ``distill`` is each distillation's own time (its wall time less the stage it paid), so a row
does not change with what the cache held. Each term is the mean over distillation seeds (sampling: over
evaluation records at that IPC, which time ``synthesize``). Peak memory is the largest of the distillations
counted; the device is where they ran. An IPC without a record leaves its term out and is listed under
``missing``, so a partial store gives a lower bound that says so. Methods whose sets ignore the IPC
(``full``) are left out.
"""

from __future__ import annotations

import pandas as pd

from benchmark.reports.frame import joined, mean_or_none

SERVING_IPCS = (1, 10, 50)
REFERENCE = "d2m"
COLUMNS = ["dataset", "method", "variant", "kind", "budget", "device", "distillations", "stage_seconds",
           "distill_seconds", "sample_seconds", "total_seconds", "peak_memory_bytes", "storage_bytes", "missing",
           "commits", "time_vs_ref", "storage_vs_ref"]


def serving_cost(distills: pd.DataFrame, evals: pd.DataFrame, ipcs: tuple[int, ...]) -> dict:
    """The cost of one (dataset, method, variant): its distillation rows and its evaluation rows."""
    generator = bool(distills["serves_any_ipc"].any())
    missing, times, stored = [], [], []
    sample_total = 0.0
    if generator:
        counted = distills[distills["serves_any_ipc"]]
        times.append(mean_or_none(counted["own_seconds"]))
        stored.append(mean_or_none(counted["storage_bytes"]))
        for ipc in ipcs:
            sampled = mean_or_none(evals.loc[evals["ipc"] == ipc, "sample_seconds"]) if not evals.empty else None
            if sampled is None:
                missing.append(ipc)
            else:
                sample_total += sampled
    else:
        counted = distills[distills["ipc"].isin(ipcs)]
        for ipc in ipcs:
            at_ipc = distills[distills["ipc"] == ipc]
            if at_ipc.empty:
                missing.append(ipc)
                continue
            times.append(mean_or_none(at_ipc["own_seconds"]))
            stored.append(mean_or_none(at_ipc["storage_bytes"]))
    distill_seconds = sum(t for t in times if t is not None) if any(t is not None for t in times) else None
    stage_seconds = mean_or_none(counted["stage_seconds"]) or 0.0
    return {
        "kind": "generator" if generator else "pixels", "budget": joined(counted["budget"]),
        "device": joined(counted["device_name"].fillna(counted["device"])),
        "distillations": 1 if generator else len(ipcs) - len(missing),
        "stage_seconds": stage_seconds, "distill_seconds": distill_seconds,
        "sample_seconds": sample_total if generator else None,
        "total_seconds": None if distill_seconds is None else stage_seconds + distill_seconds + sample_total,
        "peak_memory_bytes": counted["peak_memory_bytes"].max() if counted["peak_memory_bytes"].notna().any() else None,
        "storage_bytes": sum(s for s in stored if s is not None) if any(s is not None for s in stored) else None,
        "missing": ",".join(map(str, missing)), "commits": joined(counted["commit"]),
    }


def serving_costs(distills: pd.DataFrame, evals: pd.DataFrame, ipcs: tuple[int, ...] = SERVING_IPCS,
                  reference: str = REFERENCE) -> pd.DataFrame:
    """One row per (dataset, method, variant) with the cost to serve ``ipcs`` and its ratio to ``reference``."""
    if distills.empty:
        return pd.DataFrame(columns=COLUMNS)
    rows = []
    for (dataset, method, variant), group in distills.groupby(["dataset", "method", "variant"]):
        mine = evals[(evals["dataset"] == dataset) & (evals["method"] == method) & (evals["variant"] == variant)] \
            if not evals.empty else evals
        if group["ipc_independent"].any() or (not mine.empty and (mine["ipc"] == 0).all()):
            continue  # the set ignores the IPC (``full``; older records: told by their evaluations)
        rows.append({"dataset": dataset, "method": method, "variant": variant, **serving_cost(group, mine, ipcs)})
    table = pd.DataFrame(rows, columns=COLUMNS[:-2])
    for column, source in (("time_vs_ref", "total_seconds"), ("storage_vs_ref", "storage_bytes")):
        table[column] = [ratio_to_reference(table, row, source, reference) for _, row in table.iterrows()]
    return table


def ratio_to_reference(table: pd.DataFrame, row: pd.Series, column: str, reference: str) -> float | None:
    ref = table[(table["dataset"] == row["dataset"]) & (table["method"] == reference) & (table["variant"] == "")]
    if ref.empty or pd.isna(row[column]) or pd.isna(ref[column].iloc[0]) or not ref[column].iloc[0]:
        return None
    return float(row[column]) / float(ref[column].iloc[0])
