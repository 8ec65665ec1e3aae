"""Re-distillation cost of D2M from a results store: serving IPC {1, 10, 50} with one distillation and three
samplings, against what one more distillation costs (issue 3; DESIGN §6).

For every (dataset, generator method) it prints, as means over distillation seeds: the generator's
pre-training (paid once per dataset and budget, then read from the cache by every seed and ablation), the
distillation proper (the matching loop), the sampling time of each IPC (timed by the evaluation records),
the time to serve all the IPCs (distillation + samplings), the time of distilling once per IPC instead, and
their ratio. Pixel methods in the store are listed with their per-IPC distillations.

    python experiments/d2m_redistill_cost.py results/d2m-evidence [--ipc 1,10,50]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmark.store import ResultsStore  # noqa: E402


def distill_rows(store: ResultsStore) -> pd.DataFrame:
    rows = []
    for r in store.records("distill"):
        artifact = r["result"].get("artifact", {})
        rows.append({"key": r["key"], "dataset": r["config"]["dataset"], "method": r["config"]["method"],
                     "ipc": r["config"]["ipc"], "generator": bool(r["result"].get("serves_any_ipc")),
                     "wall_s": r["cost"]["wall_seconds"], "peak_mb": (r["cost"].get("peak_memory_bytes") or 0) / 2**20,
                     "pretrain_s": (artifact.get("pretrain") or {}).get("seconds"),
                     "pretrain_source": (artifact.get("pretrain") or {}).get("source"),
                     "matching_s": (artifact.get("distill") or {}).get("seconds", 0.0)})
    return pd.DataFrame(rows)


def sample_seconds(store: ResultsStore) -> pd.DataFrame:
    rows = [{"key": r["config"]["distill_key"], "ipc": r["config"]["ipc"], "sample_s": r["cost"].get("sample_seconds")}
            for r in store.records("eval")]
    return pd.DataFrame(rows, columns=["key", "ipc", "sample_s"])


def cost_table(store: ResultsStore, ipcs: list[int]) -> pd.DataFrame:
    distills, samples = distill_rows(store), sample_seconds(store)
    if distills.empty:
        return pd.DataFrame()
    out = []
    for (dataset, method), group in distills.groupby(["dataset", "method"]):
        row: dict = {"dataset": dataset, "method": method, "seeds": len(group)}
        if group["generator"].all():
            distill = group["matching_s"].mean()
            mine = samples[samples["key"].isin(group["key"])]
            per_ipc = {ipc: mine.loc[mine["ipc"] == ipc, "sample_s"].mean() for ipc in ipcs}
            serve = distill + sum(v for v in per_ipc.values() if v == v)
            row.update({"pretrain s (once)": group["pretrain_s"].max(), "distill s": distill,
                        **{f"sample s ipc{ipc}": v for ipc, v in per_ipc.items()},
                        "serve s (1 distill + samplings)": serve, "re-distill s (1 per IPC)": distill * len(ipcs),
                        "re-distill / serve": distill * len(ipcs) / serve if serve else None})
        else:
            at = group[group["ipc"].isin(ipcs)].groupby("ipc")["wall_s"].mean()
            row.update({"distill s": at.mean(), "serve s (1 distill + samplings)": None,
                        "re-distill s (1 per IPC)": at.sum()})
        row["peak MiB"] = int(group["peak_mb"].max())
        out.append(row)
    return pd.DataFrame(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, help="a results directory written by python -m benchmark.run")
    parser.add_argument("--ipc", default="1,10,50", help="the IPCs to serve (default 1,10,50)")
    args = parser.parse_args(argv)
    table = cost_table(ResultsStore(args.results), [int(i) for i in args.ipc.split(",")])
    if table.empty:
        print(f"no distillation records under {args.results}")
        return 1
    print(table.to_markdown(index=False, floatfmt=".3g"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
