"""Cells: the units of work a grid expands into, each keyed by a hash of its full configuration.

A grid becomes a two-stage DAG. *Distillation cells* (dataset, method, IPC or "any", budget, resolved
hyper-parameters, seed) produce artifacts; *evaluation cells* (a distillation cell, IPC, architecture,
protocol, evaluation seeds) train networks on what an artifact synthesises. A generator method is
distilled once per seed and evaluated at every IPC; ``full`` is evaluated once, whatever the IPC.

The key of a cell hashes everything that determines its result plus :data:`RESULTS_VERSION`, so a
rerun finds finished cells, and a change of defaults or of the protocol produces new keys instead of
silently mixing old and new numbers.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from benchmark.data import DatasetSpec, dataset_spec
from benchmark.distiller import Distiller, get_distiller
from benchmark.errors import BenchmarkError
from benchmark.grid import Grid
from benchmark.models import MODELS
from benchmark.protocol import get_protocol

if TYPE_CHECKING:
    from benchmark.store import ResultsStore

# Bump when a change to the harness changes results, so old records are not mixed with new ones.
RESULTS_VERSION = "1"


def config_key(config: dict[str, Any]) -> str:
    canonical = json.dumps(config, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:24]


@dataclass(frozen=True)
class DistillCell:
    stage: ClassVar[str] = "distill"  # the store folder its record goes to

    dataset: str
    method: str
    ipc: int | None
    budget: str
    seed: int
    hparams: dict[str, Any] = field(hash=False, compare=False)
    max_iterations: int | None = None

    def config(self) -> dict[str, Any]:
        return {"stage": "distill", "dataset": self.dataset, "dataset_spec": dataset_spec(self.dataset).summary(),
                "method": self.method, "ipc": self.ipc, "budget": self.budget, "seed": self.seed,
                "hparams": self.hparams, "max_iterations": self.max_iterations, "results_version": RESULTS_VERSION}

    @property
    def key(self) -> str:
        return config_key(self.config())

    def label(self) -> str:
        ipc = "any" if self.ipc is None else self.ipc
        return f"distill {self.method} {self.dataset} ipc={ipc} seed={self.seed}"


@dataclass(frozen=True)
class EvalCell:
    stage: ClassVar[str] = "eval"

    distill: DistillCell
    ipc: int | None
    arch: str
    protocol: dict[str, Any] = field(hash=False, compare=False)
    eval_seeds: tuple[int, ...] = ()

    def config(self) -> dict[str, Any]:
        return {"stage": "eval", "distill_key": self.distill.key, "dataset": self.distill.dataset,
                "method": self.distill.method, "ipc": self.ipc, "arch": self.arch, "protocol": self.protocol,
                "eval_seeds": list(self.eval_seeds), "sample_seed": self.distill.seed,
                "results_version": RESULTS_VERSION}

    @property
    def key(self) -> str:
        return config_key(self.config())

    @property
    def model_kwargs(self) -> dict[str, Any]:
        """Constructor arguments of ``arch`` beyond the dataset spec (none: the registered architecture)."""
        return {}

    def label(self) -> str:
        ipc = "whole" if self.ipc is None else self.ipc
        return f"eval {self.distill.method} {self.distill.dataset} ipc={ipc} {self.arch} seed={self.distill.seed}"


@dataclass
class Plan:
    """The cells of a grid as a two-layer DAG: each evaluation cell (or subclass, such as a NAS cell) has
    one edge, to ``cell.distill``.

    ``unsupported`` lists the (dataset, method, IPC) combinations a ``skip_unsupported`` grid dropped
    because the method's ``check`` refused them, with the reason.
    """

    grid: Grid
    distill_cells: list[DistillCell]
    eval_cells: list[EvalCell]
    unsupported: list[str] = field(default_factory=list)

    def stages(self) -> list[tuple[str, list[DistillCell] | list[EvalCell]]]:
        """The layers in dependency order; a backend that runs them one after the other respects every edge."""
        return [("distill", self.distill_cells), ("eval", self.eval_cells)]

    def groups(self) -> list[tuple[DistillCell, list[EvalCell]]]:
        """Each distillation with the evaluations that depend on it (the DAG's connected components)."""
        downstream: dict[str, list[EvalCell]] = {c.key: [] for c in self.distill_cells}
        for cell in self.eval_cells:
            downstream[cell.distill.key].append(cell)
        return [(cell, downstream[cell.key]) for cell in self.distill_cells]

    def pending(self, store: ResultsStore) -> Plan:
        """The cells that have no record yet (failed cells are pending: a rerun retries them). Each cell's
        record lives in its own ``stage`` folder (NAS cells are evaluation cells of stage ``nas``).

        A distillation with a record but no artifact on this machine (artifacts are not committed) is
        pending again when one of the pending evaluations needs it: it is regenerated, not reported lost."""
        done = {stage: store.done_keys(stage) for stage in {c.stage for _, cells in self.stages() for c in cells}}
        evals = [c for c in self.eval_cells if c.key not in done[c.stage]]
        needed = {c.distill.key for c in evals}
        distills = [c for c in self.distill_cells if c.key not in done[c.stage]
                    or (c.key in needed and not store.has_artifact(c.key))]
        return dataclasses.replace(self, distill_cells=distills, eval_cells=evals)

    def regenerated(self, store: ResultsStore) -> list[DistillCell]:
        """The distillations of this (pending) plan that have a record already: their artifact is rebuilt."""
        return [c for c in self.distill_cells if store.has(c.stage, c.key)]

    def restricted(self, distill_keys: set[str]) -> Plan:
        """The sub-plan of the given distillations and their evaluations."""
        return dataclasses.replace(self, distill_cells=[c for c in self.distill_cells if c.key in distill_keys],
                                   eval_cells=[c for c in self.eval_cells if c.distill.key in distill_keys])

    def __len__(self) -> int:
        return len(self.distill_cells) + len(self.eval_cells)


def sweep_variants(grid: Grid, method: str) -> list[dict[str, Any]]:
    """Hyper-parameter override dicts for ``method``: the grid's fixed overrides with its sweep axes, either
    multiplied (``product``) or varied one axis at a time while the others keep the grid's values or the
    method's defaults (``one-at-a-time``: 4 + 4 + 4 variants instead of 4 × 4 × 4)."""
    base = dict(grid.hparams.get(method, {}))
    axes = [(axis.split(".", 1)[1], values) for axis, values in grid.sweep.items() if axis.split(".", 1)[0] == method]
    if not axes:
        return [base]
    if grid.sweep_mode == "one-at-a-time":
        return [{**base, name: value} for name, values in axes for value in values]
    names = [name for name, _ in axes]
    return [{**base, **dict(zip(names, combo, strict=True))} for combo in itertools.product(*(v for _, v in axes))]


def expand(grid: Grid) -> Plan:
    """Expand a grid into cells, validating every name and value first (one-line errors)."""
    overrides = {**grid.protocol_overrides, **({"models": grid.models} if grid.models else {})}
    protocol = get_protocol(grid.protocol).overridden(overrides).as_record()
    for arch in grid.archs:
        MODELS.get(arch)
    for dataset in grid.ipc_by_dataset:  # a misspelt name would otherwise be silently ignored
        dataset_spec(dataset)
    for method in grid.hparams:
        get_distiller(method)
    for axis in grid.sweep:
        if axis.split(".", 1)[0] not in grid.methods:
            raise BenchmarkError(f"sweep axis '{axis}' names a method that is not in the grid's methods "
                                 f"({', '.join(grid.methods)})")
    eval_seeds = tuple(range(protocol["models"]))
    distill_cells: list[DistillCell] = []
    eval_cells: list[EvalCell] = []
    unsupported: list[str] = []
    for dataset in grid.datasets:
        spec = dataset_spec(dataset)
        for method in grid.methods:
            distiller = get_distiller(method)
            ipcs = servable_ipcs(grid, distiller, dataset, spec, unsupported)
            if not ipcs:
                continue
            distill_ipcs: list[int | None] = [None] if distiller.serves_any_ipc else list(ipcs)
            eval_ipcs: list[int | None] = [None] if distiller.ipc_independent else list(ipcs)
            for overrides in sweep_variants(grid, method):
                for seed in grid.seeds:
                    for distill_ipc in distill_ipcs:
                        hp = distiller.resolve_hparams(spec, distill_ipc, grid.budget, overrides)
                        cell = DistillCell(dataset, method, distill_ipc, grid.budget, seed, dataclasses.asdict(hp),
                                           grid.max_iterations)
                        distill_cells.append(cell)
                        served = eval_ipcs if distill_ipc is None else [distill_ipc]
                        for ipc, arch in itertools.product(served, grid.archs):
                            eval_cells.append(EvalCell(cell, ipc, arch, protocol, eval_seeds))
    return Plan(grid, dedupe(distill_cells), dedupe(eval_cells), unsupported)


def servable_ipcs(grid: Grid, distiller: Distiller, dataset: str, spec: DatasetSpec,
                  unsupported: list[str]) -> tuple[int, ...]:
    """The grid's IPCs for this dataset that the method accepts. A refusal is an error, unless the grid says
    ``skip_unsupported`` (the ``full`` grid: every method on every dataset it can serve), which records it."""
    served = []
    for ipc in grid.ipcs_for(dataset):
        try:
            distiller.check(spec, ipc)
        except BenchmarkError as refusal:
            if not grid.skip_unsupported:
                raise
            unsupported.append(f"{distiller.name} {dataset} ipc={ipc}: {refusal}")
            continue
        served.append(ipc)
    return tuple(served)


def dedupe(cells: list) -> list:
    seen, out = set(), []
    for cell in cells:
        if cell.key not in seen:
            seen.add(cell.key)
            out.append(cell)
    return out
