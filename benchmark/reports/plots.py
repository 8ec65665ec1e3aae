"""Figures: accuracy against IPC, accuracy against the cost of serving IPCs (a Pareto view), and accuracy
against each swept hyper-parameter (error bars: std over evaluation networks).

Every figure is written as a PNG under ``results/plots/`` and described by a :class:`Figure` (its
dataset, IPC and architecture), so the leaderboard page can filter figures like table rows.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from benchmark.data.validation import is_validation
from benchmark.reports.frame import method_label
from benchmark.reports.sensitivity import GROUP
from benchmark.reports.tables import CONVNET


@dataclass(frozen=True)
class Figure:
    path: Path
    title: str
    kind: str  # "accuracy-vs-ipc", "accuracy-vs-cost", "sensitivity", "synthetic-set"
    dataset: str | None = None
    ipc: int | None = None
    arch: str | None = None


def slug(*parts: object) -> str:
    """A file-name-safe name (datasets may be ``npz:/path/x.npz``)."""
    return re.sub(r"[^A-Za-z0-9_.=-]+", "_", "_".join(str(p) for p in parts if str(p))).strip("_")


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    legends = [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]  # out of the layout: `legend`
    fig.savefig(path, dpi=110, bbox_inches="tight", bbox_extra_artists=fig.get_default_bbox_extra_artists() + legends)
    pyplot().close(fig)
    return path


def accuracy_axis(dataset: str) -> str:
    """The y-axis label: a ``val:NAME`` dataset's accuracies are read on held-out training images, and a
    figure must not pass them off as test accuracies."""
    return f"{'validation' if is_validation(dataset) else 'test'} accuracy (%)"


MARKERS = "osD^vP*Xph"
LEGEND_WIDTH = 40  # characters per legend line: a variant's label lists every hyper-parameter it changes


def method_styles(summary: pd.DataFrame) -> dict[str, dict[str, str]]:
    """Matplotlib style per method label, the same in every figure of a report: one colour per method
    (``tab20``'s ten hues, then their light shades: the default cycle repeats after ten) and, for its
    hyper-parameter variants, that colour with another marker and a dashed line."""
    if summary.empty:
        return {}
    import matplotlib

    pairs = matplotlib.colormaps["tab20"].colors  # (dark, light) pairs of ten hues
    colours = pairs[0::2] + pairs[1::2]  # ten distinct hues first
    methods = sorted(set(summary["method"]))
    styles = {}
    for method, variants in summary.groupby("method")["variant"]:
        for k, variant in enumerate(sorted(set(variants))):  # "" (the method as registered) first
            styles[method_label({"method": method, "variant": variant})] = {
                "color": colours[methods.index(method) % len(colours)], "marker": MARKERS[k % len(MARKERS)],
                "linestyle": "-" if k == 0 else "--"}
    return styles


def legend(ax, axes=None) -> None:
    """The legend beside ``ax`` (with every label of ``axes``, once), long variant labels wrapped at their
    commas, so it never covers a point."""
    entries: dict = {}
    for each in axes if axes is not None else [ax]:
        for handle, label in zip(*each.get_legend_handles_labels(), strict=True):
            entries.setdefault(label, handle)
    labels, handles = list(entries), list(entries.values())
    if handles:
        wrapped = [textwrap.fill(label.replace(",", ", "), LEGEND_WIDTH, subsequent_indent="  ") for label in labels]
        box = ax.legend(handles, wrapped, fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1), borderaxespad=0)
        box.set_in_layout(False)  # tight_layout keeps the axes' size; the saved image grows to hold the legend


def accuracy_vs_ipc(summary: pd.DataFrame, out_dir: Path) -> list[Figure]:
    """Per dataset, architecture and protocol: one line per method; ``full`` as a dashed level."""
    plt, figures, styles = pyplot(), [], method_styles(summary)
    for (dataset, arch, protocol), group in summary[summary["ipc"] > 0].groupby(["dataset", "arch", "protocol"]):
        fig, ax = plt.subplots(figsize=(5.5, 4))
        for label, g in group.assign(label=group.apply(method_label, axis=1)).groupby("label"):
            g = g.sort_values("ipc")
            ax.errorbar(g["ipc"], g["mean"], yerr=g["std"], capsize=3, label=label, **styles[label])
        whole = summary[(summary["dataset"] == dataset) & (summary["ipc"] == 0) & (summary["arch"] == arch)
                        & (summary["protocol"] == protocol)]
        for _, row in whole.iterrows():
            ax.axhline(row["mean"], linestyle="--", color="grey", label=f"{method_label(row)} (whole set)")
        ax.set(xscale="log", xlabel="images per class (IPC)", ylabel=accuracy_axis(dataset),
               title=f"{dataset} · {arch} · protocol {protocol}")
        ipcs = sorted(set(group["ipc"]))
        ax.set_xticks(ipcs, [str(i) for i in ipcs])
        ax.minorticks_off()
        legend(ax)
        title = f"Accuracy vs IPC: {dataset}, {arch}, protocol {protocol}"
        path = save(fig, out_dir / f"accuracy_vs_ipc_{slug(dataset, arch, protocol)}.png")
        figures.append(Figure(path, title, "accuracy-vs-ipc", dataset, None, arch))
    return figures


def pareto_front(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The (cost, accuracy) points no other point beats on both: cheaper or equal *and* more accurate."""
    front, best = [], float("-inf")
    for cost, acc in sorted(points, key=lambda p: (p[0], -p[1])):
        if acc > best:
            front.append((cost, acc))
            best = acc
    return front


def accuracy_vs_cost(summary: pd.DataFrame, costs: pd.DataFrame, out_dir: Path) -> list[Figure]:
    """Per dataset and protocol (ConvNet): one panel per served IPC, accuracy at that IPC against the total
    time to serve every IPC, with the Pareto front drawn through the methods no other beats."""
    plt, figures, styles = pyplot(), [], method_styles(summary)
    costed = costs.dropna(subset=["total_seconds"])
    convnet = summary[(summary["arch"] == CONVNET) & (summary["ipc"] > 0)]
    for (dataset, protocol), part in convnet.groupby(["dataset", "protocol"]):
        points = part.merge(costed[costed["dataset"] == dataset][["method", "variant", "total_seconds"]],
                            on=["method", "variant"])
        if points.empty:
            continue
        ipcs = sorted(set(points["ipc"]))
        fig, axes = plt.subplots(1, len(ipcs), figsize=(4.2 * len(ipcs), 3.8), squeeze=False)
        for ax, ipc in zip(axes[0], ipcs, strict=True):
            at = points[points["ipc"] == ipc]
            for _, row in at.iterrows():  # named by method on the panel; variants told apart in the legend
                style = {k: v for k, v in styles[method_label(row)].items() if k != "linestyle"}
                ax.errorbar(row["total_seconds"], row["mean"], yerr=row["std"], capsize=3, label=method_label(row),
                            **style)
                ax.annotate(row["method"], (row["total_seconds"], row["mean"]), fontsize=7,
                            xytext=(4, 4), textcoords="offset points")
            front = pareto_front(list(zip(at["total_seconds"], at["mean"], strict=True)))
            ax.step([c for c, _ in front], [a for _, a in front], where="post", color="grey", linestyle=":",
                    label="Pareto front")
            # a zero-cost method (a coreset timed at 0 s) has no place on a log axis: symlog keeps it in view
            scale = "log" if (at["total_seconds"] > 0).all() else "symlog"
            ax.set(xscale=scale, xlabel="total time to serve every IPC (s)", ylabel=accuracy_axis(dataset),
                   title=f"{dataset} ipc={ipc}\n{CONVNET} · protocol {protocol}")
        legend(axes[0][-1], axes[0])
        path = save(fig, out_dir / f"accuracy_vs_cost_{slug(dataset, protocol)}.png")
        figures.append(Figure(path, f"Accuracy vs serving cost: {dataset}, protocol {protocol}", "accuracy-vs-cost",
                              dataset, None, CONVNET))
    return figures


def sensitivity(series: pd.DataFrame, out_dir: Path) -> list[Figure]:
    """Per (dataset, method, IPC, arch, protocol): one panel per swept hyper-parameter, its values evenly
    spaced (they may be 0, negative or names), mean ± std."""
    plt, figures = pyplot(), []
    for (dataset, method, ipc, arch, protocol), part in series.groupby(GROUP):
        names = list(dict.fromkeys(part["hparam"]))
        fig, axes = plt.subplots(1, len(names), figsize=(3.6 * len(names), 3.4), squeeze=False, sharey=True)
        for ax, name in zip(axes[0], names, strict=True):
            points = part[part["hparam"] == name]
            ax.errorbar(range(len(points)), points["mean"], yerr=points["std"], marker="o", capsize=3)
            ax.set_xticks(range(len(points)), [str(v) for v in points["value"]])
            ax.set(xlabel=name, ylabel=accuracy_axis(dataset))
        fig.suptitle(f"{method} · {dataset} ipc={ipc} · {arch} · protocol {protocol}", fontsize=9)
        path = save(fig, out_dir / f"sensitivity_{slug(dataset, method, ipc, arch, protocol)}.png")
        figures.append(Figure(path, f"Sensitivity of {method}: {dataset} ipc={ipc}, {arch}, protocol {protocol}",
                              "sensitivity", dataset, int(ipc), arch))
    return figures
