"""How far ``--dry-run``'s estimates are from what the cells really cost: the cost model against a store.

``benchmark/cost_model.py`` prices every cell in seconds on the reference device (this project's 2-core
AMD EPYC, both threads). Every record keeps its measured wall time and the device and threads it ran on.
This script rebuilds each recorded cell, estimates it, and prints measured / estimated per method, stage
and evaluation architecture, so a wrong unit cost, architecture factor or a preset the model does not read
shows up as a ratio far from 1 (a record run on one thread is expected near 2). Cached set-ups (an MTT
buffer, a GAN) are paid by the first cell that needed them, so a stage's totals are compared with one
set-up per (method, dataset, budget) added.

    python -m benchmarks.cost_model_check --results results            # CPU records
    python -m benchmarks.cost_model_check --results results --device cuda
"""

from __future__ import annotations

import argparse
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

import pandas as pd
from tabulate import tabulate

from benchmark.cells import DistillCell, EvalCell
from benchmark.cost_model import distill_seconds, eval_seconds, setup_cells, setup_seconds
from benchmark.store import ResultsStore

GROUP_BY = ("stage", "method", "dataset", "arch", "threads")  # one row of the report per distinct tuple


def distill_cell(config: dict[str, Any]) -> DistillCell:
    return DistillCell(config["dataset"], config["method"], config["ipc"], config["budget"], config["seed"],
                       config["hparams"], config.get("max_iterations"))


def threads_of(record: dict[str, Any]) -> str:
    """``"1"`` from the provenance's ``cpu (AMD EPYC, 1 threads)``; the card's name on a GPU."""
    device = (record.get("provenance") or {}).get("device") or "?"
    found = re.search(r"(\d+) threads", device)
    return found.group(1) if found else device


def measured_rows(store: ResultsStore, device: str) -> list[dict[str, Any]]:
    """One row per record on ``device``: its group, measured seconds and estimated seconds (cell only)."""
    distills = {r["key"]: r for r in store.records("distill")}
    rows = []
    for stage, records in (("distill", distills.values()), ("eval", store.records("eval"))):
        for record in records:
            cost, config = record.get("cost") or {}, record.get("config") or {}
            if cost.get("device") != device or "wall_seconds" not in cost:
                continue
            try:
                if stage == "distill":
                    cell = distill_cell(config)
                    estimate = distill_seconds(cell)
                else:
                    source = distills.get(config["distill_key"])
                    if source is None:
                        continue
                    cell = distill_cell(source["config"])
                    estimate = eval_seconds(EvalCell(cell, config["ipc"], config["arch"], config["protocol"],
                                                     tuple(config["eval_seeds"])))
            except (KeyError, TypeError, ValueError):  # an older or foreign record layout
                continue
            rows.append({"stage": stage, "method": config["method"], "dataset": config["dataset"],
                         "arch": config["arch"] if stage == "eval" else "-",
                         "threads": threads_of(record), "cells": 1, "measured_s": float(cost["wall_seconds"]),
                         "estimated_s": estimate, "cell": cell})
    return rows


def compare(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Totals per ``GROUP_BY``, each distillation group with its cached set-ups once."""
    groups: dict[tuple, dict[str, Any]] = defaultdict(lambda: {"cells": 0, "measured_s": 0.0, "estimated_s": 0.0})
    setups: dict[tuple, list[DistillCell]] = defaultdict(list)
    for row in rows:
        key = tuple(row[column] for column in GROUP_BY)
        group = groups[key]
        group["cells"] += 1
        group["measured_s"] += row["measured_s"]
        group["estimated_s"] += row["estimated_s"]
        if row["stage"] == "distill":
            setups[key].append(row["cell"])
    for key, cells in setups.items():
        groups[key]["estimated_s"] += sum(map(setup_seconds, setup_cells(cells)))
    frame = pd.DataFrame([{**dict(zip(GROUP_BY, k, strict=True)), **v} for k, v in groups.items()])
    if frame.empty:
        return frame
    frame["measured/estimated"] = frame["measured_s"] / frame["estimated_s"].where(frame["estimated_s"] > 0)
    return frame.sort_values(["stage", "dataset", "method", "arch", "threads"]).reset_index(drop=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--results", type=Path, default=Path("results"), help="results directory (default: results/)")
    p.add_argument("--device", default="cpu", help="records of this device kind: cpu or cuda (default: cpu)")
    p.add_argument("--min-seconds", type=float, default=5.0,
                   help="leave out groups that took less than this (start-up noise; default: 5)")
    a = p.parse_args(argv)
    frame = compare(measured_rows(ResultsStore(a.results), a.device))
    if frame.empty:
        print(f"no {a.device} records with a measured cost under {a.results}")
        return 1
    frame = frame[frame["measured_s"] >= a.min_seconds]
    print(tabulate(frame, headers="keys", tablefmt="github", showindex=False, floatfmt=".2f"))
    ratio = frame["measured_s"].sum() / frame["estimated_s"].sum()
    print(f"\nall groups above: measured {frame['measured_s'].sum() / 3600:.2f} h, estimated "
          f"{frame['estimated_s'].sum() / 3600:.2f} h (reference device), ratio {ratio:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
