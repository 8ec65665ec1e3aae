"""Leaderboard tables and plots: a pure function of the results store.

``python -m benchmark.leaderboard DIR`` writes ``LEADERBOARD.md``, ``leaderboard.tex`` and one
accuracy-vs-IPC plot per dataset under ``DIR`` and prints the markdown; ``--format
markdown|latex|csv|json`` instead prints one row per (dataset, method, IPC, architecture) with mean,
std, n and the cost columns, for scripts to consume.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

from benchmark.errors import BenchmarkError
from benchmark.store import ResultsStore

KEYS = ["dataset", "method", "variant", "ipc", "arch", "protocol"]


def variant_labels(frame: pd.DataFrame) -> pd.Series:
    """Name hyper-parameter variants of a method (sweeps) by the values that differ between them."""
    labels = pd.Series("", index=frame.index)
    for _, group in frame.groupby(["dataset", "method"]):
        settings = group["hparams"].map(json.loads)
        distinct = {json.dumps(s, sort_keys=True) for s in settings}
        if len(distinct) < 2:
            continue
        varying = sorted(k for k in set().union(*settings) if len({json.dumps(s.get(k)) for s in settings}) > 1)
        labels[group.index] = settings.map(lambda s, v=varying: ",".join(f"{k}={s.get(k)}" for k in v))
    return labels


def records_frame(store: ResultsStore) -> pd.DataFrame:
    """One row per evaluation record, joined with the cost of the distillation it evaluated."""
    distills = {r["key"]: r for r in store.records("distill")}
    rows = []
    for r in store.records("eval"):
        config, result, cost = r["config"], r["result"], r["cost"]
        d = distills.get(config["distill_key"], {})
        d_config, d_cost, d_result = d.get("config", {}), d.get("cost", {}), d.get("result", {})
        rows.append({
            "dataset": config["dataset"], "method": config["method"],
            "ipc": config["ipc"] if config["ipc"] is not None else 0, "arch": config["arch"],
            "protocol": config["protocol"]["name"], "seed": config["sample_seed"],
            "hparams": json.dumps(d_config.get("hparams", {}), sort_keys=True),
            "budget": d_config.get("budget"), "accuracies": result["accuracies"],
            "distill_seconds": d_cost.get("wall_seconds"), "distill_peak_memory": d_cost.get("peak_memory_bytes"),
            "storage_bytes": d_result.get("storage_bytes"), "serves_any_ipc": d_result.get("serves_any_ipc"),
            "sample_seconds": cost.get("sample_seconds"), "eval_seconds": cost.get("wall_seconds"),
            "device": cost.get("device"), "commit": (r.get("provenance", {}).get("git") or {}).get("commit"),
        })
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    frame["variant"] = variant_labels(frame)
    return frame


def summarise(frame: pd.DataFrame) -> pd.DataFrame:
    """Mean ± std over every evaluation network of a (dataset, method, variant, IPC, arch, protocol)."""
    if frame.empty:
        return pd.DataFrame(columns=[*KEYS, "mean", "std", "n"])
    rows = []
    for key, group in frame.groupby(KEYS, sort=True):
        accs = pd.Series([a for accs in group["accuracies"] for a in accs], dtype=float)
        rows.append({**dict(zip(KEYS, key, strict=True)), "mean": accs.mean(), "std": accs.std(ddof=0), "n": len(accs),
                     "seeds": group["seed"].nunique(), "budget": group["budget"].iloc[0],
                     "distill_seconds": group["distill_seconds"].mean(), "storage_bytes": group["storage_bytes"].mean(),
                     "sample_seconds": group["sample_seconds"].mean(), "eval_seconds": group["eval_seconds"].mean(),
                     "device": ",".join(sorted(set(group["device"].dropna())))})
    return pd.DataFrame(rows)


def method_label(row: pd.Series) -> str:
    return f"{row['method']} [{row['variant']}]" if row["variant"] else row["method"]


def pivot(summary: pd.DataFrame, arch: str, protocol: str, cell: str) -> pd.DataFrame:
    """Rows: method; columns: dataset × IPC; ``full`` (IPC-independent, ipc 0) fills every IPC column."""
    part = summary[(summary["arch"] == arch) & (summary["protocol"] == protocol)].copy()
    ipcs = {d: sorted(set(g["ipc"]) - {0}) for d, g in part.groupby("dataset")}
    rows: dict[str, dict[str, str]] = {}
    for _, row in part.iterrows():
        targets = ipcs.get(row["dataset"], []) if row["ipc"] == 0 else [row["ipc"]]
        for ipc in targets or [0]:
            column = f"{row['dataset']} ipc={ipc}" if ipc else f"{row['dataset']} (whole)"
            rows.setdefault(method_label(row), {})[column] = cell.format(**row)
    table = pd.DataFrame.from_dict(rows, orient="index").sort_index()
    ordered = sorted(table.columns, key=lambda c: (c.split(" ")[0], int(c.split("=")[1]) if "=" in c else 0))
    return table[ordered].fillna("—")


def markdown_report(summary: pd.DataFrame, failures: list[dict], protocols: dict[str, str]) -> str:
    lines = ["# Leaderboard", "", "Generated by `python -m benchmark.leaderboard` from the records in this folder; "
             "do not edit by hand. Accuracy: mean ± std (%) over every evaluation network.", ""]
    if summary.empty:
        lines.append("_No finished evaluations yet._")
    for (arch, protocol), _ in summary.groupby(["arch", "protocol"]):
        lines += [f"## {arch}, protocol `{protocol}`", "", f"> {protocols.get(protocol, '')}", ""]
        lines += [pivot(summary, arch, protocol, "{mean:.2f} ± {std:.2f}").to_markdown(), ""]
    if failures:
        lines += ["## Failed cells", ""]
        lines += [f"- {f.get('label', f.get('key'))}: {f.get('error', '')}" for f in failures]
        lines.append("")
    return "\n".join(lines)


def latex_report(summary: pd.DataFrame) -> str:
    parts = []
    for (arch, protocol), _ in summary.groupby(["arch", "protocol"]):
        table = pivot(summary, arch, protocol, "{mean:.1f} $\\pm$ {std:.1f}")
        parts.append(f"% {arch}, protocol {protocol}\n" + table.to_latex(escape=False))
    return "\n".join(parts)


def plot_accuracy_vs_ipc(summary: pd.DataFrame, out_dir: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    out_dir.mkdir(parents=True, exist_ok=True)
    for (dataset, arch, protocol), group in summary[summary["ipc"] > 0].groupby(["dataset", "arch", "protocol"]):
        fig, ax = plt.subplots(figsize=(5.5, 4))
        for label, g in group.assign(label=group.apply(method_label, axis=1)).groupby("label"):
            g = g.sort_values("ipc")
            ax.errorbar(g["ipc"], g["mean"], yerr=g["std"], marker="o", capsize=3, label=label)
        full = summary[(summary["dataset"] == dataset) & (summary["ipc"] == 0) & (summary["arch"] == arch)
                       & (summary["protocol"] == protocol)]
        for _, row in full.iterrows():
            ax.axhline(row["mean"], linestyle="--", color="grey", label=f"{row['method']} (whole set)")
        ax.set_xscale("log")
        ax.set_xlabel("images per class (IPC)")
        ax.set_ylabel("test accuracy (%)")
        ax.set_title(f"{dataset} · {arch} · protocol {protocol}")
        ax.legend(fontsize=7)
        fig.tight_layout()
        path = out_dir / f"accuracy_vs_ipc_{dataset.replace(':', '_').replace('/', '_')}_{arch}_{protocol}.png"
        fig.savefig(path, dpi=120)
        plt.close(fig)
        paths.append(path)
    return paths


def protocol_descriptions(frame: pd.DataFrame) -> dict[str, str]:
    from benchmark.protocol import PROTOCOLS

    return {name: PROTOCOLS.get(name).description for name in set(frame.get("protocol", [])) if name in PROTOCOLS}


def write_reports(results: Path) -> str:
    """Regenerate LEADERBOARD.md, leaderboard.tex and the plots under ``results``; return the markdown."""
    store = ResultsStore(results)
    frame = records_frame(store)
    summary = summarise(frame)
    markdown = markdown_report(summary, store.failures(), protocol_descriptions(frame))
    (results / "LEADERBOARD.md").write_text(markdown + "\n")
    if not summary.empty:
        (results / "leaderboard.tex").write_text(latex_report(summary))
        plot_accuracy_vs_ipc(summary, results / "plots")
    return markdown


def rows_for_scripts(results: Path, fmt: str) -> str:
    summary = summarise(records_frame(ResultsStore(results)))
    if fmt == "json":
        return summary.to_json(orient="records", indent=1)
    if fmt == "csv":
        return summary.to_csv(index=False)
    if fmt == "latex":
        return summary.to_latex(index=False, float_format="%.2f")
    return summary.to_markdown(index=False, floatfmt=".2f")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmark.leaderboard", description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="?", default="results", help="results directory (default: results/)")
    parser.add_argument("--format", choices=["markdown", "latex", "csv", "json"],
                        help="print one row per (dataset, method, ipc, arch) instead of writing the reports")
    args = parser.parse_args(argv)
    try:
        results = Path(args.results)
        if not (results / "records").is_dir():
            raise BenchmarkError(f"{results} holds no results store (no records/ folder); run benchmark.run first")
        print(rows_for_scripts(results, args.format) if args.format else write_reports(results))
    except BenchmarkError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
