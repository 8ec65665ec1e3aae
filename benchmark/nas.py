"""``python -m benchmark.nas``: architecture search on distilled sets (the DC paper's NAS application, §4.3).

A distilled set is useful as a *proxy* if ranking architectures by their accuracy after training on it
ranks them as training on the whole dataset would, at a fraction of the time. This command trains every
candidate of a ConvNet search space briefly on (a) the whole training set (the ``full`` method) and on
(b) each method's distilled set, then the leaderboard reports, per method, Spearman's rank correlation
between (a) and (b), the (a)-accuracy of the candidate that (b) picks, and the training time of (b)
relative to (a) (:mod:`benchmark.reports.nas`).

The search space is the DC paper's: width {32, 64, 128, 256} × depth {1, 2, 3, 4} × normalisation {none,
batch, layer, instance, group} × activation {sigmoid, ReLU, leaky ReLU} × pooling {none, max, avg} = 720
ConvNets; ``--space-size N`` draws N of them (seeded; all 720 when N ≥ 720).

NAS cells are evaluation cells of their own stage (records under ``records/nas/``, keyed by a hash of
their whole configuration, candidate included): the distillations they train on are the normal cells of
the main grid, so a set already distilled by ``benchmark.run`` with the same budget and seed is reused, and
a missing one is distilled first. Accuracies are measured on the dataset's test split; the report
compares rankings (no architecture is deployed), a deviation from the paper's held-out validation split.

The default (``cpu-small``) is about half an hour of one core on digits: 24 candidates × (whole set + 3
coresets) ≈ 100 short trainings. The whole-set side trains exactly ``full_data_epochs`` epochs: the paper
protocol's floor of 2,000 steps for the ``full`` row is lifted, since a NAS ranks briefly trained
candidates (with the floor, the 24 whole-set trainings alone took hours here: 42–183 s for the small
candidates, far more for the 256-wide ones).
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch

from benchmark.backends import add_backend_arguments, backend_and_threads
from benchmark.cells import EvalCell, Plan, expand
from benchmark.cli import comma_list, command_line, guarded
from benchmark.data import DataOptions
from benchmark.devices import resolve_device
from benchmark.errors import invalid_value
from benchmark.grid import Grid
from benchmark.models.convnet import ACTIVATIONS, NORMS, POOLINGS
from benchmark.protocol import PAPER
from benchmark.seeding import generator

WIDTHS = (32, 64, 128, 256)
DEPTHS = (1, 2, 3, 4)
SEARCH_ACTIVATIONS = tuple(a for a in ACTIVATIONS if a != "swish")  # the DC paper's three
FULL_SPACE = len(WIDTHS) * len(DEPTHS) * len(NORMS) * len(SEARCH_ACTIVATIONS) * len(POOLINGS)


@dataclass(frozen=True, order=True)
class Candidate:
    """One ConvNet of the search space (``benchmark.models.convnet.ConvNet`` arguments)."""

    width: int = 128
    depth: int = 3
    norm: str = "instancenorm"
    act: str = "relu"
    pooling: str = "avgpooling"

    @property
    def name(self) -> str:
        return f"w{self.width}-d{self.depth}-{self.norm}-{self.act}-{self.pooling}"

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def search_space(size: int, seed: int = 0) -> list[Candidate]:
    """``size`` candidates drawn without replacement from the 720 (all of them when ``size`` ≥ 720)."""
    if size < 1:
        raise invalid_value("--space-size", size, f"a positive integer (the whole space has {FULL_SPACE})")
    space = [Candidate(*c) for c in itertools.product(WIDTHS, DEPTHS, NORMS, SEARCH_ACTIVATIONS, POOLINGS)]
    if size >= len(space):
        return space
    order = torch.randperm(len(space), generator=generator(seed, "nas-search-space"))[:size]
    return sorted(space[int(i)] for i in order)


@dataclass(frozen=True)
class NasSettings:
    """How much training each candidate gets. ``paper`` keeps the DC paper's 720-candidate space; its
    training lengths are this project's choice (the DC paper trains each candidate for a fixed, short
    schedule on the proxy and on the whole set; we did not verify its exact epoch counts offline)."""

    space_size: int
    epochs: int  # on a distilled set (one step per 256 images per epoch)
    full_data_epochs: int  # on the whole training set
    models: int = 1  # networks per (candidate, training set)


NAS_PRESETS = {
    "paper": NasSettings(space_size=FULL_SPACE, epochs=300, full_data_epochs=100),
    "cpu-small": NasSettings(space_size=24, epochs=100, full_data_epochs=10),
}


def nas_protocol(preset: str, settings: NasSettings) -> dict[str, Any]:
    """The evaluation protocol of the NAS cells: the paper protocol's optimiser and augmentation, trained
    for the preset's (short) schedule."""
    protocol = PAPER.overridden({"epochs": settings.epochs, "full_data_epochs": settings.full_data_epochs,
                                 "full_data_min_steps": 0, "models": settings.models})
    description = (f"NAS {preset}: {settings.epochs} epochs on a distilled set, {settings.full_data_epochs} on "
                   f"the whole set, {settings.models} network(s); otherwise the paper protocol")
    return dataclasses.replace(protocol, name=f"nas-{preset}", description=description).as_record()


