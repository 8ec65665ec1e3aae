"""Everything the reports show, computed once from the store: a :class:`Report`.

The markdown leaderboard and the HTML page are two renderings of the same object, so they never
disagree; figures are drawn here (under ``plots/`` and ``images/`` of the results directory).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from benchmark.data import DataOptions
from benchmark.data.validation import is_validation
from benchmark.distiller import PAPER_BUDGET, ablations
from benchmark.reports import nas, plots, sensitivity, serving_cost, stats
from benchmark.reports.frame import (
    accuracies_by_key,
    distill_frame,
    failure_frame,
    protocol_labels,
    provenance_frame,
    records_frame,
    summarise,
)
from benchmark.reports.images import synthetic_set_grids
from benchmark.reports.plots import Figure
from benchmark.reports.tables import cross_arch_tables
from benchmark.store import ResultsStore


@dataclass(frozen=True)
class Caveat:
    """A warning for the reader, with the cells it concerns kept apart from its sentence, so both renderings
    can fold a long list (dozens of cells after a regeneration) under it and keep the warnings readable."""

    text: str
    cells: tuple[str, ...] = ()


@dataclass
class Report:
    results: Path
    summary: pd.DataFrame  # frame.summarise + stats.with_comparisons columns
    ablations: pd.DataFrame  # stats.ablation_comparisons: each method against its registered ablations
    failures: pd.DataFrame
    protocols: dict[str, str]
    cross_arch: list[tuple[tuple[str, int, str], pd.DataFrame]]
    costs: pd.DataFrame
    nas: pd.DataFrame
    sensitivity: pd.DataFrame
    counts: dict[str, int]
    provenance: pd.DataFrame = field(default_factory=pd.DataFrame)
    figures: list[Figure] = field(default_factory=list)
    warnings: list[Caveat] = field(default_factory=list)
    image_problems: list[str] = field(default_factory=list)

    def figures_of(self, kind: str) -> list[Figure]:
        return [f for f in self.figures if f.kind == kind]

    def relative(self, figure: Figure) -> str:
        return figure.path.relative_to(self.results).as_posix()


def protocol_descriptions(*frames: pd.DataFrame) -> dict[str, str]:
    """Each protocol's description as its records keep it (NAS protocols are not registered anywhere)."""
    out: dict[str, str] = {}
    for frame in frames:
        if not frame.empty:
            for name, text in zip(frame["protocol"], frame["protocol_description"], strict=True):
                out.setdefault(name, text)
    return dict(sorted(out.items()))


ARTIFACT_WARNINGS = {
    "earlier_artifact": "read an earlier artifact of their distillation, regenerated since (checksums differ; same "
                        "configuration and seed)",
    "unknown_artifact": "predate a regeneration of their distillation and recorded no checksum, so they may have "
                        "read a different artifact than later evaluations of it",
}
"""Evaluation-frame flags → what the warning says about the artifact those evaluations trained on."""


def warnings_for(summary: pd.DataFrame, costs: pd.DataFrame, frame: pd.DataFrame,
                 distills: pd.DataFrame) -> list[Caveat]:
    """What a reader must know before trusting a number: missing references, reduced budgets, validation
    splits, evaluations of an artifact that has been regenerated since, networks that did not fit their set,
    generator methods that may start from different generators."""
    notes = [f"`random` is missing at {where}: no gain over random there (run the `random` method too)."
             for where in stats.missing_references(summary)]
    whole = set(summary.loc[summary["method"] == stats.UPPER_BOUND, "dataset"])
    notes += [f"`full` is missing for {d}: no fraction of the whole-data accuracy." for d in
              sorted(set(summary["dataset"]) - whole)]
    reduced = sorted({b for b in ",".join(summary["budget"].dropna()).split(",") if b and b != PAPER_BUDGET})
    if reduced:
        notes.append(f"REDUCED distillation budget(s) {', '.join(reduced)} in these results: not the papers' budgets.")
    held_out = sorted(d for d in set(summary["dataset"]) if is_validation(d))
    if held_out:
        notes.append(f"{', '.join(held_out)}: VALIDATION split(s), a part of the training split held out as the test "
                     "split, for choosing hyper-parameters; not test accuracies.")
    if not costs.empty and not (costs["method"] == serving_cost.REFERENCE).any():
        notes.append(f"`{serving_cost.REFERENCE}` has no distillation here: the cost ratios to it are empty.")
    artifacts = []
    for column, what in ARTIFACT_WARNINGS.items():
        if not frame.empty and frame[column].any():
            rows = frame[frame[column]]
            cells = sorted(f"{r.method} {r.dataset} ipc={r.ipc} {r.arch} seed={r.seed} `{r.protocol}`"
                           for r in rows.itertuples())
            artifacts.append(Caveat(f"{len(rows)} evaluation(s) {what}", tuple(cells)))
    later = under_trained(frame) + recomputed_generators(distills)
    return [Caveat(n) for n in notes] + artifacts + [Caveat(n) for n in later]


