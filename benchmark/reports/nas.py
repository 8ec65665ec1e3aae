"""The NAS application's report: how well each distilled set ranks architectures (DC paper, §4.3).

From the ``records/nas/`` records of ``python -m benchmark.nas``, per dataset, protocol, method and IPC:

* ``spearman``: Spearman's rank correlation between the candidates' accuracies after training on the
  whole set (a) and on the method's set (b), over the candidates both have;
* ``chosen``: the candidate (b) ranks first, its accuracy under (a) (``chosen_full``), the best
  accuracy under (a) (``best_full``) and the chosen one's rank under (a) (1 = (b) found the best);
* ``time_ratio``: total training time of (b) over that of (a) on those candidates (the search's
  speed-up is its inverse; the distillation's own time is shown beside it, ``distill_seconds``).
"""

from __future__ import annotations

import pandas as pd

from benchmark.nas import Candidate
from benchmark.reports.frame import by_key, distill_frame, eval_row, joined, rows_of
from benchmark.reports.stats import spearman
from benchmark.reports.units import seconds
from benchmark.store import ResultsStore

FULL = "full"
COLUMNS = ["dataset", "protocol", "method", "variant", "ipc", "candidates", "spearman", "chosen", "chosen_full",
           "best_full", "chosen_rank", "time_ratio", "distill_seconds", "commits"]


def nas_row(r: dict, distills: dict[str, dict]) -> dict:
    row = eval_row(r, distills)
    return {**{k: row[k] for k in ("dataset", "method", "variant", "ipc", "protocol", "protocol_description",
                                   "distill_seconds", "commit")},
            "candidate": Candidate(**r["config"]["candidate"]).name,
            "accuracy": sum(row["accuracies"]) / len(row["accuracies"]), "seconds": row["eval_seconds"]}


def nas_frame(store: ResultsStore, distills: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per NAS record: the candidate, what it trained on, its accuracy and training time."""
    known = by_key(distill_frame(store) if distills is None else distills)
    return pd.DataFrame(rows_of(store, "nas", lambda r: nas_row(r, known)))


def rank_of(value: float, values: list[float]) -> int:
    """1 + the number of values strictly better (ties share the better rank)."""
    return 1 + sum(v > value for v in values)


def nas_summary(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per (dataset, protocol, method, variant, IPC) trained on distilled sets (see module doc)."""
    rows = []
    if frame.empty:
        return pd.DataFrame(columns=COLUMNS)
    for (dataset, protocol), part in frame.groupby(["dataset", "protocol"]):
        full = part[part["method"] == FULL].groupby("candidate").agg(accuracy=("accuracy", "mean"),
                                                                       seconds=("seconds", "sum"))
        for (method, variant, ipc), proxy in part[part["method"] != FULL].groupby(["method", "variant", "ipc"]):
            mine = proxy.groupby("candidate").agg(accuracy=("accuracy", "mean"), seconds=("seconds", "sum"))
            common = sorted(set(mine.index) & set(full.index))
            row = {"dataset": dataset, "protocol": protocol, "method": method, "variant": variant, "ipc": ipc,
                   "candidates": len(common), "distill_seconds": proxy["distill_seconds"].mean(),
                   "commits": joined(proxy["commit"])}
            if common:
                a, b = full.loc[common, "accuracy"].tolist(), mine.loc[common, "accuracy"].tolist()
                chosen = common[max(range(len(common)), key=lambda i: (b[i], -i))]
                chosen_full = float(full.loc[chosen, "accuracy"])
                full_seconds = full.loc[common, "seconds"].sum()
                row.update(spearman=spearman(a, b), chosen=chosen, chosen_full=chosen_full, best_full=max(a),
                           chosen_rank=rank_of(chosen_full, a),
                           time_ratio=mine.loc[common, "seconds"].sum() / full_seconds if full_seconds else None)
            rows.append(row)
    return pd.DataFrame(rows, columns=COLUMNS)


def nas_table(summary: pd.DataFrame) -> pd.DataFrame:
    """The summary as printed: one row per proxy, numbers formatted, absent values as ``—``."""
    def fmt(value, pattern: str) -> str:
        return "—" if value is None or pd.isna(value) else pattern.format(value)

    return pd.DataFrame({
        "dataset": summary["dataset"], "protocol": summary["protocol"],
        "proxy": [f"{m} [{v}]" if v else m for m, v in zip(summary["method"], summary["variant"], strict=True)],
        "ipc": summary["ipc"], "candidates": summary["candidates"],
        "Spearman ρ": [fmt(v, "{:.3f}") for v in summary["spearman"]],
        "chosen by proxy": summary["chosen"].fillna("—"),
        "its full-data acc.": [fmt(v, "{:.2f}") for v in summary["chosen_full"]],
        "best full-data acc.": [fmt(v, "{:.2f}") for v in summary["best_full"]],
        "its rank": [fmt(v, "{:.0f}") for v in summary["chosen_rank"]],
        "time proxy/full": [fmt(v, "{:.3f}") for v in summary["time_ratio"]],
        "distillation": [seconds(v) for v in summary["distill_seconds"]], "commit": summary["commits"],
    })


def nas_markdown(store: ResultsStore) -> str:
    """The NAS table of a store, for ``benchmark.nas`` to print after a run."""
    summary = nas_summary(nas_frame(store))
    if summary.empty:
        return "_No NAS results yet (run `python -m benchmark.nas`)._"
    return nas_table(summary).to_markdown(index=False, disable_numparse=True)