@dataclass(frozen=True)
class NasCell(EvalCell):
    """Train one candidate ConvNet on what a distillation serves; its record goes to ``records/nas/``."""

    stage: ClassVar[str] = "nas"

    candidate: Candidate = Candidate()

    def config(self) -> dict[str, Any]:
        return {**super().config(), "stage": self.stage, "candidate": self.candidate.as_dict()}

    @property
    def model_kwargs(self) -> dict[str, Any]:
        return self.candidate.as_dict()

    def label(self) -> str:
        ipc = "whole" if self.ipc is None else self.ipc
        source = f"{self.distill.method} {self.distill.dataset} ipc={ipc} seed={self.distill.seed}"
        return f"nas {self.candidate.name} on {source}"


def nas_plan(datasets: list[str], methods: list[str], ipcs: list[int], budget: str, seeds: list[int], preset: str,
             space_size: int | None = None, space_seed: int = 0) -> Plan:
    """The distillations of ``methods`` (and ``full``) as the main grid would plan them, then one NAS cell
    per (training set, candidate)."""
    if preset not in NAS_PRESETS:
        raise invalid_value("--preset", preset, f"one of {', '.join(NAS_PRESETS)}")
    settings = NAS_PRESETS[preset]
    if space_size is not None:
        settings = dataclasses.replace(settings, space_size=space_size)
    sources = tuple(dict.fromkeys([*methods, "full"]))
    grid = Grid(name="nas", description=f"NAS on distilled sets ({preset})", datasets=tuple(datasets),
                methods=sources, ipc=tuple(ipcs), seeds=tuple(seeds), budget=budget, protocol="paper")
    base = expand(grid)
    protocol = nas_protocol(preset, settings)
    candidates = search_space(settings.space_size, space_seed)
    cells = [NasCell(e.distill, e.ipc, "convnet", protocol, tuple(range(settings.models)), candidate=c)
             for e in base.eval_cells for c in candidates]
    return Plan(grid, base.distill_cells, cells)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmark.nas", description=__doc__.splitlines()[0])
    p.add_argument("--datasets", default="digits", help="comma list of datasets (default: digits)")
    p.add_argument("--methods", default="random,herding,kcenter", help="methods whose sets act as proxies")
    p.add_argument("--ipc", default="10", help="comma list of images per class (default: 10)")
    p.add_argument("--seeds", default="0", help="distillation seeds (default: 0)")
    p.add_argument("--budget", default="cpu-small", help="distillation budget preset (default: cpu-small)")
    p.add_argument("--preset", default="cpu-small", help=f"NAS training preset: {', '.join(NAS_PRESETS)}")
    p.add_argument("--space-size", type=int, default=None, help=f"candidates drawn from the {FULL_SPACE} "
                   "(default: the preset's)")
    p.add_argument("--space-seed", type=int, default=0, help="seed of the candidate draw (default: 0)")
    p.add_argument("--results", default="results", help="results directory (default: results/)")
    p.add_argument("--backend", default="local", help="where cells run (as benchmark.run --backend)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default: auto)")
    p.add_argument("--data-root", default=None, help="as benchmark.run --data-root")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: all cores)")
    p.add_argument("--dry-run", action="store_true", help="print the plan and exit")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--no-report", action="store_true", help="do not regenerate the leaderboard at the end")
    add_backend_arguments(p)
    return p


def main(argv: list[str] | None = None) -> int:
    from benchmark.leaderboard import write_reports
    from benchmark.reports.nas import nas_markdown
    from benchmark.run import DATA_ROOT_ENV, run_plan
    from benchmark.runner import RunContext
    from benchmark.store import ResultsStore

    def body() -> int:
        a = build_parser().parse_args(argv)
        backend_options, threads = backend_and_threads(a)
        torch.set_num_threads(threads)
        plan = nas_plan(comma_list("--datasets", a.datasets), comma_list("--methods", a.methods),
                        comma_list("--ipc", a.ipc, int), a.budget, comma_list("--seeds", a.seeds, int), a.preset,
                        a.space_size, a.space_seed)
        data = DataOptions(Path(a.data_root or os.environ.get(DATA_ROOT_ENV, "data")), False,
                           str(resolve_device(a.device)))
        ctx = RunContext(results=Path(a.results), data=data, device=a.device, progress=not a.no_progress,
                         command=command_line("benchmark.nas", argv))
        candidates = len({c.candidate for c in plan.eval_cells})
        print(f"nas: {candidates} candidates × {len(plan.eval_cells) // max(candidates, 1)} training sets; "
              f"{len(plan.distill_cells)} distillations (reused when already in {a.results})", flush=True)
        if a.dry_run:
            return 0
        summary = run_plan(plan, ctx, a.backend, backend_options)
        print(summary.line())
        print(nas_markdown(ResultsStore(a.results)))
        if not a.no_report:
            write_reports(Path(a.results))
        return 1 if summary.failed else 0

    return guarded(body)


if __name__ == "__main__":
    sys.exit(main())