UNDERFIT_LOSS = 0.5
"""Mean last-epoch training loss (cross-entropy on one augmented batch of the set) above which a set's networks
count as not having fitted it: one ConvNet on an IPC-10 set ends at 0.003–0.19 under the `reduced` protocol, one
ViT mostly at 0.8–1.7 (``experiments/cross-arch-evidence.md``); ``e^-0.5`` is 0.61 on the right class."""


def under_trained(frame: pd.DataFrame) -> list[str]:
    """One warning naming, per architecture and protocol, how many evaluations ended without fitting their
    training set: their accuracy measures the protocol's length as much as the set (``full`` is left out: a few
    epochs over the whole training split are not expected to fit it)."""
    if frame.empty:
        return []
    sets = frame[(frame["method"] != stats.UPPER_BOUND) & frame["final_train_loss"].notna()]
    table = (sets.assign(unfit=sets["final_train_loss"] > UNDERFIT_LOSS)
             .groupby(["arch", "protocol"])["unfit"].agg(["sum", "size"]))
    groups = [f"{arch} under `{protocol}` {int(row['sum'])} of {int(row['size'])}"
              for (arch, protocol), row in table.iterrows() if row["sum"]]
    if not groups:
        return []
    return [f"UNDER-TRAINED: evaluations whose networks ended with a training loss above {UNDERFIT_LOSS} on their own "
            f"set (mean last-epoch loss), so their accuracy reflects the protocol's length as much as the set: "
            f"{', '.join(groups)}."]


def recomputed_generators(distills: pd.DataFrame) -> list[str]:
    """A warning per pre-trained generator cache entry that was trained more than once, or whose records
    cite different checksums: the distillations that started from it may start from different generators
    (GAN training differs with, e.g., the thread count), so their rows do not compare one generator's use."""
    if distills.empty or "pretrain_file" not in distills:
        return []
    notes = []
    for (dataset, entry), group in distills.dropna(subset=["pretrain_file"]).groupby(["dataset", "pretrain_file"]):
        trained = int((group["pretrain_source"] == "trained").sum())
        digests = group["pretrain_sha256"].dropna().nunique()
        if trained > 1 or digests > 1:
            methods = ", ".join(sorted(set(group["method"])))
            notes.append(f"{dataset}: the pre-trained generator cache entry {entry} was trained {trained} times "
                         f"({digests} distinct checksum(s) recorded); the {len(group)} distillations of {methods} "
                         f"that start from it may start from different generators.")
    return notes


def build_report(results: Path, draw: bool = True, data: DataOptions | None = None) -> Report:
    """Read the store under ``results``, compute every table, and (``draw``) write every figure."""
    store = ResultsStore(results)
    distills = distill_frame(store)
    failures = failure_frame(store)
    frame = records_frame(store, distills, failures)
    if not failures.empty and not frame.empty:  # a failed cell of `smoke [models=3]` belongs in that table
        failures["protocol"] = protocol_labels(failures, frame)
    accuracies = accuracies_by_key(frame)
    summary = stats.with_comparisons(summarise(frame), accuracies)
    nas_rows = nas.nas_frame(store, distills)
    costs = serving_cost.serving_costs(distills, frame)
    series = sensitivity.sensitivity_series(summary)
    report = Report(
        results=results, summary=summary, ablations=stats.ablation_comparisons(summary, accuracies, ablations()),
        failures=failures, protocols=protocol_descriptions(frame, nas_rows),
        cross_arch=cross_arch_tables(summary, failures, accuracies), costs=costs, nas=nas.nas_summary(nas_rows),
        sensitivity=series, warnings=warnings_for(summary, costs, frame, distills),
        counts={"distillations": len(distills), "evaluations": len(frame), "nas": len(nas_rows),
                "failures": len(failures)},
        provenance=provenance_frame(store),
    )
    if draw and not summary.empty:
        out = results / "plots"
        report.figures += plots.accuracy_vs_ipc(summary, out)
        report.figures += plots.accuracy_vs_cost(summary, costs, out)
        report.figures += plots.sensitivity(series, out)
        grids, report.image_problems = synthetic_set_grids(store, frame, results / "images", data)
        report.figures += grids
    return report
